"""The admin upload page runs the same loader as the CLI, in the background, and shows the result."""

from __future__ import annotations

import base64
import json
import time

import sqlalchemy as sa

from dashboard.auth import service
from dashboard.warehouse import schema as s
from dashboard.warehouse.engine import create_schema, writer_engine
from tests.conftest import make_app
from tests.test_load_x12 import MANAGED
from tests.test_security import dash_post, engine_of, logged_in, server_callbacks


def _callback(app, output: str) -> tuple[str, dict]:
    return next((k, v) for k, v in server_callbacks(app).items() if output in k)


def upload(client, app, files: dict[str, bytes], *, fmt: str = "x12-835", allow_unbalanced: bool = False) -> dict:
    key, spec = _callback(app, "load-job.data")
    values = {"load-upload.contents": [f"data:application/octet-stream;base64,{base64.b64encode(b).decode()}"
                                       for b in files.values()],
              "load-upload.filename": list(files), "load-format.value": fmt,
              "load-allow-unbalanced.value": allow_unbalanced}
    response = dash_post(client, key, spec, values, changed=["load-upload.contents"])
    assert response.status_code == 200, response.get_data(as_text=True)
    job_id = response.get_json()["response"]["load-job"]["data"]
    poll_key, poll_spec = _callback(app, "load-status.children")
    for _ in range(200):
        answer = dash_post(client, poll_key, poll_spec, {"load-poll.n_intervals": 1, "load-job.data": job_id},
                           changed=["load-poll.n_intervals"])
        assert answer.status_code == 200
        status = answer.get_json()["response"]["load-status"]["children"]
        if "Loading" not in json.dumps(status):
            return status
        time.sleep(0.05)
    raise AssertionError("the load did not finish")


def _new_warehouse(tmp_path) -> str:
    url = f"duckdb:///{tmp_path / 'upload-wh' / 'warehouse.duckdb'}"
    (tmp_path / "upload-wh").mkdir()
    engine = writer_engine(url)
    create_schema(engine)
    engine.dispose()
    return url


def _remittances(url: str) -> list[tuple]:
    engine = writer_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(s.remittance.c.trace_number, s.remittance.c.amount)).all()
    engine.dispose()
    return [(t, float(a)) for t, a in rows]


def test_admin_uploads_an_835_and_sees_the_result(tmp_path):
    url = _new_warehouse(tmp_path)
    app = make_app(tmp_path, url)
    client = logged_in(app, "admin")
    status = upload(client, app, {"managed-care.835": MANAGED.read_bytes()})
    text = json.dumps(status)
    assert "load-done" in text
    assert "1 remittance, 2 claim_payment, 5 claim_adjustment" in text
    assert _remittances(url) == [("7170066655", 945.0)]
    entry = next(e for e in service.audit_entries(engine_of(app)) if e["action"] == "load")
    assert json.loads(entry["detail"])["files"] == ["managed-care.835"]
    # The same file again changes nothing.
    assert "already loaded" in json.dumps(upload(client, app, {"managed-care.835": MANAGED.read_bytes()}))
    assert _remittances(url) == [("7170066655", 945.0)]


def test_a_bad_upload_changes_nothing_and_says_where(tmp_path):
    url = _new_warehouse(tmp_path)
    app = make_app(tmp_path, url)
    client = logged_in(app, "admin")
    bad = MANAGED.read_bytes().replace(b"BPR*I*945.00*", b"BPR*I*950.00*")
    status = json.dumps(upload(client, app, {"good.835": MANAGED.read_bytes(), "bad.835": bad}))
    assert "load-error" in status
    assert "Nothing was loaded" in status
    assert "bad.835" in status
    assert "does not balance" in status
    assert _remittances(url) == []
    assert any(e["action"] == "load.rejected" for e in service.audit_entries(engine_of(app)))
    # Accepting unbalanced files loads both, with the problem as a warning.
    status = json.dumps(upload(client, app, {"bad.835": bad}, allow_unbalanced=True))
    assert "warning: does not balance" in status
    assert _remittances(url) == [("7170066655", 950.0)]


def test_only_admins_can_upload(tmp_path):
    url = _new_warehouse(tmp_path)
    app = make_app(tmp_path, url)
    for who in ("practice", "employer"):
        client = logged_in(app, who)
        key, spec = _callback(app, "load-job.data")
        values = {"load-upload.contents": ["data:;base64," + base64.b64encode(MANAGED.read_bytes()).decode()],
                  "load-upload.filename": ["managed-care.835"], "load-format.value": "x12-835"}
        response = dash_post(client, key, spec, values, changed=["load-upload.contents"])
        assert response.status_code in (204, 403)  # nothing, never a job
    assert _remittances(url) == []
