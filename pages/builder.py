"""The report builder (/employer/builder): a measure by a grouping over a period against a comparison period, as a
chart, a table and a CSV; saved by name, shared with the other users of the same employer, reopened by URL
(``?saved=ID``, or the builder's own parameters ``?measure=&by=&compare=&from=&to=&employer=``).

The numbers are the catalog's ``builder`` report (dashboard.metrics.builder), suppressed for employer users like
every employer report; saving and opening go through dashboard.saved_reports.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import dash_bootstrap_components as dbc
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html

from dashboard import saved_reports, schedules
from dashboard.errors import AccessDenied, BadInput, NotFound
from dashboard.metrics import builder as rb
from dashboard.reports import get_report, run_report
from dashboard.ui import components as ui
from dashboard.ui.context import app_db, page_context, report_cache, url_filters, warehouse
from dashboard.ui.registry import callback, page

CONTROLS = {"measure": "builder-measure", "by": "builder-by", "compare": "builder-compare"}
FILTERS = (Input("builder-from", "value"), Input("builder-to", "value"), Input("builder-entity", "value"),
           *[Input(component, "value") for component in CONTROLS.values()])
ROLLING, SHARED = "rolling", "shared"


def _choice(query: dict, name: str) -> str:
    values = get_report("builder").options[name]
    value = query.get(name) or values[0]
    if value not in values:
        raise BadInput(f"{name} must be one of {', '.join(values)}, got {value!r}")
    return value


def layout(scope, **query):
    context = page_context(scope, audience="employer")
    note = None
    if query.get("saved"):  # a saved report's question, asked again under this user's scope
        saved = saved_reports.get(app_db(), scope=scope, saved_id=query["saved"])
        note = dbc.Alert([html.Strong(saved.name), f" · saved by {saved.owner_email} · period {saved.period}"
                          + (" · shared" if saved.shared else "")], color="light", className="py-2",
                         id="builder-opened")
        query = saved.query()
    chosen = url_filters(context, query, kind="employer",
                         default_entity=context.employers[0]["value"] if len(context.employers) == 1 else None)
    choice = {name: _choice(query, name) for name in CONTROLS}
    dropdown = dict(clearable=False, style={"minWidth": "14rem"})
    return html.Div([
        html.H3("Report builder", className="mb-1"),
        html.Div("Pick a measure, a grouping, a period and what to compare it with. De-identified: cells with counts "
                 "from 1 to 10 are suppressed, with any cell that would reveal one." if scope.deidentified else
                 "Full view (admin): small cells are not suppressed here.", className="text-muted small mb-3"),
        *([note] if note else []),
        dbc.Row([
            dbc.Col([dbc.Label("Measure", html_for="builder-measure"),
                     dcc.Dropdown(id="builder-measure", value=choice["measure"], **dropdown,
                                  options=[{"label": m.label, "value": k} for k, m in rb.MEASURES.items()])], md=4),
            dbc.Col([dbc.Label("By", html_for="builder-by"),
                     dcc.Dropdown(id="builder-by", value=choice["by"], **dropdown,
                                  options=[{"label": v, "value": k} for k, v in rb.GROUPINGS.items()])], md=3),
            dbc.Col([dbc.Label("Compare with", html_for="builder-compare"),
                     dcc.Dropdown(id="builder-compare", value=choice["compare"], **dropdown,
                                  options=[{"label": v, "value": k} for k, v in rb.COMPARISONS.items()])], md=4),
        ], className="g-3 mb-2"),
        ui.filter_bar("builder", months=context.months, start=chosen.start, end=chosen.end, entity_label="Employer",
                      entity_options=context.employers, entity_value=chosen.entity),
        ui.url_store("builder"),
        dcc.Loading(html.Div(id="builder-result", style={"minHeight": "360px"}), type="default", delay_show=300),
        html.H5("Save this report", className="mt-4"),
        dbc.Row([
            dbc.Col(dbc.Input(id="builder-name", placeholder="Name, e.g. Quarterly PMPM by category", maxLength=120,
                              type="text"), md=5),
            dbc.Col(dbc.Checklist(id="builder-save-options", inline=True, value=[], options=[
                {"label": "share with my employer's other users", "value": SHARED},
                {"label": "keep the period rolling (the latest complete months when opened)", "value": ROLLING}]),
                md=5),
            dbc.Col(dbc.Button("Save", id="builder-save", color="primary"), md=2),
        ], className="g-2 align-items-center"),
        html.Div(id="builder-saved-message", className="mt-2"),
        html.H5("Saved reports", className="mt-4"),
        html.Div(saved_list(scope), id="builder-saved-list"),
        html.H5("Send a saved report to me", className="mt-4"),
        html.Div("Computed when it is sent, with your access and the same suppressed cells as here; the CSV is "
                 "attached.", className="text-muted small mb-2"),
        dbc.Row([
            dbc.Col(dbc.RadioItems(id="builder-schedule-every", inline=True, value="weekly", options=[
                {"label": "weekly (Mondays)", "value": "weekly"}, {"label": "monthly (the 1st)", "value": "monthly"}]),
                md=5),
            dbc.Col(dbc.Button("Send it to me", id="builder-schedule", color="secondary", size="sm"), md=3),
        ], className="g-2 align-items-center"),
        html.Div(deliveries(scope), id="builder-deliveries", className="mt-2"),
    ])


page(__name__, path="/employer/builder", title="Builder", audience="employer", layout=layout, order=25)
ui.keep_filters_in_url("builder", entity="employer", extra=CONTROLS)


def saved_list(scope) -> html.Div:
    """The saved reports this user may open: theirs (with a delete button) and those shared with them."""
    rows = saved_reports.visible(app_db(), scope=scope)
    # the reports that can be sent to this user (any they may open), for "Send a saved report to me" below
    sendable = dcc.Dropdown(id="builder-schedule-report", placeholder="A saved report to send to me",
                            options=[{"label": saved.name, "value": saved.id} for saved in rows], className="mt-2",
                            style={"maxWidth": "28rem"})
    if not rows:
        return html.Div([html.Div("No saved reports yet.", className="text-muted small"), sendable])
    body = []
    for saved in rows:
        measure = rb.MEASURES.get(saved.options.get("measure", ""), None)
        what = (f"{measure.label if measure else saved.report} by "
                f"{rb.GROUPINGS.get(saved.options.get('by', ''), '?').lower()}, {saved.period}")
        body.append(html.Tr([
            html.Td(html.A(saved.name, href=saved.href)), html.Td(what, className="small"),
            html.Td(saved.owner_email if saved.owner_id != scope.user_id else "you", className="small"),
            html.Td("shared" if saved.shared else "private", className="small"),
        ]))
    own = [{"label": saved.name, "value": saved.id} for saved in rows
           if saved.owner_id == scope.user_id or scope.full_access]
    return html.Div([
        dbc.Table([html.Thead(html.Tr([html.Th("Name"), html.Th("Report"), html.Th("Owner"), html.Th("Shared")])),
                   html.Tbody(body)], size="sm", className="saved-reports"),
        dbc.Row([
            dbc.Col(dcc.Dropdown(id="builder-delete-choice", options=own, placeholder="One of your saved reports"),
                    md=5),
            dbc.Col(dbc.Button("Delete", id="builder-delete", color="outline-danger", size="sm"), md=2),
        ], className="g-2 align-items-center") if own else html.Div(),
        sendable,
    ])


@contextlib.contextmanager
def _refused_if_unknown(what: str) -> Iterator[None]:
    """An id the dropdowns never offered (another user's, or none): the call is refused and nothing changes."""
    try:
        yield
    except NotFound:
        raise AccessDenied(what) from None


def deliveries(scope) -> html.Div:
    """The scheduled deliveries to this user, with a control to stop one."""
    rows = schedules.for_recipient(app_db(), scope=scope)
    if not rows:
        return html.Div("No deliveries to you yet.", className="text-muted small", id="builder-delivery-list")
    return html.Div([
        html.Ul([html.Li(f"{r.saved_report_name}: {r.frequency}, next {r.next_run_at:%Y-%m-%d %H:%M} UTC"
                         + (f", last sent {r.last_sent_at:%Y-%m-%d}" if r.last_sent_at else "")
                         + (f" (retrying after {r.failures} failed sends)" if r.failures else ""))
                 for r in rows], className="small mb-1", id="builder-delivery-list"),
        dbc.Row([
            dbc.Col(dcc.Dropdown(id="builder-unschedule-choice", placeholder="A delivery to stop",
                                 options=[{"label": f"{r.saved_report_name} ({r.frequency})", "value": r.id}
                                          for r in rows]), md=5),
            dbc.Col(dbc.Button("Stop", id="builder-unschedule", color="outline-danger", size="sm"), md=2),
        ], className="g-2 align-items-center"),
    ])


@callback(Output("builder-deliveries", "children"), Input("builder-schedule", "n_clicks"),
          State("builder-schedule-report", "value"), State("builder-schedule-every", "value"), audience="employer",
          prevent_initial_call=True)
def schedule(scope, clicks, saved_id, frequency):
    """Send a saved report to this user weekly or monthly (dashboard.schedules checks they may open it)."""
    if clicks and saved_id is not None:
        with _refused_if_unknown("unknown saved report"):
            schedules.add(app_db(), saved_id=saved_id, recipient=scope.email or "", frequency=frequency, actor=scope)
    return deliveries(scope)


@callback(Output("builder-deliveries", "children", allow_duplicate=True), Input("builder-unschedule", "n_clicks"),
          State("builder-unschedule-choice", "value"), audience="employer", prevent_initial_call=True)
def unschedule(scope, clicks, schedule_id):
    if clicks and schedule_id is not None:
        with _refused_if_unknown("unknown delivery"):
            schedules.remove(app_db(), schedule_id=schedule_id, actor=scope)
    return deliveries(scope)


def _options(measure, by, compare) -> dict[str, str]:
    return {"measure": measure, "by": by, "compare": compare}


@callback(Output("builder-result", "children"), *FILTERS, audience="employer")
def result(scope, start, end, employer, measure, by, compare):
    """The chart, the table and the CSV link of the chosen report."""
    options = _options(measure, by, compare)
    # the report checks the scope, then the options, before anything is said of them
    frame = run_report("builder", scope=scope, engine=warehouse(), start=start, end=end, employer=employer,
                       cache=report_cache(), options=options).frame
    if not rb.supported(measure, by):
        kept = ", ".join(rb.GROUPINGS[g].lower() for g in rb.SUPPORTS[rb.kind(measure)])
        return dbc.Alert(f"{rb.MEASURES[measure].label} is not kept by {rb.GROUPINGS[by].lower()}; it can be grouped "
                         f"by {kept}.", color="info", id="builder-unsupported")
    if frame.empty:
        return dbc.Alert("Nothing for this selection.", color="info")
    m = rb.MEASURES[measure]
    suppressed = frame["suppressed"].astype(bool) if "suppressed" in frame else pd.Series(False, index=frame.index)
    fig = go.Figure()
    positional = by in ("month", "quarter")
    add = fig.add_scatter if positional else fig.add_bar
    style = {"mode": "lines+markers", "connectgaps": False} if positional else {}
    base_period = frame["base_period"].iloc[0]
    if base_period:
        add(x=frame["label"].tolist(), y=[None if pd.isna(v) else float(v) for v in frame["base"]],
            name=f"compared: {base_period}", customdata=frame["base_group"].tolist(),
            hovertemplate="%{customdata}: %{y:,.2f}<extra></extra>", **style)
    add(x=frame["label"].tolist(), y=[None if pd.isna(v) else float(v) for v in frame["current"]],
        name=f"period {frame['period'].iloc[0]}", **style)
    hidden = frame[suppressed]
    ui.mark_suppressed(fig, [(label, m.label) for label in hidden["label"]])
    ui.style_figure(fig, f"{m.label} by {rb.GROUPINGS[by].lower()}" + (" · ✕ suppressed" if len(hidden) else ""))
    if m.unit != "money":
        fig.update_yaxes(tickprefix="", tickformat=",")
    if by == "month" and rb.kind(measure) in ("money", "events"):  # a month still in run-out says so
        completion = run_report("claims-completion", scope=scope, engine=warehouse(), start=start, end=end,
                                employer=employer, cache=report_cache()).frame
        months = ui.runout_months(completion)
        if months:
            ui.mark_runout(fig, *zip(*months, strict=True))
    table = dbc.Table([
        html.Thead(html.Tr([html.Th(rb.GROUPINGS[by]), html.Th(f"Period {frame['period'].iloc[0]}"),
                            *([html.Th(f"Compared {base_period}"), html.Th("Change")] if base_period else [])])),
        html.Tbody([html.Tr([
            html.Th(row.label, scope="row"), html.Td(ui.fmt_cell(row.current, m.unit, suppressed=hidden_row)),
            *([html.Td(ui.fmt_cell(row.base, m.unit, suppressed=hidden_row)
                       + (f" ({row.base_group})" if positional else "")),
               html.Td("" if pd.isna(row.change_pct) else f"{row.change_pct:+.1%}")] if base_period else []),
        ]) for row, hidden_row in zip(frame.itertuples(index=False), suppressed, strict=True)]),
    ], size="sm", striped=True, id="builder-table")
    href = ui.export_href("builder", start=start, end=end, employer=employer, **options)
    return html.Div([
        ui.graph(fig, "builder-chart"),
        html.Div(html.A("Download CSV", href=href, className="btn btn-outline-primary btn-sm", id="builder-csv"),
                 className="my-2"),
        table,
    ])


@callback(Output("builder-saved-message", "children"), Output("builder-saved-list", "children"),
          Input("builder-save", "n_clicks"), State("builder-name", "value"), State("builder-save-options", "value"),
          State("builder-from", "value"), State("builder-to", "value"), State("builder-entity", "value"),
          *[State(component, "value") for component in CONTROLS.values()], audience="employer",
          prevent_initial_call=True)
def save(scope, clicks, name, flags, start, end, employer, measure, by, compare):
    """Save the report on screen under a name (BadInput, e.g. no name, is said next to the button)."""
    flags = flags or []
    try:
        saved = saved_reports.save(app_db(), scope=scope, name=name or "", report="builder",
                                   options=_options(measure, by, compare),
                                   start=None if ROLLING in flags else start, end=None if ROLLING in flags else end,
                                   employers=[employer] if employer else [], shared=SHARED in flags)
    except BadInput as exc:
        return dbc.Alert(str(exc), color="danger", className="py-2"), saved_list(scope)
    return (dbc.Alert(["Saved. Open it at ", html.A(saved.href, href=saved.href, id="builder-saved-link")],
                      color="success", className="py-2"), saved_list(scope))


@callback(Output("builder-saved-list", "children", allow_duplicate=True), Input("builder-delete", "n_clicks"),
          State("builder-delete-choice", "value"), audience="employer", prevent_initial_call=True)
def delete(scope, clicks, saved_id):
    """Delete one of the user's saved reports (another's is unknown to them: dashboard.saved_reports.delete)."""
    if clicks and saved_id is not None:
        with _refused_if_unknown("unknown saved report"):
            saved_reports.delete(app_db(), scope=scope, saved_id=saved_id)
    return saved_list(scope)
