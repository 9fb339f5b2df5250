"""Property tests of the allocator's invariants (hypothesis)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from climb.allocation import (
    Constraints,
    build_problem,
    climb_params_of,
    run_baselines,
    solve_problem,
)
from climb.allocation.baselines import isolated_optimum
from climb.allocation.problem import AllocationProblem, with_identity_transfer
from climb.allocation.synthetic import random_climb_json
from climb.errors import ClimbError

SETTINGS = settings(
    max_examples=int(os.environ.get("CLIMB_HYPOTHESIS_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def problems(draw: st.DrawFn) -> AllocationProblem:
    K = draw(st.integers(3, 10))
    seed = draw(st.integers(0, 10_000))
    donors = draw(st.integers(0, 2))
    neg = draw(st.sampled_from([0.0, -0.05, -0.1]))
    pos = draw(st.sampled_from([0.0, 0.1, 0.25, 0.5]))
    law = random_climb_json(K, seed, transfer=(neg, pos), n_donors=donors)
    rng = np.random.default_rng(seed)
    tokens = float(10 ** draw(st.floats(8.5, 11.5)))
    bounds: dict[str, tuple[float | None, float | None]] = {}
    for s in law["sources"]:
        u = rng.uniform()
        if u < 0.2:
            bounds[s] = (float(rng.uniform(0, 0.5 / K)), None)
        elif u < 0.35:
            bounds[s] = (None, float(rng.uniform(0.3 / K, 2.5 / K)))
    unique = None
    max_epochs = None
    if draw(st.booleans()):
        unique = {s: float(tokens * rng.uniform(0.05, 3.0) / K) for s in law["sources"]}
        max_epochs = draw(st.sampled_from([1.0, 2.0, 4.0]))
    weights = {
        t: float(rng.choice([0.0, 0.5, 1.0, 3.0], p=[0.1, 0.2, 0.5, 0.2])) for t in law["targets"]
    }
    P, S, T = climb_params_of(law)
    try:
        return build_problem(
            P,
            S,
            T,
            tokens,
            constraints=Constraints(
                bounds=bounds, unique_tokens=unique, max_epochs=max_epochs, weights=weights
            ),
        )
    except ClimbError:
        assume(False)
        raise


def _check_feasible(problem: AllocationProblem, p: np.ndarray) -> None:
    assert abs(p.sum() - 1.0) <= 1e-12
    assert (p >= problem.lo - 1e-12).all()
    assert (p <= problem.hi + 1e-12).all()
    if problem.unique_tokens is not None and problem.max_epochs is not None:
        assert (
            p * problem.tokens <= problem.max_epochs * problem.unique_tokens * (1 + 1e-12) + 1e-3
        ).all()


@SETTINGS
@given(problems())
def test_sum_objective_is_feasible_and_beats_every_baseline(problem: AllocationProblem) -> None:
    try:
        res = solve_problem(problem)
    except ClimbError:
        assume(False)  # no allocation keeps every weighted r > 0 (strong interference + bounds)
        raise
    assert res.success, res.message
    _check_feasible(problem, res.proportions)
    assert res.kkt_residual < 1e-5
    baselines, _ = run_baselines(
        problem, names=("uniform", "natural", "temperature", "unimax", "isolated")
    )
    for name, b in baselines.items():
        _check_feasible(problem, b.proportions)
        assert res.objective <= b.objective + 1e-10 * abs(b.objective), name


@SETTINGS
@given(problems())
def test_worst_objective_is_feasible_and_beats_every_baseline(problem: AllocationProblem) -> None:
    try:
        res = solve_problem(problem, objective="worst")
    except ClimbError:
        assume(False)
        raise
    _check_feasible(problem, res.proportions)
    baselines, _ = run_baselines(
        problem, objective="worst", names=("uniform", "natural", "unimax", "isolated")
    )
    for name, b in baselines.items():
        assert res.objective <= b.objective * (1 + 1e-8), name


def water_filling(problem: AllocationProblem) -> np.ndarray:
    """The isolated (W = I) optimum written independently: each weighted target takes
    p_i(λ) = clip((λ / γ_i)^(-1/(β_i+1)), lo_i, hi_i) with γ_i = ω_i β_i B_i D^(-β_i); donors and
    zero-weight targets take their lower bound; λ by bisection so that Σ p = 1."""
    P = problem.params
    S = problem.n_sources
    gamma = np.zeros(S)
    beta = np.ones(S)
    gamma[P.own] = problem.weights * P.beta * P.B * problem.tokens ** (-P.beta)
    beta[P.own] = P.beta
    lo, hi = problem.lo, problem.hi

    def mix(log_lam: float) -> np.ndarray:
        with np.errstate(divide="ignore", over="ignore"):
            want = np.where(
                gamma > 0,
                (np.exp(log_lam) / np.where(gamma > 0, gamma, 1.0)) ** (-1 / (beta + 1)),
                0.0,
            )
        return np.clip(want, lo, hi)

    a, b = -200.0, 200.0
    for _ in range(400):
        m = 0.5 * (a + b)
        if mix(m).sum() > 1.0:
            a = m
        else:
            b = m
    return mix(0.5 * (a + b))


@SETTINGS
@given(problems())
def test_identity_transfer_is_the_isolated_optimum(problem: AllocationProblem) -> None:
    """The allocator on the W = I law and the isolated baseline both match the water-filling
    closed form written independently above (not another call of the same solver)."""
    iso = with_identity_transfer(problem)
    want = water_filling(iso)
    assume(abs(want.sum() - 1.0) < 1e-9)  # λ → 0 cannot fill the budget: donors take the rest
    res = solve_problem(iso)
    assert iso.objective_sum(res.proportions) <= iso.objective_sum(want) * (1 + 1e-12)
    np.testing.assert_allclose(res.proportions, want, atol=1e-7)
    base = isolated_optimum(problem)  # the baseline: solved under W = I, scored under the law
    np.testing.assert_allclose(base.proportions, want, atol=1e-7)
    assert base.objective == pytest.approx(problem.objective_sum(base.proportions), rel=1e-12)
