"""Hashing videos: MD5 and SHA-256 of the file, and the vPDQ hash of its frames.

* **video MD5** is the MD5 of the file's bytes (python-threatexchange's
  ``VideoMD5Signal.hash_from_file``); it and the SHA-256 are computed by streaming the
  file in chunks, after its size was checked against ``max_bytes``.
* **vPDQ** as Meta's ``vpdq`` library computes it (``vpdq/cpp/hashing/filehasher.cpp``):
  every frame is decoded, in order; frame *n* (counted from 0 among the decoded frames) is
  hashed when ``n % int(seconds_per_hash * fps) == 0``, where fps is the stream's average
  frame rate (else its real base rate); the frame is converted to 8-bit RGB at its full
  size (BT.601 coefficients, range by pixel format, area interpolation: what vpdq's
  ``sws_scale`` call does, whatever colour tags the frame carries) and
  PDQ-hashed; its timestamp is ``n / fps`` computed in single precision, as vpdq does.
  Low-quality frames are kept (matching ignores them, see ``cleanit.domain.video_signals``).
* Frames are decoded with PyAV, whose wheels bundle FFmpeg: no system libraries needed.

**Fast path** (``fast=True``, the default). pdqhash spends most of its time blurring the
full-resolution luma (~140 ms for a 1080p frame here). The fast path computes the luma
from the same RGB pixels and PDQ's 64x64 buffer with the sparse matrix of
``cleanit.adapters.signals`` (``pdq_input``: PDQ's own blur-and-sample, proven equal to
pdqhash's in ``tests/adapters/test_signals.py``), then lets pdqhash finish the hash: ~12x
faster per frame at 1080p and within a few bits of ``fast=False`` (which runs pdqhash on
the RGB frame exactly as vpdq does). The decoder, not PDQ, then dominates the time.

**Untrusted input.** Only the containers :data:`VIDEO_CONTAINERS` are opened, each with
its FFmpeg demuxer forced (chosen from the first bytes, never by FFmpeg's probing), and
only the decoders :data:`VIDEO_DECODERS` run, also while FFmpeg probes the streams (its
``codec_whitelist``): FFmpeg's other few hundred formats and codecs never see the bytes,
and no demuxer may open another file or URL. The size is checked before anything is
read; the frame size before decoding (and by the decoder itself, via its ``max_pixels``
option); the declared duration and frame count before decoding, and both again while
decoding, since headers can lie. FFmpeg reads exactly the bytes that were hashed, never
more. Errors are :class:`~cleanit.adapters.signals.ContentRejected` subclasses with
readable messages.
"""

from __future__ import annotations

import hashlib
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

import av
import numpy as np
import numpy.typing as npt
import pdqhash
from av.stream import Disposition
from av.video.reformatter import ColorRange, Colorspace, Interpolation

from cleanit.adapters.signals import (
    CHUNK_SIZE,
    ContentRejected,
    ContentTooLarge,
    EmptyContent,
    UnreadableFile,
    UnsupportedContent,
    pdq_input,
)
from cleanit.domain.errors import InvalidInput
from cleanit.domain.signals import Hash, HashResult, SignalType
from cleanit.domain.video_signals import VpdqFeature, serialise_vpdq

__all__ = [
    "DEFAULT_MAX_FRAMES",
    "DEFAULT_MAX_FRAME_PIXELS",
    "DEFAULT_MAX_SECONDS",
    "VIDEO_CONTAINERS",
    "VIDEO_DECODERS",
    "CorruptVideo",
    "NoVideoStream",
    "NotAVideo",
    "UnsupportedVideo",
    "VideoFrameTooLarge",
    "VideoHashes",
    "VideoTooLong",
    "hash_video",
    "looks_like_video",
    "sniff_video_container",
]

#: Longer videos (by their declared duration, or by the time of a decoded frame) are refused.
DEFAULT_MAX_SECONDS: Final = 3600.0
#: Most frames decoded: an hour at 60 fps, with room to spare. Bounds the work a file
#: whose header lies about its length or frame rate can cause.
DEFAULT_MAX_FRAMES: Final = 250_000
#: Most pixels a frame may have (4096 x 4096): above 4K UHD and DCI 4K, below 8K.
DEFAULT_MAX_FRAME_PIXELS: Final = 4096 * 4096
#: Containers opened, each with its FFmpeg demuxer: (name, demuxer).
VIDEO_CONTAINERS: Final = (
    ("MP4/MOV", "mov"),
    ("Matroska/WebM", "matroska"),
    ("AVI", "avi"),
    ("FLV", "flv"),
    ("MPEG-TS", "mpegts"),
)
#: FFmpeg decoders allowed to run, by the name PyAV reports (``libdav1d`` decodes AV1).
VIDEO_DECODERS: Final = frozenset(
    {
        "h264",
        "hevc",
        "vp8",
        "vp9",
        "libvpx",
        "libvpx-vp9",
        "av1",
        "libdav1d",
        "mpeg4",
        "msmpeg4v3",
        "mpeg1video",
        "mpeg2video",
        "h263",
        "flv",
        "mjpeg",
        "theora",
    }
)
_CONTAINER_NAMES = ", ".join(name for name, _ in VIDEO_CONTAINERS)
_HEAD = 1024  # bytes looked at to recognise a container (MPEG-TS needs 3 x 188)
_MIN_PDQ_SIDE = 5  # vpdq refuses frames smaller than this (MIN_HASHABLE_DIM)
_COVER = Disposition.attached_pic
_LUMA = np.array((0.299, 0.587, 0.114), dtype=np.float32)  # PDQ's luma weights
# The end of a file may be up to this far (seconds, and share of the duration) short of
# the declared duration before it counts as truncated: containers round, streams start late.
_TRUNCATION_SLACK = (1.0, 0.05)


# --- errors -----------------------------------------------------------------------------


class NotAVideo(UnsupportedContent):
    code = "not-a-video"


class NoVideoStream(UnsupportedContent):
    code = "no-video-stream"


class UnsupportedVideo(UnsupportedContent):
    """A video, but in a codec we do not decode or with frames too small to hash."""

    code = "unsupported-video"


class CorruptVideo(ContentRejected):
    code = "corrupt-video"


class VideoTooLong(ContentRejected):
    code = "video-too-long"
    status = 413


class VideoFrameTooLarge(ContentRejected):
    """Frames with too many pixels: a decompression bomb, or more than we agree to decode."""

    code = "video-frame-too-large"


# --- recognising containers -------------------------------------------------------------

# ISO BMFF brands of still images and image sequences: an "ftyp" box but no video.
_IMAGE_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
    | {b"crx ", b"jp2 ", b"jpx ", b"jpm "}
)
# Top-level atoms an old QuickTime file (no "ftyp") starts with.
_QUICKTIME_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})
_TS_PACKET = 188


def _sniff(head: bytes) -> tuple[str, str] | None:
    """(container name, FFmpeg demuxer) of a supported video container, from its first bytes."""
    if head[4:8] == b"ftyp":
        return None if head[8:12] in _IMAGE_BRANDS else VIDEO_CONTAINERS[0]
    if head[4:8] in _QUICKTIME_ATOMS:
        return VIDEO_CONTAINERS[0]
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML
        return VIDEO_CONTAINERS[1]
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return VIDEO_CONTAINERS[2]
    if head.startswith(b"FLV\x01"):
        return VIDEO_CONTAINERS[3]
    if len(head) > 2 * _TS_PACKET and all(head[i * _TS_PACKET] == 0x47 for i in range(3)):
        return VIDEO_CONTAINERS[4]  # three packets' sync bytes
    return None


def sniff_video_container(head: bytes) -> str | None:
    """Name of the video container (see :data:`VIDEO_CONTAINERS`) ``head`` starts, or None.

    ``head``: the first bytes of the file, at least 512 of them to recognise MPEG-TS.
    """
    found = _sniff(head)
    return None if found is None else found[0]


def looks_like_video(head: bytes) -> bool:
    """True if ``head`` (a file's first bytes) starts a container :func:`hash_video` reads:
    MP4/MOV/3GP (but not HEIF/AVIF images), Matroska/WebM, AVI, FLV or MPEG-TS. Cheap:
    for routing uploads; the file may still turn out to hold no video or to be corrupt."""
    return _sniff(head) is not None


def _not_a_video(head: bytes) -> NotAVideo:
    if head[4:8] == b"ftyp":
        brand = head[8:12].decode("ascii", "replace").strip()
        return NotAVideo(
            f"not a video: an ISO media file of brand {brand!r}, which is a still-image "
            f"format (HEIF/AVIF/...); supported video containers: {_CONTAINER_NAMES}"
        )
    return NotAVideo(
        "not a video: its first bytes match none of the supported video containers "
        f"({_CONTAINER_NAMES})"
    )


# --- the result -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VideoHashes:
    """What hashing one video produced.

    ``md5`` (also the ThreatExchange *video MD5*) and ``sha256`` are of the file's bytes;
    ``vpdq`` holds one feature per hashed frame, in frame order. ``duration_seconds``
    spans the decoded frames; ``frame_rate`` is the one vPDQ's timestamps use.
    """

    md5: str
    sha256: str
    vpdq: tuple[VpdqFeature, ...]
    size_bytes: int
    container: str
    codec: str
    width: int
    height: int
    frame_rate: float
    frames_decoded: int
    duration_seconds: float
    seconds_per_hash: float

    @property
    def vpdq_json(self) -> str:
        """The vPDQ hash as python-threatexchange and HMA write it."""
        return serialise_vpdq(self.vpdq)

    def hash_results(self) -> list[HashResult]:
        """The file's cryptographic signals: MD5, SHA-256 and the same MD5 as video MD5."""
        return [
            HashResult(SignalType.MD5, Hash(SignalType.MD5, self.md5)),
            HashResult(SignalType.SHA256, Hash(SignalType.SHA256, self.sha256)),
            HashResult(SignalType.VIDEO_MD5, Hash(SignalType.VIDEO_MD5, self.md5)),
        ]


# --- reading ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Limits:
    max_bytes: int
    max_seconds: float
    max_frames: int
    max_pixels: int
    seconds_per_hash: float
    fast: bool
    threads: int


class _Bounded:
    """A read-only view of the first ``size`` bytes of a seekable file: FFmpeg reads exactly
    the bytes that were hashed, even if the file grows meanwhile."""

    def __init__(self, f: IO[bytes], size: int) -> None:
        self._f = f
        self._size = size
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        left = self._size - self._pos
        n = left if n < 0 else min(n, left)
        if n <= 0:
            return b""
        self._f.seek(self._pos)
        data = self._f.read(n)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        self._pos = max(0, min(base + offset, self._size))
        return self._pos

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True


def _stream_hashes(f: IO[bytes], max_bytes: int) -> tuple[str, str, int]:
    """MD5, SHA-256 and length of ``f`` from its start, one chunk at a time."""
    md5 = hashlib.md5(usedforsecurity=False)
    sha256 = hashlib.sha256()
    total = 0
    f.seek(0)
    while chunk := f.read(CHUNK_SIZE):
        total += len(chunk)
        if total > max_bytes:  # the file grew after its size was checked
            raise ContentTooLarge(f"file is larger than the limit of {max_bytes:,} bytes")
        md5.update(chunk)
        sha256.update(chunk)
    if total == 0:
        raise EmptyContent("the file is empty (0 bytes): there is nothing to hash")
    return md5.hexdigest(), sha256.hexdigest(), total


def _reason(exc: av.FFmpegError) -> str:
    """FFmpeg's message without the errno and function name PyAV adds."""
    return str(exc.strerror or exc)


def _pdq(rgb: npt.NDArray[np.uint8], fast: bool) -> tuple[str, int]:
    if fast:
        height, width = rgb.shape[:2]
        luma: npt.NDArray[np.float32] = rgb @ _LUMA
        bits, quality = pdqhash.compute(pdq_input(luma, width, height))
    else:
        bits, quality = pdqhash.compute(rgb)
    return np.packbits(bits.astype(np.uint8)).tobytes().hex(), int(quality)


def _source_range(pixel_format: str) -> ColorRange | None:
    """The YUV range vpdq's ``sws_scale`` assumes: full for the "J" (JPEG) formats, limited
    for the others, whatever the frame is tagged with (PyAV would follow the tag)."""
    if pixel_format.startswith("yuvj"):
        return ColorRange.JPEG
    if pixel_format.startswith(("yuv", "nv")):
        return ColorRange.MPEG
    return None  # RGB, grey...: no YUV range to choose


def _declared_seconds(stream: av.VideoStream, container: av.container.InputContainer) -> float:
    """The video's duration as its headers declare it (0 if they do not)."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0


@dataclass(frozen=True, slots=True)
class _Video:
    """The video stream to hash, and what its headers declare."""

    stream: av.VideoStream
    codec: str
    width: int
    height: int
    fps: float
    declared_seconds: float  # 0 if not declared
    declared_frames: int  # 0 if not declared


def _video_stream(container: av.container.InputContainer, name: str, limits: _Limits) -> _Video:
    """The first video stream, once its headers passed every check that needs no decoding."""
    if not container.streams:
        raise CorruptVideo(f"the {name} file holds no streams at all (corrupt or truncated?)")
    # A cover picture (music files have them) is a one-frame "video stream": not a video.
    streams = [s for s in container.streams.video if not s.disposition & _COVER]
    if not streams:
        only = " (it holds audio only)" if container.streams.audio else ""
        raise NoVideoStream(f"the {name} file has no video stream{only}: nothing to hash")
    stream = streams[0]
    context = stream.codec_context
    codec = context.codec.name if context is not None else "unknown"
    if codec not in VIDEO_DECODERS:
        raise UnsupportedVideo(
            f"the video is encoded with {codec!r}, which is not decoded here; "
            f"supported codecs: {', '.join(sorted(VIDEO_DECODERS))}"
        )
    width, height = context.width, context.height
    if width <= 0 or height <= 0:
        raise CorruptVideo(f"the {name} file's video stream declares no frame size")
    _check_frame_size(width, height, limits.max_pixels, "refused before decoding")
    rate = stream.average_rate or stream.base_rate  # as vpdq
    fps = float(rate) if rate else 0.0
    if not fps > 0 or not math.isfinite(fps):
        raise CorruptVideo(f"the {name} file's video stream declares no frame rate")
    declared_seconds = _declared_seconds(stream, container)
    if declared_seconds > limits.max_seconds:
        raise VideoTooLong(
            f"the video lasts {declared_seconds:,.1f} s, over the limit of "
            f"{limits.max_seconds:,g} s; refused before decoding"
        )
    if stream.frames > limits.max_frames:
        raise VideoTooLong(
            f"the video has {stream.frames:,} frames, over the limit of "
            f"{limits.max_frames:,}; refused before decoding"
        )
    return _Video(stream, codec, width, height, fps, declared_seconds, stream.frames)


def _decode_and_hash(
    container: av.container.InputContainer, video: _Video, name: str, limits: _Limits
) -> tuple[list[VpdqFeature], int, float]:
    """Decode every frame, vPDQ-hash the sampled ones; the features, the number of frames
    decoded and the time they span."""
    context = video.stream.codec_context
    context.thread_type = "AUTO"  # frame threads: same frames, in the same order
    context.thread_count = limits.threads
    context.options = {"max_pixels": str(limits.max_pixels)}  # the decoder's own guard
    fps = video.fps
    frame_mod = max(1, int(limits.seconds_per_hash * fps))  # as vpdq: truncated, at least 1
    features: list[VpdqFeature] = []
    decoded = 0
    first_time: float | None = None
    last_time = 0.0
    packets = container.demux(video.stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.FFmpegError as exc:
            raise CorruptVideo(
                f"could not read the video after frame {decoded} (corrupt or truncated "
                f"{name} file?): {_reason(exc)}"
            ) from None
        try:
            frames = packet.decode()
        except av.FFmpegError as exc:
            raise CorruptVideo(f"could not decode frame {decoded}: {_reason(exc)}") from None
        for frame in frames:
            if decoded >= limits.max_frames:
                raise VideoTooLong(
                    f"the video has more than {limits.max_frames:,} frames, the limit"
                )
            if frame.time is not None:
                first_time = frame.time if first_time is None else first_time
                last_time = frame.time - first_time
            else:
                last_time = decoded / fps
            # Timestamps may restart (concatenated streams) and rates may lie: both count.
            elapsed = max(last_time, decoded / fps)
            if elapsed > limits.max_seconds:
                raise VideoTooLong(
                    f"the video lasts more than {limits.max_seconds:,g} s, the limit "
                    f"(frame {decoded} is at {elapsed:,.1f} s)"
                )
            if decoded % frame_mod == 0:
                _check_frame_size(frame.width, frame.height, limits.max_pixels, "")
                rgb = frame.to_ndarray(
                    format="rgb24",
                    src_colorspace=Colorspace.ITU601,
                    src_color_range=_source_range(frame.format.name),
                    interpolation=Interpolation.AREA,
                )
                pdq_hex, quality = _pdq(np.asarray(rgb, dtype=np.uint8), limits.fast)
                timestamp = float(np.float32(decoded) / np.float32(fps))  # vpdq's floats
                features.append(VpdqFeature(pdq_hex, quality, timestamp, decoded))
            decoded += 1
    if decoded == 0:
        raise CorruptVideo(f"no frame of the {name} file could be decoded (corrupt or truncated?)")
    return features, decoded, max(last_time, (decoded - 1) / fps) + 1 / fps


def _too_small(width: int, height: int) -> str:
    return (
        f"video frames are {width}x{height}: too small for PDQ, which needs at least "
        f"{_MIN_PDQ_SIDE} pixels a side"
    )


def _check_frame_size(width: int, height: int, max_pixels: int, when: str) -> None:
    if width * height > max_pixels:
        suffix = f"; {when}" if when else ""
        raise VideoFrameTooLarge(
            f"video frames are {width}x{height} = {width * height:,} pixels, over the limit "
            f"of {max_pixels:,} (possible decompression bomb){suffix}"
        )
    if min(width, height) < _MIN_PDQ_SIDE:
        raise UnsupportedVideo(_too_small(width, height))


def _check_complete(
    name: str, container: av.container.InputContainer, video: _Video, decoded: int, duration: float
) -> None:
    """Refuse a file that ended well before its headers said it would (truncated).

    FFmpeg reads a truncated AVI or Matroska file to where it was cut without complaint.
    MP4/MOV is left out of the frame count: edit lists may legitimately drop frames (and
    a cut MP4 fails to open or to decode anyway).
    """
    slack_seconds, slack_share = _TRUNCATION_SLACK
    declared_frames, declared_seconds = video.declared_frames, video.declared_seconds
    if declared_frames and name != VIDEO_CONTAINERS[0][0]:
        if decoded < declared_frames - max(3, declared_frames * slack_share):
            raise CorruptVideo(
                f"the {name} file is truncated or corrupt: it declares {declared_frames:,} "
                f"frames but only {decoded:,} could be decoded"
            )
        return
    # The container's duration covers every stream: only telling if video is alone.
    slack = max(slack_seconds, declared_seconds * slack_share)
    if declared_seconds and len(container.streams) == 1 and duration < declared_seconds - slack:
        raise CorruptVideo(
            f"the {name} file is truncated or corrupt: it declares "
            f"{declared_seconds:,.1f} s but its frames end at {duration:,.1f} s"
        )


def _open_options(demuxer: str) -> dict[str, str]:
    """FFmpeg's own allow-lists, for what happens inside ``av.open``: probing the streams
    opens decoders (only ours, then), and no demuxer may open another format or any URL."""
    return {
        "codec_whitelist": ",".join(sorted(VIDEO_DECODERS)),
        "format_whitelist": demuxer,
        "protocol_whitelist": "none",
    }


def _hash_open(f: IO[bytes], size: int, limits: _Limits) -> VideoHashes:
    if size == 0:
        raise EmptyContent("the file is empty (0 bytes): there is nothing to hash")
    if size > limits.max_bytes:
        raise ContentTooLarge(
            f"file is larger than the limit of {limits.max_bytes:,} bytes ({size:,} bytes)"
        )
    f.seek(0)
    head = f.read(_HEAD)
    found = _sniff(head)
    if found is None:
        raise _not_a_video(head)
    name, demuxer = found
    md5, sha256, total = _stream_hashes(f, limits.max_bytes)
    try:
        container = av.open(
            _Bounded(f, total),
            mode="r",
            format=demuxer,
            options=_open_options(demuxer),
            metadata_errors="replace",
        )
    except av.FFmpegError as exc:
        raise CorruptVideo(
            f"cannot read this {name} file (corrupt or truncated?): {_reason(exc)}"
        ) from None
    with container:
        video = _video_stream(container, name, limits)
        features, decoded, duration = _decode_and_hash(container, video, name, limits)
        _check_complete(name, container, video, decoded, duration)
    return VideoHashes(
        md5=md5,
        sha256=sha256,
        vpdq=tuple(features),
        size_bytes=total,
        container=name,
        codec=video.codec,
        width=video.width,
        height=video.height,
        frame_rate=video.fps,
        frames_decoded=decoded,
        duration_seconds=duration,
        seconds_per_hash=limits.seconds_per_hash,
    )


def _check_args(limits: _Limits) -> None:
    spf = limits.seconds_per_hash
    if not (isinstance(spf, int | float) and math.isfinite(spf) and spf >= 0):
        raise InvalidInput(
            f"seconds per hash must be a number >= 0 (0: every frame); got {spf!r}",
            field="seconds_per_hash",
        )
    for label, value in (
        ("max_bytes", limits.max_bytes),
        ("max_seconds", limits.max_seconds),
        ("max_frames", limits.max_frames),
        ("max_pixels", limits.max_pixels),
    ):
        if not value > 0:
            raise InvalidInput(f"{label} must be positive; got {value!r}", field=label)


def hash_video(
    fp_or_path: str | os.PathLike[str] | IO[bytes],
    *,
    max_bytes: int,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    max_frames: int = DEFAULT_MAX_FRAMES,
    max_pixels: int = DEFAULT_MAX_FRAME_PIXELS,
    seconds_per_hash: float = 1.0,
    fast: bool = True,
    threads: int = 0,
) -> VideoHashes:
    """MD5, SHA-256 and vPDQ of the video at ``fp_or_path`` (a path, or a seekable binary
    file read from its start).

    ``seconds_per_hash``: one frame hashed per this many seconds (0: every frame);
    python-threatexchange's default is 1. ``fast``: see the module docstring.
    ``threads``: decoder threads, 0 for one per CPU. Raises a ContentRejected subclass
    for anything that is not a readable video within the limits.
    """
    limits = _Limits(
        max_bytes, max_seconds, max_frames, max_pixels, seconds_per_hash, fast, threads
    )
    _check_args(limits)
    if isinstance(fp_or_path, str | os.PathLike):
        path = Path(fp_or_path)
        try:
            f = path.open("rb")
        except OSError as exc:
            raise UnreadableFile(f"cannot read {path}: {exc.strerror or exc}") from None
        with f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise UnreadableFile(f"{path} is not a regular file")
            return _hash_open(f, info.st_size, limits)
    if not fp_or_path.seekable():
        raise UnreadableFile(
            "video hashing needs a seekable file: containers may keep their index at the end"
        )
    size = fp_or_path.seek(0, os.SEEK_END)
    return _hash_open(fp_or_path, size, limits)
