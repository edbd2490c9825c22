"""Security review, issue 9: the lockout under parallel requests (finding 3), the lockout on the account
forms a session can reach (finding 4) and the mail that tells an account's owner (finding 10).

Like ``tests/test_security.py`` every test runs twice: DuckDB warehouse with a SQLite app DB, and
PostgreSQL warehouse with a PostgreSQL app DB. The race tests drive the real app in a multi-threaded
WSGI server on 127.0.0.1, one ``requests`` session (cookie jar, CSRF token) per client.
"""

from __future__ import annotations

import contextlib
import email
import re
import stat
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyotp
import pytest
import requests
import sqlalchemy as sa
from werkzeug.serving import make_server

from dashboard.auth import mail, mfa, models, passwords, resets, service, sessions
from tests.conftest import PASSWORD, USERS, module_warehouse
from tests.test_security import NEW_PASSWORD, _load, form_post, logged_in, login, not_a_code

BURST = 8  # parallel requests: 7 wrong, then the right one
SLOW_CHECK_SECONDS = 0.3  # a secret check as slow as argon2 on a busy host: widens the race window


# --- the app over each backend (as in tests/test_security.py) -------------------------------------------

@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_engine(request, tmp_path_factory):
    yield from module_warehouse(request, tmp_path_factory, _load)


# --- helpers -------------------------------------------------------------------------------------------

def engine_of(app):
    return app.extensions["dashboard"].app_db


def uid(app, who: str) -> int:
    return service.get_user_by_email(engine_of(app), email=USERS[who][0]).id


def user_row(app, who: str):
    with engine_of(app).connect() as conn:
        return conn.execute(sa.select(models.users).where(models.users.c.id == uid(app, who))).mappings().one()


def is_locked(app, who: str) -> bool:
    locked_until = user_row(app, who)["locked_until"]
    return locked_until is not None and locked_until > models.utcnow()


def actions(app, action: str, who: str) -> int:
    return sum(1 for e in service.audit_entries(engine_of(app), limit=10_000)
               if e["action"] == action and e["user_id"] == uid(app, who))


def outbox(app) -> list[email.message.Message]:
    """Every message in the app's outbox, oldest first, once the queued notices are sent."""
    mail.wait_for_notices()
    folder = Path(app.extensions["dashboard"].settings.data_dir) / "outbox"
    paths = sorted(folder.glob("*.eml")) if folder.exists() else []
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    return [email.message_from_bytes(path.read_bytes()) for path in paths]


def body_of(message: email.message.Message) -> str:
    return message.get_payload(decode=True).decode()


def early_in_a_step() -> float:
    """Now, after waiting out a 30 s TOTP step about to end, so codes computed from it stay valid."""
    left = 30 - time.time() % 30
    if left < 8:
        time.sleep(left + 0.1)
    return time.time()


def enrol(app, who: str, at: float) -> pyotp.TOTP:
    """TOTP enrolment through the service, with the code of the step before ``at``."""
    key = app.extensions["dashboard"].settings.secret_key
    totp = pyotp.TOTP(mfa.begin_enrolment(engine_of(app), user_id=uid(app, who), secret_key=key))
    mfa.confirm_enrolment(engine_of(app), user_id=uid(app, who), code=totp.at(at - 30), secret_key=key)
    return totp


@contextlib.contextmanager
def live_server(app) -> Iterator[str]:
    """The app in werkzeug's multi-threaded server on a free loopback port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class Browser:
    """One client of the live server: its own cookie jar, CSRF token read from the form it posts."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.http.trust_env = False  # loopback only, never through a proxy from the environment

    def token(self, path: str) -> str:
        page = self.http.get(self.base + path, allow_redirects=False, timeout=30).text
        return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)

    def post(self, path: str, data: dict, token: str | None = None) -> requests.Response:
        token = token or self.token(path)
        return self.http.post(self.base + path, data={**data, "csrf_token": token}, allow_redirects=False,
                              timeout=60)

    def login(self, who: str, password: str = PASSWORD) -> requests.Response:
        return self.post("/login", {"email": USERS[who][0], "password": password})

    def logged_in(self) -> bool:
        return self.http.get(self.base + "/account/password", allow_redirects=False, timeout=30).status_code == 200


class CheckCounter:
    """Wraps a secret check: counts the checks of one account's secret and makes each slow, and tells
    when the first one of the burst has started."""

    def __init__(self, original, matches) -> None:
        self.original, self.matches = original, matches
        self.count = 0
        self.slow = False
        self.started = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, *args, **kwargs):
        if self.matches(*args):
            with self._lock:
                self.count += 1
            if self.slow:
                self.started.set()
                time.sleep(SLOW_CHECK_SECONDS)
        return self.original(*args, **kwargs)


def burst(wrong: list, right) -> list[requests.Response]:
    """Fire the wrong requests in parallel, and the right one while they are in flight: as soon as the
    first of them is checking its secret (so it comes last, and still inside the burst)."""
    with ThreadPoolExecutor(max_workers=BURST) as pool:
        futures = [pool.submit(call) for call in wrong]
        futures.append(pool.submit(right))
        return [f.result(timeout=120) for f in futures]


# --- finding 3: the check and the count are one atomic step ---------------------------------------------

def test_parallel_passwords_cannot_outrun_the_lockout(new_app, monkeypatch):
    app = new_app(secure_cookies=False, login_rate_limit="1000 per minute")
    real_hash = user_row(app, "practice")["password_hash"]
    checks = CheckCounter(passwords.verify_password, lambda stored, _password: stored == real_hash)
    monkeypatch.setattr(passwords, "verify_password", checks)
    with live_server(app) as base:
        first = Browser(base)
        for _ in range(4):
            assert first.login("practice", "not the password at all").status_code == 401
        clients = [Browser(base) for _ in range(BURST)]
        tokens = [c.token("/login") for c in clients]
        data = [{"email": USERS["practice"][0], "password": f"wrong guess number {n}"} for n in range(BURST - 1)]
        checks.slow = True

        def right():
            assert checks.started.wait(30)
            return clients[-1].post("/login", {"email": USERS["practice"][0], "password": PASSWORD}, tokens[-1])

        answers = burst([lambda c=c, t=t, d=d: c.post("/login", d, t)
                         for c, t, d in zip(clients, tokens, data, strict=False)], right)
        checks.slow = False
        assert [a.status_code for a in answers] == [401] * BURST
        assert not clients[-1].logged_in()  # the right password in the burst did not log in
        assert checks.count == 5  # 4 before, 1 in the burst: no hash was checked once the last try was taken
        assert is_locked(app, "practice")  # and the lock stayed
        assert actions(app, "login.failure", "practice") == 5
        assert actions(app, "account.lockout", "practice") == 1
        assert actions(app, "login.locked", "practice") == BURST - 1
        # during the lock even the right password is refused, unchecked
        assert Browser(base).login("practice").status_code == 401
        assert checks.count == 5
        assert is_locked(app, "practice")


def test_parallel_codes_cannot_outrun_the_lockout(new_app, monkeypatch):
    app = new_app(secure_cookies=False, login_rate_limit="1000 per minute")
    now = early_in_a_step()
    totp = enrol(app, "practice", now)
    checks = CheckCounter(mfa._matching_step, lambda secret, _code, *rest: secret == totp.secret)
    monkeypatch.setattr(mfa, "_matching_step", checks)
    with live_server(app) as base:
        clients = [Browser(base) for _ in range(BURST)]
        for client in clients:  # every client passed the password step: only the code is left
            assert client.login("practice").headers["Location"] == "/login/mfa"
        for _ in range(4):
            assert clients[0].post("/login/mfa", {"code": not_a_code(totp)}).status_code == 401
        last_step = user_row(app, "practice")["mfa_last_step"]
        tokens = [c.token("/login/mfa") for c in clients]
        checks.slow = True

        def right():
            assert checks.started.wait(30)
            return clients[-1].post("/login/mfa", {"code": totp.at(now)}, tokens[-1])

        answers = burst([lambda c=c, t=t: c.post("/login/mfa", {"code": not_a_code(totp)}, t)
                         for c, t in zip(clients[:-1], tokens, strict=False)], right)
        checks.slow = False
        assert [a.status_code for a in answers] == [401] * BURST
        assert "locked" in answers[-1].text
        assert not clients[-1].logged_in()  # the right code in the burst did not log in
        assert checks.count == 5  # no code was checked once the last try was taken
        assert user_row(app, "practice")["mfa_last_step"] == last_step  # the right code was not spent either
        assert is_locked(app, "practice")
        assert actions(app, "mfa.failure", "practice") == 5
        assert actions(app, "account.lockout", "practice") == 1
        # during the lock neither the password nor the right code helps
        late = Browser(base)
        assert late.login("practice").status_code == 401
        assert is_locked(app, "practice")


# --- finding 4: the account forms count, honour the lock and end the sessions ---------------------------

def _wrong_secret(form: str) -> dict:
    if form == "/account/password":
        return {"current": "not the password at all", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    return {"password": "not the password at all", "code": "123456"}


def _logged_in_with_mfa(app, totp: pyotp.TOTP, at: float):
    client = app.test_client()
    assert login(client, "employer").headers["Location"] == "/login/mfa"
    assert form_post(client, "/login/mfa", {"code": totp.at(at)}).status_code == 302
    return client


@pytest.mark.parametrize("form", ["/account/password", "/account/mfa/disable"])
def test_guessing_the_password_from_a_session_locks_the_account_and_ends_its_sessions(new_app, form):
    app = new_app()
    now = early_in_a_step()
    if form == "/account/mfa/disable":
        totp = enrol(app, "employer", now)
        stolen, owner = _logged_in_with_mfa(app, totp, now), _logged_in_with_mfa(app, totp, now + 30)
    else:
        stolen, owner = logged_in(app, "employer"), logged_in(app, "employer")
    version = user_row(app, "employer")["session_version"]
    for _ in range(4):
        assert form_post(stolen, form, _wrong_secret(form)).status_code == 400
    assert stolen.get("/account/password").status_code == 200  # not yet
    last = form_post(stolen, form, _wrong_secret(form))
    assert last.status_code == 401
    assert "locked" in last.get_data(as_text=True)
    assert is_locked(app, "employer")
    # every session of the account ended: the stolen one and the owner's, server-side rows and version
    assert stolen.get("/account/password").status_code == 302
    assert owner.get("/account/password").status_code == 302
    assert sessions.live_sessions(engine_of(app), user_id=uid(app, "employer")) == 0
    assert user_row(app, "employer")["session_version"] == version + 1
    assert login(app.test_client(), "employer").status_code == 401  # and the lock holds at the login


@pytest.mark.parametrize("form", ["/account/password", "/account/mfa/disable"])
def test_a_locked_account_refuses_even_the_right_current_password(new_app, form):
    app = new_app()
    now = early_in_a_step()
    if form == "/account/mfa/disable":
        totp = enrol(app, "employer", now)
        client = _logged_in_with_mfa(app, totp, now)
        right = {"password": PASSWORD, "code": totp.at(now + 30)}
    else:
        client = logged_in(app, "employer")
        right = {"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    attacker = app.test_client()  # someone else guesses at the login page until the account locks
    for _ in range(5):
        assert login(attacker, "employer", "not the password at all").status_code == 401
    assert is_locked(app, "employer")
    hash_before = user_row(app, "employer")["password_hash"]
    refused = form_post(client, form, right)
    assert refused.status_code == 400
    assert "locked" in refused.get_data(as_text=True)
    row = user_row(app, "employer")
    assert row["password_hash"] == hash_before  # the password did not change
    assert row["mfa_enabled"] == (form == "/account/mfa/disable")  # nor did MFA go off
    assert is_locked(app, "employer")


# --- finding 10: the owner is told, the login page is not ------------------------------------------------

def test_the_owner_is_mailed_when_the_account_locks_and_the_login_answer_stays_the_same(new_app):
    app = new_app(public_url="https://claims.example.org/")
    client = app.test_client()
    wrong = login(client, "practice", "not the password at all")
    for _ in range(4):
        login(client, "practice", "not the password at all")
    assert is_locked(app, "practice")
    locked = login(client, "practice")  # the right password, during the lock
    unknown = login(client, "nobody@test.example", "not the password at all")
    assert wrong.status_code == locked.status_code == unknown.status_code == 401
    assert locked.get_data() == wrong.get_data()
    assert unknown.get_data(as_text=True).replace("nobody@test.example", USERS["practice"][0]) == \
        wrong.get_data(as_text=True)
    login(client, "practice", "not the password at all")  # more tries while locked: no second mail
    [message] = outbox(app)
    assert message["To"] == USERS["practice"][0]
    assert "locked" in message["Subject"]
    body = body_of(message)
    assert USERS["practice"][0] in body
    assert "locked until" in body
    for secret in (PASSWORD, "not the password at all", "127.0.0.1"):
        assert secret not in body
    assert re.findall(r"https?://\S+", body) == ["https://claims.example.org/login"]  # only the configured host


def test_the_owner_is_mailed_when_the_password_or_mfa_changes(new_app):
    base = "https://analytics.example.net"
    app = new_app(public_url=base)
    engine, who = engine_of(app), USERS["employer"][0]
    now = early_in_a_step()
    client = logged_in(app, "employer")
    # refused changes mail no one: the notice goes with the committed change only
    assert form_post(client, "/account/password", {"current": PASSWORD, "password": "password1234",
                                                   "confirm": "password1234"}).status_code == 400
    assert form_post(client, "/account/password", {"current": "not it at all", "password": NEW_PASSWORD,
                                                   "confirm": NEW_PASSWORD}).status_code == 400
    assert outbox(app) == []
    page = client.get("/account/mfa").get_data(as_text=True)
    secret = re.search(r'id="mfa-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    totp = pyotp.TOTP(secret)
    enrolled = form_post(client, "/account/mfa", {"code": totp.at(now)})
    assert enrolled.status_code == 200
    codes = re.findall(r"\b[a-z2-9]{5}-[a-z2-9]{5}\b", enrolled.get_data(as_text=True))
    assert form_post(client, "/account/mfa/disable", {"password": PASSWORD, "code": totp.at(now + 30)}) \
        .status_code == 200
    assert form_post(client, "/account/password", {"current": PASSWORD, "password": NEW_PASSWORD,
                                                   "confirm": NEW_PASSWORD}).status_code == 200
    service.reset_mfa(engine, user_id=uid(app, "employer"), actor=USERS["admin"][0])
    service.set_password(engine, user_id=uid(app, "employer"), new=PASSWORD, actor=USERS["admin"][0])
    _user, token = resets.create_token(engine, email=who, ttl_minutes=30)
    resets.complete_reset(engine, token=token, new_password=NEW_PASSWORD)

    messages = outbox(app)
    assert [m["To"] for m in messages] == [who] * 6
    expected = ["Two-factor authentication is on", "Two-factor authentication is off", "password was changed",
                "Two-factor authentication of your Claims Analytics account was reset", "password was reset",
                "password was reset"]
    assert [words in m["Subject"] for words, m in zip(expected, messages, strict=True)] == [True] * 6
    for message in messages:
        body = body_of(message)
        assert who in body
        for secret_text in (PASSWORD, NEW_PASSWORD, secret, token, *codes, "127.0.0.1"):
            assert secret_text not in body
        assert re.findall(r"https?://\S+", body) == [f"{base}/login"]  # the configured address only
