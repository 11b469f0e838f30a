"""vPDQ: the exchanged format, strict parsing, and matching -- checked against
python-threatexchange's own pure-Python implementation on random frame sets.

python-threatexchange's ``vpdq_util`` and ``vpdq_brute_matcher`` import the ``vpdq`` C
extension at their top, but only use it to name types and to hash files: parsing,
serialising and matching are pure Python. ``vpdq`` is not installable here (an sdist that
needs system FFmpeg libraries), so :func:`reference` imports those modules with a stand-in
``vpdq`` module that exists only during the import. A plain brute-force oracle written in
this file checks the matching as well, whether or not the reference can be imported.
"""

from __future__ import annotations

import importlib
import json
import random
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cleanit.domain.errors import InvalidInput
from cleanit.domain.video_signals import (
    MAX_VPDQ_FRAMES,
    VPDQ_DISTANCE_THRESHOLD,
    VPDQ_QUALITY_THRESHOLD,
    VpdqFeature,
    VpdqMatch,
    match_vpdq,
    matchable_frames,
    parse_vpdq,
    serialise_vpdq,
)

HEX_A = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
HEX_B = "e64cc9d91c623882f8d1f1d9a398e78c9f199b3bd83924f2b7e11e0bf861b064"


@pytest.fixture(scope="module")
def reference() -> Iterator[types.SimpleNamespace]:
    """python-threatexchange's vPDQ util, brute matcher and signal type (or skip)."""
    added = "vpdq" not in sys.modules
    if added:
        try:
            importlib.import_module("vpdq")
            added = False
        except ImportError:
            stub = types.ModuleType("vpdq")
            stub.VpdqFeature = object  # type: ignore[attr-defined]  # named in annotations
            sys.modules["vpdq"] = stub
    # threatexchange is pinned in the dependencies: the reference must import (a skip here
    # would hide that the comparison no longer runs).
    try:
        util = importlib.import_module("threatexchange.extensions.vpdq.vpdq_util")
        brute = importlib.import_module("threatexchange.extensions.vpdq.vpdq_brute_matcher")
        signal = importlib.import_module("threatexchange.extensions.vpdq.vpdq")
    finally:
        if added:
            del sys.modules["vpdq"]
    yield types.SimpleNamespace(util=util, brute=brute, signal=signal.VPDQSignal)


# --- random frame sets ------------------------------------------------------------------


@st.composite
def frame_sets(draw: st.DrawFn, pool: list[int] | None = None) -> list[VpdqFeature]:
    """Frames near a small pool of base hashes (so that videos share frames), with exact
    duplicates, low qualities and timestamps of every magnitude."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = random.Random(seed)
    bases = pool if pool is not None else [rng.getrandbits(256) for _ in range(6)]
    frames: list[VpdqFeature] = []
    for _ in range(draw(st.integers(1, 30))):
        value = rng.choice(bases)
        for _ in range(rng.choice([0, 0, 3, 10, 20, 30, 31, 32, 40, 90])):
            value ^= 1 << rng.randrange(256)
        if frames and rng.random() < 0.15:
            value = int(rng.choice(frames).pdq_hex, 16)  # an exact repeat
        quality = rng.choice([0, 10, 49, 50, 51, 80, 100, rng.randint(0, 100)])
        timestamp = rng.choice([0.0, rng.uniform(0, 5), rng.uniform(0, 1e5), 1e-5, 100.0])
        frames.append(VpdqFeature(f"{value:064x}", quality, timestamp))
    return frames


@st.composite
def video_pairs(draw: st.DrawFn) -> tuple[list[VpdqFeature], list[VpdqFeature]]:
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    pool = [rng.getrandbits(256) for _ in range(draw(st.integers(1, 8)))]
    return draw(frame_sets(pool)), draw(frame_sets(pool))


def compact(reference: Any, frames: list[VpdqFeature]) -> list[Any]:
    return [reference.util.VpdqCompactFeature(f.pdq_hex, f.quality, f.timestamp) for f in frames]


def oracle(
    query: list[VpdqFeature], compared: list[VpdqFeature], quality: int, distance: int
) -> tuple[float, float]:
    """The matching rule written as plainly as possible (no early exits, no sets)."""

    def prepare(frames: list[VpdqFeature]) -> list[int]:
        unique: list[VpdqFeature] = []
        for f in frames:
            if all(u.pdq_hex != f.pdq_hex for u in unique):
                unique.append(f)
        return [int(f.pdq_hex, 16) for f in unique if f.quality >= quality]

    q, c = prepare(query), prepare(compared)

    def found(a: list[int], b: list[int]) -> int:
        return sum(1 for x in a if min(((x ^ y).bit_count() for y in b), default=257) <= distance)

    return (
        found(q, c) * 100 / len(q) if q else 0.0,
        found(c, q) * 100 / len(c) if c else 0.0,
    )


# --- the exchanged format ---------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(frames=frame_sets())
def test_serialisation_is_byte_identical_to_threatexchange(
    reference: Any, frames: list[VpdqFeature]
) -> None:
    theirs = reference.util.vpdq_to_json(compact(reference, frames))
    assert serialise_vpdq(frames) == theirs
    # ...and reading their text gives back what they read from it.
    ours = parse_vpdq(theirs)
    read = reference.util.json_to_vpdq(theirs)
    assert [(f.pdq_hex, f.quality, f.timestamp) for f in ours] == [
        (r.pdq_hex, r.quality, r.timestamp) for r in read
    ]
    assert serialise_vpdq(ours) == theirs  # canonical text round-trips


def test_timestamps_keep_threatexchanges_three_significant_digits() -> None:
    frames = [VpdqFeature(HEX_A, 100, t) for t in (0.0, 1.0, 12.0, 12.3456, 100.0, 1234.5)]
    assert json.loads(serialise_vpdq(frames)) == [
        f"{HEX_A},100,0.0",
        f"{HEX_A},100,1.0",
        f"{HEX_A},100,12.0",
        f"{HEX_A},100,12.3",
        f"{HEX_A},100,1e+02",
        f"{HEX_A},100,1.23e+03",
    ]
    assert [f.timestamp for f in parse_vpdq(serialise_vpdq(frames))][-2:] == [100.0, 1230.0]


def test_threatexchange_examples_parse_and_round_trip(reference: Any) -> None:
    (example,) = reference.signal.get_examples()
    frames = parse_vpdq(example)
    assert len(frames) == 16
    assert frames[0] == VpdqFeature(HEX_A, 100, 0.0)
    assert serialise_vpdq(frames) == example
    reference.signal.validate_signal_str(serialise_vpdq(frames))


def test_vpdq_hash_video_lines_are_read_with_frame_numbers() -> None:
    text = f"0,100,{HEX_A},0.000\n30,87,{HEX_B.upper()},1.000\n\n60,12,{HEX_A},2.000\n"
    frames = parse_vpdq(text)
    assert [(f.frame_number, f.quality, f.timestamp) for f in frames] == [
        (0, 100, 0.0),
        (30, 87, 1.0),
        (60, 12, 2.0),
    ]
    assert frames[1].pdq_hex == HEX_B  # lower-cased
    assert serialise_vpdq(frames) == json.dumps(
        [f"{HEX_A},100,0.0", f"{HEX_B},87,1.0", f"{HEX_A},12,2.0"]
    )


def item(pdq_hex: str = HEX_A, quality: str = "100", timestamp: str = "0.0") -> str:
    return f"{pdq_hex},{quality},{timestamp}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "needs at least one frame; this one is empty"),
        ("   \n", "needs at least one frame; this one is empty"),
        ("[]", "needs at least one frame; this one has none"),
        ("[1, 2", "not valid JSON"),
        ('{"0": {"quality": 100}}', "expected a JSON list, got an object"),
        (json.dumps([item(), 7]), 'vPDQ frame 2 of 2: expected a "PDQ hex,quality,timestamp"'),
        (json.dumps([item() + ",3"]), "frame 1 of 1: expected 3 comma-separated values"),
        (json.dumps([item(), item(HEX_A[:-1])]), "frame 2 of 2: the PDQ hash must be 64 hex"),
        (json.dumps([item("0x" + HEX_A[2:])]), "the PDQ hash must be 64 hexadecimal digits"),
        (json.dumps([item(HEX_A[:-1] + "g")]), "the PDQ hash must be 64 hexadecimal digits"),
        (json.dumps([item(quality="101")]), "the quality must be a whole number from 0 to 100"),
        (json.dumps([item(quality="-1")]), "the quality must be a whole number from 0 to 100"),
        (json.dumps([item(quality="50.0")]), "got '50.0'"),
        (json.dumps([item(quality=" 50")]), "got ' 50'"),
        (json.dumps([item(timestamp="nan")]), "the timestamp must be a number of seconds"),
        (json.dumps([item(timestamp="inf")]), "got 'inf'"),
        (json.dumps([item(timestamp="-1.0")]), "got '-1.0'"),
        (json.dumps([item(timestamp="1_0")]), "got '1_0'"),
        (json.dumps([item(timestamp="1e999")]), "a finite number of seconds >= 0"),
        (json.dumps([item(), item(), item(timestamp="")]), "vPDQ frame 3 of 3: the timestamp"),
        (f"0,100,{HEX_A}", "expected 4 comma-separated values"),
        (f"0,100,{HEX_A},0.0\n0,100,{HEX_A},1.0", "frame 2 of 2: frame numbers must increase"),
        (f"7,100,{HEX_A},0.0\n9,200,{HEX_A},1.0", "frame 2 of 2: (frame number 9) the quality"),
        (f"x,100,{HEX_A},0.0", "the frame number must be a whole number >= 0; got 'x'"),
    ],
)
def test_invalid_hashes_are_refused_naming_the_frame_and_the_problem(
    text: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_vpdq(text, field="vpdq")
    assert message in caught.value.detail
    assert caught.value.field == "vpdq"


def test_the_number_of_frames_and_the_length_are_bounded() -> None:
    too_many = json.dumps([item()] * (MAX_VPDQ_FRAMES + 1))
    with pytest.raises(InvalidInput, match="at most 100,000 frames; this one has 100,001"):
        parse_vpdq(too_many)
    with pytest.raises(InvalidInput, match="characters long"):
        parse_vpdq(" " * (MAX_VPDQ_FRAMES * 128 + 1))
    with pytest.raises(InvalidInput, match="must be text, not bytes"):
        parse_vpdq(b"[]")  # type: ignore[arg-type]


# Pieces of frame strings, good and bad; "٣" is an Arabic-Indic 3, which int() accepts.
PIECES = [HEX_A, HEX_A.upper(), HEX_A[:-1], "0x" + HEX_A[2:], "100", "0", "101", "-3", " 5"]
PIECES += ["1.5", "1e+02", "nan", "inf", "-0.0", "1_0", "", "abc", "٣", "1.", ".5"]


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(
        st.sampled_from(PIECES),
        min_size=1,
        max_size=4,
    )
)
def test_whatever_threatexchange_refuses_is_refused(reference: Any, parts: list[str]) -> None:
    text = json.dumps([",".join(parts)])
    try:
        theirs = reference.util.json_to_vpdq(text)
    except ValueError:
        with pytest.raises(InvalidInput):
            parse_vpdq(text)
        return
    try:
        ours = parse_vpdq(text)
    except InvalidInput:  # stricter than the reference: only for nonsense it lets through
        stricter = {"0x" + HEX_A[2:], "nan", "inf", "-0.0", "1_0", " 5", ".5", "٣"}
        assert set(parts) & stricter
        return
    assert [(f.pdq_hex, f.quality, f.timestamp) for f in ours] == [
        (r.pdq_hex.lower(), r.quality, r.timestamp) for r in theirs
    ]


def test_features_validate_and_normalise_themselves() -> None:
    frame = VpdqFeature(HEX_A.upper(), 100, -0.0, 0)
    assert (frame.pdq_hex, str(frame)) == (HEX_A, f"{HEX_A},100,0.0")
    bad_values: list[dict[str, Any]] = [
        {"pdq_hex": "abc"},
        {"quality": 101},
        {"quality": True},
        {"timestamp": float("nan")},
        {"timestamp": -1.0},
        {"frame_number": -1},
    ]
    for bad in bad_values:
        values: dict[str, Any] = {"pdq_hex": HEX_A, "quality": 100, "timestamp": 0.0} | bad
        with pytest.raises(InvalidInput, match="invalid vPDQ frame"):
            VpdqFeature(**values)


# --- matching ---------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(pair=video_pairs())
def test_matching_equals_threatexchanges_brute_matcher(
    reference: Any, pair: tuple[list[VpdqFeature], list[VpdqFeature]]
) -> None:
    query, compared = pair
    ours = match_vpdq(query, compared)
    assert (ours.query_match_percent, ours.compared_match_percent) == oracle(
        query, compared, VPDQ_QUALITY_THRESHOLD, VPDQ_DISTANCE_THRESHOLD
    )
    if ours.query_frames == 0 or ours.compared_frames == 0:
        return  # the reference divides by zero here; we answer 0 % and no match
    theirs = reference.brute.match_VPDQ_hash_brute(
        compact(reference, query),
        compact(reference, compared),
        VPDQ_QUALITY_THRESHOLD,
        VPDQ_DISTANCE_THRESHOLD,
    )
    assert ours.query_match_percent == theirs.query_match_percent  # same float, bit for bit
    assert ours.compared_match_percent == theirs.compared_match_percent
    result = reference.signal.compare_hash(serialise_vpdq(query), serialise_vpdq(compared))
    assert ours.is_match() == result.match


@settings(max_examples=100, deadline=None)
@given(
    pair=video_pairs(),
    quality=st.integers(0, 101),
    distance=st.integers(0, 256),
)
def test_matching_follows_the_rule_at_any_threshold(
    pair: tuple[list[VpdqFeature], list[VpdqFeature]], quality: int, distance: int
) -> None:
    query, compared = pair
    ours = match_vpdq(query, compared, quality_threshold=quality, distance_threshold=distance)
    assert (ours.query_match_percent, ours.compared_match_percent) == oracle(
        query, compared, quality, distance
    )


def test_duplicates_are_dropped_before_low_quality_frames() -> None:
    # The first copy of HEX_B is of low quality: it hides the good second copy, as in
    # the reference (de-duplicate, then filter).
    frames = [
        VpdqFeature(HEX_A, 90, 0.0),
        VpdqFeature(HEX_B, 10, 1.0),
        VpdqFeature(HEX_B, 90, 2.0),
        VpdqFeature(HEX_A, 90, 3.0),
    ]
    assert matchable_frames(frames) == (frames[0],)
    assert match_vpdq(frames, [VpdqFeature(HEX_B, 100, 0.0)]).query_match_percent == 0.0


def test_a_video_matches_itself_and_thresholds_decide() -> None:
    near_a = f"{int(HEX_A, 16) ^ (2**31 - 1):064x}"  # 31 bits away: still a match
    far_a = f"{int(HEX_A, 16) ^ (2**32 - 1):064x}"  # 32 bits away: not
    video = [VpdqFeature(HEX_A, 100, 0.0), VpdqFeature(HEX_B, 100, 1.0)]
    assert match_vpdq(video, video) == VpdqMatch(100.0, 100.0, 2, 2)
    half = match_vpdq(video, [VpdqFeature(near_a, 100, 0.0)])
    assert half == VpdqMatch(50.0, 100.0, 2, 1)
    assert not half.is_match()
    assert half.is_match(query_threshold=50.0)
    assert not half.is_match(query_threshold=50.0, compared_threshold=100.1)
    assert match_vpdq(video, [VpdqFeature(far_a, 100, 0.0)]).query_match_percent == 0.0


def test_videos_without_good_frames_never_match() -> None:
    dark = [VpdqFeature(HEX_A, 49, 0.0)]
    result = match_vpdq(dark, dark)
    assert result == VpdqMatch(0.0, 0.0, 0, 0)
    assert not result.is_match(query_threshold=0.0)
    assert match_vpdq(dark, dark, quality_threshold=49).is_match()
