"""Engines for the warehouse URL, schema creation and bulk writes.

DuckDB allows one writer per file, so readers open the file read-only with no pool: each request
gets a fresh connection and therefore sees a file swapped in by a load (build-and-swap), never a
half-written one. PostgreSQL and other servers use an ordinary pooled engine.
"""

from __future__ import annotations

import calendar
import contextlib
import csv
import datetime as dt
import io
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

from dashboard.errors import BadInput, WarehouseMissing
from dashboard.files import DUCKDB_COMPANIONS, make_private, private_dir
from dashboard.warehouse import schema


def is_duckdb(url: str | sa.URL) -> bool:
    return sa.make_url(url).get_backend_name() == "duckdb"


def duckdb_path(url: str | sa.URL) -> Path | None:
    """The file behind a DuckDB URL, or None for in-memory DuckDB and other backends."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "duckdb" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _parse(url: str) -> sa.URL:
    try:
        return sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise BadInput(f"not a database URL: {url!r}") from exc


# PostgreSQL session settings. JIT off: the marts' refresh queries cost enough to be JIT-compiled, and on a
# one-practice refresh at 1M claims compiling took 3.1 of 7.0 s (ar intervals) while the pages' reads are too
# small to gain from it. The writer gets more memory per sort and hash (default 4 MB): a refresh's aggregates
# spilled to disk in up to 101 batches; with 64 MB the largest practice's refresh took 26 s instead of 33 s.
# One load writes at a time, so this is the memory of a few hashes, once.
PG_READER_OPTIONS = "-c jit=off"
PG_WRITER_OPTIONS = "-c jit=off -c work_mem=64MB"


def _server_engine(url: sa.URL, options: str) -> Engine:
    """A pooled engine for PostgreSQL (with ``options``) or another server; options in the URL win."""
    if url.get_backend_name() != "postgresql" or "options" in url.query:
        return sa.create_engine(url, pool_pre_ping=True)
    return sa.create_engine(url, pool_pre_ping=True, connect_args={"options": options})


def reader_engine(url: str) -> Engine:
    """An engine for reading. Raises WarehouseMissing when a DuckDB file is absent or has no schema."""
    parsed = _parse(url)
    path = duckdb_path(parsed)
    if path is not None:
        if not path.exists():
            raise WarehouseMissing(
                f"no warehouse at {path}: run `dashboard demo` or `dashboard load` first"
            )
        return sa.create_engine(parsed, poolclass=NullPool, connect_args={"read_only": True})
    return _server_engine(parsed, PG_READER_OPTIONS)


def writer_engine(url: str) -> Engine:
    """An engine for loads and schema creation (DuckDB: read-write, single connection at a time)."""
    parsed = _parse(url)
    path = duckdb_path(parsed)
    if path is not None:
        private_dir(path.parent)
        engine = sa.create_engine(parsed, poolclass=NullPool)

        @sa.event.listens_for(engine, "connect")
        def _private(_dbapi_connection, _record) -> None:
            # DuckDB creates the file with the process umask; it holds PHI, so owner-only from the start.
            make_private(path, companions=DUCKDB_COMPANIONS)

        return engine
    return _server_engine(parsed, PG_WRITER_OPTIONS)


def cap_duckdb_memory(conn: Connection, limit: str, spill: Path | None = None) -> None:
    """Cap a DuckDB writer's memory (by default it takes 80% of the RAM and keeps every block it wrote);
    past the cap it spills to ``spill``, a private directory beside the file being written."""
    raw = conn.connection.driver_connection
    raw.execute(f"SET memory_limit = '{limit}'")
    if spill is not None:
        raw.execute(f"SET temp_directory = '{spill}'")


def has_schema(bind: Engine | sa.Connection) -> bool:
    return sa.inspect(bind).has_table("medical_claim")


def require_schema(bind: Engine | sa.Connection) -> None:
    """Raise WarehouseMissing when there are no tables, or the marts the pages read were never built (a
    warehouse made by an older version); pass an open connection to save opening another."""
    from dashboard.warehouse.semantic import MARTS_VERSION

    # One cheap query on the hot path (every report); the catalogue is asked only when it fails.
    try:
        with bind.connect() if isinstance(bind, Engine) else contextlib.nullcontext(bind) as conn:
            version = conn.execute(sa.text("SELECT max(version) FROM mart_state LEFT JOIN data_load_scope ON false"
                                           )).scalar()
        if version == MARTS_VERSION:
            return
        raise WarehouseMissing("the warehouse's marts were built by another version: run `dashboard marts refresh`")
    except sa.exc.DBAPIError:
        if isinstance(bind, sa.Connection) and bind.in_transaction():
            bind.rollback()  # PostgreSQL: the failed statement aborted the transaction
    inspector = sa.inspect(bind)
    if not inspector.has_table("medical_claim"):
        raise WarehouseMissing("the warehouse has no tables yet: run `dashboard demo` or `dashboard load`")
    raise WarehouseMissing("the warehouse's marts are not built yet: run `dashboard marts refresh`")


def calendar_rows(first_year: int = schema.CALENDAR_FIRST_YEAR,
                  last_year: int = schema.CALENDAR_LAST_YEAR) -> list[dict]:
    rows = []
    for year in range(first_year, last_year + 1):
        for month in range(1, 13):
            days = calendar.monthrange(year, month)[1]
            start = dt.date(year, month, 1)
            rows.append({
                "month_start": start,
                "month_end": dt.date(year, month, days),
                "next_month_start": start + dt.timedelta(days=days),
                "days_in_month": days,
            })
    return rows


def ensure_indexes(conn: Connection) -> None:
    """PostgreSQL: add any index a newer version defines to a warehouse made by an older one (create_all
    only indexes the tables it creates), and give the facts statistics if they have none (a warehouse built
    before refreshes analysed them): a load's mart refresh is planned on them."""
    if conn.dialect.name != "postgresql":
        return
    for table in schema.metadata.sorted_tables:
        for index in table.indexes:
            index.create(conn, checkfirst=True)
    analyze_stale(conn, schema.FACT_TABLES)


# A table whose size moved by more than this since its last ANALYZE is analysed again (autovacuum's own
# default threshold is 10% of the rows plus 50; this runs inside loads, so a little less eagerly)
STALE_FRACTION = 0.2


def analyze_stale(conn: Connection, tables: Sequence[sa.Table]) -> list[str]:
    """PostgreSQL: ANALYZE those of ``tables`` that have no statistics or whose size (in pages, this
    transaction's writes included) moved by more than STALE_FRACTION since their last ANALYZE; returns their
    names. Autovacuum may be off, and it never sees a load's rows before the load commits; and
    without statistics the planner takes a tenant's rows for 0.5% of a table: a one-practice refresh at 1M
    claims planned 13 rows where there were 21,000 and ran 52 s (denial lines) and over 7 min (practice
    months) in nested loops, instead of 1 and 11 s. Cheap when nothing is stale (one catalogue query);
    ANALYZE samples 30,000 rows a table, ~2.5 s for every fact table at 1M claims."""
    if conn.dialect.name != "postgresql" or not tables:
        return []
    stale = conn.execute(sa.text("""
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relname = ANY(:names) AND c.relkind = 'r'
          AND (NOT EXISTS (SELECT 1 FROM pg_stats s WHERE s.schemaname = n.nspname AND s.tablename = c.relname)
               OR abs(pg_relation_size(c.oid) / current_setting('block_size')::int - c.relpages)
                  > :fraction * greatest(c.relpages, 1))
        ORDER BY c.relname"""), {"names": [t.name for t in tables], "fraction": STALE_FRACTION}).scalars().all()
    for name in stale:
        conn.execute(sa.text(f'ANALYZE "{name}"'))
    return list(stale)


def create_schema(engine: Engine) -> None:
    """Create every warehouse table that is missing (marts included), and fill the calendar. Idempotent."""
    from dashboard.warehouse import semantic  # registers the mart tables

    schema.metadata.create_all(engine)
    with engine.begin() as conn:
        ensure_indexes(conn)
        if conn.execute(sa.select(sa.func.count()).select_from(schema.calendar_month)).scalar_one() == 0:
            conn.execute(schema.calendar_month.insert(), calendar_rows())
        state = semantic.mart_state
        no_claims = conn.execute(sa.select(schema.medical_claim.c.claim_id).limit(1)).first() is None
        if no_claims and conn.execute(sa.select(sa.func.count()).select_from(state)).scalar_one() == 0:
            # a new, empty warehouse: its (empty) marts are up to date; an old one with facts is not
            conn.execute(state.insert().values(horizon=None, version=semantic.MARTS_VERSION))


def bulk_insert(conn: Connection, table: sa.Table, frame: pd.DataFrame) -> int:
    """Append a DataFrame to a table inside the caller's transaction; returns the row count.

    Uses DuckDB's DataFrame scan or PostgreSQL COPY; other dialects fall back to executemany.
    Columns of the table missing from the frame are left NULL.
    """
    if frame.empty:
        return 0
    columns = [c.name for c in table.columns if c.name in frame.columns]
    frame = frame[columns]
    dialect = conn.dialect.name
    if dialect == "duckdb":
        raw = conn.connection.driver_connection
        view = f"_bulk_{table.name}"
        raw.register(view, frame)
        try:
            cols = ", ".join(f'"{c}"' for c in columns)
            raw.execute(f'INSERT INTO "{table.name}" ({cols}) SELECT {cols} FROM {view}')
        finally:
            raw.unregister(view)
    elif dialect == "postgresql":
        raw = conn.connection.driver_connection
        cols = ", ".join(f'"{c}"' for c in columns)
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False, header=False, na_rep="\\N")
        buffer.seek(0)
        with raw.cursor() as cursor, cursor.copy(
            f'COPY "{table.name}" ({cols}) FROM STDIN WITH (FORMAT csv, NULL \'\\N\')'
        ) as copy:
            while chunk := buffer.read(1 << 20):
                copy.write(chunk)
    else:
        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        conn.execute(table.insert(), records)
    return len(frame)


def copy_csv(conn: Connection, query: sa.Select, *, chunk_bytes: int = 1 << 20) -> Iterator[bytes]:
    """The rows of ``query`` as CSV (no header, ``\\n`` line ends, NULL as an empty field), written by the
    warehouse itself and streamed in chunks: a million rows never become Python objects. ``conn`` stays the
    caller's, so several queries share one opening of the warehouse.

    DuckDB writes them to a private temporary file that is unlinked once open (it cannot write to a pipe);
    PostgreSQL streams ``COPY … TO STDOUT``; other databases go through the csv module a batch at a time.
    The query is rendered with its values inlined (COPY takes no parameters): they are the resolved filters,
    escaped by SQLAlchemy's literal rendering."""
    dialect = conn.dialect.name
    if dialect not in ("duckdb", "postgresql"):
        result = conn.execution_options(stream_results=True).execute(query)
        while rows := result.fetchmany(10_000):
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerows([["" if v is None else v for v in row] for row in rows])
            yield buffer.getvalue().encode()
        return
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    raw = conn.connection.driver_connection
    if dialect == "duckdb":
        with tempfile.TemporaryDirectory(prefix="export-") as tmp:  # mode 700: owner only
            path = Path(tmp) / "rows.csv"
            raw.execute(f"COPY ({sql}) TO '{path}' (FORMAT csv, HEADER false)")
            handle = open(path, "rb")  # noqa: SIM115 (closed below, after the file is unlinked)
            path.unlink()
        with handle:
            while chunk := handle.read(chunk_bytes):
                yield chunk
        return
    with raw.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
        pending = bytearray()
        for data in copy:
            pending += data
            if len(pending) >= chunk_bytes:
                yield bytes(pending)
                pending.clear()
        if pending:
            yield bytes(pending)
