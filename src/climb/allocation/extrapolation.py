"""How far an allocation extrapolates the law beyond the proxy runs it was fitted on.

A law fitted on proxies at budgets ``[D_lo, D_hi]`` (its true-budget rows, ``tokens_range`` in the
law JSON) is asked for ``L_i(p, D*)`` at the target budget ``D*``. Two signs that the answer is an
extrapolation the proxies do not support:

* **budget**: ``D* / D_hi > MAX_BUDGET_RATIO`` (10): the target budget is more than an order of
  magnitude beyond the largest proxy budget;
* **transfer scaling**: the transfer weights scale as ``W(D) = W · (D / D_ref)^(-κ_i)``
  (CLIMB.md §3); when ``s_i = (D* / D_ref)^(-κ_i)`` lies outside ``[1/MAX_TRANSFER_SCALE,
  MAX_TRANSFER_SCALE]`` (3×) for a target with transfer (an off-diagonal ``W_ij ≠ 0``), the
  allocation rests on ``W`` values far from any the proxies measured.

:func:`extrapolation_warnings` returns one line per sign; :func:`~climb.allocation.plan.plan_allocation`
issues them as :class:`~climb.errors.ClimbWarning` and keeps them in the plan's ``warnings``.
"""

from __future__ import annotations

import numpy as np

from climb.laws.climb import ClimbParams

MAX_BUDGET_RATIO = 10.0
"""Warn when ``D*`` exceeds the largest fitted budget by more than this factor."""
MAX_TRANSFER_SCALE = 3.0
"""Warn when ``κ`` scales a target's transfer weights by more than this factor (either way)."""


def transfer_scale(P: ClimbParams, tokens: float) -> np.ndarray:
    """``s_i = (D* / D_ref)^(-κ_i)`` per target: the factor ``W(D*)`` applies to ``W``."""
    return np.asarray((float(tokens) / P.tokens_ref) ** (-P.kappa), dtype=float)


def extrapolation_warnings(P: ClimbParams, targets: list[str], tokens: float) -> list[str]:
    """One line per extrapolation sign at ``D* = tokens`` (see the module docstring); empty when
    none. The budget check needs the law's ``tokens_range`` (laws saved before it existed skip it).
    """
    out: list[str] = []
    if P.tokens_range is not None:
        hi = P.tokens_range[1]
        if tokens / hi > MAX_BUDGET_RATIO:
            out.append(
                f"the target budget D* = {tokens:.3g} tokens is {tokens / hi:.0f}× the largest "
                f"true-budget proxy budget the law was fitted on ({hi:.3g}); beyond "
                f"{MAX_BUDGET_RATIO:g}× its predictions are extrapolations — add proxies at "
                "larger budgets"
            )
    W = np.array(P.W, dtype=float)
    rows = np.flatnonzero(P.has_own)
    W[rows, P.own[rows]] = 0.0
    transfer = np.any(W != 0.0, axis=1)
    scale = transfer_scale(P, tokens)
    far = transfer & ((scale > MAX_TRANSFER_SCALE) | (scale < 1.0 / MAX_TRANSFER_SCALE))
    if far.any():
        order = np.flatnonzero(far)[np.argsort(-np.abs(np.log(scale[far])))]
        shown = ", ".join(f"{targets[i]} {scale[i]:.2g}×" for i in order[:4])
        out.append(
            f"κ scales the transfer weights W by more than {MAX_TRANSFER_SCALE:g}× between the "
            f"fitted budgets (D_ref = {P.tokens_ref:.3g}) and D* = {tokens:.3g} for "
            f"{int(far.sum())} target(s) ({shown}); the allocation relies on transfer far from "
            "the measured range"
        )
    return out


__all__ = ["MAX_BUDGET_RATIO", "MAX_TRANSFER_SCALE", "extrapolation_warnings", "transfer_scale"]
