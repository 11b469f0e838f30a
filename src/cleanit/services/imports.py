"""Importing notices in bulk from CSV or JSON lines: validate every line first, then store
all of them in one transaction — or nothing, with a report of every bad line."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from cleanit.adapters.db.models import Organisation
from cleanit.domain.errors import DomainError, InvalidInput, NotFound
from cleanit.domain.notices import Category, NoticeDraft, SourceType, validate_notice
from cleanit.domain.roles import ANONYMOUS, ROLES_BY_ORG_KIND, OrgKind, Principal
from cleanit.services.context import Context
from cleanit.services.notices import NoticeReceipt, import_notices

MAX_FILE_BYTES = 256 * 1024 * 1024
_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n", ""}
FIELDS = (
    "provider",
    "source_type",
    "category",
    "explanation",
    "locations",
    "jurisdiction",
    "good_faith",
    "notifier_name",
    "notifier_email",
    "keywords",
    "anonymous",
    "idempotency_key",
)


@dataclass(frozen=True)
class LineError:
    line: int
    field: str | None
    message: str


@dataclass
class ImportPlan:
    drafts: list[tuple[int, NoticeDraft, str | None]] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)
    lines: int = 0


def operator_principal(ctx: Context, org_slug: str | None) -> Principal:
    """The local operator acting for an organisation (or as the anonymous public)."""
    if org_slug is None:
        return ANONYMOUS
    with ctx.sessions() as s:
        org = s.scalar(select(Organisation).where(Organisation.slug == org_slug))
        if org is None:
            raise NotFound(f"no organisation '{org_slug}'", field="org")
        kind = OrgKind(org.kind)
        return Principal(
            organisation_id=org.id, org_kind=kind, roles=ROLES_BY_ORG_KIND[kind], label="operator"
        )


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidInput(f"'{value}' is not true or false", field=name)


def _list(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            raise InvalidInput("must be a list of strings", field=name)
        return tuple(value)
    if isinstance(value, str):
        return tuple(v for v in value.replace("|", " ").split() if v)
    raise InvalidInput("must be a list or a space-separated string", field=name)


def _enum(cls: type[SourceType] | type[Category], value: Any, name: str) -> Any:
    try:
        return cls(value)
    except ValueError:
        raise InvalidInput(f"unknown value '{value}'", field=name) from None


def draft_from_record(record: dict[str, Any]) -> tuple[NoticeDraft, str | None]:
    unknown = set(record) - set(FIELDS)
    if unknown:
        raise InvalidInput(
            f"unknown field(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0]
        )
    for required in ("provider", "category", "explanation", "locations"):
        if not record.get(required):
            raise InvalidInput("is required", field=required)
    draft = NoticeDraft(
        provider=str(record["provider"]),
        source_type=_enum(SourceType, record.get("source_type") or "end_user", "source_type"),
        category=_enum(Category, record["category"], "category"),
        explanation=str(record["explanation"]),
        locations=_list(record["locations"], "locations"),
        jurisdiction=str(record.get("jurisdiction") or "EU"),
        good_faith=_bool(record.get("good_faith", False), "good_faith"),
        notifier_name=record.get("notifier_name") or None,
        notifier_email=record.get("notifier_email") or None,
        keywords=_list(record.get("keywords"), "keywords"),
        anonymous=_bool(record.get("anonymous", False), "anonymous"),
    )
    key = record.get("idempotency_key") or None
    return draft, (str(key) if key is not None else None)


def read_records(path: Path) -> Iterator[tuple[int, dict[str, Any] | LineError]]:
    """Yield (line number, record or error). CSV needs a header line; JSON lines one object
    per line. Invalid UTF-8 is reported per line, not a crash."""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InvalidInput(f"the file is larger than {MAX_FILE_BYTES // 2**20} MiB", field="file")
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson", ".json"}:
        with path.open("rb") as fh:
            for n, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    obj = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    yield n, LineError(n, None, "not valid UTF-8")
                    continue
                except json.JSONDecodeError as exc:
                    yield n, LineError(n, None, f"not valid JSON: {exc.msg}")
                    continue
                if not isinstance(obj, dict):
                    yield n, LineError(n, None, "each line must be a JSON object")
                    continue
                yield n, obj
    elif suffix == ".csv":
        data = path.read_bytes()
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            yield line, LineError(line, None, "not valid UTF-8")
            return
        reader = csv.DictReader(io.StringIO(text))
        for row in reader:
            n = reader.line_num
            if None in row:
                yield n, LineError(n, None, "more columns than the header")
                continue
            yield n, {k: v for k, v in row.items() if k is not None and v not in (None, "")}
    else:
        raise InvalidInput("use a .csv or .jsonl file", field="file")


def plan_import(
    path: Path, principal: Principal, on_line: Callable[[int], None] | None = None
) -> ImportPlan:
    plan = ImportPlan()
    for n, rec in read_records(path):
        plan.lines += 1
        if on_line:
            on_line(n)
        if isinstance(rec, LineError):
            plan.errors.append(rec)
            continue
        try:
            draft, key = draft_from_record(rec)
            plan.drafts.append((n, validate_notice(draft, principal), key))
        except DomainError as exc:
            plan.errors.append(LineError(n, exc.field, exc.detail))
    return plan


def run_import(
    ctx: Context,
    principal: Principal,
    plan: ImportPlan,
    on_stored: Callable[[int], None] | None = None,
) -> list[NoticeReceipt]:
    if plan.errors:
        raise InvalidInput(
            f"{len(plan.errors)} line(s) are invalid; nothing was imported", field="file"
        )
    return import_notices(ctx, principal, plan.drafts, on_stored)
