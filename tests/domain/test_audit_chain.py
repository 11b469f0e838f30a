"""The hash chain: an intact chain verifies; any change, removal or reordering is named."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from cleanit.domain.audit import GENESIS, AuditRecord, ChainProblem, entry_hash, verify_chain

_json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.sampled_from(["", "remove", "Zoë", 'a"b', "ümlaut ✓"]),
)
_data = st.dictionaries(
    st.sampled_from(["cases", "action", "roles", "slug", "x"]),
    st.one_of(_json_scalar, st.lists(_json_scalar, max_size=2)),
    max_size=3,
)
_entry = st.fixed_dictionaries(
    {
        "at": st.integers(1_700_000_000, 1_900_000_000).map(
            lambda t: datetime.fromtimestamp(t, UTC).isoformat()
        ),
        "actor": st.sampled_from(["operator", "system", "user:1", "token:7", "anonymous"]),
        "organisation_id": st.one_of(st.none(), st.integers(1, 1000)),
        "action": st.sampled_from(
            [
                "notice.received",
                "case.assigned",
                "decision.taken",
                "decision.in_force",
                "user.created",
            ]
        ),
        "entity": st.sampled_from(["notice", "case", "user", "organisation"]),
        "entity_id": st.integers(1, 10**6).map(str),
        "data": _data,
    }
)

FIELDS = (
    "at",
    "actor",
    "organisation_id",
    "action",
    "entity",
    "entity_id",
    "data",
    "prev_hash",
    "hash",
)


def chain(entries: list[dict[str, Any]]) -> list[AuditRecord]:
    records, prev = [], GENESIS
    for seq, e in enumerate(entries, start=1):
        h = entry_hash(seq=seq, prev_hash=prev, **e)
        records.append(AuditRecord(seq=seq, prev_hash=prev, hash=h, **e))
        prev = h
    return records


def changed_value(field: str, value: Any) -> Any:
    if field == "organisation_id":
        return 1 if value is None else value + 1
    if field == "data":
        return {**value, "__tampered__": True}
    if field in ("hash", "prev_hash"):
        return ("f" if value[0] != "f" else "e") + value[1:]
    return value + "x"


def kinds(problems: tuple[ChainProblem, ...]) -> list[tuple[int, str]]:
    return [(p.seq, p.kind) for p in problems]


@given(entries=st.lists(_entry, min_size=1, max_size=8))
def test_an_intact_chain_verifies(entries: list[dict[str, Any]]) -> None:
    records = chain(entries)
    report = verify_chain(records)
    assert report.ok and report.problems == () and report.entries == len(entries)
    assert records[0].prev_hash == GENESIS
    assert all(len(r.hash) == 64 for r in records)


def test_the_empty_chain_is_intact() -> None:
    report = verify_chain([])
    assert report.ok and report.entries == 0


@given(entries=st.lists(_entry, min_size=1, max_size=8), data=st.data())
def test_changing_any_field_of_any_entry_is_named(
    entries: list[dict[str, Any]], data: st.DataObject
) -> None:
    records = chain(entries)
    i = data.draw(st.integers(0, len(records) - 1), label="entry")
    field = data.draw(st.sampled_from(FIELDS), label="field")
    seq = records[i].seq
    records[i] = dataclasses.replace(
        records[i], **{field: changed_value(field, getattr(records[i], field))}
    )
    report = verify_chain(records)
    assert not report.ok
    expected = [(seq, "changed")]
    if field == "hash" and seq < len(records):
        # A rewritten hash no longer matches what the next entry links to.
        expected.append((seq + 1, "broken-link"))
    assert kinds(report.problems) == expected
    assert f"entry {seq}" in report.problems[0].detail


@given(entries=st.lists(_entry, min_size=2, max_size=8), data=st.data())
def test_removing_an_entry_is_named(entries: list[dict[str, Any]], data: st.DataObject) -> None:
    records = chain(entries)
    k = data.draw(st.integers(1, len(records) - 1), label="removed seq")  # not the last one
    del records[k - 1]
    report = verify_chain(records)
    assert kinds(report.problems) == [(k, "missing"), (k + 1, "broken-link")]
    assert report.entries == len(entries) - 1


@given(entries=st.lists(_entry, min_size=3, max_size=8), data=st.data())
def test_removing_several_entries_names_the_gap(
    entries: list[dict[str, Any]], data: st.DataObject
) -> None:
    records = chain(entries)
    first = data.draw(st.integers(1, len(records) - 2))
    last = data.draw(st.integers(first, len(records) - 1))
    del records[first - 1 : last]
    report = verify_chain(records)
    assert kinds(report.problems) == [(first, "missing"), (last + 1, "broken-link")]
    assert f"{first}..{last}" in report.problems[0].detail


@given(entries=st.lists(_entry, min_size=2, max_size=8), data=st.data())
def test_reordering_two_entries_is_detected(
    entries: list[dict[str, Any]], data: st.DataObject
) -> None:
    records = chain(entries)
    i = data.draw(st.integers(0, len(records) - 2))
    j = data.draw(st.integers(i + 1, len(records) - 1))
    records[i], records[j] = records[j], records[i]
    report = verify_chain(records)
    assert not report.ok
    # The first problem is at the first displaced position; nothing before it is blamed.
    assert report.problems[0].seq == i + 1
    assert all(p.seq >= i + 1 for p in report.problems)
    assert {p.kind for p in report.problems} <= {"missing", "broken-link", "reordered"}


@given(entries=st.lists(_entry, min_size=2, max_size=8), data=st.data())
def test_swapping_two_entries_sequence_numbers_is_detected(
    entries: list[dict[str, Any]], data: st.DataObject
) -> None:
    """What swapping two rows' seq in the table looks like: read back in seq order."""
    records = chain(entries)
    i = data.draw(st.integers(0, len(records) - 2))
    j = data.draw(st.integers(i + 1, len(records) - 1))
    a, b = records[i], records[j]
    records[i] = dataclasses.replace(b, seq=a.seq)
    records[j] = dataclasses.replace(a, seq=b.seq)
    report = verify_chain(records)
    assert kinds(report.problems)[0] == (a.seq, "changed")
    assert (b.seq, "changed") in kinds(report.problems)
    assert all(p.seq >= a.seq for p in report.problems)


@given(entries=st.lists(_entry, min_size=1, max_size=8))
def test_rebuilding_a_forged_entry_without_relinking_the_rest_is_detected(
    entries: list[dict[str, Any]],
) -> None:
    """A forger who recomputes the hash of the entry they changed still breaks the link."""
    records = chain(entries)
    first = records[0]
    forged = dataclasses.replace(first, actor="forger")
    forged = dataclasses.replace(
        forged,
        hash=entry_hash(
            seq=forged.seq,
            at=forged.at,
            actor=forged.actor,
            organisation_id=forged.organisation_id,
            action=forged.action,
            entity=forged.entity,
            entity_id=forged.entity_id,
            data=forged.data,
            prev_hash=forged.prev_hash,
        ),
    )
    records[0] = forged
    report = verify_chain(records)
    if len(records) == 1:
        assert report.ok  # a single entry has nothing after it to betray it
    else:
        assert kinds(report.problems) == [(2, "broken-link")]


def test_the_hash_covers_every_field_and_the_link() -> None:
    base: dict[str, Any] = {
        "seq": 1,
        "at": "2026-11-29T10:00:00+00:00",
        "actor": "user:1",
        "organisation_id": 3,
        "action": "case.assigned",
        "entity": "case",
        "entity_id": "9",
        "data": {"assignee_id": 4},
        "prev_hash": GENESIS,
    }
    h = entry_hash(**base)
    assert h == entry_hash(**{**base, "data": {"assignee_id": 4}})  # deterministic
    for field in (
        "seq",
        "at",
        "actor",
        "organisation_id",
        "action",
        "entity",
        "entity_id",
        "data",
        "prev_hash",
    ):
        value = base[field]
        other = value + 1 if field == "seq" else changed_value(field, value)
        assert entry_hash(**{**base, field: other}) != h, field


@given(entries=st.lists(_entry, min_size=2, max_size=8), data=st.data())
def test_an_anchor_detects_entries_cut_off_the_end(
    entries: list[dict[str, Any]], data: st.DataObject
) -> None:
    records = chain(entries)
    head = verify_chain(records).head
    assert head == (records[-1].seq, records[-1].hash)
    assert verify_chain(records, anchor=head).ok
    kept = data.draw(st.integers(1, len(records) - 1))
    truncated = verify_chain(records[:kept], anchor=head)
    assert kinds(truncated.problems) == [(head[0], "truncated")]
    # Without the anchor, a shorter chain looks intact: that is why the head is kept outside.
    assert verify_chain(records[:kept]).ok


def test_an_anchor_detects_a_rewritten_head() -> None:
    records = chain(
        [
            {
                "at": "2026-01-01T00:00:00+00:00",
                "actor": "user:1",
                "organisation_id": 1,
                "action": "case.assigned",
                "entity": "case",
                "entity_id": "1",
                "data": {},
            },
        ]
    )
    assert kinds(verify_chain(records, anchor=(1, "f" * 64)).problems) == [(1, "anchor-mismatch")]
