"""/api/v1/evaluation: the organisation's evaluation metrics for a period (JSON or CSV)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, Response

from cleanit.api.security import Caller, Ctx
from cleanit.services import evaluation, reports

router = APIRouter(tags=["evaluation"])


@router.get(
    "/evaluation",
    summary="Evaluation metrics of your organisation for a period (year, month or quarter)",
    response_model=None,
)
def show(
    ctx: Ctx,
    caller: Caller,
    period: Annotated[str, Query(description="2026, 2026-03 or 2026-Q1", max_length=10)],
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> dict[str, Any] | Response:
    reports.require_report_reader(caller)  # refuse before looking at the period
    start, end = evaluation.parse_period(period)
    metrics = evaluation.evaluation_metrics(
        ctx, caller, organisation_slug=None, period_start=start, period_end=end
    )
    if format == "csv":
        return PlainTextResponse(
            metrics.as_csv(),
            media_type="text/csv",
            headers={
                "Content-Disposition": (
                    f'attachment; filename="evaluation-{metrics.organisation}-{period}.csv"'
                )
            },
        )
    return metrics.as_json()
