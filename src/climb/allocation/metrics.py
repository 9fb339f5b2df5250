"""Allocation over mixed targets: weighted losses and weighted downstream metrics.

With a :class:`~climb.laws.metrics.MetricLink` (metrics ``M_m = g_m(L_{s(m)})``, ``g_m``
decreasing) the objective is

    minimize  F(p) = Σ_i ω_i L_i(p, D*, N*) − Σ_m ν_m M_m(p, D*, N*)

(losses count against, metrics — higher is better — in favour). Because every metric depends on
the mixture only through its loss target,

    ∇F = Σ_i ω̃_i ∇L_i,   ω̃_i = ω_i + Σ_{m: s(m) = i} ν_m · (−g_m'(L_i)) ≥ ω_i,

so a stationary point of ``F`` is the Climb allocation (:func:`climb.allocation.solve.allocate`)
under the *effective weights* ``ω̃`` evaluated at its own solution. :func:`allocate_mixed` finds
that fixed point by iterating (damped when it oscillates) and reports the final ``F``, the
metrics and ``ω̃``. ``F`` is not convex in general (the link is a sigmoid): the answer is a
stationary point, checked against the plain weighted-loss optimum (``ν = 0``) it starts from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from climb.allocation.constraints import Constraints
from climb.allocation.result import AllocationResult
from climb.allocation.solve import allocate
from climb.errors import ClimbError
from climb.laws.metrics import MetricLink


@dataclass
class MixedAllocation:
    """The answer of :func:`allocate_mixed`.

    Attributes:
        result: the Climb allocation under the converged effective weights (proportions,
            predicted losses, solver path…).
        metrics: metric names; ``predicted_metric``: ``(M,)`` at the allocation.
        objective: ``F = Σ ω_i L_i − Σ ν_m M_m`` at the allocation.
        effective_weights: ``{target: ω̃_i}``.
        nit: fixed-point iterations; ``converged``: ``max |Δp| ≤ tol`` was reached.
    """

    result: AllocationResult
    metrics: list[str]
    predicted_metric: np.ndarray
    objective: float
    effective_weights: dict[str, float]
    nit: int
    converged: bool


def mixed_objective(
    link: MetricLink, p: np.ndarray, tokens: float, params: float | None,
    weights: Mapping[str, float], metric_weights: Mapping[str, float],
) -> float:  # fmt: skip
    """``F(p) = Σ_i ω_i L_i − Σ_m ν_m M_m`` (ω default 1 per target, ν default 0)."""
    law = link.loss_law
    loss = np.asarray(law.predict(p, tokens, params), dtype=float)
    metric = link.from_loss(loss)[0]
    w = np.array([weights.get(t, 1.0) for t in law.targets_])
    nu = np.array([metric_weights.get(m, 0.0) for m in link.metrics_])
    return float(w @ loss - nu @ metric)


def allocate_mixed(
    link: MetricLink,
    tokens: float,
    params: float | None = None,
    *,
    metric_weights: Mapping[str, float],
    constraints: Constraints | None = None,
    method: str = "auto",
    max_iter: int = 200,
    tol: float = 1e-9,
) -> MixedAllocation:
    """Minimize ``Σ ω_i L_i − Σ ν_m M_m`` (see the module docstring).

    ``metric_weights``: ``ν ≥ 0`` per metric of ``link``; ``constraints``: bounds, caps and the
    loss weights ``ω`` (default 1 per target), as for :func:`~climb.allocation.solve.allocate`.
    """
    constraints = constraints or Constraints()
    weights = constraints.weights
    law = link.loss_law
    unknown = [m for m in metric_weights if m not in link.metrics_]
    if unknown:
        raise ClimbError(f"metric_weights: '{unknown[0]}' is not a metric of the metric law ({', '.join(link.metrics_)})")  # fmt: skip
    if any(not (v >= 0 and np.isfinite(v)) for v in metric_weights.values()):
        raise ClimbError("metric_weights: every weight must be a finite number ≥ 0")
    base = {t: float((weights or {}).get(t, 1.0)) for t in law.targets_}
    nu = np.array([float(metric_weights.get(m, 0.0)) for m in link.metrics_])
    idx = link.target_index()

    def effective(loss: np.ndarray) -> dict[str, float]:
        w = dict(base)
        for k, slope in enumerate(nu * link.slope(loss)):
            w[law.targets_[idx[k]]] += float(slope)
        return w

    def solve(w: Mapping[str, float]) -> AllocationResult:
        return allocate(law, tokens, params, method=method,
                        constraints=dataclasses.replace(constraints, weights=dict(w)))  # fmt: skip

    res = solve(base)
    w_eff, damping, converged, it = effective(res.predicted_loss), 1.0, False, 0
    prev_step = np.inf
    while it < max_iter:
        it += 1
        new = solve(w_eff)
        step = float(np.max(np.abs(new.proportions - res.proportions)))
        res = new
        if step <= tol:
            converged = True
            break
        if step >= prev_step:  # oscillating: move the weights only part of the way
            damping = max(damping / 2, 1 / 64)
        prev_step = step
        target = effective(res.predicted_loss)
        w_eff = {t: (1 - damping) * w_eff[t] + damping * target[t] for t in w_eff}
    metric = link.from_loss(res.predicted_loss)[0]
    objective = float(np.array([base[t] for t in law.targets_]) @ res.predicted_loss - nu @ metric)
    return MixedAllocation(result=res, metrics=list(link.metrics_), predicted_metric=metric,
                           objective=objective, effective_weights=w_eff, nit=it,
                           converged=converged)  # fmt: skip
