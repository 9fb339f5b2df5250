"""Each export is parsed the way its trainer reads it."""

from __future__ import annotations

import ast
import json
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import yaml

from climb.allocation.synthetic import random_climb_json
from climb.cli import main
from climb.exports import Mixture, export_mixture, read_paths, write_export

PROPS = {"en": 0.5, "de": 0.3, "sw": 0.0, "yo": 0.2}
PATHS = {"en": ["/data/en_text_document"], "de": ["/data/de dir/de_text_document"], "sw": ["/data/sw"],
         "yo": ["/data/yo_text_document"]}  # fmt: skip


def mix() -> Mixture:
    return Mixture(
        proportions=dict(PROPS),
        paths={k: list(v) for k, v in PATHS.items()},
        tokens=1e11,
        max_epochs=4.0,
    )


def test_megatron_data_path_pairs() -> None:
    text = export_mixture(mix(), "megatron")
    args = shlex.split(text)
    assert args[0] == "--data-path"
    pairs = args[1:]
    assert len(pairs) % 2 == 0
    weights = [float(w) for w in pairs[0::2]]
    paths = pairs[1::2]
    assert paths == [
        "/data/en_text_document",
        "/data/de dir/de_text_document",
        "/data/yo_text_document",
    ]
    assert weights == pytest.approx([0.5, 0.3, 0.2], abs=1e-15)  # zero-weight 'sw' is dropped


def test_nemo_paths_blend() -> None:
    text = export_mixture(mix(), "nemo")
    paths = yaml.safe_load(text)["paths"]
    weights, prefixes = paths[0::2], paths[1::2]
    assert all(isinstance(w, float) for w in weights)
    assert all(isinstance(p, str) for p in prefixes)
    assert dict(zip(prefixes, weights)) == pytest.approx(
        {
            "/data/en_text_document": 0.5,
            "/data/de dir/de_text_document": 0.3,
            "/data/yo_text_document": 0.2,
        }
    )


def test_torchtitan_toml_section() -> None:
    cfg = tomllib.loads(export_mixture(mix(), "torchtitan"))["climb_mixture"]
    assert cfg["sources"] == ["en", "de", "yo"]
    assert cfg["datasets"][1] == "/data/de dir/de_text_document"
    assert sum(cfg["weights"]) == pytest.approx(1.0, abs=1e-15)
    assert cfg["tokens"] == 1e11


@dataclass
class SourceMixtureConfig:  # the fields of OLMo-core's SourceMixtureConfig that we write
    source_name: str
    target_ratio: float
    paths: list[str]
    max_repetition_ratio: float = 1.0
    max_source_fraction: float = 1.0


@dataclass
class SourceMixtureDatasetConfig:
    source_configs: list[SourceMixtureConfig]
    max_tokens: int
    seed: int = 0
    extra: dict = field(default_factory=dict)


def test_olmo_source_mixture() -> None:
    m = mix()
    m.paths["en"] = ["/data/en/part-0.npy", "/data/en/part-1.npy"]
    raw = yaml.safe_load(export_mixture(m, "olmo"))["source_mixture_config"]
    cfg = SourceMixtureDatasetConfig(
        source_configs=[SourceMixtureConfig(**c) for c in raw["source_configs"]],
        max_tokens=raw["max_tokens"], seed=raw["seed"],
    )  # fmt: skip
    assert cfg.max_tokens == 100_000_000_000
    assert [c.source_name for c in cfg.source_configs] == ["en", "de", "yo"]
    assert sum(c.target_ratio for c in cfg.source_configs) == pytest.approx(1.0, abs=1e-15)
    assert cfg.source_configs[0].paths == ["/data/en/part-0.npy", "/data/en/part-1.npy"]
    assert all(
        0 < c.target_ratio <= 1 and c.max_repetition_ratio == 4.0 for c in cfg.source_configs
    )


def test_hf_snippet_and_json(tmp_path: Path) -> None:
    snippet = export_mixture(mix(), "hf", target=tmp_path / "mix.py")
    tree = ast.parse(snippet)
    consts = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id.isupper()
    }
    assert consts["DATASETS"] == [
        "/data/en_text_document",
        "/data/de dir/de_text_document",
        "/data/yo_text_document",
    ]
    probs = np.array(consts["PROBABILITIES"])
    assert probs.sum() == pytest.approx(1.0, abs=1e-15)
    assert dict(zip(consts["SOURCES"], probs)) == pytest.approx({"en": 0.5, "de": 0.3, "yo": 0.2})
    assert "interleave_datasets(" in snippet and "probabilities=PROBABILITIES" in snippet
    out = write_export(mix(), "hf", tmp_path / "mix.json")
    obj = json.loads(out.read_text())
    assert obj["datasets"] == consts["DATASETS"] and obj["probabilities"] == consts["PROBABILITIES"]


def test_json_and_yaml_keep_every_source() -> None:
    j = json.loads(export_mixture(mix(), "json"))
    y = yaml.safe_load(export_mixture(mix(), "yaml"))
    for obj in (j, y):
        assert obj["mixture"] == PROPS
        assert obj["paths"]["sw"] == ["/data/sw"]
        assert obj["tokens"] == 1e11


def test_paths_default_to_source_names_and_single_path_formats() -> None:
    m = Mixture(proportions={"a": 0.25, "b": 0.75})
    assert shlex.split(export_mixture(m, "megatron"))[1:] == ["0.25", "a", "0.75", "b"]
    m.paths["a"] = ["x1", "x2"]
    from climb.errors import ClimbError

    with pytest.raises(ClimbError, match="one path"):
        export_mixture(m, "megatron")


def test_read_paths_validates(tmp_path: Path) -> None:
    from climb.errors import ClimbError

    p = tmp_path / "map.yaml"
    p.write_text("en: /data/en\nde: [/data/de/0, /data/de/1]\n")
    assert read_paths(p, ["en", "de"]) == {"en": ["/data/en"], "de": ["/data/de/0", "/data/de/1"]}
    with pytest.raises(ClimbError, match="no path for source"):
        read_paths(p, ["en", "de", "fr"])
    with pytest.raises(ClimbError, match="not in the law"):
        read_paths(p, ["en"])
    p.write_text("en: 3\n")
    with pytest.raises(ClimbError, match="path or a list"):
        read_paths(p)


@pytest.mark.parametrize("fmt", ["json", "yaml", "megatron", "nemo", "torchtitan", "olmo", "hf"])
def test_cli_export_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    law = random_climb_json(6, 2, transfer=(-0.05, 0.25))
    law_path = tmp_path / "law.json"
    law_path.write_text(json.dumps(law))
    paths = tmp_path / "map.yaml"
    paths.write_text("".join(f"{s}: /data/{s}_text_document\n" for s in law["sources"]))
    out = tmp_path / f"mix.{fmt}"
    code = main(["allocate", str(law_path), "--tokens", "1e10", "--json", "--baselines", "none",
                 "--format", fmt, "--paths", str(paths), "--export-out", str(out)])  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out)["proportions"]
    want = {f"/data/{s}_text_document": p for s, p in result.items() if p > 1e-12}
    total = sum(want.values())
    want = {k: v / total for k, v in want.items()}
    text = out.read_text()
    if fmt == "megatron":
        a = shlex.split(text)[1:]
        got = dict(zip(a[1::2], map(float, a[0::2])))
    elif fmt == "nemo":
        flat = yaml.safe_load(text)["paths"]
        got = dict(zip(flat[1::2], flat[0::2]))
    elif fmt == "torchtitan":
        cfg = tomllib.loads(text)["climb_mixture"]
        got = dict(zip(cfg["datasets"], cfg["weights"]))
    elif fmt == "olmo":
        cfgs = yaml.safe_load(text)["source_mixture_config"]["source_configs"]
        got = {c["paths"][0]: c["target_ratio"] for c in cfgs}
    elif fmt == "hf":
        consts = {n.targets[0].id: ast.literal_eval(n.value) for n in ast.parse(text).body
                  if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name) and n.targets[0].id.isupper()}  # fmt: skip
        got = dict(zip(consts["DATASETS"], consts["PROBABILITIES"]))
    else:
        obj = json.loads(text) if fmt == "json" else yaml.safe_load(text)
        got = {obj["paths"][s][0]: p for s, p in obj["mixture"].items() if p > 1e-12}
    assert got == pytest.approx(want, rel=1e-12)


def test_cli_export_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    law_path = tmp_path / "law.json"
    law_path.write_text(json.dumps(random_climb_json(3, 0)))
    paths = tmp_path / "map.yaml"
    paths.write_text("s000: /a\n")
    code = main(["allocate", str(law_path), "--tokens", "1e10", "--format", "megatron", "--paths", str(paths),
                 "--export-out", str(tmp_path / "x")])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("climb: error: --paths") and "s001" in err
    assert main(["allocate", str(law_path), "--tokens", "1e10", "--paths", str(paths)]) == 2
    assert "--export-out" in capsys.readouterr().err
