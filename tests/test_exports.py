"""Each export is read the way its trainer reads it today.

Where the trainer is installable without replacing torch 2.13 (Hugging Face ``datasets``), the test
runs the real library. Where it is not in the shared test env, the test mirrors the trainer's own
parsing code, named in each helper below, and runs the real library as well when it is importable:

* OLMo-core 3.0.0 pins ``filelock<4`` and, through ``cached-path``, older ``rich`` and
  ``huggingface_hub``: ``pip install --target /tmp/olmo_site --no-deps ai2-olmo-core bettermap
  dill`` + ``pip install --target /tmp/olmo_site cached-path dataclass-extensions 'filelock<4'``;
* torchtitan's ``DatasetMixConfig`` is only in its GitHub source (not the 0.3.0 wheel): the
  ``torchtitan/`` folder of pytorch/torchtitan (b5bcd76) in ``/tmp/tt`` and ``pip install --target
  /tmp/tt_site grain==0.2.18 tyro spmd_types==0.2.3`` (without the torch it may drag in);

then ``PYTHONPATH=/tmp/olmo_site:/tmp/tt:/tmp/tt_site:src pytest tests/test_exports.py`` runs
every test with the real classes (26 passed, none skipped, with torch 2.13.0).
"""

from __future__ import annotations

import ast
import json
import math
import sys
import types
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from climb.allocation.synthetic import random_climb_json
from climb.cli import main
from climb.errors import ClimbError
from climb.exports import FORMATS, Mixture, export_mixture, read_paths, write_export
from climb.exports.hf import example_probabilities

PROPS = {"en": 0.5, "de": 0.3, "sw": 0.0, "yo": 0.2}
PATHS = {"en": ["/data/en_text_document"], "de": ["/data/de_text_document"], "sw": ["/data/sw"],
         "yo": ["/data/yo_text_document"]}  # fmt: skip


def mix(**kw: Any) -> Mixture:
    return Mixture(
        proportions=dict(PROPS),
        paths={k: list(v) for k, v in PATHS.items()},
        tokens=1e11,
        max_epochs=4.0,
        **kw,
    )


# --- Megatron-LM / Megatron-Bridge ---------------------------------------------------------------


def get_blend_from_list(blend: list[str]) -> tuple[list[str], list[float] | None]:
    """Mirror of Megatron-Core ``megatron/core/datasets/utils.py::get_blend_from_list``."""
    if len(blend) % 2 == 1:
        return [b.strip() for b in blend], None
    raw_w, raw_p = zip(*[(blend[i], blend[i + 1]) for i in range(0, len(blend), 2)])
    weights: list[float | None] = []
    for w in raw_w:
        try:
            weights.append(float(w))
        except ValueError:
            weights.append(None)
    if any(w is None for w in weights):
        return [b.strip() for b in blend], None
    return [p.strip() for p in raw_p], [float(w) for w in weights if w is not None]


def test_megatron_data_args_file_is_bare_pairs(tmp_path: Path) -> None:
    out = write_export(mix(), "megatron", tmp_path / "blend.txt")
    # megatron/training/utils/common_utils.py::get_blend_and_blend_per_split, --data-args-path:
    with open(out) as f:
        fields_ = f.read().split()
    assert len(fields_) % 2 == 0 and "--data-path" not in fields_
    assert not any(q in out.read_text() for q in "'\"")  # unquoted
    prefixes, weights = get_blend_from_list(fields_)
    assert prefixes == [
        "/data/en_text_document",
        "/data/de_text_document",
        "/data/yo_text_document",
    ]
    assert weights == pytest.approx([0.5, 0.3, 0.2], abs=1e-15)  # 'sw' (p = 0) is dropped
    assert out.read_text().splitlines()[0] == "0.5 /data/en_text_document"


def test_megatron_args_line() -> None:
    args = export_mixture(mix(), "megatron-args").split()  # as $(cat blend.args) splits it
    assert args[0] == "--data-path"
    prefixes, weights = get_blend_from_list(args[1:])
    assert weights == pytest.approx([0.5, 0.3, 0.2], abs=1e-15)
    assert prefixes[1] == "/data/de_text_document"


@pytest.mark.parametrize("fmt", ["megatron", "megatron-args"])
def test_megatron_refuses_paths_that_split(fmt: str) -> None:
    m = mix()
    m.paths["de"] = ["/data/de dir/de_text_document"]
    with pytest.raises(ClimbError, match=r"source .de.*whitespace"):
        export_mixture(m, fmt)
    m.paths["de"] = ["/data/de*/x"]
    if fmt == "megatron":
        assert "/data/de*/x" in export_mixture(m, fmt)
    else:
        with pytest.raises(ClimbError, match="glob"):
            export_mixture(m, fmt)


def test_megatron_bridge_data_paths() -> None:
    flat = yaml.safe_load(export_mixture(mix(), "megatron-bridge"))["data_paths"]
    assert all(isinstance(x, str) for x in flat)  # data_paths: list[str]
    prefixes, weights = get_blend_from_list(flat)
    assert dict(zip(prefixes, weights or [])) == pytest.approx(
        {
            "/data/en_text_document": 0.5,
            "/data/de_text_document": 0.3,
            "/data/yo_text_document": 0.2,
        }
    )


# --- OLMo-core --------------------------------------------------------------------------------------


@dataclass
class _SourceMixtureConfig:
    """Mirror of ``olmo_core/data/source_mixture.py::SourceMixtureConfig`` (ai2-olmo-core 3.0.0)."""

    source_name: str
    target_ratio: float
    paths: list[str]
    max_repetition_ratio: float = 1.0
    max_source_fraction: float = 1.0

    def validate(self) -> None:
        assert 0 < self.target_ratio <= 1, "target_ratio must be > 0 and <= 1"
        assert self.max_repetition_ratio >= 1, "max_repetition_ratio must be >= 1"
        assert self.paths, "paths must not be empty"


@dataclass
class _SourceMixtureList:
    sources: list[_SourceMixtureConfig] = field(default_factory=list)

    @classmethod
    def from_yaml(cls, path: Path) -> _SourceMixtureList:
        """``Config.from_yaml``: ``yaml.safe_load`` then a strict dataclass decode."""
        data = yaml.safe_load(path.read_text())
        assert set(data) <= {f.name for f in fields(cls)}, f"unknown keys {set(data)}"
        return cls(sources=[_SourceMixtureConfig(**s) for s in data["sources"]])

    def validate(self) -> None:
        assert self.sources, "sources must not be empty"
        for s in self.sources:
            s.validate()
        total = np.sum([s.target_ratio for s in self.sources])
        assert np.allclose(total, 1.0), f"target_ratios must sum to 1.0, got {total}"


def _olmo_lists() -> list[Any]:
    lists: list[Any] = [_SourceMixtureList]
    try:
        from olmo_core.data.source_mixture import SourceMixtureList
    except ImportError:
        return lists
    return [*lists, SourceMixtureList]


@pytest.mark.parametrize("max_epochs", [4.0, None])
def test_olmo_mixture_loads_with_source_mixture_list(
    tmp_path: Path, max_epochs: float | None
) -> None:
    m = mix()
    m.max_epochs = max_epochs
    m.paths["en"] = ["/data/en/part-0.npy", "/data/en/part-1.npy"]
    out = write_export(m, "olmo", tmp_path / "mixture.yaml")
    for cls in _olmo_lists():
        mixture = cls.from_yaml(out)
        mixture.validate()
        got = {s.source_name: s for s in mixture.sources}
        assert list(got) == ["en", "de", "yo"]
        assert got["en"].paths == ["/data/en/part-0.npy", "/data/en/part-1.npy"]
        assert {k: s.target_ratio for k, s in got.items()} == pytest.approx(
            {"en": 0.5, "de": 0.3, "yo": 0.2}, abs=1e-15
        )
        ratios = {s.max_repetition_ratio for s in mixture.sources}
        if max_epochs is not None:
            assert ratios == {4.0}
        else:
            # no epoch cap in the allocation: the ratio must never bind in OLMo-core's build
            # (max_for_source = int(population * ratio) >= int(requested_tokens * target_ratio)
            # for any population >= 1 token), and must not be 1.0 (= no repetition)
            (ratio,) = ratios
            assert all(int(1 * ratio) >= int(1e11 * s.target_ratio) for s in mixture.sources)
            assert math.isfinite(ratio)


def test_olmo_real_library_when_installed(tmp_path: Path) -> None:
    source_mixture = pytest.importorskip("olmo_core.data.source_mixture")
    out = write_export(mix(), "olmo", tmp_path / "mixture.yaml")
    lst = source_mixture.SourceMixtureList.from_yaml(out)
    cfg = source_mixture.SourceMixtureDatasetConfig(
        source_list=lst, requested_tokens=10**11, global_batch_size=4096 * 512
    )
    cfg.validate()
    assert [s.source_name for s in lst.sources] == ["en", "de", "yo"]


# --- torchtitan -------------------------------------------------------------------------------------


def _torchtitan_mirror() -> dict[str, types.ModuleType]:
    """Stand-ins with the fields of torchtitan's data configs (pytorch/torchtitan b5bcd76:
    ``torchtitan/components/data/{dataset,packing,sources}.py``, ``hf_datasets/text_datasets.py``)."""
    kw = {"frozen": True, "kw_only": True, "slots": True}

    @dataclass(**kw)
    class WeightedDataset:
        dataset: Any
        weight: float = 1.0

    @dataclass(**kw)
    class DatasetMixConfig:
        datasets: tuple[WeightedDataset, ...]

    @dataclass(**kw)
    class SingleDatasetConfig:
        source: Any
        pre_filters: tuple[Any, ...] = ()
        processor: Any = None
        post_filters: tuple[Any, ...] = ()

    @dataclass(**kw)
    class ConcatThenSplitPackingConfig:
        dataset: Any

    class IndexedJsonlSource:
        @dataclass(kw_only=True, slots=True)
        class Config:
            patterns: tuple[str, ...]

    class TextProcessor:
        @dataclass(kw_only=True, slots=True)
        class Config:
            text_fn: Any = None

    data = types.ModuleType("torchtitan.components.data")
    for c in (WeightedDataset, DatasetMixConfig, SingleDatasetConfig, ConcatThenSplitPackingConfig, IndexedJsonlSource):  # fmt: skip
        setattr(data, c.__name__, c)
    text = types.ModuleType("torchtitan.hf_datasets.text_datasets")
    text.TextProcessor = TextProcessor  # type: ignore[attr-defined]
    return {"torchtitan.components.data": data, "torchtitan.hf_datasets.text_datasets": text}


def test_torchtitan_snippet_compiles_and_builds_the_mix(monkeypatch: pytest.MonkeyPatch) -> None:
    m = mix()
    m.paths["en"] = ["/data/en/*.jsonl", "/data/en-extra/*.jsonl"]
    snippet = export_mixture(m, "torchtitan")
    code = compile(snippet, "mix.py", "exec")
    try:
        import torchtitan.components.data  # noqa: F401  (the real one, when installed)
    except ImportError:
        for name, module in _torchtitan_mirror().items():
            monkeypatch.setitem(sys.modules, name, module)
    ns: dict[str, Any] = {}
    exec(code, ns)
    items = ns["climb_mix"].datasets
    assert [i.weight for i in items] == pytest.approx([0.5, 0.3, 0.2], abs=1e-15)
    packed = items[0].dataset  # packed before mixing: weights count tokens
    assert type(packed).__name__ == "ConcatThenSplitPackingConfig"
    assert packed.dataset.source.patterns == ("/data/en/*.jsonl", "/data/en-extra/*.jsonl")
    assert ns["TOKENS"] == 10**11 and ns["SOURCES"] == ["en", "de", "yo"]


# --- Hugging Face datasets (the real library) ----------------------------------------------------


def _write_sources(tmp_path: Path) -> tuple[dict[str, list[str]], dict[str, float]]:
    """Three JSONL sources whose documents have 5, 40 and 15 words (= tokens here)."""
    words = {"en": 5, "de": 40, "yo": 15}
    paths = {}
    for k, (s, n) in enumerate(words.items()):
        p = tmp_path / f"{s}.jsonl"
        p.write_text(
            "".join(json.dumps({"text": " ".join([f"{s}{k}"] * n)}) + "\n" for _ in range(50))
        )
        paths[s] = [str(p)]
    return paths, {s: float(n) for s, n in words.items()}


def _exec_snippet(text: str) -> dict[str, Any]:
    ns: dict[str, Any] = {}
    exec(compile(text, "mix.py", "exec"), ns)
    return ns


def test_hf_by_example_gives_token_shares_and_budget(tmp_path: Path) -> None:
    pytest.importorskip("datasets")  # the 'hf' extra; installed in CI
    paths, tpe = _write_sources(tmp_path)
    m = Mixture(proportions={"en": 0.5, "de": 0.3, "yo": 0.2}, paths=paths, tokens=60_000,
                tokens_per_example=tpe)  # fmt: skip
    ns = _exec_snippet(export_mixture(m, "hf", target=tmp_path / "mix.py"))
    assert ns["PROBABILITIES"] == pytest.approx(example_probabilities([0.5, 0.3, 0.2], [5, 40, 15]))
    docs = list(ns["mixture"]())
    assert len(docs) == ns["EXAMPLES"]
    tokens = Counter()
    for d in docs:
        w = d["text"].split()
        tokens[w[0][:2]] += len(w)
    total = sum(tokens.values())
    assert total == pytest.approx(60_000, rel=0.05)  # the take is the budget
    shares = {s: tokens[s] / total for s in ("en", "de", "yo")}
    assert shares == pytest.approx({"en": 0.5, "de": 0.3, "yo": 0.2}, abs=0.04)
    # without the correction the shares would be document shares: en would get 0.5 of documents
    # but only 0.5 * 5 / (0.5 * 5 + 0.3 * 40 + 0.2 * 15) = 0.14 of the tokens
    n = Counter(d["text"][:2] for d in docs)
    assert n["en"] / len(docs) > 0.8


def test_hf_pack_first_gives_token_shares(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    paths, _ = _write_sources(tmp_path)
    m = Mixture(proportions={"en": 0.5, "de": 0.3, "yo": 0.2}, paths=paths, tokens=16_000)
    ns = _exec_snippet(export_mixture(m, "hf", target=tmp_path / "mix.py"))
    ids = {"en0": 1, "de1": 2, "yo2": 3}

    def tokenizer(texts: list[str]) -> dict[str, list[list[int]]]:
        return {"input_ids": [[ids[w] for w in t.split()] for t in texts]}

    rows = list(ns["mixture"](tokenizer, block_size=16))
    assert len(rows) == 1000 and all(len(r["input_ids"]) == 16 for r in rows)
    by_source = Counter(r["input_ids"][0] for r in rows)  # a row holds one source's tokens
    assert all(len(set(r["input_ids"])) == 1 for r in rows)
    shares = {s: by_source[i] / len(rows) for s, i in zip(("en", "de", "yo"), (1, 2, 3))}
    assert shares == pytest.approx({"en": 0.5, "de": 0.3, "yo": 0.2}, abs=0.05)


def test_hf_json_numbers(tmp_path: Path) -> None:
    m = mix(tokens_per_example={"en": 500.0, "de": 1000.0, "yo": 250.0})
    obj = json.loads(write_export(m, "hf", tmp_path / "mix.json").read_text())
    q = np.array(obj["probabilities"])
    assert q == pytest.approx(np.array([0.5 / 500, 0.3 / 1000, 0.2 / 250]) / 0.0021)
    expected_tokens_per_example = float(q @ np.array([500.0, 1000.0, 250.0]))
    assert obj["examples"] == math.ceil(1e11 / expected_tokens_per_example)
    obj = json.loads(export_mixture(mix(), "hf", target=tmp_path / "x.json"))
    assert obj["probabilities"] == obj["token_shares"] and obj["rows"] == math.ceil(1e11 / 2048)


# --- json / yaml, paths, CLI ---------------------------------------------------------------------


def test_json_and_yaml_keep_every_source() -> None:
    j = json.loads(export_mixture(mix(), "json"))
    y = yaml.safe_load(export_mixture(mix(), "yaml"))
    for obj in (j, y):
        assert obj["mixture"] == PROPS
        assert obj["paths"]["sw"] == ["/data/sw"]
        assert obj["tokens"] == 1e11


def test_paths_default_to_source_names_and_single_path_formats() -> None:
    m = Mixture(proportions={"a": 0.25, "b": 0.75})
    assert export_mixture(m, "megatron").split() == ["0.25", "a", "0.75", "b"]
    m.paths["a"] = ["x1", "x2"]
    with pytest.raises(ClimbError, match="one path"):
        export_mixture(m, "megatron")


def test_read_paths_validates(tmp_path: Path) -> None:
    p = tmp_path / "map.yaml"
    p.write_text("en: /data/en\nde: [/data/de/0, /data/de/1]\n")
    assert read_paths(p, ["en", "de"]) == {"en": ["/data/en"], "de": ["/data/de/0", "/data/de/1"]}
    with pytest.raises(ClimbError, match="no entry for source"):
        read_paths(p, ["en", "de", "fr"])
    with pytest.raises(ClimbError, match="not in the law"):
        read_paths(p, ["en"])
    p.write_text("en: 3\n")
    with pytest.raises(ClimbError, match="path or a list"):
        read_paths(p)


def _parse(fmt: str, text: str) -> dict[str, float]:
    """``{path: weight}`` of an export, read the way its trainer reads it."""
    if fmt in ("megatron", "megatron-args", "megatron-bridge"):
        flat = yaml.safe_load(text)["data_paths"] if fmt == "megatron-bridge" else text.split()
        prefixes, weights = get_blend_from_list(flat[1:] if fmt == "megatron-args" else flat)
        return dict(zip(prefixes, weights or []))
    if fmt == "torchtitan" or fmt == "hf":
        consts = {n.targets[0].id: ast.literal_eval(n.value) for n in ast.parse(text).body
                  if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Name)
                  and n.targets[0].id in ("PATTERNS", "DATASETS", "WEIGHTS", "TOKEN_SHARES")}  # fmt: skip
        if fmt == "torchtitan":
            return {p[0]: w for p, w in zip(consts["PATTERNS"], consts["WEIGHTS"])}
        return dict(zip(consts["DATASETS"], consts["TOKEN_SHARES"]))
    if fmt == "olmo":
        return {s["paths"][0]: s["target_ratio"] for s in yaml.safe_load(text)["sources"]}
    obj = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    return {obj["paths"][s][0]: p for s, p in obj["mixture"].items() if p > 1e-12}


@pytest.mark.parametrize("fmt", list(FORMATS))
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
    assert _parse(fmt, out.read_text()) == pytest.approx(want, rel=1e-12)


def test_cli_hf_tokens_per_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    law = random_climb_json(3, 0)
    law_path = tmp_path / "law.json"
    law_path.write_text(json.dumps(law))
    tpe = tmp_path / "tpe.csv"
    tpe.write_text("source,tokens_per_example\n" + "".join(f"{s},{100 * (k + 1)}\n" for k, s in enumerate(law["sources"])))  # fmt: skip
    out = tmp_path / "mix.json"
    argv = ["allocate", str(law_path), "--tokens", "1e9", "--json", "--baselines", "none",
            "--format", "hf", "--tokens-per-example", str(tpe), "--export-out", str(out)]  # fmt: skip
    assert main(argv) == 0
    p = json.loads(capsys.readouterr().out)["proportions"]
    obj = json.loads(out.read_text())
    keep = [s for s in law["sources"] if p[s] > 1e-12]
    tpe_of = {s: 100.0 * (k + 1) for k, s in enumerate(law["sources"])}
    shares = [p[s] / sum(p[t] for t in keep) for s in keep]
    assert obj["probabilities"] == pytest.approx(
        example_probabilities(shares, [tpe_of[s] for s in keep])
    )
    tpe.write_text("source,tokens_per_example\ns000,0\n")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("climb: error: tokens_per_example") and err.count("\n") == 1


def test_cli_export_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    law_path = tmp_path / "law.json"
    law_path.write_text(json.dumps(random_climb_json(3, 0)))
    paths = tmp_path / "map.yaml"
    paths.write_text("s000: /a\n")
    code = main(["allocate", str(law_path), "--tokens", "1e10", "--format", "megatron", "--paths", str(paths),
                 "--export-out", str(tmp_path / "x")])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("climb: error: paths") and "s001" in err
    assert main(["allocate", str(law_path), "--tokens", "1e10", "--paths", str(paths)]) == 2
    assert "--export-out" in capsys.readouterr().err
    paths.write_text("s000: /a b\ns001: /b\ns002: /c\n")
    out = tmp_path / "blend.txt"
    out.write_text("kept\n")
    code = main(["allocate", str(law_path), "--tokens", "1e10", "--format", "megatron", "--paths", str(paths),
                 "--export-out", str(out), "--baselines", "none"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "whitespace" in err
    assert out.read_text() == "kept\n"  # nothing already saved is lost


def test_torchtitan_real_mix_gives_token_shares(tmp_path: Path) -> None:
    """With torchtitan importable (its GitHub source + grain), build the exported mix and count
    the tokens of each source in the packed rows it yields."""
    data = pytest.importorskip("torchtitan.components.data")
    grain = pytest.importorskip("grain.python")
    from torchtitan.components.tokenizer import BaseTokenizer

    ids = {"en0": 1, "de1": 2, "yo2": 3}

    class Words(BaseTokenizer):
        def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
            return [ids[w] for w in text.split()]

        def decode(self, *args: Any, **kwargs: Any) -> str:
            raise NotImplementedError

        def get_vocab_size(self) -> int:
            return 4

    paths, _ = _write_sources(tmp_path)
    m = Mixture(proportions={"en": 0.5, "de": 0.3, "yo": 0.2}, paths=paths, tokens=10**6)
    ns = _exec_snippet(export_mixture(m, "torchtitan"))
    context = data.DatasetBuildContext(tokenizer=Words(), max_context_length=17,
                                       num_tokens_per_batch=16, read_options=grain.ReadOptions())  # fmt: skip
    policy = data.DatasetIterationPolicy(seed=0, shuffle=True, repeat=True, dp_rank=0,
                                         dp_world_size=1, streaming_shuffle_buffer_size=16)  # fmt: skip
    it = iter(ns["climb_mix"].build(context=context, dataset_iteration_policy=policy))
    counts: Counter[int] = Counter()
    for _ in range(2000):
        row = next(it)
        counts.update(int(t) for t in np.asarray(row.input_ids).ravel() if t in (1, 2, 3))
    total = sum(counts.values())
    shares = {s: counts[i] / total for s, i in (("en", 1), ("de", 2), ("yo", 3))}
    assert shares == pytest.approx({"en": 0.5, "de": 0.3, "yo": 0.2}, abs=0.04)
