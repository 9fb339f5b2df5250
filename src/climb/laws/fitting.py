"""Shared fitting machinery for the parametric laws (CLIMB.md §3, "Fitting").

Every parametric law fits one target (one loss column) at a time with the same recipe:

* the residual of run ``n`` is ``ρ_n = log L_pred,n − log L_obs,n``;
* the objective is the Huber loss of the residuals, ``Σ_n H_δ(ρ_n)`` with
  ``H_δ(ρ) = ρ²/2`` for ``|ρ| ≤ δ`` and ``δ(|ρ| − δ/2)`` beyond (δ ≈ 1e-3);
* parameters are bounded, the model supplies an analytic Jacobian, and the fit is a multi-start
  trust-region-reflective least-squares solve (``scipy.optimize.least_squares``, ``loss="huber"``);
* the targets are independent, so :func:`fit_per_target` runs them in parallel.

Public API (stable; other laws build on it):

* :func:`huber` — value and derivative of ``H_δ`` (elementwise).
* :func:`huber_log_objective` — ``Σ H_δ(log pred − log obs)`` and its gradient, from a model's
  predictions and Jacobian (for L-BFGS-B users).
* :func:`fit_log_huber` — the multi-start bounded fit of one target; returns a :class:`FitResult`.
* :func:`jitter_starts` — random start points around a guess, inside the bounds, deterministic for
  a seed.
* :func:`fit_per_target` — run ``fn(k)`` for ``k = 0..K-1`` serially, on threads or on processes.
* :func:`target_seed` — a per-target seed derived from the law's ``seed`` (so results do not depend
  on the order or the backend the targets run on).
* :func:`measured` — the rows of a loss column that were measured (``NaN`` = not measured).
* :func:`fit_diagnostics` — a law's ``diagnostics_`` from its per-target :class:`FitResult`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import numpy as np
from scipy.optimize import least_squares

from climb.errors import ClimbError
from climb.laws.base import Diagnostics

HUBER_DELTA = 1e-3
"""Default Huber threshold δ on log-loss residuals (≈ 0.1 % relative error)."""

Model = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""``model(x) -> (pred, jac)``: predictions ``(n,)`` (> 0) and their Jacobian ``(n, m)``."""

R = TypeVar("R")
Backend = Literal["serial", "thread", "process"]


@dataclass
class FitResult:
    """Outcome of :func:`fit_log_huber` (scipy-like: the answer and how it was reached).

    Attributes:
        x: best parameter vector found.
        cost: ``Σ_n H_δ(ρ_n)`` at ``x`` (the Huber objective on log residuals).
        rmse: root-mean-square log residual at ``x`` (unweighted, for reporting).
        success: whether the best start's solver reported convergence.
        message: the best start's solver message.
        nfev: function evaluations summed over all starts.
        n_starts: number of starts tried.
        costs: final cost of every start (same order as the starts).
    """

    x: np.ndarray
    cost: float
    rmse: float
    success: bool
    message: str
    nfev: int
    n_starts: int
    costs: list[float] = field(default_factory=list)


def huber(r: np.ndarray, delta: float = HUBER_DELTA) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss ``H_δ(r)`` and its derivative, elementwise.

    ``H_δ(r) = r²/2`` if ``|r| ≤ δ`` else ``δ·(|r| − δ/2)``; ``H_δ'(r) = clip(r, −δ, δ)``.
    """
    r = np.asarray(r, dtype=float)
    a = np.abs(r)
    value = np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))
    return value, np.clip(r, -delta, delta)


def huber_log_objective(
    pred: np.ndarray, jac: np.ndarray, obs: np.ndarray, delta: float = HUBER_DELTA
) -> tuple[float, np.ndarray]:
    """``f = Σ_n H_δ(log pred_n − log obs_n)`` and ``∇f = Jᵀ (H_δ'(ρ) / pred)``."""
    rho = np.log(pred) - np.log(obs)
    value, d = huber(rho, delta)
    return float(value.sum()), jac.T @ (d / pred)


def measured(loss: np.ndarray) -> np.ndarray:
    """Boolean mask of measured losses (``NaN`` = not measured, dropped per target)."""
    return np.isfinite(np.asarray(loss, dtype=float))


def fit_diagnostics(
    targets: Sequence[str], loss: np.ndarray, results: Sequence[FitResult]
) -> Diagnostics:
    """Per-target records (``target``, ``runs``, ``cost``, ``rmse_log``, ``nfev``, ``success``,
    ``message``) of fits by :func:`fit_log_huber`."""
    return Diagnostics(
        targets=[
            {"target": t, "runs": int(measured(loss[:, k]).sum()), "cost": r.cost,
             "rmse_log": r.rmse, "nfev": r.nfev, "success": r.success, "message": r.message}
            for k, (t, r) in enumerate(zip(targets, results))
        ]
    )  # fmt: skip


def target_seed(seed: int | None, k: int) -> np.random.SeedSequence:
    """The random stream of target ``k`` under the law's ``seed`` (independent of run order)."""
    return np.random.SeedSequence([0 if seed is None else int(seed), int(k)])


def jitter_starts(
    x0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    n: int,
    rng: np.random.Generator,
    scale: np.ndarray | float = 0.1,
) -> list[np.ndarray]:
    """``x0`` and ``n − 1`` Gaussian perturbations of it (std ``scale``), clipped into the bounds."""
    x0 = clip_into(np.asarray(x0, dtype=float), lower, upper)
    out = [x0]
    for _ in range(max(n, 1) - 1):
        out.append(clip_into(x0 + rng.normal(size=x0.shape) * scale, lower, upper))
    return out


def clip_into(x: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """``x`` moved strictly inside ``[lower, upper]`` (least_squares needs interior starts)."""
    lo = np.asarray(lower, dtype=float)
    hi = np.asarray(upper, dtype=float)
    span = np.where(np.isfinite(hi - lo), hi - lo, 1.0)
    pad = np.minimum(1e-9 + 1e-6 * np.abs(span), 0.25 * span)
    return np.minimum(np.maximum(x, lo + pad), hi - pad)


class _LogHuber:
    """The residuals ``ρ = log model(x) − log obs`` (plus penalty rows), their Jacobian, the Huber
    objective and one bounded ``least_squares`` solve (of :func:`fit_log_huber`)."""

    def __init__(self, model: Model, obs: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                 penalty: np.ndarray | None, delta: float) -> None:  # fmt: skip
        self.model, self.delta = model, delta
        self.log_obs = np.log(obs)
        self.lower, self.upper = lower, upper
        self.pen_idx = (
            np.zeros(0, dtype=int) if penalty is None else np.flatnonzero(np.asarray(penalty) > 0)
        )
        self.pen_w = np.zeros(0) if penalty is None else np.asarray(penalty, float)[self.pen_idx]
        self.cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
        self.nfev = 0

    def evaluate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        key = x.tobytes()
        hit = self.cache.get(key)
        if hit is None:
            self.cache.clear()
            hit = self.model(x)
            self.cache[key] = hit
        return hit

    def fun(self, x: np.ndarray) -> np.ndarray:
        pred, _ = self.evaluate(x)
        rho = np.log(np.maximum(pred, 1e-300)) - self.log_obs
        return np.concatenate([rho, self.pen_w * x[self.pen_idx]]) if self.pen_idx.size else rho

    def jac(self, x: np.ndarray) -> np.ndarray:
        pred, j = self.evaluate(x)
        jr = j / np.maximum(pred, 1e-300)[:, None]
        if not self.pen_idx.size:
            return jr
        jp = np.zeros((self.pen_idx.size, x.size))
        jp[np.arange(self.pen_idx.size), self.pen_idx] = self.pen_w
        return np.vstack([jr, jp])

    def objective(self, x: np.ndarray) -> float:
        rho = self.fun(x)
        ok = np.all(np.isfinite(rho))
        return float(huber(rho, self.delta)[0].sum()) if ok else float("inf")

    def solve(self, x0: np.ndarray, loss: str, **opts: Any) -> Any:
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                res = least_squares(
                    self.fun, clip_into(x0, self.lower, self.upper), jac=self.jac,
                    bounds=(self.lower, self.upper), method="trf", loss=loss,
                    f_scale=self.delta, **opts,
                )  # fmt: skip
        except (ValueError, FloatingPointError, np.linalg.LinAlgError):
            return None
        self.nfev += int(res.nfev)
        return res


def fit_log_huber(
    model: Model,
    obs: np.ndarray,
    starts: Sequence[np.ndarray],
    lower: np.ndarray,
    upper: np.ndarray,
    *,
    delta: float = HUBER_DELTA,
    max_nfev: int | None = 200,
    x_scale: np.ndarray | str = "jac",
    tol: float = 1e-8,
    presolve: bool = True,
    n_refine: int = 1,
    penalty: np.ndarray | None = None,
) -> FitResult:
    """Multi-start bounded fit of one target: minimize ``Σ_n H_δ(log model(x)_n − log obs_n)``.

    Each solve is ``scipy.optimize.least_squares`` (trust-region reflective, analytic Jacobian
    ``J_ρ = diag(1/pred) · J_pred``). With ``presolve`` (default), every start is first brought
    to the plain least-squares optimum of the log residuals (fast Gauss–Newton convergence), and
    the ``n_refine`` presolved points with the lowest Huber objective are refined with
    ``loss="huber"``, ``f_scale=δ``; without it every start is solved with the Huber loss
    directly. The lowest Huber objective wins. A start whose model fails is skipped; if all fail,
    :class:`~climb.errors.ClimbError` is raised.

    ``penalty`` (per-parameter weights ``s_j ≥ 0``, 0 = none) appends the residuals ``s_j x_j``:
    under the Huber loss that adds ``≈ δ · s_j |x_j|``, a lasso-type shrinkage of ``x_j`` to 0.
    """
    obs = np.asarray(obs, dtype=float)
    prob = _LogHuber(model, obs, np.asarray(lower, dtype=float), np.asarray(upper, dtype=float),
                     penalty, delta)  # fmt: skip
    opts = {"x_scale": x_scale, "max_nfev": max_nfev, "ftol": tol, "xtol": tol, "gtol": tol}
    candidates: list[tuple[float, np.ndarray, Any]] = []
    costs: list[float] = []
    for x0 in starts:
        res = prob.solve(np.asarray(x0, dtype=float), "linear" if presolve else "huber", **opts)
        if res is None:
            costs.append(float("inf"))
            continue
        # for loss="huber" scipy's cost is f_scale² · Σ ρ((r/f_scale)²)/2 = Σ H_δ(r)
        cost = prob.objective(res.x)
        costs.append(cost)
        if np.isfinite(cost):
            candidates.append((cost, res.x, res))
    candidates.sort(key=lambda c: c[0])
    if presolve:
        refined = []
        for cost, x, res in candidates[: max(n_refine, 1)]:
            r2 = prob.solve(x, "huber", **opts)
            if r2 is not None and prob.objective(r2.x) <= cost:
                refined.append((prob.objective(r2.x), r2.x, r2))
            else:
                refined.append((cost, x, res))
        candidates = sorted(refined, key=lambda c: c[0]) + candidates[max(n_refine, 1) :]
    if not candidates:
        raise ClimbError("fit failed: no start gave finite predictions; check the runs' losses")
    cost, x, res = candidates[0]
    rho = prob.fun(x)[: obs.size]
    return FitResult(
        x=np.asarray(x, dtype=float), cost=float(cost), rmse=float(np.sqrt(np.mean(rho * rho))),
        success=bool(res.success), message=str(res.message), nfev=prob.nfev,
        n_starts=len(starts), costs=costs,
    )  # fmt: skip


def resolve_jobs(n_jobs: int | None) -> int:
    """``n_jobs``: ``None``/``1`` = serial, ``-1`` = every CPU, ``k`` = k workers."""
    if n_jobs is None:
        return 1
    if n_jobs == -1:
        return max(os.cpu_count() or 1, 1)
    if n_jobs < 1:
        raise ClimbError(f"n_jobs must be ≥ 1 or -1 (every CPU), got {n_jobs}")
    return int(n_jobs)


@contextmanager
def blas_threads(n: int = 1) -> Iterator[None]:
    """Limit BLAS/OpenMP threads inside the block (via ``threadpoolctl`` when installed).

    The per-target problems are small (hundreds of rows × tens of parameters): multi-threaded
    BLAS only adds contention there, badly so on a loaded machine.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        yield
        return
    with threadpool_limits(limits=n):
        yield


def _single_blas_thread() -> None:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return
    threadpool_limits(limits=1)


def fit_per_target(
    fn: Callable[[int], R],
    n_targets: int,
    *,
    n_jobs: int | None = 1,
    backend: Backend = "thread",
) -> list[R]:
    """``[fn(0), …, fn(K−1)]`` — the K independent per-target fits, optionally in parallel.

    ``backend="thread"`` shares memory (numpy/LAPACK release the GIL for part of the work);
    ``backend="process"`` needs ``fn`` to be picklable (a module-level function or a
    ``functools.partial`` of one). Results come back in target order whatever the backend, and a
    fit is deterministic when ``fn`` draws its randomness from :func:`target_seed`.
    """
    if backend not in ("serial", "thread", "process"):
        raise ClimbError(f"unknown backend '{backend}'; choose serial, thread or process")
    jobs = min(resolve_jobs(n_jobs), max(n_targets, 1))
    with blas_threads(1):
        if jobs == 1 or backend == "serial" or n_targets <= 1:
            return [fn(k) for k in range(n_targets)]
        if backend == "thread":
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                return list(pool.map(fn, range(n_targets)))
        with ProcessPoolExecutor(max_workers=jobs, initializer=_single_blas_thread) as pool:
            return list(pool.map(fn, range(n_targets)))


__all__ = [
    "HUBER_DELTA",
    "FitResult",
    "Model",
    "blas_threads",
    "clip_into",
    "fit_log_huber",
    "fit_per_target",
    "huber",
    "huber_log_objective",
    "jitter_starts",
    "measured",
    "resolve_jobs",
    "target_seed",
]
