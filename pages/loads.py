"""Admin: upload Tuva CSVs or X12 835/834 files and load them with the same loader as the CLI."""

from __future__ import annotations

import base64
import binascii
import re
import shutil
import tempfile
from pathlib import Path

import dash_bootstrap_components as dbc
from dash import Input, Output, State, dcc, html

from dashboard import jobs
from dashboard.errors import BadInput, DashboardError
from dashboard.files import open_private
from dashboard.ui.context import app_db, warehouse_url
from dashboard.ui.registry import callback, page
from dashboard.warehouse.loaders.run import run_load

FORMATS = [{"label": "Tuva input layer CSVs (medical_claim / pharmacy_claim / eligibility .csv)", "value": "tuva"},
           {"label": "X12 835 remittance advice", "value": "x12-835"},
           {"label": "X12 834 benefit enrollment", "value": "x12-834"}]
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def layout(scope, **_):
    return html.Div([
        html.H3("Load data", className="mb-3"),
        html.P("Files are checked first; a load either commits completely or changes nothing. Loading the same "
               "file again changes nothing.", className="text-muted"),
        dbc.Row([dbc.Col([dbc.Label("Format", html_for="load-format"),
                          dcc.Dropdown(id="load-format", options=FORMATS, value="x12-835", clearable=False)], md=6)],
                className="mb-3"),
        dbc.Checkbox(id="load-allow-unbalanced", value=False, className="mb-3",
                     label="Accept 835 files that break the balancing rules (each problem is listed as a warning)"),
        dcc.Upload(id="load-upload", multiple=True, max_size=MAX_UPLOAD_BYTES,
                   children=html.Div(["Drag files here or ", html.A("choose files")]),
                   className="border border-2 rounded p-4 text-center bg-white mb-3", style={"borderStyle": "dashed"}),
        dcc.Store(id="load-job"),
        dcc.Interval(id="load-poll", interval=700, disabled=True),
        html.Div(id="load-status"),
    ])


page(__name__, path="/admin/loads", title="Load data", audience="admin", layout=layout, order=95)


def _save_uploads(contents: list[str], names: list[str], folder: Path) -> list[Path]:
    paths = []
    for content, name in zip(contents, names, strict=True):
        try:
            data = base64.b64decode(content.split(",", 1)[1], validate=True)
        except (IndexError, binascii.Error):
            raise BadInput(f"{name}: the upload is not readable") from None
        path = folder / (SAFE_NAME.sub("_", Path(name).name) or "upload")
        with open_private(path, mode="wb") as handle:  # PHI: owner-only, like every file the app writes
            handle.write(data)
        paths.append(path)
    return paths


@callback(Output("load-job", "data"), Output("load-poll", "disabled"), Input("load-upload", "contents"),
          State("load-upload", "filename"), State("load-format", "value"), State("load-allow-unbalanced", "value"),
          audience="admin", prevent_initial_call=True)
def start_load(scope, contents, names, fmt, allow_unbalanced):
    if not contents:
        return None, True
    folder = Path(tempfile.mkdtemp(prefix="dashboard-upload-"))
    try:
        paths = _save_uploads(contents, names, folder)
    except BadInput:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    url, db = warehouse_url(), app_db()  # the thread runs outside the request context

    def work(progress):
        try:
            from dashboard.auth import service

            target = [folder] if fmt == "tuva" else paths
            progress(f"checking {len(paths)} file(s) as {fmt}")
            detail = {"format": fmt, "files": [p.name for p in paths], "allow_unbalanced": allow_unbalanced is True}
            try:
                lines = run_load(url, fmt=fmt, paths=target, progress=progress,
                                 allow_unbalanced=allow_unbalanced is True)
            except DashboardError as exc:
                service.audit(db, "load.rejected", user_id=scope.user_id, email=scope.email,
                              detail={**detail, "error": str(exc)})
                raise
            service.audit(db, "load", user_id=scope.user_id, email=scope.email, detail={**detail, "result": lines})
            return lines
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    job = jobs.start(work, owner=scope.user_id)
    return job.id, False


@callback(Output("load-status", "children"), Output("load-poll", "disabled", allow_duplicate=True),
          Input("load-poll", "n_intervals"), State("load-job", "data"), audience="admin", prevent_initial_call=True)
def poll_load(scope, _n, job_id):
    job = jobs.get(job_id, owner=scope.user_id)
    if job is None:
        return "", True
    lines = [html.Div(line) for line in job.lines]
    if job.status == "running":
        return dbc.Alert([dbc.Spinner(size="sm", spinner_class_name="me-2"), "Loading…", *lines], color="info"), False
    if job.status == "failed":
        return dbc.Alert([html.Strong("Nothing was loaded. "), job.error, *lines], color="danger",
                         id="load-error"), True
    return dbc.Alert([html.Strong("Loaded. "), *lines], color="success", id="load-done"), True
