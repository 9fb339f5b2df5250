"""How much the demo's cross-validated errors move with the split of the runs into folds.

    python benchmarks/cv_repeats.py                          # fresh default demo, 10 splits
    python benchmarks/cv_repeats.py --scenario transfer --laws climb climb-msl isolated

The README quotes each law's CV error from one split (seed 0). Here every law of the demo's laws
stage (the stage's hyper-parameters: the corpus' unique tokens and byte-frequency support profile
of the embedded corpus, or with ``--scenario transfer`` the transfer demo's runs and derived corpus
with Catalan capped, as ``bootstrap.py`` builds them; 5 folds, a training run's rows held out together) is cross-validated over
``--repeats`` splits (seeds 0, 1, …; :func:`climb.evaluation.cv.repeated_cross_validate`, the law
the same in each). Printed per law: the MAE's mean ± std [min, max] over the splits, overall and
by the target's own share; then, per pair of laws, in how many splits the first has the lower
MAE where p ≥ 1% and where p = 0 (is the ranking of two laws a property of the laws or of the
split?).
"""

from __future__ import annotations

import argparse
import functools
import inspect
import itertools
import os
import platform
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from climb.data.store import RunStore
from climb.demo import DemoContext, DemoSettings, _support_hyper
from climb.errors import ClimbWarning
from climb.evaluation.cv import RepeatedCV, repeated_cross_validate
from climb.laws import get_law, law_class

HERE = Path(__file__).resolve().parent / "output"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=HERE / "demo-fresh-2026-12-01" / "runs.db")
    ap.add_argument("--scenario", choices=("transfer",),
                    help="the transfer demo's runs and corpus instead of --runs")  # fmt: skip
    ap.add_argument("--laws", nargs="+",
                    default=["climb", "climb-msl", "isolated", "msl", "dml", "regression"])  # fmt: skip
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=-1)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}")  # fmt: skip
    warnings.simplefilter("ignore", ClimbWarning)
    if args.scenario:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bootstrap import STORES, demo_case

        tmp = tempfile.TemporaryDirectory()
        case = demo_case(args.scenario, Path(tmp.name))
        runs, stage, args.runs = case.runs, case.hyper, STORES[args.scenario]
    else:
        with RunStore(args.runs, create=False) as rs:
            runs = rs.to_run_table()
        ctx = DemoContext(DemoSettings(), Path("."), None, None, lambda _m: None, progress=False)
        stage = _support_hyper(ctx, runs)
    seeds = list(range(args.repeats))
    groups = np.array(runs.train_run)
    print(f"runs: {os.path.relpath(args.runs)} ({len(runs)} rows, {runs.n_train_runs} training "
          f"runs); {args.folds}-fold CV over {args.repeats} splits (seeds 0–{seeds[-1]}), MAE in "
          "bits/byte: mean ± std [min, max]")  # fmt: skip
    reps: dict[str, RepeatedCV] = {}
    for name in args.laws:
        accepted = inspect.signature(law_class(name).__init__).parameters
        hyper = {k: v for k, v in stage.items() if k in accepted}
        factory = functools.partial(get_law, name, seed=0, **hyper)
        reps[name] = repeated_cross_validate(factory, runs, args.folds, seeds, groups,
                                             fold_jobs=args.jobs)  # fmt: skip
        print(f"\n{name}")
        print("\n".join(reps[name].summary_lines()[1:]))
    print("\nthe first law's MAE is lower in … of the splits:")
    for a, b in itertools.combinations(args.laws, 2):
        parts = []
        for k, label in (("main", "p ≥ 1%"), ("zero", "p = 0")):
            ea = np.array([c.by_share[k]["mae"] for c in reps[a].splits])
            eb = np.array([c.by_share[k]["mae"] for c in reps[b].splits])
            parts.append(f"{label} {int((ea < eb).sum())}/{len(seeds)}")
        print(f"  {a} vs {b}: " + ", ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
