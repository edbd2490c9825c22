"""Practice (revenue-cycle) KPIs. Each takes ``(conn, filters)`` and returns one row per practice and
month (or per the grain named in its docstring). Sources: ``/shared/docs/kpi-reference.md``.

Dates: charges count on the date of service; payments and adjustments on the 835 payment date (BPR16);
A/R is the running balance of :func:`dashboard.warehouse.marts.int_ar_ledger` at each month end.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.metrics import definitions as d
from dashboard.metrics._query import fetch, ratio
from dashboard.metrics.filters import Filters, add_months, month_end
from dashboard.warehouse import marts as m
from dashboard.warehouse import schema as s

KEY = ["practice_id", "month"]


def _between(column, start: dt.date, end: dt.date):
    return sa.and_(column >= start, column <= end)


def charges(conn: Connection, f: Filters, *, start: dt.date | None = None) -> pd.DataFrame:
    """Gross charges = Σ claim charge amounts by month of the date of service; also the claim count.

    Source: MGMA (gross charges at full fee schedule)."""
    claim = m.stg_practice_claim(f.practice_ids).subquery()
    month = m.month_of(claim.c.service_date)
    q = (
        sa.select(claim.c.practice_id, month, sa.func.count(), sa.func.sum(claim.c.charge_amount))
        .where(_between(claim.c.service_date, start or f.start, f.end_date))
        .group_by(claim.c.practice_id, month)
    )
    return fetch(conn, q, [*KEY, "claims", "charges"])


def payments(conn: Connection, f: Filters) -> pd.DataFrame:
    """Payments = payer payments (Σ 835 CLP04 by payment date) + patient payments; refunds (negative
    patient payments) are reported apart as positive dollars in ``refunds``. Source: MGMA."""
    cp, r, pp = s.claim_payment, s.remittance, s.patient_payment
    payer_month = m.month_of(r.c.payment_date)
    payer = (
        sa.select(cp.c.practice_id, payer_month, sa.func.sum(cp.c.paid_amount))
        .join(r, r.c.remittance_id == cp.c.remittance_id)
        .where(m.within(cp.c.practice_id, f.practice_ids))
        .where(_between(r.c.payment_date, f.start, f.end_date))
        .group_by(cp.c.practice_id, payer_month)
    )
    patient_month = m.month_of(pp.c.payment_date)
    patient = (
        sa.select(
            pp.c.practice_id, patient_month,
            sa.func.sum(sa.case((pp.c.amount > 0, pp.c.amount), else_=0)),
            sa.func.sum(sa.case((pp.c.amount < 0, -pp.c.amount), else_=0)),
        )
        .where(m.within(pp.c.practice_id, f.practice_ids))
        .where(_between(pp.c.payment_date, f.start, f.end_date))
        .group_by(pp.c.practice_id, patient_month)
    )
    out = fetch(conn, payer, [*KEY, "payer_payments"]).merge(
        fetch(conn, patient, [*KEY, "patient_payments", "refunds"]), on=KEY, how="outer"
    )
    out = out.fillna({"payer_payments": 0.0, "patient_payments": 0.0, "refunds": 0.0})
    out["payments"] = out["payer_payments"] + out["patient_payments"]
    return out


def adjustments_by_group(conn: Connection, f: Filters) -> pd.DataFrame:
    """Σ CAS adjustment amounts by month, group code (CO/PR/OA/PI) and category
    (contractual / patient_cost_share / coordination / denial). Source: X12 835 CAS."""
    adj = m.stg_adjustment(f.practice_ids).subquery()
    month = m.month_of(adj.c.payment_date)
    q = (
        sa.select(adj.c.practice_id, month, adj.c.group_code, adj.c.category, sa.func.sum(adj.c.amount))
        .where(_between(adj.c.payment_date, f.start, f.end_date))
        .group_by(adj.c.practice_id, month, adj.c.group_code, adj.c.category)
    )
    return fetch(conn, q, [*KEY, "group_code", "category", "amount"])


def contractual_adjustments(conn: Connection, f: Filters) -> pd.DataFrame:
    """Contractual adjustments = Σ CO adjustments whose CARC is contractual (CO-45, CO-A2, ...), by
    payment month. Source: MGMA adjusted FFS collection; X12 CARC list."""
    groups = adjustments_by_group(conn, f)
    out = groups[groups["category"] == "contractual"].groupby(KEY, as_index=False)["amount"].sum()
    return out.rename(columns={"amount": "contractual_adjustments"})


def _month_ends(f: Filters):
    c = s.calendar_month
    return sa.select(c.c.month_start, c.c.month_end, c.c.days_in_month).where(
        _between(c.c.month_start, f.start, f.end)
    ).subquery("months")


def ar_balance(conn: Connection, f: Filters) -> pd.DataFrame:
    """A/R at each month end = Σ ledger amounts dated on or before it (charges − payer payments −
    contractual adjustments − patient payments + refunds − write-offs), net of credit balances; split
    into insurance and patient; ``ar_over_90`` is the part from dates of service more than 90 days
    before the month end. Source: AAFP / HFMA MAP (A/R net of credits)."""
    raw = m.int_ar_ledger(f.practice_ids).subquery("raw")
    # Summed by transaction month and date of service first: "dated on or before the month end" only
    # depends on the transaction's month, so each month end then scans days, not every ledger entry.
    txn_month = m.month_of(raw.c.txn_date)
    ledger = (
        sa.select(raw.c.practice_id, txn_month.label("txn_month"), raw.c.service_date, raw.c.responsibility,
                  sa.func.sum(raw.c.amount).label("amount"))
        .group_by(raw.c.practice_id, txn_month, raw.c.service_date, raw.c.responsibility)
        .subquery("ledger")
    )
    months = _month_ends(f)
    old = ledger.c.service_date < months.c.month_end - 90
    q = (
        sa.select(
            ledger.c.practice_id, months.c.month_start,
            sa.func.sum(ledger.c.amount),
            sa.func.sum(sa.case((ledger.c.responsibility == "insurance", ledger.c.amount), else_=0)),
            sa.func.sum(sa.case((ledger.c.responsibility == "patient", ledger.c.amount), else_=0)),
            sa.func.sum(sa.case((old, ledger.c.amount), else_=0)),
        )
        .select_from(ledger)
        .join(months, ledger.c.txn_month <= months.c.month_start)
        .group_by(ledger.c.practice_id, months.c.month_start)
    )
    return fetch(conn, q, [*KEY, "ar_balance", "ar_insurance", "ar_patient", "ar_over_90"])


def ar_over_90_pct(conn: Connection, f: Filters, *, ar: pd.DataFrame | None = None) -> pd.DataFrame:
    """% A/R over 90 days = A/R from dates of service more than 90 days before the month end ÷ total
    A/R (both net of credits). Source: kpi-reference (vendor guidance, benchmark ~10–20%).
    ``ar``: an :func:`ar_balance` result for the same filters, to avoid computing it twice."""
    ar = (ar_balance(conn, f) if ar is None else ar).copy()
    ar["ar_over_90_pct"] = ratio(ar["ar_over_90"], ar["ar_balance"])
    return ar[[*KEY, "ar_over_90", "ar_balance", "ar_over_90_pct"]]


def days_in_ar(conn: Connection, f: Filters, *, ar: pd.DataFrame | None = None) -> pd.DataFrame:
    """Days in A/R = A/R at month end ÷ average daily gross charges of the 3 months ending that month
    (Σ charges of the 3 months ÷ their days). Source: AAFP; HFMA MAP key "net days in A/R".
    ``ar``: an :func:`ar_balance` result for the same filters, to avoid computing it twice."""
    ar = (ar_balance(conn, f) if ar is None else ar)[[*KEY, "ar_balance"]]
    monthly = charges(conn, f, start=add_months(f.start, -2))
    rows = []
    month = f.start
    while month <= f.end:
        window = [add_months(month, -i) for i in range(3)]
        days = sum((month_end(w) - w).days + 1 for w in window)
        in_window = monthly[monthly["month"].isin(window)]
        for practice_id, total in in_window.groupby("practice_id")["charges"].sum().items():
            rows.append((practice_id, month, total / days))
        month = add_months(month, 1)
    daily = pd.DataFrame(rows, columns=[*KEY, "average_daily_charges"])
    out = ar.merge(daily, on=KEY, how="outer")
    out["days_in_ar"] = ratio(out["ar_balance"], out["average_daily_charges"])
    return out


def ar_aging(conn: Connection, f: Filters) -> pd.DataFrame:
    """A/R aging at the end of the period: open balance per claim by age from the DATE OF SERVICE in
    buckets 0–30, 31–60, 61–90, 91–120, 120+ days, per payer; patient balances appear as payer
    'Patient'. Credit balances are netted in their bucket. Source: MGMA."""
    ledger = m.int_ar_ledger(f.practice_ids).subquery("ledger")
    as_of = f.end_date
    payer = sa.case((ledger.c.responsibility == "patient", "Patient"), else_=ledger.c.payer)
    per_claim = (
        sa.select(ledger.c.practice_id, ledger.c.claim_id, payer.label("payer"),
                  (sa.literal(as_of, sa.Date) - sa.func.min(ledger.c.service_date)).label("age"),
                  sa.func.sum(ledger.c.amount).label("balance"))
        .where(ledger.c.txn_date <= as_of)
        .group_by(ledger.c.practice_id, ledger.c.claim_id, payer)
        .subquery("per_claim")
    )
    bucket = sa.case(
        *[((per_claim.c.age <= high) if low == 0 else sa.and_(per_claim.c.age >= low, per_claim.c.age <= high),
           name) for name, low, high in d.AGING_BUCKETS if high is not None],
        else_=d.AGING_BUCKETS[-1][0],
    )
    q = (
        sa.select(per_claim.c.practice_id, per_claim.c.payer, bucket,
                  sa.func.count(), sa.func.sum(per_claim.c.balance))
        .where(per_claim.c.balance != 0)
        .group_by(per_claim.c.practice_id, per_claim.c.payer, bucket)
    )
    out = fetch(conn, q, ["practice_id", "payer", "bucket", "open_claims", "balance"])
    order = {name: i for i, (name, _, _) in enumerate(d.AGING_BUCKETS)}
    out["_order"] = out["bucket"].map(order)
    return out.sort_values(["practice_id", "payer", "_order"]).drop(columns="_order").reset_index(drop=True)


def patient_balances(conn: Connection, f: Filters) -> pd.DataFrame:
    """Patient A/R at the end of the period by age bucket (the 'Patient' rows of :func:`ar_aging`)."""
    aging = ar_aging(conn, f)
    return aging[aging["payer"] == "Patient"].drop(columns="payer").reset_index(drop=True)


def clean_claim_rate(conn: Connection, f: Filters) -> pd.DataFrame:
    """Clean-claim rate = claims accepted on the clearinghouse's first answer (277CA) ÷ claims with a
    first answer (accepted + rejected), by month of that answer. Source: HFMA MAP key CL-1."""
    ack = m.int_first_acknowledgement(f.practice_ids).subquery()
    month = m.month_of(ack.c.event_date)
    q = (
        sa.select(ack.c.practice_id, month, sa.func.count(),
                  sa.func.sum(sa.case((ack.c.event_type == "accepted", 1), else_=0)))
        .where(_between(ack.c.event_date, f.start, f.end_date))
        .group_by(ack.c.practice_id, month)
    )
    out = fetch(conn, q, [*KEY, "acknowledged", "accepted"])
    out["clean_claim_rate"] = ratio(out["accepted"], out["acknowledged"])
    return out


def _first_adjudications(conn: Connection, f: Filters) -> pd.DataFrame:
    first = m.int_first_adjudication(f.practice_ids).subquery("first")
    claim = m.stg_practice_claim(f.practice_ids).subquery("claim")
    ack = m.int_first_acknowledgement(f.practice_ids).subquery("ack")
    month = m.month_of(first.c.payment_date)
    rejected = sa.case((ack.c.event_type == "rejected", 1), else_=0)
    resolved = sa.and_(first.c.is_denial == 0, ack.c.event_type.is_distinct_from("rejected"))
    q = (
        sa.select(
            first.c.practice_id, month, sa.func.count(),
            sa.func.sum(first.c.is_denial),
            sa.func.sum(sa.func.coalesce(claim.c.charge_amount, first.c.charge_amount)),
            sa.func.sum(sa.case((first.c.is_denial == 1,
                                 sa.func.coalesce(claim.c.charge_amount, first.c.charge_amount)), else_=0)),
            sa.func.sum(sa.case((resolved, 1), else_=0)),
            sa.func.sum(rejected),
        )
        .select_from(first)
        .outerjoin(claim, sa.and_(claim.c.claim_id == first.c.claim_id, claim.c.practice_id == first.c.practice_id))
        .outerjoin(ack, sa.and_(ack.c.claim_id == first.c.claim_id, ack.c.practice_id == first.c.practice_id))
        .where(_between(first.c.payment_date, f.start, f.end_date))
        .group_by(first.c.practice_id, month)
    )
    return fetch(conn, q, [*KEY, "adjudicated", "denied", "charges_adjudicated", "charges_denied",
                           "resolved_first_pass", "rejected_first"])


def denial_rate(conn: Connection, f: Filters) -> pd.DataFrame:
    """Initial denial rate = claims denied on their first adjudication ÷ claims first adjudicated, by
    month of the first 835; by dollars = charges of those denied claims ÷ charges adjudicated.
    A denial is CLP02 = 4, or nothing paid with a denial adjustment (CO-45 and PR-1/2/3 are not denials).
    Source: HFMA claim-integrity task force (2020), MAP key "initial denial rate" (claims remitted)."""
    out = _first_adjudications(conn, f)
    out["denial_rate"] = ratio(out["denied"], out["adjudicated"])
    out["denial_rate_dollars"] = ratio(out["charges_denied"], out["charges_adjudicated"])
    return out[[*KEY, "adjudicated", "denied", "denial_rate", "charges_adjudicated", "charges_denied",
                "denial_rate_dollars"]]


def _net_collection_ratio(sums: pd.DataFrame) -> pd.Series:
    """(payments − refunds) ÷ (charges − contractual adjustments); undefined (NaN) when the denominator
    is not positive, e.g. a month with payments and contractual adjustments but no new charges."""
    denominator = sums["charges"] - sums["contractual_adjustments"]
    return ratio(sums["payments"] - sums["refunds"], denominator.where(denominator > 0))


def first_pass_resolution_rate(conn: Connection, f: Filters) -> pd.DataFrame:
    """First-pass resolution = claims resolved on first submission (accepted by the clearinghouse on its
    first answer, and paid or moved to patient responsibility on the first adjudication) ÷ claims first
    adjudicated in the month. Source: industry practice (kpi-reference, target ≥ 90%)."""
    out = _first_adjudications(conn, f)
    out["first_pass_resolution_rate"] = ratio(out["resolved_first_pass"], out["adjudicated"])
    return out[[*KEY, "adjudicated", "resolved_first_pass", "first_pass_resolution_rate"]]


def collection_rates(conn: Connection, f: Filters) -> pd.DataFrame:
    """Net collection rate = (payments − refunds) ÷ (charges − contractual adjustments);
    gross collection rate = payments ÷ charges; same month for both terms.
    Source: MGMA "adjusted FFS collection %" (net), MGMA gross collection rate."""
    out = charges(conn, f)[[*KEY, "charges"]]
    out = out.merge(payments(conn, f), on=KEY, how="outer").merge(contractual_adjustments(conn, f), on=KEY,
                                                                   how="outer")
    out = out.fillna({"charges": 0.0, "payments": 0.0, "refunds": 0.0, "contractual_adjustments": 0.0,
                      "payer_payments": 0.0, "patient_payments": 0.0})
    out["net_collection_rate"] = _net_collection_ratio(out)
    out["gross_collection_rate"] = ratio(out["payments"], out["charges"])
    return out


def net_collection_rate(conn: Connection, f: Filters) -> pd.DataFrame:
    """Net collection rate = (payments − refunds) ÷ (charges − contractual adjustments). Source: MGMA."""
    return collection_rates(conn, f)[[*KEY, "payments", "refunds", "charges", "contractual_adjustments",
                                      "net_collection_rate"]]


def gross_collection_rate(conn: Connection, f: Filters) -> pd.DataFrame:
    """Gross collection rate = payments ÷ gross charges. Source: MGMA."""
    return collection_rates(conn, f)[[*KEY, "payments", "charges", "gross_collection_rate"]]


def days_to_payment(conn: Connection, f: Filters) -> pd.DataFrame:
    """Average days to payment = mean of (first 835 payment date (BPR16) − first 837 submission date)
    over claims first paid in the month (paid amount > 0). Source: kpi-reference."""
    first = m.int_first_adjudication(f.practice_ids).subquery("first")
    sub = m.int_first_submission(f.practice_ids).subquery("sub")
    month = m.month_of(first.c.payment_date)
    q = (
        sa.select(first.c.practice_id, month, sa.func.count(),
                  sa.func.avg(first.c.payment_date - sub.c.submitted_date))
        .join(sub, sa.and_(sub.c.claim_id == first.c.claim_id, sub.c.practice_id == first.c.practice_id))
        .where(first.c.paid_amount > 0)
        .where(_between(first.c.payment_date, f.start, f.end_date))
        .group_by(first.c.practice_id, month)
    )
    return fetch(conn, q, [*KEY, "claims_paid", "average_days_to_payment"])


def adjustments(conn: Connection, f: Filters, *, denials_only: bool = False) -> pd.DataFrame:
    """Every CAS adjustment summed by payment month, payer, group code and CARC, with the number of
    distinct claims; ``denials_only`` keeps the denial category (not contractual, not PR-1/2/3, not
    OA-23). Source: X12 835 CAS; CARC list."""
    adj = m.stg_adjustment(f.practice_ids).subquery()
    month = m.month_of(adj.c.payment_date)
    q = (
        sa.select(adj.c.practice_id, month, adj.c.payer, adj.c.group_code, adj.c.carc, adj.c.category,
                  sa.func.count(sa.distinct(adj.c.claim_id)), sa.func.sum(adj.c.amount))
        .where(_between(adj.c.payment_date, f.start, f.end_date))
        .group_by(adj.c.practice_id, month, adj.c.payer, adj.c.group_code, adj.c.carc, adj.c.category)
        .order_by(adj.c.practice_id, month, adj.c.payer, adj.c.group_code, adj.c.carc)
    )
    if denials_only:
        q = q.where(adj.c.category == "denial")
    return fetch(conn, q, [*KEY, "payer", "group_code", "carc", "category", "claims", "amount"])


def denials(conn: Connection, f: Filters) -> pd.DataFrame:
    """Denial adjustments by month, payer, group and CARC (see :func:`adjustments`)."""
    return adjustments(conn, f, denials_only=True)


def denied_claims(conn: Connection, f: Filters) -> pd.DataFrame:
    """The denial worklist: each denial adjustment (CAS in the denial category) of a remittance paid in
    the period, at claim level (line 0) or on a service line with its procedure code, the claim's CLP02
    status, and the remark codes (LQ on the line, MOA/MIA on the claim) that explain it; ``matched``
    says whether CLP01 names a claim in medical_claim. Source: X12 835 CAS, SVC, LQ; CARC/RARC lists."""
    adj = m.stg_adjustment(f.practice_ids).subquery("adj")
    cp, sl, rc = s.claim_payment, s.service_line_payment, s.remark_code
    claim = m.stg_practice_claim(f.practice_ids).subquery("claim")
    q = (
        sa.select(adj.c.practice_id, adj.c.claim_id, adj.c.payer, adj.c.payment_date, cp.c.status_code,
                  cp.c.charge_amount, cp.c.paid_amount, adj.c.line_number, sl.c.procedure_code, adj.c.group_code,
                  adj.c.carc, adj.c.amount, claim.c.claim_id.is_not(None), adj.c.claim_payment_id)
        .select_from(adj)
        .join(cp, cp.c.claim_payment_id == adj.c.claim_payment_id)
        .outerjoin(sl, sa.and_(sl.c.claim_payment_id == adj.c.claim_payment_id,
                               sl.c.line_number == adj.c.line_number))
        .outerjoin(claim, sa.and_(claim.c.claim_id == adj.c.claim_id, claim.c.practice_id == adj.c.practice_id))
        .where(adj.c.category == "denial")
        .where(_between(adj.c.payment_date, f.start, f.end_date))
    )
    columns = ["practice_id", "claim_id", "payer", "payment_date", "claim_status", "claim_charge", "claim_paid",
               "line_number", "procedure_code", "group_code", "carc", "amount", "matched", "claim_payment_id"]
    out = fetch(conn, q.order_by(adj.c.practice_id, adj.c.payment_date, adj.c.claim_id, adj.c.claim_payment_id,
                                 adj.c.line_number, adj.c.group_code, adj.c.carc), columns)
    listed = q.with_only_columns(adj.c.claim_payment_id).distinct().subquery("listed")
    remarks = fetch(conn, sa.select(rc.c.claim_payment_id, rc.c.line_number, rc.c.code)
                    .join(listed, listed.c.claim_payment_id == rc.c.claim_payment_id)
                    .where(m.within(rc.c.practice_id, f.practice_ids))
                    .order_by(rc.c.claim_payment_id, rc.c.line_number, rc.c.remark_seq),
                    ["claim_payment_id", "line_number", "code"])
    by_line: dict[tuple[str, int], list[str]] = {}
    for r in remarks.itertuples(index=False):
        by_line.setdefault((r.claim_payment_id, int(r.line_number)), []).append(r.code)

    def codes(claim_payment_id: str, line_number: int) -> str:
        # A claim-level remark (line 0) explains every line of the claim.
        found = by_line.get((claim_payment_id, line_number), [])
        if line_number != 0:
            found = found + by_line.get((claim_payment_id, 0), [])
        return ",".join(dict.fromkeys(found))

    out["line_number"] = out["line_number"].astype("int64")
    out["remark_codes"] = [codes(c, n) for c, n in zip(out["claim_payment_id"], out["line_number"], strict=True)]
    out["matched"] = out["matched"].astype(bool)
    return out.drop(columns="claim_payment_id")


def payer_mix(conn: Connection, f: Filters) -> pd.DataFrame:
    """Share of gross charges by payer over the period (dates of service in range). Source: MGMA."""
    claim = m.stg_practice_claim(f.practice_ids).subquery()
    q = (
        sa.select(claim.c.practice_id, claim.c.payer, sa.func.count(), sa.func.sum(claim.c.charge_amount))
        .where(_between(claim.c.service_date, f.start, f.end_date))
        .group_by(claim.c.practice_id, claim.c.payer)
        .order_by(claim.c.practice_id, claim.c.payer)
    )
    out = fetch(conn, q, ["practice_id", "payer", "claims", "charges"])
    out["share_of_charges"] = ratio(out["charges"], out.groupby("practice_id")["charges"].transform("sum"))
    return out


def remittances(conn: Connection, f: Filters) -> pd.DataFrame:
    """835 payments (BPR/TRN) in the period: trace number, payer, payment date, method, amount and the
    number of claims (CLP) in each; ``unmatched_claims`` counts CLPs whose CLP01 matches no claim."""
    r, cp = s.remittance, s.claim_payment
    claim = m.stg_practice_claim(f.practice_ids).subquery("claim")
    per = (
        sa.select(cp.c.remittance_id, sa.func.count().label("claims"),
                  sa.func.sum(sa.case((claim.c.claim_id.is_(None), 1), else_=0)).label("unmatched"))
        .select_from(cp)
        .outerjoin(claim, sa.and_(claim.c.claim_id == cp.c.claim_id, claim.c.practice_id == cp.c.practice_id))
        .where(m.within(cp.c.practice_id, f.practice_ids))
        .group_by(cp.c.remittance_id)
        .subquery("per")
    )
    q = (
        sa.select(r.c.practice_id, r.c.trace_number, sa.func.coalesce(r.c.payer_name, r.c.payer_id),
                  r.c.payment_date, r.c.method, r.c.amount, sa.func.coalesce(per.c.claims, 0),
                  sa.func.coalesce(per.c.unmatched, 0))
        .outerjoin(per, per.c.remittance_id == r.c.remittance_id)
        .where(m.within(r.c.practice_id, f.practice_ids))
        .where(_between(r.c.payment_date, f.start, f.end_date))
        .order_by(r.c.practice_id, r.c.payment_date, r.c.trace_number)
    )
    return fetch(conn, q, ["practice_id", "trace_number", "payer", "payment_date", "method", "amount", "claims",
                           "unmatched_claims"])


def eligibility_checks(conn: Connection, f: Filters) -> pd.DataFrame:
    """270/271 eligibility checks by month of service: verified (active or inactive answer), pending
    (no 271 yet) and errors; insurance verification rate = verified ÷ checks. Source: HFMA MAP key."""
    ec = s.eligibility_check
    month = m.month_of(sa.func.coalesce(ec.c.service_date, sa.cast(ec.c.requested_at, sa.Date)))
    q = (
        sa.select(
            ec.c.practice_id, month, sa.func.count(),
            sa.func.sum(sa.case((ec.c.status.in_(("active", "inactive")), 1), else_=0)),
            sa.func.sum(sa.case((ec.c.status == "pending", 1), else_=0)),
            sa.func.sum(sa.case((ec.c.status == "inactive", 1), else_=0)),
            sa.func.sum(sa.case((ec.c.status == "error", 1), else_=0)),
        )
        .where(m.within(ec.c.practice_id, f.practice_ids))
        .where(_between(sa.func.coalesce(ec.c.service_date, sa.cast(ec.c.requested_at, sa.Date)),
                        f.start, f.end_date))
        .group_by(ec.c.practice_id, month)
        .order_by(ec.c.practice_id, month)
    )
    out = fetch(conn, q, [*KEY, "checks", "verified", "pending", "inactive", "errors"])
    out["verification_rate"] = ratio(out["verified"], out["checks"])
    return out


PORTAL_FEE_RATE = 0.005
PORTAL_FEE_CAP = 2000.0


def payment_channel_fees(conn: Connection, f: Filters) -> pd.DataFrame:
    """Payment-channel fee = 0.5% of each payer payment received through a premium payment portal,
    capped at $2,000 per billing cycle (calendar month) per TIN; basic access is free.
    Source: Optum Pay published terms (2021)."""
    r, p = s.remittance, s.practice
    month = m.month_of(r.c.payment_date)
    q = (
        sa.select(r.c.practice_id, month, sa.func.sum(r.c.amount),
                  sa.func.max(sa.case((p.c.premium_payment_portal, 1), else_=0)))
        .join(p, p.c.practice_id == r.c.practice_id)
        .where(m.within(r.c.practice_id, f.practice_ids))
        .where(r.c.method == "ACH")
        .where(_between(r.c.payment_date, f.start, f.end_date))
        .group_by(r.c.practice_id, month)
        .order_by(r.c.practice_id, month)
    )
    out = fetch(conn, q, [*KEY, "eft_payments", "premium"])
    fee = (out["eft_payments"] * PORTAL_FEE_RATE).clip(upper=PORTAL_FEE_CAP).round(2)
    out["fee"] = fee.where(out["premium"] > 0, 0.0)
    return out.drop(columns="premium")


def practice_summary(conn: Connection, f: Filters) -> pd.DataFrame:
    """The period's KPIs per practice, plus a combined row (practice_id 'all') when several practices
    are selected. Each rate is Σ numerator ÷ Σ denominator over the period (not a mean of monthly
    rates); A/R, days in A/R and % over 90 are at the end of the last month. Formulas as in the
    monthly functions above."""
    sums = {
        "charges": collection_rates(conn, f)[["practice_id", "charges", "payments", "refunds",
                                              "contractual_adjustments"]],
        "clean": clean_claim_rate(conn, f)[["practice_id", "acknowledged", "accepted"]],
        "adj": _first_adjudications(conn, f)[["practice_id", "adjudicated", "denied", "charges_adjudicated",
                                             "charges_denied", "resolved_first_pass"]],
    }
    last = Filters(start=f.end, end=f.end, practice_ids=f.practice_ids)
    ar = ar_balance(conn, last)
    end = days_in_ar(conn, last, ar=ar).merge(ar[["practice_id", "ar_over_90"]], on="practice_id", how="outer")
    end = end[["practice_id", "ar_balance", "average_daily_charges", "ar_over_90"]]
    # A practice with no claims in one of the sources yields an empty frame of untyped columns: cast
    # before summing so an empty source is zeros, not missing columns.
    parts = [frame.set_index("practice_id").astype(float).groupby(level=0).sum()
             for frame in [*sums.values(), end]]
    out = pd.concat(parts, axis=1).fillna(0.0)
    out.index.name = "practice_id"
    if len(out) > 1:
        out.loc["all"] = out.sum()
    out = out.reset_index(names="practice_id")
    out["days_in_ar"] = ratio(out["ar_balance"], out["average_daily_charges"])
    out["ar_over_90_pct"] = ratio(out["ar_over_90"], out["ar_balance"])
    out["clean_claim_rate"] = ratio(out["accepted"], out["acknowledged"])
    out["denial_rate"] = ratio(out["denied"], out["adjudicated"])
    out["denial_rate_dollars"] = ratio(out["charges_denied"], out["charges_adjudicated"])
    out["first_pass_resolution_rate"] = ratio(out["resolved_first_pass"], out["adjudicated"])
    out["net_collection_rate"] = _net_collection_ratio(out)
    out["gross_collection_rate"] = ratio(out["payments"], out["charges"])
    return out
