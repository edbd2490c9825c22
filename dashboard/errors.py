"""Typed exceptions shared by the CLI, the web app and the loaders.

Every error a user can cause is a :class:`DashboardError`; its ``str()`` is the one clear
message shown to them (CLI: printed to stderr with a non-zero exit; web: an error page or 4xx).
Anything else is a bug and is logged without PHI, never shown.
"""

from __future__ import annotations


class DashboardError(Exception):
    """Base class for errors whose message is safe to show to the user."""

    exit_code = 1
    http_status = 400


class BadInput(DashboardError):
    """The caller gave a value we cannot use (malformed month, unknown report, bad file)."""

    exit_code = 2
    http_status = 400


class NotFound(DashboardError):
    """A named thing (practice, employer, report, user) does not exist."""

    exit_code = 3
    http_status = 404


class AccessDenied(DashboardError):
    """The user is not allowed to see what they asked for."""

    exit_code = 4
    http_status = 403


class NotAuthenticated(AccessDenied):
    """No logged-in user."""

    http_status = 401


class AccountLocked(AccessDenied):
    """Too many failed attempts: the account is locked for a while. ``sessions_ended`` when this very
    failure, made from inside a session, locked it and so ended every session of the account."""

    def __init__(self, message: str = "too many failed attempts; the account is locked for a while", *,
                 sessions_ended: bool = False) -> None:
        super().__init__(message)
        self.sessions_ended = sessions_ended


class WarehouseMissing(DashboardError):
    """The configured warehouse does not exist or has no schema yet."""

    exit_code = 5
    http_status = 503


class LoadError(BadInput):
    """A file could not be loaded; nothing was written.

    ``location`` names where: file, line or segment number, and field.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 segment: str | None = None, field: str | None = None) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.segment = segment
        self.field = field
        parts = [p for p in (
            file,
            f"line {line}" if line is not None else None,
            f"segment {segment}" if segment else None,
            f"field {field}" if field else None,
        ) if p]
        self.location = ", ".join(parts)
        super().__init__(f"{self.location}: {message}" if self.location else message)


class AuditChainBroken(DashboardError):
    """``dashboard audit verify`` found a row that breaks the audit log's hash chain (exit 7, for monitoring)."""

    exit_code = 7
    http_status = 500


class DeliveryFailed(DashboardError):
    """``dashboard schedules run-due`` could not send some due reports; they are retried (exit 8, for monitoring)."""

    exit_code = 8
    http_status = 500


class AuditNotReady(DashboardError):
    """The app role found the audit tables, triggers or chain head missing; only the owner can create them."""

    exit_code = 1
    http_status = 503
