"""Text steps of the Debian build: man page output, HTML and fortune files to paragraphs;
language identification; licence names of copyright files. Pure functions, no I/O."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from climb.errors import ClimbError

MIN_LETTERS = 20
"""A paragraph needs this many letters to be language-identified and kept."""
FORTUNE_DOC_BYTES = 2048
"""Fortune cookies are grouped into documents of about this many bytes."""


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
