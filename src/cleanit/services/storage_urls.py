"""Storage URLs: content a hosting platform asks us to fetch from its own storage.

A platform may only point us at its own hosts — the ``domains`` registered for its
organisation (a subdomain counts) — so the matching service cannot be used to make us fetch
somebody else's content, and the fetcher's SSRF guard keeps private addresses out.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from cleanit.adapters.db.models import Organisation
from cleanit.adapters.fetch import FetchedContent, StorageUrlRefused, shown
from cleanit.domain.orders import hosted_by
from cleanit.domain.roles import Principal
from cleanit.services.context import Context

MAX_URL = 8192
HOW_TO_REGISTER = (
    "an organisation admin registers the hosts your content is served from with "
    "'cleanit orgs domains <slug> <host>...'"
)


def organisation_domains(s: Session, organisation_id: int | None) -> list[str]:
    if organisation_id is None:
        return []
    found = s.scalar(select(Organisation.domains).where(Organisation.id == organisation_id))
    return list(found or [])


def storage_url_problem(url: object, domains: Sequence[str]) -> str | None:
    """Why ``url`` may not be fetched for an organisation with ``domains`` (None: it may)."""
    if not isinstance(url, str) or not url.strip():
        return "give the URL of the object in your storage"
    if len(url) > MAX_URL:
        return f"the storage URL is longer than {MAX_URL} characters"
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "the storage URL cannot be parsed"
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        return f"the storage URL must be an absolute http(s) URL, not {shown(url)!r}"
    if not domains:
        return (
            "your organisation has no registered domains, so no storage URL can be "
            f"accepted: {HOW_TO_REGISTER}"
        )
    if not hosted_by(url.strip(), domains):
        return (
            f"{parts.hostname} is not one of your organisation's domains "
            f"({', '.join(sorted(domains))}); only your own storage can be fetched"
        )
    return None


def fetch_storage_object(
    ctx: Context, principal: Principal, url: str, *, max_bytes: int
) -> FetchedContent:
    """Fetch ``url`` from the principal's organisation's own storage, within ``max_bytes``.

    Raises StorageUrlRefused (422) for a URL not on the organisation's domains, FetchFailed
    (502) and FetchedContentTooLarge (422) from the fetcher.
    """
    with ctx.sessions() as s:
        domains = organisation_domains(s, principal.organisation_id)
    problem = storage_url_problem(url, domains)
    if problem is not None:
        raise StorageUrlRefused(problem)
    return ctx.fetcher.fetch(url.strip(), max_bytes=max_bytes)
