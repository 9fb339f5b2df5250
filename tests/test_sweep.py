"""Sweeps: resumable, atomic per run, refusing bad inputs before training; local and Ray backends.

The must-show tests use the real trainer with a tiny model (d=32, 1 layer, context 64, 10–30k
tokens, compile off) on a tiny corpus directory made in the test.
"""

from __future__ import annotations

import gzip
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from climb.cli import main
from climb.data.store import RunStore
from climb.errors import ClimbError
from climb.proxy.config import ModelConfig, TrainConfig
from climb.proxy.design import Plan, PlannedRun
from climb.proxy.executors import InlineExecutor, LocalExecutor, RayExecutor
from climb.proxy.sweep import run_sweep

TINY_MODEL = ModelConfig(d_model=32, n_layers=1, n_heads=2, context=64)
TINY_TRAIN = TrainConfig(
    batch_size=8, compile=False, bf16=False, eval_bytes=2048, checkpoints=(0.5,), seed=1
)
TIMING_COLUMNS = ["wall_s", "tokens_per_s"]


# ---------------------------------------------------------------------- fixtures
def make_corpus(root: Path) -> Path:
    """Three small sources of seeded pseudo-text in different scripts (~25 KB each)."""
    root.mkdir(parents=True)
    alphabets = {
        "de": "abcdefghiklmnorstuäöü",
        "en": "abcdefghilmnoprstuwy",
        "ru": "абвгдеиклмнопрстуя",
    }
    for s, letters in alphabets.items():
        rng = np.random.default_rng(len(letters))
        words = ["".join(rng.choice(list(letters), size=rng.integers(2, 8))) for _ in range(60)]
        docs = [" ".join(rng.choice(words, size=rng.integers(40, 80))) + "." for _ in range(70)]
        (root / f"{s}.txt").write_text("\n\n".join(docs), encoding="utf-8")
    return root


def make_plan(n: int = 4, tokens: tuple[int, ...] = (10_000, 20_000)) -> Plan:
    mixtures = [
        {"de": 1.0},
        {"en": 0.5, "ru": 0.5},
        {"de": 0.2, "en": 0.3, "ru": 0.5},
        {"ru": 1.0},
        {"de": 0.75, "en": 0.25},
    ]
    runs = []
    for d in tokens:
        for k, mix in enumerate(mixtures):
            runs.append(PlannedRun(f"r{k}-D{d}", mix, d))
    runs = runs[:n] if n <= len(runs) else runs
    return Plan(sources=["de", "en", "ru"], runs=runs, model=TINY_MODEL, train=TINY_TRAIN)


def fake_train(spec: Any, corpus: Any, *, progress: Any = None) -> list[dict[str, Any]]:
    """A stand-in step: deterministic rows with the trainer's layout (no torch)."""
    if spec.run_id.startswith("die"):
        os.kill(os.getpid(), signal.SIGKILL)  # a worker killed mid-run (OOM killer, kill -9)
    if spec.run_id.startswith("fail"):
        raise ClimbError(f"run '{spec.run_id}': loss became NaN")
    rows = []
    for frac in (0.5, 1.0):
        t = int(spec.tokens * frac)
        if progress is not None:
            progress(t)
        row: dict[str, Any] = {
            "run": spec.run_id if frac == 1 else f"{spec.run_id}@{t}",
            "tokens": t,
            "params": 1000,
        }
        for s, p in spec.mixture.items():
            row[f"p.{s}"] = p
            row[f"loss.{s}"] = 4.0 - p * frac - len(corpus.text_bytes(s)) * 1e-6
        row["final"] = frac == 1
        rows.append(row)
    return rows


def _frame(store: Path) -> pd.DataFrame:
    with RunStore(store, create=False) as rs:
        return (
            rs.to_frame()
            .drop(columns=TIMING_COLUMNS, errors="ignore")
            .sort_values("run")
            .reset_index(drop=True)
        )


def _snapshot(store: Path) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    with RunStore(store, create=False) as rs:
        return {r.run_id: (r.finished_at, r.rows) for r in rs.runs()}


# ---------------------------------------------------------------------- library behaviour
def test_sweep_stores_every_run_once_and_resumes(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    plan = make_plan(6)
    store = tmp_path / "runs.db"
    part = Plan(plan.sources, plan.runs[:4], plan.model, plan.train)
    res = run_sweep(
        part, store, corpus=corpus, executor=InlineExecutor(), train_fn=fake_train, progress=False
    )
    assert res.trained == [r.run_id for r in part.runs] and res.skipped == [] and res.complete
    before = _snapshot(store)
    res = run_sweep(
        plan, store, corpus=corpus, executor=InlineExecutor(), train_fn=fake_train, progress=False
    )
    assert res.skipped == [r.run_id for r in plan.runs[:4]]
    assert res.trained == [r.run_id for r in plan.runs[4:]]
    after = _snapshot(store)
    assert {k: after[k] for k in before} == before  # finished runs untouched
    res = run_sweep(
        plan, store, corpus=corpus, executor=InlineExecutor(), train_fn=fake_train, progress=False
    )
    assert res.trained == [] and len(res.skipped) == 6
    with RunStore(store, create=False) as rs:
        assert sorted(rs.finished()) == sorted(r.run_id for r in plan.runs)
        rec = rs.get("r1-D10000")
        assert rec.spec_hash == plan.specs()[1].spec_hash()
        assert rec.spec["mixture"] == {"de": 0.0, "en": 0.5, "ru": 0.5}
        assert {"climb", "python", "backend"} <= set(rec.versions)
        table = rs.to_run_table()
    assert len(table) == 12 and set(table.targets) == {"de", "en", "ru"}


def test_local_processes_run_every_spec(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    results = list(
        LocalExecutor(2).map_runs(make_plan(3).specs(), str(corpus), train_fn=fake_train)
    )
    assert sorted(r.run_id for r in results) == ["r0-D10000", "r1-D10000", "r2-D10000"]
    assert all(len(r.rows) == 2 and r.rows[-1]["final"] for r in results)


def test_failed_run_keeps_finished_ones(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    plan = make_plan(2)
    plan.runs.append(PlannedRun("fail-x", {"de": 1.0}, 10_000))
    store = tmp_path / "runs.db"
    with pytest.raises(ClimbError, match="run 'fail-x': loss became NaN"):
        run_sweep(
            plan,
            store,
            corpus=corpus,
            executor=InlineExecutor(),
            train_fn=fake_train,
            progress=False,
        )
    with RunStore(store, create=False) as rs:
        assert sorted(rs.finished()) == ["r0-D10000", "r1-D10000"]


def test_killed_worker_loses_nothing_that_finished(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    plan = make_plan(2)
    plan.runs.append(PlannedRun("die-x", {"de": 1.0}, 10_000))
    store = tmp_path / "runs.db"
    with pytest.raises(ClimbError, match="worker process died"):
        run_sweep(
            plan,
            store,
            corpus=corpus,
            executor=LocalExecutor(1),
            train_fn=fake_train,
            progress=False,
        )
    before = _snapshot(store)
    assert sorted(before) == ["r0-D10000", "r1-D10000"]
    plan.runs[-1] = PlannedRun("r9", {"de": 1.0}, 10_000)
    res = run_sweep(
        plan, store, corpus=corpus, executor=InlineExecutor(), train_fn=fake_train, progress=False
    )
    assert res.trained == ["r9"] and res.skipped == ["r0-D10000", "r1-D10000"]
    assert {k: v for k, v in _snapshot(store).items() if k in before} == before


def test_changed_spec_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    store = tmp_path / "runs.db"
    run_sweep(
        make_plan(2),
        store,
        corpus=corpus,
        executor=InlineExecutor(),
        train_fn=fake_train,
        progress=False,
    )
    before = _snapshot(store)
    changed = make_plan(2)
    changed.runs[1] = PlannedRun("r1-D10000", {"en": 0.25, "ru": 0.75}, 10_000)
    path = changed.save(tmp_path / "plan.yaml")
    code = main(
        ["sweep", str(path), "--corpus", str(corpus), "--store", str(store), "--no-progress"]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "run 'r1-D10000' is already in" in err and "different spec" in err
    assert _snapshot(store) == before
    # execution settings (threads, device) are not part of the spec: no error
    faster = Plan(
        changed.sources, make_plan(2).runs, TINY_MODEL, TINY_TRAIN.model_copy(update={"threads": 2})
    )
    res = run_sweep(
        faster, store, corpus=corpus, executor=InlineExecutor(), train_fn=fake_train, progress=False
    )
    assert res.trained == [] and len(res.skipped) == 2


def test_other_corpus_text_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A store records a digest of each source's text; a sweep on other text for a source its
    runs were trained on is refused (nothing written), a new source is recorded."""
    corpus = make_corpus(tmp_path / "corpus")
    store = tmp_path / "runs.db"
    kw: dict[str, Any] = {"executor": InlineExecutor(), "train_fn": fake_train, "progress": False}
    run_sweep(make_plan(2), store, corpus=corpus, **kw)
    with RunStore(store, create=False) as rs:
        recorded = rs.corpus_fingerprint()
    assert sorted(recorded) == ["de", "en", "ru"] and len(set(recorded.values())) == 3
    before = _snapshot(store)
    cut = tmp_path / "cut"
    make_corpus(cut)
    text = (cut / "en.txt").read_text(encoding="utf-8")
    (cut / "en.txt").write_text(text[: len(text) // 2], encoding="utf-8")
    path = make_plan(4).save(tmp_path / "plan.yaml")
    code = main(["sweep", str(path), "--corpus", str(cut), "--store", str(store), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "trained on other text for source(s) en" in err
    assert _snapshot(store) == before
    # the same text again (another folder): resumes and trains the rest
    res = run_sweep(make_plan(4), store, corpus=make_corpus(tmp_path / "same"), **kw)
    assert len(res.trained) == 2 and len(res.skipped) == 2


def _write_bad_corpus(root: Path, kind: str) -> None:
    make_corpus(root)
    if kind == "corrupt-gz":
        (root / "en.txt").unlink()
        (root / "en.txt.gz").write_bytes(b"\x1f\x8b\x08\x00garbage that is not deflate data" * 4)
    elif kind == "empty":
        (root / "en.txt").write_bytes(b"")
    elif kind == "missing-source":
        (root / "ru.txt").unlink()
    elif kind == "bad-utf8":
        (root / "en.txt").write_bytes(
            gzip.decompress(gzip.compress(b"ok\n\nfine")) + b"\xff\xfe\xfa"
        )


@pytest.mark.parametrize("kind", ["corrupt-gz", "empty", "missing-source", "bad-utf8"])
@pytest.mark.parametrize("store_state", ["absent", "existing"])
def test_bad_corpus_fails_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, store_state: str
) -> None:
    good = make_corpus(tmp_path / "good")
    store = tmp_path / "runs.db"
    if store_state == "existing":
        run_sweep(
            make_plan(1),
            store,
            corpus=good,
            executor=InlineExecutor(),
            train_fn=fake_train,
            progress=False,
        )
    before = store.read_bytes() if store.exists() else None
    bad = tmp_path / "bad"
    _write_bad_corpus(bad, kind)
    plan = make_plan(3).save(tmp_path / "plan.yaml")
    code = main(["sweep", str(plan), "--corpus", str(bad), "--store", str(store), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("climb: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert ("ru" in err) if kind == "missing-source" else ("en" in err)
    if before is None:
        assert not store.exists()
    else:
        assert store.read_bytes() == before


def test_store_that_is_not_a_climb_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    plan = make_plan(1).save(tmp_path / "plan.yaml")
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE notes(text)")
    con.commit()
    con.close()
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    for path in (other, text):
        before = path.read_bytes()
        code = main(
            ["sweep", str(plan), "--corpus", str(corpus), "--store", str(path), "--no-progress"]
        )
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "not a climb run store" in err
        assert path.read_bytes() == before


def test_sweep_cli_option_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    plan = make_plan(1).save(tmp_path / "plan.yaml")
    store = tmp_path / "runs.db"
    for extra, message in (
        (["--workers", "0"], "--workers 0"),
        (["--ray-address", "auto"], "--ray-address only applies"),
    ):
        code = main(["sweep", str(plan), "--corpus", str(corpus), "--store", str(store), *extra])
        assert code == 2 and message in capsys.readouterr().err
    code = main(["sweep", str(tmp_path / "nope.yaml"), "--store", str(store)])
    assert code == 2 and "plan: " in (err := capsys.readouterr().err) and "no such file" in err
    assert not store.exists()


# ---------------------------------------------------------------------- must show: real trainer
@pytest.mark.slow  # ~15-30 s on a shared 2-core machine (two process start-ups with torch)
def test_sigkill_then_resume(tmp_path: Path) -> None:
    """SIGKILL mid-sweep, rerun the same command: every run exactly once, finished ones untouched."""
    corpus = make_corpus(tmp_path / "corpus")
    planned = make_plan(5, tokens=(30_000,))
    n = len(planned)
    plan = planned.save(tmp_path / "plan.yaml")
    store = tmp_path / "runs.db"
    cmd = [sys.executable, "-m", "climb", "sweep", str(plan), "--corpus", str(corpus),
           "--store", str(store), "--workers", "1", "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        stored = 0
        while stored < 1:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "no run stored within 120 s"
            time.sleep(0.05)
            try:
                con = sqlite3.connect(f"file:{store}?mode=rw", uri=True)  # never creates it
            except sqlite3.Error:
                continue
            try:  # always close: a leaked connection keeps stale WAL state in this process
                stored = con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
            except sqlite3.Error:
                pass
            finally:
                con.close()
        os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its worker, without warning
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    before = _snapshot(store)
    assert 1 <= len(before) < n, "the kill came too late to show a resume"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert f"{n - len(before)} run(s) trained, {len(before)} already stored" in done.stdout
    after = _snapshot(store)
    assert sorted(after) == sorted(r.run_id for r in Plan.load(plan).runs)
    assert {k: after[k] for k in before} == before
    con = sqlite3.connect(store)
    counts = con.execute("SELECT run_id, COUNT(*) FROM rows GROUP BY run_id").fetchall()
    con.close()
    assert sorted(counts) == sorted((r, 2) for r in after)  # one checkpoint + the final row, once


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The 4-run plan swept once by 2 local worker processes: (corpus, store)."""
    root = tmp_path_factory.mktemp("local_sweep")
    corpus = make_corpus(root / "corpus")
    run_sweep(
        make_plan(4), root / "local.db", corpus=corpus, executor=LocalExecutor(2), progress=False
    )
    return corpus, root / "local.db"


def test_sweep_is_deterministic_on_cpu(tmp_path: Path, local_sweep: tuple[Path, Path]) -> None:
    """Same 4-run sweep twice (2 worker processes, then in this process): identical losses."""
    corpus, store = local_sweep
    plan = make_plan(4)
    run_sweep(plan, tmp_path / "b.db", corpus=corpus, executor=InlineExecutor(), progress=False)
    a, b = _frame(store), _frame(tmp_path / "b.db")
    assert len(a) == 8  # 4 runs × (checkpoint + final)
    loss = [c for c in a.columns if c.startswith("loss.")]
    assert np.isfinite(a[loss].to_numpy()).all() and (a[loss].to_numpy() > 0).all()
    pd.testing.assert_frame_equal(a, b)
    final = a[a["final"].astype(bool)].set_index("run")["loss.de"].astype(float)
    # the runs did learn: mono-de beats the mixture without de on de
    assert final["r0-D10000"] < final["r1-D10000"]


@pytest.mark.slow
def test_ray_backend_gives_the_same_rows(tmp_path: Path, local_sweep: tuple[Path, Path]) -> None:
    import ray

    corpus, local = local_sweep
    plan = make_plan(4)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        res = run_sweep(
            plan, tmp_path / "ray.db", corpus=corpus, executor=RayExecutor(), progress=False
        )
    finally:
        ray.shutdown()
    assert res.backend == "ray" and len(res.trained) == 4
    pd.testing.assert_frame_equal(_frame(local), _frame(tmp_path / "ray.db"))
    with RunStore(tmp_path / "ray.db", create=False) as rs:
        assert {r.versions["backend"] for r in rs.runs()} == {"ray"}
