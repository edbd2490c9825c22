"""HTTP concerns: the login gate in front of every path, CSRF on Dash callbacks, security headers,
the CSV export route, /healthz and error pages without stack traces."""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
from flask import (
    Flask,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    stream_with_context,
)
from flask_login import current_user

from dashboard import access, exports, reports
from dashboard.auth import service, views
from dashboard.errors import DashboardError, NotAuthenticated
from dashboard.ui import registry

log = logging.getLogger(__name__)

# Exactly these paths are public (no prefixes: a prefix rule is what "/assets/vendor/../x" slipped through).
PUBLIC_PATHS = frozenset({"/login", "/login/mfa", "/healthz", "/forgot", "/favicon.ico",
                          "/assets/vendor/bootstrap.min.css"})  # the login pages' stylesheet
PUBLIC_PATTERNS = (re.compile(r"/reset/[A-Za-z0-9_-]{1,128}"),)  # one segment: the reset token
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
MFA_ENROLMENT_PATHS = {"/account/mfa", "/logout"}
# In the raw request line: an encoded slash, backslash or NUL changes a path's meaning after decoding.
_ENCODED_SEPARATOR = re.compile(r"%(2f|5c|00)", re.IGNORECASE)


def canonical_path(environ: dict) -> str | None:
    """The request's path as the application routes it, or None when it is not in canonical form:
    encoded slashes, backslashes or NUL; double percent-encoding; control characters; dot segments;
    empty segments (``//``); or a raw path that does not decode to the one Flask routes on.

    Decided on the raw request line (REQUEST_URI / RAW_URI, which waitress, gunicorn and Werkzeug pass
    on), because PATH_INFO has already been decoded once and no longer shows what was encoded."""
    routed = environ.get("PATH_INFO", "")
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw is None:
        decoded = routed
    else:
        if not raw.startswith("/"):  # absolute-form request line: http://host/path
            raw = urlsplit(raw).path or "/"
        raw = raw.split("?", 1)[0].split("#", 1)[0]
        if _ENCODED_SEPARATOR.search(raw):
            return None
        try:
            decoded = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            return None
        script = environ.get("SCRIPT_NAME", "")
        if script and decoded.startswith(script):
            decoded = decoded[len(script):]
        # PATH_INFO is the decoded bytes as latin-1 (PEP 3333); compare like with like.
        try:
            routed = routed.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return None
        if decoded != routed:
            return None
    if not decoded.startswith("/") or "%" in decoded or "\\" in decoded \
            or any(ord(c) < 0x20 or ord(c) == 0x7F for c in decoded):
        return None
    segments = decoded.split("/")[1:]
    if any(s in (".", "..") for s in segments) or any(s == "" for s in segments[:-1]):
        return None
    return decoded


def _is_public(path: str | None) -> bool:
    if path is None:
        return False
    return path in PUBLIC_PATHS or any(p.fullmatch(path) for p in PUBLIC_PATTERNS)


def _wants_html() -> bool:
    return request.method == "GET" and not request.path.startswith(("/_dash", "/export")) \
        and not request.path.endswith(".csv")


def _csrf_refused():
    if request.path.startswith("/_dash"):
        return Response("CSRF token missing or wrong\n", status=403, mimetype="text/plain")
    return render_template("message.html", title="Please try again", link=request.path,
                           error="Your form expired. Reload the page and try again."), 400


def gate():
    """Deny by default: every path but the public ones needs a live session; every state-changing request
    needs the session's CSRF token (form field ``csrf_token`` or header ``X-CSRFToken``)."""
    changes_state = request.method in STATE_CHANGING
    path = canonical_path(request.environ)
    if _is_public(path):
        if changes_state and not views.csrf_valid(request.form.get("csrf_token")):
            return _csrf_refused()
        return None
    if not current_user.is_authenticated:
        if path is None:  # never echo a malformed path back into ?next=
            return redirect("/login") if request.method == "GET" else \
                Response("authentication required\n", status=401, mimetype="text/plain")
        if _wants_html():
            if request.path == "/logout":  # already out: coming back to "Log out?" after login would confuse
                return redirect("/login")
            return redirect(f"/login?next={request.full_path.rstrip('?')}")
        return Response("authentication required\n", status=401, mimetype="text/plain")
    expired = views.session_expired()
    if expired:
        service.audit(current_app.extensions["dashboard"].app_db, "session.expired", user_id=current_user.id,
                      email=current_user.email, ip=views.client_ip(), detail={"reason": expired})
        views.end_session(expired)
        if _wants_html():
            return redirect("/login")
        return Response("session expired\n", status=401, mimetype="text/plain")
    if path is None:  # a browser never sends one; routing it could reach what the gate did not check
        return Response("not found\n", status=404, mimetype="text/plain")
    if changes_state and not views.csrf_valid(request.headers.get("X-CSRFToken")
                                              or request.form.get("csrf_token")):
        return _csrf_refused()
    if current_app.extensions["dashboard"].settings.require_mfa and not current_user.mfa_enabled \
            and request.path not in MFA_ENROLMENT_PATHS:
        # Mandatory MFA: a password-only session reaches the enrolment form and nothing else.
        if _wants_html():
            return redirect("/account/mfa")
        return Response("two-factor enrolment required\n", status=403, mimetype="text/plain")
    if changes_state and request.path == "/_dash-update-component":
        output = (request.get_json(silent=True) or {}).get("output", "")
        dash_app = current_app.extensions["dashboard"].dash_app
        # Declared server callbacks only: a client-side callback's output has no server function to run.
        if not registry.is_registered_output(dash_app, output) or "callback" not in dash_app.callback_map[output]:
            return Response("unknown callback\n", status=403, mimetype="text/plain")
    views.touch_session()
    if request.path == "/" and request.method == "GET":
        pages = [p for p in registry.nav_pages(current_user.scope()) if p.path != "/reports"]
        if pages:
            return redirect(pages[0].path)
    return None


def security_headers(response: Response) -> Response:
    services = current_app.extensions["dashboard"]
    response.headers.setdefault("Content-Security-Policy", services.csp)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = response.headers.get("Cache-Control", "no-store")
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if request.is_secure:
        response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    if current_user.is_authenticated and "csrf" in session:
        # dash-renderer reads this cookie and echoes it in the X-CSRFToken header.
        response.set_cookie(views.CSRF_COOKIE, session["csrf"], secure=services.settings.secure_cookies,
                            httponly=False, samesite="Strict")
    return response


def export_report(name: str):
    """GET /export/<name>.csv?from=YYYY-MM&to=YYYY-MM&practice=ID&employer=ID and the grid's column filters
    (payer=BCBS&age_days.gt=90, see dashboard.paging.filters_from_query), streamed."""
    from dashboard.ui import grids  # the grid's columns and their filter kinds

    services = current_app.extensions["dashboard"]
    scope = access.current_scope()
    access.require_audience(scope, reports.get_report(name).audience)  # before saying anything of its columns
    filters = grids.query_filters(reports.get_report(name), request.args.to_dict(), deidentified=scope.deidentified)
    result = reports.export_report(
        name, scope=scope, engine=services.warehouse(), start=request.args.get("from"),
        end=request.args.get("to"), practice=request.args.getlist("practice") or None,
        employer=request.args.getlist("employer") or None, filters=filters, cache=services.report_cache,
        options={k: request.args[k] for k in reports.get_report(name).options if k in request.args},
    )
    service.audit(services.app_db, "export", user_id=scope.user_id, email=scope.email, ip=views.client_ip(),
                  detail={"report": name, "from": f"{result.filters.start:%Y-%m}", "to": f"{result.filters.end:%Y-%m}",
                          "practices": list(result.filters.practice_ids or []),
                          "employers": list(result.filters.employer_ids or []), "rows": result.rows,
                          "column_filters": sorted(f.column for f in filters),
                          **({"options": dict(result.filters.options)} if result.filters.options else {})})
    filename = f"{name}_{result.filters.start:%Y-%m}_{result.filters.end:%Y-%m}.csv"
    return Response(stream_with_context(result.body), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def healthz():
    services = current_app.extensions["dashboard"]
    status = {"app_db": "ok", "warehouse": "ok"}
    code = 200
    try:
        with services.app_db.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        status["app_db"], code = "unavailable", 503
    try:
        with services.warehouse().connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except (DashboardError, sa.exc.SQLAlchemyError):
        status["warehouse"], code = "unavailable", 503
    return jsonify(status), code


def _error_response(message: str, status: int):
    if request.path.startswith(("/_dash", "/export")) or request.accept_mimetypes.best == "text/csv":
        return Response(message + "\n", status=status, mimetype="text/plain")
    return render_template("message.html", title="Something is not right", error=message), status


def too_many_requests(_exc):
    return _error_response("Too many attempts from your address; wait a minute and try again.", 429)


def handle_dashboard_error(exc: DashboardError):
    if isinstance(exc, NotAuthenticated) and _wants_html():
        return redirect("/login")
    return _error_response(str(exc), exc.http_status)


def handle_unexpected(exc: Exception):
    from werkzeug.exceptions import HTTPException

    if isinstance(exc, HTTPException):
        return exc
    # The type and path only: exception text may quote data.
    log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.path)
    return _error_response("Something went wrong on our side; the error has been logged.", 500)


def init_app(app: Flask) -> None:
    app.before_request(gate)
    app.after_request(security_headers)
    app.add_url_rule("/healthz", "healthz", healthz)
    app.add_url_rule("/export/<name>.csv", "export", export_report)
    app.add_url_rule("/admin/audit.csv", "export_audit", export_audit)
    app.register_error_handler(429, too_many_requests)
    app.register_error_handler(DashboardError, handle_dashboard_error)
    app.register_error_handler(Exception, handle_unexpected)


def export_audit():
    """GET /admin/audit.csv: the audit log, admins only."""
    from dashboard import admin

    services = current_app.extensions["dashboard"]
    scope = access.current_scope()
    access.require_audience(scope, "admin")
    frame = admin.audit_frame(services.app_db, limit=1_000_000, action=request.args.get("action") or None)
    service.audit(services.app_db, "export", user_id=scope.user_id, email=scope.email, ip=views.client_ip(),
                  detail={"report": "audit-log", "rows": len(frame)})
    return Response(stream_with_context(exports.iter_csv(frame)), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="audit-log.csv"'})
