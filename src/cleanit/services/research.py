"""Research exports (Clean IT best practice 13): pseudonymised files researchers may study.

Identifiers become keyed pseudonyms (HMAC-SHA256 with the research key, which never leaves
cleanit); no free text is read at all (see research_tables); dates are days, times hours.
Small groups are protected with one parameter k:

* aggregate tables: a count below k is suppressed (empty, ``suppressed`` = true);
* row-level tables: rows whose quasi-identifier combination (the table's ``quasi`` columns,
  dates at the day) is shared by fewer than k rows get their dates generalised to the month;
  those still in a group smaller than k are dropped (the count is in the manifest).

Every export is recorded in the audit log (``research.exported``) with its row counts and the
SHA-256 of every file. See docs/research.md.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import json
import logging
import os
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from sqlalchemy import text

from cleanit.domain.errors import InvalidInput, NotFound
from cleanit.domain.roles import OrgKind, Permission, Principal
from cleanit.services import audit
from cleanit.services.authz import require, require_member
from cleanit.services.context import Context
from cleanit.services.evaluation import parse_period
from cleanit.services.research_tables import (
    AGGREGATES,
    ROW_TABLES,
    AggregateTable,
    Column,
    RowTable,
)
from cleanit.settings import Settings

log = logging.getLogger(__name__)

FORMATS = frozenset({"csv", "parquet"})
Progress = Callable[[str, int, int], None]  # (step, done, total)
Row = dict[str, Any]


def research_key(settings: Settings) -> bytes:
    """The configured key, else a development key generated once under data_dir."""
    if settings.research_key is not None:
        value = settings.research_key.get_secret_value().encode()
        if len(value) < 16:
            raise InvalidInput("CLEANIT_RESEARCH_KEY must be at least 16 characters")
        return value
    path = settings.dev_research_key_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created 0600 in one step: the key is never readable by others, even briefly.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    log.warning(
        "CLEANIT_RESEARCH_KEY is not set: pseudonyms use a DEVELOPMENT key stored in %s. "
        "Production MUST set CLEANIT_RESEARCH_KEY from a secret store (docs/research.md).",
        path,
    )
    return path.read_text().strip().encode()


@dataclass(frozen=True, slots=True)
class Pseudonyms:
    """``kind:id`` → the first 128 bits of HMAC-SHA256 under the key, in hex."""

    key: bytes

    def __call__(self, kind: str, value: object) -> str | None:
        if value is None:
            return None
        mac = hmac.new(self.key, f"{kind}:{value}".encode(), hashlib.sha256)
        return mac.hexdigest()[:32]


@dataclass
class ResearchExport:
    output_dir: Path
    k: int
    row_counts: dict[str, int] = field(default_factory=dict)
    dropped_rows: dict[str, int] = field(default_factory=dict)
    suppressed_cells: dict[str, int] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # name → SHA-256

    @property
    def bundle_sha256(self) -> str:
        lines = "".join(f"{h}  {n}\n" for n, h in sorted(self.files.items()))
        return hashlib.sha256(lines.encode()).hexdigest()


def _truncate(value: Any, how: str) -> str | None:
    if value is None:
        return None
    at: datetime = value.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H" if how == "hour" else "%Y-%m-%d")


def _convert(raw: Row, table: RowTable, pids: Pseudonyms) -> Row:
    row: Row = {}
    for col in table.columns:
        value = raw.get(col.name)
        if col.transform.startswith("pid:"):
            value = pids(col.transform[4:], value)
        elif col.transform in ("date", "hour"):
            value = _truncate(value, col.transform)
        row[col.name] = value
    row["generalised"] = False
    return row


def protect_rows(rows: list[Row], table: RowTable, k: int) -> tuple[list[Row], int]:
    """Generalise dates to the month in quasi-identifier groups below k; drop what stays
    below k. Returns the rows kept and how many were dropped."""
    dates = [c.name for c in table.columns if c.transform in ("date", "hour")]

    def key(row: Row) -> tuple[Any, ...]:
        return tuple(row[q] for q in table.quasi)

    sizes = Counter(key(r) for r in rows)
    for row in rows:
        if sizes[key(row)] < k:
            row["generalised"] = True
            for name in dates:
                if row[name] is not None:
                    row[name] = row[name][:7]
    sizes = Counter(key(r) for r in rows)
    kept = [r for r in rows if sizes[key(r)] >= k]
    return kept, len(rows) - len(kept)


def aggregate(rows: Iterable[Row], spec: AggregateTable, k: int) -> tuple[list[Row], int]:
    """Counts by the spec's dimensions; counts below k are blanked and flagged."""
    names = [d.split(":")[0] for d in spec.dimensions]
    month = {d.split(":")[0] for d in spec.dimensions if d.endswith(":month")}
    counts: Counter[tuple[Any, ...]] = Counter()
    for row in rows:
        counts[
            tuple((row[n][:7] if n in month and row[n] is not None else row[n]) for n in names)
        ] += 1
    out: list[Row] = []
    suppressed = 0
    for values, count in sorted(counts.items(), key=lambda kv: [str(v) for v in kv[0]]):
        small = count < k
        suppressed += small
        out.append(
            {
                **dict(zip(_agg_names(spec), values, strict=True)),
                "count": None if small else count,
                "suppressed": small,
            }
        )
    return out, suppressed


def _agg_names(spec: AggregateTable) -> list[str]:
    return [d.replace("_date:month", "_month").split(":")[0] for d in spec.dimensions]


def _agg_columns(spec: AggregateTable, source: RowTable) -> tuple[Column, ...]:
    by_name = {c.name: c for c in source.columns}
    cols = [
        Column(
            name,
            by_name[d.split(":")[0]].type,
            "Month (UTC, YYYY-MM)." if d.endswith(":month") else by_name[d].description,
        )
        for name, d in zip(_agg_names(spec), spec.dimensions, strict=True)
    ]
    cols.append(Column("count", "int", "How many rows; empty when below k (suppressed)."))
    cols.append(Column("suppressed", "bool", "The count was below k and is not shown."))
    return tuple(cols)


_ARROW = {"string": pa.string(), "int": pa.int64(), "bool": pa.bool_()}


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _write(
    out: Path, name: str, columns: Sequence[Column], rows: list[Row], formats: Sequence[str]
) -> list[Path]:
    written = []
    if "csv" in formats:
        path = out / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow([c.name for c in columns])
            for row in rows:
                w.writerow([_csv_value(row[c.name]) for c in columns])
        written.append(path)
    if "parquet" in formats:
        path = out / f"{name}.parquet"
        schema = pa.schema([(c.name, _ARROW[c.type]) for c in columns])
        data = {c.name: [row[c.name] for row in rows] for c in columns}
        pq.write_table(pa.Table.from_pydict(data, schema=schema), path)
        written.append(path)
    return written


def _dictionary(
    tables: list[tuple[str, str, Sequence[Column]]], k: int, period: str
) -> tuple[str, dict[str, Any]]:
    doc: dict[str, Any] = {"period": period, "k": k, "tables": {}}
    md = [
        "# Data dictionary",
        "",
        f"Period {period}. Identifiers are keyed pseudonyms (HMAC-SHA256, first 128 bits, hex);",
        "the same id has the same pseudonym in every table of exports made with the same key.",
        f"Aggregate counts below k = {k} are suppressed. Row-level quasi-identifier groups",
        "below k have their dates generalised to the month; those still below k are dropped.",
        "",
    ]
    for name, description, columns in tables:
        doc["tables"][name] = {
            "description": description,
            "columns": [
                {"name": c.name, "type": c.type, "description": c.description} for c in columns
            ],
        }
        md += [f"## {name}", "", description, "", "| column | type | description |"]
        md += ["|---|---|---|"]
        md += [f"| {c.name} | {c.type} | {c.description} |" for c in columns]
        md.append("")
    return "\n".join(md), doc


def _scope(ctx: Context, principal: Principal, organisation_slug: str | None) -> int | None:
    """The provider to export (None: every provider, for research organisations only)."""
    require(principal, Permission.EXPORT_RESEARCH)
    research_org = principal.org_kind is OrgKind.RESEARCH
    if organisation_slug is None:
        return None if research_org else principal.organisation_id
    with ctx.sessions() as s:
        org_id = s.scalar(
            text("SELECT id FROM organisations WHERE slug = :slug"), {"slug": organisation_slug}
        )
    if org_id is None:
        raise NotFound(f"no organisation '{organisation_slug}'")
    if not research_org:
        require_member(principal, org_id)
    return int(org_id)


def export_research(
    ctx: Context,
    principal: Principal,
    *,
    organisation_slug: str | None,
    period: str,
    output_dir: Path,
    key: bytes,
    k: int = 10,
    formats: Sequence[str] = ("csv", "parquet"),
    progress: Progress | None = None,
) -> ResearchExport:
    """Write the research tables of ``period`` into ``output_dir`` (which must be empty)."""
    org_id = _scope(ctx, principal, organisation_slug)
    if k < 2:
        raise InvalidInput("k must be at least 2", field="k")
    bad = sorted(set(formats) - FORMATS)
    if bad or not formats:
        raise InvalidInput(f"formats are csv and/or parquet, not {bad}", field="formats")
    if output_dir.exists() and any(output_dir.iterdir()):
        raise InvalidInput(f"{output_dir} is not empty; choose a new directory", field="output")
    start, end = parse_period(period)
    output_dir.mkdir(parents=True, exist_ok=True)
    pids = Pseudonyms(key)
    result = ResearchExport(output_dir=output_dir, k=k)
    steps = len(ROW_TABLES) + len(AGGREGATES) + 1
    done = 0
    described: list[tuple[str, str, Sequence[Column]]] = []
    full: dict[str, list[Row]] = {}
    params = {"org": org_id, "start": start, "end": end}
    written: list[Path] = []
    with ctx.sessions() as s:
        for table in ROW_TABLES:
            raw = s.execute(table.query, params).mappings()
            rows = [_convert(dict(r), table, pids) for r in raw]
            full[table.name] = [dict(r) for r in rows]  # aggregates count before generalising
            kept, dropped = protect_rows(rows, table, k)
            written += _write(output_dir, table.name, table.columns, kept, formats)
            result.row_counts[table.name] = len(kept)
            result.dropped_rows[table.name] = dropped
            described.append((table.name, table.description, table.columns))
            done += 1
            if progress:
                progress(table.name, done, steps)
    sources = {t.name: t for t in ROW_TABLES}
    for spec in AGGREGATES:
        cells, suppressed = aggregate(full[spec.source], spec, k)
        columns = _agg_columns(spec, sources[spec.source])
        written += _write(output_dir, spec.name, columns, cells, formats)
        result.row_counts[spec.name] = len(cells)
        result.suppressed_cells[spec.name] = suppressed
        described.append((spec.name, spec.description, columns))
        done += 1
        if progress:
            progress(spec.name, done, steps)
    md, doc = _dictionary(described, k, period)
    (output_dir / "data_dictionary.md").write_text(md, encoding="utf-8")
    (output_dir / "data_dictionary.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    written += [output_dir / "data_dictionary.md", output_dir / "data_dictionary.json"]
    for path in written:
        result.files[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest = {
        "period": period,
        "k": k,
        "row_counts": result.row_counts,
        "dropped_rows": result.dropped_rows,
        "suppressed_cells": result.suppressed_cells,
        "files": result.files,
        "bundle_sha256": result.bundle_sha256,
    }
    (output_dir / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    with ctx.transaction() as s:
        audit.record(
            s,
            principal,
            "research.exported",
            "organisation",
            org_id if org_id is not None else "all",
            {**manifest, "formats": sorted(formats)},
            at=ctx.now(),
        )
    done += 1
    if progress:
        progress("data dictionary", done, steps)
    return result
