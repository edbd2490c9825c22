"""The application factory: ``create_app(test_config)`` wires settings, the app DB, auth, the HTTP
gate and the Dash pages (from the top-level ``pages/`` folder) onto one Flask server."""

from __future__ import annotations

import datetime as dt
import importlib.util
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dash
import dash_bootstrap_components as dbc
import sqlalchemy as sa
from dash import dcc, html
from flask import Flask
from sqlalchemy.engine import Engine

from dashboard import files, web
from dashboard.auth import service as auth_service
from dashboard.auth import views as auth_views
from dashboard.config import Settings, load_settings, site_dir
from dashboard.report_cache import RedisTier, ReportCache
from dashboard.ui import registry
from dashboard.warehouse.engine import duckdb_path, reader_engine

PAGES_DIR = site_dir("pages")  # top-level pages/ in a checkout; <prefix>/share/dashboard/pages when installed


def import_pages(folder: Path) -> None:
    """Import every page module once per process; each declares itself through dashboard.ui.registry."""
    for path in sorted(folder.glob("*.py")):
        name = f"pages.{path.stem}"
        if path.stem.startswith("_") or name in sys.modules:
            continue
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)


@dataclass
class Services:
    """What request handlers need, kept on ``app.extensions['dashboard']``."""

    settings: Settings
    app_db: Engine
    dash_app: Any = None
    report_cache: ReportCache | None = None
    _warehouse: Engine | None = field(default=None, repr=False)

    @property
    def csp(self) -> str:
        """Content-Security-Policy: scripts only from us plus the hashes of Dash's inline scripts
        (known once Dash has set itself up, in create_app); plotly needs 'unsafe-eval'."""
        hashes = " ".join(self.dash_app.csp_hashes()) if self.dash_app is not None else ""
        return (
            "default-src 'self'; "
            f"script-src 'self' {hashes} 'unsafe-eval'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
            "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'; object-src 'none'"
        )

    def warehouse(self) -> Engine:
        if self._warehouse is None:
            self._warehouse = reader_engine(self.settings.warehouse_url)
        return self._warehouse


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for in-memory SQLite and other backends."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def _app_db_engine(url: str) -> Engine:
    path = sqlite_path(url)
    if path is not None:
        files.private_dir(path.parent)
        if not path.exists():
            # Created empty as 600 before SQLite opens it: it will hold password hashes and TOTP secrets.
            # SQLite gives its -journal and -wal files the database file's mode.
            files.open_private(path, mode="wb", exclusive=True).close()
        files.make_private(path, companions=files.SQLITE_COMPANIONS)
    return sa.create_engine(url, pool_pre_ping=True)


def _data_as_of_badge(scope):
    """'Data as of …' per load source, so nobody mistakes stale numbers for today's; only loads that
    touched the viewer's practices or employers (another tenant's load date is theirs alone)."""
    from flask import current_app

    from dashboard import reports
    from dashboard.errors import DashboardError

    services = current_app.extensions["dashboard"]
    try:
        freshness = reports.freshness(scope=scope, engine=services.warehouse(), cache=services.report_cache)
    except (DashboardError, sa.exc.SQLAlchemyError):
        return html.Span("No warehouse loaded", className="badge bg-warning text-dark me-3", id="data-as-of")
    if not freshness:
        return html.Span("No data loaded", className="badge bg-warning text-dark me-3", id="data-as-of")
    text = " · ".join(f"{source} {day:%Y-%m-%d}" for source, day in freshness.items())
    return html.Span(f"Data as of: {text}", className="navbar-text small me-3", id="data-as-of")


def _logout_form() -> html.Form:
    """Log out is a POST carrying the session's CSRF token, so no other site can log a user out."""
    return html.Form([
        dcc.Input(type="hidden", name="csrf_token", value=auth_views.csrf_token()),
        html.Button("Log out", type="submit", id="nav-logout", className="btn btn-link nav-link"),
    ], method="POST", action="/logout", className="d-flex")


def _shell() -> html.Div:
    """The frame around every page: navbar (by role) and the page container."""
    from dashboard import access

    try:
        scope = access.current_scope()
    except Exception:  # the gate already sent anonymous users to /login
        scope = None
    links = []
    if scope is not None:
        links = [dbc.NavItem(dbc.NavLink(p.title, href=p.path, active="exact")) for p in registry.nav_pages(scope)]
    right = []
    if scope is not None:
        who = f"{scope.email} · {scope.role.replace('_', ' ')}"
        right = [dbc.NavItem(_data_as_of_badge(scope)),
                 dbc.NavItem(html.Span(who, className="navbar-text small me-3", id="nav-user")),
                 dbc.NavItem(_logout_form())]
    # under 768 px the links fold behind a menu button (expand="md"); the button opens them (a browser callback)
    navbar = dbc.Navbar(
        dbc.Container([
            dbc.NavbarBrand("Claims Analytics", href="/"),
            dbc.NavbarToggler([html.Span(className="navbar-toggler-icon"),
                               html.Span("Menu", className="visually-hidden")], id="nav-toggle", n_clicks=0),
            dbc.Collapse([
                dbc.Nav(links, navbar=True, className="me-auto"),
                dbc.Nav(right, navbar=True),
            ], id="nav-collapse", is_open=False, navbar=True),
        ], fluid=True),
        color="dark", dark=True, expand="md", className="mb-3",
    )
    return html.Div([navbar, dbc.Container(dash.page_container, fluid=True), dcc.Store(id="session-touch")])


registry.clientside("function(clicks, open) { return clicks ? !open : open; }",
                    dash.Output("nav-collapse", "is_open"), dash.Input("nav-toggle", "n_clicks"),
                    dash.State("nav-collapse", "is_open"), prevent_initial_call=True)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    # The app's own process creates private files only (data, journals, mail, uploads); see dashboard.files.
    files.restrict_umask()
    settings = load_settings(test_config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Files left readable by an older version (or copied in) are made private, with a warning each.
    files.secure_data_dir(settings.data_dir, extra_files=(sqlite_path(settings.app_db_url),
                                                          duckdb_path(settings.warehouse_url)))
    server = Flask(__name__)
    server.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=settings.session_lifetime_hours),
        TESTING=settings.testing,
        PROPAGATE_EXCEPTIONS=False,
    )
    if settings.proxy_hops:  # client IP (rate limits, audit) and HTTPS (HSTS) as the proxy saw them
        from werkzeug.middleware.proxy_fix import ProxyFix

        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops)
    app_db = _app_db_engine(settings.app_db_url)
    auth_service.create_tables(app_db)
    shared = None
    if settings.redis_url and settings.report_cache_entries > 0:  # frames shared by every worker (aggregates only)
        shared = RedisTier(settings.redis_url, secret=settings.secret_key, prefix=settings.report_cache_prefix,
                           ttl_seconds=settings.report_cache_ttl_seconds, max_bytes=settings.report_cache_max_bytes)
    services = Services(settings=settings, app_db=app_db,
                        report_cache=ReportCache(settings.report_cache_entries, shared=shared))
    server.extensions["dashboard"] = services

    auth_views.init_app(server)
    web.init_app(server)

    dash_app = dash.Dash(
        __name__, server=server, use_pages=True, pages_folder="",
        assets_folder=str(site_dir("assets")), suppress_callback_exceptions=True,
        title="Claims Analytics", update_title=None, serve_locally=True,
    )
    # the page's language for screen readers and translation (Dash's default index has no lang)
    dash_app.index_string = dash_app.index_string.replace("<html>", '<html lang="en">', 1)
    dash_app.layout = _shell
    import_pages(PAGES_DIR)
    registry.register_callbacks(dash_app)
    # Dash sets itself up (registers the component-suite files it serves, merges callbacks, collects the CSP
    # hashes) on a process's first request, but marks that done before doing it: a worker's other threads then
    # answered suite files with DependencyException (500) on a cold start. Done here, once per process, first.
    dash_app._setup_server()
    services.dash_app = dash_app
    return server
