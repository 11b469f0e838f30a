"""Text signals: normalisation, word shingles and MinHash signatures for near-duplicate text.

A *text MinHash signature* summarises a text's set of word shingles so that two texts'
Jaccard similarity (``|A ∩ B| / |A ∪ B|``) can be estimated from the signatures alone,
without sharing the texts. Pure rules only (standard library); the fast numpy
implementation of the same hash family and the LSH index live in
``cleanit.adapters.matching.text_index`` and must produce identical signatures.

Pipeline (every step deterministic and versioned by :data:`MINHASH_VERSION`):

1. :func:`normalise_text` -- Unicode NFKC, casefold, NFKC again; optionally drop URLs
   (default on) and digits (default off); every character that is not a letter, digit
   or combining mark becomes a space; whitespace runs collapse to one space.
2. :func:`shingles` -- the set of word *k*-grams (default ``k = 2``, words joined by one
   space). A text with fewer than *k* words yields its words joined as one shingle; an
   empty text yields the empty set.
3. :func:`minhash` -- for each of :data:`NUM_PERM` (128) hash functions, the minimum
   hash over the shingles. The hash family:

   * base hash ``x`` of a shingle: BLAKE2b of its UTF-8 bytes, 8-byte digest, keyed with
     :data:`HASH_KEY`, read as a big-endian unsigned 64-bit integer;
   * function ``i``: ``h_i(x) = ((a_i * x + b_i) mod 2**64) >> 32`` (multiply-shift), a
     32-bit value, where ``a_i`` (forced odd) and ``b_i`` are the big-endian 64-bit
     BLAKE2b-8 digests of ``b"a:%d" % i`` and ``b"b:%d" % i`` keyed with :data:`HASH_KEY`.

The serialised form (:func:`format_signature` / :func:`parse_signature`) is the 128 values
as 8-digit big-endian hex, concatenated: 1024 lowercase hex characters.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Sequence

from cleanit.domain.errors import InvalidInput

__all__ = [
    "DEFAULT_SHINGLE_SIZE",
    "HASH_KEY",
    "MINHASH_VERSION",
    "NUM_PERM",
    "SIGNAL_TYPE",
    "SIGNATURE_HEX_LENGTH",
    "TEXT_MATCH_THRESHOLD",
    "base_hash",
    "distance_of_agreement",
    "format_signature",
    "hash_coefficients",
    "jaccard",
    "jaccard_estimate",
    "min_similarity_for",
    "minhash",
    "normalise_text",
    "parse_signature",
    "shingles",
    "signature_distance",
    "text_signature",
]

#: Name of the signal type under which these signatures are stored and exchanged.
SIGNAL_TYPE = "text_minhash"
#: Bumped if anything in the pipeline changes; signatures of different versions never mix.
MINHASH_VERSION = 1
NUM_PERM = 128
DEFAULT_SHINGLE_SIZE = 2
#: Default (estimated) Jaccard similarity from which two texts are near-duplicates.
TEXT_MATCH_THRESHOLD = 0.6
HASH_KEY = b"cleanit-text-minhash-v1"
SIGNATURE_HEX_LENGTH = NUM_PERM * 8

_MASK64 = (1 << 64) - 1
_MAX32 = (1 << 32) - 1
_URL = re.compile(r"(?:[a-z][a-z0-9+.-]*://|www\.)\S+")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def normalise_text(text: str, *, drop_urls: bool = True, drop_digits: bool = False) -> str:
    """The matching form of ``text`` (see the module docstring, step 1)."""
    if not isinstance(text, str):
        raise InvalidInput(f"text must be a string, not {type(text).__name__}", field="text")
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    if drop_urls:
        folded = _URL.sub(" ", folded)
    chars = []
    for ch in folded:
        category = unicodedata.category(ch)
        if category[0] == "N" and drop_digits:
            chars.append(" ")
        elif category[0] in "LNM":
            chars.append(ch)
        else:
            chars.append(" ")
    return " ".join("".join(chars).split())


def shingles(normalised: str, k: int = DEFAULT_SHINGLE_SIZE) -> frozenset[str]:
    """The set of word ``k``-grams of an already normalised text."""
    if k < 1:
        raise InvalidInput("shingle size must be at least 1", field="k")
    words = normalised.split()
    if not words:
        return frozenset()
    if len(words) < k:
        return frozenset({" ".join(words)})
    return frozenset(" ".join(words[i : i + k]) for i in range(len(words) - k + 1))


def base_hash(shingle: str) -> int:
    """The 64-bit base hash of one shingle (keyed BLAKE2b, 8-byte digest, big-endian)."""
    digest = hashlib.blake2b(shingle.encode("utf-8"), digest_size=8, key=HASH_KEY).digest()
    return int.from_bytes(digest, "big")


def hash_coefficients() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The fixed ``(a_i, b_i)`` multiply-shift coefficients, ``NUM_PERM`` of each."""
    a = tuple(base_hash(f"a:{i}") | 1 for i in range(NUM_PERM))
    b = tuple(base_hash(f"b:{i}") for i in range(NUM_PERM))
    return a, b


_A, _B = hash_coefficients()


def minhash(shingle_set: Iterable[str]) -> tuple[int, ...]:
    """The MinHash signature (``NUM_PERM`` 32-bit values) of a non-empty shingle set."""
    xs = [base_hash(s) for s in set(shingle_set)]
    if not xs:
        raise InvalidInput("the text has no words to fingerprint", field="text")
    return tuple(
        min(((a * x + b) & _MASK64) >> 32 for x in xs) for a, b in zip(_A, _B, strict=True)
    )


def text_signature(
    text: str,
    *,
    k: int = DEFAULT_SHINGLE_SIZE,
    drop_urls: bool = True,
    drop_digits: bool = False,
) -> tuple[int, ...]:
    """Normalise, shingle and MinHash ``text`` in one go."""
    normalised = normalise_text(text, drop_urls=drop_urls, drop_digits=drop_digits)
    return minhash(shingles(normalised, k))


def jaccard(a: frozenset[str] | set[str], b: frozenset[str] | set[str]) -> float:
    """Exact Jaccard similarity of two shingle sets (0.0 when both are empty)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def jaccard_estimate(sig_a: Sequence[int], sig_b: Sequence[int]) -> float:
    """Estimated Jaccard similarity: the fraction of positions where the signatures agree.

    Standard error is ``sqrt(J * (1 - J) / NUM_PERM)``, about 0.043 at ``J = 0.6``.
    """
    if len(sig_a) != NUM_PERM or len(sig_b) != NUM_PERM:
        raise InvalidInput(f"a text signature has {NUM_PERM} values", field="signature")
    return sum(1 for x, y in zip(sig_a, sig_b, strict=True) if x == y) / NUM_PERM


def distance_of_agreement(agreeing: int) -> int:
    """Dissimilarity in whole percent for ``agreeing`` equal positions out of NUM_PERM.

    Banks store text thresholds as this distance (40 = estimated similarity 0.6), so that
    every similarity signal type compares "distance <= threshold" in integers.
    """
    if not 0 <= agreeing <= NUM_PERM:
        raise InvalidInput(f"between 0 and {NUM_PERM} positions agree", field="signature")
    return (100 * (NUM_PERM - agreeing) + NUM_PERM // 2) // NUM_PERM


def signature_distance(sig_a: Sequence[int], sig_b: Sequence[int]) -> int:
    """Dissimilarity of two signatures in whole percent (0 = the same shingles)."""
    jaccard_estimate(sig_a, sig_b)  # checks the lengths
    return distance_of_agreement(sum(1 for x, y in zip(sig_a, sig_b, strict=True) if x == y))


def min_similarity_for(threshold: int) -> float:
    """The smallest similarity (agreeing positions / NUM_PERM) whose distance is within
    ``threshold``: what to ask an index for so that nothing within the threshold is lost."""
    for agreeing in range(NUM_PERM + 1):
        if distance_of_agreement(agreeing) <= threshold:
            return agreeing / NUM_PERM
    raise InvalidInput("a text threshold is between 0 and 100", field="thresholds")


def format_signature(signature: Sequence[int]) -> str:
    """Serialise a signature as 1024 lowercase hex characters."""
    if len(signature) != NUM_PERM:
        raise InvalidInput(f"a text signature has {NUM_PERM} values", field="signature")
    if any(not isinstance(v, int) or v < 0 or v > _MAX32 for v in signature):
        raise InvalidInput("text signature values are 32-bit unsigned", field="signature")
    return "".join(f"{v:08x}" for v in signature)


def parse_signature(value: object, *, field: str = "signature") -> tuple[int, ...]:
    """Parse a serialised signature; raises :class:`InvalidInput` naming the problem."""
    if not isinstance(value, str):
        raise InvalidInput(
            f"a text signature must be text, not {type(value).__name__}", field=field
        )
    if len(value) != SIGNATURE_HEX_LENGTH:
        raise InvalidInput(
            f"a text signature is {SIGNATURE_HEX_LENGTH} hex characters, not {len(value)}",
            field=field,
        )
    for position, ch in enumerate(value):
        if ch not in _HEX_DIGITS:
            raise InvalidInput(
                f"a text signature is hexadecimal: {ch!r} at position {position} is not",
                field=field,
            )
    return tuple(int(value[i : i + 8], 16) for i in range(0, SIGNATURE_HEX_LENGTH, 8))
