"""Cost of reading corpora: the embedded corpus (cold open + all splits + stats) and the reader's
throughput per format on a synthetic corpus (txt / jsonl / parquet, plain / .gz / .xz).

    python benchmarks/corpus.py            # best of 3 repeats
    python benchmarks/corpus.py --repeats 1

Prints one line per measurement; the numbers depend on the machine (say which when quoting them).
"""

from __future__ import annotations

import argparse
import gzip
import json
import lzma
import os
import platform
import random
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from climb.data.corpus import Corpus


def _best(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _embedded(repeats: int) -> None:
    def load() -> Corpus:
        c = Corpus.open()
        for s in c.sources:
            c.text_bytes(s, "train")
            c.text_bytes(s, "valid")
        return c

    t = _best(load, repeats)
    c = load()
    total = sum(len(c.text_bytes(s)) + len(c.text_bytes(s, "valid")) for s in c.sources)
    disk = sum(f.stat().st_size for f in c.root.rglob("*") if f.is_file())
    print(
        f"embedded corpus: {len(c.sources)} sources, {total / 1e6:.1f} MB text, "
        f"{disk / 2**20:.1f} MiB on disk; open + read all splits {t:.2f} s "
        f"({total / 1e6 / t:.0f} MB/s)"
    )
    ts = _best(lambda: Corpus.open().stats(), repeats)
    print(f"embedded corpus: open + stats() (read, split, script detection) {ts:.2f} s")


def _formats(repeats: int, mb: float) -> None:
    rng = random.Random(0)
    words = ["corpus", "Sprache", "язык", "言語", "mixture", "law", "données", "λόγος"]
    docs: list[str] = []
    size = 0
    while size < mb * 1e6:
        d = " ".join(rng.choice(words) for _ in range(rng.randint(20, 400)))
        docs.append(d)
        size += len(d.encode()) + 2
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        txt = "\n\n".join(docs).encode()
        jsonl = "".join(json.dumps({"text": d}, ensure_ascii=False) + "\n" for d in docs).encode()
        buf = pa.BufferOutputStream()
        pq.write_table(pa.table({"text": docs}), buf)
        raw = {"txt": txt, "jsonl": jsonl, "parquet": buf.getvalue().to_pybytes()}
        for fmt, data in raw.items():
            for comp, f in (("", lambda b: b), (".gz", gzip.compress), (".xz", lzma.compress)):
                d = root / f"{fmt}{comp}"
                d.mkdir()
                (d / f"src.{fmt}{comp}").write_bytes(f(data))
                t = _best(lambda d=d: Corpus.open(d).text_bytes("src"), repeats)
                print(
                    f"read {fmt + comp:12s} {size / 1e6:.1f} MB: {t:.3f} s ({size / 1e6 / t:.0f} MB/s)"
                )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mb", type=float, default=10.0, help="size of the synthetic source")
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}")  # fmt: skip
    _embedded(args.repeats)
    _formats(args.repeats, args.mb)


if __name__ == "__main__":
    main()
