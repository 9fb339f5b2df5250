"""`climb fit / evaluate / cv / effective-ratio / simulate`, including bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from climb.cli import main
from climb.laws import load_law

GOOD = "run,tokens,p.en,p.de,loss.en,loss.de\nr1,1e9,0.5,0.5,3.1,3.3\nr2,1e9,0.2,0.8,3.4,3.0\n"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """200 runs of 6 sources with 1 % noise, the true law, and the law fitted by `climb fit`."""
    d = tmp_path_factory.mktemp("sim")
    runs, truth, fitted = d / "runs.csv", d / "truth.json", d / "fit.json"
    assert main(["simulate", "--sources", "6", "--runs", "200", "--noise", "0.01", "--seed", "0",
                 "--truth", str(truth), "--out", str(runs)]) == 0  # fmt: skip
    assert main(["fit", str(runs), "--law", "climb", "--out", str(fitted), "--seed", "0"]) == 0
    return runs, truth, fitted


def test_simulate_then_fit_recovers_W(sim: tuple[Path, Path, Path]) -> None:
    _, truth, fitted = sim
    w_true = np.asarray(json.loads(truth.read_text())["params"]["W"])
    w_fit = np.asarray(json.loads(fitted.read_text())["params"]["W"])
    off = ~np.eye(6, dtype=bool)
    assert (w_true[off] < 0).any() and (w_true[off] > 0).any()  # both kinds of transfer
    assert np.abs(w_fit - w_true)[off].mean() <= 0.03
    # the default fit is saturating; on this linear truth it finds η ≈ 1
    assert "eta" not in json.loads(truth.read_text())["params"]
    assert min(json.loads(fitted.read_text())["params"]["eta"]) >= 0.95


def test_simulate_saturating_truth_then_fit(tmp_path: Path) -> None:
    runs, truth, fitted = tmp_path / "runs.csv", tmp_path / "truth.json", tmp_path / "fit.json"
    assert main(["simulate", "--sources", "6", "--runs", "200", "--noise", "0.01", "--seed", "0",
                 "--eta", "0.6", "--truth", str(truth), "--out", str(runs)]) == 0  # fmt: skip
    t = json.loads(truth.read_text())["params"]
    assert t["eta"] == [0.6] * 6
    assert main(["fit", str(runs), "--out", str(fitted)]) == 0
    f = json.loads(fitted.read_text())["params"]
    assert np.abs(np.asarray(f["eta"]) - 0.6).max() <= 0.05
    off = ~np.eye(6, dtype=bool)
    assert np.abs(np.asarray(f["W"]) - np.asarray(t["W"]))[off].mean() <= 0.03
    # --transfer linear: η = 1, no "eta" in the JSON (the format)
    lin = tmp_path / "lin.json"
    assert main(["fit", str(runs), "--transfer", "linear", "--out", str(lin)]) == 0
    assert "eta" not in json.loads(lin.read_text())["params"]


def test_evaluate_json(sim: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    runs, _, fitted = sim
    capsys.readouterr()
    assert main(["evaluate", str(fitted), str(runs), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["targets"]) == {f"s{i}" for i in range(1, 7)}
    for m in out["targets"].values():
        assert set(m) == {"mae", "mape", "r2", "spearman", "n"} and m["n"] == 200
        assert m["mape"] < 0.012  # the 1 % noise level
    assert out["overall"]["n"] == 1200 and out["overall"]["r2"] > 0.9
    assert main(["evaluate", str(fitted), str(runs)]) == 0
    text = capsys.readouterr().out
    assert "Spearman" in text and "overall" in text


def test_cv_json_and_predictions(
    sim: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs, _, _ = sim
    small = tmp_path / "small.csv"
    pd.read_csv(runs).head(60).to_csv(small, index=False)
    pred = tmp_path / "oof.csv"
    capsys.readouterr()
    assert main(["cv", str(small), "--law", "climb", "--folds", "3", "--json",
                 "--predictions", str(pred)]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert out["folds"] == 3 and out["overall"]["n"] == 360 and len(out["per_fold"]) == 3
    frame = pd.read_csv(pred)
    assert len(frame) == 60 and set(frame["fold"]) == {0, 1, 2} and "pred.s1" in frame
    # by own share: the held-out cells, recomputed from the written predictions
    table = pd.read_csv(small)
    targets = [c[5:] for c in frame if c.startswith("pred.")]
    err = np.abs(
        frame[[f"pred.{t}" for t in targets]].to_numpy()
        - table[[f"loss.{t}" for t in targets]].to_numpy()
    )
    share = table[[f"p.{t}" for t in targets]].to_numpy()
    assert set(out["by_share"]) == {"zero", "trace", "main"}
    for name, mask in (
        ("zero", share == 0),
        ("trace", (share > 0) & (share < 0.01)),
        ("main", share >= 0.01),
    ):
        assert out["by_share"][name]["n"] == mask.sum()
        if mask.any():
            assert out["by_share"][name]["mae"] == pytest.approx(err[mask].mean(), rel=1e-6)
    assert sum(m["n"] for m in out["by_share"].values()) == 360
    assert main(["cv", str(small), "--folds", "3", "--transfer", "linear", "--json"]) == 0
    lin = json.loads(capsys.readouterr().out)
    assert lin["overall"]["n"] == 360 and lin["overall"] != out["overall"]
    # the folds ran on one process per CPU (the default); serially the result is the same
    assert main(["cv", str(small), "--law", "climb", "--folds", "3", "--json", "--jobs", "1"]) == 0
    assert json.loads(capsys.readouterr().out) == out
    _expect_error(capsys, ["cv", str(small), "--jobs", "0"], "--jobs must be ≥ 1 or -1")
    # repeated over three splits: each split is the single CV with its seed
    assert main(["cv", str(small), "--folds", "3", "--repeats", "3", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["seeds"] == [0, 1, 2] and len(rep["per_split"]) == 3
    assert rep["per_split"][0] == out
    maes = [s["overall"]["mae"] for s in rep["per_split"]]
    assert rep["overall"]["mae"]["mean"] == pytest.approx(np.mean(maes))
    assert rep["by_share"]["main"]["n"] == out["by_share"]["main"]["n"]
    assert main(["cv", str(small), "--folds", "3", "--repeats", "2"]) == 0
    text = capsys.readouterr().out
    assert "repeated over 2 splits" in text and "mean ± std" in text
    _expect_error(capsys, ["cv", str(small), "--repeats", "0"], "--repeats must be ≥ 1")
    _expect_error(capsys, ["cv", str(small), "--repeats", "2", "--predictions", str(pred)],
                  "use it with --repeats 1")  # fmt: skip


def test_effective_ratio_outputs(
    sim: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs, truth, _ = sim
    out = tmp_path / "ratios.csv"
    assert main(["effective-ratio", str(truth), str(runs), "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    assert len(frame) == 1200
    # the true law: r̂ differs from W p only by the 1 % loss noise
    rel = np.abs(frame["r_observed"] / frame["r_law"] - 1)
    assert rel.median() < 0.1
    capsys.readouterr()
    assert main(["effective-ratio", str(truth), str(runs), "--json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert len(obj["ratios"]) == 1200 and obj["ratios"][0]["target"] == "s1"


def test_simulate_defaults_and_multi_budget(tmp_path: Path) -> None:
    out = tmp_path / "r.parquet"
    assert main(["simulate", "--out", str(out)]) == 0
    frame = pd.read_parquet(out)
    assert len(frame) == 64 and sum(str(c).startswith("p.") for c in frame) == 4
    out2 = tmp_path / "r2.csv"
    assert main(["simulate", "--tokens", "1e8", "1e9", "--runs", "10", "--out", str(out2)]) == 0
    assert sorted(set(pd.read_csv(out2)["tokens"])) == [1e8, 1e9]


def test_fit_other_family_laws(sim: tuple[Path, Path, Path], tmp_path: Path) -> None:
    runs, _, _ = sim
    for name in ("isolated", "climb-msl"):
        out = tmp_path / f"{name}.json"
        assert main(["fit", str(runs), "--law", name, "--out", str(out)]) == 0
        assert load_law(out).name == name


# ---------------------------------------------------------------------- bad input
def _expect_error(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("climb: error: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


BAD_RUNS = [
    ("run,p.en,p.de,loss.en,loss.de\nr1,0.5,0.5,3.1,3.3\n", "missing column 'tokens'"),
    (GOOD.replace("r2,1e9,0.2,0.8", "r2,1e9,0.3,0.8"), "proportions sum to 1.1"),
    (GOOD.replace("3.4,3.0", "-3.4,3.0"), "column 'loss.en' is -3.4"),
    (GOOD.replace("3.4,3.0", "nan,3.0"), "column 'loss.en' is 'nan'"),
    (GOOD.replace("r2,", "r1,"), "duplicated run id 'r1'"),
    ("", "the file is empty"),
]


@pytest.mark.parametrize(("text", "message"), BAD_RUNS)
def test_fit_bad_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = tmp_path / "runs.csv"
    path.write_text(text)
    _expect_error(capsys, ["fit", str(path), "--out", str(tmp_path / "l.json")], message)
    assert not (tmp_path / "l.json").exists()


@pytest.mark.parametrize(("text", "message"), BAD_RUNS)
def test_evaluate_bad_runs(
    sim: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    text: str, message: str,
) -> None:  # fmt: skip
    path = tmp_path / "runs.csv"
    path.write_text(text)
    _expect_error(capsys, ["evaluate", str(sim[1]), str(path)], message)


def test_unknown_law_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "runs.csv"
    path.write_text(GOOD)
    _expect_error(capsys, ["fit", str(path), "--law", "chinchilla", "--out", str(tmp_path / "l.json")],
                  "unknown law 'chinchilla'")  # fmt: skip
    _expect_error(capsys, ["cv", str(path), "--law", "chinchilla"], "unknown law 'chinchilla'")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"E": [1.0], "B": [1.0, 1.0], "beta": [0.3, 0.3], "W": [[1, 0], [0, 1]]},
         "parameter 'E' has shape [1], expected [2]"),
        ({"E": [1.0, 1.0], "B": [1.0, 1.0], "beta": [0.3, 0.3], "W": [[1, 0, 0], [0, 1, 0]]},
         "parameter 'W' has shape [2, 3], expected [2, 2]"),
        ({"E": [1.0, 1.0], "B": [1.0, 1.0], "beta": [0.3, 0.3]}, "missing parameter 'W'"),
        ({"E": [1.0, 1.0], "B": [1.0, 1.0], "beta": [0.3, 0.3], "W": [[1, 0], [0, 1]],
          "eta": [0.5, -0.1]}, "'eta' (transfer saturation) must be in (0, 1]"),
        ({"E": [1.0, 1.0], "B": [1.0, 1.0], "beta": [0.3, 0.3], "W": [[1, 0], [0, 1]],
          "eta": [1.0, 2.0]}, "'eta' (transfer saturation) must be in (0, 1]"),
        ({"E": [1.0, 1.0], "B": [1.0, 1.0], "beta": [0.3, 0.3], "W": [[1, 0], [0, 1]],
          "eta": [[0.5, 0.5]]}, "parameter 'eta' has shape [1, 2], expected [2]"),
    ],
)  # fmt: skip
def test_evaluate_bad_law_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], params: dict, message: str
) -> None:
    runs = tmp_path / "runs.csv"
    runs.write_text(GOOD)
    law = tmp_path / "law.json"
    law.write_text(json.dumps({"law": "climb", "sources": ["en", "de"], "params": params}))
    _expect_error(capsys, ["evaluate", str(law), str(runs)], message)


def test_evaluate_law_file_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs.csv"
    runs.write_text(GOOD)
    bad = tmp_path / "law.json"
    bad.write_text("{not json")
    _expect_error(capsys, ["evaluate", str(bad), str(runs)], "not valid JSON")
    _expect_error(capsys, ["evaluate", str(tmp_path / "none.json"), str(runs)], "no such law file")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"law": "climb", "sources": ["fr", "it"], "params": {
        "E": [1, 1], "B": [1, 1], "beta": [0.3, 0.3], "W": [[1, 0], [0, 1]]}}))  # fmt: skip
    _expect_error(capsys, ["evaluate", str(other), str(runs)], "none of the law's targets")


def test_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs.csv"
    runs.write_text(GOOD)
    _expect_error(
        capsys, ["fit", str(runs), "--out", str(tmp_path / "law.txt")], "expected a .json file"
    )
    _expect_error(capsys, ["cv", str(runs), "--folds", "5"], "more than the 2 runs")
    _expect_error(capsys, ["simulate", "--sources", "0", "--out", str(tmp_path / "s.csv")],
                  "sources must be an integer ≥ 1")  # fmt: skip
    _expect_error(capsys, ["simulate", "--noise", "-1", "--out", str(tmp_path / "s.csv")],
                  "noise must be ≥ 0")  # fmt: skip
    _expect_error(capsys, ["simulate", "--out", str(tmp_path / "s.txt")], "use a .csv")
    _expect_error(capsys, ["simulate", "--eta", "0", "--out", str(tmp_path / "s.csv")],
                  "eta must be in (0, 1]")  # fmt: skip
    _expect_error(capsys, ["simulate", "--eta", "1.5", "--out", str(tmp_path / "s.csv")],
                  "eta must be in (0, 1]")  # fmt: skip
    _expect_error(capsys, ["fit", str(runs), "--law", "msl", "--transfer", "linear", "--out",
                           str(tmp_path / "l.json")], "--transfer applies to climb-family laws")  # fmt: skip
