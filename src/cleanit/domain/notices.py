"""Notices: what a notifier tells a hosting provider about a piece of content (DSA Art 16).

The validation here is the single place where Art 16(2) elements are checked, for every
channel (API, CLI import, web form).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit

from cleanit.domain.errors import InvalidInput
from cleanit.domain.roles import OrgKind, Principal


class SourceType(StrEnum):
    """Where a notice comes from. Drives priority (DSA Art 22) and the DSA TDB source type."""

    END_USER = "end_user"
    TRUSTED_FLAGGER = "trusted_flagger"
    REFERRAL_UNIT = "referral_unit"
    AUTHORITY_NOTICE = "authority_notice"
    OWN_INITIATIVE = "own_initiative"
    AUTOMATED_DETECTION = "automated_detection"


class Category(StrEnum):
    """The DSA Transparency Database statement categories (without the common prefix)."""

    ANIMAL_WELFARE = "STATEMENT_CATEGORY_ANIMAL_WELFARE"
    CONSUMER_INFORMATION = "STATEMENT_CATEGORY_CONSUMER_INFORMATION"
    CYBER_VIOLENCE = "STATEMENT_CATEGORY_CYBER_VIOLENCE"
    CYBER_VIOLENCE_AGAINST_WOMEN = "STATEMENT_CATEGORY_CYBER_VIOLENCE_AGAINST_WOMEN"
    DATA_PROTECTION_AND_PRIVACY_VIOLATIONS = (
        "STATEMENT_CATEGORY_DATA_PROTECTION_AND_PRIVACY_VIOLATIONS"
    )
    ILLEGAL_OR_HARMFUL_SPEECH = "STATEMENT_CATEGORY_ILLEGAL_OR_HARMFUL_SPEECH"
    INTELLECTUAL_PROPERTY_INFRINGEMENTS = "STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS"
    NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS = (
        "STATEMENT_CATEGORY_NEGATIVE_EFFECTS_ON_CIVIC_DISCOURSE_OR_ELECTIONS"
    )
    NOT_SPECIFIED_NOTICE = "STATEMENT_CATEGORY_NOT_SPECIFIED_NOTICE"
    OTHER_VIOLATION_TC = "STATEMENT_CATEGORY_OTHER_VIOLATION_TC"
    PROTECTION_OF_MINORS = "STATEMENT_CATEGORY_PROTECTION_OF_MINORS"
    RISK_FOR_PUBLIC_SECURITY = "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY"
    SCAMS_AND_FRAUD = "STATEMENT_CATEGORY_SCAMS_AND_FRAUD"
    SELF_HARM = "STATEMENT_CATEGORY_SELF_HARM"
    UNSAFE_AND_PROHIBITED_PRODUCTS = "STATEMENT_CATEGORY_UNSAFE_AND_PROHIBITED_PRODUCTS"
    VIOLENCE = "STATEMENT_CATEGORY_VIOLENCE"


# Terrorist content is reported under "risk for public security" with this keyword.
TERRORIST_CONTENT_KEYWORD = "KEYWORD_TERRORIST_CONTENT"

# Lower number = reviewed first. Removal orders (priority 0) belong to the orders feature.
SOURCE_PRIORITY: dict[SourceType, int] = {
    SourceType.AUTHORITY_NOTICE: 10,
    SourceType.REFERRAL_UNIT: 20,
    SourceType.TRUSTED_FLAGGER: 20,
    SourceType.AUTOMATED_DETECTION: 40,
    SourceType.END_USER: 50,
    SourceType.OWN_INITIATIVE: 60,
}

# Which source types a principal of each organisation kind may claim. Members of the public
# (anonymous) can only submit end-user notices; nobody can claim a source they are not.
ALLOWED_SOURCES: dict[OrgKind | None, frozenset[SourceType]] = {
    None: frozenset({SourceType.END_USER}),
    OrgKind.HOSTING_PROVIDER: frozenset(
        {SourceType.OWN_INITIATIVE, SourceType.AUTOMATED_DETECTION, SourceType.END_USER}
    ),
    OrgKind.REFERRAL_UNIT: frozenset({SourceType.REFERRAL_UNIT}),
    OrgKind.HOTLINE: frozenset({SourceType.REFERRAL_UNIT}),
    OrgKind.COMPETENT_AUTHORITY: frozenset({SourceType.AUTHORITY_NOTICE}),
    OrgKind.TRUSTED_FLAGGER: frozenset({SourceType.TRUSTED_FLAGGER}),
    OrgKind.RESEARCH: frozenset({SourceType.END_USER}),
}

# Art 16(2)(c): name and e-mail may be omitted only for offences under Arts 3-7 of
# Directive 2011/93/EU (child sexual abuse). Own-initiative and automated detections have no
# external notifier at all.
CONTACT_EXEMPT_CATEGORIES = frozenset({Category.PROTECTION_OF_MINORS})
NO_NOTIFIER_SOURCES = frozenset({SourceType.OWN_INITIATIVE, SourceType.AUTOMATED_DETECTION})

MAX_LOCATIONS = 50
MAX_URL_LENGTH = 2048
MAX_EXPLANATION = 10_000
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{2,63}$")
_JURISDICTION = re.compile(r"^(EU|[A-Z]{2})$")
EU_EEA = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "HR",
        "CY",
        "CZ",
        "DK",
        "EE",
        "FI",
        "FR",
        "DE",
        "GR",
        "HU",
        "IE",
        "IT",
        "LV",
        "LT",
        "LU",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SK",
        "SI",
        "ES",
        "SE",
        "IS",
        "LI",
        "NO",
    ]
)


@dataclass(frozen=True, slots=True)
class NoticeDraft:
    """A notice as received, before it is stored."""

    provider: str
    source_type: SourceType
    category: Category
    explanation: str
    locations: tuple[str, ...]
    jurisdiction: str
    good_faith: bool
    notifier_name: str | None = None
    notifier_email: str | None = None
    keywords: tuple[str, ...] = field(default_factory=tuple)
    # A member of the public may choose to stay anonymous. The report is then still handled,
    # but it is not a complete DSA Art 16 notice (no name/e-mail, so no acknowledgement and
    # no outcome message can be sent) unless the category is exempt from the contact rule.
    anonymous: bool = False


def is_art16_complete(draft: NoticeDraft) -> bool:
    """Whether the notice carries every Art 16(2) element (it then binds the provider)."""
    if draft.source_type in NO_NOTIFIER_SOURCES:
        return False
    if draft.category in CONTACT_EXEMPT_CATEGORIES:
        return True
    return not draft.anonymous


def canonical_url(url: str) -> str:
    """Return the canonical form used to decide that two notices concern the same content.

    Lower-cases scheme and host, drops default ports, fragments and a trailing slash.
    Raises InvalidInput for anything but an absolute http(s) URL.
    """
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"URL longer than {MAX_URL_LENGTH} characters", field="locations")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"not a valid URL: {exc}", field="locations") from exc
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise InvalidInput(
            "each location must be an absolute http(s) URL, e.g. https://example.org/post/1",
            field="locations",
        )
    if any(c.isspace() for c in url.strip()):
        raise InvalidInput("a URL cannot contain spaces", field="locations")
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    if port is not None and not (
        (scheme == "http" and port == 80) or (scheme == "https" and port == 443)
    ):
        host = f"{host}:{port}"
    path = parts.path.rstrip("/") or ""
    return urlunsplit((scheme, host, path, parts.query, ""))


def validate_notice(draft: NoticeDraft, principal: Principal) -> NoticeDraft:
    """Check the DSA Art 16(2) elements and the notifier's right to the claimed source.

    Returns the draft with canonical locations; raises InvalidInput naming the field.
    """
    allowed = ALLOWED_SOURCES.get(principal.org_kind, frozenset())
    if draft.source_type not in allowed:
        raise InvalidInput(
            f"source type '{draft.source_type.value}' cannot be used by "
            + ("an anonymous notifier" if principal.is_anonymous else "this organisation")
            + f"; allowed: {', '.join(sorted(s.value for s in allowed))}",
            field="source_type",
        )
    explanation = draft.explanation.strip()
    if draft.source_type not in NO_NOTIFIER_SOURCES and len(explanation) < 10:
        raise InvalidInput(
            "explain why the content is illegal or against the terms (at least 10 characters)",
            field="explanation",
        )
    if len(explanation) > MAX_EXPLANATION:
        raise InvalidInput(
            f"the explanation is longer than {MAX_EXPLANATION} characters", field="explanation"
        )
    if not draft.locations:
        raise InvalidInput("give at least one exact URL of the content", field="locations")
    if len(draft.locations) > MAX_LOCATIONS:
        raise InvalidInput(f"at most {MAX_LOCATIONS} locations per notice", field="locations")
    locations = tuple(dict.fromkeys(canonical_url(u) for u in draft.locations))
    if not _JURISDICTION.match(draft.jurisdiction) or (
        draft.jurisdiction != "EU" and draft.jurisdiction not in EU_EEA
    ):
        raise InvalidInput(
            "jurisdiction must be 'EU' or an EU/EEA country code such as 'DE'",
            field="jurisdiction",
        )
    if draft.source_type not in NO_NOTIFIER_SOURCES and not draft.good_faith:
        raise InvalidInput(
            "the notifier must confirm in good faith that the notice is accurate and complete",
            field="good_faith",
        )
    name = (draft.notifier_name or "").strip() or None
    email = (draft.notifier_email or "").strip() or None
    needs_contact = (
        draft.source_type not in NO_NOTIFIER_SOURCES
        and draft.category not in CONTACT_EXEMPT_CATEGORIES
        and principal.is_anonymous
        and not draft.anonymous
    )
    if needs_contact and not name:
        raise InvalidInput(
            "the notifier's name is required (DSA Art 16(2)(c)); to report anonymously set "
            "'anonymous' to true",
            field="notifier_name",
        )
    if needs_contact and not email:
        raise InvalidInput(
            "the notifier's e-mail is required (DSA Art 16(2)(c)); to report anonymously set "
            "'anonymous' to true",
            field="notifier_email",
        )
    if draft.anonymous and (name or email):
        raise InvalidInput("an anonymous report cannot carry a name or e-mail", field="anonymous")
    if email is not None and not _EMAIL.match(email):
        raise InvalidInput("not a valid e-mail address", field="notifier_email")
    if name is not None and len(name) > 200:
        raise InvalidInput("the name is longer than 200 characters", field="notifier_name")
    for keyword in draft.keywords:
        if not re.fullmatch(r"KEYWORD_[A-Z_]{2,60}", keyword):
            raise InvalidInput(f"unknown keyword '{keyword}'", field="keywords")
    return NoticeDraft(
        provider=draft.provider,
        source_type=draft.source_type,
        category=draft.category,
        explanation=explanation,
        locations=locations,
        jurisdiction=draft.jurisdiction,
        good_faith=draft.good_faith,
        notifier_name=name,
        notifier_email=email,
        keywords=tuple(dict.fromkeys(draft.keywords)),
        anonymous=draft.anonymous,
    )


def priority_of(source: SourceType) -> int:
    return SOURCE_PRIORITY[source]
