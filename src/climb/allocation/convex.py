"""The convex reference path and the ``worst`` objective.

**Convex path** (CLIMB.md §4, "Convexity"): the same problem as a conic program in cvxpy,

    minimize  Σ_i c_i · r_i^(-β_i)   s.t.  r = W(D*) p,  Σ p = 1,  lo ≤ p ≤ hi,  r_i ≥ R_FLOOR,

with each ``r_i^(-β_i)`` an exact power cone (``cp.power(·, -β_i, approx=False)``), solved by
Clarabel (an interior-point conic solver) at tight tolerances. It needs no closed form, no
invertible ``W`` and no starting point, so it is the fallback of the two-step / active-set path
and the reference it is checked against.

**worst objective**: minimize ``t`` with ``ω_i (L_i − E_i) ≤ t c_i`` for every weighted target.
For a given ``t`` each bound is ``r_i ≥ r_i^min(t) = D*^(-1) [(t c_i / ω_i − A_i N*^(-α_i)) / B_i]^(-1/β_i)``
(closed form), so feasibility is a linear program in ``p`` (``W p ≥ r^min(t)``, simplex, bounds,
caps), solved by HiGHS; bisection on ``t`` gives the optimum.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import linprog

from climb.allocation.problem import AllocationProblem, project_to_constraints
from climb.allocation.two_step import SolverOutput
from climb.errors import ClimbError
from climb.laws.climb.ratio import R_FLOOR

SATURATING_CLARABEL = {"max_step_fraction": 0.9}
"""Clarabel stalls ("insufficient progress") on the many power cones of a saturating law at
K ≥ 64 with its default step fraction 0.99; a shorter step converges."""


def solve_convex(problem: AllocationProblem, *, tol: float = 1e-10) -> SolverOutput:
    """Solve the ``sum`` objective with cvxpy (power cones, ``approx=False``, Clarabel).

    A saturating law (``η < 1``) needs ``problem.convex`` (non-negative transfer into saturating
    targets): ``r`` is then a DCP-concave expression (:func:`cvxpy_ratio`); path ``convex-eta``.
    """
    import cvxpy as cp

    path = "convex" if problem.linear else "convex-eta"
    if not problem.convex:
        raise ClimbError(
            "the convex path needs non-negative transfer into targets with eta < 1 "
            "(this law may be non-convex); use method 'auto'"
        )
    act = problem.active
    c = problem.coef[act]
    beta = problem.beta[act]
    # scale so that the objective is O(1) at the uniform mix (conditioning of the conic solver)
    r_uniform = np.maximum(
        problem.effective_ratio(np.full(problem.n_sources, 1.0 / problem.n_sources))[act], 1e-3
    )
    scale = float(c @ r_uniform ** (-beta))
    scale = scale if np.isfinite(scale) and scale > 0 else 1.0
    p = cp.Variable(problem.n_sources)
    r = cvxpy_ratio(problem, p, act)
    terms = [(c[i] / scale) * cp.power(r[i], -float(beta[i]), approx=False) for i in range(len(c))]
    constraints = [cp.sum(p) == 1, p >= problem.lo, p <= problem.hi, r >= R_FLOOR]
    prob = cp.Problem(cp.Minimize(cp.sum(cp.hstack(terms))), constraints)
    try:
        prob.solve(
            solver=cp.CLARABEL, tol_gap_abs=tol, tol_gap_rel=tol, tol_feas=tol, tol_ktratio=1e-8,
            max_iter=500, **({} if problem.linear else SATURATING_CLARABEL),
        )  # fmt: skip
    except cp.error.SolverError as exc:
        return SolverOutput(np.full(problem.n_sources, np.nan), path, 0, 1, f"cvxpy failed: {exc}")
    status = str(prob.status)
    if p.value is None or status in ("infeasible", "infeasible_inaccurate"):
        raise ClimbError(
            "no allocation within the bounds and caps gives every weighted target a positive "
            "effective ratio under this law; relax the bounds or the caps, or give that target weight 0"
        )
    pv = project_to_constraints(np.asarray(p.value, dtype=float), problem.lo, problem.hi)
    nit = int(prob.solver_stats.num_iters or 0) if prob.solver_stats is not None else 0
    ok = status == "optimal"
    return SolverOutput(pv, path, nit, 0 if ok else 1, f"cvxpy/Clarabel: {status}")


def cvxpy_ratio(problem: AllocationProblem, p: Any, rows: np.ndarray) -> Any:
    """``r`` of the selected targets as a cvxpy expression of ``p``
    (:meth:`climb.laws.climb.ratio.RatioMap.cvxpy_expression`; DCP-concave when the transfer
    weights into saturating targets are ``≥ 0``)."""
    return problem.ratio_map.cvxpy_expression(p, rows)


def _r_min(problem: AllocationProblem, t: float) -> tuple[np.ndarray, bool]:
    """``r_i^min(t)`` for weighted targets (``0`` where unconstrained); ``False`` if ``t`` is below
    what model size alone allows."""
    w = problem.weights
    cnorm = problem.normalizer()
    size_term = problem.base - problem.params.E  # A_i N^(-α_i)
    budget = np.full(len(w), np.inf)
    pos = w > 0
    budget[pos] = t * cnorm[pos] / w[pos] - size_term[pos]
    if (budget[pos] <= 0).any():
        return np.zeros(len(w)), False
    Bd = problem.params.data_coef(problem.tokens)  # B D*^(-δ)
    rmin = np.zeros(len(w))
    data = pos & (Bd > 0)
    rmin[data] = (budget[data] / Bd[data]) ** (-1.0 / problem.beta[data])
    rmin[data] = np.maximum(rmin[data], R_FLOOR)
    return rmin, True


def _lp_feasible(problem: AllocationProblem, rmin: np.ndarray) -> np.ndarray | None:
    """A ``p`` with ``W p ≥ r^min`` on the simplex within the bounds (rows scaled by ``r^min``)."""
    W = problem.W
    rows = rmin > 0
    S = problem.n_sources
    A = -W[rows] / rmin[rows, None] if rows.any() else None
    res = linprog(
        c=np.zeros(S),
        A_ub=A,
        b_ub=-np.ones(int(rows.sum())) if rows.any() else None,
        A_eq=np.ones((1, S)),
        b_eq=[1.0],
        bounds=list(zip(problem.lo, problem.hi)),
        method="highs",
        options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
    )
    return np.asarray(res.x, dtype=float) if res.status == 0 else None


def solve_worst(
    problem: AllocationProblem, *, rtol: float = 1e-10, max_iter: int = 200
) -> SolverOutput:
    """Minimize the largest normalized excess loss by bisection on ``t`` with an LP (HiGHS).

    ``t_lo`` stays certified infeasible (up to the LP tolerance), ``t_hi`` feasible; the returned
    mix is the best one found, and the message carries the relative gap ``(t(p) − t_lo) / t(p)``.
    """
    start = project_to_constraints(
        np.full(problem.n_sources, 1.0 / problem.n_sources), problem.lo, problem.hi
    )
    best_p, best_t = start, problem.objective_worst(start)
    w = problem.weights
    pos = w > 0
    # lower end: what model size alone allows (every data term → 0)
    t_lo = max(
        float(np.max(((w * (problem.base - problem.params.E)) / problem.normalizer())[pos])), 0.0
    )
    t_hi = best_t
    nit = 0
    while nit < max_iter and t_hi - t_lo > rtol * max(abs(t_hi), 1e-300):
        nit += 1
        t = 0.5 * (t_lo + t_hi)
        rmin, ok = _r_min(problem, t)
        x = _lp_feasible(problem, rmin) if ok else None
        if x is None:
            t_lo = t
            continue
        t_hi = t
        p = project_to_constraints(x, problem.lo, problem.hi)
        val = problem.objective_worst(p)
        if val < best_t:
            best_p, best_t = p, val
    gap = max(best_t - t_lo, 0.0) / max(abs(best_t), 1e-300)
    ok = gap <= 1e-8
    msg = f"bisection on t with HiGHS LPs, relative gap {gap:.1e}"
    return SolverOutput(best_p, "bisection-lp", nit, 0 if ok else 1, msg)
