"""Megatron-Bridge (NeMo's successor for Megatron models): the flat ``data_paths`` blend.

Megatron-Bridge takes the same flat list as Megatron-LM's ``--data-path``, alternating weight and
dataset prefix: ``get_blend_fields_from_data_paths(data_paths=[...])``
(``src/megatron/bridge/recipes/utils/dataset_utils.py``) or ``GPTDatasetConfig(data_path=[...])``
(``src/megatron/bridge/training/config.py``); both end in Megatron-Core's ``get_blend_from_list``,
which reads ``float(weight)`` and ``prefix.strip()``. The export is YAML with the weights as
strings (the parameter is typed ``list[str]``)::

    data_paths:
    - '0.41'
    - /data/en_text_document
    - '0.59'
    - /data/de_text_document

It replaces the NeMo 2.0 ``llm.PreTrainingDataModule(paths=...)`` export (that API is gone).
"""

from __future__ import annotations

from pathlib import Path

from climb.exports.mixture import Mixture


def render(mix: Mixture, *, fmt: str = "megatron-bridge", target: Path | None = None) -> str:
    import yaml

    flat: list[str] = []
    for source, p in mix.nonzero():
        flat += [repr(p), mix.single_path(source, fmt)]
    header = (
        "# Megatron-Bridge blend written by climb allocate: pass the list as\n"
        "# get_blend_fields_from_data_paths(data_paths=...) or GPTDatasetConfig(data_path=...)\n"
    )
    return header + str(yaml.safe_dump({"data_paths": flat}, sort_keys=False, allow_unicode=True))
