"""Selection evidence for the climb law's support-aware term and transfer form, on multilingual runs.

    python benchmarks/law_variants.py --runs DEMO_OUT/runs.db [--corpus DIR] [--folds 5]

Cross-validation holds out whole training runs (``RunTable.groups``: a run's rows at every budget
stay in one fold). Each variant's pooled out-of-fold absolute error is split by the target's own
share in the held-out row: ``zero`` (p = 0: the run never saw the language), ``trace``
(0 < p < 1%) and ``main`` (p ≥ 1%). Variants:

* ``climb`` without the support term (the law before it), ``isolated``;
* ``climb + support(n0)``: the support-aware term with the byte frequencies of the corpus the runs
  were trained on (``--corpus``, default the embedded one) and seen-count scale ``n0``;
* transfer forms with the support term: ``saturating`` (``φ_η`` on shares, κ free), ``linear``
  (η = 1) and ``tokens`` (saturation in donor *tokens*: ``w (p_j D)^η / D``, i.e. κ = 1 − η);
* the budget exponent (``budget_exponent="free"``: ``B r^(-β) D^(-δ)``) for ``climb`` and
  ``isolated``, against the shared ``B (r D)^(-β)``;
* the regression baseline (RegMix's LightGBM) with LightGBM's 20 runs per leaf and with the
  default ``min_child_samples="auto"`` (``n // 8`` within [3, 20]);
* the trace gate's scale ``T_0`` (``support_trace``: 300, 1000 = the default, 3000 tokens).
  Every row above these has ``support_trace=None`` (selected before the gate existed);
* the ceilings ``C_i`` of the seen part (``support_ceiling``, laws/climb/support.py): the last row,
  ``climb + support, ceilings (default)``, is the default law. Every row above it has
  ``support_ceiling=False`` (the seen part capped at ``L_0``: selected before the ceilings).

``--only TEXT`` runs only the variants whose name contains ``TEXT`` (repeatable).

With ``--verify`` (a demo's or the evidence study's ``verify.db``: runs trained at the target
budget ``D*``, beyond the proxies), each variant fitted on all proxies predicts them: ``D* bias``
(mean predicted − measured) and ``D* MAE``, the extrapolation in the budget that an allocation
relies on. The default climb law's ``p = 0`` errors are also split by the support gate (another
script, ``s = 1``, or a seen one).

Then the chosen law's Spearman ρ for ``pile_cc`` on the RegMix test sets (fitted on train 1M; the
RegMix runs have no corpus profile, so the support term is inactive there by construction).
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from climb.data.corpus import Corpus
from climb.data.runs import RunTable, read_regmix
from climb.errors import ClimbWarning
from climb.evaluation.cv import CVResult, cross_validate
from climb.evaluation.metrics import evaluate
from climb.laws import get_law
from climb.laws.climb import ClimbLaw
from climb.laws.climb.support import (
    SEEN_COUNT,
    UNSEEN_GATE,
    SupportProfile,
    SupportTerm,
    support_term_for,
)


class _NoConfidence(SupportTerm):
    """The support term without its ``L_0 − ℓ̄`` feature (``g_2 = 0``): the ablation."""

    def features(self, loss: np.ndarray, p: np.ndarray, tokens: Any) -> np.ndarray:
        x = super().features(loss, p, tokens)
        x[:, 2] = 0.0
        return x


def without_confidence(**kw: Any) -> ClimbLaw:
    """A climb law whose support term has ``G = g_0 + g_1 ln(D/D_ref)`` only."""
    law = ClimbLaw(**kw)
    make = law._support_term
    law._support_term = lambda runs: _NoConfidence(**vars(make(runs)))  # type: ignore[method-assign]
    return law


SHARES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "zero": lambda p: p == 0,
    "trace": lambda p: (p > 0) & (p < 0.01),
    "main": lambda p: p >= 0.01,
}


def read_runs(path: str) -> RunTable:
    if path.endswith(".db"):
        from climb.data.store import RunStore

        with RunStore(path, create=False) as rs:
            return rs.to_run_table()
    return RunTable.read(path)


def by_share(cv: CVResult, runs: RunTable) -> dict[str, tuple[float, int]]:
    """MAE and count of the out-of-fold errors by the target's own share in the row."""
    out = {}
    for name, sel in SHARES.items():
        errs = []
        for k, t in enumerate(runs.targets):
            if t not in runs.sources:
                continue
            m = sel(runs.p[:, runs.sources.index(t)]) & np.isfinite(runs.loss[:, k])
            errs.append(np.abs(cv.predictions[m, k] - runs.loss[m, k]))
        e = np.concatenate(errs) if errs else np.zeros(0)
        out[name] = (float(e.mean()) if e.size else float("nan"), int(e.size))
    return out


DEFAULT = "climb + support, ceilings (default)"
"""The default climb law's row (support term with the default ``n0``, ``τ``, trace gate ``T_0``
and ceilings)."""


def by_gate(cv: CVResult, runs: RunTable, profile: SupportProfile) -> dict[str, tuple[float, int]]:
    """MAE and count of the out-of-fold errors where ``p = 0``, split by the default support
    term's gate: another script (``s = 1``: ≥ 30% of the text made of bytes the run never saw)
    or a seen one (``s < 1``)."""
    s = support_term_for(profile, runs, SEEN_COUNT, UNSEEN_GATE).gate_weight(runs.p, runs.tokens)
    out = {}
    for name, sel in (("unseen script (s = 1)", s >= 1.0), ("seen script (s < 1)", s < 1.0)):
        errs = []
        for k, t in enumerate(runs.targets):
            if t not in runs.sources:
                continue
            m = (runs.p[:, runs.sources.index(t)] == 0) & sel[:, k] & np.isfinite(runs.loss[:, k])
            errs.append(np.abs(cv.predictions[m, k] - runs.loss[m, k]))
        e = np.concatenate(errs) if errs else np.zeros(0)
        out[name] = (float(e.mean()) if e.size else float("nan"), int(e.size))
    return out


def variants(profile: SupportProfile, seed: int) -> dict[str, Callable[[], Any]]:
    """The variants; every row before the trace-gate rows has ``support_trace=None`` (they were
    selected before the trace gate existed, and the gate only touches trace shares), every row
    before the last ``support_ceiling=False`` (selected before the ceilings)."""
    law = functools.partial(get_law, seed=seed)
    old = functools.partial(law, support_ceiling=False)
    sup = functools.partial(old, support=profile, support_trace=None)
    v: dict[str, Callable[[], Any]] = {
        "climb (no support term)": lambda: law("climb"),
        "isolated (no support term)": lambda: law("isolated"),
    }
    for n0, gate in ((100.0, 1.0), (1.0, 1.0), (1.0, 0.5), (1.0, 0.3), (10.0, 0.3)):
        v[f"climb + support n0={n0:g} τ={gate:g}"] = functools.partial(
            sup, "climb", support_count=n0, support_gate=gate
        )
    v["climb + support n0=1 τ=0.3, no ℓ̄"] = functools.partial(
        without_confidence, seed=seed, support=profile, support_trace=None, support_ceiling=False
    )
    for tr in ("linear", "tokens"):
        v[f"climb + support, transfer={tr}"] = functools.partial(sup, "climb", transfer=tr)
    v["climb + support, free δ"] = functools.partial(sup, "climb", budget_exponent="free")
    v["isolated + support"] = functools.partial(sup, "isolated")
    v["isolated + support, free δ"] = functools.partial(sup, "isolated", budget_exponent="free")
    v["regression + support, leaves ≥ 20"] = functools.partial(
        old, "regression", support=profile, min_child_samples=20
    )
    v["regression + support (auto leaves)"] = functools.partial(old, "regression", support=profile)
    for t0 in (300.0, 1000.0, 3000.0):
        name = f"climb + support, trace gate T0={t0:g}"
        v[name] = functools.partial(old, "climb", support=profile, support_trace=t0)
    v[DEFAULT] = functools.partial(law, "climb", support=profile)
    return v


def verify_errors(law: Any, verify: RunTable) -> tuple[float, float, int]:
    """Mean signed and absolute error of ``law``'s predictions of the verification runs (trained
    at the target budget D*, beyond the proxies), over their measured (row, target) pairs."""
    pred = law.predict(verify.p, verify.tokens)
    both = [t for t in verify.targets if t in law.targets_]  # e.g. not extra evaluation sets
    cols = [law.targets_.index(t) for t in both]
    err = pred[:, cols] - verify.loss[:, [verify.targets.index(t) for t in both]]
    err = err[np.isfinite(err)]
    return float(err.mean()), float(np.abs(err).mean()), int(err.size)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", required=True, help="run table (.csv/.parquet) or a sweep's runs.db")
    ap.add_argument("--corpus", default=None, help="corpus folder (default: the embedded one)")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-regmix", action="store_true", help="skip the RegMix check")
    ap.add_argument(
        "--verify", default=None,
        help="run table or store of verification runs at D* (e.g. a demo's verify.db): each "
        "variant fitted on all proxies predicts them (extrapolation in the budget)",
    )  # fmt: skip
    ap.add_argument(
        "--short", action="store_true", help="only climb without / with the default support term"
    )
    ap.add_argument("--only", action="append", default=[], metavar="TEXT",
                    help="only the variants whose name contains TEXT (repeatable)")  # fmt: skip
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f} (shared machine: timings are noisy)")  # fmt: skip
    runs = read_runs(args.runs)
    groups = np.asarray(runs.groups())
    n_runs = len(set(groups.tolist()))
    budgets = ", ".join(f"{d:,.0f}" for d in np.unique(runs.tokens))
    print(f"runs: {args.runs}: {len(runs)} rows from {n_runs} training runs at {budgets} tokens; "
          f"sources {', '.join(runs.sources)}; true-budget rows {int(runs.true_budget.sum())}")  # fmt: skip
    profile = SupportProfile.from_corpus(Corpus.open(args.corpus), list(runs.sources))
    folds = min(args.folds, n_runs)
    print(
        f"{folds}-fold CV, whole training runs held out (seed {args.seed}); out-of-fold MAE in "
        "the runs' unit by the target's own share in the row:"
    )
    verify = read_runs(args.verify) if args.verify else None
    if verify is not None:
        print(f"verification: {args.verify}: {len(verify)} rows at "
              f"{', '.join(f'{d:,.0f}' for d in np.unique(verify.tokens))} tokens; 'D* bias' / "
              "'D* MAE': error of the law fitted on all proxies on them")  # fmt: skip
    head = (f"{'variant':<36} {'MAE p=0':>9} {'MAE trace':>10} {'MAE p≥1%':>9} "
            f"{'MAE all':>8} {'ρ all':>7} {'fit s':>6}"
            + (f" {'D* bias':>8} {'D* MAE':>7}" if verify is not None else ""))  # fmt: skip
    print(head)
    print("-" * len(head))
    counts: dict[str, int] = {}
    cvs: dict[str, CVResult] = {}
    chosen = variants(profile, args.seed)
    if args.short:
        keep = ("climb (no support term)", "climb + support n0=100 τ=1",
                "climb + support n0=1 τ=0.3")  # fmt: skip
        chosen = {k: v for k, v in chosen.items() if k in keep}
    if args.only:
        chosen = {k: v for k, v in chosen.items() if any(t in k for t in args.only)}
    for name, factory in chosen.items():
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ClimbWarning)
            cv = cross_validate(factory, runs, folds, args.seed, groups=groups)
        cvs[name] = cv
        secs = (time.perf_counter() - t0) / folds
        bs = by_share(cv, runs)
        counts = {k: v[1] for k, v in bs.items()}
        line = (f"{name:<36} {bs['zero'][0]:>9.4f} {bs['trace'][0]:>10.4f} {bs['main'][0]:>9.4f} "
                f"{cv.overall['mae']:>8.4f} {cv.overall['spearman']:>+7.3f} {secs:>6.1f}")  # fmt: skip
        if verify is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ClimbWarning)
                bias, mae, _ = verify_errors(factory().fit(runs), verify)
            line += f" {bias:>+8.4f} {mae:>7.4f}"
        print(line)
    print(
        f"(pairs: p=0 {counts.get('zero')}, trace {counts.get('trace')}, "
        f"p≥1% {counts.get('main')}; 'fit s' = mean seconds per fold)"
    )
    if DEFAULT in cvs:
        parts = [
            f"{k} {v[0]:.4f} ({v[1]} pairs)"
            for k, v in by_gate(cvs[DEFAULT], runs, profile).items()
        ]
        print(f"{DEFAULT}, MAE where p = 0 by the support gate: " + "; ".join(parts))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        full = ClimbLaw(seed=args.seed, support=profile).fit(runs)
    sup = full.params_.support
    if sup is not None:
        print(
            f"support term fitted on all runs: G = {sup.g0[0]:.3f} + {sup.g1[0]:.3f} ln(D / "
            f"{sup.tokens_ref:,.0f}) + {np.asarray(sup.g2)[0]:.3f} (L0 − ℓ̄) (capped "
            f"at {2 * sup.untrained_loss:g}), n0 = {sup.n0:g}, τ = {sup.gate:g}; ceilings C_i "
            + ", ".join(f"{t} {c:.2f}" for t, c in zip(full.targets_, sup.seen_ceiling()))
        )
    if not args.no_regmix:
        train = read_regmix("train", "1m")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ClimbWarning)
            law = get_law("climb", seed=args.seed).fit(train)
        rho = {s: evaluate(law, read_regmix("test", s)).targets["pile_cc"]["spearman"]
               for s in ("1m", "60m", "1b")}  # fmt: skip
        print(
            "RegMix (climb fitted on train 1M, no corpus profile): pile_cc ρ "
            + " / ".join(f"{s} {v:.4f}" for s, v in rho.items())
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
