"""The ``climb fit-metrics`` verb: fit a law to the runs' downstream metrics (``metric.<name>``)."""

from __future__ import annotations

import argparse

from climb.errors import ClimbError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fit-metrics",
        help="fit downstream metrics (metric.<name> columns) as a link of a loss law, or by regression",
        description="Fit every metric.<name> column of the runs: --link sigmoid (default) ties "
        "each metric to a loss target of a fitted law (--loss-law) through "
        "M = lo + (hi - lo) * sigmoid(a - b * L); --link regression fits LightGBM on the "
        "mixture and budget. See docs/metrics.md.",
    )
    p.add_argument("runs", nargs="+", help="run table(s) with metric.<name> columns")
    p.add_argument("--loss-law", help="fitted loss law JSON (climb fit); needed by --link sigmoid")
    p.add_argument("--link", choices=("sigmoid", "regression"), default="sigmoid")
    p.add_argument(
        "--source", action="append", default=[], metavar="METRIC=TARGET",
        help="the loss target of a metric (repeatable); default: the target named like the metric",
    )  # fmt: skip
    p.add_argument("--metrics", help="comma list of metrics to fit (default: every metric column)")
    p.add_argument("--out", required=True, help="metric law JSON to write")
    p.set_defaults(func=run_fit_metrics)


def run_fit_metrics(args: argparse.Namespace) -> int:
    from climb.data.runs import RunTable
    from climb.laws.metrics import MetricLaw, MetricLink, MetricRegression, save_metric_law

    sources: dict[str, str] = {}
    for item in args.source:
        metric, sep, target = item.partition("=")
        if not sep or not metric or not target:
            raise ClimbError(f"--source '{item}': expected METRIC=TARGET, e.g. xnli_fr=fr")
        sources[metric.removeprefix("metric.")] = target
    tables = [RunTable.read(t) for t in args.runs]
    runs = tables[0] if len(tables) == 1 else RunTable.concat(tables)
    metrics = [m.strip().removeprefix("metric.") for m in args.metrics.split(",")] if args.metrics else None  # fmt: skip
    law: MetricLaw
    if args.link == "sigmoid":
        if not args.loss_law:
            raise ClimbError("--link sigmoid needs --loss-law (the fitted loss law, e.g. climb)")
        from climb.laws import load_law

        law = MetricLink(loss_law=load_law(args.loss_law), sources=sources).fit(runs, metrics)
        detail = ", ".join(f"{m} ← {law.sources_of_[m]} (RMSE {r:.4g})" for m, r in zip(law.metrics_, law.rmse_))  # fmt: skip
    else:
        if sources or args.loss_law:
            raise ClimbError("--source and --loss-law are for --link sigmoid")
        law = MetricRegression().fit(runs, metrics)
        detail = ", ".join(law.metrics_)
    out = save_metric_law(law, args.out)
    print(f"fitted {law.name} on {len(runs)} runs: {detail}; wrote {out}")
    return 0
