"""Users' YAML and JSON files: reading with one-line errors (plans, manifests, mappings, tables,
law / allocation / verification JSON) and writing JSON atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from climb.errors import ClimbError


def parse_yaml(text: str, origin: str) -> Any:
    """``yaml.safe_load(text)``; a syntax error becomes one line naming ``origin`` and the line."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ClimbError(f"{origin}: not valid YAML{where}: {problem}") from None


def read_yaml(path: str | Path, what: str) -> Any:
    """The parsed YAML/JSON file at ``path``; errors read ``"{what}: {path}: …"`` (missing file,
    a folder, not UTF-8, a syntax error with its line)."""
    path = Path(path)
    if not path.exists():
        raise ClimbError(f"{what}: {path}: no such file")
    if path.is_dir():
        raise ClimbError(f"{what}: {path}: is a directory, expected a YAML file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ClimbError(f"{what}: {path}: not UTF-8 text; expected a YAML file") from None
    return parse_yaml(text, f"{what}: {path}")


def read_json(path: str | Path, what: str) -> Any:
    """The parsed JSON file at ``path``; errors read ``"{path}: no such {what} file"`` and
    ``"{path}: not valid JSON (…)"``."""
    path = Path(path)
    if not path.is_file():
        raise ClimbError(f"{path}: no such {what} file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ClimbError(f"{path}: not valid JSON ({exc})") from None


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON through a temporary file (a failure leaves no half file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


__all__ = ["parse_yaml", "read_json", "read_yaml", "write_json"]
