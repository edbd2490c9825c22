"""Private files: everything the app writes (app DB, warehouse, secret key, outbox, uploads, demo
accounts) holds password hashes, TOTP secrets or PHI, so it is readable by the service account only.

Two layers, because either alone has a gap: the app's own processes run with umask 077
(:func:`restrict_umask`), so even files created by SQLite or DuckDB themselves (journals, WALs, spill
directories) start private; and the code that creates a known file chmods it explicitly
(:func:`make_private`), so the rule also holds when the package is imported as a library under a laxer
umask. :func:`secure_data_dir` repairs the modes of files left by older versions at start-up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
UMASK = 0o077
# Companions SQLite and DuckDB create beside a database file.
SQLITE_COMPANIONS = ("-journal", "-wal", "-shm")
DUCKDB_COMPANIONS = (".wal",)


def restrict_umask() -> int:
    """Tighten the process umask so group and others get nothing; returns the previous umask."""
    previous = os.umask(UMASK)
    os.umask(previous | UMASK)  # only ever tighten: keep bits the operator already masked
    return previous


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Files created inside the block are private whatever the caller's umask (loads, builds)."""
    previous = os.umask(UMASK)
    os.umask(previous | UMASK)
    try:
        yield
    finally:
        os.umask(previous)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) as 700; an existing directory is left as it is, except
    that callers pass the data dir to :func:`secure_data_dir` which tightens it."""
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    for created in missing:  # mkdir's mode is filtered by the umask and not applied to parents
        _chmod(created, PRIVATE_DIR)
    return path


def make_private(*paths: Path | str | None, companions: Iterable[str] = ()) -> None:
    """chmod 600 each existing file (and its existing companions such as ``-wal``)."""
    suffixes = ("", *companions)
    for path in paths:
        if path is None:
            continue
        for suffix in suffixes:
            target = Path(f"{path}{suffix}")
            if target.is_file() and not target.is_symlink():
                _chmod(target, PRIVATE_FILE)


def open_private(path: Path, *, mode: str = "w", exclusive: bool = False):
    """Open a new or truncated file created as 600 (no moment in which others could open it)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE_FILE)
    _chmod(Path(path), PRIVATE_FILE)  # an existing file keeps its old mode through O_TRUNC
    return os.fdopen(fd, mode)


def secure_data_dir(directory: Path, *, extra_files: Iterable[Path | None] = ()) -> list[Path]:
    """Make the data dir and everything under it private (dirs 700, files lose group/other bits), plus
    ``extra_files`` kept elsewhere (an app DB or warehouse configured outside the data dir). Returns the
    paths whose mode was too open, each logged as a warning, so an operator learns of an old deployment."""
    fixed: list[Path] = []
    directory = Path(directory)
    if directory.is_dir() and not directory.is_symlink():
        fixed += _tighten(directory, PRIVATE_DIR)
        for root, dirs, names in os.walk(directory):
            for name in dirs:
                if not (Path(root) / name).is_symlink():
                    fixed += _tighten(Path(root) / name, PRIVATE_DIR)
            for name in names:
                fixed += _tighten(Path(root) / name, None)
    for path in extra_files:
        if path is None:
            continue
        for target in (Path(path), *(Path(f"{path}{s}") for s in (*SQLITE_COMPANIONS, *DUCKDB_COMPANIONS))):
            fixed += _tighten(target, None)
    for path in fixed:
        log.warning("%s was readable by other accounts; its mode is now owner-only", path)
    return fixed


def _tighten(path: Path, wanted: int | None) -> list[Path]:
    """Set ``wanted`` (directories), or drop a file's group/other bits; [path] when the mode changed."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return []
    if stat.S_ISLNK(info.st_mode):
        return []
    current = stat.S_IMODE(info.st_mode)
    target = wanted if wanted is not None else (current & 0o700) | PRIVATE_FILE
    if current == target:
        return []
    return [path] if _chmod(path, target) else []


def _chmod(path: Path, mode: int) -> bool:
    try:
        os.chmod(path, mode)
        return True
    except OSError as exc:  # not ours (another owner) or gone meanwhile: say so, do not stop the app
        log.warning("cannot restrict the mode of %s: %s", path, type(exc).__name__)
        return False
