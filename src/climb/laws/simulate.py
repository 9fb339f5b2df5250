"""Synthetic ground truth: a random Climb law and proxy runs drawn from it.

:func:`random_climb_law` draws a ``climb`` law (CLIMB.md §3) with positive and negative transfer
(linear, ``r = W(D) p``, or saturating with a given ``η``);
:func:`simulate_runs` draws mixtures (Dirichlet, dense and sparse) at the given token budgets and
returns their losses under the law with multiplicative log-normal noise,
``L_obs = L_law · exp(σ ε)``, ``ε ~ N(0, 1)``. Tests fit laws to such runs and check that the fit
recovers what generated them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from climb.data.runs import RunTable
from climb.errors import ClimbError
from climb.laws.climb import ClimbLaw, ClimbParams

MIN_RATIO = 0.02
"""Simulated mixtures keep every effective ratio ``r`` at or above this (rejection)."""


def source_names(k: int) -> list[str]:
    """``s1 … sK``."""
    return [f"s{i + 1}" for i in range(k)]


def random_climb_law(
    sources: int = 4,
    *,
    tokens: Sequence[float] = (1e9,),
    params: Sequence[float] | None = None,
    seed: int = 0,
    eta: float = 1.0,
    eval_only: int = 0,
) -> ClimbLaw:
    """A random fitted-looking ``climb`` law over ``s1 … sK``.

    ``E ~ U(1.5, 2.5)``, ``β ~ U(0.25, 0.45)``, ``B`` such that ``B (D_ref)^(-β) ~ U(0.5, 1.5)``;
    off-diagonal ``W``: 55 % positive ``U(0.05, 0.6)``, 25 % negative ``U(−0.15, −0.02)``,
    else 0; ``κ ~ U(0, 0.15)`` with ≥ 2 budgets; ``A N_ref^(-α) ~ U(0.3, 0.8)``, ``α ~ U(0.2, 0.4)``
    with ≥ 2 model sizes. ``D_ref`` is the geometric mean of the budgets. ``eta``: the transfer
    saturation of every target (1 = linear ``r = W(D) p``, saved without ``eta``; < 1 =
    ``r_i = p_i + Σ_j W_ij φ_η(p_j)``). The random draws do not depend on ``eta``.
    ``eval_only``: that many extra evaluation-only targets ``x1 … xM`` (no own source,
    ``r_x = Σ_j W_xj φ_η(p_j)`` with ``W_xj ~ U(0.1, 0.8)``; their draws come after all others,
    so the law of ``s1 … sK`` does not depend on ``eval_only``).
    """
    k = _check_int(sources, "sources", 1)
    if not (np.isfinite(eta) and 0 < eta <= 1):
        raise ClimbError(f"eta must be in (0, 1] (1 = linear transfer), got {eta}")
    budgets = np.unique(np.asarray(tokens, dtype=float))
    if budgets.size == 0 or not np.all(np.isfinite(budgets) & (budgets > 0)):
        raise ClimbError("tokens: give one or more positive token budgets")
    rng = np.random.default_rng(seed)
    names = source_names(k)
    d_ref = float(np.exp(np.mean(np.log(budgets))))
    P = ClimbParams.isolated(names, names)
    P.tokens_ref = d_ref
    P.E = rng.uniform(1.5, 2.5, k)
    P.beta = rng.uniform(0.25, 0.45, k)
    P.B = rng.uniform(0.5, 1.5, k) * d_ref**P.beta
    u = rng.uniform(size=(k, k))
    W = np.where(u < 0.55, rng.uniform(0.05, 0.6, (k, k)), 0.0)
    W = np.where((u >= 0.55) & (u < 0.8), rng.uniform(-0.15, -0.02, (k, k)), W)
    np.fill_diagonal(W, 1.0)
    P.W = W
    if budgets.size >= 2:
        P.kappa = rng.uniform(0.0, 0.15, k)
    n_ref = 1.0
    if params is not None:
        sizes = np.unique(np.asarray(params, dtype=float))
        if not np.all(np.isfinite(sizes) & (sizes > 0)):
            raise ClimbError("params: model sizes must be positive")
        if sizes.size >= 2:
            n_ref = float(np.exp(np.mean(np.log(sizes))))
            P.alpha = rng.uniform(0.2, 0.4, k)
            P.A = rng.uniform(0.3, 0.8, k) * n_ref**P.alpha
    if eta != 1.0:
        P.eta = np.full(k, float(eta))
    targets = list(names)
    if eval_only:
        m = _check_int(eval_only, "eval_only", 0)
        P, targets = _add_eval_only(P, names, m, rng, n_ref)
    obj = {"law": "climb", "sources": names, "targets": targets, "params": P.to_json()}
    if targets != names:
        obj["eval_only"] = targets[len(names) :]
    return ClimbLaw.from_json(obj)


def _add_eval_only(
    P: ClimbParams, names: list[str], m: int, rng: np.random.Generator, n_ref: float
) -> tuple[ClimbParams, list[str]]:
    """``P`` with ``m`` evaluation-only targets appended (same draws as the others for ``E``,
    ``β``, ``B``, ``κ``, size terms; ``W_x· ~ U(0.1, 0.8)``, no own column)."""
    k = len(names)
    targets = names + [f"x{i + 1}" for i in range(m)]

    def more(values: np.ndarray, draw: np.ndarray) -> np.ndarray:
        return np.concatenate([values, draw if values.any() else np.zeros(m)])

    beta = rng.uniform(0.25, 0.45, m)
    out = ClimbParams.isolated(names, targets)
    out.tokens_ref = P.tokens_ref
    out.E = np.concatenate([P.E, rng.uniform(1.5, 2.5, m)])
    out.beta = np.concatenate([P.beta, beta])
    out.B = np.concatenate([P.B, rng.uniform(0.5, 1.5, m) * P.tokens_ref**beta])
    out.W = np.vstack([P.W, rng.uniform(0.1, 0.8, (m, k))])
    out.kappa = more(P.kappa, rng.uniform(0.0, 0.15, m))
    alpha = rng.uniform(0.2, 0.4, m)
    out.alpha = more(P.alpha, alpha)
    out.A = more(P.A, rng.uniform(0.3, 0.8, m) * n_ref**alpha)
    if P.eta is not None:
        out.eta = np.concatenate([P.eta, np.full(m, float(P.eta[0]))])
    return out, targets


def simulate_runs(
    law: ClimbLaw,
    runs: int = 64,
    *,
    tokens: Sequence[float] = (1e9,),
    params: Sequence[float] | None = None,
    noise: float = 0.01,
    seed: int = 0,
) -> RunTable:
    """``runs`` proxy runs of ``law``, spread round-robin over ``tokens`` (and ``params``).

    Mixtures: half dense (Dirichlet(1)), half sparse (Dirichlet(0.3)); a mixture is redrawn while
    some effective ratio is below :data:`MIN_RATIO`. Noise: ``L · exp(noise · ε)``.
    """
    n = _check_int(runs, "runs", 1)
    if not (np.isfinite(noise) and noise >= 0):
        raise ClimbError(f"noise must be ≥ 0, got {noise}")
    budgets = np.asarray(list(tokens), dtype=float)
    if budgets.size == 0 or not np.all(np.isfinite(budgets) & (budgets > 0)):
        raise ClimbError("tokens: give one or more positive token budgets")
    sizes = None if params is None else np.asarray(list(params), dtype=float)
    if law.params_.A.any() and sizes is None:
        raise ClimbError("the law models model size; give model sizes (params)")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    k = len(law.sources_)
    p = np.empty((n, k))
    d = budgets[np.arange(n) % budgets.size]
    nn = None if sizes is None else sizes[(np.arange(n) // budgets.size) % sizes.size]
    for i in range(n):
        conc = 1.0 if i % 2 == 0 else 0.3
        for _ in range(1000):
            x = rng.dirichlet(np.full(k, conc))
            if law.effective_ratio(x[None, :], d[i]).min() >= MIN_RATIO:
                break
        else:  # pragma: no cover - only for pathological laws
            raise ClimbError(
                "could not draw a mixture with positive effective ratios; lower the interference"
            )
        p[i] = x
    loss = law.predict(p, d, nn) * np.exp(noise * rng.standard_normal((n, len(law.targets_))))
    return RunTable.from_arrays(
        run=[f"sim-{i:04d}" for i in range(n)], tokens=d, p=p, sources=law.sources_,
        loss=loss, targets=law.targets_, params=nn, origin="simulated runs",
    )  # fmt: skip


def simulate(
    sources: int = 4,
    runs: int = 64,
    *,
    tokens: Sequence[float] = (1e9,),
    params: Sequence[float] | None = None,
    noise: float = 0.01,
    seed: int = 0,
    eta: float = 1.0,
    eval_only: int = 0,
) -> tuple[ClimbLaw, RunTable]:
    """A random ``climb`` law (transfer saturation ``eta``, ``eval_only`` evaluation-only targets)
    and runs drawn from it: ``(truth, runs)``."""
    law = random_climb_law(
        sources, tokens=tokens, params=params, seed=seed, eta=eta, eval_only=eval_only
    )
    return law, simulate_runs(law, runs, tokens=tokens, params=params, noise=noise, seed=seed)


def _check_int(value: int, option: str, minimum: int) -> int:
    if int(value) != value or value < minimum:
        raise ClimbError(f"{option} must be an integer ≥ {minimum}, got {value}")
    return int(value)


__all__ = ["MIN_RATIO", "random_climb_law", "simulate", "simulate_runs", "source_names"]
