"""Denial risk of the claims sent and not yet answered, learned from each practice's own history.

The model: a logistic regression over weight-of-evidence features. Each feature value (the payer, the
procedure, the payer and procedure together, a modifier, the place of service, the number of lines and of
diagnoses, the patient's eligibility check for the date) is turned into its smoothed log-odds of a denial
against the practice's base rate, measured on the practice's own first adjudications (a value seen on few claims
is pulled to the base rate: SMOOTHING claims' worth); the regression then weighs the features against each
other (the payer and the payer-and-procedure say much the same thing). Why this model and not a larger one:

* each score splits exactly into the features' contributions, so every claim's reasons are said in words
  ("eligibility check came back inactive: 19% of such claims denied");
* it learns from a few thousand claims, tolerates the long tail of procedure codes and needs nothing beyond
  numpy; it is trained per practice, on the latest TRAINING_CLAIMS first adjudications, at the first request
  after every load (the data version keys it), in well under a second.

What it cannot know: anything not on the claim when sent (a payer's policy change, an auth that lapsed later).
``backtest`` measures it against the payer-only base rate on the last complete months it did not see.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.metrics._query import fetch
from dashboard.metrics.filters import Filters, add_months
from dashboard.warehouse import marts as m
from dashboard.warehouse import semantic as sem

SMOOTHING = 20.0  # claims' worth of the base rate mixed into every value's rate
TRAINING_CLAIMS = 50_000  # the latest first adjudications a practice's model learns from
MIN_TRAINING = 200  # fewer claims than this: no model (a score would be noise)
RIDGE = 1.0  # L2 penalty on the weights (not the intercept)
HIGH_RISK = 2.0  # a claim at twice the practice's base rate or more is "high"

FEATURES = {  # feature -> (the words for a reason, how a value reads)
    "payer": ("payer", "{}"),
    "procedure": ("procedure", "{}"),
    "payer_procedure": ("payer and procedure", "{}"),
    "modified": ("modifier", "{}"),
    "place_of_service": ("place of service", "{}"),
    "lines": ("lines on the claim", "{}"),
    "diagnoses": ("diagnosis codes", "{}"),
    "eligibility": ("eligibility check", "{}"),
}
_COLUMNS = ["practice_id", "claim_id", "payer", "procedure", "place_of_service", "line_count", "modified",
            "diagnoses", "eligibility"]


def _features(frame: pd.DataFrame) -> pd.DataFrame:
    """Each claim's feature values, as text."""
    out = pd.DataFrame(index=frame.index)
    out["payer"] = frame["payer"].fillna("unknown").astype(str)
    out["procedure"] = frame["procedure"].fillna("unknown").astype(str)
    out["payer_procedure"] = out["payer"] + " " + out["procedure"]
    out["modified"] = np.where(frame["modified"].astype(int) > 0, "with a modifier", "no modifier")
    out["place_of_service"] = frame["place_of_service"].fillna("unknown").astype(str)
    lines = frame["line_count"].astype(int)
    out["lines"] = np.where(lines >= 3, "3 or more", lines.astype(str))
    dx = frame["diagnoses"].astype(int)
    out["diagnoses"] = np.where(dx >= 4, "4 or more", dx.astype(str))
    out["eligibility"] = frame["eligibility"].fillna("none").map(
        {"none": "not checked", "active": "active", "inactive": "came back inactive", "pending": "never answered",
         "error": "failed"}).fillna("other")
    return out


@dataclass(frozen=True)
class Model:
    """One practice's model: each feature value's weight of evidence, the weights and the base rate."""

    base_rate: float
    woe: dict[str, dict[str, float]]  # feature -> value -> smoothed log-odds against the base rate
    rates: dict[str, dict[str, tuple[float, int]]]  # feature -> value -> (denial rate, claims) seen in training
    weights: dict[str, float]
    intercept: float
    trained_on: int

    def contributions(self, features: pd.DataFrame) -> pd.DataFrame:
        """Each claim's log-odds contribution of each feature (an unseen value contributes nothing)."""
        return pd.DataFrame({name: features[name].map(self.woe[name]).fillna(0.0) * self.weights[name]
                             for name in FEATURES}, index=features.index)

    def score(self, features: pd.DataFrame) -> pd.Series:
        return 1.0 / (1.0 + np.exp(-(self.intercept + self.contributions(features).sum(axis=1))))


def _logit(p: np.ndarray | float) -> np.ndarray | float:
    return np.log(p / (1.0 - p))


def train(frame: pd.DataFrame, denied: pd.Series) -> Model | None:
    """A model from first adjudications (``frame`` as mart_claim has them, ``denied`` 0/1); None with fewer than
    MIN_TRAINING claims, or no denial (or nothing but denials) to learn from."""
    y = denied.astype(float).to_numpy()
    if len(y) < MIN_TRAINING or y.sum() == 0 or y.sum() == len(y):
        return None
    base = float(y.mean())
    features = _features(frame)
    woe, rates = {}, {}
    for name in FEATURES:
        grouped = pd.DataFrame({"v": features[name].to_numpy(), "y": y}).groupby("v")["y"].agg(["sum", "count"])
        smoothed = (grouped["sum"] + SMOOTHING * base) / (grouped["count"] + SMOOTHING)
        woe[name] = dict(zip(grouped.index, _logit(smoothed.to_numpy()) - _logit(base), strict=True))
        rates[name] = {v: (float(s / c), int(c)) for v, s, c in zip(grouped.index, grouped["sum"], grouped["count"],
                                                                    strict=True)}
    x = np.column_stack([features[name].map(woe[name]).to_numpy(dtype=float) for name in FEATURES])
    beta = _fit_logistic(x, y, _logit(base))
    return Model(base_rate=base, woe=woe, rates=rates, weights=dict(zip(FEATURES, beta[1:].tolist(), strict=True)),
                 intercept=float(beta[0]), trained_on=len(y))


def _fit_logistic(x: np.ndarray, y: np.ndarray, start: float, iterations: int = 25) -> np.ndarray:
    """Logistic regression by Newton's method (IRLS) with a ridge on the weights."""
    design = np.column_stack([np.ones(len(y)), x])
    beta = np.zeros(design.shape[1])
    beta[0] = start
    penalty = np.full(design.shape[1], RIDGE)
    penalty[0] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        w = p * (1.0 - p)
        gradient = design.T @ (y - p) - penalty * beta
        hessian = (design * w[:, None]).T @ design + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        beta = beta + step
        if np.abs(step).max() < 1e-8:
            break
    return beta


def reasons(model: Model, features: pd.DataFrame, *, top: int = 2) -> list[str]:
    """For each claim, the features that raise its risk most, in words with what the practice's history says."""
    names = list(FEATURES)
    raised = model.contributions(features)[names].to_numpy()
    values = features[names].to_numpy(dtype=object)
    # each row's features by contribution, largest first (a stable sort: ties keep FEATURES' order)
    order = np.argsort(-raised, axis=1, kind="stable")[:, :top]
    out = []
    for i, row in enumerate(order):
        said = []
        for j in row:
            if raised[i, j] <= 0.05:
                break
            name, value = names[j], values[i, j]
            rate, claims = model.rates[name].get(value, (model.base_rate, 0))
            label, shown = FEATURES[name]
            said.append(f"{label} {shown.format(value)}: {rate:.0%} of {claims:,} such claims denied")
        out.append("; ".join(said) or f"nothing above the practice's {model.base_rate:.0%}")
    return out


def _adjudicated(conn: Connection, practice_id: str, *, before: dt.date | None = None,
                 since: dt.date | None = None, limit: int | None = TRAINING_CLAIMS) -> pd.DataFrame:
    """A practice's claims with a first adjudication (newest first), their features and whether it denied them."""
    c = sem.source(sem.mart_claim)
    q = (sa.select(*[c.c[name] for name in _COLUMNS], c.c.first_adjudicated_date, c.c.first_denied)
         .where(c.c.practice_id == practice_id, c.c.adjudications > 0)
         .order_by(c.c.first_adjudicated_date.desc(), c.c.claim_id))
    if before is not None:
        q = q.where(c.c.first_adjudicated_date < before)
    if since is not None:
        q = q.where(c.c.first_adjudicated_date >= since)
    if limit is not None:
        q = q.limit(limit)
    return fetch(conn, q, [*_COLUMNS, "first_adjudicated_date", "first_denied"])


def denial_risk(conn: Connection, f: Filters) -> pd.DataFrame:
    """Each claim sent (837, by the end of the period) that no payer has answered, scored by its practice's model:
    the risk of a denial on its first 835, the practice's base rate, the risk band (high: twice the base rate or
    more) and the reasons in words. Highest risk first; a practice with too little history gets no scores."""
    c = sem.source(sem.mart_claim)
    q = (sa.select(*[c.c[name] for name in _COLUMNS], c.c.service_date, c.c.submitted_date,
                   c.c.charge_amount, c.c.payer_balance)
         .where(m.within(c.c.practice_id, f.practice_ids), c.c.adjudications == 0,
                c.c.submitted_date <= f.end_date, c.c.payer_balance > 0)
         .order_by(c.c.practice_id, c.c.claim_id))
    open_claims = fetch(conn, q, [*_COLUMNS, "service_date", "submitted_date", "charge", "balance"])
    parts = []
    for practice_id, claims in open_claims.groupby("practice_id", sort=True):
        history = _adjudicated(conn, practice_id)
        model = train(history, history["first_denied"])
        if model is None:
            continue
        features = _features(claims)
        scored = claims.assign(risk=model.score(features).to_numpy(), base_rate=model.base_rate)
        scored["risk_band"] = np.where(scored["risk"] >= HIGH_RISK * model.base_rate, "high",
                                       np.where(scored["risk"] > model.base_rate, "above base", "at or below base"))
        scored["reasons"] = reasons(model, features)
        parts.append(scored)
    columns = ["practice_id", "claim_id", "payer", "service_date", "submitted_date", "charge", "balance", "risk",
               "base_rate", "risk_band", "reasons"]
    if not parts:
        return pd.DataFrame(columns=columns)
    out = pd.concat(parts, ignore_index=True)[columns]
    return out.sort_values(["risk", "balance", "claim_id"], ascending=[False, False, True]).reset_index(drop=True)


# --- backtest -------------------------------------------------------------------------------------------------

def auc(scores: Sequence[float], outcomes: Sequence[int]) -> float:
    """The area under the ROC curve (the chance a denied claim outranks a paid one; ties count half)."""
    s, y = np.asarray(scores, dtype=float), np.asarray(outcomes, dtype=int)
    ranks = pd.Series(s).rank(method="average").to_numpy()
    positives, negatives = y.sum(), len(y) - y.sum()
    if positives == 0 or negatives == 0:
        return float("nan")
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def top_decile_precision(scores: Sequence[float], outcomes: Sequence[int]) -> float:
    """The denial rate among the 10% of claims scored highest (ties broken by the order given)."""
    s, y = np.asarray(scores, dtype=float), np.asarray(outcomes, dtype=int)
    k = max(1, int(np.ceil(len(s) * 0.10)))
    order = np.argsort(-s, kind="stable")[:k]
    return float(y[order].mean())


@dataclass(frozen=True)
class Backtest:
    practice_id: str
    train_claims: int
    test_claims: int
    test_denial_rate: float
    auc: float
    top_decile_precision: float
    payer_only_auc: float
    payer_only_top_decile_precision: float


def backtest(conn: Connection, practice_id: str, *, as_of: dt.date, test_months: int = 3) -> Backtest | None:
    """Train on the practice's first adjudications before the last ``test_months`` complete months (those before
    the as-of month) and score the claims first adjudicated in them; compare with the payer-only base rate
    (each payer's denial rate in training). None without enough history or test claims."""
    end = as_of.replace(day=1)  # the as-of month may be partial: it is left out
    start = add_months(end, -test_months)
    history = _adjudicated(conn, practice_id, before=start)
    model = train(history, history["first_denied"])
    test = _adjudicated(conn, practice_id, since=start, limit=None)
    test = test[test["first_adjudicated_date"] < end]
    if model is None or len(test) < 50:
        return None
    y = test["first_denied"].astype(int).to_numpy()
    scores = model.score(_features(test)).to_numpy()
    payer_rate = _features(test)["payer"].map({k: v[0] for k, v in model.rates["payer"].items()}) \
        .fillna(model.base_rate).to_numpy()
    return Backtest(practice_id, model.trained_on, len(test), float(y.mean()), auc(scores, y),
                    top_decile_precision(scores, y), auc(payer_rate, y), top_decile_precision(payer_rate, y))
