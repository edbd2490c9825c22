"""The report catalog, the CLI and privacy rules over the fixture warehouse."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from dashboard import access, reports
from dashboard.errors import AccessDenied, BadInput, NotFound
from dashboard.metrics.filters import Filters
from dashboard.privacy import SuppressionRule, suppress
from dashboard.warehouse.engine import reader_engine

ADMIN = access.scope_for(role="admin")
PM = access.scope_for(role="practice_manager", practice_ids=["111111111"])
EMP = access.scope_for(role="employer_admin", employer_ids=["GRP1"])


@pytest.fixture(scope="module")
def engine(fixture_warehouse_url):
    return reader_engine(fixture_warehouse_url)


# Reports with no rows on the shared fixture, and where rows of theirs are tested instead
EMPTY_ON_FIXTURE = {
    "unmatched-payments": "the fixture's 835s all match: test_load_x12 (an 835 paying unknown claims) and "
                          "test_metrics_practice (one added in a rolled-back transaction)",
    "denial-risk": "fewer first adjudications than a model needs: test_denial_risk scores a demo warehouse",
    "enrollment-changes": "only 834 loads record maintenances: test_load_x12 (adds, a term and a change by reason)",
}
# Reports whose rows the fixture has in another period than the one below
PERIOD = {"eligibility-pending": ("2025-10", "2026-02")}  # the pending check of 2026-02-20, near February's end


@pytest.mark.parametrize("name", list(reports.CATALOG))
def test_every_report_runs_with_its_columns(engine, name):
    start, end = PERIOD.get(name, ("2025-10", "2026-03"))
    result = reports.run_report(name, scope=ADMIN, engine=engine, start=start, end=end)
    assert list(result.frame.columns)[: len(result.report.columns)] == list(result.report.columns)
    assert result.frame.empty == (name in EMPTY_ON_FIXTURE), name


def test_every_report_comes_back_in_the_same_row_order(engine):
    """Grids, exports and the cache all rely on it; unordered GROUP BYs in DuckDB vary from run to run."""
    for name in reports.CATALOG:
        runs = {reports.run_report(name, scope=ADMIN, engine=engine, start="2025-10", end="2026-03").frame.to_csv()
                for _ in range(6)}
        assert len(runs) == 1, name


@pytest.mark.parametrize("name", [n for n, r in reports.CATALOG.items() if r.audience == "practice"])
def test_practice_reports_stay_in_scope(engine, name):
    frame = reports.run_report(name, scope=PM, engine=engine, start="2025-10", end="2026-03").frame
    assert set(frame["practice_id"]) <= {"111111111", "all"}
    with pytest.raises(AccessDenied):
        reports.run_report(name, scope=PM, engine=engine, practice="222222222")
    with pytest.raises(AccessDenied):
        reports.run_report(name, scope=EMP, engine=engine)


COUNT_COLUMNS = ("members", "subscribers", "adds", "terms", "member_months", "subscriber_months", "claims",
                 "members_with_claims", "events", "members_with_events", "claimants", "high_cost_claimants")


@pytest.mark.parametrize("name", [n for n, r in reports.CATALOG.items() if r.audience == "employer"])
def test_employer_reports_are_suppressed_aggregates(engine, name):
    frame = reports.run_report(name, scope=EMP, engine=engine, start="2026-01", end="2026-03").frame
    assert set(frame["employer_id"]) == (set() if name in EMPTY_ON_FIXTURE else {"GRP1"})
    assert "person_id" not in frame.columns
    assert "member_id" not in frame.columns
    for count_col in COUNT_COLUMNS:
        if count_col in frame.columns:
            values = pd.to_numeric(frame[count_col], errors="coerce")
            assert not ((values >= 1) & (values <= 10)).any(), (name, count_col)
    with pytest.raises(AccessDenied):
        reports.run_report(name, scope=EMP, engine=engine, employer="GRP2")
    with pytest.raises(AccessDenied):
        reports.run_report(name, scope=PM, engine=engine)


def test_bad_inputs_are_clear(engine):
    with pytest.raises(NotFound, match="unknown report"):
        reports.run_report("nope", scope=ADMIN, engine=engine)
    with pytest.raises(BadInput, match="YYYY-MM"):
        reports.run_report("practice-kpis", scope=ADMIN, engine=engine, start="2026/01")
    with pytest.raises(BadInput, match="before"):
        reports.run_report("practice-kpis", scope=ADMIN, engine=engine, start="2026-03", end="2026-01")
    with pytest.raises(NotFound, match="unknown practice"):
        reports.run_report("practice-kpis", scope=ADMIN, engine=engine, practice="123")
    with pytest.raises(NotFound, match="unknown employer"):
        reports.run_report("spend", scope=ADMIN, engine=engine, employer="NOPE")


def test_default_period_ends_at_data_as_of(engine):
    result = reports.run_report("practice-kpis", scope=ADMIN, engine=engine)
    assert result.filters.end == dt.date(2026, 3, 1)
    assert result.filters.start == dt.date(2025, 4, 1)


def test_complementary_suppression_blanks_the_same_cell_whatever_the_row_order():
    frame = pd.DataFrame({"employer_id": ["E"] * 4, "month": ["2026-01"] * 4, "tier": ["EMP", "ESP", "ECH", "FAM"],
                          "members": [40, 7, 40, 55], "paid": [400.0, 70.0, 400.0, 550.0]})
    rule = reports.get_report("enrollment").privacy.rule
    blanked = set()
    for seed in range(6):
        shuffled = frame.sample(frac=1, random_state=seed).reset_index(drop=True)
        out = suppress(shuffled, rule)
        blanked.add(tuple(sorted(out.loc[out["members"].isna(), "tier"])))
    assert blanked == {("ECH", "ESP")}  # the tie between EMP and ECH (40 each) always goes the same way


def test_one_small_employer_cannot_be_found_from_the_all_row():
    """A user with several employers sees an 'all' row; a lone blanked employer would be all − the others.
    The 'all' row is summed from published cells only, so it is blank wherever one employer's cell is."""
    month = dt.date(2026, 1, 1)
    totals = pd.DataFrame({"employer_id": ["A", "B", "C"], "month": [month] * 3,
                           "member_months": [8, 300, 500], "subscriber_months": [4, 150, 250],
                           "paid": [9000.0, 1e6, 2e6], "allowed": [1.0, 2.0, 3.0],
                           "members_with_claims": [5, 120, 200], "claims_data": [1, 1, 1]})
    bands = pd.DataFrame({"employer_id": ["A", "B", "C"], "period": ["2026-01..2026-12"] * 3,
                          "band": ["$50k-$100k"] * 3, "claimants": [0, 12, 3], "paid": [0.0, 9e5, 2e5],
                          "pct_of_paid": [0.0, 0.9, 0.1]})
    network = totals[["employer_id", "month", "paid", "allowed", "members_with_claims"]].assign(
        network="in", claims=totals["members_with_claims"], share_of_paid=1.0)
    spend = network.drop(columns=["network", "share_of_paid"]).assign(service_category="inpatient",
                                                                      member_months=totals["member_months"])
    utilization = pd.DataFrame({"employer_id": ["A", "B", "C"] * 2, "month": [month] * 6,
                                "measure": ["inpatient_admissions"] * 3 + ["inpatient_days"] * 3,
                                "events": [1, 20, 30, 4, 80, 90], "members_with_events": [1, 20, 30, 1, 20, 30],
                                "member_months": [8, 300, 500] * 2, "per_1000": [0.0] * 6})

    def raw(name, f):
        return {"month-totals": totals, "high-cost-claimants": bands, "network": network, "spend": spend,
                "utilization": utilization}[name]

    f = Filters(start=month, end=month, employer_ids=("A", "B", "C"))
    out = reports.get_report("employer-summary").privacy.build(f, raw).set_index("employer_id")
    for col in ("members", "subscribers", "member_months", "paid", "pmpm_paid", "pepm_paid", "in_network_share",
                "inpatient_admissions", "average_length_of_stay"):
        assert out.loc["A", col] is None, col
        assert out.loc["all", col] is None, col  # all − B − C would be A
        assert out.loc["B", col] is not None, col
    assert out.loc["B", "high_cost_claimants"] == 12
    assert out.loc["C", "high_cost_claimants"] is None  # 3 people
    assert out.loc["all", "high_cost_claimants"] is None
    assert out.loc["A", "high_cost_claimants"] == 0  # 0 is not small: nothing to protect there


def test_a_period_without_claims_data_reads_no_data_not_suppressed():
    """For an employer user, a month with member months but no claims data leaves paid and PMPM empty as
    "no data": the period's PMPM is over its months with data, and nothing is marked suppressed for it."""
    jan, feb = dt.date(2026, 1, 1), dt.date(2026, 2, 1)
    totals = pd.DataFrame({"employer_id": ["B", "B"], "month": [jan, feb], "member_months": [300, 310],
                           "subscriber_months": [150, 155], "paid": [90_000.0, float("nan")],
                           "allowed": [100_000.0, float("nan")], "members_with_claims": [120, 0],
                           "claims_data": [1, 0]})
    bands = pd.DataFrame(columns=["employer_id", "period", "band", "claimants", "paid", "pct_of_paid"])
    network = pd.DataFrame({"employer_id": ["B"], "month": [jan], "network": ["in"], "paid": [90_000.0],
                            "allowed": [100_000.0], "claims": [400], "members_with_claims": [120],
                            "share_of_paid": [1.0]})
    spend = pd.DataFrame({"employer_id": ["B"], "month": [jan], "service_category": ["inpatient"],
                          "paid": [90_000.0], "allowed": [100_000.0], "claims": [400], "members_with_claims": [120],
                          "member_months": [300]})
    utilization = pd.DataFrame({"employer_id": ["B"] * 4, "month": [jan, jan, feb, feb],
                                "measure": ["inpatient_admissions", "inpatient_days"] * 2,
                                "events": [20, 80, float("nan"), float("nan")],
                                "members_with_events": [20, 20, float("nan"), float("nan")],
                                "member_months": [300, 300, 310, 310], "per_1000": [0.0] * 4})

    def raw(name, f):
        frame = {"month-totals": totals, "high-cost-claimants": bands, "network": network, "spend": spend,
                 "utilization": utilization}[name]
        if "month" not in frame.columns:
            return frame
        return frame[(frame["month"] >= f.start) & (frame["month"] <= f.end)].reset_index(drop=True)

    summary = reports.get_report("employer-summary").privacy
    both = summary.build(Filters(start=jan, end=feb, employer_ids=("B",)), raw).iloc[0]
    assert (both["member_months"], both["claims_months"], both["paid"]) == (610, 1, 90_000.0)
    assert both["pmpm_paid"] == pytest.approx(300.0)  # 90,000 ÷ January's 300 member months
    assert both["average_length_of_stay"] == pytest.approx(4.0)
    assert not both["suppressed"]
    february = summary.build(Filters(start=feb, end=feb, employer_ids=("B",)), raw).iloc[0]
    assert (february["paid"], february["pmpm_paid"], february["member_months"]) == (None, None, 310)
    assert not february["suppressed"]


def test_primary_and_complementary_suppression():
    frame = pd.DataFrame({"employer_id": ["E"] * 4, "month": ["2026-01"] * 4, "tier": ["EMP", "ESP", "ECH", "FAM"],
                          "members": [120, 7, 40, 55], "paid": [1000.0, 70.0, 400.0, 550.0]})
    rule = SuppressionRule(counts={"members": ("paid",)}, group_by=("employer_id", "month"),
                           complementary=("members",))
    out = suppress(frame, rule)
    # ESP (7) is primary; ECH (40, the next smallest) is complementary so ESP cannot be derived from a total
    assert list(out["members"]) == [120, None, None, 55]
    assert list(out["paid"]) == [1000.0, None, None, 550.0]
    assert list(out["suppressed"]) == [False, True, True, False]


def test_zero_is_not_suppressed_and_two_primaries_need_no_complement():
    frame = pd.DataFrame({"g": ["a"] * 3, "n": [0, 3, 4]})
    out = suppress(frame, SuppressionRule(counts={"n": ()}, group_by=("g",), complementary=("n",)))
    assert list(out["n"]) == [0, None, None]


def test_readme_lists_every_report_with_its_columns():
    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text()
    for name, report in reports.CATALOG.items():
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, f"README has no row for {name}"
        assert ", ".join(report.columns) in row, name


def test_readme_kpi_table_is_the_registry():
    from dashboard.metrics.kpis import markdown_table
    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- kpi-registry:start -->\n", 1)[1].split("\n<!-- kpi-registry:end -->", 1)[0]
    assert block == markdown_table(), "README's KPI table differs from the registry: paste `dashboard kpis`"
