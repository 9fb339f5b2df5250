"""A small source the data caps leave out of every proxy run: what does the law make of it?

    python benchmarks/capped_sources.py            # about 1 min on 2 cores

The transfer demo's eight sources and unique tokens (``design_candidates.SCENARIOS["transfer"]``:
the fourth, Catalan, has 12,088 tokens, so 4 epochs allow it at most 8.06% of a 600k-token run),
budgets 300k / 600k, designs of 10 and 12 WSD runs (seeds 0–29). A monolingual run of the capped
source breaks its cap and is dropped; in a small design no pair or mixture may have drawn it
either. Then (until 2026-12-02) the source was in no run: a law fitted on the design sees its
loss column but no share column, so it is an *evaluation-only* target, and the allocator never
gives it a share. ``design_runs`` now adds a run with that source at the largest share its cap
allows (``kind="capped"``, the rest spread evenly). The design without it is the same plan less
that run (the addition is the last step of the design), compared here on the seeds where the
source was absent.

A random true law per seed (``design_candidates.truth_law``), rows at every true budget with 1%
log-normal noise, the climb law (linear transfer) fitted on them. Printed per design: whether the
capped source is a source of the fitted law, its relative prediction error at ``D*`` = 1.2M over
300 mixtures with it at 0–4% (the most its cap allows at ``D*``), the allocation's share of it and
the truth's own optimal share of it, and the regret at ``D*`` under the caps (the truth's summed loss at the fitted law's allocation minus
at the truth's own; the law without the source allocates over the others).

Then the rule tried first and rejected: add that run wherever the monolingual run is dropped, also
where the source is in other runs (designs of 16 and 24 runs, where it always is; all 30 seeds),
scored as in ``design_candidates.py`` (relative errors at 600k and D* on 300 Dirichlet(1)
mixtures, regret).
"""

from __future__ import annotations

import os
import platform
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import climb.proxy.design as design
import design_candidates as dc
from climb.allocation.constraints import Constraints
from climb.allocation.solve import allocate
from climb.errors import ClimbWarning
from climb.laws import get_law

CAPPED = 3  # s4


def evaluate(plan: design.Plan, truth, unique: dict[str, float], test: np.ndarray):  # type: ignore[no-untyped-def]
    """(capped source in the law, its relative error at D*, its allocated share, the truth's
    optimal share of it, regret)."""
    runs = dc.rows_of(plan, truth, np.random.default_rng(0))
    law = get_law("climb", seed=0, transfer="linear").fit(runs)
    name = truth.sources_[CAPPED]
    t = np.full(len(test), float(dc.TARGET))
    has = name in law.sources_
    err = np.nan
    if has:
        err = float(
            np.abs(law.predict(test, t)[:, CAPPED] / truth.predict(test, t)[:, CAPPED] - 1).mean()
        )
    cons = Constraints(unique_tokens=unique, max_epochs=dc.EPOCHS)
    best = allocate(truth, dc.TARGET, None, constraints=cons).proportions
    sub = {s: unique[s] for s in law.sources_}
    got = allocate(
        law, dc.TARGET, None, constraints=Constraints(unique_tokens=sub, max_epochs=dc.EPOCHS)
    ).proportions
    full = np.zeros(len(truth.sources_))
    full[[truth.sources_.index(s) for s in law.sources_]] = got
    d = np.array([float(dc.TARGET)])
    regret = float(truth.predict(full[None], d).sum() - truth.predict(best[None], d).sum())
    return has, err, float(full[CAPPED]), float(best[CAPPED]), regret


def main() -> int:
    warnings.simplefilter("ignore", ClimbWarning)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    sizes, _ = dc.SCENARIOS["transfer"]
    k = len(sizes)
    sources = [f"s{i + 1}" for i in range(k)]
    unique = {s: int(u) for s, u in zip(sources, sizes)}
    cap = dc.EPOCHS * unique[sources[CAPPED]] / dc.TARGET
    rng = np.random.default_rng(7)
    test = rng.dirichlet(np.ones(k), 300)
    test[:, CAPPED] = 0.0
    test *= (1.0 - (share := rng.uniform(0.0, cap, 300)))[:, None] / test.sum(axis=1, keepdims=True)
    test[:, CAPPED] = share
    t0 = time.perf_counter()
    print(f"capped source s{CAPPED + 1}: {unique[sources[CAPPED]]:,} unique tokens, at most "
          f"{dc.EPOCHS * unique[sources[CAPPED]] / dc.BUDGETS[-1]:.2%} of 600k and {cap:.2%} of D*")  # fmt: skip
    print(f"{'runs':>4} {'seeds absent':>12}  {'design':<24} {'in law':>6} {'rel. error at D*':>17} "
          f"{'allocated':>9} {'optimal':>8} {'regret':>8}")  # fmt: skip
    for n_runs in (10, 12):
        res: dict[str, list] = {"without the added run": [], "with it (default)": []}
        absent = 0
        for seed in range(30):
            plan = design.design_runs(sources, dc.BUDGETS, n_runs, seed=seed, unique_tokens=unique,
                                      max_epochs=dc.EPOCHS, warn=False)  # fmt: skip
            added = plan.design.get("added", [])
            if not added:
                continue
            absent += 1
            old = design.Plan(sources=sources, runs=[r for r in plan.runs if r.run_id not in added])
            truth = dc.truth_law(k, seed)
            u = {s: float(v) for s, v in unique.items()}
            res["without the added run"].append(evaluate(old, truth, u, test))
            res["with it (default)"].append(evaluate(plan, truth, u, test))
        for label, rows in res.items():
            a = np.array(rows, dtype=float)
            err = f"{np.nanmean(a[:, 1]):.4f}" if np.isfinite(a[:, 1]).any() else "—"
            print(f"{n_runs:>4} {absent:>9}/30  {label:<24} {int(a[:, 0].sum()):>3}/{len(a):<2} "
                  f"{err:>17} {a[:, 2].mean():>9.4f} {a[:, 3].mean():>8.4f} {a[:, 4].mean():>8.4f}")  # fmt: skip
    print(
        f"({time.perf_counter() - t0:.0f} s; means over the designs where the source was absent; "
        f"'optimal': the truth's own allocation of it, its cap being {cap:.4f})"
    )
    always(sources, unique, k)
    return 0


def always(sources: list[str], unique: dict[str, int], k: int) -> None:
    """The rule rejected first: add the capped run wherever the monolingual run is dropped, also
    when the source is in other runs (16 and 24 runs: it always is). Scored like the designs
    above, over all 30 seeds; "lower" counts the seeds where the added run lowers the measure."""
    u = {s: float(v) for s, v in unique.items()}
    name = sources[CAPPED]
    t0 = time.perf_counter()
    print("\nadding the capped run even where the source is in other runs (rejected rule), "
          "30 seeds:")  # fmt: skip
    print(f"{'runs':>4}  {'design':<22} {'error 600k':>10} {'error D*':>9} {'regret':>8}")
    for n_runs in (16, 24):
        rows: dict[str, list] = {"as designed (default)": [], "+ capped run": []}
        for seed in range(30):
            plan = design.design_runs(sources, dc.BUDGETS, n_runs, seed=seed, unique_tokens=unique,
                                      max_epochs=dc.EPOCHS, warn=False)  # fmt: skip
            caps = design._Caps(sources, unique, dc.EPOCHS)
            top = dc.BUDGETS[-1]
            extra = design.PlannedRun(f"wsd-cap-{name}", caps.at_cap(name, top), top,
                                      kind="capped", branches=tuple(dc.BUDGETS[:-1]))  # fmt: skip
            more = design.Plan(sources=sources, runs=[*plan.runs, extra])
            truth = dc.truth_law(k, seed)
            for label, pl in (("as designed (default)", plan), ("+ capped run", more)):
                runs = dc.rows_of(pl, truth, np.random.default_rng(seed))
                law = get_law("climb", seed=0, transfer="linear").fit(runs)
                rows[label].append(dc.score(law, truth, u, np.random.default_rng(99)))
        base = np.array(rows["as designed (default)"])
        for label, r in rows.items():
            a = np.array(r)
            lower = "" if label == "as designed (default)" else "  lower for " + ", ".join(
                f"{int((a[:, c] < base[:, c]).sum())}" for c in range(3)) + " of 30"  # fmt: skip
            print(f"{n_runs:>4}  {label:<22} {a[:, 0].mean():>10.4f} {a[:, 1].mean():>9.4f} "
                  f"{a[:, 2].mean():>8.4f}{lower}")  # fmt: skip
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    sys.exit(main())
