"""Allocation: optimal language proportions under a Climb law (CLIMB.md §4–5).

    from climb.allocation import Constraints, allocate
    cons = Constraints(unique_tokens={"en": 5e11, ...}, max_epochs=4, weights={"en": 2})
    res = allocate("law.json", 1e11, constraints=cons)
    res.proportions_dict(), res.path, res.kkt_residual

The two-step solver (equalize marginal benefits, then maximize the magnitude) solves interior
problems in closed form; bounds and caps go through an active-set Newton method; a cvxpy conic
program is the fallback and the reference. Laws with transfer saturation (``η < 1``) are solved
by the same active-set Newton method on the nonlinear KKT system (:mod:`.saturating`).
Baselines (uniform, natural, temperature, UniMax, isolated-law and MSL optima) are evaluated
under the same law and constraints.
"""

from __future__ import annotations

from climb.allocation.baselines import BASELINES, DEFAULT_TAU, Skipped, run_baselines
from climb.allocation.bootstrap import BootstrapResult, bootstrap_allocation
from climb.allocation.constraints import Constraints
from climb.allocation.problem import (
    AllocationProblem,
    build_problem,
    project_to_constraints,
    read_unique_tokens,
)
from climb.allocation.result import AllocationResult
from climb.allocation.solve import METHODS, OBJECTIVES, allocate, climb_params_of, solve_problem

__all__ = [
    "BASELINES",
    "DEFAULT_TAU",
    "METHODS",
    "OBJECTIVES",
    "AllocationProblem",
    "AllocationResult",
    "BootstrapResult",
    "Constraints",
    "Skipped",
    "allocate",
    "bootstrap_allocation",
    "build_problem",
    "climb_params_of",
    "project_to_constraints",
    "read_unique_tokens",
    "run_baselines",
    "solve_problem",
]
