"""Scheduled delivery of saved reports (issue 13 item 7), on DuckDB and PostgreSQL warehouses with SQLite and
PostgreSQL app databases: due reports reach the outbox with the CSV the recipient would download from the page
that day (the same suppressed cells), failures are retried and audited, and two schedulers never send one twice.
"""

from __future__ import annotations

import csv
import datetime as dt
import email
import io
import threading
from dataclasses import replace

import pytest

from dashboard import access, reports, saved_reports, schedules
from dashboard.auth import service
from dashboard.auth.models import report_schedules
from dashboard.errors import NotFound
from tests.conftest import PASSWORD, make_app, module_warehouse, new_pg_database
from tests.fixtures import load_privacy_fixture

D = dt.datetime
OPTIONS = {"measure": "pmpm_paid", "by": "service_category", "compare": "prior"}


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request, tmp_path_factory):
    yield from module_warehouse(request, tmp_path_factory, load_privacy_fixture)


@pytest.fixture
def setup(request, warehouse, tmp_path):
    """An app over the warehouse (its app DB on the warehouse's backend), a user of GRPA, one of GRPB, and GRPA's
    user's saved builder report."""
    drop = None
    if warehouse.dialect.name == "postgresql":
        app_db_url, drop = new_pg_database(request.getfixturevalue("pg_server"))
    else:
        app_db_url = f"sqlite:///{tmp_path / 'app.sqlite'}"
    app = make_app(tmp_path, warehouse.url.render_as_string(hide_password=False), app_db_url=app_db_url)
    services = app.extensions["dashboard"]
    db = services.app_db
    for name, group in (("a", "GRPA"), ("b", "GRPB")):
        service.create_user(db, email=f"{name}@grp.example", password=PASSWORD, role="employer_admin",
                            employers=(group,), actor="test")
    user = service.get_user_by_email(db, email="a@grp.example")
    saved = saved_reports.save(db, scope=user.scope(), name="PMPM by category", report="builder", options=OPTIONS,
                               start="2026-01", end="2026-03", employers=["GRPA"], shared=False)
    yield services, user, saved
    db.dispose()
    if drop:
        drop()


def _outbox(services) -> list[email.message.Message]:
    folder = services.settings.data_dir / "outbox"
    return [email.message_from_bytes(p.read_bytes()) for p in sorted(folder.glob("*.eml"))] if folder.exists() else []


def _attachment(message) -> tuple[str, bytes]:
    part = next(p for p in message.walk() if p.get_filename())
    return part.get_filename(), part.get_payload(decode=True)


def test_a_due_report_reaches_the_outbox_with_the_pages_suppressed_cells(setup):
    services, user, saved = setup
    db = services.app_db
    schedule = schedules.add(db, saved_id=saved.id, recipient="a@grp.example", frequency="weekly",
                             now=D(2026, 11, 30, 12))
    assert schedule.next_run_at == D(2026, 12, 7, 7)  # the next Monday, 07:00 UTC
    run = {"settings": services.settings, "engine": services.warehouse()}
    assert schedules.run_due(db, now=D(2026, 12, 7, 6, 59), **run) == schedules.RunSummary(0, 0)
    assert schedules.run_due(db, now=D(2026, 12, 7, 7), **run) == schedules.RunSummary(1, 0)
    [message] = _outbox(services)
    assert message["To"] == "a@grp.example"
    assert "PMPM by category" in message["Subject"]
    filename, content = _attachment(message)
    assert filename == "builder_2026-01_2026-03.csv"
    # exactly what the recipient downloads from the builder page today: the same rows, the same blanks
    page = reports.export_report("builder", scope=user.scope(), engine=services.warehouse(), start="2026-01",
                                 end="2026-03", employer=["GRPA"], options=OPTIONS)
    assert content == b"".join(page.body)
    rows = list(csv.DictReader(io.StringIO(content.decode())))
    shown = reports.run_report("builder", scope=user.scope(), engine=services.warehouse(), start="2026-01",
                               end="2026-03", employer=["GRPA"], options=OPTIONS).frame
    assert [r["group"] for r in rows] == shown["group"].tolist()
    blank = [r["group"] for r in rows if r["current"] == ""]
    assert blank == shown.loc[shown["current"].isna(), "group"].tolist()
    assert blank, "the fixture must suppress some cells for this test to mean anything"
    assert any(r["current"] for r in rows), "and publish others"
    # sent: the next one is a week later, and running again now sends nothing more
    assert schedules.get(db, schedule_id=schedule.id).next_run_at == D(2026, 12, 14, 7)
    assert schedules.run_due(db, now=D(2026, 12, 7, 7, 5), **run) == schedules.RunSummary(0, 0)
    assert "schedule.sent" in [e["action"] for e in service.audit_entries(db)]


def test_a_failed_send_is_retried_later_and_audited(setup):
    services, _user, saved = setup
    db = services.app_db
    schedule = schedules.add(db, saved_id=saved.id, recipient="a@grp.example", frequency="monthly",
                             now=D(2026, 11, 30, 12))
    assert schedule.next_run_at == D(2026, 12, 1, 7)
    unreachable = replace(services.settings, smtp_host="127.0.0.1", smtp_port=9)  # nothing listens there
    due = D(2026, 12, 1, 7)
    assert schedules.run_due(db, settings=unreachable, engine=services.warehouse(), now=due) == \
        schedules.RunSummary(0, 1)
    failed = schedules.get(db, schedule_id=schedule.id)
    assert (failed.failures, failed.next_run_at) == (1, due + dt.timedelta(minutes=15))
    assert failed.last_error
    entry = next(e for e in service.audit_entries(db) if e["action"] == "schedule.failed")
    assert '"failures": 1' in entry["detail"]
    # the retry, once the mail server is back, sends it and keeps the monthly rhythm
    later = due + dt.timedelta(minutes=15)
    assert schedules.run_due(db, settings=services.settings, engine=services.warehouse(), now=later) == \
        schedules.RunSummary(1, 0)
    sent = schedules.get(db, schedule_id=schedule.id)
    assert (sent.failures, sent.last_error, sent.next_run_at) == (0, None, D(2027, 1, 1, 7))
    assert len(_outbox(services)) == 1


def test_two_schedulers_at_once_send_a_due_report_once(setup):
    """Eight threads run the due schedules at the same moment: the conditional claim lets one send it."""
    services, _user, saved = setup
    db = services.app_db
    schedules.add(db, saved_id=saved.id, recipient="a@grp.example", frequency="weekly", now=D(2026, 11, 30, 12))
    start = threading.Barrier(8)
    results = []

    def scheduler():
        start.wait()
        results.append(schedules.run_due(db, settings=services.settings, engine=services.warehouse(),
                                         now=D(2026, 12, 7, 7)))

    threads = [threading.Thread(target=scheduler) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.sent for r in results) == 1
    assert sum(r.failed for r in results) == 0
    assert len(_outbox(services)) == 1


def test_only_a_recipient_who_may_open_the_report_gets_it(setup):
    """GRPB's user cannot open GRPA's user's private report: it cannot be scheduled to them; and when the
    recipient loses the employer, the send runs under their scope of that day and is refused, not sent."""
    services, _user, saved = setup
    db = services.app_db
    with pytest.raises(NotFound, match="unknown saved report"):
        schedules.add(db, saved_id=saved.id, recipient="b@grp.example", frequency="weekly")
    with pytest.raises(NotFound):
        schedules.add(db, saved_id=saved.id, recipient="nobody@grp.example", frequency="weekly")
    schedule = schedules.add(db, saved_id=saved.id, recipient="a@grp.example", frequency="weekly",
                             now=D(2026, 11, 30, 12))
    with db.begin() as conn:  # the recipient is moved to GRPB: the report is no longer theirs to receive
        from dashboard.auth.models import user_scopes

        user_id = service.get_user_by_email(db, email="a@grp.example").id
        conn.execute(user_scopes.update().where(user_scopes.c.user_id == user_id).values(scope_id="GRPB"))
    summary = schedules.run_due(db, settings=services.settings, engine=services.warehouse(), now=D(2026, 12, 7, 7))
    assert summary == schedules.RunSummary(0, 1)
    assert schedules.get(db, schedule_id=schedule.id).last_error == "employer 'GRPA' is not in your access"
    assert not _outbox(services)
    schedules.remove(db, schedule_id=schedule.id)
    with db.connect() as conn:
        assert conn.execute(report_schedules.select()).first() is None


def test_operator_scope_cannot_own_a_saved_report(setup):
    services, _user, _saved = setup
    with pytest.raises(Exception, match="belong to a user"):
        saved_reports.save(services.app_db, scope=access.OPERATOR, name="x", report="builder", options={},
                           start=None, end=None, employers=[], shared=False)


def test_a_report_shared_over_all_my_employers_names_them(setup):
    """Shared without an employer chosen ("all my employers"), a report is shared with the users who hold all of the
    owner's employers, not with nobody; private, it stays the owner's alone."""
    services, user, _saved = setup
    db = services.app_db
    shared = saved_reports.save(db, scope=user.scope(), name="All mine", report="builder", options={}, start=None,
                                end=None, employers=[], shared=True)
    assert shared.employers == ("GRPA",)
    service.create_user(db, email="a2@grp.example", password=PASSWORD, role="employer_admin", employers=("GRPA",),
                        actor="test")
    colleague = service.get_user_by_email(db, email="a2@grp.example").scope()
    assert saved_reports.get(db, scope=colleague, saved_id=shared.id).name == "All mine"
    other = service.get_user_by_email(db, email="b@grp.example").scope()
    with pytest.raises(NotFound):
        saved_reports.get(db, scope=other, saved_id=shared.id)
