"""Removal orders on a real PostgreSQL with a controllable clock (no sleeping): receipt,
countdown, escalations, execution confirmed by the platform, Annex II/III, holds, scrutiny,
complaints and the annual numbers."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select, text

from cleanit.adapters.db.models import (
    Assessment,
    AuditEntry,
    Case,
    ContentItem,
    Decision,
    Message,
    PlatformAction,
    RemovalOrder,
    RemovalOrderEscalation,
    Statement,
)
from cleanit.domain.complaints import ComplaintOutcome
from cleanit.domain.decisions import Action
from cleanit.domain.errors import Conflict, Forbidden, NotFound, PrincipleViolation
from cleanit.domain.orders import InabilityReason, OrderInvalid, ScrutinyOutcome
from cleanit.services import (
    complaints,
    content,
    maintenance,
    orders,
    outbox,
    platform,
    preservation,
)
from cleanit.services.context import Context
from tests.conftest import RecordingWebhooks
from tests.world import World, build_world

T0 = datetime(2026, 3, 29, 0, 20, tzinfo=UTC)  # Brussels goes to summer time at 01:00 UTC
_refs = itertools.count(1)
ON_CALL = "on-call@host-a.example.org"
AUTHORITY_MAILBOX = "orders@authority.example.org"


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> datetime:
        self.at += timedelta(**delta)
        return self.at


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
    orders.configure_provider(ctx, None, "host-b", domains=["host-b.example.org"])
    return w


def order_body(clock: Clock, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "addressee": "host-a",
        "issuing_authority": "Example Internet Referral Office",
        "issuing_member_state": "BE",
        "reference": f"RO-2026-{next(_refs):04d}",
        "issued_at": (clock() - timedelta(minutes=5)).isoformat(),
        "sent_at": (clock() - timedelta(minutes=1)).isoformat(),
        "content_urls": ["https://host-a.example.org/v/1"],
        "reasons": ["incitement", "threat"],
        "additional_reasons": "Invented example order for the tests.",
        "host_member_state": "BE",
        "contact_email": AUTHORITY_MAILBOX,
        "redress_information": "Challenge before the administrative court within 30 days.",
    }
    body.update(changes)
    return body


def count(ctx: Context, model: type) -> int:
    with ctx.sessions() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def run_jobs(ctx: Context) -> list[str]:
    """Run every job that is due, through the same services as the worker."""
    with ctx.sessions() as s:
        rows = s.execute(
            text(
                "SELECT id, task_name, args FROM procrastinate_jobs WHERE status = 'todo' "
                "AND task_name <> 'orders.escalate' ORDER BY id"
            )
        ).all()
        s.execute(
            text("UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = ANY(:ids)"),
            {"ids": [r[0] for r in rows]},
        )
        s.commit()
    for _id, task, args in rows:
        if task == "outbox.deliver":
            outbox.deliver_message(ctx, args["message_id"])
        elif task == "platform.send_action":
            platform.send_platform_action(ctx, args["platform_action_id"])
        elif task == "orders.send_escalation":
            orders.send_escalation_webhook(ctx, args["escalation_id"])
    return [r[1] for r in rows]


def messages(ctx: Context, kind: str | None = None) -> list[Message]:
    with ctx.sessions() as s:
        q = select(Message).order_by(Message.id)
        if kind:
            q = q.where(Message.kind == kind)
        return list(s.scalars(q))


def receive(world: World, clock: Clock, **changes: Any) -> orders.OrderReceipt:
    return orders.receive_order(world.ctx, world.p("authority"), order_body(clock, **changes))


def view(world: World, order_id: str, who: str = "reviewer") -> dict[str, Any]:
    return orders.get_order(world.ctx, world.p(who), uuid.UUID(order_id))


# --- the story of the issue ------------------------------------------------------------------


def test_order_to_annex_ii_end_to_end(
    world: World, clock: Clock, webhooks: RecordingWebhooks
) -> None:
    ctx = world.ctx
    receipt = receive(world, clock)
    oid = uuid.UUID(receipt.order_id)
    assert receipt.state == "received"
    assert receipt.deadline_at == (T0 + timedelta(hours=1)).isoformat()
    assert len(receipt.receipt_hash) == 64
    # The countdown everyone sees: the authority and the provider.
    for who in ("authority", "reviewer"):
        v = view(world, receipt.order_id, who)
        assert v["remaining_seconds"] == 3600 and v["deadline_at"] == receipt.deadline_at
    # At the front of the provider's queue.
    with ctx.sessions() as s:
        case = s.get(Case, receipt.case_ids[0])
        assert case is not None and case.priority == 0
    assert [m.recipient for m in messages(ctx, "removal_order.received")] == [ON_CALL]
    # Escalations at 30, 15 and 5 minutes left: each exactly once.
    sent = []
    for minutes in (30, 15, 10):
        clock.advance(minutes=minutes - 0.5)
        assert orders.escalate_due(ctx) == 0
        clock.advance(minutes=0.5)
        assert orders.escalate_due(ctx) == 1
        assert orders.escalate_due(ctx) == 0  # idempotent
        sent.append(messages(ctx, "removal_order.escalation")[-1].subject)
    assert [s.split("]")[0] for s in sent] == [
        "[30 minutes left",
        "[15 minutes left",
        "[5 minutes left",
    ]
    assert view(world, receipt.order_id)["remaining_seconds"] == 300
    # The escalations also went to the platform's webhook.
    run_jobs(ctx)
    kinds = [json.loads(body)["type"] for _, body in webhooks.sent]
    assert kinds == ["removal_order.escalation"] * 3
    # The reviewer executes; the order waits for the platform.
    clock.advance(minutes=2)
    v = orders.execute_order(ctx, world.p("reviewer"), oid)
    assert v["state"] == "received" and v["execution_requested_at"] is not None
    with pytest.raises(Conflict):
        orders.execute_order(ctx, world.p("reviewer2"), oid)
    clock.advance(seconds=20)
    run_jobs(ctx)  # the platform webhook: the demo platform answers 200 = confirmed
    restrict = [
        json.loads(b)
        for _, b in webhooks.sent
        if json.loads(b)["type"] != "removal_order.escalation"
    ]
    assert [p["type"] for p in restrict] == ["content.restrict"]
    assert restrict[0]["action"] == "disable_access"
    assert len(restrict[0]["territorial_scope"]) == 27  # all Member States
    v = view(world, receipt.order_id, "authority")
    assert v["state"] == "executed" and v["executed_in_time"] is True
    assert v["executed_at"] == clock().isoformat()  # the platform's confirmation
    assert v["remaining_seconds"] is None
    # Annex II reached the authority's mailbox.
    run_jobs(ctx)
    mail = list((ctx.mailer.directory / AUTHORITY_MAILBOX).glob("*.eml"))  # type: ignore[attr-defined]
    assert len(mail) == 1
    body = mail[0].read_text()
    assert "Annex II" in body and receipt.reference in body
    assert "CEST" in body  # shown in Brussels time (summer time started at 01:00 UTC)
    annex = orders.get_reply(ctx, world.p("authority"), oid, "II")
    assert annex.body["executed_at"]["utc"].startswith("2026-03-29T01:17:20")
    # No reminder after execution.
    clock.advance(hours=1)
    assert orders.escalate_due(ctx) == 0
    stats = orders.order_statistics(ctx, world.p("legal"), 2026)
    assert stats["orders"]["received"] == 1
    assert stats["orders"]["executed_in_time"] == 1 and stats["orders"]["executed_late"] == 0
    assert orders.order_statistics(ctx, world.p("authority"), 2026)["orders"]["executed"] == 1
    assert orders.order_statistics(ctx, world.p("legal"), 2025)["orders"]["received"] == 0

    # TCO Art 6: the removed content is preserved, encrypted, for six months, linked to the
    # order; the issuing authority and the provider's lawyers open it with a purpose, a
    # reviewer cannot; at expiry the sweep deletes it and the deletion is audited.
    (hold,), _ = preservation.list_holds(ctx, world.p("legal"), case_id=receipt.case_ids[0])
    assert hold.removal_order_id is not None and hold.status == "active"
    assert hold.expires_at - hold.preserved_at >= timedelta(days=181)
    record = hold.items[0].name
    for who in ("authority", "legal"):
        _item, chunks = preservation.open_item(
            ctx, world.p(who), hold.id, record, purpose="investigation", reason="Case file 7"
        )
        assert b"https://host-a.example.org/v/1" in b"".join(chunks)
    with pytest.raises(Forbidden):
        preservation.open_item(
            ctx,
            world.p("reviewer"),
            hold.id,
            record,
            purpose="review",
            reason="Curious about the case",
        )
    log = preservation.list_accesses(ctx, world.p("legal"), hold.id)
    assert [a.purpose for a in log] == ["investigation: Case file 7"] * 2
    clock.at = hold.expires_at + timedelta(minutes=1)
    assert maintenance.sweep(ctx).preservation_holds_expired == 1
    gone = preservation.get_hold(ctx, world.p("legal"), hold.id)
    assert gone.status == "expired" and gone.deleted_at is not None
    with pytest.raises(Conflict):
        preservation.open_item(
            ctx,
            world.p("legal"),
            hold.id,
            record,
            purpose="investigation",
            reason="Late request, case 7",
        )
    with ctx.sessions() as s:
        actions = s.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all()
    assert actions[-1] == "preservation.expired"


def test_the_decision_rests_on_the_order_and_goes_through_the_decision_path(
    world: World, clock: Clock
) -> None:
    ctx = world.ctx
    receipt = receive(world, clock)
    orders.execute_order(ctx, world.p("legal"), uuid.UUID(receipt.order_id), action=Action.REMOVE)
    with ctx.sessions() as s:
        d = s.scalar(select(Decision))
        assert d is not None and d.action == "remove" and d.ground == "illegal_content"
        assert d.decided_by == world.user_ids["legal"]
        a = s.get(Assessment, d.assessment_id)
        assert a is not None and a.organisation_id == world.org_ids["authority"]
        assert a.finding == "illegal" and "RO-2026" in a.explanation
        st = s.scalar(select(Statement).where(Statement.decision_id == d.id))
        assert st is not None and "Regulation (EU) 2021/784" in st.text
        case = s.get(Case, d.case_id)
        assert case is not None and case.state == "actioned"


# --- bad input: clear errors, nothing stored ---------------------------------------------------


def _rows(ctx: Context) -> tuple[int, ...]:
    return tuple(
        count(ctx, m) for m in (RemovalOrder, Case, ContentItem, Assessment, AuditEntry, Message)
    )


def test_every_annex_i_error_is_listed_and_nothing_is_stored(world: World, clock: Clock) -> None:
    ctx = world.ctx
    before = _rows(ctx)
    body = order_body(
        clock,
        issuing_member_state="XX",
        content_urls=["https://host-a.example.org/v/1", "https://elsewhere.example.net/x"],
        reasons=[],
    )
    del body["redress_information"]
    del body["reference"]
    with pytest.raises(OrderInvalid) as exc:
        orders.receive_order(ctx, world.p("authority"), body)
    fields = [f for f, _ in exc.value.errors]
    assert fields == [
        "issuing_member_state",
        "reference",
        "content_urls[1]",
        "reasons",
        "redress_information",
    ]
    messages_ = dict(exc.value.errors)
    assert "'XX' is not an EU Member State" in messages_["issuing_member_state"]
    assert "not hosted by the addressee" in messages_["content_urls[1]"]
    assert _rows(ctx) == before


def test_unknown_addressee_and_bad_transmission_times(world: World, clock: Clock) -> None:
    body = order_body(clock, addressee="nobody", sent_at=(clock() + timedelta(hours=2)).isoformat())
    with pytest.raises(OrderInvalid) as exc:
        orders.receive_order(world.ctx, world.p("authority"), body)
    assert [f for f, _ in exc.value.errors] == ["addressee", "sent_at"]


def test_a_duplicate_reference_is_refused_naming_it(world: World, clock: Clock) -> None:
    first = receive(world, clock, reference="RO-DUP-1")
    before = _rows(world.ctx)
    with pytest.raises(Conflict) as exc:
        receive(world, clock, reference="RO-DUP-1", content_urls=["https://host-a.example.org/v/9"])
    assert "RO-DUP-1" in exc.value.detail and first.order_id in exc.value.detail
    assert _rows(world.ctx) == before


def test_only_authorities_issue_orders(world: World, clock: Clock) -> None:
    for who in ("reviewer", "analyst", "admin"):
        with pytest.raises(Forbidden):
            orders.receive_order(world.ctx, world.p(who), order_body(clock))


def test_an_idempotent_retry_gets_the_same_receipt(world: World, clock: Clock) -> None:
    body = order_body(clock)
    a = orders.receive_order(world.ctx, world.p("authority"), body, idempotency_key="k1")
    b = orders.receive_order(world.ctx, world.p("authority"), body, idempotency_key="k1")
    assert a == b and count(world.ctx, RemovalOrder) == 1
    with pytest.raises(Conflict):
        orders.receive_order(
            world.ctx, world.p("authority"), order_body(clock), idempotency_key="k1"
        )


# --- Annex III and the clock -------------------------------------------------------------------


def test_annex_iii_stops_the_clock_until_the_clarification_arrives(
    world: World, clock: Clock
) -> None:
    ctx = world.ctx
    receipt = receive(world, clock)
    oid = uuid.UUID(receipt.order_id)
    clock.advance(minutes=20)
    v = orders.report_inability(
        ctx,
        world.p("reviewer"),
        oid,
        reason=InabilityReason.INSUFFICIENT_INFORMATION,
        explanation="The URL points to a channel with 400 videos.",
        clarification_needed="Which video of the channel is meant?",
    )
    assert v["state"] == "unable_to_execute" and v["paused"] is True
    assert v["deadline_at"] is None and v["remaining_seconds"] is None
    annex = orders.get_reply(ctx, world.p("authority"), oid, "III")
    assert annex.body["inability"]["reason"] == "insufficient_information"
    assert [m.recipient for m in messages(ctx, "removal_order.annex_iii")] == [AUTHORITY_MAILBOX]
    with pytest.raises(Conflict):
        orders.execute_order(ctx, world.p("reviewer"), oid)
    clock.advance(hours=3)  # the clock waits: no reminder, nothing missed
    assert orders.escalate_due(ctx) == 0
    v = orders.clear_obstacle(
        ctx, world.p("authority"), oid, clarification="The video posted on 1 March at 10:00."
    )
    assert v["state"] == "received"
    assert v["deadline_at"] == (clock() + timedelta(hours=1)).isoformat()
    assert v["remaining_seconds"] == 3600
    assert [e["kind"] for e in v["clock"]] == ["received", "obstacle_reported", "obstacle_cleared"]
    clock.advance(minutes=31)
    assert orders.escalate_due(ctx) == 1  # reminders again, for the new deadline
    orders.execute_order(ctx, world.p("reviewer"), oid)
    run_jobs(ctx)
    v = view(world, receipt.order_id)
    assert v["state"] == "executed" and v["executed_in_time"] is True and v["missed_at"] is None
    stats = orders.order_statistics(ctx, world.p("reviewer"), 2026)
    assert stats["annex_iii_answers"] == {"insufficient_information": 1}


def test_a_missed_deadline_is_recorded_and_counted(world: World, clock: Clock) -> None:
    ctx = world.ctx
    receipt = receive(world, clock)
    clock.advance(minutes=61)
    # The worker came late: every reminder due is sent once, and "missed".
    assert orders.escalate_due(ctx) == 4
    assert orders.escalate_due(ctx) == 0
    v = view(world, receipt.order_id)
    assert v["missed_at"] == (T0 + timedelta(hours=1)).isoformat()
    assert v["overdue"] is True and v["remaining_seconds"] == -60
    assert messages(ctx, "removal_order.escalation")[-1].subject.startswith("MISSED")
    with world.ctx.sessions() as s:
        assert (
            s.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "removal_order.deadline_missed")
            )
            == 1
        )
    orders.execute_order(ctx, world.p("reviewer"), uuid.UUID(receipt.order_id))
    run_jobs(ctx)
    v = view(world, receipt.order_id)
    assert v["state"] == "executed" and v["executed_in_time"] is False
    numbers = orders.order_statistics(ctx, world.p("reviewer"), 2026)["orders"]
    assert numbers["executed_late"] == 1 and numbers["deadlines_missed"] == 1


def test_pending_and_unexecuted_orders_are_counted_by_reason(world: World, clock: Clock) -> None:
    ctx = world.ctx
    receive(world, clock)
    r = receive(world, clock, content_urls=["https://host-a.example.org/v/2"])
    orders.report_inability(
        ctx,
        world.p("reviewer"),
        uuid.UUID(r.order_id),
        reason=InabilityReason.FORCE_MAJEURE,
        explanation="The storage cluster is flooded and offline.",
    )
    numbers = orders.order_statistics(ctx, world.p("auditor"), 2026)["orders"]
    assert numbers["not_executed"] == {"pending": 1, "unable_to_execute:force_majeure": 1}


# --- pre-authorised execution ------------------------------------------------------------------


def test_pre_authorised_orders_are_executed_on_receipt(
    world: World, clock: Clock, webhooks: RecordingWebhooks
) -> None:
    ctx = world.ctx
    with pytest.raises(NotFound):
        orders.pre_authorise(ctx, world.p("legal"), "iru")  # not a competent authority
    for who in ("reviewer", "complaints", "auditor", "authority"):
        with pytest.raises(Forbidden):  # a standing decision: the provider's legal or admin
            orders.pre_authorise(ctx, world.p(who), "authority")
    pre = orders.pre_authorise(ctx, world.p("legal"), "authority")
    assert pre.active and pre.provider == "host-a" and pre.action == "disable_access"
    receipt = receive(world, clock)
    assert receipt.executed_automatically is True
    with ctx.sessions() as s:
        d = s.scalar(select(Decision))
        assert d is not None and d.automated_decision == "fully" and d.decided_by is None
    assert run_jobs(ctx).count("platform.send_action") == 1
    v = view(world, receipt.order_id)
    assert v["state"] == "executed" and v["automated"] is True and v["executed_in_time"]
    assert not [j for j in run_jobs(ctx) if j == "orders.escalate"]
    # Revoked: the next order waits for a person.
    with pytest.raises(NotFound):  # another provider's pre-authorisation does not exist
        orders.revoke_pre_authorisation(ctx, world.p("other_admin"), pre.id)
    revoked = orders.revoke_pre_authorisation(ctx, world.p("admin"), pre.id)
    assert not revoked.active and revoked.revoked_at is not None
    with pytest.raises(Conflict, match="already revoked"):
        orders.revoke_pre_authorisation(ctx, world.p("legal"), pre.id)
    assert [p.active for p in orders.list_pre_authorisations(ctx, world.p("reviewer"))] == [False]
    assert receive(world, clock, content_urls=["https://host-a.example.org/v/3"]).state == (
        "received"
    )
    with pytest.raises(PrincipleViolation):
        orders.pre_authorise(
            ctx,
            orders_token_principal(world),
            "authority",
        )


def orders_token_principal(world: World) -> Any:
    from dataclasses import replace

    return replace(world.p("legal"), user_id=None, token_id=1)


# --- withdrawal ------------------------------------------------------------------------------


def test_a_withdrawal_keeps_a_missed_deadline_and_ends_an_annex_iii_wait(
    world: World, clock: Clock
) -> None:
    ctx = world.ctx
    late = receive(world, clock)
    clock.advance(minutes=70)  # the hour passed; no sweep has run yet
    reasons = "The content was an invented test upload of ours."
    with pytest.raises(Forbidden):
        orders.withdraw_order(ctx, world.p("reviewer"), uuid.UUID(late.order_id), reasons=reasons)
    v = orders.withdraw_order(ctx, world.p("authority"), uuid.UUID(late.order_id), reasons=reasons)
    assert v["state"] == "withdrawn" and v["missed_at"] == late.deadline_at
    paused = receive(world, clock, content_urls=["https://host-a.example.org/v/2"])
    orders.report_inability(
        ctx,
        world.p("reviewer"),
        uuid.UUID(paused.order_id),
        reason=InabilityReason.FORCE_MAJEURE,
        explanation="The storage cluster is flooded and offline.",
    )
    v = orders.withdraw_order(
        ctx, world.p("authority"), uuid.UUID(paused.order_id), reasons=reasons
    )
    assert v["state"] == "withdrawn" and v["paused"] is False and v["missed_at"] is None
    assert v["withdrawal"]["state_before"] == "unable_to_execute"
    numbers = orders.order_statistics(ctx, world.p("auditor"), 2026)["orders"]
    assert numbers["not_executed"] == {"withdrawn": 2}
    assert numbers["deadlines_missed"] == 1


# --- Art 11: confidentiality hold --------------------------------------------------------------


def _uploader(world: World, url: str = "https://host-a.example.org/v/1") -> None:
    content.register_content(
        world.ctx,
        world.p("admin"),
        url=url,
        uploader_ref="u-1",
        uploader_email="uploader@users.example.net",
    )


def test_a_confidentiality_hold_delays_the_information_to_the_uploader(
    world: World, clock: Clock
) -> None:
    ctx = world.ctx
    _uploader(world)
    receipt = receive(world, clock, withhold_information=True)
    oid = uuid.UUID(receipt.order_id)
    orders.execute_order(ctx, world.p("reviewer"), oid)
    run_jobs(ctx)
    assert not messages(ctx, "statement_of_reasons")  # held
    v = view(world, receipt.order_id)
    assert v["hold"]["active"] is True
    assert (
        v["hold"]["info_due_at"]
        == (clock() - timedelta(minutes=5) + timedelta(weeks=6)).isoformat()
    )
    clock.advance(weeks=6, minutes=-10)
    assert orders.sweep(ctx).holds_released == 0
    clock.advance(minutes=10)
    assert orders.sweep(ctx).holds_released == 1
    assert orders.sweep(ctx).holds_released == 0  # once
    sent = messages(ctx, "statement_of_reasons")
    assert [m.recipient for m in sent] == ["uploader@users.example.net"]
    assert view(world, receipt.order_id)["hold"]["info_sent_at"] == clock().isoformat()


def test_the_authority_renews_a_hold_once(world: World, clock: Clock) -> None:
    ctx = world.ctx
    receipt = receive(world, clock, withhold_information=True, confidentiality_days=14)
    oid = uuid.UUID(receipt.order_id)
    due = view(world, receipt.order_id)["hold"]["info_due_at"]
    with pytest.raises(NotFound):  # only the issuing authority
        orders.renew_confidentiality(
            ctx, _other_authority(world), oid, reasons="The investigation continues."
        )
    with pytest.raises(Forbidden):
        orders.renew_confidentiality(
            ctx, world.p("legal"), oid, reasons="The investigation continues."
        )
    v = orders.renew_confidentiality(
        ctx, world.p("authority"), oid, days=42, reasons="The investigation continues."
    )
    assert (
        v["hold"]["info_due_at"] == (datetime.fromisoformat(due) + timedelta(days=42)).isoformat()
    )
    with pytest.raises(PrincipleViolation):
        orders.renew_confidentiality(
            ctx, world.p("authority"), oid, days=7, reasons="Still more investigation."
        )


def _other_authority(world: World) -> Any:
    from dataclasses import replace

    return replace(world.p("authority"), organisation_id=world.org_ids["iru"])


# --- Art 10 complaints and Art 4 scrutiny --------------------------------------------------------


def _executed(world: World, clock: Clock, **changes: Any) -> uuid.UUID:
    receipt = receive(world, clock, **changes)
    oid = uuid.UUID(receipt.order_id)
    orders.execute_order(world.ctx, world.p("reviewer"), oid)
    run_jobs(world.ctx)
    assert view(world, receipt.order_id)["state"] == "executed"
    return oid


def test_a_complaint_has_a_two_week_deadline_and_a_reversal_reinstates(
    world: World, clock: Clock, webhooks: RecordingWebhooks
) -> None:
    ctx = world.ctx
    _uploader(world)
    oid = _executed(world, clock)
    with ctx.sessions() as s:
        st = s.scalar(select(Statement))
        assert st is not None
        link = st.body["redress"]["internal_complaint"]["url"]
    clock.advance(days=1)
    receipt = complaints.lodge_complaint(
        ctx,
        grounds="This is a news report about the invented group, not propaganda.",
        statement_id=st.public_id,
        code=parse_qs(urlsplit(link).query)["code"][0],
    )
    (c,) = view(world, str(oid))["complaints"]
    assert c["due_at"] == (clock() + timedelta(weeks=2)).isoformat() and c["overdue"] is False
    clock.advance(days=15)
    assert view(world, str(oid))["complaints"][0]["overdue"] is True
    complaints.decide_complaint(
        ctx,
        world.p("complaints"),
        uuid.UUID(receipt.complaint_id),
        outcome=ComplaintOutcome.REVERSED,
        reasons="The material is journalistic reporting (Art 1(3)).",
    )
    v = view(world, str(oid))
    assert v["state"] == "reinstated"
    assert v["items"][0]["reinstated_after"] == "complaint"
    run_jobs(ctx)
    assert json.loads(webhooks.sent[-1][1])["type"] == "content.reinstate"
    stats = orders.order_statistics(ctx, world.p("legal"), 2026)
    assert stats["reinstatements"] == {"after_complaint": 1}
    assert stats["complaints"]["outcomes"] == {"reversed": 1}
    assert stats["complaints"]["answered_late"] == 1


def test_scrutiny_finding_an_infringement_reinstates_the_content(
    world: World, clock: Clock, webhooks: RecordingWebhooks
) -> None:
    ctx = world.ctx
    domestic = _executed(world, clock)
    with pytest.raises(Exception, match="not cross-border"):
        orders.record_scrutiny(ctx, world.p("legal"), domestic, requested_by="provider")
    oid = _executed(
        world,
        clock,
        issuing_member_state="FR",
        host_member_state="BE",
        content_urls=["https://host-a.example.org/v/7"],
    )
    clock.advance(hours=10)
    v = orders.record_scrutiny(ctx, world.p("legal"), oid, requested_by="provider")
    assert v["scrutiny"]["request_in_time"] is True and v["scrutiny"]["outcome"] is None
    assert v["scrutiny"]["due_at"] == (clock() + timedelta(hours=72)).isoformat()
    clock.advance(hours=30)
    v = orders.record_scrutiny(
        ctx,
        world.p("legal"),
        oid,
        outcome=ScrutinyOutcome.INFRINGEMENT_FOUND,
        reasons="The host authority found the order disproportionate.",
    )
    assert v["state"] == "reinstated" and v["items"][0]["reinstated_after"] == "scrutiny"
    with pytest.raises(Conflict):
        orders.record_scrutiny(
            ctx, world.p("authority"), oid, outcome=ScrutinyOutcome.UPHELD, reasons=None
        )
    run_jobs(ctx)
    assert json.loads(webhooks.sent[-1][1])["type"] == "content.reinstate"
    with ctx.sessions() as s:
        case = s.get(Case, s.scalar(select(Case.id).order_by(Case.id.desc()).limit(1)))
        assert case is not None and case.state == "no_action"
    stats = orders.order_statistics(ctx, world.p("legal"), 2026)
    assert stats["scrutiny"]["infringement_found"] == 1
    assert stats["reinstatements"] == {"after_scrutiny": 1}


def test_scrutiny_before_execution_annuls_the_order(world: World, clock: Clock) -> None:
    r = receive(world, clock, issuing_member_state="DE", host_member_state="BE")
    v = orders.record_scrutiny(
        world.ctx,
        world.p("authority"),
        uuid.UUID(r.order_id),
        outcome=ScrutinyOutcome.INFRINGEMENT_FOUND,
        reasons="Serious infringement of freedom of expression found.",
    )
    assert v["state"] == "annulled" and v["deadline_at"] is None
    clock.advance(hours=2)
    assert orders.escalate_due(world.ctx) == 0


# --- Art 3(2) first order, receipts, who sees what -----------------------------------------------


def test_the_first_order_rule_is_recorded_and_flagged(world: World, clock: Clock) -> None:
    first = receive(world, clock)
    assert first.first_order is True and first.first_order_notice_ok is False
    second = receive(world, clock, content_urls=["https://host-a.example.org/v/5"])
    assert second.first_order is False and second.first_order_notice_ok is None
    informed = orders.receive_order(
        world.ctx,
        world.p("authority"),
        order_body(
            clock,
            addressee="host-b",
            content_urls=["https://host-b.example.org/a"],
            prior_information_at=(clock() - timedelta(hours=13)).isoformat(),
        ),
    )
    assert informed.first_order is True and informed.first_order_notice_ok is True
    numbers = orders.order_statistics(world.ctx, world.p("authority"), 2026)["orders"]
    assert numbers["first_orders_without_prior_information"] == 1


def test_the_receipt_can_be_verified_later(world: World, clock: Clock) -> None:
    r = receive(world, clock)
    receipt = view(world, r.order_id, "authority")["receipt"]
    assert receipt["verified"] is True and receipt["hash"] == r.receipt_hash
    with world.ctx.sessions() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "removal_order.received"))
        assert entry is not None and entry.data["receipt_hash"] == r.receipt_hash
        assert entry.seq == receipt["audit_seq"]
        s.execute(
            text("UPDATE removal_orders SET received_body = replace(received_body, 'BE', 'FR')")
        )
        s.commit()
    assert view(world, r.order_id)["receipt"]["verified"] is False


def test_other_organisations_see_nothing(world: World, clock: Clock) -> None:
    ctx = world.ctx
    r = receive(world, clock)
    oid = uuid.UUID(r.order_id)
    for who in ("other_reviewer", "other_admin", "researcher"):
        with pytest.raises(NotFound):
            orders.get_order(ctx, world.p(who), oid)
        assert orders.list_orders(ctx, world.p(who))[1] == 0
    with pytest.raises(NotFound):
        orders.execute_order(ctx, world.p("other_reviewer"), oid)
    with pytest.raises(Forbidden):
        orders.execute_order(ctx, world.p("authority"), oid)
    with pytest.raises(Forbidden):
        orders.get_order(ctx, world.p("reporter"), oid)
    items, total = orders.list_orders(ctx, world.p("complaints"))
    assert total == 1 and items[0]["id"] == r.order_id
    assert orders.list_orders(ctx, world.p("authority"))[1] == 1
    # The authority does not see the provider's internal records.
    assert view(world, r.order_id, "authority")["items"][0]["case_id"] is None


def test_orders_come_first_in_the_queue(world: World, clock: Clock) -> None:
    from cleanit.domain.notices import SourceType
    from cleanit.services import cases, notices
    from tests.world import notice

    notices.receive_notice(
        world.ctx,
        world.p("analyst"),
        notice("https://host-a.example.org/v/2", source=SourceType.REFERRAL_UNIT),
    )
    r = receive(
        world,
        clock,
        content_urls=["https://host-a.example.org/v/2", "https://host-a.example.org/v/3"],
    )
    queue, _ = cases.list_cases(world.ctx, world.p("reviewer"))
    assert {c.id for c in queue[:2]} == set(r.case_ids) and queue[0].priority == 0


def test_escalation_webhook_failures_are_retried(
    world: World, clock: Clock, webhooks: RecordingWebhooks
) -> None:
    receive(world, clock)
    clock.advance(minutes=30)
    assert orders.escalate_due(world.ctx) == 1
    with world.ctx.sessions() as s:
        esc = s.scalar(select(RemovalOrderEscalation))
        assert esc is not None and esc.webhook_status == "pending"
    webhooks.fail_with = ConnectionError("platform down")
    with pytest.raises(orders.EscalationWebhookFailed):
        orders.send_escalation_webhook(world.ctx, esc.id)
    webhooks.fail_with = None
    assert orders.send_escalation_webhook(world.ctx, esc.id) == "sent"
    assert orders.send_escalation_webhook(world.ctx, esc.id) == "sent"
    assert len(webhooks.sent) == 1


def test_escalation_jobs_are_scheduled_at_the_due_times(world: World, clock: Clock) -> None:
    receive(world, clock)
    with world.ctx.sessions() as s:
        rows = s.execute(
            text(
                "SELECT scheduled_at, priority FROM procrastinate_jobs "
                "WHERE task_name = 'orders.escalate' ORDER BY scheduled_at"
            )
        ).all()
    deadline = T0 + timedelta(hours=1)
    assert [r[0] for r in rows] == [
        deadline - timedelta(minutes=30),
        deadline - timedelta(minutes=15),
        deadline - timedelta(minutes=5),
        deadline + timedelta(seconds=1),
    ]
    assert {r[1] for r in rows} == {10}


def test_the_platform_confirms_each_url(
    world: World, clock: Clock, webhooks: RecordingWebhooks
) -> None:
    """With a 202 the platform confirms later; the order is executed at the last confirmation."""
    ctx = world.ctx
    webhooks.status = 202
    r = receive(
        world,
        clock,
        content_urls=["https://host-a.example.org/v/1", "https://host-a.example.org/v/2"],
    )
    orders.execute_order(ctx, world.p("reviewer"), uuid.UUID(r.order_id))
    run_jobs(ctx)
    with ctx.sessions() as s:
        actions = list(s.scalars(select(PlatformAction).order_by(PlatformAction.id)))
    clock.advance(minutes=3)
    platform.acknowledge(ctx, world.p("admin"), actions[0].public_id)
    assert view(world, r.order_id)["state"] == "received"
    clock.advance(minutes=3)
    platform.acknowledge(ctx, world.p("admin"), actions[1].public_id)
    v = view(world, r.order_id)
    assert v["state"] == "executed" and v["executed_at"] == clock().isoformat()
