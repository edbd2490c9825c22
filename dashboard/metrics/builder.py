"""The employer report builder (issue 13 item 6): one measure by one grouping over a period, against a comparison
period, for the selected employers together.

Every figure is a sum of the cells the viewer is shown (for an employer user the suppressed frames of
:mod:`dashboard.deidentified`, as :mod:`dashboard.metrics.employer_trend`), then a ratio; money and events are
summed over the months with claims data only ("no data" is not zero). A measure is offered by the groupings
whose cells carry it: money by month, quarter, service category and condition group; events by month and
quarter; enrollment by month, quarter, plan, tier, age band and gender (the warehouse keeps no spend by plan,
tier or age).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import pandas as pd

from dashboard.metrics import groupers as g
from dashboard.metrics.employer_trend import NO_DATA, ViewerFrames, known, ratio, total
from dashboard.metrics.filters import Filters, add_months, months_between


@dataclass(frozen=True)
class Measure:
    label: str
    numerator: str  # paid | allowed | events:<measure> | member_months
    denominator: str | None  # member_months | subscriber_months | months | None (a sum)
    unit: str  # money | number
    scale: float = 1.0


MEASURES: dict[str, Measure] = {
    "pmpm_paid": Measure("PMPM paid", "paid", "member_months", "money"),
    "pmpm_allowed": Measure("PMPM allowed", "allowed", "member_months", "money"),
    "pepm_paid": Measure("PEPM paid", "paid", "subscriber_months", "money"),
    "paid": Measure("Paid", "paid", None, "money"),
    "allowed": Measure("Allowed", "allowed", None, "money"),
    "er_visits_per_1000": Measure("ER visits per 1,000", "events:er_visits", "member_months", "number", 12_000),
    "admissions_per_1000": Measure("Admissions per 1,000", "events:inpatient_admissions", "member_months", "number",
                                   12_000),
    "office_visits_per_1000": Measure("Office visits per 1,000", "events:office_visits", "member_months", "number",
                                      12_000),
    "prescriptions_per_1000": Measure("Prescriptions per 1,000", "events:prescriptions", "member_months", "number",
                                      12_000),
    "member_months": Measure("Member months", "member_months", None, "number"),
    "average_members": Measure("Average members", "member_months", "months", "number"),
    "dependents_per_subscriber": Measure("Dependents per subscriber", "dependent_months", "subscriber_months",
                                         "number"),
    "adds": Measure("Adds (members whose coverage began)", "adds", None, "number"),
    "terms": Measure("Terms (members whose coverage ended)", "terms", None, "number"),
}
GROUPINGS = {"month": "Month", "quarter": "Quarter", "service_category": "Service category",
             "condition_group": "Condition group", "plan": "Plan", "tier": "Coverage tier", "age_band": "Age band",
             "gender": "Gender"}
COMPARISONS = {"prior": "the period of equal length before", "year": "the same months a year earlier",
               "none": "no comparison"}
MONEY = ("paid", "allowed")
ENROLLMENT_MEASURES = ("member_months", "average_members", "dependents_per_subscriber")
# which groupings carry each kind of measure
SUPPORTS = {"money": ("month", "quarter", "service_category", "condition_group"),
            "events": ("month", "quarter"), "enrollment": ("month", "quarter", "plan", "tier", "age_band", "gender"),
            "flow": ("month", "quarter")}
COLUMNS = ("employer_id", "measure", "by", "group", "label", "current", "numerator", "denominator", "period",
           "base_group", "base", "base_period", "change", "change_pct")


def kind(measure: str) -> str:
    m = MEASURES[measure]
    if measure in ("adds", "terms"):
        return "flow"
    if measure in ENROLLMENT_MEASURES:
        return "enrollment"
    return "events" if m.numerator.startswith("events:") else "money"


def supported(measure: str, by: str) -> bool:
    return by in SUPPORTS[kind(measure)]


def comparison_period(f: Filters, compare: str) -> Filters | None:
    if compare == "none":
        return None
    shift = -f.months if compare == "prior" else -12
    return Filters(start=add_months(f.start, shift), end=add_months(f.end, shift), employer_ids=f.employer_ids)


def _quarter(month: str) -> str:
    return f"{month[:4]}-Q{(int(month[5:7]) - 1) // 3 + 1}"


def _month_key(value) -> str:
    return value.strftime("%Y-%m") if hasattr(value, "strftime") else str(value)


def _cells(f: Filters, frames: ViewerFrames, measure: str, by: str) -> tuple[dict[str, dict[str, object]], dict]:
    """{group: {numerator/denominator name: sum over the selection}}, and what a group absent from this period
    has (none of the measure, over the period's denominators; {} when the period has no data)."""
    m = MEASURES[measure]
    totals = frames("month-totals", f)
    totals = totals.assign(month=[_month_key(v) for v in totals["month"]])
    covered = {(e, mo) for e, mo, has in zip(totals["employer_id"], totals["month"], totals["claims_data"],
                                             strict=True) if has == 1}  # the employer-months with claims data
    out: dict[str, dict[str, list]] = {}

    def add(group: str, name: str, value: object) -> None:
        out.setdefault(group, {}).setdefault(name, []).append(value)

    def group_of(month: str) -> str:
        return month if by == "month" else _quarter(month)

    absent: dict[str, object] = {}
    if by in ("month", "quarter"):  # every month of the period is a row, "no data" where nothing is known
        for month in _months(f):
            out.setdefault(group_of(month), {})
    if kind(measure) == "flow":  # the month's adds and terms, published together or not at all
        for row in frames("enrollment-flow", f).itertuples(index=False):
            add(group_of(_month_key(row.month)), m.numerator, getattr(row, m.numerator))
    elif kind(measure) == "enrollment":
        if by in ("month", "quarter"):
            for row in totals.itertuples(index=False):
                add(group_of(row.month), "member_months", row.member_months)
                add(group_of(row.month), "subscriber_months", row.subscriber_months)
                add(group_of(row.month), "dependent_months", _difference(row.member_months, row.subscriber_months))
                add(group_of(row.month), "months", 1)
        else:  # plan and tier from the enrollment grid, age band and gender from the demographic one
            cells = frames("enrollment" if by in ("plan", "tier") else "demographics", f)
            for row in cells.itertuples(index=False):
                members = row.member_months if by in ("plan", "tier") else row.members
                add(getattr(row, by), "member_months", members)
                add(getattr(row, by), "subscriber_months", row.subscribers)
                add(getattr(row, by), "dependent_months", _difference(members, row.subscribers))
            for group in out:  # the average over the period's months
                out[group]["months"] = [f.months]
            absent = {"member_months": 0, "subscriber_months": 0, "dependent_months": 0, "months": f.months}
    else:
        # denominators: the member (subscriber) months of the employer-months with claims data
        keep = [(e, mo) in covered for e, mo in zip(totals["employer_id"], totals["month"], strict=True)]
        with_data = totals[pd.Series(keep, index=totals.index, dtype=bool)]  # (an empty list would pick columns)
        if by in ("month", "quarter"):
            for row in with_data.itertuples(index=False):
                add(group_of(row.month), "member_months", row.member_months)
                add(group_of(row.month), "subscriber_months", row.subscriber_months)
            if m.numerator in MONEY:
                for row in with_data.itertuples(index=False):
                    add(group_of(row.month), m.numerator, getattr(row, m.numerator))
            else:
                util = frames("utilization", f)
                event = m.numerator.split(":", 1)[1]
                for row in util[util["measure"] == event].itertuples(index=False):
                    month = _month_key(row.month)
                    if (row.employer_id, month) in covered:
                        add(group_of(month), m.numerator, row.events)
        else:
            mm = total(with_data["member_months"])
            sm = total(with_data["subscriber_months"])
            if by == "service_category":
                cells = frames("spend", f)
                column = "service_category"
            else:
                cells = frames("cost-driver-cells", f)
                cells = cells[cells["dimension"] == "condition_group"]
                column = "value"
            for row in cells.itertuples(index=False):
                if (row.employer_id, _month_key(row.month)) in covered:
                    add(getattr(row, column), m.numerator, getattr(row, m.numerator))
            for group in out:
                out[group]["member_months"] = [mm]
                out[group]["subscriber_months"] = [sm]
            if len(with_data):
                absent = {m.numerator: 0, "member_months": mm, "subscriber_months": sm}
    sums = {group: {name: total(values) for name, values in parts.items()} for group, parts in out.items()}
    for parts in sums.values():  # a month with claims data and no such claims (or events) has 0 of them
        if "member_months" in parts and kind(measure) != "enrollment":
            parts.setdefault(m.numerator, 0)
    return sums, absent


def _difference(whole: object, part: object) -> object:
    """whole − part of two published counts (blank when either is)."""
    return None if not known(whole) or not known(part) else whole - part


def _months(f: Filters) -> list[str]:
    return [f"{add_months(f.start, i):%Y-%m}" for i in range(f.months)]


def _shifted(group: str, by: str, months: int) -> str:
    """The comparison period's group in the place of ``group`` (a month or quarter ``months`` earlier)."""
    first = group if by == "month" else f"{group[:4]}-{(int(group[-1]) - 1) * 3 + 1:02d}"
    moved = add_months(dt.date(int(first[:4]), int(first[5:7]), 1), months)
    return f"{moved:%Y-%m}" if by == "month" else _quarter(f"{moved:%Y-%m}")


def _ordered(sums: dict, by: str) -> list:
    if by in ("month", "quarter", "plan", "tier"):
        return sorted(sums)
    if by in ("age_band", "gender"):
        order = {name: i for i, name in enumerate([b[0] for b in g.AGE_BANDS] + list(g.GENDERS))}
        return sorted(sums, key=lambda k: (order.get(k, len(order)), k))
    if by == "condition_group":
        order = {code: i for i, (code, *_rest) in enumerate(g.CONDITION_GROUPS)}
    else:
        from dashboard.metrics.definitions import SERVICE_CATEGORIES
        order = {c: i for i, c in enumerate(SERVICE_CATEGORIES)}
    return sorted(sums, key=lambda k: (order.get(k, len(order)), k))


def _value(parts: dict[str, object], m: Measure) -> tuple[object, object, object]:
    numerator = parts.get(m.numerator, NO_DATA)
    if m.denominator is None:
        return numerator, numerator, None
    denominator = parts.get(m.denominator, NO_DATA)
    return ratio(numerator, denominator, m.scale), numerator, denominator


def _label(by: str, group: str) -> str:
    if by == "condition_group":
        return g.CONDITION_NAMES.get(group, group)
    return group


def build(f: Filters, frames: ViewerFrames, *, deidentified: bool) -> pd.DataFrame:
    """The builder's table: per group of the period, the measure, its numerator and denominator, and (unless
    the comparison is 'none') the comparison period's group in the same place (month i against month i, the same
    category against itself) with the change."""
    measure, by, compare = f.option("measure"), f.option("by"), f.option("compare")
    m = MEASURES[measure]
    plain = replace(f, options=())  # the frames read are the catalog's, whatever was asked of the builder
    columns = [*COLUMNS, *(["suppressed"] if deidentified else [])]
    if not supported(measure, by):
        return pd.DataFrame(columns=columns)
    now, now_absent = _cells(plain, frames, measure, by)
    base_f = comparison_period(plain, compare)
    before, before_absent = _cells(base_f, frames, measure, by) if base_f else ({}, {})
    positional = by in ("month", "quarter")
    shift = months_between(base_f.start, plain.start) if base_f else 0
    groups = _ordered(now if positional else {**before, **now}, by)
    rows = []
    for group in groups:
        value, numerator, denominator = _value(now.get(group, now_absent), m)
        if base_f is None:
            base_group, base_value = None, NO_DATA
        else:
            base_group = _shifted(group, by, shift) if positional else group
            base_value = _value(before.get(base_group, {} if positional else before_absent), m)[0]
        both = known(value) and known(base_value)
        rows.append({"employer_id": "+".join(f.employer_ids) if f.employer_ids else "all", "measure": measure,
                     "by": by, "group": group, "label": _label(by, group), "current": value,
                     "numerator": numerator, "denominator": denominator,
                     "period": f"{f.start:%Y-%m}..{f.end:%Y-%m}", "base_group": base_group, "base": base_value,
                     "base_period": f"{base_f.start:%Y-%m}..{base_f.end:%Y-%m}" if base_f else None,
                     "change": float(value) - float(base_value) if both else None,
                     "change_pct": (float(value) - float(base_value)) / abs(float(base_value))
                     if both and base_value else None,
                     "suppressed": value is None or base_value is None})
    out = pd.DataFrame(rows, columns=columns)
    for col in ("current", "numerator", "denominator", "base", "change"):
        out[col] = [round(float(v), 2) if known(v) else None for v in out[col]]
    return out
