"""Practice KPIs on the hand-built fixture (tests/fixtures.py), on DuckDB and PostgreSQL.

Worked by hand for practice P1 (payer ACME):
  C5 DOS 2025-10-15 charge 400; 835 2025-11-20 paid 0, PR-1 400 (deductible, not a denial);
     patient pays 100 on 2026-01-15 and is refunded 9 on 2026-02-25.
  C1 DOS 2026-01-05 charge 200; 835 2026-01-27 paid 120, CO-45 50, PR-1 30; patient pays 30 on 2026-02-10.
  C2 DOS 2026-01-10 charge 100; 277CA rejected first; 835 2026-01-27 paid 0, CO-16 100 (denial);
     appealed, 835 2026-02-20 paid 70, CO-45 30.
  C3 DOS 2026-02-03 charge 300; 835 2026-02-20 paid 0, CO-50 300 (denial); written off 2026-03-15.
  C4 DOS 2026-02-20 charge 150; not paid yet.
"""

from __future__ import annotations

import datetime as dt

import pytest

from dashboard.metrics import practice as pm
from dashboard.metrics.filters import Filters
from tests.conftest import module_warehouse
from tests.fixtures import P1, P2, load_practice_fixture

D = dt.date
JAN, FEB, MAR = D(2026, 1, 1), D(2026, 2, 1), D(2026, 3, 1)


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path_factory):
    yield from module_warehouse(request, tmp_path_factory, load_practice_fixture)


def run(engine, fn, start=JAN, end=MAR, practices=(P1,)):
    with engine.connect() as conn:
        return fn(conn, Filters(start=start, end=end, practice_ids=practices))


def value(frame, column, month, practice=P1):
    row = frame[(frame["practice_id"] == practice) & (frame["month"] == month)]
    assert len(row) == 1, f"expected one row for {practice} {month}, got {len(row)}"
    return row.iloc[0][column]


def test_charges_by_month_of_service(engine):
    out = run(engine, pm.charges, start=D(2025, 10, 1))
    assert value(out, "charges", D(2025, 10, 1)) == 400
    assert value(out, "charges", JAN) == 300
    assert value(out, "claims", JAN) == 2
    assert value(out, "charges", FEB) == 450
    assert "999999999" not in set(out["practice_id"])  # other providers' claims are not practice charges


def test_payments_refunds_apart(engine):
    out = run(engine, pm.payments)
    assert value(out, "payer_payments", JAN) == 120
    assert value(out, "patient_payments", JAN) == 100
    assert value(out, "payments", JAN) == 220
    assert value(out, "payments", FEB) == 70 + 30
    assert value(out, "refunds", FEB) == 9


def test_contractual_adjustments(engine):
    out = run(engine, pm.contractual_adjustments)
    assert value(out, "contractual_adjustments", JAN) == 50
    assert value(out, "contractual_adjustments", FEB) == 30


def test_ar_balance_at_month_ends(engine):
    out = run(engine, pm.ar_balance)
    # Jan 31: C5 400-100=300 (patient), C1 200-120-50=30 (patient), C2 100 (denied, still insurance A/R)
    assert value(out, "ar_balance", JAN) == 430
    assert value(out, "ar_insurance", JAN) == 100
    assert value(out, "ar_patient", JAN) == 330
    # Feb 28: C5 309 (refund raises it), C3 300, C4 150; C1 and C2 are settled
    assert value(out, "ar_balance", FEB) == 759
    # Mar 31: C3 written off
    assert value(out, "ar_balance", MAR) == 459


def test_ar_over_90(engine):
    out = run(engine, pm.ar_over_90_pct)
    assert value(out, "ar_over_90", JAN) == 300  # only C5 (DOS before 2025-11-02)
    assert value(out, "ar_over_90_pct", FEB) == pytest.approx(309 / 759)


def test_days_in_ar_uses_three_month_average_daily_charges(engine):
    out = run(engine, pm.days_in_ar)
    # Feb: charges Dec+Jan+Feb = 0+300+450 over 31+31+28 days
    assert value(out, "days_in_ar", FEB) == pytest.approx(759 / (750 / 90))
    # Jan: Nov+Dec+Jan = 300 over 92 days
    assert value(out, "days_in_ar", JAN) == pytest.approx(430 / (300 / 92))


def test_ar_aging_from_date_of_service(engine):
    out = run(engine, pm.ar_aging, end=FEB)
    rows = {(r.payer, r.bucket): (r.open_claims, r.balance) for r in out.itertuples()}
    assert rows == {("ACME", "0-30"): (2, 450), ("Patient", "120+"): (1, 309)}


def test_clean_claim_rate(engine):
    out = run(engine, pm.clean_claim_rate)
    assert value(out, "clean_claim_rate", JAN) == 0.5  # C1 accepted, C2 rejected first
    assert value(out, "clean_claim_rate", FEB) == 1.0


def test_denial_rate_counts_first_adjudication_only(engine):
    out = run(engine, pm.denial_rate)
    assert value(out, "adjudicated", JAN) == 2
    assert value(out, "denial_rate", JAN) == 0.5
    assert value(out, "denial_rate_dollars", JAN) == pytest.approx(100 / 300)
    # Feb: only C3 is a first adjudication (C2's paid appeal is its second)
    assert value(out, "denial_rate", FEB) == 1.0


def test_deductible_only_claim_is_not_a_denial(engine):
    out = run(engine, pm.denial_rate, start=D(2025, 11, 1), end=D(2025, 11, 1))
    assert value(out, "denied", D(2025, 11, 1)) == 0


def test_first_pass_resolution(engine):
    out = run(engine, pm.first_pass_resolution_rate)
    assert value(out, "first_pass_resolution_rate", JAN) == 0.5
    assert value(out, "first_pass_resolution_rate", FEB) == 0.0


def test_collection_rates(engine):
    out = run(engine, pm.collection_rates)
    assert value(out, "net_collection_rate", JAN) == pytest.approx(220 / (300 - 50))
    assert value(out, "gross_collection_rate", JAN) == pytest.approx(220 / 300)
    assert value(out, "net_collection_rate", FEB) == pytest.approx((100 - 9) / (450 - 30))


def test_days_to_payment(engine):
    out = run(engine, pm.days_to_payment)
    assert value(out, "average_days_to_payment", JAN) == 21  # C1: 2026-01-27 - 2026-01-06


def test_adjustments_and_denials(engine):
    adj = run(engine, pm.adjustments)
    jan = adj[adj["month"] == JAN]
    assert {(r.group_code, r.carc, r.amount) for r in jan.itertuples()} == {("CO", "45", 50), ("CO", "16", 100),
                                                                             ("PR", "1", 30)}
    den = run(engine, pm.denials)
    assert {(r.month, r.carc, r.amount) for r in den.itertuples()} == {(JAN, "16", 100), (FEB, "50", 300)}


def test_remittances(engine):
    out = run(engine, pm.remittances)
    assert list(out["trace_number"]) == ["T1", "T2"]
    assert list(out["claims"]) == [2, 2]
    assert list(out["amount"]) == [120, 70]


def test_eligibility_checks(engine):
    out = run(engine, pm.eligibility_checks)
    assert value(out, "verification_rate", JAN) == 1.0
    assert value(out, "pending", FEB) == 1


def test_payment_channel_fee_premium_only_and_capped(engine):
    out = run(engine, pm.payment_channel_fees, practices=(P1, P2))
    assert value(out, "fee", JAN) == pytest.approx(0.60)  # 0.5% of 120 ACH, premium portal
    assert value(out, "fee", FEB, practice=P2) == 0  # basic access is free


def test_scope_filters_in_sql(engine):
    out = run(engine, pm.charges, practices=(P2,))
    assert set(out["practice_id"]) == {P2}
    assert run(engine, pm.charges, practices=()).empty


def test_summary_of_a_practice_with_sparse_data(engine):
    """P2 has one claim (D1: 500 charged Jan 20, 350 paid Feb 10, CO-45 150), no patient payments and no
    write-offs: the summary still has every column. NCR = 350 / (500 − 150) = 1.0; GCR = 350 / 500 = 0.7."""
    out = run(engine, pm.practice_summary, practices=(P2,))
    assert list(out["practice_id"]) == [P2]
    row = out.iloc[0]
    assert (row["charges"], row["payments"], row["contractual_adjustments"]) == (500, 350, 150)
    assert row["net_collection_rate"] == pytest.approx(1.0)
    assert row["gross_collection_rate"] == pytest.approx(0.7)
    assert row["clean_claim_rate"] == 1.0
    assert row["denial_rate"] == 0.0
    assert row["ar_balance"] == 0.0


def test_summary_of_a_period_without_activity_is_empty_not_an_error(engine):
    out = run(engine, pm.practice_summary, start=D(2027, 1, 1), end=D(2027, 2, 1), practices=(P2,))
    assert {"practice_id", "days_in_ar", "net_collection_rate", "denial_rate"} <= set(out.columns)
    assert out.empty or (out["charges"] == 0).all()
