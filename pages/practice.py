"""Practice overview: revenue-cycle KPIs, A/R, denials and remittances for the practices in scope."""

from __future__ import annotations

import dash_bootstrap_components as dbc
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, dcc, html

from dashboard.metrics.definitions import AGING_BUCKETS
from dashboard.reports import run_report
from dashboard.ui import components as ui
from dashboard.ui.context import page_context, report_cache, warehouse
from dashboard.ui.registry import callback, page


def layout(scope, **_):
    ctx = page_context(scope)
    return html.Div([
        html.H3("Practice revenue cycle", className="mb-3"),
        ui.filter_bar("practice", months=ctx.months, start=ctx.start, end=ctx.end, entity_label="Practice",
                      entity_options=ctx.practices,
                      entity_value=ctx.practices[0]["value"] if len(ctx.practices) == 1 else None),
        dcc.Loading(html.Div(id="practice-content"), type="default", delay_show=300),
    ])


page(__name__, path="/practice", title="Practices", audience="practice", layout=layout, order=10)


def _status(value: float, good: float, warn: float, *, higher_is_better: bool = True) -> str:
    if pd.isna(value):
        return ""
    if not higher_is_better:
        value, good, warn = -value, -good, -warn
    return "good" if value >= good else ("warn" if value >= warn else "bad")


@callback(Output("practice-content", "children"), Input("practice-from", "value"), Input("practice-to", "value"),
          Input("practice-entity", "value"), audience="practice")
def render(scope, start, end, practice):
    engine = warehouse()
    args = {"scope": scope, "engine": engine, "start": start, "end": end, "practice": practice,
            "cache": report_cache()}
    kpis = run_report("practice-kpis", **args)
    aging = run_report("ar-aging", **args)
    denials = run_report("denials", **args)
    remits = run_report("remittances", **args)
    mix = run_report("payer-mix", **args).frame
    k = kpis.frame
    if k.empty:
        return dbc.Alert("No claims for this selection.", color="info")
    summary = run_report("practice-summary", **args).frame
    s = summary[summary["practice_id"] == "all"].iloc[0] if len(summary) > 1 else summary.iloc[0]
    ar, days, over90 = s["ar_balance"], s["days_in_ar"], s["ar_over_90_pct"]
    net, gross = s["net_collection_rate"], s["gross_collection_rate"]
    clean, denial, fpr = s["clean_claim_rate"], s["denial_rate"], s["first_pass_resolution_rate"]
    latest_month = k["month"].max()
    cards = dbc.Row([
        dbc.Col(ui.kpi_card("A/R balance", ui.fmt_money(ar), note=f"at end of {latest_month}"), md=3),
        dbc.Col(ui.kpi_card("Days in A/R", ui.fmt_number(days, 1), note="benchmark < 50; 30–40 preferred",
                            status=_status(days, 40, 50, higher_is_better=False)), md=3),
        dbc.Col(ui.kpi_card("A/R over 90 days", ui.fmt_rate(over90), note="benchmark 10–20%",
                            status=_status(over90, 0.15, 0.25, higher_is_better=False)), md=3),
        dbc.Col(ui.kpi_card("Net collection rate", ui.fmt_rate(net), note="benchmark ≥ 95%",
                            status=_status(net, 0.95, 0.90)), md=3),
        dbc.Col(ui.kpi_card("Clean-claim rate", ui.fmt_rate(clean), note="benchmark ≥ 95%",
                            status=_status(clean, 0.95, 0.90)), md=3),
        dbc.Col(ui.kpi_card("Denial rate", ui.fmt_rate(denial), note="initial denials; < 5% good, 5–10% typical",
                            status=_status(denial, 0.05, 0.10, higher_is_better=False)), md=3),
        dbc.Col(ui.kpi_card("First-pass resolution", ui.fmt_rate(fpr), note="benchmark ≥ 90%",
                            status=_status(fpr, 0.90, 0.85)), md=3),
        dbc.Col(ui.kpi_card("Gross collection rate", ui.fmt_rate(gross), note="depends on the fee schedule"), md=3),
    ], className="g-3 mb-4")

    monthly = k.groupby("month", as_index=False)[["ar_balance", "charges", "payments"]].sum()
    trend = go.Figure([go.Bar(x=monthly["month"], y=monthly["charges"], name="Charges"),
                       go.Bar(x=monthly["month"], y=monthly["payments"], name="Payments"),
                       go.Scatter(x=monthly["month"], y=monthly["ar_balance"], name="A/R at month end",
                                  mode="lines+markers")])
    ui.style_figure(trend, "Charges, payments and A/R")
    a = aging.frame
    aging_fig = go.Figure()
    for payer, rows in a.groupby("payer"):
        aging_fig.add_bar(x=rows["bucket"], y=rows["balance"], name=payer)
    aging_fig.update_layout(barmode="stack")
    ui.style_figure(aging_fig, f"A/R aging at end of {kpis.filters.end:%Y-%m} (from date of service)")
    aging_fig.update_xaxes(categoryorder="array", categoryarray=[name for name, _, _ in AGING_BUCKETS])
    d = denials.frame
    if d.empty:
        denial_fig = ui.empty_figure("No denials in this period")
    else:
        by_code = (d.assign(code=d["group_code"] + "-" + d["carc"]).groupby("code", as_index=False)["amount"].sum()
                   .sort_values("amount", ascending=True).tail(10))
        denial_fig = ui.style_figure(go.Figure(go.Bar(x=by_code["amount"], y=by_code["code"], orientation="h")),
                                     "Denied dollars by CAS group and reason code", horizontal=True)
    if mix.empty:
        mix_fig = ui.empty_figure("No charges in this period")
    else:
        by_payer = mix.groupby("payer", as_index=False)["charges"].sum().sort_values("charges").tail(10)
        mix_fig = ui.style_figure(go.Figure(go.Bar(x=by_payer["charges"], y=by_payer["payer"], orientation="h")),
                                  "Charges by payer (payer mix)", horizontal=True)
    href = {"start": start, "end": end, "practice": practice}
    return html.Div([
        cards,
        dbc.Row([dbc.Col(ui.graph(trend, "practice-trend"), md=6),
                 dbc.Col(ui.graph(aging_fig, "practice-aging"), md=6)]),
        dbc.Row([dbc.Col(ui.graph(denial_fig, "practice-denials"), md=6),
                 dbc.Col(ui.graph(mix_fig, "practice-payer-mix"), md=6)], className="mb-3"),
        ui.report_grid(kpis.report, kpis.frame, grid_id="grid-practice-kpis",
                       href=ui.export_href("practice-kpis", **href)),
        ui.report_grid(aging.report, aging.frame, grid_id="grid-ar-aging", href=ui.export_href("ar-aging", **href)),
        ui.report_grid(denials.report, denials.frame, grid_id="grid-denials", href=ui.export_href("denials", **href)),
        ui.report_grid(remits.report, remits.frame, grid_id="grid-remittances",
                       href=ui.export_href("remittances", **href)),
    ])
