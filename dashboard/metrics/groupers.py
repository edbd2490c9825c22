"""How a claim is grouped for cost drivers: service category 2, condition group and place of service.

* **Service category 2** refines Tuva's service_category_1 (:func:`dashboard.metrics.definitions.
  medical_service_category`) with the same inputs (claim type, bill type, place of service, HCPCS, revenue
  code), simplified from the Tuva Project's service category grouper. Each line gets a (category 1, category 2)
  pair; a claim takes its lines' first pair in :data:`SERVICE_CATEGORY_2`, which lists the pairs in category 1's
  priority, so a claim's category 2 always lies inside its category 1.
* **Condition group**: the body system of the claim's primary diagnosis (diagnosis_code_1), by ICD-10-CM chapter.
  The groups and their three-letter codes are AHRQ CCSR's body systems (CIR, END, MBD, ...), whose domains follow
  the ICD-10-CM chapters (dental, DEN, is K00–K14 of the digestive chapter). Chapter ranges are from the
  ICD-10-CM tabular list (CDC/CMS, public domain); we do not ship CCSR's 500-odd category file.
* **Place of service**: the CMS place-of-service code of a professional claim (public domain code set);
  institutional (UB-04) claims have none and group as "facility claim".
* **Age band and gender** of an enrolled member in a month: age on the month's first day, in the bands carriers'
  employer reports use; gender as the eligibility file gives it (female, male, other, unknown).
* **834 maintenance**: what an enrollment change was (INS03) and why (INS04), in this project's own words (X12's
  descriptions are licensed and not shipped).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

# (category 1, category 2) in priority order: category 1 in SERVICE_CATEGORY_PRIORITY's order, then category 2
SERVICE_CATEGORY_2 = (
    ("inpatient", "acute inpatient"), ("inpatient", "inpatient psychiatric"),
    ("inpatient", "inpatient rehabilitation"), ("inpatient", "skilled nursing"), ("inpatient", "inpatient other"),
    ("outpatient", "emergency department"), ("outpatient", "ambulatory surgery"), ("outpatient", "dialysis"),
    ("outpatient", "outpatient hospital"),
    ("office-based", "office visit"), ("office-based", "telehealth"), ("office-based", "office procedures and tests"),
    ("ancillary", "lab"), ("ancillary", "durable medical equipment"),
    ("other", "other"),
)
PHARMACY_2 = ("pharmacy", "pharmacy")
_RANK = {pair: rank for rank, pair in enumerate(SERVICE_CATEGORY_2, start=1)}
OFFICE_VISIT_CODES = tuple(f"992{n:02d}" for n in (*range(2, 6), *range(11, 16)))  # new and established E/M


def service_category_2_rank(claim_type: ColumnElement, bill_type: ColumnElement, place_of_service: ColumnElement,
                            hcpcs: ColumnElement, revenue: ColumnElement) -> ColumnElement:
    """A line's pair's place in :data:`SERVICE_CATEGORY_2`; the branches are medical_service_category's, split."""
    bill = sa.func.substr(bill_type, 1, 2)
    institutional = claim_type == "institutional"
    return sa.case(
        (sa.and_(institutional, bill == "11"), _RANK["inpatient", "acute inpatient"]),
        (sa.and_(institutional, bill == "21"), _RANK["inpatient", "skilled nursing"]),
        (sa.and_(institutional, bill == "12"), _RANK["inpatient", "inpatient other"]),
        (sa.and_(institutional, revenue.like("045%")), _RANK["outpatient", "emergency department"]),
        (sa.and_(institutional, bill == "72"), _RANK["outpatient", "dialysis"]),
        (institutional, _RANK["outpatient", "outpatient hospital"]),
        (place_of_service == "21", _RANK["inpatient", "acute inpatient"]),
        (place_of_service == "51", _RANK["inpatient", "inpatient psychiatric"]),
        (place_of_service == "61", _RANK["inpatient", "inpatient rehabilitation"]),
        (place_of_service == "23", _RANK["outpatient", "emergency department"]),
        (place_of_service == "24", _RANK["outpatient", "ambulatory surgery"]),
        (place_of_service.in_(("19", "22")), _RANK["outpatient", "outpatient hospital"]),
        (place_of_service.in_(("02", "10")), _RANK["office-based", "telehealth"]),
        (sa.and_(place_of_service == "11", hcpcs.in_(OFFICE_VISIT_CODES)), _RANK["office-based", "office visit"]),
        (place_of_service == "11", _RANK["office-based", "office procedures and tests"]),
        (place_of_service == "81", _RANK["ancillary", "lab"]),
        (sa.func.substr(hcpcs, 1, 1).in_(("E", "K", "L")), _RANK["ancillary", "durable medical equipment"]),
        else_=_RANK["other", "other"],
    )


def service_category_2_of_rank(rank: ColumnElement) -> ColumnElement:
    return sa.case(*[(rank == n, name) for (_, name), n in _RANK.items()], else_="other")


# CCSR body systems by ICD-10-CM chapter: (code, name, first three characters from, to), in chapter order
CONDITION_GROUPS = (
    ("INF", "Infectious and parasitic diseases", "A00", "B99"),
    ("NEO", "Neoplasms", "C00", "D49"),
    ("BLD", "Blood and immune disorders", "D50", "D89"),
    ("END", "Endocrine, nutritional and metabolic", "E00", "E89"),
    ("MBD", "Mental, behavioral and neurodevelopmental", "F01", "F99"),
    ("NVS", "Nervous system", "G00", "G99"),
    ("EYE", "Eye and adnexa", "H00", "H59"),
    ("EAR", "Ear and mastoid", "H60", "H95"),
    ("CIR", "Circulatory system", "I00", "I99"),
    ("RSP", "Respiratory system", "J00", "J99"),
    ("DEN", "Dental", "K00", "K14"),
    ("DIG", "Digestive system", "K15", "K95"),
    ("SKN", "Skin and subcutaneous tissue", "L00", "L99"),
    ("MUS", "Musculoskeletal and connective tissue", "M00", "M99"),
    ("GEN", "Genitourinary system", "N00", "N99"),
    ("PRG", "Pregnancy and childbirth", "O00", "O9A"),
    ("PNL", "Perinatal conditions", "P00", "P96"),
    ("MAL", "Congenital malformations", "Q00", "Q99"),
    ("SYM", "Symptoms, signs and abnormal findings", "R00", "R99"),
    ("INJ", "Injury and poisoning", "S00", "T88"),
    ("INF", "Infectious and parasitic diseases", "U07", "U07"),  # COVID-19 (U07.1), as CCSR places it
    ("EXT", "External causes", "V00", "Y99"),
    ("FAC", "Factors influencing health status (preventive care, screening)", "Z00", "Z99"),
)
NOT_CODED = ("UNK", "No valid diagnosis")
PHARMACY_CONDITION = ("RX", "Pharmacy (no diagnosis on the claim)")
CONDITION_NAMES = {code: name for code, name, *_ in (*CONDITION_GROUPS, NOT_CODED, PHARMACY_CONDITION)}


def condition_group(diagnosis: ColumnElement) -> ColumnElement:
    """The CCSR body system of an ICD-10-CM code (dots and case ignored), by its first three characters."""
    head = sa.func.upper(sa.func.substr(sa.func.replace(diagnosis, ".", ""), 1, 3))
    return sa.case(*[(head.between(low, high), code) for code, _, low, high in CONDITION_GROUPS],
                   else_=NOT_CODED[0])


# CMS place-of-service codes seen on professional claims (the code set: cms.gov, public domain)
PLACES_OF_SERVICE = {
    "02": "Telehealth (not in the patient's home)", "10": "Telehealth in the patient's home", "11": "Office",
    "12": "Home", "19": "Off-campus outpatient hospital", "20": "Urgent care facility",
    "21": "Inpatient hospital", "22": "On-campus outpatient hospital", "23": "Emergency room (hospital)",
    "24": "Ambulatory surgical center", "31": "Skilled nursing facility", "32": "Nursing facility",
    "41": "Ambulance (land)", "49": "Independent clinic", "50": "Federally qualified health center",
    "51": "Inpatient psychiatric facility", "61": "Comprehensive inpatient rehabilitation facility",
    "65": "End-stage renal disease treatment facility", "71": "Public health clinic", "72": "Rural health clinic",
    "81": "Independent laboratory", "99": "Other place of service",
}
FACILITY_PLACE = ("UB", "Facility claim (UB-04, no place of service)")
PHARMACY_PLACE = ("RX", "Pharmacy")
UNKNOWN_PLACE = "unknown"
PHARMACY_PROVIDER = ("RX", "Pharmacies (all)")


def place_of_service_name(code: str | None) -> str:
    if code == FACILITY_PLACE[0]:
        return FACILITY_PLACE[1]
    if code == PHARMACY_PLACE[0]:
        return PHARMACY_PLACE[1]
    return PLACES_OF_SERVICE.get(code or "", f"Place of service {code}" if code else "Not recorded")


AGE_BANDS = (("0-17", 0, 17), ("18-25", 18, 25), ("26-34", 26, 34), ("35-44", 35, 44), ("45-54", 45, 54),
             ("55-64", 55, 64), ("65+", 65, None))
GENDERS = ("female", "male", "other", "unknown")


def age_band(birth_date: ColumnElement, on: ColumnElement) -> ColumnElement:
    """The band of the age on ``on`` (a month's first day): whole years, less one before the birthday."""
    years = sa.extract("year", on) - sa.extract("year", birth_date)
    before_birthday = sa.or_(sa.extract("month", birth_date) > sa.extract("month", on),
                             sa.and_(sa.extract("month", birth_date) == sa.extract("month", on),
                                     sa.extract("day", birth_date) > sa.extract("day", on)))
    age = years - sa.case((before_birthday, 1), else_=0)
    return sa.case((birth_date.is_(None), "unknown"),
                   *[(age <= high, name) for name, _, high in AGE_BANDS if high is not None], else_=AGE_BANDS[-1][0])


def gender(value: ColumnElement) -> ColumnElement:
    text = sa.func.lower(sa.func.trim(value))
    return sa.case((text.in_(("female", "f")), "female"), (text.in_(("male", "m")), "male"),
                   (sa.or_(value.is_(None), text.in_(("", "unknown", "u"))), "unknown"), else_="other")


# 834 INS03 (HD01): what a maintenance did
MAINTENANCE_TYPES = {"001": "change", "021": "addition", "024": "termination", "025": "reinstatement",
                     "030": "audit or compare"}
# 834 INS04: why (the common codes; any other reads as "other reason")
MAINTENANCE_REASONS = {
    "01": "divorce", "02": "birth", "03": "death", "04": "retirement", "05": "adoption", "06": "strike",
    "07": "benefits ended", "08": "employment ended", "09": "COBRA", "10": "COBRA premium paid",
    "11": "surviving spouse", "14": "voluntary withdrawal", "15": "primary care provider changed", "16": "quit",
    "17": "dismissed", "18": "suspended", "20": "active", "21": "disability", "22": "plan changed",
    "25": "identifying data changed", "26": "coverage declined", "27": "pre-enrollment", "28": "initial enrollment",
    "29": "benefits selected", "31": "legal separation", "32": "marriage", "33": "personnel data",
    "37": "leave of absence with benefits", "38": "leave of absence without benefits", "39": "lay-off with benefits",
    "40": "lay-off without benefits", "41": "re-enrollment", "43": "location changed", "AI": "no reason given",
    "XN": "notification only", "XT": "transfer",
}


def maintenance_reason(code: str | None) -> str:
    return "no reason given" if not code else MAINTENANCE_REASONS.get(code, "other reason")
