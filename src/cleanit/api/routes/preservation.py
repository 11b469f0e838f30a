"""/api/v1/preservation-holds (TCO Art 6) and /api/v1/cases/{id}/threat-to-life (Art 14(5)).

Opening preserved data always names a purpose (``review``, ``complaint`` or
``investigation``) and a reason; every opening is logged before a byte is sent.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from cleanit.api.schemas import In, Page
from cleanit.api.security import Caller, Ctx
from cleanit.services import preservation, threat_to_life

SPOOL_IN_MEMORY = 8 * 1024 * 1024  # larger uploads go to a temporary file
CHUNK = 1024 * 1024

router = APIRouter(tags=["preservation"])

Purpose = Annotated[
    str | None,
    Query(description="Why the data is opened: review, complaint or investigation (Art 6(1))"),
]
Reason = Annotated[
    str | None,
    Query(max_length=2000, description="The proceedings, complaint or investigation concerned"),
]


class ItemOut(BaseModel):
    name: str
    media_type: str
    source: str
    sha256: str
    size: int
    preserved_at: datetime


class HoldOut(BaseModel):
    id: int
    provider_id: int
    case_id: int
    decision_id: int | None
    content_item_id: int
    removal_order_id: int | None
    status: str
    preserved_at: datetime
    expires_at: datetime
    deleted_at: datetime | None
    items: list[ItemOut]
    extensions: list[dict[str, Any]]


class AccessOut(BaseModel):
    id: int
    actor: str
    organisation_id: int | None
    purpose: str
    items: list[str]
    accessed_at: datetime


class ExtensionIn(In):
    reasons: str = Field(
        max_length=10_000, description="Why the data is still needed: the ongoing proceedings"
    )
    months: int = Field(default=0, ge=0, le=24)
    days: int = Field(default=0, ge=0, le=730)
    requested_by: str | None = Field(
        default=None,
        max_length=300,
        description="Provider staff: the court or authority that asked (an authority asks "
        "in its own name)",
    )


class ThreatIn(In):
    member_state: str | None = Field(
        default=None,
        max_length=2,
        description="EU/EEA country concerned; empty when unclear (the referral goes to Europol)",
    )
    reasons: str = Field(max_length=10_000)


class ReferralOut(BaseModel):
    id: int
    case_id: int
    hold_id: int | None
    member_state: str | None
    recipient: str
    recipient_organisation_id: int | None
    to_europol: bool
    message_id: int | None
    body_sha256: str
    referred_at: datetime


def _hold(h: preservation.HoldView) -> HoldOut:
    return HoldOut(**asdict(h))


@router.get("/preservation-holds", response_model=Page[HoldOut], summary="Preservation holds")
def list_holds(
    ctx: Ctx,
    caller: Caller,
    case_id: int | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[HoldOut]:
    rows, total = preservation.list_holds(
        ctx, caller, case_id=case_id, status=status, limit=limit, offset=offset
    )
    return Page(items=[_hold(h) for h in rows], total=total, limit=limit, offset=offset)


@router.get("/preservation-holds/{hold_id}", response_model=HoldOut, summary="One hold")
def get_hold(hold_id: int, ctx: Ctx, caller: Caller) -> HoldOut:
    return _hold(preservation.get_hold(ctx, caller, hold_id))


@router.get(
    "/preservation-holds/{hold_id}/accesses",
    response_model=list[AccessOut],
    summary="Who opened the hold's data, when and why",
)
def list_accesses(hold_id: int, ctx: Ctx, caller: Caller) -> list[AccessOut]:
    return [AccessOut(**asdict(a)) for a in preservation.list_accesses(ctx, caller, hold_id)]


@router.post(
    "/preservation-holds/{hold_id}/extensions",
    response_model=HoldOut,
    summary="Keep the data longer on a reasoned request (authority or court)",
)
def extend(hold_id: int, body: ExtensionIn, ctx: Ctx, caller: Caller) -> HoldOut:
    return _hold(preservation.extend(ctx, caller, hold_id, **body.model_dump()))


@router.post(
    "/preservation-holds/{hold_id}/content",
    status_code=201,
    response_model=HoldOut,
    summary="The platform hands over the removed file (raw body; encrypted as stored)",
)
async def add_content(
    hold_id: int,
    request: Request,
    ctx: Ctx,
    caller: Caller,
    filename: Annotated[str | None, Query(max_length=200)] = None,
) -> HoldOut:
    # Spooled to a temporary file as it arrives (the upload limit bounds it, see
    # CLEANIT_MAX_CONTENT_BYTES), then encrypted into the vault chunk by chunk: a large
    # video is never held whole in memory.
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
        async for piece in request.stream():
            await run_in_threadpool(spool.write, piece)
        await run_in_threadpool(spool.seek, 0)
        chunks = iter(partial(spool.read, CHUNK), b"")
        view = await run_in_threadpool(
            preservation.add_content,
            ctx,
            caller,
            hold_id,
            chunks,
            filename=filename,
            media_type=request.headers.get("content-type"),
        )
    return _hold(view)


@router.get(
    "/preservation-holds/{hold_id}/items/{name}",
    summary="One preserved item, decrypted (the access is logged with its purpose)",
    response_class=StreamingResponse,
)
def open_item(
    hold_id: int,
    name: str,
    ctx: Ctx,
    caller: Caller,
    purpose: Purpose = None,
    reason: Reason = None,
) -> StreamingResponse:
    item, chunks = preservation.open_item(
        ctx, caller, hold_id, name, purpose=purpose, reason=reason
    )
    # Content-Length lets the client notice a transfer cut short: the vault checks the
    # whole item's hash only at its end and aborts the stream if it fails.
    return StreamingResponse(
        chunks,
        media_type=item.media_type,
        headers={
            "Content-Length": str(item.size),
            "Content-Disposition": f'attachment; filename="{item.name}"',
            "X-Content-SHA256": item.sha256,
            "Cache-Control": "no-store",
        },
    )


@router.get(
    "/preservation-holds/{hold_id}/evidence-package",
    summary="The hold's evidence package (zip, verifiable offline with `cleanit evidence verify`)",
    response_class=FileResponse,
)
def evidence_package(
    hold_id: int, ctx: Ctx, caller: Caller, purpose: Purpose = None, reason: Reason = None
) -> FileResponse:
    folder = Path(tempfile.mkdtemp(prefix="cleanit-evidence-"))
    path = folder / f"evidence-hold-{hold_id}.zip"

    def cleanup() -> None:
        path.unlink(missing_ok=True)
        folder.rmdir()

    try:
        info = preservation.export_evidence(
            ctx, caller, hold_id, path, purpose=purpose, reason=reason
        )
    except BaseException:
        cleanup()
        raise
    return FileResponse(
        path,
        media_type="application/zip",
        filename=path.name,
        headers={
            "X-Package-Id": info.package_id,
            "X-Manifest-SHA256": info.manifest_sha256,
            "Cache-Control": "no-store",
        },
        # The package is plaintext: it lives on this server only while it is sent.
        background=BackgroundTask(cleanup),
    )


@router.post(
    "/cases/{case_id}/threat-to-life",
    status_code=201,
    response_model=ReferralOut,
    summary="Send content that threatens life to the competent authority or Europol at once",
)
def refer_threat_to_life(case_id: int, body: ThreatIn, ctx: Ctx, caller: Caller) -> ReferralOut:
    ref = threat_to_life.refer_threat_to_life(ctx, caller, case_id, body.member_state, body.reasons)
    return ReferralOut(**asdict(ref))
