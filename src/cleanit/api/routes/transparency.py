"""/transparency/{org} — the public transparency page: the organisation's latest published
report and the trend across its publications. No authentication: only what an admin
published is shown, from the stored snapshot."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from cleanit.api.security import Ctx
from cleanit.domain.errors import NotFound
from cleanit.services import report_formats, report_publications

router = APIRouter(prefix="/transparency", tags=["transparency reports"])


@router.get("/{org_slug}", response_class=HTMLResponse, summary="Published transparency reports")
def transparency_page(
    ctx: Ctx, org_slug: str, kind: Literal["dsa", "tco"] | None = None
) -> HTMLResponse:
    published = report_publications.published_reports(ctx, org_slug, kind=kind)
    if not published:
        raise NotFound(f"'{org_slug}' has not published a transparency report")
    latest = published[0].report
    same_kind = [p.report for p in published if p.report.kind == latest.kind]
    return HTMLResponse(report_formats.to_html(latest, published=same_kind, public=True))
