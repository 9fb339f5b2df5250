"""How far down in share can the law be trusted? Proxies with one language at a trace share.

    python benchmarks/trace_shares.py                 # train (or resume) the runs, report
    python benchmarks/trace_shares.py --report-only   # report from the store as it is

The default demo's proxies have only four (run, target) pairs with ``0 < p < 1%`` (Korean at
0.23%, Russian at 0.43%), too few to judge the law there. This trains, with the fresh-clone
default demo's plan (model, WSD schedule, seed 0, corpus), mixtures that hold one language
``x`` at a trace share ``t`` and split the rest evenly over the other five: ``x`` ∈ {ru, ko, fr}
(its own script; its own script; a script shared with English; ``--languages hi,ja,en`` for a
second set), ``t`` ∈ {0.1%, 0.3%, 1%}, each
trained to 600k tokens with cooldown branches at 75k, 150k and 300k, into
``benchmarks/output/trace_shares/runs.db`` (resumable). The trace language's own tokens
``t·D`` then range from 75 to 6,000 bytes.

The default climb law (support-aware term, corpus byte frequencies) is fitted on the demo's 18
proxies (``benchmarks/output/demo-fresh-2026-12-01/runs.db``, budgets 300k and 600k) and predicts
every trace pair here, without a trace gate, with the plain one (:class:`PlainTraceGate`, defined
here: rejected, it gates French) and with the library's script-aware one
(``ClimbLaw(support_trace=T_0)``, laws/climb/support.py); errors are reported
by the trace language's own tokens ``t·D``, apart for the budgets inside the law's fitted range
(300k, 600k) and below it (75k, 150k: an extrapolation in D). The pairs of the other five
languages (shares ≈ 20%) are the control.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from climb.data.corpus import Corpus
from climb.data.runs import RunTable
from climb.data.store import RunStore
from climb.errors import ClimbWarning
from climb.laws.climb import ClimbLaw
from climb.laws.climb.support import SupportProfile, SupportTerm
from climb.proxy.design import Plan, PlannedRun
from climb.proxy.executors import LocalExecutor
from climb.proxy.sweep import run_sweep

HERE = Path(__file__).resolve().parent / "output"
TRACE_LANGUAGES = ("ru", "ko", "fr")
SHARES = (0.001, 0.003, 0.01)
BRANCHES = [75_000, 150_000, 300_000]
T0 = 1000.0
"""``T_0`` of the trace gates (byte tokens), chosen by CV on the demos' own proxies (their 4 trace
pairs: MAE 2.25 → 0.73, 1.75 → 0.47, 2.16 → 0.68 on the three sets, ``p ≥ 1%`` unchanged) before
these runs were trained."""


class PlainTraceGate(SupportTerm):
    """The rejected first candidate: the trace gate ``s_i = exp(−p_i D / T_0)`` where ``p_i > 0``
    without the library's script factor ``min(1, u_i^{−i} / τ)`` (laws/climb/support.py), so it
    also gates a language whose script the other sources cover."""

    def gate_weight(self, p: np.ndarray, tokens: np.ndarray | float) -> np.ndarray:
        p2 = np.atleast_2d(np.asarray(p, dtype=float))
        d = np.broadcast_to(np.asarray(tokens, dtype=float), (p2.shape[0],))
        own = np.where(self.own >= 0, p2[:, np.maximum(self.own, 0)], 0.0)
        trace = np.where(own > 0, np.exp(-np.minimum(own * d[:, None] / T0, 50.0)), 0.0)
        return np.where(own > 0, trace, super().gate_weight(p2, d))


def plain_trace_gate(**kw: Any) -> ClimbLaw:
    law = ClimbLaw(**kw)
    make = law._support_term
    law._support_term = lambda runs: PlainTraceGate(**vars(make(runs)))  # type: ignore[method-assign]
    return law


OWN_TOKENS = (0, 300, 1_000, 3_000, 10_000)
"""Bins of the trace language's own tokens ``t·D`` in the report."""

LAWS: dict[str, Any] = {
    "climb (no trace gate)": lambda profile: ClimbLaw(seed=0, support=profile, support_trace=None),
    "plain trace gate": lambda profile: plain_trace_gate(
        seed=0, support=profile, support_trace=None
    ),
    "script-aware (library)": lambda profile: ClimbLaw(seed=0, support=profile, support_trace=T0),
}
"""The laws compared: the support term without a trace gate, the plain trace gate
(:class:`PlainTraceGate`) and the library's script-aware one (``support_trace=T_0``)."""


def trace_plan(demo_plan: Path, languages: tuple[str, ...] = TRACE_LANGUAGES) -> Plan:
    """The demo's plan with the trace-share runs of ``languages`` instead of its proxies."""
    plan = Plan.load(demo_plan)
    others = {x: [s for s in plan.sources if s != x] for x in languages}
    plan.runs = [
        PlannedRun(f"trace-{x}-{t * 100:g}pct",
                   {x: t, **{s: round((1 - t) / len(others[x]), 6) for s in others[x]}},
                   600_000, "custom", BRANCHES, None)
        for x in languages for t in SHARES
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


def errors(law: object, runs: RunTable) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and errors (predicted − observed) of ``law`` on ``runs``: ``(n, T)`` each."""
    pred = law.predict(runs.p, runs.tokens)  # type: ignore[attr-defined]
    cols = [law.targets_.index(t) for t in runs.targets]  # type: ignore[attr-defined]
    return pred[:, cols], pred[:, cols] - runs.loss


def report(laws: dict[str, object], runs: RunTable, fitted: tuple[float, float]) -> None:
    """Each pair with the trace language, then bias / MAE by own tokens, for every law; budgets
    inside the laws' fitted range and below it are summarized apart."""
    out = {name: errors(law, runs) for name, law in laws.items()}
    names = list(laws)
    print(f"{'pair':<5} {'share':>6} {'tokens':>9} {'own t·D':>8} {'observed':>9} "
          + " ".join(f"{n[:22]:>22}" for n in names))  # fmt: skip
    rows: list[tuple[float, bool, bool, dict[str, float]]] = []  # own, trace, inside, errors
    for r in range(len(runs)):
        inside = fitted[0] - 1 <= runs.tokens[r] <= fitted[1] + 1
        for k, x in enumerate(runs.targets):
            p = runs.p[r, runs.sources.index(x)]
            if not np.isfinite(runs.loss[r, k]):
                continue
            errs = {n: float(out[n][1][r, k]) for n in names}
            rows.append((p * runs.tokens[r], p < 0.02, inside, errs))
            if p < 0.02:
                print(f"{x:<5} {p:>6.2%} {runs.tokens[r]:>9,.0f} {p * runs.tokens[r]:>8,.0f} "
                      f"{runs.loss[r, k]:>9.2f} "
                      + " ".join(f"{out[n][0][r, k]:>22.2f}" for n in names))  # fmt: skip
    for inside in (True, False):
        where = (f"budgets inside the fitted range ({fitted[0]:,.0f}–{fitted[1]:,.0f})" if inside
                 else "budgets below it (extrapolation in D)")  # fmt: skip
        print(f"\n{where}: bias / MAE")
        print(f"{'own tokens t·D':<22} {'pairs':>5} " + " ".join(f"{n[:22]:>22}" for n in names))
        bins = [(f"{lo:,}–{hi:,}", True, lo, hi) for lo, hi in itertools.pairwise(OWN_TOKENS)]
        every = [("all trace pairs", True, 0, np.inf), ("control (p ≈ 20%)", False, 0, np.inf)]
        for label, trace, lo, hi in [*bins, *every]:
            sel = [e for own, t, i, e in rows if i == inside and t == trace and lo <= own < hi]
            if sel:
                cells = [f"{np.mean([e[n] for e in sel]):+.2f} / {np.mean([abs(e[n]) for e in sel]):.2f}"
                         for n in names]  # fmt: skip
                print(f"{label:<22} {len(sel):>5} " + " ".join(f"{c:>22}" for c in cells))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", type=Path, default=HERE / "demo-fresh-2026-12-01")
    ap.add_argument("--store", type=Path, default=HERE / "trace_shares" / "runs.db")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument(
        "--languages", default=",".join(TRACE_LANGUAGES),
        help="the trace languages (default ru,ko,fr; a second set: hi,ja,en)",
    )  # fmt: skip
    args = ap.parse_args()
    args.demo, args.store = (Path(os.path.relpath(x)) for x in (args.demo, args.store))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}")  # fmt: skip
    plan = trace_plan(args.demo / "plan.yaml", tuple(args.languages.split(",")))
    if not args.report_only:
        args.store.parent.mkdir(parents=True, exist_ok=True)
        plan.save(args.store.parent / "plan.yaml")
        run_sweep(plan, args.store, executor=LocalExecutor(workers=args.workers))
    proxies, runs = read(args.demo / "runs.db"), read(args.store)
    print(f"law: climb (support term) fitted on {args.demo / 'runs.db'} ({len(proxies)} rows); "
          f"trace runs: {args.store} ({len(set(runs.train_run))} of {len(plan.runs)} runs, "
          f"{len(runs)} rows); bits/byte")  # fmt: skip
    profile = SupportProfile.from_corpus(Corpus.open(None), list(proxies.sources))
    laws = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        for name, make in LAWS.items():
            laws[name] = make(profile).fit(proxies)
    report(laws, runs, (float(proxies.tokens.min()), float(proxies.tokens.max())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
