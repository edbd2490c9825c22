"""Typed element readers shared by the 835 and 834 parsers; every failure is a located LoadError."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal

from dashboard.errors import LoadError
from dashboard.warehouse.x12.tokenizer import Segment

_NUMBER = re.compile(r"^-?(\d+\.?\d*|\.\d+)$")
_DATE = re.compile(r"^\d{8}$")
CENT = Decimal("0.01")
MAX_MONEY = Decimal("99999999.99")  #: DE 782 under HIPAA: 10 digits including the cents


@dataclass
class Reader:
    """Reads elements of segments of one file; ``lenient_dates`` turns bad dates into None plus a warning."""

    source: str
    lenient_dates: bool = False
    warnings: list[str] = field(default_factory=list)

    def required(self, seg: Segment, n: int, what: str) -> str:
        """Element ``n`` of ``seg``, which must not be empty."""
        value = seg.get(n)
        if not value:
            raise seg.error(f"{seg.field(n)} ({what}) is required", self.source, n)
        return value

    def optional(self, seg: Segment, n: int) -> str | None:
        """Element ``n`` of ``seg`` or None when empty."""
        return seg.get(n) or None

    def decimal_text(self, seg: Segment, n: int, text: str, what: str) -> Decimal:
        """An X12 numeric (R) value: optional minus sign, digits, optional decimal point; no exponent."""
        if not _NUMBER.match(text):
            raise seg.error(f"{seg.field(n)} ({what}) must be a number, got {text!r}", self.source, n)
        return Decimal(text)

    def amount(self, seg: Segment, n: int, what: str, default: Decimal | None = None) -> Decimal:
        """A required monetary amount, or ``default`` when the element is empty and a default is given."""
        text = seg.get(n)
        if not text:
            if default is not None:
                return default
            raise seg.error(f"{seg.field(n)} ({what}) is required", self.source, n)
        return self.decimal_text(seg, n, text, what)

    def money(self, seg: Segment, n: int, what: str, default: Decimal | None = None) -> Decimal:
        """A monetary amount (X12 data element 782). The HIPAA TR3s (appendix B.1.1.3.1.2) allow at most 10
        digits with at most two of them cents, so 99999999.99 is the largest; a fraction of a cent is refused
        rather than rounded, since the stored amounts must add up exactly as the file's do."""
        value = self.amount(seg, n, what, default)
        # first: quantize() of a 40-digit number would overflow the decimal context
        if abs(value) > MAX_MONEY:
            raise seg.error(f"{seg.field(n)} ({what}) {seg.get(n)!r} is larger than {MAX_MONEY}, the largest "
                            "monetary amount an X12 5010 file may carry", self.source, n)
        if value != value.quantize(CENT):
            raise seg.error(f"{seg.field(n)} ({what}) {seg.get(n)!r} has a fraction of a cent: a monetary "
                            "amount has at most 2 decimal places", self.source, n)
        return value

    def optional_amount(self, seg: Segment, n: int, what: str) -> Decimal | None:
        """A numeric element that may be empty."""
        text = seg.get(n)
        return self.decimal_text(seg, n, text, what) if text else None

    def date_problem(self, seg: Segment, n: int, text: str, what: str) -> tuple[dt.date | None, str | None]:
        """``text`` read as a CCYYMMDD date: (the date, None), or (None, why not) without raising or warning.
        An empty ``text`` is a missing date. For callers that decide themselves what a bad date means."""
        if not text:
            return None, f"{seg.field(n)} ({what}) is missing"
        if not _DATE.match(text):
            return None, f"{seg.field(n)} ({what}) must be a date CCYYMMDD, got {text!r}"
        try:
            return dt.date(int(text[:4]), int(text[4:6]), int(text[6:])), None
        except ValueError as exc:
            return None, f"{seg.field(n)} ({what}) {text!r} is not a valid CCYYMMDD date ({exc})"

    def date_text(self, seg: Segment, n: int, text: str, what: str) -> dt.date | None:
        """A CCYYMMDD date; in lenient mode an invalid one is recorded as a warning and read as None."""
        value, problem = self.date_problem(seg, n, text, what)
        if problem is None:
            return value
        error = seg.error(problem, self.source, n)
        if self.lenient_dates:
            self.warnings.append(str(error))
            return None
        raise error

    def date(self, seg: Segment, n: int, what: str, *, required: bool = False) -> dt.date | None:
        """Element ``n`` read as a CCYYMMDD date (None when empty and not required)."""
        text = seg.get(n)
        if not text:
            if required:
                raise seg.error(f"{seg.field(n)} ({what}) is required", self.source, n)
            return None
        return self.date_text(seg, n, text, what)

    def code(self, seg: Segment, n: int, what: str, allowed: dict[str, str] | frozenset[str],
             *, required: bool = True) -> str | None:
        """A code element that must be one of ``allowed``."""
        value = seg.get(n)
        if not value:
            if required:
                raise seg.error(f"{seg.field(n)} ({what}) is required", self.source, n)
            return None
        if value not in allowed:
            raise seg.error(f"{seg.field(n)} ({what}) {value!r} is not one of {', '.join(sorted(allowed))}",
                            self.source, n)
        return value

    def error(self, seg: Segment, message: str, n: int | None = None) -> LoadError:
        """A LoadError at ``seg`` (and its element ``n``)."""
        return seg.error(message, self.source, n)
