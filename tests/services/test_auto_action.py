"""auto_action banks: a confirmed match takes the bank's decision, fully automated, through
the same decision path as a person's (real PostgreSQL, invented images)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from cleanit.adapters.db.models import (
    Assessment,
    AuditEntry,
    Case,
    Decision,
    PlatformAction,
    Statement,
)
from cleanit.adapters.matching.live import MatchIndexes
from cleanit.domain.complaints import ComplaintOutcome
from cleanit.domain.errors import Forbidden, InvalidInput
from cleanit.services import banks, complaints, matching
from cleanit.services.context import Context
from tests.services.test_matching import COPY, ORIGINAL, encode, md5_of, pdq_of, picture
from tests.world import World, build_world


@pytest.fixture
def world(ctx: Context) -> World:
    ctx.matching = MatchIndexes(refresh_interval=0, flood_limit=2)
    return build_world(ctx)


def auto_bank(w: World, name: str = "auto", action: str = "disable_access") -> banks.BankView:
    return banks.create_bank(
        w.ctx,
        w.p("admin"),
        name=name,
        mode="auto_action",
        auto_action=action,
        auto_terms_clause_version_id=w.clause_version_id,
    )


def decisions_of(ctx: Context, case_id: int) -> list[Decision]:
    with ctx.sessions() as s:
        return list(
            s.scalars(select(Decision).where(Decision.case_id == case_id).order_by(Decision.id))
        )


def test_configuring_an_auto_action_bank_is_checked(world: World) -> None:
    ctx, admin = world.ctx, world.p("admin")
    b = auto_bank(world)
    assert (b.mode, b.auto_action, b.auto_terms_clause_version_id) == (
        "auto_action",
        "disable_access",
        world.clause_version_id,
    )
    cases = [
        ({"auto_action": "suspend_account"}, "auto_action"),  # never the account
        ({"auto_action": "geo_block"}, "auto_action"),
        ({"auto_action": "no_action"}, "auto_action"),
        ({"auto_terms_clause_version_id": None, "auto_action": "remove"}, "auto_terms"),
        ({"auto_terms_clause_version_id": 999_999}, "auto_terms_clause_version_id"),
    ]
    for i, (given, field) in enumerate(cases):
        kw = {
            "auto_action": "remove",
            "auto_terms_clause_version_id": world.clause_version_id,
            **given,
        }
        with pytest.raises(InvalidInput) as exc:
            banks.create_bank(ctx, admin, name=f"bad {i}", mode="auto_action", **kw)  # type: ignore[arg-type]
        assert exc.value.field is not None and exc.value.field.startswith(field)
    with pytest.raises(InvalidInput):  # a negative bank never acts
        banks.create_bank(
            ctx,
            admin,
            name="neg",
            negative=True,
            mode="auto_action",
            auto_action="remove",
            auto_terms_clause_version_id=world.clause_version_id,
        )
    with pytest.raises(InvalidInput):  # a review bank takes no action
        banks.create_bank(ctx, admin, name="rev", auto_action="remove")
    with pytest.raises(InvalidInput):  # another provider's terms clause
        banks.create_bank(
            ctx,
            world.p("other_admin"),
            name="theirs",
            mode="auto_action",
            auto_action="remove",
            auto_terms_clause_version_id=world.clause_version_id,
        )
    for who in ("reviewer", "analyst"):  # cannot manage banks; not a hosting provider
        with pytest.raises(Forbidden):
            banks.create_bank(
                ctx,
                world.p(who),
                name="not allowed",
                mode="auto_action",
                auto_action="remove",
                auto_terms_clause_version_id=world.clause_version_id,
            )
    assert banks.create_bank(ctx, world.p("analyst"), name="iru review").mode == "review"
    # Back to review clears the settings; an unrelated change keeps them.
    kept = banks.update_bank(ctx, admin, b.id, enabled=True, auto_action="remove")
    assert (kept.mode, kept.auto_action) == ("auto_action", "remove")
    back = banks.update_bank(ctx, admin, b.id, mode="review")
    assert (back.mode, back.auto_action, back.auto_terms_clause_version_id) == (
        "review",
        None,
        None,
    )


def test_a_confirmed_match_decides_automatically_and_a_person_decides_the_complaint(
    world: World,
) -> None:
    ctx, admin = world.ctx, world.p("admin")
    b = auto_bank(world)
    e = banks.add_entry(ctx, admin, b.id, signal_type="pdq", value=pdq_of(ORIGINAL))
    url = "https://host-a.example.org/v/auto-1"
    r = matching.match_content(ctx, world.p("reviewer"), data=COPY, url=url)
    assert r.case_id is not None
    (d,) = decisions_of(ctx, r.case_id)
    assert (d.status, d.action, d.ground) == ("in_force", "disable_access", "incompatible_content")
    assert d.automated_detection is True and d.automated_decision == "fully"
    assert d.decided_by is None
    with ctx.sessions() as s:
        case = s.get(Case, r.case_id)
        assert case is not None and case.state == "actioned"
        a = s.get(Assessment, d.assessment_id)
        assert a is not None and a.automated and a.author_id is None
        assert (a.status, a.finding) == ("confirmed", "incompatible_with_terms")
        assert a.terms_clause_version_id == world.clause_version_id
        st = s.scalar(select(Statement).where(Statement.decision_id == d.id))
        assert st is not None
        assert st.body["automated_means"] == {
            "automated_detection": True,
            "automated_decision": "fully",
        }
        assert "fully automated" in st.text
        pa = s.scalar(select(PlatformAction).where(PlatformAction.decision_id == d.id))
        assert pa is not None and (pa.kind, pa.action) == ("restrict", "disable_access")
        taken = s.scalar(
            select(AuditEntry).where(
                AuditEntry.action == "decision.taken", AuditEntry.entity_id == str(r.case_id)
            )
        )
        assert taken is not None and taken.actor == f"system:auto-action:bank:{b.id}"
        assert taken.data["entry"] == e.id and taken.data["automated"] is True
    evidence = matching.case_matches(ctx, world.p("reviewer"), r.case_id)
    assert [x.entry_id for x in evidence] == [e.id]
    # The same content again joins the case; the decision in force is not taken twice.
    again = matching.match_content(ctx, world.p("reviewer"), data=ORIGINAL, url=url)
    assert again.case_id == r.case_id and len(decisions_of(ctx, r.case_id)) == 1

    # Redress: the uploader complains; a person (complaints officer) reverses it.
    link = st.body["redress"]["internal_complaint"]["url"]
    statement_id = uuid.UUID(link.split("statement=")[1].split("&")[0])
    rc = complaints.lodge_complaint(
        ctx,
        grounds="This is my own invented drawing, not anything listed.",
        statement_id=statement_id,
        code=link.split("code=")[1],
    )
    c = complaints.decide_complaint(
        ctx,
        world.p("complaints"),
        uuid.UUID(rc.complaint_id),
        outcome=ComplaintOutcome.REVERSED,
        reasons="A person looked: an invented drawing, wrongly matched.",
    )
    assert c.outcome == "reversed" and c.new_decision_id is not None
    old, new = decisions_of(ctx, r.case_id)
    assert (old.status, new.status, new.action) == ("superseded", "in_force", "no_action")
    assert new.decided_by == world.user_ids["complaints"]
    assert new.automated_decision == "not_automated"
    with ctx.sessions() as s:
        kinds = s.scalars(
            select(PlatformAction.kind)
            .join(Decision, Decision.id == PlatformAction.decision_id)
            .where(Decision.case_id == r.case_id)
            .order_by(PlatformAction.id)
        ).all()
        assert kinds == ["restrict", "reinstate"]


def test_a_negative_match_or_a_quarantined_entry_never_acts(world: World) -> None:
    ctx, admin = world.ctx, world.p("admin")
    b = auto_bank(world)
    fp = banks.create_bank(ctx, admin, name="false positives", negative=True)
    banks.add_entry(ctx, admin, b.id, signal_type="pdq", value=pdq_of(ORIGINAL))
    banks.add_entry(ctx, admin, fp.id, signal_type="md5", value=md5_of(ORIGINAL))
    r = matching.match_content(
        ctx, world.p("reviewer"), data=ORIGINAL, url="https://host-a.example.org/v/neg"
    )
    assert [m.suppressed for m in r.matches if m.bank_id == b.id] == [True]
    assert r.case_id is None
    with ctx.sessions() as s:
        assert s.scalar(select(Decision.id)) is None

    # Flood limit 2 here: the third distinct item quarantines the entry; nothing is decided.
    flood = auto_bank(world, "flood")
    banks.add_entry(ctx, admin, flood.id, signal_type="pdq", value=pdq_of(encode(picture(5))))
    variants = [encode(picture(5), "JPEG", quality=q) for q in (95, 80, 65)]
    for v in variants[:2]:
        assert matching.match_content(ctx, world.p("reviewer"), data=v).case_id is None
    third = matching.match_content(
        ctx, world.p("reviewer"), data=variants[2], url="https://host-a.example.org/v/flood"
    )
    assert [m.quarantined for m in third.matches] == [True]
    assert third.case_id is None
    later = matching.match_content(
        ctx, world.p("reviewer"), data=variants[0], url="https://host-a.example.org/v/flood2"
    )
    assert later.matches == [] and later.case_id is None
    with ctx.sessions() as s:
        assert s.scalar(select(Decision.id)) is None


def test_a_review_bank_only_opens_a_case(world: World) -> None:
    ctx, admin = world.ctx, world.p("admin")
    b = banks.create_bank(ctx, admin, name="review")
    banks.add_entry(ctx, admin, b.id, signal_type="pdq", value=pdq_of(ORIGINAL))
    r = matching.match_content(
        ctx, world.p("reviewer"), data=COPY, url="https://host-a.example.org/v/review"
    )
    assert r.case_id is not None
    assert decisions_of(ctx, r.case_id) == []
    with ctx.sessions() as s:
        case = s.get(Case, r.case_id)
        assert case is not None and case.state == "open"


def test_a_case_a_person_already_handles_is_left_to_them(world: World) -> None:
    ctx, admin = world.ctx, world.p("admin")
    review = banks.create_bank(ctx, admin, name="review")
    banks.add_entry(ctx, admin, review.id, signal_type="pdq", value=pdq_of(ORIGINAL))
    url = "https://host-a.example.org/v/taken"
    first = matching.match_content(ctx, world.p("reviewer"), data=COPY, url=url)
    assert first.case_id is not None
    with ctx.transaction() as s:
        case = s.get(Case, first.case_id)
        assert case is not None
        case.state, case.assignee_id = "in_review", world.user_ids["reviewer"]
    auto = auto_bank(world)
    banks.add_entry(ctx, admin, auto.id, signal_type="md5", value=md5_of(ORIGINAL))
    r = matching.match_content(ctx, world.p("reviewer"), data=ORIGINAL, url=url)
    assert r.case_id == first.case_id
    assert decisions_of(ctx, first.case_id) == []
