"""The run table: one type for the results of proxy training runs.

Canonical layout (CSV, Parquet or JSONL), one row per evaluated model:

====================  ==========================================================================
column                meaning
====================  ==========================================================================
``run``               id of the evaluated model, unique
``train_run``         optional: id of the training run the row was evaluated from (default: ``run``);
                      rows of one training run (checkpoints, WSD cooldown branches) share it, and
                      their mixture and model size
``tokens``            total training tokens ``D`` of the run (> 0)
``params``            optional: non-embedding model size ``N`` (> 0)
``true_budget``       optional bool (default true): the row's model finished its learning-rate
                      schedule at exactly ``tokens`` (a full run or a WSD cooldown branch); false
                      for a mid-schedule checkpoint
``p.<source>``        mixture proportion of ``<source>`` (≥ 0, rows sum to 1 within 1e-3)
``loss.<source>``     validation loss on ``<source>``'s held-out text (finite, > 0; empty = not
                      measured)
``metric.<name>``     optional downstream metric of the model, higher is better (e.g. accuracy on
                      a benchmark; finite; empty = not measured): :attr:`RunTable.metrics`,
                      :attr:`RunTable.metric`, fitted by :mod:`climb.laws.metrics`
anything else         kept as metadata (e.g. ``seed``, ``step``), ignored by the laws
====================  ==========================================================================

Sources with a ``p.`` column but no ``loss.`` column are pure donors. A ``loss.<x>`` column without
a ``p.<x>`` column is an *evaluation-only* target: measured, never trained on (a language with
held-out text but no training data); laws predict it from transfer alone and the allocator gives
it no share (:attr:`RunTable.eval_only`). A ``p.<x>`` column that is 0 in every row while
``loss.<x>`` is measured is read the same way (the column is dropped, with a
:class:`~climb.errors.ClimbWarning`): nothing in the runs says what training on ``x`` would do.

Training runs are the table's groups (:meth:`RunTable.groups`): cross-validation holds out and the
bootstrap resamples whole training runs. A table written before ``train_run`` existed, whose
checkpoint rows were named ``<run>@<tokens>``, is read once into that form (``train_run`` =
``<run>``; those checkpoint rows, mid-schedule, get ``true_budget`` false).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from climb.errors import ClimbError, ClimbWarning

SUM_TOLERANCE = 1e-3
"""Rows whose proportions sum to 1 within this are renormalized (with a warning); others fail."""

P_PREFIX = "p."
LOSS_PREFIX = "loss."
METRIC_PREFIX = "metric."
FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


@dataclass(frozen=True, eq=False)
class RunTable:
    """Validated proxy-run results.

    Attributes:
        run: ids of the ``n`` evaluated models.
        tokens: ``(n,)`` training tokens ``D``.
        params: ``(n,)`` non-embedding parameters ``N``, or ``None`` when not recorded.
        sources: the ``S`` mixture sources (``p.`` columns), in file order.
        p: ``(n, S)`` mixture proportions; each row sums to 1.
        targets: the ``T`` sources with measured loss (``loss.`` columns); those not in
            ``sources`` are evaluation-only (:attr:`eval_only`).
        loss: ``(n, T)`` validation losses; ``NaN`` where not measured.
        meta: extra columns, row-aligned (may be empty).
        train_run: ``(n,)`` id of the training run of each row (default: its ``run``).
        true_budget: ``(n,)`` bool: the row's model finished its schedule at ``tokens``.
    """

    run: list[str]
    tokens: np.ndarray
    params: np.ndarray | None
    sources: list[str]
    p: np.ndarray
    targets: list[str]
    loss: np.ndarray
    meta: pd.DataFrame = field(default_factory=pd.DataFrame)
    train_run: list[str] = field(default_factory=list)
    true_budget: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def __post_init__(self) -> None:
        n = len(self.run)
        if not self.train_run:
            object.__setattr__(self, "train_run", list(self.run))
        if len(self.true_budget) == 0 and n:
            object.__setattr__(self, "true_budget", np.ones(n, dtype=bool))
        if len(self.train_run) != n or np.shape(self.true_budget) != (n,):
            raise ClimbError(
                f"run table: train_run and true_budget need one entry per row ({n}), got "
                f"{len(self.train_run)} and {len(self.true_budget)}"
            )
        object.__setattr__(self, "true_budget", np.asarray(self.true_budget, dtype=bool))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_arrays(
        cls,
        *,
        run: Sequence[str],
        tokens: Any,
        p: Any,
        sources: Sequence[str],
        loss: Any,
        targets: Sequence[str],
        params: Any = None,
        meta: pd.DataFrame | None = None,
        train_run: Sequence[str] | None = None,
        true_budget: Any = None,
        origin: str = "run table",
    ) -> RunTable:
        """Build and validate a table from arrays (the API twin of reading a file).

        ``train_run`` (default: ``run``) and ``true_budget`` (default: all true) are per row."""
        n = len(run)
        tok = np.broadcast_to(np.asarray(tokens, dtype=float), (n,)).copy()
        par = (
            None
            if params is None
            else np.broadcast_to(np.asarray(params, dtype=float), (n,)).copy()
        )
        frame = pd.DataFrame({"run": list(run), "tokens": tok})
        if train_run is not None:
            frame["train_run"] = list(train_run)
        if par is not None:
            frame["params"] = par
        if true_budget is not None:
            frame["true_budget"] = np.broadcast_to(np.asarray(true_budget), (n,)).tolist()
        p_arr = np.asarray(p, dtype=float).reshape(n, len(sources))
        l_arr = np.asarray(loss, dtype=float).reshape(n, len(targets))
        for k, s in enumerate(sources):
            frame[P_PREFIX + s] = p_arr[:, k]
        for k, t in enumerate(targets):
            frame[LOSS_PREFIX + t] = l_arr[:, k]
        if meta is not None and len(meta.columns):
            for c in meta.columns:
                frame[c] = meta[c].to_numpy()
        return cls.from_frame(frame, origin=origin, missing_loss=np.isnan(l_arr))

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        origin: str = "run table",
        missing_loss: np.ndarray | None = None,
        sum_tolerance: float = SUM_TOLERANCE,
        warn_renormalized: bool = True,
    ) -> RunTable:
        """Validate a canonical frame.

        ``missing_loss`` marks the loss cells that were empty in the source file (allowed); every
        other non-finite loss is an error. When omitted, every NaN loss counts as empty.
        Rows whose proportions sum to 1 within ``sum_tolerance`` are renormalized.
        """
        if frame.shape[0] == 0:
            raise ClimbError(f"{origin}: no rows (the file is empty); expected one row per run")
        cols = [str(c) for c in frame.columns]
        dupes = sorted({c for c in cols if cols.count(c) > 1})
        if dupes:
            raise ClimbError(f"{origin}: duplicated column(s) {', '.join(dupes)}")
        for required in ("run", "tokens"):
            if required not in cols:
                raise ClimbError(
                    f"{origin}: missing column '{required}' (columns are: {', '.join(cols[:8])}"
                    f"{'…' if len(cols) > 8 else ''})"
                )
        sources = [c[len(P_PREFIX) :] for c in cols if c.startswith(P_PREFIX)]
        targets = [c[len(LOSS_PREFIX) :] for c in cols if c.startswith(LOSS_PREFIX)]
        if not sources:
            raise ClimbError(f"{origin}: no mixture columns; expected 'p.<source>' columns")
        if not targets:
            raise ClimbError(f"{origin}: no loss columns; expected 'loss.<source>' columns")

        run = [str(x) for x in frame["run"].tolist()]
        for i, r in enumerate(run):
            if r.strip() == "" or r.lower() == "nan":
                raise ClimbError(f"{origin}: row {i + 1}: empty 'run' id")
        seen: dict[str, int] = {}
        for i, r in enumerate(run):
            if r in seen:
                raise ClimbError(
                    f"{origin}: duplicated run id '{r}' (rows {seen[r] + 1} and {i + 1})"
                )
            seen[r] = i

        tokens = _numeric(frame["tokens"], origin, "tokens")
        _check_positive(tokens, origin, "tokens", run)
        params = None
        if "params" in cols:
            params = _numeric(frame["params"], origin, "params")
            _check_positive(params, origin, "params", run)

        p = np.column_stack([_numeric(frame[P_PREFIX + s], origin, P_PREFIX + s) for s in sources])
        sources, p = _drop_unused_targets(sources, p, targets, origin)
        bad = ~np.isfinite(p) | (p < 0)
        if bad.any():
            i, k = np.argwhere(bad)[0]
            raise ClimbError(
                f"{origin}: run '{run[i]}': column 'p.{sources[k]}' is {float(p[i, k])!r}; "
                "proportions must be finite and ≥ 0"
            )
        sums = p.sum(axis=1)
        off = np.abs(sums - 1.0)
        if (off > sum_tolerance).any():
            i = int(np.argmax(off))
            raise ClimbError(
                f"{origin}: run '{run[i]}': proportions sum to {sums[i]:.6g}, not 1 "
                f"(tolerance {sum_tolerance:g}); fix the 'p.' columns"
            )
        if (off > 1e-9).any():
            if warn_renormalized:
                warnings.warn(
                    f"{origin}: {(off > 1e-9).sum()} row(s) with proportions summing to 1 within "
                    f"{sum_tolerance:g} were renormalized",
                    ClimbWarning,
                    stacklevel=2,
                )
            p = p / sums[:, None]

        loss = _losses(frame, targets, run, origin, missing_loss)
        train_run, true_budget = _training_runs(frame, run, origin)
        _check_training_runs(train_run, p, params, run, sources, origin)
        known = {"run", "tokens", "params", "train_run", "true_budget"}
        meta_cols = [
            c for c in cols if c not in known and not c.startswith((P_PREFIX, LOSS_PREFIX))
        ]
        meta = frame[meta_cols].reset_index(drop=True).copy() if meta_cols else pd.DataFrame()
        for c in meta_cols:  # downstream metrics live with the metadata, as numbers
            if c.startswith(METRIC_PREFIX):
                meta[c] = _metric(meta[c], origin, c, run)
        return cls(run, tokens, params, sources, p, targets, loss, meta, train_run, true_budget)

    # ------------------------------------------------------------------ files
    @classmethod
    def read(cls, path: str | Path) -> RunTable:
        """Read a canonical run table from CSV, Parquet or JSONL (chosen by the file's suffix)."""
        path = Path(path)
        fmt = _format_of(path)
        if not path.exists():
            raise ClimbError(f"{path}: no such file")
        if path.is_dir():
            raise ClimbError(f"{path}: is a directory, expected a run table file")
        if path.stat().st_size == 0:
            raise ClimbError(f"{path}: the file is empty; expected one row per run")
        frame, missing = _read_frame(path, fmt)
        loss_cols = [c for c in frame.columns if str(c).startswith(LOSS_PREFIX)]
        mask = missing[loss_cols].to_numpy() if loss_cols else None
        return cls.from_frame(frame, origin=str(path), missing_loss=mask)

    def to_frame(self) -> pd.DataFrame:
        """The canonical frame (``run, train_run, tokens, [params], true_budget, p.*, loss.*,
        meta…``)."""
        data: dict[str, Any] = {"run": self.run, "train_run": self.train_run, "tokens": self.tokens}
        if self.params is not None:
            data["params"] = self.params
        data["true_budget"] = self.true_budget
        for k, s in enumerate(self.sources):
            data[P_PREFIX + s] = self.p[:, k]
        for k, t in enumerate(self.targets):
            data[LOSS_PREFIX + t] = self.loss[:, k]
        frame = pd.DataFrame(data)
        for c in self.meta.columns:
            frame[c] = self.meta[c].to_numpy()
        return frame

    def write(self, path: str | Path) -> Path:
        """Write the canonical table; the format follows the suffix. Written atomically."""
        path = Path(path)
        fmt = _format_of(path)
        frame = self.to_frame()
        tmp = path.with_name(f".{path.name}.tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            frame.to_csv(tmp, index=False, float_format="%.10g")
        elif fmt == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            with tmp.open("w", encoding="utf-8") as fh:
                for rec in frame.to_dict(orient="records"):
                    clean = {k: _json_value(v) for k, v in rec.items()}
                    fh.write(json.dumps(clean, allow_nan=False) + "\n")
        tmp.replace(path)
        return path

    # ------------------------------------------------------------------ views
    def __len__(self) -> int:
        return len(self.run)

    @property
    def n_sources(self) -> int:
        return len(self.sources)

    def groups(self) -> np.ndarray:
        """Integer group of each row: its training run, numbered in order of first appearance.

        Rows of one group are one model's evaluations (checkpoints, cooldown branches); resampling
        and held-out splits take or leave whole groups."""
        index: dict[str, int] = {}
        return np.array([index.setdefault(g, len(index)) for g in self.train_run], dtype=int)

    @property
    def metrics(self) -> list[str]:
        """Names of the downstream metrics (``metric.<name>`` columns), in column order."""
        return [str(c)[len(METRIC_PREFIX) :] for c in self.meta.columns if str(c).startswith(METRIC_PREFIX)]  # fmt: skip

    @property
    def metric(self) -> np.ndarray:
        """``(n, M)`` downstream metrics in :attr:`metrics` order, higher is better; NaN = not
        measured."""
        cols = [METRIC_PREFIX + m for m in self.metrics]
        if not cols:
            return np.zeros((len(self), 0))
        return self.meta[cols].to_numpy(dtype=float)

    @property
    def n_train_runs(self) -> int:
        """Number of distinct training runs (groups)."""
        return len(set(self.train_run))

    @property
    def target_columns(self) -> np.ndarray:
        """Index into ``sources`` of each target (−1 for an evaluation-only target)."""
        return np.array(
            [self.sources.index(t) if t in self.sources else -1 for t in self.targets], dtype=int
        )

    @property
    def eval_only(self) -> list[str]:
        """Targets with no mixture column: measured, never trained on (predicted from transfer)."""
        return [t for t in self.targets if t not in self.sources]

    def subset(self, rows: Sequence[int] | np.ndarray) -> RunTable:
        """The table restricted to ``rows`` (indices or a boolean mask), same columns."""
        idx = np.arange(len(self))[np.asarray(rows)]
        return RunTable(
            run=[self.run[i] for i in idx],
            tokens=self.tokens[idx],
            params=None if self.params is None else self.params[idx],
            sources=list(self.sources),
            p=self.p[idx],
            targets=list(self.targets),
            loss=self.loss[idx],
            meta=self.meta.iloc[idx].reset_index(drop=True)
            if len(self.meta.columns)
            else pd.DataFrame(),
            train_run=[self.train_run[i] for i in idx],
            true_budget=self.true_budget[idx],
        )

    def select_targets(self, targets: Sequence[str]) -> RunTable:
        """The table with only the given loss targets."""
        missing = [t for t in targets if t not in self.targets]
        if missing:
            raise ClimbError(
                f"unknown target(s) {', '.join(missing)}; the runs measure: {', '.join(self.targets)}"
            )
        idx = [self.targets.index(t) for t in targets]
        return RunTable(
            self.run, self.tokens, self.params, self.sources, self.p, list(targets),
            self.loss[:, idx], self.meta, self.train_run, self.true_budget,
        )  # fmt: skip

    @staticmethod
    def concat(tables: Sequence[RunTable]) -> RunTable:
        """Stack tables with the same sources; targets are the union (missing = not measured)."""
        if not tables:
            raise ClimbError("no run tables to combine")
        sources = list(tables[0].sources)
        for t in tables[1:]:
            if set(t.sources) != set(sources):
                raise ClimbError(
                    f"run tables disagree on mixture sources: {', '.join(sources)} vs "
                    f"{', '.join(t.sources)}"
                )
        frames = [t.to_frame() for t in tables]
        frame = pd.concat(frames, ignore_index=True, sort=False)
        return RunTable.from_frame(frame, origin="combined run tables")

    def summary(self) -> dict[str, Any]:
        """Counts and ranges, for a one-screen description."""
        return {
            "runs": len(self),
            "train_runs": self.n_train_runs,
            "true_budget_rows": int(self.true_budget.sum()),
            "sources": len(self.sources),
            "targets": len(self.targets),
            "token_budgets": sorted({float(x) for x in self.tokens}),
            "model_sizes": None if self.params is None else sorted({float(x) for x in self.params}),
            "measured_losses": int(np.isfinite(self.loss).sum()),
        }


# ---------------------------------------------------------------------- two-table importer
def read_two_tables(
    weights: str | Path,
    losses: str | Path,
    *,
    key: str = "index",
    source_names: Mapping[str, str] | None = None,
    target_names: Mapping[str, str] | None = None,
    weight_prefix: str = "",
    weight_suffix: str = "",
    loss_prefix: str = "",
    loss_suffix: str = "",
    tokens: float | None = None,
    params: float | None = None,
    run_prefix: str = "",
    sum_tolerance: float = SUM_TOLERANCE,
    warn_renormalized: bool = True,
) -> RunTable:
    """Join a weights table and a losses table on ``key`` into a run table.

    Column names map to source names by ``source_names`` / ``target_names`` (explicit mapping from
    the file's column to the source), else by stripping ``*_prefix`` / ``*_suffix``. Columns that
    match neither are ignored, except ``tokens`` / ``params`` columns, which are used when present;
    otherwise ``tokens`` (and optionally ``params``) must be given. Rows present in only one table
    are dropped (losses without a mixture cannot be used; a mixture without losses is no run).
    """
    wpath, lpath = Path(weights), Path(losses)
    wf, _ = _read_frame_checked(wpath)
    lf, lmissing = _read_frame_checked(lpath)
    for path, frame in ((wpath, wf), (lpath, lf)):
        if key not in frame.columns:
            raise ClimbError(f"{path}: missing key column '{key}' (name it with key)")
    w_map = _column_map(list(wf.columns), key, source_names, weight_prefix, weight_suffix, wpath)
    l_map = _column_map(list(lf.columns), key, target_names, loss_prefix, loss_suffix, lpath)
    missing_src = [t for t in l_map.values() if t not in w_map.values()]
    if missing_src:
        raise ClimbError(
            f"{lpath}: loss target '{missing_src[0]}' has no mixture column in {wpath}; "
            "map the names so they match"
        )
    frame = pd.DataFrame(
        {"run": [f"{run_prefix}{k}" for k in wf[key].tolist()], key: wf[key].to_numpy()}
    )
    for col, name in w_map.items():
        frame[P_PREFIX + name] = pd.to_numeric(wf[col], errors="coerce").to_numpy()
    lsub = pd.DataFrame({key: lf[key].to_numpy()})
    for col, name in l_map.items():
        lsub[LOSS_PREFIX + name] = pd.to_numeric(lf[col], errors="coerce").to_numpy()
    for name in ("tokens", "params"):
        if name in wf.columns:
            frame[name] = wf[name].to_numpy()
        elif name in lf.columns:
            lsub[name] = lf[name].to_numpy()
    lsub["__lrow__"] = np.arange(len(lsub))
    if lsub[key].duplicated().any():
        raise ClimbError(f"{lpath}: duplicated key '{lsub[key][lsub[key].duplicated()].iloc[0]}'")
    joined = frame.merge(lsub, on=key, how="inner")
    if joined.empty:
        raise ClimbError(f"{wpath} and {lpath} share no '{key}' value; nothing to join")
    if "tokens" not in joined.columns:
        if tokens is None:
            raise ClimbError("the tables have no 'tokens' column; give the token budget (tokens)")
        joined["tokens"] = float(tokens)
    if "params" not in joined.columns and params is not None:
        joined["params"] = float(params)
    rows = joined.pop("__lrow__").to_numpy(dtype=int)
    missing = lmissing[list(l_map)].to_numpy(dtype=bool)[rows]
    joined = joined.drop(columns=[key])
    return RunTable.from_frame(
        joined,
        origin=f"{wpath} + {lpath}",
        missing_loss=missing,
        sum_tolerance=sum_tolerance,
        warn_renormalized=warn_renormalized,
    )


REGMIX_FILES = {
    ("train", "1m"): ("train_mixture_1m.csv", "train_pile_loss_1m.csv", 1e9, 1e6),
    ("test", "1m"): ("test_mixture_1m.csv", "test_pile_loss_1m.csv", 1e9, 1e6),
    ("test", "60m"): ("test_mixture_60m.csv", "test_pile_loss_60m.csv", 1e9, 6e7),
    ("test", "1b"): ("test_mixture_1B.csv", "test_pile_loss_1B.csv", 2.5e10, 1e9),
}
"""The public RegMix sweeps (Sea AI Lab, MIT licence) shipped with climb: (weights, losses, D, N)."""


def read_regmix(
    split: str = "train", size: str = "1m", directory: str | Path | None = None
) -> RunTable:
    """One of the RegMix proxy-run files as a run table (sources named ``arxiv``, ``pile_cc``, …).

    ``directory`` defaults to the copy shipped inside the package (``climb/resources/regmix``).
    RegMix rounds proportions to 3 decimals (17 sources), so rows sum to 1 within 0.01 only; they
    are renormalized silently.
    """
    spec = REGMIX_FILES.get((split.lower(), size.lower()))
    if spec is None:
        choices = ", ".join(f"{a}/{b}" for a, b in REGMIX_FILES)
        raise ClimbError(
            f"no RegMix file for split '{split}' and size '{size}'; choose from {choices}"
        )
    wname, lname, tokens, params = spec
    base = (
        Path(directory)
        if directory is not None
        else Path(str(resources.files("climb") / "resources" / "regmix"))
    )
    return read_two_tables(
        base / wname,
        base / lname,
        key="index",
        weight_prefix="train_the_pile_",
        loss_prefix="metric/the_pile_",
        loss_suffix="_val_loss",
        tokens=tokens,
        params=params,
        run_prefix=f"regmix-{size.lower()}-{split.lower()}-",
        sum_tolerance=0.01,
        warn_renormalized=False,
    )


# ---------------------------------------------------------------------- helpers
def _format_of(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ClimbError(
            f"{path}: unknown run-table format '{path.suffix or '(no suffix)'}'; "
            "use .csv, .parquet or .jsonl"
        )
    return fmt


def _read_frame_checked(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    fmt = _format_of(path)
    if not path.exists():
        raise ClimbError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ClimbError(f"{path}: the file is empty")
    frame, missing = _read_frame(path, fmt)
    if frame.shape[0] == 0:
        raise ClimbError(f"{path}: no rows")
    return frame, missing


def _read_frame(path: Path, fmt: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a file; also return a mask of cells that were *empty* (not NaN literals)."""
    try:
        if fmt == "csv":
            raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[])
            missing = raw.apply(lambda col: col.str.strip() == "")
            frame = raw.copy()
            for c in frame.columns:
                if c != "run":
                    frame[c] = frame[c].where(~missing[c], None)
            return frame, missing
        if fmt == "parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            frame = table.to_pandas()
            missing = pd.DataFrame(
                {
                    name: table.column(name).is_null().to_numpy(zero_copy_only=False)
                    for name in table.column_names
                }
            )
            return frame, missing
        records = []
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ClimbError(f"{path}: line {lineno}: not valid JSON ({exc.msg})") from None
                if not isinstance(rec, dict):
                    raise ClimbError(f"{path}: line {lineno}: expected a JSON object per line")
                records.append(rec)
        frame = pd.DataFrame.from_records(records)
        missing = frame.isna() if len(frame.columns) else pd.DataFrame()
        # A JSON null is "not measured"; a NaN literal is a bad value.
        for c in frame.columns:
            missing[c] = [r.get(c, None) is None for r in records]
        return frame, missing
    except ClimbError:
        raise
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ClimbError(f"{path}: cannot read as {fmt}: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # pyarrow raises its own error types
        raise ClimbError(f"{path}: cannot read as {fmt}: {str(exc).splitlines()[0]}") from None


def _losses(
    frame: pd.DataFrame,
    targets: list[str],
    run: list[str],
    origin: str,
    missing_loss: np.ndarray | None,
) -> np.ndarray:
    """The ``loss.`` columns: NaN where not measured; every other value finite and > 0."""
    loss = np.column_stack(
        [_numeric(frame[LOSS_PREFIX + t], origin, LOSS_PREFIX + t) for t in targets]
    )
    empty = np.isnan(loss) if missing_loss is None else np.asarray(missing_loss, dtype=bool)
    bad = ~empty & ~(np.isfinite(loss) & (loss > 0))
    if bad.any():
        i, k = np.argwhere(bad)[0]
        raise ClimbError(
            f"{origin}: run '{run[i]}': column 'loss.{targets[k]}' is {float(loss[i, k])!r}; "
            "losses must be finite and > 0 (leave the cell empty if not measured)"
        )
    loss = np.where(empty, np.nan, loss)
    if np.isnan(loss).all(axis=0).any():
        k = int(np.flatnonzero(np.isnan(loss).all(axis=0))[0])
        raise ClimbError(f"{origin}: column 'loss.{targets[k]}' has no measured value")
    return loss


_TRUE = {"true", "1", "1.0", "yes", "t", "y"}
_FALSE = {"false", "0", "0.0", "no", "f", "n"}


def _training_runs(
    frame: pd.DataFrame, run: list[str], origin: str
) -> tuple[list[str], np.ndarray]:
    """``train_run`` and ``true_budget`` of each row, with their defaults.

    Without a ``train_run`` column, a table whose ids use the old checkpoint convention
    ``<run>@<tokens>`` gets ``train_run = <run>``, and (without a ``true_budget`` column) its
    ``@`` rows are mid-schedule checkpoints; otherwise every row is its own training run."""
    legacy = "train_run" not in frame.columns and any(_checkpoint_id(r) for r in run)
    if "train_run" in frame.columns:
        train_run = []
        for i, (r, v) in enumerate(zip(run, frame["train_run"].tolist())):
            if _is_empty(v):
                train_run.append(r)
            elif isinstance(v, str | int | np.integer) and not isinstance(v, bool):
                train_run.append(str(v).strip())
            else:
                raise ClimbError(
                    f"{origin}: row {i + 1}: column 'train_run' is {v!r}; expected a run id"
                )
    else:
        train_run = [r.rsplit("@", 1)[0] if legacy and _checkpoint_id(r) else r for r in run]
    if "true_budget" not in frame.columns:
        return train_run, np.array([not (legacy and _checkpoint_id(r)) for r in run], dtype=bool)
    flags = np.ones(len(run), dtype=bool)
    for i, v in enumerate(frame["true_budget"].tolist()):
        if _is_empty(v):
            continue
        if isinstance(v, bool | np.bool_):
            flags[i] = bool(v)
        elif isinstance(v, int | float | np.number) and float(v) in (0.0, 1.0):
            flags[i] = float(v) == 1.0
        elif isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
            flags[i] = v.strip().lower() in _TRUE
        else:
            raise ClimbError(
                f"{origin}: run '{run[i]}': column 'true_budget' is {v!r}; use true or false"
            )
    return train_run, flags


def _checkpoint_id(run_id: str) -> bool:
    """The old checkpoint-row convention: ``<run>@<tokens>``."""
    head, sep, tail = run_id.rpartition("@")
    return bool(sep and head and tail.isdigit())


def _is_empty(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or str(v).strip() == ""


def _check_training_runs(
    train_run: list[str],
    p: np.ndarray,
    params: np.ndarray | None,
    run: list[str],
    sources: list[str],
    origin: str,
) -> None:
    """Rows of one training run share its mixture and model size (one model, several evaluations)."""
    first: dict[str, int] = {}
    for i, g in enumerate(train_run):
        j = first.setdefault(g, i)
        if j == i:
            continue
        diff = np.abs(p[i] - p[j])
        if diff.max() > 1e-6:
            k = int(np.flatnonzero(diff > 1e-6)[0])
            raise ClimbError(
                f"{origin}: runs '{run[j]}' and '{run[i]}' share train_run '{g}' but their "
                f"'p.{sources[k]}' differ ({p[j, k]:.6g} vs {p[i, k]:.6g}); rows of one training "
                "run have one mixture"
            )
        if params is not None and params[i] != params[j]:
            raise ClimbError(
                f"{origin}: runs '{run[j]}' and '{run[i]}' share train_run '{g}' but their "
                f"'params' differ ({params[j]:.6g} vs {params[i]:.6g}); rows of one training "
                "run have one model size"
            )


def _drop_unused_targets(
    sources: list[str], p: np.ndarray, targets: list[str], origin: str
) -> tuple[list[str], np.ndarray]:
    """Drop ``p.<x>`` columns that are 0 in every row where ``loss.<x>`` is a column: ``x`` is
    then an evaluation-only target (warned). At least one source must remain."""
    unused = [k for k, s in enumerate(sources) if s in targets and not (p[:, k] > 0).any()]
    if not unused or len(unused) == len(sources):
        return sources, p
    names = [sources[k] for k in unused]
    warnings.warn(
        f"{origin}: column(s) {', '.join('p.' + n for n in names)} are 0 in every run; "
        f"{', '.join(names)} treated as evaluation-only (measured, never trained on: predicted "
        "from transfer, never given a share); drop those columns to silence this",
        ClimbWarning,
        stacklevel=4,
    )
    keep = [k for k in range(len(sources)) if k not in unused]
    return [sources[k] for k in keep], p[:, keep]


def _numeric(col: pd.Series, origin: str, name: str) -> np.ndarray:
    values = pd.to_numeric(col, errors="coerce")
    bad = values.isna() & col.notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ClimbError(f"{origin}: row {i + 1}: column '{name}' is {col.iloc[i]!r}, not a number")
    return values.to_numpy(dtype=float)


def _metric(col: pd.Series, origin: str, name: str, run: list[str]) -> np.ndarray:
    """A ``metric.<name>`` column as floats: numbers or empty (not measured), never ±inf."""
    values = _numeric(col.where(col.astype(str).str.strip() != "", None), origin, name)
    if np.isinf(values).any():
        i = int(np.flatnonzero(np.isinf(values))[0])
        raise ClimbError(f"{origin}: run '{run[i]}': column '{name}' is {values[i]!r}; metrics must be finite (leave the cell empty if not measured)")  # fmt: skip
    return values


def _check_positive(values: np.ndarray, origin: str, name: str, run: list[str]) -> None:
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ClimbError(
            f"{origin}: run '{run[i]}': column '{name}' is {float(values[i])!r}; must be > 0"
        )


def _column_map(
    columns: Sequence[Any],
    key: str,
    names: Mapping[str, str] | None,
    prefix: str,
    suffix: str,
    path: Path,
) -> dict[str, str]:
    out: dict[str, str] = {}
    if names:
        unknown = [c for c in names if c not in columns]
        if unknown:
            raise ClimbError(f"{path}: no column '{unknown[0]}' to map")
        out = {str(c): str(v) for c, v in names.items()}
    else:
        for c in map(str, columns):
            if c in (key, "tokens", "params"):
                continue
            if c.startswith(prefix) and c.endswith(suffix) and len(c) > len(prefix) + len(suffix):
                out[c] = c[len(prefix) : len(c) - len(suffix)] if suffix else c[len(prefix) :]
    if not out:
        raise ClimbError(
            f"{path}: no column matches prefix '{prefix}' and suffix '{suffix}'; "
            "set the prefix/suffix or give an explicit name mapping"
        )
    return out


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, np.generic):
        v = v.item()
        if isinstance(v, float) and math.isnan(v):
            return None
    return v
