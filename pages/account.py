"""The logged-in user's own account: who they are, what they see, and links to the password and
two-factor forms (plain Flask forms with CSRF, so they also work before the dashboard is reachable)."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from dashboard.auth import mfa, service
from dashboard.ui.context import app_db
from dashboard.ui.registry import page


def _scope_text(scope) -> str:
    if scope.full_access:
        return "every practice and employer"
    ids = [*(f"practice {p}" for p in sorted(scope.practice_ids or ())),
           *(f"employer {e}" for e in sorted(scope.employer_ids or ()))]
    return ", ".join(ids) or "nothing yet; ask an administrator"


def layout(scope, **_):
    user = service.get_user(app_db(), user_id=scope.user_id)
    if user.mfa_enabled:
        left = mfa.remaining_recovery_codes(app_db(), user_id=user.id)
        two_factor = [html.Span("On", className="badge bg-success me-2", id="account-mfa-state"),
                      f"{left} recovery code{'' if left == 1 else 's'} left. ",
                      html.A("Manage", href="/account/mfa", id="account-mfa-link")]
    else:
        two_factor = [html.Span("Off", className="badge bg-warning text-dark me-2", id="account-mfa-state"),
                      html.A("Set up two-factor authentication", href="/account/mfa", id="account-mfa-link")]
    rows = [("Email", user.email), ("Role", user.role.replace("_", " ")), ("Access", _scope_text(scope)),
            ("Last login", f"{user.last_login_at:%Y-%m-%d %H:%M} UTC" if user.last_login_at else "—"),
            ("Two-factor", two_factor),
            ("Password", html.A("Change your password", href="/account/password", id="account-password-link"))]
    return html.Div([
        html.H3("Your account", className="mb-3"),
        dbc.Card(dbc.CardBody(html.Table(
            html.Tbody([html.Tr([html.Th(label, className="pe-4 fw-normal text-muted"), html.Td(value)])
                        for label, value in rows]),
            className="table table-sm mb-0")), style={"maxWidth": "44rem"}),
    ])


page(__name__, path="/account", title="Account", audience="any", layout=layout, order=99)
