"""Evaluation metrics (Clean IT principle of evaluation), computed from the records by SQL.

Nothing is stored: each call aggregates one provider organisation's notices, decisions,
platform actions, complaints, matches and removal orders in one period ``[start, end)``.
Times are distributions (percentiles and histogram buckets), never only means. Reading
needs ``reports:read`` or ``audit:read``, and membership of
the organisation. See docs/research.md.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from cleanit.domain.errors import InvalidInput, NotFound
from cleanit.domain.roles import Principal
from cleanit.services import reports
from cleanit.services.authz import require_member
from cleanit.services.context import Context

# Histogram bucket upper edges in hours; the last bucket is open ("720h+").
BUCKET_EDGES_HOURS: tuple[int, ...] = (1, 6, 24, 72, 168, 720)
PERCENTILES: tuple[float, ...] = (0.1, 0.5, 0.9, 0.99)


def parse_period(period: str) -> tuple[datetime, datetime]:
    """``[start, end)`` UTC of a period as ``reports.parse_period`` reads it (a year, a
    quarter, a month or an explicit range)."""
    p = reports.parse_period(period)
    return p.start, p.end


@dataclass(frozen=True, slots=True)
class Distribution:
    """Durations in hours: how many, percentiles, and counts per histogram bucket."""

    count: int
    percentiles_hours: dict[str, float | None]
    buckets: dict[str, int]


@dataclass(frozen=True, slots=True)
class Rate:
    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return round(self.numerator / self.denominator, 4) if self.denominator else None


@dataclass(frozen=True, slots=True)
class EvaluationMetrics:
    organisation: str
    period_start: datetime
    period_end: datetime
    notice_to_decision: Distribution
    notice_to_action: Distribution
    # Matches in the period against bank entries that came from earlier removals.
    reappearance_matches: int
    reappearance_cases: int
    reappearance_source_decisions: int
    # Complaints decided in the period: (decided, reversed, modified) by basis / automation.
    complaints_by_basis: dict[str, dict[str, Any]]
    complaints_by_automation: dict[str, dict[str, Any]]
    trusted_flagger_notices: int
    trusted_flagger_decided: int
    trusted_flagger_actioned: int
    orders_received: int
    orders_missed: int
    orders_executed_in_time: int

    @property
    def trusted_flagger_precision(self) -> float | None:
        return Rate(self.trusted_flagger_actioned, self.trusted_flagger_decided).value

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["period_start"] = self.period_start.isoformat()
        data["period_end"] = self.period_end.isoformat()
        data["trusted_flagger_precision"] = self.trusted_flagger_precision
        return data

    def as_csv(self) -> str:
        """Long format: one ``section,key,value`` row per number."""
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(("section", "key", "value"))
        w.writerow(("period", "start", self.period_start.isoformat()))
        w.writerow(("period", "end", self.period_end.isoformat()))
        for name in ("notice_to_decision", "notice_to_action"):
            dist: Distribution = getattr(self, name)
            w.writerow((name, "count", dist.count))
            for key, val in dist.percentiles_hours.items():
                w.writerow((name, f"{key}_hours", "" if val is None else val))
            for key, count in dist.buckets.items():
                w.writerow((name, f"bucket_{key}", count))
        for key in ("matches", "cases", "source_decisions"):
            w.writerow(("reappearance", key, getattr(self, f"reappearance_{key}")))
        for section in ("complaints_by_basis", "complaints_by_automation"):
            for group, row in getattr(self, section).items():
                for key, val in row.items():
                    w.writerow((section, f"{group}.{key}", "" if val is None else val))
        w.writerow(("trusted_flagger", "notices", self.trusted_flagger_notices))
        w.writerow(("trusted_flagger", "decided", self.trusted_flagger_decided))
        w.writerow(("trusted_flagger", "actioned", self.trusted_flagger_actioned))
        precision = self.trusted_flagger_precision
        w.writerow(("trusted_flagger", "precision", "" if precision is None else precision))
        w.writerow(("removal_orders", "received", self.orders_received))
        w.writerow(("removal_orders", "missed_deadline", self.orders_missed))
        w.writerow(("removal_orders", "executed_in_time", self.orders_executed_in_time))
        return out.getvalue()


def bucket_labels() -> list[str]:
    labels, low = [], 0
    for edge in BUCKET_EDGES_HOURS:
        labels.append(f"{low}-{edge}h")
        low = edge
    labels.append(f"{low}h+")
    return labels


# Per notice received in the period: the first moment its case(s) had a decision in force
# (or, for actions, the platform acknowledged a restriction). A notice that joined a case
# already decided is left out (its time would be negative, not a measure of our speed).
_NOTICE_TIMES = """
WITH firsts AS (
  SELECT n.id, n.received_at, min({event}) AS at
  FROM notices n
  JOIN notice_cases nc ON nc.notice_id = n.id
  {join}
  WHERE n.provider_id = :org AND n.received_at >= :start AND n.received_at < :end
  GROUP BY n.id, n.received_at
), hours AS (
  SELECT EXTRACT(EPOCH FROM (at - received_at)) / 3600.0 AS h
  FROM firsts WHERE at IS NOT NULL AND at >= received_at
)
SELECT (SELECT count(*) FROM hours),
       (SELECT percentile_cont(CAST(:pcts AS float8[])) WITHIN GROUP (ORDER BY h) FROM hours),
       array(SELECT (SELECT count(*) FROM hours
                     WHERE width_bucket(h, CAST(:edges AS float8[])) = b)
             FROM generate_series(0, :nbuckets - 1) AS b ORDER BY b)
"""
_DECISION_JOIN = "JOIN decisions d ON d.case_id = nc.case_id AND d.in_force_at IS NOT NULL"
_ACTION_JOIN = (
    "JOIN decisions d ON d.case_id = nc.case_id "
    "JOIN platform_actions pa ON pa.decision_id = d.id AND pa.kind = 'restrict' "
    "AND pa.acknowledged_at IS NOT NULL"
)


def _distribution(s: Session, params: dict[str, Any], event: str, join: str) -> Distribution:
    sql = text(_NOTICE_TIMES.format(event=event, join=join))
    count, pcts, buckets = s.execute(
        sql,
        {
            **params,
            "pcts": list(PERCENTILES),
            "edges": [float(e) for e in BUCKET_EDGES_HOURS],
            "nbuckets": len(BUCKET_EDGES_HOURS) + 1,
        },
    ).one()
    names = [f"p{round(p * 100)}" for p in PERCENTILES]
    values = [None if v is None else round(float(v), 3) for v in (pcts or [None] * len(names))]
    # width_bucket counts from 1 for the first edge; bucket 0 holds h < 1 (the first label).
    return Distribution(
        count=int(count),
        percentiles_hours=dict(zip(names, values, strict=True)),
        buckets=dict(zip(bucket_labels(), [int(b) for b in buckets], strict=True)),
    )


_REAPPEARANCE = text(
    """
    SELECT count(*), count(DISTINCT m.case_id), count(DISTINCT e.source)
    FROM matches m JOIN bank_entries e ON e.id = m.entry_id
    WHERE m.organisation_id = :org AND e.source LIKE 'decision:%'
      AND m.matched_at >= :start AND m.matched_at < :end
    """
)

# The basis of the decision complained about: the assessment's legal provision or terms
# clause; decisions without an assessment (no_action) have basis "none".
_COMPLAINTS = text(
    """
    SELECT CASE WHEN a.legal_provision_id IS NOT NULL THEN 'legal_provision'
                WHEN a.terms_clause_version_id IS NOT NULL THEN 'terms_clause'
                ELSE 'none' END AS basis,
           CASE WHEN d.automated_decision = 'not_automated' THEN 'human'
                ELSE 'automated' END AS automation,
           count(*) AS decided,
           count(*) FILTER (WHERE c.outcome = 'reversed') AS reversed,
           count(*) FILTER (WHERE c.outcome = 'modified') AS modified
    FROM complaints c
    JOIN decisions d ON d.id = c.decision_id
    LEFT JOIN assessments a ON a.id = d.assessment_id
    WHERE c.provider_id = :org AND c.status = 'decided'
      AND c.decided_at >= :start AND c.decided_at < :end
    GROUP BY 1, 2
    """
)

# A trusted-flagger notice counts as decided once any of its cases is actioned or closed
# with no action; precise when one of them is actioned.
_FLAGGERS = text(
    """
    SELECT count(*),
           count(*) FILTER (WHERE decided),
           count(*) FILTER (WHERE actioned)
    FROM (
      SELECT n.id,
             bool_or(c.state IN ('actioned', 'no_action', 'under_complaint')) AS decided,
             bool_or(c.state = 'actioned') AS actioned
      FROM notices n
      JOIN notice_cases nc ON nc.notice_id = n.id
      JOIN cases c ON c.id = nc.case_id
      WHERE n.provider_id = :org AND n.source_type = 'trusted_flagger'
        AND n.received_at >= :start AND n.received_at < :end
      GROUP BY n.id
    ) per_notice
    """
)

_ORDERS = text(
    """
    SELECT count(*),
           count(*) FILTER (WHERE missed_at IS NOT NULL),
           count(*) FILTER (WHERE executed_in_time IS TRUE)
    FROM removal_orders
    WHERE provider_id = :org AND received_at >= :start AND received_at < :end
    """
)


def _group(rows: list[Any], index: int, keys: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {k: {"decided": 0, "reversed": 0, "modified": 0} for k in keys}
    for row in rows:
        g = out.setdefault(row[index], {"decided": 0, "reversed": 0, "modified": 0})
        g["decided"] += int(row.decided)
        g["reversed"] += int(row.reversed)
        g["modified"] += int(row.modified)
    for g in out.values():
        g["reversal_rate"] = Rate(g["reversed"], g["decided"]).value
    return out


def evaluation_metrics(
    ctx: Context,
    principal: Principal,
    *,
    organisation_slug: str | None,
    period_start: datetime,
    period_end: datetime,
) -> EvaluationMetrics:
    """Every evaluation metric of one provider organisation over ``[start, end)``.

    ``organisation_slug`` None means the caller's own organisation.
    """
    reports.require_report_reader(principal)
    if period_end <= period_start:
        raise InvalidInput("the period ends before it starts", field="period")
    with ctx.sessions() as s:
        if organisation_slug is None:
            org_id = principal.organisation_id
            organisation_slug = s.scalar(
                text("SELECT slug FROM organisations WHERE id = :id"), {"id": org_id}
            )
        else:
            org_id = reports.organisation_for(s, organisation_slug).id
        if org_id is None or organisation_slug is None:
            raise NotFound(f"no organisation '{organisation_slug}'")
        require_member(principal, org_id)
        params = {"org": org_id, "start": period_start, "end": period_end}
        to_decision = _distribution(s, params, "d.in_force_at", _DECISION_JOIN)
        to_action = _distribution(s, params, "pa.acknowledged_at", _ACTION_JOIN)
        matches, cases, sources = s.execute(_REAPPEARANCE, params).one()
        complaint_rows = list(s.execute(_COMPLAINTS, params).all())
        tf_total, tf_decided, tf_actioned = s.execute(_FLAGGERS, params).one()
        orders, missed, in_time = s.execute(_ORDERS, params).one()
    return EvaluationMetrics(
        organisation=organisation_slug,
        period_start=period_start,
        period_end=period_end,
        notice_to_decision=to_decision,
        notice_to_action=to_action,
        reappearance_matches=int(matches),
        reappearance_cases=int(cases),
        reappearance_source_decisions=int(sources),
        complaints_by_basis=_group(complaint_rows, 0, ("legal_provision", "terms_clause", "none")),
        complaints_by_automation=_group(complaint_rows, 1, ("human", "automated")),
        trusted_flagger_notices=int(tf_total),
        trusted_flagger_decided=int(tf_decided),
        trusted_flagger_actioned=int(tf_actioned),
        orders_received=int(orders),
        orders_missed=int(missed),
        orders_executed_in_time=int(in_time),
    )
