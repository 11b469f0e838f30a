"""How bank entries are written in STIX 2.1: patterns and stable identifiers (pure rules).

Each signal becomes a STIX pattern over one observable property:

==========  ======================================
md5         ``[file:hashes.MD5 = '<hex>']``
sha256      ``[file:hashes.'SHA-256' = '<hex>']``
pdq         ``[file:hashes.PDQ = '<hex>']`` (custom hash name, as ThreatExchange-style
            exports carry PDQ; STIX has no registered name for it)
video_md5   ``[file:hashes.MD5 = '<hex>']`` (an MD5 of the video file)
url         ``[url:value = '<canonical url>']``
==========  ======================================

String literals are quoted with ``'``; a quote or backslash inside is escaped with a
backslash, so ``https://example.org/it's`` cannot end the literal early.

Identifiers are UUIDv5 values under :data:`NAMESPACE`, so exporting the same bank twice
gives the same ids (consumers update objects instead of duplicating them).
"""

from __future__ import annotations

import uuid

from cleanit.domain.signals import SignalType

__all__ = [
    "NAMESPACE",
    "PATTERN_PROPERTY",
    "collection_uuid",
    "escape_literal",
    "identity_id",
    "indicator_id",
    "pattern",
]

#: The namespace of every identifier cleanit writes into STIX/TAXII. Never change it.
NAMESPACE = uuid.UUID("6f1c3a52-0d4e-5b8a-9c2e-7a1b0c9d8e4f")

#: The object path each signal type is compared on.
PATTERN_PROPERTY: dict[SignalType, str] = {
    SignalType.MD5: "file:hashes.MD5",
    SignalType.SHA256: "file:hashes.'SHA-256'",
    SignalType.PDQ: "file:hashes.PDQ",
    SignalType.VIDEO_MD5: "file:hashes.MD5",
    SignalType.URL: "url:value",
}


def escape_literal(value: str) -> str:
    """``value`` as the inside of a STIX pattern string literal (``\\`` and ``'`` escaped)."""
    return value.replace("\\", "\\\\").replace("'", "\\'")


def pattern(signal_type: SignalType | str, value: str) -> str:
    """The STIX pattern matching ``value`` (already in canonical form) of ``signal_type``."""
    kind = SignalType(signal_type)
    return f"[{PATTERN_PROPERTY[kind]} = '{escape_literal(value)}']"


def indicator_id(bank_id: int, signal_type: SignalType | str, value: str) -> str:
    """The indicator's id: the same bank, signal type and value always give the same id."""
    kind = SignalType(signal_type)
    return f"indicator--{uuid.uuid5(NAMESPACE, f'bank:{bank_id}:{kind.value}:{value}')}"


def identity_id(organisation_id: int) -> str:
    """The id of the ``identity`` object standing for an organisation."""
    return f"identity--{uuid.uuid5(NAMESPACE, f'organisation:{organisation_id}')}"


def collection_uuid(bank_id: int) -> str:
    """The TAXII collection id of a bank."""
    return str(uuid.uuid5(NAMESPACE, f"collection:bank:{bank_id}"))
