"""Privacy across responses: no combination of what an employer user can obtain reveals a blanked cell.

The attacker here holds every response an employer user scoped to three employers can get: each employer
report for every non-empty subset of the employers and every period of one to three months, plus what
anyone knows of the data model (an employee-only tier has as many members as subscribers, an employee +
spouse tier twice as many; office visits are the office-based claims; prescriptions the pharmacy claims).

Each published number is written as a linear expression over the warehouse's true cells (tier members,
category paid, band claimants, ...); a blanked number is revealed exactly when its expression lies in the
span of the published ones. The test checks that for every blanked cell of every response, on a fixture
built to have small cells (tests.fixtures.load_privacy_fixture), on DuckDB and on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from dashboard import access, reports
from dashboard.metrics import employer as em
from dashboard.metrics.filters import Filters
from dashboard.report_cache import ReportCache
from dashboard.warehouse.engine import reader_engine
from tests.conftest import module_warehouse
from tests.fixtures import PRIVACY_EMPLOYERS, load_privacy_fixture

MONTHS = [dt.date(2026, m, 1) for m in (1, 2, 3)]
PERIODS = [(a, b) for i, a in enumerate(MONTHS) for b in MONTHS[i:]]
SUBSETS = [c for k in range(1, 4) for c in itertools.combinations(PRIVACY_EMPLOYERS, k)]
USER = access.scope_for(role="employer_admin", employer_ids=PRIVACY_EMPLOYERS)
# Cells that equal each other across reports by definition (attacker's knowledge).
SAME_CELLS = {"office_visits": "office-based", "prescriptions": "pharmacy"}


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path_factory):
    loaded = module_warehouse(request, tmp_path_factory, load_privacy_fixture)
    writer = next(loaded)
    reader = reader_engine(writer.url.render_as_string(hide_password=False))
    yield reader
    reader.dispose()
    next(loaded, None)


class Audit:
    """Linear expressions over the true cells: the published ones span what the attacker can derive."""

    def __init__(self) -> None:
        self.atoms: dict[tuple, int] = {}
        self.published: list[dict[int, float]] = []
        self.blanked: list[tuple[str, dict[int, float]]] = []

    def atom(self, *key) -> dict[int, float]:
        return {self.atoms.setdefault(key, len(self.atoms)): 1.0}

    @staticmethod
    def add(*parts: dict[int, float], scale: float = 1.0) -> dict[int, float]:
        out: dict[int, float] = defaultdict(float)
        for part in parts:
            for k, v in part.items():
                out[k] += v * scale
        return dict(out)

    def see(self, label: str, expression: dict[int, float] | None, value) -> None:
        if expression is None:
            return
        if value is None or (isinstance(value, float) and np.isnan(value)):
            self.blanked.append((label, expression))
        else:
            self.published.append(expression)

    def see_ratio(self, numerator: dict, denominator: dict, value) -> None:
        """A published ratio r = x / y is the linear fact x - r·y = 0."""
        if value is not None and not (isinstance(value, float) and np.isnan(value)):
            self.published.append(self.add(numerator, self.add(denominator, scale=-float(value))))

    def revealed(self) -> list[str]:
        n = len(self.atoms)
        matrix = np.array([[row.get(i, 0.0) for i in range(n)] for row in self.published]) if self.published \
            else np.zeros((1, n))
        _, sing, vt = np.linalg.svd(matrix, full_matrices=False)
        basis = vt[: int((sing > 1e-9 * sing.max()).sum())] if sing.size and sing.max() > 0 else vt[:0]
        found = []
        for label, expression in self.blanked:
            v = np.array([expression.get(i, 0.0) for i in range(n)])
            residual = v - basis.T @ (basis @ v)
            if np.linalg.norm(residual) < 1e-7 * max(np.linalg.norm(v), 1.0):
                found.append(label)
        return sorted(set(found))


def _truth(engine) -> dict[str, pd.DataFrame]:
    f = Filters(start=MONTHS[0], end=MONTHS[-1], employer_ids=PRIVACY_EMPLOYERS)
    with engine.connect() as conn:
        return {"enrollment": em.enrollment(conn, f), "spend": em.spend(conn, f),
                "utilization": em.utilization(conn, f), "cost-driver-cells": em.cost_driver_cells(conn, f)}


def _month(value) -> dt.date:
    return dt.datetime.strptime(value, "%Y-%m").date() if isinstance(value, str) else value


def test_no_combination_of_responses_reveals_a_blanked_cell(engine):
    audit = Audit()
    truth = _truth(engine)
    tiers = defaultdict(list)  # (employer, month) -> [(plan, tier)]
    for row in truth["enrollment"].itertuples():
        tiers[(row.employer_id, row.month)].append((row.plan, row.tier))
    categories = defaultdict(list)
    for row in truth["spend"].itertuples():
        categories[(row.employer_id, row.month)].append(row.service_category)

    def members(e, m):
        return audit.add(*[audit.atom("E", e, m, p, t, "members") for p, t in tiers[(e, m)]])

    def subscribers(e, m):
        return audit.add(*[audit.atom("E", e, m, p, t, "subscribers") for p, t in tiers[(e, m)]])

    def paid(e, m, col="paid"):
        return audit.add(*[audit.atom("S", e, m, c, col) for c in categories[(e, m)]])

    # what the attacker knows of the data model: tier shapes and cells that are the same count
    def same(left: dict, right: dict, ratio: float = 1.0) -> None:
        audit.published.append(audit.add(left, right, scale=1.0) | {next(iter(right)): -ratio})

    for (e, m), rows in tiers.items():
        for plan, tier in rows:
            if tier in ("EMP", "ESP"):
                same(audit.atom("E", e, m, plan, tier, "members"), audit.atom("E", e, m, plan, tier, "subscribers"),
                     1.0 if tier == "EMP" else 2.0)
    for (e, m), cats in categories.items():
        for measure, category in SAME_CELLS.items():
            if category in cats:
                for u_col, s_col in (("events", "claims"), ("members_with_events", "members_with_claims")):
                    same(audit.atom("U", e, m, measure, u_col), audit.atom("S", e, m, category, s_col))

    # cost-driver cells: each grouping's values add up to the month's paid, and those inside a spend cell (their
    # parent: a service category 2's category, the pharmacy row's pharmacy) to that cell
    drivers = defaultdict(list)  # (employer, month, dimension, parent) -> [values]
    for row in truth["cost-driver-cells"].itertuples():
        drivers[(row.employer_id, row.month, row.dimension, row.parent)].append(row.value)
    for e, m, dim in sorted({(e, m, dim) for e, m, dim, _ in drivers}):
        for col in ("paid", "claims"):
            parts = [(v, p) for p in ("", *categories[(e, m)]) for v in drivers.get((e, m, dim, p), [])]
            grouping = audit.add(*[audit.atom("D", e, m, dim, v, col) for v, _ in parts])
            month = audit.add(*[audit.atom("S", e, m, c, col) for c in categories[(e, m)]])
            audit.published.append(audit.add(grouping, month, scale=-1.0))  # Σ values = the month's
            for p in categories[(e, m)]:  # Σ values of a spend cell = the cell
                inside = drivers.get((e, m, dim, p), [])
                if inside:
                    audit.published.append(audit.add(audit.add(*[audit.atom("D", e, m, dim, v, col) for v in inside]),
                                                     audit.atom("S", e, m, p, col), scale=-1.0))

    cache = ReportCache(512)
    calls = 0

    def run(name, subset, period):
        nonlocal calls
        calls += 1
        return reports.run_report(name, scope=USER, engine=engine, start=period[0], end=period[1],
                                  employer=list(subset), cache=cache).frame

    for period in PERIODS:
        months = [m for m in MONTHS if period[0] <= m <= period[1]]
        for subset in SUBSETS:
            tag = f"{'+'.join(subset)} {period[0]:%Y-%m}..{period[1]:%Y-%m}"
            summary = run("employer-summary", subset, period)
            for row in summary.itertuples():
                who = list(subset) if row.employer_id == "all" else [row.employer_id]
                exprs = {
                    "members": audit.add(*[members(e, period[1]) for e in who]),
                    "subscribers": audit.add(*[subscribers(e, period[1]) for e in who]),
                    "member_months": audit.add(*[members(e, m) for e in who for m in months]),
                    "subscriber_months": audit.add(*[subscribers(e, m) for e in who for m in months]),
                    "paid": audit.add(*[paid(e, m) for e in who for m in months]),
                    "allowed": audit.add(*[paid(e, m, "allowed") for e in who for m in months]),
                    "high_cost_claimants": audit.add(*[audit.atom("H", e, period[1].year, b, "claimants")
                                                       for e in who for b in BANDS]),
                }
                for col, expression in exprs.items():
                    audit.see(f"summary {tag} {row.employer_id} {col}", expression, getattr(row, col))
                audit.see_ratio(exprs["paid"], exprs["member_months"], row.pmpm_paid)
                audit.see_ratio(exprs["allowed"], exprs["member_months"], row.pmpm_allowed)
                audit.see_ratio(exprs["paid"], exprs["subscriber_months"], row.pepm_paid)
            # the trend: the period and its base (the months before it, within the fixture's claims)
            base = [m for m in MONTHS if m < period[0]][-len(months):] if period[0] > MONTHS[0] else []
            for row in run("employer-trend", subset, period).itertuples():
                who = list(subset) if row.employer_id == "all" else [row.employer_id]
                for side, span, value, dollars in (("current", months, row.current, row.paid),
                                                   ("base", base, row.base, row.base_paid)):
                    label = f"trend {tag} {row.employer_id} {row.measure} {row.category} {side}"
                    mm = audit.add(*[members(e, m) for e in who for m in span])
                    if row.measure == "pmpm_paid":
                        cats = {"total": None, "medical": "medical"}.get(row.category, row.category)
                        spent = audit.add(*[audit.atom("S", e, m, c, "paid") for e in who for m in span
                                            for c in categories[(e, m)]
                                            if cats is None or c == cats or (cats == "medical" and c != "pharmacy")])
                        audit.see(label + " paid", spent or None, dollars)  # none: a known 0
                        audit.see_ratio(spent, mm, value)
                    elif row.measure == "pepm_paid":
                        audit.see_ratio(audit.add(*[paid(e, m) for e in who for m in span]),
                                        audit.add(*[subscribers(e, m) for e in who for m in span]), value)
                    elif row.measure == "per_1000" and value is not None and not pd.isna(value):
                        audit.see_ratio(audit.add(*[audit.atom("U", e, m, row.category, "events") for e in who
                                                    for m in span]), mm, value / 12000)
                    elif row.measure in ("member_months", "average_members"):  # the average: member months ÷ n
                        audit.see(label, mm or None, value)
                    elif row.measure == "average_length_of_stay":
                        audit.see_ratio(*[audit.add(*[audit.atom("U", e, m, measure, "events") for e in who
                                                      for m in span])
                                          for measure in ("inpatient_days", "inpatient_admissions")], value)
            for row in run("cost-drivers", subset, period).itertuples():
                who = list(subset) if row.employer_id == "all" else [row.employer_id]
                label = f"drivers {tag} {row.employer_id} {row.dimension} {row.value}"
                if row.dimension == "high_cost_claimants":
                    year = int(row.value)
                    if year == 2026:
                        spent = audit.add(*[audit.atom("H", e, year, b, "paid") for e in who for b in BANDS])
                        audit.see(label + " paid", spent, row.paid)
                        audit.see_ratio(spent, audit.add(*[paid(e, m) for e in who for m in MONTHS]), row.share_of_paid)
                    continue
                for side, span, dollars in (("current", months, row.paid), ("base", base, row.base_paid)):
                    cells = audit.add(*[audit.atom("D", e, m, row.dimension, row.value, "paid") for e in who
                                        for m in span if row.value in drivers[(e, m, row.dimension, row.parent)]])
                    audit.see(f"{label} {side} paid", cells or None, dollars)
                    mm = audit.add(*[members(e, m) for e in who for m in span])
                    audit.see_ratio(cells, mm, row.pmpm_paid if side == "current" else row.base_pmpm_paid)
                cells = audit.add(*[audit.atom("D", e, m, row.dimension, row.value, "claims") for e in who
                                    for m in months if row.value in drivers[(e, m, row.dimension, row.parent)]])
                audit.see(f"{label} claims", cells or None, row.claims)
                spent = audit.add(*[audit.atom("D", e, m, row.dimension, row.value, "paid") for e in who
                                    for m in months if row.value in drivers[(e, m, row.dimension, row.parent)]])
                audit.see_ratio(spent, audit.add(*[paid(e, m) for e in who for m in months]), row.share_of_paid)
            if len(subset) > 1 and subset != PRIVACY_EMPLOYERS:
                continue  # the per-employer reports below give the same rows for any subset (checked)
            for row in run("enrollment", subset, period).itertuples():
                e, m = row.employer_id, _month(row.month)
                for col in ("members", "subscribers", "adds", "terms"):
                    audit.see(f"enrollment {e} {m:%Y-%m} {row.plan} {row.tier} {col}",
                              audit.atom("E", e, m, row.plan, row.tier, col), getattr(row, col))
                audit.see(f"enrollment {e} {m:%Y-%m} {row.plan} {row.tier} member_months",
                          audit.atom("E", e, m, row.plan, row.tier, "members"), row.member_months)
            for row in run("spend", subset, period).itertuples():
                e, m, c = row.employer_id, _month(row.month), row.service_category
                for col in ("paid", "allowed", "claims", "members_with_claims"):
                    audit.see(f"spend {e} {m:%Y-%m} {c} {col}", audit.atom("S", e, m, c, col), getattr(row, col))
                audit.see(f"spend {e} {m:%Y-%m} member_months", members(e, m), row.member_months)
                audit.see_ratio(audit.atom("S", e, m, c, "paid"), members(e, m), row.pmpm_paid)
                audit.see_ratio(audit.atom("S", e, m, c, "allowed"), members(e, m), row.pmpm_allowed)
            for row in run("utilization", subset, period).itertuples():
                e, m = row.employer_id, _month(row.month)
                for col in ("events", "members_with_events"):
                    audit.see(f"utilization {e} {m:%Y-%m} {row.measure} {col}",
                              audit.atom("U", e, m, row.measure, col), getattr(row, col))
                audit.see(f"utilization {e} {m:%Y-%m} member_months", members(e, m), row.member_months)
                if row.per_1000 is not None and not pd.isna(row.per_1000):
                    audit.see_ratio(audit.atom("U", e, m, row.measure, "events"), members(e, m),
                                    row.per_1000 / 12000)
            for row in run("high-cost-claimants", subset, period).itertuples():
                e, year = row.employer_id, period[1].year
                assert row.period == f"{year}-01..{year}-12"
                audit.see(f"hcc {e} {year} {row.band} claimants", audit.atom("H", e, year, row.band, "claimants"),
                          row.claimants)
                audit.see(f"hcc {e} {year} {row.band} paid", audit.atom("H", e, year, row.band, "paid"), row.paid)
                year_paid = audit.add(*[paid(e, m) for m in MONTHS])
                audit.see_ratio(audit.atom("H", e, year, row.band, "paid"), year_paid, row.pct_of_paid)
            demographic = run("demographics", subset, period)
            for (e, mo), rows in demographic.groupby(["employer_id", "month"]):
                m = _month(mo)
                for col, whole in (("members", members(e, m)), ("subscribers", subscribers(e, m))):
                    cells = {r.age_band + r.gender: audit.atom("G", e, m, r.age_band, r.gender, col)
                             for r in rows.itertuples()}
                    # what anyone knows: the age and gender cells add up to the month's members (subscribers)
                    audit.published.append(audit.add(audit.add(*cells.values()), whole, scale=-1.0))
                    for r in rows.itertuples():
                        audit.see(f"demographics {e} {m:%Y-%m} {r.age_band} {r.gender} {col}",
                                  cells[r.age_band + r.gender], getattr(r, col))
            for row in run("spend-outside-enrollment", subset, period).itertuples():
                e, m = row.employer_id, _month(row.month)
                for col in ("paid", "allowed", "claims", "members_with_claims"):
                    audit.see(f"outside {e} {m:%Y-%m} {col}", audit.atom("O", e, m, col), getattr(row, col))

    assert calls > 60
    assert len(audit.blanked) > 50, "the fixture must have small cells for this test to mean anything"
    revealed = audit.revealed()
    print(f"{calls} responses, {len(audit.atoms)} cells, {len(audit.published)} published facts, "
          f"{len(audit.blanked)} blanked, {len(revealed)} revealed")
    assert not revealed, f"{len(revealed)} blanked cells can be derived, e.g. {revealed[:8]}"


BANDS = ("$50k-$100k", "$100k-$500k", "$500k-$1M", "$1M+")


def test_per_employer_rows_do_not_depend_on_the_subset_or_the_period(engine):
    """The canonical grid: a cell is blanked (or shown) alike whichever employers and months are asked for."""
    for name in ("enrollment", "spend", "utilization", "spend-outside-enrollment", "high-cost-claimants"):
        full = reports.run_report(name, scope=USER, engine=engine, start="2026-01", end="2026-03").frame
        for subset in SUBSETS:
            for start, end in (("2026-01", "2026-03"), ("2026-02", "2026-03"), ("2026-03", "2026-03")):
                part = reports.run_report(name, scope=USER, engine=engine, start=start, end=end,
                                          employer=list(subset)).frame
                expected = full[full["employer_id"].isin(subset)]
                if "month" in full.columns:
                    expected = expected[(expected["month"] >= start) & (expected["month"] <= end)]
                pd.testing.assert_frame_equal(part.reset_index(drop=True), expected.reset_index(drop=True),
                                              check_dtype=False, obj=f"{name} {subset} {start}..{end}")


def test_a_tier_shows_members_only_with_its_subscribers(engine):
    """Employee + spouse: members = 2 × subscribers, so one is never shown without the other (in family
    tiers members only bound subscribers)."""
    frame = reports.run_report("enrollment", scope=USER, engine=engine, start="2026-01", end="2026-03").frame
    fixed = frame[frame["tier"].isin(("EMP", "ESP"))]
    assert (fixed["members"].isna() == fixed["subscribers"].isna()).all()
    assert frame["subscribers"].isna().any()
    assert frame["members"].notna().any()
