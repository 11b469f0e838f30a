"""Reading untyped input (a JSON object, a form) field by field, collecting every error.

The order and investigation-request validators use this so that one pass reports all the
fields that are wrong, each with its exact path (``content_urls[2]``), instead of making the
sender fix them one at a time. ``FieldErrors.raise_first`` turns the list into the project's
single-field ``InvalidInput`` when only one error can be reported.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from cleanit.domain.errors import InvalidInput

# Control characters other than tab and newlines have no business in a legal text and are a
# classic way to hide content from a reviewer's screen.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{2,63}$")
_PHONE = re.compile(r"^\+?[0-9 ()./-]{6,30}$")

FieldError = tuple[str, str]


def to_utc(value: datetime, *, field: str = "at") -> datetime:
    """The same instant in UTC. Naive datetimes are refused: their instant is unknowable."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(
            "a time must carry its time zone offset, e.g. 2026-03-29T01:30:00+01:00",
            field=field,
        )
    return value.astimezone(UTC)


def is_email(value: str) -> bool:
    return bool(_EMAIL.match(value))


def is_phone(value: str) -> bool:
    return bool(_PHONE.match(value)) and sum(c.isdigit() for c in value) >= 6


class FieldErrors:
    """An ordered list of (field path, message)."""

    def __init__(self) -> None:
        self.items: list[FieldError] = []

    def add(self, field: str, message: str) -> None:
        self.items.append((field, message))

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_first(self) -> None:
        if self.items:
            field, message = self.items[0]
            raise InvalidInput(message, field=field)


class RawReader:
    """Typed getters over a mapping; each getter records its own errors and returns None."""

    def __init__(self, raw: Mapping[str, Any], errors: FieldErrors) -> None:
        self.raw = raw
        self.errors = errors

    def refuse_unknown(self, allowed: Sequence[str]) -> None:
        for key in self.raw:
            if key not in allowed:
                self.errors.add(
                    str(key), f"unknown field; the fields are: {', '.join(sorted(allowed))}"
                )

    def present(self, key: str) -> bool:
        return self.raw.get(key) is not None

    def text(
        self,
        key: str,
        *,
        required: bool,
        min_len: int = 1,
        max_len: int,
        what: str,
        multiline: bool = False,
    ) -> str | None:
        value = self.raw.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.errors.add(key, f"required: {what}")
            return None
        return self.check_text(key, value, min_len=min_len, max_len=max_len, multiline=multiline)

    def check_text(
        self, path: str, value: object, *, min_len: int, max_len: int, multiline: bool = False
    ) -> str | None:
        if not isinstance(value, str):
            self.errors.add(path, f"must be text, not {_json_type(value)}")
            return None
        text = value.strip()
        if _CONTROL.search(text) or (not multiline and ("\n" in text or "\r" in text)):
            self.errors.add(path, "contains control characters or line breaks")
            return None
        if len(text) < min_len:
            self.errors.add(path, f"too short: at least {min_len} characters")
            return None
        if len(text) > max_len:
            self.errors.add(path, f"too long: at most {max_len} characters")
            return None
        return text

    def boolean(self, key: str, *, default: bool | None) -> bool | None:
        value = self.raw.get(key)
        if value is None:
            if default is None:
                self.errors.add(key, "required: true or false")
            return default
        if not isinstance(value, bool):
            self.errors.add(key, f"must be true or false, not {_json_type(value)}")
            return None
        return value

    def integer(self, key: str, *, low: int, high: int) -> int | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.errors.add(key, f"must be a whole number, not {_json_type(value)}")
            return None
        if not low <= value <= high:
            self.errors.add(key, f"must be between {low} and {high}")
            return None
        return value

    def instant(self, key: str, *, what: str) -> datetime | None:
        """An aware datetime or an ISO 8601 string with an offset, returned in UTC."""
        value = self.raw.get(key)
        if value is None:
            self.errors.add(key, f"required: {what}")
            return None
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.strip())
            except ValueError:
                self.errors.add(
                    key, "not an ISO 8601 date and time, e.g. 2026-03-29T01:30:00+01:00"
                )
                return None
        if not isinstance(value, datetime):
            self.errors.add(key, f"must be a date and time, not {_json_type(value)}")
            return None
        try:
            return to_utc(value, field=key)
        except InvalidInput as exc:
            self.errors.add(key, exc.detail)
            return None

    def items_of(self, key: str, *, what: str, max_items: int) -> list[object] | None:
        """A non-empty JSON array (a list or tuple; a lone string is refused, not split)."""
        value = self.raw.get(key)
        if value is None:
            self.errors.add(key, f"required: {what}")
            return None
        if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
            self.errors.add(key, f"must be a list, not {_json_type(value)}")
            return None
        if not value:
            self.errors.add(key, f"give at least one: {what}")
            return None
        if len(value) > max_items:
            self.errors.add(key, f"at most {max_items} entries")
            return None
        return list(value)


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__
