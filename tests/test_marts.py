"""The marts the pages read equal their definitions computed from the facts: after a full build and after
each kind of load (which refreshes only the practices and employers it touched, and moves the horizon for
everyone else), on DuckDB and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from dashboard import access, reports
from dashboard.warehouse import schema as s
from dashboard.warehouse import semantic
from dashboard.warehouse.build import rebuild_warehouse
from dashboard.warehouse.engine import reader_engine, writer_engine
from dashboard.warehouse.loaders.run import run_load
from dashboard.warehouse.synthetic import generate_demo
from tests.conftest import SHARED
from tests.fixtures import load_employer_fixture, load_practice_fixture, load_privacy_fixture

ADMIN = access.scope_for(role="admin")
MART_REPORTS = list(reports.CATALOG)


def assert_marts_match_facts(url: str, *, start: str, end: str, employer_user: tuple[str, ...] = ()) -> int:
    """Every mart-backed report, from the marts and from the facts, for admins (and an employer user)."""
    engine = reader_engine(url)
    compared = 0
    try:
        scopes = [ADMIN] + ([access.scope_for(role="employer_admin", employer_ids=employer_user)]
                            if employer_user else [])
        for scope in scopes:
            for name in MART_REPORTS:
                if not scope.can_view(reports.get_report(name).audience):
                    continue
                marts = reports.run_report(name, scope=scope, engine=engine, start=start, end=end).frame
                with semantic.from_facts():
                    facts = reports.run_report(name, scope=scope, engine=engine, start=start, end=end).frame
                pd.testing.assert_frame_equal(marts, facts, check_dtype=False, check_exact=False, rtol=1e-9,
                                              obj=f"{name} ({scope.role})")
                compared += len(marts)
    finally:
        engine.dispose()
    return compared


def test_marts_equal_the_facts_on_the_hand_built_fixtures(warehouse_url):
    engine = writer_engine(warehouse_url)
    load_practice_fixture(engine)
    load_employer_fixture(engine)
    load_privacy_fixture(engine)
    engine.dispose()
    rows = assert_marts_match_facts(warehouse_url, start="2025-10", end="2026-03", employer_user=("GRPA", "GRPB"))
    assert rows > 100


def _write_835(path: Path, *, practice: str, claims: list[tuple[str, float]], paid_on: dt.date) -> None:
    """A balanced 835 paying 60% of each claim (CO-45 for the rest), dated ``paid_on``."""
    body = []
    total = 0.0
    for n, (claim_id, charge) in enumerate(claims):
        paid = round(charge * 0.6, 2)
        total += paid
        body += [f"CLP*{claim_id}*1*{charge:.2f}*{paid:.2f}**12*PCN{n}", "NM1*QC*1*DOE*JANE****MI*X",
                 f"CAS*CO*45*{charge - paid:.2f}"]
    day = paid_on.strftime("%Y%m%d")
    head = [f"BPR*I*{total:.2f}*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999988880*DA*98765*{day}",
            "TRN*1*MARTTEST1*1512345678", "N1*PR*TEST PAYER*XV*TEST", "N1*PE*TEST CLINIC*XX*1999999999",
            f"REF*TJ*{practice}", "LX*1"]
    segments = ["ST*835*0001", *head, *body]
    segments.append(f"SE*{len(segments) + 1}*0001")
    isa = "ISA*00*          *00*          *ZZ*PAYER          *ZZ*CLINIC         *261215*1200*^*00501*000000001*0*P*:"
    gs = f"GS*HP*PAYER*CLINIC*{day}*1200*1*X*005010X221A1"
    path.write_text("~\n".join([isa, gs, *segments, "GE*1*1", "IEA*1*000000001"]) + "~\n")


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_each_load_refreshes_what_it_touched_and_moves_the_horizon_for_the_rest(warehouse_url, tmp_path):
    rebuild_warehouse(warehouse_url, lambda conn, checkpoint: generate_demo(
        conn, claims=1_500, seed=3, progress=False, checkpoint=checkpoint))
    engine = writer_engine(warehouse_url)
    with engine.connect() as conn:
        practice = conn.execute(sa.select(s.practice.c.practice_id).order_by(s.practice.c.practice_id)).scalar()
        mc = s.medical_claim
        claims = conn.execute(sa.select(mc.c.claim_id, sa.func.sum(mc.c.charge_amount))
                              .where(mc.c.billing_tin == practice).group_by(mc.c.claim_id)
                              .order_by(mc.c.claim_id).limit(4)).all()
        member = conn.execute(sa.select(s.eligibility).order_by(s.eligibility.c.person_id).limit(1)).mappings().one()
        horizon_before = conn.execute(sa.select(semantic.mart_state.c.horizon)).scalar()
    engine.dispose()
    assert assert_marts_match_facts(warehouse_url, start="2025-11", end="2026-10") > 100

    # an 835 for one practice, paid in a month after every other date: that practice is rebuilt, every
    # other practice and employer gains the month (balances and enrollment go on)
    later = dt.date(max(dt.date.today().year, 2026) + 1, 1, 15)
    era = tmp_path / "later.835"
    _write_835(era, practice=practice, claims=[(c, float(ch)) for c, ch in claims], paid_on=later)
    run_load(warehouse_url, fmt="x12-835", paths=[era])
    with writer_engine(warehouse_url).connect() as conn:
        assert conn.execute(sa.select(semantic.mart_state.c.horizon)).scalar() == later.replace(day=1)
    assert horizon_before < later.replace(day=1)
    end = f"{later:%Y-%m}"
    assert assert_marts_match_facts(warehouse_url, start="2025-11", end=end) > 100

    # a Tuva load of new claims for one member: their employer is rebuilt
    directory = tmp_path / "tuva"
    directory.mkdir()
    day = member["enrollment_start_date"].isoformat()
    _write_csv(directory / "medical_claim.csv", [{
        "claim_id": "MART-T1", "claim_line_number": "1", "claim_type": "professional",
        "person_id": member["person_id"], "member_id": member["member_id"], "payer": member["payer"],
        "plan": member["plan"], "claim_start_date": day, "claim_end_date": day, "place_of_service_code": "11",
        "hcpcs_code": "99213", "billing_tin": practice, "paid_amount": "75000.00", "allowed_amount": "80000.00",
        "charge_amount": "90000.00", "data_source": "mart_test"}])
    run_load(warehouse_url, fmt="tuva", paths=[directory])
    assert assert_marts_match_facts(warehouse_url, start="2025-11", end=end,
                                    employer_user=(member["group_id"],)) > 100

    # an 834 from the public samples: its sponsor's enrollment is rebuilt
    sample = SHARED / "fixtures" / "x12" / "add-subscriber-coverage.834"
    run_load(warehouse_url, fmt="x12-834", paths=[sample])
    assert assert_marts_match_facts(warehouse_url, start="2025-11", end=end) > 100


def test_a_warehouse_without_marts_is_refused_with_the_command_that_builds_them(tmp_path):
    from dashboard.errors import WarehouseMissing

    url = f"duckdb:///{tmp_path / 'old.duckdb'}"
    engine = writer_engine(url)
    s.metadata.tables["medical_claim"].create(engine)
    engine.dispose()
    with pytest.raises(WarehouseMissing, match="dashboard marts refresh"):
        reports.run_report("practice-kpis", scope=ADMIN, engine=reader_engine(url))
