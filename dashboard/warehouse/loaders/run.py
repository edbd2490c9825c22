"""Run a load of any format inside one all-or-nothing transaction (used by the CLI and the upload page)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from dashboard.errors import BadInput, LoadError
from dashboard.warehouse.loaders.common import FileResult
from dashboard.warehouse.loaders.transaction import load_transaction

Progress = Callable[[str], None]


def run_load(url: str, *, fmt: str, paths: Sequence[Path], progress: Progress | None = None,
             allow_unbalanced: bool = False) -> list[str]:
    """Load ``paths`` as ``fmt``; returns one summary line per file. Nothing is written on any error.
    ``allow_unbalanced`` (835 only) loads files that break the balancing rules, with a warning each."""
    for path in paths:
        if not path.exists():
            raise LoadError("no such file or directory", file=str(path))
    with load_transaction(url) as conn:
        results: list[FileResult]
        if fmt == "tuva":
            from dashboard.warehouse.loaders.tuva import load_directory

            if len(paths) != 1:
                raise BadInput("--format tuva takes one directory holding medical_claim.csv, pharmacy_claim.csv, "
                               "eligibility.csv")
            results = load_directory(conn, paths[0])
        elif fmt == "x12-835":
            from dashboard.warehouse.loaders.remittance import load_835_files

            results = load_835_files(conn, paths, progress=progress, allow_unbalanced=allow_unbalanced)
        elif fmt == "x12-834":
            from dashboard.warehouse.loaders.enrollment import load_834_files

            results = load_834_files(conn, paths, progress=progress)
        else:
            raise BadInput(f"unknown format {fmt!r}")
    return [r.summary() for r in results]
