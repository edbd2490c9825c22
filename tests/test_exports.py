"""CSV exports: spreadsheet formulas neutralised in text, numbers kept numbers, and the claim-level CSV the
warehouse writes equal, cell for cell, to the report's rows, on DuckDB and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import io

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from dashboard import access, exports, reports
from dashboard.errors import AccessDenied
from dashboard.warehouse import schema as s
from dashboard.warehouse.engine import reader_engine, writer_engine
from dashboard.warehouse.semantic import refresh_marts
from tests.fixtures import P1, load_practice_fixture

ADMIN = access.scope_for(role="admin")
HOSTILE = ["=HYPERLINK(\"http://x.example\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"]


def _rows(body) -> list[list[str]]:
    text = b"".join(body).decode() if not isinstance(body, str) else body
    return list(csv.reader(io.StringIO(text)))


def test_frame_csv_neutralises_formulas_and_keeps_numbers():
    frame = pd.DataFrame({
        "text": [*HOSTILE, "plain", None],
        "amount": [-9.0, 1.5, 0.0, np.nan, 2.0, 3.0, 4.0, 5.0],
        "count": [1, 2, 3, 4, 5, 6, 7, 8],
        "flag": [True, False, True, False, True, False, True, False],
        "day": [dt.date(2026, 1, 2)] * 8,
    })
    rows = _rows(exports.to_csv(frame, money=("amount",)))
    assert rows[0] == ["text", "amount", "count", "flag", "day"]
    assert [r[0] for r in rows[1:]] == ["'" + v for v in HOSTILE] + ["plain", ""]
    assert [r[1] for r in rows[1:4]] == ["-9.00", "1.50", "0.00"]
    assert rows[4][1] == ""  # unknown is blank, never 0.00
    assert rows[1][2:] == ["1", "true", "2026-01-02"]


@pytest.fixture
def hostile_warehouse(warehouse_url):
    """The practice fixture with a payer id, a claim id and a procedure code that are formulas, and a denial
    of -9.00 (a reversal)."""
    engine = writer_engine(warehouse_url)
    load_practice_fixture(engine)
    with engine.begin() as conn:
        conn.execute(s.remittance.update().values(payer_id=HOSTILE[0], payer_name=HOSTILE[3]))
        conn.execute(s.remittance.update().where(s.remittance.c.remittance_id == "R1").values(trace_number="\r=x,1"))
        denial = sa.and_(s.claim_adjustment.c.group_code == "CO", s.claim_adjustment.c.carc == "50")
        denied = conn.execute(sa.select(s.claim_adjustment.c.claim_payment_id).where(denial)).scalars().all()
        assert denied, "the fixture has a CO-50 denial"
        conn.execute(s.claim_adjustment.update().where(denial).values(amount=-9))
        conn.execute(s.claim_payment.update().where(s.claim_payment.c.claim_payment_id == denied[0])
                     .values(claim_id=HOSTILE[2]))
        refresh_marts(conn)
    engine.dispose()
    engine = reader_engine(warehouse_url)
    yield engine
    engine.dispose()


@pytest.mark.parametrize("name", ["denied-claims", "remittances"])
def test_claim_level_csv_is_the_reports_rows(hostile_warehouse, name):
    period = {"start": "2025-10", "end": "2026-03"}
    expected = _rows(exports.to_csv((result := reports.run_report(name, scope=ADMIN, engine=hostile_warehouse,
                                                                 **period)).frame, money=result.report.money))
    export = reports.export_report(name, scope=ADMIN, engine=hostile_warehouse, **period)
    got = _rows(export.body)
    assert export.rows == len(result.frame) == len(got) - 1 > 0
    assert got == expected
    flat = [cell for row in got for cell in row]
    assert not any(cell.startswith(("=", "+", "@", "\t", "\r")) for cell in flat)
    assert not any(cell.startswith("-") and not _is_number(cell) for cell in flat)
    if name == "denied-claims":
        assert "-9.00" in [row[got[0].index("amount")] for row in got[1:]]
        assert "'" + HOSTILE[2] in [row[got[0].index("claim_id")] for row in got[1:]]
        assert {row[got[0].index("matched")] for row in got[1:]} <= {"true", "false"}
    payer = HOSTILE[0] if name == "denied-claims" else HOSTILE[3]  # the payer's id; a remittance's name
    assert "'" + payer in [row[got[0].index("payer")] for row in got[1:]]
    if name == "remittances":
        assert "'\r=x,1" in [row[got[0].index("trace_number")] for row in got[1:]]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_claim_level_csv_keeps_to_the_scope(hostile_warehouse):
    manager = access.scope_for(role="practice_manager", practice_ids=[P1])
    export = reports.export_report("denied-claims", scope=manager, engine=hostile_warehouse, start="2025-10",
                                   end="2026-03")
    rows = _rows(export.body)
    assert {row[0] for row in rows[1:]} == {P1}
    with pytest.raises(AccessDenied):
        reports.export_report("denied-claims", scope=manager, engine=hostile_warehouse, practice="222222222")
    employer = access.scope_for(role="employer_admin", employer_ids=["GRP1"])
    with pytest.raises(AccessDenied):
        reports.export_report("denied-claims", scope=employer, engine=hostile_warehouse)
