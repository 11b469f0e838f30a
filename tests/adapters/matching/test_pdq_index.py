"""Property tests: MultiIndexHashIndex answers exactly like BruteForceIndex.

All hashes here are random bit strings (no real content). Banks mix uniformly random
hashes with clusters of near-duplicates, and queries are planted near-duplicates at
distances spread over 0..threshold (and just beyond), exact copies and random hashes.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from cleanit.adapters.matching.pdq_index import (
    HASH_BYTES,
    BruteForceIndex,
    Match,
    MultiIndexHashIndex,
    PDQIndex,
    _choose_layout,
    _table_bytes,
    bytes_to_hex,
    hex_to_bytes,
    hexes_to_array,
)

U8 = npt.NDArray[np.uint8]

# Layouts (substrings m, bits per substring) exercised on top of the automatic choice:
# many short substrings, few long ones, uneven coverage of the 256 bits, degenerate.
LAYOUTS: list[tuple[int, int] | None] = [
    None,
    (11, 10),
    (16, 16),
    (8, 12),
    (5, 7),
    (2, 14),
    (1, 8),
    (32, 8),
    (21, 12),
]


@pytest.fixture(scope="module", autouse=True)
def _compiled() -> None:
    # Pay the numba compilation once, outside Hypothesis' per-example timing.
    MultiIndexHashIndex().warm_up()


def flip(rng: np.random.Generator, row: U8, distance: int) -> U8:
    """``row`` with exactly ``distance`` distinct bits flipped."""
    bits = np.unpackbits(row)
    bits[rng.choice(256, size=distance, replace=False)] ^= 1
    return np.packbits(bits)


def random_hashes(rng: np.random.Generator, n: int) -> U8:
    return rng.integers(0, 256, size=(n, HASH_BYTES), dtype=np.uint8)


def make_bank(rng: np.random.Generator, n: int, spread: int = 40) -> U8:
    """Half uniform random hashes, half clustered around a few centres (so queries have
    several matches at assorted distances), including exact duplicates."""
    bank = random_hashes(rng, n)
    centres = random_hashes(rng, max(1, n // 50))
    for row in range(0, n, 2):
        bank[row] = flip(rng, centres[rng.integers(len(centres))], int(rng.integers(0, spread)))
    if n >= 4:
        bank[1] = bank[0]
    return bank


def make_queries(rng: np.random.Generator, bank: U8, threshold: int, count: int) -> U8:
    """Planted near-duplicates at distances cycling over 0..threshold+2, plus random."""
    queries = random_hashes(rng, count)
    if len(bank) == 0:
        return queries
    for i in range(count * 3 // 4):
        distance = min(i % (threshold + 3), 256)
        queries[i] = flip(rng, bank[rng.integers(len(bank))], distance)
    return queries


def ids_for(rng: np.random.Generator, n: int) -> npt.NDArray[np.int64]:
    # Unordered, sparse, some negative: ids are opaque int64 values.
    return rng.choice(np.arange(-(10**6), 10**6), size=n, replace=False).astype(np.int64)


def assert_same(expected: PDQIndex, actual: PDQIndex, queries: U8, threshold: int) -> None:
    want = expected.search_batch(queries, threshold)
    got = actual.search_batch(queries, threshold)
    assert got == want
    for row in (0, len(queries) - 1):
        if len(queries):
            assert actual.search(queries[row], threshold) == want[row]


# ---------------------------------------------------------------- equivalence


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 3000),
    threshold=st.integers(0, 64),
    layout=st.sampled_from(LAYOUTS),
    mode=st.sampled_from(["build", "delta", "mixed"]),
    scan_fallback=st.booleans(),
)
def test_mih_equals_brute_force(
    seed: int,
    n: int,
    threshold: int,
    layout: tuple[int, int] | None,
    mode: str,
    scan_fallback: bool,
) -> None:
    rng = np.random.default_rng(seed)
    bank = make_bank(rng, n)
    ids = ids_for(rng, n)
    reference = BruteForceIndex()
    reference.add(ids, bank)
    if mode == "build":
        index = MultiIndexHashIndex.build(ids, bank, layout=layout, scan_fallback=scan_fallback)
    else:
        index = MultiIndexHashIndex(layout=layout, scan_fallback=scan_fallback)
        split = n // 2 if mode == "mixed" else 0
        index.add(ids[:split], bank[:split])
        index.compact()
        index.add(ids[split:], bank[split:])  # stays in the delta segment
    assert len(index) == n
    assert_same(reference, index, make_queries(rng, bank, threshold, 60), threshold)


@pytest.mark.parametrize("threshold", [0, 1, 15, 16, 31, 32, 47, 48, 63, 64, 100, 200, 256])
def test_every_threshold(threshold: int) -> None:
    rng = np.random.default_rng(threshold)
    bank = make_bank(rng, 4000, spread=80)
    ids = ids_for(rng, len(bank))
    reference = BruteForceIndex()
    reference.add(ids, bank)
    # Above ~128 nearly everything matches: fewer queries keep the result lists small.
    queries = make_queries(rng, bank, threshold, 80 if threshold <= 64 else 6)
    for scan_fallback in (False, True):
        if not scan_fallback and threshold > 64:
            continue  # probing every bucket is correct but pointlessly slow
        index = MultiIndexHashIndex.build(ids, bank, layout=(11, 12), scan_fallback=scan_fallback)
        assert_same(reference, index, queries, threshold)


def test_planted_matches_found_at_exact_distance() -> None:
    rng = np.random.default_rng(7)
    bank = random_hashes(rng, 20_000)
    ids = np.arange(len(bank), dtype=np.int64) * 3
    index = MultiIndexHashIndex.build(ids, bank)
    for distance in range(32):
        row = int(rng.integers(len(bank)))
        query = flip(rng, bank[row], distance)
        assert Match(int(ids[row]), distance) in index.search(query, 31)
    # Random hashes are ~128 bits apart: nothing should match at 31.
    assert all(not hits for hits in index.search_batch(random_hashes(rng, 200), 31))


def test_many_matches_per_query_overflow_result_buffer() -> None:
    # Every entry matches every query: exercises the "buffer too small, rerun" path.
    rng = np.random.default_rng(3)
    centre = random_hashes(rng, 1)[0]
    bank = np.stack([flip(rng, centre, int(rng.integers(0, 6))) for _ in range(500)])
    ids = np.arange(500, dtype=np.int64)
    reference = BruteForceIndex()
    reference.add(ids, bank)
    index = MultiIndexHashIndex.build(ids, bank, layout=(8, 8), scan_fallback=False)
    queries = np.stack([flip(rng, centre, 2) for _ in range(5)])
    results = index.search_batch(queries, 31)
    assert all(len(hits) == 500 for hits in results)
    assert results == reference.search_batch(queries, 31)


def test_results_sorted_by_distance_then_id() -> None:
    rng = np.random.default_rng(11)
    base = random_hashes(rng, 1)[0]
    bank = np.stack([base, flip(rng, base, 3), base, flip(rng, base, 1)])
    index = MultiIndexHashIndex.build(np.array([9, 4, 2, 7]), bank)
    assert [(m.distance, m.entry_id) for m in index.search(base, 31)] == [
        (0, 2),
        (0, 9),
        (1, 7),
        (3, 4),
    ]


def test_batch_uses_threads_and_keeps_order() -> None:
    rng = np.random.default_rng(5)
    bank = make_bank(rng, 3000)
    ids = ids_for(rng, 3000)
    reference = BruteForceIndex()
    reference.add(ids, bank)
    index = MultiIndexHashIndex.build(ids, bank, search_threads=4)
    assert_same(reference, index, make_queries(rng, bank, 31, 300), 31)


# ------------------------------------------------------------ writes and compaction


def test_add_remove_visible_immediately_and_after_compaction() -> None:
    rng = np.random.default_rng(1)
    bank = random_hashes(rng, 2000)
    ids = np.arange(2000, dtype=np.int64)
    index = MultiIndexHashIndex.build(ids, bank)
    newcomer = flip(rng, bank[5], 4)

    index.add(np.array([5000]), newcomer[None, :])
    assert Match(5000, 0) in index.search(newcomer, 31)
    assert len(index) == 2001

    index.remove(np.array([5, 5, 123456]))  # duplicates and unknown ids are fine
    assert [m.entry_id for m in index.search(bank[5], 31)] == [5000]
    assert len(index) == 2000

    index.add(np.array([5]), bank[5][None, :])  # re-add a removed id
    assert [m.entry_id for m in index.search(bank[5], 31)] == [5, 5000]

    upsert = random_hashes(rng, 1)
    index.add(np.array([6]), upsert)  # replace a main-segment hash
    assert index.search(bank[6], 31) == []
    assert index.search(upsert[0], 0) == [Match(6, 0)]
    assert len(index) == 2001

    index.compact()
    assert index.delta_size == 0
    assert len(index) == 2001
    assert [m.entry_id for m in index.search(bank[5], 31)] == [5, 5000]
    assert index.search(upsert[0], 0) == [Match(6, 0)]
    index.remove(np.array([5000, 6]))
    assert [m.entry_id for m in index.search(bank[5], 31)] == [5]
    assert index.search(upsert[0], 31) == []


class _PausingIndex(MultiIndexHashIndex):
    """Blocks inside the rebuild of compact() until the test lets it go."""

    def __init__(self) -> None:
        self.pause = False
        self.started = threading.Event()
        self.release = threading.Event()
        super().__init__(layout=(11, 10))

    def _build_main(self, ext_ids, words):  # type: ignore[no-untyped-def]
        if self.pause:
            self.started.set()
            assert self.release.wait(30)
        return super()._build_main(ext_ids, words)


def test_writes_during_compaction_are_kept() -> None:
    rng = np.random.default_rng(2)
    bank = random_hashes(rng, 1500)
    index = _PausingIndex()
    reference = BruteForceIndex()
    for target in (index, reference):
        target.add(np.arange(1000), bank[:1000])
    index.compact()
    index.add(np.arange(1000, 1200), bank[1000:1200])  # delta to be merged
    reference.add(np.arange(1000, 1200), bank[1000:1200])

    index.pause = True
    worker = threading.Thread(target=index.compact)
    worker.start()
    assert index.started.wait(30)
    queries = make_queries(rng, bank, 31, 80)
    # Meanwhile: lookups, additions, upserts and removals all still work...
    assert_same(reference, index, queries, 31)
    changes = [  # (ids, hashes or None for a removal)
        (np.arange(1200, 1500), bank[1200:1500]),
        (np.array([3, 1100, 1250]), None),
        (np.array([7, 1101]), random_hashes(rng, 2)),  # upserts: main and old delta
    ]
    for ids, hashes in changes:
        for target in (index, reference):
            if hashes is None:
                target.remove(ids)
            else:
                target.add(ids, hashes)
        assert_same(reference, index, queries, 31)
    index.release.set()
    worker.join(30)
    # ... and are replayed onto the rebuilt structure.
    assert not worker.is_alive()
    assert len(index) == len(reference)
    assert index.delta_size == 300 + 2
    assert_same(reference, index, queries, 31)
    index.pause = False
    index.compact()
    assert index.delta_size == 0
    assert_same(reference, index, queries, 31)


def test_lookups_stay_correct_while_compacting_in_another_thread() -> None:
    rng = np.random.default_rng(4)
    bank = make_bank(rng, 3000)
    ids = ids_for(rng, 3000)
    index = MultiIndexHashIndex(layout=(11, 11))
    index.add(ids, bank)
    reference = BruteForceIndex()
    reference.add(ids, bank)
    queries = make_queries(rng, bank, 31, 40)
    expected = reference.search_batch(queries, 31)
    stop = threading.Event()

    def compact_repeatedly() -> int:
        rounds = 0
        while not stop.is_set():
            index.compact()
            rounds += 1
        return rounds

    with ThreadPoolExecutor(max_workers=1) as pool:
        compactions = pool.submit(compact_repeatedly)
        try:
            for _ in range(30):
                assert index.search_batch(queries, 31) == expected
        finally:
            stop.set()
        assert compactions.result(timeout=30) >= 1  # re-raises a failed compaction


class IndexMachine(RuleBasedStateMachine):
    """Random interleavings of add/upsert/remove/compact/search against the reference."""

    def __init__(self) -> None:
        super().__init__()
        self.index = MultiIndexHashIndex(layout=(9, 9), scan_fallback=False)
        self.reference = BruteForceIndex()
        self.centres = random_hashes(np.random.default_rng(0), 4)

    def _near(self, seed: int, count: int) -> U8:
        rng = np.random.default_rng(seed)
        out = np.empty((count, HASH_BYTES), dtype=np.uint8)
        for row in range(count):
            out[row] = flip(rng, self.centres[rng.integers(4)], int(rng.integers(0, 48)))
        return out

    @rule(ids=st.lists(st.integers(0, 80), unique=True, max_size=25), seed=st.integers(0, 10**9))
    def add(self, ids: list[int], seed: int) -> None:
        hashes = self._near(seed, len(ids))
        self.index.add(np.array(ids, dtype=np.int64), hashes)
        self.reference.add(np.array(ids, dtype=np.int64), hashes)

    @rule(ids=st.lists(st.integers(0, 90), max_size=10))
    def remove(self, ids: list[int]) -> None:
        self.index.remove(np.array(ids, dtype=np.int64))
        self.reference.remove(np.array(ids, dtype=np.int64))

    @rule()
    def compact(self) -> None:
        self.index.compact()

    @rule(seed=st.integers(0, 10**9), threshold=st.integers(0, 64))
    def search(self, seed: int, threshold: int) -> None:
        assert_same(self.reference, self.index, self._near(seed, 6), threshold)

    @invariant()
    def same_size(self) -> None:
        assert len(self.index) == len(self.reference)


TestIndexMachine = IndexMachine.TestCase
TestIndexMachine.settings = settings(max_examples=25, stateful_step_count=30, deadline=None)


# ------------------------------------------------------------ layout and memory


def test_layout_for_ten_million_fits_memory_budget() -> None:
    n = 10_000_000
    m, bits = _choose_layout(n, 31)
    total = _table_bytes(n, m, bits) + n * (32 + 8 + 1)  # tables + hashes, ids, dead flags
    assert total <= 1.5e9
    assert m * bits <= 256


def test_memory_bytes_and_len() -> None:
    rng = np.random.default_rng(0)
    index = MultiIndexHashIndex.build(np.arange(1000), random_hashes(rng, 1000))
    assert len(index) == 1000
    assert index.memory_bytes() >= 1000 * (32 + 8)
    reference = BruteForceIndex()
    reference.add(np.arange(10), random_hashes(rng, 10))
    assert reference.memory_bytes() == 10 * (32 + 8)
    assert isinstance(index, PDQIndex) and isinstance(reference, PDQIndex)


def test_empty_index() -> None:
    query = np.zeros(HASH_BYTES, dtype=np.uint8)
    for index in (MultiIndexHashIndex(), BruteForceIndex()):
        assert len(index) == 0
        assert index.search(query, 31) == []
        assert index.search_batch(np.zeros((3, HASH_BYTES), dtype=np.uint8), 31) == [[], [], []]
        assert index.search_batch(np.zeros((0, HASH_BYTES), dtype=np.uint8), 31) == []


def test_import_has_no_side_effects() -> None:
    code = (
        "import sys; import cleanit.adapters.matching.pdq_index as p; "
        "assert 'numba' not in sys.modules, 'numba imported at import time'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------- input checking


def test_hex_round_trip() -> None:
    rng = np.random.default_rng(0)
    raw = random_hashes(rng, 1)[0]
    text = bytes_to_hex(raw)
    assert len(text) == 64 and text == text.lower()
    assert np.array_equal(hex_to_bytes(text), raw)
    assert np.array_equal(hex_to_bytes(text.upper()), raw)
    assert np.array_equal(hexes_to_array([text, text]), np.stack([raw, raw]))
    assert hex_to_bytes("f" * 64).flags.writeable


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "exactly 64 hex characters, got 0"),
        ("a" * 63, "exactly 64 hex characters, got 63"),
        ("a" * 65, "exactly 64 hex characters, got 65"),
        ("0x" + "a" * 62, "non-hex character 'x' at position 1"),
        ("a" * 40 + "g" + "a" * 23, "non-hex character 'g' at position 40"),
        ("a" * 63 + " ", "non-hex character ' ' at position 63"),
        ("é" * 64, "non-hex character 'é' at position 0"),
        (b"a" * 64, "must be a str"),
    ],
)
def test_hex_validation(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        hex_to_bytes(value)  # type: ignore[arg-type]


def test_bytes_to_hex_validation() -> None:
    with pytest.raises(ValueError, match="32,"):
        bytes_to_hex(np.zeros(31, dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        bytes_to_hex(np.zeros(32, dtype=np.int64))


@pytest.mark.parametrize("make", [MultiIndexHashIndex, BruteForceIndex])
def test_argument_validation(make: type[MultiIndexHashIndex] | type[BruteForceIndex]) -> None:
    index = make()
    hashes = np.zeros((2, HASH_BYTES), dtype=np.uint8)
    with pytest.raises(ValueError, match="2 ids for 1 hashes"):
        index.add(np.array([1, 2]), hashes[:1])
    with pytest.raises(ValueError, match="unique"):
        index.add(np.array([1, 1]), hashes)
    with pytest.raises(ValueError, match="uint8"):
        index.add(np.array([1, 2]), hashes.astype(np.int16))
    with pytest.raises(ValueError, match="shape"):
        index.add(np.array([1, 2]), np.zeros((2, 31), dtype=np.uint8))
    with pytest.raises(ValueError, match="integers"):
        index.add(np.array([1.0, 2.0]), hashes)
    with pytest.raises(ValueError, match=r"0\.\.256"):
        index.search(hashes[0], 257)
    with pytest.raises(ValueError, match=r"0\.\.256"):
        index.search(hashes[0], -1)
    with pytest.raises(TypeError):
        index.search(hashes[0], True)
    with pytest.raises(ValueError, match="query"):
        index.search(hashes, 31)
    with pytest.raises(ValueError, match="queries"):
        index.search_batch(hashes[0], 31)


def test_queries_of_any_memory_layout() -> None:
    rng = np.random.default_rng(9)
    bank = random_hashes(rng, 100)
    index = MultiIndexHashIndex.build(np.arange(100), bank)
    readonly = bank.copy()
    readonly.flags.writeable = False
    strided = np.repeat(bank, 2, axis=0)[::2]
    unaligned = np.frombuffer(b"\0" + bank.tobytes(), dtype=np.uint8, offset=1).reshape(100, 32)
    for queries in (readonly, strided, unaligned):
        results = index.search_batch(queries, 0)
        assert [hits[0].entry_id for hits in results] == list(range(100))
    with pytest.raises(ValueError, match="invalid layout"):
        MultiIndexHashIndex(layout=(11, 24))
