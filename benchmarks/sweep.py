"""Benchmark of the sweep machinery: run-store write speed, and local worker/thread layouts.

    python benchmarks/sweep.py [--runs 4] [--tokens 100000] [--corpus DIR]

Part 1 stores synthetic runs (3 rows × 20 sources each, one transaction per run) and exports them.
Part 2 sweeps the same plan (default model d128-l3, context 256, batch 16, byte tokens, compile
off) with ``--workers 1 --threads 2`` and with ``--workers 2 --threads 1`` and prints tokens/s of
each (wall clock of the whole sweep, process start-up included). Prints a table; nothing is
asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from climb.data.store import RunStore
from climb.proxy.config import ModelConfig, TrainConfig
from climb.proxy.design import Plan, design_runs
from climb.proxy.executors import LocalExecutor
from climb.proxy.sweep import run_sweep


def bench_store(tmp: Path, n_runs: int = 500, n_sources: int = 20) -> None:
    sources = [f"s{k:02d}" for k in range(n_sources)]
    rng = np.random.default_rng(0)
    path = tmp / "bench.db"
    t0 = time.perf_counter()
    with RunStore(path) as store:
        for k in range(n_runs):
            p = rng.dirichlet(np.ones(n_sources))
            rows = []
            for frac in (0.25, 0.5, 1.0):
                row: dict[str, object] = {
                    "run": f"r{k}" if frac == 1 else f"r{k}@{int(1e6 * frac)}"
                }
                row.update(tokens=int(1e6 * frac), params=590_000, seed=0, final=frac == 1)
                row.update({f"p.{s}": float(v) for s, v in zip(sources, p)})
                row.update({f"loss.{s}": float(3 - v) for s, v in zip(sources, p)})
                rows.append(row)
            store.add_run(
                f"r{k}", rows, spec_hash=f"{k:016x}", spec={"run_id": f"r{k}"}, versions={}
            )
    write_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with RunStore(path, create=False) as store:
        table = store.to_run_table()
    read_s = time.perf_counter() - t0
    print(f"store: {n_runs} runs × 3 rows × {n_sources} sources, one transaction per run")
    print(f"  write  {n_runs / write_s:8.0f} runs/s  ({1e3 * write_s / n_runs:.2f} ms per run)")
    print(f"  export {len(table) / read_s:8.0f} rows/s  ({read_s:.2f} s for {len(table)} rows)")


def _corpus(tmp: Path) -> Path:
    root = tmp / "corpus"
    root.mkdir()
    for s, letters in {
        "de": "abcdefghiklmnorstuäöü",
        "en": "abcdefghilmnoprstuwy",
        "ru": "абвгдеиклмнопрстуя",
    }.items():
        rng = np.random.default_rng(len(letters))
        words = ["".join(rng.choice(list(letters), size=rng.integers(2, 8))) for _ in range(300)]
        docs = [" ".join(rng.choice(words, size=rng.integers(40, 120))) + "." for _ in range(600)]
        (root / f"{s}.txt").write_text("\n\n".join(docs), encoding="utf-8")
    return root


def bench_layouts(tmp: Path, n_runs: int, tokens: int, corpus: Path | None) -> None:
    if corpus is None:
        corpus = _corpus(tmp)
    sources = ["de", "en", "ru"]
    plan = design_runs(
        sources,
        [tokens],
        max(n_runs, 3),
        seed=0,
        model=ModelConfig(),
        train=TrainConfig(compile=False, bf16=False, checkpoints=(0.5,)),
        warn=False,
    )
    plan = Plan(plan.sources, plan.runs[:n_runs], plan.model, plan.train)
    print(
        f"\nsweep: {len(plan)} runs × {tokens:,} tokens, model d128-l3 (0.59M), byte tokens, compile off"
    )
    print(f"  {'layout':<22} {'wall s':>8} {'tokens/s':>10}")
    results = {}
    for workers, threads in ((1, 2), (2, 1)):
        store = tmp / f"w{workers}t{threads}.db"
        t0 = time.perf_counter()
        run_sweep(
            plan,
            store,
            corpus=corpus,
            executor=LocalExecutor(workers, threads=threads),
            progress=False,
        )
        wall = time.perf_counter() - t0
        results[(workers, threads)] = wall
        print(
            f"  {f'{workers} worker(s) × {threads} thread(s)':<22} {wall:8.1f} {len(plan) * tokens / wall:10,.0f}"
        )
    ratio = results[(1, 2)] / results[(2, 1)]
    print(f"  2×1 is {ratio:.2f}× the speed of 1×2")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=100_000)
    ap.add_argument("--corpus", type=Path, default=None)
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPU(s), python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        bench_store(Path(tmp))
        bench_layouts(Path(tmp), args.runs, args.tokens, args.corpus)


if __name__ == "__main__":
    main()
