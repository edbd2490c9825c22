"""Audit log tamper evidence (security review finding 9): the hash chain, `dashboard audit verify`, and on
PostgreSQL an app role that can only append to the audit log.

Each test runs on SQLite and on a new database on the real PostgreSQL (as conftest does). Tampering is done
the way a database owner would: drop the append-only triggers first, then change rows.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import uuid

import pytest
import sqlalchemy as sa

from dashboard.auth import service
from dashboard.auth.models import audit_log
from tests.conftest import new_pg_database

THREADS, APPENDS = 8, 25


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def app_db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'app.sqlite'}"
    else:
        url, drop = new_pg_database(request.getfixturevalue("pg_server"))
        yield url
        drop()


@pytest.fixture
def app_db(app_db_url):
    engine = sa.create_engine(app_db_url)
    service.create_tables(engine)
    yield engine
    engine.dispose()


def verify(engine, **kwargs):
    from dashboard.auth import audit_chain

    with engine.connect() as conn:
        return audit_chain.verify(conn, **kwargs)


def broken():
    from dashboard.errors import AuditChainBroken

    return AuditChainBroken


def rows(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(audit_log).order_by(audit_log.c.id)).mappings()]


def fill(engine, n: int = 6) -> list[dict]:
    for i in range(1, n + 1):
        service.audit(engine, f"test.action{i}", user_id=i, email=f"u{i}@test.example", ip="10.0.0.1",
                      detail={"n": i})
    return rows(engine)


def drop_triggers(engine) -> None:
    """What the owner (or a superuser) can do: the triggers are no obstacle to them."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_delete")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_change ON audit_log")


def where(row: dict) -> str:
    """How verify names a row: id, time, action."""
    return re.escape(f"row {row['id']} ({row['at'].isoformat(sep=' ', timespec='microseconds')}, {row['action']})")


COLUMNS = ("at", "user_id", "email", "action", "detail", "ip", "prev_hash", "row_hash")


def overwrite(conn, row_id: int, values: dict) -> None:
    conn.execute(audit_log.update().where(audit_log.c.id == row_id).values(**values))


# --- (a) concurrent appends ------------------------------------------------------------------------------

def test_concurrent_appends_keep_one_valid_chain(app_db):
    """Threads with their own connections (like gunicorn workers) append at once: one chain, no fork."""
    start = threading.Barrier(THREADS)
    errors = []

    def worker(t: int) -> None:
        try:
            start.wait()
            for i in range(APPENDS):
                service.audit(app_db, "test.concurrent", user_id=t, detail={"i": i})
        except Exception as exc:  # reported below; a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    log = rows(app_db)
    assert len(log) == THREADS * APPENDS
    # Checked here without verify(): each row links to the one before it, so no two rows share a parent.
    assert log[0]["prev_hash"] == "0" * 64
    assert all(b["prev_hash"] == a["row_hash"] for a, b in zip(log, log[1:], strict=False))
    assert len({r["prev_hash"] for r in log}) == len(log)
    report = verify(app_db)
    assert (report.rows, report.last_id, report.last_hash) == (len(log), log[-1]["id"], log[-1]["row_hash"])


# --- (b) tampering is detected and the first broken row named ------------------------------------------

def test_an_untouched_log_verifies(app_db):
    log = fill(app_db)
    report = verify(app_db)
    assert (report.rows, report.legacy_rows, report.last_id) == (6, 0, log[-1]["id"])


def test_editing_a_field_is_detected_at_that_row(app_db):
    log = fill(app_db)
    drop_triggers(app_db)
    with app_db.begin() as conn:
        overwrite(conn, log[2]["id"], {"email": "someone-else@test.example"})
    with pytest.raises(broken(), match=where(log[2]) + ".*content does not match"):
        verify(app_db)


def test_deleting_a_middle_row_is_detected_at_the_next_row(app_db):
    log = fill(app_db)
    drop_triggers(app_db)
    with app_db.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_log WHERE id = :id"), {"id": log[2]["id"]})
    with pytest.raises(broken(), match=where(log[3]) + ".*link to the previous row"):
        verify(app_db)


@pytest.mark.parametrize("with_hashes", [True, False], ids=["whole-rows", "content-only"])
def test_swapping_two_rows_is_detected_at_the_first(app_db, with_hashes):
    log = fill(app_db)
    drop_triggers(app_db)
    moved = COLUMNS if with_hashes else COLUMNS[:-2]
    a, b = log[1], log[3]
    with app_db.begin() as conn:
        overwrite(conn, a["id"], {c: b[c] for c in moved})
        overwrite(conn, b["id"], {c: a[c] for c in moved})
    swapped = {**a, "at": b["at"], "action": b["action"]}  # the row at a's id now shows b's time and action
    with pytest.raises(broken(), match=where(swapped)):
        verify(app_db)


def test_cutting_rows_off_the_end_is_detected_by_the_head(app_db):
    log = fill(app_db)
    drop_triggers(app_db)
    with app_db.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_log WHERE id >= :id"), {"id": log[4]["id"]})
    with pytest.raises(broken(), match=f"row {log[5]['id']}: the chain head names it.*removed from the end"):
        verify(app_db)


def test_a_row_written_around_the_chain_is_detected(app_db):
    log = fill(app_db)
    with app_db.begin() as conn:  # the triggers allow INSERT; only record() links a row into the chain
        conn.execute(sa.text("INSERT INTO audit_log (at, action) VALUES (:at, 'forged')"), {"at": log[0]["at"]})
    forged = rows(app_db)[-1]
    with pytest.raises(broken(), match=where(forged) + ".*no hash"):
        verify(app_db)


def test_a_rewrite_with_recomputed_hashes_is_caught_only_by_an_anchor_kept_outside(app_db):
    """The documented limit of a plain SHA-256 chain: an owner can recompute it. A head recorded earlier
    outside the database (printed by verify) catches that."""
    from dashboard.auth import audit_chain

    log = fill(app_db)
    anchor = (log[-1]["id"], log[-1]["row_hash"])
    drop_triggers(app_db)
    with app_db.begin() as conn:
        prev = log[1]["row_hash"]
        for row in log[2:]:
            row = {**row, "email": "rewritten@test.example"} if row is log[2] else row
            digest = audit_chain.row_hash(row, prev)
            overwrite(conn, row["id"], {"email": row["email"], "prev_hash": prev, "row_hash": digest})
            prev = digest
        conn.execute(sa.text("UPDATE audit_chain_head SET last_hash = :h"), {"h": prev})
    assert verify(app_db).rows == 6
    with pytest.raises(broken(), match=where(log[-1]) + ".*anchor recorded earlier"):
        verify(app_db, anchors=[anchor])


def test_legacy_rows_are_covered_from_the_upgrade_on(app_db_url):
    """An app DB from before the chain: its rows are never updated; the chain starts over them at the first
    start (hashed virtually into the head), and new rows link to that."""
    engine = sa.create_engine(app_db_url)
    old = sa.MetaData()
    old_audit = sa.Table("audit_log", old, sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                         sa.Column("at", sa.DateTime, nullable=False), sa.Column("user_id", sa.Integer),
                         sa.Column("email", sa.String(320)), sa.Column("action", sa.String(64), nullable=False),
                         sa.Column("detail", sa.Text), sa.Column("ip", sa.String(64)))
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(old_audit.insert(), [{"at": service.utcnow(), "action": f"old.action{i}", "email": "x@y.z"}
                                          for i in range(3)])
    try:
        from dashboard.errors import AuditNotReady

        with pytest.raises(AuditNotReady, match="no audit chain yet"):
            verify(engine)
        service.create_tables(engine)
        service.create_tables(engine)  # a second worker: the head is made once
        fill(engine, 2)
        report = verify(engine)
        assert (report.rows, report.legacy_rows) == (5, 3)
        log = rows(engine)
        assert [r["row_hash"] is None for r in log] == [True, True, True, False, False]
        drop_triggers(engine)
        with engine.begin() as conn:
            overwrite(conn, log[1]["id"], {"action": "old.rewritten"})
        with pytest.raises(broken(), match=where(log[3]) + ".*written before the chain began, were changed"):
            verify(engine)
    finally:
        engine.dispose()


# --- (c) the CLI ---------------------------------------------------------------------------------------------

def cli(app_db_url: str, tmp_path, *args):
    env = {**os.environ, "DASHBOARD_APP_DB_URL": app_db_url, "DASHBOARD_DATA_DIR": str(tmp_path),
           "DASHBOARD_WAREHOUSE_URL": f"duckdb:///{tmp_path / 'warehouse.duckdb'}",
           "DASHBOARD_SECRET_KEY": "cli-test"}
    return subprocess.run([sys.executable, "-m", "dashboard.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_cli_verify_prints_ok_or_names_the_broken_row_and_exits_non_zero(app_db, app_db_url, tmp_path):
    log = fill(app_db)
    done = cli(app_db_url, tmp_path, "audit", "verify")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: 6 rows\n")
    anchor = re.search(r"^head: (\d+:[0-9a-f]{64})", done.stdout, re.M).group(1)
    assert anchor == f"{log[-1]['id']}:{log[-1]['row_hash']}"
    assert cli(app_db_url, tmp_path, "audit", "verify", "--anchor", anchor).returncode == 0

    drop_triggers(app_db)
    with app_db.begin() as conn:
        overwrite(conn, log[2]["id"], {"detail": '{"n": 99}'})
    done = cli(app_db_url, tmp_path, "audit", "verify")
    assert done.returncode == 7
    assert done.stdout == ""
    assert re.fullmatch(r"error: audit chain broken at " + where(log[2]) + r": .*edited\n", done.stderr)
    # verify only reads: it did not put the dropped trigger back or otherwise repair what it checks
    with app_db.connect() as conn:
        assert conn.execute(sa.text("SELECT detail FROM audit_log WHERE id = :id"),
                            {"id": log[2]["id"]}).scalar() == '{"n": 99}'

    bad = cli(app_db_url, tmp_path, "audit", "verify", "--anchor", "nonsense")
    assert bad.returncode == 2
    assert "ID:HASH" in bad.stderr


# --- (d) PostgreSQL: the app role can only append ----------------------------------------------------------

REFUSED = [
    "UPDATE audit_log SET action = 'nothing happened'",
    "DELETE FROM audit_log",
    "TRUNCATE audit_log",
    "DROP TRIGGER audit_log_no_change ON audit_log",
    "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change",
    "ALTER TABLE audit_log ADD COLUMN note text",
    "DROP TABLE audit_log",
    "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RETURN NEW; END $$",
    "SET session_replication_role = replica",  # would skip the triggers
    "DELETE FROM audit_chain_head",
    "CREATE TABLE audit_log_copy (id integer)",
]


def _run_roles_script(admin_url: str, script: str) -> None:
    """Run the printed psql script: statements, and \\connect switching the database."""
    url = sa.make_url(admin_url)
    for i, part in enumerate(re.split(r"^\\connect (\S+)$", script, flags=re.M)):
        if i % 2:
            url = url.set(database=part.strip('"'))
            continue
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            for statement in part.split(";\n"):
                lines = [ln for ln in statement.splitlines() if ln.strip() and not ln.startswith("--")]
                if lines:
                    conn.exec_driver_sql("\n".join(lines).rstrip(";"))
        engine.dispose()


@pytest.mark.postgres
def test_the_app_role_can_append_to_the_audit_log_but_not_change_it(pg_server, tmp_path, fixture_warehouse_url):
    from tests.conftest import PASSWORD, USERS, AuthActions, make_app

    suffix = uuid.uuid4().hex[:10]
    owner, app_role, database = f"dash_owner_{suffix}", f"dash_app_{suffix}", f"dash_test_roles_{suffix}"
    admin = sa.create_engine(pg_server, isolation_level="AUTOCOMMIT")
    owner_url = sa.make_url(pg_server).set(username=owner, database=database).render_as_string(hide_password=False)
    app_url = sa.make_url(pg_server).set(username=app_role, database=database).render_as_string(hide_password=False)
    app = None
    try:
        script = cli(owner_url, tmp_path, "db", "roles", "--owner-role", owner, "--app-role", app_role,
                     "--database", database)
        assert script.returncode == 0, script.stderr
        _run_roles_script(pg_server, script.stdout)
        done = cli(owner_url, tmp_path, "db", "init", "--app-role", app_role)
        assert done.returncode == 0, done.stderr

        # The app as the app role: starts (it cannot install triggers, and need not), creates users, logs in.
        app = make_app(tmp_path, fixture_warehouse_url, app_db_url=app_url)
        engine = app.extensions["dashboard"].app_db
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT current_user").scalar() == app_role
        client = app.test_client()
        assert AuthActions(client).login("practice", PASSWORD).status_code == 302
        assert AuthActions(app.test_client()).login("practice", "wrong password entirely").status_code == 401
        actions = [e["action"] for e in service.audit_entries(engine)]
        assert actions[:2] == ["login.failure", "login.success"]
        assert actions.count("user.create") == len(USERS)
        before = service.audit_entries(engine)

        for statement in REFUSED:
            with pytest.raises(sa.exc.ProgrammingError) as refused, engine.begin() as conn:
                conn.exec_driver_sql(statement)
            assert refused.value.orig.sqlstate == "42501", (statement, refused.value.orig)  # insufficient_privilege
        assert service.audit_entries(engine) == before
        assert verify(engine).rows == len(before)

        # The owner's tampering is still caught; the app role's verify names the row.
        owner_engine = sa.create_engine(owner_url)
        with owner_engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_change ON audit_log")
            conn.exec_driver_sql("UPDATE audit_log SET ip = '1.2.3.4' WHERE action = 'login.success'")
        owner_engine.dispose()
        done = cli(app_url, tmp_path, "audit", "verify")
        assert done.returncode == 7
        assert "login.success): its content does not match its hash" in done.stderr
    finally:
        if app is not None:
            app.extensions["dashboard"].app_db.dispose()
            app.extensions["dashboard"].warehouse().dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            conn.execute(sa.text(f'DROP ROLE IF EXISTS "{app_role}"'))
            conn.execute(sa.text(f'DROP ROLE IF EXISTS "{owner}"'))
        admin.dispose()


@pytest.mark.postgres
def test_the_app_role_refuses_to_start_on_an_unprotected_log(pg_server, tmp_path):
    """If the owner dropped the triggers, the app role cannot put them back: it says so instead of running."""
    from dashboard.auth import audit_chain

    url, drop = new_pg_database(pg_server)
    suffix = uuid.uuid4().hex[:10]
    app_role = f"dash_app_{suffix}"
    admin = sa.create_engine(pg_server, isolation_level="AUTOCOMMIT")
    owner_engine = sa.create_engine(url)
    app_engine = sa.create_engine(sa.make_url(url).set(username=app_role))
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE ROLE "{app_role}" LOGIN')
        service.create_tables(owner_engine)
        with owner_engine.begin() as conn:
            audit_chain.grant_app_role(conn, app=app_role)
        service.create_tables(app_engine)  # protected: starts
        with owner_engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_change ON audit_log")
        with pytest.raises(audit_chain.AuditNotReady, match="audit_log_no_change"):
            service.create_tables(app_engine)
    finally:
        app_engine.dispose()
        owner_engine.dispose()
        drop()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{app_role}"')
        admin.dispose()
