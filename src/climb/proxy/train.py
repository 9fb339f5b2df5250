"""The proxy training loop: one run of :class:`~climb.proxy.config.RunSpec` → run-table rows.

Data. The run trains for ``steps = max(1, round(D / (B·T)))`` steps of ``B`` sequences of ``T``
tokens, so it sees exactly ``steps·B·T`` tokens (reported as ``tokens``; the planned ``D`` is kept
as ``planned_tokens``). The ``n = steps·B`` sequences are split between sources *exactly* at the
planned proportions — ``n_s = ⌊p_s n⌋`` plus one for the largest remainders — and interleaved
smoothly (Tijdeman's chairman-assignment rule), so every batch and every checkpoint prefix is within
one sequence of ``p``. Each sequence is a window of ``T + 1``
tokens at a uniformly random offset of its source's training split (seeded numpy generator).
Sources with ``p_s = 0`` are never sampled but still evaluated.

Optimisation. AdamW (β₁, β₂ from the config; weight decay on matrices only), gradient clipping,
learning rate ``lr(t)`` = linear warmup over ``⌈warmup_frac·steps⌉`` steps, then cosine decay
``lr_min + ½(lr − lr_min)(1 + cos(π·progress))`` with ``lr_min = min_lr_ratio·lr``.

Evaluation. At each checkpoint fraction and at the end, every mixture source's first
``eval_bytes`` held-out bytes are cut into non-overlapping ``T``-token windows and scored by the
eager float32 model (whatever the training precision, so all runs are measured alike):

    loss_s = Σ nats(predicted tokens) / (Σ bytes(predicted tokens) · ln 2)     [bits per byte]

Execution. ``device="auto"`` picks CUDA when available. On CUDA torch.compile and bf16 autocast
are on by default; on CPU both are on only for runs of at least :data:`CPU_COMPILE_MIN_TOKENS`
tokens (compiling costs 17–30 s cold), bf16 only where the CPU computes it natively
(:func:`~climb.proxy.config.cpu_native_bf16`: emulated bf16 is ~3× slower than float32), and bf16
is never used without compile there (10× slower).
CPU runs are bit-for-bit deterministic for a given spec and thread count.
"""

from __future__ import annotations

import copy
import functools
import math
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from climb.errors import ClimbError, ClimbWarning
from climb.proxy.config import CorpusLike, RunSpec, TrainConfig, cpu_native_bf16
from climb.proxy.model import ProxyLM, lm_loss
from climb.proxy.tokenize import encode_cached, get_tokenizer, utf8_prefix

CPU_COMPILE_MIN_TOKENS = 2_000_000
"""On CPU, ``compile="auto"``/``bf16="auto"`` turn on for runs of at least this many tokens.

Measured with ``benchmarks/trainer.py`` (see ``docs/trainer.md``): compile + bf16 roughly doubles
CPU throughput but costs 17–30 s of cold compilation, which a run shorter than this does not win
back."""

Row = dict[str, object]


# --------------------------------------------------------------------------- execution settings
@dataclass(frozen=True)
class Execution:
    """Resolved ``device``/``compile``/``bf16``/``threads`` of a run."""

    device: str
    compile: bool
    bf16: bool
    threads: int


def resolve_execution(spec: RunSpec) -> Execution:
    """Turn the ``"auto"`` settings of ``spec.train`` into concrete ones (see module docstring)."""
    cfg = spec.train
    device = cfg.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise ClimbError("train.device='cuda' but torch sees no CUDA device; use 'auto' or 'cpu'")
    has_cc = shutil.which("cc") is not None or shutil.which("gcc") is not None
    long_run = spec.tokens >= CPU_COMPILE_MIN_TOKENS
    if cfg.compile == "auto":
        use_compile = True if device == "cuda" else long_run and has_cc
    else:
        use_compile = bool(cfg.compile)
        if use_compile and device == "cpu" and not has_cc:
            raise ClimbError(
                "train.compile=true needs a C compiler (cc/gcc) on CPU; set it to false"
            )
    if cfg.bf16 == "auto":
        cuda_bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
        use_bf16 = cuda_bf16 if device == "cuda" else use_compile and cpu_native_bf16()
    else:
        use_bf16 = bool(cfg.bf16)
        if use_bf16 and device == "cpu" and not use_compile:
            raise ClimbError(
                "train.bf16=true without compile is ~10x slower on CPU; set train.compile=true "
                "or train.bf16=false"
            )
        if use_bf16 and device == "cpu" and not cpu_native_bf16():
            warnings.warn(
                "train.bf16=true on a CPU without native bf16 (AVX512-BF16/AMX): emulated, ~3x "
                "slower than float32 here; train.bf16='auto' uses float32 on such CPUs",
                ClimbWarning,
                stacklevel=2,
            )
    return Execution(device, use_compile, use_bf16, cfg.threads)


@contextmanager
def _torch_settings(ex: Execution) -> Iterator[None]:
    """Set threads and deterministic algorithms for the run; restore them afterwards."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        if ex.threads > 0:
            torch.set_num_threads(ex.threads)
        torch.use_deterministic_algorithms(True, warn_only=True)
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)


# --------------------------------------------------------------------------- mixture sampling
def sequence_counts(p: np.ndarray, n: int) -> np.ndarray:
    """Largest-remainder apportionment: ``n_s = ⌊p_s n⌋`` (+1 for the largest remainders).

    ``Σ n_s = n`` and ``|n_s − p_s n| < 1``; ties go to the earlier source.
    """
    quota = np.asarray(p, dtype=float) * n
    counts = np.floor(quota + 1e-9).astype(np.int64)
    short = n - int(counts.sum())
    if short > 0:
        frac = quota - counts
        order = np.lexsort((np.arange(len(frac)), -frac))  # by remainder desc, then index
        counts[order[:short]] += 1
    return counts


def mixture_schedule(counts: np.ndarray) -> np.ndarray:
    """Source index of each of the ``n = Σ counts`` sequence slots, smoothly interleaved.

    Tijdeman's chairman-assignment rule with shares ``q_s = n_s / n`` over the ``S`` sources with
    ``n_s > 0`` and ``σ = 1 − 1/(2(S − 1))``: slot ``m`` (1-based) goes, among the sources with
    ``m·q_s − c_s ≥ 1 − σ`` (``c_s`` = slots taken so far), to the one with the earliest deadline
    ``(c_s + σ) / q_s`` (ties to the earlier source). Every prefix of ``m`` slots then holds
    ``m·q_s`` of each source within ``σ < 1`` sequence, and source ``s`` gets exactly ``n_s``.
    """
    n = int(np.sum(counts))
    active = [s for s, c in enumerate(counts) if c > 0]
    out = np.empty(n, dtype=np.int64)
    if len(active) <= 1:
        out[:] = active[0] if active else 0
        return out
    sigma = 1.0 - 1.0 / (2 * (len(active) - 1))
    share = {s: int(counts[s]) / n for s in active}
    taken = dict.fromkeys(active, 0)
    for m in range(1, n + 1):
        best, best_deadline = -1, math.inf
        for s in active:
            if m * share[s] - taken[s] >= 1.0 - sigma - 1e-12:
                deadline = (taken[s] + sigma) / share[s]
                if deadline < best_deadline:
                    best, best_deadline = s, deadline
        out[m - 1] = best
        taken[best] += 1
    return out


def sample_plan(
    p: np.ndarray, n: int, T: int, lengths: list[int], seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Which source and offset each of the run's ``n`` training sequences comes from.

    Returns ``(slots, starts)``: ``slots[i]`` is the source index of sequence ``i`` (exact counts
    :func:`sequence_counts`, order :func:`mixture_schedule`); ``starts[i]`` a uniform random offset
    in ``[0, lengths[s] − T)`` drawn from ``numpy.random.default_rng(seed)``, source by source.
    """
    counts = sequence_counts(p, n)
    slots = mixture_schedule(counts)
    rng = np.random.default_rng(seed)
    starts = np.zeros(len(slots), dtype=np.int64)
    for k, c in enumerate(counts):
        if c:
            starts[slots == k] = rng.integers(0, lengths[k] - T, size=c)
    return slots, starts


def lr_at(step: int, steps: int, cfg: TrainConfig) -> float:
    """Cosine schedule, 0-based ``step``: linear warmup, then cosine to ``min_lr_ratio·lr``."""
    warmup = math.ceil(cfg.warmup_frac * steps)
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    lr_min = cfg.min_lr_ratio * cfg.lr
    progress = (step - warmup) / max(1, steps - warmup - 1)
    return lr_min + 0.5 * (cfg.lr - lr_min) * (1.0 + math.cos(math.pi * progress))


def wsd_lr_at(step: int, steps: int, cfg: TrainConfig) -> float:
    """WSD stable phase, 0-based ``step`` of a run of ``steps``: linear warmup, then ``lr``."""
    warmup = math.ceil(cfg.warmup_frac * steps)
    return cfg.lr * (step + 1) / warmup if step < warmup else cfg.lr


def cooldown_lr(t: int, n: int, peak: float, cfg: TrainConfig) -> float:
    """Step ``t`` of an ``n``-step WSD cooldown from ``peak``: ``peak·(1 − f(x))``, ``x = (t+½)/n``,
    ``f(x) = √x`` (``cooldown_shape="sqrt"``) or ``x`` (``"linear"``); it ends near 0."""
    x = (t + 0.5) / n
    return peak * (1.0 - (math.sqrt(x) if cfg.cooldown_shape == "sqrt" else x))


@dataclass(frozen=True)
class Phase:
    """Steps ``[start, end)`` trained from the main run's state at ``start``, then evaluated.

    Cosine: one phase ``[0, steps)`` evaluated at ``evals`` (checkpoint steps and ``steps``).
    WSD: one phase per budget ``D_k``: the cooldown ``[steps_k − c_k, steps_k)`` with
    ``c_k = ⌈cooldown_frac·steps_k⌉``, evaluated at ``steps_k``; every phase but the last is a
    *branch* (the main run's state is restored after it), the last one is the main run's own.
    """

    start: int
    end: int
    evals: tuple[int, ...]
    budget: int  # the planned D_k of the phase's last row
    branch: bool


def run_phases(spec: RunSpec) -> tuple[int, list[Phase]]:
    """``(steps, phases)`` of a run: ``steps_k = max(1, round(D_k / (B·T)))`` per budget.

    Raises ClimbError when two budgets of a WSD run round to the same number of steps.
    """
    tcfg = spec.train
    per_step = tcfg.batch_size * spec.model.context
    steps = max(1, round(spec.tokens / per_step))
    if tcfg.schedule == "cosine":
        cps = sorted({round(f * steps) for f in tcfg.checkpoints} - {0, steps})
        return steps, [Phase(0, steps, (*cps, steps), spec.tokens, branch=False)]
    ends = [max(1, round(d / per_step)) for d in spec.budgets]
    if len(set(ends)) != len(ends):
        raise ClimbError(
            f"run '{spec.run_id}': budgets {list(spec.budgets)} round to steps {ends} of "
            f"{per_step} tokens; make them at least one step apart"
        )
    phases = []
    for k, (end, budget) in enumerate(zip(ends, spec.budgets)):
        n_cool = min(end, max(1, math.ceil(tcfg.cooldown_frac * end)))
        phases.append(Phase(end - n_cool, end, (end,), budget, branch=k < len(ends) - 1))
    return steps, phases


# --------------------------------------------------------------------------- the run
def train_run(
    spec: RunSpec, corpus: CorpusLike, *, progress: Callable[[int], None] | None = None
) -> list[Row]:
    """Train one proxy model on ``spec.mixture`` and return its run-table rows.

    Cosine: one row per checkpoint fraction (``true_budget=False``) and a last row at ``tokens``.
    WSD: one row per budget (``branches`` and ``tokens``), each a cooldown branch evaluated at
    exactly that many tokens (``true_budget=True``). Every row but the last has run id
    ``f"{run_id}@{tokens}"``, the last ``spec.run_id`` (``final=True``); all have
    ``train_run = spec.run_id``. Each row has ``run``, ``tokens``, ``params`` (the law's N),
    ``p.<src>`` and ``loss.<src>`` (bits per byte) for every source in ``spec.mixture``, and
    metadata: ``train_run``, ``true_budget``, ``schedule``, ``seed``, ``final``, ``step``,
    ``planned_tokens``, ``wall_s``, ``tokens_per_s``, ``spec_hash``, ``tokenizer``, ``device``,
    ``compile``, ``bf16``. ``progress(tokens_done)`` is called about every 1% of the main run.

    Raises ClimbError: unknown source, a source too short for the context, or a non-finite loss.
    """
    ex = resolve_execution(spec)
    with _torch_settings(ex):
        return _Trainer(spec, corpus, ex, progress).run()


class _Trainer:
    """One run's data, model and optimiser, and the loop over its phases (see ``run``)."""

    def __init__(
        self,
        spec: RunSpec,
        corpus: CorpusLike,
        ex: Execution,
        progress: Callable[[int], None] | None,
    ) -> None:
        self.spec, self.ex, self.progress = spec, ex, progress
        self.origin = f"run '{spec.run_id}'"
        self.sources = list(spec.mixture)
        self.device = torch.device(ex.device)
        self.steps, self.phases = run_phases(spec)
        self._load_data(corpus)
        self._build_model()
        self.tokens_trained = 0
        self.train_s = 0.0

    # ---- data: token arrays, exact mixture schedule, seeded windows
    def _load_data(self, corpus: CorpusLike) -> None:
        spec, mcfg, tcfg = self.spec, self.spec.model, self.spec.train
        known = set(corpus.sources)
        for src in self.sources:
            if src not in known:
                raise ClimbError(
                    f"{self.origin}: mixture source '{src}' is not in the corpus "
                    f"(it has: {', '.join(sorted(known)[:12])}{'…' if len(known) > 12 else ''})"
                )
        p = np.array([spec.mixture[s] for s in self.sources])
        T = mcfg.context
        tok = get_tokenizer(mcfg, corpus)
        self.train_ids: dict[int, np.ndarray] = {}
        for k, src in enumerate(self.sources):
            if p[k] > 0:
                ids = encode_cached(tok, corpus.text_bytes(src, "train"))
                if len(ids) < T + 1:
                    raise ClimbError(
                        f"{self.origin}: source '{src}' has {len(ids)} training tokens, fewer "
                        f"than context+1={T + 1}; give it proportion 0 or lower model.context"
                    )
                self.train_ids[k] = ids
        self.eval_sets = {
            src: _eval_windows(tok, corpus, src, tcfg.eval_bytes, T, self.origin)
            for src in self.sources
        }
        lengths = [len(self.train_ids.get(k, ())) for k in range(len(self.sources))]
        self.slots, self.starts = sample_plan(
            p, self.steps * tcfg.batch_size, T, lengths, tcfg.seed
        )
        self.p = p

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets of 0-based ``step`` (the same batch in a branch and the main run)."""
        B, T = self.spec.train.batch_size, self.spec.model.context
        lo, hi = step * B, (step + 1) * B
        rows = [
            self.train_ids[int(s)][st : st + T + 1]
            for s, st in zip(self.slots[lo:hi], self.starts[lo:hi])
        ]
        xy = torch.from_numpy(np.stack(rows).astype(np.int64))
        if self.device.type == "cuda":
            xy = xy.pin_memory().to(self.device, non_blocking=True)
        return xy[:, :-1], xy[:, 1:]

    # ---- model and optimiser
    def _build_model(self) -> None:
        tcfg = self.spec.train
        torch.manual_seed(tcfg.seed)
        self.model = ProxyLM(self.spec.model).to(self.device)
        decay = [q for q in self.model.parameters() if q.dim() >= 2]
        no_decay = [q for q in self.model.parameters() if q.dim() < 2]
        self.opt = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": tcfg.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=tcfg.lr,
            betas=(tcfg.beta1, tcfg.beta2),
            fused=self.device.type == "cuda",
        )
        self.fwd: Callable[[torch.Tensor], torch.Tensor] = (
            torch.compile(self.model, dynamic=False) if self.ex.compile else self.model  # type: ignore[assignment]
        )
        self.autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.ex.bf16)

    def lr(self, step: int, phase: Phase) -> float:
        """Learning rate of 0-based ``step`` inside ``phase`` (cosine, or WSD stable/cooldown)."""
        cfg = self.spec.train
        if cfg.schedule == "cosine":
            return lr_at(step, self.steps, cfg)
        peak = wsd_lr_at(phase.start, self.steps, cfg)
        return cooldown_lr(step - phase.start, phase.end - phase.start, peak, cfg)

    def train_steps(self, lo: int, hi: int, lr_of: Callable[[int], float], main: bool) -> None:
        """Train steps ``[lo, hi)``; stop on a non-finite loss; report progress on the main run."""
        B, T = self.spec.train.batch_size, self.spec.model.context
        check_every = 1 if self.device.type == "cpu" else 16
        report_every = max(1, self.steps // 100)
        t0 = time.perf_counter()
        self.model.train()
        for step in range(lo, hi):
            lr = lr_of(step)
            for g in self.opt.param_groups:
                g["lr"] = lr
            x, y = self.batch(step)
            with self.autocast:
                loss = lm_loss(self.fwd(x), y)
            loss.backward()
            if self.spec.train.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.spec.train.grad_clip)
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
            if (step + 1) % check_every == 0 or step + 1 == hi:
                value = loss.item()
                if not math.isfinite(value):
                    raise ClimbError(
                        f"{self.origin}: training loss became {value} at step {step + 1} of "
                        f"{self.steps} (lr {lr:.3g}); lower train.lr or raise train.warmup_frac"
                    )
            report = (step + 1) % report_every == 0 or step + 1 == self.steps
            if main and report and self.progress is not None:
                self.progress((step + 1) * B * T)
        self.tokens_trained += (hi - lo) * B * T
        self.train_s += time.perf_counter() - t0

    def snapshot(self) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
        """Copies of the model's and optimiser's state (a WSD branch starts from them)."""
        weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        return weights, copy.deepcopy(self.opt.state_dict())

    def restore(self, state: tuple[dict[str, torch.Tensor], dict[str, object]]) -> None:
        """Put the main run's state back after a branch (in place: a compiled model stays valid)."""
        self.model.load_state_dict(state[0])
        self.opt.load_state_dict(state[1])

    # ---- the loop
    def run(self) -> list[Row]:
        """Cosine: train all steps, evaluating at checkpoints and the end. WSD: train the stable
        main run; at the start of each budget's cooldown, snapshot, train the cooldown, evaluate
        at the budget, restore (the last budget's cooldown is the main run's own)."""
        self.t0 = time.perf_counter()
        rows: list[Row] = []
        done = 0  # main-run steps trained
        for phase in self.phases:
            if self.spec.train.schedule == "wsd" and done < phase.start:
                self.train_steps(
                    done, phase.start, lambda s: wsd_lr_at(s, self.steps, self.spec.train), True
                )
                done = phase.start
            state = self.snapshot() if phase.branch else None
            at = phase.start
            for end in phase.evals:
                self.train_steps(at, end, functools.partial(self.lr, phase=phase), not phase.branch)
                rows.append(self.row(end, phase.budget))
                at = end
            if state is not None:
                self.restore(state)
            else:
                done = phase.end
        return rows

    def row(self, step: int, planned: int) -> Row:
        """Evaluate the model now (after ``step`` steps) into a run-table row; it is a true
        budget when its schedule has finished (every WSD row, the last cosine row)."""
        spec, mcfg, tcfg = self.spec, self.spec.model, self.spec.train
        tokens = step * tcfg.batch_size * mcfg.context
        losses = _evaluate(self.model, self.eval_sets, self.device)
        final = step == self.steps
        return {
            "run": spec.run_id if final else f"{spec.run_id}@{tokens}",
            "tokens": tokens,
            "params": self.model.non_embedding_params(),
            **{f"p.{s}": float(self.p[k]) for k, s in enumerate(self.sources)},
            **{f"loss.{s}": losses[s] for s in self.sources},
            "train_run": spec.run_id,
            "true_budget": tcfg.schedule == "wsd" or final,
            "schedule": tcfg.schedule,
            "seed": tcfg.seed,
            "planned_tokens": planned,
            "spec_hash": spec.spec_hash(),
            "tokenizer": mcfg.tokenizer,
            "device": self.ex.device,
            "compile": self.ex.compile,
            "bf16": self.ex.bf16,
            "final": final,
            "step": step,
            "wall_s": round(time.perf_counter() - self.t0, 3),
            "tokens_per_s": (
                round(self.tokens_trained / self.train_s, 1) if self.train_s > 0 else float("nan")
            ),
        }


# --------------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class _EvalSet:
    windows: torch.Tensor  # (n, T + 1) token ids
    n_bytes: int  # UTF-8 bytes of all predicted tokens


def _eval_windows(
    tok: object, corpus: CorpusLike, src: str, eval_bytes: int, T: int, origin: str
) -> _EvalSet:
    """Non-overlapping windows over the first ``eval_bytes`` held-out bytes of ``src``."""
    from climb.proxy.tokenize import BPETokenizer, ByteTokenizer

    assert isinstance(tok, ByteTokenizer | BPETokenizer)
    data = utf8_prefix(corpus.text_bytes(src, "valid"), eval_bytes)
    ids = tok.encode(data).astype(np.int64)
    n = (len(ids) - 1) // T
    if n < 1:
        raise ClimbError(
            f"{origin}: source '{src}' has {len(ids)} validation tokens, fewer than "
            f"context+1={T + 1}; lower model.context or give it more held-out text"
        )
    idx = np.arange(n)[:, None] * T + np.arange(T + 1)[None, :]
    windows = ids[idx]
    n_bytes = int(tok.token_bytes[windows[:, 1:]].sum())
    return _EvalSet(torch.from_numpy(windows), n_bytes)


EVAL_LOGIT_BYTES = 1 << 27
"""Evaluation batches hold at most this many bytes of float32 logits (and at most 64 windows)."""


@torch.no_grad()
def _evaluate(
    model: ProxyLM, eval_sets: dict[str, _EvalSet], device: torch.device
) -> dict[str, float]:
    """Bits per byte of every source: Σ nats / (Σ bytes · ln 2) over its evaluation windows.

    Always the eager model in float32, whatever the training's compile/bf16 settings: losses of
    runs that trained in different modes (e.g. short eager runs and long compiled ones) are then
    measured alike, and a compiled model is not recompiled for inference.
    """
    model.eval()
    cfg = model.cfg
    per_batch = max(1, min(64, EVAL_LOGIT_BYTES // (4 * cfg.context * cfg.vocab_size)))
    out: dict[str, float] = {}
    for src, es in eval_sets.items():
        total = 0.0
        for lo in range(0, es.windows.shape[0], per_batch):
            w = es.windows[lo : lo + per_batch].to(device)
            total += float(lm_loss(model(w[:, :-1]), w[:, 1:], reduction="sum").double())
        out[src] = total / (es.n_bytes * math.log(2))
    return out
