"""Run design: which proxy runs to train so that every interaction ``w_ij`` can be fitted.

The Climb law (``method/CLIMB.md`` §3) models each language's effective ratio as

    r_i(p, D) = p_i + Σ_{j≠i} w_ij(D) · p_j,        w_ij(D) = w_ij · (D / D_ref)^(-κ_i)

and is fitted from proxy runs (§6): monolingual runs (the isolated law
``L_i^iso(T) = E_i + B_i T^(-β_i)`` and each ``w_ij`` through ``r_i`` of the run on ``j`` alone), pairs
(``i`` and ``j`` at several shares) and Dirichlet-sampled mixtures around the natural mix
(``p ∝ U``, unique tokens) and the uniform mix, at two or more token budgets ``D`` (for ``κ``).

:func:`design_runs` builds such a :class:`Plan`; :func:`check_identifiability` checks that, for
every target ``i``, the regression of ``r_i − p_i`` on ``p_{-i}`` has a design matrix of full
column rank at every budget, that every source appears at several shares with and without each
partner, and that the isolated law has monolingual runs at ≥ 2 budgets — and says what is missing.
Data caps ``p_i · D ≤ E · U_i`` (at most ``E`` epochs of source ``i``) are respected: a run that
breaks one is repaired by moving the excess to the other sources of its mixture, or dropped when
its mixture cannot hold the budget (both with a warning); a source the caps leave out of every run
gets one at the largest share its cap allows.

The plan is a YAML file (:meth:`Plan.save` / :meth:`Plan.load`): the global model and train
configuration plus the list of runs (id, mixture, tokens); :meth:`Plan.specs` expands it into
:class:`~climb.proxy.config.RunSpec` objects for the sweep.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from climb.data.userfiles import read_yaml
from climb.errors import ClimbError, ClimbWarning
from climb.proxy.config import ModelConfig, RunSpec, TrainConfig

PLAN_FORMAT = "climb-plan"
PLAN_VERSION = 1
SHARE_DECIMALS = 4
"""Mixture shares in a plan are rounded to this many decimals (largest remainder keeps Σ = 1)."""
MIN_SHARE = 1e-3
"""Dirichlet shares below this are set to 0 (a source at 0.05 % of a proxy run is noise)."""
PAIR_SHARES = (0.25, 0.5, 0.75)
"""Shares of the first source of a pair run."""


# ---------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class PlannedRun:
    """One planned proxy run.

    Attributes:
        run_id: unique id (also the ``run`` of its final row in the run table).
        mixture: ``{source: share}``, shares > 0 summing to 1 (sources left out have share 0).
        tokens: training tokens ``D``.
        kind: how it was chosen: ``mono``, ``pair``, ``dirichlet-natural``,
            ``dirichlet-uniform``, ``capped`` (a source the caps left out of every other run, at
            the largest share its cap allows) or ``custom``.
        branches: smaller budgets ``D_k < D`` where a WSD run branches a cooldown (a true-budget
            row each); empty for cosine runs.
        seed: this run's training seed (initialization and data order); ``None`` = the plan's
            ``train.seed``.
    """

    run_id: str
    mixture: dict[str, float]
    tokens: int
    kind: str = "custom"
    branches: tuple[int, ...] = ()
    seed: int | None = None

    @property
    def budgets(self) -> tuple[int, ...]:
        """Token budgets at which this run gives a row with its schedule finished (true budgets)."""
        return (*sorted(self.branches), int(self.tokens))


@dataclass
class Plan:
    """A sweep plan: the sources, the global model/train configuration and the runs.

    Attributes:
        sources: every source of the plan; each run is evaluated on all of them.
        runs: the planned runs.
        model: model configuration shared by all runs.
        train: training configuration shared by all runs (seed, threads, checkpoints…).
        design: provenance of the design (seed, budgets, caps, corpus), free-form.
    """

    sources: list[str]
    runs: list[PlannedRun]
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    design: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return len(self.runs)

    @property
    def budgets(self) -> list[int]:
        """The distinct true token budgets (runs' ``tokens`` and WSD ``branches``), ascending."""
        return sorted({b for r in self.runs for b in r.budgets})

    def proportions(self) -> np.ndarray:
        """``(n_runs, K)`` matrix of planned proportions, columns in ``sources`` order."""
        return np.array([[r.mixture.get(s, 0.0) for s in self.sources] for r in self.runs])

    def spec(self, run: PlannedRun) -> RunSpec:
        """The :class:`RunSpec` of one run: its mixture over *all* plan sources (zeros included)."""
        mixture = {s: float(run.mixture.get(s, 0.0)) for s in self.sources}
        try:
            return RunSpec(
                run_id=run.run_id,
                mixture=mixture,
                tokens=int(run.tokens),
                branches=tuple(int(b) for b in run.branches),
                model=self.model,
                train=self.train
                if run.seed is None
                else self.train.model_copy(update={"seed": int(run.seed)}),
            )
        except ClimbError:
            raise
        except ValueError as exc:  # pydantic.ValidationError is a ValueError
            raise ClimbError(f"plan run '{run.run_id}': {_first_line(exc)}") from None

    def specs(self) -> list[RunSpec]:
        """Every run as a :class:`RunSpec`, in plan order."""
        return [self.spec(r) for r in self.runs]

    def identifiability(self) -> IdentifiabilityReport:
        """:func:`check_identifiability` of this plan."""
        return check_identifiability(self)

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        """The YAML document (plain types)."""
        return {
            "format": PLAN_FORMAT,
            "version": PLAN_VERSION,
            "sources": list(self.sources),
            "model": self.model.model_dump(mode="json"),
            "train": self.train.model_dump(mode="json"),
            "design": _plain(self.design),
            "runs": [
                {
                    "id": r.run_id,
                    "kind": r.kind,
                    "tokens": int(r.tokens),
                    **({"branches": [int(b) for b in r.branches]} if r.branches else {}),
                    "mixture": {s: float(v) for s, v in r.mixture.items()},
                }
                | ({} if r.seed is None else {"seed": int(r.seed)})
                for r in self.runs
            ],
        }

    def save(self, path: str | Path) -> Path:
        """Write the plan as YAML (atomically)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(
                "# climb sweep plan: global model/train config + runs (id, mixture, tokens,\n"
                "# and for WSD runs the smaller budgets where a cooldown branch is evaluated).\n"
                "# Train it with `climb sweep THIS_FILE --store runs.db`.\n"
            )
            yaml.safe_dump(self.to_dict(), fh, sort_keys=False, allow_unicode=True, width=100)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        """Read and validate a plan YAML; any problem is a one-line :class:`ClimbError`."""
        path = Path(path)
        doc = read_yaml(path, "plan")
        return cls.from_dict(doc, origin=str(path))

    @classmethod
    def from_dict(cls, doc: Any, *, origin: str = "plan") -> Plan:
        """Validate a plan document (the parsed YAML)."""
        if not isinstance(doc, dict):
            raise ClimbError(
                f"{origin}: expected a mapping with 'sources', 'model', 'train', 'runs'"
            )
        if doc.get("format", PLAN_FORMAT) != PLAN_FORMAT:
            raise ClimbError(f"{origin}: 'format' is {doc.get('format')!r}, not a climb plan")
        known = {"format", "version", "sources", "model", "train", "design", "runs"}
        unknown = sorted(set(map(str, doc)) - known)
        if unknown:
            raise ClimbError(
                f"{origin}: unknown key '{unknown[0]}' (keys are {', '.join(sorted(known))})"
            )
        version = doc.get("version", PLAN_VERSION)
        if version != PLAN_VERSION:
            raise ClimbError(
                f"{origin}: plan version {version!r}; this climb reads version {PLAN_VERSION}"
            )
        sources = doc.get("sources")
        if (
            not isinstance(sources, list)
            or not sources
            or not all(isinstance(s, str) and s for s in sources)
        ):
            raise ClimbError(f"{origin}: 'sources' must be a non-empty list of source names")
        if len(set(sources)) != len(sources):
            dup = next(s for s in sources if sources.count(s) > 1)
            raise ClimbError(f"{origin}: source '{dup}' listed twice in 'sources'")
        model = make_config(ModelConfig, doc.get("model") or {}, origin, "model")
        train = make_config(TrainConfig, doc.get("train") or {}, origin, "train")
        design = doc.get("design") or {}
        if not isinstance(design, dict):
            raise ClimbError(f"{origin}: 'design' must be a mapping")
        raw_runs = doc.get("runs")
        if not isinstance(raw_runs, list) or not raw_runs:
            raise ClimbError(
                f"{origin}: 'runs' must be a non-empty list of runs (id, mixture, tokens)"
            )
        runs: list[PlannedRun] = []
        seen: set[str] = set()
        for k, item in enumerate(raw_runs, 1):
            runs.append(_planned_run(item, k, sources, origin))
            if runs[-1].run_id in seen:
                raise ClimbError(
                    f"{origin}: run {k}: id '{runs[-1].run_id}' is used twice; ids must be unique"
                )
            seen.add(runs[-1].run_id)
            if runs[-1].branches and train.schedule != "wsd":
                raise ClimbError(
                    f"{origin}: run '{runs[-1].run_id}' has 'branches', which need "
                    f"train.schedule 'wsd' (the plan's is '{train.schedule}')"
                )
        return cls(sources=list(sources), runs=runs, model=model, train=train, design=design)


# ---------------------------------------------------------------------- identifiability
@dataclass(frozen=True)
class IdentifiabilityReport:
    """Whether a plan can identify every ``w_ij`` (and the isolated law, and ``κ``).

    Attributes:
        ok: no problem found.
        problems: one line per problem, naming the sources/budget concerned.
        rank: per target ``i``, the column rank of ``P_{-i}`` over all runs (full = ``K − 1``).
        budgets: the distinct *true* token budgets (a run's ``tokens`` and its WSD branches;
            mid-schedule checkpoints of cosine runs are not counted).
        rows: the number of true-budget rows the plan yields.
    """

    ok: bool
    problems: list[str]
    rank: dict[str, int]
    budgets: list[int]
    rows: int = 0


def true_budget_rows(plan: Plan) -> tuple[np.ndarray, np.ndarray]:
    """``(P, D)``: one row per true budget of every run (WSD branches and each run's ``tokens``).

    Cosine checkpoints are left out: they are mid-schedule, not true budgets, and the climb laws
    do not fit ``β``/``κ`` from them.
    """
    P = plan.proportions()
    idx = [k for k, r in enumerate(plan.runs) for _ in r.budgets]
    D = [b for r in plan.runs for b in r.budgets]
    return P[idx], np.array(D, dtype=np.int64)


def check_identifiability(
    plan: Plan, *, min_shares: int = 2, mono_share: float = 0.9
) -> IdentifiabilityReport:
    """Check that a plan identifies the Climb law's parameters from its true-budget rows.

    Over the rows of :func:`true_budget_rows`: for each target ``i`` the effective-ratio
    regression ``r_i − p_i = Σ_{j≠i} w_ij(D) p_j`` needs the design matrix ``P_{-i}`` (rows × the
    other sources) to have full column rank ``K − 1`` at *each* true budget (so ``w_ij(D)`` and
    hence ``κ_i`` are identifiable), and rows where some donor ``j ≠ i`` has ``p_j > 0`` at ≥ 2
    true budgets (``κ_i``); each source ``i`` must appear at ≥ ``min_shares`` distinct positive
    shares among runs *with* each partner ``j`` (``p_j > 0``) and among runs *without* it
    (``p_j = 0``); the isolated law needs runs with ``p_i ≥ mono_share`` at ≥ 2 true budgets.
    """
    sources = plan.sources
    K = len(sources)
    P, D = true_budget_rows(plan)
    budgets = sorted(set(D.tolist()))
    problems: list[str] = []
    if len(budgets) < 2:
        problems.append(
            f"only one true token budget ({budgets[0]}); κ (scale sensitivity) needs ≥ 2 "
            "(cosine checkpoints do not count; use the wsd schedule with ≥ 2 budgets)"
        )
    rank: dict[str, int] = {}
    for i, s in enumerate(sources):
        others = [j for j in range(K) if j != i]
        rank[s] = int(np.linalg.matrix_rank(P[:, others])) if others else 0
        if K > 1 and rank[s] < K - 1:
            problems.append(
                f"target '{s}': design matrix of r on p has rank {rank[s]} < {K - 1} over all runs"
            )
            continue
        donor_budgets = np.unique(D[(P[:, others] > 0).any(axis=1)])
        if len(budgets) >= 2 and len(donor_budgets) < 2:
            problems.append(
                f"target '{s}': runs with donors at {len(donor_budgets)} true budget(s); "
                "κ needs ≥ 2"
            )
        for b in budgets:
            sub = P[b == D][:, others]
            rb = int(np.linalg.matrix_rank(sub)) if len(sub) else 0
            if K > 1 and rb < K - 1:
                problems.append(
                    f"target '{s}' at D={b}: design matrix rank {rb} < {K - 1}; add runs at this budget"
                )
    for i, s in enumerate(sources):
        mono_budgets = sorted({int(d) for d in D[P[:, i] >= mono_share]})
        if len(mono_budgets) < 2:
            problems.append(
                f"source '{s}': monolingual (p ≥ {mono_share:g}) runs at {len(mono_budgets)} true "
                "budget(s); the isolated law needs ≥ 2"
            )
    for i, j in itertools.permutations(range(K), 2):
        pos = P[:, i] > 0
        with_j = np.unique(np.round(P[pos & (P[:, j] > 0), i], 6))
        without_j = np.unique(np.round(P[pos & (P[:, j] == 0), i], 6))
        if len(with_j) < min_shares:
            problems.append(
                f"source '{sources[i]}' appears at {len(with_j)} distinct share(s) with '{sources[j]}' (need {min_shares})"
            )
        if len(without_j) < min_shares:
            problems.append(
                f"source '{sources[i]}' appears at {len(without_j)} distinct share(s) without '{sources[j]}' "
                f"(need {min_shares})"
            )
    return IdentifiabilityReport(
        ok=not problems,
        problems=problems,
        rank=rank,
        budgets=[int(b) for b in budgets],
        rows=len(D),
    )


# ---------------------------------------------------------------------- design
def design_runs(
    sources: Sequence[str],
    tokens: Sequence[int],
    n_runs: int,
    *,
    seed: int = 0,
    unique_tokens: Mapping[str, int] | None = None,
    max_epochs: float | None = None,
    model: ModelConfig | None = None,
    train: TrainConfig | None = None,
    pair_shares: Sequence[float] = PAIR_SHARES,
    schedule: str = "wsd",
    warn: bool = True,
    candidates: int = 1,
) -> Plan:
    """Design a sweep: monolingual runs, pairs and Dirichlet mixtures at the token budgets.

    The runs' mixtures are, in order: the ``K`` monolingual runs; pairs ``(i, j)`` at shares
    ``pair_shares`` (each source in ≥ 1 pair, pairs chosen in a seeded order); then Dirichlet
    mixtures alternating around the natural mix ``q_i ∝ U_i`` and the uniform mix ``q_i = 1/K``
    (``p ~ Dir(K·q)``), every second one on a random subset of the sources (so each source is also
    seen *without* each partner). Every mixture is trained at every budget (only ``D`` differs),
    which separates ``w_ij`` from ``κ_i``.

    ``schedule="wsd"`` (the default, recommended): ``n_runs`` training runs, one per mixture,
    each with the largest budget as ``tokens`` and a cooldown branch at every smaller budget, so
    each run gives a true-budget row at every budget for about ``1 + cooldown_frac·Σ_{k<K} D_k/D_K``
    times the cost of its largest budget. ``schedule="cosine"``: ``n_runs`` runs split evenly over
    the budgets (the remainder to the smallest), each trained with its own cosine schedule; their
    checkpoints are not true budgets. ``train.schedule`` is set to ``schedule``.

    With ``max_epochs`` ``E`` and ``unique_tokens`` ``U``, every run satisfies ``p_i D ≤ E U_i``:
    shares over the cap are clipped and the excess moved to the other sources of the run's mixture
    (water-filling); a run whose mixture cannot hold ``D`` (e.g. a monolingual run on a small
    source) is dropped, or for WSD shortened to the largest budget it can hold; a source left in
    no run gets one at its cap's share (:func:`_capped_runs`). All are reported as
    :class:`ClimbWarning`. The plan is checked with :func:`check_identifiability`; problems are
    warned about (``warn=False`` to silence).

    ``candidates`` ``n > 1``: of ``n`` designs drawn from the seeded stream (the first is that of
    ``candidates=1``) the *D-optimal* one, the largest :func:`d_criterion`, is kept (recorded in
    ``design.candidates``); where caps bind its laws predict better (benchmarks/design_candidates.py).
    """
    sources = [str(s) for s in sources]
    K = len(sources)
    budgets = sorted({int(t) for t in tokens})
    _check_design_args(
        sources, budgets, n_runs, unique_tokens, max_epochs, pair_shares, schedule, candidates
    )
    rng = np.random.default_rng(seed)
    per_budget = [n_runs // len(budgets)] * len(budgets)
    for k in range(n_runs % len(budgets)):
        per_budget[k] += 1
    n_mix = n_runs if schedule == "wsd" else max(per_budget)
    natural = (
        np.array([float(unique_tokens[s]) for s in sources])
        if unique_tokens is not None
        else np.ones(K)
    )
    natural = natural / natural.sum()
    train = (train if train is not None else TrainConfig()).model_copy(
        update={"schedule": schedule}
    )
    base = Plan(
        sources=sources,
        runs=[],
        model=model if model is not None else ModelConfig(),
        train=train,
        design={
            "seed": int(seed),
            "runs": int(n_runs),
            "tokens": budgets,
            "schedule": schedule,
            "max_epochs": max_epochs,
            "pair_shares": [float(x) for x in pair_shares],
            "natural": {s: round(float(q), 6) for s, q in zip(sources, natural)},
        },
    )
    best: tuple[float, Plan, _Caps] | None = None
    for attempt in range(1, candidates + 1):
        mixtures = _mixtures(sources, n_mix, natural, rng, pair_shares)
        caps = _Caps(sources, unique_tokens, max_epochs)
        plan = _candidate(base, mixtures, budgets, per_budget, caps, warn)
        if candidates == 1:
            best = (0.0, plan, caps)
            break
        value = d_criterion(plan)
        plan.design["candidates"] = {"drawn": int(candidates), "chosen": attempt,
                                     "d_criterion": round(value, 4)}  # fmt: skip
        if best is None or value > best[0]:
            best = (value, plan, caps)
    assert best is not None
    _, plan, caps = best
    if warn:
        caps.warn()
    report = check_identifiability(plan)
    plan.design["identifiable"] = report.ok
    if warn and not report.ok:
        _warn_identifiability(report)
    return plan


def _warn_identifiability(report: IdentifiabilityReport) -> None:
    shown = "; ".join(report.problems[:3])
    more = f" (+{len(report.problems) - 3} more)" if len(report.problems) > 3 else ""
    warnings.warn(
        f"design: some interactions may not be identifiable: {shown}{more}; add runs (n_runs) or budgets",
        ClimbWarning,
        stacklevel=3,
    )


def _candidate(
    base: Plan, mixtures: list[tuple[str, str, dict[str, float]]], budgets: list[int],
    per_budget: list[int], caps: _Caps, warn: bool,
) -> Plan:  # fmt: skip
    """``base`` with the runs of ``mixtures`` under ``caps`` (its schedule's; the caps record what
    they repaired, shortened or dropped)."""
    if base.train.schedule == "wsd":
        runs = _wsd_runs(mixtures, budgets, caps)
    else:
        runs = _cosine_runs(mixtures, budgets, per_budget, caps)
    runs += _capped_runs(runs, budgets, caps, wsd=base.train.schedule == "wsd")
    if not runs:  # the monolingual and pair runs are in every candidate: none would do
        if warn:
            caps.warn()
        raise ClimbError("design: every run broke the data caps; lower tokens or raise max_epochs")
    design = dict(base.design, repaired=caps.repaired, shortened=caps.shortened,
                  dropped=caps.dropped, **({"added": caps.added} if caps.added else {}))  # fmt: skip
    return replace(base, runs=runs, design=design)


def d_criterion(plan: Plan) -> float:
    """``Σ_i ln det(P_{-i}ᵀ P_{-i} + 10⁻⁶ I)`` over the plan's true-budget rows: the D-optimality of
    the regressions ``r_i − p_i = Σ_{j≠i} w_ij p_j`` that identify the transfer weights (larger:
    a smaller joint confidence region of every target's ``w_i·``)."""
    P, _ = true_budget_rows(plan)
    total = 0.0
    for i in range(P.shape[1]):
        s = np.linalg.svd(np.delete(P, i, axis=1), compute_uv=False)
        total += float(np.sum(np.log(s**2 + 1e-6)))
    return total


def _check_design_args(
    sources: list[str],
    budgets: list[int],
    n_runs: int,
    unique_tokens: Mapping[str, int] | None,
    max_epochs: float | None,
    pair_shares: Sequence[float],
    schedule: str,
    candidates: Any = 1,
) -> None:
    if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
        raise ClimbError(f"candidates={candidates!r}: must be a whole number ≥ 1")
    K = len(sources)
    if K < 2:
        raise ClimbError("sources: give at least 2 sources (a mixture law needs a mixture)")
    if len(set(sources)) != K:
        dup = next(s for s in sources if sources.count(s) > 1)
        raise ClimbError(f"sources: '{dup}' is listed twice")
    if not budgets or any(b <= 0 for b in budgets):
        raise ClimbError(
            "tokens: give one or more positive token budgets, e.g. [1_000_000, 2_000_000]"
        )
    if schedule not in ("wsd", "cosine"):
        raise ClimbError(f"schedule must be 'wsd' or 'cosine', got {schedule!r}")
    need = K if schedule == "wsd" else K * len(budgets)
    if n_runs < need:
        where = "" if schedule == "wsd" else f" at {len(budgets)} budget(s)"
        raise ClimbError(
            f"n_runs={n_runs} is too few: the {K} monolingual runs alone need {need} runs{where}; "
            f"use n_runs ≥ {3 * need} for a useful design"
        )
    if max_epochs is not None and max_epochs <= 0:
        raise ClimbError(f"max_epochs={max_epochs:g}: must be > 0")
    if unique_tokens is not None:
        missing = [s for s in sources if s not in unique_tokens]
        if missing:
            raise ClimbError(
                f"no unique-token count for source '{missing[0]}'; the corpus lacks it"
            )
        bad = [s for s in sources if not unique_tokens[s] > 0]
        if bad:
            raise ClimbError(
                f"source '{bad[0]}' has {unique_tokens[bad[0]]} unique tokens; it is empty"
            )
    if max_epochs is not None and unique_tokens is None:
        raise ClimbError(
            "max_epochs needs unique_tokens (the unique-token counts of the sources, e.g. of a corpus)"
        )
    for sh in pair_shares:
        if not 0 < sh < 1:
            raise ClimbError(f"pair share {sh:g} must lie strictly between 0 and 1")


class _Caps:
    """Data caps ``p_i D ≤ E U_i`` of a design, and the runs they repaired, shortened or dropped."""

    def __init__(
        self, sources: list[str], unique: Mapping[str, int] | None, max_epochs: float | None
    ) -> None:
        self.sources, self.unique, self.max_epochs = sources, unique, max_epochs
        self.repaired: list[str] = []
        self.shortened: list[str] = []
        self.dropped: list[str] = []
        self.added: list[str] = []
        self.absent: list[str] = []

    def at_cap(self, source: str, tokens: int) -> dict[str, float] | None:
        """``source`` at the largest share its cap allows at ``tokens``, the rest spread evenly
        over the other sources (repaired to their caps); ``None`` if that is below the smallest
        share a design uses or the others cannot hold the rest."""
        assert self.max_epochs is not None and self.unique is not None
        unit = 10**SHARE_DECIMALS
        share = math.floor(self.max_epochs * self.unique[source] / tokens * unit) / unit
        others = [s for s in self.sources if s != source]
        if share < MIN_SHARE:
            return None
        mix = _round_mixture({source: share, **{s: (1.0 - share) / len(others) for s in others}})
        return self.fit(mix, tokens)

    def fit(self, mix: dict[str, float], tokens: int) -> dict[str, float] | None:
        """The mixture, repaired to respect the caps at ``tokens``, or ``None`` if it cannot."""
        if self.max_epochs is None or self.unique is None:
            return mix
        caps = {s: self.max_epochs * self.unique[s] / tokens for s in self.sources}
        return _apply_caps(mix, caps)

    def warn(self) -> None:
        E = self.max_epochs if self.max_epochs is not None else math.nan
        absent = self.absent
        if absent:
            warnings.warn(
                f"design: source(s) {', '.join(absent)} are in no run: no mixture with them at a "
                f"share ≥ {MIN_SHARE:g} holds these budgets under the caps p·D ≤ {E:g}·U, so no "
                "law can fit them; lower tokens or leave them out",
                ClimbWarning,
                stacklevel=3,
            )
        for what, ids, advice in (
            ("were repaired (excess moved to their other sources)", self.repaired, ""),
            ("were shortened to the largest budget their mixture can hold", self.shortened, ""),
            ("were dropped", self.dropped, "; lower tokens or raise max_epochs"),
        ):
            if ids:
                warnings.warn(
                    f"design: {len(ids)} run(s) broke the data cap p·D ≤ {E:g}·U and {what}, "
                    f"e.g. {', '.join(ids[:3])}{advice}",
                    ClimbWarning,
                    stacklevel=3,
                )
        if self.added:
            warnings.warn(
                f"design: added {len(self.added)} run(s) for source(s) the caps left out of every "
                f"other run, each at the largest share its cap allows: {', '.join(self.added[:3])}",
                ClimbWarning,
                stacklevel=3,
            )


def _cosine_runs(
    mixtures: list[tuple[str, str, dict[str, float]]],
    budgets: list[int],
    per_budget: list[int],
    caps: _Caps,
) -> list[PlannedRun]:
    """One cosine run per (budget, mixture): the first ``per_budget[k]`` mixtures at budget k."""
    runs: list[PlannedRun] = []
    for b, n_b in zip(budgets, per_budget):
        for kind, name, mix in mixtures[:n_b]:
            run_id = f"D{_tokens_tag(b)}-{name}"
            fixed = caps.fit(mix, b)
            if fixed is None:
                caps.dropped.append(run_id)
                continue
            if fixed != mix:
                caps.repaired.append(run_id)
            runs.append(PlannedRun(run_id=run_id, mixture=fixed, tokens=b, kind=kind))
    return runs


def _wsd_runs(
    mixtures: list[tuple[str, str, dict[str, float]]], budgets: list[int], caps: _Caps
) -> list[PlannedRun]:
    """One WSD run per mixture: ``tokens`` = the largest budget its mixture can hold under the
    caps (repaired there, which respects the caps at every smaller budget too), branches at the
    smaller ones."""
    runs: list[PlannedRun] = []
    for kind, name, mix in mixtures:
        run_id = f"wsd-{name}"
        for k in range(len(budgets) - 1, -1, -1):
            fixed = caps.fit(mix, budgets[k])
            if fixed is not None:
                break
        if fixed is None:
            caps.dropped.append(run_id)
            continue
        if k < len(budgets) - 1:
            caps.shortened.append(run_id)
        if fixed != mix:
            caps.repaired.append(run_id)
        runs.append(PlannedRun(run_id, fixed, budgets[k], kind=kind, branches=tuple(budgets[:k])))
    return runs


def _capped_runs(
    runs: list[PlannedRun], budgets: list[int], caps: _Caps, *, wsd: bool
) -> list[PlannedRun]:
    """Runs for the sources the caps left out of every run (their monolingual runs dropped, no
    pair or mixture drawn with them): each at the largest share its cap allows (:meth:`_Caps.at_cap`),
    one WSD run at the largest budget with branches below, or one cosine run per budget. Without
    them no law could fit such a source (benchmarks/capped_sources.py)."""
    absent = [s for s in caps.sources if all(r.mixture.get(s, 0.0) <= 0 for r in runs)]
    out: list[PlannedRun] = []
    for s in absent:
        made = 0
        for b in [budgets[-1]] if wsd else budgets:
            mix = caps.at_cap(s, b)
            if mix is None:
                continue
            run_id = f"wsd-cap-{s}" if wsd else f"D{_tokens_tag(b)}-cap-{s}"
            branches = tuple(budgets[:-1]) if wsd else ()
            out.append(PlannedRun(run_id, mix, b, kind="capped", branches=branches))
            caps.added.append(run_id)
            made += 1
        if not made:  # a cosine run at one budget is enough to keep it out of this list
            caps.absent.append(s)
    return out


def _mixtures(
    sources: list[str],
    n: int,
    natural: np.ndarray,
    rng: np.random.Generator,
    pair_shares: Sequence[float],
) -> list[tuple[str, str, dict[str, float]]]:
    """The first ``n`` mixtures of a design, as (kind, name, mixture) — monos, pairs, Dirichlet."""
    K = len(sources)
    out: list[tuple[str, str, dict[str, float]]] = [
        ("mono", f"mono-{s}", {s: 1.0}) for s in sources
    ]
    rest = max(n - K, 0)
    all_pairs = list(itertools.combinations(range(K), 2))
    order = [all_pairs[k] for k in rng.permutation(len(all_pairs))]
    # Greedy cover: first pairs so that every source is in one, then the seeded order.
    cover: list[tuple[int, int]] = []
    seen: set[int] = set()
    for a, b in order:
        if a not in seen or b not in seen:
            cover.append((a, b))
            seen.update((a, b))
    order = cover + [pq for pq in order if pq not in cover]
    n_pairs = min(len(order) * len(pair_shares), max(math.ceil(K / 2), round(0.3 * rest)), rest)
    for k in range(n_pairs):
        a, b = order[k % len(order)]
        share = float(pair_shares[(k + k // len(order)) % len(pair_shares)])
        name = f"pair-{sources[a]}-{sources[b]}-{round(100 * share):02d}"
        out.append(("pair", name, _round_mixture({sources[a]: share, sources[b]: 1.0 - share})))
    n_dir = rest - n_pairs
    for k in range(n_dir):
        center_name, center = (
            ("natural", natural) if k % 2 == 0 else ("uniform", np.full(K, 1.0 / K))
        )
        support = np.arange(K)
        if (k // 2) % 2 == 1 and K >= 3:
            size = int(rng.integers(2, K))
            support = np.sort(rng.choice(K, size=size, replace=False))
        alpha = center[support] / center[support].sum() * len(support)
        p = rng.dirichlet(np.maximum(alpha, 1e-3))
        p[p < MIN_SHARE] = 0.0
        if p.sum() <= 0:
            p[int(np.argmax(alpha))] = 1.0
        mix = _round_mixture({sources[j]: float(v) for j, v in zip(support, p / p.sum()) if v > 0})
        out.append((f"dirichlet-{center_name}", f"dir-{center_name[:3]}-{k:03d}", mix))
    return out[:n]


def _round_mixture(mix: Mapping[str, float], decimals: int = SHARE_DECIMALS) -> dict[str, float]:
    """Round shares to ``decimals`` with the largest-remainder rule, so they still sum to 1."""
    unit = 10**decimals
    names = list(mix)
    raw = np.array([mix[s] for s in names], dtype=float)
    raw = raw / raw.sum() * unit
    base = np.floor(raw).astype(int)
    short = unit - int(base.sum())
    for k in np.argsort(-(raw - base), kind="stable")[:short]:
        base[k] += 1
    return {s: int(v) / unit for s, v in zip(names, base) if v > 0}


def _apply_caps(mix: dict[str, float], caps: Mapping[str, float]) -> dict[str, float] | None:
    """Clip shares to ``caps`` and water-fill the excess onto the run's other sources.

    ``None`` when the run's support cannot hold the budget (Σ caps over the support < 1).
    """
    names = list(mix)
    cap = np.array([caps[s] for s in names])
    if cap.sum() < 1.0 - 1e-12:
        return None
    p = np.array([mix[s] for s in names], dtype=float)
    if (p <= cap + 1e-12).all():
        return mix
    fixed = np.zeros(len(p), dtype=bool)
    for _ in range(len(p)):
        over = (p > cap + 1e-12) & ~fixed
        if not over.any():
            break
        excess = float((p[over] - cap[over]).sum())
        p[over] = cap[over]
        fixed |= over
        free = ~fixed
        weights = p[free] if p[free].sum() > 0 else np.ones(int(free.sum()))
        p[free] += excess * weights / weights.sum()
    # Rounding must not push a share back over its cap.
    out = _round_mixture(dict(zip(names, p)))
    for s in out:
        if out[s] > caps[s] + 10**-SHARE_DECIMALS:
            return None
    return out


# ---------------------------------------------------------------------- helpers
def make_config(cls: Any, values: Any, origin: str, what: str) -> Any:
    """``cls(**values)`` (a config dataclass), its first validation error as one line naming
    ``origin`` and ``what``."""
    if isinstance(values, cls):
        return values
    if not isinstance(values, dict):
        raise ClimbError(f"{origin}: '{what}' must be a mapping of {cls.__name__} fields")
    try:
        return cls(**values)
    except ClimbError:
        raise
    except (TypeError, ValueError) as exc:
        raise ClimbError(f"{origin}: {what}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            loc = ".".join(str(x) for x in first.get("loc", ()))
            return f"{loc}: {first.get('msg', '')}" if loc else str(first.get("msg", ""))
        except Exception:
            pass
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _planned_run(item: Any, k: int, sources: list[str], origin: str) -> PlannedRun:
    if not isinstance(item, dict):
        raise ClimbError(f"{origin}: run {k}: expected a mapping with id, mixture, tokens")
    unknown = sorted(set(map(str, item)) - {"id", "kind", "tokens", "branches", "mixture", "seed"})
    if unknown:
        raise ClimbError(
            f"{origin}: run {k}: unknown key '{unknown[0]}' "
            "(keys are id, kind, mixture, tokens, branches, seed)"
        )
    run_id = item.get("id")
    if not isinstance(run_id, str | int) or not str(run_id).strip() or "@" in str(run_id):
        raise ClimbError(f"{origin}: run {k}: 'id' must be a non-empty name without '@'")
    run_id = str(run_id)
    tokens = item.get("tokens")
    tok = _token_count(tokens)
    if tok is None:
        raise ClimbError(
            f"{origin}: run '{run_id}': 'tokens' is {tokens!r}; give a positive token count"
        )
    mix = item.get("mixture")
    if not isinstance(mix, dict) or not mix:
        raise ClimbError(f"{origin}: run '{run_id}': 'mixture' must map sources to shares")
    clean: dict[str, float] = {}
    for s, v in mix.items():
        if str(s) not in sources:
            raise ClimbError(
                f"{origin}: run '{run_id}': source '{s}' is not in the plan's 'sources' ({', '.join(sources)})"
            )
        try:
            share = float(v)
        except (TypeError, ValueError):
            share = math.nan
        if not math.isfinite(share) or share < 0:
            raise ClimbError(
                f"{origin}: run '{run_id}': share of '{s}' is {v!r}; must be a number ≥ 0"
            )
        if share > 0:
            clean[str(s)] = share
    total = sum(clean.values())
    if abs(total - 1.0) > 1e-6:
        raise ClimbError(f"{origin}: run '{run_id}': shares sum to {total:.6g}, not 1")
    kind = str(item.get("kind", "custom"))
    seed = item.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ClimbError(f"{origin}: run '{run_id}': 'seed' is {seed!r}; give an integer")
    return PlannedRun(
        run_id=run_id, mixture=clean, tokens=tok, kind=kind,
        branches=_branches(item.get("branches"), tok, f"{origin}: run '{run_id}'"), seed=seed,
    )  # fmt: skip


def _branches(raw: Any, tokens: int, where: str) -> tuple[int, ...]:
    """A run's ``branches`` entry: distinct positive token counts below its ``tokens``."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ClimbError(f"{where}: 'branches' must be a list of token counts below 'tokens'")
    out = []
    for b in raw:
        value = _token_count(b) or 0
        if not 0 < value < tokens:
            raise ClimbError(
                f"{where}: branch {b!r} must be a token count between 0 and tokens={tokens}"
            )
        out.append(value)
    if len(set(out)) != len(out):
        raise ClimbError(f"{where}: 'branches' lists a budget twice")
    return tuple(sorted(out))


def _token_count(value: Any) -> int | None:
    """A plan's ``tokens`` value (an integer, or a number written as ``2.5e5``) → int, else None."""
    if isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return round(x) if math.isfinite(x) and x >= 1 else None


def _tokens_tag(tokens: int) -> str:
    for div, suffix in ((10**9, "B"), (10**6, "M"), (10**3, "k")):
        if tokens >= div and tokens % (div // 100) == 0:
            return f"{tokens / div:g}{suffix}"
    return str(tokens)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
