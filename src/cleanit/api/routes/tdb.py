"""/api/v1/tdb/submissions: where the provider's statements to the DSA Transparency Database
stand (queued, submitted, rejected with the reasons in plain words, skipped), and sending a
rejected one again once its decision's data has been put right."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from cleanit.api.schemas import Page
from cleanit.api.security import Caller, Ctx
from cleanit.services import tdb

router = APIRouter(tags=["transparency database"])


class ProblemOut(BaseModel):
    field: str
    message: str


class SubmissionOut(BaseModel):
    id: int
    decision_id: int
    puid: str
    status: str
    attempts: int
    last_error: str | None
    problems: list[ProblemOut]
    tdb_id: str | None
    tdb_url: str | None
    created_at: datetime
    submitted_at: datetime | None
    payload: dict[str, Any]


def _out(v: tdb.SubmissionView) -> SubmissionOut:
    return SubmissionOut(**asdict(v))


@router.get(
    "/tdb/submissions",
    response_model=Page[SubmissionOut],
    summary="Statements of reasons for the Transparency Database and where each stands",
)
def list_submissions(
    ctx: Ctx,
    caller: Caller,
    status: Annotated[
        str | None, Query(description="queued, submitted, rejected or skipped")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[SubmissionOut]:
    items, total = tdb.list_submissions(ctx, caller, status=status, limit=limit, offset=offset)
    return Page(items=[_out(v) for v in items], total=total, limit=limit, offset=offset)


@router.post(
    "/tdb/submissions/{submission_id}/retry",
    response_model=SubmissionOut,
    summary="Build a rejected statement again from its decision and queue it if acceptable",
)
def retry(submission_id: int, ctx: Ctx, caller: Caller) -> SubmissionOut:
    return _out(tdb.retry(ctx, caller, submission_id))
