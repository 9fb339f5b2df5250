"""A derived corpus whose sources keep only their first training documents
(``Corpus.derive``, the mechanism of ``climb demo --cap`` and ``benchmarks/evidence.py``)."""

from __future__ import annotations

import importlib.util
import json
import lzma
import sys
from pathlib import Path

import pytest

from climb.cli import main
from climb.data.corpus import Corpus, describe_cuts, embedded_corpus_path, take_first_bytes
from climb.errors import ClimbError

ROOT = Path(__file__).resolve().parent.parent


def _docs(prefix: str, sizes: list[int]) -> list[str]:
    """Documents of exactly ``sizes`` UTF-8 bytes, each different."""
    return [f"{prefix}{i:03d}" + "x" * (n - len(prefix) - 3) for i, n in enumerate(sizes)]


@pytest.fixture
def corpus(tmp_path: Path) -> Corpus:
    root = tmp_path / "src"
    root.mkdir()
    (root / "a").mkdir()
    (root / "a" / "train.txt").write_text("\n\n".join(_docs("a", [100, 250, 40, 300, 60, 500])))
    (root / "a" / "valid.txt").write_text("\n\n".join(_docs("va", [90, 80])))
    # b has no validation file: its split is carved, and must stay the same in the derived corpus
    (root / "b.txt").write_text("\n\n".join(_docs("b", [120 + 7 * i for i in range(30)])))
    return Corpus.open(root)


def test_take_first_bytes_keeps_the_shortest_prefix_that_reaches_the_limit() -> None:
    docs = _docs("d", [10, 10, 10])  # each counted as 12 bytes with its separator
    assert list(take_first_bytes(docs, 1)) == docs[:1]
    assert list(take_first_bytes(docs, 12)) == docs[:1]  # 12 >= 12: reached by the first
    assert list(take_first_bytes(docs, 13)) == docs[:2]  # the second crosses it, kept whole
    assert list(take_first_bytes(docs, 24)) == docs[:2]
    assert list(take_first_bytes(docs, 25)) == docs
    assert list(take_first_bytes(docs, 10_000)) == docs
    read = []
    list(take_first_bytes((read.append(d) or d for d in docs), 1))
    assert len(read) == 2  # stops after the one document it needed to look past


def test_derive_keeps_exactly_the_first_documents_up_to_the_cap(
    corpus: Corpus, tmp_path: Path
) -> None:
    # a: 100+2, 250+2 → 354 ≥ 300 after two documents
    d = corpus.derive(tmp_path / "out", limits={"a": 300, "b": 1000})
    assert d.sources == ["a", "b"]
    assert d.documents("a") == corpus.documents("a")[:2]
    b = corpus.documents("b")
    kept_b = next(n for n in range(1, len(b) + 1) if sum(len(x) + 2 for x in b[:n]) >= 1000)
    assert d.documents("b") == b[:kept_b] and 0 < kept_b < len(b)
    for s in ("a", "b"):  # validation splits untouched (b's carved one included)
        assert d.documents(s, "valid") == corpus.documents(s, "valid")
    # the data caps come from the kept text
    u = d.unique_tokens()
    assert u["a"] == 100 + 250 + 2 == len(d.text_bytes("a"))
    assert u["b"] == len("\n\n".join(b[:kept_b]).encode())
    cut = d.derived()
    assert cut is not None and cut["limits"] == {"a": 300, "b": 1000}
    assert cut["cut"]["a"] == {
        "limit": 300,
        "documents": {"kept": 2, "before": 6},
        "bytes": {"kept": 352, "before": corpus.unique_tokens()["a"]},
    }
    assert describe_cuts(cut)[0] == "a: first 2 of 6 training documents (352 of 1,260 bytes; limit 300)"  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]  # no temporary left


def test_derive_without_limits_copies_the_sources(corpus: Corpus, tmp_path: Path) -> None:
    d = corpus.derive(tmp_path / "out", sources=["b"])
    assert d.sources == ["b"]
    assert d.documents("b") == corpus.documents("b")
    assert d.derived() is not None and d.derived()["cut"] == {}  # type: ignore[index]
    assert corpus.derived() is None


@pytest.mark.parametrize(
    "limits, sources, needle",
    [
        ({"zz": 100}, None, "limits: corpus"),
        ({"a": 100}, ["b"], "'a' is not one of sources (b)"),
        ({"a": 0}, None, "must be a whole number of bytes ≥ 1"),
        ({"a": 99}, None, "on 'a': its first training document alone has 100 bytes"),
        ({"a": 1_250}, None, "keeps all its 6 training documents"),
    ],
)
def test_derive_bad_limits(corpus: Corpus, tmp_path: Path, limits, sources, needle) -> None:
    corpus.derive(tmp_path / "out", limits={"a": 300})
    before = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    with pytest.raises(ClimbError) as exc:
        corpus.derive(tmp_path / "out", limits=limits, sources=sources)
    assert needle in str(exc.value) and "\n" not in str(exc.value)
    after = {p: p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert after == before  # the corpus already there is kept as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]  # no temporary left


def test_derive_never_overwrites_other_files(corpus: Corpus, tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    with pytest.raises(ClimbError, match="exists and is not a corpus that derive wrote"):
        corpus.derive(tmp_path / "mine", limits={"a": 300})
    assert (tmp_path / "mine" / "notes.txt").read_text() == "x"
    (tmp_path / "empty").mkdir()
    assert corpus.derive(tmp_path / "empty", sources=["a"]).sources == ["a"]


def test_derive_of_catalan_at_12k_keeps_the_evidence_study_documents(tmp_path: Path) -> None:
    """The evidence study's transfer scenario (benchmarks/evidence.py, its stored results):
    Catalan at 12,000 bytes keeps 10 documents, 12,088 bytes — with the rule as evidence.py
    wrote it before it used :func:`take_first_bytes`, and with both today."""
    spec = importlib.util.spec_from_file_location("evidence", ROOT / "benchmarks" / "evidence.py")
    assert spec is not None and spec.loader is not None
    ev = importlib.util.module_from_spec(spec)
    sys.modules["evidence"] = ev
    try:
        spec.loader.exec_module(ev)
        root = ev.build_corpus(ev.Scenario("t", ("ca",), caps={"ca": 12_000}), tmp_path)
    finally:
        sys.modules.pop("evidence", None)
    study = [json.loads(x) for x in (root / "ca" / "train.jsonl").read_text().splitlines()]
    # evidence.py's rule before this change, verbatim, on its input (parallel pages removed)
    held = set(json.loads((ROOT / "benchmarks/data/parallel/MANIFEST.json").read_text())["pages"])
    with lzma.open(embedded_corpus_path() / "ca" / "train.jsonl.xz", "rt") as fh:
        train = [json.loads(x) for x in fh if x.strip()]
    kept = [d for d in train if d["doc"].split(":", 1)[-1] not in held]
    out, total = [], 0
    for d in kept:
        if total >= 12_000:
            break
        out.append(d)
        total += len(d["text"].encode("utf-8")) + 2
    assert study == out
    assert len(out) == 10 and total - 2 == 12_088
    assert out[-1]["doc"] == "libreoffice-help-ca:text/sbasic/guide/translation.html"
    # the demo's derived corpus (no parallel pages removed: none is among the first documents)
    d = Corpus.open().derive(tmp_path / "demo", limits={"ca": 12_000}, sources=["ca"])
    assert d.documents("ca") == [x["text"] for x in out]
    assert d.unique_tokens()["ca"] == 12_088 == Corpus.open(root).unique_tokens()["ca"]


def test_corpus_stats_shows_the_cut(corpus: Corpus, tmp_path: Path, capsys) -> None:
    corpus.derive(tmp_path / "out", limits={"a": 300})
    assert main(["corpus", "stats", str(tmp_path / "out"), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "a: first 2 of 6 training documents (352 of 1,260 bytes; limit 300)" in printed
    assert main(["corpus", "stats", str(tmp_path / "out"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["derived"]["cut"]["a"]["documents"] == {"kept": 2, "before": 6}
    assert {s["source"]: s["unique_tokens"] for s in doc["sources"]}["a"] == 352
