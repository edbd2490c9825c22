"""Employer overview: enrollment, PMPM by service category, utilization and high-cost claimants, as
de-identified aggregates (small cells suppressed for employer users)."""

from __future__ import annotations

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import Input, Output, dcc, html

from dashboard.reports import run_report
from dashboard.ui import components as ui
from dashboard.ui.context import page_context, report_cache, warehouse
from dashboard.ui.registry import callback, page


def layout(scope, **_):
    ctx = page_context(scope)
    return html.Div([
        html.H3("Employer plan overview", className="mb-1"),
        html.Div("De-identified aggregates. Cells with counts from 1 to 10 are suppressed, with any cell "
                 "or total that would reveal them; high-cost claimants count calendar years."
                 if scope.deidentified else
                 "Full view (admin): small cells are not suppressed here.", className="text-muted small mb-3"),
        ui.filter_bar("employer", months=ctx.months, start=ctx.start, end=ctx.end, entity_label="Employer",
                      entity_options=ctx.employers,
                      entity_value=ctx.employers[0]["value"] if len(ctx.employers) == 1 else None),
        dcc.Loading(html.Div(id="employer-content"), type="default", delay_show=300),
    ])


page(__name__, path="/employer", title="Employers", audience="employer", layout=layout, order=20)


def _value(frame, column, fmt):
    if frame.empty:
        return "—"
    values = frame[column]
    if values.isna().any():
        return ui.SUPPRESSED
    return fmt(values.sum())


@callback(Output("employer-content", "children"), Input("employer-from", "value"), Input("employer-to", "value"),
          Input("employer-entity", "value"), audience="employer")
def render(scope, start, end, employer):
    args = {"scope": scope, "engine": warehouse(), "start": start, "end": end, "employer": employer,
            "cache": report_cache()}
    summary = run_report("employer-summary", **args)
    spend = run_report("spend", **args)
    enrollment = run_report("enrollment", **args)
    utilization = run_report("utilization", **args)
    hcc = run_report("high-cost-claimants", **args)
    outside = run_report("spend-outside-enrollment", **args)
    s = summary.frame
    if s.empty:
        return dbc.Alert("No enrollment for this selection.", color="info")
    s = s[s["employer_id"] == "all"] if len(s) > 1 else s
    cards = dbc.Row([
        dbc.Col(ui.kpi_card("Members", _value(s, "members", ui.fmt_number), note=f"enrolled in {end}"), md=2),
        dbc.Col(ui.kpi_card("Subscribers", _value(s, "subscribers", ui.fmt_number), note=f"enrolled in {end}"), md=2),
        dbc.Col(ui.kpi_card("Member months", _value(s, "member_months", ui.fmt_number), note="in the period"), md=2),
        dbc.Col(ui.kpi_card("PMPM paid", _value(s, "pmpm_paid", ui.fmt_money), note="paid ÷ member months"), md=2),
        dbc.Col(ui.kpi_card("PEPM paid", _value(s, "pepm_paid", ui.fmt_money), note="paid ÷ subscriber months"),
                md=2),
        dbc.Col(ui.kpi_card("Members over $50k", _value(s, "high_cost_claimants", ui.fmt_number),
                            note=f"paid in {hcc.frame['period'].iloc[0]}" if len(hcc.frame) else "paid in the period"),
                md=2),
    ], className="g-3 mb-4")
    sp = spend.frame
    fig = go.Figure()
    for category, rows in sp.groupby("service_category", sort=False):
        fig.add_bar(x=rows["month"], y=rows["pmpm_paid"], name=category)
    fig.update_layout(barmode="stack")
    ui.style_figure(fig, "PMPM paid by service category" + (" (suppressed cells left out)"
                                                            if sp["pmpm_paid"].isna().any() else ""))
    href = {"start": start, "end": end, "employer": employer}
    grids = [(summary, "employer-summary"), (enrollment, "enrollment"), (spend, "spend"),
             (utilization, "utilization"), (hcc, "high-cost-claimants"), (outside, "spend-outside-enrollment")]
    return html.Div([
        cards,
        dbc.Row([dbc.Col(ui.graph(fig, "employer-pmpm"), md=12)], className="mb-3"),
        *[ui.report_grid(result.report, result.frame, grid_id=f"grid-{name}", href=ui.export_href(name, **href))
          for result, name in grids],
    ])
