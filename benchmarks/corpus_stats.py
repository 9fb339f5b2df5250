"""`climb corpus stats` at scale: wall time, throughput and peak RSS of counting a sharded corpus
(3 sources: .jsonl.zst, .parquet, .txt.gz shards) of N and 10N bytes, with the byte tokenizer and
a byte-level BPE tokenizer.json, in one process and in two.

    python benchmarks/corpus_stats.py                 # N = 3 sources x 2 shards x 0.5 MB
    python benchmarks/corpus_stats.py --shard-mb 1 --bpe-vocab 8000

Each measurement runs the CLI in a fresh subprocess; peak RSS is the largest resident set of any
process it waited for (``RUSAGE_CHILDREN``: with ``--jobs 2``, the largest of the parent and its
workers, not their sum). The numbers depend on the machine (say which when quoting them).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

WORDS = [
    "the",
    "corpus",
    "holds",
    "documents",
    "about",
    "languages",
    "models",
    "text",
    "der",
    "Korpus",
    "enthält",
    "viele",
    "Dokumente",
    "über",
    "Sprachen",
    "Straße",
    "корпус",
    "содержит",
    "много",
    "документов",
    "о",
    "языках",
    "моделях",
    "текста",
]

_RSS = """
import resource, subprocess, sys, time
t = time.perf_counter()
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _docs(rng: random.Random, mb: float) -> list[str]:
    docs, size = [], 0
    while size < mb * 1e6:
        d = " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 300)))
        docs.append(d)
        size += len(d.encode()) + 2
    return docs


def make_corpus(root: Path, shards: int, shard_mb: float) -> int:
    """Write the corpus; returns its bytes of text."""
    rng = random.Random(0)
    total = 0
    for src in ("en", "de", "ru"):
        (root / src).mkdir(parents=True)
    for k in range(shards):
        en, de, ru = (_docs(rng, shard_mb) for _ in range(3))
        total += sum(len(d.encode()) for d in en + de + ru)
        data = "".join(json.dumps({"text": d}, ensure_ascii=False) + "\n" for d in en).encode()
        (root / "en" / f"train-{k:05d}.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(data))  # fmt: skip
        pq.write_table(pa.table({"text": de}), root / "de" / f"train-{k:05d}.parquet", row_group_size=1000)  # fmt: skip
        (root / "ru" / f"train-{k:05d}.txt.gz").write_bytes(gzip.compress("\n\n".join(ru).encode()))  # fmt: skip
    return total


def make_bpe(path: Path, vocab: int) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(_docs(random.Random(1), 2.0), trainer=trainer)
    tok.save(str(path))


def measure(corpus: Path, tokenizer: str, jobs: int) -> tuple[float, int]:
    cmd = [sys.executable, "-m", "climb", "corpus", "stats", str(corpus), "--json", "--quiet",
           "--tokenizer", tokenizer, "--jobs", str(jobs)]  # fmt: skip
    out = subprocess.run([sys.executable, "-c", _RSS, *cmd], check=True, capture_output=True, text=True)  # fmt: skip
    wall, rss = out.stdout.split()
    return float(wall), int(rss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=int, default=2, help="shards per source in the N corpus")
    ap.add_argument("--shard-mb", type=float, default=0.5, help="MB of text per shard")
    ap.add_argument("--bpe-vocab", type=int, default=2000)
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_bpe(root / "bpe.json", args.bpe_vocab)
        sizes = {}
        for name, shards in (("N", args.shards), ("10N", 10 * args.shards)):
            sizes[name] = make_corpus(root / name, shards, args.shard_mb)
        for tokenizer, label in (("bytes", "bytes"), (str(root / "bpe.json"), f"bpe-{args.bpe_vocab}")):  # fmt: skip
            for name, jobs in (("N", 1), ("10N", 1), ("10N", 2)):
                wall, rss = measure(root / name, tokenizer, jobs)
                mb = sizes[name] / 1e6
                print(
                    f"{label:9s} {name:3s} {mb:6.1f} MB  jobs {jobs}: {wall:6.1f} s "
                    f"({mb / wall:5.2f} MB/s)  peak RSS {rss / 1024:6.1f} MiB"
                )
        print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
