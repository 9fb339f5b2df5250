"""The support-aware term on BPE proxies: token frequencies instead of byte frequencies.

    python benchmarks/bpe_support.py              # train (or resume) the proxies, then report
    python benchmarks/bpe_support.py --report-only

The default demo's six languages (en, fr, ru, ja, ko, hi), its model and training settings, but
the proxy trainer's BPE tokenizer (8,192 tokens, trained on the embedded corpus) instead of bytes:
``design_runs`` with the same budgets (300k / 600k tokens), 18 WSD runs, seed 0 and 4-epoch caps
counted in BPE tokens (``output/bpe_support/plan.yaml``), trained into
``output/bpe_support/runs.db`` (resumable). Losses are bits per byte, as for every tokenizer.

Until 2026-12-02 the support-aware term existed for byte-level proxies only (``climb fit
--corpus`` read byte frequencies; the demo skipped it for other tokenizers), so a BPE user's law
had none. Compared, the climb law (unique tokens in BPE tokens, as the demo passes them):

* **no term**: what a BPE user's law was;
* **byte frequencies**: the byte-level profile on these runs (``D`` counts tokens, not bytes: a
  unit mismatch, shown for reference);
* **token frequencies** (``SupportProfile.from_corpus(corpus, names, tokenizer)``): the BPE's
  token unigram frequencies, ``L_0 = log2 V`` bits per token at the corpus' mean tokens per byte.

Printed: 5-fold CV (whole training runs held out, seed 0) by the target's own share, and the Climb
allocation at D* = 1.2M tokens under the caps with the share it gives each language.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

from climb.allocation.constraints import Constraints
from climb.allocation.solve import allocate
from climb.data.corpus import Corpus
from climb.data.store import RunStore
from climb.demo import grouped_cross_validate
from climb.errors import ClimbWarning
from climb.laws import get_law
from climb.laws.climb.support import SupportProfile
from climb.proxy.design import Plan, design_runs
from climb.proxy.executors import LocalExecutor
from climb.proxy.sweep import run_sweep
from climb.proxy.tokenize import get_tokenizer

HERE = Path(__file__).resolve().parent / "output"
DEMO_PLAN = HERE / "demo-fresh-2026-12-01" / "plan.yaml"
TARGET = 1_200_000


def bpe_plan(corpus: Corpus) -> tuple[Plan, dict[str, int]]:
    """The default demo's design with the BPE tokenizer (caps in BPE tokens)."""
    demo = Plan.load(DEMO_PLAN)
    model = demo.model.model_copy(update={"tokenizer": "bpe"})
    unique = corpus.unique_tokens(get_tokenizer(model, corpus), sources=demo.sources)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        plan = design_runs(demo.sources, demo.budgets, len(demo.runs), seed=0,
                           unique_tokens=unique, max_epochs=4.0, model=model,
                           train=demo.train)  # fmt: skip
    plan.design["corpus"] = "embedded"
    return plan, unique


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", type=Path, default=HERE / "bpe_support" / "runs.db")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    warnings.simplefilter("ignore", ClimbWarning)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}")  # fmt: skip
    corpus = Corpus.open(None)
    plan, unique = bpe_plan(corpus)
    if not args.report_only:
        args.store.parent.mkdir(parents=True, exist_ok=True)
        plan.save(args.store.parent / "plan.yaml")
        t0 = time.perf_counter()
        res = run_sweep(plan, args.store, executor=LocalExecutor(workers=args.workers))
        print(f"trained {len(res.trained)} run(s), {len(res.skipped)} stored before, "
              f"{time.perf_counter() - t0:.0f} s")  # fmt: skip
    with RunStore(args.store, create=False) as rs:
        runs = rs.to_run_table()
    print(f"{len(runs)} rows of {len(set(runs.train_run))} BPE-8192 proxies; unique BPE tokens "
          + ", ".join(f"{s} {u:,}" for s, u in unique.items()))  # fmt: skip
    names = list(runs.sources)
    tok = get_tokenizer(plan.model, corpus)
    profiles = {
        "no term": None,
        "byte frequencies": SupportProfile.from_corpus(corpus, names),
        "token frequencies": SupportProfile.from_corpus(corpus, names, tok),
    }
    u = {s: float(unique[s]) for s in names}
    cons = Constraints(unique_tokens=u, max_epochs=4.0)
    for label, profile in profiles.items():
        hyper = {"unique_tokens": u, "support": profile}
        t0 = time.perf_counter()
        cv = grouped_cross_validate("climb", runs, 5, seed=0, fold_jobs=args.workers, **hyper)
        law = get_law("climb", seed=0, **hyper).fit(runs)
        alloc = allocate(law, TARGET, None, constraints=cons)
        l0 = f", L_0 {profile.untrained_loss:.3f} bits/byte" if profile is not None else ""
        print(f"\n{label}{l0} ({time.perf_counter() - t0:.0f} s)")
        print(f"  CV overall MAE {cv.metrics.overall['mae']:.4f}; {cv.by_share_line()}")
        mix = ", ".join(f"{s} {p:.3f}" for s, p in alloc.proportions_dict().items())
        print(f"  Climb allocation at D* = {TARGET:,}: {mix}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
