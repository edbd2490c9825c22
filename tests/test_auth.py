"""Accounts below the HTTP layer and the corners the attacker tests do not reach: TOTP steps, secrets at
rest, the MFA lockout counter, the pending second step, mail over SMTP, upgrades of an older app DB."""

from __future__ import annotations

import email
import re
import socketserver
import threading
import time

import pyotp
import pytest
import sqlalchemy as sa

from dashboard.auth import mfa, models, service
from dashboard.errors import AccessDenied
from tests.conftest import PASSWORD, USERS, make_app
from tests.test_security import enrol, form_post, login, not_a_code, outbox_links, user_id


@pytest.fixture
def app(tmp_path, fixture_warehouse_url):
    return make_app(tmp_path, fixture_warehouse_url)


def _engine(app):
    return app.extensions["dashboard"].app_db


def _settings(app):
    return app.extensions["dashboard"].settings


def _early_in_a_step() -> float:
    """Now, after waiting out a 30 s step that is about to end: codes computed relative to this moment
    then stay inside the server's window for the rest of the test."""
    left = 30 - time.time() % 30
    if left < 5:
        time.sleep(left + 0.1)
    return time.time()


def test_totp_accepts_one_step_of_drift_and_never_an_older_step(app):
    settings = _settings(app)
    uid = user_id(app, "practice")
    secret = mfa.begin_enrolment(_engine(app), user_id=uid, secret_key=settings.secret_key)
    assert mfa.begin_enrolment(_engine(app), user_id=uid, secret_key=settings.secret_key) == secret  # reload
    totp = pyotp.TOTP(secret)
    now = _early_in_a_step()
    mfa.confirm_enrolment(_engine(app), user_id=uid, code=totp.at(now - 30), secret_key=settings.secret_key)

    def verify(code):
        return mfa.verify_second_factor(_engine(app), user_id=uid, code=code, secret_key=settings.secret_key,
                                        max_attempts=50, lockout_minutes=15)

    assert verify(totp.at(now + 30))[1] == "totp"  # one step ahead: clock drift
    for stale in (totp.at(now), totp.at(now - 30), totp.at(now + 30)):  # not later than the last one used
        with pytest.raises(AccessDenied):
            verify(stale)
    with pytest.raises(AccessDenied):
        verify(totp.at(now + 90))  # three steps ahead: too far


def test_secrets_are_encrypted_and_a_new_secret_key_leaves_only_recovery_codes(tmp_path, fixture_warehouse_url):
    app = make_app(tmp_path, fixture_warehouse_url, secret_key="first-key")
    uid = user_id(app, "employer")
    secret = mfa.begin_enrolment(_engine(app), user_id=uid, secret_key="first-key")
    codes = mfa.confirm_enrolment(_engine(app), user_id=uid, code=pyotp.TOTP(secret).now(),
                                  secret_key="first-key")
    with _engine(app).connect() as conn:
        stored = conn.execute(sa.select(models.users.c.mfa_secret).where(models.users.c.id == uid)).scalar_one()
    assert secret not in stored

    def verify(code):
        return mfa.verify_second_factor(_engine(app), user_id=uid, code=code, secret_key="rotated-key",
                                        max_attempts=50, lockout_minutes=15)

    with pytest.raises(AccessDenied):
        verify(pyotp.TOTP(secret).at(time.time() + 30))
    assert verify(codes[0])[1] == "recovery"
    assert mfa.remaining_recovery_codes(_engine(app), user_id=uid) == 9


def test_re_entering_the_password_does_not_reset_the_code_guess_count(app):
    """Password right, 3 wrong codes, password again, 2 wrong codes: locked (5 failures, not 3 + 2)."""
    totp = enrol(app, "practice")
    client = app.test_client()
    for guesses in (3, 2):
        assert login(client, "practice").headers["Location"] == "/login/mfa"
        for _ in range(guesses):
            response = form_post(client, "/login/mfa", {"code": not_a_code(totp)})
    assert "locked" in response.get_data(as_text=True)
    assert login(app.test_client(), "practice").status_code == 401


def test_the_password_step_expires_after_five_minutes(app):
    totp = enrol(app, "practice")
    client = app.test_client()
    login(client, "practice")
    with client.session_transaction() as sess:
        sess["mfa_pending"] = {**sess["mfa_pending"], "at": sess["mfa_pending"]["at"] - 301}
    response = form_post(client, "/login/mfa", {"code": totp.at(time.time() + 30)})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert client.get("/practice").status_code == 302


def test_an_mfa_user_can_turn_it_off_with_both_factors_only(app):
    key, uid, now = _settings(app).secret_key, user_id(app, "employer"), _early_in_a_step()
    totp = pyotp.TOTP(mfa.begin_enrolment(_engine(app), user_id=uid, secret_key=key))
    mfa.confirm_enrolment(_engine(app), user_id=uid, code=totp.at(now - 30), secret_key=key)  # three steps
    client = app.test_client()  # in a row, so that the test needs no waiting: enrol, log in, turn off
    login(client, "employer")
    assert form_post(client, "/login/mfa", {"code": totp.at(now)}).status_code == 302
    page = client.get("/account/mfa").get_data(as_text=True)
    assert "10 unused recovery codes left" in page
    refused = form_post(client, "/account/mfa/disable", {"password": PASSWORD, "code": not_a_code(totp)})
    assert refused.status_code == 400
    done = form_post(client, "/account/mfa/disable", {"password": PASSWORD, "code": totp.at(now + 30)})
    assert done.status_code == 200
    assert not service.get_user(_engine(app), user_id=user_id(app, "employer")).mfa_enabled
    actions = [e["action"] for e in service.audit_entries(_engine(app))]
    assert "mfa.disable" in actions
    assert "mfa.disable_failure" in actions


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP to receive one message: what a relay on the network would see."""

    def handle(self) -> None:
        self.wfile.write(b"220 test ESMTP\r\n")
        lines: list[bytes] | None = None
        for line in self.rfile:
            if lines is not None:
                if line.rstrip(b"\r\n") == b".":
                    self.server.messages.append(b"".join(lines))
                    lines = None
                    self.wfile.write(b"250 queued\r\n")
                else:
                    lines.append(line)
                continue
            verb = line[:4].upper()
            if verb == b"DATA":
                lines = []
                self.wfile.write(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.messages = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_reset_mail_goes_over_smtp_when_configured(tmp_path, fixture_warehouse_url, smtp_server):
    app = make_app(tmp_path, fixture_warehouse_url, smtp_host="127.0.0.1", smtp_port=smtp_server.server_address[1],
                   smtp_starttls=False, public_url="https://claims.example.org/", mail_from="noreply@example.org")
    form_post(app.test_client(), "/forgot", {"email": USERS["practice"][0]})
    [raw] = smtp_server.messages
    message = email.message_from_bytes(raw)
    assert message["To"] == USERS["practice"][0]
    assert message["From"] == "noreply@example.org"
    link = re.search(r"https://claims\.example\.org/reset/([\w-]+)", message.get_payload(decode=True).decode())
    assert link  # the configured public address, never the request's Host header
    assert not outbox_links(app)
    assert app.test_client().get(f"/reset/{link.group(1)}").status_code == 200


def test_a_mail_failure_changes_nothing_in_the_answer(tmp_path, fixture_warehouse_url):
    app = make_app(tmp_path, fixture_warehouse_url, smtp_host="127.0.0.1", smtp_port=1, smtp_starttls=False)
    client = app.test_client()
    known = form_post(client, "/forgot", {"email": USERS["practice"][0]})
    unknown = form_post(client, "/forgot", {"email": "nobody@test.example"})
    assert known.status_code == unknown.status_code == 200
    assert known.get_data() == unknown.get_data()
    assert "mail.failure" in [e["action"] for e in service.audit_entries(_engine(app))]


def test_an_older_app_db_gains_the_new_columns_and_tables(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    old = sa.MetaData()
    sa.Table("users", old, *[c.copy() for c in models.users.columns if c.name != "mfa_last_step"])
    old.create_all(engine)
    service.create_tables(engine)
    inspector = sa.inspect(engine)
    assert "mfa_last_step" in {c["name"] for c in inspector.get_columns("users")}
    assert inspector.has_table("sessions")
