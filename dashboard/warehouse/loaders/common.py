"""Pieces every loader shares: typed value parsing with locations, file fingerprints, load records."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.errors import LoadError
from dashboard.warehouse import schema as s
from dashboard.warehouse.loaders.transaction import touch

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_COMPACT = re.compile(r"^\d{8}$")
_US = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


def parse_date(text: str) -> dt.date:
    """YYYY-MM-DD, YYYYMMDD or MM/DD/YYYY (the forms Tuva's mapping guide mentions)."""
    text = text.strip()
    if _ISO.match(text):
        return dt.date.fromisoformat(text)
    if _COMPACT.match(text):
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    match = _US.match(text)
    if match:
        return dt.date(int(match.group(3)), int(match.group(1)), int(match.group(2)))
    raise ValueError("not a date (YYYY-MM-DD)")


def parse_datetime(text: str) -> dt.datetime:
    text = text.strip()
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return dt.datetime.combine(parse_date(text), dt.time())


def parse_decimal(text: str) -> decimal.Decimal:
    try:
        value = decimal.Decimal(text.strip().replace(",", ""))
    except decimal.InvalidOperation:
        raise ValueError("not a number") from None
    if not value.is_finite():
        raise ValueError("not a number")
    return value


def parse_int(text: str) -> int:
    value = parse_decimal(text)
    if value != value.to_integral_value():
        raise ValueError("not a whole number")
    return int(value)


def parser_for(column: sa.Column):
    kind = type(column.type)
    if issubclass(kind, sa.DateTime):
        return parse_datetime
    if issubclass(kind, sa.Date):
        return parse_date
    if issubclass(kind, sa.Integer):
        return parse_int
    if issubclass(kind, sa.Numeric):
        return parse_decimal
    if issubclass(kind, sa.Boolean):
        return lambda text: text.strip().lower() in {"1", "true", "t", "yes", "y"}
    return lambda text: text


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def already_loaded(conn: Connection, *, source: str, sha256: str) -> bool:
    dl = s.data_load
    return conn.execute(sa.select(dl.c.load_id).where(dl.c.source == source, dl.c.file_sha256 == sha256)
                        .limit(1)).first() is not None


def record_load(conn: Connection, *, source: str, file_name: str, sha256: str, rows: int,
                data_as_of: dt.date | None, practices: Iterable[str | None],
                employers: Iterable[str | None]) -> str:
    """Log a load and the practices and employers it touched, in the caller's (the load's) transaction.
    Every loader must say whom its load touched: "data as of" is shown to a user only for loads within
    their scope. Returns the load id."""
    load_id = uuid.uuid4().hex
    conn.execute(s.data_load.insert().values(
        load_id=load_id, source=source, file_name=file_name, file_sha256=sha256, row_count=rows,
        loaded_at=dt.datetime.now(dt.UTC).replace(tzinfo=None), data_as_of=data_as_of))
    practices, employers = list(practices), list(employers)
    record_load_scope(conn, load_id=load_id, practices=practices, employers=employers)
    touch(conn, practices=practices, employers=employers)
    return load_id


def record_load_scope(conn: Connection, *, load_id: str, practices: Iterable[str | None] = (),
                      employers: Iterable[str | None] = (), everyone: bool = False) -> None:
    """The data_load_scope rows of one load (``everyone``: a load of every tenant, the demo)."""
    rows = [{"load_id": load_id, "kind": "all", "entity_id": ""}] if everyone else []
    rows += [{"load_id": load_id, "kind": "practice", "entity_id": str(p)} for p in sorted({p for p in practices if p})]
    rows += [{"load_id": load_id, "kind": "employer", "entity_id": str(e)} for e in sorted({e for e in employers if e})]
    if rows:
        conn.execute(s.data_load_scope.insert(), rows)


def employers_of_people(conn: Connection, people: Iterable[str | None]) -> set[str]:
    """The employers (eligibility group ids) of these people, as the warehouse holds them now: a claim
    counts toward its member's employer's spend, so a claims load touches those employers too."""
    el = s.eligibility
    ids = sorted({p for p in people if p})
    found: set[str] = set()
    for i in range(0, len(ids), 1000):
        found |= {g for g in conn.execute(sa.select(el.c.group_id).distinct()
                                          .where(el.c.person_id.in_(ids[i:i + 1000]))).scalars() if g}
    return found


def delete_in_batches(conn: Connection, table: sa.Table, column: sa.Column, values: Iterable, *,
                      where=None, batch: int = 1000) -> None:
    values = list(dict.fromkeys(values))
    for i in range(0, len(values), batch):
        stmt = table.delete().where(column.in_(values[i:i + batch]))
        if where is not None:
            stmt = stmt.where(where)
        conn.execute(stmt)


@dataclass
class FileResult:
    file: str
    source: str
    rows: dict[str, int] = field(default_factory=dict)
    skipped: bool = False
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.skipped:
            return f"{self.file}: already loaded (same content), nothing changed"
        counts = ", ".join(f"{n:,} {t}" for t, n in self.rows.items())
        extra = "".join(f"\n  warning: {w}" for w in self.warnings)
        return f"{self.file}: loaded {counts}{extra}"


def first_error(errors: Sequence[LoadError]) -> LoadError:
    """The first error, its message saying how many more there were."""
    first = errors[0]
    if len(errors) == 1:
        return first
    return LoadError(f"{first.message} (and {len(errors) - 1} more errors)", file=first.file, line=first.line,
                     segment=first.segment, field=first.field)
