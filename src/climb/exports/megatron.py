"""Megatron-LM: a ``--data-args-path`` file (``megatron``) or a ``--data-path`` line (``megatron-args``).

Megatron-LM reads a weighted blend as a flat list ``w1 prefix1 w2 prefix2 …`` (weights normalized
by Megatron; each prefix names an indexed dataset ``prefix.bin`` / ``prefix.idx``):

* ``--data-args-path FILE``: ``get_blend_and_blend_per_split`` in
  ``megatron/training/utils/common_utils.py`` reads ``FILE`` with ``f.read().split()`` and hands the
  fields to ``get_blend_from_list`` (``megatron/core/datasets/utils.py``): an even number of fields
  is read as ``(weight, prefix)`` pairs, an odd number as prefixes only. ``--format megatron``
  writes that file, one bare ``weight prefix`` pair per line::

      0.41 /data/en_text_document
      0.59 /data/de_text_document

* ``--data-path w1 prefix1 …`` on the command line: ``--format megatron-args`` writes one line
  ``--data-path 0.41 /data/en_text_document 0.59 /data/de_text_document`` for
  ``torchrun pretrain_gpt.py $(cat blend.args) …``; a command substitution splits on whitespace
  and expands globs without removing quotes, so quoting cannot help there either.

Both are split on whitespace, so a prefix containing whitespace (or, for the command line, a glob
character) is refused with a one-line error instead of being silently broken into pieces.
"""

from __future__ import annotations

from pathlib import Path

from climb.errors import ClimbError
from climb.exports.mixture import Mixture

GLOB_CHARS = "*?["


def blend_pairs(mix: Mixture, fmt: str) -> list[tuple[float, str]]:
    """``(weight, prefix)`` per nonzero source, each prefix safe to split on whitespace."""
    pairs = []
    for source, p in mix.nonzero():
        prefix = mix.single_path(source, fmt)
        if any(c.isspace() for c in prefix):
            raise ClimbError(
                f"paths: the path of source '{source}' ({prefix!r}) contains whitespace; Megatron "
                "splits its blend on whitespace, so link or rename it to a path without spaces"
            )
        if fmt == "megatron-args" and any(c in prefix for c in GLOB_CHARS):
            raise ClimbError(
                f"paths: the path of source '{source}' ({prefix!r}) contains a glob character; "
                "$(cat FILE) would expand it: use the megatron format (a file for Megatron's data-args-path option)"
            )
        pairs.append((p, prefix))
    return pairs


def render(mix: Mixture, *, fmt: str = "megatron", target: Path | None = None) -> str:
    pairs = blend_pairs(mix, fmt)
    if fmt == "megatron-args":
        return " ".join(["--data-path", *(f"{w!r} {prefix}" for w, prefix in pairs)]) + "\n"
    return "".join(f"{w!r} {prefix}\n" for w, prefix in pairs)
