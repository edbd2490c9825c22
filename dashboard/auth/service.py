"""Accounts: create, authenticate (with lockout), change, deactivate. Plain functions with keyword-only
arguments over the app DB engine; the web views and the CLI call these, nothing else writes users."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.engine import Engine

from dashboard import access
from dashboard.auth import passwords, sessions
from dashboard.auth.models import (
    audit_log,
    metadata,
    protect_audit_log,
    recovery_codes,
    user_scopes,
    users,
    utcnow,
)
from dashboard.errors import AccessDenied, BadInput, NotFound

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
LOGIN_FAILED = "invalid email or password"


def create_tables(engine: Engine) -> None:
    metadata.create_all(engine)
    _add_missing_columns(engine)
    with engine.begin() as conn:
        protect_audit_log(conn)


def _add_missing_columns(engine: Engine) -> None:
    """An app DB made by an older version lacks newer (nullable) columns; add them so an upgrade needs no
    migration tool."""
    inspector = sa.inspect(engine)
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present and column.nullable:
                    kind = column.type.compile(dialect=engine.dialect)
                    conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))


@dataclass
class AppUser(UserMixin):
    id: int
    email: str
    role: str
    is_active_flag: bool
    session_version: int
    mfa_enabled: bool = False
    practice_ids: tuple[str, ...] = ()
    employer_ids: tuple[str, ...] = ()
    locked_until: dt.datetime | None = None
    last_login_at: dt.datetime | None = None
    extra: dict = field(default_factory=dict)

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.is_active_flag

    def get_id(self) -> str:
        # The session version is part of the id: bumping it logs the user out everywhere.
        return f"{self.id}:{self.session_version}"

    def scope(self) -> access.Scope:
        return access.scope_for(role=self.role, practice_ids=self.practice_ids, employer_ids=self.employer_ids,
                                user_id=self.id, email=self.email)


def _normalise_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not EMAIL.match(email):
        raise BadInput(f"not an email address: {email!r}")
    return email


def _check_role_scopes(role: str, practices: Sequence[str], employers: Sequence[str]) -> None:
    if role not in access.ROLES:
        raise BadInput(f"unknown role {role!r}; roles: {', '.join(access.ROLES)}")
    if role == "practice_manager" and (not practices or employers):
        raise BadInput("a practice_manager needs at least one --practice and no --employer")
    if role == "employer_admin" and (not employers or practices):
        raise BadInput("an employer_admin needs at least one --employer and no --practice")
    if role == "admin" and (practices or employers):
        raise BadInput("an admin sees everything; do not give --practice or --employer")


def _load(conn: sa.Connection, where) -> AppUser | None:
    row = conn.execute(sa.select(users).where(where)).mappings().first()
    if row is None:
        return None
    scopes = conn.execute(sa.select(user_scopes.c.kind, user_scopes.c.scope_id)
                          .where(user_scopes.c.user_id == row["id"]).order_by(user_scopes.c.scope_id)).all()
    return AppUser(
        id=row["id"], email=row["email"], role=row["role"], is_active_flag=bool(row["active"]),
        session_version=row["session_version"], mfa_enabled=bool(row["mfa_enabled"]),
        practice_ids=tuple(s for k, s in scopes if k == "practice"),
        employer_ids=tuple(s for k, s in scopes if k == "employer"),
        locked_until=row["locked_until"], last_login_at=row["last_login_at"],
    )


def get_user(engine: Engine, *, user_id: int) -> AppUser | None:
    with engine.connect() as conn:
        return _load(conn, users.c.id == user_id)


def get_user_by_email(engine: Engine, *, email: str) -> AppUser | None:
    with engine.connect() as conn:
        return _load(conn, users.c.email == email.strip().lower())


def load_session_user(engine: Engine, login_id: str, *, session_id: str | None, idle_minutes: int,
                      lifetime_hours: int) -> AppUser | None:
    """Flask-Login's user loader: '<id>:<session_version>' plus the server-side session id -> the user, if
    the account is active, the version current and the server-side session live."""
    try:
        user_id, version = (int(part) for part in login_id.split(":", 1))
    except (ValueError, AttributeError):
        return None
    user = get_user(engine, user_id=user_id)
    if user is None or not user.is_active or user.session_version != version:
        return None
    if not sessions.check_session(engine, session_id=session_id, user_id=user.id, idle_minutes=idle_minutes,
                                  lifetime_hours=lifetime_hours):
        return None
    return user


def open_login_session(engine: Engine, *, user_id: int, ip: str | None, replaces: str | None = None) -> str:
    """A fresh server-side session for a login; the one it replaces (same browser) is revoked: rotation."""
    with engine.begin() as conn:
        if replaces:
            sessions.revoke_session(conn, session_id=replaces, reason="rotated")
        return sessions.open_session(conn, user_id=user_id, ip=ip)


def end_session(engine: Engine, *, session_id: str | None, reason: str) -> None:
    if session_id:
        with engine.begin() as conn:
            sessions.revoke_session(conn, session_id=session_id, reason=reason)


def create_user(engine: Engine, *, email: str, password: str, role: str, practices: Sequence[str] = (),
                employers: Sequence[str] = (), actor: str = "cli", ip: str | None = None) -> AppUser:
    email = _normalise_email(email)
    _check_role_scopes(role, practices, employers)
    passwords.check_policy(password, email=email)
    now = utcnow()
    with engine.begin() as conn:
        if conn.execute(sa.select(users.c.id).where(users.c.email == email)).first():
            raise BadInput(f"a user with email {email} already exists")
        user_id = conn.execute(users.insert().values(
            email=email, password_hash=passwords.hash_password(password), role=role, active=True, created_at=now,
            failed_attempts=0, mfa_enabled=False, session_version=1, password_changed_at=now,
        )).inserted_primary_key[0]
        _write_scopes(conn, user_id, practices, employers)
        record(conn, "user.create", email=actor, ip=ip,
               detail={"user": email, "role": role, "practices": list(practices), "employers": list(employers)})
    return get_user(engine, user_id=user_id)


def _write_scopes(conn: sa.Connection, user_id: int, practices: Iterable[str], employers: Iterable[str]) -> None:
    conn.execute(user_scopes.delete().where(user_scopes.c.user_id == user_id))
    rows = [{"user_id": user_id, "kind": "practice", "scope_id": p} for p in dict.fromkeys(practices)]
    rows += [{"user_id": user_id, "kind": "employer", "scope_id": e} for e in dict.fromkeys(employers)]
    if rows:
        conn.execute(user_scopes.insert(), rows)


def update_user(engine: Engine, *, user_id: int, role: str, practices: Sequence[str], employers: Sequence[str],
                active: bool, actor: str, ip: str | None = None) -> AppUser:
    _check_role_scopes(role, practices, employers)
    with engine.begin() as conn:
        row = conn.execute(sa.select(users.c.email, users.c.role, users.c.active)
                           .where(users.c.id == user_id)).first()
        if row is None:
            raise NotFound(f"no user {user_id}")
        if row.email == actor and (role != row.role or not active):
            raise BadInput("you cannot demote or deactivate your own account; ask another admin")
        changes = {"role": role, "active": active}
        if row.role != role or bool(row.active) != active:
            # A changed role or a deactivation ends every session at once, not at the next login.
            changes["session_version"] = users.c.session_version + 1
            sessions.revoke_user_sessions(conn, user_id=user_id, reason="account changed")
        conn.execute(users.update().where(users.c.id == user_id).values(**changes))
        _write_scopes(conn, user_id, practices, employers)
        record(conn, "user.update", email=actor, ip=ip, detail={
            "user": row.email, "role": role, "active": active, "practices": list(practices),
            "employers": list(employers)})
    return get_user(engine, user_id=user_id)


def list_users(engine: Engine) -> list[AppUser]:
    with engine.connect() as conn:
        ids = conn.execute(sa.select(users.c.id).order_by(users.c.email)).scalars().all()
        return [_load(conn, users.c.id == i) for i in ids]


def authenticate(engine: Engine, *, email: str, password: str, max_attempts: int, lockout_minutes: int,
                 ip: str | None = None) -> AppUser:
    """The user for this email and password, or AccessDenied with one message for every failure
    (unknown email, wrong password, locked, inactive), so the answer leaks nothing.

    ``max_attempts`` consecutive failures lock the account for ``lockout_minutes``; the counter lives in
    the app DB so it holds across worker processes."""
    email = (email or "").strip().lower()
    now = utcnow()
    with engine.begin() as conn:
        ok = _check_login(conn, email, password or "", now, max_attempts=max_attempts,
                          lockout_minutes=lockout_minutes, ip=ip)
    # Raised after the commit: a failure's count and audit entry must not roll back with the exception.
    if ok is None:
        raise AccessDenied(LOGIN_FAILED)
    return get_user(engine, user_id=ok)


def _check_login(conn: sa.Connection, email: str, password: str, now: dt.datetime, *, max_attempts: int,
                 lockout_minutes: int, ip: str | None) -> int | None:
    """The user id when the password is right for an active, unlocked account; else None (recorded)."""
    row = conn.execute(sa.select(users).where(users.c.email == email)).mappings().first()
    if row is None:
        passwords.verify_password(passwords.DUMMY_HASH, password)  # same time as a real check
        record(conn, "login.failure", email=email[:320], ip=ip, detail={"reason": "unknown email"})
        return None
    if row["locked_until"] and row["locked_until"] > now:
        passwords.verify_password(passwords.DUMMY_HASH, password)
        record(conn, "login.locked", user_id=row["id"], email=email, ip=ip)
        return None
    if not passwords.verify_password(row["password_hash"], password) or not row["active"]:
        register_failure(conn, user_id=row["id"], email=email, max_attempts=max_attempts,
                         lockout_minutes=lockout_minutes, ip=ip, action="login.failure",
                         reason="inactive" if not row["active"] else "wrong password")
        return None
    values = {}
    if not row["mfa_enabled"]:
        # With a second factor the counter is cleared only once the code verifies: re-entering a known
        # password must not buy an attacker a fresh round of code guesses.
        values = {"failed_attempts": 0, "locked_until": None, "last_login_at": now}
    if passwords.needs_rehash(row["password_hash"]):
        values["password_hash"] = passwords.hash_password(password)
    if values:
        conn.execute(users.update().where(users.c.id == row["id"]).values(**values))
    return row["id"]


def register_failure(conn: sa.Connection, *, user_id: int, email: str, max_attempts: int, lockout_minutes: int,
                     ip: str | None, action: str, reason: str) -> bool:
    """Count one failed attempt (password or second factor) against the account and lock it at
    ``max_attempts``; True when this failure locked it. The increment happens in SQL, so concurrent
    workers cannot lose a count."""
    conn.execute(users.update().where(users.c.id == user_id)
                 .values(failed_attempts=sa.func.coalesce(users.c.failed_attempts, 0) + 1))
    attempts = conn.execute(sa.select(users.c.failed_attempts).where(users.c.id == user_id)).scalar_one()
    record(conn, action, user_id=user_id, email=email, ip=ip, detail={"reason": reason})
    if attempts < max_attempts:
        return False
    conn.execute(users.update().where(users.c.id == user_id).values(
        failed_attempts=0, locked_until=utcnow() + dt.timedelta(minutes=lockout_minutes)))
    record(conn, "account.lockout", user_id=user_id, email=email, ip=ip, detail={"minutes": lockout_minutes})
    return True


def change_password(engine: Engine, *, user_id: int, current: str, new: str, max_attempts: int,
                    lockout_minutes: int, ip: str | None = None) -> AppUser:
    """Change a password; every session of the user ends (session version bump and revocation), so the
    caller starts a new one for the browser that made the change.

    A wrong current password counts toward the lockout: a stolen session must not allow guessing it."""
    with engine.begin() as conn:
        row = conn.execute(sa.select(users).where(users.c.id == user_id)).mappings().first()
        if row is None:
            raise NotFound(f"no user {user_id}")
        correct = passwords.verify_password(row["password_hash"], current or "")
        if not correct:
            register_failure(conn, user_id=user_id, email=row["email"], max_attempts=max_attempts,
                             lockout_minutes=lockout_minutes, ip=ip, action="password.change_failure",
                             reason="wrong current password")
        else:
            passwords.check_policy(new, email=row["email"])
            conn.execute(users.update().where(users.c.id == user_id).values(
                password_hash=passwords.hash_password(new), password_changed_at=utcnow(),
                session_version=users.c.session_version + 1))
            sessions.revoke_user_sessions(conn, user_id=user_id, reason="password change")
            record(conn, "password.change", user_id=user_id, email=row["email"], ip=ip)
    if not correct:  # raised after the commit, so the failure count sticks
        raise AccessDenied("the current password is not right")
    return get_user(engine, user_id=user_id)


def set_password(engine: Engine, *, user_id: int, new: str, actor: str, ip: str | None = None) -> None:
    """Set a password without the old one (reset link, operator); ends every session."""
    with engine.begin() as conn:
        row = conn.execute(sa.select(users.c.email).where(users.c.id == user_id)).first()
        if row is None:
            raise NotFound(f"no user {user_id}")
        passwords.check_policy(new, email=row.email)
        write_password(conn, user_id=user_id, new=new)
        record(conn, "password.set", user_id=user_id, email=actor, ip=ip, detail={"user": row.email})


def write_password(conn: sa.Connection, *, user_id: int, new: str) -> None:
    """Store a new password (policy already checked), clear the lockout and end every session."""
    conn.execute(users.update().where(users.c.id == user_id).values(
        password_hash=passwords.hash_password(new), password_changed_at=utcnow(), failed_attempts=0,
        locked_until=None, session_version=users.c.session_version + 1))
    sessions.revoke_user_sessions(conn, user_id=user_id, reason="password set")


def _user_email(conn: sa.Connection, user_id: int) -> str:
    email = conn.execute(sa.select(users.c.email).where(users.c.id == user_id)).scalar()
    if email is None:
        raise NotFound(f"no user {user_id}")
    return email


def unlock(engine: Engine, *, user_id: int, actor: str, ip: str | None = None) -> None:
    with engine.begin() as conn:
        email = _user_email(conn, user_id)
        conn.execute(users.update().where(users.c.id == user_id).values(failed_attempts=0, locked_until=None))
        record(conn, "user.unlock", email=actor, ip=ip, detail={"user": email})


def deactivate_user(engine: Engine, *, user_id: int, actor: str, ip: str | None = None) -> None:
    """Deactivate an account: it can no longer log in and its sessions end now."""
    with engine.begin() as conn:
        email = _user_email(conn, user_id)
        if email == actor:
            raise BadInput("you cannot deactivate your own account; ask another admin")
        conn.execute(users.update().where(users.c.id == user_id).values(
            active=False, session_version=users.c.session_version + 1))
        sessions.revoke_user_sessions(conn, user_id=user_id, reason="deactivated")
        record(conn, "user.deactivate", email=actor, ip=ip, detail={"user": email})


def reset_mfa(engine: Engine, *, user_id: int, actor: str, ip: str | None = None) -> None:
    """Remove a user's authenticator and recovery codes (lost phone); they enrol again at next login.
    Their sessions end too: whoever holds the lost device must not stay logged in."""
    with engine.begin() as conn:
        email = _user_email(conn, user_id)
        conn.execute(users.update().where(users.c.id == user_id).values(
            mfa_enabled=False, mfa_secret=None, mfa_last_step=None, session_version=users.c.session_version + 1))
        conn.execute(recovery_codes.delete().where(recovery_codes.c.user_id == user_id))
        sessions.revoke_user_sessions(conn, user_id=user_id, reason="mfa reset")
        record(conn, "mfa.reset", email=actor, ip=ip, detail={"user": email})


def record(conn: sa.Connection, action: str, *, user_id: int | None = None, email: str | None = None,
           ip: str | None = None, detail: dict | None = None) -> None:
    """Append one audit entry inside the caller's transaction. ``detail`` must never carry PHI."""
    conn.execute(audit_log.insert().values(
        at=utcnow(), user_id=user_id, email=email, action=action,
        detail=json.dumps(detail, sort_keys=True, default=str) if detail else None, ip=ip))


def audit(engine: Engine, action: str, **kwargs) -> None:
    with engine.begin() as conn:
        record(conn, action, **kwargs)


def audit_actions(engine: Engine) -> list[str]:
    """The distinct actions in the audit log, for the viewer's filter."""
    with engine.connect() as conn:
        return list(conn.execute(sa.select(audit_log.c.action).distinct().order_by(audit_log.c.action)).scalars())


def audit_entries(engine: Engine, *, limit: int = 1000, action: str | None = None) -> list[dict]:
    q = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if action:
        q = q.where(audit_log.c.action.like(f"{action}%"))
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]
