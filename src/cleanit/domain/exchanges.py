"""Exchanges: feeds of hashes from outside that fill a bank (see docs/exchanges.md).

An exchange reads *records* (one signal each) from a feed, after a *checkpoint* (where the
last committed sync stopped). This module holds the pure rules: the feed kinds, the file
formats, how one line of a file becomes a record or an error, the exchange's settings, and
the opinions (feedback) that can be sent back to an exchange.
"""

from __future__ import annotations

import csv
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from cleanit.domain.banks import EntryDraft, validate_entry
from cleanit.domain.errors import DomainError, InvalidInput


class ExchangeKind(StrEnum):
    """Where records come from. Persisted values: never change one."""

    FILE = "file"
    #: Meta's ThreatExchange Graph API: the threat updates of one privacy group.
    THREATEXCHANGE = "threatexchange"
    #: Tech Against Terrorism's hash list API.
    TAT = "tat"


#: Kinds read over the network, with credentials from the environment.
API_KINDS = frozenset({ExchangeKind.THREATEXCHANGE, ExchangeKind.TAT})


class Opinion(StrEnum):
    """What we think of an entry an exchange gave us. Persisted values: never change one."""

    #: The hash found content that really was what the exchange says.
    TRUE_POSITIVE = "true_positive"
    #: The hash found content that was not (the entry is wrong or too broad).
    FALSE_POSITIVE = "false_positive"


#: Exchanges that take opinions back. The TAT hash list API is read-only.
KINDS_WITH_OPINIONS = frozenset({ExchangeKind.THREATEXCHANGE})


class ExchangeFailed(DomainError):
    """The exchange's server refused or failed a request (the message never holds secrets)."""

    code = "exchange-failed"
    status = 502


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
class FeedDeletion:
    """The feed withdrew a record: the entry it gave (if any is still live) is removed."""

    record_id: str
    position: str = ""


FeedItem = FeedRecord | FeedError | FeedDeletion


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


def validate_config(
    kind: str, settings: Mapping[str, Any], *, allow_private: bool = False
) -> ExchangeConfig:
    """The exchange kind and its settings, checked.

    A file feed: ``path`` and ``format``. An API feed: ``credentials_env`` (the name of the
    environment variable holding the credentials, which are never stored), optionally
    ``api_base`` (https; http only for a loopback address when private targets are allowed)
    and ``page_size``; ThreatExchange also needs ``privacy_group``.
    """
    try:
        chosen = ExchangeKind(str(kind).strip().lower())
    except ValueError:
        known = ", ".join(k.value for k in ExchangeKind)
        raise InvalidInput(
            f"unknown exchange kind {kind!r}; known: {known}", field="kind"
        ) from None
    if chosen in API_KINDS:
        return ExchangeConfig(chosen, _api_settings(chosen, settings, allow_private))
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


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_API_KEYS = {
    ExchangeKind.THREATEXCHANGE: {"api_base", "privacy_group", "credentials_env", "page_size"},
    ExchangeKind.TAT: {"api_base", "credentials_env", "page_size"},
}
_SECRET_KEYS = {"token", "api_token", "access_token", "password", "secret", "credentials"}
MAX_PAGE_SIZE = 1000


def _api_settings(
    kind: ExchangeKind, settings: Mapping[str, Any], allow_private: bool
) -> dict[str, Any]:
    allowed = _API_KEYS[kind]
    for key in settings:
        if str(key).lower() in _SECRET_KEYS:
            # Settings are stored in the database and shown in listings: secrets never are.
            raise InvalidInput(
                "credentials are never stored: put them in an environment variable and give "
                "its name as credentials_env",
                field=str(key),
            )
        if key not in allowed:
            raise InvalidInput(
                f"a {kind.value} exchange takes only: {', '.join(sorted(allowed))}",
                field=str(key),
            )
    out: dict[str, Any] = {}
    env = settings.get("credentials_env")
    if not isinstance(env, str) or not _ENV_NAME.match(env.strip()):
        what = (
            "app token (appid|secret)"
            if kind is ExchangeKind.THREATEXCHANGE
            else ("username:password")
        )
        raise InvalidInput(
            f"a {kind.value} exchange needs credentials_env: the name of the environment "
            f"variable that holds its {what} (letters, digits and '_')",
            field="credentials_env",
        )
    out["credentials_env"] = env.strip()
    api_base = settings.get("api_base")
    if api_base is not None:
        out["api_base"] = validate_api_base(api_base, allow_private=allow_private)
    if kind is ExchangeKind.THREATEXCHANGE:
        out["privacy_group"] = _positive_int(
            settings.get("privacy_group"),
            "privacy_group",
            "a threatexchange exchange needs the numeric id of its privacy group",
        )
    page_size = settings.get("page_size")
    if page_size is not None:
        size = _positive_int(page_size, "page_size", "page_size is a positive number")
        if size > MAX_PAGE_SIZE:
            raise InvalidInput(f"page_size is at most {MAX_PAGE_SIZE}", field="page_size")
        out["page_size"] = size
    return out


def _positive_int(value: Any, name: str, message: str) -> int:
    if isinstance(value, bool):
        raise InvalidInput(message, field=name)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value <= 0:
        raise InvalidInput(message, field=name)
    return value


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_api_base(value: Any, *, allow_private: bool) -> str:
    """An exchange's base URL: https, or http to a loopback address (local fakes, tests)
    when private targets are allowed. No credentials, query or fragment in it."""
    text = value.strip() if isinstance(value, str) else ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("api_base is an absolute https URL", field="api_base")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidInput("api_base holds no user, password, query or fragment", field="api_base")
    if parts.scheme == "http" and not (allow_private and _is_loopback(parts.hostname)):
        raise InvalidInput(
            "api_base must use https (plain http only reaches a loopback address, and only "
            "where private targets are allowed)",
            field="api_base",
        )
    return text.rstrip("/")


def validate_opinion(value: str) -> Opinion:
    try:
        return Opinion(str(value).strip().lower())
    except ValueError:
        known = ", ".join(o.value for o in Opinion)
        raise InvalidInput(f"unknown opinion {value!r}; known: {known}", field="opinion") from None


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
