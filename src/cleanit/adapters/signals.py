"""Hashing content into signals: MD5 and SHA-256 of any file, PDQ of images, a MinHash
signature of text.

* MD5 and SHA-256 are computed by streaming the file in chunks (never read whole), so a
  size limit, not memory, bounds what can be hashed.
* PDQ (Meta's perceptual photo hash) is computed with ``pdqhash``, the same C++ code that
  python-threatexchange's ``PdqSignal`` uses: on the same pixels the hashes are identical
  (proven in ``tests/adapters/test_signals.py``). ``threatexchange`` itself is not imported
  here (it costs ~0.3 s to import and adds nothing to the computation).
* One pass gives the hash of the image and of its seven rotations/mirrors (the dihedral
  variants), so a mirrored or 90°-rotated copy can be matched.
* A PDQ of quality below 50 is returned as *low quality* with no hash: such hashes match
  almost anything (and an empty one crashes threatexchange 1.2.17's index).

**Fast path** (``fast=True``, the default). In ``pdqhash`` almost all the time of a large
image goes into decoding the full bitmap and blurring it with PDQ's two-pass box
("Jarosz") filter: ~0.4 s for 2048x2048. Only 64x64 samples of that blur feed the hash.
The fast path decodes JPEGs at reduced size (libjpeg DCT scaling to ~512 px a side,
via ``Image.draft``), box-reduces other formats by a whole factor to ~512 px,
then computes PDQ's 64x64 buffer directly with PDQ's own filter expressed as a sparse
matrix (``_pdq_taps``; proven equal to pdqhash's filter in the tests) and lets pdqhash
compute DCT, quality, hash and dihedral variants from that buffer. Measured on generated
2048-px JPEGs: ~15x faster than pdqhash on the full decode, and a median of 0 bits (at
most 4) from the full-resolution hash (``bench/hashing.py``). The obvious shortcut --
shrink the bitmap to 512 px and run pdqhash on it, as Meta's reference C++ hasher does --
is slower and lands a median of ~12 bits (up to ~18) away, because PDQ's blur then
samples the smaller bitmap at slightly shifted positions.
``fast=False`` hashes the full-resolution decode with pdqhash, exactly as
python-threatexchange does.

**Text** (a ``text/*`` content type, or content that is entirely UTF-8 without NUL bytes):
the first ``MAX_TEXT_BYTES`` are normalised, shingled and MinHashed
(``domain.text_signals``; the numpy twin ``signatures_many`` does the arithmetic).

Images are hashed as stored: EXIF orientation is *not* applied (threatexchange/HMA do not
either); the dihedral variants cover rotated copies. Alpha is dropped, not composited
(as threatexchange and the reference hasher do). Animated images: first frame only.
"""

from __future__ import annotations

import hashlib
import io
import mimetypes
import os
import stat
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, Final, Protocol

import numpy as np
import numpy.typing as npt
import pdqhash
from PIL import Image

from cleanit.adapters.matching.text_index import signatures_many
from cleanit.domain.errors import InvalidInput
from cleanit.domain.signals import (
    DIHEDRAL_NAMES,
    PDQ_MIN_QUALITY,
    Hash,
    HashResult,
    SignalType,
)
from cleanit.domain.text_signals import format_signature, normalise_text, shingles

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "FAST_SIZE",
    "SUPPORTED_IMAGE_FORMATS",
    "ContentHasher",
    "ContentRejected",
    "ContentTooLarge",
    "CorruptImage",
    "EmptyContent",
    "Hasher",
    "ImageTooLarge",
    "UnreadableFile",
    "UnsupportedContent",
    "hash_bytes",
    "hash_file",
    "pdq_input",
]

#: Files larger than this are refused unless the caller passes another ``max_bytes``.
DEFAULT_MAX_BYTES: Final = 256 * 1024 * 1024
#: Images with more pixels than this are refused before decoding (decompression bombs).
#: Below Pillow's own warning limit (~89.5 megapixels), so ours speaks first.
DEFAULT_MAX_PIXELS: Final = 64_000_000
#: Read size for the streaming cryptographic hashes.
CHUNK_SIZE: Final = 1024 * 1024
#: The fast path decodes or box-reduces images to between this and twice this many
#: pixels a side (never below the image's own size) before computing PDQ.
FAST_SIZE: Final = 512
#: Image formats hashed perceptually; only these Pillow decoders see untrusted bytes.
SUPPORTED_IMAGE_FORMATS: Final = ("JPEG", "PNG", "GIF", "WebP", "BMP", "TIFF")
_SUPPORTED_LIST = ", ".join(SUPPORTED_IMAGE_FORMATS)
_HEAD = 4096  # bytes looked at to recognise a format
#: Text beyond this many bytes is not fingerprinted (a note says so).
MAX_TEXT_BYTES: Final = 1024 * 1024


# --- errors -----------------------------------------------------------------------------


class ContentRejected(InvalidInput):
    """The content cannot be hashed; ``detail`` says what is wrong with it."""

    code = "content-rejected"

    def __init__(self, detail: str, *, field: str | None = "file") -> None:
        super().__init__(detail, field=field)


class UnreadableFile(ContentRejected):
    code = "unreadable-file"


class EmptyContent(ContentRejected):
    code = "empty-file"


class ContentTooLarge(ContentRejected):
    code = "file-too-large"
    status = 413


class UnsupportedContent(ContentRejected):
    code = "unsupported-content"
    status = 415


class CorruptImage(ContentRejected):
    code = "corrupt-image"


class ImageTooLarge(ContentRejected):
    """Too many pixels: a decompression bomb, or just more than we agree to decode."""

    code = "image-too-large"


# --- the port ---------------------------------------------------------------------------


class Hasher(Protocol):
    """Turns content into signals. Results come in the order MD5, SHA-256, then PDQ."""

    def hash_file(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        content_type_hint: str | None = None,
    ) -> list[HashResult]: ...

    def hash_bytes(
        self,
        data: bytes,
        content_type_hint: str | None = None,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> list[HashResult]: ...


# --- recognising formats ----------------------------------------------------------------


_BMP_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})


def _sniff_supported(head: bytes) -> str | None:
    """The Pillow format name of a supported image, from its first bytes."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    # "BM" alone is too weak (any text may start so): also check the DIB header size.
    if head[:2] == b"BM" and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES:
        return "BMP"
    return None


_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}


def _sniff_unsupported_image(head: bytes) -> str | None:
    """Name of an image format we recognise but do not hash perceptually."""
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in _HEIF_BRANDS:
            return "HEIC/HEIF"
    if head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n")):
        return "JPEG XL"
    if head.startswith((b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")):
        return "JPEG 2000"
    if head.startswith(b"8BPS"):
        return "Photoshop (PSD)"
    if head.startswith(b"\x00\x00\x01\x00"):
        return "ICO"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "SVG"
    return None


def _declares_image(content_type_hint: str | None) -> bool:
    if not content_type_hint:
        return False
    return content_type_hint.split(";")[0].strip().lower().startswith("image/")


def _decode_text(raw: bytes, *, cut: bool, declared: bool) -> str | None:
    """The text in ``raw``, or None when it is not text (binary content)."""
    if b"\x00" in raw and not declared:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if cut and exc.start >= len(raw) - 3:  # the limit fell inside one character
            return _decode_text(raw[: exc.start], cut=False, declared=declared)
        if declared:
            return raw.decode("utf-8", errors="replace")
        return None


def text_result(raw: bytes, *, cut: bool, content_type_hint: str | None) -> HashResult | None:
    """The text MinHash signal of ``raw`` (at most MAX_TEXT_BYTES of it), None if not text."""
    kind = (content_type_hint or "").split(";")[0].strip().lower()
    if kind and kind != "application/octet-stream" and not kind.startswith("text/"):
        return None  # declared as something else (a PDF, a video): its bytes are not prose
    text = _decode_text(raw, cut=cut, declared=kind.startswith("text/"))
    if text is None:
        return None
    notes: tuple[str, ...] = ()
    if cut:
        notes = (f"only the first {MAX_TEXT_BYTES // 1024} KiB of the text are fingerprinted",)
    shingle_set = shingles(normalise_text(text))
    if not shingle_set:
        return HashResult(
            SignalType.TEXT_MINHASH, None, notes=("the text has no words to fingerprint",)
        )
    signature = format_signature([int(v) for v in signatures_many([shingle_set])[0]])
    return HashResult(
        SignalType.TEXT_MINHASH, Hash(SignalType.TEXT_MINHASH, signature), notes=notes
    )


def _classify(head: bytes, content_type_hint: str | None) -> str | None:
    """The Pillow format to decode, None for non-images; raises for images we refuse."""
    fmt = _sniff_supported(head)
    if fmt is not None:
        return fmt
    other = _sniff_unsupported_image(head)
    if other is not None:
        raise UnsupportedContent(
            f"{other} images are not supported for perceptual hashing; "
            f"supported image formats: {_SUPPORTED_LIST}"
        )
    if _declares_image(content_type_hint):
        raise UnsupportedContent(
            f"the content is said to be {content_type_hint} (by its content type or file "
            f"name) but is not an image in a supported format ({_SUPPORTED_LIST}): "
            "its first bytes match none of them"
        )
    return None


# --- hashing ----------------------------------------------------------------------------


def _hex(bits: npt.NDArray[np.integer]) -> str:
    """PDQ bit vector (most significant bit first, as pdqhash returns it) to hex."""
    return np.packbits(bits.astype(np.uint8)).tobytes().hex()


def _crypto_results(md5: str, sha256: str) -> list[HashResult]:
    return [
        HashResult(SignalType.MD5, Hash(SignalType.MD5, md5)),
        HashResult(SignalType.SHA256, Hash(SignalType.SHA256, sha256)),
    ]


def _too_large(max_bytes: int, size: int | None = None) -> ContentTooLarge:
    actual = "" if size is None else f" ({size:,} bytes)"
    return ContentTooLarge(f"file is larger than the limit of {max_bytes:,} bytes{actual}")


@dataclass(frozen=True, slots=True)
class ContentHasher:
    """The :class:`Hasher` for files and bytes.

    ``fast``: decode or reduce images to about ``fast_size`` pixels a side and compute
    PDQ's buffer from that (see the module docstring); ``fast=False``: pdqhash on the
    full-resolution bitmap. ``max_pixels``: refuse images with more pixels, before
    decoding. ``chunk_size``: read size for the streaming MD5/SHA-256.
    """

    fast: bool = True
    fast_size: int = FAST_SIZE
    max_pixels: int = DEFAULT_MAX_PIXELS
    chunk_size: int = CHUNK_SIZE

    def hash_file(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        content_type_hint: str | None = None,
    ) -> list[HashResult]:
        """Hash a file; a hint, if not given, is guessed from the file name's extension."""
        p = Path(path)
        if content_type_hint is None:
            content_type_hint = mimetypes.guess_type(p.name)[0]
        try:
            f = p.open("rb")
        except OSError as exc:
            raise UnreadableFile(f"cannot read {p}: {exc.strerror or exc}") from None
        with f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise UnreadableFile(f"{p} is not a regular file")
            if info.st_size == 0:
                raise EmptyContent(f"{p} is empty (0 bytes): there is nothing to hash")
            if info.st_size > max_bytes:
                raise _too_large(max_bytes, info.st_size)
            md5, sha256, head = self._stream(f, max_bytes)
            results = _crypto_results(md5, sha256)
            fmt = _classify(head, content_type_hint)
            f.seek(0)
            if fmt is not None:
                results.append(self._pdq(f, fmt))
            else:
                raw = f.read(MAX_TEXT_BYTES)
                found = text_result(
                    raw, cut=info.st_size > MAX_TEXT_BYTES, content_type_hint=content_type_hint
                )
                results.extend([found] if found else [])
            return results

    def hash_bytes(
        self,
        data: bytes,
        content_type_hint: str | None = None,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> list[HashResult]:
        """Hash content already in memory (an upload, a fetched object)."""
        if not data:
            raise EmptyContent("the content is empty (0 bytes): there is nothing to hash")
        if len(data) > max_bytes:
            raise _too_large(max_bytes, len(data))
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        results = _crypto_results(md5, hashlib.sha256(data).hexdigest())
        fmt = _classify(bytes(data[:_HEAD]), content_type_hint)
        if fmt is not None:
            results.append(self._pdq(io.BytesIO(data), fmt))
        else:
            found = text_result(
                bytes(data[:MAX_TEXT_BYTES]),
                cut=len(data) > MAX_TEXT_BYTES,
                content_type_hint=content_type_hint,
            )
            results.extend([found] if found else [])
        return results

    def _stream(self, f: io.BufferedIOBase, max_bytes: int) -> tuple[str, str, bytes]:
        """MD5, SHA-256 and the first bytes of ``f``, reading one chunk at a time."""
        md5 = hashlib.md5(usedforsecurity=False)
        sha256 = hashlib.sha256()
        buffer = bytearray(self.chunk_size)
        view = memoryview(buffer)
        head = b""
        total = 0
        while n := f.readinto(buffer):
            total += n
            if total > max_bytes:  # the file grew after we looked at its size
                raise _too_large(max_bytes)
            if len(head) < _HEAD:
                head += bytes(view[: min(n, _HEAD - len(head))])
            md5.update(view[:n])
            sha256.update(view[:n])
        if total == 0:
            raise EmptyContent("the file is empty (0 bytes): there is nothing to hash")
        return md5.hexdigest(), sha256.hexdigest(), head

    def _pdq(self, fp: IO[bytes], fmt: str) -> HashResult:
        notes: list[str] = []
        try:
            with Image.open(fp, formats=[fmt]) as image:
                width, height = image.size
                if width * height > self.max_pixels:
                    raise ImageTooLarge(
                        f"image is {width}x{height} = {width * height:,} pixels, over the "
                        f"limit of {self.max_pixels:,} (possible decompression bomb); "
                        "refused before decoding"
                    )
                notes.append(f"{fmt} {width}x{height}")
                if getattr(image, "is_animated", False):  # cheaper than counting frames
                    notes.append("several frames: PDQ of the first frame only")
                if self.fast:
                    luma = self._reduced_luma(image, fmt)
                else:
                    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
        except ContentRejected:
            raise
        except Image.DecompressionBombError as exc:
            raise ImageTooLarge(f"refused a possible decompression bomb: {exc}") from None
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - decoders raise many types on bad input
            raise CorruptImage(
                f"cannot decode this {fmt} image (corrupt or truncated?): {exc}"
            ) from None
        if min(width, height) < _MIN_PDQ_SIDE:
            notes.append(
                f"image too small ({width}x{height}) for a perceptual hash: PDQ needs at "
                f"least {_MIN_PDQ_SIDE} pixels a side; no PDQ hash returned"
            )
            return HashResult(SignalType.PDQ, None, quality=0, notes=tuple(notes))
        if self.fast:
            if luma.shape != (height, width):
                notes.append(f"decoded at {luma.shape[1]}x{luma.shape[0]} (fast path)")
            rgb = pdq_input(luma, width, height)
        vectors, quality = pdqhash.compute_dihedral(rgb)
        quality = int(quality)
        if quality < PDQ_MIN_QUALITY:
            notes.append(
                f"low quality ({quality} < {PDQ_MIN_QUALITY}): too little detail to match "
                "reliably; no PDQ hash returned"
            )
            return HashResult(SignalType.PDQ, None, quality=quality, notes=tuple(notes))
        dihedral = tuple(Hash(SignalType.PDQ, _hex(v)) for v in vectors)
        assert len(dihedral) == len(DIHEDRAL_NAMES)
        return HashResult(
            SignalType.PDQ, dihedral[0], quality=quality, notes=tuple(notes), dihedral=dihedral
        )

    def _reduced_luma(self, image: Image.Image, fmt: str) -> npt.NDArray[np.float32]:
        """The image's luma, decoded or box-reduced to about ``fast_size`` a side."""
        size = self.fast_size
        if fmt == "JPEG":  # libjpeg scales by 1/2, 1/4 or 1/8 while decoding
            image.draft("RGB", (size, size))
        if image.mode != "L":
            image = image.convert("RGB")
        factors = (max(1, image.width // size), max(1, image.height // size))
        if factors != (1, 1):  # box average over whole blocks, each axis on its own
            image = image.reduce(factors)
        if image.mode == "L":
            return np.asarray(image, dtype=np.float32)
        rgb = np.asarray(image, dtype=np.float32)
        luma: npt.NDArray[np.float32] = (
            rgb[:, :, 0] * _LUMA[0] + rgb[:, :, 1] * _LUMA[1] + rgb[:, :, 2] * _LUMA[2]
        )
        return luma


# --- PDQ's downsampling, as a matrix ------------------------------------------------------
#
# PDQ blurs the full-resolution luma with two passes of a box filter per axis (the
# "Jarosz filter", window ~ side/128) and keeps 64x64 samples of the result; only those
# 64x64 values feed its DCT, hash and quality. That stage is linear and separable, so for
# an image of H x W pixels the 64x64 buffer is ``rows(H) @ luma @ rows(W).T``, where
# ``rows(n)`` is a 64 x n matrix. When the image was reduced (JPEG DCT scaling, box
# reduction) each reduced pixel stands for the block of full-resolution pixels it covers,
# so the full-resolution weights of a block are summed onto it: the buffer is then what
# PDQ would have computed from the full bitmap, up to the detail the reduction lost.
# The 64x64 buffer goes to pdqhash as a 64x64 image, on which PDQ's blur is the identity
# (window 1) and its sampling keeps every pixel: pdqhash computes DCT, hash, quality and
# the dihedral variants from our buffer (to within 0.1 grey level, see pdq_input).
# tests/adapters/test_signals.py proves the matrix equal to pdqhash's own filter.

_MIN_PDQ_SIDE = 5  # pdqhash's MIN_HASHABLE_DIM: smaller images get no hash
_LUMA = (0.299, 0.587, 0.114)  # PDQ's luma weights (Rec. 601)
# One grey-level step added to each subset of (R, G, B), and the luma each adds.
_STEPS = np.array(
    [[0, 0, 0], [0, 0, 1], [1, 0, 0], [1, 0, 1], [0, 1, 0], [0, 1, 1], [1, 1, 0], [1, 1, 1]],
    dtype=np.uint8,
)
_STEP_LUMA = _STEPS @ np.array(_LUMA)


@lru_cache(maxsize=128)
def _pdq_taps(full: int, reduced: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float32]]:
    """PDQ's blur-and-sample of a ``full``-pixel line, applied to the same line after it
    was reduced to ``reduced`` pixels: for each of the 64 samples, the indices (64 x k)
    and weights (64 x k) of the reduced pixels it sums (a sparse 64 x ``reduced`` matrix).
    """
    window = (full + 127) // 128  # computeJaroszFilterWindowSize(full, 64)
    left = (window - 1) // 2  # pdqhash's box covers [i - left, i + window - 1 - left]
    index = np.arange(full)
    lo = np.maximum(index - left, 0)
    hi = np.minimum(index + window - 1 - left, full - 1)
    count = hi - lo + 1
    block = np.minimum(((index + 0.5) * reduced / full).astype(np.int64), reduced - 1)
    dense = np.zeros((64, reduced))
    for r in range(64):
        centre = int(((r + 0.5) * full) / 64)  # decimateFloat's sample
        inner = np.arange(lo[centre], hi[centre] + 1)  # first pass: these outputs...
        weight = 1.0 / (count[centre] * count[inner])  # ...each a box of its own
        edges = np.zeros(full + 1)
        np.add.at(edges, lo[inner], weight)
        np.add.at(edges, hi[inner] + 1, -weight)
        line = np.cumsum(edges[:-1])  # full-resolution weights of this sample
        dense[r] = np.bincount(block, weights=line, minlength=reduced)
    dense[np.abs(dense) < 1e-12] = 0.0  # cumsum leaves dust outside the support
    nonzero = dense != 0
    first = nonzero.argmax(axis=1)
    last = reduced - 1 - nonzero[:, ::-1].argmax(axis=1)
    taps = int((last - first).max()) + 1
    positions = first[:, np.newaxis] + np.arange(taps)
    weights = np.where(
        positions <= last[:, np.newaxis],
        np.take_along_axis(dense, np.minimum(positions, reduced - 1), axis=1),
        0.0,
    )
    return np.minimum(positions, reduced - 1).astype(np.intp), weights.astype(np.float32)


def pdq_input(luma: npt.NDArray[np.float32], width: int, height: int) -> npt.NDArray[np.uint8]:
    """The 64x64 PDQ buffer of a ``width`` x ``height`` image, from its (reduced) luma,
    as the 64x64x3 grey image pdqhash takes."""
    row_index, row_weight = _pdq_taps(height, luma.shape[0])
    col_index, col_weight = _pdq_taps(width, luma.shape[1])
    rows = np.einsum("rk,rkw->rw", row_weight, luma[row_index])  # 64 x width'
    buffer = np.einsum("ck,rck->rc", col_weight, rows[:, col_index])  # 64 x 64
    # pdqhash takes 8-bit RGB and computes luma 0.299 R + 0.587 G + 0.114 B. Grey v plus
    # one step on some channels gives v + 0, .114, .299, ..., 1: within 0.1 of any value,
    # where rounding to whole grey levels (off by up to 0.5) flips bits near the median.
    base = np.clip(np.floor(buffer), 0, 254)
    step = np.abs((buffer - base)[:, :, np.newaxis] - _STEP_LUMA).argmin(axis=2)
    rgb: npt.NDArray[np.uint8] = base.astype(np.uint8)[:, :, np.newaxis] + _STEPS[step]
    return rgb


_FAST = ContentHasher(fast=True)
_FULL = ContentHasher(fast=False)


def hash_file(
    path: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    content_type_hint: str | None = None,
    fast: bool = True,
) -> list[HashResult]:
    """MD5, SHA-256 and (for images) PDQ of the file at ``path``; see :class:`ContentHasher`."""
    hasher = _FAST if fast else _FULL
    return hasher.hash_file(path, max_bytes=max_bytes, content_type_hint=content_type_hint)


def hash_bytes(
    data: bytes,
    content_type_hint: str | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    fast: bool = True,
) -> list[HashResult]:
    """MD5, SHA-256 and (for images) PDQ of ``data``; see :class:`ContentHasher`."""
    hasher = _FAST if fast else _FULL
    return hasher.hash_bytes(data, content_type_hint, max_bytes=max_bytes)
