"""Report frames kept in this process between requests, so a page revisited or a filter set back is instant.

What is kept is a report's frame as the metric built it, before rounding and suppression. The key is the
report, the filters *after* :mod:`dashboard.access` resolved them (the exact practices or employers whose
data is inside) and the warehouse's data version. So:

- access is decided before the cache is asked, and two viewers share an entry only when they asked for
  exactly the same ids;
- small-cell suppression runs on every read, for every de-identified viewer;
- any load (a new ``data_load`` row) or a rebuilt DuckDB file changes the version: no stale number
  outlives a load.

Memory only, per process: no claim row leaves the process for an outside cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.warehouse import schema as s
from dashboard.warehouse.engine import duckdb_path

MAX_ROWS_PER_ENTRY = 100_000  # bigger frames are rebuilt each time rather than held in memory


def data_version(conn: Connection) -> Hashable:
    """Changes whenever data is loaded: the load log's size and newest entries, and for a DuckDB file its
    identity on disk (a demo rebuild swaps the file even when its load log looks alike)."""
    dl = s.data_load
    row = conn.execute(sa.select(sa.func.count(), sa.func.max(dl.c.loaded_at), sa.func.sum(dl.c.row_count),
                                 sa.func.max(dl.c.load_id))).one()
    path = duckdb_path(conn.engine.url)
    if path is not None:
        stat = path.stat()
        return (*row, stat.st_ino, stat.st_mtime_ns, stat.st_size)
    return tuple(row)


class ReportCache:
    """A small least-recently-used store of report frames, safe across the server's threads."""

    def __init__(self, max_entries: int = 128) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, pd.DataFrame] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def frame(self, key: Hashable, build: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        """The frame stored under ``key``, else ``build()`` (stored when small enough). Callers get a copy,
        so nothing they do changes what the next caller reads."""
        if self.max_entries <= 0:
            return build()
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return found.copy()
            self.misses += 1
        built = build()  # outside the lock: other reports go on while this one runs
        if len(built) <= MAX_ROWS_PER_ENTRY:
            with self._lock:
                self._entries[key] = built.copy()
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return built

    def __len__(self) -> int:
        return len(self._entries)
