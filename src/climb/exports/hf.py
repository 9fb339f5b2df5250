"""Hugging Face ``datasets``: probabilities for ``interleave_datasets``.

``interleave_datasets(datasets, probabilities=[...], seed=..., stopping_strategy=...)`` samples
from ``datasets[i]`` with probability ``probabilities[i]``. For an output file ending in ``.json``
the export is ``{"datasets": [...], "probabilities": [...], "sources": [...]}``; otherwise a
Python snippet that loads each dataset and interleaves them::

    from datasets import interleave_datasets, load_dataset

    DATASETS = ["/data/en", "/data/de"]
    PROBABILITIES = [0.41, 0.59]
    mixed = interleave_datasets(
        [load_dataset(path, split="train", streaming=True) for path in DATASETS],
        probabilities=PROBABILITIES, seed=0, stopping_strategy="all_exhausted",
    )
"""

from __future__ import annotations

import json
from pathlib import Path

from climb.exports.mixture import Mixture


def render(mix: Mixture, *, fmt: str = "hf", target: Path | None = None) -> str:
    items = mix.nonzero()
    sources = [s for s, _ in items]
    datasets = [mix.single_path(s, "hf") for s in sources]
    probs = [p for _, p in items]
    if target is not None and target.suffix.lower() == ".json":
        return (
            json.dumps({"sources": sources, "datasets": datasets, "probabilities": probs}, indent=2)
            + "\n"
        )
    return (
        "# Hugging Face datasets mixture written by climb allocate\n"
        "from datasets import interleave_datasets, load_dataset\n\n"
        f"SOURCES = {sources!r}\n"
        f"DATASETS = {datasets!r}\n"
        f"PROBABILITIES = {probs!r}\n\n"
        "mixed = interleave_datasets(\n"
        '    [load_dataset(path, split="train", streaming=True) for path in DATASETS],\n'
        '    probabilities=PROBABILITIES, seed=0, stopping_strategy="all_exhausted",\n'
        ")\n"
    )
