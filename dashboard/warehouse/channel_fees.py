"""A practice's payment-channel terms (``payment_channel_fee``): the rate of each EFT payment and the monthly cap
the payment-channel-fees report counts with, where the practice's terms differ from the published ones."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.errors import BadInput, NotFound
from dashboard.metrics import practice as pm
from dashboard.warehouse import schema as s


def channel_fees(conn: Connection) -> pd.DataFrame:
    """Every practice with the rate and cap its fee is counted with, and where they come from."""
    p, fee = s.practice, s.payment_channel_fee
    rows = conn.execute(sa.select(p.c.practice_id, p.c.practice_name, p.c.premium_payment_portal, fee.c.rate,
                                  fee.c.monthly_cap, fee.c.practice_id.is_not(None))
                        .outerjoin(fee, fee.c.practice_id == p.c.practice_id).order_by(p.c.practice_id)).all()
    out = []
    for pid, name, premium, rate, cap, own in rows:
        if own:
            out.append((pid, name, float(rate), None if cap is None else float(cap), "practice's terms"))
        elif premium:
            out.append((pid, name, pm.PORTAL_FEE_RATE, pm.PORTAL_FEE_CAP, "published (premium portal)"))
        else:
            out.append((pid, name, 0.0, None, "basic access (free)"))
    return pd.DataFrame(out, columns=["practice_id", "practice_name", "rate", "monthly_cap", "terms"])


def set_channel_fee(conn: Connection, *, practice_id: str, rate: float | None = None, cap: float | None = None,
                    no_cap: bool = False, clear: bool = False) -> None:
    """Set (or with ``clear``, remove) a practice's own rate and monthly cap (``no_cap``: none)."""
    if conn.execute(sa.select(s.practice.c.practice_id).where(s.practice.c.practice_id == practice_id)).first() \
            is None:
        raise NotFound(f"unknown practice {practice_id!r}")
    fee = s.payment_channel_fee
    if clear:
        conn.execute(fee.delete().where(fee.c.practice_id == practice_id))
        return
    if rate is None or not 0 <= rate <= 0.1:
        raise BadInput("the rate is a share of each payment from 0 to 0.1 (0.005 is 0.5%)")
    if cap is not None and (no_cap or cap < 0):
        raise BadInput("give a monthly cap of 0 or more, or --no-cap")
    conn.execute(fee.delete().where(fee.c.practice_id == practice_id))
    conn.execute(fee.insert().values(practice_id=practice_id, rate=rate, monthly_cap=None if no_cap else cap,
                                     changed_at=dt.datetime.now(dt.UTC).replace(tzinfo=None)))
