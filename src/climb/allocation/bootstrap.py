"""Uncertainty of the allocation: refit the Climb law on resampled runs and reallocate.

For ``b = 1..B``: draw ``G`` training runs with replacement from the table's ``G`` training runs
(:meth:`RunTable.groups`; a drawn run brings all its rows — checkpoints, cooldown branches — since
they share the run's seed and data order, and are not independent draws), fit
``get_law("climb", seed=seed + b)`` on them, allocate with the same budget, weights, bounds, caps
and objective, and keep ``p^(b)``. The interval of each proportion is the percentile interval of
``p_k^(b)`` at ``level``. A table with one row per run resamples its rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from climb.allocation.constraints import Constraints
from climb.allocation.solve import allocate
from climb.data.runs import RunTable
from climb.errors import ClimbError, ClimbWarning


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
    progress: Callable[[int, int], None] | None = None,
) -> BootstrapResult:
    """Percentile intervals of the optimal proportions over ``n_boot`` refits on resampled
    training runs, each allocated under the same ``constraints`` and ``objective``."""
    from climb.laws import get_law

    if n_boot < 2:
        raise ClimbError(f"n_boot must be at least 2 resamples, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ClimbError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    members = run_members(runs)
    samples: list[np.ndarray] = []
    failed = 0
    sources: list[str] | None = None
    fit_warnings: list[str] = []
    for b in range(n_boot):
        idx = resample_runs(members, rng)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                law = get_law(law_name, seed=seed + b + 1, **dict(law_options or {})).fit(
                    runs.subset(idx)
                )
            fit_warnings += [str(w.message) for w in caught]
            res = allocate(law, tokens, params, constraints=constraints, objective=objective)
        except ClimbError:
            failed += 1  # e.g. a resample that lost every run of one target
            continue
        sources = res.sources
        samples.append(res.proportions)
        if progress is not None:
            progress(b + 1, n_boot)
    if fit_warnings:
        warnings.warn(
            f"bootstrap: {len(fit_warnings)} warning(s) while refitting, e.g. {fit_warnings[0]}",
            ClimbWarning,
            stacklevel=2,
        )
    if len(samples) < 2 or sources is None:
        raise ClimbError(
            f"bootstrap: only {len(samples)} of {n_boot} refits succeeded; need more runs"
        )
    arr = np.vstack(samples)
    q = (1.0 - level) / 2.0
    return BootstrapResult(
        sources=sources, samples=arr, low=np.quantile(arr, q, axis=0),
        high=np.quantile(arr, 1.0 - q, axis=0), level=level, n_failed=failed,
    )  # fmt: skip
