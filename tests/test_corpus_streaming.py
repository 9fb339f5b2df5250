"""Corpora at scale: sharded, compressed, remote (fsspec) and Hugging Face sources read by
streaming; token counts with the user's tokenizer; carving in one pass; bad input."""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from climb.cli import main
from climb.data.corpus import Corpus, carve_validation
from climb.data.tokenizer import ByteTokenizer, HFTokenizer, load_tokenizer
from climb.errors import ClimbError

zstandard = pytest.importorskip("zstandard")
tokenizers = pytest.importorskip("tokenizers")

WORDS = {
    "en": [
        "the",
        "corpus",
        "holds",
        "many",
        "documents",
        "about",
        "languages",
        "and",
        "models",
        "of",
        "text",
    ],
    "de": [
        "der",
        "Korpus",
        "enthält",
        "viele",
        "Dokumente",
        "über",
        "Sprachen",
        "und",
        "Modelle",
        "für",
        "Straßen",
    ],
    "ru": ["корпус", "содержит", "много", "документов", "о", "языках", "и", "моделях", "текста"],
}


def _docs(lang: str, n: int, rng: random.Random, max_words: int = 120) -> list[str]:
    words = WORDS[lang]
    return [
        f"{lang} {i}: " + " ".join(rng.choice(words) for _ in range(rng.randint(3, max_words)))
        for i in range(n)
    ]


def _jsonl_zst(path: Path, docs: list[str], field: str = "text") -> None:
    data = "".join(json.dumps({field: d}, ensure_ascii=False) + "\n" for d in docs).encode()
    path.write_bytes(zstandard.ZstdCompressor().compress(data))


def _parquet(path: Path, docs: list[str], row_group_size: int = 100) -> None:
    pq.write_table(pa.table({"text": docs, "id": list(range(len(docs)))}), path, row_group_size=row_group_size)  # fmt: skip


def make_sharded(root: Path, docs_per_shard: int, shards: int, seed: int = 0) -> Path:
    """en: .jsonl.zst shards; de: .parquet shards; ru: .txt.gz shards + a valid .jsonl.zst."""
    rng = random.Random(seed)
    for lang in ("en", "de", "ru"):
        (root / lang).mkdir(parents=True, exist_ok=True)
    for k in range(shards):
        _jsonl_zst(root / "en" / f"train-{k:05d}.jsonl.zst", _docs("en", docs_per_shard, rng))
        _parquet(root / "de" / f"train-{k:05d}.parquet", _docs("de", docs_per_shard, rng))
        text = "\n\n".join(_docs("ru", docs_per_shard, rng)) + "\n"
        (root / "ru" / f"train-{k:05d}.txt.gz").write_bytes(gzip.compress(text.encode()))
    _jsonl_zst(root / "ru" / "valid.jsonl.zst", _docs("ru", 40, rng))
    return root


def make_tokenizer(path: Path, vocab: int = 400) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    rng = random.Random(1)
    tok.train_from_iterator([d for lang in WORDS for d in _docs(lang, 200, rng)], trainer=trainer)
    tok.save(str(path))
    return path


# --------------------------------------------------------------------- the plain Python loop
def _plain_documents(root: Path, lang: str, split: str) -> list[str]:
    """Read the shards without climb: zstandard + json, pyarrow, gzip + blank lines."""
    docs: list[str] = []
    for f in sorted((root / lang).iterdir()):
        if not f.name.startswith(split):
            continue
        if f.name.endswith(".jsonl.zst"):
            text = zstandard.ZstdDecompressor().decompressobj().decompress(f.read_bytes())
            docs += [json.loads(line)["text"] for line in text.decode().splitlines()]
        elif f.name.endswith(".parquet"):
            docs += pq.read_table(f).column("text").to_pylist()
        else:
            docs += [d for d in gzip.decompress(f.read_bytes()).decode().split("\n\n") if d.strip()]
    return [d.strip() for d in docs]


def _plain_counts(root: Path, tok_path: Path) -> dict[str, dict[str, int]]:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tok_path))
    sep = len(tok.encode("\n\n", add_special_tokens=False).ids)
    out = {}
    for lang in ("de", "en", "ru"):
        train = _plain_documents(root, lang, "train")
        valid = _plain_documents(root, lang, "valid")
        if not valid:
            train, valid = carve_validation(train)
        tokens = sum(len(tok.encode(d, add_special_tokens=False).ids) for d in train)
        out[lang] = {
            "documents": len(train),
            "unique_tokens": tokens + sep * (len(train) - 1),
            "bytes": len("\n\n".join(train).encode()),
            "valid_bytes": len("\n\n".join(valid).encode()),
        }
    return out


@pytest.fixture(scope="module")
def tok_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tokenizer(tmp_path_factory.mktemp("tok") / "tokenizer.json")


def test_cli_stats_with_tokenizer_equals_plain_loop(
    tmp_path: Path, tok_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_sharded(tmp_path / "corp", docs_per_shard=150, shards=3)
    expected = _plain_counts(root, tok_path)
    for jobs in ("1", "2"):
        args = ["corpus", "stats", str(root), "--tokenizer", str(tok_path), "--json", "--jobs", jobs]  # fmt: skip
        assert main(args) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["tokenizer"] == str(tok_path)
        got = {
            s["source"]: {k: s[k] for k in ("documents", "unique_tokens", "bytes", "valid_bytes")}
            for s in out["sources"]
        }
        assert got == expected, jobs
    # sanity: the tokenizer compresses, so counts differ from bytes
    assert expected["en"]["unique_tokens"] < 0.5 * expected["en"]["bytes"]


def test_progress_bar_counts_shards(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_sharded(tmp_path / "corp", docs_per_shard=20, shards=2)
    Corpus.open(root).stats(progress=True)
    err = capsys.readouterr().err
    assert "counting shards" in err and "7/7" in err  # 2 shards × 3 sources + ru's valid shard


def test_streaming_carve_equals_in_memory_carve(tmp_path: Path) -> None:
    """Large enough that the one-pass carving prunes its candidates (> 640 KiB), with documents
    too big for the split, over several shards of different formats."""
    rng = random.Random(3)
    docs = _docs("en", 1500, rng, max_words=160)
    docs[10] = "huge " + "x" * 90_000  # never fits the split
    docs[500] = "big " + "y" * 30_000
    src = tmp_path / "c" / "en"
    src.mkdir(parents=True)
    _jsonl_zst(src / "train-0.jsonl.zst", docs[:600])
    _parquet(src / "train-1.parquet", docs[600:1100], row_group_size=64)
    (src / "train-2.txt").write_text("\n\n".join(docs[1100:]))
    c = Corpus.open(tmp_path / "c")
    (st,) = c.stats()
    train, valid = carve_validation(docs)
    assert sum(len(d) for d in docs) > 10 * 65536
    assert st.documents == len(train) and st.valid_bytes == len("\n\n".join(valid).encode())
    assert st.unique_tokens == st.bytes == len("\n\n".join(train).encode())
    assert list(c.iter_documents("en", "valid")) == valid == c.documents("en", "valid")
    assert list(c.iter_documents("en", "train")) == train == c.documents("en", "train")


def test_txt_reader_matches_blank_line_rule(tmp_path: Path) -> None:
    from climb.data.corpus import read_documents, split_documents

    text = "\ufeffa\r\nb\r\n\r\n  \t\n\nc\rd\r\re\n \f \nf\n\n\n"
    (tmp_path / "x.txt").write_text(text, newline="")
    assert read_documents(tmp_path / "x.txt") == split_documents(text) == ["a\nb", "c\nd", "e\n \f \nf"]  # fmt: skip


# --------------------------------------------------------------------- declaring sources
def test_spec_file_globs_fsspec_urls_and_fields(tmp_path: Path) -> None:
    import fsspec

    rng = random.Random(5)
    data = tmp_path / "data"
    (data / "en").mkdir(parents=True)
    en = _docs("en", 60, rng)
    for k in range(3):
        _jsonl_zst(data / "en" / f"part-{k}.jsonl.zst", en[k * 20 : (k + 1) * 20], field="body")
    de = _docs("de", 30, rng)
    (data / "de.data.gz").write_bytes(gzip.compress("\n\n".join(de).encode()))
    ru = _docs("ru", 25, rng)
    mem = fsspec.filesystem("memory")
    mem.pipe("/climb-test/ru/a.jsonl", "".join(json.dumps({"text": d}) + "\n" for d in ru[:20]).encode())  # fmt: skip
    mem.pipe("/climb-test/ru/v.jsonl", "".join(json.dumps({"text": d}) + "\n" for d in ru[20:]).encode())  # fmt: skip
    spec = {
        "sources": {
            "en": {"paths": "data/en/part-*.jsonl.zst", "text_field": "body"},
            "de": {"paths": [f"file://{data}/de.data.gz"], "format": "txt"},
            "ru": {"paths": "memory://climb-test/ru/a.jsonl", "valid": "memory://climb-test/ru/v.jsonl"},
        }
    }  # fmt: skip
    (tmp_path / "corpus.yaml").write_text(yaml.safe_dump(spec))
    for path in (tmp_path / "corpus.yaml", tmp_path):  # the spec, or a folder holding it
        c = Corpus.open(path)
        assert c.sources == ["de", "en", "ru"]
        assert c.documents("ru") == ru[:20] and c.documents("ru", "valid") == ru[20:]
        assert sorted(c.documents("en") + c.documents("en", "valid")) == sorted(en)
        assert c.documents("de") == carve_validation(de)[0]
        assert c.unique_tokens()["ru"] == len("\n\n".join(ru[:20]).encode())


def test_hugging_face_sources_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    rng = random.Random(7)
    de, en = _docs("de", 50, rng), _docs("en", 40, rng)
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict({"content": de[:40]}),
         "test": datasets.Dataset.from_dict({"content": de[40:]})}
    ).save_to_disk(str(tmp_path / "de_disk"))  # fmt: skip
    (tmp_path / "en_hf").mkdir()  # a local dataset folder for load_dataset (json builder)
    (tmp_path / "en_hf" / "train.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in en))  # fmt: skip
    spec = {
        "sources": {
            "de": {"from_disk": "de_disk", "text_field": "content", "valid_split": "test"},
            "en": {"hf": "en_hf"},
        }
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(spec))
    c = Corpus.open(tmp_path / "c.yaml")
    assert c.documents("de") == de[:40] and c.documents("de", "valid") == de[40:]
    assert c.documents("en") == carve_validation(en)[0]
    stats = {s.source: s for s in c.stats()}
    assert stats["de"].unique_tokens == len("\n\n".join(de[:40]).encode())
    assert stats["en"].documents == len(carve_validation(en)[0])


# --------------------------------------------------------------------- the user's tokenizer
def test_tokenizer_json_folder_and_transformers_folder(tmp_path: Path, tok_path: Path) -> None:
    tok = load_tokenizer(str(tok_path))
    assert isinstance(tok, HFTokenizer) and tok.vocab_size == 400
    text = "Straße жизнь 日本語 — the end\n\nnext".encode()
    ids = tok.encode(text)
    assert int(tok.token_bytes[ids].sum()) == len(text)  # exact bytes: bits/byte stay exact
    assert tok.count(["Straße жизнь"]) == [len(tok.encode("Straße жизнь".encode()))]
    assert isinstance(load_tokenizer(None), ByteTokenizer) and load_tokenizer("bytes").count(["é"]) == [2]  # fmt: skip
    folder = tmp_path / "tokfolder"
    folder.mkdir()
    (folder / "tokenizer.json").write_bytes(tok_path.read_bytes())
    assert np.array_equal(load_tokenizer(str(folder)).encode(text), ids)
    transformers = pytest.importorskip("transformers")
    from climb.data.tokenizer import _from_pretrained

    fast = transformers.PreTrainedTokenizerFast(tokenizer_file=str(tok_path), bos_token="<s>")
    fast.save_pretrained(str(tmp_path / "hf_saved"))
    via_tf = _from_pretrained(str(tmp_path / "hf_saved"))  # AutoTokenizer on a local folder
    assert via_tf.count(["Straße жизнь"]) == tok.count(["Straße жизнь"])
    assert np.array_equal(via_tf.encode(text), ids)


def test_design_counts_caps_with_the_models_tokenizer(tmp_path: Path, tok_path: Path) -> None:
    root = make_sharded(tmp_path / "corp", docs_per_shard=60, shards=2)
    out = tmp_path / "plan.yaml"
    args = ["design", "--corpus", str(root), "--tokens", "20k", "40k", "--runs", "16", "--out", str(out),
            "--model", "d32-l1-h2-c64", "--model-opt", f"tokenizer={tok_path}"]  # fmt: skip
    assert main(args) == 0
    plan = yaml.safe_load(out.read_text())
    counts = Corpus.open(root).unique_tokens(str(tok_path))
    total = sum(counts.values())
    natural = plan["design"]["natural"]
    assert natural == {s: pytest.approx(n / total, abs=1e-6) for s, n in counts.items()}
    assert plan["model"]["tokenizer"] == str(tok_path)


def test_proxy_trains_on_the_users_tokenizer(tmp_path: Path, tok_path: Path) -> None:
    pytest.importorskip("torch")
    from climb.proxy.config import ModelConfig, RunSpec, TrainConfig
    from climb.proxy.train import train_run

    root = make_sharded(tmp_path / "corp", docs_per_shard=80, shards=1)
    model = ModelConfig(d_model=32, n_layers=1, n_heads=2, context=64, tokenizer=str(tok_path))
    assert model.vocab_size == 400
    train = TrainConfig(compile=False, eval_bytes=4096, batch_size=8, lr=1e-2, checkpoints=[0.2])
    spec = RunSpec(run_id="t", mixture={"en": 0.5, "de": 0.5}, tokens=25_000, model=model, train=train)  # fmt: skip
    rows = train_run(spec, Corpus.open(root))
    assert rows[-1]["tokenizer"] == str(tok_path)
    losses = [float(r["loss.en"]) for r in rows]  # type: ignore[arg-type]
    assert losses[-1] < losses[0] and 0.1 < losses[-1] < 8.0  # bits per byte


# --------------------------------------------------------------------- bad input
def _err(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("climb: error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_bad_input_is_one_line(tmp_path: Path, tok_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    (tmp_path / "nomatch.yaml").write_text(yaml.safe_dump({"sources": {"en": {"paths": "none/*.jsonl.zst"}}}))  # fmt: skip
    err = _err(capsys, ["corpus", "stats", str(tmp_path / "nomatch.yaml")])
    assert "sources.en.paths" in err and "matches no file" in err
    root = make_sharded(tmp_path / "corp", docs_per_shard=20, shards=2)
    good = (root / "en" / "train-00001.jsonl.zst").read_bytes()
    (root / "en" / "train-00001.jsonl.zst").write_bytes(good[: len(good) // 2])
    err = _err(capsys, ["corpus", "stats", str(root), "--jobs", "2"])
    assert "train-00001.jsonl.zst" in err and "corrupt compressed file" in err
    (root / "en" / "train-00001.jsonl.zst").write_bytes(good)
    (root / "de" / "train-00000.parquet").write_bytes(b"PAR1 not parquet")
    err = _err(capsys, ["corpus", "stats", str(root)])
    assert "train-00000.parquet" in err and "not a readable Parquet file" in err
    (tmp_path / "broken.json").write_text('{"model": {"type": "BPE", "vocab": 3}}')
    err = _err(capsys, ["corpus", "stats", str(tmp_path / "corp"), "--tokenizer", str(tmp_path / "broken.json")])  # fmt: skip
    assert "broken.json" in err and "cannot load" in err
    err = _err(capsys, ["corpus", "stats", str(root), "--tokenizer", str(tmp_path / "nope.json")])
    assert "nope.json" in err and "no such file" in err
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"sources": {"en": {"paths": "x", "hf": "y"}}}))  # fmt: skip
    assert "exactly one of paths, hf, from_disk" in _err(capsys, ["corpus", "stats", str(tmp_path / "bad.yaml")])  # fmt: skip
    with pytest.raises(ClimbError, match="backend must be"):
        Corpus.open(root).stats(backend="spark")


# --------------------------------------------------------------------- scale
_RSS_SCRIPT = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)  # KiB on Linux
"""


def _peak_rss_kib(args: list[str]) -> int:
    out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, *args], check=True, capture_output=True, text=True)  # fmt: skip
    return int(out.stdout.strip())


@pytest.mark.slow
def test_stats_memory_does_not_grow_with_corpus_size(tmp_path: Path, tok_path: Path) -> None:
    """Peak RSS of `climb corpus stats --tokenizer` on corpora of N and 10N bytes (N ≈ 2 MiB,
    10N ≈ 20× the 1 MiB tokenizing buffer): holding the corpus would add ≥ 18 MiB."""
    from climb.data.counting import BUFFER_BYTES

    small = make_sharded(tmp_path / "n", docs_per_shard=800, shards=2, seed=1)
    large = make_sharded(tmp_path / "10n", docs_per_shard=800, shards=20, seed=1)

    def size(root: Path) -> int:
        return sum(len(d.encode()) for lang in ("de", "en", "ru") for d in _plain_documents(root, lang, "train"))  # fmt: skip

    n_small, n_large = size(small), size(large)
    assert n_large >= 9.5 * n_small and n_small >= 2 * BUFFER_BYTES
    cmd = [sys.executable, "-m", "climb", "corpus", "stats", "--tokenizer", str(tok_path), "--json", "--quiet"]  # fmt: skip
    # peak RSS of one process varies by a few MiB from run to run (allocator and GC timing):
    # the least of two runs per size
    rss_small = min(_peak_rss_kib([*cmd, str(small)]) for _ in range(2))
    rss_large = min(_peak_rss_kib([*cmd, str(large)]) for _ in range(2))
    grown = (rss_large - rss_small) * 1024
    print(
        f"corpus {n_small:,} B: peak RSS {rss_small:,} KiB; corpus {n_large:,} B: {rss_large:,} KiB"
    )
    # measured here: +2.8 to +8 MiB for +22.7 MB of text (holding it would add ≥ 18 MiB of str
    # plus token ids); the bound is half the added bytes, clear of that noise
    assert grown < 0.5 * (n_large - n_small), (rss_small, rss_large, n_small, n_large)


@pytest.mark.slow
def test_ray_data_backend_counts_the_same(tmp_path: Path, tok_path: Path) -> None:
    pytest.importorskip("ray.data")
    root = make_sharded(tmp_path / "corp", docs_per_shard=100, shards=2)
    local = Corpus.open(root).stats(str(tok_path))
    on_ray = Corpus.open(root).stats(str(tok_path), backend="ray", jobs=2)
    assert on_ray == local
