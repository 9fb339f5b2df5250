"""Train candidate mixtures at the target budget with several seeds and compare them, paired.

:func:`verify_mixtures` is the one call: given named mixtures (``climb`` and baselines), a corpus,
model and training settings, seeds and a run-store path, it trains every distinct mixture once per
seed (resumable: runs already in the store are never retrained) and returns a
:class:`~climb.verification.result.VerificationResult` with per-mixture mean ± spread and the
paired comparison of the recommended mixture with each baseline.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from climb.errors import ClimbError
from climb.laws.base import Law
from climb.proxy.config import ModelConfig, TrainConfig
from climb.proxy.design import Plan, PlannedRun
from climb.proxy.executors import Executor
from climb.verification.result import MixtureOutcome, VerificationResult


def clean_mixture(props: Mapping[str, float], sources: Sequence[str]) -> dict[str, float]:
    """Proportions over ``sources`` rounded to 6 decimals, summing to 1 (the largest absorbs the
    rounding).

    Solvers agree only to the last bits from one process to the next; rounding makes a
    verification run's spec, and so its id and hash in the store, the same on every rerun.
    """
    v = np.clip(np.array([float(props.get(s, 0.0)) for s in sources]), 0.0, None)
    if not np.isfinite(v).all() or v.sum() <= 0:
        raise ClimbError(f"mixture {dict(props)}: proportions must be finite with a positive sum")
    v = np.round(v / v.sum(), 6)
    k = int(np.argmax(v))
    v[k] = round(1.0 - (v.sum() - v[k]), 6)
    return {s: float(x) for s, x in zip(sources, v)}


def mixture_tag(mix: Mapping[str, float]) -> str:
    """8 hex digits identifying a mixture (equal mixtures share it)."""
    blob = json.dumps({k: round(float(v), 9) for k, v in sorted(mix.items())})
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def allocation_mixtures(
    recommended: Mapping[str, float],
    baselines: Mapping[str, Mapping[str, float]],
    names: Sequence[str] | None = None,
    *,
    recommended_name: str = "climb",
) -> tuple[dict[str, dict[str, float]], list[str]]:
    """``{name: mixture}`` to verify: the recommended mixture and the baselines ``names`` (``None``:
    every baseline), and the names asked for that ``baselines`` lacks (an allocation skips a
    baseline it cannot compute, e.g. natural without unique tokens)."""
    wanted = list(baselines) if names is None else list(names)
    mixtures = {recommended_name: dict(recommended)}
    mixtures.update({n: dict(baselines[n]) for n in wanted if n in baselines})
    return mixtures, [n for n in wanted if n not in baselines]


def verification_plan(
    mixtures: Mapping[str, Mapping[str, float]],
    tokens: int,
    seeds: Sequence[int],
    *,
    model: ModelConfig,
    train: TrainConfig,
) -> tuple[Plan, dict[str, list[str]]]:
    """The plan of every distinct mixture × seed, and each mixture's run id per seed.

    Identical mixtures (e.g. UniMax when no cap binds is uniform) share one run per seed; run
    ids are ``verify-<first name>-<tag>-s<seed>``.
    """
    if not mixtures:
        raise ClimbError("mixtures: give at least one mixture to verify")
    seeds = [int(s) for s in seeds]
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise ClimbError(
            f"seeds {seeds}: give at least 2 distinct seeds (3 or more for a useful interval)"
        )
    sources = list(next(iter(mixtures.values())))
    clean = {name: clean_mixture(mix, sources) for name, mix in mixtures.items()}
    first_of: dict[str, str] = {}
    for name, mix in clean.items():
        first_of.setdefault(mixture_tag(mix), name)
    runs: list[PlannedRun] = []
    for seed in seeds:
        for tag, name in first_of.items():
            runs.append(
                PlannedRun(
                    run_id=f"verify-{name}-{tag}-s{seed}",
                    mixture={s: v for s, v in clean[name].items() if v > 0},
                    tokens=int(tokens),
                    kind="custom",
                    seed=seed,
                )
            )
    run_ids = {
        name: [f"verify-{first_of[mixture_tag(mix)]}-{mixture_tag(mix)}-s{s}" for s in seeds]
        for name, mix in clean.items()
    }
    plan = Plan(
        sources=sources,
        runs=runs,
        model=model,
        train=train,
        design={"purpose": "verification", "tokens": int(tokens), "seeds": seeds},
    )
    return plan, run_ids


def verify_mixtures(
    mixtures: Mapping[str, Mapping[str, float]],
    tokens: int,
    store: str | Path,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    corpus: str | Path | None = None,
    model: ModelConfig | None = None,
    train: TrainConfig | None = None,
    executor: Executor | None = None,
    law: Law | None = None,
    targets: Sequence[str] | None = None,
    recommended: str = "climb",
    level: float = 0.95,
    plan_path: str | Path | None = None,
    progress: bool = True,
    settings: Mapping[str, Any] | None = None,
) -> VerificationResult:
    """Train each mixture at ``tokens`` once per seed into ``store`` and compare them, paired.

    Args:
        mixtures: ``{name: {source: p}}``, every mixture over the same sources; ``recommended``
            must be one of them.
        tokens: the target budget ``D*`` of every run.
        store: SQLite run store (created when missing; finished runs are reused).
        seeds: training seeds (initialization and data order); every mixture gets every seed.
        corpus: the corpus directory (``None``: the embedded corpus).
        model, train: proxy model and training settings (``train.seed`` is replaced per run).
        executor: where runs train (default: one local process).
        law: if given, its prediction of each mixture's losses at ``tokens`` (with ``N`` the
            model's non-embedding parameters) is recorded next to the realized losses.
        targets: the losses compared (default: the law's targets, else the mixtures' sources).
        level: confidence level of the paired t-intervals.
        plan_path: also write the verification plan YAML there.
        settings: free-form provenance stored in the result.
    """
    from climb.data.store import RunStore
    from climb.proxy.sweep import run_sweep

    if recommended not in mixtures:
        raise ClimbError(
            f"recommended: no mixture named '{recommended}' (have: {', '.join(mixtures)})"
        )
    model = model or ModelConfig()
    train = train or TrainConfig()
    plan, run_ids = verification_plan(mixtures, tokens, seeds, model=model, train=train)
    if plan_path is not None:
        plan.save(plan_path)
    run_sweep(plan, store, corpus=corpus, executor=executor, progress=progress)
    with RunStore(store, create=False) as rs:
        table = rs.to_run_table(final_only=True)
    tg = list(targets) if targets is not None else list(law.targets_ if law else plan.sources)
    missing = [t for t in tg if t not in table.targets]
    if missing:
        raise ClimbError(f"targets: the verification runs do not measure {', '.join(missing)}")
    n_params = float(model.non_embedding_params())
    outcomes: dict[str, MixtureOutcome] = {}
    for name, ids in run_ids.items():
        realized = []
        for rid in ids:
            row = table.run.index(rid)
            realized.append({t: float(table.loss[row, table.targets.index(t)]) for t in tg})
        mix = clean_mixture(mixtures[name], plan.sources)
        predicted = None
        if law is not None:
            pred = law.predict([mix.get(s, 0.0) for s in law.sources_], float(tokens), n_params)
            predicted = {t: float(v) for t, v in zip(law.targets_, pred) if t in tg}
        outcomes[name] = MixtureOutcome(
            name=name,
            proportions=mix,
            seeds=[int(s) for s in seeds],
            realized=realized,
            runs=list(ids),
            predicted=predicted,
        )
    return VerificationResult(
        tokens=float(tokens),
        targets=tg,
        mixtures=outcomes,
        recommended=recommended,
        level=level,
        settings={
            "seeds": [int(s) for s in seeds],
            "model": model.model_dump(mode="json"),
            "train": train.model_dump(mode="json"),
            **dict(settings or {}),
        },
    )
