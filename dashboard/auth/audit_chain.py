"""Tamper evidence for the audit log: a SHA-256 hash chain over ``audit_log`` and its one-row head.

Every row stores ``prev_hash`` (the hash of the row before it) and ``row_hash`` =
SHA-256(prev_hash || canonical JSON of id, at, user_id, email, action, detail, ip). ``audit_chain_head``
holds the id and hash of the last row. :func:`append` (called only by ``service.record``) takes the
chain lock inside the caller's transaction, so concurrent writers (threads, gunicorn workers) never fork
the chain and ids are allocated in chain order.

What :func:`verify` detects: an edited field, a deleted, inserted or reordered row anywhere (the next
link breaks), a row written around :func:`append` (no hash), and rows cut off the end (the head names a
row that is gone or differs). What it cannot detect on its own: someone with owner rights who rewrites a
row *and* recomputes every later hash *and* the head; the chain is plain SHA-256 and anyone can recompute
it. That is caught only against a head recorded outside the database (``dashboard audit verify`` prints
it; ``--anchor ID:HASH`` checks it later). Plain SHA-256 rather than an HMAC keyed by the app secret:
the secret sits on the same host as the database credentials, rotates for session reasons (which would
make history unverifiable), and an auditor could not verify without it; the external anchor and the
owner/app role split are what stop the owner, and a keyless chain keeps verification open to anyone.

Upgrade: rows written before the chain existed (``row_hash`` NULL) are never updated (the triggers refuse
that). On first start the head is set to the chain hashed *virtually* over those legacy rows, and the first
new row links to it; so legacy rows are covered from the upgrade on, but a change to one is reported at the
first chained row (which legacy row changed cannot be told), and changes made before the upgrade are not
detectable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from dashboard.auth.models import audit_chain_head, audit_log, metadata
from dashboard.errors import AuditChainBroken, AuditNotReady, BadInput

GENESIS = "0" * 64
HEAD_ID = 1
_FIELDS = ("id", "at", "user_id", "email", "action", "detail", "ip")
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _text(value) -> str | int | None:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="microseconds")
    return value


def canonical(row: Mapping) -> bytes:
    """The bytes hashed for one row: its fields as compact, key-sorted JSON (stable across both databases)."""
    return json.dumps({f: _text(row[f]) for f in _FIELDS}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def row_hash(row: Mapping, prev_hash: str) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical(row)).hexdigest()


def _lock_head(conn: sa.Connection) -> sa.Row | None:
    """The chain head, locked until the caller's transaction ends: the one point where appends serialise."""
    if conn.dialect.name == "sqlite":
        # A write statement takes SQLite's RESERVED lock (one writer at a time) until commit; taking it before
        # reading the head is what BEGIN IMMEDIATE would do, inside a transaction that may already be open.
        conn.execute(audit_chain_head.update().where(audit_chain_head.c.id == HEAD_ID)
                     .values(last_hash=audit_chain_head.c.last_hash))
        return conn.execute(sa.select(audit_chain_head).where(audit_chain_head.c.id == HEAD_ID)).first()
    # PostgreSQL (and others): a row lock on the head, held to commit; a waiter re-reads the committed head.
    return conn.execute(sa.select(audit_chain_head).where(audit_chain_head.c.id == HEAD_ID)
                        .with_for_update()).first()


def _next_id(conn: sa.Connection) -> int:
    """The new row's id, allocated under the chain lock so id order is chain order (the id is hashed)."""
    if conn.dialect.name == "postgresql":
        return conn.exec_driver_sql("SELECT nextval(pg_get_serial_sequence('audit_log', 'id'))").scalar_one()
    return conn.execute(sa.select(sa.func.coalesce(sa.func.max(audit_log.c.id), 0) + 1)).scalar_one()


def append(conn: sa.Connection, *, at: dt.datetime, action: str, user_id: int | None, email: str | None,
           detail: str | None, ip: str | None) -> int:
    """Append one chained row inside the caller's transaction; its id. Only ``service.record`` calls this."""
    head = _lock_head(conn)
    if head is None:
        raise AuditNotReady("the audit chain has no head; start the app (or run `dashboard db init`) as the "
                            "database owner once to create it")
    row = {"id": _next_id(conn), "at": at, "user_id": user_id, "email": email, "action": action,
           "detail": detail, "ip": ip}
    digest = row_hash(row, head.last_hash)
    conn.execute(audit_log.insert().values(**row, prev_hash=head.last_hash, row_hash=digest))
    conn.execute(audit_chain_head.update().where(audit_chain_head.c.id == HEAD_ID)
                 .values(last_id=row["id"], last_hash=digest))
    return row["id"]


def _rows(conn: sa.Connection) -> Iterable[sa.RowMapping]:
    # Streamed (server-side cursor on PostgreSQL): the log can be large. Options on the statement, not the
    # connection, which would keep them for the caller's later statements.
    return conn.execute(sa.select(audit_log).order_by(audit_log.c.id).execution_options(yield_per=2000)).mappings()


def initialise(conn: sa.Connection) -> None:
    """Create the chain head if missing, over any rows already there (legacy rows hashed virtually).

    Called by ``models.protect_audit_log`` as the owner, under its lock; idempotent."""
    if _lock_head(conn) is not None:
        return
    last_id, last = None, GENESIS
    for row in _rows(conn):
        last_id, last = row["id"], row_hash(row, last)
    conn.execute(audit_chain_head.insert().values(id=HEAD_ID, last_id=last_id, last_hash=last))


@dataclass(frozen=True)
class ChainReport:
    rows: int
    legacy_rows: int
    last_id: int | None
    last_hash: str


def _where(row: Mapping) -> str:
    return f"row {row['id']} ({_text(row['at'])}, {row['action']})"


def parse_anchor(text: str) -> tuple[int, str]:
    """``ID:HASH`` as printed by ``dashboard audit verify``."""
    match = re.fullmatch(r"\s*(\d+):([0-9a-f]{64})\s*", text or "")
    if not match:
        raise BadInput(f"an anchor is ID:HASH (64 hex digits) as printed by `dashboard audit verify`: {text!r}")
    return int(match.group(1)), match.group(2)


def verify(conn: sa.Connection, *, anchors: Iterable[tuple[int, str]] = ()) -> ChainReport:
    """Walk the whole chain in id order; raise :class:`AuditChainBroken` naming the first broken row.

    ``anchors`` are (id, hash) pairs recorded earlier outside the database: each must still be in the chain
    with that hash. The head table is read first and checked the same way, so rows appended while the walk
    runs do not raise a false alarm."""
    if not sa.inspect(conn).has_table(audit_chain_head.name):
        raise AuditNotReady("this app database has no audit chain yet; start the app (or run `dashboard db init`) "
                            "as the database owner once to create it")
    head = conn.execute(sa.select(audit_chain_head).where(audit_chain_head.c.id == HEAD_ID)).first()
    if head is None:
        raise AuditChainBroken("the audit chain head is missing (deleted, or the owner never started the app)")
    expected = {i: (h, "an anchor recorded earlier") for i, h in anchors}
    if head.last_id is not None:
        expected.setdefault(head.last_id, (head.last_hash, "the chain head"))
    running, count, legacy, last_id, chained = GENESIS, 0, 0, None, False
    for row in _rows(conn):
        computed = row_hash(row, running)
        if row["row_hash"] is None:
            if chained:
                raise AuditChainBroken(f"audit chain broken at {_where(row)}: the row has no hash; it was written "
                                       "around the application (or by an old version still running)")
            legacy += 1
        else:
            if row["prev_hash"] != running:
                cause = ("the rows before it, written before the chain began, were changed" if not chained and legacy
                         else "a row before it was deleted, inserted or moved")
                raise AuditChainBroken(f"audit chain broken at {_where(row)}: its link to the previous row does "
                                       f"not match; {cause}")
            if row["row_hash"] != computed:
                raise AuditChainBroken(f"audit chain broken at {_where(row)}: its content does not match its "
                                       "hash; the row was edited")
            chained = True
        if row["id"] in expected:
            want, what = expected.pop(row["id"])
            if computed != want:
                raise AuditChainBroken(f"audit chain broken at {_where(row)}: it does not match {what}; this row "
                                       "or an earlier one was rewritten along with the hashes")
        running, last_id, count = computed, row["id"], count + 1
    if expected:
        missing = min(expected)
        raise AuditChainBroken(f"audit chain broken at row {missing}: {expected[missing][1]} names it but the log "
                               f"ends at row {last_id}; rows were removed from the end")
    if head.last_id is None and count:
        raise AuditChainBroken("audit chain broken: the chain head records no rows but the log has some")
    return ChainReport(rows=count, legacy_rows=legacy, last_id=last_id, last_hash=running)


# --- PostgreSQL: an owner role for the schema, an app role that can only append to the audit log ----------

def _role(name: str) -> str:
    if not _ROLE_NAME.match(name or ""):
        raise BadInput(f"a role or database name is lower-case letters, digits and _ (max 63): {name!r}")
    return f'"{name}"'


def roles_script(*, owner: str, app: str, database: str) -> str:
    """SQL for a superuser (psql) creating the two roles and the app database, owned by ``owner``."""
    owner_q, app_q, db_q = _role(owner), _role(app), _role(database)
    if owner == app:
        raise BadInput("the owner and the app role must differ")
    return "\n".join([
        "-- Run as a PostgreSQL superuser: psql -v ON_ERROR_STOP=1 -f roles.sql; then \\password each role.",
        f"CREATE ROLE {owner_q} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;",
        f"CREATE ROLE {app_q} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT;",
        f"CREATE DATABASE {db_q} OWNER {owner_q};",
        f"REVOKE ALL ON DATABASE {db_q} FROM PUBLIC;",
        f"GRANT CONNECT ON DATABASE {db_q} TO {app_q};",
        f"\\connect {db_q}",
        f"ALTER SCHEMA public OWNER TO {owner_q};",
        "REVOKE ALL ON SCHEMA public FROM PUBLIC;",
        f"GRANT USAGE ON SCHEMA public TO {app_q};",
        "-- Next, as the owner: DASHBOARD_APP_DB_URL=<owner url> dashboard db init --app-role " + app,
        "",
    ])


def grant_app_role(conn: sa.Connection, *, app: str) -> list[str]:
    """As the owner: the app role gets normal DML on the app tables but only SELECT and INSERT on
    ``audit_log`` and SELECT, UPDATE on the chain head (re-run after an upgrade adds tables). The grants."""
    if conn.dialect.name != "postgresql":
        raise BadInput("database roles are a PostgreSQL feature; SQLite has no roles")
    app_q = _role(app)
    if app == conn.exec_driver_sql("SELECT current_user").scalar_one():
        raise BadInput("run `dashboard db init --app-role` as the owner role, not as the app role")
    found = conn.exec_driver_sql("SELECT rolsuper, pg_has_role(rolname, current_user, 'USAGE') FROM pg_roles "
                                 "WHERE rolname = %(app)s", {"app": app}).first()
    if found is None:
        raise BadInput(f"no role {app!r}; create it first (`dashboard db roles`)")
    if found[0] or found[1]:
        raise BadInput(f"role {app!r} is a superuser or a member of the owner role; it could rewrite the audit log")
    schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
    statements = [f'GRANT USAGE ON SCHEMA "{schema}" TO {app_q}']
    for table in metadata.sorted_tables:
        privileges = {"audit_log": "SELECT, INSERT", "audit_chain_head": "SELECT, UPDATE"}.get(
            table.name, "SELECT, INSERT, UPDATE, DELETE")
        # Revoke first, so a broader grant made by hand earlier does not survive.
        statements += [f"REVOKE ALL ON {table.name} FROM {app_q}", f"GRANT {privileges} ON {table.name} TO {app_q}"]
    statements.append(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "{schema}" TO {app_q}')
    for statement in statements:
        conn.exec_driver_sql(statement)
    return statements


def check_ready(conn: sa.Connection) -> None:
    """For a role that does not own ``audit_log`` (the app role): the triggers and chain head must be there,
    since it cannot create them."""
    triggers = set(conn.exec_driver_sql(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass('audit_log') AND tgenabled <> 'D'").scalars())
    missing = {"audit_log_no_change", "audit_log_no_truncate"} - triggers
    if missing:
        raise AuditNotReady(f"the audit log's triggers are missing or disabled ({', '.join(sorted(missing))}); "
                            "run `dashboard db init` as the owner role")
    if conn.execute(sa.select(audit_chain_head.c.id).where(audit_chain_head.c.id == HEAD_ID)).first() is None:
        raise AuditNotReady("the audit chain head is missing; run `dashboard db init` as the owner role")
