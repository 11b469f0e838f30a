"""/api/v1/reports — transparency reports (DSA Art 15, TCO Art 7) for the organisation's
staff, and publishing one on the public transparency page (organisation admins)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from cleanit.api.schemas import In
from cleanit.api.security import Caller, Ctx
from cleanit.services import report_formats, report_publications, reports

router = APIRouter(prefix="/reports", tags=["transparency reports"])

PeriodParam = Annotated[
    str,
    Query(
        max_length=64,
        description="2026 (year), 2026-Q1, 2026-03 or 2026-01-01..2026-07-01 (end exclusive)",
    ),
]


@router.get(
    "",
    summary="Compute a transparency report (the organisation's staff with audit or reports "
    "permission)",
    responses={200: {"content": {m: {} for m in report_formats.MEDIA_TYPES.values()}}},
)
def get_report(
    ctx: Ctx,
    caller: Caller,
    period: PeriodParam,
    kind: Literal["dsa", "tco"] = "dsa",
    format: Literal["json", "csv", "html"] = "json",
    organisation: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    p = reports.parse_period(period)
    slug = organisation or reports.own_organisation_slug(ctx, caller)
    report = reports.build_report(
        ctx, caller, organisation_slug=slug, period_start=p.start, period_end=p.end, kind=kind
    )
    body = report_formats.render(report, format)
    return Response(body, media_type=report_formats.MEDIA_TYPES[format])


class PublicationIn(In):
    period: str = Field(max_length=64, examples=["2026"])
    kind: Literal["dsa", "tco"]
    organisation: str | None = Field(default=None, max_length=64)


class PublicationOut(BaseModel):
    id: int
    kind: str
    period: str
    published_at: str
    url: str = Field(description="The public transparency page")


@router.post(
    "/publications",
    status_code=201,
    response_model=PublicationOut,
    summary="Publish a report on the public transparency page (organisation admins)",
)
def publish(ctx: Ctx, caller: Caller, body: PublicationIn) -> PublicationOut:
    p = reports.parse_period(body.period)
    slug = body.organisation or reports.own_organisation_slug(ctx, caller)
    pub = report_publications.publish_report(
        ctx, caller, organisation_slug=slug, period_start=p.start, period_end=p.end, kind=body.kind
    )
    return PublicationOut(
        id=pub.id,
        kind=pub.report.kind,
        period=pub.report.period.label,
        published_at=pub.published_at.isoformat(),
        url=f"{ctx.base_url}/transparency/{slug}",
    )
