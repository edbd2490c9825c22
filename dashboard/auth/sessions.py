"""Server-side session records: created at login, checked on every request, revoked at logout.

Flask keeps its session in a signed cookie, which the server cannot take back: a copied cookie works
until it expires. Each login therefore gets a random session id (in the cookie) whose SHA-256 is a row
in ``sessions``; a request counts as logged in only while that row is live. Logout, password change,
deactivation and an admin's MFA reset revoke rows, and a replayed cookie stops working at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.auth.models import sessions, utcnow

# last_seen_at is written at most this often: one UPDATE a minute per session, not one per request.
TOUCH_SECONDS = 60


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def open_session(conn: sa.Connection, *, user_id: int, ip: str | None) -> str:
    """A new session for the user; returns the random id to keep in the cookie."""
    session_id = secrets.token_urlsafe(32)
    now = utcnow()
    conn.execute(sessions.insert().values(id_hash=_hash(session_id), user_id=user_id, created_at=now,
                                          last_seen_at=now, ip=ip))
    return session_id


def check_session(engine: Engine, *, session_id: str | None, user_id: int, idle_minutes: int,
                  lifetime_hours: int) -> bool:
    """True while the session is live: not revoked, not idle too long, not too old. An expired session is
    revoked on the way so that it stays dead."""
    if not session_id:
        return False
    now = utcnow()
    key = _hash(session_id)
    with engine.begin() as conn:
        row = conn.execute(sa.select(sessions).where(sessions.c.id_hash == key)).mappings().first()
        if row is None or row["user_id"] != user_id or row["revoked_at"] is not None:
            return False
        # The cookie's own timestamps are checked per request; the server's copy is at most a minute
        # stale, so it allows that much slack.
        idle = now - row["last_seen_at"] > dt.timedelta(minutes=idle_minutes, seconds=TOUCH_SECONDS)
        old = now - row["created_at"] > dt.timedelta(hours=lifetime_hours)
        if idle or old:
            conn.execute(sessions.update().where(sessions.c.id_hash == key)
                         .values(revoked_at=now, revoked_reason="idle" if idle else "lifetime"))
            return False
        if (now - row["last_seen_at"]).total_seconds() >= TOUCH_SECONDS:
            conn.execute(sessions.update().where(sessions.c.id_hash == key).values(last_seen_at=now))
    return True


def revoke_session(conn: sa.Connection, *, session_id: str, reason: str) -> None:
    conn.execute(sessions.update().where(sessions.c.id_hash == _hash(session_id), sessions.c.revoked_at.is_(None))
                 .values(revoked_at=utcnow(), revoked_reason=reason))


def revoke_user_sessions(conn: sa.Connection, *, user_id: int, reason: str, keep: str | None = None) -> int:
    """Revoke every live session of the user (except ``keep``, a session id); returns how many."""
    query = sessions.update().where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
    if keep:
        query = query.where(sessions.c.id_hash != _hash(keep))
    return conn.execute(query.values(revoked_at=utcnow(), revoked_reason=reason)).rowcount


def live_sessions(engine: Engine, *, user_id: int) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(sessions)
                            .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))).scalar_one()
