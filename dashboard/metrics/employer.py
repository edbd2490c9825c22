"""Employer (plan sponsor) KPIs, aggregated per employer (``eligibility.group_id``) and month.

These return aggregates only; small-cell suppression for employer users is applied by the report
catalog through :mod:`dashboard.privacy`, using the count columns every function returns.
Sources: Tuva Project (member months, financial PMPM, service categories), kpi-reference.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.metrics import definitions as d
from dashboard.metrics._query import fetch, ratio
from dashboard.metrics.filters import Filters
from dashboard.warehouse import marts as m
from dashboard.warehouse import schema as s

KEY = ["employer_id", "month"]


def _in_months(column, f: Filters):
    return sa.and_(column >= f.start, column <= f.end)


def member_months(conn: Connection, f: Filters) -> pd.DataFrame:
    """Member months per employer and month = distinct people whose enrollment overlaps the month at
    all (no proration); subscribers likewise for subscribers only. Source: Tuva member_months."""
    mm = m.int_member_month(f.employer_ids).subquery()
    q = (
        sa.select(mm.c.employer_id, mm.c.month, sa.func.count(sa.distinct(mm.c.person_id)),
                  sa.func.count(sa.distinct(sa.case((mm.c.is_subscriber, mm.c.person_id)))))
        .where(_in_months(mm.c.month, f))
        .group_by(mm.c.employer_id, mm.c.month)
    )
    return fetch(conn, q, [*KEY, "member_months", "subscriber_months"])


def enrollment(conn: Connection, f: Filters) -> pd.DataFrame:
    """Per employer, month, plan and coverage tier: members and subscribers enrolled in the month
    (= member months of that month), adds (a span starts in the month and the person had no coverage
    with the employer the day before) and terms (a span ends in the month and no coverage follows the
    next day). Source: Tuva member_months; 834 INS03 add/terminate semantics."""
    mm = m.int_member_month(f.employer_ids).subquery()
    counts = (
        sa.select(mm.c.employer_id, mm.c.month, mm.c.plan, mm.c.tier,
                  sa.func.count(sa.distinct(mm.c.person_id)),
                  sa.func.count(sa.distinct(sa.case((mm.c.is_subscriber, mm.c.person_id)))))
        .where(_in_months(mm.c.month, f))
        .group_by(mm.c.employer_id, mm.c.month, mm.c.plan, mm.c.tier)
    )
    out = fetch(conn, counts, [*KEY, "plan", "tier", "members", "subscribers"])
    changes = _adds_and_terms(conn, f)
    out = out.merge(changes, on=[*KEY, "plan", "tier"], how="outer")
    out = out.fillna({"members": 0, "subscribers": 0, "adds": 0, "terms": 0})
    for col in ("members", "subscribers", "adds", "terms"):
        out[col] = out[col].astype("int64")
    out["member_months"] = out["members"]
    return out.sort_values([*KEY, "plan", "tier"]).reset_index(drop=True)


def _adds_and_terms(conn: Connection, f: Filters) -> pd.DataFrame:
    e, e2, c, t = s.eligibility, s.eligibility.alias("other"), s.calendar_month, s.member_coverage_tier
    tier = sa.func.coalesce(t.c.tier_code, "unknown")
    same_person = sa.and_(e2.c.person_id == e.c.person_id, e2.c.group_id == e.c.group_id)
    day_before = e.c.enrollment_start_date - 1
    day_after = e.c.enrollment_end_date + 1
    covered_before = sa.exists().where(same_person, e2.c.enrollment_start_date <= day_before,
                                       e2.c.enrollment_end_date >= day_before)
    covered_after = sa.exists().where(same_person, e2.c.enrollment_start_date <= day_after,
                                      e2.c.enrollment_end_date >= day_after)

    def changes(date_col, continued, label):
        return (
            sa.select(e.c.group_id, c.c.month_start, e.c.plan, tier, sa.func.count(sa.distinct(e.c.person_id)))
            .select_from(e)
            .join(c, sa.and_(date_col >= c.c.month_start, date_col <= c.c.month_end))
            .outerjoin(t, sa.and_(t.c.person_id == e.c.person_id, t.c.member_id == e.c.member_id,
                                  t.c.enrollment_start_date == e.c.enrollment_start_date))
            .where(m.within(e.c.group_id, f.employer_ids))
            .where(_in_months(c.c.month_start, f))
            .where(~continued)
            .group_by(e.c.group_id, c.c.month_start, e.c.plan, tier)
        ), label

    frames = []
    for query, label in (changes(e.c.enrollment_start_date, covered_before, "adds"),
                         changes(e.c.enrollment_end_date, covered_after, "terms")):
        frames.append(fetch(conn, query, [*KEY, "plan", "tier", label]))
    return frames[0].merge(frames[1], on=[*KEY, "plan", "tier"], how="outer")


def spend(conn: Connection, f: Filters) -> pd.DataFrame:
    """PMPM by service category: paid (and allowed) of claims in enrolled months ÷ the employer's
    member months of that month. Claim month = coalesce(claim_start_date, claim_end_date); pharmacy =
    coalesce(dispensing_date, paid_date). Claims in months without enrollment are excluded here (see
    :func:`spend_outside_enrollment`). ``members_with_claims`` counts the people behind each cell.
    Source: Tuva financial_pmpm; service_category_1."""
    mc = m.int_member_claim(f.employer_ids).subquery()
    q = (
        sa.select(mc.c.employer_id, mc.c.claim_month, mc.c.service_category,
                  sa.func.sum(mc.c.paid_amount), sa.func.sum(mc.c.allowed_amount),
                  sa.func.count(), sa.func.count(sa.distinct(mc.c.person_id)))
        .where(mc.c.in_enrollment == 1)
        .where(_in_months(mc.c.claim_month, f))
        .group_by(mc.c.employer_id, mc.c.claim_month, mc.c.service_category)
    )
    out = fetch(conn, q, [*KEY, "service_category", "paid", "allowed", "claims", "members_with_claims"])
    mm = member_months(conn, f)[[*KEY, "member_months"]]
    out = out.merge(mm, on=KEY, how="left")
    out["pmpm_paid"] = ratio(out["paid"], out["member_months"])
    out["pmpm_allowed"] = ratio(out["allowed"], out["member_months"])
    order = {c: i for i, c in enumerate(d.SERVICE_CATEGORIES)}
    out["_order"] = out["service_category"].map(order)
    return out.sort_values([*KEY, "_order"]).drop(columns="_order").reset_index(drop=True)


def pmpm(conn: Connection, f: Filters) -> pd.DataFrame:
    """Total PMPM per employer and month = Σ paid (allowed) in enrolled months ÷ member months.
    Source: Tuva financial_pmpm."""
    detail = spend(conn, f)
    out = detail.groupby(KEY, as_index=False)[["paid", "allowed"]].sum()
    out = out.merge(member_months(conn, f), on=KEY, how="right").fillna({"paid": 0.0, "allowed": 0.0})
    out["pmpm_paid"] = ratio(out["paid"], out["member_months"])
    out["pmpm_allowed"] = ratio(out["allowed"], out["member_months"])
    return out


def month_totals(conn: Connection, f: Filters) -> pd.DataFrame:
    """Per employer and month: member and subscriber months, paid and allowed of claims in enrolled months
    and the people with those claims. The parts every period total is summed from. Sources: Tuva
    member_months / financial_pmpm."""
    mc = m.int_member_claim(f.employer_ids).subquery()
    q = (
        sa.select(mc.c.employer_id, mc.c.claim_month, sa.func.sum(mc.c.paid_amount),
                  sa.func.sum(mc.c.allowed_amount), sa.func.count(sa.distinct(mc.c.person_id)))
        .where(mc.c.in_enrollment == 1)
        .where(_in_months(mc.c.claim_month, f))
        .group_by(mc.c.employer_id, mc.c.claim_month)
    )
    money = fetch(conn, q, [*KEY, "paid", "allowed", "members_with_claims"])
    # a claim in an enrolled month always has its member month, so the member months carry every row
    out = member_months(conn, f).merge(money, on=KEY, how="left")
    out = out.fillna({"paid": 0.0, "allowed": 0.0, "members_with_claims": 0})
    out["members_with_claims"] = out["members_with_claims"].astype("int64")
    return out.sort_values(KEY).reset_index(drop=True)


def spend_outside_enrollment(conn: Connection, f: Filters) -> pd.DataFrame:
    """Paid and allowed of claims whose claim month has no enrollment (run-out, retro terms), placed at
    the person's latest employer; never part of PMPM. Source: Tuva financial_pmpm convention."""
    mc = m.int_member_claim(f.employer_ids).subquery()
    q = (
        sa.select(mc.c.employer_id, mc.c.claim_month, sa.func.sum(mc.c.paid_amount),
                  sa.func.sum(mc.c.allowed_amount), sa.func.count(), sa.func.count(sa.distinct(mc.c.person_id)))
        .where(mc.c.in_enrollment == 0)
        .where(_in_months(mc.c.claim_month, f))
        .group_by(mc.c.employer_id, mc.c.claim_month)
        .order_by(mc.c.employer_id, mc.c.claim_month)
    )
    return fetch(conn, q, [*KEY, "paid", "allowed", "claims", "members_with_claims"])


UTILIZATION_MEASURES = {
    "inpatient_admissions": "is_inpatient_admission",
    "er_visits": "is_er_visit",
    "office_visits": "is_office_visit",
    "prescriptions": "is_prescription",
}


def utilization(conn: Connection, f: Filters) -> pd.DataFrame:
    """Utilization per 1,000 = events ÷ member months × 12,000, for inpatient admissions (institutional
    bill type 11x), ER visits (revenue code 045x or POS 23), office visits (office-based claims) and
    prescriptions (pharmacy claims), in enrolled months. Source: Tuva Project docs (per 1,000)."""
    mc = m.int_member_claim(f.employer_ids).subquery()
    measures = []
    for name, flag in UTILIZATION_MEASURES.items():
        measures.append(sa.func.sum(mc.c[flag]).label(name))
        measures.append(sa.func.count(sa.distinct(sa.case((mc.c[flag] == 1, mc.c.person_id)))).label(f"{name}_p"))
    q = (
        sa.select(mc.c.employer_id, mc.c.claim_month, *measures)
        .where(mc.c.in_enrollment == 1)
        .where(_in_months(mc.c.claim_month, f))
        .group_by(mc.c.employer_id, mc.c.claim_month)
    )
    cols = [*KEY]
    for name in UTILIZATION_MEASURES:
        cols += [name, f"{name}_p"]
    wide = fetch(conn, q, cols)
    mm = member_months(conn, f)[[*KEY, "member_months"]]
    rows = []
    for name in UTILIZATION_MEASURES:
        part = wide[[*KEY, name, f"{name}_p"]].rename(columns={name: "events", f"{name}_p": "members_with_events"})
        part.insert(2, "measure", name)
        rows.append(part)
    events = pd.concat(rows, ignore_index=True)
    grid = mm.merge(pd.DataFrame({"measure": list(UTILIZATION_MEASURES)}), how="cross")
    out = grid.merge(events, on=[*KEY, "measure"], how="left").fillna({"events": 0, "members_with_events": 0})
    out["events"] = out["events"].astype("int64")
    out["members_with_events"] = out["members_with_events"].astype("int64")
    out["per_1000"] = ratio(out["events"] * 12000, out["member_months"])
    return out[[*KEY, "measure", "events", "members_with_events", "member_months", "per_1000"]].sort_values(
        [*KEY, "measure"]).reset_index(drop=True)


def high_cost_claimants(conn: Connection, f: Filters) -> pd.DataFrame:
    """Members by total paid (medical + pharmacy, enrolled months of the period) in bands $50k–$100k,
    $100k–$500k, $500k–$1M, $1M+: claimants, their paid, and their share of all paid.
    Source: kpi-reference (Springbuk; EBRI: top 1% ≈ 28–29% of spend)."""
    mc = m.int_member_claim(f.employer_ids).subquery()
    per_member = (
        sa.select(mc.c.employer_id, mc.c.person_id, sa.func.sum(mc.c.paid_amount).label("paid"))
        .where(mc.c.in_enrollment == 1)
        .where(_in_months(mc.c.claim_month, f))
        .group_by(mc.c.employer_id, mc.c.person_id)
        .subquery("per_member")
    )
    band = sa.case(
        *[(sa.and_(per_member.c.paid >= low, per_member.c.paid < high) if high else per_member.c.paid >= low, name)
          for name, low, high in d.HIGH_COST_BANDS],
        else_=None,
    )
    q = (
        sa.select(per_member.c.employer_id, band, sa.func.count(), sa.func.sum(per_member.c.paid))
        .where(band.is_not(None))
        .group_by(per_member.c.employer_id, band)
    )
    bands = fetch(conn, q, ["employer_id", "band", "claimants", "paid"])
    totals = fetch(conn, sa.select(per_member.c.employer_id, sa.func.sum(per_member.c.paid),
                                   sa.func.count()).group_by(per_member.c.employer_id)
                   .order_by(per_member.c.employer_id),
                   ["employer_id", "total_paid", "members_with_claims"])
    employers = totals[["employer_id"]]
    grid = employers.merge(pd.DataFrame({"band": [b[0] for b in d.HIGH_COST_BANDS]}), how="cross")
    out = grid.merge(bands, on=["employer_id", "band"], how="left").merge(totals, on="employer_id", how="left")
    out = out.fillna({"claimants": 0, "paid": 0.0})
    out["claimants"] = out["claimants"].astype("int64")
    out["pct_of_paid"] = ratio(out["paid"], out["total_paid"])
    out["period"] = f"{f.start:%Y-%m}..{f.end:%Y-%m}"
    return out[["employer_id", "period", "band", "claimants", "paid", "pct_of_paid"]]


def employer_summary(conn: Connection, f: Filters) -> pd.DataFrame:
    """The period per employer (plus an 'all' row when several are selected): members and subscribers
    enrolled in the last month, member months of the period, paid and allowed in enrolled months, PMPM
    (Σ paid ÷ Σ member months), PEPM (Σ paid ÷ subscriber months) and members over $50k.
    Sources: Tuva member_months / financial_pmpm; kpi-reference (PEPM, high-cost claimants)."""
    mm = member_months(conn, f)
    last = mm[mm["month"] == f.end].set_index("employer_id")[["member_months", "subscriber_months"]]
    last.columns = ["members", "subscribers"]
    period = mm.groupby("employer_id")[["member_months", "subscriber_months"]].sum()
    money = spend(conn, f).groupby("employer_id")[["paid", "allowed"]].sum()
    hcc = high_cost_claimants(conn, f).groupby("employer_id")["claimants"].sum().rename("high_cost_claimants")
    out = pd.concat([last, period, money, hcc], axis=1).fillna(0).sort_index()  # same order on every backend
    if len(out) > 1:
        out.loc["all"] = out.sum()
    out = out.reset_index(names="employer_id")
    for col in ("members", "subscribers", "member_months", "subscriber_months", "high_cost_claimants"):
        out[col] = out[col].astype("int64")
    out["pmpm_paid"] = ratio(out["paid"], out["member_months"])
    out["pmpm_allowed"] = ratio(out["allowed"], out["member_months"])
    out["pepm_paid"] = ratio(out["paid"], out["subscriber_months"])
    return out
