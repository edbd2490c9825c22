"""Password reset by e-mailed link: random, single-use, time-limited tokens.

The link carries 256 random bits; the ``password_resets`` table keeps only their SHA-256, so a copy of
the app DB holds no usable link. A new request cancels the user's older links. Using a link sets the
password (policy checked first, so a refused password does not burn the link), marks the link used in
the same transaction, clears the lockout and ends every session of the user.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import smtplib

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.auth import mail, passwords, service
from dashboard.auth.models import password_resets, users, utcnow
from dashboard.config import Settings
from dashboard.errors import AccessDenied, DashboardError

log = logging.getLogger(__name__)
INVALID_LINK = "this reset link is not valid or has expired; ask for a new one"


class MailNotSent(DashboardError):
    """The mail server did not take the message."""

    http_status = 503


class LinksNotConfigured(DashboardError):
    """No DASHBOARD_PUBLIC_URL: a reset link would have to take its host from the request, which the
    requester controls (link poisoning), so none is made."""

    http_status = 503


LINKS_NOT_CONFIGURED = ("password reset links are turned off until the operator sets DASHBOARD_PUBLIC_URL "
                        "(the address users open the dashboard at)")


def link_base(settings: Settings) -> str:
    """The configured base of links in e-mails; LinksNotConfigured when there is none. The only source
    of a link's host: never a request header."""
    if not settings.public_url:
        raise LinksNotConfigured(LINKS_NOT_CONFIGURED)
    return settings.public_url.rstrip("/")


def links_configured(settings: Settings) -> bool:
    return bool(settings.public_url)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(engine: Engine, *, email: str, ttl_minutes: int, ip: str | None = None,
                 actor: str | None = None) -> tuple[service.AppUser, str] | None:
    """A new reset token for the active user with this email, or None when there is no such user (the
    caller answers the same either way)."""
    email = (email or "").strip().lower()[:320]
    now = utcnow()
    with engine.begin() as conn:
        row = conn.execute(sa.select(users.c.id, users.c.active).where(users.c.email == email)).first()
        if row is None or not row.active:
            service.record(conn, "password.reset_request", email=actor or email, ip=ip,
                           detail={"user": email, "sent": False})
            return None
        conn.execute(password_resets.update().where(password_resets.c.user_id == row.id,
                                                    password_resets.c.used_at.is_(None)).values(used_at=now))
        token = secrets.token_urlsafe(32)
        conn.execute(password_resets.insert().values(token_id=_hash(token), user_id=row.id, created_at=now,
                                                     expires_at=now + dt.timedelta(minutes=ttl_minutes)))
        service.record(conn, "password.reset_request", user_id=row.id, email=actor or email, ip=ip,
                       detail={"user": email, "sent": True, "minutes": ttl_minutes})
    return service.get_user(engine, user_id=row.id), token


def send_reset_link(engine: Engine, settings: Settings, *, email: str, ip: str | None = None,
                    actor: str | None = None) -> bool:
    """Mail a reset link when ``email`` belongs to an active user; True when a message went out.
    The link's base is DASHBOARD_PUBLIC_URL only (there is deliberately no parameter for a request's
    host). Raises LinksNotConfigured, before any token exists, when it is unset, and MailNotSent when the
    SMTP server refuses the message."""
    base = link_base(settings)
    created = create_token(engine, email=email, ttl_minutes=settings.reset_token_minutes, ip=ip, actor=actor)
    if created is None:
        return False
    user, token = created
    link = f"{base}/reset/{token}"
    body = (f"Someone (hopefully you) asked to reset the password of {user.email} for Claims Analytics.\n\n"
            f"Open this link within {settings.reset_token_minutes} minutes to choose a new password:\n\n"
            f"{link}\n\nThe link works once. If you did not ask for it, ignore this message; your password "
            "stays as it is.\n")
    try:
        mail.send_mail(settings, to=user.email, subject="Reset your Claims Analytics password", body=body)
    except (smtplib.SMTPException, OSError) as exc:
        log.error("reset mail not sent: %s", type(exc).__name__)  # no address in the log
        service.audit(engine, "mail.failure", user_id=user.id, ip=ip, detail={"error": type(exc).__name__})
        raise MailNotSent("the reset e-mail could not be sent; try again later") from None
    return True


def _live_token(conn: sa.Connection, token: str, now: dt.datetime):
    row = conn.execute(sa.select(password_resets).where(password_resets.c.token_id == _hash(token or "")))\
        .mappings().first()
    if row is None or row["used_at"] is not None or row["expires_at"] <= now:
        raise AccessDenied(INVALID_LINK)
    return row


def check_token(engine: Engine, *, token: str) -> service.AppUser:
    """The user a live token belongs to; AccessDenied when it is unknown, used or expired."""
    with engine.connect() as conn:
        row = _live_token(conn, token, utcnow())
    user = service.get_user(engine, user_id=row["user_id"])
    if user is None or not user.is_active:
        raise AccessDenied(INVALID_LINK)
    return user


def complete_reset(engine: Engine, *, token: str, new_password: str, ip: str | None = None) -> service.AppUser:
    """Set the new password through a live token and spend the token; every session of the user ends."""
    now = utcnow()
    with engine.begin() as conn:
        row = _live_token(conn, token, now)
        user = conn.execute(sa.select(users.c.email, users.c.active).where(users.c.id == row["user_id"])).one()
        if not user.active:
            raise AccessDenied(INVALID_LINK)
        email = user.email
        passwords.check_policy(new_password, email=email)
        spent = conn.execute(password_resets.update().where(password_resets.c.token_id == row["token_id"],
                                                            password_resets.c.used_at.is_(None))
                             .values(used_at=now))
        if spent.rowcount != 1:  # another request used it a moment ago
            raise AccessDenied(INVALID_LINK)
        service.write_password(conn, user_id=row["user_id"], new=new_password)
        service.record(conn, "password.reset", user_id=row["user_id"], email=email, ip=ip)
    return service.get_user(engine, user_id=row["user_id"])
