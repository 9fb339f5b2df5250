"""Wall time of the allocation bootstrap on the demo's proxy runs, where it goes, and what makes it
faster without changing what it estimates.

    python benchmarks/bootstrap.py                 # both demos, B = 20 (the demo's), 2 processes
    python benchmarks/bootstrap.py --scenario default --boot 8 --jobs 2

For each demo (``transfer``: benchmarks/output/demo-transfer-2026-12-01/runs.db; ``default``:
benchmarks/output/demo-default/runs.db) the law is built as :func:`climb.demo.stage_laws` builds
it (unique tokens ``U`` of the demo's corpus — the derived one with Catalan capped for
``transfer`` — and the byte-frequency support profile) and the bootstrap is called as
:func:`climb.demo.stage_allocation` calls it (``D*`` = 1.2M tokens, the proxy model's size, data
caps ``p D ≤ 4 U``, level 0.9, seed 0). Printed:

1. the full-data fit and one refit, profiled: seconds in the λ profile of the repetition term
   (grid and bounded Brent refinement: one whole-law fit per λ), per-target fits, initial
   guesses (init grid over η), least-squares solves (multi-start), the support term, and the
   allocation;
2. ``bootstrap_allocation`` serially (``n_jobs=1``) and on ``--jobs`` processes: seconds, seconds
   per refit, the speed-up, and whether the samples are bit-identical;
3. the bootstrap with the λ profile as it was until 2026-12-01 (refined between grid points by
   bounded Brent to ``ln λ`` ± 0.02, not by one parabola step), serially: seconds, and today's
   samples compared with its (same resamples; as in 4.);
4. two cheaper refits compared with the cold ones *on the same resamples* (same seed, so the same
   draws): the repetition decay λ fixed at the full-data fit's ``λ̂`` (a warm start of the λ
   profile) and ``n_starts=1`` (fewer starts). For each: seconds, the largest paired difference
   ``|p_cold^(b) − p_cheap^(b)|`` over resamples and sources, and each source's interval ends
   next to the cold ones with the Monte Carlo standard error of the cold ends (the standard
   deviation of the percentile over 2000 re-draws of the B cold samples): an end further than
   2 standard errors from the cold one is flagged ``*``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

import climb.laws.climb.estimators as estimators
import climb.laws.climb.fit as family
from climb.allocation import allocate, bootstrap_allocation
from climb.allocation.bootstrap import BootstrapResult, resample_runs, run_members
from climb.allocation.constraints import Constraints
from climb.data.runs import RunTable
from climb.data.store import RunStore
from climb.demo import SCENARIOS, DemoContext, DemoSettings, _support_hyper, stage_languages
from climb.errors import ClimbWarning
from climb.laws import get_law
from climb.laws.climb.forms import ClimbForm

HERE = Path(__file__).resolve().parent
STORES = {
    "transfer": HERE / "output" / "demo-transfer-2026-12-01" / "runs.db",
    "default": HERE / "output" / "demo-default" / "runs.db",
}


@dataclass
class Case:
    runs: RunTable
    hyper: dict[str, Any]
    constraints: Constraints
    tokens: float
    params: float
    level: float


def demo_case(scenario: str, tmp: Path) -> Case:
    """The demo's law settings and bootstrap call for the runs of ``scenario``."""
    cfg = DemoSettings()
    with RunStore(STORES[scenario], create=False) as rs:
        runs = rs.to_run_table()
    runs = runs.select_targets([t for t in runs.sources if t in runs.targets])
    sc = SCENARIOS[scenario]
    ctx = DemoContext(cfg, tmp / scenario, None, None, lambda _m: None, progress=False)
    langs = stage_languages(ctx, list(sc.languages) or list(runs.sources), dict(sc.caps))
    ctx = replace(ctx, corpus=langs.corpus)
    return Case(
        runs, _support_hyper(ctx, runs),
        Constraints(unique_tokens=langs.unique_tokens, max_epochs=cfg.max_epochs),
        float(cfg.target_tokens), float(cfg.model.non_embedding_params()), cfg.interval_level,
    )  # fmt: skip


@contextlib.contextmanager
def timed_calls(spent: dict[str, list[float]]) -> Iterator[None]:
    """Record the seconds of every call of the fitting steps (wrappers on the module names)."""
    targets = [
        (estimators, "fit_family", "λ-profile point (whole-law fit)"),
        (family, "fit_target", "per-target fit"),
        (family, "fit_log_huber", "least-squares solves"),
        (ClimbForm, "initial_guesses", "initial guesses (η grid)"),
        (estimators, "fit_support", "support term"),
    ]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in targets]

    def wrap(fn: Callable[..., Any], label: str) -> Callable[..., Any]:
        def inner(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[label].append(time.perf_counter() - t)
                if label == "least-squares solves":
                    spent["starts"].append(len(a[2]))

        return inner

    try:
        for (obj, name, label), (_, _, fn) in zip(targets, saved):
            setattr(obj, name, wrap(fn, label))
        yield
    finally:
        for obj, name, fn in saved:
            setattr(obj, name, fn)


@contextlib.contextmanager
def profile_refine(how: str) -> Iterator[None]:
    """The climb law's λ profile refined by ``how`` inside the block (``"brent"``: the profile
    until 2026-12-01; in this process only)."""
    saved = estimators.PROFILE_REFINE
    estimators.PROFILE_REFINE = how
    try:
        yield
    finally:
        estimators.PROFILE_REFINE = saved


def profile_fit(case: Case, runs: RunTable, what: str) -> None:
    spent: dict[str, list[float]] = defaultdict(list)
    with timed_calls(spent):
        t0 = time.perf_counter()
        law = get_law("climb", seed=1, **case.hyper).fit(runs)
        t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    allocate(law, case.tokens, case.params, constraints=case.constraints)
    t_alloc = time.perf_counter() - t0
    lam = getattr(law.params_, "lam", float("nan"))
    profiled = "profiled" if len(spent["λ-profile point (whole-law fit)"]) > 1 else "not profiled"
    print(f"{what}: fit {t_fit:.2f} s + allocate {t_alloc:.2f} s (λ {profiled}: {lam:.4g})")
    for label, times in spent.items():
        if label == "starts":
            continue
        extra = f", {sum(spent['starts'])} starts" if label == "least-squares solves" else ""
        print(f"  {label:<34} {len(times):>5} calls {sum(times):>8.2f} s{extra}")


def boot(case: Case, n_boot: int, jobs: int, **law_options: Any) -> tuple[BootstrapResult, float]:
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        res = bootstrap_allocation(
            case.runs, case.tokens, case.params, constraints=case.constraints, n_boot=n_boot,
            seed=0, level=case.level, law_options=case.hyper | law_options, n_jobs=jobs,
        )  # fmt: skip
    return res, time.perf_counter() - t0


def mc_error(samples: np.ndarray, q: float, draws: int = 2000) -> np.ndarray:
    """Monte Carlo standard error of the ``q`` percentile of each column of ``samples``."""
    rng = np.random.default_rng(0)
    idx = rng.integers(0, samples.shape[0], size=(draws, samples.shape[0]))
    return np.asarray(np.quantile(samples[idx], q, axis=1).std(axis=0))


def compare(cold: BootstrapResult, cheap: BootstrapResult, name: str, secs: float) -> None:
    """Paired differences on the same resamples, and interval ends against the cold ends' Monte
    Carlo standard errors."""
    q = (1.0 - cold.level) / 2.0
    se_lo, se_hi = mc_error(cold.samples, q), mc_error(cold.samples, 1.0 - q)
    paired = cold.samples.shape == cheap.samples.shape and cold.n_failed == cheap.n_failed == 0
    delta = cold.samples - cheap.samples if paired else np.full(cold.samples.shape, np.nan)
    ratio = np.sqrt(np.mean(delta**2, axis=0)) / np.maximum(cold.samples.std(axis=0), 1e-12)
    print(f"{name}: {secs:.1f} s; largest paired |Δp| {np.abs(delta).max():.4f}; paired RMS Δp "
          f"/ cold s.d., largest over sources {ratio.max():.2f} (0: the same estimate)")  # fmt: skip
    print(f"  {'source':<8}{'cold interval':<18}{'MC s.e. of ends':<18}{'interval':<20}RMS Δp/s.d.")
    flagged = 0
    for k, s in enumerate(cold.sources):
        ends = ((cold.low[k], cheap.low[k], se_lo[k]), (cold.high[k], cheap.high[k], se_hi[k]))
        marks = ["*" if abs(a - b) > 2 * max(se, 1e-4) else " " for a, b, se in ends]
        flagged += marks.count("*")
        print(f"  {s:<8}[{cold.low[k]:.3f}, {cold.high[k]:.3f}]    {se_lo[k]:.3f}, {se_hi[k]:.3f}"
              f"      [{cheap.low[k]:.3f}{marks[0]}, {cheap.high[k]:.3f}{marks[1]}]    "
              f"{ratio[k]:.2f}")  # fmt: skip
    print(f"  {flagged} of {2 * len(cold.sources)} interval ends further than 2 MC s.e. from cold")


def run_case(scenario: str, case: Case, n_boot: int, jobs: int) -> None:
    print(f"== {scenario} demo: {len(case.runs)} rows, {case.runs.n_train_runs} training runs, "
          f"{len(case.runs.sources)} languages, B = {n_boot}")  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        profile_fit(case, case.runs, "full-data fit")
        first = resample_runs(run_members(case.runs), np.random.default_rng(0))
        profile_fit(case, case.runs.subset(first), "refit b = 1 (its resample)")
        lam = float(get_law("climb", seed=0, **case.hyper).fit(case.runs).params_.lam)
    serial, t1 = boot(case, n_boot, 1)
    par, tj = boot(case, n_boot, jobs)
    same = np.array_equal(serial.samples, par.samples)
    print(
        f"bootstrap n_jobs=1: {t1:.1f} s ({t1 / n_boot:.2f} s per refit, {serial.n_failed} failed)"
    )
    print(f"bootstrap n_jobs={jobs}: {tj:.1f} s ({tj / n_boot:.2f} s per refit); speed-up "
          f"{t1 / tj:.2f}x; samples identical to n_jobs=1: {same}")  # fmt: skip
    with profile_refine("brent"):
        full, tb = boot(case, n_boot, 1)
    print(f"λ profile refined by bounded Brent (until 2026-12-01), n_jobs=1: {tb:.1f} s; "
          f"before / now {tb / t1:.2f}x")  # fmt: skip
    compare(full, serial, "now against it (reference: the Brent-refined profile)", t1)
    warm, tw = boot(case, n_boot, 1, repetition=lam)
    compare(serial, warm, f"λ fixed at λ̂ = {lam:.3g}", tw)
    few, tf = boot(case, n_boot, 1, n_starts=1)
    compare(serial, few, "n_starts=1", tf)
    print()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", choices=sorted(STORES), action="append")
    ap.add_argument("--boot", type=int, default=20, help="resamples B (default 20, the demo's)")
    ap.add_argument("--jobs", type=int, default=2, help="processes of the parallel run")
    args = ap.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {load:.1f} at "
          f"start; python {sys.version.split()[0]}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in args.scenario or ["transfer", "default"]:
            run_case(scenario, demo_case(scenario, Path(tmp)), args.boot, args.jobs)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
