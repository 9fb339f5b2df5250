"""The allocation problem (CLIMB.md §4): objective, constraints and their validation.

For a Climb law at target budget ``D*`` and model size ``N*``::

    minimize   F(p) = Σ_i ω_i · L_i(p, D*, N*)
             = Σ_i ω_i (E_i + A_i N*^(-α_i)) + Σ_i c_i · r_i^(-β_i),   c_i = ω_i B_i D*^(-δ_i)
    subject to Σ_k p_k = 1,  lo_k ≤ p_k ≤ hi_k,  p_k D* ≤ e_max U_k (caps)
    with       r_i = p_i + Σ_{j≠i} W(D*)_ij φ_{η_i}(p_j),   φ_η(p) = (p + ε)^η − ε^η

(``δ_i = β_i`` unless the law was fitted with ``budget_exponent="free"``; ``r = W(D*) p`` when
every ``η_i = 1``, the linear law; ``r``, its Jacobian and curvature are
computed by :class:`climb.laws.climb.ratio.RatioMap`.)

Evaluation-only targets (a loss the law predicts for a language that is not a mixture source:
``r_i = Σ_j W(D*)_ij φ_{η_i}(p_j)``, no own share) are never given a share — they are not
sources — but a positive weight makes them pull the mixture toward their donors.

Caps are folded into the upper bounds (``hi_k ← min(hi_k, e_max U_k / D*)``). Only *active*
targets (``ω_i > 0`` and ``B_i > 0``) enter the objective; every source without an active target
(a pure donor, or a zero-weight target) still moves the others' effective ratios through ``W``.
The objective is convex on ``{r_i > 0 for active i}``; the allocators keep ``r_i ≥ R_FLOOR`` there
(the Climb law floors ``r`` at ``R_FLOOR``, below which it is no longer convex).

With transfer saturation (``η_i < 1``) and ``W_ij ≥ 0`` off the own column, ``r`` is concave in
``p`` and ``F`` stays convex (a convex decreasing function of a concave map); a negative transfer
weight into a target with ``η_i < 1`` makes ``r_i`` non-concave, and the problem may be
non-convex (:attr:`AllocationProblem.convex`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from climb.allocation.constraints import Constraints
from climb.data.userfiles import read_yaml
from climb.errors import ClimbError
from climb.laws.climb import ClimbParams
from climb.laws.climb.ratio import R_FLOOR, RatioMap
from climb.laws.climb.repetition import RepeatedRatioMap


@dataclass(frozen=True, eq=False)
class AllocationProblem:
    """A Climb law compiled at ``(D*, N*)`` with weights, bounds and caps.

    Attributes:
        sources: the ``S`` mixture sources (columns of ``p``).
        targets: the ``T`` sources with a loss (rows of ``W``).
        params: the Climb law parameters.
        tokens: the target budget ``D*``; ``model_params``: ``N*`` (or ``None``).
        weights: ``(T,)`` ``ω_i ≥ 0``.
        lo, hi: ``(S,)`` bounds, caps already folded into ``hi``.
        caps: ``(S,)`` the cap part of ``hi`` (``inf`` where none), for reporting.
        W: ``(T, S)`` ``W(D*)``.
        coef: ``(T,)`` ``c_i = ω_i B_i D*^(-δ_i)`` (δ = β unless fitted free); ``beta``: ``(T,)``; ``base``: ``(T,)``.
        constraints: the :class:`~climb.allocation.constraints.Constraints` the arrays come from.
    """

    sources: list[str]
    targets: list[str]
    params: ClimbParams
    tokens: float
    model_params: float | None
    weights: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    caps: np.ndarray
    unique_tokens: np.ndarray | None
    max_epochs: float | None
    constraints: Constraints = field(default_factory=Constraints)

    # ------------------------------------------------------------------ derived arrays
    @property
    def W(self) -> np.ndarray:
        return self._cache("W", lambda: self.params.W_at(self.tokens))

    @property
    def beta(self) -> np.ndarray:
        return self.params.beta

    @property
    def linear(self) -> bool:
        """``True`` for the linear law ``r = W(D*) p`` (no transfer saturation)."""
        return self.params.linear and not self.repeated

    @property
    def repeated(self) -> bool:
        """Whether the law's effective data counts repeated epochs at ``D*`` (some ``U_j < D*``):
        ``r`` is then a function of ``p̃_j = S(p_j D*; U_j) / D*`` (``RepeatedRatioMap``)."""
        U = self.params.unique_tokens
        return U is not None and bool((self.tokens > U).any())

    @property
    def ratio_map(self) -> RatioMap:
        """``r(p)`` of every target with its derivatives (:class:`RatioMap`)."""
        P = self.params
        if self.repeated:
            return self._cache("ratio_map", lambda: RepeatedRatioMap(
                self.W, P.own, P.eta, np.asarray(P.unique_tokens), P.lam, self.tokens))  # fmt: skip
        return self._cache("ratio_map", lambda: RatioMap(self.W, P.own, P.eta))

    @property
    def convex(self) -> bool:
        """Whether ``F`` is provably convex: every weighted target with ``η_i < 1`` has
        ``W(D*)_ij ≥ 0`` off its own column (then ``r_i`` is concave). Linear laws always are."""
        if self.linear:
            return True
        rm = self.ratio_map
        # with repetition p̃ is concave: every row with a negative weight is non-concave
        sat = self.active & ((rm.eta[:, 0] < 1.0) | self.repeated)
        return not bool((rm.Wt[sat] < 0).any())

    @property
    def coef(self) -> np.ndarray:
        return self._cache("coef", lambda: self.weights * self.params.data_coef(self.tokens))

    @property
    def base(self) -> np.ndarray:
        """``E_i + A_i N*^(-α_i)``."""
        return self._cache(
            "base", lambda: np.asarray(self.params.base_loss(self.model_params), dtype=float)
        )

    @property
    def active(self) -> np.ndarray:
        """Targets in the objective: ``ω_i > 0`` and ``B_i > 0``."""
        return self._cache("active", lambda: self.coef > 0)

    def _cache(self, key: str, make: Any) -> Any:
        store = self.__dict__.setdefault("_store", {})
        if key not in store:
            store[key] = make()
        return store[key]

    @property
    def n_sources(self) -> int:
        return len(self.sources)

    @property
    def eval_only(self) -> list[str]:
        """Targets that are not sources: predicted from transfer, never given a share."""
        return [t for t in self.targets if t not in self.sources]

    # ------------------------------------------------------------------ evaluation
    def effective_ratio(self, p: np.ndarray) -> np.ndarray:
        """``r_i = p_i + Σ_{j≠i} W(D*)_ij φ_{η_i}(p_j)`` (``= W(D*) p`` for the linear law),
        unfloored."""
        return self.ratio_map(np.asarray(p, dtype=float))

    def ratio_jacobian(self, p: np.ndarray) -> np.ndarray:
        """``J = ∂r/∂p`` at ``p``: ``(T, S)``, ``W(D*)`` for the linear law."""
        return self.ratio_map.jacobian(np.asarray(p, dtype=float))

    def predicted_loss(self, p: np.ndarray) -> np.ndarray:
        """``L_i(p, D*, N*)`` for every target (the law's own floor at ``R_FLOOR``), with the
        law's support-aware term for a target left at ``p_i = 0`` (``climb.laws.climb.support``)."""
        r = self.effective_ratio(p)
        loss = np.asarray(
            self.params.loss_from_ratio(r, self.tokens, self.model_params), dtype=float
        )
        if self.params.support is None:
            return loss
        return np.asarray(self.params.support.apply(loss[None], p[None], self.tokens)[0])

    def objective_sum(self, p: np.ndarray) -> float:
        """``F(p) = Σ_i ω_i L_i(p)``."""
        return float(self.weights @ self.predicted_loss(p))

    def normalizer(self) -> np.ndarray:
        """``c_i`` of the ``worst`` objective: the excess loss ``L_i − E_i`` of a monolingual run
        of the whole budget (``r_i = 1``), so that ``t = 1`` means "as good as training on i alone"."""
        return self.base - self.params.E + self.params.data_coef(self.tokens)

    def objective_worst(self, p: np.ndarray) -> float:
        """``max_i ω_i (L_i − E_i) / c_i`` over targets with ``ω_i > 0``."""
        w = self.weights > 0
        if not w.any():
            return 0.0
        excess = self.predicted_loss(p) - self.params.E
        return float(np.max((self.weights * excess / self.normalizer())[w]))

    def objective(self, p: np.ndarray, kind: str) -> float:
        return self.objective_worst(p) if kind == "worst" else self.objective_sum(p)

    def marginal_benefit(self, p: np.ndarray) -> np.ndarray:
        """Per source ``G_k = Σ_i J_ik g_i(r_i) = −∂F/∂p_k`` (``J = ∂r/∂p``, ``= W`` for the linear
        law), with ``g_i(r) = −ω_i ∂L_i/∂r_i = ω_i β_i B_i D*^(-δ_i) r_i^(-β_i-1)`` (CLIMB.md §4)."""
        r = np.maximum(self.effective_ratio(p), R_FLOOR)
        g = np.where(self.active, self.beta * self.coef * r ** (-self.beta - 1.0), 0.0)
        return np.asarray(self.ratio_jacobian(p).T @ g, dtype=float)

    def kkt_residual(self, p: np.ndarray) -> tuple[float, float]:
        """Relative KKT residual of the ``sum`` objective and the marginal-benefit level ``λ``.

        Stationarity asks ``G_k = λ`` for free sources, ``G_k ≤ λ`` at a lower and ``G_k ≥ λ`` at an
        upper bound. With ``a = min G`` over free and upper-bound sources and ``b = max G`` over free
        and lower-bound sources, the best ``λ = (a + b) / 2`` leaves ``max(0, (b − a) / 2)``; it is
        reported relative to ``max |G|``.
        """
        G = self.marginal_benefit(p)
        at_lo = p <= self.lo + 1e-9
        at_hi = p >= self.hi - 1e-9
        free = ~at_lo & ~at_hi
        up = free | (at_hi & ~at_lo)
        down = free | (at_lo & ~at_hi)
        a = float(G[up].min()) if up.any() else np.inf
        b = float(G[down].max()) if down.any() else -np.inf
        scale = max(float(np.abs(G).max()), 1e-300)
        if not np.isfinite(a) or not np.isfinite(b):
            lam = b if np.isfinite(b) else (a if np.isfinite(a) else 0.0)
            return 0.0, lam
        return max(0.0, (b - a) / 2.0) / scale, (a + b) / 2.0


# ---------------------------------------------------------------------- building a problem
def build_problem(
    params: ClimbParams,
    sources: list[str],
    targets: list[str],
    tokens: float,
    model_params: float | None = None,
    *,
    constraints: Constraints | None = None,
) -> AllocationProblem:
    """Compile the law at ``(D*, N*)`` under ``constraints`` (checked against the law's sources
    and targets by :meth:`Constraints.resolve`); one-line errors on bad input."""
    if not np.isfinite(tokens) or tokens <= 0:
        raise ClimbError(f"tokens must be a positive number of training tokens, got {tokens!r}")
    if model_params is not None and (not np.isfinite(model_params) or model_params <= 0):
        raise ClimbError(f"params must be a positive model size, got {model_params!r}")
    cons = Constraints() if constraints is None else constraints
    arr = cons.resolve(list(sources), list(targets), float(tokens))
    return AllocationProblem(
        sources=list(sources), targets=list(targets), params=params, tokens=float(tokens),
        model_params=None if model_params is None else float(model_params), weights=arr.weights,
        lo=arr.lo, hi=arr.hi, caps=arr.caps, unique_tokens=arr.unique_tokens,
        max_epochs=cons.max_epochs, constraints=cons,
    )  # fmt: skip


def with_identity_transfer(problem: AllocationProblem) -> AllocationProblem:
    """The same problem under the isolated law (``W = I``: no cross-lingual transfer)."""
    p = problem.params
    rows = np.flatnonzero(p.has_own)
    W = np.zeros_like(p.W)
    W[rows, p.own[rows]] = 1.0
    iso = ClimbParams(E=p.E, A=p.A, alpha=p.alpha, B=p.B, beta=p.beta, W=W, kappa=np.zeros_like(p.kappa),
                      tokens_ref=p.tokens_ref, own=p.own, delta=p.delta)  # fmt: skip
    out = with_params(problem, iso)
    if not p.has_own.all():  # evaluation-only targets: invisible without transfer
        object.__setattr__(out, "weights", np.where(p.has_own, problem.weights, 0.0))
    return out


def with_params(problem: AllocationProblem, params: ClimbParams) -> AllocationProblem:
    """The same constraints and weights under other law parameters (same sources and targets)."""
    return AllocationProblem(
        sources=problem.sources, targets=problem.targets, params=params, tokens=problem.tokens,
        model_params=problem.model_params, weights=problem.weights, lo=problem.lo, hi=problem.hi,
        caps=problem.caps, unique_tokens=problem.unique_tokens, max_epochs=problem.max_epochs,
        constraints=problem.constraints,
    )  # fmt: skip


def linearized(problem: AllocationProblem) -> AllocationProblem:
    """The same problem under the linear law ``r = W(D*) p`` (every ``η_i = 1``)."""
    return with_params(problem, replace(problem.params, eta=None))


def project_to_constraints(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Euclidean projection onto ``{Σ p = 1, lo ≤ p ≤ hi}``: ``p = clip(y − τ, lo, hi)`` with the
    shift ``τ`` found by bisection (``Σ clip(y − τ)`` is monotone in ``τ``)."""
    y = np.asarray(y, dtype=float)
    t_lo = float(np.min(y - hi)) - 1.0
    t_hi = float(np.max(y - lo)) + 1.0
    for _ in range(200):
        mid = 0.5 * (t_lo + t_hi)
        if np.clip(y - mid, lo, hi).sum() > 1.0:
            t_lo = mid
        else:
            t_hi = mid
        if t_hi - t_lo <= 1e-16 * max(1.0, abs(mid)):
            break
    p = np.clip(y - 0.5 * (t_lo + t_hi), lo, hi)
    # put the last rounding error on sources with room
    gap = 1.0 - p.sum()
    room = (hi - p) if gap > 0 else (p - lo)
    if abs(gap) > 0 and room.sum() > 0:
        p = p + gap * room / room.sum()
    return np.clip(p, lo, hi)


# ---------------------------------------------------------------------- input readers
def read_source_table(path: Path, option: str, columns: tuple[str, ...]) -> list[dict[str, str]]:
    """Rows of a per-source table file: CSV with ``columns``, or a YAML/JSON mapping source →
    value (or → ``[lo, hi]`` for three columns); errors start with ``option`` (what the file is)."""
    if not path.is_file():
        raise ClimbError(f"{option}: {path}: no such file")
    if path.suffix.lower() in (".yaml", ".yml", ".json"):
        obj = read_yaml(path, option)
        if not isinstance(obj, dict):
            raise ClimbError(f"{option}: {path}: expected a mapping source → value")
        if len(columns) == 2:
            return [{columns[0]: str(k), columns[1]: str(v)} for k, v in obj.items()]
        rows = []
        for k, v in obj.items():
            if not isinstance(v, list | tuple) or len(v) != 2:
                raise ClimbError(f"{option}: {path}: '{k}' must map to [lo, hi]")
            rows.append({columns[0]: str(k), columns[1]: str(v[0]), columns[2]: str(v[1])})
        return rows
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        fields = [f.strip() for f in (reader.fieldnames or [])]
        missing = [c for c in columns if c not in fields]
        if missing:
            raise ClimbError(
                f"{option}: {path}: missing column '{missing[0]}'; expected columns {','.join(columns)}"
            )
        return [
            {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
            for row in reader
        ]


def parse_number(value: str, where: str, empty_ok: bool = False) -> float | None:
    if value.strip() == "" and empty_ok:
        return None
    try:
        x = float(value)
    except ValueError:
        raise ClimbError(f"{where}: '{value}' is not a number") from None
    if not np.isfinite(x):
        raise ClimbError(f"{where}: '{value}' is not a finite number")
    return x


def read_unique_tokens(path: str | Path) -> dict[str, float]:
    """A ``source,tokens`` CSV (or a YAML/JSON mapping) of unique tokens per source."""
    path = Path(path)
    rows = read_source_table(path, "unique tokens", ("source", "tokens"))
    if not rows:
        raise ClimbError(f"unique tokens: {path}: no rows; expected one row per source")
    out: dict[str, float] = {}
    for i, row in enumerate(rows, start=2):
        name = row["source"]
        if name in out:
            raise ClimbError(f"unique tokens: {path}: row {i}: source '{name}' appears twice")
        x = parse_number(row["tokens"], f"unique tokens: {path}: row {i}, column 'tokens'")
        assert x is not None
        if x < 0:
            raise ClimbError(f"unique tokens: {path}: row {i}, column 'tokens': {x:g} must be ≥ 0")
        out[name] = x
    return out
