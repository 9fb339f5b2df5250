"""Runs from trackers: TensorBoard event files, an MLflow file store and a (fake) W&B API, written
here from the same fake runs, ingest to the same run table through one mapping."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from climb.cli import main
from climb.data.runs import RunTable
from climb.data.trackers import TrackerMapping, read_wandb, runs_from_tracker

SOURCES = ["de", "en", "fr"]  # pattern mappings give the sources in alphabetical order
MAPPING = "loss: eval/{source}/loss\np: mix.{source}\ntokens: tokens\nparams: model.params\n"


def fake_runs() -> list[dict[str, Any]]:
    """Six runs: config (mixture, tokens, params) and loss curves over 4 evaluation steps.
    Values are float32-exact, since TensorBoard stores scalars as float32."""
    rng = np.random.default_rng(0)
    runs = []
    for k in range(6):
        p = rng.dirichlet(np.ones(3))
        p = np.round(p * 64) / 64
        p[-1] = 1 - p[:-1].sum()
        tokens = 1e6 if k % 2 == 0 else 2e6
        final = {s: float(np.float32(2.0 + 1.0 / (1 + 4 * p[j]) + (0.25 if tokens < 1.5e6 else 0)))
                 for j, s in enumerate(SOURCES)}  # fmt: skip
        curves = {s: [float(np.float32(v + 0.5 * (3 - step))) for step in range(4)] for s, v in final.items()}  # fmt: skip
        config = {
            "mix": dict(zip(SOURCES, map(float, p))),
            "tokens": tokens,
            "model": {"params": 5e5},
        }
        runs.append({"name": f"run{k:02d}", "config": config, "curves": curves})
    return runs


def expected_frame() -> pd.DataFrame:
    rows = []
    for r in fake_runs():
        row: dict[str, Any] = {"run": r["name"], "tokens": r["config"]["tokens"], "params": 5e5}
        row |= {f"p.{s}": r["config"]["mix"][s] for s in SOURCES}
        row |= {f"loss.{s}": r["curves"][s][-1] for s in SOURCES}
        rows.append(row)
    return pd.DataFrame(rows)


def write_tensorboard(root: Path, drop: str | None = None) -> Path:
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams

    for r in fake_runs():
        with SummaryWriter(log_dir=str(root / r["name"])) as w:
            flat = {f"mix.{s}": v for s, v in r["config"]["mix"].items()}
            flat |= {"tokens": r["config"]["tokens"], "model.params": 5e5}
            for summary in hparams(flat, {}):
                w.file_writer.add_summary(summary)
            for s, curve in r["curves"].items():
                for step, v in enumerate(curve):
                    if not (s == drop and r["name"] == "run03"):
                        w.add_scalar(f"eval/{s}/loss", v, step * 100)
    return root


def write_mlflow(root: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    from mlflow.tracking import MlflowClient

    uri = f"file:{root}"
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow >= 3.7 refuses file stores
    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("sweep")
    for r in fake_runs():
        run = client.create_run(exp, run_name=r["name"])
        rid = run.info.run_id
        for s, v in r["config"]["mix"].items():
            client.log_param(rid, f"mix.{s}", v)
        client.log_param(rid, "tokens", r["config"]["tokens"])
        client.log_param(rid, "model.params", 5e5)
        for s, curve in r["curves"].items():
            for step, v in enumerate(curve):
                client.log_metric(rid, f"eval/{s}/loss", v, step=step * 100)
        client.set_terminated(rid)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")  # climb's reader sets it for itself
    return uri


class FakeWandbApi:
    """Offline stand-in for ``wandb.Api()``: ``runs(path)`` yields objects with the public
    attributes climb reads (``id``, ``name``, ``config``, ``summary``)."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.paths: list[str] = []

    def runs(self, path: str) -> list[SimpleNamespace]:
        self.paths.append(path)
        if self.fail:
            raise ValueError(f"Could not find project {path}")
        return [
            SimpleNamespace(
                id=f"id{k}", name=r["name"], config={**r["config"], "_wandb": {"x": 1}},
                summary={**{f"eval/{s}/loss": c[-1] for s, c in r["curves"].items()}, "_step": 300},
            )
            for k, r in enumerate(fake_runs())
        ]  # fmt: skip


def _table(path: Path) -> pd.DataFrame:
    frame = RunTable.read(path).to_frame()
    return frame.drop(columns=["tracker_id"])


@pytest.mark.slow
def test_tensorboard_and_mlflow_ingest_to_the_same_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING)
    tb = write_tensorboard(tmp_path / "tb")
    uri = write_mlflow(tmp_path / "mlruns", monkeypatch)
    assert main(["ingest", "--tensorboard", str(tb), "--mapping", str(mapping), "--out", str(tmp_path / "tb.csv")]) == 0  # fmt: skip
    assert main(["ingest", "--mlflow", uri, "--experiment", "sweep", "--mapping", str(mapping), "--out", str(tmp_path / "ml.csv")]) == 0  # fmt: skip
    assert "6 runs, 3 sources, 3 targets" in capsys.readouterr().out
    a, b = _table(tmp_path / "tb.csv"), _table(tmp_path / "ml.csv")
    pd.testing.assert_frame_equal(a, b)
    want = expected_frame()
    pd.testing.assert_frame_equal(a[want.columns], want, check_dtype=False)
    # the same mapping given as options instead of a file
    argv = ["ingest", "--tensorboard", str(tb), "--loss-metric", "eval/{source}/loss",
            "--p-key", "mix.{source}", "--tokens-key", "tokens", "--params-key", "model.params",
            "--out", str(tmp_path / "tb2.csv")]  # fmt: skip
    assert main(argv) == 0
    pd.testing.assert_frame_equal(_table(tmp_path / "tb2.csv"), a)


def test_wandb_through_the_public_api_shape() -> None:
    api = FakeWandbApi()
    runs = read_wandb("team/sweep", api=api)
    assert api.paths == ["team/sweep"]
    assert runs[0].config["mix.en"] == fake_runs()[0]["config"]["mix"]["en"]
    assert "_wandb.x" not in runs[0].config and "_step" not in runs[0].metrics
    mapping = TrackerMapping.from_dict(
        {
            "loss": "eval/{source}/loss",
            "p": "mix.{source}",
            "tokens": "tokens",
            "params": "model.params",
        }
    )
    frame = runs_from_tracker(runs, mapping).to_frame()
    want = expected_frame()
    pd.testing.assert_frame_equal(frame[want.columns], want, check_dtype=False)
    assert list(frame["tracker_id"]) == [f"id{k}" for k in range(6)]
    by_id = runs_from_tracker(runs, TrackerMapping.from_dict({**mapping.__dict__, "run_key": "id"}))
    assert by_id.run == [f"id{k}" for k in range(6)]


def test_explicit_maps_and_constant_tokens() -> None:
    runs = read_wandb("team/sweep", api=FakeWandbApi())
    mapping = TrackerMapping(
        loss={"eval/en/loss": "en", "eval/de/loss": "de"},
        p={"mix.en": "en", "mix.de": "de", "mix.fr": "fr"},
    )
    table = runs_from_tracker(runs, mapping, tokens=3e6)
    assert table.targets == ["en", "de"] and table.sources == ["en", "de", "fr"]
    assert set(table.tokens) == {3e6} and table.params is None


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("climb: error: ") and err.count("\n") == 1, err
    return err


def test_tracker_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING)
    out = tmp_path / "runs.csv"
    out.write_text("kept\n")
    tb = write_tensorboard(tmp_path / "tb", drop="de")  # run03 never logged eval/de/loss
    base = ["--mapping", str(mapping), "--out", str(out)]
    assert main(["ingest", "--tensorboard", str(tb), *base]) == 2
    err = _err(capsys)
    assert "run 'run03' has no metric 'eval/de/loss' (mapped to loss.de)" in err
    assert out.read_text() == "kept\n"  # nothing already saved is lost
    assert main(["ingest", "--tensorboard", str(tmp_path / "nope"), *base]) == 2
    assert "no such folder" in _err(capsys)
    (tmp_path / "empty").mkdir()
    assert main(["ingest", "--tensorboard", str(tmp_path / "empty"), *base]) == 2
    assert "no TensorBoard event files" in _err(capsys)
    assert main(["ingest", "--tensorboard", str(tb), "--out", str(out)]) == 2
    assert "--mapping FILE or --loss-metric and --p-key" in _err(capsys)
    mapping.write_text("loss: eval/loss\np: mix.{source}\n")
    assert main(["ingest", "--tensorboard", str(tb), *base]) == 2
    assert "must contain {source}" in _err(capsys)
    mapping.write_text(MAPPING.replace("tokens: tokens", "tokens: train/tokens"))
    assert main(["ingest", "--tensorboard", str(tb), *base]) == 2
    assert "no config key or metric 'train/tokens'" in _err(capsys)
    assert main(["ingest", "--wandb", "no-slash", "--out", str(out), "--loss-metric", "l={source}", "--p-key", "m.{source}"]) == 2  # fmt: skip
    assert "ENTITY/PROJECT" in _err(capsys)
    assert out.read_text() == "kept\n"


def test_wandb_and_mlflow_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from climb.errors import ClimbError

    with pytest.raises(ClimbError, match="cannot list the runs of team/gone"):
        read_wandb("team/gone", api=FakeWandbApi(fail=True))
    argv = ["ingest", "--mlflow", f"file:{tmp_path / 'none'}", "--loss-metric", "l/{source}",
            "--p-key", "m.{source}", "--tokens", "1e6", "--out", str(tmp_path / "x.csv")]  # fmt: skip
    assert main(argv) == 2
    assert "no such tracking folder" in _err(capsys)
