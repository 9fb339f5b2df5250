"""Tokenizers that count a corpus's tokens (the data caps) and feed proxy training.

``load_tokenizer(spec)`` understands

* ``"bytes"`` (or ``None``): climb's default byte-level tokenizer, one token per UTF-8 byte;
* a path to a ``tokenizer.json`` (Hugging Face ``tokenizers``), or a local folder holding one;
* any other folder or name: the fast tokenizer of
  ``transformers.AutoTokenizer.from_pretrained(spec)`` when ``transformers`` is installed (a name
  may then be fetched from the Hugging Face Hub), else ``tokenizers.Tokenizer.from_pretrained``.

Every tokenizer counts without special tokens (no BOS/EOS) and exposes

* ``encode(data: bytes) -> np.ndarray`` — token ids of UTF-8 text (the trainer);
* ``count(documents) -> list[int]`` — tokens of each document (the data caps);
* ``token_bytes`` — UTF-8 bytes of each token id, so that losses can be reported in bits per byte:
  exact for byte-level vocabularies (GPT-2 style ``Ġ`` alphabet, and ``<0xNN>`` byte fallback);
  for other vocabularies the token's text with SentencePiece ``▁`` read as a space and a WordPiece
  ``##`` prefix dropped;
* ``key`` — identifies the vocabulary (for caches); ``spec`` — what to pass to
  :func:`load_tokenizer` to get it again (e.g. in another process).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from climb.errors import ClimbError

BYTE_VOCAB = 256
ENCODE_CHUNK_CHARS = 1 << 16
"""The trainer's text is encoded in pieces of about this many characters, cut after a newline."""
_BYTE_FALLBACK = re.compile(r"^<0x[0-9A-Fa-f]{2}>$")


class Tokenizer(Protocol):
    key: str
    spec: str
    vocab_size: int
    token_bytes: np.ndarray

    def encode(self, data: bytes) -> np.ndarray: ...

    def count(self, documents: Sequence[str]) -> list[int]: ...


class ByteTokenizer:
    """Token = byte value (vocabulary 256): a document has as many tokens as UTF-8 bytes."""

    key = "bytes"
    spec = "bytes"
    vocab_size = BYTE_VOCAB
    token_bytes = np.ones(BYTE_VOCAB, dtype=np.int64)

    def encode(self, data: bytes) -> np.ndarray:
        return np.frombuffer(data, dtype=np.uint8)

    def count(self, documents: Sequence[str]) -> list[int]:
        return [len(d.encode("utf-8")) for d in documents]


class HFTokenizer:
    """A Hugging Face ``tokenizers.Tokenizer`` (from a ``tokenizer.json``, or a fast
    ``transformers`` tokenizer's backend), used without special tokens."""

    def __init__(self, tok: Any, *, spec: str, key: str | None = None) -> None:
        self._tok = tok
        self.spec = spec
        blob = tok.to_str()
        self.key = key or "hf-" + hashlib.sha256(blob.encode()).hexdigest()[:16]
        self.vocab_size = int(tok.get_vocab_size(with_added_tokens=True))
        self.token_bytes = _token_bytes(tok, json.loads(blob), self.vocab_size)
        self._dtype = np.uint16 if self.vocab_size <= 1 << 16 else np.uint32

    def encode(self, data: bytes) -> np.ndarray:
        """Token ids of UTF-8 ``data``, encoded in ~64k-character pieces cut after newlines."""
        text = data.decode("utf-8", errors="replace")
        pieces: list[str] = []
        start = 0
        while start < len(text):
            stop = text.find("\n", start + ENCODE_CHUNK_CHARS)
            stop = len(text) if stop < 0 else stop + 1
            pieces.append(text[start:stop])
            start = stop
        encoded = self._tok.encode_batch(pieces, add_special_tokens=False)
        ids = [np.asarray(e.ids, dtype=self._dtype) for e in encoded]
        return np.concatenate(ids) if ids else np.zeros(0, dtype=self._dtype)

    def count(self, documents: Sequence[str]) -> list[int]:
        if not documents:
            return []
        encoded = self._tok.encode_batch(list(documents), add_special_tokens=False)
        return [len(e.ids) for e in encoded]


def _byte_level(cfg: dict[str, Any]) -> bool:
    """Whether a ``tokenizer.json`` maps bytes to the GPT-2 alphabet (a ``ByteLevel`` step)."""

    def has(node: Any) -> bool:
        if isinstance(node, dict):
            return node.get("type") == "ByteLevel" or any(has(v) for v in node.values())
        if isinstance(node, list):
            return any(has(v) for v in node)
        return False

    return has(cfg.get("pre_tokenizer")) or has(cfg.get("decoder"))


def _token_bytes(tok: Any, cfg: dict[str, Any], vocab_size: int) -> np.ndarray:
    """UTF-8 bytes of every token id (0 for special tokens, which ``encode`` never emits)."""
    out = np.zeros(vocab_size, dtype=np.int64)
    special = {int(i) for i, t in tok.get_added_tokens_decoder().items() if t.special}
    if _byte_level(cfg):
        from tokenizers import pre_tokenizers

        alphabet = set(pre_tokenizers.ByteLevel.alphabet())
        for token, idx in tok.get_vocab(with_added_tokens=True).items():
            if idx < vocab_size and idx not in special:
                out[idx] = sum(1 if ch in alphabet else len(ch.encode()) for ch in token)
        return out
    wordpiece = "##" if (cfg.get("decoder") or {}).get("type") == "WordPiece" else None
    for token, idx in tok.get_vocab(with_added_tokens=True).items():
        if idx >= vocab_size or idx in special:
            continue
        if _BYTE_FALLBACK.match(token):
            out[idx] = 1
            continue
        if wordpiece and token.startswith(wordpiece):
            token = token[len(wordpiece) :]
        out[idx] = len(token.replace("\u2581", " ").encode("utf-8"))
    return out


@functools.lru_cache(maxsize=8)
def load_tokenizer(spec: str | None = None) -> ByteTokenizer | HFTokenizer:
    """The tokenizer ``spec`` names (see the module docstring); loaded once per process.

    Raises :class:`ClimbError` (one line, naming ``spec``) when it cannot be loaded.
    """
    if spec is None or spec == "bytes":
        return ByteTokenizer()
    if not isinstance(spec, str) or not spec.strip():
        raise ClimbError(f"tokenizer: expected 'bytes', a tokenizer.json, a folder or a name, got {spec!r}")  # fmt: skip
    path = Path(spec).expanduser()
    json_file = path / "tokenizer.json" if path.is_dir() else path
    if json_file.is_file():
        return _from_json_file(json_file, spec)
    if spec.endswith(".json"):
        raise ClimbError(f"tokenizer {spec}: no such file")
    # a local folder is named by its absolute path, so other processes (Ray workers) find it
    return _from_pretrained(str(path.resolve()) if path.is_dir() else spec)


def _from_json_file(path: Path, spec: str) -> HFTokenizer:
    try:
        from tokenizers import Tokenizer as HFTok
    except ImportError:
        raise ClimbError(
            f"tokenizer {spec}: reading a tokenizer.json needs the 'tokenizers' package; pip install tokenizers"
        ) from None
    try:
        tok = HFTok.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception for malformed files
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClimbError(f"tokenizer {path}: cannot load it ({msg})") from None
    return HFTokenizer(tok, spec=str(path.resolve()))


def _from_pretrained(spec: str) -> HFTokenizer:
    """A tokenizer folder without ``tokenizer.json``, or a Hub name."""
    import importlib.util

    try:
        if importlib.util.find_spec("transformers") is not None:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(spec)
            backend = getattr(tok, "backend_tokenizer", None)
            if backend is None:
                raise ClimbError(
                    f"tokenizer {spec}: transformers has no fast (tokenizers) version of it; "
                    "save one as tokenizer.json and give that"
                )
            return HFTokenizer(backend, spec=spec)
        from tokenizers import Tokenizer as HFTok

        return HFTokenizer(HFTok.from_pretrained(spec), spec=spec)
    except ClimbError:
        raise
    except ImportError:
        raise ClimbError(f"tokenizer {spec}: loading a tokenizer by name needs 'transformers' or 'tokenizers'; pip install transformers") from None  # fmt: skip
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClimbError(
            f"tokenizer {spec}: cannot load it as a tokenizer.json, folder or name ({msg})"
        ) from None


__all__ = [
    "BYTE_VOCAB",
    "ByteTokenizer",
    "HFTokenizer",
    "Tokenizer",
    "load_tokenizer",
]
