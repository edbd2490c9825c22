"""Employer KPIs on the hand-built fixture (tests/fixtures.py), on DuckDB and PostgreSQL.

Worked by hand for GRP1 (2026):
  A  self   2026-01-01..2026-03-31 EMP  -> Jan Feb Mar; office claim Jan paid 100; inpatient Feb paid 60,000
  B  self   2026-01-15..2026-01-20 ESP  -> Jan only (any overlap counts); ER claim in Feb = outside enrollment
  B2 spouse 2026-01-15..2026-01-20 ESP  -> Jan only
  C  self   2025-12-01..2026-02-28 and 2026-03-01..2099-12-31 EMP -> continuous; Rx Mar paid 40
Member months: Jan 4, Feb 2, Mar 2. Adds: Jan 3 (A, B, B2). Terms: Jan 2 (B, B2), Mar 1 (A).
"""

from __future__ import annotations

import datetime as dt

import pytest

from dashboard.metrics import employer as em
from dashboard.metrics.filters import Filters
from tests.conftest import module_warehouse
from tests.fixtures import E1, E2, load_employer_fixture

D = dt.date
JAN, FEB, MAR = D(2026, 1, 1), D(2026, 2, 1), D(2026, 3, 1)


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path_factory):
    yield from module_warehouse(request, tmp_path_factory, load_employer_fixture)


def run(engine, fn, employers=(E1,), start=JAN, end=MAR):
    with engine.connect() as conn:
        return fn(conn, Filters(start=start, end=end, employer_ids=employers))


def pick(frame, **where):
    rows = frame
    for k, v in where.items():
        rows = rows[rows[k] == v]
    assert len(rows) == 1, f"expected one row for {where}, got {len(rows)}"
    return rows.iloc[0]


def test_member_months_any_overlap_counts(engine):
    out = run(engine, em.member_months)
    assert dict(zip(out["month"], out["member_months"], strict=True)) == {JAN: 4, FEB: 2, MAR: 2}
    assert pick(out, month=JAN)["subscriber_months"] == 3


def test_enrollment_adds_terms_tiers(engine):
    out = run(engine, em.enrollment)
    jan_emp = pick(out, month=JAN, tier="EMP")
    jan_esp = pick(out, month=JAN, tier="ESP")
    assert (jan_emp["members"], jan_emp["subscribers"], jan_emp["adds"], jan_emp["terms"]) == (2, 2, 1, 0)
    assert (jan_esp["members"], jan_esp["subscribers"], jan_esp["adds"], jan_esp["terms"]) == (2, 1, 2, 2)
    # C's back-to-back spans are neither a term in Feb nor an add in Mar; A terms in Mar
    assert pick(out, month=FEB, tier="EMP")["terms"] == 0
    mar = pick(out, month=MAR, tier="EMP")
    assert (mar["adds"], mar["terms"], mar["member_months"]) == (0, 1, 2)


def test_pmpm_by_service_category(engine):
    out = run(engine, em.spend)
    office = pick(out, month=JAN, service_category="office-based")
    assert (office["paid"], office["member_months"], office["pmpm_paid"]) == (100, 4, 25)
    assert office["pmpm_allowed"] == 30
    inpatient = pick(out, month=FEB, service_category="inpatient")
    assert inpatient["pmpm_paid"] == 30000
    assert pick(out, month=MAR, service_category="pharmacy")["pmpm_paid"] == 20
    # B's ER visit in February is outside enrollment: not in PMPM
    assert out[(out["month"] == FEB) & (out["service_category"] == "outpatient")].empty


def test_spend_outside_enrollment_reported_apart(engine):
    out = run(engine, em.spend_outside_enrollment)
    row = pick(out, month=FEB)
    assert (row["employer_id"], row["paid"], row["claims"]) == (E1, 500, 1)


def test_total_pmpm(engine):
    out = run(engine, em.pmpm)
    assert pick(out, month=FEB)["pmpm_paid"] == 30000
    assert pick(out, month=MAR)["pmpm_allowed"] == 25


def test_utilization_per_1000(engine):
    out = run(engine, em.utilization)
    assert pick(out, month=FEB, measure="inpatient_admissions")["per_1000"] == 6000  # 1 / 2 * 12,000
    assert pick(out, month=JAN, measure="office_visits")["per_1000"] == 3000  # 1 / 4 * 12,000
    assert pick(out, month=MAR, measure="prescriptions")["per_1000"] == 6000
    assert pick(out, month=FEB, measure="er_visits")["events"] == 0  # outside enrollment


def test_high_cost_claimants(engine):
    out = run(engine, em.high_cost_claimants)
    band = pick(out, band="$50k-$100k")
    assert (band["claimants"], band["paid"]) == (1, 60100)
    assert band["pct_of_paid"] == pytest.approx(60100 / 60140)
    assert pick(out, band="$100k-$500k")["claimants"] == 0


def test_scope_keeps_employers_apart(engine):
    out = run(engine, em.member_months, employers=(E2,))
    assert set(out["employer_id"]) == {E2}
    spend = run(engine, em.spend, employers=(E2,))
    assert list(spend["paid"]) == [80]
    assert run(engine, em.spend, employers=()).empty
