"""Claim search (/practice/claims?q=…) and one claim's page (/practice/claims/<claim_id>): its lifecycle, each
remittance with its lines, CAS adjustments and remark codes in words, patient payments and what is still owed.

Both are server-rendered from dashboard.claims (point lookups by key); a claim of another practice answers
exactly like one that does not exist.
"""

from __future__ import annotations

import datetime as dt

import dash_bootstrap_components as dbc
import pandas as pd
from dash import dcc, html

from dashboard import claims
from dashboard.errors import BadInput
from dashboard.ui import components as ui
from dashboard.ui.context import warehouse
from dashboard.ui.registry import page

STAGE_COLOURS = {"service": "secondary", "submitted": "primary", "accepted": "info", "rejected": "danger",
                 "denied": "danger", "partially paid": "warning", "paid": "success", "appealed": "primary",
                 "patient payment": "success", "patient refund": "warning", "written off": "dark",
                 "reversed": "danger"}


def _search_form(text: str) -> html.Form:
    # a plain GET form: the search is in the address bar (bookmarkable), and it works from the keyboard
    return html.Form([
        dbc.Label("Find a claim", html_for="claim-search-q"),
        dbc.InputGroup([
            dbc.Input(id="claim-search-q", name="q", value=text, type="search", maxLength=claims.MAX_TERM,
                      placeholder="claim id, patient id, payer claim number or ERA trace number"),
            dbc.Button("Search", type="submit", color="primary", id="claim-search-go"),
        ]),
    ], action="/practice/claims", method="get", className="mb-4", style={"maxWidth": "40rem"}, role="search")


def _money(value: float | None) -> str:
    return "—" if value is None or pd.isna(value) else f"${value:,.2f}"


def _table(frame: pd.DataFrame, *, money: tuple[str, ...] = (), table_id: str | None = None) -> dbc.Table:
    head = html.Thead(html.Tr([html.Th(c.replace("_", " "), scope="col") for c in frame.columns]))
    rows = []
    for record in frame.itertuples(index=False):
        cells = []
        for col, value in zip(frame.columns, record, strict=True):
            if col in money:
                cells.append(html.Td(_money(value), className="text-end"))
            elif isinstance(value, dt.date):
                cells.append(html.Td(f"{value:%Y-%m-%d}"))
            else:
                cells.append(html.Td("" if value is None or (isinstance(value, float) and pd.isna(value))
                                     else str(value)))
        rows.append(html.Tr(cells))
    ids = {"id": table_id} if table_id else {}
    return dbc.Table([head, html.Tbody(rows)], bordered=False, hover=True, size="sm", responsive=True,
                     className="mb-3", **ids)


def search_layout(scope, q: str | None = None, **_query):
    if q is None:
        return html.Div([html.H3("Claims", className="mb-3"), _search_form("")])
    try:
        with warehouse().connect() as conn:
            found = claims.search_claims(conn, scope=scope, text=q)
    except BadInput as exc:
        return html.Div([html.H3("Claims", className="mb-3"), _search_form(q),
                         dbc.Alert(str(exc), color="danger", id="claim-search-message")])
    if found.empty:
        result = dbc.Alert(f"No claim of your practices matches {q.strip()!r}.", color="info",
                           id="claim-search-message")
    else:
        rows = [html.Tr([html.Td(dcc.Link(r.claim_id, href=ui.claim_href(r.claim_id, r.practice_id),
                                          id=f"claim-result-{i}")),
                         html.Td(r.practice_id), html.Td(r.payer), html.Td(f"{r.service_date:%Y-%m-%d}"),
                         html.Td(_money(r.charge), className="text-end"), html.Td(r.matched_on)])
                for i, r in enumerate(found.itertuples(index=False))]
        more = (f" (the first {claims.SEARCH_LIMIT}: narrow the search)" if len(found) >= claims.SEARCH_LIMIT
                else "")
        result = html.Div([
            html.P(f"{len(found)} claim{'s' if len(found) != 1 else ''} found{more}.", id="claim-search-message"),
            dbc.Table([html.Thead(html.Tr([html.Th(h, scope="col") for h in
                                           ("claim", "practice", "payer", "service date", "charge", "matched on")])),
                       html.Tbody(rows)], hover=True, size="sm", responsive=True, id="claim-search-results"),
        ])
    return html.Div([html.H3("Claims", className="mb-3"), _search_form(q), result])


page(__name__, path="/practice/claims", title="Claims", audience="practice", layout=search_layout, order=15)


def _timeline(events: list[claims.Event]) -> html.Ol:
    items = []
    for e in events:
        amount = f" · {_money(e.amount)}" if e.amount is not None else ""
        items.append(html.Li([
            html.Span(f"{e.date:%Y-%m-%d}", className="text-muted me-2 font-monospace"),
            dbc.Badge(e.stage, color=STAGE_COLOURS.get(e.stage, "secondary"), className="me-2"),
            html.Span(e.detail + amount),
        ], className="mb-2"))
    return html.Ol(items, className="list-unstyled claim-timeline", id="claim-timeline")


def _remittance(remit: claims.Remittance, index: int) -> dbc.Card:
    facts = (f"{remit.payment_date:%Y-%m-%d} · {remit.method} · CLP02 {remit.status_code} ({remit.status}) · "
             f"charge {_money(remit.charge)} · paid {_money(remit.paid)} · patient responsibility "
             f"{_money(remit.patient_responsibility)}"
             + (f" · payer claim number {remit.payer_claim_number}" if remit.payer_claim_number else ""))
    body = [html.P(facts, className="small")]
    if not remit.lines.empty:
        body += [html.H6("Service lines (SVC)"), _table(remit.lines, money=("charge", "paid"))]
    adjustments = remit.adjustments.rename(columns={"carc": "reason_code"})
    body += [html.H6("Adjustments (CAS)"),
             _table(adjustments, money=("amount",), table_id=f"claim-remittance-{index}-cas")
             if not adjustments.empty else html.P("None.", className="small text-muted")]
    if not remit.remarks.empty:
        body += [html.H6("Remark codes (RARC)"), _table(remit.remarks, table_id=f"claim-remittance-{index}-remarks")]
    return dbc.Card([dbc.CardHeader(f"ERA {remit.trace_number} from {remit.payer}"), dbc.CardBody(body)],
                    className="mb-3 shadow-sm")


def claim_layout(scope, claim_id: str | None = None, practice: str | None = None, **_query):
    with warehouse().connect() as conn:  # NotFound/BadInput: the page wrapper shows its words, the same for all
        c = claims.claim_history(conn, scope=scope, claim_id=claim_id, practice_id=practice or None)
    owed = c.balances.copy()
    cards = [
        ui.kpi_card("Charge", _money(c.charge), note=f"{len(c.lines)} line{'s' if len(c.lines) != 1 else ''}"),
        ui.kpi_card("Paid by payer", _money(sum(r.paid for r in c.remittances)),
                    note=f"{len(c.remittances)} remittance{'s' if len(c.remittances) != 1 else ''}"),
        ui.kpi_card("Paid by patient", _money(float(c.patient_payments["amount"].sum())) if len(c.patient_payments)
                    else _money(0.0)),
        ui.kpi_card("Open balance", _money(c.open_balance), note=c.status, card_id="claim-open-balance"),
    ]
    service = (f"{c.service_from:%Y-%m-%d}" if c.service_from == c.service_to
               else f"{c.service_from:%Y-%m-%d} to {c.service_to:%Y-%m-%d}")
    return html.Div([
        dcc.Link("← Find another claim", href="/practice/claims", className="small"),
        html.H3(f"Claim {c.claim_id}", className="mt-2 mb-1", id="claim-title"),
        html.P([html.Span(c.practice_name, title=f"TIN {c.practice_id}"), " · ",
                html.Span(c.payer_name, title=f"payer id {c.payer}"), f" · patient {c.person_id}",
                f" · {c.claim_type or 'claim'} · service {service}"], className="text-muted"),
        dbc.Row([dbc.Col(card, md=3, xs=6) for card in cards], className="g-3 mb-4"),
        dbc.Row([
            dbc.Col([html.H5("Lifecycle"), _timeline(c.events)], lg=5),
            dbc.Col([html.H5("Billed lines (837)"), _table(c.lines, money=("charge",), table_id="claim-lines"),
                     html.H5("Owed now"),
                     _table(owed, money=("balance",), table_id="claim-balances") if not owed.empty
                     else html.P("Nothing: the claim is settled.", className="text-muted")], lg=7),
        ]),
        html.H5("Remittances (835)", className="mt-3"),
        *([_remittance(r, i) for i, r in enumerate(c.remittances)]
          or [html.P("No payer has answered yet.", className="text-muted")]),
        *([html.H5("Patient payments"), _table(c.patient_payments, money=("amount",))]
          if len(c.patient_payments) else []),
        *([html.H5("Write-offs"), _table(c.write_offs, money=("amount",))] if len(c.write_offs) else []),
    ], id="claim-page")


page(f"{__name__}.detail", path="/practice/claims/claim", path_template="/practice/claims/<claim_id>",
     title="Claim", audience="practice", layout=claim_layout, order=16)
