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

import pandas as pd
import pytest

from dashboard import access, reports
from dashboard.errors import BadInput
from dashboard.metrics import definitions as d
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


# --- claims run-out (issue 11 item 3), no data (item 4), employer KPIs (item 11) ----------------------------------
# E1's paid claims in enrolled months (tests/fixtures.py): M1 Jan 10 paid 100 on Jan 30 (lag 0, 20 days);
# the stay M2 Feb 3–8 paid 60,000, its last line on Mar 5 (lag 1, 30 days); RX1 Mar 10 paid 40 on Mar 12
# (lag 0, 2 days). Paid through March; claims data Jan..Mar (first claim month .. newest payment).


def test_chain_ladder_hand_worked():
    """Paid by incurred month and lag, paid through June (development 3 months):
    Jan 50/40/10, Feb 60/30/10, Mar 40/50/10, Apr 30/30/5 (June partial), May 20/10, Jun 10.
    Link 0 over Jan–Apr (observed through lag 1 before June): (90+90+90+60) / (50+60+40+30) = 330/180;
    link 1 over Jan–Mar: 300/270; link 2 over Jan–Feb: 200/200. Completion at lag 2 = 1, lag 1 = 270/300 = 0.9,
    lag 0 = 1 / (330/180 × 300/270) = 0.4909."""
    rows = [(1, [50, 40, 10]), (2, [60, 30, 10]), (3, [40, 50, 10]), (4, [30, 30, 5]), (5, [20, 10]), (6, [10])]
    triangle = pd.DataFrame([(D(2026, m, 1), lag, paid) for m, paid_by_lag in rows
                             for lag, paid in enumerate(paid_by_lag)], columns=["month", "lag", "paid"])
    factors = em.chain_ladder(triangle, D(2026, 6, 1), development=3)
    assert factors == pytest.approx((1 / (330 / 180 * 300 / 270), 0.9, 1.0))
    est = em.Completion(D(2026, 6, 1), factors)
    assert (est.of_month(D(2026, 6, 1)), est.of_month(D(2026, 5, 1)), est.of_month(D(2026, 1, 1))) == \
        pytest.approx((0.4909, 0.9, 1.0), abs=1e-4)
    assert est.of_month(D(2026, 7, 1)) is None  # after the paid-through month: no data
    assert est.complete_through() == D(2026, 4, 1)  # the latest month at ≥ 95%
    assert em.Completion(None, ()).complete_through() is None


def test_claims_completion_lag_and_status(engine):
    out = run(engine, em.claims_completion, start=D(2025, 12, 1), end=D(2026, 4, 1)).set_index("month")
    assert list(out["status"]) == ["no data", "complete", "complete", "complete", "no data"]
    assert list(out.loc[[JAN, FEB, MAR], "months_of_runout"]) == [2, 1, 0]
    assert list(out.loc[[JAN, FEB, MAR], "claims_lag_days"]) == [20.0, 30.0, 2.0]
    assert out.loc[FEB, "estimated_paid"] == 60000  # nothing left to develop in this history: factor 1
    assert pd.isna(out.loc[D(2026, 4, 1), "paid"])
    assert pd.isna(out.loc[D(2025, 12, 1), "pmpm_paid"])


def test_no_claims_data_is_not_zero(engine):
    """C is enrolled in December 2025 and from April 2026 on, months the warehouse holds no claims for:
    their PMPM and per 1,000 are "no data" (NaN), never 0; a period's PMPM is over its months with data."""
    totals = run(engine, em.month_totals, start=D(2025, 12, 1), end=D(2026, 4, 1)).set_index("month")
    assert list(totals["claims_data"]) == [0, 1, 1, 1, 0]
    assert pd.isna(totals.loc[D(2026, 4, 1), "paid"])
    assert totals.loc[D(2026, 4, 1), "member_months"] == 1
    util = run(engine, em.utilization, start=D(2026, 4, 1), end=D(2026, 4, 1))
    assert util["per_1000"].isna().all()
    assert (util["member_months"] == 1).all()
    summary = run(engine, em.employer_summary, end=D(2026, 4, 1)).set_index("employer_id").loc[E1]
    assert (summary["member_months"], summary["claims_months"], summary["paid"]) == (9, 3, 60140)
    assert summary["pmpm_paid"] == pytest.approx(60140 / 8)  # Jan–Mar: 4 + 2 + 2 member months
    assert summary["pepm_paid"] == pytest.approx(60140 / 7)  # subscriber months 3 + 2 + 2
    later = run(engine, em.employer_summary, start=D(2026, 4, 1), end=D(2026, 5, 1)).set_index("employer_id")
    assert (later.loc[E1, "claims_months"], later.loc[E1, "member_months"]) == (0, 2)
    assert pd.isna(later.loc[E1, "pmpm_paid"])
    assert pd.isna(later.loc[E1, "paid"])


def test_network_share_and_length_of_stay(engine):
    net = run(engine, em.network)
    assert [tuple(r) for r in net[["month", "network", "paid"]].itertuples(index=False)] == [
        (JAN, "in", 100), (FEB, "out", 60000), (MAR, "unknown", 40)]  # one out-of-network line: the claim is out
    summary = run(engine, em.employer_summary).set_index("employer_id").loc[E1]
    assert summary["in_network_share"] == pytest.approx(100 / 60100)  # unknown is left out
    # the stay Feb 3–8: one admission, 5 days
    assert (summary["inpatient_admissions"], summary["inpatient_days"], summary["average_length_of_stay"]) == \
        (1, 5, 5.0)
    util = run(engine, em.utilization)
    assert pick(util, month=FEB, measure="inpatient_days")["per_1000"] == 30000  # 5 / 2 × 12,000


def test_employer_reports_default_to_complete_months(engine):
    """No period asked: employer reports end in the latest complete month (March, paid through March with
    nothing left to develop), practice reports at the as-of month."""
    from dashboard import access, reports

    admin = access.scope_for(role="admin")
    with engine.connect() as conn:
        assert reports.default_end(conn, scope=admin, audience="employer") == MAR
        assert reports.default_end(conn, scope=admin, audience="practice") == dt.date.today().replace(day=1)
    result = reports.run_report("employer-summary", scope=admin, engine=engine)
    assert (result.filters.start, result.filters.end) == (D(2025, 4, 1), MAR)


def test_trend_against_the_base_period_hand_worked(engine):
    """February–March 2026 against December 2025–January 2026 (the period of equal length before it). GRP1:
    paid 60,040 over 2 + 2 member months = 15,010 PMPM, against January's 100 over 4 (December has no claims
    data, so it is in neither side) = 25; GRP2 has no claims data in February or March: its current side is
    unknown, not 0, and the selection's row is over GRP1 alone now and both before: (100 + 80) ÷ (4 + 1) = 36."""
    admin = access.scope_for(role="admin")
    out = reports.run_report("employer-trend", scope=admin, engine=engine, start="2026-02", end="2026-03",
                             employer=[E1, E2]).frame
    assert set(out["period"]) == {"2026-02..2026-03"}
    assert set(out["base_period"]) == {"2025-12..2026-01"}
    total = pick(out, employer_id=E1, measure="pmpm_paid", category="total")
    assert (total["current"], total["base"], total["change"]) == (15010, 25, 14985)
    assert total["change_pct"] == pytest.approx(599.4)
    assert (total["paid"], total["base_paid"]) == (60040, 100)
    assert pick(out, employer_id=E1, measure="pmpm_paid", category="pharmacy")[["current", "base"]].tolist() == [10, 0]
    assert pick(out, employer_id=E1, measure="pepm_paid", category="total")["base"] == pytest.approx(100 / 3, abs=0.01)
    office = pick(out, employer_id=E1, measure="per_1000", category="office_visits")
    assert (office["current"], office["base"], office["change_pct"]) == (0, 3000, -1)
    members = pick(out, employer_id=E1, measure="average_members", category="total")
    assert (members["current"], members["base"]) == (2, 2.5)  # (2 + 2) ÷ 2 against (1 + 4) ÷ 2
    grp2 = pick(out, employer_id=E2, measure="pmpm_paid", category="total")
    assert pd.isna(grp2["current"])
    assert grp2["base"] == 80
    assert pd.isna(grp2["change"])
    selection = pick(out, employer_id="all", measure="pmpm_paid", category="total")
    assert (selection["current"], selection["base"]) == (15010, 36)
    assert pick(out, employer_id="all", measure="per_1000", category="office_visits")["base"] == 4800  # 2 ÷ 5 × 12,000
    assert pd.isna(pick(out, employer_id=E1, measure="average_length_of_stay", category="inpatient")["base"])


def test_trend_for_an_employer_user_shows_only_sums_of_published_cells(engine):
    """GRP1 is a handful of people: every member-month count is small, so every comparison is blank and says
    it is suppressed, never a number an attacker could divide back (tests/test_privacy_combinations.py audits
    the trend with every other response)."""
    user = access.scope_for(role="employer_admin", employer_ids=[E1])
    out = reports.run_report("employer-trend", scope=user, engine=engine, start="2026-02", end="2026-03").frame
    assert len(out)
    assert out["suppressed"].all()
    assert out[["current", "base", "change"]].isna().all().all()
    # the dollars show only where they are a known 0 (no claims in the category: no row in the spend grid either)
    shown = pd.concat([out["paid"], out["base_paid"]]).dropna()
    assert len(shown)
    assert (shown == 0).all()


def test_cost_drivers_hand_worked(engine):
    """February–March against December–January, both employers. GRP1's stay (M2, bill type 111, billed by TIN
    666666666) is acute inpatient at a facility: 60,000 over 4 member months = 15,000 PMPM, 99.93% of the
    period's 60,040; its Rx (40) is the one pharmacy row of every grouping; the January office visit (M1, 99213 at
    POS 11) is the base's. No fixture claim has a diagnosis: "No valid diagnosis". Members over $50k: A's 60,100
    in 2026 of GRP1's 60,140 and, over both, of 60,220."""
    admin = access.scope_for(role="admin")
    out = reports.run_report("cost-drivers", scope=admin, engine=engine, start="2026-02", end="2026-03",
                             employer=[E1, E2]).frame
    stay = pick(out, employer_id=E1, dimension="service_category_2", value="acute inpatient")
    assert (stay["parent"], stay["paid"], stay["member_months"], stay["pmpm_paid"]) == ("inpatient", 60000, 4, 15000)
    assert stay["share_of_paid"] == pytest.approx(0.9993, abs=1e-4)
    office = pick(out, employer_id=E1, dimension="service_category_2", value="office visit")
    assert (office["paid"], office["base_paid"], office["base_pmpm_paid"]) == (0, 100, 25)
    assert office["pmpm_change_pct"] == -1
    for dimension in ("condition_group", "place_of_service", "provider_id"):
        assert pick(out, employer_id=E1, dimension=dimension, value="RX")["paid"] == 40
    assert pick(out, employer_id=E1, dimension="place_of_service", value="UB")["label"].startswith("Facility claim")
    assert pick(out, employer_id=E1, dimension="place_of_service", value="11")["label"] == "Office"
    assert pick(out, employer_id=E1, dimension="provider_id", value="666666666")["paid"] == 60000
    assert pick(out, employer_id=E1, dimension="condition_group", value="UNK")["paid"] == 60000
    # each grouping adds up to the period's paid
    for dimension, rows in out[(out["employer_id"] == E1) & (out["dimension"] != "high_cost_claimants")].groupby(
            "dimension"):
        assert rows["paid"].sum() == 60040, dimension
    assert pd.isna(pick(out, employer_id=E2, dimension="provider_id", value="555555555")["paid"])  # no claims data
    assert pick(out, employer_id="all", dimension="provider_id", value="555555555")["base_pmpm_paid"] == 36
    hcc = pick(out, employer_id=E1, dimension="high_cost_claimants", value="2026")
    assert (hcc["paid"], hcc["share_of_paid"]) == (60100, pytest.approx(60100 / 60140, abs=1e-4))
    assert hcc["label"] == "Members over $50k in 2026 (3 months of claims data)"  # January to March
    assert pick(out, employer_id="all", dimension="high_cost_claimants", value="2026")["share_of_paid"] == \
        pytest.approx(60100 / 60220, abs=1e-4)


def test_groupers_on_the_warehouse(engine):
    """Condition groups by ICD-10-CM chapter (dots and case ignored, dental apart from digestive, COVID-19 with the
    infections), age bands on a month's first day, genders, and service category 2 inside category 1, computed by
    the database."""
    import sqlalchemy as sa

    from dashboard.metrics import groupers as g

    codes = {"I10": "CIR", "e11.9": "END", "K02.9": "DEN", "K21.9": "DIG", "O80": "PRG", "U07.1": "INF",
             "D50.9": "BLD", "D3A.010": "NEO", "Z00.00": "FAC", "S72.001A": "INJ", "H66.90": "EAR", None: "UNK",
             "9999": "UNK"}
    with engine.connect() as conn:
        for code, group in codes.items():
            assert conn.execute(sa.select(g.condition_group(sa.literal(code, sa.String)))).scalar() == group, code
        lines = {("institutional", "111", None, None, "0120"): "acute inpatient",
                 ("institutional", "131", None, "99284", "0450"): "emergency department",
                 ("institutional", "721", None, None, "0821"): "dialysis",
                 ("professional", None, "11", "99213", None): "office visit",
                 ("professional", None, "11", "20610", None): "office procedures and tests",
                 ("professional", None, "10", "99213", None): "telehealth",
                 ("professional", None, "81", "80053", None): "lab",
                 ("professional", None, "12", "E0601", None): "durable medical equipment",
                 ("professional", None, "24", "29881", None): "ambulatory surgery"}
        ages = {dt.date(2008, 2, 15): "0-17", dt.date(2008, 2, 1): "18-25", dt.date(1961, 3, 2): "55-64",
                dt.date(1961, 2, 1): "65+", None: "unknown"}  # on 2026-02-01: 17 the day before a birthday
        for born, band in ages.items():
            birth = sa.cast(sa.literal(born, sa.Date), sa.Date)  # a typed NULL too
            assert conn.execute(sa.select(g.age_band(birth, sa.literal(FEB, sa.Date)))).scalar() == band, born
        for given, expected in {"F": "female", "male": "male", None: "unknown", "X": "other"}.items():
            assert conn.execute(sa.select(g.gender(sa.literal(given, sa.String)))).scalar() == expected
        for (claim_type, bill, pos, hcpcs, revenue), expected in lines.items():
            args = [sa.literal(v, sa.String) for v in (claim_type, bill, pos, hcpcs, revenue)]
            rank = g.service_category_2_rank(*args)
            assert conn.execute(sa.select(g.service_category_2_of_rank(rank))).scalar() == expected
            category_1 = conn.execute(sa.select(d.medical_service_category(*args[:3], args[3]))).scalar()
            assert (category_1, expected) in g.SERVICE_CATEGORY_2  # always inside its category 1


def _builder(engine, scope=None, **options):
    return reports.run_report("builder", scope=scope or access.scope_for(role="admin"), engine=engine,
                              start="2026-02", end="2026-03", employer=None if scope else [E1, E2],
                              options=options).frame.set_index("group")


def test_builder_hand_worked(engine):
    """The builder over both employers, February–March against December–January (prior) unless said. PMPM by
    month: February 60,000 ÷ 2 (GRP2 has no claims data then: in neither side), March 40 ÷ 2; its base months
    are December (no claims data: unknown) and January ((100 + 80) ÷ (4 + 1) = 36). By service category the
    office-based row exists because the base has it: 0 now against 36. Average members by tier: EMP (2 + 2 + 1
    + 1) ÷ 2 = 3 against (1 + 2 + 1) ÷ 2 = 2, ESP 0 against (2) ÷ 2 = 1."""
    month = _builder(engine, measure="pmpm_paid", by="month")
    assert month.loc["2026-02", ["current", "numerator", "denominator", "base_group"]].tolist() == [30000, 60000, 2,
                                                                                                    "2025-12"]
    assert pd.isna(month.loc["2026-02", "base"])
    assert month.loc["2026-03", ["current", "base", "change"]].tolist() == [20, 36, -16]
    category = _builder(engine, measure="pmpm_paid", by="service_category")
    assert category.loc["office-based", ["current", "base", "change_pct"]].tolist() == [0, 36, -1]
    assert category.loc["inpatient", ["current", "base"]].tolist() == [15000, 0]
    tier = _builder(engine, measure="average_members", by="tier")
    assert tier.loc["EMP", ["current", "base"]].tolist() == [3, 2]
    assert tier.loc["ESP", ["current", "base"]].tolist() == [0, 1]
    # everyone is a woman of 45-54: by age band (or gender) the same members, (4 + 2) ÷ 2 against (1 + 5) ÷ 2
    assert _builder(engine, measure="average_members", by="age_band").loc["45-54", ["current", "base"]].tolist() == \
        [3, 3]
    # B2, the one dependent, over December's C and January's A, B, C and D: 1 ÷ 5
    assert _builder(engine, measure="dependents_per_subscriber", by="gender").loc["female", "base"] == 0.2
    year = _builder(engine, measure="office_visits_per_1000", by="quarter", compare="year")
    assert year.loc["2026-Q1", ["current", "base_group"]].tolist() == [0, "2025-Q1"]
    assert pd.isna(year.loc["2026-Q1", "base"])  # nobody enrolled a year earlier: no data, not 0
    assert _builder(engine, measure="paid", by="tier").empty  # no spend by tier is kept: no rows, never a guess
    none = _builder(engine, measure="paid", by="month", compare="none")
    assert none["base_period"].isna().all()


def test_builder_options_are_checked(engine):
    admin = access.scope_for(role="admin")
    with pytest.raises(BadInput, match="by must be one of month"):
        reports.run_report("builder", scope=admin, engine=engine, options={"by": "person_id"})
    with pytest.raises(BadInput, match="report spend takes no option 'by'"):
        reports.run_report("spend", scope=admin, engine=engine, options={"by": "month"})
    user = access.scope_for(role="employer_admin", employer_ids=[E1])
    out = _builder(engine, user, measure="pmpm_paid", by="month")
    assert out["suppressed"].all()  # the small fixture: only blanks, never a number
    assert out["current"].isna().all()
    # and in the cost drivers a blank says it is suppressed (not "no data", which reads the same in a frame)
    drivers = reports.run_report("cost-drivers", scope=user, engine=engine, start="2026-02", end="2026-03").frame
    blank = drivers[drivers["pmpm_paid"].isna() & (drivers["dimension"] != "high_cost_claimants")]  # those have none
    assert len(blank)
    assert blank["suppressed"].all()


def test_demographics_hand_worked(engine):
    """Every fixture member is a woman born 1980-01-01: 46 in 2026, so 45-54. GRP1 January: A, B, B2 and C
    (subscribers A, B, C); February and March: A and C."""
    out = run(engine, em.demographics)
    assert [(r.month, r.age_band, r.gender, r.members, r.subscribers) for r in out.itertuples()] == [
        (JAN, "45-54", "female", 4, 3), (FEB, "45-54", "female", 2, 2), (MAR, "45-54", "female", 2, 2)]
