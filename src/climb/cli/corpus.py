"""Verbs for text corpora: ``climb corpus stats`` and ``climb corpus build-debian``."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from climb.data.corpus import Corpus, describe_cuts, write_unique_tokens
from climb.errors import ClimbError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "corpus",
        help="inspect or build text corpora (the embedded default corpus: no DIR)",
        description="Text corpora: one entry per source (language) with a train and a "
        "validation split. See docs/corpus.md for the format.",
    )
    verbs = p.add_subparsers(dest="corpus_verb", metavar="VERB")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    s = verbs.add_parser(
        "stats",
        help="documents, bytes and unique tokens (data caps) per source, by streaming",
        description="Stream every source once and print its documents, bytes and unique tokens "
        "(tokens of the training split: bytes by default, or those of --tokenizer), and "
        "optionally write the source,tokens CSV the allocator uses as data caps. Shards are "
        "counted in parallel with --jobs, or on Ray Data with --backend ray.",
    )
    s.add_argument(
        "dir",
        nargs="?",
        help="corpus directory or spec (.yaml/.json); default: the embedded corpus",
    )
    s.add_argument(
        "--tokenizer", metavar="TOK",
        help="count tokens with this tokenizer: a tokenizer.json, a tokenizer folder, a Hugging "
        "Face name, or 'bpe' / 'bpe:V' (the proxy trainer's BPE of V tokens, default 8192, trained "
        "on this corpus as a sweep trains it) (default: bytes)",
    )  # fmt: skip
    s.add_argument("--jobs", type=int, default=1, help="parallel processes (default 1)")
    s.add_argument(
        "--backend", choices=["local", "ray"], default="local",
        help="where shards are counted: local processes or Ray Data (default local)",
    )  # fmt: skip
    s.add_argument("--ray-address", help="Ray cluster to join (backend ray); default: start one")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.add_argument(
        "--unique-tokens-out", metavar="FILE", help="write the source,tokens CSV (data caps) here"
    )
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=run_stats)

    b = verbs.add_parser(
        "build-debian",
        help="build a corpus from Debian documentation packages (uses apt-get)",
        description="Download Debian documentation packages (apt-get download), render and "
        "clean their text, language-identify each paragraph, dedupe and split. Downloads and "
        "rendered text are cached (default OUT/.cache): an interrupted build resumes.",
    )
    b.add_argument("out", help="output corpus directory")
    b.add_argument(
        "--languages", required=True, help="comma-separated language codes, e.g. de,fr,ja"
    )
    b.add_argument(
        "--max-mb-per-language", type=float, default=None, metavar="MB",
        help="cap each language at this many MB (10^6 bytes, train + valid); default: no cap",
    )  # fmt: skip
    b.add_argument(
        "--cache-dir", help="where downloads and rendered text are kept (default OUT/.cache)"
    )
    b.add_argument("--jobs", type=int, default=1, help="parallel groff processes (default 1)")
    b.add_argument("--quiet", action="store_true", help="no progress display")
    b.set_defaults(func=run_build_debian)


def run_stats(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise ClimbError(f"--jobs must be ≥ 1, got {args.jobs}")
    corpus = Corpus.open(args.dir)
    if args.tokenizer is not None and args.tokenizer.partition(":")[0] == "bpe":
        from climb.cli.parsing import proxy_tokenizer

        args.tokenizer = proxy_tokenizer(args.tokenizer, corpus).spec  # its cached tokenizer.json
    stats = corpus.stats(
        args.tokenizer,
        jobs=args.jobs,
        backend=args.backend,
        ray_address=args.ray_address,
        progress=not args.quiet and sys.stderr.isatty(),
    )
    if args.unique_tokens_out:
        write_unique_tokens(corpus, args.unique_tokens_out, args.tokenizer)
    tokenizer = stats[0].tokenizer if stats else "bytes"
    derived = corpus.derived()
    if args.json:
        sources = [s.to_dict() for s in stats]
        doc = {"root": str(corpus.root), "tokenizer": tokenizer, "sources": sources}
        print(json.dumps(doc | ({"derived": derived} if derived else {}), indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"corpus {corpus.root}", title_justify="left")
    for col in ("source", "script", "documents", "train bytes", "unique tokens", "valid bytes"):
        table.add_column(col, justify="left" if col in ("source", "script") else "right")
    for st in stats:
        table.add_row(st.source, st.script, f"{st.documents:,}", f"{st.bytes:,}", f"{st.unique_tokens:,}", f"{st.valid_bytes:,}")  # fmt: skip
    scripts = len({st.script for st in stats})
    table.add_row("total", f"{scripts} script{'s' * (scripts != 1)}", f"{sum(st.documents for st in stats):,}",
                  f"{sum(st.bytes for st in stats):,}", f"{sum(st.unique_tokens for st in stats):,}",
                  f"{sum(st.valid_bytes for st in stats):,}", style="bold")  # fmt: skip
    Console(width=max(100, 0)).print(table)
    if tokenizer == "bytes":
        print("unique tokens = bytes of the training split (byte-level tokenizer)")
    else:
        print(f"unique tokens = tokens of the training split under {tokenizer}")
    if derived:
        origin = derived.get("from")
        origin = "the embedded corpus" if origin == "embedded" else origin
        print(f"derived from {origin}; cut (the counts above are of the kept text):")
        for line in describe_cuts(derived) or ["nothing"]:
            print(f"  {line}")
    if args.unique_tokens_out:
        print(f"wrote {args.unique_tokens_out}")
    return 0


def run_build_debian(args: argparse.Namespace) -> int:
    from climb.data.builders.debian import build_debian_corpus

    if args.jobs < 1:
        raise ClimbError("--jobs must be ≥ 1")
    command = "climb corpus build-debian OUT --languages " + args.languages
    if args.max_mb_per_language is not None:
        command += f" --max-mb-per-language {args.max_mb_per_language:g}"
    manifest = build_debian_corpus(
        args.out,
        args.languages.split(","),
        max_mb_per_language=args.max_mb_per_language,
        cache_dir=args.cache_dir,
        jobs=args.jobs,
        command=command,
        progress=not args.quiet,
    )
    langs = manifest["languages"]
    total = sum(v["bytes"]["train"] + v["bytes"]["valid"] for v in langs.values())
    print(
        f"wrote {shlex.quote(str(args.out))}: {len(langs)} languages, {total / 1e6:.1f} MB of text"
    )
    return 0
