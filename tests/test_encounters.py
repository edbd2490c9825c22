"""Employer figures count what experts count (issue 11, items 1, 5 and 6), on DuckDB and PostgreSQL.

Worked by hand (all 2026, every person enrolled with employer GA unless said otherwise):
  P  GA 01-01..03-15, then GB 03-16..06-30 (changes employer mid-March)
     claim P1 on 03-10 paid 100 -> GA; claim P2 on 03-20 paid 300 -> GB (before: both to min(group) = GA)
  Q  GA 01-01..06-30
     02-05: ER facility claim (rev 0450, paid 500) and the ER physician's claim (POS 23, paid 200): one visit
     04-10: ER facility claim (paid 800), then an inpatient stay 04-11..04-14 billed in two interim claims
            (bill types 112 and 113, paid 5,000 + 3,000): one admission, and the ED visit is part of it
     05-02: office visit with a lab line on the same claim (POS 11 paid 90, POS 81 paid 30): office-based,
            paid 120 (before: the whole claim went to 'ancillary', the category name that sorts first)
     05-02: a second office claim the same day (another physician, paid 60): still one office visit that day
ER visits: Feb 1 (was 2 claims), Apr 0 (was 1). Admissions: Apr 1 (was 2 claims). Office visits: May 1 (was 2),
and P's of 03-10 in March.
"""

from __future__ import annotations

import datetime as dt

import pytest

from dashboard.metrics import employer as em
from dashboard.metrics.filters import Filters
from dashboard.warehouse import schema as s
from dashboard.warehouse.semantic import refresh_marts
from tests.conftest import module_warehouse
from tests.fixtures import _line, _member

D = dt.date
GA, GB = "GA", "GB"


def load(engine) -> None:
    members = [
        _member("P", "P", "self", GA, "PPO", D(2026, 1, 1), D(2026, 3, 15), "EMP"),
        _member("P", "P", "self", GB, "HMO", D(2026, 3, 16), D(2026, 6, 30), "EMP"),
        _member("Q", "Q", "self", GA, "PPO", D(2026, 1, 1), D(2026, 6, 30), "EMP"),
    ]
    inst = {"claim_type": "institutional", "hcpcs": None}
    lines = [
        _line("P1", 1, "P", "1", D(2026, 3, 10), 150, paid=100, allowed=110),
        _line("P2", 1, "P", "1", D(2026, 3, 20), 400, paid=300, allowed=320),
        _line("ERF1", 1, "Q", "2", D(2026, 2, 5), 900, bill_type="131", revenue="0450", paid=500, allowed=550, **inst),
        _line("ERP1", 1, "Q", "3", D(2026, 2, 5), 300, pos="23", hcpcs="99284", paid=200, allowed=220),
        _line("ERF2", 1, "Q", "2", D(2026, 4, 10), 1200, bill_type="131", revenue="0450", paid=800, allowed=850,
              **inst),
        _line("IP1", 1, "Q", "2", D(2026, 4, 11), 9000, bill_type="112", revenue="0120", paid=5000, allowed=5500,
              end=D(2026, 4, 12), **inst),
        _line("IP2", 1, "Q", "2", D(2026, 4, 13), 6000, bill_type="113", revenue="0120", paid=3000, allowed=3300,
              end=D(2026, 4, 14), **inst),
        _line("OV1", 1, "Q", "1", D(2026, 5, 2), 150, pos="11", hcpcs="99213", paid=90, allowed=100),
        _line("OV1", 2, "Q", "1", D(2026, 5, 2), 40, pos="81", hcpcs="80053", paid=30, allowed=35),
        _line("OV2", 1, "Q", "4", D(2026, 5, 2), 100, pos="11", hcpcs="99212", paid=60, allowed=70),
    ]
    with engine.begin() as c:
        c.execute(s.employer.insert(), [{"employer_id": GA, "employer_name": "A"},
                                        {"employer_id": GB, "employer_name": "B"}])
        c.execute(s.eligibility.insert(), [m[0] for m in members])
        c.execute(s.member_coverage_tier.insert(), [m[1] for m in members])
        c.execute(s.medical_claim.insert(), lines)
    with engine.begin() as c:
        refresh_marts(c)


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path_factory):
    yield from module_warehouse(request, tmp_path_factory, load)


def run(engine, fn, employers=(GA, GB)):
    with engine.connect() as conn:
        return fn(conn, Filters(start=D(2026, 1, 1), end=D(2026, 6, 1), employer_ids=employers))


def test_a_claim_goes_to_the_enrollment_span_covering_its_date(engine):
    spend = run(engine, em.spend)
    march = spend[spend["month"] == D(2026, 3, 1)]
    assert dict(zip(march["employer_id"], march["paid"], strict=True)) == {GA: 100, GB: 300}
    assert run(engine, em.spend_outside_enrollment).empty


def test_a_claim_with_lines_in_several_categories_takes_the_first_by_priority(engine):
    spend = run(engine, em.spend, employers=(GA,))
    may = spend[spend["month"] == D(2026, 5, 1)]
    assert dict(zip(may["service_category"], may["paid"], strict=True)) == {"office-based": 180}
    assert int(may["claims"].sum()) == 2


def events(engine, measure: str) -> dict[dt.date, int]:
    out = run(engine, em.utilization, employers=(GA,))
    rows = out[out["measure"] == measure]
    return {m: int(e) for m, e in zip(rows["month"], rows["events"], strict=True) if e and e == e}  # NaN: no data


def test_er_visits_are_visits_not_claims_and_belong_to_an_admission_that_follows(engine):
    assert events(engine, "er_visits") == {D(2026, 2, 1): 1}


def test_an_admission_billed_in_interim_claims_is_one_admission(engine):
    assert events(engine, "inpatient_admissions") == {D(2026, 4, 1): 1}


def test_office_visits_are_counted_per_person_and_day(engine):
    # P's office visit of 03-10 (with GA) and Q's of 05-02 (two claims that day)
    assert events(engine, "office_visits") == {D(2026, 3, 1): 1, D(2026, 5, 1): 1}
