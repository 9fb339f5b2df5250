"""The run store: finished proxy runs in one SQLite file, written atomically, read as a run table.

A sweep writes each finished run here — the run's final row *and* all its checkpoint rows, its
spec hash, its full spec as JSON and the versions that produced it — in **one transaction**, so a
crash, a ``SIGKILL`` or Ctrl-C can never leave half a run behind. Re-running a sweep asks the store
which run ids are finished (and under which spec hash) and only trains the rest.

Layout (SQLite, WAL journal)::

    climb_meta(key TEXT PRIMARY KEY, value TEXT)        -- format = "climb-run-store", version = 1,
                                                        -- corpus = {source: digest of its text}
    runs(run_id TEXT PRIMARY KEY, spec_hash TEXT, spec_json TEXT, versions_json TEXT,
         finished_at TEXT, wall_s REAL, n_rows INTEGER)
    rows(run_id TEXT REFERENCES runs, seq INTEGER, row_run TEXT UNIQUE, row_json TEXT)

``rows.row_json`` holds one run-table row (``run``, ``tokens``, ``params``, ``p.<src>``,
``loss.<src>``, ``train_run``, ``true_budget``, meta such as ``seed``, ``final``, ``wall_s``);
:meth:`RunStore.to_run_table` turns all of them into the canonical
:class:`climb.data.runs.RunTable`. Rows stored before ``train_run``/``true_budget`` existed are
read with ``train_run`` = the id of the run that stored them and ``true_budget`` = ``final`` (a
cosine checkpoint is mid-schedule), so older stores open unchanged.

A file that is not a climb store (a text file, another application's SQLite database, an empty
file) is refused with a one-line :class:`~climb.errors.ClimbError` *before* anything is written
to it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from climb.data.runs import LOSS_PREFIX, P_PREFIX, RunTable
from climb.errors import ClimbError

STORE_FORMAT = "climb-run-store"
STORE_VERSION = 1
_SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS climb_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    spec_hash TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    versions_json TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    wall_s REAL,
    n_rows INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rows (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    seq INTEGER NOT NULL,
    row_run TEXT NOT NULL UNIQUE,
    row_json TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
"""


@dataclass(frozen=True)
class StoredRun:
    """One finished run as recorded in the store.

    Attributes:
        run_id: the planned run id (the id of its final row).
        spec_hash: hash of the :class:`~climb.proxy.config.RunSpec` that produced it.
        spec: the spec as a JSON-compatible dict.
        versions: versions of climb, python, torch… that produced it.
        finished_at: UTC ISO timestamp of the transaction that stored it.
        wall_s: wall-clock seconds of training, when known.
        rows: its run-table rows (checkpoints first, final row last), as dicts.
    """

    run_id: str
    spec_hash: str
    spec: dict[str, Any]
    versions: dict[str, Any]
    finished_at: str
    wall_s: float | None
    rows: list[dict[str, Any]]


class RunStore:
    """A SQLite run store (see the module docstring for the layout).

    ``RunStore(path)`` opens an existing store, or creates one when the file does not exist
    (``create=False`` refuses to create). Use as a context manager or call :meth:`close`.
    """

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        check_store_file(self.path, must_exist=not create)
        new = not self.path.exists()
        if new:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=NORMAL")
            self._con.execute("PRAGMA foreign_keys=ON")
            if new:
                with self._transaction() as cur:
                    for stmt in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                        cur.execute(stmt)
                    cur.execute(
                        "INSERT INTO climb_meta(key, value) VALUES ('format', ?), ('version', ?), "
                        "('created_at', ?)",
                        (STORE_FORMAT, str(STORE_VERSION), _now()),
                    )
        except sqlite3.Error as exc:
            raise ClimbError(f"{self.path}: cannot open the run store ({exc})") from None

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        cur = self._con.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        else:
            cur.execute("COMMIT")

    # ------------------------------------------------------------------ writing
    def add_run(
        self,
        run_id: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        spec_hash: str,
        spec: Mapping[str, Any],
        versions: Mapping[str, Any] | None = None,
        wall_s: float | None = None,
    ) -> None:
        """Store a finished run and all its rows in one transaction (all or nothing).

        ``rows`` are run-table rows; exactly one must have ``run == run_id`` (the final row).
        Storing a run id that is already present is an error (finished runs are never overwritten).
        """
        if not rows:
            raise ClimbError(f"run '{run_id}': no rows to store")
        ids = [str(r.get("run")) for r in rows]
        if ids.count(run_id) != 1:
            raise ClimbError(
                f"run '{run_id}': expected exactly one final row with run = '{run_id}'"
            )
        if len(set(ids)) != len(ids):
            raise ClimbError(f"run '{run_id}': duplicated row ids in its rows")
        for r in rows:
            for key, value in r.items():
                if isinstance(value, float) and not math.isfinite(value) and not math.isnan(value):
                    raise ClimbError(
                        f"run '{run_id}': row '{r.get('run')}': column '{key}' is {value}; not stored"
                    )
        finals = [r for r in rows if str(r.get("run")) == run_id]
        ordered = [r for r in rows if str(r.get("run")) != run_id] + finals
        try:
            with self._transaction() as cur:
                cur.execute(
                    "INSERT INTO runs(run_id, spec_hash, spec_json, versions_json, finished_at, "
                    "wall_s, n_rows) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        spec_hash,
                        json.dumps(_jsonable(dict(spec)), sort_keys=True),
                        json.dumps(_jsonable(dict(versions or {})), sort_keys=True),
                        _now(),
                        wall_s,
                        len(ordered),
                    ),
                )
                cur.executemany(
                    "INSERT INTO rows(run_id, seq, row_run, row_json) VALUES (?, ?, ?, ?)",
                    [
                        (run_id, k, str(r["run"]), json.dumps(_jsonable(dict(r)), allow_nan=False))
                        for k, r in enumerate(ordered)
                    ],
                )
        except sqlite3.IntegrityError as exc:
            if "runs.run_id" in str(exc):
                raise ClimbError(
                    f"{self.path}: run '{run_id}' is already stored; finished runs are never overwritten"
                ) from None
            raise ClimbError(
                f"{self.path}: run '{run_id}': a row id is already stored ({exc})"
            ) from None

    def record_corpus(self, fingerprint: Mapping[str, str]) -> None:
        """Add ``{source: digest}`` of the corpus text runs are trained on to the store's record
        (:meth:`corpus_fingerprint`). A source recorded with another digest is an error: runs of
        one store are never trained on different text under the same source name."""
        with self._transaction() as cur:
            row = cur.execute("SELECT value FROM climb_meta WHERE key = 'corpus'").fetchone()
            have = {} if row is None else dict(json.loads(row[0]))
            check_same_corpus(have, fingerprint, self.path)
            have.update({str(k): str(v) for k, v in fingerprint.items()})
            cur.execute(
                "INSERT OR REPLACE INTO climb_meta(key, value) VALUES ('corpus', ?)",
                (json.dumps(have, sort_keys=True),),
            )

    # ------------------------------------------------------------------ reading
    def corpus_fingerprint(self) -> dict[str, str]:
        """``{source: digest}`` of the corpus text the stored runs were trained and evaluated on
        (empty for a store written before climb recorded it; such a store records the corpus of
        its next sweep)."""
        row = self._con.execute("SELECT value FROM climb_meta WHERE key = 'corpus'").fetchone()
        return {} if row is None else dict(json.loads(row[0]))

    def finished(self) -> dict[str, str]:
        """``{run_id: spec_hash}`` of every finished run."""
        return dict(self._con.execute("SELECT run_id, spec_hash FROM runs").fetchall())

    def __len__(self) -> int:
        return int(self._con.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def __contains__(self, run_id: object) -> bool:
        row = self._con.execute("SELECT 1 FROM runs WHERE run_id = ?", (str(run_id),)).fetchone()
        return row is not None

    def get(self, run_id: str) -> StoredRun:
        """The stored record of one run (``ClimbError`` if it is not there)."""
        rec = self._con.execute(
            "SELECT run_id, spec_hash, spec_json, versions_json, finished_at, wall_s FROM runs "
            "WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        if rec is None:
            raise ClimbError(f"{self.path}: no run '{run_id}' in the store")
        rows = [
            _with_run_columns(json.loads(r[0]), run_id)
            for r in self._con.execute(
                "SELECT row_json FROM rows WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
        ]
        return StoredRun(
            run_id=rec[0],
            spec_hash=rec[1],
            spec=json.loads(rec[2]),
            versions=json.loads(rec[3]),
            finished_at=rec[4],
            wall_s=rec[5],
            rows=rows,
        )

    def runs(self) -> list[StoredRun]:
        """Every stored run, in the order they finished."""
        ids = [r[0] for r in self._con.execute("SELECT run_id FROM runs ORDER BY rowid").fetchall()]
        return [self.get(i) for i in ids]

    def rows(self, *, final_only: bool = False) -> list[dict[str, Any]]:
        """All run-table rows (checkpoint rows and final rows), in the order runs finished."""
        where = " WHERE rows.row_run = runs.run_id" if final_only else ""
        sql = (
            "SELECT rows.row_json, rows.run_id FROM rows JOIN runs ON rows.run_id = runs.run_id"
            f"{where} ORDER BY runs.rowid, rows.seq"
        )
        return [_with_run_columns(json.loads(r[0]), r[1]) for r in self._con.execute(sql)]

    def to_frame(self, *, final_only: bool = False) -> pd.DataFrame:
        """The stored rows as a canonical frame (``run, tokens, params, p.*, loss.*, meta…``)."""
        rows = self.rows(final_only=final_only)
        if not rows:
            raise ClimbError(
                f"{self.path}: the store holds no finished runs yet; run `climb sweep`"
            )
        frame = pd.DataFrame.from_records(rows)
        first = [c for c in ("run", "tokens", "params") if c in frame.columns]
        p_cols = sorted(c for c in frame.columns if c.startswith(P_PREFIX))
        l_cols = sorted(c for c in frame.columns if c.startswith(LOSS_PREFIX))
        rest = [c for c in frame.columns if c not in first and c not in p_cols and c not in l_cols]
        frame = frame[first + p_cols + l_cols + rest]
        # A source missing from some run's mixture was not in that run: share 0.
        frame[p_cols] = frame[p_cols].fillna(0.0)
        return frame

    def to_run_table(self, *, final_only: bool = False) -> RunTable:
        """The canonical run table of everything stored (``final_only``: skip checkpoint rows)."""
        return RunTable.from_frame(self.to_frame(final_only=final_only), origin=str(self.path))


# ---------------------------------------------------------------------- validation
def check_same_corpus(
    recorded: Mapping[str, str], fingerprint: Mapping[str, str], store: str | Path
) -> None:
    """One-line error when a source's text differs from the one a store's runs were trained on."""
    changed = sorted(s for s in fingerprint if s in recorded and recorded[s] != fingerprint[s])
    if changed:
        raise ClimbError(
            f"{store}: its runs were trained on other text for source(s) {', '.join(changed)} "
            "than this corpus has; use a new store, or the corpus those runs were trained on"
        )


def check_store_file(path: str | Path, *, must_exist: bool = False) -> None:
    """Refuse, with a one-line :class:`ClimbError`, a file that is not a climb run store.

    Reads only (the file is never modified). A missing file is fine unless ``must_exist``.
    """
    path = Path(path)
    if not path.exists():
        if must_exist:
            raise ClimbError(f"{path}: no such run store")
        return
    if path.is_dir():
        raise ClimbError(f"{path}: is a directory, not a climb run store; give a .db file path")
    with path.open("rb") as fh:
        head = fh.read(len(_SQLITE_MAGIC))
    if head != _SQLITE_MAGIC:
        what = "an empty file" if not head else "not an SQLite database"
        raise ClimbError(
            f"{path}: {what}, not a climb run store; choose a new store path or remove the file"
        )
    try:
        # Not ``mode=ro``: a read-only connection cannot recover the WAL of a store whose writer
        # was killed, and mixing read-only and read-write connections to a WAL database in one
        # process can read stale pages. Reading with a plain connection changes no content and
        # creates no file for a database that is not in WAL mode.
        tables, meta = _read_header(path, "rw")
    except sqlite3.Error:
        try:  # e.g. a store on a read-only file system
            tables, meta = _read_header(path, "ro")
        except sqlite3.Error as exc:
            raise ClimbError(
                f"{path}: unreadable SQLite database ({exc}); not a climb run store"
            ) from None
    if meta.get("format") != STORE_FORMAT or not {"runs", "rows"} <= tables:
        raise ClimbError(
            f"{path}: an SQLite database of another application, not a climb run store; "
            "choose a new store path"
        )
    version = meta.get("version", "?")
    if version != str(STORE_VERSION):
        raise ClimbError(
            f"{path}: climb run store version {version}, this climb reads version {STORE_VERSION}"
        )


def _read_header(path: Path, mode: str) -> tuple[set[str], dict[str, str]]:
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True, timeout=30.0)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        meta: dict[str, str] = {}
        if "climb_meta" in tables:
            meta = dict(con.execute("SELECT key, value FROM climb_meta").fetchall())
    finally:
        con.close()
    return tables, meta


# ---------------------------------------------------------------------- helpers
def _with_run_columns(row: dict[str, Any], run_id: str) -> dict[str, Any]:
    """Fill ``train_run`` and ``true_budget`` of a row stored before they existed."""
    row.setdefault("train_run", run_id)
    row.setdefault("true_budget", bool(row.get("final", True)))
    return row


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds")


def _jsonable(value: Any) -> Any:
    """Plain JSON types (numpy scalars → Python; NaN → None)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    return str(value)
