"""Command-line strings → library values: the one place where climb parses option text.

The library takes typed values (numbers, mappings, config objects); every ``--flag`` string the
user types is read here, and errors name the flag.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from climb.allocation.problem import parse_number, read_source_table
from climb.errors import ClimbError
from climb.proxy.config import ModelConfig, TrainConfig
from climb.proxy.design import make_config

_COUNT_RE = re.compile(r"^([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)([kmgbt]?)$", re.IGNORECASE)
_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9, "t": 1e12}


def parse_tokens(text: str, option: str = "--tokens") -> int:
    """A count such as ``250000``, ``2.5e5``, ``250k``, ``1.5M``, ``2B``, ``1T`` or ``1_000`` → int.

    Used for token budgets and model sizes alike (``option`` names the flag in errors).
    """
    m = _COUNT_RE.match(str(text).strip().replace("_", ""))
    if not m:
        raise ClimbError(
            f"{option} '{text}': not a count; write e.g. 250000, 250k, 1.5M, 2B or 1e11"
        )
    value = float(m.group(1)) * _SUFFIX[m.group(2).lower()]
    if not math.isfinite(value) or value < 1:
        raise ClimbError(f"{option} '{text}': must be ≥ 1")
    return round(value)


def check_process_count(jobs: int, option: str = "--jobs") -> int:
    """A process-count option: ``≥ 1``, or ``-1`` for one per CPU (one-line error otherwise)."""
    if jobs == 0 or jobs < -1:
        raise ClimbError(f"{option} must be ≥ 1 or -1 (one per CPU), got {jobs}")
    return jobs


def parse_mapping(spec: str, option: str) -> dict[str, str]:
    """``"en=2,de=1"`` → ``{"en": "2", "de": "1"}`` (one-line error naming ``option``)."""
    out: dict[str, str] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise ClimbError(f"{option}: '{item}' is not NAME=VALUE (e.g. {option} en=2,de=1)")
        key, value = (x.strip() for x in item.split("=", 1))
        if not key:
            raise ClimbError(f"{option}: '{item}' has an empty source name")
        if key in out:
            raise ClimbError(f"{option}: source '{key}' is given twice")
        out[key] = value
    return out


def _is_file_spec(spec: str) -> bool:
    return "=" not in spec and bool(Path(spec).suffix)


def read_weights(spec: str) -> dict[str, float]:
    """``--weights``: ``en=2,de=1`` or a file (``source,weight`` CSV or YAML/JSON mapping)."""
    if _is_file_spec(spec):
        path = Path(spec)
        rows = read_source_table(path, "--weights", ("source", "weight"))
        out: dict[str, float] = {}
        for i, row in enumerate(rows, start=2):
            x = parse_number(row["weight"], f"--weights: {path}: row {i}, column 'weight'")
            assert x is not None
            out[row["source"]] = x
        return out
    return {
        k: float(parse_number(v, f"--weights: '{k}'") or 0.0)
        for k, v in parse_mapping(spec, "--weights").items()
    }


def read_bounds(spec: str) -> dict[str, tuple[float | None, float | None]]:
    """``--bounds``: ``en=0.1:0.5,de=:0.3`` or a file (``source,lo,hi`` CSV or YAML mapping)."""
    if _is_file_spec(spec):
        path = Path(spec)
        rows = read_source_table(path, "--bounds", ("source", "lo", "hi"))
        return {
            row["source"]: (
                parse_number(row["lo"], f"--bounds: {path}: row {i}, column 'lo'", empty_ok=True),
                parse_number(row["hi"], f"--bounds: {path}: row {i}, column 'hi'", empty_ok=True),
            )
            for i, row in enumerate(rows, start=2)
        }
    out: dict[str, tuple[float | None, float | None]] = {}
    for name, value in parse_mapping(spec, "--bounds").items():
        if ":" not in value:
            raise ClimbError(
                f"--bounds: '{name}={value}' must be NAME=LO:HI (either side may be empty)"
            )
        a, b = value.split(":", 1)
        out[name] = (
            parse_number(a, f"--bounds: '{name}' lower", empty_ok=True),
            parse_number(b, f"--bounds: '{name}' upper", empty_ok=True),
        )
    return out


def parse_options(items: Sequence[str], option: str) -> dict[str, Any]:
    """``key=value`` strings → dict; values parsed as YAML scalars/lists (``0.5``, ``[0.25,0.5]``)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise ClimbError(f"{option} '{item}': expected KEY=VALUE")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


_MODEL_KEYS = {"d": "d_model", "l": "n_layers", "h": "n_heads", "c": "context"}


def model_from_string(text: str | None, options: Sequence[str] = ()) -> ModelConfig:
    """``--model d128-l3`` (+ ``--model-opt key=value``) → :class:`ModelConfig`.

    Letters: ``d`` = d_model, ``l`` = n_layers, ``h`` = n_heads, ``c`` = context. ``options`` are
    further fields (``tokenizer=bpe``, ``mlp_ratio=4``), validated by the config.
    """
    values: dict[str, Any] = {}
    if text:
        for part in str(text).lower().split("-"):
            m = re.fullmatch(r"([dlhc])(\d+)", part.strip())
            if not m:
                raise ClimbError(
                    f"--model '{text}': cannot read '{part}'; write e.g. d128-l3 (d=width, l=layers, "
                    "h=heads, c=context)"
                )
            values[_MODEL_KEYS[m.group(1)]] = int(m.group(2))
    values.update(parse_options(options, "--model-opt"))
    return make_config(ModelConfig, values, "--model", "model")


def train_from_options(options: Sequence[str]) -> TrainConfig:
    """``--train-opt key=value`` strings (``seed=1``, ``checkpoints=[0.5]``) → :class:`TrainConfig`."""
    return make_config(TrainConfig, parse_options(options, "--train-opt"), "--train-opt", "train")


def proxy_tokenizer(spec: str, corpus: Any) -> Any:
    """``--tokenizer``: ``bytes``, ``bpe[:V]`` (the proxy trainer's BPE of V tokens, default 8192,
    trained on ``corpus`` as a sweep trains it) or a tokenizer file / folder / name
    (:func:`climb.proxy.tokenize.get_tokenizer`)."""
    from climb.proxy.design import make_config
    from climb.proxy.tokenize import get_tokenizer

    name, _, vocab = spec.partition(":")
    values: dict[str, Any] = {"tokenizer": name if name in ("bytes", "bpe") else spec}
    if name == "bpe" and vocab:
        if not vocab.isdigit():
            raise ClimbError(
                f"--tokenizer {spec}: write bpe:V with V a whole number, e.g. bpe:8192"
            )
        values["bpe_vocab"] = int(vocab)
    return get_tokenizer(make_config(ModelConfig, values, "--tokenizer", "model"), corpus)


__all__ = [
    "model_from_string",
    "parse_mapping",
    "parse_options",
    "parse_tokens",
    "proxy_tokenizer",
    "read_bounds",
    "read_weights",
    "train_from_options",
]
