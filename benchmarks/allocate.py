"""Benchmark of the Climb allocator: two-step / active-set path vs the convex reference (cvxpy).

Random climb laws (``climb.allocation.synthetic.random_climb_json``) in two families:

* ``mixed``: transfer ``w_ij ~ U(-0.05, 0.25)`` (positive and negative), most sources end at 0,
  so the active-set path does the work;
* ``interior``: weak positive transfer ``w_ij ~ U(0, 0.5/K)`` and similar languages
  (``B ~ U(300, 600)``, ``β ~ U(0.28, 0.34)``): the optimum is interior and the two-step closed
  form solves it.

and, for laws with transfer saturation ``η_i ~ U(0.4, 1)`` (``r_i = p_i + Σ_j W_ij φ_η(p_j)``):

* ``eta``: ``w_ij ~ U(0, 0.25)`` (convex problem): the Newton path ``active-set-eta`` (warm-started
  from the ``η = 1`` optimum) against the cvxpy reference ``convex-eta``;
* ``eta-mixed``: ``w_ij ~ U(-0.05, 0.25)`` (possibly non-convex): ``multistart-eta`` (best of 8
  local Newton solves) against ``multistart-slsqp`` (best of 8 SLSQP solves, analytic gradients).

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
import warnings
from collections import Counter

import numpy as np

from climb.allocation import build_problem, climb_params_of, solve_problem
from climb.allocation.synthetic import random_climb_json


def make_law(K: int, family: str, seed: int) -> dict[str, object]:
    if family in ("mixed", "eta-mixed"):
        law = random_climb_json(K, seed, transfer=(-0.05, 0.25))
    elif family == "eta":
        law = random_climb_json(K, seed, transfer=(0.0, 0.25))
    else:
        law = random_climb_json(
            K, seed, transfer=(0.0, 0.5 / K), B_range=(300.0, 600.0), beta_range=(0.28, 0.34)
        )
    if family.startswith("eta"):
        rng = np.random.default_rng(seed + 7)
        law["params"]["eta"] = rng.uniform(0.4, 1.0, K).tolist()
    return law


def run(K: int, family: str, instances: int, convex: bool) -> dict[str, object]:
    t_auto: list[float] = []
    t_cvx: list[float] = []
    gaps: list[float] = []
    paths: Counter[str] = Counter()
    for seed in range(instances):
        law = make_law(K, family, 1000 * K + seed)
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
            paths["ref:" + ref.path] += 1
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
    ap.add_argument("--families", default="interior,mixed,eta,eta-mixed")
    ap.add_argument(
        "--eta-convex-max-k",
        type=int,
        default=256,
        help="largest K for the cvxpy reference of the eta family",
    )
    ap.add_argument(
        "--eta-mixed-ref-max-k",
        type=int,
        default=64,
        help="largest K for the multi-start SLSQP reference of eta-mixed",
    )
    args = ap.parse_args()
    warnings.simplefilter("ignore")  # cvxpy's "too many subexpressions" on the eta reference
    print(f"machine: {platform.machine()} {os.cpu_count()} CPU(s), python {platform.python_version()}, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")  # fmt: skip
    header = f"{'K':>4} {'family':>9} {'n':>3} {'auto ms':>9} {'max ms':>8} {'ref ms':>10} {'speedup':>8} {'gap max':>10} {'gap min':>10}  paths"
    print(header)
    print("-" * len(header))
    for K in (int(k) for k in args.sizes.split(",")):
        for family in args.families.split(","):
            limit = {"eta": args.eta_convex_max_k, "eta-mixed": args.eta_mixed_ref_max_k}
            r = run(K, family, args.instances, min(args.convex_max_k, limit.get(family, K)) >= K)
            cvx = r.get("convex_ms")
            print(
                f"{K:>4} {family:>9} {r['n']:>3} {r['auto_ms']:>9.2f} {r['auto_max_ms']:>8.2f} "
                + (f"{cvx:>10.1f} {r['speedup']:>7.1f}x {r['max_gap']:>10.1e} {r['min_gap']:>10.1e}" if cvx is not None
                   else f"{'-':>10} {'-':>8} {'-':>10} {'-':>10}")
                + f"  {', '.join(f'{k}: {v}' for k, v in sorted(r['paths'].items()))}",  # type: ignore[attr-defined]
                flush=True,
            )  # fmt: skip


if __name__ == "__main__":
    main()
