"""Fitting a law of the climb family, one target at a time (CLIMB.md §3, "Fitting").

Shared by ``climb``, ``isolated`` and ``climb-msl`` by composition: what differs between them is
the *loss form* of one target (:mod:`climb.laws.climb.forms`: its model, bounds and initial
guesses); what is shared lives here:

* :class:`TargetDesign` — what one target's fit sees (its measured runs in normalized units,
  which transfer weights are identified), built by :func:`designs_from_runs` with warnings about
  what the runs cannot identify;
* :func:`true_budget_runs` — the rows a fit uses: true budgets only (a mid-schedule checkpoint
  overstates loss at its token count and would bias ``β`` and ``κ``);
* :func:`prepare_fit` — which scale terms the runs identify (κ: ≥ 2 token budgets; ``A N^(-α)``:
  ≥ 2 model sizes), the reference scales and the optimizer options (:class:`FitSetup`);
* :func:`fit_target` — the multi-start Huber-on-log-loss fit of one target from the form's
  two-stage initial guesses plus jittered starts (:func:`climb.laws.fitting.fit_log_huber`).

Internal parametrization (well conditioned): ``d = D / D_ref``, ``ν = N / N_ref``,
``r = p_own + d^(-κ) Σ_{j free} w_j φ_η(p_j)``; each form converts to the JSON layout at the end.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from climb.data.runs import RunTable
from climb.errors import ClimbError, ClimbWarning
from climb.laws.base import Diagnostics
from climb.laws.climb.ratio import R_FLOOR, TRANSFER_EPS, is_ratio_floor, transfer_from_log
from climb.laws.fitting import (
    HUBER_DELTA,
    fit_log_huber,
    fit_per_target,
    jitter_starts,
    target_seed,
)

if TYPE_CHECKING:
    from climb.laws.climb.forms import TargetForm

ETA_BOUNDS = (0.2, 1.0)
"""Box of the fitted transfer saturation ``η_i`` (``transfer="saturating"``)."""
ETA_GRID = (0.6, 1.0)
"""Initial ``η`` values of the two-stage init grid; the best start of each is solved."""

Transfer = Literal["saturating", "linear", "tokens"]
BudgetExponent = Literal["shared", "free"]
BUDGET_EXPONENTS = ("shared", "free")
"""``budget_exponent`` of the climb form: ``"shared"`` — ``B (r D)^(-β)``, the loss depends on the
effective tokens ``r·D`` (CLIMB.md §1); ``"free"`` — ``B r^(-β) D^(-δ)``, a budget exponent of
its own (fitted where the runs span ≥ 2 budgets; ``δ = β`` otherwise)."""


@dataclass(frozen=True)
class FitOptions:
    """Hyper-parameters of a per-target fit (shared by ``climb``, ``isolated``, ``climb-msl``)."""

    n_starts: int = 2
    delta: float = HUBER_DELTA
    w_bounds: tuple[float, float] = (-1.0, 5.0)
    max_nfev: int = 200
    seed: int | None = 0
    w_penalty: float = 0.0
    kappa_bound: float = 0.5


KAPPA_BOUND = 0.5
"""Default box ``|κ_i| ≤ 0.5`` of the budget sensitivity of transfer: ``W(D)`` changes at most
≈ 3.2× per decade of tokens. Where transfer is weak, κ is barely identified by proxies that span
a factor 2–3 in D, and a wide box (the former ``|κ| ≤ 2``) let noise-level weights be
extrapolated ~300× at D* = 10× the proxies (benchmarks/regret.py)."""


@dataclass(frozen=True)
class FitSetup:
    """What a climb-family fit derives from the runs and its hyper-parameters (:func:`prepare_fit`)."""

    fit_tokens: bool  # the runs span ≥ 2 token budgets
    fit_kappa: bool
    fit_size: bool
    tokens_ref: float
    params_ref: float
    opts: FitOptions
    tokens_range: tuple[float, float] = (1.0, 1.0)  # min and max D of the fitted rows
    fit_delta: bool = False  # a budget exponent δ of its own (budget_exponent="free", ≥ 2 budgets)


@dataclass
class TargetDesign:
    """What one target's fit sees: its measured runs, in normalized units.

    ``free`` are the source columns whose transfer weight is fitted (varied in the runs, not the
    target's own column); the other off-diagonal weights are fixed to 0. ``own`` is −1 for an
    evaluation-only target (no own share: ``p_own = 0``).
    """

    target: str
    own: int
    p: np.ndarray  # (n, S)
    d: np.ndarray  # (n,) D / D_ref
    nu: np.ndarray  # (n,) N / N_ref
    y: np.ndarray  # (n,) observed loss
    free: np.ndarray  # (m,) source columns with a fitted weight
    fit_kappa: bool
    fit_size: bool
    own_seen: bool  # the target's own proportion is > 0 in some run
    fit_eta: bool = False  # fit the transfer saturation η (else η = 1: r linear in p)
    kappa_tied: bool = False  # κ = 1 − η: transfer saturates in donor tokens (transfer="tokens")
    fit_delta: bool = False  # fit the budget exponent δ (else δ = β: the loss depends on r·D)
    p_own: np.ndarray = field(init=False, repr=False)  # (n,) p[:, own]
    p_free: np.ndarray = field(init=False, repr=False)  # (n, m) p[:, free]
    log_pfe: np.ndarray = field(init=False, repr=False)  # (n, m) log(p[:, free] + ε)
    log_d: np.ndarray = field(init=False, repr=False)
    log_nu: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        own = self.p[:, self.own] if self.own >= 0 else np.zeros(self.p.shape[0])
        self.p_own = np.ascontiguousarray(own)
        self.p_free = np.ascontiguousarray(self.p[:, self.free])
        self.log_pfe = np.log(self.p_free + TRANSFER_EPS)
        self.log_d = np.log(self.d)
        self.log_nu = np.log(self.nu)

    @property
    def eval_only(self) -> bool:
        """The target is not a mixture source (its loss is explained by transfer alone)."""
        return self.own < 0

    def donors(self, eta: float) -> tuple[np.ndarray, np.ndarray]:
        """``φ_η(p_j)`` of the free donors and ``∂φ_η(p_j)/∂η``, each ``(n, m)``
        (:func:`~climb.laws.climb.ratio.transfer_from_log`); ``(p_free, 0)`` when ``η`` is not
        fitted."""
        if not self.fit_eta:
            return self.p_free, np.zeros_like(self.p_free)
        return transfer_from_log(self.log_pfe, eta)

    def ratio(self, w: np.ndarray, kappa: float, eta: float) -> np.ndarray:
        """``r = p_own + d^(-κ) Σ_j w_j φ_η(p_j)`` of the design's runs (unfloored)."""
        q = self.donors(eta)[0] @ w if w.size else np.zeros(self.y.shape)
        return np.asarray(self.p_own + self.d ** (-kappa) * q)


def eta_identified(p_free: np.ndarray) -> bool:
    """Whether ``η`` is identified: some donor takes ≥ 3 distinct shares (with two, e.g. 0 and a,
    ``w φ_η(a)`` is one number and ``w``, ``η`` trade off)."""
    return any(np.unique(col).size >= 3 for col in np.asarray(p_free).T)


def geometric_center(values: np.ndarray) -> float:
    """``exp(mean(log v))`` over the distinct values: the reference D (or N) of a fit."""
    v = np.unique(np.asarray(values, dtype=float))
    return float(np.exp(np.mean(np.log(v))))


def varied(col: np.ndarray) -> bool:
    """Whether a proportion column takes more than one value (else its weight is unidentified)."""
    return bool(col.size) and float(np.ptp(col)) > 1e-12


def _warn(message: str) -> None:
    warnings.warn(message, ClimbWarning, stacklevel=5)


def designs_from_runs(
    runs: RunTable,
    *,
    interactions: bool,
    law: str,
    setup: FitSetup,
    n_own_params: int,
    transfer: Transfer = "linear",
) -> list[TargetDesign]:
    """Split the runs into one :class:`TargetDesign` per target; warn about what is unidentified.

    A source whose proportion never varies among a target's measured runs gets no transfer
    weight (fixed 0) and a :class:`~climb.errors.ClimbWarning`; so does a target with fewer
    measured runs than parameters. With ``transfer="saturating"`` a target's ``η`` is fitted when
    some donor takes ≥ 3 distinct shares (:func:`eta_identified`), else fixed to 1.
    """
    out: list[TargetDesign] = []
    unvaried: dict[str, list[str]] = {}
    d_all = runs.tokens / setup.tokens_ref
    nu_all = np.ones(len(runs)) if runs.params is None else runs.params / setup.params_ref
    for k, t in enumerate(runs.targets):
        rows = np.isfinite(runs.loss[:, k])
        own = runs.sources.index(t) if t in runs.sources else -1
        p = runs.p[rows]
        free_list: list[int] = []
        if interactions:
            for j, s in enumerate(runs.sources):
                if j == own:
                    continue
                if varied(p[:, j]):
                    free_list.append(j)
                else:
                    unvaried.setdefault(s, []).append(t)
        if own < 0:
            _check_eval_only(t, law, interactions, free_list, int(rows.sum()))
        own_seen = own >= 0 and bool((p[:, own] > 0).any())
        fit_eta = transfer != "linear" and eta_identified(p[:, free_list])
        tied = transfer == "tokens" and fit_eta
        design = TargetDesign(
            target=t, own=own, p=p, d=d_all[rows], nu=nu_all[rows], y=runs.loss[rows, k],
            free=np.array(free_list, dtype=int),
            fit_kappa=setup.fit_kappa and bool(free_list) and not tied,
            fit_size=setup.fit_size, own_seen=own_seen, fit_eta=fit_eta, kappa_tied=tied,
            fit_delta=setup.fit_delta,
        )  # fmt: skip
        n_par = (n_own_params + len(free_list) + int(design.fit_kappa) + 2 * int(setup.fit_size)
                 + int(fit_eta) + int(setup.fit_delta))  # fmt: skip
        if not own_seen and own >= 0:
            _warn(
                f"{law} law: target '{t}': its own proportion 'p.{t}' is 0 in every run; "
                "B and its W row are identified only jointly (add runs that include it)"
            )
        if rows.sum() < n_par:
            _warn(
                f"{law} law: target '{t}' has {int(rows.sum())} measured runs for {n_par} "
                "parameters; the fit is not identified (add runs)"
            )
        out.append(design)
    for s, ts in unvaried.items():
        _warn(
            f"{law} law: source '{s}' never varies in the runs measuring "
            f"{', '.join(ts[:3])}{'…' if len(ts) > 3 else ''}; its transfer weights W[:, '{s}'] "
            "are not identified and are fixed to 0 (vary its share in some runs)"
        )
    return out


def _check_eval_only(target: str, law: str, interactions: bool, free: list[int], n: int) -> None:
    """An evaluation-only target (``loss.x`` without ``p.x``) is predicted from transfer alone:
    the law needs transfer, and some donor whose share varies among the runs measuring it."""
    if not interactions:
        raise ClimbError(
            f"{law} law: target '{target}' is evaluation-only (loss.{target} without p.{target}); "
            "a law without transfer cannot predict it: use the climb law, or drop the target "
            "(RunTable.select_targets)"
        )
    if not free:
        raise ClimbError(
            f"{law} law: evaluation-only target '{target}' (loss.{target} without p.{target}): no "
            f"mixture source varies among the {n} run(s) that measure it, so its transfer cannot "
            f"be identified; measure '{target}' in runs with different mixtures"
        )


def check_options(law: str, hyper: dict[str, Any]) -> None:
    """The one validator of a climb-family law's hyper-parameters (one-line errors)."""
    transfer, w_bounds = hyper["transfer"], tuple(hyper["w_bounds"])
    kinds = ("saturating", "linear") + (("tokens",) if law != "climb-msl" else ())
    if transfer not in kinds:
        names = ", ".join(map(repr, kinds[:-1])) + f" or {kinds[-1]!r}"
        raise ClimbError(f"{law} law: transfer must be {names}, got {transfer!r}")
    if not (np.isfinite(hyper["w_penalty"]) and hyper["w_penalty"] >= 0):
        raise ClimbError(f"{law} law: w_penalty must be ≥ 0, got {hyper['w_penalty']}")
    if int(hyper["n_starts"]) < 1:
        raise ClimbError(f"{law} law: n_starts must be ≥ 1, got {hyper['n_starts']}")
    delta = hyper["huber_delta"]
    if not (delta > 0 and np.isfinite(delta)):
        raise ClimbError(f"{law} law: huber_delta must be > 0, got {delta}")
    if len(w_bounds) != 2 or not (w_bounds[0] < w_bounds[1]) or w_bounds[0] > 0 or w_bounds[1] < 0:
        raise ClimbError(f"{law} law: w_bounds must be (lo, hi) with lo ≤ 0 ≤ hi, got {w_bounds}")
    rho = hyper.get("ratio_floor", 0.0)
    if not is_ratio_floor(rho):
        raise ClimbError(f"{law} law: ratio_floor must be a number in [0, 1), got {rho!r}")
    kb = hyper["kappa_bound"]
    if not (isinstance(kb, int | float) and np.isfinite(kb) and kb >= 0):
        raise ClimbError(f"{law} law: kappa_bound must be a number ≥ 0, got {kb!r}")
    if int(hyper["max_nfev"]) < 1:
        raise ClimbError(f"{law} law: max_nfev must be ≥ 1, got {hyper['max_nfev']}")
    for option in ("fit_kappa", "fit_size"):
        if hyper[option] != "auto" and not isinstance(hyper[option], bool):
            raise ClimbError(
                f"{law} law: {option} must be 'auto', True or False, got {hyper[option]!r}"
            )
    if hyper.get("budget_exponent", "shared") not in BUDGET_EXPONENTS:
        raise ClimbError(
            f"{law} law: budget_exponent must be 'shared' or 'free', got "
            f"{hyper['budget_exponent']!r}"
        )
    if hyper["backend"] not in ("serial", "thread", "process"):
        raise ClimbError(
            f"{law} law: backend must be 'serial', 'thread' or 'process', got {hyper['backend']!r}"
        )


def _resolve_flag(value: bool | str, spanned: bool, what: str, option: str, law: str) -> bool:
    if value == "auto":
        return spanned
    if value is True and not spanned:
        raise ClimbError(f"{law} law: {option}=True needs runs at ≥ 2 {what}; the runs have one")
    return bool(value)


def true_budget_runs(runs: RunTable, law: str) -> RunTable:
    """The rows a climb-family law fits: those with ``true_budget`` (the model finished its
    learning-rate schedule at ``tokens``). Mid-schedule checkpoint rows are skipped with a
    :class:`ClimbWarning`; a table with none left is a :class:`ClimbError`."""
    keep = np.asarray(runs.true_budget, dtype=bool)
    if keep.all():
        return runs
    if not keep.any():
        raise ClimbError(
            f"{law} law: every row has true_budget false (mid-schedule checkpoints); fit on runs "
            "whose schedule finished at their tokens (e.g. WSD cooldown branches or final rows)"
        )
    warnings.warn(
        f"{law} law: {int((~keep).sum())} of {len(keep)} rows are mid-schedule checkpoints "
        f"(true_budget false) and are not used to fit; fitting on {int(keep.sum())} "
        "true-budget rows",
        ClimbWarning,
        stacklevel=4,
    )
    return runs.subset(keep)


def prepare_fit(runs: RunTable, hyper: dict[str, Any], law: str, interactions: bool) -> FitSetup:
    """Validate the hyper-parameters (:func:`check_options`) and derive what every climb-family
    fit needs: which scale terms the runs identify (κ: ≥ 2 token budgets; A N^(-α): ≥ 2 model
    sizes), the reference scales, and the optimizer options."""
    check_options(law, hyper)
    fit_tokens = np.unique(runs.tokens).size >= 2
    sizes = None if runs.params is None else np.unique(runs.params)
    fit_kappa = interactions and _resolve_flag(
        hyper["fit_kappa"], fit_tokens, "token budgets", "fit_kappa", law
    )
    spanned = sizes is not None and sizes.size >= 2
    fit_size = _resolve_flag(hyper["fit_size"], spanned, "model sizes", "fit_size", law)
    fit_delta = hyper.get("budget_exponent", "shared") == "free" and fit_tokens
    opts = FitOptions(
        n_starts=int(hyper["n_starts"]), delta=float(hyper["huber_delta"]),
        w_bounds=(float(hyper["w_bounds"][0]), float(hyper["w_bounds"][1])),
        max_nfev=int(hyper["max_nfev"]), seed=hyper["seed"], w_penalty=float(hyper["w_penalty"]),
        kappa_bound=float(hyper["kappa_bound"]),
    )  # fmt: skip
    return FitSetup(
        fit_tokens=fit_tokens,
        fit_kappa=fit_kappa,
        fit_size=fit_size,
        tokens_ref=geometric_center(runs.tokens),
        params_ref=1.0 if runs.params is None else geometric_center(runs.params),
        opts=opts,
        tokens_range=(float(np.min(runs.tokens)), float(np.max(runs.tokens))),
        fit_delta=fit_delta,
    )


# ---------------------------------------------------------------------- the init grid
def eta_grid(design: TargetDesign) -> tuple[float, ...]:
    """The ``η`` values the initialization tries: :data:`ETA_GRID`, or only 1 when not fitted."""
    return ETA_GRID if design.fit_eta else (1.0,)


def best_per_eta(scored: list[tuple[float, float, np.ndarray]]) -> list[np.ndarray]:
    """Init points ``(cost, η, x)`` best first, with the best point of every ``η`` moved to the
    front (so the multi-start solves both the saturating and the linear basin)."""
    scored = sorted(scored, key=lambda t: t[0])
    firsts: dict[float, int] = {}
    for k, (_, eta, _) in enumerate(scored):
        firsts.setdefault(eta, k)
    head = sorted(firsts.values())
    return [scored[k][2] for k in head] + [
        x for k, (_, _, x) in enumerate(scored) if k not in firsts.values()
    ]


def n_guess_starts(design: TargetDesign, n: int) -> int:
    """How many of ``n`` starts come from the init grid (the rest are jittered)."""
    k = max(1, (n + 1) // 2)
    return min(n, max(k, len(eta_grid(design))))


def w_penalty(design: TargetDesign, size: int, opts: FitOptions, first: int) -> np.ndarray | None:
    """Per-parameter shrinkage weights: ``w_penalty`` on the transfer weights, 0 elsewhere."""
    if opts.w_penalty <= 0 or not design.free.size:
        return None
    pen = np.zeros(size)
    pen[first : first + design.free.size] = opts.w_penalty
    return pen


# ---------------------------------------------------------------------- one target
@dataclass
class TargetFit:
    """One target's fitted parameters (internal units: ``b = B D_ref^(-β)``, ``a = A N_ref^(-α)``;
    ``gamma`` only for climb-msl) and fit diagnostics."""

    E: float
    a: float
    alpha: float
    b: float
    beta: float
    w: np.ndarray  # (m,) weights of design.free
    kappa: float
    eta: float  # transfer saturation (1 = linear)
    gamma: float = 0.0
    delta: float = float("nan")  # budget exponent (climb form; = β unless fitted)
    cost: float = float("nan")
    rmse: float = float("nan")
    nfev: int = 0
    success: bool = False
    floored: int = 0  # training runs where r ≤ R_FLOOR


def fit_target(
    k: int, designs: Sequence[TargetDesign], opts: FitOptions, form: TargetForm
) -> TargetFit:
    """Fit target ``k`` with the form's two-stage init, then multi-start Huber-on-log-loss least
    squares; counts the training runs where ``r`` hits the floor."""
    design = designs[k]
    lo, hi = form.bounds(design, opts)
    guesses = form.initial_guesses(design, opts)
    rng = np.random.default_rng(target_seed(opts.seed, k))
    n = max(opts.n_starts, 1)
    starts = guesses[: n_guess_starts(design, n)]
    scale = np.full(lo.shape, 0.05)
    scale[form.w_first : form.w_first + design.free.size] = form.w_jitter
    while len(starts) < n:
        starts += jitter_starts(guesses[0], lo, hi, 2, rng, scale)[1:]
    res = fit_log_huber(
        functools.partial(form.model, design=design), design.y, starts[:n], lo, hi,
        delta=opts.delta, max_nfev=opts.max_nfev,
        penalty=w_penalty(design, lo.size, opts, first=form.w_first),
    )  # fmt: skip
    fit = form.unpack(res.x, design)
    if not np.any(fit.w):  # no transfer at all: η has no effect, report the linear value
        fit.eta = 1.0
    fit.cost, fit.rmse, fit.nfev, fit.success = res.cost, res.rmse, res.nfev, res.success
    fit.floored = int((design.ratio(fit.w, fit.kappa, fit.eta) <= R_FLOOR).sum())
    return fit


__all__ = [
    "BUDGET_EXPONENTS",
    "ETA_BOUNDS",
    "ETA_GRID",
    "BudgetExponent",
    "FamilyFit",
    "FitOptions",
    "FitSetup",
    "TargetDesign",
    "TargetFit",
    "Transfer",
    "designs_from_runs",
    "fit_family",
    "fit_target",
    "prepare_fit",
]


# ---------------------------------------------------------------------- the whole fit
@dataclass
class FamilyFit:
    """Everything a climb-family fit produced: the setup, one design and one fit per target."""

    setup: FitSetup
    designs: list[TargetDesign]
    fits: list[TargetFit]

    def diagnostics(self) -> Diagnostics:
        """Per-target records and floored runs (the law's ``diagnostics_``)."""
        records = [
            {"target": dz.target, "runs": int(dz.y.size), "cost": f.cost, "rmse_log": f.rmse,
             "nfev": f.nfev, "success": f.success, "floored": f.floored, "eta": f.eta,
             "eta_fitted": dz.fit_eta}
            for dz, f in zip(self.designs, self.fits)
        ]  # fmt: skip
        floored = {dz.target: f.floored for dz, f in zip(self.designs, self.fits) if f.floored}
        return Diagnostics(targets=records, floored=floored)


def fit_family(
    runs: RunTable,
    hyper: dict[str, Any],
    *,
    law: str,
    interactions: bool,
    make_form: Callable[[FitSetup], TargetForm],
) -> FamilyFit:
    """Fit every target of a climb-family law: :func:`prepare_fit`, :func:`designs_from_runs`,
    then :func:`fit_target` per target (in parallel with ``n_jobs`` / ``backend``), on the
    true-budget rows of ``runs`` (:func:`true_budget_runs`)."""
    runs = true_budget_runs(runs, law)
    setup = prepare_fit(runs, hyper, law, interactions)
    form = make_form(setup)
    designs = designs_from_runs(
        runs, interactions=interactions, law=law, setup=setup,
        n_own_params=form.n_own_params(), transfer=hyper["transfer"],
    )  # fmt: skip
    fits = fit_per_target(
        functools.partial(fit_target, designs=designs, opts=setup.opts, form=form),
        len(designs), n_jobs=hyper["n_jobs"], backend=hyper["backend"],
    )  # fmt: skip
    return FamilyFit(setup, designs, list(fits))
