"""Baseline laws: msl (He et al. 2024), dml (Ye et al. 2024), regression (RegMix)."""

from __future__ import annotations

import copy
import json
import warnings
from typing import Any

import numpy as np
import pytest
from scipy.stats import spearmanr

from climb.data.runs import RunTable
from climb.errors import ClimbError, ClimbWarning
from climb.laws import get_law, law_from_json, load_law
from climb.laws.dml import DataMixingLaw
from climb.laws.msl import MSLLaw
from climb.laws.regression import PACKED_PREFIX, RegressionLaw, unpack_model

SOURCES = ["en", "de", "fr", "zh"]


def _mixtures(
    n: int, k: int, rng: np.random.Generator, zeros: bool = False, conc: float = 0.8
) -> np.ndarray:
    p = rng.dirichlet(np.full(k, conc), size=n)
    if zeros:  # some runs leave a source out entirely
        drop = rng.random((n, k)) < 0.2
        drop[np.arange(n), rng.integers(0, k, n)] = False
        p = np.where(drop, 0.0, p)
        p /= p.sum(axis=1, keepdims=True)
    return p


def _table(p: np.ndarray, loss: np.ndarray, tokens: Any, params: Any = None) -> RunTable:
    n = p.shape[0]
    return RunTable.from_arrays(
        run=[f"r{i}" for i in range(n)], tokens=tokens, params=params, p=p,
        sources=SOURCES[: p.shape[1]], loss=loss, targets=SOURCES[: loss.shape[1]],
    )  # fmt: skip


def _roundtrip_equal(
    law: Any, tmp_path: Any, p: np.ndarray, tokens: Any, params: Any = None
) -> None:
    path = law.save(tmp_path / f"{law.name}.json")
    back = load_law(path)
    assert type(back) is type(law)
    assert back.sources_ == law.sources_ and back.targets_ == law.targets_
    np.testing.assert_array_equal(back.predict(p, tokens, params), law.predict(p, tokens, params))
    # and the JSON object itself survives a second trip unchanged
    assert json.loads(json.dumps(back.to_json())) == json.loads(json.dumps(law.to_json()))


# ---------------------------------------------------------------------- msl
MSL_TRUE = {
    "E": np.array([1.6, 1.9, 1.8]),
    "A": np.array([0.9, 0.6, 0.7]),
    "alpha": np.array([0.35, 0.25, 0.30]),
    "B": np.array([1.1, 1.4, 0.8]),
    "beta": np.array([0.30, 0.22, 0.40]),
    "gamma": np.array([0.05, 0.12, 0.08]),
}


def _msl_data(rng: np.random.Generator, noise: float = 0.0) -> tuple[RunTable, np.ndarray]:
    """Runs drawn from the MSL form at 3 sizes × 4 budgets (3+ of each make E identifiable)."""
    sizes, budgets = np.array([1e7, 4e7, 1.6e8]), np.array([1e9, 3e9, 9e9, 2.7e10])
    n_ref, d_ref = np.exp(np.log(sizes).mean()), np.exp(np.log(budgets).mean())
    grid = [(n_, d_) for n_ in sizes for d_ in budgets]
    reps = 25
    p = _mixtures(len(grid) * reps, 4, rng, conc=3.0)  # no share below the floor
    n = np.repeat([g[0] for g in grid], reps)
    d = np.repeat([g[1] for g in grid], reps)
    t = MSL_TRUE
    base = (
        t["E"]
        + t["A"] * (n[:, None] / n_ref) ** -t["alpha"]
        + t["B"] * (d[:, None] / d_ref) ** -t["beta"]
    )
    loss = base * p[:, :3] ** -t["gamma"] * np.exp(noise * rng.normal(size=(len(n), 3)))
    return _table(p, loss, d, n), p


def test_msl_recovers_its_own_parameters() -> None:
    runs, _ = _msl_data(np.random.default_rng(0))
    law = MSLLaw(seed=0).fit(runs)
    for key, attr in [("E", "E_"), ("A", "A_"), ("alpha", "alpha_"), ("B", "B_"),
                      ("beta", "beta_"), ("gamma", "gamma_")]:  # fmt: skip
        np.testing.assert_allclose(getattr(law, attr), MSL_TRUE[key], rtol=2e-3, atol=2e-4)
    pred = law.predict_runs(runs)
    np.testing.assert_allclose(pred, runs.loss, rtol=1e-5)
    assert all(r["success"] for r in law.diagnostics_.targets)


def test_msl_single_scale_collapses_to_a_constant_and_recovers_gamma() -> None:
    rng = np.random.default_rng(1)
    p = _mixtures(200, 4, rng, conc=3.0)
    gamma = np.array([0.1, 0.2, 0.05, 0.15])
    c = np.array([3.0, 2.5, 2.8, 3.3])
    loss = c * p**-gamma * np.exp(0.002 * rng.normal(size=p.shape))
    law = MSLLaw().fit(_table(p, loss, 1e9, 1e6))
    np.testing.assert_array_equal(law.A_, 0.0)
    np.testing.assert_array_equal(law.B_, 0.0)
    np.testing.assert_allclose(law.gamma_, gamma, atol=3e-3)
    np.testing.assert_allclose(law.E_, c, rtol=3e-3)
    # tokens/params do not change the prediction of a collapsed law
    np.testing.assert_array_equal(law.predict(p[:5], 1e9, 1e6), law.predict(p[:5], 5e10, 1e9))


def test_msl_families_use_the_family_share() -> None:
    rng = np.random.default_rng(2)
    p = _mixtures(300, 4, rng, conc=3.0)
    fam = {"en": "germanic", "de": "germanic", "fr": "romance"}  # zh is its own family
    share = np.column_stack([p[:, 0] + p[:, 1], p[:, 0] + p[:, 1], p[:, 2], p[:, 3]])
    gamma = np.array([0.2, 0.1, 0.15, 0.05])
    loss = 3.0 * share**-gamma
    law = MSLLaw(families=fam).fit(_table(p, loss, 1e9))
    np.testing.assert_allclose(law.gamma_, gamma, atol=1e-4)
    np.testing.assert_allclose(law.share(p), np.maximum(share, law.p_floor))
    # without families the same data is fitted worse (the family law is the true one)
    plain = MSLLaw().fit(_table(p, loss, 1e9))
    err_fam = np.abs(law.predict(p, 1e9) - loss).mean()
    err_plain = np.abs(plain.predict(p, 1e9) - loss).mean()
    assert err_fam < 1e-4 < err_plain


def test_msl_floors_zero_shares_and_warns() -> None:
    rng = np.random.default_rng(3)
    p = _mixtures(200, 4, rng, zeros=True)
    assert (p == 0).any()
    loss = 3.0 * np.maximum(p, 1e-3) ** -0.1
    with pytest.warns(ClimbWarning, match=r"p_floor=0\.001.*en \(\d+ runs\)"):
        law = MSLLaw().fit(_table(p, loss, 1e9))
    pred = law.predict(np.eye(4), 1e9)
    assert np.isfinite(pred).all()
    np.testing.assert_allclose(law.gamma_, 0.1, atol=1e-4)


def test_msl_roundtrip_and_determinism(tmp_path: Any) -> None:
    runs, p = _msl_data(np.random.default_rng(4), noise=0.01)
    a = MSLLaw(seed=7).fit(runs)
    b = MSLLaw(seed=7).fit(runs)
    assert a.to_json() == b.to_json()
    _roundtrip_equal(a, tmp_path, p, runs.tokens, runs.params)
    with pytest.raises(ClimbError, match="give params"):
        a.predict(p, runs.tokens)  # it models size: N is needed


def test_msl_nan_losses_are_dropped_per_target() -> None:
    runs, _ = _msl_data(np.random.default_rng(5), noise=0.01)
    loss = runs.loss.copy()
    loss[::3, 1] = np.nan
    holes = RunTable.from_arrays(run=runs.run, tokens=runs.tokens, params=runs.params, p=runs.p,
                                 sources=runs.sources, loss=loss, targets=runs.targets)  # fmt: skip
    law = MSLLaw().fit(holes)
    only = MSLLaw().fit(runs.subset(np.isfinite(loss[:, 1])).select_targets(["de"]))
    assert law.gamma_[1] == pytest.approx(only.gamma_[0], rel=1e-6)
    assert np.isfinite(law.predict_runs(runs)).all()


# ---------------------------------------------------------------------- dml
def _dml_truth(k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = rng.uniform(1.5, 2.5, k)
    kk = rng.uniform(0.5, 1.5, k)
    t = rng.normal(0.0, 1.0, (k, k))
    t[np.arange(k), np.arange(k)] = -3.0  # own data lowers the loss
    t -= t.mean(axis=1, keepdims=True)  # the law's normalization: Σ_j t_ij = 0
    return c, kk, t


def test_dml_recovers_its_own_parameters() -> None:
    rng = np.random.default_rng(10)
    c, kk, t = _dml_truth(4, rng)
    p = _mixtures(300, 4, rng)
    loss = c + kk * np.exp(p @ t.T)
    law = DataMixingLaw(seed=0).fit(_table(p, loss, 1e9))
    np.testing.assert_allclose(law.c_, c, rtol=1e-3)
    np.testing.assert_allclose(law.k_, kk, rtol=5e-3)
    np.testing.assert_allclose(law.t_, t, atol=5e-3)
    np.testing.assert_allclose(law.t_.sum(axis=1), 0.0, atol=1e-9)
    p_new = _mixtures(50, 4, rng)
    np.testing.assert_allclose(law.predict(p_new, 1e9), c + kk * np.exp(p_new @ t.T), rtol=1e-4)


def test_dml_noisy_fit_ranks_held_out_mixtures() -> None:
    rng = np.random.default_rng(11)
    c, kk, t = _dml_truth(4, rng)
    p = _mixtures(400, 4, rng)
    noisy = (c + kk * np.exp(p @ t.T)) * np.exp(0.01 * rng.normal(size=(400, 4)))
    law = DataMixingLaw().fit(_table(p[:300], noisy[:300], 1e9))
    true_test = c + kk * np.exp(p[300:] @ t.T)
    pred = law.predict(p[300:], 1e9)
    for i in range(4):
        assert spearmanr(pred[:, i], true_test[:, i]).statistic > 0.99
    np.testing.assert_allclose(pred, true_test, rtol=0.01)


def test_dml_ignores_scale_and_warns_about_it(tmp_path: Any) -> None:
    rng = np.random.default_rng(12)
    c, kk, t = _dml_truth(3, rng)
    p = _mixtures(120, 3, rng)
    loss = c + kk * np.exp(p @ t.T)
    d = np.where(np.arange(120) % 2, 1e9, 2e9)
    with pytest.warns(ClimbWarning, match="2 token budgets.*ignores tokens"):
        law = DataMixingLaw().fit(_table(p, loss, d))
    np.testing.assert_array_equal(law.predict(p, 1e9), law.predict(p, 1e12, 1e9))
    a = DataMixingLaw(seed=3).fit(_table(p, loss, 1e9))
    b = DataMixingLaw(seed=3).fit(_table(p, loss, 1e9))
    assert a.to_json() == b.to_json()
    _roundtrip_equal(a, tmp_path, p, 1e9)


# ---------------------------------------------------------------------- regression
def _smooth_runs(
    n: int, rng: np.random.Generator, tokens: Any = 1e9
) -> tuple[RunTable, np.ndarray]:
    p = _mixtures(n, 4, rng)
    c, kk, t = _dml_truth(4, np.random.default_rng(99))
    clean = c + kk * np.exp(p @ t.T)
    noisy = clean * np.exp(0.002 * rng.normal(size=clean.shape))
    return _table(p, noisy, tokens), clean


def test_regression_fits_a_smooth_mixture_response() -> None:
    rng = np.random.default_rng(20)
    runs, clean = _smooth_runs(500, rng)
    law = RegressionLaw(n_estimators=300, learning_rate=0.05).fit(runs.subset(np.arange(400)))
    pred = law.predict(runs.p[400:], 1e9)
    for i in range(4):
        assert spearmanr(pred[:, i], clean[400:, i]).statistic > 0.95
    assert law.features_ == [f"p.{s}" for s in SOURCES]
    assert law.best_iterations_ == [300] * 4


def test_regression_min_child_samples_auto_lets_small_tables_split() -> None:
    """``"auto"``: ``n // 8`` runs per leaf within [3, 20]. On 30 runs LightGBM's 20 leaves the
    trees unable to split (a constant prediction); "auto" (3) follows the mixture response."""
    law = RegressionLaw()
    assert [law.min_child_samples_for(n) for n in (10, 30, 100, 160, 512)] == [3, 3, 12, 20, 20]
    assert RegressionLaw(min_child_samples=7).min_child_samples_for(1000) == 7
    rng = np.random.default_rng(23)
    runs, clean = _smooth_runs(60, rng)
    train, test = runs.subset(np.arange(30)), np.arange(30, 60)
    fixed = (
        RegressionLaw(n_estimators=200, min_child_samples=20).fit(train).predict(runs.p[test], 1e9)
    )
    auto = RegressionLaw(n_estimators=200).fit(train).predict(runs.p[test], 1e9)
    assert np.ptp(fixed, axis=0).max() < 1e-9  # no split: every mixture gets the mean
    for i in range(4):
        assert spearmanr(auto[:, i], clean[test, i]).statistic > 0.8
    with pytest.raises(
        ClimbError, match="option 'min_child_samples' is 'x'; give an integer ≥ 1 or 'auto'"
    ):
        RegressionLaw(min_child_samples="x").fit(train)  # type: ignore[arg-type]


def test_regression_is_deterministic_and_roundtrips(tmp_path: Any) -> None:
    runs, _ = _smooth_runs(200, np.random.default_rng(21))
    a = RegressionLaw(n_estimators=100, seed=5).fit(runs)
    b = RegressionLaw(n_estimators=100, seed=5, n_jobs=2).fit(runs)
    assert a.models_ == b.models_
    c = RegressionLaw(n_estimators=100, seed=5, early_stopping_rounds=3).fit(runs)
    d = RegressionLaw(n_estimators=100, seed=5, early_stopping_rounds=3).fit(runs)
    assert c.models_ == d.models_ and c.best_iterations_ == d.best_iterations_
    assert all(1 <= it <= 100 for it in c.best_iterations_)
    _roundtrip_equal(a, tmp_path, runs.p, 1e9)
    obj = a.to_json()
    packed = obj["params"]["models"][0]
    assert isinstance(packed, str) and packed.startswith(PACKED_PREFIX)
    assert "tree" in unpack_model(packed)


def test_regression_uses_log_tokens_when_budgets_vary(tmp_path: Any) -> None:
    rng = np.random.default_rng(22)
    d = np.where(np.arange(300) % 2, 1e9, 1e10)
    runs, _ = _smooth_runs(300, rng, tokens=d)
    loss = runs.loss - 0.3 * (d == 1e10)[:, None]  # a bigger budget lowers every loss
    runs = _table(runs.p, loss, d)
    law = RegressionLaw(n_estimators=200, learning_rate=0.05).fit(runs)
    assert law.features_[-1] == "log_tokens"
    gap = law.predict(runs.p[:20], 1e9) - law.predict(runs.p[:20], 1e10)
    assert gap.mean() == pytest.approx(0.3, abs=0.05)
    _roundtrip_equal(law, tmp_path, runs.p[:20], d[:20])


# ---------------------------------------------------------------------- JSON validation
@pytest.fixture(scope="module")
def fitted() -> dict[str, Any]:
    rng = np.random.default_rng(30)
    runs, _ = _smooth_runs(80, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        return {
            "msl": MSLLaw().fit(runs).to_json(),
            "dml": DataMixingLaw().fit(runs).to_json(),
            "regression": RegressionLaw(n_estimators=20).fit(runs).to_json(),
        }


@pytest.mark.parametrize(
    ("law", "key", "value", "message"),
    [
        ("msl", "gamma", [0.1, 0.2], r"parameter 'gamma' has shape \[2\], expected \[4\]"),
        ("msl", "E", "abc", "parameter 'E' is not numeric"),
        ("msl", "B", [-1.0, 0, 0, 0], "'B' must be ≥ 0"),
        ("msl", "p_floor", 0, "'p_floor' must be a positive number"),
        ("msl", "families", {"xx": "a"}, "source 'xx' is not a mixture source"),
        ("msl", "beta", None, "missing parameter 'beta'"),
        ("dml", "t", [[0.0] * 4] * 3, r"parameter 't' has shape \[3, 4\], expected \[4, 4\]"),
        ("dml", "c", [1.0, float("nan"), 1.0, 1.0], "parameter 'c' has non-finite values"),
        ("regression", "models", ["not a model"] * 4, "not a valid LightGBM model"),
        ("regression", "models", [], r"'models' has 0 entries, expected 4"),
        ("regression", "features", ["p.en"], "'features' must list 'p.<source>'"),
        ("regression", "hyper", {"n_estimators": 0}, "'hyper': .*option 'n_estimators'"),
        ("regression", "hyper", {"bogus": 1}, "'hyper' must be an object"),
    ],
)
def test_bad_law_json_is_one_line_error(
    fitted: dict[str, Any], law: str, key: str, value: Any, message: str
) -> None:
    obj = copy.deepcopy(fitted[law])
    if value is None:
        del obj["params"][key]
    else:
        obj["params"][key] = value
    with pytest.raises(ClimbError, match=message) as info:
        law_from_json(obj)
    assert "\n" not in str(info.value)


def test_bad_hyper_parameters_are_reported() -> None:
    runs, _ = _smooth_runs(40, np.random.default_rng(31))
    with pytest.raises(ClimbError, match="option 'p_floor'"):
        MSLLaw(p_floor=0.0).fit(runs)
    with pytest.raises(ClimbError, match="'families': source 'xx'"):
        MSLLaw(families={"xx": "a"}).fit(runs)
    with pytest.raises(ClimbError, match="option 'n_starts'"):
        DataMixingLaw(n_starts=0).fit(runs)
    with pytest.raises(ClimbError, match="option 'learning_rate'"):
        RegressionLaw(learning_rate=-1).fit(runs)
    with pytest.raises(ClimbError, match="early_stopping_rounds=None"):
        RegressionLaw(early_stopping_rounds=3).fit(runs.subset(np.arange(2)))


def test_registry_names() -> None:
    assert isinstance(get_law("msl"), MSLLaw)
    assert isinstance(get_law("dml", seed=1), DataMixingLaw)
    assert isinstance(get_law("regression", seed=1), RegressionLaw)


# ---------------------------------------------------------------------- RegMix quality
@pytest.mark.slow
def test_regmix_spearman_of_each_baseline(regmix_train: RunTable) -> None:
    """Held-out Spearman ρ on pile_cc, RegMix 1M test runs (measured values in docs/baselines.md)."""
    from climb.data.runs import read_regmix

    test = read_regmix("test", "1m")
    floors = {"msl": 0.80, "dml": 0.94, "regression": 0.985}
    for name, floor in floors.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ClimbWarning)
            law = get_law(name, seed=0).fit(regmix_train)
        k = law.targets_.index("pile_cc")
        rho = spearmanr(law.predict_runs(test)[:, k], law.observed(test)[:, k]).statistic
        assert rho > floor, (name, rho)


# ---------------------------------------------------------------------- CLI
@pytest.mark.parametrize("name", ["msl", "dml", "regression"])
def test_cli_fits_each_baseline(name: str, tmp_path: Any, capsys: Any) -> None:
    from climb.cli import main

    runs, _ = _smooth_runs(60, np.random.default_rng(40))
    runs.write(tmp_path / "runs.csv")
    out = tmp_path / f"{name}.json"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        code = main(["fit", str(tmp_path / "runs.csv"), "--law", name, "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert f"fitted {name} law on 60 runs" in capsys.readouterr().out
    law = load_law(out)
    assert law.name == name and law.targets_ == SOURCES
    assert np.isfinite(law.predict(runs.p, 1e9)).all()


def test_cli_reports_a_bad_baseline_json_in_one_line(
    fitted: dict[str, Any], tmp_path: Any, capsys: Any
) -> None:
    from climb.cli import main

    runs, _ = _smooth_runs(20, np.random.default_rng(41))
    runs.write(tmp_path / "runs.csv")
    obj = copy.deepcopy(fitted["dml"])
    obj["params"]["k"] = [1.0, 2.0]
    (tmp_path / "bad.json").write_text(json.dumps(obj))
    code = main(["evaluate", str(tmp_path / "bad.json"), str(tmp_path / "runs.csv")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("climb: error: ") and err.count("\n") == 1
    assert "bad.json" in err and "parameter 'k' has shape [2], expected [4]" in err
