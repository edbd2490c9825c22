"""Second factor: TOTP (RFC 6238, authenticator apps) with single-use recovery codes.

* Enrolment stores a new secret (encrypted) with ``mfa_enabled`` false; the first code that verifies
  turns it on and returns ten recovery codes, shown once and stored as argon2 hashes.
* A TOTP code is accepted for the current 30-second step or one step either side (clock drift), and only
  for a step later than the last one accepted: a code seen over a shoulder or in a log cannot be replayed.
* Every failed code counts toward the same lockout as failed passwords (in the app DB, so it holds across
  worker processes); each code reserves its attempt before it is checked, so parallel guesses cannot
  outrun the lock, and during a lock even the right code is refused.
* The owner is mailed when MFA is turned on or off (``mail.notify_on_commit``).

Secrets are encrypted with a key derived from the app's secret key: a copy of the app DB alone does not
yield anyone's second factor. Changing the secret key makes the stored secrets unreadable; recovery codes
(hashed, not encrypted) keep working and an admin can reset MFA.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

import pyotp
import segno
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.engine import Engine

from dashboard.auth import mail, passwords, service
from dashboard.auth.models import recovery_codes, users, utcnow
from dashboard.errors import AccessDenied, AccountLocked, BadInput

STEP_SECONDS = 30
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
INVALID_CODE = "that code is not valid"


def _fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(b"dashboard-mfa-secret:" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _encrypt(secret: str, secret_key: str) -> str:
    return _fernet(secret_key).encrypt(secret.encode()).decode()


def _decrypt(token: str | None, secret_key: str) -> str | None:
    if not token:
        return None
    try:
        return _fernet(secret_key).decrypt(token.encode()).decode()
    except InvalidToken:  # secret key changed since enrolment: only recovery codes still work
        return None


def _normalise(code: str | None) -> str:
    return "".join((code or "").split()).replace("-", "").lower()


def _matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The TOTP step (current or one either side) whose code is ``code``, if any."""
    current = int((time.time() if now is None else now) // STEP_SECONDS)
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _claim_step(conn: sa.Connection, user_id: int, step: int) -> bool:
    """Record ``step`` as used unless it (or a later one) already was; atomic across workers."""
    result = conn.execute(users.update().where(
        users.c.id == user_id, sa.or_(users.c.mfa_last_step.is_(None), users.c.mfa_last_step < step),
    ).values(mfa_last_step=step))
    return result.rowcount == 1


def provisioning_uri(secret: str, *, email: str, issuer: str) -> str:
    return pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(name=email, issuer_name=issuer)


def qr_data_uri(uri: str) -> str:
    """The otpauth:// URI as an SVG QR code in a data: URI (the CSP allows data: images, no other host)."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


def begin_enrolment(engine: Engine, *, user_id: int, secret_key: str) -> str:
    """The pending secret for this user (made now, or the one a reload of the page already made)."""
    with engine.begin() as conn:
        row = conn.execute(sa.select(users.c.mfa_enabled, users.c.mfa_secret)
                           .where(users.c.id == user_id)).first()
        if row is None or row.mfa_enabled:
            raise BadInput("two-factor authentication is already set up")
        secret = _decrypt(row.mfa_secret, secret_key)
        if secret is None:
            secret = pyotp.random_base32()  # 160 bits, as RFC 4226 recommends
            conn.execute(users.update().where(users.c.id == user_id).values(
                mfa_secret=_encrypt(secret, secret_key), mfa_last_step=None))
    return secret


def confirm_enrolment(engine: Engine, *, user_id: int, code: str, secret_key: str,
                      ip: str | None = None) -> list[str]:
    """Turn MFA on once a code from the pending secret verifies; returns the recovery codes (shown once)."""
    code = _normalise(code)
    with engine.begin() as conn:
        row = conn.execute(sa.select(users).where(users.c.id == user_id)).mappings().first()
        if row is None or row["mfa_enabled"]:
            raise BadInput("two-factor authentication is already set up")
        secret = _decrypt(row["mfa_secret"], secret_key)
        step = _matching_step(secret, code) if secret and code.isdigit() else None
        if step is None or not _claim_step(conn, user_id, step):
            service.record(conn, "mfa.enrol_failure", user_id=user_id, email=row["email"], ip=ip)
            raise AccessDenied(INVALID_CODE)
        conn.execute(users.update().where(users.c.id == user_id).values(mfa_enabled=True))
        codes = _replace_recovery_codes(conn, user_id)
        service.record(conn, "mfa.enrol", user_id=user_id, email=row["email"], ip=ip)
        mail.notify_on_commit(conn, event="mfa_enrolled", email=row["email"], user_id=user_id)
    return codes


def _replace_recovery_codes(conn: sa.Connection, user_id: int) -> list[str]:
    codes = ["".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10)) for _ in range(RECOVERY_CODES)]
    conn.execute(recovery_codes.delete().where(recovery_codes.c.user_id == user_id))
    conn.execute(recovery_codes.insert(), [{"user_id": user_id, "code_hash": passwords.hash_password(c)}
                                           for c in codes])
    return [f"{c[:5]}-{c[5:]}" for c in codes]


def _use_recovery_code(conn: sa.Connection, user_id: int, code: str) -> bool:
    rows = conn.execute(sa.select(recovery_codes.c.code_hash).where(
        recovery_codes.c.user_id == user_id, recovery_codes.c.used_at.is_(None))).scalars().all()
    for code_hash in rows:
        if passwords.verify_password(code_hash, code):
            # The used_at condition makes a code single-use even when two requests race with it.
            claimed = conn.execute(recovery_codes.update().where(
                recovery_codes.c.user_id == user_id, recovery_codes.c.code_hash == code_hash,
                recovery_codes.c.used_at.is_(None)).values(used_at=utcnow()))
            return claimed.rowcount == 1
    return False


def remaining_recovery_codes(engine: Engine, *, user_id: int) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(recovery_codes).where(
            recovery_codes.c.user_id == user_id, recovery_codes.c.used_at.is_(None))).scalar_one()


def _check_code(conn: sa.Connection, row, code: str, secret_key: str) -> str | None:
    """'totp' or 'recovery' when ``code`` is a good second factor for the user (and is now spent)."""
    code = _normalise(code)
    if len(code) == 6 and code.isdigit():
        secret = _decrypt(row["mfa_secret"], secret_key)
        step = _matching_step(secret, code) if secret else None
        return "totp" if step is not None and _claim_step(conn, row["id"], step) else None
    if len(code) == 10 and _use_recovery_code(conn, row["id"], code):
        return "recovery"
    return None


class _LockedMeanwhile(Exception):
    """The code verified but a lock was set since the attempt was reserved: roll the spent code back."""


def verify_second_factor(engine: Engine, *, user_id: int, code: str, secret_key: str, max_attempts: int,
                         lockout_minutes: int, ip: str | None = None) -> tuple[service.AppUser, str]:
    """The user and the method ('totp' | 'recovery') when ``code`` verifies; else AccessDenied, with
    AccountLocked when the account is (or has just become) locked.

    Like the password, each code first reserves an attempt on the lockout counter
    (``service.claim_attempt``), so parallel guesses cannot outrun the lock; during a lock even the right
    code is refused and is not spent."""
    with engine.begin() as conn:
        row = conn.execute(sa.select(users).where(users.c.id == user_id)).mappings().first()
        if row is None or not row["active"] or not row["mfa_enabled"]:
            raise AccessDenied(INVALID_CODE)
        attempt = service.claim_attempt(conn, user_id=user_id, max_attempts=max_attempts,
                                        lockout_minutes=lockout_minutes)
        if attempt is None:
            service.record(conn, "login.locked", user_id=user_id, email=row["email"], ip=ip)
    if attempt is None:
        raise AccountLocked()
    locked = False
    try:
        with engine.begin() as conn:
            method = _check_code(conn, row, code, secret_key)
            if method is None:
                locked = service.fail_attempt(conn, attempt, action="mfa.failure", reason="wrong code", ip=ip)
            elif not service.succeed_attempt(conn, attempt, reset=True, values={"last_login_at": utcnow()}):
                raise _LockedMeanwhile
            elif method == "recovery":
                service.record(conn, "mfa.recovery_code_used", user_id=user_id, email=row["email"], ip=ip)
    except _LockedMeanwhile:
        service.audit(engine, "login.locked", user_id=user_id, email=row["email"], ip=ip)
        raise AccountLocked() from None
    # Raised after the commit: the failure count and the audit entries must stick.
    if method is None:
        if locked:
            raise AccountLocked()
        raise AccessDenied(INVALID_CODE)
    return service.get_user(engine, user_id=user_id), method


def disable(engine: Engine, *, user_id: int, password: str, code: str, secret_key: str, max_attempts: int,
            lockout_minutes: int, ip: str | None = None) -> None:
    """The user turns MFA off, proving both factors (a stolen session alone cannot do it).

    One try reserves one attempt on the lockout counter, as at login: wrong factors count, a locked
    account is refused even right ones (AccountLocked), and the failure that locks it ends every session
    of the account (AccountLocked with ``sessions_ended``)."""
    with engine.begin() as conn:
        row = conn.execute(sa.select(users).where(users.c.id == user_id)).mappings().first()
        if row is None or not row["mfa_enabled"]:
            raise BadInput("two-factor authentication is not set up")
        attempt = service.claim_attempt(conn, user_id=user_id, max_attempts=max_attempts,
                                        lockout_minutes=lockout_minutes)
        if attempt is None:
            service.record(conn, "mfa.disable_failure", user_id=user_id, email=row["email"], ip=ip,
                           detail={"reason": "account locked"})
    if attempt is None:
        raise AccountLocked()
    password_ok = passwords.verify_password(row["password_hash"], password or "")  # outside any transaction
    locked = False
    try:
        with engine.begin() as conn:
            good = password_ok and _check_code(conn, row, code, secret_key) is not None
            if not good:
                locked = service.fail_attempt(conn, attempt, action="mfa.disable_failure", ip=ip,
                                              reason="wrong password or code", end_sessions=True)
            elif not service.succeed_attempt(conn, attempt, reset=True,
                                             values={"mfa_enabled": False, "mfa_secret": None,
                                                     "mfa_last_step": None}):
                raise _LockedMeanwhile
            else:
                conn.execute(recovery_codes.delete().where(recovery_codes.c.user_id == user_id))
                service.record(conn, "mfa.disable", user_id=user_id, email=row["email"], ip=ip)
                mail.notify_on_commit(conn, event="mfa_disabled", email=row["email"], user_id=user_id)
    except _LockedMeanwhile:
        service.audit(engine, "mfa.disable_failure", user_id=user_id, email=row["email"], ip=ip,
                      detail={"reason": "account locked"})
        raise AccountLocked() from None
    if locked:
        raise AccountLocked(sessions_ended=True)
    if not good:
        raise AccessDenied("the password or the code is not right")
