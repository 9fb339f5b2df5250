"""MSL: the multilingual scaling law of He et al. 2024 (CLIMB.md §3, baseline ``msl``).

"Scaling Laws for Multilingual Language Models" (He et al., 2024) model the loss of language
(family) ``i`` as a Chinchilla term scaled by a power of the language's *own* sampling ratio:

    L_i(p, D, N) = (E_i + A_i · N^(-α_i) + B_i · D^(-β_i)) · p̃_i^(-γ_i)

where ``p̃_i = p_i``, or, when language families are given, the total share of the family of
``i`` (``p̃_i = Σ_{j ∈ fam(i)} p_j``; He et al. show the loss of a family depends on its own share
only). No other source enters: this is the "no cross-family interaction" baseline.

Implementation choices (documented, not from the paper):

- Sizes and budgets are normalized, ``N / N_ref`` and ``D / D_ref`` (geometric means of the fitted
  runs' values, stored as ``params_ref`` and ``tokens_ref``), so ``A_i`` and ``B_i`` are losses.
- The size term is fitted only when the runs span ≥ 2 model sizes, the token term only when they
  span ≥ 2 budgets; otherwise the term is folded into ``E_i`` (``A_i = 0`` / ``B_i = 0``) and the
  law predicts the same base loss at every size / budget.
- ``p̃_i = 0`` would make the loss infinite: the share is floored at ``p_floor`` (default
  ``1e-3``, the rounding step of the public RegMix mixtures), ``p̃_i ← max(p̃_i, p_floor)``. The
  fit warns (:class:`~climb.errors.ClimbWarning`) when a target has runs where the floor binds.
- Fit per target on its measured runs (NaN loss = not measured, dropped): Huber loss on
  ``log L_pred − log L_obs`` (δ = ``huber_delta``), bounded trust-region least squares from
  several starts (the first from the closed-form log-linear fit ``log L = log C − γ log p̃``),
  with :mod:`climb.laws.fitting`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np

from climb.data.runs import RunTable
from climb.errors import ClimbError, ClimbWarning
from climb.laws.base import Diagnostics, Law, json_array
from climb.laws.climb.support import SupportProfile
from climb.laws.fitting import (
    HUBER_DELTA,
    FitResult,
    fit_diagnostics,
    fit_log_huber,
    fit_per_target,
    measured,
    target_seed,
)
from climb.laws.supported import SUPPORT_DEFAULTS, SupportedLaw

P_FLOOR = 1e-3
"""Default floor of the share ``p̃_i`` (RegMix proportions are rounded to this step)."""


class MSLLaw(SupportedLaw, Law):
    """He et al. (2024) multilingual scaling law, ``L_i = (E_i + A_i N^-α_i + B_i D^-β_i) p̃_i^-γ_i``.

    Args:
        families: optional ``{source: family}``; a target's share becomes its family's total
            share. Sources not listed form their own family.
        p_floor: floor of the share ``p̃_i`` (``p̃_i = 0`` would give an infinite loss).
        huber_delta: δ of the Huber loss on log-loss residuals.
        n_starts: starts of the multi-start least squares (≥ 1).
        seed: seed of the random starts.
        n_jobs: parallel per-target fits (``1`` serial, ``-1`` every CPU).
        support, support_count, support_gate, support_trace, support_ceiling: the
            support-aware term for languages a run leaves out or holds at a trace share
            (:mod:`climb.laws.supported`;
            ``support=None``: none).

    Fitted attributes (arrays over ``targets_``): ``E_``, ``A_``, ``alpha_``, ``B_``, ``beta_``,
    ``gamma_``; ``tokens_ref_``, ``params_ref_`` (normalizers of ``D`` and ``N``); ``support_``;
    ``diagnostics_`` (per-target fit records, not saved).
    """

    name = "msl"

    def __init__(
        self,
        *,
        families: Mapping[str, str] | None = None,
        p_floor: float = P_FLOOR,
        huber_delta: float = HUBER_DELTA,
        n_starts: int = 4,
        seed: int = 0,
        n_jobs: int | None = 1,
        support: SupportProfile | None = SUPPORT_DEFAULTS["support"],
        support_count: float = SUPPORT_DEFAULTS["support_count"],
        support_gate: float = SUPPORT_DEFAULTS["support_gate"],
        support_trace: float | None = SUPPORT_DEFAULTS["support_trace"],
        support_ceiling: bool = SUPPORT_DEFAULTS["support_ceiling"],
    ) -> None:
        self.support = support
        self.support_count = support_count
        self.support_gate = support_gate
        self.support_trace = support_trace
        self.support_ceiling = support_ceiling
        self.families = dict(families) if families else None
        self.n_jobs = n_jobs
        self.p_floor = p_floor
        self.huber_delta = huber_delta
        self.n_starts = n_starts
        self.seed = seed

    # ------------------------------------------------------------------ fit
    def fit(self, runs: RunTable) -> Self:
        """Fit each target's ``(E, A, α, B, β, γ)`` on its measured runs; returns ``self``."""
        self._validate_hyper()
        _check_families(self.families, runs.sources, "msl law: option 'families'")
        if runs.eval_only:
            x = runs.eval_only[0]
            raise ClimbError(
                f"msl law: target '{x}' is evaluation-only (loss.{x} without p.{x}); MSL predicts "
                "a language from its own share only: drop the target (RunTable.select_targets) "
                "or use the climb law"
            )
        sources, targets = list(runs.sources), list(runs.targets)
        share = _family_share(runs.p, sources, targets, self.families)  # (n, T)
        fit_n = runs.params is not None and np.unique(runs.params).size >= 2
        fit_d = np.unique(runs.tokens).size >= 2
        tokens_ref = _geomean(runs.tokens)
        params_ref = _geomean(runs.params) if runs.params is not None else 1.0
        x_n = (runs.params / params_ref) if runs.params is not None else np.ones(len(runs))
        x_d = runs.tokens / tokens_ref

        t = len(targets)
        floored: list[str] = []
        for k, target in enumerate(targets):
            m = measured(runs.loss[:, k])
            if m.sum() < 2:
                raise ClimbError(
                    f"msl law: target '{target}' has {int(m.sum())} measured run(s); need ≥ 2"
                )
            n_zero = int((share[m, k] < self.p_floor).sum())
            if n_zero:
                floored.append(f"{target} ({n_zero} runs)")

        def fit_one(k: int) -> tuple[tuple[float, ...], FitResult]:
            m = measured(runs.loss[:, k])
            log_s = np.log(np.maximum(share[m, k], self.p_floor))
            rng = np.random.default_rng(target_seed(self.seed, k))
            return _fit_target(runs.loss[m, k], log_s, x_n[m], x_d[m], fit_n, fit_d,
                               self.huber_delta, self.n_starts, rng)  # fmt: skip

        fits = fit_per_target(fit_one, t, n_jobs=self.n_jobs)
        E, A, alpha, B, beta, gamma = (np.array([f[0][j] for f in fits]) for j in range(6))
        self.diagnostics_ = fit_diagnostics(targets, runs.loss, [f[1] for f in fits])
        if floored:
            warnings.warn(
                f"msl law: target(s) with runs where their share p_i is 0 or below "
                f"p_floor={self.p_floor:g} (floored there): {', '.join(floored)}",
                ClimbWarning,
                stacklevel=2,
            )
        self.E_, self.A_, self.alpha_, self.B_, self.beta_, self.gamma_ = (
            E,
            A,
            alpha,
            B,
            beta,
            gamma,
        )
        self.tokens_ref_, self.params_ref_ = float(tokens_ref), float(params_ref)
        self.sources_, self.targets_ = sources, targets
        self._fit_support(runs, self._plain(runs.p, runs.tokens, runs.params))
        return self

    def _validate_hyper(self) -> None:
        _check_hyper(self.p_floor, self.huber_delta, self.n_starts)
        self._check_support()
        if self.families is not None and not (
            isinstance(self.families, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in self.families.items())
        ):
            raise ClimbError("msl law: option 'families' must be a mapping {source: family}")

    # ------------------------------------------------------------------ predict
    def base_loss(self, tokens: np.ndarray, params: np.ndarray | None) -> np.ndarray:
        """``E_i + A_i (N/N_ref)^(-α_i) + B_i (D/D_ref)^(-β_i)``, shape ``(n, T)``."""
        n = tokens.shape[0]
        out = np.broadcast_to(self.E_, (n, self.E_.size)).copy()
        if self.A_.any():
            if params is None:
                raise ClimbError("msl law: it models model size; give params (N) to predict")
            out += self.A_ * (params[:, None] / self.params_ref_) ** (-self.alpha_)
        if self.B_.any():
            out += self.B_ * (tokens[:, None] / self.tokens_ref_) ** (-self.beta_)
        return out

    def share(self, p: np.ndarray) -> np.ndarray:
        """``p̃``: each target's (family) share, floored at ``p_floor``; ``(n, T)``."""
        raw = _family_share(p, self.sources_, self.targets_, self.families)
        return np.maximum(raw, self.p_floor)

    def _plain(self, p: np.ndarray, tokens: np.ndarray, params: np.ndarray | None) -> np.ndarray:
        """``(E_i + A_i N^-α_i + B_i D^-β_i) p̃_i^-γ_i``."""
        return self.base_loss(tokens, params) * self.share(p) ** (-self.gamma_)

    def _predict(self, p: np.ndarray, tokens: np.ndarray, params: np.ndarray | None) -> np.ndarray:
        return self._supported(self._plain(p, tokens, params), p, tokens)

    # ------------------------------------------------------------------ JSON
    def _params_json(self) -> dict[str, Any]:
        return {
            "E": self.E_.tolist(),
            "A": self.A_.tolist(),
            "alpha": self.alpha_.tolist(),
            "B": self.B_.tolist(),
            "beta": self.beta_.tolist(),
            "gamma": self.gamma_.tolist(),
            "tokens_ref": self.tokens_ref_,
            "params_ref": self.params_ref_,
            "p_floor": float(self.p_floor),
            "families": dict(self.families) if self.families else None,
            **self._support_json(self.sources_, self.targets_),
        }

    @classmethod
    def _from_params_json(
        cls, sources: list[str], targets: list[str], params: dict[str, Any]
    ) -> Self:
        if any(x not in sources for x in targets):
            raise ClimbError("law JSON (msl): MSL cannot have evaluation-only targets")
        t = (len(targets),)
        arr = {
            k: json_array(params, k, t, "msl") for k in ("E", "A", "alpha", "B", "beta", "gamma")
        }
        if (arr["A"] < 0).any() or (arr["B"] < 0).any() or (arr["E"] < 0).any():
            raise ClimbError("law JSON (msl): 'E', 'A' and 'B' must be ≥ 0")
        refs = {k: _json_positive(params, k) for k in ("tokens_ref", "params_ref", "p_floor")}
        if refs["p_floor"] >= 1:
            raise ClimbError("law JSON (msl): 'p_floor' must be in (0, 1)")
        families = params.get("families")
        if families is not None:
            if not isinstance(families, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in families.items()
            ):
                raise ClimbError("law JSON (msl): 'families' must be an object {source: family}")
            _check_families(families, sources, "law JSON (msl): 'families'")
        law = cls(families=families, p_floor=refs["p_floor"])
        law.diagnostics_ = Diagnostics()
        law.E_, law.A_, law.alpha_ = arr["E"], arr["A"], arr["alpha"]
        law.B_, law.beta_, law.gamma_ = arr["B"], arr["beta"], arr["gamma"]
        law.tokens_ref_, law.params_ref_ = refs["tokens_ref"], refs["params_ref"]
        law._load_support(params, sources, targets)
        law.sources_, law.targets_ = list(sources), list(targets)
        return law


# ---------------------------------------------------------------------- per-target fit
def _fit_target(
    y: np.ndarray,
    log_s: np.ndarray,
    x_n: np.ndarray,
    x_d: np.ndarray,
    fit_n: bool,
    fit_d: bool,
    delta: float,
    n_starts: int,
    rng: np.random.Generator,
) -> tuple[tuple[float, float, float, float, float, float], FitResult]:
    """Fit one target; returns ``(E, A, α, B, β, γ)`` and the fit's result.

    Free parameters ``θ = [E, (A, α), (B, β), γ]``;
    ``L_pred = (E + A x_N^-α + B x_D^-β) · exp(−γ log p̃)``.
    """
    # Closed-form start: log L = log C − γ log p̃ (least squares).
    design = np.column_stack([np.ones_like(log_s), -log_s])
    (log_c, gamma0), *_ = np.linalg.lstsq(design, np.log(y), rcond=None)
    c0 = float(np.exp(log_c))
    gamma0 = float(np.clip(gamma0, -0.9, 2.9))
    ln_xn, ln_xd = np.log(x_n), np.log(x_d)

    def unpack(th: np.ndarray) -> tuple[float, float, float, float, float, float]:
        i = 1
        a = al = b = be = 0.0
        if fit_n:
            a, al = th[i], th[i + 1]
            i += 2
        if fit_d:
            b, be = th[i], th[i + 1]
            i += 2
        return float(th[0]), float(a), float(al), float(b), float(be), float(th[i])

    def model(th: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        e, a, al, b, be, g = unpack(th)
        scale = np.exp(-g * log_s)  # p̃^-γ
        base = np.full_like(log_s, e)
        cols = [scale]
        if fit_n:
            pn = np.exp(-al * ln_xn)
            base = base + a * pn
            cols += [pn * scale, -a * pn * ln_xn * scale]
        if fit_d:
            pd_ = np.exp(-be * ln_xd)
            base = base + b * pd_
            cols += [pd_ * scale, -b * pd_ * ln_xd * scale]
        pred = base * scale
        cols.append(-pred * log_s)
        return pred, np.column_stack(cols)

    lo, hi = [1e-6], [np.inf]
    for flag in (fit_n, fit_d):
        if flag:
            lo += [0.0, 1e-3]
            hi += [np.inf, 3.0]
    lo.append(-1.0)
    hi.append(3.0)
    n_terms = int(fit_n) + int(fit_d)
    starts = []
    for k in range(max(1, n_starts) if n_terms else 1):
        frac = 1.0 if n_terms == 0 else (0.5 if k == 0 else float(rng.uniform(0.2, 0.9)))
        th = [c0 * frac]
        share_each = (1.0 - frac) * c0 / max(n_terms, 1)
        expo = 0.3 if k == 0 else float(rng.uniform(0.05, 0.8))
        for flag in (fit_n, fit_d):
            if flag:
                th += [share_each, expo]
        th.append(gamma0)
        starts.append(np.array(th))
    res = fit_log_huber(model, y, starts, np.array(lo), np.array(hi), delta=delta, max_nfev=500)
    return unpack(res.x), res


# ---------------------------------------------------------------------- helpers
def _family_share(
    p: np.ndarray, sources: list[str], targets: list[str], families: Mapping[str, str] | None
) -> np.ndarray:
    """``p̃_i``: the target's own share, or the summed share of its family; ``(n, T)``."""
    if not families:
        return p[:, [sources.index(t) for t in targets]]
    fam = [families.get(s, f"\0{s}") for s in sources]
    member = np.array(
        [[fam[j] == fam[sources.index(t)] for j in range(len(sources))] for t in targets]
    )
    return p @ member.T.astype(float)


def _check_families(families: Mapping[str, str] | None, sources: Sequence[str], where: str) -> None:
    if not families:
        return
    unknown = [s for s in families if s not in sources]
    if unknown:
        raise ClimbError(
            f"{where}: source '{unknown[0]}' is not a mixture source "
            f"(sources: {', '.join(sources)})"
        )


def _check_hyper(p_floor: float, delta: float, n_starts: int) -> None:
    def number(v: object) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and bool(np.isfinite(v))

    if not (number(p_floor) and 0 < p_floor < 1):
        raise ClimbError(f"option 'p_floor' is {p_floor!r}; give a number in (0, 1), e.g. 1e-3")
    if not (number(delta) and delta > 0):
        raise ClimbError(f"option 'huber_delta' is {delta!r}; give a positive number, e.g. 1e-3")
    if not (isinstance(n_starts, int) and n_starts >= 1):
        raise ClimbError(f"option 'n_starts' is {n_starts!r}; give an integer ≥ 1")


def _geomean(x: np.ndarray | None) -> float:
    if x is None:
        return 1.0
    return float(np.exp(np.mean(np.log(x))))


def _json_positive(params: dict[str, Any], key: str) -> float:
    v = params.get(key)
    if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v) or v <= 0:
        raise ClimbError(f"law JSON (msl): '{key}' must be a positive number")
    return float(v)
