"""835 provider-level adjustments (PLB): money a payer adds to or takes back from a payment without tying it
to a claim (interest, overpayment recoveries, forwarding balances, levies).

The cash a practice receives for an 835 is BPR02 = Σ CLP04 − Σ PLB04: a positive PLB amount is withheld from
the payment (WO overpayment recovery, FB forwarding balance applied), a negative one is added to it (L6
interest, FB balance carried forward). Claim payments alone (``payer_payments``) overstate the cash by the
recoupments and understate it by the interest; the ``remittances`` report reconciles each payment and
``payer_cash`` in the practice KPIs is Σ CLP04 − Σ PLB04. Source: ASC X12 835 TR3 (005010X221A1), PLB segment
and its balancing rule; reason codes in ``plb_reason_codes.csv`` beside this module (with their source).
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.metrics._query import fetch
from dashboard.metrics.filters import Filters
from dashboard.warehouse import marts as m
from dashboard.warehouse import semantic as sem

REASON_CODES_FILE = Path(__file__).with_name("plb_reason_codes.csv")
COLUMNS = ("practice_id", "month", "payer", "reason_code", "reason", "adjustments", "amount")


@functools.cache
def plb_reasons() -> dict[str, str]:
    """PLB03-1 adjustment reason code -> its meaning, from the shipped list (lines starting '#' name the
    source)."""
    with REASON_CODES_FILE.open(newline="") as handle:
        rows = csv.DictReader(line for line in handle if not line.startswith("#"))
        return {row["code"]: row["meaning"] for row in rows}


def reason_meaning(code: str | None) -> str:
    """The meaning of a PLB reason code; a code outside the standard list is said to be so, never dropped."""
    if not code:
        return "no reason code"
    return plb_reasons().get(code, f"not a standard PLB reason code ({code})")


def provider_adjustments(conn: Connection, f: Filters) -> pd.DataFrame:
    """835 provider-level adjustments (PLB) by practice, payment month (BPR16), payer and reason code
    (PLB03-1) with its meaning: how many adjustments and their amount as the 835 gives it (positive:
    withheld from the payment; negative: added to it). Read from ``mart_provider_adjustment_month``."""
    pa = sem.source(sem.mart_provider_adjustment_month)
    q = (sa.select(pa.c.practice_id, pa.c.month, pa.c.payer, pa.c.reason_code,
                   sa.func.sum(pa.c.adjustments), sa.func.sum(pa.c.amount))
         .where(m.within(pa.c.practice_id, f.practice_ids), pa.c.month >= f.start, pa.c.month <= f.end)
         .group_by(pa.c.practice_id, pa.c.month, pa.c.payer, pa.c.reason_code)
         .order_by(pa.c.practice_id, pa.c.month, pa.c.payer, pa.c.reason_code))
    out = fetch(conn, q, ["practice_id", "month", "payer", "reason_code", "adjustments", "amount"])
    out.insert(4, "reason", [reason_meaning(code) for code in out["reason_code"]])
    return out

