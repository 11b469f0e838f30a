"""A hand-built year of moderation at host-a with known numbers, for the report tests.

Timeline (UTC, clock controlled), all in March 2026 unless said otherwise:
- T0      end-user notice (risk for public security) → +2 h removed by a reviewer
- T0+2h   trusted-flagger notice (violence)           → +4 h no action
- T0+6h   own-initiative notice (scams)               → +6 h removed, automated detection,
                                                         partially automated decision
- +1 day  the uploader complains about the automated removal → +3 h reversed
- +1 h    the uploader complains about the first removal     → +5 h upheld
- 2027-01-05: one more end-user notice (outside 2026).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from cleanit.adapters.db.models import Statement
from cleanit.domain.assessments import AssessmentRequest, Finding
from cleanit.domain.complaints import ComplaintOutcome
from cleanit.domain.decisions import Action, AutomatedDecision, DecisionRequest
from cleanit.domain.notices import Category, SourceType
from cleanit.services import assessments, complaints, decisions, notices
from cleanit.services.context import Context
from tests.world import World, build_world, notice

T0 = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def move(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Year:
    world: World
    clock: Clock


def _url(n: int) -> str:
    return f"https://host-a.example.org/v/{n}"


def _remove(w: World, case_id: int, **kw: object) -> int:
    a = assessments.assess(
        w.ctx,
        w.p("reviewer"),
        case_id,
        AssessmentRequest(
            finding=Finding.INCOMPATIBLE_WITH_TERMS,
            explanation="Praises an invented violent group.",
            terms_clause_version_id=w.clause_version_id,
        ),
    )
    d = decisions.decide_case(
        w.ctx,
        w.p("reviewer"),
        case_id,
        DecisionRequest(
            action=Action.REMOVE,
            facts="The video shows the invented group's flag with a call to join.",
            assessment_id=a.id,
            **kw,  # type: ignore[arg-type]
        ),
    )
    return d.id


def _complain(ctx: Context, decision_id: int) -> uuid.UUID:
    with ctx.sessions() as s:
        st = s.scalar(select(Statement).where(Statement.decision_id == decision_id))
        assert st is not None
        link = st.body["redress"]["internal_complaint"]["url"]
    r = complaints.lodge_complaint(
        ctx,
        grounds="This is my own invented drawing, not anything forbidden.",
        statement_id=uuid.UUID(link.split("statement=")[1].split("&")[0]),
        code=link.split("code=")[1],
    )
    return uuid.UUID(r.complaint_id)


def build_year(ctx: Context) -> Year:
    clock = Clock(T0 - timedelta(days=30))
    ctx.clock = clock
    w = build_world(ctx)
    clock.now = T0
    n1 = notices.receive_notice(ctx, w.p("reporter"), notice(_url(1)))
    clock.move(timedelta(hours=2))
    d1 = _remove(w, n1.case_ids[0])
    n2 = notices.receive_notice(
        ctx,
        w.p("flagger"),
        notice(_url(2), source=SourceType.TRUSTED_FLAGGER, category=Category.VIOLENCE),
    )
    clock.move(timedelta(hours=4))
    decisions.decide_case(
        ctx,
        w.p("reviewer"),
        n2.case_ids[0],
        DecisionRequest(action=Action.NO_ACTION, facts="Documentary footage, no praise."),
    )
    n3 = notices.receive_notice(
        ctx,
        w.p("reviewer"),
        notice(
            _url(3),
            source=SourceType.OWN_INITIATIVE,
            category=Category.SCAMS_AND_FRAUD,
            notifier_name=None,
            notifier_email=None,
        ),
    )
    clock.move(timedelta(hours=6))
    d3 = _remove(
        w,
        n3.case_ids[0],
        automated_detection=True,
        automated_decision=AutomatedDecision.PARTIALLY,
    )
    clock.move(timedelta(days=1))
    c3 = _complain(ctx, d3)
    clock.move(timedelta(hours=3))
    complaints.decide_complaint(
        ctx,
        w.p("complaints"),
        c3,
        outcome=ComplaintOutcome.REVERSED,
        reasons="A person looked again: wrongly removed.",
    )
    clock.move(timedelta(hours=1))
    c1 = _complain(ctx, d1)
    clock.move(timedelta(hours=5))
    complaints.decide_complaint(
        ctx,
        w.p("complaints"),
        c1,
        outcome=ComplaintOutcome.UPHELD,
        reasons="The removal stands: it calls on people to join.",
    )
    clock.now = datetime(2027, 1, 5, 9, 0, tzinfo=UTC)
    notices.receive_notice(ctx, w.p("reporter"), notice(_url(4)))
    return Year(w, clock)
