"""Proxy trainer: configs, exact mixture sampling, determinism, checkpoints, BPE, errors."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")  # the trainer is the 'train' extra

from climb.data.corpus import Corpus  # noqa: E402
from climb.data.runs import RunTable  # noqa: E402
from climb.errors import ClimbError, ClimbWarning  # noqa: E402
from climb.proxy import train as train_mod  # noqa: E402
from climb.proxy.config import (  # noqa: E402
    CorpusLike,
    ModelConfig,
    RunSpec,
    TrainConfig,
)
from climb.proxy.model import ProxyLM  # noqa: E402
from climb.proxy.tokenize import ByteTokenizer, train_bpe, utf8_prefix  # noqa: E402
from climb.proxy.train import (  # noqa: E402
    cooldown_lr,
    lr_at,
    mixture_schedule,
    resolve_execution,
    run_phases,
    sample_plan,
    sequence_counts,
    train_run,
    wsd_lr_at,
)


class StandInCorpus:
    """Real text in the shape of ``climb.data.corpus.Corpus`` (sources + text_bytes)."""

    def __init__(self, texts: dict[str, bytes], valid_frac: float = 0.15) -> None:
        self._texts = texts
        self._frac = valid_frac

    @property
    def sources(self) -> Sequence[str]:
        return list(self._texts)

    def text_bytes(self, source: str, split: str = "train") -> bytes:
        data = self._texts[source]
        cut = len(utf8_prefix(data, int(len(data) * (1 - self._frac))))
        return data[:cut] if split == "train" else data[cut:]


def _real_texts() -> dict[str, bytes]:
    """~150 kB slices of real English, German and Russian from the embedded corpus."""
    emb = Corpus.open()
    return {s: utf8_prefix(emb.text_bytes(s, "train"), 150_000) for s in ("en", "de", "ru")}


@pytest.fixture(scope="module")
def corpus() -> StandInCorpus:
    return StandInCorpus(_real_texts())


TINY = ModelConfig(d_model=32, n_layers=1, n_heads=2, context=64)


def tiny_spec(**kw: object) -> RunSpec:
    train = {
        "compile": False,
        "eval_bytes": 4096,
        "batch_size": 8,
        "lr": 3e-3,
        **kw.pop("train", {}),
    }  # type: ignore[dict-item]
    base: dict[str, object] = {
        "run_id": "tiny",
        "mixture": {"en": 0.5, "de": 0.3, "ru": 0.2},
        "tokens": 20_000,
        "model": TINY,
        "train": TrainConfig(**train),  # type: ignore[arg-type]
    }
    base.update(kw)
    return RunSpec(**base)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- configs
def test_corpus_protocol(corpus: StandInCorpus) -> None:
    assert isinstance(corpus, CorpusLike)


@pytest.mark.parametrize(
    ("d", "layers", "expected"), [(128, 3, 590_720), (192, 5, 2_213_952), (384, 5, 8_851_584)]
)
def test_non_embedding_params_match_model(d: int, layers: int, expected: int) -> None:
    cfg = ModelConfig(d_model=d, n_layers=layers, n_heads=4)
    assert cfg.non_embedding_params() == expected
    assert ProxyLM(cfg).non_embedding_params() == expected


def test_spec_hash_tracks_what_is_measured() -> None:
    a = tiny_spec()
    assert a.spec_hash() == tiny_spec().spec_hash()
    assert len(a.spec_hash()) == 16
    # where it runs does not change the hash ...
    assert a.spec_hash() == tiny_spec(train={"device": "cpu", "threads": 2}).spec_hash()
    # ... what it measures does
    assert a.spec_hash() != tiny_spec(tokens=30_000).spec_hash()
    assert a.spec_hash() != tiny_spec(train={"seed": 1}).spec_hash()
    assert a.spec_hash() != tiny_spec(mixture={"en": 0.6, "de": 0.2, "ru": 0.2}).spec_hash()
    # key order of the mixture is irrelevant
    assert a.spec_hash() == tiny_spec(mixture={"ru": 0.2, "de": 0.3, "en": 0.5}).spec_hash()
    # round-trips through JSON
    assert RunSpec.model_validate_json(a.model_dump_json()) == a


@pytest.mark.parametrize(
    ("mixture", "fragment"),
    [
        ({"en": 0.5, "ru": 0.4}, "sum to 0.9"),
        ({"en": 1.2, "ru": -0.2}, "'ru' is -0.2"),
        ({}, "empty mixture"),
        ({"en": float("nan"), "ru": 1.0}, "finite"),
    ],
)
def test_bad_mixture_is_a_climb_error(mixture: dict[str, float], fragment: str) -> None:
    with pytest.raises(ClimbError, match=fragment):
        RunSpec(run_id="x", mixture=mixture, tokens=1000)
    with pytest.raises(ClimbError, match=fragment):
        RunSpec.from_dict({"run_id": "x", "mixture": mixture, "tokens": 1000})


def test_bad_fields_are_one_line_climb_errors() -> None:
    with pytest.raises(ClimbError, match=r"field 'tokens'") as e:
        RunSpec.from_dict(
            {"run_id": "x", "mixture": {"en": 1}, "tokens": "many"}, origin="plan.yaml"
        )
    assert str(e.value).startswith("plan.yaml: ") and "\n" not in str(e.value)
    with pytest.raises(ClimbError, match="n_heads"):
        RunSpec.from_dict(
            {"run_id": "x", "mixture": {"en": 1}, "tokens": 9, "model": {"d_model": 30}}
        )
    with pytest.raises(ClimbError, match=r"field 'train\.lrr'"):
        RunSpec.from_dict({"run_id": "x", "mixture": {"en": 1}, "tokens": 9, "train": {"lrr": 1}})
    with pytest.raises(ClimbError, match="'@'"):
        RunSpec(run_id="a@b", mixture={"en": 1.0}, tokens=10)


def test_unknown_source_is_a_climb_error(corpus: StandInCorpus) -> None:
    with pytest.raises(ClimbError, match="'klingon' is not in the corpus"):
        train_run(tiny_spec(mixture={"en": 0.5, "klingon": 0.5}), corpus)


def test_bf16_without_compile_on_cpu_is_refused() -> None:
    with pytest.raises(ClimbError, match="bf16"):
        resolve_execution(tiny_spec(train={"device": "cpu", "bf16": True, "compile": False}))


def test_auto_execution_rule_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    short = resolve_execution(tiny_spec(train={"device": "cpu", "compile": "auto"}))
    assert (short.compile, short.bf16) == (False, False)
    long_run = tiny_spec(
        tokens=train_mod.CPU_COMPILE_MIN_TOKENS, train={"device": "cpu", "compile": "auto"}
    )
    for native in (True, False):  # bf16 only with compile, and only where the CPU has it
        monkeypatch.setattr(train_mod, "cpu_native_bf16", lambda native=native: native)
        long = resolve_execution(long_run)
        assert long.bf16 == (long.compile and native)
    # asked for explicitly on a CPU without native bf16: honoured, with a warning
    explicit = tiny_spec(train={"device": "cpu", "bf16": True, "compile": True})
    with pytest.warns(ClimbWarning, match="without native bf16"):
        assert resolve_execution(explicit).bf16 is True


# --------------------------------------------------------------------------- sampling and schedule
def test_sequence_counts_largest_remainder() -> None:
    assert sequence_counts(np.array([0.5, 0.3, 0.2]), 10).tolist() == [5, 3, 2]
    assert sequence_counts(np.array([1 / 3, 1 / 3, 1 / 3]), 10).tolist() == [4, 3, 3]
    assert sequence_counts(np.array([0.0, 0.55, 0.45]), 2).tolist() == [0, 1, 1]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=8).filter(lambda w: sum(w) > 1e-3),
    st.integers(1, 3000),
)
def test_schedule_is_exact_and_smooth(weights: list[float], n: int) -> None:
    p = np.array(weights) / sum(weights)
    counts = sequence_counts(p, n)
    assert counts.sum() == n
    assert np.all(np.abs(counts - p * n) < 1)
    assert np.all(counts[p == 0] == 0)
    slots = mixture_schedule(counts)
    assert np.bincount(slots, minlength=len(p)).tolist() == counts.tolist()
    # every prefix is within 1 sequence of its share: |#s in first m − m n_s / n| ≤ 1
    onehot = slots[:, None] == np.arange(len(p))[None, :]
    prefix = np.cumsum(onehot, axis=0)
    ideal = np.arange(1, n + 1)[:, None] * counts[None, :] / n
    assert np.abs(prefix - ideal).max() < 1.0


def test_sample_plan_counts_and_windows() -> None:
    p = np.array([0.5, 0.25, 0.0, 0.25])
    lengths = [1000, 500, 0, 300]
    slots, starts = sample_plan(p, 64, 32, lengths, seed=3)
    assert np.bincount(slots, minlength=4).tolist() == [32, 16, 0, 16]
    for k, L in enumerate(lengths):
        assert np.all(starts[slots == k] + 32 < max(L, 1)) or L == 0
    # every batch of 8 holds the planned 4/2/0/2
    per_batch = [np.bincount(slots[i : i + 8], minlength=4).tolist() for i in range(0, 64, 8)]
    assert all(b == [4, 2, 0, 2] for b in per_batch)
    again = sample_plan(p, 64, 32, lengths, seed=3)
    assert np.array_equal(starts, again[1])
    assert not np.array_equal(starts, sample_plan(p, 64, 32, lengths, seed=4)[1])


def test_lr_schedule() -> None:
    cfg = TrainConfig(lr=1e-2, warmup_frac=0.1, min_lr_ratio=0.1)
    lrs = [lr_at(s, 100, cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-3)
    assert lrs[9] == pytest.approx(1e-2)
    assert max(lrs) == pytest.approx(1e-2)
    assert lrs[-1] == pytest.approx(1e-3, rel=1e-3)
    assert all(a >= b - 1e-15 for a, b in itertools.pairwise(lrs[9:]))


# --------------------------------------------------------------------------- training runs
def test_tiny_run_rows(corpus: StandInCorpus) -> None:
    seen: list[int] = []
    spec = tiny_spec(mixture={"en": 0.7, "de": 0.3, "ru": 0.0})
    rows = train_run(spec, corpus, progress=seen.append)
    B, T = 8, 64
    steps = round(20_000 / (B * T))
    assert [r["run"] for r in rows] == [
        f"tiny@{round(0.25 * steps) * B * T}",
        f"tiny@{round(0.5 * steps) * B * T}",
        "tiny",
    ]
    assert [r["final"] for r in rows] == [False, False, True]
    assert [r["true_budget"] for r in rows] == [False, False, True]  # checkpoints: mid-schedule
    assert {r["train_run"] for r in rows} == {"tiny"} and rows[0]["schedule"] == "cosine"
    assert rows[-1]["tokens"] == steps * B * T and rows[-1]["planned_tokens"] == 20_000
    assert seen[-1] == steps * B * T and seen == sorted(seen)
    for r in rows:
        assert r["params"] == TINY.non_embedding_params()
        assert (r["p.en"], r["p.de"], r["p.ru"]) == (0.7, 0.3, 0.0)
        for s in ("en", "de", "ru"):
            v = r[f"loss.{s}"]
            assert isinstance(v, float) and math.isfinite(v) and 0 < v < 9.0
        assert r["spec_hash"] == spec.spec_hash()
    # the rows are a valid run table
    table = RunTable.from_frame(pd.DataFrame(rows))
    assert table.targets == ["en", "de", "ru"] and len(table) == 3


def test_cpu_runs_are_bit_identical(corpus: StandInCorpus) -> None:
    a = train_run(tiny_spec(), corpus)
    b = train_run(tiny_spec(), corpus)
    for ra, rb in zip(a, b):
        for s in ("en", "de", "ru"):
            assert ra[f"loss.{s}"] == rb[f"loss.{s}"]  # bitwise, not approx
    c = train_run(tiny_spec(train={"seed": 1}), corpus)
    assert c[-1]["loss.en"] != a[-1]["loss.en"]


def test_torch_settings_are_restored(corpus: StandInCorpus) -> None:
    threads = torch.get_num_threads()
    det = torch.are_deterministic_algorithms_enabled()
    train_run(tiny_spec(tokens=2000, train={"threads": 1, "checkpoints": []}), corpus)
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == det


def test_loss_decreases_on_real_text(corpus: StandInCorpus) -> None:
    spec = tiny_spec(
        tokens=60_000,
        mixture={"en": 0.5, "de": 0.5, "ru": 0.0},
        train={"lr": 1e-2, "checkpoints": [0.1, 0.5]},
    )
    rows = train_run(spec, corpus)
    en = [float(r["loss.en"]) for r in rows]  # type: ignore[arg-type]
    assert en[0] > en[1] > en[2]
    assert en[2] < 5.7  # well below the 8 bits/byte of a uniform byte model
    # a trained-on source beats an untrained one
    assert rows[-1]["loss.en"] < rows[-1]["loss.ru"]  # type: ignore[operator]


def test_non_finite_loss_stops_with_climb_error(
    corpus: StandInCorpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = train_mod.lm_loss

    def poisoned(
        logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean"
    ) -> torch.Tensor:
        return real(logits, targets, reduction) * float("nan")

    monkeypatch.setattr(train_mod, "lm_loss", poisoned)
    with pytest.raises(ClimbError, match=r"training loss became nan at step 1 of"):
        train_run(tiny_spec(), corpus)


def test_source_too_short_is_a_climb_error() -> None:
    small = StandInCorpus({"en": b"hello world " * 500, "xx": b"tiny"})
    with pytest.raises(ClimbError, match=r"source 'xx' has .* training tokens"):
        train_run(tiny_spec(mixture={"en": 0.5, "xx": 0.5}), small)
    with pytest.raises(ClimbError, match=r"source 'xx' has .* validation tokens"):
        train_run(tiny_spec(mixture={"en": 1.0, "xx": 0.0}), small)


# --------------------------------------------------------------------------- tokenizers
def test_byte_tokenizer_counts_bytes() -> None:
    tok = ByteTokenizer()
    ids = tok.encode("Grüße, мир".encode())
    assert len(ids) == len("Grüße, мир".encode()) and tok.token_bytes[ids].sum() == len(ids)


def test_utf8_prefix_never_splits_a_character() -> None:
    data = "aé中".encode()  # 1 + 2 + 3 bytes
    assert [utf8_prefix(data, n) for n in range(7)] == [
        b"",
        b"a",
        b"a",
        "aé".encode(),
        "aé".encode(),
        "aé".encode(),
        data,
    ]


def test_bpe_is_deterministic_cached_and_counts_bytes(
    corpus: StandInCorpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLIMB_CACHE_DIR", str(tmp_path))
    a = train_bpe(corpus, 400)
    files = list((tmp_path / "tokenizers").glob("*.json"))
    assert len(files) == 1
    b = train_bpe(corpus, 400)  # from the cache
    assert a.key == b.key and a.vocab_size == 400
    text = corpus.text_bytes("ru", "valid")
    ids = a.encode(text)
    assert np.array_equal(ids, b.encode(text))
    assert int(a.token_bytes[ids].sum()) == len(text)  # bits/byte denominators are exact
    assert len(ids) < 0.6 * len(text)  # even 144 merges compress Cyrillic (2 bytes/char)
    # trained from scratch in a fresh cache: the same merges
    monkeypatch.setenv("CLIMB_CACHE_DIR", str(tmp_path / "fresh"))
    assert train_bpe(corpus, 400)._tok.to_str() == a._tok.to_str()


def test_bpe_run_reports_bits_per_byte(
    corpus: StandInCorpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLIMB_CACHE_DIR", str(tmp_path))
    model = TINY.model_copy(update={"tokenizer": "bpe", "bpe_vocab": 512})
    spec = tiny_spec(model=model, tokens=30_000, train={"lr": 1e-2, "checkpoints": [0.2]})
    rows = train_run(spec, corpus)
    assert rows[-1]["tokenizer"] == "bpe"
    en = [float(r["loss.en"]) for r in rows]  # type: ignore[arg-type]
    assert en[1] < en[0]
    # bits per byte, not nats per token: per-token loss would exceed ln(512)/ln2 ≈ 9 early on
    assert 0.5 < en[-1] < 6.0
    assert rows[-1]["params"] == model.non_embedding_params()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:train.bf16=true on a CPU without native bf16")
def test_compiled_bf16_run_is_deterministic_and_matches_eager(corpus: StandInCorpus) -> None:
    """The long-run CPU path (torch.compile + bf16 autocast): trains, reproduces, agrees with eager."""
    kw: dict[str, object] = {"tokens": 40_000, "mixture": {"en": 0.5, "de": 0.5, "ru": 0.0}}
    fast = {"lr": 1e-2, "checkpoints": [0.25], "compile": True, "bf16": True}
    a = train_run(tiny_spec(train=fast, **kw), corpus)  # type: ignore[arg-type]
    b = train_run(tiny_spec(train=fast, **kw), corpus)  # type: ignore[arg-type]
    assert a[-1]["compile"] is True and a[-1]["bf16"] is True
    assert [r["loss.en"] for r in a] == [r["loss.en"] for r in b]
    assert a[-1]["loss.en"] < a[0]["loss.en"]  # type: ignore[operator]
    eager = train_run(tiny_spec(train={"lr": 1e-2, "checkpoints": [0.25]}, **kw), corpus)  # type: ignore[arg-type]
    assert a[-1]["loss.en"] == pytest.approx(eager[-1]["loss.en"], rel=0.05)


def test_runs_on_a_real_corpus_directory(tmp_path: Path) -> None:
    """Integration with climb.data.corpus.Corpus (the type the sweep passes in)."""
    for name, text in _real_texts().items():
        words = text.decode().split()
        docs = [" ".join(words[i : i + 300]) for i in range(0, len(words), 300)]
        (tmp_path / f"{name}.txt").write_text("\n\n".join(docs))
    real = Corpus.open(tmp_path)
    assert isinstance(real, CorpusLike)
    rows = train_run(tiny_spec(tokens=8000, train={"checkpoints": []}), real)
    assert [r["run"] for r in rows] == ["tiny"]
    assert all(0 < float(rows[0][f"loss.{s}"]) < 9 for s in ("en", "de", "ru"))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- WSD and true budgets
WSD = {"schedule": "wsd", "lr": 1e-2}


def test_wsd_schedule_shapes() -> None:
    cfg = TrainConfig(lr=1e-2, warmup_frac=0.1, schedule="wsd")
    assert [wsd_lr_at(s, 100, cfg) for s in (0, 9, 10, 99)] == pytest.approx(
        [1e-3, 1e-2, 1e-2, 1e-2]
    )
    sq = [cooldown_lr(t, 10, 1.0, cfg) for t in range(10)]
    lin = [
        cooldown_lr(t, 10, 1.0, cfg.model_copy(update={"cooldown_shape": "linear"}))
        for t in range(10)
    ]
    assert sq[0] == pytest.approx(1 - math.sqrt(0.05)) and lin[0] == pytest.approx(0.95)
    assert sq[-1] == pytest.approx(1 - math.sqrt(0.95)) and lin[-1] == pytest.approx(0.05)
    assert all(a > b for a, b in itertools.pairwise(sq)) and all(x < y for x, y in zip(sq, lin))


def test_wsd_phases_count_the_cooldown_inside_each_budget() -> None:
    spec = tiny_spec(tokens=40_000, branches=(10_000, 20_000), train=WSD)
    steps, phases = run_phases(spec)
    B, T = 8, 64
    ends = [round(d / (B * T)) for d in (10_000, 20_000, 40_000)]
    assert steps == ends[-1]
    assert [(ph.end, ph.budget, ph.branch) for ph in phases] == [
        (ends[0], 10_000, True), (ends[1], 20_000, True), (ends[2], 40_000, False)
    ]  # fmt: skip
    for ph in phases:  # the branch starts at D_k − cooldown and ends at exactly D_k
        assert ph.end - ph.start == math.ceil(0.2 * ph.end) and ph.evals == (ph.end,)
    with pytest.raises(ClimbError, match="round to steps"):
        run_phases(tiny_spec(tokens=40_000, branches=(39_900,), train=WSD))


def test_wsd_branch_rows_are_true_budgets_and_deterministic(corpus: StandInCorpus) -> None:
    spec = tiny_spec(tokens=40_000, branches=(20_000,), train=WSD)
    rows = train_run(spec, corpus)
    B, T = 8, 64
    d1, d2 = round(20_000 / (B * T)) * B * T, round(40_000 / (B * T)) * B * T
    assert [(r["run"], r["tokens"], r["planned_tokens"]) for r in rows] == [
        (f"tiny@{d1}", d1, 20_000), ("tiny", d2, 40_000)
    ]  # fmt: skip
    assert [r["true_budget"] for r in rows] == [True, True]
    assert [r["final"] for r in rows] == [False, True]
    assert {r["train_run"] for r in rows} == {"tiny"} and rows[0]["schedule"] == "wsd"
    again = train_run(spec, corpus)
    for ra, rb in zip(rows, again):
        assert [ra[f"loss.{s}"] for s in ("en", "de", "ru")] == [
            rb[f"loss.{s}"] for s in ("en", "de", "ru")
        ]  # bitwise
    table = RunTable.from_frame(pd.DataFrame(rows))
    assert len(table) == 2


def test_branches_leave_the_main_run_untouched(corpus: StandInCorpus) -> None:
    """A branch restores the main run's model and optimiser state exactly: the last row of a
    branched run is bit-identical to the same run without branches."""
    branched = train_run(tiny_spec(tokens=40_000, branches=(20_000,), train=WSD), corpus)
    plain = train_run(tiny_spec(tokens=40_000, train=WSD), corpus)
    for s in ("en", "de", "ru"):
        assert branched[-1][f"loss.{s}"] == plain[-1][f"loss.{s}"]


def test_branch_at_d1_matches_a_separate_wsd_run_of_d1(corpus: StandInCorpus) -> None:
    """The cooldown branch at D1 of a run to D2 is a model of budget D1: its losses are within
    the noise of a separate WSD run of budget D1 (other warmup length and data order), far
    closer to it than to the model at D2."""
    branched = train_run(tiny_spec(tokens=40_000, branches=(20_000,), train=WSD), corpus)
    alone = train_run(tiny_spec(tokens=20_000, train=WSD), corpus)
    srcs = ("en", "de", "ru")
    b1 = np.array([branched[0][f"loss.{s}"] for s in srcs])
    b2 = np.array([branched[1][f"loss.{s}"] for s in srcs])
    a1 = np.array([alone[0][f"loss.{s}"] for s in srcs])
    assert np.abs(b1 - a1).mean() < 0.1
    assert np.abs(b1 - a1).mean() < 0.5 * np.abs(b2 - a1).mean()
    assert (b2 < b1).all()  # twice the tokens: lower loss on every source
