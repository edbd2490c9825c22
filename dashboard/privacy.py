"""Small-cell suppression for what employer users see (de-identified aggregates only).

Rule (CMS cell-size suppression policy): no cell with a count from 1 to 10 is shown (0 is allowed),
nor any cell from which such a count, or the dollars of so few people, could be derived, within one
response or by combining responses (see :mod:`dashboard.deidentified` for the across-responses design):

* primary: a count column with a value in 1..10 is blanked, with the columns that depend on it
  (e.g. the paid dollars of those people, a rate built on the count);
* linked: columns whose values fix each other within a row (members and subscribers of a
  coverage tier: employee + spouse has members = 2 × subscribers) are blanked together;
* complementary: within a group whose total is known (e.g. the tiers of one employer and month), if
  exactly one cell of a column is suppressed, the next-smallest non-zero cell is suppressed too, so the
  suppressed one cannot be found by subtraction.

The three steps repeat until nothing changes, because each can start another (a complementary cell
blanks its linked column, which may leave a lone blank in that column's group).
Suppressed cells become empty (None); a ``suppressed`` column says which rows lost cells.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

MIN_CELL = 11  # counts 1..10 are suppressed


@dataclass(frozen=True)
class Link:
    """Columns of one row that are blanked together, because one fixes the other: members and subscribers
    of an employee + spouse tier (members = 2 × subscribers). ``when`` names a boolean column of the frame
    that says in which rows the relation holds (all rows when None)."""

    columns: tuple[str, ...]
    when: str | None = None


@dataclass(frozen=True)
class SuppressionRule:
    # count column -> the columns blanked with it (the count itself is always blanked)
    counts: Mapping[str, Sequence[str]]
    # columns that identify a group whose total is public; complementary suppression runs within it
    # (no columns: the whole frame is one group)
    group_by: Sequence[str] = ()
    # count columns for which complementary suppression applies
    complementary: Sequence[str] = field(default_factory=tuple)
    # columns blanked together in a row because one fixes the other (see :class:`Link`)
    linked: Sequence[Link] = ()
    # columns dropped before anyone sees the frame (helpers used only to decide suppression)
    drop: Sequence[str] = ()


def is_small(values: pd.Series) -> pd.Series:
    numeric = pd.to_numeric(values, errors="coerce")
    return (numeric >= 1) & (numeric < MIN_CELL)


def suppress(frame: pd.DataFrame, rule: SuppressionRule, *, also: pd.DataFrame | None = None) -> pd.DataFrame:
    """Apply ``rule`` to a copy of ``frame``; returns it with object columns where cells were blanked.

    ``also`` (same index, boolean columns) marks cells that must be blanked for reasons outside this
    frame, e.g. the spend cell a utilization measure is part of; they take part in the fixpoint."""
    blank = suppression_mask(frame, rule, also=also)
    return apply_mask(frame, blank, drop=rule.drop)


def suppression_mask(frame: pd.DataFrame, rule: SuppressionRule, *, also: pd.DataFrame | None = None) -> pd.DataFrame:
    """Which cells ``rule`` blanks: a boolean frame shaped like ``frame``."""
    blank = pd.DataFrame(False, index=frame.index, columns=frame.columns)
    for count_col in rule.counts:
        if count_col in frame.columns:
            blank[count_col] = is_small(frame[count_col])
    if also is not None:
        for col in also.columns:
            if col in blank.columns:
                blank[col] = blank[col] | also[col].reindex(frame.index, fill_value=False).astype(bool)
    while True:
        before = blank.to_numpy().copy()
        for count_col, dependents in rule.counts.items():
            if count_col in frame.columns:
                for col in dependents:
                    if col in frame.columns:
                        blank[col] = blank[col] | blank[count_col]
        for link in rule.linked:
            present = [c for c in link.columns if c in frame.columns]
            if present:
                together = blank[present].any(axis=1)
                if link.when is not None and link.when in frame.columns:  # unknown: assume it holds
                    together = together & frame[link.when].astype(bool)
                for col in present:
                    blank[col] = blank[col] | together
        for count_col in rule.complementary:
            if count_col in frame.columns:
                blank[count_col] = blank[count_col] | _complementary(frame, count_col, blank[count_col],
                                                                     rule.group_by)
        if (blank.to_numpy() == before).all():
            return blank


def apply_mask(frame: pd.DataFrame, blank: pd.DataFrame, *, drop: Iterable[str] = ()) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if col in blank.columns and blank[col].any():
            out[col] = out[col].astype(object).where(~blank[col], None)
    out["suppressed"] = blank.reindex(columns=out.columns, fill_value=False).any(axis=1) if len(out) else []
    return out.drop(columns=[c for c in drop if c in out.columns])


def _complementary(frame: pd.DataFrame, count_col: str, small: pd.Series, group_by: Sequence[str]) -> pd.Series:
    """In each group with exactly one blanked count, the smallest positive published count too (else the
    group's total, published elsewhere, gives the blanked one away). Vectorised: one pass, not one per group."""
    extra = pd.Series(False, index=frame.index)
    values = pd.to_numeric(frame[count_col], errors="coerce")
    if group_by:
        group = pd.Series(frame.groupby(list(group_by), dropna=False, sort=False).ngroup().to_numpy(),
                          index=frame.index)
    else:
        group = pd.Series(0, index=frame.index)
    lone = small.astype(int).groupby(group).transform("sum") == 1
    candidates = pd.DataFrame({"group": group, "value": values})[lone & ~small & (values > 0)]
    if candidates.empty:
        return extra
    lowest = candidates[candidates["value"] == candidates.groupby("group")["value"].transform("min")]
    # Ties go by the row's contents, not its position: every run and every export must blank the
    # same cell, or two of them together would reveal it.
    lowest = lowest.assign(key=frame.loc[lowest.index].map(str).agg("|".join, axis=1))  # None: "None"
    chosen = lowest.sort_values(["group", "key"], kind="stable").groupby("group").head(1).index
    extra.loc[chosen] = True
    return extra


def published_sum(values: Iterable[object]) -> object | None:
    """The sum of published cells, or None when any is blanked: a total computed only from what is
    shown can never be differenced against the shown parts to recover a hidden one."""
    total = 0
    for value in values:
        if value is None or (isinstance(value, float) and value != value):
            return None
        total += value
    return total
