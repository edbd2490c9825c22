"""The ``dashboard`` command: demo data, reports, users, loads and the web server.

Every command resolves access like the web app: ``report --user EMAIL`` runs under that user's scope
and privacy rules; without ``--user`` it runs with full (operator) access.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import sys
import time
from pathlib import Path

import click
import sqlalchemy as sa

from dashboard import access, entities, reports
from dashboard.config import load_settings
from dashboard.errors import BadInput, DashboardError, DeliveryFailed, NotFound, WarehouseMissing

DEMO_ACCOUNTS_FILE = "demo-accounts.txt"
log = logging.getLogger(__name__)


def _app_db():
    from dashboard.app import _app_db_engine
    from dashboard.auth import service

    engine = _app_db_engine(load_settings().app_db_url)
    service.create_tables(engine)
    return engine


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Claims analytics: practice revenue cycle and employer plan reporting."""
    from dashboard.files import restrict_umask

    restrict_umask()  # every file a command creates (warehouse, WAL, app DB, accounts) is owner-only


@cli.command()
@click.option("--claims", default=200_000, show_default=True, type=int, help="Medical claims to generate.")
@click.option("--seed", default=1, show_default=True, type=int, help="Random seed (same seed, same data).")
@click.option("--no-accounts", is_flag=True, help="Do not create the demo accounts.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def demo(claims: int, seed: int, no_accounts: bool, quiet: bool) -> None:
    """Build the demo warehouse (replacing the one at DASHBOARD_WAREHOUSE_URL) and demo accounts."""
    from dashboard.warehouse.build import rebuild_warehouse
    from dashboard.warehouse.synthetic import generate_demo

    settings = load_settings()
    started = time.perf_counter()

    def fill(conn, checkpoint):
        return generate_demo(conn, claims=claims, seed=seed, progress=not quiet, checkpoint=checkpoint)

    summary = rebuild_warehouse(settings.warehouse_url, fill)
    click.echo(f"demo warehouse: {summary.claims:,} claims ({summary.claim_lines:,} lines), "
               f"{summary.pharmacy_claims:,} pharmacy claims, {summary.members:,} members, "
               f"{len(summary.practices)} practices, {len(summary.employers)} employers, as of {summary.as_of} "
               f"in {time.perf_counter() - started:.1f}s")
    if not no_accounts:
        _demo_accounts(settings.data_dir, summary)


def _demo_accounts(data_dir: Path, summary) -> None:
    from dashboard.auth import service

    engine = _app_db()
    wanted = [
        ("admin@demo.example", "admin", (), ()),
        ("practice@demo.example", "practice_manager", summary.practices[:2], ()),
        ("employer@demo.example", "employer_admin", (), summary.employers[:1]),
    ]
    lines = []
    for email, role, practices, employers in wanted:
        password = "-".join(secrets.token_hex(3) for _ in range(4))
        existing = service.get_user_by_email(engine, email=email)
        if existing is None:
            service.create_user(engine, email=email, password=password, role=role, practices=practices,
                                employers=employers, actor="demo")
        else:
            service.update_user(engine, user_id=existing.id, role=role, practices=practices, employers=employers,
                                active=True, actor="demo")
            service.set_password(engine, user_id=existing.id, new=password, actor="demo")
        scope = ", ".join([*practices, *employers]) or "everything"
        lines.append(f"{role:<17} {email:<24} {password}   ({scope})")
    path = data_dir / DEMO_ACCOUNTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    click.echo("demo accounts (also in data/demo-accounts.txt, readable by you only):")
    for line in lines:
        click.echo("  " + line)


def _scope_for_email(email: str | None) -> access.Scope:
    if not email:
        return access.OPERATOR
    from dashboard.auth import service

    user = service.get_user_by_email(_app_db(), email=email)
    if user is None or not user.is_active:
        raise NotFound(f"no active user {email!r}")
    return user.scope()


@cli.command(help="Write report NAME as CSV (stdout unless -o). Reports: " + ", ".join(reports.CATALOG) + ".")
@click.argument("name")
@click.option("--user", "email", help="Run under this user's access and privacy rules.")
@click.option("--from", "start", help="First month, YYYY-MM (default: 12 months before --to).")
@click.option("--to", "end", help="Last month, YYYY-MM (default: the warehouse's as-of month; for employer "
              "reports the latest month whose claims are complete, past run-out).")
@click.option("--practice", multiple=True, help="Practice id (billing TIN); repeatable.")
@click.option("--employer", multiple=True, help="Employer id (group id); repeatable.")
@click.option("--option", "options", multiple=True, metavar="NAME=VALUE",
              help="A parameterised report's option (builder: measure=, by=, compare=); repeatable.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write here, not stdout.")
def report(name: str, email: str | None, start: str | None, end: str | None, practice: tuple[str, ...],
           employer: tuple[str, ...], options: tuple[str, ...], output: str | None) -> None:
    from dashboard.auth import service
    from dashboard.warehouse.engine import reader_engine

    settings = load_settings()
    scope = _scope_for_email(email)
    chosen = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep:
            raise BadInput(f"--option takes NAME=VALUE, got {option!r}")
        chosen[key.strip()] = value.strip()
    result = reports.export_report(name, scope=scope, engine=reader_engine(settings.warehouse_url), start=start,
                                   end=end, practice=list(practice) or None, employer=list(employer) or None,
                                   options=chosen)
    if email:
        service.audit(_app_db(), "export", user_id=scope.user_id, email=scope.email, ip="cli",
                      detail={"report": name, "rows": result.rows, "from": f"{result.filters.start:%Y-%m}",
                              "to": f"{result.filters.end:%Y-%m}"})
    if output:
        tmp = Path(output).with_name(Path(output).name + ".part")
        with open(tmp, "wb") as handle:
            for chunk in result.body:
                handle.write(chunk)
        os.replace(tmp, output)
        click.echo(f"{result.rows} rows written to {output}", err=True)
    else:
        for chunk in result.body:
            click.echo(chunk, nl=False)  # bytes go to the binary stream as they are


LOAD_FORMATS = ("tuva", "x12-835", "x12-834")


@cli.command()
@click.option("--format", "fmt", required=True, type=click.Choice(LOAD_FORMATS), help="What the input is.")
@click.option("--allow-unbalanced", is_flag=True,
              help="x12-835: load files that break the 835 balancing rules, listing each problem as a warning.")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def load(fmt: str, paths: tuple[Path, ...], allow_unbalanced: bool) -> None:
    """Load data into the warehouse, all or nothing (tuva: one directory; x12-*: one or more files)."""
    from dashboard.warehouse.loaders.run import run_load

    settings = load_settings()
    for line in run_load(settings.warehouse_url, fmt=fmt, paths=list(paths), allow_unbalanced=allow_unbalanced):
        click.echo(line)


@cli.command()
def kpis() -> None:
    """Print every KPI of the registry (formula, benchmark, source) as a Markdown table."""
    from dashboard.metrics.kpis import markdown_table

    click.echo(markdown_table())


@cli.group()
def marts() -> None:
    """The aggregate tables the pages read (built by every load and demo)."""


@marts.command("refresh")
@click.option("--if-needed", is_flag=True, help="Only when the marts are missing or were built by another version.")
def marts_refresh(if_needed: bool) -> None:
    """Rebuild every mart from the facts, all or nothing (a warehouse made by an older version needs it once)."""
    from dashboard.warehouse import semantic
    from dashboard.warehouse.engine import has_schema, reader_engine, require_schema
    from dashboard.warehouse.loaders.transaction import load_transaction

    settings = load_settings()
    if if_needed:
        engine = reader_engine(settings.warehouse_url)
        try:
            if not has_schema(engine):
                return  # nothing to build marts from
            require_schema(engine)
            return  # up to date
        except WarehouseMissing:
            pass
        finally:
            engine.dispose()
    started = time.perf_counter()
    with load_transaction(settings.warehouse_url) as conn:
        semantic.rebuild_all(conn)
    click.echo(f"marts rebuilt in {time.perf_counter() - started:.1f}s")


@cli.group("denial-risk")
def denial_risk() -> None:
    """The denial-risk model of unanswered claims (the denial-risk report)."""


@denial_risk.command("backtest")
@click.option("--practice", multiple=True, help="Practice id (billing TIN); repeatable (default: every practice).")
@click.option("--months", default=3, show_default=True, type=int, help="Complete months held out to test on.")
def denial_risk_backtest(practice: tuple[str, ...], months: int) -> None:
    """Train on all but the last complete months and score those: AUC and precision of the top decile against
    the payer-only base rate, per practice."""
    from dashboard.metrics.denial_risk import backtest
    from dashboard.warehouse.engine import reader_engine, require_schema

    engine = reader_engine(load_settings().warehouse_url)
    try:
        require_schema(engine)
        with engine.connect() as conn:
            known = entities.known(conn).practices
            for pid in practice:
                if pid not in known:
                    raise NotFound(f"unknown practice {pid!r}")
            as_of = reports.data_as_of(conn, scope=access.OPERATOR)
            click.echo(f"as of {as_of}; test: the {months} complete months before {as_of:%Y-%m}")
            click.echo("practice   train   test  denied    AUC  payer-only AUC  top-decile precision  payer-only")
            for pid in practice or sorted(known):
                result = backtest(conn, pid, as_of=as_of, test_months=months)
                if result is None:
                    click.echo(f"{pid:<9}  too little history to test")
                    continue
                click.echo(f"{pid:<9} {result.train_claims:>6} {result.test_claims:>6} {result.test_denial_rate:>7.1%}"
                           f" {result.auc:>6.3f} {result.payer_only_auc:>15.3f} {result.top_decile_precision:>21.1%}"
                           f" {result.payer_only_top_decile_precision:>11.1%}")
    finally:
        engine.dispose()


def _echo_table(read) -> None:
    """Print the frame ``read(conn)`` gives from the warehouse, as text."""
    from dashboard.warehouse.engine import reader_engine

    engine = reader_engine(load_settings().warehouse_url)
    try:
        with engine.connect() as conn:
            click.echo(read(conn).to_string(index=False))
    finally:
        engine.dispose()


@cli.group()
def fees() -> None:
    """Practices' payment-channel terms (the payment-channel-fees report)."""


@fees.command("list")
def fees_list() -> None:
    """Every practice's fee rate and monthly cap and where they come from."""
    from dashboard.warehouse.channel_fees import channel_fees

    _echo_table(channel_fees)


@fees.command("set")
@click.argument("practice_id")
@click.option("--rate", type=float, help="Share of each EFT payment (0.005 is 0.5%).")
@click.option("--cap", type=float, help="Monthly cap in dollars.")
@click.option("--no-cap", is_flag=True, help="No monthly cap.")
@click.option("--clear", is_flag=True, help="Forget the practice's terms: the published ones apply again.")
def fees_set(practice_id: str, rate: float | None, cap: float | None, no_cap: bool, clear: bool) -> None:
    """Set a practice's own payment-channel rate and monthly cap."""
    from dashboard.warehouse.channel_fees import set_channel_fee
    from dashboard.warehouse.loaders.transaction import load_transaction

    if not clear and cap is None and not no_cap:
        raise BadInput("give --cap or --no-cap (or --clear)")
    with load_transaction(load_settings().warehouse_url) as conn:
        set_channel_fee(conn, practice_id=practice_id, rate=rate, cap=cap, no_cap=no_cap, clear=clear)
    click.echo(f"{practice_id}: " + ("published terms apply" if clear else "terms saved"))


@cli.group()
def payers() -> None:
    """Payers' contract terms the worklists count with (appeal and follow-up days)."""


@payers.command("list")
def payers_list() -> None:
    """Every payer with its appeal and follow-up days and where they come from (contract or default)."""
    from dashboard.warehouse.payer_rules import payer_rules

    _echo_table(payer_rules)


@payers.command("set")
@click.argument("payer_id")
@click.option("--appeal-days", type=int, help="Days from a denial's 835 to the last day to appeal it.")
@click.option("--follow-up-days", type=int, help="Days after the 837 without an 835 before a claim is followed up.")
@click.option("--clear", is_flag=True, help="Forget this payer's terms: its type's defaults apply again.")
def payers_set(payer_id: str, appeal_days: int | None, follow_up_days: int | None, clear: bool) -> None:
    """Set a payer's contract terms (the worklists use them from the next request)."""
    from dashboard.warehouse.loaders.transaction import load_transaction
    from dashboard.warehouse.payer_rules import set_payer_rule

    if not clear and appeal_days is None and follow_up_days is None:
        raise BadInput("give --appeal-days, --follow-up-days or --clear")
    with load_transaction(load_settings().warehouse_url) as conn:
        set_payer_rule(conn, payer_id=payer_id, appeal_days=appeal_days, follow_up_days=follow_up_days, clear=clear)
    click.echo(f"{payer_id}: " + ("defaults apply" if clear else "terms saved"))


@cli.group()
def users() -> None:
    """Manage user accounts."""


@users.command("add")
@click.argument("email")
@click.option("--role", required=True, help=f"One of: {', '.join(access.ROLES)}.")
@click.option("--practice", multiple=True, help="Practice id (for practice_manager); repeatable.")
@click.option("--employer", multiple=True, help="Employer id (for employer_admin); repeatable.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_add(email: str, role: str, practice: tuple[str, ...], employer: tuple[str, ...],
              password_stdin: bool) -> None:
    """Create a user."""
    from dashboard.auth import service

    if not password_stdin:
        raise BadInput("give the password on standard input with --password-stdin (never on the command line)")
    password = sys.stdin.readline().rstrip("\r\n")
    _check_known_ids(practice, employer)
    user = service.create_user(_app_db(), email=email, password=password, role=role, practices=practice,
                               employers=employer, actor="cli")
    click.echo(f"created {user.email} ({user.role})")


def _check_known_ids(practices: tuple[str, ...], employers: tuple[str, ...]) -> None:
    """Refuse ids the warehouse does not know, when there is a warehouse to ask."""
    if not practices and not employers:
        return
    from dashboard.warehouse.engine import has_schema, reader_engine

    try:
        engine = reader_engine(load_settings().warehouse_url)
        if not has_schema(engine):
            return
    except DashboardError:
        return
    with engine.connect() as conn:
        known = entities.lookup(conn)  # what the admin form and the filter bars offer
    known_practices, known_employers = set(known.practices), set(known.employers)
    for pid in practices:
        if pid not in known_practices:
            raise NotFound(f"unknown practice {pid!r}")
    for eid in employers:
        if eid not in known_employers:
            raise NotFound(f"unknown employer {eid!r}")


@users.command("list")
def users_list() -> None:
    """List users with their roles and scopes."""
    from dashboard.auth import service

    for user in service.list_users(_app_db()):
        scope = ", ".join([*user.practice_ids, *user.employer_ids]) or "-"
        state = "active" if user.is_active else "inactive"
        click.echo(f"{user.email:<32} {user.role:<17} {state:<8} {scope}")


def _user_id(email: str) -> int:
    from dashboard.auth import service

    user = service.get_user_by_email(_app_db(), email=email)
    if user is None:
        raise NotFound(f"no user {email!r}")
    return user.id


# Recovery from the host: the way back in when the only admin is locked out or has lost the authenticator.
# Each is audited with actor "cli".

@users.command("unlock")
@click.argument("email")
def users_unlock(email: str) -> None:
    """Clear failed logins and the lockout of EMAIL."""
    from dashboard.auth import service

    service.unlock(_app_db(), user_id=_user_id(email), actor="cli")
    click.echo(f"unlocked {email}")


@users.command("reset-mfa")
@click.argument("email")
def users_reset_mfa(email: str) -> None:
    """Remove the authenticator and recovery codes of EMAIL (they enrol again); ends their sessions."""
    from dashboard.auth import service

    service.reset_mfa(_app_db(), user_id=_user_id(email), actor="cli")
    click.echo(f"two-factor reset for {email}; their sessions have ended")


@users.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
def users_set_password(email: str, password_stdin: bool) -> None:
    """Set a new password for EMAIL (policy checked); clears the lockout and ends their sessions."""
    from dashboard.auth import service

    if not password_stdin:
        raise BadInput("give the password on standard input with --password-stdin (never on the command line)")
    password = sys.stdin.readline().rstrip("\r\n")
    service.set_password(_app_db(), user_id=_user_id(email), new=password, actor="cli")
    click.echo(f"password set for {email}; their sessions have ended")


@users.command("deactivate")
@click.argument("email")
def users_deactivate(email: str) -> None:
    """Deactivate EMAIL: no more logins, sessions end now."""
    from dashboard.auth import service

    service.deactivate_user(_app_db(), user_id=_user_id(email), actor="cli")
    click.echo(f"deactivated {email}")


@cli.group()
def audit() -> None:
    """Check the audit log."""


@audit.command("verify")
@click.option("--anchor", "anchors", multiple=True, metavar="ID:HASH",
              help="A head printed by an earlier verify and kept outside the database; repeatable.")
def audit_verify(anchors: tuple[str, ...]) -> None:
    """Walk the audit log's hash chain; name the first broken row and exit 7, else print 'ok: N rows'."""
    from dashboard.app import _app_db_engine
    from dashboard.auth import audit_chain

    wanted = [audit_chain.parse_anchor(a) for a in anchors]
    # Not _app_db(): start-up work (installing triggers, creating the head) must not repair what is checked.
    engine = _app_db_engine(load_settings().app_db_url)
    with engine.connect() as conn:
        result = audit_chain.verify(conn, anchors=wanted)
    legacy = f" ({result.legacy_rows} from before the chain)" if result.legacy_rows else ""
    click.echo(f"ok: {result.rows} rows{legacy}")
    if result.last_id is not None:
        click.echo(f"head: {result.last_id}:{result.last_hash}  (keep this outside the database; "
                   "check it later with --anchor)")


@cli.group()
def db() -> None:
    """Set up the application database (PostgreSQL roles)."""


@db.command("roles")
@click.option("--owner-role", required=True, help="Owns the schema; runs `dashboard db init` and upgrades.")
@click.option("--app-role", required=True, help="The web app connects as this; may only append to the audit log.")
@click.option("--database", required=True, help="The app database to create.")
def db_roles(owner_role: str, app_role: str, database: str) -> None:
    """Print the SQL a PostgreSQL superuser runs (psql) to create the two roles and the app database."""
    from dashboard.auth import audit_chain

    click.echo(audit_chain.roles_script(owner=owner_role, app=app_role, database=database), nl=False)


@db.command("init")
@click.option("--app-role", help="PostgreSQL: grant this role what the app needs and nothing more on the audit log.")
def db_init(app_role: str | None) -> None:
    """Create or upgrade the app tables, audit triggers and hash chain; run it as the owner role."""
    from dashboard.auth import audit_chain

    engine = _app_db()
    if app_role:
        with engine.begin() as conn:
            audit_chain.grant_app_role(conn, app=app_role)
        click.echo(f"app database ready; {app_role} may read and append to audit_log, not change it")
    else:
        click.echo("app database ready")


def default_workers() -> int:
    """2 x the cores this process may use, at most 8: report building is CPU-bound pandas and DuckDB work,
    and each worker holds its own report cache and connections."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(2 * cores, 8))


def gunicorn_options(*, host: str, port: int, workers: int, threads: int, timeout: int) -> dict:
    """The gunicorn settings `serve` runs with (see dashboard.wsgi for running gunicorn by hand)."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "timeout": timeout,
        "graceful_timeout": 30,
        "keepalive": 5,
        # Off: each worker builds the app after the fork, so no database connection or Redis socket is
        # shared between processes (and DuckDB is opened read-only by each worker on its own).
        "preload_app": False,
        "proc_name": "dashboard",
        "errorlog": "-",
        "accesslog": None,  # paths can carry reset tokens; the app audits what matters
        # The app alone decides about proxies (DASHBOARD_PROXY_HOPS): gunicorn trusts no X-Forwarded-*.
        "forwarded_allow_ips": "",
        "secure_scheme_headers": {},
        # No gunicornc control socket (gunicorn >= 25.1): one fixed path in $HOME would clash between
        # instances, and nothing here uses it.
        "control_socket_disable": True,
    }


def _run_gunicorn(options: dict) -> None:
    from gunicorn.app.base import BaseApplication

    class DashboardServer(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                if key in self.cfg.settings:  # settings newer than the installed gunicorn are skipped
                    self.cfg.set(key, value)

        def load(self):
            from dashboard.app import create_app

            return create_app()  # in each worker (preload off)

    DashboardServer().run()


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=lambda: int(os.environ.get("PORT", "8050")), type=int, show_default="$PORT or 8050")
@click.option("--workers", type=click.IntRange(min=1),
              help="Worker processes (default: $DASHBOARD_WORKERS, else 2 x cores, at most 8).")
@click.option("--threads", type=click.IntRange(min=1), help="Threads per worker (default: $DASHBOARD_THREADS or 4).")
@click.option("--timeout", type=click.IntRange(min=1),
              help="Seconds a silent worker is given before it is replaced (default: $DASHBOARD_WORKER_TIMEOUT "
                   "or 120).")
@click.option("--server", type=click.Choice(["gunicorn", "waitress"]),
              help="gunicorn (the default where it is installed) or waitress: one process, for hosts without fork.")
def serve(host: str, port: int, workers: int | None, threads: int | None, timeout: int | None,
          server: str | None) -> None:
    """Serve the app: gunicorn with several worker processes of several threads each."""
    settings = load_settings()  # also creates data/secret_key once, before workers could race to
    threads = threads or settings.threads
    if server is None:
        try:
            import gunicorn  # noqa: F401
        except ImportError:
            server = "waitress"
        else:
            server = "gunicorn" if os.name == "posix" else "waitress"
    if server == "waitress":
        from waitress import serve as waitress_serve

        from dashboard.app import create_app

        click.echo(f"serving on http://{host}:{port} (waitress, one process, {threads} threads)")
        waitress_serve(create_app(), host=host, port=port, threads=threads, ident="dashboard")
        return
    workers = workers or settings.workers or default_workers()
    _app_db().dispose()  # tables and audit triggers made once here, not by every worker at once
    if workers > 1 and not settings.redis_url:
        click.echo(f"note: {workers} workers without DASHBOARD_REDIS_URL: each worker counts rate limits and caches "
                   "reports on its own (the lockout and sessions are in the app DB and hold for all)", err=True)
    click.echo(f"serving on http://{host}:{port} (gunicorn, {workers} workers x {threads} threads)")
    _run_gunicorn(gunicorn_options(host=host, port=port, workers=workers, threads=threads,
                                   timeout=timeout or settings.worker_timeout))


@cli.group(help="Saved reports sent by e-mail (dashboard.schedules).")
def schedules() -> None:
    pass


@schedules.command("list")
def schedules_list() -> None:
    from dashboard import schedules as sched

    rows = sched.list_all(_app_db())
    if not rows:
        click.echo("no schedules")
    for r in rows:
        sent = f"last sent {r.last_sent_at:%Y-%m-%d %H:%M} UTC" if r.last_sent_at else "never sent"
        click.echo(f"{r.id}\t{r.saved_report_name!r} (saved report {r.saved_report_id})\tto {r.recipient}\t"
                   f"{r.frequency}\tnext {r.next_run_at:%Y-%m-%d %H:%M} UTC\t{sent}")
        if r.failures:
            click.echo(f"\t{r.failures} failed send(s), retrying; last: {r.last_error}")


@schedules.command("add")
@click.option("--saved", "saved_id", required=True, type=int, help="The saved report's id (its URL's ?saved=).")
@click.option("--to", "recipient", required=True, help="The recipient: an active user who may open the report.")
@click.option("--every", "frequency", required=True, type=click.Choice(("weekly", "monthly")),
              help="Mondays or the 1st of the month, 07:00 UTC.")
def schedules_add(saved_id: int, recipient: str, frequency: str) -> None:
    from dashboard import schedules as sched

    schedule = sched.add(_app_db(), saved_id=saved_id, recipient=recipient, frequency=frequency)
    click.echo(f"schedule {schedule.id}: {schedule.saved_report_name!r} to {schedule.recipient} {frequency}, "
               f"first {schedule.next_run_at:%Y-%m-%d %H:%M} UTC")


@schedules.command("remove")
@click.argument("schedule_id", type=int)
def schedules_remove(schedule_id: int) -> None:
    from dashboard import schedules as sched

    sched.remove(_app_db(), schedule_id=schedule_id)
    click.echo(f"schedule {schedule_id} removed")


def _run_due(now: str | None = None):
    from dashboard import schedules as sched
    from dashboard.warehouse.engine import reader_engine

    settings = load_settings()
    when = None
    if now:
        try:
            when = dt.datetime.fromisoformat(now)
        except ValueError:
            raise BadInput(f"--now must be a date and time like 2026-12-07T07:00, got {now!r}") from None
    engine = reader_engine(settings.warehouse_url)
    try:
        return sched.run_due(_app_db(), settings=settings, engine=engine, now=when)
    finally:
        engine.dispose()


@schedules.command("run-due")
@click.option("--now", help="Run as if it were this UTC time (YYYY-MM-DDTHH:MM), for tests and catching up.")
def schedules_run_due(now: str | None) -> None:
    summary = _run_due(now)
    click.echo(f"{summary.sent} sent, {summary.failed} failed")
    if summary.failed:  # they are retried; the audit log and `schedules list` say why
        raise DeliveryFailed(f"{summary.failed} scheduled report(s) could not be sent; they will be retried")


@cli.command(help="Send due scheduled reports every --interval seconds until stopped (make run starts it).")
@click.option("--interval", default=60, show_default=True, type=click.IntRange(5, 3600))
def scheduler(interval: int) -> None:
    import signal
    import threading

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"scheduler: sending due reports every {interval}s", err=True)
    while not stop.is_set():
        try:
            summary = _run_due()
            if summary.sent or summary.failed:
                click.echo(f"scheduler: {summary.sent} sent, {summary.failed} failed", err=True)
        except DashboardError as exc:  # e.g. no warehouse yet: say so and try again, never die
            click.echo(f"scheduler: {exc}", err=True)
        except sa.exc.OperationalError:
            click.echo("scheduler: a database is not reachable; trying again", err=True)
        stop.wait(interval)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except DashboardError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except sa.exc.OperationalError as exc:
        click.echo(f"error: the database is not reachable ({type(exc.orig).__name__})", err=True)
        sys.exit(6)
    except Exception as exc:
        # Never a traceback: database errors quote the row values, which can be PHI. The operator gets the
        # kind of failure; loads and user changes run in one transaction, so nothing was written.
        log.error("unexpected %s in the dashboard command", type(exc).__name__)
        click.echo(f"error: internal error ({type(exc).__name__}); nothing was changed. Please report it.",
                   err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
