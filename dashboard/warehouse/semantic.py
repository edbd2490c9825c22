"""The semantic layer: aggregate tables ("marts") the pages read, refreshed by every load.

Tuva's staging -> intermediate -> final: :mod:`dashboard.warehouse.marts` holds the staging and
intermediate selects; this module materialises the final layer at the grains the reports ask for, so a
page costs a read of a few thousand mart rows instead of a scan of every claim.

Each :class:`Mart` states its grain, its tenant column and the select that builds its rows for some
tenants. :func:`refresh_marts` deletes and rebuilds the rows of the tenants a load touched, inside the
load's own transaction (all or nothing), then ANALYZEs on PostgreSQL. Reports read the tables through
:func:`source`; with :func:`from_facts` they read the same selects computed from the facts instead,
which is how the tests prove every mart equals its definition after any load.

A/R is the one measure that depends on every earlier transaction: ``mart_ar_interval`` keeps each
claim's open balance per payer (or the patient) from the month it took its value until the month it
changed (claim grain, a few rows per claim), and ``mart_ar_month`` sums the intervals at every month
end up to the warehouse's horizon (its newest month of data). When a load moves the horizon, the
practices it did not touch are extended from their still-open intervals only.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Column, Date, Integer, Numeric, String, Table
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.engine import Connection
from sqlalchemy.sql import FromClause, Select

from dashboard.metrics import definitions as d
from dashboard.metrics import groupers as g
from dashboard.warehouse import marts as m
from dashboard.warehouse import schema as s
from dashboard.warehouse.engine import analyze_stale

Ids = Sequence[str] | None
Money = Numeric(16, 2)
metadata = s.metadata  # created with the rest of the warehouse


def _money(name: str) -> Column:
    return Column(name, Money)  # NULL when every amount summed is unknown (no data is not zero)


def _count(name: str) -> Column:
    return Column(name, Integer, nullable=False, server_default="0")


# --- tables -----------------------------------------------------------------------------------------

PRACTICE_MONTH_MEASURES = {
    # by month of the date of service
    "claims": "count", "charges": "money",
    # by 835 payment date
    "payer_payments": "money", "contractual_adjustments": "money",
    # by 835 payment date: Σ PLB amounts (positive: taken back from the payment; negative: added, e.g. interest),
    # so the cash received from payers is payer_payments − provider_adjustments (= Σ BPR02)
    "provider_adjustments": "money",
    # by patient payment date; pos_payments: those taken on or before the date of service
    "patient_payments": "money", "refunds": "money", "pos_payments": "money",
    # by write-off date
    "denial_write_offs": "money", "bad_debt": "money",
    # by month of the first 837 submission: claims, and Σ days from the date of service (charge lag)
    "claims_submitted": "count", "charge_lag_total": "count",
    # by month of a claim's first appeal: appealed claims, and those paid on or after it
    "appeals": "count", "appeals_overturned": "count",
    # by month of the clearinghouse's first answer (277CA)
    "acknowledged": "count", "accepted": "count",
    # by month of the first adjudication (835): denied = any denial (in full, or in part: a denial CAS on a paid
    # claim or a line); charges_denied = a full denial's charge, else the denial CAS amounts
    "adjudicated": "count", "denied": "count", "denied_in_full": "count", "charges_adjudicated": "money",
    "charges_denied": "money", "lines_adjudicated": "count", "lines_denied": "count",
    "resolved_first_pass": "count", "rejected_first": "count",
    # claims first paid in the month, and Σ days from first submission to that payment
    "claims_paid": "count", "days_to_payment_total": "count",
    # 270/271 checks by month of service
    "checks": "count", "verified": "count", "pending": "count", "inactive": "count", "errors": "count",
    # ACH (EFT) remittances by payment month
    "eft_remittances": "count", "eft_payments": "money",
    # A/R at the month end (from mart_ar_month): claims with a debit balance; credit balances apart
    "ar_balance": "money", "ar_insurance": "money", "ar_patient": "money", "ar_over_90": "money",
    "credit_balances": "money",
}

mart_practice_month = Table(
    "mart_practice_month", metadata,
    Column("practice_id", String, nullable=False), Column("month", Date, nullable=False),
    *[(_count if kind == "count" else _money)(name) for name, kind in PRACTICE_MONTH_MEASURES.items()],
    sa.PrimaryKeyConstraint("practice_id", "month"),
)

mart_ar_interval = Table(
    "mart_ar_interval", metadata,
    Column("practice_id", String, nullable=False), Column("claim_id", String, nullable=False),
    Column("payer", String, nullable=False),  # the claim's payer, or 'Patient' for patient responsibility
    Column("service_date", Date, nullable=False),
    Column("from_month", Date, nullable=False),  # the balance holds from this month's end ...
    Column("to_month", Date),  # ... until (not including) this month's end; NULL: still open
    # netted within the claim: > 0 A/R owed by this party, < 0 a credit balance owed to it
    Column("balance", Money, nullable=False),
    Column("credit_since", Date),  # a credit: the first month end of its unbroken run of credit
)
sa.Index("ix_mart_ar_interval_practice", mart_ar_interval.c.practice_id, mart_ar_interval.c.to_month)

mart_ar_month = Table(
    "mart_ar_month", metadata,
    Column("practice_id", String, nullable=False), Column("month", Date, nullable=False),
    Column("payer", String, nullable=False), Column("bucket", String, nullable=False),
    _count("open_claims"), _money("balance"),  # A/R: debit balances
    _count("credit_claims"), _money("credit_balance"),  # credit balances (positive dollars), never A/R
    sa.PrimaryKeyConstraint("practice_id", "month", "payer", "bucket"),
)

mart_claim = Table(
    "mart_claim", metadata,
    Column("practice_id", String, nullable=False), Column("claim_id", String, nullable=False),
    Column("payer", String), Column("service_date", Date), _money("charge_amount"),
    Column("submitted_date", Date),  # the first 837
    Column("first_answer", String), Column("first_answer_date", Date),  # the clearinghouse's (277CA)
    Column("accepted_date", Date),  # its first acceptance (277CA), after any rejections
    _count("first_denied"),  # 1: the first 835 denied it, in full or in part (a line)
    Column("first_paid_date", Date),  # the first 835 that paid something (CLP04 > 0)
    _count("overturned"),  # 1: appealed, and an 835 on or after the first appeal paid it
    _count("adjudications"), Column("first_adjudicated_date", Date), Column("last_adjudicated_date", Date),
    _money("payer_paid"), _money("expected_paid"),  # Σ CLP04; what the claim record expects (NULL: unknown)
    Column("last_trace_number", String),  # the latest 835's TRN02
    Column("last_outcome", String),  # of the latest 835: paid | partially paid | denied | reversed; NULL: none
    _money("last_denied_amount"),  # its denial CAS dollars (service lines included)
    Column("denial_codes", String), Column("top_carc", String),  # its denial codes, largest first ("CO-16,CO-97")
    Column("remark_codes", String),  # its remark codes (LQ, MOA), line order
    Column("appealed_date", Date),  # the latest appeal
    _money("payer_balance"), _money("patient_balance"),  # owed now (netted as A/R is; < 0: a credit)
    # what was known when it was sent, for the denial-risk model (dashboard/metrics/denial_risk.py)
    Column("procedure", String), Column("place_of_service", String),  # of its first line
    _count("line_count"), _count("modified"),  # 1: a line carries a modifier
    _count("diagnoses"),  # diagnosis codes on its first line
    Column("eligibility", String),  # the latest 270/271 for the patient and date: active | inactive | ... | none
    sa.PrimaryKeyConstraint("practice_id", "claim_id"),
)

# 835 claim payments (CLP) whose CLP01 names no claim of the practice: money received for nothing on the books
# PostgreSQL: the worklists read one practice's few open denials and unanswered claims out of all its claims
sa.Index("ix_mart_claim_denials", mart_claim.c.practice_id,
         postgresql_where=sa.and_(mart_claim.c.last_outcome.in_(("denied", "partially paid")),
                                  mart_claim.c.payer_balance > 0)).ddl_if(dialect="postgresql")
sa.Index("ix_mart_claim_follow_up", mart_claim.c.practice_id, mart_claim.c.submitted_date,
         postgresql_where=sa.and_(mart_claim.c.adjudications == 0, mart_claim.c.payer_balance > 0)
         ).ddl_if(dialect="postgresql")

mart_unmatched_payment = Table(
    "mart_unmatched_payment", metadata,
    Column("practice_id", String, nullable=False), Column("claim_payment_id", String, nullable=False),
    Column("claim_id", String), Column("payer_claim_number", String), Column("trace_number", String),
    Column("payer", String), Column("payment_date", Date, nullable=False), _money("charge"), _money("paid"),
    sa.PrimaryKeyConstraint("practice_id", "claim_payment_id"),
)

mart_adjustment_month = Table(
    "mart_adjustment_month", metadata,
    Column("practice_id", String, nullable=False), Column("month", Date, nullable=False),
    Column("payer", String), Column("group_code", String), Column("carc", String),
    Column("category", String, nullable=False), _count("claims"), _money("amount"),
)
sa.Index("ix_mart_adjustment_month", mart_adjustment_month.c.practice_id, mart_adjustment_month.c.month)

# 835 PLB: provider-level adjustments, not tied to a claim (interest, recoupments, forwarding balances)
mart_provider_adjustment_month = Table(
    "mart_provider_adjustment_month", metadata,
    Column("practice_id", String, nullable=False), Column("month", Date, nullable=False),
    Column("payer", String), Column("reason_code", String, nullable=False),
    _count("adjustments"), _money("amount"),
)
sa.Index("ix_mart_provider_adjustment_month", mart_provider_adjustment_month.c.practice_id,
         mart_provider_adjustment_month.c.month)

mart_payer_month = Table(
    "mart_payer_month", metadata,
    Column("practice_id", String, nullable=False), Column("month", Date, nullable=False),
    Column("payer", String), _count("claims"), _money("charges"),
)
sa.Index("ix_mart_payer_month", mart_payer_month.c.practice_id, mart_payer_month.c.month)

mart_remittance = Table(
    "mart_remittance", metadata,
    Column("practice_id", String, nullable=False), Column("remittance_id", String, nullable=False),
    Column("trace_number", String), Column("payer", String), Column("payment_date", Date, nullable=False),
    Column("method", String), Column("amount", Money), _count("claims"), _count("unmatched_claims"),
    # the cash reconciliation: Σ CLP04, Σ PLB04 and BPR02 (a debit negated) − (Σ CLP04 − Σ PLB04), 0 if balanced
    _money("claim_payments"), _money("provider_adjustments"), _money("difference"),
)
sa.Index("ix_mart_remittance", mart_remittance.c.practice_id, mart_remittance.c.payment_date)

mart_denial_line = Table(
    "mart_denial_line", metadata,
    Column("practice_id", String, nullable=False), Column("claim_payment_id", String, nullable=False),
    Column("line_number", Integer, nullable=False), Column("adjustment_seq", Integer, nullable=False),
    Column("claim_id", String), Column("payer", String), Column("payment_date", Date, nullable=False),
    Column("claim_status", String), Column("claim_charge", Money), Column("claim_paid", Money),
    Column("procedure_code", String), Column("group_code", String, nullable=False),
    Column("carc", String, nullable=False), Column("amount", Money, nullable=False),
    Column("matched", sa.Boolean, nullable=False), Column("remark_codes", String, nullable=False),
)
# PostgreSQL pages it by index; DuckDB by zone maps (rows are written in practice and payment-date order)
sa.Index("ix_mart_denial_line", mart_denial_line.c.practice_id, mart_denial_line.c.payment_date
         ).ddl_if(dialect="postgresql")

mart_enrollment_month = Table(
    "mart_enrollment_month", metadata,
    Column("employer_id", String, nullable=False), Column("month", Date, nullable=False),
    Column("plan", String), Column("tier", String, nullable=False),
    _count("members"), _count("subscribers"), _count("adds"), _count("terms"),
)
sa.Index("ix_mart_enrollment_month", mart_enrollment_month.c.employer_id, mart_enrollment_month.c.month)

mart_employer_month = Table(
    "mart_employer_month", metadata,
    Column("employer_id", String, nullable=False), Column("month", Date, nullable=False),
    _count("member_months"), _count("subscriber_months"), _money("paid"), _money("allowed"),
    _count("members_with_claims"),
    # 1 when the warehouse holds the employer's claims for the month: from its first claim month to the month
    # its newest claim was paid (see _employer_month). Outside it, paid 0 means "no data", never $0.
    _count("claims_data"),
    sa.PrimaryKeyConstraint("employer_id", "month"),
)

mart_spend_month = Table(
    "mart_spend_month", metadata,
    Column("employer_id", String, nullable=False), Column("month", Date, nullable=False),
    Column("service_category", String, nullable=False),
    _money("paid"), _money("allowed"), _count("claims"), _count("members_with_claims"),
)
sa.Index("ix_mart_spend_month", mart_spend_month.c.employer_id, mart_spend_month.c.month)

# utilization measure -> the claim flag of int_member_claim it counts (inpatient days: the stay's days)
UTILIZATION_FLAGS = {"inpatient_admissions": "inpatient_admission", "inpatient_days": "inpatient_day",
                     "er_visits": "er_visit", "office_visits": "office_visit", "prescriptions": "prescription"}

mart_member_claim = Table(
    "mart_member_claim", metadata,
    Column("employer_id", String, nullable=False), Column("person_id", String, nullable=False),
    Column("source", String, nullable=False), Column("claim_id", String, nullable=False),
    Column("claim_date", Date, nullable=False), Column("month", Date, nullable=False),
    Column("in_enrollment", Integer, nullable=False),
    Column("service_category", String, nullable=False), _money("paid"), _money("allowed"),
    Column("paid_date", Date), Column("network", String, nullable=False),
    *[_count(flag) for flag in UTILIZATION_FLAGS.values()],
    # cost-driver groupings (dashboard.metrics.groupers)
    Column("service_category_2", String, nullable=False), Column("condition_group", String, nullable=False),
    Column("place_of_service", String, nullable=False), Column("provider_id", String, nullable=False),
)
sa.Index("ix_mart_member_claim", mart_member_claim.c.employer_id, mart_member_claim.c.month
         ).ddl_if(dialect="postgresql")

# the dimensions of mart_cost_driver_month: each partitions the month's paid of claims in enrolled months
COST_DRIVER_DIMENSIONS = ("service_category_2", "condition_group", "place_of_service", "provider_id")

mart_cost_driver_month = Table(
    "mart_cost_driver_month", metadata,
    Column("employer_id", String, nullable=False), Column("month", Date, nullable=False),
    Column("dimension", String, nullable=False), Column("value", String, nullable=False),
    # the spend cell (service category) the value is part of: a service category 2's, and each grouping's pharmacy
    # row ('pharmacy'); '' for the rest of a grouping. Suppression's complementary groups (dashboard.deidentified)
    Column("parent", String, nullable=False), Column("label", String),  # provider: the organisation's name
    _money("paid"), _money("allowed"), _count("claims"), _count("members_with_claims"),
)
sa.Index("ix_mart_cost_driver_month", mart_cost_driver_month.c.employer_id, mart_cost_driver_month.c.month)

mart_demographic_month = Table(
    "mart_demographic_month", metadata,
    Column("employer_id", String, nullable=False), Column("month", Date, nullable=False),
    Column("age_band", String, nullable=False), Column("gender", String, nullable=False),
    _count("members"), _count("subscribers"),
)
sa.Index("ix_mart_demographic_month", mart_demographic_month.c.employer_id, mart_demographic_month.c.month)

mart_enrollment_change_month = Table(
    "mart_enrollment_change_month", metadata,
    Column("employer_id", String, nullable=False), Column("month", Date, nullable=False),
    Column("maintenance_type", String, nullable=False), Column("maintenance_reason", String, nullable=False),
    _count("people"),
)
sa.Index("ix_mart_enrollment_change_month", mart_enrollment_change_month.c.employer_id,
         mart_enrollment_change_month.c.month)

mart_member_month = Table(
    "mart_member_month", metadata,
    Column("employer_id", String, nullable=False), Column("person_id", String, nullable=False),
    Column("month", Date, nullable=False), Column("in_enrollment", Integer, nullable=False),
    Column("service_category", String, nullable=False),
    _money("paid"), _money("allowed"), _count("claims"),
    *[_count(flag) for flag in UTILIZATION_FLAGS.values()],
)
sa.Index("ix_mart_member_month", mart_member_month.c.employer_id, mart_member_month.c.month)
# PostgreSQL: the horizon's max(month), asked once per mart in every refresh (a scan of every member month
# otherwise: 0.2 s a time at 1M claims), and spend outside enrollment, a few rows among all (0.14 s -> 14 ms)
sa.Index("ix_mart_member_month_month", mart_member_month.c.month).ddl_if(dialect="postgresql")
sa.Index("ix_mart_member_month_outside", mart_member_month.c.employer_id, mart_member_month.c.month,
         postgresql_where=mart_member_month.c.in_enrollment == 0).ddl_if(dialect="postgresql")

mart_claim_lag = Table(
    "mart_claim_lag", metadata,
    Column("employer_id", String, nullable=False), Column("month", Date, nullable=False),  # incurred
    Column("lag", Integer, nullable=False),  # months from the incurred month to the paid month (0: same month)
    _money("paid"), _count("claims"),
    Column("paid_lag_days", Numeric(20, 2), nullable=False, server_default="0"),  # Σ paid × days to payment
    sa.PrimaryKeyConstraint("employer_id", "month", "lag"),
)

mart_network_month = Table(
    "mart_network_month", metadata,
    Column("employer_id", String, nullable=False), Column("month", Date, nullable=False),
    Column("network", String, nullable=False),  # in | out | unknown
    _money("paid"), _money("allowed"), _count("claims"), _count("members_with_claims"),
    sa.PrimaryKeyConstraint("employer_id", "month", "network"),
)

mart_high_cost_year = Table(
    "mart_high_cost_year", metadata,
    Column("employer_id", String, nullable=False), Column("year", Date, nullable=False),  # January 1st
    Column("band", String, nullable=False), _count("claimants"), _money("paid"),
    sa.PrimaryKeyConstraint("employer_id", "year", "band"),
)

mart_utilization_month = Table(
    "mart_utilization_month", metadata,
    Column("employer_id", String, nullable=False), Column("month", Date, nullable=False),
    Column("measure", String, nullable=False), _count("events"), _count("members_with_events"),
    sa.PrimaryKeyConstraint("employer_id", "month", "measure"),
)


# The horizon the marts were last built to (months a later load adds are added for every tenant), and the
# version of their definitions: marts built by another version are refused until `dashboard marts refresh`.
MARTS_VERSION = 16  # 15: cost-driver groupings, mart_cost_driver_month; 16: demographics, 834 changes
mart_state = Table("mart_state", metadata, Column("horizon", Date), Column("version", Integer))


# --- reading: the tables, or the same selects computed from the facts ---------------------------------

_FROM_FACTS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("from_facts", default=None)


@contextlib.contextmanager
def from_facts() -> Iterator[None]:
    """Within this block :func:`source` answers with the build selects over the facts, not the tables:
    the reference every mart is tested against."""
    token = _FROM_FACTS.set({})
    try:
        yield
    finally:
        _FROM_FACTS.reset(token)


def source(table: Table) -> FromClause:
    """What a report reads for ``table``: the mart itself, or (in :func:`from_facts`) its definition, as one
    CTE per mart however often a statement reads it (several employer marts read mart_member_claim)."""
    ctes = _FROM_FACTS.get()
    if ctes is None:
        return table
    if table.name not in ctes:
        ctes[table.name] = MARTS[table.name].build(None, window=Window()).cte(table.name)
    return ctes[table.name]


# --- builds -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    """The months a build covers: after ``after`` (exclusive) up to ``horizon`` (inclusive). None for the
    horizon means the warehouse's current one (computed in SQL), for after: from the beginning."""

    horizon: dt.date | None = None
    after: dt.date | None = None

    def last(self) -> sa.ColumnElement:
        return sa.literal(self.horizon, sa.Date) if self.horizon is not None else _horizon_select().scalar_subquery()

    def bound(self, month: sa.ColumnElement) -> sa.ColumnElement:
        inside = month <= self.last()
        return sa.and_(inside, month > self.after) if self.after is not None else inside


def _horizon_select() -> Select:
    """The marts' last month: the newest of a date of service, a claim, a payment, a write-off, a load's 'data
    as of', and the current month. Open spans run to 2099 and balances stay open, so every mart stops
    here; a load in a later month moves it for everyone (see :func:`refresh_marts`)."""
    pm, mmo = source(mart_payer_month), source(mart_member_month)
    dates = sa.union_all(
        sa.select(sa.func.max(pm.c.month).label("d")),
        sa.select(sa.func.max(mmo.c.month).label("d")),
        sa.select(sa.func.max(s.remittance.c.payment_date).label("d")),
        sa.select(sa.func.max(s.patient_payment.c.payment_date).label("d")),
        sa.select(sa.func.max(s.claim_write_off.c.write_off_date).label("d")),
        sa.select(sa.func.max(s.data_load.c.data_as_of).label("d")),
        # coverage and balances go on without new data: enrollment and A/R exist up to this month
        sa.select(sa.literal(dt.date.today(), sa.Date).label("d")),
    ).subquery("newest")
    return sa.select(m.month_of(sa.func.max(dates.c.d)))


def _zero_fill(measures: dict[str, sa.ColumnElement], names: Sequence[str]) -> list[sa.ColumnElement]:
    return [measures.get(n, sa.literal(0)).label(n) for n in names]


def _sum_parts(key: Sequence[str], names: Sequence[str], parts: list[Select]) -> Select:
    union = sa.union_all(*parts).subquery("parts")
    return (sa.select(*[union.c[k] for k in key], *[sa.func.sum(union.c[n]).label(n) for n in names])
            .group_by(*[union.c[k] for k in key]))


def _practice_month(ids: Ids, *, window: Window) -> Select:
    """Grain: practice × month. Each measure counts at its own date (see PRACTICE_MONTH_MEASURES)."""
    names = list(PRACTICE_MONTH_MEASURES)
    parts: list[Select] = []

    def part(practice, month, measures: dict[str, sa.ColumnElement], frm, *where) -> None:
        q = sa.select(practice.label("practice_id"), month.label("month"), *_zero_fill(measures, names))
        q = q.select_from(frm).where(window.bound(month), *where)
        parts.append(q.group_by(practice, month))

    claim = m.stg_practice_claim(ids).subquery("claim")
    part(claim.c.practice_id, m.month_of(claim.c.service_date),
         {"claims": sa.func.count(), "charges": sa.func.sum(claim.c.charge_amount)}, claim)

    cp, r, pp = s.claim_payment, s.remittance, s.patient_payment
    part(cp.c.practice_id, m.month_of(r.c.payment_date), {"payer_payments": sa.func.sum(cp.c.paid_amount)},
         cp.join(r, r.c.remittance_id == cp.c.remittance_id), m.within(cp.c.practice_id, ids))
    plb = s.provider_adjustment
    part(plb.c.practice_id, m.month_of(r.c.payment_date), {"provider_adjustments": sa.func.sum(plb.c.amount)},
         plb.join(r, r.c.remittance_id == plb.c.remittance_id), m.within(plb.c.practice_id, ids))
    part(pp.c.practice_id, m.month_of(pp.c.payment_date),
         {"patient_payments": sa.func.sum(sa.case((pp.c.amount > 0, pp.c.amount), else_=0)),
          "refunds": sa.func.sum(sa.case((pp.c.amount < 0, -pp.c.amount), else_=0))},
         pp, m.within(pp.c.practice_id, ids))
    # a payment on or before the visit was taken at the front desk (point of service)
    part(pp.c.practice_id, m.month_of(pp.c.payment_date), {"pos_payments": sa.func.sum(pp.c.amount)},
         pp.join(claim, sa.and_(claim.c.claim_id == pp.c.claim_id, claim.c.practice_id == pp.c.practice_id)),
         pp.c.amount > 0, pp.c.payment_date <= claim.c.service_date)
    wo = s.claim_write_off
    part(wo.c.practice_id, m.month_of(wo.c.write_off_date),
         {"denial_write_offs": sa.func.sum(sa.case((wo.c.reason.in_(d.DENIAL_WRITE_OFF_REASONS), wo.c.amount),
                                                   else_=0)),
          "bad_debt": sa.func.sum(sa.case((wo.c.reason.in_(d.BAD_DEBT_WRITE_OFF_REASONS), wo.c.amount), else_=0))},
         wo, m.within(wo.c.practice_id, ids))
    adj = m.stg_adjustment(ids).subquery("adj")
    part(adj.c.practice_id, m.month_of(adj.c.payment_date),
         {"contractual_adjustments": sa.func.sum(adj.c.amount)}, adj, adj.c.category == "contractual")

    ack = m.int_first_acknowledgement(ids).subquery("ack")
    part(ack.c.practice_id, m.month_of(ack.c.event_date),
         {"acknowledged": sa.func.count(),
          "accepted": sa.func.sum(sa.case((ack.c.event_type == "accepted", 1), else_=0))}, ack)

    first = m.int_first_adjudication(ids).subquery("first")
    svc = m.int_service_lines(ids).subquery("svc")
    charge = sa.func.coalesce(claim.c.charge_amount, first.c.charge_amount)
    in_full = first.c.is_denial == 1
    # a line denial on a paid claim is a denial too (the 835 pays the claim and denies a line)
    any_denial = sa.or_(in_full, first.c.denial_amount > 0)
    # an 835 without SVC loops adjudicates the claim's billed lines (or, unmatched, one)
    lines = sa.func.coalesce(svc.c.lines, claim.c.line_count, 1)
    # a line denied on a paid claim needs rework (appeal or write-off) too: not resolved on the first pass
    resolved = sa.and_(sa.not_(any_denial), ack.c.event_type.is_distinct_from("rejected"))
    part(first.c.practice_id, m.month_of(first.c.payment_date),
         {"adjudicated": sa.func.count(), "denied": sa.func.sum(sa.case((any_denial, 1), else_=0)),
          "denied_in_full": sa.func.sum(first.c.is_denial),
          "charges_adjudicated": sa.func.sum(charge),
          "charges_denied": sa.func.sum(sa.case((in_full, charge), else_=first.c.denial_amount)),
          "lines_adjudicated": sa.func.sum(lines),
          "lines_denied": sa.func.sum(sa.case((in_full, lines), else_=sa.func.coalesce(svc.c.lines_denied, 0))),
          "resolved_first_pass": sa.func.sum(sa.case((resolved, 1), else_=0)),
          "rejected_first": sa.func.sum(sa.case((ack.c.event_type == "rejected", 1), else_=0))},
         first.outerjoin(claim, sa.and_(claim.c.claim_id == first.c.claim_id,
                                        claim.c.practice_id == first.c.practice_id))
         .outerjoin(ack, sa.and_(ack.c.claim_id == first.c.claim_id, ack.c.practice_id == first.c.practice_id))
         .outerjoin(svc, svc.c.claim_payment_id == first.c.claim_payment_id))

    sub = m.int_first_submission(ids).subquery("sub")
    part(sub.c.practice_id, m.month_of(sub.c.submitted_date),
         {"claims_submitted": sa.func.count(),
          "charge_lag_total": sa.func.sum(sub.c.submitted_date - claim.c.service_date)},
         sub.join(claim, sa.and_(claim.c.claim_id == sub.c.claim_id, claim.c.practice_id == sub.c.practice_id)))
    appeal = m.int_first_appeal(ids).subquery("appeal")
    part(appeal.c.practice_id, m.month_of(appeal.c.appealed_date),
         {"appeals": sa.func.count(), "appeals_overturned": sa.func.sum(appeal.c.overturned)}, appeal)
    part(first.c.practice_id, m.month_of(first.c.payment_date),
         {"claims_paid": sa.func.count(),
          "days_to_payment_total": sa.func.sum(first.c.payment_date - sub.c.submitted_date)},
         first.join(sub, sa.and_(sub.c.claim_id == first.c.claim_id, sub.c.practice_id == first.c.practice_id)),
         first.c.paid_amount > 0)

    ec = s.eligibility_check
    service = sa.func.coalesce(ec.c.service_date, sa.cast(ec.c.requested_at, sa.Date))
    part(ec.c.practice_id, m.month_of(service),
         {"checks": sa.func.count(),
          "verified": sa.func.sum(sa.case((ec.c.status.in_(("active", "inactive")), 1), else_=0)),
          "pending": sa.func.sum(sa.case((ec.c.status == "pending", 1), else_=0)),
          "inactive": sa.func.sum(sa.case((ec.c.status == "inactive", 1), else_=0)),
          "errors": sa.func.sum(sa.case((ec.c.status == "error", 1), else_=0))},
         ec, m.within(ec.c.practice_id, ids))

    part(r.c.practice_id, m.month_of(r.c.payment_date),
         {"eft_remittances": sa.func.count(), "eft_payments": sa.func.sum(r.c.amount)},
         r, r.c.method == "ACH", m.within(r.c.practice_id, ids))
    parts.extend(_practice_ar_parts(ids, window=window, names=names))
    return _sum_parts(("practice_id", "month"), names, parts)


def _practice_ar_parts(ids: Ids, *, window: Window, names: Sequence[str]) -> list[Select]:
    """A/R at each month end from mart_ar_month, and a zero row for every month from a practice's first
    ledger month to the horizon (A/R exists, zero when everything is paid)."""
    ar = source(mart_ar_month)
    balance = ar.c.balance
    sums = sa.select(ar.c.practice_id.label("practice_id"), ar.c.month.label("month"), *_zero_fill({
        "ar_balance": sa.func.sum(balance),
        "ar_insurance": sa.func.sum(sa.case((ar.c.payer != "Patient", balance), else_=0)),
        "ar_patient": sa.func.sum(sa.case((ar.c.payer == "Patient", balance), else_=0)),
        "ar_over_90": sa.func.sum(sa.case((ar.c.bucket.in_(OVER_90_BUCKETS), balance), else_=0)),
        "credit_balances": sa.func.sum(ar.c.credit_balance),
    }, names)).where(m.within(ar.c.practice_id, ids), window.bound(ar.c.month)).group_by(ar.c.practice_id, ar.c.month)
    iv = source(mart_ar_interval)
    first = (sa.select(iv.c.practice_id, sa.func.min(iv.c.from_month).label("first_month"))
             .where(m.within(iv.c.practice_id, ids)).group_by(iv.c.practice_id).subquery("first_month"))
    c = s.calendar_month
    spine = (sa.select(first.c.practice_id.label("practice_id"), c.c.month_start.label("month"),
                       *_zero_fill({}, names))
             .select_from(first)
             .join(c, sa.and_(c.c.month_start >= first.c.first_month, window.bound(c.c.month_start))))
    return [sums, spine]


OVER_90_BUCKETS = tuple(name for name, low, _ in d.AGING_BUCKETS if low > 90)


def _netted(own: sa.ColumnElement, other: sa.ColumnElement) -> sa.ColumnElement:
    """One party's balance of a claim netted against the other's (the claim has two: its payer and the
    patient). A/R (> 0) is at most what the claim owes in all, so a patient's copay taken at the desk before
    the 835 lowers the claim's insurance A/R rather than showing as a patient credit; a credit (< 0) is left
    only when the claim as a whole is in credit, owed to the party (or parties) below zero."""
    net = own + other
    return sa.case(
        (net > 0, sa.case((own < 0, 0), (other < 0, net), else_=own)),
        (net < 0, sa.case((own >= 0, 0), (other < 0, own), else_=net)),
        else_=0,
    )


def _ar_interval(ids: Ids, *, window: Window) -> Select:
    """Grain: practice × claim × payer (or 'Patient') × month the claim's balance took a value: the balance
    holds from that month's end until the claim's next change (``to_month``, NULL: still open). Each party's
    balance is netted within its claim (:func:`_netted`): positive is A/R, negative a credit balance (with
    ``credit_since``, the first month end of its unbroken run). Non-zero balances only. The ledger is
    :func:`dashboard.warehouse.marts.int_ar_ledger`."""
    ledger = m.int_ar_ledger(ids).subquery("ledger")
    patient = ledger.c.responsibility == "patient"
    month = m.month_of(ledger.c.txn_date)
    lm = (sa.select(ledger.c.practice_id, ledger.c.claim_id,
                    sa.func.coalesce(sa.func.min(ledger.c.payer), "").label("payer"),
                    sa.func.min(ledger.c.service_date).label("service_date"), month.label("txn_month"),
                    sa.func.sum(sa.case((patient, 0), else_=ledger.c.amount)).label("insurance"),
                    sa.func.sum(sa.case((patient, ledger.c.amount), else_=0)).label("patient"))
          .group_by(ledger.c.practice_id, ledger.c.claim_id, month)).subquery("lm")
    key = (lm.c.practice_id, lm.c.claim_id)
    upto = {"partition_by": key, "order_by": lm.c.txn_month, "rows": (None, 0)}
    running = sa.select(
        lm.c.practice_id, lm.c.claim_id, lm.c.txn_month,
        sa.func.min(lm.c.payer).over(partition_by=key).label("payer"),
        sa.func.min(lm.c.service_date).over(partition_by=key).label("service_date"),
        sa.func.lead(lm.c.txn_month).over(partition_by=key, order_by=lm.c.txn_month).label("to_month"),
        sa.func.sum(lm.c.insurance).over(**upto).label("insurance"),
        sa.func.sum(lm.c.patient).over(**upto).label("patient"),
    ).subquery("running")
    netted = sa.select(running.c.practice_id, running.c.claim_id, running.c.txn_month, running.c.payer,
                       running.c.service_date, running.c.to_month,
                       _netted(running.c.insurance, running.c.patient).label("insurance"),
                       _netted(running.c.patient, running.c.insurance).label("patient")).subquery("netted")
    nkey = (netted.c.practice_id, netted.c.claim_id)

    def run_start(balance: sa.ColumnElement) -> sa.ColumnElement:
        """The month a credit run begins (the party was not in credit at the claim's previous change)."""
        before = sa.func.lag(balance).over(partition_by=nkey, order_by=netted.c.txn_month)
        return sa.case((sa.and_(balance < 0, sa.func.coalesce(before, 0) >= 0), netted.c.txn_month))

    starts = sa.select(netted, run_start(netted.c.insurance).label("insurance_start"),
                       run_start(netted.c.patient).label("patient_start")).subquery("starts")
    upto = {"partition_by": (starts.c.practice_id, starts.c.claim_id), "order_by": starts.c.txn_month,
            "rows": (None, 0)}
    since = sa.select(starts, sa.func.max(starts.c.insurance_start).over(**upto).label("insurance_since"),
                      sa.func.max(starts.c.patient_start).over(**upto).label("patient_since")).subquery("since")
    # one row per party: the payer's side, then the patient's
    sides = sa.union_all(sa.select(sa.literal(0).label("is_patient")),
                         sa.select(sa.literal(1).label("is_patient"))).subquery("sides")
    is_patient = sides.c.is_patient == 1
    balance = sa.case((is_patient, since.c.patient), else_=since.c.insurance)
    rows = sa.select(
        since.c.practice_id, since.c.claim_id,
        sa.case((is_patient, "Patient"), else_=since.c.payer).label("payer"),
        since.c.service_date, since.c.txn_month.label("from_month"), since.c.to_month,
        balance.label("balance"),
        sa.case((balance < 0, sa.case((is_patient, since.c.patient_since), else_=since.c.insurance_since)))
        .label("credit_since"),
    ).select_from(since).join(sides, sa.true()).subquery("rows")
    return sa.select(*rows.c).where(rows.c.balance != 0)


def aging_bucket(age: sa.ColumnElement) -> sa.ColumnElement:
    """The A/R aging bucket (definitions.AGING_BUCKETS) of an age in days from the date of service."""
    return sa.case(
        *[((age <= high) if low == 0 else sa.and_(age >= low, age <= high), name)
          for name, low, high in d.AGING_BUCKETS if high is not None],
        else_=d.AGING_BUCKETS[-1][0],
    )


def _ar_month(ids: Ids, *, window: Window) -> Select:
    """Grain: practice × month end × payer × age bucket (from the date of service); open claims and balance."""
    iv = source(mart_ar_interval)
    c = s.calendar_month
    # An open interval (to_month NULL) holds for ever: said with coalesce, not OR, so that PostgreSQL reads each
    # interval once and finds its months in the calendar (with the OR it could walk every calendar month and
    # re-read the practice's intervals for each: 16 s instead of 1 s for the largest practice at 1M claims).
    until = sa.func.coalesce(iv.c.to_month, sa.literal(dt.date(9999, 12, 31), Date))
    j = (sa.select(iv.c.practice_id, c.c.month_start.label("month"), iv.c.payer,
                   aging_bucket(c.c.month_end - iv.c.service_date).label("bucket"), iv.c.balance)
         .select_from(iv)
         .join(c, sa.and_(c.c.month_start >= iv.c.from_month, c.c.month_start < until))
         .where(m.within(iv.c.practice_id, ids), window.bound(c.c.month_start))).subquery("j")
    debit, credit = j.c.balance > 0, j.c.balance < 0
    return (sa.select(j.c.practice_id, j.c.month, j.c.payer, j.c.bucket,
                      sa.func.sum(sa.case((debit, 1), else_=0)).label("open_claims"),
                      sa.func.sum(sa.case((debit, j.c.balance), else_=0)).label("balance"),
                      sa.func.sum(sa.case((credit, 1), else_=0)).label("credit_claims"),
                      sa.func.sum(sa.case((credit, -j.c.balance), else_=0)).label("credit_balance"))
            .group_by(j.c.practice_id, j.c.month, j.c.payer, j.c.bucket))


def _adjustment_month(ids: Ids, *, window: Window) -> Select:
    """Grain: practice × payment month × payer × CAS group × CARC × category; distinct claims, Σ amount."""
    adj = m.stg_adjustment(ids).subquery("adj")
    month = m.month_of(adj.c.payment_date)
    return (sa.select(adj.c.practice_id, month.label("month"), adj.c.payer, adj.c.group_code, adj.c.carc,
                      adj.c.category, sa.func.count(sa.distinct(adj.c.claim_id)).label("claims"),
                      sa.func.sum(adj.c.amount).label("amount"))
            .group_by(adj.c.practice_id, month, adj.c.payer, adj.c.group_code, adj.c.carc, adj.c.category))


def _provider_adjustment_month(ids: Ids, *, window: Window) -> Select:
    """Grain: practice × payment month × payer × PLB reason code (PLB03-1); adjustments (PLB pairs) and
    Σ amount as the 835 gives it (positive: taken back from the payment; negative: added to it)."""
    pa, r = s.provider_adjustment, s.remittance
    month = m.month_of(r.c.payment_date)
    payer = sa.func.coalesce(r.c.payer_id, r.c.payer_name)  # as the CAS adjustments are grouped
    return (sa.select(pa.c.practice_id, month.label("month"), payer.label("payer"), pa.c.reason_code,
                      sa.func.count().label("adjustments"), sa.func.sum(pa.c.amount).label("amount"))
            .join(r, r.c.remittance_id == pa.c.remittance_id)
            .where(m.within(pa.c.practice_id, ids))
            .group_by(pa.c.practice_id, month, payer, pa.c.reason_code))


def _payer_month(ids: Ids, *, window: Window) -> Select:
    """Grain: practice × month of service × payer; claims and charges."""
    claim = m.stg_practice_claim(ids).subquery("claim")
    month = m.month_of(claim.c.service_date)
    return (sa.select(claim.c.practice_id, month.label("month"), claim.c.payer, sa.func.count().label("claims"),
                      sa.func.sum(claim.c.charge_amount).label("charges"))
            .group_by(claim.c.practice_id, month, claim.c.payer))


def _claim(ids: Ids, *, window: Window) -> Select:
    """Grain: one claim billed by a known practice, where it stands now: its first 837 and first clearinghouse
    answer, its 835 adjudications (count, first and last date, total paid), the outcome of the latest one with
    its denial dollars, codes and remark codes, its latest appeal, and what the payer and the patient owe now
    (the open intervals of ``mart_ar_interval``). The worklists (ar-follow-up, denial-worklist) and the claim
    lifecycle read it."""
    claim = m.stg_practice_claim(ids).subquery("claim")

    def key(t) -> tuple:
        return t.c.practice_id, t.c.claim_id

    sub = m.int_first_submission(ids).subquery("sub")
    ack = m.int_first_acknowledgement(ids).subquery("ack")
    adj = m.int_adjudication(ids).subquery("adj")
    ranked = sa.select(adj, sa.func.count().over(partition_by=key(adj)).label("n"),
                       sa.func.sum(adj.c.paid_amount).over(partition_by=key(adj)).label("payer_paid"),
                       sa.func.min(adj.c.payment_date).over(partition_by=key(adj)).label("first_date")
                       ).subquery("ranked")
    last = sa.select(ranked).where(ranked.c.adjudication_seq == ranked.c.n).subquery("last")
    denials = m.stg_adjustment(ids).subquery("denials")
    order = sa.func.row_number().over(partition_by=denials.c.claim_payment_id,
                                      order_by=(denials.c.amount.desc(), denials.c.line_number,
                                                denials.c.adjustment_seq))
    coded = (sa.select(denials.c.claim_payment_id, (denials.c.group_code + "-" + denials.c.carc).label("code"),
                       denials.c.carc, order.label("rank"))
             .where(denials.c.category == "denial")).subquery("coded")  # every CLP's; joined to the latest
    by_code = (sa.select(coded.c.claim_payment_id, coded.c.code, sa.func.min(coded.c.rank).label("rank"))
               .group_by(coded.c.claim_payment_id, coded.c.code)).subquery("by_code")
    codes = (sa.select(by_code.c.claim_payment_id,
                       sa.func.string_agg(by_code.c.code, aggregate_order_by(sa.literal_column("','"),
                                                                             by_code.c.rank)).label("codes"))
             .group_by(by_code.c.claim_payment_id)).subquery("codes")
    top = sa.select(coded.c.claim_payment_id, coded.c.carc).where(coded.c.rank == 1).subquery("top")
    rc = s.remark_code
    remark_rank = rc.c.line_number * 1_000 + rc.c.remark_seq
    remarks_each = (sa.select(rc.c.claim_payment_id, rc.c.code, sa.func.min(remark_rank).label("rank"))
                    .where(m.within(rc.c.practice_id, ids))
                    .group_by(rc.c.claim_payment_id, rc.c.code)).subquery("remarks_each")
    remarks = (sa.select(remarks_each.c.claim_payment_id,
                         sa.func.string_agg(remarks_each.c.code, aggregate_order_by(sa.literal_column("','"),
                                                                                    remarks_each.c.rank))
                         .label("codes"))
               .group_by(remarks_each.c.claim_payment_id)).subquery("remarks")
    ev = s.claim_status_event
    appeal = (sa.select(ev.c.practice_id, ev.c.claim_id, sa.func.max(ev.c.event_date).label("appealed_date"))
              .where(ev.c.event_type == "appealed", m.within(ev.c.practice_id, ids))
              .group_by(ev.c.practice_id, ev.c.claim_id)).subquery("appeal")
    accepted = (sa.select(ev.c.practice_id, ev.c.claim_id, sa.func.min(ev.c.event_date).label("accepted_date"))
                .where(ev.c.event_type == "accepted", m.within(ev.c.practice_id, ids))
                .group_by(ev.c.practice_id, ev.c.claim_id)).subquery("accepted")
    first = (sa.select(adj.c.practice_id, adj.c.claim_id,
                       # denied as the denial rate counts it: CLP02 4, or any denial CAS (claim or line)
                       sa.func.max(sa.case((sa.and_(adj.c.adjudication_seq == 1, sa.or_(
                           adj.c.denial_amount > 0, adj.c.status_code == d.CLAIM_STATUS_DENIED)), 1), else_=0))
                       .label("first_denied"),
                       sa.func.min(sa.case((adj.c.paid_amount > 0, adj.c.payment_date))).label("first_paid_date"))
             .group_by(adj.c.practice_id, adj.c.claim_id)).subquery("first")
    overturn = m.int_first_appeal(ids).subquery("overturn")
    mc = s.medical_claim
    lines = (sa.select(mc.c.billing_tin.label("practice_id"), mc.c.claim_id,
                       sa.func.min(mc.c.claim_line_number).label("first_line"),
                       sa.func.max(sa.case((sa.func.coalesce(mc.c.hcpcs_modifier_1, "") != "", 1), else_=0))
                       .label("modified"))
             .where(m.within(mc.c.billing_tin, ids)).group_by(mc.c.billing_tin, mc.c.claim_id)).subquery("lines")
    line1 = (sa.select(mc.c.billing_tin.label("practice_id"), mc.c.claim_id, sa.func.min(mc.c.hcpcs_code)
                       .label("procedure"), sa.func.min(mc.c.place_of_service_code).label("place_of_service"),
                       sa.func.max(sum(sa.case((mc.c[f"diagnosis_code_{i}"].is_not(None), 1), else_=0)
                                       for i in range(1, 13))).label("diagnoses"))
             .join(lines, sa.and_(lines.c.practice_id == mc.c.billing_tin, lines.c.claim_id == mc.c.claim_id,
                                  lines.c.first_line == mc.c.claim_line_number))
             .where(m.within(mc.c.billing_tin, ids)).group_by(mc.c.billing_tin, mc.c.claim_id)).subquery("line1")
    ec = s.eligibility_check
    checked = sa.func.row_number().over(partition_by=(ec.c.practice_id, ec.c.person_id, ec.c.service_date),
                                        order_by=(ec.c.requested_at.desc(), ec.c.check_id.desc()))
    checks = (sa.select(ec.c.practice_id, ec.c.person_id, ec.c.service_date, ec.c.status, checked.label("rn"))
              .where(m.within(ec.c.practice_id, ids))).subquery("checks")
    latest_check = sa.select(checks).where(checks.c.rn == 1).subquery("latest_check")
    iv = source(mart_ar_interval)
    patient = iv.c.payer == "Patient"
    owed = (sa.select(iv.c.practice_id, iv.c.claim_id,
                      sa.func.sum(sa.case((patient, 0), else_=iv.c.balance)).label("payer_balance"),
                      sa.func.sum(sa.case((patient, iv.c.balance), else_=0)).label("patient_balance"))
            .where(iv.c.to_month.is_(None), m.within(iv.c.practice_id, ids))
            .group_by(iv.c.practice_id, iv.c.claim_id)).subquery("owed")
    denied_in_full = sa.or_(last.c.status_code == d.CLAIM_STATUS_DENIED,
                            sa.and_(last.c.paid_amount == 0, last.c.denial_amount > 0))
    outcome = sa.case((last.c.claim_payment_id.is_(None), None), (last.c.status_code == "22", "reversed"),
                      (denied_in_full, "denied"), (last.c.denial_amount > 0, "partially paid"), else_="paid")

    def same(t) -> sa.ColumnElement:
        return sa.and_(t.c.practice_id == claim.c.practice_id, t.c.claim_id == claim.c.claim_id)

    zero = sa.literal(0)
    cp, r = s.claim_payment, s.remittance
    return (
        sa.select(claim.c.practice_id, claim.c.claim_id, claim.c.payer, claim.c.service_date, claim.c.charge_amount,
                  sub.c.submitted_date, ack.c.event_type.label("first_answer"),
                  ack.c.event_date.label("first_answer_date"), accepted.c.accepted_date,
                  sa.func.coalesce(first.c.first_denied, zero).label("first_denied"), first.c.first_paid_date,
                  sa.func.coalesce(overturn.c.overturned, zero).label("overturned"),
                  sa.func.coalesce(last.c.n, zero).label("adjudications"),
                  last.c.first_date.label("first_adjudicated_date"),
                  last.c.payment_date.label("last_adjudicated_date"),
                  sa.func.coalesce(last.c.payer_paid, zero).label("payer_paid"), claim.c.expected_paid,
                  r.c.trace_number.label("last_trace_number"), outcome.label("last_outcome"),
                  sa.func.coalesce(last.c.denial_amount, zero).label("last_denied_amount"),
                  codes.c.codes.label("denial_codes"), top.c.carc.label("top_carc"),
                  remarks.c.codes.label("remark_codes"), appeal.c.appealed_date,
                  sa.func.coalesce(owed.c.payer_balance, zero).label("payer_balance"),
                  sa.func.coalesce(owed.c.patient_balance, zero).label("patient_balance"),
                  line1.c.procedure, line1.c.place_of_service, claim.c.line_count,
                  sa.func.coalesce(lines.c.modified, zero).label("modified"),
                  sa.func.coalesce(line1.c.diagnoses, zero).label("diagnoses"),
                  sa.func.coalesce(latest_check.c.status, "none").label("eligibility"))
        .select_from(claim)
        .outerjoin(sub, same(sub)).outerjoin(ack, same(ack)).outerjoin(last, same(last))
        .outerjoin(cp, cp.c.claim_payment_id == last.c.claim_payment_id)
        .outerjoin(r, r.c.remittance_id == cp.c.remittance_id)
        .outerjoin(codes, codes.c.claim_payment_id == last.c.claim_payment_id)
        .outerjoin(top, top.c.claim_payment_id == last.c.claim_payment_id)
        .outerjoin(remarks, remarks.c.claim_payment_id == last.c.claim_payment_id)
        .outerjoin(appeal, same(appeal)).outerjoin(owed, same(owed)).outerjoin(accepted, same(accepted))
        .outerjoin(first, same(first)).outerjoin(overturn, same(overturn))
        .outerjoin(lines, same(lines)).outerjoin(line1, same(line1))
        .outerjoin(latest_check, sa.and_(latest_check.c.practice_id == claim.c.practice_id,
                                         latest_check.c.person_id == claim.c.person_id,
                                         latest_check.c.service_date == claim.c.service_date))
    )


def _unmatched_payment(ids: Ids, *, window: Window) -> Select:
    """Grain: one 835 claim payment (CLP) whose CLP01 names no claim billed by its practice."""
    cp, r = s.claim_payment, s.remittance
    claim = m.stg_practice_claim(ids).subquery("claim")
    return (sa.select(cp.c.practice_id, cp.c.claim_payment_id, cp.c.claim_id, cp.c.payer_claim_number,
                      r.c.trace_number, sa.func.coalesce(r.c.payer_name, r.c.payer_id).label("payer"), r.c.payment_date,
                      cp.c.charge_amount.label("charge"), cp.c.paid_amount.label("paid"))
            .join(r, r.c.remittance_id == cp.c.remittance_id)
            .outerjoin(claim, sa.and_(claim.c.claim_id == cp.c.claim_id, claim.c.practice_id == cp.c.practice_id))
            .where(m.within(cp.c.practice_id, ids), claim.c.claim_id.is_(None)))


def _remittance(ids: Ids, *, window: Window) -> Select:
    """Grain: one 835 payment (BPR/TRN): trace number, payer, date, method, amount, its claim payments (CLP)
    and how many of them name no claim of the practice (CLP01 unmatched), and the cash reconciliation:
    Σ CLP04, Σ PLB04 and the difference BPR02 − (Σ CLP04 − Σ PLB04), BPR02 negated for a debit (BPR03 D),
    which is 0.00 for a balanced 835 (a load with --allow-unbalanced can keep one that is not)."""
    r, cp, pa = s.remittance, s.claim_payment, s.provider_adjustment
    claim = m.stg_practice_claim(ids).subquery("claim")
    per = (sa.select(cp.c.remittance_id, sa.func.count().label("claims"),
                     sa.func.sum(sa.case((claim.c.claim_id.is_(None), 1), else_=0)).label("unmatched"),
                     sa.func.sum(cp.c.paid_amount).label("paid"))
           .select_from(cp)
           .outerjoin(claim, sa.and_(claim.c.claim_id == cp.c.claim_id, claim.c.practice_id == cp.c.practice_id))
           .where(m.within(cp.c.practice_id, ids))
           .group_by(cp.c.remittance_id)
           .subquery("per"))
    plb = (sa.select(pa.c.remittance_id, sa.func.sum(pa.c.amount).label("amount"))
           .where(m.within(pa.c.practice_id, ids)).group_by(pa.c.remittance_id).subquery("plb"))
    zero = sa.literal(0)
    paid, withheld = sa.func.coalesce(per.c.paid, zero), sa.func.coalesce(plb.c.amount, zero)
    cash = sa.case((r.c.credit_debit == "D", -r.c.amount), else_=r.c.amount)  # a debit is money taken back
    return (sa.select(r.c.practice_id, r.c.remittance_id, r.c.trace_number,
                      sa.func.coalesce(r.c.payer_name, r.c.payer_id).label("payer"), r.c.payment_date, r.c.method,
                      r.c.amount, sa.func.coalesce(per.c.claims, zero).label("claims"),
                      sa.func.coalesce(per.c.unmatched, zero).label("unmatched_claims"),
                      paid.label("claim_payments"), withheld.label("provider_adjustments"),
                      (cash - (paid - withheld)).label("difference"))
            .outerjoin(per, per.c.remittance_id == r.c.remittance_id)
            .outerjoin(plb, plb.c.remittance_id == r.c.remittance_id)
            .where(m.within(r.c.practice_id, ids)))


def _denial_line(ids: Ids, *, window: Window) -> Select:
    """Grain: one denial adjustment (a CAS in the denial category: claim level is line 0) of an 835 claim
    payment, with its claim's CLP02 status, charge and paid, the line's procedure, whether CLP01 names a
    claim of the practice (``matched``), and the remark codes that explain it: the line's own (LQ) in
    their order, then the claim's (MOA/MIA, line 0), each once. The denial worklist pages these rows."""
    adj = m.stg_adjustment(ids).subquery("adj")
    cp, sl, rc = s.claim_payment, s.service_line_payment, s.remark_code
    claim = m.stg_practice_claim(ids).subquery("claim")
    denied = sa.select(adj).where(adj.c.category == "denial").subquery("denied")
    keys = sa.select(denied.c.claim_payment_id, denied.c.line_number).distinct().subquery("keys")
    rank = sa.case((rc.c.line_number == keys.c.line_number, 0), else_=1) * 1_000_000 + rc.c.remark_seq
    ranked = (sa.select(keys.c.claim_payment_id, keys.c.line_number, rc.c.code, sa.func.min(rank).label("rank"))
              .select_from(keys)
              .join(rc, sa.and_(rc.c.claim_payment_id == keys.c.claim_payment_id,
                                sa.or_(rc.c.line_number == keys.c.line_number, rc.c.line_number == 0)))
              .where(m.within(rc.c.practice_id, ids))
              .group_by(keys.c.claim_payment_id, keys.c.line_number, rc.c.code)).subquery("ranked")
    codes = (sa.select(ranked.c.claim_payment_id, ranked.c.line_number,
                       sa.func.string_agg(ranked.c.code, aggregate_order_by(sa.literal_column("','"), ranked.c.rank))
                       .label("codes"))
             .group_by(ranked.c.claim_payment_id, ranked.c.line_number)).subquery("codes")
    return (
        sa.select(denied.c.practice_id, denied.c.claim_payment_id, denied.c.line_number, denied.c.adjustment_seq,
                  denied.c.claim_id, denied.c.payer, denied.c.payment_date, cp.c.status_code.label("claim_status"),
                  cp.c.charge_amount.label("claim_charge"), cp.c.paid_amount.label("claim_paid"),
                  sl.c.procedure_code, denied.c.group_code, denied.c.carc, denied.c.amount,
                  claim.c.claim_id.is_not(None).label("matched"),
                  sa.func.coalesce(codes.c.codes, "").label("remark_codes"))
        .select_from(denied)
        .join(cp, cp.c.claim_payment_id == denied.c.claim_payment_id)
        .outerjoin(sl, sa.and_(sl.c.claim_payment_id == denied.c.claim_payment_id,
                               sl.c.line_number == denied.c.line_number))
        .outerjoin(claim, sa.and_(claim.c.claim_id == denied.c.claim_id,
                                  claim.c.practice_id == denied.c.practice_id))
        .outerjoin(codes, sa.and_(codes.c.claim_payment_id == denied.c.claim_payment_id,
                                  codes.c.line_number == denied.c.line_number))
    )


def _enrollment_month(ids: Ids, *, window: Window) -> Select:
    """Grain: employer × month × plan × tier; members and subscribers enrolled, adds and terms."""
    mm = m.int_member_month(ids).subquery("mm")
    names = ("members", "subscribers", "adds", "terms")
    counts = (sa.select(mm.c.employer_id, mm.c.month, mm.c.plan, mm.c.tier,
                        sa.func.count(sa.distinct(mm.c.person_id)).label("members"),
                        sa.func.count(sa.distinct(sa.case((mm.c.is_subscriber, mm.c.person_id)))).label("subscribers"),
                        sa.literal(0).label("adds"), sa.literal(0).label("terms"))
              .where(window.bound(mm.c.month))
              .group_by(mm.c.employer_id, mm.c.month, mm.c.plan, mm.c.tier))
    ch = m.int_enrollment_change(ids).subquery("ch")
    changes = (sa.select(ch.c.employer_id, ch.c.month, ch.c.plan, ch.c.tier, sa.literal(0).label("members"),
                         sa.literal(0).label("subscribers"), ch.c.adds, ch.c.terms)
               .where(window.bound(ch.c.month)))
    return _sum_parts(("employer_id", "month", "plan", "tier"), names, [counts, changes])


def _demographic_month(ids: Ids, *, window: Window) -> Select:
    """Grain: employer × month × age band × gender (dashboard.metrics.groupers); members and subscribers
    enrolled in the month (any overlap, as member months)."""
    mm = m.int_member_month(ids).subquery("mm")
    return (sa.select(mm.c.employer_id, mm.c.month, mm.c.age_band, mm.c.gender,
                      sa.func.count(sa.distinct(mm.c.person_id)).label("members"),
                      sa.func.count(sa.distinct(sa.case((mm.c.is_subscriber, mm.c.person_id)))).label("subscribers"))
            .where(window.bound(mm.c.month))
            .group_by(mm.c.employer_id, mm.c.month, mm.c.age_band, mm.c.gender))


def _enrollment_change_month(ids: Ids, *, window: Window) -> Select:
    """Grain: employer × month of the change's effective date × 834 maintenance type (INS03) × reason (INS04, ''
    when none was given); the people it concerned. Only 834 loads record these."""
    ch = s.enrollment_change
    month = m.month_of(ch.c.effective_date)
    reason = sa.func.coalesce(ch.c.maintenance_reason, "")
    return (sa.select(ch.c.employer_id, month.label("month"), ch.c.maintenance_type, reason.label("maintenance_reason"),
                      sa.func.count(sa.distinct(ch.c.person_id)).label("people"))
            .where(ch.c.effective_date.is_not(None), m.within(ch.c.employer_id, ids))
            .group_by(ch.c.employer_id, month, ch.c.maintenance_type, reason))


def _employer_month(ids: Ids, *, window: Window) -> Select:
    """Grain: employer × month; member and subscriber months, paid and allowed in enrolled months and the
    people with those claims: the parts every period total is summed from."""
    mm = m.int_member_month(ids).subquery("mm")
    months = (sa.select(mm.c.employer_id, mm.c.month,
                        sa.func.count(sa.distinct(mm.c.person_id)).label("member_months"),
                        sa.func.count(sa.distinct(sa.case((mm.c.is_subscriber, mm.c.person_id))))
                        .label("subscriber_months"))
              .where(window.bound(mm.c.month))
              .group_by(mm.c.employer_id, mm.c.month).subquery("months"))
    mmo = source(mart_member_month)
    money = (sa.select(mmo.c.employer_id, mmo.c.month, sa.func.sum(mmo.c.paid).label("paid"),
                       sa.func.sum(mmo.c.allowed).label("allowed"),
                       sa.func.count(sa.distinct(mmo.c.person_id)).label("members_with_claims"))
             .where(mmo.c.in_enrollment == 1, m.within(mmo.c.employer_id, ids))
             .group_by(mmo.c.employer_id, mmo.c.month).subquery("money"))
    # the months the warehouse holds the employer's claims for: its first claim month to its newest payment
    mc = source(mart_member_claim)
    span = (sa.select(mc.c.employer_id, sa.func.min(mc.c.month).label("first"),
                      # a claim paid with no paid date known is at least as old as its date
                      m.month_of(sa.func.max(sa.func.coalesce(mc.c.paid_date, mc.c.claim_date))).label("last"))
            .where(m.within(mc.c.employer_id, ids)).group_by(mc.c.employer_id).subquery("span"))
    zero = sa.literal(0)
    # a claim in an enrolled month always has its member month, so the member months carry every row
    return (sa.select(months.c.employer_id, months.c.month, months.c.member_months, months.c.subscriber_months,
                      sa.func.coalesce(money.c.paid, zero).label("paid"),
                      sa.func.coalesce(money.c.allowed, zero).label("allowed"),
                      sa.func.coalesce(money.c.members_with_claims, zero).label("members_with_claims"),
                      sa.case((sa.and_(months.c.month >= span.c.first, months.c.month <= span.c.last), 1),
                              else_=0).label("claims_data"))
            .select_from(months)
            .outerjoin(money, sa.and_(money.c.employer_id == months.c.employer_id, money.c.month == months.c.month))
            .outerjoin(span, span.c.employer_id == months.c.employer_id))


def _spend_month(ids: Ids, *, window: Window) -> Select:
    """Grain: employer × claim month × service category, claims in enrolled months; paid, allowed, claims
    and the people with them (summed from mart_member_month: the claims are read once)."""
    mmo = source(mart_member_month)
    return (sa.select(mmo.c.employer_id, mmo.c.month, mmo.c.service_category,
                      sa.func.sum(mmo.c.paid).label("paid"), sa.func.sum(mmo.c.allowed).label("allowed"),
                      sa.func.sum(mmo.c.claims).label("claims"),
                      sa.func.count(sa.distinct(mmo.c.person_id)).label("members_with_claims"))
            .where(mmo.c.in_enrollment == 1, m.within(mmo.c.employer_id, ids))
            .group_by(mmo.c.employer_id, mmo.c.month, mmo.c.service_category))


def _member_claim(ids: Ids, *, window: Window) -> Select:
    """Grain: claim (medical or pharmacy) of an enrolled person × the employer it is attributed to; its
    month, category, paid, allowed, paid date, network and utilization events (see
    :func:`dashboard.warehouse.marts.int_member_claim`): the one read of the claims every employer mart is
    summed from. Person and claim ids never leave the warehouse: reports read aggregates of this table."""
    mc = m.int_member_claim(ids).subquery("mc")
    return sa.select(mc.c.employer_id, mc.c.person_id, mc.c.source, mc.c.claim_id, mc.c.claim_date,
                     mc.c.claim_month.label("month"),
                     mc.c.in_enrollment, mc.c.service_category, mc.c.paid_amount.label("paid"),
                     mc.c.allowed_amount.label("allowed"), mc.c.paid_date, mc.c.network,
                     *[mc.c[f"is_{flag}"].label(flag) for flag in UTILIZATION_FLAGS.values()],
                     mc.c.service_category_2, mc.c.condition_group, mc.c.place_of_service, mc.c.provider_id)


def _cost_driver_month(ids: Ids, *, window: Window) -> Select:
    """Grain: employer × claim month × dimension × value (see COST_DRIVER_DIMENSIONS), claims in enrolled months;
    paid, allowed, claims and the people with them. Each dimension's values partition the month's paid; the
    service categories 2 of one service category partition its spend cell. Providers are billing organisations
    (TINs) named from the practice table where it knows them; all pharmacies are one row."""
    mc = source(mart_member_claim)
    parts = []
    for dimension in COST_DRIVER_DIMENSIONS:
        value = mc.c[dimension]
        nested = dimension == "service_category_2"
        # the pharmacy row is the pharmacy spend cell: its own group, never another's complement
        parent = mc.c.service_category if nested else sa.case((value == g.PHARMACY_PROVIDER[0], "pharmacy"),
                                                                else_="")
        parts.append(sa.select(mc.c.employer_id, mc.c.month, sa.literal(dimension).label("dimension"),
                               value.label("value"), parent.label("parent"),
                               sa.func.sum(mc.c.paid).label("paid"), sa.func.sum(mc.c.allowed).label("allowed"),
                               sa.func.count().label("claims"),
                               sa.func.count(sa.distinct(mc.c.person_id)).label("members_with_claims"))
                     .where(mc.c.in_enrollment == 1, m.within(mc.c.employer_id, ids))
                     .group_by(mc.c.employer_id, mc.c.month, value, *([parent] if nested else [])))
    cells = sa.union_all(*parts).subquery("cells")
    practice = s.practice
    return (sa.select(cells.c.employer_id, cells.c.month, cells.c.dimension, cells.c.value, cells.c.parent,
                      practice.c.practice_name.label("label"),
                      cells.c.paid, cells.c.allowed, cells.c.claims, cells.c.members_with_claims)
            .select_from(cells).outerjoin(practice, sa.and_(cells.c.dimension == "provider_id",
                                                            practice.c.practice_id == cells.c.value)))


def _member_month(ids: Ids, *, window: Window) -> Select:
    """Grain: employer × person × claim month × in enrollment (1/0) × service category; paid, allowed,
    claims and utilization events: the people behind every distinct count (members with claims,
    high-cost claimants, spend outside enrollment)."""
    mc = source(mart_member_claim)
    return (sa.select(mc.c.employer_id, mc.c.person_id, mc.c.month, mc.c.in_enrollment, mc.c.service_category,
                      sa.func.sum(mc.c.paid).label("paid"), sa.func.sum(mc.c.allowed).label("allowed"),
                      sa.func.count().label("claims"),
                      *[sa.func.sum(mc.c[flag]).label(flag) for flag in UTILIZATION_FLAGS.values()])
            .where(m.within(mc.c.employer_id, ids))
            .group_by(mc.c.employer_id, mc.c.person_id, mc.c.month, mc.c.in_enrollment, mc.c.service_category))


def _months_after(later: sa.ColumnElement, earlier: sa.ColumnElement) -> sa.ColumnElement:
    """Whole calendar months from ``earlier``'s month to ``later``'s (both dates)."""
    return ((sa.extract("year", later) - sa.extract("year", earlier)) * 12
            + sa.extract("month", later) - sa.extract("month", earlier))


def _claim_lag(ids: Ids, *, window: Window) -> Select:
    """Grain: employer × incurred month × lag (months from the incurred month to the paid month); paid,
    claims and Σ paid × days from the claim date to payment, of paid claims in enrolled months: the
    development triangle completion factors are estimated from (dashboard.metrics.employer)."""
    mc = source(mart_member_claim)
    lag = sa.func.greatest(_months_after(mc.c.paid_date, mc.c.month), 0)
    return (sa.select(mc.c.employer_id, mc.c.month, sa.cast(lag, Integer).label("lag"),
                      sa.func.sum(mc.c.paid).label("paid"), sa.func.count().label("claims"),
                      sa.func.coalesce(sa.func.sum(mc.c.paid * (mc.c.paid_date - mc.c.claim_date)), 0)
                      .label("paid_lag_days"))
            .where(mc.c.in_enrollment == 1, mc.c.paid_date.is_not(None), m.within(mc.c.employer_id, ids))
            .group_by(mc.c.employer_id, mc.c.month, lag))


def _network_month(ids: Ids, *, window: Window) -> Select:
    """Grain: employer × claim month × network (in, out, unknown), claims in enrolled months; paid,
    allowed, claims and the people with them."""
    mc = source(mart_member_claim)
    return (sa.select(mc.c.employer_id, mc.c.month, mc.c.network,
                      sa.func.sum(mc.c.paid).label("paid"), sa.func.sum(mc.c.allowed).label("allowed"),
                      sa.func.count().label("claims"),
                      sa.func.count(sa.distinct(mc.c.person_id)).label("members_with_claims"))
            .where(mc.c.in_enrollment == 1, m.within(mc.c.employer_id, ids))
            .group_by(mc.c.employer_id, mc.c.month, mc.c.network))


def _high_cost_year(ids: Ids, *, window: Window) -> Select:
    """Grain: employer × calendar year × high-cost band: members whose paid in the year's enrolled months
    falls in the band, and their paid. Calendar (plan) years are the only period high-cost claimants are
    counted over, so two overlapping windows can never be differenced (see dashboard.deidentified)."""
    mmo = source(mart_member_month)
    year = sa.cast(sa.func.date_trunc("year", mmo.c.month), sa.Date)
    per_member = (sa.select(mmo.c.employer_id, mmo.c.person_id, year.label("year"),
                            sa.func.sum(mmo.c.paid).label("paid"))
                  .where(mmo.c.in_enrollment == 1, m.within(mmo.c.employer_id, ids))
                  .group_by(mmo.c.employer_id, mmo.c.person_id, year)).subquery("per_member")
    band = sa.case(*[(sa.and_(per_member.c.paid >= low, per_member.c.paid < high) if high else per_member.c.paid >= low,
                      name) for name, low, high in d.HIGH_COST_BANDS], else_=None)
    banded = sa.select(per_member.c.employer_id, per_member.c.year, band.label("band"), per_member.c.paid).subquery("b")
    return (sa.select(banded.c.employer_id, banded.c.year, banded.c.band, sa.func.count().label("claimants"),
                      sa.func.sum(banded.c.paid).label("paid"))
            .where(banded.c.band.is_not(None))
            .group_by(banded.c.employer_id, banded.c.year, banded.c.band))


def _utilization_month(ids: Ids, *, window: Window) -> Select:
    """Grain: employer × month × measure, claims in enrolled months; events and the people with them."""
    mmo = source(mart_member_month)
    parts = [sa.select(mmo.c.employer_id, mmo.c.month, sa.literal(measure).label("measure"),
                       sa.func.sum(mmo.c[flag]).label("events"),
                       sa.func.count(sa.distinct(sa.case((mmo.c[flag] > 0, mmo.c.person_id))))
                       .label("members_with_events"))
             .where(mmo.c.in_enrollment == 1, m.within(mmo.c.employer_id, ids))
             .group_by(mmo.c.employer_id, mmo.c.month)
             for measure, flag in UTILIZATION_FLAGS.items()]
    return sa.select(sa.union_all(*parts).subquery("u"))


def _practice_month_ar_only(ids: Ids, *, window: Window) -> Select:
    """The months a practice gains without new data: A/R only (every other measure needs activity)."""
    names = list(PRACTICE_MONTH_MEASURES)
    return _sum_parts(("practice_id", "month"), names, _practice_ar_parts(ids, window=window, names=names))


def _employer_month_enrollment_only(ids: Ids, *, window: Window) -> Select:
    """The months an employer gains without new data: member and subscriber months only (no claims)."""
    mm = m.int_member_month(ids).subquery("mm")
    return (sa.select(mm.c.employer_id, mm.c.month,
                      sa.func.count(sa.distinct(mm.c.person_id)).label("member_months"),
                      sa.func.count(sa.distinct(sa.case((mm.c.is_subscriber, mm.c.person_id))))
                      .label("subscriber_months"),
                      sa.literal(0).label("paid"), sa.literal(0).label("allowed"),
                      sa.literal(0).label("members_with_claims"), sa.literal(0).label("claims_data"))
            .where(window.bound(mm.c.month))
            .group_by(mm.c.employer_id, mm.c.month))


@dataclass(frozen=True)
class Mart:
    table: Table
    tenant: str  # "practice" | "employer": whose rows a load refreshes
    build: Callable[..., Select]  # build(ids, window=...) -> the rows of these tenants
    # for marts with rows in months without activity (balances, enrollment): the rows of months the
    # horizon gains, for tenants the load did not touch
    extend: Callable[..., Select] | None = None


# In build order: a mart may read the ones before it (through source()).
MARTS: dict[str, Mart] = {mart.table.name: mart for mart in (
    Mart(mart_payer_month, "practice", _payer_month),
    Mart(mart_adjustment_month, "practice", _adjustment_month),
    Mart(mart_provider_adjustment_month, "practice", _provider_adjustment_month),
    Mart(mart_remittance, "practice", _remittance),
    Mart(mart_unmatched_payment, "practice", _unmatched_payment),
    Mart(mart_denial_line, "practice", _denial_line),
    Mart(mart_member_claim, "employer", _member_claim),
    Mart(mart_member_month, "employer", _member_month),
    Mart(mart_claim_lag, "employer", _claim_lag),
    Mart(mart_network_month, "employer", _network_month),
    Mart(mart_spend_month, "employer", _spend_month),
    Mart(mart_cost_driver_month, "employer", _cost_driver_month),
    Mart(mart_ar_interval, "practice", _ar_interval),
    Mart(mart_claim, "practice", _claim),  # after mart_ar_interval, whose open intervals it reads
    Mart(mart_ar_month, "practice", _ar_month, extend=_ar_month),
    Mart(mart_practice_month, "practice", _practice_month, extend=_practice_month_ar_only),
    Mart(mart_utilization_month, "employer", _utilization_month),
    Mart(mart_high_cost_year, "employer", _high_cost_year),
    Mart(mart_enrollment_month, "employer", _enrollment_month, extend=_enrollment_month),
    Mart(mart_demographic_month, "employer", _demographic_month, extend=_demographic_month),
    Mart(mart_enrollment_change_month, "employer", _enrollment_change_month),
    Mart(mart_employer_month, "employer", _employer_month, extend=_employer_month_enrollment_only),
)}


# --- refresh ----------------------------------------------------------------------------------------

def _date(value) -> dt.date | None:
    return value.date() if isinstance(value, dt.datetime) else value


def refresh_marts(conn: Connection, *, practices: Ids = None, employers: Ids = None) -> None:
    """Rebuild the mart rows of these practices and employers (None: all; empty: none) inside the caller's
    transaction. If the warehouse's horizon moved, the months it gained are added for everyone else too
    (balances and enrollment go on without new data). Then ANALYZE."""
    touched = {"practice": None if practices is None else sorted(set(practices)),
               "employer": None if employers is None else sorted(set(employers))}
    # The builds read the facts a load just wrote: plan them on statistics that know those rows (autovacuum may
    # be off, and never sees a load before it commits). Without them a one-practice refresh at 1M claims ran
    # for minutes in nested loops on PostgreSQL. See engine.analyze_stale.
    analyze_stale(conn, s.FACT_TABLES)
    state = mart_state
    old = _date(conn.execute(sa.select(state.c.horizon)).scalar())
    if conn.execute(sa.select(sa.func.count()).select_from(state)).scalar_one() == 0:
        touched = {"practice": None, "employer": None}  # never built (a new or upgraded warehouse): all of it
    for mart in MARTS.values():
        ids = touched[mart.tenant]
        if ids is not None and not ids:
            continue
        _replace(conn, mart, ids, Window(horizon=_current_horizon(conn)))
        analyze_stale(conn, [mart.table])  # read by the marts after it (a first build fills it from empty)
    new = _current_horizon(conn)
    if old is not None and new is not None and new > old:
        for mart in MARTS.values():
            ids = touched[mart.tenant]
            if mart.extend is not None and ids is not None:
                _insert(conn, mart, None, Window(horizon=new, after=old), skip=ids, build=mart.extend)
    conn.execute(state.delete())
    conn.execute(state.insert().values(horizon=new, version=MARTS_VERSION))
    analyze(conn, [mart.table for mart in MARTS.values()])


def rebuild_all(conn: Connection) -> None:
    """Drop and rebuild every mart (their definitions may have changed since they were built), after creating
    any other table a newer version defines (a reference table such as payer_rule)."""
    metadata.create_all(conn, tables=[t for t in metadata.sorted_tables if t.name not in MARTS])
    for table in (*[mart.table for mart in reversed(MARTS.values())], mart_state):
        table.drop(conn, checkfirst=True)
    for table in (mart_state, *[mart.table for mart in MARTS.values()]):
        table.create(conn)
    refresh_marts(conn)


def _current_horizon(conn: Connection) -> dt.date | None:
    return _date(conn.execute(_horizon_select()).scalar())


def _replace(conn: Connection, mart: Mart, ids: Ids, window: Window) -> None:
    column = mart.table.c[f"{mart.tenant}_id"]
    conn.execute(mart.table.delete().where(sa.true() if ids is None else column.in_(ids)))
    _insert(conn, mart, ids, window)


def _insert(conn: Connection, mart: Mart, ids: Ids, window: Window, *, skip: Sequence[str] = (),
            build: Callable[..., Select] | None = None) -> None:
    rows = (build or mart.build)(ids, window=window).subquery("rows")
    # written in tenant and month order: DuckDB's zone maps then skip the row groups of other tenants
    order = [rows.c[c] for c in (f"{mart.tenant}_id", "month", "payment_date") if c in rows.c]
    query = sa.select(*rows.c).order_by(*order)
    if skip:
        query = query.where(rows.c[f"{mart.tenant}_id"].not_in(list(skip)))
    conn.execute(mart.table.insert().from_select([c.name for c in rows.c], query))


def analyze(conn: Connection, tables: Sequence[Table]) -> None:
    """Fresh planner statistics for what a load wrote: PostgreSQL's autovacuum may be off, and a plan made
    on an unanalysed table can take minutes instead of milliseconds."""
    if conn.dialect.name == "postgresql":
        for table in tables:
            conn.execute(sa.text(f'ANALYZE "{table.name}"'))
