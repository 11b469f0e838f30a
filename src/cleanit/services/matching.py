"""Matching content and hashes against the organisation's banks.

* ``lookup``: which bank entries match these hashes (read only).
* ``match_content``: hash a file (MD5, SHA-256, PDQ and its rotations/mirrors, plus the URL
  if given), look every signal up, record each match as evidence and, for confirmed
  matches, open or join the case of that content (an automated-detection notice). A
  confirmed match in an ``auto_action`` bank also takes the bank's configured decision
  (``_auto_decide``: fully automated, through ``decisions.put_in_force``). The content's
  signals are kept ``ctx.seen_content_retention`` (``seen_content``) for
* ``rematch``: retroactive matching of recently seen content against new bank entries
  (the ``matching.rematch`` job deferred by ``banks.add_entry``/``import_entries``).

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
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, insert, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from cleanit.adapters.content import hash_content_bytes, hash_content_file
from cleanit.adapters.db.models import (
    BANK_ENTRY_CHANGES,
    Assessment,
    Bank,
    BankEntry,
    Case,
    Decision,
    Organisation,
    SeenContent,
    table,
)
from cleanit.adapters.db.models import Match as MatchRow
from cleanit.adapters.signals import DEFAULT_MAX_BYTES
from cleanit.domain.assessments import AssessmentStatus, Finding
from cleanit.domain.banks import DEFAULT_THRESHOLDS, BankMode, bank_signal_type
from cleanit.domain.cases import CaseEvent, CaseState, next_state
from cleanit.domain.decisions import (
    Action,
    AutomatedDecision,
    DecisionRequest,
    DecisionStatus,
    Ground,
    check_decision,
)
from cleanit.domain.errors import InvalidInput, NotFound
from cleanit.domain.notices import Category, NoticeDraft, SourceType, validate_notice
from cleanit.domain.roles import OrgKind, Permission, Principal
from cleanit.domain.signals import (
    SIMILARITY_TYPES,
    HashResult,
    SignalType,
    normalise_hash,
    signal_distance,
)
from cleanit.domain.text_signals import NUM_PERM, distance_of_agreement, min_similarity_for
from cleanit.services import audit, notices
from cleanit.services.authz import require, require_member
from cleanit.services.context import Context
from cleanit.services.decisions import put_in_force
from cleanit.services.outbox import queue_message
from cleanit.services.registries import clause_reference, clause_version_in_force
from cleanit.services.storage_urls import fetch_storage_object

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
    text_minhash: str | None = None


@dataclass(frozen=True)
class _Bank:
    id: int
    name: str
    labels: list[str]
    thresholds: dict[str, int]
    mode: str
    negative: bool
    category: str

    def threshold(self, kind: SignalType) -> int:
        # Banks created before a signal type existed lack its key: the default applies.
        return int(self.thresholds.get(kind.value, DEFAULT_THRESHOLDS.get(kind.value, 0)))


def _bank_match(
    bank: _Bank, entry: BankEntry, query: str, signal_type: str, distance: int
) -> BankMatch:
    return BankMatch(
        query=query,
        signal_type=signal_type,
        bank_id=bank.id,
        bank_name=bank.name,
        entry_id=entry.id,
        distance=distance,
        labels=sorted({*bank.labels, *entry.labels}),
        mode=bank.mode,
        negative=bank.negative,
    )


def _usable_banks(s: Session, organisation_id: int | None) -> dict[int, _Bank]:
    rows = s.scalars(
        select(Bank).where(Bank.organisation_id == organisation_id, Bank.enabled.is_(True))
    ).all()
    return {
        b.id: _Bank(
            b.id,
            b.name,
            list(b.labels),
            dict(b.thresholds),
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


def _candidates(
    s: Session, ctx: Context, kind: SignalType, queries: Sequence[str], threshold: int
) -> dict[tuple[str, int], int | None]:
    """(query, entry id) -> distance for the indexed entries within ``threshold``; None for
    a vPDQ candidate (a video sharing a frame), whose distance needs the whole entry."""
    if kind is SignalType.PDQ:
        hits = ctx.matching.search(s, list(queries), threshold)
        return {
            (q, m.entry_id): m.distance for q, ms in zip(queries, hits, strict=True) for m in ms
        }
    if kind is SignalType.VPDQ:
        found = ctx.matching.search_vpdq(s, list(queries))
        return {
            (q, entry_id): None for q, ids in zip(queries, found, strict=True) for entry_id in ids
        }
    assert kind is SignalType.TEXT_MINHASH
    texts = ctx.matching.search_text(s, list(queries), min_similarity_for(threshold))
    return {
        (q, m.entry_id): distance_of_agreement(round(m.similarity * NUM_PERM))
        for q, ms in zip(queries, texts, strict=True)
        for m in ms
    }


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
    if signal_type in SIMILARITY_TYPES:
        candidates = _candidates(
            s, ctx, signal_type, queries, max(b.threshold(signal_type) for b in banks.values())
        )
        ids = {entry_id for _, entry_id in candidates}
        entries = (
            {
                e.id: e
                for e in _live_entries(s, [BankEntry.id.in_(ids), BankEntry.bank_id.in_(bank_ids)])
            }
            if ids
            else {}
        )
        pairs = []
        for (q, entry_id), known in candidates.items():
            entry = entries.get(entry_id)
            if entry is None:  # another organisation's, removed or quarantined
                continue
            # vPDQ: the index found a shared frame; now the whole videos are compared.
            d = known if known is not None else signal_distance(signal_type, q, entry.value)
            if d is not None and d <= banks[entry.bank_id].threshold(signal_type):
                pairs.append((q, entry, d))
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
        found[query].append(_bank_match(bank, entry, query, signal_type.value, distance))
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


def matcher_warnings(ctx: Context) -> list[str]:
    """Why some bank entries cannot match right now (e.g. the memory budget), if any."""
    warning = ctx.matching.warning
    return [warning] if warning else []


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


def _act(
    s: Session,
    ctx: Context,
    principal: Principal,
    url: str | None,
    sha256: str,
    matches: list[BankMatch],
) -> int | None:
    """Open (or join) the content's case for confirmed matches, take the decision of an
    auto_action bank, and record every match as evidence. Returns the case, if any."""
    confirmed = [m for m in matches if not (m.suppressed or m.quarantined or m.negative)]
    case_id = _open_case(s, ctx, principal, url, confirmed) if confirmed and url else None
    decision_id = None
    if case_id is not None:
        auto = [m for m in confirmed if m.mode == BankMode.AUTO_ACTION]
        if auto:
            decision_id = _auto_decide(s, ctx, case_id, auto[0])
    if not matches:
        return case_id
    now = ctx.now()
    s.execute(
        insert(table(MatchRow)),
        [
            {
                "case_id": case_id if m in confirmed else None,
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
            "auto_decision": decision_id,
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
    return case_id


def auto_actor(bank_id: int) -> str:
    return f"system:auto-action:bank:{bank_id}"


def _auto_decide(s: Session, ctx: Context, case_id: int, m: BankMatch) -> int | None:
    """The configured decision of an auto_action bank, through the human decision path.

    Acts only on a case still waiting for its first look (open, never decided): a case a
    person reviews, or decided before, stays theirs. The decision rests on a confirmed
    terms assessment authored by no one and marked automated, citing the bank's clause
    version if it is still in force (otherwise the case simply waits for review).
    """
    bank = s.get(Bank, m.bank_id)
    assert bank is not None
    if bank.auto_action is None or bank.auto_terms_clause_version_id is None:
        return None
    case = s.get(Case, case_id, with_for_update=True)
    assert case is not None
    decided_before = s.scalar(select(Decision.id).where(Decision.case_id == case.id).limit(1))
    if case.state != CaseState.OPEN.value or decided_before is not None:
        return None
    now = ctx.now()
    actor = auto_actor(bank.id)
    clause, version = clause_reference(s, bank.auto_terms_clause_version_id)
    current = clause_version_in_force(s, clause.id, now)
    if current is None or current.id != version.id:
        audit.record(
            s,
            actor,
            "auto_action.skipped",
            "case",
            case.id,
            {"bank": bank.id, "reason": f"clause '{clause.key}' v{version.version} not in force"},
            organisation_id=case.provider_id,
            at=now,
        )
        return None
    what = (
        f"The content matched entry {m.entry_id} ({m.signal_type}, distance {m.distance}) "
        f"of the bank '{m.bank_name}'"
    )
    assessment = Assessment(
        case_id=case.id,
        organisation_id=case.provider_id,
        author_id=None,
        finding=Finding.INCOMPATIBLE_WITH_TERMS.value,
        terms_clause_version_id=version.id,
        explanation=(
            f"Automated assessment. {what}, which lists content incompatible with the terms "
            f"clause '{clause.key}' (v{version.version}) and which the provider set to act "
            "automatically."
        ),
        exemption_considered=False,
        status=AssessmentStatus.CONFIRMED.value,
        confirmed_by=None,
        confirmed_at=now,
        automated=True,
    )
    s.add(assessment)
    s.flush()
    request = DecisionRequest(
        action=Action(bank.auto_action),
        facts=f"{what}. The decision was taken by automated means, without human review.",
        assessment_id=assessment.id,
        automated_detection=True,
        automated_decision=AutomatedDecision.FULLY,
    )
    if check_decision(request, has_basis=True):  # pragma: no cover - item actions only
        return None
    state = next_state(CaseState.OPEN, CaseEvent.ASSIGN)
    case.state = next_state(state, CaseEvent.DECIDE_RESTRICTIVE).value
    case.updated_at = now
    d = Decision(
        case_id=case.id,
        provider_id=case.provider_id,
        action=request.action.value,
        ground=Ground.INCOMPATIBLE_CONTENT.value,
        assessment_id=assessment.id,
        facts=request.facts,
        justification=None,
        territorial_scope=[],
        duration_days=None,
        automated_detection=True,
        automated_decision=AutomatedDecision.FULLY.value,
        status=DecisionStatus.AWAITING_APPROVAL.value,
        decided_by=None,
    )
    s.add(d)
    s.flush()
    audit.record(
        s,
        actor,
        "decision.taken",
        "case",
        case.id,
        {
            "decision_id": d.id,
            "action": d.action,
            "ground": d.ground,
            "assessment_id": assessment.id,
            "automated": True,
            "bank": bank.id,
            "entry": m.entry_id,
        },
        organisation_id=case.provider_id,
        at=now,
    )
    put_in_force(s, ctx, d, case)
    return d.id


def _remember(
    s: Session,
    ctx: Context,
    organisation_id: int,
    url: str,
    sha256: str,
    signals: dict[SignalType, list[str]],
) -> None:
    """Keep the content's signals for retroactive matching (purged by the sweep)."""
    now = ctx.now()
    rows = [
        {
            "organisation_id": organisation_id,
            "url": url,
            "content_sha256": sha256,
            "signal_type": kind.value,
            "value": value,
            "seen_at": now,
        }
        for kind, values in signals.items()
        for value in values
    ]
    stmt = pg_insert(table(SeenContent)).values(rows)
    s.execute(
        stmt.on_conflict_do_update(
            index_elements=["organisation_id", "url", "signal_type", "value"],
            set_={"seen_at": stmt.excluded.seen_at, "content_sha256": stmt.excluded.content_sha256},
        )
    )


def purge_seen_content(s: Session, ctx: Context) -> int:
    """Forget the signals of content seen longer ago than the retention (maintenance)."""
    result = s.execute(
        delete(SeenContent).where(SeenContent.seen_at < ctx.now() - ctx.seen_content_retention)
    )
    return int(cast(CursorResult[Any], result).rowcount or 0)


@dataclass(frozen=True)
class RematchReport:
    contents: int  # recently seen contents that newly matched
    cases: int  # cases opened or joined


def rematch(ctx: Context, bank_id: int, first_entry_id: int, last_entry_id: int) -> RematchReport:
    """Match the content seen within the retention against new entries of one bank.

    Run by the ``matching.rematch`` job that adding entries defers. Idempotent: a content
    that already has a match row for an entry (matched live, or by an earlier run) is not
    matched again with it, so a retry adds no match rows, notices or cases.
    """
    with ctx.transaction() as s:
        bank = s.get(Bank, bank_id)
        if bank is None or not bank.enabled or bank.negative:
            return RematchReport(0, 0)
        org = s.get(Organisation, bank.organisation_id)
        assert org is not None
        if org.kind != OrgKind.HOSTING_PROVIDER.value:
            return RematchReport(0, 0)
        banks = _usable_banks(s, org.id)
        this = banks[bank.id]
        entries = _live_entries(
            s, [BankEntry.bank_id == bank.id, BankEntry.id.between(first_entry_id, last_entry_id)]
        )
        if not entries:
            return RematchReport(0, 0)
        since = ctx.now() - ctx.seen_content_retention
        recent = [SeenContent.organisation_id == org.id, SeenContent.seen_at >= since]
        found: dict[str, list[BankMatch]] = {}  # content sha256 -> matches with new entries
        urls: dict[str, tuple[Any, str]] = {}  # content sha256 -> (seen_at, url), latest

        def hit(row: Any, entry: BankEntry, distance: int) -> None:
            found.setdefault(row.content_sha256, []).append(
                _bank_match(this, entry, row.value, row.signal_type, distance)
            )
            if row.content_sha256 not in urls or urls[row.content_sha256][0] < row.seen_at:
                urls[row.content_sha256] = (row.seen_at, row.url)

        similar_types = {k.value for k in SIMILARITY_TYPES}
        exact = {(e.signal_type, e.value): e for e in entries if e.signal_type not in similar_types}
        if exact:
            for row in s.execute(
                select(SeenContent).where(
                    *recent, tuple_(SeenContent.signal_type, SeenContent.value).in_(list(exact))
                )
            ).scalars():
                hit(row, exact[(row.signal_type, row.value)], 0)
        for similar in sorted(SIMILARITY_TYPES):
            close = [e for e in entries if e.signal_type == similar.value]
            if not close:
                continue
            # A brute-force scan: the new entries are few, and so is recent content.
            for row in s.execute(
                select(SeenContent).where(*recent, SeenContent.signal_type == similar.value)
            ).scalars():
                for e in close:
                    d = signal_distance(similar, row.value, e.value)
                    if d is not None and d <= this.threshold(similar):
                        hit(row, e, d)
        negative = {i: b for i, b in banks.items() if b.negative}
        principal = Principal(
            organisation_id=org.id,
            org_kind=OrgKind.HOSTING_PROVIDER,
            roles=frozenset(),
            label=f"system:rematch:bank:{bank.id}",
        )
        contents = cases = 0
        for sha256 in sorted(found):
            new = _best_per_entry(found[sha256])
            done = set(
                s.scalars(
                    select(MatchRow.entry_id).where(
                        MatchRow.organisation_id == org.id,
                        MatchRow.content_sha256 == sha256,
                        MatchRow.entry_id.in_([m.entry_id for m in new]),
                    )
                )
            )
            new = [m for m in new if m.entry_id not in done]
            if not new:
                continue
            suppressors: list[BankMatch] = []
            if negative:
                signals: dict[SignalType, list[str]] = {}
                for stored, value in s.execute(
                    select(SeenContent.signal_type, SeenContent.value).where(
                        *recent, SeenContent.content_sha256 == sha256
                    )
                ):
                    signals.setdefault(SignalType(stored), []).append(value)
                for kind, values in signals.items():
                    for ms in _find(s, ctx, negative, kind, list(dict.fromkeys(values))).values():
                        suppressors.extend(ms)
            matches = [m for m in _suppress([*new, *suppressors]) if not m.negative]
            matches = _quarantine_floods(s, ctx, principal, matches, sha256)
            contents += 1
            if _act(s, ctx, principal, urls[sha256][1], sha256, matches) is not None:
                cases += 1
        return RematchReport(contents, cases)


def _content_signals(results: list[HashResult]) -> dict[SignalType, list[str]]:
    out: dict[SignalType, list[str]] = {}
    for r in results:
        if r.hash is None:
            continue
        values = [r.hash.value, *(h.value for h in r.dihedral)]
        out[r.signal_type] = list(dict.fromkeys(values))
    return out


def hash_content(
    ctx: Context,
    principal: Principal,
    *,
    data: bytes | None = None,
    storage_url: str | None = None,
    content_type: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[HashResult]:
    """The signals of some content, nothing stored and nothing matched (so a platform can
    hash once and look up, share or list the hashes itself)."""
    require(principal, Permission.MATCH_CONTENT)
    if (data is None) == (storage_url is None):
        raise InvalidInput("give exactly one of: the content, a storage URL", field="content")
    if storage_url is not None:
        fetched = fetch_storage_object(ctx, principal, storage_url, max_bytes=max_bytes)
        data, content_type = fetched.data, content_type or fetched.content_type
    assert data is not None
    return hash_content_bytes(data, content_type, max_bytes=max_bytes)


def match_content(
    ctx: Context,
    principal: Principal,
    *,
    data: bytes | None = None,
    path: str | Path | None = None,
    url: str | None = None,
    content_type: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    storage_url: str | None = None,
) -> ContentMatchResult:
    """Hash the content, match it, record the evidence and open a case for review matches.

    The content is ``data``, the file at ``path``, or the object at ``storage_url`` in the
    caller's own storage (on its organisation's domains; fetched within ``max_bytes``).
    A case is opened (or joined) only when the URL of the content is given and the caller
    is a hosting provider (the case is about content on its service).
    """
    require(principal, Permission.MATCH_CONTENT)
    if sum(x is not None for x in (data, path, storage_url)) != 1:
        raise InvalidInput(
            "give exactly one of: the content, the path of a file, a storage URL",
            field="content",
        )
    canonical_url = normalise_hash(SignalType.URL, url, field="url") if url is not None else None
    if storage_url is not None:
        fetched = fetch_storage_object(ctx, principal, storage_url, max_bytes=max_bytes)
        data, content_type = fetched.data, content_type or fetched.content_type
    if data is not None:
        results = hash_content_bytes(data, content_type, max_bytes=max_bytes)
    else:
        assert path is not None
        results = hash_content_file(path, max_bytes=max_bytes, content_type_hint=content_type)
    signals = _content_signals(results)
    pdq = next((r for r in results if r.signal_type is SignalType.PDQ), None)
    sha256 = signals[SignalType.SHA256][0]
    notes = [note for r in results for note in r.notes]
    text = next((r for r in results if r.signal_type is SignalType.TEXT_MINHASH), None)
    if canonical_url is not None:
        signals[SignalType.URL] = [canonical_url]
    with ctx.transaction() as s:
        banks = _usable_banks(s, principal.organisation_id)
        found: list[BankMatch] = []
        for kind, values in signals.items():
            for matches in _find(s, ctx, banks, kind, values).values():
                found.extend(matches)
        matches = _quarantine_floods(s, ctx, principal, _suppress(_best_per_entry(found)), sha256)
        if canonical_url is not None and principal.organisation_id is not None:
            _remember(s, ctx, principal.organisation_id, canonical_url, sha256, signals)
        case_id = _act(s, ctx, principal, url, sha256, matches)
    notes.extend(matcher_warnings(ctx))
    return ContentMatchResult(
        md5=signals[SignalType.MD5][0],
        sha256=sha256,
        pdq=pdq.hash.value if pdq is not None and pdq.hash is not None else None,
        pdq_quality=pdq.quality if pdq is not None else None,
        matches=matches,
        case_id=case_id,
        notes=notes,
        text_minhash=text.hash.value if text is not None and text.hash is not None else None,
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
