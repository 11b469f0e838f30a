"""Exporting banks as STIX 2.1 bundles and CSV, on real PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
import stix2  # type: ignore[import-untyped]

from cleanit.domain import stix
from cleanit.domain.errors import Forbidden, NotFound
from cleanit.services import banks, exports
from cleanit.services.context import Context
from tests.world import World, build_world

MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
PDQ = "f" * 16 + "0" * 48
URL = "https://example.org/it's/here"  # canonical URLs keep quotes; backslashes become %5C
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def world(ctx: Context) -> World:
    return build_world(ctx)


def filled_bank(world: World) -> int:
    """A bank at host-a with one entry of each kind (a minute apart) and one removed."""
    ctx = world.ctx
    ticks = iter(START + timedelta(minutes=i) for i in range(100))
    ctx.clock = lambda: next(ticks)
    bank = banks.create_bank(
        ctx, world.p("legal"), name="Invented logos", labels=["entity:invented-group"]
    )
    for kind, value, labels in [
        ("md5", MD5, ["content_type:image"]),
        ("sha256", SHA, []),
        ("pdq", PDQ, ["content_type:image"]),
        ("url", URL, []),
    ]:
        banks.add_entry(
            ctx, world.p("legal"), bank.id, signal_type=kind, value=value, labels=labels
        )
    gone = banks.add_entry(ctx, world.p("legal"), bank.id, signal_type="md5", value="a" * 32)
    banks.remove_entry(ctx, world.p("legal"), bank.id, gone.id)
    return bank.id


def test_stix_bundle_parses_and_carries_every_live_entry(world: World) -> None:
    bank_id = filled_bank(world)
    text = exports.export_stix(world.ctx, world.p("reviewer"), bank_id)
    bundle = stix2.parse(text)  # validates the objects and every pattern
    kinds = [o.type for o in bundle.objects]
    assert kinds == ["identity", "indicator", "indicator", "indicator", "indicator"]
    org = bundle.objects[0]
    assert org.identity_class == "organization"
    assert org.id == stix.identity_id(world.org_ids["host-a"])
    patterns = {o.pattern for o in bundle.objects[1:]}
    assert patterns == {
        f"[file:hashes.MD5 = '{MD5}']",
        f"[file:hashes.'SHA-256' = '{SHA}']",
        f"[file:hashes.PDQ = '{PDQ}']",
        "[url:value = 'https://example.org/it\\'s/here']",
    }
    by_pattern = {o.pattern: o for o in bundle.objects[1:]}
    md5 = by_pattern[f"[file:hashes.MD5 = '{MD5}']"]
    assert md5.labels == ["content_type:image", "entity:invented-group"]
    assert md5.valid_from == START + timedelta(minutes=1)  # the entry's added_at
    assert md5.created_by_ref == org.id
    assert md5.pattern_type == "stix"
    assert md5.id == stix.indicator_id(bank_id, "md5", MD5)
    # The removed hash is not exported.
    assert "a" * 32 not in text


def test_reexports_give_the_same_ids(world: World) -> None:
    bank_id = filled_bank(world)
    first = json.loads(exports.export_stix(world.ctx, world.p("reviewer"), bank_id))
    second = json.loads(exports.export_stix(world.ctx, world.p("legal"), bank_id))
    assert first["id"] == second["id"]
    assert [o["id"] for o in first["objects"]] == [o["id"] for o in second["objects"]]
    assert len({o["id"] for o in first["objects"]}) == 5
    # The same hash in another bank is another indicator.
    assert stix.indicator_id(bank_id, "md5", MD5) != stix.indicator_id(bank_id + 1, "md5", MD5)
    assert stix.indicator_id(bank_id, "md5", MD5) != stix.indicator_id(bank_id, "md5", "b" * 32)


def test_patterns_escape_quotes_and_backslashes() -> None:
    assert stix.escape_literal("a'b\\c") == "a\\'b\\\\c"
    assert stix.pattern("url", "https://example.org/'] OR [x") == (
        "[url:value = 'https://example.org/\\'] OR [x']"
    )
    assert stix.pattern("video_md5", MD5) == f"[file:hashes.MD5 = '{MD5}']"


def test_csv_export_round_trips_into_another_bank(world: World) -> None:
    bank_id = filled_bank(world)
    text = exports.export_csv(world.ctx, world.p("auditor"), bank_id)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["signal_type", "value", "labels", "added_at", "source"]
    assert [r[:3] for r in rows[1:]] == [
        ["md5", MD5, "content_type:image"],
        ["sha256", SHA, ""],
        ["pdq", PDQ, "content_type:image"],
        ["url", URL, ""],
    ]
    assert rows[1][3:] == ["2026-03-01T12:01:00.000000Z", "local"]
    copy = banks.create_bank(world.ctx, world.p("legal"), name="Copy")
    # import_entries reads signal_type,value[,labels]: keep those columns of each row.
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(r[:3] for r in rows)
    report = banks.import_entries(
        world.ctx, world.p("legal"), copy.id, filename="export.csv", text=out.getvalue()
    )
    assert (report.added, report.skipped_duplicates) == (4, 0)
    copied, _ = banks.list_entries(world.ctx, world.p("legal"), copy.id)
    assert sorted((e.signal_type, e.value, tuple(e.labels)) for e in copied) == sorted(
        (r[0], r[1], tuple(r[2].split(";")) if r[2] else ()) for r in rows[1:]
    )


def test_exports_are_authorised(world: World) -> None:
    bank_id = filled_bank(world)
    for export in (exports.export_stix, exports.export_csv):
        with pytest.raises(NotFound):  # another organisation's bank does not exist for them
            export(world.ctx, world.p("other_admin"), bank_id)
        with pytest.raises(Forbidden):  # people without banks:read
            export(world.ctx, world.p("reporter"), bank_id)
    assert exports.list_collections(world.ctx, world.p("other_admin")) == []
    with pytest.raises(NotFound):
        exports.get_collection(world.ctx, world.p("other_admin"), stix.collection_uuid(bank_id))
