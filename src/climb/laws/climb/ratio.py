"""The interaction-aware effective ratio ``r`` (CLIMB.md §3), its Jacobian and curvature.

    r_i(p) = p_{own(i)} + Σ_{j≠own(i)} W_ij φ_{η_i}(p_j),     φ_η(p) = (p + ε)^η − ε^η  (ε = 1e-6)

``φ_1(p) = p``, so ``r = W p`` when every ``η_i = 1`` (the linear law; ``W_ii = 1``). A target
without an own source (an *evaluation-only* target, ``own(i) = −1``) has no own share:
``r_i = Σ_j W_ij φ_{η_i}(p_j)``, it is served by transfer alone.

This module is the one place where ``φ_η`` and ``r`` are computed: the law's predictions
(:meth:`climb.laws.climb.params.ClimbParams.effective_ratio`), the fit's per-target donors
(:meth:`climb.laws.climb.fit.TargetDesign.donors`), the allocator (:class:`RatioMap`, its Jacobian
``J = ∂r/∂p`` and curvature ``C = ∂²r/∂p²``) and the allocator's conic program
(:meth:`RatioMap.cvxpy_expression`) all call it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

R_FLOOR = 1e-6
"""Effective ratios are floored here: a negative-transfer W can push ``r`` to ≤ 0."""

RATIO_FLOOR = 0.1
"""Default ``ρ`` of the own-share floor ``r_i ≥ ρ p_i`` of a fitted law's predictions
(:attr:`climb.laws.climb.params.ClimbParams.ratio_floor`): transfer can take at most 90% of a
language's own data away. Selected by cross-validation on the demos' proxies and a simulated law
with strong interference (``benchmarks/ratio_floor.py``; docs/laws.md, "Own-share floor")."""


def is_ratio_floor(rho: Any) -> bool:
    """Whether ``rho`` is a valid own-share floor ``ρ``: a number (not a bool) in ``[0, 1)``."""
    return not isinstance(rho, bool) and isinstance(rho, int | float) and 0 <= rho < 1


def own_shares(p: np.ndarray, own: np.ndarray) -> np.ndarray:
    """Each target's own share ``p_{own(i)}`` in each row of ``p`` ``(n, S)`` → ``(n, T)``: 0 for
    an evaluation-only target (``own(i) = −1``) and for a negative entry."""
    p2 = np.atleast_2d(np.asarray(p, dtype=float))
    return np.where(own >= 0, np.maximum(p2[:, np.maximum(own, 0)], 0.0), 0.0)


TRANSFER_EPS = 1e-6
"""ε of the saturating transfer ``φ_η(p) = (p + ε)^η − ε^η``: keeps its slope finite at p = 0."""

LOG_EPS = float(np.log(TRANSFER_EPS))


def transfer_from_log(log_pe: np.ndarray, eta: Any) -> tuple[np.ndarray, np.ndarray]:
    """``φ_η`` and ``∂φ_η/∂η`` from ``log(p + ε)``:
    ``φ_η = e^{η log(p+ε)} − ε^η``, ``∂φ_η/∂η = (p+ε)^η ln(p+ε) − ε^η ln ε``."""
    pe = np.exp(eta * log_pe)
    ee = TRANSFER_EPS**eta
    return pe - ee, pe * log_pe - ee * LOG_EPS


def transfer(p: np.ndarray, eta: Any) -> np.ndarray:
    """``φ_η(p) = (p + ε)^η − ε^η`` elementwise (``p`` broadcast against ``eta``; ``p < 0`` as 0)."""
    return transfer_from_log(np.log(np.maximum(p, 0.0) + TRANSFER_EPS), eta)[0]


def transfer_slope(p: np.ndarray, eta: Any) -> np.ndarray:
    """``φ_η'(p) = η (p + ε)^(η − 1)``."""
    q = np.maximum(p, 0.0) + TRANSFER_EPS
    return np.asarray(eta * np.exp(eta * np.log(q)) / q)


def transfer_curvature(p: np.ndarray, eta: Any) -> np.ndarray:
    """``φ_η''(p) = η (η − 1) (p + ε)^(η − 2)``."""
    q = np.maximum(p, 0.0) + TRANSFER_EPS
    return np.asarray(eta * (eta - 1.0) * np.exp(eta * np.log(q)) / (q * q))


class RatioMap:
    """``r(p)`` of a set of targets at one ``W`` (one budget), with its derivatives::

        r_i(p) = p_{own(i)} + Σ_{j≠own(i)} W_ij φ_{η_i}(p_j)

    ``W`` is ``(T, S)`` (or ``(n, T, S)``: one matrix per mixture, e.g. ``W(D)`` at each run's
    budget) with 1 at each target's own column; ``own`` is ``(T,)`` (−1: evaluation-only target,
    no own share); ``eta`` is ``(T,)`` or ``None`` (linear, ``r = W p``). ``p`` is ``(S,)`` or
    ``(n, S)``. The Jacobian is ``J_ik = W_ik φ'_{η_i}(p_k)`` (1 at the own column), the curvature
    ``C_ik = W_ik φ''_{η_i}(p_k)`` (``r_i`` is separable in ``p``, so its Hessian is ``diag(C_i·)``).
    """

    def __init__(self, W: np.ndarray, own: np.ndarray, eta: np.ndarray | None) -> None:
        self.W = np.asarray(W, dtype=float)
        self.own = np.asarray(own, dtype=int)
        self.linear = eta is None or bool(np.all(np.asarray(eta) == 1.0))
        T = self.W.shape[-2]
        self.rows = np.arange(T)
        self.has_own = self.own >= 0 if self.own.size == T else np.ones(T, dtype=bool)
        if self.linear:
            return
        self.Wt = self.W.copy()
        self.Wt[..., self.rows[self.has_own], self.own[self.has_own]] = 0.0  # transfer weights
        self.eta = np.asarray(eta, dtype=float)[:, None]
        self.offset = TRANSFER_EPS ** self.eta[:, 0] * self.Wt.sum(axis=-1)  # Σ_j W_ij ε^η_i

    def _own_share(self, p: np.ndarray) -> np.ndarray:
        """``p_{own(i)}`` per target (0 for evaluation-only targets): ``(T,)`` or ``(n, T)``."""
        share = p[..., np.maximum(self.own, 0)]
        return share if self.has_own.all() else np.where(self.has_own, share, 0.0)

    def _powers(self, p: np.ndarray) -> np.ndarray:
        """``(p_k + ε)^η_i`` as a ``(…, T, S)`` table."""
        return np.exp(self.eta * np.log(np.maximum(p, 0.0) + TRANSFER_EPS)[..., None, :])

    def __call__(self, p: np.ndarray) -> np.ndarray:
        """``r`` (unfloored): ``(T,)`` for ``p`` ``(S,)``, ``(n, T)`` for ``(n, S)``."""
        p = np.asarray(p, dtype=float)
        if self.linear:
            if self.W.ndim == 3:
                return np.einsum("nts,ns->nt", self.W, p)
            return np.asarray(self.W @ p if p.ndim == 1 else p @ self.W.T, dtype=float)
        M = self._powers(p)
        return np.asarray(self._own_share(p) + np.einsum("...ts,...ts->...t", self.Wt, M)
                          - self.offset)  # fmt: skip

    def jacobian(self, p: np.ndarray) -> np.ndarray:
        """``J = ∂r/∂p`` at one mixture ``p`` (S,): ``(T, S)`` (``W`` for the linear law)."""
        if self.linear:
            return self.W
        q = np.maximum(p, 0.0) + TRANSFER_EPS
        J = self.Wt * self.eta * self._powers(p) / q[None, :]
        J[self.rows[self.has_own], self.own[self.has_own]] = 1.0
        return J

    def second_order(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(r, J, C)`` at one mixture, ``C_ik = ∂²r_i/∂p_k²`` (zero at the own column)."""
        if self.linear:
            return self(p), self.W, np.zeros_like(self.W)
        q = np.maximum(p, 0.0) + TRANSFER_EPS
        WM = self.Wt * self._powers(p)
        r = self._own_share(p) + WM.sum(axis=1) - self.offset
        J = self.eta * WM / q[None, :]
        J[self.rows[self.has_own], self.own[self.has_own]] = 1.0
        C = (self.eta * (self.eta - 1.0)) * WM / (q * q)[None, :]
        return np.asarray(r), J, C

    def restrict(self, rows: np.ndarray) -> RatioMap:
        """The map of the selected target rows (a boolean mask or indices)."""
        own = self.own[rows] if self.own.size == self.rows.size else self.own
        if self.linear:
            return RatioMap(self.W[rows], own, None)
        return RatioMap(self.W[rows], own, self.eta[rows, 0])

    def cvxpy_expression(self, p: Any, rows: np.ndarray) -> Any:
        """``r_i`` of the selected targets as a cvxpy expression of the variable ``p``.

        ``cp.power(p + ε, η)`` is concave for ``0 < η < 1``, so ``r_i`` is DCP-concave when its
        transfer weights are ``≥ 0``. Targets sharing an ``η`` share one power vector (over the
        columns they draw on)."""
        import cvxpy as cp

        idx = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows)
        if self.linear:
            return self.W[idx] @ p
        Wt = self.Wt[idx]
        eta = self.eta[idx, 0]
        parts: list[Any] = [None] * len(idx)
        for e in np.unique(eta):
            grp = np.flatnonzero(eta == e)
            cols = np.flatnonzero((Wt[grp] != 0).any(axis=0))
            if e == 1.0 or cols.size == 0:
                expr = Wt[grp] @ p
            else:
                powers = cp.power(p[cols] + TRANSFER_EPS, float(e), approx=False)
                expr = Wt[grp][:, cols] @ powers - TRANSFER_EPS ** float(e) * Wt[grp].sum(axis=1)
            for n, i in enumerate(grp):
                parts[i] = expr[n]
        own = self.own[idx]
        return cp.hstack([parts[n] + p[int(own[n])] if own[n] >= 0 else parts[n]
                          for n in range(len(idx))])  # fmt: skip


__all__ = [
    "LOG_EPS",
    "RATIO_FLOOR",
    "R_FLOOR",
    "TRANSFER_EPS",
    "RatioMap",
    "is_ratio_floor",
    "own_shares",
    "transfer",
    "transfer_curvature",
    "transfer_from_log",
    "transfer_slope",
]
