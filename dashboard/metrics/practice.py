"""Practice (revenue-cycle) KPIs. Each takes ``(conn, filters)`` and returns one row per practice and
month (or per the grain named in its docstring). Sources: ``/shared/docs/kpi-reference.md``.

Dates: charges count on the date of service; payments and adjustments on the 835 payment date (BPR16);
A/R is the running balance of :func:`dashboard.warehouse.marts.int_ar_ledger` at each month end.

Aggregates read the marts of :mod:`dashboard.warehouse.semantic` (the sums each KPI is a ratio of, per
practice and month, refreshed by every load); the claim-level worklists (denied claims, remittances)
read the facts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard import paging
from dashboard.metrics import definitions as d
from dashboard.metrics._query import fetch, ratio
from dashboard.metrics.codes import carc_reason_column, carc_reason_sql, rarc_meaning_sql
from dashboard.metrics.filters import Filters, add_months, month_end
from dashboard.metrics.kpis import KPIS, PRACTICE_KPIS, with_kpis, with_monthly_kpis
from dashboard.warehouse import marts as m
from dashboard.warehouse import schema as s
from dashboard.warehouse import semantic as sem

KEY = ["practice_id", "month"]


def _between(column, start: dt.date, end: dt.date):
    return sa.and_(column >= start, column <= end)


def month_sums(conn: Connection, f: Filters, columns: Sequence[str], *, start: dt.date | None = None,
               where=None) -> pd.DataFrame:
    """The practice × month sums of ``mart_practice_month`` (see semantic.PRACTICE_MONTH_MEASURES) for the
    filters' practices and months (from ``start`` when given), ``where`` a predicate on the mart."""
    pm_ = sem.source(sem.mart_practice_month)
    q = (sa.select(pm_.c.practice_id, pm_.c.month, *[pm_.c[c] for c in columns])
         .where(m.within(pm_.c.practice_id, f.practice_ids), _between(pm_.c.month, start or f.start, f.end))
         .order_by(pm_.c.practice_id, pm_.c.month))
    if where is not None:
        q = q.where(where(pm_))
    return fetch(conn, q, [*KEY, *columns])


def charges(conn: Connection, f: Filters, *, start: dt.date | None = None) -> pd.DataFrame:
    """Gross charges = Σ claim charge amounts by month of the date of service; also the claim count.

    Source: MGMA (gross charges at full fee schedule)."""
    return month_sums(conn, f, ["claims", "charges"], start=start, where=lambda t: t.c.claims > 0)


def payments(conn: Connection, f: Filters) -> pd.DataFrame:
    """Payments = payer payments (Σ 835 CLP04 by payment date) + patient payments; refunds (negative
    patient payments) are reported apart as positive dollars in ``refunds``. Source: MGMA."""
    out = month_sums(conn, f, ["payer_payments", "patient_payments", "refunds"],
                     where=lambda t: sa.or_(t.c.payer_payments != 0, t.c.patient_payments != 0, t.c.refunds != 0))
    out["payments"] = out["payer_payments"] + out["patient_payments"]
    return out


def contractual_adjustments(conn: Connection, f: Filters) -> pd.DataFrame:
    """Contractual adjustments = Σ CO adjustments whose CARC is contractual (CO-45, CO-A2, ...), by
    payment month. Source: MGMA adjusted FFS collection; X12 CARC list."""
    return month_sums(conn, f, ["contractual_adjustments"], where=lambda t: t.c.contractual_adjustments != 0)


def ar_balance(conn: Connection, f: Filters) -> pd.DataFrame:
    """A/R at each month end = Σ over claims of each claim's ledger dated on or before it (charges − payer
    payments − contractual adjustments − patient payments + refunds − write-offs), split into insurance and
    patient after netting within the claim: a desk copay taken before the 835 lowers the claim's insurance
    A/R. A claim in credit is not A/R and offsets no other claim: ``credit_balances`` reports it apart.
    ``ar_over_90`` is the part from dates of service more than 90 days before the month end. Every month
    from the practice's first ledger month on has a row. Source: AAFP ("total receivables less credit
    balances"), MGMA."""
    return month_sums(conn, f, ["ar_balance", "ar_insurance", "ar_patient", "ar_over_90", "credit_balances"])


def ar_over_90_pct(conn: Connection, f: Filters, *, ar: pd.DataFrame | None = None) -> pd.DataFrame:
    """% A/R over 90 days = A/R from dates of service more than 90 days before the month end ÷ total
    A/R (credit balances excluded from both). Source: kpi-reference (vendor guidance, benchmark ~10–20%).
    ``ar``: an :func:`ar_balance` result for the same filters, to avoid computing it twice."""
    ar = (ar_balance(conn, f) if ar is None else ar).copy()
    ar["ar_over_90_pct"] = KPIS["ar_over_90_pct"].compute(ar)
    return ar[[*KEY, "ar_over_90", "ar_balance", "ar_over_90_pct"]]


def days_in_ar(conn: Connection, f: Filters, *, ar: pd.DataFrame | None = None) -> pd.DataFrame:
    """Days in A/R (gross) = A/R at month end (credit balances excluded) ÷ average daily gross charges of the
    3 months ending that month (Σ charges of the 3 months ÷ their days). Source: AAFP and MGMA, the
    gross-charges method (kpi-reference: "3-month rolling for internal use"). Not HFMA's MAP key "net days
    in A/R", which divides net A/R (after allowances) by average daily net patient service revenue.
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
    out["days_in_ar"] = KPIS["days_in_ar"].compute(out)
    return out


def ar_aging(conn: Connection, f: Filters) -> pd.DataFrame:
    """A/R aging at the end of the period: open balance per claim by age from the DATE OF SERVICE in
    buckets 0–30, 31–60, 61–90, 91–120, 120+ days, per payer; patient balances appear as payer
    'Patient'. Balances are netted within each claim; claims in credit are not A/R (see
    :func:`credit_balances`). Source: MGMA."""
    ar = sem.source(sem.mart_ar_month)
    q = (sa.select(ar.c.practice_id, ar.c.payer, ar.c.bucket, sa.func.sum(ar.c.open_claims), sa.func.sum(ar.c.balance))
         .where(m.within(ar.c.practice_id, f.practice_ids), ar.c.month == f.end)
         .group_by(ar.c.practice_id, ar.c.payer, ar.c.bucket)
         .having(sa.func.sum(ar.c.balance) != 0))
    out = fetch(conn, q, ["practice_id", "payer", "bucket", "open_claims", "balance"])
    out["open_claims"] = out["open_claims"].astype("int64")
    order = {name: i for i, (name, _, _) in enumerate(d.AGING_BUCKETS)}
    out["_order"] = out["bucket"].map(order)
    return out.sort_values(["practice_id", "payer", "_order"]).drop(columns="_order").reset_index(drop=True)


def patient_balances(conn: Connection, f: Filters) -> pd.DataFrame:
    """Patient A/R at the end of the period by age bucket (the 'Patient' rows of :func:`ar_aging`)."""
    aging = ar_aging(conn, f)
    return aging[aging["payer"] == "Patient"].drop(columns="payer").reset_index(drop=True)


def credit_balances(conn: Connection, f: Filters) -> pd.DataFrame:
    """Credit balances at the end of the period: each claim whose payments and adjustments exceed its charge
    (after netting its payer's and patient's balances), the party it is owed to (the payer, or 'Patient'),
    the amount and the month end since which it has been in credit without a break. These are refunds or
    corrections owed, never A/R. Source: AAFP (receivables less credit balances); kpi-reference (A/R net of
    credits)."""
    iv = sem.source(sem.mart_ar_interval)
    q = (sa.select(iv.c.practice_id, iv.c.claim_id, iv.c.payer, iv.c.service_date, iv.c.credit_since, -iv.c.balance)
         .where(m.within(iv.c.practice_id, f.practice_ids), iv.c.balance < 0, iv.c.from_month <= f.end,
                sa.or_(iv.c.to_month.is_(None), iv.c.to_month > f.end))
         .order_by(iv.c.practice_id, iv.c.credit_since, iv.c.claim_id, iv.c.payer))
    out = fetch(conn, q, ["practice_id", "claim_id", "owed_to", "service_date", "credit_since", "amount"])
    out["credit_since"] = [f"{v:%Y-%m}" if v is not None else None for v in out["credit_since"]]
    return out


def clean_claim_rate(conn: Connection, f: Filters) -> pd.DataFrame:
    """Clean-claim rate = claims accepted on the clearinghouse's first answer (277CA) ÷ claims with a
    first answer (accepted + rejected), by month of that answer. Source: HFMA MAP key CL-1."""
    out = month_sums(conn, f, ["acknowledged", "accepted"], where=lambda t: t.c.acknowledged > 0)
    out["clean_claim_rate"] = KPIS["clean_claim_rate"].compute(out)
    return out


_FIRST_ADJUDICATION_SUMS = ["adjudicated", "denied", "denied_in_full", "charges_adjudicated", "charges_denied",
                            "lines_adjudicated", "lines_denied", "resolved_first_pass"]


def _first_adjudications(conn: Connection, f: Filters) -> pd.DataFrame:
    return month_sums(conn, f, [*_FIRST_ADJUDICATION_SUMS, "rejected_first"], where=lambda t: t.c.adjudicated > 0)


_DENIAL_KPIS = ("denial_rate", "full_denial_rate", "line_denial_rate", "denial_rate_dollars")


def denial_rate(conn: Connection, f: Filters) -> pd.DataFrame:
    """Initial denial rates, by month of the first 835 (a claim's first adjudication):

    * claims: claims with any denial ÷ claims first adjudicated. Denied in full: CLP02 = 4, or nothing paid
      with a denial adjustment; in part: a denial adjustment on a paid claim, at claim level or on a service
      line (CO-45, PR-1/2/3 and OA-23 are not denials). ``full_denial_rate`` counts the first kind only.
    * service lines: lines denied (a line with a denial CAS, or every line of a claim denied in full) ÷ lines
      adjudicated (the 835's SVC lines; an 835 without them adjudicates the claim's billed lines).
    * dollars: denied dollars (a claim denied in full: its charge; in part: its denial CAS amounts) ÷ charges
      adjudicated.

    Source: HFMA claim-integrity task force (2020), MAP key "initial denial rate" (claims remitted); AAFP
    (denial rate in dollars); kpi-reference: read the CAS segments, not CLP02 alone."""
    out = with_kpis(_first_adjudications(conn, f), tuple(KPIS[k] for k in _DENIAL_KPIS))
    return out[[*KEY, "adjudicated", "denied", "denied_in_full", "denial_rate", "full_denial_rate",
                "lines_adjudicated", "lines_denied", "line_denial_rate", "charges_adjudicated", "charges_denied",
                "denial_rate_dollars"]]


def first_pass_resolution_rate(conn: Connection, f: Filters) -> pd.DataFrame:
    """First-pass resolution = claims resolved on first submission (accepted by the clearinghouse on its
    first answer, and paid or moved to patient responsibility on the first adjudication with nothing denied,
    in full or on a service line) ÷ claims first adjudicated in the month. Source: industry practice
    (kpi-reference, target ≥ 90%)."""
    out = _first_adjudications(conn, f)
    out["first_pass_resolution_rate"] = KPIS["first_pass_resolution_rate"].compute(out)
    return out[[*KEY, "adjudicated", "resolved_first_pass", "first_pass_resolution_rate"]]


_MONEY_FLOW = ["charges", "payer_payments", "patient_payments", "refunds", "contractual_adjustments"]


def _trailing_start(f: Filters) -> dt.date:
    """The first month the monthly series reads: its trailing windows reach back before ``f.start``."""
    return add_months(f.start, -(max(k.trailing_months for k in PRACTICE_KPIS) - 1))


def collection_rates(conn: Connection, f: Filters) -> pd.DataFrame:
    """Net collection rate = Σ(payments − refunds) ÷ Σ(charges − contractual adjustments); gross collection
    rate = Σ(payments − refunds) ÷ Σ charges (both net of patient refunds). Payments trail their charges by
    a month or two, so a month's rates are over the trailing 3 months ending with it (the registry's
    ``trailing_months``); the money columns are the month's own. Source: MGMA "adjusted FFS collection %"
    (net), MGMA gross collection rate."""
    out = month_sums(conn, f, _MONEY_FLOW, start=_trailing_start(f), where=lambda t: sa.or_(
        t.c.claims > 0, t.c.payer_payments != 0, t.c.patient_payments != 0, t.c.refunds != 0,
        t.c.contractual_adjustments != 0))
    out = with_monthly_kpis(out, (KPIS["net_collection_rate"], KPIS["gross_collection_rate"]))
    return out[out["month"] >= f.start].reset_index(drop=True)


def net_collection_rate(conn: Connection, f: Filters) -> pd.DataFrame:
    """Net collection rate (trailing 3 months), see :func:`collection_rates`. Source: MGMA."""
    return collection_rates(conn, f)[[*KEY, "payments", "refunds", "charges", "contractual_adjustments",
                                      "net_collection_rate"]]


def gross_collection_rate(conn: Connection, f: Filters) -> pd.DataFrame:
    """Gross collection rate (net of refunds, trailing 3 months), see :func:`collection_rates`. Source: MGMA."""
    return collection_rates(conn, f)[[*KEY, "payments", "refunds", "charges", "gross_collection_rate"]]


def days_to_payment(conn: Connection, f: Filters) -> pd.DataFrame:
    """Average days to payment = mean of (first 835 payment date (BPR16) − first 837 submission date)
    over claims first paid in the month (paid amount > 0). Source: kpi-reference."""
    out = month_sums(conn, f, ["claims_paid", "days_to_payment_total"], where=lambda t: t.c.claims_paid > 0)
    out["average_days_to_payment"] = KPIS["average_days_to_payment"].compute(out)
    return out.drop(columns="days_to_payment_total")


def adjustments(conn: Connection, f: Filters, *, denials_only: bool = False) -> pd.DataFrame:
    """Every CAS adjustment summed by payment month, payer, group code and CARC, with the number of
    distinct claims; ``denials_only`` keeps the denial category (not contractual, not PR-1/2/3, not
    OA-23); ``reason`` groups the CARC (dashboard.metrics.codes). Source: X12 835 CAS; CARC list."""
    a = sem.source(sem.mart_adjustment_month)
    q = (
        sa.select(a.c.practice_id, a.c.month, a.c.payer, a.c.group_code, a.c.carc, a.c.category,
                  sa.func.sum(a.c.claims), sa.func.sum(a.c.amount))
        .where(m.within(a.c.practice_id, f.practice_ids), _between(a.c.month, f.start, f.end))
        .group_by(a.c.practice_id, a.c.month, a.c.payer, a.c.group_code, a.c.carc, a.c.category)
        .order_by(a.c.practice_id, a.c.month, a.c.payer, a.c.group_code, a.c.carc)
    )
    if denials_only:
        q = q.where(a.c.category == "denial")
    out = fetch(conn, q, [*KEY, "payer", "group_code", "carc", "category", "claims", "amount"])
    out.insert(out.columns.get_loc("carc") + 1, "reason", carc_reason_column(out["carc"]))
    return out


def denials(conn: Connection, f: Filters) -> pd.DataFrame:
    """Denial adjustments by month, payer, group and CARC (see :func:`adjustments`)."""
    return adjustments(conn, f, denials_only=True)


def denied_claims(conn: Connection, f: Filters) -> pd.DataFrame:
    """The denial worklist: each denial adjustment (CAS in the denial category) of a remittance paid in
    the period, at claim level (line 0) or on a service line with its procedure code, the claim's CLP02
    status, and the remark codes (LQ on the line, MOA/MIA on the claim) that explain it; ``matched``
    says whether CLP01 names a claim in medical_claim. Source: X12 835 CAS, SVC, LQ; CARC/RARC lists.
    Read from ``mart_denial_line`` (one row per denial adjustment)."""
    base = denied_claims_rows(f)
    q = sa.select(*[base.c[c] for c in DENIED_CLAIMS_PAGED]).order_by(*[base.c[c] for c in DENIED_CLAIMS_ORDER])
    return _denial_rows(fetch(conn, q, list(DENIED_CLAIMS_PAGED)))


def _denial_rows(out: pd.DataFrame) -> pd.DataFrame:
    out["line_number"] = out["line_number"].astype("int64")
    out["matched"] = out["matched"].astype(bool)
    return out


def payer_mix(conn: Connection, f: Filters) -> pd.DataFrame:
    """Share of gross charges by payer over the period (dates of service in range). Source: MGMA."""
    pmo = sem.source(sem.mart_payer_month)
    q = (
        sa.select(pmo.c.practice_id, pmo.c.payer, sa.func.sum(pmo.c.claims), sa.func.sum(pmo.c.charges))
        .where(m.within(pmo.c.practice_id, f.practice_ids), _between(pmo.c.month, f.start, f.end))
        .group_by(pmo.c.practice_id, pmo.c.payer)
        .order_by(pmo.c.practice_id, pmo.c.payer)
    )
    out = fetch(conn, q, ["practice_id", "payer", "claims", "charges"])
    out["share_of_charges"] = ratio(out["charges"], out.groupby("practice_id")["charges"].transform("sum"))
    return out


def remittances(conn: Connection, f: Filters) -> pd.DataFrame:
    """835 payments (BPR/TRN) in the period: trace number, payer, payment date, method, amount and the
    number of claims (CLP) in each; ``unmatched_claims`` counts CLPs whose CLP01 matches no claim; the cash
    reconciliation Σ CLP04 (``claim_payments``), Σ PLB (``provider_adjustments``) and ``difference`` =
    BPR02 − (Σ CLP04 − Σ PLB), 0.00 for a balanced 835. Read from ``mart_remittance`` (one row per payment)."""
    base = remittances_rows(f)
    q = sa.select(*[base.c[c] for c in REMITTANCES_PAGED]).order_by(*[base.c[c] for c in REMITTANCES_ORDER])
    return fetch(conn, q, list(REMITTANCES_PAGED))


def eligibility_checks(conn: Connection, f: Filters) -> pd.DataFrame:
    """270/271 eligibility checks by month of service: verified (active or inactive answer), pending
    (no 271 yet) and errors; insurance verification rate = verified ÷ checks. Source: HFMA MAP key."""
    out = month_sums(conn, f, ["checks", "verified", "pending", "inactive", "errors"], where=lambda t: t.c.checks > 0)
    out["verification_rate"] = KPIS["verification_rate"].compute(out)
    return out


PORTAL_FEE_RATE = 0.005
PORTAL_FEE_CAP = 2000.0


def payment_channel_fees(conn: Connection, f: Filters) -> pd.DataFrame:
    """Payment-channel fee = 0.5% of each payer payment received through a premium payment portal,
    capped at $2,000 per billing cycle (calendar month) per TIN; basic access is free. A practice's own terms
    (payment_channel_fee: rate and cap, no cap when none) replace the published ones, and count whether or not
    the practice is marked premium. Source: Optum Pay published terms (2021)."""
    out = month_sums(conn, f, ["eft_payments"], where=lambda t: t.c.eft_remittances > 0)
    premium = set(conn.execute(sa.select(s.practice.c.practice_id).where(s.practice.c.premium_payment_portal))
                  .scalars())
    terms = {pid: (float(rate), None if cap is None else float(cap)) for pid, rate, cap in conn.execute(
        sa.select(s.payment_channel_fee.c.practice_id, s.payment_channel_fee.c.rate,
                  s.payment_channel_fee.c.monthly_cap))}
    published = (PORTAL_FEE_RATE, PORTAL_FEE_CAP)
    rate_cap = [terms.get(pid, published if pid in premium else (0.0, None)) for pid in out["practice_id"]]
    def cents(eft: float, rate: float, cap: float | None) -> float:
        # in decimal, half up: 1% of $352.50 is $3.53 (binary floats and round() would say $3.52)
        amount = Decimal(str(eft)) * Decimal(str(rate))
        if cap is not None:
            amount = min(amount, Decimal(str(cap)))
        return float(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))

    fee = [cents(eft, rate, cap)
           for eft, (rate, cap) in zip(pd.to_numeric(out["eft_payments"]).astype(float), rate_cap, strict=True)]
    out["fee_rate"] = [rate for rate, _ in rate_cap]
    out["fee_cap"] = [cap for _, cap in rate_cap]
    out["fee"] = fee
    return out


_PERIOD_SUMS = [*_MONEY_FLOW, "acknowledged", "accepted", *_FIRST_ADJUDICATION_SUMS, "claims_paid",
                "days_to_payment_total", "checks", "verified", "appeals", "appeals_overturned", "claims_submitted",
                "charge_lag_total", "pos_payments", "denial_write_offs", "bad_debt",
                "provider_adjustments"]  # 835 PLB: payer_cash (the registry's DERIVED) is made from it
_AT_MONTH_END = ["ar_balance", "ar_over_90", "credit_balances"]


def practice_kpis(conn: Connection, f: Filters) -> pd.DataFrame:
    """Every practice KPI of the registry (:mod:`dashboard.metrics.kpis`) per practice and month, with the
    money it is computed from: one row for each month with activity or A/R. A KPI with a trailing window
    (the collection rates) is over the months ending with the row's."""
    sums = month_sums(conn, f, [*_PERIOD_SUMS, *_AT_MONTH_END], start=_trailing_start(f))
    in_period = sums[sums["month"] >= f.start]
    daily = days_in_ar(conn, f, ar=in_period[[*KEY, "ar_balance"]])[[*KEY, "average_daily_charges"]]
    out = with_monthly_kpis(sums.merge(daily, on=KEY, how="left"))
    return out[out["month"] >= f.start].reset_index(drop=True)


def practice_summary(conn: Connection, f: Filters) -> pd.DataFrame:
    """The period's KPIs per practice, plus a combined row (practice_id 'all') when several practices
    are selected. Each rate is Σ numerator ÷ Σ denominator over the period (not a mean of monthly
    rates); A/R, days in A/R and % over 90 are at the end of the last month (the registry's
    ``at_period_end`` KPIs)."""
    sums = month_sums(conn, f, _PERIOD_SUMS)
    last = Filters(start=f.end, end=f.end, practice_ids=f.practice_ids)
    ar = ar_balance(conn, last)
    end = days_in_ar(conn, last, ar=ar).merge(ar[["practice_id", "ar_over_90", "credit_balances"]],
                                              on="practice_id", how="outer")
    end = end[["practice_id", "ar_balance", "average_daily_charges", "ar_over_90", "credit_balances"]]
    # A practice with no rows in one of the two yields an empty frame of untyped columns: cast before
    # summing so an empty source is zeros, not missing columns.
    parts = [frame.set_index("practice_id").drop(columns=["month"], errors="ignore").astype(float)
             .groupby(level=0).sum() for frame in (sums, end)]
    out = pd.concat(parts, axis=1).fillna(0.0)
    out.index.name = "practice_id"
    if len(out) > 1:
        out.loc["all"] = out.sum()
    return with_kpis(out.reset_index(names="practice_id"), PRACTICE_KPIS)


# --- claim-level reports, one page at a time (ORDER BY … LIMIT … OFFSET in the warehouse) -----------------
# The pages grids show: the same rows as denied_claims / remittances above, sorted, filtered and cut in SQL
# so that a 200k-claim practice never ships (or even fetches) every claim. tests/test_pages.py holds each page
# to the full report.

def denied_claims_rows(f: Filters) -> sa.Subquery:
    """The worklist's rows in the scope and period (unordered): what its pages and its CSV read."""
    dl = sem.source(sem.mart_denial_line)
    return (sa.select(dl, carc_reason_sql(dl.c.carc).label("carc_reason"))
            .where(m.within(dl.c.practice_id, f.practice_ids), _between(dl.c.payment_date, f.start, f.end_date))
            .subquery("denied"))


DENIED_CLAIMS_PAGED = ("practice_id", "claim_id", "payer", "payment_date", "claim_status", "claim_charge",
                       "claim_paid", "line_number", "procedure_code", "group_code", "carc", "carc_reason", "amount",
                       "matched", "remark_codes")
# the worklist's own order; (practice, claim payment, line, adjustment) identifies a row, so pages are exact
DENIED_CLAIMS_ORDER = ("practice_id", "payment_date", "claim_id", "claim_payment_id", "line_number", "group_code",
                       "carc", "adjustment_seq")


def _page(conn: Connection, base: sa.Subquery, names: Sequence[str], default_order: Sequence[str],
          sort: Sequence[paging.Sort], filters: Sequence[paging.ColumnFilter], offset: int, limit: int,
          hidden: Sequence[str] = (), unique: bool = False,
          descending: Sequence[str] = ()) -> tuple[pd.DataFrame, int]:
    """``unique``: the default order identifies a row, so it alone breaks ties (fewer sort keys);
    ``descending``: columns of the default order that rank high first (a worklist's ranking)."""
    columns = {name: base.c[name] for name in names}
    where = paging.sql_where(columns, filters)
    offset, limit = paging.clamp(offset, limit)
    total = conn.execute(sa.select(sa.func.count()).select_from(base).where(*where)).scalar_one()
    # The default order first, then every other column: ties are then only between identical rows.
    ties = [*default_order, *([] if unique else [n for n in [*names, *hidden] if n not in default_order])]
    order = paging.sql_order(columns, sort, [(base.c[n].desc() if n in descending else base.c[n].asc()).nulls_last()
                                             for n in ties])
    q = sa.select(*[base.c[n] for n in [*names, *hidden]]).where(*where).order_by(*order).offset(offset).limit(limit)
    return fetch(conn, q, [*names, *hidden]), int(total)


def denied_claims_page(conn: Connection, f: Filters, *, sort: Sequence[paging.Sort] = (),
                       filters: Sequence[paging.ColumnFilter] = (), offset: int = 0,
                       limit: int = paging.MAX_ROWS) -> tuple[pd.DataFrame, int]:
    """One page of :func:`denied_claims` (same rows and columns) and the number of matching rows."""
    out, total = _page(conn, denied_claims_rows(f), DENIED_CLAIMS_PAGED, DENIED_CLAIMS_ORDER, sort, filters,
                       offset, limit, hidden=("claim_payment_id", "adjustment_seq"), unique=True)
    return _denial_rows(out.drop(columns=["claim_payment_id", "adjustment_seq"])), total


def remittances_rows(f: Filters) -> sa.Subquery:
    """The remittances in the scope and period (unordered): what their pages and their CSV read."""
    rm = sem.source(sem.mart_remittance)
    return (sa.select(rm.c.practice_id, rm.c.trace_number, rm.c.payer, rm.c.payment_date, rm.c.method, rm.c.amount,
                      rm.c.claims, rm.c.unmatched_claims, rm.c.claim_payments, rm.c.provider_adjustments,
                      rm.c.difference, rm.c.remittance_id)
            .where(m.within(rm.c.practice_id, f.practice_ids), _between(rm.c.payment_date, f.start, f.end_date))
            .subquery("remits"))


REMITTANCES_PAGED = ("practice_id", "trace_number", "payer", "payment_date", "method", "amount", "claims",
                     "unmatched_claims", "claim_payments", "provider_adjustments", "difference")
REMITTANCES_ORDER = ("practice_id", "payment_date", "trace_number", "remittance_id")


def remittances_page(conn: Connection, f: Filters, *, sort: Sequence[paging.Sort] = (),
                     filters: Sequence[paging.ColumnFilter] = (), offset: int = 0,
                     limit: int = paging.MAX_ROWS) -> tuple[pd.DataFrame, int]:
    """One page of :func:`remittances` (same rows and columns) and the number of matching rows."""
    out, total = _page(conn, remittances_rows(f), REMITTANCES_PAGED, REMITTANCES_ORDER, sort, filters, offset, limit,
                       hidden=("remittance_id",), unique=True)
    return out.drop(columns="remittance_id"), total


def open_claims_rows(f: Filters) -> sa.Subquery:
    """The claims behind A/R at the end of the period (unordered): each claim and party (its payer, or
    'Patient') with a balance owed at that month end, netted within the claim as A/R is, its age from the date
    of service and its aging bucket. Summed by payer and bucket these are :func:`ar_aging`'s cells."""
    iv = sem.source(sem.mart_ar_interval)
    age = sa.literal(f.end_date, sa.Date) - iv.c.service_date
    return (sa.select(iv.c.practice_id, iv.c.claim_id, iv.c.payer, iv.c.service_date, age.label("age_days"),
                      sem.aging_bucket(age).label("bucket"), iv.c.balance)
            .where(m.within(iv.c.practice_id, f.practice_ids), iv.c.balance > 0, iv.c.from_month <= f.end,
                   sa.or_(iv.c.to_month.is_(None), iv.c.to_month > f.end))
            .subquery("open_claims"))


OPEN_CLAIMS_PAGED = ("practice_id", "claim_id", "payer", "service_date", "age_days", "bucket", "balance")
# oldest first, as A/R is worked; (practice, claim, party) identifies a row at a month end
OPEN_CLAIMS_ORDER = ("practice_id", "service_date", "claim_id", "payer")


def open_claims(conn: Connection, f: Filters) -> pd.DataFrame:
    """Every row of :func:`open_claims_rows` in the report's order. Source: MGMA (A/R by age from the date of
    service)."""
    base = open_claims_rows(f)
    q = sa.select(*[base.c[c] for c in OPEN_CLAIMS_PAGED]).order_by(*[base.c[c] for c in OPEN_CLAIMS_ORDER])
    return _open_claim_frame(fetch(conn, q, list(OPEN_CLAIMS_PAGED)))


def _open_claim_frame(out: pd.DataFrame) -> pd.DataFrame:
    out["age_days"] = out["age_days"].astype("int64")
    return out


def open_claims_page(conn: Connection, f: Filters, *, sort: Sequence[paging.Sort] = (),
                     filters: Sequence[paging.ColumnFilter] = (), offset: int = 0,
                     limit: int = paging.MAX_ROWS) -> tuple[pd.DataFrame, int]:
    """One page of :func:`open_claims` (same rows and columns) and the number of matching rows."""
    out, total = _page(conn, open_claims_rows(f), OPEN_CLAIMS_PAGED, OPEN_CLAIMS_ORDER, sort, filters, offset,
                       limit, unique=True)
    return _open_claim_frame(out), total


# --- worklists: where each claim stands now (mart_claim), ranked for action -----------------------------------
# Worklists show the warehouse as it stands (its latest 835s, appeals and balances); the period's last day is the
# day their clocks count to (the as-of month's end by default).

def _rules(claims: sa.FromClause) -> tuple[sa.FromClause, sa.ColumnElement, sa.ColumnElement]:
    """``claims`` joined to its payers' types and contract terms: (from clause, appeal days, follow-up days)."""
    payer, rule = s.payer, s.payer_rule
    joined = (claims.outerjoin(payer, payer.c.payer_id == claims.c.payer)
              .outerjoin(rule, rule.c.payer_id == claims.c.payer))
    return (joined, d.payer_days("appeal_days", rule.c.appeal_days, payer.c.payer_type),
            d.payer_days("follow_up_days", rule.c.follow_up_days, payer.c.payer_type))


def ar_follow_up_rows(f: Filters) -> sa.Subquery:
    """Claims sent (837) that no payer has answered (no 835) for at least the payer's follow-up days, counted to
    the end of the period, with what the payer owes on them."""
    c = sem.source(sem.mart_claim)
    joined, _, follow_up = _rules(c)
    waiting = sa.literal(f.end_date, sa.Date) - c.c.submitted_date
    return (sa.select(c.c.practice_id, c.c.claim_id, c.c.payer, c.c.service_date, c.c.submitted_date,
                      waiting.label("days_waiting"), follow_up.label("follow_up_after_days"),
                      c.c.charge_amount.label("charge"), c.c.payer_balance.label("balance"))
            .select_from(joined)
            .where(m.within(c.c.practice_id, f.practice_ids), c.c.adjudications == 0,
                   c.c.submitted_date <= f.end_date, c.c.payer_balance > 0, waiting >= follow_up)
            .subquery("follow_up"))


AR_FOLLOW_UP_PAGED = ("practice_id", "claim_id", "payer", "service_date", "submitted_date", "days_waiting",
                      "follow_up_after_days", "charge", "balance")
# oldest first, then largest (a claim is one row)
AR_FOLLOW_UP_ORDER = ("practice_id", "submitted_date", "balance", "claim_id")


def denial_worklist_rows(f: Filters) -> sa.Subquery:
    """Claims whose latest 835 denied them in full or in part and on which the payer still owes: the dollars
    recoverable (what is owed, up to what was denied), the appeal deadline (the denial's 835 date + the payer's
    appeal days) and the days left to it at the end of the period, the denial codes with the largest one's reason
    and the first remark code's meaning; ``appeal_status`` open, appealed (an appeal since the denial) or expired."""
    c = sem.source(sem.mart_claim)
    joined, appeal_days, _ = _rules(c)
    days_left = (c.c.last_adjudicated_date - sa.literal(f.end_date, sa.Date)) + appeal_days
    appealed = c.c.appealed_date >= c.c.last_adjudicated_date
    first_remark = sa.func.split_part(c.c.remark_codes, ",", 1)
    return (sa.select(c.c.practice_id, c.c.claim_id, c.c.payer, c.c.service_date,
                      c.c.last_adjudicated_date.label("denied_on"), c.c.last_outcome.label("outcome"),
                      c.c.denial_codes, carc_reason_sql(c.c.top_carc).label("reason"), c.c.remark_codes,
                      sa.case((c.c.remark_codes.is_(None), None), else_=rarc_meaning_sql(first_remark))
                      .label("remark"),
                      c.c.last_denied_amount.label("denied_amount"),
                      sa.func.least(c.c.payer_balance, c.c.last_denied_amount).label("recoverable"),
                      (c.c.last_adjudicated_date + appeal_days).label("appeal_by"), days_left.label("days_left"),
                      sa.case((appealed, "appealed"), (days_left < 0, "expired"), else_="open").label("appeal_status"),
                      sa.case((appealed, 1), (days_left < 0, 2), else_=0).label("status_rank"))
            .select_from(joined)
            .where(m.within(c.c.practice_id, f.practice_ids), c.c.last_outcome.in_(("denied", "partially paid")),
                   c.c.payer_balance > 0, c.c.last_adjudicated_date <= f.end_date)
            .subquery("denial_worklist"))


DENIAL_WORKLIST_PAGED = ("practice_id", "claim_id", "payer", "service_date", "denied_on", "outcome", "denial_codes",
                         "reason", "remark_codes", "remark", "denied_amount", "recoverable", "appeal_by", "days_left",
                         "appeal_status")
# open appeals first, the most recoverable first, then the nearest deadline; appealed ones next, expired last
DENIAL_WORKLIST_ORDER = ("practice_id", "status_rank", "recoverable", "days_left", "claim_id")
DENIAL_WORKLIST_DESCENDING = ("recoverable",)


def _worklist(rows: Callable[[Filters], sa.Subquery], names: Sequence[str], order: Sequence[str],
              descending: Sequence[str] = ()) -> tuple[Callable, Callable]:
    """A worklist's whole frame and its page, from its rows: ordered by ``order``, ``descending`` columns high
    first (the worklist's ranking), ties broken by the rest of ``order``."""

    def sorted_rows(f: Filters) -> sa.Select:
        base = rows(f)
        return sa.select(*[base.c[n] for n in names]).order_by(
            *[(base.c[n].desc() if n in descending else base.c[n].asc()).nulls_last() for n in order])

    def frame(conn: Connection, f: Filters) -> pd.DataFrame:
        return _int_columns(fetch(conn, sorted_rows(f), list(names)))

    def page(conn: Connection, f: Filters, *, sort: Sequence[paging.Sort] = (),
             filters: Sequence[paging.ColumnFilter] = (), offset: int = 0,
             limit: int = paging.MAX_ROWS) -> tuple[pd.DataFrame, int]:
        # the ranking is the default order: a user's sort comes first, the ranking breaks its ties
        out, total = _page(conn, rows(f), names, order, sort, filters, offset, limit,
                           hidden=tuple(n for n in order if n not in names), unique=True, descending=descending)
        return _int_columns(out[list(names)]), total

    return frame, page


def _int_columns(out: pd.DataFrame) -> pd.DataFrame:
    for col in ("days_waiting", "follow_up_after_days", "days_left", "days_to_visit"):
        if col in out.columns:
            out[col] = pd.to_numeric(out[col]).astype("Int64")
    return out


ar_follow_up, ar_follow_up_page = _worklist(ar_follow_up_rows, AR_FOLLOW_UP_PAGED, AR_FOLLOW_UP_ORDER)
denial_worklist, denial_worklist_page = _worklist(denial_worklist_rows, DENIAL_WORKLIST_PAGED, DENIAL_WORKLIST_ORDER,
                                                  descending=DENIAL_WORKLIST_DESCENDING)


DUE_SOON_DAYS = 14  # an appeal window closing within two weeks is this week's work
WORKLISTS = ("denial-worklist", "ar-follow-up", "unmatched-payments", "eligibility-pending", "patient-balances")


def worklist_summary(conn: Connection, f: Filters) -> pd.DataFrame:
    """Per practice and worklist: the rows on it and their dollars (denials: recoverable; follow-up: owed by
    the payer; unmatched payments: the money not matching; patient balances: owed by patients; eligibility:
    visits, no dollars) and how many are due soon (an open appeal window closing within DUE_SOON_DAYS; a
    follow-up twice its payer's days overdue; a payment for no claim on the books; a visit within 7 days; a
    patient balance over 90 days)."""
    den, fol, pat = denial_worklist_rows(f), ar_follow_up_rows(f), open_claims_rows(f)
    unm, eli = unmatched_payments_rows(f), eligibility_pending_rows(f)
    parts = [
        sa.select(den.c.practice_id, sa.literal("denial-worklist").label("worklist"), sa.func.count(),
                  sa.func.sum(den.c.recoverable),
                  sa.func.sum(sa.case((sa.and_(den.c.appeal_status == "open", den.c.days_left <= DUE_SOON_DAYS), 1),
                                      else_=0)))
        .group_by(den.c.practice_id),
        sa.select(fol.c.practice_id, sa.literal("ar-follow-up"), sa.func.count(), sa.func.sum(fol.c.balance),
                  sa.func.sum(sa.case((fol.c.days_waiting >= 2 * fol.c.follow_up_after_days, 1), else_=0)))
        .group_by(fol.c.practice_id),
        sa.select(pat.c.practice_id, sa.literal("patient-balances"), sa.func.count(), sa.func.sum(pat.c.balance),
                  sa.func.sum(sa.case((pat.c.age_days > 90, 1), else_=0)))
        .where(pat.c.payer == "Patient").group_by(pat.c.practice_id),
        # money not matching the books: an unmatched payment's amount, a claim's over- or underpayment
        sa.select(unm.c.practice_id, sa.literal("unmatched-payments"), sa.func.count(),
                  sa.func.sum(sa.func.abs(sa.func.coalesce(unm.c.difference, unm.c.paid))),
                  sa.func.sum(sa.case((unm.c.issue == "no such claim", 1), else_=0)))
        .group_by(unm.c.practice_id),
        # visits, not claims; no dollars; due: a visit within the week ahead
        sa.select(eli.c.practice_id, sa.literal("eligibility-pending"), sa.func.count(), sa.null(),
                  sa.func.sum(sa.case((eli.c.days_to_visit.between(0, 7), 1), else_=0)))
        .group_by(eli.c.practice_id),
    ]
    out = fetch(conn, sa.union_all(*parts), ["practice_id", "worklist", "claims", "amount", "due_soon"])
    for col in ("claims", "due_soon"):
        out[col] = pd.to_numeric(out[col]).fillna(0).astype("int64")
    order = {name: i for i, name in enumerate(WORKLISTS)}
    return (out.assign(_o=out["worklist"].map(order)).sort_values(["practice_id", "_o"]).drop(columns="_o")
            .reset_index(drop=True))


def unmatched_payments_rows(f: Filters) -> sa.Subquery:
    """835 money that does not match the books, paid in the period: claim payments whose CLP01 names no claim of
    the practice ("no such claim"), and claims whose latest 835 paid them without a denial but whose total paid
    (Σ CLP04) differs from what the claim record expects ("underpaid" / "overpaid", the difference signed)."""
    um, c = sem.source(sem.mart_unmatched_payment), sem.source(sem.mart_claim)
    unmatched = (sa.select(um.c.practice_id, sa.literal("no such claim").label("issue"), um.c.claim_id,
                           um.c.payer_claim_number, um.c.trace_number, um.c.payer, um.c.payment_date, um.c.paid,
                           sa.null().label("expected"), sa.null().label("difference"),
                           um.c.claim_payment_id.label("row_key"))
                 .where(m.within(um.c.practice_id, f.practice_ids), _between(um.c.payment_date, f.start, f.end_date)))
    difference = c.c.payer_paid - c.c.expected_paid
    differs = (sa.select(c.c.practice_id, sa.case((difference < 0, "underpaid"), else_="overpaid"), c.c.claim_id,
                         sa.null(), c.c.last_trace_number, c.c.payer, c.c.last_adjudicated_date, c.c.payer_paid,
                         c.c.expected_paid, difference, c.c.claim_id)
               .where(m.within(c.c.practice_id, f.practice_ids), c.c.last_outcome == "paid",
                      c.c.expected_paid.is_not(None), difference != 0,
                      _between(c.c.last_adjudicated_date, f.start, f.end_date)))
    return sa.union_all(unmatched, differs).subquery("unmatched_payments")


UNMATCHED_PAYMENTS_PAGED = ("practice_id", "issue", "claim_id", "payer_claim_number", "trace_number", "payer",
                            "payment_date", "paid", "expected", "difference")
UNMATCHED_PAYMENTS_ORDER = ("practice_id", "payment_date", "trace_number", "claim_id", "issue", "row_key")
unmatched_payments, unmatched_payments_page = _worklist(unmatched_payments_rows, UNMATCHED_PAYMENTS_PAGED,
                                                        UNMATCHED_PAYMENTS_ORDER)


ELIGIBILITY_WINDOW_DAYS = 30  # visits this many days either side of the period's end: upcoming or recent
ELIGIBILITY_STATUS = {"pending": "no answer yet", "error": "check failed", "inactive": "coverage inactive"}


def eligibility_pending_rows(f: Filters) -> sa.Subquery:
    """Visits within ELIGIBILITY_WINDOW_DAYS of the period's end whose latest 270/271 check has no answer yet,
    failed, or found the coverage inactive: each with the days to the visit (negative: past) and the check."""
    ec = s.eligibility_check
    who = sa.func.coalesce(ec.c.person_id, ec.c.member_id)
    latest = sa.func.row_number().over(partition_by=(ec.c.practice_id, who, ec.c.payer_id, ec.c.service_date),
                                       order_by=(ec.c.requested_at.desc(), ec.c.check_id.desc()))
    end = sa.literal(f.end_date, sa.Date)
    checks = (sa.select(ec, latest.label("latest"))
              .where(m.within(ec.c.practice_id, f.practice_ids),
                     ec.c.service_date.between(f.end_date - dt.timedelta(days=ELIGIBILITY_WINDOW_DAYS),
                                               f.end_date + dt.timedelta(days=ELIGIBILITY_WINDOW_DAYS)))
              .subquery("checks"))
    return (sa.select(checks.c.practice_id, checks.c.person_id, checks.c.member_id, checks.c.payer_id.label("payer"),
                      checks.c.service_date, (checks.c.service_date - end).label("days_to_visit"),
                      sa.case(ELIGIBILITY_STATUS, value=checks.c.status).label("status"), checks.c.requested_at,
                      checks.c.trace_number, checks.c.check_id)
            .where(checks.c.latest == 1, checks.c.status.in_(tuple(ELIGIBILITY_STATUS)))
            .subquery("eligibility_pending"))


ELIGIBILITY_PENDING_PAGED = ("practice_id", "person_id", "member_id", "payer", "service_date", "days_to_visit",
                             "status", "requested_at", "trace_number")
# the soonest visit first (upcoming ones, then the most recent past ones)
ELIGIBILITY_PENDING_ORDER = ("practice_id", "service_date", "check_id")
eligibility_pending, eligibility_pending_page = _worklist(eligibility_pending_rows, ELIGIBILITY_PENDING_PAGED,
                                                          ELIGIBILITY_PENDING_ORDER)


LIFECYCLE_STAGES = ("submitted", "accepted", "adjudicated", "paid", "denied", "appealed", "overturned")
LIFECYCLE_DAYS = ("charge_lag_days", "days_to_acceptance", "days_to_adjudication", "days_to_payment")


def claim_lifecycle(conn: Connection, f: Filters) -> pd.DataFrame:
    """The period's claims (first sent, 837, in the period) by practice and payer through their lifecycle, as
    they stand now: submitted; accepted by the clearinghouse (277CA, at any try); adjudicated (an 835); paid
    (something paid); denied (the first 835 denied them, in full or in part); appealed; overturned (paid on or
    after the first appeal). And the median days of each stage: charge lag (service → 837), to acceptance
    (837 → 277CA accepted), to adjudication (837 → first 835), to payment (837 → first 835 paying). Source:
    HFMA MAP keys (clean claim, denial, days to payment); MGMA (charge lag)."""
    c = sem.source(sem.mart_claim)

    def median(later: sa.ColumnElement, earlier: sa.ColumnElement) -> sa.ColumnElement:
        return sa.func.percentile_cont(0.5).within_group(later - earlier)

    def count(condition: sa.ColumnElement) -> sa.ColumnElement:
        return sa.func.sum(sa.case((condition, 1), else_=0))

    q = (sa.select(c.c.practice_id, c.c.payer, sa.func.count(), count(c.c.accepted_date.is_not(None)),
                   count(c.c.adjudications > 0), count(c.c.payer_paid > 0), count(c.c.first_denied == 1),
                   count(c.c.appealed_date.is_not(None)), count(c.c.overturned == 1),
                   median(c.c.submitted_date, c.c.service_date), median(c.c.accepted_date, c.c.submitted_date),
                   median(c.c.first_adjudicated_date, c.c.submitted_date),
                   median(c.c.first_paid_date, c.c.submitted_date))
         .where(m.within(c.c.practice_id, f.practice_ids), _between(c.c.submitted_date, f.start, f.end_date))
         .group_by(c.c.practice_id, c.c.payer).order_by(c.c.practice_id, c.c.payer))
    out = fetch(conn, q, ["practice_id", "payer", *LIFECYCLE_STAGES, *LIFECYCLE_DAYS])
    for col in LIFECYCLE_STAGES:
        out[col] = pd.to_numeric(out[col]).astype("int64")
    for col in LIFECYCLE_DAYS:
        out[col] = pd.to_numeric(out[col]).astype(float)
    return out


# 835 BPR04, how the payer paid, in words (BOP is how some payers send virtual-card payments)
PAYMENT_METHODS = {"ACH": "EFT (ACH)", "CHK": "check", "FWT": "wire", "BOP": "bank's option (virtual card, often)",
                   "NON": "no payment (zero or offset)"}


def payment_methods(conn: Connection, f: Filters) -> pd.DataFrame:
    """The payment method mix: 835 payments by month and method (BPR04), their count and dollars (BPR02, a debit
    negated) and the method's share of the month's dollars. Source: X12 835 BPR; CAQH CORE EFT/ERA."""
    rm = sem.source(sem.mart_remittance)
    month = m.month_of(rm.c.payment_date)
    q = (sa.select(rm.c.practice_id, month.label("month"), rm.c.method, sa.func.count(),
                   sa.func.sum(rm.c.claim_payments - rm.c.provider_adjustments + rm.c.difference))
         .where(m.within(rm.c.practice_id, f.practice_ids), _between(rm.c.payment_date, f.start, f.end_date))
         .group_by(rm.c.practice_id, month, rm.c.method).order_by(rm.c.practice_id, month, rm.c.method))
    out = fetch(conn, q, ["practice_id", "month", "method", "payments", "amount"])
    out["payments"] = out["payments"].astype("int64")
    out.insert(3, "method_name", [PAYMENT_METHODS.get(x, x or "unknown") for x in out["method"]])
    out["share_of_amount"] = ratio(out["amount"], out.groupby(["practice_id", "month"])["amount"].transform("sum"))
    return out


def first_denials_rows(f: Filters) -> sa.Subquery:
    """The claims behind the denial rate: each claim whose first 835 (in the period) denied it, in full or in part,
    where it stands now (its latest outcome and codes, what the payer still owes)."""
    c = sem.source(sem.mart_claim)
    return (sa.select(c.c.practice_id, c.c.claim_id, c.c.payer, c.c.service_date,
                      c.c.first_adjudicated_date.label("first_835"), c.c.charge_amount.label("charge"),
                      c.c.adjudications, c.c.last_outcome, c.c.denial_codes.label("latest_denial_codes"),
                      c.c.appealed_date, c.c.payer_paid, c.c.payer_balance)
            .where(m.within(c.c.practice_id, f.practice_ids), c.c.first_denied == 1,
                   _between(c.c.first_adjudicated_date, f.start, f.end_date))
            .subquery("first_denials"))


FIRST_DENIALS_PAGED = ("practice_id", "claim_id", "payer", "service_date", "first_835", "charge", "adjudications",
                       "last_outcome", "latest_denial_codes", "appealed_date", "payer_paid", "payer_balance")
FIRST_DENIALS_ORDER = ("practice_id", "first_835", "claim_id")
first_denials, first_denials_page = _worklist(first_denials_rows, FIRST_DENIALS_PAGED, FIRST_DENIALS_ORDER)
