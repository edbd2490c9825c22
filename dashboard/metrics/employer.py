"""Employer (plan sponsor) KPIs, aggregated per employer (``eligibility.group_id``) and month.

These return aggregates only, read from the marts of :mod:`dashboard.warehouse.semantic`; what employer
users see is built from them by :mod:`dashboard.deidentified` (small cells suppressed across responses).
Sources: Tuva Project (member months, financial PMPM, service categories), kpi-reference.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.metrics import definitions as d
from dashboard.metrics import groupers as g
from dashboard.metrics._query import fetch, ratio
from dashboard.metrics.filters import Filters, add_months, months_between
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
    and the people with those claims. The parts every period total is summed from. ``claims_data`` is 0 for
    a month the warehouse holds no claims of the employer for (before its first claim month, after its newest
    payment): its paid and allowed are then "no data" (NaN), never 0. Sources: Tuva member_months /
    financial_pmpm."""
    em_ = sem.source(sem.mart_employer_month)
    q = (sa.select(em_.c.employer_id, em_.c.month, em_.c.member_months, em_.c.subscriber_months, em_.c.paid,
                   em_.c.allowed, em_.c.members_with_claims, em_.c.claims_data)
         .where(m.within(em_.c.employer_id, f.employer_ids), _in_months(em_.c.month, f))
         .order_by(em_.c.employer_id, em_.c.month))
    out = fetch(conn, q, [*KEY, "member_months", "subscriber_months", "paid", "allowed", "members_with_claims",
                          "claims_data"])
    out = _ints(out, ("member_months", "subscriber_months", "members_with_claims", "claims_data"))
    no_data = out["claims_data"] == 0
    out["paid"] = out["paid"].astype("float64").mask(no_data)
    out["allowed"] = out["allowed"].astype("float64").mask(no_data)
    return out


# --- claims run-out: completion factors from the data's own lag -------------------------------------------------

@dataclass(frozen=True)
class Completion:
    """How complete each incurred month's paid is, estimated from the lag of the same employers' claims.

    ``factors[k]``: the share of a month's ultimate paid that is paid by the end of the k-th month after it
    (lag 0: within the month itself); lags from ``len(factors)`` on count as complete. ``paid_through``: the
    month of the newest payment, the "paid through" of the lag report."""

    paid_through: dt.date | None
    factors: tuple[float, ...]

    def lag(self, month: dt.date) -> int | None:
        """Months of run-out ``month`` has had (0: the paid-through month itself); None after it."""
        if self.paid_through is None or month > self.paid_through:
            return None
        return months_between(self.paid_through, month)

    def of_month(self, month: dt.date) -> float | None:
        lag = self.lag(month)
        if lag is None:
            return None
        return self.factors[lag] if lag < len(self.factors) else 1.0

    def complete_through(self) -> dt.date | None:
        """The latest month whose estimated completion reaches COMPLETE_AT: the default end of employer views."""
        if self.paid_through is None:
            return None
        lag = next((k for k, factor in enumerate(self.factors) if factor >= d.COMPLETE_AT), len(self.factors))
        return add_months(self.paid_through, -lag)


def chain_ladder(triangle: pd.DataFrame, paid_through: dt.date, *, development: int = d.DEVELOPMENT_MONTHS,
                 history: int = d.DEVELOPMENT_HISTORY_MONTHS) -> tuple[float, ...]:
    """Completion factors by lag from a paid triangle (columns month, lag, paid): the development (chain-ladder)
    method of claims reserving. For each lag k, the link ratio f_k = Σ cumulative paid through lag k+1 ÷ Σ
    cumulative paid through lag k, over the incurred months of the last ``history`` months that have been
    observed through lag k+1 in full (the paid-through month itself may be partial, so it is not used); the
    factor at lag k is 1 ÷ (f_k × … × f_{development−1}). A link with no data is 1. Source: SOA, "Claims
    reserving: the development method" (completion factors); carriers' lag reports."""
    if triangle.empty:
        return tuple(1.0 for _ in range(development))
    index = {m: i for i, m in enumerate(sorted(set(triangle["month"])))}
    months = sorted(index)
    cum = np.zeros((len(months), development + 1))
    for month, lag, paid in zip(triangle["month"], triangle["lag"], triangle["paid"], strict=True):
        cum[index[month], min(int(lag), development):] += float(paid or 0)
    # observed through lag k+1 in full: month + k + 1 < paid_through
    age = np.array([months_between(paid_through, m) for m in months])
    recent = age <= history
    links = np.ones(development)
    for k in range(development):
        rows = recent & (age > k + 1)
        base = cum[rows, k].sum()
        if base > 0:
            links[k] = cum[rows, k + 1].sum() / base
    # completion at lag k = 1 / Π links k..end, never above 1 (reversals can push a link below 1)
    tails = np.cumprod(links[::-1])[::-1]
    return tuple(float(min(1.0, 1 / t)) if t > 0 else 1.0 for t in tails)


def completion(conn: Connection, *, employer_ids: tuple[str, ...] | None) -> Completion:
    """Completion factors of these employers' claims (all of them together: a small employer's own run-out
    is too thin to estimate alone), from the lag triangle of every incurred month they have."""
    lag = sem.source(sem.mart_claim_lag)
    q = (sa.select(lag.c.month, lag.c.lag, sa.func.sum(lag.c.paid))
         .where(m.within(lag.c.employer_id, employer_ids))
         .group_by(lag.c.month, lag.c.lag))
    triangle = fetch(conn, q, ["month", "lag", "paid"])
    if triangle.empty:
        return Completion(None, ())
    paid_through = max(add_months(mo, int(k)) for mo, k in zip(triangle["month"], triangle["lag"], strict=True))
    return Completion(paid_through, chain_ladder(triangle, paid_through))


def claims_completion(conn: Connection, f: Filters) -> pd.DataFrame:
    """Claims lag and completion per employer and incurred month: months of run-out at the paid-through
    month, the estimated completion (:func:`chain_ladder` over the selected employers' claims), paid to date,
    the estimated ultimate paid (paid ÷ completion) and PMPM, and the mean days from the date of service to
    payment of the month's claims paid so far (paid-weighted). Status: 'complete' (completion ≥ 95%),
    'run-out', or 'no data' (no claims data for the month). Source: SOA development method; Milliman/
    carrier lag reports (incurred-through / paid-through)."""
    totals = month_totals(conn, f)
    est = completion(conn, employer_ids=f.employer_ids)
    lag = sem.source(sem.mart_claim_lag)
    days = fetch(conn, sa.select(lag.c.employer_id, lag.c.month, sa.func.sum(lag.c.paid_lag_days),
                                 sa.func.sum(lag.c.paid))
                 .where(m.within(lag.c.employer_id, f.employer_ids), _in_months(lag.c.month, f))
                 .group_by(lag.c.employer_id, lag.c.month), [*KEY, "paid_lag_days", "paid_so_far"])
    out = totals.merge(days, on=KEY, how="left")
    return with_completion(out, est)


def with_completion(frame: pd.DataFrame, est: Completion) -> pd.DataFrame:
    """``frame`` (month totals, possibly blanked) with the run-out columns of :func:`claims_completion`."""
    out = frame.copy()
    out["months_of_runout"] = [est.lag(mo) for mo in out["month"]]
    out["completion"] = [est.of_month(mo) for mo in out["month"]]
    no_data = out["paid"].isna() & (out["claims_data"] == 0) if "claims_data" in out else out["paid"].isna()
    out.loc[no_data, "completion"] = np.nan
    out["completion"] = pd.to_numeric(out["completion"], errors="coerce")
    out["estimated_paid"] = ratio(out["paid"], out["completion"])
    out["estimated_pmpm_paid"] = ratio(out["estimated_paid"], out["member_months"])
    out = with_kpis(out, (KPIS["pmpm_paid"],))
    if "paid_lag_days" in out:
        out["claims_lag_days"] = ratio(out["paid_lag_days"], out["paid_so_far"]).mask(out["paid"].isna())
    out["status"] = np.where(no_data, "no data", np.where(out["completion"] >= d.COMPLETE_AT, "complete", "run-out"))
    return out


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
    :func:`dashboard.warehouse.marts.int_member_claim`): inpatient admissions (one per stay) and inpatient
    days, ER visits (one per person and day, not part of an admission), office visits (one per person and day)
    and prescriptions (pharmacy claims). Months without claims data: events and per 1,000 are "no data"
    (NaN). Source: Tuva Project docs (per 1,000), Tuva encounter grouper."""
    u = sem.source(sem.mart_utilization_month)
    q = (sa.select(u.c.employer_id, u.c.month, u.c.measure, u.c.events, u.c.members_with_events)
         .where(m.within(u.c.employer_id, f.employer_ids), _in_months(u.c.month, f)))
    events = fetch(conn, q, [*KEY, "measure", "events", "members_with_events"])
    totals = month_totals(conn, f)
    mm = totals[[*KEY, "member_months"]]
    grid = mm.merge(pd.DataFrame({"measure": list(UTILIZATION_MEASURES)}), how="cross")
    out = grid.merge(events, on=[*KEY, "measure"], how="left")
    out = _ints(out, ("events", "members_with_events"))
    out["per_1000"] = KPIS["per_1000"].compute(out)
    # a month without claims data has no events to count: "no data", not 0 per 1,000
    out = out.merge(totals[[*KEY, "claims_data"]], on=KEY, how="left")
    no_data = out["claims_data"] != 1
    for col in ("events", "members_with_events", "per_1000"):
        out[col] = out[col].astype("float64").mask(no_data)
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


def with_period_kpis(out: pd.DataFrame) -> pd.DataFrame:
    """PMPM, PEPM, in-network share and average length of stay of period rows: the money over the member
    (subscriber) months of the months with claims data only, so a period reaching past the claims reads
    PMPM of what is known, and a period with none reads "no data" (NaN), never 0.00."""
    covered = out.assign(member_months=out["claims_member_months"], subscriber_months=out["claims_subscriber_months"])
    for name in ("pmpm_paid", "pmpm_allowed", "pepm_paid", "in_network_share", "average_length_of_stay"):
        out[name] = KPIS[name].compute(covered)
    return out


SUMMARY_SUMS = ("paid", "allowed", "claims_member_months", "claims_subscriber_months", "in_network_paid",
                "network_known_paid", "inpatient_admissions", "inpatient_days")


def employer_summary(conn: Connection, f: Filters) -> pd.DataFrame:
    """The period per employer (plus an 'all' row when several are selected): members and subscribers
    enrolled in the last month, member months of the period, paid and allowed in enrolled months, PMPM
    (Σ paid ÷ Σ member months of the months with claims data), PEPM (÷ subscriber months), in-network share
    of paid, inpatient admissions, days and average length of stay, and members over $50k; ``claims_months``
    counts the period's months with claims data. Sources: Tuva member_months / financial_pmpm; kpi-reference
    (PEPM, high-cost claimants); Tuva encounters (length of stay)."""
    mm = month_totals(conn, f)
    last = mm[mm["month"] == f.end].set_index("employer_id")[["member_months", "subscriber_months"]]
    last.columns = ["members", "subscribers"]
    period = mm.groupby("employer_id")[["member_months", "subscriber_months"]].sum()
    covered = mm[mm["claims_data"] == 1].rename(columns={"member_months": "claims_member_months",
                                                        "subscriber_months": "claims_subscriber_months"})
    money = covered.groupby("employer_id").agg(
        paid=("paid", "sum"), allowed=("allowed", "sum"), claims_member_months=("claims_member_months", "sum"),
        claims_subscriber_months=("claims_subscriber_months", "sum"), claims_months=("month", "count"))
    net = network(conn, f)
    net = net.assign(in_network_paid=net["paid"].where(net["network"] == "in", 0.0),
                     network_known_paid=net["paid"].where(net["network"] != "unknown", 0.0))
    net = net.groupby("employer_id")[["in_network_paid", "network_known_paid"]].sum()
    u = sem.source(sem.mart_utilization_month)
    stays = fetch(conn, sa.select(u.c.employer_id, u.c.measure, sa.func.sum(u.c.events))
                  .where(m.within(u.c.employer_id, f.employer_ids), _in_months(u.c.month, f),
                         u.c.measure.in_(("inpatient_admissions", "inpatient_days")))
                  .group_by(u.c.employer_id, u.c.measure), ["employer_id", "measure", "events"])
    stays = stays.pivot_table(index="employer_id", columns="measure", values="events", aggfunc="sum")
    hcc = high_cost_claimants(conn, f).groupby("employer_id")["claimants"].sum().rename("high_cost_claimants")
    out = pd.concat([last, period, money, net, stays, hcc], axis=1).fillna(0).sort_index()  # one order everywhere
    for col in ("inpatient_admissions", "inpatient_days"):
        if col not in out:
            out[col] = 0
    if len(out) > 1:
        out.loc["all"] = out.sum()
    out = out.reset_index(names="employer_id")
    for col in ("members", "subscribers", "member_months", "subscriber_months", "high_cost_claimants",
                "claims_member_months", "claims_subscriber_months", "claims_months", "inpatient_admissions",
                "inpatient_days"):
        out[col] = out[col].astype("int64")
    # money of a period without claims data is unknown, not $0
    for col in ("paid", "allowed"):
        out[col] = out[col].astype("float64").mask(out["claims_member_months"] == 0)
    return with_period_kpis(out)


NETWORKS = ("in", "out", "unknown")


def network(conn: Connection, f: Filters) -> pd.DataFrame:
    """Paid and allowed per employer, month and network (in, out of network, unknown: the claim lines'
    in_network_flag, see :func:`dashboard.warehouse.marts.network_of`), claims in enrolled months, with the
    people behind each cell and the network's share of the month's paid. Source: Tuva input layer
    in_network_flag; in-network share as in carriers' employer reports."""
    nm = sem.source(sem.mart_network_month)
    q = (sa.select(nm.c.employer_id, nm.c.month, nm.c.network, nm.c.paid, nm.c.allowed, nm.c.claims,
                   nm.c.members_with_claims)
         .where(m.within(nm.c.employer_id, f.employer_ids), _in_months(nm.c.month, f)))
    out = _ints(fetch(conn, q, [*KEY, "network", "paid", "allowed", "claims", "members_with_claims"]),
                ("claims", "members_with_claims"))
    total = out.groupby(KEY)["paid"].transform("sum")
    out["share_of_paid"] = ratio(out["paid"], total)
    order = {n: i for i, n in enumerate(NETWORKS)}
    out["_order"] = out["network"].map(order)
    return out.sort_values([*KEY, "_order"]).drop(columns="_order").reset_index(drop=True)


def cost_driver_cells(conn: Connection, f: Filters) -> pd.DataFrame:
    """The cost-driver cells per employer, month, dimension and value (mart_cost_driver_month): paid, allowed,
    claims and members with claims, claims in enrolled months. The canonical grid the cost-drivers report sums
    (dashboard.metrics.cost_drivers) and employer users see suppressed (dashboard.deidentified)."""
    cd = sem.source(sem.mart_cost_driver_month)
    # money as double in the warehouse: a few thousand rows of Decimals are most of this read's time in Python
    q = (sa.select(cd.c.employer_id, cd.c.month, cd.c.dimension, cd.c.value, cd.c.parent, cd.c.label,
                   sa.cast(cd.c.paid, sa.Float), sa.cast(cd.c.allowed, sa.Float), cd.c.claims, cd.c.members_with_claims)
         .where(m.within(cd.c.employer_id, f.employer_ids), _in_months(cd.c.month, f))
         .order_by(cd.c.employer_id, cd.c.month, cd.c.dimension, cd.c.parent, cd.c.value))
    out = fetch(conn, q, [*KEY, "dimension", "value", "parent", "label", "paid", "allowed", "claims",
                          "members_with_claims"])
    return _ints(out, ("claims", "members_with_claims")).reset_index(drop=True)


def demographics(conn: Connection, f: Filters) -> pd.DataFrame:
    """Members and subscribers enrolled per employer, month, age band (age on the month's first day) and gender,
    and the dependents (members who are not subscribers). Source: Tuva member_months; carriers' employer
    reports (age/gender mix)."""
    dm = sem.source(sem.mart_demographic_month)
    q = (sa.select(dm.c.employer_id, dm.c.month, dm.c.age_band, dm.c.gender, dm.c.members, dm.c.subscribers)
         .where(m.within(dm.c.employer_id, f.employer_ids), _in_months(dm.c.month, f)))
    out = _ints(fetch(conn, q, [*KEY, "age_band", "gender", "members", "subscribers"]), ("members", "subscribers"))
    bands = {name: i for i, (name, *_rest) in enumerate((*g.AGE_BANDS, ("unknown",)))}
    genders = {name: i for i, name in enumerate(g.GENDERS)}
    out["_order"] = out["age_band"].map(bands).fillna(99) * 10 + out["gender"].map(genders).fillna(9)
    return out.sort_values([*KEY, "_order"]).drop(columns="_order").reset_index(drop=True)


def enrollment_changes(conn: Connection, f: Filters) -> pd.DataFrame:
    """834 maintenances per employer, month of their effective date, type (INS03: addition, termination, change,
    reinstatement, audit) and reason (INS04, in words): the people each concerned. Only 834 loads record these;
    Tuva eligibility loads have spans, whose adds and terms are in :func:`enrollment`. Source: X12 834 INS."""
    ch = sem.source(sem.mart_enrollment_change_month)
    q = (sa.select(ch.c.employer_id, ch.c.month, ch.c.maintenance_type, ch.c.maintenance_reason, ch.c.people)
         .where(m.within(ch.c.employer_id, f.employer_ids), _in_months(ch.c.month, f))
         .order_by(ch.c.employer_id, ch.c.month, ch.c.maintenance_type, ch.c.maintenance_reason))
    out = _ints(fetch(conn, q, [*KEY, "maintenance_type", "maintenance_reason", "people"]), ("people",))
    out.insert(3, "change", [g.MAINTENANCE_TYPES.get(t, t) for t in out["maintenance_type"]])
    out["reason"] = [g.maintenance_reason(r) for r in out["maintenance_reason"]]
    return out.reset_index(drop=True)


def enrollment_flow(conn: Connection, f: Filters) -> pd.DataFrame:
    """Adds and terms per employer and month over every plan and tier (the month's totals of :func:`enrollment`).
    Source: 834 INS03 add/terminate semantics, as enrollment."""
    out = enrollment(conn, f)
    return out.groupby(KEY, as_index=False)[["adds", "terms"]].sum().sort_values(KEY).reset_index(drop=True)
