"""The final layer: one function per KPI, each ``(conn, filters) -> DataFrame``.

The formula and its source are in each function's docstring; the shared rules (what is contractual,
what is a denial) are in :mod:`dashboard.metrics.definitions`; the staging and intermediate layers
are in :mod:`dashboard.warehouse.marts`.
"""

from dashboard.metrics.filters import Filters

__all__ = ["Filters"]
