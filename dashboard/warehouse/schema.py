"""Warehouse tables (SQLAlchemy Core), created by :func:`dashboard.warehouse.engine.create_schema`.

Two families:

* **Tuva Project input layer** (``medical_claim``, ``pharmacy_claim``, ``eligibility``): same column
  names, types and meanings as the Tuva data dictionary (checked against tuva-health/tuva's input-layer
  YAML, 2026), so claims already mapped to Tuva load unchanged. Untyped Tuva flags are kept as text.
  A practice is ``medical_claim.billing_tin``; an employer is ``eligibility.group_id``.
* **Revenue-cycle extension**, shaped after X12, for what Tuva does not carry: claim submission and
  status history (837 / 277CA / appeals), remittances (835 BPR/TRN, CLP, CAS, SVC, LQ, PLB), patient
  payments, write-offs, eligibility checks (270/271), reference tables (practices, payers, employers,
  plans, coverage tiers), and load bookkeeping.

Every revenue-cycle row carries ``practice_id`` (the billing TIN) so access scoping is one predicate.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
)

metadata = MetaData()

Money = Numeric(14, 2)


def _numbered(prefix: str, count: int, type_) -> list[Column]:
    return [Column(f"{prefix}_{i}", type_) for i in range(1, count + 1)]


# --- Tuva Project input layer -------------------------------------------------------------------

medical_claim = Table(
    "medical_claim",
    metadata,
    Column("claim_id", String, nullable=False),
    Column("claim_line_number", Integer, nullable=False),
    Column("claim_type", String),  # professional | institutional | undetermined
    Column("person_id", String, nullable=False),
    Column("member_id", String),
    Column("payer", String),
    Column("plan", String),
    Column("claim_start_date", Date),
    Column("claim_end_date", Date),
    Column("claim_line_start_date", Date),
    Column("claim_line_end_date", Date),
    Column("admission_date", Date),
    Column("discharge_date", Date),
    Column("admit_source_code", String),
    Column("admit_type_code", String),
    Column("discharge_disposition_code", String),
    Column("place_of_service_code", String),
    Column("bill_type_code", String),
    Column("drg_code_type", String),
    Column("drg_code", String),
    Column("revenue_center_code", String),
    Column("service_unit_quantity", Numeric(12, 2)),
    Column("hcpcs_code", String),
    *_numbered("hcpcs_modifier", 5, String),
    Column("rendering_npi", String),
    Column("rendering_tin", String),
    Column("billing_npi", String),
    Column("billing_tin", String),
    Column("facility_npi", String),
    Column("paid_date", Date),
    Column("paid_amount", Money),
    Column("allowed_amount", Money),
    Column("charge_amount", Money),
    Column("coinsurance_amount", Money),
    Column("copayment_amount", Money),
    Column("deductible_amount", Money),
    Column("total_cost_amount", Money),
    Column("diagnosis_code_type", String),
    *_numbered("diagnosis_code", 25, String),
    *_numbered("diagnosis_poa", 25, String),
    Column("procedure_code_type", String),
    *_numbered("procedure_code", 25, String),
    *_numbered("procedure_date", 25, Date),
    Column("in_network_flag", Boolean),
    Column("data_source", String, nullable=False),
    Column("file_name", String),
    Column("file_date", Date),
    Column("ingest_datetime", DateTime),
    PrimaryKeyConstraint("claim_id", "claim_line_number", "data_source"),
)

pharmacy_claim = Table(
    "pharmacy_claim",
    metadata,
    Column("claim_id", String, nullable=False),
    Column("claim_line_number", Integer, nullable=False),
    Column("person_id", String, nullable=False),
    Column("member_id", String),
    Column("payer", String),
    Column("plan", String),
    Column("prescribing_provider_npi", String),
    Column("dispensing_provider_npi", String),
    Column("dispensing_date", Date),
    Column("ndc_code", String),
    Column("quantity", Numeric(12, 3)),
    Column("days_supply", Integer),
    Column("refills", Integer),
    Column("paid_date", Date),
    Column("paid_amount", Money),
    Column("allowed_amount", Money),
    Column("charge_amount", Money),
    Column("coinsurance_amount", Money),
    Column("copayment_amount", Money),
    Column("deductible_amount", Money),
    Column("in_network_flag", Boolean),
    Column("data_source", String, nullable=False),
    Column("file_name", String),
    Column("file_date", Date),
    Column("ingest_datetime", DateTime),
    PrimaryKeyConstraint("claim_id", "claim_line_number", "data_source"),
)

eligibility = Table(
    "eligibility",
    metadata,
    Column("person_id", String, nullable=False),
    Column("member_id", String, nullable=False),
    Column("subscriber_id", String),
    Column("gender", String),
    Column("race", String),
    Column("birth_date", Date),
    Column("death_date", Date),
    Column("death_flag", Boolean),
    Column("enrollment_start_date", Date, nullable=False),
    Column("enrollment_end_date", Date, nullable=False),
    Column("payer", String, nullable=False),
    Column("payer_type", String),
    Column("plan", String, nullable=False),
    Column("original_reason_entitlement_code", String),
    Column("dual_status_code", String),
    Column("medicare_status_code", String),
    Column("group_id", String),
    Column("group_name", String),
    Column("first_name", String),
    Column("middle_name", String),
    Column("last_name", String),
    Column("name_suffix", String),
    Column("social_security_number", String),
    Column("subscriber_relation", String),
    Column("address", String),
    Column("city", String),
    Column("state", String),
    Column("zip_code", String),
    Column("phone", String),
    Column("email", String),
    Column("ethnicity", String),
    Column("enrollment_status", String),
    Column("hospice_flag", String),
    Column("institutional_snp_flag", String),
    Column("medicaid_indicator", Integer),
    Column("long_term_institutional_flag", String),
    Column("part_d_raf_type", String),
    Column("low_income_subsidy_indicator", Integer),
    Column("metal_level", String),
    Column("csr_indicator", Integer),
    Column("enrollment_duration_months", Integer),
    Column("esrd_status", Integer),
    Column("transplant_duration_months", Integer),
    Column("data_source", String, nullable=False),
    Column("file_name", String),
    Column("file_date", Date),
    Column("ingest_datetime", DateTime),
    PrimaryKeyConstraint(
        "person_id", "member_id", "enrollment_start_date", "enrollment_end_date", "payer", "plan",
        "data_source",
    ),
)

TUVA_TABLES = (medical_claim, pharmacy_claim, eligibility)

# --- Reference tables ---------------------------------------------------------------------------

practice = Table(
    "practice",
    metadata,
    Column("practice_id", String, primary_key=True),  # billing TIN
    Column("practice_name", String, nullable=False),
    Column("specialty", String),
    Column("billing_npi", String),
    Column("state", String),
    Column("premium_payment_portal", Boolean, nullable=False, default=False),
)

payer = Table(
    "payer",
    metadata,
    Column("payer_id", String, primary_key=True),  # the value used in medical_claim.payer
    Column("payer_name", String, nullable=False),
    Column("payer_type", String),  # commercial | medicare | medicaid | self-pay
)

# What a practice's contract with a payer allows, where it differs from definitions.PAYER_RULE_DEFAULTS: days
# from a denial to the appeal deadline, and days without an answer after which a claim needs a follow-up call.
# Set with `dashboard payers set`.
payer_rule = Table(
    "payer_rule",
    metadata,
    Column("payer_id", String, primary_key=True),
    Column("appeal_days", Integer),
    Column("follow_up_days", Integer),
    Column("changed_at", DateTime, nullable=False),  # part of the data version: cached worklists are redone
)

# A practice's own payment-channel terms, where they differ from the published ones (practice.PORTAL_FEE_RATE and
# PORTAL_FEE_CAP): the share of each EFT payment and the monthly cap. Set with `dashboard fees set`.
payment_channel_fee = Table(
    "payment_channel_fee",
    metadata,
    Column("practice_id", String, primary_key=True),
    Column("rate", Numeric(8, 6), nullable=False),
    Column("monthly_cap", Money),  # NULL: no cap
    Column("changed_at", DateTime, nullable=False),
)

employer = Table(
    "employer",
    metadata,
    Column("employer_id", String, primary_key=True),  # eligibility.group_id
    Column("employer_name", String, nullable=False),
    Column("industry", String),
    Column("state", String),
)

plan = Table(
    "plan",
    metadata,
    Column("plan_id", String, primary_key=True),  # eligibility.plan
    Column("employer_id", String),
    Column("plan_name", String, nullable=False),
    Column("payer", String),
    Column("plan_type", String),  # PPO | HMO | HDHP ...
)

coverage_tier = Table(
    "coverage_tier",
    metadata,
    Column("tier_code", String, primary_key=True),  # 834 HD05 coverage level code
    Column("tier_name", String, nullable=False),
)

# Coverage tier of an eligibility span; Tuva's eligibility has no tier column.
member_coverage_tier = Table(
    "member_coverage_tier",
    metadata,
    Column("person_id", String, nullable=False),
    Column("member_id", String, nullable=False),
    Column("enrollment_start_date", Date, nullable=False),
    Column("tier_code", String, nullable=False),
    PrimaryKeyConstraint("person_id", "member_id", "enrollment_start_date"),
)

# --- Revenue cycle (X12-shaped) -----------------------------------------------------------------

# 837 submission, 277CA acknowledgement, adjudication and appeal events of a claim.
claim_status_event = Table(
    "claim_status_event",
    metadata,
    Column("claim_id", String, nullable=False),
    Column("event_seq", Integer, nullable=False),
    Column("practice_id", String, nullable=False),
    Column("event_type", String, nullable=False),  # submitted | accepted | rejected | appealed
    Column("event_date", Date, nullable=False),
    Column("source", String),  # 837 | 277CA | manual
    Column("status_code", String),  # e.g. 277CA STC category A1/A3/A7
    Column("detail", String),
    PrimaryKeyConstraint("claim_id", "event_seq"),
)

# 835 BPR/TRN: one payment (EFT or check) from a payer to a payee.
remittance = Table(
    "remittance",
    metadata,
    Column("remittance_id", String, primary_key=True),
    Column("practice_id", String, nullable=False),  # payee TIN
    Column("payer_id", String),
    Column("payer_name", String),
    Column("trace_number", String, nullable=False),  # TRN02: EFT trace or check number
    Column("payer_identifier", String),  # TRN03
    Column("method", String, nullable=False),  # BPR04: ACH | CHK | NON | FWT | BOP
    Column("payment_date", Date, nullable=False),  # BPR16
    Column("amount", Money, nullable=False),  # BPR02
    Column("credit_debit", String),  # BPR03 C | D
    Column("source_file", String),
)

# 835 CLP loop: one adjudication of one claim.
claim_payment = Table(
    "claim_payment",
    metadata,
    Column("claim_payment_id", String, primary_key=True),
    Column("remittance_id", String, nullable=False),
    Column("practice_id", String, nullable=False),
    Column("claim_id", String, nullable=False),  # CLP01 patient control number
    Column("status_code", String, nullable=False),  # CLP02
    Column("charge_amount", Money, nullable=False),  # CLP03
    Column("paid_amount", Money, nullable=False),  # CLP04
    Column("patient_responsibility", Money),  # CLP05
    Column("filing_indicator", String),  # CLP06
    Column("payer_claim_number", String),  # CLP07
    Column("received_date", Date),  # DTM*050
    Column("service_date", Date),  # DTM*232 / first service line date
    Column("patient_name", String),  # NM1*QC, shown to the practice only
)

# 835 CAS: adjustments at claim level (line_number 0) or service-line level.
claim_adjustment = Table(
    "claim_adjustment",
    metadata,
    Column("claim_payment_id", String, nullable=False),
    Column("line_number", Integer, nullable=False),
    Column("adjustment_seq", Integer, nullable=False),
    Column("practice_id", String, nullable=False),
    Column("group_code", String, nullable=False),  # CO | PR | OA | PI | CR
    Column("carc", String, nullable=False),  # claim adjustment reason code
    Column("amount", Money, nullable=False),
    Column("quantity", Numeric(12, 2)),
    PrimaryKeyConstraint("claim_payment_id", "line_number", "adjustment_seq"),
)

# 835 SVC loop.
service_line_payment = Table(
    "service_line_payment",
    metadata,
    Column("claim_payment_id", String, nullable=False),
    Column("line_number", Integer, nullable=False),
    Column("practice_id", String, nullable=False),
    Column("procedure_qualifier", String),
    Column("procedure_code", String),
    Column("modifiers", String),
    Column("charge_amount", Money, nullable=False),
    Column("paid_amount", Money, nullable=False),
    Column("units", Numeric(12, 2)),
    Column("service_date", Date),
    Column("control_number", String),  # REF*6R
    PrimaryKeyConstraint("claim_payment_id", "line_number"),
)

# 835 LQ (and MOA) remark codes.
remark_code = Table(
    "remark_code",
    metadata,
    Column("claim_payment_id", String, nullable=False),
    Column("line_number", Integer, nullable=False),
    Column("remark_seq", Integer, nullable=False),
    Column("practice_id", String, nullable=False),
    Column("qualifier", String),  # HE (RARC) | RX (NCPDP reject)
    Column("code", String, nullable=False),
    PrimaryKeyConstraint("claim_payment_id", "line_number", "remark_seq"),
)

# 835 PLB: provider-level adjustments (interest, forward balances, recoupments).
provider_adjustment = Table(
    "provider_adjustment",
    metadata,
    Column("remittance_id", String, nullable=False),
    Column("adjustment_seq", Integer, nullable=False),
    Column("practice_id", String, nullable=False),
    Column("provider_id", String),
    Column("fiscal_period_date", Date),
    Column("reason_code", String, nullable=False),
    Column("reference", String),
    Column("amount", Money, nullable=False),
    PrimaryKeyConstraint("remittance_id", "adjustment_seq"),
)

# Payments by patients; a refund is a negative amount.
patient_payment = Table(
    "patient_payment",
    metadata,
    Column("patient_payment_id", String, primary_key=True),
    Column("practice_id", String, nullable=False),
    Column("claim_id", String, nullable=False),
    Column("person_id", String),
    Column("payment_date", Date, nullable=False),
    Column("amount", Money, nullable=False),
    Column("channel", String),  # portal | card | cash | check | payment_plan
)

# Balances the practice writes off (bad debt, timely filing, small balance).
claim_write_off = Table(
    "claim_write_off",
    metadata,
    Column("write_off_id", String, primary_key=True),
    Column("practice_id", String, nullable=False),
    Column("claim_id", String, nullable=False),
    Column("write_off_date", Date, nullable=False),
    Column("amount", Money, nullable=False),
    Column("reason", String),
)

# 270/271 eligibility inquiries; status 'pending' means no 271 yet.
eligibility_check = Table(
    "eligibility_check",
    metadata,
    Column("check_id", String, primary_key=True),
    Column("practice_id", String, nullable=False),
    Column("person_id", String),
    Column("member_id", String),
    Column("payer_id", String),
    Column("service_date", Date),
    Column("requested_at", DateTime, nullable=False),
    Column("responded_at", DateTime),
    Column("status", String, nullable=False),  # active | inactive | pending | error
    Column("trace_number", String),  # TRN02
)

# 834 maintenance as received, and what it did to the eligibility spans (the audit trail of a span).
enrollment_change = Table(
    "enrollment_change",
    metadata,
    Column("change_id", String, primary_key=True),
    Column("source_file", String, nullable=False),
    Column("segment", String),  # INS#n / HD#n of the change
    Column("employer_id", String, nullable=False),  # REF*1L, else N1*P5 N104
    Column("person_id", String, nullable=False),
    Column("subscriber_id", String, nullable=False),  # REF*0F
    Column("relationship_code", String),  # INS02: 18 self, 01 spouse, 19 child
    Column("maintenance_type", String, nullable=False),  # INS03 / HD01: 001 021 024 025 030
    Column("maintenance_reason", String),  # INS04: e.g. 07 termination of benefits, 28 initial enrollment
    Column("insurance_line", String),  # HD03: HLT DEN VIS HMO PPO ...
    Column("plan", String),
    Column("coverage_level", String),  # HD05: EMP ESP ECH FAM ...
    Column("effective_date", Date),
    Column("action", String, nullable=False),  # what was applied to the spans
)

# --- Bookkeeping --------------------------------------------------------------------------------

data_load = Table(
    "data_load",
    metadata,
    Column("load_id", String, primary_key=True),
    Column("source", String, nullable=False),  # demo | tuva | x12-835 | x12-834
    Column("file_name", String),
    Column("file_sha256", String),
    Column("row_count", Integer, nullable=False),
    Column("loaded_at", DateTime, nullable=False),
    Column("data_as_of", Date),
)

# Which tenants each load touched, written in the load's own transaction, so "data as of" can be shown
# per tenant (another practice's load date is theirs alone). kind: practice (billing TIN) | employer
# (group id) | all (the demo: every practice and employer); entity_id is '' for all. A load without rows
# here (made before this table existed) is shown to admins only.
LOAD_SCOPE_KINDS = ("practice", "employer", "all")
data_load_scope = Table(
    "data_load_scope",
    metadata,
    Column("load_id", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("entity_id", String, nullable=False),
    PrimaryKeyConstraint("load_id", "kind", "entity_id"),
)

calendar_month = Table(
    "calendar_month",
    metadata,
    Column("month_start", Date, primary_key=True),
    Column("month_end", Date, nullable=False),
    Column("next_month_start", Date, nullable=False),
    Column("days_in_month", Integer, nullable=False),
)

CALENDAR_FIRST_YEAR = 2000
CALENDAR_LAST_YEAR = 2045


# The facts the marts are built from: what a load writes and a mart refresh reads (and so what PostgreSQL must
# have statistics on before it plans a refresh: see engine.analyze_stale).
FACT_TABLES = (
    medical_claim, pharmacy_claim, eligibility, member_coverage_tier, claim_status_event, remittance,
    claim_payment, claim_adjustment, service_line_payment, remark_code, provider_adjustment, patient_payment,
    claim_write_off, eligibility_check, enrollment_change,
)

# Indexes for PostgreSQL, where a load refreshes one practice's or employer's marts (a slice of the
# facts, found by these) and the claim-level worklists page through one practice's rows. DuckDB scans
# columns fast enough and an ART index costs it memory at build time, so these are PostgreSQL only.
# The three date indexes serve the marts' horizon (semantic._horizon_select: the newest payment and
# write-off date), which every refresh asks once per mart: max() is then an index lookup, not a scan of
# every patient payment (~0.2 s a time at 1M claims).
FACT_INDEXES = tuple(
    Index(f"ix_{table.name}_{'_'.join(columns)}", *(table.c[c] for c in columns)).ddl_if(dialect="postgresql")
    for table, columns in (
        (medical_claim, ("billing_tin", "claim_id")), (medical_claim, ("person_id",)),
        # claim search (dashboard.claims): a patient's member id, a payer claim number, an ERA trace number
        (medical_claim, ("member_id",)), (claim_payment, ("payer_claim_number",)), (remittance, ("trace_number",)),
        (pharmacy_claim, ("person_id",)),
        (eligibility, ("group_id",)), (eligibility, ("person_id",)),
        (claim_status_event, ("practice_id", "claim_id")),
        (remittance, ("practice_id", "payment_date")), (remittance, ("payment_date",)),
        (claim_payment, ("practice_id", "claim_id")), (claim_payment, ("remittance_id",)),
        (claim_adjustment, ("practice_id",)), (claim_adjustment, ("claim_payment_id",)),
        (service_line_payment, ("claim_payment_id",)), (remark_code, ("claim_payment_id",)),
        (patient_payment, ("practice_id", "claim_id")), (patient_payment, ("payment_date",)),
        (claim_write_off, ("practice_id", "claim_id")), (claim_write_off, ("write_off_date",)),
        (eligibility_check, ("practice_id",)), (eligibility_check, ("practice_id", "service_date")),
        (member_coverage_tier, ("person_id",)),
    )
)
