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

import numpy as np
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
    # a boolean column: rows whose counts another response publishes (a grouping's pharmacy row is the pharmacy
    # spend cell), never chosen as a complementary cell, since blanking them would protect nothing
    public: str | None = None


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
    """Which cells ``rule`` blanks: a boolean frame shaped like ``frame``. The fixpoint runs on a numpy
    array with what each step needs (links' conditions, complementary groups) worked out once: suppression
    runs on every read of a cached report, so it is on every employer user's click."""
    at = {name: i for i, name in enumerate(frame.columns)}
    blank = np.zeros((len(frame), len(at)), dtype=bool)
    for count_col in rule.counts:
        if count_col in at:
            blank[:, at[count_col]] = is_small(frame[count_col]).to_numpy()
    if also is not None:
        for col in also.columns:
            if col in at:
                blank[:, at[col]] |= also[col].reindex(frame.index, fill_value=False).astype(bool).to_numpy()
    dependents = [(at[count], [at[c] for c in cols if c in at]) for count, cols in rule.counts.items() if count in at]
    links = []
    for link in rule.linked:
        present = [at[c] for c in link.columns if c in at]
        if present:  # unknown condition: assume the relation holds
            when = frame[link.when].astype(bool).to_numpy() if link.when is not None and link.when in at else None
            links.append((present, when))
    public = frame[rule.public].astype(bool).to_numpy() if rule.public is not None and rule.public in at else None
    complementary = [(at[c], _Complementary(frame, c, rule.group_by, public)) for c in rule.complementary if c in at]
    while True:
        before = blank.copy()
        for count, cols in dependents:
            for col in cols:
                blank[:, col] |= blank[:, count]
        for cols, when in links:
            together = blank[:, cols].any(axis=1)
            if when is not None:
                together &= when
            for col in cols:
                blank[:, col] |= together
        for col, step in complementary:
            blank[:, col] |= step.also_blank(blank[:, col])
        if (blank == before).all():
            return pd.DataFrame(blank, index=frame.index, columns=frame.columns)


def apply_mask(frame: pd.DataFrame, blank: pd.DataFrame, *, drop: Iterable[str] = ()) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if col in blank.columns and blank[col].any():
            out[col] = out[col].astype(object).where(~blank[col], None)
    out["suppressed"] = blank.reindex(columns=out.columns, fill_value=False).any(axis=1) if len(out) else []
    return out.drop(columns=[c for c in drop if c in out.columns])


class _Complementary:
    """Complementary suppression of one count column: in each group with exactly one blanked count, the
    smallest positive published count is blanked too (else the group's total, published elsewhere, gives
    the blanked one away)."""

    def __init__(self, frame: pd.DataFrame, column: str, group_by: Sequence[str],
                 public: np.ndarray | None = None) -> None:
        self.frame = frame
        self.public = public if public is not None else np.zeros(len(frame), dtype=bool)
        self.values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64")
        self.group = (frame.groupby(list(group_by), dropna=False, sort=False).ngroup().to_numpy()
                      if group_by else np.zeros(len(frame), dtype="int64"))
        self.groups = int(self.group.max()) + 1 if len(frame) else 0
        self._keys: dict[int, str] = {}

    def also_blank(self, small: np.ndarray) -> np.ndarray:
        out = np.zeros(len(small), dtype=bool)
        lone = np.bincount(self.group, weights=small, minlength=self.groups)[self.group] == 1
        candidates = np.flatnonzero(lone & ~small & ~self.public & (self.values > 0))  # NaN is never > 0
        if not len(candidates):
            return out
        group, value = self.group[candidates], self.values[candidates]
        lowest_value = np.full(self.groups, np.inf)
        np.minimum.at(lowest_value, group, value)
        chosen: dict[int, int] = {}
        for row in candidates[value == lowest_value[group]]:
            # Ties go by the row's contents, not its position: every run and every export must blank the
            # same cell, or two of them together would reveal it.
            g = int(self.group[row])
            if g not in chosen or self.key(row) < self.key(chosen[g]):
                chosen[g] = int(row)
        out[list(chosen.values())] = True
        return out

    def key(self, row: int) -> str:
        if row not in self._keys:
            self._keys[row] = "|".join(str(v) for v in self.frame.iloc[row].tolist())
        return self._keys[row]


def published_sum(values: Iterable[object]) -> object | None:
    """The sum of published cells, or None when any is blanked: a total computed only from what is
    shown can never be differenced against the shown parts to recover a hidden one."""
    total = 0
    for value in values:
        if value is None or (isinstance(value, float) and value != value):
            return None
        total += value
    return total
