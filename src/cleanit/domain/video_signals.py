"""vPDQ: Meta's video similarity signal, and the rules for writing and comparing it.

A vPDQ hash is a list of *frame features*: the PDQ hash of one sampled frame of a video
(by default one frame per second), with the frame's PDQ quality (0-100), its timestamp in
seconds and, when known, its frame number. Two videos match when enough of the distinct,
good-quality frames of each have a near twin (PDQ distance <= 31) in the other.

**Format.** What python-threatexchange's ``VPDQSignal`` -- and so HMA -- stores and
exchanges (``vpdq_to_json``): a JSON list with one string per frame,
``"<64 hex digits>,<quality>,<timestamp>"``, the timestamp written with Python's
``format(t, ".3")`` -- three *significant* digits, so 12.0 s is ``12.0`` and 100.0 s is
``1e+02``. Frame numbers are not part of it. :func:`serialise_vpdq` writes exactly that,
byte for byte; :func:`parse_vpdq` reads it, and also the text that Meta's
``vpdq-hash-video`` tool writes (one ``frame,quality,hex,timestamp`` line per frame).

**Matching** (:func:`match_vpdq`), as python-threatexchange's ``match_VPDQ_hash_brute``:
each side is de-duplicated by PDQ hash (first occurrence kept), then frames of quality
under 50 are dropped; the query percentage is the share of the query's remaining frames
with a frame of the other side within distance 31, and the compared percentage the
converse. ``VPDQSignal.compare_hash`` calls it a match when the query percentage is at
least 80 and the compared percentage at least 0 (:meth:`VpdqMatch.is_match`). Unlike the
reference, a side with no frame left after filtering gives 0 % instead of dividing by zero.

Pure rules only (standard library). Decoding videos is an adapter's job
(``cleanit.adapters.video``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from cleanit.domain.errors import InvalidInput

__all__ = [
    "MAX_VPDQ_FRAMES",
    "VPDQ_COMPARED_MATCH_THRESHOLD_PERCENT",
    "VPDQ_DISTANCE_THRESHOLD",
    "VPDQ_QUALITY_THRESHOLD",
    "VPDQ_QUERY_MATCH_THRESHOLD_PERCENT",
    "VPDQ_SIGNAL_NAME",
    "VpdqFeature",
    "VpdqMatch",
    "match_vpdq",
    "matchable_frames",
    "parse_vpdq",
    "serialise_vpdq",
    "vpdq_distance",
]

#: python-threatexchange's name for the signal type (``VPDQSignal.get_name()``).
VPDQ_SIGNAL_NAME: Final = "vpdq"
#: Frames of lower PDQ quality are ignored when matching (``VPDQ_QUALITY_THRESHOLD``).
VPDQ_QUALITY_THRESHOLD: Final = 50
#: Two frames match within this PDQ distance (``VPDQ_DISTANCE_THRESHOLD``).
VPDQ_DISTANCE_THRESHOLD: Final = 31
#: Share of the query's frames that must match (``VPDQ_QUERY_MATCH_THRESHOLD_PERCENT``).
VPDQ_QUERY_MATCH_THRESHOLD_PERCENT: Final = 80.0
#: Share of the compared video's frames that must match
#: (``VPDQ_INDEX_MATCH_THRESHOLD_PERCENT``: none, by default).
VPDQ_COMPARED_MATCH_THRESHOLD_PERCENT: Final = 0.0
#: Most frames a parsed vPDQ hash may have: an hour at one frame per second is 3,600;
#: this allows every frame of an hour at 25 fps, and bounds the work a hash can cause.
MAX_VPDQ_FRAMES: Final = 100_000

_PDQ_HEX_LENGTH = 64
_TIMESTAMP_FORMAT = ".3"  # python-threatexchange's f"{timestamp:.{3}}": 3 significant digits
# Longest line a frame may take: 64 hex + quality + a long timestamp + frame number.
_MAX_TEXT = MAX_VPDQ_FRAMES * 128
_HEX = re.compile(r"[0-9a-fA-F]{64}")
_QUALITY = re.compile(r"[0-9]{1,3}")
_FRAME_NUMBER = re.compile(r"[0-9]{1,10}")
# Decimal or scientific, as Python and C++ write them; no sign, nan, inf or underscores.
_TIMESTAMP = re.compile(r"[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?")
_FORMAT_HELP = (
    'a vPDQ hash is a JSON list of "PDQ hex,quality,timestamp" strings, one per frame '
    "(as python-threatexchange and HMA write it), or vpdq-hash-video output "
    "(one frame,quality,PDQ hex,timestamp line per frame)"
)


def _feature_problem(
    pdq_hex: object, quality: object, timestamp: object, frame_number: object
) -> str | None:
    """What is wrong with these values for a frame feature, or None if nothing is."""
    if not isinstance(pdq_hex, str) or not _HEX.fullmatch(pdq_hex):
        return f"the PDQ hash must be {_PDQ_HEX_LENGTH} hexadecimal digits; got {pdq_hex!r}"
    if isinstance(quality, bool) or not isinstance(quality, int) or not 0 <= quality <= 100:
        return f"the quality must be a whole number from 0 to 100; got {quality!r}"
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
        return f"the timestamp must be a number of seconds; got {timestamp!r}"
    if not math.isfinite(timestamp) or timestamp < 0:
        return f"the timestamp must be a finite number of seconds >= 0; got {timestamp!r}"
    if frame_number is not None and (
        isinstance(frame_number, bool) or not isinstance(frame_number, int) or frame_number < 0
    ):
        return f"the frame number must be a whole number >= 0; got {frame_number!r}"
    return None


@dataclass(frozen=True, slots=True)
class VpdqFeature:
    """One hashed frame: its PDQ hash (lower-case hex), PDQ quality, time and number.

    ``frame_number`` is the frame's index among the decoded frames of the video (0 for
    the first), or None when unknown -- the exchanged format does not carry it.
    Invalid values raise InvalidInput (field ``hash``).
    """

    pdq_hex: str
    quality: int
    timestamp: float
    frame_number: int | None = None

    def __post_init__(self) -> None:
        problem = _feature_problem(self.pdq_hex, self.quality, self.timestamp, self.frame_number)
        if problem is not None:
            raise InvalidInput(f"invalid vPDQ frame: {problem}", field="hash")
        object.__setattr__(self, "pdq_hex", self.pdq_hex.lower())
        object.__setattr__(self, "timestamp", float(self.timestamp) + 0.0)  # no -0.0

    def __str__(self) -> str:
        """The frame as the exchanged format writes it: ``hex,quality,timestamp``."""
        return f"{self.pdq_hex},{self.quality},{format(self.timestamp, _TIMESTAMP_FORMAT)}"


# --- writing and reading ----------------------------------------------------------------


def serialise_vpdq(features: Iterable[VpdqFeature]) -> str:
    """The vPDQ hash as python-threatexchange's ``vpdq_to_json`` writes it, byte for byte."""
    return json.dumps([str(feature) for feature in features])


def _frame_error(position: int, total: int, problem: str, field: str) -> InvalidInput:
    return InvalidInput(f"vPDQ frame {position} of {total}: {problem}", field=field)


def _parse_int(text: str, pattern: re.Pattern[str]) -> int | str:
    """``text`` as an int if it is written as one, else ``text`` (for the message)."""
    return int(text) if pattern.fullmatch(text) else text


def _parse_timestamp(text: str) -> float | str:
    return float(text) if _TIMESTAMP.fullmatch(text) else text


def _parse_compact(text: str, field: str) -> list[VpdqFeature]:
    try:
        items = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"not valid JSON ({exc}); {_FORMAT_HELP}", field=field) from None
    if not isinstance(items, list):
        kind = "an object" if isinstance(items, dict) else f"{type(items).__name__!r}"
        raise InvalidInput(f"expected a JSON list, got {kind}; {_FORMAT_HELP}", field=field)
    _check_count(len(items), field)
    features = []
    for position, item in enumerate(items, start=1):
        if not isinstance(item, str):
            problem = f'expected a "PDQ hex,quality,timestamp" string, got {item!r}'
            raise _frame_error(position, len(items), problem, field)
        parts = item.split(",")
        if len(parts) != 3:
            problem = (
                f'expected 3 comma-separated values "PDQ hex,quality,timestamp", '
                f"got {len(parts)} in {item!r}"
            )
            raise _frame_error(position, len(items), problem, field)
        pdq_hex, quality, timestamp = parts
        values = (pdq_hex, _parse_int(quality, _QUALITY), _parse_timestamp(timestamp))
        problem_or_none = _feature_problem(*values, None)
        if problem_or_none is not None:
            raise _frame_error(position, len(items), problem_or_none, field)
        features.append(VpdqFeature(pdq_hex, int(values[1]), float(values[2])))
    return features


def _parse_lines(text: str, field: str) -> list[VpdqFeature]:
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    _check_count(len(lines), field)
    features: list[VpdqFeature] = []
    last_number = -1
    for position, line in enumerate(lines, start=1):
        parts = line.split(",")
        if len(parts) != 4:
            problem = (
                "expected 4 comma-separated values "
                f'"frame number,quality,PDQ hex,timestamp", got {len(parts)} in {line!r}'
            )
            raise _frame_error(position, len(lines), problem, field)
        number, quality, pdq_hex, timestamp = parts
        frame_number = _parse_int(number, _FRAME_NUMBER)
        values = (pdq_hex, _parse_int(quality, _QUALITY), _parse_timestamp(timestamp))
        problem_or_none = _feature_problem(*values, frame_number)
        if problem_or_none is not None:
            where = f"(frame number {frame_number}) " if isinstance(frame_number, int) else ""
            raise _frame_error(position, len(lines), where + problem_or_none, field)
        assert isinstance(frame_number, int)
        if frame_number <= last_number:
            problem = (
                f"frame numbers must increase; frame number {frame_number} follows {last_number}"
            )
            raise _frame_error(position, len(lines), problem, field)
        last_number = frame_number
        features.append(VpdqFeature(pdq_hex, int(values[1]), float(values[2]), frame_number))
    return features


def _check_count(count: int, field: str) -> None:
    if count == 0:
        raise InvalidInput("a vPDQ hash needs at least one frame; this one has none", field=field)
    if count > MAX_VPDQ_FRAMES:
        raise InvalidInput(
            f"a vPDQ hash has at most {MAX_VPDQ_FRAMES:,} frames; this one has {count:,}",
            field=field,
        )


def parse_vpdq(text: str, *, field: str = "hash") -> tuple[VpdqFeature, ...]:
    """Read a vPDQ hash, or raise InvalidInput naming the frame and what is wrong with it.

    Accepts the exchanged JSON format (see the module docstring) and vpdq-hash-video's
    lines. Strict: exactly 64 hex digits (upper case is lowered), a whole quality from 0
    to 100, a finite timestamp >= 0 written as a plain number, at least one and at most
    :data:`MAX_VPDQ_FRAMES` frames; in the lines format, increasing frame numbers.
    Frames are numbered from 1 in messages, in the order written.
    """
    if not isinstance(text, str):
        raise InvalidInput(f"a vPDQ hash must be text, not {type(text).__name__}", field=field)
    if len(text) > _MAX_TEXT:
        raise InvalidInput(
            f"a vPDQ hash is at most {_MAX_TEXT:,} characters long; got {len(text):,}",
            field=field,
        )
    body = text.strip()
    if not body:
        raise InvalidInput("a vPDQ hash needs at least one frame; this one is empty", field=field)
    parse = _parse_compact if body.startswith(("[", "{")) else _parse_lines
    return tuple(parse(body, field))


# --- matching ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VpdqMatch:
    """How much of two videos match, frame by frame.

    ``query_match_percent``: share (0-100) of the query's distinct, good-quality frames
    that have a near twin in the compared video; ``compared_match_percent`` the converse.
    ``query_frames`` and ``compared_frames`` count those frames (the denominators).
    """

    query_match_percent: float
    compared_match_percent: float
    query_frames: int
    compared_frames: int

    def is_match(
        self,
        query_threshold: float = VPDQ_QUERY_MATCH_THRESHOLD_PERCENT,
        compared_threshold: float = VPDQ_COMPARED_MATCH_THRESHOLD_PERCENT,
    ) -> bool:
        """Both percentages at or over their thresholds (``VPDQSignal.compare_hash``)."""
        return (
            self.query_frames > 0
            and self.compared_frames > 0
            and self.query_match_percent >= query_threshold
            and self.compared_match_percent >= compared_threshold
        )


def matchable_frames(
    features: Iterable[VpdqFeature], quality_threshold: int = VPDQ_QUALITY_THRESHOLD
) -> tuple[VpdqFeature, ...]:
    """The frames matching looks at: the first of each distinct PDQ hash, and of those
    only the ones of quality >= ``quality_threshold`` (de-duplicated *before* filtering,
    as the reference does: a low-quality first copy hides a better later one)."""
    seen: set[str] = set()
    unique = []
    for feature in features:
        if feature.pdq_hex not in seen:
            seen.add(feature.pdq_hex)
            unique.append(feature)
    return tuple(f for f in unique if f.quality >= quality_threshold)


def _count_found(hashes: Sequence[int], others: Sequence[int], distance: int) -> int:
    """How many of ``hashes`` have one of ``others`` within ``distance`` bits."""
    exact = set(others)
    return sum(h in exact or any((h ^ o).bit_count() <= distance for o in others) for h in hashes)


def _percent(found: int, total: int) -> float:
    # The reference's own expression, so that the floats are the same to the last bit.
    return found * 100 / total if total else 0.0


def match_vpdq(
    query: Iterable[VpdqFeature],
    compared: Iterable[VpdqFeature],
    *,
    quality_threshold: int = VPDQ_QUALITY_THRESHOLD,
    distance_threshold: int = VPDQ_DISTANCE_THRESHOLD,
) -> VpdqMatch:
    """Compare two vPDQ hashes as python-threatexchange's ``match_VPDQ_hash_brute`` does.

    Brute force: up to two PDQ distances per pair of frames, fine for one pair of videos
    (an hour against an hour at one frame per second is ~13 million XORs, a few seconds);
    searching a bank needs an index.
    """
    q = [int(f.pdq_hex, 16) for f in matchable_frames(query, quality_threshold)]
    c = [int(f.pdq_hex, 16) for f in matchable_frames(compared, quality_threshold)]
    return VpdqMatch(
        query_match_percent=_percent(_count_found(q, c, distance_threshold), len(q)),
        compared_match_percent=_percent(_count_found(c, q, distance_threshold), len(c)),
        query_frames=len(q),
        compared_frames=len(c),
    )


def vpdq_distance(
    query: Iterable[VpdqFeature],
    compared: Iterable[VpdqFeature],
    *,
    quality_threshold: int = VPDQ_QUALITY_THRESHOLD,
    distance_threshold: int = VPDQ_DISTANCE_THRESHOLD,
) -> int:
    """How far apart two videos are for banks: the percentage of the query's distinct,
    good-quality frames *without* a near twin, rounded up (so a bank threshold of 20 is the
    reference's "query match >= 80 %"); 100 when either side has no such frame."""
    m = match_vpdq(
        query,
        compared,
        quality_threshold=quality_threshold,
        distance_threshold=distance_threshold,
    )
    if not m.query_frames or not m.compared_frames:
        return 100
    return math.ceil(100 - m.query_match_percent - 1e-9)
