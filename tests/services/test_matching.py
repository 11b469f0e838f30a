"""Matching hashes and content against banks, on real PostgreSQL, with invented images."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw
from sqlalchemy import select, update

from cleanit.adapters.db.models import AuditEntry, BankEntry, Case, Message, Notice, Organisation
from cleanit.adapters.db.models import Match as MatchRow
from cleanit.adapters.matching.live import MatchIndexes
from cleanit.adapters.signals import hash_bytes
from cleanit.domain.assessments import AssessmentRequest, Finding
from cleanit.domain.decisions import Action, DecisionRequest
from cleanit.domain.errors import Forbidden, InvalidInput
from cleanit.domain.signals import SignalType, pdq_distance
from cleanit.services import assessments, banks, decisions, matching
from cleanit.services.context import Context
from tests.world import World, build_world


def picture(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """An invented picture: a gradient, a few shapes and some noise."""
    rng = np.random.default_rng(seed)
    w, h = size
    x = np.linspace(0, 1, w)[None, :, None]
    y = np.linspace(0, 1, h)[:, None, None]
    phase = rng.uniform(0, 6.28, 3)
    base = 127 + 100 * np.sin(6 * x * rng.uniform(0.5, 2) + 4 * y + phase)
    noise = rng.normal(0, 12, (h, w, 3))
    img = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, w - 60)), int(rng.integers(0, h - 60))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        draw.ellipse((x0, y0, x0 + int(rng.integers(20, 60)), y0 + 40), fill=colour)
        draw.rectangle((x0 + 10, y0 + 5, x0 + 50, y0 + 25), outline=colour, width=3)
    return img


def encode(img: Image.Image, fmt: str = "PNG", **kw: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **kw)
    return out.getvalue()


def pdq_of(data: bytes) -> str:
    (r,) = [r for r in hash_bytes(data) if r.signal_type is SignalType.PDQ]
    assert r.hash is not None
    return r.hash.value


def md5_of(data: bytes) -> str:
    (r,) = [r for r in hash_bytes(data) if r.signal_type is SignalType.MD5]
    assert r.hash is not None
    return r.hash.value


ORIGINAL = encode(picture(1))
COPY = encode(picture(1).resize((250, 188)), "JPEG", quality=70)  # resized, re-encoded
OTHER = encode(picture(2))


@pytest.fixture
def world(ctx: Context) -> World:
    ctx.matching = MatchIndexes(refresh_interval=0, flood_limit=3)
    return build_world(ctx)


def test_pdq_matches_a_reencoded_copy_and_not_an_unrelated_image(world: World) -> None:
    ctx, admin = world.ctx, world.p("admin")
    assert 0 < pdq_distance(pdq_of(ORIGINAL), pdq_of(COPY)) <= 31  # a real, inexact match
    assert pdq_distance(pdq_of(ORIGINAL), pdq_of(OTHER)) > 60
    b = banks.create_bank(ctx, admin, name="images", labels=["entity:invented-group"])
    e = banks.add_entry(
        ctx, admin, b.id, signal_type="pdq", value=pdq_of(ORIGINAL), labels=["content_type:image"]
    )
    found = matching.lookup(ctx, world.p("reviewer"), "pdq", [pdq_of(COPY), pdq_of(OTHER)])
    (m,) = found[pdq_of(COPY)]
    assert (m.bank_id, m.entry_id, m.bank_name) == (b.id, e.id, "images")
    assert m.distance == pdq_distance(pdq_of(ORIGINAL), pdq_of(COPY))
    assert m.labels == ["content_type:image", "entity:invented-group"]
    assert found[pdq_of(OTHER)] == []
    # A tighter threshold than the distance: no match. Disabled bank: no match.
    banks.update_bank(ctx, admin, b.id, thresholds={"pdq": m.distance - 1})
    assert matching.lookup(ctx, world.p("reviewer"), "pdq", [pdq_of(COPY)])[pdq_of(COPY)] == []
    banks.update_bank(ctx, admin, b.id, thresholds={"pdq": 31}, enabled=False)
    assert matching.lookup(ctx, world.p("reviewer"), "pdq", [pdq_of(ORIGINAL)]) == {
        pdq_of(ORIGINAL): []
    }
    # Another organisation's principal never matches host-a's banks.
    banks.update_bank(ctx, admin, b.id, enabled=True)
    assert matching.lookup(ctx, world.p("other_reviewer"), "pdq", [pdq_of(ORIGINAL)]) == {
        pdq_of(ORIGINAL): []
    }
    with pytest.raises(Forbidden):
        matching.lookup(ctx, world.p("auditor"), "pdq", [pdq_of(ORIGINAL)])


def test_exact_md5_and_url_variants_match(world: World) -> None:
    ctx, admin = world.ctx, world.p("admin")
    b = banks.create_bank(ctx, admin, name="exact")
    md5 = banks.add_entry(ctx, admin, b.id, signal_type="md5", value=md5_of(ORIGINAL))
    url = banks.add_entry(
        ctx, admin, b.id, signal_type="url", value="https://files.example.org/v/Clip?id=7&a=1"
    )
    found = matching.lookup(ctx, world.p("reviewer"), "md5", [md5_of(ORIGINAL).upper()])
    assert [m.entry_id for m in found[md5_of(ORIGINAL).upper()]] == [md5.id]
    assert matching.lookup(ctx, world.p("reviewer"), "md5", [md5_of(COPY)])[md5_of(COPY)] == []
    variants = [
        "HTTPS://www.files.example.org:443/v/Clip/?a=1&id=7&utm_source=feed#t=3",
        "hxxps://files[.]example[.]org/v/./Clip?fbclid=abc&id=7&a=1",
        "https://files.example.org/v/clip?id=7&a=1",  # path case differs: another URL
    ]
    found = matching.lookup(ctx, world.p("reviewer"), "url", variants)
    assert [m.entry_id for m in found[variants[0]]] == [url.id]
    assert [m.entry_id for m in found[variants[1]]] == [url.id]
    assert found[variants[2]] == []
    with pytest.raises(InvalidInput) as exc:
        matching.lookup(ctx, world.p("reviewer"), "md5", [md5_of(COPY), "xyz"])
    assert exc.value.field == "hashes[1]"
    with pytest.raises(InvalidInput) as exc:
        matching.lookup(ctx, world.p("reviewer"), "ssdeep", ["ab"])
    assert exc.value.field == "signal_type"


def test_negative_bank_suppresses_other_matches(world: World) -> None:
    ctx, admin = world.ctx, world.p("admin")
    listed = banks.create_bank(ctx, admin, name="listed")
    fp = banks.create_bank(ctx, admin, name="false positives", negative=True)
    banks.add_entry(ctx, admin, listed.id, signal_type="pdq", value=pdq_of(ORIGINAL))
    banks.add_entry(ctx, admin, fp.id, signal_type="md5", value=md5_of(ORIGINAL))
    result = matching.match_content(
        ctx, world.p("reviewer"), data=ORIGINAL, url="https://host-a.example.org/v/neg"
    )
    by_bank = {m.bank_id: m for m in result.matches}
    assert by_bank[fp.id].negative and not by_bank[fp.id].suppressed
    assert by_bank[listed.id].suppressed
    assert result.case_id is None  # nothing to review
    # The re-encoded copy is not byte-identical: the negative entry does not cover it.
    copy = matching.match_content(
        ctx, world.p("reviewer"), data=COPY, url="https://host-a.example.org/v/neg2"
    )
    assert [(m.bank_id, m.suppressed) for m in copy.matches] == [(listed.id, False)]
    assert copy.case_id is not None
    # Lookup: a negative hit suppresses the other hits of the same hash.
    banks.add_entry(ctx, admin, fp.id, signal_type="pdq", value=pdq_of(ORIGINAL))
    found = matching.lookup(ctx, world.p("reviewer"), "pdq", [pdq_of(ORIGINAL)])[pdq_of(ORIGINAL)]
    assert sorted((m.negative, m.suppressed) for m in found) == [(False, True), (True, False)]


def test_review_match_opens_a_case_with_evidence_and_the_decision_flow_works(
    world: World,
) -> None:
    ctx, admin = world.ctx, world.p("admin")
    b = banks.create_bank(ctx, admin, name="review me", category="STATEMENT_CATEGORY_VIOLENCE")
    e = banks.add_entry(ctx, admin, b.id, signal_type="pdq", value=pdq_of(ORIGINAL))
    url = "https://host-a.example.org/v/upload-1"
    r = matching.match_content(ctx, world.p("reviewer"), data=COPY, url=url)
    assert r.case_id is not None and r.pdq == pdq_of(COPY) and r.md5 == md5_of(COPY)
    assert [(m.entry_id, m.mode) for m in r.matches] == [(e.id, "review")]
    with ctx.sessions() as s:
        case = s.get(Case, r.case_id)
        assert case is not None and case.category == "STATEMENT_CATEGORY_VIOLENCE"
        n = s.scalar(select(Notice).order_by(Notice.id.desc()).limit(1))
        assert n is not None and n.source_type == "automated_detection"
        assert f"entry {e.id}" in n.explanation
    evidence = matching.case_matches(ctx, world.p("reviewer"), r.case_id)
    assert [(x.bank_id, x.entry_id, x.signal_type) for x in evidence] == [(b.id, e.id, "pdq")]
    assert evidence[0].distance == r.matches[0].distance
    # The same content again joins the same case.
    again = matching.match_content(ctx, world.p("reviewer"), data=COPY, url=url + "/")
    assert again.case_id == r.case_id
    assert len(matching.case_matches(ctx, world.p("reviewer"), r.case_id)) == 2
    # No URL: the match is reported and recorded, but no case can be opened.
    assert matching.match_content(ctx, world.p("reviewer"), data=ORIGINAL).case_id is None
    # People decide the case as usual.
    a = assessments.assess(
        ctx,
        world.p("reviewer"),
        r.case_id,
        AssessmentRequest(
            finding=Finding.INCOMPATIBLE_WITH_TERMS,
            explanation="Shows the invented group's flag.",
            terms_clause_version_id=world.clause_version_id,
        ),
    )
    d = decisions.decide_case(
        ctx,
        world.p("reviewer"),
        r.case_id,
        DecisionRequest(
            action=Action.REMOVE,
            facts="A copy of a listed invented image.",
            assessment_id=a.id,
        ),
    )
    assert d.status == "in_force"
    with ctx.sessions() as s:
        actions = s.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all()
    assert "content.matched" in actions and "notice.received" in actions


def test_index_follows_additions_and_removals_without_a_rebuild(world: World) -> None:
    ctx, admin = world.ctx, world.p("admin")
    b = banks.create_bank(ctx, admin, name="live")
    q = pdq_of(COPY)
    assert matching.lookup(ctx, world.p("reviewer"), "pdq", [q])[q] == []
    assert ctx.matching.full_builds == 1
    e = banks.add_entry(ctx, admin, b.id, signal_type="pdq", value=pdq_of(ORIGINAL))
    assert [m.entry_id for m in matching.lookup(ctx, world.p("reviewer"), "pdq", [q])[q]] == [e.id]
    banks.remove_entry(ctx, admin, b.id, e.id)
    assert matching.lookup(ctx, world.p("reviewer"), "pdq", [q])[q] == []
    assert ctx.matching.full_builds == 1  # caught up incrementally
    # Another process's index (a fresh holder) sees the same state from the database.
    other = MatchIndexes(refresh_interval=0)
    with ctx.sessions() as s:
        assert other.search(s, [pdq_of(ORIGINAL)], 31) == [[]]


def test_flood_quarantines_the_entry_and_tells_the_owner(world: World) -> None:
    ctx, admin = world.ctx, world.p("admin")  # flood limit 3 in this module
    with ctx.transaction() as s:
        s.execute(
            update(Organisation)
            .where(Organisation.id == world.org_ids["host-a"])
            .values(contact_email="banks@host-a.example.org")
        )
    b = banks.create_bank(ctx, admin, name="too generic")
    e = banks.add_entry(ctx, admin, b.id, signal_type="pdq", value=pdq_of(ORIGINAL))
    variants = [encode(picture(1), "JPEG", quality=q) for q in (95, 85, 75, 65)]
    results = [matching.match_content(ctx, world.p("reviewer"), data=v) for v in variants[:3]]
    assert all(len(r.matches) == 1 and not r.matches[0].quarantined for r in results)
    # The same item again does not count twice.
    assert (
        not matching.match_content(ctx, world.p("reviewer"), data=variants[0])
        .matches[0]
        .quarantined
    )
    fourth = matching.match_content(ctx, world.p("reviewer"), data=variants[3])
    assert [m.quarantined for m in fourth.matches] == [True]
    with ctx.sessions() as s:
        entry = s.get(BankEntry, e.id)
        assert entry is not None and entry.quarantined_at is not None
        msg = s.scalar(select(Message).where(Message.kind == "bank.entry_quarantined"))
        assert msg is not None and msg.recipient == "banks@host-a.example.org"
        assert f"Entry {e.id}" in msg.body
        assert s.scalar(
            select(AuditEntry.action).where(AuditEntry.action == "bank_entry.quarantined")
        )
        assert s.scalar(select(MatchRow.id).where(MatchRow.entry_id == e.id)) is not None
    # Quarantined entries match nothing any more.
    assert matching.match_content(ctx, world.p("reviewer"), data=ORIGINAL).matches == []
    assert matching.lookup(ctx, world.p("reviewer"), "pdq", [pdq_of(ORIGINAL)]) == {
        pdq_of(ORIGINAL): []
    }
