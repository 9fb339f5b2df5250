"""The two-step Climb allocator and its active-set extension (CLIMB.md §4).

Write ``g_i(r_i) = −ω_i ∂L_i/∂r_i = γ_i r_i^(-β_i-1)`` with ``γ_i = ω_i β_i B_i D*^(-β_i)``, the
*marginal benefit* of effective allocation to target ``i``.

**Step 1 — equalize marginal benefits.** An interior optimum has ``Wᵀ g(r) = λ 1``, i.e.
``g(r) = λ u`` with ``u = W^(-T) 1``; so ``r_i(λ) = (λ u_i / γ_i)^(-1/(β_i+1))`` (closed form).

**Step 2 — maximize the magnitude.** ``1ᵀ p = 1ᵀ W^(-1) r(λ) = uᵀ r(λ)`` decreases in ``λ``; take
the largest feasible allocation, the root of ``uᵀ r(λ) = 1`` (Brent on ``log λ``), and
``p = W^(-1) r(λ*)``.

The closed form needs every source free, ``W`` square over the weighted targets and ``u > 0``.
Otherwise (or when ``p`` leaves its bounds) the **active-set** method solves the KKT system of the
free sources ``F`` by damped Newton steps, holding the set ``B`` of sources at a bound::

    Σ_i W_ik g_i(r) = λ  (k ∈ F),    Σ_F p_k = 1 − Σ_B p_k,    r = W_F p_F + W_B p_B

with Jacobian ``−W_Fᵀ diag(g'(r)) W_F`` (a tiny ridge handles donors and ``T < S``, where it is
singular). Steps stay feasible (``p_F`` within bounds, ``r_i > 0``); a source that a step drives onto
a bound joins ``B``; at a Newton-converged point the source in ``B`` whose marginal benefit most
violates its sign condition (``G_k > λ`` at a lower, ``G_k < λ`` at an upper bound) leaves ``B``.
This is the primal active-set method of convex programming: each change lowers ``F``, so it
terminates; ``max_iter`` guards against stalls, after which the caller falls back to the convex path.

With transfer saturation (``η < 1``, :mod:`climb.allocation.saturating`) the same method runs on
the nonlinear ``r(p)``: ``W`` becomes the Jacobian ``J(p)``, the Newton matrix gains the diagonal
curvature term ``−diag(Cᵀ g)`` (``C_ik = ∂²r_i/∂p_k²``), and the line search checks ``r > 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from climb.allocation.constraints import BOUND_TOL
from climb.allocation.problem import AllocationProblem, project_to_constraints
from climb.laws.climb import R_FLOOR


@dataclass
class SolverOutput:
    p: np.ndarray
    path: str
    nit: int
    status: int
    message: str


def two_step_closed_form(problem: AllocationProblem) -> tuple[np.ndarray | None, str]:
    """Steps 1–2 with every source free; ``(p, "")`` or ``(None, why not)``.

    ``p`` may violate the bounds (the caller checks); it meets ``Σ p = 1`` and ``r > 0``.
    """
    if not problem.linear:
        return None, "the closed form needs the linear law (eta = 1)"
    act = problem.active
    if act.sum() != problem.n_sources:
        return None, "the weighted targets do not cover every source (donors or zero weights)"
    W = problem.W[act]
    gamma = (problem.beta * problem.coef)[act]
    beta = problem.beta[act]
    try:
        u = np.linalg.solve(W.T, np.ones(W.shape[0]))
    except np.linalg.LinAlgError:
        return None, "W(D*) is singular"
    if not np.isfinite(u).all() or (u <= 0).any():
        return None, "u = W^(-T) 1 has non-positive entries"
    expo = -1.0 / (beta + 1.0)

    def mass(log_lam: float) -> float:
        r = (np.exp(log_lam) * u / gamma) ** expo
        return float(np.log(u @ r))

    # at λ_k the k-th term alone gives u_k r_k = 1/S: the bracket [min λ_k, max λ_k] holds the root
    S = len(u)
    log_lk = np.log(gamma) + (beta + 1.0) * np.log(S * u) - np.log(u)
    a, b = float(log_lk.min()) - 1e-9, float(log_lk.max()) + 1e-9
    fa, fb = mass(a), mass(b)
    while fa < 0:
        a -= 1.0
        fa = mass(a)
    while fb > 0:
        b += 1.0
        fb = mass(b)
    log_lam = (
        brentq(mass, a, b, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=200)
        if fa * fb < 0
        else (a if fa == 0 else b)
    )
    r = (np.exp(log_lam) * u / gamma) ** expo
    try:
        p = np.linalg.solve(W, r)
    except np.linalg.LinAlgError:
        return None, "W(D*) is singular"
    return p / p.sum(), ""


class _Objective:
    """``F(p) − const = Σ_i c_i r_i^(-β_i)`` over active targets, with gradient and Hessian.

    ``ratio`` is ``r(p)`` of the active targets (:class:`RatioMap`: ``W p`` for the linear law,
    the saturating transfer otherwise)."""

    def __init__(self, problem: AllocationProblem) -> None:
        act = problem.active
        self.W = problem.W[act]
        self.c = problem.coef[act]
        self.beta = problem.beta[act]
        self.ratio = problem.ratio_map.restrict(act)
        self.linear = self.ratio.linear

    def value(self, r: np.ndarray) -> float:
        if not self.linear and (r <= R_FLOOR).any():
            return float("inf")  # outside the domain (a saturating r is not affine: check it)
        return float(self.c @ r ** (-self.beta))

    def derivatives(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``(r, J, C)``: ratios, their Jacobian ``∂r/∂p`` and curvature ``∂²r_i/∂p_k²``
        (``None`` for the linear law)."""
        if self.linear:
            return self.ratio(p), self.W, None
        return self.ratio.second_order(p)

    def g(self, r: np.ndarray) -> np.ndarray:
        """Marginal benefit ``g_i = β_i c_i r_i^(-β_i-1)``."""
        return np.asarray(self.beta * self.c * r ** (-self.beta - 1.0), dtype=float)

    def h(self, r: np.ndarray) -> np.ndarray:
        """``−g_i'(r_i) = β_i (β_i+1) c_i r_i^(-β_i-2)``."""
        return np.asarray(
            self.beta * (self.beta + 1.0) * self.c * r ** (-self.beta - 2.0), dtype=float
        )


def active_set(
    problem: AllocationProblem,
    p0: np.ndarray,
    *,
    max_iter: int | None = None,
    tol: float = 1e-20,
    path: str = "active-set",
) -> SolverOutput:
    """Primal active-set method with Newton steps on the free sources, from a feasible ``p0``.

    Each iteration takes the Newton direction of the free sources (equality-constrained KKT
    system); if it is not a descent direction, or it pushes a just-released source back into its
    bound (``W_F`` has more columns than weighted rows, so the Jacobian is singular), it takes the
    projected steepest-descent direction ``d_F = G_F − mean(G_F)`` instead. Steps are limited by
    the bounds and by ``r > 0``; a full projected step (which can put many sources on their bounds
    at once) is tried first and kept when it lowers ``F``.
    """
    obj = _Objective(problem)
    lo, hi = problem.lo, problem.hi
    S = problem.n_sources
    if max_iter is None:
        max_iter = 50 + 4 * S
    p = np.clip(np.asarray(p0, dtype=float), lo, hi)
    if (obj.ratio(p) <= R_FLOOR).any():
        return SolverOutput(p, path, 0, 1, "the start has a non-positive effective ratio")
    fixed = hi - lo <= BOUND_TOL
    at_lo = (p <= lo + BOUND_TOL) | fixed
    at_hi = (p >= hi - BOUND_TOL) & ~at_lo
    p = np.where(at_lo, lo, np.where(at_hi, hi, p))
    released = np.zeros(S, dtype=bool)
    for it in range(1, max_iter + 1):
        r, J, C = obj.derivatives(p)
        g = obj.g(r)
        G = J.T @ g  # marginal benefit per source, = −∇F
        free = ~(at_lo | at_hi)
        F = np.flatnonzero(free)
        f0 = obj.value(r)
        moved = False
        if F.size >= 2:
            for kind in ("newton", "gradient"):
                d = _direction(obj, r, J, C, g, G, F, kind, S)
                if d is None:
                    continue
                slope = float(G @ d)  # = −∇F·d, > 0 for a descent direction
                if kind == "newton" and (
                    0.0 <= slope <= tol * max(f0, 1e-300) or np.abs(d).max() <= 1e-15
                ):
                    break  # Newton decrement ≈ 0: optimal on this face
                if kind == "gradient" and np.ptp(G[F]) <= 1e-10 * max(
                    float(np.abs(G).max()), 1e-300
                ):
                    break  # marginal benefits of the free sources already equal
                if slope <= 0.0:
                    continue
                wrong = released & (
                    ((d < 0) & (p <= lo + BOUND_TOL)) | ((d > 0) & (p >= hi - BOUND_TOL))
                )
                if kind == "newton" and wrong.any():
                    continue
                step = _step(obj, p, r, J @ d, d, free, lo, hi, f0, slope)
                if step is None:
                    continue
                p, hit_lo, hit_hi = step
                at_lo |= hit_lo
                at_hi |= hit_hi
                moved = True
                break
        released[:] = False
        if moved:
            continue
        # the free sources are optimal on their face: check the bound multipliers
        lam = float(G[F].mean()) if F.size else _best_level(G, at_lo, at_hi)
        scale = max(float(np.abs(G).max()), 1e-300)
        viol = np.where(at_lo & ~fixed, G - lam, 0.0) + np.where(at_hi & ~fixed, lam - G, 0.0)
        out = viol > 1e-9 * scale
        if not out.any():
            return SolverOutput(p, path, it, 0, "KKT conditions hold")
        if F.size == 0:
            out = ~fixed  # a lone free source cannot move (Σ p = 1): free every source not pinned
        at_lo &= ~out
        at_hi &= ~out
        released = out
    return SolverOutput(p, path, max_iter, 1, f"active set did not settle in {max_iter} iterations")


def _direction(
    obj: _Objective,
    r: np.ndarray,
    J: np.ndarray,
    C: np.ndarray | None,
    g: np.ndarray,
    G: np.ndarray,
    F: np.ndarray,
    kind: str,
    S: int,
) -> np.ndarray | None:
    """Newton (KKT of the free sources) or projected steepest-descent direction, zero off ``F``.

    The Newton matrix is ``∇²F = Jᵀ diag(−g') J − Σ_i g_i ∇²r_i``; ``∇²r_i`` is diagonal
    (``r_i`` is separable in ``p``), so the curvature term is ``diag(−Cᵀ g)``, ``≥ 0`` when the
    transfer weights are (concave ``r``)."""
    d = np.zeros(S)
    GF = G[F]
    if kind == "gradient":
        dF = GF - GF.mean()
        m = float(np.abs(dF).max())
        if m <= 0:
            return None
        d[F] = dF / m
        return d
    WF = J[:, F]
    H = WF.T @ (obj.h(r)[:, None] * WF)
    if C is not None:
        H[np.diag_indices_from(H)] -= C[:, F].T @ g
    n = F.size
    ridge = 1e-12 * max(float(np.trace(H)) / n, 1e-300)
    K = np.zeros((n + 1, n + 1))
    K[:n, :n] = H + ridge * np.eye(n)
    K[:n, n] = 1.0
    K[n, :n] = 1.0
    rhs = np.concatenate([GF, [0.0]])
    try:
        sol = np.linalg.solve(K, rhs)
    except np.linalg.LinAlgError:
        return None
    if not np.isfinite(sol).all():
        return None
    d[F] = sol[:n]
    return d


def _step(
    obj: _Objective,
    p: np.ndarray,
    r: np.ndarray,
    dr: np.ndarray,
    d: np.ndarray,
    free: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    f0: float,
    slope: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """A feasible step along ``d`` that lowers ``F``: ``(p, newly at lower, newly at upper)``.

    ``dr = J d`` is the first-order change of ``r`` (exact for the linear law); for a saturating
    ``r`` the objective is ``inf`` off the domain, so the line search also keeps ``r > 0``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.minimum(
            np.where(d < 0, (lo - p) / d, np.inf), np.where(d > 0, (hi - p) / d, np.inf)
        )
    kb = int(np.argmin(ratios))
    alpha_max = min(1.0, float(max(ratios[kb], 0.0)))
    block = kb if ratios[kb] <= 1.0 else -1
    neg = dr < 0
    if neg.any():
        alpha_dom = 0.99 * float(np.min((r[neg] - R_FLOOR) / -dr[neg]))
        if alpha_dom < alpha_max:
            alpha_max, block = alpha_dom, -1
    none = np.zeros_like(free)
    if block >= 0 and ratios[kb] < 1.0:
        # projected full step: may put many free sources on their bounds at once
        mass = 1.0 - float(p[~free].sum())
        if mass > 0:
            p_try = p.copy()
            p_try[free] = mass * project_to_constraints(
                (p[free] + d[free]) / mass, lo[free] / mass, hi[free] / mass
            )
            r_try = obj.ratio(p_try)
            if (r_try > R_FLOOR).all() and obj.value(r_try) < f0:
                hit_lo = free & (p_try <= lo + BOUND_TOL)
                hit_hi = free & (p_try >= hi - BOUND_TOL) & ~hit_lo
                p_try[hit_lo] = lo[hit_lo]
                p_try[hit_hi] = hi[hit_hi]
                return _renormalize(p_try, free & ~hit_lo & ~hit_hi, lo, hi), hit_lo, hit_hi
    if alpha_max <= 0.0:
        if block >= 0:  # blocked at once: the source joins the bound set
            hit = none.copy()
            hit[block] = True
            return p, hit & (d < 0), hit & (d > 0)
        return None
    alpha = alpha_max
    # Near the optimum of a saturating law the decrease of F falls below its rounding error
    # (``slope`` ≈ 2 (F − F*)): take the full Newton step when F does not rise beyond rounding, so
    # that the marginal benefits converge (quadratically) rather than stall at ~sqrt(eps).
    polish = not obj.linear and alpha == 1.0 and slope <= 1e-12 * max(abs(f0), 1e-300)
    while alpha > 1e-14:
        p_new = p + alpha * d
        f_new = obj.value(obj.ratio(p_new))
        if polish and f_new <= f0 + 1e-14 * abs(f0):
            break
        if f_new <= f0 - 1e-4 * alpha * slope and (obj.linear or f_new < f0):
            break  # (a saturating F must strictly drop: a decrease below rounding is no step)
        alpha *= 0.5
    else:
        return None
    hit_lo, hit_hi = none.copy(), none.copy()
    if block >= 0 and alpha == alpha_max:
        (hit_lo if d[block] < 0 else hit_hi)[block] = True
    hit_lo |= free & (p_new <= lo + BOUND_TOL) & (d < 0)
    hit_hi |= free & (p_new >= hi - BOUND_TOL) & (d > 0)
    p_new = np.where(hit_lo, lo, np.where(hit_hi, hi, np.clip(p_new, lo, hi)))
    return _renormalize(p_new, free & ~hit_lo & ~hit_hi, lo, hi), hit_lo, hit_hi


def _renormalize(p: np.ndarray, free: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Put the rounding drift of ``Σ p`` on the free sources."""
    drift = 1.0 - p.sum()
    if drift != 0 and free.any():
        p = p.copy()
        p[free] = np.clip(p[free] + drift / free.sum(), lo[free], hi[free])
    return p


def _best_level(G: np.ndarray, at_lo: np.ndarray, at_hi: np.ndarray) -> float:
    """The ``λ`` that best balances sources all held at bounds (see ``kkt_residual``)."""
    a = G[at_hi].min() if at_hi.any() else np.inf
    b = G[at_lo].max() if at_lo.any() else -np.inf
    if np.isfinite(a) and np.isfinite(b):
        return float(0.5 * (a + b))
    return float(a if np.isfinite(a) else b)


def feasible_start(problem: AllocationProblem, guess: np.ndarray | None) -> np.ndarray | None:
    """A start inside the bounds with every weighted ``r_i > 0``: the projection of ``guess``,
    else of the uniform mix, else of the mix that gives each source its own share."""
    ratio = problem.ratio_map.restrict(problem.active)
    candidates = []
    if guess is not None and np.isfinite(guess).all():
        candidates.append(guess)
    S = problem.n_sources
    candidates.append(np.full(S, 1.0 / S))
    mid = 0.5 * (problem.lo + problem.hi)
    candidates.append(mid)
    for c in candidates:
        p = project_to_constraints(c, problem.lo, problem.hi)
        if (ratio(p) > R_FLOOR).all():
            return p
    return None


def solve_two_step(problem: AllocationProblem, method: str = "auto") -> SolverOutput | None:
    """The two-step closed form when it is feasible, else the active-set method started from it.

    Returns ``None`` when neither settles (the caller then takes the convex path).
    """
    p_cf, why = two_step_closed_form(problem)
    if p_cf is not None and method in ("auto", "two-step"):
        inside = (p_cf >= problem.lo - 1e-12).all() and (p_cf <= problem.hi + 1e-12).all()
        if inside:
            p = np.clip(p_cf, problem.lo, problem.hi)
            return SolverOutput(
                p, "two-step", 1, 0, "interior optimum: marginal benefits equalized"
            )
        why = "the closed form leaves the bounds"
    if method == "two-step":
        return None
    start = feasible_start(problem, p_cf)
    if start is None:
        return None
    out = active_set(problem, start)
    if out.status == 0:
        out.message = f"{out.message} ({why})" if why else out.message
        return out
    return None
