"""Sending e-mail: SMTP when configured, otherwise a local mailbox directory.

Both implement ``Mailer``; the local one lets a newcomer read every message cleanit sent, as
``.eml`` files under ``var/mailbox/``.
"""

from __future__ import annotations

import re
import smtplib
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol


class Mailer(Protocol):
    def send(
        self, *, message_id: int, sender: str, recipient: str, subject: str, body: str
    ) -> None: ...


def _build(sender: str, recipient: str, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = subject
    msg.set_content(body)
    return msg


class MailboxMailer:
    """Writes each message to ``<dir>/<recipient>/<id>.eml`` (idempotent per message id)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(
        self, *, message_id: int, sender: str, recipient: str, subject: str, body: str
    ) -> None:
        safe = re.sub(r"[^A-Za-z0-9@._+-]", "_", recipient)[:200]
        folder = self.directory / safe
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{message_id:08d}.eml"
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(_build(sender, recipient, subject, body).as_bytes())
        tmp.replace(path)  # atomic: a reader never sees half a message


class SmtpMailer:
    def __init__(
        self, host: str, port: int, user: str | None, password: str | None, starttls: bool
    ) -> None:
        self.host, self.port, self.user, self.password = host, port, user, password
        self.starttls = starttls

    def send(
        self, *, message_id: int, sender: str, recipient: str, subject: str, body: str
    ) -> None:
        msg = _build(sender, recipient, subject, body)
        msg["Message-ID"] = f"<cleanit-{message_id}@{sender.split('@')[-1]}>"
        with smtplib.SMTP(self.host, self.port, timeout=15) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(msg)
