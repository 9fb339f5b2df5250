"""The corpus format and reader (climb.data.corpus) and `climb corpus stats` on small corpora."""

from __future__ import annotations

import csv
import gzip
import json
import lzma
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from climb.cli import main
from climb.data.corpus import (
    Corpus,
    carve_validation,
    detect_script,
    read_documents,
    split_documents,
    write_unique_tokens,
)
from climb.errors import ClimbError, ClimbWarning

DE = [f"Dies ist das Dokument Nummer {i} mit etwas deutschem Text darin." for i in range(40)]
RU = [f"Это документ номер {i}, в нём немного русского текста." for i in range(30)]
JA = [f"これは{i}番目の文書です。日本語のテキストが少し入っています。" for i in range(25)]


def _make(tmp_path: Path) -> Path:
    root = tmp_path / "corp"
    root.mkdir()
    (root / "de.txt").write_text("\n\n".join(DE) + "\n", encoding="utf-8")
    (root / "ru.jsonl.gz").write_bytes(
        gzip.compress("".join(json.dumps({"text": t}) + "\n" for t in RU).encode())
    )
    ja = root / "ja"
    ja.mkdir()
    (ja / "train.txt.xz").write_bytes(lzma.compress("\n\n".join(JA[:20]).encode()))
    (ja / "valid.txt").write_text("\n\n".join(JA[20:]), encoding="utf-8")
    buf = pa.BufferOutputStream()
    pq.write_table(
        pa.table({"text": ["Hello world, document one.", "Document two here.", "Three."]}), buf
    )
    (root / "en.parquet").write_bytes(buf.getvalue().to_pybytes())
    (root / "MANIFEST.json").write_text("{}")
    (root / ".cache").mkdir()
    (root / "notes.md").write_text("not a source")
    return root


def test_open_reads_all_formats(tmp_path: Path) -> None:
    c = Corpus.open(_make(tmp_path))
    assert c.sources == ["de", "en", "ja", "ru"]
    # whole-source files: validation carved, nothing lost or duplicated
    for name, docs in (("de", DE), ("ru", RU)):
        train, valid = c.documents(name), c.documents(name, "valid")
        assert sorted(train + valid) == sorted(docs)
        assert valid and not set(train) & set(valid)
    # folder with a given valid file
    assert c.documents("ja") == JA[:20]
    assert c.documents("ja", "valid") == JA[20:]
    assert c.text_bytes("ja") == "\n\n".join(JA[:20]).encode("utf-8")
    assert len(c.documents("en")) + len(c.documents("en", "valid")) == 3


def test_small_source_valid_is_about_ten_percent(tmp_path: Path) -> None:
    c = Corpus.open(_make(tmp_path))
    total = sum(len(d.encode()) + 2 for d in DE)
    valid = sum(len(d.encode()) + 2 for d in c.documents("de", "valid"))
    assert 0.10 * total <= valid < 0.10 * total + 70  # one document (≤ 66 bytes) past the goal


def test_carve_validation_large_source_targets_64k_and_is_deterministic() -> None:
    docs = [f"document {i} " + "x" * (500 + i % 300) for i in range(2000)]
    train, valid = carve_validation(docs)
    vb = sum(len(d) + 2 for d in valid)
    assert 65536 <= vb < 65536 + 900
    assert carve_validation(docs) == (train, valid)
    assert carve_validation(docs, seed=1)[1] != valid
    # order kept in both splits
    assert train == [d for d in docs if d in set(train)]
    # appending documents keeps most of the validation split
    _, valid2 = carve_validation([*docs, *(f"new {i} " + "y" * 600 for i in range(200))])
    assert len(set(valid) & set(valid2)) >= 0.8 * len(valid)


def test_carve_validation_keeps_one_train_document() -> None:
    assert carve_validation(["only one"]) == (["only one"], [])
    train, valid = carve_validation(["a" * 10, "b" * 10])
    assert len(train) == 1 and len(valid) == 1


def test_split_documents_blank_lines() -> None:
    text = "\ufeffdoc one\nline two\r\n\r\ndoc two\n \t\n\n\ndoc three\n"
    assert split_documents(text) == ["doc one\nline two", "doc two", "doc three"]


def test_stats_unique_tokens_and_csv(tmp_path: Path) -> None:
    c = Corpus.open(_make(tmp_path))
    stats = {s.source: s for s in c.stats()}
    assert stats["ja"].bytes == len("\n\n".join(JA[:20]).encode())
    assert stats["ja"].documents == 20
    assert stats["ja"].valid_bytes == len("\n\n".join(JA[20:]).encode())
    assert stats["ja"].script == "Han+Kana"
    assert stats["ru"].script == "Cyrillic"
    assert stats["de"].script == "Latin"
    assert all(s.unique_tokens == s.bytes for s in stats.values())
    assert c.unique_tokens() == {s: stats[s].bytes for s in c.sources}
    out = write_unique_tokens(c, tmp_path / "caps" / "tokens.csv")
    rows = list(csv.DictReader(out.open()))
    assert [r["source"] for r in rows] == c.sources
    assert {r["source"]: int(r["tokens"]) for r in rows} == c.unique_tokens()


def test_cli_stats_json_and_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _make(tmp_path)
    caps = tmp_path / "caps.csv"
    assert main(["corpus", "stats", str(root), "--json", "--unique-tokens-out", str(caps)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["source"] for s in data["sources"]] == ["de", "en", "ja", "ru"]
    assert caps.read_text().splitlines()[0] == "source,tokens"
    assert main(["corpus", "stats", str(root)]) == 0
    out = capsys.readouterr().out
    assert "Cyrillic" in out and "unique tokens" in out


def test_detect_script() -> None:
    assert detect_script("Ελληνικό κείμενο με ls -la") == "Greek"
    assert detect_script("한국어 텍스트 입니다 with some ls -la options") == "Hangul"
    assert detect_script("这是中文文本，使用 ls 命令") == "Han"
    assert detect_script("यह हिंदी पाठ है") == "Devanagari"
    assert detect_script("هذا نص عربي") == "Arabic"
    assert detect_script("use --verbose to print more, ß ü") == "Latin"
    assert detect_script("1234 !!") == "unknown"


# ------------------------------------------------------------------------------ errors
def _err(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("climb: error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_missing_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _err(capsys, ["corpus", "stats", str(tmp_path / "nope")])
    assert "does not exist" in err and "nope" in err


def test_no_sources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "readme.md").write_text("x")
    assert "has no sources" in _err(capsys, ["corpus", "stats", str(tmp_path)])


def test_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "de.txt").write_text("\n \n\n")
    err = _err(capsys, ["corpus", "stats", str(tmp_path)])
    assert "de.txt" in err and "empty" in err


@pytest.mark.parametrize("name", ["de.txt.xz", "de.jsonl.gz"])
def test_corrupt_compressed(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    good = lzma.compress(b"x" * 1000) if name.endswith(".xz") else gzip.compress(b"x" * 1000)
    (tmp_path / name).write_bytes(good[: len(good) // 2])
    err = _err(capsys, ["corpus", "stats", str(tmp_path)])
    assert name in err and "corrupt compressed file" in err


def test_jsonl_without_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "fr.jsonl").write_text('{"text": "ok"}\n{"body": "no text"}\n')
    err = _err(capsys, ["corpus", "stats", str(tmp_path)])
    assert "fr.jsonl" in err and "line 2" in err and "'text'" in err


def test_invalid_json_and_non_string(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text("{not json\n")
    with pytest.raises(ClimbError, match=r"a\.jsonl: line 1: invalid JSON"):
        read_documents(tmp_path / "a.jsonl")
    (tmp_path / "b.jsonl").write_text('{"text": 3}\n')
    with pytest.raises(ClimbError, match=r"b\.jsonl: line 1: 'text' is not a string"):
        read_documents(tmp_path / "b.jsonl")


def test_undecodable_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pl.txt").write_bytes("zażółć\n\ngęślą".encode("iso8859_2"))
    err = _err(capsys, ["corpus", "stats", str(tmp_path)])
    assert "pl.txt" in err and "not UTF-8" in err and "line 1" in err


def test_parquet_errors(tmp_path: Path) -> None:
    buf = pa.BufferOutputStream()
    pq.write_table(pa.table({"body": ["x"]}), buf)
    (tmp_path / "a.parquet").write_bytes(buf.getvalue().to_pybytes())
    with pytest.raises(ClimbError, match=r"a\.parquet: no 'text' column"):
        read_documents(tmp_path / "a.parquet")
    (tmp_path / "b.parquet").write_bytes(b"PAR1 garbage")
    with pytest.raises(ClimbError, match=r"b\.parquet: not a readable Parquet file"):
        read_documents(tmp_path / "b.parquet")


def test_missing_source(tmp_path: Path) -> None:
    c = Corpus.open(_make(tmp_path))
    with pytest.raises(ClimbError, match=r"no source 'xx' \(it has: de, en, ja, ru\)"):
        c.check_sources(["de", "xx"])
    with pytest.raises(ClimbError, match="no source 'xx'"):
        c.documents("xx")
    with pytest.raises(ClimbError, match="split 'test'"):
        c.documents("de", "test")


def test_layout_errors(tmp_path: Path) -> None:
    (tmp_path / "de.txt").write_text("a\n\nb")
    (tmp_path / "de").mkdir()
    (tmp_path / "de" / "train.txt").write_text("a\n\nb")
    with pytest.raises(ClimbError, match="source 'de' is given twice"):
        Corpus.open(tmp_path)
    (tmp_path / "de.txt").unlink()
    (tmp_path / "fr").mkdir()
    (tmp_path / "fr" / "valid.txt").write_text("a")
    with pytest.raises(ClimbError, match=r"fr: source folder has no train"):
        Corpus.open(tmp_path)
    (tmp_path / "fr" / "valid.txt").unlink()
    (tmp_path / "fr").rmdir()
    (tmp_path / "one.txt").write_text("just one document")
    c = Corpus.open(tmp_path)
    with pytest.raises(ClimbError, match=r"one\.txt: only one document"):
        c.documents("one")
    with pytest.raises(ClimbError, match="not a directory"):
        Corpus.open(tmp_path / "one.txt")


def test_folder_of_shards_named_anything(tmp_path: Path) -> None:
    """A source folder without ``train…`` shards takes every other corpus file as its training
    split, in name order (shards as downloaded: ``part-000.jsonl.gz``, ``00001.parquet`` …); with
    ``train…`` shards the others are ignored, with a warning that says so."""
    de = tmp_path / "de"
    de.mkdir()
    docs = [f"Dokument {i} " + "x" * (50 + i) for i in range(40)]
    with gzip.open(de / "part-000.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps({"text": d}) + "\n" for d in docs[:20])
    pq.write_table(pa.table({"text": docs[20:30]}), de / "part-001.parquet")
    (de / "part-002.txt").write_text("\n\n".join(docs[30:]))
    (de / "README.txt").write_text("not a shard")
    (de / "notes.md").write_text("not a corpus file")
    c = Corpus.open(tmp_path)
    assert c.sources == ["de"]
    assert sorted(c.documents("de", "train") + c.documents("de", "valid")) == sorted(docs)
    (de / "valid.txt").write_text("Ein Validierungsdokument")  # given validation: not carved
    assert Corpus.open(tmp_path).documents("de", "valid") == ["Ein Validierungsdokument"]
    assert sorted(Corpus.open(tmp_path).documents("de", "train")) == sorted(docs)
    (de / "train-000.txt").write_text("nur das")
    with pytest.warns(
        ClimbWarning,
        match=r"3 corpus file\(s\) not named train…/valid… are ignored \(e\.g\. part-000\.jsonl\.gz\)",
    ):
        c = Corpus.open(tmp_path)
    assert c.documents("de", "train") == ["nur das"]


def test_carve_validation_skips_documents_that_overshoot() -> None:
    docs = [f"big {i} " + "B" * 60_000 for i in range(5)] + [
        f"small {i} " + "s" * 1000 for i in range(400)
    ]
    _, valid = carve_validation(docs)
    vb = sum(len(d) + 2 for d in valid)
    assert 65536 <= vb <= 1.25 * 65536
