"""What pages need from the running app: the engines, the months on offer, the entities in scope."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import current_app
from sqlalchemy.engine import Engine

from dashboard import access, entities
from dashboard.errors import BadInput, NotFound
from dashboard.metrics.filters import add_months
from dashboard.report_cache import ReportCache, file_version
from dashboard.reports import data_as_of, default_end
from dashboard.warehouse.engine import require_schema


def warehouse() -> Engine:
    return current_app.extensions["dashboard"].warehouse()


def report_cache() -> ReportCache | None:
    return current_app.extensions["dashboard"].report_cache


def warehouse_url() -> str:
    return current_app.extensions["dashboard"].settings.warehouse_url


def app_db() -> Engine:
    return current_app.extensions["dashboard"].app_db


@dataclass(frozen=True)
class PageContext:
    months: list[str]  # newest last
    start: str
    end: str
    practices: list[dict]  # dropdown options within the scope
    employers: list[dict]
    names: dict[str, str] | None = None  # display names of the scope's practices and of payers, by id (grids, charts)


def page_context(scope: access.Scope, *, audience: str = "practice", history_months: int = 36,
                 default_months: int = 12) -> PageContext:
    """Months with data (ending at the as-of month of the scope's loads), the default period (ending where
    reports of ``audience`` end by default: for employers the latest complete month, see
    dashboard.reports.default_end) and the practices/employers of the scope."""
    engine = warehouse()
    cache, stamp = report_cache(), file_version(engine.url)
    if cache is not None and stamp is not None:  # a DuckDB file: kept per file version, no open on a revisit
        key = (engine.url.render_as_string(), stamp, "page_context", audience, scope.role, scope.practice_ids,
               scope.employer_ids, history_months, default_months)
        return cache.memo(key, lambda: _page_context(engine, scope, audience, history_months, default_months))
    return _page_context(engine, scope, audience, history_months, default_months)


def _page_context(engine: Engine, scope: access.Scope, audience: str, history_months: int,
                  default_months: int) -> PageContext:
    require_schema(engine)
    with engine.connect() as conn:
        last = data_as_of(conn, scope=scope).replace(day=1)  # the scope's own loads: see data_as_of
        end = default_end(conn, scope=scope, audience=audience, as_of=last)
        known = entities.known(conn, report_cache())  # the admin form and the CLI offer the same tenants
        practices = known.options("practice", scope.practice_ids)
        employers = known.options("employer", scope.employer_ids)
        names = {**known.payers, **{pid: name for pid, name in known.practices.items()
                                    if scope.practice_ids is None or pid in scope.practice_ids}}
    months = [f"{add_months(last, -i):%Y-%m}" for i in reversed(range(history_months))]
    end_text = f"{end:%Y-%m}" if f"{end:%Y-%m}" in months else months[-1]
    start_text = f"{add_months(dt.date.fromisoformat(end_text + '-01'), -(default_months - 1)):%Y-%m}"
    return PageContext(months=months, start=start_text if start_text in months else months[0], end=end_text,
                       practices=practices, employers=employers, names=names)


@dataclass(frozen=True)
class UrlFilters:
    start: str
    end: str
    entity: str | None


def url_filters(ctx: PageContext, query: dict, *, kind: str, default_entity: str | None = None,
                options: list[dict] | None = None) -> UrlFilters:
    """The filter bar's values from a bookmarked URL (``?from=YYYY-MM&to=YYYY-MM&practice=ID`` or
    ``employer=ID``), else the defaults. A month must be one the page offers; an id must be one of the scope's
    options, and any other id (another tenant's, or none that exists) is refused with the same words, so a URL
    cannot tell them apart."""
    start, end = query.get("from") or ctx.start, query.get("to") or ctx.end
    for name, value in (("from", start), ("to", end)):
        if value not in ctx.months:
            raise BadInput(f"'{name}' must be a month from {ctx.months[0]} to {ctx.months[-1]}, got {value!r}")
    if start > end:
        raise BadInput(f"'to' ({end}) is before 'from' ({start})")
    entity = query.get(kind) or default_entity
    if options is None:
        options = ctx.practices if kind == "practice" else ctx.employers
    if entity is not None and entity not in {o["value"] for o in options}:
        raise NotFound(f"unknown {kind}")  # the id is not echoed: another tenant's reads like a typo
    return UrlFilters(start, end, entity)
