"""Security review, issue 9: findings 5-8, each tested as a class of hole.

5. Reset links come from configuration (DASHBOARD_PUBLIC_URL) only, never from the request's Host header.
6. Every file and directory the app, the CLI and the loaders create is private (600 / 700).
7. The login gate decides on the canonical path: no encoding or dot segment reaches a page without a login.
8. "Data as of" (navbar, default report period) only tells a user about loads within their own scope.

Tests that touch the app DB or the warehouse run on DuckDB with a SQLite app DB and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import email
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from dashboard import access, reports
from dashboard.auth import models, service
from dashboard.config import load_settings
from dashboard.errors import BadInput
from dashboard.warehouse import schema as s
from dashboard.warehouse.engine import writer_engine
from dashboard.warehouse.loaders.run import run_load
from tests.conftest import REPO, USERS, make_app, new_pg_database
from tests.fixtures import load_employer_fixture, load_practice_fixture
from tests.test_load_tuva import write_csv
from tests.test_load_x12 import ENROLL_834, MANAGED, variant
from tests.test_security import ADMIN_BUTTONS, ADMIN_FIELDS, dash_post, form_post, logged_in, server_callbacks

P1, P2, E1 = "111111111", "222222222", "GRP1"
ATTACKER = "attacker.example"
PUBLIC = "https://claims.example.org"


@pytest.fixture
def app_db_url(request, warehouse_url, tmp_path):
    """The app DB on the warehouse's backend: SQLite beside DuckDB, its own PostgreSQL database beside
    PostgreSQL."""
    if warehouse_url.startswith("postgresql"):
        url, drop = new_pg_database(request.getfixturevalue("pg_server"))
        yield url
        drop()
    else:
        yield f"sqlite:///{tmp_path / 'app.sqlite'}"


@pytest.fixture
def build(tmp_path, warehouse_url, app_db_url):
    """Apps over the test's warehouse (with the two hand-built fixtures) and app DB."""
    engine = writer_engine(warehouse_url)
    load_practice_fixture(engine)
    load_employer_fixture(engine)
    engine.dispose()
    apps = []

    def make(**overrides):
        app = make_app(tmp_path, warehouse_url, app_db_url=app_db_url, **overrides)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["dashboard"].app_db.dispose()
        app.extensions["dashboard"].warehouse().dispose()


def outbox(app) -> list[str]:
    folder = app.extensions["dashboard"].settings.data_dir / "outbox"
    return [email.message_from_bytes(p.read_bytes()).get_payload(decode=True).decode()
            for p in sorted(folder.glob("*.eml"))] if folder.exists() else []


def reset_rows(app) -> int:
    with app.extensions["dashboard"].app_db.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(models.password_resets)).scalar_one()


def from_attacker_host(app):
    """Every request of the app's test clients (session cookies included) carries Host: attacker.example,
    as a request whose Host header the attacker wrote."""
    app.config["SERVER_NAME"] = ATTACKER
    return app


def admin_action(client, app, button: str, **form):
    """tests.test_security.admin_action, with the CSRF cookie of whichever host the client talks to."""
    key, spec = next((k, v) for k, v in server_callbacks(app).items() if "admin-feedback.children" in k)
    values = {f"{b}.n_clicks": (1 if b == button else None) for b in ADMIN_BUTTONS}
    values.update({f"{ADMIN_FIELDS[name]}.value": value for name, value in form.items()})
    cookie = client.get_cookie("_csrf_token", domain=app.config.get("SERVER_NAME") or "localhost")
    return dash_post(client, key, spec, values, changed=[f"{button}.n_clicks"],
                     headers={"X-CSRFToken": cookie.value if cookie else ""})


def feedback(response) -> str:
    return str(response.get_json()["response"]["admin-feedback"]["children"])


# --- finding 5: reset-link poisoning --------------------------------------------------------------

def test_reset_links_come_from_configuration_never_from_the_host_header(build):
    app = from_attacker_host(build(public_url=None))
    client = app.test_client()
    page = client.get("/forgot")
    assert page.status_code == 503
    assert "DASHBOARD_PUBLIC_URL" in page.get_data(as_text=True)
    known = form_post(client, "/forgot", {"email": USERS["practice"][0]})
    unknown = form_post(client, "/forgot", {"email": "nobody@test.example"})
    assert known.status_code == unknown.status_code == 503
    assert known.get_data(as_text=True) == unknown.get_data(as_text=True)  # no account enumeration
    assert outbox(app) == []
    assert reset_rows(app) == 0
    # Configured, the link takes its base from the configuration whatever the request's headers say.
    app = from_attacker_host(build(public_url=PUBLIC + "/"))
    client = app.test_client()
    sent = form_post(client, "/forgot", {"email": USERS["practice"][0]},
                     headers={"X-Forwarded-Host": ATTACKER, "Forwarded": f"host={ATTACKER}"})
    assert sent.status_code == 200
    [body] = outbox(app)
    assert re.search(rf"^{re.escape(PUBLIC)}/reset/[\w-]+$", body, re.MULTILINE)
    assert ATTACKER not in body


def test_admin_links_and_invitations_follow_the_same_rule(build):
    app = from_attacker_host(build(public_url=None))
    admin = logged_in(app, "admin")
    target = service.get_user_by_email(app.extensions["dashboard"].app_db, email=USERS["practice"][0])
    sent = admin_action(admin, app, "admin-send-link", user_id=target.id)
    assert "DASHBOARD_PUBLIC_URL" in feedback(sent)
    invite = admin_action(admin, app, "admin-create", email="invited@test.example", new_role="employer_admin",
                          new_employers=[E1], invite=True)
    assert "DASHBOARD_PUBLIC_URL" in feedback(invite)
    # No account nobody could log in to, no mail, no token.
    assert service.get_user_by_email(app.extensions["dashboard"].app_db, email="invited@test.example") is None
    assert outbox(app) == []
    assert reset_rows(app) == 0

    configured = from_attacker_host(build(public_url=PUBLIC))
    admin = logged_in(configured, "admin")
    admin_action(admin, configured, "admin-send-link", user_id=target.id)
    admin_action(admin, configured, "admin-create", email="invited@test.example", new_role="employer_admin",
                 new_employers=[E1], invite=True)
    bodies = outbox(configured)
    assert len(bodies) == 2
    assert all(f"{PUBLIC}/reset/" in b and ATTACKER not in b for b in bodies)


@pytest.mark.parametrize("value", ["attacker.example", "javascript:alert(1)", "https://", "https://x.org/?a=b",
                                   "https://user:pw@x.org"])
def test_a_public_url_that_is_not_a_plain_http_base_is_refused(monkeypatch, tmp_path, value):
    monkeypatch.setenv("DASHBOARD_PUBLIC_URL", value)
    with pytest.raises(BadInput, match="DASHBOARD_PUBLIC_URL"):
        load_settings({"data_dir": tmp_path, "secret_key": "k"})


def test_make_run_sets_a_loopback_public_url(tmp_path):
    probe = tmp_path / "probe.mk"
    probe.write_text(f"include {REPO / 'Makefile'}\nprobe: export PORT := $(PORT)\n"
                     "probe: export DASHBOARD_PUBLIC_URL := $(DASHBOARD_PUBLIC_URL)\n"
                     "probe:\n\t@echo \"$$DASHBOARD_PUBLIC_URL\"\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DASHBOARD_PUBLIC_URL", "PORT", "MAKEFLAGS")}

    def run(**extra):
        return subprocess.run(["make", "-s", "-C", str(REPO), "-f", str(probe), "probe"], env={**env, **extra},
                              capture_output=True, text=True, check=True).stdout.strip()

    assert run() == "http://127.0.0.1:8050"
    assert run(PORT="9000") == "http://127.0.0.1:9000"
    assert run(DASHBOARD_PUBLIC_URL=PUBLIC) == PUBLIC
    # and `make run` exports it to the server it starts
    assert re.search(r"^run: export DASHBOARD_PUBLIC_URL", (REPO / "Makefile").read_text(), re.MULTILINE)


# --- finding 6: private files ---------------------------------------------------------------------

@pytest.fixture
def lax_umask():
    """Start from the common 022 (files 644) and put the test process's umask back afterwards."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _modes(directory: Path) -> dict[str, str]:
    found = {".": oct(stat.S_IMODE(directory.stat().st_mode))}
    for path in directory.rglob("*"):
        found[str(path.relative_to(directory))] = oct(stat.S_IMODE(path.lstat().st_mode))
    return found


def test_every_file_the_app_writes_is_private(tmp_path, monkeypatch, lax_umask):
    data = tmp_path / "data"
    url = f"duckdb:///{data / 'warehouse.duckdb'}"
    monkeypatch.setenv("DASHBOARD_DATA_DIR", str(data))
    for name in ("DASHBOARD_WAREHOUSE_URL", "DASHBOARD_APP_DB_URL", "DASHBOARD_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    from dashboard.cli import cli

    # The CLI: data dir, secret key, demo warehouse (built beside and renamed), app DB, demo accounts.
    done = CliRunner().invoke(cli, ["demo", "--claims", "1000", "--quiet"], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    # A load (copy, write, rename) and a left-behind lock, under a lax umask as a library caller has.
    os.umask(0o022)
    run_load(url, fmt="x12-835", paths=[MANAGED])
    # The web app, created by another embedding process with a lax umask: the reset mail in the outbox.
    os.umask(0o022)
    app = make_app(data, url, app_db_url=f"sqlite:///{data / 'app.sqlite'}")
    client = app.test_client()
    form_post(client, "/forgot", {"email": USERS["practice"][0]})
    assert len(outbox(app)) == 1
    app.extensions["dashboard"].app_db.dispose()
    modes = _modes(data)
    assert {"warehouse.duckdb", "app.sqlite", "secret_key", "demo-accounts.txt", "outbox"} <= set(modes)
    wrong = {name: mode for name, mode in modes.items()
             if mode != ("0o700" if (data / name).is_dir() else "0o600")}
    assert wrong == {}


def test_start_up_repairs_files_an_older_version_left_readable(tmp_path, lax_umask, caplog):
    (tmp_path / "outbox").mkdir(mode=0o755)
    for name in ("app.sqlite", "secret_key", "demo-accounts.txt", "outbox/old.eml", ".warehouse.duckdb.lock"):
        (tmp_path / name).write_text("x" if name != "app.sqlite" else "")
        os.chmod(tmp_path / name, 0o644)
    os.chmod(tmp_path, 0o755)  # noqa: S103 (what an older version left)
    engine = writer_engine(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    engine.dispose()
    os.chmod(tmp_path / "warehouse.duckdb", 0o644)
    app = make_app(tmp_path, f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    app.extensions["dashboard"].app_db.dispose()
    modes = _modes(tmp_path)
    assert {name: mode for name, mode in modes.items()
            if mode != ("0o700" if (tmp_path / name).is_dir() else "0o600")} == {}
    assert "readable by other accounts" in caplog.text


def test_an_uploaded_file_is_private(tmp_path, lax_umask):
    import base64
    import sys

    make_app(tmp_path, f"duckdb:///{tmp_path / 'warehouse.duckdb'}").extensions["dashboard"].app_db.dispose()
    os.umask(0o022)
    upload = "data:text/plain;base64," + base64.b64encode(b"ISA*").decode()
    [path] = sys.modules["pages.loads"]._save_uploads([upload], ["a.835"], tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# --- finding 7: the gate decides on the canonical path --------------------------------------------

ENCODED_PATHS = [
    "/assets/vendor/%2e%2e/app.css", "/assets/vendor/%2E%2E/app.css", "/assets/vendor/.%2e/app.css",
    "/assets/vendor/..%2fapp.css", "/assets/vendor/..%2Fapp.css", "/assets/vendor/%2e%2e%2fapp.css",
    "/assets/vendor/%252e%252e/app.css", "/assets/vendor/%252e%252e%252fapp.css", "/assets/vendor/..%5capp.css",
    "/assets/vendor/..\\app.css", "/assets/vendor//../app.css", "/assets/vendor/./../app.css",
    "/assets/vendor/%2e/../app.css", "/assets/vendor/../app.css", "/assets/vendor/bootstrap.min.css/../../app.css",
    "/assets/vendor/LICENSE-bootstrap", "/assets/app.css", "/assets/../_dash-layout",
    "/assets/vendor/../../_dash-layout", "/assets/vendor/%2e%2e/%2e%2e/_dash-layout", "/reset/../_dash-layout",
    "/reset/x/../../_dash-layout", "/reset/%2e%2e/_dash-dependencies", "/reset/x%2f..%2f..%2f_dash-layout",
    "/login/../_dash-layout", "/login/..%2f_dash-layout", "/healthz/../_dash-layout", "/forgot/..",
    "/_dash-layout/../login", "/_dash-layout/%2e%2e/login", "/_dash-dependencies/..%2flogin",
    "//assets/vendor/../app.css", "//_dash-layout", "/login//../_dash-layout", "/assets/vendor/bootstrap.min.css%00",
    "/assets/vendor/%00/../app.css", "/login%2f..%2f_dash-layout", "/%2e%2e/_dash-layout", "/./_dash-layout",
    "/reset/%2E%2E%2F_dash-layout", "/export/practice-kpis.csv/..%2f..%2flogin", "/reset/..%252f_dash-layout",
]


def test_no_encoding_or_dot_segment_gets_past_the_login(client):
    served = {}
    for path in ENCODED_PATHS:
        for method in ("GET", "POST", "HEAD"):
            response = client.open(path, method=method)
            refused = response.status_code == 401 or (
                response.status_code == 302 and response.headers["Location"].startswith("/login"))
            if not refused:  # anything else served something (a file, a page, even a 404 from a route)
                served[f"{method} {path}"] = response.status_code
    assert served == {}


def test_the_public_paths_are_exactly_the_intended_ones(client, auth):
    assert client.get("/assets/vendor/bootstrap.min.css").status_code == 200
    assert client.get("/login").status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/reset/no-such-token").status_code == 400  # the page answers: link not valid
    for path in ("/assets/vendor/", "/assets/vendor/bootstrap.min.css/", "/reset/a/b", "/login/", "/healthz/x"):
        assert client.get(path).status_code in (302, 401), path
    # With a session, a non-canonical path is refused outright rather than routed.
    auth.login("admin")
    assert client.get("/assets/app.css").status_code == 200
    for path in ("/assets/vendor/%2e%2e/app.css", "/_dash-layout/../login", "/assets/vendor//../app.css"):
        assert client.get(path).status_code == 404, path


# --- finding 8: data freshness per tenant ---------------------------------------------------------

def p1_835(tmp_path: Path) -> Path:
    """managed-care.835 paid to practice P1 (REF*TJ), payment date 2002-03-14 (DTM*405)."""
    return variant(tmp_path, MANAGED, "p1.835", "REF*TJ*777667755~", f"REF*TJ*{P1}~")


def navbar_freshness(client) -> str:
    layout = client.get("/_dash-layout")
    assert layout.status_code == 200
    match = re.search(r'"children":\s*"((?:Data as of|No data loaded|No warehouse)[^"]*)"[^{}]*"id":\s*"data-as-of"',
                      layout.get_data(as_text=True))
    assert match, layout.get_data(as_text=True)[:2000]
    return match.group(1)


def export_period(client) -> str:
    response = client.get("/export/practice-kpis.csv")
    assert response.status_code == 200
    return re.search(r'filename="practice-kpis_(\S+)\.csv"', response.headers["Content-Disposition"]).group(1)


def test_a_practices_835_shows_in_its_own_navbar_only(build, warehouse_url, tmp_path):
    run_load(warehouse_url, fmt="x12-835", paths=[p1_835(tmp_path)])
    app = build()
    assert navbar_freshness(logged_in(app, "admin")) == "Data as of: x12-835 2002-03-14"
    p1 = logged_in(app, "practice")
    assert navbar_freshness(p1) == "Data as of: x12-835 2002-03-14"
    p2 = logged_in(app, "practice2")
    assert "2002" not in navbar_freshness(p2)
    assert "x12-835" not in navbar_freshness(p2)
    for who in ("employer", "employer2"):
        assert "2002" not in navbar_freshness(logged_in(app, who))
    # The default report period ends at the scope's own as-of month: P2 cannot read P1's load date from it.
    assert export_period(p1) == "2001-04_2002-03"
    assert "2002-03" not in export_period(p2)


def test_default_period_comes_from_loads_in_scope(warehouse_url, tmp_path):
    engine = writer_engine(warehouse_url)
    load_practice_fixture(engine)
    run_load(warehouse_url, fmt="x12-835", paths=[p1_835(tmp_path)])
    pm = [access.scope_for(role="practice_manager", practice_ids=[p]) for p in (P1, P2)]
    employer = access.scope_for(role="employer_admin", employer_ids=[E1])
    with engine.connect() as conn:
        assert reports.data_as_of(conn, scope=access.OPERATOR) == dt.date(2002, 3, 14)
        assert reports.data_as_of(conn, scope=pm[0]) == dt.date(2002, 3, 14)
        assert reports.data_as_of(conn, scope=pm[1]) == dt.date.today()
        assert reports.data_as_of(conn, scope=employer) == dt.date.today()
        assert reports.data_as_of_by_source(conn, scope=pm[1]) == {}
        assert reports.data_as_of_by_source(conn, scope=pm[0]) == {"x12-835": dt.date(2002, 3, 14)}
    result = reports.run_report("practice-kpis", scope=pm[1], engine=engine)
    assert result.filters.end != dt.date(2002, 3, 1)
    engine.dispose()


def load_scopes(url: str) -> dict[str, set[tuple[str, str]]]:
    engine = writer_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(s.data_load.c.file_name, s.data_load.c.source, s.data_load_scope.c.kind,
                                      s.data_load_scope.c.entity_id)
                            .join(s.data_load_scope, s.data_load_scope.c.load_id == s.data_load.c.load_id)).all()
    engine.dispose()
    found: dict[str, set[tuple[str, str]]] = {}
    for file_name, source, kind, entity in rows:
        found.setdefault(file_name or source, set()).add((kind, entity))
    return found


def test_every_loader_records_whom_its_load_touched(warehouse_url, tmp_path):
    tuva = tmp_path / "tuva"
    tuva.mkdir()
    write_csv(tuva / "medical_claim.csv", [{
        "claim_id": "T1", "claim_line_number": "1", "claim_type": "professional", "person_id": "M1",
        "member_id": "M1", "payer": "ACME", "plan": "PPO", "claim_start_date": "2026-01-05",
        "claim_end_date": "2026-01-05", "billing_tin": P1, "charge_amount": "100.00", "data_source": "clinic"}])
    write_csv(tuva / "eligibility.csv", [{
        "person_id": "M1", "member_id": "M1", "payer": "ACME", "payer_type": "commercial", "plan": "PPO",
        "enrollment_start_date": "2026-01-01", "enrollment_end_date": "2026-12-31", "group_id": E1,
        "data_source": "clinic"}])
    run_load(warehouse_url, fmt="tuva", paths=[tuva])
    run_load(warehouse_url, fmt="x12-835", paths=[p1_835(tmp_path)])
    run_load(warehouse_url, fmt="x12-834", paths=ENROLL_834[:1])
    engine = writer_engine(warehouse_url)
    with engine.connect() as conn:
        sponsors = set(conn.execute(sa.select(s.enrollment_change.c.employer_id).distinct()).scalars())
    engine.dispose()
    scopes = load_scopes(warehouse_url)
    # The claims file touches its practice and its member's employer (spend), the eligibility file the employer.
    assert scopes["medical_claim.csv"] == {("practice", P1), ("employer", E1)}
    assert scopes["eligibility.csv"] == {("employer", E1)}
    assert scopes["p1.835"] == {("practice", P1)}
    assert sponsors
    assert scopes[ENROLL_834[0].name] == {("employer", e) for e in sponsors}


def test_a_load_and_its_scope_are_one_transaction(warehouse_url, tmp_path):
    broken = variant(tmp_path, MANAGED, "broken.835", "CLP*5554555444*1*800.00*450.00",
                     "CLP*5554555444*1*800.00*45O.00")
    good = p1_835(tmp_path)
    with pytest.raises(BadInput):
        run_load(warehouse_url, fmt="x12-835", paths=[good, broken])
    engine = writer_engine(warehouse_url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(s.data_load_scope)).scalar_one() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(s.data_load)).scalar_one() == 0
    engine.dispose()


def test_the_demo_is_everyones_data(warehouse_url):
    from dashboard.warehouse.build import rebuild_warehouse
    from dashboard.warehouse.synthetic import DEMO_AS_OF, generate_demo

    summary = rebuild_warehouse(warehouse_url, lambda conn, checkpoint: generate_demo(
        conn, claims=1000, seed=3, progress=False, checkpoint=checkpoint))
    assert load_scopes(warehouse_url) == {"demo": {("all", "")}}
    engine = writer_engine(warehouse_url)
    with engine.connect() as conn:
        scope = access.scope_for(role="practice_manager", practice_ids=[summary.practices[0]])
        assert reports.data_as_of_by_source(conn, scope=scope) == {"demo": DEMO_AS_OF}
    engine.dispose()
