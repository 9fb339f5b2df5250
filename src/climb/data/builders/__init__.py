"""Corpus builders: programs that *produce* a corpus directory (the format read by
:class:`climb.data.corpus.Corpus`) from raw material.

* :mod:`climb.data.builders.debian` — multilingual text from Debian documentation packages (the
  corpus embedded in climb, ``climb corpus build-debian``).

A builder writes ``OUT/<source>/train.*`` and ``valid.*`` plus a ``MANIFEST.json``; readers never
import builders.
"""
