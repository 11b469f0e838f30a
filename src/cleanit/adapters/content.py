"""Hashing any content: videos go to ``adapters.video`` (MD5, SHA-256, video MD5, vPDQ),
everything else to ``adapters.signals`` (MD5, SHA-256, and PDQ for images or a MinHash
signature for text). The one entry point the services and the CLI use."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import IO

from cleanit.adapters.signals import DEFAULT_MAX_BYTES, UnreadableFile, hash_bytes, hash_file
from cleanit.adapters.video import VideoHashes, hash_video, looks_like_video
from cleanit.domain.signals import Hash, HashResult, SignalType
from cleanit.domain.video_signals import matchable_frames

__all__ = ["hash_content_bytes", "hash_content_file", "is_video"]

_HEAD = 64


def is_video(head: bytes, content_type_hint: str | None) -> bool:
    """Whether content with these first bytes is hashed as a video."""
    declared = (content_type_hint or "").split(";")[0].strip().lower()
    return looks_like_video(head) or declared.startswith("video/")


def _video_results(hashes: VideoHashes) -> list[HashResult]:
    results = hashes.hash_results()
    if matchable_frames(hashes.vpdq):
        results.append(HashResult(SignalType.VPDQ, Hash(SignalType.VPDQ, hashes.vpdq_json)))
    else:
        results.append(
            HashResult(
                SignalType.VPDQ,
                None,
                notes=("no frame of this video has a PDQ quality of 50 or more: no vPDQ match",),
            )
        )
    return results


def hash_content_file(
    path: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    content_type_hint: str | None = None,
    fast: bool = True,
) -> list[HashResult]:
    """The signals of the file at ``path`` (see the module docstring)."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            head = f.read(_HEAD)
    except OSError as exc:
        raise UnreadableFile(f"cannot read {p}: {exc.strerror or exc}") from None
    if is_video(head, content_type_hint):
        return _video_results(hash_video(p, max_bytes=max_bytes, fast=fast))
    return hash_file(p, max_bytes=max_bytes, content_type_hint=content_type_hint, fast=fast)


def hash_content_bytes(
    data: bytes,
    content_type_hint: str | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    fast: bool = True,
) -> list[HashResult]:
    """The signals of content in memory (an upload, a fetched object)."""
    if data and is_video(data[:_HEAD], content_type_hint):
        stream: IO[bytes] = io.BytesIO(data)
        return _video_results(hash_video(stream, max_bytes=max_bytes, fast=fast))
    return hash_bytes(data, content_type_hint, max_bytes=max_bytes, fast=fast)
