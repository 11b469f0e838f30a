"""MinHash LSH text index: near-duplicates found, unrelated texts not, LSH ⊆ brute force."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cleanit.adapters.matching.text_index import (
    BruteForceTextIndex,
    LSHTextIndex,
    TextIndex,
    TextMatch,
    candidate_probability,
    signatures_many,
)
from cleanit.domain.text_signals import (
    NUM_PERM,
    format_signature,
    jaccard,
    minhash,
    normalise_text,
    parse_signature,
    shingles,
    text_signature,
)

_SYLLABLES = ["ka", "lo", "mi", "ne", "tu", "ra", "vo", "si", "pe", "du", "fa", "go", "bre"]


def vocabulary(rng: random.Random, size: int = 3000) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def invented_text(rng: random.Random, vocab: list[str], words: int = 120) -> str:
    out = [rng.choice(vocab) for _ in range(words)]
    return " ".join(w + ("." if i % 10 == 9 else "") for i, w in enumerate(out))


def edit(rng: random.Random, vocab: list[str], text: str, rate: float) -> str:
    """Apply ``rate * words`` random edits: substitutions, insertions, deletions, swaps."""
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
    return " ".join(words)


def cosmetic(text: str) -> str:
    """Change only case, punctuation, spacing and add a URL: nothing that matching sees."""
    return "  " + text.upper().replace(" ", " ,  ") + "!!! https://example.org/copy"


@pytest.fixture(scope="module")
def corpus() -> tuple[list[str], list[str], np.ndarray]:
    rng = random.Random(20260101)
    vocab = vocabulary(rng)
    texts = [invented_text(rng, vocab) for _ in range(3000)]
    sigs = signatures_many(shingles(normalise_text(t)) for t in texts)
    return vocab, texts, sigs


@pytest.fixture(params=["lsh", "brute"])
def index(
    request: pytest.FixtureRequest, corpus: tuple[list[str], list[str], np.ndarray]
) -> TextIndex:
    _, _, sigs = corpus
    idx: TextIndex = LSHTextIndex() if request.param == "lsh" else BruteForceTextIndex()
    idx.add(np.arange(len(sigs)), sigs)
    assert isinstance(idx, TextIndex)
    return idx


def test_numpy_signatures_equal_the_domain_reference() -> None:
    rng = random.Random(3)
    vocab = vocabulary(rng, 200)
    sets = [shingles(normalise_text(invented_text(rng, vocab, n))) for n in (1, 2, 5, 300)]
    fast = signatures_many(sets)
    assert [tuple(int(v) for v in row) for row in fast] == [minhash(s) for s in sets]
    assert signatures_many([]).shape == (0, NUM_PERM)
    with pytest.raises(ValueError, match="no words"):
        signatures_many([frozenset()])


def test_identical_and_cosmetically_changed_text_match_with_similarity_one(
    index: TextIndex, corpus: tuple[list[str], list[str], np.ndarray]
) -> None:
    _, texts, _ = corpus
    for doc in (0, 1234, 2999):
        for variant in (texts[doc], cosmetic(texts[doc])):
            hits = index.query(text_signature(variant))
            assert hits[0] == TextMatch(doc, 1.0)
            assert len(hits) == 1


@pytest.mark.parametrize("rate", [0.05, 0.1, 0.15])
def test_edited_copies_are_found(
    index: TextIndex, corpus: tuple[list[str], list[str], np.ndarray], rate: float
) -> None:
    vocab, texts, _ = corpus
    rng = random.Random(int(rate * 1000))
    found = 0
    docs = rng.sample(range(len(texts)), 40)
    for doc in docs:
        copy = cosmetic(edit(rng, vocab, texts[doc], rate))
        hits = index.query(text_signature(copy), threshold=0.5)
        assert all(h.entry_id == doc for h in hits)  # nothing unrelated
        found += bool(hits)
    # Word-bigram Jaccard after k% mixed edits is ~(1 - 1.5k) / (1 + 1.5k) on average.
    assert found >= {0.05: 40, 0.1: 39, 0.15: 34}[rate]


def test_unrelated_texts_match_nothing(
    index: TextIndex, corpus: tuple[list[str], list[str], np.ndarray]
) -> None:
    vocab, _, _ = corpus
    rng = random.Random(99)
    for _ in range(50):
        assert index.query(text_signature(invented_text(rng, vocab)), threshold=0.3) == []


def test_lsh_is_a_subset_of_brute_force_and_nearly_equal(
    corpus: tuple[list[str], list[str], np.ndarray],
) -> None:
    vocab, texts, sigs = corpus
    lsh, brute = LSHTextIndex(), BruteForceTextIndex()
    lsh.add(np.arange(len(sigs)), sigs)
    brute.add(np.arange(len(sigs)), sigs)
    rng = random.Random(5)
    expected = got = 0
    for doc in rng.sample(range(len(texts)), 60):
        sig = text_signature(edit(rng, vocab, texts[doc], rng.uniform(0.0, 0.3)))
        lsh_hits, brute_hits = lsh.query(sig, 0.6), brute.query(sig, 0.6)
        assert set(lsh_hits) <= set(brute_hits)
        expected += len(brute_hits)
        got += len(lsh_hits)
    assert expected >= 30
    assert got >= 0.95 * expected


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    keep=st.floats(0.3, 1.0),
    threshold=st.sampled_from([0.5, 0.6, 0.7, 0.9]),
)
def test_lsh_agrees_with_brute_force_on_arbitrary_signature_sets(
    seed: int, keep: float, threshold: float
) -> None:
    rng = random.Random(seed)
    universe = [f"t{i}" for i in range(300)]
    base = set(rng.sample(universe, 80))
    sets = [base] + [
        {s for s in base if rng.random() < keep} | set(rng.sample(universe, rng.randint(1, 30)))
        for _ in range(30)
    ]
    sigs = signatures_many(sets)
    lsh, brute = LSHTextIndex(bands=16, rows=8), BruteForceTextIndex()
    lsh.add(np.arange(len(sets)) * 7, sigs)
    brute.add(np.arange(len(sets)) * 7, sigs)
    lsh_hits, brute_hits = lsh.query(sigs[0], threshold), brute.query(sigs[0], threshold)
    assert set(lsh_hits) <= set(brute_hits)
    assert lsh_hits[0] == TextMatch(0, 1.0)
    assert brute_hits == sorted(brute_hits, key=lambda m: (-m.similarity, m.entry_id))
    assert lsh_hits == sorted(lsh_hits, key=lambda m: (-m.similarity, m.entry_id))
    # every brute-force hit's estimate is within noise of the exact Jaccard
    for hit in brute_hits:
        assert jaccard(frozenset(sets[hit.entry_id // 7]), frozenset(base)) > threshold - 0.25


def test_add_replaces_remove_deletes_and_tail_merging_is_invisible() -> None:
    rng = random.Random(11)
    vocab = vocabulary(rng, 500)
    texts = [invented_text(rng, vocab, 60) for _ in range(6000)]
    sigs = signatures_many(shingles(normalise_text(t)) for t in texts)
    lsh = LSHTextIndex()
    for start in range(0, 6000, 500):  # many small batches: exercises tail + merges
        lsh.add(np.arange(start, start + 500), sigs[start : start + 500])
    assert len(lsh) == 6000
    for doc in (0, 4999, 5999):
        assert lsh.query(sigs[doc])[0] == TextMatch(doc, 1.0)
    lsh.add([0], sigs[1:2])  # id 0 now carries doc 1's signature
    assert {m.entry_id for m in lsh.query(sigs[1])} == {0, 1}
    assert lsh.query(sigs[0]) == []
    lsh.remove([1, 123456])
    assert [m.entry_id for m in lsh.query(sigs[1])] == [0]
    lsh.remove(np.arange(0, 5000))  # triggers compaction
    assert len(lsh) == 1000
    assert lsh.query(sigs[5500])[0] == TextMatch(5500, 1.0)
    assert lsh.query(sigs[10]) == []
    assert lsh.memory_bytes() > 1000 * NUM_PERM * 4


def test_signatures_parsed_from_hex_query_like_computed_ones(
    corpus: tuple[list[str], list[str], np.ndarray],
) -> None:
    _, texts, sigs = corpus
    lsh = LSHTextIndex()
    lsh.add([42], sigs[42])
    stored = format_signature(text_signature(texts[42]))
    assert lsh.query(parse_signature(stored)) == [TextMatch(42, 1.0)]


def test_bad_arguments_are_rejected() -> None:
    lsh = LSHTextIndex()
    with pytest.raises(ValueError):
        LSHTextIndex(bands=40, rows=4)
    with pytest.raises(ValueError):
        lsh.add([1, 2], np.zeros((1, NUM_PERM), dtype=np.uint32))
    with pytest.raises(ValueError):
        lsh.add([1, 1], np.zeros((2, NUM_PERM), dtype=np.uint32))
    with pytest.raises(ValueError):
        lsh.add([1], np.zeros((1, 64), dtype=np.uint32))
    with pytest.raises(ValueError):
        lsh.query([0] * 5)
    with pytest.raises(ValueError):
        lsh.query([0] * NUM_PERM, threshold=0.0)
    assert lsh.query([0] * NUM_PERM) == []


def test_banding_curve_is_steep_around_the_default_threshold() -> None:
    assert candidate_probability(0.6, 32, 4) > 0.98
    assert candidate_probability(0.2, 32, 4) < 0.05
