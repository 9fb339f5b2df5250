"""k-fold cross-validation of a law on runs (CLIMB.md §3: held-out MAE, MAPE, R², Spearman ρ).

Runs are shuffled with ``seed`` and split into ``folds`` folds; each fold is predicted by the law
fitted on the other folds. Metrics are computed on the pooled out-of-fold predictions.

Rows of one training run stay in one fold: a sweep stores a run's checkpoint (or cooldown-branch)
evaluations as rows of one training run (the run table's ``train_run``, :meth:`RunTable.groups`),
and holding out only some of them would leak the held-out run into the fit.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from climb.data.runs import RunTable
from climb.errors import ClimbError, ClimbWarning
from climb.evaluation.metrics import Evaluation, evaluate_predictions
from climb.laws import get_law
from climb.laws.base import Law

LawFactory = Callable[[], Law]


@dataclass
class CVResult:
    """Out-of-fold predictions and their metrics.

    Attributes:
        law: the law's name.
        folds: number of folds.
        seed: the shuffling seed.
        fold: ``(n,)`` fold index of each run.
        predictions: ``(n, T)`` out-of-fold predicted losses (targets in ``targets`` order).
        observed: ``(n, T)`` measured losses (NaN = not measured).
        targets: target names.
        run: run ids.
        metrics: :class:`~climb.evaluation.metrics.Evaluation` of the pooled predictions.
        fold_metrics: one ``Evaluation`` per fold.
    """

    law: str
    folds: int
    seed: int
    fold: np.ndarray
    predictions: np.ndarray
    observed: np.ndarray
    targets: list[str]
    run: list[str]
    metrics: Evaluation
    fold_metrics: list[Evaluation]

    @property
    def per_target(self) -> dict[str, dict[str, float]]:
        return self.metrics.targets

    @property
    def overall(self) -> dict[str, float]:
        return self.metrics.overall

    def to_json(self) -> dict[str, Any]:
        return {
            "law": self.law,
            "folds": self.folds,
            "seed": self.seed,
            **self.metrics.to_json(),
            "per_fold": [f.overall for f in self.fold_metrics],
        }


def kfold_indices(n: int, folds: int, seed: int) -> np.ndarray:
    """Fold id of each of ``n`` rows: a seeded shuffle split into ``folds`` near-equal parts."""
    order = np.random.default_rng(seed).permutation(n)
    fold = np.empty(n, dtype=int)
    fold[order] = np.arange(n) % folds
    return fold


def fold_assignment(
    runs: RunTable, folds: int, seed: int, groups: str | np.ndarray | None = "auto"
) -> np.ndarray:
    """Fold id of each row. ``groups``: ``None`` = every row alone; an array = a group label per
    row (whole groups share a fold, groups shuffled in sorted order); ``"auto"`` = the training
    runs' ``train_run`` when some training run has several rows, else ``None``."""
    n = len(runs)
    if isinstance(groups, str):
        if groups != "auto":
            raise ClimbError(f"groups must be 'auto', None or one label per row, got {groups!r}")
        groups = np.array(runs.train_run) if runs.n_train_runs < n else None
    if int(folds) < 2:
        raise ClimbError(f"folds must be ≥ 2, got {folds}")
    if groups is None:
        if int(folds) > n:
            raise ClimbError(f"folds = {folds} is more than the {n} runs; use at most {n}")
        return kfold_indices(n, int(folds), seed)
    labels = np.asarray(groups)
    if labels.shape != (n,):
        raise ClimbError(f"groups: expected one label per row ({n}), got shape {labels.shape}")
    uniq = sorted(set(labels.tolist()))
    if int(folds) > len(uniq):
        raise ClimbError(
            f"folds = {folds} is more than the {len(uniq)} training runs; use at most {len(uniq)}"
        )
    by_group = dict(zip(uniq, kfold_indices(len(uniq), int(folds), seed)))
    return np.array([by_group[x] for x in labels.tolist()], dtype=int)


def cross_validate(
    law: str | LawFactory,
    runs: RunTable,
    folds: int = 5,
    seed: int = 0,
    groups: str | np.ndarray | None = "auto",
    **hyper: Any,
) -> CVResult:
    """k-fold cross-validation of ``law`` (a registered name, with ``hyper`` passed to it, or a
    zero-argument factory returning an unfitted law) on ``runs``; rows are assigned to folds by
    :func:`fold_assignment` (by default the rows of one training run stay together)."""
    if isinstance(law, str):
        name = law

        def factory() -> Law:
            return get_law(name, **hyper)

        factory()  # fail early on an unknown name or bad hyper-parameters
    else:
        factory = law
        name = getattr(factory(), "name", "law")
    fold = fold_assignment(runs, int(folds), seed, groups)
    pred = np.full(runs.loss.shape, np.nan)
    fold_metrics: list[Evaluation] = []
    for f in range(int(folds)):
        test = fold == f
        train_runs = runs.subset(~test)
        test_runs = runs.subset(test)
        with warnings.catch_warnings():
            # the same identification warnings would repeat for every fold
            warnings.simplefilter("ignore", ClimbWarning)
            fitted = factory().fit(train_runs)
        p = _predict_aligned(fitted, test_runs)
        pred[test] = p
        fold_metrics.append(evaluate_predictions(p, test_runs.loss, list(runs.targets)))
    metrics = evaluate_predictions(pred, runs.loss, list(runs.targets))
    return CVResult(
        law=name, folds=int(folds), seed=int(seed), fold=fold, predictions=pred,
        observed=runs.loss.copy(), targets=list(runs.targets), run=list(runs.run),
        metrics=metrics, fold_metrics=fold_metrics,
    )  # fmt: skip


def _predict_aligned(law: Law, runs: RunTable) -> np.ndarray:
    """The law's predictions in the runs' target order (NaN for targets it does not predict)."""
    p = law.predict_runs(runs)
    out = np.full(runs.loss.shape, np.nan)
    for k, t in enumerate(runs.targets):
        if t in law.targets_:
            out[:, k] = p[:, law.targets_.index(t)]
    return out


__all__ = ["CVResult", "cross_validate", "fold_assignment", "kfold_indices"]
