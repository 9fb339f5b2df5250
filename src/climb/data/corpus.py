"""Text corpora: sources (languages), each with a train and a validation split, read by streaming.

A corpus is declared in one of two ways.

**A directory** (one entry per source):

* one file ``<source>.<fmt>[.gz|.xz|.zst|.bz2]`` holding the whole source; the validation split
  is then carved off deterministically (:func:`carve_validation`), or
* a folder ``<source>/`` with training shards ``train.<fmt>…`` or ``train-*.<fmt>…`` /
  ``train_*.<fmt>…`` (read in name order) and optionally validation shards named alike
  ``valid…``; without them the validation split is carved from the training shards as above.
  A folder with no ``train…`` shard takes all its other corpus files as training shards (name
  order: ``part-000.jsonl.gz``, ``00001.parquet`` …), so a folder of shards as downloaded works;

where ``<fmt>`` is ``txt`` (UTF-8, documents separated by blank lines), ``jsonl`` (one object
per line with a string field ``text``) or ``parquet`` (a string column ``text``). Hidden entries
(``.cache`` …), ``_…``, ``MANIFEST.*`` and ``README*`` are not sources; other files are ignored.

**A spec file** (YAML or JSON; or a ``corpus.yaml`` / ``corpus.json`` inside the directory)::

    sources:
      en: {paths: "data/en/*.jsonl.zst", text_field: text}     # globs, local or fsspec URLs
      de: {paths: ["s3://bucket/de/part-*.parquet"], valid: "s3://bucket/de/valid.parquet"}
      fr: {hf: allenai/c4, config: fr, split: train, valid_split: validation}
      ja: {from_disk: /data/ja_dataset, text_field: content}   # datasets.save_to_disk folder

(see :class:`SourceSpec`; relative paths are relative to the spec file).

Documents are streamed (:mod:`climb.data.sources`), never read whole into memory, except by
:meth:`Corpus.documents` / :meth:`Corpus.text_bytes`, which the proxy trainer uses on small
corpora. **Tokens** — the data caps the allocator uses — are counted by
:meth:`Corpus.stats` with a tokenizer (:func:`climb.data.tokenizer.load_tokenizer`; default
bytes): the tokens of the training split's documents joined by blank lines.

**A derived corpus** (:meth:`Corpus.derive`) keeps some sources of another corpus, each
optionally cut to its first documents (``limits``: a language's unique text capped, so that
``p_i D ≤ e_max U_i`` binds); its ``MANIFEST.json`` records what was cut (:meth:`Corpus.derived`,
:func:`describe_cuts`), and its counts — the data caps — come from the text it kept.

With no path, :meth:`Corpus.open` opens the corpus embedded in the package
(``climb/resources/corpus``), built from Debian documentation packages by
``climb corpus build-debian`` (see :mod:`climb.data.builders.debian` and its ``MANIFEST.json``).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from climb.data.counting import (
    VALID_OVERSHOOT,
    VALID_SEED,
    VALID_SMALL_FRACTION,
    VALID_TARGET_BYTES,
    SplitCount,
    doc_key,
    run_tasks,
    select_valid,
)
from climb.data.sources import (
    COMPRESSIONS,
    FORMATS,
    Shard,
    expand_paths,
    file_shard,
    split_name,
)
from climb.errors import ClimbError, ClimbWarning

SPLITS = ("train", "valid")
SPEC_NAMES = ("corpus.yaml", "corpus.yml", "corpus.json")
"""A directory holding one of these is declared by it."""

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
        unique_tokens: tokens of the training split under ``tokenizer`` (documents joined by
            ``"\\n\\n"``); equal to ``bytes`` under climb's byte-level tokenizer — the data cap
            of the source.
        valid_bytes: UTF-8 bytes of the validation split.
        script: writing system detected from the text (:func:`detect_script`).
        valid_tokens: tokens of the validation split.
        tokenizer: the tokenizer that counted the tokens (``"bytes"`` or its spec).
    """

    source: str
    bytes: int
    documents: int
    unique_tokens: int
    valid_bytes: int
    script: str
    valid_tokens: int = 0
    tokenizer: str = "bytes"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SourceSpec(BaseModel):
    """One source of a corpus spec file: exactly one of ``paths``, ``hf`` or ``from_disk``.

    Attributes:
        paths: file path(s) or glob(s), local (relative to the spec) or fsspec URLs.
        valid: validation file path(s) or glob(s); without them the split is carved from train.
        hf: a Hugging Face dataset name (or local dataset folder) for ``datasets.load_dataset``.
        config: the dataset's configuration name.
        from_disk: a folder written by ``datasets.Dataset.save_to_disk``.
        split: the dataset split used for training (``hf``/``from_disk``).
        valid_split: the dataset split used for validation; without it the split is carved.
        text_field: JSON field, Parquet column or dataset column holding the text.
        format: file format when the names do not say it (``txt``, ``jsonl``, ``parquet``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    paths: str | list[str] | None = None
    valid: str | list[str] | None = None
    hf: str | None = None
    config: str | None = None
    from_disk: str | None = None
    split: str = "train"
    valid_split: str | None = None
    text_field: str = "text"
    format: Literal["txt", "jsonl", "parquet"] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> SourceSpec:
        kinds = [k for k in ("paths", "hf", "from_disk") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"give exactly one of paths, hf, from_disk (got: {', '.join(kinds) or 'none'})")  # fmt: skip
        if self.valid is not None and self.paths is None:
            raise ValueError("valid goes with paths; datasets take valid_split")
        return self


@dataclass(frozen=True)
class _Entry:
    """A source: its training shards, and its validation shards (``None``: carved)."""

    origin: str
    train: tuple[Shard, ...]
    valid: tuple[Shard, ...] | None


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
    cands = [(doc_key(d, seed), (0, i), len(d.encode("utf-8")) + 2, 0) for i, d in enumerate(documents)]  # fmt: skip
    order = sorted(cands, key=lambda c: (c[0], c[1]))
    chosen = select_valid(
        cands,
        documents=len(documents),
        total_size=sum(c[2] for c in cands),
        first=order[0] if order else None,
        last=order[-1] if order else None,
        target_bytes=target_bytes,
        small_fraction=small_fraction,
    )
    return {c[1][1] for c in chosen}


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
    huge document cannot swallow the split); at least one document stays in train. Both splits
    keep the original document order. The rank depends only on a document's text, so appending
    documents to a source moves few documents between splits. The same rule runs in one
    streaming pass over sharded sources (:mod:`climb.data.counting`).
    """
    chosen = validation_indices(
        documents, seed=seed, target_bytes=target_bytes, small_fraction=small_fraction
    )
    train = [d for i, d in enumerate(documents) if i not in chosen]
    valid = [d for i, d in enumerate(documents) if i in chosen]
    return train, valid


def split_documents(text: str) -> list[str]:
    """Plain text -> documents: separated by blank lines, stripped, empty ones dropped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    return [d.strip() for d in _BLANK_LINE.split(text) if d.strip()]


def read_documents(path: str | Path, *, text_field: str = "text") -> list[str]:
    """Documents of one corpus file (``.txt``/``.jsonl``/``.parquet``, optionally compressed).

    Raises :class:`ClimbError` naming the file for an unreadable, corrupt, non-UTF-8 or empty
    file, a JSONL line that is not an object with a string ``text``, or a Parquet file without a
    ``text`` column.
    """
    return list(file_shard(str(path), text_field=text_field).documents())


def embedded_corpus_path() -> Path:
    """Directory of the corpus shipped inside the package."""
    return Path(__file__).resolve().parent.parent / "resources" / "corpus"


CUT_RULE = (
    "training documents kept in order until the kept text, each document counted with its "
    "2-byte separator, reaches the limit (the last one kept whole); validation split unchanged"
)
"""How :meth:`Corpus.derive` cuts a source to ``limits[source]`` bytes (:func:`take_first_bytes`)."""


def take_first_bytes(documents: Iterable[str], limit: int) -> Iterator[str]:
    """The leading documents that a byte limit keeps, in order (:data:`CUT_RULE`).

    Documents ``d_1, d_2, …`` of ``b_k`` UTF-8 bytes are taken while the text kept so far is
    below the limit: the first ``n`` with ``n`` the smallest count such that
    ``Σ_{k≤n} (b_k + 2) ≥ limit`` (every document if the text is shorter). The document that
    reaches the limit is kept whole, so the kept text (documents joined by blank lines,
    ``Σ_{k≤n} b_k + 2(n−1)`` bytes) can exceed ``limit`` by less than one document. Documents
    after the last kept one are not read.
    """
    total = 0
    for doc in documents:
        if total >= limit:
            return
        yield doc
        total += len(doc.encode("utf-8")) + 2


def describe_cuts(derived: Mapping[str, Any] | None) -> list[str]:
    """One line per cut source of a derived corpus (:meth:`Corpus.derived`), e.g. ``"ca: first
    10 of 2,305 training documents (12,088 of 3,310,378 bytes; limit 12,000)"``."""
    out = []
    for source, c in sorted((derived or {}).get("cut", {}).items()):
        docs, nbytes = c["documents"], c["bytes"]
        out.append(
            f"{source}: first {docs['kept']:,} of {docs['before']:,} training documents "
            f"({nbytes['kept']:,} of {nbytes['before']:,} bytes; limit {c['limit']:,})"
        )
    return out


# ----------------------------------------------------------------------------- declaring
def _scan_directory(root: Path) -> dict[str, _Entry]:
    """Sources of a corpus directory laid out one entry per source."""
    entries: dict[str, _Entry] = {}
    for child in sorted(root.iterdir()):
        if _is_ignored(child.name):
            continue
        if child.is_dir():
            source, entry = child.name, _folder_entry(child)
        else:
            parts = split_name(child.name)
            if parts is None:
                continue
            source, entry = parts[0], _Entry(str(child), (file_shard(str(child)),), None)
        if source in entries:
            raise ClimbError(
                f"corpus {root}: source '{source}' is given twice "
                f"({Path(entries[source].origin).name} and {child.name}); keep one"
            )
        entries[source] = entry
    if not entries:
        raise ClimbError(
            f"corpus {root} has no sources; add <source>.txt/.jsonl/.parquet files "
            "(optionally .gz/.xz/.zst) or <source>/train.* folders, or a corpus.yaml"
        )
    return entries


def _folder_entry(folder: Path) -> _Entry:
    """A source folder: shards named ``train…`` / ``valid…`` (see the module docstring); without
    any ``train…`` shard, every other corpus file in it (``part-000.jsonl.gz``,
    ``c4-train.00000-of-01024.jsonl.gz`` …) is a training shard, in name order."""
    found: dict[str, list[Shard]] = {s: [] for s in SPLITS}
    other: list[Path] = []
    for f in sorted(folder.iterdir()):
        parts = split_name(f.name)
        if parts is None or not f.is_file() or _is_ignored(f.name):
            continue
        split = next((s for s in SPLITS if parts[0] == s
                      or parts[0].startswith((f"{s}-", f"{s}_", f"{s}."))), None)  # fmt: skip
        if split is None:
            other.append(f)
        else:
            found[split].append(file_shard(str(f)))
    if not found["train"]:
        found["train"] = [file_shard(str(f)) for f in other]
    elif other:
        warnings.warn(
            f"{folder}: {len(other)} corpus file(s) not named train…/valid… are ignored "
            f"(e.g. {other[0].name}); the training split is the {len(found['train'])} train… shard(s)",
            ClimbWarning,
            stacklevel=4,
        )
    if not found["train"]:
        raise ClimbError(
            f"{folder}: source folder has no training text: add .txt/.jsonl/.parquet shards "
            "(optionally .gz/.xz/.zst/.bz2), named train… or anything but valid…"
        )
    return _Entry(str(folder), tuple(found["train"]), tuple(found["valid"]) or None)


def _load_spec(path: Path) -> dict[str, _Entry]:
    """Sources of a YAML/JSON corpus spec (``sources: {name: SourceSpec}``)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except OSError as exc:
        raise ClimbError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (ValueError, yaml.YAMLError) as exc:
        raise ClimbError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'} ({str(exc).splitlines()[0]})") from None  # fmt: skip
    if not isinstance(data, dict) or not isinstance(data.get("sources"), dict) or not data["sources"]:  # fmt: skip
        raise ClimbError(f"{path}: expected a mapping 'sources: {{name: {{paths: …}}}}' with at least one source")  # fmt: skip
    extra = sorted(set(data) - {"sources", "description"})
    if extra:
        raise ClimbError(f"{path}: unknown key(s) {', '.join(extra)}; a spec has 'sources' (and 'description')")  # fmt: skip
    entries: dict[str, _Entry] = {}
    for name, raw in data["sources"].items():
        try:
            spec = SourceSpec.model_validate(raw if raw is not None else {})
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(x) for x in err["loc"])
            raise ClimbError(f"{path}: sources.{name}{'.' + where if where else ''}: {err['msg']}") from None  # fmt: skip
        entries[str(name)] = _spec_entry(str(name), spec, path)
    return entries


def _spec_entry(name: str, spec: SourceSpec, path: Path) -> _Entry:
    base = path.parent
    origin = f"{path}: sources.{name}"
    if spec.paths is not None:
        fmt = spec.format

        def shards(patterns: str | list[str], what: str) -> tuple[Shard, ...]:
            urls: list[str] = []
            for pat in [patterns] if isinstance(patterns, str) else patterns:
                try:
                    urls += expand_paths(pat, base)
                except ClimbError as exc:
                    raise ClimbError(f"{origin}.{what}: {exc}") from None
            return tuple(file_shard(u, text_field=spec.text_field, fmt=fmt) for u in urls)

        valid = shards(spec.valid, "valid") if spec.valid is not None else None
        return _Entry(origin, shards(spec.paths, "paths"), valid)
    if spec.from_disk is not None:
        folder = Path(spec.from_disk).expanduser()
        folder = folder if folder.is_absolute() else base / folder
        if not folder.is_dir():
            raise ClimbError(f"{origin}.from_disk: {folder} is not a folder")
        url, kind = str(folder), "disk"
    else:
        assert spec.hf is not None
        local = base / spec.hf
        url, kind = (str(local) if local.is_dir() else spec.hf), "hf"

    def ds(split: str) -> tuple[Shard, ...]:
        return (Shard(url, kind=kind, text_field=spec.text_field, config=spec.config, split=split),)  # fmt: skip

    return _Entry(origin, ds(spec.split), ds(spec.valid_split) if spec.valid_split else None)


# ----------------------------------------------------------------------------- the corpus
class Corpus:
    """A set of sources, read by streaming (counts) or lazily and cached (documents).

    Attributes:
        root: the corpus directory or spec file.
        sources: sorted source names.

    Example::

        corpus = Corpus.open()                   # the embedded corpus
        corpus.check_sources(["de", "ja"])
        text = corpus.text_bytes("de")           # train split, UTF-8
        held_out = corpus.documents("ja", "valid")
        caps = corpus.unique_tokens("tokenizer.json", jobs=4)
    """

    root: Path
    sources: list[str]

    def __init__(self, root: Path, entries: dict[str, _Entry]) -> None:
        self.root = root
        self._entries = entries
        self.sources = sorted(entries)
        self._docs: dict[tuple[str, str], list[str]] = {}
        self._bytes: dict[tuple[str, str], bytes] = {}
        self._stats: dict[tuple[str, str], SourceStats] = {}
        self._carved: dict[str, set[tuple[int, int]]] = {}

    def __repr__(self) -> str:
        return f"Corpus({str(self.root)!r}, sources={self.sources})"

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: str | Path | None = None) -> Corpus:
        """Open a corpus directory or spec file; ``None`` opens the embedded corpus.

        Only the layout (and that every glob matches) is checked here; documents are read on
        first use. Raises :class:`ClimbError` for a missing path, a directory with no sources, a
        source given twice, a source folder without training shards, a bad spec or a glob that
        matches nothing.
        """
        root = embedded_corpus_path() if path is None else Path(path).expanduser()
        if not root.exists():
            hint = " (the embedded corpus is missing: reinstall climb)" if path is None else ""
            raise ClimbError(f"corpus directory {root} does not exist{hint}")
        if root.is_file():
            if root.suffix.lower() not in (".yaml", ".yml", ".json"):
                raise ClimbError(
                    f"corpus {root} is not a directory; give the folder holding the source files "
                    "or a corpus spec (.yaml/.json)"
                )
            return cls(root, _load_spec(root))
        for name in SPEC_NAMES:
            if (root / name).is_file():
                return cls(root, _load_spec(root / name))
        return cls(root, _scan_directory(root))

    # ------------------------------------------------------------------ access
    def check_limits(
        self, names: Sequence[str], limits: Collection[str], what: str = "limits",
        among: str = "sources",
    ) -> None:  # fmt: skip
        """Raise :class:`ClimbError` if a limited source is not in the corpus or not one of
        ``names`` (messages start with ``what``; ``among`` names the set ``names`` is)."""
        try:
            self.check_sources(limits)
        except ClimbError as exc:
            raise ClimbError(f"{what}: {exc}") from None
        outside = [s for s in limits if s not in names]
        if outside:
            raise ClimbError(f"{what}: '{outside[0]}' is not one of {among} ({', '.join(names)})")

    def check_sources(self, sources: Iterable[str]) -> None:
        """Raise :class:`ClimbError` if any of ``sources`` is not in the corpus."""
        missing = [s for s in sources if s not in self._entries]
        if missing:
            raise ClimbError(
                f"corpus {self.root} has no source {', '.join(repr(m) for m in missing)} "
                f"(it has: {', '.join(self.sources)})"
            )

    def _entry(self, source: str, split: str) -> _Entry:
        if split not in SPLITS:
            raise ClimbError(f"split '{split}' is not one of: train, valid")
        self.check_sources([source])
        return self._entries[source]

    def iter_documents(self, source: str, split: str = "train") -> Iterator[str]:
        """Stream the documents of ``source`` in ``split``, in order (nothing is cached)."""
        entry = self._entry(source, split)
        if entry.valid is not None:
            for shard in entry.train if split == "train" else entry.valid:
                yield from shard.documents()
            return
        chosen = self._carved_positions(source)
        for k, shard in enumerate(entry.train):
            for i, doc in enumerate(shard.documents()):
                if ((k, i) in chosen) == (split == "valid"):
                    yield doc

    def _carved_positions(self, source: str) -> set[tuple[int, int]]:
        """Positions of the carved validation documents (one streaming pass, cached)."""
        if source not in self._carved:
            entry = self._entries[source]
            merged = SplitCount(carve=True)

            def collect(k: int, res: SplitCount) -> None:
                merged.merge(res, k)

            run_tasks([(s, "bytes", True) for s in entry.train], on_result=collect)
            chosen = _carve(entry, merged)
            self._carved[source] = {c[1] for c in chosen}
        return self._carved[source]

    def documents(self, source: str, split: str = "train") -> list[str]:
        """Documents of ``source`` in ``split`` (``"train"`` or ``"valid"``), held in memory and
        cached (for small corpora, e.g. proxy training; large ones: :meth:`iter_documents`)."""
        entry = self._entry(source, split)
        key = (source, split)
        if key not in self._docs:
            train = [d for s in entry.train for d in s.documents()]
            if entry.valid is not None:
                valid = [d for s in entry.valid for d in s.documents()]
            else:
                train, valid = carve_validation(train)
                if not valid:
                    raise ClimbError(_one_document(entry))
            self._docs[(source, "train")] = train
            self._docs[(source, "valid")] = valid
        return self._docs[key]

    def text_bytes(self, source: str, split: str = "train") -> bytes:
        """UTF-8 text of ``source``'s ``split``: documents joined by ``"\\n\\n"``, cached."""
        key = (source, split)
        if key not in self._bytes:
            self._bytes[key] = "\n\n".join(self.documents(source, split)).encode("utf-8")
        return self._bytes[key]

    # ------------------------------------------------------------------ counting
    def stats(
        self,
        tokenizer: Any = None,
        *,
        sources: Iterable[str] | None = None,
        jobs: int = 1,
        backend: str = "local",
        ray_address: str | None = None,
        progress: bool = False,
    ) -> list[SourceStats]:
        """Per-source sizes (:class:`SourceStats`), counted by streaming every shard once.

        Args:
            tokenizer: ``None``/``"bytes"``, a :func:`~climb.data.tokenizer.load_tokenizer`
                spec (``tokenizer.json``, folder, name) or a loaded tokenizer.
            sources: the sources to count (default all), in this order.
            jobs: processes counting shards in parallel (``backend="local"``), or CPUs of a
                local Ray started for ``backend="ray"``.
            backend: ``"local"`` or ``"ray"`` (Ray Data; ``ray_address`` joins a cluster).
            progress: show a progress bar (shards, bytes) on stderr.
        """
        from climb.data.tokenizer import load_tokenizer

        tok = load_tokenizer(tokenizer) if tokenizer is None or isinstance(tokenizer, str) else tokenizer  # fmt: skip
        names = list(self.sources if sources is None else sources)
        self.check_sources(names)
        todo = [s for s in dict.fromkeys(names) if (tok.spec, s) not in self._stats]
        tasks: list[tuple[Shard, str, bool]] = []
        where: list[tuple[str, str, int]] = []
        for s in todo:
            entry = self._entries[s]
            for split, shards in (("train", entry.train), ("valid", entry.valid or ())):
                for k, shard in enumerate(shards):
                    tasks.append((shard, tok.spec, entry.valid is None))
                    where.append((s, split, k))
        merged = {(s, split): SplitCount(carve=self._entries[s].valid is None) for s, split, _ in where}  # fmt: skip
        with _progress_bar(len(tasks), progress) as advance:

            def collect(i: int, res: SplitCount) -> None:
                s, split, k = where[i]
                merged[(s, split)].merge(res, k)
                advance(res.utf8_bytes)

            run_tasks(tasks, jobs=jobs, backend=backend, ray_address=ray_address, on_result=collect)  # fmt: skip
        sep = tok.count(["\n\n"])[0]
        for s in todo:
            valid = merged.get((s, "valid")) if self._entries[s].valid is not None else None
            self._stats[(tok.spec, s)] = _source_stats(s, self._entries[s], merged[(s, "train")], valid, sep, tok.spec)  # fmt: skip
        return [self._stats[(tok.spec, s)] for s in names]

    def unique_tokens(self, tokenizer: Any = None, **kwargs: Any) -> dict[str, int]:
        """Tokens of each source's training split — the data caps (default: bytes).

        Takes the arguments of :meth:`stats`."""
        return {st.source: st.unique_tokens for st in self.stats(tokenizer, **kwargs)}

    def manifest(self) -> dict[str, Any] | None:
        """The corpus's ``MANIFEST.json`` as a dict, or ``None`` when it has none."""
        folder = self.root if self.root.is_dir() else self.root.parent
        path = folder / "MANIFEST.json"
        if not path.is_file():
            return None
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ClimbError(f"{path}: unreadable manifest ({exc})") from None
        return data

    @property
    def label(self) -> str:
        """``"embedded"`` for the corpus shipped with climb, else the resolved path."""
        root = self.root.resolve()
        return "embedded" if root == embedded_corpus_path().resolve() else str(root)

    def derived(self) -> dict[str, Any] | None:
        """What :meth:`derive` recorded when it made this corpus (``from``, ``sources``,
        ``limits``, ``rule``, ``cut``: per cut source its ``limit`` and the ``documents`` and
        ``bytes`` ``kept`` of those ``before``), or ``None`` for a corpus that was not derived."""
        return read_derived(self.root if self.root.is_dir() else self.root.parent)

    # ------------------------------------------------------------------ deriving
    def derive(
        self,
        dest: str | Path,
        limits: Mapping[str, int] | None = None,
        sources: Iterable[str] | None = None,
    ) -> Corpus:
        """Write a derived corpus of ``sources`` (default all) into ``dest`` and open it.

        Each source becomes ``dest/<source>/train.jsonl.gz`` and ``valid.jsonl.gz``: the same
        documents as here, except that a source in ``limits`` keeps only its first training
        documents up to ``limits[source]`` UTF-8 bytes (:func:`take_first_bytes`; its validation
        split is unchanged), so its unique tokens — the data cap ``p_i D ≤ e_max U_i`` — are
        those of the kept text. ``dest/MANIFEST.json`` records the origin, the limits and what
        was cut (:meth:`derived`). The corpus is written beside ``dest`` first and replaces
        ``dest`` only when complete.

        Raises :class:`ClimbError` for a source not in the corpus, a limit on a source not in
        ``sources``, a limit below 1, one smaller than the first training document (no whole
        document fits), one that keeps every document (nothing to cut), or a ``dest`` that holds
        something other than a derived corpus (never overwritten).
        """
        names = list(dict.fromkeys(self.sources if sources is None else sources))
        limits = dict(limits or {})
        self.check_sources(names)
        self.check_limits(names, limits)
        for s, lim in limits.items():
            if isinstance(lim, bool) or not isinstance(lim, int) or lim < 1:
                raise ClimbError(f"limits['{s}'] = {lim!r}: must be a whole number of bytes ≥ 1")
        dest = Path(dest)
        if dest.exists() and not _replaceable(dest):
            raise ClimbError(
                f"dest {dest}: exists and is not a corpus that derive wrote; choose another dest"
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            cut = {}
            for s in names:
                (tmp / s).mkdir()
                kept = self._write_train(s, tmp / s, limits.get(s))
                if kept is not None:
                    cut[s] = kept
                _write_docs(tmp / s / "valid.jsonl.gz", self.iter_documents(s, "valid"))
            _write_derived_manifest(self, tmp, names, limits, cut)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
        return Corpus.open(dest)

    def _write_train(self, source: str, folder: Path, limit: int | None) -> dict[str, Any] | None:
        """Write ``source``'s training split (cut to ``limit`` bytes); what was cut, if cut."""
        docs = self.iter_documents(source, "train")
        if limit is None:
            _write_docs(folder / "train.jsonl.gz", docs)
            return None
        seen = [0, 0]  # documents and bytes of the training split, read so far

        def counted() -> Iterator[str]:
            for d in docs:
                seen[0] += 1
                seen[1] += len(d.encode("utf-8"))
                yield d

        stream = counted()
        n_kept, b_kept = _write_docs(folder / "train.jsonl.gz", take_first_bytes(stream, limit))
        if b_kept > limit and n_kept == 1:
            raise ClimbError(
                f"cap of {limit:,} bytes on '{source}': its first training document alone has "
                f"{b_kept:,} bytes, so no whole document fits; use ≥ {b_kept:,}"
            )
        for _ in stream:
            pass
        joined = seen[1] + 2 * (seen[0] - 1)
        if n_kept == seen[0]:
            raise ClimbError(
                f"cap of {limit:,} bytes on '{source}' keeps all its {seen[0]:,} training "
                f"documents ({joined:,} bytes): nothing is cut; use a cap below {joined:,}"
            )
        return {
            "limit": limit,
            "documents": {"kept": n_kept, "before": seen[0]},
            "bytes": {"kept": b_kept, "before": joined},
        }


def read_derived(folder: str | Path) -> dict[str, Any] | None:
    """What :meth:`Corpus.derive` recorded in ``folder/MANIFEST.json`` (``None``: no such
    record, e.g. not a derived corpus, or no corpus at all)."""
    try:
        manifest = json.loads((Path(folder) / "MANIFEST.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    derived = manifest.get("derived") if isinstance(manifest, dict) else None
    return derived if isinstance(derived, dict) else None


def _replaceable(dest: Path) -> bool:
    """An empty folder, or a corpus :meth:`Corpus.derive` wrote (its manifest says so)."""
    if not dest.is_dir():
        return False
    return not any(dest.iterdir()) or read_derived(dest) is not None


def _write_docs(path: Path, docs: Iterable[str]) -> tuple[int, int]:
    """Write ``docs`` as JSON lines ``{"text": …}`` (gzip, reproducible bytes); returns the
    number of documents and the UTF-8 bytes of their text joined by blank lines."""
    n = nbytes = 0
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz,
        io.TextIOWrapper(gz, encoding="utf-8", newline="\n") as fh,
    ):
        for d in docs:
            fh.write(json.dumps({"text": d}, ensure_ascii=False) + "\n")
            n += 1
            nbytes += len(d.encode("utf-8"))
    return n, (nbytes + 2 * (n - 1) if n else 0)


def _write_derived_manifest(
    origin: Corpus, folder: Path, sources: list[str], limits: dict[str, int], cut: dict[str, Any]
) -> None:
    parent = origin.manifest() or {}
    derived = {
        "from": origin.label,
        "sources": sources,
        "limits": limits,
        "rule": CUT_RULE,
        "cut": cut,
    }
    lines = describe_cuts(derived)
    doc = {
        "format": "climb-corpus/1",
        "description": f"Derived by climb from the corpus {origin.label}: sources "
        + ", ".join(sources)
        + ("; cut: " + "; ".join(lines) if lines else "; nothing cut")
        + (f". Origin: {parent['description']}" if parent.get("description") else ""),
        "files": "<source>/train.jsonl.gz, <source>/valid.jsonl.gz: one JSON object per line, "
        "{'text': document}",
        "derived": derived,
    }
    (folder / "MANIFEST.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")  # fmt: skip


def _one_document(entry: _Entry) -> str:
    return f"{entry.origin}: only one document, so no validation split can be carved; add documents or a valid file"  # fmt: skip


def _carve(entry: _Entry, train: SplitCount) -> list[Any]:
    chosen = select_valid(
        train.candidates(),
        documents=train.documents,
        total_size=train.total_size,
        first=train.first,
        last=train.last,
    )
    if not chosen or len(chosen) >= train.documents:
        raise ClimbError(_one_document(entry))
    return chosen


def _source_stats(
    name: str, entry: _Entry, train: SplitCount, valid: SplitCount | None, sep: int, spec: str
) -> SourceStats:
    """A source's stats from its merged counts (carving the validation split when it has none)."""
    if valid is None:
        chosen = _carve(entry, train)
        v_docs, v_bytes, v_tokens = len(chosen), sum(c[2] - 2 for c in chosen), sum(c[3] for c in chosen)  # fmt: skip
        t_docs, t_bytes, t_tokens = train.documents - v_docs, train.utf8_bytes - v_bytes, train.tokens - v_tokens  # fmt: skip
    else:
        v_docs, v_bytes, v_tokens = valid.documents, valid.utf8_bytes, valid.tokens
        t_docs, t_bytes, t_tokens = train.documents, train.utf8_bytes, train.tokens

    def joined(n: int, total: int, per_separator: int) -> int:
        return total + per_separator * (n - 1) if n else 0

    return SourceStats(
        source=name,
        bytes=joined(t_docs, t_bytes, 2),
        documents=t_docs,
        unique_tokens=joined(t_docs, t_tokens, sep),
        valid_bytes=joined(v_docs, v_bytes, 2),
        script=detect_script(train.sample_text()),
        valid_tokens=joined(v_docs, v_tokens, sep),
        tokenizer=spec,
    )


class _progress_bar:
    """``with _progress_bar(n, enabled) as advance: advance(bytes)`` after each of n shards."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled = total, enabled
        self._prog: Any = None

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda n: None
        from rich.console import Console
        from rich.progress import (  # fmt: skip
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._prog = Progress(TextColumn("counting shards"), BarColumn(), MofNCompleteColumn(),
                              TextColumn("{task.fields[mb]:,.1f} MB"), TimeElapsedColumn(),
                              console=Console(stderr=True), transient=False)  # fmt: skip
        self._prog.start()
        task = self._prog.add_task("shards", total=self.total, mb=0.0)
        done = [0]

        def advance(n_bytes: int) -> None:
            done[0] += n_bytes
            self._prog.update(task, advance=1, mb=done[0] / 1e6)

        return advance

    def __exit__(self, *exc: object) -> None:
        if self._prog is not None:
            self._prog.stop()


def write_unique_tokens(corpus: Corpus, path: str | Path, tokenizer: Any = None, **kwargs: Any) -> Path:  # fmt: skip
    """Write the ``source,tokens`` CSV the allocator reads as data caps; returns the path.

    ``tokens`` are the tokens of each source's training split under ``tokenizer`` (default
    bytes); further arguments go to :meth:`Corpus.stats`.
    """
    path = Path(path)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["source", "tokens"])
    for source, tokens in corpus.unique_tokens(tokenizer, **kwargs).items():
        writer.writerow([source, tokens])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(buf.getvalue(), encoding="utf-8")
    except OSError as exc:
        raise ClimbError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return path


__all__ = [
    "COMPRESSIONS",
    "CUT_RULE",
    "FORMATS",
    "SPLITS",
    "VALID_OVERSHOOT",
    "VALID_SEED",
    "VALID_SMALL_FRACTION",
    "VALID_TARGET_BYTES",
    "Corpus",
    "SourceSpec",
    "SourceStats",
    "carve_validation",
    "describe_cuts",
    "detect_script",
    "read_derived",
    "read_documents",
    "split_documents",
    "take_first_bytes",
    "validation_indices",
    "write_unique_tokens",
]
