"""The constraints of an allocation (CLIMB.md §4): one validated object, by source name.

    from climb.allocation import Constraints, allocate
    c = Constraints(bounds={"en": (None, 0.5)}, unique_tokens={"en": 5e11, ...}, max_epochs=4,
                    weights={"de": 2.0})
    allocate("law.json", 1e12, constraints=c)

A ``Constraints`` is checked once, on its own, when it is made (values in range, lower bounds
summing to at most 1, ``max_epochs`` only with unique tokens), and against a law's sources and
targets at a budget ``D*`` when a problem is compiled (:meth:`Constraints.resolve`: names, caps
against lower bounds, room for a mixture). The allocator, its baselines and the bootstrap all take
this one object.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from climb.errors import ClimbError

BOUND_TOL = 1e-12
"""Proportions within this of a bound count as at the bound."""

DEFAULT_MAX_EPOCHS = 4.0
"""Epoch cap used when unique tokens are given without ``max_epochs`` (Muennighoff et al. 2023)."""


class Resolved(NamedTuple):
    """Constraints as arrays over a law's ``S`` sources and ``T`` targets at one budget ``D*``."""

    lo: np.ndarray  # (S,) lower bounds
    hi: np.ndarray  # (S,) upper bounds with the caps folded in: min(hi, e_max U / D*)
    caps: np.ndarray  # (S,) e_max U / D* (inf where no cap)
    unique_tokens: np.ndarray | None  # (S,) U, or None
    weights: np.ndarray  # (T,) ω


@dataclass(frozen=True)
class Constraints:
    """What an allocation must respect, by source name.

    Attributes:
        bounds: ``{source: (lo, hi)}`` on its proportion, each side in ``[0, 1]`` or ``None``
            (no bound: 0 / 1).
        unique_tokens: ``{source: U}`` unique tokens of every law source, or ``None``: the data
            caps ``p_k D* ≤ e_max U_k``.
        max_epochs: ``e_max``; with ``unique_tokens`` it defaults to :data:`DEFAULT_MAX_EPOCHS`,
            without them it must stay ``None``.
        weights: ``{target: ω}`` with ``ω ≥ 0`` (default 1 per target, evaluation-only targets
            included; a pure donor takes 0 only).
    """

    bounds: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    unique_tokens: Mapping[str, float] | None = None
    max_epochs: float | None = None
    weights: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "bounds", _check_bounds(self.bounds))
        set_(self, "weights", _check_values(self.weights, "weights", "weight"))
        if self.unique_tokens is not None:
            set_(self, "unique_tokens", _check_values(self.unique_tokens, "unique_tokens", "count"))
            e_max = DEFAULT_MAX_EPOCHS if self.max_epochs is None else _number(self.max_epochs)
            if e_max is None or not e_max > 0:
                raise ClimbError(f"max_epochs must be a positive number, got {self.max_epochs!r}")
            set_(self, "max_epochs", e_max)
        elif self.max_epochs is not None:
            raise ClimbError("max_epochs needs unique_tokens (the unique tokens of each source)")

    def resolve(self, sources: list[str], targets: list[str], tokens: float) -> Resolved:
        """The arrays of a law with these ``sources`` and ``targets`` at budget ``tokens``.

        Raises ClimbError: a name the law does not have, unique tokens that do not cover its
        sources, a donor with a positive weight, no positive weight, a lower bound above its data
        cap, or bounds and caps that leave no mixture summing to 1."""
        lo, hi = self._bound_arrays(sources)
        caps = np.full(len(sources), np.inf)
        U = None
        if self.unique_tokens is not None:
            U = self._unique_array(sources)
            caps = np.minimum(float(self.max_epochs or DEFAULT_MAX_EPOCHS) * U / tokens, 1.0)
        hi_capped = np.minimum(hi, caps)
        bad = lo > hi_capped + BOUND_TOL
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ClimbError(
                f"source '{sources[k]}': lower bound {lo[k]:g} exceeds its data cap "
                f"{caps[k]:.6g} ({self.max_epochs:g} epochs of its unique tokens at {tokens:g} "
                "tokens); lower the bound, raise max_epochs or add data"
            )
        hi_capped = np.maximum(hi_capped, lo)
        if hi_capped.sum() < 1.0 - 1e-12:
            what = "upper bounds and data caps" if np.isfinite(caps).any() else "upper bounds"
            raise ClimbError(
                f"infeasible: the {what} sum to {hi_capped.sum():.6g} < 1, so the proportions "
                "cannot sum to 1; raise max_epochs, lower tokens, add data or relax bounds"
            )
        return Resolved(lo, hi_capped, caps, U, self._weight_array(sources, targets))

    def to_dict(self) -> dict[str, Any]:
        """As given, for JSON (``bounds`` as ``[lo, hi]`` lists, ``null`` = no bound)."""
        return {
            "bounds": {s: list(b) for s, b in self.bounds.items()},
            "unique_tokens": None if self.unique_tokens is None else dict(self.unique_tokens),
            "max_epochs": self.max_epochs,
            "weights": dict(self.weights),
        }

    # ------------------------------------------------------------------ against a law
    def _bound_arrays(self, sources: list[str]) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = np.zeros(len(sources)), np.ones(len(sources))
        for name, (b_lo, b_hi) in self.bounds.items():
            k = _index(name, sources, "bounds")
            lo[k] = 0.0 if b_lo is None else b_lo
            hi[k] = 1.0 if b_hi is None else b_hi
        return lo, hi

    def _unique_array(self, sources: list[str]) -> np.ndarray:
        """The counts of the law's ``sources``; counts of other sources (a whole corpus' table,
        as ``climb corpus stats --unique-tokens-out`` writes it) are not used."""
        unique = self.unique_tokens or {}
        missing = [s for s in sources if s not in unique]
        if missing:
            raise ClimbError(
                f"unique_tokens: no count for law source(s) {', '.join(missing)}; give one for "
                "every source of the law"
            )
        return np.array([float(unique[s]) for s in sources])

    def _weight_array(self, sources: list[str], targets: list[str]) -> np.ndarray:
        w = np.ones(len(targets))
        for name, value in self.weights.items():
            if name not in targets:  # an evaluation-only target is a target, not a source
                _index(name, sources, "weights")
            if name in targets:
                w[targets.index(name)] = value
            elif value != 0.0:
                raise ClimbError(
                    f"weights: '{name}' is a pure donor (the law predicts no loss for it); "
                    "give it weight 0 or drop it"
                )
        if not (w > 0).any():
            raise ClimbError(
                "weights: every target has weight 0; give at least one a positive weight"
            )
        return w


# ---------------------------------------------------------------------- checks on their own
def _number(x: Any) -> float | None:
    """``x`` as a finite float, else ``None``."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _check_bounds(
    bounds: Mapping[str, tuple[float | None, float | None]] | None,
) -> dict[str, tuple[float | None, float | None]]:
    out: dict[str, tuple[float | None, float | None]] = {}
    for name, pair in dict(bounds or {}).items():
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ClimbError(f"bounds: '{name}' must map to a pair (lo, hi), got {pair!r}")
        sides = tuple(None if b is None else _number(b) for b in pair)
        if any(s is None and b is not None for s, b in zip(sides, pair)):
            raise ClimbError(f"bounds: '{name}' has a bound that is not a finite number: {pair!r}")
        b_lo, b_hi = sides
        lo, hi = 0.0 if b_lo is None else b_lo, 1.0 if b_hi is None else b_hi
        if not (0.0 <= lo <= 1.0 and 0.0 <= hi <= 1.0):
            raise ClimbError(f"bounds: '{name}' bounds must lie in [0, 1], got {lo:g}:{hi:g}")
        if lo > hi:
            raise ClimbError(f"bounds: '{name}' has lower bound {lo:g} above upper bound {hi:g}")
        out[str(name)] = (b_lo, b_hi)
    low = sum(b[0] or 0.0 for b in out.values())
    if low > 1.0 + 1e-12:
        raise ClimbError(f"bounds: lower bounds sum to {low:.6g} > 1; no mixture can meet them")
    return out


def _check_values(values: Mapping[str, float] | None, what: str, noun: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in dict(values or {}).items():
        v = _number(value)
        if v is None or v < 0:
            raise ClimbError(f"{what}: '{name}' has {noun} {value!r}; it must be a number ≥ 0")
        out[str(name)] = v
    return out


def _index(name: str, sources: list[str], what: str) -> int:
    if name not in sources:
        raise ClimbError(
            f"{what}: unknown source '{name}'; the law's sources are: {', '.join(sources)}"
        )
    return sources.index(name)
