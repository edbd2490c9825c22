"""Who sees what: the one module that decides.

Every page layout, Dash callback, export route and CLI report asks this module for a :class:`Scope`
and resolves the practice and employer ids it was asked for through :func:`resolve_filters`. The
ids that come back go into SQL WHERE clauses (:mod:`dashboard.warehouse.marts`). Deny by default:
no scope, no data; an id outside the scope is refused, never silently dropped.

Roles:
* ``admin``: everything, including the admin pages; sees employer data unsuppressed.
* ``practice_manager``: practice pages for their practices (claim-level PHI of those practices).
* ``employer_admin``: employer pages for their employers, de-identified and small-cell suppressed.
* ``operator``: the CLI without ``--user`` (full access, like admin).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from dashboard.errors import AccessDenied, NotAuthenticated, NotFound
from dashboard.metrics.filters import Filters, add_months, parse_month

ROLES = ("admin", "practice_manager", "employer_admin")
AUDIENCES = ("practice", "employer", "admin")

_ROLE_AUDIENCES = {
    "admin": frozenset(AUDIENCES),
    "operator": frozenset(AUDIENCES),
    "practice_manager": frozenset({"practice"}),
    "employer_admin": frozenset({"employer"}),
}


@dataclass(frozen=True)
class Scope:
    role: str
    practice_ids: frozenset[str] | None  # None: all practices
    employer_ids: frozenset[str] | None  # None: all employers
    user_id: int | None = None
    email: str | None = None

    @property
    def deidentified(self) -> bool:
        """Employer users get suppressed aggregates only."""
        return self.role == "employer_admin"

    @property
    def full_access(self) -> bool:
        return self.role in ("admin", "operator")

    def can_view(self, audience: str) -> bool:
        return audience in _ROLE_AUDIENCES.get(self.role, frozenset())


OPERATOR = Scope(role="operator", practice_ids=None, employer_ids=None)


def scope_for(*, role: str, practice_ids: Iterable[str] = (), employer_ids: Iterable[str] = (),
              user_id: int | None = None, email: str | None = None) -> Scope:
    """The scope of a user with this role and these assignments. Unknown roles see nothing."""
    if role == "admin":
        return Scope(role, None, None, user_id, email)
    if role == "practice_manager":
        return Scope(role, frozenset(practice_ids), frozenset(), user_id, email)
    if role == "employer_admin":
        return Scope(role, frozenset(), frozenset(employer_ids), user_id, email)
    return Scope("none", frozenset(), frozenset(), user_id, email)


def current_scope() -> Scope:
    """The logged-in user's scope; raises NotAuthenticated without a session."""
    from flask_login import current_user

    if not getattr(current_user, "is_authenticated", False):
        raise NotAuthenticated("please log in")
    return current_user.scope()


def require_audience(scope: Scope, audience: str) -> None:
    if not scope.can_view(audience):
        raise AccessDenied("you do not have access to this page")


def require_claim_rows(scope: Scope) -> None:
    """Claim-level rows (claims, lines, payments: PHI) are for identified viewers of practices only."""
    require_audience(scope, "practice")
    if scope.deidentified:
        raise AccessDenied("this report is not available to de-identified viewers")


def _resolve(requested: Iterable[str] | str | None, allowed: frozenset[str] | None, known: set[str] | None,
             kind: str) -> tuple[str, ...] | None:
    if isinstance(requested, str):
        requested = [requested]
    wanted = [r.strip() for r in (requested or []) if r and r.strip()]
    if not wanted:
        return None if allowed is None else tuple(sorted(allowed))
    for item in wanted:
        if allowed is not None and item not in allowed:
            # Same answer whether the id exists or not: scoped users learn nothing about other tenants.
            raise AccessDenied(f"{kind} {item!r} is not in your access")
        if allowed is None and known is not None and item not in known:
            raise NotFound(f"unknown {kind} {item!r}")
    return tuple(dict.fromkeys(wanted))


def resolve_filters(scope: Scope, *, start: str | dt.date | None = None, end: str | dt.date | None = None,
                    practice: Iterable[str] | str | None = None, employer: Iterable[str] | str | None = None,
                    known_practices: set[str] | None = None, known_employers: set[str] | None = None,
                    default_end: dt.date | None = None, default_months: int = 12) -> Filters:
    """Validated filters restricted to the scope: months parsed, ids checked against the scope (and,
    for full-access callers, against the ids that exist)."""
    end_month = _month(end, "to") if end else (default_end or dt.date.today().replace(day=1))
    start_month = _month(start, "from") if start else add_months(end_month, -(default_months - 1))
    return Filters(
        start=start_month, end=end_month,
        practice_ids=_resolve(practice, scope.practice_ids, known_practices, "practice"),
        employer_ids=_resolve(employer, scope.employer_ids, known_employers, "employer"),
    )


def _month(value: str | dt.date, name: str) -> dt.date:
    if isinstance(value, dt.date):
        return value.replace(day=1)
    return parse_month(value, name=name)


def can_open_saved_report(scope: Scope, *, owner_id: int, shared: bool, employers: Iterable[str]) -> bool:
    """A saved report is its owner's; shared, also every user whose scope holds all its employers (the other
    users of the same employer); admins see all. Whoever opens it runs it under their own scope and suppression,
    so it can show them nothing they could not ask for themselves."""
    if scope.full_access or (scope.user_id is not None and scope.user_id == owner_id):
        return True
    employers = set(employers)
    return bool(shared and employers and scope.employer_ids is not None and employers <= scope.employer_ids
                and scope.can_view("employer"))
