"""Megatron-LM: the ``--data-path`` argument of a weighted blend.

Megatron-LM reads ``--data-path w1 prefix1 w2 prefix2 …`` (weights normalized by Megatron; each
prefix names an indexed dataset ``prefix.bin`` / ``prefix.idx``). The export is one shell line::

    --data-path 0.41 /data/en_text_document 0.59 /data/de_text_document

to paste into the training command (e.g. ``torchrun pretrain_gpt.py $(cat blend.args) …``).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from climb.exports.mixture import Mixture


def render(mix: Mixture, *, fmt: str = "megatron", target: Path | None = None) -> str:
    parts = ["--data-path"]
    for source, p in mix.nonzero():
        parts += [repr(p), shlex.quote(mix.single_path(source, "megatron"))]
    return " ".join(parts) + "\n"
