"""Data Mixing Laws (Ye et al. 2024), baseline ``dml`` (CLIMB.md §3).

"Data Mixing Laws: Optimizing Data Mixtures by Predicting Language Modeling Performance"
(Ye et al., 2024) model the loss on domain ``i`` at a *fixed* training budget and model size as an
exponential of a linear function of the mixture:

    L_i(p) = c_i + k_i · exp(Σ_j t_ij p_j)

The law ignores ``D`` (tokens) and ``N`` (params): it predicts the same loss at every budget and
size, and the fit warns when the runs span several budgets or sizes (fit one law per scale, or use
a law that models scale).

Identifiability: on the simplex ``Σ_j p_j = 1``, so ``(k_i, t_i·)`` and
``(k_i e^a, t_i· − a)`` give the same law. We fix the redundancy with ``Σ_j t_ij = 0`` (so
``c_i + k_i`` is the loss at the uniform mixture); ``t_ij − t_il`` and
``k_i exp(t_ij)`` (the excess loss of the pure-``j`` mixture) are what the data determine.

Fit per target on its measured runs (NaN loss = not measured, dropped): Huber loss on
``log L_pred − log L_obs`` (δ = ``huber_delta``), bounded trust-region least squares, started
from profile fits with :mod:`climb.laws.fitting` (for a grid of ``c_i`` below the smallest observed loss,
``log(L − c_i) = log k_i + t_i · p`` is linear) plus random jitters.
"""

from __future__ import annotations

import warnings
from typing import Any, Self

import numpy as np

from climb.data.runs import RunTable
from climb.errors import ClimbError, ClimbWarning
from climb.laws.base import Diagnostics, Law, json_array
from climb.laws.climb.support import SupportProfile
from climb.laws.fitting import (
    HUBER_DELTA,
    FitResult,
    clip_into,
    fit_diagnostics,
    fit_log_huber,
    fit_per_target,
    huber,
    measured,
    target_seed,
)
from climb.laws.supported import SUPPORT_DEFAULTS, SupportedLaw

T_BOUND = 50.0
"""Bound on each free ``t_ij`` in the fit (``|t| ≤ 50`` covers any sensible exponent)."""


class DataMixingLaw(SupportedLaw, Law):
    """Ye et al. (2024) data mixing law, ``L_i(p) = c_i + k_i exp(Σ_j t_ij p_j)`` (fixed D, N).

    Tokens and params are accepted by ``predict`` but ignored.

    Args:
        huber_delta: δ of the Huber loss on log-loss residuals.
        n_starts: starts of the multi-start least squares (≥ 1).
        seed: seed of the random starts.
        n_jobs: parallel per-target fits (``1`` serial, ``-1`` every CPU).
        support, support_count, support_gate, support_trace, support_ceiling: the
            support-aware term for languages a run leaves out or holds at a trace share
            (:mod:`climb.laws.supported`;
            ``support=None``: none).

    Fitted attributes: ``c_`` (T,), ``k_`` (T,), ``t_`` (T, S) with ``Σ_j t_ij = 0``;
    ``support_`` (the fitted term or None);
    ``diagnostics_`` (per-target fit records, not saved).
    """

    name = "dml"

    def __init__(
        self,
        *,
        huber_delta: float = HUBER_DELTA,
        n_starts: int = 4,
        seed: int = 0,
        n_jobs: int | None = 1,
        support: SupportProfile | None = SUPPORT_DEFAULTS["support"],
        support_count: float = SUPPORT_DEFAULTS["support_count"],
        support_gate: float = SUPPORT_DEFAULTS["support_gate"],
        support_trace: float | None = SUPPORT_DEFAULTS["support_trace"],
        support_ceiling: bool = SUPPORT_DEFAULTS["support_ceiling"],
    ) -> None:
        self.n_jobs = n_jobs
        self.huber_delta = huber_delta
        self.n_starts = n_starts
        self.seed = seed
        self.support = support
        self.support_count = support_count
        self.support_gate = support_gate
        self.support_trace = support_trace
        self.support_ceiling = support_ceiling

    def fit(self, runs: RunTable) -> Self:
        """Fit each target's ``(c_i, k_i, t_i·)`` on its measured runs; returns ``self``."""
        self._validate_hyper()
        scales = []
        if np.unique(runs.tokens).size > 1:
            scales.append(f"{np.unique(runs.tokens).size} token budgets")
        if runs.params is not None and np.unique(runs.params).size > 1:
            scales.append(f"{np.unique(runs.params).size} model sizes")
        if scales:
            warnings.warn(
                f"dml law: the runs span {' and '.join(scales)}, but the data mixing law ignores "
                "tokens and params (fixed D, N); fit one law per scale or use a law that models scale",
                ClimbWarning,
                stacklevel=2,
            )
        s, t = runs.n_sources, len(runs.targets)
        if s < 2:
            raise ClimbError("dml law: the runs have one mixture source; nothing to mix")
        for i, target in enumerate(runs.targets):
            n_meas = int(measured(runs.loss[:, i]).sum())
            if n_meas < 2:
                raise ClimbError(
                    f"dml law: target '{target}' has {n_meas} measured run(s); need ≥ 2"
                )

        def fit_one(i: int) -> tuple[float, float, np.ndarray, FitResult]:
            m = measured(runs.loss[:, i])
            rng = np.random.default_rng(target_seed(self.seed, i))
            return _fit_target(runs.p[m], runs.loss[m, i], self.huber_delta, self.n_starts, rng)

        fits = fit_per_target(fit_one, t, n_jobs=self.n_jobs)
        self.c_ = np.array([f[0] for f in fits])
        self.k_ = np.array([f[1] for f in fits])
        self.t_ = np.array([f[2] for f in fits]).reshape(t, s)
        self.diagnostics_ = fit_diagnostics(runs.targets, runs.loss, [f[3] for f in fits])
        self.sources_, self.targets_ = list(runs.sources), list(runs.targets)
        self._fit_support(runs, self._plain(runs.p))
        return self

    def _validate_hyper(self) -> None:
        delta, n_starts = self.huber_delta, self.n_starts
        ok = isinstance(delta, int | float) and not isinstance(delta, bool)
        if not (ok and np.isfinite(delta) and delta > 0):
            raise ClimbError(
                f"dml law: option 'huber_delta' is {delta!r}; give a positive number, e.g. 1e-3"
            )
        if not (isinstance(n_starts, int) and not isinstance(n_starts, bool) and n_starts >= 1):
            raise ClimbError(f"dml law: option 'n_starts' is {n_starts!r}; give an integer ≥ 1")
        self._check_support()

    def _plain(self, p: np.ndarray) -> np.ndarray:
        """``L_i = c_i + k_i exp(Σ_j t_ij p_j)``."""
        return self.c_ + self.k_ * np.exp(p @ self.t_.T)

    def _predict(self, p: np.ndarray, tokens: np.ndarray, params: np.ndarray | None) -> np.ndarray:
        """:meth:`_plain` with the support term (tokens matter only there); params ignored."""
        return self._supported(self._plain(p), p, tokens)

    def _params_json(self) -> dict[str, Any]:
        return {"c": self.c_.tolist(), "k": self.k_.tolist(), "t": self.t_.tolist(),
                **self._support_json(self.sources_, self.targets_)}  # fmt: skip

    @classmethod
    def _from_params_json(
        cls, sources: list[str], targets: list[str], params: dict[str, Any]
    ) -> Self:
        nt, ns = len(targets), len(sources)
        law = cls()
        law.c_ = json_array(params, "c", (nt,), "dml")
        law.k_ = json_array(params, "k", (nt,), "dml")
        law.t_ = json_array(params, "t", (nt, ns), "dml")
        law._load_support(params, sources, targets)
        law.diagnostics_ = Diagnostics()
        law.sources_, law.targets_ = list(sources), list(targets)
        return law


def _fit_target(
    p: np.ndarray, y: np.ndarray, delta: float, n_starts: int, rng: np.random.Generator
) -> tuple[float, float, np.ndarray, FitResult]:
    """Fit one target; returns ``(c, k, t, result)`` with ``Σ t = 0``.

    Free parameters ``θ = [c, log k, t_1 … t_{S-1}]`` (``t_S = −Σ t_{<S}``), so
    ``L_pred = c + exp(log k + Σ_{j<S} t_j (p_j − p_S))``.
    """
    s = p.shape[1]
    # Zero-sum basis: t = Z θ_t, Z = [I; −1ᵀ]; the features are p Z = p_{<S} − p_S.
    q = p[:, :-1] - p[:, -1:]

    def model(th: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e = np.exp(th[1] + q @ th[2:])
        return th[0] + e, np.column_stack([np.ones_like(e), e, e[:, None] * q])

    y_min = float(y.min())
    lo = np.concatenate([[0.0, -30.0], np.full(s - 1, -T_BOUND)])
    hi = np.concatenate([[y_min * (1 - 1e-6), 30.0], np.full(s - 1, T_BOUND)])
    # Profile starts: for fixed c, log(y − c) = log k + t·p is linear in (log k, θ_t).
    design = np.column_stack([np.ones(len(y)), q])
    profiles = []
    for frac in (0.0, 0.5, 0.8, 0.9, 0.95, 0.98):
        c0 = frac * y_min
        coef, *_ = np.linalg.lstsq(design, np.log(y - c0), rcond=None)
        th = clip_into(np.concatenate([[c0], coef]), lo, hi)
        value, _ = huber(np.log(model(th)[0]) - np.log(y), delta)
        profiles.append((float(value.sum()), th))
    profiles.sort(key=lambda z: z[0])
    starts = [profiles[0][1]]
    for _ in range(max(1, n_starts) - 1):
        start = profiles[int(rng.integers(0, min(3, len(profiles))))][1].copy()
        start[0] = float(rng.uniform(0.0, 0.97)) * y_min
        start[2:] = start[2:] + rng.normal(0.0, 0.1, s - 1)
        starts.append(start)
    res = fit_log_huber(model, y, starts, lo, hi, delta=delta, max_nfev=500)
    th = res.x
    t = np.concatenate([th[2:], [-th[2:].sum()]])
    return float(th[0]), float(np.exp(th[1])), t, res
