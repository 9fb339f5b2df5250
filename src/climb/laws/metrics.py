"""Laws for downstream metrics (``metric.<name>`` columns: accuracy and the like, higher is better).

Two estimators with the laws' face (``fit(runs)`` → self, pure ``predict(p, tokens, params)`` →
``(n, M)``, ``to_json`` / :func:`metric_law_from_json`):

* :class:`MetricLink` — a **monotone link of a fitted loss law** (the Climb law): each metric
  ``m`` is tied to one loss target ``s(m)`` (the language it is measured in) and

      M_m(p, D, N) = lo_m + (hi_m − lo_m) · σ(a_m − b_m · L̂_{s(m)}(p, D, N)),   b_m > 0,

  with ``σ`` the logistic function and ``L̂`` the loss law's prediction. A lower predicted loss
  never predicts a lower metric; the mixture enters only through ``L̂``, so the allocator can
  weigh metrics against losses (:func:`climb.allocation.metrics.allocate_mixed`). ``lo, hi, a,
  b`` are fitted by least squares on the measured runs, given ``L̂`` on those runs.
* :class:`MetricRegression` — the ``regression`` law's LightGBM model, one booster per metric on
  ``(p, log D[, log N])``: a mixture-aware baseline that the allocator cannot optimize.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import least_squares
from scipy.special import expit

from climb.data.runs import METRIC_PREFIX, RunTable
from climb.data.userfiles import read_json, write_json
from climb.errors import ClimbError
from climb.laws.base import Law

MIN_RUNS = 4
"""Measured runs needed to fit a metric (the link has four parameters)."""


def _measured(runs: RunTable, metrics: list[str]) -> np.ndarray:
    missing = [m for m in metrics if m not in runs.metrics]
    if missing:
        raise ClimbError(
            f"the runs have no column {METRIC_PREFIX}{missing[0]} (metrics: {', '.join(runs.metrics) or 'none'})"
        )
    y = runs.metric[:, [runs.metrics.index(m) for m in metrics]]
    few = [m for k, m in enumerate(metrics) if np.isfinite(y[:, k]).sum() < MIN_RUNS]
    if few:
        raise ClimbError(
            f"metric '{few[0]}' is measured in fewer than {MIN_RUNS} runs; too few to fit"
        )
    return y


class MetricLink:
    """Metrics as a sigmoid of a fitted loss law's prediction (see the module docstring).

    Args:
        loss_law: a fitted law (e.g. ``climb``) predicting the loss targets.
        sources: ``{metric: loss target}``; a metric named like a target (``metric.fr`` ↔ ``fr``)
            needs no entry.

    Attributes after ``fit``: ``metrics_``, ``sources_of_`` (``{metric: target}``), ``lo_``,
    ``hi_``, ``a_``, ``b_`` (``(M,)`` each), ``rmse_`` (in-sample, per metric).
    """

    name = "metric-link"

    def __init__(self, *, loss_law: Law, sources: Mapping[str, str] | None = None) -> None:
        self.loss_law = loss_law
        self.sources = dict(sources or {})

    def fit(self, runs: RunTable, metrics: list[str] | None = None) -> Self:
        """Fit every metric of ``runs`` (or ``metrics``) on its measured runs; returns ``self``."""
        names = list(metrics or runs.metrics)
        if not names:
            raise ClimbError(f"the runs have no {METRIC_PREFIX}<name> columns to fit")
        y = _measured(runs, names)
        of = {m: self.sources.get(m, m) for m in names}
        bad = [m for m in names if of[m] not in self.loss_law.targets_]
        if bad:
            raise ClimbError(
                f"metric '{bad[0]}': its loss target '{of[bad[0]]}' is not a target of the "
                f"{self.loss_law.name} law ({', '.join(self.loss_law.targets_)}); give sources"
            )
        loss = self.loss_law.predict_runs(runs)
        fits = [_fit_link(loss[:, self.loss_law.targets_.index(of[m])], y[:, k]) for k, m in enumerate(names)]  # fmt: skip
        self.metrics_, self.sources_of_ = names, of
        self.lo_, self.hi_, self.a_, self.b_, self.rmse_ = (np.array(v) for v in zip(*fits))
        return self

    def target_index(self) -> list[int]:
        """Index in the loss law's ``targets_`` of each metric's loss target."""
        return [self.loss_law.targets_.index(self.sources_of_[m]) for m in self.metrics_]

    def from_loss(self, loss: np.ndarray) -> np.ndarray:
        """``M`` from the loss law's predictions ``(n, T)`` (its ``targets_`` order) → ``(n, M)``."""
        z = self.a_ - self.b_ * np.atleast_2d(loss)[:, self.target_index()]
        return self.lo_ + (self.hi_ - self.lo_) * expit(z)

    def slope(self, loss: np.ndarray) -> np.ndarray:
        """``−∂M_m/∂L_{s(m)} ≥ 0`` at the loss law's predictions ``(T,)`` → ``(M,)``."""
        s = expit(self.a_ - self.b_ * np.asarray(loss)[self.target_index()])
        return (self.hi_ - self.lo_) * self.b_ * s * (1 - s)

    def predict(
        self, p: ArrayLike, tokens: ArrayLike, params: ArrayLike | None = None
    ) -> np.ndarray:
        """Predicted metrics ``(n, M)`` (``(M,)`` for one mixture) over the loss law's sources."""
        loss = self.loss_law.predict(p, tokens, params)
        out = self.from_loss(loss)
        return out[0] if np.ndim(loss) == 1 else out

    def to_json(self) -> dict[str, Any]:
        return {"law": self.name, "metrics": list(self.metrics_), "sources": dict(self.sources_of_),
                "loss_law": self.loss_law.to_json(),
                "params": {k: getattr(self, k + "_").tolist() for k in ("lo", "hi", "a", "b")}}  # fmt: skip


def _fit_link(loss: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float, float]:
    """``lo, hi, a, b, rmse`` of ``y ≈ lo + (hi − lo) σ(a − b L)`` by least squares, ``b > 0``."""
    m = np.isfinite(y) & np.isfinite(loss)
    x, t = loss[m], y[m]
    span = max(float(np.ptp(t)), 1e-6)
    lo0, hi0 = float(t.min()) - 0.1 * span, float(t.max()) + 0.1 * span
    z = np.log((t - lo0) / (hi0 - t))
    slope, icpt = np.polyfit(x, z, 1) if np.ptp(x) > 0 else (-1.0, 0.0)
    b0 = max(-float(slope), 1e-3)
    theta0 = np.array([lo0, np.log(hi0 - lo0), float(icpt) if slope < 0 else b0 * float(np.median(x)), np.log(b0)])  # fmt: skip

    def resid(th: np.ndarray) -> np.ndarray:
        return th[0] + np.exp(th[1]) * expit(th[2] - np.exp(th[3]) * x) - t

    sol = least_squares(resid, theta0, method="trf", x_scale="jac", max_nfev=2000)
    lo, span_, a, b = sol.x[0], np.exp(sol.x[1]), sol.x[2], np.exp(sol.x[3])
    return float(lo), float(lo + span_), float(a), float(b), float(np.sqrt(np.mean(sol.fun**2)))


class MetricRegression:
    """One LightGBM booster per metric on ``(p, log D[, log N])`` (the ``regression`` law's
    model and hyper-parameters, e.g. ``n_estimators``, ``seed``)."""

    name = "metric-regression"

    def __init__(self, **hyper: Any) -> None:
        from climb.laws.regression import RegressionLaw

        self.base = RegressionLaw(**hyper)

    def fit(self, runs: RunTable, metrics: list[str] | None = None) -> Self:
        import lightgbm as lgb

        from climb.laws.regression import FEATURE_PARAMS, FEATURE_TOKENS, _features, _safe

        self.base._validate_hyper()
        names = list(metrics or runs.metrics)
        y_all = _measured(runs, names)
        features = [f"p.{s}" for s in runs.sources]
        if np.unique(runs.tokens).size > 1:
            features.append(FEATURE_TOKENS)
        if runs.params is not None and np.unique(runs.params).size > 1:
            features.append(FEATURE_PARAMS)
        x = _features(runs.p, runs.tokens, runs.params, features)
        self.boosters_ = []
        for k in range(len(names)):
            m = np.isfinite(y_all[:, k])
            params = self.base.lgb_params(int(m.sum()))
            data = lgb.Dataset(x[m], y_all[m, k], feature_name=_safe(features), params={"verbosity": -1})  # fmt: skip
            self.boosters_.append(
                lgb.train(params, data, num_boost_round=int(self.base.n_estimators))
            )
        self.metrics_, self.features_, self.sources_ = names, features, list(runs.sources)
        return self

    def predict(
        self, p: ArrayLike, tokens: ArrayLike, params: ArrayLike | None = None
    ) -> np.ndarray:
        from climb.laws.regression import _features

        p2 = np.atleast_2d(np.asarray(p, dtype=float))
        n = p2.shape[0]
        d = np.broadcast_to(np.asarray(tokens, dtype=float), (n,))
        nn = None if params is None else np.broadcast_to(np.asarray(params, dtype=float), (n,))
        x = _features(p2, d, nn, self.features_)
        out = np.column_stack([b.predict(x) for b in self.boosters_])
        return out[0] if np.ndim(p) == 1 else out

    def to_json(self) -> dict[str, Any]:
        from climb.laws.regression import pack_model

        return {"law": self.name, "metrics": list(self.metrics_), "sources": list(self.sources_),
                "features": list(self.features_), "hyper": self.base.hyper_parameters(),
                "models": [pack_model(b.model_to_string()) for b in self.boosters_]}  # fmt: skip


MetricLaw = MetricLink | MetricRegression


def metric_law_from_json(obj: Any) -> MetricLaw:
    """A fitted metric law from its JSON object."""
    if not isinstance(obj, dict) or obj.get("law") not in ("metric-link", "metric-regression"):
        raise ClimbError("metric law JSON: 'law' must be 'metric-link' or 'metric-regression'")
    try:
        if obj["law"] == "metric-link":
            from climb.laws import law_from_json

            law = MetricLink(loss_law=law_from_json(obj["loss_law"]), sources=obj["sources"])
            law.metrics_, law.sources_of_ = list(obj["metrics"]), dict(obj["sources"])
            k = len(law.metrics_)
            law.lo_, law.hi_, law.a_, law.b_ = (np.asarray(obj["params"][n], dtype=float).reshape(k) for n in ("lo", "hi", "a", "b"))  # fmt: skip
            law.rmse_ = np.full(k, np.nan)
            law.target_index()  # every metric's target is in the loss law
            return law
        import lightgbm as lgb

        from climb.laws.regression import unpack_model

        reg = MetricRegression(**obj["hyper"])
        reg.boosters_ = [lgb.Booster(model_str=unpack_model(s)) for s in obj["models"]]
        reg.metrics_, reg.features_, reg.sources_ = list(obj["metrics"]), list(obj["features"]), list(obj["sources"])  # fmt: skip
        return reg
    except (KeyError, TypeError, ValueError) as exc:
        raise ClimbError(f"metric law JSON: malformed ({exc})") from None


def save_metric_law(law: MetricLaw, path: str | Path) -> Path:
    """Write a metric law's JSON (atomically)."""
    return write_json(path, law.to_json())


def load_metric_law(path: str | Path) -> MetricLaw:
    """Read a metric law JSON written by :func:`save_metric_law`."""
    return metric_law_from_json(read_json(path, "metric law"))
