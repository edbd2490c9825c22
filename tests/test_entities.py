"""One lookup of which practices and employers exist (dashboard.entities), used by the CLI, the admin's scope
form and the filter bars: an employer that arrives only through Tuva eligibility (a group_id with no
``employer`` row) can be granted, picked and reported on; DuckDB and PostgreSQL.

Worked by hand: eligibility.csv enrolls 12 employees (P01..P12, each their own subscriber) of group G9
"Nine Inc" for all of 2026, so January-March 2026 has 12 members and 36 member months. medical_claim.csv is
claim A1 of test_load_tuva (P01, 2026-01-05, lines paid 80.00 and -9.00, allowed 100.00 and 10.00): 71.00
paid and 110.00 allowed in an enrolled month. The warehouse holds G9's claims for January only (its first
claim month to its newest payment), so February and March are "no data", not $0: PMPM paid 71 / 12 = 5.92.
Its billing TIN 123456789 has no practice row: a claims feed names the providers it paid, which are not
practices of the product.
"""

from __future__ import annotations

import csv
import io

from click.testing import CliRunner

from dashboard import entities
from dashboard.cli import cli
from dashboard.ui.registry import component_props
from dashboard.warehouse.engine import reader_engine
from dashboard.warehouse.loaders.run import run_load
from tests.conftest import PASSWORD, make_app
from tests.test_load_tuva import MEDICAL, write_csv
from tests.test_security import admin_action, dash_post, logged_in, server_callbacks

NINE = {"label": "Nine Inc (G9)", "value": "G9"}
EMPLOYEES = [
    {"person_id": f"P{n:02d}", "member_id": f"M{n:02d}", "subscriber_id": f"M{n:02d}", "gender": "female",
     "birth_date": "1980-02-03", "enrollment_start_date": "2026-01-01", "enrollment_end_date": "2026-12-31",
     "payer": "ACME", "plan": "PPO", "group_id": "G9", "group_name": "Nine Inc", "subscriber_relation": "self",
     "data_source": "plan_x"}
    for n in range(1, 13)
]


def _load_tuva(tmp_path, url: str) -> None:
    directory = tmp_path / "tuva"
    directory.mkdir()
    write_csv(directory / "eligibility.csv", EMPLOYEES)
    write_csv(directory / "medical_claim.csv", [dict(row, person_id="P01", member_id="M01") for row in MEDICAL])
    run_load(url, fmt="tuva", paths=[directory])


def _routed(client, app, path: str) -> dict[str, dict]:
    """The page's components by id, as the router callback answers the browser."""
    callbacks = server_callbacks(app)
    router = next(k for k in callbacks if "_pages_content" in k)
    response = dash_post(client, router, callbacks[router], {"_pages_location.pathname": path,
                                                             "_pages_location.search": ""})
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return component_props(response.get_json())


def _csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_the_lookup_names_tenants_from_the_facts(warehouse_url, tmp_path):
    _load_tuva(tmp_path, warehouse_url)
    engine = reader_engine(warehouse_url)
    with engine.connect() as conn:
        known = entities.lookup(conn)
    engine.dispose()
    assert known.employers == {"G9": "Nine Inc"}  # no employer row: the name comes from eligibility.group_name
    assert known.practices == {}  # a billing TIN of a claims feed is no practice
    assert known.options("employer") == [NINE]
    assert known.options("employer", within=()) == []


def test_an_employer_known_only_from_tuva_eligibility_can_be_granted_picked_and_reported(warehouse_url, tmp_path,
                                                                                         monkeypatch):
    _load_tuva(tmp_path, warehouse_url)
    app = make_app(tmp_path, warehouse_url)
    try:
        admin = logged_in(app, "admin")
        # the admin's scope form offers it ...
        form = _routed(admin, app, "/admin")
        assert NINE in form["admin-new-employers"]["options"]
        assert NINE in form["admin-edit-employers"]["options"]
        # ... and accepts it
        created = admin_action(admin, app, "admin-create", email="nine@test.example", new_role="employer_admin",
                               new_employers=["G9"], password=PASSWORD, invite=False)
        assert created.status_code == 200, created.get_data(as_text=True)[:300]
        assert "Created nine@test.example." in created.get_data(as_text=True)
        # the employer page's filter bar offers it to an admin (with the fixture-less warehouse: only it)
        assert _routed(admin, app, "/employer")["employer-entity"]["options"] == [NINE]
        summary = _csv(admin.get("/export/employer-summary.csv?from=2026-01&to=2026-03&employer=G9")
                       .get_data(as_text=True))
        assert [(r["employer_id"], r["members"], r["member_months"], r["paid"], r["allowed"], r["pmpm_paid"])
                for r in summary] == [("G9", "12", "36", "71.00", "110.00", "5.92")]
        # claims data reach January only (A1, paid then): PMPM is over January's 12 member months, not 36
        assert summary[0]["claims_months"] == "1"

        # the user it was granted to sees it in their filter bar and sees its data (de-identified: 12 is
        # above the small-cell range, so the counts are published)
        user = logged_in(app, "nine@test.example")
        assert _routed(user, app, "/employer")["employer-entity"]["options"] == [NINE]
        rows = _csv(user.get("/export/enrollment.csv?from=2026-01&to=2026-03").get_data(as_text=True))
        assert [(r["employer_id"], r["month"], r["members"], r["subscribers"], r["member_months"]) for r in rows] \
            == [("G9", "2026-01", "12", "12", "12"), ("G9", "2026-02", "12", "12", "12"),
                ("G9", "2026-03", "12", "12", "12")]
        mine = _csv(user.get("/export/employer-summary.csv?from=2026-01&to=2026-03").get_data(as_text=True))
        assert [(r["employer_id"], r["members"], r["member_months"]) for r in mine] == [("G9", "12", "36")]
    finally:
        app.extensions["dashboard"].app_db.dispose()
        app.extensions["dashboard"].warehouse().dispose()

    # the CLI knows it too: `dashboard report` and `users add`
    monkeypatch.setenv("DASHBOARD_WAREHOUSE_URL", warehouse_url)
    monkeypatch.setenv("DASHBOARD_APP_DB_URL", f"sqlite:///{tmp_path / 'app.sqlite'}")
    monkeypatch.setenv("DASHBOARD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DASHBOARD_SECRET_KEY", "cli-test")
    done = CliRunner().invoke(cli, ["report", "employer-summary", "--employer", "G9", "--from", "2026-01",
                                    "--to", "2026-03"], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert [(r["employer_id"], r["members"], r["paid"]) for r in _csv(done.stdout)] == [("G9", "12", "71.00")]
    added = CliRunner().invoke(cli, ["users", "add", "nine2@test.example", "--role", "employer_admin",
                                     "--employer", "G9", "--password-stdin"], input=PASSWORD + "\n",
                               catch_exceptions=False)
    assert added.exit_code == 0, added.output
