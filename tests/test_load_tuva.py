"""Tuva input-layer CSV loads: validation, all-or-nothing, idempotency, a load killed midway."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from dashboard.errors import LoadError
from dashboard.warehouse import schema as s
from dashboard.warehouse.engine import writer_engine
from dashboard.warehouse.loaders.run import run_load

MEDICAL = [
    {"claim_id": "A1", "claim_line_number": "1", "claim_type": "professional", "person_id": "P1", "member_id": "M1",
     "payer": "ACME", "plan": "PPO", "claim_start_date": "2026-01-05", "claim_end_date": "2026-01-05",
     "place_of_service_code": "11", "hcpcs_code": "99213", "billing_tin": "123456789", "paid_amount": "80.00",
     "allowed_amount": "100.00", "charge_amount": "150.00", "paid_date": "2026-01-30", "data_source": "plan_x",
     "some_extra_column": "ignored"},
    {"claim_id": "A1", "claim_line_number": "2", "claim_type": "professional", "person_id": "P1", "member_id": "M1",
     "payer": "ACME", "plan": "PPO", "claim_start_date": "2026-01-05", "claim_end_date": "2026-01-05",
     "place_of_service_code": "11", "hcpcs_code": "36415", "billing_tin": "123456789", "paid_amount": "-9.00",
     "allowed_amount": "10.00", "charge_amount": "20.00", "paid_date": "2026-01-30", "data_source": "plan_x",
     "some_extra_column": ""},
]
ELIGIBILITY = [
    {"person_id": "P1", "member_id": "M1", "subscriber_id": "M1", "gender": "female", "birth_date": "1980-02-03",
     "enrollment_start_date": "2026-01-01", "enrollment_end_date": "2026-12-31", "payer": "ACME", "plan": "PPO",
     "group_id": "G9", "group_name": "Nine Inc", "subscriber_relation": "self", "data_source": "plan_x"},
]
PHARMACY = [
    {"claim_id": "R1", "claim_line_number": "1", "person_id": "P1", "member_id": "M1", "payer": "ACME",
     "plan": "PPO", "dispensing_date": "2026-01-10", "ndc_code": "00093015001", "paid_amount": "12.50",
     "allowed_amount": "15.00", "data_source": "plan_x"},
]


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture
def tuva_dir(tmp_path) -> Path:
    directory = tmp_path / "tuva"
    directory.mkdir()
    write_csv(directory / "medical_claim.csv", MEDICAL)
    write_csv(directory / "eligibility.csv", ELIGIBILITY)
    write_csv(directory / "pharmacy_claim.csv", PHARMACY)
    return directory


def counts(url: str) -> dict[str, int]:
    engine = writer_engine(url)
    try:
        with engine.connect() as conn:
            return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                    for t in (s.medical_claim, s.pharmacy_claim, s.eligibility, s.data_load)}
    finally:
        engine.dispose()


def test_loads_into_new_warehouse_with_schema(tmp_path, tuva_dir):
    url = f"duckdb:///{tmp_path / 'new' / 'w.duckdb'}"
    lines = run_load(url, fmt="tuva", paths=[tuva_dir])
    assert any("2 medical_claim" in line for line in lines)
    assert counts(url) == {"medical_claim": 2, "pharmacy_claim": 1, "eligibility": 1, "data_load": 3}


def test_types_and_negative_amounts_kept(warehouse_url, tuva_dir):
    run_load(warehouse_url, fmt="tuva", paths=[tuva_dir])
    engine = writer_engine(warehouse_url)
    with engine.connect() as conn:
        paid = conn.execute(sa.select(s.medical_claim.c.paid_amount).order_by(s.medical_claim.c.claim_line_number)
                            ).scalars().all()
        start = conn.execute(sa.select(s.eligibility.c.enrollment_start_date)).scalar_one()
    engine.dispose()
    assert [float(p) for p in paid] == [80.0, -9.0]
    assert str(start) == "2026-01-01"


def test_reload_is_idempotent_and_changed_file_replaces(warehouse_url, tuva_dir):
    run_load(warehouse_url, fmt="tuva", paths=[tuva_dir])
    again = run_load(warehouse_url, fmt="tuva", paths=[tuva_dir])
    assert all("already loaded" in line for line in again)
    changed = [dict(MEDICAL[0], paid_amount="90.00")]
    write_csv(tuva_dir / "medical_claim.csv", changed)
    run_load(warehouse_url, fmt="tuva", paths=[tuva_dir])
    assert counts(warehouse_url)["medical_claim"] == 1  # claim A1 replaced by its new version


@pytest.mark.parametrize(("row_change", "where"), [
    ({"claim_start_date": "2026-02-30"}, "line 3, field claim_start_date"),
    ({"paid_amount": "12,x"}, "line 3, field paid_amount"),
    ({"claim_line_number": "1.5"}, "line 3, field claim_line_number"),
    ({"person_id": ""}, "line 3, field person_id"),
    ({"claim_line_number": "1"}, "line 3"),  # duplicate key
])
def test_bad_rows_are_rejected_with_location_and_nothing_changes(warehouse_url, tuva_dir, row_change, where):
    run_load(warehouse_url, fmt="tuva", paths=[tuva_dir])
    before = counts(warehouse_url)
    (tuva_dir / "eligibility.csv").write_text((tuva_dir / "eligibility.csv").read_text() + "\n")  # new content
    write_csv(tuva_dir / "medical_claim.csv", [MEDICAL[0], dict(MEDICAL[1], **row_change)])
    with pytest.raises(LoadError) as caught:
        run_load(warehouse_url, fmt="tuva", paths=[tuva_dir])
    assert f"medical_claim.csv, {where}" in str(caught.value)
    assert counts(warehouse_url) == before


def test_missing_required_column(tmp_path, tuva_dir):
    rows = [{k: v for k, v in r.items() if k != "person_id"} for r in MEDICAL]
    write_csv(tuva_dir / "medical_claim.csv", rows)
    with pytest.raises(LoadError, match="required column.*person_id"):
        run_load(f"duckdb:///{tmp_path / 'w.duckdb'}", fmt="tuva", paths=[tuva_dir])
    assert not (tmp_path / "w.duckdb").exists()


def test_empty_directory_and_missing_path(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LoadError, match="none of"):
        run_load(f"duckdb:///{tmp_path / 'w.duckdb'}", fmt="tuva", paths=[tmp_path / "empty"])
    with pytest.raises(LoadError, match="no such file"):
        run_load(f"duckdb:///{tmp_path / 'w.duckdb'}", fmt="tuva", paths=[tmp_path / "nope"])


KILLER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from dashboard.warehouse.loaders.transaction import load_transaction
    from dashboard.warehouse.loaders.tuva import load_directory
    with load_transaction(sys.argv[1]) as conn:
        load_directory(conn, Path(sys.argv[2]))
        os.kill(os.getpid(), signal.SIGKILL)  # dies with the rows written but not committed
""")


def test_load_killed_midway_leaves_warehouse_unchanged(warehouse_url, tuva_dir):
    run_load(warehouse_url, fmt="tuva", paths=[tuva_dir])
    before = counts(warehouse_url)
    write_csv(tuva_dir / "medical_claim.csv", [dict(MEDICAL[0], claim_id="B7"), dict(MEDICAL[1], claim_id="B7")])
    done = subprocess.run([sys.executable, "-c", KILLER, warehouse_url, str(tuva_dir)], capture_output=True,
                          env={**os.environ}, timeout=120)
    assert done.returncode == -9
    assert counts(warehouse_url) == before
    run_load(warehouse_url, fmt="tuva", paths=[tuva_dir])  # and the next load works
    assert counts(warehouse_url)["medical_claim"] == before["medical_claim"] + 2


@pytest.mark.parametrize("kernel", [True, False])
def test_the_warehouse_copy_is_exact_with_or_without_copy_file_range(tmp_path, monkeypatch, kernel):
    from dashboard.warehouse.loaders import transaction

    if not kernel:
        def unsupported(*_args, **_kwargs):
            raise OSError(18, "Invalid cross-device link")

        monkeypatch.setattr(transaction.os, "copy_file_range", unsupported)
    data = os.urandom(3 * (1 << 20) + 12345)
    (tmp_path / "a").write_bytes(data)
    (tmp_path / "b").write_bytes(b"stale and longer " * 500_000)
    with open(tmp_path / "a", "rb") as source, open(tmp_path / "b", "wb") as target:
        transaction.copy_file(source, target)
    assert (tmp_path / "b").read_bytes() == data
