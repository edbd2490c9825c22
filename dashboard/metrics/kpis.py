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
from dashboard.metrics.filters import add_months

# Sums computed from the mart's sums before any ratio (same for a month and for a period).
DERIVED: Mapping[str, Callable[[pd.DataFrame], pd.Series]] = {
    "payments": lambda f: f["payer_payments"] + f["patient_payments"],
    "net_payments": lambda f: f["payer_payments"] + f["patient_payments"] - f["refunds"],
    # undefined (not zero) when contractual adjustments reach the charges, e.g. a month without new charges
    "net_charges": lambda f: (f["charges"] - f["contractual_adjustments"]).where(
        f["charges"] - f["contractual_adjustments"] > 0),
    # cash received from payers: Σ CLP04 − Σ PLB (= Σ BPR02); recoupments lower it, interest (L6) raises it
    "payer_cash": lambda f: f["payer_payments"] - f["provider_adjustments"],
}
# the mart sums each derived sum is made of (a trailing window sums these, then derives)
DERIVED_FROM: Mapping[str, tuple[str, ...]] = {
    "payments": ("payer_payments", "patient_payments"),
    "net_payments": ("payer_payments", "patient_payments", "refunds"),
    "net_charges": ("charges", "contractual_adjustments"),
    "payer_cash": ("payer_payments", "provider_adjustments"),
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
    # the monthly series: a month's value is over the months ending with it (1: the month alone); a period's
    # value is always over the period
    trailing_months: int = 1
    # the claims behind the number: a claim-level report and its column filters (URL form: column=value for a
    # text column, column.gt=N for a number), opened from the card with the page's filters
    claims: str = ""
    claims_filter: tuple[tuple[str, str], ...] = ()

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


def _sums_of(kpi: Kpi) -> tuple[str, ...]:
    """The mart sums ``kpi`` is computed from."""
    return tuple(c for name in (kpi.numerator, kpi.denominator) for c in DERIVED_FROM.get(name, (name,)))


PRACTICE_KPIS: tuple[Kpi, ...] = (
    # gross days (AAFP/MGMA): HFMA's "net days in A/R" divides net A/R by net patient service revenue instead
    Kpi("days_in_ar", "Days in A/R", "ar_balance", "average_daily_charges", "days",
        "A/R at the month end (credit balances excluded) ÷ average daily gross charges of the 3 months ending "
        "then (their charges ÷ their days)",
        "AAFP; MGMA (gross-charges method)", higher_is_better=False, good=40, warn=50,
        benchmark="< 50; 30–40 preferred", at_period_end=True, claims="open-claims"),
    Kpi("ar_over_90_pct", "A/R over 90 days", "ar_over_90", "ar_balance", "rate",
        "A/R from dates of service more than 90 days before the month end ÷ A/R (credit balances excluded "
        "from both)",
        "kpi-reference (vendor guidance)", higher_is_better=False, good=0.15, warn=0.25, benchmark="10–20%",
        at_period_end=True, claims="open-claims", claims_filter=(("age_days.gt", "90"),)),
    # a 3-month window because payments trail their charges by one to two months: a month's payments over the
    # same month's charges swings above 100% and below 85% with the charge volume alone (MGMA's own figure is
    # annual; 3 months is the rolling window kpi-reference gives for days in A/R)
    Kpi("net_collection_rate", "Net collection rate", "net_payments", "net_charges", "rate",
        "Σ(payments − refunds) ÷ Σ(charges − contractual adjustments); a month's rate is over the trailing 3 "
        "months ending with it, a period's over the period",
        "MGMA adjusted FFS collection %", higher_is_better=True, good=0.95, warn=0.90, benchmark="≥ 95%",
        trailing_months=3),
    Kpi("clean_claim_rate", "Clean-claim rate", "accepted", "acknowledged", "rate",
        "claims accepted on the clearinghouse's first answer (277CA) ÷ claims with a first answer",
        "HFMA MAP key CL-1", higher_is_better=True, good=0.95, warn=0.90, benchmark="≥ 95%"),
    Kpi("denial_rate", "Denial rate (claims)", "denied", "adjudicated", "rate",
        "claims with any denial on their first adjudication (denied in full: CLP02 4 or nothing paid with a "
        "denial CAS; or in part: a denial CAS on a paid claim or one of its service lines) ÷ claims first "
        "adjudicated, by month of the first 835", "HFMA claim-integrity task force (2020); kpi-reference (read the "
        "CAS segments, not CLP02 alone)",
        higher_is_better=False, good=0.05, warn=0.10, benchmark="< 5% good, 5–10% typical", claims="first-denials"),
    Kpi("line_denial_rate", "Denial rate (service lines)", "lines_denied", "lines_adjudicated", "rate",
        "service lines denied on first adjudication (a line with a denial CAS, or every line of a claim denied "
        "in full) ÷ service lines first adjudicated (the 835's SVC lines; without them the claim's billed lines)",
        "X12 835 SVC/CAS; kpi-reference (denials)", higher_is_better=False, card=False),
    Kpi("full_denial_rate", "Denial rate (claims denied in full)", "denied_in_full", "adjudicated", "rate",
        "claims denied in full on their first adjudication (CLP02 4, or nothing paid with a denial CAS) ÷ claims "
        "first adjudicated", "HFMA claim-integrity task force (2020)", higher_is_better=False, card=False),
    Kpi("denial_rate_dollars", "Denial rate ($)", "charges_denied", "charges_adjudicated", "rate",
        "dollars denied on first adjudication (a claim denied in full: its charge; in part: its denial CAS "
        "amounts, service lines included) ÷ charges first adjudicated", "HFMA; AAFP",
        higher_is_better=False, good=0.05, warn=0.10, benchmark="< 5% good, 5–10% typical", card=False),
    Kpi("first_pass_resolution_rate", "First-pass resolution", "resolved_first_pass", "adjudicated", "rate",
        "claims accepted on first submission and not denied, in full or in part (a service line), on first "
        "adjudication ÷ claims first adjudicated",
        "industry practice (kpi-reference)", higher_is_better=True, good=0.90, warn=0.85, benchmark="≥ 90%"),
    # net of refunds like the net collection rate, and over the same trailing window
    Kpi("gross_collection_rate", "Gross collection rate", "net_payments", "charges", "rate",
        "Σ(payments − refunds) ÷ Σ gross charges; a month's rate is over the trailing 3 months ending with it, "
        "a period's over the period", "MGMA", benchmark="depends on the fee schedule", trailing_months=3),
    Kpi("average_days_to_payment", "Average days to payment", "days_to_payment_total", "claims_paid", "days",
        "mean of first 835 payment date (BPR16) − first 837 submission, over claims first paid in the month",
        "kpi-reference", card=False),
    Kpi("verification_rate", "Insurance verification rate", "verified", "checks", "rate",
        "270 checks answered active or inactive ÷ checks, by month of service", "HFMA MAP key", card=False),
    # kpi-reference lists no credit-balance KPI: this one is measured like days in A/R (same denominator)
    Kpi("credit_balance_days", "Credit-balance days", "credit_balances", "average_daily_charges", "days",
        "credit balances at the month end (claims whose payments and adjustments exceed their charge, owed to "
        "the payer or the patient) ÷ average daily gross charges of the 3 months ending then",
        "not in kpi-reference: measured as days in A/R (AAFP)", higher_is_better=False, at_period_end=True,
        card=False),
    Kpi("appeal_overturn_rate", "Appeal overturn rate", "appeals_overturned", "appeals", "rate",
        "claims paid on an 835 dated on or after their first appeal ÷ claims appealed, by month of the first "
        "appeal (the latest months' appeals may still be pending)",
        "industry practice (not in kpi-reference); appeal events of claim_status_event", higher_is_better=True,
        card=False),
    Kpi("charge_lag_days", "Charge lag", "charge_lag_total", "claims_submitted", "days",
        "mean days from the date of service to the first 837 submission, over claims first submitted in the month",
        "MGMA (charge lag; not in kpi-reference)", higher_is_better=False, card=False),
    Kpi("pos_collection_rate", "Point-of-service collections", "pos_payments", "patient_payments", "rate",
        "patient payments taken on or before the date of service ÷ all patient payments (refunds apart), by "
        "payment month", "HFMA MAP key \"POS cash collections\" (POS payments ÷ total patient cash collected)",
        higher_is_better=True, card=False),
    # against revenue, so over the same trailing window as the collection rates
    Kpi("denial_write_off_pct", "Denial write-offs % of net revenue", "denial_write_offs", "net_charges", "rate",
        "Σ denials written off ÷ Σ(charges − contractual adjustments); a month's over the trailing 3 months "
        "ending with it, a period's over the period",
        "HFMA MAP key \"denial write-offs as a percentage of net revenue\"", higher_is_better=False,
        card=False, trailing_months=3),
    Kpi("bad_debt_pct", "Bad debt % of gross charges", "bad_debt", "charges", "rate",
        "Σ bad debt written off ÷ Σ gross charges; a month's over the trailing 3 months ending with it, a "
        "period's over the period", "HFMA MAP key \"bad debt\" (÷ gross patient service revenue)",
        higher_is_better=False, card=False, trailing_months=3),
)

EMPLOYER_KPIS: tuple[Kpi, ...] = (
    Kpi("pmpm_paid", "PMPM paid", "paid", "member_months", "money",
        "Σ paid of claims in enrolled months ÷ member months (a period's: of its months with claims data; a month "
        "without claims data is \"no data\", not 0)", "Tuva financial_pmpm", audience="employer"),
    Kpi("pmpm_allowed", "PMPM allowed", "allowed", "member_months", "money",
        "Σ allowed of claims in enrolled months ÷ member months (as PMPM paid)", "Tuva financial_pmpm",
        audience="employer"),
    Kpi("pepm_paid", "PEPM paid", "paid", "subscriber_months", "money",
        "Σ paid of claims in enrolled months ÷ subscriber (employee) months (as PMPM paid)", "industry practice",
        audience="employer"),
    Kpi("per_1000", "Utilization per 1,000", "events", "member_months", "days",
        "events ÷ member months × 12,000", "Tuva Project", scale=12_000, audience="employer"),
    Kpi("in_network_share", "In-network share of paid", "in_network_paid", "network_known_paid", "rate",
        "Σ paid of in-network claims ÷ Σ paid of claims whose network is known (a claim with any line out of "
        "network is out), claims in enrolled months", "Tuva input layer in_network_flag; carriers' employer "
        "reports", higher_is_better=True, audience="employer"),
    Kpi("average_length_of_stay", "Average length of stay", "inpatient_days", "inpatient_admissions", "days",
        "inpatient days (discharge − admission, interim bills joined) ÷ admissions (one per stay)",
        "Tuva encounters (length_of_stay); AHRQ HCUP", audience="employer"),
    Kpi("completion", "Claims completion", "paid", "estimated_paid", "rate",
        "paid to date ÷ estimated ultimate paid of the incurred month: the completion factor at the month's lag "
        "from the paid-through month, by the development (chain-ladder) method over the last 24 incurred months' "
        "lag triangle of the selected employers; a month is complete at ≥ 95%",
        "SOA development method (completion factors); carriers' lag reports", audience="employer"),
    Kpi("claims_lag_days", "Claims lag", "paid_lag_days", "paid_so_far", "days",
        "paid-weighted mean days from the date of service to payment, of the month's claims paid so far",
        "carriers' lag reports (incurred to paid)", higher_is_better=False, audience="employer"),
)

KPIS: dict[str, Kpi] = {k.name: k for k in (*PRACTICE_KPIS, *EMPLOYER_KPIS)}


def with_kpis(sums: pd.DataFrame, kpis: tuple[Kpi, ...] = PRACTICE_KPIS) -> pd.DataFrame:
    """``sums`` with each KPI's column added (rows may be months, periods or an 'all' row)."""
    out = sums.copy()
    for name in ("payments", "payer_cash"):  # money columns the practice reports show
        if name not in out.columns and set(DERIVED_FROM[name]) <= set(out.columns):
            out[name] = DERIVED[name](out)
    for kpi in kpis:
        needed = [c for c in (kpi.numerator, kpi.denominator) if c not in DERIVED]
        if all(c in out.columns for c in needed):
            out[kpi.name] = kpi.compute(out)
    return out


def with_monthly_kpis(sums: pd.DataFrame, kpis: tuple[Kpi, ...] = PRACTICE_KPIS, *,
                      by: str = "practice_id") -> pd.DataFrame:
    """The monthly series: ``sums`` (one row per ``by`` and ``month``) with each KPI's column, a KPI with
    ``trailing_months`` n over the n months ending with the row's month. ``sums`` must reach back n − 1 months
    before the first month wanted (the caller drops those rows); a month without a row counts as zero."""
    out = with_kpis(sums, kpis)
    for kpi in kpis:
        columns = list(dict.fromkeys(_sums_of(kpi)))
        if kpi.trailing_months > 1 and kpi.name in out.columns:
            out[kpi.name] = kpi.compute(_trailing_sums(sums, columns, kpi.trailing_months, by)).to_numpy()
    return out


def _trailing_sums(sums: pd.DataFrame, columns: list[str], months: int, by: str) -> pd.DataFrame:
    """Each row's ``columns`` summed over the ``months`` months ending with its month (same ``by``)."""
    shifted = [sums[[by, "month", *columns]].assign(month=[add_months(m, i) for m in sums["month"]])
               for i in range(months)]
    window = pd.concat(shifted).groupby([by, "month"], as_index=False)[columns].sum(min_count=1)
    return sums[[by, "month"]].merge(window, on=[by, "month"], how="left")


def markdown_table(kpis: tuple[Kpi, ...] = (*PRACTICE_KPIS, *EMPLOYER_KPIS)) -> str:
    """The README's KPI table, from the registry."""
    lines = ["| KPI | column | formula | benchmark | source |", "|---|---|---|---|---|"]
    for k in kpis:
        lines.append(f"| {k.label} | `{k.name}` | {k.formula} | {k.benchmark or '—'} | {k.source} |")
    return "\n".join(lines)
