"""The Constraints object: checked once when made, resolved against a law, carried through."""

from __future__ import annotations

import numpy as np
import pytest

from climb.allocation import Constraints, allocate, build_problem, climb_params_of
from climb.allocation.constraints import DEFAULT_MAX_EPOCHS
from climb.allocation.plan import plan_allocation
from climb.allocation.synthetic import random_climb_json
from climb.data.runs import RunTable
from climb.errors import ClimbError

LAW = random_climb_json(4, 0, n_donors=1)  # sources s000..s003, s003 a pure donor
SOURCES = LAW["sources"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"bounds": {"s000": (0.5, 0.2)}},
            "bounds: 's000' has lower bound 0.5 above upper bound 0.2",
        ),
        ({"bounds": {"s000": (-0.1, None)}}, "bounds: 's000' bounds must lie in [0, 1]"),
        (
            {"bounds": {"s000": (None, "x")}},
            "bounds: 's000' has a bound that is not a finite number",
        ),
        ({"bounds": {"s000": 0.3}}, "bounds: 's000' must map to a pair (lo, hi)"),
        ({"bounds": {"s000": (0.6, None), "s001": (0.6, None)}}, "lower bounds sum to 1.2 > 1"),
        ({"weights": {"s000": -1}}, "weights: 's000' has weight -1"),
        ({"weights": {"s000": float("nan")}}, "weights: 's000' has weight nan"),
        ({"unique_tokens": {"s000": -5.0}}, "unique_tokens: 's000' has count -5.0"),
        ({"max_epochs": 2.0}, "max_epochs needs unique_tokens"),
        ({"unique_tokens": {}, "max_epochs": 0.0}, "max_epochs must be a positive number"),
    ],
)
def test_bad_constraints_fail_when_made(kwargs: dict, message: str) -> None:
    with pytest.raises(ClimbError) as info:
        Constraints(**kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert "--" not in str(info.value)  # library errors name Python parameters


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bounds": {"xx": (0, 1)}}, "bounds: unknown source 'xx'; the law's sources are: s000"),
        ({"weights": {"s003": 1.0}}, "weights: 's003' is a pure donor"),
        ({"weights": {"s000": 0, "s001": 0, "s002": 0}}, "every target has weight 0"),
        ({"unique_tokens": {"s000": 1e9}}, "no count for law source(s) s001, s002, s003"),
        ({"unique_tokens": dict.fromkeys(SOURCES, 1e8)}, "data caps sum to 0.16 < 1"),
        (
            {"unique_tokens": dict.fromkeys(SOURCES, 1e9), "bounds": {"s000": (0.5, None)}},
            "source 's000': lower bound 0.5 exceeds its data cap 0.4",
        ),
        ({"bounds": dict.fromkeys(SOURCES, (None, 0.2))}, "the upper bounds sum to 0.8 < 1"),
    ],
)
def test_constraints_are_checked_against_the_law(kwargs: dict, message: str) -> None:
    cons = Constraints(**kwargs)  # fine on its own
    with pytest.raises(ClimbError) as info:
        allocate(LAW, 1e10, constraints=cons)
    assert message in str(info.value) and "--" not in str(info.value)


def test_unique_tokens_of_other_sources_are_not_used() -> None:
    """A whole corpus' counts (``climb corpus stats --unique-tokens-out``) cap the law's sources;
    the extra rows change nothing."""
    counts = dict.fromkeys(SOURCES, 1e9)
    with_extra = allocate(LAW, 1e10, constraints=Constraints(unique_tokens={**counts, "zz": 5.0}))
    exact = allocate(LAW, 1e10, constraints=Constraints(unique_tokens=counts))
    np.testing.assert_array_equal(with_extra.proportions, exact.proportions)


def test_resolve_gives_the_arrays() -> None:
    cons = Constraints(
        bounds={"s001": (0.1, None), "s002": (None, 0.5)},
        unique_tokens={"s000": 1e9, "s001": 5e9, "s002": 1e11, "s003": 1e11},
        weights={"s000": 2.0, "s003": 0.0},
    )
    assert cons.max_epochs == DEFAULT_MAX_EPOCHS
    lo, hi, caps, U, w = cons.resolve(SOURCES, SOURCES[:3], 1e10)
    np.testing.assert_allclose(lo, [0, 0.1, 0, 0])
    np.testing.assert_allclose(caps, [0.4, 1.0, 1.0, 1.0])  # 4 epochs of U / D*, at most 1
    np.testing.assert_allclose(hi, [0.4, 1.0, 0.5, 1.0])
    np.testing.assert_allclose(U, [1e9, 5e9, 1e11, 1e11])
    np.testing.assert_allclose(w, [2.0, 1.0, 1.0])
    assert cons.to_dict()["bounds"] == {"s001": [0.1, None], "s002": [None, 0.5]}


def test_one_object_travels_through_the_plan_and_the_bootstrap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cons = Constraints(bounds={"s000": (None, 0.2)}, weights={"s001": 3.0})
    P, S, T = climb_params_of(LAW)
    problem = build_problem(P, S, T, 1e10, constraints=cons)
    assert problem.constraints is cons
    res = allocate(LAW, 1e10, constraints=cons)
    assert res.proportions[0] <= 0.2 + 1e-12
    seen = []

    def fake_bootstrap(runs: RunTable, tokens: float, params: object, **kw: object) -> None:
        seen.append(kw["constraints"])
        raise ClimbError("stop here")

    monkeypatch.setattr("climb.allocation.plan.bootstrap_allocation", fake_bootstrap)
    runs = RunTable.from_arrays(
        run=["a", "b"], tokens=1e9, p=[[0.25] * 4, [0.4, 0.2, 0.2, 0.2]], sources=S,
        loss=[[3.0] * 3, [2.9, 3.1, 3.1]], targets=T,
    )  # fmt: skip
    with pytest.raises(ClimbError, match="stop here"):
        plan_allocation(LAW, 1e10, constraints=cons, runs=runs, n_boot=5, baselines=("uniform",))
    assert seen == [cons] and seen[0] is cons
