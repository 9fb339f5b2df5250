"""torchtitan: a ``DatasetMixConfig`` of ``WeightedDataset``s, as a Python snippet.

torchtitan's data pipeline is configured with Python dataclasses (the TOML ``JobConfig`` and
``--job.custom_config_module`` are gone). Checked against ``torchtitan/components/data/``
(``dataset.py``: ``DatasetMixConfig(datasets=tuple[WeightedDataset, ...])``,
``WeightedDataset(dataset=..., weight=...)``, ``SingleDatasetConfig(source=..., processor=...,
post_filters=...)``; ``packing.py``: ``ConcatThenSplitPackingConfig(dataset=...)``; ``sources.py``:
``IndexedJsonlSource.Config(patterns=...)``) and ``torchtitan/hf_datasets/text_datasets.py``
(``TextProcessor.Config``) at pytorch/torchtitan ``b5bcd76`` (2026-08; not in the 0.3.0 wheel).

``DatasetMixConfig`` weights count the *elements* its children emit: documents for unpacked
children, fixed-length rows (= tokens) for packed ones. climb's proportions are token shares, so
the snippet packs each source before mixing (the "pack each child before mixing" recipe of
torchtitan's data README)::

    climb_mix = DatasetMixConfig(datasets=(
        WeightedDataset(dataset=packed(("/data/en/*.jsonl",)), weight=0.41),
        WeightedDataset(dataset=packed(("/data/de/*.jsonl",)), weight=0.59),
    ))

Use it as ``config.dataloader = GrainDataLoader.Config(dataset=climb_mix, repeat=True)``; the
budget is the number of steps × global batch × sequence length (``TOKENS`` in the snippet).
"""

from __future__ import annotations

from pathlib import Path

from climb.exports.mixture import Mixture

_TEMPLATE = """\
# torchtitan data mix written by climb allocate. climb's proportions are token shares, so every
# source is packed into fixed-length rows before mixing (DatasetMixConfig weights count rows).
from torchtitan.components.data import (
    ConcatThenSplitPackingConfig,
    DatasetMixConfig,
    IndexedJsonlSource,
    SingleDatasetConfig,
    WeightedDataset,
)
from torchtitan.hf_datasets.text_datasets import TextProcessor

SOURCES = {sources!r}
PATTERNS = {patterns!r}  # JSONL files (globs) of each source
WEIGHTS = {weights!r}
TOKENS = {tokens!r}  # the budget D*: train for ceil(TOKENS / (global batch x seq. length)) steps


def packed(patterns: tuple[str, ...]) -> ConcatThenSplitPackingConfig:
    return ConcatThenSplitPackingConfig(
        dataset=SingleDatasetConfig(
            source=IndexedJsonlSource.Config(patterns=patterns),
            processor=TextProcessor.Config(),
            post_filters=(lambda sample: sample is not None,),
        )
    )


climb_mix = DatasetMixConfig(
    datasets=tuple(
        WeightedDataset(dataset=packed(patterns), weight=weight)
        for patterns, weight in zip(PATTERNS, WEIGHTS, strict=True)
    )
)
# config.dataloader = GrainDataLoader.Config(dataset=climb_mix, repeat=True)
"""


def render(mix: Mixture, *, fmt: str = "torchtitan", target: Path | None = None) -> str:
    items = mix.nonzero()
    return _TEMPLATE.format(
        sources=[s for s, _ in items],
        patterns=[tuple(mix.path_list(s)) for s, _ in items],
        weights=[p for _, p in items],
        tokens=None if mix.tokens is None else round(mix.tokens),
    )
