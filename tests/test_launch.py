"""Proxies in the user's own trainer: `climb design --format` writes one launch config per run and
a manifest; `climb ingest --manifest` reads the results back into a run table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from climb.cli import main
from climb.data.manifest import Manifest, runs_from_results
from climb.data.runs import RunTable
from climb.exports.launch import write_launch
from climb.proxy.config import TrainConfig
from climb.proxy.design import Plan, PlannedRun

SOURCES = ["en", "fr", "ru"]


def plan() -> Plan:
    runs = [
        PlannedRun("a-mono-en", {"en": 1.0}, 100_000, "mono"),
        PlannedRun("b-pair", {"fr": 0.25, "ru": 0.75}, 100_000, "pair"),
        PlannedRun(
            "c-mix", {"en": 0.2, "fr": 0.3, "ru": 0.5}, 200_000, "custom", branches=(100_000,)
        ),
    ]
    return Plan(sources=list(SOURCES), runs=runs, train=TrainConfig(schedule="wsd"),
                design={"max_epochs": 4.0, "seed": 0})  # fmt: skip


def _blend(path: Path) -> dict[str, float]:
    """Megatron's read of a --data-args-path file: f.read().split(), then (weight, prefix) pairs."""
    fields = path.read_text().split()
    assert len(fields) % 2 == 0
    return {p: float(w) for w, p in zip(fields[0::2], fields[1::2])}


@pytest.mark.parametrize("fmt", ["olmo", "megatron", "torchtitan"])
def test_one_config_per_run_and_a_manifest(tmp_path: Path, fmt: str) -> None:
    paths = {s: [f"/data/{s}_text_document"] for s in SOURCES}
    manifest_path = write_launch(plan(), fmt, tmp_path / "launch", paths=paths)
    manifest = Manifest.load(manifest_path)
    assert manifest.trainer == fmt and manifest.sources == SOURCES and manifest.schedule == "wsd"
    assert [r.branches for r in manifest.runs] == [(), (), (100_000,)]
    assert manifest.expected_metrics == ["loss.en", "loss.fr", "loss.ru"]
    assert [(r.run, r.tokens, r.seed) for r in manifest.runs] == [
        ("a-mono-en", 100_000, 0), ("b-pair", 100_000, 0), ("c-mix", 200_000, 0)]  # fmt: skip
    for r, planned in zip(manifest.runs, plan().runs):
        assert r.mixture == {s: planned.mixture.get(s, 0.0) for s in SOURCES}
        config = manifest_path.parent / r.config
        want = {f"/data/{s}_text_document": p for s, p in r.mixture.items() if p > 0}
        if fmt == "megatron":
            assert _blend(config) == pytest.approx(want)
        elif fmt == "olmo":
            doc = yaml.safe_load(config.read_text())
            assert {s["paths"][0]: s["target_ratio"] for s in doc["sources"]} == pytest.approx(want)
            assert {s["max_repetition_ratio"] for s in doc["sources"]} == {4.0}
            assert f"requested_tokens={r.tokens}" in config.read_text()
        else:
            compile(config.read_text(), str(config), "exec")
            assert f"TOKENS = {r.tokens}" in config.read_text()


def _results(manifest: Manifest) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for r in manifest.runs[:2]:  # the third run has not finished
        for frac in (0.5, 1.0):  # a mid-schedule checkpoint, then the end of the run
            rows.append({"run": r.run, "tokens": int(r.tokens * frac),
                         **{f"loss.{s}": float(3 + rng.random()) for s in SOURCES}})  # fmt: skip
    return pd.DataFrame(rows)


def test_results_join_the_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest_path = write_launch(plan(), "olmo", tmp_path / "launch")
    manifest = Manifest.load(manifest_path)
    results = _results(manifest)
    results.to_csv(tmp_path / "results.csv", index=False)
    out = tmp_path / "runs.csv"
    argv = ["ingest", "--manifest", str(manifest_path), "--results", str(tmp_path / "results.csv"),
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "1 of 3 manifest run(s) have no results yet: c-mix" in printed
    # a WSD cooldown branch (c-mix branches at 100k) is a true-budget row, not a checkpoint
    wsd = pd.DataFrame({"run": ["c-mix"], "tokens": [100_000], **{f"loss.{s}": [3.0] for s in SOURCES}})  # fmt: skip
    branch = runs_from_results(manifest, wsd)
    assert branch.run == ["c-mix/100000"] and list(branch.true_budget) == [True]
    table = RunTable.read(out)
    assert table.run == ["a-mono-en/50000", "a-mono-en", "b-pair/50000", "b-pair"]
    assert table.train_run == ["a-mono-en", "a-mono-en", "b-pair", "b-pair"]
    assert list(table.true_budget) == [False, True, False, True]
    assert list(table.tokens) == [50_000, 100_000, 50_000, 100_000]
    assert table.p[3].tolist() == [0.0, 0.25, 0.75]
    np.testing.assert_allclose(table.loss, results[[f"loss.{s}" for s in SOURCES]], rtol=1e-9)
    assert list(table.meta["seed"].astype(int)) == [0, 0, 0, 0]  # metadata is read as text


def test_results_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest_path = write_launch(plan(), "olmo", tmp_path / "launch")
    manifest = Manifest.load(manifest_path)
    base = ["ingest", "--manifest", str(manifest_path), "--out", str(tmp_path / "runs.csv")]
    cases = {
        "run 'zzz' is not in the manifest": _results(manifest).assign(run="zzz"),
        "no column loss.ru": _results(manifest).drop(columns=["loss.ru"]),
        "tokens 200000 is not a number ≤ its planned 100000": _results(manifest).assign(
            tokens=200000
        ),
    }
    for message, frame in cases.items():
        frame.to_csv(tmp_path / "r.csv", index=False)
        assert main([*base, "--results", str(tmp_path / "r.csv")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("climb: error: ") and message in err and err.count("\n") == 1, err
    with pytest.raises(Exception, match="not a climb launch manifest"):
        Manifest.load(tmp_path / "r.csv")
    assert main(["ingest", "--results", str(tmp_path / "r.csv"), "--out", str(tmp_path / "x.csv")]) == 2  # fmt: skip
    assert "--results needs --manifest" in capsys.readouterr().err
    with pytest.raises(Exception, match="not a trainer format"):
        write_launch(plan(), "json", tmp_path / "x")


def test_tracker_runs_join_the_manifest(tmp_path: Path) -> None:
    """Runs logged to TensorBoard under the manifest's ids: only the losses are mapped."""
    from torch.utils.tensorboard import SummaryWriter

    manifest_path = write_launch(plan(), "torchtitan", tmp_path / "launch")
    manifest = Manifest.load(manifest_path)
    for k, r in enumerate(manifest.runs):
        with SummaryWriter(log_dir=str(tmp_path / "tb" / r.run)) as w:
            for s in SOURCES:
                w.add_scalar(f"val/{s}", 3.0 + k / 4, 10)
    out = tmp_path / "runs.csv"
    argv = ["ingest", "--tensorboard", str(tmp_path / "tb"), "--manifest", str(manifest_path),
            "--loss-metric", "val/{source}", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    table = RunTable.read(out)
    assert table.run == [r.run for r in manifest.runs]
    assert table.p.tolist() == [[1.0, 0.0, 0.0], [0.0, 0.25, 0.75], [0.2, 0.3, 0.5]]
    assert table.loss[:, 0].tolist() == [3.0, 3.25, 3.5]


def test_design_format_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = tmp_path / "map.yaml"
    paths.write_text("en: /d/en\nfr: /d/fr\nru: /d/ru\n")
    argv = ["design", "--sources", "en,fr,ru", "--tokens", "100k", "200k", "--runs", "8",
            "--out", str(tmp_path / "plan.yaml"), "--format", "megatron", "--paths", str(paths)]  # fmt: skip
    assert main(argv) == 0
    assert "8 megatron launch configs" in capsys.readouterr().out
    manifest = Manifest.load(tmp_path / "plan-megatron" / "manifest.yaml")
    saved = Plan.load(tmp_path / "plan.yaml")
    assert [r.run for r in manifest.runs] == [r.run_id for r in saved.runs]
    for r in manifest.runs:
        got = _blend(tmp_path / "plan-megatron" / r.config)
        assert got == pytest.approx({f"/d/{s}": p for s, p in r.mixture.items() if p > 0})
    assert main([*argv[:-4], "--format", "json"]) == 2
    assert "not a trainer" in capsys.readouterr().err
    paths.write_text("en: /d/e n\nfr: /d/fr\nru: /d/ru\n")
    assert main([*argv[:-4], "--format", "megatron", "--paths", str(paths), "--launch-dir", str(tmp_path / "bad")]) == 2  # fmt: skip
    assert "whitespace" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()  # nothing half-written
    results = pd.DataFrame({"run": [manifest.runs[0].run], **{f"loss.{s}": [3.0] for s in ["en", "fr", "ru"]}})  # fmt: skip
    assert runs_from_results(manifest, results).run == [manifest.runs[0].run]
