"""``climb demo --scenario transfer`` and ``--cap``: a capped derived corpus under ``--out``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from climb.cli import main
from climb.data.corpus import Corpus
from climb.demo import SCENARIOS, DemoSettings, _context, capped_corpus, stage_languages
from climb.errors import ClimbError


def _run(out: Path, *argv: str) -> int:
    return main(["demo", "--quick", "--out", str(out), "--no-progress", *argv])


def _error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [x for x in err.strip().splitlines() if x.startswith("climb: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--cap", "xx=1k", "--languages", "es,ca"], "caps: corpus"),
        (["--cap", "ca=12k", "--languages", "es,pt"], "'ca' is not one of the demo's languages"),
        (["--cap", "ca=12k"], "(en, fr, ru, ja, ko, hi)"),  # the default scenario's languages
        (["--cap", "ca=100M", "--languages", "es,ca"], "nothing is cut"),
        (["--cap", "ca=1k", "--languages", "es,ca"], "no whole document fits; use ≥ 1,014"),
        (["--cap", "ca=12q", "--scenario", "transfer"], "--cap ca '12q': not a count"),
        (["--cap", "ca", "--scenario", "transfer"], "--cap: 'ca' is not NAME=VALUE"),
        (["--cap", "ca=0"], "--cap ca '0': must be ≥ 1"),
        (["--scenario", "transfer", "--languages", "es,pt"], "'ca' is not one of the demo's"),
    ],
)
def test_bad_caps_are_one_line_and_leave_nothing(tmp_path: Path, capsys, argv, needle) -> None:
    out = tmp_path / "d"
    assert _run(out, *argv) == 2
    assert needle in _error_line(capsys)
    assert not out.exists() or [p.name for p in out.iterdir()] == []  # nothing written


def test_another_cap_on_an_out_with_runs_is_refused(tmp_path: Path, capsys) -> None:
    out = tmp_path / "d"
    out.mkdir()
    origin = Corpus.open()
    capped_corpus(out, origin, ["es", "ca"], {"ca": 12_000})
    (out / "runs.db").write_bytes(b"runs trained on the capped corpus")
    manifest = (out / "corpus" / "MANIFEST.json").read_bytes()
    for argv, words in [
        (["--cap", "ca=20k"], "ca=12,000 bytes, not the corpus 'embedded' with caps ca=20,000"),
        ([], "with caps ca=12,000 bytes, not the uncapped corpus 'embedded'"),
    ]:
        assert _run(out, "--languages", "es,ca", *argv) == 2
        line = _error_line(capsys)
        assert f"out_dir {out}: its runs (runs.db) were trained on the corpus 'embedded'" in line
        assert words in line and "use another out_dir" in line
    # nothing already saved was touched
    assert (out / "runs.db").read_bytes() == b"runs trained on the capped corpus"
    assert (out / "corpus" / "MANIFEST.json").read_bytes() == manifest
    # and runs trained on the uncapped corpus are not mixed with capped ones either
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "verify.db").write_bytes(b"x")
    assert _run(plain, "--languages", "es,ca", "--cap", "ca=12k") == 2
    assert "its runs (verify.db) were trained on an uncapped corpus" in _error_line(capsys)
    assert not (plain / "corpus").exists()


def test_a_corpus_folder_the_demo_did_not_write_is_left_alone(tmp_path: Path, capsys) -> None:
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "mine.txt").write_text("my own text")
    assert _run(tmp_path, "--cap", "ca=12k", "--languages", "es,ca") == 2
    assert "its corpus/ folder is not a capped corpus the demo wrote" in _error_line(capsys)
    assert capped_corpus(tmp_path, Corpus.open(), ["es", "ca"], {}) is None  # uncapped: ignored
    assert (tmp_path / "corpus" / "mine.txt").read_text() == "my own text"


def test_capped_corpus_is_built_once_and_grows_with_the_languages(tmp_path: Path) -> None:
    origin = Corpus.open()
    first = capped_corpus(tmp_path, origin, ["pt", "ca"], {"ca": 12_000})
    assert first is not None and first.sources == ["ca", "pt"]
    kept = first.documents("ca")
    stamp = (tmp_path / "corpus" / "MANIFEST.json").stat().st_mtime_ns
    again = capped_corpus(tmp_path, origin, ["ca"], {"ca": 12_000})
    assert again is not None and again.sources == ["ca", "pt"]  # reused, not rebuilt
    assert (tmp_path / "corpus" / "MANIFEST.json").stat().st_mtime_ns == stamp
    more = capped_corpus(tmp_path, origin, ["ca", "uk"], {"ca": 12_000})
    assert more is not None and more.sources == ["ca", "uk"]  # same origin and caps: same text
    assert more.documents("ca") == kept and more.unique_tokens()["ca"] == 12_088
    # no stores yet: another cap rebuilds; no cap removes the stale derived corpus
    other = capped_corpus(tmp_path, origin, ["ca", "uk"], {"ca": 20_000})
    assert other is not None and other.unique_tokens()["ca"] == 20_887
    assert other.documents("ca")[: len(kept)] == kept
    assert capped_corpus(tmp_path, origin, ["ca", "uk"], {}) is None
    assert not (tmp_path / "corpus").exists()


def test_stage_languages_uses_the_capped_text_for_the_data_caps(tmp_path: Path) -> None:
    sc = SCENARIOS["transfer"]
    ctx = _context(tmp_path, DemoSettings.quick(), None, None, False)
    langs = stage_languages(ctx, list(sc.languages), sc.caps)
    assert langs.sources == ["es", "pt", "fr", "ca", "ru", "uk", "zh", "ja"]
    assert langs.corpus == (tmp_path / "corpus").resolve()
    assert langs.unique_tokens["ca"] == 12_088  # the kept text, not the 3.3M of the origin
    whole = Corpus.open().unique_tokens(sources=["es", "ca"])
    assert langs.unique_tokens["es"] == whole["es"] and whole["ca"] > 3_000_000
    assert langs.cut["ca"]["documents"] == {"kept": 10, "before": 2305}


def test_default_scenario_is_unchanged(tmp_path: Path) -> None:
    d = SCENARIOS["default"]
    assert (d.languages, dict(d.caps), d.proxy_runs, d.quick_proxy_runs) == ((), {}, None, None)
    s = DemoSettings()
    assert (s.n_languages, s.proxy_tokens, s.proxy_runs, s.target_tokens, s.max_epochs) == (
        6, (300_000, 600_000), 18, 1_200_000, 4.0,
    )  # fmt: skip
    q = DemoSettings.quick()
    assert (q.proxy_tokens, q.proxy_runs, q.target_tokens) == ((20_000, 40_000), 14, 160_000)
    ctx = _context(tmp_path, DemoSettings.quick(), None, None, False)
    langs = stage_languages(ctx, None)
    assert langs.sources == ["en", "fr", "ru", "ja", "ko", "hi"]
    assert langs.corpus is None and langs.cut == {} and not (tmp_path / "corpus").exists()


@pytest.mark.slow
def test_quick_transfer_scenario_end_to_end_respects_the_capped_data(tmp_path: Path, capsys) -> None:  # fmt: skip
    """The quick transfer scenario with Catalan cut to its first document, 1,014 bytes. (At the
    scenario's 12 kB and the quick D* = 160k the 4-epoch cap allows 30 % Catalan and Climb gave
    it 8.6 %; at 2 kB — two documents, 3,832 bytes — the cap is 9.6 % and Climb gave 8.4 %.)"""
    out = tmp_path / "t"
    assert _run(out, "--scenario", "transfer", "--cap", "ca=1014") == 0
    printed = capsys.readouterr().out
    u_ca = Corpus.open(out / "corpus").unique_tokens()["ca"]
    assert u_ca == 1014  # the first document
    assert "capped: ca: first 1 of 2,305 training documents (1,014 of 3,310,378 bytes" in printed
    settings = DemoSettings.quick()
    alloc = json.loads((out / "allocation.json").read_text())
    d_star = alloc["tokens"]
    assert d_star == settings.target_tokens
    cap = settings.max_epochs * u_ca / d_star
    for name, mix in [("climb", alloc["proportions"])] + [
        (b, v["proportions"]) for b, v in alloc["baselines"].items()
    ]:
        assert mix["ca"] * d_star <= settings.max_epochs * u_ca * (1 + 1e-6), name
    assert alloc["baselines"]["uniform"]["proportions"]["ca"] == pytest.approx(cap, rel=1e-6)
    assert alloc["proportions"]["ca"] == pytest.approx(cap, rel=1e-6)  # Climb's binds too
    assert "ca" in alloc["solver"]["at_upper"]
    plan = yaml.safe_load((out / "plan.yaml").read_text())
    assert plan["design"]["corpus_cut"]["ca"]["bytes"]["kept"] == u_ca
    assert plan["design"]["dropped"] == ["wsd-mono-ca"]  # 4 epochs of 1,014 bytes < 20k tokens
    assert len(plan["runs"]) == SCENARIOS["transfer"].quick_proxy_runs - 1
    for run in plan["runs"]:  # the proxies respect the same caps
        assert run["mixture"].get("ca", 0.0) * run["tokens"] <= 4 * u_ca * (1 + 1e-6)
    html = (out / "report.html").read_text()
    assert "Capped corpus" in html and "first 1 of 2,305 training documents" in html
    ver = json.loads((out / "verification.json").read_text())
    assert ver["mixtures"]["climb"]["proportions"]["ca"] == pytest.approx(
        np.round(alloc["proportions"]["ca"], 6), abs=2e-6
    )
    # a different cap on this --out is refused, the stores stay as they are
    before = (out / "runs.db").read_bytes(), (out / "verify.db").read_bytes()
    assert _run(out, "--scenario", "transfer") == 2
    assert "with caps ca=1,014 bytes, not the corpus 'embedded' with caps ca=12,000" in _error_line(capsys)  # fmt: skip
    assert ((out / "runs.db").read_bytes(), (out / "verify.db").read_bytes()) == before
    with pytest.raises(ClimbError):
        capped_corpus(out, Corpus.open(), ["ca"], {"ca": 3000})
