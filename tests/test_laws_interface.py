"""One face for every law: keyword-only hyper-parameters, get_params, one validator, diagnostics_,
capabilities instead of class checks; and the effective ratio computed in one place."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

from climb.errors import ClimbError, ClimbWarning
from climb.laws import LAWS, get_law, law_class
from climb.laws.climb import ClimbLaw, ClimbMSLLaw, ClimbParams, RatioMap, transfer
from climb.laws.climb.ratio import transfer_curvature, transfer_slope
from climb.laws.simulate import simulate

BAD_HYPER = {
    "climb": {"n_starts": 0},
    "isolated": {"huber_delta": -1.0},
    "climb-msl": {"transfer": "log"},
    "msl": {"p_floor": 2.0},
    "dml": {"n_starts": 0},
    "regression": {"learning_rate": -1.0},
}


@pytest.mark.parametrize("name", list(LAWS))
def test_constructor_is_keyword_only_and_get_params_round_trips(name: str) -> None:
    cls = law_class(name)
    params = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]
    assert params and all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)
    law = get_law(name)
    hyper = law.get_params()
    assert set(hyper) == {p.name for p in params}
    assert {k: v for k, v in hyper.items()} == {p.name: getattr(law, p.name) for p in params}
    assert type(law)(**hyper).get_params() == hyper
    with pytest.raises(TypeError):
        cls(0)  # type: ignore[misc]


@pytest.mark.parametrize("name", list(LAWS))
def test_bad_hyper_parameter_fails_at_fit_naming_it(name: str) -> None:
    _, runs = simulate(3, 40, seed=0)
    (key, value), = BAD_HYPER[name].items()  # fmt: skip
    law = get_law(name, **{key: value})  # constructing does not validate (scikit-learn)
    with pytest.raises(ClimbError, match=key):
        law.fit(runs)


def test_capabilities_not_classes() -> None:
    assert not issubclass(ClimbMSLLaw, ClimbLaw)
    allocatable = {n for n in LAWS if law_class(n).allocatable}
    with_ratio = {n for n in LAWS if law_class(n).has_effective_ratio}
    assert allocatable == {"climb", "isolated"}
    assert with_ratio == {"climb", "isolated", "climb-msl"}
    _, runs = simulate(3, 40, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        msl = get_law("msl").fit(runs)
    with pytest.raises(ClimbError, match="does not model an effective ratio"):
        msl.effective_ratio(runs.p, runs.tokens)


def test_diagnostics_after_fit() -> None:
    _, runs = simulate(3, 40, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        for name in ("climb", "climb-msl", "msl", "dml"):
            law = get_law(name).fit(runs)
            recs = law.diagnostics_.targets
            assert [r["target"] for r in recs] == runs.targets
            assert all(r["runs"] == 40 and np.isfinite(r["cost"]) for r in recs)
            assert isinstance(law.diagnostics_.floored, dict)


def test_effective_ratio_one_implementation_with_exact_derivatives() -> None:
    rng = np.random.default_rng(0)
    T, S = 4, 6
    W = rng.uniform(-0.2, 0.8, (T, S))
    own = np.array([0, 2, 3, -1])  # the last target is evaluation-only (no own source)
    W[np.arange(3), own[:3]] = 1.0
    eta = np.array([0.5, 1.0, 0.3, 0.7])
    rm = RatioMap(W, own, eta)
    p = rng.dirichlet(np.ones(S))
    # r_i = p_own + Σ_{j≠own} W_ij φ_η(p_j), written out
    expect = np.array([
        (p[own[i]] if own[i] >= 0 else 0.0)
        + sum(W[i, j] * transfer(p[j], eta[i]) for j in range(S) if j != own[i])
        for i in range(T)
    ])  # fmt: skip
    np.testing.assert_allclose(rm(p), expect, rtol=1e-12)
    np.testing.assert_allclose(rm(p[None, :])[0], expect, rtol=1e-12)  # batched
    r, J, C = rm.second_order(p)
    np.testing.assert_allclose(r, expect, rtol=1e-12)
    h = 1e-6
    for k in range(S):
        e = np.zeros(S)
        e[k] = h
        fd = (rm(p + e) - rm(p - e)) / (2 * h)
        np.testing.assert_allclose(J[:, k], fd, rtol=1e-6, atol=1e-8)
        e2 = 1e-4 * e / h
        fd2 = (rm(p + e2) - 2 * rm(p) + rm(p - e2)) / 1e-8
        np.testing.assert_allclose(C[:, k], fd2, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(transfer_slope(p, 0.5), 0.5 * (p + 1e-6) ** -0.5, rtol=1e-12)
    np.testing.assert_allclose(transfer_curvature(p, 0.5), -0.25 * (p + 1e-6) ** -1.5, rtol=1e-12)
    # the law's parameters compute r through the same map
    P = ClimbParams(E=np.ones(T), A=np.zeros(T), alpha=np.zeros(T), B=np.ones(T),
                    beta=np.full(T, 0.3), W=W, kappa=np.zeros(T), tokens_ref=1.0, own=own,
                    eta=eta)  # fmt: skip
    np.testing.assert_allclose(P.effective_ratio(p[None, :], 1e9)[0], expect, rtol=1e-12)
