"""Benchmarks (`make bench`): demo build time, report and page latency (cold and cached) and an 835 load,
written to bench/results/.

Figures are medians of repeated runs on this machine; compare runs by ratio, not absolute seconds.
Usage: python bench/run.py [--claims 200000 | --warehouse PATH] [--repeat 5] [--out bench/results/latest.json]

``--warehouse PATH`` times the reports against an existing DuckDB warehouse (e.g. a 10M-claim one built
once with `dashboard demo --claims 10000000`) instead of building a demo; it is opened read-only, the
835 load goes into a copy in a temporary directory, and the demo build time is reported as null.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from dashboard import access, reports
from dashboard.report_cache import ReportCache
from dashboard.warehouse.build import rebuild_warehouse
from dashboard.warehouse.engine import reader_engine
from dashboard.warehouse.loaders.run import run_load
from dashboard.warehouse.synthetic import generate_demo


def synthetic_835(claims: int) -> str:
    """One balanced 835 paying ``claims`` claims of 100.00 each (80.00 paid, CO-45 15.00, PR-2 5.00)."""
    body = ["ST*835*0001", f"BPR*I*{80 * claims:.2f}*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999988880*DA*98765"
            "*20260115", "TRN*1*BENCH0001*1512345678", "N1*PR*BENCH PAYER*XV*BENCH", "N1*PE*BENCH CLINIC*XX*1999999999",
            "REF*TJ*364812907", "LX*1"]
    for n in range(claims):
        body += [f"CLP*BENCH{n:07d}*1*100.00*80.00*5.00*12*PCN{n}", "NM1*QC*1*DOE*JANE****MI*X",
                 "SVC*HC:99213*100.00*80.00", "DTM*472*20260105", "CAS*CO*45*15.00", "CAS*PR*2*5.00"]
    body.append(f"SE*{len(body) + 1}*0001")
    isa = ("ISA*00*          *00*          *ZZ*PAYER          *ZZ*CLINIC         *260115*1200*^*00501*000000001*0*P*:")
    gs = "GS*HP*PAYER*CLINIC*20260115*1200*1*X*005010X221A1"
    return "~\n".join([isa, gs, *body, "GE*1*1", "IEA*1*000000001"]) + "~\n"


# The reports each page's main callback runs (pages/practice.py, pages/employer.py), in that order.
PAGE_REPORTS = {
    "practice": ("practice-kpis", "ar-aging", "denials", "remittances", "payer-mix", "practice-summary"),
    "employer": ("employer-summary", "spend", "enrollment", "utilization", "high-cost-claimants",
                 "spend-outside-enrollment"),
}


def page_latency(engine, *, repeat: int) -> dict:
    """Median time of a page's reports with an empty cache (first visit, or after a load) and with a warm
    one (a revisit, or a filter set back)."""
    out = {}
    for page, names in PAGE_REPORTS.items():
        cold, warm = [], []
        for _ in range(repeat):
            cache = ReportCache()
            for timings in (cold, warm):
                t0 = time.perf_counter()
                for name in names:
                    reports.run_report(name, scope=access.OPERATOR, engine=engine, cache=cache)
                timings.append(time.perf_counter() - t0)
        out[page] = {"cold_median_seconds": round(statistics.median(cold), 4),
                     "warm_median_seconds": round(statistics.median(warm), 4)}
        print(f"{page} page reports: cold {statistics.median(cold):.3f}s, warm {statistics.median(warm):.3f}s",
              file=sys.stderr)
    return out


def warehouse_summary(url: str) -> SimpleNamespace:
    """The counts a demo build reports, read from an existing warehouse."""
    engine = reader_engine(url)
    try:
        with engine.connect() as conn:
            claims, lines, members = conn.exec_driver_sql(
                "SELECT (SELECT count(DISTINCT claim_id) FROM medical_claim), (SELECT count(*) FROM medical_claim), "
                "(SELECT count(DISTINCT person_id) FROM eligibility)").one()
    finally:
        engine.dispose()
    return SimpleNamespace(claims=claims, claim_lines=lines, members=members)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--claims", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--era-claims", type=int, default=5_000, help="claim payments in the benchmark 835")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "latest.json"))
    parser.add_argument("--warehouse", type=Path, help="an existing DuckDB warehouse to time (no demo build)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"duckdb:///{Path(tmp) / 'bench.duckdb'}"
        build_seconds = None
        if args.warehouse is not None:
            if not args.warehouse.is_file():
                parser.error(f"no warehouse at {args.warehouse}")
            url = f"duckdb:///{args.warehouse.resolve()}"
            summary = warehouse_summary(url)
        else:
            started = time.perf_counter()
            summary = rebuild_warehouse(url, lambda conn, checkpoint: generate_demo(
                conn, claims=args.claims, seed=1, progress=False, checkpoint=checkpoint))
            build_seconds = time.perf_counter() - started
        engine = reader_engine(url)
        latencies = {}
        for name in reports.CATALOG:
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                result = reports.run_report(name, scope=access.OPERATOR, engine=engine)
                times.append(time.perf_counter() - t0)
            latencies[name] = {"median_seconds": round(statistics.median(times), 4), "rows": len(result.frame)}
            print(f"{name:<28} median {statistics.median(times):7.3f}s  rows {len(result.frame)}", file=sys.stderr)
        pages = page_latency(engine, repeat=args.repeat)
        engine.dispose()
        era = Path(tmp) / "bench.835"
        era.write_text(synthetic_835(args.era_claims))
        if args.warehouse is not None:  # never load into the caller's warehouse: into a copy of it
            copy = Path(tmp) / "bench.duckdb"
            shutil.copyfile(args.warehouse, copy)
            url = f"duckdb:///{copy}"
        t0 = time.perf_counter()
        run_load(url, fmt="x12-835", paths=[era])
        load_seconds = time.perf_counter() - t0
        print(f"835 load of {args.era_claims:,} claim payments into the {summary.claims:,}-claim warehouse: "
              f"{load_seconds:.1f}s", file=sys.stderr)
    out = {
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "claims": summary.claims, "claim_lines": summary.claim_lines, "members": summary.members,
        "warehouse": str(args.warehouse) if args.warehouse is not None else None,
        "demo_build_seconds": None if build_seconds is None else round(build_seconds, 2),
        "report_latency": latencies, "page_latency": pages,
        "x12_835_load": {"claim_payments": args.era_claims, "seconds": round(load_seconds, 2)},
        "repeat": args.repeat, "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    built = "existing warehouse" if build_seconds is None else f"demo build {build_seconds:.1f}s"
    print(f"{built} for {summary.claims:,} claims; results in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
