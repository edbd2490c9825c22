"""X12 5010 parsing: a transaction-agnostic tokenizer, 835 remittances and 834 enrollments.

Decision: our own tokenizer + loop parser (standard library only) rather than a dependency.
linuxforhealth-x12 (last release 0.57.0, June 2022; classifiers stop at Python 3.9) is written for
pydantic v1 and fails at import under the pydantic 2 this venv already has (``BaseSettings`` moved;
upstream issue #141 open), and its errors are pydantic validation errors, not segment/field locations.
pyx12 (4.0.0, maintained, Python >= 3.11, light: defusedxml) validates against IG maps and reports
line/segment errors as 999-style error lists, but yields a generic segment tree: CAS triplets, PLB pairs,
Decimal amounts, LoadError locations and 835 balancing would still all be ours. The envelope tokenizer is
~200 lines, so a dependency buys little; the samples in shared/fixtures/x12 drive the tests.
"""

from dashboard.warehouse.x12.enrollment import (
    Coverage,
    EnrollmentFile,
    MemberChange,
    coverage_tier,
    parse_834,
)
from dashboard.warehouse.x12.remittance import (
    Adjustment,
    ClaimPayment,
    ProcedureCode,
    ProviderAdjustment,
    Remittance,
    ServiceLine,
    check_835_balance,
    parse_835,
)
from dashboard.warehouse.x12.tokenizer import (
    Delimiters,
    Interchange,
    Segment,
    Transaction,
    read_interchange,
    segments,
    tokenize,
)

__all__ = [
    "Adjustment",
    "ClaimPayment",
    "Coverage",
    "Delimiters",
    "EnrollmentFile",
    "Interchange",
    "MemberChange",
    "ProcedureCode",
    "ProviderAdjustment",
    "Remittance",
    "Segment",
    "ServiceLine",
    "Transaction",
    "check_835_balance",
    "coverage_tier",
    "parse_834",
    "parse_835",
    "read_interchange",
    "segments",
    "tokenize",
]
