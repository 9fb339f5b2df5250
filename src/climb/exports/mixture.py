"""The data an export needs: proportions per source and where each source's data lives."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from climb.errors import ClimbError

ZERO = 1e-12
"""Proportions at or below this are dropped by trainer formats."""


@dataclass
class Mixture:
    """Proportions (in source order) and data paths per source.

    Attributes:
        proportions: ``{source: p}``, summing to 1.
        paths: ``{source: [path, ...]}``; a source without an entry uses its own name as path.
        tokens: the token budget ``D*`` the mixture was optimized for (metadata).
        max_epochs: the epoch cap, if any (OLMo's ``max_repetition_ratio``).
        meta: free-form metadata written by ``json`` / ``yaml``.
    """

    proportions: dict[str, float]
    paths: dict[str, list[str]] = field(default_factory=dict)
    tokens: float | None = None
    max_epochs: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def path_list(self, source: str) -> list[str]:
        return self.paths.get(source) or [source]

    def single_path(self, source: str, fmt: str) -> str:
        paths = self.path_list(source)
        if len(paths) != 1:
            raise ClimbError(
                f"--paths: source '{source}' has {len(paths)} paths; the {fmt} format takes one "
                "path (prefix) per source: merge them or list them as separate sources"
            )
        return paths[0]

    def nonzero(self) -> list[tuple[str, float]]:
        """``(source, p)`` with ``p > 0``, renormalized to sum to 1 (the trainer formats' blend)."""
        items = [(s, float(p)) for s, p in self.proportions.items() if p > ZERO]
        if not items:
            raise ClimbError("the allocation gives every source 0; nothing to export")
        total = sum(p for _, p in items)
        return [(s, p / total) for s, p in items]


def read_paths(path: str | Path, sources: list[str] | None = None) -> dict[str, list[str]]:
    """``--paths map.yaml``: a YAML/JSON mapping ``source: path`` or ``source: [path, ...]``."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ClimbError(f"--paths: {path}: no such file")
    try:
        obj = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ClimbError(f"--paths: {path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(obj, Mapping):
        raise ClimbError(
            f"--paths: {path}: expected a mapping 'source: path' (one line per source)"
        )
    out: dict[str, list[str]] = {}
    for key, value in obj.items():
        name = str(key)
        if isinstance(value, str) and value.strip():
            out[name] = [value.strip()]
        elif (
            isinstance(value, list)
            and value
            and all(isinstance(v, str) and v.strip() for v in value)
        ):
            out[name] = [v.strip() for v in value]
        else:
            raise ClimbError(f"--paths: {path}: '{name}' must map to a path or a list of paths")
    if sources is not None:
        unknown = [s for s in out if s not in sources]
        if unknown:
            raise ClimbError(
                f"--paths: {path}: source '{unknown[0]}' is not in the law (sources: {', '.join(sources)})"
            )
        missing = [s for s in sources if s not in out]
        if missing:
            raise ClimbError(
                f"--paths: {path}: no path for source(s) {', '.join(missing)}; add them"
            )
    return out
