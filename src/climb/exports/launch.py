"""Proxy runs for the user's own trainer: one launch config per planned run and a manifest.

:func:`write_launch` renders every run of a sweep :class:`~climb.proxy.design.Plan` in an export
format (``olmo``: a ``SourceMixtureList`` YAML; ``megatron``: a ``--data-args-path`` file;
``torchtitan``: a ``DatasetMixConfig`` snippet; any other trainer format of
:data:`climb.exports.FORMATS` works the same way) and writes ``manifest.yaml``
(:class:`climb.data.manifest.Manifest`: run id, mixture, tokens, seed, config path, expected
metric names). The team launches each config with the run's budget and seed, then reports
``loss.<source>`` per run id; ``climb ingest --manifest manifest.yaml --results results.csv``
reads them back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from climb.data.manifest import Manifest, ManifestRun
from climb.errors import ClimbError
from climb.exports import FORMATS, export_mixture, write_text_atomic
from climb.exports.mixture import Mixture

SUFFIX = {"olmo": ".yaml", "megatron": ".txt", "megatron-args": ".args",
          "megatron-bridge": ".yaml", "torchtitan": ".py", "hf": ".py"}  # fmt: skip
"""File suffix of each trainer format's launch config."""


def write_launch(
    plan: Any,
    fmt: str,
    out_dir: str | Path,
    *,
    paths: dict[str, list[str]] | None = None,
) -> Path:
    """Write ``out_dir/<run id><suffix>`` for every run of ``plan`` and ``out_dir/manifest.yaml``.

    Args:
        plan: a :class:`climb.proxy.design.Plan` (sources, runs, train seed, design).
        fmt: a trainer export format (``olmo``, ``megatron``, ``torchtitan``, …).
        out_dir: the folder to write.
        paths: ``{source: [path, ...]}`` where the trainer finds each source's data.

    Returns:
        The manifest's path.
    """
    import yaml

    if fmt not in SUFFIX:
        raise ClimbError(
            f"fmt: '{fmt}' is not a trainer format; choose from {', '.join(SUFFIX)}"
            + ("" if fmt in FORMATS else f" (known export formats: {', '.join(FORMATS)})")
        )
    out = Path(out_dir)
    max_epochs = plan.design.get("max_epochs")
    seed = int(plan.train.seed)
    runs: list[ManifestRun] = []
    files: list[tuple[str, str]] = []  # rendered first: a bad path fails before any write
    for r in plan.runs:
        mixture = {s: float(r.mixture.get(s, 0.0)) for s in plan.sources}
        mix = Mixture(proportions=mixture, paths=dict(paths or {}), tokens=float(r.tokens),
                      max_epochs=None if max_epochs is None else float(max_epochs),
                      meta={"run": r.run_id, "seed": seed})  # fmt: skip
        name = f"{r.run_id}{SUFFIX[fmt]}"
        text = export_mixture(mix, fmt, target=out / name)
        branches = f"; WSD cooldown branches at {', '.join(map(str, r.branches))}" if r.branches else ""  # fmt: skip
        header = (  # Megatron reads its files with split(): no comment line there
            "" if fmt.startswith("megatron") and fmt != "megatron-bridge"
            else f"# climb proxy run {r.run_id}: train {int(r.tokens)} tokens with seed {seed}{branches}\n"
        )  # fmt: skip
        files.append((name, header + text))
        runs.append(ManifestRun(run=r.run_id, tokens=int(r.tokens), seed=seed, config=name,
                                mixture=mixture, branches=tuple(int(b) for b in r.branches)))  # fmt: skip
    for name, text in files:
        write_text_atomic(out / name, text, what="out_dir")
    manifest = Manifest(trainer=fmt, sources=list(plan.sources), runs=runs,
                        design={k: v for k, v in plan.design.items() if _plain(v)},
                        schedule=str(getattr(plan.train, "schedule", "cosine")))  # fmt: skip
    text = (
        "# climb launch manifest: train each run's config for its tokens with its seed, then\n"
        "# report one row per run id with the expected_metrics (validation loss per source):\n"
        "#   climb ingest --manifest THIS_FILE --results results.csv --out runs.csv\n"
        + yaml.safe_dump(manifest.to_dict(), sort_keys=False, allow_unicode=True, width=100)
    )
    return write_text_atomic(out / "manifest.yaml", text, what="out_dir")


def _plain(v: Any) -> bool:
    if isinstance(v, dict):
        return all(isinstance(k, str) and _plain(x) for k, x in v.items())
    if isinstance(v, list | tuple):
        return all(_plain(x) for x in v)
    return v is None or isinstance(v, str | int | float | bool)
