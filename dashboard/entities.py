"""Which practices and employers exist, and their display names: the one lookup behind the CLI's id checks
(``dashboard report``, ``users add``), the report filters' check of ids named by full-access callers, the
admin's scope form and every page's filter bar, so none of them can offer or refuse a tenant the others
do not.

A module of its own because all of those import it: :mod:`dashboard.access` decides who sees what and
reads no warehouse, :mod:`dashboard.reports` is the catalog (the admin page and the CLI's user commands
need none of it), and the pages' context must not reach into either for a list of names.

What exists:

* a **practice** has a ``practice`` row (the demo, an 835 payee) or rows in ``mart_practice_month``, which
  sums every fact that names a practice (835 payments, patient payments, write-offs, 270/271 checks, claim
  events, and claims of known practices). A ``medical_claim.billing_tin`` alone is not a practice: a payer's
  or employer's claims feed names every provider it paid, and those claims never reach the practice
  reports (:func:`dashboard.warehouse.marts.stg_practice_claim`), so access to one would show nothing;
* an **employer** has an ``employer`` row (the demo, an 834 sponsor) or enrollment in
  ``mart_employer_month``, i.e. an ``eligibility.group_id``: a group that arrives only through Tuva
  eligibility exists, and can be granted, as soon as it is loaded.

Names come from the reference row, else the facts (``eligibility.group_name``), else the id. The marts are
read rather than the facts (a few rows per tenant and month); :func:`known` keeps the answer per data
version, so pages that ask on every layout cost one small query on PostgreSQL and none on a warm DuckDB.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.report_cache import ReportCache, data_version
from dashboard.warehouse import schema as s
from dashboard.warehouse import semantic


@dataclass(frozen=True)
class Entities:
    """Id -> display name of every practice and employer, each in display order (name, then id)."""

    practices: dict[str, str]
    employers: dict[str, str]
    payers: dict[str, str] = field(default_factory=dict)  # payer id -> name (the payer table; not a tenant)

    def options(self, kind: str, within: Iterable[str] | None = None) -> list[dict]:
        """Dropdown options {label, value} for ``kind`` ('practice' or 'employer'), only ids ``within``
        when given (a scope's ids)."""
        names = self.practices if kind == "practice" else self.employers
        keep = None if within is None else set(within)
        return [{"label": name if name == eid else f"{name} ({eid})", "value": eid}
                for eid, name in names.items() if keep is None or eid in keep]


def _ordered(names: dict[str, str]) -> dict[str, str]:
    return dict(sorted(names.items(), key=lambda item: (item[1].casefold(), item[0])))


def lookup(conn: Connection) -> Entities:
    """The practices and employers that exist (see the module docstring), read from the warehouse now."""
    p, e = s.practice, s.employer
    practices = {pid: name or pid for pid, name in conn.execute(sa.select(p.c.practice_id, p.c.practice_name))}
    pm_ = semantic.mart_practice_month
    for pid in conn.execute(sa.select(pm_.c.practice_id).distinct()).scalars():
        if pid:
            practices.setdefault(pid, pid)  # no reference row, no name in any fact: the id
    employers = {eid: name or eid for eid, name in conn.execute(sa.select(e.c.employer_id, e.c.employer_name))}
    em_ = semantic.mart_employer_month
    unnamed = sorted({eid for eid in conn.execute(sa.select(em_.c.employer_id).distinct()).scalars()
                      if eid and eid not in employers})
    if unnamed:  # only groups without an employer row cost a read of eligibility, and only theirs
        el = s.eligibility
        found = dict(conn.execute(
            sa.select(el.c.group_id, sa.func.max(el.c.group_name))  # spans that disagree: the greatest name
            .where(el.c.group_id.in_(unnamed), el.c.group_name.is_not(None), el.c.group_name != "")
            .group_by(el.c.group_id)).all())
        employers.update({eid: found.get(eid) or eid for eid in unnamed})
    payers = {pid: name or pid for pid, name in conn.execute(sa.select(s.payer.c.payer_id, s.payer.c.payer_name))}
    return Entities(_ordered(practices), _ordered(employers), payers)


def known(conn: Connection, cache: ReportCache | None = None) -> Entities:
    """:func:`lookup`, kept in ``cache`` (this process) per warehouse and data version: a load changes
    the version, so a new tenant shows on the next request."""
    if cache is None:
        return lookup(conn)
    key: Hashable = (conn.engine.url.render_as_string(), "entities", data_version(conn))
    return cache.memo(key, lambda: lookup(conn))
