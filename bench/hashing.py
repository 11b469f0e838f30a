"""Benchmark: PDQ hashing speed of cleanit's hasher vs raw pdqhash, and fast-path accuracy.

Run:  python bench/hashing.py [--sizes 512 1024 2048] [--images 24] [--json]

Images are generated (gradients, shapes, rendered text, noise; never real content) and
saved as JPEG (quality 90), square, at each size. For each size, in one process:

* speed, in images per second, from JPEG bytes to hash, of
  - ``raw pdqhash``: full decode with Pillow + ``pdqhash.compute`` -- exactly what
    python-threatexchange's ``pdq_from_bytes`` does; the baseline (ratio 1.00);
  - ``cleanit full``: ``hash_bytes(..., fast=False)`` (MD5 + SHA-256 + the eight dihedral
    PDQ hashes of the full-resolution decode);
  - ``cleanit fast``: ``hash_bytes(...)`` with the default fast path (JPEG decoded at
    ~512 px a side, PDQ's own blur-and-sample applied to it as a matrix), and the same
    decoded at ~256 px;
  - ``naive shrink``: decode at reduced size, resize to at most 512 px, pdqhash -- the
    shortcut Meta's reference hasher takes, for comparison;
* the Hamming distance between each image's fast-path PDQ hash and its full-resolution
  hash (min / median / p95 / max) -- how much of the usual match threshold (31) the fast
  path uses up. 0 would mean identical hashes.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pdqhash
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cleanit.adapters.signals import ContentHasher
from cleanit.domain.signals import SignalType, pdq_distance


def make_jpeg(size: int, seed: int) -> bytes:
    """A benign synthetic picture: smooth colour waves, shapes, a line of text, noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    channels = [
        128 + 100 * np.sin(2 * np.pi * (x * rng.uniform(0.3, 2) + y * rng.uniform(0.3, 2)) + p)
        for p in rng.uniform(0, 6, 3)
    ]
    image = Image.fromarray(np.stack(channels, -1).clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = (int(v) for v in rng.integers(0, size, 2))
        w, h = (int(v) for v in rng.integers(size // 16, size // 3, 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        shape = draw.rectangle if rng.random() < 0.5 else draw.ellipse
        shape([x0, y0, x0 + w, y0 + h], fill=colour)
    font = ImageFont.load_default(size=max(10, size // 12))
    draw.text((size * 0.08, size * 0.42), f"EXAMPLE {seed}", fill=(255, 255, 255), font=font)
    pixels = np.asarray(image).astype(np.int16) + rng.integers(-12, 13, (size, size, 3))
    out = io.BytesIO()
    Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(out, "JPEG", quality=90)
    return out.getvalue()


def raw_pdqhash(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as image:
        pixels = np.asarray(image.convert("RGB"))
    bits, _quality = pdqhash.compute(pixels)
    return bytes(np.packbits(bits.astype(np.uint8))).hex()


def naive_shrink(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (512, 512))
        rgb = image.convert("RGB")
    if rgb.width > 512 or rgb.height > 512:
        rgb = rgb.resize((min(rgb.width, 512), min(rgb.height, 512)), Image.Resampling.BOX)
    bits, _quality = pdqhash.compute(np.asarray(rgb))
    return bytes(np.packbits(bits.astype(np.uint8))).hex()


def pdq_of(hasher: ContentHasher) -> Callable[[bytes], str]:
    def run(data: bytes) -> str:
        results = hasher.hash_bytes(data, "image/jpeg")
        pdq = next(r for r in results if r.signal_type is SignalType.PDQ)
        assert pdq.hash is not None, pdq.notes
        return pdq.hash.value

    return run


def rate(fn: Callable[[bytes], str], images: list[bytes], min_seconds: float) -> float:
    """Images per second, cycling through ``images`` for at least ``min_seconds``."""
    fn(images[0])  # warm up
    done = 0
    start = time.perf_counter()
    while True:
        fn(images[done % len(images)])
        done += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and done >= 3:
            return done / elapsed


def percentile(values: list[int], q: float) -> float:
    return float(np.percentile(np.array(values), q, method="nearest"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--images", type=int, default=24, help="images per size")
    parser.add_argument("--seconds", type=float, default=2.0, help="min timing per method")
    parser.add_argument("--json", action="store_true", help="write bench/results/hashing.json")
    args = parser.parse_args()

    methods: dict[str, Callable[[bytes], str]] = {
        "raw pdqhash (full decode)": raw_pdqhash,
        "cleanit full (fast=False)": pdq_of(ContentHasher(fast=False)),
        "cleanit fast (512, default)": pdq_of(ContentHasher(fast=True)),
        "cleanit fast (256)": pdq_of(ContentHasher(fast=True, fast_size=256)),
        "naive shrink to 512 + pdqhash": naive_shrink,
    }
    report: dict[str, Any] = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "images_per_size": args.images,
        "sizes": {},
    }
    print(f"PDQ hashing of generated JPEGs, {args.images} images per size (images/s)\n")
    for size in args.sizes:
        images = [make_jpeg(size, seed=size * 1000 + i) for i in range(args.images)]
        rates = {name: rate(fn, images, args.seconds) for name, fn in methods.items()}
        baseline = rates["raw pdqhash (full decode)"]
        full = [methods["cleanit full (fast=False)"](d) for d in images]
        raw = [raw_pdqhash(d) for d in images]
        assert full == raw, "full-resolution path must equal raw pdqhash"
        distances = {
            name: [pdq_distance(methods[name](d), f) for d, f in zip(images, full, strict=True)]
            for name in (
                "cleanit fast (512, default)",
                "cleanit fast (256)",
                "naive shrink to 512 + pdqhash",
            )
        }
        entry: dict[str, Any] = {"rates": {}, "fast_vs_full_distance": {}}
        print(f"{size}x{size} JPEG ({sum(map(len, images)) // len(images) // 1024} KiB avg)")
        for name, value in rates.items():
            ratio = value / baseline
            entry["rates"][name] = {"images_per_s": round(value, 2), "ratio": round(ratio, 2)}
            print(f"  {name:30} {value:8.1f}/s   x{ratio:5.2f}")
        for name, values in distances.items():
            stats = {
                "min": min(values),
                "median": statistics.median(values),
                "p95": percentile(values, 95),
                "max": max(values),
            }
            entry["fast_vs_full_distance"][name] = stats
            print(
                f"  distance {name} vs full: min {stats['min']} median {stats['median']} "
                f"p95 {stats['p95']:.0f} max {stats['max']}"
            )
        report["sizes"][str(size)] = entry
        print()
    if args.json:
        out = Path(__file__).resolve().parent / "results" / "hashing.json"
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
