"""The support-aware term of the climb law: exact reduction, recovery, bounds, JSON, bad input."""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pytest

from climb.data.runs import RunTable
from climb.errors import ClimbError, ClimbWarning
from climb.laws import get_law, load_law
from climb.laws.climb import ClimbLaw
from climb.laws.climb.support import TRACE_TOKENS, UNSEEN_GATE, SupportProfile, SupportTerm
from climb.laws.simulate import random_climb_law, simulate_runs

K = 4
BUDGETS = (1e6, 2e6)
G0, G1, G2 = 10.0, 1.5, 1.0


def _profile(names: list[str], seed: int = 0) -> SupportProfile:
    """Byte profiles: a shared 'ASCII' block (large for s1, s2, small for s3, s4) and one block of
    48 byte values per language that no other language uses (its own 'script')."""
    rng = np.random.default_rng(seed)
    F = np.zeros((len(names), 256))
    for k in range(len(names)):
        F[k, :64] = rng.uniform(0.5, 1, 64) * (0.9 if k < 2 else 0.3)
        F[k, 64 + 48 * k : 64 + 48 * (k + 1)] = rng.uniform(0.5, 1, 48)
    return SupportProfile(names, F, 8.0)


def _term(names: list[str], profile: SupportProfile) -> SupportTerm:
    return SupportTerm(
        source_freq=profile.rows(names), target_freq=profile.rows(names),
        own=np.arange(len(names)), untrained_loss=8.0, n0=1.0, g0=np.full(len(names), G0),
        g1=np.full(len(names), G1), tokens_ref=float(np.sqrt(BUDGETS[0] * BUDGETS[1])),
        g2=np.full(len(names), G2), gate=UNSEEN_GATE, trace_tokens=TRACE_TOKENS,
    )  # fmt: skip


@pytest.fixture(scope="module")
def case() -> tuple[ClimbLaw, SupportProfile, RunTable, np.ndarray, np.ndarray]:
    """A simulated climb law with a known support term (``G`` shared by all targets), its runs (dense mixtures, plus mono runs
    and pairs that leave languages out), and the mixtures / budgets that leave some out."""
    truth = random_climb_law(K, tokens=BUDGETS, seed=1)
    # transfer only between the two languages that share most byte values (s1, s2): the loss of
    # a left-out language is then its text's unseen part plus the seen part at the cap L_0
    truth.params_.W[2:, :2] = truth.params_.W[:2, 2:] = 0.0
    truth.params_.W[2, 3] = truth.params_.W[3, 2] = 0.0
    names = list(truth.sources_)
    profile = _profile(names)
    truth.params_.support = _term(names, profile)
    mixes = [*np.eye(K), [0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5], [0.5, 0, 0.5, 0], [0, 0.3, 0, 0.7]]
    P = np.repeat(np.array(mixes, dtype=float), 2, axis=0)
    D = np.tile(BUDGETS, len(mixes))
    rng = np.random.default_rng(0)
    L = truth.predict(P, D) * np.exp(0.005 * rng.standard_normal((len(P), K)))
    absent = RunTable.from_arrays(
        run=[f"x{i}" for i in range(len(P))], tokens=D, p=P, sources=names, loss=L, targets=names
    )
    dense = simulate_runs(truth, 40, tokens=BUDGETS, noise=0.005, seed=0)
    return truth, profile, RunTable.concat([dense, absent]), P, D


@pytest.fixture(scope="module")
def fitted(case: tuple) -> ClimbLaw:  # type: ignore[type-arg]
    _, profile, runs, _, _ = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        return get_law("climb", seed=0, support=profile, support_count=1.0).fit(runs)


def test_reduces_exactly_to_the_climb_law_when_every_language_has_a_share(case: tuple) -> None:  # type: ignore[type-arg]
    _, profile, runs, _, _ = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        fitted = get_law("climb", seed=0, support=profile, support_trace=None).fit(runs)
    P = fitted.params_
    rng = np.random.default_rng(3)
    mixes = np.vstack([rng.dirichlet(np.ones(K), 50), np.full((1, K), 1e-9) + np.eye(K)[0]])
    mixes /= mixes.sum(axis=1, keepdims=True)
    for d in (3e5, 1e6, 1e9):  # without the trace gate: exact wherever p_i > 0
        plain = P.loss_from_ratio(P.effective_ratio(mixes, d), d)
        assert np.abs(fitted.predict(mixes, d) - plain).max() <= 1e-12
        assert not P.support.unseen_mass(mixes, d).any()  # type: ignore[union-attr]
    # and a law without a profile has no term at all: the old law, bit for bit
    no_term = copy.deepcopy(fitted)
    no_term.params_.support = None
    np.testing.assert_array_equal(no_term.predict(mixes, 1e6), fitted.predict(mixes, 1e6))


def test_recovers_the_simulated_unseen_loss(case: tuple, fitted: ClimbLaw) -> None:  # type: ignore[type-arg]
    truth, _, _, P, D = case
    sup = fitted.params_.support
    assert sup is not None
    # within 5%: the climb part's fit error, which the trace pairs (own tokens < 30 T_0, 6 here)
    # pass on to G (without them in the truth and the fit: 0.2%)
    np.testing.assert_allclose(sup.g0, G0, rtol=0.05)
    np.testing.assert_allclose(sup.g1, G1, rtol=0.15)
    np.testing.assert_allclose(sup.g2, G2, rtol=0.15)
    # and the pairs that leave a language out are predicted within 0.5 (losses of 8-14 there)
    err = np.abs(fitted.predict(P, D) - truth.predict(P, D))[P == 0]
    assert err.mean() < 0.5


def test_absent_script_loss_rises_with_training_and_is_bounded(fitted: ClimbLaw) -> None:
    mono = np.eye(K)[0]  # s1 only: s3, s4 share few byte values with it
    budgets = np.geomspace(1e5, 1e8, 12)
    absent = fitted.predict(np.tile(mono, (budgets.size, 1)), budgets)[:, 2:]
    # rises with training from the proxies' range on, until the unseen loss reaches its ceiling,
    # over the budgets the law may be used at without an extrapolation warning (≤ 10× the
    # proxies'); beyond, a bounded κ lets fitted noise-level transfer slowly lower it again
    near = budgets <= 10 * max(BUDGETS)
    rises = np.diff(absent[near], axis=0)
    at_ceiling = absent[near][1:] >= 2 * 8.0 - 1e-9
    assert (rises[:4] > 0).all() and ((rises > 0) | at_ceiling).all()
    assert absent[3:].min() > 8.0  # above the untrained loss, as measured on byte-level models
    rng = np.random.default_rng(0)
    mixes = rng.dirichlet(np.full(K, 0.2), 200) * (rng.uniform(size=(200, K)) > 0.4)
    mixes = np.vstack([np.eye(K), mixes[mixes.sum(axis=1) > 0]])
    mixes /= mixes.sum(axis=1, keepdims=True)
    for d in np.geomspace(1e3, 1e18, 16):  # a language left out: never above 2 × untrained loss
        assert fitted.predict(mixes, d)[mixes == 0].max() <= 2 * 8.0


def test_json_round_trip_keeps_the_term(fitted: ClimbLaw, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = fitted.save(tmp_path / "law.json")
    back = load_law(path)
    P = np.array([[1.0, 0, 0, 0], [0, 0.5, 0.5, 0], [0.25] * 4])
    np.testing.assert_allclose(back.predict(P, 1.3e6), fitted.predict(P, 1.3e6), rtol=0, atol=1e-12)
    assert "support" in fitted.to_json()["params"]


def test_bad_support_input_gets_one_line_errors(case: tuple) -> None:  # type: ignore[type-arg]
    _, profile, runs, _, _ = case
    with pytest.raises(ClimbError, match="support must be a SupportProfile"):
        get_law("climb", support={"s1": [1.0]}).fit(runs)
    with pytest.raises(ClimbError, match="support_count must be > 0"):
        get_law("climb", support=profile, support_count=0).fit(runs)
    partial = SupportProfile(profile.names[:2], profile.frequencies[:2], 8.0)
    with pytest.raises(ClimbError, match="no frequencies for sources s3, s4"):
        get_law("climb", support=partial).fit(runs)
    with pytest.raises(ClimbError, match="frequencies must be"):
        SupportProfile(["a"], np.ones((2, 256)), 8.0)
    bad = get_law("climb", support=profile).fit(runs).to_json()
    del bad["params"]["support"]["g1"]
    with pytest.raises(ClimbError, match="'support' needs numbers"):
        ClimbLaw.from_json(bad)


def test_profile_from_texts_counts_bytes() -> None:
    prof = SupportProfile.from_texts({"en": b"abab", "ru": "жж".encode()})
    assert prof.untrained_loss == 8.0
    assert prof.frequencies[0, ord("a")] == 0.5
    assert prof.frequencies[1, 0xD0] == 0.5 and prof.frequencies[1, 0xB6] == 0.5
    with pytest.raises(ClimbError, match="has no text"):
        SupportProfile.from_texts({"x": b""})


def test_cli_fit_and_cv_with_a_corpus(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from climb.cli import main

    rng = np.random.default_rng(0)
    names = ["en", "fr", "ru"]  # in the embedded corpus
    mixes = np.vstack([np.eye(3), rng.dirichlet(np.ones(3), 9), [[0.5, 0.5, 0.0]] * 2])
    d = np.tile([3e5, 6e5], len(mixes))
    P = np.repeat(mixes, 2, axis=0)
    loss = 2.0 + 30 * (P * d[:, None] + 1e3) ** -0.3 + 9.0 * (P == 0)
    runs = RunTable.from_arrays(run=[f"r{i}" for i in range(len(P))], tokens=d, p=P,
                                sources=names, loss=loss, targets=names)  # fmt: skip
    path = runs.write(tmp_path / "runs.csv")
    out = tmp_path / "law.json"
    assert main(["fit", str(path), "--corpus", "embedded", "--out", str(out)]) == 0
    law = load_law(out)
    assert law.params_.support is not None
    absent = law.predict(np.eye(3), 6e5)[np.eye(3) == 0]  # fitted on 11 bits/byte or more there
    assert absent.min() > 8.0
    capsys.readouterr()
    assert main(["cv", str(path), "--corpus", "embedded", "--folds", "3", "--json"]) == 0
    cv = json.loads(capsys.readouterr().out)
    # the report cross-validates the estimator the law JSON records (support term included):
    # its CV is climb cv's with the same corpus, not the plain law's
    rep = tmp_path / "rep"
    assert main(["report", "--runs", str(path), "--law", str(out), "--folds", "3",
                 "--out", str(rep)]) == 0  # fmt: skip
    html = (rep / "report.html").read_text(encoding="utf-8")
    assert f"<td>climb</td><td>3</td><td>{cv['overall']['mae']:.4f}</td>" in html
    assert f"<td>{cv['by_share']['zero']['mae']:.4f}</td>" in html
    assert main(["fit", str(path), "--law", "dml", "--corpus", "embedded", "--out", str(out)]) == 0
    assert "support" in json.loads(out.read_text())["params"]  # the baselines take it too
    capsys.readouterr()
    import climb.cli.laws as cli_laws

    class NoTerm:  # a law (e.g. registered by a user) without the term
        def __init__(self, *, seed: int = 0) -> None:
            self.seed = seed

    monkeypatch.setattr(cli_laws, "law_class", lambda name: NoTerm)
    assert main(["fit", str(path), "--law", "mine", "--corpus", "embedded", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["climb: error: --corpus applies to laws with the support-aware term, not 'mine'"]


def test_bootstrap_refits_with_the_laws_own_hyper_parameters(case, fitted, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import climb.laws as laws_pkg
    from climb.allocation.plan import plan_allocation

    _, profile, runs, _, _ = case
    seen: list[dict] = []  # type: ignore[type-arg]
    real = laws_pkg.get_law

    def spy(name, **hyper):  # type: ignore[no-untyped-def]
        seen.append({"name": name, **hyper})
        return real(name, **hyper)

    monkeypatch.setattr(laws_pkg, "get_law", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        plan_allocation(fitted, 1.5e6, runs=runs, n_boot=2, baselines=("uniform",), n_jobs=1)
    refits = [h for h in seen if h["name"] == "climb"]  # n_jobs=1: the spy sees the refits
    assert len(refits) == 2
    assert all(h["support"] is profile and h["support_count"] == 1.0 for h in refits)


def test_climb_msl_takes_the_same_term(case: tuple, tmp_path) -> None:  # type: ignore[type-arg, no-untyped-def]
    """climb-msl with a profile: exact where every language has a share, the left-out pairs
    predicted far better than without the term, and the term survives its JSON."""
    truth, profile, runs, P, D = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        plain = get_law("climb-msl", seed=0).fit(runs)
        law = get_law("climb-msl", seed=0, support=profile).fit(runs)
    sup = law.params_.support
    assert sup is not None and sup.gate == UNSEEN_GATE
    dense = np.random.default_rng(5).dirichlet(np.ones(K), 60)
    dense = dense[(dense * 1.3e6 >= 30 * TRACE_TOKENS).all(axis=1)]  # beyond the trace gate
    assert len(dense) >= 20
    np.testing.assert_array_equal(law.predict(dense, 1.3e6), plain.predict(dense, 1.3e6))
    err = np.abs(law.predict(P, D) - truth.predict(P, D))[P == 0]
    err_plain = np.abs(plain.predict(P, D) - truth.predict(P, D))[P == 0]
    assert err.mean() < 0.5 < err_plain.mean()
    back = load_law(law.save(tmp_path / "msl.json"))
    np.testing.assert_allclose(back.predict(P, D), law.predict(P, D), rtol=0, atol=1e-12)


# ---------------------------------------------------------------------- the trace gate
def test_trace_gate_is_exact_beyond_30_T0_and_blends_trace_shares(fitted: ClimbLaw) -> None:
    """The default law (``support_trace = 1000``): where a language's own tokens ``p_i D`` are
    below ``30 T_0`` and its bytes are not covered by the other sources, ``s_i =
    exp(−p_i D / T_0) · min(1, u_i^{−i} / τ)``; beyond ``30 T_0`` it is the climb law, exactly."""
    P, sup = fitted.params_, fitted.params_.support
    assert sup is not None and sup.trace_tokens == TRACE_TOKENS == 1000.0
    rng = np.random.default_rng(3)
    mixes = rng.dirichlet(np.ones(K), 200)
    for d in (1e6, 1e9):
        far = (mixes * d >= 30 * TRACE_TOKENS).all(axis=1)
        assert far.sum() >= 20
        plain = P.loss_from_ratio(P.effective_ratio(mixes[far], d), d)
        np.testing.assert_array_equal(fitted.predict(mixes[far], d), plain)
    d = 1e6
    shares = np.array([1e-4, 1e-3, 5e-3, 0.02])  # s3 at own tokens 100, 1k, 5k, 20k
    mixes = np.column_stack([(1 - shares) / 3, (1 - shares) / 3, shares, (1 - shares) / 3])
    F = profile_rows = sup.source_freq  # targets = sources here
    q = mixes.copy()
    q[:, 2] = 0.0  # s3 left out: the unseen mass of its text under the other sources
    u_left_out = np.exp(-(d / sup.n0) * (q @ F)) @ profile_rows[2]
    assert (u_left_out > 0.3).all()  # s3's own byte block: its script is not covered
    expect = np.exp(-shares * d / 1000.0) * np.minimum(u_left_out / sup.gate, 1.0)
    np.testing.assert_allclose(sup.gate_weight(mixes, d)[:, 2], expect, rtol=1e-12)
    climb_all = P.loss_from_ratio(P.effective_ratio(mixes, d), d)
    G = sup.unsupported_loss(climb_all, mixes, d)[:, 2]
    s3 = (1 - expect) * np.minimum(climb_all[:, 2], sup.seen_ceiling()[2]) + expect * G
    np.testing.assert_allclose(fitted.predict(mixes, d)[:, 2], s3, rtol=1e-12)
    # a language whose bytes the others cover gets no trace gate: s1 next to s2 (shared block)
    covered = SupportTerm(**{**vars(sup), "source_freq": np.vstack([F[1], F[1], F[2], F[3]]),
                             "target_freq": np.vstack([F[1], F[1], F[2], F[3]])})  # fmt: skip
    assert covered.gate_weight(np.array([[1e-4, 0.5, 0.25, 0.2499]]), d)[0, 0] == 0.0


def test_trace_gate_round_trips_and_validates(case: tuple, fitted: ClimbLaw, tmp_path) -> None:  # type: ignore[type-arg, no-untyped-def]
    _, profile, runs, _, _ = case
    obj = fitted.to_json()
    assert obj["params"]["support"]["trace_tokens"] == 1000.0
    back = load_law(fitted.save(tmp_path / "law.json"))
    P = np.array([[1e-4, 0.3, 0.3, 0.3999], [0, 0.5, 0.5, 0], [0.3, 0.3, 0.399, 0.001]])
    np.testing.assert_allclose(back.predict(P, 1e6), fitted.predict(P, 1e6), rtol=0, atol=1e-12)
    old = copy.deepcopy(obj)  # a law saved before the trace gate: none
    del old["params"]["support"]["trace_tokens"]
    assert ClimbLaw.from_json(old).params_.support.trace_tokens is None  # type: ignore[union-attr]
    obj["params"]["support"]["trace_tokens"] = -1.0
    with pytest.raises(ClimbError, match=r"trace_tokens > 0 \(or absent\)"):
        ClimbLaw.from_json(obj)
    with pytest.raises(ClimbError, match="support_trace must be > 0 tokens"):
        get_law("climb", support=profile, support_trace=0).fit(runs)


# ---------------------------------------------------------------------- the baselines
@pytest.mark.parametrize("name", ["msl", "dml", "regression"])
def test_baseline_laws_take_the_same_term(case: tuple, name: str, tmp_path) -> None:  # type: ignore[type-arg, no-untyped-def]
    """msl, dml and regression with a profile (laws/supported.py): unchanged where the gate is
    0, the left-out pairs bounded and predicted better than by the law alone, the term kept in
    the JSON."""
    truth, profile, runs, P, D = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        plain = get_law(name, seed=0).fit(runs)
        law = get_law(name, seed=0, support=profile).fit(runs)
    assert law.support_ is not None and plain.support_ is None
    dense = np.random.default_rng(5).dirichlet(np.ones(K), 60)
    dense = dense[(dense * 1.3e6 >= 30 * TRACE_TOKENS).all(axis=1)]
    assert len(dense) >= 20
    np.testing.assert_array_equal(law.predict(dense, 1.3e6), plain.predict(dense, 1.3e6))
    left_out = P == 0
    err = np.abs(law.predict(P, D) - truth.predict(P, D))[left_out]
    err_plain = np.abs(plain.predict(P, D) - truth.predict(P, D))[left_out]
    assert err.mean() < 0.5 * err_plain.mean()
    assert law.predict(P, D)[left_out].max() <= 2 * 8.0
    back = load_law(law.save(tmp_path / f"{name}.json"))
    np.testing.assert_allclose(back.predict(P, D), law.predict(P, D), rtol=0, atol=1e-12)
    assert "support" not in plain.to_json()["params"]
    with pytest.raises(ClimbError, match="support_gate must be in"):
        get_law(name, support=profile, support_gate=2.0).fit(runs)


# ---------------------------------------------------------------------- saved hyper-parameters
@pytest.mark.parametrize("name", ["climb", "climb-msl", "isolated", "msl", "dml", "regression"])
def test_a_saved_law_refits_as_it_was_fitted(case: tuple, name: str, tmp_path) -> None:  # type: ignore[type-arg, no-untyped-def]
    """The law JSON records the hyper-parameters (the support profile comes back from the term's
    frequencies): a loaded law's ``clone()`` is the estimator that was fitted, and refits to the
    same predictions — what ``climb report`` cross-validates."""
    _, profile, runs, P, D = case
    hyper = {"seed": 3, "support": profile, "support_gate": 0.5, "support_trace": 2000.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        law = get_law(name, **hyper).fit(runs)
        back = load_law(law.save(tmp_path / "law.json"))
        refit = back.clone().fit(runs)
    got, want = back.get_params(), law.get_params()
    np.testing.assert_allclose(got.pop("support").rows(runs.sources), profile.rows(runs.sources))
    want.pop("support")
    assert got == want and got["seed"] == 3 and got["support_gate"] == 0.5
    # the same fit: the profile comes back renormalized, equal up to rounding
    np.testing.assert_allclose(refit.predict(P, D), law.predict(P, D), rtol=1e-9, atol=0)
    # a law saved before the record loads with its term's settings restored (the rest default)
    old = law.to_json()
    del old["hyper"]
    legacy = type(law).from_json(old).get_params()
    assert legacy["support_gate"] == 0.5 and legacy["support_trace"] == 2000.0
    assert legacy["support"] is not None


def test_a_bad_hyper_record_gets_one_line_errors(fitted: ClimbLaw) -> None:
    obj = fitted.to_json()
    for hyper, needle in (
        ([1], "'hyper' must be an object"),
        ({**obj["hyper"], "depth": 3}, "'hyper' has 'depth', which is not a hyper-parameter"),
        ({**obj["hyper"], "support_gate": 2.0}, "support_gate must be in (0, 1]"),
    ):
        bad = {**copy.deepcopy(obj), "hyper": hyper}
        with pytest.raises(ClimbError) as err:
            ClimbLaw.from_json(bad)
        assert needle in str(err.value) and "\n" not in str(err.value)


def test_a_law_saved_before_the_record_keeps_what_its_parameters_imply(case: tuple) -> None:  # type: ignore[type-arg]
    _, profile, runs, _, _ = case
    unique = {s: 1e7 for s in runs.sources}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        law = get_law("climb", seed=0, n_starts=1, support=profile, budget_exponent="free",
                      unique_tokens=unique).fit(runs)  # fmt: skip
    old = law.to_json()
    del old["hyper"]
    back = ClimbLaw.from_json(old).get_params()
    assert back["budget_exponent"] == "free" and back["transfer"] == "saturating"
    assert back["unique_tokens"] == unique and back["support"] is not None
    assert back["n_starts"] == 2  # not implied by the parameters: the default


def test_profile_from_token_ids_and_its_sparse_json(case: tuple, tmp_path) -> None:  # type: ignore[type-arg, no-untyped-def]
    """Token frequencies for proxies of another tokenizer: ``L_0 = log2 V`` bits per token at the
    texts' mean tokens per byte (the runs' losses are bits per byte); a vocabulary beyond 1,024
    items is written sparsely, and a law with such a term round-trips exactly."""
    ids = {"en": np.array([3, 3, 5, 7]), "ja": np.array([4000, 4001])}
    prof = SupportProfile.from_token_ids(ids, 8192, n_bytes=18)
    assert prof.frequencies.shape == (2, 8192)
    assert prof.frequencies[0, 3] == 0.5 and prof.frequencies[1, 4001] == 0.5
    assert prof.untrained_loss == pytest.approx(13.0 * 6 / 18)  # log2 8192 = 13 bits per token
    doc = prof.to_json()
    assert doc["vocab_size"] == 8192 and doc["frequencies"]["ja"] == {"ids": [4000, 4001],
                                                                        "freq": [0.5, 0.5]}  # fmt: skip
    back = SupportProfile.from_json(json.loads(json.dumps(doc)))
    np.testing.assert_array_equal(back.frequencies, prof.frequencies)
    with pytest.raises(ClimbError, match="has no text"):
        SupportProfile.from_token_ids({"x": np.array([], dtype=int)}, 8192, 1)
    # a law fitted with a 4,096-item profile: the byte profile's items spread over a larger
    # vocabulary (the same unseen masses), saved sparsely, loaded with the same predictions
    _, profile, runs, _, _ = case
    wide = SupportProfile(profile.names, np.hstack([profile.frequencies, np.zeros((K, 3840))]),
                          profile.untrained_loss)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        law = get_law("climb", seed=0, support=wide).fit(runs)
        same = get_law("climb", seed=0, support=profile).fit(runs)
    P = np.array([[1.0, 0, 0, 0], [0, 0.5, 0.5, 0], [0.25] * 4])
    np.testing.assert_allclose(law.predict(P, 1.3e6), same.predict(P, 1.3e6), rtol=1e-9)
    path = law.save(tmp_path / "law.json")
    saved = json.loads(path.read_text())["params"]["support"]
    assert saved["vocab_size"] == 4096 and set(saved["frequencies"]["s1"]) == {"ids", "freq"}
    np.testing.assert_allclose(load_law(path).predict(P, 1.3e6), law.predict(P, 1.3e6),
                               rtol=0, atol=1e-12)  # fmt: skip


def test_cli_fit_with_the_proxies_bpe_tokenizer(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """``climb fit --corpus DIR --tokenizer bpe:V``: the term from the trainer's BPE token
    frequencies on that corpus (the same BPE the sweep trains); bad specs are one line."""
    from climb.cli import main
    from climb.data.corpus import Corpus
    from climb.proxy.config import ModelConfig
    from climb.proxy.tokenize import get_tokenizer

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    texts = {"en": "the cat sat on the mat. ", "ru": "кошка сидела на коврике. ",
             "ja": "猫がマットの上に座った。"}  # fmt: skip
    for s, t in texts.items():
        (corpus / f"{s}.txt").write_text("\n\n".join(f"{t * 20}{i}" for i in range(60)))
    names = list(texts)
    mixes = np.vstack([np.eye(3), [[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.4, 0.3, 0.3]]])
    d = np.tile([3e4, 6e4], len(mixes))
    P = np.repeat(mixes, 2, axis=0)
    loss = 1.5 + 10 * (P * d[:, None] + 1e2) ** -0.3 + 6.0 * (P == 0)
    runs = RunTable.from_arrays(run=[f"r{i}" for i in range(len(P))], tokens=d, p=P,
                                sources=names, loss=loss, targets=names)  # fmt: skip
    path = runs.write(tmp_path / "runs.csv")
    out = tmp_path / "law.json"
    assert main(["fit", str(path), "--corpus", str(corpus), "--tokenizer", "bpe:300",
                 "--out", str(out)]) == 0  # fmt: skip
    term = load_law(out).params_.support
    tok = get_tokenizer(ModelConfig(tokenizer="bpe", bpe_vocab=300), Corpus.open(corpus))
    want = SupportProfile.from_corpus(Corpus.open(corpus), names, tok)
    assert term.source_freq.shape == (3, tok.vocab_size) and tok.vocab_size != 256
    np.testing.assert_allclose(term.source_freq, want.frequencies)
    assert term.untrained_loss == pytest.approx(want.untrained_loss)
    assert want.untrained_loss != 8.0
    # climb corpus stats counts the unique tokens (the caps, --unique-tokens) in the same BPE
    counts = tmp_path / "unique.csv"
    assert main(["corpus", "stats", str(corpus), "--tokenizer", "bpe:300", "--quiet",
                 "--unique-tokens-out", str(counts)]) == 0  # fmt: skip
    got = dict(line.split(",") for line in counts.read_text().split()[1:])
    want_u = Corpus.open(corpus).unique_tokens(tok)
    assert {k: int(v) for k, v in got.items()} == want_u and want_u["en"] != want_u["ja"]
    capsys.readouterr()
    for argv, message in (
        (["--corpus", str(corpus), "--tokenizer", "bpe:lots"], "write bpe:V with V a whole number"),
        (["--tokenizer", "bpe"], "--tokenizer goes with --corpus"),
    ):
        assert main(["fit", str(path), *argv, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("climb: error: ") and message in err and err.count("\n") == 1, err
