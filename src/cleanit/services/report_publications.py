"""Publishing transparency reports: an organisation admin freezes a report as a snapshot,
which the public transparency page then shows without authentication."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from cleanit.adapters.db.models import ReportPublication
from cleanit.domain.roles import Permission, Principal
from cleanit.services import audit
from cleanit.services.authz import require, require_member
from cleanit.services.context import Context
from cleanit.services.reports import (
    Report,
    ReportKind,
    build_report,
    organisation_for,
    report_from_dict,
    report_to_dict,
)

# The public page shows the trend over this many latest publications of a kind.
TREND_LENGTH = 12


@dataclass(frozen=True, slots=True)
class Publication:
    id: int
    report: Report
    published_at: datetime


def publish_report(
    ctx: Context,
    principal: Principal,
    *,
    organisation_slug: str,
    period_start: datetime,
    period_end: datetime,
    kind: ReportKind,
) -> Publication:
    """Compute the report now and store it as the organisation's public snapshot."""
    require(principal, Permission.MANAGE_ORGANISATION)
    report = build_report(
        ctx,
        principal,
        organisation_slug=organisation_slug,
        period_start=period_start,
        period_end=period_end,
        kind=kind,
    )
    now = ctx.now()
    with ctx.transaction() as s:
        org = organisation_for(s, organisation_slug)
        require_member(principal, org.id)
        pub = ReportPublication(
            organisation_id=org.id,
            kind=report.kind,
            period_label=report.period.label,
            period_start=report.period.start,
            period_end=report.period.end,
            snapshot=report_to_dict(report),
            published_by=principal.label,
            published_at=now,
        )
        s.add(pub)
        s.flush()
        audit.record(
            s,
            principal,
            "report.published",
            "report_publication",
            pub.id,
            {"kind": report.kind, "period": report.period.label},
            organisation_id=org.id,
            at=now,
        )
        return Publication(pub.id, report, now)


def published_reports(
    ctx: Context, organisation_slug: str, *, kind: ReportKind | None = None
) -> list[Publication]:
    """Public: the organisation's publications, the latest published first (only the latest
    publication of each period and kind), at most TREND_LENGTH per kind."""
    with ctx.sessions() as s:
        org = organisation_for(s, organisation_slug)
        q = select(ReportPublication).where(ReportPublication.organisation_id == org.id)
        if kind is not None:
            q = q.where(ReportPublication.kind == kind)
        rows = s.scalars(
            q.order_by(ReportPublication.published_at.desc(), ReportPublication.id.desc())
        ).all()
    seen: set[tuple[str, datetime, datetime]] = set()
    per_kind: dict[str, int] = {}
    out: list[Publication] = []
    for r in rows:
        key = (r.kind, r.period_start, r.period_end)
        if key in seen or per_kind.get(r.kind, 0) >= TREND_LENGTH:
            continue
        seen.add(key)
        per_kind[r.kind] = per_kind.get(r.kind, 0) + 1
        out.append(Publication(r.id, report_from_dict(r.snapshot), r.published_at))
    return out
