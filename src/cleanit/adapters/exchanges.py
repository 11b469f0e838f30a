"""Feed clients: where an exchange's records come from.

A client reads the records after a checkpoint (a JSON-able dict it defined itself, or None
for "from the start") and tells, after each record it yielded, the checkpoint that resumes
right after that record. The sync service stores that checkpoint in the same transaction as
the entries, so a sync that stops half-way resumes where its last commit left off.

The file client lives here; the ThreatExchange and Tech Against Terrorism API clients (and
the opinion sender) live in ``adapters.exchange_clients``, the one module that imports
python-threatexchange, loaded only when an API exchange is used. Their credentials come from
the environment variable the exchange names (``credentials_env``), read at each use.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

from cleanit.domain.errors import InvalidInput
from cleanit.domain.exchanges import (
    API_KINDS,
    KINDS_WITH_OPINIONS,
    ExchangeKind,
    FeedError,
    FeedItem,
    FileFormat,
    Opinion,
    parse_line,
)

Checkpoint = dict[str, Any]

#: How many leading bytes of a file name it (if they change, the file was replaced).
FINGERPRINT_BYTES = 4096


class FeedClient(Protocol):
    def fetch(self, checkpoint: Checkpoint | None) -> Iterator[FeedItem]:
        """The records, withdrawn records and unreadable records after ``checkpoint``, in
        feed order."""
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

    def fetch(self, checkpoint: Checkpoint | None) -> Iterator[FeedItem]:
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


class OpinionSender(Protocol):
    def send(self, record_id: str, opinion: Opinion, previous: Opinion | None) -> list[str]:
        """Tell the exchange our opinion on its record (replacing ``previous``); returns
        what it was attached to (e.g. descriptor ids), empty if there was nothing."""
        ...


def credentials(config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> str:
    """The secret in the environment variable the exchange names (never stored)."""
    name = str(config.get("credentials_env") or "")
    value = (os.environ if environ is None else environ).get(name, "") if name else ""
    if not value.strip():
        raise InvalidInput(
            f"the environment variable {name or '(none)'} named by credentials_env is not set "
            "where the sync runs",
            field="credentials_env",
        )
    return value


def client_for(
    kind: str,
    config: Mapping[str, Any],
    *,
    allow_private: bool = False,
    environ: Mapping[str, str] | None = None,
) -> FeedClient:
    """The feed client for an exchange's stored kind and config."""
    if kind == ExchangeKind.FILE.value:
        return FileFeedClient(
            Path(str(config["path"])),
            FileFormat(str(config["format"])),
            signal_type=config.get("signal_type"),
        )
    if kind in {k.value for k in API_KINDS}:
        from cleanit.adapters import exchange_clients  # loads requests and threatexchange

        return exchange_clients.feed_client(
            kind, config, credentials=credentials(config, environ), allow_private=allow_private
        )
    raise InvalidInput(f"no client for exchanges of kind {kind!r}", field="kind")


def opinion_sender_for(
    kind: str,
    config: Mapping[str, Any],
    *,
    allow_private: bool = False,
    environ: Mapping[str, str] | None = None,
) -> OpinionSender:
    """Who carries our opinions back to an exchange of this kind."""
    if kind not in {k.value for k in KINDS_WITH_OPINIONS}:
        raise InvalidInput(f"{kind} exchanges take no opinions", field="opinion")
    from cleanit.adapters import exchange_clients  # loads requests and threatexchange

    return exchange_clients.opinion_sender(
        kind, config, credentials=credentials(config, environ), allow_private=allow_private
    )
