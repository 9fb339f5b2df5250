"""The evidence study: does Climb's mixture beat the baselines when models are actually trained?

For each scenario (a set of languages of the embedded corpus), resumable stage by stage from
``benchmarks/output/evidence/<scenario>/`` (SQLite run stores of climb: a killed study resumes
where it stopped, finished runs are never retrained):

1. **corpus** — a derived corpus (``corpus/``, not committed; rebuilt from the embedded corpus
   and ``benchmarks/data/parallel``): each language's training split without the parallel
   held-out pages (their LibreOffice help documents are removed from training), low-resource
   languages cut to their first ``cap`` bytes of training documents
   (:func:`climb.data.corpus.take_first_bytes`, the rule of ``climb demo --cap``; so the ≤ 4-epoch
   cap binds at the target budget); ``par-<lang>`` sources hold the parallel pages (evaluated, never
   trained on);
2. **proxies** — ``design_runs`` (monolingual runs, pairs, Dirichlet mixtures) with the WSD
   schedule: one run per mixture at ``D₂`` with a cooldown branch at ``D₁ = D₂/2``, so both rows
   of every mixture are true budgets (the LR schedule finished there) → ``proxies.db``;
3. **allocation** — laws fitted on the proxies (``climb`` default with the support-aware term
   given the corpus' byte profile, as ``climb demo`` fits it; ``isolated``; ``msl``), the
   target budget ``D* = --scale · D₂`` with the same data caps (``p_i D* ≤ 4 U_i``): Climb's
   two-step allocation, the isolated-law optimum (fitted isolated law, same allocator), the MSL
   optimum, uniform, natural, temperature (τ = 3.33), UniMax → ``allocation.json`` (written once
   and reused, so a resumed study trains exactly the same mixtures);
4. **verification** — every mixture trained at ``D*`` (the same WSD schedule: constant LR, then
   a cooldown over the last 20 %) with ``--seeds`` seeds (init and data order), seed by seed
   (all mixtures of seed 0 first, so partial results are paired) →
   ``verify.db``; each run is also evaluated on the parallel pages;
5. **results** — per mixture, the realized mean validation loss over the scenario's languages
   (bits per byte) per seed; Climb minus each baseline, paired by seed, mean and 95 %
   t-interval (:func:`climb.verification.paired_difference`); verdict ``wins`` (interval below
   0), ``loses`` (above 0) or ``ties within noise``. Written to
   ``benchmarks/output/evidence.json`` (the schema of issue 10, exactly) after every finished
   seed, and the details (coverage, parallel-text bits/byte, predicted losses, settings) to
   ``benchmarks/output/evidence-details.json``.

    python benchmarks/evidence.py                   # run (or resume) everything; prints estimate
    python benchmarks/evidence.py --report-only     # results from the stores as they are now
    nohup python benchmarks/evidence.py > benchmarks/output/evidence.log 2>&1 &
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import hashlib
import json
import lzma
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from climb.allocation import Constraints, allocate
from climb.allocation.plan import plan_allocation
from climb.data.corpus import Corpus, embedded_corpus_path, take_first_bytes
from climb.data.store import RunStore
from climb.errors import ClimbError
from climb.laws import get_law, law_from_json
from climb.laws.climb.support import SupportProfile
from climb.proxy.config import ModelConfig, TrainConfig, cpu_native_bf16
from climb.proxy.design import Plan, PlannedRun, design_runs
from climb.proxy.executors import make_executor
from climb.proxy.sweep import run_sweep
from climb.verification import paired_difference

HERE = Path(__file__).resolve().parent
OUT = HERE / "output"
PARALLEL = HERE / "data" / "parallel"
MAX_EPOCHS = 4.0
BASELINES = ("uniform", "natural", "temperature", "unimax", "isolated", "msl")


@dataclass(frozen=True)
class Scenario:
    """Languages of the embedded corpus, and the training bytes kept of low-resource ones."""

    name: str
    languages: tuple[str, ...]
    caps: dict[str, int] = field(default_factory=dict)
    proxy_runs: int = 24
    note: str = ""
    reuse: str = ""
    """Another scenario whose proxy and verification stores this one starts from (same design
    and settings: finished runs with the same spec are not retrained)."""


SCENARIOS = {
    "transfer": Scenario(
        "transfer",
        ("es", "pt", "fr", "ca", "ru", "uk", "zh", "ja"),
        caps={"ca": 12_000},
        note="related languages sharing script and vocabulary (es, pt, fr, ca; ru, uk; zh, ja); "
        "ca cut to 12 kB of training text, so 4 epochs bind at the target budget",
    ),
    "transfer-support": Scenario(
        "transfer-support",
        ("es", "pt", "fr", "ca", "ru", "uk", "zh", "ja"),
        caps={"ca": 12_000},
        note="the transfer scenario again (same proxies and baseline runs), with the climb law "
        "as it is since the support-aware term landed (byte-frequency support profile of the "
        "scenario corpus, as `climb demo` fits it); the 'transfer' allocation predates it",
        reuse="transfer",
    ),
    "transfer-kappa05": Scenario(
        "transfer-kappa05",
        ("es", "pt", "fr", "ca", "ru", "uk", "zh", "ja"),
        caps={"ca": 12_000},
        note="the transfer scenario again (same proxies and baseline runs) with the climb law "
        "since |kappa| <= 0.5 became its default box (479f46f)",
        reuse="transfer",
    ),
    "demo": Scenario(
        "demo",
        ("en", "fr", "ru", "ja", "ko", "hi"),
        proxy_runs=18,
        note="the languages of `climb demo` (five scripts, one related pair en/fr)",
    ),
    "demo-support": Scenario(
        "demo-support",
        ("en", "fr", "ru", "ja", "ko", "hi"),
        proxy_runs=18,
        note="the demo scenario again (same proxies and baseline runs) with the climb law's "
        "support-aware term, as for transfer-support",
        reuse="demo",
    ),
    "demo-kappa05": Scenario(
        "demo-kappa05",
        ("en", "fr", "ru", "ja", "ko", "hi"),
        proxy_runs=18,
        note="the demo scenario again with the climb law since |kappa| <= 0.5 (479f46f)",
        reuse="demo",
    ),
}

MODEL = ModelConfig(d_model=64, n_layers=2, n_heads=2, context=128)
QUICK_MODEL = ModelConfig(d_model=32, n_layers=1, n_heads=2, context=64)
FAST = True
"""torch.compile + bf16 autocast when a C compiler is there and the CPU computes bf16 natively
(``--quick``: off). Execution settings are not part of a run's spec: a resumed study trains its
remaining runs in float32 on a CPU without native bf16."""


def train_config(seed: int) -> TrainConfig:
    has_cc = shutil.which("cc") is not None or shutil.which("gcc") is not None
    fast = FAST and has_cc and cpu_native_bf16()  # emulated bf16 is ~3× slower than fp32
    return TrainConfig(
        batch_size=8, seed=seed, checkpoints=(), eval_bytes=12288, threads=1,
        compile=fast, bf16=fast, schedule="wsd",
    )  # fmt: skip


# ---------------------------------------------------------------------- 1. corpus
def _read_jsonl_xz(path: Path) -> list[dict[str, str]]:
    with lzma.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def parallel_pages() -> tuple[list[str], dict[str, list[dict[str, str]]]]:
    """The parallel set's page paths and, per language, its pages (same order)."""
    manifest = json.loads((PARALLEL / "MANIFEST.json").read_text(encoding="utf-8"))
    docs = {}
    for lang in manifest["languages"]:
        lines = (PARALLEL / f"{lang}.jsonl").read_text(encoding="utf-8").splitlines()
        docs[lang] = [json.loads(x) for x in lines if x.strip()]
    return list(manifest["pages"]), docs


def build_corpus(sc: Scenario, where: Path) -> Path:
    """The scenario's derived corpus (see the module docstring); rebuilt only when missing."""
    root = where / "corpus"
    if (root / "DONE").exists():
        return root
    pages, par = parallel_pages()
    held = set(pages)
    emb = embedded_corpus_path()
    tmp = where / "corpus.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    info: dict[str, Any] = {}
    for lang in sc.languages:
        train = _read_jsonl_xz(emb / lang / "train.jsonl.xz")
        valid = _read_jsonl_xz(emb / lang / "valid.jsonl.xz")
        kept = [d for d in train if d["doc"].split(":", 1)[-1] not in held]
        removed = len(train) - len(kept)
        if lang in sc.caps:  # the rule of Corpus.derive (climb demo --cap)
            kept = kept[: len(list(take_first_bytes((d["text"] for d in kept), sc.caps[lang])))]
        (tmp / lang).mkdir(parents=True)
        for split, docs in (("train", kept), ("valid", valid)):
            text = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs)
            (tmp / lang / f"{split}.jsonl").write_text(text, encoding="utf-8")
        info[lang] = {"parallel_pages_removed": removed, "train_documents": len(kept)}
        if lang in par:
            (tmp / f"par-{lang}").mkdir()
            text = "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in par[lang])
            for split in ("train", "valid"):  # train = valid: never sampled (share 0)
                (tmp / f"par-{lang}" / f"{split}.jsonl").write_text(text, encoding="utf-8")
    (tmp / "INFO.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    (tmp / "DONE").write_text("")
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root


# ---------------------------------------------------------------------- 2. proxies
def proxy_plan(sc: Scenario, corpus: Path, budgets: list[int]) -> tuple[Plan, dict[str, int]]:
    unique = {s: int(v) for s, v in Corpus.open(corpus).unique_tokens().items()}
    unique = {s: unique[s] for s in sc.languages}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = design_runs(
            list(sc.languages), budgets, sc.proxy_runs, seed=0, unique_tokens=unique,
            max_epochs=MAX_EPOCHS, model=MODEL, train=train_config(0), schedule="wsd",
        )  # fmt: skip
    return plan, unique


# ---------------------------------------------------------------------- 3. allocation
def _clean(props: dict[str, float], sources: list[str]) -> dict[str, float]:
    """Rounded to 6 decimals, summing to 1 (stable run specs across processes)."""
    v = np.clip(np.array([float(props.get(s, 0.0)) for s in sources]), 0.0, None)
    v = np.round(v / v.sum(), 6)
    k = int(np.argmax(v))
    v[k] = round(1.0 - (v.sum() - v[k]), 6)
    return {s: float(x) for s, x in zip(sources, v)}


def allocation(sc: Scenario, where: Path, runs: Any, unique: dict[str, int], target: int) -> dict:
    """Every method's mixture at ``D*`` (computed once, then read from ``allocation.json``)."""
    path = where / "allocation.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    langs = list(sc.languages)
    n_params = float(MODEL.non_embedding_params())
    cons = Constraints(unique_tokens=unique, max_epochs=MAX_EPOCHS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        support = SupportProfile.from_corpus(Corpus.open(where / "corpus"), list(runs.sources))
        laws = {
            "climb": get_law("climb", seed=0, support=support).fit(runs),
            "isolated": get_law("isolated", seed=0).fit(runs),
        }
        laws["msl"] = get_law("msl").fit(runs)
        plan = plan_allocation(
            laws["climb"], float(target), n_params, constraints=cons, msl_law=laws["msl"],
            baselines=("uniform", "natural", "temperature", "unimax", "msl"),
        )  # fmt: skip
        iso = allocate(laws["isolated"], float(target), n_params, constraints=cons)
    mixtures = {"climb": plan.result.proportions_dict(), "isolated": iso.proportions_dict()}
    for name, res in plan.baselines.items():
        mixtures[name] = res.proportions_dict()
    mixtures = {m: _clean(p, langs) for m, p in mixtures.items()}
    out = {
        "target_tokens": target,
        "mixtures": mixtures,
        "climb_path": plan.result.path,
        "model_params": n_params,
        "unique_tokens": unique,
        "laws": {n: law.to_json() for n, law in laws.items()},
    }
    path.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return out


# ---------------------------------------------------------------------- 4. verification
def _tag(mix: dict[str, float]) -> str:
    blob = json.dumps({k: round(v, 9) for k, v in sorted(mix.items())})
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def verify_runs(mixtures: dict[str, dict[str, float]], seed: int) -> dict[str, str]:
    """Run id per mixture name for one seed (identical mixtures share one run)."""
    first: dict[str, str] = {}
    out = {}
    for name, mix in mixtures.items():
        tag = _tag(mix)
        first.setdefault(tag, f"{name}-{tag}-s{seed}")
        out[name] = first[tag]
    return out


def verify_plan(sc: Scenario, corpus: Path, alloc: dict, seed: int) -> Plan:
    run_of = verify_runs(alloc["mixtures"], seed)
    runs, seen = [], set()
    for name, rid in run_of.items():
        if rid not in seen:
            seen.add(rid)
            mix = {s: v for s, v in alloc["mixtures"][name].items() if v > 0}
            runs.append(PlannedRun(rid, mix, int(alloc["target_tokens"]), "custom"))
    par = [s for s in Corpus.open(corpus).sources if s.startswith("par-")]
    return Plan(
        sources=[*sc.languages, *par], runs=runs, model=MODEL, train=train_config(seed),
        design={"purpose": "evidence verification", "scenario": sc.name, "seed": seed},
    )  # fmt: skip


# ---------------------------------------------------------------------- 5. results
def paired(ours: list[float], theirs: list[float], seeds: list[int], name: str) -> dict[str, Any]:
    """Climb − baseline paired by seed: mean, 95 % t-interval and verdict
    (:func:`climb.verification.paired_difference`; fewer than 2 pairs: no interval)."""
    if len(ours) < 2:
        mean = float(np.mean(np.subtract(ours, theirs))) if ours else None
        return {"mean_diff": mean, "ci_low": None, "ci_high": None,
                "verdict": f"not enough seeds ({len(ours)})"}  # fmt: skip
    c = paired_difference(ours, theirs, seeds=seeds, name=name)
    return {"mean_diff": c.mean_diff, "ci_low": c.ci_low, "ci_high": c.ci_high,
            "verdict": c.verdict}  # fmt: skip


def results(sc: Scenario, where: Path, seeds: int) -> tuple[dict, dict] | None:
    """``(evidence entry, details)`` from the stores as they are now (``None``: nothing yet)."""
    apath, vpath = where / "allocation.json", where / "verify.db"
    if not apath.exists() or not vpath.exists():
        return None
    alloc = json.loads(apath.read_text(encoding="utf-8"))
    with RunStore(vpath, create=False) as rs, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # par-* columns are 0 in every run: evaluation-only
        table = rs.to_run_table(final_only=True)
    langs = list(sc.languages)
    par = [t for t in table.targets if t.startswith("par-")]

    def mean_loss(rid: str, cols: list[str]) -> float | None:
        if rid not in table.run or not cols:
            return None
        row = table.run.index(rid)
        return float(np.mean([table.loss[row, table.targets.index(t)] for t in cols]))

    law = law_from_json(alloc["laws"]["climb"])
    n_params = float(alloc.get("model_params", MODEL.non_embedding_params()))
    mixtures: dict[str, Any] = {}
    details: dict[str, Any] = {}
    for name, mix in alloc["mixtures"].items():
        pred = law.predict([mix[s] for s in law.sources_], float(alloc["target_tokens"]), n_params)
        got = []
        for seed in range(seeds):
            rid = verify_runs(alloc["mixtures"], seed)[name]
            loss = mean_loss(rid, langs)
            if loss is not None:
                row = table.run.index(rid)
                per = {t: float(table.loss[row, table.targets.index(t)]) for t in langs + par}
                got.append((seed, loss, mean_loss(rid, par), rid, per))
        mixtures[name] = {"proportions": mix, "seeds": [g[0] for g in got],
                          "losses": [g[1] for g in got]}  # fmt: skip
        details[name] = {
            "parallel_losses": [g[2] for g in got],
            "runs": [g[3] for g in got],
            "per_language": [g[4] for g in got],
            "climb_predicted": {t: float(v) for t, v in zip(law.targets_, pred)},
            "climb_predicted_mean_loss": float(np.mean(pred)),
        }
    pairs: dict[str, Any] = {}
    pairs_par: dict[str, Any] = {}
    ours = dict(zip(mixtures["climb"]["seeds"], mixtures["climb"]["losses"]))
    ours_par = dict(zip(mixtures["climb"]["seeds"], details["climb"]["parallel_losses"]))
    for b in BASELINES:
        if b not in mixtures:
            continue
        theirs = dict(zip(mixtures[b]["seeds"], mixtures[b]["losses"]))
        common = sorted(set(ours) & set(theirs))
        pairs[b] = paired([ours[s] for s in common], [theirs[s] for s in common], common, b)
        theirs_par = dict(zip(mixtures[b]["seeds"], details[b]["parallel_losses"]))
        cp = [s for s in common if ours_par.get(s) is not None and theirs_par.get(s) is not None]
        pairs_par[b] = paired([ours_par[s] for s in cp], [theirs_par[s] for s in cp], cp, b)
    entry = {"target_tokens": alloc["target_tokens"], "mixtures": mixtures, "paired": pairs}
    info = {
        "languages": langs, "parallel_targets": par, "note": sc.note, "caps_bytes": sc.caps,
        "unique_tokens": alloc["unique_tokens"], "climb_path": alloc["climb_path"],
        "mixtures": details, "paired_parallel": pairs_par,
        "seeds_planned": seeds,
        "complete": all(len(m["seeds"]) == seeds for m in mixtures.values()),
    }  # fmt: skip
    return entry, info


def write_results(seeds: int, settings: dict[str, Any]) -> dict:
    """``evidence.json`` and the details from every scenario that has results so far."""
    evidence: dict[str, Any] = {"scenarios": {}}
    details: dict[str, Any] = {"settings": settings, "scenarios": {}}
    for name in SCENARIOS:
        got = results(SCENARIOS[name], OUT / "evidence" / name, seeds)
        if got is not None:
            evidence["scenarios"][name], details["scenarios"][name] = got
    details["written"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    (OUT / "evidence.json").write_text(json.dumps(evidence, indent=1) + "\n", encoding="utf-8")
    (OUT / "evidence-details.json").write_text(
        json.dumps(details, indent=1) + "\n", encoding="utf-8"
    )
    return evidence


def table(evidence: dict, seeds: int) -> str:
    lines = []
    for name, sc in evidence["scenarios"].items():
        lines.append(f"\n## {name}: D* = {sc['target_tokens']:,} tokens")
        lines.append(
            "| mixture | seeds | mean loss (bits/byte) ± sd | Climb − it, 95% CI | verdict |"
        )
        lines.append("|---|---|---|---|---|")
        for m, v in sc["mixtures"].items():
            x = np.asarray(v["losses"])
            sd = f" ± {x.std(ddof=1):.4f}" if x.size > 1 else ""
            cell = f"{x.mean():.4f}{sd}" if x.size else "–"
            p = sc["paired"].get(m)
            if p is None or p["mean_diff"] is None:
                ci, verdict = "", "" if p is None else p["verdict"]
            elif p["ci_low"] is None:
                ci, verdict = f"{p['mean_diff']:+.4f}", p["verdict"]
            else:
                ci = f"{p['mean_diff']:+.4f} [{p['ci_low']:+.4f}, {p['ci_high']:+.4f}]"
                verdict = p["verdict"]
            lines.append(f"| {m} | {len(v['seeds'])}/{seeds} | {cell} | {ci} | {verdict} |")
    return "\n".join(lines)


def plot(evidence: dict, path: Path) -> Path | None:
    """Per scenario: each mixture's mean loss per seed (dots) and mean (bar), Climb first."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    scen = {n: s for n, s in evidence["scenarios"].items() if not SCENARIOS[n].reuse and any(
        m["losses"] for m in s["mixtures"].values())}  # fmt: skip
    if not scen:
        return None
    fig = Figure(figsize=(5.2 * len(scen), 6.4))
    FigureCanvasAgg(fig)
    for k, (name, sc) in enumerate(scen.items()):
        ax = fig.add_subplot(2, len(scen), k + 1)
        names = list(sc["mixtures"])
        for i, m in enumerate(names):
            x = np.asarray(sc["mixtures"][m]["losses"])
            if x.size:
                ax.bar(i, x.mean(), color="tab:blue" if m == "climb" else "0.7", width=0.6)
                ax.plot(np.full(x.size, i), x, "k.", ms=4)
        allx = np.concatenate([np.asarray(v["losses"]) for v in sc["mixtures"].values()])
        span = max(float(allx.max() - allx.min()), 1e-3)
        ax.set_ylim(float(allx.min()) - 0.5 * span, float(allx.max()) + 0.3 * span)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("mean valid. loss (bits/byte)", fontsize=8)
        ax.set_title(f"{name}: D* = {sc['target_tokens']:,} tokens (dots: seeds)", fontsize=9)
        bx = fig.add_subplot(2, len(scen), len(scen) + k + 1)
        base = [b for b, p in sc["paired"].items() if p["ci_low"] is not None]
        for i, b in enumerate(base):
            p = sc["paired"][b]
            err = [[p["mean_diff"] - p["ci_low"]], [p["ci_high"] - p["mean_diff"]]]
            color = {"wins": "tab:green", "loses": "tab:red"}.get(p["verdict"], "0.3")
            bx.errorbar(i, p["mean_diff"], yerr=err, fmt="o", color=color, capsize=3)
        bx.axhline(0.0, color="k", lw=0.8)
        bx.set_xticks(range(len(base)), base, rotation=30, ha="right", fontsize=8)
        bx.set_ylabel("Climb − baseline, 95% CI", fontsize=8)
        bx.set_title("paired by seed (below 0: Climb better)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


# ---------------------------------------------------------------------- driver
def remaining_tokens(sc: Scenario, where: Path, budgets: list[int], target: int, seeds: int) -> int:
    """Tokens still to train (an upper bound before the allocation exists: 7 mixtures)."""
    done: set[str] = set()
    if (where / "verify.db").exists():
        with RunStore(where / "verify.db", create=False) as rs:
            done = set(rs.finished())
    cooldown = train_config(0).cooldown_frac * sum(sorted(budgets)[:-1])
    proxies = int(sc.proxy_runs * (max(budgets) + cooldown))
    if (where / "proxies.db").exists():
        with RunStore(where / "proxies.db", create=False) as rs:
            proxies = int(proxies * max(0.0, 1 - len(rs) / sc.proxy_runs))
    n_mix = 7
    if (where / "allocation.json").exists():
        alloc = json.loads((where / "allocation.json").read_text(encoding="utf-8"))
        n_mix = len({_tag(m) for m in alloc["mixtures"].values()})
    return proxies + max(0, n_mix * seeds - len(done)) * target


def run_scenario(sc: Scenario, args: argparse.Namespace, executor: Any) -> None:
    where = OUT / "evidence" / sc.name
    if sc.reuse and not where.exists():
        src = OUT / "evidence" / sc.reuse
        where.mkdir(parents=True)
        for name in ("proxies.db", "verify.db", "plan.yaml"):
            shutil.copy2(src / name, where / name)
    where.mkdir(parents=True, exist_ok=True)
    budgets = [int(b) for b in args.proxy_tokens]
    target = int(args.scale * max(budgets))
    corpus = build_corpus(sc, where)
    plan, unique = proxy_plan(sc, corpus, budgets)
    plan.save(where / "plan.yaml")
    print(f"[{sc.name}] proxies: {len(plan)} runs at {budgets} tokens", flush=True)
    run_sweep(plan, where / "proxies.db", corpus=corpus, executor=executor, progress=False)
    with RunStore(where / "proxies.db", create=False) as rs:
        table = rs.to_run_table()
    runs = table.subset(table.true_budget).select_targets(list(sc.languages))
    alloc = allocation(sc, where, runs, unique, target)
    mix = ", ".join(f"{s} {v:.3f}" for s, v in alloc["mixtures"]["climb"].items())
    print(f"[{sc.name}] climb at D* = {target:,}: {mix}", flush=True)
    for seed in range(args.seeds):
        vplan = verify_plan(sc, corpus, alloc, seed)
        vplan.save(where / f"verify-plan-s{seed}.yaml")
        t0 = time.perf_counter()
        run_sweep(vplan, where / "verify.db", corpus=corpus, executor=executor, progress=False)
        print(f"[{sc.name}] seed {seed}: {len(vplan)} runs in {time.perf_counter() - t0:.0f} s",
              flush=True)  # fmt: skip
        write_results(args.seeds, settings(args))


def settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "model": MODEL.model_dump(mode="json"),
        "train": train_config(0).model_dump(mode="json"),
        "proxy_tokens": [int(b) for b in args.proxy_tokens],
        "target_tokens": int(args.scale * max(args.proxy_tokens)),
        "max_epochs": MAX_EPOCHS,
        "seeds": args.seeds,
        "scenarios": {n: {"languages": list(sc.languages), "caps": sc.caps,
                          "proxy_runs": sc.proxy_runs, "reuses": sc.reuse}
                      for n, sc in SCENARIOS.items()},
    }  # fmt: skip


def main() -> None:
    global OUT, PARALLEL, MODEL, FAST
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--scenarios",
        nargs="+",
        default=list(SCENARIOS),
        choices=list(SCENARIOS),
        help="default: all (the *-support ones reuse the finished runs of the others)",
    )
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--proxy-tokens", type=float, nargs="+", default=[20_000, 40_000])
    ap.add_argument("--scale", type=float, default=10.0, help="D* / largest proxy budget")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rate", type=float, default=15_000, help="tokens/s for the time estimate")
    ap.add_argument("--report-only", action="store_true", help="write results, train nothing")
    ap.add_argument("--out", type=Path, default=OUT, help="output folder (default: this one's)")
    ap.add_argument("--parallel", type=Path, default=PARALLEL, help="parallel held-out set")
    ap.add_argument("--quick", action="store_true", help="tiny model, no compile (smoke test)")
    args = ap.parse_args()
    OUT, PARALLEL = args.out, args.parallel
    if args.quick:
        MODEL, FAST = QUICK_MODEL, False
    budgets = [int(b) for b in args.proxy_tokens]
    target = int(args.scale * max(budgets))
    todo = {n: remaining_tokens(SCENARIOS[n], OUT / "evidence" / n, budgets, target, args.seeds)
            for n in args.scenarios}  # fmt: skip
    total = sum(todo.values())
    print(f"# evidence.py {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
          f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f}")  # fmt: skip
    print("# remaining: " + ", ".join(f"{n} {t / 1e6:.1f}M tokens" for n, t in todo.items())
          + f"; estimate {total / args.rate / 60:.0f} min at {args.rate:,.0f} tokens/s", flush=True)  # fmt: skip
    if not args.report_only:
        executor = make_executor("local", workers=args.workers, threads=1)
        for name in args.scenarios:
            try:
                run_scenario(SCENARIOS[name], args, executor)
            except ClimbError as exc:
                print(f"[{name}] failed: {exc}", flush=True)
                raise
    evidence = write_results(args.seeds, settings(args))
    print(table(evidence, args.seeds))
    plot(evidence, OUT / "evidence.png")


if __name__ == "__main__":
    main()
