"""The KPI registry: every rate the product shows, defined once (after Superset's ``SqlMetric``).

A :class:`Kpi` names its numerator and denominator: columns of the sums the marts keep per practice (or
employer) and month (:data:`dashboard.warehouse.semantic.PRACTICE_MONTH_MEASURES`, or derived sums in
:data:`DERIVED`). The monthly series, the period summary (Σ numerator ÷ Σ denominator, never a mean of
monthly rates), report columns and their rounding, the page's cards with their benchmark bands and the
formula and source shown to the user, and the README's KPI table all come from here. Adding a KPI whose
sums the marts already keep is one entry here and its test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pandas as pd

from dashboard.metrics._query import ratio

# Sums computed from the mart's sums before any ratio (same for a month and for a period).
DERIVED: Mapping[str, Callable[[pd.DataFrame], pd.Series]] = {
    "payments": lambda f: f["payer_payments"] + f["patient_payments"],
    "net_payments": lambda f: f["payer_payments"] + f["patient_payments"] - f["refunds"],
    # undefined (not zero) when contractual adjustments reach the charges, e.g. a month without new charges
    "net_charges": lambda f: (f["charges"] - f["contractual_adjustments"]).where(
        f["charges"] - f["contractual_adjustments"] > 0),
}


@dataclass(frozen=True)
class Kpi:
    name: str  # report column
    label: str
    numerator: str
    denominator: str
    unit: str  # rate (0-1) | days | money
    formula: str
    source: str
    higher_is_better: bool | None = None
    good: float | None = None  # at or better than this: good
    warn: float | None = None  # at or better than this (and worse than good): watch; beyond: act
    benchmark: str = ""
    scale: float = 1.0
    at_period_end: bool = False  # a balance at the end of the period, not a flow over it
    audience: str = "practice"
    card: bool = True  # shown as a card on its page (in registry order)

    @property
    def decimals(self) -> int:
        return {"rate": 4, "days": 1, "money": 2}[self.unit]

    def compute(self, sums: pd.DataFrame) -> pd.Series:
        """The KPI for each row of ``sums`` (a month, a period, an 'all' row): Σ numerator ÷ Σ denominator."""
        return ratio(_column(sums, self.numerator) * self.scale, _column(sums, self.denominator))

    def format(self, value: float | None) -> str:
        if value is None or pd.isna(value):
            return "—"
        if self.unit == "rate":
            return f"{value:.1%}"
        if self.unit == "money":
            return f"${value:,.2f}"
        return f"{value:,.1f}"

    def status(self, value: float | None) -> str:
        """'good', 'warn', 'bad' against the benchmark bands; '' without bands or a value."""
        if value is None or pd.isna(value) or self.good is None or self.warn is None:
            return ""
        sign = 1 if self.higher_is_better else -1
        if sign * value >= sign * self.good:
            return "good"
        return "warn" if sign * value >= sign * self.warn else "bad"


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return pd.to_numeric(frame[name], errors="coerce")
    return DERIVED[name](frame)


PRACTICE_KPIS: tuple[Kpi, ...] = (
    Kpi("days_in_ar", "Days in A/R", "ar_balance", "average_daily_charges", "days",
        "A/R at the month end ÷ average daily gross charges of the 3 months ending then (their charges ÷ their days)",
        "AAFP; HFMA MAP key \"net days in A/R\"", higher_is_better=False, good=40, warn=50,
        benchmark="< 50; 30–40 preferred", at_period_end=True),
    Kpi("ar_over_90_pct", "A/R over 90 days", "ar_over_90", "ar_balance", "rate",
        "A/R from dates of service more than 90 days before the month end ÷ A/R (both net of credits)",
        "kpi-reference (vendor guidance)", higher_is_better=False, good=0.15, warn=0.25, benchmark="10–20%",
        at_period_end=True),
    Kpi("net_collection_rate", "Net collection rate", "net_payments", "net_charges", "rate",
        "(payments − refunds) ÷ (charges − contractual adjustments), same months for both",
        "MGMA adjusted FFS collection %", higher_is_better=True, good=0.95, warn=0.90, benchmark="≥ 95%"),
    Kpi("clean_claim_rate", "Clean-claim rate", "accepted", "acknowledged", "rate",
        "claims accepted on the clearinghouse's first answer (277CA) ÷ claims with a first answer",
        "HFMA MAP key CL-1", higher_is_better=True, good=0.95, warn=0.90, benchmark="≥ 95%"),
    Kpi("denial_rate", "Denial rate", "denied", "adjudicated", "rate",
        "claims denied on their first adjudication (CLP02 4, or nothing paid with a denial CAS) ÷ claims first "
        "adjudicated, by month of the first 835", "HFMA claim-integrity task force (2020)",
        higher_is_better=False, good=0.05, warn=0.10, benchmark="< 5% good, 5–10% typical"),
    Kpi("denial_rate_dollars", "Denial rate ($)", "charges_denied", "charges_adjudicated", "rate",
        "charges of claims denied on first adjudication ÷ charges first adjudicated", "HFMA",
        higher_is_better=False, good=0.05, warn=0.10, benchmark="< 5% good, 5–10% typical", card=False),
    Kpi("first_pass_resolution_rate", "First-pass resolution", "resolved_first_pass", "adjudicated", "rate",
        "claims accepted on first submission and not denied on first adjudication ÷ claims first adjudicated",
        "industry practice (kpi-reference)", higher_is_better=True, good=0.90, warn=0.85, benchmark="≥ 90%"),
    Kpi("gross_collection_rate", "Gross collection rate", "payments", "charges", "rate",
        "payments ÷ gross charges, same months", "MGMA", benchmark="depends on the fee schedule"),
    Kpi("average_days_to_payment", "Average days to payment", "days_to_payment_total", "claims_paid", "days",
        "mean of first 835 payment date (BPR16) − first 837 submission, over claims first paid in the month",
        "kpi-reference", card=False),
    Kpi("verification_rate", "Insurance verification rate", "verified", "checks", "rate",
        "270 checks answered active or inactive ÷ checks, by month of service", "HFMA MAP key", card=False),
)

EMPLOYER_KPIS: tuple[Kpi, ...] = (
    Kpi("pmpm_paid", "PMPM paid", "paid", "member_months", "money",
        "Σ paid of claims in enrolled months ÷ member months", "Tuva financial_pmpm", audience="employer"),
    Kpi("pmpm_allowed", "PMPM allowed", "allowed", "member_months", "money",
        "Σ allowed of claims in enrolled months ÷ member months", "Tuva financial_pmpm", audience="employer"),
    Kpi("pepm_paid", "PEPM paid", "paid", "subscriber_months", "money",
        "Σ paid of claims in enrolled months ÷ subscriber (employee) months", "industry practice",
        audience="employer"),
    Kpi("per_1000", "Utilization per 1,000", "events", "member_months", "days",
        "events ÷ member months × 12,000", "Tuva Project", scale=12_000, audience="employer"),
)

KPIS: dict[str, Kpi] = {k.name: k for k in (*PRACTICE_KPIS, *EMPLOYER_KPIS)}


def with_kpis(sums: pd.DataFrame, kpis: tuple[Kpi, ...] = PRACTICE_KPIS) -> pd.DataFrame:
    """``sums`` with each KPI's column added (rows may be months, periods or an 'all' row)."""
    out = sums.copy()
    for name in ("payments",):
        if name not in out.columns and {"payer_payments", "patient_payments"} <= set(out.columns):
            out[name] = DERIVED[name](out)
    for kpi in kpis:
        needed = [c for c in (kpi.numerator, kpi.denominator) if c not in DERIVED]
        if all(c in out.columns for c in needed):
            out[kpi.name] = kpi.compute(out)
    return out


def markdown_table(kpis: tuple[Kpi, ...] = (*PRACTICE_KPIS, *EMPLOYER_KPIS)) -> str:
    """The README's KPI table, from the registry."""
    lines = ["| KPI | column | formula | benchmark | source |", "|---|---|---|---|---|"]
    for k in kpis:
        lines.append(f"| {k.label} | `{k.name}` | {k.formula} | {k.benchmark or '—'} | {k.source} |")
    return "\n".join(lines)
