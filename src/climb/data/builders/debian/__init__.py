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
5. **cap** — over ``max_mb_per_language``, whole documents are taken in the order of a seeded
   hash of their text until the cap;
6. **split** — the validation split is carved at document level by
   :func:`climb.data.corpus.carve_validation` (seeded; 64 KiB or 10% of a small language);
7. **write** — ``OUT/<lang>/train.jsonl.xz`` and ``valid.jsonl.xz`` (one document per line:
   ``{"text": ..., "doc": "<package>:<path>"}``), ``OUT/MANIFEST.json`` (command line, package
   versions, licences, sizes) and the packages' copyright files in ``OUT/_licenses/``.

Everything is deterministic given the package versions: the embedded corpus is exactly the output
of the command recorded in its manifest.

Modules: :mod:`.registry` (which packages hold which language), :mod:`.text` (cleaning, language
ID, licences), :mod:`.apt` (download, extract, render), :mod:`.build` (the build and manifest).
"""

from climb.data.builders.debian.apt import GROFF, download, extract, package_documents, render_man
from climb.data.builders.debian.build import (
    CAP_SEED,
    LanguageReport,
    build_debian_corpus,
    cap_documents,
    default_command,
)
from climb.data.builders.debian.registry import PACKAGES, Package
from climb.data.builders.debian.text import (
    FORTUNE_DOC_BYTES,
    MIN_LETTERS,
    clean_man_output,
    fortune_cookies,
    group_cookies,
    html_paragraphs,
    identify_language,
    is_so_link,
    keep_paragraph,
    licence_names,
    strip_ansi,
)

__all__ = [
    "CAP_SEED",
    "FORTUNE_DOC_BYTES",
    "GROFF",
    "MIN_LETTERS",
    "PACKAGES",
    "LanguageReport",
    "Package",
    "build_debian_corpus",
    "cap_documents",
    "clean_man_output",
    "default_command",
    "download",
    "extract",
    "fortune_cookies",
    "group_cookies",
    "html_paragraphs",
    "identify_language",
    "is_so_link",
    "keep_paragraph",
    "licence_names",
    "package_documents",
    "render_man",
    "strip_ansi",
]
