"""The own-share floor of the climb family's predictions, ``r_i ≥ ρ p_i`` (``ratio_floor``)."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

from climb.errors import ClimbError, ClimbWarning
from climb.laws import get_law, law_from_json
from climb.laws.climb import ClimbLaw
from climb.laws.climb.ratio import RATIO_FLOOR
from climb.laws.simulate import random_climb_law, simulate_runs

BUDGETS = (1e6, 2e6)


@pytest.fixture(scope="module")
def runs():  # type: ignore[no-untyped-def]
    truth = random_climb_law(4, tokens=BUDGETS, seed=3)
    return simulate_runs(truth, 40, tokens=BUDGETS, noise=0.005, seed=1)


def _fit(runs, name: str = "climb", **hyper: object):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        return get_law(name, seed=0, **hyper).fit(runs)


@pytest.mark.parametrize("name", ["climb", "climb-msl"])
def test_an_unidentified_negative_transfer_cannot_blow_a_share_up(runs, name: str) -> None:  # type: ignore[no-untyped-def]
    """Failing before the floor: a negative weight of a donor that no run pairs with the target
    (here set by hand to −1) took a language at a 10% share to ``r`` ≤ 0 next to that donor at
    85%, and its predicted loss to the law's floor ``R_FLOOR`` (tens of bits); with the floor
    the prediction is at most the law's loss at ``r = ρ p``."""
    law, old = _fit(runs, name), _fit(runs, name, ratio_floor=0.0)
    assert law.get_params()["ratio_floor"] == RATIO_FLOOR == 0.1
    for fitted in (law, old):
        fitted.params_.W[0, 1] = -1.0
        if fitted.params_.eta is not None:
            fitted.params_.eta[0] = 1.0
    mix = np.array([[0.10, 0.85, 0.05, 0.0]])
    d = 1.5e6
    assert (old.params_.effective_ratio(mix, d)[:, 0] <= 0).all()
    bound = law.predict(np.array([[RATIO_FLOOR * 0.10, 0, 0, 0]]), d)[0, 0]  # r = ρ p, no transfer
    assert law.predict(mix, d)[0, 0] == pytest.approx(bound, rel=1e-9)
    assert old.predict(mix, d)[0, 0] > 3 * bound
    np.testing.assert_allclose(law.params_.effective_ratio(mix, d)[0, 0], RATIO_FLOOR * 0.10)


def test_the_floor_changes_nothing_where_transfer_keeps_r_above_it(runs) -> None:  # type: ignore[no-untyped-def]
    law, old = _fit(runs), _fit(runs, ratio_floor=0.0)
    mixes = np.random.default_rng(0).dirichlet(np.ones(4), 200)
    r = old.params_.effective_ratio(mixes, 1.5e6)
    free = (r >= RATIO_FLOOR * mixes).all(axis=1)
    assert free.sum() >= 150
    np.testing.assert_array_equal(law.predict(mixes[free], 1.5e6), old.predict(mixes[free], 1.5e6))
    np.testing.assert_array_equal(law.params_.W, old.params_.W)  # the fit does not see the floor


def test_ratio_floor_round_trips_and_validates(runs) -> None:  # type: ignore[no-untyped-def]
    for name in ("climb", "climb-msl", "isolated"):
        law = _fit(runs, name)
        obj = law.to_json()
        assert obj["params"]["ratio_floor"] == RATIO_FLOOR
        back = law_from_json(copy.deepcopy(obj))
        assert back.get_params()["ratio_floor"] == RATIO_FLOOR
        legacy = copy.deepcopy(obj)
        del legacy["params"]["ratio_floor"], legacy["hyper"]
        old = law_from_json(legacy)
        assert old.params_.ratio_floor == 0.0 and old.get_params()["ratio_floor"] == 0.0
        for bad in (1.0, -0.1, "half", True):
            broken = copy.deepcopy(obj)
            broken["params"]["ratio_floor"] = bad
            with pytest.raises(ClimbError, match="'ratio_floor' must be a number in") as err:
                law_from_json(broken)
            assert "\n" not in str(err.value)
    with pytest.raises(ClimbError, match="ratio_floor must be a number in"):
        ClimbLaw(ratio_floor=1.5).fit(runs)


def test_the_allocation_says_when_the_floor_binds_at_its_mixture() -> None:
    """The allocator optimizes the unfloored ``r``; where a bound forces a mixture in which
    interference takes a weighted target below ``r = ρ p``, its message says so (and not
    otherwise)."""
    from climb.allocation import allocate
    from climb.allocation.constraints import Constraints

    obj = {
        "law": "climb", "sources": ["en", "de"],
        "params": {"E": [1.5, 1.6], "B": [4.0, 5.0], "beta": [0.3, 0.3],
                   "W": [[1.0, -0.95], [0.5, 1.0]], "tokens_ref": 1e9, "ratio_floor": 0.1},
    }  # fmt: skip
    forced = allocate(obj, 1e9, constraints=Constraints(bounds={"en": (0.5, 0.5)}))
    np.testing.assert_allclose(forced.proportions, [0.5, 0.5], atol=1e-9)  # r_en = 0.025 < 0.05
    assert "interference takes en below the law's own-share floor r ≥ 0.1 p" in forced.message
    free = allocate({**obj, "params": {**obj["params"], "W": [[1.0, 0.2], [0.5, 1.0]]}}, 1e9,
                    constraints=Constraints(bounds={"en": (0.5, 0.5)}))  # fmt: skip
    assert "own-share floor" not in free.message
