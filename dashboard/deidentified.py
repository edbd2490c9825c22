"""What an employer user receives: every employer report, protected across responses, not only within one.

A user can combine any exports, periods, employer subsets and reports, so a cell blanked in one response
must not be derivable from others. The design has three parts:

1. **One canonical grid.** Every count an employer user sees is a cell of a grid whose grain does not
   depend on the request: employer × month × plan × tier (enrollment), employer × month × service
   category (spend), employer × month × measure (utilization), employer × month (spend outside
   enrollment, and the month's totals: member and subscriber months, paid, allowed, claimants), and
   employer × calendar year × band (high-cost claimants). Whether a cell is blanked is decided on the grid
   with :mod:`dashboard.privacy` (primary, linked, complementary) and never depends on which months or
   employers were asked for: every request sees the same cell blanked or the same value.
2. **Totals only from published cells.** A period total (member months of a quarter, paid of a year), an
   employer-summary row and the 'all' row of several employers are sums of the grid's month totals; if
   any part is blanked, the total is blanked (:func:`dashboard.privacy.published_sum`). A total is then a
   function of cells the user already sees, so differencing two totals (a period and the period one month
   shorter; all employers and all but one) yields only published cells.
3. **Relations between reports are rules.** Cells that equal or bound each other across reports are
   blanked together: a utilization measure with the spend cell its events belong to (office visits and
   office-based spend, prescriptions and pharmacy, admissions and inpatient, ER visits and inpatient or
   outpatient); a tier's members with its subscribers (employee + spouse: members = 2 × subscribers);
   a band's share of paid with the year's paid when that total is not published. Distinct counts over
   a period (high-cost claimants) are counted only over fixed periods, calendar years, so overlapping
   windows cannot be differenced.

Within each (employer, month) group, complementary suppression protects the month's totals (which are
published) against the published cells of the group.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from dashboard.metrics import builder as rb
from dashboard.metrics import cost_drivers as cd
from dashboard.metrics import employer as em
from dashboard.metrics import employer_trend as et
from dashboard.metrics.filters import Filters
from dashboard.privacy import Link, SuppressionRule, is_small, published_sum, suppress, suppression_mask

# A raw metric frame by name for some filters (through the report cache when there is one).
RawFrames = Callable[[str, Filters], pd.DataFrame]

KEY = ["employer_id", "month"]

ENROLLMENT_RULE = SuppressionRule(
    # adds and terms go together: with members shown for consecutive months, one could be derived from
    # the other (members change = adds - terms).
    counts={"members": ("member_months",), "subscribers": (), "adds": ("terms",), "terms": ("adds",),
            "member_months": ()},
    group_by=("employer_id", "month"),
    complementary=("members", "subscribers", "adds", "terms", "member_months"),
    # a tier of fixed size fixes members per subscriber (employee only 1, employee + spouse 2); in other
    # tiers (family, employee + children) members only bound subscribers, never reveal them
    linked=(Link(("members", "subscribers", "member_months"), when="fixed_size_tier"),),
    drop=("fixed_size_tier",),
)
# 834 HD05 coverage levels whose members per subscriber are fixed: employee only, individual, employee +
# one (spouse, one dependent, two-party), employee + 2 .. 9 dependents.
FIXED_SIZE_TIERS = frozenset({"EMP", "IND", "ESP", "E1D", "TWO", "E2D", "E3D", "E5D", "E6D", "E7D", "E8D",
                              "E9D"})
SPEND_RULE = SuppressionRule(
    counts={"members_with_claims": ("paid", "allowed", "claims", "pmpm_paid", "pmpm_allowed"),
            "member_months": ("pmpm_paid", "pmpm_allowed")},
    group_by=("employer_id", "month"),
    complementary=("members_with_claims",),
)
UTILIZATION_RULE = SuppressionRule(
    counts={"members_with_events": ("events", "per_1000"), "events": ("per_1000",),
            "member_months": ("per_1000",)},
    linked=(Link(("events", "members_with_events")),),
)
HIGH_COST_RULE = SuppressionRule(
    counts={"claimants": ("paid", "pct_of_paid")},
    group_by=("employer_id",),
    complementary=("claimants",),
)
OUTSIDE_RULE = SuppressionRule(counts={"members_with_claims": ("paid", "allowed", "claims")})
# The month's totals per employer: the parts every period total and summary row is summed from.
MONTH_TOTALS_RULE = SuppressionRule(
    counts={"member_months": (), "subscriber_months": (), "members_with_claims": ("paid", "allowed")},
)

# Cost-driver cells: each dimension's values are parts of the month's paid (service categories 2: of their
# service category's spend cell), protected within those groups like the service categories.
COST_DRIVER_RULE = SuppressionRule(
    counts={"members_with_claims": ("paid", "allowed", "claims")},
    group_by=("employer_id", "month", "dimension", "within"),
    complementary=("members_with_claims",),
    public="is_spend_cell",
    drop=("within", "is_spend_cell"),
)

# Members by age band and gender: parts of the month's member months (published), protected within the month.
DEMOGRAPHIC_RULE = SuppressionRule(
    counts={"members": ("subscribers",), "subscribers": ("members",)},
    group_by=("employer_id", "month"),
    complementary=("members", "subscribers"),
)
# The month's adds and terms over every tier: shown together or not at all (with members shown for consecutive
# months one would give the other away); the tier cells are protected against these totals by ENROLLMENT_RULE.
FLOW_RULE = SuppressionRule(counts={"adds": ("terms",), "terms": ("adds",)})
# 834 maintenances by reason: the people of each (type, reason), protected within the month's type.
ENROLLMENT_CHANGE_RULE = SuppressionRule(
    counts={"people": ()},
    group_by=("employer_id", "month", "maintenance_type"),
    complementary=("people",),
)

# The month's spend by network: parts of the month's paid, like the service categories.
NETWORK_RULE = SuppressionRule(
    counts={"members_with_claims": ("paid", "allowed", "claims", "share_of_paid")},
    group_by=("employer_id", "month"),
    complementary=("members_with_claims",),
)

# The spend categories whose claims a utilization measure counts (its events are some of their claims).
MEASURE_CATEGORIES = {
    "inpatient_admissions": ("inpatient",),
    "inpatient_days": ("inpatient",),
    "er_visits": ("inpatient", "outpatient"),
    "office_visits": ("office-based",),
    "prescriptions": ("pharmacy",),
}


@dataclass(frozen=True)
class Protection:
    """How one employer report is built for a de-identified viewer."""

    rule: SuppressionRule
    build: Callable[[Filters, RawFrames], pd.DataFrame]


canonical_year = em.plan_year  # one definition of the period high-cost claimants are counted over


def _enrollment(f: Filters, raw: RawFrames) -> pd.DataFrame:
    frame = raw("enrollment", f)
    frame = frame.assign(fixed_size_tier=frame["tier"].isin(FIXED_SIZE_TIERS))
    return suppress(frame, ENROLLMENT_RULE)


def _spend(f: Filters, raw: RawFrames) -> pd.DataFrame:
    return suppress(raw("spend", f), SPEND_RULE)


def _outside(f: Filters, raw: RawFrames) -> pd.DataFrame:
    return suppress(raw("spend-outside-enrollment", f), OUTSIDE_RULE)


def _utilization(f: Filters, raw: RawFrames) -> pd.DataFrame:
    util = raw("utilization", f)
    blanked = _blanked_spend_cells(f, raw)
    linked = pd.Series([any((e, m, c) in blanked for c in MEASURE_CATEGORIES.get(measure, ()))
                        for e, m, measure in zip(util["employer_id"], util["month"], util["measure"], strict=True)],
                       index=util.index, dtype=bool)
    also = pd.DataFrame({"events": linked, "members_with_events": linked}, index=util.index)
    return suppress(util, UTILIZATION_RULE, also=also)


def _blanked_spend_cells(f: Filters, raw: RawFrames) -> set[tuple]:
    """The (employer, month, service category) spend cells an employer user sees blanked."""
    spend = raw("spend", f)
    blank = suppression_mask(spend, SPEND_RULE)["members_with_claims"]
    return {key for key, hidden in zip(zip(spend["employer_id"], spend["month"], spend["service_category"],
                                           strict=True), blank, strict=True) if hidden}


def _cost_driver_cells(f: Filters, raw: RawFrames) -> pd.DataFrame:
    """A cell that is, or adds up to, a spend cell (its ``parent``) goes with it: the service categories 2 of a
    blanked service category are blanked (else they would add up to it), and each grouping's pharmacy row, which is
    the pharmacy spend cell, is blanked with it. Complementary suppression runs within each group whose total is
    public; a pharmacy row, public when its spend cell is, is never chosen to protect another."""
    cells = raw("cost-driver-cells", f)
    blanked = _blanked_spend_cells(f, raw)
    linked = pd.Series([(e, m, p) in blanked for e, m, p in
                        zip(cells["employer_id"], cells["month"], cells["parent"], strict=True)], index=cells.index,
                       dtype=bool)
    nested = cells["dimension"] == "service_category_2"
    # the groups whose total is public: a service category's categories 2 (its spend cell), else a whole grouping
    # (the month's paid), the pharmacy row included but never picked to protect another: it is a spend cell
    cells = cells.assign(within=cells["parent"].where(nested, ""), is_spend_cell=~nested & (cells["parent"] != ""))
    return suppress(cells, COST_DRIVER_RULE, also=pd.DataFrame({"members_with_claims": linked}, index=cells.index))


def _network(f: Filters, raw: RawFrames) -> pd.DataFrame:
    return suppress(raw("network", f), NETWORK_RULE)


def _month_totals(f: Filters, raw: RawFrames) -> pd.DataFrame:
    return suppress(raw("month-totals", f), MONTH_TOTALS_RULE)


def _completion(f: Filters, raw: RawFrames) -> pd.DataFrame:
    """Claims completion from the published month totals: a month whose paid is blanked has no paid,
    estimate, PMPM or lag either (the completion factor, a ratio over every month's lag, stays)."""
    totals = _month_totals(f, raw)
    runout = raw("claims-completion", f)[[*KEY, "months_of_runout", "completion", "status", "paid_lag_days",
                                          "paid_so_far"]]
    out = totals.merge(runout, on=KEY, how="left")
    hidden = out["paid"].isna() & (out["status"] != "no data")
    out["estimated_paid"] = [_ratio(p, c) for p, c in zip(out["paid"], out["completion"], strict=True)]
    out["pmpm_paid"] = [_ratio(p, m) for p, m in zip(out["paid"], out["member_months"], strict=True)]
    out["estimated_pmpm_paid"] = [_ratio(p, m) for p, m in zip(out["estimated_paid"], out["member_months"],
                                                                 strict=True)]
    out["claims_lag_days"] = [None if h else _ratio(days, paid) for h, days, paid in
                              zip(hidden, out["paid_lag_days"], out["paid_so_far"], strict=True)]
    out["suppressed"] = out["suppressed"] | hidden
    return out.drop(columns=["paid_lag_days", "paid_so_far"])


def _high_cost(f: Filters, raw: RawFrames) -> pd.DataFrame:
    year = canonical_year(f)
    bands = raw("high-cost-claimants", year)
    totals = _month_totals(year, raw)
    # pct_of_paid × the year's paid = the band's paid: the share is shown only where that total is
    # itself a sum of published months, else the total (and from it a hidden month) could be derived.
    year_published = {e: published_sum(rows["paid"]) is not None for e, rows in totals.groupby("employer_id")}
    hidden_total = bands["employer_id"].map(lambda e: not year_published.get(e, True)).astype(bool)
    also = pd.DataFrame({"pct_of_paid": hidden_total}, index=bands.index)
    return suppress(bands, HIGH_COST_RULE, also=also)


def _summary(f: Filters, raw: RawFrames) -> pd.DataFrame:
    totals = _month_totals(f, raw)
    network = _network(f, raw)
    stays = _utilization(f, raw)
    # members over $50k: the bands' total, shown unless small; complementary suppression among the bands
    # already protects a blanked band against this total
    bands = raw("high-cost-claimants", canonical_year(f)).groupby("employer_id")["claimants"].sum()
    rows = []
    for employer, months in totals.groupby("employer_id", sort=True):
        last = months[months["month"] == f.end]
        covered = months[months["claims_data"] == 1]  # money of months without claims data is unknown, not 0
        net = network[(network["employer_id"] == employer) & network["month"].isin(covered["month"])]
        util = stays[(stays["employer_id"] == employer) & stays["month"].isin(covered["month"])]
        rows.append({
            "employer_id": employer,
            "members": last["member_months"].iloc[0] if len(last) else 0,
            "subscribers": last["subscriber_months"].iloc[0] if len(last) else 0,
            "member_months": published_sum(months["member_months"]),
            "subscriber_months": published_sum(months["subscriber_months"]),
            "claims_months": len(covered),
            "claims_member_months": published_sum(covered["member_months"]),
            "claims_subscriber_months": published_sum(covered["subscriber_months"]),
            "paid": published_sum(covered["paid"]),
            "allowed": published_sum(covered["allowed"]),
            "in_network_paid": published_sum(net.loc[net["network"] == "in", "paid"]),
            "network_known_paid": published_sum(net.loc[net["network"] != "unknown", "paid"]),
            "inpatient_admissions": published_sum(util.loc[util["measure"] == "inpatient_admissions", "events"]),
            "inpatient_days": published_sum(util.loc[util["measure"] == "inpatient_days", "events"]),
            "high_cost_claimants": _unless_small(int(bands.get(employer, 0))),
        })
    if len(rows) > 1:
        rows.append({"employer_id": "all", **{col: published_sum(row[col] for row in rows)
                                              for col in rows[0] if col != "employer_id"}})
    out = pd.DataFrame(rows, columns=["employer_id", "members", "subscribers", "member_months", "subscriber_months",
                                      "claims_months", "claims_member_months", "claims_subscriber_months", "paid",
                                      "allowed", "in_network_paid", "network_known_paid", "inpatient_admissions",
                                      "inpatient_days", "high_cost_claimants"])
    blank = out.isna()  # what suppression took (a count in a month, and so every total it is part of)
    no_data = pd.Series([c == 0 for c in out["claims_member_months"]], index=out.index)
    for col in ("paid", "allowed"):  # a period without claims data: "no data", not suppressed, never 0
        out[col] = out[col].astype(object).where(~no_data, None)
    pairs = {"pmpm_paid": ("paid", "claims_member_months"), "pmpm_allowed": ("allowed", "claims_member_months"),
             "pepm_paid": ("paid", "claims_subscriber_months"),
             "in_network_share": ("in_network_paid", "network_known_paid"),
             "average_length_of_stay": ("inpatient_days", "inpatient_admissions")}
    for name, (num, den) in pairs.items():
        out[name] = [_ratio(n, d) for n, d in zip(out[num], out[den], strict=True)]
        blank[name] = blank[num] | blank[den]
    out = out.astype(object).where(out.notna(), None)
    out["suppressed"] = blank.any(axis=1)
    return out


def _unless_small(count: int) -> int | None:
    return None if is_small(pd.Series([count])).iloc[0] else count


def _ratio(numerator, denominator) -> float | None:
    if numerator is None or denominator is None or pd.isna(numerator) or pd.isna(denominator) or not denominator:
        return None
    return float(numerator) / float(denominator)


ENROLLMENT = Protection(ENROLLMENT_RULE, _enrollment)
SPEND = Protection(SPEND_RULE, _spend)
UTILIZATION = Protection(UTILIZATION_RULE, _utilization)
HIGH_COST = Protection(HIGH_COST_RULE, _high_cost)
OUTSIDE = Protection(OUTSIDE_RULE, _outside)
SUMMARY = Protection(MONTH_TOTALS_RULE, _summary)
NETWORK = Protection(NETWORK_RULE, _network)
COMPLETION = Protection(MONTH_TOTALS_RULE, _completion)
MONTH_TOTALS = Protection(MONTH_TOTALS_RULE, _month_totals)  # the parts period totals are summed from



# the frames an employer user's trend is summed from: the published ones, so the comparison is a function of
# cells they already see (dashboard.metrics.employer_trend)
_TREND_FRAMES = {"month-totals": MONTH_TOTALS, "spend": SPEND, "utilization": UTILIZATION}


def _trend(f: Filters, raw: RawFrames) -> pd.DataFrame:
    return et.employer_trend(f, lambda name, g: _TREND_FRAMES[name].build(g, raw), deidentified=True)


# nothing of its own to suppress: every figure is a sum of published cells, blank when a part is
TREND = Protection(SuppressionRule(counts={}), _trend)


_COST_DRIVER_CELLS = Protection(COST_DRIVER_RULE, _cost_driver_cells)
_COST_DRIVER_FRAMES = {"cost-driver-cells": _COST_DRIVER_CELLS, "high-cost-claimants": HIGH_COST,
                       "month-totals": MONTH_TOTALS}


def _cost_drivers(f: Filters, raw: RawFrames) -> pd.DataFrame:
    return cd.cost_drivers(f, lambda name, g: _COST_DRIVER_FRAMES[name].build(g, raw), deidentified=True)


COST_DRIVERS = Protection(SuppressionRule(counts={}), _cost_drivers)


DEMOGRAPHICS = Protection(DEMOGRAPHIC_RULE, lambda f, raw: suppress(raw("demographics", f), DEMOGRAPHIC_RULE))
ENROLLMENT_CHANGES = Protection(ENROLLMENT_CHANGE_RULE,
                                lambda f, raw: suppress(raw("enrollment-changes", f), ENROLLMENT_CHANGE_RULE))

_BUILDER_FRAMES = {"month-totals": MONTH_TOTALS,
                   "enrollment": ENROLLMENT, "spend": SPEND, "utilization": UTILIZATION,
                   "cost-driver-cells": _COST_DRIVER_CELLS,
                   "enrollment-flow": Protection(FLOW_RULE, lambda f, raw: suppress(raw("enrollment-flow", f),
                                                                                     FLOW_RULE)),
                   "demographics": DEMOGRAPHICS}


def _builder(f: Filters, raw: RawFrames) -> pd.DataFrame:
    return rb.build(f, lambda name, g: _BUILDER_FRAMES[name].build(g, raw), deidentified=True)


BUILDER = Protection(SuppressionRule(counts={}), _builder)
