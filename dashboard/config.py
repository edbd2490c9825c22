"""Settings from environment variables, in one place.

``create_app(test_config)`` and the CLI both start from :func:`load_settings`; tests pass overrides.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Running from a checkout (or an editable install of one), as opposed to an installed wheel.
IN_CHECKOUT = (PROJECT_ROOT / "pyproject.toml").is_file()


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError as exc:
        from dashboard.errors import BadInput

        raise BadInput(f"{name} must be a whole number, got {value!r}") from exc


def data_dir() -> Path:
    """DASHBOARD_DATA_DIR, else data/ in the checkout; an installed copy never writes into site-packages, so
    there the default is data/ in the working directory."""
    return Path(os.environ.get("DASHBOARD_DATA_DIR") or (PROJECT_ROOT if IN_CHECKOUT else Path.cwd()) / "data")


def site_dir(name: str) -> Path:
    """The top-level ``pages`` or ``assets`` folder: in the checkout, else where the wheel installed it
    (``<prefix>/share/dashboard/<name>``, found through the installed files' record)."""
    if IN_CHECKOUT:
        return PROJECT_ROOT / name
    from importlib import metadata

    try:
        dist = metadata.distribution("dashboard")
    except metadata.PackageNotFoundError:
        dist = None
    for entry in (dist.files or []) if dist is not None else []:
        parts = entry.parts
        for i in range(len(parts) - 2):
            if parts[i:i + 3] == ("share", "dashboard", name):
                return Path(dist.locate_file("/".join(parts[:i + 3]))).resolve()
    import sysconfig

    return Path(sysconfig.get_path("data")) / "share" / "dashboard" / name


def _secret_key(directory: Path) -> str:
    """DASHBOARD_SECRET_KEY, else a key generated once and kept in data/secret_key (git-ignored)."""
    configured = os.environ.get("DASHBOARD_SECRET_KEY")
    if configured:
        return configured
    path = directory / "secret_key"
    if path.exists():
        return path.read_text().strip()
    from dashboard.files import open_private, private_dir

    private_dir(directory)
    key = secrets.token_urlsafe(48)
    with open_private(path, exclusive=True) as handle:
        handle.write(key)
    return key


def checked_public_url(value: str | None) -> str | None:
    """DASHBOARD_PUBLIC_URL checked and without its trailing slash: the only base of links in e-mails
    (a request's Host header is chosen by whoever sends the request, so links never come from it)."""
    if value is None or not value.strip():
        return None
    from urllib.parse import urlsplit

    from dashboard.errors import BadInput

    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment \
            or parts.username or parts.password:
        raise BadInput(f"DASHBOARD_PUBLIC_URL must be like https://claims.example.org, got {value!r}")
    return value.rstrip("/")


@dataclass(frozen=True)
class Settings:
    warehouse_url: str
    app_db_url: str
    secret_key: str = field(repr=False)
    redis_url: str | None = None
    data_dir: Path = field(default_factory=data_dir)
    require_mfa: bool = False
    idle_timeout_minutes: int = 15
    session_lifetime_hours: int = 12
    lockout_attempts: int = 5
    lockout_minutes: int = 15
    login_rate_limit: str = "20 per minute"  # per client IP, on POST /login, /login/mfa and /account/*
    reset_rate_limit: str = "5 per minute"  # per client IP, on POST /forgot and POST /reset/<token>
    rate_limit_prefix: str = "dashboard"  # key prefix in the shared limit store (Redis)
    reset_token_minutes: int = 30
    mfa_issuer: str = "Claims Analytics"  # the name authenticator apps show
    # Secure cookies are sent over HTTPS only; browsers treat http://localhost and 127.0.0.1 as secure
    # too, so `make run` works with the default. Turn off only for plain HTTP to another host.
    secure_cookies: bool = True
    report_cache_entries: int = 128  # report frames kept per process (dashboard.report_cache); 0 turns it off
    # The shared tier of the report cache, in Redis when redis_url is set (aggregate frames only; see
    # dashboard.report_cache). TTL bounds how long an entry lives; larger entries stay per process.
    report_cache_ttl_seconds: int = 3600
    report_cache_max_bytes: int = 8 * 1024 * 1024
    report_cache_prefix: str = "dashboard"  # key prefix in Redis (tests and the load test use their own)
    # `dashboard serve`: gunicorn worker processes (0: 2 x cores, at most 8), threads per worker, and the
    # seconds a worker may stay silent before it is replaced.
    workers: int = 0
    threads: int = 4
    worker_timeout: int = 120
    # Base of links in e-mails (reset links). Never taken from a request: without it no link is sent.
    public_url: str | None = None
    proxy_hops: int = 0  # reverse proxies in front that set X-Forwarded-For/-Proto (client IP, HTTPS)
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_starttls: bool = True  # ignored on port 465, which speaks TLS from the start
    mail_from: str = "dashboard@localhost"
    testing: bool = False

    def with_overrides(self, overrides: dict[str, Any] | None) -> Settings:
        if not overrides:
            return self
        known = {f.name for f in fields(self)}
        return replace(self, **{k: v for k, v in overrides.items() if k in known})


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    directory = Path((overrides or {}).get("data_dir") or data_dir())
    settings = Settings(
        warehouse_url=os.environ.get("DASHBOARD_WAREHOUSE_URL") or f"duckdb:///{directory / 'warehouse.duckdb'}",
        app_db_url=os.environ.get("DASHBOARD_APP_DB_URL") or f"sqlite:///{directory / 'app.sqlite'}",
        secret_key=(overrides or {}).get("secret_key") or _secret_key(directory),
        redis_url=os.environ.get("DASHBOARD_REDIS_URL") or None,
        data_dir=directory,
        require_mfa=_env_bool("DASHBOARD_REQUIRE_MFA", False),
        idle_timeout_minutes=_env_int("DASHBOARD_IDLE_TIMEOUT_MINUTES", 15),
        session_lifetime_hours=_env_int("DASHBOARD_SESSION_LIFETIME_HOURS", 12),
        lockout_attempts=_env_int("DASHBOARD_LOCKOUT_ATTEMPTS", 5),
        lockout_minutes=_env_int("DASHBOARD_LOCKOUT_MINUTES", 15),
        smtp_host=os.environ.get("DASHBOARD_SMTP_HOST") or None,
        smtp_port=_env_int("DASHBOARD_SMTP_PORT", 587),
        smtp_user=os.environ.get("DASHBOARD_SMTP_USER") or None,
        smtp_password=os.environ.get("DASHBOARD_SMTP_PASSWORD") or None,
        smtp_starttls=_env_bool("DASHBOARD_SMTP_STARTTLS", True),
        reset_token_minutes=_env_int("DASHBOARD_RESET_TOKEN_MINUTES", 30),
        secure_cookies=_env_bool("DASHBOARD_SECURE_COOKIES", True),
        public_url=checked_public_url(os.environ.get("DASHBOARD_PUBLIC_URL")),
        proxy_hops=_env_int("DASHBOARD_PROXY_HOPS", 0),
        login_rate_limit=os.environ.get("DASHBOARD_LOGIN_RATE_LIMIT") or "20 per minute",
        reset_rate_limit=os.environ.get("DASHBOARD_RESET_RATE_LIMIT") or "5 per minute",
        mail_from=os.environ.get("DASHBOARD_MAIL_FROM") or "dashboard@localhost",
        report_cache_entries=_env_int("DASHBOARD_REPORT_CACHE_ENTRIES", 128),
        report_cache_ttl_seconds=_env_int("DASHBOARD_REPORT_CACHE_TTL_SECONDS", 3600),
        report_cache_max_bytes=_env_int("DASHBOARD_REPORT_CACHE_MAX_BYTES", 8 * 1024 * 1024),
        report_cache_prefix=os.environ.get("DASHBOARD_REPORT_CACHE_PREFIX") or "dashboard",
        workers=_env_int("DASHBOARD_WORKERS", 0),
        threads=_env_int("DASHBOARD_THREADS", 4),
        worker_timeout=_env_int("DASHBOARD_WORKER_TIMEOUT", 120),
    )
    settings = settings.with_overrides(overrides)
    return replace(settings, public_url=checked_public_url(settings.public_url))
