"""The estimators of the climb family: ``climb``, ``isolated`` and ``climb-msl``.

All three fit through :func:`climb.laws.climb.fit.fit_family` with a loss form
(:mod:`climb.laws.climb.forms`) and keep the effective ratio's parameters in a
:class:`~climb.laws.climb.params.ClimbParams`; ``r`` itself is computed by
:mod:`climb.laws.climb.ratio`. ``climb-msl`` is not a subclass of ``climb``: other modules ask a
law's capabilities (``allocatable``, ``has_effective_ratio``), never its class.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, Self

import numpy as np
from scipy.optimize import minimize_scalar

from climb.data.runs import RunTable
from climb.errors import ClimbError, ClimbWarning
from climb.laws.base import Diagnostics, Law, json_array
from climb.laws.climb.fit import (
    KAPPA_BOUND,
    BudgetExponent,
    FamilyFit,
    TargetDesign,
    TargetFit,
    Transfer,
    check_options,
    fit_family,
)
from climb.laws.climb.forms import ClimbForm, MSLForm
from climb.laws.climb.params import ClimbParams
from climb.laws.climb.ratio import R_FLOOR, RATIO_FLOOR
from climb.laws.climb.repetition import (
    LAMBDA_DEFAULT,
    LAMBDA_GRID,
    PROFILE_REFINE,
    effective_shares,
    parabola_vertex,
    repeats,
)
from climb.laws.climb.support import (
    SEEN_COUNT,
    TRACE_TOKENS,
    UNSEEN_GATE,
    SupportOptions,
    SupportProfile,
    SupportTerm,
    fit_support,
)
from climb.laws.fitting import HUBER_DELTA, Backend

FitFlag = bool | Literal["auto"]


def _ratio_params(
    runs: RunTable, designs: Sequence[TargetDesign], fits: Sequence[TargetFit], tokens_ref: float
) -> ClimbParams:
    """``ClimbParams`` with the fitted ``W`` and ``κ`` (the rest neutral)."""
    P = ClimbParams.isolated(list(runs.sources), list(runs.targets))
    P.tokens_ref = tokens_ref
    for i, (dz, f) in enumerate(zip(designs, fits)):
        P.W[i, dz.free] = f.w
        P.kappa[i] = f.kappa
    return P


def _warn_floored(name: str, floored: dict[str, int]) -> None:
    if floored:
        worst = max(floored, key=floored.__getitem__)
        warnings.warn(
            f"{name} law: the effective ratio r hit the floor {R_FLOOR:g} in "
            f"{sum(floored.values())} training run(s) (most for '{worst}': "
            f"{floored[worst]}); their predicted loss is capped",
            ClimbWarning,
            stacklevel=3,
        )


class ClimbLaw(SupportOptions, Law):
    """The Climb law (CLIMB.md §3), fitted per target from proxy runs.

        L_i(p, D, N) = E_i + A_i N^(-α_i) + B_i · (r_i D)^(-β_i),
        r_i = p_i + Σ_{j≠i} W(D)_ij φ_{η_i}(p_j),   φ_η(p) = (p + ε)^η − ε^η,
        W(D)_ij = W_ij (D / D_ref)^(-κ_i) (i ≠ j),  W_ii = 1.

    ``transfer="saturating"`` (default) fits the saturation ``η_i ∈ [0.2, 1]`` of transfer into
    each target jointly with its other parameters (fixed to 1 where no donor takes ≥ 3 distinct
    shares); ``transfer="linear"`` keeps ``η = 1``, i.e. ``r = W(D) p`` as described in the paper,
    and its JSON has no ``eta``. The saturating variant predicts held-out runs better on RegMix
    (5-fold CV on the training runs, all 13 targets; docs/laws.md, benchmarks/climb_variants.py).

    ``κ`` is fitted only when the runs span ≥ 2 token budgets and ``A N^(-α)`` only when they span
    ≥ 2 model sizes (``fit_kappa`` / ``fit_size`` = ``"auto"``). Each target is fitted
    independently: a two-stage init (isolated law inverted to effective ratios, linear regression
    of those on ``p``), then multi-start bounded least squares with a Huber loss (``huber_delta``)
    on ``log L_pred − log L_obs``. Deterministic for a given ``seed``.

    Hyper-parameters (keyword-only):
        seed: seeds the jittered starts.
        n_starts: starts per target (half from the init grid, half jittered around the best).
        huber_delta: Huber threshold δ on log-loss residuals.
        w_bounds: box for every transfer weight ``w_ij``.
        max_nfev: evaluations per start.
        n_jobs, backend: run the per-target fits in parallel (``fit_per_target``).
        fit_kappa, fit_size: ``"auto"``, True or False.
        w_penalty: shrinkage ``s`` of the transfer weights toward 0 (adds ``≈ δ·s·Σ_j |w_ij|`` to
            each target's Huber objective; 0 = none).
        kappa_bound: box ``|κ_i| ≤ kappa_bound`` of the budget sensitivity of transfer (default
            0.5: ``W(D)`` changes at most ≈ 3.2× per decade of tokens; see ``KAPPA_BOUND``).
        transfer: ``"saturating"`` (fit ``η``) or ``"linear"`` (``η = 1``).
        budget_exponent: ``"shared"`` (``B (r D)^(-β)``: the loss depends on the effective tokens
            ``r·D``, CLIMB.md §1) or ``"free"`` (``B r^(-β) D^(-δ)``, ``δ`` fitted where the runs
            span ≥ 2 token budgets; docs/method.md §3).
        support, support_count, support_gate, support_trace, support_ceiling: the support-aware
            term (:mod:`~climb.laws.climb.support`): a :class:`SupportProfile` of the corpus
            (None: no term), ``n0``, ``τ``, the trace gate's ``T_0`` in tokens (None: no trace
            gate) and whether the seen part is bounded by fitted ceilings ``C_i`` (False: by
            ``L_0``, as before).
        ratio_floor: ``ρ`` of the own-share floor of the predictions, ``r_i ≥ ρ p_i``: transfer
            can remove at most a fraction ``1 − ρ`` of a language's own data (default 0.1,
            ``RATIO_FLOOR``; 0: none, as before). It is not part of the fit (where ``r`` is
            floored at ``R_FLOOR``): it bounds predictions where a negative transfer weight that
            the runs do not identify would take ``r`` to the floor.

    Fitted attributes: ``params_`` (:class:`ClimbParams`), ``W_``, ``E_``, ``A_``, ``alpha_``,
    ``B_``, ``beta_``, ``kappa_``, ``eta_`` (all 1 when linear), ``tokens_ref_``,
    ``diagnostics_`` (per-target records; ``floored``: per target, training runs where ``r`` hit
    the floor; ``fit_info_`` and ``floored_`` are aliases).
    """

    name: ClassVar[str] = "climb"
    interactions: ClassVar[bool] = True
    allocatable: ClassVar[bool] = True
    has_effective_ratio: ClassVar[bool] = True
    params_: ClimbParams

    def __init__(
        self,
        *,
        seed: int | None = 0,
        n_starts: int = 2,
        huber_delta: float = HUBER_DELTA,
        w_bounds: tuple[float, float] = (-1.0, 5.0),
        max_nfev: int = 200,
        n_jobs: int | None = 1,
        backend: Backend = "thread",
        fit_kappa: FitFlag = "auto",
        fit_size: FitFlag = "auto",
        w_penalty: float = 0.0,
        kappa_bound: float = KAPPA_BOUND,
        transfer: Transfer = "saturating",
        budget_exponent: BudgetExponent = "shared",
        support: SupportProfile | None = None,
        support_count: float = SEEN_COUNT,
        support_gate: float = UNSEEN_GATE,
        support_trace: float | None = TRACE_TOKENS,
        support_ceiling: bool = True,
        ratio_floor: float = RATIO_FLOOR,
        unique_tokens: Mapping[str, float] | None = None,
        repetition: float | Literal["auto"] = "auto",
    ) -> None:
        self.seed = seed
        self.n_starts = n_starts
        self.huber_delta = huber_delta
        self.w_bounds = tuple(w_bounds)
        self.max_nfev = max_nfev
        self.n_jobs = n_jobs
        self.backend = backend
        self.fit_kappa = fit_kappa
        self.fit_size = fit_size
        self.w_penalty = w_penalty
        self.kappa_bound = kappa_bound
        self.transfer = transfer
        self.budget_exponent = budget_exponent
        self.support = support
        self.support_count = support_count
        self.support_gate = support_gate
        self.support_trace = support_trace
        self.support_ceiling = support_ceiling
        self.ratio_floor = ratio_floor
        self.unique_tokens = unique_tokens
        self.repetition = repetition

    # ------------------------------------------------------------------ fitting
    def fit(self, runs: RunTable) -> Self:
        self._validate_hyper()
        unique = self._unique(runs)
        if unique is None:
            res = fit_family(runs, self.get_params(), law=self.name,
                             interactions=self.interactions,
                             make_form=lambda setup: ClimbForm())  # fmt: skip
            lam = LAMBDA_DEFAULT
        else:
            res, lam = self._fit_repetition(runs, unique)
        self._store(runs, res)
        if unique is not None:
            self.params_.unique_tokens, self.params_.lam = unique, lam
        term = self._support_term(runs)
        if term is not None:  # then G(p, D) from the (row, target) pairs with unseen mass
            P = self.params_
            climb = P.loss_from_ratio(P.effective_ratio(runs.p, runs.tokens), runs.tokens,
                                      runs.params if P.A.any() else None)  # fmt: skip
            P.support = fit_support(term, climb, runs)
        return self

    def _unique(self, runs: RunTable) -> np.ndarray | None:
        """``U_j`` per source from ``unique_tokens`` (None: no repetition in the law)."""
        if self.unique_tokens is None:
            return None
        missing = [s for s in runs.sources if s not in self.unique_tokens]
        if missing:
            raise ClimbError(
                f"{self.name} law: unique_tokens has no count for source(s) {', '.join(missing)}"
            )
        unique = np.array([float(self.unique_tokens[s]) for s in runs.sources])
        if not (np.isfinite(unique) & (unique > 0)).all():
            raise ClimbError(f"{self.name} law: unique_tokens must be positive numbers")
        return unique

    def _fit_repetition(self, runs: RunTable, unique: np.ndarray) -> tuple[FamilyFit, float]:
        """Fit on the effective shares ``p̃ = S(pD; U)/D`` (:mod:`~climb.laws.climb.repetition`);
        ``λ`` profiled over :data:`LAMBDA_GRID` (least total cost), refined between the best grid
        point's neighbours (:data:`PROFILE_REFINE`), when ``repetition="auto"`` and the runs
        repeat data, else ``LAMBDA_DEFAULT`` or the given number."""
        if self.repetition != "auto":
            grid: tuple[float, ...] = (float(self.repetition),)
        elif repeats(runs.p, runs.tokens, unique):
            grid = LAMBDA_GRID
        else:
            grid = (LAMBDA_DEFAULT,)
        fits: dict[float, tuple[float, FamilyFit]] = {}

        def cost(log_lam: float) -> float:
            lam = float(np.exp(log_lam))
            shares = effective_shares(runs.p, runs.tokens, unique, lam)
            res = fit_family(dataclasses.replace(runs, p=shares), self.get_params(), law=self.name,
                             interactions=self.interactions,
                             make_form=lambda setup: ClimbForm())  # fmt: skip
            fits[lam] = (float(sum(f.cost for f in res.fits)), res)
            return fits[lam][0]

        costs = [cost(float(np.log(lam))) for lam in grid]
        k = int(np.argmin(costs))
        if len(grid) > 2 and PROFILE_REFINE == "brent":
            lo, hi = np.log(grid[max(k - 1, 0)]), np.log(grid[min(k + 1, len(grid) - 1)])
            minimize_scalar(cost, bounds=(lo, hi), method="bounded", options={"xatol": 0.02})
        elif len(grid) > 2 and 0 < k < len(grid) - 1:
            x = np.log(np.array(grid[k - 1 : k + 2]))
            vertex = parabola_vertex(x, np.array(costs[k - 1 : k + 2]))
            if vertex is not None and x[0] < vertex < x[2]:
                cost(vertex)
        lam = min(fits, key=lambda x: fits[x][0])
        return fits[lam][1], lam

    def _validate_hyper(self) -> None:
        check_options(self.name, self.get_params())
        self._check_support()
        rep = self.repetition
        if rep != "auto" and not (isinstance(rep, int | float) and 0 < rep < np.inf):
            raise ClimbError(f"{self.name} law: repetition must be 'auto' or λ > 0, got {rep!r}")
        if self.unique_tokens is not None and not isinstance(self.unique_tokens, Mapping):
            raise ClimbError(
                f"{self.name} law: unique_tokens must map each source to its unique tokens U"
            )

    def _store(self, runs: RunTable, res: FamilyFit) -> None:
        setup, designs, fits = res.setup, res.designs, res.fits
        P = _ratio_params(runs, designs, fits, setup.tokens_ref)
        P.tokens_range = setup.tokens_range
        for i, (dz, f) in enumerate(zip(designs, fits)):
            P.E[i] = f.E
            P.beta[i] = f.beta
            P.B[i] = f.b * setup.tokens_ref**f.delta  # b = B · D_ref^(-δ)
            P.alpha[i] = f.alpha if dz.fit_size else 0.0
            P.A[i] = f.a * setup.params_ref**f.alpha if dz.fit_size else 0.0  # a = A · N_ref^(-α)
        if self.interactions and self.transfer in ("saturating", "tokens"):
            P.eta = np.array([f.eta for f in fits], dtype=float)
        if setup.fit_delta:
            P.delta = np.array([f.delta for f in fits], dtype=float)
        P.ratio_floor = float(self.ratio_floor)
        self.params_ = P
        self.sources_ = list(runs.sources)
        self.targets_ = list(runs.targets)
        self.diagnostics_ = res.diagnostics()
        _warn_floored(self.name, self.diagnostics_.floored)

    # ------------------------------------------------------------------ prediction
    def _predict(self, p: np.ndarray, tokens: np.ndarray, params: np.ndarray | None) -> np.ndarray:
        P = self.params_
        if params is None and P.A.any():
            raise ClimbError(
                f"{self.name} law: it models model size (A ≠ 0); give the model size N (params)"
            )
        return P.loss(p, tokens, params)

    def effective_ratio(self, p: np.ndarray, tokens: np.ndarray | float) -> np.ndarray:
        """``r_i = p_i + Σ_{j≠i} W(D)_ij φ_{η_i}(p_j)`` (``= W(D) p`` when η = 1; CLIMB.md §3)
        over ``sources_`` → ``(n, T)``, unfloored."""
        self._check_fitted()
        return self.params_.effective_ratio(np.asarray(p, dtype=float), tokens)

    def ratio_from_loss(
        self, loss: np.ndarray, tokens: np.ndarray, params: np.ndarray | None
    ) -> np.ndarray:
        """``r̂_i = (1/D) [B_i / (L_i − E_i − A_i N^(-α_i))]^(1/β_i)`` (CLIMB.md §2)."""
        self._check_fitted()
        if self.params_.A.any() and params is None:
            raise ClimbError("the law models model size; the runs need a 'params' column")
        return self.params_.ratio_from_loss(loss, tokens, params)

    # fitted-parameter views (JSON layout)
    W_ = property(lambda self: self.params_.W)
    E_ = property(lambda self: self.params_.E)
    A_ = property(lambda self: self.params_.A)
    alpha_ = property(lambda self: self.params_.alpha)
    B_ = property(lambda self: self.params_.B)
    beta_ = property(lambda self: self.params_.beta)
    kappa_ = property(lambda self: self.params_.kappa)
    tokens_ref_ = property(lambda self: self.params_.tokens_ref)
    fit_info_ = property(lambda self: self.diagnostics_.targets)
    floored_ = property(lambda self: self.diagnostics_.floored)

    @property
    def eta_(self) -> np.ndarray:
        """Transfer saturation ``η`` per target (all 1 for a linear law)."""
        P = self.params_
        return np.ones(P.n_targets) if P.eta is None else P.eta

    # ------------------------------------------------------------------ serialization
    def _params_json(self) -> dict[str, Any]:
        out = self.params_.to_json()
        if self.params_.support is not None:
            out["support"] = self.params_.support.to_json(self.sources_, self.targets_)
        return out

    @classmethod
    def _from_params_json(
        cls, sources: list[str], targets: list[str], params: dict[str, Any]
    ) -> Self:
        law = cls()
        law.params_ = ClimbParams.from_json(sources, targets, params, law=cls.name)
        if "support" in params:
            law.params_.support = SupportTerm.from_json(
                params["support"], sources, targets, law.params_.own, cls.name
            )
        # what the parameters imply of the hyper-parameters (a JSON's "hyper" then sets them all)
        P = law.params_
        law.transfer = "linear" if P.eta is None else "saturating"
        law.budget_exponent = "shared" if P.delta is None else "free"
        law.ratio_floor = P.ratio_floor
        if P.unique_tokens is not None:
            law.unique_tokens = dict(zip(sources, P.unique_tokens.tolist()))
        law._restore_support(P.support, sources, targets)
        law.diagnostics_ = Diagnostics()
        return law


class IsolatedLaw(ClimbLaw):
    """The isolated baseline (CLIMB.md §1): the Climb law with ``W = I`` (no interactions),

        L_i = E_i + A_i N^(-α_i) + B_i · (p_i D)^(-β_i).

    A run where ``p_i = 0`` has ``r_i`` at the floor: the isolated law cannot explain loss on a
    language the run never trained on. Its JSON may omit ``W`` (identity); a given ``W`` must be
    the identity.
    """

    name: ClassVar[str] = "isolated"
    interactions: ClassVar[bool] = False

    @classmethod
    def _from_params_json(
        cls, sources: list[str], targets: list[str], params: dict[str, Any]
    ) -> Self:
        ident = ClimbParams.isolated(sources, targets).W
        params = dict(params)
        if "W" not in params:
            params["W"] = ident.tolist()
        if any(t not in sources for t in targets):
            raise ClimbError(
                "law JSON (isolated): the isolated law (no transfer) cannot have evaluation-only "
                "targets"
            )
        law = super()._from_params_json(sources, targets, params)
        if not np.allclose(law.params_.W, ident):
            raise ClimbError("law JSON (isolated): 'W' must be the identity (no interactions)")
        if law.params_.kappa.any():
            raise ClimbError("law JSON (isolated): 'kappa' must be 0 (no interactions)")
        return law


class ClimbMSLLaw(SupportOptions, Law):
    """``climb-msl``: He et al.'s multilingual scaling law with ``p_i`` replaced by ``r_i``,

        L_i(p, D, N) = (E_i + A_i N^(-α_i) + B_i D^(-β_i)) · r_i(p, D)^(-γ_i),

    ``r`` as in ``climb`` (CLIMB.md §3, variants). With one token budget ``B D^(-β)`` folds into
    ``E`` (saved as ``B = 0``); with one model size ``A = 0``; ``κ`` is fitted only with ≥ 2
    budgets; ``η`` as in the climb law (``transfer``). ``support`` adds the climb law's
    support-aware term for targets a mixture leaves out (:mod:`~climb.laws.climb.support`).

    Same hyper-parameters (keyword-only) and fitting recipe as :class:`ClimbLaw` (shared by
    composition: :func:`~climb.laws.climb.fit.fit_family` with :class:`MSLForm`). Fitted
    attributes: ``params_`` (:class:`ClimbParams` holding ``W``, ``kappa``, ``eta``,
    ``tokens_ref``: the effective ratio), ``coef_`` and its views ``E_, A_, alpha_, B_, beta_,
    gamma_`` (this law's own coefficients), ``diagnostics_``.

    JSON ``params``: ``E, A, alpha, B, beta, gamma`` (each ``[T]``), ``W`` (``[[T×S]]``, 1 at each
    target's own source), ``kappa`` (``[T]``), ``tokens_ref``, optional ``eta`` (``[T]``) and
    ``ratio_floor``.
    """

    name: ClassVar[str] = "climb-msl"
    has_effective_ratio: ClassVar[bool] = True
    params_: ClimbParams
    coef_: dict[str, np.ndarray]

    def __init__(
        self,
        *,
        seed: int | None = 0,
        n_starts: int = 2,
        huber_delta: float = HUBER_DELTA,
        w_bounds: tuple[float, float] = (-1.0, 5.0),
        max_nfev: int = 200,
        n_jobs: int | None = 1,
        backend: Backend = "thread",
        fit_kappa: FitFlag = "auto",
        fit_size: FitFlag = "auto",
        w_penalty: float = 0.0,
        kappa_bound: float = KAPPA_BOUND,
        transfer: Transfer = "saturating",
        support: SupportProfile | None = None,
        support_count: float = SEEN_COUNT,
        support_gate: float = UNSEEN_GATE,
        support_trace: float | None = TRACE_TOKENS,
        support_ceiling: bool = True,
        ratio_floor: float = RATIO_FLOOR,
    ) -> None:
        self.seed = seed
        self.n_starts = n_starts
        self.huber_delta = huber_delta
        self.w_bounds = tuple(w_bounds)
        self.max_nfev = max_nfev
        self.n_jobs = n_jobs
        self.backend = backend
        self.fit_kappa = fit_kappa
        self.fit_size = fit_size
        self.w_penalty = w_penalty
        self.kappa_bound = kappa_bound
        self.transfer = transfer
        self.support = support
        self.support_count = support_count
        self.support_gate = support_gate
        self.support_trace = support_trace
        self.support_ceiling = support_ceiling
        self.ratio_floor = ratio_floor

    def _validate_hyper(self) -> None:
        check_options(self.name, self.get_params())
        self._check_support()

    def fit(self, runs: RunTable) -> Self:
        res = fit_family(runs, self.get_params(), law=self.name, interactions=True,
                         make_form=lambda setup: MSLForm(setup.fit_tokens))  # fmt: skip
        setup, fits = res.setup, res.fits
        P = _ratio_params(runs, res.designs, fits, setup.tokens_ref)
        coef = {k: np.zeros(len(runs.targets)) for k in ("E", "A", "alpha", "B", "beta", "gamma")}
        for i, f in enumerate(fits):
            coef["E"][i] = f.E
            coef["gamma"][i] = f.gamma
            coef["B"][i] = f.b * setup.tokens_ref**f.beta
            coef["beta"][i] = f.beta
            coef["A"][i] = f.a * setup.params_ref**f.alpha
            coef["alpha"][i] = f.alpha
        if self.transfer == "saturating":
            P.eta = np.array([f.eta for f in fits], dtype=float)
        P.ratio_floor = float(self.ratio_floor)
        self.params_ = P
        self.coef_ = coef
        self.sources_ = list(runs.sources)
        self.targets_ = list(runs.targets)
        self.diagnostics_ = res.diagnostics()
        term = self._support_term(runs)
        if term is not None:  # then G(p, D) from the pairs with a gate
            plain = self._plain(runs.p, runs.tokens, runs.params if coef["A"].any() else None)
            P.support = fit_support(term, plain, runs)
        return self

    def _base(self, tokens: np.ndarray, params: np.ndarray | None) -> np.ndarray:
        """``E_i + A_i N^(-α_i) + B_i D^(-β_i)``, ``(n, T)``."""
        c = self.coef_
        if params is None and c["A"].any():
            raise ClimbError(
                f"{self.name} law: it models model size (A ≠ 0); give the model size N"
            )
        base = c["E"] + c["B"] * tokens[:, None] ** (-c["beta"])
        if params is not None and c["A"].any():
            base = base + c["A"] * params[:, None] ** (-c["alpha"])
        return np.asarray(base)

    def _plain(self, p: np.ndarray, tokens: np.ndarray, params: np.ndarray | None) -> np.ndarray:
        """The law without the support-aware term."""
        base = self._base(tokens, params)
        r = np.maximum(self.params_.effective_ratio(p, tokens), R_FLOOR)
        return np.asarray(base * r ** (-self.coef_["gamma"]))

    def _predict(self, p: np.ndarray, tokens: np.ndarray, params: np.ndarray | None) -> np.ndarray:
        out = self._plain(p, tokens, params)
        sup = self.params_.support
        return out if sup is None else np.asarray(sup.apply(out, p, tokens))

    def effective_ratio(self, p: np.ndarray, tokens: np.ndarray | float) -> np.ndarray:
        """``r`` as in the climb law over ``sources_`` → ``(n, T)``, unfloored."""
        self._check_fitted()
        return self.params_.effective_ratio(np.asarray(p, dtype=float), tokens)

    def ratio_from_loss(
        self, loss: np.ndarray, tokens: np.ndarray, params: np.ndarray | None
    ) -> np.ndarray:
        """``r̂_i = (L_i / (E_i + A_i N^(-α_i) + B_i D^(-β_i)))^(-1/γ_i)`` (NaN where ``γ_i = 0``)."""
        self._check_fitted()
        try:
            base = self._base(tokens, params)
        except ClimbError:
            raise ClimbError("the law models model size; the runs need a 'params' column") from None
        gamma = self.coef_["gamma"]
        with np.errstate(all="ignore"):
            r = (loss / base) ** (-1.0 / np.where(gamma > 0, gamma, np.nan))
        return np.where(np.isfinite(r), r, np.nan)

    E_ = property(lambda self: self.coef_["E"])
    A_ = property(lambda self: self.coef_["A"])
    alpha_ = property(lambda self: self.coef_["alpha"])
    B_ = property(lambda self: self.coef_["B"])
    beta_ = property(lambda self: self.coef_["beta"])
    gamma_ = property(lambda self: self.coef_["gamma"])
    W_ = property(lambda self: self.params_.W)
    kappa_ = property(lambda self: self.params_.kappa)
    tokens_ref_ = property(lambda self: self.params_.tokens_ref)
    fit_info_ = property(lambda self: self.diagnostics_.targets)
    floored_ = property(lambda self: self.diagnostics_.floored)

    @property
    def eta_(self) -> np.ndarray:
        """Transfer saturation ``η`` per target (all 1 for a linear law)."""
        P = self.params_
        return np.ones(P.n_targets) if P.eta is None else P.eta

    def _params_json(self) -> dict[str, Any]:
        out = {k: v.tolist() for k, v in self.coef_.items()}
        out["W"] = self.params_.W.tolist()
        out["kappa"] = self.params_.kappa.tolist()
        out["tokens_ref"] = float(self.params_.tokens_ref)
        if self.params_.eta is not None:
            out["eta"] = self.params_.eta.tolist()
        if self.params_.ratio_floor > 0:
            out["ratio_floor"] = float(self.params_.ratio_floor)
        if self.params_.support is not None:
            out["support"] = self.params_.support.to_json(self.sources_, self.targets_)
        return out

    @classmethod
    def _from_params_json(
        cls, sources: list[str], targets: list[str], params: dict[str, Any]
    ) -> Self:
        t = len(targets)
        law = cls()
        coef = {k: json_array(params, k, (t,), cls.name) for k in ("E", "gamma")}
        for k in ("A", "alpha", "B", "beta"):
            coef[k] = json_array(params, k, (t,), cls.name) if k in params else np.zeros(t)
        if (coef["E"] <= 0).any() or (coef["B"] < 0).any() or (coef["A"] < 0).any():
            raise ClimbError(f"law JSON ({cls.name}): 'E' must be > 0, 'A' and 'B' ≥ 0")
        if (coef["gamma"] < 0).any():
            raise ClimbError(f"law JSON ({cls.name}): 'gamma' must be ≥ 0")
        if "W" not in params:
            raise ClimbError(f"law JSON ({cls.name}): missing parameter 'W'")
        ratio = {"W": params["W"], "kappa": params.get("kappa", [0.0] * t),
                 "tokens_ref": params.get("tokens_ref", 1.0),
                 "E": [0.0] * t, "B": [1.0] * t, "beta": [1.0] * t}  # fmt: skip
        for k in ("eta", "ratio_floor"):
            if k in params:
                ratio[k] = params[k]
        law.params_ = ClimbParams.from_json(sources, targets, ratio, law=cls.name)
        if "support" in params:
            law.params_.support = SupportTerm.from_json(
                params["support"], sources, targets, law.params_.own, cls.name
            )
        law.transfer = "linear" if law.params_.eta is None else "saturating"
        law.ratio_floor = law.params_.ratio_floor
        law._restore_support(law.params_.support, sources, targets)
        law.coef_ = coef
        law.diagnostics_ = Diagnostics()
        return law


__all__ = ["ClimbLaw", "ClimbMSLLaw", "IsolatedLaw"]
