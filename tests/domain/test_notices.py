"""Notices (DSA Art 16): per-field validation, who may claim which source, anonymous reports,
and the canonical URL that decides whether two notices concern the same content."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cleanit.domain.errors import InvalidInput
from cleanit.domain.notices import (
    Category,
    NoticeDraft,
    SourceType,
    canonical_url,
    is_art16_complete,
    validate_notice,
)
from cleanit.domain.roles import ANONYMOUS, ROLES_BY_ORG_KIND, OrgKind, Principal

URL = "https://host-a.example.org/v/1"


def member(kind: OrgKind, org_id: int = 7) -> Principal:
    return Principal(
        organisation_id=org_id,
        org_kind=kind,
        roles=ROLES_BY_ORG_KIND[kind],
        user_id=org_id * 10,
        label=f"user:{org_id * 10}",
    )


def draft(**kw: Any) -> NoticeDraft:
    fields: dict[str, Any] = {
        "provider": "host-a",
        "source_type": SourceType.END_USER,
        "category": Category.RISK_FOR_PUBLIC_SECURITY,
        "explanation": "It calls on people to join an invented violent group.",
        "locations": (URL,),
        "jurisdiction": "DE",
        "good_faith": True,
        "notifier_name": "Pat Public",
        "notifier_email": "pat@public.example.net",
    }
    fields.update(kw)
    return NoticeDraft(**fields)


def refused_field(d: NoticeDraft, principal: Principal = ANONYMOUS) -> str | None:
    with pytest.raises(InvalidInput) as exc:
        validate_notice(d, principal)
    assert exc.value.detail  # always a readable reason
    return exc.value.field


# --- per-field errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"explanation": "too short"}, "explanation"),
        ({"explanation": "   short   \n"}, "explanation"),  # whitespace does not count
        ({"explanation": "x" * 10_001}, "explanation"),
        ({"locations": ()}, "locations"),
        ({"locations": tuple(f"{URL}/{i}" for i in range(51))}, "locations"),
        ({"locations": ("not a url",)}, "locations"),
        ({"locations": (URL, "ftp://host-a.example.org/v/2")}, "locations"),
        ({"locations": ("https://host-a.example.org/a b",)}, "locations"),
        ({"locations": ("https://" + "a" * 2048 + ".example.org/",)}, "locations"),
        ({"jurisdiction": "US"}, "jurisdiction"),
        ({"jurisdiction": "de"}, "jurisdiction"),
        ({"jurisdiction": "DEU"}, "jurisdiction"),
        ({"jurisdiction": ""}, "jurisdiction"),
        ({"good_faith": False}, "good_faith"),
        ({"notifier_name": None}, "notifier_name"),
        ({"notifier_name": "   "}, "notifier_name"),
        ({"notifier_email": None}, "notifier_email"),
        ({"notifier_email": "pat-at-example"}, "notifier_email"),
        ({"notifier_email": "pat@localhost"}, "notifier_email"),
        ({"notifier_name": "P" * 201}, "notifier_name"),
        ({"anonymous": True}, "anonymous"),  # anonymous, yet with name and e-mail
        ({"keywords": ("terrorist",)}, "keywords"),
        ({"keywords": ("KEYWORD_TERRORIST_CONTENT", "DROP TABLE")}, "keywords"),
        ({"source_type": SourceType.TRUSTED_FLAGGER}, "source_type"),
    ],
)
def test_each_missing_or_bad_element_is_refused_naming_its_field(
    changes: dict[str, Any], field: str
) -> None:
    assert refused_field(draft(**changes)) == field


def test_a_complete_notice_is_accepted_and_normalised() -> None:
    out = validate_notice(
        draft(
            explanation="  It calls on people to join an invented violent group.  ",
            locations=(
                "HTTPS://Host-A.example.org:443/v/1/",
                URL,
                "https://host-a.example.org/v/2",
            ),
            notifier_name="  Pat Public ",
            notifier_email=" pat@public.example.net ",
            keywords=("KEYWORD_TERRORIST_CONTENT", "KEYWORD_TERRORIST_CONTENT"),
        ),
        ANONYMOUS,
    )
    assert out.explanation == "It calls on people to join an invented violent group."
    # Variants of the same URL collapse to one location, order kept.
    assert out.locations == (URL, "https://host-a.example.org/v/2")
    assert (out.notifier_name, out.notifier_email) == ("Pat Public", "pat@public.example.net")
    assert out.keywords == ("KEYWORD_TERRORIST_CONTENT",)
    assert is_art16_complete(out)


def test_eu_and_every_eea_country_are_valid_jurisdictions() -> None:
    for code in ("EU", "DE", "FR", "NO", "IS", "LI"):
        assert validate_notice(draft(jurisdiction=code), ANONYMOUS).jurisdiction == code
    for code in ("GB", "CH", "US", "XX"):
        assert refused_field(draft(jurisdiction=code)) == "jurisdiction"


def test_detections_without_an_external_notifier_need_no_explanation_or_good_faith() -> None:
    host = member(OrgKind.HOSTING_PROVIDER)
    for source in (SourceType.OWN_INITIATIVE, SourceType.AUTOMATED_DETECTION):
        out = validate_notice(
            draft(
                source_type=source,
                explanation="",
                good_faith=False,
                notifier_name=None,
                notifier_email=None,
            ),
            host,
        )
        assert out.source_type is source
        assert not is_art16_complete(out)  # nobody outside to answer to


# --- who may claim which source --------------------------------------------------------------

EXPECTED_SOURCES: dict[OrgKind | None, set[SourceType]] = {
    None: {SourceType.END_USER},
    OrgKind.HOSTING_PROVIDER: {
        SourceType.END_USER,
        SourceType.OWN_INITIATIVE,
        SourceType.AUTOMATED_DETECTION,
    },
    OrgKind.REFERRAL_UNIT: {SourceType.REFERRAL_UNIT},
    OrgKind.HOTLINE: {SourceType.REFERRAL_UNIT},
    OrgKind.COMPETENT_AUTHORITY: {SourceType.AUTHORITY_NOTICE},
    OrgKind.TRUSTED_FLAGGER: {SourceType.TRUSTED_FLAGGER},
    OrgKind.RESEARCH: {SourceType.END_USER},
}


@pytest.mark.parametrize("kind", [None, *OrgKind])
@pytest.mark.parametrize("source", list(SourceType))
def test_nobody_can_claim_a_source_they_are_not(kind: OrgKind | None, source: SourceType) -> None:
    principal = ANONYMOUS if kind is None else member(kind)
    d = draft(source_type=source)
    if source in EXPECTED_SOURCES[kind]:
        assert validate_notice(d, principal).source_type is source
    else:
        with pytest.raises(InvalidInput) as exc:
            validate_notice(d, principal)
        assert exc.value.field == "source_type"
        # The message tells the notifier what they may use instead.
        for allowed in EXPECTED_SOURCES[kind]:
            assert allowed.value in exc.value.detail


def test_the_anonymous_public_is_told_it_is_anonymous() -> None:
    with pytest.raises(InvalidInput) as exc:
        validate_notice(draft(source_type=SourceType.AUTHORITY_NOTICE), ANONYMOUS)
    assert "anonymous" in exc.value.detail


# --- anonymous reports ------------------------------------------------------------------------


def test_the_public_may_report_anonymously_but_the_notice_is_then_not_art16_complete() -> None:
    out = validate_notice(draft(anonymous=True, notifier_name=None, notifier_email=None), ANONYMOUS)
    assert out.anonymous and out.notifier_name is None and out.notifier_email is None
    assert not is_art16_complete(out)


@pytest.mark.parametrize(("name", "email"), [("Pat", None), (None, "pat@public.example.net")])
def test_an_anonymous_report_carries_no_contact_at_all(name: str | None, email: str | None) -> None:
    assert (
        refused_field(draft(anonymous=True, notifier_name=name, notifier_email=email))
        == "anonymous"
    )


def test_child_abuse_reports_need_no_contact_and_are_still_complete() -> None:
    # DSA Art 16(2)(c): name and e-mail may be left out for Directive 2011/93/EU offences.
    out = validate_notice(
        draft(category=Category.PROTECTION_OF_MINORS, notifier_name=None, notifier_email=None),
        ANONYMOUS,
    )
    assert is_art16_complete(out)


def test_signed_in_notifiers_need_no_separate_contact_details() -> None:
    flagger = member(OrgKind.TRUSTED_FLAGGER)
    out = validate_notice(
        draft(source_type=SourceType.TRUSTED_FLAGGER, notifier_name=None, notifier_email=None),
        flagger,
    )
    assert out.notifier_name is None and is_art16_complete(out)


@given(
    name=st.one_of(st.none(), st.just(""), st.just("Pat Public")),
    email=st.one_of(st.none(), st.just(""), st.just("pat@public.example.net")),
    anonymous=st.booleans(),
    category=st.sampled_from(Category),
)
def test_contact_rules_for_the_public(
    name: str | None, email: str | None, anonymous: bool, category: Category
) -> None:
    d = draft(notifier_name=name, notifier_email=email, anonymous=anonymous, category=category)
    has_name, has_email = bool(name), bool(email)
    exempt = category is Category.PROTECTION_OF_MINORS
    if not anonymous and not exempt and not has_name:
        expected: str | None = "notifier_name"
    elif not anonymous and not exempt and not has_email:
        expected = "notifier_email"
    elif anonymous and (has_name or has_email):
        expected = "anonymous"
    else:
        expected = None
    if expected is None:
        out = validate_notice(d, ANONYMOUS)
        assert is_art16_complete(out) == (exempt or not anonymous)
    else:
        assert refused_field(d) == expected


# --- canonical URLs ---------------------------------------------------------------------------


def _mixed_case(data: st.DataObject, word: str) -> str:
    flips = data.draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.upper() if f else c for c, f in zip(word, flips, strict=True))


_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
_segment = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%",
    min_size=1,
    max_size=8,
)
_query = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789=&", min_size=1, max_size=12)


@st.composite
def url_parts(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "scheme": draw(st.sampled_from(["http", "https"])),
        "host": ".".join(draw(st.lists(_label, min_size=1, max_size=3))) + ".example.org",
        "port": draw(st.one_of(st.none(), st.integers(min_value=1, max_value=65535))),
        "path": "".join("/" + s for s in draw(st.lists(_segment, max_size=4))),
        "query": draw(st.one_of(st.none(), _query)),
    }


def build(
    p: dict[str, Any],
    *,
    scheme: str | None = None,
    host: str | None = None,
    default_port: bool = False,
    slash: bool = False,
    fragment: str | None = None,
) -> str:
    scheme = scheme or p["scheme"]
    port = p["port"]
    if default_port and port is None:
        port = 443 if p["scheme"] == "https" else 80
    netloc = (host or p["host"]) + (f":{port}" if port is not None else "")
    url = f"{scheme}://{netloc}{p['path']}" + ("/" if slash else "")
    if p["query"] is not None:
        url += "?" + p["query"]
    if fragment is not None:
        url += "#" + fragment
    return url


@given(p=url_parts(), data=st.data())
def test_variants_of_one_url_have_one_canonical_form(
    p: dict[str, Any], data: st.DataObject
) -> None:
    plain = canonical_url(build(p))
    variant = build(
        p,
        scheme=_mixed_case(data, p["scheme"]),
        host=_mixed_case(data, p["host"]),
        default_port=data.draw(st.booleans()),
        slash=data.draw(st.booleans()),
        fragment=data.draw(st.one_of(st.none(), _query)),
    )
    assert canonical_url(variant) == plain
    assert canonical_url(plain) == plain  # idempotent
    assert plain.startswith(f"{p['scheme']}://{p['host']}")
    assert "#" not in plain and not plain.endswith("/")


@given(p=url_parts())
def test_a_non_default_port_and_the_query_are_kept(p: dict[str, Any]) -> None:
    out = canonical_url(build(p))
    default = 443 if p["scheme"] == "https" else 80
    if p["port"] is not None and p["port"] != default:
        assert f":{p['port']}" in out
    else:
        assert ":" not in out.split("://", 1)[1]
    if p["query"] is not None:
        assert out.endswith("?" + p["query"])


@given(
    url=st.one_of(
        st.text(max_size=60),
        st.builds(
            lambda s, rest: s + rest,
            st.sampled_from(["http://", "https://", "HTTP://", "hTTps://", "http:", "//"]),
            st.text(max_size=40),
        ),
    )
)
def test_canonical_url_is_idempotent_for_anything_it_accepts(url: str) -> None:
    try:
        once = canonical_url(url)
    except InvalidInput as exc:
        assert exc.field == "locations"
        return
    assert canonical_url(once) == once


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://example.org/A", "https://example.org/a"),  # paths are case-sensitive
        ("https://example.org/a?x=1", "https://example.org/a?x=2"),
        ("http://example.org/a", "https://example.org/a"),
        ("https://example.org:8443/a", "https://example.org/a"),
        ("http://example.org:443/a", "http://example.org/a"),  # 443 is not http's default
        ("https://example.org/a", "https://example.org/a/b"),
        ("https://a.example.org/x", "https://b.example.org/x"),
    ],
)
def test_different_content_keeps_different_canonical_forms(a: str, b: str) -> None:
    assert canonical_url(a) != canonical_url(b)


@pytest.mark.parametrize(
    "url",
    [
        "https://[2001:db8::1]/post/1",
        "http://[2001:DB8::1]:8080/post/1/",
        "https://user:secret@example.org/post/1",
    ],
)
def test_unusual_but_valid_hosts_are_idempotent(url: str) -> None:
    once = canonical_url(url)
    assert canonical_url(once) == once


@given(
    scheme=st.sampled_from(
        ["ftp", "file", "javascript", "data", "mailto", "ws", "wss", "gopher", "httpx", "hxxp"]
    ),
    p=url_parts(),
)
def test_non_http_schemes_are_refused(scheme: str, p: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as exc:
        canonical_url(build(p, scheme=scheme))
    assert exc.value.field == "locations"


@pytest.mark.parametrize(
    "url",
    [
        "",
        "example.org/post",
        "/post/1",
        "https://",
        "https:///post/1",
        "https://example.org:99999/",
        "https://example.org:port/",
        "javascript:alert(1)",
        "mailto:pat@example.org",
        "https://exa mple.org/",
        "https://example.org/a\tb",
        "https://example.org/\nx",
        "https://example.org/" + "a" * 2048,
    ],
)
def test_malformed_locations_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        canonical_url(url)
    assert exc.value.field == "locations"


def test_validate_keeps_the_draft_immutable() -> None:
    d = draft(locations=("HTTPS://HOST-A.example.org/v/1/",))
    out = validate_notice(d, ANONYMOUS)
    assert d.locations == ("HTTPS://HOST-A.example.org/v/1/",)
    assert out.locations == (URL,)
    assert dataclasses.replace(out, locations=d.locations) != out
