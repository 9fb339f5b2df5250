"""Architecture rules that the layout promises (issue 8): checked on the source, so they can fail."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "climb"
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
MESSAGE_CALLS = {"ClimbError", "ClimbWarning", "warn", "ValueError", "TypeError"}


def _library_modules() -> list[Path]:
    return [
        p
        for p in SRC.rglob("*.py")
        if "cli" not in p.relative_to(SRC).parts and p.name != "__main__.py"
    ]


def _strings(node: ast.AST) -> list[str]:
    out = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            out.append(sub.value)
    return out


def _call_name(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")


def test_no_flag_names_in_library_messages() -> None:
    """Errors and warnings raised by the library name Python parameters, never ``--flags``."""
    bad = []
    for path in _library_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _call_name(node) in MESSAGE_CALLS:
                for text in _strings(node):
                    if FLAG.search(text):
                        bad.append(f"{path.relative_to(SRC)}:{node.lineno}: {text.strip()[:70]}")
    assert not bad, "library messages naming command-line flags:\n" + "\n".join(bad)


def test_no_function_over_100_lines() -> None:
    long = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > 100:
                    long.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, "functions over 100 lines:\n" + "\n".join(long)


def test_library_never_imports_the_cli() -> None:
    bad = []
    for path in _library_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            mod = node.module if isinstance(node, ast.ImportFrom) else None
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if (mod or "").startswith("climb.cli") or any(n.startswith("climb.cli") for n in names):
                bad.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not bad, "library modules importing climb.cli: " + ", ".join(bad)


def test_effective_ratio_computed_in_one_place() -> None:
    """φ_η(p) = (p + ε)^η − ε^η is written once: only the ratio module raises to the power η."""
    hits = []
    pattern = re.compile(r"\*\*\s*\(?\s*eta\b|TRANSFER_EPS\s*\*\*")
    for path in SRC.rglob("*.py"):
        for k, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(SRC)}:{k}")
    files = {h.split(":")[0] for h in hits}
    assert len(files) <= 1, "φ_η computed in several modules: " + ", ".join(hits)
