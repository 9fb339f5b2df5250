"""One reader for users' YAML and JSON files (plans, manifests, mappings, tables, law JSON)."""

from __future__ import annotations

from pathlib import Path

import pytest

from climb.data.userfiles import read_yaml
from climb.errors import ClimbError
from climb.proxy.design import Plan


def test_read_yaml_one_line_errors(tmp_path: Path) -> None:
    ok = tmp_path / "ok.yaml"
    ok.write_text("a: [1, 2]\n", encoding="utf-8")
    assert read_yaml(ok, "plan") == {"a": [1, 2]}
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: 1\nb: [1, 2\n", encoding="utf-8")
    with pytest.raises(ClimbError, match=r"^plan: .*bad\.yaml: not valid YAML \(line \d+\)"):
        read_yaml(bad, "plan")
    with pytest.raises(ClimbError, match=r"^mapping: .*missing\.yaml: no such file$"):
        read_yaml(tmp_path / "missing.yaml", "mapping")
    with pytest.raises(ClimbError, match="is a directory"):
        read_yaml(tmp_path, "manifest")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("a: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ClimbError, match="not UTF-8"):
        read_yaml(latin, "plan")


def test_plan_load_uses_it(tmp_path: Path) -> None:
    bad = tmp_path / "plan.yaml"
    bad.write_text("sources: [en\n", encoding="utf-8")
    with pytest.raises(ClimbError, match=r"^plan: .*plan\.yaml: not valid YAML"):
        Plan.load(bad)


def test_read_and_write_json(tmp_path: Path) -> None:
    from climb.data.userfiles import read_json, write_json

    path = write_json(tmp_path / "sub" / "x.json", {"a": [1.5, None]})
    assert read_json(path, "law") == {"a": [1.5, None]}
    assert not list(path.parent.glob(".*.tmp"))  # written through a temporary file
    with pytest.raises(ClimbError, match=r"no such allocation file$"):
        read_json(tmp_path / "none.json", "allocation")
    (tmp_path / "bad.json").write_text("{oops", encoding="utf-8")
    with pytest.raises(ClimbError, match="not valid JSON"):
        read_json(tmp_path / "bad.json", "law")
