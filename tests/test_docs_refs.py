"""Docs name files that exist: every relative link and every `path/like.ext` in README, docs/ and
benchmarks/RESULTS.md resolves in the repository (files written at run time are listed as such)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    ROOT / "README.md",
    ROOT / "benchmarks" / "RESULTS.md",
    *sorted((ROOT / "docs").glob("*.md")),
]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
CODE_PATH = re.compile(r"`([A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+\.(?:py|md|txt|json|png|yaml|csv))`")
BASES = ("", "src", "src/climb", "docs", "benchmarks", "tests")
# Names of files climb writes at run time (outputs), not files of the repository.
RUNTIME = re.compile(
    r"^(OUT|demo-out|runs|report|out|my_corpus|corpus|data|paths|plan|law|LAW)/"
    r"|^(benchmarks/output/)?(evidence|timings)/"
)


def _exists(ref: str, doc: Path) -> bool:
    if (doc.parent / ref).exists():
        return True
    return any((ROOT / base / ref).exists() for base in BASES)


def test_doc_references_resolve() -> None:
    missing = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        refs = [m.group(1) for m in LINK.finditer(text) if "://" not in m.group(1)]
        refs += [m.group(1) for m in CODE_PATH.finditer(text) if not RUNTIME.search(m.group(1))]
        missing += [f"{doc.relative_to(ROOT)}: {r}" for r in refs if not _exists(r, doc)]
    assert not missing, "docs name files that are not in the repository:\n" + "\n".join(missing)
