"""Independent fits on worker processes, with a progress bar: the bootstrap's refits
(:mod:`climb.allocation.bootstrap`) and the cross-validation's folds (:mod:`climb.evaluation.cv`).

:func:`process_map` returns ``[fn(x) for x in items]`` in order, computed serially or on ``jobs``
processes. The workers ignore Ctrl-C: the parent handles it, terminates them and re-raises, so an
interrupted computation writes nothing. The processes are started before the progress bar's thread
(no thread is forked). Each task should hold the same number of BLAS threads in every mode
(:func:`climb.laws.fitting.blas_threads`) so that results do not depend on ``jobs``.
"""

from __future__ import annotations

import inspect
import multiprocessing
import pickle
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from climb.errors import ClimbError

T = TypeVar("T")
R = TypeVar("R")

ProgressFn = Callable[[int, int], None]
"""``progress(done, total)``: called after each finished task."""


def check_jobs(n_jobs: int | None) -> int:
    """``n_jobs`` as a process count (``None``/``1`` serial, ``-1`` every CPU; one-line
    :class:`ClimbError` otherwise)."""
    from climb.laws.fitting import resolve_jobs

    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, int)):
        raise ClimbError(f"n_jobs must be an integer ≥ 1 or -1 (every CPU), got {n_jobs!r}")
    return resolve_jobs(n_jobs)


def check_picklable(obj: Any, what: str) -> None:
    """One-line :class:`ClimbError` when ``obj`` cannot be sent to a worker process."""
    try:
        pickle.dumps(obj)
    except Exception as exc:  # pickle raises several types (PicklingError, AttributeError, …)
        raise ClimbError(
            f"{what} must be picklable to run on several processes (a law name, or a module-level "
            f"function or functools.partial of one; not a lambda or closure): {exc}"
        ) from None


def serial_law_options(law_name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """A registered law's options with its own per-target parallelism off (``n_jobs=1``): the
    fits are already spread over processes, and both together would oversubscribe the CPUs."""
    from climb.laws import law_class

    accepted = inspect.signature(law_class(law_name).__init__).parameters
    return dict(options) | ({"n_jobs": 1} if "n_jobs" in accepted else {})


def _quiet_worker() -> None:
    """Worker processes ignore Ctrl-C: the parent handles it and terminates them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def progress_bar(
    total: int, progress: bool | ProgressFn | None, label: str
) -> Iterator[Callable[[], None]]:
    """``advance()`` after each task: a rich bar on stderr (``progress=True``: tasks done,
    elapsed, ETA), a callback ``progress(done, total)``, or nothing."""
    if progress is True:
        from rich.console import Console
        from rich.progress import (  # fmt: skip
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True),
                       transient=False)  # fmt: skip
        with bar:
            bar_task = bar.add_task(label, total=total)
            yield lambda: bar.update(bar_task, advance=1)
        return
    callback = progress if callable(progress) else None
    done = [0]

    def advance() -> None:
        done[0] += 1
        if callback is not None:
            callback(done[0], total)

    yield advance


def _indexed(args: tuple[Callable[[Any], Any], int, Any]) -> tuple[int, Any]:
    fn, i, item = args
    return i, fn(item)


def process_map(
    fn: Callable[[T], R],
    items: Sequence[T],
    jobs: int,
    progress: bool | ProgressFn | None = None,
    label: str = "tasks",
) -> list[R]:
    """``[fn(x) for x in items]``, serially (``jobs ≤ 1``) or on ``min(jobs, len(items))``
    processes (``fn`` and the items must be picklable), in the order of ``items`` whatever the
    order the tasks finish in; ``progress`` as in :func:`progress_bar`."""
    jobs = min(jobs, len(items))
    if jobs <= 1:
        out = []
        with progress_bar(len(items), progress, label) as advance:
            for x in items:
                out.append(fn(x))
                advance()
        return out
    done: dict[int, R] = {}
    tasks = [(fn, i, x) for i, x in enumerate(items)]
    with multiprocessing.get_context().Pool(jobs, initializer=_quiet_worker) as pool:
        results = pool.imap_unordered(_indexed, tasks)
        with progress_bar(len(items), progress, label) as advance:
            for i, r in results:
                done[i] = r
                advance()
    return [done[i] for i in range(len(items))]


__all__ = [
    "ProgressFn",
    "check_jobs",
    "check_picklable",
    "process_map",
    "progress_bar",
    "serial_law_options",
]
