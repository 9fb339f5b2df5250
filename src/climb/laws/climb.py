"""The Climb law: losses through the interaction-aware effective ratio (CLIMB.md §1–3).

    L_i(p, D, N) = E_i + A_i · N^(-α_i) + B_i · (r_i(p, D) · D)^(-β_i)
    r(p, D)      = W(D) p,      W(D)_ij = W_ij · (D / D_ref)^(-κ_i)  (i ≠ j),  W(D)_ii = 1

``W`` is ``T × S`` (targets × mixture sources); the entry of target ``i`` at its own source column
is fixed to 1. With every source a target (the usual case) ``W`` is square with unit diagonal.
``A = 0`` when model size is not modelled (the runs span one size).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from climb.errors import ClimbError
from climb.laws.base import json_array

R_FLOOR = 1e-6
"""Effective ratios are floored here: a negative-transfer W can push ``W p`` to ≤ 0."""


@dataclass
class ClimbParams:
    """The parameters of a Climb law, in the JSON interchange layout (arrays over targets)."""

    E: np.ndarray  # (T,) irreducible loss
    A: np.ndarray  # (T,) model-size coefficient (0 = not modelled)
    alpha: np.ndarray  # (T,)
    B: np.ndarray  # (T,) data coefficient
    beta: np.ndarray  # (T,)
    W: np.ndarray  # (T, S) transfer weights, 1 at each target's own column
    kappa: np.ndarray  # (T,) scale sensitivity of transfer
    tokens_ref: float  # D_ref
    own: np.ndarray  # (T,) column of each target in the sources

    @property
    def n_targets(self) -> int:
        return int(self.E.shape[0])

    def W_at(self, tokens: np.ndarray | float) -> np.ndarray:
        """``W(D)``: shape ``(T, S)`` for scalar D or ``(n, T, S)`` for a vector of D."""
        d = np.asarray(tokens, dtype=float)
        scale = (d[..., None] / self.tokens_ref) ** (-self.kappa)  # (..., T)
        w = self.W * scale[..., :, None]
        idx = np.arange(self.n_targets)
        w[..., idx, self.own] = 1.0
        return w

    def effective_ratio(self, p: np.ndarray, tokens: np.ndarray | float) -> np.ndarray:
        """``r = W(D) p`` (CLIMB.md §3), unfloored; ``p`` is (n, S) → (n, T)."""
        p2 = np.atleast_2d(p)
        d = np.broadcast_to(np.asarray(tokens, dtype=float), (p2.shape[0],))
        if not self.kappa.any() or np.all(d == d[0]):
            return p2 @ self.W_at(float(d[0])).T
        w = self.W_at(d)  # (n, T, S)
        return np.einsum("nts,ns->nt", w, p2)

    def base_loss(self, params: np.ndarray | float | None) -> np.ndarray:
        """``E_i + A_i N^(-α_i)``: (T,) for scalar/None N, (n, T) for a vector."""
        if params is None or not self.A.any():
            return self.E.copy()
        n = np.asarray(params, dtype=float)
        return self.E + self.A * n[..., None] ** (-self.alpha)

    def loss_from_ratio(
        self, r: np.ndarray, tokens: np.ndarray | float, params: np.ndarray | float | None = None
    ) -> np.ndarray:
        """``L_i = E_i + A_i N^(-α_i) + B_i (r_i D)^(-β_i)`` with r floored at ``R_FLOOR``."""
        d = np.asarray(tokens, dtype=float)
        rd = np.maximum(r, R_FLOOR) * (d[..., None] if d.ndim else d)
        return self.base_loss(params) + self.B * rd ** (-self.beta)

    def to_json(self) -> dict[str, Any]:
        return {
            "E": self.E.tolist(),
            "A": self.A.tolist(),
            "alpha": self.alpha.tolist(),
            "B": self.B.tolist(),
            "beta": self.beta.tolist(),
            "W": self.W.tolist(),
            "kappa": self.kappa.tolist(),
            "tokens_ref": float(self.tokens_ref),
        }

    @classmethod
    def from_json(
        cls, sources: list[str], targets: list[str], params: dict[str, Any], law: str = "climb"
    ) -> Self:
        t, s = len(targets), len(sources)
        own = np.array([sources.index(x) for x in targets], dtype=int)
        vec = {k: json_array(params, k, (t,), law) for k in ("E", "B", "beta")}
        A = json_array(params, "A", (t,), law) if "A" in params else np.zeros(t)
        alpha = json_array(params, "alpha", (t,), law) if "alpha" in params else np.zeros(t)
        kappa = json_array(params, "kappa", (t,), law) if "kappa" in params else np.zeros(t)
        W = json_array(params, "W", (t, s), law)
        if not np.allclose(W[np.arange(t), own], 1.0, atol=1e-9):
            raise ClimbError(f"law JSON ({law}): 'W' must be 1 at each target's own source (diagonal)")
        if (vec["B"] < 0).any() or (vec["beta"] <= 0).any():
            raise ClimbError(f"law JSON ({law}): 'B' must be ≥ 0 and 'beta' > 0")
        ref = params.get("tokens_ref", 1.0)
        if not isinstance(ref, int | float) or not np.isfinite(ref) or ref <= 0:
            raise ClimbError(f"law JSON ({law}): 'tokens_ref' must be a positive number")
        return cls(
            E=vec["E"], A=A, alpha=alpha, B=vec["B"], beta=vec["beta"], W=W, kappa=kappa,
            tokens_ref=float(ref), own=own,
        )  # fmt: skip

    @classmethod
    def isolated(cls, sources: list[str], targets: list[str]) -> Self:
        """Neutral parameters with ``W = I`` (used to start fits)."""
        t, s = len(targets), len(sources)
        own = np.array([sources.index(x) for x in targets], dtype=int)
        W = np.zeros((t, s))
        W[np.arange(t), own] = 1.0
        z = np.zeros(t)
        return cls(E=z.copy(), A=z.copy(), alpha=z.copy(), B=np.ones(t), beta=np.full(t, 0.3),
                   W=W, kappa=z.copy(), tokens_ref=1.0, own=own)  # fmt: skip
