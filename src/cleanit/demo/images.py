"""Generated benign pictures for the demo bank: coloured shapes, never real content.

``known(slug)`` stands in for "known content"; ``copy_of(image)`` makes the kind of copy a
re-uploader would make (mirrored, resized, recompressed) so the demo can show it is caught.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

KNOWN = ("blue-squares", "gradient-poster")


def known(slug: str, size: int = 640) -> Image.Image:
    """A deterministic picture of shapes on a gradient, drawn from the slug."""
    h = hashlib.sha256(slug.encode()).digest()
    img = Image.new("RGB", (size, size * 3 // 4))
    draw = ImageDraw.Draw(img)
    for y in range(img.height):  # a vertical gradient between two colours of the slug
        t = y / img.height
        draw.line(
            [(0, y), (img.width, y)],
            fill=tuple(int(h[i] * (1 - t) + h[i + 3] * t) for i in range(3)),
        )
    # Enough shapes for PDQ to see detail (a plain picture has too little to match on).
    stream = b"".join(hashlib.sha256(h + bytes([n])).digest() for n in range(12))
    for i in range(0, len(stream) - 7, 7):
        x, y = stream[i] * size // 256, stream[i + 1] * img.height // 256
        w, hh = 20 + stream[i + 2] % 120, 20 + stream[i + 3] % 90
        colour = (stream[i + 4], stream[i + 5], stream[i + 6])
        if i % 2:
            draw.ellipse([x, y, x + w, y + hh], fill=colour)
        else:
            draw.rectangle([x, y, x + w, y + hh], fill=colour)
    return img


def copy_of(img: Image.Image) -> bytes:
    """A mirrored, shrunk, recompressed copy (as JPEG bytes)."""
    changed = ImageOps.mirror(img).resize((img.width * 2 // 3, img.height * 2 // 3))
    out = io.BytesIO()
    changed.save(out, format="JPEG", quality=70)
    return out.getvalue()


def jpeg(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=92)
    return out.getvalue()


def write_demo_images(folder: Path) -> list[Path]:
    """Originals, their re-uploaded copies, and one unrelated picture, as JPEG files."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for slug in KNOWN:
        img = known(slug)
        for name, data in ((f"{slug}.jpg", jpeg(img)), (f"{slug}-reupload.jpg", copy_of(img))):
            (folder / name).write_bytes(data)
            written.append(folder / name)
    (folder / "holiday-snap.jpg").write_bytes(jpeg(known("unrelated-holiday-snap")))
    written.append(folder / "holiday-snap.jpg")
    return written
