"""Which of several candidate designs to train: do D-optimal designs give better laws?

    python benchmarks/design_candidates.py             # about 8 min on 2 cores
    python benchmarks/design_candidates.py --laws 4    # fewer simulated laws

``design_runs`` draws the pairs' order and the Dirichlet mixtures from its seeded stream. With
``candidates=n`` it draws ``n`` candidate designs and keeps the D-optimal one
(:func:`climb.proxy.design.d_criterion`). Compared here, on the same seeds:

* **first draw**: ``candidates=1`` (the default: the design as before);
* **D-opt 16**, **D-opt 64**: ``candidates=16`` / ``64``;
* **fewest problems**: of the same 64 candidates, the first that passes
  :func:`~climb.proxy.design.check_identifiability`, else the one with the fewest problems (rank
  problems first) — the check's criterion as a selection rule (tried first; not in the library).

Scenarios (the demos' budgets 300k / 600k, 4-epoch caps): ``transfer`` — the transfer demo's 8
sources and unique tokens (Catalan 12,088 tokens: capped at 4% of 1.2M) with 24 runs; ``tight`` —
10 sources of 5M tokens with 20 runs; ``default`` — the default demo's 6 sources (Hindi 0.26M
tokens) with 18 runs. For each design seed, a random true law
(``random_climb_law``, κ, its off-diagonal ``W`` made positive — ``|W|``, zeros set to
U(0.01, 0.05) — so that a source left out of a run still has a finite loss) gives the design's
rows at every true budget with 1% log-normal noise; the climb law (linear transfer) is fitted on
them. Scored against the noiseless truth: the mean relative error of the predicted losses of 300
new mixtures (Dirichlet(1)) at 600k and at ``D*`` = 1.2M, and the allocation's regret at ``D*``
with the caps (the truth's summed loss at the fitted law's allocation minus at the truth's own).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings

import numpy as np

import climb.proxy.design as design
from climb.allocation.constraints import Constraints
from climb.allocation.solve import allocate
from climb.data.runs import RunTable
from climb.errors import ClimbError, ClimbWarning
from climb.laws import get_law
from climb.laws.simulate import random_climb_law

BUDGETS = (300_000, 600_000)
TARGET = 1_200_000
EPOCHS = 4.0
SCENARIOS = {
    "transfer": (
        [5.03e6, 4.97e6, 5.03e6, 12_088, 5.03e6, 2.86e6, 5.03e6, 5.03e6], 24,
    ),  # es pt fr ca ru uk zh ja
    "tight": ([5e6] * 10, 20),
    "default": ([5.03e6, 5.04e6, 5.03e6, 5.03e6, 1.69e6, 0.26e6], 18),  # en fr ru ja ko hi
}  # fmt: skip
"""Unique tokens per source (in ``random_climb_law``'s order s1…sK) and the number of runs."""


def candidate_plans(sources: list[str], n_runs: int, seed: int, unique: dict[str, int],
                    n: int) -> list[design.Plan]:  # fmt: skip
    """The ``n`` candidate designs ``design_runs(..., candidates=n)`` draws, in order (the same
    seeded stream and steps; checked against the library's pick in :func:`main`)."""
    rng = np.random.default_rng(seed)
    natural = np.array([unique[s] for s in sources], dtype=float)
    natural /= natural.sum()
    out = []
    for _ in range(n):
        mixtures = design._mixtures(sources, n_runs, natural, rng, design.PAIR_SHARES)
        caps = design._Caps(sources, unique, EPOCHS)
        out.append(
            design.Plan(sources=sources, runs=design._wsd_runs(mixtures, list(BUDGETS), caps))
        )
    return out


def fewest_problems(plans: list[design.Plan]) -> design.Plan:
    """The first plan that passes the check, else the one with the fewest problems (rank first)."""
    best = None
    for plan in plans:
        rep = design.check_identifiability(plan)
        key = (sum("rank" in x for x in rep.problems), len(rep.problems))
        if best is None or key < best[0]:
            best = (key, plan)
        if rep.ok:
            break
    assert best is not None
    return best[1]


def truth_law(k: int, seed: int):  # type: ignore[no-untyped-def]
    law = random_climb_law(k, tokens=BUDGETS, seed=seed)
    W = np.abs(law.params_.W)
    rng = np.random.default_rng(seed + 1000)
    W = np.where(W == 0, rng.uniform(0.01, 0.05, W.shape), W)
    law.params_.W = W
    return law


def rows_of(plan: design.Plan, truth, rng: np.random.Generator) -> RunTable:  # type: ignore[no-untyped-def]
    P, D = design.true_budget_rows(plan)
    order = [plan.sources.index(s) for s in truth.sources_]
    p = P[:, order]
    loss = truth.predict(p, D.astype(float)) * np.exp(
        0.01 * rng.standard_normal((len(D), p.shape[1]))
    )
    runs = [f"{r.run_id}@{b}" for r in plan.runs for b in r.budgets]
    train = [r.run_id for r in plan.runs for _ in r.budgets]
    return RunTable.from_arrays(run=runs, tokens=D.astype(float), p=p, sources=truth.sources_,
                                loss=loss, targets=truth.targets_, train_run=train)  # fmt: skip


def score(
    law, truth, unique: dict[str, float], rng: np.random.Generator
) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    k = len(truth.sources_)
    test = rng.dirichlet(np.ones(k), size=300)
    errs = []
    for d in (BUDGETS[-1], TARGET):
        t = np.full(len(test), float(d))
        errs.append(float(np.abs(law.predict(test, t) / truth.predict(test, t) - 1).mean()))
    cons = Constraints(unique_tokens=unique, max_epochs=EPOCHS)
    best = allocate(truth, TARGET, None, constraints=cons).proportions
    got = allocate(law, TARGET, None, constraints=cons).proportions
    t = np.array([float(TARGET)])
    regret = float(truth.predict(got[None], t).sum() - truth.predict(best[None], t).sum())
    return errs[0], errs[1], regret


RULES = ("first draw", "D-opt 16", "D-opt 64", "fewest problems")


def pick(rule: str, plans: list[design.Plan]) -> design.Plan:
    if rule == "first draw":
        return plans[0]
    if rule == "fewest problems":
        return fewest_problems(plans)
    n = int(rule.split()[-1])
    values = [design.d_criterion(p) for p in plans[:n]]
    return plans[int(np.argmax(values))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--laws", type=int, default=30, help="design seeds (one true law each)")
    args = ap.parse_args()
    warnings.simplefilter("ignore", ClimbWarning)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, python "
          f"{sys.version.split()[0]}; {args.laws} design seeds per scenario")  # fmt: skip
    for name, (sizes, n_runs) in SCENARIOS.items():
        k = len(sizes)
        sources = [f"s{i + 1}" for i in range(k)]
        unique = {s: int(u) for s, u in zip(sources, sizes)}
        print(f"\n== {name}: {k} sources, {n_runs} runs, budgets {BUDGETS}, D* = {TARGET}")
        table: dict[str, list[tuple[float, float, float, int]]] = {r: [] for r in RULES}
        t0 = time.perf_counter()
        for seed in range(args.laws):
            truth = truth_law(k, seed)
            plans = candidate_plans(sources, n_runs, seed, unique, 64)
            lib = design.design_runs(sources, BUDGETS, n_runs, seed=seed, unique_tokens=unique,
                                     max_epochs=EPOCHS, warn=False, candidates=64)  # fmt: skip
            assert lib.proportions().tolist() == pick("D-opt 64", plans).proportions().tolist()
            for rule in RULES:
                plan = pick(rule, plans)
                problems = len(design.check_identifiability(plan).problems)
                runs = rows_of(plan, truth, np.random.default_rng(seed))
                try:
                    law = get_law("climb", seed=0, transfer="linear").fit(runs)
                    e1, e2, reg = score(law, truth, {s: float(u) for s, u in unique.items()},
                                        np.random.default_rng(99))  # fmt: skip
                except ClimbError as exc:
                    print(f"  seed {seed} {rule}: failed: {exc}")
                    continue
                table[rule].append((e1, e2, reg, problems))
        print(f"  ({time.perf_counter() - t0:.0f} s; relative errors against the noiseless truth; "
              f"regret: summed loss at D*, bits/byte or nats as the truth's)")  # fmt: skip
        print(f"  {'rule':<16} {'problems':>8} {'err 600k':>9} {'err D*':>8} {'regret':>8} "
              f"{'median':>8} {'lower err D* / regret than first draw':>38}")  # fmt: skip
        a = np.array(table["first draw"])
        for rule, rows in table.items():
            b = np.array(rows)
            vs = ""
            if rule != "first draw" and len(b) == len(a):
                vs = (f"{int((b[:, 1] < a[:, 1]).sum())} / {int((b[:, 2] < a[:, 2]).sum())} "
                      f"of {len(a)}")  # fmt: skip
            print(f"  {rule:<16} {b[:, 3].mean():>8.1f} {b[:, 0].mean():>9.4f} {b[:, 1].mean():>8.4f} "
                  f"{b[:, 2].mean():>8.4f} {np.median(b[:, 2]):>8.4f} {vs:>38}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
