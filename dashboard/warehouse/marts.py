"""Named layers the metrics are built from, after the Tuva Project's staging -> intermediate -> final.

Each function returns a SQLAlchemy selectable with the caller's practice or employer ids already in its
WHERE clause, so scoping happens in SQL at the base tables, never after the fact in Python.

* ``stg_*``: one row per business object, straight from the base tables.
* ``int_*``: joins and classifications shared by several KPIs.
The final layer is :mod:`dashboard.metrics`, one function per KPI.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement, Select

from dashboard.metrics import definitions as d
from dashboard.warehouse import schema as s


def within(column: ColumnElement, ids: Sequence[str] | None) -> ColumnElement:
    """``column IN ids``; None means no restriction, an empty list matches nothing (deny by default)."""
    if ids is None:
        return sa.true()
    if not ids:
        return sa.false()
    return column.in_(list(ids))


def month_of(column: ColumnElement) -> ColumnElement:
    return sa.cast(sa.func.date_trunc("month", column), sa.Date)


# --- staging ------------------------------------------------------------------------------------

def stg_practice_claim(practice_ids: Sequence[str] | None) -> Select:
    """One row per claim billed by a known practice: charge and date of service from its lines."""
    mc = s.medical_claim
    return (
        sa.select(
            mc.c.claim_id,
            mc.c.billing_tin.label("practice_id"),
            sa.func.min(mc.c.payer).label("payer"),
            sa.func.min(mc.c.person_id).label("person_id"),
            sa.func.min(sa.func.coalesce(mc.c.claim_start_date, mc.c.claim_line_start_date)).label("service_date"),
            sa.func.sum(mc.c.charge_amount).label("charge_amount"),
        )
        .where(mc.c.billing_tin.in_(sa.select(s.practice.c.practice_id)))
        .where(within(mc.c.billing_tin, practice_ids))
        .group_by(mc.c.claim_id, mc.c.billing_tin)
    )


def stg_adjustment(practice_ids: Sequence[str] | None) -> Select:
    """Every CAS adjustment with its category, payment date and payer."""
    a, cp, r = s.claim_adjustment, s.claim_payment, s.remittance
    return (
        sa.select(
            a.c.practice_id, cp.c.claim_id, a.c.claim_payment_id, a.c.line_number, a.c.adjustment_seq,
            a.c.group_code, a.c.carc,
            a.c.amount, d.adjustment_category(a.c.group_code, a.c.carc).label("category"),
            r.c.payment_date, sa.func.coalesce(r.c.payer_id, r.c.payer_name).label("payer"),
        )
        .join(cp, cp.c.claim_payment_id == a.c.claim_payment_id)
        .join(r, r.c.remittance_id == cp.c.remittance_id)
        .where(within(a.c.practice_id, practice_ids))
    )


# --- intermediate: practices --------------------------------------------------------------------

def int_adjudication(practice_ids: Sequence[str] | None) -> Select:
    """One row per 835 claim payment (CLP) with its adjustments summed by category and its order
    among the adjudications of the same claim (``adjudication_seq`` 1 = first adjudication)."""
    cp, r = s.claim_payment, s.remittance
    adj = stg_adjustment(practice_ids).subquery("adj")
    sums = (
        sa.select(
            adj.c.claim_payment_id,
            *[sa.func.sum(sa.case((adj.c.category == cat, adj.c.amount), else_=0)).label(f"{cat}_amount")
              for cat in ("contractual", "patient_cost_share", "coordination", "denial")],
            sa.func.sum(sa.case((adj.c.group_code == "PR", adj.c.amount), else_=0)).label("patient_amount"),
        )
        .group_by(adj.c.claim_payment_id)
        .subquery("sums")
    )
    zero = sa.literal(0)
    return (
        sa.select(
            cp.c.claim_payment_id, cp.c.claim_id, cp.c.practice_id, cp.c.status_code, cp.c.charge_amount,
            cp.c.paid_amount, r.c.payment_date, sa.func.coalesce(r.c.payer_id, r.c.payer_name).label("payer"),
            *[sa.func.coalesce(sums.c[f"{cat}_amount"], zero).label(f"{cat}_amount")
              for cat in ("contractual", "patient_cost_share", "coordination", "denial", "patient")],
            sa.func.row_number().over(
                partition_by=(cp.c.practice_id, cp.c.claim_id),
                order_by=(r.c.payment_date, cp.c.claim_payment_id),
            ).label("adjudication_seq"),
        )
        .join(r, r.c.remittance_id == cp.c.remittance_id)
        .outerjoin(sums, sums.c.claim_payment_id == cp.c.claim_payment_id)
        .where(within(cp.c.practice_id, practice_ids))
    )


def int_first_adjudication(practice_ids: Sequence[str] | None) -> Select:
    """The first adjudication of each claim, flagged ``is_denial`` when the payer denied it:
    CLP02 = 4, or nothing paid and a denial adjustment present (CO-45 and PR-1/2/3 are not denials)."""
    adj = int_adjudication(practice_ids).subquery("adjudication")
    is_denial = sa.or_(
        adj.c.status_code == d.CLAIM_STATUS_DENIED,
        sa.and_(adj.c.paid_amount == 0, adj.c.denial_amount > 0),
    )
    return sa.select(adj, sa.case((is_denial, 1), else_=0).label("is_denial")).where(adj.c.adjudication_seq == 1)


def int_first_acknowledgement(practice_ids: Sequence[str] | None) -> Select:
    """The clearinghouse's first answer (277CA accepted / rejected) to each claim."""
    ev = s.claim_status_event
    ranked = (
        sa.select(
            ev.c.claim_id, ev.c.practice_id, ev.c.event_type, ev.c.event_date,
            sa.func.row_number().over(partition_by=(ev.c.practice_id, ev.c.claim_id),
                                      order_by=ev.c.event_seq).label("rn"),
        )
        .where(ev.c.event_type.in_(("accepted", "rejected")))
        .where(within(ev.c.practice_id, practice_ids))
        .subquery("ranked")
    )
    return sa.select(ranked.c.claim_id, ranked.c.practice_id, ranked.c.event_type, ranked.c.event_date).where(
        ranked.c.rn == 1
    )


def int_first_submission(practice_ids: Sequence[str] | None) -> Select:
    ev = s.claim_status_event
    return (
        sa.select(ev.c.practice_id, ev.c.claim_id, sa.func.min(ev.c.event_date).label("submitted_date"))
        .where(ev.c.event_type == "submitted")
        .where(within(ev.c.practice_id, practice_ids))
        .group_by(ev.c.practice_id, ev.c.claim_id)
    )


def int_ar_ledger(practice_ids: Sequence[str] | None) -> Select:
    """Every movement of a claim's balance, signed (+ raises A/R), with who owes it.

    charge +charge (insurance) on the date of service; payer paid -paid; contractual and coordination
    adjustments -amount; PR adjustments move the amount from insurance to patient; patient payments
    -amount (a refund is a negative payment, so it raises A/R); write-offs -amount. Denial adjustments
    do not move the balance: a denied claim stays in A/R until it is paid on appeal or written off.
    Only 835 payments matched to a known claim enter the ledger.
    """
    claim = stg_practice_claim(practice_ids).subquery("claim")
    adj = stg_adjustment(practice_ids).subquery("adj")
    cp, r, pp, wo = s.claim_payment, s.remittance, s.patient_payment, s.claim_write_off
    cols = ("practice_id", "claim_id", "payer", "service_date", "txn_date", "responsibility", "kind", "amount")

    def row(*values) -> list:
        return [v.label(n) for v, n in zip(values, cols, strict=True)]

    lit = sa.literal
    charges = sa.select(*row(claim.c.practice_id, claim.c.claim_id, claim.c.payer, claim.c.service_date,
                             claim.c.service_date, lit("insurance"), lit("charge"), claim.c.charge_amount))
    paid = (
        sa.select(*row(claim.c.practice_id, claim.c.claim_id, claim.c.payer, claim.c.service_date,
                       r.c.payment_date, lit("insurance"), lit("payer_payment"), -cp.c.paid_amount))
        .select_from(cp)
        .join(r, r.c.remittance_id == cp.c.remittance_id)
        .join(claim, sa.and_(claim.c.claim_id == cp.c.claim_id, claim.c.practice_id == cp.c.practice_id))
    )
    matched_adj = sa.and_(claim.c.claim_id == adj.c.claim_id, claim.c.practice_id == adj.c.practice_id)
    reductions = (
        sa.select(*row(claim.c.practice_id, claim.c.claim_id, claim.c.payer, claim.c.service_date,
                       adj.c.payment_date, lit("insurance"), adj.c.category, -adj.c.amount))
        .select_from(adj).join(claim, matched_adj)
        .where(adj.c.category.in_(("contractual", "coordination")))
        .where(adj.c.group_code != "PR")
    )
    to_patient_out = (
        sa.select(*row(claim.c.practice_id, claim.c.claim_id, claim.c.payer, claim.c.service_date,
                       adj.c.payment_date, lit("insurance"), lit("patient_transfer"), -adj.c.amount))
        .select_from(adj).join(claim, matched_adj).where(adj.c.group_code == "PR")
    )
    to_patient_in = (
        sa.select(*row(claim.c.practice_id, claim.c.claim_id, claim.c.payer, claim.c.service_date,
                       adj.c.payment_date, lit("patient"), lit("patient_transfer"), adj.c.amount))
        .select_from(adj).join(claim, matched_adj).where(adj.c.group_code == "PR")
    )
    patient_paid = (
        sa.select(*row(claim.c.practice_id, claim.c.claim_id, claim.c.payer, claim.c.service_date,
                       pp.c.payment_date, lit("patient"), lit("patient_payment"), -pp.c.amount))
        .select_from(pp)
        .join(claim, sa.and_(claim.c.claim_id == pp.c.claim_id, claim.c.practice_id == pp.c.practice_id))
    )
    written_off = (
        sa.select(*row(claim.c.practice_id, claim.c.claim_id, claim.c.payer, claim.c.service_date,
                       wo.c.write_off_date,
                       sa.case((wo.c.reason.in_(d.PATIENT_WRITE_OFF_REASONS), "patient"), else_="insurance"),
                       lit("write_off"), -wo.c.amount))
        .select_from(wo)
        .join(claim, sa.and_(claim.c.claim_id == wo.c.claim_id, claim.c.practice_id == wo.c.practice_id))
    )
    return sa.union_all(charges, paid, reductions, to_patient_out, to_patient_in, patient_paid, written_off)


# --- intermediate: employers --------------------------------------------------------------------

def int_member_month(employer_ids: Sequence[str] | None) -> Select:
    """One row per person, employer, plan and calendar month their enrollment overlaps at all
    (Tuva member_months rule: any overlap of the month counts, no proration)."""
    e, c, t = s.eligibility, s.calendar_month, s.member_coverage_tier
    return (
        sa.select(
            e.c.group_id.label("employer_id"), e.c.person_id, e.c.plan,
            sa.func.coalesce(t.c.tier_code, "unknown").label("tier"),
            d.is_subscriber(e.c.subscriber_relation, e.c.member_id, e.c.subscriber_id).label("is_subscriber"),
            c.c.month_start.label("month"),
        )
        .select_from(e)
        .join(c, sa.and_(e.c.enrollment_start_date <= c.c.month_end,
                         e.c.enrollment_end_date >= c.c.month_start))
        .outerjoin(t, sa.and_(t.c.person_id == e.c.person_id, t.c.member_id == e.c.member_id,
                              t.c.enrollment_start_date == e.c.enrollment_start_date))
        .where(within(e.c.group_id, employer_ids))
        .distinct()
    )


def int_person_employer(employer_ids: Sequence[str] | None) -> Select:
    """Each enrolled person's employer (the latest span's group), to place spend outside enrollment."""
    e = s.eligibility
    ranked = (
        sa.select(e.c.person_id, e.c.group_id,
                  sa.func.row_number().over(partition_by=e.c.person_id,
                                            order_by=(e.c.enrollment_end_date.desc(), e.c.group_id)).label("rn"))
        .subquery("ranked")
    )
    return (
        sa.select(ranked.c.person_id, ranked.c.group_id.label("employer_id"))
        .where(ranked.c.rn == 1)
        .where(within(ranked.c.group_id, employer_ids))
    )


def int_member_claim(employer_ids: Sequence[str] | None) -> Select:
    """Medical and pharmacy claims of enrolled people at claim level, with service category and the
    Tuva claim month: coalesce(claim_start_date, claim_end_date), pharmacy coalesce(dispensing_date,
    paid_date). ``employer_id`` comes from the enrollment covering the claim month; ``in_enrollment``
    is 0 when no enrollment covers it (reported apart, never in PMPM)."""
    mc, rx = s.medical_claim, s.pharmacy_claim
    category = d.medical_service_category(mc.c.claim_type, mc.c.bill_type_code, mc.c.place_of_service_code,
                                          mc.c.hcpcs_code)
    medical_lines = sa.select(
        mc.c.claim_id, mc.c.person_id, category.label("service_category"),
        month_of(sa.func.coalesce(mc.c.claim_start_date, mc.c.claim_end_date)).label("claim_month"),
        mc.c.paid_amount, mc.c.allowed_amount, mc.c.claim_type, mc.c.bill_type_code,
        mc.c.place_of_service_code, mc.c.revenue_center_code,
    ).subquery("medical_lines")
    ml = medical_lines
    er = sa.or_(ml.c.revenue_center_code.like("045%"), ml.c.place_of_service_code == "23")
    medical = sa.select(
        ml.c.claim_id, ml.c.person_id,
        sa.func.min(ml.c.service_category).label("service_category"),
        sa.func.min(ml.c.claim_month).label("claim_month"),
        sa.func.sum(ml.c.paid_amount).label("paid_amount"),
        sa.func.sum(ml.c.allowed_amount).label("allowed_amount"),
        sa.func.max(sa.case((er, 1), else_=0)).label("is_er_visit"),
        sa.func.max(sa.case((sa.and_(ml.c.claim_type == "institutional",
                                     sa.func.substr(ml.c.bill_type_code, 1, 2) == "11"), 1), else_=0))
        .label("is_inpatient_admission"),
        sa.func.max(sa.case((ml.c.service_category == "office-based", 1), else_=0)).label("is_office_visit"),
        sa.literal(0).label("is_prescription"),
    ).group_by(ml.c.claim_id, ml.c.person_id)
    pharmacy = sa.select(
        rx.c.claim_id, rx.c.person_id, sa.literal("pharmacy").label("service_category"),
        sa.func.min(month_of(sa.func.coalesce(rx.c.dispensing_date, rx.c.paid_date))).label("claim_month"),
        sa.func.sum(rx.c.paid_amount).label("paid_amount"),
        sa.func.sum(rx.c.allowed_amount).label("allowed_amount"),
        sa.literal(0).label("is_er_visit"), sa.literal(0).label("is_inpatient_admission"),
        sa.literal(0).label("is_office_visit"), sa.literal(1).label("is_prescription"),
    ).group_by(rx.c.claim_id, rx.c.person_id)
    claims = sa.union_all(medical, pharmacy).subquery("claims")
    # Scope is applied to the attributed employer at the end, so a claim during enrollment with
    # another (out-of-scope) employer is never mistaken for spend outside enrollment.
    e, c = s.eligibility, s.calendar_month
    enrolled = (
        sa.select(e.c.person_id, c.c.month_start, sa.func.min(e.c.group_id).label("group_id"))
        .join(c, sa.and_(e.c.enrollment_start_date <= c.c.month_end, e.c.enrollment_end_date >= c.c.month_start))
        .group_by(e.c.person_id, c.c.month_start)
        .subquery("enrolled")
    )
    home = int_person_employer(None).subquery("home")
    employer_id = sa.func.coalesce(enrolled.c.group_id, home.c.employer_id)
    return (
        sa.select(
            claims, employer_id.label("employer_id"),
            sa.case((enrolled.c.group_id.is_(None), 0), else_=1).label("in_enrollment"),
        )
        .select_from(claims)
        .outerjoin(enrolled, sa.and_(enrolled.c.person_id == claims.c.person_id,
                                     enrolled.c.month_start == claims.c.claim_month))
        .outerjoin(home, home.c.person_id == claims.c.person_id)
        .where(employer_id.is_not(None))
        .where(within(employer_id, employer_ids))
    )


def int_enrollment_change(employer_ids: Sequence[str] | None) -> Select:
    """Adds and terms per employer, month, plan and tier: a span starting (ending) in the month with no
    coverage from the same employer the day before (after). Source: 834 INS03 add/terminate semantics."""
    e, e2, c, t = s.eligibility, s.eligibility.alias("other"), s.calendar_month, s.member_coverage_tier
    tier = sa.func.coalesce(t.c.tier_code, "unknown")
    same_person = sa.and_(e2.c.person_id == e.c.person_id, e2.c.group_id == e.c.group_id)
    day_before = e.c.enrollment_start_date - 1
    day_after = e.c.enrollment_end_date + 1
    covered_before = sa.exists().where(same_person, e2.c.enrollment_start_date <= day_before,
                                       e2.c.enrollment_end_date >= day_before)
    covered_after = sa.exists().where(same_person, e2.c.enrollment_start_date <= day_after,
                                      e2.c.enrollment_end_date >= day_after)

    def changes(date_col, continued, adds: int):
        return (
            sa.select(e.c.group_id.label("employer_id"), c.c.month_start.label("month"), e.c.plan,
                      tier.label("tier"), sa.literal(adds).label("is_add"), e.c.person_id)
            .select_from(e)
            .join(c, sa.and_(date_col >= c.c.month_start, date_col <= c.c.month_end))
            .outerjoin(t, sa.and_(t.c.person_id == e.c.person_id, t.c.member_id == e.c.member_id,
                                  t.c.enrollment_start_date == e.c.enrollment_start_date))
            .where(within(e.c.group_id, employer_ids))
            .where(~continued)
        )

    both = sa.union_all(changes(e.c.enrollment_start_date, covered_before, 1),
                        changes(e.c.enrollment_end_date, covered_after, 0)).subquery("changes")
    return (sa.select(both.c.employer_id, both.c.month, both.c.plan, both.c.tier,
                      sa.func.count(sa.distinct(sa.case((both.c.is_add == 1, both.c.person_id)))).label("adds"),
                      sa.func.count(sa.distinct(sa.case((both.c.is_add == 0, both.c.person_id)))).label("terms"))
            .group_by(both.c.employer_id, both.c.month, both.c.plan, both.c.tier))
