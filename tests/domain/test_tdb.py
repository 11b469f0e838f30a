"""DSA Transparency Database statements: the validator enforces every field rule of the TDB
API (each broken rule yields exactly one problem naming the field), every decision cleanit can
take maps to a payload the validator accepts, and no personal data reaches the payload."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cleanit.domain import tdb
from cleanit.domain.decisions import Action, AutomatedDecision, Ground
from cleanit.domain.notices import EU_EEA, Category, SourceType
from cleanit.domain.tdb import (
    NoStatement,
    TdbInput,
    TdbProblem,
    puid_for,
    statement_payload,
    validate_statement,
)

Payload = dict[str, Any]

ILLEGAL: Payload = {
    "puid": "cleanit-host-a-42",
    "decision_visibility": ["DECISION_VISIBILITY_CONTENT_REMOVED"],
    "end_date_visibility_restriction": "2026-12-31",
    "decision_ground": "DECISION_GROUND_ILLEGAL_CONTENT",
    "decision_ground_reference_url": "https://eur-lex.example.org/eli/reg/2021/784/oj",
    "illegal_content_legal_ground": "Regulation (EU) 2021/784, Art 2(7)",
    "illegal_content_explanation": "The video instructs on making explosives (invented test).",
    "content_type": ["CONTENT_TYPE_VIDEO"],
    "category": "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY",
    "category_specification": ["KEYWORD_TERRORIST_CONTENT"],
    "territorial_scope": ["DE", "FR"],
    "content_language": "de",
    "content_date": "2026-01-15",
    "application_date": "2026-01-16",
    "decision_facts": "Flagged by a referral unit; reviewed and confirmed by two moderators.",
    "source_type": "SOURCE_TYPE_OTHER_NOTIFICATION",
    "automated_detection": "No",
    "automated_decision": "AUTOMATED_DECISION_NOT_AUTOMATED",
}

INCOMPATIBLE: Payload = {
    "puid": "cleanit-host-a-43",
    "decision_account": "DECISION_ACCOUNT_SUSPENDED",
    "decision_ground": "DECISION_GROUND_INCOMPATIBLE_CONTENT",
    "incompatible_content_ground": "Terms §4.2 v3",
    "incompatible_content_explanation": "Glorifying violence is against our terms.",
    "incompatible_content_illegal": "No",
    "content_type": ["CONTENT_TYPE_TEXT"],
    "category": "STATEMENT_CATEGORY_VIOLENCE",
    "content_date": "2025-03-01",
    "application_date": "2025-03-02",
    "decision_facts": "Repeated posts found by our own review.",
    "source_type": "SOURCE_VOLUNTARY",
    "automated_detection": "Yes",
    "automated_decision": "AUTOMATED_DECISION_PARTIALLY",
}


def changed(base: Payload, **changes: Any) -> Payload:
    """A copy of ``base`` with fields replaced; a value of ``...`` removes the field."""
    payload = copy.deepcopy(base)
    for name, value in changes.items():
        if value is ...:
            payload.pop(name, None)
        else:
            payload[name] = value
    return payload


def only_problem(payload: Payload) -> TdbProblem:
    problems = validate_statement(payload)
    assert len(problems) == 1, problems
    return problems[0]


def test_the_reference_payloads_are_valid() -> None:
    assert validate_statement(ILLEGAL) == []
    assert validate_statement(INCOMPATIBLE) == []


# --- one broken rule, one problem ------------------------------------------------------------

# (payload, field named, words the message must contain)
BROKEN: list[tuple[Payload, str, str]] = [
    # unknown fields
    (changed(ILLEGAL, notifier_email="x@example.org"), "notifier_email", "not a field"),
    (changed(ILLEGAL, content_url="https://x.example.org"), "content_url", "not a field"),
    # required fields
    *[(changed(ILLEGAL, **{name: ...}), name, f"{name} is required") for name in tdb.REQUIRED],
    (changed(ILLEGAL, decision_facts=""), "decision_facts", "is required"),
    (changed(ILLEGAL, decision_facts=" \n "), "decision_facts", "is required"),
    (changed(ILLEGAL, content_type=[]), "content_type", "content_type is required"),
    # at least one decision field
    (
        changed(ILLEGAL, decision_visibility=..., end_date_visibility_restriction=...),
        "decision_visibility",
        "at least one of decision_visibility, decision_monetary, decision_provision",
    ),
    # enumerations
    (changed(ILLEGAL, decision_visibility=["REMOVED"]), "decision_visibility", "not allowed"),
    (
        changed(ILLEGAL, decision_visibility="DECISION_VISIBILITY_CONTENT_REMOVED"),
        "decision_visibility",
        "must be a list",
    ),
    (
        changed(ILLEGAL, decision_visibility=["DECISION_VISIBILITY_CONTENT_REMOVED"] * 2),
        "decision_visibility",
        "more than once",
    ),
    (changed(ILLEGAL, decision_monetary="FINE"), "decision_monetary", "must be one of"),
    (changed(ILLEGAL, decision_provision="ALL"), "decision_provision", "must be one of"),
    (changed(ILLEGAL, decision_account="BANNED"), "decision_account", "must be one of"),
    (changed(ILLEGAL, account_type="ACCOUNT_TYPE_PUBLIC"), "account_type", "must be one of"),
    (changed(ILLEGAL, decision_ground="DECISION_GROUND_OTHER"), "decision_ground", "one of"),
    (changed(ILLEGAL, content_type=["CONTENT_TYPE_GIF"]), "content_type", "not allowed"),
    (changed(ILLEGAL, category="STATEMENT_CATEGORY_TERRORISM"), "category", "must be one of"),
    (changed(ILLEGAL, category="RISK_FOR_PUBLIC_SECURITY"), "category", "must be one of"),
    (changed(ILLEGAL, category_addition=["VIOLENCE"]), "category_addition", "not allowed"),
    (
        changed(ILLEGAL, category_specification=["KEYWORD_NOT_A_KEYWORD"]),
        "category_specification",
        "not allowed",
    ),
    (changed(ILLEGAL, territorial_scope=["US"]), "territorial_scope", "not allowed"),
    (changed(ILLEGAL, territorial_scope=["de"]), "territorial_scope", "not allowed"),
    (changed(ILLEGAL, source_type="SOURCE_ARTICLE_22"), "source_type", "must be one of"),
    (changed(ILLEGAL, automated_detection="yes"), "automated_detection", "must be one of"),
    (changed(ILLEGAL, automated_detection=True), "automated_detection", "must be one of"),
    (changed(ILLEGAL, automated_decision="FULLY"), "automated_decision", "must be one of"),
    (
        changed(INCOMPATIBLE, incompatible_content_illegal="Maybe"),
        "incompatible_content_illegal",
        "must be one of",
    ),
    # *_other
    (
        changed(ILLEGAL, decision_visibility=["DECISION_VISIBILITY_OTHER"]),
        "decision_visibility_other",
        "decision_visibility_other is required when DECISION_VISIBILITY_OTHER is chosen",
    ),
    (
        changed(ILLEGAL, decision_visibility_other="blurred"),
        "decision_visibility_other",
        "only allowed when DECISION_VISIBILITY_OTHER",
    ),
    (
        changed(ILLEGAL, decision_monetary="DECISION_MONETARY_OTHER"),
        "decision_monetary_other",
        "required when DECISION_MONETARY_OTHER",
    ),
    (
        changed(ILLEGAL, decision_monetary_other="fine"),
        "decision_monetary_other",
        "only allowed when DECISION_MONETARY_OTHER",
    ),
    (
        changed(ILLEGAL, content_type=["CONTENT_TYPE_VIDEO", "CONTENT_TYPE_OTHER"]),
        "content_type_other",
        "required when CONTENT_TYPE_OTHER",
    ),
    (
        changed(ILLEGAL, content_type_other="hologram"),
        "content_type_other",
        "only allowed when CONTENT_TYPE_OTHER",
    ),
    (
        changed(ILLEGAL, category_specification=["KEYWORD_OTHER"]),
        "category_specification_other",
        "required when KEYWORD_OTHER",
    ),
    (
        changed(ILLEGAL, category_specification_other="something"),
        "category_specification_other",
        "only allowed when KEYWORD_OTHER",
    ),
    # ground-dependent fields
    (
        changed(ILLEGAL, illegal_content_legal_ground=...),
        "illegal_content_legal_ground",
        "required when decision_ground is DECISION_GROUND_ILLEGAL_CONTENT",
    ),
    (
        changed(ILLEGAL, illegal_content_explanation=""),
        "illegal_content_explanation",
        "required when decision_ground is DECISION_GROUND_ILLEGAL_CONTENT",
    ),
    (
        changed(INCOMPATIBLE, incompatible_content_ground=...),
        "incompatible_content_ground",
        "required when decision_ground is DECISION_GROUND_INCOMPATIBLE_CONTENT",
    ),
    (
        changed(INCOMPATIBLE, incompatible_content_explanation=None),
        "incompatible_content_explanation",
        "required when decision_ground is DECISION_GROUND_INCOMPATIBLE_CONTENT",
    ),
    (
        changed(ILLEGAL, incompatible_content_ground="Terms §1"),
        "incompatible_content_ground",
        "only allowed when decision_ground is DECISION_GROUND_INCOMPATIBLE_CONTENT",
    ),
    (
        changed(INCOMPATIBLE, illegal_content_explanation="against the law"),
        "illegal_content_explanation",
        "only allowed when decision_ground is DECISION_GROUND_ILLEGAL_CONTENT",
    ),
    (
        changed(ILLEGAL, incompatible_content_illegal="Yes"),
        "incompatible_content_illegal",
        "only allowed when decision_ground is DECISION_GROUND_INCOMPATIBLE_CONTENT",
    ),
    # source identity
    (
        changed(INCOMPATIBLE, source_identity="Example Flagger e.V."),
        "source_identity",
        "not allowed when source_type is SOURCE_VOLUNTARY",
    ),
    # dates
    (changed(ILLEGAL, content_date="15/01/2026"), "content_date", "YYYY-MM-DD"),
    (changed(ILLEGAL, content_date="2026-1-15"), "content_date", "YYYY-MM-DD"),
    (changed(ILLEGAL, content_date="2026-02-30"), "content_date", "YYYY-MM-DD"),
    (changed(ILLEGAL, content_date="2026-01-15T10:00:00"), "content_date", "YYYY-MM-DD"),
    (changed(ILLEGAL, content_date=20260115), "content_date", "YYYY-MM-DD"),
    (
        changed(ILLEGAL, content_date="1999-12-31"),
        "content_date",
        "content_date must be between 2000-01-01 and 2038-01-01; got 1999-12-31",
    ),
    (changed(ILLEGAL, content_date="2038-01-02"), "content_date", "between"),
    (
        changed(ILLEGAL, application_date="2019-12-31"),
        "application_date",
        "application_date must be between 2020-01-01 and 2038-01-01",
    ),
    (changed(ILLEGAL, application_date="2038-01-02"), "application_date", "between"),
    *[
        (changed(ILLEGAL, **{name: "31.12.2026"}), name, f"{name} must be a date")
        for name in tdb.END_DATES
    ],
    # puid
    (changed(ILLEGAL, puid="cleanit host-a 42"), "puid", "letters, digits, '-' and '_'"),
    (changed(ILLEGAL, puid="cleanit/host-a/42"), "puid", "letters, digits"),
    (changed(ILLEGAL, puid="cleanit-hôst-42"), "puid", "letters, digits"),
    (changed(ILLEGAL, puid="a" * 501), "puid", "puid is longer than 500 characters (501)"),
    # other formats
    (changed(ILLEGAL, decision_facts=42), "decision_facts", "must be text"),
    (changed(ILLEGAL, content_language="deu"), "content_language", "ISO 639-1"),
    (changed(ILLEGAL, content_language="d1"), "content_language", "ISO 639-1"),
    (
        changed(ILLEGAL, decision_ground_reference_url="ftp://law.example.org/x"),
        "decision_ground_reference_url",
        "http(s) address",
    ),
    (
        changed(ILLEGAL, decision_ground_reference_url="Terms section 4"),
        "decision_ground_reference_url",
        "http(s) address",
    ),
    (changed(ILLEGAL, content_id={"EAN-13": "400638133393"}), "content_id", "13 digits"),
    (changed(ILLEGAL, content_id={"EAN-13": "400638133393X"}), "content_id", "13 digits"),
    (changed(ILLEGAL, content_id={"EAN-13": 4006381333931}), "content_id", "13 digits"),
    (changed(ILLEGAL, content_id={"ISBN": "9780306406157"}), "content_id", "only accepts"),
    (changed(ILLEGAL, content_id="4006381333931"), "content_id", "must be an object"),
]


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    BROKEN,
    ids=[f"{i}-{b[1]}" for i, b in enumerate(BROKEN)],
)
def test_each_broken_rule_yields_exactly_one_problem_naming_the_field(
    payload: Payload, field: str, words: str
) -> None:
    problem = only_problem(payload)
    assert problem.field == field
    assert words in problem.message


def _context_for(name: str) -> Payload:
    """A valid payload in which the text field ``name`` is allowed."""
    contexts: dict[str, Payload] = {
        "decision_visibility_other": changed(
            ILLEGAL, decision_visibility=["DECISION_VISIBILITY_OTHER"]
        ),
        "decision_monetary_other": changed(ILLEGAL, decision_monetary="DECISION_MONETARY_OTHER"),
        "content_type_other": changed(ILLEGAL, content_type=["CONTENT_TYPE_OTHER"]),
        "category_specification_other": changed(ILLEGAL, category_specification=["KEYWORD_OTHER"]),
        "incompatible_content_ground": INCOMPATIBLE,
        "incompatible_content_explanation": INCOMPATIBLE,
        "source_identity": changed(ILLEGAL, source_type="SOURCE_TRUSTED_FLAGGER"),
    }
    return contexts.get(name, ILLEGAL)


def _text_of(name: str, length: int) -> str:
    if name == "decision_ground_reference_url":
        prefix = "https://law.example.org/"
        return prefix + "a" * (length - len(prefix))
    return "a" * length


@pytest.mark.parametrize("name", sorted(tdb.MAX_LENGTH))
def test_text_fields_take_their_maximum_length_and_not_one_character_more(name: str) -> None:
    limit = tdb.MAX_LENGTH[name]
    base = _context_for(name)
    assert validate_statement(changed(base, **{name: _text_of(name, limit)})) == []
    problem = only_problem(changed(base, **{name: _text_of(name, limit + 1)}))
    assert problem == TdbProblem(name, f"{name} is longer than {limit} characters ({limit + 1})")


def test_long_facts_are_reported_in_plain_words() -> None:
    problem = only_problem(changed(ILLEGAL, decision_facts="x" * 5012))
    assert problem == TdbProblem(
        "decision_facts", "decision_facts is longer than 5000 characters (5012)"
    )


ACCEPTED: list[Payload] = [
    # each of the four decision fields is enough on its own
    changed(ILLEGAL, decision_visibility=..., decision_monetary="DECISION_MONETARY_SUSPENSION"),
    changed(
        ILLEGAL, decision_visibility=..., decision_provision="DECISION_PROVISION_TOTAL_SUSPENSION"
    ),
    changed(ILLEGAL, decision_visibility=..., decision_account="DECISION_ACCOUNT_TERMINATED"),
    # the *_other fields with their OTHER value
    changed(
        ILLEGAL,
        decision_visibility=["DECISION_VISIBILITY_OTHER"],
        decision_visibility_other="blurred",
    ),
    changed(
        ILLEGAL, decision_monetary="DECISION_MONETARY_OTHER", decision_monetary_other="held back"
    ),
    changed(
        ILLEGAL,
        content_type=["CONTENT_TYPE_OTHER", "CONTENT_TYPE_TEXT"],
        content_type_other="hologram",
    ),
    changed(
        ILLEGAL,
        category_specification=["KEYWORD_TERRORIST_CONTENT", "KEYWORD_OTHER"],
        category_specification_other="recruitment material",
    ),
    # optional fields
    changed(ILLEGAL, account_type="ACCOUNT_TYPE_PRIVATE"),
    changed(ILLEGAL, category_addition=["STATEMENT_CATEGORY_VIOLENCE"]),
    changed(ILLEGAL, content_id={"EAN-13": "4006381333931"}),
    changed(ILLEGAL, content_language="EN"),
    changed(ILLEGAL, source_type="SOURCE_TRUSTED_FLAGGER", source_identity="Example e.V."),
    changed(INCOMPATIBLE, incompatible_content_illegal="Yes"),
    changed(INCOMPATIBLE, incompatible_content_illegal=...),
    # absent = None = empty
    changed(ILLEGAL, account_type=None, territorial_scope=[], decision_ground_reference_url=""),
    changed(INCOMPATIBLE, source_identity=None),
    # date boundaries
    changed(ILLEGAL, content_date="2000-01-01", application_date="2020-01-01"),
    changed(ILLEGAL, content_date="2038-01-01", application_date="2038-01-01"),
    changed(ILLEGAL, content_date="2024-02-29", end_date_account_restriction="2040-06-30"),
    changed(ILLEGAL, puid="A-z_09"),
]


@pytest.mark.parametrize("payload", ACCEPTED)
def test_what_the_rules_allow_is_accepted(payload: Payload) -> None:
    assert validate_statement(payload) == []


def test_problems_accumulate_and_switching_the_ground_names_every_ground_field() -> None:
    switched = changed(ILLEGAL, decision_ground="DECISION_GROUND_INCOMPATIBLE_CONTENT")
    assert {p.field for p in validate_statement(switched)} == {
        "illegal_content_legal_ground",
        "illegal_content_explanation",
        "incompatible_content_ground",
        "incompatible_content_explanation",
    }
    many = changed(ILLEGAL, puid=..., category="X", decision_facts="y" * 5001, extra=1)
    assert {p.field for p in validate_statement(many)} == {
        "puid",
        "category",
        "decision_facts",
        "extra",
    }


def test_something_that_is_not_an_object_is_refused() -> None:
    assert validate_statement([ILLEGAL]) == [  # type: ignore[arg-type]
        TdbProblem("", "the statement must be a JSON object")
    ]


def test_the_enumerations_match_the_reference() -> None:
    assert len(tdb.DECISION_VISIBILITY) == 7
    assert len(tdb.CONTENT_TYPE) == 8
    assert len(tdb.CATEGORY) == 16
    assert {
        "SOURCE_ARTICLE_16",
        "SOURCE_TRUSTED_FLAGGER",
        "SOURCE_TYPE_OTHER_NOTIFICATION",
        "SOURCE_VOLUNTARY",
    } == tdb.SOURCE_TYPE
    assert {"KEYWORD_TERRORIST_CONTENT", "KEYWORD_OTHER"} <= tdb.CATEGORY_SPECIFICATION
    assert len(tdb.COUNTRIES) == 30 and "GR" in tdb.COUNTRIES and "CH" not in tdb.COUNTRIES


# --- building payloads from cleanit decisions ------------------------------------------------


def tdb_input(**kw: Any) -> TdbInput:
    fields: dict[str, Any] = {
        "decision_id": 42,
        "provider": "host-a",
        "action": Action.REMOVE,
        "ground": Ground.ILLEGAL_CONTENT,
        "basis_reference": "Regulation (EU) 2021/784, Art 2(7)",
        "basis_explanation": "Instructions for making explosives (invented test case).",
        "facts": "Reported by a referral unit and confirmed by two reviewers.",
        "source": SourceType.REFERRAL_UNIT,
        "category": Category.RISK_FOR_PUBLIC_SECURITY,
        "content_date": date(2026, 1, 15),
        "application_date": date(2026, 1, 16),
    }
    fields.update(kw)
    return TdbInput(**fields)


@pytest.mark.parametrize(
    ("action", "field", "value"),
    [
        (Action.LABEL, "decision_visibility", ["DECISION_VISIBILITY_CONTENT_LABELLED"]),
        (
            Action.RESTRICT_VISIBILITY,
            "decision_visibility",
            ["DECISION_VISIBILITY_CONTENT_DEMOTED"],
        ),
        (Action.GEO_BLOCK, "decision_visibility", ["DECISION_VISIBILITY_CONTENT_DISABLED"]),
        (Action.DISABLE_ACCESS, "decision_visibility", ["DECISION_VISIBILITY_CONTENT_DISABLED"]),
        (Action.REMOVE, "decision_visibility", ["DECISION_VISIBILITY_CONTENT_REMOVED"]),
        (Action.SUSPEND_ACCOUNT, "decision_account", "DECISION_ACCOUNT_SUSPENDED"),
    ],
)
def test_each_action_maps_to_its_decision_field(action: Action, field: str, value: Any) -> None:
    scope = ("AT",) if action is Action.GEO_BLOCK else ()
    payload = statement_payload(tdb_input(action=action, territorial_scope=scope))
    assert payload[field] == value
    assert [f for f in tdb.DECISION_FIELDS if f in payload] == [field]
    assert validate_statement(payload) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (SourceType.TRUSTED_FLAGGER, "SOURCE_TRUSTED_FLAGGER"),
        (SourceType.END_USER, "SOURCE_ARTICLE_16"),
        (SourceType.REFERRAL_UNIT, "SOURCE_TYPE_OTHER_NOTIFICATION"),
        (SourceType.AUTHORITY_NOTICE, "SOURCE_TYPE_OTHER_NOTIFICATION"),
        (SourceType.OWN_INITIATIVE, "SOURCE_VOLUNTARY"),
        (SourceType.AUTOMATED_DETECTION, "SOURCE_VOLUNTARY"),
        (None, "SOURCE_VOLUNTARY"),
    ],
)
def test_each_source_maps_to_its_source_type(source: SourceType | None, expected: str) -> None:
    payload = statement_payload(tdb_input(source=source, flagger_organisation="Flagger Org"))
    assert payload["source_type"] == expected
    # Only a trusted flagger is identified, and only by its organisation's name.
    if expected == "SOURCE_TRUSTED_FLAGGER":
        assert payload["source_identity"] == "Flagger Org"
    else:
        assert "source_identity" not in payload
    assert validate_statement(payload) == []


def test_grounds_fill_their_own_fields() -> None:
    illegal = statement_payload(tdb_input())
    assert illegal["decision_ground"] == "DECISION_GROUND_ILLEGAL_CONTENT"
    assert illegal["illegal_content_legal_ground"] == "Regulation (EU) 2021/784, Art 2(7)"
    assert illegal["illegal_content_explanation"].startswith("Instructions")
    assert not any(k.startswith("incompatible") for k in illegal)

    terms = statement_payload(
        tdb_input(
            ground=Ground.INCOMPATIBLE_CONTENT,
            basis_reference="Terms §4.2 v3",
            incompatible_also_illegal=True,
            basis_url="https://host-a.example.org/terms",
        )
    )
    assert terms["decision_ground"] == "DECISION_GROUND_INCOMPATIBLE_CONTENT"
    assert terms["incompatible_content_ground"] == "Terms §4.2 v3"
    assert terms["incompatible_content_illegal"] == "Yes"
    assert terms["decision_ground_reference_url"] == "https://host-a.example.org/terms"
    assert not any(k.startswith("illegal") for k in terms)
    assert validate_statement(terms) == []
    # A legal finding never states incompatible_content_illegal, even if asked to.
    assert "incompatible_content_illegal" not in statement_payload(
        tdb_input(incompatible_also_illegal=False)
    )


def test_terrorist_content_is_a_risk_for_public_security_with_its_keyword() -> None:
    payload = statement_payload(
        tdb_input(
            category=Category.VIOLENCE,
            terrorist_content=True,
            keywords=("KEYWORD_INCITEMENT_VIOLENCE_HATRED",),
        )
    )
    assert payload["category"] == "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY"
    assert payload["category_addition"] == ["STATEMENT_CATEGORY_VIOLENCE"]
    assert payload["category_specification"] == [
        "KEYWORD_TERRORIST_CONTENT",
        "KEYWORD_INCITEMENT_VIOLENCE_HATRED",
    ]
    assert validate_statement(payload) == []
    # The keyword alone is enough to mark the statement as terrorist content.
    by_keyword = statement_payload(
        tdb_input(category=Category.VIOLENCE, keywords=("KEYWORD_TERRORIST_CONTENT",))
    )
    assert by_keyword["category"] == "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY"
    assert by_keyword["category_specification"] == ["KEYWORD_TERRORIST_CONTENT"]


def test_no_action_produces_no_statement() -> None:
    with pytest.raises(NoStatement, match="restricts nothing"):
        statement_payload(tdb_input(action=Action.NO_ACTION))


def test_puid_names_provider_and_decision_and_is_always_acceptable() -> None:
    assert statement_payload(tdb_input())["puid"] == "cleanit-host-a-42"
    assert puid_for("host a/ü", 7) == "cleanit-host_a-7"
    assert puid_for("ü", 7) == "cleanit-provider-7"


def test_dates_and_automation_are_written_as_the_tdb_expects() -> None:
    payload = statement_payload(
        tdb_input(
            automated_detection=True,
            automated_decision=AutomatedDecision.FULLY,
            end_date=date(2026, 7, 1),
            territorial_scope=("FR", "DE", "FR"),
        )
    )
    assert payload["content_date"] == "2026-01-15"
    assert payload["application_date"] == "2026-01-16"
    assert payload["end_date_visibility_restriction"] == "2026-07-01"
    assert payload["automated_detection"] == "Yes"
    assert payload["automated_decision"] == "AUTOMATED_DECISION_FULLY"
    assert payload["territorial_scope"] == ["DE", "FR"]
    suspended = statement_payload(
        tdb_input(action=Action.SUSPEND_ACCOUNT, end_date=date(2026, 7, 1))
    )
    assert suspended["end_date_account_restriction"] == "2026-07-01"
    assert "end_date_visibility_restriction" not in suspended


def test_a_missing_explanation_of_other_is_caught_by_the_validator() -> None:
    payload = statement_payload(tdb_input(keywords=("KEYWORD_OTHER",)))
    assert validate_statement(payload) == [
        TdbProblem(
            "category_specification_other",
            "category_specification_other is required when KEYWORD_OTHER is chosen",
        )
    ]


# --- the whole decision space ----------------------------------------------------------------

RESTRICTIVE = [a for a in Action if a is not Action.NO_ACTION]
KEYWORDS = sorted(tdb.CATEGORY_SPECIFICATION)
COUNTRY_LIST = sorted(EU_EEA)
PLAIN = st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=60).filter(
    lambda s: s.strip() != ""
)


@st.composite
def decisions(draw: Callable[..., Any]) -> TdbInput:
    action = draw(st.sampled_from(RESTRICTIVE))
    scope = draw(st.lists(st.sampled_from(COUNTRY_LIST), unique=True, max_size=5))
    if action is Action.GEO_BLOCK and not scope:
        scope = [draw(st.sampled_from(COUNTRY_LIST))]
    keywords = tuple(draw(st.lists(st.sampled_from(KEYWORDS), unique=True, max_size=4)))
    content_types = tuple(
        draw(st.lists(st.sampled_from(sorted(tdb.CONTENT_TYPE)), unique=True, min_size=1))
    )
    content_date = draw(st.dates(date(2000, 1, 1), date(2038, 1, 1)))
    return TdbInput(
        decision_id=draw(st.integers(1, 10**12)),
        provider=draw(st.from_regex(r"[a-z0-9-]{1,30}", fullmatch=True)),
        action=action,
        ground=draw(st.sampled_from(list(Ground))),
        basis_reference=draw(PLAIN),
        basis_explanation=draw(PLAIN),
        facts=draw(PLAIN),
        source=draw(st.sampled_from([*SourceType, None])),
        category=draw(st.sampled_from(list(Category))),
        content_date=content_date,
        application_date=draw(st.dates(max(content_date, date(2020, 1, 1)), date(2038, 1, 1))),
        keywords=keywords,
        keywords_other=draw(PLAIN) if "KEYWORD_OTHER" in keywords else None,
        terrorist_content=draw(st.booleans()),
        territorial_scope=tuple(scope),
        content_types=content_types,
        content_type_other=draw(PLAIN) if tdb.CONTENT_TYPE_OTHER in content_types else None,
        automated_detection=draw(st.booleans()),
        automated_decision=draw(st.sampled_from(list(AutomatedDecision))),
        end_date=draw(st.none() | st.dates(date(2020, 1, 1), date(2040, 1, 1))),
        basis_url=draw(st.none() | st.just("https://law.example.org/provision")),
        incompatible_also_illegal=draw(st.none() | st.booleans()),
        flagger_organisation=draw(st.none() | PLAIN),
    )


@settings(max_examples=300, deadline=None)
@given(decisions())
def test_every_decision_cleanit_can_take_yields_a_valid_statement(s: TdbInput) -> None:
    payload = statement_payload(s)
    assert validate_statement(payload) == []
    json.dumps(payload)  # plain JSON types only
    assert payload["puid"] == f"cleanit-{s.provider}-{s.decision_id}"
    if s.terrorist_content:
        assert payload["category"] == Category.RISK_FOR_PUBLIC_SECURITY.value
        assert tdb.KEYWORD_TERRORIST_CONTENT in payload["category_specification"]


MARKERS = {
    "notifier_name": "MARKER-NAME-Zq7",
    "notifier_email": "marker-zq7@mail.example.org",
    "content_url": "https://host-a.example.org/MARKER-URL-Zq7",
    "uploader": "MARKER-UPLOADER-Zq7",
}


@settings(max_examples=150, deadline=None)
@given(decisions())
def test_personal_data_never_reaches_the_payload(s: TdbInput) -> None:
    planted = TdbInput(
        **{
            **{f: getattr(s, f) for f in TdbInput.__dataclass_fields__},
            **MARKERS,
            "flagger_organisation": "MARKER-ORG-Zq7",
        }
    )
    text = json.dumps(statement_payload(planted), ensure_ascii=False)
    for marker in MARKERS.values():
        assert marker not in text
    assert "Zq7" not in text.replace("MARKER-ORG-Zq7", "")
    # The organisation name of a trusted flagger is the only identity that may be given.
    assert ("MARKER-ORG-Zq7" in text) == (s.source is SourceType.TRUSTED_FLAGGER)
