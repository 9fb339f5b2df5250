"""The HTML report: every figure drawn from a simulated law and runs, embedded, offline."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest

from climb.cli import main
from climb.data.runs import RunTable
from climb.laws import law_from_json
from climb.report import (
    AllocationSummary,
    CVSummary,
    Verification,
    VerifiedMixture,
    build_report,
)

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


def verification(climb_mean: float, other_mean: float) -> Verification:
    def mix(name: str, level: float) -> VerifiedMixture:
        realized = {s: level + 0.01 * k for k, s in enumerate(SOURCES)}
        predicted = {s: v + 0.02 for s, v in realized.items()}
        return VerifiedMixture(name, {s: 1 / len(SOURCES) for s in SOURCES}, predicted, realized)

    return Verification(
        tokens=4e6,
        targets=SOURCES,
        mixtures=[
            mix("climb", climb_mean),
            mix("uniform", other_mean),
            mix("natural", other_mean + 0.05),
        ],
    )


@pytest.fixture(scope="module")
def inputs():
    law = law_from_json(simulated_law())
    runs = simulated_runs(law)
    obs = runs.loss
    oof = obs * np.exp(np.random.default_rng(2).normal(0, 0.01, obs.shape))
    cv = {
        "climb": CVSummary(
            "climb",
            5,
            SOURCES,
            oof,
            {s: {"mae": 0.01, "spearman": 0.9} for s in SOURCES},
            {"mae": 0.0123, "spearman": 0.934},
        ),
        "isolated": CVSummary("isolated", 5, SOURCES, None, {}, {"mae": 0.0456, "spearman": 0.812}),
    }
    alloc = AllocationSummary(
        tokens=4e6,
        sources=SOURCES,
        mixtures={
            "climb": dict(zip(SOURCES, [0.3, 0.1, 0.2, 0.25, 0.15])),
            "uniform": {s: 0.2 for s in SOURCES},
        },
        interval={s: (0.05, 0.35) for s in SOURCES},
        objective={"climb": 7.0, "uniform": 7.1},
    )
    return law, runs, cv, alloc


def _embedded_pngs(html: str) -> list[bytes]:
    return [
        base64.b64decode(m)
        for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    ]


def test_report_has_every_figure_embedded_and_offline(inputs, tmp_path: Path) -> None:
    law, runs, cv, alloc = inputs
    rep = build_report(
        runs, law, tmp_path, cv=cv, allocation=alloc, verification=verification(1.5, 1.6)
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
    # the CV error is on the page
    assert "0.0123" in html and "0.934" in html and "0.0456" in html


def test_report_skips_what_is_missing(inputs, tmp_path: Path) -> None:
    law, runs, _, _ = inputs
    rep = build_report(runs, law, tmp_path)
    assert set(rep.figures) == {"pred_vs_obs", "interaction", "effective_ratio"}
    assert set(rep.skipped) == {"allocation", "verification"}
    html = rep.html_path.read_text(encoding="utf-8")
    assert "no verification runs given" in html


def test_verdict_states_a_loss_plainly(inputs, tmp_path: Path) -> None:
    v = verification(1.62, 1.55)  # climb worse than uniform, better than natural (1.60)
    assert not v.recommended_wins_all
    text = v.verdict()
    assert "does NOT beat every baseline" in text
    assert "uniform 1.5700" in text and "1.6400" in text  # the numbers, means over 5 languages
    law, runs, _, _ = inputs
    rep = build_report(runs, law, tmp_path, verification=v)
    html = rep.html_path.read_text(encoding="utf-8")
    assert "does NOT beat every baseline" in html


def test_verdict_win_and_json_roundtrip(tmp_path: Path) -> None:
    v = verification(1.50, 1.55)
    assert v.recommended_wins_all
    assert "beats every baseline" in v.verdict() and "by 0.0500" in v.verdict()
    back = Verification.load(v.save(tmp_path / "v.json"))
    assert back.names == v.names
    np.testing.assert_allclose(back.matrix("realized"), v.matrix("realized"))
    cmp = {r["baseline"]: r for r in back.comparison()}
    assert cmp["uniform"]["delta"] == pytest.approx(0.05)


def test_allocation_summary_reads_allocate_json() -> None:
    obj = {
        "proportions": {"en": 0.6, "fr": 0.4},
        "objective": 3.2,
        "predicted_loss": {"en": 1.5, "fr": 1.7},
        "tokens": 1e9,
        "solver": {"path": "two-step"},
        "intervals": {"level": 0.9, "proportions": {"en": [0.5, 0.7], "fr": [0.3, 0.5]}},
        "baselines": {"uniform": {"proportions": {"en": 0.5, "fr": 0.5}, "objective": 3.3}},
    }
    a = AllocationSummary.from_json(obj)
    assert list(a.mixtures) == ["climb", "uniform"]
    assert a.interval == {"en": (0.5, 0.7), "fr": (0.3, 0.5)}
    assert a.interval_level == 0.9 and a.objective["uniform"] == 3.3


# ---------------------------------------------------------------------- CLI
def _write_inputs(tmp_path: Path, inputs) -> tuple[Path, Path, Path, Path]:
    law, runs, _, _ = inputs
    runs_path = runs.write(tmp_path / "runs.csv")
    law_path = law.save(tmp_path / "law.json")
    alloc_path = tmp_path / "alloc.json"
    alloc_path.write_text(
        json.dumps(
            {
                "proportions": dict(zip(SOURCES, [0.3, 0.1, 0.2, 0.25, 0.15])),
                "objective": 7.0,
                "tokens": 4e6,
                "baselines": {
                    "uniform": {"proportions": {s: 0.2 for s in SOURCES}, "objective": 7.1}
                },
            }
        )
    )
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
