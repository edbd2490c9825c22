"""Employer (plan sponsor) KPIs, aggregated per employer (``eligibility.group_id``) and month.

These return aggregates only, read from the marts of :mod:`dashboard.warehouse.semantic`; what employer
users see is built from them by :mod:`dashboard.deidentified` (small cells suppressed across responses).
Sources: Tuva Project (member months, financial PMPM, service categories), kpi-reference.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.metrics import definitions as d
from dashboard.metrics._query import fetch, ratio
from dashboard.metrics.filters import Filters
from dashboard.metrics.kpis import KPIS, with_kpis
from dashboard.warehouse import marts as m
from dashboard.warehouse import semantic as sem

KEY = ["employer_id", "month"]


def _in_months(column, f: Filters):
    return sa.and_(column >= f.start, column <= f.end)


def _ints(frame: pd.DataFrame, columns) -> pd.DataFrame:
    for col in columns:
        frame[col] = pd.to_numeric(frame[col]).fillna(0).astype("int64")
    return frame


def month_totals(conn: Connection, f: Filters) -> pd.DataFrame:
    """Per employer and month: member and subscriber months, paid and allowed of claims in enrolled months
    and the people with those claims. The parts every period total is summed from. Sources: Tuva
    member_months / financial_pmpm."""
    em_ = sem.source(sem.mart_employer_month)
    q = (sa.select(em_.c.employer_id, em_.c.month, em_.c.member_months, em_.c.subscriber_months, em_.c.paid,
                   em_.c.allowed, em_.c.members_with_claims)
         .where(m.within(em_.c.employer_id, f.employer_ids), _in_months(em_.c.month, f))
         .order_by(em_.c.employer_id, em_.c.month))
    out = fetch(conn, q, [*KEY, "member_months", "subscriber_months", "paid", "allowed", "members_with_claims"])
    return _ints(out, ("member_months", "subscriber_months", "members_with_claims"))


def member_months(conn: Connection, f: Filters) -> pd.DataFrame:
    """Member months per employer and month = distinct people whose enrollment overlaps the month at
    all (no proration); subscribers likewise for subscribers only. Source: Tuva member_months."""
    return month_totals(conn, f)[[*KEY, "member_months", "subscriber_months"]]


def enrollment(conn: Connection, f: Filters) -> pd.DataFrame:
    """Per employer, month, plan and coverage tier: members and subscribers enrolled in the month
    (= member months of that month), adds (a span starts in the month and the person had no coverage
    with the employer the day before) and terms (a span ends in the month and no coverage follows the
    next day). Source: Tuva member_months; 834 INS03 add/terminate semantics."""
    en = sem.source(sem.mart_enrollment_month)
    q = (sa.select(en.c.employer_id, en.c.month, en.c.plan, en.c.tier, en.c.members, en.c.subscribers, en.c.adds,
                   en.c.terms)
         .where(m.within(en.c.employer_id, f.employer_ids), _in_months(en.c.month, f))
         .order_by(en.c.employer_id, en.c.month, en.c.plan, en.c.tier))
    out = _ints(fetch(conn, q, [*KEY, "plan", "tier", "members", "subscribers", "adds", "terms"]),
                ("members", "subscribers", "adds", "terms"))
    out["member_months"] = out["members"]
    return out.reset_index(drop=True)


def spend(conn: Connection, f: Filters) -> pd.DataFrame:
    """PMPM by service category: paid (and allowed) of claims in enrolled months ÷ the employer's
    member months of that month. Claim month = coalesce(claim_start_date, claim_end_date); pharmacy =
    coalesce(dispensing_date, paid_date). Claims in months without enrollment are excluded here (see
    :func:`spend_outside_enrollment`). ``members_with_claims`` counts the people behind each cell.
    Source: Tuva financial_pmpm; service_category_1."""
    sp = sem.source(sem.mart_spend_month)
    q = (sa.select(sp.c.employer_id, sp.c.month, sp.c.service_category, sp.c.paid, sp.c.allowed, sp.c.claims,
                   sp.c.members_with_claims)
         .where(m.within(sp.c.employer_id, f.employer_ids), _in_months(sp.c.month, f)))
    out = fetch(conn, q, [*KEY, "service_category", "paid", "allowed", "claims", "members_with_claims"])
    mm = member_months(conn, f)[[*KEY, "member_months"]]
    out = out.merge(mm, on=KEY, how="left")
    out = with_kpis(out, (KPIS["pmpm_paid"], KPIS["pmpm_allowed"]))
    order = {c: i for i, c in enumerate(d.SERVICE_CATEGORIES)}
    out["_order"] = out["service_category"].map(order)
    return out.sort_values([*KEY, "_order"]).drop(columns="_order").reset_index(drop=True)


def pmpm(conn: Connection, f: Filters) -> pd.DataFrame:
    """Total PMPM per employer and month = Σ paid (allowed) in enrolled months ÷ member months.
    Source: Tuva financial_pmpm."""
    out = month_totals(conn, f)
    out = with_kpis(out, (KPIS["pmpm_paid"], KPIS["pmpm_allowed"]))
    return out


def spend_outside_enrollment(conn: Connection, f: Filters) -> pd.DataFrame:
    """Paid and allowed of claims whose claim month has no enrollment (run-out, retro terms), placed at
    the person's latest employer; never part of PMPM. Source: Tuva financial_pmpm convention."""
    mmo = sem.source(sem.mart_member_month)
    q = (
        sa.select(mmo.c.employer_id, mmo.c.month, sa.func.sum(mmo.c.paid), sa.func.sum(mmo.c.allowed),
                  sa.func.sum(mmo.c.claims), sa.func.count(sa.distinct(mmo.c.person_id)))
        .where(mmo.c.in_enrollment == 0, m.within(mmo.c.employer_id, f.employer_ids), _in_months(mmo.c.month, f))
        .group_by(mmo.c.employer_id, mmo.c.month)
        .order_by(mmo.c.employer_id, mmo.c.month)
    )
    return _ints(fetch(conn, q, [*KEY, "paid", "allowed", "claims", "members_with_claims"]),
                 ("claims", "members_with_claims"))


UTILIZATION_MEASURES = sem.UTILIZATION_FLAGS


def utilization(conn: Connection, f: Filters) -> pd.DataFrame:
    """Utilization per 1,000 = events ÷ member months × 12,000, in enrolled months, for encounters (see
    :func:`dashboard.warehouse.marts.int_member_claim`): inpatient admissions (one per stay), ER visits (one
    per person and day, not part of an admission), office visits (one per person and day) and prescriptions
    (pharmacy claims). Source: Tuva Project docs (per 1,000), Tuva encounter grouper."""
    u = sem.source(sem.mart_utilization_month)
    q = (sa.select(u.c.employer_id, u.c.month, u.c.measure, u.c.events, u.c.members_with_events)
         .where(m.within(u.c.employer_id, f.employer_ids), _in_months(u.c.month, f)))
    events = fetch(conn, q, [*KEY, "measure", "events", "members_with_events"])
    mm = member_months(conn, f)[[*KEY, "member_months"]]
    grid = mm.merge(pd.DataFrame({"measure": list(UTILIZATION_MEASURES)}), how="cross")
    out = grid.merge(events, on=[*KEY, "measure"], how="left")
    out = _ints(out, ("events", "members_with_events"))
    out["per_1000"] = KPIS["per_1000"].compute(out)
    return out[[*KEY, "measure", "events", "members_with_events", "member_months", "per_1000"]].sort_values(
        [*KEY, "measure"]).reset_index(drop=True)


def plan_year(f: Filters) -> Filters:
    """High-cost claimants are counted over the calendar (plan) year of the period's last month, whatever
    the period: the same people for every selection ending in that year, for admins and employer users
    alike, so two overlapping windows can never be differenced."""
    return Filters(start=dt.date(f.end.year, 1, 1), end=dt.date(f.end.year, 12, 1), employer_ids=f.employer_ids)


def high_cost_claimants(conn: Connection, f: Filters) -> pd.DataFrame:
    """Members by total paid (medical + pharmacy, enrolled months) over the calendar year of the period's
    last month (:func:`plan_year`), in bands $50k–$100k, $100k–$500k, $500k–$1M, $1M+: claimants, their
    paid, and their share of all paid in the year. Source: kpi-reference (Springbuk; EBRI: top 1% ≈ 28–29%
    of spend)."""
    year = plan_year(f)
    hc = sem.source(sem.mart_high_cost_year)
    bands = fetch(conn, sa.select(hc.c.employer_id, hc.c.band, hc.c.claimants, hc.c.paid)
                  .where(m.within(hc.c.employer_id, f.employer_ids), hc.c.year == year.start),
                  ["employer_id", "band", "claimants", "paid"])
    months = month_totals(conn, year)
    totals = (months[months["members_with_claims"] > 0].groupby("employer_id", as_index=False)["paid"].sum()
              .rename(columns={"paid": "total_paid"}).sort_values("employer_id"))
    grid = totals[["employer_id"]].merge(pd.DataFrame({"band": [b[0] for b in d.HIGH_COST_BANDS]}), how="cross")
    out = grid.merge(bands, on=["employer_id", "band"], how="left").merge(totals, on="employer_id", how="left")
    out = out.fillna({"claimants": 0, "paid": 0.0})
    out["claimants"] = out["claimants"].astype("int64")
    out["pct_of_paid"] = ratio(out["paid"], out["total_paid"])
    out["period"] = f"{year.start:%Y-%m}..{year.end:%Y-%m}"
    return out[["employer_id", "period", "band", "claimants", "paid", "pct_of_paid"]].reset_index(drop=True)


def employer_summary(conn: Connection, f: Filters) -> pd.DataFrame:
    """The period per employer (plus an 'all' row when several are selected): members and subscribers
    enrolled in the last month, member months of the period, paid and allowed in enrolled months, PMPM
    (Σ paid ÷ Σ member months), PEPM (Σ paid ÷ subscriber months) and members over $50k.
    Sources: Tuva member_months / financial_pmpm; kpi-reference (PEPM, high-cost claimants)."""
    mm = month_totals(conn, f)
    last = mm[mm["month"] == f.end].set_index("employer_id")[["member_months", "subscriber_months"]]
    last.columns = ["members", "subscribers"]
    period = mm.groupby("employer_id")[["member_months", "subscriber_months"]].sum()
    money = mm.groupby("employer_id")[["paid", "allowed"]].sum()
    hcc = high_cost_claimants(conn, f).groupby("employer_id")["claimants"].sum().rename("high_cost_claimants")
    out = pd.concat([last, period, money, hcc], axis=1).fillna(0).sort_index()  # same order on every backend
    if len(out) > 1:
        out.loc["all"] = out.sum()
    out = out.reset_index(names="employer_id")
    for col in ("members", "subscribers", "member_months", "subscriber_months", "high_cost_claimants"):
        out[col] = out[col].astype("int64")
    out = with_kpis(out, (KPIS["pmpm_paid"], KPIS["pmpm_allowed"]))
    out = with_kpis(out, (KPIS["pepm_paid"],))
    return out
