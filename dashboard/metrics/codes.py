"""What 835 codes mean to the people who work them: each CARC grouped into a reason (``carc_reasons.csv``),
each remark code (RARC) with what it asks of the practice (``rarc_meanings.csv``) and each claim status (CLP02),
all in this project's own words: X12's descriptions are licensed by X12 and not shipped. Every grid, chart, CSV
and claim page that shows one of these codes shows its meaning from here."""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement

CARC_REASONS_FILE = Path(__file__).with_name("carc_reasons.csv")
RARC_MEANINGS_FILE = Path(__file__).with_name("rarc_meanings.csv")
OTHER_REASON = "other reason"
OTHER_REMARK = "see the payer's remark"
# CLP02, the claim's status in an 835 (X12 claim status codes; the words are ours)
CLAIM_STATUS = {
    "1": "processed as primary", "2": "processed as secondary", "3": "processed as tertiary", "4": "denied",
    "19": "processed as primary, forwarded to another payer",
    "20": "processed as secondary, forwarded to another payer",
    "21": "processed as tertiary, forwarded to another payer", "22": "reversal of an earlier payment",
    "23": "not this payer's claim, forwarded to another payer", "25": "priced only, no payment (predetermination)",
}


def _code_table(path: Path, column: str) -> dict[str, str]:
    """code -> text from a CSV beside this module (lines starting '#' state the source and licence)."""
    with path.open(newline="") as handle:
        rows = csv.DictReader(line for line in handle if not line.startswith("#"))
        return {row["code"]: row[column] for row in rows}


@functools.cache
def carc_reasons() -> dict[str, str]:
    """CARC -> its reason group."""
    return _code_table(CARC_REASONS_FILE, "reason")


@functools.cache
def rarc_meanings() -> dict[str, str]:
    """RARC -> what it asks of the practice."""
    return _code_table(RARC_MEANINGS_FILE, "meaning")


def rarc_meaning(code: str | None) -> str:
    return rarc_meanings().get(code or "", OTHER_REMARK)


def claim_status(code: str | None) -> str:
    return CLAIM_STATUS.get(code or "", f"status {code}")


def carc_reason(code: str | None) -> str:
    return carc_reasons().get(code or "", OTHER_REASON)


def carc_reason_column(codes: pd.Series) -> pd.Series:
    # built like the other text columns of a fetched frame (pandas infers their dtype), so a frame keeps its
    # dtypes through the shared cache
    return pd.Series([carc_reason(code) for code in codes], index=codes.index)


def carc_reason_sql(code: ColumnElement) -> ColumnElement:
    """The same mapping in SQL, for rows paged, sorted and filtered in the warehouse."""
    return sa.case({carc: reason for carc, reason in carc_reasons().items()}, value=code, else_=OTHER_REASON)


def rarc_meaning_sql(code: ColumnElement) -> ColumnElement:
    """:func:`rarc_meaning` in SQL."""
    return sa.case(dict(rarc_meanings()), value=code, else_=OTHER_REMARK)
