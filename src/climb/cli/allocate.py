"""The ``climb allocate`` verb: parse, call :func:`climb.allocation.plan.plan_allocation`, render."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from climb.allocation.baselines import BASELINES, DEFAULT_TAU
from climb.allocation.constraints import Constraints
from climb.allocation.plan import AllocationPlan, plan_allocation
from climb.allocation.problem import read_unique_tokens
from climb.allocation.solve import METHODS, OBJECTIVES
from climb.cli.parsing import check_process_count, parse_tokens, read_bounds, read_weights
from climb.errors import ClimbError
from climb.exports import FORMATS, Mixture, read_paths, read_tokens_per_example, write_export


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "allocate",
        help="optimal language proportions under a fitted climb law, with baselines and exports",
        description="Find the proportions that minimize the weighted predicted loss of a climb "
        "law at a token budget (two-step: equalize marginal benefits, then maximize the "
        "magnitude; active-set / convex paths when bounds or caps bind; Newton on the nonlinear "
        "KKT system for saturating transfer, eta < 1), compare them with the "
        "baselines under the same law and constraints, and export them for a trainer.",
    )
    p.add_argument("law", help="law JSON written by `climb fit` (law 'climb')")
    p.add_argument("--tokens", required=True, help="target token budget D*, e.g. 1e11 or 100B")
    p.add_argument("--params", help="target model size N* (non-embedding parameters), e.g. 1B")
    p.add_argument("--objective", choices=OBJECTIVES, default="sum",
                   help="sum: weighted sum of losses (default); worst: the largest normalized excess loss")  # fmt: skip
    p.add_argument(
        "--weights",
        help="source weights: en=2,de=1 or a file (source,weight CSV / YAML); default 1",
    )
    p.add_argument(
        "--bounds", help="bounds: en=0.1:0.5,de=:0.3 or a file (source,lo,hi CSV / YAML)"
    )
    p.add_argument(
        "--unique-tokens", metavar="CSV", help="unique tokens per source (columns source,tokens)"
    )
    p.add_argument("--max-epochs", type=float,
                   help="at most this many epochs of each source's unique tokens (default 4 with --unique-tokens)")  # fmt: skip
    p.add_argument(
        "--tau",
        type=float,
        default=DEFAULT_TAU,
        help=f"temperature baseline τ (default {DEFAULT_TAU})",
    )
    p.add_argument("--baselines", default=",".join(BASELINES),
                   help=f"comma list of baselines, or 'none' (default: {','.join(BASELINES)})")  # fmt: skip
    p.add_argument(
        "--method", choices=METHODS, default="auto", help="force a solver path (default auto)"
    )
    p.add_argument("--runs", help="proxy runs: fit the MSL baseline and refit for --bootstrap")
    p.add_argument(
        "--msl-law",
        help="a fitted MSL law JSON for the MSL baseline (instead of fitting on --runs)",
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=0,
        metavar="B",
        help="B bootstrap refits on --runs for intervals",
    )
    p.add_argument(
        "--level", type=float, default=0.95, help="bootstrap interval level (default 0.95)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    p.add_argument("--jobs", type=int, default=-1,
                   help="parallel processes for the bootstrap refits (default -1: one per CPU; "
                   "the intervals are the same for any value)")  # fmt: skip
    p.add_argument("--metric-law", metavar="FILE",
                   help="metric law JSON (climb fit-metrics --link sigmoid): minimize weighted "
                   "losses minus weighted metrics; weigh metrics in --weights as metric.<name>=ν")  # fmt: skip
    p.add_argument("--format", choices=list(FORMATS), help="export format for --export-out")
    p.add_argument(
        "--paths", help="YAML mapping source → data path (or list of paths) for the export"
    )
    p.add_argument(
        "--tokens-per-example", metavar="FILE",
        help="hf export: mean tokens per example of each source (source,tokens_per_example CSV "
        "or YAML); turns token shares into example probabilities (default: pack first)",
    )  # fmt: skip
    p.add_argument(
        "--export-out", metavar="FILE", help="write the Climb mixture in --format to FILE"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.set_defaults(func=run_allocate)


def run_allocate(args: argparse.Namespace) -> int:
    if bool(args.format) != bool(args.export_out):
        raise ClimbError(
            "--format and --export-out go together (e.g. --format megatron --export-out blend.txt)"
        )
    for flag, value in (("--paths", args.paths), ("--tokens-per-example", args.tokens_per_example)):
        if value and not args.export_out:
            raise ClimbError(f"{flag} is used by the export; add --format and --export-out")
    names = tuple(b.strip() for b in args.baselines.split(",") if b.strip() and b.strip() != "none")
    unknown = [b for b in names if b not in BASELINES]
    if unknown:
        raise ClimbError(
            f"--baselines: unknown baseline '{unknown[0]}'; choose from {', '.join(BASELINES)}"
        )
    if args.bootstrap and not args.runs:
        raise ClimbError("--bootstrap needs --runs (the proxy runs to refit the law on)")
    check_process_count(args.jobs)
    if args.metric_law:
        return _run_mixed(args, names)
    msl_law = None
    if args.msl_law:
        from climb.laws import load_law

        msl_law = load_law(args.msl_law)
    plan = plan_allocation(
        args.law,
        parse_tokens(args.tokens),
        None if args.params is None else parse_tokens(args.params, "--params"),
        constraints=constraints_from_args(args),
        objective=args.objective,
        method=args.method,
        tau=args.tau,
        baselines=names,
        runs=args.runs,
        msl_law=msl_law,
        n_boot=args.bootstrap,
        seed=args.seed,
        level=args.level,
        n_jobs=args.jobs,
        progress=sys.stderr.isatty(),
    )
    _export(args, plan.result, plan.problem.max_epochs)
    if args.json:
        print(json.dumps(plan.to_dict(), indent=2))
    else:
        print(render_table(plan))
    return 0


def _export(args: argparse.Namespace, result: Any, max_epochs: float | None) -> None:
    if not args.export_out:
        return
    sources = result.sources
    paths = read_paths(args.paths, sources) if args.paths else {}
    tpe = read_tokens_per_example(args.tokens_per_example, sources) if args.tokens_per_example else {}  # fmt: skip
    mix = Mixture(
        proportions=result.proportions_dict(), paths=paths, tokens=result.tokens,
        max_epochs=max_epochs, tokens_per_example=tpe,
        meta={"law": str(args.law), "objective": args.objective, "solver": result.path},
    )  # fmt: skip
    out = write_export(mix, args.format, args.export_out)
    if not args.json:
        print(f"wrote {args.format} mixture to {out}", file=sys.stderr)


def _run_mixed(args: argparse.Namespace, baselines: tuple[str, ...]) -> int:
    """``--metric-law``: minimize ``Σ ω_i L_i − Σ ν_m M_m`` (docs/metrics.md)."""
    from climb.allocation.metrics import allocate_mixed, mixed_objective
    from climb.laws import load_law
    from climb.laws.metrics import MetricLink, load_metric_law

    if args.objective != "sum" or args.bootstrap:
        raise ClimbError("--metric-law works with --objective sum and without --bootstrap")
    link = load_metric_law(args.metric_law)
    if not isinstance(link, MetricLink):
        raise ClimbError("--metric-law: the allocator needs a link law (climb fit-metrics --link sigmoid)")  # fmt: skip
    if json.dumps(load_law(args.law).to_json(), sort_keys=True) != json.dumps(link.loss_law.to_json(), sort_keys=True):  # fmt: skip
        raise ClimbError(f"--metric-law: it was fitted on another loss law than {args.law}; refit it with --loss-law {args.law}")  # fmt: skip
    base = constraints_from_args(args)
    nu = {k.removeprefix("metric."): v for k, v in base.weights.items() if k.startswith("metric.")}
    omega = {k: v for k, v in base.weights.items() if not k.startswith("metric.")}
    constraints = dataclasses.replace(base, weights=omega)
    tokens = parse_tokens(args.tokens)
    params = None if args.params is None else parse_tokens(args.params, "--params")
    mixed = allocate_mixed(link, tokens, params, metric_weights=nu, constraints=constraints,
                           method=args.method)  # fmt: skip
    plan = plan_allocation(args.law, tokens, params, constraints=constraints, method=args.method,
                           tau=args.tau, baselines=baselines)  # fmt: skip
    res = mixed.result
    _export(args, res, constraints.max_epochs)
    others = {n: mixed_objective(link, r.proportions, tokens, params, omega, nu) for n, r in plan.baselines.items()}  # fmt: skip
    if args.json:
        obj = {"proportions": res.proportions_dict(), "objective": mixed.objective,
               "predicted_loss": dict(zip(res.targets, map(float, res.predicted_loss))),
               "predicted_metric": dict(zip(mixed.metrics, map(float, mixed.predicted_metric))),
               "effective_weights": mixed.effective_weights, "iterations": mixed.nit,
               "converged": mixed.converged, "baselines": others}  # fmt: skip
        print(json.dumps(obj, indent=2))
        return 0
    lines = [f"climb allocate (losses and metrics): D* = {tokens:.4g}; F = Σ ω L − Σ ν M = {mixed.objective:.6g} "
             f"({mixed.nit} fixed-point it, {'converged' if mixed.converged else 'NOT converged'}; solver {res.path})"]  # fmt: skip
    lines += [f"  {s:<10} p {p:.4f}" for s, p in zip(res.sources, res.proportions)]
    lines += [f"  loss.{t:<10} {v:.4f} (ω̃ {mixed.effective_weights[t]:.4g})" for t, v in zip(res.targets, res.predicted_loss)]  # fmt: skip
    lines += [f"  metric.{m:<8} {v:.4f} (ν {nu.get(m, 0.0):g})" for m, v in zip(mixed.metrics, mixed.predicted_metric)]  # fmt: skip
    lines += [f"  F at {n}: {f:.6g} (gap {f - mixed.objective:+.3g})" for n, f in others.items()]
    print("\n".join(lines))
    return 0


def constraints_from_args(args: argparse.Namespace) -> Constraints:
    """The :class:`Constraints` of ``--bounds``, ``--unique-tokens``, ``--max-epochs``, ``--weights``."""
    if args.max_epochs is not None and not args.unique_tokens:
        raise ClimbError("--max-epochs needs --unique-tokens (the unique tokens of each source)")
    return Constraints(
        bounds=read_bounds(args.bounds) if args.bounds else {},
        unique_tokens=read_unique_tokens(args.unique_tokens) if args.unique_tokens else None,
        max_epochs=args.max_epochs,
        weights=read_weights(args.weights) if args.weights else {},
    )


def render_table(plan: AllocationPlan) -> str:
    """One table: proportions and predicted losses of Climb and each baseline, then the gaps."""
    res = plan.result
    cols = [("climb", res), *plan.baselines.items()]
    name_w = max(8, *(len(s) for s in res.sources + res.eval_only))
    cell = 17
    lines = [
        f"climb allocate: D* = {res.tokens:.4g} tokens"
        + (f", N* = {res.model_params:.4g}" if res.model_params else "")
        + f", objective {res.objective_name}; solver {res.path} ({res.nit} it, KKT residual "
        + f"{res.kkt_residual:.1e}, {'optimal' if res.success else 'NOT optimal: ' + res.message})",
        "each cell: proportion / predicted loss",
        f"{'source':<{name_w}}" + "".join(f"{n:>{cell}}" for n, _ in cols)
        + ("" if res.intervals is None else f"{'climb ' + str(int(100 * (res.interval_level or 0))) + '% CI':>{cell + 4}}"),
    ]  # fmt: skip
    for k, s in enumerate(res.sources):
        row = f"{s:<{name_w}}"
        for _, r in cols:
            loss = f"{r.predicted_loss[r.targets.index(s)]:.4f}" if s in r.targets else "donor"
            row += f"{r.proportions[k]:>9.4f} / {loss:>6}"[-cell:].rjust(cell)
        if res.intervals is not None:
            a, b = res.intervals[s]
            row += f"[{a:.3f}, {b:.3f}]".rjust(cell + 4)
        lines.append(row)
    for t in res.eval_only:
        row = f"{t:<{name_w}}"
        for _, r in cols:
            row += f"{'-':>9} / {r.predicted_loss[r.targets.index(t)]:.4f}"[-cell:].rjust(cell)
        lines.append(row)
    lines.append(f"{'objective':<{name_w}}" + "".join(f"{r.objective:>{cell}.6g}" for _, r in cols))
    gaps = "".join(
        f"{'-':>{cell}}" if n == "climb" else f"{plan.gap(n):>+{cell}.3g}" for n, _ in cols
    )
    lines.append(f"{'gap':<{name_w}}" + gaps)
    if res.eval_only:
        lines.append(
            f"note: evaluation-only target(s) {', '.join(res.eval_only)}: measured, never trained "
            "on — no share (the runs do not show what its own data would do; add proxy runs that "
            "train on it to allocate it), loss predicted from transfer"
        )
    for skip in plan.skipped:
        lines.append(f"note: baseline {skip.name} skipped: {skip.reason}")
    for n, r in plan.baselines.items():
        if r.message:
            lines.append(f"note: {n}: {r.message}")
    return "\n".join(lines)
