"""Which features of a mixture explain the loss on a script it never trained on?

    python benchmarks/unseen_features.py      # needs the stores of absent_noise.py --all

The fresh default demo's proxies (``output/demo-fresh-2026-12-01/runs.db``, seed 0) and their
replicates with seeds 1 and 2 (``output/absent_noise_fresh/runs.db``, from ``absent_noise.py
--all``). The pairs: (run, target) with ``p_i = 0`` and the default support gate at 1 (≥ 30% of
the target's bytes never seen: another script). The value to explain: the loss of seed 0, and the
mean over the three seeds (less noise: what a law could hope to predict).

Each feature set is a linear model ``y ≈ X c`` fitted by least squares; printed: the MAE in sample
and leaving one mixture out (both budgets of a mixture held out together, as the demo's CV holds
out a run). Features, per pair:

* ``lnD``: ``ln(D / D_ref)`` (the support term's);
* ``conf``: ``L_0 − ℓ̄``, the confidence feature of the support term, here from the *measured*
  own losses (share-weighted over the trained sources, capped at ``L_0 = 8``);
* ``H``: the entropy of the mixture over its sources; ``n``: its number of sources at ≥ 1%;
* ``u1``, ``u2``, ``u3``: the target's unseen mass over byte unigrams, bigrams and trigrams
  (``Σ_v f_i(v) exp(−D Σ_j p_j f_j(v))``, the support term's with ``n0 = 1``);
* ``nonascii``: the share of the mixture's training bytes ≥ 0x80;
* ``Hlead``: the entropy of the mixture's UTF-8 lead bytes (0xC2–0xF4), a proxy of how many
  scripts it trains on.

``lnD + conf`` is the support term's own ``G`` (fitted there on the law's predictions of the own
losses, not the measured ones).

Two bounds follow the table. **Every subset** of at most four of the features above and their
pairwise products with ``lnD``, ``conf`` and ``n``, fitted to the 3-seed means and scored against
seed 0 (what the demo's CV scores): the best subsets leaving one mixture out (picked on the same
pairs, so optimistic) and in sample. **A free level per run**: each (run, budget) gets its own
intercept (and each target an offset), fitted in sample to the means; no law of the mixture can do
better than a free parameter per run, so its error against seed 0 is the most any richer form of
``G`` could gain on these pairs.
"""

from __future__ import annotations

import itertools
import os
import platform
import sys
import warnings
from pathlib import Path

import numpy as np

from climb.data.corpus import Corpus
from climb.data.runs import RunTable
from climb.errors import ClimbWarning
from climb.laws.climb.support import SEEN_COUNT, UNSEEN_GATE

sys.path.insert(0, str(Path(__file__).resolve().parent))
from absent_noise import cells, read

HERE = Path(__file__).resolve().parent / "output"
L0 = 8.0

FEATURE_SETS = [
    ["lnD", "conf"],
    ["lnD", "conf", "H"],
    ["lnD", "conf", "n"],
    ["lnD", "conf", "u1"],
    ["lnD", "conf", "u2"],
    ["lnD", "conf", "u3"],
    ["lnD", "conf", "nonascii"],
    ["lnD", "conf", "Hlead"],
    ["lnD", "conf", "n", "nonascii"],
    ["lnD", "conf", "H", "n", "u1", "u2", "u3", "nonascii", "Hlead"],
]


def ngram_frequencies(data: bytes, order: int) -> np.ndarray:
    """Frequencies of the byte n-grams of ``data`` (``256**order`` bins)."""
    a = np.frombuffer(data, dtype=np.uint8).astype(np.int64)
    idx = np.zeros(len(a) - order + 1, dtype=np.int64)
    for k in range(order):
        idx = idx * 256 + a[k : len(a) - order + 1 + k]
    c = np.bincount(idx, minlength=256**order).astype(np.float32)
    return c / c.sum()


def entropy(q: np.ndarray) -> float:
    q = q[q > 0] / q.sum()
    return float(-(q * np.log2(q)).sum())


def pairs(rt: RunTable, freq: dict[str, list[np.ndarray]], ref: float) -> list[dict]:
    """The feature rows of the (run, target) pairs with p = 0 and the gate at 1."""
    out = []
    S = list(rt.sources)
    for r in range(len(rt)):
        p, d = rt.p[r], float(rt.tokens[r])
        trained = [(p[j], rt.loss[r, rt.targets.index(s)]) for j, s in enumerate(S) if p[j] > 0]
        lbar = sum(w * min(x, L0) for w, x in trained) / sum(w for w, _ in trained)
        mix = [sum(p[j] * freq[s][k] for j, s in enumerate(S) if p[j] > 0) for k in range(3)]
        q = p[p > 0]
        base = {"lnD": np.log(d / ref), "conf": L0 - lbar, "H": float(-(q * np.log(q)).sum()),
                "n": float((p >= 0.01).sum()), "nonascii": float(mix[0][128:].sum()),
                "Hlead": entropy(mix[0][0xC2:0xF5]) if mix[0][0xC2:0xF5].sum() > 0 else 0.0}  # fmt: skip
        for k, t in enumerate(rt.targets):
            if p[S.index(t)] != 0 or not np.isfinite(rt.loss[r, k]):
                continue
            u = [float((freq[t][o] * np.exp(-d / SEEN_COUNT * mix[o])).sum()) for o in range(3)]
            if u[0] / UNSEEN_GATE < 1.0:
                continue
            key = tuple(np.round(p, 4))
            out.append({**base, "u1": u[0], "u2": u[1], "u3": u[2], "y": float(rt.loss[r, k]),
                        "mixture": key, "cell": (key, d), "target": t})  # fmt: skip
    return out


def lomo(rows: list[dict], cols: list[str], truth: list[dict] | None = None) -> tuple[float, float]:
    """MAE leaving one mixture out, and in sample, of the least-squares fit on ``cols`` to
    ``rows``, scored against ``truth``'s values (the same pairs; default ``rows``)."""
    X = np.array([[1.0] + [x[c] for c in cols] for x in rows])
    y = np.array([x["y"] for x in rows])
    y_true = y if truth is None else np.array([x["y"] for x in truth])
    mix = np.array([str(x["mixture"]) for x in rows])
    err = np.zeros(len(y))
    for m in np.unique(mix):
        te = mix == m
        coef = np.linalg.lstsq(X[~te], y[~te], rcond=None)[0]
        err[te] = np.abs(X[te] @ coef - y_true[te])
    coef = np.linalg.lstsq(X, y, rcond=None)[0]
    return float(err.mean()), float(np.abs(X @ coef - y_true).mean())


POOL = ["lnD", "conf", "H", "n", "u1", "u2", "u3", "nonascii", "Hlead"]
"""The features of the exhaustive search; products with :data:`CROSSED` are added."""
CROSSED = ["lnD", "conf", "n"]


def with_products(rows: list[dict]) -> tuple[list[dict], list[str]]:
    """``rows`` with the products ``a*b`` of every feature ``a`` of :data:`CROSSED` and ``b`` of
    :data:`POOL` (``a ≠ b``), and the names of the whole pool."""
    names = POOL + [f"{a}*{b}" for a in CROSSED for b in POOL if a < b or b not in CROSSED]
    out = []
    for x in rows:
        extra = {n: x[n.split("*")[0]] * x[n.split("*")[1]] for n in names if "*" in n}
        out.append({**x, **extra})
    return out, names


def exhaustive(means: list[dict], seed0: list[dict], size: int = 4, show: int = 5) -> None:
    """Every subset of at most ``size`` features of the pool (:func:`with_products`)."""
    means, names = with_products(means)
    seed0, _ = with_products(seed0)
    res = [(*lomo(means, list(c), seed0), c)
           for k in range(1, size + 1) for c in itertools.combinations(names, k)]  # fmt: skip
    res.sort()
    print(
        f"\nevery subset of ≤ {size} of {len(names)} features ({len(res)} linear models), "
        "fitted to the 3-seed means, MAE against seed 0; the best leaving one mixture out:"
    )
    print(f"{'features':<48} {'LOMO':>6} {'in sample':>10}")
    for lomo_mae, ins, cols in res[:show]:
        print(f"{' + '.join(cols):<48} {lomo_mae:>6.3f} {ins:>10.3f}")
    print(f"{'least in sample of all':<48} {'':>6} {min(r[1] for r in res):>10.3f}")


def free_levels(means: list[dict], seed0: list[dict]) -> None:
    """A free intercept per (run, budget), and per target, fitted in sample to the means."""
    y = np.array([x["y"] for x in means])
    y0 = np.array([x["y"] for x in seed0])
    for label, keys in (
        ("a level per run", ["cell"]),
        ("a level per run + per target", ["cell", "target"]),
    ):
        cols = []
        for key in keys:
            values = sorted({str(x[key]) for x in means})
            if key != "cell":  # the first target is the reference: the run levels hold its level
                values = values[1:]
            cols += [[float(str(x[key]) == v) for x in means] for v in values]
        X = np.array(cols).T
        coef = np.linalg.lstsq(X, y, rcond=None)[0]
        print(f"{label:<48} {X.shape[1]:>3} parameters, in sample: "
              f"{np.abs(X @ coef - y0).mean():.3f} against seed 0, "
              f"{np.abs(X @ coef - y).mean():.3f} against the means")  # fmt: skip
    print(f"{'the 3-seed means themselves':<48} against seed 0: {np.abs(y - y0).mean():.3f}")


def main() -> int:
    warnings.simplefilter("ignore", ClimbWarning)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}")  # fmt: skip
    demo = read(HERE / "demo-fresh-2026-12-01" / "runs.db")
    reps = read(HERE / "absent_noise_fresh" / "runs.db")
    S = list(demo.sources)
    groups = cells([demo, reps], S)
    corpus = Corpus.open(None)
    freq = {s: [ngram_frequencies(corpus.text_bytes(s), o) for o in (1, 2, 3)] for s in S}
    ref = float(np.exp(np.mean(np.log(np.unique(demo.tokens)))))
    rows = pairs(demo, freq, ref)
    means = []
    for x in rows:
        seeds = groups[x["cell"]]
        means.append({**x, "y": float(np.mean([v[S.index(x["target"])] for v in seeds]))})
    n_seeds = {len(groups[x["cell"]]) for x in rows}
    print(f"{len(rows)} pairs with p = 0 and the gate at 1 (another script), "
          f"{len({x['mixture'] for x in rows})} mixtures, seeds per cell {sorted(n_seeds)}; "
          "MAE in bits/byte")  # fmt: skip
    print(f"{'features':<48} {'seed 0: LOMO':>12} {'in sample':>10} {'3-seed mean: LOMO':>18} "
          f"{'in sample':>10}")  # fmt: skip
    for cols in FEATURE_SETS:
        a, b = lomo(rows, cols)
        c, d = lomo(means, cols)
        print(f"{' + '.join(cols):<48} {a:>12.3f} {b:>10.3f} {c:>18.3f} {d:>10.3f}")
    exhaustive(means, rows)
    print("\nno law of the mixture beats a free level per run (fitted to the means, in sample):")
    free_levels(means, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
