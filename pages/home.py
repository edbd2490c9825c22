"""Landing page: sends each role to its overview."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.ui.registry import nav_pages, page


def layout(scope, **_):
    pages = [p for p in nav_pages(scope) if p.path != "/reports"] or nav_pages(scope)
    if not pages:
        return dbc.Alert("Your account has no pages yet; ask an administrator for access.", color="warning")
    return html.Div([
        dcc.Location(id="home-redirect", href=pages[0].path, refresh=False),
        html.P([html.A(p.title, href=p.path, className="me-3") for p in pages]),
    ])


page(__name__, path="/", title="Home", audience="any", layout=layout, order=0)
