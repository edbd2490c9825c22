"""Replace a warehouse's contents without readers ever seeing a half-built one.

DuckDB: build into a new file beside the target, then rename it over the target (atomic on POSIX);
open readers keep the old file until they reconnect. Nobody reads the new file before the rename, so the
build may commit as it goes (``checkpoint``), which keeps memory bounded for 10M-claim demos. Other
backends: drop and rebuild every warehouse table inside one transaction, which readers see only once it
commits; there ``checkpoint`` does nothing.

A DuckDB build creates the tables without their PRIMARY KEY constraints (same columns, types and NOT
NULLs). DuckDB enforces a key with an in-memory ART index: maintained during the load it cost ~15% of the
build's CPU at 1M claims, grew the process to 2.8 GB at 10M and made up ~64% of the file; added after
the load (ALTER TABLE ... ADD PRIMARY KEY) the 18M-row medical_claim key alone needs 4-5 GB. The fill
writes unique keys by construction (tests/test_synthetic.py builds into a keyed schema, which would
reject a duplicate), and the loaders replace rows by key themselves (``table.primary_key`` from
``schema``), so the keys in ``schema`` stay the contract without the database enforcing them here.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.files import DUCKDB_COMPANIONS, make_private, private_umask
from dashboard.warehouse import schema, semantic
from dashboard.warehouse.engine import calendar_rows, duckdb_path, writer_engine

T = TypeVar("T")

# DuckDB's buffer pool defaults to 80% of RAM and keeps every block the build wrote cached, so a 10M-claim
# build would grow to several GB. Capped, it evicts written blocks and spills to a private temp directory
# beside the file instead; 1.5 GB leaves room for the generator's batches under a 3 GB process peak.
BUILD_MEMORY_LIMIT = "1536MB"


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


def _without_primary_keys(metadata: sa.MetaData) -> sa.MetaData:
    """The same tables, columns, types and NOT NULLs, without PRIMARY KEY constraints."""
    keyless = sa.MetaData()
    for table in metadata.sorted_tables:
        sa.Table(table.name, keyless, *(sa.Column(c.name, c.type, nullable=c.nullable) for c in table.columns))
    return keyless


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
            raw = conn.connection.driver_connection
            raw.execute(f"SET memory_limit = '{BUILD_MEMORY_LIMIT}'")
            raw.execute(f"SET temp_directory = '{spill}'")
            _without_primary_keys(schema.metadata).create_all(conn)
            conn.execute(schema.calendar_month.insert(), calendar_rows())
            result = fill(conn, conn.commit)
            conn.commit()
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
