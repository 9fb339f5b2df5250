"""RegMix benchmark: fit every registered law on RegMix train 1M, evaluate on test 1M / 60M / 1B.

    python benchmarks/regmix.py [--laws climb,msl] [--timing]

Prints, per law: fit time on the 512 training runs (17 sources, 13 targets) and, per test file,
Spearman ρ and MAE for the target ``pile_cc`` and the mean over all 13 targets. Laws that fail
to import, fit or predict are listed with their error (nothing is hidden).

``climb`` and ``climb-msl`` are fitted with their default saturating transfer (fitted ``η``); a
``name[linear]`` entry (added after ``climb`` by default) is the same law with ``η = 1``, i.e.
``r = W p``. The CV evidence selecting between them is ``benchmarks/climb_variants.py``.

``--timing`` also times the ``climb`` fit serially, on 2 threads and on 2 processes
(``n_jobs`` / ``backend``), best of ``--repeat`` runs each.

Note: the 60M and 1B test runs use other model sizes N and token budgets D than the 1M training
runs; a law fitted on one size can only *rank* mixtures there (Spearman). Absolute losses (MAE)
at 60M / 1B are far off by construction.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import traceback
import warnings

import numpy as np

from climb.data.runs import read_regmix
from climb.errors import ClimbWarning
from climb.evaluation.metrics import evaluate
from climb.laws import LAWS, get_law

TESTS = ("1m", "60m", "1b")
FOCUS = "pile_cc"


def fit_law(name: str, train, **hyper):  # type: ignore[no-untyped-def]
    law, wall, _ = fit_law_cpu(name, train, **hyper)
    return law, wall


def fit_law_cpu(name: str, train, **hyper):  # type: ignore[no-untyped-def]
    """The fitted law, wall seconds and CPU seconds of this process (all its threads).

    ``name[linear]`` / ``name[saturating]``: a climb-family law with that ``transfer``."""
    if name.endswith("]") and "[" in name:
        name, transfer = name[:-1].split("[", 1)
        hyper = {**hyper, "transfer": transfer}
    law = get_law(name, **hyper)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        t0, c0 = time.perf_counter(), time.process_time()
        law.fit(train)
        return law, time.perf_counter() - t0, time.process_time() - c0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = ",".join(n + (",climb[linear]" if n == "climb" else "") for n in LAWS)
    ap.add_argument(
        "--laws",
        default=default,
        help="comma-separated law names, name[linear] for linear transfer (default: all "
        "registered, plus climb[linear])",
    )
    ap.add_argument(
        "--timing", action="store_true", help="time serial / thread / process fits of climb"
    )
    ap.add_argument("--repeat", type=int, default=3, help="timing repetitions (best of)")
    args = ap.parse_args()

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f} (shared machine: timings are noisy)")  # fmt: skip
    train = read_regmix("train", "1m")
    tests = {s: read_regmix("test", s) for s in TESTS}
    print(f"train 1m: {len(train)} runs, {len(train.sources)} sources, {len(train.targets)} targets; "
          + ", ".join(f"test {s}: {len(t)} runs (D={t.tokens[0]:.3g}, N={t.params[0]:.3g})"  # type: ignore[index]
                      for s, t in tests.items()))  # fmt: skip
    print()

    rows = []
    failures = []
    for name in [n.strip() for n in args.laws.split(",") if n.strip()]:
        try:
            law, secs = fit_law(name, train)
            res = {s: evaluate(law, t) for s, t in tests.items()}
        except Exception as exc:  # report every failure honestly
            failures.append(
                (name, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            )
            if os.environ.get("CLIMB_BENCH_DEBUG"):
                traceback.print_exc()
            continue
        rows.append((name, secs, res))

    head = f"{'law':<13} {'fit s':>6} |" + "|".join(
        f" {s:>4}: ρ {FOCUS:<7} MAE {FOCUS:<7} ρ mean  MAE mean " for s in TESTS
    )
    print(head)
    print("-" * len(head))
    for name, secs, res in rows:
        cells = []
        for s in TESTS:
            ev = res[s]
            f = ev.targets.get(FOCUS, {"spearman": np.nan, "mae": np.nan})
            cells.append(
                f" {'':>4}  {f['spearman']:>9.4f} {f['mae']:>11.4f} {ev.overall['spearman']:>7.4f} "
                f"{ev.overall['mae']:>9.4f} "
            )
        print(f"{name:<13} {secs:>6.2f} |" + "|".join(cells))
    for name, msg in failures:
        print(f"{name:<13} FAILED: {msg}")
    print()
    print(
        "ρ = Spearman rank correlation of predicted vs measured loss; 'mean' = mean over the 13 targets."
    )
    print(
        "60M and 1B runs have other N and D than the 1M training runs: laws fitted on 1M can only"
    )
    print("rank mixtures there (Spearman); their MAE there is large by construction.")

    if args.timing:
        print()
        print(f"climb fit on train 1m, best of {args.repeat} (wall seconds; CPU seconds of this")
        print("process in brackets, worker processes not counted):")
        timings: list[tuple[str, dict[str, object]]] = [
            ("serial (n_jobs=1)", {"n_jobs": 1}),
            ("2 threads", {"n_jobs": 2, "backend": "thread"}),
            ("2 processes", {"n_jobs": 2, "backend": "process"}),
        ]
        for label, hyper in timings:
            runs = [fit_law_cpu("climb", train, **hyper)[1:] for _ in range(max(args.repeat, 1))]
            best = min(runs)
            print(f"  {label:<18} {best[0]:6.2f} [cpu {best[1]:5.2f}]  "
                  f"(all: {', '.join(f'{w:.2f}' for w, _ in runs)})")  # fmt: skip
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
