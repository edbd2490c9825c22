"""Small-cell suppression for what employer users see (de-identified aggregates only).

Rule (CMS cell-size suppression policy): no cell with a count from 1 to 10 is shown (0 is allowed),
nor any cell from which such a count, or the dollars of so few people, could be derived:

* primary: a count column with a value in 1..10 is blanked, with the columns that depend on it
  (e.g. the paid dollars of those people, a rate built on the count);
* complementary: within a group whose total is known (e.g. the tiers of one employer and month), if
  exactly one cell of a column is suppressed, the next-smallest non-zero cell is suppressed too, so the
  suppressed one cannot be found by subtraction.

Suppressed cells become empty (None); a ``suppressed`` column says which rows lost cells.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

MIN_CELL = 11  # counts 1..10 are suppressed


@dataclass(frozen=True)
class SuppressionRule:
    # count column -> the columns blanked with it (the count itself is always blanked)
    counts: Mapping[str, Sequence[str]]
    # columns that identify a group whose total is public; complementary suppression runs within it
    # (no columns: the whole frame is one group, e.g. employers and their 'all' row)
    group_by: Sequence[str] = ()
    # count columns for which complementary suppression applies
    complementary: Sequence[str] = field(default_factory=tuple)
    # columns dropped before anyone sees the frame (helpers used only to decide suppression)
    drop: Sequence[str] = ()


def is_small(values: pd.Series) -> pd.Series:
    numeric = pd.to_numeric(values, errors="coerce")
    return (numeric >= 1) & (numeric < MIN_CELL)


def suppress(frame: pd.DataFrame, rule: SuppressionRule) -> pd.DataFrame:
    """Apply ``rule`` to a copy of ``frame``; returns it with object columns where cells were blanked."""
    out = frame.copy()
    blank = pd.DataFrame(False, index=out.index, columns=out.columns)
    for count_col, dependents in rule.counts.items():
        if count_col not in out.columns:
            continue
        small = is_small(out[count_col])
        if count_col in rule.complementary:
            small = small | _complementary(out, count_col, small, rule.group_by)
        for col in (count_col, *dependents):
            if col in out.columns:
                blank[col] = blank[col] | small
    for col in out.columns:
        if blank[col].any():
            out[col] = out[col].astype(object).where(~blank[col], None)
    out["suppressed"] = blank.any(axis=1)
    return out.drop(columns=[c for c in rule.drop if c in out.columns])


def _complementary(frame: pd.DataFrame, count_col: str, small: pd.Series, group_by: Sequence[str]) -> pd.Series:
    extra = pd.Series(False, index=frame.index)
    values = pd.to_numeric(frame[count_col], errors="coerce")
    groups = frame.groupby(list(group_by), dropna=False).groups.values() if group_by else [frame.index]
    for idx in groups:
        suppressed = small.loc[idx]
        if suppressed.sum() != 1:
            continue
        candidates = values.loc[idx][(~suppressed) & (values.loc[idx] > 0)]
        if len(candidates):
            lowest = candidates[candidates == candidates.min()].index
            # Ties go by the row's contents, not its position: every run and every export must blank the
            # same cell, or two of them together would reveal it.
            keys = frame.loc[lowest].astype(str).agg("|".join, axis=1)
            extra.loc[keys.sort_values(kind="stable").index[0]] = True
    return extra
