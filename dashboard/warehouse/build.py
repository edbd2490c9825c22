"""Replace a warehouse's contents without readers ever seeing a half-built one.

DuckDB: build into a new file beside the target, then rename it over the target (atomic on POSIX);
open readers keep the old file until they reconnect. Other backends: drop and rebuild every warehouse
table inside one transaction, which readers see only once it commits.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.engine import Connection

from dashboard.warehouse import schema
from dashboard.warehouse.engine import calendar_rows, duckdb_path, writer_engine

T = TypeVar("T")


def rebuild_warehouse(url: str, fill: Callable[[Connection], T]) -> T:
    path = duckdb_path(url)
    if path is not None:
        tmp = path.with_name(f".{path.name}.building-{os.getpid()}")
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)
        engine = writer_engine(f"duckdb:///{tmp}")
        try:
            with engine.begin() as conn:
                schema.metadata.create_all(conn)
                conn.execute(schema.calendar_month.insert(), calendar_rows())
                result = fill(conn)
            engine.dispose()
            os.replace(tmp, path)
        except BaseException:
            engine.dispose()
            tmp.unlink(missing_ok=True)
            tmp.with_name(tmp.name + ".wal").unlink(missing_ok=True)
            raise
        return result
    engine = writer_engine(url)
    try:
        with engine.begin() as conn:
            schema.metadata.drop_all(conn)
            schema.metadata.create_all(conn)
            conn.execute(schema.calendar_month.insert(), calendar_rows())
            return fill(conn)
    finally:
        engine.dispose()
