"""834 benefit enrollment and maintenance (005010X220A1): dataclasses and parser."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from dashboard.errors import LoadError
from dashboard.warehouse.x12.tokenizer import Segment, Transaction, read_interchange
from dashboard.warehouse.x12.values import Reader

#: INS03 / HD01 maintenance type code.
MAINTENANCE_TYPES = {
    "001": "change",
    "021": "addition",
    "024": "cancellation or termination",
    "025": "reinstatement",
    "030": "audit or compare",
}
#: INS01 subscriber indicator.
YES_NO = frozenset({"Y", "N"})
#: DMG03 gender code.
GENDERS = {"F": "female", "M": "male", "U": "unknown"}
#: HD05 coverage level code -> tier used by the marts; anything else is "other".
COVERAGE_TIERS = {
    "EMP": "employee_only",  # employee only
    "IND": "employee_only",  # individual
    "ESP": "employee_spouse",  # employee and spouse
    "ECH": "employee_children",  # employee and children
    "FAM": "family",  # family
}
#: NM101 codes of loop 2100A (the member whose data this is): IL insured, 74 corrected insured.
MEMBER_NAME_CODES = frozenset({"IL", "74"})


def coverage_tier(hd05: str | None) -> str:
    """Map an HD05 coverage level code to employee_only, employee_spouse, employee_children, family or other.

    EMP (employee only) and IND (individual) are employee_only, ESP employee_spouse, ECH employee_children,
    FAM family. E1D (employee + 1 dependent), SPC (spouse and children), CHD (children only), TWO, E2D..E9D,
    DEP, SPO and a missing HD05 are "other": they do not say which dependents are covered.
    """
    return COVERAGE_TIERS.get((hd05 or "").strip().upper(), "other")


@dataclass
class Coverage:
    """Loop 2300: one HD health coverage line of a member."""

    maintenance_type: str  #: HD01 maintenance type code (001, 021, 024, 025, 030)
    insurance_line: str | None  #: HD03 insurance line code: HLT, DEN, VIS, HMO, PPO, PDG, ...
    plan_description: str | None = None  #: HD04 plan coverage description
    coverage_level: str | None = None  #: HD05 coverage level code: EMP, ESP, ECH, FAM, E1D, SPC, CHD, IND...
    benefit_begin: dt.date | None = None  #: DTP*348 benefit begin
    benefit_end: dt.date | None = None  #: DTP*349 benefit end
    dates: dict[str, dt.date | None] = field(default_factory=dict)  #: every DTP qualifier -> date
    references: dict[str, str] = field(default_factory=dict)  #: REF qualifiers (1L, 17, ZZ...) -> values
    segment: str = ""  #: where the HD sits

    @property
    def tier(self) -> str:
        """:func:`coverage_tier` of HD05."""
        return coverage_tier(self.coverage_level)


@dataclass
class MemberChange:
    """Loop 2000: one INS member level detail (a subscriber or a dependent) and its changes."""

    subscriber_indicator: str  #: INS01 Y = subscriber, N = dependent
    relationship_code: str  #: INS02 individual relationship: 18 self, 01 spouse, 19 child...
    maintenance_type: str  #: INS03 001 change, 021 addition, 024 termination, 025 reinstatement, 030 audit
    maintenance_reason: str | None = None  #: INS04 maintenance reason code
    benefit_status: str | None = None  #: INS05 A active, C COBRA, S surviving insured, T tax equity act
    employment_status: str | None = None  #: INS08 FT full time, PT part time, RT retired, TE terminated...
    subscriber_id: str | None = None  #: REF*0F subscriber number
    group_policy_number: str | None = None  #: REF*1L group or policy number
    other_ids: dict[str, str] = field(default_factory=dict)  #: other member REF qualifiers (17, 23, 3H...)
    eligibility_begin: dt.date | None = None  #: DTP*356
    eligibility_end: dt.date | None = None  #: DTP*357
    maintenance_effective: dt.date | None = None  #: DTP*303
    dates: dict[str, dt.date | None] = field(default_factory=dict)  #: every member-level DTP qualifier
    last_name: str | None = None  #: NM1*IL NM103
    first_name: str | None = None  #: NM1*IL NM104
    middle_name: str | None = None  #: NM1*IL NM105
    member_id_qualifier: str | None = None  #: NM1*IL NM108: 34 SSN, ZZ mutually defined
    member_id: str | None = None  #: NM1*IL NM109
    birth_date: dt.date | None = None  #: DMG02
    gender: str | None = None  #: DMG03 M, F or U
    address_line1: str | None = None  #: N301
    address_line2: str | None = None  #: N302
    city: str | None = None  #: N401
    state: str | None = None  #: N402
    postal_code: str | None = None  #: N403
    prior_last_name: str | None = None  #: NM1*70 (incorrect member name) NM103
    prior_first_name: str | None = None  #: NM1*70 NM104
    prior_birth_date: dt.date | None = None  #: DMG02 after NM1*70 (incorrect demographics)
    coverages: list[Coverage] = field(default_factory=list)  #: loop 2300 HD
    segment: str = ""  #: where the INS sits

    @property
    def is_subscriber(self) -> bool:
        """INS01 = Y."""
        return self.subscriber_indicator == "Y"


@dataclass
class EnrollmentFile:
    """One 834 transaction (ST..SE): the sponsor, the payer and the member changes they exchange."""

    control_number: str  #: ST02
    purpose_code: str  #: BGN01 transaction set purpose: 00 original, 15 re-submission, 22 information copy
    reference: str  #: BGN02 reference identification of this file
    created: dt.date | None  #: BGN03 creation date
    time: str | None = None  #: BGN04 creation time
    action_code: str | None = None  #: BGN08 2 change (update), 4 verify, RX replace
    master_policy_number: str | None = None  #: REF*38 in the header
    sponsor_name: str | None = None  #: N1*P5 N102 (employer / group)
    sponsor_id_qualifier: str | None = None  #: N1*P5 N103 (FI tax id, 24 EIN, 94 code...)
    sponsor_id: str | None = None  #: N1*P5 N104
    payer_name: str | None = None  #: N1*IN N102 (insurer)
    payer_id_qualifier: str | None = None  #: N1*IN N103
    payer_id: str | None = None  #: N1*IN N104
    header_dates: dict[str, dt.date | None] = field(default_factory=dict)  #: header DTP (007, 303, 382...)
    members: list[MemberChange] = field(default_factory=list)
    implementation: str = ""  #: ST03 / GS08, e.g. 005010X220A1
    segment: str = ""  #: where the ST sits
    warnings: list[str] = field(default_factory=list)  #: problems tolerated in lenient mode


def _date_period(rd: Reader, seg: Segment) -> tuple[str, dt.date | None, dt.date | None]:
    """DTP: DTP01 qualifier, DTP02 format (D8 date, RD8 range CCYYMMDD-CCYYMMDD), DTP03 value.

    A DTM (DTM01 qualifier, DTM02 CCYYMMDD) is read the same way. Returns qualifier, start, end.
    """
    qualifier = rd.required(seg, 1, "date/time qualifier")
    if seg.id == "DTM":
        value = rd.date(seg, 2, f"date {qualifier}", required=True)
        return qualifier, value, value
    fmt = rd.code(seg, 2, "date time period format qualifier", frozenset({"D8", "RD8"})) or ""
    text = rd.required(seg, 3, f"date {qualifier}")
    if fmt == "D8":
        value = rd.date_text(seg, 3, text, f"date {qualifier}")
        return qualifier, value, value
    start, sep, end = text.partition("-")
    if not sep:
        raise rd.error(seg, f"DTP03 must be a range CCYYMMDD-CCYYMMDD when DTP02 is RD8, got {text!r}", 3)
    return (qualifier, rd.date_text(seg, 3, start, f"date {qualifier} (start)"),
            rd.date_text(seg, 3, end, f"date {qualifier} (end)"))


def _member(rd: Reader, seg: Segment) -> MemberChange:
    """INS: the member level detail that opens loop 2000."""
    return MemberChange(
        subscriber_indicator=rd.code(seg, 1, "subscriber indicator", YES_NO) or "",
        relationship_code=rd.required(seg, 2, "individual relationship code"),
        maintenance_type=rd.code(seg, 3, "maintenance type code", MAINTENANCE_TYPES) or "",
        maintenance_reason=rd.optional(seg, 4),
        benefit_status=rd.required(seg, 5, "benefit status code"),
        employment_status=rd.optional(seg, 8),
        segment=seg.ref,
    )


def _enrollment(rd: Reader, tx: Transaction) -> EnrollmentFile:
    body = tx.body
    if not body or body[0].id != "BGN":
        raise rd.error(body[0] if body else tx.st, "an 834 must begin with a BGN segment after ST")
    bgn = body[0]
    out = EnrollmentFile(
        control_number=tx.control_number,
        purpose_code=rd.required(bgn, 1, "transaction set purpose code"),
        reference=rd.required(bgn, 2, "reference identification"),
        created=rd.date(bgn, 3, "creation date", required=True),
        time=rd.optional(bgn, 4),
        action_code=rd.optional(bgn, 8),
        implementation=tx.implementation,
        segment=tx.st.ref,
    )
    # header, sponsor, payer, party, member, name, prior_name, other_name, disability, coverage,
    # provider, cob, reporting
    context = "header"
    member: MemberChange | None = None
    coverage: Coverage | None = None
    for seg in body[1:]:
        sid = seg.id
        if sid == "INS":
            member, coverage = _member(rd, seg), None
            out.members.append(member)
            context = "member"
        elif member is None:
            if sid == "N1":
                code = rd.required(seg, 1, "entity identifier code")
                if code == "P5":
                    out.sponsor_name = rd.optional(seg, 2)
                    out.sponsor_id_qualifier = rd.optional(seg, 3)
                    out.sponsor_id = rd.optional(seg, 4)
                elif code == "IN":
                    out.payer_name = rd.optional(seg, 2)
                    out.payer_id_qualifier = rd.optional(seg, 3)
                    out.payer_id = rd.optional(seg, 4)
                context = "party"
            elif sid == "REF" and context == "header":
                if rd.required(seg, 1, "reference identification qualifier") == "38":
                    out.master_policy_number = rd.required(seg, 2, "master policy number")
            elif sid in ("DTP", "DTM") and context == "header":
                qualifier, start, _ = _date_period(rd, seg)
                out.header_dates[qualifier] = start
            elif sid in ("HD", "NM1", "DMG"):
                raise rd.error(seg, f"{sid} before the first INS (member level detail)")
        elif sid == "REF" and context in ("member", "coverage"):
            qualifier = rd.required(seg, 1, "reference identification qualifier")
            value = rd.required(seg, 2, "reference identification")
            if context == "coverage" and coverage is not None:
                coverage.references[qualifier] = value
            elif qualifier == "0F":
                member.subscriber_id = value
            elif qualifier == "1L":
                member.group_policy_number = value
            else:
                member.other_ids[qualifier] = value
        elif sid in ("DTP", "DTM") and context in ("member", "coverage"):
            qualifier, start, end = _date_period(rd, seg)
            if context == "coverage" and coverage is not None:
                coverage.dates[qualifier] = start
                if qualifier == "348":
                    coverage.benefit_begin = start
                    if end != start and coverage.benefit_end is None:
                        coverage.benefit_end = end
                elif qualifier == "349":
                    coverage.benefit_end = start
            else:
                member.dates[qualifier] = start
                if qualifier == "356":
                    member.eligibility_begin = start
                    if end != start and member.eligibility_end is None:
                        member.eligibility_end = end
                elif qualifier == "357":
                    member.eligibility_end = start
                elif qualifier == "303":
                    member.maintenance_effective = start
        elif sid == "NM1" and context in ("member", "name", "prior_name", "other_name", "disability"):
            code = rd.required(seg, 1, "entity identifier code")
            if code in MEMBER_NAME_CODES:
                context = "name"
                member.last_name = rd.required(seg, 3, "member last name")
                member.first_name = rd.optional(seg, 4)
                member.middle_name = rd.optional(seg, 5)
                member.member_id_qualifier = rd.optional(seg, 8)
                member.member_id = rd.optional(seg, 9)
                if member.member_id and not member.member_id_qualifier:
                    raise rd.error(seg, "NM108 (identification code qualifier) is required with NM109", 8)
            elif code == "70":
                context = "prior_name"
                member.prior_last_name = rd.optional(seg, 3)
                member.prior_first_name = rd.optional(seg, 4)
            else:
                context = "other_name"  # mailing address, employer, school, custodial parent, ...
        elif sid == "N3" and context == "name":
            member.address_line1 = rd.required(seg, 1, "address line")
            member.address_line2 = rd.optional(seg, 2)
        elif sid == "N4" and context == "name":
            member.city = rd.optional(seg, 1)
            member.state = rd.optional(seg, 2)
            member.postal_code = rd.optional(seg, 3)
        elif sid == "DMG" and context in ("name", "prior_name"):
            rd.code(seg, 1, "date time period format qualifier", frozenset({"D8"}))
            birth = rd.date(seg, 2, "birth date", required=True)
            gender = rd.code(seg, 3, "gender code", GENDERS, required=False)
            if context == "name":
                member.birth_date, member.gender = birth, gender
            else:
                member.prior_birth_date = birth
        elif sid == "DSB":
            context = "disability"
        elif sid == "HD":
            coverage = Coverage(
                maintenance_type=rd.code(seg, 1, "maintenance type code", MAINTENANCE_TYPES) or "",
                insurance_line=rd.required(seg, 3, "insurance line code"),
                plan_description=rd.optional(seg, 4),
                coverage_level=rd.optional(seg, 5),
                segment=seg.ref,
            )
            member.coverages.append(coverage)
            context = "coverage"
        elif sid == "LX" and context in ("coverage", "provider"):
            context = "provider"  # loop 2310 provider information
        elif sid == "COB":
            context = "cob"  # loop 2320 coordination of benefits
        elif sid == "LS":
            context = "reporting"  # loop 2700 additional reporting categories, closed by LE
        elif sid == "LE":
            context = "closed"
        # other segments (PER, EC, ICM, AMT, HLH, LUI, IDC, PLA, provider NM1...) are skipped
    return out


def parse_834(text: str, *, source: str = "<input>", lenient_dates: bool = False) -> list[EnrollmentFile]:
    """Parse every 834 transaction of an X12 file into :class:`EnrollmentFile` objects.

    Raises :class:`LoadError` naming file, line, segment (``INS#8``) and field (``INS03``) for a broken
    envelope, a non-834 transaction, a missing required element, an unknown code or a malformed date.
    With ``lenient_dates`` a malformed date is read as None and listed in ``warnings`` instead.
    """
    ic = read_interchange(text, source)
    out = []
    for tx in ic.transactions:
        if tx.type != "834":
            raise tx.st.error(f"ST01 is {tx.type!r}; expected an 834 transaction", source, 1)
        rd = Reader(source, lenient_dates)
        enrollment = _enrollment(rd, tx)
        enrollment.warnings.extend(rd.warnings)
        out.append(enrollment)
    if not out:
        raise LoadError("the file has no transaction sets", file=source, segment="ISA#1")
    return out
