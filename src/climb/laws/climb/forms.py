"""The loss forms of one target in the climb family: model (with analytic Jacobian), bounds and
two-stage initial guesses, in the fit's internal units (:mod:`climb.laws.climb.fit`).

* :class:`ClimbForm` — ``L = E + a ν^(-α) + b (r d)^(-β)`` (``climb``, ``isolated``);
  ``x = [E, log b, β, w…, (κ), (a, α), (η)]``.
* :class:`MSLForm` — ``L = (E + a ν^(-α) + b d^(-β)) · r^(-γ)`` (``climb-msl``);
  ``x = [E, γ, w…, (κ), (b, β), (a, α), (η)]``.

with ``r = p_own + d^(-κ) Σ_j w_j φ_η(p_j)`` (:meth:`TargetDesign.donors`), floored at
``R_FLOOR``. The estimators pick a form; :func:`~climb.laws.climb.fit.fit_target` does the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np

from climb.laws.climb.fit import (
    ETA_BOUNDS,
    FitOptions,
    TargetDesign,
    TargetFit,
    best_per_eta,
    eta_grid,
)
from climb.laws.climb.ratio import R_FLOOR
from climb.laws.fitting import huber


class TargetForm(Protocol):
    """What :func:`~climb.laws.climb.fit.fit_target` needs from a loss form."""

    @property
    def w_first(self) -> int:
        """Index of the first transfer weight in ``x``."""

    @property
    def w_jitter(self) -> float:
        """Std of the jittered starts on the transfer weights."""

    def n_own_params(self) -> int: ...

    def model(self, x: np.ndarray, design: TargetDesign) -> tuple[np.ndarray, np.ndarray]: ...

    def bounds(self, design: TargetDesign, opts: FitOptions) -> tuple[np.ndarray, np.ndarray]: ...

    def initial_guesses(self, design: TargetDesign, opts: FitOptions) -> list[np.ndarray]: ...

    def unpack(self, x: np.ndarray, design: TargetDesign) -> TargetFit: ...


# ====================================================================== climb
E_GRID = (0.0, 0.3, 0.5, 0.7, 0.85, 0.95)
"""Initial ``E`` as fractions of the target's smallest observed loss (two-stage init grid)."""
BETA_GRID = (0.1, 0.2, 0.3, 0.5, 0.8)
"""Initial ``β`` values of the two-stage init grid."""
GAMMA_GRID = (0.02, 0.05, 0.1, 0.2, 0.4)
"""Initial ``γ`` values of the climb-msl init grid."""


@dataclass(frozen=True)
class ClimbForm:
    """``L = E + a ν^(-α) + b (r d)^(-β)``, ``x = [E, log b, β, w…, (κ), (a, α), (η)]``."""

    w_first: ClassVar[int] = 3
    w_jitter: ClassVar[float] = 0.1

    def n_own_params(self) -> int:
        return 3

    def model(self, x: np.ndarray, design: TargetDesign) -> tuple[np.ndarray, np.ndarray]:
        return climb_target_model(x, design)

    def bounds(self, design: TargetDesign, opts: FitOptions) -> tuple[np.ndarray, np.ndarray]:
        return climb_bounds(design, opts)

    def initial_guesses(self, design: TargetDesign, opts: FitOptions) -> list[np.ndarray]:
        return climb_initial_guesses(design, opts)

    def unpack(self, x: np.ndarray, design: TargetDesign) -> TargetFit:
        E, logb, beta, w, kappa, a, alpha, eta, delta = _unpack(x, design)
        return TargetFit(E=E, a=a, alpha=alpha, b=float(np.exp(logb)), beta=beta,
                         w=np.array(w, dtype=float), kappa=kappa, eta=eta,
                         delta=delta)  # fmt: skip


def _unpack(
    x: np.ndarray, design: TargetDesign
) -> tuple[float, float, float, np.ndarray, float, float, float, float, float]:
    """``x = [E, log b, β, w_free…, (κ), (a, α), (η), (δ)]`` → (E, log b, β, w, κ, a, α, η, δ)
    (``δ = β`` when not fitted)."""
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
    eta = 1.0
    if design.fit_eta:
        eta = float(x[i])
        i += 1
    delta = float(x[i]) if design.fit_delta else beta
    if design.kappa_tied:
        kappa = 1.0 - eta
    return E, logb, beta, w, kappa, a, alpha, eta, delta


def climb_target_model(x: np.ndarray, design: TargetDesign) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and analytic Jacobian of one target's Climb law (internal parametrization).

    ``L = E + a ν^(-α) + b r^(-β) d^(-δ)`` (``δ = β``, i.e. ``b (r d)^(-β)``, unless
    ``design.fit_delta``), ``r = p_own + d^(-κ) q``, ``q = Σ_j w_j φ_η(p_j)``,
    ``φ_η(p) = (p + ε)^η − ε^η`` (``= p`` when η is not fitted), ``b = e^{log b}``:
    ``∂L/∂E = 1``, ``∂L/∂log b = T``, ``∂L/∂β = −T log(r d)`` (``−T log r`` and
    ``∂L/∂δ = −T log d`` when δ is fitted), ``∂L/∂w_j = −β T d^(-κ) φ_j / r``,
    ``∂L/∂κ = β T d^(-κ) q log d / r``, ``∂L/∂a = ν^(-α)``, ``∂L/∂α = −a ν^(-α) log ν``,
    ``∂L/∂η = −β T d^(-κ) Σ_j w_j [(p_j+ε)^η ln(p_j+ε) − ε^η ln ε] / r``, with
    ``T = b r^(-β) d^(-δ)`` and the floor ``r ≥ R_FLOOR`` (zero slope where it binds). With
    ``κ = 1 − η`` (``design.kappa_tied``: saturation in donor tokens) ``∂L/∂η`` gains
    ``−β T d^(-κ) q log d / r``.
    """
    E, logb, beta, w, kappa, a, alpha, eta, delta = _unpack(x, design)
    pf, dpf = design.donors(eta)
    q = pf @ w if w.size else np.zeros(design.y.shape)
    scaled = design.fit_kappa or design.kappa_tied
    s = np.exp(-kappa * design.log_d) if scaled else 1.0
    r = design.p_own + s * q
    active = r > R_FLOOR
    rf = np.where(active, r, R_FLOOR)
    log_r = np.log(rf)
    if design.fit_delta:
        T = np.exp(logb - beta * log_r - delta * design.log_d)
    else:  # b (r d)^(-β), computed as such (bit-identical to the shared form's golden fits)
        log_rd = log_r + design.log_d
        T = np.exp(logb - beta * log_rd)
    size = np.exp(-alpha * design.log_nu) if design.fit_size else 0.0
    pred = E + a * size + T
    g = np.where(active, -beta * T / rf, 0.0)  # ∂L/∂r
    jac = np.empty(
        (T.size, 3 + w.size + int(design.fit_kappa) + 2 * int(design.fit_size) + design.fit_eta
         + design.fit_delta)
    )  # fmt: skip
    jac[:, 0] = 1.0
    jac[:, 1] = T
    jac[:, 2] = -T * (log_r if design.fit_delta else log_rd)
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
        if design.kappa_tied:
            jac[:, i] += g * s * q * design.log_d
        i += 1
    if design.fit_delta:
        jac[:, i] = -T * design.log_d
    return pred, jac


def climb_bounds(design: TargetDesign, opts: FitOptions) -> tuple[np.ndarray, np.ndarray]:
    """Box bounds of ``x = [E, log b, β, w…, (κ), (a, α), (η), (δ)]``: ``0 ≤ E ≤ min L``,
    ``0.02 ≤ β ≤ 3``, ``w ∈ w_bounds``, ``|κ| ≤ kappa_bound``, ``0 ≤ a ≤ 10·max L``, ``0 ≤ α ≤ 3``,
    ``η ∈ ETA_BOUNDS``, ``0 ≤ δ ≤ 3``."""
    m = design.free.size
    lo = [0.0, -40.0, 0.02] + [opts.w_bounds[0]] * m
    hi = [float(design.y.min()), 40.0, 3.0] + [opts.w_bounds[1]] * m
    if design.fit_kappa:
        lo.append(-opts.kappa_bound)
        hi.append(opts.kappa_bound)
    if design.fit_size:
        lo += [0.0, 0.0]
        hi += [10.0 * float(design.y.max()), 3.0]
    if design.fit_eta:
        lo.append(ETA_BOUNDS[0])
        hi.append(ETA_BOUNDS[1])
    if design.fit_delta:
        lo.append(0.0)
        hi.append(3.0)
    return np.array(lo), np.array(hi)


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
                if design.fit_delta:  # start at the shared exponent δ = β
                    x = np.append(x, beta)
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
        if design.fit_delta:
            x = np.append(x, 0.3)
        return [np.clip(x, lo, hi)]
    return best_per_eta(scored)


# ====================================================================== climb-msl
@dataclass(frozen=True)
class MSLForm:
    """``L = (E + a ν^(-α) + b d^(-β)) · r^(-γ)``, ``x = [E, γ, w…, (κ), (b, β), (a, α), (η)]``;
    the ``b d^(-β)`` block only when the runs span ≥ 2 budgets (``fit_tokens``)."""

    fit_tokens: bool
    w_first: ClassVar[int] = 2
    w_jitter: ClassVar[float] = 0.05

    def n_own_params(self) -> int:
        return 2 + 2 * int(self.fit_tokens)

    def model(self, x: np.ndarray, design: TargetDesign) -> tuple[np.ndarray, np.ndarray]:
        return msl_target_model(x, design, self.fit_tokens)

    def bounds(self, design: TargetDesign, opts: FitOptions) -> tuple[np.ndarray, np.ndarray]:
        return msl_bounds(design, opts, self.fit_tokens)

    def initial_guesses(self, design: TargetDesign, opts: FitOptions) -> list[np.ndarray]:
        return msl_initial_guesses(design, opts, self.fit_tokens)

    def unpack(self, x: np.ndarray, design: TargetDesign) -> TargetFit:
        idx = _layout(design, self.fit_tokens)
        m = design.free.size
        w = np.array(x[2 : 2 + m], dtype=float)
        kappa = float(x[idx["kappa"]]) if idx["kappa"] >= 0 else 0.0
        b, beta = (float(x[idx["b"]]), float(x[idx["b"] + 1])) if idx["b"] >= 0 else (0.0, 0.0)
        a, alpha = (float(x[idx["a"]]), float(x[idx["a"] + 1])) if idx["a"] >= 0 else (0.0, 0.0)
        eta = float(x[idx["eta"]]) if idx["eta"] >= 0 else 1.0
        return TargetFit(E=float(x[0]), a=a, alpha=alpha, b=b, beta=beta, w=w, kappa=kappa,
                         eta=eta, gamma=float(x[1]))  # fmt: skip


def _layout(design: TargetDesign, fit_tokens: bool) -> dict[str, int]:
    """Index of each parameter block in ``x = [E, γ, w…, (κ), (b, β), (a, α), (η)]``."""
    m = design.free.size
    i = 2 + m
    idx = {"w": 2, "kappa": -1, "b": -1, "a": -1, "eta": -1, "size": 0}
    if design.fit_kappa:
        idx["kappa"] = i
        i += 1
    if fit_tokens:
        idx["b"] = i
        i += 2
    if design.fit_size:
        idx["a"] = i
        i += 2
    if design.fit_eta:
        idx["eta"] = i
        i += 1
    idx["size"] = i
    return idx


def msl_target_model(
    x: np.ndarray, design: TargetDesign, fit_tokens: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and analytic Jacobian of one target's climb-msl law (internal units).

    ``L = (E + a ν^(-α) + b d^(-β)) · r^(-γ)``, ``r = p_own + d^(-κ) Σ_j w_j φ_η(p_j)``
    (floored; ``φ_η(p) = p`` when η is not fitted).
    """
    idx = _layout(design, fit_tokens)
    m = design.free.size
    E, gamma = float(x[0]), float(x[1])
    w = x[2 : 2 + m]
    eta = float(x[idx["eta"]]) if idx["eta"] >= 0 else 1.0
    pf, dpf = design.donors(eta)
    q = pf @ w if m else np.zeros(design.y.shape)
    kappa = float(x[idx["kappa"]]) if idx["kappa"] >= 0 else 0.0
    s = np.exp(-kappa * design.log_d) if idx["kappa"] >= 0 else 1.0
    r = design.p_own + s * q
    active = r > R_FLOOR
    rf = np.where(active, r, R_FLOOR)
    P = np.exp(-gamma * np.log(rf))
    base = np.full(design.y.shape, E)
    if idx["b"] >= 0:
        b, beta = float(x[idx["b"]]), float(x[idx["b"] + 1])
        dt = np.exp(-beta * design.log_d)
        base = base + b * dt
    if idx["a"] >= 0:
        a, alpha = float(x[idx["a"]]), float(x[idx["a"] + 1])
        nt = np.exp(-alpha * design.log_nu)
        base = base + a * nt
    L = base * P
    jac = np.empty((L.size, idx["size"]))
    jac[:, 0] = P
    jac[:, 1] = -L * np.log(rf)
    g = np.where(active, -gamma * L / rf, 0.0)  # ∂L/∂r
    if m:
        jac[:, 2 : 2 + m] = (g * s)[:, None] * pf
    if idx["kappa"] >= 0:
        jac[:, idx["kappa"]] = -g * s * q * design.log_d
    if idx["b"] >= 0:
        jac[:, idx["b"]] = dt * P
        jac[:, idx["b"] + 1] = -b * dt * design.log_d * P
    if idx["a"] >= 0:
        jac[:, idx["a"]] = nt * P
        jac[:, idx["a"] + 1] = -a * nt * design.log_nu * P
    if idx["eta"] >= 0:
        jac[:, idx["eta"]] = g * s * (dpf @ w)
    return L, jac


def msl_bounds(
    design: TargetDesign, opts: FitOptions, fit_tokens: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``0 < E ≤ 10·max L``, ``0 ≤ γ ≤ 3``, ``w ∈ w_bounds``, ``|κ| ≤ kappa_bound``, ``b, a ∈ [0, 10·max L]``,
    ``β, α ∈ [0, 3]``, ``η ∈ ETA_BOUNDS``."""
    top = 10.0 * float(design.y.max())
    m = design.free.size
    lo = [1e-6, 0.0] + [opts.w_bounds[0]] * m
    hi = [top, 3.0] + [opts.w_bounds[1]] * m
    if design.fit_kappa:
        lo.append(-opts.kappa_bound)
        hi.append(opts.kappa_bound)
    if fit_tokens:
        lo += [0.0, 0.0]
        hi += [top, 3.0]
    if design.fit_size:
        lo += [0.0, 0.0]
        hi += [top, 3.0]
    if design.fit_eta:
        lo.append(ETA_BOUNDS[0])
        hi.append(ETA_BOUNDS[1])
    return np.array(lo), np.array(hi)


def msl_initial_guesses(
    design: TargetDesign, opts: FitOptions, fit_tokens: bool
) -> list[np.ndarray]:
    """Two-stage init: for each ``(γ, η)`` on a grid, ``z = L^(-1/γ) = c·r`` is linear in ``p_own``
    and ``φ_η(p_free)`` (``c = E^(-1/γ)``); regress, convert, rank by the Huber objective. Best
    first, the best of each ``η`` at the front."""
    lo, hi = msl_bounds(design, opts, fit_tokens)
    y = design.y
    scored: list[tuple[float, float, np.ndarray]] = []
    for eta, gamma in ((e, g) for e in eta_grid(design) for g in GAMMA_GRID):
        cols = np.column_stack([design.p_own, design.donors(eta)[0]])
        z = y ** (-1.0 / gamma)
        scale = np.exp(np.mean(np.log(z)))
        zs = z / scale
        wt = gamma / zs
        coef, *_ = np.linalg.lstsq(cols * wt[:, None], zs * wt, rcond=None)
        c = float(coef[0]) if design.own_seen else float(np.max(coef[1:], initial=1.0))
        if not np.isfinite(c) or c <= 0:
            continue
        E = float(np.exp(-gamma * (np.log(c) + np.log(scale))))
        x = np.concatenate([[E, gamma], coef[1:] / c])
        if design.fit_kappa:
            x = np.append(x, 0.0)
        if fit_tokens:
            x = np.append(x, [0.0, 0.3])
        if design.fit_size:
            x = np.append(x, [0.0, 0.3])
        if design.fit_eta:
            x = np.append(x, eta)
        x = np.clip(x, lo, hi)
        pred, _ = msl_target_model(x, design, fit_tokens)
        if not np.all(np.isfinite(pred)) or (pred <= 0).any():
            continue
        scored.append((float(huber(np.log(pred / y), opts.delta)[0].sum()), eta, x))
    if scored:
        return best_per_eta(scored)
    x = np.concatenate([[float(np.median(y)), 0.1], np.zeros(design.free.size)])
    x = np.concatenate([x, np.zeros(int(design.fit_kappa)), [0.0, 0.3] * int(fit_tokens),
                        [0.0, 0.3] * int(design.fit_size), [1.0] * int(design.fit_eta)])  # fmt: skip
    return [np.clip(x, lo, hi)]


__all__ = [
    "ClimbForm",
    "MSLForm",
    "TargetForm",
    "climb_target_model",
    "msl_target_model",
]
