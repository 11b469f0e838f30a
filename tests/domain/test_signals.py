"""Signals: persisted signal-type names, hash validation and normalisation, PDQ Hamming
distance, and the canonical URL under which variants of a listed URL match."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cleanit.domain.errors import InvalidInput
from cleanit.domain.signals import (
    MAX_URL_LENGTH,
    Hash,
    HashResult,
    SignalType,
    canonical_match_url,
    is_tracking_param,
    min_pdq_distance,
    normalise_hash,
    pdq_distance,
)

PDQ_A = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


# --- signal types and hashes ------------------------------------------------------------


def test_signal_type_values_are_the_persisted_names() -> None:
    assert {t.name: t.value for t in SignalType} == {
        "PDQ": "pdq",
        "MD5": "md5",
        "SHA256": "sha256",
        "URL": "url",
        "VIDEO_MD5": "video_md5",
        "TEXT_MINHASH": "text_minhash",
        "VPDQ": "vpdq",
    }


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (SignalType.PDQ, PDQ_A),
        (SignalType.MD5, MD5),
        (SignalType.SHA256, SHA256),
        (SignalType.VIDEO_MD5, MD5),
    ],
)
def test_hashes_are_normalised_to_trimmed_lower_case(kind: SignalType, value: str) -> None:
    written = f"  {value.upper()}\n"
    assert Hash(kind, written).value == value
    assert Hash(kind, written) == Hash(kind, value)
    assert normalise_hash(kind.value, written) == value
    assert str(Hash(kind, value)) == f"{kind.value}:{value}"


def test_signal_type_may_be_given_by_name_and_is_stored_as_the_enum() -> None:
    h = Hash("PDQ", PDQ_A)  # type: ignore[arg-type]
    assert h.signal_type is SignalType.PDQ


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        (SignalType.PDQ, PDQ_A[:-1], "a PDQ hash has exactly 64 hexadecimal digits; got 63"),
        (SignalType.PDQ, PDQ_A + "0", "a PDQ hash has exactly 64 hexadecimal digits; got 65"),
        (SignalType.MD5, SHA256, "an MD5 hash has exactly 32 hexadecimal digits; got 64"),
        (SignalType.SHA256, MD5, "a SHA-256 hash has exactly 64 hexadecimal digits; got 32"),
        (SignalType.PDQ, "g" + PDQ_A[1:], "found 'g' at position 1"),
        (SignalType.MD5, MD5[:10] + "-" + MD5[11:], "found '-' at position 11"),
        (SignalType.SHA256, SHA256[:5] + " " + SHA256[6:], "found ' ' at position 6"),
        (SignalType.PDQ, "0x" + PDQ_A[2:], "without a '0x' prefix"),
        (SignalType.MD5, "   ", "an MD5 hash cannot be empty"),
    ],
)
def test_invalid_hashes_are_refused_naming_the_problem(
    kind: SignalType, value: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        Hash(kind, value)
    assert message in err.value.detail
    assert err.value.field == "hash"
    assert err.value.status == 422


def test_unknown_signal_type_is_refused_listing_the_known_ones() -> None:
    with pytest.raises(InvalidInput) as err:
        Hash("sha1", "a" * 40)  # type: ignore[arg-type]
    assert err.value.field == "signal_type"
    assert "unknown signal type 'sha1'" in err.value.detail
    assert "pdq, md5, sha256, url, video_md5" in err.value.detail


def test_a_url_signal_holds_the_canonical_url() -> None:
    h = Hash(SignalType.URL, "HTTPS://www.Example.org:443/a/?utm_source=x#top")
    assert h.value == "https://example.org/a"
    with pytest.raises(InvalidInput) as err:
        Hash(SignalType.URL, "not a url")
    assert err.value.field == "hash"


def test_hash_result_without_hash_is_not_matchable() -> None:
    low = HashResult(SignalType.PDQ, None, quality=12, notes=("low quality",))
    assert not low.matchable
    assert HashResult(SignalType.MD5, Hash(SignalType.MD5, MD5)).matchable


# --- PDQ distance -----------------------------------------------------------------------

pdq_ints = st.integers(min_value=0, max_value=2**256 - 1)


def hex64(n: int) -> str:
    return f"{n:064x}"


def test_pdq_distance_counts_differing_bits() -> None:
    zero, ones = "0" * 64, "f" * 64
    assert pdq_distance(zero, ones) == 256
    assert pdq_distance(PDQ_A, PDQ_A) == 0
    assert pdq_distance(zero, "0" * 63 + "1") == 1
    assert pdq_distance(zero, "8" + "0" * 63) == 1  # the most significant bit counts too
    assert pdq_distance(Hash(SignalType.PDQ, PDQ_A), PDQ_A.upper()) == 0


@given(pdq_ints, pdq_ints, pdq_ints)
def test_pdq_distance_is_the_hamming_metric(a: int, b: int, c: int) -> None:
    x, y, z = hex64(a), hex64(b), hex64(c)
    naive = sum(p != q for p, q in zip(f"{a:0256b}", f"{b:0256b}", strict=True))
    assert pdq_distance(x, y) == naive == pdq_distance(y, x)
    assert pdq_distance(x, z) <= pdq_distance(x, y) + pdq_distance(y, z)


def test_min_pdq_distance_takes_the_closest_candidate() -> None:
    zero = "0" * 64
    candidates = ["f" * 64, "0" * 62 + "03", "0" * 60 + "ffff"]
    assert min_pdq_distance(zero, candidates) == 2
    with pytest.raises(InvalidInput):
        min_pdq_distance(zero, [])


def test_pdq_distance_refuses_other_signal_types_and_bad_hex() -> None:
    with pytest.raises(InvalidInput, match="PDQ distance needs PDQ hashes, not sha256"):
        pdq_distance(Hash(SignalType.SHA256, SHA256), PDQ_A)
    with pytest.raises(InvalidInput, match="64 hexadecimal digits"):
        pdq_distance(MD5, PDQ_A)


# --- canonical URLs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "canonical"),
    [
        ("https://example.org/post/1", "https://example.org/post/1"),
        ("HTTPS://EXAMPLE.ORG/post/1", "https://example.org/post/1"),
        ("https://www.example.org/post/1/", "https://example.org/post/1"),
        ("https://example.org:443/post/1#comments", "https://example.org/post/1"),
        ("http://example.org:80/post/1", "http://example.org/post/1"),
        ("http://example.org:8080/post/1", "http://example.org:8080/post/1"),
        ("https://example.org", "https://example.org/"),
        ("https://example.org/?", "https://example.org/"),
        ("https://user:secret@example.org./post/1", "https://example.org/post/1"),
        ("https://example.org/a/./b/../post/1", "https://example.org/a/post/1"),
        ("https://example.org/%7euser/%2f", "https://example.org/~user/%2F"),
        ("https://example.org/a%zz", "https://example.org/a%25zz"),
        ("https://example.org/caf\u00e9", "https://example.org/caf%C3%A9"),
        ("https://b\u00fccher.example/x", "https://xn--bcher-kva.example/x"),
        ("https://[2001:DB8::1]:443/x", "https://[2001:db8::1]/x"),
        (
            "https://example.org/v?b=2&a=1&utm_source=news&UTM_Medium=mail",
            "https://example.org/v?a=1&b=2",
        ),
        (
            "https://example.org/v?fbclid=X&gclid=Y&mc_cid=1&mc_eid=2&igshid=3&si=4&ref=5&id=7",
            "https://example.org/v?id=7",
        ),
        ("https://example.org/v?q=a+b&r=a%20b", "https://example.org/v?q=a%20b&r=a%20b"),
        ("https://example.org/v?flag", "https://example.org/v?flag="),
        ("hxxps://example[.]org/post/1", "https://example.org/post/1"),
        ("[h]ttps://www(.)example(.)org/post/1", "https://example.org/post/1"),
        ("https://www.org/x", "https://www.org/x"),  # "www." is stripped only before a domain
        ("https://www.www.example.org/x", "https://example.org/x"),
    ],
)
def test_canonical_url_examples(variant: str, canonical: str) -> None:
    assert canonical_match_url(variant) == canonical
    assert canonical_match_url(canonical) == canonical


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://example.org/Post/1", "https://example.org/post/1"),  # paths keep their case
        ("http://example.org/post/1", "https://example.org/post/1"),  # schemes stay apart
        ("https://example.org/post/1", "https://example.org/post/1?id=2"),
        ("https://example.org/post/1?id=1", "https://example.org/post/1?id=2"),
        ("https://example.org/post/1", "https://example.org:8443/post/1"),
        ("https://example.org/a%2Fb", "https://example.org/a/b"),  # an escaped slash is data
        ("https://example.org/post/1", "https://other.example.org/post/1"),
        ("https://example.org/v?reference=1", "https://example.org/v"),  # not a tracking name
    ],
)
def test_different_content_keeps_different_canonical_urls(a: str, b: str) -> None:
    assert canonical_match_url(a) != canonical_match_url(b)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.org/file", "not an absolute http(s) URL"),
        ("/relative/path", "not an absolute http(s) URL"),
        ("example.org/post/1", "not an absolute http(s) URL"),
        ("https:///nohost", "not an absolute http(s) URL"),
        ("https://example.org/a b", "cannot contain spaces"),
        ("https://example.org:99999/", "Port out of range"),
        ("https://exa..mple.org/", "not a valid host name"),
        ("https://example.org/" + "a" * MAX_URL_LENGTH, "longer than"),
    ],
)
def test_invalid_urls_are_refused_naming_the_problem(url: str, message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        canonical_match_url(url)
    assert message in err.value.detail
    assert err.value.field == "url"


def test_tracking_parameter_names() -> None:
    for name in ("utm_source", "UTM_CAMPAIGN", "utm_anything", "fbclid", "gclid", "si", "ref"):
        assert is_tracking_param(name), name
    for name in ("id", "page", "q", "reference", "v", "list", "utm"):
        assert not is_tracking_param(name), name


_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
labels = st.text(alphabet=_ALNUM, min_size=1, max_size=8).filter(lambda s: s != "www")
hosts = st.lists(labels, min_size=1, max_size=3).map(lambda ls: ".".join([*ls, "example"]))
segments = st.text(alphabet=_ALNUM + "ABCXYZ-_~", min_size=1, max_size=8)
paths = st.lists(segments, max_size=4)
params = st.lists(
    st.tuples(
        st.text(alphabet="abcdefghij", min_size=1, max_size=5).map(lambda k: "k" + k),
        st.text(alphabet=_ALNUM + "ABC", max_size=6),
    ),
    max_size=4,
)
TRACKERS = ["utm_source", "UTM_Medium", "utm_campaign", "fbclid", "gclid", "mc_cid", "igshid"]
TRACKERS += ["si", "ref", "MC_EID"]


def render(scheme: str, host: str, path: list[str], query: list[tuple[str, str]]) -> str:
    url = f"{scheme}://{host}/" + "/".join(path)
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")


def random_case(draw: st.DrawFn, text: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.upper() if f else c for c, f in zip(text, flips, strict=True))


@st.composite
def url_and_variant(draw: st.DrawFn) -> tuple[str, str, str]:
    """A plain URL, the canonical form expected for it, and a variant written another way."""
    scheme = draw(st.sampled_from(["http", "https"]))
    host, path, query = draw(hosts), draw(paths), draw(params)
    plain = render(scheme, host, path, query)
    expected = f"{scheme}://{host}/" + "/".join(path)
    if query:
        expected += "?" + "&".join(f"{k}={v}" for k, v in sorted(query))

    v_host = random_case(draw, ("www." if draw(st.booleans()) else "") + host)
    if draw(st.booleans()):
        v_host += ":" + ("443" if scheme == "https" else "80")
    v_path = "/".join(path) + ("/" if draw(st.booleans()) else "")
    trackers = draw(st.lists(st.tuples(st.sampled_from(TRACKERS), segments), max_size=3))
    v_query = draw(st.permutations([*query, *trackers]))
    variant = f"{random_case(draw, scheme)}://{v_host}/{v_path}"
    if v_query:
        variant += "?" + "&".join(f"{k}={v}" for k, v in v_query)
    if draw(st.booleans()):
        variant += "#" + draw(segments)
    return plain, expected, variant


@given(url_and_variant())
def test_every_variant_of_a_url_canonicalises_to_the_same_string(
    case: tuple[str, str, str],
) -> None:
    plain, expected, variant = case
    assert canonical_match_url(plain) == expected
    assert canonical_match_url(variant) == expected
    assert canonical_match_url(expected) == expected  # idempotent


@given(hosts, paths, paths, params)
def test_different_paths_stay_different(
    host: str, a: list[str], b: list[str], query: list[tuple[str, str]]
) -> None:
    ua, ub = render("https", host, a, query), render("https", host, b, query)
    assert (canonical_match_url(ua) == canonical_match_url(ub)) == (a == b)


URL_PIECES = ["\u00e9", "\u4e2d", "%2F", "%zz", "www.", ":443", "https://", "http://"]
URL_PIECES += ["[::1]", "[.]", "hxxp", "\t", " ", *"abcXYZ019:/?#[]@!$&'()*+,;=%-._~"]
url_pieces = st.sampled_from(URL_PIECES)
url_like = st.lists(url_pieces, max_size=25).map("".join)


@given(
    st.one_of(
        st.text(max_size=40),
        url_like,
        url_like.map(lambda s: "https://" + s),
        url_like.map(lambda s: "http://example.org/" + s),
    )
)
def test_any_text_either_canonicalises_idempotently_or_is_refused(text: str) -> None:
    try:
        canonical = canonical_match_url(text)
    except InvalidInput:
        return
    assert canonical.startswith(("http://", "https://"))
    assert canonical_match_url(canonical) == canonical
