"""Replace a warehouse's contents without readers ever seeing a half-built one.

DuckDB: build into a new file beside the target, then rename it over the target (atomic on POSIX);
open readers keep the old file until they reconnect. Nobody reads the new file before the rename, so the
build may commit as it goes (``checkpoint``), which keeps memory bounded for 10M-claim demos. Other
backends: drop and rebuild every warehouse table inside one transaction, which readers see only once it
commits; there ``checkpoint`` does nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy.engine import Connection

from dashboard.files import DUCKDB_COMPANIONS, make_private, private_umask
from dashboard.warehouse import schema
from dashboard.warehouse.engine import calendar_rows, duckdb_path, writer_engine

T = TypeVar("T")


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
            return fill(conn, lambda: None)
    finally:
        engine.dispose()


def _rebuild_duckdb(path: Path, fill: Callable[[Connection, Callable[[], None]], T]) -> T:
    """Build into a file beside the target and rename it over the target once complete."""
    tmp = path.with_name(f".{path.name}.building-{os.getpid()}")
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)
    engine = writer_engine(f"duckdb:///{tmp}")
    try:
        with engine.connect() as conn:
            schema.metadata.create_all(conn)
            conn.execute(schema.calendar_month.insert(), calendar_rows())
            result = fill(conn, conn.commit)
            conn.commit()
        engine.dispose()
        make_private(tmp, companions=DUCKDB_COMPANIONS)
        os.replace(tmp, path)
    except BaseException:
        engine.dispose()
        tmp.unlink(missing_ok=True)
        tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
        raise
    return result
