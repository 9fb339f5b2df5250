"""Repeated data in the climb law: S(T; U), its exact reduction, recovery of λ, JSON."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from climb.errors import ClimbError, ClimbWarning
from climb.laws import get_law, load_law
from climb.laws.climb import ClimbLaw, estimators
from climb.laws.climb.repetition import (
    LAMBDA_DEFAULT,
    LAMBDA_GRID,
    effective_shares,
    effective_shares_slope,
    parabola_vertex,
)
from climb.laws.simulate import random_climb_law, simulate_runs

BUDGETS = (1e6, 2e6)
LAM = 0.3


def test_effective_tokens_formula_and_no_repetition_is_exact() -> None:
    U = np.array([1e5, 1e9])
    p = np.array([[0.05, 0.95], [0.5, 0.5], [0.25, 0.75]])
    d = 1e6
    got = effective_shares(p, np.full(3, d), U, LAM) * d
    T = p[:, 0] * d
    want = np.where(U[0] >= T, T, U[0] * (1 + (1 - np.exp(-LAM * (T / U[0] - 1))) / LAM))
    np.testing.assert_allclose(got[:, 0], want, rtol=1e-12)
    np.testing.assert_array_equal(got[:, 1], p[:, 1] * d)  # never repeated: p̃ = p exactly
    assert got[1, 0] < T[1]  # 5 epochs count less than 5 fresh ones
    # the slope is the derivative (finite differences) and 1 below one epoch
    x = np.array([0.3, 0.3])  # 3 epochs of s1, far below one of s2
    slope, curv = effective_shares_slope(x, d, U, LAM)
    h = 1e-7
    fd = (effective_shares(x + h, d, U, LAM) - effective_shares(x - h, d, U, LAM)) / (2 * h)
    np.testing.assert_allclose(slope, fd, rtol=1e-5)
    assert slope[1] == 1.0 and curv[1] == 0.0 and curv[0] < 0


@pytest.fixture(scope="module")
def truth_and_runs():  # type: ignore[no-untyped-def]
    truth = random_climb_law(3, tokens=BUDGETS, seed=2)
    U = {"s1": 2e5, "s2": 4e5, "s3": 5e6}  # s1, s2 repeat up to 10 / 5 epochs
    truth.params_.unique_tokens = np.array([U[s] for s in truth.sources_])
    truth.params_.lam = LAM
    runs = simulate_runs(truth, 64, tokens=BUDGETS, noise=0.003, seed=0)
    return truth, U, runs


def test_parabola_vertex() -> None:
    x = np.log(np.array(LAMBDA_GRID[3:6]))
    for c in (x[0] + 0.1, x[1], x[2] - 0.05):  # the vertex of a parabola, anywhere in the bracket
        assert parabola_vertex(x, 2.0 + 3.0 * (x - c) ** 2) == pytest.approx(c, abs=1e-12)
    assert parabola_vertex(x, -((x - x[1]) ** 2)) is None  # concave: no minimum
    assert parabola_vertex(x, np.array([1.0, 1.0, 1.0])) is None  # flat


@pytest.mark.slow
def test_profile_refinement_finds_the_brent_lambda(truth_and_runs) -> None:  # type: ignore[no-untyped-def]
    """One parabola step refines the λ profile to within the grid's resolution of what a bounded
    Brent search finds (the refinement until 2026-12-01), with 14 whole-law fits instead of ~21."""
    _, U, runs = truth_and_runs
    lam, cost = {}, {}
    for how in ("brent", "parabola"):
        saved, estimators.PROFILE_REFINE = estimators.PROFILE_REFINE, how
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ClimbWarning)
                law = get_law("climb", seed=0, unique_tokens=U).fit(runs)
        finally:
            estimators.PROFILE_REFINE = saved
        lam[how] = law.params_.lam
        cost[how] = sum(r["cost"] for r in law.diagnostics_.targets)
    step = np.log(LAMBDA_GRID[1] / LAMBDA_GRID[0])
    assert abs(np.log(lam["parabola"] / lam["brent"])) < step / 2
    assert cost["parabola"] <= cost["brent"] * 1.01


@pytest.mark.slow
def test_recovers_the_decay_of_repeated_epochs(truth_and_runs) -> None:  # type: ignore[no-untyped-def]
    truth, U, runs = truth_and_runs
    epochs = runs.p * runs.tokens[:, None] / np.array([U[s] for s in runs.sources])
    assert (epochs > 3).any(axis=1).sum() >= 10  # the runs do repeat data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        law = get_law("climb", seed=0, unique_tokens=U).fit(runs)
        plain = get_law("climb", seed=0).fit(runs)
    assert law.params_.lam == pytest.approx(LAM, rel=0.25)
    # predictions of new, heavily repeated mixtures: far better than without S(T; U)
    rng = np.random.default_rng(5)
    p = rng.dirichlet([4.0, 2.0, 1.0], 80)
    p = p[truth.effective_ratio(p, 2e6).min(axis=1) >= 0.02]  # the simulated domain
    assert len(p) >= 20
    obs = truth.predict(p, 2e6)
    err = np.abs(law.predict(p, 2e6) - obs).mean()
    assert err < 0.02 and err < 0.5 * np.abs(plain.predict(p, 2e6) - obs).mean()


def test_fixed_lambda_json_round_trip_and_no_repetition_is_the_old_law(
    truth_and_runs, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    _, U, runs = truth_and_runs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        law = get_law("climb", seed=0, unique_tokens=U, repetition=0.5).fit(runs)
    assert law.params_.lam == 0.5
    back = load_law(law.save(tmp_path / "law.json"))
    p = np.array([[0.9, 0.05, 0.05], [0.2, 0.3, 0.5]])
    np.testing.assert_allclose(back.predict(p, 2e6), law.predict(p, 2e6), rtol=0, atol=1e-12)
    # where no source passes one epoch the law is the plain climb law on the same parameters
    P = law.params_
    small = np.array([[0.1, 0.2, 0.7]])  # at 1e5 tokens: 0.05, 0.05, 0.014 epochs
    plain = P.loss_from_ratio(P.ratio_map(1e5)(small), 1e5)
    np.testing.assert_array_equal(law.predict(small, 1e5), plain)
    # without unique_tokens there is no repetition and the JSON has no such keys
    assert "unique_tokens" in law.to_json()["params"]
    assert pytest.approx(1 / 15.4) == LAMBDA_DEFAULT


def test_bad_repetition_input(truth_and_runs) -> None:  # type: ignore[no-untyped-def]
    _, U, runs = truth_and_runs
    with pytest.raises(ClimbError, match="unique_tokens has no count for source"):
        get_law("climb", unique_tokens={"s1": 1e5}).fit(runs)
    with pytest.raises(ClimbError, match="repetition must be 'auto' or λ > 0"):
        get_law("climb", unique_tokens=U, repetition=-1).fit(runs)
    with pytest.raises(ClimbError, match="unique_tokens must be positive"):
        get_law("climb", unique_tokens={**U, "s1": 0}).fit(runs)
    assert isinstance(get_law("climb"), ClimbLaw)


def test_allocator_optimizes_the_repetition_aware_loss(truth_and_runs) -> None:  # type: ignore[no-untyped-def]
    from scipy.optimize import minimize

    from climb.allocation import allocate
    from climb.allocation.constraints import Constraints

    truth, U, _ = truth_and_runs
    d = 3e6  # s1 (2e5 unique) and s2 (4e5) can only be had repeated
    res = allocate(truth, d, constraints=Constraints(unique_tokens=U, max_epochs=8.0))
    P = truth.params_

    def f(x: np.ndarray) -> float:
        p = np.append(x, 1 - x.sum())
        return float(P.loss(p, d).sum())

    # the allocator's predicted loss is the law's, repetition included
    np.testing.assert_allclose(res.predicted_loss, P.loss(res.proportions, d)[0], rtol=1e-12)
    # and no feasible mixture does better (SLSQP from many starts under the same caps)
    caps = np.array([8 * U[s] / d for s in truth.sources_])
    best = np.inf
    for x0 in np.random.default_rng(0).dirichlet(np.ones(3), 12):
        cons = [{"type": "ineq", "fun": lambda x, c=caps: c[:2] - x},
                {"type": "ineq", "fun": lambda x, c=caps: c[2] - (1 - x.sum())},
                {"type": "ineq", "fun": lambda x: 1 - x.sum()}]  # fmt: skip
        r = minimize(f, x0[:2], bounds=[(0, 1)] * 2, constraints=cons, method="SLSQP")
        if r.success:
            best = min(best, r.fun)
    assert f(res.proportions[:2]) <= best + 1e-6 * abs(best)


@pytest.mark.slow
def test_cli_fit_and_cv_with_unique_tokens(truth_and_runs, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """``climb fit / cv --unique-tokens CSV`` fit the repetition-aware law from the command line:
    the same λ as the library with the same counts, said in one line; bad input is one line."""
    from climb.cli import main

    _, U, runs = truth_and_runs
    table = runs.write(tmp_path / "runs.csv")
    counts = tmp_path / "unique.csv"
    counts.write_text("source,tokens\n" + "".join(f"{s},{u:g}\n" for s, u in U.items()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        want = get_law("climb", seed=0, unique_tokens=U).fit(runs)
        assert main(["fit", str(table), "--unique-tokens", str(counts),
                     "--out", str(tmp_path / "law.json")]) == 0  # fmt: skip
    out = capsys.readouterr().out
    law = load_law(tmp_path / "law.json")
    assert law.params_.lam == want.params_.lam != LAMBDA_DEFAULT
    assert f"repeated data: λ = {want.params_.lam:.4g} (fitted)" in out
    np.testing.assert_allclose(law.params_.unique_tokens, [U[s] for s in runs.sources])
    # cv takes the same counts: out-of-fold predictions of the repetition-aware law
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        assert main(["cv", str(table), "--unique-tokens", str(counts), "--folds", "3",
                     "--jobs", "1", "--json"]) == 0  # fmt: skip
    assert '"mae"' in capsys.readouterr().out

    def error(argv: list[str], message: str) -> None:
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("climb: error: ") and message in err and err.count("\n") == 1, err

    law_out = str(tmp_path / "l.json")
    error(["fit", str(table), "--law", "dml", "--unique-tokens", str(counts), "--out", law_out],
          "--unique-tokens applies to the climb and isolated laws only, not 'dml'")  # fmt: skip
    error(["fit", str(table), "--unique-tokens", str(tmp_path / "none.csv"), "--out", law_out],
          "no such file")  # fmt: skip
    counts.write_text("source,tokens\ns1,1e5\n")
    error(["fit", str(table), "--unique-tokens", str(counts), "--out", law_out],
          "unique_tokens has no count for source(s) s2, s3")  # fmt: skip
    assert not (tmp_path / "l.json").exists()
