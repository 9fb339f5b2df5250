"""The report's sections: one function per section, each returning its HTML and its figures.

Every section takes the library's own result types: a :class:`~climb.data.runs.RunTable` and a
fitted law, :class:`~climb.evaluation.cv.CVResult` (cross-validation),
:class:`~climb.allocation.result.AllocationResult` (the allocation and its baselines) and
:class:`~climb.verification.VerificationResult` (verification runs over seeds).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from climb.allocation.result import AllocationResult
from climb.data.runs import RunTable
from climb.errors import ClimbError
from climb.evaluation.cv import SHARE_CLASSES, CVResult, mae_by_share, own_shares
from climb.laws.base import Law
from climb.report import figures
from climb.report import html as H
from climb.verification import VerificationResult

PAPER_NOTE = (
    "Formulation follows the published description of Climb (arXiv 2509.15556); the exact "
    "equations of the paper were not available."
)


@dataclass(frozen=True)
class Figure:
    """One PNG figure with its alt text and caption."""

    png: bytes
    alt: str
    caption: str


@dataclass
class Section:
    """A section of the page: heading, HTML (``{fig:NAME}`` marks where each figure goes), its
    figures by name, and the figures it could not draw with the reason."""

    heading: str
    html: str
    figures: dict[str, Figure] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def overview_section(runs: RunTable, law: Law, notes: Sequence[str] = ()) -> Section:
    """What was fitted on what: runs, sources, budgets, the law, and the caller's notes."""
    summ = runs.summary()
    parts = [
        f"<p>{summ['runs']} runs over {len(runs.sources)} sources "
        f"({', '.join(H.esc(s) for s in runs.sources)}); token budgets "
        f"{', '.join(f'{x:.3g}' for x in summ['token_budgets'])}. Law: <code>{H.esc(law.name)}</code> "
        f"predicting {len(law.targets_)} targets. Losses in bits per byte when the runs come from "
        "the climb proxy trainer.</p>",
        f'<p class="note">{H.esc(PAPER_NOTE)}</p>',
    ]
    parts += [f'<p class="note">{H.esc(n)}</p>' for n in notes]
    return Section("Overview", "\n".join(parts))


SHARE_HEADERS = {"zero": "MAE p = 0", "trace": "MAE 0 < p < 1%", "main": "MAE p ≥ 1%"}


def _cv_table(cv: Mapping[str, CVResult], runs: RunTable) -> str:
    rows: list[list[Any]] = []
    counts: dict[str, int] = {}
    for name, c in cv.items():
        share = share_errors(c, runs)
        for k in SHARE_CLASSES:
            counts.setdefault(k, int(share[k]["n"]))
        rows.append(
            [
                name,
                c.folds,
                c.overall.get("mae", math.nan),
                *[share[k]["mae"] for k in SHARE_CLASSES],
                median_abs_error(c),
                c.overall.get("spearman", math.nan),
                c.overall.get("mape", math.nan),
                c.overall.get("r2", math.nan),
            ]
        )
    maes = np.array([float(r[2]) for r in rows])
    best = int(np.nanargmin(maes)) if np.isfinite(maes).any() else None
    header = [
        "law",
        "folds",
        "MAE",
        *[f"{SHARE_HEADERS[k]} (n {counts.get(k, 0)})" for k in SHARE_CLASSES],
        "median AE",
        "Spearman ρ",
        "MAPE",
        "R²",
    ]
    return "\n".join(
        [
            "<p>Cross-validated prediction error (out-of-fold, all targets), and its MAE by the "
            "target's own share p in the held-out mixture:</p>",
            H.table(header, rows, best_row=best),
            '<p class="note">Cells where p = 0 ask a law for a language absent from the held-out '
            "mixture: its r_i comes from transfer alone and can be near 0, where loss laws of the "
            "form B (r D)^-β diverge; they can dominate the plain MAE.</p>",
        ]
    )


def prediction_section(runs: RunTable, law: Law, cv: Mapping[str, CVResult]) -> Section:
    """In-sample and cross-validated error of every law; predicted vs observed per language
    (held-out predictions from ``cv[law.name]`` marked)."""
    targets = list(law.targets_)
    observed = law.observed(runs)
    fitted = law.predict_runs(runs)
    own_cv = cv.get(law.name)
    heldout = None
    if own_cv is not None:
        heldout = _align(own_cv.predictions, own_cv.targets, targets, len(runs))
    text = [
        f"<p>In-sample MAE of <code>{H.esc(law.name)}</code>: {_mae(fitted, observed):.4f}.</p>"
    ]
    if cv:
        text.append(_cv_table(cv, runs))
    if own_cv is not None and own_cv.per_target:
        rows = [
            [t, m.get("mae", math.nan), m.get("spearman", math.nan), int(m.get("n", 0))]
            for t, m in own_cv.per_target.items()
        ]
        text.append(f"<p>Per language, <code>{H.esc(law.name)}</code> (cross-validated):</p>")
        text.append(H.table(["target", "MAE", "Spearman ρ", "n"], rows))
    elif not cv:
        text.append('<p class="note">No cross-validation given: no held-out predictions.</p>')
    fig = Figure(
        figures.predicted_vs_observed(targets, observed, fitted, heldout),
        "predicted vs observed loss",
        "Predicted vs observed validation loss per language; crosses are out-of-fold (held-out) "
        "predictions from cross-validation, grey dots the fit on all runs.",
    )
    return Section(
        "Prediction quality", "\n".join(text) + "\n{fig:pred_vs_obs}", {"pred_vs_obs": fig}
    )


def _parameter_table(law: Law, params: Mapping[str, Any]) -> list[str]:
    targets = list(law.targets_)
    cols = [k for k in ("E", "A", "alpha", "B", "beta", "delta", "gamma", "kappa") if k in params]
    try:
        vals = [np.asarray(params[k], dtype=float).reshape(len(targets)) for k in cols]
    except (TypeError, ValueError):
        return []
    if not vals:
        return []
    rows = [[t, *[float(v[i]) for v in vals]] for i, t in enumerate(targets)]
    return [
        f"<p>Fitted per-language parameters of <code>{H.esc(law.name)}</code>:</p>",
        H.table(["target", *cols], rows),
    ]


def _effective_ratio_part(runs: RunTable, law: Law, sec: Section) -> None:
    try:
        ratios = observed_effective_ratios(law, runs)
    except ClimbError as exc:
        sec.skipped["effective_ratio"] = str(exc)
        return
    if ratios is None:
        sec.skipped["effective_ratio"] = (
            f"observed effective ratios need a climb-form law (got '{law.name}')"
        )
        return
    r_hat, r_law = ratios
    targets = list(law.targets_)
    share = np.column_stack(
        [runs.p[:, runs.sources.index(t)] if t in runs.sources else np.zeros(len(runs))
         for t in targets]
    )  # fmt: skip
    sec.figures["effective_ratio"] = Figure(
        figures.effective_ratio_scatter(targets, share, r_hat, r_law),
        "observed effective ratio against own share",
        "Observed effective ratio r̂_i (the share of the budget that, spent on language i "
        "alone, gives the observed loss) against the own share p_i; above the diagonal the "
        "other languages help, below they interfere. Dashes: the law's r = W p for the same runs.",
    )
    sec.html += "\n{fig:effective_ratio}"
    floor = int(np.sum(~np.isfinite(r_hat)))
    if floor:
        sec.html += (
            f'\n<p class="note">{floor} run/target cells have no finite r̂ (observed loss '
            "at or below the law's irreducible part).</p>"
        )


def interactions_section(runs: RunTable, law: Law) -> Section:
    """Fitted parameters per language, the interaction matrix ``W`` and κ, and the observed
    effective ratio r̂ against the own share."""
    params = _law_params_json(law)
    targets = list(law.targets_)
    body = _parameter_table(law, params)
    sec = Section("Law parameters and cross-lingual interactions", "")
    if "W" in params:
        W = np.asarray(params["W"], dtype=float)
        sec.figures["interaction"] = Figure(
            figures.interaction_heatmap(W, targets, law.sources_),
            "interaction matrix W",
            "Fitted transfer weights w_ij: how much a token of source j counts for target i "
            "(1 on the diagonal by definition).",
        )
        body.append("{fig:interaction}")
        kappa = params.get("kappa")
        if kappa is not None and np.any(np.asarray(kappa) != 0):
            ref = float(params.get("tokens_ref", 1))
            body.append(
                f"<p>Scale sensitivity κ (w_ij(D) = w_ij (D/{ref:.3g})^-κ_i): "
                + ", ".join(f"{t} {k:+.3f}" for t, k in zip(targets, np.asarray(kappa, float)))
                + "</p>"
            )
    else:
        sec.skipped["interaction"] = f"law '{law.name}' has no interaction matrix W"
    sec.html = "\n".join(body)
    _effective_ratio_part(runs, law, sec)
    return sec


def allocation_section(
    allocation: AllocationResult, baselines: Mapping[str, AllocationResult], name: str = "climb"
) -> Section:
    """The recommended mixture (bootstrap intervals) beside the baselines: proportions,
    objective and gap, intervals, predicted losses, solver path."""
    sources = list(allocation.sources)
    results = {name: allocation, **dict(baselines)}
    rows = [
        [n, *[r.proportions_dict().get(s, 0.0) for s in sources], r.objective,
         r.objective - allocation.objective]
        for n, r in results.items()
    ]  # fmt: skip
    parts = [
        f"<p>Target budget D* = {allocation.tokens:.4g} tokens. Proportions (predicted "
        "objective: weighted sum of per-language losses; lower is better):</p>",
        H.table(["mixture", *sources, "objective", f"gap to {name}"], rows, best_row=0),
    ]
    level = allocation.interval_level or math.nan
    if allocation.intervals:
        rows = [
            [s, p, *allocation.intervals.get(s, (math.nan, math.nan))]
            for s, p in allocation.proportions_dict().items()
        ]
        parts.append(f"<p>Bootstrap {level:.0%} intervals of the recommended proportions:</p>")
        parts.append(H.table(["source", "p", "low", "high"], rows))
    tg = list(allocation.targets)
    rows = [[n, *[r.loss_dict().get(t, math.nan) for t in tg]] for n, r in results.items()]
    parts += ["<p>Predicted loss per language at D*:</p>", H.table(["mixture", *tg], rows)]
    parts.append(
        f'<p class="note">Solver: path={H.esc(allocation.path)}, status={allocation.status}, '
        f"iterations={allocation.nit}, KKT residual={H.fmt(allocation.kkt_residual)}"
        + (f"; {H.esc(allocation.message)}" if allocation.message else "")
        + "</p>"
    )
    fig = Figure(
        figures.allocation_bars(
            sources,
            {n: r.proportions_dict() for n, r in results.items()},
            recommended=name,
            interval=allocation.intervals,
            tokens=allocation.tokens,
        ),
        "recommended mixture beside baselines",
        "Recommended proportions"
        + (f" with {level:.0%} bootstrap intervals" if allocation.intervals else "")
        + " beside the baseline allocations, under the same constraints.",
    )
    return Section("Allocation", "\n".join(parts) + "\n{fig:allocation}", {"allocation": fig})


def verification_section(v: VerificationResult) -> Section:
    """Each mixture's realized mean loss over seeds (mean ± std, min–max, the law's prediction)
    and the recommended mixture against each baseline: paired difference, t-interval, verdict."""
    paired = v.paired
    n = len(v.seeds)
    rec = v.recommended
    parts = []
    for line, c in zip(v.verdict_lines(), paired.values()):
        cls = "win" if c.verdict == "wins" else "lose" if c.verdict == "loses" else "tie"
        parts.append(f'<p class="verdict {cls}">{H.esc(line)}</p>')
    mixtures = list(v.mixtures.values())
    by_target = [m.realized_mean_by_target() for m in mixtures]
    rows = [
        [m.name, n, m.mean, m.std, m.min, m.max, m.predicted_mean,
         *[bt.get(t, math.nan) for t in v.targets]]
        for m, bt in zip(mixtures, by_target)
    ]  # fmt: skip
    header = ["mixture", "seeds", "mean", "std", "min", "max", "predicted", *v.targets]
    parts.append(
        f"<p>Realized mean validation loss over the languages ({H.esc(v.units)}), over "
        f"{n} seeds (seeds {', '.join(map(str, v.seeds))}); per-language columns are seed "
        "averages:</p>"
    )
    parts.append(H.table(header, rows, best_row=int(np.argmin([m.mean for m in mixtures]))))
    rows = [
        [b, c.mean_diff, c.ci_low, c.ci_high, c.verdict, " ".join(f"{d:+.4f}" for d in c.diffs)]
        for b, c in paired.items()
    ]
    parts.append(
        f"<p>{H.esc(rec)} − baseline, paired by seed ({v.level:.0%} Student-t interval over the "
        f"{n} seed pairs; &lt; 0: {H.esc(rec)} better):</p>"
    )
    parts.append(
        H.table(["baseline", "mean difference", "low", "high", "verdict", "per seed"], rows)
    )
    err = v.prediction_error()
    parts.append(
        f"<p>Law prediction error on these runs (seed averages; budget "
        f"{H.esc(v.settings.get('extrapolation', 'larger than the proxies'))}): MAE "
        f"{err['mae']:.4f}, mean bias (predicted − realized) {err['mean_bias']:+.4f} "
        f"{H.esc(v.units)}.</p>"
    )
    if v.settings:
        parts.append(
            '<p class="note">Settings: ' + H.esc(json.dumps(v.settings, sort_keys=True)) + "</p>"
        )
    fig = Figure(
        figures.verification_seeds(
            v.names,
            np.array([m.losses for m in mixtures]),
            np.array([m.predicted_mean for m in mixtures]),
            [(b, c.mean_diff, c.ci_low, c.ci_high, c.verdict) for b, c in paired.items()],
            recommended=rec,
            level=v.level,
            units=v.units,
        ),
        "verification over seeds",
        f"Left: realized mean validation loss of each mixture over {n} seeds (mean, ± std, "
        "min–max, each seed; diamonds: the law's prediction). Right: the paired difference "
        f"{rec} − baseline with its {v.level:.0%} t-interval.",
    )
    return Section(
        "Verification at the target budget",
        "\n".join(parts) + "\n{fig:verification}",
        {"verification": fig},
    )


def _law_params_json(law: Law) -> dict[str, Any]:
    try:
        return dict(law.to_json().get("params", {}))
    except ClimbError:
        return {}


def observed_effective_ratios(law: Law, runs: RunTable) -> tuple[np.ndarray, np.ndarray] | None:
    """``(r̂, r_law)`` as ``(n, T)`` arrays over ``law.targets_``, or ``None`` for a law outside
    the climb family.

    r̂ inverts the isolated part of the law (CLIMB.md §2) for each run's observed loss; the
    computation is :func:`climb.evaluation.effective_ratio.observed_effective_ratios`'s.
    """
    from climb.evaluation.effective_ratio import observed_effective_ratios as observed

    if not getattr(law, "has_effective_ratio", False):
        return None
    er = observed(law, runs)
    n = len(runs)
    return (
        _align(er.observed, er.targets, law.targets_, n),
        _align(er.law, er.targets, law.targets_, n),
    )


def share_errors(c: CVResult, runs: RunTable) -> dict[str, dict[str, float]]:
    """``c.by_share`` (:func:`climb.evaluation.cv.mae_by_share`); computed from ``runs`` for a
    result made without it."""
    if c.by_share:
        return c.by_share
    return mae_by_share(c.predictions, c.observed, own_shares(runs))


def median_abs_error(c: CVResult) -> float:
    """Median absolute out-of-fold error over every predicted, measured cell."""
    err = np.abs(np.asarray(c.predictions, dtype=float) - np.asarray(c.observed, dtype=float))
    ok = np.isfinite(err)
    return float(np.median(err[ok])) if ok.any() else math.nan


def _align(arr: np.ndarray, have: Sequence[str], want: Sequence[str], n: int) -> np.ndarray:
    out = np.full((n, len(want)), np.nan)
    a = np.asarray(arr, dtype=float).reshape(n, len(have))
    for k, t in enumerate(want):
        if t in have:
            out[:, k] = a[:, list(have).index(t)]
    return out


def _mae(pred: np.ndarray, obs: np.ndarray) -> float:
    m = np.isfinite(pred) & np.isfinite(obs)
    return float(np.mean(np.abs(pred[m] - obs[m]))) if m.any() else math.nan
