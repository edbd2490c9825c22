"""Claim search and the claim page's history (dashboard.claims) on the practice fixture, DuckDB and PostgreSQL.

Worked by hand from tests/fixtures.py: C2 (P1, ACME, DOS 2026-01-10, charge 100) was sent on 01-11, rejected by
the clearinghouse on 01-12, sent again on 01-15 and accepted on 01-16; ERA T1 (01-27) denied it, CO-16 100 with
remark MA130; appealed 02-01; ERA T2 (02-20) paid 70 with CO-45 30. Nothing is owed. C7's second line (36415) was
denied CO-97 (remark M15) on a paid claim, and 20 stays owed by ACME.
"""

from __future__ import annotations

import datetime as dt

import pytest

from dashboard import access, claims
from dashboard.errors import AccessDenied, BadInput, NotFound
from tests.conftest import module_warehouse
from tests.fixtures import P1, P2, load_practice_fixture

D = dt.date
MANAGER = access.scope_for(role="practice_manager", practice_ids=[P1])
OTHER = access.scope_for(role="practice_manager", practice_ids=[P2])


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path_factory):
    yield from module_warehouse(request, tmp_path_factory, load_practice_fixture)


def history(engine, claim_id, scope=MANAGER, **kw):
    with engine.connect() as conn:
        return claims.claim_history(conn, scope=scope, claim_id=claim_id, **kw)


def search(engine, text, scope=MANAGER):
    with engine.connect() as conn:
        return claims.search_claims(conn, scope=scope, text=text)


def test_claim_timeline_from_837_to_payment_on_appeal(engine):
    c2 = history(engine, "C2")
    assert (c2.practice_id, c2.practice_name, c2.payer, c2.payer_name, c2.charge) \
        == (P1, "Fixture Family Medicine", "ACME", "Acme Health", 100)
    assert [(e.date, e.stage) for e in c2.events] == [
        (D(2026, 1, 10), "service"), (D(2026, 1, 11), "submitted"), (D(2026, 1, 12), "rejected"),
        (D(2026, 1, 15), "submitted"), (D(2026, 1, 16), "accepted"), (D(2026, 1, 27), "denied"),
        (D(2026, 2, 1), "appealed"), (D(2026, 2, 20), "paid")]
    denied = c2.events[5]
    assert "CO-16 missing or invalid claim information" in denied.detail
    assert "ERA T1" in denied.detail
    first, second = c2.remittances
    assert (first.trace_number, first.paid, first.payer_claim_number) == ("T1", 0, "ACME-CP2")
    assert first.adjustments[["group_code", "carc", "reason", "amount", "category"]].values.tolist() == [
        ["CO", "16", "missing or invalid claim information", 100.0, "denial"]]
    assert first.remarks.values.tolist() == [[0, "MA130", claims.codes.rarc_meaning("MA130")]]
    assert "submit a new claim" in first.remarks.iloc[0]["meaning"]
    assert (second.trace_number, second.paid, second.status) == ("T2", 70, "processed as primary")
    assert c2.open_balance == 0
    assert c2.status == "closed: nothing owed"


def test_partly_denied_claim_keeps_its_denied_line_open(engine):
    c7 = history(engine, "C7")
    assert c7.lines[["line_number", "procedure_code", "charge"]].values.tolist() == [[1, "99213", 100.0],
                                                                                   [2, "36415", 20.0]]
    (remit,) = c7.remittances
    assert remit.lines[["line_number", "procedure_code", "paid"]].values.tolist() == [[1, "99213", 70.0],
                                                                                    [2, "36415", 0.0]]
    assert remit.remarks[["line_number", "code"]].values.tolist() == [[2, "M15"]]
    assert c7.events[-1].stage == "partially paid"
    assert c7.balances.values.tolist() == [["ACME", 20.0]]
    assert c7.open_balance == 20
    assert c7.status == "open after partially paid: ACME owes"


def test_patient_payments_refunds_write_offs_and_credits(engine):
    c5 = history(engine, "C5")
    assert [(e.date, e.stage, e.amount) for e in c5.events if e.stage not in ("service", "submitted", "accepted")] \
        == [(D(2025, 11, 20), "paid", 0.0), (D(2026, 1, 15), "patient payment", 100.0),
            (D(2026, 2, 25), "patient refund", -9.0), (D(2026, 4, 20), "written off", 309.0)]
    assert c5.open_balance == 0
    c8 = history(engine, "C8")  # the patient paid 50 against 20 owed: a credit of 30
    assert c8.balances.values.tolist() == [["Patient", -30.0]]
    assert c8.status == "in credit: a refund is owed to Patient"


def test_search_by_claim_patient_payer_claim_number_and_trace(engine):
    def found(text, scope=MANAGER):
        out = search(engine, text, scope)
        return sorted(zip(out["claim_id"], out["matched_on"], strict=True))

    assert found("C2") == [("C2", "claim id")]
    assert found("pat8") == [("C7", "patient")]
    assert found("ACME-CP2b") == [("C2", "payer claim number")]
    assert found("T4") == [("C7", "ERA trace number"), ("C8", "ERA trace number"), ("C9", "ERA trace number")]
    assert found("nothing") == []
    assert found("  C9 ") == [("C9", "claim id")]
    # pat1 has claims at P1 (C1) and at a provider that is no practice of ours (X1): only C1
    assert found("pat1") == [("C1", "patient")]
    # another practice's claim, payer claim number and trace are found by nobody else
    assert found("D1", OTHER) == [("D1", "claim id")]
    assert found("D1") == found("T3") == found("ACME-CPD") == []
    with pytest.raises(BadInput):
        search(engine, "   ")
    with pytest.raises(BadInput):
        search(engine, "x" * 65)


def test_another_practices_claim_answers_like_an_unknown_one(engine):
    with pytest.raises(NotFound) as theirs:
        history(engine, "D1")
    with pytest.raises(NotFound) as unknown:
        history(engine, "NO-SUCH-CLAIM")
    with pytest.raises(NotFound) as not_a_practice:
        history(engine, "X1", scope=access.scope_for(role="admin"))
    with pytest.raises(NotFound) as named:
        history(engine, "C2", scope=OTHER, practice_id=P1)
    assert str(theirs.value) == str(unknown.value) == str(not_a_practice.value) == str(named.value) \
        == claims.UNKNOWN
    assert history(engine, "D1", scope=access.scope_for(role="admin")).practice_id == P2
    for scope in (access.scope_for(role="employer_admin", employer_ids=["GRP1"]),):
        with pytest.raises(AccessDenied):
            history(engine, "C2", scope=scope)
        with pytest.raises(AccessDenied):
            search(engine, "C2", scope=scope)
