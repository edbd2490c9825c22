"""Run a selectable and return a DataFrame with the expected columns, money as float."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection


def fetch(conn: Connection, statement: sa.Executable, columns: Sequence[str]) -> pd.DataFrame:
    rows = conn.execute(statement).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=list(columns))
    for name in frame.columns:
        sample = next((v for v in frame[name] if v is not None and not (isinstance(v, float) and v != v)), None)
        if isinstance(sample, decimal.Decimal | int) and not isinstance(sample, bool):
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
        elif isinstance(sample, dt.datetime):
            frame[name] = [v.date() if isinstance(v, dt.datetime) else v for v in frame[name]]
    return frame


def ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """numerator / denominator, NaN where the denominator is 0 or missing."""
    num = pd.to_numeric(numerator, errors="coerce").astype("float64")
    den = pd.to_numeric(denominator, errors="coerce").astype("float64")
    return (num / den.where(den != 0)).astype("float64")
