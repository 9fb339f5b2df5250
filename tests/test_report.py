"""The HTML report: every figure drawn from a simulated law and runs, embedded, offline."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest

from climb.allocation.result import AllocationResult, read_allocation
from climb.cli import main
from climb.data.runs import RunTable
from climb.evaluation.cv import CVResult, mae_by_share, own_shares
from climb.evaluation.metrics import evaluate_predictions
from climb.laws import law_from_json
from climb.report import build_report, share_errors
from climb.report.html import fmt
from climb.verification import MixtureOutcome, VerificationResult

SOURCES = ["en", "fr", "ru", "ja", "el"]
FIGURES = {"pred_vs_obs", "interaction", "effective_ratio", "allocation", "verification"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def simulated_law(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    k = len(SOURCES)
    W = np.eye(k) + rng.uniform(-0.05, 0.25, (k, k)) * (1 - np.eye(k))
    return {
        "law": "climb",
        "sources": SOURCES,
        "targets": SOURCES,
        "params": {
            "E": rng.uniform(0.8, 1.2, k).tolist(),
            "B": rng.uniform(20, 60, k).tolist(),
            "beta": rng.uniform(0.25, 0.35, k).tolist(),
            "W": W.tolist(),
            "kappa": [0.0] * k,
            "tokens_ref": 1e6,
        },
    }


def simulated_runs(law, n: int = 30, seed: int = 1, noise: float = 0.005) -> RunTable:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(len(SOURCES), 0.8), n)
    tokens = np.where(np.arange(n) % 2, 1e6, 5e5)
    loss = law.predict(p, tokens) * np.exp(rng.normal(0, noise, (n, len(SOURCES))))
    return RunTable.from_arrays(
        run=[f"r{i}" for i in range(n)],
        tokens=tokens,
        p=p,
        sources=SOURCES,
        loss=loss,
        targets=SOURCES,
    )


def verification(climb_mean: float, other_mean: float, seeds: int = 3) -> VerificationResult:
    """Climb at ``climb_mean``, uniform at ``other_mean``, natural 0.05 above, with a small
    seed-dependent wobble shared by every mixture (so the pairing matters)."""
    wobble = [0.004 * np.sin(3.0 * k) for k in range(seeds)]

    def mix(name: str, level: float) -> MixtureOutcome:
        realized = [
            {s: level + 0.01 * k + w + 0.001 * ((j + len(name)) % 2) for k, s in enumerate(SOURCES)}
            for j, w in enumerate(wobble)
        ]
        predicted = {s: level + 0.01 * k + 0.02 for k, s in enumerate(SOURCES)}
        return MixtureOutcome(
            name, {s: 1 / len(SOURCES) for s in SOURCES}, list(range(seeds)), realized,
            predicted=predicted,
        )  # fmt: skip

    return VerificationResult(
        tokens=4e6,
        targets=SOURCES,
        mixtures={
            "climb": mix("climb", climb_mean),
            "uniform": mix("uniform", other_mean),
            "natural": mix("natural", other_mean + 0.05),
        },
    )


def _cv(name: str, runs: RunTable, oof: np.ndarray | None) -> CVResult:
    pred = oof if oof is not None else runs.loss + 0.05
    return CVResult(
        law=name, folds=5, seed=0, fold=np.arange(len(runs)) % 5, predictions=pred,
        observed=runs.loss.copy(), targets=list(runs.targets), run=list(runs.run),
        metrics=evaluate_predictions(pred, runs.loss, list(runs.targets)), fold_metrics=[],
    )  # fmt: skip


ALLOCATE_JSON = {
    "proportions": dict(zip(SOURCES, [0.3, 0.1, 0.2, 0.25, 0.15])),
    "objective": 7.0,
    "tokens": 4e6,
    "predicted_loss": {s: 1.4 for s in SOURCES},
    "solver": {"path": "active-set-eta", "status": 0, "iterations": 7},
    "intervals": {"level": 0.9, "proportions": {s: [0.05, 0.35] for s in SOURCES}},
    "baselines": {
        "uniform": {
            "proportions": {s: 0.2 for s in SOURCES},
            "objective": 7.1,
            "predicted_loss": {s: 1.42 for s in SOURCES},
        }
    },
}


@pytest.fixture(scope="module")
def inputs():
    law = law_from_json(simulated_law())
    runs = simulated_runs(law)
    obs = runs.loss
    oof = obs * np.exp(np.random.default_rng(2).normal(0, 0.01, obs.shape))
    cv = {"climb": _cv("climb", runs, oof), "isolated": _cv("isolated", runs, None)}
    alloc = AllocationResult.from_dict(ALLOCATE_JSON)
    baselines = {
        "uniform": AllocationResult.from_dict(ALLOCATE_JSON["baselines"]["uniform"], name="uniform")
    }
    return law, runs, cv, (alloc, baselines)


def _embedded_pngs(html: str) -> list[bytes]:
    return [
        base64.b64decode(m)
        for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    ]


def test_report_has_every_figure_embedded_and_offline(inputs, tmp_path: Path) -> None:
    law, runs, cv, (alloc, baselines) = inputs
    rep = build_report(
        runs,
        law,
        tmp_path,
        cv=cv,
        allocation=alloc,
        baselines=baselines,
        verification=verification(1.5, 1.6),
    )
    assert set(rep.figures) == FIGURES
    assert rep.skipped == {}
    html = rep.html_path.read_text(encoding="utf-8")
    embedded = _embedded_pngs(html)
    assert len(embedded) == len(FIGURES)
    for name, path in rep.figures.items():
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000, name
        assert data in embedded, f"{name}.png is not the embedded image"
        assert f'id="fig-{name}"' in html
    # offline: no external resources of any kind
    assert not re.search(r"https?://|<script|<link|@import|url\(", html)
    # the CV errors of both laws are on the page, as computed from their predictions
    for c in cv.values():
        assert f"<td>{fmt(c.overall['mae'])}</td>" in html
        assert f"<td>{fmt(c.overall['spearman'])}</td>" in html
    assert cv["climb"].overall["mae"] < cv["isolated"].overall["mae"]
    # and the held-out MAE by own share (p = 0 / trace / main), from the predictions
    for c in cv.values():
        share = mae_by_share(c.predictions, runs.loss, runs.p)
        assert json.dumps(share_errors(c, runs)) == json.dumps(share) and share["main"]["n"] > 0
        for k in ("zero", "trace", "main"):
            if share[k]["n"]:
                assert f"<td>{fmt(share[k]['mae'])}</td>" in html
    assert f"MAE p = 0 (n {share['zero']['n']})" in html
    # the allocation table has the objective gap of the baseline to climb
    assert f"<td>{fmt(7.1 - 7.0)}</td>" in html and "active-set-eta" in html


def test_report_skips_what_is_missing(inputs, tmp_path: Path) -> None:
    law, runs, _, _ = inputs
    rep = build_report(runs, law, tmp_path)
    assert set(rep.figures) == {"pred_vs_obs", "interaction", "effective_ratio"}
    assert set(rep.skipped) == {"allocation", "verification"}
    html = rep.html_path.read_text(encoding="utf-8")
    assert "no verification runs given" in html


def test_report_shows_each_verdict_with_its_paired_numbers(inputs, tmp_path: Path) -> None:
    v = verification(1.58, 1.55)  # climb worse than uniform by 0.03, better than natural (1.60)
    paired = v.paired
    assert paired["uniform"].verdict == "loses" and paired["natural"].verdict == "wins"
    assert paired["uniform"].mean_diff == pytest.approx(0.03, abs=0.001)
    law, runs, _, _ = inputs
    rep = build_report(runs, law, tmp_path, verification=v)
    html = rep.html_path.read_text(encoding="utf-8").replace("&#x27;", "'")
    for line in v.verdict_lines():
        assert line in html
    assert "climb vs uniform: loses" in html and "climb vs natural: wins" in html
    for c in paired.values():
        for x in (c.mean_diff, c.ci_low, c.ci_high):
            assert f"<td>{fmt(x)}</td>" in html
    for m in v.mixtures.values():  # mean ± std per mixture over the seeds
        assert f"<td>{fmt(m.mean)}</td><td>{fmt(m.std)}</td>" in html


def test_read_allocation_reads_allocate_json(tmp_path: Path) -> None:
    p = tmp_path / "a.json"
    p.write_text(json.dumps(ALLOCATE_JSON))
    res, baselines = read_allocation(p)
    assert res.proportions_dict() == ALLOCATE_JSON["proportions"]
    assert res.intervals == {s: (0.05, 0.35) for s in SOURCES} and res.interval_level == 0.9
    assert res.path == "active-set-eta" and res.nit == 7 and res.tokens == 4e6
    assert list(baselines) == ["uniform"]
    assert baselines["uniform"].objective == 7.1 and baselines["uniform"].tokens == 4e6
    assert baselines["uniform"].path == "baseline:uniform"
    # and what AllocationResult.to_dict writes reads back unchanged
    again = AllocationResult.from_dict(res.to_dict()).to_dict()
    assert json.dumps(again, sort_keys=True) == json.dumps(res.to_dict(), sort_keys=True)


# ---------------------------------------------------------------------- CLI
def _write_inputs(tmp_path: Path, inputs) -> tuple[Path, Path, Path, Path]:
    law, runs, _, _ = inputs
    runs_path = runs.write(tmp_path / "runs.csv")
    law_path = law.save(tmp_path / "law.json")
    alloc_path = tmp_path / "alloc.json"
    alloc_path.write_text(json.dumps(ALLOCATE_JSON))
    ver_path = verification(1.5, 1.6).save(tmp_path / "verification.json")
    return runs_path, law_path, alloc_path, ver_path


def test_cli_report_end_to_end(inputs, tmp_path: Path, capsys) -> None:
    runs_path, law_path, alloc_path, ver_path = _write_inputs(tmp_path, inputs)
    out = tmp_path / "rep"
    code = main(
        [
            "report",
            "--runs",
            str(runs_path),
            "--law",
            str(law_path),
            "--allocation",
            str(alloc_path),
            "--verification",
            str(ver_path),
            "--folds",
            "3",
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert {p.stem for p in out.glob("*.png")} == FIGURES
    html = (out / "report.html").read_text(encoding="utf-8")
    assert len(_embedded_pngs(html)) == len(FIGURES)
    assert "Cross-validated prediction error" in html


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"--runs": "missing.csv"}, "missing.csv: no such file"),
        ({"--law": "runs.csv"}, "not valid JSON"),
        ({"--verification": "law.json"}, "not a verification file"),
        ({"--allocation": "nothing.json"}, "no such allocation file"),
        ({"--folds": "1"}, "--folds 1"),
    ],
)
def test_cli_report_bad_input_is_one_line(inputs, tmp_path: Path, capsys, change, needle) -> None:
    runs_path, law_path, _, _ = _write_inputs(tmp_path, inputs)
    opts = {
        "--runs": str(runs_path),
        "--law": str(law_path),
        "--folds": "0",
        "--out": str(tmp_path / "o"),
    }
    for k, v in change.items():
        opts[k] = str(tmp_path / v) if not v.isdigit() else v
    argv = ["report"] + [x for kv in opts.items() for x in kv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("climb: error: ") and needle in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_own_shares_of_an_evaluation_only_target_are_zero() -> None:
    runs = RunTable.from_arrays(
        run=["a", "b"], tokens=[1e3, 1e3], p=np.array([[0.3, 0.7], [1.0, 0.0]]),
        sources=["en", "fr"], loss=np.full((2, 3), 2.0), targets=["en", "fr", "xx"],
    )  # fmt: skip
    assert own_shares(runs).tolist() == [[0.3, 0.7, 0.0], [1.0, 0.0, 0.0]]
