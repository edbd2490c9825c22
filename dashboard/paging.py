"""Server-side paging of report rows: sort keys, column filters and one page, on a DataFrame or in SQL.

Both implementations live here so that a report paged from its (cached, already suppressed) frame and a
claim-level report paged by ``ORDER BY … LIMIT … OFFSET`` in the warehouse mean the same thing by a filter:

* text conditions compare the value's text, case-insensitively; a missing value is blank;
* number conditions compare numbers; a missing (or suppressed) value matches only ``blank``;
* missing values sort last in either direction.

Column names are checked against the columns a caller offers, never interpolated: values are bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from dashboard.errors import BadInput

MAX_ROWS = 100  # the most rows one page (one response) may carry
TEXT_OPS = frozenset({"contains", "notContains", "equals", "notEqual", "startsWith", "endsWith", "blank",
                      "notBlank"})
NUMBER_OPS = frozenset({"equals", "notEqual", "lessThan", "lessThanOrEqual", "greaterThan",
                        "greaterThanOrEqual", "inRange", "blank", "notBlank"})


@dataclass(frozen=True)
class Condition:
    kind: str  # text | number
    op: str  # one of TEXT_OPS / NUMBER_OPS (AG Grid's names)
    value: str | float | None = None
    value_to: float | None = None  # inRange's upper bound (both bounds exclusive, as in AG Grid)

    def __post_init__(self) -> None:
        ops = TEXT_OPS if self.kind == "text" else NUMBER_OPS if self.kind == "number" else None
        if ops is None or self.op not in ops:
            raise BadInput(f"unsupported filter {self.kind!r} {self.op!r}")
        if self.op in ("blank", "notBlank"):
            return
        if self.kind == "number" and not _is_number(self.value):
            raise BadInput(f"filter {self.op!r} needs a number")
        if self.op == "inRange" and not _is_number(self.value_to):
            raise BadInput("filter 'inRange' needs two numbers")
        if self.kind == "text" and not isinstance(self.value, str):
            raise BadInput(f"filter {self.op!r} needs text")


@dataclass(frozen=True)
class ColumnFilter:
    column: str
    conditions: tuple[Condition, ...]
    join: str = "and"  # how the conditions combine: and | or


@dataclass(frozen=True)
class Sort:
    column: str
    descending: bool = False


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_columns(available: Sequence[str], sort: Sequence[Sort], filters: Sequence[ColumnFilter]) -> None:
    """BadInput unless every sorted and filtered column is one of ``available``."""
    for name in [s.column for s in sort] + [f.column for f in filters]:
        if name not in available:
            raise BadInput(f"cannot sort or filter on {name!r}")


def clamp(offset: int, limit: int) -> tuple[int, int]:
    return max(int(offset), 0), min(max(int(limit), 0), MAX_ROWS)


# --- in a URL: a drill-down's or an export's column filters ------------------------------------------------
# column=value (text equals, number equals) or column.OP=value, one condition per column
URL_OPS = {"text": {"eq": "equals", "ne": "notEqual", "contains": "contains", "starts": "startsWith",
                    "ends": "endsWith"},
           "number": {"eq": "equals", "ne": "notEqual", "gt": "greaterThan", "gte": "greaterThanOrEqual",
                      "lt": "lessThan", "lte": "lessThanOrEqual"}}


def filters_from_query(query: Mapping[str, str], kinds: Mapping[str, str], *,
                       reserved: frozenset[str] = frozenset()) -> tuple[ColumnFilter, ...]:
    """Column filters from URL parameters, ``kinds`` naming each filterable column's kind (text | number); the
    ``reserved`` names (the period, the entity) are not filters. Any other name, or a value that does not fit
    its column, is BadInput naming it."""
    out = []
    for key, value in query.items():
        if key in reserved:
            continue
        column, _, short = key.partition(".")
        if column not in kinds or not isinstance(value, str):
            raise BadInput(f"{key!r} is not a filter of this report")
        kind = kinds[column]
        op = URL_OPS[kind].get(short or "eq")
        if op is None:
            raise BadInput(f"{key!r}: a {kind} filter is {column}=value or {column}.OP=value, OP one of "
                           f"{', '.join(URL_OPS[kind])}")
        if kind == "number":
            try:
                number = float(value)
            except ValueError:
                raise BadInput(f"{key!r} needs a number, got {value!r}") from None
            out.append(ColumnFilter(column, (Condition("number", op, number),)))
        else:
            out.append(ColumnFilter(column, (Condition("text", op, value),)))
    return tuple(out)


def query_from_filters(filters: Sequence[ColumnFilter]) -> dict[str, str] | None:
    """The URL parameters of ``filters`` (:func:`filters_from_query`'s inverse), or None when one cannot be said
    in a URL (two conditions on a column, blank, a range)."""
    out = {}
    for f in filters:
        if len(f.conditions) != 1:
            return None
        cond = f.conditions[0]
        short = {op: s for s, op in URL_OPS[cond.kind].items()}.get(cond.op)
        if short is None:
            return None
        value = cond.value if cond.kind == "text" else f"{float(cond.value):g}"
        out[f.column if short == "eq" else f"{f.column}.{short}"] = str(value)
    return out


# --- on a DataFrame --------------------------------------------------------------------------------------

def _frame_condition(values: pd.Series, cond: Condition) -> pd.Series:
    missing = values.isna() | values.astype(object).map(lambda v: isinstance(v, str) and v == "")
    if cond.op == "blank":
        return missing
    if cond.op == "notBlank":
        return ~missing
    if cond.kind == "number":
        numbers = pd.to_numeric(values, errors="coerce").astype("float64")
        v, to = float(cond.value), (float(cond.value_to) if cond.value_to is not None else None)
        result = {"equals": numbers == v, "notEqual": numbers != v, "lessThan": numbers < v,
                  "lessThanOrEqual": numbers <= v, "greaterThan": numbers > v, "greaterThanOrEqual": numbers >= v,
                  "inRange": (numbers > v) & (numbers < (to if to is not None else v))}[cond.op]
        return result.fillna(False).astype(bool) & numbers.notna()
    text = values.astype(object).map(_text).str.lower()
    needle = str(cond.value).lower()
    return {"contains": text.str.contains(needle, regex=False), "notContains": ~text.str.contains(needle, regex=False),
            "equals": text == needle, "notEqual": text != needle, "startsWith": text.str.startswith(needle),
            "endsWith": text.str.endswith(needle)}[cond.op].astype(bool)


def _text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"  # as SQL casts it
    return str(value)


def frame_filter(frame: pd.DataFrame, filters: Sequence[ColumnFilter]) -> pd.DataFrame:
    """The rows of ``frame`` every filter keeps (in the frame's order)."""
    check_columns(list(frame.columns), (), filters)
    keep = pd.Series(True, index=frame.index)
    for f in filters:
        parts = [_frame_condition(frame[f.column], c) for c in f.conditions]
        if parts:
            combined = parts[0]
            for part in parts[1:]:
                combined = (combined | part) if f.join == "or" else (combined & part)
            keep &= combined
    return frame[keep]


def frame_page(frame: pd.DataFrame, *, sort: Sequence[Sort] = (), filters: Sequence[ColumnFilter] = (),
               offset: int = 0, limit: int = MAX_ROWS) -> tuple[pd.DataFrame, int]:
    """The rows ``offset`` … ``offset + limit`` of ``frame`` filtered and sorted (stable: ties keep the
    frame's own order), and how many rows match."""
    check_columns(list(frame.columns), sort, filters)
    offset, limit = clamp(offset, limit)
    out = frame_filter(frame, filters)
    if sort:
        out = out.sort_values([s.column for s in sort], ascending=[not s.descending for s in sort],
                              kind="stable", na_position="last")
    return out.iloc[offset:offset + limit].reset_index(drop=True), int(len(out))


# --- in SQL ------------------------------------------------------------------------------------------------

def _sql_condition(expr, cond: Condition):
    text = sa.func.lower(sa.cast(expr, sa.String))
    if cond.op == "blank":
        return sa.or_(expr.is_(None), sa.cast(expr, sa.String) == "")
    if cond.op == "notBlank":
        return sa.and_(expr.is_not(None), sa.cast(expr, sa.String) != "")
    if cond.kind == "number":
        v = sa.literal(float(cond.value), sa.Float)
        if cond.op == "inRange":
            return sa.and_(expr > v, expr < sa.literal(float(cond.value_to), sa.Float))
        return {"equals": expr == v, "notEqual": expr != v, "lessThan": expr < v, "lessThanOrEqual": expr <= v,
                "greaterThan": expr > v, "greaterThanOrEqual": expr >= v}[cond.op]
    needle = str(cond.value).lower()
    if cond.op == "contains":
        return text.contains(needle, autoescape=True)
    if cond.op == "notContains":  # a missing value contains nothing, as on a frame
        return sa.or_(expr.is_(None), sa.not_(text.contains(needle, autoescape=True)))
    if cond.op == "equals":
        return text == needle
    if cond.op == "notEqual":
        return sa.or_(expr.is_(None), text != needle)
    if cond.op == "startsWith":
        return text.startswith(needle, autoescape=True)
    return text.endswith(needle, autoescape=True)


def sql_where(columns: Mapping[str, sa.ColumnElement], filters: Sequence[ColumnFilter]) -> list:
    """WHERE clauses for ``filters`` over ``columns`` (name → SQL expression); BadInput for other names."""
    check_columns(list(columns), (), filters)
    clauses = []
    for f in filters:
        parts = [_sql_condition(columns[f.column], c) for c in f.conditions]
        if parts:
            clauses.append(sa.or_(*parts) if f.join == "or" else sa.and_(*parts))
    return clauses


def sql_order(columns: Mapping[str, sa.ColumnElement], sort: Sequence[Sort], tie_breakers: Sequence) -> list:
    """ORDER BY for ``sort`` (missing values last), then ``tie_breakers``: with them the order must be total
    (or tie only identical rows), so that LIMIT/OFFSET pages neither repeat nor skip a row."""
    check_columns(list(columns), sort, ())
    keys = [(columns[s.column].desc() if s.descending else columns[s.column].asc()).nulls_last() for s in sort]
    return keys + list(tie_breakers)
