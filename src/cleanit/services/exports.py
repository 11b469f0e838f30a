"""Exporting a bank's live entries: STIX 2.1 bundles, CSV, and TAXII 2.1 collection pages.

Reading needs ``banks:read`` and membership of the bank's organisation (another
organisation's bank answers 404, as everywhere). Removed entries are not exported.
Each entry is an ``indicator`` whose pattern and id come from :mod:`cleanit.domain.stix`
(stable ids: re-exports update, never duplicate); ``created_by_ref`` names an ``identity``
for the owning organisation. See docs/exchanges.md.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import stix2  # type: ignore[import-untyped]
from sqlalchemy import select, tuple_

from cleanit.adapters.db.models import BankEntry, Organisation
from cleanit.domain import stix
from cleanit.domain.errors import InvalidInput, NotFound
from cleanit.domain.roles import Principal
from cleanit.services import banks
from cleanit.services.context import Context

CSV_HEADER = ("signal_type", "value", "labels", "added_at", "source")
DEFAULT_PAGE = 100
MAX_PAGE = 500


def timestamp(value: datetime) -> str:
    """A STIX/TAXII timestamp with microseconds, so ``added_after`` round-trips exactly."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_timestamp(text: str, field: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"not a timestamp: {text[:40]!r}; expected e.g. 2026-01-31T12:00:00Z", field=field
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def _live_entries(
    ctx: Context,
    bank_id: int,
    *,
    added_after: datetime | None = None,
    cursor: tuple[datetime, int] | None = None,
    limit: int | None = None,
) -> list[banks.EntryView]:
    with ctx.sessions() as s:
        query = select(BankEntry).where(
            BankEntry.bank_id == bank_id, BankEntry.removed_at.is_(None)
        )
        if added_after is not None:
            query = query.where(BankEntry.added_at > added_after)
        if cursor is not None:
            query = query.where(tuple_(BankEntry.added_at, BankEntry.id) > cursor)
        query = query.order_by(BankEntry.added_at, BankEntry.id)
        if limit is not None:
            query = query.limit(limit)
        return [banks.entry_view(e) for e in s.scalars(query)]


def _organisation(ctx: Context, organisation_id: int) -> tuple[str, str]:
    with ctx.sessions() as s:
        org = s.get(Organisation, organisation_id)
        if org is None:  # pragma: no cover - a bank always has its organisation
            raise NotFound("no such organisation")
        return org.slug, org.name


def identity(ctx: Context, bank: banks.BankView) -> Any:
    """The STIX ``identity`` of the organisation owning ``bank``."""
    slug, name = _organisation(ctx, bank.organisation_id)
    return stix2.Identity(
        id=stix.identity_id(bank.organisation_id),
        name=name,
        identity_class="organization",
        description=f"cleanit organisation '{slug}'",
        created=bank.created_at,
        modified=bank.created_at,
    )


def indicator(bank: banks.BankView, entry: banks.EntryView) -> Any:
    """The STIX ``indicator`` for one live entry of ``bank``."""
    labels = sorted({*bank.labels, *entry.labels})
    extra: dict[str, Any] = {"labels": labels} if labels else {}
    return stix2.Indicator(
        id=stix.indicator_id(bank.id, entry.signal_type, entry.value),
        created=entry.added_at,
        modified=entry.added_at,
        valid_from=entry.added_at,
        name=f"{entry.signal_type} in bank '{bank.name}'",
        pattern=stix.pattern(entry.signal_type, entry.value),
        pattern_type="stix",
        created_by_ref=stix.identity_id(bank.organisation_id),
        **extra,
    )


def _serialise(obj: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(obj.serialize())
    return data


def export_stix(ctx: Context, principal: Principal, bank_id: int) -> str:
    """A STIX 2.1 bundle (JSON text): the owner's identity and one indicator per entry."""
    bank = banks.get_bank(ctx, principal, bank_id)
    entries = _live_entries(ctx, bank.id)
    objects = [identity(ctx, bank), *(indicator(bank, e) for e in entries)]
    bundle_id = f"bundle--{stix.collection_uuid(bank.id)}"
    text: str = stix2.Bundle(objects=objects, id=bundle_id).serialize(pretty=True)
    return text


def export_csv(ctx: Context, principal: Principal, bank_id: int) -> str:
    """``signal_type,value,labels,added_at,source`` lines (labels separated by ``;``).

    :func:`cleanit.services.banks.import_entries` reads the first three columns back.
    """
    bank = banks.get_bank(ctx, principal, bank_id)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for e in _live_entries(ctx, bank.id):
        writer.writerow(
            (e.signal_type, e.value, ";".join(e.labels), timestamp(e.added_at), e.source)
        )
    return out.getvalue()


# --- TAXII 2.1 -------------------------------------------------------------------------


@dataclass(frozen=True)
class Collection:
    id: str
    bank_id: int
    title: str
    description: str


@dataclass(frozen=True)
class ObjectPage:
    objects: list[dict[str, Any]]
    more: bool
    next: str | None
    date_added_first: str | None
    date_added_last: str | None


def list_collections(ctx: Context, principal: Principal) -> list[Collection]:
    """One read-only collection per bank of the caller's organisation."""
    return [
        Collection(stix.collection_uuid(b.id), b.id, b.name, b.description)
        for b in banks.list_banks(ctx, principal)
    ]


def get_collection(ctx: Context, principal: Principal, collection_id: str) -> Collection:
    for c in list_collections(ctx, principal):
        if c.id == collection_id:
            return c
    raise NotFound("no such collection")


def _encode_cursor(entry: banks.EntryView) -> str:
    raw = f"{entry.added_at.isoformat()}|{entry.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(token: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        when, entry_id = raw.rsplit("|", 1)
        return _parse_timestamp(when, "next"), int(entry_id)
    except (binascii.Error, UnicodeDecodeError, ValueError, InvalidInput):
        raise InvalidInput("not a 'next' value this server gave out", field="next") from None


def _page(bank: banks.BankView, entries: Sequence[banks.EntryView], more: bool) -> ObjectPage:
    return ObjectPage(
        objects=[_serialise(indicator(bank, e)) for e in entries],
        more=more,
        next=_encode_cursor(entries[-1]) if more and entries else None,
        date_added_first=timestamp(entries[0].added_at) if entries else None,
        date_added_last=timestamp(entries[-1].added_at) if entries else None,
    )


def collection_objects(
    ctx: Context,
    principal: Principal,
    collection_id: str,
    *,
    added_after: str | None = None,
    limit: int | None = None,
    next_token: str | None = None,
) -> ObjectPage:
    """One page of a collection's indicators, oldest first (``next`` continues it)."""
    collection = get_collection(ctx, principal, collection_id)
    bank = banks.get_bank(ctx, principal, collection.bank_id)
    size = max(1, min(limit or DEFAULT_PAGE, MAX_PAGE))
    after = _parse_timestamp(added_after, "added_after") if added_after else None
    cursor = _decode_cursor(next_token) if next_token else None
    rows = _live_entries(ctx, bank.id, added_after=after, cursor=cursor, limit=size + 1)
    return _page(bank, rows[:size], len(rows) > size)


def collection_object(
    ctx: Context, principal: Principal, collection_id: str, object_id: str
) -> ObjectPage:
    """The one indicator with ``object_id`` in the collection (404 if there is none)."""
    collection = get_collection(ctx, principal, collection_id)
    bank = banks.get_bank(ctx, principal, collection.bank_id)
    if object_id.startswith("indicator--"):
        for e in _live_entries(ctx, bank.id):
            if stix.indicator_id(bank.id, e.signal_type, e.value) == object_id:
                return _page(bank, [e], False)
    raise NotFound("no such object in this collection")
