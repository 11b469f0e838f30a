"""Feed clients: where an exchange's records come from.

A client reads the records after a checkpoint (a JSON-able dict it defined itself, or None
for "from the start") and tells, after each record it yielded, the checkpoint that resumes
right after that record. The sync service stores that checkpoint in the same transaction as
the entries, so a sync that stops half-way resumes where its last commit left off.

Only the file client exists; ThreatExchange and TAT API clients implement the same Protocol.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from cleanit.domain.errors import InvalidInput
from cleanit.domain.exchanges import (
    ExchangeKind,
    FeedError,
    FeedRecord,
    FileFormat,
    parse_line,
)

Checkpoint = dict[str, Any]

#: How many leading bytes of a file name it (if they change, the file was replaced).
FINGERPRINT_BYTES = 4096


class FeedClient(Protocol):
    def fetch(self, checkpoint: Checkpoint | None) -> Iterator[FeedRecord | FeedError]:
        """The records (and unreadable records) after ``checkpoint``, in feed order."""
        ...

    @property
    def next_checkpoint(self) -> Checkpoint | None:
        """The checkpoint resuming right after the last record ``fetch`` yielded."""
        ...


def _fingerprint(head: bytes) -> str:
    return hashlib.sha256(head).hexdigest()


class FileFeedClient:
    """A feed file that grows by appended lines (CSV, JSON lines or threatexchange format).

    The checkpoint is the byte offset and line number reached, with a fingerprint of the
    file's first bytes: a file that was replaced or shortened is read again from the start
    (entries the bank already holds are skipped, so nothing doubles). A last line without
    its newline is still being written and waits for the next sync.
    """

    def __init__(self, path: Path, fmt: FileFormat, *, signal_type: str | None = None) -> None:
        self.path = path
        self.format = fmt
        self.signal_type = signal_type
        self._next: Checkpoint | None = None

    @property
    def next_checkpoint(self) -> Checkpoint | None:
        return self._next

    def _start(self, checkpoint: Checkpoint | None, size: int) -> tuple[int, int]:
        if not checkpoint:
            return 0, 0
        offset, line = int(checkpoint.get("offset", 0)), int(checkpoint.get("line", 0))
        if offset > size:
            return 0, 0
        with self.path.open("rb") as f:
            head = f.read(min(offset, FINGERPRINT_BYTES))
        if _fingerprint(head) != checkpoint.get("fingerprint"):
            return 0, 0
        return offset, line

    def fetch(self, checkpoint: Checkpoint | None) -> Iterator[FeedRecord | FeedError]:
        if not self.path.is_file():
            raise InvalidInput(f"the feed file {self.path} does not exist", field="path")
        offset, line_number = self._start(checkpoint, self.path.stat().st_size)
        self._next = checkpoint
        with self.path.open("rb") as f:
            head = f.read(FINGERPRINT_BYTES)
            f.seek(offset)
            for raw in f:
                if not raw.endswith(b"\n"):
                    break
                offset += len(raw)
                line_number += 1
                self._next = {
                    "offset": offset,
                    "line": line_number,
                    "fingerprint": _fingerprint(head[: min(offset, FINGERPRINT_BYTES)]),
                }
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    yield FeedError(f"line {line_number}", "not UTF-8 text")
                    continue
                item = parse_line(
                    self.format, text, line_number, default_signal_type=self.signal_type
                )
                if item is not None:
                    yield item


def client_for(kind: str, config: Mapping[str, Any]) -> FeedClient:
    """The feed client for an exchange's stored kind and config."""
    if kind == ExchangeKind.FILE.value:
        return FileFeedClient(
            Path(str(config["path"])),
            FileFormat(str(config["format"])),
            signal_type=config.get("signal_type"),
        )
    raise InvalidInput(f"no client for exchanges of kind {kind!r}", field="kind")
