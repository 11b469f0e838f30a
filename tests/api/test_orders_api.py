"""/api/v1/removal-orders over HTTP: the authority's order, the countdown, escalations, the
reviewer's execution, the platform's confirmation, Annex II in the authority's mailbox and the
numbers — and bad orders answered with one problem listing every error, nothing stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from cleanit.adapters.db.models import (
    AuditEntry,
    Case,
    ContentItem,
    Decision,
    Message,
    PlatformAction,
    RemovalOrder,
)
from cleanit.domain.notices import SourceType
from cleanit.domain.roles import OrgKind, Role
from cleanit.services import notices, orders, organisations
from cleanit.services.context import Context
from tests.conftest import RecordingWebhooks
from tests.services.test_orders import AUTHORITY_MAILBOX, ON_CALL, Clock, order_body, run_jobs
from tests.world import World, build_world, notice

T0 = datetime(2026, 10, 25, 0, 40, tzinfo=UTC)  # Europe leaves summer time at 01:00 UTC
URL = "/api/v1/removal-orders"


@pytest.fixture
def clock(ctx: Context) -> Clock:
    c = Clock(T0)
    ctx.clock = c
    return c


@pytest.fixture
def world(ctx: Context, clock: Clock) -> World:
    w = build_world(ctx)
    orders.configure_provider(
        ctx, None, "host-a", domains=["host-a.example.org"], contact_email=ON_CALL
    )
    return w


def rows(ctx: Context) -> tuple[int, ...]:
    with ctx.sessions() as s:
        return tuple(
            s.scalar(select(func.count()).select_from(m)) or 0
            for m in (RemovalOrder, Case, ContentItem, AuditEntry, Message)
        )


def post(client: TestClient, world: World, body: dict[str, Any], who: str = "authority") -> Any:
    return client.post(URL, json=body, headers=world.auth(who))


def test_the_whole_story_over_http(
    client: TestClient, world: World, clock: Clock, webhooks: RecordingWebhooks
) -> None:
    ctx = world.ctx
    r = post(client, world, order_body(clock, issuing_member_state="FR", host_member_state="BE"))
    assert r.status_code == 201, r.text
    receipt = r.json()
    oid = receipt["order_id"]
    assert r.headers["location"] == f"{URL}/{oid}"
    assert receipt["deadline_at"] == "2026-10-25T01:40:00+00:00"
    # Countdown: the authority and the provider see the same deadline.
    clock.advance(minutes=10)
    for who in ("authority", "reviewer"):
        got = client.get(f"{URL}/{oid}", headers=world.auth(who)).json()
        assert got["remaining_seconds"] == 50 * 60 and got["state"] == "received"
    listed = client.get(URL, headers=world.auth("reviewer")).json()
    assert listed["total"] == 1 and listed["items"][0]["remaining_seconds"] == 3000
    # Escalations at 30, 15 and 5 minutes left (the minute sweep sends them).
    for minutes in (20, 15, 10):
        clock.advance(minutes=minutes)
        assert orders.sweep(ctx).escalations == 1
    got = client.get(f"{URL}/{oid}", headers=world.auth("reviewer")).json()
    assert [e["label"] for e in got["escalations"]] == [
        "30 minutes left",
        "15 minutes left",
        "5 minutes left",
    ]
    run_jobs(ctx)
    on_call = sorted((ctx.mailer.directory / ON_CALL).glob("*.eml"))  # type: ignore[attr-defined]
    assert len(on_call) == 4  # the order's arrival and three reminders
    # The reviewer executes; the demo platform confirms (200) when its webhook arrives.
    clock.advance(minutes=1)
    r = client.post(f"{URL}/{oid}/execution", json={}, headers=world.auth("reviewer"))
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "received" and r.json()["execution_requested_at"]
    clock.advance(seconds=30)
    run_jobs(ctx)
    got = client.get(f"{URL}/{oid}", headers=world.auth("authority")).json()
    assert got["state"] == "executed" and got["executed_in_time"] is True
    assert got["executed_at"] == "2026-10-25T01:36:30+00:00"
    annex = client.get(f"{URL}/{oid}/annex-ii", headers=world.auth("authority"))
    assert annex.status_code == 200
    assert annex.json()["body"]["executed_at"]["local"] == "2026-10-25T02:36:30+01:00"  # Paris
    run_jobs(ctx)
    mail = list((ctx.mailer.directory / AUTHORITY_MAILBOX).glob("*.eml"))  # type: ignore[attr-defined]
    assert len(mail) == 1 and "Annex II" in mail[0].read_text()
    # The order's own numbers.
    stats = client.get(f"{URL}/statistics?year=2026", headers=world.auth("auditor")).json()
    assert stats["orders"]["received"] == 1 and stats["orders"]["executed_in_time"] == 1
    # Cross-border: the host state's scrutiny found an infringement; the content comes back.
    r = client.post(
        f"{URL}/{oid}/scrutiny",
        json={"outcome": "infringement_found", "reasons": "Disproportionate, says the host."},
        headers=world.auth("legal"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "reinstated"


def test_a_bad_order_gets_one_problem_listing_every_field(
    client: TestClient, world: World, clock: Clock
) -> None:
    before = rows(world.ctx)
    body = order_body(
        clock,
        issuing_member_state="UK",
        content_urls=["https://not-ours.example.net/v/1"],
        reasons=["incitement", "bad-words"],
        surprise="field",
    )
    del body["redress_information"]
    r = post(client, world, body)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["type"].endswith("/invalid-order")
    assert [e["field"] for e in problem["errors"]] == [
        "surprise",
        "issuing_member_state",
        "content_urls[0]",
        "reasons[1]",
        "redress_information",
    ]
    assert "5 error(s)" in problem["detail"]
    assert rows(world.ctx) == before


def test_duplicate_reference_and_wrong_senders(
    client: TestClient, world: World, clock: Clock
) -> None:
    body = order_body(clock, reference="RO-SAME")
    assert post(client, world, body).status_code == 201
    before = rows(world.ctx)
    r = post(client, world, order_body(clock, reference="RO-SAME"))
    assert r.status_code == 409 and "RO-SAME" in r.json()["detail"]
    assert r.json()["errors"] == [{"field": "reference", "message": r.json()["detail"]}]
    assert post(client, world, order_body(clock), who="reviewer").status_code == 403
    assert client.post(URL, json=order_body(clock)).status_code == 401
    assert post(client, world, ["not", "an", "object"]).status_code == 422  # type: ignore[arg-type]
    assert rows(world.ctx) == before


def test_annex_iii_and_the_restarted_clock_over_http(
    client: TestClient, world: World, clock: Clock
) -> None:
    oid = post(client, world, order_body(clock)).json()["order_id"]
    r = client.post(
        f"{URL}/{oid}/inability",
        json={
            "reason": "manifest_error",
            "explanation": "The URL names another provider's site.",
            "clarification_needed": "Please give the URL on our service.",
        },
        headers=world.auth("reviewer"),
    )
    assert r.status_code == 200 and r.json()["paused"] is True
    annex = client.get(f"{URL}/{oid}/annex-iii", headers=world.auth("authority")).json()
    assert "manifest errors" in annex["text"]
    assert client.get(f"{URL}/{oid}/annex-ii", headers=world.auth("authority")).status_code == 404
    # Without a clarification, asking for one is refused (Art 3(8) needs it).
    bad = client.post(
        f"{URL}/{oid}/inability",
        json={"reason": "manifest_error", "explanation": "Again something wrong."},
        headers=world.auth("reviewer"),
    )
    assert bad.status_code == 409  # already unable_to_execute
    clock.advance(hours=2)
    r = client.post(
        f"{URL}/{oid}/clarification",
        json={"clarification": "The URL is https://host-a.example.org/v/1 indeed."},
        headers=world.auth("authority"),
    )
    assert r.status_code == 200 and r.json()["remaining_seconds"] == 3600


def test_hold_renewal_by_the_authority_only(client: TestClient, world: World, clock: Clock) -> None:
    oid = post(client, world, order_body(clock, withhold_information=True)).json()["order_id"]
    renewal = {"days": 42, "reasons": "The investigation is still running."}
    assert (
        client.post(f"{URL}/{oid}/hold-renewal", json=renewal, headers=world.auth("legal"))
    ).status_code == 403
    r = client.post(f"{URL}/{oid}/hold-renewal", json=renewal, headers=world.auth("authority"))
    assert r.status_code == 200, r.text
    assert r.json()["hold"]["renewed_at"] is not None
    again = client.post(f"{URL}/{oid}/hold-renewal", json=renewal, headers=world.auth("authority"))
    assert again.status_code == 422 and "renewed once" in again.json()["detail"]


# --- the clock on the case and in the queue ------------------------------------------------------


def test_the_case_and_the_queue_show_the_order_clock(
    client: TestClient, world: World, clock: Clock
) -> None:
    ctx = world.ctx
    # Two older cases: the referral unit's notice on the URL the order will name, and a
    # member of the public's notice on another one.
    notified = notices.receive_notice(
        ctx,
        world.p("analyst"),
        notice("https://host-a.example.org/v/1", source=SourceType.REFERRAL_UNIT),
    ).case_ids[0]
    other = notices.receive_notice(
        ctx, world.p("reporter"), notice("https://host-a.example.org/v/2")
    ).case_ids[0]
    clock.advance(minutes=1)
    receipt = post(client, world, order_body(clock)).json()
    oid = receipt["order_id"]
    assert receipt["case_ids"] == [notified]
    clock.advance(minutes=10)
    queue = client.get("/api/v1/cases", headers=world.auth("reviewer")).json()["items"]
    assert [c["id"] for c in queue] == [notified, other]  # the order's case first
    shown = queue[0]["removal_order"]
    assert shown["id"] == oid and shown["reference"] == receipt["reference"]
    assert shown["deadline"] == "2026-10-25T01:41:00+00:00"
    assert shown["remaining_seconds"] == 50 * 60 and shown["overdue"] is False
    assert queue[1]["removal_order"] is None
    record = client.get(f"/api/v1/cases/{notified}", headers=world.auth("complaints")).json()
    assert record["removal_order"] == shown
    # The hour passes (across the end of summer time at 01:00 UTC): negative, overdue.
    clock.advance(minutes=65)
    record = client.get(f"/api/v1/cases/{notified}", headers=world.auth("reviewer")).json()
    assert record["removal_order"]["remaining_seconds"] == -15 * 60
    assert record["removal_order"]["overdue"] is True
    # The referral unit sees its case, not the provider's order on it.
    theirs = client.get(f"/api/v1/cases/{notified}", headers=world.auth("analyst")).json()
    assert theirs["removal_order"] is None
    listed = client.get("/api/v1/cases", headers=world.auth("analyst")).json()["items"]
    assert [c["removal_order"] for c in listed] == [None]
    # Annex III pauses the clock: no deadline, no time left.
    r = client.post(f"{URL}/{oid}/inability", json=INABILITY, headers=world.auth("reviewer"))
    assert r.status_code == 200, r.text
    queue = client.get("/api/v1/cases", headers=world.auth("reviewer")).json()["items"]
    assert queue[0]["removal_order"]["paused"] is True
    assert queue[0]["removal_order"]["deadline"] is None
    assert queue[0]["removal_order"]["remaining_seconds"] is None


# --- pre-authorised execution ------------------------------------------------------------------

PRE = f"{URL}/pre-authorisations"
INABILITY = {"reason": "force_majeure", "explanation": "Our data centre is flooded and offline."}


def second_authority(world: World) -> dict[str, str]:
    """Another competent authority with its own token (its orders are not pre-authorised)."""
    organisations.create_organisation(
        world.ctx, slug="authority-2", name="Second Authority", kind=OrgKind.COMPETENT_AUTHORITY
    )
    token = organisations.issue_token(
        world.ctx, org_slug="authority-2", name="a2", roles=[Role.COMPETENT_AUTHORITY]
    ).token
    return {"Authorization": f"Bearer {token}"}


def decisions_of(ctx: Context, case_ids: list[int]) -> list[Decision]:
    with ctx.sessions() as s:
        return list(s.scalars(select(Decision).where(Decision.case_id.in_(case_ids))))


def queued_actions(ctx: Context, decision_ids: list[int]) -> list[str]:
    with ctx.sessions() as s:
        return list(
            s.scalars(
                select(PlatformAction.kind).where(PlatformAction.decision_id.in_(decision_ids))
            )
        )


def test_pre_authorised_execution_over_http(client: TestClient, world: World, clock: Clock) -> None:
    ctx = world.ctx
    other = second_authority(world)
    body = {"authority": "authority", "action": "remove"}
    assert client.post(PRE, json=body, headers=world.auth("reviewer")).status_code == 403
    assert client.post(PRE, json=body, headers=world.auth("authority")).status_code == 403
    missing = client.post(PRE, json={"authority": "iru"}, headers=world.auth("legal"))
    assert missing.status_code == 404 and "no competent authority 'iru'" in missing.text
    bad = client.post(PRE, json={**body, "action": "suspend_account"}, headers=world.auth("legal"))
    assert bad.status_code == 422
    r = client.post(PRE, json=body, headers=world.auth("legal"))
    assert r.status_code == 201, r.text
    pre = r.json()
    assert pre["provider"] == "host-a" and pre["authority"] == "authority"
    assert pre["action"] == "remove" and pre["active"] is True
    listed = client.get(PRE, headers=world.auth("reviewer")).json()
    assert [p["id"] for p in listed] == [pre["id"]]
    assert client.get(PRE, headers=world.auth("other_admin")).json() == []
    # The pre-authorised authority's order is executed on receipt.
    receipt = post(client, world, order_body(clock)).json()
    assert receipt["executed_automatically"] is True
    done = decisions_of(ctx, receipt["case_ids"])
    assert [(d.action, d.automated_decision, d.decided_by) for d in done] == [
        ("remove", "fully", None)
    ]
    assert queued_actions(ctx, [d.id for d in done]) == ["restrict"]
    got = client.get(f"{URL}/{receipt['order_id']}", headers=world.auth("reviewer")).json()
    assert got["automated"] is True and got["execution_requested_at"] is not None
    # Another authority's order waits for a person.
    r = client.post(
        URL,
        json=order_body(clock, content_urls=["https://host-a.example.org/v/2"]),
        headers=other,
    )
    assert r.status_code == 201, r.text
    assert r.json()["executed_automatically"] is False and r.json()["state"] == "received"
    assert decisions_of(ctx, r.json()["case_ids"]) == []
    # Revoked: the authority's next order waits too.
    assert client.delete(f"{PRE}/{pre['id']}", headers=world.auth("reviewer")).status_code == 403
    assert client.delete(f"{PRE}/{pre['id']}", headers=world.auth("other_admin")).status_code == 404
    r = client.delete(f"{PRE}/{pre['id']}", headers=world.auth("admin"))
    assert r.status_code == 200 and r.json()["active"] is False
    assert client.delete(f"{PRE}/{pre['id']}", headers=world.auth("admin")).status_code == 409
    later = post(client, world, order_body(clock, content_urls=["https://host-a.example.org/v/3"]))
    assert later.json()["executed_automatically"] is False
    with ctx.sessions() as s:
        trail = s.scalars(
            select(AuditEntry.action).where(AuditEntry.entity == "removal_order_preauthorisation")
        ).all()
    assert trail == ["removal_order.pre_authorised", "removal_order.pre_authorisation_revoked"]


# --- withdrawal by the issuing authority ---------------------------------------------------------

WITHDRAW = {"reasons": "The investigating judge found the content was already offline."}


def test_withdrawing_a_pending_order_stops_its_clock(
    client: TestClient, world: World, clock: Clock
) -> None:
    ctx = world.ctx
    receipt = post(client, world, order_body(clock)).json()
    oid, case_id = receipt["order_id"], receipt["case_ids"][0]
    clock.advance(minutes=35)
    assert orders.sweep(ctx).escalations == 1  # 30 minutes left
    path = f"{URL}/{oid}/withdrawal"
    assert client.post(path, json=WITHDRAW, headers=world.auth("legal")).status_code == 403
    short = client.post(path, json={"reasons": "no"}, headers=world.auth("authority"))
    assert short.status_code == 422 and short.json()["errors"][0]["field"] == "reasons"
    r = client.post(path, json=WITHDRAW, headers=world.auth("authority"))
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["state"] == "withdrawn" and got["deadline_at"] is None
    assert got["remaining_seconds"] is None and got["paused"] is False
    assert got["withdrawal"]["reasons"] == WITHDRAW["reasons"]
    assert got["withdrawal"]["state_before"] == "received"
    assert got["withdrawal"]["clock_stopped"] is True
    # No more reminders, not even "missed", whichever way they would come.
    clock.advance(hours=2)
    assert orders.sweep(ctx).escalations == 0
    with ctx.sessions() as s:
        order = s.scalar(select(RemovalOrder))
        assert order is not None
        order_pk = order.id
    assert orders.escalate_due(ctx, order_pk) == 0
    got = client.get(f"{URL}/{oid}", headers=world.auth("reviewer")).json()
    assert got["missed_at"] is None and [e["label"] for e in got["escalations"]] == [
        "30 minutes left"
    ]
    # The case leaves the front of the queue and shows no clock.
    record = client.get(f"/api/v1/cases/{case_id}", headers=world.auth("reviewer")).json()
    assert record["removal_order"] is None and record["case"]["priority"] == 60
    # Nothing more can be done with the order.
    again = client.post(path, json=WITHDRAW, headers=world.auth("authority"))
    assert again.status_code == 409
    execute = client.post(f"{URL}/{oid}/execution", json={}, headers=world.auth("reviewer"))
    assert execute.status_code == 409
    with ctx.sessions() as s:
        told = s.scalars(select(Message).where(Message.kind == "removal_order.withdrawn")).all()
    assert [m.recipient for m in told] == [ON_CALL] and "clock has stopped" in told[0].body


def test_withdrawing_an_executed_order_is_recorded_the_content_stays_restricted(
    client: TestClient, world: World, clock: Clock
) -> None:
    ctx = world.ctx
    receipt = post(client, world, order_body(clock)).json()
    oid = receipt["order_id"]
    clock.advance(minutes=5)
    r = client.post(f"{URL}/{oid}/execution", json={}, headers=world.auth("reviewer"))
    assert r.status_code == 200, r.text
    run_jobs(ctx)  # the platform confirms
    assert client.get(f"{URL}/{oid}", headers=world.auth("authority")).json()["state"] == (
        "executed"
    )
    clock.advance(days=2)
    r = client.post(f"{URL}/{oid}/withdrawal", json=WITHDRAW, headers=world.auth("authority"))
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["state"] == "withdrawn" and got["executed_at"] is not None
    assert got["executed_in_time"] is True
    assert got["withdrawal"]["state_before"] == "executed"
    assert got["withdrawal"]["clock_stopped"] is False
    # Reinstatement is the provider's decision: the order's decision stays in force.
    in_force = [d for d in decisions_of(ctx, receipt["case_ids"]) if d.status == "in_force"]
    assert [d.action for d in in_force] == ["disable_access"]
    with ctx.sessions() as s:
        item = s.scalar(select(ContentItem).where(ContentItem.url.like("%/v/1")))
        assert item is not None and item.platform_state != "available"
        told = s.scalars(select(Message).where(Message.kind == "removal_order.withdrawn")).all()
    assert "your own decision" in told[0].body
    stats = client.get(f"{URL}/statistics?year=2026", headers=world.auth("auditor")).json()
    assert stats["orders"]["executed"] == 1 and stats["orders"]["executed_in_time"] == 1
