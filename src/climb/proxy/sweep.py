"""The sweep: train every planned run that the store does not hold yet, and store each one.

:func:`run_sweep` is resumable by construction. Before anything trains it

1. reads the plan and refuses a store file that is not a climb store (nothing is written to it);
2. opens the corpus and checks that it has every plan source and that each one's train and
   valid text is readable and non-empty (corrupt or empty files fail here, not in a worker);
3. compares the plan with the store: a run id that is stored under a *different* spec hash is an
   error naming the run (results of different specs are never mixed silently), and so is a
   source whose text differs from the text the store's runs were trained on (the store records a
   digest of each source's train and valid text, :func:`corpus_fingerprint`; the spec holds the
   tokenizer and model, not the text);

then hands the remaining runs to an executor (:mod:`climb.proxy.executors`) and writes each
finished run — all its rows, spec, spec hash and versions — to the :class:`~climb.data.store.RunStore`
in one transaction as soon as it arrives. Ctrl-C, a killed worker or a killed sweep lose only the
runs in flight; re-running the same command trains exactly the runs that are missing.
"""

from __future__ import annotations

import hashlib
import platform
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from climb.data.store import RunStore, check_same_corpus, check_store_file
from climb.errors import ClimbError, ClimbWarning
from climb.proxy.config import RunSpec
from climb.proxy.design import Plan
from climb.proxy.executors import (
    CorpusOpener,
    Executor,
    LocalExecutor,
    RunResult,
    TrainFn,
    default_open_corpus,
)


@dataclass
class SweepResult:
    """What a sweep did.

    Attributes:
        store: the run store path.
        planned: number of runs in the plan.
        skipped: run ids already in the store (not retrained).
        trained: run ids trained and stored by this call, in the order they finished.
        tokens: training tokens of the runs trained by this call.
        wall_s: seconds this call spent training (after the checks).
        backend: the executor's name.
    """

    store: Path
    planned: int
    skipped: list[str] = field(default_factory=list)
    trained: list[str] = field(default_factory=list)
    tokens: int = 0
    wall_s: float = 0.0
    backend: str = "local"

    @property
    def complete(self) -> bool:
        """Every planned run is in the store."""
        return len(self.skipped) + len(self.trained) == self.planned

    @property
    def tokens_per_s(self) -> float:
        """Training tokens per second of wall time over this call (all workers together)."""
        return self.tokens / self.wall_s if self.wall_s > 0 else 0.0


@dataclass(frozen=True)
class SweepStatus:
    """Which planned runs are finished and which remain.

    Attributes:
        done: planned run ids already stored with the same spec hash.
        todo: specs still to train, in plan order.
        extra: run ids in the store that the plan does not name (kept, never touched).
    """

    done: list[str]
    todo: list[RunSpec]
    extra: list[str]


def sweep_status(
    plan: Plan, finished: dict[str, str], *, store_name: str = "the store"
) -> SweepStatus:
    """Split the plan into finished and remaining runs given ``finished = {run_id: spec_hash}``.

    A planned run id stored under another spec hash raises :class:`ClimbError` naming the run.
    """
    done: list[str] = []
    todo: list[RunSpec] = []
    for spec in plan.specs():
        stored = finished.get(spec.run_id)
        if stored is None:
            todo.append(spec)
            continue
        now = spec.spec_hash()
        if stored != now:
            raise ClimbError(
                f"run '{spec.run_id}' is already in {store_name} with a different spec "
                f"(stored hash {stored}, plan hash {now}); give the changed run a new id or use a new store"
            )
        done.append(spec.run_id)
    planned = {r.run_id for r in plan.runs}
    extra = sorted(r for r in finished if r not in planned)
    return SweepStatus(done=done, todo=todo, extra=extra)


def check_corpus(
    plan: Plan, corpus: str | Path | None, *, open_corpus: CorpusOpener | None = None
) -> Any:
    """Open the corpus, check it has every plan source with non-empty train and valid text."""
    opener = open_corpus or default_open_corpus
    c = opener(None if corpus is None else str(corpus))
    check = getattr(c, "check_sources", None)
    if callable(check):
        check(plan.sources)
    else:
        missing = [s for s in plan.sources if s not in c.sources]
        if missing:
            raise ClimbError(
                f"the corpus has no source '{missing[0]}' (it has: {', '.join(c.sources)})"
            )
    for s in plan.sources:
        for split in ("train", "valid"):
            if not c.text_bytes(s, split):
                raise ClimbError(
                    f"corpus source '{s}': its {split} split is empty; add text or drop the source"
                )
    return c


def corpus_fingerprint(corpus: Any, sources: Sequence[str]) -> dict[str, str]:
    """``{source: digest}``: SHA-256 (16 hex digits) of each source's train and valid text, what
    a run of that source was trained and evaluated on."""
    out = {}
    for s in sources:
        h = hashlib.sha256()
        for split in ("train", "valid"):
            h.update(corpus.text_bytes(s, split))
            h.update(b"\0")
        out[s] = h.hexdigest()[:16]
    return out


def versions(backend: str) -> dict[str, str]:
    """Versions that produced a run (stored with it)."""
    out = {"python": platform.python_version(), "platform": sys.platform, "backend": backend}
    for pkg in ("climb", "torch", "numpy", "tokenizers"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def run_sweep(
    plan: Plan | str | Path,
    store: str | Path,
    *,
    corpus: str | Path | None = None,
    executor: Executor | None = None,
    train_fn: TrainFn | None = None,
    open_corpus: CorpusOpener | None = None,
    progress: bool = True,
    on_run: Callable[[RunResult, int, int], None] | None = None,
) -> SweepResult:
    """Train the plan's unfinished runs and store each as it finishes (see the module docstring).

    Args:
        plan: a :class:`Plan` or the path of a plan YAML.
        store: the SQLite run store path (created when missing).
        corpus: the corpus directory; ``None`` = the embedded corpus.
        executor: where runs execute (default: :class:`LocalExecutor` with 1 worker).
        train_fn: the step (default :func:`climb.proxy.train.train_run`); module-level, picklable.
        open_corpus: how workers open the corpus (default ``Corpus.open``); module-level.
        progress: show a rich progress bar (runs done, tokens/s, ETA) on stderr.
        on_run: called as ``on_run(result, n_done, n_total)`` after each run is stored.
    """
    if not isinstance(plan, Plan):
        plan = Plan.load(plan)
    store_path = Path(store)
    check_store_file(store_path)
    specs = plan.specs()
    fingerprint = corpus_fingerprint(check_corpus(plan, corpus, open_corpus=open_corpus),
                                     plan.sources)  # fmt: skip
    finished: dict[str, str] = {}
    if store_path.exists():
        with RunStore(store_path, create=False) as existing:
            finished = existing.finished()
            check_same_corpus(existing.corpus_fingerprint(), fingerprint, store_path)
    status = sweep_status(plan, finished, store_name=str(store_path))
    executor = executor if executor is not None else LocalExecutor(1)
    result = SweepResult(
        store=store_path, planned=len(specs), skipped=list(status.done), backend=executor.name
    )
    if not status.todo:
        if not store_path.exists():
            RunStore(store_path).close()
        return result
    by_id = {s.run_id: s for s in status.todo}
    corpus_ref = None if corpus is None else str(Path(corpus).resolve())
    meta = versions(executor.name)
    total_tokens = sum(s.tokens for s in status.todo)
    t0 = time.perf_counter()
    with (
        RunStore(store_path) as rs,
        _Progress(progress, len(status.todo), total_tokens, len(status.done)) as bar,
    ):
        rs.record_corpus(fingerprint)
        results = executor.map_runs(
            status.todo,
            corpus_ref,
            train_fn=train_fn,
            open_corpus=open_corpus,
            on_progress=bar.tokens,
        )
        try:
            for res in results:
                spec = by_id[res.run_id]
                if res.run_id in rs:  # another sweep on the same store finished it meanwhile
                    warnings.warn(
                        f"run '{res.run_id}' was stored by another process meanwhile; kept that one",
                        ClimbWarning,
                        stacklevel=2,
                    )
                    continue
                rs.add_run(
                    res.run_id,
                    res.rows,
                    spec_hash=spec.spec_hash(),
                    spec=spec.model_dump(mode="json"),
                    versions=meta,
                    wall_s=res.wall_s,
                )
                result.trained.append(res.run_id)
                result.tokens += spec.tokens
                bar.run_done(res.run_id, spec.tokens, res.wall_s)
                if on_run is not None:
                    on_run(res, len(result.trained), len(status.todo))
        finally:
            close = getattr(results, "close", None)
            if callable(close):
                close()
            result.wall_s = time.perf_counter() - t0
    return result


class _Progress:
    """A rich progress bar over tokens: runs done, tokens/s and ETA (silent when disabled)."""

    def __init__(self, enabled: bool, n_runs: int, total_tokens: int, already: int) -> None:
        self.enabled = enabled
        self.n_runs = n_runs
        self.total = total_tokens
        self.already = already
        self.partial: dict[str, int] = {}
        self.finished_tokens = 0
        self.done = 0
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]sweep"),
                BarColumn(),
                TextColumn("{task.fields[runs]} runs"),
                TextColumn("{task.fields[rate]} tok/s"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(
                "sweep", total=max(self.total, 1), runs=self._runs_text(), rate="-"
            )
            self._t0 = time.perf_counter()
            if self.already:
                self._bar.console.print(f"{self.already} run(s) already in the store: skipped")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)

    def _runs_text(self) -> str:
        return f"{self.done}/{self.n_runs}"

    def _update(self) -> None:
        if self._bar is None:
            return
        done_tokens = self.finished_tokens + sum(self.partial.values())
        elapsed = max(time.perf_counter() - self._t0, 1e-9)
        self._bar.update(
            self._task,
            completed=min(done_tokens, self.total),
            runs=self._runs_text(),
            rate=f"{done_tokens / elapsed:,.0f}",
        )

    def tokens(self, run_id: str, tokens_done: int) -> None:
        self.partial[run_id] = int(tokens_done)
        self._update()

    def run_done(self, run_id: str, tokens: int, wall_s: float) -> None:
        self.partial.pop(run_id, None)
        self.finished_tokens += tokens
        self.done += 1
        if self._bar is not None:
            self._bar.console.print(f"stored {run_id} ({tokens:,} tokens, {wall_s:.1f} s)")
        self._update()


def plan_summary(plan: Plan) -> str:
    """One line: runs by kind, budgets, sources."""
    kinds: dict[str, int] = {}
    for r in plan.runs:
        key = r.kind.split("-")[0]
        kinds[key] = kinds.get(key, 0) + 1
    parts = ", ".join(f"{n} {k}" for k, n in kinds.items())
    budgets = ", ".join(f"{b:,}" for b in plan.budgets)
    return (
        f"{len(plan)} {plan.train.schedule} runs ({parts}) over {len(plan.sources)} sources "
        f"at budgets {budgets} tokens"
    )


__all__: Sequence[str] = [
    "SweepResult",
    "SweepStatus",
    "check_corpus",
    "plan_summary",
    "run_sweep",
    "sweep_status",
    "versions",
]
