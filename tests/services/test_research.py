"""Research exports: no personal data or free text in any file, k-suppression, stable keyed
pseudonyms, the key never exported, and an audit entry for every export."""

from __future__ import annotations

import base64
import csv
from pathlib import Path

import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from sqlalchemy import select

from cleanit.adapters.db.models import AuditEntry
from cleanit.domain.errors import Forbidden, InvalidInput, NotFound
from cleanit.services.context import Context
from cleanit.services.research import (
    Pseudonyms,
    ResearchExport,
    export_research,
    research_key,
)
from cleanit.settings import Settings
from tests.services.test_evaluation import MARK, Built, build

KEY = b"research-key-for-tests-0123456789"
OTHER_KEY = b"another-research-key-9876543210xx"


@pytest.fixture
def built(ctx: Context) -> Built:
    return build(ctx)


def _export(
    b: Built, out: Path, *, key: bytes = KEY, k: int = 2, who: str = "auditor"
) -> ResearchExport:
    return export_research(
        b.world.ctx,
        b.world.p(who),
        organisation_slug="host-a",
        period="2026",
        output_dir=out,
        key=key,
        k=k,
    )


def _cells(out: Path) -> list[str]:
    """Every value of every exported table, from CSV and from Parquet read back."""
    values: list[str] = []
    for path in sorted(out.glob("*.csv")):
        with path.open(newline="") as f:
            values += [cell for row in csv.reader(f) for cell in row]
    for path in sorted(out.glob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            values += [str(v) for v in row.values()]
    return values


def test_no_planted_marker_and_no_key_in_any_file(built: Built, tmp_path: Path) -> None:
    out = tmp_path / "export"
    steps: list[tuple[str, int, int]] = []
    result = export_research(
        built.world.ctx,
        built.world.p("auditor"),
        organisation_slug="host-a",
        period="2026",
        output_dir=out,
        key=KEY,
        k=2,
        progress=lambda *a: steps.append(a),
    )
    names = {p.name for p in out.iterdir()}
    for table in ("notices", "decisions", "complaints", "matches", "notices_by_month"):
        assert {f"{table}.csv", f"{table}.parquet"} <= names
    assert {"data_dictionary.md", "data_dictionary.json", "manifest.json"} <= names
    assert steps[-1][1] == steps[-1][2] == 9
    cells = _cells(out)
    assert len(cells) > 100  # the tables are not empty
    assert not [c for c in cells if MARK.lower() in c.lower()]
    forbidden = [MARK.encode(), MARK.lower().encode(), b"example.org", b"example.net", KEY]
    forbidden += [KEY.hex().encode(), base64.b64encode(KEY)]
    for path in out.iterdir():
        raw = path.read_bytes()
        assert not [f for f in forbidden if f in raw], path.name
    # Every column of every table is described in the data dictionary.
    dictionary = (out / "data_dictionary.md").read_text()
    with (out / "decisions.csv").open(newline="") as f:
        header = next(csv.reader(f))
    assert all(f"| {c} |" in dictionary for c in header)
    assert result.row_counts["decisions"] >= 4


def test_pseudonyms_are_stable_per_key(built: Built, tmp_path: Path) -> None:
    _export(built, tmp_path / "a")
    _export(built, tmp_path / "b")
    _export(built, tmp_path / "c", key=OTHER_KEY)
    first = (tmp_path / "a" / "decisions.csv").read_text()
    assert first == (tmp_path / "b" / "decisions.csv").read_text()
    assert first != (tmp_path / "c" / "decisions.csv").read_text()
    pid = Pseudonyms(KEY)("decision", built.decisions["n1"])
    assert pid is not None and pid in first
    assert pid not in (tmp_path / "c" / "decisions.csv").read_text()
    assert pid != Pseudonyms(OTHER_KEY)("decision", built.decisions["n1"])


def test_small_cells_are_suppressed_and_small_groups_generalised_or_dropped(
    built: Built, tmp_path: Path
) -> None:
    result = _export(built, tmp_path / "k3", k=3)
    with (tmp_path / "k3" / "notices_by_month.csv").open(newline="") as f:
        cells = list(csv.DictReader(f))
    # Two public notices and two trusted-flagger notices in March, one automated: all < 3.
    assert cells and all(c["suppressed"] == "true" and c["count"] == "" for c in cells)
    parquet = pq.read_table(tmp_path / "k3" / "notices_by_month.parquet").to_pylist()
    assert all(c["count"] is None for c in parquet)
    # Row level, k = 3: no quasi-identifier group of notices reaches 3, even by month.
    assert result.row_counts["notices"] == 0
    assert result.dropped_rows["notices"] == 5
    # k = 2: the pairs received on the same day stay at the day; the automated notice of
    # another day is alone even within its month and is dropped.
    result2 = _export(built, tmp_path / "k2", k=2)
    with (tmp_path / "k2" / "notices.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and result2.dropped_rows["notices"] == 1
    assert {r["received_date"] for r in rows} == {"2026-03-02"}
    with (tmp_path / "k2" / "notices_by_month.csv").open(newline="") as f:
        k2 = {(c["source_type"], c["count"]) for c in csv.DictReader(f)}
    assert ("end_user", "2") in k2 and ("trusted_flagger", "2") in k2


def test_every_export_is_audited(built: Built, tmp_path: Path) -> None:
    result = _export(built, tmp_path / "x")
    with built.world.ctx.sessions() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "research.exported"))
    assert entry is not None
    assert entry.data["row_counts"] == result.row_counts
    assert entry.data["bundle_sha256"] == result.bundle_sha256
    assert set(entry.data["files"]) == set(result.files)


def test_who_may_export(built: Built, tmp_path: Path) -> None:
    # A research organisation exports any provider; the provider's own auditor its own.
    _export(built, tmp_path / "r", who="researcher")
    with pytest.raises(NotFound):
        _export(built, tmp_path / "o", who="other_admin")
    with pytest.raises(Forbidden):
        _export(built, tmp_path / "v", who="reviewer")
    with pytest.raises(InvalidInput):
        _export(built, tmp_path / "r")  # not empty


def test_dev_key_is_generated_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    key = research_key(settings)
    assert key == research_key(settings) and len(key) >= 32
    assert (tmp_path / "research-dev.key").stat().st_mode & 0o077 == 0
