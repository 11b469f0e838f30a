"""DSA Transparency Database (TDB): the statement-of-reasons payload and its validator.

Pure domain code: it builds the JSON object sent to ``POST /api/v1/statement(s)`` and checks it
against the field rules of the TDB API (``StatementStoreRequest`` in
``digital-services-act/transparency-database``, summarised in the project's regulation notes
§3.2). Submitting batches, retries and the fake server belong to the submission jobs, not here.

Mapping from ``cleanit``'s decision vocabulary (a ``cleanit`` choice, not an official rule):

==============================  ==========================================================
cleanit                         TDB payload
==============================  ==========================================================
Action.LABEL                    decision_visibility = [DECISION_VISIBILITY_CONTENT_LABELLED]
Action.RESTRICT_VISIBILITY      decision_visibility = [DECISION_VISIBILITY_CONTENT_DEMOTED]
Action.GEO_BLOCK                decision_visibility = [DECISION_VISIBILITY_CONTENT_DISABLED]
                                (with territorial_scope = the blocked countries)
Action.DISABLE_ACCESS           decision_visibility = [DECISION_VISIBILITY_CONTENT_DISABLED]
Action.REMOVE                   decision_visibility = [DECISION_VISIBILITY_CONTENT_REMOVED]
Action.SUSPEND_ACCOUNT          decision_account = DECISION_ACCOUNT_SUSPENDED
Action.NO_ACTION                no payload: ``statement_payload`` raises ``NoStatement``
Ground.ILLEGAL_CONTENT          DECISION_GROUND_ILLEGAL_CONTENT; basis reference ->
                                illegal_content_legal_ground, explanation ->
                                illegal_content_explanation
Ground.INCOMPATIBLE_CONTENT     DECISION_GROUND_INCOMPATIBLE_CONTENT; basis reference ->
                                incompatible_content_ground, explanation ->
                                incompatible_content_explanation
SourceType.TRUSTED_FLAGGER      SOURCE_TRUSTED_FLAGGER (source_identity = the flagger
                                organisation's name, if given; never a person)
SourceType.END_USER             SOURCE_ARTICLE_16
SourceType.REFERRAL_UNIT        SOURCE_TYPE_OTHER_NOTIFICATION
SourceType.AUTHORITY_NOTICE     SOURCE_TYPE_OTHER_NOTIFICATION
SourceType.OWN_INITIATIVE,      SOURCE_VOLUNTARY (no source_identity)
SourceType.AUTOMATED_DETECTION,
None (own initiative)
terrorist content               category = STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY,
                                category_specification includes KEYWORD_TERRORIST_CONTENT
                                (any other category given moves to category_addition)
AutomatedDecision.FULLY /       AUTOMATED_DECISION_FULLY / _PARTIALLY / _NOT_AUTOMATED
PARTIALLY / NOT_AUTOMATED
automated_detection True/False  "Yes" / "No"
duration end date               end_date_account_restriction (account suspension) or
                                end_date_visibility_restriction (content actions)
decision id + provider slug     puid = "cleanit-<provider>-<decision_id>"
==============================  ==========================================================

No personal data (DSA Art 24(5)): the payload never carries notifier names or e-mail addresses,
content URLs or uploader handles, even though ``TdbInput`` accepts them so that callers can pass
the whole decision context. Free-text fields (facts, explanation) are copied as written: the
people who write them must keep personal data out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from cleanit.domain.decisions import Action, AutomatedDecision, Ground
from cleanit.domain.notices import EU_EEA, TERRORIST_CONTENT_KEYWORD, Category, SourceType

# --- enumerations (regulation notes §3.3) -------------------------------------------------

YES = "Yes"
NO = "No"
YES_NO = frozenset({YES, NO})

DECISION_VISIBILITY_CONTENT_REMOVED = "DECISION_VISIBILITY_CONTENT_REMOVED"
DECISION_VISIBILITY_CONTENT_DISABLED = "DECISION_VISIBILITY_CONTENT_DISABLED"
DECISION_VISIBILITY_CONTENT_DEMOTED = "DECISION_VISIBILITY_CONTENT_DEMOTED"
DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED = "DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED"
DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED = (
    "DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED"
)
DECISION_VISIBILITY_CONTENT_LABELLED = "DECISION_VISIBILITY_CONTENT_LABELLED"
DECISION_VISIBILITY_OTHER = "DECISION_VISIBILITY_OTHER"
DECISION_VISIBILITY = frozenset(
    {
        DECISION_VISIBILITY_CONTENT_REMOVED,
        DECISION_VISIBILITY_CONTENT_DISABLED,
        DECISION_VISIBILITY_CONTENT_DEMOTED,
        DECISION_VISIBILITY_CONTENT_AGE_RESTRICTED,
        DECISION_VISIBILITY_CONTENT_INTERACTION_RESTRICTED,
        DECISION_VISIBILITY_CONTENT_LABELLED,
        DECISION_VISIBILITY_OTHER,
    }
)

DECISION_MONETARY_SUSPENSION = "DECISION_MONETARY_SUSPENSION"
DECISION_MONETARY_TERMINATION = "DECISION_MONETARY_TERMINATION"
DECISION_MONETARY_OTHER = "DECISION_MONETARY_OTHER"
DECISION_MONETARY = frozenset(
    {DECISION_MONETARY_SUSPENSION, DECISION_MONETARY_TERMINATION, DECISION_MONETARY_OTHER}
)

DECISION_PROVISION = frozenset(
    {
        "DECISION_PROVISION_PARTIAL_SUSPENSION",
        "DECISION_PROVISION_TOTAL_SUSPENSION",
        "DECISION_PROVISION_PARTIAL_TERMINATION",
        "DECISION_PROVISION_TOTAL_TERMINATION",
    }
)

DECISION_ACCOUNT_SUSPENDED = "DECISION_ACCOUNT_SUSPENDED"
DECISION_ACCOUNT_TERMINATED = "DECISION_ACCOUNT_TERMINATED"
DECISION_ACCOUNT = frozenset({DECISION_ACCOUNT_SUSPENDED, DECISION_ACCOUNT_TERMINATED})

ACCOUNT_TYPE = frozenset({"ACCOUNT_TYPE_BUSINESS", "ACCOUNT_TYPE_PRIVATE"})

DECISION_GROUND_ILLEGAL_CONTENT = "DECISION_GROUND_ILLEGAL_CONTENT"
DECISION_GROUND_INCOMPATIBLE_CONTENT = "DECISION_GROUND_INCOMPATIBLE_CONTENT"
DECISION_GROUND = frozenset({DECISION_GROUND_ILLEGAL_CONTENT, DECISION_GROUND_INCOMPATIBLE_CONTENT})

CONTENT_TYPE_TEXT = "CONTENT_TYPE_TEXT"
CONTENT_TYPE_OTHER = "CONTENT_TYPE_OTHER"
CONTENT_TYPE = frozenset(
    {
        "CONTENT_TYPE_APP",
        "CONTENT_TYPE_AUDIO",
        "CONTENT_TYPE_IMAGE",
        "CONTENT_TYPE_PRODUCT",
        "CONTENT_TYPE_SYNTHETIC_MEDIA",
        CONTENT_TYPE_TEXT,
        "CONTENT_TYPE_VIDEO",
        CONTENT_TYPE_OTHER,
    }
)

CATEGORY = frozenset(c.value for c in Category)

KEYWORD_TERRORIST_CONTENT = TERRORIST_CONTENT_KEYWORD
KEYWORD_OTHER = "KEYWORD_OTHER"
# The authoritative list (``Statement::KEYWORDS`` in the TDB source) has 69 values; these are
# the ones cleanit uses. A keyword outside this set is refused until it is added here.
CATEGORY_SPECIFICATION = frozenset(
    {
        KEYWORD_TERRORIST_CONTENT,
        "KEYWORD_ILLEGAL_ORGANIZATIONS",
        "KEYWORD_INCITEMENT_VIOLENCE_HATRED",
        "KEYWORD_HATE_SPEECH",
        "KEYWORD_COORDINATED_HARM",
        KEYWORD_OTHER,
    }
)

SOURCE_ARTICLE_16 = "SOURCE_ARTICLE_16"
SOURCE_TRUSTED_FLAGGER = "SOURCE_TRUSTED_FLAGGER"
SOURCE_TYPE_OTHER_NOTIFICATION = "SOURCE_TYPE_OTHER_NOTIFICATION"
SOURCE_VOLUNTARY = "SOURCE_VOLUNTARY"
SOURCE_TYPE = frozenset(
    {SOURCE_ARTICLE_16, SOURCE_TRUSTED_FLAGGER, SOURCE_TYPE_OTHER_NOTIFICATION, SOURCE_VOLUNTARY}
)

AUTOMATED_DECISION_FULLY = "AUTOMATED_DECISION_FULLY"
AUTOMATED_DECISION_PARTIALLY = "AUTOMATED_DECISION_PARTIALLY"
AUTOMATED_DECISION_NOT_AUTOMATED = "AUTOMATED_DECISION_NOT_AUTOMATED"
AUTOMATED_DECISION = frozenset(
    {AUTOMATED_DECISION_FULLY, AUTOMATED_DECISION_PARTIALLY, AUTOMATED_DECISION_NOT_AUTOMATED}
)

# EU and EEA member states, ISO 3166-1 alpha-2 (Greece is GR, as in the TDB).
COUNTRIES = EU_EEA

CONTENT_DATE_RANGE = (date(2000, 1, 1), date(2038, 1, 1))
APPLICATION_DATE_RANGE = (date(2020, 1, 1), date(2038, 1, 1))

# --- field table (regulation notes §3.2) ----------------------------------------------------

MAX_LENGTH: dict[str, int] = {
    "decision_visibility_other": 500,
    "decision_monetary_other": 500,
    "decision_ground_reference_url": 500,
    "illegal_content_legal_ground": 500,
    "illegal_content_explanation": 2000,
    "incompatible_content_ground": 500,
    "incompatible_content_explanation": 2000,
    "content_type_other": 500,
    "category_specification_other": 500,
    "decision_facts": 5000,
    "source_identity": 500,
    "puid": 500,
}

SINGLE_ENUM: dict[str, frozenset[str]] = {
    "decision_monetary": DECISION_MONETARY,
    "decision_provision": DECISION_PROVISION,
    "decision_account": DECISION_ACCOUNT,
    "account_type": ACCOUNT_TYPE,
    "decision_ground": DECISION_GROUND,
    "incompatible_content_illegal": YES_NO,
    "category": CATEGORY,
    "source_type": SOURCE_TYPE,
    "automated_detection": YES_NO,
    "automated_decision": AUTOMATED_DECISION,
}

LIST_ENUM: dict[str, frozenset[str]] = {
    "decision_visibility": DECISION_VISIBILITY,
    "content_type": CONTENT_TYPE,
    "category_addition": CATEGORY,
    "category_specification": CATEGORY_SPECIFICATION,
    "territorial_scope": COUNTRIES,
}

END_DATES = (
    "end_date_account_restriction",
    "end_date_monetary_restriction",
    "end_date_service_restriction",
    "end_date_visibility_restriction",
)
DATE_FIELDS: dict[str, tuple[date, date] | None] = {
    "content_date": CONTENT_DATE_RANGE,
    "application_date": APPLICATION_DATE_RANGE,
    **dict.fromkeys(END_DATES),
}

REQUIRED = (
    "decision_ground",
    "content_type",
    "category",
    "content_date",
    "application_date",
    "decision_facts",
    "source_type",
    "automated_detection",
    "automated_decision",
    "puid",
)
DECISION_FIELDS = (
    "decision_visibility",
    "decision_monetary",
    "decision_provision",
    "decision_account",
)

FIELDS = frozenset(
    {
        *MAX_LENGTH,
        *SINGLE_ENUM,
        *LIST_ENUM,
        *DATE_FIELDS,
        "content_language",
        "content_id",
    }
)

# "*_other" text fields: required when (and only allowed when) the OTHER value is chosen.
OTHER_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("decision_visibility", DECISION_VISIBILITY_OTHER, "decision_visibility_other"),
    ("decision_monetary", DECISION_MONETARY_OTHER, "decision_monetary_other"),
    ("content_type", CONTENT_TYPE_OTHER, "content_type_other"),
    ("category_specification", KEYWORD_OTHER, "category_specification_other"),
)

GROUND_FIELDS: dict[str, tuple[str, ...]] = {
    DECISION_GROUND_ILLEGAL_CONTENT: (
        "illegal_content_legal_ground",
        "illegal_content_explanation",
    ),
    DECISION_GROUND_INCOMPATIBLE_CONTENT: (
        "incompatible_content_ground",
        "incompatible_content_explanation",
    ),
}

PUID_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
DATE_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")
LANGUAGE_PATTERN = re.compile(r"[A-Za-z]{2}")
EAN13_PATTERN = re.compile(r"\d{13}")


@dataclass(frozen=True, slots=True)
class TdbProblem:
    """One reason a payload would be refused: the field and a sentence in plain words."""

    field: str
    message: str


def _absent(value: Any) -> bool:
    # The TDB (Laravel) trims strings and turns empty ones into null before validating.
    return value is None or value == [] or (isinstance(value, str) and not value.strip())


def _parse_date(value: str) -> date | None:
    if not DATE_PATTERN.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def validate_statement(payload: dict[str, Any]) -> list[TdbProblem]:
    """Every reason the TDB would refuse ``payload``; an empty list means it is acceptable.

    ``None``, an empty list or a blank string in a field counts as the field being absent.
    Checks that depend on another field (``*_other``, the ground fields, ``source_identity``)
    are only made when that other field is itself valid, so one mistake yields one problem.
    """
    problems: list[TdbProblem] = []

    def problem(name: str, message: str) -> None:
        problems.append(TdbProblem(name, message))

    if not isinstance(payload, dict):
        return [TdbProblem("", "the statement must be a JSON object")]

    valid: dict[str, Any] = {}  # fields present and individually valid

    for name in sorted(payload):
        if name not in FIELDS:
            problem(name, f"{name} is not a field of the Transparency Database statement")
            continue
        value = payload[name]
        if _absent(value):
            continue
        ok = True
        if name in MAX_LENGTH:
            if not isinstance(value, str):
                problem(name, f"{name} must be text")
                ok = False
            elif len(value) > MAX_LENGTH[name]:
                problem(
                    name,
                    f"{name} is longer than {MAX_LENGTH[name]} characters ({len(value)})",
                )
                ok = False
        elif name in SINGLE_ENUM:
            allowed = SINGLE_ENUM[name]
            if not isinstance(value, str) or value not in allowed:
                problem(name, f"{name} must be one of {', '.join(sorted(allowed))}; got {value!r}")
                ok = False
        elif name in LIST_ENUM:
            allowed = LIST_ENUM[name]
            if not isinstance(value, list):
                problem(name, f"{name} must be a list of values")
                ok = False
            else:
                bad = [v for v in value if not isinstance(v, str) or v not in allowed]
                if bad:
                    problem(name, f"{name} has values that are not allowed: {bad!r}")
                    ok = False
                elif len(set(value)) != len(value):
                    problem(name, f"{name} lists the same value more than once")
                    ok = False
        elif name in DATE_FIELDS:
            parsed = _parse_date(value) if isinstance(value, str) else None
            if parsed is None:
                problem(name, f"{name} must be a date written YYYY-MM-DD; got {value!r}")
                ok = False
            else:
                bounds = DATE_FIELDS[name]
                if bounds is not None and not bounds[0] <= parsed <= bounds[1]:
                    problem(
                        name,
                        f"{name} must be between {bounds[0].isoformat()} and "
                        f"{bounds[1].isoformat()}; got {value}",
                    )
                    ok = False
        elif name == "content_language":
            if not isinstance(value, str) or not LANGUAGE_PATTERN.fullmatch(value):
                problem(
                    name, f"content_language must be a two-letter ISO 639-1 code; got {value!r}"
                )
                ok = False
        elif name == "content_id":
            ok = _check_content_id(value, problem)
        if ok:
            valid[name] = value

    # Patterns and URLs on fields whose length is fine.
    puid = valid.get("puid")
    if puid is not None and not PUID_PATTERN.fullmatch(puid):
        problem("puid", "puid may only contain letters, digits, '-' and '_'")
        del valid["puid"]
    url = valid.get("decision_ground_reference_url")
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problem(
                "decision_ground_reference_url",
                "decision_ground_reference_url must be an http(s) address",
            )

    for name in REQUIRED:
        if _absent(payload.get(name)):
            problem(name, f"{name} is required")

    if not any(name in payload and not _absent(payload[name]) for name in DECISION_FIELDS):
        problem(
            "decision_visibility",
            "at least one of decision_visibility, decision_monetary, decision_provision "
            "or decision_account is required",
        )

    for chooser, other_value, other_field in OTHER_FIELDS:
        if chooser in payload and not _absent(payload[chooser]) and chooser not in valid:
            continue  # the chooser is itself wrong: already reported
        chosen = valid.get(chooser)
        picked = other_value in chosen if isinstance(chosen, list) else chosen == other_value
        given = not _absent(payload.get(other_field))
        if picked and not given:
            problem(other_field, f"{other_field} is required when {other_value} is chosen")
        elif given and not picked:
            problem(other_field, f"{other_field} is only allowed when {other_value} is chosen")

    ground = valid.get("decision_ground")
    if ground is not None:
        for g, names in GROUND_FIELDS.items():
            for name in names:
                given = not _absent(payload.get(name))
                if g == ground and not given:
                    problem(name, f"{name} is required when decision_ground is {g}")
                elif g != ground and given:
                    problem(name, f"{name} is only allowed when decision_ground is {g}")
        if ground != DECISION_GROUND_INCOMPATIBLE_CONTENT and not _absent(
            payload.get("incompatible_content_illegal")
        ):
            problem(
                "incompatible_content_illegal",
                "incompatible_content_illegal is only allowed when decision_ground is "
                f"{DECISION_GROUND_INCOMPATIBLE_CONTENT}",
            )

    if valid.get("source_type") == SOURCE_VOLUNTARY and not _absent(payload.get("source_identity")):
        problem(
            "source_identity",
            f"source_identity is not allowed when source_type is {SOURCE_VOLUNTARY}",
        )

    return problems


def _check_content_id(value: Any, problem: Callable[[str, str], None]) -> bool:
    if not isinstance(value, dict):
        problem("content_id", "content_id must be an object such as {'EAN-13': '...'}")
        return False
    extra = sorted(str(k) for k in value if k != "EAN-13")
    if extra:
        problem("content_id", f"content_id only accepts the key EAN-13; got {', '.join(extra)}")
        return False
    ean = value.get("EAN-13")
    if not isinstance(ean, str) or not EAN13_PATTERN.fullmatch(ean):
        problem("content_id", "content_id.EAN-13 must be exactly 13 digits")
        return False
    return True


# --- building the payload --------------------------------------------------------------------

VISIBILITY_FOR: dict[Action, str] = {
    Action.LABEL: DECISION_VISIBILITY_CONTENT_LABELLED,
    Action.RESTRICT_VISIBILITY: DECISION_VISIBILITY_CONTENT_DEMOTED,
    Action.GEO_BLOCK: DECISION_VISIBILITY_CONTENT_DISABLED,
    Action.DISABLE_ACCESS: DECISION_VISIBILITY_CONTENT_DISABLED,
    Action.REMOVE: DECISION_VISIBILITY_CONTENT_REMOVED,
}
ACCOUNT_FOR: dict[Action, str] = {Action.SUSPEND_ACCOUNT: DECISION_ACCOUNT_SUSPENDED}

SOURCE_FOR: dict[SourceType | None, str] = {
    SourceType.TRUSTED_FLAGGER: SOURCE_TRUSTED_FLAGGER,
    SourceType.END_USER: SOURCE_ARTICLE_16,
    SourceType.REFERRAL_UNIT: SOURCE_TYPE_OTHER_NOTIFICATION,
    SourceType.AUTHORITY_NOTICE: SOURCE_TYPE_OTHER_NOTIFICATION,
    SourceType.OWN_INITIATIVE: SOURCE_VOLUNTARY,
    SourceType.AUTOMATED_DETECTION: SOURCE_VOLUNTARY,
    None: SOURCE_VOLUNTARY,
}

GROUND_FOR: dict[Ground, str] = {
    Ground.ILLEGAL_CONTENT: DECISION_GROUND_ILLEGAL_CONTENT,
    Ground.INCOMPATIBLE_CONTENT: DECISION_GROUND_INCOMPATIBLE_CONTENT,
}

AUTOMATION_FOR: dict[AutomatedDecision, str] = {
    AutomatedDecision.FULLY: AUTOMATED_DECISION_FULLY,
    AutomatedDecision.PARTIALLY: AUTOMATED_DECISION_PARTIALLY,
    AutomatedDecision.NOT_AUTOMATED: AUTOMATED_DECISION_NOT_AUTOMATED,
}

_NOT_PUID = re.compile(r"[^A-Za-z0-9_-]+")


class NoStatement(ValueError):
    """A decision that restricts nothing (``no_action``) has no TDB statement."""


@dataclass(frozen=True, slots=True)
class TdbInput:
    """What a decision tells the TDB. Plain values, no I/O.

    ``notifier_name``, ``notifier_email``, ``content_url`` and ``uploader`` are accepted so that
    callers can hand over the whole decision context; they are personal (or may be) and are
    never copied into the payload.
    """

    decision_id: int
    provider: str  # the provider's slug; becomes part of the puid
    action: Action
    ground: Ground
    basis_reference: str  # legal provision or terms clause relied on
    basis_explanation: str
    facts: str
    source: SourceType | None  # None = the provider's own initiative
    category: Category
    content_date: date
    application_date: date
    keywords: tuple[str, ...] = field(default_factory=tuple)
    keywords_other: str | None = None  # required with KEYWORD_OTHER
    terrorist_content: bool = False
    territorial_scope: tuple[str, ...] = field(default_factory=tuple)
    content_types: tuple[str, ...] = (CONTENT_TYPE_TEXT,)
    content_type_other: str | None = None  # required with CONTENT_TYPE_OTHER
    automated_detection: bool = False
    automated_decision: AutomatedDecision = AutomatedDecision.NOT_AUTOMATED
    end_date: date | None = None  # when a temporary restriction ends
    basis_url: str | None = None  # public address of the law or terms relied on
    incompatible_also_illegal: bool | None = None  # only meaningful for terms decisions
    flagger_organisation: str | None = None  # trusted flagger's organisation name only
    # Personal or possibly personal: never emitted.
    notifier_name: str | None = None
    notifier_email: str | None = None
    content_url: str | None = None
    uploader: str | None = None


def puid_for(provider: str, decision_id: int) -> str:
    """``cleanit-<provider>-<decision_id>``, with any character the TDB refuses replaced."""
    slug = _NOT_PUID.sub("_", provider).strip("_") or "provider"
    return f"cleanit-{slug}-{decision_id}"


def statement_payload(s: TdbInput) -> dict[str, Any]:
    """The TDB statement for one decision (see the module docstring for the mapping).

    Raises ``NoStatement`` for ``no_action`` decisions: they restrict nothing, so DSA Art 17
    and Art 24(5) do not call for a statement. The result is not validated here; run
    ``validate_statement`` on it before submitting.
    """
    if s.action is Action.NO_ACTION:
        raise NoStatement(f"decision {s.decision_id} restricts nothing: no TDB statement")

    payload: dict[str, Any] = {"puid": puid_for(s.provider, s.decision_id)}
    if s.action in VISIBILITY_FOR:
        payload["decision_visibility"] = [VISIBILITY_FOR[s.action]]
        end_field = "end_date_visibility_restriction"
    else:
        payload["decision_account"] = ACCOUNT_FOR[s.action]
        end_field = "end_date_account_restriction"
    if s.end_date is not None:
        payload[end_field] = s.end_date.isoformat()

    ground = GROUND_FOR[s.ground]
    payload["decision_ground"] = ground
    if s.basis_url:
        payload["decision_ground_reference_url"] = s.basis_url
    if s.ground is Ground.ILLEGAL_CONTENT:
        payload["illegal_content_legal_ground"] = s.basis_reference
        payload["illegal_content_explanation"] = s.basis_explanation
    else:
        payload["incompatible_content_ground"] = s.basis_reference
        payload["incompatible_content_explanation"] = s.basis_explanation
        if s.incompatible_also_illegal is not None:
            payload["incompatible_content_illegal"] = YES if s.incompatible_also_illegal else NO

    payload["content_type"] = list(dict.fromkeys(s.content_types))
    if CONTENT_TYPE_OTHER in s.content_types and s.content_type_other:
        payload["content_type_other"] = s.content_type_other

    keywords = list(dict.fromkeys(s.keywords))
    category = s.category.value
    additions: list[str] = []
    if s.terrorist_content or KEYWORD_TERRORIST_CONTENT in keywords:
        if KEYWORD_TERRORIST_CONTENT not in keywords:
            keywords.insert(0, KEYWORD_TERRORIST_CONTENT)
        if category != Category.RISK_FOR_PUBLIC_SECURITY.value:
            additions.append(category)
            category = Category.RISK_FOR_PUBLIC_SECURITY.value
    payload["category"] = category
    if additions:
        payload["category_addition"] = additions
    if keywords:
        payload["category_specification"] = keywords
        if KEYWORD_OTHER in keywords and s.keywords_other:
            payload["category_specification_other"] = s.keywords_other

    if s.territorial_scope:
        payload["territorial_scope"] = sorted(set(s.territorial_scope))
    payload["content_date"] = s.content_date.isoformat()
    payload["application_date"] = s.application_date.isoformat()
    payload["decision_facts"] = s.facts

    source = SOURCE_FOR[s.source]
    payload["source_type"] = source
    if source == SOURCE_TRUSTED_FLAGGER and s.flagger_organisation:
        payload["source_identity"] = s.flagger_organisation

    payload["automated_detection"] = YES if s.automated_detection else NO
    payload["automated_decision"] = AUTOMATION_FOR[s.automated_decision]
    return payload
