"""One claim, and the search that finds it: what a practice manager opens from any list of claims.

:func:`search_claims` finds claims by claim id (the 837 patient control number, CLP01), patient (person or
member id), payer claim number (CLP07) or ERA trace number (TRN02); :func:`claim_history` reads one claim
whole: its billed lines, its lifecycle (837 submitted → 277CA accepted or rejected → each 835 adjudication →
appeal → patient payments and write-offs), each remittance with its lines, CAS adjustments and remark codes, and
the balance still open. Both read by key (indexed point lookups), never a scan of a practice's claims.

Who may see a claim is :mod:`dashboard.access`'s rule: the scope's practices (the claim's billing TIN), never for
de-identified viewers. A claim outside the scope answers exactly like one that does not exist.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard import access
from dashboard.errors import BadInput, NotFound
from dashboard.metrics import codes
from dashboard.metrics import definitions as d
from dashboard.warehouse import marts as m
from dashboard.warehouse import schema as s
from dashboard.warehouse import semantic as sem

SEARCH_LIMIT = 25  # matches a search lists; a wider term should be narrowed, not paged
MAX_TERM = 64
UNKNOWN = "unknown claim"  # the one answer for a claim that does not exist and for another practice's


@dataclass(frozen=True)
class Event:
    """One step of a claim's lifecycle."""

    date: dt.date
    stage: str  # service | submitted | accepted | rejected | adjudicated | denied | partially paid | paid | ...
    detail: str
    amount: float | None = None


@dataclass(frozen=True)
class Remittance:
    """One 835 adjudication of the claim (a CLP), with what it paid, adjusted and remarked."""

    claim_payment_id: str
    trace_number: str
    payer: str
    payment_date: dt.date
    method: str
    status_code: str
    status: str  # the CLP02 code's meaning
    charge: float
    paid: float
    patient_responsibility: float
    payer_claim_number: str | None
    lines: pd.DataFrame  # SVC: line_number, procedure_code, modifiers, charge, paid, units
    adjustments: pd.DataFrame  # CAS: line_number, group_code, carc, reason, amount
    remarks: pd.DataFrame  # LQ/MOA: line_number, code, meaning


@dataclass(frozen=True)
class ClaimHistory:
    claim_id: str
    practice_id: str
    practice_name: str
    payer: str  # the payer's id (837/Tuva)
    payer_name: str
    person_id: str
    member_id: str | None
    claim_type: str | None
    service_from: dt.date
    service_to: dt.date
    charge: float
    lines: pd.DataFrame  # the billed (837) lines
    events: list[Event]
    remittances: list[Remittance]
    patient_payments: pd.DataFrame  # payment_date, amount, channel
    write_offs: pd.DataFrame  # write_off_date, amount, reason
    balances: pd.DataFrame  # party, balance (> 0 owed to the practice, < 0 a credit owed to the party)
    status: str = field(default="")

    @property
    def open_balance(self) -> float:
        return float(self.balances.loc[self.balances["balance"] > 0, "balance"].sum())


def _practices(scope: access.Scope) -> Sequence[str] | None:
    """The practices whose claims ``scope`` may read (None: every practice): access decides."""
    access.require_claim_rows(scope)
    return None if scope.practice_ids is None else sorted(scope.practice_ids)


def _clean_term(text: str | None) -> str:
    term = (text or "").strip()
    if not term:
        raise BadInput("enter a claim id, patient id, payer claim number or ERA trace number")
    if len(term) > MAX_TERM:
        raise BadInput(f"a search term has at most {MAX_TERM} characters")
    return term


def search_claims(conn: Connection, *, scope: access.Scope, text: str | None,
                  limit: int = SEARCH_LIMIT) -> pd.DataFrame:
    """Claims of the scope's practices that ``text`` names exactly: a claim id, a patient's person or member id,
    a payer claim number (CLP07) or an ERA trace number (TRN02), with what it matched on. At most ``limit``
    claims, newest service first."""
    ids = _practices(scope)
    term = _clean_term(text)
    mc, cp, r = s.medical_claim, s.claim_payment, s.remittance
    # each branch an indexed lookup (PostgreSQL: schema.FACT_INDEXES); the matches read once, as a CTE
    hits = sa.union_all(
        sa.select(mc.c.claim_id, mc.c.billing_tin.label("practice_id"), sa.literal("claim id").label("matched_on"))
        .where(mc.c.claim_id == term),
        sa.select(mc.c.claim_id, mc.c.billing_tin, sa.literal("patient")).where(mc.c.person_id == term),
        sa.select(mc.c.claim_id, mc.c.billing_tin, sa.literal("patient")).where(mc.c.member_id == term),
        sa.select(cp.c.claim_id, cp.c.practice_id, sa.literal("payer claim number"))
        .where(cp.c.payer_claim_number == term),
        sa.select(cp.c.claim_id, cp.c.practice_id, sa.literal("ERA trace number"))
        .join(r, r.c.remittance_id == cp.c.remittance_id).where(r.c.trace_number == term),
    ).subquery("hits")
    found = (sa.select(hits.c.claim_id, hits.c.practice_id, sa.func.min(hits.c.matched_on).label("matched_on"))
             .where(m.within(hits.c.practice_id, ids))
             .group_by(hits.c.claim_id, hits.c.practice_id)).cte("found")
    known = sa.select(s.practice.c.practice_id)
    q = (sa.select(mc.c.billing_tin.label("practice_id"), mc.c.claim_id, sa.func.min(mc.c.payer).label("payer"),
                   sa.func.min(sa.func.coalesce(mc.c.claim_start_date, mc.c.claim_line_start_date))
                   .label("service_date"), sa.func.sum(mc.c.charge_amount).label("charge"),
                   sa.func.min(found.c.matched_on).label("matched_on"))
         .join(found, sa.and_(found.c.claim_id == mc.c.claim_id, found.c.practice_id == mc.c.billing_tin))
         .where(mc.c.billing_tin.in_(known))  # a claim of a known practice, as stg_practice_claim reads them
         .group_by(mc.c.billing_tin, mc.c.claim_id)
         .order_by(sa.literal_column("service_date").desc(), mc.c.billing_tin, mc.c.claim_id)
         .limit(max(1, min(limit, SEARCH_LIMIT))))
    rows = conn.execute(q).all()
    return pd.DataFrame([tuple(row) for row in rows],
                        columns=["practice_id", "claim_id", "payer", "service_date", "charge", "matched_on"])


def claim_history(conn: Connection, *, scope: access.Scope, claim_id: str | None,
                  practice_id: str | None = None) -> ClaimHistory:
    """Everything the warehouse holds about one claim of the scope's practices. A claim id billed by several of
    them needs ``practice_id``; one that is not theirs (or does not exist) is NotFound with the same words."""
    ids = _practices(scope)
    if not claim_id or len(claim_id) > MAX_TERM:
        raise NotFound(UNKNOWN)
    if practice_id is not None:
        if ids is not None and practice_id not in ids:
            raise NotFound(UNKNOWN)
        ids = [practice_id]
    mc, pr = s.medical_claim, s.practice
    lines = conn.execute(
        sa.select(mc.c.billing_tin, pr.c.practice_name, mc.c.claim_line_number, mc.c.payer, mc.c.person_id,
                  mc.c.member_id, mc.c.claim_type, mc.c.claim_start_date, mc.c.claim_end_date,
                  mc.c.claim_line_start_date,
                  mc.c.claim_line_end_date, mc.c.place_of_service_code, mc.c.hcpcs_code, mc.c.hcpcs_modifier_1,
                  mc.c.hcpcs_modifier_2, mc.c.service_unit_quantity, mc.c.charge_amount, mc.c.diagnosis_code_1,
                  mc.c.diagnosis_code_2, mc.c.diagnosis_code_3)
        .join(pr, pr.c.practice_id == mc.c.billing_tin)
        .where(mc.c.claim_id == claim_id, m.within(mc.c.billing_tin, ids))
        .order_by(mc.c.billing_tin, mc.c.claim_line_number)).all()
    practices = sorted({row[0] for row in lines})
    if not practices:
        raise NotFound(UNKNOWN)
    if len(practices) > 1:
        raise BadInput(f"claim {claim_id} is billed by {len(practices)} of your practices: open it from a search "
                       "or a list, which names the practice")
    practice = practices[0]
    first = lines[0]
    billed = pd.DataFrame(
        [(row.claim_line_number, row.claim_line_start_date or row.claim_start_date, row.place_of_service_code,
          row.hcpcs_code, ",".join(x for x in (row.hcpcs_modifier_1, row.hcpcs_modifier_2) if x),
          float(row.service_unit_quantity or 0), float(row.charge_amount or 0),
          ",".join(x for x in (row.diagnosis_code_1, row.diagnosis_code_2, row.diagnosis_code_3) if x))
         for row in lines],
        columns=["line_number", "service_date", "place_of_service", "procedure_code", "modifiers", "units", "charge",
                 "diagnoses"])
    service_from = min(row.claim_start_date or row.claim_line_start_date for row in lines)
    service_to = max(row.claim_end_date or row.claim_line_end_date or service_from for row in lines)
    remits = _remittances(conn, practice, claim_id)
    patient_payments = _frame(conn, sa.select(s.patient_payment.c.payment_date, s.patient_payment.c.amount,
                                              s.patient_payment.c.channel)
                              .where(s.patient_payment.c.practice_id == practice,
                                     s.patient_payment.c.claim_id == claim_id)
                              .order_by(s.patient_payment.c.payment_date), ["payment_date", "amount", "channel"])
    write_offs = _frame(conn, sa.select(s.claim_write_off.c.write_off_date, s.claim_write_off.c.amount,
                                        s.claim_write_off.c.reason)
                        .where(s.claim_write_off.c.practice_id == practice, s.claim_write_off.c.claim_id == claim_id)
                        .order_by(s.claim_write_off.c.write_off_date), ["write_off_date", "amount", "reason"])
    balances = _balances(conn, practice, claim_id)
    payer_name = conn.execute(sa.select(s.payer.c.payer_name).where(s.payer.c.payer_id == first.payer)).scalar()
    events = _events(conn, practice, claim_id, service_from, remits, patient_payments, write_offs)
    history = ClaimHistory(
        claim_id=claim_id, practice_id=practice, practice_name=first.practice_name or practice, payer=first.payer or "",
        payer_name=payer_name or first.payer or "",
        person_id=first.person_id, member_id=first.member_id, claim_type=first.claim_type,
        service_from=service_from, service_to=service_to, charge=float(billed["charge"].sum()), lines=billed,
        events=events, remittances=remits, patient_payments=patient_payments, write_offs=write_offs,
        balances=balances)
    return ClaimHistory(**{**history.__dict__, "status": _status(history)})


def _frame(conn: Connection, query: sa.Select, columns: list[str]) -> pd.DataFrame:
    out = pd.DataFrame([tuple(row) for row in conn.execute(query).all()], columns=columns)
    for col in ("amount", "charge", "paid", "balance"):
        if col in out.columns:
            out[col] = pd.to_numeric(out[col]).astype(float)
    return out


def _remittances(conn: Connection, practice: str, claim_id: str) -> list[Remittance]:
    cp, r = s.claim_payment, s.remittance
    payments = conn.execute(
        sa.select(cp.c.claim_payment_id, r.c.trace_number, sa.func.coalesce(r.c.payer_name, r.c.payer_id),
                  r.c.payment_date, r.c.method, cp.c.status_code, cp.c.charge_amount, cp.c.paid_amount,
                  cp.c.patient_responsibility, cp.c.payer_claim_number)
        .join(r, r.c.remittance_id == cp.c.remittance_id)
        .where(cp.c.practice_id == practice, cp.c.claim_id == claim_id)
        .order_by(r.c.payment_date, cp.c.claim_payment_id)).all()
    if not payments:
        return []
    keys = [p[0] for p in payments]
    sl, ca, rc = s.service_line_payment, s.claim_adjustment, s.remark_code
    svc = _frame(conn, sa.select(sl.c.claim_payment_id, sl.c.line_number, sl.c.procedure_code, sl.c.modifiers,
                                 sl.c.charge_amount, sl.c.paid_amount, sl.c.units)
                 .where(sl.c.claim_payment_id.in_(keys)).order_by(sl.c.claim_payment_id, sl.c.line_number),
                 ["claim_payment_id", "line_number", "procedure_code", "modifiers", "charge", "paid", "units"])
    cas = _frame(conn, sa.select(ca.c.claim_payment_id, ca.c.line_number, ca.c.group_code, ca.c.carc, ca.c.amount,
                                 d.adjustment_category(ca.c.group_code, ca.c.carc))
                 .where(ca.c.claim_payment_id.in_(keys))
                 .order_by(ca.c.claim_payment_id, ca.c.line_number, ca.c.adjustment_seq),
                 ["claim_payment_id", "line_number", "group_code", "carc", "amount", "category"])
    cas.insert(4, "reason", [codes.carc_reason(c) for c in cas["carc"]])
    cas["category"] = cas["category"].str.replace("_", " ")
    lq = _frame(conn, sa.select(rc.c.claim_payment_id, rc.c.line_number, rc.c.code)
                .where(rc.c.claim_payment_id.in_(keys)).order_by(rc.c.claim_payment_id, rc.c.line_number,
                                                                 rc.c.remark_seq),
                ["claim_payment_id", "line_number", "code"])
    lq["meaning"] = [codes.rarc_meaning(c) for c in lq["code"]]

    def of(frame: pd.DataFrame, key: str) -> pd.DataFrame:
        return frame[frame["claim_payment_id"] == key].drop(columns="claim_payment_id").reset_index(drop=True)

    return [Remittance(claim_payment_id=p[0], trace_number=p[1], payer=p[2] or "", payment_date=p[3], method=p[4],
                       status_code=p[5], status=codes.claim_status(p[5]), charge=float(p[6]), paid=float(p[7]),
                       patient_responsibility=float(p[8] or 0), payer_claim_number=p[9], lines=of(svc, p[0]),
                       adjustments=of(cas, p[0]), remarks=of(lq, p[0]))
            for p in payments]


def _balances(conn: Connection, practice: str, claim_id: str) -> pd.DataFrame:
    """What the claim's parties owe now (mart_claim, by its key: the A/R mart's open intervals, netted within the
    claim as A/R is); a party owing nothing is left out."""
    c = sem.source(sem.mart_claim)
    row = conn.execute(sa.select(c.c.payer, c.c.payer_balance, c.c.patient_balance)
                       .where(c.c.practice_id == practice, c.c.claim_id == claim_id)).first()
    owed = [] if row is None else [(row.payer or "", row.payer_balance), ("Patient", row.patient_balance)]
    frame = pd.DataFrame([(party, float(v)) for party, v in owed if v], columns=["party", "balance"])
    return frame.sort_values("party").reset_index(drop=True)


def _adjudication(remit: Remittance) -> tuple[str, str]:
    """(stage, words) of one 835 adjudication: denied (in full), partially paid (a denial on some line), paid."""
    denied = remit.adjustments[remit.adjustments["category"] == "denial"]
    if remit.status_code == "22":
        return "reversed", f"{remit.payer} reversed an earlier payment"
    if remit.paid <= 0 and (remit.status_code == "4" or not denied.empty):
        return "denied", f"{remit.payer} denied it: " + _codes_text(denied)
    if not denied.empty:
        return "partially paid", f"{remit.payer} paid part; denied: " + _codes_text(denied)
    return "paid", f"{remit.payer} {remit.status}"


def _codes_text(adjustments: pd.DataFrame) -> str:
    return "; ".join(f"{g}-{c} {reason}" for g, c, reason in
                     adjustments[["group_code", "carc", "reason"]].drop_duplicates().itertuples(index=False)) \
        or "no reason code"


def _events(conn: Connection, practice: str, claim_id: str, service_from: dt.date, remits: list[Remittance],
            patient_payments: pd.DataFrame, write_offs: pd.DataFrame) -> list[Event]:
    ev = s.claim_status_event
    events = [Event(service_from, "service", "date of service")]
    for row in conn.execute(sa.select(ev.c.event_date, ev.c.event_type, ev.c.source, ev.c.status_code, ev.c.detail)
                            .where(ev.c.claim_id == claim_id, ev.c.practice_id == practice)
                            .order_by(ev.c.event_date, ev.c.event_seq)).all():
        words = {"submitted": "claim sent (837)", "accepted": "accepted by the clearinghouse (277CA)",
                 "rejected": "rejected by the clearinghouse (277CA)", "appealed": "appeal sent"}
        detail = words.get(row.event_type, row.event_type)
        # the 277CA's category code, unless its text already starts with it ("A7:33 Missing rendering NPI")
        said = [x for x in (row.status_code, row.detail) if x]
        if len(said) == 2 and said[1].startswith(said[0]):
            said = said[1:]
        if said:
            detail += ": " + " ".join(said)
        events.append(Event(row.event_date, row.event_type, detail))
    for remit in remits:
        stage, words = _adjudication(remit)
        events.append(Event(remit.payment_date, stage, f"{words} (ERA {remit.trace_number})", remit.paid))
    for row in patient_payments.itertuples(index=False):
        stage = "patient refund" if row.amount < 0 else "patient payment"
        events.append(Event(row.payment_date, stage, f"{stage} ({row.channel or 'unknown channel'})", row.amount))
    for row in write_offs.itertuples(index=False):
        events.append(Event(row.write_off_date, "written off", f"written off: {row.reason or 'no reason'}",
                            row.amount))
    order = {"service": 0, "submitted": 1, "rejected": 2, "accepted": 3}
    return sorted(events, key=lambda e: (e.date, order.get(e.stage, 4)))


def _status(history: ClaimHistory) -> str:
    """The claim's state in words: where it stands now."""
    owed = history.balances[history.balances["balance"] > 0]
    credit = history.balances[history.balances["balance"] < 0]
    if not credit.empty:
        return "in credit: a refund is owed to " + ", ".join(credit["party"])
    if owed.empty:
        return "closed: nothing owed"
    parties = ", ".join(owed["party"])
    if not history.remittances:
        return f"open: no payer answer yet ({parties} owes)"
    stage, _ = _adjudication(history.remittances[-1])
    return f"open after {stage}: {parties} owes"
