"""Transparency reports: exact numbers from a hand-built year, periods, renderers."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from cleanit.domain.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from cleanit.domain.roles import ANONYMOUS
from cleanit.services import report_formats, report_publications, reports
from cleanit.services.context import Context
from cleanit.services.reports import Row, Section
from tests.services.report_fixture import Year, build_year

Y2026 = reports.parse_period("2026")


@pytest.fixture
def year(ctx: Context) -> Year:
    return build_year(ctx)


def build(year: Year, kind: reports.ReportKind = "dsa", who: str = "auditor") -> reports.Report:
    return reports.build_report(
        year.world.ctx,
        year.world.p(who),
        organisation_slug="host-a",
        period_start=Y2026.start,
        period_end=Y2026.end,
        kind=kind,
    )


def test_periods() -> None:
    assert reports.parse_period("2026-Q2").start == datetime(2026, 4, 1, tzinfo=UTC)
    assert reports.parse_period("2026-Q4").end == datetime(2027, 1, 1, tzinfo=UTC)
    assert reports.parse_period("2026-12").end == datetime(2027, 1, 1, tzinfo=UTC)
    p = reports.parse_period("2026-01-01..2026-07-01")
    assert (p.start.month, p.end.month, p.calendar_year) == (1, 7, None)
    assert Y2026.calendar_year == 2026
    for bad in ("26", "2026-Q5", "2026-13", "2026-05-01..2026-01-01", "last year"):
        with pytest.raises(InvalidInput):
            reports.parse_period(bad)


def test_dsa_numbers_match_the_hand_built_year(year: Year) -> None:
    r = build(year)
    n = r.section("notices")
    assert n.value("received") == 3  # the 2027 notice is outside the period
    assert dict(n.breakdown("by_category")) == {
        "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY": 1,
        "STATEMENT_CATEGORY_SCAMS_AND_FRAUD": 1,
        "STATEMENT_CATEGORY_VIOLENCE": 1,
    }
    assert dict(n.breakdown("by_source_type")) == {
        "end_user": 1,
        "own_initiative": 1,
        "trusted_flagger": 1,
    }
    assert n.value("trusted_flagger") == 1
    d = r.section("decisions")
    assert d.value("total") == 3  # the complaint's replacement is not a new action
    assert dict(d.breakdown("by_action")) == {"no_action": 1, "remove": 2}
    assert dict(d.breakdown("by_ground")) == {"incompatible_content": 2, "none": 1}
    own = r.section("own_initiative")
    assert own.value("total") == 1 and dict(own.breakdown("by_action")) == {"remove": 1}
    a = r.section("automation")
    assert a.value("automated_detection") == 1
    assert dict(a.breakdown("automated_decision")) == {"not_automated": 2, "partially": 1}
    assert a.value("automated_decisions_reversed_on_complaint") == 1
    assert a.value("reversed_share") == 1.0
    c = r.section("complaints")
    assert (c.value("received"), c.value("decided")) == (2, 2)
    assert dict(c.breakdown("outcome")) == {"reversed": 1, "upheld": 1}
    t = r.section("timing")
    assert t.value("median_notice_to_decision") == 4 * 3600.0  # of 2 h, 4 h, 6 h
    assert t.value("median_complaint_to_decision") == 4 * 3600.0  # of 3 h, 5 h
    m = r.section("monthly")
    assert m.breakdown("notices") == [("2026-03", 3)]
    assert m.breakdown("decisions") == [("2026-03", 3)]


def test_tco_numbers(year: Year) -> None:
    r = build(year, "tco")
    assert r.section("removal_orders").value("orders.received") == 0
    acts = r.section("actions")
    assert acts.value("total") == 1  # only the risk-for-public-security removal
    assert dict(acts.breakdown("by_origin")) == {"notice": 1}
    c = r.section("complaints")
    assert c.value("received") == 1 and dict(c.breakdown("outcome")) == {"upheld": 1}
    assert r.section("reinstatements").value("after_complaint") == 0
    assert r.section("specific_measures").value("matches") == 0


def test_tco_covers_a_calendar_year(year: Year) -> None:
    q = reports.parse_period("2026-Q1")
    with pytest.raises(InvalidInput, match="calendar year"):
        reports.build_report(
            year.world.ctx,
            year.world.p("auditor"),
            organisation_slug="host-a",
            period_start=q.start,
            period_end=q.end,
            kind="tco",
        )


def test_a_quarter_without_activity_is_zero(year: Year) -> None:
    q = reports.parse_period("2026-Q2")
    r = reports.build_report(
        year.world.ctx,
        year.world.p("legal"),
        organisation_slug="host-a",
        period_start=q.start,
        period_end=q.end,
        kind="dsa",
    )
    assert r.section("notices").value("received") == 0
    assert r.section("timing").value("median_notice_to_decision") is None
    assert r.section("automation").value("reversed_share") is None


def test_who_may_read(year: Year) -> None:
    w = year.world
    for who, error in (("reviewer", Forbidden), ("other_admin", NotFound)):
        with pytest.raises(error):
            build(year, who=who)
    with pytest.raises(Unauthenticated):
        reports.build_report(
            w.ctx,
            ANONYMOUS,
            organisation_slug="host-a",
            period_start=Y2026.start,
            period_end=Y2026.end,
            kind="dsa",
        )


def test_json_and_csv_round_trip(year: Year) -> None:
    r = build(year)
    assert reports.report_from_dict(json.loads(report_formats.to_json(r))) == r
    rows = report_formats.rows_from_csv(report_formats.to_csv(r))
    assert rows == [(s.key, row) for s in r.sections for row in s.rows]


def test_html_escapes_everything_and_has_accessible_charts(year: Year) -> None:
    r = build(year)
    evil = "<script>alert(1)</script>"
    sections = (
        replace(
            r.sections[0],
            rows=(*r.sections[0].rows, Row("by_category", evil, 5)),
            title=evil,
        ),
        *r.sections[1:],
        Section("extra", evil, (Row(evil, evil, 1),)),
    )
    html = report_formats.to_html(replace(r, sections=sections, organisation_name=evil))
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<svg") == 3 and html.count("<title id=") == 3
    assert "<desc id=" in html and "<table>" in html


def test_publish_then_public_listing(year: Year) -> None:
    w = year.world
    with pytest.raises(Forbidden):
        report_publications.publish_report(
            w.ctx,
            w.p("auditor"),
            organisation_slug="host-a",
            period_start=Y2026.start,
            period_end=Y2026.end,
            kind="dsa",
        )
    for label in ("2026-Q1", "2026"):
        p = reports.parse_period(label)
        report_publications.publish_report(
            w.ctx,
            w.p("admin"),
            organisation_slug="host-a",
            period_start=p.start,
            period_end=p.end,
            kind="dsa",
        )
    published = report_publications.published_reports(w.ctx, "host-a")
    assert [p.report.period.label for p in published] == ["2026", "2026-Q1"]
    assert published[0].report.section("notices").value("received") == 3
    assert report_publications.published_reports(w.ctx, "host-a", kind="tco") == []


def test_period_labels_from_bounds() -> None:
    for label in ("2026", "2026-Q3", "2026-11", "2026-02-03..2026-05-01"):
        p = reports.parse_period(label)
        assert reports.period_between(p.start, p.end).label == label
