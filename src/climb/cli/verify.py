"""``climb verify``: train an allocation's mixtures at its target budget with several seeds and
compare Climb's with each baseline, paired by seed (:func:`climb.verification.verify_mixtures`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from climb.errors import ClimbError

DEFAULT_BASELINES = "uniform,temperature,isolated"


def register(sub: argparse._SubParsersAction) -> None:
    v = sub.add_parser(
        "verify",
        help="train an allocation's mixtures at D* with several seeds; Climb vs each baseline",
        description="Train the Climb mixture and baseline mixtures of ALLOCATION (the JSON of "
        "`climb allocate --json`) at its target budget D*, each with the same seeds and the "
        "proxy model and training settings of --plan, into a resumable run store; print each "
        "mixture's realized loss (mean ± spread over seeds) and Climb's paired difference to each "
        "baseline with a t-interval and a verdict (wins / ties within noise / loses), and write "
        "the verification JSON (for `climb report --verification`).",
    )
    v.add_argument("allocation", help="allocation JSON from `climb allocate --json`")
    v.add_argument("--plan", help="the proxy sweep's plan YAML: its model and training "
                   "settings (and corpus) are used; default: the trainer's defaults")  # fmt: skip
    v.add_argument("--store", required=True, help="SQLite run store of the verification runs "
                   "(created when missing; finished runs are reused; their plan is written "
                   "beside it, <store name>.plan.yaml)")  # fmt: skip
    v.add_argument("--corpus", help="corpus directory (default: the plan's, else the embedded one)")
    v.add_argument("--seeds", type=int, default=3,
                   help="training seeds per mixture, 0…N−1 (default 3; at least 2)")  # fmt: skip
    v.add_argument("--baselines",
                   help=f"comma list of the allocation's baselines to verify, or 'all' (default "
                   f"{DEFAULT_BASELINES}, those of them the allocation has)")  # fmt: skip
    v.add_argument("--law", help="fitted law JSON: its predictions are recorded beside the losses")
    v.add_argument("--model-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="change a model option of the plan's (repeatable), e.g. d_model=256")  # fmt: skip
    v.add_argument("--train-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="change a training option of the plan's (repeatable), e.g. lr=0.002")  # fmt: skip
    v.add_argument("--out", help="verification JSON to write (default: beside the store, "
                   "<store name>.verification.json)")  # fmt: skip
    v.add_argument("--workers", type=int, default=None, help="parallel runs (local default 1)")
    v.add_argument("--backend", choices=["local", "ray"], default="local")
    v.add_argument("--json", action="store_true", help="print the verification JSON")
    v.add_argument("--no-progress", action="store_true", help="no progress bar")
    v.set_defaults(func=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    from climb.allocation.result import read_allocation
    from climb.proxy.executors import make_executor
    from climb.verification import allocation_mixtures, verify_mixtures

    if args.seeds < 2:
        raise ClimbError(f"--seeds {args.seeds}: give at least 2 (3 or more for a useful interval)")
    if args.workers is not None and args.workers < 1:
        raise ClimbError(f"--workers {args.workers}: must be ≥ 1")
    out = Path(args.out) if args.out else Path(args.store).with_suffix(".verification.json")
    if out.suffix.lower() != ".json":
        raise ClimbError(f"--out {out}: expected a .json file")
    result, baselines = read_allocation(args.allocation)
    if not result.tokens > 0:  # NaN when the JSON has no "tokens"
        raise ClimbError(f"{args.allocation}: the allocation has no target budget 'tokens'")
    asked = args.baselines or DEFAULT_BASELINES
    names = None if asked.strip() == "all" else [x.strip() for x in asked.split(",") if x.strip()]
    mixtures, missing = allocation_mixtures(
        result.proportions_dict(), {n: b.proportions_dict() for n, b in baselines.items()}, names
    )
    if missing and args.baselines is None:
        print(f"note: the allocation has no {', '.join(missing)}; not verified")
    elif missing:
        have = ", ".join(baselines) or "none"
        raise ClimbError(
            f"--baselines: the allocation has no {', '.join(missing)} (it has: {have}); "
            "allocate with them, or leave them out"
        )
    model, train, corpus, budgets = _settings(args)
    law = None
    if args.law:
        from climb.laws import load_law

        law = load_law(args.law)
    ratio = f"{result.tokens / max(budgets):.1f}×" if budgets else None
    verification = verify_mixtures(
        mixtures,
        int(result.tokens),
        args.store,
        seeds=list(range(args.seeds)),
        corpus=corpus,
        model=model,
        train=train,
        executor=make_executor(args.backend, workers=args.workers),
        law=law,
        plan_path=Path(args.store).with_suffix(".plan.yaml"),
        progress=not args.no_progress,
        settings={
            "allocation": str(args.allocation),
            "extrapolation": f"{ratio} larger" if ratio else "unknown (no --plan)",
        },
    )
    verification.save(out)
    if args.json:
        print(json.dumps(verification.to_json(), indent=2))
        return 0
    where = f" ({ratio} the proxies' largest budget)" if ratio else ""
    print(f"D* = {result.tokens:,.0f} tokens{where}")
    print("\n".join(verification.outcome_lines() + verification.verdict_lines()))
    print(f"wrote {out}")
    return 0


def _settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """Model and training settings (the plan's, with ``--model-opt`` / ``--train-opt``), the
    corpus (``--corpus``, else the plan's) and the plan's true budgets."""
    from climb.cli.parsing import parse_options
    from climb.proxy.config import ModelConfig, TrainConfig
    from climb.proxy.design import Plan, make_config

    model, train = ModelConfig(), TrainConfig()
    corpus, budgets = args.corpus, []
    if args.plan:
        plan = Plan.load(args.plan)
        model, train, budgets = plan.model, plan.train, list(plan.budgets)
        if corpus is None and plan.design.get("corpus") not in (None, "embedded"):
            corpus = str(plan.design["corpus"])
    model = make_config(ModelConfig, {**model.model_dump(), **parse_options(args.model_opt,
                        "--model-opt")}, "--model-opt", "model")  # fmt: skip
    train = make_config(TrainConfig, {**train.model_dump(), **parse_options(args.train_opt,
                        "--train-opt"), "checkpoints": ()}, "--train-opt", "train")  # fmt: skip
    return model, train, corpus, budgets
