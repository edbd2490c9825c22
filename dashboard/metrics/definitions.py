"""Classification rules the metrics share: which adjustments are contractual, which are denials,
who is a subscriber, which claims fall in which service category. Change a rule here and every
KPI, report and page follows.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement

# CO reason codes that are the contract, not a denial: CO-45 charge exceeds fee schedule,
# CO-42 (legacy fee schedule), CO-59 multiple-procedure reduction, CO-131 negotiated discount,
# CO-253 sequestration, CO-A2 contractual adjustment.
CONTRACTUAL_CARCS = ("45", "42", "59", "131", "253", "A2")

# PR reason codes that are the patient's cost share: deductible, coinsurance, copay, blood deductible.
PATIENT_COST_SHARE_CARCS = ("1", "2", "3", "66")

# OA-23: the impact of a prior payer's adjudication (coordination of benefits), not a denial.
COORDINATION_CARCS = ("23",)

# Write-off reasons that clear the patient's part of a balance (the rest clear the insurance part).
PATIENT_WRITE_OFF_REASONS = ("bad_debt", "small_balance", "charity", "patient")
# Write-offs the HFMA MAP keys put against revenue: denials written off, and bad debt (patient balances
# given up on; small balances and charity are neither).
DENIAL_WRITE_OFF_REASONS = ("denial",)
BAD_DEBT_WRITE_OFF_REASONS = ("bad_debt",)

# 835 CLP02 = 4: claim denied (the payer does not recognise the patient or coverage).
CLAIM_STATUS_DENIED = "4"

# The worklists' clocks, by payer type (the payer table's payer_type; None: any other), unless payer_rule holds
# the payer's own contract terms:
# * appeal_days: days from the 835 that denied a claim to the last day to appeal it. Medicare's redetermination
#   window is 120 days from the initial determination (42 CFR 405.942); Medicaid's is set by each state, 90 days
#   is common; commercial contracts vary (90–180 days), so 90 is assumed until a contract says more;
# * follow_up_days: days after the first 837 without any 835 before a claim is worked. Medicare pays clean
#   electronic claims between day 14 and day 30 (its prompt-payment window); most state prompt-pay laws allow
#   30–45 days.
PAYER_RULE_DEFAULTS = {
    "appeal_days": {"medicare": 120, "medicaid": 90, None: 90},
    "follow_up_days": {None: 30},
}

SUBSCRIBER_RELATIONS = ("self", "subscriber", "employee", "18")

AGING_BUCKETS = (("0-30", 0, 30), ("31-60", 31, 60), ("61-90", 61, 90), ("91-120", 91, 120),
                 ("120+", 121, None))

# Claims run-out: an incurred month is complete once the paid to date is estimated at this share of its ultimate
# (completion factor, see dashboard.metrics.employer.completion_factors); earlier months are "in run-out".
# 95% is the usual reporting threshold of carriers' and consultants' lag reports (e.g. "incurred through
# the month with ≥ 95% completion").
COMPLETE_AT = 0.95
# the development the completion factors follow: lags beyond it count as complete (tail factor 1.0), and
# the incurred months whose development they learn from (the most recent ones)
DEVELOPMENT_MONTHS = 12
DEVELOPMENT_HISTORY_MONTHS = 24

HIGH_COST_BANDS = (("$50k-$100k", 50_000, 100_000), ("$100k-$500k", 100_000, 500_000),
                   ("$500k-$1M", 500_000, 1_000_000), ("$1M+", 1_000_000, None))

SERVICE_CATEGORIES = ("inpatient", "outpatient", "office-based", "ancillary", "other", "pharmacy")


def adjustment_category(group_code: ColumnElement, carc: ColumnElement) -> ColumnElement:
    """'contractual' | 'patient_cost_share' | 'coordination' | 'denial' for a CAS adjustment.

    Source: X12 835 CAS group codes (CO, PR, OA, PI, CR) and CARC list; CO-45 is contractual, not a
    denial; PR-1/2/3 are cost share. Every other adjustment (CO-16, CO-97, CO-50, PR-204 ...) is a denial.
    """
    return sa.case(
        (sa.and_(group_code == "CO", carc.in_(CONTRACTUAL_CARCS)), "contractual"),
        (sa.and_(group_code == "PR", carc.in_(PATIENT_COST_SHARE_CARCS)), "patient_cost_share"),
        (sa.and_(group_code == "OA", carc.in_(COORDINATION_CARCS)), "coordination"),
        else_="denial",
    )


def is_subscriber(relation: ColumnElement, member_id: ColumnElement,
                  subscriber_id: ColumnElement) -> ColumnElement:
    return sa.or_(sa.func.lower(relation).in_(SUBSCRIBER_RELATIONS), member_id == subscriber_id)


# A claim with lines in several categories belongs to the first of these (Tuva's grouper prioritises the
# setting of care: an office visit with a lab line is an office visit, a stay with a lab line a stay).
SERVICE_CATEGORY_PRIORITY = ("inpatient", "outpatient", "office-based", "ancillary", "other")


def service_category_rank(category: ColumnElement) -> ColumnElement:
    """The category's place in :data:`SERVICE_CATEGORY_PRIORITY` (1 = first)."""
    return sa.case(*[(category == name, rank) for rank, name in enumerate(SERVICE_CATEGORY_PRIORITY, start=1)],
                   else_=len(SERVICE_CATEGORY_PRIORITY))


def service_category_of_rank(rank: ColumnElement) -> ColumnElement:
    return sa.case(*[(rank == n, name) for n, name in enumerate(SERVICE_CATEGORY_PRIORITY, start=1)],
                   else_=SERVICE_CATEGORY_PRIORITY[-1])


def medical_service_category(claim_type: ColumnElement, bill_type: ColumnElement,
                             place_of_service: ColumnElement, hcpcs: ColumnElement) -> ColumnElement:
    """Tuva service_category_1, simplified to claim type, bill type and place of service.

    Institutional: bill type 11x/12x/21x inpatient, everything else outpatient. Professional: POS 21/51/61
    inpatient; 19/22/23/24 outpatient; 11/02/10 office-based; 81 (lab) and DME HCPCS (E, K, L) ancillary;
    the rest other. Source: Tuva Project service categories (service_category_1).
    """
    return sa.case(
        (sa.and_(claim_type == "institutional",
                 sa.func.substr(bill_type, 1, 2).in_(("11", "12", "21"))), "inpatient"),
        (claim_type == "institutional", "outpatient"),
        (place_of_service.in_(("21", "51", "61")), "inpatient"),
        (place_of_service.in_(("19", "22", "23", "24")), "outpatient"),
        (place_of_service.in_(("11", "02", "10")), "office-based"),
        (sa.or_(place_of_service == "81", sa.func.substr(hcpcs, 1, 1).in_(("E", "K", "L"))), "ancillary"),
        else_="other",
    )


def payer_days(rule: str, own: ColumnElement, payer_type: ColumnElement) -> ColumnElement:
    """A payer's ``rule`` (appeal_days | follow_up_days): its own (``own``, from payer_rule), else its type's
    default (PAYER_RULE_DEFAULTS)."""
    defaults = PAYER_RULE_DEFAULTS[rule]
    by_type = {k: v for k, v in defaults.items() if k is not None}
    typed = sa.case(by_type, value=payer_type, else_=defaults[None]) if by_type else sa.literal(defaults[None])
    return sa.func.coalesce(own, typed)
