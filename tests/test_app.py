"""The app shell over HTTP: login, deny by default, exports, callbacks, errors."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.conftest import PASSWORD


def test_healthz_is_public(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"app_db": "ok", "warehouse": "ok"}


@pytest.mark.parametrize("path", ["/", "/practice", "/employer", "/admin", "/reports"])
def test_pages_redirect_to_login_without_session(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("path", ["/export/practice-kpis.csv", "/_dash-layout", "/_dash-dependencies",
                                  "/admin/audit.csv"])
def test_data_paths_answer_401_without_session(client, path):
    assert client.get(path).status_code == 401


def test_callback_without_session_is_401(client):
    response = client.post("/_dash-update-component", json={"output": "practice-cards.children"})
    assert response.status_code == 401


def test_login_needs_csrf_token(client):
    response = client.post("/login", data={"email": "admin@test.example", "password": PASSWORD})
    assert response.status_code == 400


def test_wrong_password_and_unknown_email_answer_alike(client, auth):
    wrong = auth.login("admin", password="not the password at all")
    unknown = auth.login("nobody@test.example")
    assert wrong.status_code == unknown.status_code == 401
    assert "Invalid email or password" in wrong.get_data(as_text=True)
    assert "Invalid email or password" in unknown.get_data(as_text=True)


def test_login_then_pages_and_logout(client, auth):
    response = auth.login("practice")
    assert response.status_code == 302
    assert client.get("/practice").status_code == 200
    auth.logout()
    assert client.get("/practice").status_code == 302


def test_pages_declare_their_language_and_fold_the_navbar_on_small_screens(client, auth):
    """Issue 12 item 10: <html lang="en">; the navbar's links sit in a collapse opened by a menu button below
    768 px (expand="md"), toggled in the browser."""
    auth.login("practice")
    assert '<html lang="en">' in client.get("/practice").get_data(as_text=True)
    shell = client.get("/_dash-layout").get_json()
    navbar = _components(shell, "Navbar")[0]
    assert navbar["props"]["expand"] == "md"
    assert [c["props"]["id"] for c in _components(navbar, "Collapse")] == ["nav-collapse"]
    toggler = _components(navbar, "NavbarToggler")[0]
    assert "Menu" in json.dumps(toggler)  # a name for screen readers
    assert {"nav-user", "nav-logout"} <= {c["props"].get("id") for c in _components(navbar["props"], "Span")
                                          + _components(navbar["props"], "Button")}


def _components(tree, kind: str) -> list[dict]:
    """Every component of type ``kind`` in a Dash layout's JSON."""
    found = []
    if isinstance(tree, dict):
        if tree.get("type") == kind:
            found.append(tree)
        for value in tree.values():
            found += _components(value, kind)
    elif isinstance(tree, list):
        for item in tree:
            found += _components(item, kind)
    return found


def test_a_get_to_logout_only_asks(client, auth):
    """A link or <img src="/logout"> on another site must not end the session: only a POST with the token does."""
    auth.login("practice")
    page = client.get("/logout")
    assert page.status_code == 200
    assert 'action="/logout"' in page.get_data(as_text=True)
    assert client.get("/practice").status_code == 200
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 400
    assert client.get("/practice").status_code == 200
    with client.session_transaction() as sess:
        token = sess["csrf"]
    forms = _components(client.get("/_dash-layout").get_json(), "Form")
    assert [(f["props"]["action"], f["props"]["method"]) for f in forms] == [("/logout", "POST")]  # the navbar's
    assert token in json.dumps(forms)
    assert auth.logout().headers["Location"] == "/login"
    assert client.get("/practice").status_code == 302
    assert client.get("/logout").headers["Location"] == "/login"


def test_security_headers(client, auth):
    auth.login("admin")
    response = client.get("/practice")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    cookie = response.headers.get("Set-Cookie", "")
    assert "_csrf_token=" in cookie


def test_export_streams_csv_within_scope(client, auth):
    auth.login("practice")
    response = client.get("/export/practice-kpis.csv?from=2026-01&to=2026-03")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert {r["practice_id"] for r in rows} == {"111111111"}
    jan = next(r for r in rows if r["month"] == "2026-01")
    assert jan["charges"] == "300.00"
    assert jan["denial_rate"] == "0.5"


def test_export_refuses_other_practice(client, auth):
    auth.login("practice")
    response = client.get("/export/practice-kpis.csv?practice=222222222")
    assert response.status_code == 403
    assert "222222222" in response.get_data(as_text=True)  # the id they asked for, nothing more


def test_export_refuses_wrong_audience(client, auth):
    auth.login("practice")
    assert client.get("/export/enrollment.csv").status_code == 403
    auth.logout()
    auth.login("employer")
    assert client.get("/export/ar-aging.csv").status_code == 403


def test_export_bad_input_is_a_clear_400(client, auth):
    auth.login("admin")
    response = client.get("/export/practice-kpis.csv?from=2026-13")
    assert response.status_code == 400
    assert "YYYY-MM" in response.get_data(as_text=True)
    assert client.get("/export/no-such-report.csv").status_code == 404
    assert client.get("/export/practice-kpis.csv?practice=000000000").status_code == 404


def test_employer_export_is_suppressed(client, auth):
    auth.login("employer")
    response = client.get("/export/enrollment.csv?from=2026-01&to=2026-03")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert rows
    assert all(r["members"] == "" for r in rows)  # every fixture cell is 1..10
    assert all(r["suppressed"] == "true" for r in rows)


def test_admin_sees_employer_data_unsuppressed(client, auth):
    auth.login("admin")
    rows = list(csv.DictReader(io.StringIO(
        client.get("/export/enrollment.csv?from=2026-01&to=2026-01&employer=GRP1").get_data(as_text=True))))
    assert sum(int(r["members"]) for r in rows) == 4


def _dash_post(client, output, inputs):
    token = client.get_cookie("_csrf_token")
    return client.post("/_dash-update-component", json={
        "output": output, "outputs": {"id": output.split(".")[0], "property": output.split(".")[1]},
        "inputs": inputs, "changedPropIds": [], "state": []},
        headers={"X-CSRFToken": token.value if token else ""})


def test_callback_needs_csrf_header(client, auth):
    auth.login("practice")
    client.get("/practice")
    response = client.post("/_dash-update-component", json={"output": "practice-cards.children"})
    assert response.status_code == 403


def test_callback_renders_in_scope_and_refuses_out_of_scope(client, auth):
    auth.login("practice")
    client.get("/practice")
    client.get("/_dash-layout")
    inputs = [{"id": "practice-from", "property": "value", "value": "2026-01"},
              {"id": "practice-to", "property": "value", "value": "2026-03"},
              {"id": "practice-entity", "property": "value", "value": "111111111"}]
    ok = _dash_post(client, "practice-cards.children", inputs)
    assert ok.status_code == 200
    assert "Days in A" in ok.get_data(as_text=True)
    assert '"222222222"' not in ok.get_data(as_text=True)  # as an id, not digits of a float
    inputs[2]["value"] = "222222222"
    refused = _dash_post(client, "practice-cards.children", inputs)
    assert refused.status_code == 204
    assert "222222222" not in refused.get_data(as_text=True)


def test_unknown_callback_output_is_refused(client, auth):
    auth.login("admin")
    client.get("/practice")
    assert _dash_post(client, "nothing-here.children", []).status_code == 403


def test_page_of_other_audience_shows_no_access(client, auth):
    auth.login("employer")
    client.get("/employer")
    response = _dash_post(client, "practice-cards.children", [
        {"id": "practice-from", "property": "value", "value": "2026-01"},
        {"id": "practice-to", "property": "value", "value": "2026-03"},
        {"id": "practice-entity", "property": "value", "value": None}])
    assert response.status_code == 204


def test_every_registered_callback_is_declared(app):
    from dashboard.ui import registry

    dash_app = app.extensions["dashboard"].dash_app
    with app.test_request_context():
        app.preprocess_request()
    for output in dash_app.callback_map:
        assert registry.is_registered_output(dash_app, output), output
    assert json.dumps(sorted(dash_app.callback_map))  # serialisable ids


def test_dash_is_set_up_before_the_first_request(tmp_path, fixture_warehouse_url):
    """Dash registers the component-suite files it may serve on a process's first request, after marking that
    done: a cold worker's other threads answered those files with 500. create_app sets Dash up itself, so a
    new app knows every suite file before any request, and its CSP hashes with them."""
    from tests.conftest import make_app

    app = make_app(tmp_path, fixture_warehouse_url)
    dash_app = app.extensions["dashboard"].dash_app
    assert {"dash", "dash_bootstrap_components", "dash_ag_grid"} <= set(dash_app.registered_paths)
    assert any("react" in path for path in dash_app.registered_paths["dash"])
    assert dash_app.csp_hashes()
