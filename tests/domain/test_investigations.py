"""Investigation requests (Clean IT BP10): legal basis, provision, scope and deadline are
required; decisions give reasons when not complying; nothing leaves outside the scope."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cleanit.domain.errors import InvalidInput, PrincipleViolation
from cleanit.domain.investigations import (
    INVESTIGATION_FIELDS,
    DataCategory,
    RequestDecision,
    RequestKind,
    check_disclosure,
    decide_request,
    validate_investigation_request,
    validate_investigation_request_all,
)

NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
D = DataCategory
_DROP = object()


def request(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "requesting_authority": "Example Federal Police, cybercrime unit",
        "reference": "INV-2026-77",
        "kind": "disclosure",
        "legal_basis": "Investigating judge's order of 2 May 2026 in case 2026/123 (invented).",
        "provision": "Code of Criminal Procedure, Art 46bis (BE)",
        "subject": "https://host-a.example.org/v/1 and its uploader account",
        "scope": ["account_metadata", "ip_logs"],
        "deadline": "2026-05-11T17:00:00+02:00",
    }
    raw.update(changes)
    return {k: v for k, v in raw.items() if v is not _DROP}


def test_a_complete_request_is_accepted() -> None:
    draft = validate_investigation_request(request(), now=NOW)
    assert draft.kind is RequestKind.DISCLOSURE
    assert draft.scope == {D.ACCOUNT_METADATA, D.IP_LOGS}
    assert draft.deadline == datetime(2026, 5, 11, 15, 0, tzinfo=UTC)
    assert draft.provision == "Code of Criminal Procedure, Art 46bis (BE)"
    assert validate_investigation_request_all(request(), now=NOW) == []


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("no authority", {"requesting_authority": _DROP}, "requesting_authority"),
    ("no reference", {"reference": ""}, "reference"),
    ("no kind", {"kind": _DROP}, "kind"),
    ("unknown kind", {"kind": "surveillance"}, "kind"),
    ("no legal basis", {"legal_basis": _DROP}, "legal_basis"),
    ("legal basis too thin", {"legal_basis": "law"}, "legal_basis"),
    ("no provision", {"provision": _DROP}, "provision"),
    ("no subject", {"subject": _DROP}, "subject"),
    ("no scope", {"scope": _DROP}, "scope"),
    ("empty scope", {"scope": []}, "scope"),
    ("unknown category", {"scope": ["content", "passwords"]}, "scope[1]"),
    ("no deadline", {"deadline": _DROP}, "deadline"),
    ("naive deadline", {"deadline": "2026-05-11T17:00:00"}, "deadline"),
    ("deadline passed", {"deadline": "2026-05-04T09:59:59+00:00"}, "deadline"),
    ("deadline years away", {"deadline": "2036-05-11T17:00:00+00:00"}, "deadline"),
    ("unknown field", {"priority": "urgent"}, "priority"),
]


@pytest.mark.parametrize(
    ("changes", "field"), [(c, f) for _, c, f in BAD], ids=[n for n, _, _ in BAD]
)
def test_every_bad_field_is_named_exactly(changes: dict[str, Any], field: str) -> None:
    raw = request(**changes)
    with pytest.raises(InvalidInput) as exc:
        validate_investigation_request(raw, now=NOW)
    assert exc.value.field == field
    assert [f for f, _ in validate_investigation_request_all(raw, now=NOW)] == [field]


def test_all_problems_are_listed_together() -> None:
    raw = request(kind="wiretap", scope=["dna"], provision=_DROP)
    fields = [f for f, _ in validate_investigation_request_all(raw, now=NOW)]
    assert fields == ["kind", "provision", "scope[0]"]
    assert set(fields) <= {*INVESTIGATION_FIELDS, "scope[0]"}


# --- Disclosure and decisions ----------------------------------------------------------------

SCOPE = frozenset({D.ACCOUNT_METADATA, D.IP_LOGS})


def test_disclosure_within_scope_is_allowed() -> None:
    assert check_disclosure(SCOPE, ["ip_logs"]) == {D.IP_LOGS}
    assert check_disclosure(["account_metadata", "ip_logs"], SCOPE) == SCOPE


def test_disclosure_outside_scope_is_refused_naming_the_categories() -> None:
    with pytest.raises(PrincipleViolation) as exc:
        check_disclosure(SCOPE, [D.IP_LOGS, D.UPLOADER_CONTACT, D.CONTENT])
    assert exc.value.field == "categories"
    assert exc.value.detail.startswith("content, uploader_contact are outside the scope")
    assert "(account_metadata, ip_logs)" in exc.value.detail


def test_disclosing_nothing_or_unknown_categories_is_invalid() -> None:
    with pytest.raises(InvalidInput) as exc:
        check_disclosure(SCOPE, [])
    assert exc.value.field == "categories"
    with pytest.raises(InvalidInput, match="unknown data category 'passwords'"):
        check_disclosure(SCOPE, ["passwords"])


@given(st.sets(st.sampled_from(DataCategory)), st.sets(st.sampled_from(DataCategory)))
def test_disclosure_is_allowed_exactly_for_non_empty_subsets_of_the_scope(
    scope: set[DataCategory], asked: set[DataCategory]
) -> None:
    if asked and asked <= scope:
        assert check_disclosure(scope, asked) == asked
    else:
        with pytest.raises((InvalidInput, PrincipleViolation)):
            check_disclosure(scope, asked)


def test_complying_covers_the_whole_scope() -> None:
    answer = decide_request(SCOPE, RequestDecision.COMPLY)
    assert answer.categories == SCOPE and answer.reasons is None
    with pytest.raises(InvalidInput, match="decide 'partly'"):
        decide_request(SCOPE, RequestDecision.COMPLY, categories=[D.IP_LOGS])


def test_a_partial_answer_needs_reasons_and_a_strict_part_of_the_scope() -> None:
    answer = decide_request(
        SCOPE,
        RequestDecision.PARTLY,
        categories=[D.IP_LOGS],
        reasons="  Account metadata is not kept beyond 30 days.  ",
    )
    assert answer.categories == {D.IP_LOGS}
    assert answer.reasons == "Account metadata is not kept beyond 30 days."
    with pytest.raises(InvalidInput) as exc:
        decide_request(SCOPE, RequestDecision.PARTLY, categories=[D.IP_LOGS])
    assert exc.value.field == "reasons"
    with pytest.raises(InvalidInput, match="decide 'comply'"):
        decide_request(SCOPE, RequestDecision.PARTLY, categories=SCOPE, reasons="x" * 20)
    with pytest.raises(PrincipleViolation):
        decide_request(SCOPE, RequestDecision.PARTLY, categories=[D.CONTENT], reasons="x" * 20)
    with pytest.raises(InvalidInput, match="name the part"):
        decide_request(SCOPE, RequestDecision.PARTLY, reasons="x" * 20)


def test_a_refusal_needs_reasons_and_discloses_nothing() -> None:
    answer = decide_request(
        SCOPE, RequestDecision.REFUSE, reasons="The cited provision does not cover IP logs."
    )
    assert answer.categories == frozenset()
    with pytest.raises(InvalidInput) as exc:
        decide_request(SCOPE, RequestDecision.REFUSE, reasons="no")
    assert exc.value.field == "reasons" and "refuse" in exc.value.detail
    with pytest.raises(InvalidInput) as exc:
        decide_request(SCOPE, RequestDecision.REFUSE, categories=[D.IP_LOGS], reasons="x" * 20)
    assert exc.value.field == "categories"
