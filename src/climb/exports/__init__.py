"""Exports: an allocation written the way a trainer reads its data mixture.

One module per format; each has ``render(mix: Mixture, *, fmt, target) -> str``.
:func:`export_mixture` picks the module by name. Trainer formats drop sources with proportion 0
(trainers reject or waste work on empty blends) and renormalize the rest; ``json`` and ``yaml``
keep every source. Each trainer module's docstring names the trainer source it was checked against.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from climb.errors import ClimbError
from climb.exports.mixture import Mixture, read_paths, read_tokens_per_example

FORMATS: dict[str, str] = {
    "json": "climb.exports.plain",
    "yaml": "climb.exports.plain",
    "megatron": "climb.exports.megatron",
    "megatron-args": "climb.exports.megatron",
    "megatron-bridge": "climb.exports.megatron_bridge",
    "torchtitan": "climb.exports.torchtitan",
    "olmo": "climb.exports.olmo",
    "hf": "climb.exports.hf",
}
"""Format name → module with ``render(mix, fmt, target)``."""


def export_mixture(mix: Mixture, fmt: str, *, target: str | Path | None = None) -> str:
    """The text of ``mix`` in format ``fmt`` (``target``, the output file, may pick a flavour:
    ``hf`` writes JSON for a ``.json`` file and a Python snippet otherwise)."""
    if fmt not in FORMATS:
        raise ClimbError(f"fmt: unknown export format '{fmt}'; choose from {', '.join(FORMATS)}")
    module = importlib.import_module(FORMATS[fmt])
    text: str = module.render(mix, fmt=fmt, target=None if target is None else Path(target))
    return text


def write_text_atomic(path: str | Path, text: str, what: str = "path") -> Path:
    """Write ``text`` to ``path`` through a temporary file, so a failure leaves no half file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise ClimbError(f"{what}: cannot write {path} ({exc.strerror})") from None
    return path


def write_export(mix: Mixture, fmt: str, path: str | Path) -> Path:
    """Write the export to ``path`` (atomically)."""
    return write_text_atomic(path, export_mixture(mix, fmt, target=path))


__all__ = [
    "FORMATS",
    "Mixture",
    "export_mixture",
    "read_paths",
    "read_tokens_per_example",
    "write_export",
    "write_text_atomic",
]
