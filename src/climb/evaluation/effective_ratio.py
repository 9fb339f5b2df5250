"""Observed effective ratios (CLIMB.md §2): invert the isolated part of a fitted law per run.

For a run with measured loss ``L_i^obs`` at budget ``D`` and size ``N``, the observed effective
ratio is the share of ``D`` that, spent on language ``i`` alone, gives the same loss:

    climb / isolated:  L_i^iso(r̂_i D; N) = L_i^obs
                       ⇒ r̂_i = (1/D) · [B_i / (L_i^obs − E_i − A_i N^(-α_i))]^(1/β_i)
    climb-msl:         (E_i + A_i N^(-α_i) + B_i D^(-β_i)) · r̂_i^(-γ_i) = L_i^obs
                       ⇒ r̂_i = (L_i^obs / (E_i + A_i N^(-α_i) + B_i D^(-β_i)))^(-1/γ_i)

``r̂_i > p_i``: the other sources transfer positively into ``i``; ``r̂_i < p_i``: interference.
Next to it the law's own ``r_i = p_i + Σ_{j≠i} W(D)_ij φ_{η_i}(p_j)``
(``= (W(D) p)_i`` for linear transfer, η = 1), from the law (:meth:`Law.effective_ratio`, computed
by :mod:`climb.laws.climb.ratio`, so a fitted saturation ``η`` is honoured); ``r̂`` is the law's
:meth:`Law.ratio_from_loss`. ``r̂`` is ``NaN`` when the loss is not measured or lies at or below the
law's floor ``E_i + A_i N^(-α_i)`` (no finite ratio reaches it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from climb.data.runs import RunTable
from climb.errors import ClimbError
from climb.laws.base import Law


@dataclass
class EffectiveRatios:
    """Per run and target: ``p``, the law's effective ratio ``r`` and the observed ``r̂``.

    Attributes:
        run: ``(n,)`` run ids; ``targets``: the ``T`` targets.
        tokens: ``(n,)`` budgets.
        p: ``(n, T)`` each target's own proportion.
        law: ``(n, T)`` the law's effective ratio ``r`` (``W(D) p`` when η = 1; unfloored).
        observed: ``(n, T)`` observed ``r̂`` (NaN where undefined).
        undefined: ``(n, T)`` measured losses at/below the law's floor (``r̂`` undefined).
    """

    run: list[str]
    targets: list[str]
    tokens: np.ndarray
    p: np.ndarray
    law: np.ndarray
    observed: np.ndarray
    undefined: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        """Long format: one row per (run, target) with ``p``, ``r_law``, ``r_observed``."""
        n, t = self.p.shape
        return pd.DataFrame(
            {
                "run": np.repeat(np.array(self.run, dtype=object), t),
                "tokens": np.repeat(self.tokens, t),
                "target": np.tile(np.array(self.targets, dtype=object), n),
                "p": self.p.ravel(),
                "r_law": self.law.ravel(),
                "r_observed": self.observed.ravel(),
            }
        )

    def to_json(self) -> dict[str, Any]:
        frame = self.to_frame()
        recs = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
        return {"targets": self.targets, "ratios": recs, "undefined": int(self.undefined.sum())}

    def summary(self) -> pd.DataFrame:
        """Per target: mean ``p``, mean ``r_law``, mean/median ``r̂``, and how many are undefined."""
        rows = []
        for k, t in enumerate(self.targets):
            obs = self.observed[:, k]
            rows.append(
                {
                    "target": t,
                    "mean_p": float(np.mean(self.p[:, k])),
                    "mean_r_law": float(np.mean(self.law[:, k])),
                    "mean_r_observed": float(np.nanmean(obs)) if np.isfinite(obs).any() else np.nan,
                    "median_r_observed": float(np.nanmedian(obs))
                    if np.isfinite(obs).any()
                    else np.nan,
                    "undefined": int(self.undefined[:, k].sum()),
                }
            )
        return pd.DataFrame(rows)


def observed_effective_ratios(law: Law, runs: RunTable) -> EffectiveRatios:
    """``r̂`` for every run and law target the runs measure (see the module docstring)."""
    if not getattr(law, "has_effective_ratio", False):
        raise ClimbError(
            f"effective ratios need a law of the climb family (climb, climb-msl, isolated); "
            f"got '{law.name}'"
        )
    law._check_fitted()
    targets = [t for t in law.targets_ if t in runs.targets]
    if not targets:
        raise ClimbError(f"the runs measure none of the law's targets ({', '.join(law.targets_)})")
    tk = np.array([law.targets_.index(t) for t in targets])
    missing = [s for s in law.sources_ if s not in runs.sources]
    if missing:
        raise ClimbError(f"the runs lack mixture source(s) {', '.join(missing)} of the law")
    p_all = runs.p[:, [runs.sources.index(s) for s in law.sources_]]
    obs = np.full((len(runs), len(law.targets_)), np.nan)
    obs[:, tk] = runs.loss[:, [runs.targets.index(t) for t in targets]]
    d = runs.tokens
    r_law = law.effective_ratio(p_all, d)[:, tk]
    own_p = np.column_stack(
        [p_all[:, law.sources_.index(t)] if t in law.sources_ else np.zeros(len(runs))
         for t in targets]
    )  # fmt: skip
    r_obs = law.ratio_from_loss(obs, d, runs.params)[:, tk]
    undefined = np.isfinite(obs[:, tk]) & ~np.isfinite(r_obs)
    r_obs = np.where(np.isfinite(r_obs), r_obs, np.nan)
    return EffectiveRatios(
        run=list(runs.run), targets=targets, tokens=d.copy(), p=own_p, law=r_law,
        observed=r_obs, undefined=undefined,
    )  # fmt: skip


__all__ = ["EffectiveRatios", "observed_effective_ratios"]
