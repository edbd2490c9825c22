"""The in-process report cache: same numbers as without it, suppression on every read, nothing stale
after a load or a rebuild."""

from __future__ import annotations

import pandas as pd
import pytest

from dashboard import access, reports
from dashboard.errors import AccessDenied
from dashboard.report_cache import ReportCache
from dashboard.warehouse.build import rebuild_warehouse
from dashboard.warehouse.engine import reader_engine, writer_engine
from dashboard.warehouse.loaders.run import run_load
from dashboard.warehouse.synthetic import generate_demo
from tests.conftest import SHARED
from tests.fixtures import load_employer_fixture, load_practice_fixture

ADMIN = access.scope_for(role="admin")
EMP = access.scope_for(role="employer_admin", employer_ids=["GRP1"])
MANAGED = SHARED / "fixtures" / "x12" / "managed-care.835"


@pytest.fixture
def loaded_url(warehouse_url):
    engine = writer_engine(warehouse_url)
    load_practice_fixture(engine)
    load_employer_fixture(engine)
    engine.dispose()
    return warehouse_url


def test_cached_frames_equal_fresh_ones_and_callers_cannot_spoil_them(loaded_url):
    engine, cache = reader_engine(loaded_url), ReportCache()
    for name in reports.CATALOG:
        fresh = reports.run_report(name, scope=ADMIN, engine=engine, start="2025-10", end="2026-03").frame
        first = reports.run_report(name, scope=ADMIN, engine=engine, start="2025-10", end="2026-03", cache=cache)
        first.frame.drop(first.frame.index, inplace=True)  # a caller scribbling on its copy
        first.frame["scribble"] = 1
        built, hits = cache.misses, cache.hits
        second = reports.run_report(name, scope=ADMIN, engine=engine, start="2025-10", end="2026-03", cache=cache)
        pd.testing.assert_frame_equal(second.frame, fresh)
        # the second run is one hit on the finished frame: nothing is built again
        assert (cache.misses, cache.hits) == (built, hits + 1), name
    engine.dispose()


def test_an_employer_never_reads_a_small_cell_fresh_or_cached(loaded_url):
    """The shared entries are the unsuppressed frames suppression starts from; what an employer user receives
    is suppressed, then kept in this process only (under the resolved filters and the data version)."""
    engine, cache = reader_engine(loaded_url), ReportCache()
    operator = reports.run_report("enrollment", scope=ADMIN, engine=engine, start="2026-01", end="2026-03",
                                  employer="GRP1").frame
    assert operator["members"].between(1, 10).any()  # small cells exist in the data...
    for _ in range(2):
        employer = reports.run_report("enrollment", scope=EMP, engine=engine, start="2026-01", end="2026-03",
                                      cache=cache).frame
        members = pd.to_numeric(employer["members"], errors="coerce")
        assert not members.between(1, 10).any()  # ...and the employer never sees one, fresh or cached
        assert employer["members"].isna().any()
    assert cache.hits == 0  # the second read is the process's finished frame: the entries are not read again
    [entry] = cache._entries.values()
    assert entry["members"].between(1, 10).any()  # what the (shareable) entry keeps is the unsuppressed frame
    [kept] = [value for key, value in cache._memo.items() if "protected" in key]
    assert not pd.to_numeric(kept["members"], errors="coerce").between(1, 10).any()
    with pytest.raises(AccessDenied):
        reports.run_report("enrollment", scope=EMP, engine=engine, employer="GRP2", cache=cache)
    engine.dispose()


def test_a_load_makes_the_next_read_fresh(loaded_url):
    engine, cache = reader_engine(loaded_url), ReportCache()

    def paid() -> float:
        frame = reports.run_report("remittances", scope=ADMIN, engine=engine, start="2002-01", end="2026-03",
                                   cache=cache).frame
        return float(frame["amount"].sum()) if not frame.empty else 0.0

    before = paid()
    assert paid() == before
    assert cache.hits == 1
    engine.dispose()  # DuckDB: a writer needs the file to itself
    run_load(loaded_url, fmt="x12-835", paths=[MANAGED])
    engine = reader_engine(loaded_url)
    assert paid() == pytest.approx(before + 945.00)
    assert cache.misses == 2  # built before the load and again after it
    engine.dispose()


def test_a_rebuilt_duckdb_file_is_never_read_from_the_old_entries(tmp_path):
    url = f"duckdb:///{tmp_path / 'demo.duckdb'}"
    cache = ReportCache()
    totals = []
    for seed in (1, 2):  # same size, same load log: only the file differs
        rebuild_warehouse(url, lambda conn, checkpoint, seed=seed: generate_demo(
            conn, claims=1_500, seed=seed, progress=False, checkpoint=checkpoint))
        engine = reader_engine(url)
        frame = reports.run_report("practice-summary", scope=ADMIN, engine=engine, cache=cache).frame
        totals.append(float(frame.loc[frame["practice_id"] == "all", "charges"].iloc[0]))
        engine.dispose()
    assert cache.misses == 2  # once per file, never from the other file's entries
    assert totals[0] != totals[1]


def test_least_recently_used_entries_go_first_and_zero_turns_it_off():
    cache = ReportCache(max_entries=2)
    built = []

    def build(n):
        built.append(n)
        return pd.DataFrame({"n": [n]})

    for key in ("a", "b", "a", "c", "a", "b"):
        cache.frame(key, lambda key=key: build(key))
    assert built == ["a", "b", "c", "b"]  # "b" was the least recently used when "c" came in
    off = ReportCache(max_entries=0)
    off.frame("a", lambda: build("x"))
    off.frame("a", lambda: build("x"))
    assert built[-2:] == ["x", "x"]
    assert len(off) == 0
