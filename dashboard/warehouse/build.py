"""Replace a warehouse's contents without readers ever seeing a half-built one.

DuckDB: build into a new file beside the target, then rename it over the target (atomic on POSIX);
open readers keep the old file until they reconnect. Nobody reads the new file before the rename, so the
build may commit as it goes (``checkpoint``), which keeps memory bounded for 10M-claim demos. Other
backends: drop and rebuild every warehouse table inside one transaction, which readers see only once it
commits; there ``checkpoint`` does nothing.

A DuckDB build creates the big fact tables (``UNKEYED_FACTS``) without their PRIMARY KEY constraints
(same columns, types and NOT NULLs). DuckDB enforces a key with an in-memory ART index: maintained during
the load it cost ~15% of the build's CPU at 1M claims, grew the process to 2.8 GB at 10M and made up
~64% of the file; added after the load (ALTER TABLE ... ADD PRIMARY KEY) the 18M-row medical_claim key
alone needs 4-5 GB. The fill writes unique keys by construction (tests/test_synthetic.py builds into a
keyed schema, which would reject a duplicate), and the loaders replace rows by key themselves
(``table.primary_key`` from ``schema``), so the keys in ``schema`` stay the contract without the
database enforcing them here.
"""

from __future__ import annotations

import ctypes
import gc
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.files import DUCKDB_COMPANIONS, make_private, private_umask
from dashboard.warehouse import schema, semantic
from dashboard.warehouse.engine import calendar_rows, cap_duckdb_memory, duckdb_path, writer_engine

T = TypeVar("T")

# DuckDB's buffer pool defaults to 80% of RAM and keeps every block the build wrote cached, so a 10M-claim
# build would grow to several GB. Capped, it evicts written blocks and spills to a private temp directory
# beside the file instead. The fill only appends (nothing to cache) while the generator holds its batches
# (~1 GB at peak), so it gets 1 GB; the marts then aggregate the facts and spill less with more (at 10M:
# ~360 s at 1.5 GB, ~200 s at 2.5 GB), so they get 2 GB. Both keep a 10M build under a 3 GB process peak.
BUILD_MEMORY_LIMIT = "1GB"
MARTS_MEMORY_LIMIT = "2GB"


def rebuild_warehouse(url: str, fill: Callable[[Connection, Callable[[], None]], T]) -> T:
    """Run ``fill(conn, checkpoint)`` into a fresh warehouse and publish it only when it returns."""
    path = duckdb_path(url)
    if path is not None:
        with private_umask():  # the new file and its WAL hold PHI from the first byte
            return _rebuild_duckdb(path, fill)
    engine = writer_engine(url)
    try:
        with engine.begin() as conn:
            schema.metadata.drop_all(conn)
            schema.metadata.create_all(conn)
            conn.execute(schema.calendar_month.insert(), calendar_rows())
            result = fill(conn, lambda: None)
            semantic.refresh_marts(conn)
            return result
    finally:
        engine.dispose()


# The fact tables a demo build bulk-loads (millions of rows at 10M claims). On DuckDB they are created
# without their PRIMARY KEY (see the module docstring); every other table keeps its key.
UNKEYED_FACTS = frozenset({
    "medical_claim", "pharmacy_claim", "eligibility", "member_coverage_tier", "claim_status_event",
    "claim_payment", "claim_adjustment", "service_line_payment", "remark_code", "patient_payment",
    "claim_write_off", "eligibility_check",
})


def _create_tables(conn: Connection) -> None:
    """``schema.metadata.create_all``, except that the :data:`UNKEYED_FACTS` get the same columns, types
    and NOT NULLs without a PRIMARY KEY constraint (their indexes are PostgreSQL-only)."""
    keyless = sa.MetaData()
    for table in schema.metadata.sorted_tables:
        if table.name in UNKEYED_FACTS:
            columns = (sa.Column(c.name, c.type, nullable=c.nullable) for c in table.columns)
            sa.Table(table.name, keyless, *columns).create(conn)
        else:
            table.create(conn)


def _release_memory() -> None:
    """Hand memory freed by Python back to the OS (glibc keeps freed heap pages otherwise)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _rebuild_duckdb(path: Path, fill: Callable[[Connection, Callable[[], None]], T]) -> T:
    """Build into a file beside the target and rename it over the target once complete."""
    tmp = path.with_name(f".{path.name}.building-{os.getpid()}")
    spill = tmp.with_name(tmp.name + ".tmp")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    shutil.rmtree(spill, ignore_errors=True)
    engine = writer_engine(f"duckdb:///{tmp}")
    try:
        with engine.connect() as conn:
            cap_duckdb_memory(conn, BUILD_MEMORY_LIMIT, spill)
            _create_tables(conn)
            conn.execute(schema.calendar_month.insert(), calendar_rows())
            result = fill(conn, conn.commit)
            conn.commit()
            _release_memory()  # the fill's batches, before DuckDB may use more
            cap_duckdb_memory(conn, MARTS_MEMORY_LIMIT)
            semantic.refresh_marts(conn)  # the pages read these, never the facts
            conn.commit()
        engine.dispose()
        make_private(tmp, companions=DUCKDB_COMPANIONS)
        os.replace(tmp, path)
    except BaseException:
        engine.dispose()
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
        shutil.rmtree(spill, ignore_errors=True)
        raise
    return result
