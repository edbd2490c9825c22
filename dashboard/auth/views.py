"""Login (password, then the second factor), logout, password reset, the account forms and the session
rules (server-side sessions, idle and absolute timeouts, CSRF), as a Flask blueprint with per-IP rate
limits on every form that checks a secret."""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from urllib.parse import urlparse

from flask import Blueprint, Flask, current_app, redirect, render_template, request, session
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user, login_user, logout_user

from dashboard.auth import mail, mfa, resets, service
from dashboard.errors import AccessDenied, AccountLocked, BadInput

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.session_protection = None  # sessions are bound by our own version, session row and timeouts

CSRF_COOKIE = "_csrf_token"  # the name dash-renderer reads and sends back as X-CSRFToken
MFA_PENDING_SECONDS = 300  # the password step is good for this long while the code is typed
RESET_SENT = ("If an account exists for that address, we have sent it a link to choose a new password. "
              "The link works once, for a limited time.")
# endpoint -> which rate-limit setting applies to its POSTs
RATE_LIMITED = {"auth.login": "login", "auth.login_mfa": "login", "auth.change_password": "login",
                "auth.account_mfa": "login", "auth.account_mfa_disable": "login",
                "auth.forgot": "reset", "auth.reset_password": "reset"}


def services():
    return current_app.extensions["dashboard"]


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csrf_valid(supplied: str | None) -> bool:
    expected = session.get("csrf")
    return bool(expected and supplied and hmac.compare_digest(expected, supplied))


def client_ip() -> str | None:
    return request.remote_addr


def _now() -> float:
    return dt.datetime.now(dt.UTC).timestamp()


def _safe_next(target: str | None) -> str:
    if not target:
        return "/"
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _page(template: str, status: int = 200, **context):
    return render_template(template, csrf_token=csrf_token(), **context), status


@login_manager.user_loader
def _load_user(login_id: str):
    settings = services().settings
    return service.load_session_user(services().app_db, login_id, session_id=session.get("sid"),
                                     idle_minutes=settings.idle_timeout_minutes,
                                     lifetime_hours=settings.session_lifetime_hours)


# --- login: password, then (when enrolled) the second factor ------------------------------------------

@bp.route("/login", methods=["GET", "POST"])
def login():
    next_url = _safe_next(request.args.get("next"))
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(next_url)
        return _page("login.html", title="Log in", next=next_url)
    settings = services().settings
    email = request.form.get("email", "")
    try:
        user = service.authenticate(services().app_db, email=email, password=request.form.get("password", ""),
                                    max_attempts=settings.lockout_attempts,
                                    lockout_minutes=settings.lockout_minutes, ip=client_ip())
    except AccessDenied as exc:
        return _page("login.html", 401, title="Log in", next=next_url, email=email,
                     error=str(exc).capitalize() + ".")
    if user.mfa_enabled:
        _begin_mfa_step(user, next_url)
        return redirect("/login/mfa")
    start_session(user)
    service.audit(services().app_db, "login.success", user_id=user.id, email=user.email, ip=client_ip(),
                  detail={"mfa": "none"})
    return redirect(next_url)


def _begin_mfa_step(user: service.AppUser, next_url: str) -> None:
    """Remember who passed the password step; nobody is logged in until the code verifies."""
    service.end_session(services().app_db, session_id=session.get("sid"), reason="rotated")
    session.clear()
    session["mfa_pending"] = {"user": user.id, "version": user.session_version, "at": _now(), "next": next_url}
    session["csrf"] = secrets.token_urlsafe(32)
    service.audit(services().app_db, "login.mfa_challenge", user_id=user.id, email=user.email, ip=client_ip())


def _pending_mfa() -> dict | None:
    pending = session.get("mfa_pending")
    if not isinstance(pending, dict) or _now() - float(pending.get("at", 0)) > MFA_PENDING_SECONDS:
        return None
    return pending


@bp.route("/login/mfa", methods=["GET", "POST"])
def login_mfa():
    pending = _pending_mfa()
    if pending is None:
        session.pop("mfa_pending", None)
        return redirect("/login")
    if request.method == "GET":
        return _page("mfa.html", title="Two-factor check")
    settings = services().settings
    try:
        user, method = mfa.verify_second_factor(
            services().app_db, user_id=pending["user"], code=request.form.get("code", ""),
            secret_key=settings.secret_key, max_attempts=settings.lockout_attempts,
            lockout_minutes=settings.lockout_minutes, ip=client_ip())
    except AccountLocked as exc:
        session.pop("mfa_pending", None)
        return _page("login.html", 401, title="Log in", error=str(exc).capitalize() + ".")
    except AccessDenied as exc:
        return _page("mfa.html", 401, title="Two-factor check", error=str(exc).capitalize() + ".")
    if user.session_version != pending["version"]:  # the password changed in between: start again
        session.pop("mfa_pending", None)
        return redirect("/login")
    start_session(user)
    service.audit(services().app_db, "login.success", user_id=user.id, email=user.email, ip=client_ip(),
                  detail={"mfa": method})
    return redirect(_safe_next(pending.get("next")))


def start_session(user: service.AppUser) -> None:
    """Log the user in on a fresh session: a new server-side session id (the browser's previous one is
    revoked), new CSRF token, new timestamps. Rotation defeats session fixation."""
    session_id = service.open_login_session(services().app_db, user_id=user.id, ip=client_ip(),
                                            replaces=session.get("sid"))
    session.clear()
    login_user(user)
    now = _now()
    session["sid"] = session_id
    session["login_at"] = now
    session["seen_at"] = now
    session["csrf"] = secrets.token_urlsafe(32)
    session.permanent = True


def end_session(reason: str) -> None:
    """Revoke the server-side session and forget the cookie's contents."""
    service.end_session(services().app_db, session_id=session.get("sid"), reason=reason)
    logout_user()
    session.clear()


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    # Only a POST with the CSRF token (checked by the gate) logs out: a link or image on another site
    # must not be able to end a user's session. GET asks for confirmation (the gate sends anonymous
    # visitors to /login before they get here).
    if request.method == "GET":
        return _page("logout.html", title="Log out")
    if current_user.is_authenticated:
        service.audit(services().app_db, "logout", user_id=current_user.id, email=current_user.email,
                      ip=client_ip())
    end_session("logout")
    return redirect("/login")


def session_expired() -> str | None:
    """'idle' or 'lifetime' when the logged-in session is too old; None when it may go on."""
    settings = services().settings
    now = _now()
    seen = session.get("seen_at")
    started = session.get("login_at")
    if seen is None or started is None:
        return "idle"
    if now - seen > settings.idle_timeout_minutes * 60:
        return "idle"
    if now - started > settings.session_lifetime_hours * 3600:
        return "lifetime"
    return None


def touch_session() -> None:
    session["seen_at"] = _now()


# --- forgotten password -------------------------------------------------------------------------------

@bp.route("/forgot", methods=["GET", "POST"])
def forgot():
    if not resets.links_configured(services().settings):
        # Same answer for every address (no account enumeration), and nothing is created or sent.
        return _page("message.html", 503, title="Reset your password",
                     error=resets.LINKS_NOT_CONFIGURED[0].upper() + resets.LINKS_NOT_CONFIGURED[1:] + ". "
                     "Ask your administrator to set a new password for you.", link="/login", link_text="Back to log in")
    if request.method == "GET":
        return _page("forgot.html", title="Reset your password")
    try:
        resets.send_reset_link(services().app_db, services().settings, email=request.form.get("email", ""),
                               ip=client_ip())
    except resets.MailNotSent:
        pass  # logged and audited; the answer must not reveal whether the account exists
    return _page("message.html", title="Check your e-mail", message=RESET_SENT, link="/login",
                 link_text="Back to log in")


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    engine = services().app_db
    try:
        user = resets.check_token(engine, token=token)
    except AccessDenied as exc:
        return _page("message.html", 400, title="Reset your password", error=str(exc).capitalize() + ".",
                     link="/forgot", link_text="Ask for a new link")
    if request.method == "GET":
        return _page("reset.html", title="Choose a new password", email=user.email, token=token)
    new = request.form.get("password", "")
    if new != request.form.get("confirm", ""):
        return _page("reset.html", 400, title="Choose a new password", email=user.email, token=token,
                     error="The two passwords are not the same.")
    try:
        resets.complete_reset(engine, token=token, new_password=new, ip=client_ip())
    except BadInput as exc:
        return _page("reset.html", 400, title="Choose a new password", email=user.email, token=token,
                     error=str(exc).capitalize() + ".")
    except AccessDenied as exc:
        return _page("message.html", 400, title="Reset your password", error=str(exc).capitalize() + ".",
                     link="/forgot", link_text="Ask for a new link")
    end_session("password reset")  # whoever was logged in on this browser
    return _page("message.html", title="Password changed", link="/login", link_text="Log in",
                 message="Your password has been changed and every session of your account has ended.")


# --- the logged-in user's own account ------------------------------------------------------------------

@bp.route("/account/password", methods=["GET", "POST"])
def change_password():
    title = "Change your password"
    if request.method == "GET":
        return _page("account_password.html", title=title)
    new = request.form.get("password", "")
    if new != request.form.get("confirm", ""):
        return _page("account_password.html", 400, title=title, error="The two new passwords are not the same.")
    settings = services().settings
    try:
        user = service.change_password(services().app_db, user_id=current_user.id,
                                       current=request.form.get("current", ""), new=new,
                                       max_attempts=settings.lockout_attempts,
                                       lockout_minutes=settings.lockout_minutes, ip=client_ip())
    except AccountLocked as exc:
        return _locked_out(exc, title)
    except (AccessDenied, BadInput) as exc:
        return _page("account_password.html", 400, title=title, error=str(exc).capitalize() + ".")
    start_session(user)  # every session ended with the change; this browser goes on with a new one
    return _page("message.html", title="Password changed", link="/account", link_text="Back to your account",
                 message="Your password has been changed. Every other session of your account has ended.")


def _locked_out(exc: AccountLocked, title: str):
    """An account form refused for the lockout. When this failure locked the account every session of it
    has ended (the one asking may be stolen): this browser is logged out too."""
    if exc.sessions_ended:
        end_session("locked")
        return _page("message.html", 401, title=title, link="/login", link_text="Log in",
                     error=str(exc).capitalize() + ". Every session of the account has ended.")
    return _page("message.html", 400, title=title, link="/account", link_text="Back to your account",
                 error=str(exc).capitalize() + ".")


def _grouped(secret: str) -> str:
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


@bp.route("/account/mfa", methods=["GET", "POST"])
def account_mfa():
    engine, settings = services().app_db, services().settings
    title = "Two-factor authentication"
    if current_user.mfa_enabled:
        if request.method == "POST":
            return _page("message.html", 400, title=title, error="Two-factor authentication is already set up.",
                         link="/account/mfa", link_text="Back")
        return _page("mfa_manage.html", title=title, required=settings.require_mfa,
                     remaining=mfa.remaining_recovery_codes(engine, user_id=current_user.id))
    secret = mfa.begin_enrolment(engine, user_id=current_user.id, secret_key=settings.secret_key)
    status, error = 200, None
    if request.method == "POST":
        try:
            codes = mfa.confirm_enrolment(engine, user_id=current_user.id, code=request.form.get("code", ""),
                                          secret_key=settings.secret_key, ip=client_ip())
        except AccessDenied as exc:
            status, error = 400, str(exc).capitalize() + "."
        else:
            return _page("recovery_codes.html", title="Your recovery codes", codes=codes)
    uri = mfa.provisioning_uri(secret, email=current_user.email, issuer=settings.mfa_issuer)
    return _page("mfa_enrol.html", status, title=title, qr=mfa.qr_data_uri(uri), secret=_grouped(secret),
                 required=settings.require_mfa, error=error)


@bp.route("/account/mfa/disable", methods=["POST"])
def account_mfa_disable():
    engine, settings = services().app_db, services().settings
    title = "Two-factor authentication"
    if settings.require_mfa:
        return _page("message.html", 400, title=title, link="/account/mfa", link_text="Back",
                     error="Two-factor authentication is required here. If you lost your device, ask an admin "
                           "to reset it.")
    try:
        mfa.disable(engine, user_id=current_user.id, password=request.form.get("password", ""),
                    code=request.form.get("code", ""), secret_key=settings.secret_key,
                    max_attempts=settings.lockout_attempts, lockout_minutes=settings.lockout_minutes,
                    ip=client_ip())
    except AccountLocked as exc:
        return _locked_out(exc, title)
    except (AccessDenied, BadInput) as exc:
        return _page("mfa_manage.html", 400, title=title, required=False, error=str(exc).capitalize() + ".",
                     remaining=mfa.remaining_recovery_codes(engine, user_id=current_user.id))
    return _page("message.html", title=title, message="Two-factor authentication is off.", link="/account",
                 link_text="Back to your account")


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    app.register_blueprint(bp)
    settings = app.extensions["dashboard"].settings
    mail.use_settings(app.extensions["dashboard"].app_db, settings)  # account notices from this app's DB
    # One limiter per app (tests build many apps in one process). With Redis the counts are shared by every
    # worker; without it they are per process, and the lockout in the app DB still holds for all of them.
    limiter = Limiter(get_remote_address, app=app, storage_uri=settings.redis_url or "memory://",
                      key_prefix=settings.rate_limit_prefix, strategy="moving-window",
                      in_memory_fallback_enabled=True)
    rates = {"login": settings.login_rate_limit, "reset": settings.reset_rate_limit}
    for endpoint, kind in RATE_LIMITED.items():
        app.view_functions[endpoint] = limiter.limit(rates[kind], methods=["POST"])(app.view_functions[endpoint])
