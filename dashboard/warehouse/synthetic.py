"""Synthetic demo warehouse: a small health-care market, simulated claim by claim, written to every table.

The world
---------
* **Six practices** (billing TIN = ``practice_id``) in the Dayton, Ohio area: family medicine, orthopedics,
  cardiology, pediatrics, dermatology and behavioral health, of different sizes, each with its own billing
  habits (days from visit to the 837, clearinghouse rejection rate, denial proneness). They see the
  employers' members and their own Medicare, Medicaid and other commercial patients.
* **Eight payers** (``payer_id`` is the code used verbatim in ``medical_claim.payer``): Medicare, Ohio
  Medicaid, four commercial carriers, a Medicare Advantage plan and a workers' compensation fund that
  pays by paper check. Each has a payment lag (lognormal), an initial denial rate, a CARC mix, a fee
  schedule (allowed ÷ charge) and patient cost-sharing rules.
* **Five self-funded employers** (``eligibility.group_id``) with one to three plans each, administered by
  the commercial carriers. Subscribers enrol with a coverage tier (EMP/ESP/ECH/FAM) and their spouse and
  children; people are hired, leave (12–18 %/yr), are reinstated after a gap (second span), children
  are born (span from the date of birth) and age out at 26. ~1 % of members are high-cost claimants
  (oncology, NICU, transplant, dialysis, cardiac surgery, specialty drugs) carrying ~25–30 % of spend.
  Members also see outside providers (hospitals, labs, DME, ER and specialist groups) whose TINs are
  not demo practices, and fill prescriptions (``pharmacy_claim``).

Revenue cycle (only claims whose ``billing_tin`` is a demo practice)
-------------------------------------------------------------------
visit → 837 'submitted' (practice lag) → 277CA 'accepted' (A2) or 'rejected' (A7, corrected and
re-submitted) → first 835 after the payer's lag: paid (CO-45 contractual + PR-1/2/3 patient share,
sometimes one line denied CO-97/CO-50) or denied (paid 0, CO-<CARC> for the full charge) → denials
are 'appealed' (paid on a second 835) or written off ('denial'), some still open → patient balances are
paid (portal, card, check, cash, payment plan), partly paid, refunded when overpaid, or written off as
bad debt. ERAs group a practice's claims by (payer, payment date); BPR02 = Σ CLP04 − Σ PLB.

Conventions
-----------
* Dates of service run from ``WINDOW_START`` to ``DEMO_AS_OF``; no event is dated after ``DEMO_AS_OF``,
  so claims still in flight on that day are open A/R.
* **Open enrollment spans end on 2099-12-31** (``OPEN_SPAN_END``): a span ending on the as-of month end
  would read as a termination in the last month; a span that ends earlier is a real term (last day of the
  coverage month).
* Money is integer cents internally, written as two-decimal amounts, so every 835 balances exactly.
* Output depends only on ``(claims, seed)``: every random draw comes from ``numpy.random.default_rng``
  seeded with ``seed`` (per batch: ``[seed, batch]``), never from the clock, ``hash()`` or set order.
* Memory is bounded: members and their claims are generated and inserted in batches of
  ``SUBSCRIBERS_PER_BATCH`` subscribers; only per-(practice, payer, day) remittance totals are kept
  across batches (what the database itself holds for the caller's open transaction is its own).
* Writing: each batch is a handful of DataFrames (numpy arrays, no per-row Python), written by a
  background thread (:class:`_Writer`) through :func:`bulk_insert` (DuckDB: the frame is registered and
  ``INSERT ... SELECT``-ed; PostgreSQL: COPY) in whole DuckDB row groups, while the next batch is
  generated. The batch size and the per-batch seeds are part of the output: changing them changes the data.
* Calibration: the constants below were tuned so that, on any seed, the practice KPIs of
  kpi-reference.md land in realistic ranges (days in A/R 35–55, initial denials 5–9%, clean claims
  91–97%, net collection 91–96%, A/R over 90 days 10–25%) and the top 1% of members carry ~25–30% of
  employer spend; tests/test_synthetic.py recomputes them.
"""

from __future__ import annotations

import datetime as dt
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa
from tqdm import tqdm

from dashboard.errors import BadInput
from dashboard.warehouse import schema as s
from dashboard.warehouse.engine import bulk_insert

# --- time window -------------------------------------------------------------------------------

DEMO_AS_OF = dt.date(2026, 10, 31)  # fixed, so output depends only on (claims, seed)
WINDOW_START = dt.date(2024, 11, 1)
PLAN_EFFECTIVE = dt.date(2021, 1, 1)  # the employers' plans with these carriers began then: no span starts earlier
OPEN_SPAN_END = dt.date(2099, 12, 31)  # enrollment_end_date of spans still active at DEMO_AS_OF
DATA_SOURCE = "demo"
LOADED_AT = dt.datetime(2026, 10, 31, 12, 7, 0)  # data_load.loaded_at: deterministic "noon-ish"

MIN_CLAIMS = 1_000
MAX_CLAIMS = 20_000_000

_EPOCH = np.datetime64("1970-01-01", "D")


def _day(value: dt.date) -> int:
    return int((np.datetime64(value, "D") - _EPOCH).astype(np.int64))


D0 = _day(WINDOW_START)
DA = _day(DEMO_AS_OF)
D_OPEN = _day(OPEN_SPAN_END)
_MONTHS = np.arange(np.datetime64("2024-11"), np.datetime64("2026-11"))  # the 24 window months
MONTH_START = (_MONTHS.astype("datetime64[D]") - _EPOCH).astype(np.int64)
MONTH_END = ((_MONTHS + 1).astype("datetime64[D]") - _EPOCH).astype(np.int64) - 1
N_MONTHS = len(_MONTHS)

# --- sizing ------------------------------------------------------------------------------------

MEMBER_CLAIM_SHARE = 0.55  # employer members' medical claims ÷ all claims (the rest: practices' own patients)
SUBSCRIBERS_PER_CLAIM = 0.0265  # ~5,300 subscribers (~12k people) at 200k claims
SUBSCRIBERS_PER_BATCH = 2_000  # unit of generation and insertion (bounds memory at any N)

# --- population dynamics -----------------------------------------------------------------------

REINSTATE_RATE = 0.08  # termed subscribers rehired after a 1–6 month gap (second span, 834 INS03=025)
HCC_MEMBER_RATE = 0.01  # high-cost claimants: ~1% of members (Springbuk/EBRI)
HCC_CATASTROPHIC_SHARE = 0.03  # of them, $1M+ cases (CAR-T, complicated transplant, long NICU stay)
HCC_CLAIM_SHARE = 0.025  # their condition-specific claims ÷ member claims
RUNOUT_SHARE = 0.011  # member claims dated after the final term (run-out; "~1% outside enrollment")
RX_FILLS_BY_AGE = (5.0, 12.0, 21.0)  # fills per member-year under 18 / 18–49 / 50+ (average ≈ 11.5; 10–14)
RX_SPECIALTY_SHARE = 0.0012  # random specialty fills among ordinary members (> $5k per fill)

# --- revenue-cycle behaviour -------------------------------------------------------------------

APPEAL_RATE = {"16": 0.88, "4": 0.88, "197": 0.75, "50": 0.65, "97": 0.55, "27": 0.55, "18": 0.0, "29": 0.0}
# ^ corrected claims (CO-16 info, CO-4 modifier) are easy wins; duplicates and timely filing are never
#   appealed. Overall ~60% of denials are appealed and paid on a second 835.
PENDED_RATE = 0.04  # claims the payer pends or loses: paid only after follow-up, 60–150 days late
PENDED_RATE_BY_PAYER = {"MEDICAID": 0.08, "WORKCOMP": 0.10}  # retro-eligibility reviews, adjuster files
DENIAL_NEVER_WORKED = 0.15  # non-appealed small denials nobody ever writes off (stay in old A/R)
NEVER_WORKED_MAX_CENTS = 50_000  # billing teams always work denials from $500 up
PARTIAL_DENIAL_RATE = 0.075  # multi-line paid claims with one line denied (CO-97/CO-50): ~4% of paid claims
PARTIAL_LINE_NEVER_WORKED = 0.15
COPAY_AT_VISIT_RATE = 0.85  # copays taken at check-in (card/cash/check) before the claim is billed
PATIENT_PARTIAL_RATE = 0.10  # patient balances paid in part
PATIENT_REFUND_RATE = 0.02  # full payers who overpay and get a refund (negative patient_payment)
PATIENT_NEVER_WRITTEN_OFF = 0.30  # unpaid patient balances still open (collections) past 120 days
PAYMENT_PLAN_MIN_CENTS = 40_000  # balances from $400 may go on a payment plan
ELIG_CHECK_RATE = 0.93  # practice visits with a 270 before the visit
ELIG_PENDING_RECENT_DAYS = 21  # 271 answers still pending cluster at the most recent dates of service

DENIAL_CARCS = ("16", "97", "50", "197", "18", "29", "27", "4")
_REMARKS = {"16": "MA130", "97": "M15", "50": "N115", "197": "M62", "27": "N30"}
_REJECT_REASONS = (
    "A7:562 Invalid subscriber ID", "A7:33 Missing rendering provider NPI",
    "A7:255 Invalid diagnosis pointer", "A7:158 Patient date of birth mismatch",
    "A7:116 Payer ID not recognised",
)
_APPEAL_DETAIL = {
    "16": "Corrected claim (frequency 7)", "4": "Corrected claim: modifier",
    "197": "Retro authorization obtained", "50": "Appeal with medical records",
    "97": "Appeal: separately identifiable service", "27": "Coverage verified",
}


# --- reference data ----------------------------------------------------------------------------

def _npi(base: int) -> str:
    """A 10-digit NPI with a valid Luhn check digit (prefix 80840, as CMS specifies)."""
    digits = f"80840{base:09d}"
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return f"{base:09d}{(10 - total % 10) % 10}"


@dataclass(frozen=True)
class _Practice:
    practice_id: str  # billing TIN
    name: str
    specialty: str
    premium_portal: bool
    submit_lag: float  # mean days from visit to first 837
    reject_rate: float  # first-pass 277CA rejections
    denial_factor: float  # × payer denial rate (documentation quality, prior-auth heavy services)
    share: float  # share of the practices' own (non-employer) patients' claims
    visits_per_patient: float
    charge_factor: float  # chargemaster level
    clinicians: int
    age: tuple[float, float, float, float]  # own patients: mean, sd, min, max age


PRACTICES = (
    _Practice("364812907", "Riverbend Family Medicine", "family medicine", False, 2.0, 0.03, 0.90, 0.30, 3.0,
              1.00, 9, (47, 20, 0, 95)),
    _Practice("364830115", "Summit Orthopedic Associates", "orthopedics", True, 3.0, 0.06, 1.00, 0.17, 2.5,
              1.05, 6, (54, 17, 12, 92)),
    _Practice("311974256", "Heartland Cardiology Group", "cardiology", False, 3.5, 0.04, 0.90, 0.15, 3.0,
              1.00, 5, (67, 12, 25, 96)),
    _Practice("310558412", "Little Oaks Pediatrics", "pediatrics", False, 2.5, 0.05, 0.80, 0.17, 3.0,
              0.95, 6, (7, 5, 0, 18)),
    _Practice("364771038", "Clearview Dermatology", "dermatology", False, 4.5, 0.07, 0.85, 0.12, 2.0,
              1.00, 4, (52, 18, 10, 95)),
    _Practice("271409863", "Harbor Behavioral Health", "behavioral health", False, 5.0, 0.08, 1.00, 0.09, 6.0,
              1.00, 7, (35, 14, 8, 85)),
)
N_PRACTICES = len(PRACTICES)
_FM, _ORTHO, _CARDIO, _PEDS, _DERM, _BH = range(N_PRACTICES)


@dataclass(frozen=True)
class _Payer:
    payer_id: str
    name: str
    payer_type: str
    lag_median: float  # days from 277CA acceptance to the 835 payment date
    lag_sigma: float  # lognormal spread
    denial_rate: float  # initial denial rate before the practice factor
    allowed_ratio: float  # professional fee schedule ÷ billed charge
    method: str  # BPR04
    filing: str  # CLP06 claim filing indicator
    carc_mix: tuple[float, ...]  # over DENIAL_CARCS
    full_pay: float  # share of patient balances paid in full (supplemental coverage raises it)
    copays: tuple[int, int, int]  # non-member cost share: PCP, specialist, ER copay (dollars)
    deductible: int
    coinsurance: float
    ded_base: float  # chance a January claim falls in the deductible


PAYERS = (
    _Payer("MEDICARE", "Medicare Part B (CGS Administrators)", "medicare", 14, 0.20, 0.045, 0.65, "ACH", "MB",
           (0.30, 0.20, 0.22, 0.00, 0.10, 0.04, 0.06, 0.08), 0.95, (0, 0, 0), 257, 0.20, 0.5),
    _Payer("MEDICAID", "Ohio Department of Medicaid", "medicaid", 32, 0.30, 0.09, 0.50, "ACH", "MC",
           (0.34, 0.10, 0.10, 0.12, 0.06, 0.06, 0.16, 0.06), 0.60, (0, 0, 0), 0, 0.0, 0.0),
    _Payer("BCBS", "Anthem Blue Cross Blue Shield", "commercial", 17, 0.30, 0.055, 0.72, "ACH", "BL",
           (0.28, 0.16, 0.14, 0.14, 0.07, 0.03, 0.10, 0.08), 0.82, (25, 50, 250), 1000, 0.20, 0.45),
    _Payer("AETNA", "Aetna", "commercial", 21, 0.35, 0.065, 0.74, "ACH", "CI",
           (0.28, 0.16, 0.14, 0.14, 0.07, 0.03, 0.10, 0.08), 0.82, (25, 50, 250), 1000, 0.20, 0.45),
    _Payer("UHC", "UnitedHealthcare", "commercial", 25, 0.35, 0.08, 0.70, "ACH", "CI",
           (0.26, 0.18, 0.16, 0.15, 0.06, 0.03, 0.09, 0.07), 0.82, (30, 60, 300), 1500, 0.20, 0.45),
    _Payer("CIGNA", "Cigna Healthcare", "commercial", 20, 0.30, 0.06, 0.75, "ACH", "CI",
           (0.28, 0.16, 0.14, 0.14, 0.07, 0.03, 0.10, 0.08), 0.82, (25, 50, 250), 1000, 0.20, 0.45),
    _Payer("HUMANA", "Humana Medicare Advantage", "medicare", 23, 0.35, 0.10, 0.62, "ACH", "16",
           (0.22, 0.12, 0.20, 0.28, 0.06, 0.02, 0.04, 0.06), 0.85, (10, 40, 90), 0, 0.20, 0.0),
    _Payer("WORKCOMP", "Ohio Workers' Compensation Fund", "commercial", 30, 0.45, 0.08, 0.80, "CHK", "WC",
           (0.30, 0.10, 0.25, 0.20, 0.05, 0.05, 0.00, 0.05), 1.0, (0, 0, 0), 0, 0.0, 0.0),
)
N_PAYERS = len(PAYERS)
_MCR, _MCD, _BCBS, _AETNA, _UHC, _CIGNA, _HUM, _WC = range(N_PAYERS)
_NONMEMBER_PLAN = ("MEDICARE-PARTB", "MEDICAID-OH", "BCBS-COMMERCIAL", "AETNA-COMMERCIAL", "UHC-COMMERCIAL",
                   "CIGNA-COMMERCIAL", "HUMANA-MA", "WORKCOMP-OH")
_PAYER_EIN = ("1310000001", "1316000042", "1350001311", "1060863470", "1411289245", "1060303370",
              "1610647538", "1316401245")  # TRN03: '1' + payer TIN (illustrative)

# Own (non-employer) patients under 65 by practice: MEDICAID, BCBS, AETNA, UHC, CIGNA, WORKCOMP.
_UNDER65_PAYERS = np.array([
    [0.22, 0.26, 0.18, 0.18, 0.16, 0.00],
    [0.10, 0.24, 0.17, 0.19, 0.16, 0.14],
    [0.12, 0.28, 0.20, 0.22, 0.18, 0.00],
    [0.45, 0.20, 0.12, 0.12, 0.11, 0.00],
    [0.10, 0.30, 0.20, 0.20, 0.20, 0.00],
    [0.34, 0.22, 0.15, 0.16, 0.13, 0.00],
])
_UNDER65_PAYER_IDS = np.array([_MCD, _BCBS, _AETNA, _UHC, _CIGNA, _WC])


@dataclass(frozen=True)
class _Employer:
    employer_id: str
    name: str
    industry: str
    state: str
    share: float  # of subscribers
    male_share: float
    turnover: float  # annual share of subscribers who leave
    growth: float  # annual net headcount growth


EMPLOYERS = (
    _Employer("GRP1001", "Great Lakes Precision Manufacturing", "manufacturing", "OH", 0.34, 0.68, 0.16,
              0.02),
    _Employer("GRP1002", "Miami Valley School District", "education", "OH", 0.24, 0.30, 0.12, 0.00),
    _Employer("GRP1003", "Tri-State Freight Logistics", "transportation", "KY", 0.18, 0.76, 0.18, 0.04),
    _Employer("GRP1004", "Northgate Software", "technology", "OH", 0.14, 0.58, 0.15, 0.08),
    _Employer("GRP1005", "Hometown Grocers Cooperative", "retail", "OH", 0.10, 0.45, 0.18, -0.02),
)


@dataclass(frozen=True)
class _Plan:
    plan_id: str
    employer: int
    name: str
    payer: int
    plan_type: str
    share: float  # within the employer
    copays: tuple[int, int, int]  # PCP, specialist, ER (dollars; 0 = deductible/coinsurance applies)
    deductible: int
    coinsurance: float
    oop_claim_cap: int  # cap on one claim's patient share (stands in for the out-of-pocket maximum)
    rx_copays: tuple[int, int, int]  # generic, preferred brand, non-preferred
    ded_base: float  # chance a January claim falls in the deductible


PLANS = (
    _Plan("GRP1001-PPO", 0, "Great Lakes PPO 1000", _BCBS, "PPO", 0.62, (25, 50, 250), 1000, 0.20, 3500,
          (10, 35, 60), 0.45),
    _Plan("GRP1001-HDHP", 0, "Great Lakes HDHP 3200", _BCBS, "HDHP", 0.38, (0, 0, 0), 3200, 0.20, 4500,
          (10, 35, 60), 0.80),
    _Plan("GRP1002-PPO", 1, "MVSD PPO 500", _AETNA, "PPO", 0.55, (20, 40, 200), 500, 0.10, 2500,
          (10, 30, 50), 0.45),
    _Plan("GRP1002-HMO", 1, "MVSD HMO", _AETNA, "HMO", 0.30, (15, 35, 150), 0, 0.10, 2000, (5, 25, 45), 0.0),
    _Plan("GRP1002-HDHP", 1, "MVSD HDHP 3000", _AETNA, "HDHP", 0.15, (0, 0, 0), 3000, 0.20, 4000,
          (10, 30, 50), 0.80),
    _Plan("GRP1003-PPO", 2, "Tri-State PPO 1500", _UHC, "PPO", 1.00, (30, 60, 300), 1500, 0.20, 4000,
          (10, 40, 70), 0.45),
    _Plan("GRP1004-PPO", 3, "Northgate PPO 750", _CIGNA, "PPO", 0.50, (20, 40, 200), 750, 0.10, 3000,
          (10, 30, 50), 0.50),
    _Plan("GRP1004-HDHP", 3, "Northgate HDHP 2000", _CIGNA, "HDHP", 0.50, (0, 0, 0), 2000, 0.10, 3500,
          (10, 30, 50), 0.80),
    _Plan("GRP1005-PPO", 4, "Hometown PPO 2500", _UHC, "PPO", 0.70, (35, 70, 350), 2500, 0.30, 5000,
          (15, 45, 75), 0.50),
    _Plan("GRP1005-HDHP", 4, "Hometown HDHP 4000", _UHC, "HDHP", 0.30, (0, 0, 0), 4000, 0.30, 5500,
          (15, 45, 75), 0.80),
)
COVERAGE_TIERS = (("EMP", "Employee only"), ("ESP", "Employee + spouse"), ("ECH", "Employee + child(ren)"),
                  ("FAM", "Family"))
_TIER_BY_AGE = np.array([[0.62, 0.16, 0.08, 0.14], [0.34, 0.17, 0.15, 0.34], [0.44, 0.34, 0.07, 0.15]])


@dataclass(frozen=True)
class _Provider:
    tin: str
    name: str
    kind: str  # practice | professional | hospital | lab | dme
    clinicians: int


_OUTSIDE = (
    _Provider("310537486", "St. Elizabeth Regional Medical Center", "hospital", 40),
    _Provider("314379427", "Miami Valley University Hospital", "hospital", 60),
    _Provider("310833936", "Riverside Children's Hospital", "hospital", 30),
    _Provider("954301111", "Tri-State Reference Laboratory", "lab", 3),
    _Provider("208574102", "Buckeye Diagnostic Labs", "lab", 2),
    _Provider("462118890", "HomeCare Medical Supply", "dme", 1),
    _Provider("311600237", "Emergency Physicians of Southwest Ohio", "professional", 25),
    _Provider("311288450", "Regional Radiology Associates", "professional", 14),
    _Provider("473120914", "Hospitalist Partners of Ohio", "professional", 18),
    _Provider("311470022", "Women's Health Specialists", "professional", 8),
    _Provider("311562218", "Gem City Eye Care", "professional", 5),
    _Provider("311793405", "Valley ENT & Allergy", "professional", 4),
    _Provider("311846670", "Digestive Health Associates", "professional", 6),
    _Provider("320448121", "Regional Kidney Care Dialysis", "hospital", 4),
)
PROVIDERS = tuple(_Provider(p.practice_id, p.name, "practice", p.clinicians) for p in PRACTICES) + _OUTSIDE
_HOSP_A, _HOSP_B, _CHILDRENS, _LAB_A, _LAB_B, _DME, _ER_GROUP, _RADIOLOGY, _HOSPITALIST = range(6, 15)
_OTHER_OFFICE = np.arange(15, 19)
_DIALYSIS = 19
# not contracted with the members' carriers: their claims are out of network (in_network_flag false)
_OUT_OF_NETWORK = np.array([_LAB_B, 16, 17])  # Buckeye Diagnostic Labs, Gem City Eye Care, Valley ENT & Allergy
_PROVIDER_TIN = np.array([p.tin for p in PROVIDERS], dtype=object)
_PROVIDER_NPI = np.array([_npi(100_000_000 + 104_729 * i) for i in range(len(PROVIDERS))], dtype=object)
_NPI_OFFSET = np.cumsum([0] + [p.clinicians for p in PROVIDERS])
_CLINICIAN_NPI = np.array([_npi(200_000_000 + 7_919 * i) for i in range(int(_NPI_OFFSET[-1]))], dtype=object)
_PROVIDER_CLINICIANS = np.array([p.clinicians for p in PROVIDERS])
_KIND_RATIO = {"practice": 1.0, "professional": 1.0, "hospital": 0.72, "lab": 0.55, "dme": 0.9}
# ^ allowed ÷ charge relative to the payer's professional fee schedule: hospital and lab chargemasters
#   sit far above what payers allow.
_PROVIDER_RATIO = np.array([_KIND_RATIO[p.kind] for p in PROVIDERS])
_PROVIDER_CHARGE = np.array([p.charge_factor for p in PRACTICES] + [1.0] * len(_OUTSIDE))

# --- code catalog ------------------------------------------------------------------------------
# key, revenue code, HCPCS, charge ($ per unit), units low/high, flags: E = visit line (takes the
# copay), P = preventive (no cost share, ACA), S = procedure (modifier 25 on the E/M), X = laterality.

_CATALOG_ROWS = (
    ("99202", None, "99202", 180, 1, 1, "E"), ("99203", None, "99203", 260, 1, 1, "E"),
    ("99204", None, "99204", 390, 1, 1, "E"), ("99212", None, "99212", 120, 1, 1, "E"),
    ("99213", None, "99213", 175, 1, 1, "E"), ("99214", None, "99214", 260, 1, 1, "E"),
    ("99215", None, "99215", 360, 1, 1, "E"),
    ("99385", None, "99385", 270, 1, 1, "EP"), ("99386", None, "99386", 290, 1, 1, "EP"),
    ("99391", None, "99391", 210, 1, 1, "EP"), ("99392", None, "99392", 225, 1, 1, "EP"),
    ("99393", None, "99393", 225, 1, 1, "EP"), ("99394", None, "99394", 240, 1, 1, "EP"),
    ("99395", None, "99395", 260, 1, 1, "EP"), ("99396", None, "99396", 280, 1, 1, "EP"),
    ("36415", None, "36415", 25, 1, 1, ""), ("81002", None, "81002", 20, 1, 1, ""),
    ("83036", None, "83036", 55, 1, 1, ""), ("80061", None, "80061", 70, 1, 1, "P"),
    ("87880", None, "87880", 45, 1, 1, ""), ("87804", None, "87804", 50, 1, 1, ""),
    ("93000", None, "93000", 95, 1, 1, "S"), ("90471", None, "90471", 45, 1, 1, "P"),
    ("90460", None, "90460", 40, 1, 3, "P"), ("90686", None, "90686", 45, 1, 1, "P"),
    ("90700", None, "90700", 65, 1, 1, "P"), ("90707", None, "90707", 110, 1, 1, "P"),
    ("90716", None, "90716", 170, 1, 1, "P"), ("90744", None, "90744", 60, 1, 1, "P"),
    ("90670", None, "90670", 270, 1, 1, "P"), ("96127", None, "96127", 25, 1, 2, ""),
    ("99406", None, "99406", 40, 1, 1, ""), ("69210", None, "69210", 110, 1, 1, "S"),
    ("94640", None, "94640", 65, 1, 2, "S"),
    ("73562", None, "73562", 120, 1, 1, "X"), ("73030", None, "73030", 110, 1, 1, "X"),
    ("72100", None, "72100", 130, 1, 1, ""), ("73610", None, "73610", 105, 1, 1, "X"),
    ("73110", None, "73110", 100, 1, 1, "X"), ("20610", None, "20610", 260, 1, 1, "SX"),
    ("J3301", None, "J3301", 6, 4, 8, ""), ("29125", None, "29125", 150, 1, 1, "SX"),
    ("97110", None, "97110", 95, 2, 4, ""),
    ("29881", None, "29881", 2200, 1, 1, "SX"), ("29827", None, "29827", 3100, 1, 1, "SX"),
    ("64721", None, "64721", 1100, 1, 1, "SX"), ("26055", None, "26055", 800, 1, 1, "SX"),
    ("93306", None, "93306", 1100, 1, 1, ""), ("93350", None, "93350", 950, 1, 1, ""),
    ("93015", None, "93015", 420, 1, 1, ""), ("93224", None, "93224", 380, 1, 1, ""),
    ("93880", None, "93880", 640, 1, 1, ""), ("93288", None, "93288", 100, 1, 1, ""),
    ("93458", None, "93458", 1400, 1, 1, "S"), ("33208", None, "33208", 1900, 1, 1, "S"),
    ("11102", None, "11102", 190, 1, 1, "S"), ("11103", None, "11103", 95, 1, 3, ""),
    ("17000", None, "17000", 130, 1, 1, "S"), ("17003", None, "17003", 20, 2, 10, ""),
    ("17110", None, "17110", 160, 1, 1, "S"), ("11300", None, "11300", 210, 1, 1, "S"),
    ("96372", None, "96372", 45, 1, 1, ""), ("11402", None, "11402", 420, 1, 1, "S"),
    ("90791", None, "90791", 320, 1, 1, "E"), ("90832", None, "90832", 130, 1, 1, "E"),
    ("90834", None, "90834", 185, 1, 1, "E"), ("90837", None, "90837", 250, 1, 1, "E"),
    ("90833", None, "90833", 120, 1, 1, ""),
    ("92004", None, "92004", 230, 1, 1, "E"), ("92015", None, "92015", 60, 1, 1, ""),
    ("76856", None, "76856", 380, 1, 1, ""), ("31231", None, "31231", 450, 1, 1, "S"),
    ("45378", None, "45378", 1400, 1, 1, "S"),
    # lab (independent lab, POS 81)
    ("80053", None, "80053", 60, 1, 1, ""), ("85025", None, "85025", 40, 1, 1, ""),
    ("84443", None, "84443", 90, 1, 1, ""), ("88305", None, "88305", 190, 1, 2, ""),
    ("87491", None, "87491", 150, 1, 1, ""), ("87086", None, "87086", 60, 1, 1, ""),
    ("82306", None, "82306", 160, 1, 1, ""), ("84153", None, "84153", 110, 1, 1, ""),
    ("81001", None, "81001", 25, 1, 1, ""),
    # DME (POS 12)
    ("E0601", None, "E0601", 1800, 1, 1, ""), ("E0114", None, "E0114", 90, 1, 1, ""),
    ("L3809", None, "L3809", 120, 1, 1, ""), ("L1833", None, "L1833", 650, 1, 1, ""),
    ("K0001", None, "K0001", 700, 1, 1, ""), ("E1390", None, "E1390", 450, 1, 1, ""),
    # professional services in facilities
    ("71046-26", None, "71046", 60, 1, 1, ""), ("74177-26", None, "74177", 420, 1, 1, ""),
    ("70553-26", None, "70553", 560, 1, 1, ""), ("73721-26", None, "73721", 450, 1, 1, ""),
    ("77067-26", None, "77067", 150, 1, 1, ""), ("76700-26", None, "76700", 210, 1, 1, ""),
    ("99283", None, "99283", 260, 1, 1, "E"), ("99284", None, "99284", 450, 1, 1, "E"),
    ("99285", None, "99285", 680, 1, 1, "E"), ("12001", None, "12001", 350, 1, 1, "S"),
    ("93010", None, "93010", 40, 1, 1, ""),
    ("99223", None, "99223", 420, 1, 1, ""), ("99232", None, "99232", 180, 1, 1, ""),
    ("99239", None, "99239", 230, 1, 1, ""),
    # institutional lines: revenue code | HCPCS
    ("0320|71046", "0320", "71046", 420, 1, 1, ""), ("0350|74177", "0350", "74177", 3600, 1, 1, ""),
    ("0610|73721", "0610", "73721", 3100, 1, 1, ""), ("0402|76700", "0402", "76700", 980, 1, 1, ""),
    ("0401|77067", "0401", "77067", 520, 1, 1, "P"), ("0420|97110", "0420", "97110", 180, 2, 4, ""),
    ("0360|29881", "0360", "29881", 14500, 1, 1, ""), ("0360|47562", "0360", "47562", 24000, 1, 1, ""),
    ("0750|45378", "0750", "45378", 4200, 1, 1, "P"), ("0370|", "0370", None, 1800, 1, 1, ""),
    ("0710|", "0710", None, 1200, 1, 1, ""), ("0250|", "0250", None, 300, 1, 1, ""),
    ("0272|", "0272", None, 650, 1, 1, ""), ("0300|80053", "0300", "80053", 320, 1, 1, ""),
    ("0301|85025", "0301", "85025", 180, 1, 1, ""), ("0636|J2250", "0636", "J2250", 60, 1, 2, ""),
    ("0450|99283", "0450", "99283", 1400, 1, 1, "E"), ("0450|99284", "0450", "99284", 2600, 1, 1, "E"),
    ("0450|99285", "0450", "99285", 4200, 1, 1, "E"), ("0350|70450", "0350", "70450", 3800, 1, 1, ""),
    ("0636|J1885", "0636", "J1885", 90, 1, 1, ""), ("0730|93005", "0730", "93005", 450, 1, 1, ""),
    # inpatient room, ancillaries and high-cost services (charges per day/unit; rescaled to the payment)
    ("0120|", "0120", None, 3400, 1, 1, ""), ("0171|", "0171", None, 1900, 1, 1, ""),
    ("0174|", "0174", None, 9800, 1, 1, ""), ("0200|", "0200", None, 7800, 1, 1, ""),
    ("0250|ip", "0250", None, 700, 1, 1, ""), ("0300|ip", "0300", None, 850, 1, 1, ""),
    ("0270|", "0270", None, 450, 1, 1, ""), ("0320|ip", "0320", None, 1800, 1, 1, ""),
    ("0360|ip", "0360", None, 16000, 1, 1, ""), ("0370|ip", "0370", None, 4200, 1, 1, ""),
    ("0710|ip", "0710", None, 2600, 1, 1, ""), ("0720|", "0720", None, 5200, 1, 1, ""),
    ("0450|ip", "0450", "99285", 3200, 1, 1, ""), ("0812|", "0812", None, 95000, 1, 1, ""),
    ("0335|96413", "0335", "96413", 1100, 1, 1, ""), ("0636|J9271", "0636", "J9271", 95, 200, 200, ""),
    ("0636|J9035", "0636", "J9035", 260, 40, 60, ""), ("0636|J9312", "0636", "J9312", 190, 60, 80, ""),
    ("0821|90999", "0821", "90999", 1150, 12, 13, ""), ("0636|J0882", "0636", "J0882", 55, 20, 60, ""),
    ("0260|96365", "0260", "96365", 650, 1, 1, ""), ("0636|J1745", "0636", "J1745", 240, 40, 60, ""),
    ("0636|J1569", "0636", "J1569", 190, 100, 140, ""), ("0943|93798", "0943", "93798", 260, 1, 1, ""),
    ("0510|99214", "0510", "99214", 480, 1, 1, ""),
)
_KEY = {row[0]: i for i, row in enumerate(_CATALOG_ROWS)}
_CAT_REV = np.array([r[1] for r in _CATALOG_ROWS], dtype=object)
_CAT_HCPCS = np.array([r[2] for r in _CATALOG_ROWS], dtype=object)
_CAT_CHARGE = np.array([r[3] * 100 for r in _CATALOG_ROWS], dtype=np.int64)
_CAT_ULO = np.array([r[4] for r in _CATALOG_ROWS])
_CAT_UHI = np.array([r[5] for r in _CATALOG_ROWS])
_CAT_VISIT = np.array(["E" in r[6] for r in _CATALOG_ROWS])
_CAT_PREVENTIVE = np.array(["P" in r[6] for r in _CATALOG_ROWS])
_CAT_PROCEDURE = np.array(["S" in r[6] for r in _CATALOG_ROWS])
_CAT_SIDE = np.array(["X" in r[6] for r in _CATALOG_ROWS])
_CAT_PC = np.array([r[0].endswith("-26") for r in _CATALOG_ROWS])


@dataclass(frozen=True)
class _Template:
    """A kind of claim: its form (professional/institutional, POS or bill type), the main service line
    and add-on lines with their probabilities, and the diagnosis pool."""

    name: str
    institutional: bool
    pos: str | None
    bill_type: str | None
    main: tuple[tuple[str, float], ...]
    addons: tuple[tuple[str, float], ...]
    dx: tuple[str, ...]
    copay: int = 0  # 0 none, 1 PCP, 2 specialist, 3 ER


_FM_DX = ("I10", "E11.9", "E78.5", "J06.9", "M54.50", "F41.1", "E66.9", "K21.9", "J02.9", "R05.9", "N39.0")
_T = _Template
TEMPLATES = (
    _T("fm_sick", False, "11", None, (("99212", .12), ("99213", .48), ("99214", .33), ("99215", .07)),
       (("36415", .22), ("81002", .08), ("87880", .06), ("87804", .04), ("93000", .05), ("83036", .08),
        ("96127", .06), ("99406", .02), ("69210", .02), ("90471", .08), ("90686", .08)), _FM_DX, 1),
    _T("fm_preventive", False, "11", None, (("99395", .35), ("99396", .45), ("99385", .10), ("99386", .10)),
       (("36415", .5), ("80061", .25), ("83036", .15), ("90471", .3), ("90686", .25), ("96127", .3)),
       ("Z00.00", "Z00.01", "Z13.220", "Z23"), 1),
    _T("peds_well", False, "11", None, (("99391", .25), ("99392", .30), ("99393", .20), ("99394", .25)),
       (("90460", .7), ("90700", .25), ("90707", .15), ("90716", .12), ("90744", .15), ("90670", .18),
        ("90686", .25), ("96127", .3)), ("Z00.121", "Z00.129", "Z23"), 1),
    _T("peds_sick", False, "11", None, (("99212", .25), ("99213", .55), ("99214", .18), ("99215", .02)),
       (("87880", .2), ("87804", .1), ("81002", .05), ("94640", .04)),
       ("J06.9", "J02.0", "H66.90", "J45.909", "R50.9", "L20.9", "B34.9", "K59.00"), 1),
    _T("ortho_visit", False, "11", None, (("99203", .15), ("99213", .40), ("99214", .37), ("99215", .08)),
       (("73562", .22), ("73030", .12), ("72100", .10), ("73610", .06), ("73110", .06), ("20610", .16),
        ("J3301", .14), ("29125", .03), ("97110", .05)),
       ("M17.11", "M17.12", "M25.561", "M75.101", "M54.16", "S83.241A", "M79.641", "S93.401A", "M65.331"), 2),
    _T("ortho_surgery", False, "24", None, (("29881", .5), ("29827", .2), ("64721", .2), ("26055", .1)), (),
       ("M23.221", "M75.121", "G56.01", "M65.331"), 0),
    _T("cardio_visit", False, "11", None, (("99203", .08), ("99213", .30), ("99214", .45), ("99215", .17)),
       (("93000", .45), ("93306", .12), ("93015", .06), ("93224", .05), ("93880", .04), ("93288", .05),
        ("36415", .10)), ("I25.10", "I48.91", "I50.22", "R07.9", "I10", "I35.0", "R00.2", "I47.1"), 2),
    _T("cardio_procedure", False, "22", None, (("93458", .6), ("93350", .25), ("33208", .15)), (),
       ("I25.10", "I20.9", "I49.5", "R94.39"), 0),
    _T("derm_visit", False, "11", None, (("99203", .12), ("99212", .15), ("99213", .45), ("99214", .28)),
       (("11102", .22), ("11103", .06), ("17000", .20), ("17003", .10), ("17110", .06), ("11300", .05),
        ("96372", .03), ("11402", .03)),
       ("L57.0", "D48.5", "L82.1", "L70.0", "C44.319", "L40.0", "B07.9", "L30.9", "D22.5"), 2),
    _T("bh_therapy", False, "11", None, (("90791", .12), ("90832", .12), ("90834", .34), ("90837", .42)),
       (("96127", .15),), ("F32.1", "F33.1", "F41.1", "F43.10", "F90.0", "F43.23", "F31.81", "F41.0"), 1),
    _T("bh_telehealth", False, "10", None, (("90791", .08), ("90832", .12), ("90834", .38), ("90837", .42)),
       (), ("F32.1", "F33.1", "F41.1", "F43.10", "F43.23"), 1),
    _T("bh_psychiatry", False, "11", None, (("99213", .4), ("99214", .6)), (("90833", .5),),
       ("F32.1", "F33.1", "F31.81", "F90.0", "F41.1"), 2),
    _T("other_office", False, "11", None, (("99203", .10), ("99204", .06), ("99213", .44), ("99214", .34),
                                           ("92004", .06)),
       (("92015", .05), ("81002", .06), ("36415", .08), ("76856", .05), ("31231", .03), ("45378", .03)),
       ("N95.1", "H52.13", "J32.9", "K21.9", "N40.0", "G43.909", "Z01.419", "M81.0"), 2),
    _T("lab", False, "81", None, (("80053", .30), ("85025", .20), ("80061", .15), ("83036", .10),
                                  ("84443", .10), ("88305", .05), ("87491", .05), ("87086", .05)),
       (("85025", .3), ("80061", .2), ("84443", .15), ("82306", .1), ("84153", .06), ("81001", .15)),
       ("Z00.00", "E11.9", "E78.5", "I10", "R73.03", "E03.9", "Z11.3", "N39.0"), 0),
    _T("dme", False, "12", None, (("E0601", .15), ("E0114", .20), ("L3809", .25), ("L1833", .20),
                                  ("K0001", .08), ("E1390", .12)), (),
       ("G47.33", "S82.101A", "S62.101A", "M17.11", "J44.9", "R26.89"), 0),
    _T("radiology_pro", False, "22", None, (("71046-26", .35), ("74177-26", .15), ("70553-26", .10),
                                            ("73721-26", .15), ("77067-26", .15), ("76700-26", .10)), (),
       ("R07.9", "R10.9", "M25.561", "R51.9", "Z12.31", "R19.00"), 0),
    _T("op_imaging", True, None, "131", (("0320|71046", .30), ("0350|74177", .20), ("0610|73721", .14),
                                         ("0402|76700", .14), ("0401|77067", .16), ("0420|97110", .06)),
       (("0300|80053", .15), ("0250|", .10), ("0636|J2250", .04)),
       ("R10.9", "M23.221", "R91.1", "M17.11", "Z12.31", "R07.9"), 0),
    _T("op_surgery", True, None, "131", (("0360|29881", .35), ("0360|47562", .25), ("0750|45378", .40)),
       (("0370|", .9), ("0710|", .9), ("0250|", .8), ("0272|", .7), ("0301|85025", .4)),
       ("M23.221", "K80.20", "Z12.11", "K63.5"), 0),
    _T("er_facility", True, None, "131", (("0450|99283", .40), ("0450|99284", .42), ("0450|99285", .18)),
       (("0300|80053", .6), ("0301|85025", .5), ("0320|71046", .3), ("0350|70450", .25), ("0250|", .5),
        ("0636|J1885", .2), ("0730|93005", .25)),
       ("R07.9", "S61.412A", "R10.9", "J18.9", "N39.0", "R55", "S06.0X0A", "T78.40XA"), 3),
    _T("er_pro", False, "23", None, (("99283", .40), ("99284", .42), ("99285", .18)),
       (("12001", .08), ("93010", .20)),
       ("R07.9", "S61.412A", "R10.9", "J18.9", "N39.0", "R55", "S06.0X0A", "T78.40XA"), 0),
    _T("ip_pro", False, "21", None, (("99223", 1.0),), (("99232", 1.0), ("99239", .95)), (), 0),
)
_TPL = {t.name: i for i, t in enumerate(TEMPLATES)}

# Templates by practice with weights (what each practice bills).
_PRACTICE_TEMPLATES = (
    (("fm_sick", .82), ("fm_preventive", .18)),
    (("ortho_visit", .90), ("ortho_surgery", .10)),
    (("cardio_visit", .86), ("cardio_procedure", .14)),
    (("peds_well", .40), ("peds_sick", .60)),
    (("derm_visit", 1.0),),
    (("bh_therapy", .72), ("bh_telehealth", .18), ("bh_psychiatry", .10)),
)

# Member visits at the demo practices by age band (<18, 18–39, 40+): FM, ortho, cardio, peds, derm, BH.
_PRACTICE_BY_AGE = np.array([
    [0.00, 0.04, 0.00, 0.82, 0.06, 0.08],
    [0.50, 0.14, 0.04, 0.00, 0.14, 0.18],
    [0.44, 0.17, 0.18, 0.00, 0.11, 0.10],
])

# Member claim kinds by age band (<18, 18–49, 50+).
_KINDS = ("practice", "other_office", "lab", "op", "er", "ip", "dme", "radiology")
_KIND_BY_AGE = np.array([
    [0.52, 0.14, 0.12, 0.06, 0.06, 0.012, 0.008, 0.08],
    [0.35, 0.16, 0.22, 0.09, 0.04, 0.018, 0.012, 0.11],
    [0.35, 0.15, 0.23, 0.10, 0.03, 0.024, 0.016, 0.10],
])

# Inpatient DRGs: code, mean stay, commercial allowed ($), surgical, ICD-10-PCS, principal dx, weight by
# group (child, woman 18–49, man 18–49, 50+).
_DRGS = (
    ("775", 2, 9500, False, None, "O80", (0, .30, 0, 0)),
    ("788", 3, 14500, True, "10D00Z1", "O82", (0, .14, 0, 0)),
    ("470", 2, 28000, True, "0SRD0JZ", "M17.11", (0, .03, .06, .20)),
    ("392", 3, 8200, False, None, "K52.9", (.15, .10, .16, .10)),
    ("871", 5, 19000, False, None, "A41.9", (.06, .06, .10, .14)),
    ("291", 4, 14000, False, None, "I50.23", (0, .02, .05, .14)),
    ("247", 2, 27000, True, "027034Z", "I25.110", (0, .01, .07, .10)),
    ("885", 7, 12500, False, None, "F20.9", (.10, .08, .12, .03)),
    ("343", 2, 17000, True, "0DTJ4ZZ", "K35.80", (.30, .08, .14, .04)),
    ("195", 3, 9000, False, None, "J18.9", (.24, .06, .10, .12)),
    ("603", 4, 9500, False, None, "L03.115", (.15, .06, .10, .05)),
    ("795", 2, 2600, False, None, "Z38.00", (0, 0, 0, 0)),
)
_DRG_W = np.array([d[6] for d in _DRGS], dtype=float).T
_DRG_W = _DRG_W / _DRG_W.sum(axis=1, keepdims=True)
_NEWBORN_DRG = len(_DRGS) - 1

# High-cost conditions: name, principal dx, median paid over the window ($), lognormal sigma, claim
# intensity (relative number of condition claims), scales with covered time.
_HCC = (
    ("nicu", "P07.14", 80_000, 0.60, 1.5, False),
    ("oncology", "C50.911", 80_000, 0.70, 8.0, True),
    ("dialysis", "N18.6", 62_000, 0.45, 10.0, True),
    ("transplant", "Z94.0", 240_000, 0.45, 4.0, False),
    ("cardiac", "I21.4", 58_000, 0.50, 3.0, False),
    ("specialty", "K50.90", 30_000, 0.55, 4.0, True),
)
_HCC_NICU, _HCC_ONC, _HCC_DIAL, _HCC_TX, _HCC_CARD, _HCC_SPEC = range(len(_HCC))
_HCC_ADULT_P = np.array([0, .36, .13, .06, .20, .25])
_HCC_CHILD_P = np.array([0, .55, 0, .05, 0, .40])

# Pharmacy: name, NDC (illustrative, 11-digit), tier (0 generic, 1 preferred brand, 2 non-preferred,
# 3 specialty), allowed per fill ($), days supply, quantity, weight by group (child, adult, 50+), acute.
_DRUGS = (
    ("atorvastatin 20 mg", "00093505698", 0, 14, 30, 30, (0, 1.0, 3.0), False),
    ("lisinopril 10 mg", "68180051301", 0, 9, 30, 30, (0, 1.0, 3.0), False),
    ("metformin 500 mg", "00093104801", 0, 11, 30, 60, (0, 1.2, 2.5), False),
    ("amlodipine 5 mg", "00093716798", 0, 10, 30, 30, (0, .6, 2.2), False),
    ("levothyroxine 50 mcg", "00378180001", 0, 16, 30, 30, (.1, 1.0, 1.8), False),
    ("sertraline 50 mg", "16714061201", 0, 12, 30, 30, (.4, 2.0, 1.2), False),
    ("escitalopram 10 mg", "00093585001", 0, 13, 30, 30, (.3, 1.6, 1.0), False),
    ("omeprazole 20 mg", "62175013643", 0, 15, 30, 30, (.1, 1.2, 1.8), False),
    ("montelukast 10 mg", "00093742656", 0, 18, 30, 30, (1.5, .6, .5), False),
    ("methylphenidate ER 36 mg", "00591271601", 1, 190, 30, 30, (1.0, .3, 0), False),
    ("albuterol HFA", "00173068220", 1, 62, 25, 1, (1.4, .5, .5), False),
    ("fluticasone nasal", "60505083101", 0, 19, 30, 1, (.8, .6, .4), False),
    ("apixaban 5 mg", "00003089421", 1, 560, 30, 60, (0, .07, .9), False),
    ("empagliflozin 10 mg", "00597015230", 1, 590, 30, 30, (0, .16, .7), False),
    ("semaglutide 1 mg pen", "00169413013", 2, 980, 28, 1, (0, .4, .65), False),
    ("budesonide/formoterol", "00186037020", 1, 320, 30, 1, (.15, .4, .55), False),
    ("insulin glargine pen", "00088502105", 1, 410, 30, 5, (.06, .2, .4), False),
    ("amoxicillin 500 mg", "65862001501", 0, 8, 10, 30, (1.0, .4, .3), True),
    ("azithromycin 250 mg", "00093714919", 0, 12, 5, 6, (.5, .4, .3), True),
    ("prednisone 20 mg", "00054001820", 0, 7, 5, 10, (.3, .4, .4), True),
    ("cephalexin 500 mg", "00093314701", 0, 11, 7, 28, (.4, .3, .3), True),
    ("ondansetron 4 mg", "00781523701", 0, 9, 5, 10, (.4, .3, .2), True),
    ("adalimumab pen 40 mg", "00074055402", 3, 7200, 28, 2, (.02, .1, .1), False),
    ("ustekinumab 90 mg", "57894006103", 3, 26500, 56, 1, (0, .05, .05), False),
    ("emicizumab 150 mg", "50242092001", 3, 31000, 28, 1, (.02, .01, 0), False),
    ("bictegravir/FTC/TAF", "61958250101", 3, 4300, 30, 30, (0, .05, .03), False),
)
_DRUG_W = np.array([d[6] for d in _DRUGS], dtype=float)
_DRUG_TIER = np.array([d[2] for d in _DRUGS])
_DRUG_COST = np.array([d[3] * 100 for d in _DRUGS], dtype=np.int64)
_DRUG_DAYS = np.array([d[4] for d in _DRUGS])
_DRUG_QTY = np.array([d[5] for d in _DRUGS], dtype=float)
_DRUG_NDC = np.array([d[1] for d in _DRUGS], dtype=object)
_DRUG_ACUTE = np.array([d[7] for d in _DRUGS])
_SPECIALTY = np.flatnonzero(_DRUG_TIER == 3)
_PHARMACY_NPI = np.array([_npi(300_000_000 + 6_007 * i) for i in range(12)], dtype=object)

# Names and places (fictional people; real Dayton-area towns and ZIP codes; 555 phone numbers).
_FIRST_M = ("James", "Michael", "Robert", "John", "David", "William", "Richard", "Joseph", "Thomas", "Daniel",
            "Matthew", "Anthony", "Mark", "Steven", "Andrew", "Joshua", "Kevin", "Brian", "Ryan", "Jacob",
            "Nicholas", "Tyler", "Brandon", "Aaron", "Justin", "Ethan", "Noah", "Liam", "Logan", "Mason",
            "Elijah", "Carlos", "Luis", "Jamal", "Andre", "Wei", "Raj", "Omar", "Samuel", "Caleb")
_FIRST_F = ("Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah",
            "Karen", "Lisa", "Nancy", "Sandra", "Ashley", "Emily", "Michelle", "Amanda", "Melissa",
            "Stephanie", "Rebecca", "Laura", "Megan", "Hannah", "Olivia", "Emma", "Ava", "Sophia", "Isabella",
            "Mia", "Harper", "Abigail", "Maria", "Ana", "Keisha", "Aaliyah", "Mei", "Priya", "Fatima",
            "Grace", "Chloe")
_LAST = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Garcia", "Rodriguez", "Wilson",
         "Martinez", "Anderson", "Taylor", "Thomas", "Hernandez", "Moore", "Martin", "Jackson", "Thompson",
         "White", "Lopez", "Lee", "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen", "King",
         "Wright", "Scott", "Hill", "Green", "Adams", "Baker", "Nelson", "Carter", "Mitchell", "Roberts",
         "Turner", "Phillips", "Campbell", "Parker", "Evans", "Edwards", "Collins", "Stewart", "Morris",
         "Murphy", "Cook", "Rogers", "Morgan", "Cooper", "Peterson", "Reed", "Bailey", "Bell", "Kelly",
         "Howard", "Ward", "Cox", "Richardson", "Wood", "Watson", "Brooks", "Bennett", "Gray", "Hughes",
         "Price", "Sanders", "Patel", "Nguyen", "Kim", "Schneider", "Fischer", "Weber", "Hoffman", "Meyer")
_STREETS = ("Main St", "Oak Ave", "Maple Dr", "Far Hills Ave", "Wilmington Pike", "Shroyer Rd", "Salem Ave",
            "Brown St", "Patterson Rd", "Dorothy Ln", "Stroop Rd", "Woodman Dr", "Smithville Rd",
            "Linden Ave", "Lakeview Dr", "Ridgeway Rd", "Cedar Ln", "Elm St", "Hawthorne Ct",
            "Meadowbrook Dr")
_CITIES = (  # city, state, ZIP codes, area code, weight
    ("Dayton", "OH", ("45402", "45405", "45406", "45409", "45410", "45414", "45419", "45420", "45424"), "937",
     .30),
    ("Kettering", "OH", ("45409", "45419", "45420", "45429"), "937", .14),
    ("Beavercreek", "OH", ("45431", "45432", "45434", "45440"), "937", .12),
    ("Centerville", "OH", ("45458", "45459"), "937", .10),
    ("Springfield", "OH", ("45503", "45504", "45505", "45506"), "937", .09),
    ("Troy", "OH", ("45373",), "937", .07),
    ("Xenia", "OH", ("45385",), "937", .06),
    ("Cincinnati", "OH", ("45202", "45211", "45231", "45242"), "513", .08),
    ("Covington", "KY", ("41011", "41014", "41015", "41017"), "859", .04),
)
_CITY_ZIP_COUNT = np.array([len(c[2]) for c in _CITIES])
_CITY_ZIPS = np.array([list(c[2]) + [None] * (max(_CITY_ZIP_COUNT) - len(c[2])) for c in _CITIES],
                      dtype=object)
_RACES = (("white", .72), ("black or african american", .15), ("asian", .04), ("other race", .03),
          ("american indian or alaska native", .005), ("native hawaiian or other pacific islander", .005),
          ("unknown", .05))
_ETHNICITIES = (("not hispanic or latino", .90), ("hispanic or latino", .05), ("unknown", .05))


# --- small vector helpers ----------------------------------------------------------------------

def _obj(values) -> np.ndarray:
    return np.array(values, dtype=object)


def _choice(rng: np.random.Generator, weights, n: int) -> np.ndarray:
    p = np.asarray(weights, dtype=float)
    return rng.choice(len(p), n, p=p / p.sum())


def _pick_rows(rng: np.random.Generator, table: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One categorical draw per row, from the probability row ``table[rows[i]]``."""
    cum = np.cumsum(table / table.sum(axis=1, keepdims=True), axis=1)
    cum[:, -1] = 1.0
    u = rng.random(len(rows))
    return (u[:, None] >= cum[rows]).sum(axis=1)


def _weekday(days: np.ndarray) -> np.ndarray:
    return (days + 3) % 7  # 0 = Monday (1970-01-01 was a Thursday)


def _next_business_day(days: np.ndarray) -> np.ndarray:
    wd = _weekday(days)
    return days + np.where(wd == 5, 2, np.where(wd == 6, 1, 0))


def _month_end(days: np.ndarray) -> np.ndarray:
    m = days.astype("datetime64[D]").astype("datetime64[M]")
    return ((m + 1).astype("datetime64[D]") - _EPOCH).astype(np.int64) - 1


def _month_start(days: np.ndarray) -> np.ndarray:
    m = days.astype("datetime64[D]").astype("datetime64[M]")
    return (m.astype("datetime64[D]") - _EPOCH).astype(np.int64)


def _dates(days: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    out = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    if valid is not None:
        out = np.where(valid, out, np.datetime64("NaT"))
    return out


def _money(cents: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    out = np.asarray(cents, dtype=np.int64) / 100.0
    if valid is not None:
        out = np.where(valid, out, np.nan)
    return out


def _ids(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    text = np.char.zfill(np.asarray(numbers, dtype=np.int64).astype(str), width)
    return np.char.add(prefix, text).astype(object)


def _ymd(days: np.ndarray) -> np.ndarray:
    return np.char.replace(np.datetime_as_string(np.asarray(days).astype("datetime64[D]")), "-", "")


def _group_starts(ci: np.ndarray, n: int) -> np.ndarray:
    return np.searchsorted(ci, np.arange(n))


def _exclusive_cumsum(values: np.ndarray, ci: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Running total within each claim (lines sorted by claim), excluding the current line."""
    cum = np.cumsum(values) - values
    return cum - cum[starts][ci]


def _age_years(birth: np.ndarray, on: np.ndarray) -> np.ndarray:
    return (on - birth) / 365.25


# --- people --------------------------------------------------------------------------------------

@dataclass
class _People:
    """Everyone who can have a claim in one batch: employer members first, then practices' own patients."""

    person_id: np.ndarray
    member_id: np.ndarray
    first: np.ndarray
    last: np.ndarray
    birth: np.ndarray
    male: np.ndarray
    payer: np.ndarray
    plan: np.ndarray  # index into PLANS; -1 for a practice's own patient
    risk: np.ndarray
    cov: np.ndarray  # (n, 4) coverage inside the window: start1, end1, start2, end2 (start2 = -1: none)
    last_end: np.ndarray  # end of the last enrollment span (D_OPEN when active)
    hcc: np.ndarray  # high-cost condition index, -1 none
    hcc_target: np.ndarray  # condition spend over the window, cents

    @property
    def n(self) -> int:
        return len(self.person_id)

    @staticmethod
    def concat(a: _People, b: _People) -> _People:
        return _People(**{k: np.concatenate([getattr(a, k), getattr(b, k)]) for k in a.__dataclass_fields__})


def _names(rng: np.random.Generator, male: np.ndarray) -> np.ndarray:
    m = _obj(_FIRST_M)[rng.integers(0, len(_FIRST_M), len(male))]
    f = _obj(_FIRST_F)[rng.integers(0, len(_FIRST_F), len(male))]
    return np.where(male, m, f)


def _age_factor(age: np.ndarray, male: np.ndarray) -> np.ndarray:
    """Relative medical utilisation by age and sex (commercial population)."""
    f = np.select(
        [age < 1, age < 5, age < 18, age < 30, age < 45, age < 55, age < 65],
        [2.4, 1.2, 0.6, 0.9, 1.0, 1.3, 1.8], 2.3,
    )
    return f * np.where(male & (age >= 18) & (age < 50), 0.65, 1.0)


def _members(rng: np.random.Generator, n_sub: int, sub_offset: int,
             person_offset: int) -> tuple[_People, pd.DataFrame, pd.DataFrame]:
    """Subscribers and dependents of one batch, their eligibility spans and coverage tiers."""
    emp = _choice(rng, [e.share for e in EMPLOYERS], n_sub)
    sub_age = np.clip(rng.normal(43, 11, n_sub), 21, 66)  # at DEMO_AS_OF
    tier = _pick_rows(rng, _TIER_BY_AGE, np.digitize(sub_age, [30, 50]))
    plan_table = np.array([[p.share if p.employer == e else 0.0 for p in PLANS]
                           for e in range(len(EMPLOYERS))])
    plan = _pick_rows(rng, plan_table, emp)
    male_sub = rng.random(n_sub) < np.array([e.male_share for e in EMPLOYERS])[emp]

    turnover = np.array([e.turnover for e in EMPLOYERS])[emp]
    hazard = 1 - (1 - turnover) ** (1 / 12)  # monthly chance to leave
    hires = hazard + np.array([e.growth for e in EMPLOYERS])[emp] / 12  # monthly hires per head
    initial = rng.random(n_sub) < 1 / (1 + (N_MONTHS - 1) * hires)  # enrolled before the window
    hire_m = rng.integers(1, N_MONTHS, n_sub)
    tenure = np.minimum(rng.exponential(6.5, n_sub), sub_age - 20.5) * 365.25
    # coverage with this carrier began on the plan's effective date, however long the person has worked there
    orig = np.maximum(_month_start(D0 - tenure.astype(np.int64)), _day(PLAN_EFFECTIVE))
    start1 = np.where(initial, orig, MONTH_START[hire_m])
    ref = np.where(initial, 0, hire_m)
    term_m = ref + rng.geometric(hazard) - 1
    end1 = np.where(term_m < N_MONTHS, MONTH_END[np.minimum(term_m, N_MONTHS - 1)], D_OPEN)
    back_m = term_m + 1 + rng.integers(1, 7, n_sub)
    reinstated = (term_m < N_MONTHS) & (back_m < N_MONTHS) & (rng.random(n_sub) < REINSTATE_RATE)
    start2 = np.where(reinstated, MONTH_START[np.minimum(back_m, N_MONTHS - 1)], -1)
    term2 = back_m + rng.geometric(hazard) - 1
    end2 = np.where(term2 < N_MONTHS, MONTH_END[np.minimum(term2, N_MONTHS - 1)], D_OPEN)
    end2 = np.where(reinstated, end2, -1)

    # families
    spouse = np.isin(tier, (1, 3))
    kids = np.where(np.isin(tier, (2, 3)), 1 + _choice(rng, [.42, .38, .15, .05], n_sub), 0)
    size = 1 + spouse + kids
    fam = np.repeat(np.arange(n_sub), size)
    n = len(fam)
    pos = np.arange(n) - (np.cumsum(size) - size)[fam]
    role = np.where(pos == 0, 0, np.where((pos == 1) & spouse[fam], 1, 2))
    p_age = sub_age[fam]
    age = np.where(role == 0, p_age, np.where(
        role == 1, np.clip(p_age + rng.normal(-1, 4, n), 19, 75),
        rng.uniform(0, 1, n) * np.clip(p_age - 19, 1, 27.5)))
    birth = DA - np.round(age * 365.25).astype(np.int64) - rng.integers(0, 30, n)
    birth = np.minimum(birth, DA)
    male = np.where(role == 0, male_sub[fam], np.where(role == 1, ~male_sub[fam] ^ (rng.random(n) < .04),
                                                        rng.random(n) < .51))
    age_out = np.where(role == 2, _month_end(birth + 9497), D_OPEN)  # end of the month they turn 26
    spans = []
    for st_sub, en_sub in ((start1, end1), (start2, end2)):
        st = np.maximum(st_sub[fam], birth)
        en = np.minimum(en_sub[fam], age_out)
        ok = (st_sub[fam] >= 0) & (st <= en) & (st <= DA) & (en >= D0)
        spans.append((st, en, ok))
    keep = spans[0][2] | spans[1][2]
    idx = np.flatnonzero(keep)
    fam, pos, role, birth, male = fam[idx], pos[idx], role[idx], birth[idx], male[idx]
    spans = [(st[idx], en[idx], ok[idx]) for st, en, ok in spans]
    n = len(idx)

    person_id = _ids("M", person_offset + np.arange(n), 9)
    subscriber_id = _ids("W", sub_offset + fam, 8)
    # the subscriber's member id is the subscriber id; dependents add a two-digit suffix
    suffixed = np.char.add(subscriber_id.astype(str), np.char.zfill((pos + 1).astype(str), 2)).astype(object)
    member_id = np.where(pos == 0, subscriber_id, suffixed)
    fam_last = _obj(_LAST)[rng.integers(0, len(_LAST), n_sub)]
    own_last = _obj(_LAST)[rng.integers(0, len(_LAST), n)]
    last = np.where((role == 1) & (rng.random(n) < .12), own_last, fam_last[fam])
    first = _names(rng, male)

    # coverage inside the window, for claim dates
    cov = np.full((n, 4), -1, dtype=np.int64)
    (st1, en1, ok1), (st2, en2, ok2) = spans
    a1, b1 = np.maximum(st1, D0), np.minimum(en1, DA)
    a2, b2 = np.maximum(st2, D0), np.minimum(en2, DA)
    only2 = ~ok1
    cov[:, 0] = np.where(only2, a2, a1)
    cov[:, 1] = np.where(only2, b2, b1)
    both = ok1 & ok2
    cov[:, 2] = np.where(both, a2, -1)
    cov[:, 3] = np.where(both, b2, -1)
    last_end = np.where(ok2, en2, en1)

    age_now = _age_years(birth, DA)
    risk = _age_factor(age_now, male) * rng.lognormal(-0.245, 0.7, n)
    days_cov = (cov[:, 1] - cov[:, 0] + 1) + np.where(cov[:, 2] >= 0, cov[:, 3] - cov[:, 2] + 1, 0)
    hcc, target = _assign_hcc(rng, birth, age_now, risk, days_cov)
    risk = np.where(hcc >= 0, risk * 3.0, risk)

    plan_of = plan[fam]
    payer = np.array([p.payer for p in PLANS])[plan_of]
    people = _People(person_id, member_id, first, last, birth, male, payer, plan_of, risk, cov, last_end, hcc,
                     target)

    # eligibility rows (one per span) and coverage tiers
    city = _choice(rng, [c[4] for c in _CITIES], n_sub)
    zips = _CITY_ZIPS[city, (rng.random(n_sub) * _CITY_ZIP_COUNT[city]).astype(np.int64)]
    street = (rng.integers(100, 9900, n_sub).astype(str).astype(object) + " "
              + _obj(_STREETS)[rng.integers(0, len(_STREETS), n_sub)])
    phone = (_obj([f"({_CITIES[i][3]}) 555-" for i in city])
             + np.char.zfill(rng.integers(0, 10_000, n_sub).astype(str), 4).astype(object))
    race = _obj([r for r, _ in _RACES])[_choice(rng, [w for _, w in _RACES], n_sub)]
    ethnicity = _obj([e for e, _ in _ETHNICITIES])[_choice(rng, [w for _, w in _ETHNICITIES], n_sub)]
    handle = np.char.add(np.char.add(np.char.lower(first.astype(str)), "."), np.char.lower(last.astype(str)))
    email = np.where(role <= 1, np.char.add(np.char.add(handle, (person_offset + np.arange(n)).astype(str)),
                                            "@example.com").astype(object), None)
    rel = _obj(["self", "spouse", "child"])[role]
    rows = []
    tiers = []
    for st, en, ok in spans:
        k = np.flatnonzero(ok)
        e = emp[fam[k]]
        rows.append(pd.DataFrame({
            "person_id": person_id[k], "member_id": member_id[k], "subscriber_id": subscriber_id[k],
            "gender": np.where(male[k], "male", "female"), "race": race[fam[k]],
            "birth_date": _dates(birth[k]),
            "death_flag": np.zeros(len(k), dtype=bool),
            "enrollment_start_date": _dates(st[k]), "enrollment_end_date": _dates(en[k]),
            "payer": _obj([PAYERS[p].payer_id for p in range(N_PAYERS)])[payer[k]],
            "payer_type": "commercial", "plan": _obj([p.plan_id for p in PLANS])[plan_of[k]],
            "group_id": _obj([x.employer_id for x in EMPLOYERS])[e],
            "group_name": _obj([x.name for x in EMPLOYERS])[e],
            "first_name": first[k], "last_name": last[k], "subscriber_relation": rel[k],
            "address": street[fam[k]], "city": _obj([c[0] for c in _CITIES])[city[fam[k]]],
            "state": _obj([c[1] for c in _CITIES])[city[fam[k]]], "zip_code": zips[fam[k]],
            "phone": phone[fam[k]], "email": email[k], "ethnicity": ethnicity[fam[k]],
            "data_source": DATA_SOURCE, "file_name": "demo_eligibility",
            "file_date": _dates(np.full(len(k), DA)),
        }))
        tiers.append(pd.DataFrame({
            "person_id": person_id[k], "member_id": member_id[k], "enrollment_start_date": _dates(st[k]),
            "tier_code": _obj([t for t, _ in COVERAGE_TIERS])[tier[fam[k]]],
        }))
    return people, pd.concat(rows, ignore_index=True), pd.concat(tiers, ignore_index=True)


def _assign_hcc(rng: np.random.Generator, birth: np.ndarray, age: np.ndarray, risk: np.ndarray,
                days_cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pick ~1% of members as high-cost claimants and their condition and spend over the window."""
    n = len(birth)
    hcc = np.full(n, -1)
    target = np.zeros(n, dtype=np.int64)
    k = int(round(n * HCC_MEMBER_RATE))
    if k == 0:
        return hcc, target
    newborn = birth >= D0
    w = days_cov * np.clip(risk, 0.2, 5) * np.where(newborn, 4.0, 1.0) * np.where(age >= 45, 1.8, 1.0)
    chosen = rng.choice(n, k, replace=False, p=w / w.sum())
    cond = np.where(age[chosen] < 18, _choice(rng, _HCC_CHILD_P, k), _choice(rng, _HCC_ADULT_P, k))
    cond = np.where(newborn[chosen], _HCC_NICU, cond)
    median = np.array([h[2] for h in _HCC])[cond]
    sigma = np.array([h[3] for h in _HCC])[cond]
    scale = np.where(np.array([h[5] for h in _HCC])[cond], np.clip(days_cov[chosen] / 365, 0.5, 2.0), 1.0)
    dollars = np.clip(median * rng.lognormal(0, sigma) * scale, 52_000, 900_000)
    catastrophic = rng.random(k) < HCC_CATASTROPHIC_SHARE
    dollars = np.where(catastrophic, rng.uniform(1_050_000, 2_400_000, k), dollars)
    hcc[chosen] = cond
    target[chosen] = np.round(dollars * 100).astype(np.int64)
    return hcc, target


def _patients(rng: np.random.Generator, per_practice: np.ndarray,
              person_offset: int) -> tuple[_People, np.ndarray]:
    """The practices' own patients (Medicare, Medicaid, other commercial); returns them and their practice."""
    visits = np.array([p.visits_per_patient for p in PRACTICES])
    counts = np.maximum(1, np.round(per_practice / visits)).astype(int)
    counts = np.where(per_practice > 0, counts, 0)
    practice = np.repeat(np.arange(N_PRACTICES), counts)
    n = len(practice)
    mean, sd, lo, hi = (np.array([p.age[i] for p in PRACTICES])[practice] for i in range(4))
    age = np.clip(rng.normal(mean, sd), lo, hi)
    age = np.where(practice == _PEDS, rng.uniform(0, 18, n), age)
    male = rng.random(n) < np.where(practice == _CARDIO, .56, .46)
    birth = DA - np.round(age * 365.25).astype(np.int64) - rng.integers(0, 365, n)
    under = _UNDER65_PAYER_IDS[_pick_rows(rng, _UNDER65_PAYERS, practice)]
    senior = np.where(rng.random(n) < .68, _MCR, _HUM)
    age_mid = _age_years(birth, (D0 + DA) // 2)
    payer = np.where(age_mid >= 65, senior, under)
    prefix = _obj(["1EG", "OHM", "XBC", "W", "U", "CG", "H", "WC"])[payer]
    member_id = prefix + np.char.zfill(rng.integers(0, 10**9, n).astype(str), 9).astype(object)
    people = _People(
        person_id=_ids("N", person_offset + np.arange(n), 9), member_id=member_id, first=_names(rng, male),
        last=_obj(_LAST)[rng.integers(0, len(_LAST), n)], birth=birth, male=male, payer=payer,
        plan=np.full(n, -1), risk=rng.lognormal(-0.245, 0.7, n),
        cov=np.column_stack([np.full(n, D0), np.full(n, DA), np.full(n, -1), np.full(n, -1)]
                            ).astype(np.int64),
        last_end=np.full(n, D_OPEN), hcc=np.full(n, -1), hcc_target=np.zeros(n, dtype=np.int64),
    )
    return people, practice


# --- claims --------------------------------------------------------------------------------------

_CLAIM_DEFAULTS = {
    "person": -1, "dos": -1, "end": -1, "provider": -1, "inst": False, "pos": None, "bill": None, "drg": None,
    "admit": -1, "discharge": -1, "pcs": None, "dx1": None, "dx2": None, "dx3": None, "copay_kind": 0,
    "runout": False, "allowed_target": -1, "hcc": False, "telehealth": False, "rendering": -1,
}
_LINE_DEFAULTS = {"ci": -1, "key": -1, "units": 1}


class _Claims:
    """Accumulates claim blocks (claim-level arrays) and their service lines, then concatenates them."""

    def __init__(self) -> None:
        self.blocks: list[dict] = []
        self.line_blocks: list[dict] = []
        self.n = 0

    def append(self, claims: dict, lines: dict) -> None:
        size = len(claims["person"])
        if size == 0:
            return
        self.blocks.append(claims)
        lines = dict(lines)
        lines["ci"] = lines["ci"] + self.n
        self.line_blocks.append(lines)
        self.n += size

    def add_template(self, rng: np.random.Generator, tpl_name: str, person: np.ndarray, dos: np.ndarray,
                     provider: np.ndarray, **extra) -> None:
        tpl = TEMPLATES[_TPL[tpl_name]]
        n = len(person)
        if n == 0:
            return
        main_keys = np.array([_KEY[k] for k, _ in tpl.main])
        main = main_keys[_choice(rng, [w for _, w in tpl.main], n)]
        if tpl.addons:
            add_keys = np.array([_KEY[k] for k, _ in tpl.addons])
            inc = rng.random((n, len(tpl.addons))) < np.array([p for _, p in tpl.addons])
            mat = np.column_stack([np.ones(n, dtype=bool), inc])
            ci, col = np.nonzero(mat)
            key = np.where(col == 0, main[ci], add_keys[np.maximum(col - 1, 0)])
        else:
            ci, key = np.arange(n), main
        # up to three distinct diagnoses from the template's pool (callers may pass their own dx1)
        dx = _obj(tpl.dx + (None,))
        size = max(len(tpl.dx), 1)
        d1 = rng.integers(0, size, n)
        d2 = (d1 + 1 + rng.integers(0, max(size - 1, 1), n)) % size
        d3 = (d2 + 1 + rng.integers(0, max(size - 1, 1), n)) % size
        if len(tpl.dx) < 3:
            d2 = d3 = np.full(n, len(tpl.dx))
        claims = {
            "person": person, "dos": dos, "end": dos, "provider": provider,
            "inst": np.full(n, tpl.institutional),
            "pos": np.full(n, tpl.pos, dtype=object), "bill": np.full(n, tpl.bill_type, dtype=object),
            "dx1": dx[d1], "dx2": np.where(rng.random(n) < .5, dx[d2], None),
            "dx3": np.where(rng.random(n) < .2, dx[d3], None),
            "copay_kind": np.full(n, tpl.copay), "telehealth": np.full(n, tpl.pos == "10"),
        }
        claims["dx3"] = np.where(claims["dx2"] == None, None, claims["dx3"])  # noqa: E711
        claims.update(extra)
        units = rng.integers(_CAT_ULO[key], _CAT_UHI[key] + 1)
        self.append(claims, {"ci": ci, "key": key, "units": units})

    def finish(self) -> tuple[dict, dict]:
        claims = {}
        for name, default in _CLAIM_DEFAULTS.items():
            parts = []
            for b in self.blocks:
                size = len(b["person"])
                value = b.get(name)
                if value is None:
                    value = np.full(size, default, dtype=object if default is None else None)
                parts.append(np.asarray(value))
            claims[name] = np.concatenate(parts) if parts else np.array([])
        claims["end"] = np.where(claims["end"] < 0, claims["dos"], claims["end"]).astype(np.int64)
        lines = {name: np.concatenate([np.asarray(b[name]) for b in self.line_blocks])
                 for name in _LINE_DEFAULTS}
        order = np.argsort(lines["ci"], kind="stable")
        lines = {k: v[order] for k, v in lines.items()}
        return claims, lines


def _member_dates(rng: np.random.Generator, ppl: _People, person: np.ndarray) -> np.ndarray:
    """A uniform date inside each person's coverage within the window."""
    c = ppl.cov[person]
    len1 = c[:, 1] - c[:, 0] + 1
    len2 = np.where(c[:, 2] >= 0, c[:, 3] - c[:, 2] + 1, 0)
    u = np.floor(rng.random(len(person)) * (len1 + len2)).astype(np.int64)
    return np.where(u < len1, c[:, 0] + u, c[:, 2] + u - len1)


def _to_weekday(days: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Office services happen on weekdays: move weekend dates to Friday (or Monday at a coverage start)."""
    wd = _weekday(days)
    back = days - np.where(wd == 5, 1, np.where(wd == 6, 2, 0))
    fwd = days + np.where(wd == 5, 2, np.where(wd == 6, 1, 0))
    return np.where(back >= lo, back, np.where(fwd <= hi, fwd, days))


def _inpatient(rng: np.random.Generator, out: _Claims, person: np.ndarray, dos: np.ndarray, drg: np.ndarray,
               provider: np.ndarray, *, allowed: np.ndarray, professional: bool = True) -> None:
    """Inpatient stays (bill type 111, DRG, room and ancillary revenue lines) priced at ``allowed`` (cents),
    and the hospitalist's professional claim."""
    n = len(person)
    if n == 0:
        return
    los = np.maximum(1 + rng.poisson(np.array([d[1] for d in _DRGS])[drg] - 1), 1)
    admit = np.maximum(np.minimum(dos, DA - los), D0)
    discharge = np.minimum(admit + los, DA)
    los = np.maximum(discharge - admit, 1)
    surgical = np.array([d[3] for d in _DRGS])[drg]
    newborn = drg == _NEWBORN_DRG
    delivery = np.isin(drg, (0, 1))
    room = np.where(newborn, _KEY["0171|"], _KEY["0120|"])
    icu = (~newborn) & (rng.random(n) < .1)
    candidates = [
        (room, np.ones(n, bool), los), (np.full(n, _KEY["0200|"]), icu, np.minimum(los, 2)),
        (np.full(n, _KEY["0250|ip"]), np.ones(n, bool), los),
        (np.full(n, _KEY["0300|ip"]), np.ones(n, bool), los), (np.full(n, _KEY["0270|"]), ~newborn, los),
        (np.full(n, _KEY["0320|ip"]), rng.random(n) < .5, 1),
        (np.full(n, _KEY["0360|ip"]), surgical, 1), (np.full(n, _KEY["0370|ip"]), surgical, 1),
        (np.full(n, _KEY["0710|ip"]), surgical, 1), (np.full(n, _KEY["0720|"]), delivery, 1),
        (np.full(n, _KEY["0450|ip"]), (~surgical) & (~newborn) & (rng.random(n) < .45), 1),
    ]
    keys = np.column_stack([c[0] for c in candidates])
    mask = np.column_stack([c[1] for c in candidates])
    units = np.column_stack([np.broadcast_to(c[2], (n,)) for c in candidates])
    ci, col = np.nonzero(mask)
    dx_pool = np.array([d[5] for d in _DRGS], dtype=object)[drg]
    claims = {
        "person": person, "dos": admit, "end": discharge, "provider": provider, "inst": np.ones(n, bool),
        "bill": np.full(n, "111", dtype=object), "drg": np.array([d[0] for d in _DRGS], dtype=object)[drg],
        "admit": admit, "discharge": discharge, "pcs": np.array([d[4] for d in _DRGS], dtype=object)[drg],
        "dx1": dx_pool, "allowed_target": np.round(allowed).astype(np.int64),
    }
    out.append(claims, {"ci": ci, "key": keys[ci, col], "units": units[ci, col]})
    if professional:
        before = out.n
        out.add_template(rng, "ip_pro", person, admit, np.full(n, _HOSPITALIST), end=discharge, dx1=dx_pool)
        # the daily-visit line bills one unit per day after the admission day
        last = out.line_blocks[-1]
        if out.n > before:
            is_daily = last["key"] == _KEY["99232"]
            last["units"] = np.where(is_daily, np.maximum(los[last["ci"] - before] - 1, 1), last["units"])


def _member_claims(rng: np.random.Generator, ppl: _People, n_claims: int, out: _Claims) -> None:
    """Exactly ``n_claims`` medical claims of employer members: visits, labs, hospital care, run-out, HCC."""
    members = np.flatnonzero(ppl.plan >= 0)
    days_cov = (ppl.cov[members, 1] - ppl.cov[members, 0] + 1) + np.where(
        ppl.cov[members, 2] >= 0, ppl.cov[members, 3] - ppl.cov[members, 2] + 1, 0)
    termed = members[(ppl.last_end[members] < DA - 14)]
    n_runout = int(round(n_claims * RUNOUT_SHARE)) if len(termed) else 0
    hcc_members = members[ppl.hcc[members] >= 0]
    n_hcc = min(max(int(round(n_claims * HCC_CLAIM_SHARE)), 2 * len(hcc_members)), n_claims // 4) \
        if len(hcc_members) else 0
    n_regular = n_claims - n_runout - n_hcc

    w = ppl.risk[members] * days_cov
    person = members[rng.choice(len(members), n_regular, p=w / w.sum())]
    dos = _member_dates(rng, ppl, person)
    if n_runout:
        wr = ppl.risk[termed]
        rp = termed[rng.choice(len(termed), n_runout, p=wr / wr.sum())]
        rd = np.minimum(ppl.last_end[rp] + rng.integers(1, 61, n_runout), DA)
        person = np.concatenate([person, rp])
        dos = np.concatenate([dos, rd])
    runout = np.arange(len(person)) >= n_regular
    age = _age_years(ppl.birth[person], dos)
    band = np.digitize(age, [18, 50])
    kind = _pick_rows(rng, _KIND_BY_AGE, band)
    lo = np.where(runout, dos, ppl.cov[person, 0])
    hi = np.where(runout, DA, np.maximum(ppl.cov[person, 1], ppl.cov[person, 3]))
    child = age < 18

    def sel(k: str) -> np.ndarray:
        return np.flatnonzero(kind == _KINDS.index(k))

    # visits at the demo practices
    i = sel("practice")
    prac = _pick_rows(rng, _PRACTICE_BY_AGE, np.digitize(age[i], [18, 40]))
    _practice_visits(rng, out, person[i], _to_weekday(dos[i], lo[i], hi[i]), prac, runout=runout[i])
    i = sel("other_office")
    out.add_template(rng, "other_office", person[i], _to_weekday(dos[i], lo[i], hi[i]),
                     _OTHER_OFFICE[rng.integers(0, len(_OTHER_OFFICE), len(i))], runout=runout[i])
    i = sel("lab")
    out.add_template(rng, "lab", person[i], _to_weekday(dos[i], lo[i], hi[i]),
                     np.where(rng.random(len(i)) < .6, _LAB_A, _LAB_B), runout=runout[i])
    i = sel("dme")
    out.add_template(rng, "dme", person[i], _to_weekday(dos[i], lo[i], hi[i]), np.full(len(i), _DME),
                     runout=runout[i])
    i = sel("radiology")
    out.add_template(rng, "radiology_pro", person[i], dos[i], np.full(len(i), _RADIOLOGY), runout=runout[i])
    hospital = np.where(child, _CHILDRENS, np.where(rng.random(len(person)) < .55, _HOSP_A, _HOSP_B))
    i = sel("op")
    surg = rng.random(len(i)) < .2
    for name, j in (("op_imaging", i[~surg]), ("op_surgery", i[surg])):
        out.add_template(rng, name, person[j], _to_weekday(dos[j], lo[j], hi[j]), hospital[j],
                         runout=runout[j])
    # ER visits: facility claim + ER physician claim on the same day (pairs of slots)
    i = sel("er")
    half = len(i) // 2
    fac = i[: len(i) - half]
    er_dx = _obj(TEMPLATES[_TPL["er_facility"]].dx)
    er_dx = er_dx[rng.integers(0, len(er_dx), len(fac))]
    out.add_template(rng, "er_facility", person[fac], dos[fac], hospital[fac], runout=runout[fac], dx1=er_dx)
    src = fac[:half]
    out.add_template(rng, "er_pro", person[src], dos[src], np.full(half, _ER_GROUP), runout=runout[src],
                     dx1=er_dx[:half])
    # inpatient stays: facility + hospitalist claim
    i = sel("ip")
    half = len(i) // 2
    fac = i[: len(i) - half]
    grp = np.where(age[fac] < 18, 0, np.where(age[fac] >= 50, 3, np.where(ppl.male[person[fac]], 2, 1)))
    drg = _pick_rows(rng, _DRG_W, grp)
    drg = np.where(age[fac] < 0.08, _NEWBORN_DRG, drg)
    with_pro = np.zeros(len(fac), dtype=bool)
    with_pro[:half] = True
    carrier = _carrier_rel(ppl.payer[person[fac]])
    allowed = np.array([d[2] for d in _DRGS])[drg] * 100 * rng.lognormal(0, 0.2, len(fac)) * carrier
    for flag in (True, False):
        j = with_pro == flag
        _inpatient(rng, out, person[fac[j]], dos[fac[j]], drg[j], hospital[fac[j]], allowed=allowed[j],
                   professional=flag)
    if n_hcc:
        _hcc_claims(rng, ppl, hcc_members, n_hcc, out)


def _carrier_rel(payer: np.ndarray) -> np.ndarray:
    return np.array([p.allowed_ratio for p in PAYERS])[payer] / PAYERS[_BCBS].allowed_ratio


def _practice_visits(rng: np.random.Generator, out: _Claims, person: np.ndarray, dos: np.ndarray,
                     practice: np.ndarray, **extra) -> None:
    """Claims billed by the demo practices, in each practice's own mix of visit kinds."""
    for p in range(N_PRACTICES):
        i = np.flatnonzero(practice == p)
        if len(i) == 0:
            continue
        options = _PRACTICE_TEMPLATES[p]
        pick = _choice(rng, [w for _, w in options], len(i))
        for t, (name, _) in enumerate(options):
            j = i[pick == t]
            clin = _NPI_OFFSET[p] + rng.integers(0, PRACTICES[p].clinicians, len(j))
            kw = {k: v[j] for k, v in extra.items()}
            out.add_template(rng, name, person[j], dos[j], np.full(len(j), p), rendering=clin, **kw)


def _hcc_claims(rng: np.random.Generator, ppl: _People, hcc_members: np.ndarray, n: int,
                out: _Claims) -> None:
    """Condition claims of high-cost claimants; their paid amounts add up to each member's target spend."""
    cond = ppl.hcc[hcc_members]
    intensity = np.array([h[4] for h in _HCC])[cond]
    counts = 1 + rng.multinomial(n - len(hcc_members), intensity / intensity.sum())
    person = np.repeat(hcc_members, counts)
    c = np.repeat(cond, counts)
    first = np.zeros(len(person), dtype=bool)
    first[np.cumsum(counts) - counts] = True
    share = rng.gamma(2.0, 1.0, len(person))
    acute = np.isin(c, (_HCC_NICU, _HCC_TX, _HCC_CARD))
    # acute conditions: the stay carries ~80% of the spend, follow-up care the rest
    share = np.where(acute & first, 0.0, share)
    grp_sum = np.bincount(np.repeat(np.arange(len(hcc_members)), counts), weights=share)
    grp = np.repeat(np.arange(len(hcc_members)), counts)
    n_follow = counts[grp] - 1
    frac = np.where(acute, np.where(first, np.where(n_follow > 0, 0.8, 1.0),
                                    0.2 * share / np.maximum(grp_sum[grp], 1e-9)),
                    share / np.maximum(grp_sum[grp], 1e-9))
    target = ppl.hcc_target[person] * frac
    dos = _member_dates(rng, ppl, person)
    dos = np.where((c == _HCC_NICU) & first, ppl.cov[person, 0], dos)  # NICU from birth
    dx = np.array([h[1] for h in _HCC], dtype=object)[c]
    big = acute & first
    # inpatient stays
    drg_code = np.where(c == _HCC_NICU, "790", np.where(c == _HCC_TX, "652", "216"))
    los = np.where(c == _HCC_NICU, rng.integers(18, 70, len(c)),
                   np.where(c == _HCC_TX, rng.integers(6, 20, len(c)), rng.integers(5, 12, len(c))))
    i = np.flatnonzero(big)
    if len(i):
        hosp = np.where(c[i] == _HCC_NICU, _CHILDRENS, _HOSP_B)
        _inpatient_special(out, person[i], dos[i], hosp, drg_code[i], los[i], target[i], dx[i],
                           organ=c[i] == _HCC_TX, nicu=c[i] == _HCC_NICU)
    # outpatient condition care
    o = np.flatnonzero(~big)
    if len(o):
        plans = {
            _HCC_NICU: (("0510|99214", 1.0), ("0300|80053", .5)),
            _HCC_ONC: (("0335|96413", 1.0), ("0636|J9271", .5), ("0636|J9035", .3), ("0636|J9312", .2),
                       ("0301|85025", .8)),
            _HCC_DIAL: (("0821|90999", 1.0), ("0636|J0882", .7)),
            _HCC_TX: (("0510|99214", 1.0), ("0300|80053", .9), ("0301|85025", .8)),
            _HCC_CARD: (("0943|93798", 1.0), ("0510|99214", .4)),
            _HCC_SPEC: (("0260|96365", 1.0), ("0636|J1745", .6), ("0636|J1569", .4)),
        }
        blocks_ci, blocks_key = [], []
        for code, spec in plans.items():
            j = np.flatnonzero(c[o] == code)
            if len(j) == 0:
                continue
            keys = np.array([_KEY[k] for k, _ in spec])
            mask = rng.random((len(j), len(spec))) < np.array([p for _, p in spec])
            mask[:, 0] = True
            ci, col = np.nonzero(mask)
            blocks_ci.append(j[ci])
            blocks_key.append(keys[col])
        ci = np.concatenate(blocks_ci)
        key = np.concatenate(blocks_key)
        units = rng.integers(_CAT_ULO[key], _CAT_UHI[key] + 1)
        co = c[o]
        prov = np.where(co == _HCC_DIAL, _DIALYSIS, np.where(co == _HCC_NICU, _CHILDRENS, _HOSP_B))
        dialysis = co == _HCC_DIAL
        claims = {
            "person": person[o], "dos": dos[o],
            "end": np.where(dialysis, np.minimum(dos[o] + 27, DA), dos[o]),  # monthly dialysis claim
            "provider": prov, "inst": np.ones(len(o), bool),
            "bill": np.where(dialysis, "721", "131").astype(object), "dx1": dx[o],
            "allowed_target": np.round(target[o]).astype(np.int64), "hcc": np.ones(len(o), bool),
        }
        out.append(claims, {"ci": ci, "key": key, "units": units})


def _inpatient_special(out: _Claims, person: np.ndarray, dos: np.ndarray,
                       provider: np.ndarray, drg_code: np.ndarray, los: np.ndarray, allowed: np.ndarray,
                       dx: np.ndarray, *, organ: np.ndarray, nicu: np.ndarray) -> None:
    """High-cost inpatient stays (NICU, transplant, cardiac surgery), priced to the condition's spend."""
    n = len(person)
    admit = np.maximum(np.minimum(dos, DA - los), D0)
    discharge = np.minimum(admit + los, DA)
    los = np.maximum(discharge - admit, 1)
    surgical = ~nicu
    room = np.where(nicu, _KEY["0174|"], _KEY["0120|"])
    candidates = [
        (room, np.ones(n, bool), los), (np.full(n, _KEY["0200|"]), surgical, np.maximum(los // 3, 1)),
        (np.full(n, _KEY["0250|ip"]), np.ones(n, bool), los),
        (np.full(n, _KEY["0300|ip"]), np.ones(n, bool), los),
        (np.full(n, _KEY["0270|"]), np.ones(n, bool), los),
        (np.full(n, _KEY["0320|ip"]), np.ones(n, bool), 2),
        (np.full(n, _KEY["0360|ip"]), surgical, 1), (np.full(n, _KEY["0370|ip"]), surgical, 1),
        (np.full(n, _KEY["0710|ip"]), surgical, 1), (np.full(n, _KEY["0812|"]), organ, 1),
    ]
    keys = np.column_stack([k for k, _, _ in candidates])
    mask = np.column_stack([m for _, m, _ in candidates])
    units = np.column_stack([np.broadcast_to(u, (n,)) for _, _, u in candidates])
    ci, col = np.nonzero(mask)
    pcs = np.where(drg_code == "652", "0TY00Z0", np.where(drg_code == "216", "02RF0JZ", None)).astype(object)
    out.append({
        "person": person, "dos": admit, "end": discharge, "provider": provider, "inst": np.ones(n, bool),
        "bill": np.full(n, "111", dtype=object), "drg": drg_code.astype(object), "admit": admit,
        "discharge": discharge, "pcs": pcs, "dx1": dx, "allowed_target": np.round(allowed).astype(np.int64),
        "hcc": np.ones(n, bool),
    }, {"ci": ci, "key": keys[ci, col], "units": units[ci, col]})


def _own_patient_claims(rng: np.random.Generator, ppl: _People, home: np.ndarray, per_practice: np.ndarray,
                        out: _Claims) -> None:
    """Claims of the practices' own patients (Medicare, Medicaid, other commercial)."""
    persons, dates, practices = [], [], []
    for p in range(N_PRACTICES):
        pool = np.flatnonzero(home == p)
        k = int(per_practice[p])
        if k == 0 or len(pool) == 0:
            continue
        w = ppl.risk[pool]
        persons.append(pool[rng.choice(len(pool), k, p=w / w.sum())])
        dates.append(rng.integers(D0, DA + 1, k))
        practices.append(np.full(k, p))
    if not persons:
        return
    person = np.concatenate(persons)
    dos = np.concatenate(dates)
    dos = _to_weekday(dos, np.full(len(dos), D0), np.full(len(dos), DA))
    _practice_visits(rng, out, person, dos, np.concatenate(practices))


# --- pricing and cost sharing ---------------------------------------------------------------------

@dataclass
class _Priced:
    charge: np.ndarray  # per line, cents
    allowed: np.ndarray
    deductible: np.ndarray
    coinsurance: np.ndarray
    copay: np.ndarray
    paid: np.ndarray
    starts: np.ndarray  # first line of each claim


def _price(rng: np.random.Generator, cl: dict, ln: dict, ppl: _People) -> _Priced:
    """Charges from the chargemasters; allowed from the payer's fee schedule (or DRG / condition price);
    patient share line by line: copay on the visit line, deductible across lines, then coinsurance."""
    n = len(cl["person"])
    ci, key = ln["ci"], ln["key"]
    starts = _group_starts(ci, n)
    person = cl["person"]
    payer = ppl.payer[person]
    plan = ppl.plan[person]
    provider = cl["provider"]
    units = ln["units"]
    base = _CAT_CHARGE[key] * units
    charge = np.round(base * _PROVIDER_CHARGE[provider][ci] / 100).astype(np.int64) * 100  # whole dollars
    target = cl["allowed_target"]
    priced = target >= 0
    charge_sum = np.bincount(ci, weights=charge, minlength=n)
    # hospital charges for DRG / condition-priced claims: 2.4–3.6 × what the payer allows
    markup = rng.uniform(2.4, 3.6, n)
    scale = np.where(priced, target * markup / np.maximum(charge_sum, 1), 1.0)
    rescaled = np.maximum(np.round(charge * scale[ci] / 100), 1).astype(np.int64) * 100
    charge = np.where(priced[ci], rescaled, charge)
    charge_sum = np.bincount(ci, weights=charge, minlength=n)
    payer_ratio = np.array([p.allowed_ratio for p in PAYERS])[payer]
    ratio = np.where(priced, target / np.maximum(charge_sum, 1),
                     payer_ratio * _PROVIDER_RATIO[provider] * rng.lognormal(0, 0.04, n))
    ratio = np.clip(ratio, 0.05, 0.97)
    allowed = np.minimum(np.floor(charge * ratio[ci] + 0.5).astype(np.int64), charge)

    # benefits per claim
    member = plan >= 0
    pl = np.where(member, plan, 0)
    plan_copays = np.array([p.copays for p in PLANS])[pl]
    payer_copays = np.array([p.copays for p in PAYERS])[payer]
    copays = np.where(member[:, None], plan_copays, payer_copays)
    kind = cl["copay_kind"].astype(int)
    copay_c = np.where(kind > 0, copays[np.arange(n), np.maximum(kind - 1, 0)], 0) * 100
    ded = np.where(member, np.array([p.deductible for p in PLANS])[pl],
                   np.array([p.deductible for p in PAYERS])[payer]) * 100
    ded_base = np.where(member, np.array([p.ded_base for p in PLANS])[pl],
                        np.array([p.ded_base for p in PAYERS])[payer])
    coins = np.where(member, np.array([p.coinsurance for p in PLANS])[pl],
                     np.array([p.coinsurance for p in PAYERS])[payer])
    cap = np.where(member, np.array([p.oop_claim_cap for p in PLANS])[pl], 4000) * 100
    cap = np.where(cl["hcc"], 75_000, cap)
    month = cl["dos"].astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12  # 0 = January
    in_ded = rng.random(n) < ded_base * ((12 - month) / 12) ** 2
    ded_c = np.where(in_ded, np.round(ded * rng.uniform(0.15, 1.0, n)), 0).astype(np.int64)

    exempt = _CAT_PREVENTIVE[key] & (payer[ci] != _WC)
    visit_line = _CAT_VISIT[key] & (np.arange(len(ci)) == starts[ci])
    copay_line = visit_line & (copay_c[ci] > 0)
    cap0 = np.where(exempt, 0, allowed)
    copay = np.where(copay_line, np.minimum(copay_c[ci], cap0), 0)
    cap1 = np.where(copay_line, 0, cap0)  # the copay covers the visit line
    before = _exclusive_cumsum(cap1, ci, starts)
    deductible = np.clip(ded_c[ci] - before, 0, cap1)
    cap2 = cap1 - deductible
    coinsurance = np.floor(cap2 * coins[ci] + 0.5).astype(np.int64)
    total = np.bincount(ci, weights=copay + deductible + coinsurance, minlength=n)
    over = total > cap
    if over.any():
        room = np.maximum(cap - np.bincount(ci, weights=copay + deductible, minlength=n), 0)
        coins_sum = np.bincount(ci, weights=coinsurance, minlength=n)
        f = np.where(over, room / np.maximum(coins_sum, 1), 1.0)
        coinsurance = np.floor(coinsurance * np.minimum(f, 1.0)[ci]).astype(np.int64)
    paid = allowed - copay - deductible - coinsurance
    return _Priced(charge, allowed, deductible.astype(np.int64), coinsurance, copay.astype(np.int64), paid,
                   starts)


# --- revenue cycle --------------------------------------------------------------------------------

@dataclass
class _Counters:
    """Running id counters across batches (ids stay unique and deterministic)."""

    claim: int = 0
    rx: int = 0
    person: int = 0
    claim_payment: int = 0
    patient_payment: int = 0
    write_off: int = 0
    check: int = 0

    def take(self, name: str, k: int) -> np.ndarray:
        start = getattr(self, name)
        setattr(self, name, start + k)
        return np.arange(start, start + k)


class _Remittances:
    """Per (practice, payer, payment day) totals of 835 claim payments, kept across batches."""

    def __init__(self) -> None:
        self.paid = np.zeros((N_PRACTICES, N_PAYERS, DA - D0 + 1), dtype=np.int64)
        self.count = np.zeros_like(self.paid)

    def add(self, practice: np.ndarray, payer: np.ndarray, day: np.ndarray, paid: np.ndarray) -> None:
        np.add.at(self.paid, (practice, payer, day - D0), paid)
        np.add.at(self.count, (practice, payer, day - D0), 1)


def _remittance_ids(practice: np.ndarray, payer: np.ndarray, day: np.ndarray) -> np.ndarray:
    tin = _PROVIDER_TIN[practice].astype(str)
    code = np.array([p.payer_id for p in PAYERS])[payer]
    return np.char.add(np.char.add(np.char.add(np.char.add("ERA-", tin), "-"), np.char.add(code, "-")),
                       _ymd(day)).astype(object)


def _snap_payment(days: np.ndarray, payer: np.ndarray) -> np.ndarray:
    """Payers release payments on business days; the check payer runs once a week (Thursday)."""
    wd = _weekday(days)
    weekly = days + (3 - wd) % 7
    return np.where(np.array([p.method == "CHK" for p in PAYERS])[payer], weekly, _next_business_day(days))


def _revenue_cycle(rng: np.random.Generator, cl: dict, ln: dict, pr: _Priced, ppl: _People,
                   claim_ids: np.ndarray, ctr: _Counters, remits: _Remittances) -> tuple[dict, dict]:
    """Simulate submission, acknowledgement, adjudication, appeals, patient payments and write-offs for
    the claims billed by demo practices. Returns the frames to insert and, for every claim, the final
    adjudication (line allowed / paid / patient share and paid date) for ``medical_claim``."""
    n_all = len(cl["person"])
    idx = np.flatnonzero(cl["provider"] < N_PRACTICES)
    n = len(idx)
    frames: dict[str, pd.DataFrame] = {}
    final = {"state": np.zeros(n_all, dtype=np.int8), "paid_date": np.full(n_all, -1, dtype=np.int64),
             "line_ok": np.ones(len(ln["ci"]), dtype=bool)}
    # final state: 0 not practice, 1 not adjudicated, 2 paid (line_ok marks lines paid), 3 denied
    if n == 0:
        return frames, final
    ci, starts = ln["ci"], pr.starts
    practice = cl["provider"][idx]
    person = cl["person"][idx]
    payer = ppl.payer[person]
    dos = cl["dos"][idx]
    lines_n = np.bincount(ci, minlength=n_all)[idx]
    charge = np.bincount(ci, weights=pr.charge, minlength=n_all).astype(np.int64)[idx]
    allowed = np.bincount(ci, weights=pr.allowed, minlength=n_all).astype(np.int64)[idx]
    paid_clean = np.bincount(ci, weights=pr.paid, minlength=n_all).astype(np.int64)[idx]
    ded = np.bincount(ci, weights=pr.deductible, minlength=n_all).astype(np.int64)[idx]
    coins = np.bincount(ci, weights=pr.coinsurance, minlength=n_all).astype(np.int64)[idx]
    copay = np.bincount(ci, weights=pr.copay, minlength=n_all).astype(np.int64)[idx]
    lag_mean = np.array([p.submit_lag for p in PRACTICES])[practice]
    rej_rate = np.array([p.reject_rate for p in PRACTICES])[practice]
    den_factor = np.array([p.denial_factor for p in PRACTICES])[practice]

    # 837 and 277CA
    sub1 = _next_business_day(dos + 1 + rng.poisson(np.maximum(lag_mean - 1, 0)))
    ack1 = sub1 + 1 + (rng.random(n) < .35)
    rejected = rng.random(n) < rej_rate
    sub2 = _next_business_day(ack1 + rng.integers(2, 8, n))
    ack2 = sub2 + 1 + (rng.random(n) < .35)
    accepted = np.where(rejected, ack2, ack1)

    # first adjudication
    lag_median = np.array([p.lag_median for p in PAYERS])[payer]
    lag_sigma = np.array([p.lag_sigma for p in PAYERS])[payer]
    lag = np.maximum(np.round(lag_median * rng.lognormal(0, lag_sigma)), 5).astype(np.int64)
    pend = np.array([PENDED_RATE_BY_PAYER.get(p.payer_id, PENDED_RATE) for p in PAYERS])[payer]
    lag = lag + np.where(rng.random(n) < pend, rng.integers(60, 151, n), 0)
    adj1 = _snap_payment(accepted + lag, payer)
    runout = cl["runout"][idx].astype(bool)
    denial_rate = np.array([p.denial_rate for p in PAYERS])[payer] * den_factor
    denied = runout | (rng.random(n) < denial_rate)
    carc_mix = np.array([p.carc_mix for p in PAYERS])
    carc_i = _pick_rows(rng, carc_mix, payer)
    carc_i = np.where(runout, DENIAL_CARCS.index("27"), carc_i)
    carc = np.array(DENIAL_CARCS, dtype=object)[carc_i]
    appeal_p = np.array([APPEAL_RATE[c] for c in DENIAL_CARCS])[carc_i]
    appealed = denied & (rng.random(n) < appeal_p)
    appeal_day = adj1 + rng.integers(5, 26, n)
    adj2 = _snap_payment(appeal_day + np.maximum(np.round(lag_median * 1.3 * rng.lognormal(0, lag_sigma)), 7)
                         .astype(np.int64), payer)
    never = (rng.random(n) < DENIAL_NEVER_WORKED) & (charge < NEVER_WORKED_MAX_CENTS)
    wo_denial_day = adj1 + rng.integers(20, 91, n)

    # partial payments: one line (not the first) denied on a multi-line claim
    partial = (~denied) & (lines_n >= 2) & (rng.random(n) < PARTIAL_DENIAL_RATE)
    pick = rng.integers(1, np.maximum(lines_n, 2))
    bad_line = starts[idx] + np.where(partial, pick, 0)  # global line index
    bad_carc = np.where(rng.random(n) < .6, "97", "50").astype(object)
    partial_line_charge = pr.charge[bad_line]

    vis_sub1 = sub1 <= DA
    vis_adj1 = adj1 <= DA
    vis_adj2 = appealed & (adj2 <= DA)
    vis_appeal = appealed & (appeal_day <= DA)

    # --- claim_status_event ---
    ev_claim, ev_seq, ev_type, ev_date, ev_src, ev_code, ev_detail = [], [], [], [], [], [], []
    seq = np.zeros(n, dtype=np.int64)

    def event(mask, kind, day, src, code, detail):
        k = np.flatnonzero(mask)
        seq[k] += 1
        ev_claim.append(k)
        ev_seq.append(seq[k].copy())
        ev_type.append(np.full(len(k), kind, dtype=object))
        ev_date.append(day[k])
        ev_src.append(np.full(len(k), src, dtype=object))
        ev_code.append(code[k] if isinstance(code, np.ndarray) else np.full(len(k), code, dtype=object))
        ev_detail.append(detail[k] if isinstance(detail, np.ndarray)
                         else np.full(len(k), detail, dtype=object))

    reasons = _obj(_REJECT_REASONS)[rng.integers(0, len(_REJECT_REASONS), n)]
    event(vis_sub1, "submitted", sub1, "837", None, None)
    event((ack1 <= DA) & ~rejected, "accepted", ack1, "277CA", "A2", "Accepted for adjudication")
    event((ack1 <= DA) & rejected, "rejected", ack1, "277CA", "A7", reasons)
    event((sub2 <= DA) & rejected, "submitted", sub2, "837", None, "Corrected claim resubmitted")
    event((ack2 <= DA) & rejected, "accepted", ack2, "277CA", "A2", "Accepted for adjudication")
    detail = np.array([_APPEAL_DETAIL.get(c, "Appeal") for c in DENIAL_CARCS], dtype=object)[carc_i]
    event(vis_appeal & vis_adj1, "appealed", appeal_day, "manual", None, detail)
    k = np.concatenate(ev_claim)
    order = np.lexsort((np.concatenate(ev_seq), k))
    frames["claim_status_event"] = pd.DataFrame({
        "claim_id": claim_ids[idx][k][order], "event_seq": np.concatenate(ev_seq)[order],
        "practice_id": _PROVIDER_TIN[practice][k][order], "event_type": np.concatenate(ev_type)[order],
        "event_date": _dates(np.concatenate(ev_date)[order]), "source": np.concatenate(ev_src)[order],
        "status_code": np.concatenate(ev_code)[order], "detail": np.concatenate(ev_detail)[order],
    })

    # --- claim payments (CLP) ---
    first = np.flatnonzero(vis_adj1)
    second = np.flatnonzero(vis_adj2 & vis_adj1)
    cp_claim = np.concatenate([first, second])
    cp_round = np.concatenate([np.ones(len(first), np.int8), np.full(len(second), 2, np.int8)])
    cp_day = np.where(cp_round == 1, adj1[cp_claim], adj2[cp_claim])
    cp_denied = (cp_round == 1) & denied[cp_claim]
    cp_partial = (cp_round == 1) & partial[cp_claim]
    cp_paid = np.where(cp_denied, 0, paid_clean[cp_claim])
    # the partially denied line: nothing allowed or paid on it
    line_paid_bad = pr.paid[bad_line[cp_claim]]
    line_pr_bad = (pr.deductible + pr.coinsurance + pr.copay)[bad_line[cp_claim]]
    cp_paid = np.where(cp_partial, cp_paid - line_paid_bad, cp_paid)
    cp_pr = np.where(cp_denied, 0, ded[cp_claim] + coins[cp_claim] + copay[cp_claim])
    cp_pr = np.where(cp_partial, cp_pr - line_pr_bad, cp_pr)
    m = len(cp_claim)
    cp_ids = _ids("CP", ctr.take("claim_payment", m), 10)
    cp_practice = practice[cp_claim]
    cp_payer = payer[cp_claim]
    remits.add(cp_practice, cp_payer, cp_day, cp_paid)
    status = np.where(cp_denied & (carc[cp_claim] == "27") & (rng.random(m) < .6), "4",
                      np.where(cp_denied & (rng.random(m) < .03), "4",
                               np.where((rng.random(m) < .03) & (cp_payer == _MCD), "2", "1"))).astype(object)
    pname = (np.char.upper(ppl.last[person[cp_claim]].astype(str)).astype(object) + ", "
             + np.char.upper(ppl.first[person[cp_claim]].astype(str)).astype(object))
    frames["claim_payment"] = pd.DataFrame({
        "claim_payment_id": cp_ids, "remittance_id": _remittance_ids(cp_practice, cp_payer, cp_day),
        "practice_id": _PROVIDER_TIN[cp_practice], "claim_id": claim_ids[idx][cp_claim],
        "status_code": status,
        "charge_amount": _money(charge[cp_claim]), "paid_amount": _money(cp_paid),
        "patient_responsibility": _money(cp_pr),
        "filing_indicator": np.array([p.filing for p in PAYERS], dtype=object)[cp_payer],
        "payer_claim_number": np.char.add(np.array([p.payer_id[:2] for p in PAYERS])[cp_payer],
                                          np.char.zfill(rng.integers(0, 10**12, m).astype(str), 12)
                                          ).astype(object),
        "received_date": _dates(accepted[cp_claim]), "service_date": _dates(dos[cp_claim]),
        "patient_name": pname,
    })

    # --- CAS at claim level (denials and clean payments) ---
    whole = ~cp_partial
    co45 = np.where(cp_denied, 0, charge[cp_claim] - allowed[cp_claim])
    amounts = np.column_stack([
        np.where(cp_denied, charge[cp_claim], 0), co45, np.where(cp_denied, 0, ded[cp_claim]),
        np.where(cp_denied, 0, coins[cp_claim]), np.where(cp_denied, 0, copay[cp_claim]),
    ])
    groups = np.array(["CO", "CO", "PR", "PR", "PR"], dtype=object)
    carcs = np.column_stack([carc[cp_claim], np.full((m, 4), None, dtype=object)])
    carcs[:, 1:] = np.array(["45", "1", "2", "3"], dtype=object)
    present = (amounts > 0) & whole[:, None]
    r, c = np.nonzero(present)
    seq_cas = np.cumsum(present, axis=1)[r, c]
    cas = [pd.DataFrame({"claim_payment_id": cp_ids[r], "line_number": 0, "adjustment_seq": seq_cas,
                         "practice_id": _PROVIDER_TIN[cp_practice[r]], "group_code": groups[c],
                         "carc": carcs[r, c],
                         "amount": _money(amounts[r, c])})]
    remarks = []
    dr = np.flatnonzero(cp_denied & np.isin(carc[cp_claim], list(_REMARKS)))
    if len(dr):
        remarks.append(pd.DataFrame({
            "claim_payment_id": cp_ids[dr], "line_number": 0, "remark_seq": 1,
            "practice_id": _PROVIDER_TIN[cp_practice[dr]], "qualifier": "HE",
            "code": np.array([_REMARKS.get(x) for x in carc[cp_claim[dr]]], dtype=object),
        }))

    # --- partial payments: SVC for every line, CAS per line ---
    pp_rows = np.flatnonzero(cp_partial)
    svc = []
    if len(pp_rows):
        claim_of = idx[cp_claim[pp_rows]]  # claim index in the batch
        cnt = np.bincount(ci, minlength=n_all)[claim_of]
        rep = np.repeat(np.arange(len(pp_rows)), cnt)
        line = starts[claim_of][rep] + (np.arange(len(rep)) - (np.cumsum(cnt) - cnt)[rep])
        is_bad = line == bad_line[cp_claim[pp_rows]][rep]
        l_charge = pr.charge[line]
        l_allowed = np.where(is_bad, 0, pr.allowed[line])
        l_paid = np.where(is_bad, 0, pr.paid[line])
        lamt = np.column_stack([
            np.where(is_bad, l_charge, 0), l_charge - l_allowed - np.where(is_bad, l_charge, 0),
            np.where(is_bad, 0, pr.deductible[line]), np.where(is_bad, 0, pr.coinsurance[line]),
            np.where(is_bad, 0, pr.copay[line]),
        ])
        lcarc = np.column_stack([bad_carc[cp_claim[pp_rows]][rep],
                                 np.full((len(rep), 4), None, dtype=object)])
        lcarc[:, 1:] = np.array(["45", "1", "2", "3"], dtype=object)
        lpresent = lamt > 0
        r2, c2 = np.nonzero(lpresent)
        line_no = (line - starts[claim_of][rep]) + 1
        cp_of = cp_ids[pp_rows][rep]
        tin_of = _PROVIDER_TIN[cp_practice[pp_rows]][rep]
        cas.append(pd.DataFrame({
            "claim_payment_id": cp_of[r2], "line_number": line_no[r2],
            "adjustment_seq": np.cumsum(lpresent, axis=1)[r2, c2], "practice_id": tin_of[r2],
            "group_code": groups[c2], "carc": lcarc[r2, c2], "amount": _money(lamt[r2, c2]),
        }))
        hcpcs = _CAT_HCPCS[ln["key"][line]]
        svc.append(pd.DataFrame({
            "claim_payment_id": cp_of, "line_number": line_no, "practice_id": tin_of,
            "procedure_qualifier": "HC",
            "procedure_code": hcpcs, "modifiers": _modifiers(cl, ln)[line], "charge_amount": _money(l_charge),
            "paid_amount": _money(l_paid), "units": ln["units"][line].astype(float),
            "service_date": _dates(dos[cp_claim[pp_rows]][rep]),
            "control_number": claim_ids[claim_of][rep].astype(str).astype(object) + "-" + line_no.astype(str),
        }))
        bad = is_bad
        remarks.append(pd.DataFrame({
            "claim_payment_id": cp_of[bad], "line_number": line_no[bad], "remark_seq": 1,
            "practice_id": tin_of[bad], "qualifier": "HE",
            "code": np.where(lcarc[bad, 0] == "97", "M15", "N115").astype(object),
        }))
    frames["claim_adjustment"] = pd.concat(cas, ignore_index=True)
    frames["service_line_payment"] = pd.concat(svc, ignore_index=True) if svc else pd.DataFrame()
    frames["remark_code"] = pd.concat(remarks, ignore_index=True) if remarks else pd.DataFrame()

    # --- final adjudication for medical_claim ---
    state = np.ones(n, dtype=np.int8)  # not adjudicated
    paid_day = np.full(n, -1, dtype=np.int64)
    paid_now = vis_adj1 & ~denied
    state[paid_now] = 2
    paid_day[paid_now] = adj1[paid_now]
    state[vis_adj1 & denied] = 3
    appeal_paid = vis_adj1 & vis_adj2
    state[appeal_paid] = 2
    paid_day[appeal_paid] = adj2[appeal_paid]
    final["state"][idx] = state
    final["paid_date"][idx] = paid_day
    partial_final = partial & vis_adj1
    final["line_ok"][bad_line[partial_final]] = False

    # --- write-offs: unworked denials and partially denied lines ---
    wo_claim, wo_day, wo_amt, wo_reason = [], [], [], []
    wd_mask = vis_adj1 & denied & ~appealed & ~never & (wo_denial_day <= DA)
    wo_claim.append(np.flatnonzero(wd_mask))
    wo_day.append(wo_denial_day[wd_mask])
    wo_amt.append(charge[wd_mask])
    wo_reason.append(np.full(wd_mask.sum(), "denial", dtype=object))
    pl_day = adj1 + rng.integers(20, 91, n)
    pl_mask = partial_final & (rng.random(n) >= PARTIAL_LINE_NEVER_WORKED) & (pl_day <= DA)
    wo_claim.append(np.flatnonzero(pl_mask))
    wo_day.append(pl_day[pl_mask])
    wo_amt.append(partial_line_charge[pl_mask])
    wo_reason.append(np.full(pl_mask.sum(), "denial", dtype=object))

    # --- patient payments: copays at the front desk, statements after the 835, refunds, bad debt ---
    pp_claim, pp_day, pp_amt, pp_channel = [], [], [], []
    at_desk = (copay > 0) & (rng.random(n) < COPAY_AT_VISIT_RATE)
    k = np.flatnonzero(at_desk)
    pp_claim.append(k)
    pp_day.append(dos[k])
    pp_amt.append(copay[k])
    pp_channel.append(np.array(["card", "cash", "check"], dtype=object)[_choice(rng, [.8, .12, .08], len(k))])
    # a copay taken for a visit whose denial is written off is handed back
    back = at_desk & wd_mask
    back_day = wo_denial_day + rng.integers(7, 31, n)
    k = np.flatnonzero(back & (back_day <= DA))
    pp_claim.append(k)
    pp_day.append(back_day[k])
    pp_amt.append(-copay[k])
    pp_channel.append(np.full(len(k), "check", dtype=object))

    pr_final = np.where(state == 2, ded + coins + copay, 0)
    bad_line_pr = (pr.deductible + pr.coinsurance + pr.copay)[bad_line]
    pr_final = np.where(partial_final, pr_final - bad_line_pr, pr_final)
    pr_final = pr_final - np.where(at_desk & (state == 2), copay, 0)
    owes = np.flatnonzero(pr_final > 0)
    if len(owes):
        bal = pr_final[owes]
        t0 = paid_day[owes]
        full_p = np.array([p.full_pay for p in PAYERS])[payer[owes]]
        u = rng.random(len(owes))
        full = u < full_p
        part = (~full) & (u < full_p + PATIENT_PARTIAL_RATE)
        pay_day = t0 + np.clip(np.round(rng.lognormal(np.log(16), 0.7, len(owes))), 5, 90).astype(np.int64)
        channel = np.array(["portal", "card", "check", "cash", "payment_plan"], dtype=object)[
            _choice(rng, [.42, .30, .17, .03, .08], len(owes))]
        plan_pay = full & (bal >= PAYMENT_PLAN_MIN_CENTS) & (rng.random(len(owes)) < .5)
        channel = np.where(plan_pay, "payment_plan", np.where(channel == "payment_plan", "card", channel))
        # installments: 3–6 monthly payments
        k_inst = np.where(plan_pay, rng.integers(3, 7, len(owes)), 1)
        amount_paid = np.where(full, bal, np.where(part, np.round(bal * rng.uniform(.2, .8, len(owes))), 0)
                               ).astype(np.int64)
        payer_rows = np.flatnonzero(amount_paid > 0)
        rep = np.repeat(payer_rows, k_inst[payer_rows])
        j = np.arange(len(rep)) - (np.cumsum(k_inst[payer_rows]) - k_inst[payer_rows])[np.repeat(
            np.arange(len(payer_rows)), k_inst[payer_rows])]
        each = amount_paid[rep] // k_inst[rep]
        amt = np.where(j == k_inst[rep] - 1, amount_paid[rep] - each * (k_inst[rep] - 1), each)
        day = pay_day[rep] + 30 * j
        ok = day <= DA
        rep, amt, day = rep[ok], amt[ok], day[ok]
        # overpayments (paid twice, or too much) and the refund of the credit balance
        refund = full & ~plan_pay & (rng.random(len(owes)) < PATIENT_REFUND_RATE)
        refund_day = pay_day + rng.integers(10, 46, len(owes))
        refund &= refund_day <= DA
        extra = np.where(rng.random(len(owes)) < .5, bal, rng.integers(10, 51, len(owes)) * 100)
        amt = amt + np.where(refund[rep] & (day == pay_day[rep]), extra[rep], 0)
        rf = np.flatnonzero(refund)
        pp_claim += [owes[rep], owes[rf]]
        pp_day += [day, refund_day[rf]]
        pp_amt += [amt, -extra[rf]]
        pp_channel += [channel[rep], channel[rf]]
        # bad debt: what is left after 120+ days, unless still in collections
        left = bal - amount_paid
        bd_day = t0 + rng.integers(120, 201, len(owes))
        bd = (left > 0) & (bd_day <= DA) & (rng.random(len(owes)) >= PATIENT_NEVER_WRITTEN_OFF)
        wo_claim.append(owes[bd])
        wo_day.append(bd_day[bd])
        wo_amt.append(left[bd])
        wo_reason.append(np.full(bd.sum(), "bad_debt", dtype=object))
    pc_ = np.concatenate(pp_claim)
    o = np.lexsort((np.concatenate(pp_day), pc_))
    pc_ = pc_[o]
    pp_frames = [pd.DataFrame({
        "patient_payment_id": _ids("PP", ctr.take("patient_payment", len(pc_)), 10),
        "practice_id": _PROVIDER_TIN[practice[pc_]], "claim_id": claim_ids[idx][pc_],
        "person_id": ppl.person_id[person[pc_]], "payment_date": _dates(np.concatenate(pp_day)[o]),
        "amount": _money(np.concatenate(pp_amt)[o]), "channel": np.concatenate(pp_channel)[o],
    })]
    frames["patient_payment"] = pd.concat(pp_frames, ignore_index=True) if pp_frames else pd.DataFrame()
    wc = np.concatenate(wo_claim)
    frames["claim_write_off"] = pd.DataFrame({
        "write_off_id": _ids("WO", ctr.take("write_off", len(wc)), 10),
        "practice_id": _PROVIDER_TIN[practice[wc]], "claim_id": claim_ids[idx][wc],
        "write_off_date": _dates(np.concatenate(wo_day)), "amount": _money(np.concatenate(wo_amt)),
        "reason": np.concatenate(wo_reason),
    })

    # --- 270/271 eligibility checks before the visit ---
    chk = np.flatnonzero(rng.random(n) < ELIG_CHECK_RATE)
    c_day = dos[chk] - _choice(rng, [.45, .30, .15, .10], len(chk))
    req = c_day.astype("datetime64[D]").astype("datetime64[s]") + (
        rng.integers(7 * 3600, 18 * 3600, len(chk))).astype("timedelta64[s]")
    recent = dos[chk] > DA - ELIG_PENDING_RECENT_DAYS
    u = rng.random(len(chk))
    pending = u < np.where(recent, 0.55, 0.025)
    inactive = ~pending & ((runout[chk] & (rng.random(len(chk)) < .9)) | (u > 0.975))
    error = ~pending & ~inactive & (u > 0.965)
    status_c = np.select([pending, inactive, error], ["pending", "inactive", "error"], "active")
    resp = req + rng.integers(2, 25, len(chk)).astype("timedelta64[s]")
    ids = ctr.take("check", len(chk))
    frames["eligibility_check"] = pd.DataFrame({
        "check_id": _ids("EC", ids, 10), "practice_id": _PROVIDER_TIN[practice[chk]],
        "person_id": ppl.person_id[person[chk]], "member_id": ppl.member_id[person[chk]],
        "payer_id": np.array([p.payer_id for p in PAYERS], dtype=object)[payer[chk]],
        "service_date": _dates(dos[chk]), "requested_at": req,
        "responded_at": np.where(pending, np.datetime64("NaT"), resp), "status": status_c.astype(object),
        "trace_number": _ids("270", ids, 12),
    })
    return frames, final


def _modifiers(cl: dict, ln: dict) -> np.ndarray:
    """HCPCS modifier 1: 25 on an E/M billed with a procedure, 95 telehealth, 26 professional component,
    RT/LT laterality."""
    ci, key = ln["ci"], ln["key"]
    n = len(cl["person"])
    has_proc = np.bincount(ci, weights=_CAT_PROCEDURE[key], minlength=n) > 0
    out = np.full(len(ci), None, dtype=object)
    em = _CAT_VISIT[key] & ~cl["inst"][ci].astype(bool)
    out = np.where(em & has_proc[ci], "25", out)
    out = np.where(cl["telehealth"][ci].astype(bool), "95", out)
    out = np.where(_CAT_PC[key], "26", out)
    side = np.where((ci + key) % 2 == 0, "RT", "LT")
    return np.where(_CAT_SIDE[key], side, out)


# --- frames ----------------------------------------------------------------------------------------

def _medical_frame(rng: np.random.Generator, cl: dict, ln: dict, pr: _Priced, ppl: _People,
                   claim_ids: np.ndarray, final: dict) -> pd.DataFrame:
    ci = ln["ci"]
    n = len(cl["person"])
    person = cl["person"]
    payer = ppl.payer[person]
    plan = ppl.plan[person]
    provider = cl["provider"]
    practice_claim = provider < N_PRACTICES
    # outside providers: paid by the carrier after its lag; still pending at the as-of date if later
    lag = np.array([p.lag_median for p in PAYERS])[payer]
    out_paid = _next_business_day(cl["end"] + 3 + np.round(lag * rng.lognormal(0, 0.35, n)).astype(np.int64))
    out_ok = out_paid <= DA
    state = final["state"]
    adjudicated = np.where(practice_claim, state >= 2, out_ok)
    paid_day = np.where(practice_claim, final["paid_date"], np.where(out_ok, out_paid, -1))
    paid_ok = np.where(practice_claim, state == 2, out_ok)
    line_adj = adjudicated[ci]
    keep = np.where(practice_claim[ci], (state[ci] == 2) & final["line_ok"], True)
    z = np.zeros(len(ci), dtype=np.int64)
    allowed = np.where(keep, pr.allowed, z)
    paid = np.where(keep, pr.paid, z)
    coins = np.where(keep, pr.coinsurance, z)
    copay = np.where(keep, pr.copay, z)
    ded = np.where(keep, pr.deductible, z)
    line_no = np.arange(len(ci)) - pr.starts[ci] + 1
    rendering = cl["rendering"].astype(np.int64)
    rendering = np.where(rendering >= 0, rendering,
                         _NPI_OFFSET[provider] + (person * 7 + provider) % _PROVIDER_CLINICIANS[provider])
    inst = cl["inst"].astype(bool)
    ip = cl["bill"] == "111"
    plan_name = np.where(plan >= 0, _obj([p.plan_id for p in PLANS] + [None])[plan],
                         _obj(_NONMEMBER_PLAN)[payer])
    dates = _dates(cl["dos"])[ci]
    ends = _dates(cl["end"])[ci]
    frame = pd.DataFrame({
        "claim_id": claim_ids[ci], "claim_line_number": line_no,
        "claim_type": np.where(inst, "institutional", "professional").astype(object)[ci],
        "person_id": ppl.person_id[person][ci], "member_id": ppl.member_id[person][ci],
        "payer": _obj([p.payer_id for p in PAYERS])[payer][ci], "plan": plan_name[ci],
        "claim_start_date": dates, "claim_end_date": ends, "claim_line_start_date": dates,
        "claim_line_end_date": ends,
        "admission_date": _dates(cl["admit"], ip)[ci], "discharge_date": _dates(cl["discharge"], ip)[ci],
        "admit_source_code": np.where(ip, "1", None)[ci], "admit_type_code": np.where(ip, "2", None)[ci],
        "discharge_disposition_code": np.where(ip, "01", None)[ci],
        "place_of_service_code": np.where(inst, None, cl["pos"])[ci],
        "bill_type_code": cl["bill"][ci], "drg_code_type": np.where(ip, "ms-drg", None)[ci],
        "drg_code": cl["drg"][ci], "revenue_center_code": _CAT_REV[ln["key"]],
        "service_unit_quantity": ln["units"].astype(float), "hcpcs_code": _CAT_HCPCS[ln["key"]],
        "hcpcs_modifier_1": _modifiers(cl, ln),
        "rendering_npi": _CLINICIAN_NPI[rendering][ci], "rendering_tin": _PROVIDER_TIN[provider][ci],
        "billing_npi": _PROVIDER_NPI[provider][ci], "billing_tin": _PROVIDER_TIN[provider][ci],
        "facility_npi": np.where(inst, _PROVIDER_NPI[provider], None)[ci],
        "paid_date": _dates(paid_day, paid_ok & (paid_day >= 0))[ci],
        "paid_amount": _money(paid, line_adj), "allowed_amount": _money(allowed, line_adj),
        "charge_amount": _money(pr.charge), "coinsurance_amount": _money(coins, line_adj),
        "copayment_amount": _money(copay, line_adj), "deductible_amount": _money(ded, line_adj),
        "total_cost_amount": _money(allowed, line_adj), "diagnosis_code_type": "icd-10-cm",
        "diagnosis_code_1": cl["dx1"][ci], "diagnosis_code_2": cl["dx2"][ci],
        "diagnosis_code_3": cl["dx3"][ci],
        "diagnosis_poa_1": np.where(ip, "Y", None)[ci],
        "procedure_code_type": np.where(ip & (cl["pcs"] != None), "icd-10-pcs", None)[ci],  # noqa: E711
        "procedure_code_1": np.where(ip, cl["pcs"], None)[ci],
        "procedure_date_1": _dates(cl["admit"], ip & (cl["pcs"] != None))[ci],  # noqa: E711
        "in_network_flag": ~np.isin(provider, _OUT_OF_NETWORK)[ci], "data_source": DATA_SOURCE,
        "file_name": "demo_medical_claim",
        "file_date": _dates(np.full(len(ci), DA)),
    })
    return frame


def _pharmacy(rng: np.random.Generator, ppl: _People, ctr: _Counters) -> pd.DataFrame:
    """Prescription fills of employer members: maintenance drugs refilled, acute courses, specialty."""
    members = np.flatnonzero(ppl.plan >= 0)
    if len(members) == 0:
        return pd.DataFrame()
    c = ppl.cov[members]
    days = (c[:, 1] - c[:, 0] + 1) + np.where(c[:, 2] >= 0, c[:, 3] - c[:, 2] + 1, 0)
    age = _age_years(ppl.birth[members], DA)
    band = np.digitize(age, [18, 50])
    rate = np.array(RX_FILLS_BY_AGE)[band] * ppl.risk[members] ** 0.5
    n_fill = rng.poisson(rate * days / 365.25)
    spec = ppl.hcc[members] == _HCC_SPEC
    spec_drug = _SPECIALTY[_choice(rng, [.55, .10, .05, .30], len(members))]
    n_spec = np.where(spec, np.maximum(days // _DRUG_DAYS[spec_drug], 1), 0)  # refilled every days-supply
    person = np.repeat(members, n_fill)
    band_f = np.repeat(band, n_fill)
    # each member has three regular drugs (refilled) and acute courses
    maintenance = _DRUG_W.T * (~_DRUG_ACUTE & (_DRUG_TIER < 3))
    profile = _pick_rows(rng, maintenance, np.repeat(band, 3)).reshape(-1, 3)
    mrow = np.repeat(np.arange(len(members)), n_fill)
    acute = rng.random(len(person)) < .22
    slot = _choice(rng, [.55, .30, .15], len(person))
    drug = np.where(acute, _pick_rows(rng, _DRUG_W.T * _DRUG_ACUTE, band_f), profile[mrow, slot])
    # a rare one-off specialty fill (e.g. a biologic started and stopped)
    drug = np.where(rng.random(len(person)) < RX_SPECIALTY_SHARE,
                    _SPECIALTY[_choice(rng, [.6, .1, .0, .3], len(person))], drug)
    # specialty-drug claimants: a fill every 28 days
    sp_person = np.repeat(members, n_spec)
    sp_drug = np.repeat(spec_drug, n_spec)
    person = np.concatenate([person, sp_person])
    drug = np.concatenate([drug, sp_drug])
    day = _member_dates(rng, ppl, person)
    k = len(person)
    allowed = np.round(_DRUG_COST[drug] * rng.lognormal(0, 0.12, k) + 175).astype(np.int64)
    markup = np.where(_DRUG_TIER[drug] == 0, rng.uniform(1.5, 3.0, k), rng.uniform(1.1, 1.3, k))
    charge = np.round(allowed * markup).astype(np.int64)  # usual & customary price
    plan = ppl.plan[person]
    rx = np.array([p.rx_copays for p in PLANS])[plan]
    tier = _DRUG_TIER[drug]
    copay = np.where(tier < 3, rx[np.arange(k), np.minimum(tier, 2)] * 100, 0)
    hdhp = np.array([p.plan_type == "HDHP" for p in PLANS])[plan]
    month = day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
    in_ded = hdhp & (tier > 0) & (rng.random(k) < 0.9 * ((12 - month) / 12) ** 2)
    ded = np.where(in_ded, np.minimum(allowed, np.round(allowed * rng.uniform(.3, 1.0, k))), 0)
    ded = ded.astype(np.int64)
    copay = np.where(in_ded, 0, np.minimum(copay, allowed)).astype(np.int64)
    coins = np.where(tier == 3, np.minimum(np.round(allowed * 0.2), 25_000), 0).astype(np.int64)
    coins = np.minimum(coins, allowed - ded - copay)
    paid = allowed - ded - copay - coins
    ids = _ids("RX", ctr.take("rx", k), 10)
    order = np.lexsort((ids, day))
    return pd.DataFrame({
        "claim_id": ids, "claim_line_number": 1, "person_id": ppl.person_id[person],
        "member_id": ppl.member_id[person], "payer": _obj([p.payer_id for p in PAYERS])[ppl.payer[person]],
        "plan": _obj([p.plan_id for p in PLANS])[plan],
        "prescribing_provider_npi": _CLINICIAN_NPI[rng.integers(0, len(_CLINICIAN_NPI), k)],
        "dispensing_provider_npi": _PHARMACY_NPI[rng.integers(0, len(_PHARMACY_NPI), k)],
        "dispensing_date": _dates(day), "ndc_code": _DRUG_NDC[drug], "quantity": _DRUG_QTY[drug],
        "days_supply": _DRUG_DAYS[drug], "refills": np.where(_DRUG_ACUTE[drug], 0, rng.integers(0, 6, k)),
        "paid_date": _dates(day), "paid_amount": _money(paid), "allowed_amount": _money(allowed),
        "charge_amount": _money(charge), "coinsurance_amount": _money(coins),
        "copayment_amount": _money(copay),
        "deductible_amount": _money(ded), "in_network_flag": True, "data_source": DATA_SOURCE,
        "file_name": "demo_pharmacy_claim", "file_date": _dates(np.full(k, DA)),
    }).iloc[order].reset_index(drop=True)


def _reference_frames() -> dict[str, pd.DataFrame]:
    return {
        "practice": pd.DataFrame({
            "practice_id": [p.practice_id for p in PRACTICES], "practice_name": [p.name for p in PRACTICES],
            "specialty": [p.specialty for p in PRACTICES], "billing_npi": list(_PROVIDER_NPI[:N_PRACTICES]),
            "state": "OH", "premium_payment_portal": [p.premium_portal for p in PRACTICES],
        }),
        "payer": pd.DataFrame({"payer_id": [p.payer_id for p in PAYERS],
                               "payer_name": [p.name for p in PAYERS],
                               "payer_type": [p.payer_type for p in PAYERS]}),
        "employer": pd.DataFrame({
            "employer_id": [e.employer_id for e in EMPLOYERS], "employer_name": [e.name for e in EMPLOYERS],
            "industry": [e.industry for e in EMPLOYERS], "state": [e.state for e in EMPLOYERS],
        }),
        "plan": pd.DataFrame({
            "plan_id": [p.plan_id for p in PLANS],
            "employer_id": [EMPLOYERS[p.employer].employer_id for p in PLANS],
            "plan_name": [p.name for p in PLANS], "payer": [PAYERS[p.payer].payer_id for p in PLANS],
            "plan_type": [p.plan_type for p in PLANS],
        }),
        "coverage_tier": pd.DataFrame({"tier_code": [t for t, _ in COVERAGE_TIERS],
                                       "tier_name": [n for _, n in COVERAGE_TIERS]}),
    }


def _remittance_frames(rng: np.random.Generator, remits: _Remittances) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One 835 per (practice, payer, payment day) with its BPR total, TRN trace and a few PLB rows."""
    p, y, d = np.nonzero(remits.count)
    day = d + D0
    paid = remits.paid[p, y, d]
    k = len(p)
    rid = _remittance_ids(p, y, day)
    chk = np.array([x.method == "CHK" for x in PAYERS])[y]
    method = np.where(paid == 0, "NON", np.where(chk, "CHK", "ACH")).astype(object)
    # PLB: L6 interest (negative: increases the payment), WO overpayment recovery and FB forward balance
    # (positive: reduce the payment). At most a third of the claim payments, so BPR02 stays positive.
    u = rng.random(k)
    kind = np.where(paid < 10_000, -1, np.where(u < .03, 0, np.where(u < .045, 1, np.where(u < .05, 2, -1))))
    amount = np.where(kind == 0, -rng.integers(50, 4_000, k),
                      np.minimum(rng.integers(2_000, 40_000, k), paid // 3))
    has = np.flatnonzero(kind >= 0)
    reasons = np.array(["L6", "WO", "FB"], dtype=object)
    plb = pd.DataFrame({
        "remittance_id": rid[has], "adjustment_seq": 1, "practice_id": _PROVIDER_TIN[p[has]],
        "provider_id": _PROVIDER_NPI[p[has]],
        "fiscal_period_date": _dates(_day_of_year_end(day[has])), "reason_code": reasons[kind[has]],
        "reference": np.char.add(reasons[kind[has]].astype(str),
                                 np.char.zfill(rng.integers(0, 10**10, len(has)).astype(str), 10)
                                 ).astype(object),
        "amount": _money(amount[has]),
    })
    plb_total = np.zeros(k, dtype=np.int64)
    plb_total[has] = amount[has]
    # TRN02: sequential EFT trace / check numbers per payer, in payment-date order
    order = np.lexsort((p, day, y))
    trace = np.empty(k, dtype=object)
    for payer_i in range(N_PAYERS):
        sel = order[y[order] == payer_i]
        base = 100_000 + 7_000 * payer_i if PAYERS[payer_i].method == "CHK" else 910_000_000 + 10**7 * payer_i
        numbers = (base + np.arange(len(sel))).astype(str)
        trace[sel] = numbers if PAYERS[payer_i].method == "CHK" else np.char.add("1", numbers)
    names = np.array([x.name for x in PAYERS], dtype=object)
    codes = np.array([x.payer_id for x in PAYERS], dtype=object)
    remittance = pd.DataFrame({
        "remittance_id": rid, "practice_id": _PROVIDER_TIN[p], "payer_id": codes[y], "payer_name": names[y],
        "trace_number": trace, "payer_identifier": np.array(_PAYER_EIN, dtype=object)[y], "method": method,
        "payment_date": _dates(day), "amount": _money(paid - plb_total), "credit_debit": "C",
        "source_file": np.char.add(np.char.add(np.char.add("835_", codes[y].astype(str)), "_"),
                                   np.char.add(_ymd(day), ".edi")).astype(object),
    })
    return remittance, plb


def _day_of_year_end(days: np.ndarray) -> np.ndarray:
    y = days.astype("datetime64[D]").astype("datetime64[Y]")
    return ((y + 1).astype("datetime64[D]") - _EPOCH).astype(np.int64) - 1


# --- entry point -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class DemoSummary:
    claims: int
    claim_lines: int
    pharmacy_claims: int
    members: int
    practices: tuple[str, ...]  # practice ids (billing TINs)
    employers: tuple[str, ...]
    as_of: dt.date
    seconds: float


def _split(total: int, parts: int, i: int) -> int:
    return total * (i + 1) // parts - total * i // parts


ROW_GROUP = 122_880  # DuckDB's row-group size: the unit it compresses and writes


class _Writer:
    """Writes batches on a background thread while the caller generates the next one.

    Generation is numpy and Python; writing is the database's own work (DuckDB compresses and writes
    row groups, PostgreSQL parses COPY) and mostly runs without the GIL, so on two cores the two overlap.
    At most ``depth`` batches wait in the queue, so memory stays bounded at any size. The connection is
    used by the writer thread only, until :meth:`close` returns.

    Rows are inserted in whole row groups: each table's rows are held back until at least
    :data:`ROW_GROUP` have arrived, then the largest multiple of it is inserted and the rest kept for the
    next batch (:meth:`close` writes the remainders). DuckDB writes a full row group once, compressed,
    straight to the file; a partial one is rewritten at every commit that appends to it, which made
    each batch's commit re-compress up to a row group per table. Row order within a table is unchanged.
    """

    def __init__(self, conn: sa.Connection, depth: int = 1) -> None:
        self.rows = 0
        self._conn = conn
        self._tables = {t.name: t for t in s.metadata.sorted_tables}
        self._pending: dict[str, list[pd.DataFrame]] = {}
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="demo-writer", daemon=True)
        self._thread.start()

    def _insert(self, name: str, frame: pd.DataFrame) -> None:
        self.rows += bulk_insert(self._conn, self._tables[name], frame)

    def _add(self, name: str, frame: pd.DataFrame) -> None:
        parts = self._pending.setdefault(name, [])
        parts.append(frame)
        held = sum(len(part) for part in parts)
        if held < ROW_GROUP:
            return
        whole = pd.concat(parts, ignore_index=True) if len(parts) > 1 else frame
        cut = held - held % ROW_GROUP
        self._insert(name, whole.iloc[:cut])
        self._pending[name] = [whole.iloc[cut:].copy()]  # copy: do not keep the whole batch alive

    def _flush(self) -> None:
        for name, parts in self._pending.items():
            for part in parts:
                self._insert(name, part)
        self._pending = {}

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None or self._stop:
                continue  # keep draining so the producer never blocks on a dead writer
            frames, commit = item
            try:
                if frames is None:
                    self._flush()
                else:
                    for name, frame in frames:
                        self._add(name, frame)
                del frames, item  # release the batch before waiting for the next one
                if commit is not None:
                    commit()
            except BaseException as exc:  # re-raised in the caller's thread
                self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, frames: list[tuple[str, pd.DataFrame]], commit: Callable[[], None] | None = None) -> None:
        self._raise()
        self._queue.put((frames, commit))

    def close(self) -> None:
        """Write the held-back remainders, wait until everything is written; raise the writer's error."""
        self._queue.put((None, None))
        self._queue.put(None)
        self._thread.join()
        self._raise()

    def abort(self) -> None:
        """Stop after the batch being written (the caller is failing and will roll back)."""
        self._stop = True
        self._queue.put(None)
        self._thread.join()


def generate_demo(conn: sa.Connection, *, claims: int = 200_000, seed: int = 1,
                  progress: bool = True, checkpoint: Callable[[], None] | None = None) -> DemoSummary:
    """Fill an empty warehouse (schema already created) with the demo world, inside the caller's
    transaction. ``claims`` is the number of distinct medical claims; the output depends only on
    ``(claims, seed)``. ``checkpoint`` runs after each batch (see :func:`rebuild_warehouse`).

    Batches are generated here and written by a :class:`_Writer` thread, so generating batch b + 1
    overlaps with writing batch b; nothing else may use ``conn`` until this returns."""
    if isinstance(claims, bool) or not isinstance(claims, int | np.integer):
        raise BadInput(f"claims must be a whole number, not {claims!r}")
    if not MIN_CLAIMS <= claims <= MAX_CLAIMS:
        raise BadInput(f"claims must be between {MIN_CLAIMS:,} and {MAX_CLAIMS:,} (got {claims:,})")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise BadInput(f"seed must be a non-negative whole number, not {seed!r}")
    claims, seed = int(claims), int(seed)
    started = time.perf_counter()
    subscribers = max(int(round(claims * SUBSCRIBERS_PER_CLAIM)), 20)
    batches = -(-subscribers // SUBSCRIBERS_PER_BATCH)
    member_claims = int(round(claims * MEMBER_CLAIM_SHARE))
    own_claims = claims - member_claims
    ctr = _Counters()
    remits = _Remittances()
    n_lines = n_rx = n_members = 0
    writer = _Writer(conn)
    try:
        writer.put(list(_reference_frames().items()))
        with tqdm(total=claims, unit=" claims", file=sys.stderr, disable=not progress, desc="demo warehouse",
                  dynamic_ncols=True) as bar:
            for b in range(batches):
                rng = np.random.default_rng([seed, b])
                n_sub = _split(subscribers, batches, b)
                ppl, elig, tiers = _members(rng, n_sub, sub_offset=subscribers * b // batches,
                                            person_offset=ctr.person)
                ctr.person += ppl.n
                n_members += ppl.n
                batch = [("eligibility", elig), ("member_coverage_tier", tiers)]
                del elig, tiers
                own_b = _split(own_claims, batches, b)
                per_practice = rng.multinomial(own_b, np.array([p.share for p in PRACTICES]))
                patients, home = _patients(rng, per_practice, ctr.person)
                ctr.person += patients.n
                n_member_people = ppl.n
                everyone = _People.concat(ppl, patients)
                home_all = np.concatenate([np.full(n_member_people, -1), home])

                built = _Claims()
                _member_claims(rng, everyone, _split(member_claims, batches, b), built)
                _own_patient_claims(rng, everyone, home_all, per_practice, built)
                cl, ln = built.finish()
                del built
                nb = len(cl["person"])
                claim_ids = _ids("CLM", ctr.take("claim", nb), 10)
                pr = _price(rng, cl, ln, everyone)
                frames, final = _revenue_cycle(rng, cl, ln, pr, everyone, claim_ids, ctr, remits)
                medical = _medical_frame(rng, cl, ln, pr, everyone, claim_ids, final)
                n_lines += len(medical)
                batch.append(("medical_claim", medical))
                del medical, cl, ln, pr, final, claim_ids
                for name in ("claim_status_event", "claim_payment", "claim_adjustment", "service_line_payment",
                             "remark_code", "patient_payment", "claim_write_off", "eligibility_check"):
                    if name in frames:
                        batch.append((name, frames[name]))
                del frames
                rx = _pharmacy(rng, everyone, ctr)
                n_rx += len(rx)
                batch.append(("pharmacy_claim", rx))
                del rx, everyone
                writer.put(batch, checkpoint)
                del batch
                bar.update(nb)

            remittance, plb = _remittance_frames(np.random.default_rng([seed, 1_000_003]), remits)
            writer.put([("remittance", remittance), ("provider_adjustment", plb)])
            del remittance, plb
            writer.close()
    except BaseException:
        writer.abort()
        raise
    rows = writer.rows
    tables = {t.name: t for t in s.metadata.sorted_tables}
    # The demo is every tenant's data: its "data as of" is everyone's.
    rows += bulk_insert(conn, tables["data_load_scope"], pd.DataFrame(
        {"load_id": [f"demo-{claims}-{seed}"], "kind": ["all"], "entity_id": [""]}))
    bulk_insert(conn, tables["data_load"], pd.DataFrame({
        "load_id": [f"demo-{claims}-{seed}"], "source": ["demo"], "file_name": [None], "file_sha256": [None],
        "row_count": [rows + 1], "loaded_at": [LOADED_AT], "data_as_of": [DEMO_AS_OF],
    }))
    return DemoSummary(
        claims=ctr.claim, claim_lines=n_lines, pharmacy_claims=n_rx, members=n_members,
        practices=tuple(p.practice_id for p in PRACTICES), employers=tuple(e.employer_id for e in EMPLOYERS),
        as_of=DEMO_AS_OF, seconds=round(time.perf_counter() - started, 2),
    )
