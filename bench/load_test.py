"""Load test: N simulated users against the multi-worker server (`dashboard serve`) on loopback.

It starts the server itself on a free 127.0.0.1 port over the given warehouse, with a temporary app DB
and data directory, creates one account per simulated user through the service layer, and drives them
from a thread pool. Each user logs in (GET /login for the form's CSRF token, POST /login) and then loops
over the journey a browser makes for its page (practice managers: /practice, employer admins:
/employer): GET the page, GET /_dash-layout, POST the page router's callback, then POST every server
callback the routed page fires (cards, each chart, each grid's first block of rows) with the X-CSRFToken
header dash-renderer sends. Three visits
in ten change the period, so the report cache sees both hits and new keys.

Bounded on every axis: users (at most 200), duration (at most 600 s), requests in total, and the
server listens on 127.0.0.1 only. Results (p50/p95/max latency per step and overall, error count,
throughput) go to bench/results/load-test.json as JSON.

Usage: python bench/load_test.py --warehouse-url duckdb:////path/warehouse.duckdb [--users 50]
       [--duration 120] [--max-requests 20000] [--workers N] [--threads 4] [--redis-url URL]

Client threads share the machine's cores with the server: on a small machine the figures include
the load generator's own cost. Compare runs by ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

HOST = "127.0.0.1"  # loopback only, by design
PASSWORD = "load test password " + uuid.uuid4().hex[:8]
RESULTS = Path(__file__).resolve().parent / "results" / "load-test.json"
MAX_USERS, MAX_DURATION = 200, 600
# What a callback answers with instead of the page: the error alert and the no-access panel (dashboard.ui.registry)
FAILURE = re.compile(r'"color":\s*"danger"|"id":\s*"no-access"')
JOURNEYS = {"practice_manager": ("/practice", "practice"), "employer_admin": ("/employer", "employer")}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def create_users(app_db_url: str, warehouse_url: str, count: int) -> list[tuple[str, str]]:
    """``count`` accounts, alternately practice managers (two practices) and employer admins (one
    employer), made through the service layer; returns (email, role) pairs."""
    from dashboard import entities
    from dashboard.app import _app_db_engine
    from dashboard.auth import service
    from dashboard.warehouse.engine import reader_engine

    warehouse = reader_engine(warehouse_url)
    with warehouse.connect() as conn:
        known = entities.lookup(conn)
        practices, employers = sorted(known.practices), sorted(known.employers)
    warehouse.dispose()
    if not practices or not employers:
        raise SystemExit("the warehouse has no practices or no employers: load data first (dashboard demo)")
    engine = _app_db_engine(app_db_url)
    service.create_tables(engine)
    users = []
    for n in range(count):
        role = "practice_manager" if n % 2 == 0 else "employer_admin"
        email = f"load-{n:03d}@bench.example"
        scope = {"practices": practices[n % len(practices):][:2] or practices[:1]} if role == "practice_manager" \
            else {"employers": [employers[n % len(employers)]]}
        service.create_user(engine, email=email, password=PASSWORD, role=role, actor="load-test", **scope)
        users.append((email, role))
    engine.dispose()
    return users


@contextlib.contextmanager
def server(env: dict[str, str], *, port: int, workers: int | None, threads: int,
           log_path: Path) -> Iterator[str]:
    """`dashboard serve` on HOST:port in its own process group; stopped (SIGTERM, then SIGKILL) on exit."""
    args = [sys.executable, "-m", "dashboard.cli", "serve", "--host", HOST, "--port", str(port),
            "--threads", str(threads), *(["--workers", str(workers)] if workers else [])]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                                   start_new_session=True)
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the server exited ({process.returncode}); see {log_path}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"the server did not answer within 90 s; see {log_path}")
            time.sleep(0.3)
        yield base
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _outputs(key: str) -> list[dict] | dict:
    """The 'outputs' field dash-renderer sends for a callback's output key."""
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    outs = [dict(zip(("id", "property"), part.rsplit(".", 1), strict=True)) for part in parts]
    return outs if key.startswith("..") else outs[0]


class Stats:
    def __init__(self, max_requests: int) -> None:
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.samples: list[str] = []
        self.requests = 0
        self.max_requests = max_requests

    def budget_left(self) -> bool:
        with self.lock:
            return self.requests < self.max_requests

    def record(self, step: str, seconds: float, error: str | None) -> None:
        with self.lock:
            self.requests += 1
            self.latencies.setdefault(step, []).append(seconds)
            if error:
                self.errors[step] = self.errors.get(step, 0) + 1
                if len(self.samples) < 20:
                    self.samples.append(f"{step}: {error}")


class User:
    """One simulated browser: a requests session, its cookies, and the CSRF header dash-renderer sends."""

    def __init__(self, base: str, email: str, role: str, stats: Stats, rng: random.Random) -> None:
        self.base, self.email, self.stats, self.rng = base, email, stats, rng
        self.path, self.prefix = JOURNEYS[role]
        self.http = requests.Session()
        self.callbacks: dict[str, dict] = {}

    def call(self, step: str, method: str, path: str, ok: tuple[int, ...] = (200,), **kwargs
             ) -> requests.Response | None:
        started = time.perf_counter()
        error, response = None, None
        try:
            response = self.http.request(method, self.base + path, timeout=60, allow_redirects=False, **kwargs)
            if response.status_code not in ok:
                error = f"HTTP {response.status_code} on {method} {path}"
            elif path == "/_dash-update-component" and FAILURE.search(response.text):
                error = f"an error or no-access panel from {step}"  # answered 200, but not with the page
        except requests.RequestException as exc:
            error = f"{type(exc).__name__} on {method} {path}"
        self.stats.record(step, time.perf_counter() - started, error)
        return None if error else response

    def login(self) -> bool:
        page = self.call("login", "GET", "/login")
        if page is None:
            return False
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        form = {"email": self.email, "password": PASSWORD, "csrf_token": token.group(1) if token else ""}
        done = self.call("login", "POST", "/login", ok=(302,), data=form)
        return done is not None

    def dash_post(self, step: str, key: str, values: dict) -> requests.Response | None:
        spec = self.callbacks[key]

        def fill(items: list[dict]) -> list[dict]:
            return [{**item, "value": values.get(f"{item['id']}.{item['property']}")} for item in items]

        body = {"output": key, "outputs": _outputs(key), "inputs": fill(spec["inputs"]),
                "state": fill(spec.get("state", [])),
                "changedPropIds": [f"{i['id']}.{i['property']}" for i in spec["inputs"]]}
        csrf = self.http.cookies.get("_csrf_token", "")
        return self.call(step, "POST", "/_dash-update-component", ok=(200, 204), json=body,
                         headers={"X-CSRFToken": csrf})

    def visit(self) -> None:
        """One page visit, as the browser makes it: the page, its layout, the router, then every server
        callback whose inputs the routed page holds (cards, each chart, each grid's first block)."""
        if self.call("page", "GET", self.path) is None:
            return
        self.call("layout", "GET", "/_dash-layout")
        if not self.callbacks:
            deps = self.call("dependencies", "GET", "/_dash-dependencies")
            if deps is None:
                return
            self.callbacks = {d["output"]: d for d in deps.json() if not d.get("clientside_function")}
        router = next((k for k in self.callbacks if "_pages_content" in k), None)
        if router is None:
            self.stats.record("page", 0.0, "no router callback in /_dash-dependencies")
            return
        routed = self.dash_post("router", router, {"_pages_location.pathname": self.path,
                                                   "_pages_location.search": ""})
        if routed is None:
            return
        from dashboard.ui.registry import component_props

        props = component_props(routed.json())
        start, end = props.get(f"{self.prefix}-from", {}), props.get(f"{self.prefix}-to", {})
        first, last = start.get("value"), end.get("value")
        months = [o["value"] if isinstance(o, dict) else o for o in start.get("options") or []]
        if months and self.rng.random() < 0.3:  # a different period: a new report cache key
            first = self.rng.choice([m for m in months if last is None or m <= last] or months)
        values = {f"{cid}.{name}": value for cid, p in props.items() for name, value in p.items()}
        values.update({f"{self.prefix}-from.value": first, f"{self.prefix}-to.value": last})
        fired = 0
        for key, spec in self.callbacks.items():
            inputs = spec.get("inputs") or []
            if "_pages" in key or spec.get("prevent_initial_call") or not inputs:
                continue
            if not all(i["id"] in props for i in inputs):
                continue
            call_values = dict(values)
            for i in inputs:
                if i["property"] == "getRowsRequest":  # a grid asks for its first block
                    call_values[f"{i['id']}.getRowsRequest"] = {"startRow": 0, "endRow": 50, "sortModel": [],
                                                               "filterModel": {}}
            step = "grid" if any(i["property"] == "getRowsRequest" for i in inputs) else "content"
            self.dash_post(step, key, call_values)
            fired += 1
        if not fired:
            self.stats.record("content", 0.0, f"no callback of {self.path} found in /_dash-dependencies")


def drive(base: str, users: list[tuple[str, str]], *, duration: float, stats: Stats, seed: int) -> float:
    """Run every user until ``duration`` seconds pass or the request budget is spent; returns seconds."""
    deadline = time.monotonic() + duration
    started = time.perf_counter()

    def one(n: int) -> None:
        email, role = users[n]
        user = User(base, email, role, stats, random.Random(seed + n))
        time.sleep(user.rng.random() * min(2.0, duration / 10))  # users arrive over a moment, not at once
        if not user.login():
            return
        while time.monotonic() < deadline and stats.budget_left():
            user.visit()

    with ThreadPoolExecutor(max_workers=len(users)) as pool:
        list(pool.map(one, range(len(users))))
    return time.perf_counter() - started


def summarise(values: list[float]) -> dict:
    ordered = sorted(values)

    def rank(p: float) -> float:  # nearest rank
        return ordered[max(0, min(len(ordered) - 1, round(p * len(ordered) + 0.5) - 1))]

    return {"count": len(ordered), "p50_ms": round(rank(0.50) * 1000, 1), "p95_ms": round(rank(0.95) * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1)} if ordered else {"count": 0}


def run(*, warehouse_url: str, users: int = 50, duration: float = 120, max_requests: int = 20_000,
        workers: int | None = None, threads: int = 4, redis_url: str | None = None, app_db_url: str | None = None,
        seed: int = 1) -> dict:
    """Start the server, create the users, drive them, stop the server; returns the results."""
    if not 1 <= users <= MAX_USERS or not 0 < duration <= MAX_DURATION or max_requests < 1:
        raise SystemExit(f"users must be 1..{MAX_USERS}, duration 0..{MAX_DURATION} s, max-requests > 0")
    with tempfile.TemporaryDirectory(prefix="dashboard-load-") as tmp:
        data = Path(tmp)
        app_db_url = app_db_url or f"sqlite:///{data / 'app.sqlite'}"
        prefix = f"load-test-{uuid.uuid4().hex[:12]}"
        env = {**os.environ, "DASHBOARD_DATA_DIR": str(data), "DASHBOARD_WAREHOUSE_URL": warehouse_url,
               "DASHBOARD_APP_DB_URL": app_db_url, "DASHBOARD_SECRET_KEY": uuid.uuid4().hex * 2,
               # loopback over plain HTTP: a client library (unlike a browser) sends no Secure cookie there
               "DASHBOARD_SECURE_COOKIES": "false",
               # every simulated user logs in from 127.0.0.1: the per-IP login limit would stop them
               "DASHBOARD_LOGIN_RATE_LIMIT": "100000 per minute",
               "DASHBOARD_REPORT_CACHE_PREFIX": prefix, "DASHBOARD_PUBLIC_URL": f"http://{HOST}"}
        env.pop("DASHBOARD_REDIS_URL", None)
        if redis_url:
            env["DASHBOARD_REDIS_URL"] = redis_url
        accounts = create_users(app_db_url, warehouse_url, users)
        stats = Stats(max_requests)
        port = free_port()
        try:
            with server(env, port=port, workers=workers, threads=threads, log_path=data / "server.log") as base:
                elapsed = drive(base, accounts, duration=duration, stats=stats, seed=seed)
        finally:
            if redis_url:
                _drop_keys(redis_url, prefix)
            log_tail = (data / "server.log").read_text(errors="replace")[-2000:] \
                if (data / "server.log").exists() else ""
    every = [v for values in stats.latencies.values() for v in values]
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"python": platform.python_version(), "cores": os.cpu_count()},
        "config": {"users": users, "duration_s": duration, "max_requests": max_requests,
                   "workers": workers or "default", "threads": threads, "redis": bool(redis_url),
                   "warehouse": warehouse_url.split("://", 1)[0]},
        "elapsed_s": round(elapsed, 1),
        "requests": stats.requests,
        "errors": sum(stats.errors.values()),
        "errors_by_step": stats.errors,
        "error_samples": stats.samples,
        "throughput_rps": round(stats.requests / elapsed, 1) if elapsed else None,
        "latency": {"all": summarise(every), **{step: summarise(v) for step, v in sorted(stats.latencies.items())}},
        "server_log_tail": log_tail if stats.errors else "",
    }


def _drop_keys(redis_url: str, prefix: str) -> None:
    import redis

    with contextlib.suppress(redis.exceptions.RedisError):
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=1)
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse-url", default=os.environ.get("DASHBOARD_WAREHOUSE_URL"),
                        help="the warehouse to serve (default: $DASHBOARD_WAREHOUSE_URL, else data/warehouse.duckdb)")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=float, default=120, help="seconds")
    parser.add_argument("--max-requests", type=int, default=20_000)
    parser.add_argument("--workers", type=int, help="server worker processes (default: dashboard serve's)")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--redis-url", help="share the report cache and rate limits through this Redis")
    parser.add_argument("--app-db-url", help="the app DB (default: a temporary SQLite file)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not args.warehouse_url:
        default = Path(__file__).resolve().parents[1] / "data" / "warehouse.duckdb"
        args.warehouse_url = f"duckdb:///{default}"
    results = run(warehouse_url=args.warehouse_url, users=args.users, duration=args.duration,
                  max_requests=args.max_requests, workers=args.workers, threads=args.threads,
                  redis_url=args.redis_url, app_db_url=args.app_db_url, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(args.out)
    overall = results["latency"]["all"]
    print(f"{results['requests']} requests, {results['errors']} errors, {results['throughput_rps']} req/s; "
          f"p50 {overall.get('p50_ms')} ms, p95 {overall.get('p95_ms')} ms, max {overall.get('max_ms')} ms "
          f"-> {args.out}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
