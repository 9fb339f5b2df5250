"""The Climb law: losses through the interaction-aware effective ratio (CLIMB.md §1–3).

    L_i(p, D, N) = E_i + A_i · N^(-α_i) + B_i · (r_i(p, D) · D)^(-β_i)
    r_i(p, D)    = p_i + Σ_{j≠i} W(D)_ij · φ_{η_i}(p_j),   W(D)_ij = W_ij · (D / D_ref)^(-κ_i)
    φ_η(p)       = (p + ε)^η − ε^η   (ε = 1e-6),   so φ_1(p) = p and r = W(D) p when η = 1

``W`` is ``T × S`` (targets × mixture sources); the entry of target ``i`` at its own source column
is fixed to 1. With every source a target (the usual case) ``W`` is square with unit diagonal.
``A = 0`` when model size is not modelled (the runs span one size).

``η_i ∈ (0, 1]`` is the *saturation* of transfer into ``i`` (diminishing returns of a donor's
share). ``η = 1`` is the linear effective ratio ``r = W(D) p`` of CLIMB.md §3, the default of the
JSON format (the key ``eta`` may be omitted). The saturating variant was selected by 5-fold
cross-validation on the RegMix training runs (see docs/laws.md and benchmarks/RESULTS.md).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Self

import numpy as np

from climb.data.runs import RunTable
from climb.errors import ClimbError, ClimbWarning
from climb.laws.base import Law, json_array
from climb.laws.fitting import (
    HUBER_DELTA,
    Backend,
    fit_log_huber,
    fit_per_target,
    huber,
    jitter_starts,
    target_seed,
)

R_FLOOR = 1e-6
"""Effective ratios are floored here: a negative-transfer W can push ``W p`` to ≤ 0."""

TRANSFER_EPS = 1e-6
"""ε of the saturating transfer ``φ_η(p) = (p + ε)^η − ε^η``: keeps its slope finite at p = 0."""

ETA_BOUNDS = (0.2, 1.0)
"""Box of the fitted transfer saturation ``η_i`` (``transfer="saturating"``)."""
ETA_GRID = (0.6, 1.0)
"""Initial ``η`` values of the two-stage init grid; the best start of each is solved."""

Transfer = Literal["saturating", "linear"]


def transfer(p: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """``φ_η(p) = (p + ε)^η − ε^η`` elementwise (``p`` broadcast against ``eta``)."""
    return (p + TRANSFER_EPS) ** eta - TRANSFER_EPS**eta


def transfer_slope(p: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """``φ_η'(p) = η (p + ε)^(η − 1)``."""
    return eta * (p + TRANSFER_EPS) ** (eta - 1.0)


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
    eta: np.ndarray | None = None  # (T,) transfer saturation; None = all 1 (linear r = W p)

    @property
    def linear(self) -> bool:
        """True when ``r = W(D) p`` (every ``η_i = 1``)."""
        return self.eta is None or bool(np.all(self.eta == 1.0))

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
        """``r_i = p_i + Σ_{j≠i} W(D)_ij φ_{η_i}(p_j)`` (= ``W(D) p`` when η = 1), unfloored;
        ``p`` is (n, S) → (n, T)."""
        p2 = np.atleast_2d(np.asarray(p, dtype=float))
        d = np.broadcast_to(np.asarray(tokens, dtype=float), (p2.shape[0],))
        same_d = not self.kappa.any() or bool(np.all(d == d[0]))
        if self.linear:
            if same_d:
                return p2 @ self.W_at(float(d[0])).T
            return np.einsum("nts,ns->nt", self.W_at(d), p2)
        eta = np.asarray(self.eta, dtype=float)
        phi = transfer(p2[:, None, :], eta[None, :, None])  # (n, T, S)
        idx = np.arange(self.n_targets)
        phi[:, idx, self.own] = p2[:, self.own]  # own share enters linearly
        w = self.W_at(float(d[0])) if same_d else self.W_at(d)
        return np.einsum("ts,nts->nt", w, phi) if same_d else np.einsum("nts,nts->nt", w, phi)

    def ratio_jacobian(self, p: np.ndarray, tokens: float) -> np.ndarray:
        """``∂r_i/∂p_k`` at one mixture ``p`` (S,): ``(T, S)``; equals ``W(D)`` when η = 1."""
        w = self.W_at(float(tokens))
        if self.linear:
            return w
        eta = np.asarray(self.eta, dtype=float)
        jac = w * transfer_slope(np.asarray(p, dtype=float)[None, :], eta[:, None])
        jac[np.arange(self.n_targets), self.own] = 1.0
        return jac

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
            **({} if self.eta is None else {"eta": self.eta.tolist()}),
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
        return cls(
            E=vec["E"], A=A, alpha=alpha, B=vec["B"], beta=vec["beta"], W=W, kappa=kappa,
            tokens_ref=float(ref), own=own, eta=eta,
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


# ====================================================================== the fitted laws
# Per-target fitting works in a well-conditioned internal parametrization:
#   d = D / D_ref,  ν = N / N_ref,  b = B · D_ref^(-β),  a = A · N_ref^(-α)
#   L = E + a ν^(-α) + b · (r d)^(-β),   r = p_own + d^(-κ) Σ_{j free} w_j p_j
# and converts to the JSON layout (B, A in raw units) at the end.


@dataclass
class TargetDesign:
    """What one target's fit sees: its measured runs, in normalized units.

    ``free`` are the source columns whose transfer weight is fitted (varied in the runs, not the
    target's own column); the other off-diagonal weights are fixed to 0.
    """

    target: str
    own: int
    p: np.ndarray  # (n, S)
    d: np.ndarray  # (n,) D / D_ref
    nu: np.ndarray  # (n,) N / N_ref
    y: np.ndarray  # (n,) observed loss
    free: np.ndarray  # (m,) source columns with a fitted weight
    fit_kappa: bool
    fit_size: bool
    own_seen: bool  # the target's own proportion is > 0 in some run
    fit_eta: bool = False  # fit the transfer saturation η (else η = 1: r linear in p)
    p_own: np.ndarray = field(init=False, repr=False)  # (n,) p[:, own]
    p_free: np.ndarray = field(init=False, repr=False)  # (n, m) p[:, free]
    log_pfe: np.ndarray = field(init=False, repr=False)  # (n, m) log(p[:, free] + ε)
    log_d: np.ndarray = field(init=False, repr=False)
    log_nu: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.p_own = np.ascontiguousarray(self.p[:, self.own])
        self.p_free = np.ascontiguousarray(self.p[:, self.free])
        self.log_pfe = np.log(self.p_free + TRANSFER_EPS)
        self.log_d = np.log(self.d)
        self.log_nu = np.log(self.nu)

    def donors(self, eta: float) -> tuple[np.ndarray, np.ndarray]:
        """``φ_η(p_j)`` of the free donors and ``∂φ_η(p_j)/∂η = (p+ε)^η ln(p+ε) − ε^η ln ε``,
        each ``(n, m)``; ``(p_free, 0)`` when ``η`` is not fitted."""
        if not self.fit_eta:
            return self.p_free, np.zeros_like(self.p_free)
        pe = np.exp(eta * self.log_pfe)
        ee = TRANSFER_EPS**eta
        return pe - ee, pe * self.log_pfe - ee * LOG_EPS


LOG_EPS = float(np.log(TRANSFER_EPS))


def eta_identified(p_free: np.ndarray) -> bool:
    """Whether ``η`` is identified: some donor takes ≥ 3 distinct shares (with two, e.g. 0 and a,
    ``w φ_η(a)`` is one number and ``w``, ``η`` trade off)."""
    return any(np.unique(col).size >= 3 for col in np.asarray(p_free).T)


def geometric_center(values: np.ndarray) -> float:
    """``exp(mean(log v))`` over the distinct values: the reference D (or N) of a fit."""
    v = np.unique(np.asarray(values, dtype=float))
    return float(np.exp(np.mean(np.log(v))))


def varied(col: np.ndarray) -> bool:
    """Whether a proportion column takes more than one value (else its weight is unidentified)."""
    return bool(col.size) and float(np.ptp(col)) > 1e-12


def designs_from_runs(
    runs: RunTable,
    *,
    interactions: bool,
    law: str,
    tokens_ref: float,
    params_ref: float,
    fit_kappa: bool,
    fit_size: bool,
    n_own_params: int,
    transfer: Transfer = "linear",
) -> list[TargetDesign]:
    """Split the runs into one :class:`TargetDesign` per target; warn about what is unidentified.

    A source whose proportion never varies among a target's measured runs gets no transfer
    weight (fixed 0) and a :class:`~climb.errors.ClimbWarning`; so does a target with fewer
    measured runs than parameters. With ``transfer="saturating"`` a target's ``η`` is fitted when
    some donor takes ≥ 3 distinct shares (:func:`eta_identified`), else fixed to 1.
    """
    out: list[TargetDesign] = []
    unvaried: dict[str, list[str]] = {}
    d_all = runs.tokens / tokens_ref
    nu_all = np.ones(len(runs)) if runs.params is None else runs.params / params_ref
    for k, t in enumerate(runs.targets):
        rows = np.isfinite(runs.loss[:, k])
        own = runs.sources.index(t)
        p = runs.p[rows]
        free_list: list[int] = []
        if interactions:
            for j, s in enumerate(runs.sources):
                if j == own:
                    continue
                if varied(p[:, j]):
                    free_list.append(j)
                else:
                    unvaried.setdefault(s, []).append(t)
        own_seen = bool((p[:, own] > 0).any())
        fit_eta = transfer == "saturating" and eta_identified(p[:, free_list])
        design = TargetDesign(
            target=t, own=own, p=p, d=d_all[rows], nu=nu_all[rows], y=runs.loss[rows, k],
            free=np.array(free_list, dtype=int), fit_kappa=fit_kappa and bool(free_list),
            fit_size=fit_size, own_seen=own_seen, fit_eta=fit_eta,
        )  # fmt: skip
        n_par = (n_own_params + len(free_list) + int(design.fit_kappa) + 2 * int(fit_size)
                 + int(fit_eta))  # fmt: skip
        if not own_seen:
            warnings.warn(
                f"{law} law: target '{t}': its own proportion 'p.{t}' is 0 in every run; "
                "B and its W row are identified only jointly (add runs that include it)",
                ClimbWarning,
                stacklevel=3,
            )
        if rows.sum() < n_par:
            warnings.warn(
                f"{law} law: target '{t}' has {int(rows.sum())} measured runs for {n_par} "
                "parameters; the fit is not identified (add runs)",
                ClimbWarning,
                stacklevel=3,
            )
        out.append(design)
    for s, ts in unvaried.items():
        warnings.warn(
            f"{law} law: source '{s}' never varies in the runs measuring "
            f"{', '.join(ts[:3])}{'…' if len(ts) > 3 else ''}; its transfer weights W[:, '{s}'] "
            "are not identified and are fixed to 0 (vary its share in some runs)",
            ClimbWarning,
            stacklevel=3,
        )
    return out


@dataclass
class ClimbTargetFit:
    """One target's fitted internal parameters and fit diagnostics."""

    E: float
    a: float
    alpha: float
    b: float
    beta: float
    w: np.ndarray  # (m,) weights of design.free
    kappa: float
    cost: float
    rmse: float
    nfev: int
    success: bool
    floored: int  # training runs where r ≤ R_FLOOR
    eta: float = 1.0  # transfer saturation (1 = linear)


def _unpack(
    x: np.ndarray, design: TargetDesign
) -> tuple[float, float, float, np.ndarray, float, float, float, float]:
    """``x = [E, log b, β, w_free…, (κ), (a, α), (η)]`` → (E, log b, β, w, κ, a, α, η)."""
    m = design.free.size
    E, logb, beta = float(x[0]), float(x[1]), float(x[2])
    w = x[3 : 3 + m]
    i = 3 + m
    kappa = 0.0
    if design.fit_kappa:
        kappa = float(x[i])
        i += 1
    a, alpha = 0.0, 0.0
    if design.fit_size:
        a, alpha = float(x[i]), float(x[i + 1])
        i += 2
    eta = float(x[i]) if design.fit_eta else 1.0
    return E, logb, beta, w, kappa, a, alpha, eta


def climb_target_model(x: np.ndarray, design: TargetDesign) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and analytic Jacobian of one target's Climb law (internal parametrization).

    ``L = E + a ν^(-α) + b (r d)^(-β)``, ``r = p_own + d^(-κ) q``, ``q = Σ_j w_j φ_η(p_j)``,
    ``φ_η(p) = (p + ε)^η − ε^η`` (``= p`` when η is not fitted), ``b = e^{log b}``:
    ``∂L/∂E = 1``, ``∂L/∂log b = T``, ``∂L/∂β = −T log(r d)``, ``∂L/∂w_j = −β T d^(-κ) φ_j / r``,
    ``∂L/∂κ = β T d^(-κ) q log d / r``, ``∂L/∂a = ν^(-α)``, ``∂L/∂α = −a ν^(-α) log ν``,
    ``∂L/∂η = −β T d^(-κ) Σ_j w_j [(p_j+ε)^η ln(p_j+ε) − ε^η ln ε] / r``, with
    ``T = b (r d)^(-β)`` and the floor ``r ≥ R_FLOOR`` (zero slope where it binds).
    """
    E, logb, beta, w, kappa, a, alpha, eta = _unpack(x, design)
    pf, dpf = design.donors(eta)
    q = pf @ w if w.size else np.zeros(design.y.shape)
    s = np.exp(-kappa * design.log_d) if design.fit_kappa else 1.0
    r = design.p_own + s * q
    active = r > R_FLOOR
    rf = np.where(active, r, R_FLOOR)
    log_rd = np.log(rf) + design.log_d
    T = np.exp(logb - beta * log_rd)
    size = np.exp(-alpha * design.log_nu) if design.fit_size else 0.0
    pred = E + a * size + T
    g = np.where(active, -beta * T / rf, 0.0)  # ∂L/∂r
    jac = np.empty(
        (T.size, 3 + w.size + int(design.fit_kappa) + 2 * int(design.fit_size) + design.fit_eta)
    )
    jac[:, 0] = 1.0
    jac[:, 1] = T
    jac[:, 2] = -T * log_rd
    i = 3
    if w.size:
        jac[:, 3 : 3 + w.size] = (g * s)[:, None] * pf
        i += w.size
    if design.fit_kappa:
        jac[:, i] = -g * s * q * design.log_d
        i += 1
    if design.fit_size:
        jac[:, i] = size
        jac[:, i + 1] = -a * size * design.log_nu
        i += 2
    if design.fit_eta:
        jac[:, i] = g * s * (dpf @ w)
    return pred, jac


@dataclass(frozen=True)
class FitOptions:
    """Hyper-parameters of a per-target fit (shared by ``climb``, ``isolated``, ``climb-msl``)."""

    n_starts: int = 2
    delta: float = HUBER_DELTA
    w_bounds: tuple[float, float] = (-1.0, 5.0)
    max_nfev: int = 200
    seed: int | None = 0
    w_penalty: float = 0.0


E_GRID = (0.0, 0.3, 0.5, 0.7, 0.85, 0.95)
"""Initial ``E`` as fractions of the target's smallest observed loss (two-stage init grid)."""
BETA_GRID = (0.1, 0.2, 0.3, 0.5, 0.8)
"""Initial ``β`` values of the two-stage init grid."""


def climb_bounds(design: TargetDesign, opts: FitOptions) -> tuple[np.ndarray, np.ndarray]:
    """Box bounds of ``x = [E, log b, β, w…, (κ), (a, α), (η)]``: ``0 ≤ E ≤ min L``,
    ``0.02 ≤ β ≤ 3``, ``w ∈ w_bounds``, ``|κ| ≤ 2``, ``0 ≤ a ≤ 10·max L``, ``0 ≤ α ≤ 3``,
    ``η ∈ ETA_BOUNDS``."""
    m = design.free.size
    lo = [0.0, -40.0, 0.02] + [opts.w_bounds[0]] * m
    hi = [float(design.y.min()), 40.0, 3.0] + [opts.w_bounds[1]] * m
    if design.fit_kappa:
        lo.append(-2.0)
        hi.append(2.0)
    if design.fit_size:
        lo += [0.0, 0.0]
        hi += [10.0 * float(design.y.max()), 3.0]
    if design.fit_eta:
        lo.append(ETA_BOUNDS[0])
        hi.append(ETA_BOUNDS[1])
    return np.array(lo), np.array(hi)


def eta_grid(design: TargetDesign) -> tuple[float, ...]:
    """The ``η`` values the initialization tries: :data:`ETA_GRID`, or only 1 when not fitted."""
    return ETA_GRID if design.fit_eta else (1.0,)


def best_per_eta(scored: list[tuple[float, float, np.ndarray]]) -> list[np.ndarray]:
    """Init points ``(cost, η, x)`` best first, with the best point of every ``η`` moved to the
    front (so the multi-start solves both the saturating and the linear basin)."""
    scored = sorted(scored, key=lambda t: t[0])
    firsts: dict[float, int] = {}
    for k, (_, eta, _) in enumerate(scored):
        firsts.setdefault(eta, k)
    head = sorted(firsts.values())
    return [scored[k][2] for k in head] + [
        x for k, (_, _, x) in enumerate(scored) if k not in firsts.values()
    ]


def n_guess_starts(design: TargetDesign, n: int) -> int:
    """How many of ``n`` starts come from the init grid (the rest are jittered)."""
    k = max(1, (n + 1) // 2)
    return min(n, max(k, len(eta_grid(design))))


def climb_initial_guesses(design: TargetDesign, opts: FitOptions) -> list[np.ndarray]:
    """Two-stage initialization (CLIMB.md §3), best first.

    For each ``(E, β, η)`` on a grid, the isolated law inverts to the observed effective ratio up
    to a constant, ``z = (L − E)^(-1/β) / d = c · r = c·p_own + Σ_j c·w_j φ_η(p_j)`` with
    ``c = b^(-1/β)``: a weighted linear regression of ``z`` on ``p_own`` and ``φ_η(p_free)`` gives
    ``c`` and ``w``; the grid points are ranked by the Huber objective of the full law, the best
    point of each ``η`` first (:func:`best_per_eta`).
    """
    lo, hi = climb_bounds(design, opts)
    y = design.y
    ymin = float(y.min())
    scored: list[tuple[float, float, np.ndarray]] = []
    for eta in eta_grid(design):
        cols = np.column_stack([design.p_own, design.donors(eta)[0]])
        for ef in E_GRID:
            E = ef * ymin
            for beta in BETA_GRID:
                gap = np.maximum(y - E, 1e-12)
                z = gap ** (-1.0 / beta) / design.d
                wt = beta * gap / y / z  # makes the linear residual ≈ the log-loss residual
                coef, *_ = np.linalg.lstsq(cols * wt[:, None], z * wt, rcond=None)
                if design.own_seen:
                    c = float(coef[0])
                    if not np.isfinite(c) or c <= 0:
                        continue
                else:  # only c·w is identified: let the most helpful donor count 1:1
                    c = float(np.max(coef[1:])) if coef.size > 1 else 1.0
                    if not np.isfinite(c) or c <= 0:
                        continue
                x = np.concatenate([[E, -beta * np.log(c), beta], coef[1:] / c])
                if design.fit_kappa:
                    x = np.append(x, 0.0)
                if design.fit_size:
                    x = np.append(x, [0.0, 0.3])
                if design.fit_eta:
                    x = np.append(x, eta)
                x = np.clip(x, lo, hi)
                pred, _ = climb_target_model(x, design)
                if not np.all(np.isfinite(pred)) or (pred <= 0).any():
                    continue
                cost = float(huber(np.log(pred / y), opts.delta)[0].sum())
                scored.append((cost, eta, x))
    if not scored:  # degenerate data: a neutral start
        x = np.concatenate([[0.5 * ymin, 0.0, 0.3], np.zeros(design.free.size)])
        if design.fit_kappa:
            x = np.append(x, 0.0)
        if design.fit_size:
            x = np.append(x, [0.0, 0.3])
        if design.fit_eta:
            x = np.append(x, 1.0)
        return [np.clip(x, lo, hi)]
    return best_per_eta(scored)


def fit_climb_target(k: int, designs: Sequence[TargetDesign], opts: FitOptions) -> ClimbTargetFit:
    """Fit target ``k``: two-stage init, then multi-start Huber-on-log-loss least squares."""
    design = designs[k]
    lo, hi = climb_bounds(design, opts)
    guesses = climb_initial_guesses(design, opts)
    rng = np.random.default_rng(target_seed(opts.seed, k))
    n = max(opts.n_starts, 1)
    starts = guesses[: n_guess_starts(design, n)]
    scale = np.full(lo.shape, 0.05)
    scale[3 : 3 + design.free.size] = 0.1
    while len(starts) < n:
        starts += jitter_starts(guesses[0], lo, hi, 2, rng, scale)[1:]
    res = fit_log_huber(
        functools.partial(climb_target_model, design=design), design.y, starts[:n], lo, hi,
        delta=opts.delta, max_nfev=opts.max_nfev, penalty=_w_penalty(design, lo.size, opts),
    )  # fmt: skip
    E, logb, beta, w, kappa, a, alpha, eta = _unpack(res.x, design)
    if not np.any(w):  # no transfer at all: η has no effect, report the linear value
        eta = 1.0
    phi = design.donors(eta)[0]
    q = phi @ w if w.size else np.zeros(design.y.shape)
    s = design.d ** (-kappa)
    floored = int((design.p_own + s * q <= R_FLOOR).sum())
    return ClimbTargetFit(
        E=E, a=a, alpha=alpha, b=float(np.exp(logb)), beta=beta, w=np.array(w, dtype=float),
        kappa=kappa, cost=res.cost, rmse=res.rmse, nfev=res.nfev, success=res.success,
        floored=floored, eta=eta,
    )  # fmt: skip


def _w_penalty(
    design: TargetDesign, size: int, opts: FitOptions, first: int = 3
) -> np.ndarray | None:
    """Per-parameter shrinkage weights: ``w_penalty`` on the transfer weights, 0 elsewhere."""
    if opts.w_penalty <= 0 or not design.free.size:
        return None
    pen = np.zeros(size)
    pen[first : first + design.free.size] = opts.w_penalty
    return pen


def _check_options(law: str, n_starts: int, huber_delta: float, w_bounds: Sequence[float],
                   max_nfev: int, w_penalty: float = 0.0,
                   transfer: str = "linear") -> None:  # fmt: skip
    if transfer not in ("saturating", "linear"):
        raise ClimbError(f"{law} law: transfer must be 'saturating' or 'linear', got {transfer!r}")
    if not (np.isfinite(w_penalty) and w_penalty >= 0):
        raise ClimbError(f"{law} law: w_penalty must be ≥ 0, got {w_penalty}")
    if int(n_starts) < 1:
        raise ClimbError(f"{law} law: n_starts must be ≥ 1, got {n_starts}")
    if not (huber_delta > 0 and np.isfinite(huber_delta)):
        raise ClimbError(f"{law} law: huber_delta must be > 0, got {huber_delta}")
    if len(w_bounds) != 2 or not (w_bounds[0] < w_bounds[1]) or w_bounds[0] > 0 or w_bounds[1] < 0:
        raise ClimbError(f"{law} law: w_bounds must be (lo, hi) with lo ≤ 0 ≤ hi, got {w_bounds}")
    if int(max_nfev) < 1:
        raise ClimbError(f"{law} law: max_nfev must be ≥ 1, got {max_nfev}")


@dataclass(frozen=True)
class FitSetup:
    """What a climb-family fit derives from the runs and its hyper-parameters (``_prepare``)."""

    fit_tokens: bool  # the runs span ≥ 2 token budgets
    fit_kappa: bool
    fit_size: bool
    tokens_ref: float
    params_ref: float
    opts: FitOptions


def _resolve_flag(value: bool | str, spanned: bool, what: str, option: str, law: str) -> bool:
    if value == "auto":
        return spanned
    if value is True and not spanned:
        raise ClimbError(f"{law} law: {option}=True needs runs at ≥ 2 {what}; the runs have one")
    if not isinstance(value, bool):
        raise ClimbError(f"{law} law: {option} must be 'auto', True or False, got {value!r}")
    return value


class ClimbLaw(Law):
    """The Climb law (CLIMB.md §3), fitted per target from proxy runs.

        L_i(p, D, N) = E_i + A_i N^(-α_i) + B_i · (r_i D)^(-β_i),
        r_i = p_i + Σ_{j≠i} W(D)_ij φ_{η_i}(p_j),   φ_η(p) = (p + ε)^η − ε^η,
        W(D)_ij = W_ij (D / D_ref)^(-κ_i) (i ≠ j),  W_ii = 1.

    ``transfer="saturating"`` (default) fits the saturation ``η_i ∈ [0.2, 1]`` of transfer into
    each target jointly with its other parameters (fixed to 1 where no donor takes ≥ 3 distinct
    shares); ``transfer="linear"`` keeps ``η = 1``, i.e. ``r = W(D) p`` as described in the paper,
    and its JSON has no ``eta``. The saturating variant predicts held-out runs better on RegMix
    (5-fold CV on the training runs, all 13 targets; docs/laws.md, benchmarks/climb_variants.py).

    ``κ`` is fitted only when the runs span ≥ 2 token budgets and ``A N^(-α)`` only when they span
    ≥ 2 model sizes (``fit_kappa`` / ``fit_size`` = ``"auto"``). Each target is fitted
    independently: a two-stage init (isolated law inverted to effective ratios, linear regression
    of those on ``p``), then multi-start bounded least squares with a Huber loss (``huber_delta``)
    on ``log L_pred − log L_obs``. Deterministic for a given ``seed``.

    Hyper-parameters:
        seed: seeds the jittered starts.
        n_starts: starts per target (half from the init grid, half jittered around the best).
        huber_delta: Huber threshold δ on log-loss residuals.
        w_bounds: box for every transfer weight ``w_ij``.
        max_nfev: evaluations per start.
        n_jobs, backend: run the per-target fits in parallel (``fit_per_target``).
        fit_kappa, fit_size: ``"auto"``, True or False.
        w_penalty: shrinkage ``s`` of the transfer weights toward 0 (adds ``≈ δ·s·Σ_j |w_ij|`` to
            each target's Huber objective; 0 = none).
        transfer: ``"saturating"`` (fit ``η``) or ``"linear"`` (``η = 1``).

    Fitted attributes: ``params_`` (:class:`ClimbParams`), ``W_``, ``E_``, ``A_``, ``alpha_``,
    ``B_``, ``beta_``, ``kappa_``, ``eta_`` (all 1 when linear), ``tokens_ref_``, ``fit_info_``
    (per-target diagnostics), ``floored_`` (per target, training runs where ``r`` hit the floor).
    """

    name: ClassVar[str] = "climb"
    interactions: ClassVar[bool] = True
    params_: ClimbParams
    fit_info_: list[dict[str, Any]]

    def __init__(
        self,
        *,
        seed: int | None = 0,
        n_starts: int = 2,
        huber_delta: float = HUBER_DELTA,
        w_bounds: tuple[float, float] = (-1.0, 5.0),
        max_nfev: int = 200,
        n_jobs: int | None = 1,
        backend: Backend = "thread",
        fit_kappa: bool | Literal["auto"] = "auto",
        fit_size: bool | Literal["auto"] = "auto",
        w_penalty: float = 0.0,
        transfer: Transfer = "saturating",
    ) -> None:
        self.seed = seed
        self.n_starts = n_starts
        self.huber_delta = huber_delta
        self.w_bounds = tuple(w_bounds)
        self.max_nfev = max_nfev
        self.n_jobs = n_jobs
        self.backend = backend
        self.fit_kappa = fit_kappa
        self.fit_size = fit_size
        self.w_penalty = w_penalty
        self.transfer = transfer

    # ------------------------------------------------------------------ fitting
    def fit(self, runs: RunTable) -> Self:
        setup = self._prepare(runs)
        designs = designs_from_runs(
            runs, interactions=self.interactions, law=self.name, tokens_ref=setup.tokens_ref,
            params_ref=setup.params_ref, fit_kappa=setup.fit_kappa, fit_size=setup.fit_size,
            n_own_params=3, transfer=self.transfer,
        )  # fmt: skip
        fits = fit_per_target(
            functools.partial(fit_climb_target, designs=designs, opts=setup.opts),
            len(designs), n_jobs=self.n_jobs, backend=self.backend,
        )  # fmt: skip
        self._store(runs, designs, fits, setup.tokens_ref, setup.params_ref)
        return self

    def _prepare(self, runs: RunTable) -> FitSetup:
        """Validate the hyper-parameters and derive what every climb-family fit needs: which scale
        terms the runs identify (κ: ≥ 2 token budgets; A N^(-α): ≥ 2 model sizes), the reference
        scales, and the optimizer options."""
        _check_options(self.name, self.n_starts, self.huber_delta, self.w_bounds, self.max_nfev,
                       self.w_penalty, self.transfer)  # fmt: skip
        fit_tokens = np.unique(runs.tokens).size >= 2
        sizes = None if runs.params is None else np.unique(runs.params)
        fit_kappa = self.interactions and _resolve_flag(
            self.fit_kappa, fit_tokens, "token budgets", "fit_kappa", self.name
        )
        fit_size = _resolve_flag(
            self.fit_size,
            sizes is not None and sizes.size >= 2,
            "model sizes",
            "fit_size",
            self.name,
        )
        opts = FitOptions(
            n_starts=int(self.n_starts), delta=float(self.huber_delta),
            w_bounds=(float(self.w_bounds[0]), float(self.w_bounds[1])),
            max_nfev=int(self.max_nfev), seed=self.seed, w_penalty=float(self.w_penalty),
        )  # fmt: skip
        return FitSetup(
            fit_tokens=fit_tokens,
            fit_kappa=fit_kappa,
            fit_size=fit_size,
            tokens_ref=geometric_center(runs.tokens),
            params_ref=1.0 if runs.params is None else geometric_center(runs.params),
            opts=opts,
        )

    def _store(
        self,
        runs: RunTable,
        designs: Sequence[TargetDesign],
        fits: Sequence[ClimbTargetFit],
        tokens_ref: float,
        params_ref: float,
    ) -> None:
        t, s = len(runs.targets), len(runs.sources)
        P = ClimbParams.isolated(list(runs.sources), list(runs.targets))
        P.tokens_ref = tokens_ref
        W = np.zeros((t, s))
        for i, (dz, f) in enumerate(zip(designs, fits)):
            W[i, dz.own] = 1.0
            W[i, dz.free] = f.w
            P.E[i] = f.E
            P.beta[i] = f.beta
            P.B[i] = f.b * tokens_ref**f.beta  # b = B · D_ref^(-β)
            P.kappa[i] = f.kappa
            P.alpha[i] = f.alpha if dz.fit_size else 0.0
            P.A[i] = f.a * params_ref**f.alpha if dz.fit_size else 0.0  # a = A · N_ref^(-α)
        P.W = W
        if self.interactions and self.transfer == "saturating":
            P.eta = np.array([f.eta for f in fits], dtype=float)
        self.params_ = P
        self.sources_ = list(runs.sources)
        self.targets_ = list(runs.targets)
        self.fit_info_ = [
            {"target": dz.target, "runs": int(dz.y.size), "cost": f.cost, "rmse_log": f.rmse,
             "nfev": f.nfev, "success": f.success, "floored": f.floored, "eta": f.eta,
             "eta_fitted": dz.fit_eta}
            for dz, f in zip(designs, fits)
        ]  # fmt: skip
        self.floored_ = {dz.target: f.floored for dz, f in zip(designs, fits) if f.floored}
        if self.floored_:
            worst = max(self.floored_, key=self.floored_.__getitem__)
            warnings.warn(
                f"{self.name} law: the effective ratio r hit the floor {R_FLOOR:g} in "
                f"{sum(self.floored_.values())} training run(s) (most for '{worst}': "
                f"{self.floored_[worst]}); their predicted loss is capped",
                ClimbWarning,
                stacklevel=3,
            )

    # ------------------------------------------------------------------ prediction
    def _predict(self, p: np.ndarray, tokens: np.ndarray, params: np.ndarray | None) -> np.ndarray:
        P = self.params_
        if params is None and P.A.any():
            raise ClimbError(
                f"{self.name} law: it models model size (A ≠ 0); give the model size N (params)"
            )
        return P.loss_from_ratio(P.effective_ratio(p, tokens), tokens, params)

    def effective_ratio(self, p: np.ndarray, tokens: np.ndarray | float) -> np.ndarray:
        """``r_i = p_i + Σ_{j≠i} W(D)_ij φ_{η_i}(p_j)`` (``= W(D) p`` when η = 1; CLIMB.md §3)
        over ``sources_`` → ``(n, T)``, unfloored."""
        self._check_fitted()
        return self.params_.effective_ratio(np.asarray(p, dtype=float), tokens)

    # fitted-parameter views (JSON layout)
    W_ = property(lambda self: self.params_.W)
    E_ = property(lambda self: self.params_.E)
    A_ = property(lambda self: self.params_.A)
    alpha_ = property(lambda self: self.params_.alpha)
    B_ = property(lambda self: self.params_.B)
    beta_ = property(lambda self: self.params_.beta)
    kappa_ = property(lambda self: self.params_.kappa)
    tokens_ref_ = property(lambda self: self.params_.tokens_ref)

    @property
    def eta_(self) -> np.ndarray:
        """Transfer saturation ``η`` per target (all 1 for a linear law)."""
        P = self.params_
        return np.ones(P.n_targets) if P.eta is None else P.eta

    # ------------------------------------------------------------------ serialization
    def _params_json(self) -> dict[str, Any]:
        return self.params_.to_json()

    @classmethod
    def _from_params_json(
        cls, sources: list[str], targets: list[str], params: dict[str, Any]
    ) -> Self:
        law = cls()
        law.params_ = ClimbParams.from_json(sources, targets, params, law=cls.name)
        law.transfer = "linear" if law.params_.eta is None else "saturating"
        law.fit_info_ = []
        law.floored_ = {}
        return law


class IsolatedLaw(ClimbLaw):
    """The isolated baseline (CLIMB.md §1): the Climb law with ``W = I`` (no interactions),

        L_i = E_i + A_i N^(-α_i) + B_i · (p_i D)^(-β_i).

    A run where ``p_i = 0`` has ``r_i`` at the floor: the isolated law cannot explain loss on a
    language the run never trained on. Its JSON may omit ``W`` (identity); a given ``W`` must be
    the identity.
    """

    name: ClassVar[str] = "isolated"
    interactions: ClassVar[bool] = False

    @classmethod
    def _from_params_json(
        cls, sources: list[str], targets: list[str], params: dict[str, Any]
    ) -> Self:
        ident = ClimbParams.isolated(sources, targets).W
        params = dict(params)
        if "W" not in params:
            params["W"] = ident.tolist()
        law = super()._from_params_json(sources, targets, params)
        if not np.allclose(law.params_.W, ident):
            raise ClimbError("law JSON (isolated): 'W' must be the identity (no interactions)")
        if law.params_.kappa.any():
            raise ClimbError("law JSON (isolated): 'kappa' must be 0 (no interactions)")
        return law


__all__ = ["R_FLOOR", "ClimbLaw", "ClimbParams", "IsolatedLaw", "TargetDesign"]
