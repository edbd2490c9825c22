"""The pages paint in pieces: cards, charts and grids answer on their own, grids one page of rows at a time,
sorted and filtered on the server (claim-level reports in SQL), suppressed for employer users, and a page's
first response stays small."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from dashboard import access, paging
from dashboard.errors import AccessDenied, BadInput, NotFound
from dashboard.reports import report_page, run_report
from dashboard.ui import registry
from dashboard.ui.registry import component_props
from dashboard.warehouse.engine import create_schema, writer_engine
from tests.conftest import PASSWORD, module_warehouse
from tests.fixtures import load_employer_fixture, load_practice_fixture
from tests.test_security import dash_post, logged_in, login, server_callbacks

P1, E1 = "111111111", "GRP1"
ADMIN = access.scope_for(role="admin")
FIRST_BLOCK = {"startRow": 0, "endRow": 50, "sortModel": [], "filterModel": {}}
FIRST_RESPONSE_LIMIT = 150_000


def _key(spec: registry.CallbackSpec) -> str:
    outputs = [str(a) for a in spec.args if type(a).__name__ == "Output"]
    return outputs[0] if len(outputs) == 1 else ".." + "...".join(outputs) + ".."


def page_callbacks(module: str) -> list[str]:
    return [_key(spec) for spec in registry.CALLBACKS.values() if spec.func.__module__ == module]


def values_for(prefix: str, entity: str | None, request: dict | None = None, **extra) -> dict:
    values = {f"{prefix}-from.value": "2026-01", f"{prefix}-to.value": "2026-03", f"{prefix}-entity.value": entity,
              **extra}
    for spec in registry.CALLBACKS.values():
        for item in spec.args:
            if type(item).__name__ == "Input" and item.component_property == "getRowsRequest":
                values[f"{item.component_id}.getRowsRequest"] = request or FIRST_BLOCK
    return values


def call(client, app, key: str, values: dict):
    spec = server_callbacks(app)[key]
    return dash_post(client, key, spec, values)


def grid_key(grid_id: str) -> str:
    return f"..{grid_id}.getRowsResponse...{grid_id}-csv.href...{grid_id}-status.children.."


def grid_rows(client, app, grid_id: str, values: dict) -> dict:
    response = call(client, app, grid_key(grid_id), values)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return response.get_json()["response"]


# --- every piece answers for its role, and only for it ------------------------------------------------------

@pytest.mark.parametrize(("module", "prefix", "who", "own", "other"), [
    ("pages.practice", "practice", "practice", P1, "employer"),
    ("pages.employer", "employer", "employer", E1, "practice"),
])
def test_each_page_callback_answers_its_role_only(app, module, prefix, who, own, other):
    keys = page_callbacks(module)
    assert len(keys) >= 7  # cards, chart(s) and one callback per grid
    mine, theirs = logged_in(app, who), logged_in(app, other)
    for key in keys:
        response = call(mine, app, key, values_for(prefix, own))
        assert response.status_code == 200, (key, response.get_data(as_text=True)[:300])
        assert call(theirs, app, key, values_for(prefix, None)).status_code == 204, key


def test_cards_answer_with_the_period_kpis(app):
    client = logged_in(app, "practice")
    body = call(client, app, "practice-cards.children", values_for("practice", P1)).get_data(as_text=True)
    assert "Days in A" in body
    assert "at end of 2026-03" in body
    employer = logged_in(app, "employer")
    body = call(employer, app, "employer-cards.children", values_for("employer", E1)).get_data(as_text=True)
    assert "Members over $50k" in body
    assert "paid in 2026" in body


def test_employer_cards_and_chart_mark_months_without_claims_data(app):
    """April 2026 has member months but no claims data (tests/fixtures.py): the cards say so, the PMPM chart
    marks the month, and a period of only such months reads "no data" for PMPM, never $0.00."""
    admin = logged_in(app, "admin")
    april = values_for("employer", E1, **{"employer-to.value": "2026-04"})
    body = call(admin, app, "employer-cards.children", april).get_data(as_text=True)
    assert "1 without claims data" in body
    chart = registry.component_props(call(admin, app, "employer-pmpm-box.children", april).get_json())
    layout = chart["employer-pmpm"]["figure"]["layout"]
    assert [a["text"] for a in layout["annotations"]] == ["no data"]
    assert layout["xaxis"]["categoryarray"] == ["2026-01", "2026-02", "2026-03", "2026-04"]
    assert layout["modebar"]["orientation"] == "v"  # down the right edge, never over the title
    # the chart's text alternative says so too
    assert chart["employer-pmpm-text"]["children"].endswith("no data")
    only_april = values_for("employer", E1, **{"employer-from.value": "2026-04", "employer-to.value": "2026-04"})
    body = call(admin, app, "employer-cards.children", only_april).get_data(as_text=True)
    assert "no data" in body
    assert "$0.00" not in body
    complete = call(admin, app, "employer-cards.children", values_for("employer", E1)).get_data(as_text=True)
    assert "all months complete" in complete


# --- grids: one page, the right count, sorted and filtered on the server -------------------------------------

def test_a_grid_request_returns_at_most_one_page_with_the_full_count(app):
    client = logged_in(app, "admin")
    request = {"startRow": 0, "endRow": 100_000, "sortModel": [], "filterModel": {}}
    out = grid_rows(client, app, "grid-practice-kpis", values_for("practice", None, request))
    full = run_report("practice-kpis", scope=ADMIN, engine=app.extensions["dashboard"].warehouse(),
                      start="2026-01", end="2026-03").frame
    rows = out["grid-practice-kpis"]["getRowsResponse"]
    assert rows["rowCount"] == len(full)
    assert len(rows["rowData"]) <= paging.MAX_ROWS
    assert out["grid-practice-kpis-csv"]["href"] == "/export/practice-kpis.csv?from=2026-01&to=2026-03"
    second = {"startRow": 1, "endRow": 2, "sortModel": [], "filterModel": {}}
    rows = grid_rows(client, app, "grid-practice-kpis", values_for("practice", None, second))
    assert rows["grid-practice-kpis"]["getRowsResponse"]["rowData"] == \
        full.iloc[1:2].astype(object).where(full.iloc[1:2].notna(), None).to_dict("records")


def test_grid_sorts_and_filters_on_the_server(app):
    client = logged_in(app, "admin")
    request = {"startRow": 0, "endRow": 50, "sortModel": [{"colId": "charges", "sort": "desc"}],
               "filterModel": {"month": {"filterType": "text", "type": "equals", "filter": "2026-01"}}}
    rows = grid_rows(client, app, "grid-practice-kpis", values_for("practice", None, request))
    data = rows["grid-practice-kpis"]["getRowsResponse"]
    assert data["rowCount"] == len(data["rowData"]) >= 2
    assert {r["month"] for r in data["rowData"]} == {"2026-01"}
    charges = [r["charges"] for r in data["rowData"]]
    assert charges == sorted(charges, reverse=True)
    number = {"startRow": 0, "endRow": 50, "sortModel": [],
              "filterModel": {"charges": {"filterType": "number", "type": "greaterThan", "filter": 250}}}
    data = grid_rows(client, app, "grid-practice-kpis", values_for("practice", None, number))
    assert all(r["charges"] > 250 for r in data["grid-practice-kpis"]["getRowsResponse"]["rowData"])


def test_a_column_the_server_cannot_sort_is_an_error_next_to_the_grid_not_rows(app):
    client = logged_in(app, "practice")
    request = {"startRow": 0, "endRow": 50, "sortModel": [{"colId": "person_id", "sort": "asc"}], "filterModel": {}}
    out = grid_rows(client, app, "grid-practice-kpis", values_for("practice", P1, request))
    assert out["grid-practice-kpis"]["getRowsResponse"] == {"rowData": [], "rowCount": 0}
    assert "person_id" in str(out["grid-practice-kpis-status"]["children"])


def test_denied_claims_grid_pages_sorts_and_filters_in_sql(app):
    client = logged_in(app, "practice")
    key = grid_key("grid-report")
    base = {"reports-name.value": "denied-claims", "reports-from.value": "2025-10", "reports-to.value": "2026-03",
            "reports-entity.value": P1}
    full = run_report("denied-claims", scope=access.scope_for(role="practice_manager", practice_ids=[P1]),
                      engine=app.extensions["dashboard"].warehouse(), start="2025-10", end="2026-03").frame
    assert len(full)
    request = {"startRow": 0, "endRow": 50, "sortModel": [{"colId": "amount", "sort": "desc"}],
               "filterModel": {"carc": {"filterType": "text", "type": "contains", "filter": full["carc"].iloc[0]}}}
    response = call(client, app, key, {**base, "grid-report.getRowsRequest": request})
    data = response.get_json()["response"]["grid-report"]["getRowsResponse"]
    assert data["rowCount"] == int((full["carc"] == full["carc"].iloc[0]).sum())
    assert {r["carc"] for r in data["rowData"]} == {full["carc"].iloc[0]}
    assert [r["amount"] for r in data["rowData"]] == sorted((r["amount"] for r in data["rowData"]), reverse=True)
    assert all(r["practice_id"] == P1 for r in data["rowData"])
    # another practice's id in the filter bar: refused before any SQL
    other = call(client, app, key, {**base, "reports-entity.value": "222222222", "grid-report.getRowsRequest": request})
    assert other.status_code == 204


def test_an_employer_users_grid_rows_are_the_suppressed_ones(app):
    client = logged_in(app, "employer")
    out = grid_rows(client, app, "grid-enrollment", values_for("employer", E1))
    rows = out["grid-enrollment"]["getRowsResponse"]["rowData"]
    scope = access.scope_for(role="employer_admin", employer_ids=[E1])
    suppressed = run_report("enrollment", scope=scope, engine=app.extensions["dashboard"].warehouse(),
                            start="2026-01", end="2026-03", employer=E1).frame
    assert rows == suppressed.astype(object).where(suppressed.notna(), None).to_dict("records")[:50]
    assert rows
    assert all(r["suppressed"] is True and r["members"] is None for r in rows)


# --- the first response ---------------------------------------------------------------------------------------

def first_response(app, who: str, path: str) -> tuple[int, int]:
    """Bytes of /_dash-layout, the router's answer and every server callback the page fires on load (grids:
    their first block), as the browser makes them; and how many callbacks that was."""
    client = logged_in(app, who)
    client.get(path)
    total = len(client.get("/_dash-layout").data)
    callbacks = server_callbacks(app)
    router = next(k for k in callbacks if "_pages_content" in k)
    routed = dash_post(client, router, callbacks[router], {"_pages_location.pathname": path,
                                                           "_pages_location.search": ""})
    total += len(routed.data)
    ids = component_props(routed.get_json())
    values = {f"{cid}.{prop}": value for cid, props in ids.items() for prop, value in props.items()}
    fired = 0
    for key, spec in callbacks.items():
        if "_pages" in key or spec.get("prevent_initial_call") or not spec["inputs"] \
                or not all(i["id"] in ids for i in spec["inputs"]):
            continue
        filled = {**values, **{f"{i['id']}.getRowsRequest": FIRST_BLOCK for i in spec["inputs"]
                               if i["property"] == "getRowsRequest"}}
        response = dash_post(client, key, spec, filled)
        assert response.status_code == 200, (key, response.get_data(as_text=True)[:300])
        total += len(response.data)
        fired += 1
    return total, fired


@pytest.mark.parametrize(("who", "path"), [("practice", "/practice"), ("employer", "/employer"),
                                           ("admin", "/practice"), ("admin", "/employer")])
def test_first_response_is_small(app, who, path):
    total, fired = first_response(app, who, path)
    assert fired >= 7
    assert total <= FIRST_RESPONSE_LIMIT, total


# --- report_page: the SQL pages are the report's rows, on each backend ------------------------------------------

def _load(engine) -> None:
    load_practice_fixture(engine)
    load_employer_fixture(engine)


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_engine(request, tmp_path_factory):
    yield from module_warehouse(request, tmp_path_factory, _load)


@pytest.fixture(scope="module")
def demo_engine(tmp_path_factory):
    """A small demo world: enough denials and remittances for several pages."""
    from dashboard.warehouse import semantic
    from dashboard.warehouse.synthetic import generate_demo

    engine = writer_engine(f"duckdb:///{tmp_path_factory.mktemp('pagesdemo') / 'w.duckdb'}")
    create_schema(engine)
    with engine.begin() as conn:
        generate_demo(conn, claims=3_000, seed=3, progress=False)
        semantic.refresh_marts(conn)
    yield engine
    engine.dispose()


def _all_pages(name: str, engine, *, size: int = paging.MAX_ROWS, **kwargs) -> tuple[pd.DataFrame, int]:
    frames, offset, total = [], 0, None
    while total is None or offset < total:
        page = report_page(name, scope=ADMIN, engine=engine, offset=offset, limit=size, **kwargs)
        assert len(page.frame) <= paging.MAX_ROWS
        frames.append(page.frame)
        total = page.row_count
        offset += size
    return pd.concat(frames, ignore_index=True), total


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    key = list(a.columns)
    # a text column with some values is a string column in a frame (missing: NaN) but a page of only missing
    # values stays object (None): compare the cells, not how pandas typed them
    a, b = (frame.astype(object).where(frame.notna(), None) for frame in (a, b))
    pd.testing.assert_frame_equal(a.sort_values(key, kind="stable").reset_index(drop=True),
                                  b.sort_values(key, kind="stable").reset_index(drop=True), check_dtype=False)


FILTERS = [
    (),
    (paging.ColumnFilter("amount", (paging.Condition("number", "greaterThan", 100.0),)),),
    (paging.ColumnFilter("amount", (paging.Condition("number", "inRange", 20.0, 400.0),)),),
    (paging.ColumnFilter("payer", (paging.Condition("text", "contains", "a"),
                                   paging.Condition("text", "startsWith", "M")), "or"),),
    (paging.ColumnFilter("payment_date", (paging.Condition("text", "startsWith", "2026-0"),)),),
]


def _frame_all(frame: pd.DataFrame, **kwargs) -> tuple[pd.DataFrame, int]:
    """Every row frame_page (the reference implementation) would page through."""
    parts, total = [], paging.frame_page(frame, limit=0, **kwargs)[1]
    for offset in range(0, total, paging.MAX_ROWS):
        parts.append(paging.frame_page(frame, offset=offset, **kwargs)[0])
    return (pd.concat(parts, ignore_index=True) if parts else frame.iloc[0:0]), total


@pytest.mark.parametrize("name", ["denied-claims", "remittances"])
@pytest.mark.parametrize("filters", FILTERS)
def test_sql_pages_are_the_reports_rows_filtered_like_a_frame(demo_engine, name, filters):
    period = {"start": "2025-04", "end": "2026-03"}
    full = run_report(name, scope=ADMIN, engine=demo_engine, **period).frame
    wanted, wanted_total = _frame_all(full, filters=filters)
    pages, total = _all_pages(name, demo_engine, filters=filters, size=30, **period)
    assert total == wanted_total == len(pages)
    if not filters:
        assert total > 2 * 30  # several pages
    else:
        assert 0 < total <= len(full)
    _same(pages, wanted)


@pytest.mark.parametrize("name", ["denied-claims", "remittances"])
def test_sql_pages_follow_the_sort_and_never_repeat_a_row(demo_engine, name):
    period = {"start": "2025-04", "end": "2026-03"}
    full = run_report(name, scope=ADMIN, engine=demo_engine, **period).frame
    sort = (paging.Sort("amount", descending=True), paging.Sort("payer"))
    pages, total = _all_pages(name, demo_engine, sort=sort, size=37, **period)
    assert total == len(full)
    assert pages["amount"].tolist() == sorted(full["amount"].tolist(), reverse=True)
    _same(pages, full)  # the same rows: no page repeated or skipped one
    unsorted, _ = _all_pages(name, demo_engine, **period)
    pd.testing.assert_frame_equal(unsorted, full, check_dtype=False)  # default order: the report's own


def test_report_page_caps_a_page_and_checks_columns(demo_engine):
    page = report_page("remittances", scope=ADMIN, engine=demo_engine, limit=10_000)
    assert len(page.frame) == paging.MAX_ROWS < page.row_count
    with pytest.raises(BadInput):
        report_page("denied-claims", scope=ADMIN, engine=demo_engine, sort=[paging.Sort("claim_payment_id")])
    with pytest.raises(BadInput):
        report_page("spend", scope=ADMIN, engine=demo_engine,
                    filters=[paging.ColumnFilter("person_id", (paging.Condition("text", "blank"),))])


@pytest.mark.parametrize("name", ["denied-claims", "remittances"])
def test_sql_paging_on_each_backend(warehouse_engine, name):
    scope = access.scope_for(role="practice_manager", practice_ids=[P1])
    period = {"start": "2025-10", "end": "2026-03"}
    full = run_report(name, scope=scope, engine=warehouse_engine, **period).frame
    assert len(full)
    for filters in FILTERS + [(paging.ColumnFilter("practice_id", (paging.Condition("text", "notContains", "%"),)),),
                              (paging.ColumnFilter("payer", (paging.Condition("text", "notBlank"),)),)]:
        page = report_page(name, scope=scope, engine=warehouse_engine, filters=filters, **period)
        wanted, count = paging.frame_page(full, filters=filters, limit=paging.MAX_ROWS)
        assert page.row_count == count, filters
        _same(page.frame, wanted)
    page = report_page(name, scope=scope, engine=warehouse_engine, sort=[paging.Sort("amount", True)], **period)
    assert page.frame["amount"].tolist() == sorted(full["amount"].tolist(), reverse=True)
    with pytest.raises(AccessDenied):
        report_page(name, scope=scope, engine=warehouse_engine, practice="222222222", **period)
    employer = access.scope_for(role="employer_admin", employer_ids=[E1])
    with pytest.raises(AccessDenied):
        report_page(name, scope=employer, engine=warehouse_engine, **period)
    assert isinstance(page.filters.start, dt.date)


# --- filters in the URL (issue 12 item 2) ----------------------------------------------------------------------

def _routed(client, app, path: str, search: str) -> dict:
    """The page's components by id, as the router answers the browser for ``path`` + ``search``."""
    callbacks = server_callbacks(app)
    router = next(k for k in callbacks if "_pages_content" in k)
    response = dash_post(client, router, callbacks[router], {"_pages_location.pathname": path,
                                                             "_pages_location.search": search})
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return registry.component_props(response.get_json())


@pytest.mark.parametrize(("who", "path", "kind", "own", "theirs"), [
    ("practice", "/practice", "practice", P1, "222222222"),
    ("employer", "/employer", "employer", E1, "GRP2"),
])
def test_a_bookmarked_url_opens_the_page_with_its_filters(app, who, path, kind, own, theirs):
    client = logged_in(app, who)
    page = _routed(client, app, path, f"?from=2026-01&to=2026-02&{kind}={own}")
    assert (page[f"{kind}-from"]["value"], page[f"{kind}-to"]["value"], page[f"{kind}-entity"]["value"]) == \
        ("2026-01", "2026-02", own)
    # the export links carry the same filters
    grid = next(v for k, v in page.items() if k.endswith("-csv") and "href" in v)
    assert "from=2026-01&to=2026-02" in grid["href"]
    # another tenant's id answers exactly like one that does not exist, and shows nothing
    other = _routed(client, app, path, f"?{kind}={theirs}")
    unknown = _routed(client, app, path, f"?{kind}=999999999")
    assert other["no-access"]["children"] == unknown["no-access"]["children"] == f"unknown {kind}"
    assert f"{kind}-content" not in other
    # a month the page does not offer is refused with the range it does
    bad = _routed(client, app, path, "?from=1999-01")
    assert "'from' must be a month from" in bad["no-access"]["children"]


def test_the_filter_bar_writes_its_values_into_the_url(app):
    """A browser-side callback keeps ?from, to and the entity in the address bar (replaceState, no reload)."""
    dash_app = app.extensions["dashboard"].dash_app
    for prefix in ("practice", "employer"):
        output = f"{prefix}-url.data"
        assert "callback" not in dash_app.callback_map[output]  # runs in the browser: no request, no data
        code, args, _ = registry.CLIENTSIDE[output]
        assert [str(a) for a in args[1:4]] == [f"{prefix}-from.value", f"{prefix}-to.value", f"{prefix}-entity.value"]
        assert f"params.set('{prefix}', entity)" in code
        assert "window.history.replaceState" in code
    # the employer page's own control too: the cost-driver grouping
    code, args, _ = registry.CLIENTSIDE["employer-url.data"]
    assert [str(a) for a in args[4:]] == ["employer-driver-dimension.value"]
    assert 'params.set("drivers", x0)' in code


def test_the_reports_page_opens_a_bookmarked_report_with_its_filters(app):
    client = logged_in(app, "employer")
    page = _routed(client, app, "/reports", f"?report=spend&from=2026-02&to=2026-03&employer={E1}")
    assert (page["reports-name"]["value"], page["reports-from"]["value"], page["reports-to"]["value"],
            page["reports-entity"]["value"]) == ("spend", "2026-02", "2026-03", E1)
    # a report the user may not see answers like one that does not exist
    practice_report = _routed(client, app, "/reports", "?report=ar-aging")["no-access"]["children"]
    assert practice_report == _routed(client, app, "/reports", "?report=nonesuch")["no-access"]["children"] \
        .replace("nonesuch", "ar-aging")
    assert _routed(client, app, "/reports", "?report=spend&employer=GRP2")["no-access"]["children"] == \
        "unknown employer"
    code, _, _ = registry.CLIENTSIDE["reports-url.data"]
    assert "window.history.replaceState" in code


def _text(tree) -> str:
    """Every string in a router answer (what the page shows, flattened)."""
    if isinstance(tree, str):
        return tree
    if isinstance(tree, dict):
        return " ".join(_text(v) for v in tree.values())
    if isinstance(tree, list):
        return " ".join(_text(v) for v in tree)
    return ""


def _hrefs(tree) -> list[str]:
    if isinstance(tree, dict):
        own = [tree["href"]] if isinstance(tree.get("href"), str) else []
        return own + [h for v in tree.values() for h in _hrefs(v)]
    if isinstance(tree, list):
        return [h for v in tree for h in _hrefs(v)]
    return []


def test_claim_page_shows_the_lifecycle_and_reason_codes_in_words(app):
    client = logged_in(app, "practice")
    page = _routed(client, app, "/practice/claims/C2", "")
    assert page["claim-title"]["children"] == "Claim C2"
    timeline = _text(page["claim-timeline"])
    for step in ("claim sent (837)", "rejected by the clearinghouse (277CA)", "CO-16 missing or invalid claim "
                 "information", "appeal sent", "ERA T2"):
        assert step in timeline
    assert "submit a new claim" in _text(page["claim-remittance-0-remarks"])  # MA130 in words
    assert "closed: nothing owed" in _text(page["claim-open-balance"])
    # C7: its bundled line is still owed by ACME
    c7 = _routed(client, app, "/practice/claims/C7", "?practice=111111111")
    assert "$20.00" in _text(c7["claim-balances"])


def test_another_practices_claim_page_answers_like_an_unknown_claim(app):
    client = logged_in(app, "practice")
    theirs = _routed(client, app, "/practice/claims/D1", "")
    unknown = _routed(client, app, "/practice/claims/NO-SUCH", "")
    named = _routed(client, app, "/practice/claims/D1", "?practice=222222222")
    assert theirs["no-access"]["children"] == unknown["no-access"]["children"] == named["no-access"]["children"] \
        == "unknown claim"
    assert "claim-page" not in theirs
    # and a search finds nothing of theirs, by claim id or by their ERA's trace number
    for term in ("D1", "T3"):
        found = _routed(client, app, "/practice/claims", f"?q={term}")
        assert found["claim-search-message"]["children"].startswith("No claim of your practices matches")
    # an employer user has no claim pages at all
    employer = logged_in(app, "employer")
    assert "no-access" in _routed(employer, app, "/practice/claims/C2", "")
    assert "no-access" in _routed(employer, app, "/practice/claims", "?q=C2")


def test_claim_search_lists_the_claims_of_an_era(app):
    client = logged_in(app, "practice")
    page = _routed(client, app, "/practice/claims", "?q=T4")
    assert page["claim-search-message"]["children"] == "3 claims found."
    links = [v["href"] for v in page.values() if isinstance(v.get("href"), str) and "/practice/claims/" in v["href"]]
    assert sorted(links) == [f"/practice/claims/{c}?practice=111111111" for c in ("C7", "C8", "C9")]


def test_cards_and_charts_open_the_claims_behind_them(app):
    """Issue 12 item 1: the denial-rate card opens the denied claims, A/R over 90 the open claims over 90 days,
    with the page's period and practice; the aging chart's bars carry their payer, the denial chart's bars their
    code, for the browser to open (ui.drill_on_click)."""
    client = logged_in(app, "practice")
    values = values_for("practice", P1)
    hrefs = _hrefs(call(client, app, "practice-cards.children", values).get_json())
    assert "/reports?report=first-denials&from=2026-01&to=2026-03&practice=111111111" in hrefs
    assert "/reports?report=open-claims&from=2026-01&to=2026-03&practice=111111111&age_days.gt=90" in hrefs
    assert "/reports?report=open-claims&from=2026-01&to=2026-03&practice=111111111" in hrefs  # A/R balance
    aging = call(client, app, "practice-aging-box.children", values).get_json()
    figure = component_props(aging)["practice-aging"]["figure"]
    # names, not ids (item 9): the payer's name on the bar, its id behind it
    assert {(t["name"], t["customdata"][0][0]) for t in figure["data"]} == {("Acme Health", "ACME"),
                                                                           ("Patient", "Patient")}
    denials = component_props(call(client, app, "practice-denials-box.children", values).get_json())
    assert sorted(map(tuple, denials["practice-denials"]["figure"]["data"][0]["customdata"])) == [
        ("CO", "16"), ("CO", "50"), ("CO", "97")]
    for graph in ("practice-aging", "practice-denials", "practice-trend"):
        code, args, _ = registry.CLIENTSIDE[f"{graph}-drill.data"]
        assert str(args[1]) == f"{graph}.clickData"
        assert "window.location.assign('/reports?'" in code


def test_a_drill_down_url_opens_the_grid_filtered_on_the_server(app):
    """/reports?report=open-claims&…&payer=ACME&age_days.gt=20: the grid opens with that filter model, and its
    rows are the claims behind the cell (C3, 25 days; C4 at 8 days is left out); claim ids open claim pages."""
    client = logged_in(app, "practice")
    page = _routed(client, app, "/reports",
                   "?report=open-claims&from=2026-01&to=2026-02&practice=111111111&payer=ACME&age_days.gt=20")
    model = page["reports-drill"]["data"]["model"]
    assert model == {"payer": {"filterType": "text", "type": "equals", "filter": "ACME"},
                     "age_days": {"filterType": "number", "type": "greaterThan", "filter": 20.0}}
    content = component_props(call(client, app, "reports-content.children", {
        "reports-name.value": "open-claims", "reports-from.value": "2026-01", "reports-to.value": "2026-02",
        "reports-entity.value": P1, "reports-drill.data": page["reports-drill"]["data"]}).get_json())
    grid = content["grid-report"]
    assert grid["filterModel"] == model
    assert next(c for c in grid["columnDefs"] if c["field"] == "claim_id")["cellRenderer"] == "ClaimLink"
    rows = grid_rows(client, app, "grid-report", {
        "grid-report.getRowsRequest": {**FIRST_BLOCK, "filterModel": model}, "reports-name.value": "open-claims",
        "reports-from.value": "2026-01", "reports-to.value": "2026-02", "reports-entity.value": P1})
    assert [(r["claim_id"], r["age_days"], r["balance"]) for r in rows["grid-report"]["getRowsResponse"]["rowData"]] \
        == [("C3", 25, 300.0)]
    # a filter the report does not have is refused, naming it; so is a number that is not one
    assert "'nonesuch' is not a filter" in _routed(client, app, "/reports",
                                                   "?report=open-claims&nonesuch=1")["no-access"]["children"]
    assert "needs a number" in _routed(client, app, "/reports",
                                       "?report=open-claims&age_days.gt=ninety")["no-access"]["children"]


def test_a_drill_downs_csv_holds_the_rows_its_grid_shows(app):
    """The grid's CSV link carries its column filters (as a URL says them), and the export applies them: in SQL
    for claim-level reports, on the frame for the others; a filter a report does not have is refused."""
    client = logged_in(app, "practice")
    base = "from=2026-01&to=2026-02&practice=111111111"
    claims_csv = client.get(f"/export/open-claims.csv?{base}&payer=ACME&age_days.gt=20").get_data(as_text=True)
    assert [line.split(",")[1] for line in claims_csv.splitlines()[1:]] == ["C3"]
    unfiltered = client.get(f"/export/open-claims.csv?{base}").get_data(as_text=True)
    assert len(unfiltered.splitlines()) == 4  # C5, C3, C4
    aging_csv = client.get(f"/export/ar-aging.csv?{base}&payer=Patient").get_data(as_text=True).splitlines()
    assert len(aging_csv) == 2
    assert aging_csv[1].split(",")[1:3] == ["Patient", "120+"]
    refused = client.get(f"/export/open-claims.csv?{base}&nonesuch=1")
    assert refused.status_code == 400
    assert "'nonesuch' is not a filter" in refused.get_data(as_text=True)
    # the grid's own link, for the filter the user set in it
    request = {**FIRST_BLOCK, "filterModel": {"payer": {"filterType": "text", "type": "equals", "filter": "ACME"},
                                             "age_days": {"filterType": "number", "type": "greaterThan",
                                                          "filter": 20}}}
    out = grid_rows(client, app, "grid-report", {
        "grid-report.getRowsRequest": request, "reports-name.value": "open-claims", "reports-from.value": "2026-01",
        "reports-to.value": "2026-02", "reports-entity.value": P1})
    path, _, query = out["grid-report-csv"]["href"].partition("?")
    assert path == "/export/open-claims.csv"
    assert sorted(query.split("&")) == sorted(f"{base}&payer=ACME&age_days.gt=20".split("&"))
    two = {**FIRST_BLOCK, "filterModel": {"payer": {"filterType": "text", "operator": "OR", "conditions": [
        {"filterType": "text", "type": "equals", "filter": "ACME"},
        {"filterType": "text", "type": "equals", "filter": "Patient"}]}}}
    out = grid_rows(client, app, "grid-report", {
        "grid-report.getRowsRequest": two, "reports-name.value": "open-claims", "reports-from.value": "2026-01",
        "reports-to.value": "2026-02", "reports-entity.value": P1})
    assert out["grid-report-csv"]["href"] == f"/export/open-claims.csv?{base}"
    assert "not applied" in str(out["grid-report-status"]["children"])


def test_the_worklists_page_counts_each_list_and_pages_its_claims(app):
    """End of March (tests/test_metrics_practice.py): one open denial (C7, $20 recoverable, 83 days left), one
    claim without a payer answer (C4, $150), one patient balance (C5, $309, 167 days old: due)."""
    client = logged_in(app, "practice")
    page = _routed(client, app, "/practice/worklists", "?from=2026-01&to=2026-03&practice=111111111")
    assert page["grid-patient-balances"]["filterModel"] == {
        "payer": {"filterType": "text", "type": "equals", "filter": "Patient"}}
    values = {"work-from.value": "2026-01", "work-to.value": "2026-03", "work-entity.value": P1}
    cards = component_props(call(client, app, "work-cards.children", values).get_json())
    text = {k: _text(v) for k, v in cards.items() if k.startswith("work-")}
    assert "1 claims" in text["work-denial-worklist"]
    assert "$20.00 recoverable · 0 appeal window closing" in text["work-denial-worklist"]
    assert "$150.00 owed by payers" in text["work-ar-follow-up"]
    assert "$309.00 owed by patients · 1 over 90 days" in text["work-patient-balances"]
    rows = grid_rows(client, app, "grid-denial-worklist",
                     {**values, "grid-denial-worklist.getRowsRequest": FIRST_BLOCK})
    assert [r["claim_id"] for r in rows["grid-denial-worklist"]["getRowsResponse"]["rowData"]] == ["C7"]
    employer = logged_in(app, "employer")
    assert "no-access" in _routed(employer, app, "/practice/worklists", "")


def test_the_lifecycle_funnel_shows_the_periods_claims_by_stage(app):
    client = logged_in(app, "practice")
    out = component_props(call(client, app, "practice-lifecycle-box.children", values_for("practice", P1)).get_json())
    funnel = out["practice-lifecycle"]["figure"]["data"][0]
    assert funnel["type"] == "funnel"
    assert list(zip(funnel["y"], funnel["x"], strict=True)) == [
        ("submitted", 8), ("accepted", 8), ("adjudicated", 6), ("paid", 5), ("denied", 3), ("appealed", 2),
        ("overturned", 1)]
    assert "Claims — submitted: 8.00; accepted: 8.00" in out["practice-lifecycle-text"]["children"]


def test_cards_compare_with_the_previous_period_and_a_year_earlier(app):
    """Issue 12 item 8. January–March: 3 of the 6 first adjudications denied (C2, C3, C7); October–December
    2025: C5's only, not a denial, so the denial rate rose 50 points (worse: red). A year earlier there is no
    data, so no change is claimed. With one practice chosen each card has its months as a sparkline."""
    client = logged_in(app, "practice")
    out = component_props(call(client, app, "practice-cards.children", values_for("practice", P1)).get_json())
    denial = _text(out["kpi-denial-rate-(claims)"])
    assert "+50.0 pts vs previous period" in denial
    assert "a year earlier" not in denial
    spans = []

    def walk(tree):
        if isinstance(tree, dict):
            props = tree.get("props", {})
            if "kpi-change" in str(props.get("className", "")) or props.get("className") == "sparkline":
                spans.append(props)
            for v in tree.values():
                walk(v)
        elif isinstance(tree, list):
            for v in tree:
                walk(v)

    walk(out["kpi-denial-rate-(claims)"])
    assert any("text-danger" in s.get("className", "") for s in spans)
    spark = next(s for s in spans if s.get("className") == "sparkline")
    assert spark["aria-label"].startswith("Denial rate (claims) by month: 2026-01 0.5, 2026-02 1.0, 2026-03 0.3333")
    assert len(spark["children"]) == 3


def test_grids_show_names_and_keep_ids_for_filters_and_hover(app):
    """Issue 12 item 9: payer and practice columns show names from the grid's context (the id on hover); the
    context names the user's own practices only."""
    client = logged_in(app, "practice")
    page = _routed(client, app, "/practice", "?from=2026-01&to=2026-03&practice=111111111")
    grid = page["grid-ar-aging"]
    names = grid["dashGridOptions"]["context"]["names"]
    assert names["ACME"] == "Acme Health"
    assert names[P1] == "Fixture Family Medicine"
    assert "222222222" not in names  # another practice's name is not sent
    payer = next(c for c in grid["columnDefs"] if c["field"] == "payer")
    assert "params.context.names" in payer["valueFormatter"]["function"]
    assert payer["tooltipField"] == "payer"


def test_the_risk_panel_says_when_there_is_too_little_history(app):
    """The fixture's practice has 6 first adjudications, below the model's minimum: the panel says so rather
    than scoring on noise (tests/test_denial_risk.py scores a demo warehouse)."""
    client = logged_in(app, "practice")
    out = component_props(call(client, app, "practice-risk.children", values_for("practice", P1)).get_json())
    assert "too little history" in _text(out["practice-risk-summary"])


def test_the_pmpm_chart_over_several_employers_is_one_ratio_and_matches_the_card(app):
    """Issue 13 item 1: over both employers each month's bars add up to Σ paid ÷ Σ member months (from the
    reports), never a stack of each employer's PMPM; the title carries the card's period PMPM."""
    admin = logged_in(app, "admin")
    values = values_for("employer", None)
    chart = component_props(call(admin, app, "employer-pmpm-box.children", values).get_json())
    figure = chart["employer-pmpm"]["figure"]
    bars = [t for t in figure["data"] if t["type"] == "bar"]
    stacked: dict[str, float] = {}
    for trace in bars:
        for month, value in zip(trace["x"], trace["y"], strict=True):
            stacked[month] = stacked.get(month, 0.0) + (value or 0.0)
    scope, engine = ADMIN, app.extensions["dashboard"].warehouse()
    completion = run_report("claims-completion", scope=scope, engine=engine, start="2026-01", end="2026-03").frame
    # GRP2 has no claims data in February and March: its member months are in no month's rate
    with_data = completion[completion["status"] != "no data"]
    paid = with_data.groupby("month")["paid"].sum()
    member_months = with_data.groupby("month")["member_months"].sum()
    assert member_months.to_dict() == {"2026-01": 5, "2026-02": 2, "2026-03": 2}
    for month, total in stacked.items():
        assert total == pytest.approx(paid[month] / member_months[month]), month
    assert len(completion["employer_id"].unique()) == 2  # both employers, summed before dividing
    cards = _text(call(admin, app, "employer-cards.children", values).get_json())
    period = figure["layout"]["title"]["text"].split("period ")[1].split(")")[0]
    assert period in cards
    assert "suppressed" not in figure["layout"]["title"]["text"]  # nothing is suppressed for an admin


def test_the_pmpm_chart_marks_suppressed_cells_for_employer_users(app):
    """For an employer user the fixture's small cells are suppressed: drawn as marks with the reason, and the
    title says so, rather than bars that silently shrink."""
    client = logged_in(app, "employer")
    chart = component_props(call(client, app, "employer-pmpm-box.children", values_for("employer", E1)).get_json())
    figure = chart["employer-pmpm"]["figure"]
    marks = [t for t in figure["data"] if t.get("name") == "suppressed"]
    assert marks
    assert all("suppressed" in text for text in marks[0]["hovertext"])
    assert "✕ suppressed cells" in figure["layout"]["title"]["text"]
    bars = [t for t in figure["data"] if t["type"] == "bar"]
    assert all(v is None for t in bars for v in t["y"])  # every fixture cell is small: no number is shown


def test_the_utilization_chart_is_one_rate_over_the_selection(app):
    """Issue 13 item 4: per 1,000 over both employers is Σ events ÷ Σ member months × 12,000 from the utilization
    report; an employer user's small cells are marked suppressed, not drawn as numbers."""
    admin = logged_in(app, "admin")
    chart = component_props(call(admin, app, "employer-utilization-box.children",
                                 values_for("employer", None)).get_json())
    figure = chart["employer-utilization"]["figure"]
    util = run_report("utilization", scope=ADMIN, engine=app.extensions["dashboard"].warehouse(), start="2026-01",
                      end="2026-03").frame
    assert len(util["employer_id"].unique()) == 2
    office = util[(util["measure"] == "office_visits") & util["events"].notna()].groupby("month")[
        ["events", "member_months"]].sum()  # GRP2's months without claims data (events unknown) are left out
    line = next(t for t in figure["data"] if t["name"] == "office visits")
    for month, value in zip(line["x"], line["y"], strict=True):
        expected = office.loc[month, "events"] / office.loc[month, "member_months"] * 12_000
        assert value == pytest.approx(expected), month
    assert "suppressed" not in figure["layout"]["title"]["text"]
    user = logged_in(app, "employer")
    chart = component_props(call(user, app, "employer-utilization-box.children",
                                 values_for("employer", E1)).get_json())
    figure = chart["employer-utilization"]["figure"]
    assert any(t["name"] == "suppressed" for t in figure["data"])
    assert all(v is None for t in figure["data"] if t["name"] != "suppressed" for v in t["y"])


def test_the_trend_section_compares_the_period_with_its_base(app):
    """Issue 13 item 2: February–March against December–January over both employers — the table reads the
    employer-trend report's selection row ($36.00 → $15,010 PMPM, tests/test_metrics_employer.py works it), the
    month chart shades the base period, and for an employer user the small fixture reads "suppressed"."""
    admin = logged_in(app, "admin")
    values = values_for("employer", None, **{"employer-from.value": "2026-02", "employer-to.value": "2026-03"})
    box = call(admin, app, "employer-trend-box.children", values).get_json()
    text = _text(box)
    assert "2026-02..2026-03 against 2025-12..2026-01" in text
    links = _hrefs(box)  # the report behind the section, as a table and as CSV
    assert "/reports?report=employer-trend&from=2026-02&to=2026-03" in links
    assert "/export/employer-trend.csv?from=2026-02&to=2026-03" in links
    props = component_props(box)
    rows = _table_rows(props["employer-trend-table"])
    assert rows["PMPM paid"] == ["$36.00", "$15,010", "+$14,974 (+41594.4%)"]
    assert rows["Office visits per 1,000"] == ["4,800", "0.0", "−4,800 (-100.0%)"]
    line = props["employer-trend-line"]["figure"]
    assert line["layout"]["xaxis"]["categoryarray"] == ["2025-12", "2026-01", "2026-02", "2026-03"]
    shaded = [s for s in line["layout"]["shapes"] if s["fillcolor"] == "#0d6efd"]
    assert [(s["x0"], s["x1"]) for s in shaded] == [(-0.5, 1.5)]  # December and January
    assert any(a["text"] == "base 2025-12..2026-01" for a in line["layout"]["annotations"])
    bars = props["employer-trend-bars"]["figure"]["data"]
    assert [t["name"] for t in bars[:2]] == ["base 2025-12..2026-01", "period 2026-02..2026-03"]
    user = logged_in(app, "employer")
    box = call(user, app, "employer-trend-box.children", values_for("employer", E1)).get_json()
    assert _table_rows(component_props(box)["employer-trend-table"])["PMPM paid"] == ["suppressed", "suppressed", ""]


def _table_rows(table: dict) -> dict[str, list[str]]:
    """An html table's body rows (as the JSON a callback returns) by their header cell: the other cells' texts."""
    def cells(node) -> list[dict]:
        if isinstance(node, dict) and node.get("type") in ("Th", "Td"):
            return [node]
        children = node.get("props", {}).get("children") if isinstance(node, dict) else node
        children = children if isinstance(children, list) else [children] if children is not None else []
        return [c for child in children for c in cells(child)]

    body = next(c for c in table["children"] if c["type"] == "Tbody")
    out = {}
    for tr in body["props"]["children"]:
        texts = [str(c["props"].get("children", "")) for c in cells(tr)]
        out[texts[0]] = texts[1:]
    return out


def test_the_cost_driver_section_shows_a_grouping_against_its_base(app):
    """Issue 13 item 3: the chosen grouping's largest values by paid, PMPM in the base and the period (from the
    cost-drivers report, tests/test_metrics_employer.py works it), and members over $50k's share of each year's
    paid, a partly covered year starred; for an employer user the small fixture is marked suppressed."""
    admin = logged_in(app, "admin")
    values = values_for("employer", None, **{"employer-from.value": "2026-02", "employer-to.value": "2026-03",
                                             "employer-driver-dimension.value": "place_of_service"})
    props = component_props(call(admin, app, "employer-drivers-box.children", values).get_json())
    figure = props["employer-drivers"]["figure"]
    period = next(t for t in figure["data"] if t["name"] == "period 2026-02..2026-03")
    base = next(t for t in figure["data"] if t["name"] == "base 2025-12..2026-01")
    points = dict(zip(period["y"], period["x"], strict=True))
    assert points == {"Facility claim (UB-04, no place of service)": 15000, "Pharmacy": 10, "Office": 0}
    assert dict(zip(base["y"], base["x"], strict=True))["Office"] == 36  # (100 + 80) ÷ (4 + 1)
    assert "3 largest of 3 by paid" in figure["layout"]["title"]["text"]
    share = props["employer-high-cost-share"]["figure"]["data"][0]
    assert share["x"] == ["2025*", "2026*"]
    assert share["y"][1] == pytest.approx(60100 / 60220, abs=1e-4)  # the report rounds rates to 4 places
    user = logged_in(app, "employer")
    props = component_props(call(user, app, "employer-drivers-box.children",
                                 values_for("employer", E1, **{"employer-driver-dimension.value": "condition_group"})
                                 ).get_json())
    assert any(t.get("name") == "suppressed" for t in props["employer-drivers"]["figure"]["data"])
    # a dimension that is not one of the page's is the default, not an error or another report's data
    bad = values_for("employer", E1, **{"employer-driver-dimension.value": "person_id"})
    assert "condition group" in _text(call(user, app, "employer-drivers-box.children", bad).get_json())
    # the grouping is kept in the URL: a bookmark opens on it, and a grouping that is not one reads as bad input
    page = _routed(user, app, "/employer", "?drivers=place_of_service")
    assert page["employer-driver-dimension"]["value"] == "place_of_service"
    assert "drivers must be one of" in _routed(user, app, "/employer", "?drivers=person_id")["no-access"]["children"]


# --- the report builder and saved reports (issue 13 item 6) ----------------------------------------------------

def _builder_values(entity=None, **options):
    return {"builder-from.value": "2026-02", "builder-to.value": "2026-03", "builder-entity.value": entity,
            "builder-measure.value": options.get("measure", "pmpm_paid"),
            "builder-by.value": options.get("by", "month"),
            "builder-compare.value": options.get("compare", "prior"), "builder-name.value": options.get("name"),
            "builder-save-options.value": options.get("flags", []), "builder-save.n_clicks": 1}


def test_the_builder_shows_the_builder_report_as_chart_table_and_csv(app):
    """PMPM by month over both employers against the prior period (tests/test_metrics_employer.py works it): the
    table reads the report, the CSV link carries the options, and a grouping that does not carry the measure says
    which do."""
    admin = logged_in(app, "admin")
    props = component_props(call(admin, app, "builder-result.children", _builder_values()).get_json())
    rows = _table_rows(props["builder-table"])
    assert rows["2026-03"] == ["$20.00", "$36.00 (2026-01)", "-44.4%"]
    assert rows["2026-02"][1] == "no data (2025-12)"
    href = props["builder-csv"]["href"]
    assert href.startswith("/export/builder.csv?")
    assert "by=month" in href
    assert "measure=pmpm_paid" in href
    csv = admin.get(href)
    assert csv.status_code == 200
    assert "2026-03" in csv.get_data(as_text=True)
    props = component_props(call(admin, app, "builder-result.children", _builder_values(by="tier")).get_json())
    assert "is not kept by coverage tier" in props["builder-unsupported"]["children"]
    # a month without claims data (April) is marked on the chart, as on the employer page
    april = {**_builder_values(), "builder-to.value": "2026-04"}
    chart = component_props(call(admin, app, "builder-result.children", april).get_json())["builder-chart"]
    assert [a["text"] for a in chart["figure"]["layout"]["annotations"]] == ["no data"]
    user = logged_in(app, "employer")
    props = component_props(call(user, app, "builder-result.children", _builder_values(E1)).get_json())
    assert set(_table_rows(props["builder-table"])["2026-03"][:1]) == {"suppressed"}


def test_saved_reports_are_reopened_by_url_shared_within_the_employer_only(app):
    """An employer user saves a report; it opens by URL for them and, shared, for another user of the same
    employer, and reads "unknown saved report" for a user of another employer, as does an id that does not exist;
    only its owner can delete it."""
    from dashboard import saved_reports
    from dashboard.auth import service

    db = app.extensions["dashboard"].app_db
    service.create_user(db, email="emp-b@test.example", password=PASSWORD, role="employer_admin", employers=("GRP1",),
                        actor="test")
    owner = logged_in(app, "employer")
    key = "..builder-saved-message.children...builder-saved-list.children.."
    empty = call(owner, app, key, _builder_values(E1, name="  ")).get_json()
    assert "needs a name" in _text(empty)
    answer = call(owner, app, key, _builder_values(E1, name="Quarterly PMPM", by="quarter", flags=["shared"]))
    link = component_props(answer.get_json())["builder-saved-link"]["href"]
    assert link.startswith("/employer/builder?saved=")
    search = "?" + link.split("?", 1)[1]
    opened = _routed(owner, app, "/employer/builder", search)
    assert opened["builder-by"]["value"] == "quarter"
    assert "Quarterly PMPM" in _text(opened["builder-opened"])
    colleague = app.test_client()
    assert login(colleague, "emp-b@test.example").status_code == 302
    assert _routed(colleague, app, "/employer/builder", search)["builder-measure"]["value"] == "pmpm_paid"
    outsider = logged_in(app, "employer2")
    assert _routed(outsider, app, "/employer/builder", search)["no-access"]["children"] == "unknown saved report"
    assert _routed(owner, app, "/employer/builder", "?saved=99999")["no-access"]["children"] == "unknown saved report"
    saved_id = int(search.split("=")[1])
    scope_b = service.get_user_by_email(db, email="emp-b@test.example").scope()
    with pytest.raises(NotFound):
        saved_reports.delete(db, scope=scope_b, saved_id=saved_id)
    saved_reports.delete(db, scope=service.get_user_by_email(db, email="emp@test.example").scope(), saved_id=saved_id)
    assert _routed(owner, app, "/employer/builder", search)["no-access"]["children"] == "unknown saved report"
    actions = [e["action"] for e in service.audit_entries(db)]
    assert "saved_report.create" in actions
    assert "saved_report.delete" in actions


def test_the_enrollment_section_shows_age_tier_and_flow(app):
    """Issue 13 item 5: members by age band and gender at the period's end (the demographics report: four women
    of 45-54 in GRP1 in January), members by tier by month, adds and terms, and dependents per subscriber (January:
    B2 of A, B and C = 1 ÷ 3)."""
    admin = logged_in(app, "admin")
    props = component_props(call(admin, app, "employer-enrollment-box.children",
                                 values_for("employer", E1, **{"employer-to.value": "2026-01"})).get_json())
    pyramid = props["employer-demographics"]["figure"]
    women = next(t for t in pyramid["data"] if t["name"] == "female")
    assert dict(zip(women["y"], women["x"], strict=True)) == {"45-54": -4}
    assert "2026-01" in pyramid["layout"]["title"]["text"]
    flow = props["employer-enrollment-flow"]["figure"]["data"]
    adds = next(t for t in flow if t["name"] == "adds")
    assert adds["y"][-1] == 3  # A, B and B2 in January
    dependents = next(t for t in flow if t["name"] == "dependents per subscriber")
    assert dependents["y"][-1] == pytest.approx(0.33, abs=0.01)
    tiers = props["employer-tiers"]["figure"]["data"]
    assert {t["name"] for t in tiers} == {"employee", "employee + spouse"}
    user = logged_in(app, "employer")  # the small fixture: marks, not numbers
    props = component_props(call(user, app, "employer-enrollment-box.children", values_for("employer", E1)).get_json())
    assert any(t.get("name") == "suppressed" for t in props["employer-demographics"]["figure"]["data"])


def test_a_user_has_a_saved_report_sent_to_them_and_stops_it(app):
    """Item 7 from the page: the saved reports the user may open can be sent to them weekly; the delivery is listed
    with its next Monday and stopped by its recipient; another user cannot stop it (unknown to them)."""
    from dashboard import saved_reports, schedules
    from dashboard.auth import service

    db = app.extensions["dashboard"].app_db
    owner_scope = service.get_user_by_email(db, email="emp@test.example").scope()
    saved = saved_reports.save(db, scope=owner_scope, name="Weekly PMPM", report="builder", options={}, start=None,
                               end=None, employers=[], shared=False)
    owner = logged_in(app, "employer")
    offered = _routed(owner, app, "/employer/builder", "")["builder-schedule-report"]["options"]
    assert {"label": "Weekly PMPM", "value": saved.id} in offered
    answer = call(owner, app, "builder-deliveries.children", {"builder-schedule.n_clicks": 1,
                                                              "builder-schedule-report.value": saved.id,
                                                              "builder-schedule-every.value": "weekly"})
    assert "Weekly PMPM: weekly, next" in _text(answer.get_json())
    [delivery] = schedules.for_recipient(db, scope=owner_scope)
    assert delivery.next_run_at.weekday() == 0  # a Monday
    other = service.get_user_by_email(db, email="emp2@test.example").scope()
    with pytest.raises(NotFound):
        schedules.remove(db, schedule_id=delivery.id, actor=other)
    key = next(k for k in server_callbacks(app) if k.startswith("builder-deliveries.children@"))
    stopped = dash_post(owner, key, server_callbacks(app)[key], {"builder-unschedule.n_clicks": 1,
                                                                 "builder-unschedule-choice.value": delivery.id})
    assert "No deliveries to you yet." in stopped.get_data(as_text=True)
    assert schedules.for_recipient(db, scope=owner_scope) == []
