"""Statements of reasons: every DSA Art 17(3) element, in the record and in the plain text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cleanit.domain.decisions import Action, AutomatedDecision, Ground
from cleanit.domain.statements import (
    ACTION_WORDS,
    TDB_VISIBILITY,
    StatementInput,
    build_statement,
    render_text,
)

LEGAL_BASIS = "Directive (EU) 2017/541, Art 5 (EU)"
TERMS_BASIS = "Terms: violent-extremism, version 3"
COMPLAINT_URL = "https://cleanit.example.org/complaints/new?statement=abc&code=xyz"

_words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", min_size=12, max_size=60).map(
    lambda s: "Q" + s.strip() + "."
)


@st.composite
def inputs(draw: st.DrawFn) -> StatementInput:
    ground = draw(st.sampled_from(Ground))
    with_redress = draw(st.booleans())
    return StatementInput(
        decision_id=draw(st.integers(min_value=1, max_value=10**9)),
        provider_name=draw(st.sampled_from(["Host A", "Vidéos Exemple SA"])),
        content_url=f"https://host-a.example.org/v/{draw(st.integers(0, 9999))}",
        action=draw(st.sampled_from(Action)),
        ground=ground,
        basis_reference=LEGAL_BASIS if ground is Ground.ILLEGAL_CONTENT else TERMS_BASIS,
        basis_explanation=draw(_words),
        facts=draw(_words),
        source=draw(
            st.sampled_from(
                ["notice (trusted flagger)", "own initiative", "removal_order", "notice (end user)"]
            )
        ),
        decided_at="2026-11-29T10:00:00+00:00",
        territorial_scope=tuple(
            draw(st.lists(st.sampled_from(["DE", "FR", "NL", "AT"]), unique=True, max_size=3))
        ),
        duration_days=draw(st.one_of(st.none(), st.integers(1, 3650))),
        automated_detection=draw(st.booleans()),
        automated_decision=draw(st.sampled_from(AutomatedDecision)),
        complaint_url=COMPLAINT_URL if with_redress else None,
        complaint_deadline="2027-05-31" if with_redress else None,
        removal_order_reference=draw(st.one_of(st.none(), st.just("RO-DE-2026-0042"))),
        replaces_decision_id=draw(st.one_of(st.none(), st.integers(1, 1000))),
    )


def check_art17_elements(s: StatementInput, body: dict[str, Any]) -> None:
    # (a) the restriction, its territorial scope and its duration
    r = body["restriction"]
    assert r["action"] == s.action.value and r["description"] == ACTION_WORDS[s.action]
    if s.territorial_scope:
        assert r["territorial_scope"] == list(s.territorial_scope)
    else:
        assert r["territorial_scope"] == "all countries where the service is offered"
    assert "duration_days" in r and r["duration_days"] == s.duration_days
    # (b) facts and circumstances, including how the content came to attention
    f = body["facts_and_circumstances"]
    assert f["facts"] == s.facts and f["source"] == s.source
    assert f["notifier_identity_disclosed"] is False
    # (c) automated means for detection and for the decision
    assert body["automated_means"] == {
        "automated_detection": s.automated_detection,
        "automated_decision": s.automated_decision.value,
    }
    # (d)/(e) the legal or the contractual ground, with its explanation — never both
    assert body["ground"] == s.ground.value
    if s.ground is Ground.ILLEGAL_CONTENT:
        assert body["legal_ground"] == s.basis_reference
        assert body["illegal_content_explanation"] == s.basis_explanation
        assert "contractual_ground" not in body and "incompatible_content_explanation" not in body
    else:
        assert body["contractual_ground"] == s.basis_reference
        assert body["incompatible_content_explanation"] == s.basis_explanation
        assert "legal_ground" not in body and "illegal_content_explanation" not in body
    # (f) redress: internal complaint, out-of-court settlement, judicial redress
    red = body["redress"]
    assert red["internal_complaint"] == {"url": s.complaint_url, "deadline": s.complaint_deadline}
    assert (
        "out-of-court" in red["out_of_court_settlement"]
        and "Art 21" in (red["out_of_court_settlement"])
    )
    assert "court" in red["judicial_redress"]
    # identification
    assert body["decision_id"] == s.decision_id and body["provider"] == s.provider_name
    assert body["content"] == s.content_url and body["decided_at"] == s.decided_at
    if s.removal_order_reference:
        assert body["removal_order_reference"] == s.removal_order_reference
    else:
        assert "removal_order_reference" not in body
    assert body.get("replaces_decision_id") == s.replaces_decision_id


@given(s=inputs())
def test_every_art17_element_is_in_the_statement(s: StatementInput) -> None:
    body = build_statement(s)
    check_art17_elements(s, body)
    # JSON-ready, and stable through a round trip (it is stored as JSONB).
    assert json.loads(json.dumps(body)) == body


@given(s=inputs())
def test_the_text_mentions_every_element(s: StatementInput) -> None:
    text = render_text(build_statement(s))
    assert text.startswith(f"Statement of reasons from {s.provider_name}")
    assert s.content_url in text
    assert ACTION_WORDS[s.action] in text and f"action: {s.action.value}" in text
    if s.territorial_scope:
        assert "Where: " + ", ".join(s.territorial_scope) + "." in text
    else:
        assert "all countries where the service is offered" in text
    if s.duration_days:
        assert f"{s.duration_days} days" in text
    else:
        assert "For how long" not in text
    assert s.basis_reference in text and s.basis_explanation in text
    if s.ground is Ground.ILLEGAL_CONTENT:
        assert "illegal under" in text and "incompatible with our terms" not in text
    else:
        assert "incompatible with our terms" in text and "illegal under" not in text
    assert s.facts in text
    assert s.source.replace("_", " ") in text
    assert (
        "detection was automated" if s.automated_detection else "detection was not automated"
    ) in text
    assert {
        AutomatedDecision.FULLY: "fully automated",
        AutomatedDecision.PARTIALLY: "partly automated",
        AutomatedDecision.NOT_AUTOMATED: "taken by a person",
    }[s.automated_decision] in text
    if s.complaint_url:
        assert s.complaint_url in text and str(s.complaint_deadline) in text
    else:
        assert "Complain to us" not in text
    assert "out-of-court" in text and "court of the Member State" in text
    if s.removal_order_reference:
        assert s.removal_order_reference in text


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("ground", list(Ground))
@pytest.mark.parametrize("automated", list(AutomatedDecision))
def test_every_action_ground_and_automation_combination(
    action: Action, ground: Ground, automated: AutomatedDecision
) -> None:
    s = StatementInput(
        decision_id=1,
        provider_name="Host A",
        content_url="https://host-a.example.org/v/1",
        action=action,
        ground=ground,
        basis_reference=LEGAL_BASIS if ground is Ground.ILLEGAL_CONTENT else TERMS_BASIS,
        basis_explanation="Calls on people to join an invented violent group.",
        facts="The video shows the group's flag with a call to join.",
        source="notice (end user)",
        decided_at="2026-11-29T10:00:00+00:00",
        territorial_scope=("DE",) if action is Action.GEO_BLOCK else (),
        automated_detection=automated is not AutomatedDecision.NOT_AUTOMATED,
        automated_decision=automated,
        complaint_url=COMPLAINT_URL,
        complaint_deadline="2027-05-31",
    )
    body = build_statement(s)
    check_art17_elements(s, body)
    text = render_text(body)
    assert ACTION_WORDS[action] in text and COMPLAINT_URL in text


def test_every_action_has_words_and_every_restriction_a_tdb_visibility() -> None:
    assert set(ACTION_WORDS) == set(Action)
    assert len(set(ACTION_WORDS.values())) == len(Action)
    for action in (
        Action.LABEL,
        Action.RESTRICT_VISIBILITY,
        Action.GEO_BLOCK,
        Action.DISABLE_ACCESS,
        Action.REMOVE,
    ):
        assert TDB_VISIBILITY[action].startswith("DECISION_VISIBILITY_")
