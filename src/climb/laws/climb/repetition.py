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

import numpy as np

LAMBDA_DEFAULT = 1.0 / 15.4
"""Default decay ``λ`` of repeated epochs: ``1 / R*_D`` with ``R*_D = 15.4`` (Muennighoff et al.)."""

LAMBDA_GRID = tuple(float(x) for x in np.geomspace(0.01, 3.0, 13))
"""Values of ``λ`` the fit profiles over when the runs repeat data."""

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


def repeats(p: np.ndarray, tokens: np.ndarray, unique: np.ndarray) -> bool:
    """Whether the runs identify ``λ``: ≥ 3 rows train some source beyond :data:`FIT_EPOCHS`."""
    epochs = np.asarray(p) * np.asarray(tokens)[:, None] / unique
    return int((epochs > FIT_EPOCHS).any(axis=1).sum()) >= 3


__all__ = [
    "FIT_EPOCHS",
    "LAMBDA_DEFAULT",
    "LAMBDA_GRID",
    "effective_shares",
    "effective_shares_slope",
    "repeats",
]
