"""Hashing content into signals: PDQ compatible with python-threatexchange, a fast path
that stays within a few bits of it, dihedral variants that catch mirrored and rotated
copies, streaming MD5/SHA-256, and clear refusals of bad input.

Every image here is generated (gradients, shapes, rendered text, noise): never real content.
"""

from __future__ import annotations

import hashlib
import io
import mimetypes
import os
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pdqhash
import pytest
from PIL import Image, ImageDraw, ImageFont, ImageOps
from threatexchange.signal_type.pdq.pdq_utils import PDQ_CONFIDENT_MATCH_THRESHOLD
from threatexchange.signal_type.pdq.signal import PdqSignal

from cleanit.adapters.signals import (
    CHUNK_SIZE,
    ContentHasher,
    ContentRejected,
    ContentTooLarge,
    CorruptImage,
    EmptyContent,
    Hasher,
    ImageTooLarge,
    UnreadableFile,
    UnsupportedContent,
    _pdq_taps,
    hash_bytes,
    hash_file,
)
from cleanit.domain.errors import InvalidInput
from cleanit.domain.signals import (
    DIHEDRAL_NAMES,
    PDQ_MATCH_THRESHOLD,
    PDQ_MIN_QUALITY,
    HashResult,
    SignalType,
    min_pdq_distance,
    pdq_distance,
    signal_distance,
)
from cleanit.domain.text_signals import format_signature, text_signature

# --- generated images -------------------------------------------------------------------


def scene(width: int, height: int, seed: int) -> Image.Image:
    """Smooth colour waves, a dozen rectangles and ellipses, a line of text, mild noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    x, y = x / width, y / height
    channels = [
        128 + 100 * np.sin(2 * np.pi * (x * rng.uniform(0.3, 2) + y * rng.uniform(0.3, 2)) + p)
        for p in rng.uniform(0, 6, 3)
    ]
    image = Image.fromarray(np.stack(channels, -1).clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    side = min(width, height)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        w, h = (int(v) for v in rng.integers(side // 16, side // 3, 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        shape = draw.rectangle if rng.random() < 0.5 else draw.ellipse
        shape([x0, y0, x0 + w, y0 + h], fill=colour)
    font = ImageFont.load_default(size=max(10, side // 12))
    draw.text((width * 0.08, height * 0.42), f"EXAMPLE {seed}", fill=(255, 255, 255), font=font)
    noise = rng.integers(-12, 13, (height, width, 3))
    return Image.fromarray((np.asarray(image).astype(np.int16) + noise).clip(0, 255).astype("u1"))


def encode(image: Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        options.setdefault("quality", 90)
    image.save(out, fmt, **options)
    return out.getvalue()


def pdq(results: list[HashResult]) -> HashResult:
    assert [r.signal_type for r in results] == [SignalType.MD5, SignalType.SHA256, SignalType.PDQ]
    return results[2]


def pdq_hex(data: bytes, *, fast: bool = True) -> str:
    result = pdq(hash_bytes(data, fast=fast))
    assert result.hash is not None, result.notes
    return result.hash.value


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return scene(1024, 768, seed=1)


@pytest.fixture(scope="module")
def photo_jpeg(photo: Image.Image) -> bytes:
    return encode(photo)


# --- PDQ: compatibility, determinism, the fast path -------------------------------------


def test_thresholds_are_threatexchanges() -> None:
    assert PDQ_MIN_QUALITY == PdqSignal.QUALITY_THRESHOLD
    assert PDQ_MATCH_THRESHOLD == PDQ_CONFIDENT_MATCH_THRESHOLD


@pytest.mark.parametrize(
    "make",
    [
        lambda: encode(scene(640, 480, 2)),
        lambda: encode(scene(333, 517, 3), "PNG"),
        lambda: encode(scene(400, 400, 4).convert("L"), "PNG"),
        lambda: encode(scene(300, 200, 5).convert("L")),
    ],
    ids=["rgb-jpeg", "rgb-png-odd-size", "grey-png", "grey-jpeg"],
)
def test_full_resolution_pdq_is_exactly_threatexchanges(make: object) -> None:
    data = make()  # type: ignore[operator]
    result = pdq(hash_bytes(data, fast=False))
    assert result.hash is not None
    assert result.hash.value == PdqSignal.hash_from_bytes(data)
    assert result.quality == 100


def test_same_image_gives_the_same_hashes_every_time(photo_jpeg: bytes, tmp_path: Path) -> None:
    hasher: Hasher = ContentHasher()
    first = hash_bytes(photo_jpeg)
    again = hasher.hash_bytes(photo_jpeg)
    path = tmp_path / "picture.jpg"
    path.write_bytes(photo_jpeg)
    assert first == again == hash_file(path)
    result = pdq(first)
    assert result.hash is not None and result.quality is not None
    assert PDQ_MIN_QUALITY <= result.quality <= 100
    assert result.notes == ("JPEG 1024x768", "decoded at 512x768 (fast path)")
    assert len(result.dihedral) == len(DIHEDRAL_NAMES) == 8
    assert result.dihedral[0] == result.hash
    assert len(set(result.dihedral)) == 8


def test_pdq_filter_matrix_equals_pdqhash_own_filter() -> None:
    """The fast path's sparse matrix reproduces pdqhash's blur-and-sample exactly: the DCT
    of our 64x64 buffer equals pdqhash's own float output for random images."""
    dct = np.array(
        [
            [np.sqrt(2 / 64) * np.cos(np.pi / 128 * (i + 1) * (2 * j + 1)) for j in range(64)]
            for i in range(16)
        ]
    )
    rng = np.random.default_rng(7)
    for height, width in [(64, 64), (200, 311), (777, 1024), (5, 9)]:
        rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        luma = rgb[:, :, 0] * 0.299 + rgb[:, :, 1] * 0.587 + rgb[:, :, 2] * 0.114
        (ri, rw), (ci, cw) = _pdq_taps(height, height), _pdq_taps(width, width)
        rows = np.einsum("rk,rkw->rw", rw.astype(float), luma[ri])
        buffer = np.einsum("ck,rck->rc", cw.astype(float), rows[:, ci])
        ours = dct @ buffer @ dct.T
        theirs = np.asarray(pdqhash.compute_float(rgb)[0]).reshape(16, 16)[::-1, ::-1]
        assert np.abs(ours - theirs).max() < 0.01, (height, width)


@pytest.mark.parametrize(
    ("width", "height", "fmt"),
    [
        (2048, 1536, "JPEG"),
        (1501, 997, "JPEG"),
        (2100, 1100, "PNG"),
        (700, 1900, "PNG"),
        (480, 360, "JPEG"),
    ],
)
def test_fast_path_lands_within_a_few_bits_of_the_full_resolution_hash(
    width: int, height: int, fmt: str
) -> None:
    data = encode(scene(width, height, seed=width), fmt)
    fast, full = pdq(hash_bytes(data)), pdq(hash_bytes(data, fast=False))
    assert fast.hash is not None and full.hash is not None
    assert fast.notes[0] == full.notes[0] == f"{fmt} {width}x{height}"
    # JPEG: libjpeg decodes at 1/2, 1/4 or 1/8; then box reduction by whole factors per axis
    reduced = {(2048, 1536): "512x768", (2100, 1100): "525x550", (700, 1900): "700x634"}
    if (width, height) in reduced:
        assert fast.notes[1] == f"decoded at {reduced[width, height]} (fast path)"
    assert pdq_distance(fast.hash, full.hash) <= 4
    assert fast.quality == full.quality
    # the dihedral variants agree just as closely
    for ours, theirs in zip(fast.dihedral, full.dihedral, strict=True):
        assert pdq_distance(ours, theirs) <= 4


@pytest.mark.parametrize(
    ("fmt", "options"),
    [("WEBP", {"lossless": True}), ("BMP", {}), ("TIFF", {}), ("GIF", {}), ("PNG", {})],
)
def test_every_supported_lossless_format_hashes_the_same_pixels_alike(
    fmt: str, options: dict[str, object]
) -> None:
    image = scene(700, 520, seed=21)
    if fmt == "GIF":
        image = image.convert("P")
    reference = pdq_hex(encode(image.convert("RGB"), "PNG"), fast=False)
    data = encode(image, fmt, **options)
    assert pdq(hash_bytes(data)).notes[0] == f"{fmt} 700x520"
    assert pdq_hex(data, fast=False) == reference
    assert pdq_distance(pdq_hex(data), reference) <= 4


def test_progressive_jpeg_takes_the_fast_path_too() -> None:
    data = encode(scene(1200, 1100, seed=22), progressive=True)
    assert pdq_distance(pdq_hex(data), pdq_hex(data, fast=False)) <= 4


@pytest.mark.parametrize("mode", ["P", "RGBA", "LA", "CMYK", "1", "I;16"])
def test_other_pixel_modes_hash_like_their_rgb_rendering(mode: str) -> None:
    base = scene(320, 240, seed=11)
    image = base.convert(mode)
    fmt = {"CMYK": "JPEG", "1": "PNG", "I;16": "PNG"}.get(mode, "PNG")
    data = encode(image, fmt)
    with Image.open(io.BytesIO(data)) as decoded:
        reference = encode(decoded.convert("RGB"), "PNG")
    expected = pdq_hex(reference, fast=False)
    assert pdq_hex(data, fast=False) == expected
    assert pdq_distance(pdq_hex(data), expected) <= 4


def test_recompressed_and_resized_copies_stay_close(photo: Image.Image, photo_jpeg: bytes) -> None:
    original = pdq_hex(photo_jpeg)
    copies = {
        "jpeg q40": encode(photo, quality=40),
        "half size": encode(photo.resize((512, 384), Image.Resampling.BILINEAR)),
        "png": encode(photo, "PNG"),
        "slightly brighter": encode(photo.point(lambda v: min(255, v + 12))),
    }
    for name, data in copies.items():
        assert pdq_distance(original, pdq_hex(data)) < PDQ_MATCH_THRESHOLD, name


def test_unrelated_images_are_far_apart() -> None:
    hashes = [pdq_hex(encode(scene(400, 300, seed=100 + i))) for i in range(5)]
    distances = [pdq_distance(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :]]
    assert min(distances) > 60  # random 256-bit hashes sit ~128 apart; 31 is a match


@pytest.mark.parametrize(
    ("name", "transform", "expected_variants"),
    [
        ("mirrored", ImageOps.mirror, {"flip_x", "flip_y"}),
        ("upside down", ImageOps.flip, {"flip_x", "flip_y"}),
        (
            "rotated 90",
            lambda im: im.transpose(Image.Transpose.ROTATE_90),
            {"rotate90", "rotate270"},
        ),
        (
            "rotated 270",
            lambda im: im.transpose(Image.Transpose.ROTATE_270),
            {"rotate90", "rotate270"},
        ),
        ("rotated 180", lambda im: im.transpose(Image.Transpose.ROTATE_180), {"rotate180"}),
    ],
)
def test_mirrored_and_rotated_copies_match_a_dihedral_variant(
    photo: Image.Image,
    photo_jpeg: bytes,
    name: str,
    transform: object,
    expected_variants: set[str],
) -> None:
    original = pdq(hash_bytes(photo_jpeg))
    assert original.hash is not None
    copy = pdq_hex(encode(transform(photo), quality=80))  # type: ignore[operator]
    assert pdq_distance(copy, original.hash) > PDQ_MATCH_THRESHOLD  # a plain lookup misses it
    distances = [pdq_distance(copy, variant) for variant in original.dihedral]
    assert min_pdq_distance(copy, original.dihedral) == min(distances) <= PDQ_MATCH_THRESHOLD
    assert DIHEDRAL_NAMES[distances.index(min(distances))] in expected_variants, name


def test_flat_image_is_low_quality_and_gives_no_matchable_hash() -> None:
    flat = encode(Image.new("RGB", (300, 200), (40, 90, 160)), "PNG")
    for fast in (True, False):
        results = hash_bytes(flat, fast=fast)
        result = pdq(results)
        assert result.hash is None and not result.matchable
        assert result.dihedral == ()
        assert result.quality is not None and result.quality < PDQ_MIN_QUALITY
        assert any(n.startswith("low quality") for n in result.notes)
        assert results[0].hash is not None  # the exact hashes are still there
        assert results[0].hash.value == hashlib.md5(flat, usedforsecurity=False).hexdigest()


def test_tiny_image_gives_no_pdq_hash() -> None:
    noise = np.random.default_rng(1).integers(0, 256, (4, 40, 3), dtype=np.uint8)
    result = pdq(hash_bytes(encode(Image.fromarray(noise), "PNG")))
    assert result.hash is None and result.quality == 0
    assert any("too small (40x4)" in n for n in result.notes)


def test_animated_gif_hashes_its_first_frame() -> None:
    frames = [scene(200, 150, seed=s).convert("P") for s in (30, 31, 32)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100)
    result = pdq(hash_bytes(out.getvalue()))
    assert result.hash is not None
    assert "several frames: PDQ of the first frame only" in result.notes
    assert result.hash.value == pdq_hex(encode(frames[0], "GIF"))


# --- MD5 and SHA-256 --------------------------------------------------------------------


def test_md5_and_sha256_equal_hashlib_for_a_file_bigger_than_a_chunk(tmp_path: Path) -> None:
    data = os.urandom(2 * CHUNK_SIZE + 12345)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    for results in (hash_file(path), hash_bytes(data)):
        assert len(results) == 2  # not an image: no PDQ
        md5, sha256 = results
        assert md5.hash is not None and sha256.hash is not None
        assert md5.hash.value == hashlib.md5(data, usedforsecurity=False).hexdigest()
        assert sha256.hash.value == hashlib.sha256(data).hexdigest()
        assert md5.quality is None and md5.dihedral == ()
    small_chunks = ContentHasher(chunk_size=1000).hash_file(path)
    assert small_chunks == hash_file(path)


def test_files_are_hashed_without_reading_them_whole(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    with path.open("wb") as f:
        for _ in range(24):
            f.write(os.urandom(1024 * 1024))
    tracemalloc.start()
    try:
        results = hash_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert results[1].hash is not None
    assert peak < 4 * 1024 * 1024  # a 24 MiB file, about one 1 MiB chunk in memory


def test_images_are_hashed_from_files_too(tmp_path: Path, photo_jpeg: bytes) -> None:
    path = tmp_path / "upload"  # no extension: the content decides
    path.write_bytes(photo_jpeg)
    assert hash_file(path) == hash_bytes(photo_jpeg)
    assert hash_file(path, fast=False) == hash_bytes(photo_jpeg, fast=False)


# --- refusals ---------------------------------------------------------------------------


def refused(
    error: type[ContentRejected], data: bytes, tmp_path: Path, name: str, **kw: object
) -> str:
    """The same refusal from hash_bytes and from hash_file; returns the message."""
    with pytest.raises(error) as from_bytes:
        hash_bytes(data, **kw)  # type: ignore[arg-type]
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(error) as from_file:
        hash_file(path, **kw)  # type: ignore[arg-type]
    for err in (from_bytes.value, from_file.value):
        assert isinstance(err, InvalidInput)
        assert err.field == "file"
    return str(from_bytes.value)


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels but carries almost no data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_truncated_image_is_refused(tmp_path: Path, photo_jpeg: bytes) -> None:
    half = photo_jpeg[: len(photo_jpeg) // 2]
    for fast in (True, False):
        message = refused(CorruptImage, half, tmp_path, "half.jpg", fast=fast)
        assert "cannot decode this JPEG image (corrupt or truncated?)" in message
        assert "truncated" in message


def test_corrupt_image_is_refused(tmp_path: Path) -> None:
    garbage = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8
    message = refused(CorruptImage, garbage, tmp_path, "garbage.jpg")
    assert "cannot decode this JPEG image" in message
    png = encode(scene(64, 64, 1), "PNG")
    broken = png[:40] + bytes(len(png) - 40)  # header intact, data zeroed
    assert "PNG" in refused(CorruptImage, broken, tmp_path, "broken.png")


@pytest.mark.filterwarnings("ignore:Truncated File Read:UserWarning")  # Pillow's TIFF reader
def test_damaged_images_are_refused_cleanly_or_hashed() -> None:
    """Random truncations and byte flips in every supported format: the outcome is a
    result or a ContentRejected with a message, never another exception."""
    base = scene(120, 90, seed=3)
    samples = [encode(base.convert("P"), "GIF")]
    samples += [encode(base, fmt) for fmt in ("JPEG", "PNG", "BMP", "TIFF", "WEBP")]
    rng = np.random.default_rng(5)
    outcomes: set[str] = set()
    for _ in range(150):
        data = bytearray(samples[int(rng.integers(len(samples)))])
        if rng.random() < 0.3:
            data = data[: int(rng.integers(1, len(data)))]
        else:
            for position in rng.integers(0, len(data), int(rng.integers(1, 10))):
                data[int(position)] = int(rng.integers(256))
        for fast in (True, False):
            try:
                hash_bytes(bytes(data), fast=fast)
                outcomes.add("hashed")
            except ContentRejected as err:
                assert err.detail and err.field == "file"
                outcomes.add(type(err).__name__)
    assert {"hashed", "CorruptImage"} <= outcomes


def test_decompression_bombs_are_refused_before_decoding(tmp_path: Path) -> None:
    # 9000 x 9000 = 81 million pixels: over our limit (64 M), under Pillow's.
    message = refused(ImageTooLarge, png_header(9000, 9000), tmp_path, "big.png")
    assert "9000x9000 = 81,000,000 pixels, over the limit of 64,000,000" in message
    assert "decompression bomb" in message
    # 50000 x 50000: Pillow itself raises DecompressionBombError; still our error.
    message = refused(ImageTooLarge, png_header(50000, 50000), tmp_path, "huge.png")
    assert "decompression bomb" in message
    # the limit is configurable; a small real image over it is refused too
    with pytest.raises(ImageTooLarge, match="100x100 = 10,000 pixels"):
        ContentHasher(max_pixels=9_999).hash_bytes(encode(scene(100, 100, 1)))


def test_oversized_content_is_refused(tmp_path: Path, photo_jpeg: bytes) -> None:
    limit = len(photo_jpeg) - 1
    message = refused(ContentTooLarge, photo_jpeg, tmp_path, "big.jpg", max_bytes=limit)
    assert f"larger than the limit of {limit:,} bytes" in message
    assert ContentTooLarge.status == 413
    assert hash_bytes(photo_jpeg, max_bytes=len(photo_jpeg))  # exactly at the limit is fine


@pytest.mark.parametrize(
    ("data", "name", "hint", "expected"),
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>', "a.svg", None, "SVG images"),
        (b'<?xml version="1.0"?>\n<svg></svg>', "b.svg", None, "SVG images"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "c.heic", None, "HEIC/HEIF"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1", "d.avif", None, "AVIF images"),
        (b"8BPS\x00\x01" + bytes(40), "e.psd", None, "Photoshop (PSD)"),
        (b"just some text, not a picture", "f.png", None, "said to be image/png"),
        (b"just some text, not a picture", "g.bin", "image/jpeg; q=1", "said to be image/jpeg"),
    ],
)
def test_unsupported_types_are_refused(
    tmp_path: Path, data: bytes, name: str, hint: str | None, expected: str
) -> None:
    with pytest.raises(UnsupportedContent) as err:
        hash_bytes(data, hint or mimetypes.guess_type(name)[0])
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(UnsupportedContent) as from_file:
        hash_file(path, content_type_hint=hint)
    assert expected in str(from_file.value)
    assert "JPEG, PNG, GIF, WebP, BMP, TIFF" in str(err.value)
    assert err.value.status == 415 and err.value.field == "file"


def test_other_files_get_exact_hashes_only(tmp_path: Path) -> None:
    binary = bytes(range(256)) * 4
    for name, data in {"doc.pdf": b"%PDF-1.7 ...", "blob.bin": binary}.items():
        path = tmp_path / name
        path.write_bytes(data)
        results = hash_file(path)
        assert [r.signal_type for r in results] == [SignalType.MD5, SignalType.SHA256]
        assert results[1].hash is not None
        assert results[1].hash.value == hashlib.sha256(data).hexdigest()
    assert [r.signal_type for r in hash_bytes(binary)] == [SignalType.MD5, SignalType.SHA256]


def test_text_gets_a_minhash_signature_that_survives_small_edits(tmp_path: Path) -> None:
    words = " ".join(f"word{i} example{i % 7}" for i in range(200))
    path = tmp_path / "notes.txt"
    path.write_text(words, encoding="utf-8")
    from_file = {r.signal_type: r for r in hash_file(path)}
    from_bytes = {r.signal_type: r for r in hash_bytes(words.encode())}  # sniffed, no hint
    text = from_file[SignalType.TEXT_MINHASH].hash
    assert text is not None and text == from_bytes[SignalType.TEXT_MINHASH].hash
    assert text.value == format_signature(text_signature(words))  # the pure-Python twin
    edited = words.replace("word5 ", "WORD-5!! ").upper() + " plus a few appended words"
    other = {r.signal_type: r for r in hash_bytes(edited.encode(), "text/plain")}
    other_hash = other[SignalType.TEXT_MINHASH].hash
    assert other_hash is not None
    assert signal_distance(SignalType.TEXT_MINHASH, text.value, other_hash.value) <= 10
    # Punctuation only: no words, so no signal, and a note saying why.
    (empty,) = [r for r in hash_bytes(b"!!! ... ???") if r.signal_type is SignalType.TEXT_MINHASH]
    assert empty.hash is None and "no words" in empty.notes[0]
    # A long text is fingerprinted on its first MiB, and says so.
    big = ("lorem ipsum " * 100_000).encode()
    (long,) = [r for r in hash_bytes(big) if r.signal_type is SignalType.TEXT_MINHASH]
    assert long.hash is not None and "first 1024 KiB" in long.notes[0]


def test_empty_missing_and_non_regular_files_are_refused(tmp_path: Path) -> None:
    message = refused(EmptyContent, b"", tmp_path, "empty.jpg")
    assert "empty (0 bytes)" in message
    with pytest.raises(UnreadableFile, match=r"cannot read .*missing\.jpg: No such file"):
        hash_file(tmp_path / "missing.jpg")
    with pytest.raises(UnreadableFile, match="Is a directory"):
        hash_file(tmp_path)
    with pytest.raises(UnreadableFile, match="/dev/null is not a regular file"):
        hash_file("/dev/null")
