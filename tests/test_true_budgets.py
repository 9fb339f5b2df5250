"""True budgets end to end: the climb laws fit only true-budget rows and record the fitted token
range; the allocator warns when D* extrapolates beyond it or when κ scales W by more than 3×."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from climb.allocation.extrapolation import extrapolation_warnings, transfer_scale
from climb.allocation.plan import plan_allocation
from climb.cli import main
from climb.data.runs import RunTable
from climb.errors import ClimbError, ClimbWarning
from climb.laws import get_law
from climb.laws.climb import ClimbLaw
from climb.laws.simulate import random_climb_law, simulate

BUDGETS = (1e6, 4e6)


def _with_checkpoints(runs: RunTable) -> RunTable:
    """The runs plus, per run, a mid-schedule checkpoint row at half its tokens whose loss is far
    off the law (a checkpoint overstates loss), with true_budget false and the run's train_run."""
    frame = runs.to_frame()
    ckpt = frame.copy()
    ckpt["run"] = [f"{r}-ckpt" for r in frame["run"]]
    ckpt["tokens"] = frame["tokens"] / 2
    for c in [c for c in frame.columns if c.startswith("loss.")]:
        ckpt[c] = frame[c] * 1.5
    ckpt["true_budget"] = False
    frame["true_budget"] = True
    return RunTable.from_frame(pd.concat([frame, ckpt], ignore_index=True))


@pytest.fixture(scope="module")
def runs() -> RunTable:
    return simulate(3, 60, tokens=BUDGETS, noise=0.005, seed=2)[1]


def test_climb_fits_true_budget_rows_only(runs: RunTable) -> None:
    mixed = _with_checkpoints(runs)
    assert mixed.true_budget.sum() == len(runs) and len(mixed) == 2 * len(runs)
    with pytest.warns(ClimbWarning, match=rf"{len(runs)} of {2 * len(runs)} rows are mid-schedule"):
        law = get_law("climb", seed=0).fit(mixed)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ClimbWarning)  # nothing skipped: no note
        clean = get_law("climb", seed=0).fit(runs)
    # the checkpoint rows change nothing: the same parameters, bit for bit
    assert json.dumps(law.to_json()) == json.dumps(clean.to_json())
    assert law.params_.tokens_range == (min(BUDGETS), max(BUDGETS))
    # ... whereas fitting them (as if they were true budgets) moves β and κ
    as_true = RunTable.from_frame(mixed.to_frame().assign(true_budget=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        biased = get_law("climb", seed=0).fit(as_true)
    assert not np.allclose(biased.beta_, law.beta_, rtol=1e-3)
    assert biased.params_.tokens_range == (min(BUDGETS) / 2, max(BUDGETS))


def test_climb_msl_skips_checkpoint_rows_too(runs: RunTable) -> None:
    with pytest.warns(ClimbWarning, match="not used to fit"):
        get_law("climb-msl", seed=0).fit(_with_checkpoints(runs))


def test_only_checkpoint_rows_is_an_error(runs: RunTable) -> None:
    frame = runs.to_frame().assign(true_budget=False)
    with pytest.raises(ClimbError, match="every row has true_budget false"):
        get_law("climb").fit(RunTable.from_frame(frame))


def test_tokens_range_in_the_law_json(runs: RunTable, tmp_path: Path) -> None:
    law = get_law("climb", seed=0).fit(runs)
    doc = law.to_json()
    assert doc["params"]["tokens_range"] == [min(BUDGETS), max(BUDGETS)]
    back = ClimbLaw.from_json(doc)
    assert back.params_.tokens_range == (min(BUDGETS), max(BUDGETS))
    old = json.loads(json.dumps(doc))
    del old["params"]["tokens_range"]  # a law saved before the key existed still loads
    assert ClimbLaw.from_json(old).params_.tokens_range is None
    old["params"]["tokens_range"] = [5.0, 1.0]
    with pytest.raises(ClimbError, match="'tokens_range' must be"):
        ClimbLaw.from_json(old)


# ---------------------------------------------------------------------- extrapolation warnings
def _law(kappa: float, transfer: bool = True) -> ClimbLaw:
    law = random_climb_law(3, tokens=BUDGETS, seed=1)
    P = law.params_
    P.kappa = np.full(3, kappa)
    P.tokens_range = (min(BUDGETS), max(BUDGETS))
    if not transfer:
        P.W = np.eye(3)
    return law


def test_extrapolation_warnings_fire_and_do_not_fire() -> None:
    # D_ref = 2e6; κ = 0.1: (D*/D_ref)^-κ stays in [1/3, 3] up to D* = 2e6·3^10 ≈ 1.2e11
    mild = _law(0.1)
    assert extrapolation_warnings(mild.params_, mild.targets_, 3.9e7) == []  # 9.75× ≤ 10×
    far = extrapolation_warnings(mild.params_, mild.targets_, 4.1e7)  # 10.25×
    assert len(far) == 1 and "10× the largest true-budget proxy budget" in far[0]
    # κ = 0.4 at D* = 2e7 (5× the proxies): s = 10^-0.4 = 0.40 → fine; at 3.2e7: 16^-0.4 = 0.33
    strong = _law(0.4)
    s = transfer_scale(strong.params_, 3.2e7)
    assert np.allclose(s, 16**-0.4) and s[0] < 1 / 3
    assert extrapolation_warnings(strong.params_, strong.targets_, 2.0e7) == []
    (msg,) = extrapolation_warnings(strong.params_, strong.targets_, 3.2e7)
    assert "κ scales the transfer weights W by more than 3×" in msg and "3 target(s)" in msg
    # below D_ref κ scales W up: s = (D*/D_ref)^-κ > 3 also warns
    assert len(extrapolation_warnings(strong.params_, strong.targets_, 1e5)) == 1
    # a target without transfer is not affected by κ
    assert (
        extrapolation_warnings(_law(0.4, transfer=False).params_, ["s1", "s2", "s3"], 3.2e7) == []
    )
    # a law without tokens_range (saved before it existed): only the κ check
    mild.params_.tokens_range = None
    assert extrapolation_warnings(mild.params_, mild.targets_, 1e9) == []


def test_plan_allocation_issues_and_keeps_the_warnings() -> None:
    law = _law(0.1)
    with pytest.warns(ClimbWarning, match="allocation: the target budget D\\* = 1e\\+08"):
        plan = plan_allocation(law, 1e8, baselines=())
    assert len(plan.warnings) == 1 and plan.to_dict()["warnings"] == plan.warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        near = plan_allocation(law, 8e6, baselines=())
    assert near.warnings == [] and near.to_dict()["warnings"] == []
    assert not any("allocation:" in str(w.message) for w in caught)


def test_cli_allocate_issues_the_warning(tmp_path: Path) -> None:
    """(Outside pytest the CLI prints it as one ``climb: warning: allocation: …`` line.)"""
    path = _law(0.1).save(tmp_path / "law.json")
    match = r"allocation: the target budget D\* = 1e\+08 tokens is 25×"
    with pytest.warns(ClimbWarning, match=match):
        assert main(["allocate", str(path), "--tokens", "1e8", "--baselines", "uniform"]) == 0
