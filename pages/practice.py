"""Practice overview: revenue-cycle KPIs, A/R, denials and remittances for the practices in scope.

The page paints in pieces: the layout carries the filter bar and empty slots; the KPI cards, each chart and
each grid then fill themselves through their own callbacks, and grids fetch one block of rows at a time
(dashboard.ui.grids), so nothing waits for the slowest report or ships every row.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, dcc, html

from dashboard.metrics.definitions import AGING_BUCKETS
from dashboard.metrics.filters import add_months
from dashboard.metrics.kpis import PRACTICE_KPIS
from dashboard.metrics.practice import LIFECYCLE_STAGES
from dashboard.reports import get_report, run_report
from dashboard.ui import components as ui
from dashboard.ui import grids
from dashboard.ui.context import page_context, report_cache, url_filters, warehouse
from dashboard.ui.registry import callback, page

RISK_PANEL_PRACTICES = 3  # the risk panel trains one model a practice: for more, it asks for one
FILTERS = (Input("practice-from", "value"), Input("practice-to", "value"), Input("practice-entity", "value"))
CHARTS = ("practice-trend", "practice-aging", "practice-denials", "practice-payer-mix", "practice-lifecycle")
GRIDS = {"practice-kpis": "grid-practice-kpis", "ar-aging": "grid-ar-aging", "denials": "grid-denials",
         "claim-lifecycle": "grid-claim-lifecycle", "remittances": "grid-remittances"}


def _slot(slot_id: str, height: int) -> dcc.Loading:
    # a fixed minimum height keeps the page from jumping as the pieces arrive
    return dcc.Loading(html.Div(id=slot_id, style={"minHeight": f"{height}px"}), type="default", delay_show=300)


def layout(scope, **query):
    ctx = page_context(scope)
    # a bookmarked /practice?from=YYYY-MM&to=YYYY-MM&practice=ID, else the defaults
    chosen = url_filters(ctx, query, kind="practice",
                         default_entity=ctx.practices[0]["value"] if len(ctx.practices) == 1 else None)
    href = {"start": chosen.start, "end": chosen.end, "practice": chosen.entity}
    return html.Div([
        html.H3("Practice revenue cycle", className="mb-3"),
        # a chart's click opens its claims from the browser (ui.drill_on_click); these hold what it opened
        *[dcc.Store(id=f"{chart}-drill") for chart in DRILL_CHARTS],
        ui.filter_bar("practice", months=ctx.months, start=chosen.start, end=chosen.end, entity_label="Practice",
                      entity_options=ctx.practices, entity_value=chosen.entity),
        grids.refresh_store("practice"), ui.url_store("practice"),
        html.Div([
            _slot("practice-cards", 180),
            _slot("practice-risk", 60),
            dbc.Row([dbc.Col(_slot(f"{CHARTS[0]}-box", 320), md=6), dbc.Col(_slot(f"{CHARTS[1]}-box", 320), md=6)]),
            dbc.Row([dbc.Col(_slot(f"{CHARTS[2]}-box", 320), md=6), dbc.Col(_slot(f"{CHARTS[3]}-box", 320), md=6)]),
            dbc.Row([dbc.Col(_slot(f"{CHARTS[4]}-box", 320), md=6)], className="mb-3"),
            *[grids.paged_grid(get_report(name), grid_id=grid_id, href=ui.export_href(name, **href),
                               deidentified=scope.deidentified, names=ctx.names) for name, grid_id in GRIDS.items()],
        ], id="practice-content"),
    ])


page(__name__, path="/practice", title="Practices", audience="practice", layout=layout, order=10)
ui.keep_filters_in_url("practice", entity="practice")
# each chart element opens the claims behind it, with the page's filters
DRILL_CHARTS = ("practice-aging", "practice-denials", "practice-trend")
ui.drill_on_click("practice-aging", "practice", "open-claims", {"payer": "p.customdata[0]", "bucket": "p.x"})
ui.drill_on_click("practice-denials", "practice", "denied-claims",
                  {"group_code": "p.customdata[0]", "carc": "p.customdata[1]"})
ui.drill_on_click("practice-trend", "practice", "open-claims", {}, month_from_x=True)


def _summary_row(frame: pd.DataFrame) -> pd.Series | None:
    """The selection's row of a practice-summary frame: its 'all' row, or its only row."""
    if frame.empty:
        return None
    return frame[frame["practice_id"] == "all"].iloc[0] if len(frame) > 1 else frame.iloc[0]


def _cards(summary_row: pd.Series, filters, *, previous: pd.Series | None, year_ago: pd.Series | None,
           monthly: pd.DataFrame | None) -> dbc.Row:
    """The KPI cards from the practice-summary row of the selection: the A/R balance, then every card KPI of the
    registry with its benchmark band, formula and source, its change against the previous period and the same
    period a year earlier, its monthly sparkline (one practice selected), and a link to the claims behind it
    where the registry names them."""
    start, end = f"{filters.start:%Y-%m}", f"{filters.end:%Y-%m}"
    practice = filters.practice_ids[0] if filters.practice_ids and len(filters.practice_ids) == 1 else None
    twelve = filters.months == 12

    def claims(report: str, column_filters=()) -> str:
        return ui.drill_href(report, start=start, end=end, practice=practice, **dict(column_filters))

    def trend(name: str, unit: str, higher_is_better: bool | None, label: str) -> list:
        parts = [ui.change(summary_row.get(name), None if row is None else row.get(name), unit=unit,
                           higher_is_better=higher_is_better, against=against)
                 for row, against in ((previous, "previous 12 months" if year_ago is None and twelve
                                       else "previous period"), (year_ago, "a year earlier"))]
        if monthly is not None and name in monthly.columns:
            values = [None if pd.isna(v) else float(v) for v in monthly[name]]
            shown = ", ".join(f"{m} {'—' if v is None else round(v, 4)}" for m, v in zip(monthly["month"], values,
                                                                                    strict=True))
            parts.append(ui.sparkline(values, label=f"{label} by month: {shown}"))
        return [p for p in parts if p is not None]

    balance = ui.kpi_card("A/R balance", ui.fmt_money(summary_row["ar_balance"]), note=f"at end of {end}")
    balance.children.children.insert(2, html.Div(trend("ar_balance", "money", False, "A/R balance"),
                                                 className="small"))
    balance.children.children.append(ui.claims_link(claims("open-claims"), "A/R balance"))
    tiles = [balance]
    tiles += [ui.kpi_tile(kpi, summary_row.get(kpi.name),
                          claims_href=claims(kpi.claims, kpi.claims_filter) if kpi.claims else None,
                          trend=trend(kpi.name, kpi.unit, kpi.higher_is_better, kpi.label))
              for kpi in PRACTICE_KPIS if kpi.card]
    return dbc.Row([dbc.Col(tile, md=3) for tile in tiles], className="g-3 mb-4")


def _run(name: str, scope, start, end, practice):
    return run_report(name, scope=scope, engine=warehouse(), start=start, end=end, practice=practice,
                      cache=report_cache())


def _shifted(filters, months: int) -> tuple[str, str]:
    return f"{add_months(filters.start, months):%Y-%m}", f"{add_months(filters.end, months):%Y-%m}"


@callback(Output("practice-cards", "children"), *FILTERS, audience="practice")
def cards(scope, start, end, practice):
    summary = _run("practice-summary", scope, start, end, practice)
    row = _summary_row(summary.frame)
    if row is None:
        return dbc.Alert("No claims for this selection.", color="info")
    f = summary.filters
    length = f.months
    # the same practices over the period just before, and over the same months a year earlier
    previous = _summary_row(_run("practice-summary", scope, *_shifted(f, -length), practice).frame)
    # a 12-month period's previous period is the year before: said once
    year_ago = None if length == 12 else _summary_row(_run("practice-summary", scope, *_shifted(f, -12),
                                                           practice).frame)
    monthly = None
    if f.practice_ids is not None and len(f.practice_ids) == 1:  # one practice: its months are the selection's
        monthly = _run("practice-kpis", scope, start, end, practice).frame.sort_values("month")
    return _cards(row, f, previous=previous, year_ago=year_ago, monthly=monthly)


@callback(Output("practice-risk", "children"), *FILTERS, audience="practice")
def risk_panel(scope, start, end, practice):
    """The unanswered claims most at risk of a denial (the denial-risk report), with why, before the payer says.
    Each practice has its own model, trained on first request after a load: for a selection of many practices
    the panel asks for one (the report itself scores them all, on the reports page)."""
    ids = [o["value"] for o in page_context(scope).practices] if not practice else [practice]
    if len(ids) > RISK_PANEL_PRACTICES:
        return html.Div("Denial risk: choose a practice to see its unanswered claims most at risk.",
                        className="small text-muted mb-3", id="practice-risk-summary")
    risk = _run("denial-risk", scope, start, end, practice)
    frame = risk.frame
    href = ui.drill_href("denial-risk", start=start, end=end, practice=practice)
    if frame.empty:
        return html.Div("Denial risk: no unanswered claim, or too little history to learn from.",
                        className="small text-muted mb-3", id="practice-risk-summary")
    high = frame[frame["risk_band"] == "high"]
    top = frame.head(5)
    rows = [html.Tr([html.Td(html.A(r.claim_id, href=ui.claim_href(r.claim_id, r.practice_id))),
                     html.Td(f"{r.risk:.0%}", className="text-end"), html.Td(ui.fmt_money(r.balance),
                                                                             className="text-end"),
                     html.Td(r.reasons, className="small")]) for r in top.itertuples(index=False)]
    return dbc.Card(dbc.CardBody([
        html.H5("Denial risk of unanswered claims", className="mb-1"),
        html.P([f"{len(frame):,} claims sent and not yet answered; {len(high):,} at twice the practice's denial "
                f"rate or more ({ui.fmt_money(float(high['balance'].sum()))}). ",
                html.A("All of them →", href=href)], className="small text-muted", id="practice-risk-summary"),
        dbc.Table([html.Thead(html.Tr([html.Th(h, scope="col") for h in ("claim", "risk", "owed", "why")])),
                   html.Tbody(rows)], size="sm", hover=True, responsive=True, className="mb-0"),
    ]), className="mb-4 shadow-sm")


@callback(Output("practice-trend-box", "children"), *FILTERS, audience="practice")
def trend_chart(scope, start, end, practice):
    k = _run("practice-kpis", scope, start, end, practice).frame
    monthly = k.groupby("month", as_index=False)[["ar_balance", "charges", "payments"]].sum()
    fig = go.Figure([go.Bar(x=monthly["month"], y=monthly["charges"], name="Charges"),
                     go.Bar(x=monthly["month"], y=monthly["payments"], name="Payments"),
                     go.Scatter(x=monthly["month"], y=monthly["ar_balance"], name="A/R at month end",
                                mode="lines+markers")])
    return ui.graph(ui.style_figure(fig, "Charges, payments and A/R"), "practice-trend",
                    hint="Click a month to see the claims open at its end.")


@callback(Output("practice-aging-box", "children"), *FILTERS, audience="practice")
def aging_chart(scope, start, end, practice):
    aging = _run("ar-aging", scope, start, end, practice)
    names = page_context(scope).names or {}
    fig = go.Figure()
    for payer, rows in aging.frame.groupby("payer"):  # the payer's name shows; its id drills down
        fig.add_bar(x=rows["bucket"], y=rows["balance"], name=names.get(payer, payer),
                    customdata=[[payer]] * len(rows))
    fig.update_layout(barmode="stack")
    ui.style_figure(fig, f"A/R aging at end of {aging.filters.end:%Y-%m} (from date of service)")
    fig.update_xaxes(categoryorder="array", categoryarray=[name for name, _, _ in AGING_BUCKETS])
    return ui.graph(fig, "practice-aging", hint="Click a bar to see that payer's open claims in that bucket.")


@callback(Output("practice-denials-box", "children"), *FILTERS, audience="practice")
def denials_chart(scope, start, end, practice):
    d = _run("denials", scope, start, end, practice).frame
    if d.empty:
        return ui.graph(ui.empty_figure("No denials in this period"), "practice-denials")
    # "CO-16 · missing or invalid claim information": the code the 835 gives and the reason it stands for
    by_code = (d.assign(code=d["group_code"] + "-" + d["carc"] + " · " + d["reason"])
               .groupby(["code", "group_code", "carc"], as_index=False)["amount"].sum()
               .sort_values("amount", ascending=True).tail(10))
    fig = go.Figure(go.Bar(x=by_code["amount"], y=by_code["code"], orientation="h",
                           customdata=by_code[["group_code", "carc"]].values.tolist()))
    return ui.graph(ui.style_figure(fig, "Denied dollars by CAS group and reason code", horizontal=True),
                    "practice-denials", hint="Click a bar to see the denials with that code.")


@callback(Output("practice-payer-mix-box", "children"), *FILTERS, audience="practice")
def payer_mix_chart(scope, start, end, practice):
    mix = _run("payer-mix", scope, start, end, practice).frame
    if mix.empty:
        return ui.graph(ui.empty_figure("No charges in this period"), "practice-payer-mix")
    by_payer = mix.groupby("payer", as_index=False)["charges"].sum().sort_values("charges").tail(10)
    names = page_context(scope).names or {}
    fig = go.Figure(go.Bar(x=by_payer["charges"], y=[names.get(p, p) for p in by_payer["payer"]], orientation="h",
                           hovertext=[f"payer id {p}" for p in by_payer["payer"]]))
    return ui.graph(ui.style_figure(fig, "Charges by payer (payer mix)", horizontal=True), "practice-payer-mix")


@callback(Output("practice-lifecycle-box", "children"), *FILTERS, audience="practice")
def lifecycle_chart(scope, start, end, practice):
    life = _run("claim-lifecycle", scope, start, end, practice).frame
    if life.empty:
        return ui.graph(ui.empty_figure("No claims sent in this period"), "practice-lifecycle")
    counts = life[list(LIFECYCLE_STAGES)].sum()
    fig = go.Figure(go.Funnel(y=list(LIFECYCLE_STAGES), x=counts.tolist(), name="Claims",
                              textinfo="value+percent initial"))
    ui.style_figure(fig, "Claims sent in the period, as they stand now", horizontal=True)
    fig.update_xaxes(tickprefix="", tickformat=",")
    # the stages' median days over every claim of the selection are in the claim-lifecycle grid, by payer
    return ui.graph(fig, "practice-lifecycle")


for _name, _grid in GRIDS.items():
    grids.register_grid(__name__, _name, grid_id=_grid, prefix="practice", audience="practice", entity="practice",
                        href=ui.export_href)
grids.refresh_grids_on("practice", list(GRIDS.values()), *FILTERS)
