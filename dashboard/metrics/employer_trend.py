"""Current period against its base: the employer trend (issue 13 item 2), one formula for every viewer.

The base period is the one of equal length just before the period (Jan–Jun against Jul–Dec of the year
before for a half year). Every figure is a sum of the cells the viewer is shown — for an employer user the
suppressed frames of :mod:`dashboard.deidentified`, for an admin the raw ones — over the months with claims
data, then a ratio (Σ paid ÷ Σ member months, never a mean of monthly rates). A sum with a blanked part is
blanked (:func:`dashboard.privacy.published_sum`), so a comparison is a function of published cells and can
reveal nothing the user could not already add up; a period without claims data is "no data", never 0.
Sources: kpi-reference (PMPM, PEPM, per 1,000; Springbuk/Artemis current-vs-prior comparisons).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pandas as pd

from dashboard.metrics import definitions as d
from dashboard.metrics.filters import Filters, add_months
from dashboard.privacy import published_sum

# A viewer's frame by name ("month-totals", "spend", "utilization", ...) for filters.
ViewerFrames = Callable[[str, Filters], pd.DataFrame]

MEDICAL = tuple(c for c in d.SERVICE_CATEGORIES if c != "pharmacy")
UTILIZATION = ("er_visits", "inpatient_admissions", "office_visits", "prescriptions")
COLUMNS = ("employer_id", "measure", "category", "period", "base_period", "current", "base", "change", "change_pct",
           "paid", "base_paid")


class _NoData:
    """No claims data behind a sum: unknown, which is neither zero nor suppressed."""

    def __repr__(self) -> str:
        return "NO_DATA"


NO_DATA = _NoData()


def base_period(f: Filters) -> Filters:
    """The period of equal length just before ``f``."""
    return Filters(start=add_months(f.start, -f.months), end=add_months(f.start, -1), practice_ids=f.practice_ids,
                   employer_ids=f.employer_ids)


def _label(f: Filters) -> str:
    return f"{f.start:%Y-%m}..{f.end:%Y-%m}"


def known(value: object) -> bool:
    return value is not None and value is not NO_DATA and not (isinstance(value, float) and value != value)


@dataclass
class _Sums:
    """One employer's (or the selection's) sums over a period: a number, None (a blanked part) or NO_DATA."""

    values: dict[str, object]

    def get(self, name: str) -> object:
        return self.values.get(name, NO_DATA)


def total(values: Iterable[object]) -> object:
    """published_sum over a period's cells with claims data: None when one is blanked (NaN counts as blanked)."""
    values = [None if isinstance(v, float) and v != v else v for v in values]
    return published_sum(values)


def _employer_sums(f: Filters, frames: ViewerFrames) -> dict[str, _Sums]:
    """Each employer's sums over ``f`` from the month totals, spend and utilization cells: money, events and the
    member (subscriber) months they are over come from the months with claims data only."""
    totals = frames("month-totals", f)
    spend = frames("spend", f)
    util = frames("utilization", f)
    out: dict[str, _Sums] = {}
    for employer, rows in totals.groupby("employer_id", sort=True):
        covered = rows[rows["claims_data"] == 1]
        months = set(covered["month"])
        values: dict[str, object] = {"member_months": total(rows["member_months"])}
        if months:  # each a sum of published cells (a rate over blanked member months is blanked by _ratio)
            values["claims_member_months"] = total(covered["member_months"])
            values["claims_subscriber_months"] = total(covered["subscriber_months"])
            paid = values["paid:total"] = total(covered["paid"])
            cells = spend[(spend["employer_id"] == employer) & spend["month"].isin(months)]
            for category in d.SERVICE_CATEGORIES:
                values[f"paid:{category}"] = total(cells.loc[cells["service_category"] == category, "paid"])
            values["paid:medical"] = _medical(total(cells.loc[cells["service_category"] != "pharmacy", "paid"]),
                                              paid, values["paid:pharmacy"])
            events = util[(util["employer_id"] == employer) & util["month"].isin(months)]
            for measure in (*UTILIZATION, "inpatient_days"):
                values[f"events:{measure}"] = total(events.loc[events["measure"] == measure, "events"])
            values["inpatient_days"] = values.pop("events:inpatient_days")
            values["inpatient_admissions"] = values["events:inpatient_admissions"]
        else:  # enrolled without claims data: money and events unknown, never 0
            values["claims_member_months"] = NO_DATA
        out[employer] = _Sums(values)
    return out


def _medical(categories: object, total: object, pharmacy: object) -> object:
    """Medical paid: the sum of the medical categories, or, when one is blanked, total − pharmacy if both are
    published (then it is known already, so showing it reveals nothing; blanking it would only pretend to)."""
    if categories is not None or not (known(total) and known(pharmacy)):
        return categories
    return float(total) - float(pharmacy)


def _selection(sums: dict[str, _Sums]) -> _Sums:
    """The selection's sums: each employer's, over the employers with claims data in the period (an employer
    without any is in neither side of a rate, as the page's cards count); blanked when a part is."""
    with_data = [s for s in sums.values() if s.get("claims_member_months") is not NO_DATA]
    names = {name for s in sums.values() for name in s.values}
    values: dict[str, object] = {"member_months": total(s.get("member_months") for s in sums.values())}
    for name in names - {"member_months"}:
        values[name] = total(s.get(name) for s in with_data) if with_data else NO_DATA
    return _Sums(values)


def ratio(numerator: object, denominator: object, scale: float = 1.0) -> object:
    if numerator is None or denominator is None:  # a blanked part: the reason nothing shows
        return None
    if numerator is NO_DATA or denominator is NO_DATA:
        return NO_DATA
    return float(numerator) / float(denominator) * scale if denominator else NO_DATA


# (measure, category) -> its value from a period's sums (months: the period's length)
MEASURES: dict[tuple[str, str], Callable[[_Sums, int], object]] = {
    ("pmpm_paid", "total"): lambda s, n: ratio(s.get("paid:total"), s.get("claims_member_months")),
    ("pmpm_paid", "medical"): lambda s, n: ratio(s.get("paid:medical"), s.get("claims_member_months")),
    **{("pmpm_paid", c): (lambda s, n, c=c: ratio(s.get(f"paid:{c}"), s.get("claims_member_months")))
       for c in d.SERVICE_CATEGORIES},
    ("pepm_paid", "total"): lambda s, n: ratio(s.get("paid:total"), s.get("claims_subscriber_months")),
    **{("per_1000", m): (lambda s, n, m=m: ratio(s.get(f"events:{m}"), s.get("claims_member_months"), 12_000))
       for m in UTILIZATION},
    ("average_length_of_stay", "inpatient"): lambda s, n: ratio(s.get("inpatient_days"),
                                                                  s.get("inpatient_admissions")),
    ("average_members", "total"): lambda s, n: ratio(s.get("member_months"), n),
    ("member_months", "total"): lambda s, n: s.get("member_months"),
}
# the dollars behind a PMPM row (its paid in each period)
PAID_OF = {("pmpm_paid", "total"): "paid:total", ("pmpm_paid", "medical"): "paid:medical",
           **{("pmpm_paid", c): f"paid:{c}" for c in d.SERVICE_CATEGORIES}}


def employer_trend(f: Filters, frames: ViewerFrames, *, deidentified: bool) -> pd.DataFrame:
    """PMPM (total, medical, pharmacy and each service category), PEPM, utilization per 1,000, average length of
    stay, average members and member months of the period against its base (:func:`base_period`): the change
    in the measure's unit and in % of the base, and the dollars behind each PMPM. Per employer, and for the
    selection ('all') when there are several. For a de-identified viewer, ``suppressed`` marks rows with a
    blanked side; "no data" sides are empty without it."""
    base = base_period(f)
    now, before = _employer_sums(f, frames), _employer_sums(base, frames)
    keys = sorted(set(now) | set(before))
    groups = [(e, now.get(e, _Sums({})), before.get(e, _Sums({}))) for e in keys]
    if len(keys) > 1:
        groups.append(("all", _selection(now), _selection(before)))
    rows = []
    for employer, current_sums, base_sums in groups:
        for (measure, category), value_of in MEASURES.items():
            current, prior = value_of(current_sums, f.months), value_of(base_sums, base.months)
            paid_name = PAID_OF.get((measure, category))
            paid = current_sums.get(paid_name) if paid_name else NO_DATA
            base_paid = base_sums.get(paid_name) if paid_name else NO_DATA
            both = known(current) and known(prior)
            row = {"employer_id": employer, "measure": measure, "category": category, "period": _label(f),
                   "base_period": _label(base), "current": current, "base": prior,
                   "change": float(current) - float(prior) if both else None,
                   "change_pct": (float(current) - float(prior)) / abs(float(prior)) if both and prior else None,
                   "paid": paid, "base_paid": base_paid}
            if deidentified:
                row["suppressed"] = any(row[c] is None for c in ("current", "base", "paid", "base_paid"))
            rows.append(row)
    out = pd.DataFrame(rows, columns=[*COLUMNS, *(["suppressed"] if deidentified else [])])
    for col in ("current", "base", "paid", "base_paid", "change"):  # cents, and hundredths of a visit
        out[col] = [round(float(v), 2) if known(v) else None for v in out[col]]
    return out
