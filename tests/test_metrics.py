"""Downstream targets: metric.<name> columns, metric laws (sigmoid link of the Climb law,
regression) and allocation over weighted losses and metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.special import expit

from climb.allocation.constraints import Constraints
from climb.allocation.metrics import allocate_mixed, mixed_objective
from climb.data.runs import RunTable
from climb.errors import ClimbError
from climb.laws.metrics import (
    MetricLink,
    MetricRegression,
    load_metric_law,
    save_metric_law,
)
from climb.laws.simulate import random_climb_law, simulate_runs

TRUE = {"lo": 0.25, "hi": 0.85, "a": 12.0, "b": 4.0}  # accuracy of a 4-way task, falls with loss


def runs_with_metric(noise: float = 0.0, seed: int = 0) -> tuple[RunTable, object]:
    law = random_climb_law(4, tokens=(1e8, 4e8), seed=3)
    runs = simulate_runs(law, 40, tokens=(1e8, 4e8), noise=0.0, seed=seed)
    loss_s2 = runs.loss[:, runs.targets.index("s2")]
    acc = TRUE["lo"] + (TRUE["hi"] - TRUE["lo"]) * expit(TRUE["a"] - TRUE["b"] * loss_s2)
    acc = acc + noise * np.random.default_rng(seed).standard_normal(acc.size)
    frame = runs.to_frame()
    frame["metric.acc_s2"] = acc
    frame.loc[3, "metric.acc_s2"] = np.nan  # not measured in one run
    return RunTable.from_frame(frame), law


def test_metric_columns_round_trip(tmp_path: Path) -> None:
    runs, _ = runs_with_metric()
    assert runs.metrics == ["acc_s2"] and runs.metric.shape == (40, 1)
    assert np.isnan(runs.metric[3, 0]) and np.isfinite(np.delete(runs.metric[:, 0], 3)).all()
    for suffix in (".csv", ".jsonl", ".parquet"):
        back = RunTable.read(runs.write(tmp_path / f"runs{suffix}"))
        np.testing.assert_allclose(back.metric, runs.metric, rtol=1e-9)
    frame = runs.to_frame()
    frame["metric.bad"] = "x"
    with pytest.raises(ClimbError, match=r"column 'metric\.bad'"):
        RunTable.from_frame(frame)


def test_sigmoid_link_recovers_the_link_and_is_monotone(tmp_path: Path) -> None:
    runs, law = runs_with_metric()
    link = MetricLink(loss_law=law, sources={"acc_s2": "s2"}).fit(runs)
    got = {k: float(getattr(link, k + "_")[0]) for k in TRUE}
    assert got == pytest.approx(TRUE, rel=1e-3)
    assert link.rmse_[0] < 1e-6
    # monotone: a mixture with a lower predicted loss on s2 never has a lower predicted metric
    p = np.random.default_rng(1).dirichlet(np.ones(4), 200)
    loss = law.predict(p, 2e8)[:, law.targets_.index("s2")]
    metric = link.predict(p, 2e8)[:, 0]
    order = np.argsort(loss)
    assert np.all(np.diff(metric[order]) <= 1e-12)
    back = load_metric_law(save_metric_law(link, tmp_path / "metric.json"))
    np.testing.assert_allclose(back.predict(p, 2e8), link.predict(p, 2e8), rtol=1e-12)


def test_sigmoid_link_with_noise_and_the_regression_metric_law(tmp_path: Path) -> None:
    runs, law = runs_with_metric(noise=0.01, seed=1)
    test, _ = runs_with_metric(noise=0.0, seed=2)  # fresh mixtures, noiseless truth
    link = MetricLink(loss_law=law, sources={"acc_s2": "s2"}).fit(runs)
    reg = MetricRegression(n_estimators=200, seed=0).fit(runs)
    truth = test.metric[:, 0]
    ok = np.isfinite(truth)
    err_link = np.abs(link.predict(test.p, test.tokens)[:, 0] - truth)[ok].mean()
    err_reg = np.abs(reg.predict(test.p, test.tokens)[:, 0] - truth)[ok].mean()
    assert err_link < 0.01  # the link of the right law is close to the truth
    assert err_reg < 0.2 and err_link < err_reg  # the mixture-only baseline fits, less well
    back = load_metric_law(save_metric_law(reg, tmp_path / "reg.json"))
    np.testing.assert_allclose(back.predict(test.p, test.tokens), reg.predict(test.p, test.tokens))


def test_metric_law_bad_input() -> None:
    runs, law = runs_with_metric()
    with pytest.raises(ClimbError, match="loss target 'xx' is not a target"):
        MetricLink(loss_law=law, sources={"acc_s2": "xx"}).fit(runs)
    with pytest.raises(ClimbError, match=r"no column metric\.nope"):
        MetricLink(loss_law=law).fit(runs, metrics=["nope"])
    frame = runs.to_frame()
    frame.loc[4:, "metric.acc_s2"] = np.nan
    with pytest.raises(ClimbError, match="fewer than 4 runs"):
        MetricLink(loss_law=law, sources={"acc_s2": "s2"}).fit(RunTable.from_frame(frame))


def _slsqp(link: MetricLink, tokens: float, weights: dict, nu: dict, start: np.ndarray) -> float:
    k = len(link.loss_law.sources_)
    res = minimize(
        lambda p: mixed_objective(link, p, tokens, None, weights, nu), start, method="SLSQP",
        bounds=[(0, 1)] * k, constraints=[{"type": "eq", "fun": lambda p: p.sum() - 1}],
        options={"ftol": 1e-13, "maxiter": 500},
    )  # fmt: skip
    return float(res.fun)


@pytest.mark.parametrize("nu", [0.5, 5.0])
def test_allocate_mixed_is_the_optimum_of_losses_minus_metrics(nu: float) -> None:
    runs, law = runs_with_metric()
    link = MetricLink(loss_law=law, sources={"acc_s2": "s2"}).fit(runs)
    weights = {"s1": 1.0, "s2": 0.0, "s3": 1.0, "s4": 1.0}  # s2 counts only through its metric
    mixed = allocate_mixed(link, 1e9, metric_weights={"acc_s2": nu}, constraints=Constraints(weights=weights))  # fmt: skip
    assert mixed.converged
    p = mixed.result.proportions
    f = mixed_objective(link, p, 1e9, None, weights, {"acc_s2": nu})
    assert mixed.objective == pytest.approx(f, abs=1e-12)
    # no feasible mixture does better: a direct SLSQP on F from 8 starts, and 500 random mixtures
    rng = np.random.default_rng(0)
    best = min(_slsqp(link, 1e9, weights, {"acc_s2": nu}, s) for s in rng.dirichlet(np.ones(4), 8))
    assert f <= best + 1e-7
    others = [mixed_objective(link, q, 1e9, None, weights, {"acc_s2": nu}) for q in rng.dirichlet(np.ones(4), 500)]  # fmt: skip
    assert f <= min(others)
    # the metric's weight moves share to its language compared with ignoring the metric
    plain = allocate_mixed(link, 1e9, metric_weights={"acc_s2": 0.0}, constraints=Constraints(weights=weights))  # fmt: skip
    assert mixed.predicted_metric[0] > plain.predicted_metric[0]
    assert mixed.effective_weights["s2"] > 0 == plain.effective_weights["s2"]


def test_allocate_mixed_bad_input() -> None:
    runs, law = runs_with_metric()
    link = MetricLink(loss_law=law, sources={"acc_s2": "s2"}).fit(runs)
    with pytest.raises(ClimbError, match="not a metric of the metric law"):
        allocate_mixed(link, 1e9, metric_weights={"acc": 1.0})
    with pytest.raises(ClimbError, match="≥ 0"):
        allocate_mixed(link, 1e9, metric_weights={"acc_s2": -1.0})


def test_metrics_frame_is_metadata_for_the_laws() -> None:
    """A metric column does not change what the loss laws see."""
    runs, _ = runs_with_metric()
    plain = RunTable.from_frame(runs.to_frame().drop(columns=["metric.acc_s2"]))
    assert plain.targets == runs.targets and np.array_equal(plain.loss, runs.loss)
    assert isinstance(runs.to_frame(), pd.DataFrame) and "metric.acc_s2" in runs.to_frame()


def test_cli_fit_metrics_and_allocate_with_metric_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from climb.cli import main

    runs, law = runs_with_metric()
    runs.write(tmp_path / "runs.csv")
    law.save(tmp_path / "law.json")
    argv = ["fit-metrics", str(tmp_path / "runs.csv"), "--loss-law", str(tmp_path / "law.json"),
            "--source", "acc_s2=s2", "--out", str(tmp_path / "metric.json")]  # fmt: skip
    assert main(argv) == 0
    assert "acc_s2 ← s2" in capsys.readouterr().out
    base = ["allocate", str(tmp_path / "law.json"), "--tokens", "1e9", "--metric-law",
            str(tmp_path / "metric.json"), "--baselines", "uniform"]  # fmt: skip
    assert main([*base, "--weights", "s1=1,s2=0,s3=1,s4=1,metric.acc_s2=5", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    link = load_metric_law(tmp_path / "metric.json")
    assert isinstance(link, MetricLink)
    want = allocate_mixed(link, 1e9, metric_weights={"acc_s2": 5.0},
                          constraints=Constraints(weights={"s1": 1, "s2": 0, "s3": 1, "s4": 1}))  # fmt: skip
    assert list(got["proportions"].values()) == pytest.approx(
        want.result.proportions.tolist(), abs=1e-12
    )
    assert (
        got["objective"] == pytest.approx(want.objective)
        and got["baselines"]["uniform"] > got["objective"]
    )
    assert main([*base, "--weights", "metric.acc_s2=5", "--format", "megatron", "--export-out", str(tmp_path / "b.txt")]) == 0  # fmt: skip
    assert "F at uniform" in capsys.readouterr().out and (tmp_path / "b.txt").read_text().split()
    assert main([*base, "--weights", "metric.nope=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("climb: error: metric_weights: 'nope'") and err.count("\n") == 1
    other = random_climb_law(4, tokens=(1e8, 4e8), seed=9)
    other.save(tmp_path / "other.json")
    assert main(["allocate", str(tmp_path / "other.json"), *base[2:]]) == 2
    assert "fitted on another loss law" in capsys.readouterr().err
    assert main(["fit-metrics", str(tmp_path / "runs.csv"), "--out", str(tmp_path / "m.json")]) == 2
    assert "needs --loss-law" in capsys.readouterr().err
