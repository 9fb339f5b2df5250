"""The SQLite run store: atomic runs, refusal of foreign files, export to the run table."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from climb.cli import main
from climb.data.runs import RunTable
from climb.data.store import RunStore, check_store_file
from climb.errors import ClimbError


def _rows(run_id: str, p_de: float, tokens: int = 1000) -> list[dict[str, Any]]:
    """A run's rows as the trainer returns them: checkpoints then the final row."""
    out = []
    for frac in (0.5, 1.0):
        t = int(tokens * frac)
        out.append(
            {
                "run": run_id if frac == 1.0 else f"{run_id}@{t}",
                "tokens": t,
                "params": 12384,
                "p.de": p_de,
                "p.en": 1.0 - p_de,
                "loss.de": 3.0 - p_de * frac,
                "loss.en": 3.0 - (1 - p_de) * frac,
                "seed": 0,
                "final": frac == 1.0,
                "wall_s": 0.1,
            }
        )
    return out


def _add(store: RunStore, run_id: str, p_de: float, spec_hash: str = "h") -> None:
    store.add_run(
        run_id,
        _rows(run_id, p_de),
        spec_hash=spec_hash,
        spec={"run_id": run_id},
        versions={"climb": "0.1.0"},
    )


def test_store_roundtrip_and_export(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with RunStore(path) as store:
        _add(store, "a", 1.0, "h1")
        _add(store, "b", 0.25, "h2")
        assert store.finished() == {"a": "h1", "b": "h2"}
        assert len(store) == 2 and "a" in store and "zz" not in store
        rec = store.get("b")
        assert rec.spec_hash == "h2" and rec.versions == {"climb": "0.1.0"}
        assert [r["run"] for r in rec.rows] == ["b@500", "b"]
    with RunStore(path, create=False) as store:  # reopen: persisted
        table = store.to_run_table()
        final = store.to_run_table(final_only=True)
    assert isinstance(table, RunTable)
    assert table.run == ["a@500", "a", "b@500", "b"]
    assert final.run == ["a", "b"]
    np.testing.assert_allclose(final.p[:, final.sources.index("de")], [1.0, 0.25])
    np.testing.assert_allclose(final.loss[:, final.targets.index("en")], [3.0, 2.25])
    np.testing.assert_allclose(table.tokens, [500, 1000, 500, 1000])
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_add_run_is_all_or_nothing(tmp_path: Path) -> None:
    with RunStore(tmp_path / "runs.db") as store:
        _add(store, "a", 1.0)
        with pytest.raises(ClimbError, match="already stored"):
            _add(store, "a", 0.5)
        bad = _rows("c", 0.5)
        bad[0]["loss.de"] = float("inf")
        with pytest.raises(ClimbError, match=r"'loss\.de' is inf"):
            store.add_run("c", bad, spec_hash="h", spec={})
        clash = _rows("c", 0.5)
        clash[0]["run"] = "a@500"  # the run row inserts, its rows clash: the whole run rolls back
        with pytest.raises(ClimbError, match="row id is already stored"):
            store.add_run("c", clash, spec_hash="h", spec={})
        with pytest.raises(ClimbError, match="exactly one final row"):
            store.add_run("d", _rows("x", 0.5), spec_hash="h", spec={})
        assert store.finished() == {"a": "h"}
        assert [r["run"] for r in store.rows()] == ["a@500", "a"]


@pytest.mark.parametrize("kind", ["text", "empty", "other-sqlite", "directory"])
def test_foreign_files_are_refused_and_untouched(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "runs.db"
    if kind == "text":
        path.write_text("run,tokens\na,1\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "other-sqlite":
        con = sqlite3.connect(path)
        con.execute("CREATE TABLE runs(x)")
        con.execute("INSERT INTO runs VALUES (1)")
        con.commit()
        con.close()
    else:
        path.mkdir()
    before = path.read_bytes() if path.is_file() else None
    with pytest.raises(ClimbError, match="not a climb run store"):
        check_store_file(path)
    with pytest.raises(ClimbError, match="not a climb run store"):
        RunStore(path)
    code = main(["runs", "export", str(path), "--out", str(tmp_path / "out.csv")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("climb: error: ") and err.count("\n") == 1 and "Traceback" not in err
    if before is not None:
        assert path.read_bytes() == before
    assert not (tmp_path / "out.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.db"]  # no -wal/-shm created


def test_export_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "runs.db"
    with RunStore(path) as store:
        _add(store, "a", 1.0)
        _add(store, "b", 0.5)
    assert main(["runs", "export", str(path), "--out", str(tmp_path / "all.csv")]) == 0
    assert (
        main(
            ["runs", "export", str(path), "--out", str(tmp_path / "final.parquet"), "--final-only"]
        )
        == 0
    )
    assert "4 rows from 2 runs" in capsys.readouterr().out
    assert RunTable.read(tmp_path / "all.csv").run == ["a@500", "a", "b@500", "b"]
    final = RunTable.read(tmp_path / "final.parquet")
    assert final.run == ["a", "b"]
    np.testing.assert_allclose(final.loss[:, final.targets.index("de")], [2.0, 2.5])


def test_export_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["runs", "export", str(tmp_path / "nope.db"), "--out", str(tmp_path / "o.csv")]) == 2
    )
    assert "no such run store" in capsys.readouterr().err
    RunStore(tmp_path / "empty.db").close()
    assert (
        main(["runs", "export", str(tmp_path / "empty.db"), "--out", str(tmp_path / "o.csv")]) == 2
    )
    assert "holds no finished runs" in capsys.readouterr().err


def test_store_carries_train_run_and_true_budget(tmp_path: Path) -> None:
    """New rows keep their own columns; rows of an older store (without them) are read with
    train_run = the storing run and true_budget = final, and export to a run table with both."""
    path = tmp_path / "runs.db"
    wsd = [dict(r, train_run="w", true_budget=True) for r in _rows("w", 0.5)]
    with RunStore(path) as store:
        _add(store, "old", 0.25)  # rows as written before the columns existed
        store.add_run("w", wsd, spec_hash="h", spec={"run_id": "w"})
    with RunStore(path, create=False) as store:
        rows = store.rows()
        assert [(r["run"], r["train_run"], r["true_budget"]) for r in rows] == [
            ("old@500", "old", False), ("old", "old", True), ("w@500", "w", True), ("w", "w", True)
        ]  # fmt: skip
        assert store.get("old").rows[0]["true_budget"] is False
        frame = store.to_frame()
        table = store.to_run_table()
    assert frame["train_run"].tolist() == ["old", "old", "w", "w"]
    assert frame["true_budget"].tolist() == [False, True, True, True]
    out = table.write(tmp_path / "runs.csv")
    back = RunTable.read(out).to_frame()
    assert back["train_run"].tolist() == ["old", "old", "w", "w"]
    assert [str(x).lower() for x in back["true_budget"]] == ["false", "true", "true", "true"]
