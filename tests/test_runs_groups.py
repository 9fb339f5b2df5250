"""Training runs as groups of the run table: ``train_run`` and ``true_budget``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from climb.data.runs import RunTable

ROWS = (
    "run,train_run,tokens,true_budget,p.en,p.de,loss.en,loss.de\n"
    "a-half,a,500,false,0.5,0.5,3.5,3.6\n"
    "a,a,1000,true,0.5,0.5,3.1,3.3\n"
    "b-wsd-500,b,500,true,0.2,0.8,3.6,3.2\n"
    "b,b,1000,TRUE,0.2,0.8,3.4,3.0\n"
    "c,,1000,,0.9,0.1,3.0,3.9\n"
)


def _table(tmp_path: Path) -> RunTable:
    path = tmp_path / "runs.csv"
    path.write_text(ROWS, encoding="utf-8")
    return RunTable.read(path)


def test_columns_are_read_with_defaults(tmp_path: Path) -> None:
    runs = _table(tmp_path)
    assert runs.train_run == ["a", "a", "b", "b", "c"]  # an empty cell defaults to the run id
    assert runs.true_budget.tolist() == [False, True, True, True, True]
    assert runs.groups().tolist() == [0, 0, 1, 1, 2]
    assert runs.n_train_runs == 3
    assert "train_run" not in runs.meta.columns and "true_budget" not in runs.meta.columns
    s = runs.summary()
    assert (s["runs"], s["train_runs"], s["true_budget_rows"]) == (5, 3, 4)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_columns_round_trip(tmp_path: Path, suffix: str) -> None:
    runs = _table(tmp_path)
    back = RunTable.read(runs.write(tmp_path / f"again{suffix}"))
    assert back.train_run == runs.train_run
    assert back.true_budget.dtype == bool
    assert back.true_budget.tolist() == runs.true_budget.tolist()


def test_subset_select_targets_and_concat_keep_groups(tmp_path: Path) -> None:
    runs = _table(tmp_path)
    sub = runs.subset(np.array([4, 0, 1]))
    assert sub.train_run == ["c", "a", "a"]
    assert sub.true_budget.tolist() == [True, False, True]
    assert sub.groups().tolist() == [0, 1, 1]
    one = runs.select_targets(["de"])
    assert one.train_run == runs.train_run and one.true_budget is runs.true_budget
    both = RunTable.concat([runs.subset([0, 1]), runs.subset([2, 3, 4])])
    assert both.train_run == runs.train_run
    assert both.true_budget.tolist() == runs.true_budget.tolist()


def test_defaults_without_the_columns() -> None:
    runs = RunTable.from_arrays(
        run=["x", "y"], tokens=1e9, p=[[1, 0], [0, 1]], sources=["en", "de"],
        loss=[[3.0, 4.0], [4.0, 3.0]], targets=["en", "de"],
    )  # fmt: skip
    assert runs.train_run == ["x", "y"]
    assert runs.true_budget.tolist() == [True, True]
    assert runs.groups().tolist() == [0, 1]
    explicit = RunTable.from_arrays(
        run=["x", "x-mid"], tokens=[1e9, 5e8], p=[[0.6, 0.4], [0.6, 0.4]], sources=["en", "de"],
        loss=[[3.0, 4.0], [3.2, 4.1]], targets=["en", "de"], train_run=["x", "x"],
        true_budget=[True, False],
    )  # fmt: skip
    assert explicit.groups().tolist() == [0, 0]
    assert explicit.true_budget.tolist() == [True, False]


def test_old_checkpoint_ids_are_read_as_training_runs() -> None:
    """A table written before ``train_run`` existed: ``<run>@<tokens>`` rows were mid-schedule
    checkpoints of ``<run>``; an ``@`` not followed by a token count is just part of an id."""
    frame = pd.DataFrame(
        {
            "run": ["r1@500", "r1", "r2@500", "r2", "me@home"],
            "tokens": [500, 1000, 500, 1000, 1000],
            "p.en": [0.5, 0.5, 0.3, 0.3, 1.0],
            "p.de": [0.5, 0.5, 0.7, 0.7, 0.0],
            "loss.en": [3.5, 3.1, 3.6, 3.2, 2.9],
        }
    )
    runs = RunTable.from_frame(frame)
    assert runs.train_run == ["r1", "r1", "r2", "r2", "me@home"]
    assert runs.true_budget.tolist() == [False, True, False, True, True]
    assert runs.groups().tolist() == [0, 0, 1, 1, 2]
    # once written, the table carries the columns and no longer depends on the ids
    again = RunTable.from_frame(runs.to_frame().assign(run=["u", "v", "w", "x", "y"]))
    assert again.train_run == runs.train_run
    assert again.true_budget.tolist() == runs.true_budget.tolist()
