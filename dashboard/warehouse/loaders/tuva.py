"""Load Tuva Project input-layer CSVs: ``medical_claim.csv``, ``pharmacy_claim.csv``, ``eligibility.csv``.

Columns are matched by name (case-insensitive); extra columns are ignored, missing optional ones are
NULL; every value is parsed to the column's type and required columns must be filled. A claim is keyed
by (claim_id, data_source): loading a file again replaces the claims it contains, so nothing is counted
twice; an enrollment span is keyed by (person_id, member_id, enrollment_start_date, payer, plan,
data_source).
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.errors import LoadError
from dashboard.warehouse import schema as s
from dashboard.warehouse.engine import bulk_insert
from dashboard.warehouse.loaders.common import (
    FileResult,
    already_loaded,
    delete_in_batches,
    employers_of_people,
    first_error,
    parser_for,
    record_load,
    sha256_of,
)

FILES = {"medical_claim.csv": s.medical_claim, "pharmacy_claim.csv": s.pharmacy_claim,
         "eligibility.csv": s.eligibility}
SOURCE = "tuva"
MAX_ERRORS = 50
# Columns that name the load itself, filled when the file leaves them out.
BOOKKEEPING = ("file_name", "ingest_datetime")


def find_files(directory: Path) -> list[tuple[Path, sa.Table]]:
    if not directory.is_dir():
        raise LoadError("not a directory", file=str(directory))
    found = [(directory / name, table) for name, table in FILES.items() if (directory / name).exists()]
    if not found:
        raise LoadError(f"none of {', '.join(FILES)} found", file=str(directory))
    return found


def read_table_csv(path: Path, table: sa.Table) -> pd.DataFrame:
    """Parse and validate one CSV; raises LoadError naming the line and field of the first problem."""
    columns = {c.name: c for c in table.columns}
    required = [c.name for c in table.columns if not c.nullable]
    errors: list[LoadError] = []
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise LoadError("the file is empty", file=path.name) from None
        names = [h.strip().lower() for h in header]
        missing = [c for c in required if c not in names]
        if missing:
            raise LoadError(f"required column(s) missing: {', '.join(missing)}", file=path.name, line=1)
        used = [(i, columns[n], parser_for(columns[n])) for i, n in enumerate(names) if n in columns]
        records = []
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(names):
                errors.append(LoadError(f"{len(row)} fields where the header has {len(names)}", file=path.name,
                                        line=reader.line_num))
                continue
            record = {}
            for i, column, parse in used:
                text = row[i].strip()
                if text == "":
                    if not column.nullable:
                        errors.append(LoadError("required value is empty", file=path.name, line=reader.line_num,
                                                field=column.name))
                    record[column.name] = None
                    continue
                try:
                    record[column.name] = parse(text)
                except ValueError as exc:
                    errors.append(LoadError(f"{text!r} is {exc}", file=path.name, line=reader.line_num,
                                            field=column.name))
            records.append(record)
            if len(errors) >= MAX_ERRORS:
                break
    if errors:
        raise first_error(errors)
    frame = pd.DataFrame.from_records(records, columns=[c.name for _, c, _ in used])
    _check_unique(frame, table, path.name)
    return frame


def _check_unique(frame: pd.DataFrame, table: sa.Table, file_name: str) -> None:
    key = [c.name for c in table.primary_key.columns]
    duplicated = frame.duplicated(subset=key, keep="first")
    if duplicated.any():
        first = int(duplicated.idxmax())
        raise LoadError(f"duplicate key ({', '.join(key)}) repeats an earlier row", file=file_name,
                        line=first + 2)


def _data_as_of(frame: pd.DataFrame, table: sa.Table) -> dt.date | None:
    candidates = {"medical_claim": ("paid_date", "claim_end_date"), "pharmacy_claim": ("paid_date", "dispensing_date"),
                  "eligibility": ("file_date",)}[table.name]
    dates = [d for col in candidates if col in frame.columns for d in frame[col].dropna()]
    return max(dates) if dates else None


def _replace(conn: Connection, table: sa.Table, frame: pd.DataFrame) -> None:
    """Delete what these rows replace, by their natural key, so reloading never double counts."""
    if table.name in ("medical_claim", "pharmacy_claim"):
        for source, rows in frame.groupby("data_source"):
            delete_in_batches(conn, table, table.c.claim_id, rows["claim_id"], where=table.c.data_source == source)
        return
    keys = ["person_id", "member_id", "enrollment_start_date", "payer", "plan", "data_source"]
    for values in frame[keys].drop_duplicates().itertuples(index=False):
        conn.execute(table.delete().where(*[table.c[k] == v for k, v in zip(keys, values, strict=True)]))


def load_directory(conn: Connection, directory: Path) -> list[FileResult]:
    """Validate every file first, then write them all in the caller's transaction."""
    parsed = []
    for path, table in find_files(directory):
        parsed.append((path, table, sha256_of(path), read_table_csv(path, table)))
    results = []
    written = []
    for path, table, digest, frame in parsed:
        result = FileResult(file=path.name, source=SOURCE)
        if already_loaded(conn, source=SOURCE, sha256=digest):
            result.skipped = True
            results.append(result)
            continue
        for column in BOOKKEEPING:
            if column not in frame.columns or frame[column].isna().all():
                frame[column] = path.name if column == "file_name" else dt.datetime.now(dt.UTC).replace(tzinfo=None)
        _replace(conn, table, frame)
        result.rows[table.name] = bulk_insert(conn, table, frame)
        written.append((path, table, digest, frame))
        results.append(result)
    # Logged once every file is in, so claims find the employers of eligibility loaded with them.
    for path, table, digest, frame in written:
        practices, employers = _touched(conn, table, frame)
        record_load(conn, source=SOURCE, file_name=path.name, sha256=digest, rows=len(frame),
                    data_as_of=_data_as_of(frame, table), practices=practices, employers=employers)
    return results


def _touched(conn: Connection, table: sa.Table, frame: pd.DataFrame) -> tuple[set[str], set[str]]:
    """The practices (billing TIN) and employers (group id, also of the claims' members) a file touches."""
    if table.name == "eligibility":
        return set(), {g for g in frame["group_id"].dropna()} if "group_id" in frame.columns else set()
    practices = {p for p in frame["billing_tin"].dropna()} if "billing_tin" in frame.columns else set()
    return practices, employers_of_people(conn, frame["person_id"].dropna())
