"""Scheduled delivery of saved reports (issue 13 item 7): weekly or monthly, by e-mail with the CSV attached.

Each send runs the saved report at send time under the *recipient's* scope and suppression
(:func:`dashboard.saved_reports.export`), so a mailed CSV holds exactly what that user would download from the
page that day. Due schedules are sent by ``dashboard schedules run-due`` (operators, tests) and by the
``dashboard scheduler`` process that ``make run`` starts beside the web server. A schedule is claimed with one
conditional UPDATE before it is sent, so two schedulers (or a scheduler and an operator) never send it twice;
a failed send is retried with a growing delay (15 minutes, doubling, at most a day) and every send and failure
is audited.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard import access, saved_reports
from dashboard.auth import mail, service
from dashboard.auth.models import report_schedules, users, utcnow
from dashboard.auth.models import saved_reports as saved_table
from dashboard.config import Settings
from dashboard.errors import BadInput, DashboardError, NotFound

log = logging.getLogger(__name__)

FREQUENCIES = ("weekly", "monthly")
SEND_HOUR = 7  # UTC: before the working day in the US
CLAIM = dt.timedelta(minutes=10)  # a send taking longer is assumed dead and may be claimed again
FIRST_RETRY, LAST_RETRY = dt.timedelta(minutes=15), dt.timedelta(days=1)


@dataclass(frozen=True)
class Schedule:
    id: int
    saved_report_id: int
    saved_report_name: str
    recipient: str
    frequency: str
    next_run_at: dt.datetime
    last_sent_at: dt.datetime | None
    failures: int
    last_error: str | None


@dataclass(frozen=True)
class RunSummary:
    sent: int
    failed: int


def next_run(frequency: str, after: dt.datetime) -> dt.datetime:
    """The first send time after ``after``: Mondays (weekly) or the 1st of a month (monthly) at SEND_HOUR UTC."""
    if frequency == "weekly":
        day = after.date() + dt.timedelta(days=(7 - after.weekday()) % 7)
        when = dt.datetime.combine(day, dt.time(SEND_HOUR))
        return when if when > after else when + dt.timedelta(days=7)
    if frequency == "monthly":
        first = after.date().replace(day=1)
        when = dt.datetime.combine(first, dt.time(SEND_HOUR))
        if when > after:
            return when
        following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return dt.datetime.combine(following, dt.time(SEND_HOUR))
    raise BadInput(f"frequency must be one of {', '.join(FREQUENCIES)}, got {frequency!r}")


def _recipient(app_db: Engine, email: str):
    user = service.get_user_by_email(app_db, email=email)
    if user is None or not user.is_active:
        raise NotFound(f"no active user {email!r}")
    return user


def add(app_db: Engine, *, saved_id: int, recipient: str, frequency: str, now: dt.datetime | None = None,
        actor: access.Scope = access.OPERATOR) -> Schedule:
    """Send saved report ``saved_id`` to ``recipient`` (an active user who may open it) ``frequency``."""
    now = now or utcnow()
    user = _recipient(app_db, recipient)
    saved_reports.get(app_db, scope=user.scope(), saved_id=saved_id)  # the recipient may open it, else unknown
    first = next_run(frequency, now)
    with app_db.begin() as conn:
        new_id = conn.execute(report_schedules.insert().values(
            saved_report_id=int(saved_id), recipient_id=user.id, frequency=frequency, next_run_at=first, failures=0,
            created_at=now)).inserted_primary_key[0]
    service.audit(app_db, "schedule.create", user_id=actor.user_id, email=actor.email or "operator",
                  detail={"schedule": new_id, "saved_report": int(saved_id), "recipient_id": user.id,
                          "frequency": frequency})
    return get(app_db, schedule_id=new_id)


def _select():
    return (sa.select(report_schedules, saved_table.c.name, users.c.email)
            .join(saved_table, saved_table.c.id == report_schedules.c.saved_report_id)
            .join(users, users.c.id == report_schedules.c.recipient_id)
            .order_by(report_schedules.c.next_run_at, report_schedules.c.id))


def _schedule(row) -> Schedule:
    return Schedule(id=row.id, saved_report_id=row.saved_report_id, saved_report_name=row.name, recipient=row.email,
                    frequency=row.frequency, next_run_at=row.next_run_at, last_sent_at=row.last_sent_at,
                    failures=row.failures, last_error=row.last_error)


def get(app_db: Engine, *, schedule_id: int | str) -> Schedule:
    try:
        key = int(schedule_id)
    except (TypeError, ValueError):
        raise NotFound(f"no schedule {schedule_id!r}") from None
    with app_db.connect() as conn:
        row = conn.execute(_select().where(report_schedules.c.id == key)).first()
    if row is None:
        raise NotFound(f"no schedule {schedule_id}")
    return _schedule(row)


def list_all(app_db: Engine) -> list[Schedule]:
    with app_db.connect() as conn:
        return [_schedule(r) for r in conn.execute(_select())]


def for_recipient(app_db: Engine, *, scope: access.Scope) -> list[Schedule]:
    """The deliveries to the user of ``scope``."""
    with app_db.connect() as conn:
        return [_schedule(r) for r in conn.execute(_select().where(report_schedules.c.recipient_id == scope.user_id))]


def remove(app_db: Engine, *, schedule_id: int, actor: access.Scope = access.OPERATOR) -> None:
    """An operator or admin removes any schedule; a user only the deliveries to them (any other is unknown)."""
    schedule = get(app_db, schedule_id=schedule_id)
    if not actor.full_access and (actor.email is None or schedule.recipient != actor.email):
        raise NotFound(f"no schedule {schedule_id}")
    with app_db.begin() as conn:
        conn.execute(report_schedules.delete().where(report_schedules.c.id == schedule.id))
    service.audit(app_db, "schedule.remove", user_id=actor.user_id, email=actor.email or "operator",
                  detail={"schedule": schedule.id})


def _claim(app_db: Engine, schedule_id: int, now: dt.datetime) -> bool:
    """Take a due schedule for this process: one conditional UPDATE, so of two schedulers only one succeeds."""
    s = report_schedules
    with app_db.begin() as conn:
        taken = conn.execute(s.update().where(
            s.c.id == schedule_id, s.c.next_run_at <= now,
            sa.or_(s.c.claimed_until.is_(None), s.c.claimed_until < now)).values(claimed_until=now + CLAIM))
    return taken.rowcount == 1


def _due(app_db: Engine, now: dt.datetime) -> list[int]:
    s = report_schedules
    with app_db.connect() as conn:
        return list(conn.execute(sa.select(s.c.id).where(s.c.next_run_at <= now).order_by(s.c.next_run_at, s.c.id))
                    .scalars())


def run_due(app_db: Engine, *, settings: Settings, engine: Engine, now: dt.datetime | None = None) -> RunSummary:
    """Send every due schedule this process can claim; returns how many were sent and how many failed."""
    now = now or utcnow()
    sent = failed = 0
    for schedule_id in _due(app_db, now):
        if not _claim(app_db, schedule_id, now):
            continue
        schedule = get(app_db, schedule_id=schedule_id)
        try:
            rows = _send(app_db, schedule, settings=settings, engine=engine)
        except Exception as exc:  # noqa: BLE001 - any failure is recorded, retried and audited, never fatal
            log.debug("schedule %s failed", schedule_id, exc_info=True)
            failed += 1
            _failed(app_db, schedule, now, exc)
        else:
            sent += 1
            _sent(app_db, schedule, now, rows)
    return RunSummary(sent, failed)


def _send(app_db: Engine, schedule: Schedule, *, settings: Settings, engine: Engine) -> int:
    user = _recipient(app_db, schedule.recipient)
    scope = user.scope()  # the recipient's access and suppression, today
    saved = saved_reports.get(app_db, scope=scope, saved_id=schedule.saved_report_id)
    export = saved_reports.export(saved, scope=scope, engine=engine)
    content = b"".join(export.body)
    period = f"{export.filters.start:%Y-%m}..{export.filters.end:%Y-%m}"
    link = f"{settings.public_url.rstrip('/')}{saved.href}" if settings.public_url else None  # never the Host
    lines = [f"Your {schedule.frequency} report \"{saved.name}\" for {period} is attached as CSV ({export.rows} rows)."]
    if link:
        lines.append(f"Open it in the dashboard: {link}")
    if scope.deidentified:
        lines.append("Figures are de-identified aggregates: cells of 1 to 10 people, and any cell that would reveal "
                     "one, are left blank, as on the page.")
    body = "\n\n".join(lines) + "\n"
    filename = f"{saved.report}_{period.replace('..', '_')}.csv"
    mail.send_mail(settings, to=user.email, subject=f"Report: {saved.name} ({period})", body=body,
                   attachments=((filename, content, "text/csv"),))
    return export.rows


def _sent(app_db: Engine, schedule: Schedule, now: dt.datetime, rows: int) -> None:
    due = schedule.next_run_at
    while due <= now:  # a scheduler that was down sends once, then keeps the rhythm
        due = next_run(schedule.frequency, due)
    with app_db.begin() as conn:
        conn.execute(report_schedules.update().where(report_schedules.c.id == schedule.id).values(
            last_sent_at=now, next_run_at=due, failures=0, last_error=None, claimed_until=None))
    service.audit(app_db, "schedule.sent", email="scheduler", detail={
        "schedule": schedule.id, "saved_report": schedule.saved_report_id, "rows": rows})


def _failed(app_db: Engine, schedule: Schedule, now: dt.datetime, exc: Exception) -> None:
    failures = schedule.failures + 1
    delay = min(FIRST_RETRY * 2 ** (failures - 1), LAST_RETRY)
    # our own errors say what is wrong in words; anything else by its type only (its text may hold anything)
    reason = str(exc) if isinstance(exc, DashboardError) else type(exc).__name__
    with app_db.begin() as conn:
        conn.execute(report_schedules.update().where(report_schedules.c.id == schedule.id).values(
            failures=failures, last_error=reason[:500], next_run_at=now + delay, claimed_until=None))
    log.warning("schedule %s failed (%s); retry in %s", schedule.id, reason, delay)
    service.audit(app_db, "schedule.failed", email="scheduler", detail={
        "schedule": schedule.id, "saved_report": schedule.saved_report_id, "failures": failures, "error": reason[:200],
        "retry_at": (now + delay).isoformat(timespec="minutes")})
