"""Benchmark: cleanit's MultiIndexHashIndex vs faiss IndexBinaryFlat vs threatexchange.

Run:  python bench/matching.py --sizes 1000000 10000000 --queries 2000 [--json]

For each bank size, in one process: a bank of uniformly random 256-bit hashes (never
real content), queries that are half planted near-duplicates of bank entries (distances
spread evenly over 0..threshold) and half fresh random hashes (which match nothing at
threshold 31: two random hashes are ~128 bits apart). Every index is checked against
faiss' exhaustive range search (the brute-force ground truth): same ids, same distances.

Measured per index: build time, memory, single-lookup rate and p50/p99 latency, batched
throughput, recall, and how long 10k additions take to become visible. Speeds are also
given as ratios to faiss IndexBinaryFlat measured in the same run.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cleanit.adapters.matching.pdq_index import MultiIndexHashIndex

U8 = npt.NDArray[np.uint8]
Hits = frozenset[tuple[int, int]]  # (entry id, distance)
ADDITIONS = 10_000


@dataclass
class Result:
    name: str
    build_s: float | None = None
    memory_bytes: int | None = None
    memory_note: str = ""
    single_per_s: float | None = None
    single_queries: int = 0
    p50_us: float | None = None
    p99_us: float | None = None
    batch_per_s: float | None = None
    planted_recall: float | None = None
    exact_same_as_brute_force: bool | None = None
    random_queries_with_matches: int | None = None
    additions_visible_s: float | None = None
    notes: list[str] = field(default_factory=list)


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def make_data(
    n: int, n_queries: int, threshold: int, seed: int
) -> tuple[U8, U8, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Bank, queries, and for each planted query its source row and distance (-1 for
    the random half)."""
    rng = np.random.default_rng(seed)
    bank = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    queries = rng.integers(0, 256, size=(n_queries, 32), dtype=np.uint8)
    planted = n_queries // 2
    sources = np.full(n_queries, -1, dtype=np.int64)
    distances = np.full(n_queries, -1, dtype=np.int64)
    sources[:planted] = rng.integers(0, n, size=planted)
    distances[:planted] = np.arange(planted) % (threshold + 1)
    for i in range(planted):
        bits = np.unpackbits(bank[sources[i]])
        bits[rng.choice(256, size=int(distances[i]), replace=False)] ^= 1
        queries[i] = np.packbits(bits)
    order = rng.permutation(n_queries)  # interleave planted and random queries
    return bank, queries[order], sources[order], distances[order]


def time_single(search: Callable[[int], Hits], count: int) -> tuple[list[Hits], list[float]]:
    results, latencies = [], []
    for i in range(count):
        start = time.perf_counter()
        results.append(search(i))
        latencies.append(time.perf_counter() - start)
    return results, latencies


def summarise(
    result: Result,
    truth: Sequence[Hits],
    single: Sequence[Hits],
    latencies: Sequence[float],
    batch: Sequence[Hits] | None,
    sources: npt.NDArray[np.int64],
    distances: npt.NDArray[np.int64],
) -> None:
    lat = np.array(latencies)
    result.single_queries = len(lat)
    result.single_per_s = len(lat) / lat.sum()
    result.p50_us = float(np.percentile(lat, 50) * 1e6)
    result.p99_us = float(np.percentile(lat, 99) * 1e6)
    checked = list(single) + (list(batch) if batch is not None else [])
    expected = list(truth[: len(single)]) + (list(truth) if batch is not None else [])
    result.exact_same_as_brute_force = checked == expected
    answers = batch if batch is not None else single
    planted = [i for i in range(len(answers)) if sources[i] >= 0]
    found = sum((int(sources[i]), int(distances[i])) in answers[i] for i in planted)
    result.planted_recall = found / len(planted) if planted else None
    result.random_queries_with_matches = sum(
        1 for i in range(len(answers)) if sources[i] < 0 and answers[i]
    )


# ------------------------------------------------------------------------ indexes


def bench_faiss(
    bank: U8, queries: U8, threshold: int, single_count: int
) -> tuple[Result, list[Hits], list[Hits], list[float]]:
    """The baseline; its batched range search is also the ground truth."""
    import faiss

    result = Result("faiss IndexBinaryFlat")
    result.notes.append(f"faiss {faiss.__version__}")
    start = time.perf_counter()
    index = faiss.IndexBinaryFlat(256)
    index.add(bank)
    result.build_s = time.perf_counter() - start
    result.memory_bytes = int(index.ntotal) * int(index.code_size)
    result.memory_note = "codes"
    radius = threshold + 1  # faiss returns distances < radius

    def unpack(lims: Any, dist: Any, ids: Any) -> list[Hits]:
        return [
            frozenset(
                zip(
                    ids[lims[i] : lims[i + 1]].tolist(),
                    dist[lims[i] : lims[i + 1]].tolist(),
                    strict=True,
                )
            )
            for i in range(len(lims) - 1)
        ]

    # faiss parallelises a range search over queries with OpenMP. A single query runs
    # on one thread anyway and extra threads only add fork/join cost, which is large
    # when other processes compete for the cores. So, to be fair to the baseline, each
    # mode uses whichever thread count a short trial finds faster.
    default_threads = faiss.omp_get_max_threads()
    trial = queries[: min(len(queries), 50)]

    def fastest(run: Callable[[], object]) -> int:
        timings = {}
        for count in sorted({1, default_threads}):
            faiss.omp_set_num_threads(count)
            start = time.perf_counter()
            run()
            timings[count] = time.perf_counter() - start
        return min(timings, key=lambda count: timings[count])

    batch_threads = fastest(lambda: index.range_search(trial, radius))
    faiss.omp_set_num_threads(batch_threads)
    start = time.perf_counter()
    truth = unpack(*index.range_search(queries, radius))
    result.batch_per_s = len(queries) / (time.perf_counter() - start)

    single_threads = fastest(lambda: [index.range_search(q[None, :], radius) for q in trial])
    faiss.omp_set_num_threads(single_threads)
    single, latencies = time_single(
        lambda i: unpack(*index.range_search(queries[i : i + 1], radius))[0], single_count
    )
    faiss.omp_set_num_threads(default_threads)
    result.notes.append(
        f"OpenMP threads used: batch {batch_threads}, single {single_threads} (the faster)"
    )

    new = np.random.default_rng(1).integers(0, 256, size=(ADDITIONS, 32), dtype=np.uint8)
    start = time.perf_counter()
    index.add(new)
    _, _, ids = index.range_search(new[-1:], 1)
    result.additions_visible_s = time.perf_counter() - start
    assert len(bank) + ADDITIONS - 1 in ids.tolist()
    return result, truth, single, latencies


def bench_cleanit(
    bank: U8, queries: U8, threshold: int, single_count: int
) -> tuple[Result, list[Hits], list[float], list[Hits]]:
    result = Result("cleanit MultiIndexHashIndex")
    start = time.perf_counter()
    MultiIndexHashIndex().warm_up()
    result.notes.append(f"numba warm-up (once per process) {time.perf_counter() - start:.1f}s")
    rss = rss_bytes()
    start = time.perf_counter()
    index = MultiIndexHashIndex.build(np.arange(len(bank), dtype=np.int64), bank)
    result.build_s = time.perf_counter() - start
    result.memory_bytes = index.memory_bytes()
    result.memory_note = f"arrays; RSS +{(rss_bytes() - rss) / 1e6:.0f} MB"
    result.notes.append(f"layout m={index.layout[0]} x {index.layout[1]} bits")

    def hits(matches: Any) -> Hits:
        return frozenset((m.entry_id, m.distance) for m in matches)

    single, latencies = time_single(
        lambda i: hits(index.search(queries[i], threshold)), single_count
    )
    start = time.perf_counter()
    batch = [hits(m) for m in index.search_batch(queries, threshold)]
    result.batch_per_s = len(queries) / (time.perf_counter() - start)

    # 10k additions in one call, then 10k one-entry calls; each must be found at once.
    rng = np.random.default_rng(2)
    new = rng.integers(0, 256, size=(2 * ADDITIONS, 32), dtype=np.uint8)
    new_ids = np.arange(len(bank), len(bank) + 2 * ADDITIONS, dtype=np.int64)
    start = time.perf_counter()
    index.add(new_ids[:ADDITIONS], new[:ADDITIONS])
    found = index.search(new[ADDITIONS - 1], 0)
    result.additions_visible_s = time.perf_counter() - start
    assert [m.entry_id for m in found] == [int(new_ids[ADDITIONS - 1])]
    start = time.perf_counter()
    for row in range(ADDITIONS, 2 * ADDITIONS):
        index.add(new_ids[row : row + 1], new[row : row + 1])
    found = index.search(new[-1], 0)
    one_by_one = time.perf_counter() - start
    assert [m.entry_id for m in found] == [int(new_ids[-1])]
    result.notes.append(f"10k one-entry add() calls visible after {one_by_one:.2f}s")
    _, delta_lat = time_single(
        lambda i: hits(index.search(queries[i], threshold)), min(200, len(queries))
    )
    delta_p50 = np.percentile(delta_lat, 50) * 1e6
    result.notes.append(f"p50 with {index.delta_size} entries in the delta {delta_p50:.0f}us")
    start = time.perf_counter()
    index.compact()
    result.notes.append(f"compact() of {len(index)} entries {time.perf_counter() - start:.1f}s")
    return result, single, latencies, batch


def bench_threatexchange(
    bank: U8, queries: U8, threshold: int, single_count: int
) -> tuple[Result, list[Hits], list[float], list[Hits]] | Result:
    result = Result("threatexchange PDQIndex 1.2.17")
    try:
        from threatexchange.signal_type.pdq.pdq_index import PDQIndex as TEIndex
    except Exception as error:  # noqa: BLE001 - any import failure means "skip"
        result.notes.append(f"not importable ({type(error).__name__}: {error}); skipped")
        return result
    te_threshold = 31  # PDQIndex.get_match_threshold(), fixed in threatexchange 1.2.17
    if threshold != te_threshold:
        result.notes.append(f"its threshold is fixed at {te_threshold}; skipped")
        return result
    result.notes.append("faiss IndexBinaryMultiHash, 16 x 16 bits, nflip=1 (exact at 31)")
    hexes = [row.tobytes().hex() for row in bank]
    query_hexes = [row.tobytes().hex() for row in queries]
    gc.collect()
    rss = rss_bytes()
    start = time.perf_counter()
    index = TEIndex(zip(hexes, range(len(hexes)), strict=True))
    result.build_s = time.perf_counter() - start
    del hexes
    gc.collect()
    result.memory_bytes = rss_bytes() - rss
    result.memory_note = "RSS increase"

    def hits(matches: Any) -> Hits:
        return frozenset((int(m.metadata), int(m.similarity_info.distance)) for m in matches)

    single, latencies = time_single(lambda i: hits(index.query(query_hexes[i])), single_count)
    start = time.perf_counter()
    raw = index.index.search_with_distance_in_result(query_hexes, threshold)
    batch = [
        frozenset((int(i), int(d)) for i, _, d in raw[h]) for h in query_hexes
    ]  # ids == rows here
    result.batch_per_s = len(queries) / (time.perf_counter() - start)
    new = np.random.default_rng(1).integers(0, 256, size=(ADDITIONS, 32), dtype=np.uint8)
    new_hexes = [row.tobytes().hex() for row in new]
    start = time.perf_counter()
    index.add_all(zip(new_hexes, range(len(bank), len(bank) + ADDITIONS), strict=True))
    visible = index.query(new_hexes[-1])
    result.additions_visible_s = time.perf_counter() - start
    assert any(int(m.metadata) == len(bank) + ADDITIONS - 1 for m in visible)
    return result, single, latencies, batch


# ------------------------------------------------------------------------ report


def speedup(baseline: float | None, value: float | None, higher_is_better: bool) -> str:
    if not baseline or not value:
        return "-"
    ratio = value / baseline if higher_is_better else baseline / value
    return f"{ratio:.1f}x"


def optional(value: object) -> str:
    return "-" if value is None else str(value)


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(n: int, threshold: int, results: list[Result]) -> None:
    base = results[0]
    print(f"\n=== bank {n:,} hashes, threshold {threshold} ===")
    header = (
        f"{'index':<32}{'build s':>9}{'memory MB':>11}{'lookups/s':>11}{'(vs flat)':>10}"
        f"{'p50 us':>10}{'(vs)':>8}{'p99 us':>10}{'(vs)':>8}{'batch q/s':>11}{'(vs)':>8}"
        f"{'recall':>8}{'exact':>7}{'rand hit':>9}{'+10k vis s':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        memory_mb = None if r.memory_bytes is None else r.memory_bytes / 1e6
        single = speedup(base.single_per_s, r.single_per_s, True)
        print(
            f"{r.name[:31]:<32}{fmt(r.build_s, '.2f'):>9}{fmt(memory_mb, '.0f'):>11}"
            f"{fmt(r.single_per_s, '.0f'):>11}{single:>10}"
            f"{fmt(r.p50_us, '.0f'):>10}{speedup(base.p50_us, r.p50_us, False):>8}"
            f"{fmt(r.p99_us, '.0f'):>10}{speedup(base.p99_us, r.p99_us, False):>8}"
            f"{fmt(r.batch_per_s, '.0f'):>11}{speedup(base.batch_per_s, r.batch_per_s, True):>8}"
            f"{fmt(r.planted_recall, '.1%'):>8}{optional(r.exact_same_as_brute_force):>7}"
            f"{optional(r.random_queries_with_matches):>9}"
            f"{fmt(r.additions_visible_s, '.3f'):>11}"
        )
    for r in results:
        extra = [r.memory_note] if r.memory_note else []
        print(f"  {r.name}: " + "; ".join(extra + r.notes))
    print(
        "  (vs) = speed-up over faiss IndexBinaryFlat in this run; exact = every result set "
        "equals faiss' exhaustive search (ids and distances); recall = planted near-duplicates "
        "found at their planted distance; rand hit = random queries with any match."
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--threshold", type=int, default=31)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument(
        "--baseline-single", type=int, default=None,
        help="time only this many single lookups for faiss/threatexchange (slow at 10M)",
    )  # fmt: skip
    parser.add_argument("--no-threatexchange", action="store_true")
    parser.add_argument("--json", action="store_true", help="write bench/results/matching.json")
    args = parser.parse_args(argv)

    environment = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "loadavg_start": os.getloadavg(),
    }
    print("environment:", environment)
    report: dict[str, Any] = {"environment": environment, "runs": []}
    # Each run records its own environment: runs of different sizes may be merged below.
    for n in args.sizes:
        bank, queries, sources, distances = make_data(n, args.queries, args.threshold, args.seed)
        single_count = min(args.queries, args.baseline_single or args.queries)
        results: list[Result] = []

        flat, truth, single, latencies = bench_faiss(bank, queries, args.threshold, single_count)
        summarise(flat, truth, single, latencies, truth, sources, distances)
        results.append(flat)
        gc.collect()

        ours, single, latencies, batch = bench_cleanit(bank, queries, args.threshold, args.queries)
        summarise(ours, truth, single, latencies, batch, sources, distances)
        results.append(ours)
        del single, latencies, batch
        gc.collect()

        if not args.no_threatexchange:
            outcome = bench_threatexchange(bank, queries, args.threshold, single_count)
            if isinstance(outcome, Result):
                results.append(outcome)
            else:
                te, single, latencies, batch = outcome
                summarise(te, truth, single, latencies, batch, sources, distances)
                results.append(te)
            del outcome
            gc.collect()

        print_table(n, args.threshold, results)
        report["runs"].append(
            {"size": n, "queries": args.queries, "threshold": args.threshold,
             "environment": environment, "results": [asdict(r) for r in results]}
        )  # fmt: skip
        sys.stdout.flush()
    environment["loadavg_end"] = os.getloadavg()
    print("load average at end:", environment["loadavg_end"])
    if args.json:
        out = Path(__file__).resolve().parent / "results" / "matching.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        # Separate runs (say 1M, then 10M) accumulate; a rerun replaces its own entry.
        if out.exists():
            previous = json.loads(out.read_text()).get("runs", [])
            fresh = {(r["size"], r["queries"], r["threshold"]) for r in report["runs"]}
            kept = [r for r in previous if (r["size"], r["queries"], r["threshold"]) not in fresh]
            report["runs"] = sorted(kept + report["runs"], key=lambda r: r["size"])
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
