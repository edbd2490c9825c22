"""Loads started from the web run in a background thread so the page can show progress.

State is kept in this process (the app is served by one multi-threaded process); each job records its
progress lines and its outcome. Only one load runs at a time anyway (the loader takes a file lock).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from dashboard.errors import DashboardError


@dataclass
class Job:
    id: str
    owner: int | None
    status: str = "running"  # running | done | failed
    lines: list[str] = field(default_factory=list)
    error: str | None = None


_JOBS: dict[str, Job] = {}
_LOCK = threading.Lock()


def start(work: Callable[[Callable[[str], None]], list[str]], *, owner: int | None) -> Job:
    """Run ``work(progress)`` in a thread; its returned lines and any DashboardError end up on the job."""
    job = Job(id=uuid.uuid4().hex, owner=owner)
    with _LOCK:
        _JOBS[job.id] = job

    def run() -> None:
        try:
            job.lines.extend(work(job.lines.append))
            job.status = "done"
        except DashboardError as exc:
            job.error, job.status = str(exc), "failed"
        except Exception as exc:  # a bug: say so without details that may quote data
            job.error = f"the load failed unexpectedly ({type(exc).__name__}); nothing was changed"
            job.status = "failed"

    threading.Thread(target=run, name=f"load-{job.id[:8]}", daemon=True).start()
    return job


def get(job_id: str | None, *, owner: int | None) -> Job | None:
    job = _JOBS.get(job_id or "")
    return job if job is not None and job.owner == owner else None
