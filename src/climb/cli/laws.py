"""Verbs for laws: ``climb fit``, ``evaluate``, ``cv``, ``effective-ratio``, ``simulate``."""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from climb.cli.parsing import check_process_count, proxy_tokenizer
from climb.data.runs import RunTable
from climb.errors import ClimbError
from climb.laws import LAWS, law_class, load_law
from climb.laws.base import Law

TRANSFERS = ("saturating", "linear")
BUDGET_HELP = (
    "climb / isolated: 'shared' (default) — the loss depends on the effective tokens, B (r·D)^-β; "
    "'free' — B r^-β D^-δ with a budget exponent δ of its own (needs runs at ≥ 2 budgets)"
)


UNIQUE_HELP = (
    "climb / isolated: unique tokens per source (CSV source,tokens, e.g. from `climb corpus stats "
    "--unique-tokens-out`): epochs beyond the first count less in the effective data, S(T; U), "
    "with the decay λ fitted when runs repeat data (docs/laws.md)"
)

CORPUS_HELP = (
    "the support-aware term (every law) for languages a run leaves out or holds at a trace share, "
    "from the item frequencies of this corpus folder ('embedded': the shipped corpus) under "
    "--tokenizer"
)
TOKENIZER_HELP = (
    "with --corpus: the proxies' tokenizer, whose token frequencies the support-aware term uses: "
    "'bytes' (default), 'bpe' or 'bpe:V' (the proxy trainer's BPE of V tokens, default 8192, "
    "trained on --corpus as the sweep did), or a tokenizer.json / Hugging Face tokenizer folder"
)


def register(sub: argparse._SubParsersAction) -> None:
    names = ", ".join(LAWS)
    p = sub.add_parser(
        "fit",
        help="fit a law to run tables and save it as JSON",
        description=f"Fit a law ({names}) to the measured losses of proxy runs.",
    )
    p.add_argument("runs", nargs="+", help="run table(s) (.csv, .parquet, .jsonl)")
    p.add_argument("--law", default="climb", help=f"law to fit (default climb; one of: {names})")
    p.add_argument("--out", required=True, help="where to write the fitted law (.json)")
    p.add_argument("--seed", type=int, default=0, help="seed of the multi-start fit (default 0)")
    p.add_argument("--jobs", type=int, default=1, help="parallel per-target fits (-1 = all CPUs)")
    p.add_argument("--transfer", choices=TRANSFERS,
                   help="climb-family laws: saturating transfer r_i = p_i + Σ_j W_ij φ_η(p_j) with "
                   "fitted η (default) or linear r = W p (η = 1)")  # fmt: skip
    p.add_argument("--budget-exponent", choices=("shared", "free"), help=BUDGET_HELP)
    p.add_argument("--corpus", help=CORPUS_HELP)
    p.add_argument("--tokenizer", default="bytes", help=TOKENIZER_HELP)
    p.add_argument("--unique-tokens", metavar="CSV", help=UNIQUE_HELP)
    p.set_defaults(func=run_fit)

    p = sub.add_parser(
        "evaluate",
        help="metrics of a fitted law on runs (MAE, MAPE, R², Spearman)",
        description="Predict the runs' losses with a fitted law and report per-target and "
        "overall MAE, MAPE, R² and Spearman ρ.",
    )
    p.add_argument("law", help="fitted law JSON (from climb fit, or written by hand)")
    p.add_argument("runs", nargs="+", help="run table(s) to evaluate on")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run_evaluate)

    p = sub.add_parser(
        "cv",
        help="k-fold cross-validation of a law on runs",
        description="k-fold cross-validation: fit on k−1 folds, predict the held-out fold; "
        "report metrics of the pooled out-of-fold predictions.",
    )
    p.add_argument("runs", nargs="+", help="run table(s)")
    p.add_argument(
        "--law", default="climb", help=f"law to validate (default climb; one of: {names})"
    )
    p.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")
    p.add_argument("--seed", type=int, default=0, help="fold shuffling and fit seed (default 0)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--predictions", help="also write the out-of-fold predictions (CSV)")
    p.add_argument("--jobs", type=int, default=-1,
                   help="fit the folds in parallel processes (default -1: one per CPU, at most "
                   "--folds; 1: serially; the result is the same for any value)")  # fmt: skip
    p.add_argument("--repeats", type=int, default=1,
                   help="repeat the CV over this many splits into folds (seeds --seed, "
                   "--seed+1, …) and report the mean ± std [min, max] of the MAE over them, "
                   "overall and by own share (default 1)")  # fmt: skip
    p.add_argument("--transfer", choices=TRANSFERS,
                   help="climb-family laws: saturating (default) or linear transfer")  # fmt: skip
    p.add_argument("--budget-exponent", choices=("shared", "free"), help=BUDGET_HELP)
    p.add_argument("--corpus", help=CORPUS_HELP)
    p.add_argument("--tokenizer", default="bytes", help=TOKENIZER_HELP)
    p.add_argument("--unique-tokens", metavar="CSV", help=UNIQUE_HELP)
    p.set_defaults(func=run_cv)

    p = sub.add_parser(
        "effective-ratio",
        help="observed effective ratios r̂ of runs under a fitted climb-family law",
        description="Invert the isolated part of a fitted climb / climb-msl / isolated law for "
        "each run and target (CLIMB.md §2) and show r̂ next to p and the law's own r "
        "(= W(D) p for linear transfer).",
    )
    p.add_argument("law", help="fitted law JSON (climb, climb-msl or isolated)")
    p.add_argument("runs", nargs="+", help="run table(s)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON records")
    out.add_argument("--out", help="write a CSV (run, tokens, target, p, r_law, r_observed)")
    p.set_defaults(func=run_effective_ratio)

    _register_simulate(sub)


def _register_simulate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="draw a random climb law and proxy runs from it (synthetic ground truth)",
        description="Draw a random climb law with positive and negative transfer, write it "
        "(--truth) and runs drawn from it with log-normal noise (--out).",
    )
    p.add_argument("--sources", type=int, default=4, help="number of sources K (default 4)")
    p.add_argument("--runs", type=int, default=64, help="number of runs (default 64)")
    p.add_argument(
        "--tokens", type=float, nargs="+", default=[1e9], help="token budget(s) (default 1e9)"
    )
    p.add_argument("--params", type=float, nargs="+", help="model size(s) N (default: none)")
    p.add_argument(
        "--noise", type=float, default=0.01, help="log-normal loss noise σ (default 0.01)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--eta", type=float, default=1.0,
        help="transfer saturation η of the true law, in (0, 1] (default 1 = linear r = W p)",
    )  # fmt: skip
    p.add_argument(
        "--eval-only", type=int, default=0,
        help="extra evaluation-only targets x1..xM (loss, no share; default 0)",
    )  # fmt: skip
    p.add_argument("--truth", help="where to write the true law (.json)")
    p.add_argument("--out", required=True, help="where to write the runs (.csv, .parquet, .jsonl)")
    p.set_defaults(func=run_simulate)


# ---------------------------------------------------------------------- helpers
def read_runs(paths: list[str]) -> RunTable:
    """One run table from one or more files."""
    tables = [RunTable.read(p) for p in paths]
    return tables[0] if len(tables) == 1 else RunTable.concat(tables)


def support_profile(corpus: str | None, runs: RunTable, tokenizer: str = "bytes") -> Any:
    """``--corpus DIR|embedded``: the item frequencies of the runs' languages in that corpus under
    ``--tokenizer`` (the climb law's support-aware term), or None without ``--corpus``."""
    if corpus is None:
        if tokenizer != "bytes":
            raise ClimbError("--tokenizer goes with --corpus (the support-aware term's text)")
        return None
    from climb.data.corpus import Corpus
    from climb.laws.climb.support import SupportProfile

    names = list(dict.fromkeys([*runs.sources, *runs.targets]))
    opened = Corpus.open(None if corpus == "embedded" else corpus)
    return SupportProfile.from_corpus(opened, names, proxy_tokenizer(tokenizer, opened))


def make_law(
    name: str,
    seed: int | None = None,
    jobs: int | None = None,
    transfer: str | None = None,
    support: Any = None,
    budget_exponent: str | None = None,
    unique_tokens: dict[str, float] | None = None,
) -> Law:
    """An unfitted law; ``seed`` / ``n_jobs`` / ``transfer`` / ``support`` / ``budget_exponent`` /
    ``unique_tokens`` are passed only to laws that take them (``--transfer``, ``--corpus``,
    ``--budget-exponent`` or ``--unique-tokens`` given for another law is an error)."""
    cls = law_class(name)
    accepted = inspect.signature(cls.__init__).parameters
    hyper: dict[str, Any] = {}
    if support is not None:
        if "support" not in accepted:
            raise ClimbError(f"--corpus applies to laws with the support-aware term, not '{name}'")
        hyper["support"] = support
    if transfer is not None:
        if "transfer" not in accepted:
            raise ClimbError(f"--transfer applies to climb-family laws only, not '{name}'")
        hyper["transfer"] = transfer
    if budget_exponent is not None:
        if "budget_exponent" not in accepted:
            raise ClimbError(
                f"--budget-exponent applies to the climb and isolated laws only, not '{name}'"
            )
        hyper["budget_exponent"] = budget_exponent
    if unique_tokens is not None:
        if "unique_tokens" not in accepted:
            raise ClimbError(
                f"--unique-tokens applies to the climb and isolated laws only, not '{name}'"
            )
        hyper["unique_tokens"] = unique_tokens
    if seed is not None and "seed" in accepted:
        hyper["seed"] = seed
    if jobs is not None and jobs != 1 and "n_jobs" in accepted:
        hyper["n_jobs"] = jobs
    return cls(**hyper)


def _rows(runs: RunTable) -> str:
    """``"16 rows of 8 training runs"`` (``"60 runs"`` where each run is one row)."""
    n = len(set(runs.train_run))
    return f"{len(runs)} runs" if n == len(runs) else f"{len(runs)} rows of {n} training runs"


def _check_out(path: str, suffixes: tuple[str, ...], option: str) -> Path:
    out = Path(path)
    if out.suffix.lower() not in suffixes:
        raise ClimbError(f"{option} {path}: expected a {' or '.join(suffixes)} file")
    if out.is_dir():
        raise ClimbError(f"{option} {path}: is a directory")
    return out


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def _print_json(obj: Any) -> None:
    print(json.dumps(_json_safe(obj), indent=2, allow_nan=False))


# ---------------------------------------------------------------------- verbs
def run_fit(args: argparse.Namespace) -> int:
    # unknown name or option fails before reading
    unique = _unique_tokens(args)
    law = make_law(args.law, seed=args.seed, jobs=args.jobs, transfer=args.transfer,
                   budget_exponent=args.budget_exponent, unique_tokens=unique)  # fmt: skip
    if args.corpus is not None:
        make_law(args.law, support=object())  # --corpus for a law without the term fails here
    out = _check_out(args.out, (".json",), "--out")
    runs = read_runs(args.runs)
    profile = support_profile(args.corpus, runs, args.tokenizer)
    if profile is not None:
        law = make_law(args.law, seed=args.seed, jobs=args.jobs, transfer=args.transfer,
                       support=profile, budget_exponent=args.budget_exponent,
                       unique_tokens=unique)  # fmt: skip
    t0 = time.perf_counter()
    law.fit(runs)
    elapsed = time.perf_counter() - t0
    law.save(out)
    extra = f", evaluation-only: {', '.join(law.eval_only_)}" if law.eval_only_ else ""
    print(
        f"fitted {law.name} law on {_rows(runs)} ({len(law.sources_)} sources, "
        f"{len(law.targets_)} targets{extra}) in {elapsed:.2f} s; wrote {out}"
    )
    if unique is not None:
        print(f"repeated data: {_repetition_line(law, runs, unique)}")
    return 0


def _unique_tokens(args: argparse.Namespace) -> dict[str, float] | None:
    """``--unique-tokens CSV``, read (a one-line error for a bad file)."""
    if args.unique_tokens is None:
        return None
    from climb.allocation.problem import read_unique_tokens

    return read_unique_tokens(args.unique_tokens)


def _repetition_line(law: Law, runs: RunTable, counts: dict[str, float]) -> str:
    """What the fit made of repeated data (``counts``: ``--unique-tokens``): the decay λ, fitted or
    the default."""
    import numpy as np

    from climb.laws.climb import ClimbLaw
    from climb.laws.climb.repetition import FIT_EPOCHS, repeats

    assert isinstance(law, ClimbLaw)  # make_law takes unique_tokens for these only
    unique = np.array([counts[s] for s in runs.sources])
    most = float(np.max(runs.p * runs.tokens[:, None] / unique))
    how = ("fitted" if repeats(runs.p, runs.tokens, unique)
           else f"the default 1/15.4: fewer than 3 runs train a source beyond {FIT_EPOCHS:g} epochs")  # fmt: skip
    return (f"λ = {law.params_.lam:.4g} ({how}); the runs reach {most:.2f} epochs of a source; "
            "an epoch beyond the first is worth exp(−λ (epochs − 1)) of one")  # fmt: skip


def run_evaluate(args: argparse.Namespace) -> int:
    from climb.evaluation.metrics import evaluate

    law = load_law(args.law)
    runs = read_runs(args.runs)
    result = evaluate(law, runs)
    if args.json:
        _print_json(result.to_json())
    else:
        print(f"{law.name} law on {_rows(runs)}")
        print(result.table())
    return 0


def run_cv(args: argparse.Namespace) -> int:
    from climb.evaluation.cv import repeated_cross_validate

    name = args.law
    unique = _unique_tokens(args)
    make_law(name, transfer=args.transfer, budget_exponent=args.budget_exponent,
             unique_tokens=unique)  # fails early  # fmt: skip
    if args.corpus is not None:
        make_law(name, support=object())  # --corpus for a law without the term fails here
    check_process_count(args.jobs)
    if args.repeats < 1:
        raise ClimbError(f"--repeats must be ≥ 1, got {args.repeats}")
    if args.repeats > 1 and args.predictions:
        raise ClimbError("--predictions writes one split's predictions: use it with --repeats 1")
    runs = read_runs(args.runs)
    profile = support_profile(args.corpus, runs, args.tokenizer)
    factory = functools.partial(make_law, name, seed=args.seed, transfer=args.transfer,
                                support=profile, budget_exponent=args.budget_exponent,
                                unique_tokens=unique)  # fmt: skip
    seeds = list(range(args.seed, args.seed + args.repeats))
    repeated = repeated_cross_validate(factory, runs, args.folds, seeds, fold_jobs=args.jobs,
                                       progress=sys.stderr.isatty())  # fmt: skip
    repeated.law = name
    if args.repeats > 1:
        for split in repeated.splits:
            split.law = name
        if args.json:
            _print_json(repeated.to_json())
        else:
            print(f"{name} law, {args.folds}-fold cross-validation on {_rows(runs)}, repeated "
                  f"over {args.repeats} splits")  # fmt: skip
            print("\n".join(repeated.summary_lines()))
        return 0
    result = repeated.splits[0]
    result.law = name
    if args.predictions:
        out = _check_out(args.predictions, (".csv",), "--predictions")
        import pandas as pd

        frame = pd.DataFrame({"run": result.run, "fold": result.fold})
        for k, t in enumerate(result.targets):
            frame[f"pred.{t}"] = result.predictions[:, k]
            frame[f"loss.{t}"] = result.observed[:, k]
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out, index=False, float_format="%.8g")
    if args.json:
        _print_json(result.to_json())
    else:
        print(
            f"{name} law, {result.folds}-fold cross-validation on {_rows(runs)} (seed {args.seed})"
        )
        print(result.metrics.table())
        print(result.by_share_line())
    return 0


def run_effective_ratio(args: argparse.Namespace) -> int:
    from climb.evaluation.effective_ratio import observed_effective_ratios

    law = load_law(args.law)
    runs = read_runs(args.runs)
    ratios = observed_effective_ratios(law, runs)
    if args.out:
        out = _check_out(args.out, (".csv",), "--out")
        out.parent.mkdir(parents=True, exist_ok=True)
        ratios.to_frame().to_csv(out, index=False, float_format="%.8g")
        print(f"wrote {out}: {len(runs)} runs × {len(ratios.targets)} targets")
        print(ratios.summary().to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    elif args.json:
        _print_json(ratios.to_json())
    else:
        frame = ratios.to_frame()
        frame["tokens"] = [f"{v:.4g}" for v in frame["tokens"]]
        print(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if ratios.undefined.any():
        print(
            f"note: {int(ratios.undefined.sum())} measured loss(es) at or below the law's floor "
            "E + A N^-α: r̂ undefined (empty)"
        )
    return 0


def run_simulate(args: argparse.Namespace) -> int:
    from climb.laws.simulate import simulate

    out = Path(args.out)
    if out.suffix.lower() not in (".csv", ".parquet", ".pq", ".jsonl", ".ndjson"):
        raise ClimbError(f"--out {args.out}: use a .csv, .parquet or .jsonl file")
    truth_path = _check_out(args.truth, (".json",), "--truth") if args.truth else None
    truth, runs = simulate(
        args.sources, args.runs, tokens=args.tokens, params=args.params, noise=args.noise,
        seed=args.seed, eta=args.eta, eval_only=args.eval_only,
    )  # fmt: skip
    runs.write(out)
    msg = f"wrote {out}: {len(runs)} runs of {args.sources} sources"
    if runs.eval_only:
        msg += f" and evaluation-only target(s) {', '.join(runs.eval_only)}"
    if truth_path is not None:
        truth.save(truth_path)
        msg += f"; true law {truth_path}"
    print(msg)
    return 0
