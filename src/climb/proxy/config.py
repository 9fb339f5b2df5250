"""Typed configuration of one proxy training run.

A proxy run trains a small decoder-only transformer (:mod:`climb.proxy.model`) on a language
mixture ``p`` for ``D`` training tokens and measures each source's validation loss in bits per
byte; its rows feed the run table (:mod:`climb.data.runs`) from which the Climb law is fitted.

* :class:`ModelConfig` — the model (its non-embedding size is the law's ``N``),
* :class:`TrainConfig` — optimisation and where it runs,
* :class:`RunSpec` — one planned run: id, mixture ``p``, budget ``D``, model, training.

All three are frozen pydantic models that reject unknown keys. This module does not import torch:
a planner can build and hash specs on a machine without it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from climb.errors import ClimbError

MIXTURE_TOLERANCE = 1e-6
"""A mixture's proportions must sum to 1 within this."""

BYTE_VOCAB = 256
"""Vocabulary of the byte-level tokenizer: one token per byte value."""

EXECUTION_FIELDS = frozenset({"device", "compile", "bf16", "threads"})
""":class:`TrainConfig` fields that say *where/how fast* a run executes, not *what* it measures;
they are left out of :meth:`RunSpec.spec_hash`."""

WSD_FIELDS = ("schedule", "cooldown_frac", "cooldown_shape")
""":class:`TrainConfig` fields of the WSD schedule; absent from the spec hash of cosine runs."""


@runtime_checkable
class CorpusLike(Protocol):
    """What the trainer needs from a corpus (``climb.data.corpus.Corpus`` satisfies it)."""

    @property
    def sources(self) -> Sequence[str]: ...

    def text_bytes(self, source: str, split: str = "train") -> bytes: ...


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelConfig(_Frozen):
    """A nanoGPT-like decoder: ``n_layers`` pre-LayerNorm blocks of width ``d_model``.

    Each block has causal self-attention (``n_heads`` heads, no biases) and a GELU MLP of width
    ``mlp_ratio · d_model``; token embedding tied with the output head, learned positions.
    """

    d_model: int = Field(default=128, ge=8)
    n_layers: int = Field(default=3, ge=1)
    n_heads: int = Field(default=4, ge=1)
    context: int = Field(default=256, ge=8)
    tokenizer: str = "bytes"
    """``"bytes"``, ``"bpe"`` (byte-level BPE trained on the corpus) or the user's tokenizer: a
    ``tokenizer.json``, a tokenizer folder or a Hugging Face name (local paths are made absolute)."""
    bpe_vocab: int = Field(default=8192, ge=300, le=65535)
    mlp_ratio: int = Field(default=4, ge=1)

    @model_validator(mode="after")
    def _heads_divide_width(self) -> ModelConfig:
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}; "
                "pick n_heads that divides d_model"
            )
        return self

    @field_validator("tokenizer")
    @classmethod
    def _tokenizer_name(cls, v: str) -> str:
        if not v.strip():
            raise ValueError(
                "tokenizer must be 'bytes', 'bpe', a tokenizer.json, a folder or a name"
            )
        path = Path(v).expanduser()
        return str(path.resolve()) if v not in ("bytes", "bpe") and path.exists() else v

    @property
    def vocab_size(self) -> int:
        """256 for bytes, ``bpe_vocab`` for BPE, the user's tokenizer's vocabulary otherwise."""
        if self.tokenizer in ("bytes", "bpe"):
            return BYTE_VOCAB if self.tokenizer == "bytes" else self.bpe_vocab
        from climb.data.tokenizer import load_tokenizer

        return load_tokenizer(self.tokenizer).vocab_size

    def non_embedding_params(self) -> int:
        """The law's ``N``: parameters outside the token and position embeddings.

        Per block: attention ``4·d²`` (q, k, v, out), MLP ``2·mlp_ratio·d²``, two LayerNorm
        weights ``2·d``; plus the final LayerNorm ``d``. The output head is tied to the token
        embedding, so it is not counted. (d128 L3 → 0.59M, d192 L5 → 2.2M, d384 L5 → 8.9M.)
        """
        d = self.d_model
        per_block = 4 * d * d + 2 * self.mlp_ratio * d * d + 2 * d
        return self.n_layers * per_block + d


def cpu_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX tiles, as torch reports).
    Without it, bf16 autocast is emulated: 4.5k against 14.7k tokens/s for float32 for the demo's
    0.6M-parameter model on one thread of an AVX-512 CPU without BF16 (``benchmarks/trainer.py``,
    RESULTS.md). False when torch is not installed."""
    try:
        import torch
    except ImportError:
        return False
    checks = [getattr(torch.cpu, n, None) for n in ("_is_avx512_bf16_supported",
                                                     "_is_amx_tile_supported")]  # fmt: skip
    return any(bool(f()) for f in checks if callable(f))


class TrainConfig(_Frozen):
    """AdamW with linear warmup, then a cosine or a warmup-stable-decay (WSD) schedule.

    ``schedule="cosine"``: cosine decay to ``min_lr_ratio · lr`` over the run; ``checkpoints``
    rows are mid-schedule (``true_budget=False``). ``schedule="wsd"`` (Hägele et al. 2024): constant
    ``lr`` after warmup, and at each budget of the run (:attr:`RunSpec.branches` and
    :attr:`RunSpec.tokens`) a cooldown of ``cooldown_frac`` of that budget decays the LR to 0
    (``cooldown_shape`` ``"sqrt"``: ``lr·(1 − √x)``, or ``"linear"``: ``lr·(1 − x)``), so every row
    is a true budget; ``checkpoints`` are not used. Designs default to WSD
    (:func:`climb.proxy.design.design_runs`); a bare ``TrainConfig`` keeps cosine so that older plan
    files mean what they meant.

    ``device``/``compile``/``bf16`` = ``"auto"``: on CUDA, torch.compile and bf16 autocast are on;
    on CPU both are on only for runs of at least ``climb.proxy.train.CPU_COMPILE_MIN_TOKENS``
    tokens (compiling costs 17–30 s cold), and bf16 only where the CPU computes it natively
    (:func:`cpu_native_bf16`; elsewhere it is emulated and ~3× slower than float32). bf16 without
    compile is never used on CPU (10× slower).
    ``eval_bytes`` held-out bytes of every source are evaluated at the end and at each
    ``checkpoints`` fraction of the budget.
    """

    batch_size: int = Field(default=16, ge=1)
    lr: float = Field(default=3e-3, gt=0)
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1)
    warmup_frac: float = Field(default=0.05, ge=0, lt=1)
    weight_decay: float = Field(default=0.1, ge=0)
    grad_clip: float = Field(default=1.0, ge=0)
    beta1: float = Field(default=0.9, ge=0, lt=1)
    beta2: float = Field(default=0.95, ge=0, lt=1)
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compile: bool | Literal["auto"] = "auto"
    bf16: bool | Literal["auto"] = "auto"
    threads: int = Field(default=1, ge=0, description="torch CPU threads; 0 leaves torch's default")
    eval_bytes: int = Field(default=65536, ge=64)
    checkpoints: tuple[float, ...] = (0.25, 0.5)
    schedule: Literal["cosine", "wsd"] = "cosine"
    cooldown_frac: float = Field(default=0.2, gt=0, le=1)
    cooldown_shape: Literal["sqrt", "linear"] = "sqrt"

    @field_validator("checkpoints")
    @classmethod
    def _fractions(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        for f in v:
            if not 0 < f < 1:
                raise ValueError(f"checkpoint fraction {f} must be in (0, 1)")
        if len(set(v)) != len(v):
            raise ValueError("checkpoint fractions must be distinct")
        return tuple(sorted(v))


class RunSpec(_Frozen):
    """One planned proxy run: train on mixture ``p`` for ``D = tokens`` training tokens.

    ``mixture`` maps every source to evaluate to its proportion (0 = evaluated, never sampled);
    proportions are ≥ 0 and sum to 1. ``branches`` (WSD only) are smaller budgets ``D_k < D`` at
    which the run branches a cooldown and is evaluated at exactly ``D_k`` tokens. Rows other than
    the last get run id ``f"{run_id}@{tokens}"`` and every row has ``train_run = run_id``, so
    ``run_id`` may not contain ``@``.
    """

    run_id: str = Field(min_length=1)
    mixture: dict[str, float]
    tokens: int = Field(gt=0)
    branches: tuple[int, ...] = ()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()

    @field_validator("run_id")
    @classmethod
    def _run_id(cls, v: str) -> str:
        if "@" in v or v.strip() != v or not v:
            raise ClimbError(
                f"run spec: run_id '{v}' must be non-empty, without '@' or edge spaces"
            )
        return v

    @field_validator("branches")
    @classmethod
    def _sorted_branches(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(v)) != len(v):
            raise ValueError(f"branches {list(v)} must be distinct")
        return tuple(sorted(v))

    @field_validator("mixture")
    @classmethod
    def _mixture(cls, v: dict[str, float]) -> dict[str, float]:
        return check_mixture(v, origin="run spec")

    @model_validator(mode="after")
    def _branches_fit(self) -> RunSpec:
        if self.branches:
            if self.train.schedule != "wsd":
                raise ClimbError(
                    f"run spec '{self.run_id}': branches need train.schedule='wsd' "
                    f"(it is '{self.train.schedule}')"
                )
            if any(b <= 0 or b >= self.tokens for b in self.branches):
                raise ClimbError(
                    f"run spec '{self.run_id}': branches {list(self.branches)} must lie in "
                    f"(0, tokens={self.tokens})"
                )
        return self

    @property
    def budgets(self) -> tuple[int, ...]:
        """The run's true budgets, ascending: its WSD ``branches`` and ``tokens``."""
        return (*self.branches, self.tokens)

    def spec_hash(self) -> str:
        """A 16-hex-digit digest of what the run measures (execution settings excluded).

        Two specs with the same hash train the same model on the same data for the same budget;
        a run store uses it to detect a changed plan. ``device``, ``compile``, ``bf16`` and
        ``threads`` (see :data:`EXECUTION_FIELDS`) do not enter the hash. Fields added with the WSD
        schedule are left out while they are at their cosine defaults, so specs written before
        them keep their hash.
        """
        data = self.model_dump(mode="json")
        data["train"] = {k: v for k, v in data["train"].items() if k not in EXECUTION_FIELDS}
        if not data["branches"]:
            del data["branches"]
        if data["train"]["schedule"] == "cosine":
            for key in WSD_FIELDS:
                del data["train"][key]
        data["mixture"] = {k: data["mixture"][k] for k in sorted(data["mixture"])}
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, origin: str = "run spec") -> RunSpec:
        """Validate a plain mapping; a bad field raises a one-line :class:`ClimbError`."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise ClimbError(f"{origin}: {_first_error(exc)}") from None


def check_mixture(mixture: Mapping[str, float], *, origin: str = "mixture") -> dict[str, float]:
    """Check proportions: non-empty, finite, ≥ 0, summing to 1 within :data:`MIXTURE_TOLERANCE`."""
    if not mixture:
        raise ClimbError(f"{origin}: empty mixture; give at least one source with proportion > 0")
    out: dict[str, float] = {}
    for src, val in mixture.items():
        if not isinstance(src, str) or not src:
            raise ClimbError(f"{origin}: mixture key {src!r} is not a source name")
        x = float(val)
        if not math.isfinite(x) or x < 0:
            raise ClimbError(f"{origin}: proportion of '{src}' is {val}; it must be finite and ≥ 0")
        out[src] = x
    total = math.fsum(out.values())
    if abs(total - 1.0) > MIXTURE_TOLERANCE:
        raise ClimbError(
            f"{origin}: mixture proportions sum to {total:.6g}, not 1; rescale them so they sum to 1"
        )
    return out


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err["loc"]) or "spec"
    extra = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"field '{loc}': {err['msg']}{extra}"
