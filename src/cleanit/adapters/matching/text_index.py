"""MinHash LSH index for near-duplicate text signatures (``text_minhash``).

Signatures come from :mod:`cleanit.domain.text_signals` (128 32-bit MinHash values).
Two implementations of one interface:

* :class:`BruteForceTextIndex` -- a numpy scan of every signature, the reference.
* :class:`LSHTextIndex` -- banding LSH: the signature is cut into ``bands`` bands of
  ``rows`` values; entries sharing at least one whole band with the query are
  *candidates*. With the default 32 bands x 4 rows a pair of Jaccard similarity ``s``
  becomes a candidate with probability ``1 - (1 - s**4)**32``: 0.87 at 0.5, 0.99 at 0.6,
  0.9997 at 0.7, and 0.023 at 0.2.

**Verification.** Candidates are verified with the *MinHash estimate* of the Jaccard
similarity (fraction of equal signature positions), not the exact Jaccard of shingle
sets: bank entries carry signatures only, never the text. Both indexes therefore return
exactly the entries whose estimate is ``>= threshold``; the LSH one returns a subset of
the brute-force answer (missing only entries that share no band with the query).

Entry ids are int64; adding an existing id replaces its signature; removing an unknown id
is a no-op. Results are ``(entry_id, similarity)`` sorted by similarity descending, then id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from cleanit.domain.text_signals import (
    NUM_PERM,
    TEXT_MATCH_THRESHOLD,
    base_hash,
    hash_coefficients,
)

__all__ = [
    "DEFAULT_BANDS",
    "DEFAULT_ROWS",
    "BruteForceTextIndex",
    "LSHTextIndex",
    "TextIndex",
    "TextMatch",
    "candidate_probability",
    "signature_array",
    "signatures_many",
]

DEFAULT_BANDS = 32
DEFAULT_ROWS = 4

U32Array = npt.NDArray[np.uint32]
U64Array = npt.NDArray[np.uint64]
I64Array = npt.NDArray[np.int64]

_A_LIST, _B_LIST = hash_coefficients()
_A = np.array(_A_LIST, dtype=np.uint64)
_B = np.array(_B_LIST, dtype=np.uint64)
# Odd 64-bit constants that fold the ``rows`` values of one band into one 64-bit key.
_FOLD = np.array([base_hash(f"band-fold:{j}") | 1 for j in range(NUM_PERM)], dtype=np.uint64)


@dataclass(frozen=True, slots=True)
class TextMatch:
    """One entry whose estimated Jaccard similarity to the query reaches the threshold."""

    entry_id: int
    similarity: float


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """Probability that a pair with this Jaccard similarity shares at least one band."""
    return float(1.0 - (1.0 - similarity**rows) ** bands)


def signature_array(signature: Sequence[int] | U32Array) -> U32Array:
    """One signature as a ``(NUM_PERM,)`` uint32 array, checking its length."""
    arr = np.asarray(signature, dtype=np.uint32)
    if arr.shape != (NUM_PERM,):
        raise ValueError(f"a text signature has {NUM_PERM} values, got shape {arr.shape}")
    return arr


def signatures_many(shingle_sets: Iterable[Iterable[str]]) -> U32Array:
    """numpy MinHash of many non-empty shingle sets; identical to ``text_signals.minhash``."""
    out: list[U32Array] = []
    with np.errstate(over="ignore"):
        for shingle_set in shingle_sets:
            xs = np.array([base_hash(s) for s in set(shingle_set)], dtype=np.uint64)
            if xs.size == 0:
                raise ValueError("the text has no words to fingerprint")
            hashed = (xs[:, None] * _A[None, :] + _B[None, :]) >> np.uint64(32)
            out.append(hashed.min(axis=0).astype(np.uint32))
    if not out:
        return np.zeros((0, NUM_PERM), dtype=np.uint32)
    return np.stack(out)


def _as_batch(ids: npt.ArrayLike, signatures: npt.ArrayLike) -> tuple[I64Array, U32Array]:
    id_arr = np.atleast_1d(np.asarray(ids, dtype=np.int64))
    sig_arr = np.asarray(signatures, dtype=np.uint32)
    if sig_arr.ndim == 1:
        sig_arr = sig_arr[None, :]
    if sig_arr.ndim != 2 or sig_arr.shape[1] != NUM_PERM:
        raise ValueError(f"signatures must have shape (n, {NUM_PERM}), got {sig_arr.shape}")
    if id_arr.shape != (sig_arr.shape[0],):
        raise ValueError("ids and signatures must have the same length")
    if len(np.unique(id_arr)) != len(id_arr):
        raise ValueError("ids in one batch must be distinct")
    return id_arr, sig_arr


def _check_threshold(threshold: float) -> None:
    if not 0.0 < threshold <= 1.0:
        raise ValueError("threshold must be in (0, 1]")


@runtime_checkable
class TextIndex(Protocol):
    """What every text index offers."""

    def add(self, ids: npt.ArrayLike, signatures: npt.ArrayLike) -> None:
        """Insert ``(n, 128)`` signatures under ``ids``; existing ids are replaced."""
        ...

    def remove(self, ids: npt.ArrayLike) -> None:
        """Delete entries with these ids; unknown ids are ignored."""
        ...

    def query(
        self, signature: Sequence[int] | U32Array, threshold: float = TEXT_MATCH_THRESHOLD
    ) -> list[TextMatch]:
        """Entries whose estimated similarity to ``signature`` is ``>= threshold``."""
        ...

    def __len__(self) -> int: ...

    def memory_bytes(self) -> int:
        """Bytes held by the index's arrays (excluding Python object overhead)."""
        ...


class _Store:
    """Growable row storage shared by both indexes: signatures, ids, liveness."""

    def __init__(self) -> None:
        self.sigs: U32Array = np.zeros((0, NUM_PERM), dtype=np.uint32)
        self.ids: I64Array = np.zeros(0, dtype=np.int64)
        self.alive = np.zeros(0, dtype=bool)
        self.n = 0
        self.row_of: dict[int, int] = {}

    def _grow(self, extra: int) -> None:
        need = self.n + extra
        if need <= len(self.ids):
            return
        cap = max(need, 2 * len(self.ids), 1024)
        sigs = np.zeros((cap, NUM_PERM), dtype=np.uint32)
        sigs[: self.n] = self.sigs[: self.n]
        ids = np.zeros(cap, dtype=np.int64)
        ids[: self.n] = self.ids[: self.n]
        alive = np.zeros(cap, dtype=bool)
        alive[: self.n] = self.alive[: self.n]
        self.sigs, self.ids, self.alive = sigs, ids, alive

    def append(self, ids: I64Array, sigs: U32Array) -> int:
        """Append rows (replacing existing ids); return the first new row number."""
        self.remove(ids)
        self._grow(len(ids))
        start = self.n
        end = start + len(ids)
        self.sigs[start:end] = sigs
        self.ids[start:end] = ids
        self.alive[start:end] = True
        for offset, entry_id in enumerate(ids.tolist()):
            self.row_of[entry_id] = start + offset
        self.n = end
        return start

    def remove(self, ids: npt.ArrayLike) -> None:
        for entry_id in np.atleast_1d(np.asarray(ids, dtype=np.int64)).tolist():
            row = self.row_of.pop(entry_id, None)
            if row is not None:
                self.alive[row] = False

    def verify(self, rows: I64Array, query: U32Array, threshold: float) -> list[TextMatch]:
        rows = rows[self.alive[rows]]
        if rows.size == 0:
            return []
        agree = (self.sigs[rows] == query[None, :]).sum(axis=1)
        # Integer comparison avoids float rounding at the threshold.
        need = int(np.ceil(threshold * NUM_PERM - 1e-9))
        keep = agree >= need
        hit_ids = self.ids[rows[keep]]
        hit_agree = agree[keep]
        order = np.lexsort((hit_ids, -hit_agree))
        return [TextMatch(int(hit_ids[i]), float(hit_agree[i]) / NUM_PERM) for i in order.tolist()]

    def nbytes(self) -> int:
        return int(self.sigs.nbytes + self.ids.nbytes + self.alive.nbytes)


class BruteForceTextIndex:
    """Compare the query with every stored signature (the reference for correctness)."""

    def __init__(self) -> None:
        self._store = _Store()

    def add(self, ids: npt.ArrayLike, signatures: npt.ArrayLike) -> None:
        id_arr, sig_arr = _as_batch(ids, signatures)
        self._store.append(id_arr, sig_arr)

    def remove(self, ids: npt.ArrayLike) -> None:
        self._store.remove(ids)

    def query(
        self, signature: Sequence[int] | U32Array, threshold: float = TEXT_MATCH_THRESHOLD
    ) -> list[TextMatch]:
        _check_threshold(threshold)
        rows = np.arange(self._store.n, dtype=np.int64)
        return self._store.verify(rows, signature_array(signature), threshold)

    def __len__(self) -> int:
        return len(self._store.row_of)

    def memory_bytes(self) -> int:
        return self._store.nbytes()


class LSHTextIndex:
    """Banding MinHash LSH; candidates are verified with the MinHash estimate.

    Band keys of indexed rows are kept sorted per band (binary search at query time);
    rows added since the last merge sit in a small unsorted tail scanned linearly, and
    are merged once the tail exceeds ``max(4096, n / 8)`` rows. Removed rows are skipped
    and compacted away when they exceed half the rows.
    """

    def __init__(self, bands: int = DEFAULT_BANDS, rows: int = DEFAULT_ROWS) -> None:
        if bands < 1 or rows < 1 or bands * rows > NUM_PERM:
            raise ValueError(f"need bands >= 1, rows >= 1 and bands * rows <= {NUM_PERM}")
        self.bands = bands
        self.rows = rows
        self._store = _Store()
        self._keys: U64Array = np.zeros((0, bands), dtype=np.uint64)  # per row
        self._sorted_keys: U64Array = np.zeros((bands, 0), dtype=np.uint64)
        self._sorted_rows: I64Array = np.zeros((bands, 0), dtype=np.int64)
        self._indexed = 0  # rows [0, _indexed) are in the sorted arrays

    def _band_keys(self, sigs: U32Array) -> U64Array:
        used = sigs[:, : self.bands * self.rows].astype(np.uint64)
        with np.errstate(over="ignore"):
            folded = used * _FOLD[None, : self.bands * self.rows]
            shaped = folded.reshape(len(sigs), self.bands, self.rows)
            keys = np.bitwise_xor.reduce(shaped, axis=2)
            keys = keys * np.uint64(0x9E3779B97F4A7C15) + np.arange(self.bands, dtype=np.uint64)
        return np.asarray(keys, dtype=np.uint64)

    def add(self, ids: npt.ArrayLike, signatures: npt.ArrayLike) -> None:
        id_arr, sig_arr = _as_batch(ids, signatures)
        start = self._store.append(id_arr, sig_arr)
        keys = self._band_keys(sig_arr)
        if len(self._keys) < self._store.n:
            grown = np.zeros((len(self._store.ids), self.bands), dtype=np.uint64)
            grown[:start] = self._keys[:start]
            self._keys = grown
        self._keys[start : self._store.n] = keys
        if self._store.n - self._indexed > max(4096, self._store.n // 8):
            self._merge()

    def remove(self, ids: npt.ArrayLike) -> None:
        self._store.remove(ids)
        dead = self._store.n - len(self._store.row_of)
        if dead > 1024 and dead > self._store.n // 2:
            self._compact()

    def _merge(self) -> None:
        n = self._store.n
        keys = self._keys[:n].T  # (bands, n)
        order = np.argsort(keys, axis=1, kind="stable")
        self._sorted_keys = np.take_along_axis(keys, order, axis=1)
        self._sorted_rows = order.astype(np.int64)
        self._indexed = n

    def _compact(self) -> None:
        store = self._store
        live = np.flatnonzero(store.alive[: store.n])
        ids, sigs = store.ids[live].copy(), store.sigs[live].copy()
        self._store = _Store()
        self._keys = np.zeros((0, self.bands), dtype=np.uint64)
        self._indexed = 0
        self._sorted_keys = np.zeros((self.bands, 0), dtype=np.uint64)
        self._sorted_rows = np.zeros((self.bands, 0), dtype=np.int64)
        if len(ids):
            self.add(ids, sigs)
            self._merge()

    def candidates(self, signature: Sequence[int] | U32Array) -> I64Array:
        """Row numbers sharing at least one band with the query (live or not)."""
        query = signature_array(signature)
        qkeys = self._band_keys(query[None, :])[0]
        found: list[I64Array] = []
        if self._indexed:
            lo = [
                np.searchsorted(self._sorted_keys[b], qkeys[b], side="left")
                for b in range(self.bands)
            ]
            hi = [
                np.searchsorted(self._sorted_keys[b], qkeys[b], side="right")
                for b in range(self.bands)
            ]
            found.extend(
                self._sorted_rows[b, lo[b] : hi[b]] for b in range(self.bands) if hi[b] > lo[b]
            )
        if self._store.n > self._indexed:
            tail = self._keys[self._indexed : self._store.n]
            hit = np.flatnonzero((tail == qkeys[None, :]).any(axis=1))
            found.append(hit.astype(np.int64) + self._indexed)
        if not found:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate(found))

    def query(
        self, signature: Sequence[int] | U32Array, threshold: float = TEXT_MATCH_THRESHOLD
    ) -> list[TextMatch]:
        _check_threshold(threshold)
        return self._store.verify(self.candidates(signature), signature_array(signature), threshold)

    def __len__(self) -> int:
        return len(self._store.row_of)

    def memory_bytes(self) -> int:
        return int(
            self._store.nbytes()
            + self._keys.nbytes
            + self._sorted_keys.nbytes
            + self._sorted_rows.nbytes
        )
