"""Cost of true budgets: one WSD run with cooldown branches vs one cosine run of the largest budget.

The demo's proxy setting (d128 L3 byte model, batch 16 × context 256, 1 torch thread, the six demo
languages of the embedded corpus at equal shares, 32 KiB of held-out text per language) trained
three ways on the same mixture:

* ``cosine``: one cosine run of ``D_2`` with a checkpoint at ``D_1`` (the demo before WSD: two
  rows, only the last a true budget);
* ``wsd``: one WSD run of ``D_2`` with a cooldown branch at ``D_1`` (two true-budget rows);
* ``wsd-plain``: one WSD run of ``D_2`` without branches (what the branch costs on top).

It prints wall and CPU seconds per run (CPU time of this process is robust to a busy machine),
the ratio to ``cosine``, the tokens each trained (``D_2 + cooldown_frac·D_1`` for ``wsd``) and the
losses of every row. Repeats alternate the three and keep the best time of each.

    python benchmarks/wsd.py                 # 300k / 600k tokens, eager fp32, 2 repeats
    python benchmarks/wsd.py --quick         # 60k / 120k tokens, 1 repeat
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from climb.data.corpus import Corpus
from climb.proxy.config import ModelConfig, RunSpec, TrainConfig
from climb.proxy.train import run_phases, train_run

LANGS = ("en", "fr", "ru", "ja", "ko", "hi")


def spec(kind: str, d1: int, d2: int, compile_: bool) -> RunSpec:
    base = TrainConfig(
        compile=compile_, bf16=compile_, eval_bytes=32768, threads=1, device="cpu", seed=0
    )
    train = {
        "cosine": base.model_copy(update={"checkpoints": (d1 / d2,)}),
        "wsd": base.model_copy(update={"schedule": "wsd", "checkpoints": ()}),
        "wsd-plain": base.model_copy(update={"schedule": "wsd", "checkpoints": ()}),
    }[kind]
    return RunSpec(
        run_id=kind,
        mixture={s: 1 / len(LANGS) for s in LANGS},
        tokens=d2,
        branches=(d1,) if kind == "wsd" else (),
        model=ModelConfig(),
        train=train,
    )


def trained_tokens(s: RunSpec) -> int:
    """Tokens the run trains on: the main run plus every branch's cooldown."""
    steps, phases = run_phases(s)
    per_step = s.train.batch_size * s.model.context
    extra = sum(ph.end - ph.start for ph in phases if ph.branch)
    return (steps + extra) * per_step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="60k/120k tokens, one repeat")
    ap.add_argument("--tokens", type=int, nargs=2, default=None, metavar=("D1", "D2"))
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--compile", action="store_true", help="torch.compile + bf16 (as the demo)")
    args = ap.parse_args()
    d1, d2 = args.tokens or ((60_000, 120_000) if args.quick else (300_000, 600_000))
    repeats = args.repeats or (1 if args.quick else 2)
    corpus = Corpus.open()
    torch.set_num_threads(1)
    print(
        f"# WSD cost: torch {torch.__version__}, {platform.machine()}, 1 thread, d128 L3, "
        f"batch 16 x context 256, D1 = {d1:,}, D2 = {d2:,}, "
        f"{'compile+bf16' if args.compile else 'eager fp32'}, {repeats} repeat(s)"
    )
    best: dict[str, tuple[float, float]] = {}
    rows: dict[str, list[dict[str, object]]] = {}
    kinds = ("cosine", "wsd", "wsd-plain")
    for _ in range(repeats):
        for kind in kinds:
            s = spec(kind, d1, d2, args.compile)
            w0, c0 = time.perf_counter(), time.process_time()
            rows[kind] = train_run(s, corpus)
            w, c = time.perf_counter() - w0, time.process_time() - c0
            old = best.get(kind, (float("inf"), float("inf")))
            best[kind] = (min(old[0], w), min(old[1], c))
    print(f"{'run':<10} {'trained tokens':>14} {'wall s':>8} {'cpu s':>8} {'cpu / cosine':>12}")
    for kind in kinds:
        w, c = best[kind]
        print(
            f"{kind:<10} {trained_tokens(spec(kind, d1, d2, args.compile)):>14,} {w:>8.1f} "
            f"{c:>8.1f} {c / best['cosine'][1]:>12.3f}"
        )
    print("rows (mean bits/byte over the six languages):")
    for kind in kinds:
        for r in rows[kind]:
            mean = sum(float(r[f"loss.{s}"]) for s in LANGS) / len(LANGS)  # type: ignore[arg-type]
            print(
                f"  {kind:<10} {r['run']!s:<18} tokens {r['tokens']!s:>7} "
                f"true_budget {r['true_budget']!s:<5} mean loss {mean:.4f}"
            )


if __name__ == "__main__":
    main()
