"""Seed noise of the losses a law must predict: how well can *any* law do where ``p_i = 0``?

    python benchmarks/absent_noise.py                  # train (or resume) the replicates, report
    python benchmarks/absent_noise.py --report-only    # report from the stores as they are

The default demo's proxies (``benchmarks/output/demo-default/``: its plan and ``runs.db``, seed 0,
from a fresh-clone ``climb demo``) are retrained for six of their mixtures with seeds 1 and 2
(initialization and data order; same model, schedule, budgets and corpus) into
``benchmarks/output/absent_noise/runs.db`` (resumable: finished runs are never retrained).
For every (mixture, budget, target) measured under ≥ 2 seeds, the spread between seeds is the
part of a loss no law of the mixture and budget can predict. Reported by the target's own share
in the mixture (``p = 0``: never trained on, split by the support term's gate into another script
and a seen script; ``p ≥ 1%``):

* the pooled within-mixture standard deviation ``σ`` (``k − 1`` degrees of freedom per cell);
* the **noise floor of the MAE**: the mean absolute error of the best possible law, which
  predicts each mixture's mean over seeds exactly, ``E|x − μ| = σ √(2/π)`` for normal noise; also
  measured without the normal assumption as ``√((k−1)/k) · mean |x_s − mean of the other seeds|``.

With ``--law``, the demo's climb law (its laws stage's hyper-parameters: the corpus' unique tokens
and byte-frequency support profile; 5 folds, whole training runs held out, seed 0), and the same
law without the ceilings of the seen part (``support_ceiling=False``: the law before them), are
cross-validated on the seed-0 proxies, and their out-of-fold predictions are scored by the same
classes against seed 0 (the demo's CV) and against each cell's **mean over seeds** (the error of
the law itself, with most of the seed noise averaged out: the mean of k seeds still carries
``σ/√k``). Each law is also cross-validated on each replicate seed's proxies alone (the same
mixtures with other noise: a check of a choice made on seed 0), and on every seed's runs pooled
(a mixture's seeds held out together): does training each mixture with more seeds help the law?

Compare with the law's cross-validated MAE on the same proxies (``benchmarks/law_variants.py``).
Only the rows of this plan's runs are read from the store (it also holds two runs of a first trial
whose mixtures were rounded to 3 decimals; they are ignored).
"""

from __future__ import annotations

import argparse
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
from climb.laws.climb.support import SEEN_COUNT, UNSEEN_GATE, SupportProfile
from climb.proxy.design import Plan, PlannedRun
from climb.proxy.executors import LocalExecutor
from climb.proxy.sweep import run_sweep

HERE = Path(__file__).resolve().parent / "output"
MIXTURES = {  # six of the default demo's 18 runs: four monolingual, two with a script left out
    "mono-en": "wsd-mono-en",
    "mono-ru": "wsd-mono-ru",
    "mono-ja": "wsd-mono-ja",
    "mono-hi": "wsd-mono-hi",
    "dir-nat-000": "wsd-dir-nat-000",
    "dir-nat-004": "wsd-dir-nat-004",
}
"""Replicate name → the demo plan's run id (the mixture is read from the demo's plan)."""


def replicate_plan(demo_plan: Path, seeds: list[int], every: bool = False) -> Plan:
    """The demo's plan (model, training, budgets) with the runs of :data:`MIXTURES` (``every``:
    all of the plan's runs) at each seed."""
    plan = Plan.load(demo_plan)
    demo = {r.run_id: r for r in plan.runs}
    mixtures = {rid: rid for rid in demo} if every else MIXTURES
    plan.runs = [PlannedRun(f"{name}-s{seed}", demo[rid].mixture, demo[rid].tokens, "custom",
                            demo[rid].branches, seed)
                 for seed in seeds for name, rid in mixtures.items()]  # fmt: skip
    plan.design = {"purpose": "seed replicates of the default demo's proxies", "seeds": seeds}
    return plan


def read(path: Path) -> RunTable:
    with warnings.catch_warnings(), RunStore(path, create=False) as rs:
        warnings.simplefilter("ignore", ClimbWarning)
        return rs.to_run_table()


def cells(tables: list[RunTable], sources: list[str]) -> dict[tuple, list[np.ndarray]]:
    """Rows grouped by (mixture at 4 decimals, as plans store it; budget): one loss vector per seed."""
    out: dict[tuple, list[np.ndarray]] = {}
    for rt in tables:
        for r in range(len(rt)):
            mix = tuple(round(float(rt.p[r, rt.sources.index(s)]) if s in rt.sources else 0.0, 4)
                        for s in sources)  # fmt: skip
            loss = np.array([rt.loss[r, rt.targets.index(t)] for t in sources])
            out.setdefault((mix, float(rt.tokens[r])), []).append(loss)
    return {k: v for k, v in out.items() if len(v) >= 2}


def gate(mix: tuple, tokens: float, freq: np.ndarray) -> np.ndarray:
    """The default support term's gate ``s_i = min(1, u_i / τ)`` of each target in one cell
    (``freq``: the sources' byte frequencies, targets = sources; laws/climb/support.py)."""
    p = np.array(mix)
    u = np.exp(-(tokens / SEEN_COUNT) * (p @ freq)) @ freq.T
    return np.where(p > 0, 0.0, np.minimum(np.clip(u, 0.0, 1.0) / UNSEEN_GATE, 1.0))


CLASSES = {  # (own share, gate) → selected
    "p = 0": lambda p, s: p == 0,
    "  unseen script (s = 1)": lambda p, s: (p == 0) & (s >= 1.0),
    "  seen script (s < 1)": lambda p, s: (p == 0) & (s < 1.0),
    "p ≥ 1%": lambda p, s: p >= 0.01,
}
"""Pairs by the target's own share, and where ``p = 0`` by the support gate: a text ≥ 30% made of
bytes the run never saw (``s = 1``: another script) or not (e.g. English left out of a French
run)."""


def floor(groups: dict[tuple, list[np.ndarray]], freq: np.ndarray) -> None:
    print(f"{'pairs':<24} {'cells':>5} {'seeds':>6} {'σ pooled':>9} {'floor σ√(2/π)':>14} "
          f"{'floor (LOSO)':>13} {'max spread':>11}")  # fmt: skip
    for name, sel in CLASSES.items():
        ss, dof, loso, n_cells, seeds, spread = 0.0, 0, [], 0, [], 0.0
        for (mix, tokens), losses in groups.items():
            x = np.array(losses)  # (k, T)
            k = x.shape[0]
            m = sel(np.array(mix), gate(mix, tokens, freq)) & np.isfinite(x).all(axis=0)
            if not m.any():
                continue
            x = x[:, m]
            n_cells += int(m.sum())
            seeds.append(k)
            ss += float(((x - x.mean(axis=0)) ** 2).sum())
            dof += (k - 1) * x.shape[1]
            others = (x.sum(axis=0) - x) / (k - 1)
            loso.extend((np.sqrt((k - 1) / k) * np.abs(x - others)).ravel())
            spread = max(spread, float(np.ptp(x, axis=0).max()))
        sigma = np.sqrt(ss / dof)
        print(f"{name:<24} {n_cells:>5} {np.mean(seeds):>6.1f} {sigma:>9.3f} "
              f"{sigma * np.sqrt(2 / np.pi):>14.3f} {np.mean(loso):>13.3f} {spread:>11.3f}")  # fmt: skip


def cell_key(rt: RunTable, r: int, sources: list[str]) -> tuple:
    mix = tuple(round(float(rt.p[r, rt.sources.index(s)]) if s in rt.sources else 0.0, 4)
                for s in sources)  # fmt: skip
    return mix, float(rt.tokens[r])


LAW_VARIANTS = {"climb (default: ceilings)": {}, "climb, no ceilings": {"support_ceiling": False}}
"""The demo's climb law, and the same without the ceilings of the seen part (the law before them)."""


def law_report(
    demo: RunTable, reps: RunTable, groups: dict[tuple, list[np.ndarray]], freq: np.ndarray,
    sources: list[str], jobs: int,
) -> None:  # fmt: skip
    """The demo's climb law (each of :data:`LAW_VARIANTS`), cross-validated on seed 0, on each
    replicate seed alone, and on every seed pooled, scored against single seeds and against the
    cell means over seeds, by pair class."""
    from climb.demo import DemoContext, DemoSettings, _support_hyper, grouped_cross_validate

    ctx = DemoContext(DemoSettings(), Path("."), None, None, lambda _m: None, progress=False)
    hyper = _support_hyper(ctx, demo)
    pooled = RunTable.concat([demo, reps]) if len(reps) else demo
    mixture_of = np.array([str(cell_key(pooled, r, sources)[0]) for r in range(len(pooled))])
    seeds = sorted({t.rsplit("-s", 1)[1] for t in reps.train_run}) if len(reps) else []
    alone = {f"s{k}": reps.subset(np.flatnonzero([t.endswith(f"-s{k}") for t in reps.train_run]))
             for k in seeds}  # fmt: skip
    print("\nthe demo's climb law (5-fold CV, a run's rows held out together), MAE in bits/byte;")
    print("'seed k alone': CV on that seed's proxies only (the same mixtures, other noise):")
    head = (f"{'pairs':<24} {'n':>4} {'fit seed 0: vs seed 0':>22} {'vs mean':>8} "
            + "".join(f" {f'seed {k} alone':>13}" for k in seeds)
            + f" {'fit all seeds: vs each':>23} {'vs mean':>8}")  # fmt: skip
    for label, extra in LAW_VARIANTS.items():
        print(f"\n{label}:\n{head}")
        cvs = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ClimbWarning)
            cvs["seed0"] = (demo, grouped_cross_validate("climb", demo, 5, seed=0, fold_jobs=jobs,
                                                         **hyper, **extra))  # fmt: skip
            for k, rt in alone.items():
                cvs[k] = (rt, grouped_cross_validate("climb", rt, 5, seed=0, fold_jobs=jobs,
                                                     **hyper, **extra))  # fmt: skip
            cvs["pooled"] = (pooled, grouped_cross_validate("climb", pooled, 5, seed=0,
                                                            groups=mixture_of, fold_jobs=jobs,
                                                            **hyper, **extra))  # fmt: skip
        for name, sel in CLASSES.items():
            cols = []
            n = 0
            for key, (rt, cv) in cvs.items():
                single, vs_mean = [], []
                for r in range(len(rt)):
                    cell = cell_key(rt, r, sources)
                    if cell not in groups:
                        continue
                    mean = np.mean(groups[cell], axis=0)
                    p = np.array(cell[0])
                    m = sel(p, gate(cell[0], cell[1], freq))
                    for k, t in enumerate(sources):
                        kk = rt.targets.index(t)
                        if m[k] and np.isfinite(rt.loss[r, kk]) \
                                and np.isfinite(cv.predictions[r, kk]):  # fmt: skip
                            single.append(abs(cv.predictions[r, kk] - rt.loss[r, kk]))
                            vs_mean.append(abs(cv.predictions[r, kk] - mean[k]))
                cols.append(float(np.mean(single)))
                if key in ("seed0", "pooled"):
                    cols.append(float(np.mean(vs_mean)))
                n = n or len(single)
            mid = "".join(f" {c:>13.3f}" for c in cols[2:-2])
            print(f"{name:<24} {n:>4} {cols[0]:>22.3f} {cols[1]:>8.3f}{mid} {cols[-2]:>23.3f} "
                  f"{cols[-1]:>8.3f}")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", type=Path, default=HERE / "demo-default",
                    help="folder with the default demo's plan.yaml and runs.db (seed 0)")  # fmt: skip
    ap.add_argument("--store", type=Path, default=HERE / "absent_noise" / "runs.db")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--all",
        action="store_true",
        help="replicate every run of the demo's plan, not only the six of MIXTURES",
    )
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument(
        "--law",
        action="store_true",
        help="also score the demo's climb law against single seeds and seed means",
    )
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}")  # fmt: skip
    plan = replicate_plan(args.demo / "plan.yaml", args.seeds, args.all)
    if not args.report_only:
        args.store.parent.mkdir(parents=True, exist_ok=True)
        plan.save(args.store.parent / "plan.yaml")
        run_sweep(plan, args.store, executor=LocalExecutor(workers=args.workers))
    demo, reps = read(args.demo / "runs.db"), read(args.store)
    ids = {r.run_id for r in plan.runs}
    reps = reps.subset(np.flatnonzero([t in ids for t in reps.train_run]))
    sources = list(plan.sources)
    groups = cells([demo, reps], sources)
    n_reps = len(set(reps.groups().tolist())) if len(reps) else 0
    here = Path.cwd()
    demo_db, store = (os.path.relpath(x, here) for x in (args.demo / "runs.db", args.store))
    print(f"seed 0: {demo_db} ({len(demo)} rows); seeds {args.seeds}: {store} "
          f"({n_reps} of {len(plan.runs)} runs trained); {len(groups)} (mixture, budget) cells "
          f"with ≥ 2 seeds; losses in bits/byte")  # fmt: skip
    profile = SupportProfile.from_corpus(Corpus.open(None), sources)  # the demo's corpus
    floor(groups, profile.rows(sources))
    if args.law:
        law_report(demo, reps, groups, profile.rows(sources), sources, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
