"""Telling the hosting platform to act, through signed webhooks.

No action is done until the platform acknowledged it: a 200/201/204 answer acknowledges at
once; a 202 means "accepted, will confirm" and the platform later calls the acknowledgement
endpoint.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cleanit.adapters import jobs
from cleanit.adapters.db.models import ContentItem, Decision, Organisation, PlatformAction
from cleanit.adapters.webhooks import UnsafeTarget
from cleanit.domain.errors import Conflict, NotFound
from cleanit.domain.roles import Permission, Principal
from cleanit.services import audit, order_followups
from cleanit.services.authz import require, require_member
from cleanit.services.context import Context

log = logging.getLogger(__name__)


class WebhookFailed(Exception):
    """Raised inside the job so procrastinate retries it with back-off."""


def queue_platform_action(
    s: Session,
    ctx: Context,
    *,
    decision: Decision,
    item: ContentItem,
    kind: str,
    action: str,
) -> PlatformAction:
    pa = PlatformAction(
        public_id=uuid.uuid4(),
        decision_id=decision.id,
        provider_id=decision.provider_id,
        content_item_id=item.id,
        kind=kind,
        action=action,
        payload={},
        status="pending",
    )
    s.add(pa)
    s.flush()
    pa.payload = {
        "id": str(pa.public_id),
        "type": f"content.{kind}",
        "action": action,
        "content_url": item.url,
        "territorial_scope": decision.territorial_scope,
        "decision_id": decision.id,
        "case_id": decision.case_id,
        "acknowledge_url": f"{ctx.base_url}/api/v1/platform-actions/{pa.public_id}/ack",
    }
    jobs.defer(s, jobs.SEND_PLATFORM_ACTION, {"platform_action_id": pa.id})
    return pa


def _acknowledge(s: Session, ctx: Context, pa: PlatformAction, actor: Principal | str) -> None:
    pa.status = "acknowledged"
    pa.acknowledged_at = ctx.now()
    item = s.get(ContentItem, pa.content_item_id)
    assert item is not None
    item.platform_state = pa.action if pa.kind == "restrict" else "available"
    audit.record(
        s,
        actor,
        "platform_action.acknowledged",
        "platform_action",
        pa.id,
        {"kind": pa.kind, "action": pa.action, "decision_id": pa.decision_id},
        organisation_id=pa.provider_id,
        at=ctx.now(),
    )
    # A removal order is executed when the platform confirms (its Annex II goes out then).
    order_followups.platform_confirmed(s, ctx, pa, actor)


def send_platform_action(ctx: Context, platform_action_id: int) -> str:
    """Deliver one action to the platform; raises WebhookFailed to be retried."""
    with ctx.transaction() as s:
        pa = s.get(PlatformAction, platform_action_id, with_for_update=True)
        if pa is None:
            return "missing"
        if pa.status in {"delivered", "acknowledged"}:
            return pa.status
        org = s.get(Organisation, pa.provider_id)
        assert org is not None
        if not org.webhook_url or not org.webhook_secret:
            # Nothing to call: the platform must poll and acknowledge. Not an error.
            pa.status = "awaiting_platform"
            return pa.status
        pa.attempts += 1
        body = json.dumps(pa.payload, sort_keys=True).encode()
        try:
            result = ctx.webhooks.send(org.webhook_url, org.webhook_secret, body)
        except UnsafeTarget as exc:
            pa.status, pa.last_error = "failed", str(exc)
            return pa.status  # configuration problem: retrying cannot help
        except Exception as exc:
            pa.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            s.commit()
            raise WebhookFailed(pa.last_error) from exc
        if result.status_code in (200, 201, 204):
            pa.delivered_at = ctx.now()
            _acknowledge(s, ctx, pa, f"platform:{org.slug}")
            return pa.status
        if result.status_code == 202:
            pa.status, pa.delivered_at = "delivered", ctx.now()
            return pa.status
        pa.last_error = f"HTTP {result.status_code}: {result.body[:500]}"
        s.commit()
        raise WebhookFailed(pa.last_error)


def acknowledge(ctx: Context, principal: Principal, public_id: uuid.UUID) -> PlatformAction:
    """The platform confirms it carried out the action (after a 202, or when polling)."""
    require(principal, Permission.CONFIRM_PLATFORM_ACTION)
    with ctx.transaction() as s:
        pa = s.scalar(
            select(PlatformAction).where(PlatformAction.public_id == public_id).with_for_update()
        )
        if pa is None:
            raise NotFound("no such platform action")
        require_member(principal, pa.provider_id)
        if pa.status == "acknowledged":
            return pa
        if pa.status == "failed":
            raise Conflict("this action failed; a new one will be issued")
        _acknowledge(s, ctx, pa, principal)
        return pa


def list_actions(
    ctx: Context, principal: Principal, status: str | None = None, limit: int = 100
) -> list[PlatformAction]:
    require(principal, Permission.READ_CASES)
    with ctx.sessions() as s:
        q = select(PlatformAction).where(PlatformAction.provider_id == principal.organisation_id)
        if status:
            q = q.where(PlatformAction.status == status)
        return list(s.scalars(q.order_by(PlatformAction.id.desc()).limit(limit)))


def payload_of(pa: PlatformAction) -> dict[str, Any]:
    return dict(pa.payload) | {"status": pa.status}
