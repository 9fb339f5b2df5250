"""Metrics, cross-validation and observed effective ratios."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
from scipy.stats import spearmanr

from climb.data.runs import RunTable
from climb.errors import ClimbError
from climb.evaluation.cv import cross_validate, kfold_indices, repeated_cross_validate
from climb.evaluation.effective_ratio import observed_effective_ratios
from climb.evaluation.metrics import evaluate, evaluate_predictions, target_metrics
from climb.laws.climb import ClimbLaw, ClimbMSLLaw
from climb.laws.simulate import simulate, simulate_runs


def test_target_metrics_by_hand() -> None:
    obs = np.array([2.0, 3.0, 4.0, np.nan])
    pred = np.array([2.5, 2.5, 4.0, 9.0])
    m = target_metrics(pred, obs)
    assert m["n"] == 3
    assert m["mae"] == pytest.approx(1.0 / 3)
    assert m["mape"] == pytest.approx((0.25 + 0.5 / 3) / 3)
    assert m["r2"] == pytest.approx(1 - 0.5 / 2.0)
    assert m["spearman"] == pytest.approx(spearmanr(pred[:3], obs[:3])[0])


def test_overall_is_mean_over_targets() -> None:
    obs = np.array([[1.0, 2.0], [2.0, 3.0], [3.0, 5.0]])
    pred = obs + np.array([[0.1, 0.0], [0.1, 0.0], [0.1, 0.3]])
    ev = evaluate_predictions(pred, obs, ["a", "b"])
    assert ev.targets["a"]["mae"] == pytest.approx(0.1)
    assert ev.targets["b"]["mae"] == pytest.approx(0.1)
    assert ev.overall["mae"] == pytest.approx(0.1) and ev.overall["n"] == 6
    assert "overall" in ev.table() and "a " in ev.table()


def test_evaluate_true_law_on_noise_free_runs_is_perfect() -> None:
    truth, runs = simulate(3, 30, noise=0.0, seed=1)
    ev = evaluate(truth, runs)
    assert ev.overall["mae"] < 1e-9 and ev.overall["r2"] == pytest.approx(1.0)
    assert ev.overall["spearman"] == pytest.approx(1.0)


def test_kfold_indices_balanced_and_seeded() -> None:
    f = kfold_indices(23, 5, seed=3)
    assert sorted(np.bincount(f)) == [4, 4, 5, 5, 5]
    np.testing.assert_array_equal(f, kfold_indices(23, 5, seed=3))
    assert not np.array_equal(f, kfold_indices(23, 5, seed=4))


def test_cross_validate_out_of_fold() -> None:
    truth, runs = simulate(4, 100, noise=0.01, seed=2)
    res = cross_validate("climb", runs, folds=4, seed=0, n_starts=2)
    assert res.predictions.shape == runs.loss.shape and np.isfinite(res.predictions).all()
    assert len(res.fold_metrics) == 4
    # out-of-fold error is near the 1 % noise floor, and close to the true law's error
    true_err = np.abs(truth.predict_runs(runs) / runs.loss - 1).mean()
    assert res.overall["mape"] < 1.3 * true_err
    assert res.overall["spearman"] > 0.95
    obj = res.to_json()
    assert set(obj) >= {"targets", "overall", "per_fold", "law"} and obj["law"] == "climb"
    with pytest.raises(ClimbError, match="folds"):
        cross_validate("climb", runs, folds=1)
    with pytest.raises(ClimbError, match="unknown law"):
        cross_validate("nope", runs)


def test_cross_validate_with_a_factory() -> None:
    _, runs = simulate(3, 40, noise=0.01, seed=3)
    res = cross_validate(lambda: ClimbLaw(n_starts=1), runs, folds=3, seed=1)
    assert res.law == "climb" and res.overall["n"] == 120


def test_cross_validate_folds_in_processes_give_the_serial_result() -> None:
    _, runs = simulate(3, 40, noise=0.01, seed=5)
    done: list[tuple[int, int]] = []
    serial = cross_validate("climb", runs, folds=4, seed=2, n_starts=1)
    par = cross_validate("climb", runs, folds=4, seed=2, n_starts=1, fold_jobs=2,
                         progress=lambda d, t: done.append((d, t)))  # fmt: skip
    np.testing.assert_array_equal(par.predictions, serial.predictions)
    np.testing.assert_array_equal(par.fold, serial.fold)
    assert json.dumps(par.to_json()) == json.dumps(serial.to_json())  # NaN-safe
    assert done == [(1, 4), (2, 4), (3, 4), (4, 4)]
    # a factory goes to the workers as it is: a partial of a module-level function works …
    part = cross_validate(functools.partial(ClimbLaw, n_starts=1), runs, 4, 2, fold_jobs=-1)
    np.testing.assert_array_equal(part.predictions, serial.predictions)
    # … a lambda cannot be sent to another process: one-line error, nothing computed
    with pytest.raises(ClimbError, match="law factory must be picklable"):
        cross_validate(lambda: ClimbLaw(n_starts=1), runs, folds=4, fold_jobs=2)
    with pytest.raises(ClimbError, match="n_jobs must be"):
        cross_validate("climb", runs, folds=4, fold_jobs=0)


def test_repeated_cross_validation_is_cross_validation_per_seed() -> None:
    _, runs = simulate(3, 30, noise=0.01, seed=6)
    rep = repeated_cross_validate("climb", runs, folds=3, seeds=[3, 4], n_starts=1, fold_jobs=2)
    assert rep.seeds == [3, 4] and [c.seed for c in rep.splits] == [3, 4]
    for c, seed in zip(rep.splits, (3, 4)):
        one = cross_validate("climb", runs, folds=3, seed=seed, n_starts=1)
        np.testing.assert_array_equal(c.predictions, one.predictions)
        np.testing.assert_array_equal(c.fold, one.fold)
    assert not np.array_equal(rep.splits[0].fold, rep.splits[1].fold)
    sp = rep.spread()
    maes = [c.overall["mae"] for c in rep.splits]
    assert sp["overall"]["mae"]["mean"] == pytest.approx(np.mean(maes))
    assert sp["overall"]["mae"]["std"] == pytest.approx(np.std(maes, ddof=1))
    assert sp["overall"]["mae"]["min"] == min(maes) and sp["overall"]["mae"]["max"] == max(maes)
    main = [c.by_share["main"]["mae"] for c in rep.splits]
    assert sp["by_share"]["main"]["mean"] == pytest.approx(np.mean(main))
    assert sp["by_share"]["main"]["n"] == rep.splits[0].by_share["main"]["n"]
    assert len(rep.to_json()["per_split"]) == 2 and "over 2 splits" in rep.summary_lines()[0]
    with pytest.raises(ClimbError, match="at least one seed"):
        repeated_cross_validate("climb", runs, folds=3, seeds=[])


def test_cross_validate_interrupted_stops_its_worker_processes() -> None:
    import multiprocessing

    _, runs = simulate(3, 40, noise=0.01, seed=5)

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt  # Ctrl-C after the first fold

    with pytest.raises(KeyboardInterrupt):
        cross_validate("climb", runs, folds=4, n_starts=1, fold_jobs=2, progress=interrupt)
    assert multiprocessing.active_children() == []


def test_observed_effective_ratio_inverts_the_law() -> None:
    truth, runs = simulate(4, 50, noise=0.0, seed=4)
    er = observed_effective_ratios(truth, runs)
    # noise-free runs: r̂ equals the law's own W p
    np.testing.assert_allclose(er.observed, er.law, rtol=1e-8)
    np.testing.assert_allclose(er.p, runs.p)
    frame = er.to_frame()
    assert list(frame.columns) == ["run", "tokens", "target", "p", "r_law", "r_observed"]
    assert len(frame) == 50 * 4
    assert not er.undefined.any()


def test_observed_effective_ratio_of_a_saturating_law() -> None:
    truth, runs = simulate(4, 50, noise=0.0, seed=4, eta=0.5)
    er = observed_effective_ratios(truth, runs)
    # r̂ inverts the law's own saturating r, which is not W p
    np.testing.assert_allclose(er.observed, er.law, rtol=1e-8)
    linear = runs.p @ truth.W_.T
    assert np.abs(er.law / linear - 1).max() > 0.1


def test_observed_effective_ratio_msl_and_undefined() -> None:
    truth, runs = simulate(3, 60, tokens=[3e8, 3e9], noise=0.0, seed=5)
    msl = ClimbMSLLaw().fit(runs)
    er = observed_effective_ratios(msl, runs)
    assert np.nanmedian(np.abs(er.observed / er.law - 1)) < 0.05
    # a loss below the floor E has no effective ratio
    low = simulate_runs(truth, 5, noise=0.0, seed=1)
    low.loss[0, 0] = truth.E_[0] * 0.9
    er2 = observed_effective_ratios(truth, low)
    assert er2.undefined[0, 0] and np.isnan(er2.observed[0, 0])


def test_effective_ratio_needs_a_climb_law() -> None:
    class Fake:
        name = "dml"

    _, runs = simulate(2, 10, seed=0)
    with pytest.raises(ClimbError, match="climb family"):
        observed_effective_ratios(Fake(), runs)  # type: ignore[arg-type]


def test_cv_keeps_checkpoint_rows_with_their_run() -> None:
    from climb.evaluation.cv import fold_assignment, kfold_indices

    rng = np.random.default_rng(3)
    ids = [f"r{i}" for i in range(10)]
    run = [x for i in ids for x in (f"{i}-mid", i)]
    p = rng.dirichlet(np.ones(3), 10).repeat(2, axis=0)
    runs = RunTable.from_arrays(
        run=run, tokens=np.tile([500.0, 1000.0], 10), p=p, sources=["a", "b", "c"],
        loss=rng.uniform(2, 3, (20, 3)), targets=["a", "b", "c"],
        train_run=[i for i in ids for _ in range(2)], true_budget=np.tile([False, True], 10),
    )  # fmt: skip
    fold = fold_assignment(runs, 5, seed=0)
    groups = runs.groups()
    for g in set(groups.tolist()):
        assert len(set(fold[groups == g].tolist())) == 1
    assert sorted(np.bincount(fold).tolist()) == [4, 4, 4, 4, 4]
    # without checkpoint rows "auto" is the plain per-row split
    finals = runs.subset(runs.true_budget)
    assert np.array_equal(fold_assignment(finals, 5, seed=0), kfold_indices(10, 5, 0))
    with pytest.raises(ClimbError, match="10 training runs"):
        fold_assignment(runs, 11, seed=0)


def test_mae_by_share_classes_cells_by_the_targets_own_share() -> None:
    from climb.evaluation.cv import mae_by_share

    share = np.array([[0.0, 0.005], [0.01, 0.5], [0.0, 0.2]])
    pred = np.array([[3.0, 2.0], [1.0, 1.0], [np.nan, 1.0]])
    obs = np.array([[2.0, 2.5], [1.5, np.nan], [4.0, 1.25]])
    out = mae_by_share(pred, obs, share)
    assert out["zero"] == {"mae": 1.0, "n": 1}  # the NaN prediction is not a cell
    assert out["trace"] == {"mae": 0.5, "n": 1}  # 0 < 0.005 < 1 %
    assert out["main"] == {"mae": 0.375, "n": 2}  # 0.01 counts as main; the NaN loss does not
    empty = mae_by_share(pred[:, 1:], obs[:, 1:], np.full((3, 1), 0.3))
    assert empty["zero"]["n"] == 0 and np.isnan(empty["zero"]["mae"])


def test_cv_reports_error_by_own_share() -> None:
    """by_share pools the out-of-fold predictions of the cells of each own-share class."""
    from climb.evaluation.cv import cross_validate

    rng = np.random.default_rng(0)
    n = 30
    p = rng.dirichlet(np.ones(3), n)
    p[:10, 0] = 0.0
    p[10:15, 0] = 0.004
    p /= p.sum(axis=1, keepdims=True)
    loss = 1.0 + 5.0 * (np.maximum(p, 1e-3) * 1e6) ** -0.3
    loss[:10, 0] = 12.0  # an unseen script
    runs = RunTable.from_arrays(
        run=[f"r{i}" for i in range(n)], tokens=1e6, p=p, sources=["a", "b", "c"],
        loss=loss, targets=["a", "b", "c"],
    )  # fmt: skip
    res = cross_validate("isolated", runs, folds=5, seed=0)
    by = res.by_share
    trace = int(((p > 0) & (p < 0.01)).sum())
    assert trace >= 5 and (by["zero"]["n"], by["trace"]["n"]) == (10, trace)
    assert by["main"]["n"] == 90 - 10 - trace
    cells = np.abs(res.predictions - res.observed)
    assert by["zero"]["mae"] == pytest.approx(cells[:10, 0].mean())
    assert by["main"]["mae"] == pytest.approx(cells[p >= 0.01].mean())
    assert res.to_json()["by_share"] == by
    assert "p = 0: MAE" in res.by_share_line() and f"(n {trace})" in res.by_share_line()
