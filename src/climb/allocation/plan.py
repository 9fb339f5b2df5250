"""One call for ``climb allocate``: the Climb allocation, the baselines and optional intervals."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from climb.allocation.baselines import BASELINES, DEFAULT_TAU, Skipped, run_baselines
from climb.allocation.bootstrap import BootstrapResult, bootstrap_allocation
from climb.allocation.constraints import Constraints
from climb.allocation.extrapolation import extrapolation_warnings
from climb.allocation.problem import AllocationProblem, build_problem
from climb.allocation.result import AllocationResult
from climb.allocation.solve import LawLike, climb_params_of, solve_problem
from climb.data.runs import RunTable
from climb.errors import ClimbError, ClimbWarning


@dataclass
class AllocationPlan:
    """The Climb allocation with every baseline under the same law and constraints."""

    problem: AllocationProblem
    result: AllocationResult
    baselines: dict[str, AllocationResult] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)
    bootstrap: BootstrapResult | None = None
    warnings: list[str] = field(default_factory=list)  # extrapolation warnings (also issued)

    def gap(self, name: str) -> float:
        """Objective of baseline ``name`` minus Climb's (≥ 0: Climb is no worse)."""
        return float(self.baselines[name].objective - self.result.objective)

    def to_dict(self) -> dict[str, Any]:
        out = self.result.to_dict()
        out["baselines"] = {
            name: {
                "proportions": b.proportions_dict(),
                "objective": float(b.objective),
                "gap": self.gap(name),
                "predicted_loss": b.loss_dict(),
                "note": b.message,
            }
            for name, b in self.baselines.items()
        }
        out["skipped_baselines"] = {s.name: s.reason for s in self.skipped}
        out["constraints"] = {
            "lower": {s: float(v) for s, v in zip(self.problem.sources, self.problem.lo)},
            "upper": {s: float(v) for s, v in zip(self.problem.sources, self.problem.hi)},
            "max_epochs": self.problem.max_epochs,
            "weights": {t: float(w) for t, w in zip(self.problem.targets, self.problem.weights)},
        }
        out["warnings"] = list(self.warnings)
        if self.bootstrap is not None:
            out["bootstrap"] = {
                "resamples": int(self.bootstrap.samples.shape[0]),
                "failed": self.bootstrap.n_failed,
                "level": self.bootstrap.level,
            }
        return out


def _refit_as(law: LawLike) -> dict[str, Any]:
    """The bootstrap refits a fitted law with its own hyper-parameters (transfer, support-aware
    term, unique tokens…), not the defaults; a law loaded from JSON has those its ``hyper``
    records (a law saved before the record: the defaults, with its support settings)."""
    get = getattr(law, "get_params", None)
    if get is None or getattr(law, "name", "") not in ("climb", "isolated"):
        return {}
    return {"law_name": law.name, "law_options": {k: v for k, v in get().items() if k != "seed"}}  # type: ignore[union-attr]


def plan_allocation(
    law: LawLike,
    tokens: float,
    params: float | None = None,
    *,
    constraints: Constraints | None = None,
    objective: str = "sum",
    method: str = "auto",
    tau: float = DEFAULT_TAU,
    baselines: tuple[str, ...] = BASELINES,
    runs: RunTable | str | Path | None = None,
    msl_law: Any = None,
    n_boot: int = 0,
    seed: int = 0,
    level: float = 0.95,
    n_jobs: int | None = -1,
    progress: bool | Callable[[int, int], None] | None = None,
) -> AllocationPlan:
    """Allocate under ``constraints``, compare with the baselines under the same law and
    constraints and (``n_boot > 0``, with ``runs``) bootstrap (:func:`bootstrap_allocation`:
    ``n_jobs`` parallel refit processes, ``progress`` a bar or a callback).

    Warns (:class:`ClimbWarning`, kept in ``warnings``) when ``tokens`` extrapolates the law
    beyond its fitted budgets (:func:`climb.allocation.extrapolation.extrapolation_warnings`).

    The MSL baseline uses ``msl_law`` if given, else an MSL law fitted on ``runs``
    (``climb.laws.get_law("msl")``), else it is skipped with a note.
    """
    P, sources, targets = climb_params_of(law)
    problem = build_problem(P, sources, targets, tokens, params, constraints=constraints)
    result = solve_problem(problem, objective=objective, method=method)
    notes = extrapolation_warnings(P, targets, float(tokens))
    for note in notes:
        warnings.warn(f"allocation: {note}", ClimbWarning, stacklevel=2)
    table = RunTable.read(runs) if isinstance(runs, str | Path) else runs
    skipped: list[Skipped] = []
    if msl_law is None and table is not None and "msl" in baselines:
        try:
            from climb.laws import get_law

            trainable = [t for t in table.targets if t not in table.eval_only]
            msl_law = get_law("msl").fit(table.select_targets(trainable))
        except (ImportError, AttributeError) as exc:
            skipped.append(Skipped("msl", f"the MSL law is not available ({exc})"))
    done, more = run_baselines(
        problem, objective=objective, tau=tau, msl_law=msl_law,
        names=tuple(b for b in baselines if not any(s.name == b for s in skipped)),
    )  # fmt: skip
    boot = None
    if n_boot:
        if table is None:
            raise ClimbError("n_boot > 0 needs runs (the proxy runs to refit the law on)")
        boot = bootstrap_allocation(
            table, tokens, params, constraints=problem.constraints, n_boot=n_boot, seed=seed,
            level=level, objective=objective, n_jobs=n_jobs, progress=progress, **_refit_as(law),
        )  # fmt: skip
        if boot.sources != result.sources:
            raise ClimbError(
                "bootstrap: the runs' sources differ from the law's; refit the law on these runs"
            )
        result.intervals = boot.intervals()
        result.interval_level = level
    return AllocationPlan(problem, result, done, skipped + more, boot, notes)
