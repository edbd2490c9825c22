"""Plans of what the app runs on a PostgreSQL warehouse: every statement of every catalog report, of the
claim-level grid pages, of a one-practice and one-employer mart refresh and of the bench's 835 load, with
EXPLAIN (ANALYZE, BUFFERS).

Usage: python bench/explain.py --url postgresql+psycopg://postgres@127.0.0.1:5432/bench1m [--min-ms 100]
                               [--timeout-s 120] [--skip reports|pages|refresh|load] [--out FILE]

Check plans at the size you ship (the team's lesson: a query fine on the test fixtures ran 11 minutes on an
unanalysed 200k warehouse). A read runs twice: first as EXPLAIN (ANALYZE, BUFFERS) inside a savepoint that is
rolled back, then for real; a write (a refresh's DELETE and INSERT … SELECT, the load's) runs once, as its own
EXPLAIN ANALYZE. Statements slower than ``--min-ms`` (by the EXPLAIN's execution time) are written out with
their plan, flagged when the plan reads a fact table sequentially or misjudges a node's rows by 10x or more.
A statement whose EXPLAIN ANALYZE runs past ``--timeout-s`` is shown with its estimated plan (EXPLAIN alone)
and the step it belongs to is abandoned. The mart refreshes and the load run in transactions that are rolled
back, so the warehouse is left as it was. Reports run as the operator (all tenants), as the manager of the
largest practice and as the admin of the largest employer, default period, no cache; the grid pages as the
bench measures them (bench/app_bench.py) and as a grid's first block (no sort, no filter).

Plans go to ``--out`` (default bench/results/postgresql-<size>-plans.txt) as each step ends; a summary goes to
stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import sqlalchemy as sa

from dashboard import access, paging, reports
from dashboard.warehouse import schema, semantic
from dashboard.warehouse.engine import reader_engine, writer_engine

sys.path.insert(0, str(Path(__file__).resolve().parent))
import app_bench  # noqa: E402  (bench/ is not a package)
from run import RESULTS, load_835_rolled_back, size_label, synthetic_835, warehouse_summary  # noqa: E402

# What EXPLAIN can take (the schema check's intentionally failing probe is caught by the savepoint)
EXPLAINABLE = re.compile(r"\s*(SELECT|INSERT|DELETE|UPDATE|WITH)\b", re.IGNORECASE)
WRITES = re.compile(r"\s*(INSERT|DELETE|UPDATE)\b", re.IGNORECASE)
# A sequential scan of one of these where a tenant's rows would do is the thing to find
FACTS = frozenset(table.name for table in schema.FACT_TABLES)
NODE = re.compile(r"->\s+(?P<node>[A-Za-z ]+?)(?: on (?P<table>\w+))?(?: \w+)?\s+\(cost=[^)]* rows=(?P<est>\d+) "
                  r"[^)]*\) \(actual time=[^)]* rows=(?P<rows>\d+) loops=(?P<loops>\d+)\)")
TOP = re.compile(r"^(?P<node>[A-Za-z ]+?)(?: on (?P<table>\w+))?(?: \w+)?\s+\(cost=[^)]* rows=(?P<est>\d+) "
                 r"[^)]*\) \(actual time=[^)]* rows=(?P<rows>\d+) loops=(?P<loops>\d+)\)")
EXECUTION = re.compile(r"Execution Time: ([\d.]+) ms")


@dataclass
class Statement:
    label: str
    sql: str
    parameters: object
    plan: str
    ms: float  # the EXPLAIN's execution time
    findings: list[str] = field(default_factory=list)


def findings(plan: str) -> list[str]:
    """Sequential scans of fact tables, and nodes whose row estimate is off by 10x or more (either way)."""
    out = []
    for line in plan.splitlines():
        match = NODE.search(line) or TOP.match(line.strip())
        if match is None:
            continue
        node, table = match["node"].strip(), match["table"]
        est, rows = int(match["est"]), int(match["rows"])
        if node.endswith("Seq Scan") and table in FACTS:
            out.append(f"seq scan of {table} ({rows:,} rows x {match['loops']} loops)")
        if max(est, rows) >= 1000 and max(est, rows) / max(min(est, rows), 1) >= 10:  # small nodes don't matter
            out.append(f"{node}{' on ' + table if table else ''}: estimated {est:,} rows, got {rows:,}")
    return list(dict.fromkeys(out))


class TimedOut(Exception):
    """A statement's EXPLAIN ANALYZE ran past --timeout-s: the step it belongs to is abandoned."""


class Recorder:
    """Explains every statement an engine runs and keeps the plans; writes the slow ones to ``out`` as each
    step ends. A read is explained inside a savepoint rolled back before the read itself runs; a write (a mart
    refresh's DELETE and INSERT … SELECT) is replaced by its own EXPLAIN ANALYZE, which performs it, so it runs
    once, on the same rows as without the bench (running it twice would leave twice the dead rows for the
    statements after it to read)."""

    def __init__(self, out: Path, *, min_ms: float, timeout_s: float) -> None:
        self.out, self.min_ms, self.timeout_ms = out, min_ms, int(timeout_s * 1000)
        self.label = ""
        self.statements: list[Statement] = []
        self.failed: list[str] = []
        self._write: tuple[str, object, str] | None = None  # (statement, parameters, estimated plan)

    def attach(self, engine: sa.Engine) -> None:
        sa.event.listen(engine, "before_cursor_execute", self._before, retval=True)
        sa.event.listen(engine, "after_cursor_execute", self._after)

    def _record(self, statement: str, parameters: object, plan: str, *, timed_out: bool = False) -> None:
        found = EXECUTION.search(plan)
        record = Statement(self.label, statement, parameters, plan,
                           self.timeout_ms if timed_out else float(found.group(1)) if found else 0.0, findings(plan))
        if timed_out:
            record.findings.insert(0, f"EXPLAIN ANALYZE timed out after {self.timeout_ms / 1000:g} s: the plan "
                                      "below has estimates only")
        self.statements.append(record)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        if executemany or not EXPLAINABLE.match(statement):
            return statement, parameters
        cursor.execute("SAVEPOINT bench_explain")
        cursor.execute(f"SET LOCAL statement_timeout = {self.timeout_ms}")  # undone with the savepoint
        if WRITES.match(statement):
            cursor.execute(f"EXPLAIN {statement}", parameters)  # kept in case it times out
            self._write = (statement, parameters, "\n".join(row[0] for row in cursor.fetchall()))
            return f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters
        timed_out = False
        try:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        except psycopg.errors.QueryCanceled:
            cursor.execute("ROLLBACK TO SAVEPOINT bench_explain")
            cursor.execute(f"EXPLAIN {statement}", parameters)  # the plan it chose, estimates only
            plan, timed_out = "\n".join(row[0] for row in cursor.fetchall()), True
        except psycopg.Error:  # a statement meant to fail: the schema probe
            plan = None
        cursor.execute("ROLLBACK TO SAVEPOINT bench_explain")
        cursor.execute("RELEASE SAVEPOINT bench_explain")
        if plan is not None:
            self._record(statement, parameters, plan, timed_out=timed_out)
            if timed_out:
                raise TimedOut(statement.strip().splitlines()[0][:80])
        return statement, parameters

    def _after(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self._write is None:
            return
        original, params, _ = self._write
        self._write = None
        plan = "\n".join(row[0] for row in cursor.fetchall())  # the write's result is its plan
        cursor.execute("RELEASE SAVEPOINT bench_explain")  # keeps what it wrote
        self._record(original, params, plan)

    def _write_timed_out(self, exc: sa.exc.DBAPIError) -> bool:
        """A write cancelled by the timeout: recorded with its estimated plan."""
        if self._write is None or not isinstance(exc.orig, psycopg.errors.QueryCanceled):
            return False
        original, params, estimated = self._write
        self._write = None
        self._record(original, params, estimated, timed_out=True)
        return True

    @contextlib.contextmanager
    def step(self, label: str) -> Iterator[None]:
        self.label, first = label, len(self.statements)
        t0 = time.perf_counter()
        try:
            yield
            note = ""
        except TimedOut as exc:
            self.failed.append(label)
            note = f" ABANDONED: a statement ran past the timeout ({exc})"
        except sa.exc.DBAPIError as exc:
            if not self._write_timed_out(exc):
                raise
            self.failed.append(label)
            note = " ABANDONED: a write ran past the timeout"
        seconds = time.perf_counter() - t0
        slow = [s for s in self.statements[first:] if s.ms >= self.min_ms]
        print(f"{label:<70} {seconds * 1000:9.0f} ms with EXPLAIN; {len(slow)} slow{note}", file=sys.stderr)
        with self.out.open("a") as out:
            for s in sorted(slow, key=lambda s: -s.ms):
                out.write("\n".join([f"=== {s.label}: {s.ms:,.0f} ms", *(f"!!! {f}" for f in s.findings), "",
                                     s.sql.strip(), f"-- parameters: {s.parameters!r}", "", s.plan, "", ""]))


def run_reports(engine: sa.Engine, recorder: Recorder, largest: dict) -> None:
    scopes = {"operator": access.OPERATOR,
              "manager": access.scope_for(role="practice_manager", practice_ids=[largest["practice"]]),
              "employer admin": access.scope_for(role="employer_admin", employer_ids=[largest["employer"]])}
    for name, report in reports.CATALOG.items():
        for who, scope in scopes.items():
            if not scope.can_view(report.audience) or (scope.deidentified and report.privacy is None):
                continue
            with recorder.step(f"report {name} ({who})"):
                reports.run_report(name, scope=scope, engine=engine)


def run_pages(engine: sa.Engine, recorder: Recorder, largest: dict) -> None:
    admin = access.scope_for(role="admin")
    manager = access.scope_for(role="practice_manager", practice_ids=[largest["practice"]])
    payer = [paging.ColumnFilter("payer", (paging.Condition("text", "contains", largest["payer_text"]),))]
    amount = [paging.Sort("amount", descending=True)]
    cases: list[tuple[str, Callable[[], object]]] = []
    for report in reports.PAGED_IN_SQL:
        for who, scope in (("admin", admin), ("manager", manager)):
            cases.append((f"page {report} ({who}, first block)", lambda r=report, s=scope: reports.report_page(
                r, scope=s, engine=engine, offset=0, limit=50)))
    cases.append(("page denied-claims (admin, whole period, payer filter, amount desc)",
                  lambda: reports.report_page("denied-claims", scope=admin, engine=engine,
                                              start=largest["first_month"], sort=amount, filters=payer)))
    for label, call in cases:
        with recorder.step(label):
            call()


def run_refreshes(url: str, recorder: Recorder, largest: dict) -> None:
    """One practice's and one employer's mart refresh, each in a transaction rolled back at the end."""
    engine = writer_engine(url)
    recorder.attach(engine)
    try:
        for label, kwargs in ((f"refresh practice {largest['practice']}", {"practices": [largest["practice"]],
                                                                            "employers": []}),
                              (f"refresh employer {largest['employer']}", {"practices": [],
                                                                           "employers": [largest["employer"]]})):
            with engine.connect() as conn:
                trans = conn.begin()
                try:
                    with recorder.step(label):
                        semantic.refresh_marts(conn, **kwargs)
                finally:
                    trans.rollback()
    finally:
        engine.dispose()


def run_load(url: str, recorder: Recorder, *, claims: int, tmp: Path) -> None:
    """The bench's 835 (bench/run.py: ``claims`` claim payments to the largest practice at 1M claims), loaded
    and its practice's marts refreshed in a transaction rolled back at the end."""
    era = tmp / "bench.835"
    era.write_text(synthetic_835(claims))
    with recorder.step(f"835 load of {claims:,} claim payments, rolled back"):
        load_835_rolled_back(url, era, watch=recorder.attach)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="a PostgreSQL warehouse")
    parser.add_argument("--min-ms", type=float, default=100.0, help="write out statements slower than this")
    parser.add_argument("--timeout-s", type=float, default=120.0,
                        help="abandon a step when one statement's EXPLAIN ANALYZE runs longer (its plan is kept)")
    parser.add_argument("--practice", help="the practice whose marts are refreshed (default: the largest)")
    parser.add_argument("--employer", help="the employer whose marts are refreshed (default: the largest)")
    parser.add_argument("--skip", action="append", default=[], choices=("reports", "pages", "refresh", "load"))
    parser.add_argument("--era-claims", type=int, default=5_000, help="claim payments in the 835 of the load step")
    parser.add_argument("--out", type=Path, help="plans file (default bench/results/postgresql-<size>-plans.txt)")
    args = parser.parse_args(argv)
    if sa.make_url(args.url).get_backend_name() != "postgresql":
        parser.error("--url takes a PostgreSQL URL: EXPLAIN (ANALYZE, BUFFERS) is PostgreSQL's")
    summary = warehouse_summary(args.url)
    label = f"postgresql-{size_label(summary.claims)}"
    target = args.out or RESULTS / f"{label}-plans.txt"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(f"{label}: {summary.claims:,} claims; statements slower than {args.min_ms:g} ms by their "
                      f"EXPLAIN (ANALYZE, BUFFERS); {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n\n")
    largest = app_bench.largest_entities(args.url)
    recorder = Recorder(target, min_ms=args.min_ms, timeout_s=args.timeout_s)
    engine = reader_engine(args.url)
    recorder.attach(engine)
    try:
        if "reports" not in args.skip:
            run_reports(engine, recorder, largest)
        if "pages" not in args.skip:
            run_pages(engine, recorder, largest)
    finally:
        engine.dispose()
    if "refresh" not in args.skip:
        run_refreshes(args.url, recorder, {**largest, "practice": args.practice or largest["practice"],
                                           "employer": args.employer or largest["employer"]})
    if "load" not in args.skip:
        with tempfile.TemporaryDirectory(prefix="dashboard-explain-") as tmp:
            run_load(args.url, recorder, claims=args.era_claims, tmp=Path(tmp))
    slow = sorted((s for s in recorder.statements if s.ms >= args.min_ms), key=lambda s: -s.ms)
    print(f"{label}: {len(recorder.statements)} statements explained, {len(slow)} slower than {args.min_ms:g} ms"
          + (f"; abandoned: {', '.join(recorder.failed)}" if recorder.failed else ""))
    for s in slow:
        print(f"{s.ms:9,.0f} ms  {s.label}: {s.sql.strip().splitlines()[0][:70]}")
        for f in s.findings:
            print(f"{'':13}{f}")
    print(f"plans in {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
