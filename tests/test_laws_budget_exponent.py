"""The climb form's budget exponent: ``B r^(-β) D^(-δ)`` (``budget_exponent="free"``) against the
shared ``B (r D)^(-β)`` (δ = β), in the fit, the law JSON, the CLI and the allocator."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cvxpy as cp
import numpy as np
import pytest

from climb.allocation import allocate
from climb.cli import main
from climb.errors import ClimbError
from climb.laws import law_from_json
from climb.laws.climb import ClimbLaw, IsolatedLaw
from climb.laws.climb.fit import TargetDesign
from climb.laws.climb.forms import climb_target_model
from climb.laws.simulate import random_climb_law, simulate_runs

BUDGETS = [1e8, 3e8, 1e9]


def _design() -> TargetDesign:
    rng = np.random.default_rng(4)
    n = 40
    p = rng.dirichlet(np.ones(4), n)
    return TargetDesign(
        target="s1", own=0, p=p, d=rng.choice([0.5, 1.0, 2.0], n), nu=np.ones(n),
        y=np.full(n, 3.0), free=np.array([1, 2, 3]), fit_kappa=True, fit_size=False,
        own_seen=True, fit_delta=True,
    )  # fmt: skip


def test_free_exponent_equal_to_beta_is_the_shared_form() -> None:
    d = _design()  # (the Jacobian with δ is checked in test_laws_climb.py)
    shared = dataclasses.replace(d, fit_delta=False)
    x = np.array([1.5, 0.2, 0.35, 0.3, -0.05, 0.6, 0.1])
    np.testing.assert_allclose(
        climb_target_model(np.append(x, 0.35), d)[0], climb_target_model(x, shared)[0],
        rtol=1e-13,
    )  # fmt: skip


def _truth_with_delta(delta: float) -> ClimbLaw:
    """A random 4-language climb law whose data term is ``B r^(-β) D^(-δ)`` with δ ≠ β."""
    truth = random_climb_law(4, tokens=BUDGETS, seed=2)
    P = truth.params_
    P.kappa[:] = 0.0
    P.delta = np.full(4, delta)
    P.B = P.B * P.tokens_ref ** (delta - P.beta)  # same loss at D_ref
    return truth


def test_free_exponent_is_recovered_and_extrapolates_the_budget() -> None:
    truth = _truth_with_delta(0.6)
    assert (np.abs(truth.params_.beta - 0.6) > 0.1).all()
    runs = simulate_runs(truth, 120, tokens=BUDGETS, noise=0.003, seed=3)
    free = ClimbLaw(seed=0, budget_exponent="free", fit_kappa=False).fit(runs)
    shared = ClimbLaw(seed=0, fit_kappa=False).fit(runs)
    assert free.params_.delta is not None and shared.params_.delta is None
    assert np.abs(free.params_.delta - 0.6).max() < 0.05
    assert np.abs(free.beta_ - truth.beta_).max() < 0.05
    test = simulate_runs(truth, 40, tokens=[1e10], noise=0.0, seed=9)  # 10× the largest proxy
    err_free = np.abs(free.predict_runs(test) / test.loss - 1).mean()
    err_shared = np.abs(shared.predict_runs(test) / test.loss - 1).mean()
    assert err_free < 0.005
    assert err_shared > 3 * err_free  # one exponent for share and budget cannot follow this truth


def test_one_budget_falls_back_to_the_shared_form() -> None:
    truth = random_climb_law(3, seed=1)
    runs = simulate_runs(truth, 40, noise=0.01, seed=1)
    free = ClimbLaw(seed=0, budget_exponent="free").fit(runs)
    shared = ClimbLaw(seed=0).fit(runs)
    assert free.params_.delta is None  # δ is not identified by one budget
    np.testing.assert_array_equal(free.predict_runs(runs), shared.predict_runs(runs))


def test_isolated_law_takes_the_option() -> None:
    truth = _truth_with_delta(0.5)
    runs = simulate_runs(truth, 80, tokens=BUDGETS, noise=0.003, seed=4)
    iso = IsolatedLaw(seed=0, budget_exponent="free").fit(runs)
    assert iso.params_.delta is not None and (iso.params_.delta > 0).all()


def test_json_round_trip_and_hand_written_delta(tmp_path: Path) -> None:
    truth = _truth_with_delta(0.6)
    runs = simulate_runs(truth, 80, tokens=BUDGETS, noise=0.003, seed=5)
    law = ClimbLaw(seed=0, budget_exponent="free").fit(runs)
    again = law_from_json(json.loads(json.dumps(law.to_json())))
    np.testing.assert_allclose(again.predict_runs(runs), law.predict_runs(runs), rtol=1e-12)
    hand = law_from_json({"law": "climb", "sources": ["en", "de"], "params": {
        "E": [1.5, 1.6], "B": [400.0, 500.0], "beta": [0.3, 0.2], "delta": [0.5, 0.4],
        "W": [[1.0, 0.2], [0.5, 1.0]]}})  # fmt: skip
    r = np.array([0.5 + 0.2 * 0.5, 0.5 * 0.5 + 0.5])
    np.testing.assert_allclose(
        hand.predict([0.5, 0.5], 1e9),
        [1.5 + 400 * r[0] ** -0.3 * 1e9**-0.5, 1.6 + 500 * r[1] ** -0.2 * 1e9**-0.4],
    )
    with pytest.raises(ClimbError, match=r"'delta' \(budget exponent\) must be ≥ 0"):
        law_from_json({"law": "climb", "sources": ["en"], "params": {
            "E": [1.5], "B": [1.0], "beta": [0.3], "delta": [-0.1], "W": [[1.0]]}})  # fmt: skip


def test_bad_budget_exponent() -> None:
    runs = simulate_runs(random_climb_law(3, seed=0), 20, seed=0)
    with pytest.raises(ClimbError, match="budget_exponent must be 'shared' or 'free', got 'x'"):
        ClimbLaw(budget_exponent="x").fit(runs)  # type: ignore[arg-type]


def test_allocation_uses_the_budget_exponent() -> None:
    """The allocator's optimum under ``B r^(-β) D*^(-δ)`` against cvxpy on the JSON formula."""
    law = {"law": "climb", "sources": ["a", "b", "c"], "params": {
        "E": [1.0, 1.2, 0.9], "B": [20.0, 600.0, 200.0], "beta": [0.3, 0.5, 0.2],
        "delta": [0.2, 0.45, 0.35], "W": [[1.0, 0.2, 0.0], [0.1, 1.0, 0.3], [0.0, 0.2, 1.0]]}}  # fmt: skip
    D = 1e9
    P = law["params"]
    E, B, beta, delta = (np.array(P[k]) for k in ("E", "B", "beta", "delta"))
    W = np.array(P["W"])
    p = cp.Variable(3)
    r = W @ p
    obj = sum(B[i] * D ** (-delta[i]) * cp.power(r[i], -beta[i], approx=False) for i in range(3))
    prob = cp.Problem(cp.Minimize(obj), [cp.sum(p) == 1, p >= 0])
    prob.solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    res = allocate(law, D)
    assert (res.proportions > 0.05).all()  # an interior optimum: every language gets a share
    formula = E + B * D ** (-delta) * (W @ res.proportions) ** (-beta)
    np.testing.assert_allclose(res.predicted_loss, formula, rtol=1e-12)
    assert res.objective == pytest.approx(E.sum() + prob.value, rel=1e-8)
    np.testing.assert_allclose(res.proportions, np.asarray(p.value), atol=1e-4)
    # with δ = β the optimum moves: the exponent is used, not ignored
    shared = {**law, "params": {k: v for k, v in P.items() if k != "delta"}}
    assert np.abs(allocate(shared, D).proportions - res.proportions).max() > 0.01


def test_cli_budget_exponent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    truth = _truth_with_delta(0.6)
    runs = simulate_runs(truth, 60, tokens=BUDGETS, noise=0.003, seed=6)
    table = tmp_path / "runs.csv"
    runs.write(str(table))
    out = tmp_path / "law.json"
    assert main(["fit", str(table), "--out", str(out), "--budget-exponent", "free"]) == 0
    assert "delta" in json.loads(out.read_text())["params"]
    capsys.readouterr()
    assert main(["fit", str(table), "--law", "dml", "--out", str(out),
                 "--budget-exponent", "free"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["climb: error: --budget-exponent applies to the climb and isolated laws only, "
                   "not 'dml'"]  # fmt: skip
