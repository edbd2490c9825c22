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
from dashboard.metrics import groupers as g
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
            sa.func.count().label("line_count"),  # billed (837) lines
            # what the claim record says the payer pays (the Tuva paid_amount; a practice system's expected
            # reimbursement): NULL when no line carries it
            sa.func.sum(mc.c.paid_amount).label("expected_paid"),
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
        # a CAS is its CLP's, so of the same practice: said again on claim_payment, so that PostgreSQL reads
        # one practice's payments by index instead of hashing all of them
        .where(within(cp.c.practice_id, practice_ids))
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


def int_service_lines(practice_ids: Sequence[str] | None) -> Select:
    """Per 835 claim payment with service-line detail (SVC loops): its lines, and the lines denied (a denial
    adjustment on the line: CAS at line level in the denial category)."""
    sl = s.service_line_payment
    adj = stg_adjustment(practice_ids).subquery("adj")
    denied = (sa.select(adj.c.claim_payment_id, adj.c.line_number)
              .where(adj.c.category == "denial", adj.c.line_number > 0, adj.c.amount > 0)
              .distinct().subquery("denied_lines"))
    return (
        sa.select(sl.c.claim_payment_id, sa.func.count().label("lines"),
                  sa.func.sum(sa.case((denied.c.claim_payment_id.is_not(None), 1), else_=0)).label("lines_denied"))
        .select_from(sl)
        .outerjoin(denied, sa.and_(denied.c.claim_payment_id == sl.c.claim_payment_id,
                                   denied.c.line_number == sl.c.line_number))
        .where(within(sl.c.practice_id, practice_ids))
        .group_by(sl.c.claim_payment_id)
    )


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


def int_first_appeal(practice_ids: Sequence[str] | None) -> Select:
    """Each appealed claim's first appeal (claim_status_event 'appealed'), ``overturned`` 1 when an 835 dated
    on or after it pays the claim (CLP04 > 0)."""
    ev, cp, r = s.claim_status_event, s.claim_payment, s.remittance
    appeal = (sa.select(ev.c.practice_id, ev.c.claim_id, sa.func.min(ev.c.event_date).label("appealed_date"))
              .where(ev.c.event_type == "appealed", within(ev.c.practice_id, practice_ids))
              .group_by(ev.c.practice_id, ev.c.claim_id)).subquery("appeal")
    paid_after = (sa.exists().select_from(cp.join(r, r.c.remittance_id == cp.c.remittance_id))
                  .where(cp.c.practice_id == appeal.c.practice_id, cp.c.claim_id == appeal.c.claim_id,
                         r.c.payment_date >= appeal.c.appealed_date, cp.c.paid_amount > 0))
    return sa.select(appeal, sa.case((paid_after, 1), else_=0).label("overturned"))


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
        .where(within(cp.c.practice_id, practice_ids))  # implied by the join; lets PostgreSQL use the index
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
        .where(within(pp.c.practice_id, practice_ids))  # implied by the join; lets PostgreSQL use the index
    )
    written_off = (
        sa.select(*row(claim.c.practice_id, claim.c.claim_id, claim.c.payer, claim.c.service_date,
                       wo.c.write_off_date,
                       sa.case((wo.c.reason.in_(d.PATIENT_WRITE_OFF_REASONS), "patient"), else_="insurance"),
                       lit("write_off"), -wo.c.amount))
        .select_from(wo)
        .join(claim, sa.and_(claim.c.claim_id == wo.c.claim_id, claim.c.practice_id == wo.c.practice_id))
        .where(within(wo.c.practice_id, practice_ids))  # implied by the join; lets PostgreSQL use the index
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
            g.age_band(e.c.birth_date, c.c.month_start).label("age_band"), g.gender(e.c.gender).label("gender"),
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
    """Medical and pharmacy claims of enrolled people at claim level, with service category, the Tuva claim
    date (medical: coalesce(claim_start_date, claim_end_date); pharmacy: coalesce(dispensing_date, paid_date))
    and month, and the utilization events the claim stands for.

    * Category: a claim with lines in several categories takes the first in SERVICE_CATEGORY_PRIORITY.
    * Employer: the enrollment span covering the claim's date; failing that, a span overlapping its month (a
      member month counts any overlap, Tuva's rule, so its claims count with it); among several, the latest
      to start. ``in_enrollment`` 0: no span covers the month (reported apart, never in PMPM; the employer is
      then the person's latest).
    * Events count encounters, not claims: one admission per stay (an inpatient bill starting by the day after
      an earlier bill of the person ends continues its stay: interim bills are one admission); one ER visit per
      person and day (the facility and the physician bill the same visit), none when the day falls in an
      inpatient stay or the day before it begins (an ED visit that leads to an admission belongs to the
      inpatient encounter, as in Tuva's encounter grouper); one office visit per person and day; one
      prescription per pharmacy claim. Inpatient days: each stay bill's through − from date, plus one for a bill
      that continues a stay (interim bills run from the day after the last one's through date), so a stay's
      days are its discharge − admission (Tuva's length of stay) however it was billed.
    * Paid date: the latest of the claim's lines (the claim is paid when its last line is); network: see
      :func:`network_of`."""
    mc, rx = s.medical_claim, s.pharmacy_claim
    # A claim is placed at one of its person's employers (a span of theirs, or their latest), and stays, visits
    # and days are each one person's: one employer's claims are those of the people it ever covered. For some
    # employers (a load's refresh) only theirs are read, through the person_id indexes, not every claim.
    covered = s.eligibility.alias("covered")
    people = sa.select(covered.c.person_id).where(within(covered.c.group_id, employer_ids))

    def theirs(person_id: ColumnElement) -> ColumnElement:
        return sa.true() if employer_ids is None else person_id.in_(people)

    category = d.medical_service_category(mc.c.claim_type, mc.c.bill_type_code, mc.c.place_of_service_code,
                                          mc.c.hcpcs_code)
    er_line = sa.or_(mc.c.revenue_center_code.like("045%"), mc.c.place_of_service_code == "23")
    stay_line = sa.and_(mc.c.claim_type == "institutional", sa.func.substr(mc.c.bill_type_code, 1, 2) == "11")
    medical = sa.select(
        sa.literal("medical").label("source"), mc.c.claim_id, mc.c.person_id,
        sa.func.min(d.service_category_rank(category)).label("category_rank"),
        sa.func.min(sa.func.coalesce(mc.c.claim_start_date, mc.c.claim_end_date)).label("claim_date"),
        sa.func.max(sa.func.coalesce(mc.c.claim_end_date, mc.c.claim_start_date)).label("end_date"),
        sa.func.sum(mc.c.paid_amount).label("paid_amount"), sa.func.sum(mc.c.allowed_amount).label("allowed_amount"),
        sa.func.max(sa.case((er_line, 1), else_=0)).label("has_er"),
        sa.func.max(sa.case((stay_line, 1), else_=0)).label("is_stay"),
        sa.func.max(mc.c.paid_date).label("paid_date"),
        network_of(mc.c.in_network_flag).label("network"),
        # cost drivers (dashboard.metrics.groupers): category 2 as category 1 (the lines' first), the primary
        # diagnosis, the place of service of a professional claim, and the billing organisation (its TIN)
        sa.func.min(g.service_category_2_rank(mc.c.claim_type, mc.c.bill_type_code, mc.c.place_of_service_code,
                                              mc.c.hcpcs_code, mc.c.revenue_center_code)).label("category_2_rank"),
        sa.func.min(mc.c.diagnosis_code_1).label("diagnosis"),
        sa.func.min(sa.case((mc.c.claim_type == "institutional", g.FACILITY_PLACE[0]),
                            else_=mc.c.place_of_service_code)).label("place_of_service"),
        sa.func.min(mc.c.billing_tin).label("provider_id"),
    ).where(theirs(mc.c.person_id)).group_by(mc.c.claim_id, mc.c.person_id).subquery("medical")
    stays = sa.select(medical.c.person_id, medical.c.claim_date, medical.c.end_date).where(medical.c.is_stay == 1) \
        .subquery("stays")
    in_stay = sa.exists().where(stays.c.person_id == medical.c.person_id,
                                medical.c.claim_date >= stays.c.claim_date - 1,
                                medical.c.claim_date <= stays.c.end_date)

    # an interim bill (112, 113, 114) continues the stay that an earlier bill of the person runs into
    earlier = stays.alias("earlier")
    continues_stay = sa.exists().where(earlier.c.person_id == medical.c.person_id,
                                       earlier.c.claim_date < medical.c.claim_date,
                                       earlier.c.end_date >= medical.c.claim_date - 1)
    office = d.SERVICE_CATEGORY_PRIORITY.index("office-based") + 1  # its rank
    flagged = sa.select(
        medical,
        sa.case((sa.and_(medical.c.has_er == 1, medical.c.is_stay == 0, sa.not_(in_stay)), 1), else_=0).label("er"),
        sa.case((medical.c.category_rank == office, 1), else_=0).label("office"),
        sa.case((sa.and_(medical.c.is_stay == 1, sa.not_(continues_stay)), 1), else_=0).label("admission"),
        # inpatient days of the bill: through − from, plus the day between it and the bill it continues
        sa.case((medical.c.is_stay == 1, medical.c.end_date - medical.c.claim_date
                 + sa.case((continues_stay, 1), else_=0)), else_=0).label("inpatient_days"),
    ).subquery("flagged")

    def first_of_day(flag: sa.ColumnElement) -> sa.ColumnElement:
        """1 on one claim (the lowest id) of each person and day with ``flag`` (0/1), else 0."""
        n = sa.func.row_number().over(partition_by=(flagged.c.person_id, flagged.c.claim_date, flag),
                                      order_by=flagged.c.claim_id)
        return sa.case((sa.and_(flag == 1, n == 1), 1), else_=0)

    medical_claims = sa.select(
        flagged.c.source, flagged.c.claim_id, flagged.c.person_id,
        d.service_category_of_rank(flagged.c.category_rank).label("service_category"), flagged.c.claim_date,
        flagged.c.paid_amount, flagged.c.allowed_amount, flagged.c.paid_date, flagged.c.network,
        first_of_day(flagged.c.er).label("is_er_visit"),
        first_of_day(flagged.c.admission).label("is_inpatient_admission"),
        flagged.c.inpatient_days.label("is_inpatient_day"),
        first_of_day(flagged.c.office).label("is_office_visit"),
        sa.literal(0).label("is_prescription"),
        g.service_category_2_of_rank(flagged.c.category_2_rank).label("service_category_2"),
        g.condition_group(flagged.c.diagnosis).label("condition_group"),
        sa.func.coalesce(flagged.c.place_of_service, g.UNKNOWN_PLACE).label("place_of_service"),
        sa.func.coalesce(flagged.c.provider_id, g.UNKNOWN_PLACE).label("provider_id"),
    )
    pharmacy = sa.select(
        sa.literal("pharmacy").label("source"), rx.c.claim_id, rx.c.person_id,
        sa.literal("pharmacy").label("service_category"),
        sa.func.min(sa.func.coalesce(rx.c.dispensing_date, rx.c.paid_date)).label("claim_date"),
        sa.func.sum(rx.c.paid_amount).label("paid_amount"),
        sa.func.sum(rx.c.allowed_amount).label("allowed_amount"),
        sa.func.max(rx.c.paid_date).label("paid_date"), network_of(rx.c.in_network_flag).label("network"),
        sa.literal(0).label("is_er_visit"), sa.literal(0).label("is_inpatient_admission"),
        sa.literal(0).label("is_inpatient_day"),
        sa.literal(0).label("is_office_visit"), sa.literal(1).label("is_prescription"),
        # one row for all pharmacies: it equals the pharmacy spend cell in every grouping (dashboard.deidentified)
        sa.literal(g.PHARMACY_2[1]).label("service_category_2"), sa.literal(g.PHARMACY_CONDITION[0]).label(
            "condition_group"), sa.literal(g.PHARMACY_PLACE[0]).label("place_of_service"),
        sa.literal(g.PHARMACY_PROVIDER[0]).label("provider_id"),
    ).where(theirs(rx.c.person_id)).group_by(rx.c.claim_id, rx.c.person_id)
    claims = sa.union_all(medical_claims, pharmacy).subquery("claims")
    claim_month = month_of(claims.c.claim_date)
    # Scope is applied to the attributed employer at the end, so a claim during enrollment with
    # another (out-of-scope) employer is never mistaken for spend outside enrollment.
    e, c = s.eligibility, s.calendar_month
    covers_day = sa.and_(e.c.enrollment_start_date <= claims.c.claim_date,
                         e.c.enrollment_end_date >= claims.c.claim_date)
    spans = (
        sa.select(claims.c.source, claims.c.claim_id, claims.c.person_id, e.c.group_id,
                  sa.func.row_number().over(
                      partition_by=(claims.c.source, claims.c.claim_id, claims.c.person_id),
                      order_by=(sa.case((covers_day, 0), else_=1), e.c.enrollment_start_date.desc(), e.c.group_id),
                  ).label("rn"))
        .select_from(claims)
        .join(c, c.c.month_start == claim_month)
        .join(e, sa.and_(e.c.person_id == claims.c.person_id, e.c.enrollment_start_date <= c.c.month_end,
                         e.c.enrollment_end_date >= c.c.month_start))
        .subquery("spans")
    )
    span = sa.select(spans.c.source, spans.c.claim_id, spans.c.person_id, spans.c.group_id) \
        .where(spans.c.rn == 1).subquery("span")
    home = int_person_employer(None).subquery("home")
    employer_id = sa.func.coalesce(span.c.group_id, home.c.employer_id)
    return (
        sa.select(
            claims.c.source, claims.c.claim_id, claims.c.person_id, claims.c.service_category,
            claims.c.claim_date, claim_month.label("claim_month"), claims.c.paid_amount, claims.c.allowed_amount,
            claims.c.paid_date,
            claims.c.network, claims.c.is_er_visit, claims.c.is_inpatient_admission, claims.c.is_inpatient_day,
            claims.c.is_office_visit, claims.c.is_prescription, claims.c.service_category_2,
            claims.c.condition_group, claims.c.place_of_service, claims.c.provider_id, employer_id.label("employer_id"),
            sa.case((span.c.group_id.is_(None), 0), else_=1).label("in_enrollment"),
        )
        .select_from(claims)
        .outerjoin(span, sa.and_(span.c.source == claims.c.source, span.c.claim_id == claims.c.claim_id,
                                 span.c.person_id == claims.c.person_id))
        .outerjoin(home, home.c.person_id == claims.c.person_id)
        .where(employer_id.is_not(None))
        .where(within(employer_id, employer_ids))
    )


def network_of(in_network_flag: ColumnElement) -> ColumnElement:
    """A claim's network from its lines' in_network_flag (aggregate): 'out' if any line is out of network,
    else 'in' if any line is in network, else 'unknown' (the flag is optional in the Tuva input layer)."""
    flag = sa.case((in_network_flag.is_(None), None), (in_network_flag, 1), else_=0)
    return sa.case((sa.func.min(flag) == 0, "out"), (sa.func.max(flag) == 1, "in"), else_="unknown")


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
