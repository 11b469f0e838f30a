"""Signals: the hashes and URLs that hash lists share, and the rules for comparing them.

A *signal* is a fingerprint of content that can be shared without sharing the content:
a cryptographic hash (MD5, SHA-256) matches only byte-identical files, a PDQ hash
(Meta's perceptual photo hash, 256 bits) matches images that *look* the same, a URL
matches the same address written another way.

Pure rules only (standard library): how each kind of hash is written and validated, the
Hamming distance between PDQ hashes, and the canonical form of a URL for matching.
Computing hashes from files is an adapter's job (``cleanit.adapters.signals``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from cleanit.domain import text_signals, video_signals
from cleanit.domain.errors import InvalidInput

__all__ = [
    "DIHEDRAL_NAMES",
    "MAX_URL_LENGTH",
    "PDQ_MATCH_THRESHOLD",
    "PDQ_MIN_QUALITY",
    "SIMILARITY_TYPES",
    "TRACKING_PARAMS",
    "TRACKING_PARAM_PREFIXES",
    "Hash",
    "HashResult",
    "SignalType",
    "canonical_match_url",
    "is_tracking_param",
    "min_pdq_distance",
    "normalise_hash",
    "pdq_distance",
    "signal_distance",
]


class SignalType(StrEnum):
    """Kinds of signal. The values are persisted and exchanged: never change one."""

    PDQ = "pdq"
    MD5 = "md5"
    SHA256 = "sha256"
    URL = "url"
    #: MD5 of a video file, as ThreatExchange/HMA name it (an exact signal).
    VIDEO_MD5 = "video_md5"
    #: MinHash signature of a text's word shingles (``domain.text_signals``).
    TEXT_MINHASH = "text_minhash"
    #: Meta's video hash: PDQ of sampled frames (``domain.video_signals``).
    VPDQ = "vpdq"


#: PDQ hashes of images with a quality below this are too unreliable to match on
#: (python-threatexchange's ``PdqSignal.QUALITY_THRESHOLD``).
PDQ_MIN_QUALITY = 50
#: The usual PDQ "confident match" distance (``PDQ_CONFIDENT_MATCH_THRESHOLD``).
PDQ_MATCH_THRESHOLD = 31
PDQ_BITS = 256

#: Names of the eight dihedral variants of a PDQ hash, in the order they are reported:
#: the hash of the image as it would look after each rotation or mirroring.
DIHEDRAL_NAMES = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flip_x",
    "flip_y",
    "flip_plus1",
    "flip_minus1",
)

_HEX_LENGTH = {
    SignalType.PDQ: 64,
    SignalType.MD5: 32,
    SignalType.SHA256: 64,
    SignalType.VIDEO_MD5: 32,
}
_LABEL = {
    SignalType.PDQ: "a PDQ hash",
    SignalType.MD5: "an MD5 hash",
    SignalType.SHA256: "a SHA-256 hash",
    SignalType.VIDEO_MD5: "a video MD5 hash",
}
_HEX = frozenset("0123456789abcdef")


def _signal_type(value: SignalType | str) -> SignalType:
    if isinstance(value, SignalType):
        return value
    try:
        return SignalType(str(value).strip().lower())
    except ValueError:
        known = ", ".join(t.value for t in SignalType)
        raise InvalidInput(
            f"unknown signal type {value!r}; expected one of: {known}", field="signal_type"
        ) from None


def normalise_hash(signal_type: SignalType | str, value: str, *, field: str = "hash") -> str:
    """Return ``value`` in its canonical written form, or raise InvalidInput saying why not.

    Hex hashes are trimmed and lower-cased and must have exactly the right number of
    hexadecimal digits; URLs are canonicalised with :func:`canonical_match_url`.
    """
    kind = _signal_type(signal_type)
    if not isinstance(value, str):
        raise InvalidInput(f"a hash must be text, not {type(value).__name__}", field=field)
    if kind is SignalType.URL:
        return canonical_match_url(value, field=field)
    if kind is SignalType.VPDQ:
        return video_signals.serialise_vpdq(video_signals.parse_vpdq(value, field=field))
    if kind is SignalType.TEXT_MINHASH:
        return text_signals.format_signature(
            text_signals.parse_signature(value.strip(), field=field)
        )
    text = value.strip().lower()
    label, expected = _LABEL[kind], _HEX_LENGTH[kind]
    if text.startswith("0x"):
        raise InvalidInput(f"{label} is written without a '0x' prefix", field=field)
    if not text:
        raise InvalidInput(f"{label} cannot be empty", field=field)
    for position, char in enumerate(text):
        if char not in _HEX:
            raise InvalidInput(
                f"{label} contains only hexadecimal digits (0-9, a-f); "
                f"found {char!r} at position {position + 1}",
                field=field,
            )
    if len(text) != expected:
        raise InvalidInput(
            f"{label} has exactly {expected} hexadecimal digits; got {len(text)}", field=field
        )
    return text


@dataclass(frozen=True, slots=True)
class Hash:
    """One signal value of one type, always valid and in canonical form.

    ``Hash(SignalType.MD5, "D41D8CD9...")`` stores the lower-case form; an invalid value
    raises InvalidInput (field ``hash``) naming the problem.
    """

    signal_type: SignalType
    value: str

    def __post_init__(self) -> None:
        kind = _signal_type(self.signal_type)
        object.__setattr__(self, "signal_type", kind)
        object.__setattr__(self, "value", normalise_hash(kind, self.value))

    def __str__(self) -> str:
        return f"{self.signal_type.value}:{self.value}"


@dataclass(frozen=True, slots=True)
class HashResult:
    """What hashing one piece of content produced for one signal type.

    ``hash`` is None when the signal was computed but must not be matched on (a PDQ hash
    of quality below :data:`PDQ_MIN_QUALITY`): ``quality`` and ``notes`` say why.
    ``dihedral`` holds, for PDQ, the hashes of the eight rotations/mirrors of the image
    in :data:`DIHEDRAL_NAMES` order (the first is ``hash`` itself); empty otherwise.
    """

    signal_type: SignalType
    hash: Hash | None
    quality: int | None = None
    notes: tuple[str, ...] = ()
    dihedral: tuple[Hash, ...] = ()

    @property
    def matchable(self) -> bool:
        return self.hash is not None


def _pdq_int(value: Hash | str) -> int:
    if isinstance(value, Hash):
        if value.signal_type is not SignalType.PDQ:
            raise InvalidInput(
                f"PDQ distance needs PDQ hashes, not {value.signal_type.value}", field="hash"
            )
        return int(value.value, 16)
    return int(normalise_hash(SignalType.PDQ, value), 16)


def pdq_distance(a: Hash | str, b: Hash | str) -> int:
    """Hamming distance (0..256) between two PDQ hashes: the number of differing bits."""
    return (_pdq_int(a) ^ _pdq_int(b)).bit_count()


#: Signal types matched by closeness (a distance within the bank's threshold); the others
#: match only when equal.
SIMILARITY_TYPES = frozenset({SignalType.PDQ, SignalType.TEXT_MINHASH, SignalType.VPDQ})


def signal_distance(signal_type: SignalType, a: str, b: str) -> int | None:
    """Distance from ``a`` (the content's) to ``b`` (a bank entry's) of one type, smaller is
    closer: PDQ in bits, text MinHash in percent of dissimilarity, vPDQ in percent of the
    content's frames without a near twin; exact types 0 when equal, else None."""
    if signal_type is SignalType.PDQ:
        return pdq_distance(a, b)
    if signal_type is SignalType.VPDQ:
        return video_signals.vpdq_distance(video_signals.parse_vpdq(a), video_signals.parse_vpdq(b))
    if signal_type is SignalType.TEXT_MINHASH:
        return text_signals.signature_distance(
            text_signals.parse_signature(a), text_signals.parse_signature(b)
        )
    return 0 if a == b else None


def min_pdq_distance(query: Hash | str, candidates: Iterable[Hash | str]) -> int:
    """Smallest distance from ``query`` to any of ``candidates`` (e.g. dihedral variants)."""
    q = _pdq_int(query)
    distances = [(q ^ _pdq_int(c)).bit_count() for c in candidates]
    if not distances:
        raise InvalidInput("no candidate hashes to compare with", field="hash")
    return min(distances)


# --- URLs -------------------------------------------------------------------------------

MAX_URL_LENGTH = 8192

#: Query parameters that only track where a click came from; never part of what a URL
#: points at. Compared case-insensitively.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "ttclid",
        "li_fat_id",
        "mc_cid",
        "mc_eid",
        "igshid",
        "igsh",
        "si",
        "ref",
        "ref_src",
        "ref_url",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "__hstc",
        "__hssc",
        "__hsfp",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "vero_conv",
        "wickedid",
        "rb_clickid",
        "s_cid",
        "srsltid",
    }
)
#: Every parameter starting with one of these is tracking (utm_source, utm_medium, ...).
TRACKING_PARAM_PREFIXES = ("utm_",)

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Defanged URLs as threat-intelligence lists write them: hxxps://example[.]org
_DEFANGED_SCHEME = re.compile(r"^\s*(?:hxxp|\[h\]ttp|h\[tt\]p)(s?)\[?:\]?//", re.I)
_DEFANGED_DOT = re.compile(r"\[\.\]|\(\.\)|\{\.\}")
_AUTHORITY = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)")
_PERCENT_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Characters a path may carry literally (RFC 3986 pchar and "/"); the rest are escaped.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"


def is_tracking_param(name: str) -> bool:
    """True for query parameters that only track a click (utm_*, fbclid, gclid, ...)."""
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PARAM_PREFIXES)


def _normalise_escape(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else f"%{match.group(1).upper()}"


def _normalise_path(path: str) -> str:
    path = quote(path, safe=_PATH_SAFE)  # escape spaces, non-ASCII (as UTF-8), quotes...
    path = _LONE_PERCENT.sub("%25", path)
    path = _PERCENT_ESCAPE.sub(_normalise_escape, path)
    # Remove dot segments (RFC 3986 section 5.2.4), as every browser does.
    out: list[str] = []
    for segment in path.split("/")[1:] if path.startswith("/") else path.split("/"):
        if segment == ".":
            continue
        if segment == "..":
            if out:
                out.pop()
            continue
        out.append(segment)
    path = "/" + "/".join(out)
    return path.rstrip("/") or "/"


def _query_part(text: str) -> str:
    return quote(text, safe="-._~!$'()*,;:@/?", errors="surrogateescape")


def _normalise_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True, errors="surrogateescape")
    kept = sorted((k, v) for k, v in pairs if not is_tracking_param(k))
    return "&".join(f"{_query_part(k)}={_query_part(v)}" for k, v in kept)


def _normalise_host(host: str, field: str) -> str:
    host = host.rstrip(".")
    if not host:
        raise InvalidInput("a URL needs a host name, e.g. https://example.org/", field=field)
    if host.startswith("[") or ":" in host:  # IPv6 literal: keep as is, bracketed
        return host if host.startswith("[") else f"[{host}]"
    try:
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise InvalidInput(f"not a valid host name {host!r}: {exc}", field=field) from None
    while host.startswith("www.") and "." in host[4:]:
        host = host[4:]
    return host


def canonical_match_url(url: str, *, field: str = "url") -> str:
    """Return the form in which two URLs for the same content compare equal.

    Every variant of a listed URL maps to the same string: scheme and host are
    lower-cased, internationalised hosts are written in punycode, a leading ``www.``,
    a trailing dot, user info, default ports, fragments and trailing slashes are dropped,
    percent-escapes are normalised, dot segments resolved, tracking query parameters
    (``utm_*``, ``fbclid``, ``gclid``, ``mc_cid``, ``igshid``, ``si``, ``ref`` ...; see
    :data:`TRACKING_PARAMS`) removed and the remaining parameters sorted. Defanged input
    (``hxxps://example[.]org``) is accepted. Paths keep their case: ``/A`` and ``/a``
    stay different. The scheme is kept (``http`` and ``https`` stay different).

    Raises InvalidInput for anything but an absolute http(s) URL.
    """
    if not isinstance(url, str):
        raise InvalidInput(f"a URL must be text, not {type(url).__name__}", field=field)
    text = url.strip()
    if len(text) > MAX_URL_LENGTH:
        raise InvalidInput(f"URL longer than {MAX_URL_LENGTH} characters", field=field)
    if any(c.isspace() for c in text):
        raise InvalidInput("a URL cannot contain spaces; escape them as %20", field=field)
    text = _DEFANGED_SCHEME.sub(lambda m: f"http{m.group(1).lower()}://", text)
    authority = _AUTHORITY.match(text)
    if authority:  # example[.]org -> example.org, in the host part only
        host_part = _DEFANGED_DOT.sub(".", authority.group(2))
        text = authority.group(1) + host_part + text[authority.end() :]
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"not a valid URL: {exc}", field=field) from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise InvalidInput(
            f"not an absolute http(s) URL: {url[:100]!r}; expected e.g. https://example.org/post/1",
            field=field,
        )
    host = _normalise_host(parts.hostname, field)
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    path = _normalise_path(parts.path)
    query = _normalise_query(parts.query)
    return urlunsplit((scheme, host, path, query, ""))
