"""Verbs for run tables: ``climb ingest``."""

from __future__ import annotations

import argparse

from climb.data.runs import RunTable, read_regmix, read_two_tables
from climb.errors import ClimbError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ingest",
        help="validate run tables (CSV/Parquet/JSONL) or import a two-table layout into one run table",
        description="Validate one or more canonical run tables and write them as one; or join a "
        "weights table and a losses table (--weights/--losses); or import a shipped RegMix file "
        "(--regmix SPLIT/SIZE, e.g. train/1m).",
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
    p.add_argument("--out", required=True, help="output run table (.csv, .parquet or .jsonl)")
    p.set_defaults(func=run_ingest)


def run_ingest(args: argparse.Namespace) -> int:
    modes = sum([bool(args.tables), bool(args.weights or args.losses), bool(args.regmix)])
    if modes != 1:
        raise ClimbError(
            "give either run tables, or --weights and --losses, or --regmix SPLIT/SIZE"
        )
    if args.regmix:
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
