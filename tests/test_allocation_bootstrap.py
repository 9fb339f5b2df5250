"""Bootstrap intervals and the MSL baseline, on runs simulated from a known climb law."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import climb.laws
from climb.allocation import allocate, bootstrap_allocation, climb_params_of
from climb.allocation.plan import plan_allocation
from climb.allocation.synthetic import random_climb_json
from climb.cli import main
from climb.data.runs import RunTable
from climb.errors import ClimbError


def simulated_runs(law: dict, n_mix: int = 27, noise: float = 0.002, seed: int = 0) -> RunTable:
    P, S, T = climb_params_of(law)
    K = len(S)
    rng = np.random.default_rng(seed)
    p = np.vstack([np.eye(K), rng.dirichlet(np.ones(K), n_mix)])
    p = np.vstack([p, p])
    tokens = np.repeat([1e9, 4e9], K + n_mix)
    L = np.array([P.loss_from_ratio(P.effective_ratio(pi, d)[0], d) for pi, d in zip(p, tokens)])
    L = L * np.exp(rng.normal(0.0, noise, L.shape))
    return RunTable.from_arrays(
        run=[f"r{i}" for i in range(len(p))], tokens=tokens, p=p, sources=S, loss=L, targets=T
    )


@pytest.fixture(scope="module")
def law_and_runs() -> tuple[dict, RunTable]:
    law = random_climb_json(3, 0, transfer=(0.0, 0.2), kappa=0.0)
    return law, simulated_runs(law)


def test_bootstrap_intervals_cover_the_true_allocation(law_and_runs: tuple[dict, RunTable]) -> None:
    law, runs = law_and_runs
    truth = allocate(law, 1e10).proportions
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a resample may floor a run's r (reported as one warning)
        boot = bootstrap_allocation(runs, 1e10, n_boot=8, seed=1, level=0.9)
        again = bootstrap_allocation(runs, 1e10, n_boot=8, seed=1, level=0.9)
    assert boot.samples.shape == (8, 3)
    np.testing.assert_allclose(boot.samples.sum(axis=1), 1.0, atol=1e-12)
    assert (boot.low <= boot.high).all()
    # low-noise runs: the refitted laws allocate close to the true law
    assert np.abs(np.median(boot.samples, axis=0) - truth).max() < 0.1
    assert ((boot.low - 0.05 <= truth) & (truth <= boot.high + 0.05)).all()
    np.testing.assert_array_equal(boot.samples, again.samples)  # deterministic for a seed


def test_plan_with_runs_has_msl_baseline_and_intervals(law_and_runs: tuple[dict, RunTable]) -> None:
    law, runs = law_and_runs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = plan_allocation(law, 1e10, runs=runs, n_boot=4, seed=0)
    assert "msl" in plan.baselines
    assert plan.gap("msl") >= -1e-10
    assert plan.result.intervals is not None and set(plan.result.intervals) == set(law["sources"])
    d = plan.to_dict()
    assert plan.bootstrap is not None
    assert (d["bootstrap"]["resamples"], d["bootstrap"]["failed"]) == (4, 0)  # no refit failed
    samples = plan.bootstrap.samples
    for k, s in enumerate(plan.bootstrap.sources):  # percentile intervals of the refits
        want = tuple(np.quantile(samples[:, k], [0.025, 0.975]))
        np.testing.assert_allclose(plan.result.intervals[s], want, rtol=1e-12)
    assert set(d["baselines"]) == {"uniform", "isolated", "msl"}


def write_inputs(tmp_path: Path, law: dict, runs: RunTable) -> tuple[Path, Path]:
    """The law JSON and the run table as the CLI reads them."""
    law_path = tmp_path / "law.json"
    law_path.write_text(json.dumps(law))
    return law_path, runs.write(tmp_path / "runs.csv")


def test_cli_bootstrap_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], law_and_runs: tuple[dict, RunTable]
) -> None:
    law, runs = law_and_runs
    law_path, runs_path = write_inputs(tmp_path, law, runs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["allocate", str(law_path), "--tokens", "1e10", "--runs", str(runs_path), "--bootstrap", "3",
                     "--baselines", "uniform,msl", "--json"])  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    lo_hi = out["intervals"]["proportions"]
    assert set(lo_hi) == set(law["sources"])
    assert all(0.0 <= a <= b <= 1.0 for a, b in lo_hi.values())
    assert out["baselines"]["msl"]["objective"] >= out["objective"] - 1e-10


def runs_with_checkpoints(
    law: dict, n_runs: int, fracs: tuple[float, ...], noise: float, seed: int, grouped: bool = True
) -> RunTable:
    """``n_runs`` training runs, each evaluated at ``fracs`` of its budget; a run's noise (its seed,
    its data order) is shared by all its rows. ``grouped=False`` forgets which rows form a run."""
    P, S, T = climb_params_of(law)
    K = len(S)
    rng = np.random.default_rng(seed)
    mix = np.vstack([np.eye(K), rng.dirichlet(np.ones(K), n_runs - K)])
    p, tokens, loss, run, train_run = [], [], [], [], []
    for i, pi in enumerate(mix):
        shared = np.exp(rng.normal(0.0, noise, len(T)))
        for f in fracs:
            d = f * 4e9
            p.append(pi)
            tokens.append(d)
            loss.append(P.loss_from_ratio(P.effective_ratio(pi, d)[0], d) * shared)
            run.append(f"r{i}-{f}")
            train_run.append(f"r{i}")
    return RunTable.from_arrays(
        run=run, tokens=tokens, p=np.array(p), sources=S, loss=np.array(loss), targets=T,
        train_run=train_run if grouped else None,
    )  # fmt: skip


def test_bootstrap_resamples_whole_training_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every refit sees all or none of a training run's rows (each drawn copy complete), and as
    many training runs as the table has."""
    law = random_climb_json(3, 0, transfer=(0.0, 0.2), kappa=0.0)
    runs = runs_with_checkpoints(law, 8, (0.25, 0.5, 1.0), 0.02, seed=0)
    seen: list[RunTable] = []

    class Recorder:
        def fit(self, table: RunTable) -> dict:
            seen.append(table)
            return law

    monkeypatch.setattr(climb.laws, "get_law", lambda *a, **k: Recorder())
    bootstrap_allocation(runs, 1e10, n_boot=12, seed=3, n_jobs=1)  # the recorder lives here
    assert len(seen) == 12
    for table in seen:
        assert len(table) == len(runs) and table.n_train_runs <= runs.n_train_runs
        copies = {g: table.run.count(f"{g}-1.0") for g in set(table.train_run)}
        for row, g in zip(table.run, table.train_run):
            assert table.run.count(row) == copies[g] >= 1, (row, g)  # the whole run, every copy
    assert any(t.n_train_runs < runs.n_train_runs for t in seen)  # it does resample


@pytest.mark.slow
def test_bootstrap_over_runs_is_wider_than_over_rows() -> None:
    """Checkpoint rows of a run share its noise: resampling rows treats them as independent draws
    and narrows the intervals by about sqrt(rows per run); resampling runs does not."""
    law = random_climb_json(3, 0, transfer=(0.0, 0.2), kappa=0.0)
    spread = {}
    for grouped in (True, False):
        runs = runs_with_checkpoints(law, 12, (0.25, 0.5, 1.0), 0.03, seed=0, grouped=grouped)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            boot = bootstrap_allocation(runs, 1e10, n_boot=40, seed=0, law_name="isolated")
        spread[grouped] = boot.samples.std(axis=0).sum()
    assert spread[True] > 1.3 * spread[False]  # sqrt(3) = 1.73 expected


def test_bootstrap_is_the_same_for_any_n_jobs(law_and_runs: tuple[dict, RunTable]) -> None:
    """Resamples are drawn up front and each refit is deterministic: processes change nothing."""
    _, runs = law_and_runs
    seen: list[tuple[int, int]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        serial = bootstrap_allocation(runs, 1e10, n_boot=6, seed=4, n_jobs=1)
        parallel = bootstrap_allocation(runs, 1e10, n_boot=6, seed=4, n_jobs=2,
                                        progress=lambda done, total: seen.append((done, total)))  # fmt: skip
        other_seed = bootstrap_allocation(runs, 1e10, n_boot=6, seed=5, n_jobs=2)
    np.testing.assert_array_equal(serial.samples, parallel.samples)
    np.testing.assert_array_equal(serial.low, parallel.low)
    np.testing.assert_array_equal(serial.high, parallel.high)
    assert not np.array_equal(serial.samples, other_seed.samples)  # the seed does matter
    assert seen == [(k, 6) for k in range(1, 7)]  # progress after every refit, in the parent


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True])
def test_bad_n_jobs_is_one_line(law_and_runs: tuple[dict, RunTable], bad: object) -> None:
    _, runs = law_and_runs
    with pytest.raises(ClimbError, match=r"^n_jobs must be") as err:
        bootstrap_allocation(runs, 1e10, n_boot=4, n_jobs=bad)  # type: ignore[arg-type]
    assert "\n" not in str(err.value) and "--" not in str(err.value)


def test_cli_bad_jobs_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], law_and_runs: tuple[dict, RunTable]
) -> None:
    law, runs = law_and_runs
    law_path, runs_path = write_inputs(tmp_path, law, runs)
    code = main(["allocate", str(law_path), "--tokens", "1e10", "--runs", str(runs_path),
                 "--bootstrap", "3", "--jobs", "0"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "climb: error: --jobs must be ≥ 1 or -1 (one per CPU), got 0"


def test_interrupt_stops_the_workers_and_writes_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    law_and_runs: tuple[dict, RunTable],
) -> None:
    """Ctrl-C during the refits: the worker processes are gone, the exception reaches the caller,
    and the CLI exits 130 without writing its export."""
    import multiprocessing

    import climb.allocation.bootstrap as bootstrap

    law, runs = law_and_runs

    def interrupt(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(KeyboardInterrupt):
            bootstrap_allocation(runs, 1e10, n_boot=8, n_jobs=2, progress=interrupt)
    assert multiprocessing.active_children() == []

    real = bootstrap.refit

    def refit_then_interrupt(task: bootstrap.RefitTask, b: int, rows: np.ndarray) -> object:
        if b == 2:
            raise KeyboardInterrupt
        return real(task, b, rows)

    monkeypatch.setattr(bootstrap, "refit", refit_then_interrupt)
    law_path, runs_path = write_inputs(tmp_path, law, runs)
    out = tmp_path / "blend.txt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["allocate", str(law_path), "--tokens", "1e10", "--runs", str(runs_path),
                     "--bootstrap", "5", "--jobs", "1", "--format", "megatron",
                     "--export-out", str(out)])  # fmt: skip
    assert code == 130 and not out.exists()
    assert "interrupted" in capsys.readouterr().err
