"""Benchmarks (`make bench`): demo build time and report latency, written to bench/results/.

Figures are medians of repeated runs on this machine; compare runs by ratio, not absolute seconds.
Usage: python bench/run.py [--claims 200000] [--repeat 5] [--out bench/results/latest.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from dashboard import access, reports
from dashboard.warehouse.build import rebuild_warehouse
from dashboard.warehouse.engine import reader_engine
from dashboard.warehouse.synthetic import generate_demo


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--claims", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "latest.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"duckdb:///{Path(tmp) / 'bench.duckdb'}"
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
    out = {
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "claims": summary.claims, "claim_lines": summary.claim_lines, "members": summary.members,
        "demo_build_seconds": round(build_seconds, 2), "report_latency": latencies,
        "repeat": args.repeat, "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"demo build {build_seconds:.1f}s for {summary.claims:,} claims; results in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
