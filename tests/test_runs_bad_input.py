"""Bad run tables: one-line errors naming the problem, via the library and `climb ingest`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from climb.cli import main
from climb.data.runs import RunTable
from climb.errors import ClimbError

GOOD = "run,tokens,p.en,p.de,loss.en,loss.de\nr1,1e9,0.5,0.5,3.1,3.3\nr2,1e9,0.2,0.8,3.4,3.0\n"


def _write(tmp_path: Path, text: str, name: str = "runs.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


BAD_TABLES = [
    ("run,p.en,p.de,loss.en,loss.de\nr1,0.5,0.5,3.1,3.3\n", "missing column 'tokens'"),
    ("run,tokens,p.en,p.de\nr1,1e9,0.5,0.5\n", "no loss columns"),
    ("run,tokens,loss.en\nr1,1e9,3.1\n", "no mixture columns"),
    (GOOD.replace("r2,1e9,0.2,0.8", "r2,1e9,0.3,0.8"), "run 'r2': proportions sum to 1.1"),
    (GOOD.replace("3.4,3.0", "-3.4,3.0"), "run 'r2': column 'loss.en' is -3.4"),
    (GOOD.replace("3.4,3.0", "nan,3.0"), "row 2: column 'loss.en' is 'nan', not a number"),
    (GOOD.replace("r2,", "r1,"), "duplicated run id 'r1'"),
    (GOOD.replace("r2,1e9", "r2,abc"), "row 2: column 'tokens' is 'abc', not a number"),
    (GOOD.replace("0.2,0.8", "-0.2,1.2"), "column 'p.en' is -0.2"),
    ("run,tokens,p.en,loss.en\n", "no rows"),
    (
        "run,train_run,tokens,p.en,p.de,loss.en,loss.de\n"
        "r1,a,1e9,0.5,0.5,3.1,3.3\nr2,a,2e9,0.2,0.8,3.4,3.0\n",
        "runs 'r1' and 'r2' share train_run 'a' but their 'p.en' differ",
    ),
    (
        "run,train_run,tokens,params,p.en,p.de,loss.en,loss.de\n"
        "r1,a,1e9,1e6,0.5,0.5,3.1,3.3\nr2,a,2e9,2e6,0.5,0.5,3.4,3.0\n",
        "share train_run 'a' but their 'params' differ",
    ),
    (
        GOOD.replace("run,tokens,", "run,tokens,true_budget,")
        .replace("r1,1e9,", "r1,1e9,maybe,")
        .replace("r2,1e9,", "r2,1e9,true,"),
        "run 'r1': column 'true_budget' is 'maybe'; use true or false",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_TABLES)
def test_bad_tables_raise_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ClimbError, match=message) as info:
        RunTable.read(path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(("text", "message"), BAD_TABLES)
def test_ingest_bad_tables_exit_nonzero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = _write(tmp_path, text)
    code = main(["ingest", str(path), "--out", str(tmp_path / "out.csv")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("climb: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out.csv").exists()


def test_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "")
    assert main(["ingest", str(path), "--out", str(tmp_path / "o.csv")]) == 2
    assert "the file is empty" in capsys.readouterr().err


def test_missing_file_and_unknown_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ingest", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    path = _write(tmp_path, GOOD, "runs.txt")
    assert main(["ingest", str(path), "--out", str(tmp_path / "o.csv")]) == 2
    assert "unknown run-table format '.txt'" in capsys.readouterr().err


def test_empty_loss_cell_is_not_measured(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("3.4,3.0", ",3.0"))
    table = RunTable.read(path)
    assert np.isnan(table.loss[1, 0]) and table.loss[1, 1] == 3.0


def test_ingest_good_table_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, GOOD)
    out = tmp_path / "out.parquet"
    assert main(["ingest", str(path), "--out", str(out)]) == 0
    assert "2 runs, 2 sources, 2 targets" in capsys.readouterr().out
    again = RunTable.read(out)
    np.testing.assert_allclose(again.loss, [[3.1, 3.3], [3.4, 3.0]])


def test_jsonl_bad_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, '{"run": "a", "tokens": 1, "p.x": 1, "loss.x": 2}\n{oops\n', "r.jsonl")
    assert main(["ingest", str(path), "--out", str(tmp_path / "o.csv")]) == 2
    assert "line 2: not valid JSON" in capsys.readouterr().err
