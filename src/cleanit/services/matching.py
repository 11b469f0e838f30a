"""Matching content and hashes against the organisation's banks.

* ``lookup``: which bank entries match these hashes (read only).
* ``match_content``: hash a file (MD5, SHA-256, PDQ and its rotations/mirrors, plus the URL
  if given), look every signal up, record each match as evidence and, for matches in
  ``review`` banks, open or join the case of that content (an automated-detection notice).

PDQ goes through the per-process index (``ctx.matching``: ``MatchIndexes``); exact types
(MD5, SHA-256) and URLs (canonical form, ``domain.signals.canonical_match_url``) by SQL
equality. A match in a *negative* bank (known false positives) suppresses every other match
of the same hash (``lookup``) or content (``match_content``). An entry that matches more
than ``flood_limit`` distinct items within ``flood_window_minutes`` is quarantined: it stops
matching, the change is audited and the bank's owner is told by e-mail.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from cleanit.adapters.db.models import (
    BANK_ENTRY_CHANGES,
    Bank,
    BankEntry,
    Case,
    Organisation,
    table,
)
from cleanit.adapters.db.models import Match as MatchRow
from cleanit.adapters.signals import DEFAULT_MAX_BYTES, hash_bytes, hash_file
from cleanit.domain.banks import BankMode, bank_signal_type
from cleanit.domain.errors import InvalidInput, NotFound
from cleanit.domain.notices import Category, NoticeDraft, SourceType, validate_notice
from cleanit.domain.roles import OrgKind, Permission, Principal
from cleanit.domain.signals import HashResult, SignalType, normalise_hash
from cleanit.services import audit, notices
from cleanit.services.authz import require, require_member
from cleanit.services.context import Context
from cleanit.services.outbox import queue_message

MAX_LOOKUP_HASHES = 1000


@dataclass(frozen=True)
class BankMatch:
    """One bank entry that matched one queried signal."""

    query: str  # the signal that was looked up (canonical form)
    signal_type: str
    bank_id: int
    bank_name: str
    entry_id: int
    distance: int
    labels: list[str]  # the bank's and the entry's labels
    mode: str
    negative: bool
    suppressed: bool = False  # a negative bank matched the same hash or content
    quarantined: bool = False  # this match tipped the entry over the flood limit


@dataclass(frozen=True)
class ContentMatchResult:
    md5: str
    sha256: str
    pdq: str | None
    pdq_quality: int | None
    matches: list[BankMatch]
    case_id: int | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Bank:
    id: int
    name: str
    labels: list[str]
    pdq_threshold: int
    mode: str
    negative: bool
    category: str


def _usable_banks(s: Session, organisation_id: int | None) -> dict[int, _Bank]:
    rows = s.scalars(
        select(Bank).where(Bank.organisation_id == organisation_id, Bank.enabled.is_(True))
    ).all()
    return {
        b.id: _Bank(
            b.id,
            b.name,
            list(b.labels),
            int(b.thresholds.get(SignalType.PDQ.value, 31)),
            b.mode,
            b.negative,
            b.category,
        )
        for b in rows
    }


def _live_entries(s: Session, where: Iterable[Any]) -> list[BankEntry]:
    return list(
        s.scalars(
            select(BankEntry).where(
                *where, BankEntry.removed_at.is_(None), BankEntry.quarantined_at.is_(None)
            )
        ).all()
    )


def _find(
    s: Session,
    ctx: Context,
    banks: dict[int, _Bank],
    signal_type: SignalType,
    queries: Sequence[str],
) -> dict[str, list[BankMatch]]:
    """Matches per query (canonical values of one signal type) in ``banks``."""
    found: dict[str, list[BankMatch]] = {q: [] for q in queries}
    if not banks or not queries:
        return found
    bank_ids = list(banks)
    if signal_type is SignalType.PDQ:
        threshold = max(b.pdq_threshold for b in banks.values())
        hits = ctx.matching.search(s, list(queries), threshold)
        distances = {
            (q, m.entry_id): m.distance for q, ms in zip(queries, hits, strict=True) for m in ms
        }
        ids = {entry_id for _, entry_id in distances}
        entries = (
            {
                e.id: e
                for e in _live_entries(s, [BankEntry.id.in_(ids), BankEntry.bank_id.in_(bank_ids)])
            }
            if ids
            else {}
        )
        pairs = [
            (q, entries[entry_id], d)
            for (q, entry_id), d in distances.items()
            if entry_id in entries and d <= banks[entries[entry_id].bank_id].pdq_threshold
        ]
    else:
        rows = _live_entries(
            s,
            [
                BankEntry.signal_type == signal_type.value,
                BankEntry.value.in_(list(queries)),
                BankEntry.bank_id.in_(bank_ids),
            ],
        )
        pairs = [(e.value, e, 0) for e in rows]
    for query, entry, distance in pairs:
        bank = banks[entry.bank_id]
        found[query].append(
            BankMatch(
                query=query,
                signal_type=signal_type.value,
                bank_id=bank.id,
                bank_name=bank.name,
                entry_id=entry.id,
                distance=distance,
                labels=sorted({*bank.labels, *entry.labels}),
                mode=bank.mode,
                negative=bank.negative,
            )
        )
    for matches in found.values():
        matches.sort(key=lambda m: (m.distance, m.entry_id))
    return found


def _suppress(matches: list[BankMatch]) -> list[BankMatch]:
    """A match in a negative bank suppresses every other match of the same content."""
    if not any(m.negative for m in matches):
        return matches
    return [m if m.negative else replace(m, suppressed=True) for m in matches]


def lookup(
    ctx: Context, principal: Principal, signal_type: str, hashes: Sequence[str]
) -> dict[str, list[BankMatch]]:
    """Which entries of the caller's organisation's banks match each hash.

    Keys are the hashes as given; each is validated (InvalidInput names ``hashes[i]``).
    """
    require(principal, Permission.MATCH_CONTENT)
    kind = bank_signal_type(signal_type)
    if not hashes:
        raise InvalidInput("give at least one hash", field="hashes")
    if len(hashes) > MAX_LOOKUP_HASHES:
        raise InvalidInput(f"at most {MAX_LOOKUP_HASHES} hashes per lookup", field="hashes")
    canonical = [normalise_hash(kind, h, field=f"hashes[{i}]") for i, h in enumerate(hashes)]
    with ctx.sessions() as s:
        banks = _usable_banks(s, principal.organisation_id)
        found = _find(s, ctx, banks, kind, list(dict.fromkeys(canonical)))
    return {h: _suppress(found[c]) for h, c in zip(hashes, canonical, strict=True)}


def _best_per_entry(matches: Iterable[BankMatch]) -> list[BankMatch]:
    best: dict[int, BankMatch] = {}
    for m in matches:
        if m.entry_id not in best or m.distance < best[m.entry_id].distance:
            best[m.entry_id] = m
    return sorted(best.values(), key=lambda m: (m.distance, m.bank_id, m.entry_id))


def _quarantine_floods(
    s: Session, ctx: Context, principal: Principal, matches: list[BankMatch], sha256: str
) -> list[BankMatch]:
    """Quarantine the entries this content takes over the flood limit; mark those matches."""
    limit = ctx.matching.flood_limit
    since = ctx.now() - timedelta(minutes=ctx.matching.flood_window_minutes)
    out: list[BankMatch] = []
    for m in matches:
        if m.suppressed:
            out.append(m)
            continue
        others = (
            s.scalar(
                select(func.count(func.distinct(MatchRow.content_sha256))).where(
                    MatchRow.entry_id == m.entry_id,
                    MatchRow.matched_at >= since,
                    MatchRow.content_sha256 != sha256,
                )
            )
            or 0
        )
        if others + 1 <= limit:
            out.append(m)
            continue
        _quarantine(s, ctx, principal, m, others + 1)
        out.append(replace(m, quarantined=True))
    return out


def _quarantine(s: Session, ctx: Context, principal: Principal, m: BankMatch, items: int) -> None:
    now = ctx.now()
    done = s.execute(
        update(BankEntry)
        .where(BankEntry.id == m.entry_id, BankEntry.quarantined_at.is_(None))
        .values(quarantined_at=now, changed_seq=func.nextval(BANK_ENTRY_CHANGES))
        .returning(BankEntry.id)
    ).first()
    if done is None:
        return
    owner = s.execute(
        select(Organisation.id, Organisation.contact_email)
        .join(Bank, Bank.organisation_id == Organisation.id)
        .where(Bank.id == m.bank_id)
    ).one()
    window = ctx.matching.flood_window_minutes
    if owner.contact_email:
        queue_message(
            s,
            kind="bank.entry_quarantined",
            recipient=owner.contact_email,
            subject=f"Bank entry {m.entry_id} quarantined: it matched too much",
            body=(
                f"Entry {m.entry_id} ({m.signal_type}) of your bank '{m.bank_name}' matched "
                f"{items} different items within {window} minutes, more than the limit of "
                f"{ctx.matching.flood_limit}. It no longer matches anything until someone "
                "reviews it: such an entry is usually too generic (a logo, a blank image) "
                "or a mistake.\n"
            ),
            related=("bank_entry", m.entry_id),
        )
    audit.record(
        s,
        "system:matching",
        "bank_entry.quarantined",
        "bank_entry",
        m.entry_id,
        {"bank": m.bank_id, "items": items, "window_minutes": window, "by": principal.label},
        organisation_id=owner.id,
        at=now,
    )


def _open_case(
    s: Session, ctx: Context, principal: Principal, url: str, review: list[BankMatch]
) -> int | None:
    """Open or join the case of the content at ``url`` with an automated-detection notice."""
    if principal.org_kind is not OrgKind.HOSTING_PROVIDER:
        return None
    slug = s.scalar(select(Organisation.slug).where(Organisation.id == principal.organisation_id))
    assert slug is not None
    listed = ", ".join(sorted({f"'{m.bank_name}' entry {m.entry_id}" for m in review}))
    categories = sorted(
        {
            c
            for (c,) in s.execute(
                select(Bank.category).where(Bank.id.in_({m.bank_id for m in review}))
            )
        }
    )
    draft = validate_notice(
        NoticeDraft(
            provider=slug,
            source_type=SourceType.AUTOMATED_DETECTION,
            category=Category(categories[0]),
            explanation=f"Hash match against {listed}."[:4000],
            locations=(url,),
            jurisdiction="EU",
            good_faith=True,
        ),
        principal,
    )
    receipt = notices.receive_in(s, ctx, principal, draft, None)
    return receipt.case_ids[0]


def _content_signals(results: list[HashResult]) -> dict[SignalType, list[str]]:
    out: dict[SignalType, list[str]] = {}
    for r in results:
        if r.hash is None:
            continue
        values = [r.hash.value, *(h.value for h in r.dihedral)]
        out[r.signal_type] = list(dict.fromkeys(values))
    return out


def match_content(
    ctx: Context,
    principal: Principal,
    *,
    data: bytes | None = None,
    path: str | Path | None = None,
    url: str | None = None,
    content_type: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ContentMatchResult:
    """Hash the content, match it, record the evidence and open a case for review matches.

    A case is opened (or joined) only when the URL of the content is given and the caller
    is a hosting provider (the case is about content on its service).
    """
    require(principal, Permission.MATCH_CONTENT)
    if (data is None) == (path is None):
        raise InvalidInput("give the content or the path of a file, not both", field="content")
    canonical_url = normalise_hash(SignalType.URL, url, field="url") if url is not None else None
    if data is not None:
        results = hash_bytes(data, content_type, max_bytes=max_bytes)
    else:
        assert path is not None
        results = hash_file(path, max_bytes=max_bytes, content_type_hint=content_type)
    signals = _content_signals(results)
    pdq = next((r for r in results if r.signal_type is SignalType.PDQ), None)
    sha256 = signals[SignalType.SHA256][0]
    notes = [note for r in results for note in r.notes]
    if canonical_url is not None:
        signals[SignalType.URL] = [canonical_url]
    with ctx.transaction() as s:
        banks = _usable_banks(s, principal.organisation_id)
        found: list[BankMatch] = []
        for kind, values in signals.items():
            for matches in _find(s, ctx, banks, kind, values).values():
                found.extend(matches)
        matches = _quarantine_floods(s, ctx, principal, _suppress(_best_per_entry(found)), sha256)
        review = [
            m
            for m in matches
            if not (m.suppressed or m.quarantined or m.negative) and m.mode == BankMode.REVIEW
        ]
        case_id = _open_case(s, ctx, principal, url, review) if review and url else None
        if matches:
            now = ctx.now()
            s.execute(
                insert(table(MatchRow)),
                [
                    {
                        "case_id": case_id if m in review else None,
                        "bank_id": m.bank_id,
                        "entry_id": m.entry_id,
                        "organisation_id": principal.organisation_id,
                        "signal_type": m.signal_type,
                        "distance": m.distance,
                        "content_sha256": sha256,
                        "suppressed": m.suppressed,
                        "matched_at": now,
                    }
                    for m in matches
                ],
            )
            audit.record(
                s,
                principal,
                "content.matched",
                "content",
                sha256,
                {
                    "case": case_id,
                    "matches": [
                        {
                            "bank": m.bank_id,
                            "entry": m.entry_id,
                            "distance": m.distance,
                            "suppressed": m.suppressed,
                            "quarantined": m.quarantined,
                        }
                        for m in matches
                    ],
                },
                at=now,
            )
    return ContentMatchResult(
        md5=signals[SignalType.MD5][0],
        sha256=sha256,
        pdq=pdq.hash.value if pdq is not None and pdq.hash is not None else None,
        pdq_quality=pdq.quality if pdq is not None else None,
        matches=matches,
        case_id=case_id,
        notes=notes,
    )


@dataclass(frozen=True)
class CaseMatch:
    bank_id: int
    bank_name: str
    entry_id: int
    signal_type: str
    distance: int
    matched_at: str


def case_matches(ctx: Context, principal: Principal, case_id: int) -> list[CaseMatch]:
    """The match evidence recorded in a case (readers of the case's provider)."""
    require(principal, Permission.READ_CASES)
    with ctx.sessions() as s:
        provider = s.scalar(select(Case.provider_id).where(Case.id == case_id))
        if provider is None:
            raise NotFound("no such case")
        require_member(principal, provider)
        rows = s.execute(
            select(MatchRow, Bank.name)
            .join(Bank, Bank.id == MatchRow.bank_id)
            .where(MatchRow.case_id == case_id)
            .order_by(MatchRow.id)
        ).all()
        return [
            CaseMatch(
                m.bank_id, name, m.entry_id, m.signal_type, m.distance, m.matched_at.isoformat()
            )
            for m, name in rows
        ]
