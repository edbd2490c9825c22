"""The denial-risk model (dashboard.metrics.denial_risk): its measures worked by hand, what it learns from a
history with a known signal, and the report and backtest on a small demo warehouse."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from dashboard.metrics import denial_risk as dr
from dashboard.metrics.filters import Filters
from dashboard.warehouse import semantic as sem
from tests.test_synthetic import build


def test_auc_and_top_decile_worked_by_hand():
    # denied claims score 0.35 and 0.8, paid ones 0.1 and 0.4: 3 of the 4 pairs ranked right
    assert dr.auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert dr.auc([0.5, 0.5], [0, 1]) == 0.5  # a tie counts half
    # 20 claims: the top decile is the 2 highest, one of them denied
    scores, outcomes = list(range(20)), [0] * 18 + [1, 0]
    assert dr.top_decile_precision(scores, outcomes) == 0.5


def _history(n: int, seed: int = 1) -> tuple[pd.DataFrame, pd.Series]:
    """Claims whose only signal is the eligibility check: inactive 40% denied, otherwise 5%; payers and
    procedures are noise."""
    rng = np.random.default_rng(seed)
    inactive = rng.random(n) < 0.1
    frame = pd.DataFrame({
        "payer": rng.choice(["AETNA", "BCBS", "UHC"], n), "procedure": rng.choice(["99213", "99214"], n),
        "place_of_service": "11", "line_count": rng.integers(1, 4, n), "modified": 0, "diagnoses": 1,
        "eligibility": np.where(inactive, "inactive", "active")})
    denied = pd.Series((rng.random(n) < np.where(inactive, 0.40, 0.05)).astype(int))
    return frame, denied


def test_the_model_learns_the_signal_and_says_why():
    frame, denied = _history(5_000)
    model = dr.train(frame, denied)
    assert model is not None
    assert model.base_rate == pytest.approx(denied.mean())
    assert model.weights["eligibility"] > 0.5  # the signal carries weight
    test, outcome = _history(3_000, seed=2)
    scores = model.score(dr._features(test))
    inactive = test["eligibility"] == "inactive"
    # as good as knowing the true probabilities (within noise), and better than chance
    oracle = dr.auc(np.where(inactive, 0.40, 0.05), outcome)
    assert dr.auc(scores, outcome) >= oracle - 0.02
    assert oracle > 0.6
    assert scores[inactive].min() > scores[~inactive].max()
    said = dr.reasons(model, dr._features(test[inactive].head(1)))[0]
    assert said.startswith("eligibility check came back inactive: ")
    assert "such claims denied" in said
    # too little history, or nothing but paid claims: no model rather than noise
    assert dr.train(frame.head(100), denied.head(100)) is None
    assert dr.train(frame, denied * 0) is None


@pytest.fixture(scope="module")
def demo_engine(tmp_path_factory):
    engine, _ = build(tmp_path_factory.mktemp("risk") / "w.duckdb", claims=20_000, seed=5)
    with engine.begin() as conn:
        sem.refresh_marts(conn)
    yield engine
    engine.dispose()


def test_the_report_scores_every_unanswered_claim_of_a_practice_with_history(demo_engine):
    with demo_engine.connect() as conn:
        c = sem.mart_claim
        practice, as_of = conn.execute(sa.select(c.c.practice_id, sa.func.max(c.c.submitted_date))
                                       .group_by(c.c.practice_id).order_by(sa.func.count().desc())).first()
        end = as_of.replace(day=1)
        f = Filters(start=end.replace(year=end.year - 1), end=end, practice_ids=(practice,))
        out = dr.denial_risk(conn, f)
        expected = conn.execute(sa.select(sa.func.count()).where(
            c.c.practice_id == practice, c.c.adjudications == 0, c.c.submitted_date <= f.end_date,
            c.c.payer_balance > 0)).scalar_one()
        result = dr.backtest(conn, practice, as_of=as_of)
    assert len(out) == expected > 0
    assert out["risk"].between(0, 1).all()
    assert list(out["risk"]) == sorted(out["risk"], reverse=True)
    high = out[out["risk_band"] == "high"]
    assert (high["risk"] >= 2 * high["base_rate"]).all()
    assert out["reasons"].str.len().gt(0).all()
    assert result is not None
    assert 0 <= result.auc <= 1
    assert 0 <= result.payer_only_auc <= 1
    assert result.train_claims >= dr.MIN_TRAINING
    assert result.test_claims >= 50
    assert isinstance(as_of, dt.date)
