"""Reusable pieces of the pages: KPI card, filter bar, charts (report grids: dashboard.ui.grids)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from urllib.parse import quote, urlencode

import dash_bootstrap_components as dbc
import plotly.graph_objects as go
import plotly.io as pio
from dash import Input, Output, State, dcc, html

from dashboard.metrics.kpis import Kpi
from dashboard.ui import registry

# Figures are built without a template and :func:`graph` adds this one as plain JSON: plotly validates and
# deep-copies a named template into every figure it makes (about 50 ms a chart, most of a warm page).
pio.templates.default = None
TEMPLATE = pio.templates["plotly_white"].to_plotly_json()
# only what the product draws (bars, lines, funnels on x/y axes): the rest of plotly_white (maps, 3-D, polar, …)
# would ride along in every chart of every response
TEMPLATE["data"] = {k: v for k, v in TEMPLATE["data"].items() if k in ("bar", "scatter")}
TEMPLATE["layout"] = {k: v for k, v in TEMPLATE["layout"].items()
                      if k not in ("geo", "polar", "ternary", "scene", "mapbox", "map", "coloraxis")}

SUPPRESSED = "suppressed"  # a small cell, or a total that would reveal one
NO_DATA = "no data"  # nothing is known (no claims data for the months), which is not zero


def runout_months(completion) -> list[tuple[str, str, float | None]]:
    """The months of a claims-completion frame and their run-out state, once per month (the completion factors
    are the selection's, the same for each employer): (month, status, completion)."""
    months = completion.drop_duplicates("month").sort_values("month")
    return list(zip(months["month"], months["status"], months["completion"], strict=True))


def mark_runout(fig: go.Figure, months: Sequence[str], status: Sequence[str],
                completion: Sequence[float | None]) -> go.Figure:
    """Shade the months still in claims run-out on a month (category) axis, each labelled with its estimated
    completion, and label months without claims data: a falling last bar is then read as unpaid claims,
    not as falling cost."""
    # every month of the period on the axis, in order (a month without bars still shows its mark); a category
    # axis places the i-th month at i, so its band runs from i − 0.5 to i + 0.5
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=list(months))
    for i, (month, state, share) in enumerate(zip(months, status, completion, strict=True)):
        if state == "complete":
            continue
        label = NO_DATA if state == NO_DATA else f"run-out: est. {share:.0%} paid"
        fig.add_shape(type="rect", xref="x", yref="paper", x0=i - 0.5, x1=i + 0.5, y0=0, y1=1,
                      fillcolor="#adb5bd", opacity=0.25, line_width=0, layer="below")
        fig.add_annotation(x=month, xref="x", y=1, yref="paper", yanchor="bottom", text=label, showarrow=False,
                           font={"size": 10})
    return fig


def mark_suppressed(fig: go.Figure, cells: Sequence[tuple[str, str]], *, horizontal: bool = False) -> None:
    """Draw each suppressed (place, series) cell rather than leave it out: a mark at 0 at its place on the category
    axis (y for a ``horizontal`` chart), the series and the reason on hover."""
    if cells:
        at, zero = [place for place, _ in cells], [0] * len(cells)
        fig.add_scatter(x=zero if horizontal else at, y=at if horizontal else zero, mode="markers",
                        marker={"symbol": "x", "size": 10, "color": "#6c757d"}, name="suppressed",
                        hovertext=[f"{series}: suppressed (fewer than 11 people, or it would reveal such a cell)"
                                   for _, series in cells], hoverinfo="text")


def fmt_cell(value: float | None, unit: str, *, suppressed: bool) -> str:
    """A table cell of an employer figure: money or a count, else why it is empty (suppressed, or no data)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return SUPPRESSED if suppressed else NO_DATA
    return fmt_money(value) if unit == "money" else fmt_number(value, 1 if abs(value) < 100 else 0)


def fmt_money(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"${value:,.0f}" if abs(value) >= 1000 else f"${value:,.2f}"


def fmt_rate(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.1%}"


def fmt_number(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def kpi_card(title: str, value: str, *, note: str | None = None, status: str | None = None,
             card_id: str | None = None) -> dbc.Card:
    """A KPI tile; ``status`` 'good' | 'warn' | 'bad' colours the left border against its benchmark."""
    color = {"good": "success", "warn": "warning", "bad": "danger"}.get(status or "", "secondary")
    return dbc.Card(
        dbc.CardBody([
            html.Div(title, className="text-muted small text-uppercase"),
            html.Div(value, className="fs-4 fw-semibold kpi-value"),
            html.Div(note or "", className="small text-muted"),
        ]),
        className=f"h-100 border-0 border-start border-4 border-{color} shadow-sm",
        id=card_id or f"kpi-{title.lower().replace(' ', '-').replace('/', '')}",
    )


def kpi_tile(kpi: Kpi, value: float | None, *, claims_href: str | None = None,
             trend: Sequence[html.Span] = ()) -> dbc.Card:
    """A card for a registry KPI: its label, value, benchmark band colour, and its formula and source
    behind an info mark (a native tooltip: readable with a mouse, a keyboard focus or a screen reader);
    ``claims_href`` adds a link to the claims behind it, ``trend`` its changes and sparkline."""
    info = html.Span("i", title=f"{kpi.formula}. Source: {kpi.source}.", tabIndex="0",
                     className="kpi-info", **{"aria-label": f"How {kpi.label} is computed"})
    card = kpi_card(kpi.label, kpi.format(value), note=f"benchmark {kpi.benchmark}" if kpi.benchmark else None,
                    status=kpi.status(value))
    card.children.children[0].children = [kpi.label, info]
    if trend:
        card.children.children.insert(2, html.Div(list(trend), className="small"))
    if claims_href:
        card.children.children.append(claims_link(claims_href, kpi.label))
    return card


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None], *, label: str) -> html.Span:
    """A month series as a line of block characters (no chart to load), its values read out to screen readers;
    a month without a value is a gap."""
    known = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if len(known) < 2:
        return html.Span()
    low, high = min(known), max(known)
    marks = "".join(" " if v is None or (isinstance(v, float) and math.isnan(v))
                    else SPARK[0 if high == low else round((v - low) / (high - low) * (len(SPARK) - 1))]
                    for v in values)
    return html.Span(marks, className="sparkline", role="img", title=label, **{"aria-label": label})


def change(now: float | None, before: float | None, *, unit: str, higher_is_better: bool | None,
           against: str) -> html.Span | None:
    """The change from ``before`` to ``now`` in the KPI's terms (rates in points, days in days, money in %),
    coloured by whether it is better; None when either is unknown."""
    def missing(v):
        return v is None or (isinstance(v, float) and math.isnan(v))

    if missing(now) or missing(before):
        return None
    diff = now - before
    if unit == "rate":
        text = f"{diff * 100:+.1f} pts"
    elif unit == "days":
        text = f"{diff:+.1f} days"
    else:
        if before == 0:
            return None
        text = f"{diff / abs(before):+.1%}"
    shown_zero = text.lstrip("+-").startswith(("0.0 ", "0.0%"))  # a change too small to show is none
    if shown_zero:
        text = "±" + text.lstrip("+-")
    better = None if higher_is_better is None or shown_zero else (diff > 0) == higher_is_better
    colour = "text-muted" if better is None else ("text-success" if better else "text-danger")
    return html.Span(f"{text} vs {against}", className=f"{colour} me-2 kpi-change")


def claim_href(claim_id: str, practice_id: str | None = None) -> str:
    """A claim page's address (pages/claims.py), the practice named so that a claim id two practices share opens
    the right one (the grids' ClaimLink in assets/dashAgGridComponentFunctions.js builds the same in the
    browser)."""
    return f"/practice/claims/{quote(claim_id, safe='')}" + (f"?{urlencode({'practice': practice_id})}"
                                                             if practice_id else "")


def claims_link(href: str, label: str) -> html.A:
    return html.A("See the claims →", href=href, className="small claims-link",
                  **{"aria-label": f"See the claims behind {label}"})


def export_href(report: str, *, start: str | None, end: str | None, practice: str | None = None,
                employer: str | None = None, **options: str) -> str:
    """The CSV export of ``report`` with these filters (and a parameterised report's options)."""
    params = {k: v for k, v in (("from", start), ("to", end), ("practice", practice), ("employer", employer),
                                *sorted(options.items())) if v}
    return f"/export/{report}.csv" + (f"?{urlencode(params)}" if params else "")


def drill_href(report: str, *, start: str | None, end: str | None, practice: str | None = None,
               employer: str | None = None, **column_filters: str) -> str:
    """The claims behind a number: the report's page with the same filters and, for its grid, column filters
    (``payer="BCBS"``, ``**{"age_days.gt": "90"}``; see dashboard.ui.grids.filter_model_from_query)."""
    params = {"report": report, **{k: v for k, v in (("from", start), ("to", end), ("practice", practice),
                                                     ("employer", employer)) if v}, **column_filters}
    return f"/reports?{urlencode(params)}"


def drill_on_click(graph_id: str, prefix: str, report: str, point_params: dict[str, str], *,
                   month_from_x: bool = False) -> None:
    """Clicking a point of chart ``graph_id`` opens the claims behind it: ``report`` on the reports page with the
    filter bar's period and practice (``prefix``-from/-to/-entity) and, from the point, the column filters
    ``point_params`` (URL name -> JavaScript over the clicked point ``p``, e.g. ``{"payer": "p.customdata[0]"}``).
    ``month_from_x``: the point is a month (p.x), which becomes the period. Runs in the browser (the reports
    page checks everything again); called once per chart, at import."""
    sets = "".join(f"params.set({json.dumps(name)}, String({expr}));" for name, expr in point_params.items())
    code = """function(click, start, end, entity) {
        if (!click || !click.points || !click.points.length) { return window.dash_clientside.no_update; }
        const p = click.points[0];
        const params = new URLSearchParams();
        params.set('report', REPORT);
        params.set('from', MONTH ? String(p.x) : (start || '')); params.set('to', MONTH ? String(p.x) : (end || ''));
        if (entity) { params.set('practice', entity); }
        SETS
        window.location.assign('/reports?' + params.toString());
        return params.toString();
    }""".replace("REPORT", json.dumps(report)).replace("MONTH", "true" if month_from_x else "false") \
        .replace("SETS", sets)
    registry.clientside(code, Output(f"{graph_id}-drill", "data"), Input(graph_id, "clickData"),
                        State(f"{prefix}-from", "value"), State(f"{prefix}-to", "value"),
                        State(f"{prefix}-entity", "value"), prevent_initial_call=True)


def month_options(months: Sequence[str]) -> list[dict]:
    return [{"label": m, "value": m} for m in months]


def filter_bar(prefix: str, *, months: Sequence[str], start: str, end: str, entity_label: str,
               entity_options: list[dict], entity_value: str | None) -> dbc.Row:
    everything = "All my " + " and ".join(f"{kind}s" for kind in entity_label.lower().split(" or "))
    return dbc.Row([
        dbc.Col([dbc.Label("From", html_for=f"{prefix}-from"),
                 dcc.Dropdown(id=f"{prefix}-from", options=month_options(months), value=start, clearable=False)],
                md=2),
        dbc.Col([dbc.Label("To", html_for=f"{prefix}-to"),
                 dcc.Dropdown(id=f"{prefix}-to", options=month_options(months), value=end, clearable=False)], md=2),
        dbc.Col([dbc.Label(entity_label, html_for=f"{prefix}-entity"),
                 dcc.Dropdown(id=f"{prefix}-entity", options=entity_options, value=entity_value,
                              clearable=True, placeholder=everything)], md=4),
    ], className="g-3 mb-4 align-items-end")


def url_store(prefix: str) -> dcc.Store:
    """Where :func:`keep_filters_in_url`'s browser callback writes (a place in the layout for its output)."""
    return dcc.Store(id=f"{prefix}-url")


def keep_filters_in_url(prefix: str, *, entity: str, extra: dict[str, str] | None = None) -> None:
    """Write the filter bar's values into the address bar (``?from=…&to=…&<entity>=…``) as they change, so the
    view can be bookmarked, shared and reloaded (the page's layout reads them back: context.url_filters);
    ``extra`` adds the page's own controls (URL name -> component id, its ``value``). replaceState, not a
    navigation: the page is not rendered again and no history entry is added. Called once per page module, at
    import."""
    extra = extra or {}
    names = [f"x{i}" for i in range(len(extra))]
    sets = "".join(f"if ({v} !== null && {v} !== undefined && {v} !== '') {{ params.set({json.dumps(k)}, {v}); }} "
                   f"else {{ params.delete({json.dumps(k)}); }}" for k, v in zip(extra, names, strict=True))
    code = """function(start, end, entity ARGS) {
        const params = new URLSearchParams(window.location.search);
        params.set('from', start || ''); params.set('to', end || '');
        if (entity) { params.set('ENTITY', entity); } else { params.delete('ENTITY'); }
        SETS
        window.history.replaceState(window.history.state, '', window.location.pathname + '?' + params.toString());
        return params.toString();
    }""".replace("ENTITY", entity).replace(" ARGS", "".join(f", {n}" for n in names)).replace("SETS", sets)
    registry.clientside(code, Output(f"{prefix}-url", "data"), Input(f"{prefix}-from", "value"),
                        Input(f"{prefix}-to", "value"), Input(f"{prefix}-entity", "value"),
                        *[Input(component, "value") for component in extra.values()], prevent_initial_call=True)


def empty_figure(message: str) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font={"size": 14})
    fig.update_layout(xaxis={"visible": False}, yaxis={"visible": False}, height=300,
                      margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig


def style_figure(fig: go.Figure, title: str, *, horizontal: bool = False) -> go.Figure:
    """Common layout; months and buckets are labels, not a time axis. ``horizontal`` bars put the labels
    on y and the (money) values on x."""
    fig.update_layout(title=title, height=320, margin={"l": 40, "r": 10, "t": 50, "b": 40},
                      legend={"orientation": "h", "y": -0.2})
    if horizontal:
        fig.update_yaxes(type="category")
        fig.update_xaxes(type="linear", tickprefix="$", tickformat="~s")
    else:
        fig.update_xaxes(type="category")
        fig.update_yaxes(tickprefix="$", tickformat="~s")  # every vertical chart here plots dollars
    return fig


def _point(point: tuple[str, object]) -> str:
    label, value = point
    return f"{label}: {value:,.2f}" if isinstance(value, int | float) else f"{label}: {value}"


def describe(fig: go.Figure) -> str:
    """A text alternative of a chart for screen readers: its title and, per series, its points (label: value),
    as the chart shows them (a long series is summed up by its first and last points, lowest and highest)."""
    layout = fig.layout
    title = layout.title.text if layout.title and layout.title.text else "Chart"
    parts = [f"{title}."]
    for trace in fig.data:
        # a funnel lies on its side unless it says otherwise
        horizontal = getattr(trace, "orientation", None) == "h" or (trace.type == "funnel" and trace.orientation
                                                                     in (None, "h"))
        labels, values = (trace.y, trace.x) if horizontal else (trace.x, trace.y)
        labels, values = list(labels) if labels is not None else [], list(values) if values is not None else []
        points = [(str(k), v) for k, v in zip(labels, values, strict=False) if v is not None and v == v]
        if not points:
            continue
        if len(points) <= 8:
            shown = "; ".join(_point(p) for p in points)
        else:
            numeric = [p for p in points if isinstance(p[1], int | float)] or points[:1]
            low, high = min(numeric, key=lambda p: p[1]), max(numeric, key=lambda p: p[1])
            shown = (f"{len(points)} points from {_point(points[0])} to {_point(points[-1])}; lowest {_point(low)}, "
                     f"highest {_point(high)}")
        parts.append(f"{trace.name or 'Series'} — {shown}.")
    parts += [a.text for a in (layout.annotations or ()) if a.text]  # marks such as run-out or "no data"
    return " ".join(parts)


def graph(fig: go.Figure, graph_id: str, *, hint: str | None = None) -> html.Figure:
    """The chart, its mode bar down the right edge (never over the title, at any width), and its text
    alternative (:func:`describe`) for screen readers beside it; ``hint`` says what a click on it opens."""
    fig.update_layout(modebar={"orientation": "v"})
    figure = fig.to_plotly_json()
    figure["layout"]["template"] = TEMPLATE
    return html.Figure([
        dcc.Graph(figure=figure, id=graph_id, config={"displaylogo": False, "responsive": True},
                  className="drillable" if hint else None),
        html.Figcaption(describe(fig), id=f"{graph_id}-text", className="visually-hidden"),
        *([html.Div(hint, className="small text-muted", id=f"{graph_id}-hint")] if hint else []),
    ], className="m-0")
