"""Benchmark: MinHash LSH text index vs linear scans, on generated (invented-word) text.

Run:  python bench/text_matching.py [--docs 20000 | --full] [--queries 50] [--json]

In one process: a corpus of documents made of invented words (never real content; 80-200
words each, from a 20k-word invented vocabulary), their word-bigram MinHash signatures,
an :class:`LSHTextIndex` (32 bands x 4 rows) and a :class:`BruteForceTextIndex`. Queries
are edited copies of random corpus documents at several edit rates (mixed substitutions,
insertions, deletions, adjacent swaps, plus case/punctuation noise), and fresh unrelated
documents.

Ground truth is the *exact* Jaccard similarity of word-bigram sets against every
document (a Python linear scan). Reported per edit rate:

* ``recall``: share of ground-truth pairs (exact Jaccard >= threshold) the LSH returns;
* ``fp_share``: share of LSH hits whose exact Jaccard is below the threshold (MinHash
  estimation noise); ``fp_rate``: those as a share of all non-matching documents;
* ``lsh_vs_brute``: share of the brute-force MinHash scan's hits the LSH also returns (the
  loss due to banding alone);
* latency p50/p99 of the LSH query, the numpy MinHash linear scan and the Python exact
  Jaccard linear scan, with ratios to the LSH measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cleanit.adapters.matching.text_index import (
    BruteForceTextIndex,
    LSHTextIndex,
    signatures_many,
)
from cleanit.domain.text_signals import normalise_text, shingles

SYLLABLES = [
    "ka", "lo", "mi", "ne", "tu", "ra", "vo", "si", "pe", "du", "fa", "go", "bre", "sha",
    "tor", "lin", "qui", "zem", "ap", "ul",
]  # fmt: skip


def vocabulary(rng: random.Random, size: int) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def document(rng: random.Random, vocab: list[str], weights: list[float]) -> str:
    words = rng.choices(vocab, weights=weights, k=rng.randint(80, 200))
    return " ".join(w + ("." if i % 11 == 10 else "") for i, w in enumerate(words))


def edit(rng: random.Random, vocab: list[str], text: str, rate: float) -> str:
    words = text.split()
    for _ in range(round(rate * len(words))):
        kind = rng.choice(["sub", "ins", "del", "swap"])
        i = rng.randrange(len(words))
        if kind == "sub":
            words[i] = rng.choice(vocab)
        elif kind == "ins":
            words.insert(i, rng.choice(vocab))
        elif kind == "del" and len(words) > 1:
            del words[i]
        elif kind == "swap" and i + 1 < len(words):
            words[i], words[i + 1] = words[i + 1], words[i]
    return "  ".join(words).upper() + " !! https://example.org/copy"


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) if values else float("nan")


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--full", action="store_true", help="use 100k documents")
    parser.add_argument("--queries", type=int, default=50, help="queries per edit rate")
    parser.add_argument("--rates", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.15, 0.2, 0.3])
    parser.add_argument("--threshold", type=float, default=0.6)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    n_docs = 100_000 if args.full else args.docs
    rng = random.Random(args.seed)
    vocab = vocabulary(rng, 20_000)
    weights = [1.0 / (rank + 1) for rank in range(len(vocab))]  # Zipf-like word use
    rng.shuffle(vocab)

    texts = [document(rng, vocab, weights) for _ in range(n_docs)]
    sets = [shingles(normalise_text(t)) for t in texts]
    sigs, sign_s = timed(signatures_many, sets)
    ids = np.arange(n_docs, dtype=np.int64)

    lsh = LSHTextIndex()
    _, lsh_build_s = timed(lsh.add, ids, sigs)
    brute = BruteForceTextIndex()
    _, brute_build_s = timed(brute.add, ids, sigs)

    def exact_scan(q: frozenset[str]) -> list[tuple[int, float]]:
        lq = len(q)
        out = []
        for doc, s in enumerate(sets):
            inter = len(q & s)
            if inter:
                sim = inter / (lq + len(s) - inter)
                if sim >= args.threshold:
                    out.append((doc, sim))
        return out

    report: dict[str, Any] = {
        "docs": n_docs,
        "threshold": args.threshold,
        "bands_x_rows": f"{lsh.bands}x{lsh.rows}",
        "python": platform.python_version(),
        "signing_docs_per_s": round(n_docs / sign_s),
        "lsh_build_s": round(lsh_build_s, 3),
        "lsh_memory_mb": round(lsh.memory_bytes() / 1e6, 1),
        "brute_build_s": round(brute_build_s, 3),
        "brute_memory_mb": round(brute.memory_bytes() / 1e6, 1),
        "rates": [],
    }
    all_lsh: list[float] = []
    all_brute: list[float] = []
    all_exact: list[float] = []
    for rate in [*args.rates, None]:  # None: fresh unrelated documents
        truth_pairs = lsh_pairs = true_hits = false_hits = brute_pairs = shared = 0
        lat_lsh: list[float] = []
        lat_brute: list[float] = []
        lat_exact: list[float] = []
        source_sims: list[float] = []
        for _ in range(args.queries):
            if rate is None:
                text = document(rng, vocab, weights)
            else:
                source = rng.randrange(n_docs)
                text = edit(rng, vocab, texts[source], rate)
            qset = shingles(normalise_text(text))
            if rate is not None:
                source_sims.append(len(qset & sets[source]) / len(qset | sets[source]))
            qsig = signatures_many([qset])[0]
            lsh_hits, t_lsh = timed(lsh.query, qsig, args.threshold)
            brute_hits, t_brute = timed(brute.query, qsig, args.threshold)
            truth, t_exact = timed(exact_scan, qset)
            lat_lsh.append(t_lsh)
            lat_brute.append(t_brute)
            lat_exact.append(t_exact)
            truth_ids = {d for d, _ in truth}
            lsh_ids = {m.entry_id for m in lsh_hits}
            brute_ids = {m.entry_id for m in brute_hits}
            assert lsh_ids <= brute_ids
            truth_pairs += len(truth_ids)
            lsh_pairs += len(lsh_ids)
            true_hits += len(lsh_ids & truth_ids)
            false_hits += len(lsh_ids - truth_ids)
            brute_pairs += len(brute_ids)
            shared += len(lsh_ids & brute_ids)
        all_lsh += lat_lsh
        all_brute += lat_brute
        all_exact += lat_exact
        negatives = args.queries * n_docs - truth_pairs
        report["rates"].append(
            {
                "edit_rate": "unrelated" if rate is None else rate,
                "queries": args.queries,
                "mean_jaccard_to_source": round(float(np.mean(source_sims)), 3)
                if source_sims
                else None,
                "truth_pairs": truth_pairs,
                "lsh_pairs": lsh_pairs,
                "recall": round(true_hits / truth_pairs, 4) if truth_pairs else None,
                "fp_share": round(false_hits / lsh_pairs, 4) if lsh_pairs else 0.0,
                "fp_rate": false_hits / negatives if negatives else 0.0,
                "lsh_vs_brute": round(shared / brute_pairs, 4) if brute_pairs else None,
                "lsh_p50_ms": round(pct(lat_lsh, 50) * 1e3, 3),
                "lsh_p99_ms": round(pct(lat_lsh, 99) * 1e3, 3),
            }
        )
    report["latency_ms"] = {
        name: {"p50": round(pct(lat, 50) * 1e3, 3), "p99": round(pct(lat, 99) * 1e3, 3)}
        for name, lat in (
            ("lsh", all_lsh),
            ("minhash_linear_scan", all_brute),
            ("exact_jaccard_linear_scan", all_exact),
        )
    }
    p50 = pct(all_lsh, 50)
    report["speedup_p50"] = {
        "minhash_linear_scan": round(pct(all_brute, 50) / p50, 1),
        "exact_jaccard_linear_scan": round(pct(all_exact, 50) / p50, 1),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for key, value in report.items():
        if key != "rates":
            print(f"{key}: {value}")
    print("edit_rate  J(src)  truth  lsh  recall  fp_share  fp_rate   lsh/brute  p50ms  p99ms")
    for row in report["rates"]:
        print(
            f"{row['edit_rate']!s:>9} {row['mean_jaccard_to_source']!s:>6} "
            f"{row['truth_pairs']:6d} {row['lsh_pairs']:4d} "
            f"{row['recall']!s:>7} {row['fp_share']:8.4f} {row['fp_rate']:.2e} "
            f"{row['lsh_vs_brute']!s:>9} {row['lsh_p50_ms']:6.3f} {row['lsh_p99_ms']:6.3f}"
        )


if __name__ == "__main__":
    main()
