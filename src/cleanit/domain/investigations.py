"""Investigation requests from law enforcement (Clean IT best practice 10).

A request to preserve or to disclose data must cite its legal basis and the provision, say
which categories of data it covers (its **scope**) and by when. The provider decides to comply,
comply in part or refuse — with reasons for the last two — and nothing is ever disclosed
outside the recorded scope (``check_disclosure``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from cleanit.domain.errors import InvalidInput, PrincipleViolation
from cleanit.domain.raw_input import FieldError, FieldErrors, RawReader, to_utc


class RequestKind(StrEnum):
    PRESERVATION = "preservation"  # keep the data (nothing leaves the provider)
    DISCLOSURE = "disclosure"  # hand the data over


class DataCategory(StrEnum):
    CONTENT = "content"
    ACCOUNT_METADATA = "account_metadata"
    IP_LOGS = "ip_logs"
    UPLOADER_CONTACT = "uploader_contact"
    RELATED_CONTENT = "related_content"


class RequestDecision(StrEnum):
    COMPLY = "comply"
    PARTLY = "partly"
    REFUSE = "refuse"


# A deadline further away than this is almost certainly a typing error in the year.
MAX_DEADLINE_AHEAD = timedelta(days=366)
MAX_TEXT = 10_000

INVESTIGATION_FIELDS = (
    "requesting_authority",
    "reference",
    "kind",
    "legal_basis",
    "provision",
    "subject",
    "scope",
    "deadline",
)


@dataclass(frozen=True, slots=True)
class InvestigationRequestDraft:
    requesting_authority: str
    reference: str
    kind: RequestKind
    legal_basis: str  # why the law allows the request, in the authority's words
    provision: str  # the provision cited, e.g. "Code of Criminal Procedure, Art 46bis (BE)"
    subject: str  # what it concerns: content URLs, account identifiers
    scope: frozenset[DataCategory]
    deadline: datetime  # UTC


def _parse_request(
    raw: Mapping[str, Any], now: datetime
) -> tuple[InvestigationRequestDraft | None, list[FieldError]]:
    errors = FieldErrors()
    if not isinstance(raw, Mapping):
        return None, [("body", "must be a JSON object of named fields")]
    r = RawReader(raw, errors)
    r.refuse_unknown(INVESTIGATION_FIELDS)
    authority = r.text(
        "requesting_authority", required=True, min_len=2, max_len=300, what="who asks"
    )
    reference = r.text("reference", required=True, max_len=100, what="the request's reference")
    kind = _enum(r, "kind", RequestKind, "preservation or disclosure")
    legal_basis = r.text(
        "legal_basis",
        required=True,
        min_len=10,
        max_len=MAX_TEXT,
        what="the legal basis of the request",
        multiline=True,
    )
    provision = r.text(
        "provision",
        required=True,
        min_len=2,
        max_len=200,
        what="the provision relied on, e.g. 'Code of Criminal Procedure, Art 46bis (BE)'",
    )
    subject = r.text(
        "subject",
        required=True,
        min_len=3,
        max_len=MAX_TEXT,
        what="the content or accounts the request concerns",
        multiline=True,
    )
    scope = _scope(r)
    deadline = r.instant("deadline", what="the date and time by which to answer")
    current = to_utc(now, field="now")
    if deadline is not None and deadline <= current:
        errors.add("deadline", "the deadline has already passed")
    elif deadline is not None and deadline > current + MAX_DEADLINE_AHEAD:
        errors.add("deadline", "the deadline is more than a year away; check the date")
    if errors:
        return None, errors.items
    assert authority is not None and reference is not None and kind is not None
    assert legal_basis is not None and provision is not None and subject is not None
    assert scope is not None and deadline is not None
    draft = InvestigationRequestDraft(
        requesting_authority=authority,
        reference=reference,
        kind=kind,
        legal_basis=legal_basis,
        provision=provision,
        subject=subject,
        scope=scope,
        deadline=deadline,
    )
    return draft, []


def _enum(r: RawReader, key: str, enum: type[RequestKind], what: str) -> RequestKind | None:
    value = r.raw.get(key)
    if value is None:
        r.errors.add(key, f"required: {what}")
        return None
    try:
        return enum(value if isinstance(value, str) else repr(value))
    except ValueError:
        r.errors.add(key, f"unknown value '{value}'; use {what}")
        return None


def _scope(r: RawReader) -> frozenset[DataCategory] | None:
    allowed = ", ".join(c.value for c in DataCategory)
    items = r.items_of("scope", what=f"a data category: {allowed}", max_items=len(DataCategory))
    if items is None:
        return None
    scope: set[DataCategory] = set()
    ok = True
    for i, item in enumerate(items):
        try:
            scope.add(DataCategory(item if isinstance(item, str) else repr(item)))
        except ValueError:
            r.errors.add(f"scope[{i}]", f"unknown data category '{item}'; use {allowed}")
            ok = False
    return frozenset(scope) if ok else None


def validate_investigation_request_all(
    raw: Mapping[str, Any], *, now: datetime
) -> list[FieldError]:
    """Every problem of a raw request as (field path, message); empty when valid."""
    return _parse_request(raw, now)[1]


def validate_investigation_request(
    raw: Mapping[str, Any], *, now: datetime
) -> InvestigationRequestDraft:
    """The validated request; InvalidInput naming the first wrong field otherwise."""
    draft, errors = _parse_request(raw, now)
    if draft is None:
        field, message = errors[0]
        raise InvalidInput(message, field=field)
    return draft


def _categories(values: Iterable[DataCategory | str], field: str) -> frozenset[DataCategory]:
    out: set[DataCategory] = set()
    for value in values:
        try:
            out.add(DataCategory(value))
        except ValueError:
            raise InvalidInput(
                f"unknown data category '{value}'; use " + ", ".join(c.value for c in DataCategory),
                field=field,
            ) from None
    return frozenset(out)


def check_disclosure(
    scope: Collection[DataCategory | str], categories: Iterable[DataCategory | str]
) -> frozenset[DataCategory]:
    """The categories about to be disclosed, refused if any lies outside the recorded scope."""
    recorded = _categories(scope, "scope")
    asked = _categories(categories, "categories")
    if not asked:
        raise InvalidInput("name the data categories to disclose", field="categories")
    outside = sorted(c.value for c in asked - recorded)
    if outside:
        raise PrincipleViolation(
            f"{', '.join(outside)} {'is' if len(outside) == 1 else 'are'} outside the scope of "
            f"the request ({', '.join(sorted(c.value for c in recorded))}); nothing outside the "
            "recorded scope is disclosed",
            field="categories",
        )
    return asked


@dataclass(frozen=True, slots=True)
class RequestAnswer:
    decision: RequestDecision
    categories: frozenset[DataCategory]  # what is preserved or disclosed
    reasons: str | None


def decide_request(
    scope: Collection[DataCategory | str],
    decision: RequestDecision,
    *,
    categories: Iterable[DataCategory | str] | None = None,
    reasons: str | None = None,
) -> RequestAnswer:
    """Check a decision on a request. Complying covers the whole scope; a partial answer
    names a part of it; refusing covers nothing. Partial answers and refusals give reasons."""
    recorded = _categories(scope, "scope")
    text = (reasons or "").strip() or None
    if decision is not RequestDecision.COMPLY and (text is None or len(text) < 10):
        raise InvalidInput(
            f"a decision to {'refuse' if decision is RequestDecision.REFUSE else 'comply in part'}"
            " needs reasons (at least 10 characters)",
            field="reasons",
        )
    if text is not None and len(text) > MAX_TEXT:
        raise InvalidInput(f"reasons are longer than {MAX_TEXT} characters", field="reasons")
    if decision is RequestDecision.REFUSE:
        if categories is not None and _categories(categories, "categories"):
            raise InvalidInput(
                "a refusal discloses nothing; leave categories empty", field="categories"
            )
        return RequestAnswer(decision, frozenset(), text)
    if decision is RequestDecision.COMPLY:
        chosen = recorded if categories is None else check_disclosure(recorded, categories)
        if chosen != recorded:
            raise InvalidInput(
                "complying covers the whole scope; to answer for part of it decide 'partly'",
                field="categories",
            )
        return RequestAnswer(decision, chosen, text)
    if categories is None:
        raise InvalidInput("name the part of the scope the answer covers", field="categories")
    chosen = check_disclosure(recorded, categories)
    if chosen == recorded:
        raise InvalidInput(
            "these are all the categories in scope: decide 'comply'", field="categories"
        )
    return RequestAnswer(decision, chosen, text)
