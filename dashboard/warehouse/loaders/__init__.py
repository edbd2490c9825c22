"""Loaders: Tuva input-layer CSVs, X12 835 remittances, X12 834 enrollment.

Every load is all-or-nothing and never seen half-done by readers (see :func:`load_transaction`), is
idempotent (a file already loaded, by SHA-256, is skipped; rows are keyed so a changed file replaces
what it loaded before), and reports bad input as :class:`dashboard.errors.LoadError` naming the file,
line or segment, and field.
"""
