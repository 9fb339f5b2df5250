"""Verbs for run tables: ``climb ingest``."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from climb.data.runs import RunTable, read_regmix, read_two_tables
from climb.errors import ClimbError

TRACKERS = ("tensorboard", "mlflow", "wandb")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ingest",
        help="validate run tables (CSV/Parquet/JSONL) or import a two-table layout into one run table",
        description="Validate one or more canonical run tables and write them as one; or join a "
        "weights table and a losses table (--weights/--losses); or import a shipped RegMix file "
        "(--regmix SPLIT/SIZE, e.g. train/1m); or read the runs of an experiment tracker "
        "(--tensorboard DIR, --mlflow URI, --wandb ENTITY/PROJECT) through a mapping of metrics "
        "to loss.<source> and config keys to p.<source>, tokens, params (--mapping FILE or "
        "--loss-metric/--p-key/--tokens-key/--params-key).",
    )
    p.add_argument("tables", nargs="*", help="canonical run tables to validate and combine")
    p.add_argument("--weights", help="two-table layout: the mixture-weights table")
    p.add_argument("--losses", help="two-table layout: the losses table")
    p.add_argument("--key", default="index", help="join column of the two tables (default: index)")
    p.add_argument("--weight-prefix", default="", help="strip this from weight column names")
    p.add_argument("--weight-suffix", default="", help="strip this from weight column names")
    p.add_argument("--loss-prefix", default="", help="strip this from loss column names")
    p.add_argument("--loss-suffix", default="", help="strip this from loss column names")
    p.add_argument(
        "--map", action="append", default=[], metavar="COLUMN=SOURCE",
        help="explicit column→source mapping (repeatable); overrides prefix/suffix stripping",
    )  # fmt: skip
    p.add_argument(
        "--tokens", type=float, help="token budget D when the tables have no tokens column"
    )
    p.add_argument(
        "--params", type=float, help="model size N when the tables have no params column"
    )
    p.add_argument(
        "--sum-tolerance", type=float, default=1e-3,
        help="rows whose proportions sum to 1 within this are renormalized (default 1e-3)",
    )  # fmt: skip
    p.add_argument("--run-prefix", default="", help="prefix for run ids built from the key")
    p.add_argument(
        "--regmix",
        metavar="SPLIT/SIZE",
        help="a shipped RegMix file: train/1m, test/1m, test/60m, test/1b",
    )
    _register_trackers(p)
    p.add_argument("--out", required=True, help="output run table (.csv, .parquet or .jsonl)")
    p.set_defaults(func=run_ingest)


def _register_trackers(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("experiment trackers (see docs/ingest.md)")
    g.add_argument("--tensorboard", metavar="DIR", help="a TensorBoard log folder (one sub-folder per run)")  # fmt: skip
    g.add_argument("--mlflow", metavar="URI", help="an MLflow tracking URI, e.g. file:./mlruns")
    g.add_argument("--experiment", help="MLflow: only the runs of this experiment (default: all)")
    g.add_argument("--wandb", metavar="ENTITY/PROJECT", help="a W&B project (public API)")
    g.add_argument("--mapping", metavar="FILE", help="YAML: loss, p, tokens, params (see docs)")
    g.add_argument(
        "--loss-metric", action="append", default=[], metavar="PATTERN|METRIC=SOURCE",
        help="metric(s) → loss.<source>: one pattern like 'eval/{source}/loss', or METRIC=SOURCE (repeatable)",
    )  # fmt: skip
    g.add_argument(
        "--p-key", action="append", default=[], metavar="PATTERN|KEY=SOURCE",
        help="config key(s) → p.<source>: one pattern like 'mix.{source}', or KEY=SOURCE (repeatable)",
    )  # fmt: skip
    g.add_argument("--tokens-key", metavar="KEY", help="config key or metric of the training tokens")  # fmt: skip
    g.add_argument("--params-key", metavar="KEY", help="config key or metric of the model size")
    g.add_argument("--manifest", metavar="FILE",
                   help="a launch manifest (climb design --format …): mixtures and budgets of the runs")  # fmt: skip
    g.add_argument("--results", metavar="FILE",
                   help="with --manifest: results table (run, loss.<source>, …) of the launched runs")  # fmt: skip
    g.add_argument("--run-key", choices=("name", "id"),
                   help="tracker run name (default) or id as the run id")  # fmt: skip


def run_ingest(args: argparse.Namespace) -> int:
    trackers = [t for t in TRACKERS if getattr(args, t)]
    modes = sum([bool(args.tables), bool(args.weights or args.losses), bool(args.regmix),
                 bool(args.results)])  # fmt: skip
    if modes + len(trackers) != 1:
        raise ClimbError(
            "give either run tables, or --weights and --losses, or --regmix SPLIT/SIZE, or "
            "--manifest with --results, or one of --tensorboard, --mlflow, --wandb"
        )
    if args.results and not args.manifest:
        raise ClimbError(
            "--results needs --manifest (the manifest written by climb design --format)"
        )
    if args.manifest and not (args.results or trackers):
        raise ClimbError(
            "--manifest needs --results FILE or a tracker (--tensorboard, --mlflow, --wandb)"
        )
    manifest = None
    if args.manifest:
        from climb.data.manifest import Manifest

        manifest = Manifest.load(args.manifest)
    if args.results:
        from climb.data.manifest import runs_from_results

        assert manifest is not None
        table = runs_from_results(manifest, args.results)
    elif trackers:
        table = _ingest_tracker(args, trackers[0], manifest)
    elif args.regmix:
        split, _, size = args.regmix.partition("/")
        table = read_regmix(split, size or "1m")
    elif args.weights or args.losses:
        if not (args.weights and args.losses):
            raise ClimbError("the two-table layout needs both --weights and --losses")
        mapping = _parse_map(args.map)
        table = read_two_tables(
            args.weights,
            args.losses,
            key=args.key,
            source_names={k: v for k, v in mapping.items() if not k.startswith("loss:")} or None,
            target_names={k[5:]: v for k, v in mapping.items() if k.startswith("loss:")} or None,
            weight_prefix=args.weight_prefix,
            weight_suffix=args.weight_suffix,
            loss_prefix=args.loss_prefix,
            loss_suffix=args.loss_suffix,
            tokens=args.tokens,
            params=args.params,
            run_prefix=args.run_prefix,
            sum_tolerance=args.sum_tolerance,
        )
    else:
        tables = [RunTable.read(t) for t in args.tables]
        table = tables[0] if len(tables) == 1 else RunTable.concat(tables)
    out = table.write(args.out)
    s = table.summary()
    print(
        f"wrote {out}: {s['runs']} runs, {s['sources']} sources, {s['targets']} targets, "
        f"token budgets {', '.join(f'{x:g}' for x in s['token_budgets'])}"
    )
    if manifest is not None:
        from climb.data.manifest import missing_runs

        left = missing_runs(manifest, table)
        if left:
            print(f"{len(left)} of {len(manifest.runs)} manifest run(s) have no results yet: "
                  f"{', '.join(left[:5])}{' …' if len(left) > 5 else ''}")  # fmt: skip
    return 0


def _parse_map(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        col, sep, name = item.rpartition("=")
        if not sep or not col or not name:
            raise ClimbError(
                f"--map '{item}': expected COLUMN=SOURCE (prefix loss: for loss columns)"
            )
        out[col] = name
    return out


def _side(items: list[str], option: str) -> dict[str, str] | str | None:
    """One pattern with {source}, or KEY=SOURCE items."""
    if not items:
        return None
    if len(items) == 1 and "{source}" in items[0]:
        return items[0]
    out: dict[str, str] = {}
    for item in items:
        key, sep, source = item.rpartition("=")
        if not sep or not key or not source or "{source}" in item:
            raise ClimbError(
                f"{option} '{item}': expected one pattern with {{source}} or KEY=SOURCE items"
            )
        out[key] = source
    return out


def _ingest_tracker(args: argparse.Namespace, tracker: str, manifest: Any = None) -> RunTable:
    from climb.data import trackers as tr

    flags = {"loss": _side(args.loss_metric, "--loss-metric"), "p": _side(args.p_key, "--p-key"),
             "tokens": args.tokens_key, "params": args.params_key}  # fmt: skip
    given = {k: v for k, v in flags.items() if v is not None}
    if args.run_key:
        given["run_key"] = args.run_key
    if args.mapping:  # options override the file
        base = {k: v for k, v in asdict(tr.TrackerMapping.read(args.mapping)).items() if v is not None}  # fmt: skip
        mapping = tr.TrackerMapping.from_dict(base | given, origin=f"mapping {args.mapping}")
    else:
        needed = (
            (("loss-metric", "loss"),) if manifest else (("loss-metric", "loss"), ("p-key", "p"))
        )
        missing = [f"--{k}" for k, f in needed if not flags[f]]
        if missing:
            raise ClimbError(f"--{tracker}: give --mapping FILE or {' and '.join(missing)}")
        mapping = tr.TrackerMapping.from_dict(given, origin="options")
    if tracker == "tensorboard":
        runs = tr.read_tensorboard(args.tensorboard)
    elif tracker == "mlflow":
        runs = tr.read_mlflow(args.mlflow, experiment=args.experiment)
    else:
        runs = tr.read_wandb(args.wandb)
    where = getattr(args, tracker)
    if manifest is not None:
        from climb.data.manifest import runs_from_results

        frame = tr.results_frame(runs, mapping, origin=f"{tracker} {where}")
        return runs_from_results(manifest, frame, origin=f"{tracker} {where}")
    return tr.runs_from_tracker(
        runs, mapping, tokens=args.tokens, params=args.params, origin=f"{tracker} {where}"
    )
