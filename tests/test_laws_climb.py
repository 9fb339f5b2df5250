"""The climb law family (climb, isolated, climb-msl) and the shared fitting machinery."""

from __future__ import annotations

import functools
import json
import warnings

import numpy as np
import pytest

from climb.data.runs import RunTable
from climb.errors import ClimbError, ClimbWarning
from climb.laws import get_law, law_from_json, load_law
from climb.laws.climb import (
    ClimbLaw,
    ClimbMSLLaw,
    ClimbParams,
    IsolatedLaw,
    TargetDesign,
    climb_target_model,
    msl_target_model,
    transfer,
)
from climb.laws.fitting import (
    fit_log_huber,
    fit_per_target,
    huber,
    huber_log_objective,
    jitter_starts,
)
from climb.laws.simulate import random_climb_law, simulate, simulate_runs

OFF6 = ~np.eye(6, dtype=bool)


# ---------------------------------------------------------------------- fitting.py
def test_huber_value_and_derivative() -> None:
    r = np.array([-0.5, -1e-3, 0.0, 5e-4, 2e-3])
    v, g = huber(r, 1e-3)
    np.testing.assert_allclose(v, [1e-3 * (0.5 - 5e-4), 5e-7, 0.0, 1.25e-7, 1e-3 * 1.5e-3])
    np.testing.assert_allclose(g, [-1e-3, -1e-3, 0.0, 5e-4, 1e-3])


def _toy_model(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tb = t ** (-x[2])
    return x[0] + x[1] * tb, np.column_stack([np.ones_like(t), tb, -x[1] * tb * np.log(t)])


def test_huber_log_objective_gradient_matches_finite_differences() -> None:
    t = np.linspace(0.1, 2.0, 40)
    obs = 2.0 + 3.0 * t**-0.4
    x = np.array([1.9, 2.5, 0.3])
    pred, jac = _toy_model(x, t)
    f, g = huber_log_objective(pred, jac, obs, delta=1e-2)
    eps = 1e-7
    fd = []
    for i in range(3):
        xp = x.copy()
        xp[i] += eps
        fp, _ = huber_log_objective(*_toy_model(xp, t), obs, delta=1e-2)
        fd.append((fp - f) / eps)
    np.testing.assert_allclose(g, fd, rtol=1e-4)


def test_fit_log_huber_recovers_a_power_law_despite_outliers() -> None:
    t = np.linspace(0.1, 2.0, 60)
    obs = 2.0 + 3.0 * t**-0.4
    obs[::10] *= 1.3  # 10 % gross outliers: the Huber loss ignores them
    lo, hi = np.array([0.0, 0.0, 0.01]), np.array([10.0, 10.0, 3.0])
    starts = jitter_starts(np.array([1.0, 1.0, 0.2]), lo, hi, 4, np.random.default_rng(0))
    model = functools.partial(_toy_model, t=t)
    res = fit_log_huber(model, obs, starts, lo, hi)
    np.testing.assert_allclose(res.x, [2.0, 3.0, 0.4], rtol=1e-2)
    assert res.n_starts == 4 and len(res.costs) == 4 and res.nfev > 0
    # plain least squares (δ huge) is pulled far off by the same outliers
    ls = fit_log_huber(model, obs, starts, lo, hi, delta=1e3)
    assert np.abs(ls.x / [2.0, 3.0, 0.4] - 1).max() > 5 * np.abs(res.x / [2.0, 3.0, 0.4] - 1).max()


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_fit_per_target_matches_serial(backend: str) -> None:
    serial = fit_per_target(abs, 5, n_jobs=1)
    assert fit_per_target(abs, 5, n_jobs=2, backend=backend) == serial  # type: ignore[arg-type]
    with pytest.raises(ClimbError, match="backend"):
        fit_per_target(abs, 3, n_jobs=2, backend="gpu")  # type: ignore[arg-type]


# ---------------------------------------------------------------------- analytic Jacobians
def _design(
    fit_kappa: bool, fit_size: bool, fit_eta: bool = False, fit_delta: bool = False
) -> TargetDesign:
    rng = np.random.default_rng(3)
    n, s = 40, 4
    p = rng.dirichlet(np.ones(s), n)
    p[:5, 2] = 0.0  # donors absent from some runs: φ_η(0) = 0, slope in η there too
    return TargetDesign(
        target="s1", own=0, p=p, d=rng.choice([0.5, 1.0, 2.0], n), nu=rng.choice([0.3, 3.0], n),
        y=np.full(n, 3.0), free=np.array([1, 2, 3]), fit_kappa=fit_kappa, fit_size=fit_size,
        own_seen=True, fit_eta=fit_eta, fit_delta=fit_delta,
    )  # fmt: skip


def _check_jacobian(model, x: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    _pred, jac = model(x)
    for i in range(x.size):
        h = 1e-6 * max(1.0, abs(x[i]))
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        fd = (model(xp)[0] - model(xm)[0]) / (2 * h)
        np.testing.assert_allclose(jac[:, i], fd, rtol=1e-5, atol=1e-8, err_msg=f"column {i}")


@pytest.mark.parametrize(
    ("kappa", "size", "eta", "delta"),
    [(False, False, False, False), (True, False, False, False), (True, True, False, False),
     (False, False, True, False), (True, True, True, False), (False, False, False, True),
     (True, False, False, True), (True, True, True, True)],
)  # fmt: skip
def test_climb_jacobian_is_exact(kappa: bool, size: bool, eta: bool, delta: bool) -> None:
    """Including a free budget exponent δ (``budget_exponent="free"``, last in ``x``)."""
    d = _design(kappa, size, eta, delta)
    x = ([1.5, 0.2, 0.35, 0.3, -0.05, 0.6] + [0.1] * kappa + [0.7, 0.3] * size + [0.55] * eta
         + [0.6] * delta)  # fmt: skip
    _check_jacobian(functools.partial(climb_target_model, design=d), np.array(x))


@pytest.mark.parametrize(
    ("tokens", "size", "eta"), [(False, False, False), (True, True, False), (True, True, True)]
)
def test_climb_msl_jacobian_is_exact(tokens: bool, size: bool, eta: bool) -> None:
    d = _design(tokens, size, eta)
    x = ([2.5, 0.15, 0.3, -0.05, 0.6] + [0.1] * tokens + [0.8, 0.3] * tokens + [0.7, 0.3] * size
         + [0.55] * eta)  # fmt: skip
    _check_jacobian(functools.partial(msl_target_model, design=d, fit_tokens=tokens), np.array(x))


def test_target_model_matches_the_law_json_formula() -> None:
    # the internal per-target model and ClimbParams.effective_ratio agree on r (η < 1)
    d = _design(False, False, True)
    x = np.array([1.5, 0.2, 0.35, 0.3, -0.05, 0.6, 0.55])
    pred, _ = climb_target_model(x, d)
    P = ClimbParams.isolated(["s1", "s2", "s3", "s4"], ["s1"])
    P.E[:] = 1.5
    P.beta[:] = 0.35
    P.B[:] = np.exp(0.2)
    P.W[0, 1:] = [0.3, -0.05, 0.6]
    P.eta = np.array([0.55])
    r = P.effective_ratio(d.p, 1.0)[:, 0]
    np.testing.assert_allclose(
        r, d.p[:, 0] + transfer(d.p[:, 1:], np.array(0.55)) @ [0.3, -0.05, 0.6]
    )
    np.testing.assert_allclose(pred, P.loss_from_ratio(r[:, None], d.d)[:, 0], rtol=1e-12)


# ---------------------------------------------------------------------- recovery
def test_climb_recovers_simulated_W_one_budget() -> None:
    truth, runs = simulate(6, 200, noise=0.01, seed=0)
    assert truth.params_.eta is None  # a linear truth
    law = ClimbLaw(seed=0).fit(runs)  # the default, saturating transfer
    assert np.abs(law.W_ - truth.W_)[OFF6].mean() <= 0.03
    assert (law.eta_ >= 0.95).all()  # η̂ ≈ 1: the linear truth is found
    assert (law.A_ == 0).all() and (law.kappa_ == 0).all()  # one size, one budget: not fitted
    assert law.tokens_ref_ == pytest.approx(1e9)
    # the law reproduces the noise-free losses far below the 1 % noise level
    clean = truth.predict_runs(runs)
    assert np.abs(law.predict_runs(runs) / clean - 1).mean() < 0.004


def test_climb_recovers_saturating_transfer() -> None:
    truth, runs = simulate(6, 200, noise=0.01, seed=0, eta=0.6)
    np.testing.assert_array_equal(truth.eta_, np.full(6, 0.6))
    law = ClimbLaw(seed=0).fit(runs)
    assert all(i["eta_fitted"] for i in law.diagnostics_.targets)
    assert np.abs(law.eta_ - 0.6).max() <= 0.05
    assert np.abs(law.W_ - truth.W_)[OFF6].mean() <= 0.03
    clean = truth.predict_runs(runs)
    err_sat = np.abs(law.predict_runs(runs) / clean - 1).mean()
    assert err_sat < 0.004
    # the linear law cannot represent this truth: it misses by more than the 1 % noise
    lin = ClimbLaw(seed=0, transfer="linear").fit(runs)
    assert lin.params_.eta is None and (lin.eta_ == 1).all()
    assert np.abs(lin.predict_runs(runs) / clean - 1).mean() > 3 * err_sat
    assert np.abs(lin.W_ - truth.W_)[OFF6].mean() > 0.05


def test_eta_fixed_to_one_when_not_identified() -> None:
    # pairwise 50/50 mixtures: every donor share is 0 or 0.5, so w φ_η(0.5) is one number
    truth = random_climb_law(5, seed=1, eta=0.6)
    pairs = [(i, j) for i in range(5) for j in range(i + 1, 5)]
    p = np.zeros((len(pairs), 5))
    for k, (i, j) in enumerate(pairs):
        p[k, [i, j]] = 0.5
    runs = RunTable.from_arrays(
        run=[f"r{k}" for k in range(len(pairs))], tokens=np.full(len(pairs), 1e9), p=p,
        sources=truth.sources_, loss=truth.predict(p, 1e9), targets=truth.targets_,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        law = ClimbLaw(seed=0).fit(runs)
    assert not any(i["eta_fitted"] for i in law.diagnostics_.targets)
    np.testing.assert_array_equal(law.eta_, np.ones(5))


def test_saturating_msl_fits_and_round_trips() -> None:
    _, runs = simulate(4, 150, tokens=[5e8, 2e9], noise=0.005, seed=8, eta=0.5)
    law = ClimbMSLLaw().fit(runs)
    lin = ClimbMSLLaw(transfer="linear").fit(runs)
    err = np.abs(law.predict_runs(runs) / runs.loss - 1).mean()
    assert err < np.abs(lin.predict_runs(runs) / runs.loss - 1).mean()
    assert (law.eta_ < 1).all() and "eta" not in lin.to_json()["params"]
    again = law_from_json(json.loads(json.dumps(law.to_json())))
    assert isinstance(again, ClimbMSLLaw)
    np.testing.assert_array_equal(again.eta_, law.eta_)
    np.testing.assert_allclose(again.predict_runs(runs), law.predict_runs(runs), rtol=1e-12)


def test_climb_recovers_kappa_and_size_term() -> None:
    sizes = [1e7, 4e7, 1.6e8]  # E + A N^-α needs ≥ 3 sizes to be identified
    truth, runs = simulate(4, 240, tokens=[3e8, 1e9, 3e9], params=sizes, noise=0.005, seed=1)
    assert truth.kappa_.any() and truth.A_.any()
    law = ClimbLaw(seed=0).fit(runs)
    off = ~np.eye(4, dtype=bool)
    assert np.abs(law.W_ - truth.W_)[off].mean() <= 0.03
    assert np.abs(law.kappa_ - truth.kappa_).max() <= 0.05
    assert np.abs(law.beta_ - truth.beta_).max() <= 0.05
    assert law.A_.all()
    test = simulate_runs(truth, 60, tokens=[1e10], params=[3e8], noise=0.0, seed=9)
    rel = np.abs(law.predict_runs(test) / test.loss - 1)
    assert rel.mean() < 0.005  # extrapolation to a bigger budget and model


def test_fit_is_deterministic_and_backend_independent() -> None:
    _, runs = simulate(4, 60, noise=0.02, seed=5)
    a = ClimbLaw(seed=3, n_starts=3).fit(runs).to_json()
    b = ClimbLaw(seed=3, n_starts=3, n_jobs=2, backend="thread").fit(runs).to_json()
    c = ClimbLaw(seed=3, n_starts=3, n_jobs=2, backend="process").fit(runs).to_json()
    assert a == b == c


def test_nan_losses_are_dropped_per_target() -> None:
    truth, runs = simulate(4, 120, noise=0.005, seed=2)
    loss = runs.loss.copy()
    loss[:50, 1] = np.nan
    holey = RunTable.from_arrays(
        run=runs.run, tokens=runs.tokens, p=runs.p, sources=runs.sources, loss=loss,
        targets=runs.targets,
    )  # fmt: skip
    law = ClimbLaw().fit(holey)
    assert law.diagnostics_.targets[1]["runs"] == 70 and law.diagnostics_.targets[0]["runs"] == 120
    off = ~np.eye(4, dtype=bool)
    assert np.abs(law.W_ - truth.W_)[off].mean() <= 0.03


def test_unvaried_source_warns_and_gets_zero_weight() -> None:
    _, runs = simulate(4, 80, noise=0.01, seed=4)
    p = runs.p.copy()
    p[:, 3] = 0.0
    p /= p.sum(axis=1, keepdims=True)
    runs2 = RunTable.from_arrays(
        run=runs.run, tokens=runs.tokens, p=p, sources=runs.sources, loss=runs.loss[:, :3],
        targets=runs.targets[:3],
    )  # fmt: skip
    with pytest.warns(ClimbWarning, match="source 's4' never varies"):
        law = ClimbLaw().fit(runs2)
    assert (law.W_[:, 3] == 0).all()


def test_too_few_runs_warns() -> None:
    _, runs = simulate(6, 6, noise=0.01, seed=4)
    with pytest.warns(ClimbWarning, match="not identified"):
        ClimbLaw(n_starts=1).fit(runs)


def test_isolated_law_has_identity_W() -> None:
    _truth, runs = simulate(3, 60, noise=0.0, seed=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        law = IsolatedLaw().fit(runs)
    np.testing.assert_array_equal(law.W_, np.eye(3))
    assert law.params_.eta is None and "eta" not in law.to_json()["params"]  # W = I: η irrelevant
    # interactions matter in the simulated data: the climb law beats the isolated one
    climb = ClimbLaw().fit(runs)
    err_iso = np.abs(np.log(law.predict_runs(runs) / runs.loss)).mean()
    err_climb = np.abs(np.log(climb.predict_runs(runs) / runs.loss)).mean()
    assert err_climb < 0.1 * err_iso


def test_climb_msl_fits_simulated_data() -> None:
    _, runs = simulate(4, 150, tokens=[5e8, 2e9], noise=0.005, seed=8)
    law = ClimbMSLLaw().fit(runs)
    err = np.abs(law.predict_runs(runs) / runs.loss - 1).mean()
    assert err < 0.02
    assert (law.gamma_ > 0).all() and (law.B_ > 0).any()
    again = law_from_json(json.loads(json.dumps(law.to_json())))
    np.testing.assert_allclose(again.predict_runs(runs), law.predict_runs(runs), rtol=1e-12)


def test_bad_hyper_parameters() -> None:
    _, runs = simulate(3, 20, seed=0)
    with pytest.raises(ClimbError, match="n_starts"):
        ClimbLaw(n_starts=0).fit(runs)
    with pytest.raises(ClimbError, match="w_bounds"):
        ClimbLaw(w_bounds=(0.5, 2.0)).fit(runs)
    with pytest.raises(ClimbError, match="fit_kappa=True needs runs at ≥ 2 token budgets"):
        ClimbLaw(fit_kappa=True).fit(runs)
    with pytest.raises(
        ClimbError, match="transfer must be 'saturating', 'linear' or 'tokens', got 'log'"
    ):
        ClimbLaw(transfer="log").fit(runs)  # type: ignore[arg-type]
    with pytest.raises(ClimbError, match="eta must be in"):
        simulate(3, 20, eta=1.5)


# ---------------------------------------------------------------------- JSON
def test_json_round_trip_and_registry(tmp_path) -> None:  # type: ignore[no-untyped-def]
    _truth, runs = simulate(3, 40, tokens=[1e8, 1e9], seed=3)
    law = get_law("climb", seed=1).fit(runs)
    path = law.save(tmp_path / "law.json")
    again = load_law(path)
    assert isinstance(again, ClimbLaw)
    np.testing.assert_allclose(again.predict_runs(runs), law.predict_runs(runs), rtol=1e-12)
    obj = json.loads(path.read_text())
    keys = {"E", "A", "alpha", "B", "beta", "W", "kappa", "tokens_ref", "tokens_range"}
    assert set(obj["params"]) == keys | {"eta", "ratio_floor"}  # the default law stores η, ρ
    assert np.asarray(obj["params"]["W"]).shape == (3, 3)
    assert isinstance(again, ClimbLaw) and again.transfer == "saturating"
    np.testing.assert_array_equal(again.eta_, law.eta_)  # type: ignore[attr-defined]
    # the linear law without the own-share floor writes exactly the format (no "eta",
    # no "ratio_floor") and reads back as linear
    lin = get_law("climb", seed=1, transfer="linear", ratio_floor=0.0).fit(runs)
    lpath = lin.save(tmp_path / "linear.json")
    assert set(json.loads(lpath.read_text())["params"]) == keys
    lin2 = load_law(lpath)
    assert lin2.params_.eta is None and lin2.transfer == "linear"  # type: ignore[attr-defined]
    np.testing.assert_allclose(lin2.predict_runs(runs), lin.predict_runs(runs), rtol=1e-12)


def test_effective_ratio_and_prediction_honour_eta() -> None:
    obj = {
        "law": "climb",
        "sources": ["en", "de"],
        "params": {"E": [1.5, 1.6], "B": [400.0, 500.0], "beta": [0.3, 0.3],
                   "W": [[1.0, 0.2], [0.5, 1.0]], "tokens_ref": 1e9, "eta": [0.5, 1.0]},
    }  # fmt: skip
    law = law_from_json(obj)
    p = np.array([[0.7, 0.3], [0.0, 1.0]])
    eps = 1e-6
    r_en = p[:, 0] + 0.2 * ((p[:, 1] + eps) ** 0.5 - eps**0.5)
    r_de = p[:, 1] + 0.5 * p[:, 0]
    r = np.column_stack([r_en, r_de])
    np.testing.assert_allclose(law.effective_ratio(p, 1e9), r, rtol=1e-12)  # type: ignore[attr-defined]
    np.testing.assert_allclose(law.predict(p, 1e9), [1.5, 1.6] + np.array([400.0, 500.0])
                               * (r * 1e9) ** -0.3, rtol=1e-12)  # fmt: skip


def test_hand_written_json_law() -> None:
    obj = {
        "law": "climb",
        "sources": ["en", "de"],  # targets default to the sources
        "params": {"E": [1.5, 1.6], "B": [400.0, 500.0], "beta": [0.3, 0.3],
                   "W": [[1.0, 0.2], [0.5, 1.0]], "tokens_ref": 1e9},
    }  # fmt: skip
    law = law_from_json(obj)
    pred = law.predict([0.5, 0.5], 1e9)
    r = np.array([0.5 + 0.2 * 0.5, 0.5 * 0.5 + 0.5])
    np.testing.assert_allclose(
        pred, [1.5 + 400 * (r[0] * 1e9) ** -0.3, 1.6 + 500 * (r[1] * 1e9) ** -0.3]
    )
    iso = law_from_json({"law": "isolated", "sources": ["en", "de"], "params": {
        "E": [1.5, 1.6], "B": [400.0, 500.0], "beta": [0.3, 0.3]}})  # fmt: skip
    assert isinstance(iso, IsolatedLaw)
    np.testing.assert_array_equal(iso.W_, np.eye(2))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"W": [[1.0, 0.2]]}, r"'W' has shape \[1, 2\], expected \[2, 2\]"),
        ({"E": [1.5]}, r"'E' has shape \[1\], expected \[2\]"),
        ({"W": [[0.9, 0.2], [0.5, 1.0]]}, "must be 1 at each target's own source"),
        ({"beta": [0.3, -1.0]}, "'beta' > 0"),
        ({"E": [1.5, "x"]}, "not numeric"),
        ({"eta": [0.5, 0.0]}, r"'eta' \(transfer saturation\) must be in \(0, 1\]"),
        ({"eta": [1.2, 0.5]}, r"'eta' \(transfer saturation\) must be in \(0, 1\]"),
        ({"eta": [0.5]}, r"'eta' has shape \[1\], expected \[2\]"),
    ],
)
def test_bad_json_law_shapes(change: dict, message: str) -> None:
    params = {"E": [1.5, 1.6], "B": [1.0, 1.0], "beta": [0.3, 0.3], "W": [[1.0, 0.2], [0.5, 1.0]]}
    params.update(change)
    with pytest.raises(ClimbError, match=message):
        law_from_json({"law": "climb", "sources": ["en", "de"], "params": params})


def test_isolated_json_rejects_interactions() -> None:
    with pytest.raises(ClimbError, match="identity"):
        law_from_json({"law": "isolated", "sources": ["a", "b"], "params": {
            "E": [1, 1], "B": [1, 1], "beta": [0.3, 0.3], "W": [[1, 0.3], [0, 1]]}})  # fmt: skip


def test_random_law_has_positive_and_negative_transfer() -> None:
    law = random_climb_law(8, seed=0)
    off = law.W_[~np.eye(8, dtype=bool)]
    assert (off > 0).sum() > 10 and (off < 0).sum() > 3


def test_kappa_stays_in_its_box_where_transfer_is_absent() -> None:
    """With no transfer in the truth, κ is not identified; the fit keeps it within kappa_bound
    (default 0.5), so W(D*) cannot blow noise-level weights up at 10× the proxies' budget."""
    from climb.laws.simulate import random_climb_law, simulate_runs

    truth = random_climb_law(4, tokens=(1e8, 3e8), seed=3)
    truth.params_.W[:] = np.eye(4)
    runs = simulate_runs(truth, 40, tokens=(1e8, 3e8), noise=0.01, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        law = get_law("climb").fit(runs)
        wide = get_law("climb", kappa_bound=2.0).fit(runs)
    assert np.abs(law.kappa_).max() <= 0.5 + 1e-12
    assert 0.5 < np.abs(wide.kappa_).max() <= 2.0 + 1e-12  # unidentified: the box decides
    with pytest.raises(ClimbError, match="kappa_bound must be a number ≥ 0"):
        get_law("climb", kappa_bound=-1).fit(runs)
