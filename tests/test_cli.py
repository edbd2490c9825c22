"""The `dashboard` command: reports under a user's scope, users, bad input -> one clear line, non-zero."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys

import pytest

from tests.conftest import PASSWORD, USERS, make_app


@pytest.fixture
def env(tmp_path, fixture_warehouse_url):
    make_app(tmp_path, fixture_warehouse_url)  # creates the app DB with the test users
    return {**os.environ, "DASHBOARD_WAREHOUSE_URL": fixture_warehouse_url,
            "DASHBOARD_APP_DB_URL": f"sqlite:///{tmp_path / 'app.sqlite'}", "DASHBOARD_DATA_DIR": str(tmp_path),
            "DASHBOARD_SECRET_KEY": "cli-test"}


def run(env, *args, stdin: str | None = None):
    return subprocess.run([sys.executable, "-m", "dashboard.cli", *args], capture_output=True, text=True,
                          env=env, input=stdin, timeout=120)


def test_report_as_operator_to_stdout(env):
    done = run(env, "report", "practice-kpis", "--from", "2026-01", "--to", "2026-03")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert {r["practice_id"] for r in rows} == {"111111111", "222222222"}


def test_report_under_user_scope_and_privacy(env, tmp_path):
    out = tmp_path / "enrollment.csv"
    done = run(env, "report", "enrollment", "--user", USERS["employer"][0], "--from", "2026-01", "--to", "2026-03",
               "-o", str(out))
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(out.open()))
    assert {r["employer_id"] for r in rows} == {"GRP1"}
    assert all(r["members"] == "" for r in rows)  # 1..10 suppressed
    refused = run(env, "report", "enrollment", "--user", USERS["employer"][0], "--employer", "GRP2")
    assert refused.returncode == 4
    assert refused.stderr.strip() == "error: employer 'GRP2' is not in your access"
    assert refused.stdout == ""


@pytest.mark.parametrize(("args", "code", "message"), [
    (("report", "nope"), 3, "unknown report 'nope'"),
    (("report", "ar-aging", "--from", "26-01"), 2, "from must be a month written YYYY-MM"),
    (("report", "ar-aging", "--practice", "000"), 3, "unknown practice '000'"),
    (("report", "spend", "--employer", "NOPE"), 3, "unknown employer 'NOPE'"),
    (("report", "spend", "--user", "ghost@test.example"), 3, "no active user"),
])
def test_bad_input_one_line_nonzero(env, args, code, message):
    done = run(env, *args)
    assert done.returncode == code
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_missing_warehouse(env, tmp_path):
    done = run({**env, "DASHBOARD_WAREHOUSE_URL": f"duckdb:///{tmp_path / 'absent.duckdb'}"}, "report", "spend")
    assert done.returncode == 5
    assert "no warehouse" in done.stderr


def test_users_add_and_list(env):
    done = run(env, "users", "add", "new@test.example", "--role", "practice_manager", "--practice", "111111111",
               "--password-stdin", stdin="a long enough passphrase\n")
    assert done.returncode == 0, done.stderr
    listing = run(env, "users", "list").stdout
    assert "new@test.example" in listing
    assert "111111111" in listing


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (("--role", "superuser"), PASSWORD, "unknown role 'superuser'"),
    (("--role", "practice_manager", "--practice", "999"), PASSWORD, "unknown practice '999'"),
    (("--role", "practice_manager"), PASSWORD, "needs at least one --practice"),
    (("--role", "admin"), "password1234", "too common"),
    (("--role", "admin"), "short", "at least 12 characters"),
])
def test_users_add_rejects(env, args, stdin, message):
    done = run(env, "users", "add", "x@test.example", *args, "--password-stdin", stdin=stdin + "\n")
    assert done.returncode != 0
    assert message in done.stderr
    assert "x@test.example" not in run(env, "users", "list").stdout


def test_duplicate_user_is_refused(env):
    done = run(env, "users", "add", USERS["admin"][0], "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert done.returncode == 2
    assert "already exists" in done.stderr


def test_users_recovery_from_the_host(env, tmp_path, fixture_warehouse_url):
    """Unlock, reset MFA, set a password and deactivate from the CLI, each audited as 'cli'."""
    from dashboard.auth import service
    from tests.conftest import AuthActions

    app = make_app(tmp_path, fixture_warehouse_url)  # the same app DB the CLI uses
    engine = app.extensions["dashboard"].app_db
    email = USERS["practice"][0]
    browser = app.test_client()
    for _ in range(5):
        AuthActions(browser).login("practice", "not the password at all")
    assert AuthActions(browser).login("practice").status_code != 302  # locked
    assert run(env, "users", "unlock", email).returncode == 0
    assert AuthActions(browser).login("practice").status_code == 302

    user = service.get_user_by_email(engine, email=email)
    with engine.begin() as conn:  # as if enrolled: the reset must clear it
        conn.execute(service.users.update().where(service.users.c.id == user.id).values(mfa_enabled=True))
    done = run(env, "users", "reset-mfa", email)
    assert done.returncode == 0, done.stderr
    assert not service.get_user_by_email(engine, email=email).mfa_enabled
    assert browser.get("/practice").status_code == 302  # the reset ended the session

    weak = run(env, "users", "set-password", email, "--password-stdin", stdin="password1234\n")
    assert weak.returncode != 0
    assert "too common" in weak.stderr
    assert run(env, "users", "set-password", email).returncode != 0  # never on the command line
    new = "a brand new long passphrase"
    assert run(env, "users", "set-password", email, "--password-stdin", stdin=new + "\n").returncode == 0
    assert AuthActions(app.test_client()).login("practice").status_code == 401
    assert AuthActions(app.test_client()).login("practice", new).status_code == 302

    assert run(env, "users", "deactivate", email).returncode == 0
    assert AuthActions(app.test_client()).login("practice", new).status_code != 302
    assert "inactive" in next(line for line in run(env, "users", "list").stdout.splitlines() if email in line)

    ghost = run(env, "users", "unlock", "ghost@test.example")
    assert ghost.returncode == 3
    assert "no user 'ghost@test.example'" in ghost.stderr
    entries = service.audit_entries(engine)
    assert {"user.unlock", "mfa.reset", "password.set", "user.deactivate"} <= {e["action"] for e in entries}
    assert all(e["email"] == "cli" for e in entries if e["action"] in {"user.unlock", "mfa.reset", "user.deactivate"})


def test_payers_terms_set_list_and_clear(env, tmp_path, fixture_warehouse_url):
    """`dashboard payers set` records a payer's contract terms (on a copy: the shared warehouse stays as it is);
    the worklist counts with them; an unknown payer or a bad number is one line and nothing changes."""
    import shutil

    copy = tmp_path / "copy.duckdb"
    shutil.copy(fixture_warehouse_url.removeprefix("duckdb:///"), copy)
    env = {**env, "DASHBOARD_WAREHOUSE_URL": f"duckdb:///{copy}"}
    listed = run(env, "payers", "list")
    assert listed.returncode == 0, listed.stderr
    assert "ACME" in listed.stdout
    assert "default" in listed.stdout
    done = run(env, "payers", "set", "ACME", "--follow-up-days", "20")
    assert done.returncode == 0, done.stderr
    follow = run(env, "report", "ar-follow-up", "--from", "2026-01", "--to", "2026-03", "--practice", "111111111")
    assert sorted(r["claim_id"] for r in csv.DictReader(io.StringIO(follow.stdout))) == ["C4", "C6"]
    acme = next(line for line in run(env, "payers", "list").stdout.splitlines() if line.strip().startswith("ACME"))
    assert "contract" in acme
    for args, message in ((("payers", "set", "NOPE", "--appeal-days", "30"), "unknown payer 'NOPE'"),
                          (("payers", "set", "ACME", "--appeal-days", "0"), "appeal days must be from 1"),
                          (("payers", "set", "ACME"), "give --appeal-days")):
        refused = run(env, *args)
        assert refused.returncode != 0
        assert message in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    assert run(env, "payers", "set", "ACME", "--clear").returncode == 0
    follow = run(env, "report", "ar-follow-up", "--from", "2026-01", "--to", "2026-03", "--practice", "111111111")
    assert [r["claim_id"] for r in csv.DictReader(io.StringIO(follow.stdout))] == ["C4"]


def test_denial_risk_backtest_reports_each_practice(env):
    done = run(env, "denial-risk", "backtest")
    assert done.returncode == 0, done.stderr
    assert "payer-only AUC" in done.stdout
    assert "111111111  too little history to test" in done.stdout
    refused = run(env, "denial-risk", "backtest", "--practice", "000")
    assert refused.returncode == 3
    assert "unknown practice '000'" in refused.stderr


def test_fees_set_list_and_clear(env, tmp_path, fixture_warehouse_url):
    """`dashboard fees set` records a practice's own channel terms on a copy of the warehouse; bad input is one
    line and changes nothing."""
    import shutil

    copy = tmp_path / "copy.duckdb"
    shutil.copy(fixture_warehouse_url.removeprefix("duckdb:///"), copy)
    env = {**env, "DASHBOARD_WAREHOUSE_URL": f"duckdb:///{copy}"}
    assert "published (premium portal)" in run(env, "fees", "list").stdout
    done = run(env, "fees", "set", "111111111", "--rate", "0.004", "--cap", "0.30")
    assert done.returncode == 0, done.stderr
    report = run(env, "report", "payment-channel-fees", "--from", "2026-01", "--to", "2026-01", "--practice",
                 "111111111")
    assert [r["fee"] for r in csv.DictReader(io.StringIO(report.stdout))] == ["0.30"]
    for args, message in ((("fees", "set", "000", "--rate", "0.01", "--no-cap"), "unknown practice '000'"),
                          (("fees", "set", "111111111", "--rate", "2", "--no-cap"), "from 0 to 0.1"),
                          (("fees", "set", "111111111", "--rate", "0.01"), "give --cap or --no-cap")):
        refused = run(env, *args)
        assert refused.returncode != 0
        assert message in refused.stderr
    assert "practice's terms" in run(env, "fees", "list").stdout
    assert run(env, "fees", "set", "111111111", "--clear").returncode == 0
    assert "practice's terms" not in run(env, "fees", "list").stdout


def test_schedules_add_list_run_due_and_remove(env, tmp_path):
    """The operator's commands: a saved report scheduled to its owner is sent by run-due when due (--now), with the
    CSV attached, into the outbox; a bad frequency or an unknown saved report is one line and non-zero."""
    from dashboard import saved_reports
    from dashboard.auth import service
    from tests.conftest import make_app

    app = make_app(tmp_path, env["DASHBOARD_WAREHOUSE_URL"])
    db = app.extensions["dashboard"].app_db
    owner = service.get_user_by_email(db, email=USERS["employer"][0]).scope()
    saved = saved_reports.save(db, scope=owner, name="Monthly PMPM", report="builder",
                               options={"measure": "pmpm_paid", "by": "month"}, start=None, end=None, employers=[],
                               shared=False)
    added = run(env, "schedules", "add", "--saved", str(saved.id), "--to", USERS["employer"][0], "--every", "weekly")
    assert added.returncode == 0, added.stderr
    assert "'Monthly PMPM'" in added.stdout
    listed = run(env, "schedules", "list")
    assert "never sent" in listed.stdout
    assert run(env, "schedules", "run-due", "--now", "2026-01-01T00:00").stdout.strip() == "0 sent, 0 failed"
    due = run(env, "schedules", "run-due", "--now", "2099-01-05T07:00")
    assert due.returncode == 0, due.stderr
    assert due.stdout.strip() == "1 sent, 0 failed"
    [message] = sorted((tmp_path / "outbox").glob("*.eml"))
    assert b'filename="builder_' in message.read_bytes()
    assert "last sent 2099-01-05 07:00 UTC" in run(env, "schedules", "list").stdout
    bad = run(env, "schedules", "add", "--saved", "999", "--to", USERS["employer"][0], "--every", "weekly")
    assert bad.returncode != 0
    assert "unknown saved report" in bad.stderr
    assert run(env, "schedules", "add", "--saved", str(saved.id), "--to", USERS["employer"][0], "--every",
               "daily").returncode == 2
    schedule_id = listed.stdout.split("\t", 1)[0]
    assert run(env, "schedules", "remove", schedule_id).returncode == 0
    assert run(env, "schedules", "list").stdout.strip() == "no schedules"


def test_the_scheduler_process_sends_what_is_due_and_stops_on_sigterm(env, tmp_path):
    """`dashboard scheduler` (started by `make run` beside the web server) sends a due report within its interval
    and exits cleanly when stopped."""
    import datetime as dt
    import signal
    import time

    from dashboard import saved_reports, schedules
    from dashboard.auth import service
    from dashboard.auth.models import report_schedules
    from tests.conftest import make_app

    app = make_app(tmp_path, env["DASHBOARD_WAREHOUSE_URL"])
    db = app.extensions["dashboard"].app_db
    owner = service.get_user_by_email(db, email=USERS["employer"][0]).scope()
    saved = saved_reports.save(db, scope=owner, name="Weekly", report="builder", options={}, start=None, end=None,
                               employers=[], shared=False)
    schedule = schedules.add(db, saved_id=saved.id, recipient=USERS["employer"][0], frequency="weekly")
    with db.begin() as conn:  # due now
        conn.execute(report_schedules.update().values(next_run_at=dt.datetime(2020, 1, 6, 7)))
    process = subprocess.Popen([sys.executable, "-m", "dashboard.cli", "scheduler", "--interval", "5"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list((tmp_path / "outbox").glob("*.eml")):
            time.sleep(0.2)
        assert list((tmp_path / "outbox").glob("*.eml")), "the scheduler sent nothing"
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "1 sent, 0 failed" in err
    assert schedules.get(db, schedule_id=schedule.id).last_sent_at is not None
