"""The embedded default corpus (climb/resources/corpus) and `climb corpus stats` on it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from climb.cli import main
from climb.data.corpus import Corpus, embedded_corpus_path

# Independent of climb.data.corpus.detect_script: letters per script by Unicode ranges.
RANGES = {
    "Latin": r"[A-Za-z\u00c0-\u024f]",
    "Cyrillic": r"[\u0400-\u04ff]",
    "CJK": r"[\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af]",
    "Greek": r"[\u0370-\u03ff]",
    "Arabic": r"[\u0600-\u06ff]",
    "Devanagari": r"[\u0900-\u097f]",
}


def _main_script(text: str) -> str:
    counts = {k: len(re.findall(rx, text[:200_000])) for k, rx in RANGES.items()}
    non_latin = max((k for k in counts if k != "Latin"), key=lambda k: counts[k])
    return non_latin if counts[non_latin] >= 0.2 * sum(counts.values()) else "Latin"


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return Corpus.open()


def test_embedded_has_ten_languages_in_three_scripts(corpus: Corpus) -> None:
    assert corpus.root == embedded_corpus_path()
    assert len(corpus.sources) >= 10
    scripts = {s: _main_script(corpus.text_bytes(s).decode("utf-8")) for s in corpus.sources}
    assert {"Latin", "Cyrillic", "CJK"} <= set(scripts.values())
    assert len(set(scripts.values())) >= 5
    stats = {st.source: st for st in corpus.stats()}
    # detect_script agrees with the independent check (CJK = Han, Han+Kana or Hangul)
    for s, script in scripts.items():
        got = stats[s].script
        assert got == script or (script == "CJK" and got in {"Han", "Han+Kana", "Hangul"}), s


def test_embedded_sizes_imbalanced_and_valid_split(corpus: Corpus) -> None:
    stats = corpus.stats()
    sizes = [st.bytes + st.valid_bytes for st in stats]
    assert max(sizes) >= 5_000_000
    assert min(sizes) <= 500_000
    for st in stats:
        assert st.documents > 10 and st.unique_tokens == st.bytes
        # held-out: 64 KiB, or about 10% for a small language
        assert min(65536, 0.1 * (st.bytes + st.valid_bytes)) - 10 <= st.valid_bytes
        assert st.valid_bytes <= 65536 + 40_000
        train, valid = corpus.documents(st.source), corpus.documents(st.source, "valid")
        assert not set(train) & set(valid)


def test_embedded_manifest_matches_files(corpus: Corpus) -> None:
    manifest = corpus.manifest()
    assert manifest is not None
    assert manifest["command"].startswith("climb corpus build-debian OUT --languages ")
    langs = manifest["command"].split("--languages ")[1].split()[0].split(",")
    assert sorted(langs) == corpus.sources == sorted(manifest["languages"])
    for lang, entry in manifest["languages"].items():
        assert entry["bytes"]["train"] == len(corpus.text_bytes(lang))
        assert entry["bytes"]["valid"] == len(corpus.text_bytes(lang, "valid"))
        assert entry["documents"]["train"] == len(corpus.documents(lang))
        for pkg in entry["packages"]:
            info = manifest["packages"][pkg]
            assert info["version"] and info["licenses"]
            assert (corpus.root / info["copyright"]).is_file()


def test_embedded_size_budget() -> None:
    total = sum(f.stat().st_size for f in Path(embedded_corpus_path()).rglob("*") if f.is_file())
    assert total <= 15 * 2**20


def test_cli_stats_embedded(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    caps = tmp_path / "caps.csv"
    assert main(["corpus", "stats", "--json", "--unique-tokens-out", str(caps)]) == 0
    data = json.loads(capsys.readouterr().out)
    sources = [s["source"] for s in data["sources"]]
    assert len(sources) >= 10
    lines = caps.read_text().splitlines()
    assert lines[0] == "source,tokens" and len(lines) == len(sources) + 1
    tokens = {row.split(",")[0]: int(row.split(",")[1]) for row in lines[1:]}
    assert tokens == {s["source"]: s["bytes"] for s in data["sources"]}


def test_missing_source_in_embedded(corpus: Corpus) -> None:
    from climb.errors import ClimbError

    with pytest.raises(ClimbError, match="has no source 'klingon'"):
        corpus.check_sources(["de", "klingon"])
