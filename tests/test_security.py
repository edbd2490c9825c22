"""Tests an attacker would write, against the real app over HTTP (Flask test client).

Every test runs twice: on a DuckDB warehouse with the app DB in SQLite, and on a PostgreSQL warehouse with
the app DB in its own PostgreSQL database. Both warehouses hold the two hand-built fixtures (practices
111111111 / 222222222, employers GRP1 / GRP2); the users are those of ``tests.conftest.USERS``.
"""

from __future__ import annotations

import csv
import datetime as dt
import email
import io
import json
import re
import time
import uuid

import pyotp
import pytest
import sqlalchemy as sa

from dashboard.auth import mfa, models, service
from dashboard.reports import CATALOG
from dashboard.ui import registry
from tests.conftest import PASSWORD, USERS, AuthActions, module_warehouse
from tests.fixtures import load_employer_fixture, load_practice_fixture

P1, P2, E1, E2 = "111111111", "222222222", "GRP1", "GRP2"
NEW_PASSWORD = "purple elephants dance quietly"
FORGED = ("999999999", "GRP999", "' OR '1'='1")
# What each attacker may name in a request, and what must never come back to them.
ATTACKS = {
    "practice2": {"ids": (P1, E1, E2, *FORGED),
                  "never": (P1, "Fixture Family Medicine", "pat1", E1, E2, "Employer One", "Employer Two")},
    "employer2": {"ids": (E1, P1, P2, *FORGED),
                  "never": (E1, "Employer One", P1, P2, "Fixture Family Medicine", "Fixture Cardiology", "pat1",
                            '"person_id"', '"member_id"', '"first_name"', '"last_name"')},
}
MEMBER_COLUMNS = {"person_id", "member_id", "subscriber_id", "first_name", "last_name", "birth_date",
                  "claim_id", "patient_id"}
ROUTER = "_pages_content"
ADMIN_BUTTONS = ("admin-create", "admin-save", "admin-unlock", "admin-reset-mfa", "admin-send-link",
                 "admin-deactivate")
ADMIN_FIELDS = {"email": "admin-new-email", "new_role": "admin-new-role", "new_practices": "admin-new-practices",
                "new_employers": "admin-new-employers", "password": "admin-new-password",
                "invite": "admin-new-invite", "user_id": "admin-edit-user", "edit_role": "admin-edit-role",
                "edit_practices": "admin-edit-practices", "edit_employers": "admin-edit-employers",
                "active": "admin-edit-active"}


def _load(engine) -> None:
    load_practice_fixture(engine)
    load_employer_fixture(engine)
    from dashboard.warehouse import schema as s

    with engine.begin() as conn:
        conn.execute(s.data_load.insert().values(load_id="fixture", source="fixture", row_count=1,
                                                 loaded_at=dt.datetime(2026, 3, 31), data_as_of=dt.date(2026, 3, 31)))


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_engine(request, tmp_path_factory):
    yield from module_warehouse(request, tmp_path_factory, _load)


# --- helpers -------------------------------------------------------------------------------------------

def login(client, who: str = "admin", password: str = PASSWORD):
    return AuthActions(client).login(who, password)


def logged_in(app, who: str):
    client = app.test_client()
    response = login(client, who)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def engine_of(app):
    return app.extensions["dashboard"].app_db


def user_id(app, who: str) -> int:
    return service.get_user_by_email(engine_of(app), email=USERS[who][0]).id


def form_post(client, path: str, data: dict, **kwargs):
    """POST a form with the session's CSRF token, as the browser would after loading the page."""
    with client.session_transaction() as sess:
        token = sess.get("csrf")
    if token is None:
        client.get("/forgot")  # any form page gives an anonymous session its token
        with client.session_transaction() as sess:
            token = sess["csrf"]
    return client.post(path, data={**data, "csrf_token": token}, **kwargs)


def csrf_header(client) -> dict:
    cookie = client.get_cookie("_csrf_token")
    return {"X-CSRFToken": cookie.value if cookie else ""}


def server_callbacks(app) -> dict:
    """Every server-side callback in the app's callback map. Dash adds its page router during its first
    request hooks, which run behind the gate: a public path lets them run."""
    app.test_client().get("/healthz")
    return {k: v for k, v in app.extensions["dashboard"].dash_app.callback_map.items() if "callback" in v}


def _outputs(key: str):
    parts = key[2:-2].split("...") if key.startswith("..") else [key]
    outs = [dict(zip(("id", "property"), part.rsplit(".", 1), strict=True)) for part in parts]
    return outs if key.startswith("..") else outs[0]


def dash_post(client, key: str, spec: dict, values: dict, *, changed: list[str] | None = None,
              headers: dict | None = None):
    """POST /_dash-update-component for one callback, each input and state filled from ``values``
    (keyed 'id.property'), exactly as dash-renderer would send it."""
    def fill(items):
        return [{**item, "value": values.get(f"{item['id']}.{item['property']}")} for item in items]

    body = {"output": key, "outputs": _outputs(key), "inputs": fill(spec["inputs"]), "state": fill(spec["state"]),
            "changedPropIds": changed if changed is not None else [f"{i['id']}.{i['property']}"
                                                                   for i in spec["inputs"]]}
    return client.post("/_dash-update-component", json=body,
                       headers=csrf_header(client) if headers is None else headers)


def attack_values(spec: dict, target: str) -> list[dict]:
    """Inputs for one callback naming ``target`` wherever an id can go, one set per page path and per
    report where the callback takes those."""
    values = {}
    for item in [*spec["inputs"], *spec["state"]]:
        cid, prop = item["id"], item["property"]
        if prop in ("n_clicks", "n_intervals"):
            value = 1
        elif prop == "getRowsRequest":  # a grid asking for its first block, as AG Grid does
            value = {"startRow": 0, "endRow": 50, "sortModel": [], "filterModel": {}}
        elif prop == "search":
            value = f"?practice={target}&employer={target}"
        elif cid.endswith("-from"):
            value = "2026-01"
        elif cid.endswith("-to"):
            value = "2026-03"
        elif prop == "contents":
            value = ["data:text/csv;base64,eA=="]
        elif prop == "filename":
            value = ["medical_claim.csv"]
        elif cid.endswith(("-practices", "-employers")):
            value = [target]
        elif cid.endswith("-email"):
            value = "attacker@evil.example"
        else:
            value = target
        values[f"{cid}.{prop}"] = value
    variants = [values]
    for key in values:
        if key.endswith(".pathname"):
            variants = [{**v, key: p.path} for v in variants for p in registry.PAGES.values()]
        elif key == "reports-name.value":
            variants = [{**v, key: name} for v in variants for name in CATALOG]
    return variants


def outbox_links(app) -> list[str]:
    folder = app.extensions["dashboard"].settings.data_dir / "outbox"
    links = []
    for path in sorted(folder.glob("*.eml")) if folder.exists() else []:
        message = email.message_from_bytes(path.read_bytes())
        links += re.findall(r"https?://\S+/reset/([\w-]+)", message.get_payload(decode=True).decode())
    return links


def admin_action(client, app, button: str, **form):
    key, spec = next((k, v) for k, v in server_callbacks(app).items() if "admin-feedback.children" in k)
    values = {f"{b}.n_clicks": (1 if b == button else None) for b in ADMIN_BUTTONS}
    values.update({f"{ADMIN_FIELDS[name]}.{'value'}": value for name, value in form.items()})
    return dash_post(client, key, spec, values, changed=[f"{button}.n_clicks"])


def audit_actions(app) -> list[str]:
    return [e["action"] for e in service.audit_entries(engine_of(app), limit=10_000)]


def enrol(app, who: str) -> pyotp.TOTP:
    """Enrol a user in TOTP through the service (the HTTP enrolment has its own test)."""
    settings = app.extensions["dashboard"].settings
    uid = user_id(app, who)
    secret = mfa.begin_enrolment(engine_of(app), user_id=uid, secret_key=settings.secret_key)
    totp = pyotp.TOTP(secret)
    mfa.confirm_enrolment(engine_of(app), user_id=uid, code=totp.now(), secret_key=settings.secret_key)
    return totp


def not_a_code(totp: pyotp.TOTP) -> str:
    now = time.time()
    valid = {totp.at(now + d) for d in (-60, -30, 0, 30, 60)}
    return next(c for c in (f"{n:06d}" for n in range(123456, 999999, 7919)) if c not in valid)


# --- (a) and (b): every registered callback, called directly -----------------------------------------------

def test_callback_map_covers_every_page_callback(new_app):
    keys = " ".join(server_callbacks(new_app()))
    for output in ("practice-cards.children", "practice-trend-box.children", "grid-remittances.getRowsResponse",
                   "employer-cards.children", "employer-pmpm-box.children", "grid-enrollment.getRowsResponse",
                   "reports-content.children", "grid-report.getRowsResponse", "admin-feedback.children",
                   "load-job.data", ROUTER):
        assert output in keys


def test_every_callback_answers_401_without_a_session(new_app):
    app = new_app()
    client = app.test_client()
    for key, spec in server_callbacks(app).items():
        for values in attack_values(spec, P1)[:3]:
            response = dash_post(client, key, spec, values, headers={})
            assert response.status_code == 401, key
            assert response.get_data(as_text=True) == "authentication required\n"


@pytest.mark.parametrize("attacker", sorted(ATTACKS))
def test_every_callback_refuses_other_tenants_ids_and_forged_ids(new_app, attacker):
    app = new_app()
    engine = engine_of(app)
    users_before = [(u.email, u.role, u.is_active, u.practice_ids, u.employer_ids)
                    for u in service.list_users(engine)]
    client = logged_in(app, attacker)
    never = ATTACKS[attacker]["never"]
    calls = 0
    for key, spec in server_callbacks(app).items():
        for target in ATTACKS[attacker]["ids"]:
            for values in attack_values(spec, target):
                response = dash_post(client, key, spec, values)
                body = response.get_data(as_text=True)
                calls += 1
                if ROUTER in key:  # the page router answers every path, with the no-access panel if not theirs
                    assert response.status_code == 200, (key, values)
                else:
                    assert response.status_code in (204, 403), (key, values, body[:300])
                leaked = [marker for marker in never if marker in body]
                assert not leaked, (key, values, leaked)
    assert calls > 100
    # the admin callbacks refused every attempt to create, change, unlock or deactivate
    assert [(u.email, u.role, u.is_active, u.practice_ids, u.employer_ids)
            for u in service.list_users(engine)] == users_before
    assert not outbox_links(app)


@pytest.mark.parametrize(("who", "own", "marker"), [("practice", P1, '"111111111"'),
                                                    ("employer2", E2, '"GRP2"')])
def test_the_same_callbacks_do_answer_in_scope(new_app, who, own, marker):
    """The control for the test above: the refusals are about scope, not broken requests."""
    app = new_app()
    client = logged_in(app, who)
    audience = "practice" if who.startswith("practice") else "employer"
    grid = "grid-practice-kpis" if audience == "practice" else "grid-employer-summary"
    page = [(k, v) for k, v in server_callbacks(app).items() if k.startswith((f"{audience}-", f"..{grid}."))]
    assert len(page) >= 2
    for key, spec in page:
        response = dash_post(client, key, spec, attack_values(spec, own)[0])
        assert response.status_code == 200, key
        if grid in key:
            assert marker in response.get_data(as_text=True)


def test_client_side_outputs_cannot_be_called_on_the_server(new_app):
    app = new_app()
    client = logged_in(app, "admin")
    dash_app = app.extensions["dashboard"].dash_app
    server_callbacks(app)
    client_only = [k for k, v in dash_app.callback_map.items() if "callback" not in v]
    assert client_only
    for key in client_only:
        spec = dash_app.callback_map[key]
        assert dash_post(client, key, spec, {}).status_code == 403


# --- lockout and throttling ------------------------------------------------------------------------------

def test_five_failures_lock_the_account_until_an_admin_unlocks_it(new_app):
    app = new_app()
    client = app.test_client()
    for _ in range(5):
        assert login(client, "practice", "not the password at all").status_code == 401
    refused = login(client, "practice")
    assert refused.status_code == 401
    assert "Invalid email or password" in refused.get_data(as_text=True)  # same words as a wrong password
    assert "account.lockout" in audit_actions(app)

    admin = logged_in(app, "admin")
    response = admin_action(admin, app, "admin-unlock", user_id=user_id(app, "practice"))
    assert response.status_code == 200
    assert "Unlocked pm@test.example" in response.get_data(as_text=True)
    assert login(client, "practice").status_code == 302
    assert "user.unlock" in audit_actions(app)


def test_lockout_holds_across_workers(new_app):
    workers = [new_app(), new_app()]
    for attempt in range(5):
        client = workers[attempt % 2].test_client()
        assert login(client, "employer", "not the password at all").status_code == 401
    for worker in workers:
        assert login(worker.test_client(), "employer").status_code == 401


def test_mfa_failures_count_toward_the_lockout_across_workers(new_app):
    first, second = new_app(), new_app()
    totp = enrol(first, "practice")
    clients = [first.test_client(), second.test_client()]
    for client in clients:
        assert login(client, "practice").headers["Location"] == "/login/mfa"
    for attempt in range(5):
        response = form_post(clients[attempt % 2], "/login/mfa", {"code": not_a_code(totp)})
        assert response.status_code == 401
    assert "locked" in response.get_data(as_text=True)
    # the right code no longer helps on the other worker, and neither does the password
    late = form_post(clients[1], "/login/mfa", {"code": totp.at(time.time() + 30)})
    assert late.status_code == 401
    assert "locked" in late.get_data(as_text=True)
    assert clients[1].get("/practice").status_code == 302
    assert login(second.test_client(), "practice").status_code == 401
    assert audit_actions(first).count("mfa.failure") == 5


@pytest.mark.parametrize("path", ["/login", "/login/mfa", "/forgot", "/reset/no-such-token"])
def test_rate_limit_per_ip(new_app, path):
    app = new_app(login_rate_limit="3 per minute", reset_rate_limit="3 per minute")
    client = app.test_client()
    data = {"email": "nobody@test.example", "password": "not the password", "code": "000000",
            "confirm": "not the password"}
    statuses = [form_post(client, path, data).status_code for _ in range(4)]
    assert 429 not in statuses[:3]
    assert statuses[3] == 429
    # another address is not held back by the first one's attempts
    assert form_post(client, path, data, environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code != 429


def test_rate_limit_is_shared_by_workers_through_redis(new_app, redis_url):
    import redis

    url, prefix = redis_url, f"test-{uuid.uuid4().hex}"
    workers = [new_app(redis_url=url, rate_limit_prefix=prefix, login_rate_limit="3 per minute")
               for _ in range(2)]
    try:
        statuses = [login(workers[i % 2].test_client(), "admin", "not the password").status_code for i in range(4)]
        assert statuses == [401, 401, 401, 429]
    finally:
        store = redis.Redis.from_url(url)
        for key in store.scan_iter(f"*{prefix}*"):
            store.delete(key)


# --- password reset ----------------------------------------------------------------------------------------

def test_forgot_answers_alike_and_the_link_works_once(new_app):
    app = new_app()
    client = app.test_client()
    victim_session = logged_in(app, "practice")
    known = form_post(client, "/forgot", {"email": USERS["practice"][0]})
    unknown = form_post(client, "/forgot", {"email": "nobody@test.example"})
    assert known.status_code == unknown.status_code == 200
    assert known.get_data() == unknown.get_data()
    [token] = outbox_links(app)
    with engine_of(app).connect() as conn:
        stored = json.dumps([dict(r) for r in conn.execute(sa.select(models.password_resets)).mappings()],
                            default=str)
    assert token not in stored  # only its hash is kept

    assert client.get(f"/reset/{token}").status_code == 200
    weak = form_post(client, f"/reset/{token}", {"password": "password1234", "confirm": "password1234"})
    assert weak.status_code == 400
    assert "too common" in weak.get_data(as_text=True)
    done = form_post(client, f"/reset/{token}", {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 200
    assert "Password changed" in done.get_data(as_text=True)
    again = form_post(client, f"/reset/{token}", {"password": NEW_PASSWORD + "!", "confirm": NEW_PASSWORD + "!"})
    assert again.status_code == 400
    assert "not valid" in again.get_data(as_text=True)

    assert victim_session.get("/practice").status_code == 302  # the reset ended every session
    assert login(app.test_client(), "practice").status_code == 401
    assert login(app.test_client(), "practice", NEW_PASSWORD).status_code == 302
    assert {"password.reset_request", "password.reset"} <= set(audit_actions(app))


def test_reset_link_expires_and_a_newer_link_cancels_older_ones(new_app):
    expired_app = new_app(reset_token_minutes=0)
    client = expired_app.test_client()
    form_post(client, "/forgot", {"email": USERS["employer"][0]})
    [token] = outbox_links(expired_app)
    response = client.get(f"/reset/{token}")
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)

    app = new_app(reset_token_minutes=30, data_dir=expired_app.extensions["dashboard"].settings.data_dir / "b")
    client = app.test_client()
    form_post(client, "/forgot", {"email": USERS["employer"][0]})
    form_post(client, "/forgot", {"email": USERS["employer"][0]})
    older, newer = outbox_links(app)
    assert client.get(f"/reset/{older}").status_code == 400
    assert client.get(f"/reset/{newer}").status_code == 200
    assert client.get("/reset/" + "x" * 43).status_code == 400


# --- sessions --------------------------------------------------------------------------------------------

def test_idle_timeout_logs_off(new_app):
    app = new_app(idle_timeout_minutes=15)
    client = logged_in(app, "practice")
    assert client.get("/practice").status_code == 200
    with client.session_transaction() as sess:
        sess["seen_at"] -= 16 * 60
    response = client.get("/practice")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert client.get("/export/practice-kpis.csv").status_code == 401
    entry = next(e for e in service.audit_entries(engine_of(app)) if e["action"] == "session.expired")
    assert json.loads(entry["detail"]) == {"reason": "idle"}


def test_server_side_idle_timeout_holds_for_a_cookie_kept_fresh(new_app):
    """A cookie whose own timestamps say "active" is still refused once the server-side session idled."""
    app = new_app(idle_timeout_minutes=15)
    client = logged_in(app, "practice")
    with engine_of(app).begin() as conn:
        conn.execute(models.sessions.update().values(last_seen_at=models.utcnow() - dt.timedelta(minutes=17)))
    assert client.get("/practice").status_code == 302


def test_absolute_lifetime_ends_even_an_active_session(new_app):
    app = new_app(session_lifetime_hours=1)
    client = logged_in(app, "employer")
    with client.session_transaction() as sess:
        sess["login_at"] -= 3601
    assert client.get("/export/enrollment.csv").status_code == 401
    assert client.get("/employer").status_code == 302


def test_logout_revokes_the_cookie_even_when_replayed_on_another_worker(new_app):
    first, second = new_app(), new_app()
    client = logged_in(first, "practice")
    assert client.get("/practice").status_code == 200
    stolen = client.get_cookie("session").value
    thief = second.test_client()
    thief.set_cookie("session", stolen)
    assert thief.get("/practice").status_code == 200  # a copied cookie works until the logout...
    form_post(client, "/logout", {})
    for worker in (first, second):
        replay = worker.test_client()
        replay.set_cookie("session", stolen)
        assert replay.get("/practice").status_code == 302  # ...and not after it
        assert replay.get("/export/practice-kpis.csv").status_code == 401
    assert "logout" in audit_actions(first)


def test_login_rotates_the_session(new_app):
    app = new_app()
    client = app.test_client()
    client.get("/login")
    anonymous = client.get_cookie("session").value
    login(client, "admin")
    first = client.get_cookie("session").value
    with client.session_transaction() as sess:
        first_sid, first_csrf = sess["sid"], sess["csrf"]
    form_post(client, "/login", {"email": USERS["admin"][0], "password": PASSWORD})
    with client.session_transaction() as sess:
        assert sess["sid"] != first_sid
        assert sess["csrf"] != first_csrf
    assert len({anonymous, first, client.get_cookie("session").value}) == 3
    old = app.test_client()
    old.set_cookie("session", first)
    assert old.get("/admin").status_code == 302  # the rotated-out session is revoked


def test_changing_the_password_ends_the_other_sessions(new_app):
    app = new_app()
    mine, other = logged_in(app, "practice"), logged_in(app, "practice")
    weak = form_post(mine, "/account/password", {"current": PASSWORD, "password": "password1234",
                                                 "confirm": "password1234"})
    assert weak.status_code == 400
    assert "too common" in weak.get_data(as_text=True)
    wrong = form_post(mine, "/account/password", {"current": "not it at all", "password": NEW_PASSWORD,
                                                  "confirm": NEW_PASSWORD})
    assert wrong.status_code == 400
    done = form_post(mine, "/account/password", {"current": PASSWORD, "password": NEW_PASSWORD,
                                                 "confirm": NEW_PASSWORD})
    assert done.status_code == 200
    assert mine.get("/practice").status_code == 200
    assert other.get("/practice").status_code == 302
    assert "password.change" in audit_actions(app)


# --- CSRF ------------------------------------------------------------------------------------------------

FORMS = ("/login", "/login/mfa", "/forgot", "/reset/some-token", "/account/password", "/account/mfa",
         "/account/mfa/disable", "/logout")


def test_every_form_refuses_a_missing_or_wrong_csrf_token(new_app):
    app = new_app()
    client = logged_in(app, "practice")
    data = {"email": USERS["practice"][0], "password": NEW_PASSWORD, "confirm": NEW_PASSWORD, "current": PASSWORD,
            "code": "123456"}
    for path in FORMS:
        for token in (None, "forged-token"):
            response = client.post(path, data={**data, **({"csrf_token": token} if token else {})})
            assert response.status_code == 400, path
    assert client.get("/practice").status_code == 200  # the POST /logout did nothing
    assert not outbox_links(app)
    assert login(app.test_client(), "practice").status_code == 302  # the password did not change
    anonymous = app.test_client()
    assert anonymous.post("/login", data={"email": USERS["admin"][0], "password": PASSWORD}).status_code == 400


def test_every_callback_refuses_a_missing_or_wrong_csrf_header(new_app):
    app = new_app()
    client = logged_in(app, "admin")
    for key, spec in server_callbacks(app).items():
        values = attack_values(spec, P1)[0]
        for headers in ({}, {"X-CSRFToken": "forged-token"}):
            assert dash_post(client, key, spec, values, headers=headers).status_code == 403, key


# --- privacy -----------------------------------------------------------------------------------------------

def test_an_employer_user_never_receives_a_member_level_row(new_app):
    app = new_app()
    client = logged_in(app, "employer")
    employer_reports = [name for name, report in CATALOG.items() if report.audience == "employer"]
    assert employer_reports
    for name in employer_reports:
        response = client.get(f"/export/{name}.csv?from=2025-12&to=2026-03")
        assert response.status_code == 200, name
        header = next(csv.reader(io.StringIO(response.get_data(as_text=True))))
        assert not MEMBER_COLUMNS & set(header), (name, header)
    for name, report in CATALOG.items():
        if report.audience != "employer":
            assert client.get(f"/export/{name}.csv").status_code == 403
    callbacks = server_callbacks(app)
    page = [k for k in callbacks if k.startswith(("employer-", "reports-", "..grid-"))]
    assert len(page) >= 8
    for key in page:
        spec = callbacks[key]
        for values in attack_values(spec, E1):
            body = dash_post(client, key, spec, values).get_data(as_text=True)
            assert not [c for c in MEMBER_COLUMNS if f'"{c}"' in body], (key, values)


# --- MFA ---------------------------------------------------------------------------------------------------

def test_mfa_enrolment_login_replay_and_recovery_codes(new_app):
    app = new_app()
    client = logged_in(app, "practice")
    page = client.get("/account/mfa").get_data(as_text=True)
    assert 'src="data:image/svg+xml' in page  # the QR code, inline (the CSP allows data: images only)
    totp = pyotp.TOTP(re.search(r'id="mfa-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", ""))
    assert form_post(client, "/account/mfa", {"code": not_a_code(totp)}).status_code == 400
    shown = form_post(client, "/account/mfa", {"code": totp.now()}).get_data(as_text=True)
    codes = re.findall(r"<li>([a-z0-9]{5}-[a-z0-9]{5})</li>", shown)
    assert len(set(codes)) == 10
    with engine_of(app).connect() as conn:
        stored = conn.execute(sa.select(models.recovery_codes.c.code_hash)).scalars().all()
        secret_column = conn.execute(sa.select(models.users.c.mfa_secret)
                                     .where(models.users.c.id == user_id(app, "practice"))).scalar_one()
    assert len(stored) == 10
    assert all(h.startswith("$argon2id$") for h in stored)
    assert totp.secret not in secret_column  # encrypted at rest

    form_post(client, "/logout", {})
    assert login(client, "practice").headers["Location"] == "/login/mfa"
    with client.session_transaction() as sess:
        assert "_user_id" not in sess
        assert "sid" not in sess
    assert client.get("/practice").status_code == 302
    assert client.get("/export/practice-kpis.csv").status_code == 401
    assert form_post(client, "/login/mfa", {"code": not_a_code(totp)}).status_code == 401
    code = totp.at(time.time() + 30)  # the next step: later than the one spent on enrolment
    assert form_post(client, "/login/mfa", {"code": code}).status_code == 302
    assert client.get("/practice").status_code == 200

    form_post(client, "/logout", {})
    login(client, "practice")
    replay = form_post(client, "/login/mfa", {"code": code})
    assert replay.status_code == 401  # the same code in the same 30 s step: refused
    assert form_post(client, "/login/mfa", {"code": codes[0].upper()}).status_code == 302
    form_post(client, "/logout", {})
    login(client, "practice")
    assert form_post(client, "/login/mfa", {"code": codes[0]}).status_code == 401  # each recovery code once
    assert form_post(client, "/login/mfa", {"code": codes[1]}).status_code == 302
    actions = audit_actions(app)
    assert {"mfa.enrol", "mfa.failure", "mfa.recovery_code_used", "login.mfa_challenge"} <= set(actions)


def test_required_mfa_serves_nothing_but_enrolment_until_done(new_app):
    app = new_app(require_mfa=True)
    client = logged_in(app, "employer")
    response = client.get("/employer")
    assert response.status_code == 302
    assert response.headers["Location"] == "/account/mfa"
    assert client.get("/export/enrollment.csv").status_code == 403
    key, spec = next((k, v) for k, v in server_callbacks(app).items() if k == "employer-cards.children")
    assert dash_post(client, key, spec, attack_values(spec, E1)[0]).status_code == 403
    page = client.get("/account/mfa").get_data(as_text=True)
    totp = pyotp.TOTP(re.search(r'id="mfa-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", ""))
    assert form_post(client, "/account/mfa", {"code": totp.now()}).status_code == 200
    assert client.get("/employer").status_code == 200
    refused = form_post(client, "/account/mfa/disable", {"password": PASSWORD, "code": totp.at(time.time() + 30)})
    assert refused.status_code == 400  # mandatory: the user cannot turn it off


def test_admin_resets_mfa_and_the_user_enrols_again(new_app):
    app = new_app()
    totp = enrol(app, "employer")
    client = app.test_client()
    login(client, "employer")
    assert form_post(client, "/login/mfa", {"code": totp.at(time.time() + 30)}).status_code == 302
    admin = logged_in(app, "admin")
    response = admin_action(admin, app, "admin-reset-mfa", user_id=user_id(app, "employer"))
    assert "reset" in response.get_data(as_text=True)
    assert client.get("/employer").status_code == 302  # the reset ended their sessions
    assert login(client, "employer").headers["Location"] == "/"  # password only, until they enrol again
    assert not service.get_user(engine_of(app), user_id=user_id(app, "employer")).mfa_enabled
    assert "mfa.reset" in audit_actions(app)


# --- admin -------------------------------------------------------------------------------------------------

def test_admin_creates_edits_and_deactivates_users_with_audit(new_app):
    app = new_app()
    admin = logged_in(app, "admin")

    def feedback(button, **form):
        response = admin_action(admin, app, button, **form)
        assert response.status_code == 200
        return response.get_data(as_text=True)

    assert "too common" in feedback("admin-create", email="new@test.example", new_role="practice_manager",
                                    new_practices=[P1], password="password1234", invite=False)
    assert "Unknown practice" in feedback("admin-create", email="new@test.example", new_role="practice_manager",
                                          new_practices=["999999999"], password=NEW_PASSWORD, invite=False)
    assert "Created new@test.example" in feedback("admin-create", email="new@test.example",
                                                  new_role="practice_manager", new_practices=[P1],
                                                  password=NEW_PASSWORD, invite=False)
    assert "link" in feedback("admin-create", email="invited@test.example", new_role="employer_admin",
                              new_employers=[E2], invite=True)
    [token] = outbox_links(app)
    invited = app.test_client()
    assert form_post(invited, f"/reset/{token}", {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 200

    new_user = app.test_client()
    assert login(new_user, "new@test.example", NEW_PASSWORD).status_code == 302
    assert new_user.get(f"/export/practice-kpis.csv?practice={P2}").status_code == 403
    new_id = service.get_user_by_email(engine_of(app), email="new@test.example").id
    assert "Saved" in feedback("admin-save", user_id=new_id, edit_role="practice_manager", edit_practices=[P2],
                               active=True)
    # the scope is read on every request: the change holds at once, in the session already open
    assert new_user.get(f"/export/practice-kpis.csv?practice={P2}").status_code == 200
    assert new_user.get(f"/export/practice-kpis.csv?practice={P1}").status_code == 403
    assert "Deactivated" in feedback("admin-deactivate", user_id=new_id)
    assert new_user.get("/practice").status_code == 302
    assert login(app.test_client(), "new@test.example", NEW_PASSWORD).status_code == 401
    assert "cannot deactivate your own" in feedback("admin-deactivate", user_id=user_id(app, "admin"))

    actions = audit_actions(app)
    assert {"user.create", "user.update", "user.deactivate", "password.reset"} <= set(actions)
    key, spec = next((k, v) for k, v in server_callbacks(app).items() if "admin-audit.rowData" in k)
    filtered = dash_post(admin, key, spec, {"admin-audit-action.value": "user.create"}).get_json()
    rows = filtered["response"]["admin-audit"]["rowData"]
    assert rows
    assert {r["action"] for r in rows} == {"user.create"}
    assert filtered["response"]["audit-csv"]["href"] == "/admin/audit.csv?action=user.create"
    exported = list(csv.DictReader(io.StringIO(admin.get("/admin/audit.csv?action=user.create")
                                               .get_data(as_text=True))))
    assert {r["action"] for r in exported} == {"user.create"}
    assert len(exported) >= 7


# --- audit, headers, errors ---------------------------------------------------------------------------------

def test_page_views_are_audited_with_scope_and_nothing_is_phi(new_app, caplog):
    app = new_app()
    client = logged_in(app, "practice")
    callbacks = server_callbacks(app)
    router = next(k for k in callbacks if ROUTER in k)
    dash_post(client, router, callbacks[router], {"_pages_location.pathname": "/practice",
                                                  "_pages_location.search": ""})
    key = "practice-cards.children"
    data = dash_post(client, key, callbacks[key], attack_values(callbacks[key], P1)[0])
    assert data.status_code == 200
    client.get("/export/denials.csv?from=2025-10&to=2026-03")
    entries = service.audit_entries(engine_of(app), limit=10_000)
    view = next(e for e in entries if e["action"] == "page.view")
    assert json.loads(view["detail"]) == {"page": "/practice", "role": "practice_manager", "practices": [P1],
                                          "employers": []}
    assert view["email"] == USERS["practice"][0]
    assert view["ip"] == "127.0.0.1"
    text = json.dumps(entries, default=str) + caplog.text
    assert not re.search(r"pat\d|Fixture Family|first_name|last_name", text)


def test_security_headers_and_cookie_flags(new_app):
    app = new_app()
    client = app.test_client()
    cookies = login(client, "practice").headers.getlist("Set-Cookie")
    session_cookie = next(c for c in cookies if c.startswith("session="))
    assert "Secure" in session_cookie
    assert "HttpOnly" in session_cookie
    assert "SameSite=Lax" in session_cookie
    response = client.get("/practice")
    csp = response.headers["Content-Security-Policy"]
    for directive in ("default-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "form-action 'self'"):
        assert directive in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in response.headers
    secure = app.test_client().get("/login", base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")


def test_errors_show_no_stack_trace(new_app):
    app = new_app()

    def broken():
        raise RuntimeError("pat1 Jane Doe 111111111")

    app.view_functions["healthz"] = broken
    response = app.test_client().get("/healthz")
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "went wrong" in body
    assert not re.search("Traceback|RuntimeError|pat1|Jane", body)


def test_the_audit_log_is_append_only_in_the_database(new_app):
    """Database triggers refuse UPDATE, DELETE (and on PostgreSQL TRUNCATE) of audit rows, from anyone."""
    from dashboard.auth import models, service

    app = new_app()
    assert login(app.test_client(), "practice", "not the password at all").status_code == 401
    logged_in(app, "practice")
    engine = engine_of(app)
    before = service.audit_entries(engine)
    assert {"login.failure", "login.success"} <= {e["action"] for e in before}
    statements = ["UPDATE audit_log SET action = 'nothing happened'", "DELETE FROM audit_log"]
    if engine.dialect.name == "postgresql":
        statements.append("TRUNCATE audit_log")
    for statement in statements:
        with pytest.raises(sa.exc.DBAPIError, match=models.APPEND_ONLY_MESSAGE), engine.begin() as conn:
            conn.exec_driver_sql(statement)
    new_app()  # a second worker starting installs the triggers again without error
    assert service.audit_entries(engine) == before
