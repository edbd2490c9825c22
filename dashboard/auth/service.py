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
from dashboard.auth import audit_chain, mail, passwords, sessions
from dashboard.auth.models import (
    audit_log,
    metadata,
    protect_audit_log,
    recovery_codes,
    user_scopes,
    users,
    utcnow,
)
from dashboard.errors import AccessDenied, AccountLocked, BadInput, NotFound

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

    ``max_attempts`` consecutive failures lock the account for ``lockout_minutes``. Each try first
    reserves an attempt on the counter in the app DB (:func:`claim_attempt`, one atomic statement, so it
    holds across threads and workers); only then is the hash checked. While locked even the right password
    is refused, and a success never clears a lock it did not set."""
    email = (email or "").strip().lower()
    password = password or ""
    with engine.begin() as conn:
        row = conn.execute(sa.select(users.c.id, users.c.password_hash, users.c.active, users.c.mfa_enabled)
                           .where(users.c.email == email)).first()
        attempt = None
        if row is None:
            record(conn, "login.failure", email=email[:320], ip=ip, detail={"reason": "unknown email"})
        else:
            attempt = claim_attempt(conn, user_id=row.id, max_attempts=max_attempts,
                                    lockout_minutes=lockout_minutes)
            if attempt is None:
                record(conn, "login.locked", user_id=row.id, email=email, ip=ip)
    if attempt is None:
        passwords.verify_password(passwords.DUMMY_HASH, password)  # same time as a real check
        raise AccessDenied(LOGIN_FAILED)
    right = passwords.verify_password(row.password_hash, password)
    with engine.begin() as conn:
        if not right or not row.active:
            fail_attempt(conn, attempt, action="login.failure", ip=ip,
                         reason="inactive" if not row.active else "wrong password")
            ok = False
        else:
            # With a second factor the counter is cleared only once the code verifies: this success only
            # hands back its own reservation, so re-entering a known password buys no fresh code guesses.
            ok = succeed_attempt(conn, attempt, reset=not row.mfa_enabled,
                                 values={} if row.mfa_enabled else {"last_login_at": utcnow()})
            if not ok:
                record(conn, "login.locked", user_id=row.id, email=email, ip=ip)
            elif passwords.needs_rehash(row.password_hash):
                conn.execute(users.update().where(users.c.id == row.id,
                                                  users.c.password_hash == row.password_hash)
                             .values(password_hash=passwords.hash_password(password)))
    # Raised after the commit: a failure's count and audit entry must not roll back with the exception.
    if not ok:
        raise AccessDenied(LOGIN_FAILED)
    return get_user(engine, user_id=row.id)


@dataclass(frozen=True)
class Attempt:
    """One attempt reserved on an account's failure counter by :func:`claim_attempt`; it counts as a
    failure unless :func:`succeed_attempt` settles it."""

    user_id: int
    email: str
    number: int  # its place in the count of consecutive failures
    lock: dt.datetime | None  # the lock this reservation set (it is the last one allowed), else None


def claim_attempt(conn: sa.Connection, *, user_id: int, max_attempts: int,
                  lockout_minutes: int) -> Attempt | None:
    """Reserve one attempt before a secret is checked; None when the account is locked (check nothing).

    One conditional UPDATE ... RETURNING, atomic on SQLite and PostgreSQL: of concurrent requests exactly
    ``max_attempts`` get a reservation, and the one that reaches it sets the lock in the same statement.
    So the hash is never verified during a lock, not even by requests that raced the lock. Commit the
    reservation before verifying, so concurrent requests see it."""
    now = utcnow()
    expired = sa.and_(users.c.locked_until.is_not(None), users.c.locked_until <= now)
    number = sa.case((expired, 1), else_=sa.func.coalesce(users.c.failed_attempts, 0) + 1)
    until = sa.literal(now + dt.timedelta(minutes=lockout_minutes), sa.DateTime())
    row = conn.execute(
        users.update()
        .where(users.c.id == user_id, sa.or_(users.c.locked_until.is_(None), users.c.locked_until <= now))
        .values(failed_attempts=number, locked_until=sa.case((number >= max_attempts, until), else_=sa.null()))
        .returning(users.c.email, users.c.failed_attempts, users.c.locked_until)).first()
    if row is None:
        return None
    return Attempt(user_id=user_id, email=row.email, number=row.failed_attempts, lock=row.locked_until)


def fail_attempt(conn: sa.Connection, attempt: Attempt, *, action: str, reason: str, ip: str | None,
                 end_sessions: bool = False) -> bool:
    """Record a failed attempt (its reservation stands as the count); True when it was the one that
    locked the account. Then the owner is mailed, and with ``end_sessions`` (the failure came from inside
    a session, which may be stolen) every session of the account ends."""
    if attempt.lock is not None and end_sessions:
        # Users row before the audit chain lock, as everywhere: the same order in every transaction.
        conn.execute(users.update().where(users.c.id == attempt.user_id)
                     .values(session_version=users.c.session_version + 1))
        sessions.revoke_user_sessions(conn, user_id=attempt.user_id, reason="locked")
    record(conn, action, user_id=attempt.user_id, email=attempt.email, ip=ip, detail={"reason": reason})
    if attempt.lock is None:
        return False
    record(conn, "account.lockout", user_id=attempt.user_id, email=attempt.email, ip=ip,
           detail={"until": attempt.lock, "sessions_ended": end_sessions})
    mail.notify_on_commit(conn, event="locked", email=attempt.email, user_id=attempt.user_id, until=attempt.lock)
    return True


def succeed_attempt(conn: sa.Connection, attempt: Attempt, *, reset: bool, values: dict | None = None) -> bool:
    """Settle a verified attempt and apply ``values`` to the user row, only if the account is not locked
    now (a lock set by another request since the reservation stands: the success is refused, False).

    ``reset`` clears the counter (the login, or the account change, is done); otherwise only this
    attempt's own reservation is handed back (password right, second factor still to come). Either way
    the lock this reservation itself set, as the last attempt allowed, is lifted: it was no failure."""
    free = [users.c.locked_until.is_(None), users.c.locked_until <= utcnow()]
    if attempt.lock is not None:
        free.append(users.c.locked_until == attempt.lock)
    counter = 0 if reset else sa.case((users.c.failed_attempts > 0, users.c.failed_attempts - 1), else_=0)
    done = conn.execute(users.update().where(users.c.id == attempt.user_id, sa.or_(*free))
                        .values(failed_attempts=counter, locked_until=None, **(values or {})))
    return done.rowcount == 1


def change_password(engine: Engine, *, user_id: int, current: str, new: str, max_attempts: int,
                    lockout_minutes: int, ip: str | None = None) -> AppUser:
    """Change a password; every session of the user ends (session version bump and revocation), so the
    caller starts a new one for the browser that made the change.

    The current password is checked like a login (:func:`claim_attempt`): a wrong one counts toward the
    lockout, a locked account is refused even the right one (AccountLocked), and the failure that locks
    it ends every session: a stolen session must not allow guessing the password."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(users.c.email, users.c.password_hash).where(users.c.id == user_id)).first()
    if row is None:
        raise NotFound(f"no user {user_id}")
    passwords.check_policy(new, email=row.email)  # before the attempt: a refused new password is no guess
    with engine.begin() as conn:
        attempt = claim_attempt(conn, user_id=user_id, max_attempts=max_attempts, lockout_minutes=lockout_minutes)
        if attempt is None:
            record(conn, "password.change_failure", user_id=user_id, email=row.email, ip=ip,
                   detail={"reason": "account locked"})
    if attempt is None:
        raise AccountLocked()
    correct = passwords.verify_password(row.password_hash, current or "")
    locked = changed = False
    with engine.begin() as conn:
        if not correct:
            locked = fail_attempt(conn, attempt, action="password.change_failure", ip=ip,
                                  reason="wrong current password", end_sessions=True)
        else:
            changed = succeed_attempt(conn, attempt, reset=True, values={
                "password_hash": passwords.hash_password(new), "password_changed_at": utcnow(),
                "session_version": users.c.session_version + 1})
            if changed:
                sessions.revoke_user_sessions(conn, user_id=user_id, reason="password change")
                record(conn, "password.change", user_id=user_id, email=row.email, ip=ip)
                mail.notify_on_commit(conn, event="password_changed", email=row.email, user_id=user_id)
            else:
                record(conn, "password.change_failure", user_id=user_id, email=row.email, ip=ip,
                       detail={"reason": "account locked"})
    # Raised after the commit, so the failure count, the lock and the ended sessions stick.
    if locked:
        raise AccountLocked(sessions_ended=True)
    if not correct:
        raise AccessDenied("the current password is not right")
    if not changed:
        raise AccountLocked()
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
    """Store a new password (policy already checked), clear the lockout and end every session. The owner
    is mailed once the caller commits (every path that sets a password comes through here)."""
    conn.execute(users.update().where(users.c.id == user_id).values(
        password_hash=passwords.hash_password(new), password_changed_at=utcnow(), failed_attempts=0,
        locked_until=None, session_version=users.c.session_version + 1))
    sessions.revoke_user_sessions(conn, user_id=user_id, reason="password set")
    mail.notify_on_commit(conn, event="password_reset", email=_user_email(conn, user_id), user_id=user_id)


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
        mail.notify_on_commit(conn, event="mfa_reset", email=email, user_id=user_id)


def record(conn: sa.Connection, action: str, *, user_id: int | None = None, email: str | None = None,
           ip: str | None = None, detail: dict | None = None) -> None:
    """Append one audit entry inside the caller's transaction. ``detail`` must never carry PHI.

    The one writer of ``audit_log``: the entry joins the hash chain under the chain lock, held until the
    caller commits, so concurrent writers never fork it. Change other rows (users, sessions) before
    recording, as every caller does: with the chain lock always taken last, no two transactions can wait
    on each other's locks."""
    audit_chain.append(conn, at=utcnow(), user_id=user_id, email=email, action=action,
                       detail=json.dumps(detail, sort_keys=True, default=str) if detail else None, ip=ip)


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
