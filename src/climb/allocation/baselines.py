"""Baseline allocators (CLIMB.md §5), evaluated under the same Climb law and constraints.

Closed-form baselines (uniform, natural, temperature, UniMax) are projected onto the problem's
constraints by Euclidean projection onto ``{Σ p = 1, lo ≤ p ≤ hi}`` (caps included in ``hi``):
``p = clip(q − τ, lo, hi)`` with the shift ``τ`` that restores ``Σ p = 1``. A baseline already
inside the constraints is unchanged. Optimizing baselines (isolated, MSL) solve under the
constraints directly.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize

from climb.allocation.problem import (
    AllocationProblem,
    project_to_constraints,
    with_identity_transfer,
)
from climb.allocation.result import AllocationResult
from climb.allocation.solve import make_result, solve_problem
from climb.allocation.two_step import SolverOutput
from climb.errors import ClimbError

DEFAULT_TAU = 3.33
"""Temperature of the temperature baseline (XLM-R / mT5 use ≈ 3.3, i.e. exponent 0.3)."""


@dataclass
class Skipped:
    """A baseline that could not be computed, and why."""

    name: str
    reason: str


def uniform(problem: AllocationProblem) -> np.ndarray:
    """``p_i = 1/K``."""
    return np.full(problem.n_sources, 1.0 / problem.n_sources)


def natural(problem: AllocationProblem) -> np.ndarray:
    """``p_i ∝ U_i`` (unique tokens)."""
    U = _unique(problem)
    return U / U.sum()


def temperature(problem: AllocationProblem, tau: float = DEFAULT_TAU) -> np.ndarray:
    """``p_i ∝ U_i^(1/τ)``."""
    if not np.isfinite(tau) or tau <= 0:
        raise ClimbError(f"tau must be a positive temperature, got {tau!r}")
    q = _unique(problem) ** (1.0 / tau)
    return q / q.sum()


def unimax(problem: AllocationProblem) -> np.ndarray:
    """UniMax (Chung et al. 2023): visit languages from the smallest; each gets a uniform share
    of the budget still unassigned, capped at ``e_max · U_i``; what a capped language leaves goes
    to the larger ones."""
    U = _unique(problem)
    e_max = problem.max_epochs if problem.max_epochs is not None else 1.0
    budget = problem.tokens
    alloc = np.zeros(len(U))
    order = np.argsort(U, kind="stable")
    for n_left, k in zip(range(len(U), 0, -1), order):
        share = budget / n_left
        alloc[k] = min(share, e_max * U[k])
        budget -= alloc[k]
    return alloc / alloc.sum()


def _unique(problem: AllocationProblem) -> np.ndarray:
    if problem.unique_tokens is None:
        raise ClimbError("this baseline needs unique tokens per source (constraints.unique_tokens)")
    U = problem.unique_tokens.astype(float)
    if U.sum() <= 0:
        raise ClimbError("unique tokens: every source has 0 tokens")
    return U


def as_baseline(
    problem: AllocationProblem, name: str, q: np.ndarray, objective: str, note: str = ""
) -> AllocationResult:
    """Project ``q`` onto the constraints and evaluate it under the law."""
    p = project_to_constraints(q, problem.lo, problem.hi)
    moved = float(np.abs(p - q).max())
    msg = note or (
        f"projected onto the bounds/caps (moved up to {moved:.3g})" if moved > 1e-12 else ""
    )
    out = SolverOutput(p, f"baseline:{name}", 0, 0, msg)
    return make_result(problem, out, objective, kkt=True)


def isolated_optimum(problem: AllocationProblem, objective: str = "sum") -> AllocationResult:
    """The §4 allocator on the isolated law (``W = I``), evaluated under the real law."""
    iso = with_identity_transfer(problem)
    res = solve_problem(iso, objective=objective)
    out = SolverOutput(
        res.proportions, "baseline:isolated", res.nit, 0, f"optimum of the W = I law ({res.path})"
    )
    return make_result(problem, out, objective)


def law_optimum(
    problem: AllocationProblem, law: Any, name: str, objective: str = "sum"
) -> AllocationResult:
    """The optimum of another law (e.g. MSL) under the same constraints, evaluated under Climb.

    The other law is treated as a black box (``law.predict(p, D, N)``): SLSQP from the uniform
    and the projected-natural starts, keeping the best. Its sources must match the problem's.
    """
    sources = list(getattr(law, "sources_", []))
    if sorted(sources) != sorted(problem.sources):
        raise ClimbError(
            f"{name} law: its sources ({', '.join(sources)}) differ from the climb law's"
        )
    perm = [sources.index(s) for s in problem.sources]  # law column of each problem source
    targets = list(getattr(law, "targets_", sources))
    w = {
        t: problem.weights[problem.targets.index(t)] if t in problem.targets else 0.0
        for t in targets
    }
    wt = np.array([w[t] for t in targets])

    def f(p: np.ndarray) -> float:
        q = np.empty(len(p))
        q[perm] = p
        pred = np.asarray(
            law.predict(np.maximum(q, 0.0), problem.tokens, problem.model_params), dtype=float
        )
        if objective == "worst":
            return float(np.max(pred[wt > 0] * wt[wt > 0]))
        return float(wt @ pred)

    starts = [project_to_constraints(uniform(problem), problem.lo, problem.hi)]
    best: tuple[float, np.ndarray] | None = None
    for x0 in starts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = minimize(
                f, x0, method="SLSQP", bounds=list(zip(problem.lo, problem.hi)),
                constraints=[{"type": "eq", "fun": lambda p: p.sum() - 1.0}],
                options={"maxiter": 500, "ftol": 1e-12},
            )  # fmt: skip
        x = project_to_constraints(np.asarray(res.x, dtype=float), problem.lo, problem.hi)
        val = f(x)
        if best is None or val < best[0]:
            best = (val, x)
    assert best is not None
    out = SolverOutput(best[1], f"baseline:{name}", 0, 0, f"optimum of the {name} law (SLSQP)")
    return make_result(problem, out, objective)


CLOSED_FORM: dict[str, Callable[..., np.ndarray]] = {
    "uniform": uniform,
    "natural": natural,
    "temperature": temperature,
    "unimax": unimax,
}
BASELINES = ("uniform", "natural", "temperature", "unimax", "isolated", "msl")


def run_baselines(
    problem: AllocationProblem,
    *,
    objective: str = "sum",
    tau: float = DEFAULT_TAU,
    msl_law: Any = None,
    names: tuple[str, ...] = BASELINES,
) -> tuple[dict[str, AllocationResult], list[Skipped]]:
    """Every baseline that applies; the others come back as :class:`Skipped` with the reason."""
    done: dict[str, AllocationResult] = {}
    skipped: list[Skipped] = []
    for name in names:
        if name in ("natural", "temperature", "unimax") and problem.unique_tokens is None:
            skipped.append(Skipped(name, "needs unique tokens per source"))
            continue
        if name == "msl" and msl_law is None:
            skipped.append(Skipped(name, "needs an MSL law (give the runs to fit one)"))
            continue
        if name == "temperature":
            done[name] = as_baseline(problem, name, temperature(problem, tau), objective)
        elif name in CLOSED_FORM:
            done[name] = as_baseline(problem, name, CLOSED_FORM[name](problem), objective)
        elif name == "isolated" and not (problem.weights[problem.params.has_own] > 0).any():
            skipped.append(
                Skipped(name, "every weighted target is evaluation-only (the W = I law sees none)")
            )
        elif name == "isolated":
            done[name] = isolated_optimum(problem, objective)
        elif name == "msl":
            done[name] = law_optimum(problem, msl_law, "msl", objective)
        else:
            raise ClimbError(f"unknown baseline '{name}'; choose from {', '.join(BASELINES)}")
    return done, skipped
