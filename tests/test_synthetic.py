"""Demo warehouse generator (dashboard.warehouse.synthetic) on DuckDB: determinism, size, X12 balancing,
consistency between tables, and KPI realism.

The KPIs are recomputed here with plain pandas from the base tables, after /work/shared/docs/kpi-reference.md:

* A/R at DEMO_AS_OF = Σ charges − payer paid − contractual CAS (CO-45/A2/253/42/59/131/94) − write-offs −
  patient payments (refunds are negative payments). Denial CAS and PR do not reduce A/R.
* Days in A/R = A/R ÷ (charges with dates of service in the last 3 months ÷ 92 days).
* % A/R over 90 days = A/R of claims with a date of service more than 90 days before DEMO_AS_OF ÷ A/R.
* Initial denial rate = claims whose first 835 is a denial (CLP02 = 4, or paid 0 with a denial CAS) ÷ claims
  first adjudicated.
* Clean-claim rate = claims whose first 277CA answer is 'accepted' ÷ claims with a 277CA answer.
* Net collection rate = (payer paid + patient payments net of refunds) ÷ (charges − contractual), over
  claims with a date of service more than 120 days before DEMO_AS_OF.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from dashboard.errors import BadInput
from dashboard.warehouse import schema as s
from dashboard.warehouse import semantic
from dashboard.warehouse.engine import create_schema, writer_engine
from dashboard.warehouse.synthetic import DEMO_AS_OF, OPEN_SPAN_END, WINDOW_START, DemoSummary, generate_demo

CLAIMS, SEED = 20_000, 7
AS_OF = pd.Timestamp(DEMO_AS_OF)
CONTRACTUAL = ("45", "A2", "253", "42", "59", "131", "94")
COST_SHARE = ("1", "2", "3", "66")
# the tables a demo fills (not the calendar, not the marts and their state, which are derived from these)
TABLES = [t.name for t in s.metadata.sorted_tables
          if t.name != "calendar_month" and t.name not in (*semantic.MARTS, semantic.mart_state.name)]
MONEY = ("amount", "paid_amount", "allowed_amount", "charge_amount", "coinsurance_amount", "copayment_amount",
         "deductible_amount", "total_cost_amount", "patient_responsibility")


def build(path: Path, *, claims: int = CLAIMS, seed: int = SEED,
          progress: bool = False) -> tuple[Engine, DemoSummary]:
    engine = writer_engine(f"duckdb:///{path}")
    create_schema(engine)
    with engine.begin() as conn:
        summary = generate_demo(conn, claims=claims, seed=seed, progress=progress)
    return engine, summary


def read_tables(engine: Engine, names=TABLES) -> dict[str, pd.DataFrame]:
    out = {}
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        for name in names:
            frame = raw.sql(f'SELECT * FROM "{name}" ORDER BY ALL').df()
            for col in frame.columns:
                if col in MONEY:
                    frame[col] = frame[col].astype(float)
            out[name] = frame
    return out


def digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()).hexdigest()


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[DemoSummary, dict[str, pd.DataFrame]]:
    engine, summary = build(tmp_path_factory.mktemp("demo") / "w.duckdb")
    try:
        return summary, read_tables(engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def t(demo) -> dict[str, pd.DataFrame]:
    return demo[1]


# --- KPI computation (plain pandas) ---------------------------------------------------------------

def practice_claims(t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per claim billed by a demo practice, with its ledger and first 835 / 277CA outcome."""
    mc = t["medical_claim"]
    mc = mc[mc["billing_tin"].isin(t["practice"]["practice_id"])]
    claims = mc.groupby("claim_id").agg(practice_id=("billing_tin", "first"), dos=("claim_start_date", "min"),
                                        charge=("charge_amount", "sum"))
    cp = t["claim_payment"].merge(t["remittance"][["remittance_id", "payment_date"]], on="remittance_id")
    cas = t["claim_adjustment"].merge(cp[["claim_payment_id", "claim_id"]], on="claim_payment_id")
    contractual = (cas["group_code"] == "CO") & cas["carc"].isin(CONTRACTUAL)
    cost_share = (cas["group_code"] == "PR") & cas["carc"].isin(COST_SHARE)
    claims["paid"] = cp.groupby("claim_id")["paid_amount"].sum()
    claims["contractual"] = cas[contractual].groupby("claim_id")["amount"].sum()
    claims["write_off"] = t["claim_write_off"].groupby("claim_id")["amount"].sum()
    claims["patient_paid"] = t["patient_payment"].groupby("claim_id")["amount"].sum()
    claims = claims.fillna({"paid": 0.0, "contractual": 0.0, "write_off": 0.0, "patient_paid": 0.0})
    claims["ar"] = claims["charge"] - claims["paid"] - claims["contractual"] - claims["write_off"] - claims[
        "patient_paid"]
    denial_amount = cas[~contractual & ~cost_share].groupby("claim_payment_id")["amount"].sum()
    first = cp.sort_values(["claim_id", "payment_date", "claim_payment_id"]).groupby("claim_id").head(1)
    first = first.set_index("claim_id")
    den = denial_amount.reindex(first["claim_payment_id"]).fillna(0).to_numpy()
    first_denied = (first["status_code"] == "4") | ((first["paid_amount"] == 0) & (den > 0))
    claims["first_denied"] = first_denied.reindex(claims.index)
    ev = t["claim_status_event"]
    ack = ev[ev["event_type"].isin(["accepted", "rejected"])].sort_values(["claim_id", "event_seq"])
    claims["first_ack"] = ack.groupby("claim_id")["event_type"].first().reindex(claims.index)
    return claims


def kpis(claims: pd.DataFrame) -> dict[str, float]:
    ar = claims["ar"].sum()
    last3 = claims[claims["dos"] >= pd.Timestamp("2026-08-01")]["charge"].sum() / 92
    old = claims[claims["dos"] < AS_OF - pd.Timedelta(days=90)]["ar"].sum()
    cohort = claims[claims["dos"] < AS_OF - pd.Timedelta(days=120)]
    adjudicated = claims["first_denied"].dropna().astype(bool)
    acked = claims["first_ack"].dropna()
    return {
        "days_in_ar": ar / last3,
        "ar_over_90": old / ar,
        "denial_rate": adjudicated.mean(),
        "clean_claim_rate": (acked == "accepted").mean(),
        "net_collection_rate": (cohort["paid"].sum() + cohort["patient_paid"].sum())
        / (cohort["charge"].sum() - cohort["contractual"].sum()),
    }


@pytest.fixture(scope="module")
def practice_kpis(t) -> pd.DataFrame:
    claims = practice_claims(t)
    rows = {pid: kpis(group) for pid, group in claims.groupby("practice_id")}
    rows["ALL"] = kpis(claims)
    return pd.DataFrame(rows).T


@pytest.mark.parametrize(("kpi", "low", "high"), [
    ("days_in_ar", 25, 60),
    ("denial_rate", 0.04, 0.15),
    ("clean_claim_rate", 0.85, 0.99),
    ("net_collection_rate", 0.90, 0.99),
    ("ar_over_90", 0.08, 0.30),
])
def test_practice_kpi_in_realistic_range(practice_kpis, kpi, low, high):
    assert len(practice_kpis) == 7  # six practices and the total
    values = practice_kpis[kpi]
    outside = values[(values < low) | (values > high)]
    assert outside.empty, f"{kpi} outside [{low}, {high}]:\n{practice_kpis.round(3)}"


def test_top_one_percent_of_members_carry_a_fifth_of_employer_spend(t):
    people = t["eligibility"]["person_id"].unique()
    medical = t["medical_claim"].groupby("person_id")["paid_amount"].sum()
    pharmacy = t["pharmacy_claim"].groupby("person_id")["paid_amount"].sum()
    spend = medical.reindex(people).fillna(0) + pharmacy.reindex(people).fillna(0)
    spend = spend.sort_values(ascending=False)
    top = math.ceil(len(spend) * 0.01)
    assert spend.iloc[:top].sum() / spend.sum() >= 0.20
    assert (spend >= 50_000).sum() >= top * 0.8, "about 1% of members are high-cost claimants ($50k+)"


# --- size, determinism, arguments ------------------------------------------------------------------

def test_claim_count_and_summary(demo):
    summary, t = demo
    mc = t["medical_claim"]
    assert abs(mc["claim_id"].nunique() - CLAIMS) <= CLAIMS * 0.01
    assert summary.claims == mc["claim_id"].nunique()
    assert summary.claim_lines == len(mc)
    assert summary.pharmacy_claims == len(t["pharmacy_claim"])
    assert summary.members == t["eligibility"]["person_id"].nunique()
    assert set(summary.practices) == set(t["practice"]["practice_id"])
    assert len(summary.practices) == 6
    assert set(summary.employers) == set(t["employer"]["employer_id"])
    assert len(summary.employers) == 5
    assert summary.as_of == DEMO_AS_OF
    assert summary.seconds > 0
    # ~55% of claims are employer members'; ~10–14k members per 200k claims
    member_claims = mc[mc["person_id"].isin(t["eligibility"]["person_id"])]["claim_id"].nunique()
    assert 0.50 <= member_claims / CLAIMS <= 0.60
    assert 1_000 <= summary.members <= 1_400


def test_data_load_row(t):
    load = t["data_load"]
    assert len(load) == 1
    row = load.iloc[0]
    assert row["source"] == "demo"
    assert row["row_count"] == sum(len(t[name]) for name in TABLES)
    assert pd.Timestamp(row["data_as_of"]) == AS_OF
    assert pd.Timestamp(row["loaded_at"]).date() == DEMO_AS_OF


def test_same_seed_same_data_other_seed_different(t, tmp_path):
    engine, _ = build(tmp_path / "again.duckdb")
    try:
        again = read_tables(engine)
    finally:
        engine.dispose()
    for name in TABLES:
        assert len(again[name]) == len(t[name]), name
        assert digest(again[name]) == digest(t[name]), f"{name} differs between two runs with the same seed"
    engine, _ = build(tmp_path / "other.duckdb", seed=SEED + 1)
    try:
        other = read_tables(engine, ["medical_claim", "claim_payment", "eligibility"])
    finally:
        engine.dispose()
    for name in ("medical_claim", "claim_payment", "eligibility"):
        assert digest(other[name]) != digest(t[name]), f"{name} identical for different seeds"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"claims": 999}, "between 1,000 and 20,000,000"),
    ({"claims": 20_000_001}, "between 1,000 and 20,000,000"),
    ({"claims": 0}, "between"),
    ({"claims": 1500.5}, "whole number"),
    ({"claims": "200000"}, "whole number"),
    ({"claims": True}, "whole number"),
    ({"claims": 5_000, "seed": -1}, "seed"),
    ({"claims": 5_000, "seed": "x"}, "seed"),
])
def test_bad_arguments_raise_bad_input(tmp_path, kwargs, message):
    engine = writer_engine(f"duckdb:///{tmp_path / 'bad.duckdb'}")
    create_schema(engine)
    try:
        with pytest.raises(BadInput, match=message), engine.begin() as conn:
            generate_demo(conn, progress=False, **kwargs)
        with engine.connect() as conn:
            assert conn.execute(s.medical_claim.select()).first() is None
    finally:
        engine.dispose()


def test_progress_bar_on_stderr(tmp_path, capsys):
    engine, summary = build(tmp_path / "small.duckdb", claims=1_000, seed=3, progress=True)
    engine.dispose()
    captured = capsys.readouterr()
    assert "1000/1000" in captured.err
    assert captured.out == ""
    assert summary.claims == 1_000


# --- X12 balancing and cross-table consistency ------------------------------------------------------

def test_every_remittance_balances(t):
    rem = t["remittance"].set_index("remittance_id")
    paid = t["claim_payment"].groupby("remittance_id")["paid_amount"].sum()
    plb = t["provider_adjustment"].groupby("remittance_id")["amount"].sum()
    expected = paid.reindex(rem.index).fillna(0) - plb.reindex(rem.index).fillna(0)
    assert np.allclose(rem["amount"], expected, atol=0.005), "BPR02 != Σ CLP04 − Σ PLB"
    assert set(rem["method"]) <= {"ACH", "CHK", "NON"}
    assert "CHK" in set(rem["method"])
    assert (rem["amount"] >= 0).all()
    assert rem["trace_number"].notna().all()
    assert not rem.duplicated(["payer_id", "trace_number"]).any()
    # one ERA per practice, payer and payment date
    assert not rem.duplicated(["practice_id", "payer_id", "payment_date"]).any()
    plb_all = t["provider_adjustment"]
    assert set(plb_all["reason_code"]) == {"L6", "WO", "FB"}
    assert (plb_all.loc[plb_all["reason_code"] == "L6", "amount"] < 0).all(), "interest increases the payment"
    assert (plb_all.loc[plb_all["reason_code"] != "L6", "amount"] > 0).all()


def test_claim_payment_charge_minus_paid_equals_adjustments(t):
    cp = t["claim_payment"].set_index("claim_payment_id")
    cas = t["claim_adjustment"]
    total = cas.groupby("claim_payment_id")["amount"].sum().reindex(cp.index).fillna(0)
    assert np.allclose(cp["charge_amount"] - cp["paid_amount"], total, atol=0.005), "CLP03 − CLP04 != Σ CAS"
    pr = cas[cas["group_code"] == "PR"].groupby("claim_payment_id")["amount"].sum()
    pr = pr.reindex(cp.index).fillna(0)
    assert np.allclose(cp["patient_responsibility"], pr, atol=0.005), "CLP05 != Σ PR"
    # two-decimal amounts
    for frame, col in ((cp, "paid_amount"), (cas, "amount"), (t["patient_payment"], "amount")):
        assert np.allclose(frame[col] * 100, np.round(frame[col] * 100), atol=1e-6)
    # service lines of partially paid claims add up to the claim
    svc = t["service_line_payment"].groupby("claim_payment_id")[["charge_amount", "paid_amount"]].sum()
    assert len(svc) > 0
    assert np.allclose(svc["charge_amount"], cp.loc[svc.index, "charge_amount"], atol=0.005)
    assert np.allclose(svc["paid_amount"], cp.loc[svc.index, "paid_amount"], atol=0.005)


def test_medical_claim_lines_are_consistent(t):
    mc = t["medical_claim"]
    done = mc[mc["allowed_amount"].notna()]
    share = done["coinsurance_amount"] + done["copayment_amount"] + done["deductible_amount"]
    assert np.allclose(done["paid_amount"] + share, done["allowed_amount"], atol=0.005)
    assert (done["allowed_amount"] <= done["charge_amount"] + 0.005).all()
    parts = ["paid_amount", "coinsurance_amount", "copayment_amount", "deductible_amount"]
    assert (done[parts] >= 0).all().all()
    assert (mc["data_source"] == "demo").all()
    assert set(mc["claim_type"]) == {"professional", "institutional"}
    er = mc[mc["revenue_center_code"] == "0450"]
    assert set(er["bill_type_code"]) == {"131", "111"}, "ER visits, and stays admitted through the ER"
    assert (mc["place_of_service_code"] == "23").any()
    assert (mc["place_of_service_code"] == "81").any()
    ip = mc[mc["bill_type_code"] == "111"]
    assert ip["drg_code"].notna().all()
    assert ip["admission_date"].notna().all()
    assert (ip["discharge_date"] >= ip["admission_date"]).all()
    assert ip.groupby("claim_id").size().min() >= 3, "inpatient claims carry several revenue lines"
    office = mc["place_of_service_code"] == "11"
    em = mc[mc["hcpcs_code"].isin(["99212", "99213", "99214", "99215"]) & office]
    assert len(em) > 0
    # plans used verbatim on member claims
    members = mc[mc["person_id"].isin(t["eligibility"]["person_id"])]
    assert set(members["plan"]) <= set(t["plan"]["plan_id"])
    assert set(mc["payer"]) <= set(t["payer"]["payer_id"])


def test_medical_claim_reflects_final_adjudication(t):
    mc = t["medical_claim"]
    practices = set(t["practice"]["practice_id"])
    claims = mc[mc["billing_tin"].isin(practices)].groupby("claim_id").agg(
        paid=("paid_amount", "sum"), paid_any=("paid_amount", "count"), paid_date=("paid_date", "max"))
    cp = t["claim_payment"].merge(t["remittance"][["remittance_id", "payment_date"]], on="remittance_id")
    last = cp.sort_values(["claim_id", "payment_date", "claim_payment_id"]).groupby("claim_id").tail(1)
    last = last.set_index("claim_id")
    adjudicated = claims.index.isin(last.index)
    assert (claims.loc[~adjudicated, "paid_any"] == 0).all(), "unadjudicated claims have no paid amount"
    assert claims.loc[~adjudicated, "paid_date"].isna().all()
    both = claims[adjudicated].join(last[["paid_amount", "payment_date", "status_code"]])
    assert np.allclose(both["paid"], both["paid_amount"], atol=0.005)
    paid = both[both["paid_amount"] > 0]
    assert (paid["paid_date"] == paid["payment_date"]).all()
    assert both.loc[both["paid_amount"] == 0, "paid_date"].isna().sum() > 0  # denied: no paid date


def test_revenue_cycle_only_for_practice_claims(t):
    mc = t["medical_claim"]
    tin_of = mc.groupby("claim_id")["billing_tin"].first()
    practices = set(t["practice"]["practice_id"])
    for name in ("claim_status_event", "claim_payment", "patient_payment", "claim_write_off"):
        frame = t[name]
        assert frame["claim_id"].isin(tin_of.index).all(), name
        assert (tin_of.reindex(frame["claim_id"]).to_numpy() == frame["practice_id"].to_numpy()).all(), name
        assert frame["practice_id"].isin(practices).all(), name
    outside = mc[~mc["billing_tin"].isin(practices)]
    assert len(outside) > 0, "members also see hospitals, labs and other providers"
    own = mc[mc["billing_tin"].isin(practices) & ~mc["person_id"].isin(t["eligibility"]["person_id"])]
    assert {"MEDICARE", "MEDICAID"} <= set(own["payer"]), "practices see their own Medicare/Medicaid patients"


def test_no_event_after_as_of(t):
    dated = {
        "claim_status_event": ["event_date"], "remittance": ["payment_date"],
        "patient_payment": ["payment_date"], "claim_write_off": ["write_off_date"],
        "eligibility_check": ["requested_at", "responded_at", "service_date"],
        "medical_claim": ["claim_start_date", "claim_end_date", "claim_line_end_date", "discharge_date",
                          "paid_date"],
        "pharmacy_claim": ["dispensing_date", "paid_date"],
        "eligibility": ["enrollment_start_date", "birth_date"],
        "claim_payment": ["received_date", "service_date"], "provider_adjustment": [],
    }
    limit = AS_OF + pd.Timedelta(days=1)  # timestamps on the as-of day itself are allowed
    for name, columns in dated.items():
        for col in columns:
            values = pd.to_datetime(t[name][col]).dropna()
            assert (values < limit).all(), f"{name}.{col} after {DEMO_AS_OF}: {values.max()}"
    starts = pd.to_datetime(t["medical_claim"]["claim_start_date"])
    assert (starts >= pd.Timestamp(WINDOW_START)).all()
    # claims still in flight at the as-of date stay open
    assert t["claim_payment"]["claim_id"].nunique() < practice_claims(t).shape[0]


# --- reference data, eligibility, pharmacy ---------------------------------------------------------

def test_reference_tables(t):
    practice = t["practice"]
    assert practice["practice_id"].str.fullmatch(r"\d{9}").all()
    assert practice["premium_payment_portal"].sum() == 1
    assert set(practice["specialty"]) == {"family medicine", "orthopedics", "cardiology", "pediatrics",
                                          "dermatology", "behavioral health"}
    assert 7 <= len(t["payer"]) <= 9
    assert len(t["employer"]) == 5
    assert t["employer"]["employer_id"].str.fullmatch(r"GRP\d{4}").all()
    plans = t["plan"].groupby("employer_id").size()
    assert plans.between(1, 3).all()
    assert len(plans) == 5
    carriers = set(t["payer"].loc[t["payer"]["payer_type"] == "commercial", "payer_id"])
    assert set(t["plan"]["payer"]) <= carriers
    assert set(t["coverage_tier"]["tier_code"]) == {"EMP", "ESP", "ECH", "FAM"}


def test_eligibility_spans(t):
    el = t["eligibility"]
    assert set(el["plan"]) <= set(t["plan"]["plan_id"])
    assert set(el["group_id"]) == set(t["employer"]["employer_id"])
    for col in ("first_name", "last_name", "birth_date", "gender", "zip_code", "group_name", "payer",
                "payer_type", "address", "city", "state"):
        assert el[col].notna().all(), col
    assert set(el["gender"]) == {"male", "female"}
    assert set(el["subscriber_relation"]) == {"self", "spouse", "child"}
    subs = el[el["subscriber_relation"] == "self"]
    assert (subs["member_id"] == subs["subscriber_id"]).all()
    end = pd.to_datetime(el["enrollment_end_date"])
    assert ((end + pd.Timedelta(days=1)).dt.day == 1).all(), "spans end on the last day of a month"
    assert (end == pd.Timestamp(OPEN_SPAN_END)).any()
    assert (end < AS_OF).any(), "some members are termed"
    assert (el.groupby("person_id").size() > 1).any(), "some members are reinstated (second span)"
    # every span has a coverage tier; dependents inherit the subscriber's tier
    tiers = t["member_coverage_tier"]
    keys = ["person_id", "member_id", "enrollment_start_date"]
    merged = el.merge(tiers, on=keys, how="left")
    assert merged["tier_code"].notna().all()
    assert len(tiers) == len(el)
    assert (merged.groupby("subscriber_id")["tier_code"].nunique() == 1).all()
    # turnover: 12–18% of subscribers leave per year
    months = pd.date_range(WINDOW_START, DEMO_AS_OF, freq="MS")
    starts = pd.to_datetime(subs["enrollment_start_date"])
    sends = pd.to_datetime(subs["enrollment_end_date"])
    average = np.mean([((starts <= m) & (sends >= m)).sum() for m in months])
    terms = (sends < AS_OF).sum() / 2  # two years
    assert 0.10 <= terms / average <= 0.20


def test_claims_outside_enrollment_are_about_one_percent(t):
    el = t["eligibility"]
    mc = t["medical_claim"]
    member = mc[mc["person_id"].isin(el["person_id"])]
    claims = member.groupby("claim_id").agg(person_id=("person_id", "first"),
                                            start=("claim_start_date", "min"))
    claims["month"] = pd.to_datetime(claims["start"]).dt.to_period("M").dt.to_timestamp()
    spans = el[["person_id", "enrollment_start_date", "enrollment_end_date"]]
    x = claims.reset_index().merge(spans, on="person_id")
    month_end = x["month"] + pd.offsets.MonthEnd(0)
    x["covered"] = (pd.to_datetime(x["enrollment_start_date"]) <= month_end) & (
        pd.to_datetime(x["enrollment_end_date"]) >= x["month"])
    outside = 1 - x.groupby("claim_id")["covered"].any().mean()
    assert 0.005 <= outside <= 0.02


def test_pharmacy_claims(t):
    rx = t["pharmacy_claim"]
    el = t["eligibility"]
    assert rx["person_id"].isin(el["person_id"]).all()
    months = pd.date_range(WINDOW_START, DEMO_AS_OF, freq="MS")
    start, end = pd.to_datetime(el["enrollment_start_date"]), pd.to_datetime(el["enrollment_end_date"])
    member_months = sum(el.loc[(start <= m + pd.offsets.MonthEnd(0)) & (end >= m), "person_id"].nunique()
                        for m in months)
    assert 10 <= len(rx) / member_months * 12 <= 14
    assert (rx["paid_amount"] > 5_000).any(), "a few specialty fills over $5k"
    share = rx["coinsurance_amount"] + rx["copayment_amount"] + rx["deductible_amount"]
    assert np.allclose(rx["paid_amount"] + share, rx["allowed_amount"], atol=0.005)
    assert (rx["allowed_amount"] <= rx["charge_amount"] + 0.005).all()


# --- revenue-cycle behaviour ------------------------------------------------------------------------

def test_denials_appeals_and_write_offs(t):
    claims = practice_claims(t)
    denied = claims.index[claims["first_denied"].fillna(False).astype(bool)]
    ev = t["claim_status_event"]
    appealed = set(ev.loc[ev["event_type"] == "appealed", "claim_id"])
    share = np.isin(denied, list(appealed)).mean()
    assert 0.50 <= share <= 0.70, f"{share:.2f} of denials appealed"
    cp = t["claim_payment"]
    cas = t["claim_adjustment"].merge(cp[["claim_payment_id", "claim_id"]], on="claim_payment_id")
    never = set(cas.loc[cas["carc"].isin(["18", "29"]) & (cas["group_code"] == "CO"), "claim_id"])
    assert never
    assert not never & appealed, "duplicates and timely-filing denials are not appealed"
    carcs = set(cas.loc[cas["group_code"] == "CO", "carc"])
    assert {"16", "97", "50", "197", "18", "29", "27", "4", "45"} <= carcs
    assert (cp["status_code"] == "4").mean() < 0.03
    assert set(cp["status_code"]) <= {"1", "2", "4"}
    # a second 835 only follows an appeal, and appeals older than 120 days have been paid
    twice = set(cp.groupby("claim_id").size().loc[lambda n: n == 2].index)
    assert twice
    assert twice <= appealed
    old = ev["event_date"] < AS_OF - pd.Timedelta(days=120)
    old_appeals = set(ev.loc[(ev["event_type"] == "appealed") & old, "claim_id"])
    assert len(old_appeals & twice) >= 0.95 * len(old_appeals)
    wo = t["claim_write_off"]
    assert set(wo["reason"]) == {"denial", "bad_debt"}
    assert (wo["amount"] > 0).all()
    # partial payments: ~4% of paid first adjudications have a denied line
    first = cp.sort_values("claim_payment_id").groupby("claim_id").head(1)
    paid_first = first[first["paid_amount"] > 0]
    partial = paid_first["claim_payment_id"].isin(t["service_line_payment"]["claim_payment_id"]).mean()
    assert 0.02 <= partial <= 0.06


def test_status_events(t):
    ev = t["claim_status_event"]
    assert set(ev["event_type"]) == {"submitted", "accepted", "rejected", "appealed"}
    first = ev[ev["event_seq"] == 1]
    assert (first["event_type"] == "submitted").all()
    assert (first["source"] == "837").all()
    acks = ev[ev["event_type"].isin(["accepted", "rejected"])]
    assert (acks["source"] == "277CA").all()
    assert set(acks["status_code"]) == {"A2", "A7"}
    assert acks.loc[acks["event_type"] == "rejected", "detail"].notna().all()
    # event dates never go backwards within a claim
    ordered = ev.sort_values(["claim_id", "event_seq"])
    assert (ordered.groupby("claim_id")["event_date"].diff().dropna() >= pd.Timedelta(0)).all()
    # rejected claims are corrected and accepted later
    rejected = set(acks.loc[acks["event_type"] == "rejected", "claim_id"])
    again = (ev["event_type"] == "submitted") & (ev["event_seq"] > 1)
    resubmitted = ev[ev["claim_id"].isin(rejected) & again]
    assert resubmitted["claim_id"].nunique() >= 0.9 * len(rejected)


def test_patient_payments(t):
    pp = t["patient_payment"]
    assert set(pp["channel"]) == {"portal", "card", "check", "cash", "payment_plan"}
    refunds = pp[pp["amount"] < 0]
    assert 0 < len(refunds) < 0.05 * len(pp), "a few refunds, as negative amounts"
    assert (pp.groupby("claim_id")["amount"].sum() >= -0.005).all(), "refunds never exceed what was paid"
    assert t["claim_write_off"]["reason"].eq("bad_debt").any()


def test_eligibility_checks(t):
    ec = t["eligibility_check"]
    shares = ec["status"].value_counts(normalize=True)
    assert 0.88 <= shares["active"] <= 0.96
    assert 0.015 <= shares["inactive"] <= 0.06
    assert 0.003 <= shares["error"] <= 0.02
    assert 0.02 <= shares["pending"] <= 0.07
    pending = ec[ec["status"] == "pending"]
    assert pending["responded_at"].isna().all()
    assert ec.loc[ec["status"] != "pending", "responded_at"].notna().all()
    recent = pd.to_datetime(pending["service_date"]) > AS_OF - pd.Timedelta(days=30)
    assert recent.mean() > 0.3, "pending answers cluster at recent dates of service"
    assert ec["trace_number"].is_unique
    assert (pd.to_datetime(ec["requested_at"]).dt.date <= pd.to_datetime(ec["service_date"]).dt.date).all()
    practice_visits = practice_claims(t).shape[0]
    assert 0.85 <= len(ec) / practice_visits <= 0.98


def test_as_of_constants():
    assert DEMO_AS_OF == dt.date(2026, 10, 31)
    assert WINDOW_START == dt.date(2024, 11, 1)
