"""Runs from experiment trackers: TensorBoard log folders, MLflow stores, W&B projects.

Every reader turns a tracker's runs into :class:`TrackerRun` records (a name, a flat config, the
last value of every metric); :func:`runs_from_tracker` turns records into a :class:`RunTable`
through one :class:`TrackerMapping`, the same for every tracker:

==================  ==============================================================================
mapping             run-table column
==================  ==============================================================================
``loss``            metric → ``loss.<source>``: ``{"eval/en/loss": "en", ...}`` or one pattern
                    ``"eval/{source}/loss"`` (the sources are the metric names that match, in
                    alphabetical order)
``p``               config key → ``p.<source>``: ``{"mix.en": "en", ...}`` or ``"mix.{source}"``
``tokens``          config key or metric holding the run's training tokens ``D``
``params``          optional: config key or metric holding the model size ``N``
==================  ==============================================================================

As a YAML file (``climb ingest --tensorboard DIR --mapping mapping.yaml``)::

    loss: eval/{source}/loss      # or a mapping  metric: source
    p: mix.{source}               # or a mapping  config key: source
    tokens: train/tokens          # config key or metric
    params: model.params          # optional

Config keys are looked up in the run's config (nested keys joined with ``.``; TensorBoard:
the hparams plugin), then among its metrics; a metric's value is its last logged value (highest
step). With a ``p`` pattern, a run without a key for a source has ``p = 0`` there; with an
explicit mapping every key must be present. A run without a mapped loss metric is an error.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from climb.data.runs import LOSS_PREFIX, P_PREFIX, RunTable
from climb.data.userfiles import read_yaml
from climb.errors import ClimbError

SOURCE = "{source}"
"""The placeholder of a pattern mapping."""


@dataclass
class TrackerRun:
    """One tracked training run.

    Attributes:
        id: the tracker's id of the run (W&B / MLflow run id; TensorBoard: its folder).
        name: its display name (W&B / MLflow run name; TensorBoard: its folder).
        config: flat ``{key: value}`` (nested keys joined with ``.``).
        metrics: ``{metric: last logged value}``.
    """

    id: str
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class TrackerMapping:
    """Which metrics and config keys become which run-table columns (see the module docstring).

    Attributes:
        loss: ``{metric: source}`` or a pattern containing ``{source}``.
        p: ``{config key: source}`` or a pattern containing ``{source}`` (None when a launch
            manifest gives the mixtures).
        tokens: config key or metric of the training tokens, or None to use a constant.
        params: config key or metric of the model size, or None.
        run_key: ``"name"`` (default) or ``"id"``: which becomes the run table's ``run``.
    """

    loss: dict[str, str] | str
    p: dict[str, str] | str | None = None
    tokens: str | None = None
    params: str | None = None
    run_key: str = "name"

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], origin: str = "mapping") -> TrackerMapping:
        """Validate a mapping given as a dict (e.g. from YAML)."""
        unknown = sorted(set(obj) - {"loss", "p", "tokens", "params", "run_key"})
        if unknown:
            raise ClimbError(
                f"{origin}: unknown key '{unknown[0]}'; use loss, p, tokens, params, run_key"
            )
        if "loss" not in obj:
            raise ClimbError(f"{origin}: missing 'loss' (a pattern with {SOURCE} or a map)")
        mapping = cls(
            loss=_side(obj["loss"], origin, "loss"),
            p=None if obj.get("p") is None else _side(obj["p"], origin, "p"),
            tokens=_key(obj.get("tokens"), origin, "tokens"),
            params=_key(obj.get("params"), origin, "params"),
            run_key=str(obj.get("run_key", "name")),
        )
        if mapping.run_key not in ("name", "id"):
            raise ClimbError(f"{origin}: run_key must be 'name' or 'id', not '{mapping.run_key}'")
        return mapping

    @classmethod
    def read(cls, path: str | Path) -> TrackerMapping:
        """A mapping YAML/JSON file."""
        path = Path(path)
        obj = read_yaml(path, "mapping")
        if not isinstance(obj, Mapping):
            raise ClimbError(f"mapping: {path}: expected keys loss, p, tokens, params")
        return cls.from_dict(obj, origin=f"mapping {path}")


def _side(value: Any, origin: str, key: str) -> dict[str, str] | str:
    if isinstance(value, str):
        if value.count(SOURCE) != 1:
            raise ClimbError(f"{origin}: '{key}' pattern '{value}' must contain {SOURCE} once")
        return value
    if isinstance(value, Mapping) and value:
        return {str(k): str(v) for k, v in value.items()}
    raise ClimbError(f"{origin}: '{key}' must be a pattern with {SOURCE} or a map name: source")


def _key(value: Any, origin: str, key: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ClimbError(f"{origin}: '{key}' must be a config key or metric name")


# ---------------------------------------------------------------------------------- mapping


def _pattern(pattern: str) -> re.Pattern[str]:
    head, tail = pattern.split(SOURCE)
    return re.compile(re.escape(head) + r"(?P<source>.+?)" + re.escape(tail) + r"\Z")


def _resolve(side: dict[str, str] | str, names: Iterable[Iterable[str]]) -> dict[str, str]:
    """``{key: source}``: an explicit map as is, a pattern expanded over the keys ``names``."""
    if not isinstance(side, str):
        return dict(side)
    rx = _pattern(side)
    out: dict[str, str] = {}
    for keys in names:
        for k in keys:
            m = rx.match(k)
            if m and k not in out:
                out[k] = m.group("source")
    return dict(sorted(out.items(), key=lambda kv: kv[1]))  # trackers order keys differently


def _number(run: TrackerRun, key: str, what: str, origin: str) -> float:
    value = run.config[key] if key in run.config else run.metrics.get(key)
    if value is None:
        raise ClimbError(
            f"{origin}: run '{run.name}' has no config key or metric '{key}' (mapped to {what})"
        )
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    if not math.isfinite(x):
        raise ClimbError(f"{origin}: run '{run.name}': '{key}' (mapped to {what}) is {value!r}")
    return x


def _loss_columns(
    runs: list[TrackerRun], mapping: TrackerMapping, origin: str
) -> dict[str, list[float]]:
    losses = _resolve(mapping.loss, (r.metrics for r in runs))
    if not losses:
        raise ClimbError(f"{origin}: no metric matches the loss mapping {mapping.loss!r}")
    cols: dict[str, list[float]] = {}
    for metric, source in losses.items():
        col = cols.setdefault(LOSS_PREFIX + source, [])
        for run in runs:
            if metric not in run.metrics:
                raise ClimbError(
                    f"{origin}: run '{run.name}' has no metric '{metric}' (mapped to "
                    f"loss.{source}); log it or drop the run"
                )
            col.append(float(run.metrics[metric]))
    return cols


def _p_columns(
    runs: list[TrackerRun], mapping: TrackerMapping, origin: str
) -> dict[str, list[float]]:
    if mapping.p is None:
        raise ClimbError(
            f"{origin}: map 'p' (the mixture) to config keys, or give a launch manifest"
        )
    keys = _resolve(mapping.p, ([*r.config, *r.metrics] for r in runs))
    if not keys:
        raise ClimbError(f"{origin}: no config key matches the mixture mapping {mapping.p!r}")
    pattern = isinstance(mapping.p, str)
    cols: dict[str, list[float]] = {}
    for key, source in keys.items():
        cols[P_PREFIX + source] = [
            0.0
            if pattern and key not in run.config and key not in run.metrics
            else _number(run, key, P_PREFIX + source, origin)
            for run in runs
        ]
    return cols


def runs_from_tracker(
    runs: Iterable[TrackerRun],
    mapping: TrackerMapping,
    *,
    tokens: float | None = None,
    params: float | None = None,
    origin: str = "tracker",
) -> RunTable:
    """A run table from tracker runs: one row per run, columns from ``mapping``.

    ``tokens`` / ``params`` are constants for runs whose config does not record them (used
    when ``mapping.tokens`` / ``mapping.params`` is None).
    """
    runs = list(runs)
    if not runs:
        raise ClimbError(f"{origin}: no runs found")
    if mapping.tokens is None and tokens is None:
        raise ClimbError(
            f"{origin}: the training tokens are unknown: map 'tokens' to a config key or "
            "metric, or give tokens"
        )
    frame: dict[str, Any] = {"run": [r.name if mapping.run_key == "name" else r.id for r in runs]}
    frame["tokens"] = [
        tokens if mapping.tokens is None else _number(r, mapping.tokens, "tokens", origin)
        for r in runs
    ]
    if mapping.params is not None or params is not None:
        frame["params"] = [
            params if mapping.params is None else _number(r, mapping.params, "params", origin)
            for r in runs
        ]
    frame |= _p_columns(runs, mapping, origin)
    frame |= _loss_columns(runs, mapping, origin)
    frame["tracker_id"] = [r.id for r in runs]
    return RunTable.from_frame(pd.DataFrame(frame), origin=origin)


def results_frame(
    runs: Iterable[TrackerRun], mapping: TrackerMapping, *, origin: str = "tracker"
) -> pd.DataFrame:
    """``run`` and ``loss.<source>`` (and ``params`` when mapped) of tracker runs: the results
    to join with a launch manifest (:func:`climb.data.manifest.runs_from_results`), which gives
    the mixtures and budgets."""
    runs = list(runs)
    if not runs:
        raise ClimbError(f"{origin}: no runs found")
    frame: dict[str, Any] = {"run": [r.name if mapping.run_key == "name" else r.id for r in runs]}
    if mapping.params is not None:
        frame["params"] = [_number(r, mapping.params, "params", origin) for r in runs]
    return pd.DataFrame(frame | _loss_columns(runs, mapping, origin))


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level, keys joined with ``.``."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out |= flatten(v, key + ".")
        else:
            out[key] = v
    return out


# ---------------------------------------------------------------------------------- readers


def _need(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ClimbError(
            f"reading {extra} runs needs the '{extra}' extra: pip install 'climb[{extra}]'"
        ) from None


def _event_dirs(folder: Path) -> list[Path]:
    return sorted({f.parent for f in folder.rglob("*tfevents*") if f.is_file()})


def _read_tb_run(folder: Path, root: Path) -> TrackerRun:
    ea = _need("tensorboard.backend.event_processing.event_accumulator", "tensorboard")
    pb = _need("tensorboard.plugins.hparams.plugin_data_pb2", "tensorboard")
    name = folder.relative_to(root).as_posix() if folder != root else root.name
    run = TrackerRun(id=name, name=name)
    last_step: dict[str, int] = {}
    for d in _event_dirs(folder):
        acc = ea.EventAccumulator(str(d), size_guidance={ea.SCALARS: 0})
        try:
            acc.Reload()
        except Exception as exc:  # a corrupt event file
            raise ClimbError(f"tensorboard: {d}: cannot read the event files ({exc})") from None
        for tag in acc.Tags().get("scalars", []):
            last = max(acc.Scalars(tag), key=lambda e: (e.step, e.wall_time), default=None)
            if last is not None and last.step >= last_step.get(tag, -1):
                run.metrics[tag], last_step[tag] = float(last.value), int(last.step)
        try:
            contents = acc.PluginTagToContent("hparams").values()
        except KeyError:  # no hparams in this folder
            contents = []
        for content in contents:
            data = pb.HParamsPluginData.FromString(content)
            if data.HasField("session_start_info"):
                for key, value in data.session_start_info.hparams.items():
                    kind = value.WhichOneof("kind")
                    run.config[key] = getattr(value, kind) if kind else None
    return run


def read_tensorboard(log_dir: str | Path) -> list[TrackerRun]:
    """The runs of a TensorBoard log folder: each sub-folder holding event files (at any depth)
    is one run, named by its path under ``log_dir``; event files directly in ``log_dir`` make it
    a single run. Config comes from the hparams plugin (``add_hparams`` / ``hparams()``)."""
    root = Path(log_dir)
    if not root.is_dir():
        raise ClimbError(f"tensorboard: {root}: no such folder")
    children = sorted(c for c in root.iterdir() if c.is_dir() and _event_dirs(c))
    if any(f.is_file() for f in root.glob("*tfevents*")):
        children = [root]
    if not children:
        raise ClimbError(f"tensorboard: {root}: no TensorBoard event files (*tfevents*) in it")
    return [_read_tb_run(c, root) for c in children]


def read_mlflow(tracking_uri: str, experiment: str | None = None) -> list[TrackerRun]:
    """The runs of an MLflow tracking store (``file:/path/mlruns``, ``sqlite:///…``, ``http://…``):
    those of ``experiment`` (a name), or of every experiment. Params become the config (strings,
    converted when mapped); ``run.data.metrics`` holds each metric's last value."""
    mlflow = _need("mlflow", "mlflow")
    if tracking_uri.startswith("file:"):
        folder = Path(tracking_uri.removeprefix("file://").removeprefix("file:"))
        if not folder.is_dir():
            raise ClimbError(f"mlflow: {folder}: no such tracking folder")
    with _file_store_allowed(tracking_uri):
        return _mlflow_runs(
            mlflow.tracking.MlflowClient(tracking_uri=tracking_uri), tracking_uri, experiment
        )


@contextmanager
def _file_store_allowed(tracking_uri: str) -> Iterator[None]:
    """MLflow ≥ 3.7 refuses ``file:`` stores unless ``MLFLOW_ALLOW_FILE_STORE`` is set; reading
    an existing one is what climb is asked to do, so it is allowed for the call."""
    old = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    if tracking_uri.startswith("file:"):
        os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = old


def _mlflow_runs(client: Any, tracking_uri: str, experiment: str | None) -> list[TrackerRun]:
    try:
        if experiment is not None:
            exp = client.get_experiment_by_name(experiment)
            if exp is None:
                raise ClimbError(f"mlflow: {tracking_uri}: no experiment named '{experiment}'")
            ids = [exp.experiment_id]
        else:
            ids = [e.experiment_id for e in client.search_experiments()]
        found = client.search_runs(experiment_ids=ids, max_results=50_000) if ids else []
    except ClimbError:
        raise
    except Exception as exc:
        raise ClimbError(f"mlflow: {tracking_uri}: cannot list runs ({exc})") from None
    return [
        TrackerRun(
            id=r.info.run_id,
            name=r.info.run_name or r.info.run_id,
            config=dict(r.data.params),
            metrics={k: float(v) for k, v in r.data.metrics.items()},
        )
        for r in sorted(found, key=lambda r: (r.info.start_time or 0, r.info.run_id))
    ]


def read_wandb(path: str, api: Any = None) -> list[TrackerRun]:
    """The runs of a W&B project ``ENTITY/PROJECT`` through the public API
    (``wandb.Api().runs(path)``): ``run.config`` (flattened) and ``run.summary`` (last values).
    ``api`` replaces ``wandb.Api()`` (tests pass an offline stand-in)."""
    if path.count("/") != 1 or not all(path.split("/")):
        raise ClimbError(f"wandb: '{path}' must be ENTITY/PROJECT")
    if api is None:
        api = _need("wandb", "wandb").Api()
    try:
        found = list(api.runs(path))
    except Exception as exc:
        raise ClimbError(f"wandb: cannot list the runs of {path} ({exc})") from None
    out = []
    for r in found:
        summary = {k: v for k, v in dict(r.summary).items() if not str(k).startswith("_")}
        metrics = {k: float(v) for k, v in flatten(summary).items() if _is_number(v)}
        config = {k: v for k, v in flatten(dict(r.config)).items() if not k.startswith("_")}
        out.append(
            TrackerRun(id=str(r.id), name=str(r.name or r.id), config=config, metrics=metrics)
        )
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.floating | np.integer) and not isinstance(v, bool)
