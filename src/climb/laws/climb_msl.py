"""The ``climb-msl`` law: He et al.'s multilingual scaling law with ``p_i`` replaced by ``r_i``.

    L_i(p, D, N) = (E_i + A_i N^(-α_i) + B_i D^(-β_i)) · r_i(p, D)^(-γ_i)
    r_i(p, D)    = p_i + Σ_{j≠i} W(D)_ij φ_{η_i}(p_j),   W(D)_ij = W_ij (D / D_ref)^(-κ_i),  W_ii = 1

(CLIMB.md §3, variants), ``φ_η`` the saturating transfer of :mod:`climb.laws.climb` (``η = 1``:
``r = W(D) p``). With one token budget ``B D^(-β)`` folds into ``E`` (saved as ``B = 0``); with
one model size ``A = 0``; ``κ`` is fitted only with ≥ 2 budgets; ``η`` as in the climb law
(``transfer`` hyper-parameter).

JSON ``params``: ``E, A, alpha, B, beta, gamma`` (each ``[T]``), ``W`` (``[[T×S]]``, 1 at each
target's own source), ``kappa`` (``[T]``), ``tokens_ref``, optional ``eta`` (``[T]``, in (0, 1]).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np

from climb.data.runs import RunTable
from climb.errors import ClimbError
from climb.laws.base import json_array
from climb.laws.climb import (
    ETA_BOUNDS,
    R_FLOOR,
    ClimbLaw,
    ClimbParams,
    FitOptions,
    TargetDesign,
    _w_penalty,
    best_per_eta,
    designs_from_runs,
    eta_grid,
    n_guess_starts,
)
from climb.laws.fitting import fit_log_huber, fit_per_target, huber, jitter_starts, target_seed

GAMMA_GRID = (0.02, 0.05, 0.1, 0.2, 0.4)
"""Initial ``γ`` values of the two-stage init grid."""


@dataclass
class MSLTargetFit:
    """One target's fitted internal parameters (``b = B D_ref^(-β)``, ``a = A N_ref^(-α)``)."""

    E: float
    gamma: float
    w: np.ndarray
    kappa: float
    b: float
    beta: float
    a: float
    alpha: float
    cost: float
    rmse: float
    nfev: int
    success: bool
    floored: int
    eta: float = 1.0


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
    """``0 < E ≤ 10·max L``, ``0 ≤ γ ≤ 3``, ``w ∈ w_bounds``, ``|κ| ≤ 2``, ``b, a ∈ [0, 10·max L]``,
    ``β, α ∈ [0, 3]``, ``η ∈ ETA_BOUNDS``."""
    top = 10.0 * float(design.y.max())
    m = design.free.size
    lo = [1e-6, 0.0] + [opts.w_bounds[0]] * m
    hi = [top, 3.0] + [opts.w_bounds[1]] * m
    if design.fit_kappa:
        lo.append(-2.0)
        hi.append(2.0)
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


def fit_msl_target(
    k: int, designs: Sequence[TargetDesign], opts: FitOptions, fit_tokens: bool
) -> MSLTargetFit:
    """Fit target ``k`` of the climb-msl law (two-stage init + multi-start Huber fit)."""
    design = designs[k]
    lo, hi = msl_bounds(design, opts, fit_tokens)
    guesses = msl_initial_guesses(design, opts, fit_tokens)
    rng = np.random.default_rng(target_seed(opts.seed, k))
    n = max(opts.n_starts, 1)
    starts = guesses[: n_guess_starts(design, n)]
    scale = np.full(lo.shape, 0.05)
    while len(starts) < n:
        starts += jitter_starts(guesses[0], lo, hi, 2, rng, scale)[1:]
    res = fit_log_huber(
        functools.partial(msl_target_model, design=design, fit_tokens=fit_tokens), design.y,
        starts[:n], lo, hi, delta=opts.delta, max_nfev=opts.max_nfev,
        penalty=_w_penalty(design, lo.size, opts, first=2),
    )  # fmt: skip
    x = res.x
    idx = _layout(design, fit_tokens)
    m = design.free.size
    w = np.array(x[2 : 2 + m], dtype=float)
    kappa = float(x[idx["kappa"]]) if idx["kappa"] >= 0 else 0.0
    b, beta = (float(x[idx["b"]]), float(x[idx["b"] + 1])) if idx["b"] >= 0 else (0.0, 0.0)
    a, alpha = (float(x[idx["a"]]), float(x[idx["a"] + 1])) if idx["a"] >= 0 else (0.0, 0.0)
    eta = float(x[idx["eta"]]) if idx["eta"] >= 0 and np.any(w) else 1.0
    q = design.donors(eta)[0] @ w if m else np.zeros(design.y.shape)
    floored = int((design.p_own + design.d ** (-kappa) * q <= R_FLOOR).sum())
    return MSLTargetFit(
        E=float(x[0]), gamma=float(x[1]), w=w, kappa=kappa, b=b, beta=beta, a=a, alpha=alpha,
        cost=res.cost, rmse=res.rmse, nfev=res.nfev, success=res.success, floored=floored,
        eta=eta,
    )  # fmt: skip


class ClimbMSLLaw(ClimbLaw):
    """``climb-msl``: ``L_i = (E_i + A_i N^(-α_i) + B_i D^(-β_i)) · r_i^(-γ_i)``, ``r`` as in climb.

    Same hyper-parameters (``transfer`` included), fitting recipe and fitted attributes as
    :class:`~climb.laws.climb.ClimbLaw`, plus ``gamma_``. ``params_`` holds ``W``, ``kappa``,
    ``eta`` and ``tokens_ref`` (the effective ratio); ``E_, A_, alpha_, B_, beta_`` are this law's
    own coefficients.
    """

    name: ClassVar[str] = "climb-msl"
    interactions: ClassVar[bool] = True
    coef_: dict[str, np.ndarray]

    def fit(self, runs: RunTable) -> Self:
        setup = self._prepare(runs)
        fit_tokens, tokens_ref, params_ref = setup.fit_tokens, setup.tokens_ref, setup.params_ref
        designs = designs_from_runs(
            runs, interactions=True, law=self.name, tokens_ref=tokens_ref, params_ref=params_ref,
            fit_kappa=setup.fit_kappa, fit_size=setup.fit_size,
            n_own_params=2 + 2 * int(fit_tokens), transfer=self.transfer,
        )  # fmt: skip
        fits = fit_per_target(
            functools.partial(
                fit_msl_target, designs=designs, opts=setup.opts, fit_tokens=fit_tokens
            ),
            len(designs), n_jobs=self.n_jobs, backend=self.backend,
        )  # fmt: skip
        t = len(runs.targets)
        P = ClimbParams.isolated(list(runs.sources), list(runs.targets))
        P.tokens_ref = tokens_ref
        coef = {k: np.zeros(t) for k in ("E", "A", "alpha", "B", "beta", "gamma")}
        for i, (dz, f) in enumerate(zip(designs, fits)):
            P.W[i, dz.free] = f.w
            P.kappa[i] = f.kappa
            coef["E"][i] = f.E
            coef["gamma"][i] = f.gamma
            coef["B"][i] = f.b * tokens_ref**f.beta
            coef["beta"][i] = f.beta
            coef["A"][i] = f.a * params_ref**f.alpha
            coef["alpha"][i] = f.alpha
        if self.transfer == "saturating":
            P.eta = np.array([f.eta for f in fits], dtype=float)
        self.params_ = P
        self.coef_ = coef
        self.sources_ = list(runs.sources)
        self.targets_ = list(runs.targets)
        self.fit_info_ = [
            {"target": dz.target, "runs": int(dz.y.size), "cost": f.cost, "rmse_log": f.rmse,
             "nfev": f.nfev, "success": f.success, "floored": f.floored, "eta": f.eta,
             "eta_fitted": dz.fit_eta}
            for dz, f in zip(designs, fits)
        ]  # fmt: skip
        self.floored_ = {dz.target: f.floored for dz, f in zip(designs, fits) if f.floored}
        return self

    def _predict(self, p: np.ndarray, tokens: np.ndarray, params: np.ndarray | None) -> np.ndarray:
        c = self.coef_
        if params is None and c["A"].any():
            raise ClimbError(
                f"{self.name} law: it models model size (A ≠ 0); give the model size N"
            )
        r = np.maximum(self.params_.effective_ratio(p, tokens), R_FLOOR)
        base = c["E"] + c["B"] * tokens[:, None] ** (-c["beta"])
        if params is not None and c["A"].any():
            base = base + c["A"] * params[:, None] ** (-c["alpha"])
        return np.asarray(base * r ** (-c["gamma"]))

    E_ = property(lambda self: self.coef_["E"])
    A_ = property(lambda self: self.coef_["A"])
    alpha_ = property(lambda self: self.coef_["alpha"])
    B_ = property(lambda self: self.coef_["B"])
    beta_ = property(lambda self: self.coef_["beta"])
    gamma_ = property(lambda self: self.coef_["gamma"])

    def _params_json(self) -> dict[str, Any]:
        out = {k: v.tolist() for k, v in self.coef_.items()}
        out["W"] = self.params_.W.tolist()
        out["kappa"] = self.params_.kappa.tolist()
        out["tokens_ref"] = float(self.params_.tokens_ref)
        if self.params_.eta is not None:
            out["eta"] = self.params_.eta.tolist()
        return out

    @classmethod
    def _from_params_json(
        cls, sources: list[str], targets: list[str], params: dict[str, Any]
    ) -> Self:
        t = len(targets)
        law = cls()
        coef = {k: json_array(params, k, (t,), cls.name) for k in ("E", "gamma")}
        for k in ("A", "alpha", "B", "beta"):
            coef[k] = json_array(params, k, (t,), cls.name) if k in params else np.zeros(t)
        if (coef["E"] <= 0).any() or (coef["B"] < 0).any() or (coef["A"] < 0).any():
            raise ClimbError(f"law JSON ({cls.name}): 'E' must be > 0, 'A' and 'B' ≥ 0")
        if (coef["gamma"] < 0).any():
            raise ClimbError(f"law JSON ({cls.name}): 'gamma' must be ≥ 0")
        ratio = {"W": params.get("W"), "kappa": params.get("kappa", [0.0] * t),
                 "tokens_ref": params.get("tokens_ref", 1.0),
                 "E": [0.0] * t, "B": [1.0] * t, "beta": [1.0] * t}  # fmt: skip
        if "eta" in params:
            ratio["eta"] = params["eta"]
        if "W" not in params:
            raise ClimbError(f"law JSON ({cls.name}): missing parameter 'W'")
        law.params_ = ClimbParams.from_json(sources, targets, ratio, law=cls.name)
        law.transfer = "linear" if law.params_.eta is None else "saturating"
        law.coef_ = coef
        law.fit_info_ = []
        law.floored_ = {}
        return law


__all__ = ["ClimbMSLLaw"]
