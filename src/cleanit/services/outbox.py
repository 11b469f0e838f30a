"""The outbox: messages are stored with the change that causes them and sent by a job."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from cleanit.adapters import jobs
from cleanit.adapters.db.models import Message
from cleanit.services.context import Context

log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """Raised inside the job so procrastinate retries it with back-off."""


def queue_message(
    s: Session,
    *,
    kind: str,
    recipient: str,
    subject: str,
    body: str,
    related: tuple[str, object] | None = None,
) -> Message:
    msg = Message(
        kind=kind,
        recipient=recipient,
        subject=subject[:300],
        body=body,
        related_entity=related[0] if related else None,
        related_id=str(related[1]) if related else None,
        status="pending",
    )
    s.add(msg)
    s.flush()
    jobs.defer(s, jobs.DELIVER_MESSAGE, {"message_id": msg.id})
    return msg


def deliver_message(ctx: Context, message_id: int) -> str:
    """Send one message. Idempotent: a sent message is never sent twice by a retried job."""
    with ctx.transaction() as s:
        msg = s.get(Message, message_id, with_for_update=True)
        if msg is None:
            return "missing"
        if msg.status == "sent":
            return "already-sent"
        msg.attempts += 1
        try:
            ctx.mailer.send(
                message_id=msg.id,
                sender=ctx.mail_from,
                recipient=msg.recipient,
                subject=msg.subject,
                body=msg.body,
            )
        except Exception as exc:
            msg.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            log.warning("message %s not delivered: %s", message_id, msg.last_error)
            # Commit the attempt count, then let the job fail so it is retried.
            s.commit()
            raise DeliveryFailed(msg.last_error) from exc
        msg.status = "sent"
        msg.sent_at = ctx.now()
        return "sent"
