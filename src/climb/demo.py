"""The end-to-end demo: proxy runs on the embedded corpus → laws → allocation → verification.

:func:`run_demo` chains the library's stages, each resumable, everything under one ``out_dir``:

1. **languages**: about six sources of the corpus, of different sizes and scripts
   (:func:`choose_languages`);
2. **design** (:func:`climb.proxy.design.design_runs`): monolingual runs, pairs and Dirichlet
   mixtures; data caps ``p_i D ≤ e_max U_i`` from the corpus' unique tokens → ``plan.yaml``;
3. **sweep** (:func:`climb.proxy.sweep.run_sweep`): trains the proxies into ``runs.db`` (a
   resumable SQLite store; each WSD run gives a true-budget row at both proxy budgets, the
   smaller from a cooldown branch, for ~1.1× the cost of the larger budget alone);
4. **laws**: ``climb`` and each baseline law, k-fold cross-validated with *whole training runs*
   held out (a run's checkpoint rows stay in the same fold as its final row, so no fold sees a
   held-out mixture at another budget) → MAE in bits per byte and Spearman ρ;
   ``climb`` fitted on every run → ``law.json``;
5. **allocation** (:func:`climb.allocation.plan.plan_allocation`) for a target budget ``D*``
   several times the proxies', with the same data caps, the baselines and bootstrap intervals
   → ``allocation.json``;
6. **verification**: one model per mixture (Climb's and uniform, natural, temperature, UniMax,
   isolated-law optimum) trained at ``D*`` with the same seed and settings into ``verify.db``
   (resumable too); realized vs predicted loss per language → ``verification.json``;
7. **report** (:func:`climb.report.build_report`) → ``report.html`` and the PNGs.

Whether Climb's mixture wins the verification is reported as measured, with the numbers.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from climb.data.runs import RunTable
from climb.errors import ClimbError, ClimbWarning
from climb.evaluation.cv import CVResult, cross_validate
from climb.laws.base import Law
from climb.proxy.config import ModelConfig, TrainConfig
from climb.report.build import heldout_errors

PREFERRED_LANGUAGES = ("en", "fr", "ru", "ja", "ko", "hi", "ar", "el", "zh", "de", "es", "pl")
"""Picked in this order when the corpus has them. In the embedded corpus the first six are
5.0M, 5.0M, 5.0M, 5.0M, 1.7M and 0.26M bytes in five scripts (Latin, Cyrillic, Kana/Han,
Hangul, Devanagari), with one related pair (en, fr) where transfer is expected."""

VERIFY_BASELINES = ("uniform", "natural", "temperature", "unimax", "isolated")
"""Baseline mixtures that get a verification run next to Climb's."""

BASELINE_LAWS = ("climb-msl", "isolated", "msl", "dml", "regression")
"""Laws cross-validated next to ``climb`` (each skipped with a note if it fails)."""


def _fast_train() -> TrainConfig:
    """Proxy training settings of the default demo: torch.compile + bf16 autocast when a C
    compiler is there for torch.compile (~2× eager fp32 on CPU, same loss), 1 thread per worker,
    the WSD schedule (a cooldown branch at each proxy budget: every row a true budget), 32 KiB of
    held-out text per language and evaluation."""
    fast = shutil.which("cc") is not None or shutil.which("gcc") is not None
    return TrainConfig(
        compile=fast, bf16=fast, schedule="wsd", checkpoints=(), eval_bytes=32768, threads=1
    )


@dataclass(frozen=True)
class DemoSettings:
    """The demo's numbers (see ``docs/demo.md`` for how they were chosen).

    Attributes:
        n_languages: how many corpus sources to use (when ``languages`` is not given).
        model / train: proxy model and training config, shared by proxies and verification runs.
        proxy_tokens: true budgets of the proxy runs: each WSD run trains to the largest and
            branches a cooldown at the others.
        proxy_runs: number of proxy runs (one per mixture).
        target_tokens: the allocation's target budget ``D*`` (the verification runs' budget).
        max_epochs: data cap ``p_i D ≤ max_epochs · U_i`` for the design and the allocation.
        folds: cross-validation folds; bootstrap: allocation bootstrap resamples (0 = none).
        workers: parallel training processes (1 torch thread each).
    """

    n_languages: int = 6
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=lambda: _fast_train())
    proxy_tokens: tuple[int, ...] = (300_000, 600_000)
    proxy_runs: int = 18
    target_tokens: int = 2_000_000
    max_epochs: float = 4.0
    folds: int = 5
    bootstrap: int = 20
    interval_level: float = 0.9
    workers: int = 2
    seed: int = 0
    laws: tuple[str, ...] = BASELINE_LAWS

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


@dataclass
class DemoResult:
    """Everything the demo produced (paths under ``out_dir``) and its headline numbers."""

    out_dir: Path
    languages: list[str]
    runs: RunTable
    law: Any
    cv: dict[str, Any]
    cv_failed: dict[str, str]
    allocation: Any
    verification: Any
    report: Any
    timings: dict[str, float]
    settings: DemoSettings

    def summary_lines(self) -> list[str]:
        """The printed summary: CV error, allocation, verification verdict."""
        out = [f"languages: {', '.join(self.languages)}; {len(self.runs)} run-table rows"]
        out.append("cross-validated prediction error (whole runs held out), bits/byte:")
        for name, c in sorted(self.cv.items(), key=lambda kv: kv[1].overall.get("mae", math.inf)):
            extra = heldout_errors(c.predictions, c.targets, self.runs)
            out.append(
                f"  {name:<11} MAE {c.overall.get('mae', math.nan):.4f}  "
                f"Spearman {c.overall.get('spearman', math.nan):+.3f}  "
                f"(MAE where p_i > 0: {extra['mae_in_mixture']:.4f}, "
                f"median AE {extra['median_ae']:.4f})"
            )
        for name, why in self.cv_failed.items():
            out.append(f"  {name:<11} failed: {why}")
        res = self.allocation.result
        mix = ", ".join(f"{s} {p:.3f}" for s, p in res.proportions_dict().items())
        out.append(f"Climb allocation at D* = {res.tokens:,.0f} tokens: {mix} (solver {res.path})")
        v = self.verification
        out.append(
            "verification (realized mean validation loss, bits/byte; predicted in brackets):"
        )
        for m in sorted(v.mixtures, key=lambda m: m.mean()):
            out.append(f"  {m.name:<11} {m.mean():.4f}  [{m.mean('predicted'):.4f}]")
        out.append(v.verdict())
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
    law_name: str, runs: RunTable, folds: int, seed: int = 0, groups: np.ndarray | None = None
) -> CVResult:
    """k-fold CV of a registered law (fitted with ``seed``) with whole training runs held out
    together (:func:`climb.evaluation.cv.cross_validate` with ``groups``)."""
    from climb.laws import get_law

    def factory() -> Law:
        return get_law(law_name, seed=seed)

    g = np.array(runs.train_run) if groups is None else np.asarray(groups)
    return cross_validate(factory, runs, folds, seed, groups=g)


def _clean_mixture(props: dict[str, float], sources: Sequence[str]) -> dict[str, float]:
    """Proportions rounded to 6 decimals, summing to 1 (the largest absorbs the rounding).

    Solvers agree only to the last bits from one process to the next; rounding makes the
    verification run's spec, and so its id and hash in the store, the same on every rerun.
    """
    v = np.clip(np.array([float(props.get(s, 0.0)) for s in sources]), 0.0, None)
    v = np.round(v / v.sum(), 6)
    k = int(np.argmax(v))
    v[k] = round(1.0 - (v.sum() - v[k]), 6)
    return {s: float(x) for s, x in zip(sources, v)}


def _mixture_tag(mix: dict[str, float]) -> str:
    blob = json.dumps({k: round(v, 9) for k, v in sorted(mix.items())})
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def _run_stage(
    log: Callable[[str], None], name: str, timings: dict[str, float]
) -> Callable[[], None]:
    t0 = time.perf_counter()
    log(f"[{name}] …")

    def done() -> None:
        timings[name] = time.perf_counter() - t0
        log(f"[{name}] done in {timings[name]:.1f} s")

    return done


def run_demo(
    out_dir: str | Path,
    quick: bool = False,
    *,
    settings: DemoSettings | None = None,
    languages: Sequence[str] | None = None,
    corpus: str | Path | None = None,
    workers: int | None = None,
    log: Callable[[str], None] | None = None,
    progress: bool = True,
) -> DemoResult:
    """Run the whole demo into ``out_dir`` (resumable: finished runs are never retrained).

    ``quick`` uses :meth:`DemoSettings.quick`; ``settings`` overrides both. ``corpus`` ``None`` is
    the embedded corpus. ``log`` receives one line per stage (``None``: silent).
    """
    from climb.allocation.plan import plan_allocation
    from climb.data.corpus import Corpus
    from climb.data.store import RunStore
    from climb.laws import get_law
    from climb.proxy.design import Plan, PlannedRun, design_runs
    from climb.proxy.executors import make_executor
    from climb.proxy.sweep import run_sweep
    from climb.report import (
        AllocationSummary,
        CVSummary,
        Verification,
        VerifiedMixture,
        build_report,
    )

    cfg = settings or (DemoSettings.quick() if quick else DemoSettings())
    if workers is not None:
        if workers < 1:
            raise ClimbError(f"--workers {workers}: must be ≥ 1")
        cfg = replace(cfg, workers=workers)
    say = log or (lambda _msg: None)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ClimbError(f"--out {out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    # 1. languages and caps
    done = _run_stage(say, "corpus", timings)
    c = Corpus.open(corpus)
    langs = list(languages) if languages else choose_languages(c, cfg.n_languages)
    if len(langs) < 2:
        raise ClimbError("--languages: give at least 2 languages")
    c.check_sources(langs)
    unique_all = c.unique_tokens()
    unique = {s: int(unique_all[s]) for s in langs}
    say("languages: " + ", ".join(f"{s} ({unique[s] / 1e6:.2f}M tokens)" for s in langs))
    done()

    # 2. design
    done = _run_stage(say, "design", timings)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ClimbWarning)
        plan = design_runs(
            langs,
            list(cfg.proxy_tokens),
            cfg.proxy_runs,
            seed=cfg.seed,
            unique_tokens=unique,
            max_epochs=cfg.max_epochs,
            model=cfg.model,
            train=cfg.train,
            schedule=cfg.train.schedule,
        )
    for w in caught:
        if "identifiable" not in str(w.message) or len(cfg.proxy_tokens) > 1:
            say(f"note: {w.message}")
    plan.save(out / "plan.yaml")
    say(
        f"{len(plan)} {cfg.train.schedule} proxy runs, true budgets "
        f"{', '.join(f'{b:,}' for b in plan.budgets)} tokens"
    )
    done()

    # 3. proxy sweep
    done = _run_stage(say, "proxies", timings)
    executor = make_executor("local", workers=cfg.workers, threads=cfg.train.threads)
    run_sweep(plan, out / "runs.db", corpus=corpus, executor=executor, progress=progress)
    with RunStore(out / "runs.db", create=False) as rs:
        table = rs.to_run_table()
    planned = {r.run_id for r in plan.runs}
    runs = table.subset(np.array([g in planned for g in table.train_run]))
    runs = runs.select_targets([t for t in langs if t in runs.targets])
    done()

    # 4. laws with cross-validation
    done = _run_stage(say, "laws", timings)
    n_groups = runs.n_train_runs
    folds = min(cfg.folds, n_groups)
    cv: dict[str, Any] = {}
    cv_failed: dict[str, str] = {}
    for name in ("climb", *cfg.laws):
        try:
            cv[name] = grouped_cross_validate(name, runs, folds, seed=cfg.seed)
        except ClimbError as exc:
            cv_failed[name] = str(exc)
        except Exception as exc:  # a baseline law's bug must not hide the others' results
            if name == "climb":
                raise
            cv_failed[name] = f"{type(exc).__name__}: {exc}"
    for name, res in cv.items():
        say(
            f"cv {name}: MAE {res.overall.get('mae', math.nan):.4f} bits/byte, "
            f"Spearman {res.overall.get('spearman', math.nan):+.3f}"
        )
    for name, why in cv_failed.items():
        say(f"cv {name}: failed ({why})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        law = get_law("climb", seed=cfg.seed).fit(runs)
    law.save(out / "law.json")
    (out / "cv.json").write_text(
        json.dumps(
            {n: r.to_json() for n, r in cv.items()} | {"failed": cv_failed}, indent=2, default=float
        )
        + "\n",
        encoding="utf-8",
    )
    done()

    # 5. allocation
    done = _run_stage(say, "allocation", timings)
    n_params = float(cfg.model.non_embedding_params())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        alloc = plan_allocation(
            law,
            float(cfg.target_tokens),
            n_params,
            unique_tokens=unique,
            max_epochs=cfg.max_epochs,
            runs=runs,
            n_boot=cfg.bootstrap,
            seed=cfg.seed,
            level=cfg.interval_level,
        )
    alloc_json = alloc.to_dict()
    (out / "allocation.json").write_text(json.dumps(alloc_json, indent=2) + "\n", encoding="utf-8")
    done()

    # 6. verification at D*
    done = _run_stage(say, "verification", timings)
    mixtures = {"climb": _clean_mixture(alloc.result.proportions_dict(), langs)}
    for name in VERIFY_BASELINES:
        if name in alloc.baselines:
            mixtures[name] = _clean_mixture(alloc.baselines[name].proportions_dict(), langs)
    # one run per distinct mixture (e.g. UniMax is uniform when no cap binds)
    run_of: dict[str, str] = {}
    vruns: list[PlannedRun] = []
    for name, mix in mixtures.items():
        tag = _mixture_tag(mix)
        if tag not in {_mixture_tag(r.mixture) for r in vruns}:
            vruns.append(
                PlannedRun(
                    run_id=f"verify-{name}-{tag}",
                    mixture=mix,
                    tokens=int(cfg.target_tokens),
                    kind="custom",
                )
            )
        run_of[name] = next(r.run_id for r in vruns if _mixture_tag(r.mixture) == tag)
    vplan = Plan(
        sources=langs,
        runs=vruns,
        model=cfg.model,
        train=cfg.train,
        design={"purpose": "verification", "tokens": int(cfg.target_tokens)},
    )
    vplan.save(out / "verify-plan.yaml")
    run_sweep(vplan, out / "verify.db", corpus=corpus, executor=executor, progress=progress)
    with RunStore(out / "verify.db", create=False) as rs:
        vtable = rs.to_run_table(final_only=True)
    verified = []
    for name, mix in mixtures.items():
        row = vtable.run.index(run_of[name])
        realized = {t: float(vtable.loss[row, vtable.targets.index(t)]) for t in law.targets_}
        pred = law.predict([mix[s] for s in law.sources_], float(cfg.target_tokens), n_params)
        predicted = {t: float(v) for t, v in zip(law.targets_, pred)}
        verified.append(VerifiedMixture(name, mix, predicted, realized, run=run_of[name]))
    verification = Verification(
        tokens=float(cfg.target_tokens),
        targets=list(law.targets_),
        mixtures=verified,
        settings={
            "seed": cfg.train.seed,
            "model": cfg.model.model_dump(mode="json"),
            "extrapolation": f"{cfg.target_tokens / max(plan.budgets):.1f}× larger",
        },
    )
    verification.save(out / "verification.json")
    done()

    # 7. report
    done = _run_stage(say, "report", timings)
    summary = AllocationSummary.from_json(alloc_json)
    notes = [
        f"Demo on the embedded corpus (Debian documentation and fortunes): {len(langs)} languages, "
        f"{len(plan)} proxy runs of {cfg.model.non_embedding_params() / 1e6:.2f}M-parameter "
        f"byte-level models, target budget D* = {cfg.target_tokens:,} tokens.",
        "Cross-validation holds out whole training runs (a run's checkpoint rows stay with it).",
        "Caveat: many documents are translations of the same English originals, which can "
        "inflate measured transfer between languages.",
    ]
    if cv_failed:
        notes.append("Laws that failed: " + "; ".join(f"{k}: {v}" for k, v in cv_failed.items()))
    report = build_report(
        runs,
        law,
        out,
        title="climb demo report",
        cv={n: CVSummary.from_result(n, r) for n, r in cv.items()},
        allocation=summary,
        verification=verification,
        notes=notes,
    )
    done()
    timings["total"] = time.perf_counter() - t_all
    (out / "timings.json").write_text(json.dumps(timings, indent=2) + "\n", encoding="utf-8")
    return DemoResult(
        out_dir=out,
        languages=langs,
        runs=runs,
        law=law,
        cv=cv,
        cv_failed=cv_failed,
        allocation=alloc,
        verification=verification,
        report=report,
        timings=timings,
        settings=cfg,
    )
