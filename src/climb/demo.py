"""The end-to-end demo: proxy runs on the embedded corpus → laws → allocation → verification.

:func:`run_demo` chains one function per stage, each with typed inputs and outputs and each
resumable (training stages read finished runs from their stores), everything under one
``out_dir``:

1. :func:`stage_languages`: about six sources of the corpus, of different sizes and scripts
   (or a :data:`SCENARIOS` entry's, or the user's), and their unique tokens (the data caps);
   with ``caps``, a derived corpus under ``out_dir/corpus`` whose capped sources keep only their
   first training documents (:meth:`climb.data.corpus.Corpus.derive`), so the caps come from
   the kept text and bind;
2. :func:`stage_design` (:func:`climb.proxy.design.design_runs`): monolingual runs, pairs and
   Dirichlet mixtures; data caps ``p_i D ≤ e_max U_i`` → ``plan.yaml``;
3. :func:`stage_proxies` (:func:`climb.proxy.sweep.run_sweep`): trains the proxies into
   ``runs.db`` (a resumable SQLite store; each WSD run gives a true-budget row at both proxy
   budgets, the smaller from a cooldown branch, for ~1.1× the cost of the larger budget alone);
4. :func:`stage_laws`: ``climb`` and each baseline law, k-fold cross-validated with *whole
   training runs* held out → MAE in bits per byte and Spearman ρ; ``climb`` fitted on every run
   → ``law.json``, ``cv.json``;
5. :func:`stage_allocation` (:func:`climb.allocation.plan.plan_allocation`) for a target budget
   ``D*`` larger than the proxies', with the same data caps, the baselines and bootstrap
   intervals → ``allocation.json``;
6. :func:`stage_verification` (:func:`climb.verification.verify_mixtures`): Climb's mixture and
   the baseline mixtures trained at ``D*`` with the same seeds (≥ 3) and settings into
   ``verify.db``; per mixture mean ± spread of the realized loss, and Climb against each
   baseline paired by seed with a 95 % t-interval and a verdict → ``verification.json``;
7. :func:`stage_report` (:func:`climb.report.build_report`) → ``report.html`` and the PNGs.

Whether Climb's mixture wins the verification is reported as measured, with the numbers.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import shutil
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from climb.allocation.plan import AllocationPlan
from climb.data.runs import RunTable
from climb.errors import ClimbError, ClimbWarning
from climb.evaluation.cv import CVResult, cross_validate
from climb.laws.base import Law
from climb.proxy.config import ModelConfig, TrainConfig
from climb.proxy.design import Plan
from climb.proxy.executors import Executor
from climb.report import Report, median_abs_error, share_errors
from climb.verification import VerificationResult

if TYPE_CHECKING:
    from climb.data.corpus import Corpus

PREFERRED_LANGUAGES = ("en", "fr", "ru", "ja", "ko", "hi", "ar", "el", "zh", "de", "es", "pl")
"""Picked in this order when the corpus has them. In the embedded corpus the first six are
5.0M, 5.0M, 5.0M, 5.0M, 1.7M and 0.26M bytes in five scripts (Latin, Cyrillic, Kana/Han,
Hangul, Devanagari), with one related pair (en, fr) where transfer is expected."""

VERIFY_BASELINES = ("uniform", "temperature", "isolated")
"""Baseline mixtures verified next to Climb's in the default demo: the two common heuristics and
the interaction-free optimum (the closest competitor); ``--full`` adds :data:`ALL_BASELINES`'s
others."""

ALL_BASELINES = ("uniform", "natural", "temperature", "unimax", "isolated", "msl")
"""Every baseline mixture of the allocator (``climb demo --full`` verifies them all)."""

SHARE_LABELS = {"zero": "p=0", "trace": "p<1%", "main": "p≥1%"}
"""Short names of the CV error's own-share classes (:data:`climb.evaluation.cv.SHARE_CLASSES`)."""

BASELINE_LAWS = ("climb-msl", "isolated", "msl", "dml", "regression")
"""Laws cross-validated next to ``climb`` (each skipped with a note if it fails)."""


@dataclass(frozen=True)
class Scenario:
    """Named defaults of ``climb demo --scenario``: which languages, which caps, how many proxies.

    Attributes:
        name: the scenario's name.
        languages: corpus sources (empty: :func:`choose_languages`).
        caps: UTF-8 bytes of training text kept of some languages (:meth:`Corpus.derive`).
        proxy_runs / quick_proxy_runs: proxy runs of the full and ``quick`` sizes (``None``: the
            settings' own).
    """

    name: str
    languages: tuple[str, ...] = ()
    caps: Mapping[str, int] = field(default_factory=dict)
    proxy_runs: int | None = None
    quick_proxy_runs: int | None = None


SCENARIOS = {
    "default": Scenario("default"),  # about six languages of different sizes and scripts
    "transfer": Scenario(
        "transfer",
        ("es", "pt", "fr", "ca", "ru", "uk", "zh", "ja"),
        {"ca": 12_000},
        proxy_runs=24,
        quick_proxy_runs=16,
    ),
}
"""``climb demo --scenario`` choices. ``transfer`` is the transfer scenario of
``benchmarks/evidence.py``: related languages sharing script and vocabulary (es, pt, fr, ca;
ru, uk; zh, ja), Catalan cut to its first 12 kB of training text — 10 documents, 12,088 bytes,
so ``p_ca D* ≤ 4 · 12,088`` caps Catalan at 4.0 % of the default ``D*`` = 1.2M tokens."""


def _fast_train() -> TrainConfig:
    """Proxy training settings of the default demo: torch.compile + bf16 autocast when a C
    compiler is there for torch.compile and the CPU computes bf16 natively (~2× eager fp32, same
    loss; without native bf16 it is emulated and ~3× *slower* than fp32, so eager fp32 then), 1
    thread per worker, the WSD schedule (a cooldown branch at each proxy budget: every row a true
    budget), 32 KiB of held-out text per language and evaluation."""
    from climb.proxy.config import cpu_native_bf16

    has_cc = shutil.which("cc") is not None or shutil.which("gcc") is not None
    fast = has_cc and cpu_native_bf16()
    return TrainConfig(
        compile=fast, bf16=fast, schedule="wsd", checkpoints=(), eval_bytes=32768, threads=1
    )


@dataclass(frozen=True)
class DemoSettings:
    """The demo's numbers (see ``docs/demo.md`` for how they were chosen).

    Attributes:
        n_languages: how many corpus sources to use (when ``languages`` is not given).
        model / train: proxy model and training config, shared by proxies and verification runs
            (verification runs evaluate once, at the end: no checkpoints, no branches).
        proxy_tokens: true budgets of the proxy runs: each WSD run trains to the largest and
            branches a cooldown at the others.
        proxy_runs: number of proxy runs (one per mixture).
        target_tokens: the allocation's target budget ``D*`` (the verification runs' budget).
        max_epochs: data cap ``p_i D ≤ max_epochs · U_i`` for the design and the allocation.
        folds: cross-validation folds; bootstrap: allocation bootstrap resamples (0 = none).
        workers: parallel training processes (1 torch thread each), and the processes of the
            cross-validation's folds and of the bootstrap's refits.
        seed: seed of the design, the cross-validation folds, the law fits and the bootstrap.
        seeds: training seeds of the verification runs (every mixture gets each one).
        verify_baselines: baseline mixtures verified next to Climb's.
        level: confidence level of the paired intervals.
    """

    n_languages: int = 6
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=lambda: _fast_train())
    proxy_tokens: tuple[int, ...] = (300_000, 600_000)
    proxy_runs: int = 18
    target_tokens: int = 1_200_000
    max_epochs: float = 4.0
    folds: int = 5
    bootstrap: int = 20
    interval_level: float = 0.9
    workers: int = 2
    seed: int = 0
    laws: tuple[str, ...] = BASELINE_LAWS
    seeds: tuple[int, ...] = (0, 1, 2)
    verify_baselines: tuple[str, ...] = VERIFY_BASELINES
    level: float = 0.95

    @classmethod
    def quick(cls) -> DemoSettings:
        """Tiny model and budgets for CI (every stage and figure, ≤ 3 minutes on 2 cores)."""
        return cls(
            model=ModelConfig(d_model=32, n_layers=1, n_heads=2, context=64),
            train=TrainConfig(
                compile=False,
                bf16=False,
                schedule="wsd",
                checkpoints=(),
                eval_bytes=8192,
                threads=1,
            ),
            proxy_tokens=(20_000, 40_000),
            proxy_runs=14,
            target_tokens=160_000,
            folds=3,
            bootstrap=8,
        )

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"] = self.model.model_dump(mode="json")
        d["train"] = self.train.model_dump(mode="json")
        return d


@dataclass(frozen=True)
class DemoContext:
    """Where and how the stages run: settings, output folder, corpus, executor, log."""

    settings: DemoSettings
    out: Path
    corpus: str | Path | None
    executor: Executor
    log: Callable[[str], None]
    progress: bool = True


@dataclass(frozen=True)
class Languages:
    """The demo's sources, their unique tokens ``U_i`` (the data caps) and the corpus they come
    from: the given one, or with caps the derived one (``cut``: what it cut, per source, as
    :meth:`climb.data.corpus.Corpus.derived` records it)."""

    sources: list[str]
    unique_tokens: dict[str, int]
    corpus: str | Path | None = None
    cut: dict[str, Any] = field(default_factory=dict)


@dataclass
class FittedLaws:
    """The Climb law fitted on every run, and each law's cross-validation (or why it failed)."""

    law: Law
    cv: dict[str, CVResult]
    cv_failed: dict[str, str]


@dataclass
class DemoResult:
    """Everything the demo produced (paths under ``out_dir``) and its headline numbers."""

    out_dir: Path
    languages: list[str]
    runs: RunTable
    law: Law
    cv: dict[str, CVResult]
    cv_failed: dict[str, str]
    allocation: AllocationPlan
    verification: VerificationResult
    report: Report
    timings: dict[str, float]
    settings: DemoSettings
    cut: dict[str, Any] = field(default_factory=dict)

    def summary_lines(self) -> list[str]:
        """The printed summary: CV error, allocation, verification over seeds, verdicts."""
        from climb.data.corpus import describe_cuts

        out = [f"languages: {', '.join(self.languages)}; {len(self.runs)} run-table rows"]
        out += [f"capped: {line}" for line in describe_cuts({"cut": self.cut})]
        out.append("cross-validated prediction error (whole runs held out), bits/byte:")
        for name, c in sorted(self.cv.items(), key=lambda kv: kv[1].overall.get("mae", math.inf)):
            share = share_errors(c, self.runs)
            out.append(
                f"  {name:<11} MAE {c.overall.get('mae', math.nan):.4f}  "
                f"Spearman {c.overall.get('spearman', math.nan):+.3f}  (by own share: "
                + ", ".join(
                    f"{SHARE_LABELS[k]} " + (f"{share[k]['mae']:.4f}" if share[k]["n"] else "–")
                    for k in SHARE_LABELS
                )
                + f"; median AE {median_abs_error(c):.4f})"
            )
        for name, why in self.cv_failed.items():
            out.append(f"  {name:<11} failed: {why}")
        res = self.allocation.result
        mix = ", ".join(f"{s} {p:.3f}" for s, p in res.proportions_dict().items())
        out.append(f"Climb allocation at D* = {res.tokens:,.0f} tokens: {mix} (solver {res.path})")
        out += self.verification.outcome_lines()
        out += self.verification.verdict_lines()
        out.append(f"report: {self.report.html_path}")
        return out


# ---------------------------------------------------------------------- stages
def choose_languages(corpus: Any, n: int = 6) -> list[str]:
    """``n`` sources: :data:`PREFERRED_LANGUAGES` first, then one per unseen script, then by size."""
    stats = {s.source: s for s in corpus.stats()}
    chosen = [s for s in PREFERRED_LANGUAGES if s in stats][:n]
    scripts = {stats[s].script for s in chosen}
    rest = sorted((s for s in stats if s not in chosen), key=lambda s: -stats[s].bytes)
    for s in rest:
        if len(chosen) >= n:
            break
        if stats[s].script not in scripts:
            chosen.append(s)
            scripts.add(stats[s].script)
    for s in rest:
        if len(chosen) >= n:
            break
        if s not in chosen:
            chosen.append(s)
    if len(chosen) < 2:
        raise ClimbError(f"the corpus has {len(stats)} source(s); the demo needs at least 2")
    return chosen


def grouped_cross_validate(
    law_name: str,
    runs: RunTable,
    folds: int,
    seed: int = 0,
    groups: np.ndarray | None = None,
    *,
    fold_jobs: int | None = 1,
    **hyper: Any,
) -> CVResult:
    """k-fold CV of a registered law (fitted with ``seed`` and ``hyper``) with whole training runs
    held out together (:func:`climb.evaluation.cv.cross_validate` with ``groups``; ``fold_jobs``
    processes fit the folds, the result the same for any value)."""
    from climb.laws import get_law

    g = np.array(runs.train_run) if groups is None else np.asarray(groups)
    factory = functools.partial(get_law, law_name, seed=seed, **hyper)
    return cross_validate(factory, runs, folds, seed, groups=g, fold_jobs=fold_jobs)


def stage_languages(
    ctx: DemoContext, languages: Sequence[str] | None, caps: Mapping[str, int] | None = None
) -> Languages:
    """The demo's sources (given, or :func:`choose_languages`) and their unique tokens; with
    ``caps`` (bytes of training text kept per source) from the derived corpus
    ``out/corpus`` (:func:`capped_corpus`), which the later stages then train on."""
    from climb.data.corpus import Corpus, describe_cuts

    c = Corpus.open(ctx.corpus)
    langs = list(languages) if languages else choose_languages(c, ctx.settings.n_languages)
    if len(langs) < 2:
        raise ClimbError("languages: give at least 2 languages")
    c.check_sources(langs)
    if caps:
        c.check_limits(langs, caps, "caps", "the demo's languages")
    corpus, cut = ctx.corpus, {}
    if caps or (ctx.out / "corpus").exists():
        derived = capped_corpus(ctx.out, c, langs, dict(caps or {}))
        if derived is not None:
            c, corpus = derived, derived.root.resolve()
            cut = {s: v for s, v in (derived.derived() or {}).get("cut", {}).items() if s in langs}
    unique_all = c.unique_tokens(sources=langs)
    unique = {s: int(unique_all[s]) for s in langs}
    ctx.log("languages: " + ", ".join(f"{s} ({_count(unique[s])} tokens)" for s in langs))
    for line in describe_cuts({"cut": cut}):
        ctx.log(f"capped: {line}")
    return Languages(langs, unique, corpus, cut)


def capped_corpus(
    out: Path, origin: Corpus, languages: list[str], caps: dict[str, int]
) -> Corpus | None:
    """The derived corpus ``out/corpus`` of ``languages`` with ``caps`` (``None`` without caps).

    Built by :meth:`climb.data.corpus.Corpus.derive` when missing (or when it lacks one of
    ``languages``: the same origin and caps give the same text); a ``corpus/`` folder that
    :meth:`~climb.data.corpus.Corpus.derive` did not write is never touched (with ``caps``: an
    error). Runs of one output folder
    must come from one corpus: if ``out`` holds run stores (``runs.db``, ``verify.db``) made on
    another corpus — other caps or origin, or no caps — this raises :class:`ClimbError` and
    changes nothing (use another ``out_dir``); without stores a stale derived corpus is rebuilt.
    """
    from climb.data.corpus import Corpus, read_derived

    folder = out / "corpus"
    have = read_derived(folder)
    if folder.exists() and have is None:  # not ours: never used, never replaced
        if caps:
            raise ClimbError(
                f"out_dir {out}: its corpus/ folder is not a capped corpus the demo wrote; "
                "use another out_dir"
            )
        return None
    want = {"from": origin.label, "limits": caps}
    now = None if have is None else {"from": have.get("from"), "limits": have.get("limits", {})}
    stores = [n for n in ("runs.db", "verify.db") if (out / n).exists()]
    if now != (want if caps else None) and stores:
        raise ClimbError(
            f"out_dir {out}: its runs ({', '.join(stores)}) were trained on "
            f"{_corpus_words(now)}, not {_corpus_words(want if caps else None, origin.label)}; "
            "use another out_dir (or remove this one)"
        )
    if not caps:
        if have is not None:
            shutil.rmtree(folder)  # a stale derived corpus, no runs trained on it
        return None
    if have is not None and now == want and set(languages) <= set(have.get("sources", [])):
        return Corpus.open(folder)
    return origin.derive(folder, limits=caps, sources=languages)


def _count(n: int) -> str:
    """``5.03M``, ``12.1k``, ``950``."""
    return f"{n / 1e6:.2f}M" if n >= 100_000 else f"{n / 1e3:.1f}k" if n >= 1000 else str(n)


def _corpus_words(record: Mapping[str, Any] | None, origin: str | None = None) -> str:
    if record is None:
        return "an uncapped corpus" if origin is None else f"the uncapped corpus '{origin}'"
    caps = ", ".join(f"{k}={v:,} bytes" for k, v in sorted(record["limits"].items()))
    return f"the corpus '{record['from']}' with caps {caps}"


def stage_design(ctx: DemoContext, langs: Languages) -> Plan:
    """The proxy runs (:func:`climb.proxy.design.design_runs`) → ``plan.yaml``."""
    from climb.proxy.design import design_runs

    cfg = ctx.settings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ClimbWarning)
        plan = design_runs(
            langs.sources,
            list(cfg.proxy_tokens),
            cfg.proxy_runs,
            seed=cfg.seed,
            unique_tokens=langs.unique_tokens,
            max_epochs=cfg.max_epochs,
            model=cfg.model,
            train=cfg.train,
            schedule=cfg.train.schedule,
        )
    for w in caught:
        if "identifiable" not in str(w.message) or len(cfg.proxy_tokens) > 1:
            ctx.log(f"note: {w.message}")
    if langs.cut:
        plan.design["corpus_cut"] = langs.cut
    plan.save(ctx.out / "plan.yaml")
    ctx.log(
        f"{len(plan)} {cfg.train.schedule} proxy runs, true budgets "
        f"{', '.join(f'{b:,}' for b in plan.budgets)} tokens"
    )
    return plan


def stage_proxies(ctx: DemoContext, plan: Plan) -> RunTable:
    """Train the plan into ``runs.db`` (finished runs are kept); the rows of its runs."""
    from climb.data.store import RunStore
    from climb.proxy.sweep import run_sweep

    store = ctx.out / "runs.db"
    run_sweep(plan, store, corpus=ctx.corpus, executor=ctx.executor, progress=ctx.progress)
    with RunStore(store, create=False) as rs:
        table = rs.to_run_table()
    planned = {r.run_id for r in plan.runs}
    runs = table.subset(np.array([g in planned for g in table.train_run]))
    return runs.select_targets([t for t in plan.sources if t in runs.targets])


def _support_hyper(ctx: DemoContext, runs: RunTable) -> dict[str, Any]:
    """The climb-family laws' corpus-derived hyper-parameters, in the proxies' tokens: the unique
    tokens ``U`` of each source (repetition ``S(T; U)`` in the effective data, the same counts as
    the data caps) and the item frequencies of the support-aware term
    (:class:`climb.laws.climb.support.SupportProfile`: bytes, or the tokenizer's tokens)."""
    from climb.data.corpus import Corpus
    from climb.laws.climb.support import SupportProfile
    from climb.proxy.tokenize import get_tokenizer

    corpus = Corpus.open(ctx.corpus)
    tokenizer = get_tokenizer(ctx.settings.model, corpus)
    unique = corpus.unique_tokens(tokenizer, sources=list(runs.sources))
    return {
        "unique_tokens": {s: float(unique[s]) for s in runs.sources},
        "support": SupportProfile.from_corpus(corpus, list(runs.sources), tokenizer),
    }


def stage_laws(ctx: DemoContext, runs: RunTable) -> FittedLaws:
    """Cross-validate ``climb`` and the baseline laws; fit ``climb`` on every run →
    ``law.json``, ``cv.json``. A baseline law that fails is noted, never hides the others."""
    from climb.laws import get_law, law_class

    cfg = ctx.settings
    folds = min(cfg.folds, runs.n_train_runs)
    cv: dict[str, CVResult] = {}
    failed: dict[str, str] = {}
    climb_hyper = _support_hyper(ctx, runs)
    for name in ("climb", *cfg.laws):
        try:  # every law that takes the corpus-derived hyper-parameters gets them
            accepted = inspect.signature(law_class(name).__init__).parameters
            hyper = {k: v for k, v in climb_hyper.items() if k in accepted}
            cv[name] = grouped_cross_validate(name, runs, folds, seed=cfg.seed,
                                              fold_jobs=cfg.workers, **hyper)  # fmt: skip
        except ClimbError as exc:
            failed[name] = str(exc)
        except Exception as exc:  # a baseline law's bug must not hide the others' results
            if name == "climb":
                raise
            failed[name] = f"{type(exc).__name__}: {exc}"
    for name, res in cv.items():
        ctx.log(
            f"cv {name}: MAE {res.overall.get('mae', math.nan):.4f} bits/byte, "
            f"Spearman {res.overall.get('spearman', math.nan):+.3f}"
        )
    for name, why in failed.items():
        ctx.log(f"cv {name}: failed ({why})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        law = get_law("climb", seed=cfg.seed, **climb_hyper).fit(runs)
    law.save(ctx.out / "law.json")
    doc = {n: r.to_json() for n, r in cv.items()} | {"failed": failed}
    _write_json(ctx.out / "cv.json", doc)
    return FittedLaws(law, cv, failed)


def stage_allocation(
    ctx: DemoContext, law: Law, runs: RunTable, langs: Languages
) -> AllocationPlan:
    """Climb's allocation at ``D*`` with the data caps, the baselines and bootstrap intervals
    → ``allocation.json``."""
    from climb.allocation.constraints import Constraints
    from climb.allocation.plan import plan_allocation

    cfg = ctx.settings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        alloc = plan_allocation(
            law,
            float(cfg.target_tokens),
            float(cfg.model.non_embedding_params()),
            constraints=Constraints(unique_tokens=langs.unique_tokens, max_epochs=cfg.max_epochs),
            runs=runs,
            n_boot=cfg.bootstrap,
            seed=cfg.seed,
            level=cfg.interval_level,
            n_jobs=cfg.workers,
            progress=ctx.progress,
        )
    for w in alloc.warnings:
        ctx.log(f"note: {w}")
    _write_json(ctx.out / "allocation.json", alloc.to_dict())
    return alloc


def stage_verification(
    ctx: DemoContext, alloc: AllocationPlan, law: Law, plan: Plan
) -> VerificationResult:
    """Climb's and the baseline mixtures trained at ``D*`` with every seed into ``verify.db``
    (:func:`climb.verification.verify_mixtures`) → ``verification.json``."""
    from climb.verification import allocation_mixtures, verify_mixtures

    cfg = ctx.settings
    mixtures, missing = allocation_mixtures(
        alloc.result.proportions_dict(),
        {n: b.proportions_dict() for n, b in alloc.baselines.items()},
        cfg.verify_baselines,
    )
    for name in missing:
        ctx.log(f"note: baseline '{name}' has no allocation; not verified")
    result = verify_mixtures(
        mixtures,
        int(cfg.target_tokens),
        ctx.out / "verify.db",
        seeds=cfg.seeds,
        corpus=ctx.corpus,
        model=cfg.model,
        train=cfg.train.model_copy(update={"checkpoints": ()}),
        executor=ctx.executor,
        law=law,
        level=cfg.level,
        plan_path=ctx.out / "verify-plan.yaml",
        progress=ctx.progress,
        settings={"extrapolation": f"{cfg.target_tokens / max(plan.budgets):.1f}× larger"},
    )
    result.save(ctx.out / "verification.json")
    return result


def stage_report(
    ctx: DemoContext,
    runs: RunTable,
    laws: FittedLaws,
    alloc: AllocationPlan,
    verification: VerificationResult,
    plan: Plan,
) -> Report:
    """``report.html`` and the PNGs (:func:`climb.report.build_report`)."""
    from climb.data.corpus import describe_cuts
    from climb.report import build_report

    cfg = ctx.settings
    cut = plan.design.get("corpus_cut", {})
    notes = [
        "Demo on the embedded corpus (Debian documentation and fortunes): "
        f"{len(plan.sources)} languages, {len(plan)} proxy runs of "
        f"{cfg.model.non_embedding_params() / 1e6:.2f}M-parameter byte-level models, target "
        f"budget D* = {cfg.target_tokens:,} tokens, verification with {len(cfg.seeds)} seeds.",
        "Cross-validation holds out whole training runs (a run's checkpoint rows stay with it).",
        "Caveat: many documents are translations of the same English originals, which can "
        "inflate measured transfer between languages.",
    ]
    notes += [
        f"Capped corpus (out/corpus, data cap p·D ≤ {cfg.max_epochs:g}·U from the kept text): {x}"
        for x in describe_cuts({"cut": cut})
    ]
    notes += [f"Allocation warning: {w}" for w in alloc.warnings]
    if laws.cv_failed:
        notes.append(
            "Laws that failed: " + "; ".join(f"{k}: {v}" for k, v in laws.cv_failed.items())
        )
    return build_report(
        runs,
        laws.law,
        ctx.out,
        title="climb demo report",
        cv=laws.cv,
        allocation=alloc.result,
        baselines=alloc.baselines,
        verification=verification,
        notes=notes,
    )


def _write_json(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(doc, indent=2, default=float) + "\n", encoding="utf-8")


def _timed(ctx: DemoContext, name: str, timings: dict[str, float], fn: Callable[[], Any]) -> Any:
    t0 = time.perf_counter()
    ctx.log(f"[{name}] …")
    out = fn()
    timings[name] = time.perf_counter() - t0
    ctx.log(f"[{name}] done in {timings[name]:.1f} s")
    return out


def _context(
    out_dir: str | Path,
    cfg: DemoSettings,
    corpus: str | Path | None,
    log: Callable[[str], None] | None,
    progress: bool,
) -> DemoContext:
    from climb.proxy.executors import make_executor

    if cfg.workers < 1:
        raise ClimbError(f"workers = {cfg.workers}: must be ≥ 1")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ClimbError(f"out_dir {out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    executor = make_executor("local", workers=cfg.workers, threads=cfg.train.threads)
    return DemoContext(cfg, out, corpus, executor, log or (lambda _msg: None), progress)


def run_demo(
    out_dir: str | Path,
    quick: bool = False,
    *,
    settings: DemoSettings | None = None,
    languages: Sequence[str] | None = None,
    corpus: str | Path | None = None,
    workers: int | None = None,
    seeds: int | None = None,
    full: bool = False,
    log: Callable[[str], None] | None = None,
    progress: bool = True,
    scenario: str = "default",
    caps: Mapping[str, int] | None = None,
) -> DemoResult:
    """Run the whole demo into ``out_dir`` (resumable: finished runs are never retrained).

    ``quick`` uses :meth:`DemoSettings.quick`; ``settings`` overrides both. ``corpus`` ``None`` is
    the embedded corpus. ``seeds``: verify with seeds ``0 … seeds−1`` (≥ 2); ``full``: verify
    every baseline (:data:`ALL_BASELINES`). ``log`` receives one line per stage (``None``: silent).
    ``scenario`` (a :data:`SCENARIOS` name) gives the defaults of ``languages``, ``caps`` and the
    number of proxy runs; ``caps`` (``{source: bytes}``, replacing the scenario's) cuts those
    sources' training text to its first documents up to that many bytes in a derived corpus
    ``out_dir/corpus`` (:func:`capped_corpus`), which every stage then uses.
    """
    if scenario not in SCENARIOS:
        raise ClimbError(f"scenario '{scenario}' is not one of: {', '.join(SCENARIOS)}")
    sc = SCENARIOS[scenario]
    languages = languages or list(sc.languages) or None
    caps = dict(sc.caps if caps is None else caps)
    cfg = settings or (DemoSettings.quick() if quick else DemoSettings())
    runs_of_scenario = sc.quick_proxy_runs if quick else sc.proxy_runs
    if settings is None and runs_of_scenario is not None:
        cfg = replace(cfg, proxy_runs=runs_of_scenario)
    if workers is not None:
        cfg = replace(cfg, workers=workers)
    if seeds is not None:
        if seeds < 2:
            raise ClimbError(f"seeds = {seeds}: the paired intervals need at least 2 (use ≥ 3)")
        cfg = replace(cfg, seeds=tuple(range(seeds)))
    if full:
        cfg = replace(cfg, verify_baselines=ALL_BASELINES)
    ctx = _context(out_dir, cfg, corpus, log, progress)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    langs = _timed(ctx, "corpus", timings, lambda: stage_languages(ctx, languages, caps))
    ctx = replace(ctx, corpus=langs.corpus)
    plan = _timed(ctx, "design", timings, lambda: stage_design(ctx, langs))
    runs = _timed(ctx, "proxies", timings, lambda: stage_proxies(ctx, plan))
    laws = _timed(ctx, "laws", timings, lambda: stage_laws(ctx, runs))
    alloc = _timed(ctx, "allocation", timings, lambda: stage_allocation(ctx, laws.law, runs, langs))
    ver = _timed(
        ctx, "verification", timings, lambda: stage_verification(ctx, alloc, laws.law, plan)
    )
    report = _timed(ctx, "report", timings, lambda: stage_report(ctx, runs, laws, alloc, ver, plan))
    timings["total"] = time.perf_counter() - t_all
    _write_json(ctx.out / "timings.json", timings)
    return DemoResult(
        out_dir=ctx.out,
        languages=langs.sources,
        runs=runs,
        law=laws.law,
        cv=laws.cv,
        cv_failed=laws.cv_failed,
        allocation=alloc,
        verification=ver,
        report=report,
        timings=timings,
        settings=cfg,
        cut=langs.cut,
    )
