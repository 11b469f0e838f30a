"""`cleanit hash`, `cleanit banks import` and `cleanit match` on generated benign images."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from typer.testing import CliRunner, Result

from cleanit.cli.main import app
from cleanit.services import banks
from cleanit.services.context import Context
from tests.world import World, build_world


def picture(path: Path, seed: int) -> Path:
    """Generated shapes: benign stand-ins for known content."""
    img = Image.new("RGB", (320, 240), (20 + seed * 40 % 200, 90, 160))
    draw = ImageDraw.Draw(img)
    for i in range(6):
        x = (seed * 37 + i * 53) % 260
        y = (seed * 17 + i * 29) % 180
        draw.rectangle([x, y, x + 50, y + 40], fill=((i * 40 + seed * 60) % 255, 200, i * 30))
        draw.ellipse([y, x % 200, y + 30, x % 200 + 30], fill=(250, (seed * 90) % 255, 10))
    img.save(path, quality=92)
    return path


@pytest.fixture
def run(ctx: Context, database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    env = {
        "CLEANIT_DATABASE_URL": database_url,
        "CLEANIT_DATA_DIR": str(tmp_path / "d"),
        "COLUMNS": "250",
    }
    return lambda *args: runner.invoke(app, list(args), env=env)


@pytest.fixture
def world(ctx: Context) -> World:
    return build_world(ctx)


def test_hash_prints_every_signal_and_fails_on_a_bad_file(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    img = picture(tmp_path / "a.jpg", 1)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(img.read_bytes()[:200])
    ok: Result = run("hash", str(img))
    assert ok.exit_code == 0, ok.output
    assert hashlib.md5(img.read_bytes()).hexdigest() in ok.output  # noqa: S324 - a test oracle
    assert "pdq" in ok.output and "sha256" in ok.output
    failed: Result = run("hash", str(tmp_path))  # a folder: both files
    assert failed.exit_code == 1
    assert "broken.jpg" in failed.output and "error" in failed.output


def test_import_then_match_the_known_file(run, world: World, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    known = picture(tmp_path / "known.jpg", 2)
    banks.create_bank(world.ctx, world.p("legal"), name="demo-known", labels=["content_type:image"])
    md5 = hashlib.md5(known.read_bytes()).hexdigest()  # noqa: S324 - a test oracle
    csv = tmp_path / "hashes.csv"
    csv.write_text(f"md5,{md5},\n")
    imported: Result = run("banks", "import", str(csv), "--bank", "demo-known", "--org", "host-a")
    assert imported.exit_code == 0, imported.output
    assert "Imported 1 hash(es)" in imported.output
    other = picture(tmp_path / "other.jpg", 5)
    matched: Result = run("match", str(known), str(other), "--org", "host-a")
    assert matched.exit_code == 0, matched.output
    assert "demo-known" in matched.output and "known.jpg" in matched.output
    assert "other.jpg" not in matched.output
    missing: Result = run("banks", "import", str(csv), "--bank", "nope", "--org", "host-a")
    assert missing.exit_code == 1 and "no bank 'nope'" in missing.output


def test_demo_bank_catches_the_reuploaded_copies(run, ctx: Context, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from cleanit.demo.seed import seed

    seed(ctx)
    folder = tmp_path / "demo-images"
    written: Result = run("demo", "images", str(folder))
    assert written.exit_code == 0, written.output
    matched: Result = run("match", str(folder), "--org", "example-video")
    assert matched.exit_code == 0, matched.output
    rows = [line for line in matched.output.splitlines() if "demo-known-content" in line]
    copies = (
        "blue-squares-reupload",
        "gradient-poster-reupload",
        "garden-club-clip-reupload",  # re-encoded smaller as WebM: vPDQ
        "garden-club-leaflet-repost",  # edited text: MinHash
    )
    caught = {name for name in copies if any(name in r for r in rows)}
    assert caught == set(copies)
    assert not any("holiday-snap" in r for r in rows)
