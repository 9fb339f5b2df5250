"""Random Climb laws for tests and benchmarks (positive and negative transfer)."""

from __future__ import annotations

from typing import Any

import numpy as np


def random_climb_json(
    n_sources: int,
    seed: int = 0,
    *,
    transfer: tuple[float, float] = (-0.05, 0.25),
    n_donors: int = 0,
    tokens_ref: float = 1e9,
    kappa: float = 0.05,
    model_size: bool = False,
    B_range: tuple[float, float] = (50.0, 800.0),
    beta_range: tuple[float, float] = (0.2, 0.45),
) -> dict[str, Any]:
    """A climb law JSON object with ``n_sources`` sources (the last ``n_donors`` have no loss).

    ``W_ij ~ U(transfer)`` off the own column; ``E ~ U(1.5, 3)``, ``B ~ U(B_range)``,
    ``β ~ U(beta_range)``, ``κ ~ U(0, kappa)``. Narrow ranges and weak positive transfer give
    interior optima (every source > 0).
    """
    rng = np.random.default_rng(seed)
    sources = [f"s{k:03d}" for k in range(n_sources)]
    targets = sources[: n_sources - n_donors]
    T = len(targets)
    W = rng.uniform(transfer[0], transfer[1], size=(T, n_sources))
    W[np.arange(T), np.arange(T)] = 1.0
    params: dict[str, Any] = {
        "E": rng.uniform(1.5, 3.0, T).tolist(),
        "B": rng.uniform(B_range[0], B_range[1], T).tolist(),
        "beta": rng.uniform(beta_range[0], beta_range[1], T).tolist(),
        "W": W.tolist(),
        "kappa": rng.uniform(0.0, kappa, T).tolist(),
        "tokens_ref": tokens_ref,
    }
    if model_size:
        params["A"] = rng.uniform(100.0, 400.0, T).tolist()
        params["alpha"] = rng.uniform(0.25, 0.4, T).tolist()
    return {"law": "climb", "sources": sources, "targets": targets, "params": params}
