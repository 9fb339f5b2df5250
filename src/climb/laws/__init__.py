"""Laws: climb and its baselines, behind one estimator interface (:class:`~climb.laws.base.Law`)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from climb.data.userfiles import read_json
from climb.errors import ClimbError
from climb.laws.base import Law

LAWS: dict[str, str] = {
    "climb": "climb.laws.climb:ClimbLaw",
    "climb-msl": "climb.laws.climb:ClimbMSLLaw",
    "isolated": "climb.laws.climb:IsolatedLaw",
    "msl": "climb.laws.msl:MSLLaw",
    "dml": "climb.laws.dml:DataMixingLaw",
    "regression": "climb.laws.regression:RegressionLaw",
}
"""Law name → implementing class (imported lazily)."""


def law_class(name: str) -> type[Law]:
    """The class registered under ``name``."""
    target = LAWS.get(name)
    if target is None:
        raise ClimbError(f"unknown law '{name}'; choose from {', '.join(LAWS)}")
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]


def get_law(name: str, **hyper: Any) -> Law:
    """An unfitted law by name, e.g. ``get_law("climb", seed=0)``."""
    return law_class(name)(**hyper)


def law_from_json(obj: Any) -> Law:
    """A fitted law from its JSON object (any registered law)."""
    if not isinstance(obj, dict) or "law" not in obj:
        raise ClimbError("law JSON: expected an object with a 'law' key")
    return law_class(str(obj["law"])).from_json(obj)


def read_law_json(path: str | Path) -> dict[str, Any]:
    """The JSON object of a law file (not yet validated as a law)."""
    obj = read_json(path, "law")
    if not isinstance(obj, dict):
        raise ClimbError(f"{path}: law JSON: expected an object with a 'law' key")
    return obj


def load_law(path: str | Path) -> Law:
    """Read a law JSON file written by ``Law.save`` (or by hand)."""
    obj = read_law_json(path)
    try:
        return law_from_json(obj)
    except ClimbError as exc:
        raise ClimbError(f"{path}: {exc}") from None


__all__ = ["LAWS", "Law", "get_law", "law_class", "law_from_json", "load_law", "read_law_json"]
