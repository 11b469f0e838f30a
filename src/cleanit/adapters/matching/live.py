"""The per-process PDQ index over every live bank entry, kept up to date incrementally.

Built lazily from PostgreSQL on first use, then refreshed from the ``changed_seq`` of
``bank_entries``: every change to an entry (added, removed, quarantined) takes a new number
from a sequence, so a refresh reads only the rows changed since the highest number seen.
Because a transaction may commit after one that drew a higher number, each refresh re-reads
a margin of ``lag_margin`` numbers below the watermark (adding and removing are idempotent),
and the index is rebuilt in full every ``rebuild_interval`` seconds as a backstop.

One instance is owned by the composition root (it lives in the services' ``Context``);
nothing here is a module-level global.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cleanit.adapters.db.models import BankEntry
from cleanit.adapters.matching.pdq_index import Match, MultiIndexHashIndex, hexes_to_array

_LIVE = (
    BankEntry.signal_type == "pdq",
    BankEntry.removed_at.is_(None),
    BankEntry.quarantined_at.is_(None),
)


class MatchIndexes:
    """Search PDQ hashes against every live bank entry (all organisations; callers filter)."""

    def __init__(
        self,
        *,
        refresh_interval: float = 1.0,
        rebuild_interval: float = 600.0,
        lag_margin: int = 1000,
        flood_limit: int = 100,
        flood_window_minutes: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.refresh_interval = refresh_interval
        self.rebuild_interval = rebuild_interval
        self.lag_margin = lag_margin
        #: An entry matching more than ``flood_limit`` items within the window is quarantined.
        self.flood_limit = flood_limit
        self.flood_window_minutes = flood_window_minutes
        self._clock = clock
        self._lock = threading.Lock()
        self._index: MultiIndexHashIndex | None = None
        self._watermark = 0
        self._built_at = 0.0
        self._refreshed_at = 0.0
        self._recent: set[int] = set()  # change numbers applied within the lag margin
        self.full_builds = 0  # how many times the index was built from scratch

    def invalidate(self) -> None:
        """Forget the index: the next search rebuilds it from the database."""
        with self._lock:
            self._index = None

    def refresh(self, session: Session, *, force: bool = False) -> MultiIndexHashIndex:
        """Bring the index up to date (at most every ``refresh_interval`` seconds)."""
        now = self._clock()
        index = self._index
        if (
            index is not None
            and not force
            and now - self._refreshed_at < self.refresh_interval
            and now - self._built_at < self.rebuild_interval
        ):
            return index
        with self._lock:
            if self._index is None or now - self._built_at >= self.rebuild_interval:
                self._build(session, now)
            else:
                self._catch_up(session, self._index)
            self._refreshed_at = now
            assert self._index is not None
            return self._index

    def _build(self, session: Session, now: float) -> None:
        watermark = session.scalar(select(func.max(BankEntry.changed_seq))) or 0
        rows = session.execute(select(BankEntry.id, BankEntry.value).where(*_LIVE)).all()
        index = MultiIndexHashIndex()
        if rows:
            index = MultiIndexHashIndex.build(
                np.array([r[0] for r in rows], dtype=np.int64),
                hexes_to_array([r[1] for r in rows]),
            )
        self._index, self._watermark, self._built_at = index, int(watermark), now
        self._recent = set()
        self.full_builds += 1

    def _catch_up(self, session: Session, index: MultiIndexHashIndex) -> None:
        rows = session.execute(
            select(
                BankEntry.id,
                BankEntry.value,
                BankEntry.changed_seq,
                BankEntry.removed_at.is_(None) & BankEntry.quarantined_at.is_(None),
            )
            .where(
                BankEntry.signal_type == "pdq",
                BankEntry.changed_seq > self._watermark - self.lag_margin,
            )
            .order_by(BankEntry.changed_seq)
        ).all()
        rows = [r for r in rows if int(r[2]) not in self._recent]
        live = [(r[0], r[1]) for r in rows if r[3]]
        dead = [r[0] for r in rows if not r[3]]
        if dead:
            index.remove(np.array(dead, dtype=np.int64))
        if live:
            index.add(
                np.array([r[0] for r in live], dtype=np.int64),
                hexes_to_array([r[1] for r in live]),
            )
        if rows:
            self._watermark = max(self._watermark, max(int(r[2]) for r in rows))
        floor = self._watermark - self.lag_margin
        self._recent = {seq for seq in self._recent if seq > floor}
        self._recent.update(int(r[2]) for r in rows)
        if index.delta_size > 50_000:
            index.compact()

    def search(self, session: Session, hashes: Sequence[str], threshold: int) -> list[list[Match]]:
        """Matches of each hash (hex) within ``threshold`` bits, after a refresh."""
        index = self.refresh(session)
        if not hashes:
            return []
        return index.search_batch(hexes_to_array(list(hashes)), threshold)
