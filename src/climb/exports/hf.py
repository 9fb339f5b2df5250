"""Hugging Face ``datasets``: ``interleave_datasets`` with token shares and a ``take`` for the budget.

``interleave_datasets(datasets, probabilities=q)`` draws *examples*: source ``i`` supplies a
fraction ``q_i`` of the examples, so on raw documents of different lengths climb's token shares
``p_i`` would become document shares. The export corrects for it in one of two ways:

* **known mean tokens per example** ``m_i`` (``Mixture.tokens_per_example``): the example
  probabilities are ``q_i = (p_i / m_i) / Σ_j (p_j / m_j)``, which give source ``i`` an expected
  ``q_i m_i / Σ_j q_j m_j = p_i`` of the tokens, and the budget ``D*`` is
  ``⌈D* / Σ_i q_i m_i⌉`` examples;
* **pack first** (otherwise): every source is tokenized and packed into rows of ``BLOCK_SIZE``
  tokens before interleaving, so an example is ``BLOCK_SIZE`` tokens, ``q = p`` and the budget
  is ``⌈D* / BLOCK_SIZE⌉`` rows (the snippet's ``mixture(tokenizer)`` does it).

Each source is repeated without end (``.repeat(None)``) and the mix is cut with ``.take(n)``:
the stream is exactly the budget, and a source is repeated only as often as its share needs
(the allocation's epoch caps hold). ``stopping_strategy="all_exhausted"`` is not used: it stops
when every source has been seen once, whatever the budget.

For an output file ending in ``.json`` the export is the numbers only
(``sources``, ``datasets``, ``token_shares``, ``probabilities``, ``tokens``, and
``tokens_per_example`` + ``examples`` or ``block_size`` + ``rows``); otherwise a Python snippet.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from climb.errors import ClimbError
from climb.exports.mixture import Mixture

BLOCK_SIZE = 2048
"""Tokens per packed row in the pack-first recipe (edit ``BLOCK_SIZE`` in the snippet)."""

_LOAD = '''\
import math
from pathlib import Path

from datasets import IterableDataset, interleave_datasets, load_dataset

BUILDERS = {{".json": "json", ".jsonl": "json", ".parquet": "parquet", ".txt": "text"}}

SOURCES = {sources!r}
DATASETS = {datasets!r}
TOKEN_SHARES = {shares!r}  # climb's proportions: shares of the tokens of the budget
TOKENS = {tokens!r}  # the budget D*


def load(path: str) -> IterableDataset:
    """A data file (or glob) by its extension, else a folder or a Hub dataset name."""
    suffixes = [s for s in Path(path).suffixes if s not in (".gz", ".xz", ".zst", ".bz2")]
    if suffixes and suffixes[-1] in BUILDERS:
        return load_dataset(BUILDERS[suffixes[-1]], data_files=path, split="train", streaming=True)
    return load_dataset(path, split="train", streaming=True)

'''

_BY_EXAMPLE = '''\
TOKENS_PER_EXAMPLE = {tpe!r}  # mean tokens per example of each dataset
# interleave_datasets draws examples: q_i ∝ p_i / m_i gives source i a share p_i of the tokens
_W = [p / m for p, m in zip(TOKEN_SHARES, TOKENS_PER_EXAMPLE, strict=True)]
PROBABILITIES = [w / sum(_W) for w in _W]
EXAMPLES = math.ceil(TOKENS / sum(q * m for q, m in zip(PROBABILITIES, TOKENS_PER_EXAMPLE)))


def mixture(seed: int = 0) -> IterableDataset:
    """The mixed stream: EXAMPLES examples (≈ TOKENS tokens), sources repeated as needed."""
    streams = [load(path).repeat(None) for path in DATASETS]
    return interleave_datasets(streams, probabilities=PROBABILITIES, seed=seed).take(EXAMPLES)
'''

_PACKED = '''\
BLOCK_SIZE = {block}  # tokens per packed row
TEXT_FIELD = "text"


def packed(ds: IterableDataset, tokenizer, block_size: int) -> IterableDataset:
    """Tokenize and cut into rows of block_size tokens (the tail of each batch is dropped)."""

    def rows(batch: dict) -> dict:
        ids = [t for doc in tokenizer(batch[TEXT_FIELD])["input_ids"] for t in doc]
        n = len(ids) // block_size * block_size
        return {{"input_ids": [ids[i : i + block_size] for i in range(0, n, block_size)]}}

    return ds.select_columns([TEXT_FIELD]).map(rows, batched=True, remove_columns=[TEXT_FIELD])


def mixture(tokenizer, block_size: int = BLOCK_SIZE, seed: int = 0) -> IterableDataset:
    """The mixed stream of packed rows: ceil(TOKENS / block_size) rows, token shares TOKEN_SHARES."""
    streams = [packed(load(path), tokenizer, block_size).repeat(None) for path in DATASETS]
    mixed = interleave_datasets(streams, probabilities=TOKEN_SHARES, seed=seed)
    return mixed.take(math.ceil(TOKENS / block_size))
'''


def example_probabilities(shares: list[float], tokens_per_example: list[float]) -> list[float]:
    """``q_i = (p_i / m_i) / Σ_j (p_j / m_j)``: example probabilities giving token shares ``p``."""
    w = [p / m for p, m in zip(shares, tokens_per_example, strict=True)]
    return [x / sum(w) for x in w]


def _numbers(mix: Mixture) -> dict[str, Any]:
    items = mix.nonzero()
    sources = [s for s, _ in items]
    shares = [p for _, p in items]
    if mix.tokens is None:
        raise ClimbError("hf export: tokens (the budget D*) is needed for the take")
    obj: dict[str, Any] = {
        "sources": sources,
        "datasets": [mix.single_path(s, "hf") for s in sources],
        "token_shares": shares,
        "tokens": round(mix.tokens),
    }
    if mix.tokens_per_example:
        missing = [s for s in sources if s not in mix.tokens_per_example]
        if missing:
            raise ClimbError(f"tokens_per_example: no entry for source(s) {', '.join(missing)}")
        tpe = [mix.tokens_per_example[s] for s in sources]
        q = example_probabilities(shares, tpe)
        obj |= {
            "tokens_per_example": tpe,
            "probabilities": q,
            "examples": math.ceil(obj["tokens"] / sum(a * m for a, m in zip(q, tpe))),
        }
    else:
        obj |= {
            "block_size": BLOCK_SIZE,
            "probabilities": shares,
            "rows": math.ceil(obj["tokens"] / BLOCK_SIZE),
        }
    return obj


def render(mix: Mixture, *, fmt: str = "hf", target: Path | None = None) -> str:
    obj = _numbers(mix)
    if target is not None and target.suffix.lower() == ".json":
        return json.dumps(obj, indent=2) + "\n"
    head = "# Hugging Face datasets mixture written by climb allocate: mixture() is the stream\n"
    body = _LOAD.format(
        sources=obj["sources"], datasets=obj["datasets"], shares=obj["token_shares"],
        tokens=obj["tokens"],
    )  # fmt: skip
    if "tokens_per_example" in obj:
        return head + body + "\n" + _BY_EXAMPLE.format(tpe=obj["tokens_per_example"])
    return head + body + "\n" + _PACKED.format(block=BLOCK_SIZE)
