"""What an 835 adjustment reason code means to the people who work it: each CARC grouped into a reason
(``carc_reasons.csv`` beside this module, in this project's own words; X12's descriptions are licensed by X12
and not shipped). Every grid, chart and CSV that shows a CARC shows its reason from here."""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement

CARC_REASONS_FILE = Path(__file__).with_name("carc_reasons.csv")
OTHER_REASON = "other reason"


@functools.cache
def carc_reasons() -> dict[str, str]:
    """CARC -> its reason group (lines starting '#' state the source and licence)."""
    with CARC_REASONS_FILE.open(newline="") as handle:
        rows = csv.DictReader(line for line in handle if not line.startswith("#"))
        return {row["code"]: row["reason"] for row in rows}


def carc_reason(code: str | None) -> str:
    return carc_reasons().get(code or "", OTHER_REASON)


def carc_reason_column(codes: pd.Series) -> pd.Series:
    # built like the other text columns of a fetched frame (pandas infers their dtype), so a frame keeps its
    # dtypes through the shared cache
    return pd.Series([carc_reason(code) for code in codes], index=codes.index)


def carc_reason_sql(code: ColumnElement) -> ColumnElement:
    """The same mapping in SQL, for rows paged, sorted and filtered in the warehouse."""
    return sa.case({carc: reason for carc, reason in carc_reasons().items()}, value=code, else_=OTHER_REASON)
