"""Build the report: figures (PNG files) and one self-contained HTML page embedding them.

Inputs are the library's own objects: a :class:`~climb.data.runs.RunTable`, a fitted law, and
optionally cross-validation results (:class:`CVSummary`), an allocation (:class:`AllocationSummary`)
and verification runs (:class:`~climb.report.verification.Verification`). Figures:

==================  ===================================================================  =========
file                content                                                              needs
==================  ===================================================================  =========
``pred_vs_obs``     predicted vs observed loss per language, held-out predictions marked  always
``interaction``     the interaction matrix ``W`` as a heatmap                            W in law
``effective_ratio`` observed effective ratio r̂ (CLIMB.md §2) against own share p         climb law
``allocation``      recommended mixture (bootstrap intervals) beside the baselines       allocation
``verification``    realized vs predicted loss of each mixture at the target budget      verification
==================  ===================================================================  =========
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from climb.data.runs import RunTable
from climb.errors import ClimbError
from climb.laws.base import Law
from climb.report import figures
from climb.report import html as H
from climb.report.verification import Verification

PAPER_NOTE = (
    "Formulation follows the published description of Climb (arXiv 2509.15556); the exact "
    "equations of the paper were not available."
)


@dataclass
class CVSummary:
    """Cross-validation of one law: out-of-fold predictions and their error metrics.

    ``oof`` is ``(n, T)`` over the run table's rows and ``targets`` (NaN where a run was never
    held out); ``per_target`` maps each target to metrics (``mae`` in the loss units, ``spearman``,
    …) and ``overall`` holds the same over all targets.
    """

    law: str
    folds: int
    targets: list[str]
    oof: np.ndarray | None
    per_target: dict[str, dict[str, float]]
    overall: dict[str, float]

    @classmethod
    def from_result(cls, law: str, result: Any, targets: Sequence[str] | None = None) -> CVSummary:
        """Adapt a :func:`climb.evaluation.cross_validate` result."""
        metrics = getattr(result, "metrics", None)
        per = getattr(result, "per_target", None)
        overall = getattr(result, "overall", None)
        if per is None and isinstance(metrics, Mapping):
            per = metrics.get("targets")
            overall = metrics.get("overall")
        per = {str(t): _plain_metrics(m) for t, m in dict(per or {}).items()}
        oof = getattr(result, "oof", None)
        if oof is None:
            oof = getattr(result, "predictions", None)
        tg = list(targets) if targets is not None else list(getattr(result, "targets", per.keys()))
        return cls(
            law=law,
            folds=int(getattr(result, "folds", getattr(result, "n_folds", 0)) or 0),
            targets=tg,
            oof=None if oof is None else np.asarray(oof, dtype=float),
            per_target=per,
            overall=_plain_metrics(overall or {}),
        )


@dataclass
class AllocationSummary:
    """What the report shows of an allocation: proportions of the recommended mixture and of each
    baseline, bootstrap intervals, predicted losses and objectives, at target budget ``tokens``."""

    tokens: float
    sources: list[str]
    mixtures: dict[str, dict[str, float]]  # "climb" first, then baselines
    predicted_loss: dict[str, dict[str, float]] = field(default_factory=dict)
    objective: dict[str, float] = field(default_factory=dict)
    interval: dict[str, tuple[float, float]] | None = None
    interval_level: float = 0.9
    solver: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    recommended: str = "climb"

    @classmethod
    def from_json(cls, obj: Any, origin: str = "allocation JSON") -> AllocationSummary:
        """Read the JSON of ``climb allocate --json`` (``proportions``, ``baselines``, …)."""
        try:
            props = {str(k): float(v) for k, v in obj["proportions"].items()}
            mixtures = {"climb": props}
            predicted = {}
            objective = {}
            if "predicted_loss" in obj:
                predicted["climb"] = {str(k): float(v) for k, v in obj["predicted_loss"].items()}
            if obj.get("objective") is not None:
                objective["climb"] = float(obj["objective"])
            for name, b in dict(obj.get("baselines") or {}).items():
                if not isinstance(b, Mapping) or "proportions" not in b:
                    continue
                mixtures[str(name)] = {str(k): float(v) for k, v in b["proportions"].items()}
                if b.get("predicted_loss"):
                    predicted[str(name)] = {
                        str(k): float(v) for k, v in b["predicted_loss"].items()
                    }
                if b.get("objective") is not None:
                    objective[str(name)] = float(b["objective"])
            interval: dict[str, tuple[float, float]] | None = None
            ci = obj.get("intervals") or obj.get("interval") or obj.get("bootstrap")
            if isinstance(ci, Mapping):
                src = ci.get("proportions", ci)
                if isinstance(src, Mapping):
                    found: dict[str, tuple[float, float]] = {}
                    for k, v in src.items():
                        if isinstance(v, Mapping):
                            found[str(k)] = (float(v["lo"]), float(v["hi"]))
                        elif isinstance(v, list | tuple) and len(v) == 2:
                            found[str(k)] = (float(v[0]), float(v[1]))
                    interval = found or None
            return cls(
                tokens=float(obj.get("tokens", float("nan"))),
                sources=list(props),
                mixtures=mixtures,
                predicted_loss=predicted,
                objective=objective,
                interval=interval,
                interval_level=float((ci or {}).get("level", 0.9))
                if isinstance(ci, Mapping)
                else 0.9,
                solver=dict(obj.get("solver") or {}),
                notes=[str(n) for n in obj.get("notes", [])],
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ClimbError(
                f"{origin}: not an allocation (bad or missing field {exc}); "
                "pass the JSON written by 'climb allocate --json'"
            ) from None

    @classmethod
    def load(cls, path: str | Path) -> AllocationSummary:
        path = Path(path)
        if not path.is_file():
            raise ClimbError(f"{path}: no such allocation file")
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ClimbError(f"{path}: not valid JSON ({exc})") from None
        return cls.from_json(obj, origin=str(path))


@dataclass
class Report:
    """A written report: the HTML page and the PNG files, by figure name."""

    html_path: Path
    figures: dict[str, Path]
    skipped: dict[str, str]


def _plain_metrics(m: Any) -> dict[str, float]:
    if not isinstance(m, Mapping):
        m = getattr(m, "__dict__", {})
    out = {}
    for k, v in dict(m).items():
        try:
            out[str(k)] = float(v)
        except (TypeError, ValueError):
            continue
    return out


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


def heldout_errors(oof: np.ndarray, targets: Sequence[str], runs: RunTable) -> dict[str, float]:
    """Robust summaries of out-of-fold errors ``oof`` (``(n, T)`` over ``targets``).

    ``mae_in_mixture``: MAE over the cells whose target has its own share ``p_i > 0`` in the
    run; ``median_ae``: median absolute error over all cells.
    """
    pred = np.asarray(oof, dtype=float)
    obs = np.full(pred.shape, np.nan)
    own = np.zeros(pred.shape, dtype=bool)
    for k, t in enumerate(targets):
        if t in runs.targets:
            obs[:, k] = runs.loss[:, runs.targets.index(t)]
        if t in runs.sources:
            own[:, k] = runs.p[:, runs.sources.index(t)] > 0
    err = np.abs(pred - obs)
    ok = np.isfinite(err)
    return {
        "mae_in_mixture": float(err[ok & own].mean()) if (ok & own).any() else math.nan,
        "median_ae": float(np.median(err[ok])) if ok.any() else math.nan,
    }


def build_report(
    runs: RunTable,
    law: Law,
    out_dir: str | Path,
    *,
    cv: Mapping[str, CVSummary] | None = None,
    allocation: AllocationSummary | None = None,
    verification: Verification | None = None,
    title: str = "climb report",
    notes: Sequence[str] = (),
    extra_sections: Sequence[tuple[str, str]] = (),
) -> Report:
    """Draw every figure the inputs allow, write ``report.html`` and the PNGs into ``out_dir``.

    ``cv`` maps law names to their cross-validation; the entry for ``law.name`` (if any) provides
    the held-out predictions of the first figure. Figures whose inputs are missing are skipped,
    with the reason in :attr:`Report.skipped` and on the page.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    targets = list(law.targets_)
    observed = law.observed(runs)
    fitted = law.predict_runs(runs)
    cv = dict(cv or {})
    own_cv = cv.get(law.name)
    heldout = None
    if own_cv is not None and own_cv.oof is not None:
        heldout = _align(own_cv.oof, own_cv.targets, targets, len(runs))

    pngs: dict[str, tuple[bytes, str, str]] = {}
    skipped: dict[str, str] = {}
    sections: list[tuple[str, str]] = []

    # -- overview
    summ = runs.summary()
    overview = [
        f"<p>{summ['runs']} runs over {len(runs.sources)} sources "
        f"({', '.join(H.esc(s) for s in runs.sources)}); token budgets "
        f"{', '.join(f'{x:.3g}' for x in summ['token_budgets'])}. Law: <code>{H.esc(law.name)}</code> "
        f"predicting {len(targets)} targets. Losses in bits per byte when the runs come from the "
        "climb proxy trainer.</p>",
        f'<p class="note">{H.esc(PAPER_NOTE)}</p>',
    ]
    overview += [f'<p class="note">{H.esc(n)}</p>' for n in notes]
    sections.append(("Overview", "\n".join(overview)))

    # -- prediction quality
    in_mae = _mae(fitted, observed)
    text = [f"<p>In-sample MAE of <code>{H.esc(law.name)}</code>: {in_mae:.4f}.</p>"]
    if cv:
        rows: list[list[Any]] = []
        for name, c in cv.items():
            extra = heldout_errors(c.oof, c.targets, runs) if c.oof is not None else {}
            rows.append(
                [
                    name,
                    c.folds,
                    c.overall.get("mae", math.nan),
                    extra.get("mae_in_mixture", math.nan),
                    extra.get("median_ae", math.nan),
                    c.overall.get("spearman", math.nan),
                    c.overall.get("mape", math.nan),
                    c.overall.get("r2", math.nan),
                ]
            )
        maes = np.array([float(r[2]) for r in rows])
        best = int(np.nanargmin(maes)) if np.isfinite(maes).any() else None
        text.append("<p>Cross-validated prediction error (out-of-fold, all targets):</p>")
        header = [
            "law",
            "folds",
            "MAE",
            "MAE where p_i > 0",
            "median AE",
            "Spearman ρ",
            "MAPE",
            "R²",
        ]
        text.append(H.table(header, rows, best_row=best))
        text.append(
            '<p class="note">MAE where p_i &gt; 0 leaves out the cells of languages absent from '
            "a held-out mixture: there the law's r_i comes from transfer alone and can be near 0, "
            "where loss laws of the form B (r D)^-β diverge.</p>"
        )
    if own_cv is not None and own_cv.per_target:
        rows = [
            [t, m.get("mae", math.nan), m.get("spearman", math.nan), int(m.get("n", 0))]
            for t, m in own_cv.per_target.items()
        ]
        text.append(f"<p>Per language, <code>{H.esc(law.name)}</code> (cross-validated):</p>")
        text.append(H.table(["target", "MAE", "Spearman ρ", "n"], rows))
    elif not cv:
        text.append('<p class="note">No cross-validation given: no held-out predictions.</p>')
    pngs["pred_vs_obs"] = (
        figures.predicted_vs_observed(targets, observed, fitted, heldout),
        "predicted vs observed loss",
        "Predicted vs observed validation loss per language; crosses are out-of-fold (held-out) "
        "predictions from cross-validation, grey dots the fit on all runs.",
    )
    sections.append(("Prediction quality", "\n".join(text) + "\n{fig:pred_vs_obs}"))

    # -- interactions
    params = _law_params_json(law)
    body = []
    cols = [k for k in ("E", "A", "alpha", "B", "beta", "gamma", "kappa") if k in params]
    try:
        vals = [np.asarray(params[k], dtype=float).reshape(len(targets)) for k in cols]
    except (TypeError, ValueError):
        vals = []
    if vals:
        rows = [[t, *[float(v[i]) for v in vals]] for i, t in enumerate(targets)]
        body.append(f"<p>Fitted per-language parameters of <code>{H.esc(law.name)}</code>:</p>")
        body.append(H.table(["target", *cols], rows))
    if "W" in params:
        W = np.asarray(params["W"], dtype=float)
        pngs["interaction"] = (
            figures.interaction_heatmap(W, targets, law.sources_),
            "interaction matrix W",
            "Fitted transfer weights w_ij: how much a token of source j counts for target i "
            "(1 on the diagonal by definition).",
        )
        body.append("{fig:interaction}")
        kappa = params.get("kappa")
        if kappa is not None and np.any(np.asarray(kappa) != 0):
            body.append(
                f"<p>Scale sensitivity κ (w_ij(D) = w_ij (D/{float(params.get('tokens_ref', 1)):.3g})^-κ_i): "
                + ", ".join(f"{t} {k:+.3f}" for t, k in zip(targets, np.asarray(kappa, float)))
                + "</p>"
            )
    else:
        skipped["interaction"] = f"law '{law.name}' has no interaction matrix W"
    ratios = None
    try:
        ratios = observed_effective_ratios(law, runs)
    except ClimbError as exc:
        skipped["effective_ratio"] = str(exc)
    if ratios is not None:
        r_hat, r_law = ratios
        share = runs.p[:, [runs.sources.index(t) for t in targets]]
        pngs["effective_ratio"] = (
            figures.effective_ratio_scatter(targets, share, r_hat, r_law),
            "observed effective ratio against own share",
            "Observed effective ratio r̂_i (the share of the budget that, spent on language i "
            "alone, gives the observed loss) against the own share p_i; above the diagonal the "
            "other languages help, below they interfere. Dashes: the law's r = W p for the same runs.",
        )
        body.append("{fig:effective_ratio}")
        floor = int(np.sum(~np.isfinite(r_hat)))
        if floor:
            body.append(
                f'<p class="note">{floor} run/target cells have no finite r̂ (observed loss '
                "at or below the law's irreducible part).</p>"
            )
    elif "effective_ratio" not in skipped:
        skipped["effective_ratio"] = (
            f"observed effective ratios need a climb-form law (got '{law.name}')"
        )
    if body:
        sections.append(("Law parameters and cross-lingual interactions", "\n".join(body)))

    # -- allocation
    if allocation is not None:
        pngs["allocation"] = (
            figures.allocation_bars(
                allocation.sources,
                allocation.mixtures,
                recommended=allocation.recommended,
                interval=allocation.interval,
                tokens=allocation.tokens,
            ),
            "recommended mixture beside baselines",
            "Recommended proportions"
            + (
                f" with {allocation.interval_level:.0%} bootstrap intervals"
                if allocation.interval
                else ""
            )
            + " beside the baseline allocations, under the same constraints.",
        )
        sections.append(("Allocation", _allocation_html(allocation) + "\n{fig:allocation}"))
    else:
        skipped["allocation"] = "no allocation given"

    # -- verification
    if verification is not None:
        pngs["verification"] = (
            figures.realized_loss_comparison(
                verification.targets,
                verification.names,
                verification.matrix("realized"),
                verification.matrix("predicted"),
                recommended=verification.recommended,
                units=verification.units,
            ),
            "realized vs predicted loss at the target budget",
            "One model trained at the target budget per mixture (same seed and settings): "
            "realized validation loss (bars) and the law's prediction (diamonds).",
        )
        sections.append(
            (
                "Verification at the target budget",
                _verification_html(verification) + "\n{fig:verification}",
            )
        )
    else:
        skipped["verification"] = "no verification runs given (run 'climb demo' to produce them)"

    sections += list(extra_sections)
    if skipped:
        sections.append(
            (
                "Not shown",
                "<ul>"
                + "".join(
                    f"<li><code>{H.esc(k)}</code>: {H.esc(v)}</li>" for k, v in skipped.items()
                )
                + "</ul>",
            )
        )

    paths: dict[str, Path] = {}
    rendered = []
    for heading, content in sections:
        for name, (png, alt, caption) in pngs.items():
            content = content.replace("{fig:" + name + "}", H.figure(png, alt, caption, name))
        rendered.append((heading, content))
    for name, (png, _, _) in pngs.items():
        p = out / f"{name}.png"
        p.write_bytes(png)
        paths[name] = p
    page = H.page(title, rendered, subtitle=f"climb {_version()}")
    html_path = out / "report.html"
    tmp = out / ".report.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(html_path)
    return Report(html_path=html_path, figures=paths, skipped=skipped)


def _allocation_html(a: AllocationSummary) -> str:
    names = list(a.mixtures)
    header = ["mixture", *a.sources, "objective", "gap to " + a.recommended]
    rec_obj = a.objective.get(a.recommended, math.nan)
    rows = []
    for n in names:
        obj = a.objective.get(n, math.nan)
        rows.append([n, *[a.mixtures[n].get(s, 0.0) for s in a.sources], obj, obj - rec_obj])
    parts = [
        f"<p>Target budget D* = {a.tokens:.4g} tokens. Proportions (predicted objective: "
        "weighted sum of per-language losses; lower is better):</p>",
        H.table(header, rows, best_row=0),
    ]
    if a.interval:
        rows = [
            [s, a.mixtures[a.recommended].get(s, 0.0), *a.interval.get(s, (math.nan, math.nan))]
            for s in a.sources
        ]
        parts.append(
            f"<p>Bootstrap {a.interval_level:.0%} intervals of the recommended proportions:</p>"
        )
        parts.append(H.table(["source", "p", "low", "high"], rows))
    if a.predicted_loss:
        tg = list(next(iter(a.predicted_loss.values())))
        rows = [[n, *[a.predicted_loss[n].get(t, math.nan) for t in tg]] for n in a.predicted_loss]
        parts.append("<p>Predicted loss per language at D*:</p>")
        parts.append(H.table(["mixture", *tg], rows))
    if a.solver:
        parts.append(
            '<p class="note">Solver: '
            + H.esc(", ".join(f"{k}={v}" for k, v in a.solver.items()))
            + "</p>"
        )
    parts += [f'<p class="note">{H.esc(n)}</p>' for n in a.notes]
    return "\n".join(parts)


def _verification_html(v: Verification) -> str:
    win = v.recommended_wins_all
    parts = [f'<p class="verdict {"win" if win else "lose"}">{H.esc(v.verdict())}</p>']
    header = ["mixture", "realized mean", "predicted mean", *[f"{t} realized" for t in v.targets]]
    rows = [
        [m.name, m.mean(), m.mean("predicted"), *[m.realized.get(t, math.nan) for t in v.targets]]
        for m in v.mixtures
    ]
    best = int(np.argmin([m.mean() for m in v.mixtures]))
    parts.append(H.table(header, rows, best_row=best))
    cmp_rows = [
        [
            r["baseline"],
            r["baseline_mean"],
            r["recommended_mean"],
            r["delta"],
            "yes" if r["recommended_wins"] else "NO",
        ]
        for r in v.comparison()
    ]
    parts.append(
        H.table(
            [
                "baseline",
                "baseline mean",
                f"{v.recommended} mean",
                f"baseline − {v.recommended}",
                f"{v.recommended} better",
            ],
            cmp_rows,
        )
    )
    err = v.prediction_error()
    parts.append(
        f"<p>Law prediction error on these runs (a budget {v.settings.get('extrapolation', 'larger')} "
        f"than the proxies): MAE {err['mae']:.4f}, mean bias (predicted − realized) "
        f"{err['mean_bias']:+.4f} {H.esc(v.units)}.</p>"
    )
    if v.settings:
        parts.append(
            '<p class="note">Settings: ' + H.esc(json.dumps(v.settings, sort_keys=True)) + "</p>"
        )
    return "\n".join(parts)


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


def _version() -> str:
    from climb import __version__

    return __version__
