"""Outgoing mail: SMTP when ``DASHBOARD_SMTP_HOST`` is set, else a local outbox the operator can read
(``<data dir>/outbox/*.eml``, one file a message, readable by the service account only)."""

from __future__ import annotations

import logging
import os
import secrets
import smtplib
import ssl
import time
from email.message import EmailMessage
from pathlib import Path

from dashboard.config import Settings

log = logging.getLogger(__name__)


def outbox_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / "outbox"


def send_mail(settings: Settings, *, to: str, subject: str, body: str) -> Path | None:
    """Send one plain-text message; returns the outbox file when there is no SMTP server."""
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    if settings.smtp_host:
        _send_smtp(settings, message)
        return None
    folder = outbox_dir(settings)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Nanoseconds in the name keep the outbox in sending order when two messages share a second.
    path = folder / f"{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**9:09d}-{secrets.token_hex(4)}.eml"
    # The message holds a live reset link: no other account on the host may read it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(bytes(message))
    log.info("mail written to the outbox: %s", path.name)
    return path


def _send_smtp(settings: Settings, message: EmailMessage) -> None:
    context = ssl.create_default_context()
    if settings.smtp_port == 465:
        client = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=15, context=context)
    else:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=15)
    with client:
        if settings.smtp_port != 465 and settings.smtp_starttls:
            client.starttls(context=context)
        if settings.smtp_user:
            client.login(settings.smtp_user, settings.smtp_password or "")
        client.send_message(message)
