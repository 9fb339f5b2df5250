"""``allocate``: the library entry point of the Climb allocator (CLIMB.md §4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from climb.allocation.constraints import Constraints
from climb.allocation.convex import solve_convex, solve_worst
from climb.allocation.problem import AllocationProblem, build_problem
from climb.allocation.result import AllocationResult
from climb.allocation.saturating import solve_saturating, solve_worst_eta
from climb.allocation.two_step import SolverOutput, active_set, solve_two_step
from climb.errors import ClimbError
from climb.laws import law_class, law_from_json, read_law_json
from climb.laws.climb import ClimbParams
from climb.laws.fitting import blas_threads

METHODS = ("auto", "two-step", "active-set", "convex")
OBJECTIVES = ("sum", "worst")

LawLike = Any
"""A Climb law (``Law`` with ClimbParams), a law JSON path or object, or ``(ClimbParams, sources, targets)``."""


def climb_params_of(law: LawLike) -> tuple[ClimbParams, list[str], list[str]]:
    """``(ClimbParams, sources, targets)`` from anything that names a Climb law.

    Accepts a fitted climb ``Law`` (its ``params_`` attribute), a path to a law JSON file, the JSON
    object itself, or a ``(ClimbParams, sources, targets)`` triple. Files and JSON objects are
    read and validated by the law registry (:func:`climb.laws.load_law`, ``law_from_json``).
    """
    if isinstance(law, tuple) and len(law) == 3 and isinstance(law[0], ClimbParams):
        return law[0], list(law[1]), list(law[2])
    where = ""
    if isinstance(law, str | Path):
        where, law = f"{law}: ", read_law_json(law)
    if isinstance(law, dict):
        if not _allocatable(law.get("law")):
            raise ClimbError(
                f"{where}law JSON: the allocator needs a 'climb' law, got {law.get('law')!r}; "
                "fit one (`climb fit`, or climb.laws.get_law('climb'))"
            )
        try:
            law = law_from_json(law)
        except ClimbError as exc:
            raise ClimbError(f"{where}{exc}") from None
    params = getattr(law, "params_", None)
    name = getattr(law, "name", type(law).__name__)
    # a law says whether the allocator can optimize it (climb-msl keeps a ClimbParams for its
    # effective ratio, but its loss has another form)
    if isinstance(params, ClimbParams) and getattr(law, "allocatable", False):
        return params, list(law.sources_), list(law.targets_)
    raise ClimbError(
        f"the allocator needs a fitted 'climb' law, got {name!r}; fit one with "
        "`climb fit`, or climb.laws.get_law('climb')"
    )


def _allocatable(name: Any) -> bool:
    """Whether the registered law ``name`` can be optimized by the allocator."""
    try:
        return bool(law_class(str(name)).allocatable)
    except ClimbError:
        return False


def allocate(
    law: LawLike,
    tokens: float,
    params: float | None = None,
    *,
    constraints: Constraints | None = None,
    objective: str = "sum",
    method: str = "auto",
) -> AllocationResult:
    """Optimal proportions of a Climb law at ``tokens`` (``D*``) and ``params`` (``N*``).

    ``objective="sum"`` minimizes ``Σ_i ω_i L_i`` by the two-step method (closed form when the
    optimum is interior, active-set Newton when bounds or caps bind, cvxpy when neither settles);
    ``objective="worst"`` minimizes ``max_i ω_i (L_i − E_i)/c_i`` by bisection with LPs.
    A law with transfer saturation (``η < 1``) goes through :mod:`climb.allocation.saturating`
    (paths ``active-set-eta``, ``convex-eta``, ``epigraph-eta``; ``multistart-*`` when a negative
    transfer weight makes the problem possibly non-convex, reported in the message).
    ``method`` forces a path (``two-step`` fails if the closed form does not apply).
    ``constraints`` (:class:`~climb.allocation.constraints.Constraints`) holds the bounds, the
    caps ``p_k D* ≤ max_epochs · U_k`` and the weights ``ω`` per target (default 1).
    """
    p_, sources, targets = climb_params_of(law)
    problem = build_problem(p_, sources, targets, tokens, params, constraints=constraints)
    return solve_problem(problem, objective=objective, method=method)


def _floor_note(problem: AllocationProblem, p: np.ndarray) -> str:
    """A note when interference takes a weighted target's effective ratio below the law's
    own-share floor ``r_i ≥ ρ p̃_i`` at ``p``: the law predicts it at the floor, while the
    allocator optimizes the unfloored ``r`` (``""`` when the floor binds nowhere)."""
    rho = problem.params.ratio_floor
    if rho <= 0:
        return ""
    raw = problem.effective_ratio(p)
    floored = problem.params.effective_ratio(p[None], problem.tokens)[0]
    below = [t for t, a, b, w in zip(problem.targets, raw, floored, problem.weights)
             if w > 0 and b > a + 1e-9 * max(1.0, abs(a))]  # fmt: skip
    if not below:
        return ""
    return (f"; interference takes {', '.join(below)} below the law's own-share floor "
            f"r ≥ {rho:g} p: the law predicts them at the floor, the allocator optimized the "
            "unfloored r (check that transfer, or bound their shares)")  # fmt: skip


def solve_problem(
    problem: AllocationProblem, *, objective: str = "sum", method: str = "auto"
) -> AllocationResult:
    """Solve a compiled problem (see :func:`allocate`).

    BLAS runs on one thread here: the problems are small (K ≤ a few hundred) and multi-threaded
    BLAS only adds contention (K = 256 took seconds instead of ~0.1 s on a busy 2-core machine).
    """
    with blas_threads(1):
        return _solve_problem(problem, objective=objective, method=method)


def _solve_problem(problem: AllocationProblem, *, objective: str, method: str) -> AllocationResult:
    if objective not in OBJECTIVES:
        raise ClimbError(
            f"objective: unknown objective '{objective}'; choose from {', '.join(OBJECTIVES)}"
        )
    if method not in METHODS:
        raise ClimbError(f"method: unknown method '{method}'; choose from {', '.join(METHODS)}")
    if objective == "worst":
        if not problem.linear:
            return make_result(problem, solve_worst_eta(problem), objective)
        return make_result(problem, solve_worst(problem), objective)
    if not problem.linear:
        return make_result(problem, solve_saturating(problem, method), objective)
    out: SolverOutput | None = None
    notes = ""
    if method in ("auto", "two-step", "active-set"):
        out = solve_two_step(problem, method)
        if out is None and method == "two-step":
            raise ClimbError(
                "method 'two-step': the closed form does not apply here (a bound or cap binds, "
                "a donor or zero weight, or u = W^(-T) 1 has non-positive entries); use 'auto'"
            )
        if out is None:
            notes = "; the active set did not settle, solved by the convex path"
    if out is None:
        out = solve_convex(problem)
        out.message += notes
        if out.status == 0 and method == "auto":
            # polish: the active-set method started on the convex solution's face
            polished = active_set(problem, out.p)
            if polished.status == 0 and problem.objective_sum(polished.p) <= problem.objective_sum(
                out.p
            ):
                out.p = polished.p
                out.message += f"; polished by {polished.nit} active-set iterations"
    return make_result(problem, out, objective)


def make_result(
    problem: AllocationProblem, out: SolverOutput, objective: str, kkt: bool = True
) -> AllocationResult:
    """Wrap proportions into an :class:`AllocationResult` with losses, ratios and the KKT residual."""
    p = out.p
    res_kkt, lam = (
        problem.kkt_residual(p) if kkt and objective == "sum" else (float("nan"), float("nan"))
    )
    if objective == "worst" and out.path in ("bisection-lp", "epigraph-eta"):
        try:
            res_kkt = float(out.message.rsplit("gap ", 1)[1])
        except (IndexError, ValueError):
            res_kkt = float("nan")
    at_lo = [s for s, v, a in zip(problem.sources, p, problem.lo) if v <= a + 1e-9]
    at_hi = [s for s, v, b in zip(problem.sources, p, problem.hi) if v >= b - 1e-9 and b < 1.0]
    sup = problem.params.support
    if sup is not None:  # a weighted target left out of the mixture: say what the law predicts
        u = sup.unseen_mass(np.asarray(p, dtype=float)[None], problem.tokens)[0]
        left = [t for t, x, w in zip(problem.targets, u, problem.weights) if x > 0.01 and w > 0]
        if left:
            out.message += (f"; {', '.join(left)} get no share and their text is partly unseen "
                            "by the mixture (support-aware loss; give them a lower bound)")  # fmt: skip
    out.message += _floor_note(problem, np.asarray(p, dtype=float))
    return AllocationResult(
        sources=list(problem.sources), proportions=np.asarray(p, dtype=float), targets=list(problem.targets),
        predicted_loss=problem.predicted_loss(p), effective_ratio=problem.effective_ratio(p),
        objective=problem.objective(p, objective), objective_name=objective, tokens=problem.tokens,
        model_params=problem.model_params, path=out.path, kkt_residual=res_kkt, marginal_level=lam,
        nit=out.nit, status=out.status, message=out.message, at_lower=at_lo, at_upper=at_hi,
        eval_only=problem.eval_only,
    )  # fmt: skip
