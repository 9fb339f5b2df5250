"""How far down in share can the law be trusted? Proxies with one language at a trace share.

    python benchmarks/trace_shares.py                 # train (or resume) the runs, report
    python benchmarks/trace_shares.py --report-only   # report from the store as it is

The default demo's proxies have only four (run, target) pairs with ``0 < p < 1%`` (Korean at
0.23%, Russian at 0.43%), too few to judge the law there. This trains, with the fresh-clone
default demo's plan (model, WSD schedule, seed 0, corpus), mixtures that hold one language
``x`` at a trace share ``t`` and split the rest evenly over the other five: ``x`` ∈ {ru, ko, fr}
(its own script; its own script; a script shared with English), ``t`` ∈ {0.1%, 0.3%, 1%}, each
trained to 600k tokens with cooldown branches at 75k, 150k and 300k, into
``benchmarks/output/trace_shares/runs.db`` (resumable). The trace language's own tokens
``t·D`` then range from 75 to 6,000 bytes.

The default climb law (support-aware term, corpus byte frequencies) is fitted on the demo's 18
proxies (``benchmarks/output/demo-fresh-2026-12-01/runs.db``, budgets 300k and 600k) and predicts
every trace pair here; errors are reported by the trace language's own tokens ``t·D``. The pairs
of the other five languages (shares ≈ 20%) are the control.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import warnings
from pathlib import Path

import numpy as np

from climb.data.corpus import Corpus
from climb.data.runs import RunTable
from climb.data.store import RunStore
from climb.errors import ClimbWarning
from climb.laws import get_law
from climb.laws.climb.support import SupportProfile
from climb.proxy.design import Plan, PlannedRun
from climb.proxy.executors import LocalExecutor
from climb.proxy.sweep import run_sweep

HERE = Path(__file__).resolve().parent / "output"
TRACE_LANGUAGES = ("ru", "ko", "fr")
SHARES = (0.001, 0.003, 0.01)
BRANCHES = [75_000, 150_000, 300_000]
OWN_TOKENS = (0, 300, 1_000, 3_000, 10_000)
"""Bins of the trace language's own tokens ``t·D`` in the report."""


def trace_plan(demo_plan: Path) -> Plan:
    """The demo's plan with the trace-share runs instead of its proxies."""
    plan = Plan.load(demo_plan)
    others = {x: [s for s in plan.sources if s != x] for x in TRACE_LANGUAGES}
    plan.runs = [
        PlannedRun(f"trace-{x}-{t * 100:g}pct",
                   {x: t, **{s: round((1 - t) / len(others[x]), 6) for s in others[x]}},
                   600_000, "custom", BRANCHES, None)
        for x in TRACE_LANGUAGES for t in SHARES
    ]  # fmt: skip
    for r in plan.runs:  # shares sum to 1 after rounding
        top = max(r.mixture, key=lambda s: r.mixture[s])
        r.mixture[top] = round(r.mixture[top] + 1 - sum(r.mixture.values()), 6)
    plan.design = {"purpose": "one language at a trace share", "shares": list(SHARES)}
    return plan


def read(path: Path) -> RunTable:
    with warnings.catch_warnings(), RunStore(path, create=False) as rs:
        warnings.simplefilter("ignore", ClimbWarning)
        return rs.to_run_table()


def report(law: object, runs: RunTable) -> None:
    pred = law.predict(runs.p, runs.tokens)  # type: ignore[attr-defined]
    cols = [law.targets_.index(t) for t in runs.targets]  # type: ignore[attr-defined]
    err = pred[:, cols] - runs.loss
    print(
        f"{'pair':<10} {'share':>6} {'tokens':>9} {'own t·D':>8} {'observed':>9} {'predicted':>10}"
    )
    trace_own, trace_err, control = [], [], []
    for r in range(len(runs)):
        for k, x in enumerate(runs.targets):
            p = runs.p[r, runs.sources.index(x)]
            if not np.isfinite(err[r, k]):
                continue
            if p < 0.02:
                own = p * runs.tokens[r]
                trace_own.append(own)
                trace_err.append(err[r, k])
                print(f"{x:<10} {p:>6.2%} {runs.tokens[r]:>9,.0f} {own:>8,.0f} "
                      f"{runs.loss[r, k]:>9.2f} {pred[r, cols[k]]:>10.2f}")  # fmt: skip
            else:
                control.append(err[r, k])
    own, e = np.array(trace_own), np.array(trace_err)
    print(f"\n{'own tokens t·D':<18} {'pairs':>5} {'bias':>7} {'MAE':>6}")
    for lo, hi in itertools.pairwise(OWN_TOKENS):
        m = (own >= lo) & (own < hi)
        if m.any():
            print(f"{f'{lo:,}–{hi:,}':<18} {int(m.sum()):>5} {e[m].mean():>+7.2f} "
                  f"{np.abs(e[m]).mean():>6.2f}")  # fmt: skip
    c = np.array(control)
    print(f"{'control (p ≈ 20%)':<18} {c.size:>5} {c.mean():>+7.2f} {np.abs(c).mean():>6.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", type=Path, default=HERE / "demo-fresh-2026-12-01")
    ap.add_argument("--store", type=Path, default=HERE / "trace_shares" / "runs.db")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}")  # fmt: skip
    plan = trace_plan(args.demo / "plan.yaml")
    if not args.report_only:
        args.store.parent.mkdir(parents=True, exist_ok=True)
        plan.save(args.store.parent / "plan.yaml")
        run_sweep(plan, args.store, executor=LocalExecutor(workers=args.workers))
    proxies, runs = read(args.demo / "runs.db"), read(args.store)
    print(f"law: climb (support term) fitted on {args.demo / 'runs.db'} ({len(proxies)} rows); "
          f"trace runs: {args.store} ({len(set(runs.train_run))} of {len(plan.runs)} runs, "
          f"{len(runs)} rows); bits/byte")  # fmt: skip
    profile = SupportProfile.from_corpus(Corpus.open(None), list(proxies.sources))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        law = get_law("climb", seed=0, support=profile).fit(proxies)
    report(law, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
