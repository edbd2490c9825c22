"""Tables of the application database (users, scopes, sessions, audit), separate from the warehouse.

The app DB is SQLite by default (``DASHBOARD_APP_DB_URL``); PostgreSQL works the same. The audit log
is append-only: the code has no update or delete path for it, and database triggers refuse UPDATE, DELETE
(and on PostgreSQL TRUNCATE) from anyone, so a bug or a stray SQL session cannot rewrite history. The
owner can drop triggers, so every row is also hash-chained (``dashboard.auth.audit_chain``) and, on
PostgreSQL, the app connects as a role with only SELECT and INSERT on ``audit_log``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

metadata = MetaData()


def utcnow() -> dt.datetime:
    """Naive UTC, as every timestamp in these tables is stored."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", String, nullable=False),
    Column("role", String(32), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", DateTime, nullable=False),
    Column("failed_attempts", Integer, nullable=False, default=0),
    Column("locked_until", DateTime),
    Column("mfa_secret", String),  # Fernet-encrypted TOTP secret; set (not yet enabled) during enrolment
    Column("mfa_enabled", Boolean, nullable=False, default=False),
    # The last 30-second TOTP step accepted: a code of that step or an earlier one is a replay.
    Column("mfa_last_step", Integer),
    # Bumped on password change or "log out everywhere": every older session stops working.
    Column("session_version", Integer, nullable=False, default=1),
    Column("password_changed_at", DateTime),
    Column("last_login_at", DateTime),
)

user_scopes = Table(
    "user_scopes",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),  # practice | employer
    Column("scope_id", String(64), nullable=False),
    PrimaryKeyConstraint("user_id", "kind", "scope_id"),
)

recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("code_hash", String, nullable=False),
    Column("used_at", DateTime),
    PrimaryKeyConstraint("user_id", "code_hash"),
)

# Server-side sessions: the Flask session cookie carries a random id whose SHA-256 is the key here, so a
# logout or revocation holds even though the cookie itself lives on in the browser (or in an attacker's jar).
sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_at", DateTime, nullable=False),
    Column("last_seen_at", DateTime, nullable=False),
    Column("revoked_at", DateTime),
    Column("revoked_reason", String(32)),
    Column("ip", String(64)),
)

# token_id is the SHA-256 of the random token in the e-mailed link; the token itself is never stored.
password_resets = Table(
    "password_resets",
    metadata,
    Column("token_id", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("used_at", DateTime),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime, nullable=False),
    Column("user_id", Integer),
    Column("email", String(320)),
    Column("action", String(64), nullable=False),
    Column("detail", Text),  # JSON; never PHI
    Column("ip", String(64)),
    # Hash chain (dashboard.auth.audit_chain): NULL only on rows written before the chain existed.
    Column("prev_hash", String(64)),
    Column("row_hash", String(64)),
)

# One row (id 1): the id and hash of the last audit row. Appends lock it, so they serialise, and verify
# compares the end of the log with it (rows cut off the end).
audit_chain_head = Table(
    "audit_chain_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_id", Integer),
    Column("last_hash", String(64), nullable=False),
)


# A report a user saved (the builder's measure, grouping and comparison, its period or none for a rolling one,
# its employers): reopened by URL, shared with the users whose scope holds those employers
# (dashboard.access.can_open_saved_report), delivered by report_schedules.
saved_reports = Table(
    "saved_reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(120), nullable=False),
    Column("report", String(64), nullable=False),
    Column("options", Text, nullable=False),  # JSON object: the report's options
    Column("start_month", String(7)),  # YYYY-MM; NULL with end_month: the report's default period when run
    Column("end_month", String(7)),
    Column("employers", Text, nullable=False),  # JSON list of employer ids; [] = all of the viewer's
    Column("shared", Boolean, nullable=False, default=False),
    Column("created_at", DateTime, nullable=False),
)

# A saved report sent by e-mail, computed at send time under the recipient's scope (dashboard.schedules).
report_schedules = Table(
    "report_schedules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("saved_report_id", Integer, ForeignKey("saved_reports.id", ondelete="CASCADE"), nullable=False),
    Column("recipient_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("frequency", String(16), nullable=False),  # weekly | monthly
    Column("next_run_at", DateTime, nullable=False, index=True),
    Column("last_sent_at", DateTime),
    Column("failures", Integer, nullable=False, default=0),  # consecutive failed sends (retried with backoff)
    Column("last_error", String(500)),
    Column("claimed_until", DateTime),  # a scheduler process holds the send until then (no double sends)
    Column("created_at", DateTime, nullable=False),
)


APPEND_ONLY_MESSAGE = "audit_log is append-only"


def protect_audit_log(conn) -> None:
    """Install the triggers that make ``audit_log`` append-only and start its hash chain (idempotent).

    On PostgreSQL a role that does not own ``audit_log`` (the app role) cannot and need not install
    anything: it only checks that the owner did."""
    from dashboard.auth import audit_chain

    dialect = conn.dialect.name
    if dialect == "postgresql" and not conn.exec_driver_sql(
            "SELECT pg_has_role(current_user, relowner, 'USAGE') FROM pg_class "
            "WHERE oid = to_regclass('audit_log')").scalar():
        audit_chain.check_ready(conn)
        return
    if dialect == "sqlite":
        for event in ("UPDATE", "DELETE"):
            conn.exec_driver_sql(
                f"CREATE TRIGGER IF NOT EXISTS audit_log_no_{event.lower()} BEFORE {event} ON audit_log "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END")
    elif dialect == "postgresql":
        # Serialise workers starting together: concurrent CREATE OR REPLACE of one function can fail.
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('audit_log_append_only'))")
        conn.exec_driver_sql(
            "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}'; END $$")
        conn.exec_driver_sql(
            "CREATE OR REPLACE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()")
        conn.exec_driver_sql(
            "CREATE OR REPLACE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()")
    # Under the lock above (PostgreSQL) or SQLite's write lock: workers starting together create one head.
    audit_chain.initialise(conn)
