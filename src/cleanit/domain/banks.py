"""Banks: named hash lists an organisation keeps, and the rules for what goes in them.

A bank holds entries (one signal each: a PDQ, MD5, SHA-256 hash or a URL; see
``cleanit.domain.signals``). Content that matches an entry of an enabled bank is reported;
in a ``review`` bank the match opens (or joins) a case for people to assess; in an
``auto_action`` bank a confirmed match also takes the bank's configured decision. A *negative*
bank lists known false positives: a match there suppresses every other match of the same
content. Labels follow a small taxonomy (docs/banks.md): ``entity:<slug>``,
``behaviour:<slug>`` and ``content_type:<slug>``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cleanit.domain.decisions import Action
from cleanit.domain.errors import InvalidInput
from cleanit.domain.notices import Category
from cleanit.domain.signals import PDQ_MATCH_THRESHOLD, SignalType, normalise_hash
from cleanit.domain.text_signals import TEXT_MATCH_THRESHOLD


class BankMode(StrEnum):
    """What a match in the bank does. The values are persisted: never change one."""

    #: The match opens or joins a case, with the match as evidence, for people to assess.
    REVIEW = "review"
    #: A confirmed match leads to a fully automated decision (the bank's configured item
    #: action, citing its configured terms clause), through the same path as a human one.
    AUTO_ACTION = "auto_action"


class LabelKind(StrEnum):
    ENTITY = "entity"
    BEHAVIOUR = "behaviour"
    CONTENT_TYPE = "content_type"


MAX_LABELS = 20
MAX_NAME = 200
MAX_DESCRIPTION = 4000
MAX_IMPORT_LINES = 100_000
#: Signal types a bank may hold.
BANK_SIGNAL_TYPES = (
    SignalType.PDQ,
    SignalType.MD5,
    SignalType.SHA256,
    SignalType.URL,
    SignalType.VIDEO_MD5,
    SignalType.TEXT_MINHASH,
    SignalType.VPDQ,
)
#: Text thresholds are a dissimilarity in percent: 40 = estimated Jaccard similarity 0.6.
TEXT_MINHASH_THRESHOLD = round(100 * (1 - TEXT_MATCH_THRESHOLD))
DEFAULT_THRESHOLDS: dict[str, int] = {
    SignalType.PDQ.value: PDQ_MATCH_THRESHOLD,
    SignalType.MD5.value: 0,
    SignalType.SHA256.value: 0,
    SignalType.URL.value: 0,
    SignalType.VIDEO_MD5.value: 0,
    SignalType.TEXT_MINHASH.value: TEXT_MINHASH_THRESHOLD,
    # vPDQ: the share of the content's frames allowed to have no twin (80 % must match).
    SignalType.VPDQ.value: 20,
}
#: Above this a PDQ "match" is mostly noise (random hashes are ~128 bits apart).
MAX_PDQ_THRESHOLD = 70
#: Above this (similarity under 0.4) unrelated texts sharing common phrases match.
MAX_TEXT_THRESHOLD = 60
#: Above this, a video sharing a minority of its frames (an intro, a logo) would match.
MAX_VPDQ_THRESHOLD = 50
_MAX_DISTANCE = {
    SignalType.PDQ: MAX_PDQ_THRESHOLD,
    SignalType.TEXT_MINHASH: MAX_TEXT_THRESHOLD,
    SignalType.VPDQ: MAX_VPDQ_THRESHOLD,
}
_UNIT = {
    SignalType.PDQ: "bits",
    SignalType.TEXT_MINHASH: "percent of dissimilarity",
    SignalType.VPDQ: "percent of frames without a match",
}
DEFAULT_CATEGORY = Category.RISK_FOR_PUBLIC_SECURITY

_LABEL = re.compile(r"^(entity|behaviour|content_type):[a-z0-9][a-z0-9_.-]{0,63}$")


def validate_labels(labels: Iterable[str], *, field: str = "labels") -> tuple[str, ...]:
    """Labels in canonical form (trimmed, lower case, unique, sorted), or InvalidInput."""
    if isinstance(labels, str):
        raise InvalidInput("labels are a list of strings, not one string", field=field)
    out: set[str] = set()
    for raw in labels:
        if not isinstance(raw, str):
            raise InvalidInput("every label is a string", field=field)
        label = raw.strip().lower()
        if not _LABEL.match(label):
            kinds = ", ".join(f"{k.value}:<name>" for k in LabelKind)
            raise InvalidInput(
                f"label {raw[:80]!r} is not of the form {kinds} "
                "(names: a-z, 0-9, '_', '-', '.', at most 64 characters)",
                field=field,
            )
        out.add(label)
    if len(out) > MAX_LABELS:
        raise InvalidInput(f"at most {MAX_LABELS} labels", field=field)
    return tuple(sorted(out))


def validate_thresholds(given: Mapping[str, Any] | None) -> dict[str, int]:
    """The bank's distance threshold per signal type: defaults merged with ``given``.

    PDQ is a distance in bits, text MinHash a dissimilarity in percent; the exact types
    (MD5, SHA-256, URL, video MD5) always match at 0.
    """
    out = dict(DEFAULT_THRESHOLDS)
    for key, value in (given or {}).items():
        try:
            kind = SignalType(str(key).strip().lower())
        except ValueError:
            raise InvalidInput(
                f"unknown signal type {key!r} in thresholds", field="thresholds"
            ) from None
        if kind not in BANK_SIGNAL_TYPES:
            raise InvalidInput(f"banks do not hold {kind.value} signals", field="thresholds")
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"the {kind.value} threshold is an integer", field="thresholds")
        if kind in _MAX_DISTANCE:
            if not 0 <= value <= _MAX_DISTANCE[kind]:
                raise InvalidInput(
                    f"the {kind.value} threshold is between 0 and {_MAX_DISTANCE[kind]} "
                    f"{_UNIT[kind]}",
                    field="thresholds",
                )
        elif value != 0:
            raise InvalidInput(
                f"{kind.value} is an exact signal: its threshold can only be 0",
                field="thresholds",
            )
        out[kind.value] = value
    return out


def validate_mode(mode: str) -> BankMode:
    try:
        value = BankMode(str(mode).strip().lower())
    except ValueError:
        raise InvalidInput(
            f"unknown mode {mode!r}; expected one of: {', '.join(m.value for m in BankMode)}",
            field="mode",
        ) from None
    return value


#: What an auto_action bank may do: item-level actions only (never the account), and no
#: geo-block (it needs countries chosen case by case).
AUTO_ACTIONS = (
    Action.LABEL,
    Action.RESTRICT_VISIBILITY,
    Action.DISABLE_ACCESS,
    Action.REMOVE,
)


@dataclass(frozen=True, slots=True)
class AutoActionConfig:
    action: Action | None
    terms_clause_version_id: int | None


def validate_auto_action(
    mode: BankMode,
    action: str | None,
    terms_clause_version_id: int | None,
    *,
    negative: bool,
) -> AutoActionConfig:
    """An auto_action bank names its item action and the terms clause version it cites.

    A review bank names neither; a negative bank (known false positives) never acts.
    """
    if mode is BankMode.REVIEW:
        if action is not None or terms_clause_version_id is not None:
            raise InvalidInput(
                "only an 'auto_action' bank takes an action and a terms clause",
                field="auto_action",
            )
        return AutoActionConfig(None, None)
    if negative:
        raise InvalidInput("a negative bank cannot act automatically", field="mode")
    if action is None and terms_clause_version_id is None:
        raise InvalidInput(
            "mode 'auto_action' needs the action to take and the terms clause version to "
            "cite (auto_action, auto_terms_clause_version_id)",
            field="mode",
        )
    allowed = ", ".join(a.value for a in AUTO_ACTIONS)
    try:
        chosen = Action(str(action).strip().lower()) if action is not None else None
    except ValueError:
        chosen = None
    if chosen not in AUTO_ACTIONS:
        raise InvalidInput(
            f"an 'auto_action' bank takes one item-level action: {allowed}", field="auto_action"
        )
    if isinstance(terms_clause_version_id, bool) or not isinstance(terms_clause_version_id, int):
        raise InvalidInput(
            "an 'auto_action' bank cites the terms clause version its decisions rest on",
            field="auto_terms_clause_version_id",
        )
    return AutoActionConfig(chosen, terms_clause_version_id)


def validate_category(category: str) -> Category:
    try:
        return Category(category)
    except ValueError:
        raise InvalidInput(f"unknown category {category!r}", field="category") from None


def validate_name(name: str) -> str:
    text = (name or "").strip()
    if not text:
        raise InvalidInput("a bank needs a name", field="name")
    if len(text) > MAX_NAME:
        raise InvalidInput(f"a bank name has at most {MAX_NAME} characters", field="name")
    return text


def validate_description(description: str) -> str:
    text = (description or "").strip()
    if len(text) > MAX_DESCRIPTION:
        raise InvalidInput(
            f"the description has at most {MAX_DESCRIPTION} characters", field="description"
        )
    return text


def bank_signal_type(value: str, *, field: str = "signal_type") -> SignalType:
    try:
        kind = SignalType(str(value).strip().lower())
    except ValueError:
        known = ", ".join(t.value for t in BANK_SIGNAL_TYPES)
        raise InvalidInput(
            f"unknown signal type {value!r}; expected one of: {known}", field=field
        ) from None
    if kind not in BANK_SIGNAL_TYPES:
        raise InvalidInput(f"banks do not hold {kind.value} signals yet", field=field)
    return kind


@dataclass(frozen=True, slots=True)
class EntryDraft:
    """One entry to add, valid and in canonical form."""

    signal_type: SignalType
    value: str
    labels: tuple[str, ...] = ()


def validate_entry(signal_type: str, value: str, labels: Iterable[str] = ()) -> EntryDraft:
    kind = bank_signal_type(signal_type)
    return EntryDraft(kind, normalise_hash(kind, value, field="value"), validate_labels(labels))


@dataclass(frozen=True, slots=True)
class LineError:
    line: int
    field: str | None
    message: str


def parse_import(text: str) -> tuple[list[EntryDraft], list[LineError]]:
    """Parse ``signal_type,value,labels`` lines (labels separated by ``;`` or spaces).

    A first line ``signal_type,value,labels`` is a header and skipped; blank lines and
    lines starting with ``#`` are ignored. The ``added_at,source`` columns of cleanit's own
    CSV export are accepted and ignored (provenance becomes this import), so an export loads
    as it is. Returns the entries and every line's error.
    """
    entries: list[EntryDraft] = []
    errors: list[LineError] = []
    rows = csv.reader(io.StringIO(text))
    for number, row in enumerate(rows, start=1):
        if number > MAX_IMPORT_LINES:
            errors.append(LineError(number, None, f"at most {MAX_IMPORT_LINES} lines"))
            break
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if number == 1 and row[0].strip().lower() == "signal_type":
            continue
        if len(row) not in (2, 3, 5):
            errors.append(
                LineError(
                    number,
                    None,
                    f"expected signal_type,value[,labels[,added_at,source]]; got {len(row)}",
                )
            )
            continue
        labels = row[2].replace(";", " ").split() if len(row) >= 3 else []
        try:
            entries.append(validate_entry(row[0], row[1], labels))
        except InvalidInput as exc:
            errors.append(LineError(number, exc.field, exc.detail))
    return entries, errors
