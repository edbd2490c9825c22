"""Issue 10's measures through the real app: pages, a grid page and the CSV export (used by bench/run.py).

Everything goes through the Flask test client against ``create_app`` with a temporary SQLite app DB; the
users are made through ``dashboard.auth.service`` and log in through /login, as a browser does. Times are
server time (the test client has no network): each request's wall time in this process.

Pages. For each page and role (admin over all; the practice manager of the largest practice by claims; the
employer admin of the largest employer by member months) one repetition is, in order:

1. cold: a new, empty report cache, then GET /_dash-layout, POST the router callback, then POST every server
   callback the routed page fires on load (the cards first, then each chart and each grid's first block);
2. warm: the same requests again (the cache now holds the page's frames);
3. filter change, cold: every callback again with a different from-month (in a browser the filter inputs
   fire the cards and charts, and the grids, purged client-side, ask for their first block again);
4. filter change, warm: the same again.

A page's time is the *sum* of its requests' durations (the browser sends the callbacks in parallel, but the
sum is what the server spends); the slowest callback is reported too. Bytes are the response bodies
(uncompressed). Figures are medians over the repetitions.

The CSV export is measured in a child process (``python bench/app_bench.py csv …``) so that its memory
growth is not hidden by memory the parent already holds: peak RSS during the download minus RSS before it,
sampled every few milliseconds (psutil when installed, else /proc/self/statm).
"""

from __future__ import annotations

import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

PASSWORD = "bench pages " + uuid.uuid4().hex[:12]
# What a callback answers with instead of its content: the error alert and the no-access panel
FAILURE = re.compile(r'"color":\s*"danger"|"id":\s*"no-access"')
CARDS = {"practice": "practice-cards.children", "employer": "employer-cards.children"}
KB, MB = 1000, 1000 * 1000


@dataclass(frozen=True)
class Subject:
    """Who visits which page: a role over a scope."""

    key: str  # e.g. "practice/admin"
    page: str  # practice | employer
    who: str  # human label
    email: str
    role: str
    practices: tuple[str, ...] = ()
    employers: tuple[str, ...] = ()


def largest_entities(url: str) -> dict:
    """The largest practice (claims, by month of service) and employer (member months), the first month with
    data and the payer with the most denied claims (its first letters filter the grid page), from the marts."""
    from dashboard.warehouse import semantic
    from dashboard.warehouse.engine import reader_engine

    pm, em, adj = semantic.mart_practice_month, semantic.mart_employer_month, semantic.mart_adjustment_month
    engine = reader_engine(url)
    try:
        with engine.connect() as conn:
            n = sa.func.sum(pm.c.claims).label("n")
            practice, claims = conn.execute(sa.select(pm.c.practice_id, n).group_by(pm.c.practice_id)
                                            .order_by(n.desc(), pm.c.practice_id).limit(1)).one()
            mm = sa.func.sum(em.c.member_months).label("mm")
            employer, member_months = conn.execute(sa.select(em.c.employer_id, mm).group_by(em.c.employer_id)
                                                   .order_by(mm.desc(), em.c.employer_id).limit(1)).one()
            first = conn.execute(sa.select(sa.func.min(pm.c.month))).scalar()
            dn = sa.func.sum(adj.c.claims).label("dn")
            payer = conn.execute(sa.select(adj.c.payer, dn).where(adj.c.category == "denial", adj.c.payer.is_not(None))
                                 .group_by(adj.c.payer).order_by(dn.desc()).limit(1)).first()
    finally:
        engine.dispose()
    return {"practice": practice, "practice_claims": int(claims), "employer": employer,
            "employer_member_months": int(member_months), "first_month": f"{first:%Y-%m}",
            "payer_text": (payer[0][:3].lower() if payer else "a")}


def subjects(largest: dict) -> list[Subject]:
    return [
        Subject("practice/admin", "practice", "admin, all practices", "admin@bench.example", "admin"),
        Subject("practice/manager", "practice", f"manager of {largest['practice']}", "pm@bench.example",
                "practice_manager", practices=(largest["practice"],)),
        Subject("employer/admin", "employer", "admin, all employers", "admin@bench.example", "admin"),
        Subject("employer/employer_admin", "employer", f"employer admin of {largest['employer']}",
                "ea@bench.example", "employer_admin", employers=(largest["employer"],)),
    ]


def make_app(url: str, tmp: Path):
    from dashboard.app import create_app

    app = create_app({"warehouse_url": url, "app_db_url": f"sqlite:///{tmp / 'app.sqlite'}", "data_dir": tmp,
                      "secret_key": uuid.uuid4().hex * 2, "testing": True, "public_url": "http://localhost",
                      "secure_cookies": False, "redis_url": None, "login_rate_limit": "100000 per minute"})
    logging.getLogger().setLevel(logging.WARNING)  # create_app logs at INFO: keep the bench output short
    return app


def create_users(app, people: list[Subject]) -> None:
    from dashboard.auth import service

    engine = app.extensions["dashboard"].app_db
    done = set()
    for p in people:
        if p.email not in done:
            service.create_user(engine, email=p.email, password=PASSWORD, role=p.role, practices=list(p.practices),
                                employers=list(p.employers), actor="bench")
            done.add(p.email)


def fresh_cache(app) -> None:
    """An empty report cache, as in a new server process (or after a load)."""
    from dashboard.report_cache import ReportCache

    services = app.extensions["dashboard"]
    services.report_cache = ReportCache(services.settings.report_cache_entries)


class Browser:
    """One logged-in session on the test client, firing a page's requests as dash-renderer does."""

    def __init__(self, app, email: str, path: str) -> None:
        self.client = app.test_client()
        self.path = path
        form = self.client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        done = self.client.post("/login", data={"email": email, "password": PASSWORD,
                                                "csrf_token": token.group(1) if token else ""})
        if done.status_code != 302:
            raise SystemExit(f"bench: login of {email} answered {done.status_code}")
        self.client.get(path)
        self.headers = {"X-CSRFToken": self.client.get_cookie("_csrf_token").value}
        self.deps = {d["output"]: d for d in self.client.get("/_dash-dependencies").get_json()
                     if not d.get("clientside_function")}
        self.router = next(k for k in self.deps if "_pages_content" in k)

    def _timed(self, step: str, method: str, path: str, **kwargs) -> tuple[dict, float, int]:
        started = time.perf_counter()
        response = self.client.open(path, method=method, **kwargs)
        body = response.get_data()
        seconds = time.perf_counter() - started
        if response.status_code not in (200, 204):
            raise SystemExit(f"bench: {step} answered HTTP {response.status_code}: {body[:300]!r}")
        if path == "/_dash-update-component" and FAILURE.search(body.decode(errors="replace")):
            raise SystemExit(f"bench: {step} answered an error or no-access panel: {body[:300]!r}")
        return (json.loads(body) if body and response.is_json else {}), seconds, len(body)

    def post(self, key: str, values: dict) -> tuple[dict, float, int]:
        spec = self.deps[key]
        multi = key.startswith("..")
        outs = [dict(zip(("id", "property"), part.rsplit(".", 1), strict=True))
                for part in (key[2:-2].split("...") if multi else [key])]

        def fill(items: list[dict]) -> list[dict]:
            return [{**i, "value": values.get(f"{i['id']}.{i['property']}")} for i in items]

        body = {"output": key, "outputs": outs if multi else outs[0], "inputs": fill(spec["inputs"]),
                "state": fill(spec.get("state", [])),
                "changedPropIds": [f"{i['id']}.{i['property']}" for i in spec["inputs"]]}
        return self._timed(key, "POST", "/_dash-update-component", json=body, headers=self.headers)

    def route(self) -> tuple[dict, dict]:
        """Layout and router: (steps {name: (seconds, bytes)}, the routed page's props by id)."""
        _, layout_s, layout_b = self._timed("layout", "GET", "/_dash-layout")
        routed, router_s, router_b = self.post(self.router, {"_pages_location.pathname": self.path,
                                                             "_pages_location.search": ""})
        from dashboard.ui.registry import component_props

        props = component_props(routed)
        return {"layout": (layout_s, layout_b), "router": (router_s, router_b)}, props

    def on_load(self, props: dict) -> list[str]:
        """The server callbacks the routed page fires on load, the cards first."""
        keys = [k for k, d in self.deps.items()
                if "_pages" not in k and not d.get("prevent_initial_call") and d.get("inputs")
                and all(i["id"] in props for i in d["inputs"])]
        return sorted(keys, key=lambda k: k not in CARDS.values())

    def callbacks(self, keys: list[str], props: dict, overrides: dict | None = None) -> dict:
        values = {f"{cid}.{name}": value for cid, p in props.items() for name, value in p.items()}
        values.update(overrides or {})
        steps = {}
        for key in keys:
            call = dict(values)
            for i in self.deps[key]["inputs"]:
                if i["property"] == "getRowsRequest":  # a grid asks for its first block
                    call[f"{i['id']}.getRowsRequest"] = {"startRow": 0, "endRow": 50, "sortModel": [],
                                                         "filterModel": {}}
            _, seconds, size = self.post(key, call)
            steps[key] = (seconds, size)
        return steps


def _summary(steps: dict, cards_key: str) -> dict:
    calls = {k: v for k, v in steps.items() if k not in ("layout", "router")}
    return {"seconds": sum(s for s, _ in steps.values()),
            "callbacks_sum_seconds": sum(s for s, _ in calls.values()),
            "callbacks_max_seconds": max((s for s, _ in calls.values()), default=0.0),
            "cards_seconds": steps[cards_key][0] if cards_key in steps else None,
            "bytes": sum(b for _, b in steps.values()), "requests": len(steps)}


def _median(runs: list[dict]) -> dict:
    out = {}
    for name in runs[0]:
        values = [r[name] for r in runs if r[name] is not None]
        out[name] = None if not values else (int(statistics.median(values)) if name in ("bytes", "requests")
                                             else round(statistics.median(values), 4))
    return out


def measure_pages(app, people: list[Subject], *, repeat: int, log=print) -> dict:
    """Per page and role: cold, warm, filter change cold and warm (medians of ``repeat``), and each request's
    median time cold and warm."""
    out = {}
    for p in people:
        browser = Browser(app, p.email, f"/{p.page}")
        cards_key = CARDS[p.page]
        runs: dict[str, list[dict]] = {"cold": [], "warm": [], "filter_cold": [], "filter_warm": []}
        per_step: dict[str, dict[str, list[float]]] = {"cold": {}, "warm": {}}
        sizes: dict[str, int] = {}
        for _ in range(repeat):
            fresh_cache(app)
            for phase in ("cold", "warm"):
                steps, props = browser.route()
                keys = browser.on_load(props)
                steps.update(browser.callbacks(keys, props))
                runs[phase].append(_summary(steps, cards_key))
                for name, (seconds, size) in steps.items():
                    per_step[phase].setdefault(name, []).append(seconds)
                    sizes[name] = size
            months = [o["value"] if isinstance(o, dict) else o for o in props[f"{p.page}-from"].get("options") or []]
            start = props[f"{p.page}-from"]["value"]
            earlier = months[max(months.index(start) - 6, 0)] if start in months else months[0]
            change = {f"{p.page}-from.value": earlier}
            for phase in ("filter_cold", "filter_warm"):
                runs[phase].append(_summary(browser.callbacks(keys, props, change), cards_key))
        result = {phase: _median(r) for phase, r in runs.items()}
        result.update(who=p.who, callbacks=len(keys), filter_from=earlier, default_from=start,
                      requests=[{"request": name, "cold_seconds": round(statistics.median(cold), 4),
                                 "warm_seconds": round(statistics.median(per_step["warm"][name]), 4),
                                 "bytes": sizes[name]} for name, cold in per_step["cold"].items()])
        out[p.key] = result
        c, w, fc, fw = (result[k] for k in ("cold", "warm", "filter_cold", "filter_warm"))
        log(f"{p.key:<24} cards cold {c['cards_seconds'] * 1000:7.0f} ms | page cold {c['seconds'] * 1000:7.0f} ms "
            f"(max cb {c['callbacks_max_seconds'] * 1000:.0f}) {c['bytes'] / KB:6.0f} KB | warm "
            f"{w['seconds'] * 1000:5.0f} ms | filter {fc['seconds'] * 1000:6.0f} / {fw['seconds'] * 1000:4.0f} ms")
    return out


def measure_grid_page(url: str, largest: dict, *, repeat: int, log=print) -> dict:
    """One 100-row page of denied-claims (the largest claim-level report) over the whole period, admin scope,
    sorted by amount descending and filtered on payer contains <text>, through reports.report_page."""
    from dashboard import access, paging, reports
    from dashboard.warehouse.engine import reader_engine

    scope = access.scope_for(role="admin")
    sort = [paging.Sort("amount", descending=True)]
    filters = [paging.ColumnFilter("payer", (paging.Condition("text", "contains", largest["payer_text"]),))]
    engine = reader_engine(url)
    times, page = [], None
    try:
        for _ in range(repeat):
            t0 = time.perf_counter()
            page = reports.report_page("denied-claims", scope=scope, engine=engine, start=largest["first_month"],
                                       sort=sort, filters=filters, offset=0, limit=paging.MAX_ROWS)
            times.append(time.perf_counter() - t0)
    finally:
        engine.dispose()
    out = {"report": "denied-claims", "period_from": largest["first_month"], "sort": "amount desc",
           "filter": f"payer contains {largest['payer_text']!r}", "rows": len(page.frame),
           "matching_rows": page.row_count, "median_seconds": round(statistics.median(times), 4)}
    log(f"grid page denied-claims (admin, whole period, {out['filter']}, amount desc): "
        f"{out['median_seconds'] * 1000:.0f} ms, {out['rows']} of {out['matching_rows']:,} rows")
    return out


# --- CSV export, in a child process -------------------------------------------------------------------------

def rss_bytes() -> int:
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except ImportError:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """Samples this process's RSS every ``interval`` seconds in a thread; ``peak`` is the highest seen."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval, self.peak = interval, rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def _download(client, path: str) -> dict:
    """GET a CSV without buffering it: rows, bytes, time to the first chunk and in all, RSS growth."""
    before = rss_bytes()
    with PeakRss() as peak:
        t0 = time.perf_counter()
        response = client.get(path, buffered=False)
        if response.status_code != 200:
            raise SystemExit(f"bench: {path} answered HTTP {response.status_code}")
        size = lines = 0
        first = None
        for chunk in response.response:
            first = first if first is not None else time.perf_counter() - t0
            chunk = chunk.encode() if isinstance(chunk, str) else chunk
            size += len(chunk)
            lines += chunk.count(b"\n")  # rows end in \n (claim-level, warehouse-written) or \r\n; no field has one
        response.close()
        seconds = time.perf_counter() - t0
    rows = lines - 1  # the header
    return {"rows": rows, "bytes": size, "seconds": round(seconds, 3), "first_chunk_seconds": round(first or 0, 3),
            "rows_per_second": round(rows / seconds) if seconds else None,
            "rss_before_mb": round(before / MB, 1), "rss_growth_mb": round((peak.peak - before) / MB, 1)}


def _csv_child(url: str, start: str, repeat: int) -> dict:
    """In this (fresh) process: an admin downloads /export/denied-claims.csv from ``start`` to the data's end,
    ``repeat`` times, after one warm-up download of a single month (what a worker has loaded once it has
    served anything: imports, the warehouse's first open); rows/s and RSS growth of each."""
    with tempfile.TemporaryDirectory(prefix="dashboard-bench-csv-") as tmp:
        app = make_app(url, Path(tmp))
        admin = Subject("csv", "practice", "admin", "admin@bench.example", "admin")
        create_users(app, [admin])
        client = Browser(app, admin.email, "/practice").client
        warmup = _download(client, f"/export/denied-claims.csv?from={start}&to={start}")
        runs = []
        for _ in range(repeat):
            fresh_cache(app)
            runs.append(_download(client, f"/export/denied-claims.csv?from={start}"))
    return {"report": "denied-claims", "period_from": start, "warmup": warmup, "runs": runs,
            "rows": runs[0]["rows"], "bytes": runs[0]["bytes"],
            "median_seconds": round(statistics.median(r["seconds"] for r in runs), 3),
            "median_first_chunk_seconds": round(statistics.median(r["first_chunk_seconds"] for r in runs), 3),
            "median_rows_per_second": round(statistics.median(r["rows_per_second"] for r in runs)),
            "max_rss_growth_mb": max(r["rss_growth_mb"] for r in runs),
            "rss_source": "psutil" if _has_psutil() else "/proc/self/statm"}


def _has_psutil() -> bool:
    try:
        import psutil  # noqa: F401
    except ImportError:
        return False
    return True


def measure_csv(url: str, start: str, *, repeat: int, log=print) -> dict:
    """The CSV export measured in a child process (see _csv_child)."""
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "csv", url, start, str(repeat)],  # noqa: S603
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench: the CSV measurement failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    log(f"CSV denied-claims from {start} (admin): {out['rows']:,} rows, {out['bytes'] / MB:.1f} MB in "
        f"{out['median_seconds']:.2f} s (first chunk {out['median_first_chunk_seconds']:.2f} s) = "
        f"{out['median_rows_per_second']:,} rows/s; RSS growth up to {out['max_rss_growth_mb']:.0f} MB")
    return out


def measure_app(url: str, *, repeat: int, csv_repeat: int, log=print) -> dict:
    """Pages, grid page and CSV for the warehouse at ``url``."""
    largest = largest_entities(url)
    log(f"largest practice {largest['practice']} ({largest['practice_claims']:,} claims), largest employer "
        f"{largest['employer']} ({largest['employer_member_months']:,} member months)")
    people = subjects(largest)
    with tempfile.TemporaryDirectory(prefix="dashboard-bench-") as tmp:
        app = make_app(url, Path(tmp))
        create_users(app, people)
        pages = measure_pages(app, people, repeat=repeat, log=log)
        app.extensions["dashboard"].warehouse().dispose()
    grid = measure_grid_page(url, largest, repeat=repeat, log=log)
    csv = measure_csv(url, largest["first_month"], repeat=csv_repeat, log=log)
    return {"subjects": largest, "pages": pages, "grid_page": grid, "csv_export": csv}


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "csv":
        result = _csv_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        sys.exit("usage: app_bench.py csv WAREHOUSE_URL FROM_MONTH REPEAT (bench/run.py runs it)")
