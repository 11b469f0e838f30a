"""Cases: everything known about one piece of content, and where its review stands."""

from __future__ import annotations

from enum import StrEnum

from cleanit.domain.errors import IllegalTransition


class CaseState(StrEnum):
    OPEN = "open"  # waiting for a reviewer
    IN_REVIEW = "in_review"  # assigned to a reviewer
    AWAITING_APPROVAL = "awaiting_approval"  # a wide decision waits for a second person
    ACTIONED = "actioned"  # a restrictive decision is in force
    NO_ACTION = "no_action"  # reviewed; nothing restricted
    UNDER_COMPLAINT = "under_complaint"  # a complaint against the decision is open


class CaseEvent(StrEnum):
    ASSIGN = "assign"
    PROPOSE_WIDE_DECISION = "propose_wide_decision"
    APPROVE = "approve"
    REJECT_PROPOSAL = "reject_proposal"
    DECIDE_RESTRICTIVE = "decide_restrictive"
    DECIDE_NO_ACTION = "decide_no_action"
    LODGE_COMPLAINT = "lodge_complaint"
    # A decided complaint leaves the content restricted (upheld or modified), unrestricted
    # (a restriction reversed, or "no action" upheld), or sends the case back to review
    # (a notifier's complaint against "no action" succeeded).
    COMPLAINT_CLOSED_RESTRICTED = "complaint_closed_restricted"
    COMPLAINT_CLOSED_UNRESTRICTED = "complaint_closed_unrestricted"
    COMPLAINT_REOPENS = "complaint_reopens"
    NEW_NOTICE = "new_notice"
    # A removal order lost its legal effect (TCO Art 4 scrutiny found an infringement): what
    # it restricted is reinstated.
    ORDER_LOST_EFFECT = "order_lost_effect"


# The single source of truth for the case life cycle. Any pair not listed is refused.
TRANSITIONS: dict[tuple[CaseState, CaseEvent], CaseState] = {
    (CaseState.OPEN, CaseEvent.ASSIGN): CaseState.IN_REVIEW,
    (CaseState.IN_REVIEW, CaseEvent.ASSIGN): CaseState.IN_REVIEW,
    (CaseState.OPEN, CaseEvent.NEW_NOTICE): CaseState.OPEN,
    (CaseState.IN_REVIEW, CaseEvent.NEW_NOTICE): CaseState.IN_REVIEW,
    (CaseState.AWAITING_APPROVAL, CaseEvent.NEW_NOTICE): CaseState.AWAITING_APPROVAL,
    (CaseState.UNDER_COMPLAINT, CaseEvent.NEW_NOTICE): CaseState.UNDER_COMPLAINT,
    (CaseState.ACTIONED, CaseEvent.NEW_NOTICE): CaseState.ACTIONED,
    # New information on content judged fine reopens the review.
    (CaseState.NO_ACTION, CaseEvent.NEW_NOTICE): CaseState.OPEN,
    (CaseState.IN_REVIEW, CaseEvent.DECIDE_RESTRICTIVE): CaseState.ACTIONED,
    (CaseState.IN_REVIEW, CaseEvent.DECIDE_NO_ACTION): CaseState.NO_ACTION,
    (CaseState.IN_REVIEW, CaseEvent.PROPOSE_WIDE_DECISION): CaseState.AWAITING_APPROVAL,
    (CaseState.AWAITING_APPROVAL, CaseEvent.APPROVE): CaseState.ACTIONED,
    (CaseState.AWAITING_APPROVAL, CaseEvent.REJECT_PROPOSAL): CaseState.IN_REVIEW,
    (CaseState.ACTIONED, CaseEvent.LODGE_COMPLAINT): CaseState.UNDER_COMPLAINT,
    (CaseState.NO_ACTION, CaseEvent.LODGE_COMPLAINT): CaseState.UNDER_COMPLAINT,
    (CaseState.UNDER_COMPLAINT, CaseEvent.LODGE_COMPLAINT): CaseState.UNDER_COMPLAINT,
    (CaseState.UNDER_COMPLAINT, CaseEvent.COMPLAINT_CLOSED_RESTRICTED): CaseState.ACTIONED,
    (CaseState.UNDER_COMPLAINT, CaseEvent.COMPLAINT_CLOSED_UNRESTRICTED): CaseState.NO_ACTION,
    (CaseState.UNDER_COMPLAINT, CaseEvent.COMPLAINT_REOPENS): CaseState.OPEN,
    (CaseState.ACTIONED, CaseEvent.ORDER_LOST_EFFECT): CaseState.NO_ACTION,
}

OPEN_STATES = frozenset({CaseState.OPEN, CaseState.IN_REVIEW, CaseState.AWAITING_APPROVAL})


def next_state(state: CaseState, event: CaseEvent) -> CaseState:
    """Return the state after ``event``; raise IllegalTransition if the rules forbid it."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        allowed = sorted(e.value for (s, e) in TRANSITIONS if s == state)
        raise IllegalTransition(
            f"a case that is '{state.value}' cannot '{event.value}'; "
            f"possible now: {', '.join(allowed) or 'nothing'}",
            field="state",
        ) from None
