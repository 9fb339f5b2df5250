"""Repeated data in the climb law's effective data (CLIMB.md §1; Muennighoff et al. 2023).

A source ``j`` with ``U_j`` unique tokens, trained on for ``T = p_j D`` tokens, is worth

    S(T; U) = T                                       if T ≤ U
            = U · (1 + (1 − exp(−λ (T/U − 1))) / λ)    otherwise

unique-equivalent tokens: epochs beyond the first count less, and at most ``U (1 + 1/λ)`` in all.
The law uses the *effective shares* ``p̃_j = S(p_j D; U_j) / D`` in place of ``p_j`` in the
effective ratio, ``r_i = p̃_i + Σ_j W(D)_ij φ_η(p̃_j)``; without repetition (``p_j D ≤ U_j``)
``p̃ = p`` exactly. ``λ = 1 / 15.4`` by default (Muennighoff et al.'s fitted ``R*_D = 15.4``
repetitions); fitted when the runs repeat data (:data:`FIT_EPOCHS`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from climb.laws.climb.ratio import TRANSFER_EPS, RatioMap

LAMBDA_DEFAULT = 1.0 / 15.4
"""Default decay ``λ`` of repeated epochs: ``1 / R*_D`` with ``R*_D = 15.4`` (Muennighoff et al.)."""

LAMBDA_GRID = tuple(float(x) for x in np.geomspace(0.01, 3.0, 13))
"""Values of ``λ`` the fit profiles over when the runs repeat data."""

PROFILE_REFINE = "parabola"
"""How the ``λ`` profile refines between grid points: ``"parabola"`` (one fit at the vertex of the
parabola in ``ln λ`` through the best grid point and its two neighbours) or ``"brent"`` (bounded
Brent between the neighbours to ``ln λ`` ± 0.02: about 8 fits; the profile up to 2026-12-01).
Same ``λ̂`` on the demos' runs, 1.3–1.6× faster (benchmarks/repetition_profile.py, bootstrap.py)."""

FIT_EPOCHS = 1.5
"""``λ`` is fitted when ≥ 3 runs train some source for more than this many epochs."""


def effective_shares(
    p: np.ndarray, tokens: np.ndarray | float, unique: np.ndarray, lam: float
) -> np.ndarray:
    """``p̃_j = S(p_j D; U_j) / D`` for ``p`` ``(n, S)`` (or ``(S,)``), ``U`` ``(S,)`` (``inf``:
    unknown, never repeated)."""
    p = np.asarray(p, dtype=float)
    d = np.asarray(tokens, dtype=float)
    d = d[:, None] if d.ndim and p.ndim == 2 else d
    epochs = p * d / unique
    extra = np.maximum(epochs - 1.0, 0.0)
    s = np.minimum(epochs, 1.0) + (1.0 - np.exp(-lam * extra)) / lam
    return np.where(epochs > 1.0, s * unique / d, p)


def effective_shares_slope(
    p: np.ndarray, tokens: float, unique: np.ndarray, lam: float
) -> tuple[np.ndarray, np.ndarray]:
    """``dp̃_j/dp_j = exp(−λ (p_j D/U_j − 1))`` beyond one epoch (1 below) and the second
    derivative ``−λ D / U_j · exp(…)`` (0 below): the allocator's chain rule."""
    p = np.asarray(p, dtype=float)
    epochs = p * tokens / unique
    e = np.exp(-lam * np.maximum(epochs - 1.0, 0.0))
    rep = epochs > 1.0
    return np.where(rep, e, 1.0), np.where(rep, -lam * tokens / unique * e, 0.0)


def parabola_vertex(x: np.ndarray, y: np.ndarray) -> float | None:
    """The minimum of the parabola through ``(x_k, y_k)``, ``k = 0, 1, 2`` (``x`` increasing), or
    ``None`` where it is not convex (its second divided difference ≤ 0)."""
    d01 = (y[1] - y[0]) / (x[1] - x[0])
    d12 = (y[2] - y[1]) / (x[2] - x[1])
    curv = (d12 - d01) / (x[2] - x[0])
    if not (np.isfinite(curv) and curv > 0):
        return None
    return float((x[0] + x[1]) / 2 - d01 / (2 * curv))


def repeats(p: np.ndarray, tokens: np.ndarray, unique: np.ndarray) -> bool:
    """Whether the runs identify ``λ``: ≥ 3 rows train some source beyond :data:`FIT_EPOCHS`."""
    epochs = np.asarray(p) * np.asarray(tokens)[:, None] / unique
    return int((epochs > FIT_EPOCHS).any(axis=1).sum()) >= 3


__all__ = [
    "FIT_EPOCHS",
    "LAMBDA_DEFAULT",
    "LAMBDA_GRID",
    "PROFILE_REFINE",
    "RepeatedRatioMap",
    "effective_shares",
    "effective_shares_slope",
    "parabola_vertex",
    "repeats",
]


class RepeatedRatioMap(RatioMap):
    """:class:`~climb.laws.climb.ratio.RatioMap` of the effective shares ``p̃(p)`` at one budget
    ``D`` (the allocator's ``r(p)`` with repetition): ``r(p̃(p))``, ``J = J̃ · diag(p̃')``,
    ``C = C̃ · p̃'² + J̃ · p̃''``. A linear law becomes the saturating map with ``η = 1`` (the same
    ``r``), so the allocator takes its nonlinear paths."""

    def __init__(
        self, W: np.ndarray, own: np.ndarray, eta: np.ndarray | None, unique: np.ndarray,
        lam: float, tokens: float,
    ) -> None:  # fmt: skip
        T = np.asarray(W).shape[-2]
        super().__init__(W, own, np.ones(T) if eta is None else eta)
        if self.linear:  # the η = 1 attributes of the saturating map
            self.Wt = self.W.copy()
            self.Wt[..., self.rows[self.has_own], self.own[self.has_own]] = 0.0
            self.eta = np.ones((T, 1))
            self.offset = TRANSFER_EPS * self.Wt.sum(axis=-1)
            self.linear = False
        self.unique, self.lam, self.tokens = unique, lam, tokens
        self._eta_in = eta

    def _shares(self, p: np.ndarray) -> np.ndarray:
        return effective_shares(p, self.tokens, self.unique, self.lam)

    def __call__(self, p: np.ndarray) -> np.ndarray:
        return super().__call__(self._shares(np.asarray(p, dtype=float)))

    def jacobian(self, p: np.ndarray) -> np.ndarray:
        slope = effective_shares_slope(p, self.tokens, self.unique, self.lam)[0]
        return np.asarray(super().jacobian(self._shares(p)) * slope[None, :])

    def second_order(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        slope, curv = effective_shares_slope(p, self.tokens, self.unique, self.lam)
        r, J, C = super().second_order(self._shares(p))
        return r, J * slope[None, :], C * slope[None, :] ** 2 + J * curv[None, :]

    def restrict(self, rows: np.ndarray) -> RatioMap:
        own = self.own[rows] if self.own.size == self.rows.size else self.own
        eta = None if self._eta_in is None else np.asarray(self._eta_in)[rows]
        return RepeatedRatioMap(self.W[rows], own, eta, self.unique, self.lam, self.tokens)

    def cvxpy_expression(self, p: Any, rows: np.ndarray) -> Any:
        """``r`` of the cvxpy variable through a concave ``p̃``: ``S(T; U) = min`` of its tangent
        lines (exact at 64 points from 1 to the most epochs ``p ≤ 1`` allows; an upper bound in
        between: at most ~1e-4 relative)."""
        import cvxpy as cp

        shares = []
        for j, u in enumerate(self.unique):
            top = self.tokens / u
            if top <= 1.0:
                shares.append(p[j])
                continue
            x = np.linspace(1.0, top, 64)  # epochs
            s = 1.0 + (1.0 - np.exp(-self.lam * (x - 1.0))) / self.lam
            slope = np.exp(-self.lam * (x - 1.0))
            # S/D as a function of p: (u/D)(s + slope (p D/u − x)) for each tangent point
            lines = [p[j]] + [(u / self.tokens) * (s[k] - slope[k] * x[k]) + slope[k] * p[j]
                              for k in range(x.size)]  # fmt: skip
            shares.append(cp.min(cp.hstack(lines)))
        return super().cvxpy_expression(cp.hstack(shares), rows)
