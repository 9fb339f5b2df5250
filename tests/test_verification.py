"""Verification over seeds: paired statistics, the result's JSON, and training every mixture ×
seed through the sweep machinery (a deterministic stand-in step; the real trainer runs in the
quick demo test)."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from climb.errors import ClimbError
from climb.proxy.config import ModelConfig, TrainConfig
from climb.proxy.design import Plan
from climb.proxy.executors import InlineExecutor
from climb.verification import (
    LOSES,
    TIES,
    WINS,
    MixtureOutcome,
    VerificationResult,
    paired_difference,
    verification_plan,
    verify_mixtures,
)

TINY_MODEL = ModelConfig(d_model=32, n_layers=1, n_heads=2, context=64)
TINY_TRAIN = TrainConfig(compile=False, bf16=False, eval_bytes=2048, checkpoints=())
SOURCES = ["de", "en", "ru"]


# ---------------------------------------------------------------------- paired statistics
def test_paired_difference_is_the_t_interval_over_seed_pairs() -> None:
    a = np.array([3.10, 3.05, 3.12, 3.08])
    b = np.array([3.15, 3.09, 3.15, 3.14])
    c = paired_difference(a, b, level=0.95, seeds=[4, 5, 6, 7], name="uniform")
    d = a - b
    assert c.diffs == pytest.approx(d.tolist())
    assert c.mean_diff == pytest.approx(d.mean())
    # the same interval from scipy's own t-interval of the mean of the differences
    lo, hi = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    assert (c.ci_low, c.ci_high) == pytest.approx((lo, hi))
    assert c.ci_low < c.mean_diff < c.ci_high
    assert hi < 0 and c.verdict == WINS
    assert c.seeds == [4, 5, 6, 7]


@pytest.mark.parametrize(
    "diffs, verdict",
    [
        ([-0.02, -0.03, -0.025], WINS),  # entirely below 0
        ([0.02, 0.03, 0.025], LOSES),  # entirely above 0
        ([-0.02, 0.03, -0.01], TIES),  # contains 0
        ([0.0, 0.0, 0.0], TIES),  # identical mixtures: a point interval at 0
    ],
)
def test_verdict_follows_the_interval(diffs: list[float], verdict: str) -> None:
    base = np.array([3.0, 3.1, 3.2])
    c = paired_difference(base + np.array(diffs), base)
    assert c.verdict == verdict
    if verdict == WINS:
        assert c.ci_high < 0
    elif verdict == LOSES:
        assert c.ci_low > 0
    else:
        assert c.ci_low <= 0 <= c.ci_high


def test_pairing_removes_the_seed_effect() -> None:
    # seed-to-seed spread (0.1) much larger than the constant gap (0.01): unpaired, the two
    # mixtures overlap; paired by seed, the gap is exact and the interval excludes 0
    seed_effect = np.array([0.0, 0.1, -0.1, 0.05])
    climb = 3.0 + seed_effect
    other = 3.01 + seed_effect + np.array([0.001, -0.001, 0.0005, -0.0005])
    assert climb.max() > other.min()
    c = paired_difference(climb, other)
    assert c.verdict == WINS and c.mean_diff == pytest.approx(-0.01)


@pytest.mark.parametrize(
    "a, b, needle",
    [
        ([3.0], [3.1], "seeds ≥ 2"),
        ([3.0, 3.1], [3.1], "one loss per seed"),
        ([3.0, math.nan], [3.1, 3.2], "not finite"),
    ],
)
def test_paired_difference_refuses_bad_input(a: list[float], b: list[float], needle: str) -> None:
    with pytest.raises(ClimbError, match=needle):
        paired_difference(a, b)


def _result(gaps: dict[str, float], seeds: tuple[int, ...] = (0, 1, 2)) -> VerificationResult:
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.02, len(seeds))
    mixtures = {}
    for name, gap in {"climb": 0.0, **gaps}.items():
        realized = [
            {t: 3.0 + gap + noise[k] + 0.1 * j + 0.003 * rng.standard_normal() for j, t in
             enumerate(SOURCES)}
            for k in range(len(seeds))
        ]  # fmt: skip
        mixtures[name] = MixtureOutcome(
            name=name,
            proportions={s: 1 / 3 for s in SOURCES},
            seeds=list(seeds),
            realized=realized,
            runs=[f"verify-{name}-s{s}" for s in seeds],
            predicted={t: 3.1 + gap for t in SOURCES},
        )
    return VerificationResult(tokens=1e6, targets=SOURCES, mixtures=mixtures)


def test_result_numbers_are_consistent_with_the_recorded_losses(tmp_path: Path) -> None:
    v = _result({"uniform": 0.05, "isolated": 0.0, "natural": -0.05})
    for m in v.mixtures.values():
        per_seed = [np.mean(list(r.values())) for r in m.realized]
        assert m.losses.tolist() == pytest.approx(per_seed)
        assert m.std == pytest.approx(np.std(per_seed, ddof=1))
        assert (m.min, m.max) == (min(per_seed), max(per_seed))
    paired = v.paired
    assert set(paired) == {"uniform", "isolated", "natural"}
    for b, c in paired.items():
        d = v.mixtures["climb"].losses - v.mixtures[b].losses
        assert c.mean_diff == pytest.approx(d.mean())
        assert c.ci_low <= c.mean_diff <= c.ci_high
    assert paired["uniform"].verdict == WINS
    assert paired["natural"].verdict == LOSES
    assert paired["isolated"].verdict == TIES
    lines = v.verdict_lines()
    assert any(line.startswith("climb vs uniform: wins") for line in lines)
    assert any(line.startswith("climb vs natural: loses") for line in lines)
    # JSON: the evidence schema, and a lossless round trip
    doc = json.loads(json.dumps(v.to_json()))
    assert set(doc["mixtures"]["uniform"]) >= {"proportions", "seeds", "losses"}
    assert doc["mixtures"]["uniform"]["losses"] == pytest.approx(v.mixtures["uniform"].losses)
    assert set(doc["paired"]["uniform"]) >= {"mean_diff", "ci_low", "ci_high", "verdict"}
    back = VerificationResult.load(v.save(tmp_path / "v.json"))
    assert back.to_json() == v.to_json()


def test_result_refuses_mismatched_seeds() -> None:
    v = _result({"uniform": 0.05})
    other = v.mixtures["uniform"]
    other.seeds = [0, 1, 5]
    with pytest.raises(ClimbError, match="every mixture needs the seeds"):
        VerificationResult(tokens=1e6, targets=SOURCES, mixtures=v.mixtures)


def test_load_refuses_a_file_of_another_shape(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text(json.dumps({"mixtures": [{"name": "climb"}]}))
    with pytest.raises(ClimbError, match="not a verification file"):
        VerificationResult.load(p)


# ---------------------------------------------------------------------- the plan
def test_plan_has_every_distinct_mixture_once_per_seed() -> None:
    mixtures = {
        "climb": {"de": 0.2, "en": 0.3, "ru": 0.5},
        "uniform": {"de": 1 / 3, "en": 1 / 3, "ru": 1 / 3},
        "unimax": {"de": 1 / 3, "en": 1 / 3, "ru": 1 / 3},  # the same mixture as uniform
    }
    plan, ids = verification_plan(mixtures, 5000, [0, 1, 2], model=TINY_MODEL, train=TINY_TRAIN)
    assert len(plan) == 2 * 3
    assert ids["uniform"] == ids["unimax"] and ids["climb"] != ids["uniform"]
    specs = {s.run_id: s for s in plan.specs()}
    for run_ids in ids.values():
        assert [specs[r].train.seed for r in run_ids] == [0, 1, 2]
        assert len({specs[r].spec_hash() for r in run_ids}) == 3  # the seed is in the spec
    # the per-run seed survives the plan file
    back = Plan.from_dict(plan.to_dict())
    assert [s.train.seed for s in back.specs()] == [s.train.seed for s in plan.specs()]


@pytest.mark.parametrize("seeds", [[0], [1, 1]])
def test_plan_needs_two_distinct_seeds(seeds: list[int]) -> None:
    with pytest.raises(ClimbError, match="at least 2 distinct seeds"):
        verification_plan({"climb": {"de": 1.0}}, 5000, seeds, model=TINY_MODEL, train=TINY_TRAIN)


# ---------------------------------------------------------------------- training, resumable
def seeded_step(spec: Any, corpus: Any, *, progress: Any = None) -> list[dict[str, Any]]:
    """A stand-in for the trainer: loss falls with the own share, shifts with the seed."""
    row: dict[str, Any] = {"run": spec.run_id, "tokens": spec.tokens, "params": 1000}
    for s, p in spec.mixture.items():
        row[f"p.{s}"] = p
        row[f"loss.{s}"] = 4.0 - p + 0.01 * spec.train.seed + 0.001 * len(s)
    row["final"] = True
    row["seed"] = spec.train.seed
    return [row]


class SeededExecutor(InlineExecutor):
    """Inline execution with :func:`seeded_step` as the step."""

    def __init__(self) -> None:
        super().__init__()
        self.trained: list[str] = []

    def map_runs(self, specs: Any, corpus: Any, **kw: Any) -> Any:
        self.trained += [s.run_id for s in specs]
        kw["train_fn"] = seeded_step
        return super().map_runs(specs, corpus, **kw)


def _corpus(root: Path) -> Path:
    root.mkdir()
    for s in SOURCES:
        (root / f"{s}.txt").write_text(("lorem ipsum dolor sit amet " * 400 + "\n\n") * 3)
    return root


def test_verify_mixtures_trains_each_mixture_per_seed_and_resumes(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus")
    mixtures = {
        "climb": {"de": 0.5, "en": 0.3, "ru": 0.2},
        "uniform": {s: 1 / 3 for s in SOURCES},
        "unimax": {s: 1 / 3 for s in SOURCES},
    }
    store = tmp_path / "verify.db"
    ex = SeededExecutor()
    kw: dict[str, Any] = dict(
        seeds=(0, 1, 2), corpus=corpus, model=TINY_MODEL, train=TINY_TRAIN, progress=False
    )
    v = verify_mixtures(mixtures, 5000, store, executor=ex, **kw)
    assert len(ex.trained) == 2 * 3  # unimax = uniform shares its runs
    assert v.seeds == [0, 1, 2]
    for name, mix in mixtures.items():
        m = v.mixtures[name]
        expect = [
            np.mean([4.0 - mix[s] + 0.01 * seed + 0.001 * len(s) for s in SOURCES])
            for seed in (0, 1, 2)
        ]
        assert m.losses.tolist() == pytest.approx(expect, abs=1e-5)
    # same mixture => same runs => paired difference exactly 0, a tie
    assert v.paired["unimax"].diffs == v.paired["uniform"].diffs
    # the stored runs carry their seed in the spec
    con = sqlite3.connect(store)
    specs = [json.loads(s) for (s,) in con.execute("SELECT spec_json FROM runs")]
    con.close()
    assert sorted(s["train"]["seed"] for s in specs) == [0, 0, 1, 1, 2, 2]
    # rerun: nothing retrained, same result
    ex2 = SeededExecutor()
    again = verify_mixtures(mixtures, 5000, store, executor=ex2, **kw)
    assert ex2.trained == [] and again.to_json() == v.to_json()
    # one more seed trains only that seed's runs
    ex3 = SeededExecutor()
    kw["seeds"] = (0, 1, 2, 3)
    more = verify_mixtures(mixtures, 5000, store, executor=ex3, **kw)
    assert len(ex3.trained) == 2 and all(r.endswith("-s3") for r in ex3.trained)
    assert more.mixtures["climb"].losses[:3].tolist() == v.mixtures["climb"].losses.tolist()


def test_verify_mixtures_needs_the_recommended_mixture(tmp_path: Path) -> None:
    with pytest.raises(ClimbError, match="no mixture named 'climb'"):
        verify_mixtures({"uniform": {"de": 1.0}}, 5000, tmp_path / "v.db", progress=False)


@pytest.mark.parametrize("full", [False, True])
def test_demo_verification_stage_verifies_the_chosen_baselines(tmp_path: Path, full: bool) -> None:
    from dataclasses import replace
    from types import SimpleNamespace

    from climb.demo import (
        ALL_BASELINES,
        VERIFY_BASELINES,
        DemoContext,
        DemoSettings,
        stage_verification,
    )

    corpus = _corpus(tmp_path / "corpus")
    settings = replace(
        DemoSettings.quick(),
        seeds=(0, 1),
        verify_baselines=ALL_BASELINES if full else VERIFY_BASELINES,
    )
    lines: list[str] = []
    ctx = DemoContext(settings, tmp_path, corpus, SeededExecutor(), lines.append, False)

    def mix(*p: float) -> SimpleNamespace:
        return SimpleNamespace(proportions_dict=lambda: dict(zip(SOURCES, p)))

    baselines = {
        "uniform": mix(1 / 3, 1 / 3, 1 / 3),
        "unimax": mix(1 / 3, 1 / 3, 1 / 3),
        "natural": mix(0.5, 0.25, 0.25),
        "temperature": mix(0.4, 0.3, 0.3),
        "isolated": mix(0.3, 0.3, 0.4),
    }  # no "msl": the allocator skipped it
    alloc = SimpleNamespace(result=mix(0.2, 0.3, 0.5), baselines=baselines)
    plan = SimpleNamespace(budgets=[40_000])
    v = stage_verification(ctx, alloc, None, plan)  # type: ignore[arg-type]
    expect = [b for b in settings.verify_baselines if b in baselines]
    assert v.names == ["climb", *expect] and list(v.paired) == expect
    assert v.seeds == [0, 1]
    assert ("note: baseline 'msl' has no allocation; not verified" in lines) == full
    assert VerificationResult.load(tmp_path / "verification.json").to_json() == v.to_json()


@pytest.mark.slow
def test_cli_verify_trains_an_allocations_mixtures_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``climb verify ALLOCATION --plan PLAN --store STORE``: the real trainer, the plan's model,
    training settings and corpus (sources the embedded corpus lacks), the allocation's D*; a rerun
    trains nothing and prints the same; bad input is one line."""
    import warnings

    from climb.cli import main
    from climb.data.store import RunStore
    from climb.proxy.design import design_runs

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for s, word in (("xa", "lorem ipsum "), ("xb", "dolor sit amet ")):
        (corpus / f"{s}.txt").write_text("\n\n".join(f"{word * 30}{i}" for i in range(200)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = design_runs(["xa", "xb"], [2_000, 4_000], 4, model=TINY_MODEL, train=TINY_TRAIN)
    plan.design["corpus"] = str(corpus)
    plan.save(tmp_path / "plan.yaml")
    alloc = tmp_path / "alloc.json"
    alloc.write_text(json.dumps({
        "proportions": {"xa": 0.7, "xb": 0.3}, "tokens": 4_000,
        "baselines": {"uniform": {"proportions": {"xa": 0.5, "xb": 0.5}},
                      "natural": {"proportions": {"xa": 0.4, "xb": 0.6}}},
    }))  # fmt: skip
    store = tmp_path / "verify.db"
    argv = ["verify", str(alloc), "--plan", str(tmp_path / "plan.yaml"), "--store", str(store),
            "--baselines", "uniform", "--seeds", "2", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert "D* = 4,000 tokens (1.0× the proxies' largest budget)" in first
    assert "climb vs uniform:" in first and "natural" not in first
    v = VerificationResult.load(tmp_path / "verify.verification.json")
    assert v.names == ["climb", "uniform"] and v.seeds == [0, 1] and v.tokens == 4_000
    with RunStore(store, create=False) as rs:
        table = rs.to_run_table(final_only=True)
        n_runs = len(rs)
    assert n_runs == 4 and len(set(table.tokens)) == 1 and table.tokens[0] >= 4_000  # whole steps
    row = table.run.index(v.mixtures["climb"].runs[1])
    assert table.p[row].tolist() == [0.7, 0.3]
    assert v.mixtures["climb"].realized[1]["xa"] == table.loss[row, table.targets.index("xa")]
    assert (tmp_path / "verify.plan.yaml").exists()
    assert main(argv) == 0  # resumed: nothing trained, the same numbers
    assert capsys.readouterr().out == first
    with RunStore(store, create=False) as rs:
        assert len(rs) == n_runs

    def error(extra: list[str], message: str) -> None:
        assert main([*argv[:-5], "--no-progress", *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("climb: error: ") and message in err and err.count("\n") == 1, err

    error(["--baselines", "msl"], "the allocation has no msl (it has: uniform, natural)")
    error(["--seeds", "1"], "--seeds 1: give at least 2")
    error(["--baselines", "uniform", "--train-opt", "lr=abc"], "--train-opt: train: lr:")
    alloc.write_text(json.dumps({"proportions": {"xa": 0.7, "xb": 0.3}}))
    error([], "the allocation has no target budget 'tokens'")
    # by default the allocation's uniform, temperature and isolated: those it has
    alloc.write_text(json.dumps({"proportions": {"xa": 0.7, "xb": 0.3}, "tokens": 4_000,
                                 "baselines": {"uniform": {"proportions": {"xa": 0.5, "xb": 0.5}}}}))  # fmt: skip
    assert main([*argv[:-5], "--seeds", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "note: the allocation has no temperature, isolated; not verified" in out
    assert "climb vs uniform:" in out
