"""Simulated regret: how much worse than optimal is each method's mixture under a known law?

A ground-truth Climb law is drawn (``climb.laws.simulate.random_climb_law``), with its transfer
weights scaled by a *transfer strength* ``s`` (``W_ij ← s · W_ij`` off the own column; ``s = 0``
is no interaction at all, ``s = 1`` the simulator's default draw: 55 % of pairs help with
``w ~ U(0.05, 0.6)``, 25 % hurt with ``w ~ U(−0.15, −0.02)``; ``s = 2`` doubles both). Proxy runs
are simulated from it (``simulate_runs``: Dirichlet mixtures at the proxy budgets, multiplicative
log-normal noise ``--noise``), every method fits its law on those runs and proposes a mixture for
the target budget ``D*`` (``--scale`` × the largest proxy budget), and the mixture is scored under
the *true* law:

    regret(method) = mean_i L_i^true(p_method, D*) − mean_i L_i^true(p*, D*)

with ``p*`` the true optimum (the climb allocator run on the true law, same constraints). Every
method sees the same constraints: unique tokens per language ``U_i = D* · 10^u``,
``u ~ U(−1.7, −0.3)``, at most ``--max-epochs`` epochs (so the caps bind for the smaller languages).

Methods (CLIMB.md §5):

* ``climb``: the default ``climb`` law fitted on the runs, allocated by the two-step allocator;
* ``climb-linear``: the same with ``transfer="linear"`` (``r = W(D) p``, the paper's form);
* ``climb-kappa2``: the default law with the former box ``|κ| ≤ 2`` (``kappa_bound=2``), kept to
  show why the default box is now ``|κ| ≤ 0.5``;
* ``climb-nokappa``: the default law with ``fit_kappa=False`` (``κ = 0``: transfer does not change
  with the budget), a diagnostic of how much the fitted budget sensitivity costs or gains;
* ``isolated``: the ``isolated`` law (``W = I``) fitted on the runs, allocated by the same allocator;
* ``msl``: He et al.'s MSL law fitted on the runs, its optimum under the constraints;
* ``uniform``, ``natural``, ``temperature`` (τ = 3.33), ``unimax``: closed forms projected onto
  the constraints.

Nothing is tuned per method: every law uses its library defaults, every instance the same seeds.

    python benchmarks/regret.py [--instances 8] [--strengths 0 0.25 0.5 1 2] [--eta 1 0.5]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import json
import platform
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize

from climb.allocation import (
    Constraints,
    allocate,
    build_problem,
    climb_params_of,
    project_to_constraints,
    run_baselines,
    solve_problem,
)
from climb.errors import ClimbError
from climb.laws import Law, get_law, law_from_json
from climb.laws.simulate import MIN_RATIO, random_climb_law, simulate_runs

CLOSED = ("uniform", "natural", "temperature", "unimax")
METHODS = ("climb", "climb-linear", "climb-nokappa", "climb-kappa2", "isolated", "msl", *CLOSED)


@dataclass
class Instance:
    """One ground truth, its constraints and the proxy runs drawn from it."""

    truth: Law
    unique: dict[str, float]
    runs: Any


def scaled_truth(k: int, seed: int, strength: float, eta: float, budgets: list[float]) -> Law:
    """``random_climb_law`` with the off-diagonal transfer weights multiplied by ``strength``."""
    base = random_climb_law(k, tokens=budgets, seed=seed, eta=eta).to_json()
    W = np.asarray(base["params"]["W"], dtype=float)
    off = ~np.eye(k, dtype=bool)
    W[off] *= strength
    base["params"]["W"] = W.tolist()
    return law_from_json(base)


def make_instance(args: argparse.Namespace, seed: int, strength: float, eta: float) -> Instance:
    budgets = list(args.proxy_tokens)
    truth = scaled_truth(args.languages, seed, strength, eta, budgets)
    target = args.scale * max(budgets)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 11]))
    u = rng.uniform(-1.7, -0.3, args.languages)
    unique = {s: float(target * 10**x) for s, x in zip(truth.sources_, u)}
    runs = simulate_runs(truth, args.runs, tokens=budgets, noise=args.noise, seed=seed)
    return Instance(truth, unique, runs)


def true_mean_loss(truth: Law, p: np.ndarray, tokens: float) -> float:
    return float(np.mean(truth.predict(np.asarray(p, dtype=float), tokens)))


def method_mixtures(inst: Instance, args: argparse.Namespace) -> dict[str, np.ndarray | str]:
    """Each method's proposed mixture (or the error message if it failed)."""
    target = args.scale * max(args.proxy_tokens)
    cons = Constraints(unique_tokens=inst.unique, max_epochs=args.max_epochs)
    out: dict[str, np.ndarray | str] = {}
    fitted: dict[str, Law] = {}
    for name, law_name, hyper in (
        ("climb", "climb", {}),
        ("climb-linear", "climb", {"transfer": "linear"}),
        ("climb-nokappa", "climb", {"fit_kappa": False}),
        ("climb-kappa2", "climb", {"kappa_bound": 2.0}),
        ("isolated", "isolated", {}),
        ("msl", "msl", {}),
    ):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fitted[name] = get_law(law_name, **hyper).fit(inst.runs)
        except ClimbError as exc:
            out[name] = f"fit failed: {exc}"
    for name in ("climb", "climb-linear", "climb-nokappa", "climb-kappa2", "isolated"):
        if name in fitted:
            try:
                out[name] = allocate(fitted[name], target, constraints=cons).proportions
            except ClimbError as exc:
                out[name] = f"allocation failed: {exc}"
    # the closed-form baselines and the MSL optimum, under the true law's constraints
    P, sources, targets = climb_params_of(inst.truth)
    problem = build_problem(P, sources, targets, target, None, constraints=cons)
    names = tuple(b for b in (*CLOSED, "msl") if b != "msl" or "msl" in fitted)
    done, _ = run_baselines(problem, msl_law=fitted.get("msl"), names=names)
    for name, res in done.items():
        out[name] = res.proportions
    try:
        opt = solve_problem(problem)
        out["optimum"], out["optimum-path"] = opt.proportions, opt.path
    except ClimbError:  # the allocator found no feasible start (issue 9, bug b): SLSQP reference
        starts = [v for v in out.values() if isinstance(v, np.ndarray)]
        out["optimum"] = slsqp_optimum(problem, starts)
        out["optimum-path"] = "slsqp-fallback"
    return out


def slsqp_optimum(problem: Any, starts: list[np.ndarray]) -> np.ndarray:
    """Best SLSQP solution of ``Σ L_i`` under the constraints from the given starts."""
    best: tuple[float, np.ndarray] | None = None
    for x0 in starts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = minimize(
                problem.objective_sum, x0, method="SLSQP",
                bounds=list(zip(problem.lo, problem.hi)),
                constraints=[{"type": "eq", "fun": lambda p: p.sum() - 1.0}],
                options={"maxiter": 500, "ftol": 1e-12},
            )  # fmt: skip
        x = project_to_constraints(np.asarray(res.x, dtype=float), problem.lo, problem.hi)
        val = float(problem.objective_sum(x))
        if best is None or val < best[0]:
            best = (val, x)
    assert best is not None
    return best[1]


def run_instance(
    args: argparse.Namespace, seed: int, strength: float, eta: float
) -> dict[str, Any]:
    t0 = time.perf_counter()
    inst = make_instance(args, seed, strength, eta)
    target = args.scale * max(args.proxy_tokens)
    mix = method_mixtures(inst, args)
    opt = np.asarray(mix.pop("optimum"))
    path = str(mix.pop("optimum-path"))
    best = true_mean_loss(inst.truth, opt, target)
    r_opt = inst.truth.effective_ratio(opt[None, :], target)
    caps = np.array([args.max_epochs * inst.unique[s] / target for s in inst.truth.sources_])
    regret: dict[str, float | None] = {}
    cliff: dict[str, bool] = {}
    errors: dict[str, str] = {}
    for name in METHODS:
        p = mix.get(name, "not computed")
        if isinstance(p, str):
            errors[name] = p
            regret[name] = None
        else:
            regret[name] = true_mean_loss(inst.truth, p, target) - best
            r = inst.truth.effective_ratio(np.asarray(p, dtype=float)[None, :], target)
            cliff[name] = bool(r.min() < MIN_RATIO)
    return {
        "seed": seed, "strength": strength, "eta": eta, "optimum_loss": best,
        "optimum_path": path, "optimum_cliff": bool(r_opt.min() < MIN_RATIO),
        "caps_binding": int(np.sum(opt >= caps - 1e-9)),
        "regret": regret, "cliff": cliff, "errors": errors, "seconds": time.perf_counter() - t0,
    }  # fmt: skip


def summarize(rows: list[dict[str, Any]], strengths: list[float], etas: list[float]) -> str:
    head = "| truth η | strength s | caps binding | " + " | ".join(METHODS) + " |"
    lines = [head, "|" + "---|" * (3 + len(METHODS))]
    for eta in etas:
        for s in strengths:
            sel = [r for r in rows if r["strength"] == s and r["eta"] == eta]
            if not sel:
                continue
            caps = np.mean([r["caps_binding"] for r in sel])
            cells = []
            for m in METHODS:
                vals = np.array([r["regret"][m] for r in sel if r["regret"][m] is not None])
                fail = sum(r["regret"][m] is None for r in sel)
                cell = (
                    "–"
                    if vals.size == 0
                    else f"{1e3 * vals.mean():.1f} / {1e3 * np.median(vals):.1f}"
                )
                cells.append(cell + (f" ({fail} failed)" if fail else ""))
            lines.append(f"| {eta:g} | {s:g} | {caps:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cliffs(rows: list[dict[str, Any]], strengths: list[float], etas: list[float]) -> str:
    """Per cell and method: mixtures that leave some language with true ``r_i < MIN_RATIO``."""
    lines = ["| truth η | strength s | " + " | ".join(METHODS) + " | optimum |"]
    lines.append("|" + "---|" * (3 + len(METHODS)))
    for eta in etas:
        for s in strengths:
            sel = [r for r in rows if r["strength"] == s and r["eta"] == eta]
            if not sel:
                continue
            cells = [f"{sum(r['cliff'].get(m, False) for r in sel)}/{len(sel)}" for m in METHODS]
            opt = f"{sum(r['optimum_cliff'] for r in sel)}/{len(sel)}"
            lines.append(f"| {eta:g} | {s:g} | " + " | ".join(cells) + f" | {opt} |")
    return "\n".join(lines)


def wins(rows: list[dict[str, Any]]) -> str:
    """How often climb's regret is ≤ each other method's (same instance), per strength."""
    out = []
    for eta in sorted({r["eta"] for r in rows}, reverse=True):
        for s in sorted({r["strength"] for r in rows}):
            sel = [r for r in rows if r["strength"] == s and r["eta"] == eta]
            parts = []
            for m in METHODS[1:]:
                pairs = [
                    (r["regret"]["climb"], r["regret"][m])
                    for r in sel
                    if r["regret"]["climb"] is not None and r["regret"][m] is not None
                ]
                n_le = sum(a <= b + 1e-12 for a, b in pairs)
                parts.append(f"{m} {n_le}/{len(pairs)}")
            out.append(f"η={eta:g} s={s:g}: climb ≤ " + ", ".join(parts))
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--instances", type=int, default=8, help="random truths per cell")
    ap.add_argument("--strengths", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0, 2.0])
    ap.add_argument("--eta", type=float, nargs="+", default=[1.0, 0.5], help="truth saturation")
    ap.add_argument("--languages", type=int, default=6)
    ap.add_argument("--runs", type=int, default=48, help="proxy runs per instance")
    ap.add_argument("--proxy-tokens", type=float, nargs="+", default=[1e8, 3e8])
    ap.add_argument("--scale", type=float, default=10.0, help="D* / largest proxy budget")
    ap.add_argument("--noise", type=float, default=0.01, help="log-normal loss noise σ")
    ap.add_argument("--max-epochs", type=float, default=4.0)
    ap.add_argument("--json", help="also write every instance's result to this file")
    args = ap.parse_args()
    print(
        f"# regret.py  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  "
        f"{platform.machine()} cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f}"
    )
    print(
        f"# K={args.languages} runs={args.runs} proxy D={args.proxy_tokens} "
        f"D*={args.scale:g}x max proxy noise={args.noise} max_epochs={args.max_epochs} "
        f"instances={args.instances}"
    )
    rows = []
    t0 = time.perf_counter()
    for eta in args.eta:
        for s in args.strengths:
            for seed in range(args.instances):
                rows.append(run_instance(args, seed, s, eta))
            print(f"  η={eta:g} s={s:g} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    print("\nregret ×1e-3 (mean loss per language over the true optimum): mean / median over "
          f"{args.instances} instances\n")  # fmt: skip
    print(summarize(rows, args.strengths, args.eta))
    print(f"\nmixtures leaving some language with true effective ratio r < {MIN_RATIO} "
          "(below every simulated proxy run; the law's loss rises steeply there)\n")  # fmt: skip
    print(cliffs(rows, args.strengths, args.eta))
    print("\n" + wins(rows))
    errs = [(r["seed"], r["strength"], r["eta"], e) for r in rows for e in r["errors"].items()]
    for seed, s, eta, (m, msg) in errs:
        print(f"  failure: η={eta:g} s={s:g} seed={seed} {m}: {msg}")
    neg = [(r["seed"], r["strength"], m, v) for r in rows for m, v in r["regret"].items()
           if v is not None and v < -1e-9]  # fmt: skip
    print(f"negative regrets (a method beat the allocator on the true law): {len(neg)}")
    for seed, s, m, v in neg:
        print(f"  s={s:g} seed={seed} {m}: {v:.3g}")
    paths = sorted({r["optimum_path"] for r in rows})
    print(f"true optimum solved by: {', '.join(paths)}; total {time.perf_counter() - t0:.0f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
