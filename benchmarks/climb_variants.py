"""Selection evidence for the Climb law's transfer: linear ``r = W p`` vs saturating ``φ_η``.

    python benchmarks/climb_variants.py [--laws climb,climb-msl] [--folds 5] [--seed 0]

For each law and ``transfer`` in (linear, saturating): k-fold cross-validation on the RegMix
*training* runs (train 1M: 512 runs, 17 sources, 13 targets) — per-target Spearman ρ and MAE of
the pooled out-of-fold predictions, and their mean over targets. This is what selects the variant
(CLIMB.md: alternatives are selected by held-out prediction error on the training runs). The
held-out RegMix test sets are printed after it for information only (fit on all 512 runs; ρ of
``pile_cc`` on test 1M / 60M / 1B) together with the fit wall time.

    r_i = p_i + Σ_{j≠i} W_ij φ_{η_i}(p_j),   φ_η(p) = (p + ε)^η − ε^η   (linear: η = 1)
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import sys
import time
import warnings

from climb.data.runs import read_regmix
from climb.errors import ClimbWarning
from climb.evaluation.cv import CVResult, cross_validate
from climb.evaluation.metrics import evaluate
from climb.laws import get_law

TRANSFERS = ("linear", "saturating")
TESTS = ("1m", "60m", "1b")
FOCUS = "pile_cc"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--laws", default="climb", help="comma-separated climb-family laws")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0, help="fold shuffling and fit seed")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f} (shared machine: timings are noisy)")  # fmt: skip
    train = read_regmix("train", "1m")
    tests = {s: read_regmix("test", s) for s in TESTS}
    print(
        f"train 1m: {len(train)} runs, {len(train.sources)} sources, {len(train.targets)} targets"
    )
    laws = [n.strip() for n in args.laws.split(",") if n.strip()]

    for name in laws:
        cv: dict[str, CVResult] = {}
        cv_secs: dict[str, float] = {}
        for tr in TRANSFERS:
            t0 = time.perf_counter()
            factory = functools.partial(get_law, name, seed=args.seed, transfer=tr)
            cv[tr] = cross_validate(factory, train, folds=args.folds, seed=args.seed)
            cv_secs[tr] = time.perf_counter() - t0
        print()
        print(f"{name}: {args.folds}-fold CV on train 1m (seed {args.seed}), out-of-fold metrics")
        head = (f"{'target':<16} {'ρ linear':>9} {'ρ satur.':>9} {'Δρ':>8} | "
                f"{'MAE lin.':>9} {'MAE sat.':>9} | {'η (all runs)':>12}")  # fmt: skip
        print(head)
        print("-" * len(head))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ClimbWarning)
            t0 = time.perf_counter()
            full_sat = get_law(name, seed=args.seed, transfer="saturating").fit(train)
            sat_secs = time.perf_counter() - t0
            t0 = time.perf_counter()
            full_lin = get_law(name, seed=args.seed, transfer="linear").fit(train)
            lin_secs = time.perf_counter() - t0
        eta = dict(zip(full_sat.targets_, full_sat.eta_))  # type: ignore[attr-defined]
        better = 0
        for t in train.targets:
            a, b = cv["linear"].per_target[t], cv["saturating"].per_target[t]
            better += b["spearman"] > a["spearman"]
            print(f"{t:<16} {a['spearman']:>9.4f} {b['spearman']:>9.4f} "
                  f"{b['spearman'] - a['spearman']:>+8.4f} | {a['mae']:>9.4f} {b['mae']:>9.4f} | "
                  f"{eta[t]:>12.3f}")  # fmt: skip
        a, b = cv["linear"].overall, cv["saturating"].overall
        print("-" * len(head))
        print(f"{'mean':<16} {a['spearman']:>9.4f} {b['spearman']:>9.4f} "
              f"{b['spearman'] - a['spearman']:>+8.4f} | {a['mae']:>9.4f} {b['mae']:>9.4f} |")  # fmt: skip
        print(
            f"saturating has the higher CV ρ on {better} of {len(train.targets)} targets; "
            f"CV wall s: linear {cv_secs['linear']:.1f}, saturating {cv_secs['saturating']:.1f}"
        )
        print()
        print(f"{name} fitted on all 512 training runs (information only, not used to select):")
        for label, law, secs in (
            ("linear", full_lin, lin_secs),
            ("saturating", full_sat, sat_secs),
        ):
            rho = {s: evaluate(law, t).targets[FOCUS]["spearman"] for s, t in tests.items()}
            print(
                f"  {label:<11} fit {secs:5.2f} s   test ρ {FOCUS}: "
                + "  ".join(f"{s} {v:.4f}" for s, v in rho.items())
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
