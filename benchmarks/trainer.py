"""Throughput of the proxy trainer against a plain minimal PyTorch loop.

For three model sizes (≈0.5M d128 L3, 2M d192 L5, 8M d384 L5; byte tokenizer, context 256,
batch 16, 1 torch thread) and three execution modes (eager fp32; torch.compile fp32;
torch.compile + bf16 autocast, fast only where the CPU computes bf16 natively), it
measures steady-state training tokens/s of

* ``trainer``: :func:`climb.proxy.train.train_run` (exact mixture schedule, seeded windows, cosine
  lr, clipping, finiteness checks), timed between its progress callbacks after warm-up;
* ``minimal``: the obvious loop written below — same model, batch, optimiser, dtype and compile
  settings, random windows from one array.

Each pair is measured alternately (trainer, minimal, trainer, minimal) and the best of each is kept,
which damps the noise of a shared machine. Compilation uses a fresh inductor cache (unless
``--warm-cache``), so the first repeat pays a cold compile and the second a warm one (a sweep's later
runs hit the on-disk cache); it prints both and the break-even run length
``compile_s / (1/eager − 1/compiled)`` behind ``CPU_COMPILE_MIN_TOKENS``.

    python benchmarks/trainer.py            # CPU (and CUDA if available), a few minutes
    python benchmarks/trainer.py --quick    # fewer steps, smallest model only
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence

if "--warm-cache" not in sys.argv:  # before torch reads its config
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="climb-bench-inductor-")

import numpy as np
import torch

from climb.proxy.config import ModelConfig, RunSpec, TrainConfig, cpu_native_bf16
from climb.proxy.model import ProxyLM, lm_loss
from climb.proxy.train import CPU_COMPILE_MIN_TOKENS, train_run

SIZES = [("0.5M d128 L3", 128, 3), ("2M d192 L5", 192, 5), ("8M d384 L5", 384, 5)]
B, T = 16, 256


class RandomTextCorpus:
    """Two sources of seeded pseudo-text bytes (throughput does not depend on content)."""

    def __init__(self, n_bytes: int = 1 << 21) -> None:
        rng = np.random.default_rng(0)
        self._data = {
            s: rng.integers(32, 127, size=n_bytes, dtype=np.uint8).tobytes() for s in ("aa", "bb")
        }

    @property
    def sources(self) -> Sequence[str]:
        return list(self._data)

    def text_bytes(self, source: str, split: str = "train") -> bytes:
        data = self._data[source]
        return data if split == "train" else data[: 1 << 14]


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _rates(n: int, a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    """(tokens per wall second, tokens per CPU second) between clocks ``a`` and ``b``."""
    return n / (b[0] - a[0]), n / (b[1] - a[1])


def minimal_loop(
    cfg: ModelConfig, steps: int, warm: int, device: str, compile_: bool, bf16: bool
) -> tuple[tuple[float, float], float]:
    """The obvious training loop; returns ((wall, CPU) tokens/s, seconds of the first step)."""
    torch.manual_seed(0)
    data = torch.randint(0, 256, (1 << 21,), dtype=torch.int64)
    model = ProxyLM(cfg).to(device)
    opt = torch.optim.AdamW(
        model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1, fused=device == "cuda"
    )
    fwd = torch.compile(model, dynamic=False) if compile_ else model
    offsets = torch.arange(T + 1)
    t_first = 0.0
    c_warm = _clock()
    t0 = time.perf_counter()
    for step in range(steps):
        ix = torch.randint(0, len(data) - T - 1, (B,))
        xy = data[ix[:, None] + offsets].to(device)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            loss = lm_loss(fwd(xy[:, :-1]), xy[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step == 0:
            loss.item()
            t_first = time.perf_counter() - t0
        if step + 1 == warm:
            loss.item()
            c_warm = _clock()
    loss.item()
    return _rates((steps - warm) * B * T, c_warm, _clock()), t_first


def trainer_run(
    cfg: ModelConfig, steps: int, warm: int, device: str, compile_: bool, bf16: bool
) -> tuple[tuple[float, float], float]:
    """train_run timed between progress reports; returns ((wall, CPU) tokens/s, first-step s)."""
    stamps: list[tuple[int, tuple[float, float]]] = []
    spec = RunSpec(
        run_id="bench",
        mixture={"aa": 0.5, "bb": 0.5},
        tokens=steps * B * T,
        model=cfg,
        train=TrainConfig(
            device=device,  # type: ignore[arg-type]
            compile=compile_,
            bf16=bf16,
            threads=torch.get_num_threads(),
            checkpoints=(),
            eval_bytes=4096,
            lr=1e-3,
        ),
    )
    corpus = RandomTextCorpus()
    t0 = time.perf_counter()
    train_run(spec, corpus, progress=lambda n: stamps.append((n, _clock())))
    first = stamps[0][1][0] - t0  # the first report comes after step 1 (steps ≤ 100)
    n_warm, c_warm = stamps[warm - 1]
    n_end, c_end = stamps[-1]
    return _rates(n_end - n_warm, c_warm, c_end), first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smallest model, fewer steps")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--warm-cache", action="store_true", help="keep torch's inductor cache")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    sizes = SIZES[:1] if args.quick else SIZES
    print(
        f"# proxy trainer throughput: torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, {args.threads} thread(s), batch {B} x context {T}, bytes; "
        f"native bf16 on this CPU (AVX512-BF16/AMX): {cpu_native_bf16()}"
    )
    print(
        "tok/s = tokens per wall second; tok/cpu-s = per CPU second of this process (robust to a"
        " busy machine); ratio = trainer / minimal, in tok/cpu-s on CPU, tok/s on CUDA"
    )
    print(
        f"{'device':6} {'model':13} {'mode':13} {'trainer tok/s':>13} {'minimal tok/s':>13} "
        f"{'trainer tok/cpu-s':>17} {'minimal tok/cpu-s':>17} {'ratio':>6} {'1st step s (cold/warm)':>22}"
    )
    eager_rate: dict[str, float] = {}
    eager_first: dict[str, float] = {}
    for device in devices:
        for name, d, layers in sizes:
            cfg = ModelConfig(d_model=d, n_layers=layers, n_heads=4, context=T)
            for mode, compile_, bf16 in (
                ("eager fp32", False, False),
                ("compile fp32", True, False),
                ("compile bf16", True, True),
            ):
                if device == "cuda":
                    steps, warm = 60, 20
                else:
                    steps = {128: 24, 192: 14, 384: 8}[d] if not args.quick else 12
                    steps += 6 if compile_ else 0
                    warm = 6 if compile_ else 3
                tw = tc = mw = mc = 0.0
                firsts: list[float] = []
                for _ in range(args.repeats):
                    (rtw, rtc), ft = trainer_run(cfg, steps, warm, device, compile_, bf16)
                    (rmw, rmc), _ = minimal_loop(cfg, steps, warm, device, compile_, bf16)
                    tw, tc, mw, mc = max(tw, rtw), max(tc, rtc), max(mw, rmw), max(mc, rmc)
                    firsts.append(ft)
                ratio = tc / mc if device == "cpu" else tw / mw
                first_txt = "/".join(f"{f:.1f}" for f in firsts[:2])
                print(
                    f"{device:6} {name:13} {mode:13} {tw:13.0f} {mw:13.0f} {tc:17.0f} {mc:17.0f} "
                    f"{ratio:6.2f} {first_txt:>22}",
                    flush=True,
                )
                if mode == "eager fp32":
                    eager_rate[name], eager_first[name] = tc, min(firsts)
                elif device == "cpu":
                    # compile overhead = first compiled step − first eager step; it pays for itself
                    # after compile_s / (1/eager − 1/compiled) tokens
                    gain = 1 / eager_rate[name] - 1 / tc
                    evens = [
                        max(0.0, f - eager_first[name]) / gain if gain > 0 else math.inf
                        for f in firsts[:2]
                    ]
                    print(
                        f"{'':6} {name:13} {mode} = {tc / eager_rate[name]:.2f}x eager "
                        f"(CPU time); break-even run length "
                        f"{' / '.join(f'{e / 1e6:.2f}M' for e in evens)} tokens (cold / warm cache; "
                        f"CPU_COMPILE_MIN_TOKENS = {CPU_COMPILE_MIN_TOKENS / 1e6:.1f}M)",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
