"""The parameters of a Climb law and their JSON layout (CLIMB.md §1–3).

    L_i(p, D, N) = E_i + A_i · N^(-α_i) + B_i · r_i(p, D)^(-β_i) · D^(-δ_i)
    r_i(p, D)    = p_i + Σ_{j≠i} W(D)_ij · φ_{η_i}(p_j),   W(D)_ij = W_ij · (D / D_ref)^(-κ_i)

with ``δ_i = β_i`` (the loss depends on the effective tokens ``r_i · D``: ``B_i (r_i D)^(-β_i)``,
CLIMB.md §1) unless the law was fitted with ``budget_exponent="free"`` (docs/method.md §3).

(``φ_η`` and ``r`` in :mod:`climb.laws.climb.ratio`.) JSON ``params``: ``E, A, alpha, B, beta,
kappa`` (each ``[T]``), ``W`` (``[[T×S]]``, 1 at each target's own source), ``tokens_ref``, optional
``eta`` (``[T]``, in (0, 1]; absent = linear), optional ``delta`` (``[T]``, ≥ 0; absent = ``beta``),
optional ``tokens_range`` (``[lo, hi]``: the smallest
and largest ``D`` of the true-budget rows it was fitted on; the allocator warns when ``D*`` is far
beyond ``hi``). ``A``, ``alpha``, ``kappa`` may be omitted (0).
An evaluation-only target (no own source; listed in the law JSON's ``eval_only``) has no entry
fixed to 1 in its ``W`` row: ``r_i = Σ_j W(D)_ij φ_{η_i}(p_j)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from climb.errors import ClimbError
from climb.laws.base import json_array
from climb.laws.climb.ratio import R_FLOOR, RatioMap, is_ratio_floor, own_shares
from climb.laws.climb.repetition import LAMBDA_DEFAULT, effective_shares, effective_shares_slope
from climb.laws.climb.support import SupportTerm


def own_columns(sources: list[str], targets: list[str]) -> np.ndarray:
    """The source column of each target (−1 for an evaluation-only target, not a source)."""
    return np.array([sources.index(x) if x in sources else -1 for x in targets], dtype=int)


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
    own: np.ndarray  # (T,) column of each target in the sources (−1: evaluation-only)
    eta: np.ndarray | None = None  # (T,) transfer saturation; None = all 1 (linear r = W p)
    tokens_range: tuple[float, float] | None = None  # (lo, hi) D of the fitted rows; None: unknown
    support: SupportTerm | None = None  # the support-aware term (None: no term)
    unique_tokens: np.ndarray | None = None  # (S,) U_j for repetition S(T; U) (None: no repetition)
    lam: float = LAMBDA_DEFAULT  # λ of S(T; U)
    delta: np.ndarray | None = None  # (T,) budget exponent; None = β (loss of r·D)
    ratio_floor: float = 0.0  # ρ: r_i ≥ ρ p̃_i (own share); 0: none (laws saved before it)

    @property
    def budget_exponent(self) -> np.ndarray:
        """``δ_i``: the exponent of ``D`` in the data term (``β_i`` unless fitted free)."""
        return self.beta if self.delta is None else self.delta

    def data_coef(self, tokens: np.ndarray | float) -> np.ndarray:
        """``B_i D^(-δ_i)``: the data term is ``B_i r_i^(-β_i) D^(-δ_i)`` = this · ``r^(-β_i)``
        ((T,) for scalar D, (n, T) for a vector)."""
        d = np.asarray(tokens, dtype=float)
        return self.B * (d[..., None] if d.ndim else d) ** (-self.budget_exponent)

    @property
    def linear(self) -> bool:
        """True when ``r = W(D) p`` (every ``η_i = 1``)."""
        return self.eta is None or bool(np.all(self.eta == 1.0))

    @property
    def n_targets(self) -> int:
        return int(self.E.shape[0])

    @property
    def has_own(self) -> np.ndarray:
        """``(T,)`` whether each target is also a mixture source (else evaluation-only)."""
        return np.asarray(self.own >= 0)

    def W_at(self, tokens: np.ndarray | float) -> np.ndarray:
        """``W(D)``: shape ``(T, S)`` for scalar D or ``(n, T, S)`` for a vector of D."""
        d = np.asarray(tokens, dtype=float)
        scale = (d[..., None] / self.tokens_ref) ** (-self.kappa)  # (..., T)
        w = self.W * scale[..., :, None]
        idx = np.flatnonzero(self.has_own)
        w[..., idx, self.own[idx]] = 1.0
        return w

    def ratio_map(self, tokens: np.ndarray | float) -> RatioMap:
        """``r(p)`` at budget ``D`` (scalar: one ``W(D)``; vector: one per mixture)."""
        return RatioMap(self.W_at(tokens), self.own, self.eta)

    def effective_ratio(self, p: np.ndarray, tokens: np.ndarray | float) -> np.ndarray:
        """``r_i = max(p_i + Σ_{j≠i} W(D)_ij φ_{η_i}(p_j), ρ p_i)`` (= ``W(D) p`` when η = 1 and
        no floor binds; ``ρ``: :attr:`ratio_floor`, with ``p̃`` for ``p`` under repetition), not
        floored at ``R_FLOOR``; ``p`` is (n, S) → (n, T)."""
        p2 = np.atleast_2d(np.asarray(p, dtype=float))
        d = np.broadcast_to(np.asarray(tokens, dtype=float), (p2.shape[0],))
        if self.unique_tokens is not None:  # p̃_j = S(p_j D; U_j) / D (CLIMB.md §1)
            p2 = effective_shares(p2, d, self.unique_tokens, self.lam)
        same_d = not self.kappa.any() or bool(np.all(d == d[0]))
        r = self.ratio_map(float(d[0]) if same_d else d)(p2)
        if self.ratio_floor <= 0:
            return r
        return np.maximum(r, self.ratio_floor * own_shares(p2, self.own))

    def ratio_jacobian(self, p: np.ndarray, tokens: float) -> np.ndarray:
        """``∂r_i/∂p_k`` at one mixture ``p`` (S,): ``(T, S)``; equals ``W(D)`` when η = 1."""
        p = np.asarray(p, dtype=float)
        if self.unique_tokens is None:
            return self.ratio_map(float(tokens)).jacobian(p)
        pt = effective_shares(p, float(tokens), self.unique_tokens, self.lam)
        slope = effective_shares_slope(p, float(tokens), self.unique_tokens, self.lam)[0]
        return self.ratio_map(float(tokens)).jacobian(pt) * slope[None, :]

    def base_loss(self, params: np.ndarray | float | None) -> np.ndarray:
        """``E_i + A_i N^(-α_i)``: (T,) for scalar/None N, (n, T) for a vector."""
        if params is None or not self.A.any():
            return self.E.copy()
        n = np.asarray(params, dtype=float)
        return self.E + self.A * n[..., None] ** (-self.alpha)

    def loss_from_ratio(
        self, r: np.ndarray, tokens: np.ndarray | float, params: np.ndarray | float | None = None
    ) -> np.ndarray:
        """``L_i = E_i + A_i N^(-α_i) + B_i r_i^(-β_i) D^(-δ_i)`` with r floored at ``R_FLOOR``."""
        return self.base_loss(params) + self.data_coef(tokens) * np.maximum(r, R_FLOOR) ** (
            -self.beta
        )

    def loss(
        self, p: np.ndarray, tokens: np.ndarray | float, params: np.ndarray | float | None = None
    ) -> np.ndarray:
        """``L_i(p, D, N)``: :meth:`loss_from_ratio` of :meth:`effective_ratio`, with the
        support-aware term (:mod:`~climb.laws.climb.support`) for targets whose share is 0."""
        p2 = np.atleast_2d(np.asarray(p, dtype=float))
        out = self.loss_from_ratio(self.effective_ratio(p2, tokens), tokens, params)
        return out if self.support is None else self.support.apply(out, p2, tokens)

    def ratio_from_loss(
        self, loss: np.ndarray, tokens: np.ndarray, params: np.ndarray | None
    ) -> np.ndarray:
        """The observed effective ratio (CLIMB.md §2), the inverse of :meth:`loss_from_ratio`:
        ``r̂_i = [B_i D^(-δ_i) / (L_i − E_i − A_i N^(-α_i))]^(1/β_i)`` (``= (1/D) [B_i / gap]^(1/β_i)``
        when ``δ = β``), NaN at or below the floor."""
        gap = loss - self.base_loss(params)
        coef = self.data_coef(np.asarray(tokens, dtype=float))
        with np.errstate(all="ignore"):
            r = (coef / np.where(gap > 0, gap, np.nan)) ** (1.0 / self.beta)
        return np.where(np.isfinite(r), r, np.nan)

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
            **({} if self.eta is None else {"eta": self.eta.tolist()}),
            **({} if self.delta is None else {"delta": self.delta.tolist()}),
            **({} if self.tokens_range is None else {"tokens_range": list(self.tokens_range)}),
            **({} if self.ratio_floor <= 0 else {"ratio_floor": float(self.ratio_floor)}),
            **(
                {}
                if self.unique_tokens is None
                else {"unique_tokens": self.unique_tokens.tolist(), "lambda": float(self.lam)}
            ),
        }

    @classmethod
    def from_json(
        cls, sources: list[str], targets: list[str], params: dict[str, Any], law: str = "climb"
    ) -> Self:
        t, s = len(targets), len(sources)
        own = own_columns(sources, targets)
        vec = {k: json_array(params, k, (t,), law) for k in ("E", "B", "beta")}
        A = json_array(params, "A", (t,), law) if "A" in params else np.zeros(t)
        alpha = json_array(params, "alpha", (t,), law) if "alpha" in params else np.zeros(t)
        kappa = json_array(params, "kappa", (t,), law) if "kappa" in params else np.zeros(t)
        W = json_array(params, "W", (t, s), law)
        rows = np.flatnonzero(own >= 0)
        if not np.allclose(W[rows, own[rows]], 1.0, atol=1e-9):
            raise ClimbError(
                f"law JSON ({law}): 'W' must be 1 at each target's own source (diagonal)"
            )
        if (vec["B"] < 0).any() or (vec["beta"] <= 0).any():
            raise ClimbError(f"law JSON ({law}): 'B' must be ≥ 0 and 'beta' > 0")
        ref = params.get("tokens_ref", 1.0)
        if not isinstance(ref, int | float) or not np.isfinite(ref) or ref <= 0:
            raise ClimbError(f"law JSON ({law}): 'tokens_ref' must be a positive number")
        eta = json_array(params, "eta", (t,), law) if "eta" in params else None
        if eta is not None and ((eta <= 0).any() or (eta > 1).any()):
            raise ClimbError(f"law JSON ({law}): 'eta' (transfer saturation) must be in (0, 1]")
        delta = json_array(params, "delta", (t,), law) if "delta" in params else None
        if delta is not None and (delta < 0).any():
            raise ClimbError(f"law JSON ({law}): 'delta' (budget exponent) must be ≥ 0")
        span = None
        if "tokens_range" in params:
            lo, hi = json_array(params, "tokens_range", (2,), law)
            if not 0 < lo <= hi:
                raise ClimbError(f"law JSON ({law}): 'tokens_range' must be [lo, hi], 0 < lo ≤ hi")
            span = (float(lo), float(hi))
        unique, lam = None, LAMBDA_DEFAULT
        if "unique_tokens" in params:
            unique = json_array(params, "unique_tokens", (s,), law)
            lam = params.get("lambda", LAMBDA_DEFAULT)
            if (unique <= 0).any() or not isinstance(lam, int | float) or not 0 < lam < np.inf:
                raise ClimbError(
                    f"law JSON ({law}): 'unique_tokens' must be > 0 (one per source) and "
                    "'lambda' a positive number"
                )
        rho = params.get("ratio_floor", 0.0)  # laws saved before the floor: none
        if not is_ratio_floor(rho):
            raise ClimbError(f"law JSON ({law}): 'ratio_floor' must be a number in [0, 1)")
        return cls(
            E=vec["E"], A=A, alpha=alpha, B=vec["B"], beta=vec["beta"], W=W, kappa=kappa,
            tokens_ref=float(ref), own=own, eta=eta, tokens_range=span, unique_tokens=unique,
            lam=float(lam), delta=delta, ratio_floor=float(rho),
        )  # fmt: skip

    @classmethod
    def isolated(cls, sources: list[str], targets: list[str]) -> Self:
        """Neutral parameters with ``W = I`` (used to start fits)."""
        t, s = len(targets), len(sources)
        own = own_columns(sources, targets)
        W = np.zeros((t, s))
        rows = np.flatnonzero(own >= 0)
        W[rows, own[rows]] = 1.0
        z = np.zeros(t)
        return cls(E=z.copy(), A=z.copy(), alpha=z.copy(), B=np.ones(t), beta=np.full(t, 0.3),
                   W=W, kappa=z.copy(), tokens_ref=1.0, own=own)  # fmt: skip


__all__ = ["ClimbParams", "own_columns"]
