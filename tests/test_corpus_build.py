"""End to end: `build-debian` on two small real packages via apt-get (needs a Debian machine with
apt lists, dpkg-deb, groff and network access to the Debian archive)."""

from __future__ import annotations

import json
import lzma
from pathlib import Path

import pytest

from climb.data.builders.debian import Package, build_debian_corpus, render_man
from climb.data.corpus import Corpus

pytestmark = pytest.mark.slow


def test_build_debian_two_small_packages_and_resume(tmp_path: Path) -> None:
    registry = {
        "el": [Package("manpages-el", "man", "el")],
        "en": [Package("fortunes-min", "fortunes", "en")],
    }
    out, cache = tmp_path / "out", tmp_path / "cache"
    manifest = build_debian_corpus(
        out, ["el", "en"], cache_dir=cache, progress=False, registry=registry, command="test"
    )
    c = Corpus.open(out)
    assert c.sources == ["el", "en"]
    stats = {s.source: s for s in c.stats()}
    assert stats["el"].script == "Greek" and stats["en"].script == "Latin"
    assert stats["el"].bytes > 5_000 and stats["en"].bytes > 20_000
    assert stats["el"].valid_bytes > 0
    assert manifest["packages"]["manpages-el"]["licenses"] == ["GPL-3+"]
    assert manifest["languages"]["el"]["paragraphs"]["other_language"] > 0  # untranslated parts
    assert (out / manifest["packages"]["fortunes-min"]["copyright"]).is_file()
    first = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert list(cache.glob("debs/manpages-el_*.deb"))

    # a rerun reads the cache (deleting the .debs proves nothing is downloaded again) and gives
    # byte-identical output
    for deb in cache.glob("debs/*.deb"):
        deb.unlink()
    for p in out.rglob("*.xz"):
        p.unlink()
    build_debian_corpus(
        out, ["el", "en"], cache_dir=cache, progress=False, registry=registry, command="test"
    )
    again = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert again == first
    assert not list(cache.glob("debs/*.deb"))
    docs = [json.loads(x) for x in lzma.decompress(first[Path("el/train.jsonl.xz")]).splitlines()]
    assert all(d["doc"].startswith("manpages-el:man") for d in docs)

    # rebuilding with fewer languages leaves exactly those
    build_debian_corpus(out, ["en"], cache_dir=cache, progress=False, registry=registry)
    assert Corpus.open(out).sources == ["en"] and not (out / "el").exists()


def test_render_man_with_groff(tmp_path: Path) -> None:
    page = tmp_path / "demo.1"
    page.write_text(
        '.TH DEMO 1 "2024" "demo 1.0" "User Commands"\n.SH BESCHREIBUNG\n'
        "Dieses Programm zeigt eine Handbuchseite mit einem ziemlich langen Absatz, der nicht "
        "umbrochen werden darf, auch wenn er weit über achtzig Zeichen hinausgeht.\n"
        ".TP\n.B \\-v\nAusführliche Ausgabe.\n",
        encoding="utf-8",
    )
    paras = render_man(page)
    assert paras[0] == "BESCHREIBUNG"
    assert paras[1].startswith("Dieses Programm") and "\n" not in paras[1]
    assert paras[2] == "-v Ausführliche Ausgabe."  # a short tag shares the line
    assert not any("DEMO(1)" in p for p in paras)
    (tmp_path / "link.1").write_text(".so man1/demo.1\n")
    assert render_man(tmp_path / "link.1") == []
