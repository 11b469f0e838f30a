"""Law-enforcement requests (Clean IT BP10) and threat-to-life referrals (TCO Art 14(5)) on a
real PostgreSQL: validated requests, reasoned decisions, a disclosure log that never goes
beyond the recorded scope, and an urgent hand-off that reaches the right mailbox."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from cleanit.adapters.db.models import (
    AuditEntry,
    InvestigationDisclosure,
    Message,
    ThreatToLifeReferral,
)
from cleanit.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PrincipleViolation,
)
from cleanit.domain.roles import OrgKind
from cleanit.services import (
    content,
    investigations,
    notices,
    organisations,
    preservation,
    threat_to_life,
)
from cleanit.services.context import Context
from tests.preservation_support import START, Clock, deliver_all, hold_of, removed
from tests.world import World, build_world, notice

PURPOSE = {"purpose": "investigation", "reason": "Investigation 2026/77 into an invented group"}
REASONS = "A dated threat to attack an invented school in Lyon next Monday at 08:00."


@pytest.fixture
def world(ctx: Context) -> World:
    ctx.clock = Clock()
    return build_world(ctx)


def request(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "provider": "host-a",
        "requesting_authority": "Invented Federal Police, unit 3",
        "reference": "IFP-2026-0042",
        "kind": "disclosure",
        "legal_basis": "Order of the invented investigating judge of 30 August 2026.",
        "provision": "Code of Criminal Procedure, Art 46bis (BE)",
        "subject": "Account u-77 and the video at https://host-a.example.org/v/inv",
        "scope": ["account_metadata", "ip_logs", "content"],
        "deadline": (START + timedelta(days=10)).isoformat(),
    }
    body.update(over)
    return body


def audited(ctx: Context, action: str) -> list[AuditEntry]:
    with ctx.sessions() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_an_authority_files_a_request_and_bad_ones_are_refused_precisely(world: World) -> None:
    ctx = world.ctx
    for who in ("legal", "analyst", "flagger"):
        with pytest.raises(Forbidden):
            investigations.submit_request(ctx, world.p(who), request())
    bad = [
        (request(legal_basis=""), "legal_basis"),
        (request(scope=["content", "passwords"]), "scope[1]"),
        (request(deadline=(START - timedelta(hours=1)).isoformat()), "deadline"),
        (request(provider="iru"), "provider"),
        (request(provider="nobody"), "provider"),
        (request(case_id=10**6), "case_id"),
        (request(kind="seize"), "kind"),
    ]
    for body, field in bad:
        with pytest.raises(InvalidInput) as exc:
            investigations.submit_request(ctx, world.p("authority"), body)
        assert exc.value.field == field, (body, exc.value.detail)
    r = investigations.submit_request(ctx, world.p("authority"), request())
    assert (r.status, r.scope) == ("open", ["account_metadata", "content", "ip_logs"])
    assert r.authority_organisation_id == world.org_ids["authority"]
    [entry] = audited(ctx, "investigation.received")
    assert entry.organisation_id == world.org_ids["host-a"]
    # The provider and the authority see it; another provider does not.
    assert [x.id for x in investigations.list_requests(ctx, world.p("legal"))] == [r.id]
    assert [x.id for x in investigations.list_requests(ctx, world.p("authority"))] == [r.id]
    assert [x.id for x in investigations.list_requests(ctx, world.p("auditor"))] == [r.id]
    with pytest.raises(Forbidden):
        investigations.list_requests(ctx, world.p("other_admin"))
    # An auditor elsewhere (the research organisation): as if it did not exist.
    assert investigations.list_requests(ctx, world.p("researcher")) == []
    with pytest.raises(NotFound):
        investigations.get_request(ctx, world.p("researcher"), r.id)


def test_decisions_need_reasons_and_are_taken_once(world: World) -> None:
    ctx = world.ctx
    r = investigations.submit_request(ctx, world.p("authority"), request())
    with pytest.raises(Forbidden):
        investigations.decide(ctx, world.p("reviewer"), r.id, "comply")
    with pytest.raises(InvalidInput) as no_reasons:
        investigations.decide(ctx, world.p("legal"), r.id, "refuse")
    assert no_reasons.value.field == "reasons"
    with pytest.raises(InvalidInput):
        investigations.decide(
            ctx, world.p("legal"), r.id, "partly", categories=["ip_logs"], reasons="short"
        )
    with pytest.raises(PrincipleViolation):  # a part outside the scope
        investigations.decide(
            ctx,
            world.p("legal"),
            r.id,
            "partly",
            categories=["uploader_contact"],
            reasons="Only what the order names precisely.",
        )
    decided = investigations.decide(
        ctx,
        world.p("legal"),
        r.id,
        "partly",
        categories=["account_metadata", "ip_logs"],
        reasons="The content itself was already handed over under request IFP-2026-0041.",
    )
    assert (decided.status, decided.decision) == ("decided", "partly")
    assert decided.decided_categories == ["account_metadata", "ip_logs"]
    with pytest.raises(Conflict):
        investigations.decide(ctx, world.p("legal2"), r.id, "comply")
    [entry] = audited(ctx, "investigation.decided")
    assert entry.data["decision"] == "partly"


def test_nothing_is_disclosed_outside_the_scope_or_beyond_the_decision(world: World) -> None:
    ctx = world.ctx
    r = investigations.submit_request(ctx, world.p("authority"), request())
    note = "Exported CSV of login IPs sent by encrypted mail to the unit."
    with pytest.raises(Conflict):  # not decided yet
        investigations.disclose(ctx, world.p("legal"), r.id, ["ip_logs"], note=note)
    investigations.decide(
        ctx,
        world.p("legal"),
        r.id,
        "partly",
        categories=["ip_logs"],
        reasons="Account metadata is not covered by the judge's order as worded.",
    )
    with pytest.raises(PrincipleViolation) as outside:
        investigations.disclose(
            ctx, world.p("legal"), r.id, ["ip_logs", "uploader_contact"], note=note
        )
    assert "outside the scope" in outside.value.detail
    with pytest.raises(PrincipleViolation) as beyond:
        investigations.disclose(ctx, world.p("legal"), r.id, ["account_metadata"], note=note)
    assert "not part of the decision" in beyond.value.detail
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(InvestigationDisclosure)) == 0
    view = investigations.disclose(ctx, world.p("legal"), r.id, ["ip_logs"], note=note)
    assert [(d.categories, d.note) for d in view.disclosures] == [(["ip_logs"], note)]
    [entry] = audited(ctx, "investigation.disclosed")
    assert entry.data["categories"] == ["ip_logs"]
    # The authority sees the log of what it received.
    seen = investigations.get_request(ctx, world.p("authority"), r.id)
    assert len(seen.disclosures) == 1


def test_a_refused_request_discloses_nothing(world: World) -> None:
    ctx = world.ctx
    r = investigations.submit_request(ctx, world.p("authority"), request())
    investigations.decide(
        ctx, world.p("legal"), r.id, "refuse", reasons="No judicial authorisation was attached."
    )
    with pytest.raises(Conflict):
        investigations.disclose(
            ctx, world.p("legal"), r.id, ["content"], note="Should never be possible."
        )


def test_complying_with_a_preservation_request_preserves_and_gives_standing(
    world: World,
) -> None:
    ctx = world.ctx
    case_id, _ = removed(world, "https://host-a.example.org/v/inv")
    hold = hold_of(ctx, case_id)
    with pytest.raises(NotFound):  # no standing yet
        preservation.get_hold(ctx, world.p("authority"), hold.id)
    r = investigations.submit_request(
        ctx, world.p("authority"), request(kind="preservation", case_id=case_id)
    )
    assert investigations.decide(ctx, world.p("legal"), r.id, "comply").hold_id == hold.id
    with pytest.raises(Conflict) as nothing:  # a preservation request hands nothing over
        investigations.disclose(ctx, world.p("legal"), r.id, ["content"], note="x" * 20)
    assert "preservation request" in nothing.value.detail
    _, chunks = preservation.open_item(ctx, world.p("authority"), hold.id, "record.json", **PURPOSE)
    assert b"/v/inv" in b"".join(chunks)


def test_preserving_a_case_whose_content_is_still_up_starts_a_hold(world: World) -> None:
    ctx = world.ctx
    url = "https://host-a.example.org/v/still-up"
    case_id = notices.receive_notice(ctx, world.p("reporter"), notice(url)).case_ids[0]
    r = investigations.submit_request(
        ctx, world.p("authority"), request(kind="preservation", case_id=case_id)
    )
    decided = investigations.decide(ctx, world.p("legal"), r.id, "comply")
    hold = hold_of(ctx, case_id)
    assert decided.hold_id == hold.id and hold.decision_id is None
    assert hold.authority_org_ids == [world.org_ids["authority"]]
    assert hold.expires_at == START.replace(year=2027, month=2, day=28)


def test_a_threat_to_life_reaches_the_member_states_authority_at_once(
    world: World, mailbox: Path
) -> None:
    ctx = world.ctx
    fr = organisations.create_organisation(
        ctx,
        slug="invented-fr-police",
        name="Invented French Police",
        kind=OrgKind.COMPETENT_AUTHORITY,
        contact_email="duty@police-fr.example.org",
        country="fr",
    )
    case_id, _ = removed(world, "https://host-a.example.org/v/threat")
    for who in ("auditor", "admin", "analyst"):
        with pytest.raises((Forbidden, NotFound)):
            threat_to_life.refer_threat_to_life(ctx, world.p(who), case_id, "FR", REASONS)
    with pytest.raises(NotFound):
        threat_to_life.refer_threat_to_life(ctx, world.p("other_reviewer"), case_id, "FR", REASONS)
    with pytest.raises(InvalidInput) as unknown:
        threat_to_life.refer_threat_to_life(ctx, world.p("reviewer"), case_id, "XX", REASONS)
    assert unknown.value.field == "member_state"
    with pytest.raises(InvalidInput) as terse:
        threat_to_life.refer_threat_to_life(ctx, world.p("reviewer"), case_id, "FR", "urgent")
    assert terse.value.field == "reasons"

    ref = threat_to_life.refer_threat_to_life(ctx, world.p("reviewer"), case_id, "fr", REASONS)
    assert (ref.recipient, ref.recipient_organisation_id, ref.to_europol) == (
        "duty@police-fr.example.org",
        fr.id,
        False,
    )
    deliver_all(ctx)
    [mail] = list((mailbox / "duty@police-fr.example.org").glob("*.eml"))
    text = mail.read_text()
    assert "IMMINENT THREAT TO LIFE" in text and "invented school in Lyon" in text
    assert "https://host-a.example.org/v/threat" in text and "u-77" in text
    with ctx.sessions() as s:
        msg = s.get(Message, ref.message_id)
        assert msg is not None and msg.status == "sent"
        assert hashlib.sha256(msg.body.encode()).hexdigest() == ref.body_sha256
    [entry] = audited(ctx, "threat_to_life.referred")
    assert entry.entity_id == str(case_id) and entry.data["body_sha256"] == ref.body_sha256
    # The authority may now open the preserved data (with a purpose).
    hold = hold_of(ctx, case_id)
    assert fr.id in hold.authority_org_ids and ref.hold_id == hold.id


def test_without_a_known_authority_the_referral_goes_to_europol(
    world: World, mailbox: Path
) -> None:
    ctx = world.ctx
    url = "https://host-a.example.org/v/unclear"
    content.register_content(ctx, world.p("admin"), url=url, uploader_ref="u9", uploader_email=None)
    case_id = notices.receive_notice(ctx, world.p("reporter"), notice(url)).case_ids[0]
    # No decision yet: the referral preserves the case's data itself.
    ref = threat_to_life.refer_threat_to_life(ctx, world.p("legal"), case_id, None, REASONS)
    assert ref.to_europol and ref.recipient == "europol-referrals@example.invalid"
    also = threat_to_life.refer_threat_to_life(ctx, world.p("legal"), case_id, "DE", REASONS)
    assert also.to_europol  # no German authority known to cleanit
    assert also.hold_id == ref.hold_id  # the same hold, not a second copy
    deliver_all(ctx)
    assert len(list((mailbox / "europol-referrals@example.invalid").glob("*.eml"))) == 2
    with ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ThreatToLifeReferral)) == 2
