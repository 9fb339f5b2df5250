"""OLMo-core: a source mixture (``SourceMixtureDatasetConfig``-like YAML).

OLMo-core's ``SourceMixtureDatasetConfig`` holds ``source_configs``, each a
``SourceMixtureConfig(source_name, target_ratio, paths, max_repetition_ratio)``, plus the total
``max_tokens``. The export mirrors those fields::

    source_mixture_config:
      max_tokens: 100000000000
      seed: 0
      source_configs:
      - source_name: en
        target_ratio: 0.41
        paths: [/data/en/part-0.npy, /data/en/part-1.npy]
        max_repetition_ratio: 4.0

to load with ``SourceMixtureConfig(**c) for c in cfg["source_mixture_config"]["source_configs"]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from climb.exports.mixture import Mixture


def render(mix: Mixture, *, fmt: str = "olmo", target: Path | None = None) -> str:
    import yaml

    configs: list[dict[str, Any]] = []
    for source, p in mix.nonzero():
        cfg: dict[str, Any] = {
            "source_name": source,
            "target_ratio": p,
            "paths": mix.path_list(source),
        }
        cfg["max_repetition_ratio"] = float(mix.max_epochs) if mix.max_epochs is not None else 1.0
        configs.append(cfg)
    body: dict[str, Any] = {"source_configs": configs, "seed": 0}
    if mix.tokens is not None:
        body = {"max_tokens": round(mix.tokens), **body}
    header = "# OLMo-core SourceMixtureDatasetConfig written by climb allocate\n"
    return header + str(
        yaml.safe_dump({"source_mixture_config": body}, sort_keys=False, allow_unicode=True)
    )
