"""Transparency reports: DSA Art 15 and TCO Art 7, computed from the decision records.

Every number comes from a GROUP BY in PostgreSQL (the queries are in ``QUERIES``, so the
benchmark can time them bare); Python only folds the few grouped rows into sections. A
decision counts in the period in which it took effect (``in_force_at``, UTC), and only first
decisions count as moderation actions: the replacements a complaint produces are counted
as complaint outcomes instead.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from cleanit.adapters.db.models import Organisation
from cleanit.domain.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from cleanit.domain.notices import Category, SourceType
from cleanit.domain.roles import Permission, Principal
from cleanit.services import orders
from cleanit.services.authz import require_member
from cleanit.services.context import Context

ReportKind = Literal["tco", "dsa"]
KINDS: tuple[ReportKind, ...] = ("dsa", "tco")
Value = int | float | None

# Terrorist content is reported under this category (domain/tdb.py); removal orders are
# terrorist content by definition.
TERRORIST_CATEGORY = Category.RISK_FOR_PUBLIC_SECURITY.value
# Sources that are the provider's own initiative (DSA Art 15(1)(c)).
OWN_SOURCES = (SourceType.OWN_INITIATIVE.value, SourceType.AUTOMATED_DETECTION.value)

# One scan of the period's first decisions, grouped by everything the sections need, plus
# one extra row (action NULL) carrying the median notice-to-decision time, so the notices'
# join is done once. The flags come from hash joins over de-duplicated ids (not per-row
# EXISTS probes): 1M rows in seconds instead of tens.
_DECISIONS = """
WITH per_case AS (
  SELECT nc.case_id, min(n.received_at) AS first_at,
         bool_or(n.source_type NOT IN ('own_initiative', 'automated_detection')) AS third_party
  FROM notice_cases nc JOIN notices n ON n.id = nc.notice_id
  WHERE n.provider_id = :org
  GROUP BY nc.case_id
),
ordered AS (SELECT DISTINCT case_id FROM removal_order_items),
reversed AS (
  SELECT DISTINCT decision_id FROM complaints WHERE provider_id = :org AND outcome = 'reversed'
),
base AS MATERIALIZED (
  SELECT to_char(d.in_force_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month,
         d.action, coalesce(d.ground, '') AS ground,
         d.automated_detection, d.automated_decision,
         o.case_id IS NOT NULL AS by_order,
         coalesce(p.third_party, false) AS by_notice,
         c.category = :terrorist AS terrorist_category,
         r.decision_id IS NOT NULL AS reversed,
         extract(epoch FROM d.in_force_at - p.first_at) AS delay
  FROM decisions d JOIN cases c ON c.id = d.case_id
  LEFT JOIN per_case p ON p.case_id = d.case_id
  LEFT JOIN ordered o ON o.case_id = d.case_id
  LEFT JOIN reversed r ON r.decision_id = d.id
  WHERE d.provider_id = :org AND d.replaces_id IS NULL
    AND d.status IN ('in_force', 'superseded')
    AND d.in_force_at >= :start AND d.in_force_at < :end
)
SELECT month, action, ground, automated_detection, automated_decision, by_order, by_notice,
       terrorist_category, reversed, count(*) AS n, NULL::float8 AS median_delay
FROM base GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY delay)
FROM base
"""

_NOTICES = """
SELECT to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM') AS month, category, source_type,
       count(*) AS n
FROM notices
WHERE provider_id = :org AND received_at >= :start AND received_at < :end
GROUP BY 1, 2, 3
"""

# Complaints lodged or decided in the period, by what they were about.
_COMPLAINTS = """
SELECT x.status, coalesce(x.outcome, '') AS outcome,
       x.lodged_at >= :start AND x.lodged_at < :end AS lodged_in,
       coalesce(x.decided_at >= :start AND x.decided_at < :end, false) AS decided_in,
       c.category = :terrorist OR o.case_id IS NOT NULL AS terrorist,
       count(*) AS n
FROM complaints x JOIN cases c ON c.id = x.case_id
LEFT JOIN (SELECT DISTINCT case_id FROM removal_order_items) o ON o.case_id = x.case_id
WHERE x.provider_id = :org
  AND ((x.lodged_at >= :start AND x.lodged_at < :end)
       OR (x.decided_at >= :start AND x.decided_at < :end))
GROUP BY 1, 2, 3, 4, 5
"""

_MEDIAN_COMPLAINT_TO_DECISION = """
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM decided_at - lodged_at))
FROM complaints
WHERE provider_id = :org AND decided_at >= :start AND decided_at < :end
"""

# TCO Art 5 specific measures: what auto_action banks matched on this platform.
_AUTO_MATCHES = """
SELECT count(*) FILTER (WHERE NOT m.suppressed), count(DISTINCT m.case_id)
FROM matches m JOIN banks b ON b.id = m.bank_id
WHERE m.organisation_id = :org AND b.mode = 'auto_action'
  AND m.matched_at >= :start AND m.matched_at < :end
"""

REPORT_WORK_MEM = "256MB"

QUERIES: dict[str, str] = {
    "decisions": _DECISIONS,
    "notices": _NOTICES,
    "complaints": _COMPLAINTS,
    "median_complaint_to_decision": _MEDIAN_COMPLAINT_TO_DECISION,
    "auto_matches": _AUTO_MATCHES,
}
DSA_QUERIES = (
    "decisions",
    "notices",
    "complaints",
    "median_complaint_to_decision",
)
TCO_QUERIES = ("decisions", "complaints", "auto_matches")


@dataclass(frozen=True, slots=True)
class Row:
    metric: str
    dimension: str  # "" when the metric has no breakdown
    value: Value


@dataclass(frozen=True, slots=True)
class Section:
    key: str
    title: str
    rows: tuple[Row, ...]

    def value(self, metric: str, dimension: str = "") -> Value:
        for r in self.rows:
            if r.metric == metric and r.dimension == dimension:
                return r.value
        return None

    def breakdown(self, metric: str) -> list[tuple[str, Value]]:
        return [(r.dimension, r.value) for r in self.rows if r.metric == metric and r.dimension]


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime  # exclusive
    label: str

    @property
    def calendar_year(self) -> int | None:
        s, e = self.start, self.end
        whole = s == datetime(s.year, 1, 1, tzinfo=UTC) and e == datetime(
            s.year + 1, 1, 1, tzinfo=UTC
        )
        return s.year if whole else None


@dataclass(frozen=True, slots=True)
class Report:
    kind: ReportKind
    organisation_slug: str
    organisation_name: str
    period: Period
    generated_at: datetime
    sections: tuple[Section, ...] = field(default_factory=tuple)

    def section(self, key: str) -> Section:
        for s in self.sections:
            if s.key == key:
                return s
        raise KeyError(key)


_YEAR = re.compile(r"^(\d{4})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def _month_start(year: int, month: int) -> datetime:
    return datetime(year + (month - 1) // 12, (month - 1) % 12 + 1, 1, tzinfo=UTC)


def _day(text_: str) -> datetime:
    try:
        d = datetime.fromisoformat(text_)
    except ValueError:
        raise InvalidInput(f"'{text_}' is not a date (YYYY-MM-DD)", field="period") from None
    return d.replace(tzinfo=UTC) if d.tzinfo is None else d.astimezone(UTC)


def parse_period(value: str) -> Period:
    """``2026`` (a year), ``2026-Q1``, ``2026-03`` or ``2026-01-01..2026-07-01`` (end
    exclusive), all UTC."""
    v = value.strip()
    if m := _YEAR.match(v):
        y = int(m[1])
        return _checked(Period(datetime(y, 1, 1, tzinfo=UTC), datetime(y + 1, 1, 1, tzinfo=UTC), v))
    if m := _QUARTER.match(v):
        y, q = int(m[1]), int(m[2])
        return _checked(Period(_month_start(y, 3 * q - 2), _month_start(y, 3 * q + 1), v))
    if m := _MONTH.match(v):
        y, mo = int(m[1]), int(m[2])
        if not 1 <= mo <= 12:
            raise InvalidInput(f"'{v}': the month must be 01-12", field="period")
        return _checked(Period(_month_start(y, mo), _month_start(y, mo + 1), v))
    if ".." in v:
        a, b = v.split("..", 1)
        return _checked(Period(_day(a.strip()), _day(b.strip()), v))
    raise InvalidInput(
        f"'{v}' is not a period: use 2026, 2026-Q1, 2026-03 or 2026-01-01..2026-07-01",
        field="period",
    )


def _checked(p: Period) -> Period:
    if not 2000 <= p.start.year <= 2999:
        raise InvalidInput("the period must lie between the years 2000 and 2999", field="period")
    if p.end <= p.start:
        raise InvalidInput("the period ends before it starts", field="period")
    return p


def period_between(start: datetime, end: datetime) -> Period:
    """A period from explicit bounds, labelled as ``parse_period`` would name it."""
    s, e = start.astimezone(UTC), end.astimezone(UTC)
    label = f"{s:%Y-%m-%d}..{e:%Y-%m-%d}"
    if s == _month_start(s.year, s.month):
        if e == _month_start(s.year + 1, 1) and s.month == 1:
            label = str(s.year)
        elif e == _month_start(s.year, s.month + 3) and s.month % 3 == 1:
            label = f"{s.year}-Q{s.month // 3 + 1}"
        elif e == _month_start(s.year, s.month + 1):
            label = f"{s:%Y-%m}"
    return _checked(Period(s, e, label))


def organisation_for(s: Session, slug: str) -> Organisation:
    org = s.scalar(select(Organisation).where(Organisation.slug == slug))
    if org is None:
        raise NotFound(f"no organisation '{slug}'")
    return org


def require_report_reader(principal: Principal) -> None:
    """Checked before anything is looked up; membership is checked once the org is known."""
    if principal.is_anonymous:
        raise Unauthenticated("sign in or send an API token to read reports")
    if not (principal.can(Permission.READ_AUDIT) or principal.can(Permission.READ_REPORTS)):
        raise Forbidden(f"your role does not allow '{Permission.READ_REPORTS.value}'")


def own_organisation_slug(ctx: Context, principal: Principal) -> str:
    """The caller's organisation (reports default to it)."""
    require_report_reader(principal)
    with ctx.sessions() as s:
        slug = s.scalar(
            select(Organisation.slug).where(Organisation.id == principal.organisation_id)
        )
    if slug is None:
        raise NotFound("no such organisation")
    return slug


def build_report(
    ctx: Context,
    principal: Principal,
    *,
    organisation_slug: str,
    period_start: datetime,
    period_end: datetime,
    kind: ReportKind,
) -> Report:
    """Compute the report for the organisation and period (the caller must be its staff)."""
    if kind not in KINDS:
        raise InvalidInput("kind must be 'dsa' or 'tco'", field="kind")
    period = period_between(period_start, period_end)
    if kind == "tco" and period.calendar_year is None:
        raise InvalidInput("a TCO Art 7 report covers one calendar year", field="period")
    require_report_reader(principal)
    with ctx.sessions() as s:
        org = organisation_for(s, organisation_slug)
        require_member(principal, org.id)
        results = run_queries(s, org.id, period, DSA_QUERIES if kind == "dsa" else TCO_QUERIES)
    if kind == "dsa":
        sections = dsa_sections(results)
    else:
        year = period.calendar_year
        assert year is not None
        stats = orders.order_statistics(ctx, principal, year)
        sections = tco_sections(results, stats)
    return Report(kind, org.slug, org.name, period, ctx.now(), tuple(sections))


def run_queries(
    s: Session, organisation_id: int, period: Period, names: Iterable[str]
) -> dict[str, list[tuple[Any, ...]]]:
    params = {
        "org": organisation_id,
        "start": period.start,
        "end": period.end,
        "terrorist": TERRORIST_CATEGORY,
    }
    # The aggregates hash and sort up to a million rows: with the default 4 MB they spill to
    # disk and take several times longer. Local to this read-only transaction.
    s.execute(text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))
    out = {n: [tuple(r) for r in s.execute(text(QUERIES[n]), params)] for n in names}
    if "decisions" in out:  # the median row (action NULL) becomes its own result
        rows = out["decisions"]
        out["decisions"] = [r for r in rows if r[1] is not None]
        out["median_notice_to_decision"] = [(r[10],) for r in rows if r[1] is None]
    return out


def _counts(pairs: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    acc: dict[str, int] = defaultdict(int)
    for key, n in pairs:
        acc[key] += n
    return sorted(acc.items())


def _rows(metric: str, pairs: Iterable[tuple[str, int]]) -> list[Row]:
    return [Row(metric, k, v) for k, v in _counts(pairs)]


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _seconds(rows: list[tuple[Any, ...]]) -> float | None:
    v = rows[0][0] if rows else None
    return None if v is None else round(float(v), 1)


def _monthly(notice_rows: list[tuple[Any, ...]], decision_rows: list[tuple[Any, ...]]) -> Section:
    rows = _rows("notices", ((r[0], r[3]) for r in notice_rows))
    rows += _rows("decisions", ((r[0], r[9]) for r in decision_rows))
    return Section("monthly", "Monthly trend", tuple(rows))


def _complaint_rows(rows: list[tuple[Any, ...]]) -> list[Row]:
    # columns: status, outcome, lodged_in, decided_in, terrorist, n
    received = sum(r[5] for r in rows if r[2])
    decided = [r for r in rows if r[3] and r[0] == "decided"]
    out = [Row("received", "", received), Row("decided", "", sum(r[5] for r in decided))]
    out += _rows("outcome", ((r[1], r[5]) for r in decided))
    return out


def dsa_sections(q: Mapping[str, list[tuple[Any, ...]]]) -> list[Section]:
    notices_, decisions_ = q["notices"], q["decisions"]
    # decisions columns: month, action, ground, automated_detection, automated_decision,
    # by_order, by_notice, terrorist_category, reversed, n
    own = [r for r in decisions_ if not r[5] and not r[6]]
    automated = [r for r in decisions_ if r[4] != "not_automated"]
    reversed_automated = sum(r[9] for r in automated if r[8])
    n_automated = sum(r[9] for r in automated)
    total_notices = sum(r[3] for r in notices_)
    return [
        Section(
            "notices",
            "Notices received (Art 15(1)(b))",
            (
                Row("received", "", total_notices),
                *_rows("by_category", ((r[1], r[3]) for r in notices_)),
                *_rows("by_source_type", ((r[2], r[3]) for r in notices_)),
                Row(
                    "trusted_flagger",
                    "",
                    sum(r[3] for r in notices_ if r[2] == SourceType.TRUSTED_FLAGGER.value),
                ),
            ),
        ),
        Section(
            "decisions",
            "Decisions taken",
            (
                Row("total", "", sum(r[9] for r in decisions_)),
                *_rows("by_action", ((r[1], r[9]) for r in decisions_)),
                *_rows("by_ground", ((r[2] or "none", r[9]) for r in decisions_)),
            ),
        ),
        Section(
            "own_initiative",
            "Own-initiative moderation (Art 15(1)(c))",
            (
                Row("total", "", sum(r[9] for r in own)),
                *_rows("by_action", ((r[1], r[9]) for r in own)),
                *_rows("by_ground", ((r[2] or "none", r[9]) for r in own)),
            ),
        ),
        Section(
            "automation",
            "Use of automated means (Art 15(1)(e))",
            (
                Row("automated_detection", "", sum(r[9] for r in decisions_ if r[3])),
                *_rows("automated_decision", ((r[4], r[9]) for r in decisions_)),
                Row("automated_decisions_reversed_on_complaint", "", reversed_automated),
                # "Accuracy" indicator: the share of automated decisions a complaint reversed.
                Row("reversed_share", "", _share(reversed_automated, n_automated)),
            ),
        ),
        Section(
            "complaints",
            "Complaints (Art 15(1)(d))",
            tuple(_complaint_rows(q["complaints"])),
        ),
        Section(
            "timing",
            "Median times (seconds)",
            (
                Row("median_notice_to_decision", "", _seconds(q["median_notice_to_decision"])),
                Row(
                    "median_complaint_to_decision",
                    "",
                    _seconds(q["median_complaint_to_decision"]),
                ),
            ),
        ),
        _monthly(notices_, decisions_),
    ]


def _flatten(prefix: str, value: Any) -> list[Row]:
    """order_statistics' nested dicts as rows: counts under a dict become dimensions."""
    if isinstance(value, Mapping):
        if prefix and _is_breakdown(prefix) and all(isinstance(v, int) for v in value.values()):
            return [Row(prefix, str(k), int(v)) for k, v in sorted(value.items())]
        rows: list[Row] = []
        for k, v in value.items():
            rows += _flatten(f"{prefix}.{k}" if prefix else str(k), v)
        return rows
    return [Row(prefix, "", value if isinstance(value, int | float) else None)]


def _is_breakdown(metric: str) -> bool:
    return metric.rsplit(".", 1)[-1] in {"not_executed", "outcomes", "annex_iii_answers"} or (
        metric == "reinstatements"
    )


def tco_sections(q: Mapping[str, list[tuple[Any, ...]]], stats: Mapping[str, Any]) -> list[Section]:
    terrorist = [r for r in q["decisions"] if (r[5] or r[7]) and r[1] != "no_action"]

    def origin(r: tuple[Any, ...]) -> str:
        if r[5]:
            return "removal_order"
        if r[4] != "not_automated" or r[3]:
            return "specific_measures"
        return "notice" if r[6] else "own_initiative"

    matches, matched_cases = q["auto_matches"][0] if q["auto_matches"] else (0, 0)
    complaints_ = [r for r in q["complaints"] if r[4]]
    reinstated = sum(r[5] for r in complaints_ if r[3] and r[1] == "reversed")
    body = {k: v for k, v in stats.items() if k != "year"}
    return [
        Section("removal_orders", "Removal orders (Art 3, Art 4)", tuple(_flatten("", body))),
        Section(
            "actions",
            "Terrorist content removed or disabled",
            (
                Row("total", "", sum(r[9] for r in terrorist)),
                *_rows("by_action", ((r[1], r[9]) for r in terrorist)),
                *_rows("by_origin", ((origin(r), r[9]) for r in terrorist)),
            ),
        ),
        Section(
            "specific_measures",
            "Specific measures (Art 5): auto_action hash lists",
            (
                Row("matches", "", matches),
                Row("matched_cases", "", matched_cases),
                Row(
                    "automated_decisions",
                    "",
                    sum(r[9] for r in terrorist if r[4] != "not_automated"),
                ),
            ),
        ),
        Section("complaints", "Complaints (Art 10)", tuple(_complaint_rows(complaints_))),
        Section(
            "reinstatements",
            "Reinstatements",
            (Row("after_complaint", "", reinstated),),
        ),
        _monthly([], terrorist),
    ]


# --- snapshots -------------------------------------------------------------------------------


def report_to_dict(report: Report) -> dict[str, Any]:
    """Stable keys; the same shape is stored as a publication snapshot."""
    return {
        "kind": report.kind,
        "organisation": {"slug": report.organisation_slug, "name": report.organisation_name},
        "period": {
            "label": report.period.label,
            "start": report.period.start.isoformat(),
            "end": report.period.end.isoformat(),
        },
        "generated_at": report.generated_at.isoformat(),
        "sections": [
            {
                "key": s.key,
                "title": s.title,
                "rows": [
                    {"metric": r.metric, "dimension": r.dimension, "value": r.value} for r in s.rows
                ],
            }
            for s in report.sections
        ],
    }


def report_from_dict(d: Mapping[str, Any]) -> Report:
    kind = d["kind"]
    if kind not in KINDS:
        raise InvalidInput(f"unknown report kind '{kind}'", field="kind")
    p = d["period"]
    return Report(
        kind=kind,
        organisation_slug=d["organisation"]["slug"],
        organisation_name=d["organisation"]["name"],
        period=Period(
            datetime.fromisoformat(p["start"]), datetime.fromisoformat(p["end"]), p["label"]
        ),
        generated_at=datetime.fromisoformat(d["generated_at"]),
        sections=tuple(
            Section(
                s["key"],
                s["title"],
                tuple(Row(r["metric"], r["dimension"], r["value"]) for r in s["rows"]),
            )
            for s in d["sections"]
        ),
    )
