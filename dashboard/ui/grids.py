"""Report grids whose rows stay on the server until asked for: dash-ag-grid's infinite row model.

A grid in a layout carries its columns only. Once drawn, AG Grid asks for a block of rows through its
``getRowsRequest`` prop (startRow, endRow, sortModel, filterModel); the grid's callback answers
``getRowsResponse`` {rowData, rowCount} from :func:`dashboard.reports.report_page`, which checks the scope,
sorts, filters and cuts the page on the server (in SQL for the claim-level reports). No response carries
more than :data:`dashboard.paging.MAX_ROWS` rows. When the page's filters change, a client-side callback
tells the grids to drop their blocks and ask again.

Callbacks built here are declared in :mod:`dashboard.ui.registry` with their page's audience, like any
other: they never decide access themselves.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, dcc, html

from dashboard import paging
from dashboard.errors import BadInput, NotFound
from dashboard.metrics.kpis import KPIS
from dashboard.reports import Report, report_page, sortable_columns
from dashboard.ui import registry
from dashboard.ui.context import report_cache, warehouse

VIEW_ROWS = 10  # rows per grid page on screen
BLOCK_ROWS = 50  # rows the grid asks for at a time (5 screen pages); the server never sends more than MAX_ROWS
# Count-like columns get AG Grid's number filter; the rest (ids, names, months, dates) its text filter.
NUMBER_COLUMNS = frozenset({
    "claims", "open_claims", "checks", "verified", "pending", "inactive", "errors", "members", "subscribers",
    "member_months", "subscriber_months", "adds", "terms", "events", "members_with_events", "members_with_claims",
    "claimants", "high_cost_claimants", "line_number", "unmatched_claims", "days_in_ar", "average_days_to_payment",
    "per_1000", "age_days", "due_soon", "days_waiting", "follow_up_after_days", "days_left", "days_to_visit",
    "submitted", "accepted", "adjudicated", "paid", "denied", "appealed", "overturned", "charge_lag_days",
    "days_to_acceptance", "days_to_adjudication", "days_to_payment", "payments", "adjudications",
    "current", "base", "change", "numerator", "denominator",
})
EMPTY = {"rowData": [], "rowCount": 0}
WORDS_COLUMNS = frozenset({"reason", "carc_reason", "remark", "description"})
NAMED_COLUMNS = frozenset({"practice_id", "payer", "owed_to"})  # ids with a display name (the grid's context)
NAME_OF = ("params.value == null ? '' : ((params.context && params.context.names && "
           "params.context.names[params.value]) || params.value)")


def _unit(report: Report, name: str) -> str:
    if name in report.money:
        return "money"
    if name in report.rates or (name in KPIS and KPIS[name].unit == "rate"):
        return "rate"
    if name in KPIS and KPIS[name].unit == "money":
        return "money"
    return "number" if name in NUMBER_COLUMNS or name in KPIS else "text"


def column_defs(report: Report, *, deidentified: bool) -> list[dict]:
    """AG Grid columns for ``report``; sorting and filtering only where the server can do them."""
    names = [*report.columns, *(["suppressed"] if deidentified and report.privacy is not None else [])]
    server_side = set(sortable_columns(report, deidentified=deidentified))
    defs = []
    for name in names:
        unit = _unit(report, name)
        col: dict = {"field": name, "headerName": name.replace("_", " "), "sortable": name in server_side,
                     "filter": False}
        if name in server_side:  # AG Grid's default operators of these two filters are dashboard.paging's
            col["filter"] = "agTextColumnFilter" if unit == "text" else "agNumberColumnFilter"
        if unit == "money":
            col["valueFormatter"] = {"function": "params.value == null ? '' : d3.format('$,.2f')(params.value)"}
            col["type"] = "rightAligned"
        elif unit == "rate":
            col["valueFormatter"] = {"function": "params.value == null ? '' : d3.format('.1%')(params.value)"}
            col["type"] = "rightAligned"
        elif unit == "number":
            col["type"] = "rightAligned"
        if name in NAMED_COLUMNS:  # the name shows, the id on hover (filters and sorts still read the id)
            col.update(valueFormatter={"function": NAME_OF}, tooltipField=name, minWidth=180)
        if name == "claim_id":  # each claim opens its page (assets/dashAgGridComponentFunctions.js)
            col.update(cellRenderer="ClaimLink", minWidth=150)
        elif name in WORDS_COLUMNS:  # a code's meaning: wide enough to read, whole on hover
            col.update(minWidth=240, tooltipField=name)
        defs.append(col)
    return defs


URL_RESERVED = frozenset({"report", "from", "to", "practice", "employer"})  # the page's own parameters


def column_kinds(report: Report, *, deidentified: bool) -> dict[str, str]:
    """Each column a grid can filter, with its filter's kind (text | number), as the grid's column filters are."""
    return {name: "text" if _unit(report, name) == "text" else "number"
            for name in sortable_columns(report, deidentified=deidentified)}


def query_filters(report: Report, query: dict, *, deidentified: bool) -> tuple[paging.ColumnFilter, ...]:
    """The column filters a URL names (``/reports?report=open-claims&payer=BCBS&age_days.gt=90``, and the
    same on its CSV link): paging.filters_from_query over this report's filterable columns (a parameterised
    report's options, ``measure=`` of the builder, are its own parameters, not filters)."""
    return paging.filters_from_query(query, column_kinds(report, deidentified=deidentified),
                                     reserved=URL_RESERVED | set(report.options))


def filter_model_from_query(report: Report, query: dict, *, deidentified: bool) -> dict:
    """AG Grid's filterModel for the column filters a URL names: the grid opens filtered, and the server applies
    them as any filter the user sets."""
    return {f.column: {"filterType": c.kind, "type": c.op, "filter": c.value}
            for f in query_filters(report, query, deidentified=deidentified) for c in f.conditions}


def paged_grid(report: Report, *, grid_id: str, href: str, deidentified: bool,
               filter_model: dict | None = None, names: dict[str, str] | None = None) -> html.Div:
    """The report's grid (columns only: rows come a block at a time) with its CSV link for the same filters;
    ``filter_model`` opens it filtered (a drill-down, see :func:`filter_model_from_query`)."""
    return html.Div([
        html.Div([
            html.H5(report.title, className="mb-0"),
            html.A("Download CSV", href=href, className="btn btn-sm btn-outline-primary", id=f"{grid_id}-csv",
                   target="_blank", rel="noopener"),
        ], className="d-flex justify-content-between align-items-center mb-2 gap-2"),
        html.Div(report.description, className="small text-muted mb-2"),
        html.Div(id=f"{grid_id}-status"),
        dag.AgGrid(
            id=grid_id, rowModelType="infinite", columnDefs=column_defs(report, deidentified=deidentified),
            filterModel=filter_model or {},
            defaultColDef={"minWidth": 110, "flex": 1, "resizable": True,
                           "filterParams": {"maxNumConditions": 2, "buttons": ["reset"]}},
            dashGridOptions={"pagination": True, "paginationPageSize": VIEW_ROWS,
                             "paginationPageSizeSelector": [VIEW_ROWS, 25, BLOCK_ROWS],
                             "cacheBlockSize": BLOCK_ROWS, "maxBlocksInCache": 20, "domLayout": "autoHeight",
                             "context": {"names": names or {}}, "tooltipShowDelay": 300},
            className="ag-theme-alpine", style={"width": "100%"},
        ),
    ], className="mb-4")


# --- requests ------------------------------------------------------------------------------------------------

def _int(value: Any, default: int) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) \
        else default


def _condition(model: dict) -> paging.Condition:
    kind = "number" if model.get("filterType") == "number" else "text"
    return paging.Condition(kind, str(model.get("type") or ""), model.get("filter"), model.get("filterTo"))


def parse_rows_request(request: Any) -> tuple[int, int, list[paging.Sort], list[paging.ColumnFilter]]:
    """(offset, limit, sort, filters) from AG Grid's getRowsRequest. A value the grid never sends is read
    as the first block; an unsupported filter is BadInput (checked after the scope: see rows_response)."""
    request = request if isinstance(request, dict) else {}
    start = max(_int(request.get("startRow"), 0), 0)
    end = _int(request.get("endRow"), start + BLOCK_ROWS)
    sort = [paging.Sort(m["colId"], m.get("sort") == "desc") for m in request.get("sortModel") or []
            if isinstance(m, dict) and isinstance(m.get("colId"), str) and m.get("sort") in ("asc", "desc")]
    filters = []
    model = request.get("filterModel") if isinstance(request.get("filterModel"), dict) else {}
    for column, spec in model.items():
        if not isinstance(spec, dict):
            raise BadInput(f"bad filter on {column!r}")
        parts = spec.get("conditions") if isinstance(spec.get("conditions"), list) else [spec]
        join = "or" if str(spec.get("operator", "AND")).upper() == "OR" else "and"
        filters.append(paging.ColumnFilter(str(column), tuple(_condition(p) for p in parts if isinstance(p, dict)),
                                           join))
    return start, max(end - start, 0), sort, filters


def records(frame: pd.DataFrame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def rows_response(scope, name: str, request: Any, *, start: str | None, end: str | None,
                  practice: str | None = None, employer: str | None = None, href: str) -> tuple[dict, str, Any]:
    """(getRowsResponse, CSV href, status) for one block of a report's rows. Access is run_report's (through
    report_page): AccessDenied propagates and the registry refuses the call; a filter the server cannot apply
    is shown next to the grid, with no rows."""
    try:
        offset, limit, sort, filters = parse_rows_request(request)
    except BadInput as exc:
        offset, limit, sort, filters, problem = 0, 0, [], [], exc
    else:
        problem = None
    try:
        page = report_page(name, scope=scope, engine=warehouse(), start=start, end=end, practice=practice,
                           employer=employer, sort=sort, filters=filters, offset=offset, limit=limit,
                           cache=report_cache())
    except (BadInput, NotFound) as exc:  # not access: a malformed month, an unknown id for an admin
        return EMPTY, href, dbc.Alert(str(exc), color="danger", className="py-1 small")
    if problem is not None:
        return EMPTY, href, dbc.Alert(str(problem), color="danger", className="py-1 small")
    # the CSV holds the rows the grid shows: its column filters go on the link, as a URL says them
    said = paging.query_from_filters(filters)
    note = None
    if said:
        href += ("&" if "?" in href else "?") + urlencode(said)
    elif said is None:
        note = html.Div("The CSV has every row of the period: a filter with two conditions or a range is not "
                        "applied to it.", className="small text-muted")
    return {"rowData": records(page.frame), "rowCount": page.row_count}, href, note


def register_grid(module: str, report: str, *, grid_id: str, prefix: str, audience: str, entity: str,
                  href: Any) -> None:
    """Declare the callback that serves ``grid_id`` (report ``report``) on a page whose filter bar is
    ``prefix``-from/-to/-entity; ``entity`` is the report_page argument the entity dropdown fills."""

    def grid_rows(scope, request, start, end, chosen):
        ids = {entity: chosen} if chosen else {}
        return rows_response(scope, report, request, start=start, end=end, **ids,
                             href=href(report, start=start, end=end, **ids))

    grid_rows.__module__ = module  # the registry keys callbacks by module and name
    grid_rows.__qualname__ = grid_rows.__name__ = f"grid_rows_{report.replace('-', '_')}"
    registry.callback(Output(grid_id, "getRowsResponse"), Output(f"{grid_id}-csv", "href"),
                      Output(f"{grid_id}-status", "children"), Input(grid_id, "getRowsRequest"),
                      State(f"{prefix}-from", "value"), State(f"{prefix}-to", "value"),
                      State(f"{prefix}-entity", "value"), audience=audience)(grid_rows)


def refresh_store(prefix: str) -> dcc.Store:
    return dcc.Store(id=f"{prefix}-grids-refreshed")


def refresh_grids_on(prefix: str, grid_ids: Sequence[str], *inputs: Input) -> None:
    """When ``inputs`` change (the filter bar), every grid of the page drops its rows and asks again from the
    first page; a grid not drawn yet asks by itself once it is."""
    code = """function() {
        IDS.forEach(function(id) {
            try {
                const api = dash_ag_grid.getApi(id);
                api.paginationGoToFirstPage();
                api.purgeInfiniteCache();
            } catch (e) {}
        });
        return Date.now();
    }""".replace("IDS", json.dumps(list(grid_ids)))
    registry.clientside(code, Output(f"{prefix}-grids-refreshed", "data"), *inputs, prevent_initial_call=True)
