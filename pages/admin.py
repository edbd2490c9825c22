"""Admin: users (create, edit role/scopes/active, unlock, reset MFA, send a reset link, deactivate), the
audit log with a filter and CSV export, and data freshness.

Every change goes through :mod:`dashboard.auth.service` (which audits it); the registry lets only admins
reach these callbacks, so none of them checks a role itself.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import sqlalchemy as sa
from dash import Input, Output, State, dcc, html
from flask import current_app, request

from dashboard import access, admin, entities
from dashboard.auth import resets, service
from dashboard.errors import BadInput, DashboardError
from dashboard.ui.context import app_db, report_cache, warehouse
from dashboard.ui.registry import callback, page

ROLE_OPTIONS = [{"label": r.replace("_", " "), "value": r} for r in access.ROLES]


def _grid(frame, grid_id, height=360):
    return dag.AgGrid(id=grid_id, rowData=_records(frame),
                      columnDefs=[{"field": c, "filter": True, "sortable": True, "resizable": True}
                                  for c in frame.columns],
                      defaultColDef={"flex": 1, "minWidth": 110}, style={"height": f"{height}px"},
                      dashGridOptions={"pagination": True, "paginationPageSize": 25}, className="ag-theme-alpine")


def _records(frame) -> list[dict]:
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _entity_options() -> tuple[list[dict], list[dict]]:
    """The practices and employers that exist (:mod:`dashboard.entities`: what the filter bars and the CLI
    offer, so a tenant that arrived only in the facts can be granted); none when there is no warehouse."""
    try:
        with warehouse().connect() as conn:
            known = entities.known(conn, report_cache())
    except (DashboardError, sa.exc.SQLAlchemyError):
        return [], []
    return known.options("practice"), known.options("employer")


def _user_options() -> list[dict]:
    return [{"label": f"{u.email}{'' if u.is_active else ' (inactive)'}", "value": u.id}
            for u in service.list_users(app_db())]


def _labelled(label: str, component, field_id: str):
    return html.Div([dbc.Label(label, html_for=field_id, className="small mb-1"), component], className="mb-2")


def _scope_fields(prefix: str, practices: list[dict], employers: list[dict]) -> list:
    return [
        # A native select: one choice from four needs no search box, and keyboards and screen readers know it.
        _labelled("Role", dbc.Select(id=f"{prefix}-role", options=ROLE_OPTIONS, placeholder="Choose a role"),
                  f"{prefix}-role"),
        _labelled("Practices (practice managers)", dcc.Dropdown(id=f"{prefix}-practices", options=practices,
                                                                multi=True), f"{prefix}-practices"),
        _labelled("Employers (employer admins)", dcc.Dropdown(id=f"{prefix}-employers", options=employers,
                                                              multi=True), f"{prefix}-employers"),
    ]


def _create_form(practices, employers) -> dbc.Card:
    return dbc.Card(dbc.CardBody([
        html.H6("Create a user"),
        _labelled("Email", dbc.Input(id="admin-new-email", type="email", autocomplete="off"), "admin-new-email"),
        *_scope_fields("admin-new", practices, employers),
        _labelled("Initial password", dbc.Input(id="admin-new-password", type="password",
                                                autocomplete="new-password"), "admin-new-password"),
        dbc.Checkbox(id="admin-new-invite", value=True, className="mb-2 small",
                     label="Send a reset link instead (they choose their own password)"),
        dbc.Button("Create user", id="admin-create", color="primary", size="sm"),
    ]), className="h-100")


def _edit_form(practices, employers) -> dbc.Card:
    return dbc.Card(dbc.CardBody([
        html.H6("Change a user"),
        _labelled("User", dcc.Dropdown(id="admin-edit-user", options=_user_options()), "admin-edit-user"),
        *_scope_fields("admin-edit", practices, employers),
        dbc.Checkbox(id="admin-edit-active", value=True, label="Active", className="mb-2 small"),
        html.Div([
            dbc.Button("Save", id="admin-save", color="primary", size="sm", className="me-2 mb-1"),
            dbc.Button("Unlock", id="admin-unlock", color="secondary", outline=True, size="sm", className="me-2 mb-1"),
            dbc.Button("Reset MFA", id="admin-reset-mfa", color="secondary", outline=True, size="sm",
                       className="me-2 mb-1"),
            dbc.Button("Send reset link", id="admin-send-link", color="secondary", outline=True, size="sm",
                       className="me-2 mb-1"),
            dbc.Button("Deactivate", id="admin-deactivate", color="danger", outline=True, size="sm",
                       className="mb-1"),
        ]),
    ]), className="h-100")


def layout(scope, **_):
    try:
        loads, tables = admin.data_freshness(warehouse())
        freshness = dbc.Row([dbc.Col(_grid(loads, "admin-loads", 220), md=7),
                             dbc.Col(_grid(tables, "admin-tables", 220), md=5)])
    except DashboardError as exc:
        freshness = dbc.Alert(str(exc), color="warning")
    practices, employers = _entity_options()
    actions = [{"label": a, "value": a} for a in service.audit_actions(app_db())]
    return html.Div([
        html.H3("Administration", className="mb-3"),
        html.H5("Data freshness"), freshness,
        html.H5("Users", className="mt-4"), _grid(admin.users_frame(app_db()), "admin-users", 300),
        html.Div(id="admin-feedback", className="mt-2"),
        dbc.Row([dbc.Col(_create_form(practices, employers), md=6),
                 dbc.Col(_edit_form(practices, employers), md=6)], className="g-3 mt-1"),
        html.Div([html.H5("Audit log", className="mt-4 mb-0"),
                  html.Div([dcc.Dropdown(id="admin-audit-action", options=actions, placeholder="All actions",
                                         style={"minWidth": "16rem"}, className="me-2"),
                            html.A("Download CSV", href="/admin/audit.csv", id="audit-csv",
                                   className="btn btn-sm btn-outline-primary")], className="d-flex")],
                 className="d-flex justify-content-between align-items-end mb-2"),
        _grid(admin.audit_frame(app_db(), limit=500), "admin-audit", 420),
    ])


page(__name__, path="/admin", title="Admin", audience="admin", layout=layout, order=90)


@callback(Output("admin-edit-role", "value"), Output("admin-edit-practices", "value"),
          Output("admin-edit-employers", "value"), Output("admin-edit-active", "value"),
          Input("admin-edit-user", "value"), audience="admin", prevent_initial_call=True)
def fill_edit_form(scope, user_id):
    try:
        user = _user(user_id)
    except BadInput:
        return None, [], [], True
    return user.role, list(user.practice_ids), list(user.employer_ids), user.is_active


def _checked_scopes(practices, employers) -> tuple[list[str], list[str]]:
    """The chosen ids, each one known to the warehouse (a forged id is refused, not stored)."""
    practice_options, employer_options = _entity_options()
    known_practices = {o["value"] for o in practice_options}
    known_employers = {o["value"] for o in employer_options}
    for pid in practices or []:
        if pid not in known_practices:
            raise BadInput(f"unknown practice {pid!r}")
    for eid in employers or []:
        if eid not in known_employers:
            raise BadInput(f"unknown employer {eid!r}")
    return list(practices or []), list(employers or [])


def _create(scope, form) -> str:
    practices, employers = _checked_scopes(form["new_practices"], form["new_employers"])
    invite = bool(form["invite"])
    if invite:  # refuse before creating an account nobody could ever log in to
        resets.link_base(current_app.extensions["dashboard"].settings)
    # An invited user gets a random password nobody knows until they choose their own through the link.
    password = secrets.token_urlsafe(32) if invite else (form["password"] or "")
    user = service.create_user(app_db(), email=form["email"] or "", password=password, role=form["new_role"] or "",
                               practices=practices, employers=employers, actor=scope.email, ip=request.remote_addr)
    if invite:
        resets.send_reset_link(app_db(), current_app.extensions["dashboard"].settings, email=user.email,
                               ip=request.remote_addr, actor=scope.email)
        return f"Created {user.email}; a link to choose a password has been sent."
    return f"Created {user.email}."


def _user(value) -> service.AppUser:
    try:
        user = service.get_user(app_db(), user_id=int(value)) if value else None
    except (TypeError, ValueError):
        user = None
    if user is None:
        raise BadInput("choose a user first")
    return user


def _selected(form) -> service.AppUser:
    return _user(form["user_id"])


def _save(scope, form) -> str:
    user = _selected(form)
    practices, employers = _checked_scopes(form["edit_practices"], form["edit_employers"])
    service.update_user(app_db(), user_id=user.id, role=form["edit_role"] or "", practices=practices,
                        employers=employers, active=bool(form["active"]), actor=scope.email, ip=request.remote_addr)
    return f"Saved {user.email}."


def _unlock(scope, form) -> str:
    user = _selected(form)
    service.unlock(app_db(), user_id=user.id, actor=scope.email, ip=request.remote_addr)
    return f"Unlocked {user.email}."


def _reset_mfa(scope, form) -> str:
    user = _selected(form)
    service.reset_mfa(app_db(), user_id=user.id, actor=scope.email, ip=request.remote_addr)
    return f"Two-factor authentication of {user.email} is reset; they set it up again at their next login."


def _send_link(scope, form) -> str:
    user = _selected(form)
    if not resets.send_reset_link(app_db(), current_app.extensions["dashboard"].settings, email=user.email,
                                  ip=request.remote_addr, actor=scope.email):
        raise BadInput(f"{user.email} is inactive; activate the account first")
    return f"A reset link has been sent to {user.email}."


def _deactivate(scope, form) -> str:
    user = _selected(form)
    service.deactivate_user(app_db(), user_id=user.id, actor=scope.email, ip=request.remote_addr)
    return f"Deactivated {user.email}; their sessions have ended."


ACTIONS = {"admin-create": _create, "admin-save": _save, "admin-unlock": _unlock, "admin-reset-mfa": _reset_mfa,
           "admin-send-link": _send_link, "admin-deactivate": _deactivate}


@callback(Output("admin-feedback", "children"), Output("admin-users", "rowData"),
          Output("admin-edit-user", "options"),
          inputs={"clicks": [Input(button, "n_clicks") for button in ACTIONS]},
          state={"form": {
              "email": State("admin-new-email", "value"), "new_role": State("admin-new-role", "value"),
              "new_practices": State("admin-new-practices", "value"),
              "new_employers": State("admin-new-employers", "value"),
              "password": State("admin-new-password", "value"), "invite": State("admin-new-invite", "value"),
              "user_id": State("admin-edit-user", "value"), "edit_role": State("admin-edit-role", "value"),
              "edit_practices": State("admin-edit-practices", "value"),
              "edit_employers": State("admin-edit-employers", "value"),
              "active": State("admin-edit-active", "value")}},
          audience="admin", prevent_initial_call=True)
def user_action(scope, clicks, form):
    action = ACTIONS.get(dash.ctx.triggered_id)
    if action is None or not any(clicks):
        raise dash.exceptions.PreventUpdate
    try:
        message, color = action(scope, form), "success"
    except DashboardError as exc:  # the admin sees why (weak password, unknown practice, own account, ...)
        text = str(exc)  # first letter up only: capitalize() would lower names such as DASHBOARD_PUBLIC_URL
        message, color = text[:1].upper() + text[1:] + ".", "danger"
    return (dbc.Alert(message, color=color, id="admin-feedback-alert", className="py-2"),
            _records(admin.users_frame(app_db())), _user_options())


@callback(Output("admin-audit", "rowData"), Output("audit-csv", "href"), Input("admin-audit-action", "value"),
          Input("admin-feedback", "children"), audience="admin", prevent_initial_call=True)
def filter_audit(scope, action, _feedback):
    frame = admin.audit_frame(app_db(), limit=500, action=action or None)
    return _records(frame), "/admin/audit.csv" + (f"?{urlencode({'action': action})}" if action else "")
