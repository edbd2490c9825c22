"""Practice KPIs on the hand-built fixture (tests/fixtures.py), on DuckDB and PostgreSQL.

Worked by hand for practice P1 (payer ACME):
  C5 DOS 2025-10-15 charge 400; 835 2025-11-20 paid 0, PR-1 400 (deductible, not a denial);
     patient pays 100 on 2026-01-15 and is refunded 9 on 2026-02-25; the 309 left is bad debt on 2026-04-20.
  C1 DOS 2026-01-05 charge 200; 835 2026-01-27 paid 120, CO-45 50, PR-1 30; patient pays 30 on 2026-02-10.
  C2 DOS 2026-01-10 charge 100; 277CA rejected first; 835 2026-01-27 paid 0, CO-16 100 (denial);
     appealed, 835 2026-02-20 paid 70, CO-45 30.
  C3 DOS 2026-02-03 charge 300; 835 2026-02-20 paid 0, CO-50 300 (denial); appealed 2026-02-25 in vain,
     written off (denial) 2026-03-15.
  C4 DOS 2026-02-20 charge 150; not paid yet.
  C6 DOS 2026-03-02 charge 200 (150 + 50), first submitted 2026-03-11; copay 20 taken at the desk that day,
     no 835 yet: the claim owes 180 (insurance A/R), the patient owes nothing (no patient credit).
  C7 DOS 2026-03-03 charge 120 (99213 100 + 36415 20); 835 2026-03-24 paid 70: line 1 CO-45 30, line 2 (36415)
     CO-97 20, a line denied on a paid claim; 20 stays in A/R.
  C8 DOS 2026-03-09 charge 90; 835 2026-03-24 paid 60, CO-45 10, PR-2 20; the patient pays 50 on 2026-03-27:
     a credit of 30 owed to the patient.
  C9 DOS 2026-03-10 charge 80; 835 2026-03-24 paid 64, CO-45 16; ACME pays it again (2026-03-31, the same CLP):
     the duplicate posts its payment and contractual adjustment again, a credit of 80 owed to ACME.
"""

from __future__ import annotations

import datetime as dt

import pytest

from dashboard.metrics import practice as pm
from dashboard.metrics.filters import Filters
from dashboard.metrics.kpis import KPIS
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
    # Mar 31: C3 written off; C5 309, C4 150, C6 180 (200 less the desk copay), C7 20; C8 and C9 are in credit
    assert value(out, "ar_balance", MAR) == 459 + 180 + 20


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


def test_open_claims_are_the_claims_behind_each_aging_cell(engine):
    """Issue 12 item 1: a payer's bar in aging opens its claims. At the end of February: C3 (denied, 300) and
    C4 (150) owed by ACME, 25 and 8 days from service; C5's 309 owed by the patient, 136 days. Summed by payer
    and bucket they are the aging cells; one page of them, filtered on bucket in SQL, is the 120+ cell."""
    from dashboard import paging

    out = run(engine, pm.open_claims, end=FEB)
    assert [tuple(r) for r in out[["claim_id", "payer", "age_days", "bucket", "balance"]].itertuples(index=False)] \
        == [("C5", "Patient", 136, "120+", 309), ("C3", "ACME", 25, "0-30", 300), ("C4", "ACME", 8, "0-30", 150)]
    aging = run(engine, pm.ar_aging, end=FEB)
    cells = out.groupby(["payer", "bucket"]).agg(open_claims=("claim_id", "count"), balance=("balance", "sum"))
    assert {k: (int(v.open_claims), v.balance) for k, v in cells.iterrows()} \
        == {(r.payer, r.bucket): (r.open_claims, r.balance) for r in aging.itertuples()}
    with engine.connect() as conn:
        page, total = pm.open_claims_page(
            conn, Filters(start=JAN, end=FEB, practice_ids=(P1,)),
            filters=(paging.ColumnFilter("bucket", (paging.Condition("text", "equals", "120+"),)),))
    assert total == 1
    assert list(page["claim_id"]) == ["C5"]
    # at the end of March C3 is written off and C6 (180) and C7's denied line (20) are open
    march = run(engine, pm.open_claims, end=MAR)
    assert dict(zip(march["claim_id"], march["balance"], strict=True)) == {"C5": 309, "C4": 150, "C6": 180,
                                                                          "C7": 20}


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


def test_denial_rates_count_line_denials_on_paid_claims(engine):
    """March's first adjudications: C7 (paid, line 2 denied CO-97 20), C8 and C9 (paid, no denial; C9's
    duplicate is its second). Lines: C7 has 2 SVC lines; C8 and C9 were remitted without SVC, so their billed
    lines count (1 each)."""
    out = run(engine, pm.denial_rate)
    march = out[out["month"] == MAR].iloc[0]
    assert (march["adjudicated"], march["denied"], march["denied_in_full"]) == (3, 1, 0)
    assert march["denial_rate"] == pytest.approx(1 / 3)  # was 0: only claims denied in full counted
    assert march["full_denial_rate"] == 0
    assert (march["lines_adjudicated"], march["lines_denied"]) == (4, 1)
    assert march["line_denial_rate"] == pytest.approx(1 / 4)
    assert march["charges_denied"] == 20
    assert march["denial_rate_dollars"] == pytest.approx(20 / 290)
    # January: C2 denied in full (1 line), C1 paid (2 billed lines)
    assert value(out, "line_denial_rate", JAN) == pytest.approx(1 / 3)
    summary = run(engine, pm.practice_summary).iloc[0]  # Jan–Mar: C2, C3, C7 of 6 first adjudications
    assert summary["denial_rate"] == pytest.approx(3 / 6)
    assert summary["full_denial_rate"] == pytest.approx(2 / 6)


def test_deductible_only_claim_is_not_a_denial(engine):
    out = run(engine, pm.denial_rate, start=D(2025, 11, 1), end=D(2025, 11, 1))
    assert value(out, "denied", D(2025, 11, 1)) == 0


def test_first_pass_resolution(engine):
    out = run(engine, pm.first_pass_resolution_rate)
    assert value(out, "first_pass_resolution_rate", JAN) == 0.5
    assert value(out, "first_pass_resolution_rate", FEB) == 0.0
    # March: C7 (a line denied on a paid claim: rework), C8, C9 paid clean; was 1.0 (full denials only)
    assert value(out, "first_pass_resolution_rate", MAR) == pytest.approx(2 / 3)


def test_collection_rates(engine):
    out = run(engine, pm.collection_rates)
    # Jan's trailing window (Nov, Dec, Jan) has only January's money
    assert value(out, "net_collection_rate", JAN) == pytest.approx(220 / (300 - 50))
    assert value(out, "gross_collection_rate", JAN) == pytest.approx(220 / 300)


def test_monthly_collection_rates_are_over_the_trailing_three_months(engine):
    """Net payments: Jan 220, Feb 100 − 9 = 91, Mar payer 70 + 60 + 64 + 64 = 258 and patient 20 + 50 = 70;
    net charges: Jan 300 − 50, Feb 450 − 30, Mar 490 − (30 + 10 + 16 + 16) = 418."""
    out = run(engine, pm.collection_rates)
    assert value(out, "net_collection_rate", FEB) == pytest.approx((220 + 91) / (250 + 420))  # was 91 / 420
    assert value(out, "net_collection_rate", MAR) == pytest.approx((220 + 91 + 328) / (250 + 420 + 418))
    assert value(out, "gross_collection_rate", MAR) == pytest.approx((220 + 91 + 328) / (300 + 450 + 490))
    assert value(out, "charges", MAR) == 490  # the money columns stay the month's own
    kpis = run(engine, pm.practice_kpis)
    assert value(kpis, "net_collection_rate", FEB) == pytest.approx(311 / 670)
    assert list(kpis["month"])[0] == JAN  # the window's earlier months are read, not reported
    # the period's rate is Σ ÷ Σ over the period, whatever the window
    summary = run(engine, pm.practice_summary, start=FEB).iloc[0]
    assert summary["net_collection_rate"] == pytest.approx((91 + 328) / (420 + 418))
    assert "trailing 3 months" in KPIS["net_collection_rate"].formula


def test_gross_collection_rate_is_net_of_refunds_like_the_net_rate(engine):
    row = run(engine, pm.practice_summary, end=FEB).iloc[0]
    assert row["gross_collection_rate"] == pytest.approx((320 - 9) / 750)  # refunded 9 in February
    assert row["net_collection_rate"] == pytest.approx((320 - 9) / (750 - 80))
    assert "refunds" in KPIS["gross_collection_rate"].formula


def test_days_in_ar_cites_the_gross_charges_method_it_computes():
    kpi = KPIS["days_in_ar"]
    assert "net days" not in kpi.source  # HFMA's net days divide net A/R by net revenue: not this
    assert "AAFP" in kpi.source
    assert "gross charges" in kpi.formula
    source = " ".join(pm.days_in_ar.__doc__.split("Source:")[1].split())
    assert source.startswith("AAFP and MGMA, the gross-charges method")


def test_days_to_payment(engine):
    out = run(engine, pm.days_to_payment)
    assert value(out, "average_days_to_payment", JAN) == 21  # C1: 2026-01-27 - 2026-01-06


def test_adjustments_and_denials(engine):
    adj = run(engine, pm.adjustments)
    jan = adj[adj["month"] == JAN]
    assert {(r.group_code, r.carc, r.amount) for r in jan.itertuples()} == {("CO", "45", 50), ("CO", "16", 100),
                                                                             ("PR", "1", 30)}
    den = run(engine, pm.denials)
    assert {(r.month, r.carc, r.amount) for r in den.itertuples()} == {(JAN, "16", 100), (FEB, "50", 300),
                                                                        (MAR, "97", 20)}


def test_remittances(engine):
    out = run(engine, pm.remittances)
    assert list(out["trace_number"]) == ["T1", "T2", "T4", "T5"]
    assert list(out["claims"]) == [2, 2, 3, 1]
    assert list(out["amount"]) == [120, 70, 194, 64]


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


def test_a_desk_copay_before_the_835_is_not_a_patient_credit(engine):
    """C6's copay (20, at the desk on the date of service) lowers the claim's insurance A/R until the 835
    assigns the patient's part; C8 (patient overpaid 30) and C9 (ACME paid twice, 80) are credit balances:
    out of A/R, reported apart."""
    ar = run(engine, pm.ar_balance)
    assert value(ar, "ar_insurance", MAR) == 150 + 180 + 20  # C4, C6, C7
    assert value(ar, "ar_patient", MAR) == 309  # C5 only: no negative patient balances
    assert value(ar, "credit_balances", MAR) == 30 + 80
    aging = run(engine, pm.ar_aging)
    rows = {(r.payer, r.bucket): (r.open_claims, r.balance) for r in aging.itertuples()}
    assert rows == {("ACME", "0-30"): (2, 200), ("ACME", "31-60"): (1, 150), ("Patient", "120+"): (1, 309)}
    patient = run(engine, pm.patient_balances)
    assert list(zip(patient["bucket"], patient["balance"], strict=True)) == [("120+", 309)]  # was 0-30: −50


def test_credit_balances_report_and_days(engine):
    out = run(engine, pm.credit_balances)
    assert [tuple(r) for r in out[["claim_id", "owed_to", "service_date", "credit_since", "amount"]]
            .itertuples(index=False)] == [("C8", "Patient", D(2026, 3, 9), "2026-03", 30),
                                          ("C9", "ACME", D(2026, 3, 10), "2026-03", 80)]
    assert run(engine, pm.credit_balances, end=FEB).empty
    kpis = run(engine, pm.practice_kpis)
    # 110 ÷ (Jan–Mar charges 300 + 450 + 490 over 90 days)
    assert value(kpis, "credit_balance_days", MAR) == pytest.approx(110 / (1240 / 90))
    summary = run(engine, pm.practice_summary).iloc[0]
    assert summary["credit_balances"] == 110
    assert summary["ar_balance"] == 659


def test_appeals_charge_lag_point_of_service_and_write_offs(engine):
    """Appeals (by month of the first): C2 (2026-02-01, paid 70 on 2026-02-20: overturned) and C3 (2026-02-25,
    never paid). Charge lag (by month of first submission): March C6 9 days, C7, C8, C9 1 day each. POS:
    March patient payments 20 (C6's desk copay, on its date of service) + 50 (C8, after). Write-offs: C3's
    denial 300 in March over net revenue Jan–Mar 250 + 420 + 418; C5's bad debt 309 in April over gross
    charges Feb–Apr 450 + 490 + 0."""
    out = run(engine, pm.practice_kpis, end=D(2026, 4, 1))
    assert (value(out, "appeals", FEB), value(out, "appeals_overturned", FEB)) == (2, 1)
    assert value(out, "appeal_overturn_rate", FEB) == 0.5
    assert value(out, "charge_lag_days", JAN) == 1
    assert value(out, "charge_lag_days", MAR) == pytest.approx((9 + 1 + 1 + 1) / 4)
    assert value(out, "pos_collection_rate", MAR) == pytest.approx(20 / 70)
    assert value(out, "pos_collection_rate", JAN) == 0  # C5's 100 came three months after the visit
    assert value(out, "denial_write_off_pct", MAR) == pytest.approx(300 / (250 + 420 + 418))
    assert value(out, "bad_debt_pct", D(2026, 4, 1)) == pytest.approx(309 / (450 + 490))
    summary = run(engine, pm.practice_summary, end=D(2026, 4, 1)).iloc[0]
    assert summary["charge_lag_days"] == pytest.approx((1 + 1 + 1 + 1 + 12) / 8)
    assert summary["bad_debt_pct"] == pytest.approx(309 / 1240)
    for name in ("appeal_overturn_rate", "charge_lag_days", "pos_collection_rate", "denial_write_off_pct",
                 "bad_debt_pct"):
        assert KPIS[name].formula, name
        assert KPIS[name].source, name


def test_each_carc_shows_its_reason_in_frames_and_in_sql_pages(engine):
    """Issue 12 item 5: CO-16 → missing or invalid claim information, CO-50 → medical necessity, CO-97 (a
    service line of CP7) → bundling; the worklist's SQL page gives the same words as the Python mapping, and a
    code the list does not hold reads "other reason"."""
    from dashboard.metrics import codes

    den = run(engine, pm.denials)
    assert dict(zip(den["carc"], den["reason"], strict=True)) == {
        "16": "missing or invalid claim information", "50": "medical necessity",
        "97": "bundling: included in another service's payment"}
    with engine.connect() as conn:
        page, total = pm.denied_claims_page(conn, Filters(start=JAN, end=MAR, practice_ids=(P1,)), sort=(),
                                            filters=(), offset=0, limit=50)
    assert total == len(page) == 3
    assert list(page["carc_reason"]) == [codes.carc_reason(c) for c in page["carc"]]
    assert codes.carc_reason("A0") == codes.carc_reason(None) == "other reason"
    # the shipped list maps each code once, in the project's own words (no X12 description text)
    reasons = codes.carc_reasons()
    assert len(reasons) == sum(1 for line in codes.CARC_REASONS_FILE.read_text().splitlines()
                               if line and not line.startswith("#")) - 1


def test_claim_mart_says_where_each_claim_stands(engine):
    """mart_claim, one row per claim, worked from the fixture: C2 rejected first, denied, then paid on appeal;
    C7 partly denied (CO-97 20, remark M15) with 20 owed; C4 sent and never answered; C8 in credit to the patient."""
    import sqlalchemy as sa

    from dashboard.warehouse import semantic as sem

    with engine.connect() as conn:
        rows = {r.claim_id: r for r in conn.execute(sa.select(sem.mart_claim).where(
            sem.mart_claim.c.practice_id == P1))}
    assert set(rows) == {"C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9"}
    c2 = rows["C2"]
    assert (c2.first_answer, c2.adjudications, c2.last_outcome, c2.payer_paid, c2.appealed_date) == (
        "rejected", 2, "paid", 70, D(2026, 2, 1))
    c7 = rows["C7"]
    assert (c7.last_outcome, c7.last_denied_amount, c7.denial_codes, c7.top_carc, c7.remark_codes,
            c7.payer_balance) == ("partially paid", 20, "CO-97", "97", "M15", 20)
    assert (rows["C3"].last_outcome, rows["C3"].payer_balance) == ("denied", 0)  # written off
    assert (rows["C4"].adjudications, rows["C4"].last_outcome, rows["C4"].payer_balance) == (0, None, 150)
    assert (rows["C8"].payer_balance, rows["C8"].patient_balance) == (0, -30)
    # what the denial-risk model reads: C7's first line 99213 at POS 11, 2 lines, no modifier, no diagnosis
    # coded, and no 270/271 for its patient (the fixture's checks name nobody)
    assert (c7.procedure, c7.place_of_service, c7.line_count, c7.modified, c7.diagnoses, c7.eligibility) == (
        "99213", "11", 2, 0, 0, "none")


def test_worklists_rank_open_denials_and_unanswered_claims(engine):
    """At the end of March: the denial worklist holds C7 (CO-97, 20 recoverable; ACME is commercial, so 90 days
    to appeal from 2026-03-24: 2026-06-22, 83 days left); C3's denial is written off, C2's paid on appeal. The
    follow-up list holds C4 (sent 2026-02-21, 38 days without an answer ≥ 30); C6 (sent 2026-03-11, 20 days)
    is not due yet. A payer's own terms change the clocks."""
    from dashboard.warehouse.payer_rules import payer_rules, set_payer_rule

    den = run(engine, pm.denial_worklist)
    assert den[["claim_id", "denial_codes", "recoverable", "appeal_by", "days_left", "appeal_status"]].values.tolist() \
        == [["C7", "CO-97", 20.0, D(2026, 6, 22), 83, "open"]]
    assert den.iloc[0]["reason"] == "bundling: included in another service's payment"
    assert den.iloc[0]["remark"].startswith("separately billed services were bundled")
    fol = run(engine, pm.ar_follow_up)
    assert fol[["claim_id", "submitted_date", "days_waiting", "follow_up_after_days", "balance"]].values.tolist() \
        == [["C4", D(2026, 2, 21), 38, 30, 150.0]]
    # ACME's contract: 20 days to follow up, 60 to appeal
    with engine.begin() as conn:
        set_payer_rule(conn, payer_id="ACME", appeal_days=60, follow_up_days=20)
    try:
        assert sorted(run(engine, pm.ar_follow_up)["claim_id"]) == ["C4", "C6"]
        assert run(engine, pm.denial_worklist)["days_left"].tolist() == [53]
        with engine.connect() as conn:
            acme = payer_rules(conn).set_index("payer_id").loc["ACME"]
        assert (acme["appeal_days"], acme["appeal_days_from"], acme["follow_up_days"]) == (60, "contract", 20)
        # at the end of June the 60-day window (to 2026-05-23) closed 38 days ago: expired
        june = run(engine, pm.denial_worklist, end=D(2026, 6, 1))
        assert june[["claim_id", "days_left", "appeal_status"]].values.tolist() == [["C7", -38, "expired"]]
    finally:
        with engine.begin() as conn:
            set_payer_rule(conn, payer_id="ACME", clear=True)
    with engine.connect() as conn:
        assert payer_rules(conn).set_index("payer_id").loc["ACME", "appeal_days_from"] == "default"
        page, total = pm.denial_worklist_page(conn, Filters(start=JAN, end=MAR, practice_ids=(P1,)))
    assert total == 1
    assert list(page.columns) == list(pm.DENIAL_WORKLIST_PAGED)


def test_unmatched_payments_list_money_that_does_not_match_the_books(engine):
    """In a transaction rolled back: ACME's 835 of 2026-03-24 (T4) also pays $15 on CLP01 ZZ9, which is no claim
    of P1; and C1's record expects $130 where ACME paid $120 (underpaid by $10). C8 expects what it was paid."""

    from dashboard.warehouse import schema as s
    from dashboard.warehouse.semantic import refresh_marts

    with engine.connect() as conn:
        outer = conn.begin()
        try:
            conn.execute(s.claim_payment.insert().values(
                claim_payment_id="CPX", remittance_id="R3", practice_id=P1, claim_id="ZZ9", status_code="1",
                charge_amount=40, paid_amount=15, patient_responsibility=0, payer_claim_number="ACME-X"))
            mc = s.medical_claim
            conn.execute(mc.update().where(mc.c.claim_id == "C1").values(paid_amount=65))
            conn.execute(mc.update().where(mc.c.claim_id == "C8").values(paid_amount=60))
            refresh_marts(conn, practices=[P1])
            out = pm.unmatched_payments(conn, Filters(start=JAN, end=MAR, practice_ids=(P1,)))
            page, total = pm.unmatched_payments_page(conn, Filters(start=JAN, end=MAR, practice_ids=(P1,)),
                                                     filters=())
        finally:
            outer.rollback()
    assert out[["issue", "claim_id", "trace_number", "payment_date", "paid", "expected", "difference"]] \
        .astype(object).where(out.notna(), None).values.tolist() == [
        ["underpaid", "C1", "T1", D(2026, 1, 27), 120.0, 130.0, -10.0],
        ["no such claim", "ZZ9", "T4", D(2026, 3, 24), 15.0, None, None]]
    assert total == 2
    assert page["claim_id"].tolist() == ["C1", "ZZ9"]
    # rolled back: nothing is left of it
    assert run(engine, pm.unmatched_payments).empty


def test_eligibility_pending_lists_visits_near_the_period_end_without_a_good_answer(engine):
    """Fixture checks: 01-05 active, 01-10 inactive, 02-03 active, 02-20 pending. At the end of January (visits
    from 01-01 to 03-02) the 01-10 visit's coverage is inactive (21 days ago) and the 02-20 visit has no answer
    (in 20 days); at the end of February only the pending one is left (8 days ago)."""
    jan = run(engine, pm.eligibility_pending, end=JAN)
    assert jan[["service_date", "days_to_visit", "status"]].values.tolist() == [
        [D(2026, 1, 10), -21, "coverage inactive"], [D(2026, 2, 20), 20, "no answer yet"]]
    feb = run(engine, pm.eligibility_pending, end=FEB)
    assert feb[["service_date", "days_to_visit", "status"]].values.tolist() == [[D(2026, 2, 20), -8, "no answer yet"]]
    assert run(engine, pm.eligibility_pending, end=D(2026, 6, 1)).empty


def test_claim_lifecycle_funnel_and_median_days_by_payer(engine):
    """Claims first sent January–March (C1, C2, C3, C4, C6, C7, C8, C9; C5 was sent in 2025): all 8 accepted
    (C2 after a rejection), 6 adjudicated (not C4, C6), 5 paid (not C3), 3 denied on the first 835 (C2 CO-16,
    C3 CO-50, C7 a line CO-97), 2 appealed (C2, C3), 1 overturned (C2). Medians: charge lag 1 day (C6: 9);
    to acceptance 1 (C2: 5); to adjudication of 13, 14, 16, 16, 20, 21 days: 16; to payment of 13, 14, 20, 21,
    40 (C2, paid on appeal): 20."""
    out = run(engine, pm.claim_lifecycle)
    row = out.iloc[0]
    assert (len(out), row["payer"]) == (1, "ACME")
    assert [int(row[c]) for c in pm.LIFECYCLE_STAGES] == [8, 8, 6, 5, 3, 2, 1]
    assert [row[c] for c in pm.LIFECYCLE_DAYS] == [1.0, 1.0, 16.0, 20.0]
    assert run(engine, pm.claim_lifecycle, start=D(2025, 10, 1), end=D(2025, 10, 1))["submitted"].tolist() == [1]


def test_payment_method_mix_by_month(engine):
    """P1's 835s: January T1 by ACH ($120); February T2 by check ($70); March T4 by ACH ($194) and T5 by check
    ($64): 75.2% of March's dollars by EFT."""
    out = run(engine, pm.payment_methods)
    assert out[["month", "method", "method_name", "payments", "amount"]].values.tolist() == [
        [JAN, "ACH", "EFT (ACH)", 1, 120.0], [FEB, "CHK", "check", 1, 70.0], [MAR, "ACH", "EFT (ACH)", 1, 194.0],
        [MAR, "CHK", "check", 1, 64.0]]
    assert out["share_of_amount"].tolist() == pytest.approx([1.0, 1.0, 194 / 258, 64 / 258])


def test_a_practices_own_channel_fee_terms_replace_the_published_ones(engine):
    """P1 is premium: 0.5% of January's $120 EFT = $0.60. With its own terms (0.4%, capped at $0.30) the fee is
    $0.30; P2, basic and free, is charged once it has terms of its own (1% of February's $352.50, no cap)."""
    from dashboard.warehouse.channel_fees import channel_fees, set_channel_fee

    with engine.begin() as conn:
        set_channel_fee(conn, practice_id=P1, rate=0.004, cap=0.30)
        set_channel_fee(conn, practice_id=P2, rate=0.01, no_cap=True)
    try:
        out = run(engine, pm.payment_channel_fees, practices=(P1, P2))
        assert value(out, "fee", JAN) == pytest.approx(0.30)
        assert value(out, "fee_rate", JAN) == pytest.approx(0.004)
        assert value(out, "fee", FEB, practice=P2) == pytest.approx(3.53)
        with engine.connect() as conn:
            terms = channel_fees(conn).set_index("practice_id")
        assert terms.loc[P2, "terms"] == "practice's terms"
    finally:
        with engine.begin() as conn:
            set_channel_fee(conn, practice_id=P1, clear=True)
            set_channel_fee(conn, practice_id=P2, clear=True)
    out = run(engine, pm.payment_channel_fees, practices=(P1, P2))
    assert value(out, "fee", JAN) == pytest.approx(0.60)
    assert value(out, "fee", FEB, practice=P2) == 0


def test_the_claims_behind_the_denial_rate_are_its_numerator(engine):
    """The denial-rate card opens first-denials: per month its claims are the KPI's numerator. January: C2
    (CO-16); February: C3 (CO-50); March: C7 (a line CO-97): 1 of 2, 1 of 1 and 1 of 3 first adjudications."""
    rates = run(engine, pm.denial_rate)
    out = run(engine, pm.first_denials)
    assert out[["claim_id", "first_835", "last_outcome"]].values.tolist() == [
        ["C2", D(2026, 1, 27), "paid"], ["C3", D(2026, 2, 20), "denied"], ["C7", D(2026, 3, 24), "partially paid"]]
    per_month = out.assign(month=[d.replace(day=1) for d in out["first_835"]]).groupby("month").size()
    assert {m: int(n) for m, n in per_month.items()} == {
        r.month: int(r.denied) for r in rates.itertuples() if r.denied}
