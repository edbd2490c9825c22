"""CSV export as its own unit: streams rows, neutralises spreadsheet formulas, keeps numbers numbers.

A text cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return is prefixed with a single
quote so a spreadsheet shows it as text (OWASP CSV injection). Numbers are written as numbers: a
refund of -9.00 stays ``-9.00``; money columns always carry two decimals.

Two writers follow these rules: :func:`iter_csv` for a report's frame (aggregates, a few thousand rows), and
:func:`iter_query_csv` for claim-level reports, whose rows the warehouse formats and writes itself (a
million rows at warehouse speed, in constant memory). A missing value is an empty field in both; lines end
in ``\r\n`` (RFC 4180) in the first, ``\n`` in the second (all PostgreSQL's COPY writes); spreadsheets read
either.
"""

from __future__ import annotations

import csv
import io
import math
import numbers
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.warehouse.engine import copy_csv

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def _cell(value: object, money: bool) -> object:
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isnan(value):
            return ""
        if money:
            return f"{value:.2f}"
        return int(value) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return safe_text(str(value))


def iter_csv(frame: pd.DataFrame, *, money: tuple[str, ...] = (), chunk_rows: int = 5000) -> Iterator[str]:
    """Yield the CSV text of ``frame`` in chunks: the header first, then ``chunk_rows`` rows at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([safe_text(str(c)) for c in frame.columns])
    money_flags = [c in money for c in frame.columns]
    count = 0
    for row in frame.itertuples(index=False, name=None):
        writer.writerow([_cell(v, m) for v, m in zip(row, money_flags, strict=True)])
        count += 1
        if count % chunk_rows == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def to_csv(frame: pd.DataFrame, *, money: tuple[str, ...] = ()) -> str:
    return "".join(iter_csv(frame, money=money))


def _sql_cell(column: sa.ColumnElement, money: bool) -> sa.ColumnElement:
    """A column as :func:`_cell` writes it, in SQL: text neutralised, booleans spelt, money to the cent."""
    if isinstance(column.type, sa.Boolean):
        return sa.case((column, "true"), (sa.not_(column), "false"), else_=None)
    if money:
        return sa.cast(column, sa.Numeric(16, 2))
    if isinstance(column.type, sa.String):
        first = sa.func.substr(column, 1, 1)
        return sa.case((first.in_(FORMULA_PREFIXES), sa.literal("'") + column), else_=column)
    return column


def iter_query_csv(engine: Engine, rows: sa.Subquery, *, columns: Sequence[str], order: Sequence[str],
                   money: tuple[str, ...] = (), descending: Sequence[str] = ()) -> Iterator[bytes]:
    """The CSV of ``rows``' ``columns`` sorted by ``order`` (``descending`` ones high first): the header, then the
    rows the warehouse writes, one value of the first sort key at a time (each practice's rows, say): the
    warehouse then never sorts more than the largest of them (a 640k-row export at 10M claims grew the server
    by 356 MB in one sort)."""
    first = rows.c[order[0]]
    query = sa.select(*[_sql_cell(rows.c[name], name in money).label(name) for name in columns])
    yield (",".join(safe_text(name) for name in columns) + "\n").encode()  # names are identifiers
    with engine.connect() as conn:  # one opening of the warehouse for the whole export
        values = conn.execute(sa.select(first).distinct().order_by(first.asc().nulls_last())).scalars().all()
        for value in values:
            part = query.where(first.is_(None) if value is None else first == value)
            yield from copy_csv(conn, part.order_by(*[
                (rows.c[name].desc() if name in descending else rows.c[name].asc()).nulls_last()
                for name in order[1:]]))
