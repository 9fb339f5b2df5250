"""The Climb allocator: optimality against an independent convex solver, constraints, paths."""

from __future__ import annotations

import json
from pathlib import Path

import cvxpy as cp
import numpy as np
import pytest

from climb.allocation import Constraints, allocate, build_problem, climb_params_of
from climb.allocation.synthetic import random_climb_json
from climb.cli import main
from climb.laws.climb import ClimbParams


# ---------------------------------------------------------------------- independent reference
def reference_optimum(
    law: dict, tokens: float, lo: np.ndarray, hi: np.ndarray, weights: np.ndarray
) -> float:
    """min Σ_i ω_i L_i(p) written from the law JSON alone, solved by cvxpy (SCS→Clarabel)."""
    P = law["params"]
    sources, targets = law["sources"], law["targets"]
    E, B, beta, kappa = (np.asarray(P[k], dtype=float) for k in ("E", "B", "beta", "kappa"))
    W = np.asarray(P["W"], dtype=float) * (tokens / P["tokens_ref"]) ** (-kappa)[:, None]
    for i, t in enumerate(targets):
        W[i, sources.index(t)] = 1.0
    p = cp.Variable(len(sources))
    r = W @ p
    terms = [weights[i] * B[i] * tokens ** (-beta[i]) * cp.power(r[i], -beta[i], approx=False)
             for i in range(len(targets)) if weights[i] > 0]  # fmt: skip
    prob = cp.Problem(
        cp.Minimize(cp.sum(cp.hstack(terms))), [cp.sum(p) == 1, p >= lo, p <= hi, r >= 1e-9]
    )
    prob.solve(solver=cp.CLARABEL, tol_gap_abs=1e-11, tol_gap_rel=1e-11, tol_feas=1e-11)
    assert prob.status == "optimal"
    return float(weights @ E + prob.value)


def objective_from_json(law: dict, tokens: float, p: np.ndarray, weights: np.ndarray) -> float:
    P = law["params"]
    sources, targets = law["sources"], law["targets"]
    E, B, beta, kappa = (np.asarray(P[k], dtype=float) for k in ("E", "B", "beta", "kappa"))
    W = np.asarray(P["W"], dtype=float) * (tokens / P["tokens_ref"]) ** (-kappa)[:, None]
    for i, t in enumerate(targets):
        W[i, sources.index(t)] = 1.0
    r = W @ p
    return float(weights @ (E + B * (r * tokens) ** (-beta)))


def random_constraints(
    law: dict, rng: np.random.Generator, tokens: float
) -> tuple[dict, dict, float]:
    """Random bounds (some floors and ceilings) and unique tokens with caps that bind."""
    S = len(law["sources"])
    bounds: dict[str, tuple[float | None, float | None]] = {}
    for s in law["sources"]:
        u = rng.uniform()
        if u < 0.15:
            bounds[s] = (float(rng.uniform(0.0, 0.5 / S)), None)
        elif u < 0.3:
            bounds[s] = (None, float(rng.uniform(0.5 / S, 3.0 / S)))
    unique = {s: float(tokens * rng.uniform(0.2, 3.0) / S) for s in law["sources"]}
    return bounds, unique, 2.0


def write_inputs(tmp_path: Path, law: dict, bounds: dict, unique: dict) -> tuple[Path, Path, str]:
    law_path = tmp_path / "law.json"
    law_path.write_text(json.dumps(law))
    u_path = tmp_path / "unique.csv"
    u_path.write_text("source,tokens\n" + "".join(f"{s},{v!r}\n" for s, v in unique.items()))
    spec = ",".join(
        f"{s}={'' if a is None else a}:{'' if b is None else b}" for s, (a, b) in bounds.items()
    )
    return law_path, u_path, spec


# ---------------------------------------------------------------------- acceptance
@pytest.mark.parametrize(
    ("K", "seed", "donors"), [(4, 0, 0), (8, 1, 0), (16, 2, 2), (32, 3, 0), (64, 4, 4)]
)
def test_cli_reaches_convex_optimum_with_bounds_and_caps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], K: int, seed: int, donors: int
) -> None:
    rng = np.random.default_rng(100 + seed)
    law = random_climb_json(K, seed, transfer=(-0.05, 0.25), n_donors=donors)
    tokens = 1e10
    bounds, unique, e_max = random_constraints(law, rng, tokens)
    law_path, u_path, spec = write_inputs(tmp_path, law, bounds, unique)
    args = [str(law_path), "--tokens", "1e10", "--unique-tokens", str(u_path), "--max-epochs", str(e_max),
            "--baselines", "uniform", "--json"]  # fmt: skip
    if spec:
        args += ["--bounds", spec]
    assert main(["allocate", *args]) == 0
    out = json.loads(capsys.readouterr().out)
    p = np.array([out["proportions"][s] for s in law["sources"]])
    lo = np.array([(bounds.get(s, (None, None))[0] or 0.0) for s in law["sources"]])
    hi = np.array(
        [1.0 if bounds.get(s, (None, None))[1] is None else bounds[s][1] for s in law["sources"]]
    )
    cap = np.array([e_max * unique[s] / tokens for s in law["sources"]])
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert (p >= lo - 1e-12).all()
    assert (p <= np.minimum(hi, cap) + 1e-12).all()
    w = np.ones(len(law["targets"]))
    ref = reference_optimum(law, tokens, lo, np.minimum(hi, cap), w)
    ours = objective_from_json(law, tokens, p, w)
    assert ours == pytest.approx(out["objective"], rel=1e-12)
    assert abs(ours - ref) / abs(ref) <= 1e-6
    assert ours <= ref + 1e-9 * abs(ref)  # the reference is no better
    assert out["solver"]["path"] in ("two-step", "active-set")
    assert out["solver"]["kkt_residual"] < 1e-6
    if K >= 16:
        assert (p < 1e-9).sum() >= 1  # many sources end at 0: the constrained path is the norm


def test_interior_problem_is_solved_by_the_closed_form() -> None:
    law = random_climb_json(8, 7, transfer=(0.0, 0.02))
    res = allocate(law, 1e10)
    assert res.path == "two-step"
    assert res.kkt_residual < 1e-12
    ref = reference_optimum(law, 1e10, np.zeros(8), np.ones(8), np.ones(8))
    assert abs(res.objective - ref) / ref <= 1e-9
    # equal marginal benefits: Wᵀ g(r) = λ 1
    P, _, _ = climb_params_of(law)
    prob = build_problem(P, law["sources"], law["targets"], 1e10)
    G = prob.marginal_benefit(res.proportions)
    assert np.ptp(G) / G.mean() < 1e-10
    assert res.marginal_level == pytest.approx(G.mean(), rel=1e-10)


def test_identity_transfer_reduces_to_isolated_optimum() -> None:
    """W = I: g_i(p_i) = λ for all i, i.e. p_i = (λ / (β_i B_i D^-β_i))^(-1/(β_i+1)), Σ p = 1."""
    law = random_climb_json(6, 3, transfer=(0.0, 0.0), kappa=0.0)
    D = 3e9
    res = allocate(law, D)
    P = law["params"]
    gamma = np.array(P["beta"]) * np.array(P["B"]) * D ** (-np.array(P["beta"]))
    beta = np.array(P["beta"])
    lo_l, hi_l = -60.0, 60.0
    for _ in range(300):  # bisection on log λ, written independently of the library
        mid = 0.5 * (lo_l + hi_l)
        if ((np.exp(mid) / gamma) ** (-1 / (beta + 1))).sum() > 1:
            lo_l = mid
        else:
            hi_l = mid
    p_iso = (np.exp(lo_l) / gamma) ** (-1 / (beta + 1))
    np.testing.assert_allclose(res.proportions, p_iso, rtol=1e-9)
    assert res.path == "two-step"


def test_kappa_makes_the_allocation_depend_on_the_budget() -> None:
    law = random_climb_json(5, 11, transfer=(0.0, 0.2), kappa=0.3)
    a = allocate(law, 1e9).proportions
    b = allocate(law, 1e12).proportions
    assert np.abs(a - b).max() > 1e-3


def test_forced_paths_agree() -> None:
    law = random_climb_json(12, 5, transfer=(-0.05, 0.25), n_donors=2)
    auto = allocate(law, 1e10)
    convex = allocate(law, 1e10, method="convex")
    active = allocate(law, 1e10, method="active-set")
    assert convex.path == "convex" and active.path == "active-set"
    assert abs(auto.objective - convex.objective) / convex.objective < 1e-7
    assert auto.objective <= convex.objective + 1e-12
    np.testing.assert_allclose(active.proportions, auto.proportions, atol=1e-9)


def test_zero_weight_target_and_weights() -> None:
    law = random_climb_json(5, 2, transfer=(0.0, 0.1))
    base = allocate(law, 1e10)
    heavy = allocate(law, 1e10, constraints=Constraints(weights={"s000": 10.0}))
    assert heavy.proportions[0] > base.proportions[0]
    donor = allocate(law, 1e10, constraints=Constraints(weights={"s001": 0.0}))
    assert donor.proportions[1] < base.proportions[1]
    P, S, T = climb_params_of(law)
    prob = build_problem(P, S, T, 1e10, constraints=Constraints(weights={"s001": 0.0}))
    ref = reference_optimum(law, 1e10, np.zeros(5), np.ones(5), prob.weights)
    assert abs(donor.objective - ref) / ref < 1e-7


def test_model_size_term_enters_losses_not_proportions() -> None:
    law = random_climb_json(4, 9, transfer=(0.0, 0.1), model_size=True)
    a = allocate(law, 1e10, 1e8)
    b = allocate(law, 1e10, 1e9)
    np.testing.assert_allclose(a.proportions, b.proportions, atol=1e-12)
    assert (a.predicted_loss > b.predicted_loss).all()


def test_worst_objective_matches_an_epigraph_program() -> None:
    law = random_climb_json(6, 4, transfer=(-0.05, 0.25))
    D = 1e10
    res = allocate(law, D, constraints=Constraints(bounds={"s002": (None, 0.1)}), objective="worst")
    assert res.path == "bisection-lp" and res.success
    P = law["params"]
    E, B, beta = (np.array(P[k]) for k in ("E", "B", "beta"))
    P_, _S, _T = climb_params_of(law)
    W = P_.W_at(D)
    c = B * D ** (-beta)  # normalizer: excess at r = 1 (A = 0 here)
    p = cp.Variable(6)
    t = cp.Variable()
    r = W @ p
    cons = [cp.sum(p) == 1, p >= 0, p[2] <= 0.1, r >= 1e-9]
    cons += [
        B[i] * D ** (-beta[i]) * cp.power(r[i], -beta[i], approx=False) <= t * c[i]
        for i in range(6)
    ]
    cp.Problem(cp.Minimize(t), cons).solve(solver=cp.CLARABEL)
    assert res.objective == pytest.approx(float(np.asarray(t.value, dtype=float)), rel=1e-6)
    excess = (res.predicted_loss - E) / c
    assert excess.max() == pytest.approx(res.objective, rel=1e-12)
    assert res.proportions[2] <= 0.1 + 1e-12


def test_result_object_and_repr() -> None:
    law = random_climb_json(4, 0)
    res = allocate(law, 1e10)
    d = res.to_dict()
    assert set(d["proportions"]) == set(law["sources"])
    assert d["solver"]["status"] == 0 and res.success
    assert "AllocationResult(path=" in repr(res)
    np.testing.assert_allclose(
        res.effective_ratio, climb_params_of(law)[0].W_at(1e10) @ res.proportions
    )


def test_allocate_accepts_a_fitted_climb_law_object() -> None:
    from climb.laws.climb import ClimbLaw

    obj = random_climb_json(4, 1)
    law = ClimbLaw.from_json(obj)
    assert allocate(law, 1e10).objective == pytest.approx(allocate(obj, 1e10).objective, rel=1e-14)
    P, S, T = climb_params_of(obj)
    assert isinstance(P, ClimbParams)
    assert allocate((P, S, T), 1e10).objective == pytest.approx(
        allocate(obj, 1e10).objective, rel=1e-14
    )


# ---------------------------------------------------------------------- errors (one line, exit 2)
def _law_file(tmp_path: Path, K: int = 4) -> Path:
    path = tmp_path / "law.json"
    path.write_text(json.dumps(random_climb_json(K, 0)))
    return path


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("climb: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_infeasible_caps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    law = _law_file(tmp_path)
    u = tmp_path / "u.csv"
    u.write_text("source,tokens\ns000,1e8\ns001,1e8\ns002,1e8\ns003,1e8\n")
    assert (
        main(
            [
                "allocate",
                str(law),
                "--tokens",
                "1e10",
                "--unique-tokens",
                str(u),
                "--max-epochs",
                "4",
            ]
        )
        == 2
    )
    assert "infeasible" in _err(capsys)


def test_contradicting_bounds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    law = _law_file(tmp_path)
    assert main(["allocate", str(law), "--tokens", "1e10", "--bounds", "s000=0.5:0.2"]) == 2
    assert "s000" in _err(capsys)
    assert main(["allocate", str(law), "--tokens", "1e10", "--bounds", "s000=0.6:,s001=0.6:"]) == 2
    assert "lower bounds sum" in _err(capsys)
    assert main(["allocate", str(law), "--tokens", "1e10", "--bounds", "xx=0:1"]) == 2
    assert "unknown source 'xx'" in _err(capsys)
    assert main(["allocate", str(law), "--tokens", "1e10", "--bounds", "s000=0.2"]) == 2
    assert "LO:HI" in _err(capsys)


def test_lower_bound_above_cap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    law = _law_file(tmp_path)
    u = tmp_path / "u.csv"
    u.write_text("source,tokens\ns000,1e8\ns001,1e10\ns002,1e10\ns003,1e10\n")
    assert (
        main(
            [
                "allocate",
                str(law),
                "--tokens",
                "1e10",
                "--unique-tokens",
                str(u),
                "--bounds",
                "s000=0.3:",
            ]
        )
        == 2
    )
    assert "s000" in _err(capsys)


def test_unique_tokens_must_cover_the_law(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every law source needs a count (the error names the missing one); rows of other sources
    (a whole corpus' table) are not used, so they are not named."""
    law = _law_file(tmp_path)
    u = tmp_path / "u.csv"
    u.write_text("source,tokens\ns000,1e10\ns001,1e10\ns002,1e10\nzz,1e10\n")
    assert main(["allocate", str(law), "--tokens", "1e10", "--unique-tokens", str(u)]) == 2
    err = _err(capsys)
    assert "no count for law source(s) s003" in err and "zz" not in err
    u.write_text("source,tokens\ns000,1e10\ns001,1e10\ns002,1e10\ns003,1e10\nzz,1e10\n")
    assert main(["allocate", str(law), "--tokens", "1e10", "--unique-tokens", str(u)]) == 0
    capsys.readouterr()
    u.write_text("source,count\ns000,1\n")
    assert main(["allocate", str(law), "--tokens", "1e10", "--unique-tokens", str(u)]) == 2
    assert "column 'tokens'" in _err(capsys)
    u.write_text("source,tokens\ns000,abc\n")
    assert main(["allocate", str(law), "--tokens", "1e10", "--unique-tokens", str(u)]) == 2
    assert "row 2" in _err(capsys)


def test_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    law = _law_file(tmp_path)
    for args, needle in [
        (["--tokens", "-5"], "--tokens"),
        (["--tokens", "lots"], "--tokens"),
        (["--tokens", "1e10", "--weights", "s000=-1"], "weights: 's000' has weight -1.0"),
        (["--tokens", "1e10", "--weights", "s000=0,s001=0,s002=0,s003=0"], "weight 0"),
        (["--tokens", "1e10", "--max-epochs", "2"], "--unique-tokens"),
        (["--tokens", "1e10", "--format", "json"], "--export-out"),
        (["--tokens", "1e10", "--baselines", "magic"], "magic"),
        (["--tokens", "1e10", "--bootstrap", "5"], "--runs"),
    ]:
        assert main(["allocate", str(law), *args]) == 2, args
        assert needle in _err(capsys), args
    assert main(["allocate", str(tmp_path / "missing.json"), "--tokens", "1e10"]) == 2
    assert "no such law file" in _err(capsys)
    bad = tmp_path / "msl.json"
    bad.write_text(json.dumps({"law": "msl", "sources": ["a"], "params": {}}))
    assert main(["allocate", str(bad), "--tokens", "1e10"]) == 2
    assert "'climb' law" in _err(capsys)


def test_donor_weight_must_be_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "law.json"
    path.write_text(json.dumps(random_climb_json(4, 0, n_donors=1)))
    assert main(["allocate", str(path), "--tokens", "1e10", "--weights", "s003=1"]) == 2
    assert "pure donor" in _err(capsys)
    assert main(["allocate", str(path), "--tokens", "1e10", "--weights", "s003=0", "--json"]) == 0
    capsys.readouterr()


def test_forced_two_step_refuses_a_constrained_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    law = _law_file(tmp_path, 16)
    assert main(["allocate", str(law), "--tokens", "1e10", "--method", "two-step"]) == 2
    assert "closed form does not apply" in _err(capsys)


def test_weights_and_bounds_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    law = _law_file(tmp_path)
    w = tmp_path / "w.csv"
    w.write_text("source,weight\ns000,3\ns001,1\n")
    b = tmp_path / "b.yaml"
    b.write_text("s002: [0.3, 0.5]\n")
    assert (
        main(
            [
                "allocate",
                str(law),
                "--tokens",
                "1e10",
                "--weights",
                str(w),
                "--bounds",
                str(b),
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["constraints"]["weights"]["s000"] == 3.0
    assert 0.3 - 1e-12 <= out["proportions"]["s002"] <= 0.5 + 1e-12


def test_table_output_lists_every_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    law = _law_file(tmp_path, 5)
    u = tmp_path / "u.csv"
    u.write_text("source,tokens\n" + "".join(f"s{k:03d},{(k + 1) * 4e9}\n" for k in range(5)))
    assert main(["allocate", str(law), "--tokens", "1e10", "--unique-tokens", str(u)]) == 0
    out = capsys.readouterr().out
    for name in (
        "climb",
        "uniform",
        "natural",
        "temperature",
        "unimax",
        "isolated",
        "gap",
        "objective",
    ):
        assert name in out
    assert "baseline msl skipped" in out
    assert main(["allocate", str(law), "--tokens", "1e10"]) == 0
    out = capsys.readouterr().out
    assert "baseline natural skipped: needs unique tokens per source" in out


def test_auto_falls_back_to_the_convex_path(monkeypatch: pytest.MonkeyPatch) -> None:
    import climb.allocation.two_step as two_step

    law = random_climb_json(10, 8, transfer=(-0.05, 0.25))
    want = allocate(law, 1e10)
    assert want.path == "active-set"

    def not_settling(problem, p0, **_):  # type: ignore[no-untyped-def]
        return two_step.SolverOutput(p0, "active-set", 3, 1, "did not settle")

    monkeypatch.setattr(two_step, "active_set", not_settling)
    res = allocate(law, 1e10)
    assert res.path == "convex" and res.success
    assert "convex path" in res.message and "polished" in res.message
    assert abs(res.objective - want.objective) / want.objective < 1e-12


def test_no_positive_effective_ratio_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    law = {"law": "climb", "sources": ["a", "b"], "targets": ["a", "b"],
           "params": {"E": [2, 2], "B": [300, 300], "beta": [0.3, 0.3], "W": [[1, -2], [-2, 1]]}}  # fmt: skip
    path = tmp_path / "law.json"
    path.write_text(json.dumps(law))
    assert main(["allocate", str(path), "--tokens", "1e10"]) == 2
    assert "positive effective ratio" in _err(capsys)
