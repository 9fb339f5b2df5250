"""Wall time of the demo's cross-validation with its folds on parallel processes.

    python benchmarks/cv_jobs.py                   # both demos, the climb law, 2 processes
    python benchmarks/cv_jobs.py --scenario transfer --laws climb isolated --jobs 2

For each demo's proxy runs (as :mod:`benchmarks.bootstrap` reads them: the law's hyper-parameters
built as :func:`climb.demo.stage_laws` builds them, whole training runs held out together, 5 folds,
seed 0) each law is cross-validated serially (``fold_jobs=1``) and on ``--jobs`` processes
(``fold_jobs=--jobs``), one after the other in one process, so the two times share the machine's
state. Printed per law: both times, the speed-up, and whether the out-of-fold predictions are
bit-identical (they must be: each fold is fitted with one BLAS thread in both modes).
"""

from __future__ import annotations

import argparse
import inspect
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from climb.demo import grouped_cross_validate
from climb.errors import ClimbWarning
from climb.laws import law_class

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bootstrap import STORES, demo_case


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", choices=sorted(STORES), nargs="+", default=sorted(STORES))
    ap.add_argument("--laws", nargs="+", default=["climb"])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; {args.folds} folds, --jobs {args.jobs}")  # fmt: skip
    warnings.simplefilter("ignore", ClimbWarning)
    print(f"{'demo':<9} {'law':<11} {'serial s':>9} {'parallel s':>11} {'speed-up':>9}  identical")
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in args.scenario:
            case = demo_case(scenario, Path(tmp))
            for law in args.laws:
                accepted = inspect.signature(law_class(law).__init__).parameters
                hyper = {k: v for k, v in case.hyper.items() if k in accepted}
                times, preds = [], []
                for jobs in (1, args.jobs):
                    t0 = time.perf_counter()
                    res = grouped_cross_validate(law, case.runs, args.folds, seed=0,
                                                 fold_jobs=jobs, **hyper)  # fmt: skip
                    times.append(time.perf_counter() - t0)
                    preds.append(res.predictions)
                same = np.array_equal(preds[0], preds[1], equal_nan=True)
                print(f"{scenario:<9} {law:<11} {times[0]:>9.1f} {times[1]:>11.1f} "
                      f"{times[0] / times[1]:>8.2f}×  {'yes' if same else 'NO'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
