"""Decisions: the proportionality ladder, legal basis, territorial scope and four eyes."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cleanit.domain.decisions import (
    ITEM_ACTIONS,
    LADDER,
    RESTRICTIVE_ACTIONS,
    WIDE_ACTIONS,
    Action,
    DecisionRequest,
    Ground,
    check_decision,
    ground_for,
    rung,
)
from cleanit.domain.errors import InvalidInput, PrincipleViolation
from cleanit.domain.notices import EU_EEA

A = Action
FACTS = "The video shows an invented group's flag with a call to join."
JUSTIFICATION = "Removing single items has not stopped repeated uploads."  # >= 20 characters


def request(action: Action, **kw: object) -> DecisionRequest:
    if action is A.GEO_BLOCK:
        kw.setdefault("territorial_scope", ("DE",))
    if action in WIDE_ACTIONS:
        kw.setdefault("justification", JUSTIFICATION)
    return DecisionRequest(action=action, facts=FACTS, **kw)  # type: ignore[arg-type]


def test_the_ladder_goes_from_least_to_most_restrictive() -> None:
    assert LADDER == (
        A.NO_ACTION,
        A.LABEL,
        A.RESTRICT_VISIBILITY,
        A.GEO_BLOCK,
        A.DISABLE_ACCESS,
        A.REMOVE,
        A.SUSPEND_ACCOUNT,
    )
    assert set(LADDER) == set(Action) and len(LADDER) == len(Action)
    rungs = [rung(a) for a in LADDER]
    assert rungs[0] == 0
    assert all(a < b for a, b in itertools.pairwise(rungs))  # strictly increasing
    assert rung(A.LABEL) < rung(A.REMOVE) < rung(A.SUSPEND_ACCOUNT)


def test_action_families() -> None:
    assert set(Action) - {A.NO_ACTION} == RESTRICTIVE_ACTIONS
    assert {A.SUSPEND_ACCOUNT} == WIDE_ACTIONS
    assert ITEM_ACTIONS == RESTRICTIVE_ACTIONS - WIDE_ACTIONS
    # Every wide action is above every item action on the ladder.
    assert min(rung(a) for a in WIDE_ACTIONS) > max(rung(a) for a in ITEM_ACTIONS)


@pytest.mark.parametrize("action", [a for a in LADDER if a in ITEM_ACTIONS or a is A.NO_ACTION])
def test_single_item_actions_take_effect_without_a_second_person(action: Action) -> None:
    assert check_decision(request(action), has_basis=action is not A.NO_ACTION) is False


@pytest.mark.parametrize("action", [a for a in LADDER if a in WIDE_ACTIONS])
def test_wide_actions_need_a_justification_and_a_second_person(action: Action) -> None:
    assert check_decision(request(action), has_basis=True) is True
    assert check_decision(request(action, justification="x" * 20), has_basis=True) is True
    for short in (None, "", "Because.", "x" * 19, "   " + "x" * 19 + "   \n"):
        with pytest.raises(PrincipleViolation) as exc:
            check_decision(request(action, justification=short), has_basis=True)
        assert exc.value.field == "justification"
        assert action.value in exc.value.detail


@pytest.mark.parametrize("action", [a for a in LADDER if a in RESTRICTIVE_ACTIONS])
def test_restrictions_without_a_confirmed_basis_are_refused(action: Action) -> None:
    with pytest.raises(PrincipleViolation) as exc:
        check_decision(request(action), has_basis=False)
    assert exc.value.field == "assessment_id"
    assert check_decision(request(A.NO_ACTION), has_basis=False) is False


def test_a_geo_block_must_name_its_countries() -> None:
    with pytest.raises(InvalidInput) as exc:
        check_decision(request(A.GEO_BLOCK, territorial_scope=()), has_basis=True)
    assert exc.value.field == "territorial_scope"
    assert (
        check_decision(request(A.GEO_BLOCK, territorial_scope=("DE", "AT")), has_basis=True)
        is False
    )


@given(
    scope=st.lists(
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabc", min_size=1, max_size=3), max_size=5
    ),
    action=st.sampled_from(LADDER),
)
def test_scope_takes_only_eu_eea_country_codes(scope: list[str], action: Action) -> None:
    req = request(action, territorial_scope=tuple(scope) or ("DE",))
    bad = sorted(set(req.territorial_scope) - EU_EEA)
    if bad:
        with pytest.raises(InvalidInput) as exc:
            check_decision(req, has_basis=True)
        assert exc.value.field == "territorial_scope"
        for code in bad:
            assert code in exc.value.detail
    else:
        assert check_decision(req, has_basis=True) is (action in WIDE_ACTIONS)


@pytest.mark.parametrize("code", ["EU", "de", "GB", "CH", "US", "DEU", ""])
def test_scope_codes_outside_the_eea_are_refused(code: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        check_decision(request(A.DISABLE_ACCESS, territorial_scope=("FR", code)), has_basis=True)
    assert exc.value.field == "territorial_scope"


@pytest.mark.parametrize("facts", ["", "short", "   too short   "])
def test_facts_are_required(facts: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        check_decision(dataclasses.replace(request(A.LABEL), facts=facts), has_basis=True)
    assert exc.value.field == "facts"


@pytest.mark.parametrize(
    ("days", "ok"), [(None, True), (1, True), (3650, True), (0, False), (-5, False), (3651, False)]
)
def test_duration_is_bounded(days: int | None, ok: bool) -> None:
    req = request(A.RESTRICT_VISIBILITY, duration_days=days)
    if ok:
        assert check_decision(req, has_basis=True) is False
    else:
        with pytest.raises(InvalidInput) as exc:
            check_decision(req, has_basis=True)
        assert exc.value.field == "duration_days"


@given(
    action=st.sampled_from(LADDER),
    has_basis=st.booleans(),
    justification=st.one_of(st.none(), st.text(max_size=30)),
    scope=st.lists(st.sampled_from(["DE", "FR", "NL", "US"]), max_size=3, unique=True),
)
def test_second_person_is_needed_exactly_for_accepted_wide_actions(
    action: Action, has_basis: bool, justification: str | None, scope: list[str]
) -> None:
    req = DecisionRequest(
        action=action, facts=FACTS, justification=justification, territorial_scope=tuple(scope)
    )
    try:
        needs_second = check_decision(req, has_basis=has_basis)
    except PrincipleViolation as exc:
        assert (action in RESTRICTIVE_ACTIONS and not has_basis) or (
            action in WIDE_ACTIONS and len((justification or "").strip()) < 20
        )
        assert exc.field in {"assessment_id", "justification"}
        return
    except InvalidInput as exc:
        assert "US" in scope or (action is A.GEO_BLOCK and not scope)
        assert exc.field == "territorial_scope"
        return
    assert needs_second is (action in WIDE_ACTIONS)
    assert has_basis or action is A.NO_ACTION


def test_ground_follows_the_kind_of_finding() -> None:
    assert ground_for(True) is Ground.ILLEGAL_CONTENT
    assert ground_for(False) is Ground.INCOMPATIBLE_CONTENT
