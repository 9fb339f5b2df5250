"""k-fold cross-validation of a law on runs (CLIMB.md §3: held-out MAE, MAPE, R², Spearman ρ).

Runs are shuffled with ``seed`` and split into ``folds`` folds; each fold is predicted by the law
fitted on the other folds. Metrics are computed on the pooled out-of-fold predictions.

Held-out cells are also scored by the target's own share ``p_i`` in the row's mixture
(:func:`mae_by_share`): ``zero`` (``p_i = 0``: a language the model never saw), ``trace``
(``0 < p_i < 1%``) and ``main`` (``p_i ≥ 1%``), where a law's errors differ most.

Rows of one training run stay in one fold: a sweep stores a run's checkpoint (or cooldown-branch)
evaluations as rows of one training run (the run table's ``train_run``, :meth:`RunTable.groups`),
and holding out only some of them would leak the held-out run into the fit.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from climb.data.runs import RunTable
from climb.errors import ClimbError, ClimbWarning
from climb.evaluation.metrics import Evaluation, evaluate_predictions
from climb.laws import get_law
from climb.laws.base import Law
from climb.laws.fitting import blas_threads
from climb.parallel import ProgressFn, check_jobs, check_picklable, process_map, serial_law_options

LawFactory = Callable[[], Law]

TRACE_SHARE = 0.01
"""Own shares below this (and above 0) are ``trace`` in :func:`mae_by_share`; at or above, ``main``."""
SHARE_CLASSES = ("zero", "trace", "main")


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
        by_share: ``{"zero" | "trace" | "main": {"mae", "n"}}`` of the held-out cells by the
            target's own share (:func:`mae_by_share`; set by :func:`cross_validate`).
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
    by_share: dict[str, dict[str, float]] = field(default_factory=dict)

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
            "by_share": self.by_share,
            "per_fold": [f.overall for f in self.fold_metrics],
        }

    def by_share_line(self) -> str:
        """One line: MAE and count of held-out cells per own-share class."""
        names = {
            "zero": "p = 0",
            "trace": f"0 < p < {TRACE_SHARE:.0%}",
            "main": f"p ≥ {TRACE_SHARE:.0%}",
        }
        parts = []
        for k in SHARE_CLASSES:
            m = self.by_share.get(k, {"mae": float("nan"), "n": 0})
            mae = "-" if m["n"] == 0 else f"{m['mae']:.4f}"
            parts.append(f"{names[k]}: MAE {mae} (n {int(m['n'])})")
        return "held-out MAE by own share: " + "; ".join(parts)


def own_shares(runs: RunTable) -> np.ndarray:
    """``(n, T)``: each target's own share ``p_i`` in each row's mixture; 0 for an
    evaluation-only target (never trained on)."""
    cols = runs.target_columns
    return np.where(cols >= 0, runs.p[:, np.maximum(cols, 0)], 0.0)


def mae_by_share(
    predictions: np.ndarray, observed: np.ndarray, shares: np.ndarray
) -> dict[str, dict[str, float]]:
    """Mean absolute error of the cells ``(run, target)`` with a measured loss and a prediction,
    grouped by the target's own share ``p_i`` in the run's mixture (all ``(n, T)``):
    ``zero`` (``p_i = 0``), ``trace`` (``0 < p_i <`` :data:`TRACE_SHARE`), ``main`` (``p_i ≥``
    :data:`TRACE_SHARE`). ``mae`` is NaN where a class has no cell (``n = 0``)."""
    pred, obs, share = (np.asarray(a, dtype=float) for a in (predictions, observed, shares))
    ok = np.isfinite(pred) & np.isfinite(obs)
    err = np.abs(pred - obs)
    masks = {
        "zero": share == 0.0,
        "trace": (share > 0.0) & (share < TRACE_SHARE),
        "main": share >= TRACE_SHARE,
    }
    out: dict[str, dict[str, float]] = {}
    for name in SHARE_CLASSES:
        cells = masks[name] & ok
        n = int(cells.sum())
        out[name] = {"mae": float(err[cells].mean()) if n else float("nan"), "n": n}
    return out


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
    *,
    fold_jobs: int | None = 1,
    progress: bool | ProgressFn | None = None,
    **hyper: Any,
) -> CVResult:
    """k-fold cross-validation of ``law`` (a registered name, with ``hyper`` passed to it, or a
    zero-argument factory returning an unfitted law) on ``runs``; rows are assigned to folds by
    :func:`fold_assignment` (by default the rows of one training run stay together).

    ``fold_jobs``: fit the folds in parallel processes (``1``, the default: serially; ``-1``:
    one per CPU, at most ``folds``). A factory must then be picklable (a module-level function or
    a ``functools.partial`` of one); with a law name the law's own per-target ``n_jobs`` is set to
    1. Every fold is fitted with one BLAS thread in every mode, so the result does not depend on
    ``fold_jobs``. ``progress``: ``True`` shows a progress bar of the folds on stderr; a callable
    gets ``(done, folds)`` after each fold."""
    return repeated_cross_validate(law, runs, folds, [seed], groups, fold_jobs=fold_jobs,
                                   progress=progress, **hyper).splits[0]  # fmt: skip


@dataclass
class RepeatedCV:
    """Cross-validation repeated over several seeded splits of the runs into folds: one
    :class:`CVResult` per seed (``splits``), and how much the metrics move between splits."""

    law: str
    seeds: list[int]
    splits: list[CVResult]

    def spread(self) -> dict[str, Any]:
        """``{"overall": {metric: stats}, "by_share": {class: stats}}`` over the splits, with
        ``stats = {"mean", "std", "min", "max"}`` (``std`` with ``n − 1``; 0 for one split) and,
        by share, ``n`` (cells per split)."""

        def stats(values: list[float]) -> dict[str, float]:
            v = np.array(values, dtype=float)
            v = v[np.isfinite(v)]
            if not v.size:
                return {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan}
            sd = float(v.std(ddof=1)) if v.size > 1 else 0.0
            return {"mean": float(v.mean()), "std": sd, "min": float(v.min()),
                    "max": float(v.max())}  # fmt: skip

        overall = {m: stats([c.overall.get(m, math.nan) for c in self.splits])
                   for m in ("mae", "spearman")}  # fmt: skip
        share = {k: {**stats([c.by_share[k]["mae"] for c in self.splits]),
                     "n": int(self.splits[0].by_share[k]["n"])} for k in SHARE_CLASSES}  # fmt: skip
        return {"overall": overall, "by_share": share}

    def to_json(self) -> dict[str, Any]:
        return {"law": self.law, "folds": self.splits[0].folds, "seeds": list(self.seeds),
                **self.spread(), "per_split": [c.to_json() for c in self.splits]}  # fmt: skip

    def summary_lines(self) -> list[str]:
        """Mean ± std [min, max] over the splits of the MAE, overall and by own share."""
        sp = self.spread()
        names = {"zero": "p = 0", "trace": f"0 < p < {TRACE_SHARE:.0%}",
                 "main": f"p ≥ {TRACE_SHARE:.0%}"}  # fmt: skip

        def line(label: str, st: dict[str, float]) -> str:
            return (f"  {label:<18} {st['mean']:.4f} ± {st['std']:.4f} "
                    f"[{st['min']:.4f}, {st['max']:.4f}]")  # fmt: skip

        out = [f"MAE over {len(self.seeds)} splits (seeds {self.seeds[0]}–{self.seeds[-1]}): "
               "mean ± std [min, max]", line("overall", sp["overall"]["mae"])]  # fmt: skip
        out += [line(f"{names[k]} (n {sp['by_share'][k]['n']})", sp["by_share"][k])
                for k in SHARE_CLASSES if sp["by_share"][k]["n"]]  # fmt: skip
        return out


def repeated_cross_validate(
    law: str | LawFactory,
    runs: RunTable,
    folds: int = 5,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    groups: str | np.ndarray | None = "auto",
    *,
    fold_jobs: int | None = 1,
    progress: bool | ProgressFn | None = None,
    **hyper: Any,
) -> RepeatedCV:
    """:func:`cross_validate` once per seed in ``seeds``: each seed a different split of the runs
    into ``folds`` folds, the law the same in every split. Every fold of every split is one task
    of one pool (``fold_jobs`` processes; ``progress`` counts ``folds × len(seeds)`` fits); each
    split is exactly :func:`cross_validate` with its seed."""
    jobs = check_jobs(fold_jobs)
    seeds = [int(x) for x in seeds]
    if not seeds:
        raise ClimbError("repeated cross-validation needs at least one seed")
    parallel = min(jobs, int(folds) * len(seeds)) > 1
    if isinstance(law, str):
        name = law
        get_law(name, **hyper)  # fail early on an unknown name or bad hyper-parameters
        options = serial_law_options(name, hyper) if parallel else dict(hyper)
        factory: LawFactory = functools.partial(get_law, name, **options)
    else:
        factory = law
        name = getattr(factory(), "name", "law")
    if parallel:
        check_picklable(factory, "the law factory")
    assign = [fold_assignment(runs, int(folds), seed, groups) for seed in seeds]
    tasks = [(factory, runs.subset(fold != f), runs.subset(fold == f))
             for fold in assign for f in range(int(folds))]  # fmt: skip
    preds = process_map(_fit_fold, tasks, jobs, progress, f"cv {name} folds")
    splits = []
    for i, (seed, fold) in enumerate(zip(seeds, assign)):
        pred = np.full(runs.loss.shape, np.nan)
        fold_metrics: list[Evaluation] = []
        for f in range(int(folds)):
            p, (_, _, test_runs) = preds[i * int(folds) + f], tasks[i * int(folds) + f]
            pred[fold == f] = p
            fold_metrics.append(evaluate_predictions(p, test_runs.loss, list(runs.targets)))
        splits.append(CVResult(
            law=name, folds=int(folds), seed=seed, fold=fold, predictions=pred,
            observed=runs.loss.copy(), targets=list(runs.targets), run=list(runs.run),
            metrics=evaluate_predictions(pred, runs.loss, list(runs.targets)),
            fold_metrics=fold_metrics, by_share=mae_by_share(pred, runs.loss, own_shares(runs)),
        ))  # fmt: skip
    return RepeatedCV(name, seeds, splits)


def _fit_fold(task: tuple[LawFactory, RunTable, RunTable]) -> np.ndarray:
    """The held-out predictions of one fold: ``factory()`` fitted on the training rows, with one
    BLAS thread (the same in every process), its identification warnings silenced (they would
    repeat for every fold)."""
    factory, train_runs, test_runs = task
    with warnings.catch_warnings(), blas_threads(1):
        warnings.simplefilter("ignore", ClimbWarning)
        fitted = factory().fit(train_runs)
    return _predict_aligned(fitted, test_runs)


def _predict_aligned(law: Law, runs: RunTable) -> np.ndarray:
    """The law's predictions in the runs' target order (NaN for targets it does not predict)."""
    p = law.predict_runs(runs)
    out = np.full(runs.loss.shape, np.nan)
    for k, t in enumerate(runs.targets):
        if t in law.targets_:
            out[:, k] = p[:, law.targets_.index(t)]
    return out


__all__ = [
    "SHARE_CLASSES",
    "TRACE_SHARE",
    "CVResult",
    "RepeatedCV",
    "cross_validate",
    "fold_assignment",
    "kfold_indices",
    "mae_by_share",
    "own_shares",
    "repeated_cross_validate",
]
