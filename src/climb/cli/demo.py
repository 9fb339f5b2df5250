"""Verbs ``climb demo`` (the end-to-end pipeline) and ``climb report`` (the HTML report)."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from climb.errors import ClimbError, ClimbWarning


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser(
        "demo",
        help="end to end on the embedded corpus: proxies, laws, allocation, verification, report",
        description="Design and train proxy runs on about six languages of the embedded corpus, "
        "fit and cross-validate climb and the baseline laws, allocate for a larger target budget "
        "with data caps, verify by training every mixture (Climb and baselines) at that budget "
        "with several seeds and comparing Climb with each baseline paired by seed, and write an "
        "HTML report. Everything goes under --out; rerunning resumes.",
    )
    d.add_argument("--out", default="demo-out", help="output directory (default: demo-out)")
    d.add_argument("--quick", action="store_true", help="tiny model and budgets (CI, ≤ 3 minutes)")
    d.add_argument(
        "--languages",
        help="comma-separated corpus sources (default: six of different sizes and scripts)",
    )
    d.add_argument("--corpus", help="corpus directory (default: the embedded corpus)")
    d.add_argument(
        "--scenario",
        choices=["default", "transfer"],
        default="default",
        help="named defaults: 'default' (six languages of different scripts) or 'transfer' "
        "(es, pt, fr, ca, ru, uk, zh, ja with Catalan capped at 12k bytes, 24 proxies; "
        "see docs/demo.md)",
    )
    d.add_argument(
        "--cap",
        metavar="LANG=SIZE[,LANG=SIZE…]",
        help="keep only the first SIZE bytes of whole training documents of LANG (e.g. ca=12k) "
        "in a derived corpus under --out, so its data cap binds; replaces the scenario's caps",
    )
    d.add_argument(
        "--workers", type=int, default=None, help="parallel training processes (default 2)"
    )
    d.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="verification seeds per mixture (default 3; at least 2 for the paired intervals)",
    )
    d.add_argument(
        "--full",
        action="store_true",
        help="verify every baseline mixture (uniform, natural, temperature, UniMax, isolated, "
        "MSL) instead of uniform, temperature and isolated",
    )
    d.add_argument("--no-progress", action="store_true", help="no progress bars")
    d.set_defaults(func=run_demo_cmd)

    r = sub.add_parser(
        "report",
        help="write a self-contained HTML report (and PNGs) for runs, a law and an allocation",
        description="Figures: predicted vs observed loss per language (held-out runs marked), "
        "the interaction matrix W, observed effective ratio against own share, the recommended "
        "mixture with bootstrap intervals beside the baselines, and (after a demo) the "
        "realized-loss comparison. The page embeds everything and works offline.",
    )
    src = r.add_mutually_exclusive_group(required=True)
    src.add_argument("--store", help="SQLite run store (from `climb sweep` or `climb demo`)")
    src.add_argument("--runs", help="canonical run table (.csv, .parquet, .jsonl)")
    r.add_argument("--law", required=True, help="fitted law JSON (from `climb fit`)")
    r.add_argument("--allocation", help="allocation JSON (from `climb allocate --json`)")
    r.add_argument("--verification", help="verification JSON (from `climb demo`)")
    r.add_argument(
        "--folds",
        type=int,
        default=5,
        help="cross-validate the law with this many folds, whole training runs held out: the "
        "estimator the law JSON records (its hyper-parameters and support profile) refitted "
        "on each fold, the folds on one process per CPU (default 5; 0 = no cross-validation)",
    )
    r.add_argument("--seed", type=int, default=0, help="seed of the cross-validation folds")
    r.add_argument("--title", default="climb report", help="page title")
    r.add_argument("--out", required=True, help="output directory (report.html and the PNGs)")
    r.set_defaults(func=run_report_cmd)


def run_demo_cmd(args: argparse.Namespace) -> int:
    from climb.demo import run_demo

    langs = [s.strip() for s in args.languages.split(",") if s.strip()] if args.languages else None
    if args.workers is not None and args.workers < 1:
        raise ClimbError(f"--workers {args.workers}: must be ≥ 1")
    if args.seeds is not None and args.seeds < 2:
        raise ClimbError(f"--seeds {args.seeds}: the paired intervals need at least 2 (use ≥ 3)")
    caps = read_caps(args.cap) if args.cap is not None else None

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    result = run_demo(
        args.out,
        quick=args.quick,
        languages=langs,
        corpus=args.corpus,
        workers=args.workers,
        seeds=args.seeds,
        full=args.full,
        log=log,
        progress=not args.no_progress,
        scenario=args.scenario,
        caps=caps,
    )
    print("\n".join(result.summary_lines()))
    return 0


def read_caps(spec: str) -> dict[str, int]:
    """``--cap ca=12k,uk=1.5M`` → ``{"ca": 12000, "uk": 1500000}`` (bytes of training text)."""
    from climb.cli.parsing import parse_mapping, parse_tokens

    caps = {k: parse_tokens(v, f"--cap {k}") for k, v in parse_mapping(spec, "--cap").items()}
    if not caps:
        raise ClimbError("--cap: give LANG=SIZE, e.g. --cap ca=12k")
    return caps


def run_report_cmd(args: argparse.Namespace) -> int:
    from climb.allocation.result import read_allocation
    from climb.data.runs import RunTable
    from climb.data.store import RunStore, check_store_file
    from climb.evaluation.cv import cross_validate
    from climb.laws import load_law
    from climb.report import build_report
    from climb.verification import VerificationResult

    law = load_law(args.law)
    if args.store:
        path = Path(args.store)
        check_store_file(path, must_exist=True)
        with RunStore(path, create=False) as rs:
            runs = rs.to_run_table()
    else:
        runs = RunTable.read(args.runs)
    missing = [t for t in law.targets_ if t not in runs.targets]
    if missing:
        raise ClimbError(
            f"{args.law}: the law predicts {', '.join(missing)}, which the runs do not measure; "
            "pass the runs the law was fitted on"
        )
    allocation, baselines = read_allocation(args.allocation) if args.allocation else (None, {})
    verification = VerificationResult.load(args.verification) if args.verification else None
    cv = {}
    if args.folds:
        if args.folds < 2:
            raise ClimbError(f"--folds {args.folds}: use 0 (none) or ≥ 2")
        # law.clone: the estimator the law JSON was fitted with (its recorded hyper-parameters
        # and support profile), refitted on each fold's training runs: the folds of `climb cv`
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ClimbWarning)
            res = cross_validate(law.clone, runs, args.folds, args.seed, fold_jobs=-1,
                                 progress=sys.stderr.isatty())  # fmt: skip
        cv[law.name] = res
    report = build_report(
        runs,
        law,
        args.out,
        cv=cv,
        allocation=allocation,
        baselines=baselines,
        verification=verification,
        title=args.title,
    )
    print(f"wrote {report.html_path} ({len(report.figures)} figures: {', '.join(report.figures)})")
    for name, why in report.skipped.items():
        print(f"  not shown: {name} ({why})")
    return 0
