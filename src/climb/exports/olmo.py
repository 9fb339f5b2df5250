"""OLMo-core: a source-mixture YAML for ``SourceMixtureList.from_yaml``.

OLMo-core (checked against ``ai2-olmo-core`` 3.0.0, ``olmo_core/data/source_mixture.py``) keeps
the list of sources apart from how it is materialized: ``SourceMixtureList`` holds
``sources: List[SourceMixtureConfig]`` and loads from a YAML whose top level is ``sources:``
(``Config.from_yaml`` = ``yaml.safe_load`` + ``Config.from_dict``); the dataset is then
``SourceMixtureDatasetConfig(source_list=..., requested_tokens=D*, global_batch_size=...)``.
Each source is ``SourceMixtureConfig(source_name, target_ratio, paths, max_repetition_ratio,
max_source_fraction)``; the ratios must sum to 1 and each lie in (0, 1]::

    sources:
    - source_name: en
      target_ratio: 0.41
      paths: [/data/en/part-0.npy, /data/en/part-1.npy]
      max_repetition_ratio: 4.0

``max_repetition_ratio`` caps the tokens OLMo-core may take from a source at
``population × max_repetition_ratio`` (its default, 1.0, means no repetition at all). With an
epoch cap ``E`` the allocation guaranteed ``p_k D* ≤ E U_k``, the same constraint, so the export
writes ``E``. Without one the allocation placed no limit on repetition, so the export must not add
one: it writes ``D*`` (as a ratio), which never binds (a source of at least one token may then
supply the whole budget) — OLMo-core rejects an infinite ratio when it converts the cap to an int.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from climb.errors import ClimbError
from climb.exports.mixture import Mixture


def repetition_ratio(mix: Mixture) -> float:
    """``max_repetition_ratio``: the epoch cap, or ``D*`` (a cap that never binds) without one."""
    if mix.max_epochs is not None:
        return max(1.0, float(mix.max_epochs))
    if mix.tokens is None:
        raise ClimbError(
            "olmo export: give max_epochs or tokens (without either, max_repetition_ratio is unknown)"
        )
    return max(1.0, float(round(mix.tokens)))


def render(mix: Mixture, *, fmt: str = "olmo", target: Path | None = None) -> str:
    import yaml

    ratio = repetition_ratio(mix)
    sources: list[dict[str, Any]] = [
        {
            "source_name": source,
            "target_ratio": p,
            "paths": mix.path_list(source),
            "max_repetition_ratio": ratio,
        }
        for source, p in mix.nonzero()
    ]
    budget = "" if mix.tokens is None else f"requested_tokens={round(mix.tokens)}, "
    cap = (
        f"the epoch cap {mix.max_epochs:g} of the allocation (p_k D* <= E U_k)"
        if mix.max_epochs is not None
        else "no epoch cap in the allocation: the ratio is D*, which never binds"
    )
    header = (
        "# OLMo-core source mixture written by climb allocate; load with\n"
        "#   SourceMixtureDatasetConfig(source_list=SourceMixtureList.from_yaml(path),\n"
        f"#                              {budget}global_batch_size=...)\n"
        f"# max_repetition_ratio: {cap}\n"
    )
    return header + str(yaml.safe_dump({"sources": sources}, sort_keys=False, allow_unicode=True))
