"""The climb family of laws: losses through the interaction-aware effective ratio (CLIMB.md §1–3).

    L_i(p, D, N) = E_i + A_i · N^(-α_i) + B_i · (r_i(p, D) · D)^(-β_i)          (climb)
    L_i(p, D, N) = (E_i + A_i N^(-α_i) + B_i D^(-β_i)) · r_i(p, D)^(-γ_i)        (climb-msl)
    r_i(p, D)    = p_i + Σ_{j≠i} W(D)_ij · φ_{η_i}(p_j),   W(D)_ij = W_ij · (D / D_ref)^(-κ_i)
    φ_η(p)       = (p + ε)^η − ε^η   (ε = 1e-6),   so φ_1(p) = p and r = W(D) p when η = 1

``W`` is ``T × S`` (targets × mixture sources); the entry of target ``i`` at its own source column
is fixed to 1. ``isolated`` is ``climb`` with ``W = I``. ``η_i ∈ (0, 1]`` is the *saturation* of
transfer into ``i``; ``η = 1`` is the linear effective ratio ``r = W(D) p`` of CLIMB.md §3 (the
JSON key ``eta`` may be omitted). The saturating variant was selected by 5-fold cross-validation
on the RegMix training runs (docs/laws.md, benchmarks/RESULTS.md).

Modules:

* :mod:`~climb.laws.climb.ratio` — ``φ_η``, ``r``, its Jacobian and curvature (the one place they
  are computed; the allocator uses it too);
* :mod:`~climb.laws.climb.params` — :class:`ClimbParams` and the JSON layout;
* :mod:`~climb.laws.climb.fit` — the per-target design, options, multi-start fit (shared by all
  three laws) and :mod:`~climb.laws.climb.forms` — each law's loss form of one target;
* :mod:`~climb.laws.climb.estimators` — :class:`ClimbLaw`, :class:`IsolatedLaw`,
  :class:`ClimbMSLLaw`.
"""

from __future__ import annotations

from climb.laws.climb.estimators import ClimbLaw, ClimbMSLLaw, IsolatedLaw
from climb.laws.climb.fit import TargetDesign
from climb.laws.climb.forms import climb_target_model, msl_target_model
from climb.laws.climb.params import ClimbParams
from climb.laws.climb.ratio import (
    R_FLOOR,
    TRANSFER_EPS,
    RatioMap,
    transfer,
    transfer_curvature,
    transfer_slope,
)

__all__ = [
    "R_FLOOR",
    "TRANSFER_EPS",
    "ClimbLaw",
    "ClimbMSLLaw",
    "ClimbParams",
    "IsolatedLaw",
    "RatioMap",
    "TargetDesign",
    "climb_target_model",
    "msl_target_model",
    "transfer",
    "transfer_curvature",
    "transfer_slope",
]
