"""Banks and their entries through the services, on real PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cleanit.adapters.db.models import AuditEntry, BankEntry
from cleanit.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from cleanit.services import banks
from cleanit.services.context import Context
from tests.world import World, build_world

MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
PDQ = "f" * 16 + "0" * 48


@pytest.fixture
def world(ctx: Context) -> World:
    return build_world(ctx)


def actions(ctx: Context) -> list[str]:
    with ctx.sessions() as s:
        return list(s.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all())


def test_bank_lifecycle_is_authorised_and_audited(world: World) -> None:
    ctx = world.ctx
    b = banks.create_bank(
        ctx,
        world.p("legal"),
        name="Invented group logos",
        labels=["Entity:invented-group", "content_type:image"],
    )
    assert b.labels == ["content_type:image", "entity:invented-group"]
    assert b.thresholds == {
        "pdq": 31,
        "md5": 0,
        "sha256": 0,
        "url": 0,
        "video_md5": 0,
        "text_minhash": 40,
        "vpdq": 20,
    }
    assert (b.mode, b.enabled, b.negative, b.entry_count) == ("review", True, False, 0)
    # Reviewers and auditors read; they cannot change anything.
    assert [x.id for x in banks.list_banks(ctx, world.p("auditor"))] == [b.id]
    with pytest.raises(Forbidden):
        banks.create_bank(ctx, world.p("reviewer"), name="mine")
    with pytest.raises(Forbidden):
        banks.update_bank(ctx, world.p("auditor"), b.id, enabled=False)
    # Another organisation cannot tell the bank exists.
    with pytest.raises(NotFound):
        banks.get_bank(ctx, world.p("other_reviewer"), b.id)
    with pytest.raises(NotFound):
        banks.update_bank(ctx, world.p("other_admin"), b.id, enabled=False)
    with pytest.raises(NotFound):
        banks.add_entry(ctx, world.p("other_admin"), b.id, signal_type="md5", value=MD5)
    assert banks.list_banks(ctx, world.p("other_reviewer")) == []

    updated = banks.update_bank(ctx, world.p("admin"), b.id, enabled=False, thresholds={"pdq": 20})
    assert not updated.enabled and updated.thresholds["pdq"] == 20
    with pytest.raises(InvalidInput) as exc:
        banks.update_bank(ctx, world.p("admin"), b.id, mode="auto_action")
    assert exc.value.field == "mode" and "needs the action to take" in exc.value.detail
    with pytest.raises(Conflict):
        banks.create_bank(ctx, world.p("admin"), name="Invented group logos")
    assert actions(ctx)[-2:] == ["bank.created", "bank.updated"]


@pytest.mark.parametrize(
    ("signal_type", "value", "field", "words"),
    [
        ("md5", MD5[:-1], "value", "exactly 32"),
        ("md5", "0x" + MD5[2:], "value", "0x"),
        ("sha256", SHA[:-1] + "g", "value", "hexadecimal"),
        ("pdq", PDQ + "00", "value", "exactly 64"),
        ("url", "not a url", "value", "space"),
        ("url", "ftp://example.org/x", "value", "http(s)"),
        ("phash", MD5, "signal_type", "unknown signal type"),
        ("video_md5", MD5[:-2], "value", "exactly 32"),
        ("text_minhash", "ab" * 100, "value", "1024 hex characters"),
        ("text_minhash", "z" * 1024, "value", "hexadecimal"),
    ],
)
def test_entry_validation_names_the_field(
    world: World, signal_type: str, value: str, field: str, words: str
) -> None:
    b = banks.create_bank(world.ctx, world.p("admin"), name="b")
    with pytest.raises(InvalidInput) as exc:
        banks.add_entry(world.ctx, world.p("admin"), b.id, signal_type=signal_type, value=value)
    assert exc.value.field == field
    assert words in exc.value.detail


def test_entries_add_list_remove_with_provenance(world: World) -> None:
    ctx, admin = world.ctx, world.p("admin")
    b = banks.create_bank(ctx, admin, name="b")
    e = banks.add_entry(
        ctx, admin, b.id, signal_type="MD5", value=MD5.upper(), labels=["behaviour:recruitment"]
    )
    assert (e.signal_type, e.value, e.source) == ("md5", MD5, "local")
    assert e.added_by == f"user:{world.user_ids['admin']}"
    with pytest.raises(Conflict):
        banks.add_entry(ctx, admin, b.id, signal_type="md5", value=MD5)
    with pytest.raises(InvalidInput) as exc:
        banks.add_entry(ctx, admin, b.id, signal_type="md5", value=MD5, labels=["colour:red"])
    assert exc.value.field == "labels"
    u = banks.add_entry(
        ctx, admin, b.id, signal_type="url", value="https://WWW.Example.org/a/?utm_source=x"
    )
    assert u.value == "https://example.org/a"
    rows, total = banks.list_entries(ctx, world.p("reviewer"), b.id)
    assert total == 2 and [r.id for r in rows] == [e.id, u.id]
    removed = banks.remove_entry(ctx, admin, b.id, e.id, reason="mistake")
    assert removed.removed_at is not None and removed.removed_by == e.added_by
    with pytest.raises(Conflict):
        banks.remove_entry(ctx, admin, b.id, e.id)
    assert banks.list_entries(ctx, admin, b.id)[1] == 1
    assert banks.list_entries(ctx, admin, b.id, include_removed=True)[1] == 2
    assert banks.get_bank(ctx, admin, b.id).entry_count == 1
    # The removed hash can be listed again.
    banks.add_entry(ctx, admin, b.id, signal_type="md5", value=MD5)
    assert actions(ctx)[-4:] == [
        "bank_entry.added",
        "bank_entry.added",
        "bank_entry.removed",
        "bank_entry.added",
    ]


def test_import_is_all_or_nothing_with_a_line_report(world: World) -> None:
    ctx, admin = world.ctx, world.p("analyst")  # referral units keep banks too
    b = banks.create_bank(ctx, admin, name="iru list")
    bad = f"signal_type,value,labels\nmd5,{MD5},entity:x\nsha256,{SHA[:10]},\n\npdq,{PDQ},oops\n"
    with pytest.raises(InvalidInput) as exc:
        banks.import_entries(ctx, admin, b.id, filename="list.csv", text=bad)
    assert exc.value.field == "csv"
    assert "line 3 (value)" in exc.value.detail and "line 5 (labels)" in exc.value.detail
    assert "line 2" not in exc.value.detail
    assert banks.list_entries(ctx, admin, b.id)[1] == 0  # nothing was imported
    good = f"md5,{MD5},entity:x;content_type:image\npdq,{PDQ}\n# comment\nmd5,{MD5.upper()}\n"
    report = banks.import_entries(ctx, admin, b.id, filename="list.csv", text=good)
    assert (report.added, report.skipped_duplicates) == (2, 1)
    rows, _ = banks.list_entries(ctx, admin, b.id)
    assert {r.source for r in rows} == {"import:list.csv"}
    assert rows[0].labels == ["content_type:image", "entity:x"]
    with ctx.sessions() as s:
        seqs = s.scalars(select(BankEntry.changed_seq).order_by(BankEntry.id)).all()
    assert len(set(seqs)) == 2  # every entry has its own change number
