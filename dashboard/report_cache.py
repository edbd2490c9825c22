"""Report frames kept in this process between requests, so a page revisited or a filter set back is instant.

What is kept is a report's frame as the metric built it, before rounding and suppression. The key is the
report, the filters *after* :mod:`dashboard.access` resolved them (the exact practices or employers whose
data is inside) and the warehouse's data version. So:

- access is decided before the cache is asked, and two viewers share an entry only when they asked for
  exactly the same ids;
- small-cell suppression runs on every read, for every de-identified viewer;
- any load (a new ``data_load`` row) or a rebuilt DuckDB file changes the version: no stale number
  outlives a load.

Two tiers. Each process keeps a small LRU of frames (the first tier). With ``DASHBOARD_REDIS_URL`` set,
frames are also shared by every worker through Redis (:class:`RedisTier`), with these rules:

- only aggregate frames go there: a report flagged ``claim_level`` (rows are claims or payments with
  trace numbers) stays in the process, so no claim row leaves it (:func:`shareable`);
- entries are JSON with typed columns, never pickle, and signed (HMAC-SHA256 under a key derived from the
  app's secret key, over the entry and its Redis key): bytes someone else wrote to Redis, or an entry
  moved to another key (another tenant's filters), fail the check and count as a miss before any parsing;
- each entry has a TTL and a size cap; Redis down means the process tier alone, logged once, never an
  error for the user.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import hashlib
import hmac
import json
import logging
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.warehouse import schema as s
from dashboard.warehouse.engine import duckdb_path

MAX_ROWS_PER_ENTRY = 100_000  # bigger frames are rebuilt each time rather than held in memory
# Raw frames outside the catalog that hold aggregates only (the catalog says so per report: claim_level).
AGGREGATE_FRAMES = frozenset({"month-totals", "cost-driver-cells", "enrollment-flow"})  # employer × month aggregates

log = logging.getLogger(__name__)


def data_version(conn: Connection) -> Hashable:
    """Changes whenever data is loaded or the terms reports count with change (payer_rule, payment_channel_fee):
    the load log's size and
    newest entries, and for a DuckDB file its identity on disk (a demo rebuild swaps the file even when its load
    log looks alike)."""
    dl = s.data_load
    # one query: the load log, and the terms the reports count with (payers' contracts, channel fees)
    rules = [sub for table in (s.payer_rule, s.payment_channel_fee)
             for sub in (sa.select(sa.func.count()).select_from(table).scalar_subquery(),
                         sa.select(sa.func.max(table.c.changed_at)).scalar_subquery())]
    row = conn.execute(sa.select(sa.func.count(), sa.func.max(dl.c.loaded_at), sa.func.sum(dl.c.row_count),
                                 sa.func.max(dl.c.load_id), *rules)).one()
    path = duckdb_path(conn.engine.url)
    if path is not None:
        stat = path.stat()
        return (*row, stat.st_ino, stat.st_mtime_ns, stat.st_size)
    return tuple(row)


def file_version(url: sa.URL) -> Hashable | None:
    """A DuckDB warehouse's version without opening it: every load and rebuild renames a new file over the
    old one, so the file's identity on disk changes with every write. None for other backends."""
    path = duckdb_path(url)
    if path is None:
        return None
    stat = path.stat()
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


def shareable(key: Hashable) -> bool:
    """Whether the frame under ``key`` (``run_report``'s (url, metric, filters, version)) may go to the
    shared tier: deny by default, so only catalog reports not flagged ``claim_level`` and the known
    aggregate frames do."""
    if not (isinstance(key, tuple) and len(key) == 4 and isinstance(key[1], str)):
        return False
    from dashboard.reports import CATALOG, SHAPED  # here: dashboard.reports imports this module

    report = CATALOG.get(key[1].removesuffix(SHAPED))
    if report is not None:
        return not report.claim_level
    return key[1] in AGGREGATE_FRAMES


class ReportCache:
    """A small least-recently-used store of report frames, safe across the server's threads, in front of
    an optional shared tier (Redis) for the frames :func:`shareable` allows."""

    def __init__(self, max_entries: int = 128, shared: RedisTier | None = None) -> None:
        self.max_entries = max_entries
        self.shared = shared
        self._entries: OrderedDict[Hashable, pd.DataFrame] = OrderedDict()
        self._memo: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0  # from this process
        self.shared_hits = 0  # from the shared tier
        self.misses = 0  # built

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
        shared = self.shared if self.shared is not None and shareable(key) else None
        built = shared.get(key) if shared is not None else None
        if built is not None:
            with self._lock:
                self.shared_hits += 1
        else:
            with self._lock:
                self.misses += 1
            built = build()  # outside the lock: other reports go on while this one runs
            if shared is not None:
                shared.put(key, built)
        if len(built) <= MAX_ROWS_PER_ENTRY:
            with self._lock:
                self._entries[key] = built.copy()
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return built

    def memo(self, key: Hashable, compute: Callable[[], object]) -> object:
        """A small value (the schema check, known ids, a scope's 'data as of') kept in this process only,
        under a key that names the warehouse file's version, so a warm request need not open the file."""
        if self.max_entries <= 0:
            return compute()
        with self._lock:
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key]
        value = compute()
        with self._lock:
            self._memo[key] = value
            while len(self._memo) > 4 * self.max_entries:
                self._memo.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._entries)


# --- the shared tier --------------------------------------------------------------------------------------

MAGIC = b"DRC1"  # format version of an entry: MAGIC + HMAC-SHA256 (32 bytes) + zlib(JSON)
_MAC_SIZE = 32


class RedisTier:
    """Frames shared by every worker through Redis. Never raises for Redis trouble: a failed call marks
    Redis down for ``retry_seconds`` (so requests do not each wait for a timeout), logs once per outage,
    and the caller goes on with its process tier."""

    def __init__(self, url: str, *, secret: str, prefix: str = "dashboard", ttl_seconds: int = 3600,
                 max_bytes: int = 8 * 1024 * 1024, retry_seconds: float = 30.0) -> None:
        import redis

        self._errors: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)
        # Short timeouts: a slow Redis must cost a request less than rebuilding the frame would.
        self._client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1.0)
        # A key for this use only, derived from the app's secret key (shared by the workers).
        self._mac_key = hmac.new(secret.encode(), b"dashboard report cache v1", hashlib.sha256).digest()
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.max_bytes = max_bytes
        self.retry_seconds = retry_seconds
        self._down_until = 0.0
        self._down = False
        self.rejected = 0  # entries that failed the signature or did not decode

    def redis_key(self, key: Hashable) -> str:
        """The Redis key for a cache key: keyed hash of a canonical form (stable across processes; shows
        neither the warehouse URL nor the filters to whoever can list keys)."""
        canonical = json.dumps(_canonical(key), separators=(",", ":"), sort_keys=True).encode()
        return f"{self.prefix}:report:{hmac.new(self._mac_key, canonical, hashlib.sha256).hexdigest()}"

    def get(self, key: Hashable) -> pd.DataFrame | None:
        """The frame stored under ``key``; None when absent, unreadable, not signed by us, or Redis is down."""
        name = self.redis_key(key)
        raw = self._call(lambda: self._client.get(name))
        if raw is None:
            return None
        frame = self._open(name, raw)
        if frame is None:
            self.rejected += 1
            log.warning("report cache: ignored an entry in Redis that is not ours or is damaged")
        return frame

    def put(self, key: Hashable, frame: pd.DataFrame) -> bool:
        """Store ``frame`` under ``key`` with the TTL; False when it cannot be encoded, is over the size
        cap, or Redis is down (the process tier still has it)."""
        name = self.redis_key(key)
        try:
            body = zlib.compress(json.dumps(encode_frame(frame), separators=(",", ":")).encode(), 1)
        except (TypeError, ValueError):  # a column type the codec does not carry: this frame stays local
            return False
        mac = hmac.new(self._mac_key, MAGIC + name.encode() + body, hashlib.sha256).digest()
        entry = MAGIC + mac + body
        if len(entry) > self.max_bytes:
            return False
        return bool(self._call(lambda: self._client.set(name, entry, ex=self.ttl_seconds)))

    def _open(self, name: str, raw: bytes) -> pd.DataFrame | None:
        header = len(MAGIC) + _MAC_SIZE
        if not isinstance(raw, bytes) or len(raw) <= header or len(raw) > self.max_bytes or \
                not raw.startswith(MAGIC):
            return None
        mac, body = raw[len(MAGIC):header], raw[header:]
        # Checked before anything parses the bytes: only entries we wrote for this very key get further.
        expected = hmac.new(self._mac_key, MAGIC + name.encode() + body, hashlib.sha256).digest()
        if not hmac.compare_digest(mac, expected):
            return None
        try:
            inflater = zlib.decompressobj()
            text = inflater.decompress(body, 64 * self.max_bytes)
            if inflater.unconsumed_tail:
                return None
            return decode_frame(json.loads(text))
        except Exception:  # a damaged entry is a miss, never an error for the user
            return None

    def _call(self, operation: Callable[[], Any]) -> Any:
        now = time.monotonic()
        if now < self._down_until:
            return None
        try:
            result = operation()
        except self._errors as exc:
            self._down_until = now + self.retry_seconds
            if not self._down:
                self._down = True
                log.warning("report cache: Redis unavailable (%s); using each process's cache until it is back",
                            type(exc).__name__)
            return None
        if self._down:
            self._down = False
            log.info("report cache: Redis is back; sharing frames again")
        return result


def _canonical(value: Any) -> Any:
    """A JSON-able form of a cache key that is the same in every process (no hash-ordered sets)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [type(value).__name__, {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}]
    if isinstance(value, tuple | list):
        return [_canonical(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((_canonical(v) for v in value), key=repr)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return [type(value).__name__, value.isoformat()]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float | decimal.Decimal):
        return [type(value).__name__, str(value)]
    raise TypeError(f"cache key part of type {type(value).__name__}")


# --- frames as JSON with their column types --------------------------------------------------------------
# Enough for what the metrics return (numbers, booleans, strings, dates in object columns); anything else
# raises TypeError in encode_frame and the frame stays in its process.

def encode_frame(frame: pd.DataFrame) -> dict:
    index = frame.index
    if not isinstance(index, pd.RangeIndex) or not frame.columns.is_unique:
        raise TypeError("only frames with a RangeIndex and unique column names are shared")
    columns = []
    for name, series in frame.items():
        if not isinstance(name, str):
            raise TypeError("column names must be strings")
        columns.append({"name": name, **_encode_column(series)})
    return {"index": [index.start, index.stop, index.step, index.name], "columns": columns}


def decode_frame(data: dict) -> pd.DataFrame:
    start, stop, step, index_name = data["index"]
    index = pd.RangeIndex(int(start), int(stop), int(step), name=index_name)
    columns = {}
    for column in data["columns"]:
        values = _decode_column(column)
        if len(values) != len(index):
            raise ValueError("column length differs from the index")
        columns[str(column["name"])] = pd.Series(values, index=index, name=column["name"])
    if not columns:
        return pd.DataFrame(index=index)
    return pd.DataFrame(columns, index=index)


def _encode_column(series: pd.Series) -> dict:
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        return {"kind": "numpy", "dtype": dtype.str, "values": series.to_numpy().tolist()}
    if isinstance(dtype, np.dtype) and dtype.kind == "M":
        return {"kind": "datetime", "dtype": dtype.str, "values": series.to_numpy().view("i8").tolist()}
    if isinstance(dtype, pd.StringDtype | pd.BooleanDtype) or \
            isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.name in _NULLABLE_NUMBERS:
        return {"kind": "extension", "dtype": _extension_name(dtype),
                "values": [None if pd.isna(v) else (v.item() if isinstance(v, np.generic) else v) for v in series]}
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        return {"kind": "object", "values": [_encode_value(v) for v in series]}
    raise TypeError(f"column dtype {dtype}")


_NULLABLE_NUMBERS = frozenset({"Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Float32",
                               "Float64"})


def _extension_name(dtype: Any) -> list:
    if isinstance(dtype, pd.StringDtype):  # "str" (NaN for missing) and "string" (pd.NA) differ in na_value
        return ["string", dtype.storage, "nan" if dtype.na_value is not pd.NA else "na"]
    return [dtype.name]


def _decode_column(column: dict) -> Any:
    kind, values = column["kind"], column["values"]
    if not isinstance(values, list):
        raise ValueError("values must be a list")
    if kind == "numpy":
        dtype = np.dtype(str(column["dtype"]))
        if dtype.kind not in "biuf":
            raise ValueError("not a numeric dtype")
        return np.asarray(values, dtype=dtype)
    if kind == "datetime":
        dtype = np.dtype(str(column["dtype"]))
        if dtype.kind != "M":
            raise ValueError("not a datetime dtype")
        return np.asarray(values, dtype="i8").view(dtype)
    if kind == "extension":
        name = column["dtype"]
        if name[0] == "string":
            dtype = pd.StringDtype(storage=str(name[1]), na_value=np.nan if name[2] == "nan" else pd.NA)
        elif name[0] in _NULLABLE_NUMBERS or name[0] == "boolean":
            dtype = pd.api.types.pandas_dtype(str(name[0]))
        else:
            raise ValueError("unknown extension dtype")
        return pd.array(values, dtype=dtype)
    if kind == "object":
        out = np.empty(len(values), dtype=object)
        out[:] = [_decode_value(v) for v in values]
        return out
    raise ValueError("unknown column kind")


def _encode_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str) and not isinstance(value, np.generic):
        return value
    if value is pd.NaT:
        return {"NaT": True}
    if value is pd.NA:
        return {"NA": True}
    if isinstance(value, pd.Timestamp):
        return {"timestamp": value.isoformat()}
    if isinstance(value, dt.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"decimal": str(value)}
    raise TypeError(f"value of type {type(value).__name__}")


_VALUE_DECODERS: dict[str, Callable[[Any], Any]] = {
    "NaT": lambda _: pd.NaT,
    "NA": lambda _: pd.NA,
    "timestamp": lambda v: pd.Timestamp(str(v)),
    "datetime": lambda v: dt.datetime.fromisoformat(str(v)),
    "date": lambda v: dt.date.fromisoformat(str(v)),
    "decimal": lambda v: decimal.Decimal(str(v)),
}


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        [(tag, inner)] = value.items()
        return _VALUE_DECODERS[tag](inner)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise ValueError("unexpected value")
