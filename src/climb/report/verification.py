"""Verification results: models trained at the target budget on each candidate mixture.

The demo trains one model per mixture (Climb's and each baseline's) with the same seed and settings
and records, next to what the law predicted, the realized validation loss per language. The mean
over languages (each language weighted equally, the ``sum`` objective divided by K) decides which
mixture won; the comparison is reported as measured, whichever mixture wins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from climb.errors import ClimbError


@dataclass
class VerifiedMixture:
    """One verification run: its mixture, the law's predicted and the realized losses."""

    name: str
    proportions: dict[str, float]
    predicted: dict[str, float]
    realized: dict[str, float]
    run: str = ""

    def mean(self, which: str = "realized") -> float:
        values = self.realized if which == "realized" else self.predicted
        return float(np.mean(list(values.values())))


@dataclass
class Verification:
    """Realized vs predicted loss of every candidate mixture at one target budget ``tokens``."""

    tokens: float
    targets: list[str]
    mixtures: list[VerifiedMixture]
    recommended: str = "climb"
    units: str = "bits/byte"
    settings: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ views
    @property
    def names(self) -> list[str]:
        return [m.name for m in self.mixtures]

    def get(self, name: str) -> VerifiedMixture:
        for m in self.mixtures:
            if m.name == name:
                return m
        raise ClimbError(f"verification: no mixture named '{name}' (have: {', '.join(self.names)})")

    def matrix(self, which: str = "realized") -> np.ndarray:
        """``(M, T)`` losses over mixtures × targets."""
        return np.array(
            [
                [
                    (m.realized if which == "realized" else m.predicted).get(t, np.nan)
                    for t in self.targets
                ]
                for m in self.mixtures
            ]
        )

    def comparison(self) -> list[dict[str, Any]]:
        """Each baseline against the recommended mixture: realized means and the difference.

        ``delta`` = baseline mean − recommended mean (positive: the recommended mixture is better).
        """
        rec = self.get(self.recommended)
        rows = []
        for m in self.mixtures:
            if m.name == self.recommended:
                continue
            rows.append(
                {
                    "baseline": m.name,
                    "baseline_mean": m.mean(),
                    "recommended_mean": rec.mean(),
                    "delta": m.mean() - rec.mean(),
                    "recommended_wins": rec.mean() < m.mean(),
                }
            )
        return rows

    @property
    def recommended_wins_all(self) -> bool:
        return all(row["recommended_wins"] for row in self.comparison())

    def verdict(self) -> str:
        """A plain sentence with the numbers: did the recommended mixture beat every baseline?"""
        rec = self.get(self.recommended)
        rows = self.comparison()
        if not rows:
            return f"{self.recommended}: realized mean loss {rec.mean():.4f} {self.units} (no baselines)"
        lost = [r for r in rows if not r["recommended_wins"]]
        best = min(self.mixtures, key=lambda m: m.mean())
        head = (
            f"{self.recommended} mixture: realized mean validation loss {rec.mean():.4f} {self.units} "
            f"at {self.tokens:.3g} tokens"
        )
        if not lost:
            margin = min(r["delta"] for r in rows)
            return (
                f"{head}; it beats every baseline (closest: "
                f"{min(rows, key=lambda r: r['delta'])['baseline']}, by {margin:.4f})."
            )
        worse = ", ".join(
            f"{r['baseline']} {r['baseline_mean']:.4f} "
            + (f"(lower by {-r['delta']:.5f})" if r["delta"] < 0 else "(equal)")
            for r in lost
        )
        return (
            f"{head}; it does NOT beat every baseline: {worse}; "
            f"best is {best.name} at {best.mean():.4f} (lower is better)."
        )

    def prediction_error(self) -> dict[str, float]:
        """MAE of the law's predictions on the verification runs, overall and of the means."""
        pr, re_ = self.matrix("predicted"), self.matrix("realized")
        m = np.isfinite(pr) & np.isfinite(re_)
        return {
            "mae": float(np.mean(np.abs(pr[m] - re_[m]))) if m.any() else float("nan"),
            "mean_bias": float(np.mean(pr[m] - re_[m])) if m.any() else float("nan"),
        }

    # ------------------------------------------------------------------ files
    def to_json(self) -> dict[str, Any]:
        return {
            "tokens": float(self.tokens),
            "targets": list(self.targets),
            "recommended": self.recommended,
            "units": self.units,
            "settings": self.settings,
            "mixtures": [
                {
                    "name": m.name,
                    "run": m.run,
                    "proportions": m.proportions,
                    "predicted_loss": m.predicted,
                    "realized_loss": m.realized,
                    "predicted_mean": m.mean("predicted"),
                    "realized_mean": m.mean("realized"),
                }
                for m in self.mixtures
            ],
            "comparison": self.comparison(),
            "verdict": self.verdict(),
        }

    @classmethod
    def from_json(cls, obj: Any, origin: str = "verification JSON") -> Verification:
        try:
            mixtures = [
                VerifiedMixture(
                    name=str(m["name"]),
                    proportions={str(k): float(v) for k, v in m["proportions"].items()},
                    predicted={str(k): float(v) for k, v in m["predicted_loss"].items()},
                    realized={str(k): float(v) for k, v in m["realized_loss"].items()},
                    run=str(m.get("run", "")),
                )
                for m in obj["mixtures"]
            ]
            out = cls(
                tokens=float(obj["tokens"]),
                targets=[str(t) for t in obj["targets"]],
                mixtures=mixtures,
                recommended=str(obj.get("recommended", "climb")),
                units=str(obj.get("units", "bits/byte")),
                settings=dict(obj.get("settings", {})),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ClimbError(
                f"{origin}: not a verification file (bad or missing field {exc}); "
                "pass the verification.json written by 'climb demo'"
            ) from None
        if not mixtures:
            raise ClimbError(f"{origin}: no mixtures in the verification file")
        out.get(out.recommended)
        return out

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Verification:
        path = Path(path)
        if not path.is_file():
            raise ClimbError(f"{path}: no such verification file")
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ClimbError(f"{path}: not valid JSON ({exc})") from None
        return cls.from_json(obj, origin=str(path))
