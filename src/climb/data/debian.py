"""Build a multilingual corpus from Debian packages of free documentation.

Pipeline (each step a small function; :func:`build_debian_corpus` runs them):

1. **download** — ``apt-get download PKG`` into ``CACHE/debs`` (skipped when the ``.deb`` is
   there), version read with ``dpkg-deb -f``;
2. **extract** — ``dpkg-deb -x`` into a temporary folder under ``CACHE``;
3. **render** — per package kind (:data:`PACKAGES`):

   * man pages (``usr/share/man/<lang>/man*/*``): ``groff -k -Kutf-8 -t -man -Tutf8 -rLL=5000n
     -rHY=0 -P-cbou`` (preconv + tbl, long lines, no hyphenation, no overstrike), ``.so`` link
     pages and symlinks skipped, header and footer lines dropped (:func:`clean_man_output`);
   * HTML (LibreOffice help, Debian reference, Debian handbook, installation guide): stdlib
     ``html.parser`` to paragraphs (:func:`html_paragraphs`), keeping only LibreOffice's
     ``DisplayArea``, dropping ``hidden="true"`` platform variants (the ``default…`` variant is
     kept), navigation, tables of contents and ``<pre>`` code blocks;
   * fortunes: cookies split on ``%`` lines, UTF-8 or else Latin-1, ANSI colour codes stripped
     (:func:`fortune_cookies`); consecutive cookies grouped into documents of ~2 KB;

   the rendered paragraphs of each (package, language) are cached in
   ``CACHE/text/<package>.<lang>.jsonl.gz``, so an interrupted build resumes;
4. **clean** — keep paragraphs with ≥ 20 letters whose ``py3langid`` language is the target
   (:func:`keep_paragraph`); drop exact duplicate paragraphs within the language (first wins, in
   package order); documents without any kept paragraph are dropped;
5. **cap** — over ``--max-mb-per-language``, whole documents are taken in the order of a seeded
   hash of their text until the cap;
6. **split** — the validation split is carved at document level by
   :func:`climb.data.corpus.carve_validation` (seeded; 64 KiB or 10% of a small language);
7. **write** — ``OUT/<lang>/train.jsonl.xz`` and ``valid.jsonl.xz`` (one document per line:
   ``{"text": ..., "doc": "<package>:<path>"}``), ``OUT/MANIFEST.json`` (command line, package
   versions, licences, sizes) and the packages' copyright files in ``OUT/_licenses/``.

Everything is deterministic given the package versions: the embedded corpus is exactly the output
of the command recorded in its manifest.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import lzma
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from climb.data.corpus import validation_indices
from climb.errors import ClimbError

MIN_LETTERS = 20
"""A paragraph needs this many letters to be language-identified and kept."""
FORTUNE_DOC_BYTES = 2048
"""Fortune cookies are grouped into documents of about this many bytes."""
CAP_SEED = 0
"""Seed of the hash that picks documents when a language exceeds its cap."""
XZ_PRESET = 9
GROFF = ["groff", "-k", "-Kutf-8", "-t", "-man", "-Tutf8", "-rLL=5000n", "-rHY=0", "-P-cbou"]


# ----------------------------------------------------------------------------- package registry
@dataclass(frozen=True)
class Package:
    """A Debian package and how to find one language's text in it.

    ``kind`` is one of ``man``, ``lohelp``, ``debref``, ``handbook``, ``instguide``, ``fortunes``;
    ``subdir`` is the package's own language tag where it differs from the language code
    (``pt_BR``, ``zh_CN``, ``de-DE`` …); ``""`` for untranslated English man pages.
    """

    name: str
    kind: str
    subdir: str


def _lang_packages(lang: str, *, man: str | None, man_dir: str | None, lohelp: str | None,
                   debref: str | None, handbook: str | None, instguide: str | None,
                   fortunes: Iterable[str] = ()) -> list[Package]:  # fmt: skip
    out: list[Package] = []
    if man:
        out.append(Package(man, "man", man_dir if man_dir is not None else lang))
    if lohelp:
        out.append(Package(f"libreoffice-help-{lohelp}", "lohelp", lohelp))
    if debref:
        out.append(Package(f"debian-reference-{debref}", "debref", debref))
    if handbook:
        out.append(Package("debian-handbook", "handbook", handbook))
    if instguide:
        out.append(Package("installation-guide-amd64", "instguide", instguide))
    for f in fortunes:
        out.append(Package(f, "fortunes", lang))
    return out


def _registry() -> dict[str, list[Package]]:
    spec: dict[str, dict[str, Any]] = {
        "ar": dict(handbook="ar-MA"),
        "ca": dict(lohelp="ca", handbook="ca-ES", instguide="ca"),
        "cs": dict(man="manpages-cs", lohelp="cs", handbook="cs-CZ", instguide="cs", fortunes=["fortunes-cs"]),
        "da": dict(man="manpages-da", lohelp="da", handbook="da-DK", instguide="da"),
        "de": dict(man="manpages-de", lohelp="de", debref="de", handbook="de-DE", instguide="de", fortunes=["fortunes-de"]),
        "el": dict(man="manpages-el", lohelp="el", handbook="el-GR", instguide="el"),
        "en": dict(man="manpages", man_dir="", lohelp="en-us", debref="en", handbook="en-US", instguide="en", fortunes=["fortunes", "fortunes-min"]),
        "es": dict(man="manpages-es", lohelp="es", debref="es", handbook="es-ES", instguide="es", fortunes=["fortunes-es"]),
        "fa": dict(handbook="fa-IR"),
        "fr": dict(man="manpages-fr", lohelp="fr", debref="fr", handbook="fr-FR", instguide="fr"),
        "hi": dict(lohelp="hi"),
        "id": dict(man="manpages-id", handbook="id-ID", instguide="id"),
        "it": dict(man="manpages-it", lohelp="it", debref="it", handbook="it-IT", instguide="it", fortunes=["fortunes-it"]),
        "ja": dict(man="manpages-ja", lohelp="ja", debref="ja", handbook="ja-JP", instguide="ja"),
        "ko": dict(lohelp="ko", handbook="ko-KR", instguide="ko"),
        "nl": dict(man="manpages-nl", lohelp="nl", handbook="nl-NL", instguide="nl"),
        "pl": dict(man="manpages-pl", lohelp="pl", handbook="pl-PL", fortunes=["fortunes-pl"]),
        "pt": dict(man="manpages-pt-br", man_dir="pt_BR", lohelp="pt-br", debref="pt", handbook="pt-BR", instguide="pt"),
        "ro": dict(man="manpages-ro", handbook="ro-RO", instguide="ro"),
        "ru": dict(man="manpages-ru", lohelp="ru", handbook="ru-RU", instguide="ru", fortunes=["fortunes-ru"]),
        "sv": dict(man="manpages-sv", lohelp="sv", handbook="sv-SE", instguide="sv"),
        "tr": dict(man="manpages-tr", lohelp="tr", handbook="tr-TR"),
        "uk": dict(man="manpages-uk"),
        "vi": dict(man="manpages-vi", lohelp="vi", handbook="vi-VN", instguide="vi"),
        "zh": dict(man="manpages-zh", man_dir="zh_CN", lohelp="zh-cn", debref="zh-cn", handbook="zh-CN", instguide="zh_CN", fortunes=["fortunes-zh"]),
    }  # fmt: skip
    out: dict[str, list[Package]] = {}
    for lang, kw in spec.items():
        args: dict[str, Any] = {
            k: None for k in ("man", "man_dir", "lohelp", "debref", "handbook", "instguide")
        }
        args.update(kw)
        out[lang] = _lang_packages(lang, **args)
    out["en"].insert(1, Package("manpages-dev", "man", ""))
    return out


PACKAGES: dict[str, list[Package]] = _registry()
"""Language code -> the packages (in processing order) that hold its text."""


# ----------------------------------------------------------------------------- cleaning
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)*")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def strip_ansi(text: str) -> str:
    """Remove ANSI escape sequences (colour codes) and other control characters but newlines."""
    return _CONTROL.sub("", _ANSI.sub("", text))


def normalize_block(block: str) -> str:
    """Strip each line, collapse runs of spaces/tabs, drop empty lines."""
    lines = (_SPACES.sub(" ", line).strip() for line in block.split("\n"))
    return "\n".join(line for line in lines if line)


def count_letters(text: str) -> int:
    return sum(1 for ch in text if ch.isalpha())


def decode_text(data: bytes) -> str:
    """UTF-8, else Latin-1 (old fortune files)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def clean_man_output(rendered: str) -> list[str]:
    """Paragraphs of a page rendered by groff ``-Tutf8``: header/footer lines dropped.

    The first and the last non-blank line are the running header (``LS(1) … LS(1)``) and footer
    (``GNU coreutils 9.1 … LS(1)``); paragraphs are the blank-line separated blocks, with section
    headings (lines starting in column 0) split off, each normalized by :func:`normalize_block`.
    """
    text = strip_ansi(rendered.replace("\r", ""))
    lines = text.split("\n")
    nonblank = [i for i, line in enumerate(lines) if line.strip()]
    lines = lines[nonblank[0] + 1 : nonblank[-1]] if len(nonblank) >= 2 else []
    out: list[str] = []
    for block in _BLANK.split("\n".join(lines)):
        # section headings start in column 0 (body text is indented): a paragraph of their own
        cur: list[str] = []
        for line in block.split("\n"):
            if line[:1].strip():
                out.append(normalize_block("\n".join(cur)))
                out.append(normalize_block(line))
                cur = []
            else:
                cur.append(line)
        out.append(normalize_block("\n".join(cur)))
    return [b for b in out if b]


def is_so_link(source: str) -> bool:
    """A man page that only includes another one (``.so man1/other.1``)."""
    lines = [
        line
        for line in source.splitlines()
        if line.strip() and not line.startswith(('.\\"', "'\\\""))
    ]
    return bool(lines) and len(lines) <= 2 and lines[0].startswith(".so ")


def fortune_cookies(data: bytes) -> list[str]:
    """Cookies of a fortune file: split on lines holding only ``%``; UTF-8 or Latin-1; ANSI
    colour codes stripped; lines right-stripped (line breaks kept: many cookies are verse)."""
    text = strip_ansi(decode_text(data).replace("\r\n", "\n").expandtabs(8))
    cookies = re.split(r"(?m)^%[ \t]*$", text)
    out = []
    for c in cookies:
        lines = [_SPACES.sub(" ", line).rstrip() for line in c.strip("\n").split("\n")]
        cookie = "\n".join(lines).strip()
        if cookie:
            out.append(cookie)
    return out


def group_cookies(cookies: list[str], max_bytes: int = FORTUNE_DOC_BYTES) -> list[list[str]]:
    """Consecutive cookies as documents of about ``max_bytes`` UTF-8 bytes."""
    docs: list[list[str]] = []
    cur: list[str] = []
    size = 0
    for c in cookies:
        n = len(c.encode("utf-8")) + 2
        if cur and size + n > max_bytes:
            docs.append(cur)
            cur, size = [], 0
        cur.append(c)
        size += n
    if cur:
        docs.append(cur)
    return docs


_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}  # fmt: skip
_BLOCK = {
    "address", "article", "aside", "blockquote", "caption", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "ol",
    "p", "section", "table", "tbody", "td", "th", "thead", "title", "tr", "ul", "br",
}  # fmt: skip
_SKIP_TAGS = {"script", "style", "head", "nav", "pre", "noscript", "button", "input", "select", "textarea"}  # fmt: skip
_SKIP_CLASSES = {"navheader", "navfooter", "toc", "list-of-tables", "list-of-figures", "list-of-examples", "screen", "programlisting", "legalnotice", "docnav"}  # fmt: skip


class _ParagraphParser(HTMLParser):
    def __init__(self, root_id: str | None) -> None:
        super().__init__(convert_charrefs=True)
        self.root_id = root_id
        self.stack: list[tuple[str, bool, bool]] = []  # (tag, skip, root)
        self.skipping = 0
        self.in_root = 0 if root_id else 1
        self.paragraphs: list[str] = []
        self.buf: list[str] = []

    def _flush(self) -> None:
        text = _SPACES.sub(" ", " ".join("".join(self.buf).split())).strip()
        if text:
            self.paragraphs.append(text)
        self.buf = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in _BLOCK and not self.skipping and self.in_root:
            self._flush()
        if tag in _VOID:
            return
        classes = set((a.get("class") or "").split())
        hidden = "hidden" in a and a.get("hidden") != "false"
        skip = (
            tag in _SKIP_TAGS
            or bool(classes & _SKIP_CLASSES)
            or (hidden and not (a.get("id") or "").startswith("default"))
        )
        root = self.root_id is not None and a.get("id") == self.root_id
        self.stack.append((tag, skip, root))
        self.skipping += skip
        self.in_root += root

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID or not any(t == tag for t, _, _ in self.stack):
            return
        while self.stack:
            t, skip, root = self.stack.pop()
            self.skipping -= skip
            self.in_root -= root
            if t == tag:
                break
        if tag in _BLOCK and not self.skipping:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self.in_root and not self.skipping:
            self.buf.append(data)

    def close(self) -> None:
        super().close()
        self._flush()


def html_paragraphs(html: str, root_id: str | None = None) -> list[str]:
    """Paragraphs of an HTML page (text of block elements, whitespace collapsed).

    Only the element with ``id=root_id`` is read when given (LibreOffice help: ``DisplayArea``).
    Dropped: ``script``/``style``/``head``/``nav``/``pre`` …, navigation and table-of-contents
    ``div``s of DocBook output, and elements with ``hidden="true"`` (LibreOffice's platform
    variants) except the one whose ``id`` starts with ``default``.
    """
    parser = _ParagraphParser(root_id)
    parser.feed(html)
    parser.close()
    return parser.paragraphs


# ----------------------------------------------------------------------------- language ID
_LANGID: Any = None


def identify_language(text: str) -> str:
    """ISO 639-1 code of ``text`` by ``py3langid`` (its full 97-language model)."""
    global _LANGID
    if _LANGID is None:
        try:
            import py3langid
        except ImportError:
            raise ClimbError(
                "building a corpus needs py3langid: pip install 'climb[corpus]' (or py3langid)"
            ) from None
        _LANGID = py3langid
    return str(_LANGID.classify(text)[0])


def keep_paragraph(paragraph: str, lang: str) -> bool:
    """Keep a paragraph with ≥ :data:`MIN_LETTERS` letters identified as ``lang``."""
    return count_letters(paragraph) >= MIN_LETTERS and identify_language(paragraph) == lang


# ----------------------------------------------------------------------------- packages
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


# ----------------------------------------------------------------------------- licences
_LICENCE_PHRASES = [
    (r"GNU (?:GPL|General Public License)[ ,]*(?:version|v\.?) ?(\d)", "GPL-{0}"),
    (r"GNU (?:LGPL|Lesser General Public License)[ ,]*(?:version|v\.?) ?(\d)", "LGPL-{0}"),
    (r"public domain", "public-domain"),
    (r"\bBSD\b", "BSD"),
    (r"Creative Commons", "CC"),
]


def licence_names(copyright_text: str) -> list[str]:
    """Licence short names of a copyright file, in first-seen order.

    DEP-5 files: their ``License:`` lines. Free-form files: names recognised from phrases
    ("GNU GPL, version 2" -> ``GPL-2``, "public domain", BSD …); ``["see copyright file"]`` when
    none is recognised. The full files ship with the corpus in ``_licenses/``.
    """
    names: list[str] = []
    for m in re.finditer(r"(?im)^License:[ \t]*(\S.*)$", copyright_text):
        name = m.group(1).strip()
        if name not in names:
            names.append(name)
    if not names:
        for pattern, fmt in _LICENCE_PHRASES:
            for m in re.finditer(pattern, copyright_text, re.I):
                name = fmt.format(*m.groups())
                if name not in names:
                    names.append(name)
    return names or ["see copyright file"]


# ----------------------------------------------------------------------------- build
@dataclass
class LanguageReport:
    """What the build kept for one language."""

    language: str
    packages: list[str] = field(default_factory=list)
    paragraphs_seen: int = 0
    paragraphs_short: int = 0
    paragraphs_other_language: int = 0
    paragraphs_duplicate: int = 0
    documents_kept: int = 0
    bytes_before_cap: int = 0
    documents: dict[str, int] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    bytes_by_package: dict[str, int] = field(default_factory=dict)


def _hash_rank(text: str, seed: int) -> bytes:
    return hashlib.blake2b(f"{seed}:{text}".encode(), digest_size=8).digest()


def cap_documents(
    docs: list[dict[str, str]], max_bytes: int | None, seed: int = CAP_SEED
) -> list[dict[str, str]]:
    """Whole documents in seeded-hash order until ``max_bytes``; original order kept."""
    if max_bytes is None:
        return docs
    sizes = [len(d["text"].encode("utf-8")) + 2 for d in docs]
    if sum(sizes) <= max_bytes:
        return docs
    order = sorted(range(len(docs)), key=lambda i: (_hash_rank(docs[i]["text"], seed), i))
    chosen: set[int] = set()
    total = 0
    for i in order:
        if total + sizes[i] > max_bytes:
            continue
        chosen.add(i)
        total += sizes[i]
    return [d for i, d in enumerate(docs) if i in chosen]


def _write_jsonl_xz(path: Path, docs: list[dict[str, str]]) -> None:
    payload = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs).encode("utf-8")
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(lzma.compress(payload, preset=XZ_PRESET))
    tmp.replace(path)


def _cached_package_text(
    pkg: Package, lang: str, cache: Path, jobs: int, status: Callable[[str], Callable[[], None]]
) -> tuple[list[tuple[str, list[str]]], dict[str, Any]]:
    """Rendered ``(doc_id, paragraphs)`` of a (package, language) and the package's metadata,
    from ``cache`` or built now (download, extract, render) and cached."""
    cached = cache / "text" / f"{pkg.name}.{lang}.jsonl.gz"
    meta_path = cache / "meta" / f"{pkg.name}.json"
    if cached.exists() and meta_path.exists():
        status(f"{lang}: {pkg.name} (cached)")
        docs: list[tuple[str, list[str]]] = []
        with gzip.open(cached, "rt", encoding="utf-8") as fh:
            for line in fh:
                obj = json.loads(line)
                docs.append((obj["id"], obj["paragraphs"]))
        return docs, json.loads(meta_path.read_text(encoding="utf-8"))
    status(f"{lang}: {pkg.name} (download)")
    deb = download(pkg.name, cache / "debs")
    with tempfile.TemporaryDirectory(dir=cache, prefix="x-") as tmp:
        root = extract(deb, Path(tmp))
        cp = root / "usr/share/doc" / pkg.name / "copyright"
        copyright_text = decode_text(cp.read_bytes()) if cp.is_file() else ""
        meta = {"package": pkg.name, "version": deb_field(deb, "Version"), "deb": deb.name,
                "licenses": licence_names(copyright_text), "copyright": copyright_text}  # fmt: skip
        tick = status(f"{lang}: {pkg.name}")
        docs = list(package_documents(pkg, root, jobs=jobs, tick=tick))
    for d in (cached.parent, meta_path.parent):
        d.mkdir(parents=True, exist_ok=True)
    meta_path.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    part = cached.with_name(cached.name + ".part")
    with gzip.open(part, "wt", encoding="utf-8", compresslevel=3) as fh:
        for doc_id, paras in docs:
            fh.write(json.dumps({"id": doc_id, "paragraphs": paras}, ensure_ascii=False) + "\n")
    part.replace(cached)
    return docs, meta


def _cached_labels(
    pkg: Package, lang: str, cache: Path, docs: list[tuple[str, list[str]]]
) -> list[list[str]]:
    """py3langid language of every paragraph (``""`` under :data:`MIN_LETTERS` letters), cached
    in ``CACHE/langid/`` next to the rendered text."""
    path = cache / "langid" / f"{pkg.name}.{lang}.json.gz"
    if path.exists():
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            labels: list[list[str]] = json.load(fh)
        if [len(x) for x in labels] == [len(p) for _, p in docs]:
            return labels
    labels = [
        [identify_language(p) if count_letters(p) >= MIN_LETTERS else "" for p in paras]
        for _, paras in docs
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    with gzip.open(part, "wt", encoding="utf-8", compresslevel=3) as fh:
        json.dump(labels, fh)
    part.replace(path)
    return labels


def build_debian_corpus(
    out: str | Path,
    languages: Iterable[str],
    *,
    max_mb_per_language: float | None = None,
    cache_dir: str | Path | None = None,
    jobs: int = 1,
    command: str | None = None,
    progress: bool = True,
    registry: dict[str, list[Package]] | None = None,
) -> dict[str, Any]:
    """Build (or rebuild) a corpus in ``out`` from Debian documentation packages.

    Args:
        out: output corpus directory (``out/<lang>/{train,valid}.jsonl.xz``, ``MANIFEST.json``).
        languages: language codes, keys of :data:`PACKAGES`.
        max_mb_per_language: cap on a language's bytes (train + valid, 10^6 bytes); ``None``: all.
        cache_dir: downloaded ``.deb`` files and rendered text (default ``out/.cache``); a rerun
            after an interruption resumes from it.
        jobs: parallel groff processes for man pages.
        command: the command line recorded in the manifest.
        progress: show a rich progress display on stderr.
        registry: language -> packages to use instead of :data:`PACKAGES` (e.g. one small
            package, for a quick check).

    Returns the manifest (also written to ``out/MANIFEST.json``).
    """
    langs = list(dict.fromkeys(lang.strip() for lang in languages if lang.strip()))
    if not langs:
        raise ClimbError("--languages: give at least one language code, e.g. de,fr,ja")
    packages = PACKAGES if registry is None else registry
    unknown = [lang for lang in langs if lang not in packages]
    if unknown:
        raise ClimbError(
            f"--languages: unknown {', '.join(unknown)}; known: {', '.join(sorted(packages))}"
        )
    if max_mb_per_language is not None and max_mb_per_language <= 0:
        raise ClimbError("--max-mb-per-language must be > 0")
    for tool in ("apt-get", "dpkg-deb", "groff"):
        if shutil.which(tool) is None:
            raise ClimbError(f"'{tool}' not found; build-debian needs a Debian machine with apt-get, dpkg-deb and groff (apt-get install groff-base)")  # fmt: skip
    out = Path(out)
    cache = Path(cache_dir) if cache_dir is not None else out / ".cache"
    for d in (out, cache):
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ClimbError(f"{d}: cannot create the folder ({exc.strerror or exc})") from None
    cap = None if max_mb_per_language is None else int(max_mb_per_language * 1_000_000)

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True, quiet=not progress)
    prog = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)  # fmt: skip
    total_pkgs = sum(len(packages[lang]) for lang in langs)
    reports: dict[str, LanguageReport] = {}
    metas: dict[str, dict[str, Any]] = {}
    _remove_stale_languages(out, langs)
    with prog:
        overall = prog.add_task("packages", total=total_pkgs)
        for lang in langs:
            rep = LanguageReport(lang)
            seen: set[bytes] = set()
            kept: list[dict[str, str]] = []
            for pkg in packages[lang]:
                sub = prog.add_task(f"  {lang}: {pkg.name}", total=None)

                def status(desc: str, _sub: Any = sub) -> Callable[[], None]:
                    prog.update(_sub, description=f"  {desc}")
                    return lambda: prog.advance(_sub)

                docs, meta = _cached_package_text(pkg, lang, cache, jobs, status)
                metas[pkg.name] = meta
                rep.packages.append(pkg.name)
                pkg_bytes = 0
                labels = _cached_labels(pkg, lang, cache, docs)
                for (doc_id, paras), doc_labels in zip(docs, labels):
                    keep: list[str] = []
                    for p, label in zip(paras, doc_labels):
                        rep.paragraphs_seen += 1
                        if not label:
                            rep.paragraphs_short += 1
                            continue
                        if label != lang:
                            rep.paragraphs_other_language += 1
                            continue
                        h = hashlib.blake2b(p.encode(), digest_size=12).digest()
                        if h in seen:
                            rep.paragraphs_duplicate += 1
                            continue
                        seen.add(h)
                        keep.append(p)
                    if keep:
                        text = "\n\n".join(keep)
                        kept.append({"text": text, "doc": f"{pkg.name}:{doc_id}"})
                        pkg_bytes += len(text.encode("utf-8")) + 2
                rep.bytes_by_package[pkg.name] = pkg_bytes
                prog.update(sub, visible=False)
                prog.advance(overall)
            rep.documents_kept = len(kept)
            rep.bytes_before_cap = sum(len(d["text"].encode("utf-8")) + 2 for d in kept)
            selected = cap_documents(kept, cap)
            in_valid = validation_indices([d["text"] for d in selected])
            train = [d for i, d in enumerate(selected) if i not in in_valid]
            valid = [d for i, d in enumerate(selected) if i in in_valid]
            if not train:
                raise ClimbError(f"language '{lang}': no text survived cleaning; drop it from --languages")  # fmt: skip
            d = out / lang
            d.mkdir(parents=True, exist_ok=True)
            _write_jsonl_xz(d / "train.jsonl.xz", train)
            if valid:
                _write_jsonl_xz(d / "valid.jsonl.xz", valid)
            rep.documents = {"train": len(train), "valid": len(valid)}
            rep.bytes = {s: len("\n\n".join(x["text"] for x in docs_).encode("utf-8")) for s, docs_ in (("train", train), ("valid", valid))}  # fmt: skip
            reports[lang] = rep
            console.log(f"{lang}: {rep.bytes['train'] / 1e6:.2f} MB train, {rep.bytes['valid'] / 1e3:.0f} kB valid, {len(train)} documents")  # fmt: skip
    manifest = _write_manifest(out, langs, reports, metas, max_mb_per_language, command)
    return manifest


def _remove_stale_languages(out: Path, langs: list[str]) -> None:
    """Delete the split files of languages an earlier build wrote (per its ``MANIFEST.json``) but
    this one does not make, so ``out`` holds exactly this build's languages."""
    path = out / "MANIFEST.json"
    if not path.is_file():
        return
    try:
        previous = json.loads(path.read_text(encoding="utf-8")).get("languages", {})
    except (OSError, ValueError):
        return
    for lang in previous:
        if lang in langs or not isinstance(lang, str) or "/" in lang or lang.startswith("."):
            continue
        for split in ("train", "valid"):
            (out / lang / f"{split}.jsonl.xz").unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            (out / lang).rmdir()


def _write_manifest(
    out: Path,
    langs: list[str],
    reports: dict[str, LanguageReport],
    metas: dict[str, dict[str, Any]],
    max_mb: float | None,
    command: str | None,
) -> dict[str, Any]:
    lic_dir = out / "_licenses"
    if lic_dir.is_dir():
        for old in lic_dir.glob("*.copyright.xz"):
            old.unlink()
    lic_dir.mkdir(exist_ok=True)
    # packages with the same copyright file (all manpages-l10n, all LibreOffice help) share one
    licence_file: dict[str, str] = {}
    by_text: dict[str, str] = {}
    for name, meta in sorted(metas.items()):
        text = meta["copyright"]
        if text not in by_text:
            by_text[text] = f"_licenses/{name}.copyright.xz"
            data = lzma.compress(text.encode("utf-8"), preset=XZ_PRESET)
            (out / by_text[text]).write_bytes(data)
        licence_file[name] = by_text[text]
    manifest: dict[str, Any] = {
        "format": "climb-corpus/1",
        "description": "Multilingual text from Debian packages of free documentation (translated "
        "man pages, LibreOffice help, Debian reference, Debian handbook, installation guide, "
        "fortunes), cleaned of markup, paragraphs language-identified with py3langid, exact "
        "duplicate paragraphs dropped. Mostly technical text; many documents are translations "
        "of the same English originals.",
        "command": command,
        "debian": _debian_release(),
        "tokens": "bytes of the UTF-8 training split (climb's default tokenizer is byte-level)",
        "max_mb_per_language": max_mb,
        "split": {
            "valid": "whole documents by seeded hash until 64 KiB or 10% of a small language",
            "seed": 0,
        },
        "files": "<lang>/train.jsonl.xz, <lang>/valid.jsonl.xz: one JSON object per line, "
        "{'text': document, 'doc': '<package>:<path>'}; documents are paragraphs joined by blank lines",
        "languages": {
            lang: {
                "packages": r.packages,
                "documents": r.documents,
                "bytes": r.bytes,
                "bytes_before_cap": r.bytes_before_cap,
                "bytes_by_package_before_cap": r.bytes_by_package,
                "paragraphs": {
                    "seen": r.paragraphs_seen,
                    "too_short": r.paragraphs_short,
                    "other_language": r.paragraphs_other_language,
                    "duplicate": r.paragraphs_duplicate,
                },
            }
            for lang, r in reports.items()
        },
        "packages": {
            name: {
                "version": m["version"],
                "licenses": m["licenses"],
                "copyright": licence_file[name],
                "copyright_source": f"/usr/share/doc/{name}/copyright",
            }
            for name, m in sorted(metas.items())
        },
    }
    (out / "MANIFEST.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    return manifest


def _debian_release() -> str:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return "unknown"
    m = re.search(r'^PRETTY_NAME="?([^"\n]*)', text, re.M)
    return m.group(1) if m else "unknown"


def default_command(argv: list[str] | None = None) -> str:
    """The command line as recorded in the manifest."""
    args = sys.argv[1:] if argv is None else argv
    return "climb " + " ".join(args)


__all__ = [
    "PACKAGES",
    "Package",
    "build_debian_corpus",
    "clean_man_output",
    "fortune_cookies",
    "group_cookies",
    "html_paragraphs",
    "identify_language",
    "keep_paragraph",
    "licence_names",
    "strip_ansi",
]
