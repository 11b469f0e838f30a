"""Exchanges: feeds of hashes from outside that fill a bank (see docs/exchanges.md).

An exchange reads *records* (one signal each) from a feed, after a *checkpoint* (where the
last committed sync stopped). This module holds the pure rules: the feed kinds, the file
formats, how one line of a file becomes a record or an error, and the exchange's settings.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cleanit.domain.banks import EntryDraft, validate_entry
from cleanit.domain.errors import InvalidInput


class ExchangeKind(StrEnum):
    """Where records come from. Persisted values: never change one."""

    FILE = "file"
    # Reserved for API clients still to come: "threatexchange", "tat".


class FileFormat(StrEnum):
    """How a file feed is written. Persisted values: never change one."""

    #: ``signal_type,value,labels`` (labels separated by ``;`` or spaces).
    CSV = "csv"
    #: One JSON object a line: ``{"signal_type", "value", "labels", "id"}``.
    JSONL = "jsonl"
    #: python-threatexchange's file exchange: ``<signal_type> <signal>`` a line.
    THREATEXCHANGE = "threatexchange"


#: python-threatexchange signal type names that differ from ours.
_TX_SIGNAL_NAMES = {"photo_md5": "md5"}

MAX_NAME = 100
MAX_RECORD_ID = 200
MAX_LINE = 10_000
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")


@dataclass(frozen=True, slots=True)
class FeedRecord:
    """One valid record of a feed: the entry to add and the feed's id for it."""

    record_id: str
    entry: EntryDraft


@dataclass(frozen=True, slots=True)
class FeedError:
    """A record that could not be read; reported and skipped."""

    position: str
    message: str
    excerpt: str = ""


@dataclass(frozen=True, slots=True)
class ExchangeConfig:
    kind: ExchangeKind
    settings: dict[str, Any] = field(default_factory=dict)


def validate_exchange_name(name: str) -> str:
    text = (name or "").strip().lower()
    if not _NAME.match(text):
        raise InvalidInput(
            "an exchange name is 1 to 100 characters: a-z, 0-9, '_', '-', '.'", field="name"
        )
    return text


def validate_config(kind: str, settings: Mapping[str, Any]) -> ExchangeConfig:
    """The exchange kind and its settings, checked (a file feed: ``path`` and ``format``)."""
    try:
        chosen = ExchangeKind(str(kind).strip().lower())
    except ValueError:
        known = ", ".join(k.value for k in ExchangeKind)
        raise InvalidInput(
            f"unknown exchange kind {kind!r}; known: {known}", field="kind"
        ) from None
    path = settings.get("path")
    if not isinstance(path, str) or not path.strip():
        raise InvalidInput("a file exchange needs the feed file's path", field="path")
    fmt = str(settings.get("format") or _guess_format(path)).strip().lower()
    try:
        chosen_format = FileFormat(fmt)
    except ValueError:
        known = ", ".join(f.value for f in FileFormat)
        raise InvalidInput(f"unknown file format {fmt!r}; known: {known}", field="format") from None
    out: dict[str, Any] = {"path": path.strip(), "format": chosen_format.value}
    default_type = settings.get("signal_type")
    if default_type is not None:
        if chosen_format is not FileFormat.THREATEXCHANGE:
            raise InvalidInput(
                "only a threatexchange file takes a default signal type", field="signal_type"
            )
        out["signal_type"] = str(default_type).strip().lower()
    return ExchangeConfig(chosen, out)


def _guess_format(path: str) -> str:
    lower = path.lower()
    if lower.endswith((".jsonl", ".ndjson")):
        return FileFormat.JSONL.value
    if lower.endswith(".csv"):
        return FileFormat.CSV.value
    return FileFormat.THREATEXCHANGE.value


def _excerpt(line: str) -> str:
    return line[:200]


def parse_line(
    fmt: FileFormat, line: str, line_number: int, *, default_signal_type: str | None = None
) -> FeedRecord | FeedError | None:
    """One line of a file feed: a record, an error, or None (blank, comment or header).

    A record without its own id is named by its line number (``line:<n>``).
    """
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    position = f"line {line_number}"
    if len(text) > MAX_LINE:
        return FeedError(position, f"a line has at most {MAX_LINE} characters", _excerpt(text))
    record_id = f"line:{line_number}"
    labels: list[str] | Any = []
    try:
        if fmt is FileFormat.CSV:
            row = next(csv.reader([text]))
            if row and row[0].strip().lower() == "signal_type":
                return None
            if len(row) not in (2, 3):
                return FeedError(
                    position, f"expected signal_type,value[,labels]; got {len(row)}", _excerpt(text)
                )
            signal_type, value = row[0], row[1]
            labels = row[2].replace(";", " ").split() if len(row) == 3 else []
        elif fmt is FileFormat.JSONL:
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                return FeedError(position, f"not JSON: {exc.msg}", _excerpt(text))
            if not isinstance(obj, dict):
                return FeedError(position, "each line is a JSON object", _excerpt(text))
            given_type, given_value = obj.get("signal_type"), obj.get("value")
            if not isinstance(given_type, str) or not isinstance(given_value, str):
                return FeedError(position, "signal_type and value are strings", _excerpt(text))
            signal_type, value = given_type, given_value
            labels = obj.get("labels") or []
            if not isinstance(labels, list):
                return FeedError(position, "labels is a list of strings", _excerpt(text))
            given = obj.get("id")
            if given is not None:
                if isinstance(given, bool) or not isinstance(given, str | int):
                    return FeedError(position, "id is a string or a number", _excerpt(text))
                record_id = str(given)[:MAX_RECORD_ID]
        else:
            if default_signal_type is not None:
                signal_type, value = default_signal_type, text
            else:
                signal_type, _, value = text.partition(" ")
            signal_type = _TX_SIGNAL_NAMES.get(signal_type.strip().lower(), signal_type)
            value = value.strip()
        return FeedRecord(record_id, validate_entry(signal_type, value, labels))
    except InvalidInput as exc:
        where = f" ({exc.field})" if exc.field else ""
        return FeedError(position, f"{exc.detail}{where}", _excerpt(text))
