"""The tamper-evident audit log: each entry's hash covers its content and the previous hash.

A change to an entry breaks its own hash; a removed entry leaves a gap in the sequence numbers;
reordering breaks the chain link. ``verify_chain`` says which entry is wrong and how.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    at: str  # ISO 8601, UTC
    actor: str
    organisation_id: int | None
    action: str
    entity: str
    entity_id: str
    data: dict[str, Any]
    prev_hash: str
    hash: str


def entry_hash(
    *,
    seq: int,
    at: str,
    actor: str,
    organisation_id: int | None,
    action: str,
    entity: str,
    entity_id: str,
    data: dict[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 over a canonical JSON form (sorted keys, no whitespace) of the entry."""
    body = json.dumps(
        {
            "seq": seq,
            "at": at,
            "actor": actor,
            "organisation_id": organisation_id,
            "action": action,
            "entity": entity,
            "entity_id": entity_id,
            "data": data,
            "prev": prev_hash,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainProblem:
    seq: int
    kind: str  # "changed" | "missing" | "broken-link"
    detail: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    entries: int
    problems: tuple[ChainProblem, ...]
    # The last entry (seq, hash). Recorded outside cleanit, it lets a later verification
    # detect entries cut off the end of the log, which a chain alone cannot show.
    head: tuple[int, str] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(
    records: Iterable[AuditRecord],
    anchor: tuple[int, str] | None = None,
    *,
    start: tuple[int, str] = (1, GENESIS),
) -> ChainReport:
    """Check every entry in sequence order. Reports each problem once, with the entry's seq.

    ``anchor`` is a (seq, hash) head recorded earlier: that entry must still be there, unchanged.
    ``start`` is where the records begin: the first seq and the hash it must follow (an
    excerpt of the log, e.g. in an evidence package, starts anywhere).
    """
    problems: list[ChainProblem] = []
    anchor_seen = False
    expected_seq, prev_hash = start
    count = 0
    for rec in records:
        count += 1
        if rec.seq != expected_seq:
            if rec.seq > expected_seq:
                problems.append(
                    ChainProblem(
                        expected_seq,
                        "missing",
                        f"entries {expected_seq}..{rec.seq - 1} are missing (removed?)",
                    )
                )
            else:
                problems.append(
                    ChainProblem(rec.seq, "reordered", f"entry {rec.seq} appears out of order")
                )
        recomputed = entry_hash(
            seq=rec.seq,
            at=rec.at,
            actor=rec.actor,
            organisation_id=rec.organisation_id,
            action=rec.action,
            entity=rec.entity,
            entity_id=rec.entity_id,
            data=rec.data,
            prev_hash=rec.prev_hash,
        )
        if recomputed != rec.hash:
            problems.append(
                ChainProblem(
                    rec.seq, "changed", f"entry {rec.seq} was changed after it was written"
                )
            )
        elif rec.prev_hash != prev_hash:
            problems.append(
                ChainProblem(
                    rec.seq,
                    "broken-link",
                    f"entry {rec.seq} does not follow the entry before it "
                    "(removed or reordered entries)",
                )
            )
        if anchor is not None and rec.seq == anchor[0]:
            anchor_seen = True
            if rec.hash != anchor[1]:
                problems.append(
                    ChainProblem(
                        rec.seq,
                        "anchor-mismatch",
                        f"entry {rec.seq} no longer has the recorded hash",
                    )
                )
        prev_hash = rec.hash
        expected_seq = rec.seq + 1
    if anchor is not None and not anchor_seen:
        problems.append(
            ChainProblem(
                anchor[0],
                "truncated",
                f"entry {anchor[0]} recorded earlier is gone: the log was cut short",
            )
        )
    head = (expected_seq - 1, prev_hash) if count else None
    return ChainReport(entries=count, problems=tuple(problems), head=head)
