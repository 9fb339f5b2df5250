"""The ceilings ``C_i`` of the support term's seen part: a language a run leaves out while the run
knows its script is predicted at most at the loss such runs were measured at, not at ``L_0``."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

from climb.data.runs import RunTable
from climb.errors import ClimbError, ClimbWarning
from climb.laws import get_law, law_from_json
from climb.laws.climb import ClimbLaw
from climb.laws.climb.support import (
    SupportProfile,
    SupportTerm,
    measured_ceiling,
    support_term_for,
)
from climb.laws.simulate import random_climb_law, simulate_runs

BUDGETS = (1e6, 2e6)
CEILING = 5.0
"""The simulated truth: the seen part of a left-out language saturates at 5 bits (``L_0 = 8``)."""


def _profile(names: list[str]) -> SupportProfile:
    """``s1`` and ``s2`` write one script (bytes 0–63, different frequencies), ``s3`` and ``s4``
    another (64–127) with 10% of their text in the first script's bytes (names, numbers)."""
    rng = np.random.default_rng(0)
    F = np.zeros((4, 256))
    for k in range(4):
        block = slice(0, 64) if k < 2 else slice(64, 128)
        F[k, block] = rng.uniform(0.2, 1, 64)
    F[2:, :64] = 0.1 * F[2:, 64:128].sum(axis=1, keepdims=True) / 64
    return SupportProfile(names, F, 8.0)


@pytest.fixture(scope="module")
def case() -> tuple[ClimbLaw, SupportProfile, RunTable]:
    """Four languages in two scripts; nothing transfers between the scripts, and the truth's seen
    part is capped at :data:`CEILING`. Runs: dense mixtures, the mono runs of ``s1``–``s3`` and
    pairs; none trains on ``s4`` alone, so where a run of ``s4`` leaves ``s1`` and ``s2`` out,
    the climb part has nothing to go on (their transfer from ``s4`` is fitted on runs that
    contain them)."""
    truth = random_climb_law(4, tokens=BUDGETS, seed=2)
    W = truth.params_.W
    W[:2, 2:] = W[2:, :2] = 0.0
    W[0, 1] = W[1, 0] = 0.4
    names = list(truth.sources_)
    profile = _profile(names)
    term = support_term_for(profile, _Table(names, BUDGETS), 1.0, 0.3, None)
    term.g0[:], term.g1[:], term.g2[:] = 11.0, 1.0, 0.5
    term.ceiling = np.full(4, CEILING)
    truth.params_.support = term
    mixes = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0.5, 0.5, 0, 0], [0.6, 0, 0.4, 0],
             [0, 0.7, 0, 0.3]]  # fmt: skip
    P = np.repeat(np.array(mixes, dtype=float), 2, axis=0)
    D = np.tile(BUDGETS, len(mixes))
    rng = np.random.default_rng(1)
    L = truth.predict(P, D) * np.exp(0.005 * rng.standard_normal((len(P), 4)))
    absent = RunTable.from_arrays(
        run=[f"x{i}" for i in range(len(P))], tokens=D, p=P, sources=names, loss=L, targets=names
    )
    dense = simulate_runs(truth, 40, tokens=BUDGETS, noise=0.005, seed=0)
    return truth, profile, RunTable.concat([dense, absent])


class _Table:
    """The two attributes :func:`support_term_for` reads of a run table."""

    def __init__(self, names: list[str], tokens: tuple[float, ...]) -> None:
        self.sources = self.targets = names
        self.tokens = np.array(tokens)


def _fit(runs: RunTable, profile: SupportProfile, **hyper: object) -> ClimbLaw:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        return get_law("climb", seed=0, support=profile, support_trace=None, **hyper).fit(runs)


def test_a_left_out_language_of_a_seen_script_is_predicted_at_its_ceiling(case: tuple) -> None:  # type: ignore[type-arg]
    """Failing before the ceilings: ``s1`` and ``s2`` left out of a run of ``s4`` alone (a
    mixture no proxy trained: their bytes seen, their fitted transfer from ``s4`` about zero)
    were predicted by the climb part unbounded; the truth is 5, as measured where ``s3`` alone
    left them out."""
    truth, profile, runs = case
    mono_d = np.array([[0.0, 0.0, 0.0, 1.0]] * 3)
    budgets = np.array([1e6, 2e6, 1.5e6])
    expect = truth.predict(mono_d, budgets)
    gate = truth.params_.support.gate_weight(mono_d, budgets)
    assert (gate[:, :2] < 0.05).all()  # their script is seen: the seen part is the prediction
    np.testing.assert_allclose(expect[:, :2], CEILING, atol=0.3)
    law = _fit(runs, profile)
    np.testing.assert_allclose(law.params_.support.ceiling[:2], CEILING, atol=0.1)
    assert np.abs(law.predict(mono_d, budgets)[:, :2] - expect[:, :2]).max() < 0.3
    old = _fit(runs, profile, support_ceiling=False)
    assert old.params_.support.ceiling is None
    assert np.abs(old.predict(mono_d, budgets)[:, :2] - expect[:, :2]).min() > 2.0


def test_ceilings_touch_only_gated_pairs_and_are_bounded(case: tuple) -> None:  # type: ignore[type-arg]
    _, profile, runs = case
    law, old = _fit(runs, profile), _fit(runs, profile, support_ceiling=False)
    dense = np.random.default_rng(5).dirichlet(np.ones(4), 50)
    np.testing.assert_array_equal(law.predict(dense, 1.2e6), old.predict(dense, 1.2e6))
    sup = law.params_.support
    measured = measured_ceiling(sup, runs.p, runs.tokens, runs.loss)
    assert (sup.ceiling <= measured + 1e-12).all() and (sup.ceiling <= 8.0).all()
    assert (sup.ceiling >= 8.0 / 4 - 1e-12).all()


def test_measured_ceiling_is_the_highest_seen_script_loss_of_a_left_out_target() -> None:
    names = ["a", "b", "c", "d"]
    profile = _profile(names)
    term = support_term_for(profile, _Table(names, BUDGETS), 1.0, 0.3, None, ceiling=True)
    p = np.array([[0, 0, 1.0, 0], [0, 0, 1.0, 0], [0, 1.0, 0, 0], [1.0, 0, 0, 0]])
    d = np.array([1e6, 2e6, 1e6, 1e6])
    loss = np.array([[4.0, 5.5, 2.0, 3.0], [9.5, 4.5, 1.9, 2.9], [3.0, 2.0, 14.0, 13.0],
                     [1.0, 2.5, np.nan, 12.0]])  # fmt: skip
    # a: left out in rows 0, 1 (seen script: c's 10% of bytes 0–63) and 2 (b, same script)
    # → 9.5 capped at L_0 = 8; b: rows 0, 1, 3 → 5.5; c: left out where its script is unseen
    # (row 2, gate 1) or not measured (row 3) → L_0; d: rows 0, 1 (c, same script) → 3.0
    np.testing.assert_array_equal(measured_ceiling(term, p, d, loss), [8.0, 5.5, 8.0, 3.0])


def test_ceiling_json_round_trip_legacy_and_bad_values(case: tuple) -> None:  # type: ignore[type-arg]
    _, profile, runs = case
    law = _fit(runs, profile)
    obj = law.to_json()
    assert len(obj["params"]["support"]["ceiling"]) == 4
    back = law_from_json(copy.deepcopy(obj))
    probe = np.array([[0.0, 0.0, 0.0, 1.0], [0.2, 0.0, 0.8, 0.0], [0.25] * 4])
    np.testing.assert_array_equal(back.predict(probe, 1.5e6), law.predict(probe, 1.5e6))
    assert back.get_params()["support_ceiling"] is True
    legacy = copy.deepcopy(obj)
    del legacy["params"]["support"]["ceiling"], legacy["hyper"]
    old = law_from_json(legacy)
    assert old.params_.support.ceiling is None and old.get_params()["support_ceiling"] is False
    for bad, why in (([9.0, 5.0, 5.0, 5.0], "above L_0"), ([5.0, 5.0, 5.0], "one short"),
                     ([0.0, 5.0, 5.0, 5.0], "zero"), ("high", "not numbers")):  # fmt: skip
        broken = copy.deepcopy(obj)
        broken["params"]["support"]["ceiling"] = bad
        with pytest.raises(ClimbError, match="ceiling") as err:
            law_from_json(broken)
        assert "\n" not in str(err.value), why
    with pytest.raises(ClimbError, match="support_ceiling must be true or false"):
        get_law("climb", support=profile, support_ceiling="yes").fit(runs)


@pytest.mark.parametrize("name", ["msl", "regression"])
def test_baselines_fit_the_same_ceilings(case: tuple, name: str) -> None:  # type: ignore[type-arg]
    _, profile, runs = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        law = get_law(name, support=profile, support_trace=None).fit(runs)
        old = get_law(name, support=profile, support_trace=None, support_ceiling=False).fit(runs)
    assert law.support_.ceiling is not None and old.support_.ceiling is None
    assert isinstance(law.support_, SupportTerm)
    mono_d = np.array([[0.0, 0.0, 0.0, 1.0]])
    assert (law.predict(mono_d, 1.5e6)[0, :2] <= law.support_.ceiling[:2] + 1e-9).all()
