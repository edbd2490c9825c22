"""Outgoing mail: SMTP when ``DASHBOARD_SMTP_HOST`` is set, else a local outbox the operator can read
(``<data dir>/outbox/*.eml``, one file a message, readable by the service account only).

Account notices (locked, password changed or reset, MFA enrolled, disabled or reset) are queued inside
the transaction that makes the change (:func:`notify_on_commit`) and sent only if it commits, by one
background thread: a slow or failing mail server changes neither the answer nor its timing (a lock
notice sent inline would make the locking login slower, telling an attacker the account exists).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import smtplib
import ssl
import threading
import time
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from email.message import EmailMessage
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.config import Settings, load_settings
from dashboard.files import private_dir

log = logging.getLogger(__name__)


def outbox_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / "outbox"


def send_mail(settings: Settings, *, to: str, subject: str, body: str,
              attachments: tuple[tuple[str, bytes, str], ...] = ()) -> Path | None:
    """Send one plain-text message, with ``attachments`` (file name, content, MIME type such as 'text/csv');
    returns the outbox file when there is no SMTP server."""
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    for filename, content, mimetype in attachments:
        maintype, _, subtype = mimetype.partition("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    if settings.smtp_host:
        _send_smtp(settings, message)
        return None
    folder = outbox_dir(settings)
    private_dir(folder)
    # Nanoseconds in the name keep the outbox in sending order when two messages share a second; one reading
    # of the clock for both parts (two readings could straddle a second and sort a later message first).
    now = time.time_ns()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now // 10**9))
    path = folder / f"{stamp}-{now % 10**9:09d}-{secrets.token_hex(4)}.eml"
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


# --- account notices -----------------------------------------------------------------------------------

# What each notice says. Only what the owner needs to act: the account, what happened, when (UTC); no
# IP, no code, no link built from a request. ``{until}`` is filled for the lock notice only.
_NOTICES = {
    "locked": ("Your Claims Analytics account is locked",
               "After too many failed attempts to sign in or to confirm your password or two-factor code, the "
               "account {email} is locked until {until} UTC.\n\nIf these attempts were not yours, someone may "
               "be trying to guess your password: once the lock ends, log in and change it, or ask an "
               "administrator to unlock the account and reset it."),
    "password_changed": ("Your Claims Analytics password was changed",
                         "The password of {email} was changed at {at} UTC and every other session of the "
                         "account has ended."),
    "password_reset": ("Your Claims Analytics password was reset",
                       "The password of {email} was reset at {at} UTC (with a reset link or by an "
                       "administrator) and every session of the account has ended."),
    "mfa_enrolled": ("Two-factor authentication is on for your Claims Analytics account",
                     "Two-factor authentication was turned on for {email} at {at} UTC."),
    "mfa_disabled": ("Two-factor authentication is off for your Claims Analytics account",
                     "Two-factor authentication was turned off for {email} at {at} UTC."),
    "mfa_reset": ("Two-factor authentication of your Claims Analytics account was reset",
                  "An administrator removed the authenticator and the recovery codes of {email} at {at} UTC "
                  "and every session of the account has ended. You will set up two-factor authentication "
                  "again at your next login."),
}
NOTICES = frozenset(_NOTICES)
_NOT_YOU = ("\n\nIf this was not you, tell your administrator at once.\n"
            "This message was sent automatically; do not reply to it.\n")

_settings_by_engine: weakref.WeakKeyDictionary[Engine, Settings] = weakref.WeakKeyDictionary()
_queued: weakref.WeakKeyDictionary[sa.Connection, list] = weakref.WeakKeyDictionary()
_hooked: weakref.WeakSet[sa.Connection] = weakref.WeakSet()
_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_in_flight: set[Future] = set()


def use_settings(engine: Engine, settings: Settings) -> None:
    """Mail the notices of accounts in ``engine`` with these settings (the web app registers its own). An
    engine nobody registered (the CLI) uses the settings from the environment, as the CLI does."""
    _settings_by_engine[engine] = settings


def _settings_for(engine: Engine) -> Settings | None:
    settings = _settings_by_engine.get(engine)
    if settings is not None:
        return settings
    try:
        return load_settings()
    except Exception as exc:  # a notice must never break the change it reports
        log.error("account notice not sent: no settings (%s)", type(exc).__name__)
        return None


def compose_notice(settings: Settings, *, event: str, email: str, until: dt.datetime | None = None,
                   at: dt.datetime | None = None) -> tuple[str, str]:
    """Subject and body of one account notice. A link only to the configured public address."""
    subject, text = _NOTICES[event]
    at = at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    body = text.format(email=email, at=f"{at:%Y-%m-%d %H:%M}", until=f"{until:%Y-%m-%d %H:%M}" if until else "")
    if settings.public_url:
        body += f"\n\nClaims Analytics: {settings.public_url.rstrip('/')}/login"
    return subject, body + _NOT_YOU


def notify_on_commit(conn: sa.Connection, *, event: str, email: str, user_id: int | None = None,
                     until: dt.datetime | None = None) -> None:
    """Queue an account notice to ``email``: sent once ``conn``'s transaction commits, dropped if it rolls
    back, so no mail reports a change that did not happen."""
    if event not in _NOTICES:
        raise ValueError(f"unknown notice {event!r}")
    settings = _settings_for(conn.engine)
    if settings is None:
        return
    _queued.setdefault(conn, []).append((settings, conn.engine, event, email, user_id, until,
                                         dt.datetime.now(dt.UTC).replace(tzinfo=None)))
    if conn not in _hooked:
        _hooked.add(conn)
        sa.event.listen(conn, "commit", _send_queued)
        sa.event.listen(conn, "rollback", _drop_queued)


def _send_queued(conn: sa.Connection) -> None:
    for item in _queued.pop(conn, []):
        _submit(_send_notice, *item)


def _drop_queued(conn: sa.Connection) -> None:
    _queued.pop(conn, None)


def _submit(fn, *args) -> None:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="account-notice")
        future = _pool.submit(fn, *args)
        _in_flight.add(future)
    future.add_done_callback(_in_flight.discard)


def _send_notice(settings: Settings, engine: Engine, event: str, email: str, user_id: int | None,
                 until: dt.datetime | None, at: dt.datetime) -> None:
    subject, body = compose_notice(settings, event=event, email=email, until=until, at=at)
    try:
        send_mail(settings, to=email, subject=subject, body=body)
    except (smtplib.SMTPException, OSError) as exc:
        log.error("account notice not sent: %s", type(exc).__name__)  # no address in the log
        try:
            from dashboard.auth import service  # service imports this module

            service.audit(engine, "mail.failure", user_id=user_id,
                          detail={"error": type(exc).__name__, "notice": event})
        except Exception as audit_exc:  # the app DB may be gone (shutdown); the log line stays
            log.error("mail failure not audited: %s", type(audit_exc).__name__)


def wait_for_notices(timeout: float = 30.0) -> None:
    """Block until the queued notices are sent (tests, and anything about to exit on purpose)."""
    with _pool_lock:
        pending = list(_in_flight)
    wait_futures(pending, timeout=timeout)


def _after_fork() -> None:
    # A forked worker (gunicorn --preload) inherits the pool object but not its thread: start afresh.
    global _pool, _in_flight
    _pool, _in_flight = None, set()


os.register_at_fork(after_in_child=_after_fork)
