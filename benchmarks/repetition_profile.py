"""The λ profile of the repetition term: what its refinement between grid points costs and changes.

    python benchmarks/repetition_profile.py            # about 5 min on 2 cores

When the runs repeat data, the climb law profiles the decay ``λ`` of repeated epochs: one
whole-law fit per ``λ`` of a 13-point grid, then a bounded Brent refinement between the best
point's neighbours (laws/climb/repetition.py). Those fits are most of the transfer demo's
laws, allocation and bootstrap time. Compared in one run, on the same data:

* **before**: bounded Brent between the best grid point's neighbours to ``ln λ`` ± 0.02 (about 8
  more whole-law fits; the law up to 2026-12-01);
* **now** (the default, ``PROFILE_REFINE = "parabola"``): one fit at the vertex of the parabola
  in ``ln λ`` through the best grid point and its neighbours.

On the transfer demo's proxies (``output/demo-transfer-2026-12-01/``, its derived corpus with
Catalan capped to 12,088 bytes, the demo's law) each setting's full fit (seconds: the median of
3; ``λ``; total Huber cost), its allocation at the demo's ``D*`` with the data caps, and its
5-fold CV (seed 0, a run's rows held out together; MAE by own share). On simulated laws with
repeated data (``random_climb_law``; noise 0.3%): ``λ̂`` against the true ``λ``, and the mean
relative error against the noiseless truth on new mixtures that repeat data heavily.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from climb.allocation.solve import allocate
from climb.errors import ClimbWarning
from climb.evaluation.cv import cross_validate
from climb.laws import get_law
from climb.laws.climb import estimators
from climb.laws.simulate import random_climb_law, simulate_runs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bootstrap import demo_case, profile_refine

SETTINGS = {"before": "brent", "now": estimators.PROFILE_REFINE}
"""How each setting refines the profile between grid points."""


def transfer_demo() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        case = demo_case("transfer", Path(tmp))
    runs = case.runs
    print(f"\ntransfer demo: {len(runs)} rows, {runs.n_train_runs} runs, {len(runs.sources)} "
          f"languages (Catalan U = {case.hyper['unique_tokens']['ca']:.0f} tokens)")  # fmt: skip
    fitted, props, secs = {}, {}, {}
    for name in SETTINGS:
        with profile_refine(SETTINGS[name]):
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                law = get_law("climb", seed=0, **case.hyper).fit(runs)
                times.append(time.perf_counter() - t0)
            secs[name] = statistics.median(times)
            fitted[name] = law
            props[name] = allocate(law, case.tokens, case.params,
                                   constraints=case.constraints).proportions  # fmt: skip
            cost = sum(r["cost"] for r in law.diagnostics_.targets)
            print(f"  {name:<7} fit {secs[name]:6.2f} s (median of 3: "
                  f"{', '.join(f'{t:.2f}' for t in times)}); λ = {law.params_.lam:.4f}; "
                  f"Huber cost {cost:.6f}")  # fmt: skip
            print("          allocation: " + ", ".join(
                f"{s} {v:.3f}" for s, v in zip(law.sources_, props[name])))  # fmt: skip
    print(f"  fit time before / now: {secs['before'] / secs['now']:.2f}x")
    a, b = (fitted[n].predict_runs(runs) for n in SETTINGS)
    print(f"  largest |Δ prediction| on the runs {np.nanmax(np.abs(a - b)):.4f} bits/byte; "
          f"largest |Δ proportion| {np.abs(props['before'] - props['now']).max():.4f}")  # fmt: skip
    for name in SETTINGS:
        with profile_refine(SETTINGS[name]):
            t0 = time.perf_counter()
            cv = cross_validate(lambda: get_law("climb", seed=0, **case.hyper), runs, 5, 0,
                                groups=np.array(runs.train_run), fold_jobs=1)  # fmt: skip
            dt = time.perf_counter() - t0
        print(f"  {name:<7} 5-fold CV ({dt:.0f} s): MAE {cv.overall['mae']:.4f}; "
              f"{cv.by_share_line()}")  # fmt: skip


def simulated(n_sources: int, lam: float, unique: dict[str, float], seed: int) -> None:
    budgets = (1e6, 2e6)
    truth = random_climb_law(n_sources, tokens=budgets, seed=seed)
    truth.params_.unique_tokens = np.array([unique[s] for s in truth.sources_])
    truth.params_.lam = lam
    runs = simulate_runs(truth, 16 * n_sources, tokens=budgets, noise=0.003, seed=0)
    rng = np.random.default_rng(5)
    heavy = rng.dirichlet(np.full(n_sources, 0.5), size=200)
    U = np.array([unique[s] for s in truth.sources_])
    keep = (heavy * 2e6 / U > 3).any(axis=1)  # mixtures with some source beyond 3 epochs
    heavy = heavy[keep]
    clean = truth.predict(heavy, np.full(len(heavy), 2e6))
    print(f"\nsimulated: {n_sources} sources, true λ = {lam}, U = "
          f"{', '.join(f'{s} {u:.0e}' for s, u in unique.items())}, {len(runs)} rows; "
          f"{len(heavy)} new mixtures beyond 3 epochs at 2e6 tokens")  # fmt: skip
    secs = {}
    for name in SETTINGS:
        with profile_refine(SETTINGS[name]):
            t0 = time.perf_counter()
            law = get_law("climb", seed=0, unique_tokens=unique).fit(runs)
            secs[name] = time.perf_counter() - t0
        err = float(np.abs(law.predict(heavy, np.full(len(heavy), 2e6)) / clean - 1).mean())
        print(f"  {name:<7} fit {secs[name]:6.2f} s; λ̂ = {law.params_.lam:.4f}; mean relative "
              f"error on the new mixtures {err:.5f}")  # fmt: skip
    print(f"  fit time before / now: {secs['before'] / secs['now']:.2f}x")


def main() -> int:
    warnings.simplefilter("ignore", ClimbWarning)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {load:.1f} at "
          f"start; python {sys.version.split()[0]}; refinement: "
          + ", ".join(f"{k} {v}" for k, v in SETTINGS.items()))  # fmt: skip
    transfer_demo()
    simulated(3, 0.3, {"s1": 2e5, "s2": 4e5, "s3": 5e6}, seed=2)
    simulated(6, 0.1, {"s1": 1e5, "s2": 2e5, "s3": 4e5, "s4": 5e6, "s5": 5e6, "s6": 5e6}, seed=3)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nload average {load:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
