"""/api/v1/notices — intake from every source, and the notifier's status page."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse

from cleanit.adapters.db.models import Notice
from cleanit.api.schemas import NoticeIn, NoticeOut, NoticeReceiptOut, NoticeStatusOut, Page
from cleanit.api.security import Caller, Ctx, MaybeCaller
from cleanit.domain.notices import NoticeDraft
from cleanit.services import notices

router = APIRouter(tags=["notices"])


def draft_from(body: NoticeIn) -> NoticeDraft:
    return NoticeDraft(
        provider=body.provider,
        source_type=body.source_type,
        category=body.category,
        explanation=body.explanation,
        locations=tuple(body.locations),
        jurisdiction=body.jurisdiction,
        good_faith=body.good_faith,
        notifier_name=body.notifier_name,
        notifier_email=body.notifier_email,
        keywords=tuple(body.keywords),
        anonymous=body.anonymous,
    )


@router.post(
    "/notices",
    status_code=201,
    response_model=NoticeReceiptOut,
    summary="Submit a notice (anonymous members of the public may too)",
)
def submit_notice(
    body: NoticeIn,
    ctx: Ctx,
    caller: MaybeCaller,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> JSONResponse:
    receipt = notices.receive_notice(ctx, caller, draft_from(body), idempotency_key=idempotency_key)
    return JSONResponse(
        receipt.as_dict(),
        status_code=201,
        headers={"Location": f"/api/v1/notices/{receipt.notice_id}"},
    )


@router.get("/notices", response_model=Page[NoticeOut])
def list_notices(
    ctx: Ctx,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    source_type: str | None = None,
    category: str | None = None,
    received_after: datetime | None = None,
) -> Page[NoticeOut]:
    rows, total = notices.list_notices(
        ctx,
        caller,
        limit=limit,
        offset=offset,
        source_type=source_type,
        category=category,
        received_after=received_after,
    )
    return Page(items=[_out(n) for n in rows], total=total, limit=limit, offset=offset)


@router.get("/notices/{notice_id}", response_model=NoticeOut)
def get_notice(notice_id: uuid.UUID, ctx: Ctx, caller: Caller) -> NoticeOut:
    n, case_ids = notices.get_notice(ctx, caller, notice_id)
    return _out(n, case_ids)


@router.get(
    "/notice-status/{tracking_code}",
    response_model=NoticeStatusOut,
    summary="What a notifier may know with their tracking code",
)
def notice_status(tracking_code: str, ctx: Ctx) -> NoticeStatusOut:
    st = notices.status_for_notifier(ctx, tracking_code)
    return NoticeStatusOut(**st.__dict__)


def _out(n: Notice, case_ids: list[int] | None = None) -> NoticeOut:
    return NoticeOut(
        id=str(n.public_id),
        source_type=n.source_type,
        category=n.category,
        keywords=n.keywords,
        explanation=n.explanation,
        locations=n.locations,
        jurisdiction=n.jurisdiction,
        art16_complete=n.art16_complete,
        received_at=n.received_at,
        case_ids=case_ids or [],
    )
