"""Evaluation metrics over a small world built through the services on a controlled clock;
every expected number is computed by hand in the comments."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from cleanit.adapters.db.models import Statement
from cleanit.domain.assessments import AssessmentRequest, Finding
from cleanit.domain.complaints import ComplaintOutcome
from cleanit.domain.decisions import Action, DecisionRequest
from cleanit.domain.errors import Forbidden, InvalidInput, NotFound
from cleanit.domain.notices import SourceType
from cleanit.services import assessments, banks, complaints, content, decisions, matching
from cleanit.services import notices as notice_service
from cleanit.services.context import Context
from cleanit.services.evaluation import evaluation_metrics, parse_period
from tests.services.test_matching import encode, md5_of, picture
from tests.services.test_workflow import run_jobs
from tests.world import World, build_world, notice

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
# Planted in every free-text and personal field; no research export may contain it.
MARK = "ZZMARKER"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, hours: float) -> None:
        self.now = T0 + timedelta(hours=hours)


@dataclass
class Built:
    world: World
    clock: Clock
    decisions: dict[str, int] = field(default_factory=dict)


def _url(name: str) -> str:
    return f"https://host-a.example.org/v/{name}-{MARK}-url"


def _remove(w: World, case_id: int) -> int:
    a = assessments.assess(
        w.ctx,
        w.p("reviewer"),
        case_id,
        AssessmentRequest(
            finding=Finding.INCOMPATIBLE_WITH_TERMS,
            explanation=f"Praises an invented violent group {MARK}-assessment.",
            terms_clause_version_id=w.clause_version_id,
        ),
    )
    d = decisions.decide_case(
        w.ctx,
        w.p("reviewer"),
        case_id,
        DecisionRequest(
            action=Action.REMOVE, facts=f"Shows an invented flag {MARK}-facts.", assessment_id=a.id
        ),
    )
    return d.id


def _complain(w: World, decision_id: int) -> uuid.UUID:
    with w.ctx.sessions() as s:
        body = s.scalar(select(Statement.body).where(Statement.decision_id == decision_id))
    assert body is not None
    link = body["redress"]["internal_complaint"]["url"]
    r = complaints.lodge_complaint(
        w.ctx,
        grounds=f"This is satire of a film {MARK}-grounds.",
        statement_id=uuid.UUID(link.split("statement=")[1].split("&")[0]),
        code=link.split("code=")[1],
        contact_email=f"{MARK.lower()}-complainant@users.example.net",
    )
    return uuid.UUID(r.complaint_id)


def build(ctx: Context) -> Built:
    """N1, N4 from the public, N2, N3 from a trusted flagger, all received at T0.

    decision times (h): N1 2, N3 5 (no action), N2 10, N4 100
    action times (h, platform acknowledged): N1 3, N2 30, N4 100
    complaints: against N1 upheld, against N4 reversed (both terms-clause, human)
    N4's content, removed, is uploaded again at +130 h and matches a bank entry from N4.
    """
    clock = Clock()
    ctx.clock = clock
    w = build_world(ctx)
    b = Built(w, clock)
    case: dict[str, int] = {}
    for name, who, source in (
        ("n1", "reporter", SourceType.END_USER),
        ("n2", "flagger", SourceType.TRUSTED_FLAGGER),
        ("n3", "flagger", SourceType.TRUSTED_FLAGGER),
        ("n4", "reporter", SourceType.END_USER),
    ):
        content.register_content(
            ctx,
            w.p("admin"),
            url=_url(name),
            uploader_ref=f"{MARK}-uploader-{name}",
            uploader_email=f"{MARK.lower()}-uploader-{name}@users.example.net",
        )
        draft = notice(
            _url(name),
            source=source,
            explanation=f"It calls on people to join a group {MARK}-explanation.",
            notifier_name=f"Pat {MARK}-name",
            notifier_email=f"{MARK.lower()}-pat@public.example.net",
        )
        case[name] = notice_service.receive_notice(ctx, w.p(who), draft).case_ids[0]
    clock.at(2)
    b.decisions["n1"] = _remove(w, case["n1"])
    clock.at(3)
    run_jobs(ctx)
    clock.at(5)
    decisions.decide_case(
        ctx,
        w.p("reviewer"),
        case["n3"],
        DecisionRequest(action=Action.NO_ACTION, facts=f"Nothing unlawful {MARK}-facts."),
    )
    clock.at(10)
    b.decisions["n2"] = _remove(w, case["n2"])
    clock.at(15)
    c1 = _complain(w, b.decisions["n1"])
    clock.at(20)
    complaints.decide_complaint(
        ctx,
        w.p("complaints"),
        c1,
        outcome=ComplaintOutcome.UPHELD,
        reasons=f"The removal stands {MARK}-reasons.",
    )
    clock.at(30)
    run_jobs(ctx)
    clock.at(100)
    b.decisions["n4"] = _remove(w, case["n4"])
    run_jobs(ctx)
    clock.at(110)
    c4 = _complain(w, b.decisions["n4"])
    clock.at(120)
    complaints.decide_complaint(
        ctx,
        w.p("complaints"),
        c4,
        outcome=ComplaintOutcome.REVERSED,
        reasons=f"Satire after all {MARK}-reasons.",
    )
    run_jobs(ctx)
    # The removed picture comes back: its hash was banked from the N4 removal.
    data = encode(picture(4))
    bank = banks.create_bank(ctx, w.p("admin"), name="removed")
    banks.add_entry(
        ctx,
        w.p("admin"),
        bank.id,
        signal_type="md5",
        value=md5_of(data),
        source=f"decision:{b.decisions['n4']}",
    )
    clock.at(130)
    matching.match_content(ctx, w.p("reviewer"), data=data, url=_url("again"))
    return b


@pytest.fixture
def built(ctx: Context) -> Built:
    return build(ctx)


def test_metrics_match_the_hand_computed_values(built: Built) -> None:
    w = built.world
    start, end = parse_period("2026")
    m = evaluation_metrics(
        w.ctx, w.p("auditor"), organisation_slug="host-a", period_start=start, period_end=end
    )
    # Decision hours [2, 5, 10, 100]: percentile_cont interpolates between ranks.
    assert m.notice_to_decision.count == 4
    assert m.notice_to_decision.percentiles_hours == {
        "p10": 2.9,  # 2 + 0.3 * (5 - 2)
        "p50": 7.5,  # (5 + 10) / 2
        "p90": 73.0,  # 10 + 0.7 * (100 - 10)
        "p99": 97.3,  # 10 + 0.97 * 90
    }
    assert m.notice_to_decision.buckets == {
        "0-1h": 0,
        "1-6h": 2,
        "6-24h": 1,
        "24-72h": 0,
        "72-168h": 1,
        "168-720h": 0,
        "720h+": 0,
    }
    # Action hours [3, 30, 100] (the no-action case has no platform action).
    assert m.notice_to_action.count == 3
    assert m.notice_to_action.percentiles_hours["p50"] == 30.0
    assert m.notice_to_action.buckets["1-6h"] == 1
    assert m.notice_to_action.buckets["24-72h"] == 1
    assert m.notice_to_action.buckets["72-168h"] == 1
    assert (m.reappearance_matches, m.reappearance_cases, m.reappearance_source_decisions) == (
        1,
        1,
        1,
    )
    assert m.complaints_by_basis["terms_clause"] == {
        "decided": 2,
        "reversed": 1,
        "modified": 0,
        "reversal_rate": 0.5,
    }
    assert m.complaints_by_basis["legal_provision"]["decided"] == 0
    assert m.complaints_by_automation["human"]["reversal_rate"] == 0.5
    assert m.complaints_by_automation["automated"]["decided"] == 0
    # Trusted flagger: N2 actioned, N3 no action → 1 of 2.
    assert (m.trusted_flagger_notices, m.trusted_flagger_decided) == (2, 2)
    assert m.trusted_flagger_actioned == 1 and m.trusted_flagger_precision == 0.5
    assert (m.orders_received, m.orders_missed) == (0, 0)
    csv_text = m.as_csv()
    assert "notice_to_decision,p50_hours,7.5" in csv_text
    assert "trusted_flagger,precision,0.5" in csv_text
    assert m.as_json()["trusted_flagger_precision"] == 0.5


def test_another_period_and_another_organisation(built: Built) -> None:
    w = built.world
    start, end = parse_period("2026-02")
    m = evaluation_metrics(
        w.ctx, w.p("auditor"), organisation_slug=None, period_start=start, period_end=end
    )
    assert m.organisation == "host-a" and m.notice_to_decision.count == 0
    assert m.notice_to_decision.percentiles_hours["p50"] is None
    with pytest.raises(NotFound):
        evaluation_metrics(
            w.ctx,
            w.p("other_admin"),
            organisation_slug="host-a",
            period_start=start,
            period_end=end,
        )
    with pytest.raises(Forbidden):
        evaluation_metrics(
            w.ctx, w.p("reviewer"), organisation_slug="host-a", period_start=start, period_end=end
        )


def test_period_parsing() -> None:
    assert parse_period("2026") == (
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert parse_period("2026-12") == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert parse_period("2026-Q2")[1] == datetime(2026, 7, 1, tzinfo=UTC)
    # The same reader as the transparency reports: explicit ranges too, end exclusive.
    assert parse_period("2026-02-01..2026-02-15") == (
        datetime(2026, 2, 1, tzinfo=UTC),
        datetime(2026, 2, 15, tzinfo=UTC),
    )
    for bad in ("last year", "2026-13", "2026-03-01..2026-02-01"):
        with pytest.raises(InvalidInput):
            parse_period(bad)
