"""The per-process indexes over every live bank entry, kept up to date incrementally.

One index per similarity signal type: PDQ (:class:`MultiIndexHashIndex`), text MinHash
(:class:`LSHTextIndex`) and vPDQ (the videos' frames in a :class:`MultiIndexHashIndex`).
Exact types (MD5, SHA-256, URLs, video MD5) need no index: PostgreSQL finds them by equality.

*Incremental.* Every change to an entry (added, removed, quarantined) takes a new number
from a sequence (``bank_entries.changed_seq``), so a refresh reads only the rows changed
since the highest number seen. Because a transaction may commit after one that drew a
higher number, each refresh re-reads a margin of ``lag_margin`` numbers below the watermark
(adding and removing are idempotent).

*Rebuilds.* As a backstop the indexes are rebuilt in full every ``rebuild_interval``
seconds (with ±10% jitter so processes drift apart). The first build is synchronous; later
ones run on a background thread while lookups keep being answered from the current
indexes, which are swapped for the new ones once they have caught up. A rebuild holds a
PostgreSQL advisory lock, so several matcher processes never rebuild at the same moment:
one that finds the lock taken tries again ``retry_after`` seconds later.

*Memory budget.* A build whose estimated size exceeds ``memory_budget_bytes`` is refused
(:class:`MatcherOverBudget`); additions that would push a loaded index over the budget are
not loaded and :attr:`MatchIndexes.warning` says so (the matching service passes it on to
the caller).

One instance is owned by the composition root (it lives in the services' ``Context``);
nothing here is a module-level global.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.orm import Session

from cleanit.adapters.db.models import BankEntry
from cleanit.adapters.matching.pdq_index import Match, MultiIndexHashIndex, hexes_to_array
from cleanit.adapters.matching.text_index import LSHTextIndex, TextMatch
from cleanit.domain.errors import DomainError
from cleanit.domain.signals import SignalType
from cleanit.domain.video_signals import VPDQ_DISTANCE_THRESHOLD, matchable_frames, parse_vpdq

log = logging.getLogger(__name__)

#: Key of the advisory lock held while a process rebuilds its indexes ("matcher" in ASCII;
#: the audit chain's lock is "cleanit", the migrations' 7266355001).
REBUILD_LOCK_KEY = 0x6D617463686572


class MatcherOverBudget(DomainError):
    """The indexes would need more memory than this matcher process may use."""

    code = "matcher-over-budget"
    status = 503


class _Family(Protocol):
    """How entries of one signal type are held in memory."""

    signal_type: SignalType
    #: Estimated bytes per entry, for refusing a build before it is made.
    bytes_per_entry: int

    def build(self, ids: npt.NDArray[np.int64], values: list[str]) -> Any: ...

    def add(self, index: Any, ids: npt.NDArray[np.int64], values: list[str]) -> None: ...

    def remove(self, index: Any, ids: npt.NDArray[np.int64], values: list[str]) -> None: ...


class _PdqFamily:
    signal_type = SignalType.PDQ
    # Measured: 1.22 GB for 10M entries (docs/performance.md), plus build headroom.
    bytes_per_entry = 160

    def build(self, ids: npt.NDArray[np.int64], values: list[str]) -> MultiIndexHashIndex:
        if not len(ids):
            return MultiIndexHashIndex()
        return MultiIndexHashIndex.build(ids, hexes_to_array(values))

    def add(self, index: Any, ids: npt.NDArray[np.int64], values: list[str]) -> None:
        index.add(ids, hexes_to_array(values))
        if index.delta_size > 50_000:
            index.compact()

    def remove(self, index: Any, ids: npt.NDArray[np.int64], values: list[str]) -> None:
        index.remove(ids)


def _signatures(values: list[str]) -> npt.NDArray[np.uint32]:
    # Stored signatures are canonical (1024 lower-case hex digits, big-endian 32-bit words).
    raw = bytes.fromhex("".join(values))
    return np.frombuffer(raw, dtype=">u4").astype(np.uint32).reshape(len(values), -1)


class _TextFamily:
    signal_type = SignalType.TEXT_MINHASH
    # Measured ~1.3 kB at 100k (docs/text-matching.md): signature, band keys, postings.
    bytes_per_entry = 1300

    def build(self, ids: npt.NDArray[np.int64], values: list[str]) -> LSHTextIndex:
        index = LSHTextIndex()
        if len(ids):
            index.add(ids, _signatures(values))
        return index

    def add(self, index: Any, ids: npt.NDArray[np.int64], values: list[str]) -> None:
        index.add(ids, _signatures(values))

    def remove(self, index: Any, ids: npt.NDArray[np.int64], values: list[str]) -> None:
        index.remove(ids)


_PDQ = _PdqFamily()

#: A video's frames are indexed under ``entry id << FRAME_BITS | frame position``.
FRAME_BITS = 17  # > MAX_VPDQ_FRAMES (100,000) distinct frames per video


def _frame_hexes(value: str) -> list[str]:
    return [f.pdq_hex for f in matchable_frames(parse_vpdq(value))]


def _frame_rows(
    ids: npt.NDArray[np.int64], values: list[str]
) -> tuple[npt.NDArray[np.int64], list[str]]:
    frame_ids: list[int] = []
    hexes: list[str] = []
    for entry_id, value in zip(ids.tolist(), values, strict=True):
        frames = _frame_hexes(value)
        frame_ids.extend((entry_id << FRAME_BITS) | k for k in range(len(frames)))
        hexes.extend(frames)
    return np.array(frame_ids, dtype=np.int64), hexes


class _VpdqFamily:
    """vPDQ entries as their distinct good-quality frames in a PDQ index: a lookup finds
    the videos sharing a frame with the query; the service then compares whole videos."""

    signal_type = SignalType.VPDQ
    # A two-minute video at one frame per second: 120 frames of a PDQ entry's size.
    bytes_per_entry = 120 * _PdqFamily.bytes_per_entry

    def build(self, ids: npt.NDArray[np.int64], values: list[str]) -> MultiIndexHashIndex:
        return _PDQ.build(*_frame_rows(ids, values))

    def add(self, index: Any, ids: npt.NDArray[np.int64], values: list[str]) -> None:
        frame_ids, hexes = _frame_rows(ids, values)
        index.remove(frame_ids)  # a re-read entry replaces its frames, never doubles them
        if len(frame_ids):
            _PDQ.add(index, frame_ids, hexes)

    def remove(self, index: Any, ids: npt.NDArray[np.int64], values: list[str]) -> None:
        index.remove(_frame_rows(ids, values)[0])


FAMILIES: tuple[_Family, ...] = (_PDQ, _TextFamily(), _VpdqFamily())
_TYPES = [f.signal_type.value for f in FAMILIES]


@dataclass
class _Indexes:
    """One complete generation of indexes and how far it has read the change sequence."""

    by_type: dict[str, Any]
    watermark: int
    built_at: float
    recent: set[int] = field(default_factory=set)  # change numbers applied within the margin

    def memory_bytes(self) -> int:
        return sum(int(i.memory_bytes()) for i in self.by_type.values())


@dataclass(frozen=True)
class MatcherStatus:
    entries: dict[str, int]
    memory_bytes: int
    budget_bytes: int | None
    warning: str | None
    full_builds: int
    rebuilds_skipped: int
    rebuilding: bool


def _mb(n: float) -> str:
    return f"{n / 1_000_000:,.0f} MB"


class MatchIndexes:
    """Search similarity signals against every live bank entry (all organisations; callers
    filter by bank)."""

    def __init__(
        self,
        *,
        refresh_interval: float = 1.0,
        rebuild_interval: float = 600.0,
        retry_after: float = 30.0,
        first_build_wait: float = 30.0,
        lag_margin: int = 1000,
        flood_limit: int = 100,
        flood_window_minutes: int = 10,
        memory_budget_bytes: int | None = None,
        background_rebuilds: bool = True,
        clock: Callable[[], float] = time.monotonic,
        on_rebuild_loaded: Callable[[], None] | None = None,
    ) -> None:
        self.refresh_interval = refresh_interval
        self.rebuild_interval = rebuild_interval
        self.retry_after = retry_after
        self.first_build_wait = first_build_wait
        self.lag_margin = lag_margin
        #: An entry matching more than ``flood_limit`` items within the window is quarantined.
        self.flood_limit = flood_limit
        self.flood_window_minutes = flood_window_minutes
        self.memory_budget_bytes = memory_budget_bytes
        self.background_rebuilds = background_rebuilds
        self._clock = clock
        # Called by a background rebuild after it loaded the entries and before it swaps
        # them in (tests use it to look up while a rebuild is in progress).
        self._on_rebuild_loaded = on_rebuild_loaded
        self._lock = threading.RLock()
        self._current: _Indexes | None = None
        self._refreshed_at = 0.0
        self._next_rebuild = 0.0
        self._rebuilding = False
        self._thread: threading.Thread | None = None
        #: Additions not loaded because of the memory budget (reset by a full build).
        self.not_loaded = 0
        self.full_builds = 0  # how many times the indexes were built from scratch
        self.rebuilds_skipped = 0  # rebuilds postponed because another process was rebuilding

    # --- state --------------------------------------------------------------------------

    @property
    def warning(self) -> str | None:
        """Why some entries are not matched right now, if they are not."""
        if not self.not_loaded:
            return None
        assert self.memory_budget_bytes is not None
        return (
            f"the matcher is over its memory budget ({_mb(self.memory_budget_bytes)}): "
            f"{self.not_loaded} new bank entries are not loaded and cannot match; "
            "raise CLEANIT_MATCHER_MEMORY_BUDGET_MB or remove entries"
        )

    def status(self) -> MatcherStatus:
        current = self._current
        return MatcherStatus(
            entries={k: len(i) for k, i in current.by_type.items()} if current else {},
            memory_bytes=current.memory_bytes() if current else 0,
            budget_bytes=self.memory_budget_bytes,
            warning=self.warning,
            full_builds=self.full_builds,
            rebuilds_skipped=self.rebuilds_skipped,
            rebuilding=self._rebuilding,
        )

    def wait_for_rebuild(self, timeout: float = 60.0) -> None:
        """Block until a background rebuild in progress has finished (tests, shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # --- refresh ------------------------------------------------------------------------

    def refresh(self, session: Session, *, force: bool = False) -> _Indexes:
        """Bring the indexes up to date (at most every ``refresh_interval`` seconds)."""
        now = self._clock()
        current = self._current
        if current is not None and not force and now - self._refreshed_at < self.refresh_interval:
            self._maybe_rebuild(session, now)
            return current
        with self._lock:
            if self._current is None:
                engine = session.get_bind()
                assert isinstance(engine, Engine)
                with engine.connect() as conn:
                    # The first build waits for its turn, so processes starting together
                    # build one after the other -- but not forever: without indexes nothing
                    # can be matched, so after ``first_build_wait`` it builds regardless.
                    got = self._try_lock(conn)
                    waited_until = time.monotonic() + self.first_build_wait
                    while not got and time.monotonic() < waited_until:
                        time.sleep(0.2)
                        got = self._try_lock(conn)
                    try:
                        self._install(self._load(session, now))
                    finally:
                        if got:
                            self._unlock(conn)
            else:
                self._catch_up(session, self._current)
            self._refreshed_at = now
            assert self._current is not None
            result = self._current
        self._maybe_rebuild(session, now)
        return result

    @staticmethod
    def _try_lock(conn: Connection) -> bool:
        got = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": REBUILD_LOCK_KEY}))
        conn.commit()
        return got

    @staticmethod
    def _unlock(conn: Connection) -> None:
        # A session-level lock outlives transactions: release it before the connection
        # goes back to the pool.
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": REBUILD_LOCK_KEY})
        conn.commit()

    def _install(self, fresh: _Indexes) -> None:
        self._current = fresh
        self.not_loaded = 0
        self.full_builds += 1
        jitter = random.uniform(0.9, 1.1)  # noqa: S311 - spreading rebuilds, not secrecy
        self._next_rebuild = fresh.built_at + self.rebuild_interval * jitter

    def _maybe_rebuild(self, session: Session, now: float) -> None:
        if now < self._next_rebuild or self._rebuilding:
            return
        engine = session.get_bind()
        assert isinstance(engine, Engine)
        with self._lock:
            if self._rebuilding:
                return
            self._rebuilding = True
        if not self.background_rebuilds:
            self._rebuild(engine)
            return
        self._thread = threading.Thread(
            target=self._rebuild, args=(engine,), name="cleanit-matcher-rebuild", daemon=True
        )
        self._thread.start()

    def _rebuild(self, engine: Engine) -> None:
        try:
            with engine.connect() as conn:
                if not self._try_lock(conn):
                    self.rebuilds_skipped += 1
                    self._next_rebuild = self._clock() + self.retry_after
                    return
                try:
                    with Session(bind=engine) as s:
                        fresh = self._load(s, self._clock())
                    if self._on_rebuild_loaded is not None:
                        self._on_rebuild_loaded()
                    with self._lock, Session(bind=engine) as s:
                        # Changes committed while we were loading are applied before the swap.
                        self._catch_up(s, fresh)
                        self._install(fresh)
                finally:
                    self._unlock(conn)
        except Exception:
            # The current indexes stay in service; the next attempt comes after retry_after.
            log.exception("matcher: background rebuild failed")
            self._next_rebuild = self._clock() + self.retry_after
        finally:
            self._rebuilding = False

    def _live_counts(self, session: Session) -> dict[str, int]:
        rows = session.execute(
            select(BankEntry.signal_type, func.count())
            .where(
                BankEntry.signal_type.in_(_TYPES),
                BankEntry.removed_at.is_(None),
                BankEntry.quarantined_at.is_(None),
            )
            .group_by(BankEntry.signal_type)
        ).all()
        return {str(k): int(n) for k, n in rows}

    def _load(self, session: Session, now: float) -> _Indexes:
        counts = self._live_counts(session)
        if self.memory_budget_bytes is not None:
            need = sum(counts.get(f.signal_type.value, 0) * f.bytes_per_entry for f in FAMILIES)
            if need > self.memory_budget_bytes:
                detail = ", ".join(f"{n:,} {k}" for k, n in sorted(counts.items()))
                raise MatcherOverBudget(
                    f"the matcher refuses to load the bank entries ({detail}): they need "
                    f"about {_mb(need)}, over its memory budget of "
                    f"{_mb(self.memory_budget_bytes)}; raise CLEANIT_MATCHER_MEMORY_BUDGET_MB "
                    "or remove entries"
                )
        watermark = int(session.scalar(select(func.max(BankEntry.changed_seq))) or 0)
        by_type: dict[str, Any] = {}
        # Rows loaded here that the next catch-up's margin would read again: marked as
        # applied, so they are not counted twice against the memory budget.
        recent: set[int] = set()
        for family in FAMILIES:
            rows = session.execute(
                select(BankEntry.id, BankEntry.value, BankEntry.changed_seq).where(
                    BankEntry.signal_type == family.signal_type.value,
                    BankEntry.removed_at.is_(None),
                    BankEntry.quarantined_at.is_(None),
                )
            ).all()
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            by_type[family.signal_type.value] = family.build(ids, [r[1] for r in rows])
            recent.update(int(r[2]) for r in rows if int(r[2]) > watermark - self.lag_margin)
        return _Indexes(by_type, watermark, now, recent)

    def _catch_up(self, session: Session, current: _Indexes) -> None:
        rows = session.execute(
            select(
                BankEntry.id,
                BankEntry.signal_type,
                BankEntry.value,
                BankEntry.changed_seq,
                BankEntry.removed_at.is_(None) & BankEntry.quarantined_at.is_(None),
            )
            .where(
                BankEntry.signal_type.in_(_TYPES),
                BankEntry.changed_seq > current.watermark - self.lag_margin,
            )
            .order_by(BankEntry.changed_seq)
        ).all()
        rows = [r for r in rows if int(r[3]) not in current.recent]
        room = None
        if self.memory_budget_bytes is not None:
            room = self.memory_budget_bytes - current.memory_bytes()
        for family in FAMILIES:
            kind = family.signal_type.value
            index = current.by_type[kind]
            mine = [r for r in rows if r[1] == kind]
            dead = [r for r in mine if not r[4]]
            live = [r for r in mine if r[4]]
            if dead:
                family.remove(
                    index, np.array([r[0] for r in dead], dtype=np.int64), [r[2] for r in dead]
                )
            if room is not None and live:
                fits = max(0, room // family.bytes_per_entry)
                if len(live) > fits:
                    self.not_loaded += len(live) - fits
                    log.warning("matcher: %s", self.warning)
                    live = live[:fits]
                room -= len(live) * family.bytes_per_entry
            if live:
                family.add(
                    index, np.array([r[0] for r in live], dtype=np.int64), [r[2] for r in live]
                )
        if rows:
            current.watermark = max(current.watermark, max(int(r[3]) for r in rows))
        floor = current.watermark - self.lag_margin
        current.recent = {seq for seq in current.recent if seq > floor}
        current.recent.update(int(r[3]) for r in rows)

    # --- search -------------------------------------------------------------------------

    def search(self, session: Session, hashes: Sequence[str], threshold: int) -> list[list[Match]]:
        """Matches of each PDQ hash (hex) within ``threshold`` bits, after a refresh."""
        index = self.refresh(session).by_type[SignalType.PDQ.value]
        if not hashes:
            return []
        return list(index.search_batch(hexes_to_array(list(hashes)), threshold))

    def search_text(
        self, session: Session, signatures: Sequence[str], min_similarity: float
    ) -> list[list[TextMatch]]:
        """Entries whose MinHash similarity to each signature (hex) is ``>= min_similarity``."""
        current = self.refresh(session)
        if not signatures:
            return []
        index = current.by_type[SignalType.TEXT_MINHASH.value]
        queries = _signatures(list(signatures))
        with self._lock:  # the LSH index is not safe to read while it is being changed
            return [list(index.query(q, min_similarity)) for q in queries]

    def search_vpdq(self, session: Session, values: Sequence[str]) -> list[set[int]]:
        """Ids of the vPDQ entries sharing at least one near-identical good frame with each
        video (canonical vPDQ); the caller compares the whole videos."""
        index = self.refresh(session).by_type[SignalType.VPDQ.value]
        out: list[set[int]] = []
        for value in values:
            frames = _frame_hexes(value)
            found: set[int] = set()
            if frames:
                for matches in index.search_batch(hexes_to_array(frames), VPDQ_DISTANCE_THRESHOLD):
                    found.update(m.entry_id >> FRAME_BITS for m in matches)
            out.append(found)
        return out
