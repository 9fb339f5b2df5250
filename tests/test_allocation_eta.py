"""The allocator under transfer saturation (η < 1): r_i = p_i + Σ_{j≠i} W_ij φ_{η_i}(p_j).

The reference is an independent cvxpy program written from the law JSON alone (DCP: ``(p + ε)^η``
is concave for 0 < η < 1 and the transfer weights are ≥ 0)."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from climb.allocation import (
    Constraints,
    allocate,
    build_problem,
    climb_params_of,
    run_baselines,
    solve_problem,
)
from climb.allocation.baselines import isolated_optimum
from climb.allocation.problem import AllocationProblem, linearized
from climb.allocation.synthetic import random_climb_json
from climb.cli import main
from climb.errors import ClimbError

EPS = 1e-6  # ε of φ_η(p) = (p + ε)^η − ε^η (the law's TRANSFER_EPS)


def eta_law(
    K: int, seed: int, *, transfer: tuple[float, float] = (0.0, 0.25), n_donors: int = 0
) -> dict:
    law = random_climb_json(K, seed, transfer=transfer, n_donors=n_donors)
    rng = np.random.default_rng(10_000 + seed)
    law["params"]["eta"] = rng.uniform(0.4, 1.0, len(law["targets"])).tolist()
    return law


def _w_at(law: dict, tokens: float) -> np.ndarray:
    P = law["params"]
    kappa = np.asarray(P["kappa"], dtype=float)
    W = np.asarray(P["W"], dtype=float) * (tokens / P["tokens_ref"]) ** (-kappa)[:, None]
    for i, t in enumerate(law["targets"]):
        W[i, law["sources"].index(t)] = 1.0
    return W


def ratio_from_json(law: dict, tokens: float, p: np.ndarray) -> np.ndarray:
    W = _w_at(law, tokens)
    eta = np.asarray(law["params"]["eta"], dtype=float)
    r = np.empty(len(law["targets"]))
    for i, t in enumerate(law["targets"]):
        own = law["sources"].index(t)
        phi = (p + EPS) ** eta[i] - EPS ** eta[i]
        phi[own] = p[own]
        r[i] = W[i] @ phi
    return r


def objective_from_json(law: dict, tokens: float, p: np.ndarray, weights: np.ndarray) -> float:
    P = law["params"]
    E, B, beta = (np.asarray(P[k], dtype=float) for k in ("E", "B", "beta"))
    r = ratio_from_json(law, tokens, p)
    return float(weights @ (E + B * (r * tokens) ** (-beta)))


def cvx_ratio_from_json(law: dict, tokens: float, p: cp.Variable) -> list:
    """r_i as cvxpy expressions, one target at a time (W ≥ 0 off the own column)."""
    W = _w_at(law, tokens)
    eta = np.asarray(law["params"]["eta"], dtype=float)
    out = []
    for i, t in enumerate(law["targets"]):
        own = law["sources"].index(t)
        w = W[i].copy()
        w[own] = 0.0
        out.append(
            p[own] + w @ cp.power(p + EPS, float(eta[i]), approx=False) - EPS ** eta[i] * w.sum()
        )
    return out


def _solve(prob: cp.Problem, tol: float = 1e-11) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prob.solve(solver=cp.CLARABEL, tol_gap_abs=tol, tol_gap_rel=tol, tol_feas=tol,
                   max_iter=1000, max_step_fraction=0.9)  # fmt: skip
    assert prob.status == "optimal", prob.status


def reference_optimum(
    law: dict, tokens: float, lo: np.ndarray, hi: np.ndarray, weights: np.ndarray
) -> float:
    P = law["params"]
    E, B, beta = (np.asarray(P[k], dtype=float) for k in ("E", "B", "beta"))
    p = cp.Variable(len(law["sources"]))
    r = cvx_ratio_from_json(law, tokens, p)
    terms = [weights[i] * B[i] * tokens ** (-beta[i]) * cp.power(r[i], -beta[i], approx=False)
             for i in range(len(r)) if weights[i] > 0]  # fmt: skip
    prob = cp.Problem(cp.Minimize(cp.sum(cp.hstack(terms))), [cp.sum(p) == 1, p >= lo, p <= hi])
    _solve(prob)
    return float(weights @ E + prob.value)


def _problem(law: dict, tokens: float = 1e10, **kw: object) -> AllocationProblem:
    P, S, T = climb_params_of(law)
    return build_problem(P, S, T, tokens, constraints=Constraints(**kw))  # type: ignore[arg-type]


# ---------------------------------------------------------------------- acceptance
@pytest.mark.parametrize("K,seed", [(4, 0), (8, 1), (16, 2), (32, 3)])
def test_cli_matches_an_independent_convex_program(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], K: int, seed: int
) -> None:
    law = eta_law(K, seed)
    tokens = 1e10
    rng = np.random.default_rng(seed)
    bounds: dict[str, tuple[float | None, float | None]] = {}
    for s in law["sources"]:
        u = rng.uniform()
        if u < 0.2:
            bounds[s] = (float(rng.uniform(0.0, 0.5 / K)), None)
        elif u < 0.4:
            bounds[s] = (None, float(rng.uniform(0.2 / K, 1.5 / K)))
    unique = {s: float(tokens * rng.uniform(0.2, 3.0) / K) for s in law["sources"]}
    e_max = 2.0
    (tmp_path / "law.json").write_text(json.dumps(law))
    (tmp_path / "u.csv").write_text(
        "source,tokens\n" + "".join(f"{s},{v!r}\n" for s, v in unique.items())
    )
    spec = ",".join(
        f"{s}={'' if a is None else a}:{'' if b is None else b}" for s, (a, b) in bounds.items()
    )
    args = [str(tmp_path / "law.json"), "--tokens", "1e10", "--unique-tokens", str(tmp_path / "u.csv"),
            "--max-epochs", str(e_max), "--baselines", "uniform,isolated", "--json"]  # fmt: skip
    if spec:
        args += ["--bounds", spec]
    assert main(["allocate", *args]) == 0
    out = json.loads(capsys.readouterr().out)
    p = np.array([out["proportions"][s] for s in law["sources"]])
    lo = np.array([(bounds.get(s, (None, None))[0] or 0.0) for s in law["sources"]])
    hi = np.array(
        [1.0 if bounds.get(s, (None, None))[1] is None else bounds[s][1] for s in law["sources"]]
    )
    hi = np.minimum(hi, np.array([e_max * unique[s] / tokens for s in law["sources"]]))
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert (p >= lo - 1e-12).all() and (p <= hi + 1e-12).all()
    w = np.ones(K)
    ours = objective_from_json(law, tokens, p, w)
    assert ours == pytest.approx(out["objective"], rel=1e-12)
    ref = reference_optimum(law, tokens, lo, hi, w)
    assert abs(ours - ref) / abs(ref) <= 1e-6
    assert ours <= ref + 1e-8 * abs(ref)
    assert out["solver"]["path"] == "active-set-eta"
    assert out["solver"]["kkt_residual"] < 1e-8
    for name, b in out["baselines"].items():
        assert b["gap"] >= -1e-10 * abs(ref), name


def test_effective_ratio_jacobian_and_curvature_agree_with_the_law() -> None:
    law = eta_law(7, 5, n_donors=2)
    prob = _problem(law, 3e9)
    P = prob.params
    rng = np.random.default_rng(0)
    for p in [rng.dirichlet(np.ones(7)), np.array([0.5, 0.5, 0, 0, 0, 0, 0.0])]:
        np.testing.assert_allclose(
            prob.effective_ratio(p), P.effective_ratio(p, 3e9)[0], rtol=1e-12
        )
        np.testing.assert_allclose(
            prob.effective_ratio(p), ratio_from_json(law, 3e9, p), rtol=1e-12
        )
        np.testing.assert_allclose(prob.ratio_jacobian(p), P.ratio_jacobian(p, 3e9), rtol=1e-12)
    p = rng.dirichlet(np.ones(7)) * 0.9 + 0.01
    r, J, C = prob.ratio_map.second_order(p)
    h = 1e-6
    for k in range(7):
        e = np.zeros(7)
        e[k] = h
        fd1 = (prob.effective_ratio(p + e) - prob.effective_ratio(p - e)) / (2 * h)
        fd2 = (prob.effective_ratio(p + e) - 2 * r + prob.effective_ratio(p - e)) / h**2
        np.testing.assert_allclose(J[:, k], fd1, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(C[:, k], fd2, rtol=1e-3, atol=1e-3)
    # G = Jᵀ g = −∇F
    grad = np.array(
        [(prob.objective_sum(p + h * np.eye(7)[k]) - prob.objective_sum(p - h * np.eye(7)[k]))
         / (2 * h) for k in range(7)]
    )  # fmt: skip
    np.testing.assert_allclose(prob.marginal_benefit(p), -grad, rtol=1e-5)


def test_eta_one_gives_exactly_the_linear_result() -> None:
    law = random_climb_json(12, 4, transfer=(-0.05, 0.25))
    ones = json.loads(json.dumps(law))
    ones["params"]["eta"] = [1.0] * 12
    bounds = {"s001": (0.05, None), "s003": (None, 0.02)}
    for objective in ("sum", "worst"):
        a = allocate(law, 1e10, constraints=Constraints(bounds=bounds), objective=objective)
        b = allocate(ones, 1e10, constraints=Constraints(bounds=bounds), objective=objective)
        assert a.path == b.path and a.path in ("active-set", "bisection-lp")
        np.testing.assert_array_equal(a.proportions, b.proportions)
        assert a.objective == b.objective


def test_saturation_moves_the_allocation_and_equalizes_jacobian_marginal_benefits() -> None:
    law = eta_law(6, 11)
    res = allocate(law, 1e10)
    lin = allocate({**law, "params": {k: v for k, v in law["params"].items() if k != "eta"}}, 1e10)
    assert np.abs(res.proportions - lin.proportions).max() > 1e-3
    prob = _problem(law)
    G = prob.marginal_benefit(res.proportions)
    free = res.proportions > 1e-9
    assert np.ptp(G[free]) / G[free].mean() < 1e-8
    assert res.kkt_residual < 1e-10
    # the linear-law optimum is feasible for the η law but not better
    assert prob.objective_sum(lin.proportions) >= res.objective


def test_forced_paths_agree_and_two_step_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    law = eta_law(10, 6)
    a = allocate(law, 1e10, constraints=Constraints(bounds={"s000": (0.2, None)}))
    c = allocate(law, 1e10, constraints=Constraints(bounds={"s000": (0.2, None)}), method="convex")
    s = allocate(
        law, 1e10, constraints=Constraints(bounds={"s000": (0.2, None)}), method="active-set"
    )
    assert (a.path, c.path, s.path) == ("active-set-eta", "convex-eta", "active-set-eta")
    assert abs(a.objective - c.objective) / c.objective < 1e-8
    assert a.objective <= c.objective * (1 + 1e-12)
    with pytest.raises(ClimbError, match="linear law"):
        allocate(law, 1e10, method="two-step")


def test_cli_two_step_on_eta_law_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "law.json"
    path.write_text(json.dumps(eta_law(4, 0)))
    assert main(["allocate", str(path), "--tokens", "1e10", "--method", "two-step"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "eta" in err and "Traceback" not in err


def test_newton_failure_falls_back_to_the_convex_path(monkeypatch: pytest.MonkeyPatch) -> None:
    import climb.allocation.two_step as two_step

    law = eta_law(8, 9)
    want = allocate(law, 1e10)
    orig = two_step.active_set
    calls = {"n": 0}

    def first_fails(problem, p0, **kw):  # type: ignore[no-untyped-def]
        if kw.get("path") == "active-set-eta":
            calls["n"] += 1
        if calls["n"] == 1:  # the Newton path's first solve (not the linear warm start)
            return two_step.SolverOutput(p0, "active-set-eta", 3, 1, "did not settle")
        return orig(problem, p0, **kw)

    monkeypatch.setattr(two_step, "active_set", first_fails)
    res = allocate(law, 1e10)
    assert res.path == "convex-eta" and res.success
    assert "convex path" in res.message and "polished" in res.message
    assert abs(res.objective - want.objective) / want.objective < 1e-10


def test_negative_transfer_is_reported_as_possibly_non_convex() -> None:
    law = eta_law(8, 2, transfer=(-0.05, 0.25))
    prob = _problem(law, bounds={"s000": (None, 0.05)})
    assert not prob.convex
    res = solve_problem(prob)
    ref = solve_problem(prob, method="convex")
    assert res.path == "multistart-eta" and ref.path == "multistart-slsqp"
    assert "non-convex" in res.message and "non-convex" in ref.message
    assert res.kkt_residual < 1e-8
    # both are local searches; on this instance they agree
    assert abs(res.objective - ref.objective) / ref.objective < 1e-7
    worst = solve_problem(prob, objective="worst")
    assert worst.path == "multistart-slsqp" and "non-convex" in worst.message
    for b in run_baselines(prob, names=("uniform", "isolated"))[0].values():
        assert res.objective <= b.objective


def test_worst_objective_matches_an_independent_epigraph_program() -> None:
    law = eta_law(6, 4)
    D = 1e10
    res = allocate(law, D, constraints=Constraints(bounds={"s002": (None, 0.1)}), objective="worst")
    assert res.path == "epigraph-eta" and res.success
    P = law["params"]
    E, B, beta = (np.array(P[k]) for k in ("E", "B", "beta"))
    c = B * D ** (-beta)  # normalizer: excess at r = 1 (A = 0 here)
    p = cp.Variable(6)
    t = cp.Variable()
    r = cvx_ratio_from_json(law, D, p)
    cons = [cp.sum(p) == 1, p >= 0, p[2] <= 0.1]
    cons += [B[i] * D ** (-beta[i]) * cp.power(r[i], -beta[i], approx=False) <= t * c[i]
             for i in range(6)]  # fmt: skip
    _solve(cp.Problem(cp.Minimize(t), cons), tol=1e-9)
    assert res.objective == pytest.approx(float(np.asarray(t.value, dtype=float)), rel=1e-7)
    excess = (res.predicted_loss - E) / c
    assert excess.max() == pytest.approx(res.objective, rel=1e-12)
    assert res.proportions[2] <= 0.1 + 1e-12


def test_isolated_baseline_ignores_eta_but_is_scored_under_the_real_law() -> None:
    law = eta_law(6, 8)
    prob = _problem(law)
    iso = isolated_optimum(prob)
    iso_lin = isolated_optimum(linearized(prob))
    np.testing.assert_array_equal(iso.proportions, iso_lin.proportions)
    assert iso.objective == pytest.approx(prob.objective_sum(iso.proportions), rel=1e-15)
    assert iso.objective != iso_lin.objective
    assert allocate(law, 1e10).objective <= iso.objective


# ---------------------------------------------------------------------- properties
SETTINGS = settings(
    max_examples=int(os.environ.get("CLIMB_HYPOTHESIS_EXAMPLES", "15")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def eta_problems(draw: st.DrawFn) -> AllocationProblem:
    K = draw(st.integers(3, 10))
    seed = draw(st.integers(0, 10_000))
    donors = draw(st.integers(0, 2))
    law = eta_law(K, seed, transfer=(0.0, draw(st.sampled_from([0.05, 0.25]))), n_donors=donors)
    if draw(st.booleans()):
        law["params"]["eta"][0] = 1.0  # a mix of linear and saturating targets
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
    if draw(st.booleans()):
        unique = {s: float(tokens * rng.uniform(0.05, 3.0) / K) for s in law["sources"]}
    weights = {
        t: float(rng.choice([0.0, 0.5, 1.0, 3.0], p=[0.1, 0.2, 0.5, 0.2])) for t in law["targets"]
    }
    try:
        return _problem(law, tokens, bounds=bounds, unique_tokens=unique, weights=weights)
    except ClimbError:
        assume(False)
        raise


def _feasible(problem: AllocationProblem, p: np.ndarray) -> None:
    assert abs(p.sum() - 1.0) <= 1e-12
    assert (p >= problem.lo - 1e-12).all() and (p <= problem.hi + 1e-12).all()


@SETTINGS
@given(eta_problems())
def test_eta_allocation_is_feasible_optimal_and_beats_baselines(problem: AllocationProblem) -> None:
    res = solve_problem(problem)
    assert res.success, res.message
    # (every target at η = 1, e.g. one target and donors: the law is linear, the linear paths)
    want = ("two-step", "active-set") if problem.linear else ("active-set-eta",)
    assert res.path in want, res.message
    _feasible(problem, res.proportions)
    assert res.kkt_residual < 1e-7
    baselines, _ = run_baselines(problem, names=("uniform", "natural", "unimax", "isolated"))
    for name, b in baselines.items():
        assert res.objective <= b.objective + 1e-10 * abs(b.objective), name
    worst = solve_problem(problem, objective="worst")
    _feasible(problem, worst.proportions)
    wb, _ = run_baselines(problem, objective="worst", names=("uniform", "isolated"))
    for name, b in wb.items():
        assert worst.objective <= b.objective * (1 + 1e-7), name


def test_bootstrap_refits_and_reallocates_a_saturating_law() -> None:
    from climb.allocation import bootstrap_allocation
    from climb.data.runs import RunTable

    law = random_climb_json(3, 0, transfer=(0.1, 0.3), kappa=0.0)
    law["params"]["eta"] = [0.5, 0.6, 0.7]
    P, S, T = climb_params_of(law)
    rng = np.random.default_rng(0)
    p = np.vstack([np.eye(3), rng.dirichlet(np.ones(3), 27)])
    p = np.vstack([p, p])
    tokens = np.repeat([1e9, 4e9], 30)
    L = np.array([P.loss_from_ratio(P.effective_ratio(q, d)[0], d) for q, d in zip(p, tokens)])
    L = L * np.exp(rng.normal(0.0, 0.002, L.shape))
    runs = RunTable.from_arrays(run=[f"r{i}" for i in range(60)], tokens=tokens, p=p, sources=S,
                                loss=L, targets=T)  # fmt: skip
    truth = allocate(law, 1e10)
    assert truth.path == "active-set-eta"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        boot = bootstrap_allocation(runs, 1e10, n_boot=4, seed=0, level=0.9)
    assert boot.samples.shape == (4, 3)
    np.testing.assert_allclose(boot.samples.sum(axis=1), 1.0, atol=1e-12)
    assert (boot.low <= boot.high).all()
    assert np.abs(np.median(boot.samples, axis=0) - truth.proportions).max() < 0.1


def _interfering_law(neg: float) -> dict:
    """6 languages, transfer weights ~ U(neg, 0.3) (many strongly negative), every η = 0.4."""
    law = random_climb_json(6, 0, transfer=(neg, 0.3), kappa=0.0)
    law["params"]["eta"] = [0.4] * 6
    return law


def test_non_convex_law_whose_usual_starts_are_all_infeasible_is_solved() -> None:
    """Bug: every usual start (the η = 1 optimum, uniform, mid-bounds, random mixes) leaves some
    r_i ≤ 0, so the allocator raised "no allocation … positive effective ratio", although a
    mixture with min r = 0.0595 exists. It now starts from the max-min-r mixture."""
    from climb.allocation.saturating import linear_warm_start, max_min_ratio
    from climb.laws.climb import R_FLOOR

    law = _interfering_law(-0.5)
    problem = _problem(law)
    assert not problem.convex
    ratio = problem.ratio_map
    warm = linear_warm_start(problem)[0]
    for q in (warm, np.full(6, 1 / 6)):
        assert q is None or ratio(q).min() <= R_FLOOR  # the old starts: infeasible
    p_star, t = max_min_ratio(problem)
    assert abs(p_star.sum() - 1) < 1e-12 and (p_star >= 0).all()
    assert t > 0.05 and ratio(p_star).min() == pytest.approx(t, abs=1e-12)
    for method in ("auto", "convex"):
        res = allocate(law, 1e10, method=method)
        assert res.success and res.path.startswith("multistart"), res.message
        assert abs(res.proportions.sum() - 1) < 1e-12 and (res.proportions >= 0).all()
        assert (res.effective_ratio > R_FLOOR).all()
        assert res.objective <= problem.objective_sum(p_star)  # descended from the start
    worst = allocate(law, 1e10, objective="worst")
    assert (worst.effective_ratio > R_FLOOR).all()
    assert worst.objective <= problem.objective_worst(p_star)


def test_truly_infeasible_interference_says_how_far_off_it_is() -> None:
    problem = _problem(_interfering_law(-0.8))
    with pytest.raises(ClimbError, match=r"best mixture reaches min r = -0\.1\d+\); relax bounds"):
        solve_problem(problem)


def test_max_min_ratio_of_the_isolated_law_is_the_uniform_mix() -> None:
    """W = I, no bounds: max_p min_i p_i on the simplex is 1/S at the uniform mix (an LP)."""
    from climb.allocation.problem import with_identity_transfer
    from climb.allocation.saturating import max_min_ratio

    problem = with_identity_transfer(_problem(random_climb_json(5, 1)))
    p, t = max_min_ratio(problem)
    assert t == pytest.approx(0.2, abs=1e-12)
    np.testing.assert_allclose(p, 0.2, atol=1e-12)
