"""Uncertainty of the allocation: refit the Climb law on resampled runs and reallocate.

For ``b = 1..B``: draw ``G`` training runs with replacement from the table's ``G`` training runs
(:meth:`RunTable.groups`; a drawn run brings all its rows — checkpoints, cooldown branches — since
they share the run's seed and data order, and are not independent draws), fit
``get_law("climb", seed=seed + b)`` on them, allocate with the same budget, weights, bounds, caps
and objective, and keep ``p^(b)``. The interval of each proportion is the percentile interval of
``p_k^(b)`` at ``level``. A table with one row per run resamples its rows.

The ``B`` refits are independent: with ``n_jobs`` they run in parallel processes. Every resample
is drawn up front in the parent from one generator (``seed``) and each refit is a deterministic
function of its resample and ``seed + b``, so the result does not depend on ``n_jobs`` or on the
order refits finish in.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from climb.allocation.constraints import Constraints
from climb.allocation.solve import allocate
from climb.data.runs import RunTable
from climb.errors import ClimbError, ClimbWarning
from climb.parallel import ProgressFn, check_jobs, process_map, serial_law_options


@dataclass
class BootstrapResult:
    """``samples``: ``(B, S)`` bootstrap proportions; ``low`` / ``high``: ``(S,)`` interval ends."""

    sources: list[str]
    samples: np.ndarray
    low: np.ndarray
    high: np.ndarray
    level: float
    n_failed: int

    def intervals(self) -> dict[str, tuple[float, float]]:
        return {s: (float(a), float(b)) for s, a, b in zip(self.sources, self.low, self.high)}


def run_members(runs: RunTable) -> list[np.ndarray]:
    """Row indices of each training run (group ``g`` of :meth:`RunTable.groups` at position ``g``)."""
    groups = runs.groups()
    order = np.argsort(groups, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(groups[order])) + 1)


def resample_runs(members: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Rows of ``G`` training runs drawn with replacement from the ``G`` runs of ``members``."""
    pick = rng.integers(0, len(members), size=len(members))
    return np.concatenate([members[g] for g in pick])


@dataclass(frozen=True)
class RefitTask:
    """What every refit shares (picklable: it travels to the worker processes)."""

    runs: RunTable
    tokens: float
    params: float | None
    constraints: Constraints | None
    objective: str
    law_name: str
    law_options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0


@dataclass(frozen=True)
class Refit:
    """One refit: its index ``b``, the allocated proportions (``None``: the refit failed with a
    :class:`ClimbError`, e.g. a resample that lost every run of one target) and the warnings it
    raised."""

    b: int
    proportions: np.ndarray | None
    sources: list[str] | None
    warnings: list[str]


def refit(task: RefitTask, b: int, rows: np.ndarray) -> Refit:
    """Fit ``get_law(law_name, seed=seed + b + 1)`` on ``runs.subset(rows)`` and allocate.

    One BLAS thread (:func:`climb.laws.fitting.blas_threads`): the problems are small, and the
    same thread count in every process keeps the floating-point results identical."""
    from climb.laws import get_law
    from climb.laws.fitting import blas_threads

    try:
        with warnings.catch_warnings(record=True) as caught, blas_threads(1):
            warnings.simplefilter("always")
            law = get_law(task.law_name, seed=task.seed + b + 1, **task.law_options)
            law = law.fit(task.runs.subset(rows))
            res = allocate(law, task.tokens, task.params, constraints=task.constraints,
                           objective=task.objective)  # fmt: skip
    except ClimbError:
        return Refit(b, None, None, [str(w.message) for w in caught])
    return Refit(b, res.proportions, list(res.sources), [str(w.message) for w in caught])


def run_refits(
    task: RefitTask, draws: list[np.ndarray], jobs: int, progress: bool | ProgressFn | None
) -> list[Refit]:
    """Every refit of ``draws`` (serially, or on ``jobs`` processes; :func:`climb.parallel.
    process_map`), in the order of ``b``. On an interrupt (Ctrl-C) or an unexpected error the
    worker processes are terminated and the exception propagates; nothing is written anywhere."""
    if min(jobs, len(draws)) > 1:
        task = replace(task, law_options=serial_law_options(task.law_name, task.law_options))
    items = [(task, b, rows) for b, rows in enumerate(draws)]
    return process_map(_refit_star, items, jobs, progress, "bootstrap refits")


def _refit_star(args: tuple[RefitTask, int, np.ndarray]) -> Refit:
    return refit(*args)


def bootstrap_allocation(
    runs: RunTable,
    tokens: float,
    params: float | None = None,
    *,
    constraints: Constraints | None = None,
    n_boot: int = 100,
    seed: int = 0,
    level: float = 0.95,
    objective: str = "sum",
    law_name: str = "climb",
    law_options: Mapping[str, Any] | None = None,
    n_jobs: int | None = -1,
    progress: bool | ProgressFn | None = None,
) -> BootstrapResult:
    """Percentile intervals of the optimal proportions over ``n_boot`` refits on resampled
    training runs, each allocated under the same ``constraints`` and ``objective``.

    ``n_jobs``: refits in parallel processes (``-1``, the default: one per CPU, at most
    ``n_boot``; ``1``: serial); the result is the same for every ``n_jobs``. With more than one
    process the law's own per-target ``n_jobs`` is set to 1. ``progress``: ``True`` shows a
    rich progress bar on stderr; a callable gets ``(done, n_boot)`` after each refit.
    """
    if n_boot < 2:
        raise ClimbError(f"n_boot must be at least 2 resamples, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ClimbError(f"level must be in (0, 1), got {level}")
    jobs = check_jobs(n_jobs)
    rng = np.random.default_rng(seed)
    members = run_members(runs)
    draws = [resample_runs(members, rng) for _ in range(n_boot)]
    task = RefitTask(runs, tokens, params, constraints, objective, law_name,
                     dict(law_options or {}), seed)  # fmt: skip
    refits = run_refits(task, draws, jobs, progress)
    ok = [(r.sources, r.proportions) for r in refits if r.proportions is not None]
    fit_warnings = [m for r in refits for m in r.warnings]
    if fit_warnings:
        warnings.warn(
            f"bootstrap: {len(fit_warnings)} warning(s) while refitting, e.g. {fit_warnings[0]}",
            ClimbWarning,
            stacklevel=2,
        )
    if len(ok) < 2:
        raise ClimbError(f"bootstrap: only {len(ok)} of {n_boot} refits succeeded; need more runs")
    arr = np.vstack([p for _, p in ok])
    q = (1.0 - level) / 2.0
    return BootstrapResult(
        sources=list(ok[0][0] or []), samples=arr, low=np.quantile(arr, q, axis=0),
        high=np.quantile(arr, 1.0 - q, axis=0), level=level, n_failed=len(refits) - len(ok),
    )  # fmt: skip
