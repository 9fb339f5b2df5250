"""Verbs for proxy experiments: ``climb design``, ``climb sweep``, ``climb runs export``."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from climb.errors import ClimbError


def register(sub: argparse._SubParsersAction) -> None:
    _register_design(sub)
    _register_sweep(sub)
    _register_runs(sub)


def _register_design(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser(
        "design",
        help="design proxy runs (monolingual, pairs, Dirichlet mixtures) that identify every w_ij",
        description="Write a sweep plan (YAML): monolingual runs, pairs and Dirichlet mixtures around "
        "the natural (∝ unique tokens) and uniform mixes at each token budget, checked for "
        "identifiability of the interactions and for data caps p_i·D ≤ E·U_i.",
    )
    d.add_argument(
        "--sources",
        nargs="+",
        metavar="SRC",
        help="sources (languages); default: all corpus sources",
    )
    d.add_argument(
        "--tokens",
        nargs="+",
        required=True,
        metavar="D",
        help="token budgets, e.g. 1M 2.5M (≥ 2 advised)",
    )
    d.add_argument(
        "--runs",
        type=int,
        required=True,
        metavar="N",
        help="number of training runs (wsd: one per mixture; cosine: split over the budgets)",
    )
    d.add_argument(
        "--schedule",
        choices=["wsd", "cosine"],
        default="wsd",
        help="wsd (default): one run per mixture with a cooldown branch at each budget, every "
        "row a true budget; cosine: one run per budget and mixture",
    )
    d.add_argument("--seed", type=int, default=0, help="seed of the Dirichlet sampling (default 0)")
    d.add_argument(
        "--candidates", type=int, default=1, metavar="N",
        help="draw N candidate designs from the seed and keep the D-optimal one (default 1: the "
        "first); worth it where data caps bind (benchmarks/design_candidates.py)",
    )  # fmt: skip
    d.add_argument("--out", required=True, help="the plan YAML to write")
    d.add_argument(
        "--corpus", help="corpus directory (unique tokens, sources); default: the embedded corpus"
    )
    d.add_argument(
        "--max-epochs", type=float, metavar="E", help="data cap: at most E epochs of each source"
    )
    d.add_argument(
        "--model", default=None, metavar="NAME", help="model shape, e.g. d128-l3 or d32-l1-h2-c64"
    )
    d.add_argument(
        "--model-opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="further model option (repeatable)",
    )
    d.add_argument(
        "--train-opt", action="append", default=[], metavar="KEY=VALUE",
        help="training option (repeatable), e.g. seed=1, lr=0.01, checkpoints=[0.5]",
    )  # fmt: skip
    d.add_argument(
        "--format", dest="launch_format", metavar="TRAINER",
        help="also write one launch config per run for your trainer (olmo, megatron, torchtitan, "
        "megatron-bridge, hf) and a manifest.yaml, into --launch-dir",
    )  # fmt: skip
    d.add_argument(
        "--launch-dir", metavar="DIR",
        help="folder of the launch configs (default: beside --out, '<plan name>-<TRAINER>')",
    )  # fmt: skip
    d.add_argument("--paths", help="with --format: YAML mapping source → data path(s) in your trainer")  # fmt: skip
    d.set_defaults(func=run_design)


def _register_sweep(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser(
        "sweep",
        help="train a plan's runs into a SQLite run store (resumable)",
        description="Train every run of PLAN that STORE does not hold yet; each finished run is "
        "stored atomically, so an interrupted sweep resumes where it stopped.",
    )
    s.add_argument("plan", help="plan YAML written by `climb design`")
    s.add_argument("--store", required=True, help="SQLite run store (created when missing)")
    s.add_argument("--corpus", help="corpus directory; default: the embedded corpus")
    s.add_argument(
        "--workers", type=int, default=None, help="parallel runs (local default 1; ray: all)"
    )
    s.add_argument(
        "--backend", choices=["local", "ray"], default="local", help="where runs execute"
    )
    s.add_argument(
        "--threads", type=int, default=None, help="torch threads per run (default: the plan's, 1)"
    )
    s.add_argument(
        "--ray-address",
        default=None,
        help="Ray cluster address (backend ray); default: start a local one",
    )
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=run_sweep_cmd)


def _register_runs(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser(
        "runs", help="inspect and export a run store", description="Work with a run store."
    )
    rsub = r.add_subparsers(dest="runs_verb", metavar="SUBVERB")
    e = rsub.add_parser(
        "export",
        help="write the canonical run table of a store",
        description="Write every stored row (checkpoints and final rows) as a canonical run table.",
    )
    e.add_argument("store", help="SQLite run store")
    e.add_argument("--out", required=True, help="run table to write (.csv, .parquet or .jsonl)")
    e.add_argument("--final-only", action="store_true", help="skip checkpoint rows")
    e.set_defaults(func=run_export)
    r.set_defaults(func=lambda args: _runs_help(r))


def _runs_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_design(args: argparse.Namespace) -> int:
    from climb.cli.parsing import model_from_string, parse_tokens, train_from_options
    from climb.data.corpus import Corpus
    from climb.proxy.design import design_runs
    from climb.proxy.sweep import plan_summary
    from climb.proxy.tokenize import get_tokenizer

    tokens = [parse_tokens(t) for t in _split_commas(args.tokens)]
    model = model_from_string(args.model, args.model_opt)
    train = train_from_options(args.train_opt)
    corpus = Corpus.open(args.corpus)
    sources = _split_commas(args.sources) if args.sources else list(corpus.sources)
    corpus.check_sources(sources)
    unique = corpus.unique_tokens(get_tokenizer(model, corpus), sources=sources)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan = design_runs(
            sources,
            tokens,
            args.runs,
            seed=args.seed,
            unique_tokens=unique,
            max_epochs=args.max_epochs,
            model=model,
            train=train,
            schedule=args.schedule,
            candidates=args.candidates,
        )
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    plan.design["corpus"] = "embedded" if args.corpus is None else str(args.corpus)
    paths = None
    if args.launch_format:
        from climb.exports import read_paths
        from climb.exports.launch import SUFFIX

        if args.launch_format not in SUFFIX:
            raise ClimbError(f"--format: '{args.launch_format}' is not a trainer; choose from {', '.join(SUFFIX)}")  # fmt: skip
        paths = read_paths(args.paths, sources) if args.paths else None
    elif args.paths or args.launch_dir:
        raise ClimbError("--paths and --launch-dir go with --format TRAINER")
    out = plan.save(args.out)
    rep = plan.identifiability()
    ident = "yes" if rep.ok else "NO (see warnings)"
    budgets = ", ".join(f"{b:,}" for b in rep.budgets)
    cand = plan.design.get("candidates")
    chosen = (f"; D-optimal of {cand['drawn']} candidate designs (draw {cand['chosen']}, "
              f"d_criterion {cand['d_criterion']:g})" if cand else "")  # fmt: skip
    print(
        f"wrote {out}: {plan_summary(plan)}; {rep.rows} true-budget rows at {len(rep.budgets)} "
        f"true budget(s) ({budgets}); identifiable: {ident}{chosen}"
    )
    if args.launch_format:
        from climb.exports.launch import write_launch

        launch = args.launch_dir or out.with_name(f"{out.stem}-{args.launch_format}")
        manifest = write_launch(plan, args.launch_format, launch, paths=paths)
        print(f"wrote {len(plan.runs)} {args.launch_format} launch configs and {manifest}")
    return 0


def run_sweep_cmd(args: argparse.Namespace) -> int:
    from climb.proxy.executors import make_executor
    from climb.proxy.sweep import run_sweep

    if args.workers is not None and args.workers < 1:
        raise ClimbError(f"--workers {args.workers}: must be ≥ 1")
    if args.threads is not None and args.threads < 0:
        raise ClimbError(f"--threads {args.threads}: must be ≥ 0 (0 = torch's default)")
    if args.ray_address is not None and args.backend != "ray":
        raise ClimbError("--ray-address only applies to --backend ray")
    executor = make_executor(
        args.backend, workers=args.workers, threads=args.threads, address=args.ray_address
    )
    res = run_sweep(
        args.plan, args.store, corpus=args.corpus, executor=executor, progress=not args.no_progress
    )
    rate = f", {res.tokens_per_s:,.0f} tokens/s" if res.trained else ""
    print(
        f"{res.store}: {len(res.trained)} run(s) trained, {len(res.skipped)} already stored, "
        f"{res.planned} planned{rate}"
    )
    return 0


def run_export(args: argparse.Namespace) -> int:
    from climb.data.store import RunStore

    path = Path(args.store)
    if not path.exists():
        raise ClimbError(f"{path}: no such run store")
    with RunStore(path, create=False) as store:
        table = store.to_run_table(final_only=args.final_only)
        n_runs = len(store)
    out = table.write(args.out)
    print(f"wrote {out}: {len(table)} rows from {n_runs} runs, {len(table.sources)} sources")
    return 0


def _split_commas(items: list[str]) -> list[str]:
    return [x.strip() for item in items for x in str(item).split(",") if x.strip()]
