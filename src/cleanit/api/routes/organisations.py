"""/api/v1/tokens, /api/v1/users, /api/v1/webhook, /api/v1/platform-actions, /api/v1/audit."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from cleanit.api.schemas import (
    ContentIn,
    ContentOut,
    LoginIn,
    PlatformActionOut,
    TokenOut,
    UserIn,
    UserOut,
    WebhookIn,
    WebhookOut,
)
from cleanit.api.security import Caller, Ctx
from cleanit.domain.errors import NotFound
from cleanit.services import audit, content, organisations, platform

router = APIRouter(tags=["organisations"])


@router.post(
    "/tokens",
    status_code=201,
    response_model=TokenOut,
    summary="Sign in: exchange e-mail and password for a personal API token",
)
def login(body: LoginIn, ctx: Ctx) -> TokenOut:
    t = organisations.login(ctx, body.email, body.password)
    return TokenOut(token=t.token, token_id=t.id, roles=t.roles)


@router.post("/organisations/{slug}/users", status_code=201, response_model=UserOut)
def create_user(slug: str, body: UserIn, ctx: Ctx, caller: Caller) -> UserOut:
    u = organisations.create_user(
        ctx,
        org_slug=slug,
        email=body.email,
        name=body.name,
        password=body.password,
        roles=body.roles,
        principal=caller,
    )
    return UserOut(id=u.id, email=u.email, name=u.name, roles=u.roles)


@router.put(
    "/webhook",
    response_model=WebhookOut,
    summary="Where cleanit tells your platform to act (hosting providers)",
)
def set_webhook(body: WebhookIn, request: Request, ctx: Ctx, caller: Caller) -> WebhookOut:
    allow = bool(request.app.state.settings.allow_private_webhook_targets)
    url, secret = organisations.set_webhook(ctx, caller, body.url, allow_private=allow)
    return WebhookOut(url=url, secret=secret)


@router.put(
    "/content",
    response_model=ContentOut,
    summary="Tell cleanit who uploaded an item you host (for statements of reasons)",
)
def register_content(body: ContentIn, ctx: Ctx, caller: Caller) -> ContentOut:
    item = content.register_content(
        ctx,
        caller,
        url=body.url,
        uploader_ref=body.uploader_ref,
        uploader_email=body.uploader_email,
    )
    return ContentOut(id=item.id, url=item.url, platform_state=item.platform_state)


@router.get("/platform-actions", response_model=list[PlatformActionOut])
def list_actions(ctx: Ctx, caller: Caller, status: str | None = None) -> list[PlatformActionOut]:
    return [_pa(p) for p in platform.list_actions(ctx, caller, status)]


@router.post(
    "/platform-actions/{action_id}/ack",
    response_model=PlatformActionOut,
    summary="The platform confirms it carried out an action",
)
def acknowledge(action_id: uuid.UUID, ctx: Ctx, caller: Caller) -> PlatformActionOut:
    return _pa(platform.acknowledge(ctx, caller, action_id))


@router.get("/audit", summary="Audit entries about your organisation")
def audit_entries(
    ctx: Ctx,
    caller: Caller,
    entity: str | None = None,
    entity_id: str | None = None,
    after_seq: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    return [
        {
            "seq": e.seq,
            "at": e.at.isoformat(),
            "actor": e.actor,
            "action": e.action,
            "entity": e.entity,
            "entity_id": e.entity_id,
            "data": e.data,
            "hash": e.hash,
        }
        for e in audit.list_entries(
            ctx, caller, entity=entity, entity_id=entity_id, limit=limit, after_seq=after_seq
        )
    ]


@router.get("/audit/verification", summary="Verify the whole hash chain")
def audit_verify(ctx: Ctx, caller: Caller) -> dict[str, Any]:
    report = audit.verify(ctx, caller)
    return {
        "ok": report.ok,
        "entries": report.entries,
        "head": {"seq": report.head[0], "hash": report.head[1]} if report.head else None,
        "problems": [asdict(p) for p in report.problems],
    }


def _pa(p: Any) -> PlatformActionOut:
    if p is None:
        raise NotFound("no such platform action")
    return PlatformActionOut(
        id=str(p.public_id),
        type=p.payload.get("type", ""),
        action=p.action,
        content_url=p.payload.get("content_url", ""),
        status=p.status,
        payload=platform.payload_of(p),
    )
