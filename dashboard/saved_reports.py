"""Saved reports: a user's builder report (its options, period and employers) kept by name, reopened by URL,
shared with the other users of the same employer, and delivered by :mod:`dashboard.schedules`.

Who may open one is :func:`dashboard.access.can_open_saved_report`; whoever opens it runs it under their own
scope through :func:`dashboard.reports.run_report`, so a saved report never carries data, only the question.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from urllib.parse import urlencode

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard import access, reports
from dashboard.auth import service
from dashboard.auth.models import saved_reports, users, utcnow
from dashboard.errors import BadInput, NotFound
from dashboard.metrics.filters import parse_month

NAME_MAX = 120
UNKNOWN = "unknown saved report"  # the same words for another user's private report and for none at all


@dataclass(frozen=True)
class SavedReport:
    id: int
    owner_id: int
    owner_email: str
    name: str
    report: str
    options: dict[str, str]
    start: str | None  # None with end: the report's default period when run (a rolling report)
    end: str | None
    employers: tuple[str, ...]  # () = all of the viewer's
    shared: bool
    created_at: dt.datetime

    @property
    def href(self) -> str:
        return f"/employer/builder?saved={self.id}"

    @property
    def period(self) -> str:
        return f"{self.start}..{self.end}" if self.start else "rolling (the latest complete months)"

    def query(self) -> dict[str, str]:
        """The builder page's URL parameters for this report."""
        params = {**self.options, **({"from": self.start, "to": self.end} if self.start else {})}
        if len(self.employers) == 1:
            params["employer"] = self.employers[0]
        return params

    def builder_href(self) -> str:
        return "/employer/builder?" + urlencode(self.query())


def _row(row) -> SavedReport:
    return SavedReport(id=row.id, owner_id=row.owner_id, owner_email=row.email, name=row.name, report=row.report,
                       options=json.loads(row.options), start=row.start_month, end=row.end_month,
                       employers=tuple(json.loads(row.employers)), shared=bool(row.shared),
                       created_at=row.created_at)


def _select():
    return (sa.select(saved_reports, users.c.email)
            .join(users, users.c.id == saved_reports.c.owner_id).order_by(saved_reports.c.name, saved_reports.c.id))


def save(app_db: Engine, *, scope: access.Scope, name: str, report: str, options: dict[str, str],
         start: str | None, end: str | None, employers: list[str] | tuple[str, ...], shared: bool) -> SavedReport:
    """Keep ``report`` with its options, period (both months, or neither for a rolling one) and employers under
    ``name`` for the user of ``scope``. Everything is checked as if it were run now: a report, option, month or
    employer the user may not ask for is refused, and nothing is saved."""
    if scope.user_id is None:
        raise BadInput("saved reports belong to a user: run this with --user")
    definition = reports.get_report(report)
    access.require_audience(scope, definition.audience)
    employers = sorted(set(employers))
    for employer in employers:  # the scope first: another tenant's id reads as unknown before anything else
        if scope.employer_ids is not None and employer not in scope.employer_ids:
            raise NotFound("unknown employer")
    if shared and not employers and scope.employer_ids is not None:
        # "all my employers", shared: with the users who hold all of them (an empty list would share with nobody)
        employers = sorted(scope.employer_ids)
    chosen = dict(reports.resolve_options(definition, options))
    name = " ".join((name or "").split())
    if not name or len(name) > NAME_MAX:
        raise BadInput(f"a saved report needs a name of 1 to {NAME_MAX} characters")
    if bool(start) != bool(end):
        raise BadInput("give both months of the period, or neither for a rolling one")
    if start and parse_month(start, name="from") > parse_month(end, name="to"):
        raise BadInput(f"'to' ({end}) is before 'from' ({start})")
    with app_db.begin() as conn:
        new_id = conn.execute(saved_reports.insert().values(
            owner_id=scope.user_id, name=name, report=report, options=json.dumps(chosen, sort_keys=True),
            start_month=start or None, end_month=end or None, employers=json.dumps(employers), shared=bool(shared),
            created_at=utcnow())).inserted_primary_key[0]
    service.audit(app_db, "saved_report.create", user_id=scope.user_id, email=scope.email,
                  detail={"id": new_id, "report": report, "options": chosen, "shared": bool(shared),
                          "employers": employers})
    return get(app_db, scope=scope, saved_id=new_id)


def visible(app_db: Engine, *, scope: access.Scope) -> list[SavedReport]:
    """The saved reports ``scope`` may open: its own, and those shared with it."""
    with app_db.connect() as conn:
        rows = [_row(r) for r in conn.execute(_select())]
    return [r for r in rows if access.can_open_saved_report(scope, owner_id=r.owner_id, shared=r.shared,
                                                            employers=r.employers)]


def get(app_db: Engine, *, scope: access.Scope, saved_id: int | str) -> SavedReport:
    try:
        key = int(saved_id)
    except (TypeError, ValueError):
        raise NotFound(UNKNOWN) from None
    with app_db.connect() as conn:
        row = conn.execute(_select().where(saved_reports.c.id == key)).first()
    if row is None:
        raise NotFound(UNKNOWN)
    saved = _row(row)
    if not access.can_open_saved_report(scope, owner_id=saved.owner_id, shared=saved.shared,
                                        employers=saved.employers):
        raise NotFound(UNKNOWN)
    return saved


def delete(app_db: Engine, *, scope: access.Scope, saved_id: int | str) -> None:
    """Its owner (or an admin) deletes a saved report, and its schedules with it; to anyone else it is unknown."""
    saved = get(app_db, scope=scope, saved_id=saved_id)
    if not (scope.full_access or saved.owner_id == scope.user_id):
        raise NotFound(UNKNOWN)
    from dashboard.auth.models import report_schedules

    with app_db.begin() as conn:
        conn.execute(report_schedules.delete().where(report_schedules.c.saved_report_id == saved.id))
        conn.execute(saved_reports.delete().where(saved_reports.c.id == saved.id))
    service.audit(app_db, "saved_report.delete", user_id=scope.user_id, email=scope.email,
                  detail={"id": saved.id, "report": saved.report})


def run(saved: SavedReport, *, scope: access.Scope, engine: Engine, cache=None) -> reports.ReportResult:
    """The report as ``scope`` may see it now (its own access and suppression)."""
    return reports.run_report(saved.report, scope=scope, engine=engine, start=saved.start, end=saved.end,
                              employer=list(saved.employers) or None, options=saved.options, cache=cache)


def export(saved: SavedReport, *, scope: access.Scope, engine: Engine, cache=None) -> reports.ReportExport:
    return reports.export_report(saved.report, scope=scope, engine=engine, start=saved.start, end=saved.end,
                                 employer=list(saved.employers) or None, options=saved.options, cache=cache)
