"""torchtitan: a dataset-mix section for a job-config TOML.

torchtitan's ``JobConfig`` has one ``[training] dataset`` and no built-in weighted mix; mixtures
are added by extending the config (``--job.custom_config_module``) with a section like the one
written here, and building the dataloader with ``datasets.interleave_datasets`` or a weighted
sampler over the listed datasets::

    [climb_mixture]
    datasets = ["/data/en", "/data/de"]
    weights = [0.41, 0.59]
    sources = ["en", "de"]

Read with ``tomllib``; ``weights[i]`` belongs to ``datasets[i]`` and the weights sum to 1.
"""

from __future__ import annotations

import json
from pathlib import Path

from climb.exports.mixture import Mixture


def _toml_list(values: list[str] | list[float]) -> str:
    return (
        "["
        + ", ".join(json.dumps(v) if isinstance(v, str) else repr(float(v)) for v in values)
        + "]"
    )


def render(mix: Mixture, *, fmt: str = "torchtitan", target: Path | None = None) -> str:
    items = mix.nonzero()
    sources = [s for s, _ in items]
    lines = [
        "# torchtitan dataset mix written by climb allocate (custom JobConfig section)",
        "[climb_mixture]",
        f"sources = {_toml_list(sources)}",
        f"datasets = {_toml_list([mix.single_path(s, 'torchtitan') for s in sources])}",
        f"weights = {_toml_list([p for _, p in items])}",
    ]
    if mix.tokens is not None:
        lines.append(f"tokens = {float(mix.tokens)!r}")
    return "\n".join(lines) + "\n"
