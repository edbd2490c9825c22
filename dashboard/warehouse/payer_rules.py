"""Each payer's contract terms the worklists count with: appeal days and follow-up days (definitions.
PAYER_RULE_DEFAULTS by payer type, unless a practice's contract says otherwise, kept in ``payer_rule``)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.errors import BadInput, NotFound
from dashboard.metrics import definitions as d
from dashboard.warehouse import schema as s
from dashboard.warehouse import semantic as sem

MAX_DAYS = 3650


def payer_rules(conn: Connection) -> pd.DataFrame:
    """Every payer the warehouse knows (its payer table, and the payers of practice claims) with the days the
    worklists use and where they come from (contract: payer_rule; else the payer type's default)."""
    payer, rule, claims = s.payer, s.payer_rule, sem.source(sem.mart_claim)
    ids = sa.union(sa.select(payer.c.payer_id.label("payer_id")),
                   sa.select(claims.c.payer).where(claims.c.payer.is_not(None)).distinct(),
                   sa.select(rule.c.payer_id)).subquery("ids")
    q = (sa.select(ids.c.payer_id, payer.c.payer_name, payer.c.payer_type, rule.c.appeal_days, rule.c.follow_up_days,
                   d.payer_days("appeal_days", rule.c.appeal_days, payer.c.payer_type),
                   d.payer_days("follow_up_days", rule.c.follow_up_days, payer.c.payer_type))
         .select_from(ids).outerjoin(payer, payer.c.payer_id == ids.c.payer_id)
         .outerjoin(rule, rule.c.payer_id == ids.c.payer_id).order_by(ids.c.payer_id))
    rows = conn.execute(q).all()
    return pd.DataFrame([(r[0], r[1] or r[0], r[2] or "", int(r[5]), "contract" if r[3] is not None else "default",
                          int(r[6]), "contract" if r[4] is not None else "default") for r in rows],
                        columns=["payer_id", "payer_name", "payer_type", "appeal_days", "appeal_days_from",
                                 "follow_up_days", "follow_up_days_from"])


def set_payer_rule(conn: Connection, *, payer_id: str, appeal_days: int | None = None,
                   follow_up_days: int | None = None, clear: bool = False) -> None:
    """Set (or with ``clear``, remove) a payer's contract terms; a term not given keeps its value."""
    known = set(payer_rules(conn)["payer_id"])
    if payer_id not in known:
        raise NotFound(f"unknown payer {payer_id!r}")
    for name, value in (("appeal_days", appeal_days), ("follow_up_days", follow_up_days)):
        if value is not None and not 1 <= value <= MAX_DAYS:
            raise BadInput(f"{name.replace('_', ' ')} must be from 1 to {MAX_DAYS}, got {value}")
    rule = s.payer_rule
    current = conn.execute(sa.select(rule).where(rule.c.payer_id == payer_id)).mappings().first()
    conn.execute(rule.delete().where(rule.c.payer_id == payer_id))
    if clear:
        return
    values = {"appeal_days": current["appeal_days"] if current else None,
              "follow_up_days": current["follow_up_days"] if current else None}
    values.update({k: v for k, v in (("appeal_days", appeal_days), ("follow_up_days", follow_up_days))
                   if v is not None})
    conn.execute(rule.insert().values(payer_id=payer_id, changed_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
                                      **values))
