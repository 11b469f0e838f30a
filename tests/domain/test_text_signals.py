"""Text normalisation, shingles, MinHash signatures and their serialised form."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cleanit.domain.errors import InvalidInput
from cleanit.domain.text_signals import (
    NUM_PERM,
    SIGNATURE_HEX_LENGTH,
    format_signature,
    jaccard,
    jaccard_estimate,
    minhash,
    normalise_text,
    parse_signature,
    shingles,
    text_signature,
)

_SYLLABLES = ["ka", "lo", "mi", "ne", "tu", "ra", "vo", "si", "pe", "du", "fa", "go"]


def invented_text(rng: random.Random, words: int) -> str:
    """A sentence-like string of invented words (benign filler)."""
    out = []
    for i in range(words):
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 3)))
        out.append(word + ("." if i % 12 == 11 else ""))
    return " ".join(out)


def test_normalisation_folds_width_case_punctuation_whitespace_and_urls() -> None:
    text = "Ｈｅｌｌｏ,   WORLD!!\tStraße — visit https://example.org/page?x=1 or www.example.org"
    assert normalise_text(text) == "hello world strasse visit or"


def test_digits_are_kept_unless_asked_and_urls_kept_when_asked() -> None:
    assert normalise_text("Room 42, floor 7") == "room 42 floor 7"
    assert normalise_text("Room 42, floor 7", drop_digits=True) == "room floor"
    assert normalise_text("see http://example.org", drop_urls=False) == "see http example org"


def test_combining_marks_survive_normalisation() -> None:
    assert normalise_text("Cafe\u0301") == "café"


def test_shingles_are_word_bigrams_with_short_texts_as_one_shingle() -> None:
    assert shingles("a b c d") == {"a b", "b c", "c d"}
    assert shingles("a b c d", 3) == {"a b c", "b c d"}
    assert shingles("solo") == {"solo"}
    assert shingles("") == frozenset()
    with pytest.raises(InvalidInput):
        shingles("a b", 0)


def test_signature_is_deterministic_and_fixed() -> None:
    # Pinned values: a change here means stored signatures no longer compare.
    sig = text_signature("The quick brown fox jumps over the lazy dog.")
    assert len(sig) == NUM_PERM
    assert sig == text_signature("the QUICK brown fox, jumps over the lazy dog")
    assert format_signature(sig)[:32] == "194515d10bf8283d04faeb712422fa75"
    assert sig == minhash(shingles("the quick brown fox jumps over the lazy dog"))
    assert all(0 <= v < 2**32 for v in sig)


def test_empty_text_cannot_be_fingerprinted() -> None:
    with pytest.raises(InvalidInput, match="no words"):
        text_signature(" ,.;  https://example.org ")


def test_identical_texts_estimate_one_and_unrelated_near_zero() -> None:
    rng = random.Random(7)
    a, b = invented_text(rng, 120), invented_text(rng, 120)
    assert jaccard_estimate(text_signature(a), text_signature(a)) == 1.0
    assert jaccard_estimate(text_signature(a), text_signature(b)) < 0.1


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), keep=st.floats(0.2, 0.9))
def test_estimate_tracks_exact_jaccard(seed: int, keep: float) -> None:
    rng = random.Random(seed)
    universe = [f"s{i}" for i in range(400)]
    a = set(rng.sample(universe, 200))
    b = {s for s in a if rng.random() < keep} | set(rng.sample(universe, 60))
    exact = jaccard(frozenset(a), frozenset(b))
    estimate = jaccard_estimate(minhash(a), minhash(b))
    # 128 permutations: standard error <= 0.045; allow ~4.5 sigma.
    assert abs(estimate - exact) < 0.2


def test_exact_jaccard() -> None:
    assert jaccard(frozenset({"a", "b"}), frozenset({"b", "c"})) == pytest.approx(1 / 3)
    assert jaccard(frozenset(), frozenset()) == 0.0


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1), min_size=NUM_PERM, max_size=NUM_PERM))
def test_serialisation_round_trips(values: list[int]) -> None:
    text = format_signature(values)
    assert len(text) == SIGNATURE_HEX_LENGTH
    assert text == text.lower()
    assert parse_signature(text) == tuple(values)
    assert parse_signature(text.upper()) == tuple(values)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "must be text"),
        (b"00" * 512, "must be text"),
        ("0" * 1023, "not 1023"),
        ("0" * 1025, "not 1025"),
        ("", "not 0"),
        ("0" * 1000 + "g" + "0" * 23, "'g' at position 1000"),
        ("0x" + "0" * 1022, "'x' at position 1"),
        (" " + "0" * 1023, "position 0"),
    ],
)
def test_malformed_signature_values_are_rejected(value: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        parse_signature(value, field="signal_value")
    assert caught.value.field == "signal_value"


def test_formatting_rejects_wrong_length_or_out_of_range_values() -> None:
    with pytest.raises(InvalidInput):
        format_signature([0] * (NUM_PERM - 1))
    with pytest.raises(InvalidInput):
        format_signature([2**32] + [0] * (NUM_PERM - 1))
    with pytest.raises(InvalidInput):
        format_signature([-1] + [0] * (NUM_PERM - 1))
    with pytest.raises(InvalidInput):
        jaccard_estimate([0] * 3, [0] * 3)
