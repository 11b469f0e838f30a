"""Exact Hamming-distance indexes for 256-bit PDQ hashes.

A PDQ hash matches a query when the Hamming distance between the two is at most a
threshold (31 is the usual "confident match" value). Two implementations of one
interface (:class:`PDQIndex`) live here:

* :class:`BruteForceIndex` -- a plain numpy scan, the reference for correctness.
* :class:`MultiIndexHashIndex` -- exact multi-index hashing (Norouzi et al.), compiled
  with numba. It returns exactly what the brute force returns, only much faster.

Supported thresholds are every integer in ``0..256`` for both. The multi-index
structure is tuned for thresholds around its ``design_threshold`` (31 by default); for
thresholds where probing would cost more than a scan (in practice above ~60 on
million-entry banks) it scans its hash table instead, which is still exact.

Entry ids are int64. Adding an id that is already present replaces its hash (upsert);
removing an absent id is a no-op. Search results are sorted by ``(distance, entry_id)``.
"""

from __future__ import annotations

import importlib
import itertools
import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_THRESHOLD",
    "HASH_BITS",
    "HASH_BYTES",
    "MAX_THRESHOLD",
    "BruteForceIndex",
    "Index",
    "Match",
    "MultiIndexHashIndex",
    "PDQIndex",
    "bytes_to_hex",
    "hex_to_bytes",
    "hexes_to_array",
]

HASH_BITS = 256
HASH_BYTES = 32
#: The usual PDQ "confident match" distance.
DEFAULT_THRESHOLD = 31
#: Largest meaningful threshold: every hash is within 256 bits of every other.
MAX_THRESHOLD = HASH_BITS

_WORDS = HASH_BITS // 64
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")

U8Array = npt.NDArray[np.uint8]
U32Array = npt.NDArray[np.uint32]
U64Array = npt.NDArray[np.uint64]
I64Array = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Match:
    """One index entry within the threshold of a query."""

    entry_id: int
    distance: int


@runtime_checkable
class PDQIndex(Protocol):
    """What every PDQ index offers.

    ``add`` and ``remove`` are visible to the next ``search`` call. ``search`` returns
    every live entry whose Hamming distance to the query is ``<= threshold``, sorted by
    ``(distance, entry_id)``.
    """

    def add(self, ids: npt.ArrayLike, hashes: U8Array) -> None:
        """Insert ``hashes`` (``(n, 32)`` uint8) under ``ids``; existing ids are replaced."""
        ...

    def remove(self, ids: npt.ArrayLike) -> None:
        """Delete the entries with these ids; unknown ids are ignored."""
        ...

    def search(self, query: U8Array, threshold: int) -> list[Match]:
        """Entries within ``threshold`` of one ``(32,)`` uint8 query."""
        ...

    def search_batch(self, queries: U8Array, threshold: int) -> list[list[Match]]:
        """``search`` for each row of a ``(q, 32)`` uint8 array, in order."""
        ...

    def __len__(self) -> int:
        """Number of live entries."""
        ...

    def memory_bytes(self) -> int:
        """Bytes held by the index's arrays (excluding Python object overhead)."""
        ...


#: Short alias: the interface the rest of the application should depend on.
Index = PDQIndex


# --------------------------------------------------------------------------- hex helpers


def hex_to_bytes(hex64: str) -> U8Array:
    """Decode a 64-character hex PDQ hash into a ``(32,)`` uint8 array.

    Upper- and lower-case digits are accepted. Raises ``ValueError`` naming the problem
    (wrong length, or the first non-hex character and its position) for anything else.
    """
    if not isinstance(hex64, str):
        raise ValueError(f"PDQ hash must be a str of 64 hex characters, got {type(hex64).__name__}")
    if len(hex64) != 2 * HASH_BYTES:
        raise ValueError(
            f"PDQ hash must be exactly {2 * HASH_BYTES} hex characters, got {len(hex64)}"
        )
    for position, char in enumerate(hex64):
        if char not in _HEX_DIGITS:
            raise ValueError(f"PDQ hash contains non-hex character {char!r} at position {position}")
    return np.frombuffer(bytes.fromhex(hex64), dtype=np.uint8).copy()


def bytes_to_hex(hash_bytes: U8Array) -> str:
    """Encode a ``(32,)`` uint8 PDQ hash as 64 lower-case hex characters."""
    array = np.asarray(hash_bytes)
    if array.dtype != np.uint8 or array.shape != (HASH_BYTES,):
        raise ValueError(
            f"PDQ hash must be a (32,) uint8 array, got {array.dtype} array of shape {array.shape}"
        )
    return array.tobytes().hex()


def hexes_to_array(hexes: list[str] | tuple[str, ...]) -> U8Array:
    """Decode many hex PDQ hashes into an ``(n, 32)`` uint8 array (validated like
    :func:`hex_to_bytes`)."""
    out = np.empty((len(hexes), HASH_BYTES), dtype=np.uint8)
    for row, text in enumerate(hexes):
        out[row] = hex_to_bytes(text)
    return out


# ------------------------------------------------------------------------- validation


def _check_threshold(threshold: int) -> int:
    # bool is an int subclass; a True threshold is almost certainly a bug upstream.
    if isinstance(threshold, bool) or not isinstance(threshold, int | np.integer):
        raise TypeError(f"threshold must be an int, got {type(threshold).__name__}")
    value = int(threshold)
    if not 0 <= value <= MAX_THRESHOLD:
        raise ValueError(f"threshold must be in 0..{MAX_THRESHOLD}, got {value}")
    return value


def _as_ids(ids: npt.ArrayLike) -> I64Array:
    array = np.asarray(ids)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise ValueError(f"ids must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        return np.empty(0, dtype=np.int64)
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"ids must be integers, got dtype {array.dtype}")
    if array.dtype == np.uint64 and int(array.max()) > np.iinfo(np.int64).max:
        raise ValueError("ids must fit in int64")
    return np.ascontiguousarray(array, dtype=np.int64)


def _as_hash_rows(hashes: npt.ArrayLike, what: str) -> U8Array:
    array = np.asarray(hashes)
    if array.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8, got dtype {array.dtype}")
    if array.ndim != 2 or array.shape[1] != HASH_BYTES:
        raise ValueError(f"{what} must have shape (n, {HASH_BYTES}), got {array.shape}")
    return array


def _as_query(query: npt.ArrayLike) -> U8Array:
    array = np.asarray(query)
    if array.dtype != np.uint8 or array.shape != (HASH_BYTES,):
        raise ValueError(
            f"query must be a ({HASH_BYTES},) uint8 array, got {array.dtype} array "
            f"of shape {array.shape}"
        )
    return array.reshape(1, HASH_BYTES)


def _aligned_words(rows: int) -> U64Array:
    """A writable C-contiguous ``(rows, 4)`` uint64 array whose rows start on 64-byte
    boundaries, so that verifying one candidate touches one cache line, not two."""
    raw = np.empty(rows * _WORDS + 8, dtype=np.uint64)
    skip = (-raw.ctypes.data % 64) // 8
    return raw[skip : skip + rows * _WORDS].reshape(rows, _WORDS)


def _to_words(rows: U8Array) -> U64Array:
    # The 256 bits are handled as four native uint64 words. Byte order does not matter
    # for XOR/popcount, and substrings are cut the same way for entries and queries.
    words = _aligned_words(rows.shape[0])
    words.view(np.uint8).reshape(rows.shape[0], HASH_BYTES)[:] = rows
    return words


def _records(words: U64Array) -> npt.NDArray[np.void]:
    """``(n, 4)`` uint64 rows seen as ``n`` opaque 32-byte records."""
    return words.view(np.dtype((np.void, HASH_BYTES))).reshape(words.shape[0])


def _query_words(rows: U8Array) -> U64Array:
    """``(q, 32)`` uint8 queries as ``(q, 4)`` uint64, without a copy when possible.

    The kernels are compiled for aligned, writable, C-contiguous arrays; anything else
    would trigger a second compilation, so it is copied instead.
    """
    if rows.flags.c_contiguous and rows.flags.writeable:
        view = rows.view(np.uint64)
        if view.flags.aligned:
            return view
    words = np.empty((rows.shape[0], _WORDS), dtype=np.uint64)
    words.view(np.uint8)[:] = rows
    return words


def _check_unique(ids: I64Array) -> None:
    if ids.size > 1 and np.unique(ids).size != ids.size:
        raise ValueError("ids must be unique within one call")


def _sorted_matches(ids: I64Array, distances: I64Array) -> list[Match]:
    if ids.size == 0:
        return []
    # Result lists are short: Python's sort beats np.lexsort's fixed overhead here.
    pairs = sorted(zip(distances.tolist(), ids.tolist(), strict=True))
    return [Match(entry_id, distance) for distance, entry_id in pairs]


# ------------------------------------------------------------------- reference index


class BruteForceIndex:
    """Reference implementation: XOR + popcount against every entry with numpy.

    Exact by construction and O(n) per query; meant for tests, small banks and as the
    yardstick for :class:`MultiIndexHashIndex`. Not thread-safe for concurrent writes.
    """

    def __init__(self) -> None:
        self._ids: I64Array = np.empty(0, dtype=np.int64)
        self._words: U64Array = np.empty((0, _WORDS), dtype=np.uint64)

    def add(self, ids: npt.ArrayLike, hashes: U8Array) -> None:
        """Insert entries; an id already present gets the new hash."""
        new_ids = _as_ids(ids)
        rows = _as_hash_rows(hashes, "hashes")
        if rows.shape[0] != new_ids.size:
            raise ValueError(f"got {new_ids.size} ids for {rows.shape[0]} hashes")
        _check_unique(new_ids)
        keep = ~np.isin(self._ids, new_ids)
        self._ids = np.concatenate([self._ids[keep], new_ids])
        self._words = np.concatenate([self._words[keep], _to_words(rows)])

    def remove(self, ids: npt.ArrayLike) -> None:
        """Delete entries by id; unknown ids are ignored."""
        keep = ~np.isin(self._ids, _as_ids(ids))
        self._ids = self._ids[keep]
        self._words = self._words[keep]

    def search(self, query: U8Array, threshold: int) -> list[Match]:
        """All entries within ``threshold`` of ``query``, sorted by (distance, id)."""
        return self._search_words(_to_words(_as_query(query))[0], _check_threshold(threshold))

    def search_batch(self, queries: U8Array, threshold: int) -> list[list[Match]]:
        """``search`` for every row of ``queries``."""
        limit = _check_threshold(threshold)
        words = _to_words(_as_hash_rows(queries, "queries"))
        return [self._search_words(row, limit) for row in words]

    def _search_words(self, query: U64Array, threshold: int) -> list[Match]:
        distances = np.bitwise_count(self._words ^ query).sum(axis=1, dtype=np.int64)
        hits = np.flatnonzero(distances <= threshold)
        return _sorted_matches(self._ids[hits], distances[hits])

    def __len__(self) -> int:
        return int(self._ids.size)

    def memory_bytes(self) -> int:
        """Bytes of the id and hash arrays."""
        return int(self._ids.nbytes + self._words.nbytes)


# ------------------------------------------------------------------ numba kernels


class _Kernels(NamedTuple):
    build_table: Callable[..., Any]
    search: Callable[..., Any]


@cache
def _kernels() -> _Kernels:
    """Compile-on-first-call numba kernels.

    Built lazily so that importing this module neither imports numba nor compiles
    anything; :meth:`MultiIndexHashIndex.warm_up` forces compilation up front.
    """
    import numba
    from numba.core import types
    from numba.extending import intrinsic

    # LLVM IR helpers for the intrinsics below; untyped (llvmlite ships no hints).
    ir: Any = importlib.import_module("llvmlite.ir")
    cgutils: Any = importlib.import_module("numba.core.cgutils")

    # numba ships type hints, but kernel bodies are not meaningfully type-checkable
    # (numpy scalars vs int, intrinsic signatures): the decorators are typed to return
    # plain Callable[..., Any] so mypy checks everything around the kernels instead.
    Kernel = Callable[..., Any]
    jit: Callable[[Kernel], Kernel] = numba.njit(nogil=True, cache=False, boundscheck=False)
    as_intrinsic: Callable[[Kernel], Kernel] = intrinsic

    @as_intrinsic
    def popcount(typingctx: Any, x: Any) -> Any:
        # LLVM's ctpop becomes one POPCNT instruction (numba compiles for the host CPU);
        # numba has no popcount of its own for integer scalars.
        del typingctx, x
        signature = types.int64(types.uint64)

        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            del context, sig
            return builder.ctpop(args[0])

        return signature, codegen

    @as_intrinsic
    def prefetch(typingctx: Any, array: Any, index: Any) -> Any:
        # Hint the CPU to start loading array[index] (its first element for 2-D arrays)
        # into cache. Lets the loads of one probing phase overlap the next phase.
        del typingctx
        signature = types.void(array, index)

        def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
            array_type = sig.args[0]
            view = context.make_array(array_type)(context, builder, args[0])
            zero = context.get_constant(types.intp, 0)
            index = context.cast(builder, args[1], sig.args[1], types.intp)
            indices = [index] + [zero] * (array_type.ndim - 1)
            pointer = cgutils.get_item_pointer(
                context, builder, array_type, view, indices, wraparound=False
            )
            byte_pointer = ir.IntType(8).as_pointer()
            int32 = ir.IntType(32)
            # Intrinsic name mangling differs between opaque ("ptr") and typed pointers.
            suffix = "p0" if str(byte_pointer) == "ptr" else "p0i8"
            function = cgutils.get_or_insert_function(
                builder.module,
                ir.FunctionType(ir.VoidType(), [byte_pointer, int32, int32, int32]),
                f"llvm.prefetch.{suffix}",
            )
            # read, keep in all cache levels, data cache
            builder.call(
                function, [builder.bitcast(pointer, byte_pointer), int32(0), int32(3), int32(1)]
            )
            return context.get_dummy_value()

        return signature, codegen

    @jit
    def substring(words: Any, row: int, start: int, bits: int, mask: Any) -> Any:
        # Bits [start, start + bits) of the 256-bit value in words[row]; bit k lives in
        # word k // 64 at position k % 64. Everything stays uint64: mixing signed and
        # unsigned 64-bit integers makes numba fall back to float64.
        index = start >> 6
        shift = start & 63
        value = words[row, index] >> np.uint64(shift)
        if shift + bits > 64:
            value |= words[row, index + 1] << np.uint64(64 - shift)
        return np.int64(value & mask)

    @jit
    def build_table(
        words: Any,
        start: int,
        bits: int,
        offsets: Any,
        rows: Any,
        keys: Any,
        spare_keys: Any,
        spare_rows: Any,
        low_counts: Any,
        high_counts: Any,
    ) -> None:
        # CSR table of one substring: rows[offsets[key]:offsets[key + 1]] are the
        # (ascending) row numbers whose substring equals key. Built by a two-digit LSD
        # radix sort: each pass scatters into at most 4096 sequential streams, which the
        # caches absorb, whereas a direct counting sort into 2**bits buckets does one
        # random read-modify-write per entry (it dominated the 10M build time).
        # Buffers come from the caller (offsets, counts zeroed): numba compiles its own
        # np.empty/np.zeros on first use, which would lengthen warm-up.
        n = words.shape[0]
        mask = np.uint64((1 << bits) - 1)
        low = bits // 2
        low_mask = (1 << low) - 1
        for row in range(n):
            key = substring(words, row, start, bits, mask)
            keys[row] = key
            low_counts[(key & low_mask) + 1] += 1
            high_counts[(key >> low) + 1] += 1
        for k in range(1, low_counts.shape[0]):
            low_counts[k] += low_counts[k - 1]
        for k in range(1, high_counts.shape[0]):
            high_counts[k] += high_counts[k - 1]
        for row in range(n):
            key = keys[row]
            digit = key & low_mask
            position = low_counts[digit]
            low_counts[digit] = position + 1
            spare_keys[position] = key
            spare_rows[position] = row
        for i in range(n):
            key = spare_keys[i]
            digit = key >> low
            position = high_counts[digit]
            high_counts[digit] = position + 1
            keys[position] = key
            rows[position] = spare_rows[i]
        for i in range(n):  # keys are sorted now: sequential, not random, increments
            offsets[keys[i] + 1] += 1
        for k in range(1, offsets.shape[0]):
            offsets[k] += offsets[k - 1]

    @jit
    def verify(
        candidates: Any,
        count: int,
        j: int,
        queries: Any,
        qi: int,
        threshold: int,
        radii: Any,
        bits: int,
        spacing: int,
        words: Any,
        dead: Any,
        ext_ids: Any,
        out_ids: Any,
        out_dist: Any,
        found: int,
    ) -> int:
        # Full 256-bit distance of each candidate row found through substring j.
        # Non-matches dominate, so the branch below is well predicted and the loads of
        # consecutive candidates overlap in the memory system.
        mask = np.uint64((1 << bits) - 1)
        capacity = out_ids.shape[0]
        q0 = queries[qi, 0]
        q1 = queries[qi, 1]
        q2 = queries[qi, 2]
        q3 = queries[qi, 3]
        for c in range(count):
            row = candidates[c]
            distance = (
                popcount(words[row, 0] ^ q0)
                + popcount(words[row, 1] ^ q1)
                + popcount(words[row, 2] ^ q2)
                + popcount(words[row, 3] ^ q3)
            )
            if distance > threshold or dead[row] != 0:
                continue
            # A true match can sit in several probed buckets. Report it only from the
            # first substring whose probe radius covers it, so that no hash set is
            # needed to deduplicate.
            duplicate = False
            for i in range(j):
                if radii[i] < 0:
                    continue
                start = i * spacing
                near = popcount(
                    np.uint64(
                        substring(words, row, start, bits, mask)
                        ^ substring(queries, qi, start, bits, mask)
                    )
                )
                if near <= radii[i]:
                    duplicate = True
                    break
            if duplicate:
                continue
            if found < capacity:
                out_ids[found] = ext_ids[row]
                out_dist[found] = distance
            found += 1
        return found

    @jit
    def search(
        queries: Any,
        threshold: int,
        radii: Any,
        scan_main: bool,
        bits: int,
        spacing: int,
        patterns: Any,
        upto: Any,
        offsets: Any,
        rows: Any,
        words: Any,
        dead: Any,
        ext_ids: Any,
        delta_words: Any,
        delta_dead: Any,
        delta_ids: Any,
        delta_count: int,
        starts: Any,
        out_ids: Any,
        out_dist: Any,
        bucket_begin: Any,
        bucket_end: Any,
        candidates: Any,
    ) -> int:
        # Writes matches of query qi to out_*[starts[qi]:starts[qi + 1]] and returns the
        # total count. When that exceeds the buffers only the count is kept, and the
        # caller retries with buffers of that size.
        #
        # Probing runs in phases over blocks of probes -- read all bucket bounds, then
        # gather all candidate rows, then verify them -- rather than bucket by bucket:
        # each phase issues independent random reads that the CPU keeps in flight
        # together, instead of one cache miss at a time behind mispredicted branches,
        # and prefetches what the next phase will read (about 1.8x faster at 1M).
        # Almost all time goes to cache misses: ~2.8k probes and ~3.3k candidates per
        # query at 10M entries and threshold 31.
        n = words.shape[0]
        m = radii.shape[0]
        width = (1 << bits) + 1
        mask = np.uint64((1 << bits) - 1)
        block = bucket_begin.shape[0]
        room = candidates.shape[0]
        capacity = out_ids.shape[0]
        found = 0
        starts[0] = 0
        for qi in range(queries.shape[0]):
            q0 = queries[qi, 0]
            q1 = queries[qi, 1]
            q2 = queries[qi, 2]
            q3 = queries[qi, 3]
            if scan_main:
                for row in range(n):
                    distance = (
                        popcount(words[row, 0] ^ q0)
                        + popcount(words[row, 1] ^ q1)
                        + popcount(words[row, 2] ^ q2)
                        + popcount(words[row, 3] ^ q3)
                    )
                    if distance <= threshold and dead[row] == 0:
                        if found < capacity:
                            out_ids[found] = ext_ids[row]
                            out_dist[found] = distance
                        found += 1
            else:
                for j in range(m):
                    radius = radii[j]
                    if radius < 0:
                        continue
                    query_key = substring(queries, qi, j * spacing, bits, mask)
                    table = j * width
                    column = j * n
                    probes = upto[radius if radius < bits else bits]
                    for first in range(0, probes, block):
                        last = min(first + block, probes)
                        for p in range(first, last):
                            key = query_key ^ np.int64(patterns[p])
                            begin = offsets[table + key]
                            bucket_begin[p - first] = begin
                            bucket_end[p - first] = offsets[table + key + 1]
                            prefetch(rows, column + begin)
                        count = 0
                        for p in range(last - first):
                            for slot in range(bucket_begin[p], bucket_end[p]):
                                row = rows[column + slot]
                                prefetch(words, row)
                                candidates[count] = row
                                count += 1
                                if count == room:
                                    found = verify(
                                        candidates, np.int64(count), j, queries, qi,
                                        threshold, radii, bits, spacing, words, dead,
                                        ext_ids, out_ids, out_dist, np.int64(found),
                                    )  # fmt: skip
                                    count = 0
                        # np.int64(): a bare 0 would be typed as a literal and make
                        # numba compile verify() once per literal/non-literal mix.
                        found = verify(
                            candidates, np.int64(count), j, queries, qi, threshold, radii,
                            bits, spacing, words, dead, ext_ids, out_ids, out_dist,
                            np.int64(found),
                        )  # fmt: skip
            for slot in range(delta_count):
                distance = (
                    popcount(delta_words[slot, 0] ^ q0)
                    + popcount(delta_words[slot, 1] ^ q1)
                    + popcount(delta_words[slot, 2] ^ q2)
                    + popcount(delta_words[slot, 3] ^ q3)
                )
                if distance <= threshold and delta_dead[slot] == 0:
                    if found < capacity:
                        out_ids[found] = delta_ids[slot]
                        out_dist[found] = distance
                    found += 1
            starts[qi + 1] = found
        return found

    return _Kernels(build_table=build_table, search=search)


# -------------------------------------------------------------------- MIH internals

# Relative costs used to pick the layout and to decide, per query threshold, whether
# probing beats a linear scan. A probe is one random read of the offsets table; a
# candidate is a random read of the row table plus one of the hash table; a scanned
# entry is 32 sequential bytes. Calibrated on a 2-core EPYC VM: ~20-40 ns per probe or
# candidate and ~5 ns per scanned entry at 1M entries; probing and scanning break even
# near threshold 56 there.
_PROBE_COST = 1.0
_CANDIDATE_COST = 1.5
_SCAN_COST = 0.1
# Offsets plus row tables may use up to this many bytes per entry (or a small fixed
# floor for tiny banks); this is what bounds memory at ~1.2 GB for 10M entries.
_TABLE_BYTES_PER_ENTRY = 90
_TABLE_BYTES_FLOOR = 16 << 20
_MIN_SUBSTRING_BITS = 4
# 2**24 offsets (64 MiB) per substring at most; more only pays off beyond ~30M entries.
_MAX_SUBSTRING_BITS = 24
# Probes per phase and candidate rows per verification pass (see the search kernel).
_PROBE_BLOCK = 256
_CANDIDATE_BLOCK = 1024
# Substring tables built concurrently during a build or compaction (each thread needs
# 12 bytes of scratch per entry).
_BUILD_THREADS = 2


def _probe_radii(threshold: int, m: int) -> I64Array:
    """Per-substring search radii that guarantee exactness.

    With ``threshold = s * m + a`` (``0 <= a < m``), a hash within ``threshold`` has
    distance ``<= s`` on one of the first ``a + 1`` substrings or ``<= s - 1`` on one of
    the others: otherwise the substring distances would add up to at least
    ``(a + 1)(s + 1) + (m - a - 1)s = threshold + 1``. This holds even when the
    substrings do not cover all 256 bits. A radius of -1 means "do not probe".
    """
    s, a = divmod(threshold, m)
    radii = np.full(m, s - 1, dtype=np.int64)
    radii[: a + 1] = s
    return radii


def _probe_cost(n: int, m: int, bits: int, threshold: int) -> float:
    probes = 0
    for radius in _probe_radii(threshold, m).tolist():
        probes += sum(math.comb(bits, k) for k in range(min(radius, bits) + 1))
    candidates = probes * n / float(1 << bits)
    return probes * _PROBE_COST + candidates * _CANDIDATE_COST


def _table_bytes(n: int, m: int, bits: int) -> int:
    return m * (((1 << bits) + 1) * 4 + n * 4)


def _choose_layout(n: int, design_threshold: int) -> tuple[int, int]:
    """Pick (substring count, bits per substring) minimising the modelled probe cost at
    ``design_threshold`` within the memory budget."""
    budget = max(_TABLE_BYTES_FLOOR, _TABLE_BYTES_PER_ENTRY * n)
    best: tuple[float, int, int] | None = None
    for m in range(1, 33):
        for bits in range(_MIN_SUBSTRING_BITS, min(HASH_BITS // m, _MAX_SUBSTRING_BITS) + 1):
            if _table_bytes(n, m, bits) > budget:
                continue
            cost = _probe_cost(n, m, bits, design_threshold)
            if best is None or cost < best[0]:
                best = (cost, m, bits)
    if best is None:  # pragma: no cover - the floor budget always admits m=1, bits=4
        return 1, _MIN_SUBSTRING_BITS
    return best[1], best[2]


def _build_tables(words: U64Array, m: int, bits: int, spacing: int) -> tuple[U32Array, U32Array]:
    """Offsets (``m`` blocks of ``2**bits + 1``) and rows (``m`` blocks of ``n``) of the
    substring tables, built two substrings at a time (the kernel releases the GIL)."""
    n = words.shape[0]
    width = (1 << bits) + 1
    offsets = np.zeros(m * width, dtype=np.uint32)
    rows = np.empty(m * n, dtype=np.uint32)
    build_table = _kernels().build_table
    low = bits // 2

    def one(j: int) -> None:
        build_table(
            words, j * spacing, bits, offsets[j * width : (j + 1) * width],
            rows[j * n : (j + 1) * n], np.empty(n, dtype=np.uint32),
            np.empty(n, dtype=np.uint32), np.empty(n, dtype=np.uint32),
            np.zeros((1 << low) + 1, dtype=np.int64),
            np.zeros((1 << (bits - low)) + 1, dtype=np.int64),
        )  # fmt: skip

    workers = min(m, _BUILD_THREADS, os.cpu_count() or 1)
    if workers <= 1 or n < 100_000:
        for j in range(m):
            one(j)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(one, range(m)))
    return offsets, rows


class _Plan(NamedTuple):
    radii: I64Array
    scan: bool
    patterns: U32Array
    upto: I64Array


@lru_cache(maxsize=64)
def _flip_patterns(bits: int, radius: int) -> tuple[U32Array, I64Array]:
    """Every ``bits``-wide mask with at most ``radius`` set bits, ordered by set-bit
    count, and ``upto[k]`` = how many of them have at most ``k`` set bits.

    Probing substring values ``key ^ mask`` in this order visits each value within
    ``radius`` of ``key`` exactly once; precomputing the masks keeps the bit twiddling
    (and a 64-bit division per mask) out of the probe loop.
    """
    radius = min(radius, bits)
    sizes = [math.comb(bits, k) for k in range(radius + 1)]
    upto = np.cumsum(sizes, dtype=np.int64)
    total = int(upto[-1])
    if total * 8 >= 1 << bits:
        # Dense: sorting every value by popcount is cheaper than listing combinations.
        values = np.arange(1 << bits, dtype=np.uint32)
        order = np.argsort(np.bitwise_count(values), kind="stable")
        patterns = np.ascontiguousarray(values[order[:total]])
    else:
        parts = [np.zeros(1, dtype=np.uint32)]
        for k in range(1, radius + 1):
            positions = np.array(list(itertools.combinations(range(bits), k)), dtype=np.uint32)
            parts.append(np.bitwise_or.reduce(np.uint32(1) << positions, axis=1))
        patterns = np.concatenate(parts)
    return patterns, upto


@dataclass(eq=False)
class _MainSegment:
    """The bulk-built part of the index. Arrays are immutable after build except
    ``dead``, which removals set in place (a reader racing a removal may or may not see
    it, as with any concurrent write)."""

    m: int
    bits: int
    spacing: int
    offsets: U32Array
    rows: U32Array
    words: U64Array
    ext_ids: I64Array  # sorted ascending; row order follows it
    dead: U8Array
    _plans: dict[int, _Plan] = field(default_factory=dict)

    @classmethod
    def build(cls, ext_ids: I64Array, words: U64Array, layout: tuple[int, int]) -> _MainSegment:
        # Takes ownership of ``words`` (callers pass a fresh array). Rows follow id
        # order so that ids can be located by binary search, with no id -> row
        # dictionary (which would cost ~100 bytes per entry).
        n = ext_ids.size
        if n < 2 or bool(np.all(ext_ids[1:] > ext_ids[:-1])):
            sorted_ids = np.ascontiguousarray(ext_ids)
            if words.flags.c_contiguous and words.ctypes.data % 64 == 0:
                sorted_words = words  # already laid out as needed: skip a copy
            else:
                sorted_words = _aligned_words(n)
                sorted_words[:] = words
        else:
            order = np.argsort(ext_ids)
            sorted_ids = ext_ids[order]
            sorted_words = _aligned_words(n)
            # Moving whole 32-byte records is ~3x faster than np.take along axis 0.
            np.take(_records(words), order, out=_records(sorted_words))
        m, bits = layout
        spacing = HASH_BITS // m
        offsets, rows = _build_tables(sorted_words, m, bits, spacing)
        return cls(
            m=m,
            bits=bits,
            spacing=spacing,
            offsets=offsets,
            rows=rows,
            words=sorted_words,
            ext_ids=sorted_ids,
            dead=np.zeros(n, dtype=np.uint8),
        )

    def __len__(self) -> int:
        return int(self.ext_ids.size)

    def locate(self, ids: I64Array) -> I64Array:
        """Row of each id, or -1 when absent (dead rows still count as present)."""
        if self.ext_ids.size == 0:
            return np.full(ids.size, -1, dtype=np.int64)
        where = np.searchsorted(self.ext_ids, ids)
        clipped = np.minimum(where, self.ext_ids.size - 1)
        return np.where(self.ext_ids[clipped] == ids, clipped, -1).astype(np.int64)

    def plan(self, threshold: int, allow_scan: bool) -> _Plan:
        """How to answer queries at ``threshold``; cached per threshold."""
        key = threshold if allow_scan else -1 - threshold
        cached = self._plans.get(key)
        if cached is None:
            radii = _probe_radii(threshold, self.m)
            scan = allow_scan and (
                _probe_cost(len(self), self.m, self.bits, threshold) > _SCAN_COST * len(self)
            )
            if scan:
                patterns, upto = np.zeros(1, dtype=np.uint32), np.ones(1, dtype=np.int64)
            else:
                patterns, upto = _flip_patterns(self.bits, max(int(radii[0]), 0))
            cached = _Plan(radii, scan, patterns, upto)
            self._plans[key] = cached
        return cached

    def nbytes(self) -> int:
        return int(
            self.offsets.nbytes
            + self.rows.nbytes
            + self.words.nbytes
            + self.ext_ids.nbytes
            + self.dead.nbytes
        )


@dataclass(eq=False)
class _Delta:
    """Append-only segment for entries added since the last compaction, searched by a
    linear scan. Slots below ``count`` are never rewritten (only marked dead), so a
    reader holding an older ``count`` sees a consistent prefix while writers append."""

    words: U64Array
    ids: I64Array
    dead: U8Array
    count: int = 0
    slot_of: dict[int, int] = field(default_factory=dict)

    @classmethod
    def empty(cls, capacity: int = 1024) -> _Delta:
        return cls(
            words=_aligned_words(capacity),
            ids=np.empty(capacity, dtype=np.int64),
            dead=np.zeros(capacity, dtype=np.uint8),
        )

    def reserve(self, extra: int) -> None:
        needed = self.count + extra
        if needed <= self.ids.size:
            return
        # Grow into fresh arrays; readers keep using the old ones until they finish.
        capacity = max(needed, 2 * self.ids.size)
        words = _aligned_words(capacity)
        ids = np.empty(capacity, dtype=np.int64)
        dead = np.zeros(capacity, dtype=np.uint8)
        words[: self.count] = self.words[: self.count]
        ids[: self.count] = self.ids[: self.count]
        dead[: self.count] = self.dead[: self.count]
        self.words, self.ids, self.dead = words, ids, dead

    def nbytes(self) -> int:
        return int(self.words.nbytes + self.ids.nbytes + self.dead.nbytes)


@dataclass(frozen=True, eq=False)
class _Snapshot:
    """Everything a search reads, published by one reference assignment."""

    main: _MainSegment
    delta_words: U64Array
    delta_ids: I64Array
    delta_dead: U8Array
    delta_count: int


_Op = tuple[str, I64Array, U64Array | None]


class MultiIndexHashIndex:
    """Exact PDQ index using multi-index hashing, with numba-compiled probing.

    Layout: the 256 bits are cut into ``m`` disjoint substrings of ``bits`` bits (chosen
    from the bank size and ``design_threshold``; 11 x 23 bits for 10M entries at 31).
    For each substring a CSR table maps every possible substring value to the rows
    holding it (``uint32`` offsets + ``uint32`` rows). A query probes, per substring,
    all values within a small radius (see :func:`_probe_radii`), verifies every
    candidate's full 256-bit distance and reports each match once. Results equal
    :class:`BruteForceIndex`'s for every threshold in ``0..256``.

    Writes: ``add``/``remove`` are visible to the next search immediately. Additions go
    to a linearly scanned delta segment and removals mark rows dead; :meth:`compact`
    rebuilds the main structure aside and swaps it in, while searches (and writes) go on
    against the old one. Call it when the delta grows large (``delta_size`` above ~50k
    costs ~0.1 ms per query). Searches need no lock and release the GIL in the kernel;
    writes are serialised by an internal lock.

    Memory is about 120 bytes per entry at 10M entries (hashes 32 B, id 8 B, tables
    ~80 B). At most 2**32 - 1 entries.
    """

    def __init__(
        self,
        *,
        design_threshold: int = DEFAULT_THRESHOLD,
        layout: tuple[int, int] | None = None,
        scan_fallback: bool = True,
        search_threads: int | None = None,
    ) -> None:
        """Create an empty index.

        ``layout`` fixes ``(m, bits)`` instead of choosing it at each build (needs
        ``m * bits <= 256`` and ``bits <= 24``). ``scan_fallback=False`` forces probing
        even when a scan would be cheaper (tests use it). ``search_threads`` bounds the
        threads ``search_batch`` uses (default: CPU count).
        """
        self._design_threshold = _check_threshold(design_threshold)
        if layout is not None:
            m, bits = layout
            if not (m >= 1 and 1 <= bits <= _MAX_SUBSTRING_BITS and m * bits <= HASH_BITS):
                raise ValueError(f"invalid layout {layout!r}: need m*bits <= 256, bits <= 24")
        self._layout = layout
        self._scan_fallback = scan_fallback
        self._threads = max(1, search_threads or os.cpu_count() or 1)
        self._write_lock = threading.Lock()
        self._compact_lock = threading.Lock()
        self._oplog: list[_Op] | None = None
        self._main = self._build_main(np.empty(0, np.int64), _aligned_words(0))
        self._delta = _Delta.empty()
        self._main_live = 0
        self._snapshot = self._snap()

    @classmethod
    def build(
        cls,
        ids: npt.ArrayLike,
        hashes: U8Array,
        *,
        design_threshold: int = DEFAULT_THRESHOLD,
        layout: tuple[int, int] | None = None,
        scan_fallback: bool = True,
        search_threads: int | None = None,
    ) -> MultiIndexHashIndex:
        """Bulk-build an index (ids must be unique); faster than ``add`` + ``compact``."""
        index = cls(
            design_threshold=design_threshold,
            layout=layout,
            scan_fallback=scan_fallback,
            search_threads=search_threads,
        )
        ext_ids = _as_ids(ids)
        rows = _as_hash_rows(hashes, "hashes")
        if rows.shape[0] != ext_ids.size:
            raise ValueError(f"got {ext_ids.size} ids for {rows.shape[0]} hashes")
        _check_unique(ext_ids)
        with index._write_lock:
            index._main = index._build_main(ext_ids, _to_words(rows))
            index._main_live = len(index._main)
            index._snapshot = index._snap()
        return index

    # ---------------------------------------------------------------- public API

    def warm_up(self) -> None:
        """Compile the numba kernels now (about 3 s, once per process) instead of on the
        first build or search."""
        probe = MultiIndexHashIndex.build(
            np.arange(3, dtype=np.int64), np.zeros((3, HASH_BYTES), dtype=np.uint8), layout=(2, 4)
        )
        probe.add(np.array([3], dtype=np.int64), np.zeros((1, HASH_BYTES), dtype=np.uint8))
        query = np.zeros(HASH_BYTES, dtype=np.uint8)
        probe.search(query, 1)
        probe._scan_fallback = True
        probe.search(query, MAX_THRESHOLD)

    def add(self, ids: npt.ArrayLike, hashes: U8Array) -> None:
        """Insert entries (visible to searches on return); an existing id is replaced."""
        new_ids = _as_ids(ids)
        rows = _as_hash_rows(hashes, "hashes")
        if rows.shape[0] != new_ids.size:
            raise ValueError(f"got {new_ids.size} ids for {rows.shape[0]} hashes")
        _check_unique(new_ids)
        if new_ids.size == 0:
            return
        words = _to_words(rows)
        with self._write_lock:
            self._apply_add(new_ids, words)
            if self._oplog is not None:
                self._oplog.append(("add", new_ids, words))
            self._snapshot = self._snap()

    def remove(self, ids: npt.ArrayLike) -> None:
        """Delete entries by id (effective on return); unknown ids are ignored."""
        gone = np.unique(_as_ids(ids))
        if gone.size == 0:
            return
        with self._write_lock:
            self._apply_remove(gone)
            if self._oplog is not None:
                self._oplog.append(("remove", gone, None))
            self._snapshot = self._snap()

    def search(self, query: U8Array, threshold: int) -> list[Match]:
        """All live entries within ``threshold`` (0..256) of ``query``, sorted by
        (distance, entry_id); identical to :class:`BruteForceIndex`."""
        return self._search_words(_query_words(_as_query(query)), _check_threshold(threshold))[0]

    def search_batch(self, queries: U8Array, threshold: int) -> list[list[Match]]:
        """``search`` for every row of a ``(q, 32)`` uint8 array, spread over threads."""
        limit = _check_threshold(threshold)
        words = _query_words(_as_hash_rows(queries, "queries"))
        chunks = min(self._threads, max(1, words.shape[0] // 16))
        if chunks == 1:
            return self._search_words(words, limit)
        bounds = np.linspace(0, words.shape[0], chunks + 1).astype(int).tolist()
        snapshot = self._snapshot  # one snapshot for the whole batch
        with ThreadPoolExecutor(max_workers=chunks) as pool:
            parts = pool.map(
                lambda span: self._search_words(words[span[0] : span[1]], limit, snapshot),
                itertools.pairwise(bounds),
            )
            return [matches for part in parts for matches in part]

    def compact(self) -> None:
        """Merge the delta and drop dead rows by rebuilding the main structure.

        The rebuild runs aside; searches and writes continue meanwhile and writes made
        during the rebuild are replayed onto the new structure before it is swapped in.
        One compaction runs at a time.
        """
        with self._compact_lock:
            with self._write_lock:
                main, delta = self._main, self._delta
                main_live = main.dead == 0  # copies: removals keep mutating the originals
                delta_live = delta.dead[: delta.count] == 0
                delta_ids = delta.ids[: delta.count]
                delta_words = delta.words[: delta.count]
                self._oplog = []
            try:
                ext_ids = np.concatenate([main.ext_ids[main_live], delta_ids[delta_live]])
                words = np.concatenate([main.words[main_live], delta_words[delta_live]])
                rebuilt = self._build_main(ext_ids, words)
            except BaseException:
                with self._write_lock:
                    self._oplog = None
                raise
            with self._write_lock:
                replay, self._oplog = self._oplog, None
                self._main = rebuilt
                self._main_live = len(rebuilt)
                self._delta = _Delta.empty()
                for kind, op_ids, op_words in replay:
                    if kind == "add" and op_words is not None:
                        self._apply_add(op_ids, op_words)
                    else:
                        self._apply_remove(op_ids)
                self._snapshot = self._snap()

    def __len__(self) -> int:
        return self._main_live + len(self._delta.slot_of)

    def memory_bytes(self) -> int:
        """Bytes held by the main structure and the delta segment."""
        return self._main.nbytes() + self._delta.nbytes()

    @property
    def delta_size(self) -> int:
        """Slots used in the delta segment (live or dead) since the last compaction."""
        return self._delta.count

    @property
    def layout(self) -> tuple[int, int]:
        """(substring count m, bits per substring) of the current main structure."""
        return self._main.m, self._main.bits

    # ------------------------------------------------------------------ internals

    def _build_main(self, ext_ids: I64Array, words: U64Array) -> _MainSegment:
        if ext_ids.size >= 2**32 - 1:
            raise ValueError("MultiIndexHashIndex holds at most 2**32 - 2 entries")
        layout = self._layout or _choose_layout(ext_ids.size, self._design_threshold)
        return _MainSegment.build(ext_ids, words, layout)

    def _snap(self) -> _Snapshot:
        delta = self._delta
        return _Snapshot(self._main, delta.words, delta.ids, delta.dead, delta.count)

    def _apply_remove(self, ids: I64Array) -> None:
        rows = self._main.locate(ids)
        rows = rows[rows >= 0]
        rows = rows[self._main.dead[rows] == 0]
        self._main.dead[rows] = 1
        self._main_live -= int(rows.size)
        delta = self._delta
        for entry_id in ids.tolist():
            slot = delta.slot_of.pop(entry_id, None)
            if slot is not None:
                delta.dead[slot] = 1

    def _apply_add(self, ids: I64Array, words: U64Array) -> None:
        delta = self._delta
        delta.reserve(ids.size)
        start = delta.count
        delta.words[start : start + ids.size] = words
        delta.ids[start : start + ids.size] = ids
        delta.dead[start : start + ids.size] = 0
        self._apply_remove(ids)  # upsert: retire older copies first
        delta.count = start + ids.size
        delta.slot_of.update(zip(ids.tolist(), range(start, delta.count), strict=True))

    def _search_words(
        self, words: U64Array, threshold: int, snapshot: _Snapshot | None = None
    ) -> list[list[Match]]:
        snap = snapshot or self._snapshot
        main = snap.main
        plan = main.plan(threshold, self._scan_fallback)
        starts = np.empty(words.shape[0] + 1, dtype=np.int64)
        capacity = 64 + 4 * words.shape[0]
        bucket_begin = np.empty(_PROBE_BLOCK, dtype=np.int64)
        bucket_end = np.empty(_PROBE_BLOCK, dtype=np.int64)
        candidates = np.empty(_CANDIDATE_BLOCK, dtype=np.int64)
        while True:
            found_ids = np.empty(capacity, dtype=np.int64)
            found_dist = np.empty(capacity, dtype=np.int64)
            found = _kernels().search(
                words, threshold, plan.radii, plan.scan, main.bits, main.spacing,
                plan.patterns, plan.upto, main.offsets, main.rows, main.words, main.dead,
                main.ext_ids, snap.delta_words, snap.delta_dead, snap.delta_ids,
                snap.delta_count, starts, found_ids, found_dist, bucket_begin, bucket_end,
                candidates,
            )  # fmt: skip
            if found <= capacity:
                break
            capacity = found  # rare: many matches (high threshold); redo with room
        if found == 0:
            return [[] for _ in range(words.shape[0])]
        bounds = starts.tolist()
        return [
            _sorted_matches(found_ids[lo:hi], found_dist[lo:hi])
            for lo, hi in itertools.pairwise(bounds)
        ]
