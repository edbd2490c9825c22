"""This week's work: each worklist with its claims and dollars, ranked for action, for the practices in scope.

The cards count each list (worklist-summary); the grids page its claims on the server (claim-level reports,
dashboard.ui.grids), each claim id opening the claim's page. Filters live in the URL, as on every page.
"""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import Input, Output, dcc, html

from dashboard.metrics.practice import DUE_SOON_DAYS
from dashboard.reports import get_report, run_report
from dashboard.ui import components as ui
from dashboard.ui import grids
from dashboard.ui.context import page_context, report_cache, url_filters, warehouse
from dashboard.ui.registry import callback, page

FILTERS = (Input("work-from", "value"), Input("work-to", "value"), Input("work-entity", "value"))
GRIDS = {"denial-worklist": "grid-denial-worklist", "ar-follow-up": "grid-ar-follow-up",
         "unmatched-payments": "grid-unmatched-payments", "eligibility-pending": "grid-eligibility-pending",
         "open-claims": "grid-patient-balances"}
PATIENT_ONLY = {"payer": {"filterType": "text", "type": "equals", "filter": "Patient"}}
CARDS = {  # worklist (dashboard.metrics.practice.WORKLISTS) -> (title, rows, what its dollars are, "due soon")
    "denial-worklist": ("Open denials", "claims", "recoverable", f"appeal window closing within {DUE_SOON_DAYS} days"),
    "ar-follow-up": ("No payer answer", "claims", "owed by payers", "waiting twice the payer's follow-up days"),
    "unmatched-payments": ("Unmatched payments", "payments", "not matching the books", "for no claim on the books"),
    "eligibility-pending": ("Eligibility to check", "visits", None, "within the next 7 days"),
    "patient-balances": ("Patient balances", "claims", "owed by patients", "over 90 days from service"),
}


def layout(scope, **query):
    ctx = page_context(scope)
    chosen = url_filters(ctx, query, kind="practice",
                         default_entity=ctx.practices[0]["value"] if len(ctx.practices) == 1 else None)
    href = {"start": chosen.start, "end": chosen.end, "practice": chosen.entity}
    grid_blocks = []
    for name, grid_id in GRIDS.items():
        report = get_report(name)
        block = grids.paged_grid(report, grid_id=grid_id, href=ui.export_href(name, **href),
                                 deidentified=scope.deidentified, names=ctx.names,
                                 filter_model=PATIENT_ONLY if grid_id == "grid-patient-balances" else None)
        if grid_id == "grid-patient-balances":  # the open-claims report, patients' part
            block.children[0].children[0].children = "Patient balances: the claims behind them"
        grid_blocks.append(block)
    return html.Div([
        html.H3("This week's work", className="mb-1"),
        html.P("Where each claim stands now; days are counted to the end of the period.", className="text-muted"),
        ui.filter_bar("work", months=ctx.months, start=chosen.start, end=chosen.end, entity_label="Practice",
                      entity_options=ctx.practices, entity_value=chosen.entity),
        grids.refresh_store("work"), ui.url_store("work"),
        dcc.Loading(html.Div(id="work-cards", style={"minHeight": "150px"}), type="default", delay_show=300),
        *grid_blocks,
    ])


page(__name__, path="/practice/worklists", title="Worklists", audience="practice", layout=layout, order=12)
ui.keep_filters_in_url("work", entity="practice")


@callback(Output("work-cards", "children"), *FILTERS, audience="practice")
def cards(scope, start, end, practice):
    summary = run_report("worklist-summary", scope=scope, engine=warehouse(), start=start, end=end,
                         practice=practice, cache=report_cache())
    totals = summary.frame.groupby("worklist")[["claims", "amount", "due_soon"]].sum()
    tiles = []
    for name, (title, rows, dollars, due) in CARDS.items():
        count, amount, soon = (totals.loc[name] if name in totals.index else (0, 0.0, 0))
        money = f"{ui.fmt_money(float(amount))} {dollars} · " if dollars else ""
        tiles.append(ui.kpi_card(title, f"{int(count):,} {rows}", card_id=f"work-{name}",
                                 note=f"{money}{int(soon):,} {due}"))
    return dbc.Row([dbc.Col(tile, md=4, lg=True) for tile in tiles], className="g-3 mb-4")


for _name, _grid in GRIDS.items():
    grids.register_grid(__name__, _name, grid_id=_grid, prefix="work", audience="practice", entity="practice",
                        href=ui.export_href)
grids.refresh_grids_on("work", list(GRIDS.values()), *FILTERS)
