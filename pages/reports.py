"""Every report the user may see, as a table with its CSV export."""

from __future__ import annotations

from dash import Input, Output, dcc, html

from dashboard.reports import reports_for, run_report
from dashboard.ui import components as ui
from dashboard.ui.context import page_context, report_cache, warehouse
from dashboard.ui.registry import callback, page


def layout(scope, **_):
    ctx = page_context(scope)
    options = [{"label": r.title, "value": r.name} for r in reports_for(scope) if r.audience != "admin"]
    entities = ctx.practices if scope.can_view("practice") else []
    if scope.can_view("employer"):
        entities = entities + ctx.employers
    kinds = [k for k in ("practice", "employer") if scope.can_view(k)]
    label = " or ".join(kinds).capitalize() or "Practice"
    return html.Div([
        html.H3("Reports", className="mb-3"),
        html.Div([html.Label("Report", htmlFor="reports-name", className="form-label"),
                  dcc.Dropdown(id="reports-name", options=options, value=options[0]["value"] if options else None,
                               clearable=False)], className="mb-3", style={"maxWidth": "28rem"}),
        ui.filter_bar("reports", months=ctx.months, start=ctx.start, end=ctx.end, entity_label=label,
                      entity_options=entities, entity_value=None),
        dcc.Loading(html.Div(id="reports-content"), type="default", delay_show=300),
    ])


page(__name__, path="/reports", title="Reports", audience="any", layout=layout, order=40)


@callback(Output("reports-content", "children"), Input("reports-name", "value"), Input("reports-from", "value"),
          Input("reports-to", "value"), Input("reports-entity", "value"), audience="any")
def render(scope, name, start, end, entity):
    from dashboard.reports import get_report

    report = get_report(name)
    key = "practice" if report.audience == "practice" else "employer"
    ids = {key: entity} if entity else {}
    result = run_report(name, scope=scope, engine=warehouse(), start=start, end=end, cache=report_cache(), **ids)
    return ui.report_grid(result.report, result.frame, grid_id="grid-report",
                          href=ui.export_href(name, start=start, end=end, **ids), height=600)
