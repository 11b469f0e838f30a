"""Generated benign media for the demo bank: coloured shapes, a moving pattern and an
invented leaflet about a garden club -- never real content.

``known(slug)`` stands in for "known content"; ``copy_of(image)`` makes the kind of copy a
re-uploader would make (mirrored, resized, recompressed) so the demo can show it is caught.
The same goes for a short video (re-encoded smaller in another format) and a text (edited,
re-punctuated, with a line added).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
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


#: An invented leaflet standing in for a known text (long enough to fingerprint well).
KNOWN_TEXT = " ".join(
    f"The Example Valley garden club meets on {day} at the old mill to plan bed {n}: "
    "bring seeds, gloves and a flask of tea, and tell your neighbours about the club."
    for n, day in enumerate(["Monday", "Wednesday", "Saturday"] * 4, start=1)
)


def edited_text() -> str:
    """The leaflet as a re-poster would change it: case, punctuation, a word, a line."""
    return (
        KNOWN_TEXT.upper().replace("flask of tea", "thermos of tea").replace(":", " -- ")
        + "\nShare this everywhere!"
    )


def _frame(t: float, width: int = 128, height: int = 96) -> npt.NDArray[np.uint8]:
    """A frame of the demo clip: coloured blocks scrolling past a moving bright disc."""
    rng = np.random.default_rng(7)
    blocks = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    picture = np.kron(blocks, np.ones((height // 6, width // 8, 1), dtype=np.uint8))
    picture = np.roll(picture, int(t * width / 8), axis=1)
    y, x = np.mgrid[0:height, 0:width]
    cx, cy = (0.5 + 0.3 * np.sin(2 * t)) * width, (0.5 + 0.3 * np.cos(1.5 * t)) * height
    picture[(x - cx) ** 2 + (y - cy) ** 2 < (height / 5) ** 2] = 255
    return picture


def clip(
    *, codec: str = "libx264", container: str = "mp4", size: tuple[int, int] = (128, 96)
) -> bytes:
    """The demo clip (4 s at 8 fps), encoded as asked."""
    out = io.BytesIO()
    with av.open(out, "w", format=container) as video:
        stream = video.add_stream(codec, rate=8)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(32):
            frame = av.VideoFrame.from_ndarray(_frame(i / 8), format="rgb24")
            video.mux(stream.encode(frame.reformat(width=size[0], height=size[1])))
        video.mux(stream.encode(None))
    return out.getvalue()


def reencoded_clip() -> bytes:
    """The clip as a re-uploader would post it: smaller, another codec and container."""
    return clip(codec="libvpx", container="webm", size=(96, 72))


def write_demo_images(folder: Path) -> list[Path]:
    """Originals and their re-uploaded copies (pictures, a clip, a leaflet), and one
    unrelated picture."""
    folder.mkdir(parents=True, exist_ok=True)
    files: list[tuple[str, bytes]] = []
    for slug in KNOWN:
        img = known(slug)
        files += [(f"{slug}.jpg", jpeg(img)), (f"{slug}-reupload.jpg", copy_of(img))]
    files += [
        ("holiday-snap.jpg", jpeg(known("unrelated-holiday-snap"))),
        ("garden-club-clip.mp4", clip()),
        ("garden-club-clip-reupload.webm", reencoded_clip()),
        ("garden-club-leaflet.txt", KNOWN_TEXT.encode()),
        ("garden-club-leaflet-repost.txt", edited_text().encode()),
    ]
    written = []
    for name, data in files:
        (folder / name).write_bytes(data)
        written.append(folder / name)
    return written
