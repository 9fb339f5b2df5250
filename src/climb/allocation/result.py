"""The one allocation-result type (scipy-like: the answer *and* how it was reached)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from climb.data.userfiles import read_json
from climb.errors import ClimbError


@dataclass
class AllocationResult:
    """An allocation of the token budget over sources, for Climb or a baseline.

    Attributes:
        sources: the mixture sources, in the law's order.
        proportions: ``(S,)`` ``p``; sums to 1 and meets every bound and cap.
        targets: the sources with a loss.
        predicted_loss: ``(T,)`` ``L_i(p, D*, N*)`` under the Climb law.
        effective_ratio: ``(T,)`` ``r = W(D*) p`` (with transfer saturation
            ``r_i = p_i + Σ_{j≠i} W(D*)_ij φ_{η_i}(p_j)``).
        objective: the value of the objective named by ``objective_name`` (``sum``: ``Σ ω_i L_i``;
            ``worst``: ``max_i ω_i (L_i − E_i) / c_i``).
        kkt_residual: relative KKT residual (``sum``; for a baseline it shows how far from
            optimal it is) or relative bisection / epigraph gap (``worst``).
        marginal_level: ``λ``, the common marginal benefit of the free sources.
        path: what solved it: ``two-step`` (closed form, CLIMB.md §4), ``active-set`` (Newton on
            the free sources' KKT system), ``convex`` (cvxpy, power cones), ``bisection-lp``
            (``worst``); for a saturating law (``η < 1``) ``active-set-eta``, ``convex-eta``,
            ``epigraph-eta`` (``worst``), or ``multistart-eta`` / ``multistart-slsqp`` when the
            problem may be non-convex (negative transfer; a local optimum, said in ``message``);
            or ``baseline:<name>``.
        nit: iterations of that path; ``status``: 0 = optimal, 1 = not optimal (see ``message``).
        at_lower / at_upper: sources held at a lower / upper bound (caps included).
        intervals: bootstrap confidence intervals per source (``{src: (lo, hi)}``), if computed.
        eval_only: targets that are not sources (measured, never trained on): predicted from
            transfer (``predicted_loss``, ``effective_ratio``), never given a share.
    """

    sources: list[str]
    proportions: np.ndarray
    targets: list[str]
    predicted_loss: np.ndarray
    effective_ratio: np.ndarray
    objective: float
    objective_name: str
    tokens: float
    model_params: float | None
    path: str
    kkt_residual: float = float("nan")
    marginal_level: float = float("nan")
    nit: int = 0
    status: int = 0
    message: str = ""
    at_lower: list[str] = field(default_factory=list)
    at_upper: list[str] = field(default_factory=list)
    intervals: dict[str, tuple[float, float]] | None = None
    interval_level: float | None = None
    eval_only: list[str] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return self.status == 0

    @property
    def x(self) -> np.ndarray:
        """scipy-style alias of ``proportions``."""
        return self.proportions

    def proportions_dict(self) -> dict[str, float]:
        return {s: float(v) for s, v in zip(self.sources, self.proportions)}

    def loss_dict(self) -> dict[str, float]:
        return {t: float(v) for t, v in zip(self.targets, self.predicted_loss)}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description."""
        out: dict[str, Any] = {
            "proportions": self.proportions_dict(),
            "objective": float(self.objective),
            "objective_name": self.objective_name,
            "predicted_loss": self.loss_dict(),
            "effective_ratio": {t: float(v) for t, v in zip(self.targets, self.effective_ratio)},
            "tokens": float(self.tokens),
            "params": self.model_params,
            "solver": {
                "path": self.path,
                "kkt_residual": _finite_or_none(self.kkt_residual),
                "marginal_level": _finite_or_none(self.marginal_level),
                "iterations": int(self.nit),
                "status": int(self.status),
                "message": self.message,
                "at_lower": list(self.at_lower),
                "at_upper": list(self.at_upper),
            },
        }
        if self.eval_only:
            out["eval_only"] = {
                "targets": list(self.eval_only),
                "note": "measured, never trained on: no share (the runs do not show what its own "
                "data would do; add proxy runs that train on it to allocate it); loss predicted "
                "from transfer",
            }
        if self.intervals is not None:
            out["intervals"] = {
                "level": self.interval_level,
                "proportions": {s: [float(a), float(b)] for s, (a, b) in self.intervals.items()},
            }
        return out

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], *, name: str = "climb") -> AllocationResult:
        """Read :meth:`to_dict`'s document; a baseline's entry of ``AllocationPlan.to_dict``
        (proportions, objective, predicted loss) also reads, its missing fields NaN or empty."""
        props = {str(k): float(v) for k, v in obj["proportions"].items()}
        loss = {str(k): float(v) for k, v in (obj.get("predicted_loss") or {}).items()}
        ratio = obj.get("effective_ratio") or {}
        solver = dict(obj.get("solver") or {})
        intervals = obj.get("intervals")
        return cls(
            sources=list(props),
            proportions=np.array(list(props.values())),
            targets=list(loss),
            predicted_loss=np.array(list(loss.values())),
            effective_ratio=np.array([float(ratio.get(t, np.nan)) for t in loss]),
            objective=float(obj.get("objective", np.nan)),
            objective_name=str(obj.get("objective_name", "sum")),
            tokens=float(obj.get("tokens", np.nan)),
            model_params=None if obj.get("params") is None else float(obj["params"]),
            path=str(solver.get("path", f"baseline:{name}")),
            kkt_residual=_float_or_nan(solver.get("kkt_residual")),
            marginal_level=_float_or_nan(solver.get("marginal_level")),
            nit=int(solver.get("iterations", 0)),
            status=int(solver.get("status", 0)),
            message=str(solver.get("message", obj.get("note") or "")),
            at_lower=[str(s) for s in solver.get("at_lower", [])],
            at_upper=[str(s) for s in solver.get("at_upper", [])],
            intervals=None
            if not intervals
            else {str(s): (float(a), float(b)) for s, (a, b) in intervals["proportions"].items()},
            interval_level=None if not intervals else float(intervals.get("level", np.nan)),
        )

    def __repr__(self) -> str:
        top = sorted(zip(self.proportions, self.sources), reverse=True)[:4]
        mix = ", ".join(f"{s}={p:.3f}" for p, s in top)
        return (
            f"AllocationResult(path={self.path!r}, status={self.status}, objective={self.objective:.6g}, "
            f"kkt_residual={self.kkt_residual:.2e}, {mix}{', …' if len(self.sources) > 4 else ''})"
        )


def _finite_or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _float_or_nan(x: Any) -> float:
    return float("nan") if x is None else float(x)


def read_allocation(path: str | Path) -> tuple[AllocationResult, dict[str, AllocationResult]]:
    """The Climb allocation and its baselines from the JSON of ``climb allocate --json`` (or the
    demo's ``allocation.json``), as :class:`AllocationResult` objects."""
    obj = read_json(path, "allocation")
    try:
        result = AllocationResult.from_dict(obj)
        baselines = {
            str(n): AllocationResult.from_dict({"tokens": result.tokens, **b}, name=str(n))
            for n, b in dict(obj.get("baselines") or {}).items()
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ClimbError(
            f"{path}: not an allocation (bad or missing field {exc}); "
            "pass the JSON that climb allocate prints (or the demo's allocation.json)"
        ) from None
    return result, baselines
