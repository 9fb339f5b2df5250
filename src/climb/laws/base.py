"""One interface for every law: a scikit-learn-style estimator over run tables.

A law is constructed with its hyper-parameters, ``fit(runs)`` returns ``self`` and stores fitted
values in attributes with a trailing underscore, and ``predict(p, tokens, params)`` is pure.
Every law saves to and loads from a JSON object ``{"law": NAME, "sources": [...], "targets":
[...], "params": {...}}`` so cross-validation, reports and the allocator treat all laws alike.

Every law has keyword-only constructor arguments (its hyper-parameters, returned by
:meth:`Law.get_params`), one validator of them (``_validate_hyper``, called by ``fit``), and one
diagnostics attribute after ``fit`` (``diagnostics_``, a :class:`Diagnostics`). What a law can do
beyond predicting is said by capabilities on the interface, never by its class:
``allocatable`` (the Climb allocator can optimize it) and ``has_effective_ratio`` (it models the
effective ratio ``r``: :meth:`Law.effective_ratio`, :meth:`Law.ratio_from_loss`).
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike

from climb.data.runs import RunTable
from climb.data.userfiles import write_json
from climb.errors import ClimbError


@dataclass
class Diagnostics:
    """How a fit went (not saved with the law).

    Attributes:
        targets: one record per target: ``target``, ``runs`` (measured runs it was fitted on) and
            what the law reports (e.g. ``cost``, ``rmse_log``, ``nfev``, ``success``; climb-family
            laws add ``floored``, ``eta``, ``eta_fitted``).
        floored: per target, the training runs where the effective ratio hit its floor (climb
            family; only targets where it did).
    """

    targets: list[dict[str, Any]] = field(default_factory=list)
    floored: dict[str, int] = field(default_factory=dict)


class Law(ABC):
    """Base class of all laws.

    Subclasses set ``name`` and implement ``fit``, ``_predict``, ``_params_json`` and
    ``_from_params_json``. After ``fit``: ``sources_`` (mixture sources, the columns of ``p``),
    ``targets_`` (whose loss is predicted: sources, and evaluation-only targets that are not
    sources, :attr:`eval_only_`) and ``diagnostics_``.
    """

    name: ClassVar[str] = ""
    allocatable: ClassVar[bool] = False
    """The Climb allocator optimizes this law (its loss is the climb form of ``ClimbParams``)."""
    has_effective_ratio: ClassVar[bool] = False
    """The law models the effective ratio ``r`` (:meth:`effective_ratio`, :meth:`ratio_from_loss`)."""
    sources_: list[str]
    targets_: list[str]
    diagnostics_: Diagnostics

    # ------------------------------------------------------------------ hyper-parameters
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The hyper-parameters (the constructor's keyword arguments) by name (scikit-learn)."""
        sig = inspect.signature(type(self).__init__)
        return {
            name: getattr(self, name)
            for name, par in sig.parameters.items()
            if par.kind is inspect.Parameter.KEYWORD_ONLY
        }

    @abstractmethod
    def _validate_hyper(self) -> None:
        """Check the hyper-parameters (called by ``fit``); one-line :class:`ClimbError` naming
        the parameter and what to give."""

    # ------------------------------------------------------------------ estimator API
    @abstractmethod
    def fit(self, runs: RunTable) -> Self:
        """Fit the law to the runs' measured losses; returns ``self``."""

    def predict(
        self,
        p: ArrayLike,
        tokens: ArrayLike,
        params: ArrayLike | None = None,
    ) -> np.ndarray:
        """Predicted losses, shape ``(n, T)`` (or ``(T,)`` for a single mixture).

        ``p`` is ``(n, S)`` or ``(S,)`` over ``sources_``; ``tokens`` (``D``) and ``params``
        (``N``) broadcast to ``n``. ``params`` is ignored by laws that do not model size.
        """
        self._check_fitted()
        p_arr = np.asarray(p, dtype=float)
        single = p_arr.ndim == 1
        p2 = np.atleast_2d(p_arr)
        if p2.shape[1] != len(self.sources_):
            raise ClimbError(
                f"{self.name} law: mixture has {p2.shape[1]} proportions, the law has "
                f"{len(self.sources_)} sources ({', '.join(self.sources_)})"
            )
        n = p2.shape[0]
        d = np.broadcast_to(np.asarray(tokens, dtype=float), (n,)).astype(float)
        nn = (
            None
            if params is None
            else np.broadcast_to(np.asarray(params, dtype=float), (n,)).astype(float)
        )
        out = self._predict(p2, d, nn)
        return out[0] if single else out

    def predict_runs(self, runs: RunTable) -> np.ndarray:
        """Predictions for the runs, ``(n, T)`` in the law's ``targets_`` order.

        The runs' mixture columns are matched to the law's sources by name.
        """
        self._check_fitted()
        missing = [s for s in self.sources_ if s not in runs.sources]
        if missing:
            raise ClimbError(
                f"{self.name} law: the runs lack mixture source(s) {', '.join(missing)}"
            )
        extra = [s for s in runs.sources if s not in self.sources_]
        cols = [runs.sources.index(s) for s in self.sources_]
        p = runs.p[:, cols]
        if extra:
            mass = runs.p[:, [runs.sources.index(s) for s in extra]].sum(axis=1)
            if (mass > 1e-9).any():
                raise ClimbError(
                    f"{self.name} law: the runs give weight to source(s) the law does not know: "
                    f"{', '.join(extra)}"
                )
        return self.predict(p, runs.tokens, runs.params)

    def observed(self, runs: RunTable) -> np.ndarray:
        """The runs' measured losses in the law's ``targets_`` order (NaN = not measured)."""
        missing = [t for t in self.targets_ if t not in runs.targets]
        if missing:
            raise ClimbError(f"{self.name} law: the runs do not measure {', '.join(missing)}")
        return runs.loss[:, [runs.targets.index(t) for t in self.targets_]]

    @abstractmethod
    def _predict(self, p: np.ndarray, tokens: np.ndarray, params: np.ndarray | None) -> np.ndarray:
        """Vectorized prediction on validated arrays: ``p`` (n, S), ``tokens`` (n,)."""

    # ------------------------------------------------------------------ capabilities
    def effective_ratio(self, p: np.ndarray, tokens: np.ndarray | float) -> np.ndarray:
        """The law's effective ratio ``r`` over ``sources_`` → ``(n, T)`` (laws with
        ``has_effective_ratio``)."""
        raise ClimbError(
            f"the {self.name} law does not model an effective ratio (laws of the climb family do)"
        )

    def ratio_from_loss(
        self, loss: np.ndarray, tokens: np.ndarray, params: np.ndarray | None
    ) -> np.ndarray:
        """The observed effective ratio ``r̂`` (CLIMB.md §2): the ``r`` at which the law's loss
        equals ``loss`` (``(n, T)`` over ``targets_``), NaN where no ratio reaches it."""
        raise ClimbError(
            f"the {self.name} law does not model an effective ratio (laws of the climb family do)"
        )

    # ------------------------------------------------------------------ serialization
    @property
    def eval_only_(self) -> list[str]:
        """Evaluation-only targets: predicted, but not mixture sources (never trained on); their
        loss depends on the mixture through transfer alone."""
        self._check_fitted()
        return [t for t in self.targets_ if t not in self.sources_]

    def to_json(self) -> dict[str, Any]:
        """The JSON interchange object of the fitted law (``eval_only`` only when there are)."""
        self._check_fitted()
        out: dict[str, Any] = {
            "law": self.name,
            "sources": list(self.sources_),
            "targets": list(self.targets_),
        }
        if self.eval_only_:
            out["eval_only"] = self.eval_only_
        out["params"] = self._params_json()
        out["hyper"] = self._hyper_json()
        return out

    def _hyper_json(self) -> dict[str, Any]:
        """The hyper-parameters the law was fitted with, as JSON: every one that is a JSON value
        (tuples as lists), except the run-time ones (:data:`RUNTIME_HYPER`). Objects are left out:
        a support profile is in ``params`` (the term's frequencies) and comes back from there."""
        out = {}
        for k, v in self.get_params().items():
            v = list(v) if isinstance(v, tuple) else v
            if k not in RUNTIME_HYPER and _is_json_value(v):
                out[k] = v
        return out

    def _restore_hyper(self, hyper: Any) -> None:
        """Set the hyper-parameters a law JSON recorded (``"hyper"``; absent in laws saved before:
        the defaults stay, apart from what the parameters imply), validated as at ``fit``."""
        if hyper is None:
            return
        if not isinstance(hyper, dict):
            raise ClimbError("law JSON: 'hyper' must be an object (hyper-parameter → value)")
        current = self.get_params()
        unknown = [k for k in hyper if k not in current]
        if unknown:
            raise ClimbError(
                f"law JSON: 'hyper' has '{unknown[0]}', which is not a hyper-parameter of the "
                f"{self.name} law (it has {', '.join(current)})"
            )
        for k, v in hyper.items():
            setattr(
                self, k, tuple(v) if isinstance(current[k], tuple) and isinstance(v, list) else v
            )
        try:
            self._validate_hyper()
        except ClimbError as exc:
            raise ClimbError(f"law JSON: 'hyper': {exc}") from None

    def clone(self) -> Self:
        """An unfitted law with the same hyper-parameters (scikit-learn's ``clone``): the estimator
        a cross-validation of this fitted or loaded law refits."""
        return type(self)(**self.get_params())

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Self:
        """Rebuild a fitted law from its JSON object (validated: shapes, finiteness)."""
        if not isinstance(obj, dict):
            raise ClimbError("law JSON: expected an object with keys 'law', 'sources', 'params'")
        if obj.get("law") != cls.name:
            raise ClimbError(f"law JSON: 'law' is {obj.get('law')!r}, expected '{cls.name}'")
        sources = obj.get("sources")
        if (
            not isinstance(sources, list)
            or not sources
            or not all(isinstance(s, str) for s in sources)
        ):
            raise ClimbError("law JSON: 'sources' must be a non-empty list of names")
        if len(set(sources)) != len(sources):
            raise ClimbError("law JSON: 'sources' has duplicated names")
        targets = obj.get("targets", sources)
        if (
            not isinstance(targets, list)
            or not targets
            or not all(isinstance(t, str) for t in targets)
        ):
            raise ClimbError("law JSON: 'targets' must be a non-empty list of names")
        if len(set(targets)) != len(targets):
            raise ClimbError("law JSON: 'targets' has duplicated names")
        eval_only = obj.get("eval_only", [])
        if not isinstance(eval_only, list) or not all(isinstance(t, str) for t in eval_only):
            raise ClimbError("law JSON: 'eval_only' must be a list of target names")
        unknown = [t for t in targets if t not in sources and t not in eval_only]
        if unknown:
            raise ClimbError(
                f"law JSON: target '{unknown[0]}' is not among 'sources' (list it in 'eval_only' "
                "if it is an evaluation-only target)"
            )
        wrong = [t for t in eval_only if t not in targets or t in sources]
        if wrong:
            raise ClimbError(
                f"law JSON: 'eval_only' lists '{wrong[0]}', which is not a target outside 'sources'"
            )
        params = obj.get("params")
        if not isinstance(params, dict):
            raise ClimbError("law JSON: 'params' must be an object")
        law = cls._from_params_json(list(sources), list(targets), params)
        law.sources_ = list(sources)
        law.targets_ = list(targets)
        law._restore_hyper(obj.get("hyper"))
        return law

    def _params_json(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def _from_params_json(
        cls, sources: list[str], targets: list[str], params: dict[str, Any]
    ) -> Self:
        raise NotImplementedError

    def save(self, path: str | Path) -> Path:
        """Write the law's JSON to ``path`` (atomically)."""
        path = write_json(path, self.to_json())
        return path

    # ------------------------------------------------------------------ helpers
    def _check_fitted(self) -> None:
        if not hasattr(self, "sources_"):
            raise ClimbError(f"{self.name} law is not fitted; call fit(runs) first")

    def __repr__(self) -> str:
        state = "fitted" if hasattr(self, "sources_") else "unfitted"
        return f"<{type(self).__name__} {self.name!r} ({state})>"


RUNTIME_HYPER = frozenset({"n_jobs", "backend"})
"""Hyper-parameters that say how a fit runs, not what it fits: not stored in a law's JSON."""


def _is_json_value(v: Any) -> bool:
    """``v`` is a JSON value: None, bool, int, finite float, str, or lists / string-keyed dicts of
    them."""
    if v is None or isinstance(v, bool | int | str):
        return True
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, list):
        return all(_is_json_value(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _is_json_value(x) for k, x in v.items())
    return False


def json_array(params: dict[str, Any], key: str, shape: tuple[int, ...], law: str) -> np.ndarray:
    """Read ``params[key]`` as a finite float array of exactly ``shape``, or fail with one line."""
    if key not in params:
        raise ClimbError(f"law JSON ({law}): missing parameter '{key}'")
    try:
        arr = np.asarray(params[key], dtype=float)
    except (TypeError, ValueError):
        raise ClimbError(f"law JSON ({law}): parameter '{key}' is not numeric") from None
    if arr.shape != shape:
        raise ClimbError(
            f"law JSON ({law}): parameter '{key}' has shape {list(arr.shape)}, expected {list(shape)}"
        )
    if not np.isfinite(arr).all():
        raise ClimbError(f"law JSON ({law}): parameter '{key}' has non-finite values")
    return arr
