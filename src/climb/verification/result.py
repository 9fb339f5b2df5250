"""Verification results: realized loss of each mixture over seeds, and paired comparisons.

Every candidate mixture ``m`` (Climb's and each baseline's) is trained at the target budget with
the same seeds ``s = 1..n`` (a seed fixes the model's initialization and the data order). Its
realized loss on seed ``s`` is the mean validation loss over the targets, each target weighted
equally (the allocation's ``sum`` objective divided by ``T``):

    L̄_m(s) = (1/T) Σ_i L_i(m, s)

Climb (the ``recommended`` mixture ``c``) against a baseline ``b`` is a paired comparison: runs
with the same seed form a pair, ``d_s = L̄_c(s) − L̄_b(s)`` (negative: Climb is better), and

    d̄ = (1/n) Σ_s d_s,    CI = d̄ ± t_{(1+level)/2, n−1} · sd(d) / √n

is the two-sided Student-t interval over the ``n`` seed pairs (``sd`` with ``n − 1`` degrees of
freedom). The verdict is ``wins`` when the interval lies entirely below 0, ``loses`` when it lies
entirely above 0, and ``ties within noise`` when it contains 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from climb.data.userfiles import read_json, write_json
from climb.errors import ClimbError

WINS = "wins"
TIES = "ties within noise"
LOSES = "loses"
VERDICTS = (WINS, TIES, LOSES)
INTERVAL_METHOD = "Student t over the seed pairs"


@dataclass(frozen=True)
class PairedComparison:
    """The recommended mixture against one baseline, paired by seed.

    Attributes:
        baseline: the baseline's name.
        seeds: the seeds both were trained with (the pairs).
        diffs: ``d_s = L̄_recommended(s) − L̄_baseline(s)`` per seed (negative: recommended better).
        mean_diff: ``d̄``; ci_low / ci_high: the ``level`` t-interval of ``d̄``.
        verdict: ``wins``, ``ties within noise`` or ``loses`` (from the recommended side).
    """

    baseline: str
    seeds: list[int]
    diffs: list[float]
    mean_diff: float
    ci_low: float
    ci_high: float
    level: float
    verdict: str

    def to_json(self) -> dict[str, Any]:
        return {
            "mean_diff": self.mean_diff,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "verdict": self.verdict,
            "level": self.level,
            "interval": INTERVAL_METHOD,
            "seeds": list(self.seeds),
            "diffs": list(self.diffs),
        }


def paired_difference(
    recommended: Sequence[float] | np.ndarray,
    baseline: Sequence[float] | np.ndarray,
    *,
    level: float = 0.95,
    seeds: Sequence[int] | None = None,
    name: str = "baseline",
) -> PairedComparison:
    """``d̄`` and its Student-t interval over seed pairs (module docstring), with the verdict.

    ``recommended[k]`` and ``baseline[k]`` are the realized mean losses of the same seed ``k``;
    at least two pairs are needed for an interval.
    """
    a = np.asarray(recommended, dtype=float)
    b = np.asarray(baseline, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ClimbError(
            f"paired comparison with '{name}': {a.size} and {b.size} losses; "
            "pass one loss per seed for both mixtures"
        )
    if a.size < 2:
        raise ClimbError(
            f"paired comparison with '{name}': {a.size} seed pair(s); a t-interval needs "
            "seeds ≥ 2 (use 3 or more)"
        )
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ClimbError(f"paired comparison with '{name}': a realized loss is not finite")
    if not 0.0 < level < 1.0:
        raise ClimbError(f"level must be in (0, 1), got {level}")
    from scipy import stats

    d = a - b
    n = d.size
    mean = float(d.mean())
    half = float(stats.t.ppf(0.5 + level / 2.0, n - 1) * d.std(ddof=1) / math.sqrt(n))
    lo, hi = mean - half, mean + half
    verdict = WINS if hi < 0 else LOSES if lo > 0 else TIES
    return PairedComparison(
        baseline=name,
        seeds=[int(s) for s in (seeds if seeds is not None else range(n))],
        diffs=[float(x) for x in d],
        mean_diff=mean,
        ci_low=lo,
        ci_high=hi,
        level=float(level),
        verdict=verdict,
    )


@dataclass
class MixtureOutcome:
    """One mixture trained once per seed at the target budget.

    Attributes:
        name: ``climb`` or a baseline's name.
        proportions: ``{source: p}``.
        seeds: the training seeds, in order.
        realized: per seed, ``{target: realized validation loss}``.
        runs: per seed, the run id in the store (identical mixtures share runs).
        predicted: ``{target: the law's predicted loss}`` at the target budget, if a law was given.
    """

    name: str
    proportions: dict[str, float]
    seeds: list[int]
    realized: list[dict[str, float]]
    runs: list[str] = field(default_factory=list)
    predicted: dict[str, float] | None = None

    @property
    def losses(self) -> np.ndarray:
        """``(n_seeds,)`` ``L̄_m(s)``: the realized mean loss over targets, per seed."""
        return np.array([float(np.mean(list(r.values()))) for r in self.realized])

    @property
    def mean(self) -> float:
        return float(self.losses.mean())

    @property
    def std(self) -> float:
        """Standard deviation over seeds (``n − 1`` degrees of freedom; 0 for one seed)."""
        x = self.losses
        return float(x.std(ddof=1)) if x.size > 1 else 0.0

    @property
    def min(self) -> float:
        return float(self.losses.min())

    @property
    def max(self) -> float:
        return float(self.losses.max())

    @property
    def predicted_mean(self) -> float:
        """The law's prediction of ``L̄_m`` (NaN without a law)."""
        if not self.predicted:
            return math.nan
        return float(np.mean(list(self.predicted.values())))

    def realized_mean_by_target(self) -> dict[str, float]:
        """Per target, the realized loss averaged over seeds."""
        targets = list(self.realized[0]) if self.realized else []
        return {t: float(np.mean([r[t] for r in self.realized])) for t in targets}

    def to_json(self) -> dict[str, Any]:
        return {
            "proportions": dict(self.proportions),
            "seeds": list(self.seeds),
            "losses": [float(x) for x in self.losses],
            "losses_by_target": [dict(r) for r in self.realized],
            "runs": list(self.runs),
            "predicted_loss": None if self.predicted is None else dict(self.predicted),
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
        }


@dataclass
class VerificationResult:
    """Every candidate mixture trained with the same seeds at one target budget ``tokens``.

    ``mixtures`` maps names to :class:`MixtureOutcome`; ``recommended`` (default ``climb``) is
    compared with each other mixture by :func:`paired_difference` (:attr:`paired`).
    """

    tokens: float
    targets: list[str]
    mixtures: dict[str, MixtureOutcome]
    recommended: str = "climb"
    level: float = 0.95
    units: str = "bits/byte"
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.recommended not in self.mixtures:
            raise ClimbError(
                f"verification: no mixture named '{self.recommended}' "
                f"(have: {', '.join(self.mixtures)})"
            )
        seeds = self.mixtures[self.recommended].seeds
        for m in self.mixtures.values():
            if m.seeds != seeds or len(m.realized) != len(seeds):
                raise ClimbError(
                    f"verification: mixture '{m.name}' has seeds {m.seeds} with "
                    f"{len(m.realized)} losses; every mixture needs the seeds {seeds}"
                )

    @property
    def seeds(self) -> list[int]:
        return list(self.mixtures[self.recommended].seeds)

    @property
    def names(self) -> list[str]:
        return list(self.mixtures)

    @property
    def baselines(self) -> list[str]:
        return [n for n in self.mixtures if n != self.recommended]

    @property
    def paired(self) -> dict[str, PairedComparison]:
        """The recommended mixture against each baseline (same seed = same pair)."""
        rec = self.mixtures[self.recommended]
        return {
            b: paired_difference(
                rec.losses, self.mixtures[b].losses, level=self.level, seeds=rec.seeds, name=b
            )
            for b in self.baselines
        }

    def prediction_error(self) -> dict[str, float]:
        """MAE and mean bias (predicted − realized) of the law on the seed-averaged losses."""
        errs = [
            m.predicted[t] - v
            for m in self.mixtures.values()
            if m.predicted
            for t, v in m.realized_mean_by_target().items()
            if t in m.predicted
        ]
        e = np.array(errs, dtype=float)
        e = e[np.isfinite(e)]
        if not e.size:
            return {"mae": math.nan, "mean_bias": math.nan}
        return {"mae": float(np.abs(e).mean()), "mean_bias": float(e.mean())}

    def outcome_lines(self) -> list[str]:
        """A header and one line per mixture, lowest realized loss first: mean ± std [min, max]
        over the seeds, and the law's prediction in brackets where one was recorded."""
        out = [
            f"verification over {len(self.seeds)} seeds (realized mean validation loss, "
            f"{self.units}: mean ± std [min, max]; law's prediction in brackets):"
        ]
        for m in sorted(self.mixtures.values(), key=lambda m: m.mean):
            pred = f"  [{m.predicted_mean:.4f}]" if m.predicted else ""
            out.append(
                f"  {m.name:<11} {m.mean:.4f} ± {m.std:.4f} [{m.min:.4f}, {m.max:.4f}]{pred}"
            )
        return out

    def verdict_lines(self) -> list[str]:
        """One line per baseline: the paired difference, its interval and the verdict."""
        n = len(self.seeds)
        out = []
        for b, c in self.paired.items():
            out.append(
                f"{self.recommended} vs {b}: {c.verdict} (paired difference {c.mean_diff:+.4f} "
                f"{self.units}, {c.level:.0%} t-interval over {n} seeds "
                f"[{c.ci_low:+.4f}, {c.ci_high:+.4f}])"
            )
        return out

    # ------------------------------------------------------------------ files
    def to_json(self) -> dict[str, Any]:
        return {
            "tokens": float(self.tokens),
            "targets": list(self.targets),
            "recommended": self.recommended,
            "units": self.units,
            "level": self.level,
            "interval": INTERVAL_METHOD,
            "settings": self.settings,
            "mixtures": {n: m.to_json() for n, m in self.mixtures.items()},
            "paired": {b: c.to_json() for b, c in self.paired.items()},
        }

    @classmethod
    def from_json(cls, obj: Any, origin: str = "verification JSON") -> VerificationResult:
        """Read :meth:`to_json`'s document (``paired`` is recomputed from the losses)."""
        try:
            mixtures = {
                str(name): _outcome_from_json(str(name), m) for name, m in obj["mixtures"].items()
            }
            return cls(
                tokens=float(obj["tokens"]),
                targets=[str(t) for t in obj["targets"]],
                mixtures=mixtures,
                recommended=str(obj.get("recommended", "climb")),
                level=float(obj.get("level", 0.95)),
                units=str(obj.get("units", "bits/byte")),
                settings=dict(obj.get("settings", {})),
            )
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise ClimbError(
                f"{origin}: not a verification file (bad or missing field {exc}); "
                "pass the verification.json written by 'climb demo'"
            ) from None

    def save(self, path: str | Path) -> Path:
        return write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> VerificationResult:
        return cls.from_json(read_json(path, "verification"), origin=str(path))


def _outcome_from_json(name: str, m: Mapping[str, Any]) -> MixtureOutcome:
    seeds = [int(s) for s in m["seeds"]]
    realized = [{str(t): float(v) for t, v in r.items()} for r in m["losses_by_target"]]
    pred = m.get("predicted_loss")
    return MixtureOutcome(
        name=name,
        proportions={str(k): float(v) for k, v in m["proportions"].items()},
        seeds=seeds,
        realized=realized,
        runs=[str(r) for r in m.get("runs", [])],
        predicted=None if pred is None else {str(k): float(v) for k, v in pred.items()},
    )
