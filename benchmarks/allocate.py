"""Benchmark of the Climb allocator: two-step / active-set path vs the convex reference (cvxpy).

Random climb laws (``climb.allocation.synthetic.random_climb_json``) in two families:

* ``mixed``: transfer ``w_ij ~ U(-0.05, 0.25)`` (positive and negative), most sources end at 0,
  so the active-set path does the work;
* ``interior``: weak positive transfer ``w_ij ~ U(0, 0.5/K)`` and similar languages
  (``B ~ U(300, 600)``, ``β ~ U(0.28, 0.34)``): the optimum is interior and the two-step closed
  form solves it.

For K = 4, 16, 64, 256 it times ``allocate(method="auto")`` (best of 3 repeats per instance) and
the convex reference path (``method="convex"``, cvxpy + Clarabel, including problem construction),
and reports the medians, their ratio, the worst relative objective gap (auto − convex) / convex
(negative = the two-step path is better) and which path solved each instance.

    python benchmarks/allocate.py [--instances 5] [--convex-max-k 256]

BLAS threads are pinned to 1 (small dense matrices; a shared machine) unless already set.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import platform
import statistics
import time
from collections import Counter

from climb.allocation import build_problem, climb_params_of, solve_problem
from climb.allocation.synthetic import random_climb_json


def run(K: int, family: str, instances: int, convex: bool) -> dict[str, object]:
    t_auto: list[float] = []
    t_cvx: list[float] = []
    gaps: list[float] = []
    paths: Counter[str] = Counter()
    for seed in range(instances):
        if family == "mixed":
            law = random_climb_json(K, 1000 * K + seed, transfer=(-0.05, 0.25))
        else:
            law = random_climb_json(
                K,
                1000 * K + seed,
                transfer=(0.0, 0.5 / K),
                B_range=(300.0, 600.0),
                beta_range=(0.28, 0.34),
            )
        P, S, T = climb_params_of(law)
        problem = build_problem(P, S, T, 1e10)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            res = solve_problem(build_problem(P, S, T, 1e10))
            best = min(best, time.perf_counter() - t0)
        t_auto.append(best)
        paths[res.path] += 1
        if convex:
            t0 = time.perf_counter()
            ref = solve_problem(problem, method="convex")
            t_cvx.append(time.perf_counter() - t0)
            gaps.append((res.objective - ref.objective) / abs(ref.objective))
    out: dict[str, object] = {
        "K": K, "family": family, "n": instances, "auto_ms": 1e3 * statistics.median(t_auto),
        "auto_max_ms": 1e3 * max(t_auto), "paths": dict(paths),
    }  # fmt: skip
    if convex:
        out["convex_ms"] = 1e3 * statistics.median(t_cvx)
        out["speedup"] = statistics.median(t_cvx) / statistics.median(t_auto)
        out["max_gap"] = max(gaps)
        out["min_gap"] = min(gaps)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--instances", type=int, default=5)
    ap.add_argument("--convex-max-k", type=int, default=256)
    ap.add_argument("--sizes", default="4,16,64,256")
    args = ap.parse_args()
    print(f"machine: {platform.machine()} {os.cpu_count()} CPU(s), python {platform.python_version()}, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")  # fmt: skip
    header = f"{'K':>4} {'family':>9} {'n':>3} {'auto ms':>9} {'max ms':>8} {'convex ms':>10} {'speedup':>8} {'gap max':>10} {'gap min':>10}  paths"
    print(header)
    print("-" * len(header))
    for K in (int(k) for k in args.sizes.split(",")):
        for family in ("interior", "mixed"):
            r = run(K, family, args.instances, args.convex_max_k >= K)
            cvx = r.get("convex_ms")
            print(
                f"{K:>4} {family:>9} {r['n']:>3} {r['auto_ms']:>9.2f} {r['auto_max_ms']:>8.2f} "
                + (f"{cvx:>10.1f} {r['speedup']:>7.0f}x {r['max_gap']:>10.1e} {r['min_gap']:>10.1e}" if cvx is not None
                   else f"{'-':>10} {'-':>8} {'-':>10} {'-':>10}")
                + f"  {', '.join(f'{k}: {v}' for k, v in sorted(r['paths'].items()))}",  # type: ignore[attr-defined]
                flush=True,
            )  # fmt: skip


if __name__ == "__main__":
    main()
