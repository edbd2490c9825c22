"""What a metric is asked for: a month range and the practices or employers in scope.

Metrics never widen this: the ids have already been resolved against the user's scope by
:mod:`dashboard.access`; ``None`` means every id and only reaches a metric for full-access callers.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from dashboard.errors import BadInput
from dashboard.warehouse.schema import CALENDAR_FIRST_YEAR, CALENDAR_LAST_YEAR

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def parse_month(text: str, *, name: str = "month") -> dt.date:
    """'2026-03' -> date(2026, 3, 1); anything else is a BadInput naming the parameter."""
    match = _MONTH.match(text.strip()) if isinstance(text, str) else None
    if not match or not 1 <= int(match.group(2)) <= 12 or not 1900 <= int(match.group(1)) <= 2100:
        raise BadInput(f"{name} must be a month written YYYY-MM, got {text!r}")
    year = int(match.group(1))
    if not CALENDAR_FIRST_YEAR <= year <= CALENDAR_LAST_YEAR:
        # Month-based KPIs join the warehouse calendar; outside it they would be silently empty.
        raise BadInput(f"{name} {text.strip()} is outside the warehouse calendar "
                       f"({CALENDAR_FIRST_YEAR}-01 to {CALENDAR_LAST_YEAR}-12)")
    return dt.date(year, int(match.group(2)), 1)


def add_months(month: dt.date, count: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)


def months_between(later: dt.date, earlier: dt.date) -> int:
    """Whole calendar months from ``earlier``'s month to ``later``'s (0 for the same month)."""
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def month_end(month: dt.date) -> dt.date:
    return add_months(month, 1) - dt.timedelta(days=1)


@dataclass(frozen=True)
class Filters:
    start: dt.date  # first month, as its first day
    end: dt.date  # last month (inclusive), as its first day
    practice_ids: tuple[str, ...] | None = None
    employer_ids: tuple[str, ...] | None = None
    # a parameterised report's choices (the report builder's measure, grouping and comparison), validated
    # against the report's declared options by dashboard.reports: (name, value) pairs in name order
    options: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.start.day != 1 or self.end.day != 1:
            raise BadInput("months start on the first day")
        if self.end < self.start:
            raise BadInput(f"'to' ({self.end:%Y-%m}) is before 'from' ({self.start:%Y-%m})")

    def option(self, name: str) -> str:
        return dict(self.options)[name]

    @property
    def months(self) -> int:
        """How many months the period holds."""
        return months_between(self.end, self.start) + 1

    @property
    def end_date(self) -> dt.date:
        """Last day of the last month."""
        return month_end(self.end)
