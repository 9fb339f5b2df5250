"""Command-line string parsing lives in climb.cli.parsing: one token parser for every verb."""

from __future__ import annotations

from pathlib import Path

import pytest

from climb.cli import main
from climb.cli.parsing import (
    model_from_string,
    parse_tokens,
    read_bounds,
    read_weights,
)
from climb.errors import ClimbError


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("250000", 250_000),
        ("250k", 250_000),
        ("1.5M", 1_500_000),
        ("2e6", 2_000_000),
        ("2.5e5", 250_000),
        ("100B", 100_000_000_000),
        ("3G", 3_000_000_000),
        ("1T", 1_000_000_000_000),
        ("1_000", 1000),
        (" 30k ", 30_000),
    ],
)
def test_parse_tokens_accepts_every_suffix(text: str, value: int) -> None:
    assert parse_tokens(text) == value


@pytest.mark.parametrize("text", ["lots", "", "-5", "0", "1.5X", "k"])
def test_parse_tokens_rejects_with_the_flag_name(text: str) -> None:
    with pytest.raises(ClimbError, match=r"^--params '"):
        parse_tokens(text, "--params")


def test_design_and_allocate_read_the_same_token_syntax(tmp_path: Path, capsys) -> None:
    # `design --tokens 1T` used to fail while `allocate --tokens 1T` worked: one parser now.
    corpus = tmp_path / "c"
    corpus.mkdir()
    for s in ("de", "en"):
        (corpus / f"{s}.txt").write_text(" ".join([s] * 2000), encoding="utf-8")
    plan = tmp_path / "plan.yaml"
    code = main(["design", "--sources", "de,en", "--tokens", "1T", "2T", "--runs", "6",
                 "--out", str(plan)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "1000000000000" in plan.read_text() or "1e+12" in plan.read_text()


def test_model_from_string() -> None:
    m = model_from_string("d32-l1-h2-c64", ["mlp_ratio=2"])
    assert (m.d_model, m.n_layers, m.n_heads, m.context, m.mlp_ratio) == (32, 1, 2, 64, 2)
    with pytest.raises(ClimbError, match="--model 'd32-x1'"):
        model_from_string("d32-x1")
    with pytest.raises(ClimbError, match="n_heads"):
        model_from_string("d30-h4")
    with pytest.raises(ClimbError, match="--model-opt 'oops'"):
        model_from_string("d32", ["oops"])


def test_weights_and_bounds_from_text_and_files(tmp_path: Path) -> None:
    assert read_weights("en=2, de=0.5") == {"en": 2.0, "de": 0.5}
    assert read_bounds("en=0.1:0.5,de=:0.3") == {"en": (0.1, 0.5), "de": (None, 0.3)}
    f = tmp_path / "w.csv"
    f.write_text("source,weight\nen,3\nde,1\n", encoding="utf-8")
    assert read_weights(str(f)) == {"en": 3.0, "de": 1.0}
    b = tmp_path / "b.yaml"
    b.write_text("en: [0.2, 0.6]\n", encoding="utf-8")
    assert read_bounds(str(b)) == {"en": (0.2, 0.6)}
    with pytest.raises(ClimbError, match=r"^--weights: 'en' is not NAME=VALUE"):
        read_weights("en,de=1")
    with pytest.raises(ClimbError, match=r"^--bounds: 'en=0.2' must be NAME=LO:HI"):
        read_bounds("en=0.2")
    with pytest.raises(ClimbError, match=r"^--weights: .*no such file"):
        read_weights(str(tmp_path / "missing.csv"))
