"""A launch manifest: the proxy runs a team trains in its own trainer, and their results read back.

``climb design … --format olmo|megatron|torchtitan|…`` writes one launch config (data-mix file)
per planned run and ``manifest.yaml``::

    format: climb-launch-manifest
    version: 1
    trainer: olmo
    schedule: wsd
    sources: [en, de, fr]
    expected_metrics: [loss.en, loss.de, loss.fr]
    runs:
    - run: r000-mono-en
      tokens: 1000000
      branches: [500000]      # WSD: branch a cooldown at these budgets too
      seed: 0
      config: olmo/r000-mono-en.yaml
      mixture: {en: 1.0, de: 0.0, fr: 0.0}

After the sweep, a results file (CSV, JSONL or Parquet) with a ``run`` column (the manifest's
ids) and the expected ``loss.<source>`` columns (validation loss on each source's held-out text),
optionally ``params`` and — for checkpoint rows — ``tokens`` and ``true_budget``, is joined with
the manifest by :func:`runs_from_results` (``climb ingest --manifest manifest.yaml --results
results.csv``): the mixture and the budget come from the manifest, so the trainer only has to
report losses. Tracker runs named by the manifest's ids can be joined the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from climb.data.runs import LOSS_PREFIX, P_PREFIX, RunTable, _read_frame_checked
from climb.data.userfiles import read_yaml
from climb.errors import ClimbError

MANIFEST_FORMAT = "climb-launch-manifest"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class ManifestRun:
    """One run to launch: its id, mixture over all manifest sources, budget, seed and config;
    ``branches``: smaller budgets where a WSD run branches a cooldown (a true-budget row each)."""

    run: str
    tokens: int
    seed: int
    config: str
    mixture: dict[str, float]
    branches: tuple[int, ...] = ()


@dataclass
class Manifest:
    """The runs of a sweep launched in another trainer.

    Attributes:
        trainer: the export format of the configs (``olmo``, ``megatron``, ``torchtitan``…).
        sources: every source; each run reports ``loss.<source>`` for all of them.
        runs: the runs, in plan order.
        design: provenance (the plan's design block).
        schedule: the plan's learning-rate schedule (``cosine`` or ``wsd``).
    """

    trainer: str
    sources: list[str]
    runs: list[ManifestRun]
    design: dict[str, Any] = field(default_factory=dict)
    schedule: str = "cosine"

    @property
    def expected_metrics(self) -> list[str]:
        """The columns a results file must hold besides ``run``."""
        return [LOSS_PREFIX + s for s in self.sources]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "trainer": self.trainer,
            "schedule": self.schedule,
            "sources": list(self.sources),
            "expected_metrics": self.expected_metrics,
            "design": self.design,
            "runs": [
                {"run": r.run, "tokens": int(r.tokens),
                 **({"branches": [int(b) for b in r.branches]} if r.branches else {}),
                 "seed": int(r.seed), "config": r.config,
                 "mixture": {s: float(r.mixture.get(s, 0.0)) for s in self.sources}}
                for r in self.runs
            ],
        }  # fmt: skip

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        """Read and validate ``manifest.yaml``."""
        path = Path(path)
        doc = read_yaml(path, "manifest")
        if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
            raise ClimbError(
                f"manifest: {path}: not a climb launch manifest (format: {MANIFEST_FORMAT})"
            )
        if doc.get("version") != MANIFEST_VERSION:
            raise ClimbError(
                f"manifest: {path}: version {doc.get('version')!r}; this climb reads {MANIFEST_VERSION}"
            )
        sources = doc.get("sources")
        if not isinstance(sources, list) or not sources:
            raise ClimbError(f"manifest: {path}: 'sources' must be a non-empty list")
        try:
            runs = [
                ManifestRun(run=str(r["run"]), tokens=int(r["tokens"]), seed=int(r.get("seed", 0)),
                            config=str(r.get("config", "")),
                            mixture={str(s): float(r["mixture"].get(s, 0.0)) for s in sources},
                            branches=tuple(int(b) for b in r.get("branches") or ()))
                for r in doc["runs"]
            ]  # fmt: skip
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ClimbError(
                f"manifest: {path}: a run lacks run, tokens or mixture ({exc})"
            ) from None
        return cls(trainer=str(doc.get("trainer", "")), sources=[str(s) for s in sources],
                   runs=runs, design=dict(doc.get("design") or {}),
                   schedule=str(doc.get("schedule", "cosine")))  # fmt: skip


def _read_results(results: str | Path | pd.DataFrame) -> tuple[pd.DataFrame, str]:
    if isinstance(results, pd.DataFrame):
        return results.reset_index(drop=True), "results"
    frame, _ = _read_frame_checked(Path(results))
    return frame, str(results)


def runs_from_results(
    manifest: Manifest, results: str | Path | pd.DataFrame, *, origin: str | None = None
) -> RunTable:
    """The run table of a launched sweep: ``results`` rows (``run``, ``loss.<source>``, optional
    ``params``, ``tokens``, ``true_budget``) joined with the manifest's mixture and budget.

    A results row with ``tokens`` below its run's planned budget gets the id ``<run>/<tokens>``
    and ``train_run`` = the run; it is a true-budget row when ``tokens`` is one of the run's WSD
    ``branches``, else a mid-schedule checkpoint, unless the results' ``true_budget`` column says
    otherwise. Runs of the manifest without results are left out (see :func:`missing_runs`).
    """
    frame, where = _read_results(results)
    where = origin or where
    planned = {r.run: r for r in manifest.runs}
    if "run" not in frame.columns:
        raise ClimbError(f"{where}: no 'run' column (the manifest's run ids)")
    missing = [c for c in manifest.expected_metrics if c not in frame.columns]
    if missing:
        raise ClimbError(f"{where}: no column {missing[0]} (the manifest expects {', '.join(manifest.expected_metrics)})")  # fmt: skip
    ids = [str(r).strip() for r in frame["run"].tolist()]
    unknown = [r for r in ids if r not in planned]
    if unknown:
        raise ClimbError(f"{where}: run '{unknown[0]}' is not in the manifest")
    budget = np.array([planned[r].tokens for r in ids], dtype=float)
    tokens = budget if "tokens" not in frame.columns else pd.to_numeric(frame["tokens"], errors="coerce").to_numpy(dtype=float)  # fmt: skip
    if np.isnan(tokens).any() or (tokens > budget * (1 + 1e-9)).any():
        i = int(np.flatnonzero(np.isnan(tokens) | (tokens > budget * (1 + 1e-9)))[0])
        raise ClimbError(f"{where}: run '{ids[i]}': tokens {frame['tokens'][i]} is not a number ≤ its planned {int(budget[i])}")  # fmt: skip
    final = np.isclose(tokens, budget, rtol=1e-9)
    branch = np.array([any(np.isclose(t, b, rtol=1e-9) for b in planned[r].branches)
                       for r, t in zip(ids, tokens)], dtype=bool)  # fmt: skip
    out = pd.DataFrame({
        "run": [r if f else f"{r}/{int(t)}" for r, t, f in zip(ids, tokens, final)],
        "train_run": ids, "tokens": tokens,
        "true_budget": frame["true_budget"] if "true_budget" in frame.columns else final | branch,
    })  # fmt: skip
    if "params" in frame.columns:
        out["params"] = frame["params"].to_numpy()
    for s in manifest.sources:
        out[P_PREFIX + s] = [planned[r].mixture[s] for r in ids]
    for c in [c for c in frame.columns if str(c).startswith(LOSS_PREFIX)]:
        out[c] = frame[c].to_numpy()
    out["seed"] = [planned[r].seed for r in ids]
    return RunTable.from_frame(out, origin=where)


def missing_runs(manifest: Manifest, table: RunTable) -> list[str]:
    """The manifest's runs without any row in ``table``."""
    have = set(table.train_run)
    return [r.run for r in manifest.runs if r.run not in have]
