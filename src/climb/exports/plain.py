"""``json`` / ``yaml``: the mixture with paths and metadata, every source kept.

{"mixture": {"en": 0.41, ...}, "paths": {"en": ["/data/en"], ...}, "tokens": 1e11, "meta": {...}}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from climb.exports.mixture import Mixture


def as_object(mix: Mixture) -> dict[str, Any]:
    return {
        "mixture": {s: float(p) for s, p in mix.proportions.items()},
        "paths": {s: mix.path_list(s) for s in mix.proportions},
        "tokens": mix.tokens,
        "max_epochs": mix.max_epochs,
        "meta": mix.meta,
    }


def render(mix: Mixture, *, fmt: str = "json", target: Path | None = None) -> str:
    obj = as_object(mix)
    if fmt == "yaml":
        import yaml

        return str(yaml.safe_dump(obj, sort_keys=False, allow_unicode=True))
    return json.dumps(obj, indent=2) + "\n"
