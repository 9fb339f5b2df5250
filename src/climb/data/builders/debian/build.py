"""The Debian build itself: per language, gather the packages' rendered text (cached), keep
target-language paragraphs once, cap, split and write; then the manifest."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import lzma
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from climb.data.builders.debian.apt import deb_field, download, extract, package_documents
from climb.data.builders.debian.registry import PACKAGES, Package
from climb.data.builders.debian.text import (
    MIN_LETTERS,
    count_letters,
    decode_text,
    identify_language,
    licence_names,
)
from climb.data.corpus import validation_indices
from climb.errors import ClimbError

CAP_SEED = 0
"""Seed of the hash that picks documents when a language exceeds its cap."""
XZ_PRESET = 9

_TOOLS_HINT = "build-debian needs a Debian machine with apt-get, dpkg-deb and groff (apt-get install groff-base)"  # fmt: skip

Status = Callable[[str], Callable[[], None]]
"""``status(description)`` shows what is being done and returns a ``tick()`` for its progress."""


@dataclass
class LanguageReport:
    """What the build kept for one language."""

    language: str
    packages: list[str] = field(default_factory=list)
    paragraphs_seen: int = 0
    paragraphs_short: int = 0
    paragraphs_other_language: int = 0
    paragraphs_duplicate: int = 0
    documents_kept: int = 0
    bytes_before_cap: int = 0
    documents: dict[str, int] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    bytes_by_package: dict[str, int] = field(default_factory=dict)


def _hash_rank(text: str, seed: int) -> bytes:
    return hashlib.blake2b(f"{seed}:{text}".encode(), digest_size=8).digest()


def cap_documents(
    docs: list[dict[str, str]], max_bytes: int | None, seed: int = CAP_SEED
) -> list[dict[str, str]]:
    """Whole documents in seeded-hash order until ``max_bytes``; original order kept."""
    if max_bytes is None:
        return docs
    sizes = [len(d["text"].encode("utf-8")) + 2 for d in docs]
    if sum(sizes) <= max_bytes:
        return docs
    order = sorted(range(len(docs)), key=lambda i: (_hash_rank(docs[i]["text"], seed), i))
    chosen: set[int] = set()
    total = 0
    for i in order:
        if total + sizes[i] > max_bytes:
            continue
        chosen.add(i)
        total += sizes[i]
    return [d for i, d in enumerate(docs) if i in chosen]


def _write_jsonl_xz(path: Path, docs: list[dict[str, str]]) -> None:
    payload = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs).encode("utf-8")
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(lzma.compress(payload, preset=XZ_PRESET))
    tmp.replace(path)


def _cached_package_text(
    pkg: Package, lang: str, cache: Path, jobs: int, status: Status
) -> tuple[list[tuple[str, list[str]]], dict[str, Any]]:
    """Rendered ``(doc_id, paragraphs)`` of a (package, language) and the package's metadata,
    from ``cache`` or built now (download, extract, render) and cached."""
    cached = cache / "text" / f"{pkg.name}.{lang}.jsonl.gz"
    meta_path = cache / "meta" / f"{pkg.name}.json"
    if cached.exists() and meta_path.exists():
        status(f"{lang}: {pkg.name} (cached)")
        docs: list[tuple[str, list[str]]] = []
        with gzip.open(cached, "rt", encoding="utf-8") as fh:
            for line in fh:
                obj = json.loads(line)
                docs.append((obj["id"], obj["paragraphs"]))
        return docs, json.loads(meta_path.read_text(encoding="utf-8"))
    status(f"{lang}: {pkg.name} (download)")
    deb = download(pkg.name, cache / "debs")
    with tempfile.TemporaryDirectory(dir=cache, prefix="x-") as tmp:
        root = extract(deb, Path(tmp))
        cp = root / "usr/share/doc" / pkg.name / "copyright"
        copyright_text = decode_text(cp.read_bytes()) if cp.is_file() else ""
        meta = {"package": pkg.name, "version": deb_field(deb, "Version"), "deb": deb.name,
                "licenses": licence_names(copyright_text), "copyright": copyright_text}  # fmt: skip
        tick = status(f"{lang}: {pkg.name}")
        docs = list(package_documents(pkg, root, jobs=jobs, tick=tick))
    for d in (cached.parent, meta_path.parent):
        d.mkdir(parents=True, exist_ok=True)
    meta_path.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    part = cached.with_name(cached.name + ".part")
    with gzip.open(part, "wt", encoding="utf-8", compresslevel=3) as fh:
        for doc_id, paras in docs:
            fh.write(json.dumps({"id": doc_id, "paragraphs": paras}, ensure_ascii=False) + "\n")
    part.replace(cached)
    return docs, meta


def _cached_labels(
    pkg: Package, lang: str, cache: Path, docs: list[tuple[str, list[str]]]
) -> list[list[str]]:
    """py3langid language of every paragraph (``""`` under :data:`MIN_LETTERS` letters), cached
    in ``CACHE/langid/`` next to the rendered text."""
    path = cache / "langid" / f"{pkg.name}.{lang}.json.gz"
    if path.exists():
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            labels: list[list[str]] = json.load(fh)
        if [len(x) for x in labels] == [len(p) for _, p in docs]:
            return labels
    labels = [
        [identify_language(p) if count_letters(p) >= MIN_LETTERS else "" for p in paras]
        for _, paras in docs
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    with gzip.open(part, "wt", encoding="utf-8", compresslevel=3) as fh:
        json.dump(labels, fh)
    part.replace(path)
    return labels


def build_debian_corpus(
    out: str | Path,
    languages: Iterable[str],
    *,
    max_mb_per_language: float | None = None,
    cache_dir: str | Path | None = None,
    jobs: int = 1,
    command: str | None = None,
    progress: bool = True,
    registry: dict[str, list[Package]] | None = None,
) -> dict[str, Any]:
    """Build (or rebuild) a corpus in ``out`` from Debian documentation packages.

    Args:
        out: output corpus directory (``out/<lang>/{train,valid}.jsonl.xz``, ``MANIFEST.json``).
        languages: language codes, keys of :data:`PACKAGES`.
        max_mb_per_language: cap on a language's bytes (train + valid, 10^6 bytes); ``None``: all.
        cache_dir: downloaded ``.deb`` files and rendered text (default ``out/.cache``); a rerun
            after an interruption resumes from it.
        jobs: parallel groff processes for man pages.
        command: the command line recorded in the manifest.
        progress: show a rich progress display on stderr.
        registry: language -> packages to use instead of :data:`PACKAGES` (e.g. one small
            package, for a quick check).

    Returns the manifest (also written to ``out/MANIFEST.json``).
    """
    packages = PACKAGES if registry is None else registry
    langs = _check_options(languages, packages, max_mb_per_language)
    out = Path(out)
    cache = Path(cache_dir) if cache_dir is not None else out / ".cache"
    for d in (out, cache):
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ClimbError(f"{d}: cannot create the folder ({exc.strerror or exc})") from None
    cap = None if max_mb_per_language is None else int(max_mb_per_language * 1_000_000)

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True, quiet=not progress)
    prog = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)  # fmt: skip
    reports: dict[str, LanguageReport] = {}
    metas: dict[str, dict[str, Any]] = {}
    _remove_stale_languages(out, langs)
    with prog:
        overall = prog.add_task("packages", total=sum(len(packages[lang]) for lang in langs))
        for lang in langs:
            rep = LanguageReport(lang)
            kept: list[dict[str, str]] = []
            seen: set[bytes] = set()
            for pkg in packages[lang]:
                sub = prog.add_task(f"  {lang}: {pkg.name}", total=None)

                def status(desc: str, _sub: Any = sub) -> Callable[[], None]:
                    prog.update(_sub, description=f"  {desc}")
                    return lambda: prog.advance(_sub)

                docs, metas[pkg.name] = _cached_package_text(pkg, lang, cache, jobs, status)
                labels = _cached_labels(pkg, lang, cache, docs)
                kept += _keep_documents(pkg, lang, docs, labels, seen, rep)
                prog.update(sub, visible=False)
                prog.advance(overall)
            reports[lang] = _write_language(out / lang, rep, kept, cap)
            console.log(f"{lang}: {rep.bytes['train'] / 1e6:.2f} MB train, {rep.bytes['valid'] / 1e3:.0f} kB valid, {rep.documents['train']} documents")  # fmt: skip
    return _write_manifest(out, langs, reports, metas, max_mb_per_language, command)


def _check_options(
    languages: Iterable[str], packages: dict[str, list[Package]], max_mb: float | None
) -> list[str]:
    """The distinct language codes asked for, after checking the options and the tools."""
    langs = list(dict.fromkeys(lang.strip() for lang in languages if lang.strip()))
    if not langs:
        raise ClimbError("languages: give at least one language code, e.g. de,fr,ja")
    unknown = [lang for lang in langs if lang not in packages]
    if unknown:
        raise ClimbError(
            f"languages: unknown {', '.join(unknown)}; known: {', '.join(sorted(packages))}"
        )
    if max_mb is not None and max_mb <= 0:
        raise ClimbError(f"max_mb_per_language must be > 0, got {max_mb:g}")
    for tool in ("apt-get", "dpkg-deb", "groff"):
        if shutil.which(tool) is None:
            raise ClimbError(f"'{tool}' not found; {_TOOLS_HINT}")
    return langs


def _keep_documents(
    pkg: Package,
    lang: str,
    docs: list[tuple[str, list[str]]],
    labels: list[list[str]],
    seen: set[bytes],
    rep: LanguageReport,
) -> list[dict[str, str]]:
    """Documents of one package with only their new paragraphs in ``lang`` (≥ :data:`MIN_LETTERS`
    letters; a paragraph already in ``seen`` is a duplicate); counts go to ``rep``."""
    kept: list[dict[str, str]] = []
    pkg_bytes = 0
    for (doc_id, paras), doc_labels in zip(docs, labels):
        keep: list[str] = []
        for p, label in zip(paras, doc_labels):
            rep.paragraphs_seen += 1
            if not label:
                rep.paragraphs_short += 1
                continue
            if label != lang:
                rep.paragraphs_other_language += 1
                continue
            h = hashlib.blake2b(p.encode(), digest_size=12).digest()
            if h in seen:
                rep.paragraphs_duplicate += 1
                continue
            seen.add(h)
            keep.append(p)
        if keep:
            text = "\n\n".join(keep)
            kept.append({"text": text, "doc": f"{pkg.name}:{doc_id}"})
            pkg_bytes += len(text.encode("utf-8")) + 2
    rep.packages.append(pkg.name)
    rep.bytes_by_package[pkg.name] = pkg_bytes
    return kept


def _write_language(
    folder: Path, rep: LanguageReport, kept: list[dict[str, str]], cap: int | None
) -> LanguageReport:
    """Cap, carve the validation split and write ``folder/{train,valid}.jsonl.xz``."""
    rep.documents_kept = len(kept)
    rep.bytes_before_cap = sum(len(d["text"].encode("utf-8")) + 2 for d in kept)
    selected = cap_documents(kept, cap)
    in_valid = validation_indices([d["text"] for d in selected])
    train = [d for i, d in enumerate(selected) if i not in in_valid]
    valid = [d for i, d in enumerate(selected) if i in in_valid]
    if not train:
        raise ClimbError(f"language '{rep.language}': no text survived cleaning; drop it from languages")  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    _write_jsonl_xz(folder / "train.jsonl.xz", train)
    if valid:
        _write_jsonl_xz(folder / "valid.jsonl.xz", valid)
    rep.documents = {"train": len(train), "valid": len(valid)}
    rep.bytes = {s: len("\n\n".join(x["text"] for x in docs_).encode("utf-8")) for s, docs_ in (("train", train), ("valid", valid))}  # fmt: skip
    return rep


def _remove_stale_languages(out: Path, langs: list[str]) -> None:
    """Delete the split files of languages an earlier build wrote (per its ``MANIFEST.json``) but
    this one does not make, so ``out`` holds exactly this build's languages."""
    path = out / "MANIFEST.json"
    if not path.is_file():
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8")).get("languages", {})
    except (OSError, ValueError):
        return
    for lang in previous:
        if lang in langs or not isinstance(lang, str) or "/" in lang or lang.startswith("."):
            continue
        for split in ("train", "valid"):
            (out / lang / f"{split}.jsonl.xz").unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            (out / lang).rmdir()


def _write_manifest(
    out: Path,
    langs: list[str],
    reports: dict[str, LanguageReport],
    metas: dict[str, dict[str, Any]],
    max_mb: float | None,
    command: str | None,
) -> dict[str, Any]:
    lic_dir = out / "_licenses"
    if lic_dir.is_dir():
        for old in lic_dir.glob("*.copyright.xz"):
            old.unlink()
    lic_dir.mkdir(exist_ok=True)
    # packages with the same copyright file (all manpages-l10n, all LibreOffice help) share one
    licence_file: dict[str, str] = {}
    by_text: dict[str, str] = {}
    for name, meta in sorted(metas.items()):
        text = meta["copyright"]
        if text not in by_text:
            by_text[text] = f"_licenses/{name}.copyright.xz"
            data = lzma.compress(text.encode("utf-8"), preset=XZ_PRESET)
            (out / by_text[text]).write_bytes(data)
        licence_file[name] = by_text[text]
    manifest: dict[str, Any] = {
        "format": "climb-corpus/1",
        "description": "Multilingual text from Debian packages of free documentation (translated "
        "man pages, LibreOffice help, Debian reference, Debian handbook, installation guide, "
        "fortunes), cleaned of markup, paragraphs language-identified with py3langid, exact "
        "duplicate paragraphs dropped. Mostly technical text; many documents are translations "
        "of the same English originals.",
        "command": command,
        "debian": _debian_release(),
        "tokens": "bytes of the UTF-8 training split (climb's default tokenizer is byte-level)",
        "max_mb_per_language": max_mb,
        "split": {
            "valid": "whole documents by seeded hash until 64 KiB or 10% of a small language",
            "seed": 0,
        },
        "files": "<lang>/train.jsonl.xz, <lang>/valid.jsonl.xz: one JSON object per line, "
        "{'text': document, 'doc': '<package>:<path>'}; documents are paragraphs joined by blank lines",
        "languages": {
            lang: {
                "packages": r.packages,
                "documents": r.documents,
                "bytes": r.bytes,
                "bytes_before_cap": r.bytes_before_cap,
                "bytes_by_package_before_cap": r.bytes_by_package,
                "paragraphs": {
                    "seen": r.paragraphs_seen,
                    "too_short": r.paragraphs_short,
                    "other_language": r.paragraphs_other_language,
                    "duplicate": r.paragraphs_duplicate,
                },
            }
            for lang, r in reports.items()
        },
        "packages": {
            name: {
                "version": m["version"],
                "licenses": m["licenses"],
                "copyright": licence_file[name],
                "copyright_source": f"/usr/share/doc/{name}/copyright",
            }
            for name, m in sorted(metas.items())
        },
    }
    (out / "MANIFEST.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    return manifest


def _debian_release() -> str:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return "unknown"
    m = re.search(r'^PRETTY_NAME="?([^"\n]*)', text, re.M)
    return m.group(1) if m else "unknown"


def default_command(argv: list[str] | None = None) -> str:
    """The command line as recorded in the manifest."""
    args = sys.argv[1:] if argv is None else argv
    return "climb " + " ".join(args)
