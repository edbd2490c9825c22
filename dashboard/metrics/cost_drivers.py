"""What drives an employer's cost (issue 13 item 3), one formula for every viewer.

Spend and PMPM of the period by service category 2, condition group, place of service and provider organisation
(:mod:`dashboard.metrics.groupers`), each against the base period (the period of equal length before it), and
the share of a calendar year's paid that went to members over $50k, for each year the two periods touch.

As :mod:`dashboard.metrics.employer_trend`, every figure is a sum of the cells the viewer is shown — for an
employer user the suppressed cost-driver grid of :mod:`dashboard.deidentified` — over the months with claims
data, then a ratio; a sum with a blanked part is blanked. Sources: Tuva service categories; AHRQ CCSR body
systems; CMS place-of-service codes; kpi-reference (cost drivers, high-cost claimants).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from dashboard.metrics import groupers as g
from dashboard.metrics.employer_trend import NO_DATA, ViewerFrames, base_period, known, ratio, total
from dashboard.metrics.filters import Filters
from dashboard.warehouse.semantic import COST_DRIVER_DIMENSIONS

DIMENSIONS = (*COST_DRIVER_DIMENSIONS, "high_cost_claimants")
COLUMNS = ("employer_id", "dimension", "value", "label", "parent", "period", "paid", "member_months", "pmpm_paid",
           "share_of_paid", "claims", "base_paid", "base_pmpm_paid", "pmpm_change", "pmpm_change_pct")


def _label(dimension: str, value: str, named: object) -> str:
    if dimension == "condition_group":
        return g.CONDITION_NAMES.get(value, value)
    if dimension == "place_of_service":
        return g.place_of_service_name(value)
    if dimension == "provider_id":
        if value == g.PHARMACY_PROVIDER[0]:
            return g.PHARMACY_PROVIDER[1]
        return str(named) if isinstance(named, str) and named else f"TIN {value}"
    return value


def _period_sums(f: Filters, frames: ViewerFrames, labels: dict) -> tuple[dict, dict, dict]:
    """Per employer with claims data in ``f``: {(dimension, value, parent): (paid, claims)}, its member months
    with claims data and its paid; values None where a part is blanked. ``labels`` gains the cells' names."""
    totals = frames("month-totals", f)
    cells = frames("cost-driver-cells", f)
    covered = totals[totals["claims_data"] == 1]
    sums: dict[str, dict] = {e: {} for e in sorted(set(covered["employer_id"]))}
    member_months = {e: total(rows["member_months"]) for e, rows in covered.groupby("employer_id")}
    paid = {e: total(rows["paid"]) for e, rows in covered.groupby("employer_id")}
    mine = cells.merge(covered[["employer_id", "month"]], on=["employer_id", "month"])
    if len(mine):  # one pass: each cell's sums over the months, blank (None) where any part is blank
        money = pd.to_numeric(mine["paid"], errors="coerce")
        claims = pd.to_numeric(mine["claims"], errors="coerce")
        grouped = mine.assign(paid_n=money, paid_blank=money.isna(), claims_n=claims, claims_blank=claims.isna()) \
            .groupby(["employer_id", "dimension", "value", "parent"], sort=False) \
            .agg(paid=("paid_n", "sum"), paid_blank=("paid_blank", "any"), claims=("claims_n", "sum"),
                 claims_blank=("claims_blank", "any"), label=("label", "first"))
        for (employer, dimension, value, parent), row in zip(grouped.index, grouped.itertuples(index=False),
                                                             strict=True):
            key = (dimension, value, parent)
            sums[employer][key] = (None if row.paid_blank else float(row.paid),
                                   None if row.claims_blank else float(row.claims))
            labels.setdefault(key, row.label)
    return sums, member_months, paid


def _high_cost_rows(f: Filters, base: Filters, frames: ViewerFrames, employers: list[str]) -> list[dict]:
    """Members over $50k: their paid and its share of the calendar year's paid, for each year the base and the
    period touch (years are the only period they are counted over, see dashboard.deidentified)."""
    rows = []
    for year in range(base.start.year, f.end.year + 1):
        span = Filters(start=dt.date(year, 1, 1), end=dt.date(year, 12, 1), employer_ids=f.employer_ids)
        bands = frames("high-cost-claimants", span)
        totals = frames("month-totals", span)
        covered = totals[totals["claims_data"] == 1]  # the year's paid is over its months with claims data
        hcc = {e: total(bands.loc[bands["employer_id"] == e, "paid"]) for e in employers}
        months = {e: int((covered["employer_id"] == e).sum()) for e in employers}
        year_paid = {e: total(covered.loc[covered["employer_id"] == e, "paid"]) if months[e] else NO_DATA
                     for e in employers}
        groups = [(e, [e]) for e in employers] + ([("all", employers)] if len(employers) > 1 else [])
        for who, parts in groups:
            with_data = [e for e in parts if known(year_paid[e]) or year_paid[e] is None]
            spent = total(hcc[e] for e in with_data) if with_data else NO_DATA
            of = total(year_paid[e] for e in with_data) if with_data else NO_DATA
            # a year the claims only partly cover counts fewer members over $50k: the label says so
            covered = max((months[e] for e in parts), default=0)
            partial = f" ({covered} month{'s' if covered != 1 else ''} of claims data)" if covered < 12 else ""
            rows.append({"employer_id": who, "dimension": "high_cost_claimants", "value": str(year),
                         "label": f"Members over $50k in {year}{partial}", "parent": "",
                         "period": f"{year}-01..{year}-12",
                         "paid": spent, "share_of_paid": ratio(spent, of)})
    return rows


def cost_drivers(f: Filters, frames: ViewerFrames, *, deidentified: bool) -> pd.DataFrame:
    """Per employer (and 'all' over several), dimension and value: paid, member months, PMPM and share of the
    period's paid, claims, and the base period's paid and PMPM with the PMPM's change; plus the high-cost
    claimants' share of each calendar year's paid. Largest paid first within each dimension."""
    base = base_period(f)
    labels: dict = {}
    now, now_mm, now_paid = _period_sums(f, frames, labels)
    before, before_mm, _ = _period_sums(base, frames, labels)
    employers = sorted(set(now) | set(before))
    groups = [(e, [e]) for e in employers] + ([("all", employers)] if len(employers) > 1 else [])
    period = f"{f.start:%Y-%m}..{f.end:%Y-%m}"
    rows = []
    for who, parts in groups:
        keys = sorted({key for e in parts for key in (*now.get(e, {}), *before.get(e, {}))})
        current_parts = [e for e in parts if e in now]
        base_parts = [e for e in parts if e in before]
        mm = total(now_mm[e] for e in current_parts) if current_parts else NO_DATA
        base_mm = total(before_mm[e] for e in base_parts) if base_parts else NO_DATA
        period_paid = total(now_paid[e] for e in current_parts) if current_parts else NO_DATA
        for key in keys:
            dimension, value, parent = key

            def side(sums: dict, who_parts: list[str], column: int, key=key) -> object:
                # an employer with claims data and no such claims adds 0
                return total(sums[e].get(key, (0, 0))[column] for e in who_parts) if who_parts else NO_DATA

            paid, claims = side(now, current_parts, 0), side(now, current_parts, 1)
            base_paid = side(before, base_parts, 0)
            pmpm, base_pmpm = ratio(paid, mm), ratio(base_paid, base_mm)
            both = known(pmpm) and known(base_pmpm)
            rows.append({"employer_id": who, "dimension": dimension, "value": value,
                         "label": _label(dimension, value, labels.get(key)), "parent": parent, "period": period,
                         "paid": paid, "member_months": mm, "pmpm_paid": pmpm,
                         "share_of_paid": ratio(paid, period_paid),
                         "claims": claims, "base_paid": base_paid, "base_pmpm_paid": base_pmpm,
                         "pmpm_change": float(pmpm) - float(base_pmpm) if both else None,
                         "pmpm_change_pct": (float(pmpm) - float(base_pmpm)) / float(base_pmpm)
                         if both and base_pmpm else None})
    rows += _high_cost_rows(f, base, frames, employers)
    values = ("paid", "member_months", "pmpm_paid", "share_of_paid", "claims", "base_paid", "base_pmpm_paid")
    if deidentified:  # before the frame is made: it would read a blanked None as NaN, like "no data"
        for row in rows:
            row["suppressed"] = any(row.get(v, NO_DATA) is None for v in values)
    out = pd.DataFrame(rows, columns=[*COLUMNS, *(["suppressed"] if deidentified else [])])
    for col in values:
        out[col] = [float(v) if known(v) else None for v in out[col]]
    order = {d: i for i, d in enumerate(DIMENSIONS)}
    out["_dim"] = out["dimension"].map(order)
    out["_who"] = out["employer_id"] == "all"
    out["_paid"] = -pd.to_numeric(out["paid"], errors="coerce").fillna(-1e18)  # blank last
    out.loc[out["dimension"] == "high_cost_claimants", "_paid"] = 0  # years in order
    out = out.sort_values(["_who", "employer_id", "_dim", "_paid", "value"]).drop(columns=["_dim", "_who", "_paid"])
    return out.reset_index(drop=True)
