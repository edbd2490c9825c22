"""Employer overview: enrollment, PMPM by service category, utilization and high-cost claimants, as
de-identified aggregates (small cells suppressed for employer users).

Cards, the chart and each grid fill themselves through their own callbacks; grids fetch one block of
(suppressed, for employer users) rows at a time (dashboard.ui.grids).
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import Input, Output, dcc, html

from dashboard.reports import get_report, run_report
from dashboard.ui import components as ui
from dashboard.ui import grids
from dashboard.ui.context import page_context, report_cache, warehouse
from dashboard.ui.registry import callback, page

FILTERS = (Input("employer-from", "value"), Input("employer-to", "value"), Input("employer-entity", "value"))
GRIDS = {name: f"grid-{name}" for name in ("employer-summary", "enrollment", "spend", "utilization",
                                           "high-cost-claimants", "spend-outside-enrollment")}


def layout(scope, **_):
    ctx = page_context(scope)
    entity = ctx.employers[0]["value"] if len(ctx.employers) == 1 else None
    href = {"start": ctx.start, "end": ctx.end, "employer": entity}
    return html.Div([
        html.H3("Employer plan overview", className="mb-1"),
        html.Div("De-identified aggregates. Cells with counts from 1 to 10 are suppressed, with any cell "
                 "or total that would reveal them; high-cost claimants count calendar years."
                 if scope.deidentified else
                 "Full view (admin): small cells are not suppressed here.", className="text-muted small mb-3"),
        ui.filter_bar("employer", months=ctx.months, start=ctx.start, end=ctx.end, entity_label="Employer",
                      entity_options=ctx.employers, entity_value=entity),
        grids.refresh_store("employer"),
        html.Div([
            dcc.Loading(html.Div(id="employer-cards", style={"minHeight": "120px"}), type="default",
                        delay_show=300),
            dcc.Loading(html.Div(id="employer-pmpm-box", style={"minHeight": "320px"}, className="mb-3"),
                        type="default", delay_show=300),
            *[grids.paged_grid(get_report(name), grid_id=grid_id, href=ui.export_href(name, **href),
                               deidentified=scope.deidentified) for name, grid_id in GRIDS.items()],
        ], id="employer-content"),
    ])


page(__name__, path="/employer", title="Employers", audience="employer", layout=layout, order=20)


def _value(frame, column, fmt):
    if frame.empty:
        return "—"
    values = frame[column]
    if values.isna().any():
        return ui.SUPPRESSED
    return fmt(values.sum())


def _run(name: str, scope, start, end, employer):
    return run_report(name, scope=scope, engine=warehouse(), start=start, end=end, employer=employer,
                      cache=report_cache())


@callback(Output("employer-cards", "children"), *FILTERS, audience="employer")
def cards(scope, start, end, employer):
    s = _run("employer-summary", scope, start, end, employer).frame
    if s.empty:
        return dbc.Alert("No enrollment for this selection.", color="info")
    hcc = _run("high-cost-claimants", scope, start, end, employer).frame
    s = s[s["employer_id"] == "all"] if len(s) > 1 else s
    return dbc.Row([
        dbc.Col(ui.kpi_card("Members", _value(s, "members", ui.fmt_number), note=f"enrolled in {end}"), md=2),
        dbc.Col(ui.kpi_card("Subscribers", _value(s, "subscribers", ui.fmt_number), note=f"enrolled in {end}"), md=2),
        dbc.Col(ui.kpi_card("Member months", _value(s, "member_months", ui.fmt_number), note="in the period"), md=2),
        dbc.Col(ui.kpi_card("PMPM paid", _value(s, "pmpm_paid", ui.fmt_money), note="paid ÷ member months"), md=2),
        dbc.Col(ui.kpi_card("PEPM paid", _value(s, "pepm_paid", ui.fmt_money), note="paid ÷ subscriber months"),
                md=2),
        # employer users: always the calendar year of the period's last month (the report says which)
        dbc.Col(ui.kpi_card("Members over $50k", _value(s, "high_cost_claimants", ui.fmt_number),
                            note=f"paid in {hcc['period'].iloc[0]}" if len(hcc) else "paid in the period"),
                md=2),
    ], className="g-3 mb-4")


@callback(Output("employer-pmpm-box", "children"), *FILTERS, audience="employer")
def pmpm_chart(scope, start, end, employer):
    sp = _run("spend", scope, start, end, employer).frame
    if sp.empty:
        return ui.graph(ui.empty_figure("No spend in this period"), "employer-pmpm")
    fig = go.Figure()
    for category, rows in sp.groupby("service_category", sort=False):
        fig.add_bar(x=rows["month"], y=rows["pmpm_paid"], name=category)
    fig.update_layout(barmode="stack")
    ui.style_figure(fig, "PMPM paid by service category" + (" (suppressed cells left out)"
                                                            if sp["pmpm_paid"].isna().any() else ""))
    return ui.graph(fig, "employer-pmpm")


for _name, _grid in GRIDS.items():
    grids.register_grid(__name__, _name, grid_id=_grid, prefix="employer", audience="employer", entity="employer",
                        href=ui.export_href)
grids.refresh_grids_on("employer", list(GRIDS.values()), *FILTERS)
