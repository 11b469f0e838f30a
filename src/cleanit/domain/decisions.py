"""Decisions and the proportionality ladder.

Actions are ordered from the least to the most restrictive. Anything wider than the single
item (today: suspending the account) needs a written justification and a second person.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from cleanit.domain.errors import InvalidInput, PrincipleViolation
from cleanit.domain.notices import EU_EEA


class Action(StrEnum):
    NO_ACTION = "no_action"
    LABEL = "label"
    RESTRICT_VISIBILITY = "restrict_visibility"
    GEO_BLOCK = "geo_block"
    DISABLE_ACCESS = "disable_access"
    REMOVE = "remove"
    SUSPEND_ACCOUNT = "suspend_account"


LADDER: tuple[Action, ...] = (
    Action.NO_ACTION,
    Action.LABEL,
    Action.RESTRICT_VISIBILITY,
    Action.GEO_BLOCK,
    Action.DISABLE_ACCESS,
    Action.REMOVE,
    Action.SUSPEND_ACCOUNT,
)
ITEM_ACTIONS = frozenset(LADDER[1:6])
WIDE_ACTIONS = frozenset({Action.SUSPEND_ACCOUNT})
RESTRICTIVE_ACTIONS = frozenset(LADDER[1:])


def rung(action: Action) -> int:
    """Position on the ladder: 0 for no action, higher is more restrictive."""
    return LADDER.index(action)


class Ground(StrEnum):
    ILLEGAL_CONTENT = "illegal_content"
    INCOMPATIBLE_CONTENT = "incompatible_content"


class DecisionStatus(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    IN_FORCE = "in_force"
    REJECTED = "rejected"  # the second person refused a proposed wide decision
    SUPERSEDED = "superseded"  # replaced after a complaint (reversed or modified)


class AutomatedDecision(StrEnum):
    FULLY = "fully"
    PARTIALLY = "partially"
    NOT_AUTOMATED = "not_automated"


@dataclass(frozen=True, slots=True)
class DecisionRequest:
    action: Action
    facts: str
    assessment_id: int | None = None
    territorial_scope: tuple[str, ...] = field(default_factory=tuple)
    justification: str | None = None
    automated_detection: bool = False
    automated_decision: AutomatedDecision = AutomatedDecision.NOT_AUTOMATED
    duration_days: int | None = None


def check_decision(request: DecisionRequest, *, has_basis: bool) -> bool:
    """Apply proportionality and legal-basis rules. Returns True when a second person must
    approve before the decision takes effect."""
    if len(request.facts.strip()) < 10:
        raise InvalidInput(
            "state the facts and circumstances relied on (at least 10 characters)",
            field="facts",
        )
    if request.action in RESTRICTIVE_ACTIONS and not has_basis:
        raise PrincipleViolation(
            "a restrictive decision must rest on a confirmed assessment citing a legal "
            "provision (illegal content) or a terms clause (incompatible content)",
            field="assessment_id",
        )
    scope = request.territorial_scope
    bad = sorted(set(scope) - EU_EEA)
    if bad:
        raise InvalidInput(
            f"territorial scope takes EU/EEA country codes; unknown: {', '.join(bad)}",
            field="territorial_scope",
        )
    if request.action is Action.GEO_BLOCK and not scope:
        raise InvalidInput(
            "a geo-block must name the countries it applies to", field="territorial_scope"
        )
    if request.duration_days is not None and not 1 <= request.duration_days <= 3650:
        raise InvalidInput("duration must be 1 to 3650 days", field="duration_days")
    wide = request.action in WIDE_ACTIONS
    if wide and len((request.justification or "").strip()) < 20:
        raise PrincipleViolation(
            f"'{request.action.value}' reaches beyond the single item: write a justification "
            "(at least 20 characters) of why a narrower action is not enough",
            field="justification",
        )
    return wide


def ground_for(finding_is_legal: bool) -> Ground:
    return Ground.ILLEGAL_CONTENT if finding_is_legal else Ground.INCOMPATIBLE_CONTENT
