"""What happens to a removal order when other services act on its content, and the order
records they share with ``services/orders.py``.

- The platform confirmed a restriction (``services/platform.py``): once every URL of the order
  is confirmed the order is *executed at that moment* — the time of execution is the
  platform's confirmation, not a reviewer's click — and the Annex II confirmation goes to
  the issuing authority.
- A complaint was decided (``services/complaints.py``): content a reversed complaint
  reinstated is recorded on the order (TCO Art 10), and the order is reinstated once all of
  its content is.

This module imports no other use-case module, so the platform and complaint services can call
it without an import cycle.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cleanit.adapters.db.models import (
    Complaint,
    Decision,
    Organisation,
    PlatformAction,
    RemovalOrder,
    RemovalOrderClockEvent,
    RemovalOrderItem,
    RemovalOrderReply,
)
from cleanit.domain.decisions import RESTRICTIVE_ACTIONS, Action
from cleanit.domain.order_replies import (
    Confirmation,
    ExecutionAction,
    OrderParties,
    build_confirmation,
    render_confirmation,
)
from cleanit.domain.orders import (
    MEMBER_STATE_TIMEZONES,
    ClockEvent,
    ClockEventKind,
    OrderClock,
    OrderEvent,
    OrderState,
    next_order_state,
)
from cleanit.domain.roles import Principal
from cleanit.services import audit
from cleanit.services.context import Context
from cleanit.services.outbox import queue_message

ENTITY = "removal_order"  # audit entity
ANNEX_II = "II"
ANNEX_III = "III"
# The ladder's words for what Annex II confirms.
EXECUTION_ACTIONS: dict[Action, ExecutionAction] = {
    Action.DISABLE_ACCESS: ExecutionAction.DISABLED,
    Action.REMOVE: ExecutionAction.REMOVED,
}


def clock_of(s: Session, order: RemovalOrder) -> OrderClock:
    """The order's clock from its stored history."""
    rows = s.execute(
        select(RemovalOrderClockEvent.kind, RemovalOrderClockEvent.at)
        .where(RemovalOrderClockEvent.order_id == order.id)
        .order_by(RemovalOrderClockEvent.id)
    ).all()
    return OrderClock(tuple(ClockEvent(ClockEventKind(kind), at) for kind, at in rows))


def add_clock_event(
    s: Session,
    order: RemovalOrder,
    kind: ClockEventKind,
    at: datetime,
    actor: str,
    note: str | None = None,
) -> OrderClock:
    """Append to the clock; the domain refuses a history the life cycle cannot produce."""
    clock = (
        OrderClock.start(at)
        if kind is ClockEventKind.RECEIVED
        else clock_of(s, order).then(kind, at)
    )
    s.add(RemovalOrderClockEvent(order_id=order.id, kind=kind.value, at=at, actor=actor, note=note))
    return clock


def first_overrun(clock: OrderClock, now: datetime) -> datetime | None:
    """The deadline of the first stretch of the hour that ran out, if any."""
    return next((p.deadline for p in clock.periods if p.overran(now)), None)


def order_link(ctx: Context, order: RemovalOrder) -> str:
    """Where either side reads the order in the API."""
    return f"{ctx.base_url}/api/v1/removal-orders/{order.public_id}"


def parties(s: Session, ctx: Context, order: RemovalOrder) -> OrderParties:
    provider = s.get(Organisation, order.provider_id)
    assert provider is not None
    return OrderParties(
        order_reference=order.reference,
        issuing_authority=order.issuing_authority,
        issuing_member_state=order.issuing_member_state,
        provider_name=provider.name,
        provider_contact_point=provider.contact_email or order_link(ctx, order),
        timezone=MEMBER_STATE_TIMEZONES.get(order.issuing_member_state, "UTC"),
    )


def authority_recipients(s: Session, order: RemovalOrder) -> list[str]:
    """The order's own contact (Annex I) first, then the authority organisation's."""
    org = s.get(Organisation, order.authority_id)
    found = [order.contact_email, org.contact_email if org else None]
    return list(dict.fromkeys(e for e in found if e))


def send_reply(
    s: Session,
    ctx: Context,
    order: RemovalOrder,
    *,
    annex: str,
    body: dict[str, Any],
    text: str,
    subject: str,
) -> RemovalOrderReply:
    """Store an Annex II/III answer and queue it to the issuing authority."""
    reply = RemovalOrderReply(
        public_id=uuid.uuid4(),
        order_id=order.id,
        annex=annex,
        body=body,
        text=text,
        created_at=ctx.now(),
    )
    s.add(reply)
    s.flush()
    for recipient in authority_recipients(s, order):
        queue_message(
            s,
            kind=f"removal_order.annex_{annex.lower()}",
            recipient=recipient,
            subject=subject,
            body=text,
            related=("removal_order_reply", reply.public_id),
        )
    return reply


def platform_confirmed(
    s: Session, ctx: Context, pa: PlatformAction, actor: Principal | str
) -> None:
    """Called in the transaction that records the platform's acknowledgement."""
    if pa.kind != "restrict":
        return
    item = s.scalar(
        select(RemovalOrderItem)
        .where(RemovalOrderItem.decision_id == pa.decision_id)
        .with_for_update()
    )
    if item is None:
        return
    now = ctx.now()
    item.confirmed_at = now
    # Locked before counting: two confirmations of one order's URLs arrive one after the
    # other here, and the second sees the first.
    order = s.get(RemovalOrder, item.order_id, with_for_update=True)
    assert order is not None
    if OrderState(order.state) is not OrderState.RECEIVED or order.executed_at is not None:
        return  # annulled or withdrawn meanwhile: the confirmation stays on the item
    unconfirmed = s.scalar(
        select(func.count())
        .select_from(RemovalOrderItem)
        .where(RemovalOrderItem.order_id == order.id, RemovalOrderItem.confirmed_at.is_(None))
    )
    if unconfirmed:
        return
    label = actor if isinstance(actor, str) else audit.actor_label(actor)
    clock = add_clock_event(s, order, ClockEventKind.EXECUTED, now, label)
    order.state = next_order_state(OrderState.RECEIVED, OrderEvent.CONFIRM_EXECUTION).value
    order.executed_at = now
    order.executed_in_time = bool(clock.met)
    order.deadline_at = None
    order.updated_at = now
    if order.missed_at is None:
        order.missed_at = first_overrun(clock, now)
    action = Action(order.execution_action or Action.DISABLE_ACCESS.value)
    urls = s.scalars(
        select(RemovalOrderItem.url)
        .where(RemovalOrderItem.order_id == order.id)
        .order_by(RemovalOrderItem.url)
    ).all()
    body = build_confirmation(
        Confirmation(parties(s, ctx, order), tuple(urls), EXECUTION_ACTIONS[action], now)
    )
    reply = send_reply(
        s,
        ctx,
        order,
        annex=ANNEX_II,
        body=body,
        text=render_confirmation(body),
        subject=f"Annex II: removal order {order.reference} executed",
    )
    audit.record(
        s,
        label,
        "removal_order.executed",
        ENTITY,
        order.public_id,
        {
            "executed_at": now.isoformat(),
            "in_time": order.executed_in_time,
            "automated": order.automated,
            "annex_ii": str(reply.public_id),
        },
        organisation_id=order.provider_id,
        at=now,
    )


def mark_reinstated(
    s: Session, ctx: Context, item: RemovalOrderItem, after: str, actor: Principal | str
) -> RemovalOrder:
    """Record that the item's content is back; the order is reinstated when all of it is."""
    now = ctx.now()
    item.reinstated_at, item.reinstated_after = now, after
    order = s.get(RemovalOrder, item.order_id, with_for_update=True)
    assert order is not None
    remaining = s.scalar(
        select(func.count())
        .select_from(RemovalOrderItem)
        .where(RemovalOrderItem.order_id == order.id, RemovalOrderItem.reinstated_at.is_(None))
    )
    if not remaining and OrderState(order.state) is OrderState.EXECUTED:
        order.state = next_order_state(OrderState.EXECUTED, OrderEvent.REINSTATE).value
        order.updated_at = now
    audit.record(
        s,
        actor,
        "removal_order.reinstated",
        ENTITY,
        order.public_id,
        {"url": item.url, "after": after, "order_state": order.state},
        organisation_id=order.provider_id,
        at=now,
    )
    return order


def complaint_decided(s: Session, ctx: Context, complaint: Complaint, actor: Principal) -> None:
    """Called when a complaint is decided: a reversal of an order's decision reinstated its
    content (Art 10), which the order records."""
    if complaint.new_decision_id is None:
        return
    new = s.get(Decision, complaint.new_decision_id)
    if new is None or Action(new.action) in RESTRICTIVE_ACTIONS:
        return
    item = s.scalar(
        select(RemovalOrderItem)
        .where(RemovalOrderItem.decision_id == complaint.decision_id)
        .with_for_update()
    )
    if item is not None and item.reinstated_at is None:
        mark_reinstated(s, ctx, item, "complaint", actor)
