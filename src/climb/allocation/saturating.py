"""Allocation under a saturating transfer law (``η_i < 1``; CLIMB.md §4 with a nonlinear ``r``).

With transfer saturation the effective ratio is

    r_i(p) = p_{own(i)} + Σ_{j≠own(i)} W(D*)_ij φ_{η_i}(p_j),    φ_η(p) = (p + ε)^η − ε^η,

so the closed form of the two-step method (``g(r) = λ u``, ``p = W^(-1) r``) no longer applies:
marginal benefits are equalized through the Jacobian ``J = ∂r/∂p`` at the optimum, ``Jᵀ g(r) = λ 1``
on the free sources. The paths (``result.path``):

* ``active-set-eta`` — the active-set Newton method of :mod:`climb.allocation.two_step` on the
  nonlinear KKT system (Newton matrix ``Jᵀ diag(−g') J − diag(Cᵀ g)`` with ``C_ik = ∂²r_i/∂p_k²``,
  diagonal per target since ``r_i`` is separable), warm-started from the linear (``η = 1``)
  two-step solution of the same law (mixed 9:1 with uniform), finished by pure Newton steps on
  the final face (:func:`polish_kkt`). With ``W ≥ 0`` off the own column ``r`` is concave and ``F``
  convex: the KKT point is the global optimum.
* ``convex-eta`` — the reference: the same problem in cvxpy, ``cp.power(p + ε, η)`` (concave,
  DCP when the transfer weights are ``≥ 0``), power cones, Clarabel. The fallback of the Newton
  path, polished by it.
* ``multistart-eta`` / ``multistart-slsqp`` — a negative transfer weight into a target with
  ``η_i < 1`` makes ``r_i`` non-concave: the problem *may be non-convex*. ``auto`` then keeps the
  best of several local active-set solves; ``method="convex"`` the best of multi-start SLSQP with
  analytic gradients. Both report a local optimum and say so in the message.

``worst`` objective: each loss bound ``ω_i B_i D*^(-β_i) r_i^(-β_i) ≤ t c_i − ω_i A_i N*^(-α_i)``
is a convex constraint (a convex decreasing function of a concave ``r_i``), so the epigraph problem
``min t`` is one convex program (``epigraph-eta``, cvxpy); with negative transfer weights it is
solved locally by multi-start SLSQP (``multistart-slsqp``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.optimize import linprog, minimize

from climb.allocation import two_step
from climb.allocation.convex import SATURATING_CLARABEL, cvxpy_ratio, solve_convex
from climb.allocation.problem import AllocationProblem, linearized, project_to_constraints
from climb.allocation.two_step import SolverOutput, feasible_start, solve_two_step
from climb.errors import ClimbError
from climb.laws.climb import R_FLOOR

NONCONVEX_NOTE = (
    "negative transfer into a target with eta < 1: the problem may be non-convex, "
    "this is the best local optimum found"
)
N_STARTS = 8
"""Local solves of the non-convex case (the warm start, uniform, mid-bounds, random mixes)."""


def linear_warm_start(problem: AllocationProblem) -> tuple[np.ndarray | None, str]:
    """The optimum of the same law with ``η = 1`` (two-step or active-set), as a feasible start
    of the saturating problem, and the path that found it."""
    lin = linearized(problem)
    out = solve_two_step(lin, "auto")
    if out is None:
        return feasible_start(problem, None), "none"
    # 9:1 with the uniform mix, so that no source starts at 0: there ``φ'(0) = η ε^(η−1)`` is
    # huge and Newton needs ~20 damped steps to grow a share from 0 (about 8 from the blend)
    guess = 0.9 * out.p + 0.1 / problem.n_sources
    return feasible_start(problem, guess), out.path


def newton_eta(problem: AllocationProblem) -> SolverOutput:
    """``active-set-eta``: active-set Newton on the nonlinear KKT system from the linear optimum."""
    start, how = linear_warm_start(problem)
    if start is None:
        return SolverOutput(
            np.full(problem.n_sources, np.nan), "active-set-eta", 0, 1, "no feasible start"
        )
    out = two_step.active_set(problem, start, path="active-set-eta")
    if out.status == 0:
        out.p = polish_kkt(problem, out.p)
        out.message += f" (warm start: the eta = 1 optimum by {how}, 9:1 with uniform)"
    return out


def polish_kkt(problem: AllocationProblem, p: np.ndarray, iters: int = 6) -> np.ndarray:
    """Pure Newton steps on the free sources' KKT system (face fixed, no line search), kept while
    the KKT residual drops and ``p`` stays feasible.

    Near the optimum the decrease of ``F`` is below its rounding error, so a line search on ``F``
    stops with marginal benefits equal only to ~1e-8; these steps converge them quadratically."""
    obj = two_step._Objective(problem)
    lo, hi = problem.lo, problem.hi
    S = problem.n_sources
    best, best_res = p, problem.kkt_residual(p)[0]
    for _ in range(iters):
        if best_res <= 1e-14:
            break
        free = ~((best <= lo + 1e-9) | (best >= hi - 1e-9))
        F = np.flatnonzero(free)
        if F.size < 2:
            break
        r, J, C = obj.derivatives(best)
        g = obj.g(r)
        d = two_step._direction(obj, r, J, C, g, J.T @ g, F, "newton", S)
        if d is None:
            break
        q = best + d
        if (q[F] < lo[F]).any() or (q[F] > hi[F]).any() or (obj.ratio(q) <= R_FLOOR).any():
            break
        res = problem.kkt_residual(q)[0]
        if not res < best_res or problem.objective_sum(q) > problem.objective_sum(best) * (
            1 + 1e-14
        ):
            break
        best, best_res = q, res
    return best


def _starts(problem: AllocationProblem, n: int, seed: int = 0) -> list[np.ndarray]:
    """Feasible starts (every weighted ``r_i > R_FLOOR``) of the non-convex local solves: the
    warm start, uniform, mid-bounds and random mixes; when none of them is feasible, the mixture
    that maximizes ``min_i r_i`` (:func:`max_min_ratio`) and, for each of them, the largest step
    from it towards that start (½, ¼, ⅒ of the way) that stays feasible.

    Raises ClimbError: no mixture within the bounds and caps has every weighted ``r_i > 0``."""
    S = problem.n_sources
    rng = np.random.default_rng(seed)
    raw: list[np.ndarray | None] = [linear_warm_start(problem)[0], np.full(S, 1.0 / S)]
    raw.append(0.5 * (problem.lo + problem.hi))
    while len(raw) < n:
        raw.append(rng.dirichlet(np.full(S, 0.5)))
    ratio = problem.ratio_map.restrict(problem.active)
    out = []
    projected = [project_to_constraints(q, problem.lo, problem.hi) for q in raw if q is not None]
    for p in projected:
        if (ratio(p) > R_FLOOR).all():
            out.append(p)
    if out:
        return out
    best, t = max_min_ratio(problem)
    if not t > R_FLOOR:
        raise ClimbError(
            "no allocation within the bounds and caps gives every weighted target a positive "
            f"effective ratio under this law (the best mixture reaches min r = {t:.3g}); relax "
            "bounds or the caps (unique_tokens, max_epochs), or give that target weight 0"
        )
    out = [best]
    for p in projected:  # the nearest feasible blend with each usual start, for diversity
        for lam in (0.5, 0.25, 0.1):
            q = project_to_constraints((1.0 - lam) * best + lam * p, problem.lo, problem.hi)
            if (ratio(q) > R_FLOOR).all():
                out.append(q)
                break
    return out


def max_min_ratio(problem: AllocationProblem, n_starts: int = 8) -> tuple[np.ndarray, float]:
    """The mixture that maximizes ``t = min_i r_i(p)`` over weighted targets within the bounds
    and caps, and ``t``: ``max t`` s.t. ``r_i(p) ≥ t``, ``Σ p = 1``, ``lo ≤ p ≤ hi``.

    For the linear law (``r = W(D*) p``) this is a linear program, solved exactly. With transfer
    saturation ``r_i`` is smooth but, with negative transfer, not concave: SLSQP on ``(p, t)``
    with the analytic Jacobian ``[J, −1]`` from that linear program's solution, the uniform mix,
    mid-bounds and ``n_starts`` random mixes, best kept (a local maximum: with negative transfer
    the global one is not guaranteed)."""
    act = problem.active
    S = problem.n_sources
    W = problem.W[act]
    # the linear program: maximize t s.t. W p − t ≥ 0 (as −W p + t ≤ 0), Σ p = 1, bounds
    lp = linprog(
        np.r_[np.zeros(S), -1.0],
        A_ub=np.hstack([-W, np.ones((W.shape[0], 1))]),
        b_ub=np.zeros(W.shape[0]),
        A_eq=np.r_[np.ones(S), 0.0][None, :],
        b_eq=[1.0],
        bounds=[*zip(problem.lo, problem.hi), (None, None)],
        method="highs",
    )
    if lp.status != 0:
        raise ClimbError(f"no mixture meets the bounds and caps ({lp.message})")
    p_lp = project_to_constraints(np.asarray(lp.x[:S], dtype=float), problem.lo, problem.hi)
    ratio = problem.ratio_map.restrict(act)
    if problem.linear:
        return p_lp, float(ratio(p_lp).min())
    rng = np.random.default_rng(0)
    starts = [p_lp, np.full(S, 1.0 / S), 0.5 * (problem.lo + problem.hi)]
    starts += [rng.dirichlet(np.full(S, 0.5)) for _ in range(n_starts)]
    cons = [
        {"type": "eq", "fun": lambda x: np.array([x[:S].sum() - 1.0]),
         "jac": lambda x: np.r_[np.ones(S), 0.0][None, :]},
        {"type": "ineq", "fun": lambda x: ratio(x[:S]) - x[S],
         "jac": lambda x: np.hstack([ratio.jacobian(x[:S]), -np.ones((int(act.sum()), 1))])},
    ]  # fmt: skip
    best, best_t = p_lp, float(ratio(p_lp).min())
    for q in starts:
        p0 = project_to_constraints(q, problem.lo, problem.hi)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = minimize(
                lambda x: -x[S], np.r_[p0, ratio(p0).min()], jac=lambda x: -np.eye(S + 1)[S],
                method="SLSQP", bounds=[*zip(problem.lo, problem.hi), (None, None)],
                constraints=cons, options={"maxiter": 500, "ftol": 1e-12},
            )  # fmt: skip
        p = project_to_constraints(np.asarray(res.x[:S], dtype=float), problem.lo, problem.hi)
        t = float(ratio(p).min())
        if t > best_t:
            best, best_t = p, t
    return best, best_t


def multistart_newton(problem: AllocationProblem, n_starts: int = N_STARTS) -> SolverOutput:
    """``multistart-eta``: the best of local active-set solves (the non-convex case)."""
    best: tuple[float, SolverOutput] | None = None
    starts = _starts(problem, n_starts)
    for p0 in starts:
        out = two_step.active_set(problem, p0, path="multistart-eta")
        val = problem.objective_sum(out.p)
        if np.isfinite(val) and (best is None or val < best[0]):
            best = (val, out)
    if best is None:
        raise ClimbError(
            "no allocation within the bounds and caps gives every weighted target a positive "
            "effective ratio under this law; relax the bounds or the caps, or give that target weight 0"
        )
    out = best[1]
    out.p = polish_kkt(problem, out.p)
    out.message = f"{out.message}; {NONCONVEX_NOTE} ({len(starts)} starts)"
    return out


def _scaled_sum(problem: AllocationProblem) -> tuple[Any, Any]:
    act = problem.active
    c, beta = problem.coef[act], problem.beta[act]
    ratio = problem.ratio_map.restrict(act)
    S = problem.n_sources
    r0 = np.maximum(ratio(np.full(S, 1.0 / S)), 1e-3)
    scale = float(c @ r0 ** (-beta))

    def f(p: np.ndarray) -> float:
        r = np.maximum(ratio(p), R_FLOOR)
        return float(c @ r ** (-beta)) / scale

    def grad(p: np.ndarray) -> np.ndarray:
        r = np.maximum(ratio(p), R_FLOOR)
        g = beta * c * r ** (-beta - 1.0)
        return np.asarray(-(ratio.jacobian(p).T @ g) / scale)

    return f, grad


def multistart_slsqp(
    problem: AllocationProblem, objective: str = "sum", n_starts: int = N_STARTS
) -> SolverOutput:
    """``multistart-slsqp``: SLSQP with analytic gradients from several starts, best kept.

    ``sum`` minimizes ``F``; ``worst`` the epigraph ``min t`` s.t. ``t − ω_i (L_i − E_i)/c_i ≥ 0``.
    """
    S = problem.n_sources
    bounds = list(zip(problem.lo, problem.hi))
    eq = {"type": "eq", "fun": lambda x: np.array([x[:S].sum() - 1.0]),
          "jac": lambda x: np.concatenate([np.ones(S), np.zeros(len(x) - S)])[None, :]}  # fmt: skip
    best: tuple[float, np.ndarray, int] | None = None
    starts = _starts(problem, n_starts)
    for p0 in starts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if objective == "sum":
                f, grad = _scaled_sum(problem)
                res = minimize(f, p0, jac=grad, method="SLSQP", bounds=bounds, constraints=[eq],
                               options={"maxiter": 1000, "ftol": 1e-15})  # fmt: skip
                x = np.asarray(res.x, dtype=float)
            else:
                fun, jac, t0 = _worst_constraints(problem, p0)
                x0 = np.concatenate([p0, [t0]])
                res = minimize(
                    lambda x: float(x[-1]), x0, jac=lambda x: np.eye(S + 1)[-1], method="SLSQP",
                    bounds=[*bounds, (0.0, None)],
                    constraints=[eq, {"type": "ineq", "fun": fun, "jac": jac}],
                    options={"maxiter": 1000, "ftol": 1e-15},
                )  # fmt: skip
                x = np.asarray(res.x, dtype=float)[:S]
        p = project_to_constraints(x, problem.lo, problem.hi)
        val = problem.objective(p, objective)
        if np.isfinite(val) and (best is None or val < best[0]):
            best = (val, p, int(res.nit))
    if best is None:
        raise ClimbError(
            "no allocation within the bounds and caps gives every weighted target a positive "
            "effective ratio under this law; relax the bounds or the caps, or give that target weight 0"
        )
    msg = f"best of {len(starts)} SLSQP starts; " + (
        NONCONVEX_NOTE if not problem.convex else "the problem is convex"
    )
    return SolverOutput(best[1], "multistart-slsqp", best[2], 0, msg)


def _worst_constraints(problem: AllocationProblem, p0: np.ndarray) -> tuple[Any, Any, float]:
    """``h_i(p, t) = t − ω_i (L_i(p) − E_i)/c_i ≥ 0`` for weighted targets, its Jacobian, ``t0``."""
    pos = problem.weights > 0
    w = problem.weights[pos]
    cn = problem.normalizer()[pos]
    size = (problem.base - problem.params.E)[pos]
    Bd = problem.params.data_coef(problem.tokens)[pos]
    beta = problem.beta[pos]
    ratio = problem.ratio_map.restrict(pos)
    S = problem.n_sources

    def fun(x: np.ndarray) -> np.ndarray:
        r = np.maximum(ratio(x[:S]), R_FLOOR)
        return np.asarray(x[-1] - w * (size + Bd * r ** (-beta)) / cn)

    def jac(x: np.ndarray) -> np.ndarray:
        r = np.maximum(ratio(x[:S]), R_FLOOR)
        d = w * beta * Bd * r ** (-beta - 1.0) / cn  # −∂(excess)/∂r
        return np.hstack([d[:, None] * ratio.jacobian(x[:S]), np.ones((len(w), 1))])

    return fun, jac, float(-(fun(np.concatenate([p0, [0.0]]))).max())


def solve_worst_eta(problem: AllocationProblem, *, tol: float = 1e-10) -> SolverOutput:
    """``epigraph-eta``: ``min t`` s.t. ``ω_i B_i D*^(-β_i) r_i(p)^(-β_i) ≤ t c_i − ω_i A_i N*^(-α_i)``
    in cvxpy (convex for concave ``r``); non-convex laws go to :func:`multistart_slsqp`."""
    if not problem.convex:
        return multistart_slsqp(problem, "worst")
    import cvxpy as cp

    pos = problem.weights > 0
    w = problem.weights[pos]
    cn = problem.normalizer()[pos]
    size = (problem.base - problem.params.E)[pos]
    Bd = problem.params.data_coef(problem.tokens)[pos]
    beta = problem.beta[pos]
    p = cp.Variable(problem.n_sources)
    t = cp.Variable()
    r = cvxpy_ratio(problem, p, pos)
    cons = [cp.sum(p) == 1, p >= problem.lo, p <= problem.hi, r >= R_FLOOR]
    data = Bd > 0
    cons += [
        (w[i] * Bd[i] / cn[i]) * cp.power(r[i], -float(beta[i]), approx=False)
        <= t - w[i] * size[i] / cn[i]
        for i in np.flatnonzero(data)
    ]
    if (~data).any():
        cons.append(t >= float(np.max(w[~data] * size[~data] / cn[~data])))
    prob = cp.Problem(cp.Minimize(t), cons)
    try:
        prob.solve(solver=cp.CLARABEL, tol_gap_abs=tol, tol_gap_rel=tol, tol_feas=tol,
                   max_iter=500, **SATURATING_CLARABEL)  # fmt: skip
    except cp.error.SolverError as exc:
        return SolverOutput(
            np.full(problem.n_sources, np.nan), "epigraph-eta", 0, 1, f"cvxpy failed: {exc}"
        )
    status = str(prob.status)
    if p.value is None or status in ("infeasible", "infeasible_inaccurate"):
        raise ClimbError(
            "no allocation within the bounds and caps gives every weighted target a positive "
            "effective ratio under this law; relax the bounds or the caps, or give that target weight 0"
        )
    pv = project_to_constraints(np.asarray(p.value, dtype=float), problem.lo, problem.hi)
    val = problem.objective_worst(pv)
    gap = max(val - float(np.asarray(t.value, dtype=float)), 0.0) / max(abs(val), 1e-300)
    nit = int(prob.solver_stats.num_iters or 0) if prob.solver_stats is not None else 0
    ok = status == "optimal"
    msg = f"epigraph program in cvxpy/Clarabel: {status}, relative gap {gap:.1e}"
    return SolverOutput(pv, "epigraph-eta", nit, 0 if ok else 1, msg)


def solve_saturating(problem: AllocationProblem, method: str = "auto") -> SolverOutput:
    """The ``sum`` objective of a saturating law (see the module docstring for the paths)."""
    if method == "two-step":
        raise ClimbError(
            "method 'two-step': the closed form needs the linear law (eta = 1); this law has "
            "transfer saturation eta < 1, use 'auto'"
        )
    if not problem.convex:
        if method == "convex":
            return multistart_slsqp(problem, "sum")
        return multistart_newton(problem)
    notes = ""
    if method in ("auto", "active-set"):
        out = newton_eta(problem)
        if out.status == 0:
            return out
        notes = f"; the active set did not settle ({out.message}), solved by the convex path"
    out = solve_convex(problem)
    out.message += notes
    if out.status == 0 and method in ("auto", "active-set"):
        polished = two_step.active_set(problem, out.p, path="active-set-eta")
        if polished.status == 0 and problem.objective_sum(polished.p) <= problem.objective_sum(
            out.p
        ):
            out.p = polish_kkt(problem, polished.p)
            out.message += f"; polished by {polished.nit} active-set iterations"
    return out
