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
    assert "BPR16 is not a valid date" in lines[0]  # 20002316: the date falls back to DTM*405
    [remit] = report(warehouse_url, "remittances", "2002-03", "2002-03")
    assert remit == {"practice_id": "777667755", "trace_number": "7170066655", "payer": "RUSHMORE LIFE",
                     "payment_date": dt.date(2002, 3, 14), "method": "ACH", "amount": 945.00, "claims": 2,
                     "unmatched_claims": 2}
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
