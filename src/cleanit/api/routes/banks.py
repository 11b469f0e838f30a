"""/api/v1/banks (hash lists and their entries) and /api/v1/matching."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from cleanit.api.schemas import In, Page
from cleanit.api.security import Caller, Ctx
from cleanit.domain.errors import InvalidInput
from cleanit.services import banks, exchanges, matching, matching_batches

router = APIRouter(tags=["banks"])


class BankIn(In):
    name: str = Field(max_length=200)
    description: str = ""
    labels: list[str] = Field(default_factory=list, max_length=20)
    thresholds: dict[str, int] | None = Field(
        default=None,
        description="Largest matching distance per signal type (pdq: 0-70 bits; "
        "text_minhash: 0-60 percent of dissimilarity; exact types: 0)",
    )
    mode: str = Field(
        default="review",
        description="'review' (a match opens a case) or 'auto_action' (a confirmed match is "
        "acted on automatically; give auto_action and auto_terms_clause_version_id)",
    )
    category: str = "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY"
    enabled: bool = True
    negative: bool = Field(default=False, description="Known false positives: matches suppress")
    auto_action: str | None = Field(
        default=None, description="auto_action banks: the item-level action to take"
    )
    auto_terms_clause_version_id: int | None = Field(
        default=None, description="auto_action banks: the terms clause version (in force) cited"
    )


class BankPatch(In):
    name: str | None = Field(default=None, max_length=200)
    description: str | None = None
    labels: list[str] | None = Field(default=None, max_length=20)
    thresholds: dict[str, int] | None = None
    mode: str | None = None
    category: str | None = None
    enabled: bool | None = None
    auto_action: str | None = None
    auto_terms_clause_version_id: int | None = None


class BankOut(BaseModel):
    id: int
    organisation_id: int
    name: str
    description: str
    labels: list[str]
    thresholds: dict[str, int]
    mode: str
    category: str
    enabled: bool
    negative: bool
    entry_count: int
    created_at: datetime
    updated_at: datetime
    auto_action: str | None
    auto_terms_clause_version_id: int | None


class EntryIn(In):
    signal_type: str = Field(description="pdq, md5, sha256, url, video_md5 or text_minhash")
    value: str = Field(max_length=8192)
    labels: list[str] = Field(default_factory=list, max_length=20)
    review_date: datetime | None = None
    source: str = Field(default="local", max_length=300)


class EntryOut(BaseModel):
    id: int
    bank_id: int
    signal_type: str
    value: str
    labels: list[str]
    source: str
    added_by: str
    added_at: datetime
    review_date: datetime | None
    removed_at: datetime | None
    removed_by: str | None
    quarantined_at: datetime | None


class ImportIn(In):
    # The body limit bounds the file; the usual per-string limit does not apply.
    model_config = ConfigDict(str_max_length=None)
    filename: str = Field(max_length=200)
    csv: str = Field(description="Lines 'signal_type,value,labels' (labels separated by ';')")
    review_date: datetime | None = None


class ImportOut(BaseModel):
    bank_id: int
    added: int
    skipped_duplicates: int


class LookupIn(In):
    signal_type: str = Field(description="pdq, md5, sha256, url, video_md5 or text_minhash")
    hashes: list[str] = Field(min_length=1, max_length=matching.MAX_LOOKUP_HASHES)


class ContentMatchIn(In):
    model_config = ConfigDict(str_max_length=None)
    content_base64: str | None = Field(
        default=None,
        description="The file, base64-encoded (bounded by the body limit); or give storage_url",
    )
    storage_url: str | None = Field(
        default=None,
        max_length=8192,
        description="Where the object is in your own storage (a host of your organisation's "
        "domains); fetched within the configured content limit, no redirects followed",
    )
    url: str | None = Field(default=None, max_length=8192, description="Where the content is")
    content_type: str | None = Field(default=None, max_length=200)


def _bank(b: banks.BankView) -> BankOut:
    return BankOut(**asdict(b))


def _entry(e: banks.EntryView) -> EntryOut:
    return EntryOut(**asdict(e))


@router.post("/banks", status_code=201, response_model=BankOut, summary="Create a bank")
def create_bank(body: BankIn, ctx: Ctx, caller: Caller) -> BankOut:
    return _bank(banks.create_bank(ctx, caller, **body.model_dump()))


@router.get("/banks", response_model=list[BankOut], summary="Your organisation's banks")
def list_banks(ctx: Ctx, caller: Caller) -> list[BankOut]:
    return [_bank(b) for b in banks.list_banks(ctx, caller)]


@router.get("/banks/{bank_id}", response_model=BankOut, summary="One bank")
def get_bank(bank_id: int, ctx: Ctx, caller: Caller) -> BankOut:
    return _bank(banks.get_bank(ctx, caller, bank_id))


@router.patch(
    "/banks/{bank_id}",
    response_model=BankOut,
    summary="Change a bank: name, labels, thresholds, mode, enable or disable",
)
def update_bank(bank_id: int, body: BankPatch, ctx: Ctx, caller: Caller) -> BankOut:
    return _bank(banks.update_bank(ctx, caller, bank_id, **body.model_dump(exclude_unset=True)))


@router.post(
    "/banks/{bank_id}/entries", status_code=201, response_model=EntryOut, summary="Add a hash"
)
def add_entry(bank_id: int, body: EntryIn, ctx: Ctx, caller: Caller) -> EntryOut:
    return _entry(banks.add_entry(ctx, caller, bank_id, **body.model_dump()))


@router.get("/banks/{bank_id}/entries", response_model=Page[EntryOut], summary="A bank's entries")
def list_entries(
    bank_id: int,
    ctx: Ctx,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=banks.MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    include_removed: bool = False,
) -> Page[EntryOut]:
    rows, total = banks.list_entries(
        ctx, caller, bank_id, include_removed=include_removed, limit=limit, offset=offset
    )
    return Page(items=[_entry(e) for e in rows], total=total, limit=limit, offset=offset)


@router.delete(
    "/banks/{bank_id}/entries/{entry_id}",
    response_model=EntryOut,
    summary="Remove an entry (kept, marked removed, audited)",
)
def remove_entry(bank_id: int, entry_id: int, ctx: Ctx, caller: Caller) -> EntryOut:
    return _entry(banks.remove_entry(ctx, caller, bank_id, entry_id))


@router.post(
    "/banks/{bank_id}/imports",
    status_code=201,
    response_model=ImportOut,
    summary="Import a CSV of hashes: every line or none (the problem names each bad line)",
)
def import_entries(bank_id: int, body: ImportIn, ctx: Ctx, caller: Caller) -> ImportOut:
    r = banks.import_entries(
        ctx,
        caller,
        bank_id,
        filename=body.filename,
        text=body.csv,
        review_date=body.review_date,
    )
    return ImportOut(**asdict(r))


@router.post(
    "/matching/lookup",
    summary="Which entries of your banks match these hashes",
)
def lookup(body: LookupIn, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    found = matching.lookup(ctx, caller, body.signal_type, body.hashes)
    return {
        "signal_type": body.signal_type.strip().lower(),
        "results": [
            {"hash": h, "matches": [asdict(m) for m in found[h]]}
            for h in dict.fromkeys(body.hashes)
        ],
        "warnings": matching.matcher_warnings(ctx),
    }


def _content_source(body: ContentMatchIn, request: Request) -> tuple[str, dict[str, Any]]:
    """Which field holds the content, and the service arguments for it."""
    if (body.content_base64 is None) == (body.storage_url is None):
        raise InvalidInput(
            "give exactly one of content_base64 (the file itself) and storage_url (where it "
            "is in your storage)",
            field="content_base64" if body.content_base64 is None else "storage_url",
        )
    settings = request.app.state.settings
    if body.storage_url is not None:
        return "storage_url", {
            "storage_url": body.storage_url,
            "max_bytes": settings.max_content_bytes,
        }
    try:
        data = base64.b64decode(body.content_base64 or "", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("content_base64 is not valid base64", field="content_base64") from None
    return "content_base64", {"data": data, "max_bytes": settings.max_body_bytes}


@contextmanager
def _file_named(source: str) -> Iterator[None]:
    """The hasher names the content ``file``; over HTTP it is the request field it came in."""
    try:
        yield
    except InvalidInput as exc:
        if exc.field == "file":
            exc.field = source
        raise


@router.post(
    "/matching/hashes",
    summary="Hash content (no matching, nothing stored): MD5, SHA-256, PDQ, vPDQ, text MinHash",
)
def hash_content(
    body: ContentMatchIn, request: Request, ctx: Ctx, caller: Caller
) -> dict[str, Any]:
    source, content = _content_source(body, request)
    with _file_named(source):
        results = matching.hash_content(ctx, caller, content_type=body.content_type, **content)
    return {
        "signals": [
            {
                "signal_type": r.signal_type.value,
                "hash": r.hash.value if r.hash else None,
                "quality": r.quality,
                "dihedral": [h.value for h in r.dihedral[1:]],
                "notes": list(r.notes),
            }
            for r in results
        ]
    }


@router.post(
    "/matching/content",
    summary="Hash content, match it against your banks and open a case for review matches",
)
def match_content(
    body: ContentMatchIn, request: Request, ctx: Ctx, caller: Caller
) -> dict[str, Any]:
    source, content = _content_source(body, request)
    with _file_named(source):
        result = matching.match_content(
            ctx, caller, url=body.url, content_type=body.content_type, **content
        )
    return asdict(result)


class OpinionIn(In):
    opinion: str = Field(
        description="'true_positive' or 'false_positive': what the entry's matches turned out "
        "to be; sent back to the exchange the entry came from"
    )


class OpinionOut(BaseModel):
    id: int
    exchange_id: int
    entry_id: int
    record_id: str = Field(description="The exchange's id for the record")
    opinion: str
    status: str = Field(description="pending, sent, failed or superseded")
    requested_by: str
    requested_at: datetime
    sent_at: datetime | None
    attempts: int
    last_error: str | None
    sent_to: list[str]


@router.post(
    "/banks/{bank_id}/entries/{entry_id}/opinions",
    status_code=201,
    response_model=OpinionOut,
    summary="Tell the exchange an entry came from whether it was right (sent by a job)",
)
def report_opinion(
    bank_id: int, entry_id: int, body: OpinionIn, ctx: Ctx, caller: Caller
) -> OpinionOut:
    view = exchanges.report_opinion(ctx, caller, entry_id, body.opinion, bank_id=bank_id)
    return OpinionOut(**asdict(view))


class BatchItemIn(In):
    storage_url: str = Field(
        max_length=8192, description="Where the object is in your own storage (your domains)"
    )
    url: str | None = Field(
        default=None,
        max_length=8192,
        description="Where the content is published: a match then opens or joins its case",
    )
    content_type: str | None = Field(default=None, max_length=200)


class BatchIn(In):
    items: list[BatchItemIn] = Field(min_length=1, max_length=matching_batches.MAX_BATCH_ITEMS)


class BatchOut(BaseModel):
    id: int
    organisation_id: int
    status: str = Field(description="queued, running or done (every item done or failed)")
    total: int
    queued: int
    done: int
    failed: int
    submitted_by: str
    created_at: datetime
    finished_at: datetime | None


class BatchItemOut(BaseModel):
    position: int = Field(description="The item's index in the submitted list, from 0")
    storage_url: str
    url: str | None
    content_type: str | None
    status: str = Field(description="queued, done or failed")
    md5: str | None
    sha256: str | None
    pdq: str | None
    matches: list[dict[str, Any]] = Field(
        description="As POST /matching/content answers: bank, entry, distance, labels"
    )
    case_id: int | None
    notes: list[str]
    error_code: str | None
    error: str | None
    finished_at: datetime | None


@router.post(
    "/matching/batches",
    status_code=202,
    response_model=BatchOut,
    summary="Submit up to 1000 objects of your storage for matching, as background jobs",
)
def submit_batch(body: BatchIn, response: Response, ctx: Ctx, caller: Caller) -> BatchOut:
    items = [i.model_dump(exclude_none=True) for i in body.items]
    view = matching_batches.submit_batch(ctx, caller, items)
    response.headers["Location"] = f"/api/v1/matching/batches/{view.id}"
    return BatchOut(**asdict(view))


@router.get(
    "/matching/batches/{batch_id}",
    response_model=BatchOut,
    summary="The progress of a batch",
)
def get_batch(batch_id: int, ctx: Ctx, caller: Caller) -> BatchOut:
    return BatchOut(**asdict(matching_batches.get_batch(ctx, caller, batch_id)))


@router.get(
    "/matching/batches/{batch_id}/items",
    response_model=Page[BatchItemOut],
    summary="The items of a batch with their matches, case or error",
)
def list_batch_items(
    batch_id: int,
    ctx: Ctx,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=matching_batches.MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    status: Annotated[str | None, Query(description="queued, done or failed")] = None,
) -> Page[BatchItemOut]:
    rows, total = matching_batches.list_items(
        ctx, caller, batch_id, limit=limit, offset=offset, status=status
    )
    return Page(
        items=[BatchItemOut(**asdict(r)) for r in rows], total=total, limit=limit, offset=offset
    )
