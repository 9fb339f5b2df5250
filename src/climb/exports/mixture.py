"""The data an export needs: proportions per source and where each source's data lives."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from climb.data.userfiles import parse_yaml
from climb.errors import ClimbError

ZERO = 1e-12
"""Proportions at or below this are dropped by trainer formats."""


@dataclass
class Mixture:
    """Proportions (in source order) and data paths per source.

    Attributes:
        proportions: ``{source: p}``, summing to 1 — shares of the *tokens* of the budget.
        paths: ``{source: [path, ...]}``; a source without an entry uses its own name as path.
        tokens: the token budget ``D*`` the mixture was optimized for.
        max_epochs: the epoch cap ``E`` the allocation respected (``p_k D* ≤ E U_k``), or None
            when the allocation had no repetition cap.
        tokens_per_example: ``{source: mean tokens per example}`` of each source's dataset; the
            ``hf`` export turns token shares into example probabilities with it.
        meta: free-form metadata written by ``json`` / ``yaml``.
    """

    proportions: dict[str, float]
    paths: dict[str, list[str]] = field(default_factory=dict)
    tokens: float | None = None
    max_epochs: float | None = None
    tokens_per_example: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def path_list(self, source: str) -> list[str]:
        return self.paths.get(source) or [source]

    def single_path(self, source: str, fmt: str) -> str:
        paths = self.path_list(source)
        if len(paths) != 1:
            raise ClimbError(
                f"paths: source '{source}' has {len(paths)} paths; the {fmt} format takes one "
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


def _read_mapping(path: Path, what: str) -> Mapping[Any, Any]:
    """A YAML/JSON mapping, or a two-column CSV (header row, then ``source,value``)."""

    if not path.is_file():
        raise ClimbError(f"{what}: {path}: no such file")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        import csv

        rows = list(csv.reader(text.splitlines()))
        if len(rows) < 2 or any(len(r) != 2 for r in rows if r):
            raise ClimbError(f"{what}: {path}: expected a header and rows 'source,value'")
        return {r[0].strip(): r[1].strip() for r in rows[1:] if r}
    obj = parse_yaml(text, f"{what}: {path}")
    if not isinstance(obj, Mapping):
        raise ClimbError(f"{what}: {path}: expected a mapping 'source: value' (one per source)")
    return obj


def _check_sources(out: Mapping[str, Any], path: Path, what: str, sources: list[str]) -> None:
    unknown = [s for s in out if s not in sources]
    if unknown:
        raise ClimbError(
            f"{what}: {path}: source '{unknown[0]}' is not in the law (sources: {', '.join(sources)})"
        )
    missing = [s for s in sources if s not in out]
    if missing:
        raise ClimbError(f"{what}: {path}: no entry for source(s) {', '.join(missing)}; add them")


def read_paths(path: str | Path, sources: list[str] | None = None) -> dict[str, list[str]]:
    """A YAML/JSON mapping ``source: path`` or ``source: [path, ...]`` (``paths`` of a Mixture)."""
    path = Path(path)
    obj = _read_mapping(path, "paths")
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
            raise ClimbError(f"paths: {path}: '{name}' must map to a path or a list of paths")
    if sources is not None:
        _check_sources(out, path, "paths", sources)
    return out


def read_tokens_per_example(path: str | Path, sources: list[str] | None = None) -> dict[str, float]:
    """Mean tokens per example of each source: a ``source,tokens_per_example`` CSV or a mapping."""
    path = Path(path)
    out: dict[str, float] = {}
    for key, value in _read_mapping(path, "tokens_per_example").items():
        try:
            m = float(value)
        except (TypeError, ValueError):
            m = float("nan")
        if not m > 0 or m == float("inf"):
            raise ClimbError(
                f"tokens_per_example: {path}: '{key}' must be a positive number of tokens, got {value!r}"
            )
        out[str(key)] = m
    if sources is not None:
        _check_sources(out, path, "tokens_per_example", sources)
    return out
