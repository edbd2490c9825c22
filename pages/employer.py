"""Employer overview: enrollment, PMPM by service category, utilization and high-cost claimants, as
de-identified aggregates (small cells suppressed for employer users).

Cards, the chart and each grid fill themselves through their own callbacks; grids fetch one block of
(suppressed, for employer users) rows at a time (dashboard.ui.grids).
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, dcc, html

from dashboard.errors import BadInput
from dashboard.metrics import employer_trend as et
from dashboard.metrics.kpis import KPIS
from dashboard.reports import get_report, run_report
from dashboard.ui import components as ui
from dashboard.ui import grids
from dashboard.ui.context import page_context, report_cache, url_filters, warehouse
from dashboard.ui.registry import callback, page

FILTERS = (Input("employer-from", "value"), Input("employer-to", "value"), Input("employer-entity", "value"))
GRIDS = {name: f"grid-{name}" for name in ("employer-summary", "claims-completion", "enrollment", "spend",
                                           "network", "utilization", "high-cost-claimants",
                                           "spend-outside-enrollment")}


def layout(scope, **query):
    ctx = page_context(scope, audience="employer")
    # a bookmarked /employer?from=YYYY-MM&to=YYYY-MM&employer=ID, else the defaults
    chosen = url_filters(ctx, query, kind="employer",
                         default_entity=ctx.employers[0]["value"] if len(ctx.employers) == 1 else None)
    entity = chosen.entity
    href = {"start": chosen.start, "end": chosen.end, "employer": entity}
    return html.Div([
        html.H3("Employer plan overview", className="mb-1"),
        html.Div("De-identified aggregates. Cells with counts from 1 to 10 are suppressed, with any cell "
                 "or total that would reveal them; high-cost claimants count calendar years."
                 if scope.deidentified else
                 "Full view (admin): small cells are not suppressed here.", className="text-muted small mb-3"),
        ui.filter_bar("employer", months=ctx.months, start=chosen.start, end=chosen.end, entity_label="Employer",
                      entity_options=ctx.employers, entity_value=entity),
        grids.refresh_store("employer"), ui.url_store("employer"),
        html.Div([
            dcc.Loading(html.Div(id="employer-cards", style={"minHeight": "120px"}), type="default",
                        delay_show=300),
            dcc.Loading(html.Div(id="employer-trend-box", style={"minHeight": "320px"}, className="mb-3"),
                        type="default", delay_show=300),
            html.Div([
                html.H5("What drives cost", className="mt-2 mb-1"),
                dbc.RadioItems(id="employer-driver-dimension", inline=True, value=_drivers(query),
                               options=[{"label": label, "value": value} for value, label in DRIVER_DIMENSIONS.items()],
                               className="mb-2 small"),
                dcc.Loading(html.Div(id="employer-drivers-box", style={"minHeight": "320px"}), type="default",
                            delay_show=300),
            ], className="mb-3"),
            dcc.Loading(html.Div(id="employer-pmpm-box", style={"minHeight": "320px"}, className="mb-3"),
                        type="default", delay_show=300),
            dcc.Loading(html.Div(id="employer-utilization-box", style={"minHeight": "320px"}, className="mb-3"),
                        type="default", delay_show=300),
            dcc.Loading(html.Div(id="employer-enrollment-box", style={"minHeight": "320px"}, className="mb-3"),
                        type="default", delay_show=300),
            *[grids.paged_grid(get_report(name), grid_id=grid_id, href=ui.export_href(name, **href),
                               deidentified=scope.deidentified) for name, grid_id in GRIDS.items()],
        ], id="employer-content"),
    ])


page(__name__, path="/employer", title="Employers", audience="employer", layout=layout, order=20)
ui.keep_filters_in_url("employer", entity="employer", extra={"drivers": "employer-driver-dimension"})


def _drivers(query: dict) -> str:
    """The cost-driver grouping a bookmarked URL names (?drivers=place_of_service), else condition groups."""
    value = query.get("drivers") or "condition_group"
    if value not in DRIVER_DIMENSIONS:
        raise BadInput(f"drivers must be one of {', '.join(DRIVER_DIMENSIONS)}, got {value!r}")
    return value


def _value(frame, column, fmt):
    if frame.empty:
        return "—"
    values = frame[column]
    if values.isna().any():  # blanked by suppression, or nothing known (no claims data for the period)
        suppressed = "suppressed" in frame.columns and bool(frame["suppressed"].any())
        return ui.SUPPRESSED if suppressed else ui.NO_DATA
    return fmt(values.sum())


def _runout_note(months) -> str:
    """'2 months in run-out (est. 96%, 43% paid)' for the period's cards; '' when every month is complete."""
    open_ = [(m, share) for m, state, share in months if state == "run-out"]
    missing = [m for m, state, _ in months if state == ui.NO_DATA]
    parts = []
    if open_:
        shares = ", ".join(f"{share:.0%}" for _, share in open_)
        parts.append(f"{len(open_)} month{'s' if len(open_) > 1 else ''} in run-out (est. {shares} paid)")
    if missing:
        parts.append(f"{len(missing)} without claims data")
    return "; ".join(parts)


def _run(name: str, scope, start, end, employer):
    return run_report(name, scope=scope, engine=warehouse(), start=start, end=end, employer=employer,
                      cache=report_cache())


@callback(Output("employer-cards", "children"), *FILTERS, audience="employer")
def cards(scope, start, end, employer):
    s = _run("employer-summary", scope, start, end, employer).frame
    if s.empty:
        return dbc.Alert("No enrollment for this selection.", color="info")
    hcc = _run("high-cost-claimants", scope, start, end, employer).frame
    runout = _runout_note(ui.runout_months(_run("claims-completion", scope, start, end, employer).frame))
    s = s[s["employer_id"] == "all"] if len(s) > 1 else s
    spend_note = runout or "all months complete"
    return dbc.Row([
        dbc.Col(ui.kpi_card("Members", _value(s, "members", ui.fmt_number), note=f"enrolled in {end}"), md=3),
        dbc.Col(ui.kpi_card("Subscribers", _value(s, "subscribers", ui.fmt_number), note=f"enrolled in {end}"), md=3),
        dbc.Col(ui.kpi_card("Member months", _value(s, "member_months", ui.fmt_number), note="in the period"), md=3),
        dbc.Col(ui.kpi_card("PMPM paid", _value(s, "pmpm_paid", ui.fmt_money),
                            note=f"paid ÷ member months; {spend_note}", status="warn" if runout else None), md=3),
        dbc.Col(ui.kpi_card("PEPM paid", _value(s, "pepm_paid", ui.fmt_money),
                            note=f"paid ÷ subscriber months; {spend_note}", status="warn" if runout else None),
                md=3),
        # employer users: always the calendar year of the period's last month (the report says which)
        dbc.Col(ui.kpi_card("Members over $50k", _value(s, "high_cost_claimants", ui.fmt_number),
                            note=f"paid in {hcc['period'].iloc[0]}" if len(hcc) else "paid in the period"),
                md=3),
        dbc.Col(ui.kpi_card("In network", _value(s, "in_network_share", ui.fmt_rate), note="share of paid"), md=3),
        dbc.Col(ui.kpi_card("Average length of stay", _value(s, "average_length_of_stay",
                                                             lambda v: f"{v:,.1f} days"),
                            note=f"admissions: {_value(s, 'inpatient_admissions', ui.fmt_number)}"), md=3),
    ], className="g-3 mb-4")


def _published_sum(values: pd.Series) -> float:
    """A sum over employers that is known only when every part is: one suppressed (blank) part makes it
    suppressed too, or the hidden cell would be the difference of two published figures."""
    return float(values.sum()) if values.notna().all() else float("nan")


def _with_claims_data(frame: pd.DataFrame, completion: pd.DataFrame) -> pd.DataFrame:
    """``frame``'s employer-months that have claims data: an employer-month without any ("no data" in
    claims-completion) is in neither the numerator nor the denominator of a rate over the selection, as the
    cards' period rates leave it out (its member months are enrolment without claims, not a month of $0)."""
    missing = completion.loc[completion["status"] == ui.NO_DATA, ["employer_id", "month"]]
    if missing.empty:
        return frame
    keys = set(zip(missing["employer_id"], missing["month"], strict=True))
    keep = [(e, m) not in keys for e, m in zip(frame["employer_id"], frame["month"], strict=True)]
    return frame[keep]


def pmpm_by_category(spend: pd.DataFrame, completion: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """PMPM by month and service category over the selection: Σ paid ÷ Σ member months (the member months of
    every employer-month with claims data, from claims-completion), never a stack of each employer's ratios; and
    the (month, category) cells that are suppressed (a suppressed part, or suppressed member months)."""
    member_months = _with_claims_data(completion, completion).groupby("month")["member_months"].agg(_published_sum)
    paid = spend.groupby(["month", "service_category"], sort=False)["paid"].agg(_published_sum).reset_index()
    paid["member_months"] = paid["month"].map(member_months)
    paid["pmpm_paid"] = KPIS["pmpm_paid"].compute(paid)
    hidden = paid[paid["pmpm_paid"].isna() & (paid["paid"].isna() | paid["member_months"].isna())]
    return paid, list(zip(hidden["month"], hidden["service_category"], strict=True))


@callback(Output("employer-pmpm-box", "children"), *FILTERS, audience="employer")
def pmpm_chart(scope, start, end, employer):
    sp = _run("spend", scope, start, end, employer).frame
    if sp.empty:
        return ui.graph(ui.empty_figure("No spend in this period"), "employer-pmpm")
    completion = _run("claims-completion", scope, start, end, employer).frame
    cells, suppressed = pmpm_by_category(sp, completion)
    fig = go.Figure()
    for category, rows in cells.groupby("service_category", sort=False):
        # plain lists: a suppressed cell is a null (a gap), never a number
        fig.add_bar(x=rows["month"].tolist(), y=[None if pd.isna(v) else float(v) for v in rows["pmpm_paid"]],
                    name=category)
    ui.mark_suppressed(fig, suppressed)
    fig.update_layout(barmode="stack")
    summary = _run("employer-summary", scope, start, end, employer).frame
    total = summary[summary["employer_id"] == "all"] if len(summary) > 1 else summary
    period = _value(total, "pmpm_paid", ui.fmt_money)
    title = f"PMPM paid by service category (Σ paid ÷ Σ member months; period {period})"
    ui.style_figure(fig, title + (" · ✕ suppressed cells" if suppressed else ""))
    months = ui.runout_months(completion)
    if months:
        ui.mark_runout(fig, *zip(*months, strict=True))
    return ui.graph(fig, "employer-pmpm")


TREND_ROWS = (  # (measure, category, label, unit) of the comparison table, in this order
    ("pmpm_paid", "total", "PMPM paid", "money"), ("pmpm_paid", "medical", "PMPM medical", "money"),
    ("pmpm_paid", "pharmacy", "PMPM pharmacy", "money"), ("pepm_paid", "total", "PEPM paid", "money"),
    ("per_1000", "er_visits", "ER visits per 1,000", "number"),
    ("per_1000", "inpatient_admissions", "Admissions per 1,000", "number"),
    ("per_1000", "office_visits", "Office visits per 1,000", "number"),
    ("per_1000", "prescriptions", "Prescriptions per 1,000", "number"),
    ("average_length_of_stay", "inpatient", "Average length of stay (days)", "number"),
    ("average_members", "total", "Average members", "number"),
)


def _selection_rows(trend: pd.DataFrame) -> pd.DataFrame:
    """The rows of the whole selection: 'all' over several employers, else the one employer's."""
    return trend[trend["employer_id"] == "all"] if (trend["employer_id"] == "all").any() else trend


def _signed(value: float, unit: str) -> str:
    """A change with its sign in front ('+$7.99', '−$4.21', '+5.1', '±0.0')."""
    shown = ui.fmt_money(abs(value)) if unit == "money" else ui.fmt_number(abs(value), 1 if abs(value) < 100 else 0)
    if shown.strip("$0.,") == "":
        return "±" + shown
    return ("+" if value > 0 else "−") + shown


def trend_table(trend: pd.DataFrame) -> dbc.Table:
    """Base, current and change of the headline measures; money changes also in dollars."""
    rows = _selection_rows(trend).set_index(["measure", "category"])
    body = []
    for measure, category, label, unit in TREND_ROWS:
        if (measure, category) not in rows.index:
            continue
        r = rows.loc[(measure, category)]
        suppressed = bool(r.get("suppressed", False))
        pct = r["change_pct"]
        change = "" if pd.isna(r["change"]) else _signed(r["change"], unit) + ("" if pd.isna(pct) else f" ({pct:+.1%})")
        # costs and use rising are not "good" or "bad" here: the table says which way, not a verdict
        body.append(html.Tr([html.Th(label, scope="row"), html.Td(ui.fmt_cell(r["base"], unit, suppressed=suppressed)),
                             html.Td(ui.fmt_cell(r["current"], unit, suppressed=suppressed)), html.Td(change)]))
    period, base = trend["period"].iloc[0], trend["base_period"].iloc[0]
    return dbc.Table([html.Thead(html.Tr([html.Th("Measure"), html.Th(f"Base {base}"), html.Th(f"Period {period}"),
                                          html.Th("Change")])), html.Tbody(body)],
                     size="sm", striped=True, className="mb-0 trend-table", id="employer-trend-table")


def monthly_pmpm(completion: pd.DataFrame) -> pd.DataFrame:
    """PMPM paid by month over the selection: Σ paid ÷ Σ member months of the employer-months with claims data
    (a blanked part blanks the month)."""
    rows = _with_claims_data(completion, completion)
    sums = rows.groupby("month", sort=True).agg(paid=("paid", _published_sum),
                                                member_months=("member_months", _published_sum)).reset_index()
    sums["pmpm_paid"] = KPIS["pmpm_paid"].compute(sums)
    return sums


def report_links(reports: tuple[str, ...], *, start, end, employer) -> html.Div:
    """Each report behind a section, as a table on the reports page and as CSV (the page keeps its grids for
    the monthly detail; these are one click away rather than loaded with every visit)."""
    links = []
    for name in reports:
        title = get_report(name).title
        links += [html.A(f"{title}: table", href=ui.drill_href(name, start=start, end=end, employer=employer),
                         className="me-2"),
                  html.A("CSV", href=ui.export_href(name, start=start, end=end, employer=employer), className="me-3")]
    return html.Div(links, className="small mt-1")


def shade_base(fig: go.Figure, months: list[tuple], *, start, label: str) -> None:
    """Shade the base period: the months (of runout_months, in order on the category axis) before ``start``."""
    base_months = [m for m, *_ in months if m < f"{start:%Y-%m}"]
    if base_months:
        fig.add_shape(type="rect", xref="x", yref="paper", x0=-0.5, x1=len(base_months) - 0.5, y0=0, y1=1,
                      fillcolor="#0d6efd", opacity=0.08, line_width=0, layer="below")
        fig.add_annotation(x=base_months[0], xref="x", y=0.98, yref="paper", xanchor="left", yanchor="top",
                           text=label, showarrow=False, font={"size": 10})


@callback(Output("employer-trend-box", "children"), *FILTERS, audience="employer")
def trend_section(scope, start, end, employer):
    """Current period against its base (issue 13 item 2): the headline measures side by side, PMPM by month over
    both periods with the base shaded, and PMPM by service category in each."""
    result = _run("employer-trend", scope, start, end, employer)
    trend = result.frame
    if trend.empty:
        return dbc.Alert("No enrollment for this selection.", color="info")
    base = et.base_period(result.filters)
    history = _run("claims-completion", scope, f"{base.start:%Y-%m}", end, employer).frame
    monthly = monthly_pmpm(history)
    line = go.Figure()
    line.add_scatter(x=monthly["month"].tolist(), y=[None if pd.isna(v) else float(v) for v in monthly["pmpm_paid"]],
                     mode="lines+markers", name="PMPM paid", connectgaps=False)
    hidden = monthly[monthly["pmpm_paid"].isna() & (monthly["paid"].isna() | monthly["member_months"].isna())]
    ui.mark_suppressed(line, [(m, "PMPM paid") for m in hidden["month"]])
    months = ui.runout_months(history)
    if months:
        ui.mark_runout(line, *zip(*months, strict=True))
    shade_base(line, months, start=result.filters.start, label=f"base {trend['base_period'].iloc[0]}")
    ui.style_figure(line, "PMPM paid by month, base period shaded")
    rows = _selection_rows(trend)
    cats = rows[(rows["measure"] == "pmpm_paid") & ~rows["category"].isin(("total", "medical"))]
    bars = go.Figure()
    for side, prefix in (("base", "base"), ("current", "period")):
        label = f"{prefix} {trend['base_period' if side == 'base' else 'period'].iloc[0]}"
        bars.add_bar(x=cats["category"].tolist(), y=[None if pd.isna(v) else float(v) for v in cats[side]],
                     name=label, text=None if side == "base" else
                     ["" if pd.isna(p) else f"{p:+.1%}" for p in cats["change_pct"]], textposition="outside")
    blank = cats[cats["current"].isna() | cats["base"].isna()]
    ui.mark_suppressed(bars, [(c, "PMPM") for c in blank["category"]] if scope.deidentified else [])
    bars.update_layout(barmode="group")
    ui.style_figure(bars, "PMPM paid by service category: base and period")
    return html.Div([
        html.H5("Period against its base", className="mt-2"),
        html.Div(f"{trend['period'].iloc[0]} against {trend['base_period'].iloc[0]}, the months of equal length "
                 "before it; rates are Σ ÷ Σ over months with claims data.", className="text-muted small mb-2"),
        dbc.Row([
            dbc.Col(trend_table(trend), lg=5),
            dbc.Col(ui.graph(bars, "employer-trend-bars"), lg=7),
            dbc.Col(ui.graph(line, "employer-trend-line"), lg=12),
        ], className="g-3"),
        report_links(("employer-trend",), start=start, end=end, employer=employer),
    ])


DRIVER_DIMENSIONS = {"condition_group": "Condition group", "service_category_2": "Service category",
                     "place_of_service": "Place of service", "provider_id": "Provider organisation"}
TOP_DRIVERS = 12


@callback(Output("employer-drivers-box", "children"), *FILTERS, Input("employer-driver-dimension", "value"),
          audience="employer")
def drivers_section(scope, start, end, employer, dimension):
    """Cost drivers (issue 13 item 3): the largest values of one grouping by PMPM in the period against its base,
    and members over $50k's share of each year's paid."""
    if dimension not in DRIVER_DIMENSIONS:
        dimension = "condition_group"
    result = _run("cost-drivers", scope, start, end, employer)
    frame = result.frame
    rows = _selection_rows(frame)
    rows = rows[rows["dimension"] == dimension]
    if rows.empty:
        return ui.graph(ui.empty_figure("No claims in this period"), "employer-drivers")
    top = rows.head(TOP_DRIVERS).iloc[::-1]  # largest paid first (the report's order), drawn top down
    period, base = top["period"].iloc[0], et.base_period(result.filters)
    bars = go.Figure()
    for column, name in (("base_pmpm_paid", f"base {base.start:%Y-%m}..{base.end:%Y-%m}"),
                         ("pmpm_paid", f"period {period}")):
        bars.add_bar(y=top["label"].tolist(), x=[None if pd.isna(v) else float(v) for v in top[column]], name=name,
                     orientation="h", text=None if column == "base_pmpm_paid" else
                     ["" if pd.isna(p) else f"{p:+.0%}" for p in top["pmpm_change_pct"]], textposition="outside",
                     customdata=top["value"].tolist())
    blank = top[top["pmpm_paid"].isna() & top.get("suppressed", pd.Series(False, index=top.index)).astype(bool)]
    ui.mark_suppressed(bars, [(label, "PMPM") for label in blank["label"]], horizontal=True)
    bars.update_layout(barmode="group")
    ui.style_figure(bars, f"PMPM paid by {DRIVER_DIMENSIONS[dimension].lower()}: the {min(len(rows), TOP_DRIVERS)} "
                    f"largest of {len(rows)} by paid", horizontal=True)
    bars.update_layout(height=max(320, 60 + 34 * len(top)), margin={"l": 10})
    bars.update_yaxes(automargin=True)
    hcc = _selection_rows(frame)
    hcc = hcc[hcc["dimension"] == "high_cost_claimants"]
    share = go.Figure()
    partial = ["months of claims data" in label for label in hcc["label"]]
    share.add_bar(x=[f"{year}*" if part else year for year, part in zip(hcc["value"], partial, strict=True)],
                  y=[None if pd.isna(v) else float(v) for v in hcc["share_of_paid"]], name="share of paid",
                  text=["" if pd.isna(v) else f"{v:.0%}" for v in hcc["share_of_paid"]], textposition="outside",
                  hovertext=hcc["label"].tolist(), hoverinfo="text+y")
    if "suppressed" in hcc:
        ui.mark_suppressed(share, [(f"{year}*" if part else year, "members over $50k")
                                 for year, part, hidden in zip(hcc["value"], partial, hcc["suppressed"], strict=True)
                                 if hidden])
    if any(partial):
        share.add_annotation(text="* part of the year has claims data", showarrow=False, xref="paper", yref="paper",
                             x=0, y=-0.25, xanchor="left", font={"size": 10})
    ui.style_figure(share, "Members over $50k: share of the year's paid")
    share.update_yaxes(tickprefix="", tickformat=".0%")
    return html.Div([dbc.Row([dbc.Col(ui.graph(bars, "employer-drivers"), lg=8),
                              dbc.Col(ui.graph(share, "employer-high-cost-share"), lg=4)], className="g-3"),
                     report_links(("cost-drivers",), start=start, end=end, employer=employer)])


UTILIZATION_MEASURES = {"er_visits": "ER visits", "inpatient_admissions": "admissions",
                        "office_visits": "office visits", "prescriptions": "prescriptions"}


def per_1000_by_measure(utilization: pd.DataFrame, completion: pd.DataFrame) -> pd.DataFrame:
    """Events per 1,000 members a year by month and measure over the selection: Σ events ÷ Σ member months ×
    12,000 (the registry's per_1000) over the employer-months with claims data, a suppressed part making the
    whole suppressed."""
    rows = _with_claims_data(utilization[utilization["measure"].isin(UTILIZATION_MEASURES)], completion)
    sums = (rows.groupby(["measure", "month"], sort=True)
            .agg(events=("events", _published_sum), member_months=("member_months", _published_sum)).reset_index())
    sums["per_1000"] = KPIS["per_1000"].compute(sums)
    return sums


@callback(Output("employer-utilization-box", "children"), *FILTERS, audience="employer")
def utilization_chart(scope, start, end, employer):
    """ER visits, admissions, office visits and prescriptions per 1,000 by month (issue 13 item 4): lines over the
    selection through the base period and the period, the base shaded, suppressed months marked, run-out shaded as
    on the PMPM chart (the base's and the period's rates side by side are in the trend table)."""
    period = _run("utilization", scope, start, end, employer)
    if period.frame.empty:
        return ui.graph(ui.empty_figure("No utilization in this period"), "employer-utilization")
    base = et.base_period(period.filters)
    util = _run("utilization", scope, f"{base.start:%Y-%m}", end, employer).frame
    completion = _run("claims-completion", scope, f"{base.start:%Y-%m}", end, employer).frame
    sums = per_1000_by_measure(util, completion)
    fig = go.Figure()
    suppressed = []
    for measure, label in UTILIZATION_MEASURES.items():
        rows = sums[sums["measure"] == measure]
        if rows.empty:
            continue
        fig.add_scatter(x=rows["month"].tolist(), y=[None if pd.isna(v) else float(v) for v in rows["per_1000"]],
                        mode="lines+markers", name=label, connectgaps=False)
        hidden = rows[rows["per_1000"].isna() & (rows["events"].isna() | rows["member_months"].isna())]
        suppressed += [(m, label) for m in hidden["month"]]
    ui.mark_suppressed(fig, suppressed)
    ui.style_figure(fig, "Utilization per 1,000 members a year (Σ events ÷ Σ member months × 12,000)"
                    + (" · ✕ suppressed" if suppressed else ""))
    fig.update_yaxes(tickprefix="", tickformat=",")
    months = ui.runout_months(completion)
    if months:
        ui.mark_runout(fig, *zip(*months, strict=True))
    shade_base(fig, months, start=period.filters.start, label=f"base {base.start:%Y-%m}..{base.end:%Y-%m}")
    return ui.graph(fig, "employer-utilization")


TIER_NAMES = {"EMP": "employee", "ESP": "employee + spouse", "ECH": "employee + children", "FAM": "family",
              "IND": "individual", "E1D": "employee + 1", "TWO": "two-party"}


@callback(Output("employer-enrollment-box", "children"), *FILTERS, audience="employer")
def enrollment_section(scope, start, end, employer):
    """Enrollment detail (issue 13 item 5): members by age band and gender at the period's end, members by coverage
    tier over time, dependents per subscriber by month, and adds and terms by month."""
    demo = _run("demographics", scope, start, end, employer).frame
    if demo.empty:
        return dbc.Alert("No enrollment for this selection.", color="info")
    last = demo[demo["month"] == demo["month"].max()]
    pyramid = go.Figure()
    hidden = []
    bands = list(dict.fromkeys(last["age_band"]))
    for gender, sign in (("female", -1), ("male", 1)):
        cells = last[last["gender"] == gender].groupby("age_band", sort=False)["members"].agg(_published_sum)
        values = [cells.get(b) for b in bands]
        pyramid.add_bar(y=bands, x=[None if v is None or pd.isna(v) else sign * float(v) for v in values],
                        name=gender, orientation="h", customdata=[None if v is None or pd.isna(v) else float(v)
                                                                  for v in values],
                        hovertemplate="%{y}: %{customdata:,.0f}<extra>" + gender + "</extra>")
        hidden += [(b, gender) for b, v in zip(bands, values, strict=True) if v is None or pd.isna(v)]
    ui.mark_suppressed(pyramid, hidden, horizontal=True)
    pyramid.update_layout(barmode="relative")
    ui.style_figure(pyramid, f"Members by age and gender, {last['month'].iloc[0]}", horizontal=True)
    widest = max([abs(x) for t in pyramid.data if t.type == "bar" for x in t.x if x is not None] or [1])
    ticks = [round(widest * k / 2) for k in (-2, -1, 0, 1, 2)]
    pyramid.update_xaxes(tickprefix="", tickvals=ticks, ticktext=[f"{abs(t):,}" for t in ticks], title=None)
    pyramid.update_yaxes(categoryorder="array", categoryarray=bands)

    enrolled = _run("enrollment", scope, start, end, employer).frame
    by_tier = enrolled.groupby(["month", "tier"], sort=True).agg(members=("members", _published_sum)).reset_index()
    tiers = go.Figure()
    for tier, rows in by_tier.groupby("tier", sort=True):
        tiers.add_bar(x=rows["month"].tolist(), y=[None if pd.isna(v) else float(v) for v in rows["members"]],
                      name=TIER_NAMES.get(tier, tier))
    ui.mark_suppressed(tiers, [(r.month, TIER_NAMES.get(r.tier, r.tier)) for r in by_tier.itertuples()
                             if pd.isna(r.members)])
    tiers.update_layout(barmode="stack")
    ui.style_figure(tiers, "Members by coverage tier")
    tiers.update_yaxes(tickprefix="", tickformat=",")

    def by_month(measure: str) -> pd.DataFrame:  # the builder's monthly series: one definition of each measure
        return run_report("builder", scope=scope, engine=warehouse(), start=start, end=end, employer=employer,
                          cache=report_cache(), options={"measure": measure, "by": "month", "compare": "none"}).frame

    dependents, adds, terms = by_month("dependents_per_subscriber"), by_month("adds"), by_month("terms")
    flow = go.Figure()
    for frame, name, sign in ((adds, "adds", 1), (terms, "terms", -1)):
        flow.add_bar(x=frame["group"].tolist(), y=[None if pd.isna(v) else sign * float(v) for v in frame["current"]],
                     name=name)
    flow.add_scatter(x=dependents["group"].tolist(), name="dependents per subscriber", mode="lines+markers",
                     y=[None if pd.isna(v) else float(v) for v in dependents["current"]], yaxis="y2")
    if "suppressed" in adds:
        ui.mark_suppressed(flow, [(m, "adds and terms") for m, hidden in zip(adds["group"], adds["suppressed"],
                                                                           strict=True) if hidden])
    flow.update_layout(barmode="relative", yaxis2={"overlaying": "y", "side": "right", "showgrid": False,
                                                   "tickformat": ".2f", "rangemode": "tozero"})
    ui.style_figure(flow, "Adds, terms and dependents per subscriber")
    flow.update_yaxes(tickprefix="", tickformat=",")
    flow.update_layout(yaxis2={"tickformat": ".2f", "title": {"text": "dependents per subscriber"}})
    return html.Div([
        html.H5("Enrollment", className="mt-2"),
        dbc.Row([dbc.Col(ui.graph(pyramid, "employer-demographics"), lg=4),
                 dbc.Col(ui.graph(tiers, "employer-tiers"), lg=4),
                 dbc.Col(ui.graph(flow, "employer-enrollment-flow"), lg=4)], className="g-3"),
        report_links(("demographics", "enrollment-changes"), start=start, end=end, employer=employer),
    ])


for _name, _grid in GRIDS.items():
    grids.register_grid(__name__, _name, grid_id=_grid, prefix="employer", audience="employer", entity="employer",
                        href=ui.export_href)
grids.refresh_grids_on("employer", list(GRIDS.values()), *FILTERS)
