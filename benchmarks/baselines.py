"""Baseline laws (msl, dml, regression) on the public RegMix sweeps: Spearman ρ and fit time.

Fits each law on the 512 RegMix 1M training runs (17 sources, 13 targets) and reports the
Spearman rank correlation between predicted and measured validation loss on the held-out RegMix
test files (1M, 60M and 1B models), for ``pile_cc`` and averaged over the 13 targets. Fit times
are wall-clock seconds of ``law.fit`` (median of ``--repeats``) and process CPU seconds (mean).

    python benchmarks/baselines.py [--laws msl dml regression] [--repeats 3] [--cv-early-stopping]

``regmix_spearman(law)`` is importable (e.g. by ``benchmarks/regmix.py``).
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from climb.data.runs import RunTable, read_regmix
from climb.errors import ClimbWarning
from climb.laws import get_law
from climb.laws.base import Law

TEST_FILES = ("1m", "60m", "1b")
REFERENCE_LIGHTGBM = {"1m": 0.990, "60m": 0.986, "1b": 0.962}
"""RegMix's reported LightGBM ρ on pile_cc (for comparison)."""


def regmix_spearman(law: Law, target: str = "pile_cc") -> dict[str, dict[str, float]]:
    """``{test file: {"target": ρ on target, "mean": mean ρ over targets}}`` of a fitted law."""
    out: dict[str, dict[str, float]] = {}
    for size in TEST_FILES:
        test = read_regmix("test", size)
        pred, obs = law.predict_runs(test), law.observed(test)
        rhos = [float(spearmanr(pred[:, j], obs[:, j]).statistic) for j in range(obs.shape[1])]
        out[size] = {"target": rhos[law.targets_.index(target)], "mean": float(np.mean(rhos))}
    return out


def fit_timed(name: str, runs: RunTable, repeats: int, **hyper: Any) -> tuple[Law, float]:
    """Fit ``repeats`` times; the last law and the median wall-clock seconds."""
    times, law = [], None
    for _ in range(repeats):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ClimbWarning)
            t0 = time.perf_counter()
            law = get_law(name, seed=0, **hyper).fit(runs)
            times.append(time.perf_counter() - t0)
    assert law is not None
    return law, float(np.median(times))


def cv_early_stopping(runs: RunTable, folds: int = 5, target: str = "pile_cc") -> None:
    """Print 5-fold CV Spearman ρ of ``regression`` with and without RegMix's early stopping."""
    order = np.random.default_rng(1).permutation(len(runs))
    parts = np.array_split(order, folds)
    for hyper in ({"early_stopping_rounds": None}, {"early_stopping_rounds": 3}):
        rho_t, rho_m = [], []
        for part in parts:
            law = get_law("regression", seed=0, **hyper).fit(runs.subset(np.setdiff1d(order, part)))
            held = runs.subset(part)
            pred, obs = law.predict_runs(held), law.observed(held)
            rhos = [spearmanr(pred[:, j], obs[:, j]).statistic for j in range(obs.shape[1])]
            rho_t.append(rhos[law.targets_.index(target)])
            rho_m.append(np.mean(rhos))
        print(
            f"regression {hyper}: {folds}-fold CV on train/1m, ρ {target} {np.mean(rho_t):.4f}, "
            f"mean ρ {np.mean(rho_m):.4f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--laws", nargs="+", default=["msl", "dml", "regression"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--cv-early-stopping", action="store_true",
        help="also cross-validate regression with / without early stopping (slow)",
    )  # fmt: skip
    args = ap.parse_args()
    train = read_regmix("train", "1m")
    print(f"machine: {platform.machine()}, {platform.python_version()}, numpy {np.__version__}")
    print(f"fit on RegMix train/1m: {len(train)} runs × {len(train.targets)} targets")
    header = "law         fit_s  cpu_s  " + "  ".join(
        f"ρ_pile_cc/{s:<3} ρ_mean/{s:<3}" for s in TEST_FILES
    )
    print(header)
    for name in args.laws:
        cpu0 = time.process_time()
        law, secs = fit_timed(name, train, args.repeats)
        cpu = (time.process_time() - cpu0) / args.repeats
        res = regmix_spearman(law)
        cells = "  ".join(f"{res[s]['target']:13.4f} {res[s]['mean']:10.4f}" for s in TEST_FILES)
        print(f"{name:<10} {secs:6.2f} {cpu:6.2f}  {cells}")
    ref = "  ".join(f"{s}: {v:.3f}" for s, v in REFERENCE_LIGHTGBM.items())
    print(f"reference (RegMix paper, LightGBM, pile_cc): {ref}")
    if args.cv_early_stopping:
        cv_early_stopping(train)


if __name__ == "__main__":
    main()
