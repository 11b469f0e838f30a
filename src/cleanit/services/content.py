"""Content items: the platform tells cleanit what it hosts and who uploaded it, so that the
statement of reasons reaches the content provider."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from cleanit.adapters.db.models import ContentItem
from cleanit.domain.errors import InvalidInput
from cleanit.domain.notices import canonical_url
from cleanit.domain.roles import Permission, Principal
from cleanit.services import audit
from cleanit.services.authz import require
from cleanit.services.context import Context


def register_content(
    ctx: Context,
    principal: Principal,
    *,
    url: str,
    uploader_ref: str | None,
    uploader_email: str | None,
) -> ContentItem:
    require(principal, Permission.CONFIRM_PLATFORM_ACTION)
    canonical = canonical_url(url)
    if uploader_email is not None and "@" not in uploader_email:
        raise InvalidInput("not a valid e-mail address", field="uploader_email")
    assert principal.organisation_id is not None
    with ctx.transaction() as s:
        s.execute(
            insert(ContentItem)
            .values(provider_id=principal.organisation_id, url=url, canonical_url=canonical)
            .on_conflict_do_nothing(index_elements=["provider_id", "canonical_url"])
        )
        item = s.scalar(
            select(ContentItem)
            .where(
                ContentItem.provider_id == principal.organisation_id,
                ContentItem.canonical_url == canonical,
            )
            .with_for_update()
        )
        assert item is not None
        item.uploader_ref = uploader_ref
        item.uploader_email = uploader_email
        audit.record(
            s, principal, "content.registered", "content", item.id, {"url": canonical}, at=ctx.now()
        )
        return item
