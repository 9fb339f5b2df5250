"""``climb demo``: the whole pipeline on the embedded corpus (quick mode), and its pieces."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from climb.cli import main
from climb.data.runs import RunTable
from climb.demo import DemoSettings, choose_languages, grouped_cross_validate
from climb.report.html import fmt

FIGURES = {"pred_vs_obs", "interaction", "effective_ratio", "allocation", "verification"}


def _stored(db: Path) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return sorted(con.execute("SELECT run_id, spec_hash, finished_at FROM runs").fetchall())
    finally:
        con.close()


@pytest.mark.slow
def test_demo_quick_end_to_end_and_resume(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    # every stage's product is there
    for name in (
        "plan.yaml",
        "runs.db",
        "law.json",
        "cv.json",
        "allocation.json",
        "verify.db",
        "verification.json",
        "report.html",
    ):
        assert (out / name).is_file(), name
    assert {p.stem for p in out.glob("*.png")} == FIGURES
    html = (out / "report.html").read_text(encoding="utf-8")
    assert len(re.findall(r'src="data:image/png;base64,', html)) == len(FIGURES)
    for name in FIGURES:
        assert f'id="fig-{name}"' in html
    assert not re.search(r"https?://|<script|<link", html)
    # the CV error of climb is printed and in the report, with the same number
    mae = json.loads((out / "cv.json").read_text())["climb"]["overall"]["mae"]
    assert re.search(rf"^\s+climb\s+MAE {mae:.4f}\s+Spearman", printed, re.M), printed
    assert f"<td>{fmt(mae)}</td>" in html
    # the verification: every mixture with every seed, and the paired numbers follow from the
    # recorded per-seed losses
    ver = json.loads((out / "verification.json").read_text())
    settings = DemoSettings.quick()
    assert set(ver["mixtures"]) == {"climb", *settings.verify_baselines}
    mixtures = ver["mixtures"]
    for name, m in mixtures.items():
        assert m["seeds"] == list(settings.seeds) and len(m["losses"]) == len(settings.seeds)
        per_seed = [np.mean([r[t] for t in ver["targets"]]) for r in m["losses_by_target"]]
        assert m["losses"] == pytest.approx(per_seed)
        assert m["mean"] == pytest.approx(np.mean(per_seed))
        assert m["std"] == pytest.approx(np.std(per_seed, ddof=1)) and m["std"] > 0  # seeds differ
        assert re.search(rf"^\s+{name}\s+{m['mean']:.4f} ± {m['std']:.4f} \[", printed, re.M)
    climb = np.array(mixtures["climb"]["losses"])
    assert set(ver["paired"]) == set(settings.verify_baselines)
    for base, c in ver["paired"].items():
        d = climb - np.array(mixtures[base]["losses"])
        assert c["diffs"] == pytest.approx(d.tolist())
        assert c["mean_diff"] == pytest.approx(d.mean())
        half = stats.t.ppf(0.975, len(d) - 1) * stats.sem(d)
        assert (c["ci_low"], c["ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half))
        expect = "wins" if c["ci_high"] < 0 else "loses" if c["ci_low"] > 0 else "ties within noise"
        assert c["verdict"] == expect
        line = next(x for x in printed.splitlines() if x.startswith(f"climb vs {base}: "))
        assert line.startswith(f"climb vs {base}: {expect} (paired difference {d.mean():+.4f}")
        assert line in html.replace("&#x27;", "'")
    # rerunning resumes: nothing is retrained, the stores are untouched
    before = (_stored(out / "runs.db"), _stored(out / "verify.db"))
    distinct = {r for m in mixtures.values() for r in m["runs"]}  # identical mixtures share runs
    assert len(distinct) % len(settings.seeds) == 0
    assert len(before[0]) == settings.proxy_runs and len(before[1]) == len(distinct)
    assert main(["demo", "--quick", "--out", str(out), "--no-progress"]) == 0
    assert (_stored(out / "runs.db"), _stored(out / "verify.db")) == before
    again = capsys.readouterr().out.splitlines()
    assert [x for x in again if x.startswith("climb vs ")] == [
        x for x in printed.splitlines() if x.startswith("climb vs ")
    ]


def test_grouped_cv_keeps_checkpoints_with_their_run() -> None:
    rng = np.random.default_rng(0)
    ids = [f"r{i}" for i in range(8)]
    run = [x for i in ids for x in (f"{i}-500", i)]
    p = np.repeat(rng.dirichlet(np.full(3, 4.0), 8), 2, axis=0)
    tokens = np.tile([500.0, 1000.0], 8)
    loss = 1.0 + 5.0 * (p * tokens[:, None]) ** -0.3
    runs = RunTable.from_arrays(
        run=run, tokens=tokens, p=p, sources=["a", "b", "c"], loss=loss, targets=["a", "b", "c"],
        train_run=[i for i in ids for _ in range(2)],
    )  # fmt: skip
    res = grouped_cross_validate("isolated", runs, folds=4, seed=0)
    fold = res.fold.reshape(8, 2)
    assert (fold[:, 0] == fold[:, 1]).all()  # a run's checkpoint row is in its final row's fold
    assert sorted(set(res.fold.tolist())) == [0, 1, 2, 3]
    assert np.isfinite(res.predictions).all()
    assert res.overall["mae"] < 0.05  # the isolated law is the true form here


def test_choose_languages_prefers_scripts_and_sizes() -> None:
    stats = [
        SimpleNamespace(source=s, bytes=b, script=sc)
        for s, b, sc in [
            ("de", 9e6, "Latin"),
            ("en", 8e6, "Latin"),
            ("ru", 5e6, "Cyrillic"),
            ("xx", 4e6, "Latin"),
            ("ja", 3e6, "Han+Kana"),
            ("ar", 0.5e6, "Arabic"),
            ("yy", 2e6, "Thai"),
        ]
    ]
    corpus = SimpleNamespace(stats=lambda: stats)
    assert choose_languages(corpus, 6) == ["en", "ru", "ja", "ar", "de", "yy"]
    assert choose_languages(corpus, 3) == ["en", "ru", "ja"]


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--languages", "en,zz-not-a-language"], "zz-not-a-language"),
        (["--workers", "0"], "--workers 0"),
        (["--seeds", "1"], "--seeds 1"),
    ],
)
def test_demo_bad_input_is_one_line(tmp_path: Path, capsys, argv, needle) -> None:
    code = main(["demo", "--quick", "--out", str(tmp_path / "d"), "--no-progress", *argv])
    assert code == 2
    err = capsys.readouterr().err
    line = [x for x in err.strip().splitlines() if x.startswith("climb: error:")]
    assert len(line) == 1 and needle in line[0] and "Traceback" not in err


def test_demo_out_must_be_a_directory(tmp_path: Path, capsys) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["demo", "--quick", "--out", str(f), "--no-progress"]) == 2
    assert "is not a directory" in capsys.readouterr().err
