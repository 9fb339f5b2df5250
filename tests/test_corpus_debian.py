"""Cleaning and parsing steps of the Debian corpus build (climb.data.builders.debian), on inline fixtures."""

from __future__ import annotations

import pytest

from climb.cli import main
from climb.data.builders.debian import (
    PACKAGES,
    cap_documents,
    clean_man_output,
    fortune_cookies,
    group_cookies,
    html_paragraphs,
    is_so_link,
    keep_paragraph,
    licence_names,
    strip_ansi,
)

PAD = " " * 300

MAN_RENDERED = f"""LS(1){PAD}Benutzerbefehle{PAD}LS(1)



BEZEICHNUNG
       ls - Verzeichnisinhalte auflisten

BESCHREIBUNG
       Auflistung   von Informationen über die DATEIen (Standardvorgabe ist das aktuelle Verzeichnis).

       -a, --all
              Einträge nicht ignorieren, die mit ».« beginnen

GNU coreutils 9.1{PAD}September 2022{PAD}LS(1)
"""


def test_clean_man_output_drops_header_footer_and_dedents() -> None:
    paras = clean_man_output(MAN_RENDERED)
    assert paras == [
        "BEZEICHNUNG",
        "ls - Verzeichnisinhalte auflisten",
        "BESCHREIBUNG",
        "Auflistung von Informationen über die DATEIen (Standardvorgabe ist das aktuelle Verzeichnis).",
        "-a, --all\nEinträge nicht ignorieren, die mit ».« beginnen",
    ]
    assert not any("LS(1)" in p for p in paras)
    assert clean_man_output("only one line\n") == []


def test_clean_man_output_strips_sgr_codes() -> None:
    text = "X(1)  X(1)\n\n\x1b[1mNAME\x1b[0m is \x1b[4mbold\x1b[24m here\n\nfooter X(1)\n"
    assert clean_man_output(text) == ["NAME is bold here"]


def test_is_so_link() -> None:
    assert is_so_link('.\\" comment\n.so man3/printf.3\n')
    assert not is_so_link(".TH LS 1\n.SH NAME\nls \\- list\n")


LO_HTML = """<!DOCTYPE html><html lang="de"><head><title>Titel</title>
<script>var x = "kein Text";</script></head><body>
<header><p>Hilfe für LibreOffice 7.4</p></header>
<aside class="leftside"><div id="Index">Index</div></aside>
<div id="DisplayArea" itemprop="softwareHelp">
  <h1 id="hd_1">Symbolleiste Rahmen</h1>
  <p class="paragraph">Verwenden Sie <span class="switchinline"><span hidden="true" id="MACtext_1" class="MAC"><span class="keycode">Befehl</span></span><span hidden="true" id="defaulttext_1"><span class="keycode">Strg</span></span></span>+C zum Kopieren.<br>Zweite Zeile</p>
  <div class="embedded"><p>Ein &amp; zwei&nbsp;drei</p><img src="x.png"><p>vier</p></div>
  <pre>code block</pre>
</div>
<footer><p>Copyright footer</p></footer>
</body></html>"""


def test_html_paragraphs_libreoffice_display_area_and_hidden_spans() -> None:
    paras = html_paragraphs(LO_HTML, root_id="DisplayArea")
    assert paras == [
        "Symbolleiste Rahmen",
        "Verwenden Sie Strg+C zum Kopieren.",
        "Zweite Zeile",
        "Ein & zwei drei",
        "vier",
    ]
    joined = " ".join(paras)
    assert "Befehl" not in joined  # the hidden macOS variant is dropped
    assert "code block" not in joined and "Index" not in joined and "footer" not in joined


def test_html_paragraphs_docbook_drops_navigation() -> None:
    html = """<html><body><div class="navheader"><a>Prev</a> Next</div>
    <ul class="docnav"><li>1.6. Lifecycle of a Release</li></ul>
    <div class="toc"><dl><dt>Chapter 1</dt></dl></div>
    <div class="section"><h2 class="title">1.1. Grundlagen</h2><p>Ein Absatz mit <code>apt</code>
    und <em>Betonung</em>.</p><div class="screen">$ apt-get install</div></div>
    <div class="navfooter">Home</div></body></html>"""
    assert html_paragraphs(html) == ["1.1. Grundlagen", "Ein Absatz mit apt und Betonung."]


def test_fortune_cookies_latin1_and_ansi() -> None:
    latin1 = "Der Bär ist größer.\n\t-- Sprichwort\n%\nZweiter Keks\n%\n".encode("latin-1")
    assert fortune_cookies(latin1) == ["Der Bär ist größer.\n -- Sprichwort", "Zweiter Keks"]
    zh = "要有光。\n\n\x1b[33m    -- 圣经 \x1b[32m《创世记》\x1b[m第一章\x1b[m\n%\n第二条\n%\n".encode()
    cookies = fortune_cookies(zh)
    assert cookies == ["要有光。\n\n -- 圣经 《创世记》第一章", "第二条"]
    assert "\x1b" not in "".join(cookies)
    assert strip_ansi("a\x1b[1;31mb\x1b[0m\x07c") == "abc"


def test_group_cookies_about_max_bytes() -> None:
    cookies = [f"cookie {i} " + "x" * 90 for i in range(50)]
    docs = group_cookies(cookies, max_bytes=1000)
    assert [c for d in docs for c in d] == cookies
    assert all(sum(len(c) + 2 for c in d) <= 1000 for d in docs)
    assert len(docs) == 6


def test_keep_paragraph_language_and_length() -> None:
    de = "Die obligatorischen Argumente für Optionen sind für deren Kurz- und Langform gleich."
    assert keep_paragraph(de, "de")
    assert not keep_paragraph(de, "fr")
    assert not keep_paragraph("Strg+C kopieren", "de")  # fewer than 20 letters
    en = "Mandatory arguments to long options are mandatory for short options too."
    assert not keep_paragraph(en, "ja")  # untranslated fallback text
    assert keep_paragraph("これは日本語の文章です。翻訳されたマニュアルページの段落です。", "ja")


def test_licence_names() -> None:
    dep5 = "Format: https://...\n\nFiles: *\nLicense: GPL-3+\n\nFiles: a\nLicense: MPL-2.0\nLicense: GPL-3+\n"
    assert licence_names(dep5) == ["GPL-3+", "MPL-2.0"]
    free = "It is licensed under the terms of the GNU GPL, version 2.\n"
    assert licence_names(free) == ["GPL-2"]
    assert licence_names("all rights reserved") == ["see copyright file"]


def test_cap_documents_deterministic_and_under_cap() -> None:
    docs = [{"text": f"doc {i} " + "z" * (100 + i), "doc": str(i)} for i in range(200)]
    capped = cap_documents(docs, 5000)
    size = sum(len(d["text"]) + 2 for d in capped)
    assert 4800 <= size <= 5000
    assert capped == cap_documents(docs, 5000)
    assert [int(d["doc"]) for d in capped] == sorted(int(d["doc"]) for d in capped)
    assert cap_documents(docs, None) == docs


def test_registry_covers_scripts() -> None:
    assert {"ar", "de", "el", "en", "hi", "ja", "ko", "ru", "zh"} <= set(PACKAGES)
    assert PACKAGES["en"][0].name == "manpages"
    assert all(p.subdir != "zh_TW" for p in PACKAGES["zh"])


def test_build_debian_bad_options(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    assert main(["corpus", "build-debian", str(tmp_path / "o"), "--languages", "de,xx"]) == 2
    err = capsys.readouterr().err
    assert "unknown xx" in err and err.count("\n") == 1
    assert main(["corpus", "build-debian", str(tmp_path / "o"), "--languages", ","]) == 2
    assert "at least one language" in capsys.readouterr().err


def test_build_debian_out_is_a_file(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    (tmp_path / "f").write_text("x")
    assert main(["corpus", "build-debian", str(tmp_path / "f"), "--languages", "de"]) == 2
    err = capsys.readouterr().err
    assert "cannot create the folder" in err and err.count("\n") == 1
