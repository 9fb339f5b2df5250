"""Record golden values of the laws and the allocator (run from the repository root).

    PYTHONPATH=src python tests/data/make_golden.py

Writes ``tests/data/golden_restructure.json``: for the RegMix data shipped in the package, the
``climb`` law (default, saturating), ``climb`` with ``transfer="linear"``, ``isolated`` and
``climb-msl`` fitted on train 1M — their law JSON, predictions on the 1M / 60M / 1B test sets for
every target and the pile_cc Spearman ρ — plus allocation results (``allocate`` and
``plan_allocation``) of the saved laws under several settings (linear and saturating, bounds and
caps, the ``worst`` objective). ``tests/test_golden_restructure.py`` asserts that the current code
reproduces them. Re-run only when a change of the numbers is intended (and say so in the commit).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from climb.allocation import Constraints, allocate
from climb.allocation.plan import plan_allocation
from climb.data.runs import read_regmix
from climb.errors import ClimbWarning
from climb.evaluation.metrics import evaluate
from climb.laws import get_law, law_from_json
from climb.laws.simulate import random_climb_law

OUT = Path(__file__).with_name("golden_restructure.json")

FITS: dict[str, tuple[str, dict[str, Any]]] = {
    "climb": ("climb", {"seed": 0}),
    "climb-linear": ("climb", {"seed": 0, "transfer": "linear"}),
    "isolated": ("isolated", {"seed": 0}),
    "climb-msl": ("climb-msl", {"seed": 0}),
}
"""Golden key → (law name, hyper-parameters)."""

TEST_SIZES = ("1m", "60m", "1b")

ALLOCATIONS: list[dict[str, Any]] = [
    {"law": "climb", "tokens": 1e9},
    {"law": "climb-linear", "tokens": 1e9},
    {"law": "isolated", "tokens": 1e9},
    {"law": "climb", "tokens": 1e9, "bounds": {"pile_cc": [0.1, 0.4], "github": [None, 0.02]}},
    {
        "law": "climb-linear",
        "tokens": 1e9,
        "bounds": {"pile_cc": [0.1, 0.4], "arxiv": [0.05, None]},
    },
    {"law": "climb", "tokens": 1e10, "caps": 4.0, "weights": {"pile_cc": 3.0, "github": 0.0}},
    {"law": "climb-linear", "tokens": 1e10, "caps": 2.0},
    {"law": "climb", "tokens": 1e9, "objective": "worst"},
    {"law": "climb-linear", "tokens": 1e9, "objective": "worst"},
    {"law": "climb-linear", "tokens": 1e9, "method": "convex"},
    {"law": "sim-eta", "tokens": 1e10},
    {"law": "sim-eta", "tokens": 1e10, "method": "convex"},
    {"law": "sim-eta", "tokens": 1e10, "bounds": {"s1": [0.2, None], "s2": [None, 0.05]}},
    {"law": "sim-eta", "tokens": 1e10, "objective": "worst"},
    {"law": "sim-linear", "tokens": 1e10},
    {"law": "sim-linear", "tokens": 1e10, "caps": 3.0},
]
"""Allocation settings; ``caps`` = max epochs over unique tokens of 0.05·D* per source (scaled)."""


def unique_tokens(sources: list[str], tokens: float) -> dict[str, float]:
    """Deterministic per-source unique-token counts: 0.01..0.2 of D*, by source position."""
    return {s: tokens * (0.01 + 0.19 * k / max(len(sources) - 1, 1)) for k, s in enumerate(sources)}


def allocation_kwargs(case: dict[str, Any], sources: list[str]) -> dict[str, Any]:
    limits: dict[str, Any] = {}
    if "bounds" in case:
        limits["bounds"] = {k: tuple(v) for k, v in case["bounds"].items()}
    if "weights" in case:
        limits["weights"] = dict(case["weights"])
    if "caps" in case:
        limits["unique_tokens"] = unique_tokens(sources, case["tokens"])
        limits["max_epochs"] = case["caps"]
    return {
        "objective": case.get("objective", "sum"),
        "method": case.get("method", "auto"),
        "constraints": Constraints(**limits),
    }


def run_allocations(laws: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Allocation results of every case in :data:`ALLOCATIONS` under the saved law JSON."""
    out = []
    for case in ALLOCATIONS:
        obj = laws[case["law"]]
        kw = allocation_kwargs(case, obj["sources"])
        res = allocate(obj, case["tokens"], **kw)
        plan = plan_allocation(obj, case["tokens"], baselines=("uniform", "isolated"), **kw)
        out.append(
            {
                "case": case,
                "proportions": res.proportions.tolist(),
                "predicted_loss": res.predicted_loss.tolist(),
                "effective_ratio": res.effective_ratio.tolist(),
                "objective": float(res.objective),
                "path": res.path,
                "plan_proportions": plan.result.proportions.tolist(),
                "plan_baselines": {
                    k: float(b.objective) for k, b in sorted(plan.baselines.items())
                },
            }
        )
    return out


def fit_all() -> dict[str, dict[str, Any]]:
    train = read_regmix("train", "1m")
    tests = {s: read_regmix("test", s) for s in TEST_SIZES}
    out: dict[str, dict[str, Any]] = {}
    for key, (name, hyper) in FITS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ClimbWarning)
            law = get_law(name, **hyper).fit(train)
        pred = {s: law.predict_runs(t).tolist() for s, t in tests.items()}
        rho = {s: evaluate(law, t).targets["pile_cc"]["spearman"] for s, t in tests.items()}
        out[key] = {"law": law.to_json(), "predictions": pred, "spearman_pile_cc": rho}
        print(key, rho, flush=True)
    return out


def simulated_laws() -> dict[str, dict[str, Any]]:
    """Two ground-truth laws of ``climb.laws.simulate`` over 6 sources at 2 budgets: saturating
    (η = 0.6, negative transfer removed so that the problem is convex) and linear."""
    out = {}
    for key, eta in (("sim-eta", 0.6), ("sim-linear", 1.0)):
        obj = random_climb_law(6, tokens=(1e8, 1e9), seed=3, eta=eta).to_json()
        obj["params"]["W"] = np.maximum(np.asarray(obj["params"]["W"]), 0.0).tolist()
        out[key] = obj
    return out


def main() -> None:
    fits = fit_all()
    laws = {k: v["law"] for k, v in fits.items()}
    laws.update(simulated_laws())
    # the laws round-trip through JSON exactly (what the allocation cases start from)
    for obj in laws.values():
        assert law_from_json(json.loads(json.dumps(obj))).to_json() == obj
    golden = {
        "fits": fits,
        "simulated_laws": simulated_laws(),
        "allocations": run_allocations(laws),
    }
    OUT.write_text(json.dumps(golden) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.1f} MB)")
    np.testing.assert_equal(len(golden["allocations"]), len(ALLOCATIONS))


if __name__ == "__main__":
    main()
