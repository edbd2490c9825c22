"""Every report the user may see, as a table with its CSV export; rows are paged on the server."""

from __future__ import annotations

import json

from dash import Input, Output, State, dcc, html

from dashboard import paging
from dashboard.errors import NotFound
from dashboard.reports import get_report, report_page, reports_for
from dashboard.ui import components as ui
from dashboard.ui import grids
from dashboard.ui.context import page_context, report_cache, url_filters, warehouse
from dashboard.ui.registry import callback, clientside, page

GRID = "grid-report"


def layout(scope, **query):
    # an employer user's reports all follow claims run-out: their default period ends in a complete month
    ctx = page_context(scope, audience="practice" if scope.can_view("practice") else "employer")
    options = [{"label": r.title, "value": r.name} for r in reports_for(scope) if r.audience != "admin"]
    entities = ctx.practices if scope.can_view("practice") else []
    if scope.can_view("employer"):
        entities = entities + ctx.employers
    # a bookmarked /reports?report=NAME&from=YYYY-MM&to=YYYY-MM&practice=ID (or employer=ID)
    name = query.get("report") or (options[0]["value"] if options else None)
    if name is not None and name not in {o["value"] for o in options}:
        raise NotFound(f"unknown report {name!r}")
    kind = "practice" if name and get_report(name).audience == "practice" else "employer"
    chosen = url_filters(ctx, query, kind=kind, options=entities)
    # a drill-down (/reports?report=open-claims&payer=BCBS&age_days.gt=90): the grid opens with these filters
    drill = {"report": name, "model": grids.filter_model_from_query(get_report(name), query,
                                                                   deidentified=scope.deidentified)} if name else {}
    kinds = {o["value"]: ("practice" if get_report(o["value"]).audience == "practice" else "employer")
             for o in options}
    label = " or ".join(k for k in ("practice", "employer") if scope.can_view(k)).capitalize() or "Practice"
    return html.Div([
        html.H3("Reports", className="mb-3"),
        html.Div([html.Label("Report", htmlFor="reports-name", className="form-label"),
                  dcc.Dropdown(id="reports-name", options=options, value=name, clearable=False)],
                 className="mb-3", style={"maxWidth": "28rem"}),
        ui.filter_bar("reports", months=ctx.months, start=chosen.start, end=chosen.end, entity_label=label,
                      entity_options=entities, entity_value=chosen.entity),
        grids.refresh_store("reports"), ui.url_store("reports"), dcc.Store(id="reports-kinds", data=kinds),
        dcc.Store(id="reports-drill", data=drill),
        dcc.Loading(html.Div(id="reports-content"), type="default", delay_show=300),
    ])


page(__name__, path="/reports", title="Reports", audience="any", layout=layout, order=40)
# the address bar follows the report and its filters (the entity named practice= or employer= by the report's kind)
# and the grid's column filters, as a drill-down's URL names them (dashboard.ui.grids.filter_model_from_query)
clientside("""function(name, start, end, entity, model, kinds) {
    const params = new URLSearchParams();
    params.set('report', name || ''); params.set('from', start || ''); params.set('to', end || '');
    if (entity) { params.set((kinds || {})[name] || 'practice', entity); }
    const ops = OPS;
    Object.entries(model || {}).forEach(function([column, f]) {
        if (!f || f.conditions || !ops[f.filterType]) { return; }  // two conditions: not said in a URL
        const short = ops[f.filterType][f.type];
        if (short === undefined || f.filter === undefined || f.filter === null) { return; }
        params.set(short === 'eq' ? column : column + '.' + short, f.filter);
    });
    window.history.replaceState(window.history.state, '', window.location.pathname + '?' + params.toString());
    return params.toString();
}""".replace("OPS", json.dumps({kind: {op: short for short, op in ops.items()}
                                for kind, ops in paging.URL_OPS.items()})),
           Output("reports-url", "data"), Input("reports-name", "value"), Input("reports-from", "value"),
           Input("reports-to", "value"), Input("reports-entity", "value"), Input(GRID, "filterModel"),
           State("reports-kinds", "data"), prevent_initial_call=True)


def _ids(name: str, entity: str | None) -> dict:
    """The entity dropdown names a practice or an employer, whichever the report is about."""
    key = "practice" if get_report(name).audience == "practice" else "employer"
    return {key: entity} if entity else {}


@callback(Output("reports-content", "children"), Input("reports-name", "value"), Input("reports-from", "value"),
          Input("reports-to", "value"), Input("reports-entity", "value"), State("reports-drill", "data"),
          audience="any")
def render(scope, name, start, end, entity, drill):
    ids = _ids(name, entity)
    # no rows (limit 0): run through report_page only for its access checks; the grid asks for its rows
    checked = report_page(name, scope=scope, engine=warehouse(), start=start, end=end, limit=0,
                          cache=report_cache(), **ids)
    # the URL's column filters hold for the report they were written for (the server applies them, as any)
    model = (drill or {}).get("model") if (drill or {}).get("report") == name else None
    names = page_context(scope).names if checked.report.audience == "practice" else None
    return grids.paged_grid(checked.report, grid_id=GRID, href=ui.export_href(name, start=start, end=end, **ids),
                            deidentified=scope.deidentified, filter_model=model if isinstance(model, dict) else None,
                            names=names)


@callback(Output(GRID, "getRowsResponse"), Output(f"{GRID}-csv", "href"), Output(f"{GRID}-status", "children"),
          Input(GRID, "getRowsRequest"), State("reports-name", "value"), State("reports-from", "value"),
          State("reports-to", "value"), State("reports-entity", "value"), audience="any")
def grid_rows(scope, request, name, start, end, entity):
    ids = _ids(name, entity)
    return grids.rows_response(scope, name, request, start=start, end=end, **ids,
                               href=ui.export_href(name, start=start, end=end, **ids))


# a new report or filters re-render the grid's columns; then its rows are fetched again
grids.refresh_grids_on("reports", [GRID], Input("reports-content", "children"))
