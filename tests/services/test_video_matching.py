"""Videos through banks and matching (real PostgreSQL; videos generated in code): a bank of
vPDQ hashes catches a re-encoded copy, a video MD5 catches the same file, and a video seen
before its hash was listed is matched retroactively."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from cleanit.adapters.content import hash_content_bytes, hash_content_file
from cleanit.adapters.db.models import Case
from cleanit.adapters.matching.live import MatchIndexes
from cleanit.domain.errors import InvalidInput
from cleanit.domain.signals import SignalType
from cleanit.services import banks, matching
from cleanit.services.context import Context
from tests.adapters.test_video import write_video
from tests.services.test_rematching import run_jobs, seen_at
from tests.world import World, build_world


def video(seed: int, **kwargs: object) -> bytes:
    out = io.BytesIO()
    write_video(out, seed, **kwargs)  # type: ignore[arg-type]
    return out.getvalue()


@pytest.fixture(scope="module")
def clips() -> dict[str, bytes]:
    return {
        "original": video(1),
        "copy": video(1, codec="libvpx", container="webm", size=(96, 72)),
        "other": video(2),
    }


@pytest.fixture
def world(ctx: Context) -> World:
    ctx.matching = MatchIndexes(refresh_interval=0)
    return build_world(ctx)


def signal(data: bytes, kind: SignalType) -> str:
    (result,) = [r for r in hash_content_bytes(data) if r.signal_type is kind]
    assert result.hash is not None
    return result.hash.value


def test_a_re_encoded_copy_of_a_listed_video_matches_and_opens_a_case(
    world: World, clips: dict[str, bytes]
) -> None:
    ctx, admin, reviewer = world.ctx, world.p("admin"), world.p("reviewer")
    bank = banks.create_bank(ctx, admin, name="videos", labels=["content_type:video"])
    vpdq = banks.add_entry(
        ctx, admin, bank.id, signal_type="vpdq", value=signal(clips["original"], SignalType.VPDQ)
    )
    md5 = banks.add_entry(
        ctx,
        admin,
        bank.id,
        signal_type="video_md5",
        value=signal(clips["original"], SignalType.VIDEO_MD5),
    )

    url = "https://host-a.example.org/watch/re-encoded"
    result = matching.match_content(ctx, reviewer, data=clips["copy"], url=url)
    assert [(m.entry_id, m.signal_type) for m in result.matches] == [(vpdq.id, "vpdq")]
    assert result.matches[0].distance <= 20 and "content_type:video" in result.matches[0].labels
    assert result.case_id is not None
    with ctx.sessions() as s:
        case = s.get(Case, result.case_id)
        assert case is not None and case.state == "open"

    # The very same file also matches by its video MD5 (distance 0).
    same = matching.match_content(ctx, reviewer, data=clips["original"])
    assert {(m.entry_id, m.distance) for m in same.matches} >= {(md5.id, 0), (vpdq.id, 0)}
    # Another video matches nothing.
    assert matching.match_content(ctx, reviewer, data=clips["other"]).matches == []
    # Lookup by the vPDQ hash a platform computed itself.
    copy_hash = signal(clips["copy"], SignalType.VPDQ)
    (m,) = matching.lookup(ctx, reviewer, "vpdq", [copy_hash])[copy_hash]
    assert m.entry_id == vpdq.id


def test_a_video_seen_before_its_hash_was_listed_is_matched_retroactively(
    world: World, clips: dict[str, bytes]
) -> None:
    ctx, admin = world.ctx, world.p("admin")
    bank = banks.create_bank(ctx, admin, name="videos later")
    first = seen_at(world, timedelta(hours=5), clips["copy"], "https://host-a.example.org/w/1")
    assert first.matches == []
    banks.add_entry(
        ctx, admin, bank.id, signal_type="vpdq", value=signal(clips["original"], SignalType.VPDQ)
    )
    (report,) = run_jobs(ctx)
    assert (report.contents, report.cases) == (1, 1)
    with ctx.sessions() as s:
        assert len(s.scalars(select(Case)).all()) == 1


def test_a_removed_video_entry_stops_matching(world: World, clips: dict[str, bytes]) -> None:
    ctx, admin, reviewer = world.ctx, world.p("admin"), world.p("reviewer")
    bank = banks.create_bank(ctx, admin, name="v")
    e = banks.add_entry(
        ctx, admin, bank.id, signal_type="vpdq", value=signal(clips["original"], SignalType.VPDQ)
    )
    assert matching.match_content(ctx, reviewer, data=clips["copy"]).matches
    banks.remove_entry(ctx, admin, bank.id, e.id)
    assert matching.match_content(ctx, reviewer, data=clips["copy"]).matches == []


def test_bad_vpdq_hashes_and_broken_videos_are_refused_clearly(
    world: World, clips: dict[str, bytes], tmp_path: Path
) -> None:
    ctx, admin, reviewer = world.ctx, world.p("admin"), world.p("reviewer")
    bank = banks.create_bank(ctx, admin, name="v")
    with pytest.raises(InvalidInput) as err:
        banks.add_entry(ctx, admin, bank.id, signal_type="vpdq", value='["abc,100,0.0"]')
    assert err.value.field == "value" and "frame 1" in err.value.detail
    broken = clips["original"][: len(clips["original"]) // 2]
    with pytest.raises(InvalidInput) as err:
        matching.match_content(ctx, reviewer, data=broken)
    assert "MP4/MOV file (corrupt or truncated?)" in err.value.detail
    path = tmp_path / "clip.webm"
    path.write_bytes(clips["copy"])
    kinds = {r.signal_type for r in hash_content_file(path)}
    assert kinds == {SignalType.MD5, SignalType.SHA256, SignalType.VIDEO_MD5, SignalType.VPDQ}
