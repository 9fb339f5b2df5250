"""Where a corpus source's documents come from, read by streaming.

A source's split is a list of :class:`Shard` s read one after the other. A shard is

* a **file** — local or any ``fsspec`` URL (``s3://``, ``gs://``, ``hf://``, ``memory://`` …) —
  in one of the formats

  * ``txt``: UTF-8 plain text, documents separated by blank lines;
  * ``jsonl``: one JSON object per line with a string field ``text_field`` (default ``text``);
  * ``parquet``: a table with a string column ``text_field``;

  optionally compressed (``.gz``, ``.xz``, ``.zst``, ``.bz2``, from the name); or
* a **Hugging Face dataset** split: ``datasets.load_dataset(hf, config, split=…, streaming=True)``
  or a ``datasets.load_from_disk`` folder.

Reading never holds a whole shard in memory: text files are read line by line, Parquet files one
row group batch at a time (memory is bounded by the files' row group size), datasets by streaming.
"""

from __future__ import annotations

import gzip
import json
import lzma
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from climb.errors import ClimbError

FORMATS = ("txt", "jsonl", "parquet")
COMPRESSIONS = ("", ".gz", ".xz", ".zst", ".bz2")
PARQUET_BATCH_ROWS = 256
"""Rows per Parquet read batch."""


@dataclass(frozen=True)
class Shard:
    """One file, or one Hugging Face dataset split, of a source.

    Attributes:
        url: file path or fsspec URL (kind ``file``); dataset name or folder (``hf``/``disk``).
        kind: ``"file"``, ``"hf"`` (``load_dataset``) or ``"disk"`` (``load_from_disk``).
        fmt: file format (``txt``/``jsonl``/``parquet``); ``""`` for datasets.
        text_field: the JSON field, Parquet column or dataset column holding the text.
        config: dataset configuration name (``hf``).
        split: dataset split (``hf``/``disk``).
    """

    url: str
    kind: str = "file"
    fmt: str = ""
    text_field: str = "text"
    config: str | None = None
    split: str | None = None

    @property
    def name(self) -> str:
        """How messages name the shard."""
        if self.kind == "file":
            return self.url
        return f"{self.url} ({self.config + ', ' if self.config else ''}split {self.split})"

    def documents(self) -> Iterator[str]:
        """The shard's non-empty documents, stripped, in order."""
        if self.kind == "file":
            yield from _file_documents(self)
        else:
            yield from _dataset_documents(self)


def split_name(name: str) -> tuple[str, str, str] | None:
    """``de.jsonl.zst`` -> ``("de", "jsonl", ".zst")``; ``None`` for a name that is no corpus file."""
    comp = ""
    for c in COMPRESSIONS[1:]:
        if name.endswith(c):
            comp, name = c, name[: -len(c)]
            break
    stem, dot, fmt = name.rpartition(".")
    if not dot or not stem or fmt not in FORMATS:
        return None
    return stem, fmt, comp


def file_shard(url: str, *, text_field: str = "text", fmt: str | None = None) -> Shard:
    """A file shard, its format from ``fmt`` or the file name."""
    base = url.rstrip("/").rsplit("/", 1)[-1]
    parts = split_name(base)
    if fmt is None:
        if parts is None:
            raise ClimbError(
                f"{url}: unknown corpus file type; use .txt, .jsonl or .parquet "
                "(optionally .gz/.xz/.zst/.bz2) or give the source a format"
            )
        fmt = parts[1]
    if fmt not in FORMATS:
        raise ClimbError(f"{url}: format '{fmt}' is not one of: {', '.join(FORMATS)}")
    return Shard(url=url, kind="file", fmt=fmt, text_field=text_field)


def expand_paths(pattern: str, base: Path | None = None) -> list[str]:
    """Files matching ``pattern`` (a path, glob or fsspec URL), sorted; local relative paths are
    taken relative to ``base``. Raises :class:`ClimbError` when nothing matches."""
    import fsspec
    from fsspec.core import split_protocol

    protocol, _ = split_protocol(pattern)
    if protocol is None and base is not None and not Path(pattern).expanduser().is_absolute():
        pattern = str(base / pattern)
    if protocol is None:
        pattern = str(Path(pattern).expanduser())
    try:
        fs, _, found = fsspec.get_fs_token_paths(pattern)
        files = sorted(p for p in found if not fs.isdir(p))
    except (OSError, ValueError, ImportError) as exc:
        raise ClimbError(f"{pattern}: cannot list files ({exc})") from None
    if not files:
        raise ClimbError(f"{pattern}: matches no file; check the path or glob")
    if protocol is None:
        return files
    return [fs.unstrip_protocol(p) for p in files]


# ----------------------------------------------------------------------------- files
def _open(shard: Shard) -> Any:
    import fsspec

    zstd = shard.url.endswith(".zst")
    try:
        fh = fsspec.open(shard.url, "rb", compression=None if zstd else "infer").open()
    except FileNotFoundError:
        raise ClimbError(f"{shard.url}: no such file") from None
    except (OSError, ValueError) as exc:
        raise ClimbError(f"{shard.url}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None  # fmt: skip
    return _ZstdReader(fh) if zstd else fh


class _ZstdReader:
    """``read(n)`` over a Zstandard stream of one or more frames; a truncated frame raises
    ``EOFError`` (zstandard's own stream reader ends silently). Input is fed 64 KiB at a time,
    so the output held at once stays small."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._chunks = self._decompress()
        self._buf = b""

    def _decompress(self) -> Iterator[bytes]:
        import zstandard

        dctx = zstandard.ZstdDecompressor()
        dobj = dctx.decompressobj()
        fed = False
        while data := self._raw.read(1 << 16):
            while data:
                fed = True
                out = dobj.decompress(data)
                if out:
                    yield out
                data = b""
                if dobj.eof:  # a frame ended: the rest starts the next one
                    data, dobj, fed = dobj.unused_data, dctx.decompressobj(), False
        if fed and not dobj.eof:
            raise EOFError("Zstandard stream ended before the end of its frame (truncated file)")

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buf) < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buf += chunk
        if n < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def close(self) -> None:
        self._raw.close()


def _corrupt_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [EOFError, lzma.LZMAError, zlib.error, gzip.BadGzipFile]
    try:
        import zstandard

        errors.append(zstandard.ZstdError)
    except ImportError:  # pragma: no cover - zstandard is a dependency
        pass
    return (*errors, OSError)


def _file_documents(shard: Shard) -> Iterator[str]:
    fh = _open(shard)
    n = 0
    try:
        if shard.fmt == "parquet":
            docs = _parquet_documents(fh, shard)
        elif shard.fmt == "jsonl":
            docs = _jsonl_documents(fh, shard)
        else:
            docs = _txt_documents(fh, shard)
        for doc in docs:
            n += 1
            yield doc
    except ClimbError:
        raise
    except _corrupt_errors() as exc:
        what = "corrupt compressed file" if _compressed(shard.url) else "cannot read"
        raise ClimbError(f"{shard.url}: {what} ({exc}); re-create or replace it") from None
    finally:
        fh.close()
    if n == 0:
        raise ClimbError(f"{shard.url}: empty; a corpus file needs at least one non-empty document")


def _compressed(url: str) -> bool:
    return url.endswith(COMPRESSIONS[1:])


def _raw_lines(fh: IO[bytes], chunk: int = 1 << 20) -> Iterator[bytes]:
    """Lines of a binary stream (ending in ``\n`` but maybe the last), read ``chunk`` bytes at a
    time: compressed streams need not support ``readline``. A line longer than a chunk is
    gathered in pieces (no quadratic copying)."""
    pending: list[bytes] = []
    while data := fh.read(chunk):
        lines = data.split(b"\n")
        if len(lines) == 1:
            pending.append(data)
            continue
        yield b"".join([*pending, lines[0], b"\n"])
        pending = [lines[-1]] if lines[-1] else []
        for line in lines[1:-1]:
            yield line + b"\n"
    rest = b"".join(pending)
    if rest:
        yield rest


def _lines(fh: IO[bytes], shard: Shard) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` with universal newlines; undecodable UTF-8 is an error."""
    for n, raw in enumerate(_raw_lines(fh), 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ClimbError(
                f"{shard.url}: not UTF-8 (line {n}, byte {exc.start} of the line); convert the file to UTF-8"
            ) from None
        if n == 1:
            line = line.lstrip("\ufeff")
        line = line.replace("\r\n", "\n").replace("\r", "\n")
        yield n, line[:-1] if line.endswith("\n") else line


def _txt_documents(fh: IO[bytes], shard: Shard) -> Iterator[str]:
    """Documents separated by blank lines (lines of only spaces/tabs), stripped."""
    cur: list[str] = []
    for _, line in _lines(fh, shard):
        for sub in line.split("\n"):
            if sub.strip(" \t"):
                cur.append(sub)
            elif cur:
                doc = "\n".join(cur).strip()
                cur = []
                if doc:
                    yield doc
    doc = "\n".join(cur).strip()
    if doc:
        yield doc


def _jsonl_documents(fh: IO[bytes], shard: Shard) -> Iterator[str]:
    field = shard.text_field
    for n, line in _lines(fh, shard):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ClimbError(f"{shard.url}: line {n}: invalid JSON ({exc.msg})") from None
        if not isinstance(obj, dict) or field not in obj:
            raise ClimbError(
                f"{shard.url}: line {n}: no '{field}' field; each line must be an object with a string '{field}'"
            )
        text = obj[field]
        if not isinstance(text, str):
            raise ClimbError(f"{shard.url}: line {n}: '{field}' is not a string")
        if text.strip():
            yield text.strip()


def _parquet_documents(fh: Any, shard: Shard) -> Iterator[str]:
    if not _compressed(shard.url):
        yield from _parquet_rows(fh, shard)
        return
    import shutil
    import tempfile

    with tempfile.TemporaryFile() as spool:  # Parquet needs seeking: decompress to disk first
        shutil.copyfileobj(fh, spool, 1 << 20)
        spool.seek(0)
        yield from _parquet_rows(spool, shard)


def _parquet_rows(fh: Any, shard: Shard) -> Iterator[str]:
    """Rows of one Parquet file, a batch at a time. Decoded with the system allocator: Arrow's
    default (mimalloc) keeps the freed pages of every file read, so memory would creep with the
    number of shards."""
    import pyarrow as pa

    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield from _parquet_batches(fh, shard)
    finally:
        pa.set_memory_pool(previous)


def _parquet_batches(fh: Any, shard: Shard) -> Iterator[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(fh, buffer_size=1 << 20)
    except (pa.ArrowException, OSError) as exc:
        raise ClimbError(f"{shard.url}: not a readable Parquet file ({exc})") from None
    field = shard.text_field
    names = pf.schema_arrow.names
    if field not in names:
        raise ClimbError(f"{shard.url}: no '{field}' column (columns: {', '.join(names)})")
    col_type = pf.schema_arrow.field(field).type
    if not (pa.types.is_string(col_type) or pa.types.is_large_string(col_type)):
        raise ClimbError(f"{shard.url}: column '{field}' has type {col_type}, expected strings")
    try:
        for batch in pf.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=[field]):
            for s in batch.column(0).to_pylist():
                if isinstance(s, str) and s.strip():
                    yield s.strip()
    except (pa.ArrowException, OSError) as exc:
        raise ClimbError(f"{shard.url}: not a readable Parquet file ({exc})") from None


# ----------------------------------------------------------------------------- datasets
def _dataset_documents(shard: Shard) -> Iterator[str]:
    try:
        import datasets
    except ImportError:
        raise ClimbError(f"{shard.name}: Hugging Face datasets need the 'datasets' package; pip install 'climb[hf]'") from None  # fmt: skip
    field = shard.text_field
    try:
        if shard.kind == "disk":
            ds: Any = datasets.load_from_disk(shard.url)
            if isinstance(ds, datasets.DatasetDict):
                if shard.split not in ds:
                    raise ClimbError(
                        f"{shard.url}: no split '{shard.split}' (has: {', '.join(ds)})"
                    )
                ds = ds[shard.split]
            rows: Any = (
                r for b in ds.select_columns([field]).iter(batch_size=PARQUET_BATCH_ROWS) for r in b[field]
            )  # fmt: skip
        else:
            ds = datasets.load_dataset(shard.url, shard.config, split=shard.split, streaming=True)
            rows = (r[field] for r in ds)
        for text in rows:
            if isinstance(text, str) and text.strip():
                yield text.strip()
    except ClimbError:
        raise
    except KeyError:
        raise ClimbError(f"{shard.name}: no '{field}' column") from None
    except (
        Exception
    ) as exc:  # datasets raises many types (FileNotFoundError, DatasetNotFoundError …)
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClimbError(f"{shard.name}: cannot read the dataset ({msg})") from None


__all__ = [
    "COMPRESSIONS",
    "FORMATS",
    "Shard",
    "expand_paths",
    "file_shard",
    "split_name",
]
