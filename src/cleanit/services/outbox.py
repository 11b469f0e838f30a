"""The outbox: messages are stored with the change that causes them and sent by a job."""

from __future__ import annotations

import logging

from sqlalchemy import insert
from sqlalchemy.orm import Session

from cleanit.adapters import jobs
from cleanit.adapters.db.models import Message, table
from cleanit.services.context import Context

log = logging.getLogger(__name__)


# Built once: messages are queued on the intake path.
_INSERT_MESSAGE = insert(table(Message)).returning(Message.id)


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
) -> int:
    """Store a message and defer its delivery job, both in the caller's transaction."""
    message_id = (
        s.connection()
        .execute(
            _INSERT_MESSAGE,
            {
                "kind": kind,
                "recipient": recipient,
                "subject": subject[:300],
                "body": body,
                "related_entity": related[0] if related else None,
                "related_id": str(related[1]) if related else None,
                "status": "pending",
                "attempts": 0,
            },
        )
        .scalar_one()
    )
    jobs.defer(s, jobs.DELIVER_MESSAGE, {"message_id": message_id})
    return int(message_id)


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
