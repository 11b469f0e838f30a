"""The case life cycle: every transition the rules allow, and nothing else."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cleanit.domain.cases import (
    OPEN_STATES,
    TRANSITIONS,
    CaseEvent,
    CaseState,
    next_state,
)
from cleanit.domain.errors import DomainError, IllegalTransition

S, E = CaseState, CaseEvent

# Written out independently of the module so that a change to the life cycle is deliberate.
EXPECTED = {
    (S.OPEN, E.ASSIGN): S.IN_REVIEW,
    (S.OPEN, E.NEW_NOTICE): S.OPEN,
    (S.IN_REVIEW, E.ASSIGN): S.IN_REVIEW,
    (S.IN_REVIEW, E.NEW_NOTICE): S.IN_REVIEW,
    (S.IN_REVIEW, E.DECIDE_RESTRICTIVE): S.ACTIONED,
    (S.IN_REVIEW, E.DECIDE_NO_ACTION): S.NO_ACTION,
    (S.IN_REVIEW, E.PROPOSE_WIDE_DECISION): S.AWAITING_APPROVAL,
    (S.AWAITING_APPROVAL, E.NEW_NOTICE): S.AWAITING_APPROVAL,
    (S.AWAITING_APPROVAL, E.APPROVE): S.ACTIONED,
    (S.AWAITING_APPROVAL, E.REJECT_PROPOSAL): S.IN_REVIEW,
    (S.ACTIONED, E.NEW_NOTICE): S.ACTIONED,
    (S.ACTIONED, E.LODGE_COMPLAINT): S.UNDER_COMPLAINT,
    (S.NO_ACTION, E.NEW_NOTICE): S.OPEN,
    (S.NO_ACTION, E.LODGE_COMPLAINT): S.UNDER_COMPLAINT,
    (S.UNDER_COMPLAINT, E.NEW_NOTICE): S.UNDER_COMPLAINT,
    (S.UNDER_COMPLAINT, E.LODGE_COMPLAINT): S.UNDER_COMPLAINT,
    (S.UNDER_COMPLAINT, E.COMPLAINT_CLOSED_RESTRICTED): S.ACTIONED,
    (S.UNDER_COMPLAINT, E.COMPLAINT_CLOSED_UNRESTRICTED): S.NO_ACTION,
    (S.UNDER_COMPLAINT, E.COMPLAINT_REOPENS): S.OPEN,
    # TCO Art 4: the host Member State's scrutiny ended the removal order's legal effect.
    (S.ACTIONED, E.ORDER_LOST_EFFECT): S.NO_ACTION,
}

# Events that are a decision by a person: on the case, on a proposal, or on a complaint.
DECISION_EVENTS = {
    E.DECIDE_RESTRICTIVE: S.ACTIONED,
    E.APPROVE: S.ACTIONED,
    E.COMPLAINT_CLOSED_RESTRICTED: S.ACTIONED,
    E.DECIDE_NO_ACTION: S.NO_ACTION,
    E.COMPLAINT_CLOSED_UNRESTRICTED: S.NO_ACTION,
    E.ORDER_LOST_EFFECT: S.NO_ACTION,  # recorded by a person, decided by the host authority
}


def allowed_events(state: CaseState) -> set[CaseEvent]:
    return {e for (s, e) in EXPECTED if s == state}


def test_the_table_is_exactly_the_expected_life_cycle() -> None:
    assert TRANSITIONS == EXPECTED


@pytest.mark.parametrize("state", list(CaseState))
@pytest.mark.parametrize("event", list(CaseEvent))
def test_every_pair_is_either_allowed_or_refused_with_the_alternatives(
    state: CaseState, event: CaseEvent
) -> None:
    if (state, event) in EXPECTED:
        assert next_state(state, event) is EXPECTED[(state, event)]
        return
    with pytest.raises(IllegalTransition) as exc:
        next_state(state, event)
    err = exc.value
    assert isinstance(err, DomainError) and err.status == 409 and err.field == "state"
    assert err.code == "illegal-transition"
    assert f"'{state.value}'" in err.detail and f"'{event.value}'" in err.detail
    listed = err.detail.split("possible now: ", 1)[1].split(", ")
    assert set(listed) == {e.value for e in allowed_events(state)}


def test_no_state_is_a_dead_end_and_every_state_is_reachable_from_open() -> None:
    seen, todo = {S.OPEN}, deque([S.OPEN])
    while todo:
        state = todo.popleft()
        assert allowed_events(state), f"{state} has no way out"
        for event in allowed_events(state):
            nxt = next_state(state, event)
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    assert seen == set(CaseState)


@given(events=st.lists(st.sampled_from(CaseEvent), max_size=60), start=st.sampled_from(CaseState))
def test_random_event_sequences_follow_the_rules(events: list[CaseEvent], start: CaseState) -> None:
    state = start
    for event in events:
        try:
            nxt = next_state(state, event)
        except IllegalTransition as exc:
            assert (state, event) not in EXPECTED
            for alt in allowed_events(state):
                assert alt.value in exc.detail
            continue  # a refused event changes nothing
        assert (state, event) in EXPECTED
        assert isinstance(nxt, CaseState)
        # A decided outcome is only ever reached through a decision.
        if nxt in (S.ACTIONED, S.NO_ACTION) and nxt is not state:
            assert DECISION_EVENTS.get(event) is nxt
        # Only a complaint puts a case under complaint, only a proposal awaits approval.
        if nxt is S.UNDER_COMPLAINT and state is not S.UNDER_COMPLAINT:
            assert event is E.LODGE_COMPLAINT
            assert state in (S.ACTIONED, S.NO_ACTION)  # only decisions are contested
        if nxt is S.AWAITING_APPROVAL and state is not S.AWAITING_APPROVAL:
            assert event is E.PROPOSE_WIDE_DECISION and state is S.IN_REVIEW
        # New information never decides anything, and never lifts a restriction.
        if event is E.NEW_NOTICE:
            assert nxt not in (S.ACTIONED, S.NO_ACTION) or nxt is state
            assert nxt in OPEN_STATES or nxt is state
        # A restriction is only lifted by a decided complaint, or when the removal order it
        # executed loses its legal effect (TCO Art 4).
        if state is S.ACTIONED:
            assert nxt in (S.ACTIONED, S.UNDER_COMPLAINT) or event is E.ORDER_LOST_EFFECT
        state = nxt


@given(events=st.lists(st.sampled_from(CaseEvent), max_size=40))
def test_nothing_is_decided_before_someone_reviews_it(events: list[CaseEvent]) -> None:
    """A decided state is never reached unless the case was in review since it (re)opened."""
    state, reviewed = S.OPEN, False
    for event in events:
        try:
            state = next_state(state, event)
        except IllegalTransition:
            continue
        if state is S.OPEN:  # reopened: it must be reviewed again
            reviewed = False
        if state is S.IN_REVIEW:
            reviewed = True
        if state in (S.ACTIONED, S.NO_ACTION, S.UNDER_COMPLAINT, S.AWAITING_APPROVAL):
            assert reviewed


@pytest.mark.parametrize(
    "event", [E.DECIDE_RESTRICTIVE, E.DECIDE_NO_ACTION, E.PROPOSE_WIDE_DECISION, E.APPROVE]
)
def test_decided_cases_are_not_decided_again(event: CaseEvent) -> None:
    for state in (S.ACTIONED, S.NO_ACTION, S.UNDER_COMPLAINT):
        with pytest.raises(IllegalTransition):
            next_state(state, event)


def test_open_states_are_the_ones_still_waiting_for_a_decision() -> None:
    assert {S.OPEN, S.IN_REVIEW, S.AWAITING_APPROVAL} == OPEN_STATES
    for state in OPEN_STATES:
        assert E.LODGE_COMPLAINT not in allowed_events(state)
