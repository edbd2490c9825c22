"""835 health care claim payment/advice (005010X221A1): dataclasses, parser and balancing checks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from dashboard.errors import LoadError
from dashboard.warehouse.x12.tokenizer import Interchange, Segment, Transaction, read_interchange
from dashboard.warehouse.x12.values import Reader

ZERO = Decimal(0)

#: BPR01 transaction handling code.
HANDLING_CODES = {
    "C": "payment accompanies remittance advice",
    "D": "make payment only",
    "H": "notification only",
    "I": "remittance information only",
    "P": "prenotification of future transfers",
    "U": "split payment and remittance",
    "X": "handling party's option to split payment and remittance",
}
#: BPR03 credit/debit flag.
CREDIT_DEBIT = {"C": "credit", "D": "debit"}
#: BPR04 payment method.
PAYMENT_METHODS = {
    "ACH": "automated clearing house",
    "BOP": "financial institution option",
    "CHK": "check",
    "FWT": "federal reserve funds/wire transfer",
    "NON": "non-payment data",
}
#: CAS01 claim adjustment group code.
GROUP_CODES = {
    "CO": "contractual obligations",
    "CR": "corrections and reversals",
    "OA": "other adjustments",
    "PI": "payor initiated reductions",
    "PR": "patient responsibility",
}
#: LQ01 code list qualifier: HE = remittance advice remark codes (RARC), RX = NCPDP reject/payment codes.
REMARK_QUALIFIERS = frozenset({"HE", "RX"})


@dataclass
class Adjustment:
    """One CAS triplet: group code (CAS01), reason code (CARC), amount and optional quantity."""

    group_code: str  #: CAS01: CO, PR, OA, PI or CR
    reason_code: str  #: CAS02/05/08/11/14/17: claim adjustment reason code (CARC)
    amount: Decimal  #: CAS03/06/...: amount adjusted; negative reverses an earlier adjustment
    quantity: Decimal | None = None  #: CAS04/07/...: units adjusted


@dataclass
class ProcedureCode:
    """A composite procedure (SVC01 or SVC06): qualifier, code, up to 4 modifiers, description."""

    qualifier: str  #: -1 product/service id qualifier: HC (HCPCS/CPT), AD (ADA), ER, N4 (NDC), NU...
    code: str  #: -2 procedure code
    modifiers: list[str] = field(default_factory=list)  #: -3..-6 procedure modifiers
    description: str | None = None  #: -7 description


@dataclass
class ServiceLine:
    """Loop 2110: one SVC service payment line."""

    procedure: ProcedureCode  #: SVC01 composite medical procedure identifier
    charge: Decimal  #: SVC02 line item charge amount
    paid: Decimal  #: SVC03 line item provider payment amount
    revenue_code: str | None = None  #: SVC04 NUBC revenue code
    units: Decimal = Decimal(1)  #: SVC05 units of service paid (1 when empty)
    original_procedure: ProcedureCode | None = None  #: SVC06 procedure as submitted, when it differs
    original_units: Decimal | None = None  #: SVC07 original units of service
    service_date: dt.date | None = None  #: DTM*472 service date
    service_start: dt.date | None = None  #: DTM*150 service period start
    service_end: dt.date | None = None  #: DTM*151 service period end
    control_number: str | None = None  #: REF*6R line item control number
    references: dict[str, str] = field(default_factory=dict)  #: all REF qualifiers -> values
    adjustments: list[Adjustment] = field(default_factory=list)  #: line-level CAS
    remarks: list[tuple[str, str]] = field(default_factory=list)  #: LQ (qualifier HE/RX, remark code)
    segment: str = ""  #: where the SVC sits, e.g. ``SVC#16``


@dataclass
class ClaimPayment:
    """Loop 2100: one CLP claim payment."""

    claim_id: str  #: CLP01 patient control number (the provider's claim id)
    status_code: str  #: CLP02 claim status: 1 primary, 2 secondary, 3 tertiary, 4 denied, 22 reversal...
    charge: Decimal  #: CLP03 total claim charge amount
    paid: Decimal  #: CLP04 claim payment amount
    patient_responsibility: Decimal = ZERO  #: CLP05 patient responsibility amount (0 when empty)
    filing_indicator: str | None = None  #: CLP06 claim filing indicator (MC, 12, HM, ...)
    payer_claim_number: str | None = None  #: CLP07 payer claim control number
    facility_code: str | None = None  #: CLP08 facility type / place of service code
    frequency_code: str | None = None  #: CLP09 claim frequency type code
    patient_last_name: str | None = None  #: NM1*QC NM103
    patient_first_name: str | None = None  #: NM1*QC NM104
    patient_id_qualifier: str | None = None  #: NM1*QC NM108 (MI member id, MR medical record...)
    patient_id: str | None = None  #: NM1*QC NM109
    statement_start: dt.date | None = None  #: DTM*232 claim statement period start
    statement_end: dt.date | None = None  #: DTM*233 claim statement period end
    received_date: dt.date | None = None  #: DTM*050 claim received date
    adjustments: list[Adjustment] = field(default_factory=list)  #: claim-level CAS
    service_lines: list[ServiceLine] = field(default_factory=list)  #: loop 2110
    remark_codes: list[str] = field(default_factory=list)  #: MIA/MOA remark codes
    references: dict[str, str] = field(default_factory=dict)  #: claim-level REF qualifiers -> values
    segment: str = ""  #: where the CLP sits, e.g. ``CLP#13``


@dataclass
class ProviderAdjustment:
    """One PLB reason/amount pair: a provider-level adjustment not tied to a claim."""

    provider_id: str  #: PLB01 provider identifier
    fiscal_period_date: dt.date | None  #: PLB02 last day of the provider's fiscal year
    reason_code: str  #: PLB03-1 adjustment reason (WO overpayment recovery, L6 interest, FB forwarding...)
    reference: str | None  #: PLB03-2 reference identification
    amount: Decimal  #: PLB04 amount; positive reduces the payment, negative increases it
    segment: str = ""  #: where the PLB sits


@dataclass
class Remittance:
    """One 835 transaction (ST..SE): a payment and the claims it pays."""

    control_number: str  #: ST02 transaction set control number
    handling_code: str  #: BPR01 transaction handling code (I remittance only, C payment + remittance...)
    payment_amount: Decimal  #: BPR02 total actual provider payment amount
    credit_debit: str  #: BPR03 C credit or D debit
    payment_method: str  #: BPR04 ACH, CHK, NON, FWT or BOP
    payment_date: dt.date | None  #: BPR16 check issue or EFT effective date (None only in lenient mode)
    trace_number: str | None = None  #: TRN02 check or EFT trace number
    originating_company_id: str | None = None  #: TRN03 payer identifier (1 + EIN)
    payer_name: str | None = None  #: N1*PR N102
    payer_id: str | None = None  #: N1*PR N104, else REF*2U
    payee_name: str | None = None  #: N1*PE N102
    payee_id_qualifier: str | None = None  #: N1*PE N103: XX NPI, FI federal tax id
    payee_id: str | None = None  #: N1*PE N104
    payee_tax_id: str | None = None  #: REF*TJ in the payee loop (or N104 when N103 is FI)
    production_date: dt.date | None = None  #: DTM*405 production date (stands in for a missing/bad BPR16)
    claims: list[ClaimPayment] = field(default_factory=list)
    provider_adjustments: list[ProviderAdjustment] = field(default_factory=list)  #: PLB
    implementation: str = ""  #: ST03 / GS08 version, e.g. 005010X221A1
    segment: str = ""  #: where the ST sits
    warnings: list[str] = field(default_factory=list)  #: problems tolerated in lenient mode
    #: lenient mode: why BPR16 gave no date (located, as in ``warnings``); the loader then takes DTM*405
    payment_date_problem: str | None = None
    #: the BPR and N1*PE segments, so a loader can name file, line, segment and field; not compared, since
    #: the same file laid out with or without newlines is the same remittance
    bpr_segment: Segment | None = field(default=None, compare=False, repr=False)
    payee_segment: Segment | None = field(default=None, compare=False, repr=False)


def _procedure(ic: Interchange, rd: Reader, seg: Segment, n: int) -> ProcedureCode | None:
    """A composite procedure element split by the component separator; None when empty."""
    text = seg.get(n)
    if not text:
        return None
    parts = [p.strip() for p in ic.split_components(text)]
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise rd.error(seg, f"{seg.field(n)} must be qualifier{ic.delimiters.component}code, got {text!r}", n)
    if len(parts) > 7:
        raise rd.error(seg, f"{seg.field(n)} has {len(parts)} components, at most 7 are allowed", n)
    modifiers = [p for p in parts[2:6] if p]
    description = parts[6] if len(parts) > 6 and parts[6] else None
    return ProcedureCode(parts[0], parts[1], modifiers, description)


def _adjustments(rd: Reader, seg: Segment) -> list[Adjustment]:
    """CAS: CAS01 group code, then up to 6 triplets (reason, amount, quantity) in CAS02..CAS19."""
    group = rd.code(seg, 1, "claim adjustment group code", GROUP_CODES) or ""
    if len(seg.elements) > 19:
        raise rd.error(seg, f"CAS holds at most 6 reason/amount/quantity triplets (CAS02-CAS19); "
                            f"this one has {len(seg.elements)} elements", 20)
    out = []
    for i in range(6):
        r, a, q = 2 + 3 * i, 3 + 3 * i, 4 + 3 * i
        reason, amount, quantity = seg.get(r), seg.get(a), seg.get(q)
        if not (reason or amount or quantity):
            continue
        if not reason:
            raise rd.error(seg, f"{seg.field(r)} (adjustment reason code) is required when "
                                f"{seg.field(a)} is given", r)
        value = rd.money(seg, a, "adjustment amount")
        qty = rd.optional_amount(seg, q, "adjustment quantity")
        out.append(Adjustment(group, reason, value, qty))
    if not out:
        raise rd.error(seg, "CAS02 (adjustment reason code) is required", 2)
    return out


def _provider_adjustments(ic: Interchange, rd: Reader, seg: Segment) -> list[ProviderAdjustment]:
    """PLB: PLB01 provider, PLB02 fiscal period date, then up to 6 (reason[:reference], amount) pairs."""
    provider = rd.required(seg, 1, "provider identifier")
    period = rd.date(seg, 2, "fiscal period date", required=True)
    if len(seg.elements) > 14:
        raise rd.error(seg, f"PLB holds at most 6 adjustment pairs (PLB03-PLB14); this one has "
                            f"{len(seg.elements)} elements", 15)
    out = []
    for i in range(6):
        c, a = 3 + 2 * i, 4 + 2 * i
        composite, amount = seg.get(c), seg.get(a)
        if not (composite or amount):
            continue
        if not composite:
            raise rd.error(seg, f"{seg.field(c)} (adjustment reason code) is required when "
                                f"{seg.field(a)} is given", c)
        parts = [p.strip() for p in ic.split_components(composite)]
        if not parts[0]:
            raise rd.error(seg, f"{seg.field(c)} has no adjustment reason code", c)
        value = rd.money(seg, a, "provider adjustment amount")
        out.append(ProviderAdjustment(provider, period, parts[0], parts[1] if len(parts) > 1 and parts[1]
                                      else None, value, seg.ref))
    if not out:
        raise rd.error(seg, "PLB03 (provider adjustment identifier) is required", 3)
    return out


def _remittance(ic: Interchange, rd: Reader, tx: Transaction) -> Remittance:
    body = tx.body
    if not body or body[0].id != "BPR":
        where = body[0] if body else tx.st
        raise rd.error(where, "an 835 must begin with a BPR segment after ST")
    bpr = body[0]
    amount = rd.money(bpr, 2, "total actual provider payment amount")
    remit = Remittance(
        control_number=tx.control_number,
        handling_code=rd.code(bpr, 1, "transaction handling code", HANDLING_CODES) or "",
        payment_amount=amount,
        credit_debit=rd.code(bpr, 3, "credit/debit flag", CREDIT_DEBIT) or "",
        payment_method=rd.code(bpr, 4, "payment method code", PAYMENT_METHODS) or "",
        payment_date=None,  # BPR16, read below: after BPR01-BPR04, so errors come in element order
        implementation=tx.implementation,
        segment=tx.st.ref,
        bpr_segment=bpr,
    )
    remit.payment_date, bpr16_problem = _payment_date(rd, bpr)
    if bpr16_problem:
        remit.payment_date_problem = str(rd.error(bpr, bpr16_problem, 16))
    context = "header"  # header, payer, payee, other_party, lx, claim, service, trailer
    claim: ClaimPayment | None = None
    line: ServiceLine | None = None
    for seg in body[1:]:
        sid = seg.id
        if sid == "TRN" and context == "header":
            remit.trace_number = rd.required(seg, 2, "check or EFT trace number")
            remit.originating_company_id = rd.optional(seg, 3)
        elif sid == "DTM" and context == "header":
            qualifier = rd.required(seg, 1, "date/time qualifier")
            value = rd.date(seg, 2, f"date {qualifier}", required=True)
            if qualifier == "405":
                remit.production_date = value
        elif sid == "N1" and context in ("header", "payer", "payee", "other_party"):
            code = rd.required(seg, 1, "entity identifier code")
            if code == "PR":
                context = "payer"
                remit.payer_name = rd.optional(seg, 2)
                remit.payer_id = rd.optional(seg, 4)
            elif code == "PE":
                context = "payee"
                remit.payee_segment = seg
                remit.payee_name = rd.optional(seg, 2)
                remit.payee_id_qualifier = rd.optional(seg, 3)
                remit.payee_id = rd.optional(seg, 4)
                if remit.payee_id and not remit.payee_id_qualifier:
                    raise rd.error(seg, "N103 (identification code qualifier) is required with N104", 3)
                if remit.payee_id_qualifier == "FI":
                    remit.payee_tax_id = remit.payee_id
            else:
                context = "other_party"
        elif sid == "REF" and context == "payer":
            if seg.get(1) == "2U" and not remit.payer_id:
                remit.payer_id = rd.required(seg, 2, "payer identification")
        elif sid == "REF" and context == "payee":
            if seg.get(1) == "TJ":
                remit.payee_tax_id = rd.required(seg, 2, "federal taxpayer's identification number")
        elif sid == "LX":
            if context == "trailer":
                raise rd.error(seg, "LX after PLB: PLB belongs at the end of the transaction")
            context, claim, line = "lx", None, None
        elif sid == "CLP":
            if context == "trailer":
                raise rd.error(seg, "CLP after PLB: PLB belongs at the end of the transaction")
            claim = _claim(rd, seg)
            remit.claims.append(claim)
            context, line = "claim", None
        elif sid == "SVC":
            if claim is None or context not in ("claim", "service"):
                raise rd.error(seg, "SVC outside a claim payment (no CLP before it)")
            procedure = _procedure(ic, rd, seg, 1)
            if procedure is None:
                raise rd.error(seg, "SVC01 (composite medical procedure identifier) is required", 1)
            line = ServiceLine(
                procedure=procedure,
                charge=rd.money(seg, 2, "line item charge amount"),
                paid=rd.money(seg, 3, "line item provider payment amount"),
                revenue_code=rd.optional(seg, 4),
                units=rd.amount(seg, 5, "units of service paid", default=Decimal(1)),
                original_procedure=_procedure(ic, rd, seg, 6),
                original_units=rd.optional_amount(seg, 7, "original units of service"),
                segment=seg.ref,
            )
            claim.service_lines.append(line)
            context = "service"
        elif sid == "CAS":
            if context == "service" and line is not None:
                line.adjustments.extend(_adjustments(rd, seg))
            elif context == "claim" and claim is not None:
                claim.adjustments.extend(_adjustments(rd, seg))
            else:
                raise rd.error(seg, "CAS outside a claim or service line", 1)
        elif sid == "NM1" and context == "claim" and claim is not None:
            if rd.required(seg, 1, "entity identifier code") == "QC":
                claim.patient_last_name = rd.optional(seg, 3)
                claim.patient_first_name = rd.optional(seg, 4)
                claim.patient_id_qualifier = rd.optional(seg, 8)
                claim.patient_id = rd.optional(seg, 9)
        elif sid == "MIA" and context == "claim" and claim is not None:
            # MIA05, MIA20-MIA23: claim payment remark codes (inpatient)
            claim.remark_codes.extend(c for c in (seg.get(n) for n in (5, 20, 21, 22, 23)) if c)
        elif sid == "MOA" and context == "claim" and claim is not None:
            # MOA03-MOA07: claim payment remark codes (outpatient)
            claim.remark_codes.extend(c for c in (seg.get(n) for n in range(3, 8)) if c)
        elif sid == "DTM" and context in ("claim", "service"):
            qualifier = rd.required(seg, 1, "date/time qualifier")
            value = rd.date(seg, 2, f"date {qualifier}", required=True)
            if context == "claim" and claim is not None:
                if qualifier == "232":
                    claim.statement_start = value
                elif qualifier == "233":
                    claim.statement_end = value
                elif qualifier == "050":
                    claim.received_date = value
            elif line is not None:
                if qualifier == "472":
                    line.service_date = value
                elif qualifier == "150":
                    line.service_start = value
                elif qualifier == "151":
                    line.service_end = value
        elif sid == "REF" and context in ("claim", "service"):
            qualifier = rd.required(seg, 1, "reference identification qualifier")
            value = rd.required(seg, 2, "reference identification")
            if context == "service" and line is not None:
                line.references[qualifier] = value
                if qualifier == "6R":
                    line.control_number = value
            elif claim is not None:
                claim.references[qualifier] = value
        elif sid == "LQ":
            if context != "service" or line is None:
                raise rd.error(seg, "LQ (health care remark code) outside a service line", 1)
            qualifier = rd.code(seg, 1, "code list qualifier", REMARK_QUALIFIERS) or ""
            line.remarks.append((qualifier, rd.required(seg, 2, "remark code")))
        elif sid == "PLB":
            context, claim, line = "trailer", None, None
            remit.provider_adjustments.extend(_provider_adjustments(ic, rd, seg))
        elif sid == "BPR":
            raise rd.error(seg, "a second BPR in one transaction")
        # other segments (CUR, REF*EV, PER, N3, N4, RDM, TS3, TS2, AMT, QTY, NM1 other than QC...) are skipped
    if bpr16_problem and remit.production_date is None:
        # Lenient mode repairs BPR16 from DTM*405 only; with neither there is no payment date at all.
        raise rd.error(bpr, f"{bpr16_problem}, and there is no valid DTM*405 (production date) to take the "
                            "payment date from", 16)
    return remit


def _payment_date(rd: Reader, bpr: Segment) -> tuple[dt.date | None, str | None]:
    """BPR16, required by the 835 guide. Payers' files often leave it out or send garbage (the LinuxForHealth
    sample has ``20002316``) and date the file in DTM*405 instead, so lenient mode reads a missing or invalid
    BPR16 as None plus the problem (also listed in the warnings); strict mode refuses it."""
    value, problem = rd.date_problem(bpr, 16, bpr.get(16), "check issue or EFT effective date")
    if problem is None:
        return value, None
    error = rd.error(bpr, problem, 16)
    if not rd.lenient_dates:
        raise error
    rd.warnings.append(str(error))
    return None, problem


def _claim(rd: Reader, seg: Segment) -> ClaimPayment:
    """CLP: the claim-level fields of loop 2100."""
    return ClaimPayment(
        claim_id=rd.required(seg, 1, "patient control number"),
        status_code=rd.required(seg, 2, "claim status code"),
        charge=rd.money(seg, 3, "total claim charge amount"),
        paid=rd.money(seg, 4, "claim payment amount"),
        patient_responsibility=rd.money(seg, 5, "patient responsibility amount", default=ZERO),
        filing_indicator=rd.optional(seg, 6),
        payer_claim_number=rd.optional(seg, 7),
        facility_code=rd.optional(seg, 8),
        frequency_code=rd.optional(seg, 9),
        segment=seg.ref,
    )


def parse_835(text: str, *, source: str = "<input>", lenient_dates: bool = False) -> list[Remittance]:
    """Parse every 835 transaction of an X12 file into :class:`Remittance` objects.

    Raises :class:`LoadError` (file, line, segment such as ``CLP#13``, field such as ``CLP04``) for a broken
    envelope, a non-835 transaction, a missing required element, a non-numeric amount, a monetary amount with
    a fraction of a cent, an unknown code or a malformed CCYYMMDD date. With ``lenient_dates`` a malformed
    date is read as None and the problem is listed in ``Remittance.warnings`` instead; BPR16 may then also be
    missing (``payment_date_problem`` says why it gave no date), provided the header has a DTM*405
    production date to stand in for it.
    """
    ic = read_interchange(text, source)
    out = []
    for tx in ic.transactions:
        if tx.type != "835":
            raise tx.st.error(f"ST01 is {tx.type!r}; expected an 835 transaction", source, 1)
        rd = Reader(source, lenient_dates)
        remit = _remittance(ic, rd, tx)
        remit.warnings.extend(rd.warnings)
        out.append(remit)
    if not out:
        raise LoadError("the file has no transaction sets", file=source, segment="ISA#1")
    return out


def _money(value: Decimal) -> str:
    return f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else str(value)


def check_835_balance(remittance: Remittance) -> list[str]:
    """The 835 balancing rules; each problem is one human-readable line (an empty list means balanced).

    * BPR02 (a debit when BPR03 is D) = sum of CLP04 - sum of PLB amounts;
    * per claim: CLP03 - CLP04 = sum of claim-level CAS + sum of line-level CAS amounts;
    * per service line (when the claim has any): SVC02 - SVC03 = sum of that line's CAS amounts.
    """
    problems = []
    r = remittance
    paid = sum((c.paid for c in r.claims), ZERO)
    plb = sum((p.amount for p in r.provider_adjustments), ZERO)
    expected = paid - plb
    actual = -r.payment_amount if r.credit_debit == "D" else r.payment_amount
    if actual != expected:
        problems.append(
            f"transaction {r.control_number} ({r.segment}): BPR02 payment {_money(r.payment_amount)}"
            f"{' (debit)' if r.credit_debit == 'D' else ''} does not equal claim payments {_money(paid)} "
            f"minus provider adjustments {_money(plb)} = {_money(expected)}")
    for c in r.claims:
        claim_cas = sum((a.amount for a in c.adjustments), ZERO)
        line_cas = sum((a.amount for ln in c.service_lines for a in ln.adjustments), ZERO)
        if c.charge - c.paid != claim_cas + line_cas:
            problems.append(
                f"claim {c.claim_id} ({c.segment}): charge {_money(c.charge)} - paid {_money(c.paid)} = "
                f"{_money(c.charge - c.paid)} but adjustments total {_money(claim_cas + line_cas)} "
                f"(claim-level {_money(claim_cas)}, line-level {_money(line_cas)})")
        for ln in c.service_lines:
            cas = sum((a.amount for a in ln.adjustments), ZERO)
            if ln.charge - ln.paid != cas:
                problems.append(
                    f"claim {c.claim_id} service line {ln.procedure.code} ({ln.segment}): charge "
                    f"{_money(ln.charge)} - paid {_money(ln.paid)} = {_money(ln.charge - ln.paid)} but "
                    f"adjustments total {_money(cas)}")
    return problems
