"""X12 loads: the shared 835 and 834 samples, malformed variants, idempotency, all-or-nothing; DuckDB and
PostgreSQL.

managed-care.835, worked by hand: BPR02 945.00 ACH; CLP 5554555444 charge 800, paid 450 (CO-A2 50 on the
claim, PR-1 300 on the line); CLP 8765432112 charge 1200, paid 495 (CO-A2 55; PR-1 600 and CO-45 50 on the
line). So CO-A2 = 105.00 over 2 claims, PR-1 = 900.00, CO-45 = 50.00; 450 + 495 = 945 balances.
denied-service-lines.835: CLP02 = 4 (denied), charge 915.39, paid 0; lines CO-16 500.04, OA-A7 127.80 and
287.55, each with LQ*HE*N14.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from dashboard import access, reports
from dashboard.errors import LoadError
from dashboard.warehouse import schema as s
from dashboard.warehouse.engine import reader_engine, writer_engine
from dashboard.warehouse.loaders.run import run_load
from tests.conftest import SHARED
from tests.test_load_tuva import write_csv

X12 = SHARED / "fixtures" / "x12"
MANAGED = X12 / "managed-care.835"
DENIED = X12 / "denied-service-lines.835"
ENROLL_834 = [X12 / "enroll-employee-managed-care.834", X12 / "add-dependent.834",
              X12 / "add-subscriber-coverage.834", X12 / "change-subscriber-information.834"]
TABLES = (s.remittance, s.claim_payment, s.claim_adjustment, s.service_line_payment, s.remark_code,
          s.provider_adjustment, s.eligibility, s.member_coverage_tier, s.enrollment_change, s.practice, s.employer,
          s.data_load)


def report(url: str, name: str, start: str, end: str) -> list[dict]:
    engine = reader_engine(url)
    try:
        result = reports.run_report(name, scope=access.OPERATOR, engine=engine, start=start, end=end)
        return result.frame.to_dict("records")
    finally:
        engine.dispose()


def snapshot(url: str) -> dict[str, list]:
    """Every row of every table a load writes, to prove a rejected load changed nothing."""
    engine = writer_engine(url)
    try:
        with engine.connect() as conn:
            return {t.name: sorted(map(repr, conn.execute(sa.select(t)).all())) for t in TABLES}
    finally:
        engine.dispose()


def variant(tmp_path: Path, source: Path, name: str, old: str, new: str, count: int = 1) -> Path:
    text = source.read_text()
    assert old in text, old
    path = tmp_path / name
    path.write_text(text.replace(old, new, count))
    return path


# --- 835 -------------------------------------------------------------------------------------------

def test_managed_care_835_loads_with_its_figures(warehouse_url):
    lines = run_load(warehouse_url, fmt="x12-835", paths=[MANAGED])
    assert "1 remittance, 2 claim_payment, 5 claim_adjustment, 2 service_line_payment" in lines[0]
    # 20002316: the date falls back to DTM*405, and the warning says where the bad date is
    assert ("managed-care.835, line 4, segment BPR#4, field BPR16: BPR16 (check issue or EFT effective date) "
            "'20002316' is not a valid CCYYMMDD date (month must be in 1..12); the payment date is taken from "
            "DTM*405 (production date) 2002-03-14") in lines[0]
    [remit] = report(warehouse_url, "remittances", "2002-03", "2002-03")
    assert remit == {"practice_id": "777667755", "trace_number": "7170066655", "payer": "RUSHMORE LIFE",
                     "payment_date": dt.date(2002, 3, 14), "method": "ACH", "amount": 945.00, "claims": 2,
                     "unmatched_claims": 2, "claim_payments": 945.00, "provider_adjustments": 0.0, "difference": 0.0}
    adjustments = {(r["group_code"], r["carc"]): (r["claims"], r["amount"])
                   for r in report(warehouse_url, "adjustments", "2002-03", "2002-03")}
    assert adjustments == {("CO", "A2"): (2, 105.00), ("PR", "1"): (2, 900.00), ("CO", "45"): (1, 50.00)}
    assert report(warehouse_url, "denials", "2002-03", "2002-03") == []  # CO-A2/CO-45 contractual, PR-1 cost share
    engine = writer_engine(warehouse_url)
    with engine.connect() as conn:
        paid = conn.execute(sa.select(s.claim_payment.c.claim_id, s.claim_payment.c.charge_amount,
                                      s.claim_payment.c.paid_amount).order_by(s.claim_payment.c.claim_id)).all()
        practice = conn.execute(sa.select(s.practice.c.practice_name)).scalar_one()
    engine.dispose()
    assert [(c, float(ch), float(p)) for c, ch, p in paid] == [("5554555444", 800.0, 450.0),
                                                               ("8765432112", 1200.0, 495.0)]
    assert practice == "Acme Medical Center"  # created from N1*PE, keyed by REF*TJ 777667755
    # neither CLP01 names a claim on the books: both are unmatched payments, with their trace and amounts
    unmatched = report(warehouse_url, "unmatched-payments", "2002-03", "2002-03")
    assert sorted((r["issue"], r["claim_id"], r["trace_number"], r["paid"]) for r in unmatched) == [
        ("no such claim", "5554555444", "7170066655", 450.0), ("no such claim", "8765432112", "7170066655", 495.0)]
    if warehouse_url.startswith("postgresql"):  # the load vacuumed the marts it rewrote (autovacuum may be off)
        engine = writer_engine(warehouse_url)
        with engine.connect() as conn:
            vacuumed = conn.execute(sa.text("SELECT last_vacuum FROM pg_stat_user_tables WHERE relname = "
                                            "'mart_claim'")).scalar()
        engine.dispose()
        assert vacuumed is not None


def test_denied_service_lines_835_shows_one_denied_claim(warehouse_url):
    run_load(warehouse_url, fmt="x12-835", paths=[DENIED])
    rows = report(warehouse_url, "denied-claims", "2004-10", "2004-10")
    assert [(r["claim_id"], r["claim_status"], r["line_number"], r["group_code"], r["carc"], r["amount"],
             r["remark_codes"]) for r in rows] == [
        ("2005555A", "4", 1, "CO", "16", 500.04, "N14"),
        ("2005555A", "4", 2, "OA", "A7", 127.80, "N14"),
        ("2005555A", "4", 3, "OA", "A7", 287.55, "N14"),
    ]
    denials = {(r["group_code"], r["carc"]): (r["claims"], r["amount"])
               for r in report(warehouse_url, "denials", "2004-10", "2004-10")}
    assert denials == {("CO", "16"): (1, 500.04), ("OA", "A7"): (1, 415.35)}
    [remit] = report(warehouse_url, "remittances", "2004-10", "2004-10")
    assert (remit["method"], remit["amount"], remit["claims"]) == ("NON", 0.0, 1)
    kpis = report(warehouse_url, "practice-kpis", "2004-10", "2004-10")
    assert kpis[0]["denial_rate"] == 1.0  # its only first adjudication is a denial


def test_claim_payments_match_their_claims(warehouse_url, tmp_path):
    tuva = tmp_path / "tuva"
    tuva.mkdir()
    write_csv(tuva / "medical_claim.csv", [{
        "claim_id": "5554555444", "claim_line_number": "1", "claim_type": "professional", "person_id": "P1",
        "member_id": "33344555510", "payer": "RUSHMORE", "plan": "PPO", "claim_start_date": "2002-03-01",
        "claim_end_date": "2002-03-04", "billing_tin": "777667755", "charge_amount": "800.00",
        "data_source": "clinic"}])
    run_load(warehouse_url, fmt="tuva", paths=[tuva])
    lines = run_load(warehouse_url, fmt="x12-835", paths=[MANAGED])
    assert "1 of 2 claim payment(s) match no claim" in lines[0]
    [remit] = report(warehouse_url, "remittances", "2002-03", "2002-03")
    assert (remit["claims"], remit["unmatched_claims"]) == (2, 1)


def test_reloading_an_835_never_double_counts(warehouse_url, tmp_path):
    run_load(warehouse_url, fmt="x12-835", paths=[MANAGED])
    before = snapshot(warehouse_url)
    again = run_load(warehouse_url, fmt="x12-835", paths=[MANAGED])
    assert again == ["managed-care.835: already loaded (same content), nothing changed"]
    assert snapshot(warehouse_url) == before
    # The same payment re-sent in another interchange (new ISA/GS control numbers) replaces the first copy.
    resent = variant(tmp_path, MANAGED, "resent.835", "000000907", "000000908", count=-1)
    run_load(warehouse_url, fmt="x12-835", paths=[resent])
    [remit] = report(warehouse_url, "remittances", "2002-03", "2002-03")
    assert (remit["amount"], remit["claims"]) == (945.00, 2)
    adjustments = report(warehouse_url, "adjustments", "2002-03", "2002-03")
    assert sum(r["amount"] for r in adjustments) == pytest.approx(1055.00)  # 105 + 900 + 50, once


@pytest.mark.parametrize(("name", "old", "new", "message", "where"), [
    ("non-numeric.835", "CLP*5554555444*1*800.00*450.00", "CLP*5554555444*1*800.00*45O.00", "45O.00", "CLP04"),
    ("unbalanced.835", "BPR*I*945.00*", "BPR*I*950.00*", "does not balance", "BPR"),
    ("claim-unbalanced.835", "CAS*CO*A2*50.00~", "CAS*CO*A2*40.00~", "adjustments total", "5554555444"),
    ("wrong-separators.835", "ISA*03*9876543210", "ISA|03|9876543210", "16 elements", "ISA#1"),
    ("not-835.835", "ST*835*112233", "ST*837*112233", "837", "ST"),
    ("bad-cas.835", "CAS*PR*1*300.00~", "CAS*PR*1*~", "adjustment amount) is required", "CAS03"),
])
def test_malformed_835_is_rejected_and_changes_nothing(warehouse_url, tmp_path, name, old, new, message, where):
    run_load(warehouse_url, fmt="x12-835", paths=[DENIED])
    before = snapshot(warehouse_url)
    bad = variant(tmp_path, MANAGED, name, old, new)
    with pytest.raises(LoadError) as caught:
        run_load(warehouse_url, fmt="x12-835", paths=[MANAGED, bad])  # a good file first: it is not kept either
    text = str(caught.value)
    for part in (name, message, where):
        assert part in text
    assert snapshot(warehouse_url) == before


def test_truncated_835_is_rejected(warehouse_url, tmp_path):
    text = MANAGED.read_text()
    cut = tmp_path / "truncated.835"
    cut.write_text(text[: text.index("CLP*8765432112")])
    with pytest.raises(LoadError, match="truncated.835") as caught:
        run_load(warehouse_url, fmt="x12-835", paths=[cut])
    assert "no SE (truncated file?)" in str(caught.value)
    empty = tmp_path / "empty.835"
    empty.write_text("  \n")
    with pytest.raises(LoadError, match="empty"):
        run_load(warehouse_url, fmt="x12-835", paths=[empty])
    binary = tmp_path / "binary.835"
    binary.write_bytes(b"\xff\xfe\x00ISA")
    with pytest.raises(LoadError, match="not a text file"):
        run_load(warehouse_url, fmt="x12-835", paths=[binary])


def test_unbalanced_835_loads_when_allowed_with_a_warning(warehouse_url, tmp_path):
    bad = variant(tmp_path, MANAGED, "unbalanced.835", "BPR*I*945.00*", "BPR*I*950.00*")
    [line] = run_load(warehouse_url, fmt="x12-835", paths=[bad], allow_unbalanced=True)
    assert "warning: does not balance" in line
    assert "950.00" in line
    [remit] = report(warehouse_url, "remittances", "2002-03", "2002-03")
    assert remit["amount"] == 950.00


def test_835_separators_and_layout_from_the_isa_header(warehouse_url, tmp_path):
    """Other element/component/segment separators and one segment per line load to the same figures."""
    text = MANAGED.read_text()
    other = text.replace("*", "|").replace(":", ">").replace("~", "~\n")
    other = other.replace("|^|00501", "|^|00501")  # the repetition separator stays
    path = tmp_path / "pipes.835"
    path.write_text(other)
    run_load(warehouse_url, fmt="x12-835", paths=[path])
    adjustments = {(r["group_code"], r["carc"]): r["amount"]
                   for r in report(warehouse_url, "adjustments", "2002-03", "2002-03")}
    assert adjustments == {("CO", "A2"): 105.00, ("PR", "1"): 900.00, ("CO", "45"): 50.00}


def test_835_with_plb_balances_and_stores_provider_adjustments(warehouse_url, tmp_path):
    # Interest of 5.00 (L6, negative: increases the payment) makes BPR02 950.00 = 945 − (−5).
    text = MANAGED.read_text().replace("BPR*I*945.00*", "BPR*I*950.00*")
    text = text.replace("SE*26*112233~", "PLB*5544667733*20021231*L6:INT1*-5.00~SE*27*112233~")
    path = tmp_path / "plb.835"
    path.write_text(text)
    [line] = run_load(warehouse_url, fmt="x12-835", paths=[path])
    assert "1 provider_adjustment" in line
    assert "does not balance" not in line
    engine = writer_engine(warehouse_url)
    with engine.connect() as conn:
        row = conn.execute(sa.select(s.provider_adjustment.c.reason_code, s.provider_adjustment.c.reference,
                                     s.provider_adjustment.c.amount)).one()
    engine.dispose()
    assert (row.reason_code, row.reference, float(row.amount)) == ("L6", "INT1", -5.0)


def test_835_into_a_warehouse_that_does_not_exist_yet(tmp_path):
    url = f"duckdb:///{tmp_path / 'fresh' / 'w.duckdb'}"
    run_load(url, fmt="x12-835", paths=[MANAGED, DENIED])
    assert len(report(url, "remittances", "2002-01", "2004-12")) == 2


# --- 835s as payers send them (inline, one segment a line: ISA is line 1, BPR line 4, N1*PE line 8) ------

ISA_835 = "ISA*00*          *00*          *ZZ*ACMEHEALTH     *ZZ*RIVERCLINIC    *260116*0900*^*00501*000000301*0*P*:~"
NPI = "1234567893"  # a valid NPI (check digit 3), the CMS example
TIN_PAYEE = "N1*PE*RIVER CLINIC*FI*123456789"  # a payee known by its tax id: the practice id
CLAIM = ["CLP*C-1*1*200*150*20*12*PCN1", "CAS*CO*45*30", "CAS*PR*2*20"]  # 200 - 150 = 30 + 20


def remittance_835(tmp_path: Path, name: str, *, bpr: str = "BPR*I*150*C*ACH*CCP*01*999999992*DA*123456*1999999999"
                   "**01*888888882*DA*654321*20260115", trace: str = "T-1", dtm405: str | None = "20260116",
                   payee: str = f"N1*PE*RIVER CLINIC*XX*{NPI}", tin: str | None = None,
                   claims: list[str] = CLAIM) -> Path:
    """An 835 of one transaction with these BPR, TRN02, DTM*405, payee (and REF*TJ) and claim segments."""
    body = [bpr, f"TRN*1*{trace}*1999999999", *([f"DTM*405*{dtm405}"] if dtm405 else []),
            "N1*PR*ACME HEALTH PLAN*XV*ACMEHP", payee, *([f"REF*TJ*{tin}"] if tin else []), "LX*1", *claims]
    lines = [ISA_835, "GS*HP*ACMEHEALTH*RIVERCLINIC*20260116*0900*301*X*005010X221A1~", "ST*835*0001*005010X221A1~",
             *(f"{seg}~" for seg in body), f"SE*{len(body) + 2}*0001~", "GE*1*301~", "IEA*1*000000301~"]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def rows(url: str, query: sa.Select) -> list[tuple]:
    engine = writer_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(query).all()]
    finally:
        engine.dispose()


def test_835_without_bpr16_takes_the_production_date_with_a_warning(warehouse_url, tmp_path):
    bpr = "BPR*I*150*C*ACH*CCP*01*999999992*DA*123456*1999999999**01*888888882*DA*654321"  # no BPR16
    [line] = run_load(warehouse_url, fmt="x12-835", paths=[remittance_835(tmp_path, "no-bpr16.835", bpr=bpr)])
    assert ("warning: no-bpr16.835, line 4, segment BPR#4, field BPR16: BPR16 (check issue or EFT effective date) "
            "is missing; the payment date is taken from DTM*405 (production date) 2026-01-16") in line
    r = s.remittance
    assert rows(warehouse_url, sa.select(r.c.trace_number, r.c.payment_date)) == [("T-1", D(2026, 1, 16))]

    # Without DTM*405 there is no date to take: refused, naming the place, and nothing changes.
    before = snapshot(warehouse_url)
    undated = remittance_835(tmp_path, "undated.835", bpr=bpr, trace="T-2", dtm405=None)
    with pytest.raises(LoadError) as caught:
        run_load(warehouse_url, fmt="x12-835", paths=[undated])
    assert str(caught.value) == ("undated.835, line 4, segment BPR#4, field BPR16: BPR16 (check issue or EFT "
                                 "effective date) is missing, and there is no valid DTM*405 (production date) "
                                 "to take the payment date from")
    assert snapshot(warehouse_url) == before


def test_check_payment_without_eft_details(warehouse_url, tmp_path):
    # 1500.00 charged, 1234.56 paid: CO-45 165.44 + PR-1 100.00 = 265.44; BPR02 = CLP04 = 1234.56.
    path = remittance_835(tmp_path, "check.835", bpr="BPR*I*1234.56*C*CHK************20260115", trace="100234",
                          payee=TIN_PAYEE,
                          claims=["CLP*C-9*1*1500*1234.56*100*12*PCN9", "CAS*CO*45*165.44", "CAS*PR*1*100"])
    [line] = run_load(warehouse_url, fmt="x12-835", paths=[path])
    assert "BPR" not in line  # no warning about the payment: BPR16 is there, BPR02 balances
    assert "does not balance" not in line
    r = s.remittance
    assert rows(warehouse_url, sa.select(r.c.method, r.c.amount, r.c.credit_debit, r.c.payment_date,
                                         r.c.trace_number)) == [("CHK", Decimal("1234.56"), "C", D(2026, 1, 15),
                                                                 "100234")]
    [remit] = report(warehouse_url, "remittances", "2026-01", "2026-01")
    assert (remit["method"], remit["amount"], remit["trace_number"]) == ("CHK", 1234.56, "100234")


#: Worked by hand (2 PLB segments, 5 pairs). T-1, paid 2026-01-15: C-1 pays 150.00 and C-2 400.00, so Σ CLP04 =
#: 550.00; PLB WO 150.00 and WO 10.00 (overpayments recovered: withheld), L6 -12.34 (interest: added), FB 25.00
#: (a balance forwarded from an earlier 835: withheld), 72 -40.00 (a refund the practice sent, returned: added),
#: so Σ PLB = 160 - 12.34 + 25 - 40 = 132.66 and BPR02 = 550.00 - 132.66 = 417.34. T-2, paid 2026-02-10: C-3 pays
#: 80.00, WO 30.00 withheld, BPR02 = 50.00. T-3, paid 2026-03-05, loaded with --allow-unbalanced: C-4 pays 80.00,
#: no PLB, but BPR02 says 100.00: the reconciliation shows a difference of 20.00.
PLB_835S = {
    "T-1": ("BPR*I*417.34*C*CHK************20260115",
            ["CLP*C-1*1*200*150*20*12*PCN1", "CAS*CO*45*30", "CAS*PR*2*20",
             "CLP*C-2*1*500*400*0*12*PCN2", "CAS*CO*45*100",
             "PLB*123456789*20261231*WO:C-0 20251103*150.00*L6*-12.34*WO:C-9 20251120*10",
             "PLB*123456789*20261231*FB:FWD1*25.00*72:C-7 20250915*-40.00"]),
    "T-2": ("BPR*I*50*C*CHK************20260210",
            ["CLP*C-3*1*100*80*0*12*PCN3", "CAS*CO*45*20", "PLB*123456789*20261231*WO:C-1 20260105*30"]),
    "T-3": ("BPR*I*100*C*CHK************20260305", ["CLP*C-4*1*100*80*0*12*PCN4", "CAS*CO*45*20"]),
}


def test_plb_is_reported_by_reason_and_each_payment_reconciles_its_cash(warehouse_url, tmp_path):
    for trace, (bpr, segments) in PLB_835S.items():
        path = remittance_835(tmp_path, f"{trace}.835", bpr=bpr, trace=trace, payee=TIN_PAYEE, claims=segments)
        [line] = run_load(warehouse_url, fmt="x12-835", paths=[path], allow_unbalanced=trace == "T-3")
        assert ("does not balance" in line) is (trace == "T-3"), line
    plb = [(r["month"], r["payer"], r["reason_code"], r["reason"], r["adjustments"], r["amount"])
           for r in report(warehouse_url, "provider-adjustments", "2026-01", "2026-03")]
    assert plb == [("2026-01", "ACMEHP", "72", "authorized return of funds", 1, -40.00),
                   ("2026-01", "ACMEHP", "FB", "balance forwarded between payments", 1, 25.00),
                   ("2026-01", "ACMEHP", "L6", "interest paid to the provider", 1, -12.34),
                   ("2026-01", "ACMEHP", "WO", "recovery of an earlier overpayment", 2, 160.00),
                   ("2026-02", "ACMEHP", "WO", "recovery of an earlier overpayment", 1, 30.00)]
    cash = [(r["trace_number"], r["amount"], r["claim_payments"], r["provider_adjustments"], r["difference"])
            for r in report(warehouse_url, "remittances", "2026-01", "2026-03")]
    assert cash == [("T-1", 417.34, 550.00, 132.66, 0.00), ("T-2", 50.00, 80.00, 30.00, 0.00),
                    ("T-3", 100.00, 80.00, 0.00, 20.00)]
    # the practice's cash from payers: Σ CLP04 − Σ PLB, = Σ BPR02 of the balanced 835s
    kpis = [(r["month"], r["payer_payments"], r["provider_adjustments"], r["payer_cash"])
            for r in report(warehouse_url, "practice-kpis", "2026-01", "2026-02")]
    assert kpis == [("2026-01", 550.00, 132.66, 417.34), ("2026-02", 80.00, 30.00, 50.00)]
    [summary] = report(warehouse_url, "practice-summary", "2026-01", "2026-02")
    assert (summary["payer_payments"], summary["provider_adjustments"], summary["payer_cash"]) == (630.00, 162.66,
                                                                                                    467.34)


def test_plb_reason_codes_ship_with_the_standard_list():
    from dashboard.metrics.remittance import plb_reasons, reason_meaning

    reasons = plb_reasons()
    assert len(reasons) == 41  # element 426 as the 835 TR3 allows it in PLB03-1
    # in the project's own words, not X12's code names (X12's licensed work)
    assert {code: reasons[code] for code in ("L6", "WO", "FB", "72", "CS", "J1")} == {
        "L6": "interest paid to the provider", "WO": "recovery of an earlier overpayment",
        "FB": "balance forwarded between payments", "72": "authorized return of funds",
        "CS": "adjustment (see its reference)", "J1": "not reimbursable"}
    assert reason_meaning("ZZ") == "not a standard PLB reason code (ZZ)"  # shown, never dropped


#: Worked by hand. C-1: charged 1000.00, paid 600.00, so 400.00 of adjustments: CO-45 247.50 (qty 1) + CO-253 2.50
#: + PR-1 100.00 + PR-2 50.00. C-0 is re-adjudicated: its earlier payment of 320.00 reversed (CLP02 22, every
#: amount negative, CO-45 -97.55 with quantity -1, CO-253 -2.45, PR-2 -80.00: -500 - -320 = -180.00) and paid
#: again at 350.00 (500 - 350 = 67.55 + 2.45 + 80.00). BPR02 = 600 - 320 + 350 = 630.00.
CAS_CLAIMS = ["CLP*C-1*1*1000*600*150*12*PCN1", "CAS*CO*45*247.5*1*253*2.5", "CAS*PR*1*100**2*50",
              "CLP*C-0*22*-500*-320*-80*12*PCN0", "CAS*CO*45*-97.55*-1*253*-2.45", "CAS*PR*2*-80",
              "CLP*C-0*1*500*350*80*12*PCN0", "CAS*CO*45*67.55*1*253*2.45", "CAS*PR*2*80"]


def test_cas_triplets_and_reversals_are_stored_to_the_cent(warehouse_url, tmp_path):
    path = remittance_835(tmp_path, "reversal.835", bpr="BPR*I*630*C*CHK************20260115", payee=TIN_PAYEE,
                          claims=CAS_CLAIMS)
    [line] = run_load(warehouse_url, fmt="x12-835", paths=[path])
    assert "3 claim_payment, 10 claim_adjustment" in line
    assert "does not balance" not in line
    cp, a = s.claim_payment, s.claim_adjustment
    stored = rows(warehouse_url, sa.select(cp.c.claim_id, cp.c.status_code, a.c.group_code, a.c.carc, a.c.amount,
                                           a.c.quantity)
                  .join(a, a.c.claim_payment_id == cp.c.claim_payment_id)
                  .order_by(cp.c.claim_payment_id, a.c.line_number, a.c.adjustment_seq))
    C = Decimal
    assert stored == [
        ("C-1", "1", "CO", "45", C("247.50"), C("1.00")), ("C-1", "1", "CO", "253", C("2.50"), None),
        ("C-1", "1", "PR", "1", C("100.00"), None), ("C-1", "1", "PR", "2", C("50.00"), None),
        ("C-0", "22", "CO", "45", C("-97.55"), C("-1.00")), ("C-0", "22", "CO", "253", C("-2.45"), None),
        ("C-0", "22", "PR", "2", C("-80.00"), None),
        ("C-0", "1", "CO", "45", C("67.55"), C("1.00")), ("C-0", "1", "CO", "253", C("2.45"), None),
        ("C-0", "1", "PR", "2", C("80.00"), None)]
    # Each claim payment balances exactly in the warehouse (charge - paid - adjustments = 0.00), and so does
    # C-0 net of its reversal: charge 0, paid 30.00, adjustments -30.00.
    adjusted = sa.select(a.c.claim_payment_id, sa.func.sum(a.c.amount).label("total")).group_by(
        a.c.claim_payment_id).subquery()
    balance = (sa.func.sum(cp.c.charge_amount), sa.func.sum(cp.c.paid_amount), sa.func.sum(adjusted.c.total),
               sa.func.sum(cp.c.charge_amount - cp.c.paid_amount - adjusted.c.total))
    per_claim = rows(warehouse_url, sa.select(cp.c.claim_id, *balance)
                     .join(adjusted, adjusted.c.claim_payment_id == cp.c.claim_payment_id)
                     .group_by(cp.c.claim_id).order_by(cp.c.claim_id))
    assert per_claim == [("C-0", C("0.00"), C("30.00"), C("-30.00"), C("0.00")),
                         ("C-1", C("1000.00"), C("600.00"), C("400.00"), C("0.00"))]
    by_code = rows(warehouse_url, sa.select(a.c.group_code, a.c.carc, sa.func.sum(a.c.amount))
                   .group_by(a.c.group_code, a.c.carc).order_by(a.c.group_code, a.c.carc))
    assert by_code == [("CO", "253", C("2.50")), ("CO", "45", C("217.50")), ("PR", "1", C("100.00")),
                       ("PR", "2", C("50.00"))]

    # A fraction of a cent would be rounded on the way in and the stored sums would drift: refused.
    before = snapshot(warehouse_url)
    cents = [c.replace("*253*2.5", "*253*2.505").replace("*247.5*", "*247.495*") for c in CAS_CLAIMS]
    bad = remittance_835(tmp_path, "sub-cent.835", bpr="BPR*I*630*C*CHK************20260115", trace="T-9",
                         payee=TIN_PAYEE, claims=cents)
    with pytest.raises(LoadError) as caught:
        run_load(warehouse_url, fmt="x12-835", paths=[bad])
    assert str(caught.value).startswith("sub-cent.835, line 11, segment CAS#11, field CAS03: CAS03 (adjustment "
                                        "amount) '247.495' has a fraction of a cent")
    assert snapshot(warehouse_url) == before


def test_npi_only_payee_creates_its_practice_once(warehouse_url, tmp_path):
    run_load(warehouse_url, fmt="x12-835", paths=[DENIED])  # marts exist: the new practice's must be refreshed
    first = remittance_835(tmp_path, "npi-1.835", trace="T-1")
    [line] = run_load(warehouse_url, fmt="x12-835", paths=[first])
    assert (f"warning: npi-1.835, line 8, segment N1#8, field N104: new practice NPI{NPI} (RIVER CLINIC) created "
            f"from the payee's NPI {NPI}: the file has no tax id (REF*TJ) to key it by") in line
    p, r = s.practice, s.remittance
    practices = sa.select(p.c.practice_id, p.c.practice_name, p.c.billing_npi).order_by(p.c.practice_id)
    assert rows(warehouse_url, practices) == [("444313000", "Unknown", None), (f"NPI{NPI}", "River Clinic", NPI)]
    [remit] = report(warehouse_url, "remittances", "2026-01", "2026-01")  # from the refreshed mart
    assert (remit["practice_id"], remit["trace_number"], remit["amount"]) == (f"NPI{NPI}", "T-1", 150.00)

    # Later files for that NPI map to it and create nothing, even when they carry a tax id.
    second = remittance_835(tmp_path, "npi-2.835", trace="T-2")
    with_tin = remittance_835(tmp_path, "npi-3.835", trace="T-3", tin="123456789")
    lines = run_load(warehouse_url, fmt="x12-835", paths=[second, with_tin])
    assert "new practice" not in "".join(lines)
    assert (f"warning: npi-3.835, line 8, segment N1#8, field N104: payee NPI {NPI} with tax id 123456789 maps "
            f"to practice NPI{NPI}, created earlier from that NPI alone") in lines[1]
    assert rows(warehouse_url, practices) == [("444313000", "Unknown", None), (f"NPI{NPI}", "River Clinic", NPI)]
    assert rows(warehouse_url, sa.select(r.c.trace_number, r.c.practice_id).where(r.c.trace_number.like("T-%"))
                .order_by(r.c.trace_number)) == [("T-1", f"NPI{NPI}"), ("T-2", f"NPI{NPI}"), ("T-3", f"NPI{NPI}")]


def test_npi_payee_that_cannot_be_mapped_is_refused(warehouse_url, tmp_path):
    # The tax id's practice exists (from an FI payee) and so does the NPI's (from an NPI-only payee): a file
    # naming both cannot say which practice it pays.
    run_load(warehouse_url, fmt="x12-835", paths=[
        remittance_835(tmp_path, "tin.835", trace="T-1", payee=TIN_PAYEE),
        remittance_835(tmp_path, "npi.835", trace="T-2")])
    before = snapshot(warehouse_url)
    cases = [
        (remittance_835(tmp_path, "both.835", trace="T-3", tin="123456789"),
         "both.835, line 8, segment N1#8, field N104: the payee's tax id 123456789 (REF*TJ) and NPI 1234567893 "
         "belong to two practices, 123456789 and NPI1234567893"),
        (remittance_835(tmp_path, "bad-npi.835", trace="T-4", payee="N1*PE*LAKE CLINIC*XX*1234567890"),
         "bad-npi.835, line 8, segment N1#8, field N104: the payee has no tax id (REF*TJ) and N104 '1234567890' "
         "is not a valid NPI"),
        (remittance_835(tmp_path, "no-id.835", trace="T-5", payee="N1*PE*LAKE CLINIC"),
         "no-id.835, line 8, segment N1#8, field N104: the payee (N1*PE) has neither a tax id"),
    ]
    for path, message in cases:
        with pytest.raises(LoadError) as caught:
            run_load(warehouse_url, fmt="x12-835", paths=[path])
        assert str(caught.value).startswith(message)
        assert snapshot(warehouse_url) == before


# --- 834 -------------------------------------------------------------------------------------------

def spans(url: str) -> list[tuple]:
    engine = writer_engine(url)
    e = s.eligibility
    with engine.connect() as conn:
        rows = conn.execute(sa.select(e.c.person_id, e.c.plan, e.c.enrollment_start_date, e.c.enrollment_end_date,
                                      e.c.group_id, e.c.subscriber_relation, e.c.last_name, e.c.first_name,
                                      e.c.birth_date)
                            .order_by(e.c.person_id, e.c.plan, e.c.enrollment_start_date)).all()
    engine.dispose()
    return [tuple(r) for r in rows]


D = dt.date
OPEN = D(2099, 12, 31)


def test_834_samples_build_eligibility_spans_in_order(warehouse_url):
    lines = run_load(warehouse_url, fmt="x12-834", paths=ENROLL_834)
    assert lines[3].startswith("change-subscriber-information.834: loaded 1 changed")
    [dependent] = [r[0] for r in spans(warehouse_url) if r[5] == "Child"]
    assert dependent.startswith("123456789-")  # REF*0F + digest: the SSN in NM109 is never stored
    assert spans(warehouse_url) == [
        # change-subscriber-information corrected the subscriber to DOE JAMES, born 1950-04-15
        ("123456789", "DEN", D(2002, 7, 1), OPEN, "123456001", "Self", "DOE", "JAMES", D(1950, 4, 15)),
        ("123456789", "HMO", D(1996, 6, 1), OPEN, "123456001", "Self", "DOE", "JAMES", D(1950, 4, 15)),
        (dependent, "HLT", D(1996, 6, 1), OPEN, "123456001", "Child", "DOE", "JOHN", D(1977, 8, 16)),
    ]
    engine = writer_engine(warehouse_url)
    with engine.connect() as conn:
        ssn = conn.execute(sa.select(sa.func.count()).select_from(s.eligibility)
                           .where(s.eligibility.c.social_security_number.is_not(None))).scalar_one()
        log = conn.execute(sa.select(s.enrollment_change.c.maintenance_type, s.enrollment_change.c.maintenance_reason,
                                     s.enrollment_change.c.action)
                           .order_by(s.enrollment_change.c.source_file, s.enrollment_change.c.segment)).all()
    engine.dispose()
    assert ssn == 0
    assert ("001", "25", "demographics changed: birth_date, first_name, last_name") in [tuple(r) for r in log]
    rows = report(warehouse_url, "enrollment", "2026-01", "2026-01")
    assert {(r["plan"], r["members"], r["subscribers"]) for r in rows} == {("DEN", 1, 1), ("HMO", 1, 1),
                                                                          ("HLT", 1, 0)}


TERM = """ISA*00*          *00*          *ZZ*SPONSOR        *ZZ*CARRIER        *260301*1200*^*00501*000000101*0*P*:~
GS*BE*SPONSOR*CARRIER*20260301*1200*101*X*005010X220A1~
ST*834*0001*005010X220A1~
BGN*00*{ref}*20260301*1200****2~
N1*P5*NINE INC*FI*999888777~
N1*IN*ACME HEALTH*FI*654456654~
{members}SE*{count}*0001~
GE*1*101~
IEA*1*000000101~
"""


def enrollment_file(tmp_path: Path, name: str, members: str, ref: str = "R1") -> Path:
    body = TERM.format(ref=ref, members=members, count=0)
    count = body[body.index("ST*834"):body.index("SE*")].count("~") + 1
    path = tmp_path / name
    path.write_text(TERM.format(ref=ref, members=members, count=count))
    return path


ADD = ("INS*Y*18*021*28*A***FT~REF*0F*S100~REF*1L*GRP9~NM1*IL*1*ROE*ANN****ZZ*S100~DMG*D8*19800203*F~"
       "HD*021**HLT*PPO GOLD*FAM~DTP*348*D8*20260101~"
       "INS*N*01*021*28*A~REF*0F*S100~REF*1L*GRP9~NM1*IL*1*ROE*BOB****ZZ*S100-01~DMG*D8*19810304*M~"
       "HD*021**HLT*PPO GOLD*FAM~DTP*348*D8*20260101~")


def test_834_termination_reinstatement_and_tier_change(warehouse_url, tmp_path):
    run_load(warehouse_url, fmt="x12-834", paths=[enrollment_file(tmp_path, "add.834", ADD)])
    term = enrollment_file(tmp_path, "term.834", "INS*N*01*024*07*A~REF*0F*S100~REF*1L*GRP9~"
                           "NM1*IL*1*ROE*BOB****ZZ*S100-01~HD*024**HLT*PPO GOLD~DTP*349*D8*20260331~", "R2")
    tier = enrollment_file(tmp_path, "tier.834", "INS*Y*18*001*AI*A~REF*0F*S100~REF*1L*GRP9~DTP*303*D8*20260401~"
                           "NM1*IL*1*ROE*ANN****ZZ*S100~HD*001**HLT*PPO GOLD*EMP~", "R3")
    lines = run_load(warehouse_url, fmt="x12-834", paths=[term, tier])
    assert "1 terminated" in lines[0]
    assert "1 changed" in lines[1]
    got = [(r[0], r[2], r[3]) for r in spans(warehouse_url)]
    assert got == [("S100", D(2026, 1, 1), D(2026, 3, 31)), ("S100", D(2026, 4, 1), OPEN),
                   ("S100-01", D(2026, 1, 1), D(2026, 3, 31))]
    engine = writer_engine(warehouse_url)
    with engine.connect() as conn:
        tiers = conn.execute(sa.select(s.member_coverage_tier.c.person_id,
                                       s.member_coverage_tier.c.enrollment_start_date,
                                       s.member_coverage_tier.c.tier_code)
                             .order_by(s.member_coverage_tier.c.person_id,
                                       s.member_coverage_tier.c.enrollment_start_date)).all()
        employer = conn.execute(sa.select(s.employer.c.employer_name).where(s.employer.c.employer_id == "GRP9"))\
            .scalar_one()
    engine.dispose()
    assert [tuple(t) for t in tiers] == [("S100", D(2026, 1, 1), "FAM"), ("S100", D(2026, 4, 1), "EMP"),
                                         ("S100-01", D(2026, 1, 1), "FAM")]
    assert employer == "NINE INC"
    rows = {(r["month"], r["tier"]): r for r in report(warehouse_url, "enrollment", "2026-03", "2026-04")}
    assert rows[("2026-03", "FAM")]["members"] == 2
    assert rows[("2026-03", "FAM")]["terms"] == 1
    assert rows[("2026-04", "EMP")]["members"] == 1
    assert rows[("2026-04", "EMP")]["adds"] == 0
    # each 834 maintenance by month, type and reason (in words), as employers see them
    changes = [(r["month"], r["change"], r["maintenance_reason"], r["reason"], r["people"])
               for r in report(warehouse_url, "enrollment-changes", "2026-01", "2026-04")]
    assert changes == [("2026-01", "addition", "28", "initial enrollment", 2),
                       ("2026-03", "termination", "07", "benefits ended", 1),
                       ("2026-04", "change", "AI", "no reason given", 1)]

    back = enrollment_file(tmp_path, "reinstate.834", "INS*N*01*025*41*A~REF*0F*S100~REF*1L*GRP9~"
                           "NM1*IL*1*ROE*BOB****ZZ*S100-01~HD*025**HLT*PPO GOLD~", "R4")
    run_load(warehouse_url, fmt="x12-834", paths=[back])
    assert [(r[0], r[3]) for r in spans(warehouse_url) if r[0] == "S100-01"] == [("S100-01", OPEN)]


@pytest.mark.parametrize(("members", "message", "where"), [
    ("INS*Y*18*024*07*A~REF*0F*NOBODY~REF*1L*GRP9~DTP*357*D8*20260331~NM1*IL*1*X*Y****ZZ*NOBODY~",
     "no enrollment span open", "INS"),
    ("INS*Y*18*021*28*A~REF*0F*S200~REF*1L*GRP9~NM1*IL*1*ROE*ANN****ZZ*S200~HD*021**HLT~",
     "needs a start date", "HD"),
    ("INS*Y*18*021*28*A~REF*1L*GRP9~NM1*IL*1*ROE*ANN****ZZ*S200~HD*021**HLT~DTP*348*D8*20260101~",
     "REF*0F", "INS"),
    ("INS*Y*18*021*28*A~REF*0F*S200~NM1*IL*1*ROE*ANN****ZZ*S200~DMG*D8*19801340*F~", "DMG02", "DMG"),
    ("INS*Y*18*099*28*A~REF*0F*S200~", "INS03", "INS"),
])
def test_834_that_cannot_be_applied_is_rejected(warehouse_url, tmp_path, members, message, where):
    run_load(warehouse_url, fmt="x12-834", paths=[enrollment_file(tmp_path, "add.834", ADD)])
    before = snapshot(warehouse_url)
    bad = enrollment_file(tmp_path, "bad.834", members, "R9")
    with pytest.raises(LoadError) as caught:
        run_load(warehouse_url, fmt="x12-834", paths=[ENROLL_834[0], bad])
    text = str(caught.value)
    for part in ("bad.834", message, where):
        assert part in text
    assert snapshot(warehouse_url) == before


def test_834_reload_is_idempotent(warehouse_url, tmp_path):
    path = enrollment_file(tmp_path, "add.834", ADD)
    run_load(warehouse_url, fmt="x12-834", paths=[path])
    before = snapshot(warehouse_url)
    assert "already loaded" in run_load(warehouse_url, fmt="x12-834", paths=[path])[0]
    assert snapshot(warehouse_url) == before
    copy = tmp_path / "copy"
    copy.mkdir()
    resent = enrollment_file(copy, "add.834", ADD, ref="R1-again")  # same changes in another file
    run_load(warehouse_url, fmt="x12-834", paths=[resent])
    assert [(r[0], r[2], r[3]) for r in spans(warehouse_url)] == [("S100", D(2026, 1, 1), OPEN),
                                                                  ("S100-01", D(2026, 1, 1), OPEN)]


def test_cli_load_reports_the_location_and_exits_non_zero(tmp_path, monkeypatch, capsys):
    from dashboard import cli

    monkeypatch.setenv("DASHBOARD_WAREHOUSE_URL", f"duckdb:///{tmp_path / 'w.duckdb'}")
    monkeypatch.setenv("DASHBOARD_DATA_DIR", str(tmp_path))
    bad = variant(tmp_path, MANAGED, "bad.835", "*450.00*300.00", "*4x0.00*300.00")
    monkeypatch.setattr("sys.argv", ["dashboard", "load", "--format", "x12-835", str(bad)])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "bad.835" in err
    assert "CLP04" in err
    assert "Traceback" not in err
