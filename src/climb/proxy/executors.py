"""Where proxy runs execute: local worker processes or a Ray cluster.

The *step* is always the same — ``train_fn(spec, corpus, progress=...)`` turns one
:class:`~climb.proxy.config.RunSpec` into its run-table rows (default:
:func:`climb.proxy.train.train_run`). An executor only decides where steps run and streams their
results back as they finish; the sweep (:mod:`climb.proxy.sweep`) writes each result to the run
store. Adding a backend means adding a class with :meth:`Executor.map_runs`; the steps never
change (torchtitan / datatrove style).

* :class:`LocalExecutor` — ``workers`` processes of the ``spawn`` context, each training one run
  at a time with 1 torch thread by default (two 1-thread processes beat one 2-thread process on
  small models). Progress (tokens done) streams back through a queue.
* :class:`InlineExecutor` — one run after another in the calling process (debugging, tests).
* :class:`RayExecutor` — each run is one Ray task (``num_gpus=1`` where the cluster has GPUs,
  ``num_cpus=1`` otherwise), so the same sweep scales from a laptop to a cluster. Needs the
  optional extra ``climb[ray]``.

Workers open the corpus themselves from its path (``None`` = the embedded corpus), once per
process, so nothing big is pickled.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing as mp
import queue as _queue
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from climb.errors import ClimbError
from climb.proxy.config import RunSpec

TrainFn = Callable[..., list[dict[str, Any]]]
"""``train_fn(spec, corpus, *, progress=callable(tokens_done)) -> rows``; must be picklable
(a module-level function) to reach worker processes."""
CorpusOpener = Callable[[str | None], Any]
"""``open_corpus(path_or_None) -> corpus``; module-level (picklable). Default ``Corpus.open``."""
ProgressFn = Callable[[str, int], None]
"""``on_progress(run_id, tokens_done)`` in the calling process."""

BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class RunResult:
    """The rows of one finished run, as returned by the step.

    Attributes:
        run_id: the spec's run id.
        rows: run-table rows (checkpoints and the final row).
        wall_s: seconds the step took on its worker.
    """

    run_id: str
    rows: list[dict[str, Any]]
    wall_s: float


class Executor(Protocol):
    """Runs steps somewhere and yields their results as they finish (any order)."""

    name: str

    def map_runs(
        self,
        specs: Sequence[RunSpec],
        corpus: str | None,
        *,
        train_fn: TrainFn | None = None,
        open_corpus: CorpusOpener | None = None,
        on_progress: ProgressFn | None = None,
    ) -> Iterator[RunResult]:
        """Yield one :class:`RunResult` per spec as each finishes.

        A step that fails raises (a :class:`ClimbError` names the run); pending steps are
        cancelled. Closing the iterator early (e.g. on Ctrl-C) stops all workers.
        """
        ...


# ---------------------------------------------------------------------- the step
def default_train_fn(
    spec: RunSpec, corpus: Any, *, progress: Callable[[int], None] | None = None
) -> list[dict[str, Any]]:
    """The real step: :func:`climb.proxy.train.train_run` (imported lazily: torch)."""
    from climb.proxy.train import train_run

    return list(train_run(spec, corpus, progress=progress))


def default_open_corpus(path: str | None) -> Any:
    """:meth:`climb.data.corpus.Corpus.open` (``None`` = the embedded corpus)."""
    from climb.data.corpus import Corpus

    return Corpus.open(path)


_CORPORA: dict[tuple[Any, str | None], Any] = {}


def run_step(
    spec: RunSpec,
    corpus: str | None,
    train_fn: TrainFn | None = None,
    open_corpus: CorpusOpener | None = None,
    progress: Callable[[int], None] | None = None,
) -> RunResult:
    """Run one step in the current process: open (and cache) the corpus, train, time it."""
    opener = open_corpus or default_open_corpus
    key = (opener, corpus)
    if key not in _CORPORA:
        _CORPORA[key] = opener(corpus)
    if train_fn is None:
        importlib.import_module("climb.proxy.train")  # torch import: not part of the run's time
    fn = train_fn or default_train_fn
    t0 = time.perf_counter()
    rows = fn(spec, _CORPORA[key], progress=progress)
    return RunResult(
        run_id=spec.run_id, rows=[dict(r) for r in rows], wall_s=time.perf_counter() - t0
    )


def _with_threads(spec: RunSpec, threads: int | None) -> RunSpec:
    """The spec with ``train.threads`` set (an execution field: the spec hash is unchanged)."""
    if threads is None or spec.train.threads == threads:
        return spec
    return spec.model_copy(update={"train": spec.train.model_copy(update={"threads": threads})})


# ---------------------------------------------------------------------- in this process
class InlineExecutor:
    """Runs steps one after another in the calling process (debugging, notebooks, tests)."""

    name = "inline"

    def __init__(self, *, threads: int | None = None) -> None:
        self.threads = threads

    def map_runs(
        self,
        specs: Sequence[RunSpec],
        corpus: str | None,
        *,
        train_fn: TrainFn | None = None,
        open_corpus: CorpusOpener | None = None,
        on_progress: ProgressFn | None = None,
    ) -> Iterator[RunResult]:
        for spec in specs:
            run_id = spec.run_id

            def progress(tokens_done: int, _run_id: str = run_id) -> None:
                if on_progress is not None:
                    on_progress(_run_id, int(tokens_done))

            try:
                result = run_step(
                    _with_threads(spec, self.threads), corpus, train_fn, open_corpus, progress
                )
            except (ClimbError, RuntimeError, ValueError) as exc:
                raise _step_error(run_id, exc, pending=set()) from None
            yield result


# ---------------------------------------------------------------------- local processes
_PROGRESS_QUEUE: Any = None


def _init_local_worker(progress_queue: Any) -> None:
    global _PROGRESS_QUEUE
    _PROGRESS_QUEUE = progress_queue


def _local_task(
    spec: RunSpec, corpus: str | None, train_fn: TrainFn | None, open_corpus: CorpusOpener | None
) -> RunResult:
    q = _PROGRESS_QUEUE
    last = [0.0]

    def progress(tokens_done: int) -> None:
        now = time.monotonic()
        if q is not None and now - last[0] >= 0.2:
            last[0] = now
            with contextlib.suppress(Exception):
                q.put_nowait((spec.run_id, int(tokens_done)))

    return run_step(spec, corpus, train_fn, open_corpus, progress)


class LocalExecutor:
    """``workers`` local processes (``spawn`` context), one run at a time each.

    Args:
        workers: number of worker processes (≥ 1).
        threads: torch threads per worker; ``None`` keeps each spec's ``train.threads``
            (default 1). Thread count is an execution setting: it does not change the spec hash.
    """

    name = "local"

    def __init__(self, workers: int = 1, *, threads: int | None = None) -> None:
        if workers < 1:
            raise ClimbError(f"workers={workers}: must be ≥ 1")
        if threads is not None and threads < 0:
            raise ClimbError(f"threads={threads}: must be ≥ 0 (0 = torch's default)")
        self.workers = int(workers)
        self.threads = threads

    def map_runs(
        self,
        specs: Sequence[RunSpec],
        corpus: str | None,
        *,
        train_fn: TrainFn | None = None,
        open_corpus: CorpusOpener | None = None,
        on_progress: ProgressFn | None = None,
    ) -> Iterator[RunResult]:
        if not specs:
            return
        ctx = mp.get_context("spawn")
        progress_queue = ctx.Queue()
        pool = ProcessPoolExecutor(
            max_workers=min(self.workers, len(specs)),
            mp_context=ctx,
            initializer=_init_local_worker,
            initargs=(progress_queue,),
        )
        futures: dict[Future[RunResult], str] = {}
        try:
            for spec in specs:
                fut = pool.submit(
                    _local_task, _with_threads(spec, self.threads), corpus, train_fn, open_corpus
                )
                futures[fut] = spec.run_id
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                _drain(progress_queue, on_progress)
                # Results of runs that finished are handed out before any failure is raised.
                failures = []
                for fut in sorted(done, key=lambda f: futures[f]):
                    exc = fut.exception()
                    if exc is None:
                        yield fut.result()
                    else:
                        failures.append((futures[fut], exc))
                if failures:
                    run_id, exc = failures[0]
                    others = {futures[f] for f in pending} | {r for r, _ in failures[1:]}
                    raise _step_error(run_id, exc, pending=others)
        finally:
            _shutdown_pool(pool)
            progress_queue.close()
            progress_queue.cancel_join_thread()


def _drain(q: Any, on_progress: ProgressFn | None) -> None:
    while True:
        try:
            run_id, tokens_done = q.get_nowait()
        except (_queue.Empty, OSError, ValueError, EOFError):
            return
        if on_progress is not None:
            on_progress(run_id, tokens_done)


_RAY_LOST = frozenset({"WorkerCrashedError", "NodeDiedError", "OutOfMemoryError", "ActorDiedError"})


def _step_error(run_id: str, exc: BaseException, *, pending: set[str]) -> BaseException:
    if isinstance(exc, BrokenProcessPool):
        return ClimbError(
            f"a worker process died (killed or out of memory); {len(pending) + 1} unfinished run(s) "
            f"(e.g. '{run_id}') were not stored; finished runs are saved, rerun the same command "
            "to resume"
        )
    if type(exc).__name__ in _RAY_LOST:
        return ClimbError(
            f"Ray lost run '{run_id}' ({type(exc).__name__}: a worker or node died); "
            "finished runs are saved, rerun the same command to resume"
        )
    if isinstance(exc, ClimbError):
        msg = str(exc)
        return ClimbError(msg if f"'{run_id}'" in msg else f"run '{run_id}': {msg}")
    if isinstance(exc, KeyboardInterrupt):
        return KeyboardInterrupt()
    return RuntimeError(f"run '{run_id}' failed: {type(exc).__name__}: {exc}").with_traceback(
        exc.__traceback__
    )


def _shutdown_pool(pool: ProcessPoolExecutor) -> None:
    """Stop the pool and terminate its workers (also after a clean finish: nothing is left to
    lose after the last result, and the clean exit of a process that imported torch takes
    seconds)."""
    procs = list(getattr(pool, "_processes", {}).values() or [])
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.terminate()
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.join(timeout=5)


# ---------------------------------------------------------------------- Ray
class RayExecutor:
    """Each run is a Ray task: ``num_gpus=1`` per run when the cluster has GPUs, else ``num_cpus=1``.

    Args:
        address: a Ray cluster to join (``"auto"``, ``"ray://host:10001"``); ``None`` starts a
            local instance unless Ray is already initialized in this process.
        workers: most runs in flight at once (``None``: as many as the cluster schedules).
        threads: torch threads per run (``None`` keeps the spec's, default 1).
        init_kwargs: extra arguments for ``ray.init`` when this executor starts Ray
            (e.g. ``num_cpus=2``, ``include_dashboard=False``).

    Progress is reported per finished run (tokens/s over whole runs), not within a run.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int | None = None,
        threads: int | None = None,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if workers is not None and workers < 1:
            raise ClimbError(f"workers={workers}: must be ≥ 1")
        self.address = address
        self.workers = workers
        self.threads = threads
        self.init_kwargs = dict(init_kwargs or {})

    def map_runs(
        self,
        specs: Sequence[RunSpec],
        corpus: str | None,
        *,
        train_fn: TrainFn | None = None,
        open_corpus: CorpusOpener | None = None,
        on_progress: ProgressFn | None = None,
    ) -> Iterator[RunResult]:
        if not specs:
            return
        ray = _import_ray()
        started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            kwargs.update(self.init_kwargs)
            try:
                ray.init(address=self.address, **kwargs)
            except Exception as exc:
                raise ClimbError(
                    f"cannot start or join Ray (address {self.address or 'local'}): {exc}"
                ) from None
            started = True
        gpus = float(ray.cluster_resources().get("GPU", 0.0))
        resources = {"num_gpus": 1, "num_cpus": 1} if gpus >= 1 else {"num_cpus": 1}
        task = ray.remote(max_retries=0)(run_step).options(**resources)
        if corpus is not None:
            corpus = str(Path(corpus).resolve())
        limit = self.workers or len(specs)
        todo = list(specs)
        in_flight: dict[Any, str] = {}
        clean_exit = False
        try:
            while todo or in_flight:
                while todo and len(in_flight) < limit:
                    spec = _with_threads(todo.pop(0), self.threads)
                    in_flight[task.remote(spec, corpus, train_fn, open_corpus)] = spec.run_id
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.5)
                for ref in ready:
                    run_id = in_flight.pop(ref)
                    try:
                        result = ray.get(ref)
                    except Exception as exc:
                        cause = getattr(exc, "cause", None) or exc
                        raise _step_error(run_id, cause, pending=set(in_flight.values())) from None
                    if on_progress is not None:
                        on_progress(
                            run_id, int(result.rows[-1].get("tokens", 0)) if result.rows else 0
                        )
                    yield result
            clean_exit = True
        finally:
            if not clean_exit:
                for ref in in_flight:
                    with contextlib.suppress(Exception):
                        ray.cancel(ref, force=True)
            if started:
                with contextlib.suppress(Exception):
                    ray.shutdown()


def _import_ray() -> Any:
    try:
        return importlib.import_module("ray")
    except ModuleNotFoundError:
        raise ClimbError("the ray backend needs Ray: pip install 'climb[ray]'") from None


def make_executor(
    backend: str = "local",
    *,
    workers: int | None = None,
    threads: int | None = None,
    address: str | None = None,
    init_kwargs: dict[str, Any] | None = None,
) -> LocalExecutor | RayExecutor:
    """An executor by name: ``local`` (``workers`` processes, default 1) or ``ray``."""
    if backend == "local":
        if address is not None:
            raise ClimbError("ray_address only applies to the ray backend")
        return LocalExecutor(workers if workers is not None else 1, threads=threads)
    if backend == "ray":
        return RayExecutor(address, workers=workers, threads=threads, init_kwargs=init_kwargs)
    raise ClimbError(f"backend '{backend}': choose one of {', '.join(BACKENDS)}")
