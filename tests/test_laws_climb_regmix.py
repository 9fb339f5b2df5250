"""The climb law on the public RegMix sweeps: fitted on train 1M, ranked on held-out 1M/60M/1B."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from climb.data.runs import RunTable, read_regmix
from climb.errors import ClimbWarning
from climb.evaluation.metrics import evaluate
from climb.laws.climb import ClimbLaw, IsolatedLaw


@pytest.fixture(scope="module")
def fitted(regmix_train: RunTable) -> ClimbLaw:
    return ClimbLaw(seed=0).fit(regmix_train)


@pytest.mark.slow
def test_climb_ranks_held_out_regmix_mixtures(fitted: ClimbLaw) -> None:
    rho = {s: evaluate(fitted, read_regmix("test", s)).targets["pile_cc"]["spearman"]
           for s in ("1m", "60m", "1b")}  # fmt: skip
    # the thresholds, met by the default (saturating-transfer) law
    assert rho["1m"] >= 0.97
    assert rho["60m"] >= 0.97
    assert rho["1b"] >= 0.985


@pytest.mark.slow
def test_saturation_is_fitted_on_regmix(fitted: ClimbLaw) -> None:
    # every target has donors at many shares: η is fitted for all, and transfer saturates
    assert fitted.transfer == "saturating"
    assert all(i["eta_fitted"] for i in fitted.diagnostics_.targets)
    assert ((fitted.eta_ >= 0.2) & (fitted.eta_ < 0.95)).all()
    assert fitted.to_json()["params"]["eta"] == fitted.eta_.tolist()


@pytest.mark.slow
def test_climb_fit_quality_on_regmix(fitted: ClimbLaw, regmix_train: RunTable) -> None:
    assert len(fitted.diagnostics_.targets) == 13 and all(
        i["runs"] == 512 for i in fitted.diagnostics_.targets
    )
    ev = evaluate(fitted, read_regmix("test", "1m"))
    assert ev.overall["spearman"] >= 0.975 and ev.overall["mape"] <= 0.02
    # one budget, one model size: neither κ nor A N^-α is fitted
    assert (fitted.kappa_ == 0).all() and (fitted.A_ == 0).all()
    # transfer into pile_cc is positive from the web-like sources
    pc = fitted.targets_.index("pile_cc")
    assert fitted.W_[pc, fitted.sources_.index("pile_cc")] == 1.0
    assert fitted.W_[pc].sum() > 1.5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        iso = IsolatedLaw().fit(regmix_train)
    ev_iso = evaluate(iso, read_regmix("test", "1m"))
    assert ev.overall["mae"] < 0.5 * ev_iso.overall["mae"]
    assert np.isfinite(fitted.predict_runs(read_regmix("test", "1b"))).all()
