"""Preservation holds (TCO Art 6) on a real PostgreSQL and a real encrypted vault on disk:
a removal starts a hold, only entitled roles open it and only with a purpose, every opening
is logged, an authority extends it with reasons, expiry deletes it, and its evidence package
verifies offline."""

from __future__ import annotations

import base64
import json
import os
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cleanit import bootstrap
from cleanit.adapters.db.models import AuditEntry, PreservationAccess, PreservationHold
from cleanit.adapters.evidence import verify_package
from cleanit.adapters.vault import BlobRef, FileVault
from cleanit.domain.decisions import Action
from cleanit.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PrincipleViolation,
)
from cleanit.domain.holds import add_months
from cleanit.domain.notices import SourceType
from cleanit.services import maintenance, preservation
from cleanit.services.context import Context
from cleanit.settings import Settings
from tests.preservation_support import START, Clock, file_vault, hold_of, removed
from tests.world import World, build_world

PURPOSE = {"purpose": "complaint", "reason": "Complaint C-12 by the uploader against removal"}


@pytest.fixture
def clock(ctx: Context) -> Clock:
    c = Clock()
    ctx.clock = c
    return c


@pytest.fixture
def vault(ctx: Context, tmp_path: Path) -> FileVault:
    v = file_vault(tmp_path / "preserved")
    ctx.vault = v
    return v


@pytest.fixture
def world(ctx: Context, clock: Clock, vault: FileVault) -> World:
    return build_world(ctx)


def actions(ctx: Context, action: str) -> list[AuditEntry]:
    with ctx.sessions() as s:
        return list(
            s.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
            )
        )


def refs(hold: PreservationHold) -> list[BlobRef]:
    return [BlobRef(**i["blob"]) for i in hold.items]


def test_a_removal_preserves_the_record_encrypted_for_six_months(
    world: World, vault: FileVault
) -> None:
    url = "https://host-a.example.org/v/preserve-1"
    case_id, d = removed(world, url)
    hold = hold_of(world.ctx, case_id)
    assert hold.decision_id == d.id and hold.status == "active"
    # 31 August + 6 calendar months is 28 February (the month's last day), same time.
    assert hold.expires_at == add_months(START, 6) == START.replace(year=2027, month=2, day=28)
    (ref,) = refs(hold)
    path = vault.path_of(ref)
    assert path.is_file()
    assert url.encode() not in path.read_bytes()  # encrypted at rest
    [entry] = actions(world.ctx, "preservation.held")
    assert entry.entity_id == str(hold.id) and entry.data["items"][0]["sha256"] == ref.sha256
    # The record holds the related data; the notifier's personal data stays out.
    aad = f"cleanit preservation hold {hold.id} item record.json".encode()
    record = json.loads(vault.get(ref, aad=aad))
    assert record["content"]["url"] == url and record["content"]["uploader_ref"] == "u-77"
    assert record["decision"]["action"] == "remove"
    assert record["statement_of_reasons"]["restriction"]["action"] == "remove"
    assert "Pat Public" not in json.dumps(record) and "pat@public" not in json.dumps(record)


@pytest.mark.parametrize("action", [Action.LABEL, Action.RESTRICT_VISIBILITY])
def test_decisions_that_leave_the_content_up_preserve_nothing(world: World, action: Action) -> None:
    removed(world, f"https://host-a.example.org/v/{action.value}", action=action)
    with world.ctx.sessions() as s:
        assert s.scalar(select(func.count()).select_from(PreservationHold)) == 0


def test_only_entitled_roles_open_a_hold_and_only_with_a_purpose(world: World) -> None:
    ctx = world.ctx
    case_id, _ = removed(world, "https://host-a.example.org/v/access")
    hold = hold_of(ctx, case_id)
    for who in ("reviewer", "admin", "auditor", "complaints"):
        with pytest.raises(Forbidden):
            preservation.open_item(ctx, world.p(who), hold.id, "record.json", **PURPOSE)
    # Another provider, and an authority without standing: as if the hold did not exist.
    with pytest.raises(Forbidden):
        preservation.open_item(ctx, world.p("other_reviewer"), hold.id, "record.json", **PURPOSE)
    with pytest.raises(NotFound):
        preservation.open_item(ctx, world.p("authority"), hold.id, "record.json", **PURPOSE)
    with pytest.raises(InvalidInput) as no_purpose:
        preservation.open_item(
            ctx, world.p("legal"), hold.id, "record.json", purpose=None, reason=None
        )
    assert no_purpose.value.field == "purpose"
    with pytest.raises(InvalidInput) as curious:
        preservation.open_item(
            ctx, world.p("legal"), hold.id, "record.json", purpose="curiosity", reason="x" * 20
        )
    assert "not a purpose" in curious.value.detail
    with pytest.raises(InvalidInput) as vague:
        preservation.open_item(
            ctx, world.p("legal"), hold.id, "record.json", purpose="review", reason="because"
        )
    assert vague.value.field == "reason"
    with world.ctx.sessions() as s:  # refusals open nothing and log nothing
        assert s.scalar(select(func.count()).select_from(PreservationAccess)) == 0

    item, chunks = preservation.open_item(ctx, world.p("legal"), hold.id, "record.json", **PURPOSE)
    assert json.loads(b"".join(chunks))["content"]["url"].endswith("/v/access")
    assert item.media_type == "application/json"
    preservation.open_item(ctx, world.p("legal2"), hold.id, "record.json", **PURPOSE)
    log = preservation.list_accesses(ctx, world.p("auditor"), hold.id)
    assert [(a.actor, a.items) for a in log] == [
        (f"user:{world.user_ids['legal']}", ["record.json"]),
        (f"user:{world.user_ids['legal2']}", ["record.json"]),
    ]
    assert log[0].purpose == "complaint: Complaint C-12 by the uploader against removal"
    audited = actions(ctx, "preservation.accessed")
    assert [a.data["purpose"] for a in audited] == ["complaint", "complaint"]
    assert audited[0].actor == f"user:{world.user_ids['legal']}"


def test_the_platform_adds_the_removed_file_which_is_read_back_intact(
    world: World, vault: FileVault
) -> None:
    ctx = world.ctx
    case_id, _ = removed(world, "https://host-a.example.org/v/upload")
    hold = hold_of(ctx, case_id)
    video = bytes(range(256)) * 20  # several 1 KiB chunks
    with pytest.raises(Forbidden):
        preservation.add_content(ctx, world.p("legal"), hold.id, [video], filename="v.mp4")
    with pytest.raises(NotFound):
        preservation.add_content(ctx, world.p("other_admin"), hold.id, [video])
    view = preservation.add_content(
        ctx,
        world.p("admin"),
        hold.id,
        (video[i : i + 700] for i in range(0, len(video), 700)),
        filename="../../etc/clip one.mp4",
        media_type="video/mp4",
    )
    added = view.items[1]
    assert added.name == "content-001-etc-clip-one.mp4"  # one safe path component
    assert (added.size, added.source, added.media_type) == (len(video), "platform", "video/mp4")
    _, chunks = preservation.open_item(ctx, world.p("legal"), hold.id, added.name, **PURPOSE)
    assert b"".join(chunks) == video
    with pytest.raises(InvalidInput):
        preservation.add_content(ctx, world.p("admin"), hold.id, [b""])
    assert len(hold_of(ctx, case_id).items) == 2  # the refused upload left nothing behind
    assert sum(1 for _ in vault.directory.rglob("*.bin")) == 2


def test_an_authority_with_standing_extends_the_hold_with_reasons(world: World) -> None:
    ctx = world.ctx
    case_id, _ = removed(
        world,
        "https://host-a.example.org/v/authority",
        notifier="authority",
        source=SourceType.AUTHORITY_NOTICE,
    )
    hold = hold_of(ctx, case_id)
    assert hold.authority_org_ids == [world.org_ids["authority"]]
    with pytest.raises(InvalidInput) as short:
        preservation.extend(ctx, world.p("authority"), hold.id, reasons="needed", months=3)
    assert short.value.field == "reasons"
    reasons = "Criminal proceedings 2026/114 at the invented district court are ongoing."
    view = preservation.extend(ctx, world.p("authority"), hold.id, reasons=reasons, months=3)
    assert view.expires_at == START.replace(year=2027, month=5, day=28)
    assert view.extensions[0]["requested_by"] == "Org authority"
    # The provider's lawyers record a court's request, naming the court.
    with pytest.raises(InvalidInput) as unnamed:
        preservation.extend(ctx, world.p("legal"), hold.id, reasons=reasons, days=10)
    assert unnamed.value.field == "requested_by"
    view = preservation.extend(
        ctx, world.p("legal"), hold.id, reasons=reasons, days=10, requested_by="District court"
    )
    assert view.expires_at == START.replace(year=2027, month=6, day=7)
    for who in ("reviewer", "auditor", "admin"):
        with pytest.raises(Forbidden):
            preservation.extend(ctx, world.p(who), hold.id, reasons=reasons, months=1)
    assert [e.data["requested_by"] for e in actions(ctx, "preservation.extended")] == [
        "Org authority",
        "District court",
    ]
    # The authority sees this hold in its list; host-a sees it too; host-b does not.
    assert [h.id for h in preservation.list_holds(ctx, world.p("authority"))[0]] == [hold.id]
    assert preservation.list_holds(ctx, world.p("other_admin"))[1] == 0


def test_expiry_deletes_the_blobs_and_audits_the_deletion(
    world: World, clock: Clock, vault: FileVault
) -> None:
    ctx = world.ctx
    case_id, _ = removed(world, "https://host-a.example.org/v/expiry")
    hold = hold_of(ctx, case_id)
    preservation.add_content(ctx, world.p("admin"), hold.id, [b"the removed file"])
    paths = [vault.path_of(r) for r in refs(hold_of(ctx, case_id))]
    assert all(p.is_file() for p in paths)
    clock.move(hold.expires_at - START - timedelta(seconds=1))
    assert maintenance.sweep(ctx).preservation_holds_expired == 0  # a second early: kept
    assert all(p.is_file() for p in paths)
    clock.move(timedelta(seconds=1))
    assert maintenance.sweep(ctx).preservation_holds_expired == 1
    assert not any(p.exists() for p in paths)
    after = hold_of(ctx, case_id)
    assert (after.status, after.deleted_at) == ("expired", clock.now)
    [entry] = actions(ctx, "preservation.expired")
    assert entry.actor == "system" and [d["name"] for d in entry.data["deleted"]] == [
        "record.json",
        "content-001-content",
    ]
    assert maintenance.sweep(ctx).preservation_holds_expired == 0  # done once
    with pytest.raises(Conflict) as gone:
        preservation.open_item(ctx, world.p("legal"), hold.id, "record.json", **PURPOSE)
    assert "deleted" in gone.value.detail
    with pytest.raises(Conflict):
        preservation.extend(
            ctx, world.p("legal"), hold.id, reasons="x" * 30, months=1, requested_by="A court"
        )


def test_an_extension_asked_after_expiry_is_refused(world: World, clock: Clock) -> None:
    ctx = world.ctx
    case_id, _ = removed(world, "https://host-a.example.org/v/late")
    hold = hold_of(ctx, case_id)
    clock.move(hold.expires_at - START + timedelta(minutes=1))  # due, sweep not yet run
    with pytest.raises(PrincipleViolation):
        preservation.extend(
            ctx, world.p("legal"), hold.id, reasons="x" * 30, months=1, requested_by="A court"
        )


def test_the_evidence_package_verifies_offline_and_the_export_is_audited(
    world: World, tmp_path: Path
) -> None:
    ctx = world.ctx
    case_id, _ = removed(world, "https://host-a.example.org/v/evidence")
    hold = hold_of(ctx, case_id)
    preservation.add_content(
        ctx, world.p("admin"), hold.id, [b"\x89PNG invented"], filename="frame.png"
    )
    out = tmp_path / "package.zip"
    with pytest.raises(Forbidden):
        preservation.export_evidence(ctx, world.p("auditor"), hold.id, out, **PURPOSE)
    info = preservation.export_evidence(ctx, world.p("legal"), hold.id, out, **PURPOSE)
    report = verify_package(out)
    assert report.ok, report.problems
    assert report.manifest_sha256 == info.manifest_sha256
    with zipfile.ZipFile(out) as zf:
        assert zf.read("content/content-001-frame.png") == b"\x89PNG invented"
        record = json.loads(zf.read("content/record.json"))
        assert record["hold_id"] == hold.id
        audit_lines = zf.read("audit.jsonl").decode().splitlines()
        metadata = json.loads(zf.read("metadata.json"))
    # The excerpt runs from the case's first entry to the access logged for this export.
    actions_in = [json.loads(line)["action"] for line in audit_lines]
    assert actions_in[-1] == "preservation.accessed"
    assert {"decision.in_force", "preservation.held"} <= set(actions_in)
    assert metadata["export"]["purpose"] == "complaint"
    [exported] = actions(ctx, "evidence.exported")
    assert exported.data["package_id"] == info.package_id
    assert exported.data["manifest_sha256"] == info.manifest_sha256
    # A changed byte is caught offline.
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(damaged, "w") as dst:
        for zi in src.infolist():
            data = src.read(zi)
            if zi.filename == "content/content-001-frame.png":
                data = data.replace(b"invented", b"INVENTED")
            dst.writestr(zi, data)
    assert [p.kind for p in verify_package(damaged).problems] == ["changed"]


def test_a_rolled_back_decision_leaves_no_orphan_blob(world: World, vault: FileVault) -> None:
    """The record is sealed inside the decision's transaction; if that fails, the blob goes."""
    ctx = world.ctx
    with pytest.raises(RuntimeError), ctx.transaction() as s:
        ref = vault.put(b"x", aad=b"t")
        preservation._forget_on_rollback(s, vault, ref)
        raise RuntimeError("boom")
    assert not vault.exists(ref)


def test_preserved_items_survive_in_memory_vault_default(ctx: Context) -> None:
    """Contexts built without a vault (tests) still preserve, in memory, sealed."""
    world = build_world(ctx)
    case_id, _ = removed(world, "https://host-a.example.org/v/memory")
    hold = hold_of(ctx, case_id)
    _, chunks = preservation.open_item(ctx, world.p("legal"), hold.id, "record.json", **PURPOSE)
    assert b"/v/memory" in b"".join(chunks)


def test_without_a_configured_key_a_dev_key_is_generated_once_and_said_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    first = bootstrap.vault(settings)
    key_file = settings.dev_preservation_key_file
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert "DEVELOPMENT key" in caplog.text and "MUST set CLEANIT_PRESERVATION_KEY" in caplog.text
    ref = first.put(b"kept across restarts", aad=b"a")
    again = bootstrap.vault(settings)  # a restart reads the same key
    assert again.get(ref, aad=b"a") == b"kept across restarts"
    assert again.directory == tmp_path / "var" / "preserved"


def test_a_configured_key_is_used_and_a_bad_one_stops_the_start(tmp_path: Path) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    v = bootstrap.vault(Settings(data_dir=tmp_path, preservation_key=f"2026-01:{key}"))
    assert v.keyring.current_id == "2026-01"
    assert not Settings(data_dir=tmp_path).dev_preservation_key_file.exists()
    with pytest.raises(InvalidInput) as short:
        bootstrap.vault(Settings(data_dir=tmp_path, preservation_key="c2hvcnQ="))
    assert "32" in short.value.detail and short.value.field == "CLEANIT_PRESERVATION_KEY"
