"""Run design: composition, identifiability check, data caps, the plan YAML and `climb design`."""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from climb.cli import main
from climb.errors import ClimbError, ClimbWarning
from climb.proxy.config import ModelConfig, RunSpec, TrainConfig
from climb.proxy.design import (
    Plan,
    PlannedRun,
    check_identifiability,
    d_criterion,
    design_runs,
)

SOURCES = ["de", "en", "fr", "ja", "ru"]
UNIQUE = {"de": 5_000_000, "en": 4_000_000, "fr": 2_000_000, "ja": 1_000_000, "ru": 100_000}


def _design(**kw: object) -> Plan:
    args: dict = {"seed": 3, "unique_tokens": UNIQUE, "schedule": "cosine"}
    args.update(kw)
    return design_runs(SOURCES, [100_000, 400_000], 48, **args)  # type: ignore[arg-type]


def test_design_composition_and_identifiability() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a good design raises no warning
        plan = _design()
    assert len(plan) == 48 and plan.budgets == [100_000, 400_000]
    P = plan.proportions()
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)
    assert (P >= 0).all()
    kinds = [r.kind for r in plan.runs]
    assert kinds.count("mono") == 2 * len(SOURCES)
    assert kinds.count("pair") >= 2 * 3
    assert {"dirichlet-natural", "dirichlet-uniform"} <= set(kinds)
    # each budget has the same mixtures (only D differs): separates w_ij from kappa
    lo = [r.mixture for r in plan.runs if r.tokens == 100_000]
    hi = [r.mixture for r in plan.runs if r.tokens == 400_000]
    assert lo == hi
    rep = check_identifiability(plan)
    assert rep.ok and rep.problems == []
    assert rep.rank == {s: len(SOURCES) - 1 for s in SOURCES}
    # Dirichlet around natural puts more mass on the big sources than around uniform
    nat = np.array(
        [[r.mixture.get(s, 0) for s in SOURCES] for r in plan.runs if r.kind == "dirichlet-natural"]
    )
    uni = np.array(
        [[r.mixture.get(s, 0) for s in SOURCES] for r in plan.runs if r.kind == "dirichlet-uniform"]
    )
    assert nat[:, 0].mean() > nat[:, 4].mean()
    assert nat[:, 4].mean() < uni[:, 4].mean()
    # deterministic given the seed, different with another seed
    assert _design().to_dict() == plan.to_dict()
    assert _design(seed=4).to_dict()["runs"] != plan.to_dict()["runs"]


def test_identifiability_problems_are_reported() -> None:
    with pytest.warns(ClimbWarning, match="not be identifiable"):
        plan = design_runs(
            SOURCES, [100_000], 5, unique_tokens=UNIQUE
        )  # monolingual only, 1 budget
    rep = plan.identifiability()
    assert not rep.ok
    assert any("only one true token budget" in p for p in rep.problems)
    assert any("distinct share(s) with 'en'" in p for p in rep.problems)
    # a rank-deficient plan: two sources always appear together in the same proportion
    runs = [
        PlannedRun(
            f"r{k}-{d}", {"a": 0.2 * k + 0.1, "b": (0.9 - 0.2 * k) / 2, "c": (0.9 - 0.2 * k) / 2}, d
        )
        for k in range(4)
        for d in (1000, 2000)
    ]
    rep = check_identifiability(Plan(["a", "b", "c"], runs))
    assert rep.rank["a"] == 1
    assert any("target 'a'" in p and "rank 1 < 2" in p for p in rep.problems)


def test_data_caps_repair_and_drop() -> None:
    # ru has 100k unique tokens: at D=400k and E=1 its share is capped at 0.25
    with pytest.warns(ClimbWarning) as rec:
        plan = _design(max_epochs=1.0)
    messages = " ".join(str(w.message) for w in rec)
    assert "repaired" in messages and "dropped" in messages
    assert "D400k-mono-ru" in plan.design["dropped"]
    assert all(r.run_id != "D400k-mono-ru" for r in plan.runs)
    assert any(r.run_id == "D100k-mono-ru" for r in plan.runs)  # 100k ≤ 1·100k: feasible
    for r in plan.runs:
        for s, share in r.mixture.items():
            assert share * r.tokens <= 1.0 * UNIQUE[s] + 1e-6 * r.tokens, (r.run_id, s)
        assert abs(sum(r.mixture.values()) - 1) < 1e-9
    repaired = [r for r in plan.runs if r.run_id in plan.design["repaired"]]
    assert repaired and all(abs(r.mixture["ru"] - 0.25) < 1e-4 for r in repaired)


def test_plan_yaml_roundtrip_and_specs(tmp_path: Path) -> None:
    plan = _design(
        model=ModelConfig(d_model=32, n_layers=1, n_heads=2, context=64), train=TrainConfig(seed=7)
    )
    path = plan.save(tmp_path / "plan.yaml")
    back = Plan.load(path)
    assert back.to_dict() == plan.to_dict()
    specs = back.specs()
    assert all(isinstance(s, RunSpec) for s in specs)
    assert specs[0].model.d_model == 32 and specs[0].train.seed == 7
    assert set(specs[0].mixture) == set(SOURCES)  # zeros included: every source evaluated
    assert [s.spec_hash() for s in specs] == [s.spec_hash() for s in plan.specs()]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["runs"][0]["mixture"].update(xx=0.0), "source 'xx' is not in the plan"),
        (lambda d: d["runs"][0].update(mixture={"de": 0.7}), "sum to 0.7"),
        (lambda d: d["runs"][1].update(id=d["runs"][0]["id"]), "used twice"),
        (lambda d: d["runs"][0].update(tokens=-5), "'tokens'"),
        (lambda d: d["model"].update(d_model=30), "model"),
        (lambda d: d.update(extra=1), "unknown key 'extra'"),
        (lambda d: d["runs"][0].update(id="a@b"), "without '@'"),
    ],
)
def test_plan_load_errors(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    doc = _design().to_dict()
    edit(doc)
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ClimbError, match=message):
        Plan.load(path)


def _tiny_corpus(root: Path) -> Path:
    root.mkdir()
    rng = np.random.default_rng(0)
    for s, n in (("de", 60), ("en", 40), ("ru", 10)):
        words = [f"{s}{k}" for k in range(30)]
        docs = [" ".join(rng.choice(words, size=50)) for _ in range(n)]
        (root / f"{s}.txt").write_text("\n\n".join(docs), encoding="utf-8")
    return root


def test_design_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = _tiny_corpus(tmp_path / "corpus")
    out = tmp_path / "plan.yaml"
    code = main(
        ["design", "--corpus", str(corpus), "--sources", "de,en", "ru", "--tokens", "10k", "20k",
         "--runs", "24", "--seed", "1", "--out", str(out), "--model", "d32-l1-h2-c64",
         "--train-opt", "compile=false", "--train-opt", "checkpoints=[0.5]", "--schedule", "cosine"]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "24 cosine runs" in captured.out and "identifiable: yes" in captured.out
    assert "24 true-budget rows at 2 true budget(s) (10,000, 20,000)" in captured.out
    plan = Plan.load(out)
    assert plan.sources == ["de", "en", "ru"] and plan.model.d_model == 32
    assert plan.train.checkpoints == (0.5,) and plan.train.compile is False
    nat = plan.design["natural"]
    assert nat["de"] > nat["en"] > nat["ru"]  # ∝ unique tokens (bytes of the train split)
    assert "candidate" not in captured.out and "candidates" not in plan.design
    more = tmp_path / "plan16.yaml"
    code = main(["design", "--corpus", str(corpus), "--sources", "de,en,ru", "--tokens", "10k",
                 "20k", "--runs", "12", "--candidates", "16", "--out", str(more)])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    record = Plan.load(more).design["candidates"]
    assert record["drawn"] == 16 and 1 <= record["chosen"] <= 16
    assert f"D-optimal of 16 candidate designs (draw {record['chosen']}," in captured.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sources", "de", "xx"], "no source 'xx'"),
        (["--sources", "de", "en", "--tokens", "many"], "--tokens 'many'"),
        (["--sources", "de", "en", "--runs", "1"], "n_runs=1 is too few"),
        (["--sources", "de", "en", "--runs", "3", "--schedule", "cosine"], "n_runs=3 is too few"),
        (["--sources", "de", "en", "--model", "big"], "--model 'big'"),
        (["--sources", "de", "en", "--train-opt", "lr=-1"], "lr"),
        (["--sources", "de", "en", "--candidates", "0"], "candidates=0"),
    ],
)
def test_design_cli_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    corpus = _tiny_corpus(tmp_path / "corpus")
    base = [
        "design",
        "--corpus",
        str(corpus),
        "--tokens",
        "10k",
        "20k",
        "--runs",
        "12",
        "--out",
        str(tmp_path / "p.yaml"),
    ]
    code = main(base + args)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("climb: error: ") and err.count("\n") == 1 and message in err
    assert not (tmp_path / "p.yaml").exists()


# ---------------------------------------------------------------------- WSD designs and true budgets
def test_wsd_design_is_one_run_per_mixture_with_branches() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan = design_runs(SOURCES, [100_000, 400_000], 24, seed=3, unique_tokens=UNIQUE)
    assert plan.train.schedule == "wsd" and plan.design["schedule"] == "wsd"
    assert len(plan) == 24 and plan.budgets == [100_000, 400_000]
    assert all(r.tokens == 400_000 and r.branches == (100_000,) for r in plan.runs)
    assert all(r.run_id.startswith("wsd-") for r in plan.runs)
    # the same 24 mixtures as the first 24 of a cosine design of 48 runs over the two budgets
    cos = _design()
    assert [r.mixture for r in plan.runs] == [r.mixture for r in cos.runs if r.tokens == 100_000]
    rep = check_identifiability(plan)
    assert rep.ok and rep.budgets == [100_000, 400_000] and rep.rows == 48
    spec = plan.specs()[0]
    assert spec.branches == (100_000,) and spec.budgets == (100_000, 400_000)
    assert spec.train.schedule == "wsd"


def test_identifiability_counts_true_budgets_only() -> None:
    """Cosine runs at one budget with mid-run checkpoints have one true budget: κ and the
    isolated law are not identified. The same mixtures as WSD runs branched at two are."""
    cos = design_runs(
        SOURCES, [400_000], 24, seed=3, unique_tokens=UNIQUE, schedule="cosine",
        train=TrainConfig(checkpoints=(0.25, 0.5)), warn=False,
    )  # fmt: skip
    rep = check_identifiability(cos)
    assert rep.budgets == [400_000] and rep.rows == 24
    assert any("only one true token budget" in p for p in rep.problems)
    assert any("isolated law needs ≥ 2" in p for p in rep.problems)
    wsd = Plan(
        cos.sources,
        [replace(r, branches=(200_000,)) for r in cos.runs],
        train=cos.train.model_copy(update={"schedule": "wsd"}),
    )
    rep = check_identifiability(wsd)
    assert rep.ok and rep.budgets == [200_000, 400_000] and rep.rows == 48
    # κ of a target needs rows with donors at two true budgets: when only the monolingual run of
    # 'ja' is branched, 'ja' has donors at 400k only (the other targets have 'ja' as a donor)
    only_ja = Plan(
        cos.sources,
        [replace(r, branches=(200_000,) if r.run_id.endswith("mono-ja") else ()) for r in cos.runs],
        train=wsd.train,
    )
    problems = check_identifiability(only_ja).problems
    assert any("target 'ja': runs with donors at 1 true budget(s)" in p for p in problems)
    assert not any("target 'de': runs with donors" in p for p in problems)


def test_wsd_caps_shorten_a_run_to_the_budget_it_can_hold() -> None:
    with pytest.warns(ClimbWarning, match="shortened"):
        plan = design_runs(
            SOURCES, [100_000, 400_000], 24, seed=3, unique_tokens=UNIQUE, max_epochs=1.0
        )
    mono_ru = next(r for r in plan.runs if r.run_id == "wsd-mono-ru")
    assert (mono_ru.tokens, mono_ru.branches) == (100_000, ())
    assert "wsd-mono-ru" in plan.design["shortened"]
    for r in plan.runs:
        for s, share in r.mixture.items():
            assert share * r.tokens <= UNIQUE[s] + 1e-6 * r.tokens, (r.run_id, s)


def test_wsd_plan_yaml_roundtrip_and_errors(tmp_path: Path) -> None:
    plan = design_runs(SOURCES, [100_000, 400_000], 12, seed=3, unique_tokens=UNIQUE, warn=False)
    back = Plan.load(plan.save(tmp_path / "plan.yaml"))
    assert back.to_dict() == plan.to_dict() and back.runs[0].branches == (100_000,)
    assert [s.spec_hash() for s in back.specs()] == [s.spec_hash() for s in plan.specs()]
    doc = plan.to_dict()
    for edit, message in (
        (lambda d: d["runs"][0].update(branches=[500_000]), "between 0 and tokens=400000"),
        (lambda d: d["runs"][0].update(branches=[1000, 1000]), "twice"),
        (lambda d: d["runs"][0].update(branches="100k"), "must be a list"),
        (lambda d: d["train"].update(schedule="cosine"), "need train.schedule 'wsd'"),
    ):
        bad = yaml.safe_load(yaml.safe_dump(doc))
        edit(bad)
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(bad))
        with pytest.raises(ClimbError, match=message):
            Plan.load(path)


def test_spec_hash_of_cosine_specs_is_unchanged_by_the_wsd_fields() -> None:
    """Stores written before WSD existed keep resuming: a cosine spec hashes as it did."""
    spec = RunSpec(run_id="r", mixture={"en": 1.0}, tokens=1000)
    data = spec.model_dump(mode="json")
    del data["branches"]
    for key in ("device", "compile", "bf16", "threads", "schedule", "cooldown_frac",
                "cooldown_shape"):  # fmt: skip
        del data["train"][key]
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
    assert spec.spec_hash() == hashlib.sha256(blob.encode()).hexdigest()[:16]
    wsd = TrainConfig(schedule="wsd")
    assert RunSpec(run_id="r", mixture={"en": 1.0}, tokens=1000, train=wsd).spec_hash() != (
        spec.spec_hash()
    )
    with pytest.raises(ClimbError, match=r"branches need train\.schedule='wsd'"):
        RunSpec(run_id="r", mixture={"en": 1.0}, tokens=1000, branches=(500,))
    with pytest.raises(ClimbError, match=r"must lie in \(0, tokens=1000\)"):
        RunSpec(run_id="r", mixture={"en": 1.0}, tokens=1000, branches=(1000,), train=wsd)


def test_design_cli_wsd_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = _tiny_corpus(tmp_path / "corpus")
    out = tmp_path / "plan.yaml"
    code = main(
        ["design", "--corpus", str(corpus), "--sources", "de", "en", "ru", "--tokens", "300k",
         "600k", "--runs", "12", "--out", str(out)]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "12 wsd runs" in captured.out
    assert "24 true-budget rows at 2 true budget(s) (300,000, 600,000)" in captured.out
    plan = Plan.load(out)
    assert all(r.tokens == 600_000 and r.branches == (300_000,) for r in plan.runs)


def test_demo_designs_use_wsd_true_budgets() -> None:
    """The demo's proxies (default and quick) are WSD runs with a true budget at two budgets."""
    from climb.demo import DemoSettings

    for cfg in (DemoSettings(), DemoSettings.quick()):
        assert cfg.train.schedule == "wsd" and len(cfg.proxy_tokens) == 2
        langs = ["en", "fr", "ru", "ja", "ko", "hi"][: cfg.n_languages]
        plan = design_runs(
            langs, list(cfg.proxy_tokens), cfg.proxy_runs, seed=cfg.seed, model=cfg.model,
            train=cfg.train, schedule=cfg.train.schedule, warn=False,
        )  # fmt: skip
        assert len(plan) == cfg.proxy_runs
        assert all(r.budgets == tuple(sorted(cfg.proxy_tokens)) for r in plan.runs)
        rep = plan.identifiability()
        assert rep.budgets == sorted(cfg.proxy_tokens) and rep.rows == 2 * cfg.proxy_runs


# ---------------------------------------------------------------------- D-optimal candidates
def test_candidates_keep_the_d_optimal_draw_and_one_is_the_old_design() -> None:
    unique = {"es": 5_000_000, "pt": 5_000_000, "fr": 5_000_000, "ca": 12_000, "ru": 5_000_000}
    args = {"seed": 0, "unique_tokens": unique, "max_epochs": 4.0, "warn": False}
    budgets = [300_000, 600_000]
    first = design_runs(list(unique), budgets, 15, **args)  # type: ignore[arg-type]
    assert "candidates" not in first.design
    # candidates=1 is the design as before, and the first of every longer list of candidates
    picks = {n: design_runs(list(unique), budgets, 15, candidates=n, **args)  # type: ignore[arg-type]
             for n in (2, 8, 32)}  # fmt: skip
    values = {n: p.design["candidates"]["d_criterion"] for n, p in picks.items()}
    assert values[2] <= values[8] <= values[32]  # more candidates never pick a worse design
    assert values[32] > round(d_criterion(first), 4)  # and here one beats the first draw
    chosen = picks[32].design["candidates"]["chosen"]
    assert 1 <= chosen <= 32 and picks[32].design["candidates"]["drawn"] == 32
    assert d_criterion(picks[32]) == pytest.approx(values[32], abs=1e-4)
    # every candidate keeps the caps: p·D ≤ 4 U at every true budget of every run
    for plan in picks.values():
        for run in plan.runs:
            for b in run.budgets:
                assert all(
                    share * b <= 4 * unique[s] * (1 + 1e-3) for s, share in run.mixture.items()
                )
    with pytest.raises(ClimbError, match="candidates"):
        design_runs(list(unique), budgets, 15, candidates=0, **args)  # type: ignore[arg-type]


def test_d_criterion_prefers_the_better_conditioned_design() -> None:
    sources = ["a", "b", "c"]

    def plan(mixes: list[dict[str, float]]) -> Plan:
        runs = [PlannedRun(f"r{k}", m, 1000) for k, m in enumerate(mixes)]
        return Plan(sources=sources, runs=runs)

    monos = [{s: 1.0} for s in sources]
    spread = plan([*monos, {"a": 0.5, "b": 0.5}, {"b": 0.5, "c": 0.5}, {"a": 0.5, "c": 0.5}])
    # the same number of runs, but the mixtures repeat one direction: less information on w
    narrow = plan([*monos, {"a": 0.5, "b": 0.5}, {"a": 0.5, "b": 0.5}, {"a": 0.49, "b": 0.51}])
    assert d_criterion(spread) > d_criterion(narrow)


@pytest.mark.parametrize("candidates", [1, 8])
def test_a_design_that_no_run_survives_names_the_dropped_runs_and_fails(candidates: int) -> None:
    tiny = {"a": 10, "b": 10, "c": 10}  # 4 epochs of 10 tokens hold no run of 1,000 tokens
    with (
        pytest.warns(ClimbWarning, match="were dropped, e.g. wsd-mono-a"),
        pytest.raises(ClimbError, match="every run broke the data caps"),
    ):
        design_runs(list(tiny), [1_000], 6, unique_tokens=tiny, max_epochs=4.0,
                    candidates=candidates)  # fmt: skip


# the transfer demo's unique tokens (es pt fr ca ru uk zh ja): Catalan's 12,088 hold ≤ 8.06% of 600k
TRANSFER = dict(zip(["es", "pt", "fr", "ca", "ru", "uk", "zh", "ja"],
                    [5_030_000, 4_970_000, 5_030_000, 12_088, 5_030_000, 2_860_000, 5_030_000,
                     5_030_000]))  # fmt: skip


def test_a_source_the_caps_leave_out_of_every_run_gets_one_at_its_cap() -> None:
    """Catalan's monolingual run breaks its cap and no pair drew it (seed 1, 10 runs): without an
    added run it would be in no run and no law could fit it (benchmarks/capped_sources.py)."""
    sources = list(TRANSFER)
    with pytest.warns(ClimbWarning) as rec:
        plan = design_runs(sources, [300_000, 600_000], 10, seed=1, unique_tokens=TRANSFER,
                           max_epochs=4.0)  # fmt: skip
    messages = [str(w.message) for w in rec]
    assert any("were dropped, e.g. wsd-mono-ca" in m for m in messages)
    assert any("added 1 run(s)" in m and "wsd-cap-ca" in m for m in messages)
    assert plan.design["added"] == ["wsd-cap-ca"]
    capped = [r for r in plan.runs if r.kind == "capped"]
    assert [r.run_id for r in capped] == ["wsd-cap-ca"]
    run = capped[0]
    assert (run.tokens, run.branches) == (600_000, (300_000,))
    assert run.mixture["ca"] == pytest.approx(0.0805)  # 4 · 12,088 / 600k = 0.08059, rounded down
    assert run.mixture["ca"] * 600_000 <= 4 * TRANSFER["ca"]
    assert set(run.mixture) == set(sources) and sum(run.mixture.values()) == pytest.approx(1.0)
    others = [v for s, v in run.mixture.items() if s != "ca"]
    assert max(others) - min(others) <= 2e-4  # the rest spread evenly
    for s in sources:  # every source is in some run
        assert any(r.mixture.get(s, 0) > 0 for r in plan.runs), s
    # the same design without it: the run added last, nothing else changed
    assert plan.runs[-1] is run
    # a design that draws Catalan elsewhere (the transfer demo's 24 runs) adds nothing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        demo = design_runs(sources, [300_000, 600_000], 24, seed=0, unique_tokens=TRANSFER,
                           max_epochs=4.0)  # fmt: skip
    assert "added" not in demo.design and all(r.kind != "capped" for r in demo.runs)
    assert "wsd-mono-ca" in demo.design["dropped"]


def test_capped_runs_for_cosine_designs_and_sources_no_run_can_hold() -> None:
    sources = list(TRANSFER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClimbWarning)
        plan = design_runs(sources, [300_000, 600_000], 20, seed=1, unique_tokens=TRANSFER,
                           max_epochs=4.0, schedule="cosine")  # fmt: skip
    capped = {r.run_id: r for r in plan.runs if r.kind == "capped"}
    assert sorted(capped) == ["D300k-cap-ca", "D600k-cap-ca"]  # one per budget, at each cap
    assert capped["D300k-cap-ca"].mixture["ca"] == pytest.approx(0.1611)
    assert capped["D600k-cap-ca"].mixture["ca"] == pytest.approx(0.0805)
    # 100 tokens allow 0.07% of 600k: below the smallest share a design uses, so no run can
    # hold Catalan; said in one warning, not silently left out
    tiny = {**TRANSFER, "ca": 100}
    with pytest.warns(ClimbWarning, match=r"source\(s\) ca are in no run: .* no law can fit them"):
        plan = design_runs(sources, [300_000, 600_000], 10, seed=1, unique_tokens=tiny,
                           max_epochs=4.0)  # fmt: skip
    assert all(r.mixture.get("ca", 0) == 0 for r in plan.runs) and "added" not in plan.design
    # held at the smaller budget only (4% of 100k, 0.07% of 600k): one cosine run there, and no
    # warning that Catalan is in no run
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always", ClimbWarning)
        plan = design_runs(sources, [100_000, 600_000], 20, seed=1, unique_tokens=tiny,
                           max_epochs=4.0, schedule="cosine")  # fmt: skip
    assert plan.design["added"] == ["D100k-cap-ca"]
    assert not any("in no run" in str(w.message) for w in rec)
