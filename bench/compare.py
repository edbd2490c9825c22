"""Growth between two bench runs: each page's time at the larger warehouse ÷ at the smaller, per page and role.

Usage: python bench/compare.py bench/results/duckdb-1m.json bench/results/duckdb-10m.json

The files may come in either order (the smaller warehouse, by claims, is the base). Issue 10's target: a page
at 10M claims takes at most 1.5x its time at 1M (ratio ≤ 1.5). Prints each run's table, then the ratios;
exits 0 either way (a benchmark reports, it does not gate).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import TARGETS, table  # noqa: E402  (bench/ is not a package)

# (column, phase, field): what is compared per page and role
MEASURES = (("cards cold", "cold", "cards_seconds"), ("page cold", "cold", "seconds"),
            ("page warm", "warm", "seconds"), ("filter cold", "filter_cold", "seconds"),
            ("filter warm", "filter_warm", "seconds"), ("KB", "cold", "bytes"))


def _ratio(big: float | None, small: float | None) -> float | None:
    return None if not big or not small else round(big / small, 2)


def compare(small: dict, big: dict) -> dict:
    """{page/role: {measure: ratio}} plus the grid page and the CSV export; the page cold ratio is the one the
    target applies to."""
    out: dict = {"base": small["label"], "other": big["label"],
                 "claims_ratio": round(big["claims"] / small["claims"], 2), "pages": {}}
    for key, page in small["app"]["pages"].items():
        other = big["app"]["pages"].get(key)
        if other is None:
            continue
        out["pages"][key] = {name: _ratio(other[phase][field], page[phase][field]) for name, phase, field in MEASURES}
    out["grid_page"] = _ratio(big["app"]["grid_page"]["median_seconds"], small["app"]["grid_page"]["median_seconds"])
    out["csv_rows_per_second"] = _ratio(big["app"]["csv_export"]["median_rows_per_second"],
                                        small["app"]["csv_export"]["median_rows_per_second"])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs=2, type=Path)
    parser.add_argument("--quiet", action="store_true", help="the ratios only, not each run's table")
    args = parser.parse_args(argv)
    small, big = sorted((json.loads(f.read_text()) for f in args.files), key=lambda r: r["claims"])
    if not args.quiet:
        print(table(small), table(big), sep="\n\n", end="\n\n")
    result = compare(small, big)
    limit = TARGETS["growth_ratio"]
    print(f"growth {result['other']} ÷ {result['base']} ({result['claims_ratio']}x the claims); "
          f"target: page cold ≤ {limit}")
    print(f"{'page / role':<26}" + "".join(f"{name:>13}" for name, _, _ in MEASURES))
    for key, ratios in result["pages"].items():
        cells = []
        for name, _, _ in MEASURES:
            value = ratios[name]
            flag = "" if name != "page cold" or value is None else (" ok" if value <= limit else " !!")
            cells.append(f"{'—' if value is None else f'{value:.2f}'}{flag}".rjust(13))
        print(f"{key:<26}" + "".join(cells))
    print(f"grid page (denied-claims, 100 rows): {result['grid_page']}x the time; "
          f"CSV export: {result['csv_rows_per_second']}x the rows/s")
    met = sum(1 for r in result["pages"].values() if r["page cold"] is not None and r["page cold"] <= limit)
    print(f"page cold growth target (≤ {limit}): met for {met} of {len(result['pages'])} page/role")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
