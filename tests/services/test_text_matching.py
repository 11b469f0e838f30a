"""Near-duplicate text through banks and matching (real PostgreSQL; invented texts).

A bank holds MinHash signatures of texts, never the texts; an edited copy of a listed text
matches within the bank's text threshold (a dissimilarity in percent), opens a case for
review, and content seen before the entry was added is matched retroactively.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from cleanit.adapters.db.models import Case
from cleanit.adapters.matching.live import MatchIndexes
from cleanit.domain.errors import InvalidInput
from cleanit.domain.text_signals import format_signature, text_signature
from cleanit.services import banks, matching
from cleanit.services.context import Context
from tests.services.test_rematching import run_jobs, seen_at
from tests.world import World, build_world

# An invented, harmless "manifesto" stand-in: what matters is its length and wording.
LISTED = " ".join(
    f"the invented group of the example valley meets every {day} to plan its garden number {i}"
    for i, day in enumerate(["monday", "tuesday", "wednesday", "thursday", "friday"] * 4)
)
EDITED = (
    LISTED.replace("garden number 3", "GARDEN nr. 3!!").replace("monday", "Monday,")
    + " share this text widely"
)
UNRELATED = " ".join(
    f"a recipe for bread loaf {i} with flour water salt and yeast" for i in range(20)
)


def signature(text: str) -> str:
    return format_signature(text_signature(text))


@pytest.fixture
def world(ctx: Context) -> World:
    ctx.matching = MatchIndexes(refresh_interval=0)
    return build_world(ctx)


def test_an_edited_copy_of_a_listed_text_matches_and_opens_a_case(world: World) -> None:
    ctx, admin, reviewer = world.ctx, world.p("admin"), world.p("reviewer")
    bank = banks.create_bank(ctx, admin, name="texts", labels=["content_type:text"])
    entry = banks.add_entry(
        ctx, admin, bank.id, signal_type="text_minhash", value=signature(LISTED)
    )
    assert len(entry.value) == 1024

    found = matching.lookup(
        ctx, reviewer, "text_minhash", [signature(EDITED), signature(UNRELATED)]
    )
    (m,) = found[signature(EDITED)]
    assert (m.entry_id, m.signal_type) == (entry.id, "text_minhash")
    assert 0 < m.distance <= 40 and "content_type:text" in m.labels
    assert found[signature(UNRELATED)] == []

    url = "https://host-a.example.org/posts/edited-copy"
    result = matching.match_content(
        ctx, reviewer, data=EDITED.encode(), url=url, content_type="text/plain"
    )
    assert [x.entry_id for x in result.matches] == [entry.id]
    assert result.case_id is not None
    with ctx.sessions() as s:
        case = s.get(Case, result.case_id)
        assert case is not None and case.state == "open"

    # The same copy, but the bank only accepts near-identical texts now.
    banks.update_bank(ctx, admin, bank.id, thresholds={"text_minhash": 2})
    assert (
        matching.lookup(ctx, reviewer, "text_minhash", [signature(EDITED)])[signature(EDITED)] == []
    )
    with pytest.raises(InvalidInput, match="between 0 and 60 percent"):
        banks.update_bank(ctx, admin, bank.id, thresholds={"text_minhash": 75})


def test_text_seen_before_the_entry_existed_is_matched_retroactively(world: World) -> None:
    ctx, admin = world.ctx, world.p("admin")
    bank = banks.create_bank(ctx, admin, name="texts later")
    url = "https://host-a.example.org/posts/seen-yesterday"
    first = seen_at(world, timedelta(days=1), EDITED.encode(), url)
    assert first.matches == [] and first.case_id is None
    seen_at(world, timedelta(days=1), UNRELATED.encode(), "https://host-a.example.org/p/bread")

    banks.add_entry(ctx, admin, bank.id, signal_type="text_minhash", value=signature(LISTED))
    (report,) = run_jobs(ctx)
    assert (report.contents, report.cases) == (1, 1)
    with ctx.sessions() as s:
        (case,) = s.scalars(select(Case)).all()
        assert case.state == "open"


def test_a_malformed_signature_is_refused_with_its_position(world: World) -> None:
    bad = signature(LISTED)[:100] + "x" + signature(LISTED)[101:]
    with pytest.raises(InvalidInput) as err:
        matching.lookup(world.ctx, world.p("reviewer"), "text_minhash", [bad])
    assert err.value.field == "hashes[0]" and "position 100" in err.value.detail
