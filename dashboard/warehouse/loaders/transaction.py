"""One writer at a time, all or nothing, readers undisturbed.

DuckDB allows one read-write process per file while our app keeps reading it, so a load copies the
warehouse file, writes into the copy inside one transaction, and renames the copy over the original
(atomic on POSIX). Readers open a fresh read-only connection per request and so move to the new file
on their next request; a reader mid-query keeps the old inode. If anything fails (bad input, a crash,
a kill), the copy is thrown away and the warehouse is unchanged. A lock file serialises loaders.

Other backends (PostgreSQL) load inside one transaction, which readers see only once it commits.
A warehouse that does not exist yet is created with the schema.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.files import DUCKDB_COMPANIONS, make_private, open_private, private_dir, private_umask
from dashboard.warehouse import schema, semantic
from dashboard.warehouse.engine import calendar_rows, cap_duckdb_memory, duckdb_path, ensure_indexes, writer_engine

LOAD_MEMORY_LIMIT = "2GB"
log = logging.getLogger(__name__)


def _ensure_schema(conn: Connection) -> None:
    schema.metadata.create_all(conn)
    ensure_indexes(conn)
    if conn.execute(sa.select(sa.func.count()).select_from(schema.calendar_month)).scalar_one() == 0:
        conn.execute(schema.calendar_month.insert(), calendar_rows())


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    private_dir(path.parent)
    with open_private(path.with_name(f".{path.name}.lock")) as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def load_transaction(url: str) -> Iterator[Connection]:
    """A connection inside one transaction; its work becomes visible only if the block succeeds."""
    path = duckdb_path(url)
    if path is None:
        engine = writer_engine(url)
        try:
            with engine.begin() as conn:
                _ensure_schema(conn)
                yield conn
                refreshed = _refresh_touched(conn)
            if refreshed:
                vacuum_marts(engine)
        finally:
            engine.dispose()
        return
    with private_umask(), _file_lock(path):
        # Holding the lock, no other load runs: copies left by killed loads can go.
        for stale in path.parent.glob(f".{path.name}.loading-*"):
            stale.unlink(missing_ok=True)
        work = path.with_name(f".{path.name}.loading-{os.getpid()}")
        if path.exists():
            # copyfile, not copy2: the copy must not inherit an old, too open mode of the original.
            with open_private(work, mode="wb") as target, open(path, "rb") as source:
                copy_file(source, target)
        spill = work.with_name(work.name + ".tmp")
        engine = writer_engine(f"duckdb:///{work}")
        try:
            with engine.begin() as conn:
                # DuckDB would take 80% of the RAM for a mart refresh of a 10M-claim warehouse (12 GB seen);
                # capped, it spills to a private directory beside the copy instead.
                cap_duckdb_memory(conn, LOAD_MEMORY_LIMIT, spill)
                _ensure_schema(conn)
                yield conn
                _refresh_touched(conn)
            engine.dispose()
            make_private(work, companions=DUCKDB_COMPANIONS)
            os.replace(work, path)
        except BaseException:
            engine.dispose()
            _discard(work)
            raise
        finally:
            shutil.rmtree(spill, ignore_errors=True)


def copy_file(source: BinaryIO, target: BinaryIO) -> None:
    """Copy in the kernel (copy_file_range: no trip through Python; a reflink where the file system has
    them), else through a buffer. At 10M claims the warehouse is 2.4 GB: 0.8 s instead of 1.2–4.9 s here."""
    size = os.fstat(source.fileno()).st_size
    copied = 0
    try:
        while copied < size:
            step = os.copy_file_range(source.fileno(), target.fileno(), size - copied, copied, copied)
            if step == 0:
                break
            copied += step
    except OSError:  # not supported between these files: the portable way
        source.seek(0)
        target.seek(0)
        target.truncate()
        shutil.copyfileobj(source, target, 1 << 20)
        return
    if copied != size:
        raise OSError(f"copied {copied} of {size} bytes of the warehouse")


def touch(conn: Connection, *, practices=(), employers=()) -> None:
    """Note the practices and employers a load changed; their marts are rebuilt before it commits."""
    conn.info.setdefault("touched_practices", set()).update(p for p in practices if p)
    conn.info.setdefault("touched_employers", set()).update(e for e in employers if e)


def _refresh_touched(conn: Connection) -> bool:
    """Refresh the marts of the tenants the load touched; whether any were."""
    practices = conn.info.pop("touched_practices", set())
    employers = conn.info.pop("touched_employers", set())
    if practices or employers:
        semantic.refresh_marts(conn, practices=sorted(practices), employers=sorted(employers))
    return bool(practices or employers)


def vacuum_marts(engine: sa.Engine) -> None:
    """PostgreSQL, after a load commits: VACUUM the marts. A refresh deletes and rewrites a tenant's mart rows, and
    with autovacuum off nothing else reclaims the dead ones (at 1M claims, rolled-back refreshes' dead rows made
    mart reads 4-8x slower). VACUUM cannot run in the load's transaction; the load has committed, so a failure
    here is logged, never raised. Pages already scanned are skipped (the visibility map), so an untouched mart
    costs little."""
    if engine.dialect.name != "postgresql":
        return
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for name in semantic.MARTS:
                conn.execute(sa.text(f'VACUUM "{name}"'))  # names from our own metadata, never input
    except sa.exc.SQLAlchemyError as exc:
        log.warning("marts not vacuumed after the load: %s", type(exc).__name__)


def _discard(work: Path) -> None:
    for leftover in (work, work.with_name(work.name + ".wal")):
        leftover.unlink(missing_ok=True)
