"""RegMix-style regression, baseline ``regression`` (CLIMB.md §3): boosted trees on the mixture.

RegMix (Liu et al., 2024, "RegMix: Data Mixture as Regression for Language Model Pre-training")
fits one LightGBM regressor per validation domain on the mixture proportions of many small proxy
runs. This is the non-parametric reference: no functional form, no extrapolation beyond the
mixtures (and scales) it was fitted on.

Features: the proportions ``p_1 … p_S``, plus ``log D`` and ``log N`` when the runs span several
token budgets / model sizes (otherwise those columns would be constant and are left out).

Hyper-parameters follow RegMix's public notebook: gbdt, L2 objective, learning rate 1e-2,
1000 trees, LightGBM's default tree size (31 leaves, ≥ 20 runs per leaf). RegMix also stopped
early (3 rounds without improvement on 128 held-out runs of 1000); here that is optional
(``early_stopping_rounds=3`` holds out ``validation_fraction`` of each target's runs, drawn with
``seed``, and keeps the best iteration). The default trains all ``n_estimators`` trees on every
run: on the RegMix 1M training runs, 5-fold cross-validated Spearman ρ (pile_cc) was 0.982
without early stopping vs 0.979 with RegMix's 3-round rule (``benchmarks/baselines.py``).
Training is deterministic for a seed (``deterministic=True``, ``num_threads`` fixed, LightGBM's
seeds set from ``seed``).

The law's JSON is self-contained: each booster is stored as LightGBM's text model
(``Booster.model_to_string()``) inside ``params``; the fitted law predicts with boosters
re-loaded from those strings, so a saved and re-loaded law predicts identically.
"""

from __future__ import annotations

import base64
import warnings
import zlib
from collections.abc import Callable
from typing import Any, Literal, Self

import numpy as np

from climb.data.runs import RunTable
from climb.errors import ClimbError
from climb.laws.base import Diagnostics, Law
from climb.laws.climb.support import SupportProfile
from climb.laws.fitting import fit_per_target, measured, target_seed
from climb.laws.supported import SUPPORT_DEFAULTS, SupportedLaw

FEATURE_TOKENS = "log_tokens"
FEATURE_PARAMS = "log_params"
HYPER = (
    "n_estimators",
    "learning_rate",
    "num_leaves",
    "min_child_samples",
    "early_stopping_rounds",
    "validation_fraction",
    "num_threads",
    "seed",
)
"""Hyper-parameters saved with a fitted law (everything but ``n_jobs``)."""


class RegressionLaw(SupportedLaw, Law):
    """One LightGBM regressor per target on ``(p, [log D], [log N])`` (RegMix).

    Args:
        n_estimators: maximum number of boosting rounds (RegMix: 1000).
        learning_rate: shrinkage (RegMix: 1e-2).
        num_leaves: leaves per tree (LightGBM default 31, as RegMix).
        min_child_samples: minimum runs per leaf; ``"auto"`` (default): ``n // 8`` of a
            target's ``n`` training runs, within [3, 20] (20, LightGBM's default and RegMix's,
            from 160 runs on; with fewer, 20 runs per leaf leave the trees unable to split:
            docs/laws.md).
        early_stopping_rounds: stop after this many rounds without improvement on the
            validation part (RegMix used 3); ``None`` (default) = no early stopping, every run
            trains every tree.
        validation_fraction: share of each target's runs held out for early stopping.
        num_threads: LightGBM threads (small, for determinism and shared machines).
        seed: seed of the validation split and of LightGBM.
        n_jobs: targets fitted in parallel (threads; ``1`` serial, ``-1`` every CPU).
        support, support_count, support_gate, support_trace, support_ceiling: the
            support-aware term for languages a run leaves out or holds at a trace share
            (:mod:`climb.laws.supported`;
            ``support=None``: none; the term is fitted on the boosters' in-sample predictions).

    Fitted attributes: ``features_`` (feature names), ``boosters_`` (one ``lightgbm.Booster``
    per target), ``best_iterations_`` (trees used per target), ``diagnostics_`` (per target:
    ``runs``, ``best_iteration``).
    """

    name = "regression"

    def __init__(
        self,
        *,
        n_estimators: int = 1000,
        learning_rate: float = 1e-2,
        num_leaves: int = 31,
        min_child_samples: int | Literal["auto"] = "auto",
        early_stopping_rounds: int | None = None,
        validation_fraction: float = 0.125,
        num_threads: int = 1,
        seed: int = 0,
        n_jobs: int | None = 1,
        support: SupportProfile | None = SUPPORT_DEFAULTS["support"],
        support_count: float = SUPPORT_DEFAULTS["support_count"],
        support_gate: float = SUPPORT_DEFAULTS["support_gate"],
        support_trace: float | None = SUPPORT_DEFAULTS["support_trace"],
        support_ceiling: bool = SUPPORT_DEFAULTS["support_ceiling"],
    ) -> None:
        self.support = support
        self.support_count = support_count
        self.support_gate = support_gate
        self.support_trace = support_trace
        self.support_ceiling = support_ceiling
        self.n_jobs = n_jobs
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.early_stopping_rounds = early_stopping_rounds
        self.validation_fraction = validation_fraction
        self.num_threads = num_threads
        self.seed = seed

    # ------------------------------------------------------------------ fit
    def min_child_samples_for(self, n_train: int) -> int:
        """``min_child_samples`` for a target with ``n_train`` training runs (``"auto"``: ``n // 8``
        within [3, 20])."""
        if self.min_child_samples == "auto":
            return int(np.clip(n_train // 8, 3, 20))
        return int(self.min_child_samples)

    def lgb_params(self, n_train: int) -> dict[str, Any]:
        """The LightGBM parameters for a target with ``n_train`` training runs."""
        return {
            "objective": "regression",
            "boosting_type": "gbdt",
            "learning_rate": float(self.learning_rate),
            "num_leaves": int(self.num_leaves),
            "min_child_samples": self.min_child_samples_for(n_train),
            "num_threads": int(self.num_threads),
            "deterministic": True,
            "force_row_wise": True,
            "seed": int(self.seed),
            "verbosity": -1,
        }

    def _validate_hyper(self) -> None:
        self._check_support()

        def integer(v: Any, low: int) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and v >= low

        def number(v: Any, low: float, high: float) -> bool:
            ok = isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)
            return bool(ok and low < v < high)

        checks = [
            ("n_estimators", integer(self.n_estimators, 1), "an integer ≥ 1"),
            ("learning_rate", number(self.learning_rate, 0, np.inf), "a positive number, e.g. 1e-2"),
            ("num_leaves", integer(self.num_leaves, 2), "an integer ≥ 2"),
            ("min_child_samples",
             self.min_child_samples == "auto" or integer(self.min_child_samples, 1),
             "an integer ≥ 1 or 'auto'"),
            ("num_threads", integer(self.num_threads, 1), "an integer ≥ 1"),
            ("validation_fraction", number(self.validation_fraction, 0, 0.5), "a number in (0, 0.5)"),
            ("seed", integer(self.seed, 0), "an integer ≥ 0"),
            ("early_stopping_rounds",
             self.early_stopping_rounds is None or integer(self.early_stopping_rounds, 1),
             "an integer ≥ 1 or None"),
        ]  # fmt: skip
        for name, ok, what in checks:
            if not ok:
                value = getattr(self, name)
                raise ClimbError(f"regression law: option '{name}' is {value!r}; give {what}")

    def fit(self, runs: RunTable) -> Self:
        """Fit one booster per target on its measured runs; returns ``self``."""
        import lightgbm as lgb

        self._validate_hyper()
        features = [f"p.{s}" for s in runs.sources]
        if np.unique(runs.tokens).size > 1:
            features.append(FEATURE_TOKENS)
        if runs.params is not None and np.unique(runs.params).size > 1:
            features.append(FEATURE_PARAMS)
        x_all = _features(runs.p, runs.tokens, runs.params, features)
        esr = self.early_stopping_rounds
        for i, target in enumerate(runs.targets):
            n_meas = int(measured(runs.loss[:, i]).sum())
            n_val = round(self.validation_fraction * n_meas)
            if n_meas < 2:
                raise ClimbError(
                    f"regression law: target '{target}' has {n_meas} measured run(s); need ≥ 2"
                )
            if esr is not None and (n_val < 1 or n_meas - n_val < 2):
                raise ClimbError(
                    f"regression law: target '{target}' has {n_meas} measured runs, too few to "
                    f"hold out validation_fraction={self.validation_fraction:g} for early "
                    "stopping; set early_stopping_rounds=None"
                )

        def fit_one(i: int) -> tuple[str, int]:
            y = runs.loss[:, i]
            m = np.flatnonzero(measured(y))
            rng = np.random.default_rng(target_seed(self.seed, i))
            n_val = round(self.validation_fraction * m.size) if esr is not None else 0
            order = rng.permutation(m)
            val, train = order[:n_val], order[n_val:]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                dtrain = lgb.Dataset(x_all[train], y[train], feature_name=_safe(features),
                                     params={"verbosity": -1}, free_raw_data=True)  # fmt: skip
                callbacks: list[Callable[..., Any]] = []
                valid_sets = []
                if n_val:
                    valid_sets = [lgb.Dataset(x_all[val], y[val], reference=dtrain)]
                    callbacks = [lgb.early_stopping(int(esr or 1), verbose=False)]
                booster = lgb.train(self.lgb_params(train.size), dtrain,
                                    num_boost_round=int(self.n_estimators),
                                    valid_sets=valid_sets, callbacks=callbacks)  # fmt: skip
            it = booster.current_iteration()
            if n_val and booster.best_iteration > 0:
                it = int(booster.best_iteration)
            return booster.model_to_string(num_iteration=it), it

        fits = fit_per_target(fit_one, len(runs.targets), n_jobs=self.n_jobs)
        models = [f[0] for f in fits]
        best = [f[1] for f in fits]
        self.features_ = features
        self.best_iterations_ = best
        self.diagnostics_ = Diagnostics(
            targets=[
                {"target": t, "runs": int(measured(runs.loss[:, k]).sum()), "best_iteration": it}
                for k, (t, it) in enumerate(zip(runs.targets, best))
            ]
        )
        self._set_models(models)
        self.sources_, self.targets_ = list(runs.sources), list(runs.targets)
        self._fit_support(runs, self._plain(runs.p, runs.tokens, runs.params))
        return self

    def _set_models(self, models: list[str]) -> None:
        import lightgbm as lgb

        self.models_ = list(models)
        self.boosters_ = [lgb.Booster(model_str=s) for s in models]

    # ------------------------------------------------------------------ predict
    def _predict(self, p: np.ndarray, tokens: np.ndarray, params: np.ndarray | None) -> np.ndarray:
        return self._supported(self._plain(p, tokens, params), p, tokens)

    def _plain(self, p: np.ndarray, tokens: np.ndarray, params: np.ndarray | None) -> np.ndarray:
        """The boosters' predictions (without the support term)."""
        if FEATURE_PARAMS in self.features_ and params is None:
            raise ClimbError(
                "regression law: it was fitted on several model sizes; give params (N)"
            )
        x = _features(p, tokens, params, self.features_)
        return np.column_stack(
            [np.asarray(b.predict(x, num_threads=int(self.num_threads)), dtype=float)
             for b in self.boosters_]
        )  # fmt: skip

    # ------------------------------------------------------------------ JSON
    def hyper_parameters(self) -> dict[str, Any]:
        """The constructor's hyper-parameters (saved in the JSON; ``n_jobs`` is not)."""
        return {k: getattr(self, k) for k in HYPER}

    def _params_json(self) -> dict[str, Any]:
        return {
            "features": list(self.features_),
            "best_iterations": list(self.best_iterations_),
            "hyper": self.hyper_parameters(),
            "models": [pack_model(m) for m in self.models_],
            **self._support_json(self.sources_, self.targets_),
        }

    @classmethod
    def _from_params_json(
        cls, sources: list[str], targets: list[str], params: dict[str, Any]
    ) -> Self:
        expected = [f"p.{s}" for s in sources]
        feats = params.get("features")
        if (
            not isinstance(feats, list)
            or feats[: len(expected)] != expected
            or not set(feats[len(expected) :]) <= {FEATURE_TOKENS, FEATURE_PARAMS}
        ):
            raise ClimbError(
                "law JSON (regression): 'features' must list 'p.<source>' for every source "
                "(in order), then optionally 'log_tokens' and 'log_params'"
            )
        models = params.get("models")
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise ClimbError(
                "law JSON (regression): 'models' must be a list of LightGBM model strings"
            )
        if len(models) != len(targets):
            raise ClimbError(
                f"law JSON (regression): 'models' has {len(models)} entries, expected "
                f"{len(targets)} (one per target)"
            )
        its = params.get("best_iterations", [0] * len(models))
        if not isinstance(its, list) or len(its) != len(models):
            raise ClimbError(
                "law JSON (regression): 'best_iterations' must have one entry per target"
            )
        hyper = params.get("hyper", {})
        if not isinstance(hyper, dict) or not set(hyper) <= set(HYPER):
            raise ClimbError(
                f"law JSON (regression): 'hyper' must be an object with keys among {', '.join(HYPER)}"
            )
        law = cls(**hyper)
        try:
            law._validate_hyper()
        except ClimbError as exc:
            raise ClimbError(f"law JSON (regression): 'hyper': {exc}") from None
        law.features_ = list(feats)
        law.best_iterations_ = [int(i) for i in its]
        law.diagnostics_ = Diagnostics()
        try:
            law._set_models([unpack_model(m) for m in models])
        except Exception as exc:  # lightgbm raises LightGBMError on a corrupt model
            raise ClimbError(
                f"law JSON (regression): a model string is not a valid LightGBM model "
                f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
            ) from None
        for k, b in enumerate(law.boosters_):
            if b.num_feature() != len(feats):
                raise ClimbError(
                    f"law JSON (regression): model {k + 1} uses {b.num_feature()} features, "
                    f"'features' lists {len(feats)}"
                )
        law._load_support(params, sources, targets)
        law.sources_, law.targets_ = list(sources), list(targets)
        return law


def _features(
    p: np.ndarray, tokens: np.ndarray, params: np.ndarray | None, features: list[str]
) -> np.ndarray:
    cols = [p]
    if FEATURE_TOKENS in features:
        cols.append(np.log(tokens)[:, None])
    if FEATURE_PARAMS in features:
        assert params is not None
        cols.append(np.log(params)[:, None])
    return np.ascontiguousarray(np.hstack(cols), dtype=float)


def _safe(features: list[str]) -> list[str]:
    """LightGBM feature names may not contain some characters (e.g. JSON specials)."""
    return [f"f{k}" for k in range(len(features))]


PACKED_PREFIX = "zlib+base64:"
"""Model strings are stored compressed in the law JSON (a RegMix law: ~26 MB raw, ~3 MB packed)."""


def pack_model(model: str) -> str:
    """A LightGBM model string, zlib-compressed and base64-encoded for the JSON."""
    return PACKED_PREFIX + base64.b64encode(zlib.compress(model.encode("utf-8"), 9)).decode("ascii")


def unpack_model(text: str) -> str:
    """Inverse of :func:`pack_model`; plain (hand-written) model strings pass through."""
    if not text.startswith(PACKED_PREFIX):
        return text
    try:
        return zlib.decompress(base64.b64decode(text[len(PACKED_PREFIX) :])).decode("utf-8")
    except (ValueError, zlib.error) as exc:
        raise ClimbError(f"law JSON (regression): a packed model is corrupt ({exc})") from None
