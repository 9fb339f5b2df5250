"""Text corpora: one entry per source (language), with a train and a validation split.

A corpus is a directory. Each source is either

* one file ``<source>.<fmt>[.gz|.xz]`` holding the whole source; the validation split is then
  carved off deterministically (:func:`carve_validation`), or
* a folder ``<source>/`` with ``train.<fmt>[.gz|.xz]`` and optionally ``valid.<fmt>[.gz|.xz]``
  (without a ``valid`` file the validation split is carved from ``train`` as above),

where ``<fmt>`` is one of

* ``txt``: UTF-8 plain text; **documents are separated by blank lines** (a line that is empty or
  holds only spaces/tabs), so a plain-text document is one paragraph;
* ``jsonl``: one JSON object per line with a string field ``text`` (one document per line; use this
  to keep multi-paragraph documents whole);
* ``parquet``: a table with a string column ``text``.

``.gz`` and ``.xz`` compressed entries are read transparently. Hidden entries (``.cache`` …),
``MANIFEST.*`` and ``README*`` are not sources; other files with unknown extensions are ignored.

Tokens. climb's default proxy tokenizer is byte-level, so a source's "tokens" — the data cap the
allocator uses (:func:`write_unique_tokens`) — are the UTF-8 **bytes of its training split**, with
documents joined by ``"\\n\\n"`` (:meth:`Corpus.text_bytes`). With a subword tokenizer divide by its
bytes per token.

With no path, :meth:`Corpus.open` opens the corpus embedded in the package
(``climb/resources/corpus``), built from Debian documentation packages by
``climb corpus build-debian`` (see :mod:`climb.data.builders.debian` and its ``MANIFEST.json``).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import lzma
import re
import zlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from climb.errors import ClimbError

FORMATS = ("txt", "jsonl", "parquet")
COMPRESSIONS = ("", ".gz", ".xz")
SPLITS = ("train", "valid")

VALID_TARGET_BYTES = 64 * 1024
"""Carved validation split: whole documents until this many bytes …"""
VALID_SMALL_FRACTION = 0.10
"""… or this fraction of a small source's bytes, whichever is smaller."""
VALID_OVERSHOOT = 0.25
"""A document that would take the split past ``(1 + VALID_OVERSHOOT)`` times its goal is skipped."""
VALID_SEED = 0
"""Seed of the hash that orders documents for carving."""

_BLANK_LINE = re.compile(r"\n[ \t]*\n\s*")

# Unicode ranges of the scripts climb recognises (letters only; digits/punctuation are ignored).
SCRIPT_RANGES: dict[str, str] = {
    "Latin": "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff",
    "Greek": "\u0370-\u03ff\u1f00-\u1fff",
    "Cyrillic": "\u0400-\u052f",
    "Arabic": "\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff",
    "Hebrew": "\u0590-\u05ff",
    "Devanagari": "\u0900-\u097f",
    "Thai": "\u0e00-\u0e7f",
    "Hangul": "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af",
    "Kana": "\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f",
    "Han": "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff",
}
_SCRIPT_RE = {name: re.compile(f"[{ranges}]") for name, ranges in SCRIPT_RANGES.items()}


def detect_script(text: str, sample_chars: int = 400_000) -> str:
    """The writing system of ``text``, from Unicode ranges of its letters.

    Counts letters per script in (an evenly spread sample of) the text. The answer is the most
    frequent non-Latin script when it makes up at least 20% of the letters — technical text in any
    language is full of Latin command names — else ``"Latin"``. Han with at least 10% Kana among
    the CJK letters is Japanese and reported as ``"Han+Kana"``. ``"unknown"`` when there are no
    letters.
    """
    if len(text) > sample_chars:
        step = len(text) // 8
        width = sample_chars // 8
        text = "".join(text[i * step : i * step + width] for i in range(8))
    counts = {name: rx.subn("", text)[1] for name, rx in _SCRIPT_RE.items()}
    total = sum(counts.values())
    if total == 0:
        return "unknown"
    cjk = counts["Han"] + counts["Kana"]
    if cjk and counts["Kana"] >= 0.10 * cjk:
        counts["Han+Kana"] = cjk
        counts["Han"] = counts["Kana"] = 0
    non_latin = {k: v for k, v in counts.items() if k != "Latin"}
    best = max(non_latin, key=lambda k: non_latin[k])
    if non_latin[best] >= 0.20 * total:
        return best
    return "Latin"


@dataclass(frozen=True)
class SourceStats:
    """Size of one source.

    Attributes:
        source: source (language) name.
        bytes: UTF-8 bytes of the training split (documents joined by ``"\\n\\n"``).
        documents: documents in the training split.
        unique_tokens: tokens of the training split; equal to ``bytes`` under climb's byte-level
            tokenizer — the data cap of the source.
        valid_bytes: UTF-8 bytes of the validation split.
        script: writing system detected from the text (:func:`detect_script`).
    """

    source: str
    bytes: int
    documents: int
    unique_tokens: int
    valid_bytes: int
    script: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Entry:
    train: Path
    valid: Path | None


def _split_name(name: str) -> tuple[str, str, str] | None:
    """``de.jsonl.xz`` -> ``("de", "jsonl", ".xz")``; ``None`` for a name that is no corpus file."""
    comp = ""
    for c in (".gz", ".xz"):
        if name.endswith(c):
            comp, name = c, name[: -len(c)]
            break
    stem, dot, fmt = name.rpartition(".")
    if not dot or not stem or fmt not in FORMATS:
        return None
    return stem, fmt, comp


def _is_ignored(name: str) -> bool:
    return name.startswith((".", "_")) or name.upper().startswith(("MANIFEST.", "README"))


def validation_indices(
    documents: list[str],
    *,
    seed: int = VALID_SEED,
    target_bytes: int = VALID_TARGET_BYTES,
    small_fraction: float = VALID_SMALL_FRACTION,
) -> set[int]:
    """Positions of the documents that :func:`carve_validation` puts in the validation split."""
    if len(documents) < 2:
        return set()
    sizes = [len(d.encode("utf-8")) + 2 for d in documents]
    goal = min(target_bytes, small_fraction * sum(sizes))
    order = sorted(
        range(len(documents)),
        key=lambda i: (
            hashlib.blake2b(f"{seed}:{documents[i]}".encode(), digest_size=8).digest(),
            i,
        ),
    )
    limit = goal * (1 + VALID_OVERSHOOT)
    chosen: set[int] = set()
    got = 0
    for i in order[:-1]:
        if got >= goal:
            break
        if got + sizes[i] > limit:
            continue  # a document too big to fit: the next in hash order may
        chosen.add(i)
        got += sizes[i]
    if not chosen:
        chosen.add(order[0])
    return chosen


def carve_validation(
    documents: list[str],
    *,
    seed: int = VALID_SEED,
    target_bytes: int = VALID_TARGET_BYTES,
    small_fraction: float = VALID_SMALL_FRACTION,
) -> tuple[list[str], list[str]]:
    """Split whole documents into ``(train, valid)``, deterministically.

    Documents are ranked by ``blake2b(f"{seed}:" + document)`` (ties by position) and taken into
    the validation split in that order until it holds at least
    ``goal = min(target_bytes, small_fraction · total_bytes)`` UTF-8 bytes (each document counted
    with its 2-byte separator), skipping documents that would take it past ``1.25 · goal`` (so one
    huge document cannot swallow the split); at least one document stays in train. Both splits keep the original
    document order. The rank depends only on a document's text, so appending documents to a
    source moves few documents between splits.
    """
    chosen = validation_indices(
        documents, seed=seed, target_bytes=target_bytes, small_fraction=small_fraction
    )
    train = [d for i, d in enumerate(documents) if i not in chosen]
    valid = [d for i, d in enumerate(documents) if i in chosen]
    return train, valid


def _read_raw(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ClimbError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        if path.name.endswith(".gz"):
            return gzip.decompress(data)
        if path.name.endswith(".xz"):
            return lzma.decompress(data)
    except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
        raise ClimbError(
            f"{path}: corrupt compressed file ({exc}); re-create or replace it"
        ) from None
    return data


def _decode(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ClimbError(
            f"{path}: not UTF-8 (byte {exc.start}, line {line}); convert the file to UTF-8"
        ) from None


def split_documents(text: str) -> list[str]:
    """Plain text -> documents: separated by blank lines, stripped, empty ones dropped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    return [d.strip() for d in _BLANK_LINE.split(text) if d.strip()]


def read_documents(path: str | Path) -> list[str]:
    """Documents of one corpus file (``.txt``/``.jsonl``/``.parquet``, optionally ``.gz``/``.xz``).

    Raises :class:`ClimbError` naming the file for an unreadable, corrupt, non-UTF-8 or empty
    file, a JSONL line that is not an object with a string ``text``, or a Parquet file without a
    ``text`` column.
    """
    path = Path(path)
    parts = _split_name(path.name)
    if parts is None:
        raise ClimbError(
            f"{path}: unknown corpus file type; use .txt, .jsonl or .parquet (optionally .gz/.xz)"
        )
    fmt = parts[1]
    data = _read_raw(path)
    docs: list[str]
    if fmt == "txt":
        docs = split_documents(_decode(data, path))
    elif fmt == "jsonl":
        docs = []
        for n, line in enumerate(_decode(data, path).splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ClimbError(f"{path}: line {n}: invalid JSON ({exc.msg})") from None
            if not isinstance(obj, dict) or "text" not in obj:
                raise ClimbError(
                    f"{path}: line {n}: no 'text' field; each line must be an object with a string 'text'"
                )
            if not isinstance(obj["text"], str):
                raise ClimbError(f"{path}: line {n}: 'text' is not a string")
            if obj["text"].strip():
                docs.append(obj["text"].strip())
    else:
        docs = _read_parquet(data, path)
    if not docs:
        raise ClimbError(f"{path}: empty; a corpus file needs at least one non-empty document")
    return docs


def _read_parquet(data: bytes, path: Path) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise ClimbError(f"{path}: not a readable Parquet file ({exc})") from None
    if "text" not in table.column_names:
        raise ClimbError(f"{path}: no 'text' column (columns: {', '.join(table.column_names)})")
    col = table.column("text")
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        raise ClimbError(f"{path}: column 'text' has type {col.type}, expected strings")
    return [s.strip() for s in col.to_pylist() if isinstance(s, str) and s.strip()]


def embedded_corpus_path() -> Path:
    """Directory of the corpus shipped inside the package."""
    return Path(__file__).resolve().parent.parent / "resources" / "corpus"


class Corpus:
    """A directory of sources, read lazily and cached.

    Attributes:
        root: the corpus directory.
        sources: sorted source names.

    Example::

        corpus = Corpus.open()                   # the embedded corpus
        corpus.check_sources(["de", "ja"])
        text = corpus.text_bytes("de")           # train split, UTF-8
        held_out = corpus.documents("ja", "valid")
    """

    root: Path
    sources: list[str]

    def __init__(self, root: Path, entries: dict[str, _Entry]) -> None:
        self.root = root
        self._entries = entries
        self.sources = sorted(entries)
        self._docs: dict[tuple[str, str], list[str]] = {}
        self._bytes: dict[tuple[str, str], bytes] = {}
        self._stats: list[SourceStats] | None = None

    def __repr__(self) -> str:
        return f"Corpus({str(self.root)!r}, sources={self.sources})"

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: str | Path | None = None) -> Corpus:
        """Open a corpus directory; ``None`` opens the embedded corpus.

        Only the layout is checked here; files are read on first use. Raises
        :class:`ClimbError` for a missing directory, a directory with no sources, a source given
        twice, or a source folder without a ``train`` file.
        """
        root = embedded_corpus_path() if path is None else Path(path)
        if not root.exists():
            hint = " (the embedded corpus is missing: reinstall climb)" if path is None else ""
            raise ClimbError(f"corpus directory {root} does not exist{hint}")
        if not root.is_dir():
            raise ClimbError(
                f"corpus {root} is not a directory; give the folder holding the source files"
            )
        entries: dict[str, _Entry] = {}
        for child in sorted(root.iterdir()):
            if _is_ignored(child.name):
                continue
            if child.is_dir():
                source, entry = child.name, cls._folder_entry(child)
            else:
                parts = _split_name(child.name)
                if parts is None:
                    continue
                source, entry = parts[0], _Entry(child, None)
            if source in entries:
                raise ClimbError(
                    f"corpus {root}: source '{source}' is given twice ({entries[source].train.name} "
                    f"and {child.name}); keep one"
                )
            entries[source] = entry
        if not entries:
            raise ClimbError(
                f"corpus {root} has no sources; add <source>.txt/.jsonl/.parquet files "
                "(optionally .gz/.xz) or <source>/train.* folders"
            )
        return cls(root, entries)

    @staticmethod
    def _folder_entry(folder: Path) -> _Entry:
        found: dict[str, list[Path]] = {s: [] for s in SPLITS}
        for f in sorted(folder.iterdir()):
            parts = _split_name(f.name)
            if parts is not None and parts[0] in found and f.is_file():
                found[parts[0]].append(f)
        for split, files in found.items():
            if len(files) > 1:
                raise ClimbError(
                    f"{folder}: several {split} files ({', '.join(f.name for f in files)}); keep one"
                )
        if not found["train"]:
            raise ClimbError(
                f"{folder}: source folder has no train.txt/.jsonl/.parquet (optionally .gz/.xz)"
            )
        return _Entry(found["train"][0], found["valid"][0] if found["valid"] else None)

    # ------------------------------------------------------------------ access
    def check_sources(self, sources: Iterable[str]) -> None:
        """Raise :class:`ClimbError` if any of ``sources`` is not in the corpus."""
        missing = [s for s in sources if s not in self._entries]
        if missing:
            raise ClimbError(
                f"corpus {self.root} has no source {', '.join(repr(m) for m in missing)} "
                f"(it has: {', '.join(self.sources)})"
            )

    def documents(self, source: str, split: str = "train") -> list[str]:
        """Documents of ``source`` in ``split`` (``"train"`` or ``"valid"``), cached."""
        if split not in SPLITS:
            raise ClimbError(f"split '{split}' is not one of: train, valid")
        self.check_sources([source])
        key = (source, split)
        if key not in self._docs:
            entry = self._entries[source]
            train = read_documents(entry.train)
            if entry.valid is not None:
                valid = read_documents(entry.valid)
            else:
                train, valid = carve_validation(train)
                if not valid:
                    raise ClimbError(
                        f"{entry.train}: only one document, so no validation split can be carved; "
                        "add documents or a valid file"
                    )
            self._docs[(source, "train")] = train
            self._docs[(source, "valid")] = valid
        return self._docs[key]

    def text_bytes(self, source: str, split: str = "train") -> bytes:
        """UTF-8 text of ``source``'s ``split``: documents joined by ``"\\n\\n"``, cached."""
        key = (source, split)
        if key not in self._bytes:
            self._bytes[key] = "\n\n".join(self.documents(source, split)).encode("utf-8")
        return self._bytes[key]

    def stats(self) -> list[SourceStats]:
        """Per-source sizes (:class:`SourceStats`), in ``sources`` order."""
        if self._stats is None:
            out = []
            for s in self.sources:
                train = self.text_bytes(s, "train")
                out.append(
                    SourceStats(
                        source=s,
                        bytes=len(train),
                        documents=len(self.documents(s, "train")),
                        unique_tokens=len(train),
                        valid_bytes=len(self.text_bytes(s, "valid")),
                        script=detect_script(train.decode("utf-8")),
                    )
                )
            self._stats = out
        return list(self._stats)

    def unique_tokens(self) -> dict[str, int]:
        """Tokens of each source's training split (bytes: the default tokenizer is byte-level)."""
        return {s: len(self.text_bytes(s, "train")) for s in self.sources}

    def manifest(self) -> dict[str, Any] | None:
        """The corpus's ``MANIFEST.json`` as a dict, or ``None`` when it has none."""
        path = self.root / "MANIFEST.json"
        if not path.is_file():
            return None
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ClimbError(f"{path}: unreadable manifest ({exc})") from None
        return data


def write_unique_tokens(corpus: Corpus, path: str | Path) -> Path:
    """Write the ``source,tokens`` CSV the allocator reads as data caps; returns the path.

    ``tokens`` are the bytes of each source's training split (byte-level tokenizer).
    """
    path = Path(path)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["source", "tokens"])
    for source, tokens in corpus.unique_tokens().items():
        writer.writerow([source, tokens])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(buf.getvalue(), encoding="utf-8")
    except OSError as exc:
        raise ClimbError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return path
