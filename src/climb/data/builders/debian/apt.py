"""Package steps of the Debian build: ``apt-get download``, ``dpkg-deb -x``, render each kind of
documentation in an extracted package to ``(doc_id, paragraphs)``."""

from __future__ import annotations

import gzip
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from climb.data.builders.debian.registry import Package
from climb.data.builders.debian.text import (
    clean_man_output,
    decode_text,
    fortune_cookies,
    group_cookies,
    html_paragraphs,
    is_so_link,
)
from climb.errors import ClimbError

GROFF = ["groff", "-k", "-Kutf-8", "-t", "-man", "-Tutf8", "-rLL=5000n", "-rHY=0", "-P-cbou"]
"""preconv + tbl, long lines, no hyphenation, no overstrike."""


def _run(cmd: list[str], what: str, **kw: Any) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(cmd, check=True, capture_output=True, **kw)
    except FileNotFoundError:
        raise ClimbError(f"{what}: '{cmd[0]}' not found; build-debian needs a Debian machine with apt-get, dpkg-deb and groff (apt-get install groff-base)") from None  # fmt: skip
    except subprocess.CalledProcessError as exc:
        err = exc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ClimbError(f"{what} failed: {err[-1] if err else exc}") from None


_APT_UPDATED = False


def download(package: str, debs: Path) -> Path:
    """``apt-get download`` a package into ``debs`` unless it is there; returns the ``.deb``.

    On a fresh machine apt has no package lists yet: when apt cannot locate the package, climb
    runs ``apt-get update`` once (this needs root) and tries again.
    """
    global _APT_UPDATED
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        try:
            _run(["apt-get", "download", package], f"apt-get download {package}", cwd=debs)
        except ClimbError:
            if _APT_UPDATED:
                raise
            _APT_UPDATED = True
            _run(["apt-get", "update", "-qq"], "apt-get update (package lists)")
            _run(["apt-get", "download", package], f"apt-get download {package}", cwd=debs)
        found = sorted(debs.glob(f"{package}_*.deb"))
        if not found:
            raise ClimbError(f"apt-get download {package} gave no .deb in {debs}")
    return found[-1]


def deb_field(deb: Path, name: str) -> str:
    return (
        _run(["dpkg-deb", "-f", str(deb), name], f"dpkg-deb -f {deb.name}").stdout.decode().strip()
    )


def extract(deb: Path, into: Path) -> Path:
    """``dpkg-deb -x`` (a package's files, without installing it)."""
    into.mkdir(parents=True, exist_ok=True)
    _run(["dpkg-deb", "-x", str(deb), str(into)], f"dpkg-deb -x {deb.name}")
    return into


def render_man(path: Path) -> list[str]:
    """Paragraphs of one man page file (``.gz`` or plain), or ``[]`` for a ``.so`` link page."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    if is_so_link(decode_text(data[:4096])):
        return []
    proc = subprocess.run(GROFF, input=data, capture_output=True, check=False)
    return clean_man_output(proc.stdout.decode("utf-8", "replace"))


def _files(root: Path, pattern: str) -> list[Path]:
    return sorted(p for p in root.glob(pattern) if p.is_file() and not p.is_symlink())


def package_documents(
    pkg: Package, root: Path, jobs: int = 1, tick: Callable[[], None] | None = None
) -> Iterator[tuple[str, list[str]]]:
    """``(doc_id, paragraphs)`` of one language in an extracted package, before language ID."""
    if pkg.kind == "man":
        base = root / "usr/share/man" / pkg.subdir if pkg.subdir else root / "usr/share/man"
        pages = _files(base, "man*/*")
        with ThreadPoolExecutor(max(1, jobs)) as pool:
            for page, paras in zip(pages, pool.map(render_man, pages)):
                if tick:
                    tick()
                yield str(page.relative_to(base)), paras
        return
    if pkg.kind == "fortunes":
        files = [
            p for p in _files(root / "usr/share/games", "**/*") if p.suffix not in (".dat", ".u8")
        ]
        for f in files:
            for i, cookies in enumerate(group_cookies(fortune_cookies(f.read_bytes()))):
                yield f"{f.relative_to(root / 'usr/share/games')}#{i}", cookies
            if tick:
                tick()
        return
    root_id = None
    if pkg.kind == "lohelp":
        base, pattern, root_id = root / "usr/share/libreoffice/help" / _lo_dir(root, pkg.subdir), "text/**/*.html", "DisplayArea"  # fmt: skip
    elif pkg.kind == "debref":
        base, pattern = root / "usr/share/debian-reference", "*.html"
    elif pkg.kind == "handbook":
        base, pattern = root / "usr/share/doc/debian-handbook/html" / pkg.subdir, "*.html"
    elif pkg.kind == "instguide":
        base, pattern = root / "usr/share/doc/installation-guide-amd64" / pkg.subdir, "*.html"
    else:  # pragma: no cover - registry is fixed
        raise ValueError(pkg.kind)
    for f in _files(base, pattern):
        if tick:
            tick()
        yield str(f.relative_to(base)), html_paragraphs(decode_text(f.read_bytes()), root_id)


def _lo_dir(root: Path, tag: str) -> str:
    helpdir = root / "usr/share/libreoffice/help"
    for cand in (tag, tag.replace("-", "_"), tag.split("-")[0]):
        if (helpdir / cand).is_dir():
            return cand
    dirs = (
        [d.name for d in helpdir.iterdir() if d.is_dir() and d.name != "media"]
        if helpdir.is_dir()
        else []
    )
    if len(dirs) == 1:
        return dirs[0]
    raise ClimbError(
        f"libreoffice help for '{tag}' not found in the package (has: {', '.join(dirs)})"
    )
