"""Tokenizers for proxy runs: byte-level (default), a byte-level BPE trained on the corpus, or the
user's own tokenizer (a ``tokenizer.json``, a tokenizer folder or a Hugging Face name; see
:func:`climb.data.tokenizer.load_tokenizer`, which also counts the corpus's data caps).

Losses are always reported in bits per byte so that languages and tokenizers compare:

    bits/byte = Σ nats over predicted tokens / (Σ UTF-8 bytes of those tokens · ln 2)

Every tokenizer therefore exposes ``token_bytes``, the byte length of each token id (1 for the byte
tokenizer; for byte-level BPE, the length of the token's byte-alphabet string).

The BPE tokenizer (HF ``tokenizers``) is trained deterministically on an equal-size sample of every
corpus source's training split (so it does not depend on a run's mixture) and cached on disk under
``$CLIMB_CACHE_DIR`` (default ``~/.cache/climb``), keyed by the vocabulary size and a hash of the
sample; encoded training splits are cached there too.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import Protocol

import numpy as np

from climb.data.tokenizer import ByteTokenizer, HFTokenizer, load_tokenizer
from climb.errors import ClimbError
from climb.proxy.config import CorpusLike, ModelConfig

BPE_SAMPLE_BYTES = 1 << 20
"""Training-split bytes per source used to train the BPE tokenizer."""
BPE_SAMPLE_PIECES = 16
"""The sample is this many evenly spaced slices of the split (not just its head)."""
_CACHE_VERSION = "v1"
_MEMO_MAX_BYTES = 2 << 30
_memo: dict[tuple[str, str], np.ndarray] = {}


class TokenizerLike(Protocol):
    key: str
    vocab_size: int
    token_bytes: np.ndarray

    def encode(self, data: bytes) -> np.ndarray: ...


def cache_dir() -> Path:
    """``$CLIMB_CACHE_DIR`` or ``~/.cache/climb``."""
    return Path(os.environ.get("CLIMB_CACHE_DIR") or Path.home() / ".cache" / "climb")


def utf8_prefix(data: bytes, n: int) -> bytes:
    """The longest prefix of at most ``n`` bytes that ends on a UTF-8 character boundary."""
    if n >= len(data):
        return data
    end = n
    while end > 0 and (data[end] & 0xC0) == 0x80:  # data[end] continues a character
        end -= 1
    return data[:end]


def _utf8_slice(data: bytes, start: int, stop: int) -> bytes:
    while start < len(data) and (data[start] & 0xC0) == 0x80:
        start += 1
    return utf8_prefix(data[start:], max(0, stop - start))


BPETokenizer = HFTokenizer
"""The trained BPE is a Hugging Face tokenizer like the user's own (:class:`HFTokenizer`)."""


def bpe_sample(corpus: CorpusLike, sample_bytes: int = BPE_SAMPLE_BYTES) -> list[str]:
    """Deterministic training sample: ``BPE_SAMPLE_PIECES`` evenly spaced slices per source."""
    texts: list[str] = []
    for src in sorted(corpus.sources):
        data = corpus.text_bytes(src, "train")
        if len(data) <= sample_bytes:
            texts.append(data.decode("utf-8", errors="replace"))
            continue
        piece = sample_bytes // BPE_SAMPLE_PIECES
        stride = (len(data) - piece) // max(1, BPE_SAMPLE_PIECES - 1)
        for k in range(BPE_SAMPLE_PIECES):
            chunk = _utf8_slice(data, k * stride, k * stride + piece)
            texts.append(chunk.decode("utf-8", errors="replace"))
    return texts


def train_bpe(
    corpus: CorpusLike, vocab_size: int, *, sample_bytes: int = BPE_SAMPLE_BYTES
) -> BPETokenizer:
    """Train (or load from the cache) a byte-level BPE tokenizer of ``vocab_size`` tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    texts = bpe_sample(corpus, sample_bytes)
    h = hashlib.sha256(f"{_CACHE_VERSION}:{vocab_size}:{sample_bytes}".encode())
    for t in texts:
        h.update(hashlib.sha256(t.encode()).digest())
    key = f"bpe{vocab_size}-{h.hexdigest()[:16]}"
    path = cache_dir() / "tokenizers" / f"{key}.json"
    if path.exists():
        return HFTokenizer(Tokenizer.from_file(str(path)), spec=str(path), key=key)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    _atomic_write(path, tok.to_str().encode())
    return HFTokenizer(tok, spec=str(path), key=key)


def get_tokenizer(model: ModelConfig, corpus: CorpusLike) -> ByteTokenizer | HFTokenizer:
    """The tokenizer that ``model.tokenizer`` names: bytes, BPE (trained on ``corpus``, cached)
    or the user's (:func:`climb.data.tokenizer.load_tokenizer`)."""
    if model.tokenizer == "bytes":
        return ByteTokenizer()
    if model.tokenizer != "bpe":
        return load_tokenizer(model.tokenizer)
    try:
        import tokenizers  # noqa: F401
    except ImportError:
        raise ClimbError(
            "model.tokenizer='bpe' needs the 'tokenizers' package; pip install 'climb[train]'"
        ) from None
    return train_bpe(corpus, model.bpe_vocab)


def encode_cached(tok: ByteTokenizer | HFTokenizer, data: bytes) -> np.ndarray:
    """``tok.encode(data)``, memoised in-process and (for BPE) on disk by content hash."""
    if isinstance(tok, ByteTokenizer):
        return tok.encode(data)
    digest = hashlib.sha256(data).hexdigest()[:24]
    memo_key = (tok.key, digest)
    if memo_key in _memo:
        return _memo[memo_key]
    path = cache_dir() / "tokens" / f"{tok.key}-{digest}.npy"
    ids: np.ndarray | None = None
    if path.exists():
        try:
            ids = np.load(path)
        except (OSError, ValueError):
            ids = None
    if ids is None:
        ids = tok.encode(data)
        buf = io.BytesIO()
        np.save(buf, ids)
        _atomic_write(path, buf.getvalue())
    if sum(a.nbytes for a in _memo.values()) + ids.nbytes > _MEMO_MAX_BYTES:
        _memo.clear()
    _memo[memo_key] = ids
    return ids


def _atomic_write(path: Path, blob: bytes) -> None:
    """Write via a temporary file + rename, so parallel runs never read a half-written cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache only costs recomputation
