"""Shared fixtures: warehouses on DuckDB and on the real PostgreSQL at 127.0.0.1:5432.

PostgreSQL tests never skip in CI (CI=true): an unreachable server fails the run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.warehouse.engine import create_schema, writer_engine

PG_ADMIN_URL = os.environ.get("DASHBOARD_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REPO = Path(__file__).resolve().parents[1]
# The public X12 samples live beside the repository, never in it (their licenses); override for other layouts.
SHARED = Path(os.environ.get("DASHBOARD_SHARED_DIR") or REPO.parent / "shared")


def _pg_available() -> bool:
    try:
        with sa.create_engine(PG_ADMIN_URL).connect():
            return True
    except sa.exc.OperationalError:
        return False


@pytest.fixture(scope="session")
def pg_server() -> str:
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI and is not reachable at {PG_ADMIN_URL}")
        pytest.skip("PostgreSQL not reachable")
    return PG_ADMIN_URL


@pytest.fixture
def redis_url() -> str:
    """The Redis at 127.0.0.1:6379 (shared rate limits, the shared report cache); required in CI."""
    import redis

    url = os.environ.get("DASHBOARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.exceptions.RedisError:
        if os.environ.get("CI"):
            pytest.fail(f"Redis is required in CI and is not reachable at {url}")
        pytest.skip("Redis not reachable")
    return url


def new_pg_database(admin_url: str) -> tuple[str, callable]:
    name = f"dash_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_url(request, tmp_path) -> Iterator[str]:
    """An empty warehouse (schema created) on each backend."""
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
        drop = None
    else:
        url, drop = new_pg_database(request.getfixturevalue("pg_server"))
    engine = writer_engine(url)
    create_schema(engine)
    engine.dispose()
    yield url
    if drop:
        drop()


def module_warehouse(request, tmp_path_factory, loader) -> Iterator[Engine]:
    """A warehouse per backend loaded once per test module by ``loader(engine)``."""
    if request.param == "duckdb":
        url, drop = f"duckdb:///{tmp_path_factory.mktemp('wh') / 'warehouse.duckdb'}", None
    else:
        url, drop = new_pg_database(request.getfixturevalue("pg_server"))
    engine = writer_engine(url)
    create_schema(engine)
    loader(engine)
    yield engine
    engine.dispose()
    if drop:
        drop()


# --- the web app (flaskr-style fixtures) ----------------------------------------------------------

PASSWORD = "correct horse battery staple"
USERS = {
    "admin": ("admin@test.example", "admin", (), ()),
    "practice": ("pm@test.example", "practice_manager", ("111111111",), ()),
    "practice2": ("pm2@test.example", "practice_manager", ("222222222",), ()),
    "employer": ("emp@test.example", "employer_admin", (), ("GRP1",)),
    "employer2": ("emp2@test.example", "employer_admin", (), ("GRP2",)),
}


def make_app(tmp_path: Path, warehouse_url: str, **overrides):
    from dashboard.app import create_app
    from dashboard.auth import service

    config = {"warehouse_url": warehouse_url, "app_db_url": f"sqlite:///{tmp_path / 'app.sqlite'}",
              "secret_key": "test-secret-key-" + uuid.uuid4().hex, "data_dir": tmp_path, "testing": True,
              "public_url": "http://localhost",  # reset links are made only from configuration
              **overrides}
    app = create_app(config)
    engine = app.extensions["dashboard"].app_db
    for email, role, practices, employers in USERS.values():
        if service.get_user_by_email(engine, email=email) is None:
            service.create_user(engine, email=email, password=PASSWORD, role=role, practices=practices,
                                employers=employers, actor="test")
    return app


@pytest.fixture
def app_db_url(request, warehouse_engine, tmp_path):
    """The app DB on the backend of the module's ``warehouse_engine``: SQLite beside DuckDB, a new
    PostgreSQL database beside PostgreSQL."""
    if warehouse_engine.dialect.name == "postgresql":
        url, drop = new_pg_database(request.getfixturevalue("pg_server"))
        yield url
        drop()
    else:
        yield f"sqlite:///{tmp_path / 'app.sqlite'}"


@pytest.fixture
def new_app(tmp_path, warehouse_engine, app_db_url):
    """Builds apps over one warehouse and one app DB with one secret key: each app is a "worker"."""
    key = "test-secret-" + uuid.uuid4().hex
    url = warehouse_engine.url.render_as_string(hide_password=False)
    apps = []

    def build(**overrides):
        app = make_app(tmp_path, url, app_db_url=app_db_url, secret_key=key, **overrides)
        apps.append(app)
        return app

    yield build
    from dashboard.auth import mail

    mail.wait_for_notices()  # account notices are sent by a background thread
    for app in apps:
        app.extensions["dashboard"].app_db.dispose()
        app.extensions["dashboard"].warehouse().dispose()


@pytest.fixture(scope="session")
def fixture_warehouse_url(tmp_path_factory) -> str:
    """A DuckDB warehouse with both hand-built fixtures, shared read-only by the web tests."""
    from tests.fixtures import load_employer_fixture, load_practice_fixture

    url = f"duckdb:///{tmp_path_factory.mktemp('webwh') / 'warehouse.duckdb'}"
    engine = writer_engine(url)
    create_schema(engine)
    load_practice_fixture(engine)
    load_employer_fixture(engine)
    with engine.begin() as conn:
        import datetime as dt

        from dashboard.warehouse import schema as s

        conn.execute(s.data_load.insert().values(load_id="fixture", source="fixture", row_count=1,
                                                 loaded_at=dt.datetime(2026, 3, 31), data_as_of=dt.date(2026, 3, 31)))
        conn.execute(s.data_load_scope.insert().values(load_id="fixture", kind="all", entity_id=""))
    engine.dispose()
    return url


@pytest.fixture
def app(tmp_path, fixture_warehouse_url):
    return make_app(tmp_path, fixture_warehouse_url)


@pytest.fixture
def client(app):
    return app.test_client()


class AuthActions:
    def __init__(self, client):
        self._client = client

    def csrf(self) -> str:
        page = self._client.get("/login").get_data(as_text=True)
        marker = 'name="csrf_token" value="'
        start = page.index(marker) + len(marker)
        return page[start:page.index('"', start)]

    def login(self, who: str = "admin", password: str = PASSWORD):
        email = USERS[who][0] if who in USERS else who
        return self._client.post("/login", data={"email": email, "password": password, "csrf_token": self.csrf()})

    def logout(self):
        with self._client.session_transaction() as sess:
            token = sess.get("csrf", "")
        return self._client.post("/logout", data={"csrf_token": token})


@pytest.fixture
def auth(client):
    return AuthActions(client)


# --- real browser (Debian chromium + chromium-driver through dash[testing]) ----------------------

def pytest_setup_options():
    """Chrome options for dash.testing: Debian's chromium, headless, no background network."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    if Path("/usr/bin/chromium").exists():
        options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic", "--window-size=1400,1000"):
        options.add_argument(flag)
    return options


@pytest.fixture
def browser_ready():
    import shutil

    if not (shutil.which("chromedriver") and (shutil.which("chromium") or shutil.which("google-chrome"))):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromedriver are required in CI")
        pytest.skip("chromium/chromedriver not installed")
