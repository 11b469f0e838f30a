"""Benchmark: vPDQ video hashing speed against a decode-only baseline, in the same run.

Run:  python bench/video_hashing.py [--heights 240 480] [--seconds 20] [--fps 30] [--json]

For each height, a video is generated (scrolling coloured blocks with a moving disc and
fixed grain; never real content), encoded with H.264 (libx264, CRF 23) in MP4 at 16:9,
``--seconds`` long at ``--fps``. Each method then runs ``--repeat`` times on the file, in
interleaved rounds, and the best time is kept:

* ``decode only``: PyAV demuxes and decodes every frame (frame threads, as the hasher
  uses) and does nothing with them -- the floor for any hasher that must see each frame,
  as vpdq does (the baseline, ratio 1.00);
* ``hash_video``: MD5 + SHA-256 + vPDQ at one frame per second (the default), fast path;
* ``hash_video fast=False``: the same with pdqhash on every sampled RGB frame, as vpdq;
* ``hash_video every frame``: ``seconds_per_hash=0``, the fast path on every frame.

Printed per method: decoded frames per second of wall time, seconds of work per minute
of video, and the ratio of the time to the decode-only time. Also the largest PDQ
distance between the fast and the exact hash of the same frame.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cleanit.adapters.video import hash_video

LIMIT = 2**31


def scene(width: int, height: int, seed: int) -> Callable[[float], npt.NDArray[np.uint8]]:
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, size=(9, 16, 3), dtype=np.uint8)
    base = np.kron(blocks, np.ones((height // 9 + 1, width // 16 + 1, 1), dtype=np.uint8))
    base = base[:height, :width]
    grain = rng.integers(-10, 11, size=(height, width, 1), dtype=np.int16)
    y, x = np.mgrid[0:height, 0:width]

    def frame(t: float) -> npt.NDArray[np.uint8]:
        picture = np.roll(base, int(t * width / 16), axis=1).astype(np.int16) + grain
        cx = (0.5 + 0.35 * np.sin(2 * t)) * width
        cy = (0.5 + 0.35 * np.cos(1.5 * t)) * height
        disc = (x - cx) ** 2 + (y - cy) ** 2 < (height / 5) ** 2
        picture[disc] = 255 - picture[disc]
        return picture.clip(0, 255).astype(np.uint8)

    return frame


def make_video(path: Path, height: int, seconds: float, fps: int) -> None:
    width = (height * 16 // 9) // 2 * 2
    draw = scene(width, height, seed=height)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"crf": "23"})
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(int(seconds * fps)):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(draw(i / fps), format="rgb24")))
        out.mux(stream.encode(None))


def decode_only(path: Path) -> int:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return sum(1 for _ in container.decode(stream))


def best_times(
    methods: dict[str, Callable[[Path], object]], path: Path, repeat: int
) -> dict[str, float]:
    """Best wall time of each method; rounds interleave the methods, so that a busy
    moment of the machine does not favour one of them."""
    best = dict.fromkeys(methods, float("inf"))
    for _ in range(repeat):
        for name, fn in methods.items():
            start = time.perf_counter()
            fn(path)
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--heights", type=int, nargs="+", default=[240, 480])
    parser.add_argument("--seconds", type=float, default=20.0, help="video length")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5, help="runs per method (best kept)")
    parser.add_argument("--json", action="store_true", help="write bench/results/video.json")
    args = parser.parse_args()

    report: dict[str, Any] = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "pyav": av.__version__,
        "ffmpeg": av.ffmpeg_version_info,
        "video_seconds": args.seconds,
        "fps": args.fps,
        "heights": {},
    }
    print(
        f"vPDQ hashing of generated H.264 MP4s, {args.seconds:g} s at {args.fps} fps, "
        f"{os.cpu_count()} CPUs, PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info})\n"
    )
    methods: dict[str, Callable[[Path], object]] = {
        "decode only (baseline)": decode_only,
        "hash_video (1 frame/s, fast)": lambda p: hash_video(p, max_bytes=LIMIT),
        "hash_video fast=False": lambda p: hash_video(p, max_bytes=LIMIT, fast=False),
        "hash_video every frame": lambda p: hash_video(p, max_bytes=LIMIT, seconds_per_hash=0),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for height in args.heights:
            path = Path(tmp) / f"{height}p.mp4"
            make_video(path, height, args.seconds, args.fps)
            frames = decode_only(path)
            times = best_times(methods, path, args.repeat)
            fast = hash_video(path, max_bytes=LIMIT)
            exact = hash_video(path, max_bytes=LIMIT, fast=False)
            worst = max(
                (int(f.pdq_hex, 16) ^ int(e.pdq_hex, 16)).bit_count()
                for f, e in zip(fast.vpdq, exact.vpdq, strict=True)
            )
            baseline = times["decode only (baseline)"]
            size = path.stat().st_size
            print(
                f"{fast.width}x{fast.height}: {frames} frames, {size / 1024:.0f} KiB, "
                f"{len(fast.vpdq)} frames hashed at 1/s"
            )
            entry: dict[str, Any] = {"width": fast.width, "frames": frames, "bytes": size}
            for name, seconds in times.items():
                per_minute = seconds * 60 / args.seconds
                entry[name] = {
                    "frames_per_s": round(frames / seconds, 1),
                    "seconds_per_minute_of_video": round(per_minute, 2),
                    "ratio_to_decode_only": round(seconds / baseline, 2),
                }
                print(
                    f"  {name:30} {frames / seconds:8.0f} frames/s  "
                    f"{per_minute:6.2f} s per minute of video   x{seconds / baseline:5.2f}"
                )
            entry["max_fast_vs_exact_bits"] = worst
            print(f"  fast vs exact PDQ of the same frames: at most {worst} bits apart\n")
            report["heights"][str(height)] = entry
    if args.json:
        out = Path(__file__).resolve().parent / "results" / "video.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
