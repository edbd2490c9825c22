"""Admin read models: data freshness of the warehouse and the audit log, for the admin pages."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.auth import service
from dashboard.warehouse import schema as s
from dashboard.warehouse.engine import require_schema

COUNTED_TABLES = (s.medical_claim, s.pharmacy_claim, s.eligibility, s.remittance, s.claim_payment,
                  s.claim_adjustment, s.patient_payment, s.eligibility_check)


def data_freshness(warehouse: Engine) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(loads: the latest load per source with its 'data as of'; tables: row counts per table)."""
    require_schema(warehouse)
    dl = s.data_load
    with warehouse.connect() as conn:
        loads = conn.execute(
            sa.select(dl.c.source, sa.func.count(), sa.func.max(dl.c.loaded_at), sa.func.max(dl.c.data_as_of),
                      sa.func.sum(dl.c.row_count)).group_by(dl.c.source).order_by(dl.c.source)
        ).all()
        counts = [(t.name, conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
                  for t in COUNTED_TABLES]
    return (pd.DataFrame(loads, columns=["source", "loads", "last_loaded_at", "data_as_of", "rows"]),
            pd.DataFrame(counts, columns=["table", "rows"]))


def users_frame(app_db: Engine) -> pd.DataFrame:
    rows = [{"id": u.id, "email": u.email, "role": u.role, "active": u.is_active,
             "practices": ", ".join(u.practice_ids), "employers": ", ".join(u.employer_ids),
             "mfa": u.mfa_enabled, "locked_until": u.locked_until, "last_login_at": u.last_login_at}
            for u in service.list_users(app_db)]
    return pd.DataFrame(rows, columns=["id", "email", "role", "active", "practices", "employers", "mfa",
                                       "locked_until", "last_login_at"])


def audit_frame(app_db: Engine, *, limit: int = 2000, action: str | None = None) -> pd.DataFrame:
    return pd.DataFrame(service.audit_entries(app_db, limit=limit, action=action),
                        columns=["id", "at", "user_id", "email", "action", "detail", "ip"])
