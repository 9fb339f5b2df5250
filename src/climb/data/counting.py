"""Counting a corpus by streaming: documents, bytes, tokens (the data caps), the carved
validation split and the script, shard by shard, in bounded memory, on one process, a pool of
processes or Ray Data.

**Tokens.** A split's tokens are those of its documents joined by blank lines, as the trainer
reads them: ``Σ_d |tok(d)| + (n − 1)·|tok("\\n\\n")|`` (no special tokens). With the byte-level
tokenizer this is the split's UTF-8 bytes.

**Validation carving in one pass.** :func:`select_valid` is the rule of
:func:`climb.data.corpus.carve_validation`: documents in the order of ``blake2b(seed:text)``
(ties by position) enter the validation split until it holds ``goal = min(G, f·total)`` bytes
(``G`` = 64 KiB, ``f`` = 10%), skipping those that would take it past ``1.25·goal``; the last
document in hash order never does; if none fits, the first in hash order goes. While streaming,
only *candidates* are kept — ``(key, position, size, tokens)`` of documents of at most ``1.25·G``
bytes, and of those only the smallest keys: once documents of at most ``G/4`` bytes with smaller
keys sum to ``G``, a larger key can never be chosen (each such document is taken while the split
holds less than ``G``). Shards are counted independently and merged (the rule is the same on a
union), so the result equals carving the whole list.

**Script.** :func:`climb.data.corpus.detect_script` on a uniform sample: the documents with the
smallest keys, up to 400k characters (a bottom-k sketch, also mergeable across shards).
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import os
import pickle
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from climb.data.sources import Shard
from climb.errors import ClimbError

VALID_TARGET_BYTES = 64 * 1024
"""Carved validation split: whole documents until this many bytes …"""
VALID_SMALL_FRACTION = 0.10
"""… or this fraction of a small source's bytes, whichever is smaller."""
VALID_OVERSHOOT = 0.25
"""A document that would take the split past ``(1 + VALID_OVERSHOOT)`` times its goal is skipped."""
VALID_SEED = 0
"""Seed of the hash that orders documents for carving."""
SCRIPT_SAMPLE_CHARS = 400_000
"""Characters of the uniform document sample the script is detected on."""
BUFFER_BYTES = 1 << 20
"""Documents are tokenized in batches of about this many characters."""

Index = tuple[int, int]
"""A document's position: (shard number in the split, position in the shard)."""
Candidate = tuple[bytes, Index, int, int]
"""``(key, position, size = UTF-8 bytes + 2, tokens)`` of a document."""


def doc_key(text: str, seed: int = VALID_SEED) -> bytes:
    """The carving rank of a document: ``blake2b(f"{seed}:{text}")``, 8 bytes."""
    return hashlib.blake2b(f"{seed}:{text}".encode(), digest_size=8).digest()


def select_valid(
    candidates: Iterable[Candidate],
    *,
    documents: int,
    total_size: int,
    first: Candidate | None,
    last: Candidate | None,
    target_bytes: int = VALID_TARGET_BYTES,
    small_fraction: float = VALID_SMALL_FRACTION,
) -> list[Candidate]:
    """The documents carved into the validation split (see the module docstring).

    ``candidates`` hold at least every document of the hash-order prefix the rule looks at;
    ``total_size`` is ``Σ (bytes + 2)`` over all ``documents``; ``first``/``last`` are the
    documents with the smallest and largest key.
    """
    if documents < 2:
        return []
    goal = min(target_bytes, small_fraction * total_size)
    limit = goal * (1 + VALID_OVERSHOOT)
    chosen: list[Candidate] = []
    got = 0
    for c in sorted(candidates, key=lambda c: (c[0], c[1])):
        if got >= goal or (last is not None and c[1] == last[1]):
            break
        if got + c[2] > limit:
            continue  # a document too big to fit: the next in hash order may
        chosen.append(c)
        got += c[2]
    if not chosen and first is not None:
        chosen.append(first)
    return chosen


@dataclass
class SplitCount:
    """Counts of a stream of documents (one shard, or a merged split), with the carving
    candidates and the script sample. ``add`` one document at a time or ``merge`` another."""

    carve: bool = False
    documents: int = 0
    utf8_bytes: int = 0
    tokens: int = 0
    first: Candidate | None = None
    last: Candidate | None = None
    # max-heaps (negated keys) of carving candidates and of the script sample
    _cands: list[tuple[int, tuple[int, int], bytes, Index, int, int]] = field(default_factory=list)
    _small: int = 0
    _sample: list[tuple[int, tuple[int, int], str]] = field(default_factory=list)
    _sample_chars: int = 0

    @property
    def total_size(self) -> int:
        return self.utf8_bytes + 2 * self.documents

    def add(self, key: bytes, index: Index, n_bytes: int, n_tokens: int, text: str) -> None:
        self.documents += 1
        self.utf8_bytes += n_bytes
        self.tokens += n_tokens
        cand: Candidate = (key, index, n_bytes + 2, n_tokens)
        self._update_ends(cand)
        self._push_candidate(cand)
        self._add_sample(key, index, text[:SCRIPT_SAMPLE_CHARS])

    def _update_ends(self, c: Candidate) -> None:
        if self.first is None or (c[0], c[1]) < (self.first[0], self.first[1]):
            self.first = c
        if self.last is None or (c[0], c[1]) > (self.last[0], self.last[1]):
            self.last = c

    def _push_candidate(self, c: Candidate) -> None:
        if not self.carve or c[2] > VALID_TARGET_BYTES * (1 + VALID_OVERSHOOT):
            return
        k = int.from_bytes(c[0], "big")
        heapq.heappush(self._cands, (-k, (-c[1][0], -c[1][1]), *c))
        if c[2] <= VALID_TARGET_BYTES / 4:
            self._small += c[2]
        if VALID_SMALL_FRACTION * self.total_size < VALID_TARGET_BYTES:
            return  # the goal may still be smaller than G: keep everything
        while self._cands:
            size = self._cands[0][4]
            rest = self._small - (size if size <= VALID_TARGET_BYTES / 4 else 0)
            if rest < VALID_TARGET_BYTES:
                break
            heapq.heappop(self._cands)
            self._small = rest

    def _add_sample(self, key: bytes, index: Index, text: str) -> None:
        k = int.from_bytes(key, "big")
        heapq.heappush(self._sample, (-k, (-index[0], -index[1]), text))
        self._sample_chars += len(text)
        while self._sample_chars - len(self._sample[0][2]) >= SCRIPT_SAMPLE_CHARS:
            self._sample_chars -= len(heapq.heappop(self._sample)[2])

    def candidates(self) -> list[Candidate]:
        return [(c[2], c[3], c[4], c[5]) for c in self._cands]

    def sample_text(self) -> str:
        """The script sample, in key order."""
        return "\n\n".join(t for *_, t in sorted(self._sample, reverse=True))

    def merge(self, other: SplitCount, shard_no: int) -> None:
        """Add the counts of ``other`` (one shard, positions re-based on shard ``shard_no``)."""
        self.documents += other.documents
        self.utf8_bytes += other.utf8_bytes
        self.tokens += other.tokens

        def rebase(c: Candidate) -> Candidate:
            return (c[0], (shard_no, c[1][1]), c[2], c[3])

        for end in (other.first, other.last):
            if end is not None:
                self._update_ends(rebase(end))
        for c in other.candidates():
            self._push_candidate(rebase(c))
        for neg_k, neg_i, text in other._sample:
            self._add_sample((-neg_k).to_bytes(8, "big"), (shard_no, -neg_i[1]), text)


def count_shard(
    shard: Shard, tokenizer: str, *, carve: bool, buffer_bytes: int = BUFFER_BYTES
) -> SplitCount:
    """Stream one shard: documents, bytes, tokens of ``tokenizer`` (a :func:`load_tokenizer`
    spec), carving candidates (when ``carve``) and the script sample."""
    from climb.data.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer)
    out = SplitCount(carve=carve)
    batch: list[str] = []
    size = 0
    position = 0

    def flush() -> None:
        nonlocal position
        for doc, n_tokens in zip(batch, tok.count(batch)):
            out.add(doc_key(doc), (0, position), len(doc.encode("utf-8")), n_tokens, doc)
            position += 1
        batch.clear()

    for doc in shard.documents():
        batch.append(doc)
        size += len(doc)
        if size >= buffer_bytes:
            flush()
            size = 0
    flush()
    return out


# ----------------------------------------------------------------------------- running shards
Task = tuple[Shard, str, bool]
"""``(shard, tokenizer spec, carve)``."""
OnResult = Callable[[int, SplitCount], None]
"""Called with each task's position and count as soon as it is done (to merge as they come)."""


def _run_task(task: Task) -> SplitCount:
    shard, tokenizer, carve = task
    return count_shard(shard, tokenizer, carve=carve)


def _worker_init() -> None:
    os.environ["RAYON_NUM_THREADS"] = "1"  # one tokenizer thread per process
    os.environ["TOKENIZERS_PARALLELISM"] = "false"


def run_tasks(
    tasks: Sequence[Task],
    *,
    on_result: OnResult,
    jobs: int = 1,
    backend: str = "local",
    ray_address: str | None = None,
) -> None:
    """Count every task's shard — in this process (``jobs=1``), in ``jobs`` processes, or as a
    Ray Data ``map`` (``backend="ray"``) — handing each result to ``on_result``."""
    if jobs < 1:
        raise ClimbError(f"jobs must be ≥ 1, got {jobs}")
    if backend == "ray":
        _run_ray(tasks, jobs=jobs, address=ray_address, on_result=on_result)
        return
    if backend != "local":
        raise ClimbError(f"backend must be 'local' or 'ray', got {backend!r}")
    if jobs == 1 or len(tasks) <= 1:
        for i, task in enumerate(tasks):
            on_result(i, _run_task(task))
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(jobs, len(tasks)), mp_context=ctx, initializer=_worker_init) as pool:  # fmt: skip
        futures = {pool.submit(_run_task, t): i for i, t in enumerate(tasks)}
        try:
            for fut in as_completed(futures):
                on_result(futures[fut], fut.result())
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _ray_map(row: dict[str, Any]) -> dict[str, Any]:
    _worker_init()
    try:
        res: Any = _run_task(pickle.loads(row["task"]))
    except ClimbError as exc:
        res = exc
    return {"i": row["i"], "result": pickle.dumps(res)}


def _absolute(task: Task) -> Task:
    """The task with a local file path made absolute (Ray workers may run elsewhere)."""
    shard, tokenizer, carve = task
    if shard.kind == "file" and "://" not in shard.url:
        shard = dataclasses.replace(shard, url=os.path.abspath(shard.url))
    return shard, tokenizer, carve


def _run_ray(tasks: Sequence[Task], *, jobs: int, address: str | None, on_result: OnResult) -> None:
    try:
        import ray
        import ray.data
    except ImportError:
        raise ClimbError("backend 'ray' needs Ray Data: pip install 'climb[ray]'") from None
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address is None:
            kwargs["num_cpus"] = jobs
        try:
            ray.init(address=address, **kwargs)
        except Exception as exc:
            raise ClimbError(f"cannot start or join Ray (address {address or 'local'}): {exc}") from None  # fmt: skip
        started = True
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        items = [{"i": i, "task": pickle.dumps(_absolute(t))} for i, t in enumerate(tasks)]
        ds = ray.data.from_items(items, override_num_blocks=max(1, len(items)))
        for row in ds.map(_ray_map).iter_rows():
            res = pickle.loads(row["result"])
            if isinstance(res, ClimbError):
                raise res
            on_result(int(row["i"]), res)
    finally:
        if started:
            ray.shutdown()


__all__ = [
    "BUFFER_BYTES",
    "SplitCount",
    "count_shard",
    "doc_key",
    "run_tasks",
    "select_valid",
]
