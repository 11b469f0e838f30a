"""Hashing videos: vPDQ that matches a re-encoded copy and not another video, the file's
MD5, vpdq's frame sampling, container sniffing, and a specific refusal for each kind of
bad input.

Every video is generated here with PyAV (a scrolling pattern of coloured blocks and a
moving disc): never real content, and no binary fixtures.
"""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest
from av.stream import Disposition

from cleanit.adapters.signals import (
    ContentRejected,
    ContentTooLarge,
    EmptyContent,
    UnreadableFile,
)
from cleanit.adapters.video import (
    CorruptVideo,
    NotAVideo,
    NoVideoStream,
    UnsupportedVideo,
    VideoFrameTooLarge,
    VideoHashes,
    VideoTooLong,
    hash_video,
    looks_like_video,
    sniff_video_container,
)
from cleanit.domain.errors import InvalidInput
from cleanit.domain.signals import SignalType
from cleanit.domain.video_signals import match_vpdq, parse_vpdq

FPS = 10
SECONDS = 4
WIDTH, HEIGHT = 128, 96
LIMIT = 10_000_000


def scene(seed: int, t: float) -> npt.NDArray[np.uint8]:
    """Frame at time ``t`` of video ``seed``: random blocks scrolling right, and a disc
    that inverts what it covers, moving along a Lissajous curve."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    picture = np.kron(blocks, np.ones((HEIGHT // 6, WIDTH // 8, 1), dtype=np.uint8))
    picture = np.roll(picture, int(t * WIDTH / 8), axis=1)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    cx = (0.5 + 0.35 * np.sin(2 * t + seed)) * WIDTH
    cy = (0.5 + 0.35 * np.cos(1.5 * t)) * HEIGHT
    disc = (x - cx) ** 2 + (y - cy) ** 2 < (HEIGHT / 5) ** 2
    picture[disc] = 255 - picture[disc]
    return picture


def write_video(
    target: Path | io.BytesIO,
    seed: int,
    *,
    codec: str = "libx264",
    container: str = "mp4",
    size: tuple[int, int] = (WIDTH, HEIGHT),
    frames: int = FPS * SECONDS,
    bit_rate: int | None = None,
    options: dict[str, str] | None = None,
) -> None:
    with av.open(target, "w", format=container, options=options or {}) as out:
        stream = out.add_stream(codec, rate=FPS)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        if bit_rate:
            stream.bit_rate = bit_rate
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(scene(seed, i / FPS), format="rgb24")
            if size != (WIDTH, HEIGHT):
                frame = frame.reformat(width=size[0], height=size[1])
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


@dataclass(frozen=True)
class Videos:
    root: Path

    def __getitem__(self, name: str) -> Path:
        return self.root / name


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Videos:
    root = tmp_path_factory.mktemp("videos")
    write_video(root / "a.mp4", 1)
    # The same video re-encoded: other codecs, sizes, bit rates and containers.
    write_video(root / "a.webm", 1, codec="libvpx", container="webm", size=(96, 72))
    write_video(root / "a.avi", 1, codec="mpeg4", container="avi", size=(160, 120), bit_rate=60_000)
    write_video(root / "a.mkv", 1, codec="libvpx-vp9", container="matroska", bit_rate=40_000)
    write_video(root / "a.flv", 1, codec="flv", container="flv")
    write_video(root / "a.ts", 1, codec="mpeg2video", container="mpegts")
    write_video(root / "a-faststart.mp4", 1, options={"movflags": "faststart"})
    write_video(root / "b.mp4", 2)
    return Videos(root)


def hashes(path: Path, **kwargs: Any) -> VideoHashes:
    return hash_video(path, max_bytes=LIMIT, **kwargs)


# --- matching -----------------------------------------------------------------------------


@pytest.mark.parametrize("copy", ["a.webm", "a.avi", "a.mkv", "a.flv", "a.ts"])
def test_a_re_encoded_copy_matches_and_another_video_does_not(videos: Videos, copy: str) -> None:
    original = hashes(videos["a.mp4"], seconds_per_hash=0.5)
    reencoded = hashes(videos[copy], seconds_per_hash=0.5)
    other = hashes(videos["b.mp4"], seconds_per_hash=0.5)
    assert len(original.vpdq) == len(reencoded.vpdq) == 8
    assert all(f.quality >= 50 for f in original.vpdq + reencoded.vpdq)

    same = match_vpdq(original.vpdq, reencoded.vpdq)
    assert same.query_match_percent >= 80 and same.compared_match_percent >= 80, same
    assert same.is_match() and match_vpdq(reencoded.vpdq, original.vpdq).is_match()

    different = match_vpdq(original.vpdq, other.vpdq)
    assert different.query_match_percent <= 20, different
    assert not different.is_match() and not match_vpdq(other.vpdq, reencoded.vpdq).is_match()


def test_the_fast_path_stays_within_a_few_bits_of_pdqhash_on_the_rgb_frame(
    videos: Videos,
) -> None:
    for name in ("a.mp4", "a.avi"):
        fast = hashes(videos[name], seconds_per_hash=0)
        exact = hashes(videos[name], seconds_per_hash=0, fast=False)
        assert len(fast.vpdq) == len(exact.vpdq) == FPS * SECONDS
        for f, e in zip(fast.vpdq, exact.vpdq, strict=True):
            assert (int(f.pdq_hex, 16) ^ int(e.pdq_hex, 16)).bit_count() <= 8
            assert abs(f.quality - e.quality) <= 2


# --- what is computed -----------------------------------------------------------------------


def test_md5_and_sha256_are_of_the_files_bytes(videos: Videos) -> None:
    data = videos["a.mp4"].read_bytes()
    result = hashes(videos["a.mp4"])
    assert result.md5 == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.size_bytes == len(data)
    crypto = {r.signal_type: r.hash.value for r in result.hash_results() if r.hash}
    assert crypto == {
        SignalType.MD5: result.md5,
        SignalType.SHA256: result.sha256,
        SignalType.VIDEO_MD5: result.md5,  # ThreatExchange's video MD5: the file's MD5
    }


@pytest.mark.parametrize(
    ("seconds_per_hash", "frame_numbers"),
    [
        (1.0, [0, 10, 20, 30]),
        (0.5, [0, 5, 10, 15, 20, 25, 30, 35]),
        (2.5, [0, 25]),
        (0.05, list(range(40))),  # int(0.05 * 10) == 0: every frame, as vpdq
        (0, list(range(40))),
        (100, [0]),
    ],
)
def test_frames_are_sampled_and_timed_as_vpdq_does(
    videos: Videos, seconds_per_hash: float, frame_numbers: list[int]
) -> None:
    result = hashes(videos["a.mp4"], seconds_per_hash=seconds_per_hash)
    assert [f.frame_number for f in result.vpdq] == frame_numbers
    assert [f.timestamp for f in result.vpdq] == [
        float(np.float32(n) / np.float32(FPS)) for n in frame_numbers
    ]
    assert (result.container, result.codec, result.width, result.height) == (
        "MP4/MOV",
        "h264",
        WIDTH,
        HEIGHT,
    )
    assert (result.frame_rate, result.frames_decoded) == (FPS, FPS * SECONDS)
    assert result.duration_seconds == pytest.approx(SECONDS)


def test_the_vpdq_json_is_the_exchanged_format(videos: Videos) -> None:
    result = hashes(videos["a.mp4"])
    parsed = parse_vpdq(result.vpdq_json)
    assert [(f.pdq_hex, f.quality, f.timestamp) for f in parsed] == [
        (f.pdq_hex, f.quality, f.timestamp) for f in result.vpdq
    ]
    assert result.vpdq_json.startswith(f'["{result.vpdq[0].pdq_hex},')


def test_a_file_object_hashes_like_its_path(videos: Videos) -> None:
    from_path = hashes(videos["a-faststart.mp4"])
    with videos["a-faststart.mp4"].open("rb") as f:
        f.read(100)  # read from the start whatever the position
        from_file = hash_video(f, max_bytes=LIMIT)
    assert from_file == from_path
    from_bytes = hash_video(io.BytesIO(videos["a-faststart.mp4"].read_bytes()), max_bytes=LIMIT)
    assert from_bytes == from_path


# --- recognising containers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "container"),
    [
        ("a.mp4", "MP4/MOV"),
        ("a-faststart.mp4", "MP4/MOV"),
        ("a.webm", "Matroska/WebM"),
        ("a.mkv", "Matroska/WebM"),
        ("a.avi", "AVI"),
        ("a.flv", "FLV"),
        ("a.ts", "MPEG-TS"),
    ],
)
def test_video_containers_are_recognised_from_their_first_bytes(
    videos: Videos, name: str, container: str
) -> None:
    head = videos[name].read_bytes()[:512]
    assert looks_like_video(head)
    assert sniff_video_container(head) == container
    assert hashes(videos[name]).container == container


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"hello, world\n" * 40,
        b"\x89PNG\r\n\x1a\n" + bytes(504),
        b"\xff\xd8\xff\xe0" + bytes(508),
        b"GIF89a" + bytes(506),
        b"RIFF\x00\x10\x00\x00WEBPVP8 " + bytes(496),
        b"RIFF\x00\x10\x00\x00WAVEfmt " + bytes(496),
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",
        b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf",
        b"%PDF-1.7\n" + bytes(503),
        b"\x47" + bytes(187) + b"\x47",  # one MPEG-TS sync byte is not enough
    ],
)
def test_other_content_does_not_look_like_video(head: bytes) -> None:
    assert not looks_like_video(head)
    assert sniff_video_container(head) is None


def test_a_quicktime_file_without_ftyp_is_recognised() -> None:
    assert sniff_video_container(b"\x00\x00\x00\x08wide\x00\x10\x00\x00mdat") == "MP4/MOV"
    assert sniff_video_container(b"\x00\x00\x02\x00moov\x00\x00\x00\x6cmvhd") == "MP4/MOV"


# --- bad input ----------------------------------------------------------------------------


def cut(fraction: float) -> Callable[[bytes], bytes]:
    return lambda data: data[: int(len(data) * fraction)]


def scramble(data: bytes) -> bytes:
    """Overwrite 1,500 bytes in the middle with random ones (fixed seed)."""
    rng = random.Random(0)
    middle = len(data) // 2
    noise = bytes(rng.randrange(256) for _ in range(1500))
    return data[:middle] + noise + data[middle + 1500 :]


@pytest.mark.parametrize(
    ("name", "damage", "error", "message"),
    [
        ("a.mp4", cut(0.5), CorruptVideo, r"cannot read this MP4/MOV file \(corrupt or trunc"),
        ("a-faststart.mp4", cut(0.5), CorruptVideo, r"MP4/MOV file is truncated or corrupt"),
        ("a.webm", cut(0.5), CorruptVideo, r"it declares 4.0 s but its frames end at 1.\d s"),
        ("a.avi", cut(0.5), CorruptVideo, r"it declares 40 frames but only \d+ could be decoded"),
        ("a.mp4", scramble, CorruptVideo, r"^could not decode frame \d+: Invalid data found"),
        ("a.mp4", lambda data: data[:4000], CorruptVideo, r"cannot read this MP4/MOV file"),
    ],
)
def test_truncated_and_corrupt_videos_are_refused(
    videos: Videos,
    name: str,
    damage: Callable[[bytes], bytes],
    error: type[ContentRejected],
    message: str,
) -> None:
    with pytest.raises(error, match=message) as caught:
        hash_video(io.BytesIO(damage(videos[name].read_bytes())), max_bytes=LIMIT)
    assert caught.value.code == "corrupt-video"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"hello, world\n" * 100, "not a video: its first bytes match none of the supported"),
        (b"\x89PNG\r\n\x1a\n" + bytes(2000), "(MP4/MOV, Matroska/WebM, AVI, FLV, MPEG-TS)"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(999), "brand 'heic'"),
    ],
)
def test_what_is_not_a_video_is_refused_before_hashing(data: bytes, message: str) -> None:
    with pytest.raises(NotAVideo) as caught:
        hash_video(io.BytesIO(data), max_bytes=LIMIT)
    assert message in caught.value.detail
    assert (caught.value.code, caught.value.status) == ("not-a-video", 415)


@pytest.mark.parametrize(
    ("container", "codec", "cover"), [("matroska", "libopus", False), ("mp4", "aac", True)]
)
def test_an_audio_only_file_has_no_video_stream(container: str, codec: str, cover: bool) -> None:
    """Also when it carries a cover picture, which FFmpeg lists as a video stream."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        audio = out.add_stream(codec, rate=48_000)
        assert isinstance(audio, av.AudioStream)
        if cover:
            picture = out.add_stream("mjpeg")
            assert isinstance(picture, av.VideoStream)
            picture.width, picture.height, picture.pix_fmt = 64, 64, "yuvj420p"
            picture.disposition = Disposition.attached_pic
            out.mux(picture.encode(av.VideoFrame.from_ndarray(scene(1, 0)[:64, :64])))
            out.mux(picture.encode(None))
        for i in range(10):
            samples = np.zeros((1, 1024), dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48_000, i * 1024
            out.mux(audio.encode(frame))
        out.mux(audio.encode(None))
    data = buffer.getvalue()
    assert looks_like_video(data[:512])  # by its container: only opening it tells
    with pytest.raises(NoVideoStream, match=r"no video stream \(it holds audio only\)"):
        hash_video(io.BytesIO(data), max_bytes=LIMIT)


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(EmptyContent, match="empty"):
        hash_video(empty, max_bytes=LIMIT)
    with pytest.raises(EmptyContent):
        hash_video(io.BytesIO(), max_bytes=LIMIT)


class CountingReader(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data


def test_a_file_over_the_size_limit_is_refused_without_reading_it(videos: Videos) -> None:
    data = videos["a.mp4"].read_bytes()
    reader = CountingReader(data)
    with pytest.raises(ContentTooLarge, match=f"limit of 1,000 bytes \\({len(data):,} bytes"):
        hash_video(reader, max_bytes=1000)
    assert reader.bytes_read == 0
    with pytest.raises(ContentTooLarge) as caught:
        hash_video(videos["a.mp4"], max_bytes=len(data) - 1)
    assert caught.value.status == 413


@pytest.mark.parametrize(
    ("name", "limits", "message"),
    [
        ("a.mp4", {"max_seconds": 2}, r"lasts 4.0 s, over the limit of 2 s; refused before"),
        ("a.mp4", {"max_frames": 10}, r"has 40 frames, over the limit of 10; refused before"),
        # Two MPEG-TS files back to back are one valid stream whose timestamps start
        # again: its estimated duration says 4 s, the frames say 8.
        ("a.ts+a.ts", {"max_seconds": 6}, r"more than 6 s, the limit \(frame 61 is at 6.1 s\)"),
        ("a.ts+a.ts", {"max_frames": 50}, r"more than 50 frames, the limit"),
    ],
)
def test_too_long_videos_are_refused(
    videos: Videos, name: str, limits: dict[str, float], message: str
) -> None:
    data = b"".join(videos[part].read_bytes() for part in name.split("+"))
    with pytest.raises(VideoTooLong, match=message) as caught:
        hash_video(io.BytesIO(data), max_bytes=LIMIT, **limits)  # type: ignore[arg-type]
    assert caught.value.status == 413


def test_frames_with_too_many_pixels_are_refused_before_decoding(videos: Videos) -> None:
    with pytest.raises(VideoFrameTooLarge, match=r"128x96 = 12,288 pixels, over the limit of"):
        hashes(videos["a.mp4"], max_pixels=WIDTH * HEIGHT - 1)
    assert hashes(videos["a.mp4"], max_pixels=WIDTH * HEIGHT).frames_decoded == 40


def test_codecs_outside_the_list_and_tiny_frames_are_unsupported() -> None:
    lossless = io.BytesIO()
    write_video(lossless, 1, codec="ffv1", container="matroska", frames=3)
    with pytest.raises(UnsupportedVideo, match="encoded with 'ffv1', which is not decoded"):
        hash_video(io.BytesIO(lossless.getvalue()), max_bytes=LIMIT)
    tiny = io.BytesIO()
    write_video(tiny, 1, size=(4, 4), frames=3)
    with pytest.raises(UnsupportedVideo, match="frames are 4x4: too small for PDQ"):
        hash_video(io.BytesIO(tiny.getvalue()), max_bytes=LIMIT)


class Unseekable(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


def test_unreadable_sources_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="cannot read"):
        hash_video(tmp_path / "missing.mp4", max_bytes=LIMIT)
    with pytest.raises(UnreadableFile, match="Is a directory"):
        hash_video(tmp_path, max_bytes=LIMIT)
    with pytest.raises(UnreadableFile, match="/dev/null is not a regular file"):
        hash_video(Path("/dev/null"), max_bytes=LIMIT)
    with pytest.raises(UnreadableFile, match="needs a seekable file"):
        hash_video(io.BufferedReader(Unseekable()), max_bytes=LIMIT)


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"seconds_per_hash": -1}, "seconds_per_hash"),
        ({"seconds_per_hash": float("nan")}, "seconds_per_hash"),
        ({"max_seconds": 0}, "max_seconds"),
        ({"max_bytes": 0}, "max_bytes"),
    ],
)
def test_bad_arguments_are_invalid_input(
    videos: Videos, arguments: dict[str, float], field: str
) -> None:
    options: dict[str, Any] = {"max_bytes": LIMIT} | arguments
    with pytest.raises(InvalidInput) as caught:
        hash_video(videos["a.mp4"], **options)
    assert caught.value.field == field
