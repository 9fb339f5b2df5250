"""Build the parallel held-out set: LibreOffice help pages aligned by file across languages.

Every ``libreoffice-help-<lang>`` Debian package holds the same help pages (``text/**/*.html``)
translated; a page is the *same content* in every language. This script downloads the packages
(``apt-get download``, no install; the corpus builder's :mod:`climb.data.builders.debian`
functions), renders each page to paragraphs exactly as ``climb corpus build-debian`` does, and
keeps the pages that are translated in **every** language of ``--languages``: at least
``--min-translated`` of the page's letters are in paragraphs that ``py3langid`` identifies as the
language (untranslated strings fall back to English in LibreOffice help). Pages are then taken in
the order of a seeded hash of their path until the English text reaches ``--target-bytes``.

Output (``OUT``, default ``benchmarks/data/parallel``): ``<lang>.jsonl`` (one page per line,
``{"doc": path, "text": ...}``, the same pages in the same order in every file) and
``MANIFEST.json`` (command, package versions, page list, bytes per language). The pages are
held-out text: ``benchmarks/evidence.py`` removes them from every language's training split.

    python benchmarks/parallel_lohelp.py [--languages en,es,pt,fr,ca,ru,zh,ja,ko]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from climb.data.builders.debian import (
    MIN_LETTERS,
    PACKAGES,
    Package,
    download,
    extract,
    identify_language,
    package_documents,
)
from climb.data.builders.debian.text import count_letters

HERE = Path(__file__).resolve().parent


def lohelp_package(lang: str) -> Package:
    found = [p for p in PACKAGES.get(lang, []) if p.kind == "lohelp"]
    if not found:
        sys.exit(f"parallel_lohelp: no LibreOffice help package for '{lang}'")
    return found[0]


def pages(pkg: Package, lang: str, cache: Path) -> dict[str, list[str]]:
    """``{page path: paragraphs}`` of one package (the corpus builder's cache is reused)."""
    cached = cache / "text" / f"{pkg.name}.{lang}.jsonl.gz"
    if not cached.exists():
        deb = download(pkg.name, cache / "debs")
        with tempfile.TemporaryDirectory(dir=cache, prefix="x-") as tmp:
            root = extract(deb, Path(tmp))
            docs = list(package_documents(pkg, root))
        cached.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(cached, "wt", encoding="utf-8") as fh:
            for doc_id, paras in docs:
                fh.write(json.dumps({"id": doc_id, "paragraphs": paras}) + "\n")
    with gzip.open(cached, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    return {r["id"]: list(r["paragraphs"]) for r in rows}


def translated_text(paragraphs: list[str], lang: str, min_translated: float) -> str | None:
    """The page's paragraphs (≥ MIN_LETTERS letters) joined, if enough of it is in ``lang``."""
    kept = [p for p in paragraphs if count_letters(p) >= MIN_LETTERS]
    if not kept:
        return None
    letters = [count_letters(p) for p in kept]
    ours = sum(n for p, n in zip(kept, letters) if identify_language(p) == lang)
    if ours < min_translated * sum(letters):
        return None
    return "\n\n".join(kept)


def version(deb_dir: Path, name: str) -> str:
    found = sorted(deb_dir.glob(f"{name}_*.deb"))
    if not found:
        return "cached text (package not in this cache)"
    out = subprocess.run(
        ["dpkg-deb", "-f", str(found[0]), "Version"], capture_output=True, text=True, check=False
    )
    return out.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--languages", default="en,es,pt,fr,ca,ru,zh,ja,ko")
    ap.add_argument("--out", type=Path, default=HERE / "data" / "parallel")
    ap.add_argument("--cache-dir", type=Path, default=Path("/tmp/climb-lohelp-cache"))
    ap.add_argument("--min-translated", type=float, default=0.9)
    ap.add_argument("--target-bytes", type=int, default=5_000, help="English bytes to keep")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    langs = [s.strip() for s in args.languages.split(",") if s.strip()]
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    by_lang: dict[str, dict[str, str]] = {}
    for lang in langs:
        pkg = lohelp_package(lang)
        raw = pages(pkg, lang, args.cache_dir)
        memo = args.cache_dir / "parallel" / f"{pkg.name}.{lang}.{args.min_translated:g}.json.gz"
        if memo.exists():  # language ID of every page is the slow part: cached
            with gzip.open(memo, "rt", encoding="utf-8") as fh:
                texts = json.load(fh)
        else:
            texts = {}
            for doc, paras in raw.items():
                t = translated_text(paras, lang, args.min_translated)
                if t is not None:
                    texts[doc] = t
            memo.parent.mkdir(parents=True, exist_ok=True)
            with gzip.open(memo, "wt", encoding="utf-8") as fh:
                json.dump(texts, fh)
        by_lang[lang] = texts
        print(f"{lang}: {len(raw)} pages, {len(texts)} translated", flush=True)
    common = sorted(set.intersection(*(set(t) for t in by_lang.values())))
    ref = langs[0]
    order = sorted(common, key=lambda d: hashlib.sha256(f"{args.seed}:{d}".encode()).hexdigest())
    chosen: list[str] = []
    total = 0
    for doc in order:
        if total >= args.target_bytes:
            break
        chosen.append(doc)
        total += len(by_lang[ref][doc].encode("utf-8"))
    chosen.sort()
    print(f"pages translated in every language: {len(common)}; kept {len(chosen)}")
    args.out.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for lang in langs:
        lines = [
            json.dumps({"doc": d, "text": by_lang[lang][d]}, ensure_ascii=False) for d in chosen
        ]
        (args.out / f"{lang}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        sizes[lang] = sum(len(by_lang[lang][d].encode("utf-8")) for d in chosen)
    manifest = {
        "description": "LibreOffice help pages aligned by file: the same pages, translated, in "
        "every language (held-out text; removed from training by benchmarks/evidence.py)",
        "command": "python benchmarks/parallel_lohelp.py " + " ".join(sys.argv[1:]),
        "languages": langs,
        "packages": {
            lang: {
                "name": lohelp_package(lang).name,
                "version": version(args.cache_dir / "debs", lohelp_package(lang).name),
            }
            for lang in langs
        },
        "licence": "MPL-2.0 (LibreOffice help)",
        "min_translated": args.min_translated,
        "pages": chosen,
        "bytes": sizes,
    }
    (args.out / "MANIFEST.json").write_text(
        json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print("bytes per language: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()))


if __name__ == "__main__":
    main()
