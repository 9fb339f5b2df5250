"""NeMo 2.0: the ``paths`` blend of ``PreTrainingDataModule``.

``PreTrainingDataModule(paths=[w1, path1, w2, path2, …])`` takes a flat list alternating weight
and dataset prefix (or ``{"train": [...], "validation": ..., "test": ...}``). The export is YAML::

    paths:
    - 0.41
    - /data/en_text_document
    - 0.59
    - /data/de_text_document

read with ``PreTrainingDataModule(paths=yaml.safe_load(open(f))["paths"], ...)``.
"""

from __future__ import annotations

from pathlib import Path

from climb.exports.mixture import Mixture


def render(mix: Mixture, *, fmt: str = "nemo", target: Path | None = None) -> str:
    import yaml

    flat: list[float | str] = []
    for source, p in mix.nonzero():
        flat += [p, mix.single_path(source, "nemo")]
    header = "# NeMo 2.0 PreTrainingDataModule(paths=...) blend written by climb allocate\n"
    return header + str(yaml.safe_dump({"paths": flat}, sort_keys=False, allow_unicode=True))
