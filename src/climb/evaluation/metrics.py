"""Prediction metrics of a law on runs (CLIMB.md §3, "Report per-language and overall …").

Per target, over the runs where the loss was measured:

* ``mae``  = mean |L_pred − L_obs|
* ``mape`` = mean |L_pred − L_obs| / L_obs  (a fraction, not percent)
* ``r2``   = 1 − Σ (L_pred − L_obs)² / Σ (L_obs − mean L_obs)²
* ``spearman`` = Spearman rank correlation of L_pred and L_obs (``NaN`` if either is constant)
* ``n`` = number of measured runs

``overall``: the mean of each metric over the targets (each target counts once) and ``n`` = all
measured (run, target) pairs.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from climb.data.runs import RunTable
from climb.errors import ClimbError
from climb.laws.base import Law

METRICS = ("mae", "mape", "r2", "spearman")


def target_metrics(pred: np.ndarray, obs: np.ndarray) -> dict[str, float]:
    """``mae``, ``mape``, ``r2``, ``spearman``, ``n`` of one target (NaN observations dropped)."""
    pred = np.asarray(pred, dtype=float)
    obs = np.asarray(obs, dtype=float)
    keep = np.isfinite(obs)
    pred, obs = pred[keep], obs[keep]
    n = int(obs.size)
    if n == 0:
        return {"mae": float("nan"), "mape": float("nan"), "r2": float("nan"),
                "spearman": float("nan"), "n": 0}  # fmt: skip
    err = pred - obs
    ss_tot = float(np.sum((obs - obs.mean()) ** 2))
    r2 = 1.0 - float(np.sum(err * err)) / ss_tot if ss_tot > 0 else float("nan")
    rho = float("nan")
    if n >= 2 and np.ptp(pred) > 0 and np.ptp(obs) > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rho = float(spearmanr(pred, obs)[0])
    return {
        "mae": float(np.mean(np.abs(err))),
        "mape": float(np.mean(np.abs(err) / obs)),
        "r2": r2,
        "spearman": rho,
        "n": n,
    }


@dataclass
class Evaluation:
    """Metrics of predictions against observations.

    Attributes:
        targets: target → ``{"mae", "mape", "r2", "spearman", "n"}``.
        overall: the mean of each metric over targets, and the total ``n``.
    """

    targets: dict[str, dict[str, float]]
    overall: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {"targets": self.targets, "overall": self.overall}

    def table(self) -> str:
        """A fixed-width text table, one row per target plus ``overall``."""
        rows = [*self.targets.items(), ("overall", self.overall)]
        width = max(8, *(len(k) for k, _ in rows))
        head = f"{'target':<{width}}  {'MAE':>8}  {'MAPE':>8}  {'R²':>8}  {'Spearman':>8}  {'n':>6}"
        lines = [head, "-" * len(head)]
        for name, m in rows:
            lines.append(
                f"{name:<{width}}  {m['mae']:>8.4f}  {100 * m['mape']:>7.2f}%  {m['r2']:>8.4f}  "
                f"{m['spearman']:>8.4f}  {int(m['n']):>6d}"
            )
        return "\n".join(lines)


def evaluate_predictions(pred: np.ndarray, obs: np.ndarray, targets: list[str]) -> Evaluation:
    """Metrics of ``pred`` vs ``obs`` (both ``(n, T)``, NaN obs = not measured)."""
    pred = np.asarray(pred, dtype=float)
    obs = np.asarray(obs, dtype=float)
    if pred.shape != obs.shape or pred.shape[1] != len(targets):
        raise ClimbError(f"predictions {pred.shape} and observations {obs.shape} do not match")
    per = {t: target_metrics(pred[:, k], obs[:, k]) for k, t in enumerate(targets)}
    overall: dict[str, float] = {}
    for m in METRICS:
        vals = np.array([per[t][m] for t in targets], dtype=float)
        overall[m] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
    overall["n"] = int(sum(per[t]["n"] for t in targets))
    return Evaluation(per, overall)


def evaluate(law: Law, runs: RunTable) -> Evaluation:
    """Metrics of a fitted law on runs, for every law target the runs measure."""
    law._check_fitted()
    common = [t for t in law.targets_ if t in runs.targets]
    if not common:
        raise ClimbError(
            f"the runs measure none of the law's targets ({', '.join(law.targets_)}); "
            f"they measure {', '.join(runs.targets)}"
        )
    pred = law.predict_runs(runs)
    cols = [law.targets_.index(t) for t in common]
    obs = runs.loss[:, [runs.targets.index(t) for t in common]]
    return evaluate_predictions(pred[:, cols], obs, common)


__all__ = ["METRICS", "Evaluation", "evaluate", "evaluate_predictions", "target_metrics"]
