"""Run design: composition, identifiability check, data caps, the plan YAML and `climb design`."""

from __future__ import annotations

import warnings
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
    design_runs,
)

SOURCES = ["de", "en", "fr", "ja", "ru"]
UNIQUE = {"de": 5_000_000, "en": 4_000_000, "fr": 2_000_000, "ja": 1_000_000, "ru": 100_000}


def _design(**kw: object) -> Plan:
    args: dict = {"seed": 3, "unique_tokens": UNIQUE}
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
    assert any("only one token budget" in p for p in rep.problems)
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
         "--train-opt", "compile=false", "--train-opt", "checkpoints=[0.5]"]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "24 runs" in captured.out and "identifiable: yes" in captured.out
    plan = Plan.load(out)
    assert plan.sources == ["de", "en", "ru"] and plan.model.d_model == 32
    assert plan.train.checkpoints == (0.5,) and plan.train.compile is False
    nat = plan.design["natural"]
    assert nat["de"] > nat["en"] > nat["ru"]  # ∝ unique tokens (bytes of the train split)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sources", "de", "xx"], "no source 'xx'"),
        (["--sources", "de", "en", "--tokens", "many"], "--tokens 'many'"),
        (["--sources", "de", "en", "--runs", "2"], "--runs 2 is too few"),
        (["--sources", "de", "en", "--model", "big"], "--model 'big'"),
        (["--sources", "de", "en", "--train-opt", "lr=-1"], "lr"),
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
