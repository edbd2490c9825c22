"""Serving many users: the report cache shared by workers through Redis, gunicorn workers, the wheel.

The Redis tests use the real Redis at 127.0.0.1:6379 (DASHBOARD_TEST_REDIS_URL), each with its own key
prefix, removed afterwards. Each "worker" is an app built by ``create_app`` with the same settings, as
gunicorn's workers are.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import logging
import os
import pickle
import socket
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from dashboard import access, reports
from dashboard.cli import gunicorn_options
from dashboard.report_cache import RedisTier, ReportCache, decode_frame, encode_frame, shareable
from dashboard.warehouse.engine import reader_engine, writer_engine
from dashboard.warehouse.loaders.run import run_load
from tests.conftest import REPO, SHARED, make_app
from tests.fixtures import load_employer_fixture, load_practice_fixture

ADMIN = access.scope_for(role="admin")
EMP = access.scope_for(role="employer_admin", employer_ids=["GRP1"])
PERIOD = {"start": "2025-10", "end": "2026-03"}
MANAGED = SHARED / "fixtures" / "x12" / "managed-care.835"
CLAIM_COLUMNS = {"claim_id", "trace_number", "member_id", "person_id", "patient_id", "subscriber_id", "line_number"}


@pytest.fixture
def store(redis_url):
    """A Redis client and a key prefix of this test's own; every key under it is removed afterwards."""
    import redis

    client, prefix = redis.Redis.from_url(redis_url), f"test-serving-{uuid.uuid4().hex}"
    yield client, prefix
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


@pytest.fixture
def loaded_url(tmp_path):
    url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    from dashboard.warehouse.engine import create_schema

    engine = writer_engine(url)
    create_schema(engine)
    load_practice_fixture(engine)
    load_employer_fixture(engine)
    engine.dispose()
    return url


@pytest.fixture
def workers(tmp_path, loaded_url, redis_url, store):
    """Builds "workers": apps over one warehouse, one app DB, one secret key and one Redis prefix."""
    _, prefix = store
    key = "test-secret-" + uuid.uuid4().hex
    apps = []

    def build(**overrides):
        app = make_app(tmp_path, loaded_url, secret_key=key, redis_url=redis_url, report_cache_prefix=prefix,
                       **overrides)
        apps.append(app)
        return app.extensions["dashboard"]

    yield build
    for app in apps:
        app.extensions["dashboard"].app_db.dispose()
        app.extensions["dashboard"].warehouse().dispose()


def run(services, name: str, scope=ADMIN, **kwargs) -> pd.DataFrame:
    return reports.run_report(name, scope=scope, engine=services.warehouse(), cache=services.report_cache,
                              **{**PERIOD, **kwargs}).frame


def keys_in(client, prefix: str) -> list[bytes]:
    return list(client.scan_iter(f"{prefix}:*"))


# --- the shared tier ---------------------------------------------------------------------------------------

def test_two_workers_share_entries_and_read_the_same_numbers(workers, loaded_url, store):
    client, prefix = store
    first, second = workers(), workers()
    engine = reader_engine(loaded_url)
    shared = [r for r in reports.CATALOG.values() if not r.claim_level]
    for report in reports.CATALOG.values():
        run(first, report.name)
    # every frame the first worker built is shared, but the claim-level ones: the reports, and the parts the
    # composed employer reports (trend, cost drivers, builder) are summed from
    claim_level = len(reports.CATALOG) - len(shared)
    assert first.report_cache.misses > len(reports.CATALOG)
    assert len(keys_in(client, prefix)) == first.report_cache.misses - claim_level
    for report in reports.CATALOG.values():
        fresh = reports.run_report(report.name, scope=ADMIN, engine=engine, **PERIOD).frame
        pd.testing.assert_frame_equal(run(second, report.name), fresh)
    cache = second.report_cache
    assert cache.shared_hits == len(shared)  # built once, by the first worker
    assert cache.misses == len(reports.CATALOG) - len(shared)  # claim-level reports: each worker builds its own
    run(second, "practice-summary")
    assert cache.hits == 1  # the process tier answers first
    engine.dispose()


def test_a_load_makes_the_next_read_fresh_on_every_worker(workers, loaded_url):
    first, second = workers(), workers()

    def paid(services) -> float:
        frame = run(services, "practice-summary", start="2002-01", end="2026-03")
        return float(frame.loc[frame["practice_id"] == "all", "payments"].iloc[0])

    before = paid(first)
    assert paid(second) == before
    assert second.report_cache.shared_hits == 1
    for services in (first, second):
        services.warehouse().dispose()  # DuckDB: the loader swaps the file; readers reopen per request
    run_load(loaded_url, fmt="x12-835", paths=[MANAGED])
    assert paid(second) == pytest.approx(before + 945.00)  # a new data version: a new key
    assert second.report_cache.misses == 1
    assert paid(first) == pytest.approx(before + 945.00)
    assert first.report_cache.shared_hits == 1  # ...which the other worker now shares


def test_claim_level_frames_never_reach_redis(workers, store):
    client, prefix = store
    first = workers()
    practice = access.scope_for(role="practice_manager", practice_ids=["111111111"])
    for name in ("denied-claims", "remittances"):
        assert not run(first, name).empty
        assert not run(first, name, scope=practice).empty
    assert keys_in(client, prefix) == []
    for name in ("practice-summary", "adjustments"):
        run(first, name)
    entries = keys_in(client, prefix)
    assert len(entries) == 2
    tier = first.report_cache.shared
    for key in entries:
        frame = tier._open(key.decode(), client.get(key))
        assert not frame.empty
        assert not CLAIM_COLUMNS & set(frame.columns)


def test_every_report_whose_rows_are_claims_is_flagged_claim_level():
    for report in reports.CATALOG.values():
        if CLAIM_COLUMNS & set(report.columns):
            assert report.claim_level, report.name
        key = ("url", report.name, None, None)
        assert shareable(key) is not report.claim_level
    assert shareable(("url", "month-totals", None, None))
    assert not shareable(("url", "some-new-frame", None, None))  # unknown frames stay in the process
    assert not shareable("not a report key")


def test_a_deidentified_viewer_gets_suppressed_output_from_shared_entries(workers, store):
    client, prefix = store
    first, second = workers(), workers()
    expected = run(first, "enrollment", scope=EMP)
    got = run(second, "enrollment", scope=EMP)
    assert second.report_cache.misses == 0
    assert second.report_cache.shared_hits > 0
    pd.testing.assert_frame_equal(got, expected)
    members = pd.to_numeric(got["members"], errors="coerce")
    assert not members.between(1, 10).any()  # suppressed on this read too
    assert got["members"].isna().any()
    # what Redis holds is the raw frame: suppression cannot have happened before it was stored
    tier = second.report_cache.shared
    raw_frames = [tier._open(key.decode(), client.get(key)) for key in keys_in(client, prefix)]
    assert any("members" in f.columns and f["members"].between(1, 10).any() for f in raw_frames)


def test_hostile_or_foreign_bytes_in_redis_are_a_miss_and_never_unpickled(workers, store, tmp_path, monkeypatch):
    client, prefix = store
    first = workers()
    reference = run(first, "payer-mix")
    tier = first.report_cache.shared
    [name] = [k.decode() for k in keys_in(client, prefix)]
    genuine = client.get(name)

    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    def no_unpickling(*_args, **_kwargs):
        raise AssertionError("something unpickled bytes from Redis")

    monkeypatch.setattr(pickle, "loads", no_unpickling)
    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pd, "read_pickle", no_unpickling)
    other_key = ("another", "payer-mix", "filters", "version")
    candidates = [
        pickle.dumps(Exploit()),
        pickle.dumps(reference),
        b"DRC1" + b"\0" * 32 + genuine[36:],  # our format, someone else's signature
        genuine[:-1] + bytes([genuine[-1] ^ 1]),  # one bit changed
        genuine[:40],
        json.dumps(encode_frame(reference.assign(charges=0.0))).encode(),
        b"",
    ]
    for payload in candidates:
        client.set(name, payload)
        worker = workers()  # a worker with an empty process tier asks Redis
        got = run(worker, "payer-mix")
        assert worker.report_cache.misses == 1
        assert worker.report_cache.shared_hits == 0
        pd.testing.assert_frame_equal(got, reference)
        assert not marker.exists()
    # a genuine entry moved to another key (another tenant's filters) fails the signature too
    client.set(tier.redis_key(other_key), genuine)
    assert tier.get(other_key) is None
    assert tier.rejected >= 1


def test_redis_down_means_the_process_cache_logged_once(tmp_path, loaded_url, caplog):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = make_app(tmp_path, loaded_url, redis_url=f"redis://127.0.0.1:{port}/0")
    services = app.extensions["dashboard"]
    with caplog.at_level(logging.WARNING, logger="dashboard.report_cache"):
        for _ in range(2):
            for name in ("practice-summary", "payer-mix", "enrollment"):
                assert not run(services, name).empty
        client = app.test_client()
        from tests.conftest import AuthActions

        assert AuthActions(client).login("admin").status_code == 302
        assert client.get("/export/payer-mix.csv?from=2025-10&to=2026-03").status_code == 200
    cache = services.report_cache
    assert cache.misses == 3
    assert cache.hits == 4
    warnings = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
    assert len(warnings) == 1
    services.app_db.dispose()
    services.warehouse().dispose()


def test_entries_have_a_ttl_and_a_size_cap(redis_url, store):
    client, prefix = store
    frame = pd.DataFrame({"practice_id": ["a", "b"], "claims": [1.0, 2.0]})
    tier = RedisTier(redis_url, secret="s", prefix=prefix, ttl_seconds=120, max_bytes=10_000)
    cache = ReportCache(shared=tier)
    key = ("url", "payer-mix", "f", 1)
    cache.frame(key, lambda: frame)
    assert 0 < client.ttl(tier.redis_key(key)) <= 120
    big = pd.DataFrame({"practice_id": [uuid.uuid4().hex for _ in range(5_000)]})
    small = RedisTier(redis_url, secret="s", prefix=prefix, max_bytes=10_000)
    assert small.put(("url", "payer-mix", "g", 1), big) is False
    assert client.get(small.redis_key(("url", "payer-mix", "g", 1))) is None
    assert tier.put(("url", "payer-mix", "h", 1), pd.DataFrame({"x": pd.Categorical(["a"])})) is False


def test_frames_survive_the_json_codec_with_their_types():
    frame = pd.DataFrame({
        "text": pd.Series(["a", None, "ü"], dtype="str"),
        "string": pd.Series(["a", None, "b"], dtype="string"),
        "ints": np.array([1, -2, 3], dtype="int64"),
        "small": np.array([1, 2, 3], dtype="int32"),
        "floats": [1.5, np.nan, -0.0],
        "flags": [True, False, True],
        "nullable": pd.array([1, None, 3], dtype="Int64"),
        "when": pd.to_datetime(["2026-01-01", None, "2026-03-01"]),
        "month": [dt.date(2026, 1, 1), None, dt.date(2026, 3, 1)],
        "mixed": [dt.datetime(2026, 1, 1, 12, 30), 1.25, "x"],
    })
    for candidate in (frame, frame.iloc[0:0].reset_index(drop=True), pd.DataFrame(index=pd.RangeIndex(3))):
        back = decode_frame(json.loads(json.dumps(encode_frame(candidate))))
        pd.testing.assert_frame_equal(back, candidate)
    with pytest.raises(TypeError):
        encode_frame(frame.set_index("text"))


# --- the server ------------------------------------------------------------------------------------------

def _load_test_module():
    spec = importlib.util.spec_from_file_location("load_test", REPO / "bench" / "load_test.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_serve_runs_gunicorn_threads_in_separate_workers_without_preload():
    options = gunicorn_options(host="127.0.0.1", port=8050, workers=3, threads=4, timeout=120)
    assert options["bind"] == "127.0.0.1:8050"
    assert options["worker_class"] == "gthread"
    assert (options["workers"], options["threads"]) == (3, 4)
    assert options["preload_app"] is False  # each worker opens its own engines after the fork
    assert options["forwarded_allow_ips"] == ""  # proxies are the app's business (DASHBOARD_PROXY_HOPS)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="counts worker processes through /proc")
def test_load_test_smoke_run_on_two_workers_sharing_redis(tmp_path, fixture_warehouse_url, redis_url, store):
    """bench/load_test.py's pieces, short: 4 users for 6 s on `dashboard serve --workers 2` with Redis."""
    client, prefix = store
    lt = _load_test_module()
    app_db = f"sqlite:///{tmp_path / 'app.sqlite'}"
    env = {**os.environ, "DASHBOARD_DATA_DIR": str(tmp_path), "DASHBOARD_WAREHOUSE_URL": fixture_warehouse_url,
           "DASHBOARD_APP_DB_URL": app_db, "DASHBOARD_SECRET_KEY": uuid.uuid4().hex * 2,
           "DASHBOARD_SECURE_COOKIES": "false", "DASHBOARD_LOGIN_RATE_LIMIT": "1000 per minute",
           "DASHBOARD_REDIS_URL": redis_url, "DASHBOARD_REPORT_CACHE_PREFIX": prefix}
    users = lt.create_users(app_db, fixture_warehouse_url, 4)
    stats = lt.Stats(max_requests=2_000)
    port = lt.free_port()
    with lt.server(env, port=port, workers=2, threads=2, log_path=tmp_path / "server.log") as base:
        master = next(int(line.split()[-1].strip("()")) for line in (tmp_path / "server.log").read_text().splitlines()
                      if "Listening at" in line)
        assert len(_children(master)) == 2
        lt.drive(base, users, duration=6, stats=stats, seed=1)
    assert stats.errors == {}, stats.samples
    assert len(stats.latencies["content"]) >= 4  # every user reached its page's reports
    assert keys_in(client, prefix)  # the workers shared report frames
    engine = sa.create_engine(app_db)
    with engine.connect() as conn:  # page views were audited by both workers into the one app DB
        views = conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE action = 'page.view'")).scalar()
    engine.dispose()
    assert views >= 4


def _tree_copy(destination: Path) -> Path:
    """The files a clone would have (tracked, plus new ones not ignored), copied for an isolated build."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    return destination


def test_the_wheel_ships_pages_assets_and_templates_and_runs_installed(tmp_path):
    source = _tree_copy(tmp_path / "src")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w",
                            str(tmp_path / "dist")], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = (tmp_path / "dist").glob("dashboard-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    data = next(n.split("/share/")[0] for n in names if "/share/dashboard/" in n) + "/share/dashboard/"
    for folder in ("pages", "assets"):
        for path in (source / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                assert data + path.relative_to(source).as_posix() in names, path
    for path in (source / "dashboard").rglob("*"):
        if path.is_file() and path.suffix in (".html", ".txt", ".csv"):
            assert path.relative_to(source).as_posix() in names, path

    # Installed elsewhere (not the checkout): the app finds its pages and assets where the wheel put them.
    prefix = tmp_path / "prefix"
    # --ignore-installed: without it pip would first uninstall the checkout's editable install from .venv
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q",
                                "--ignore-installed", "--no-warn-script-location", "--prefix", str(prefix),
                                str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]
    [site] = prefix.glob("lib/python*/site-packages")
    probe = (
        "import dash, json, dashboard.app as a\n"
        "app = a.create_app({'warehouse_url': 'duckdb:///:memory:', 'app_db_url': 'sqlite://',"
        " 'secret_key': 'k', 'testing': True})\n"
        "print(json.dumps({'module': a.__file__, 'pages': str(a.PAGES_DIR),"
        " 'assets': app.extensions['dashboard'].dash_app.config.assets_folder,"
        " 'paths': sorted(p['path'] for p in dash.page_registry.values())}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "DASHBOARD_DATA_DIR": str(tmp_path / "data")}
    ran = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert ran.returncode == 0, ran.stderr[-2000:]
    found = json.loads(ran.stdout.strip().splitlines()[-1])
    assert found["module"].startswith(str(site))
    assert Path(found["pages"]) == (prefix / "share" / "dashboard" / "pages").resolve()
    assert Path(found["assets"]) == (prefix / "share" / "dashboard" / "assets").resolve()
    assert {"/practice", "/employer", "/reports"} <= set(found["paths"])
