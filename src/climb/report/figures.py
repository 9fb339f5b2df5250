"""The report's figures: matplotlib (Agg, no pyplot state), each function returns a PNG as bytes.

Every function takes plain arrays and names, so it can draw a simulated law as well as a fitted one.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

DPI = 110
PALETTE = [
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]
CLIMB_COLOR = "#d62728"


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _color(k: int) -> str:
    return PALETTE[k % len(PALETTE)]


def _grid(n: int, max_cols: int = 4) -> tuple[int, int]:
    cols = min(n, max_cols)
    return int(np.ceil(n / cols)), cols


def predicted_vs_observed(
    targets: Sequence[str],
    observed: np.ndarray,
    fitted: np.ndarray,
    heldout: np.ndarray | None = None,
    *,
    heldout_label: str = "held-out (out-of-fold)",
    units: str = "bits/byte",
) -> bytes:
    """Per-target scatter of predicted against observed loss.

    ``observed``, ``fitted`` (in-sample predictions) and ``heldout`` (predictions for runs the law
    did not see, e.g. cross-validation out-of-fold; NaN where none) are ``(n, T)``.
    """
    n_t = len(targets)
    rows, cols = _grid(n_t)
    fig = Figure(figsize=(3.1 * cols, 3.0 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, t in enumerate(targets):
        ax = axes[k // cols][k % cols]
        obs = observed[:, k]
        ok = np.isfinite(obs)
        if not ok.any():
            ax.set_title(f"{t} (not measured)", fontsize=10)
            continue
        # the axes span the observed losses; predictions far outside are drawn at the border
        lo, hi = float(obs[ok].min()), float(obs[ok].max())
        pad = 0.15 * (hi - lo or abs(hi) or 1.0)
        lo, hi = lo - pad, hi + pad
        series = [(fitted[:, k], "fit (in-sample)", "o", "#9a9a9a", 14)]
        if heldout is not None:
            series.append((heldout[:, k], heldout_label, "x", _color(k), 22))
        off = 0
        for pred, label, marker, color, size in series:
            m = ok & np.isfinite(pred)
            if not m.any():
                continue
            y = pred[m]
            out = (y < lo) | (y > hi)
            off += int(out.sum())
            ax.scatter(
                obs[m][~out], y[~out], s=size, marker=marker, c=color, label=label, linewidths=1
            )
            if out.any():
                ax.scatter(
                    obs[m][out],
                    np.clip(y[out], lo, hi),
                    s=size + 10,
                    marker="^",
                    facecolors="none",
                    edgecolors=color,
                    linewidths=1,
                )
        ax.plot([lo, hi], [lo, hi], color="black", lw=0.8, ls="--")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        if heldout is not None:
            m = ok & np.isfinite(heldout[:, k])
            if m.any():
                mae = float(np.mean(np.abs(heldout[m, k] - obs[m])))
                ax.text(0.04, 0.93, f"held-out MAE {mae:.4f}", transform=ax.transAxes, fontsize=8)
        if off:
            ax.text(
                0.04, 0.85, f"{off} off-scale (△ at the border)", transform=ax.transAxes, fontsize=7
            )
        ax.set_title(t, fontsize=10)
        ax.set_xlabel(f"observed ({units})", fontsize=8)
        ax.set_ylabel(f"predicted ({units})", fontsize=8)
        ax.tick_params(labelsize=7)
        if k == 0:
            ax.legend(fontsize=7, loc="lower right")
    for k in range(n_t, rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    fig.suptitle("Predicted vs observed validation loss per language", fontsize=11)
    fig.tight_layout()
    return _png(fig)


def interaction_heatmap(W: np.ndarray, targets: Sequence[str], sources: Sequence[str]) -> bytes:
    """Heatmap of the transfer weights ``W`` (targets × sources); the fixed unit entries are grey."""
    W = np.asarray(W, dtype=float)
    # columns: each target's own source in target order (a true diagonal), then pure donors;
    # an evaluation-only target (not a source) has no own column (own = -1)
    first = [list(sources).index(t) for t in targets if t in sources]
    order = first + [j for j in range(len(sources)) if j not in first]
    W = W[:, order]
    sources = [sources[j] for j in order]
    own = np.array([sources.index(t) if t in sources else -1 for t in targets], dtype=int)
    masked = W.copy()
    rows = np.flatnonzero(own >= 0)
    masked[rows, own[rows]] = np.nan
    finite = masked[np.isfinite(masked)]
    vmax = float(np.max(np.abs(finite))) if finite.size else 1.0
    vmax = vmax or 1.0
    fig = Figure(figsize=(1.0 + 0.62 * len(sources), 0.9 + 0.55 * len(targets)))
    ax = fig.subplots()
    cmap = colormaps["RdBu_r"].with_extremes(bad="#d9d9d9")
    im = ax.imshow(masked, cmap=cmap, norm=TwoSlopeNorm(vcenter=0.0, vmin=-vmax, vmax=vmax))
    ax.set_xticks(range(len(sources)), list(sources), rotation=45 if len(sources) > 8 else 0)
    ax.set_yticks(range(len(targets)), list(targets))
    ax.set_xlabel("source j (helps / hurts)")
    ax.set_ylabel("target i")
    if len(sources) <= 14:
        for i in range(len(targets)):
            for j in range(len(sources)):
                txt = "1" if j == own[i] else f"{W[i, j]:+.2f}"
                ax.text(j, i, txt, ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, label="w_ij  (> 0 transfer, < 0 interference)")
    ax.set_title("Interaction matrix W  (r = W p)", fontsize=11)
    fig.tight_layout()
    return _png(fig)


def effective_ratio_scatter(
    targets: Sequence[str], share: np.ndarray, r_hat: np.ndarray, r_law: np.ndarray | None = None
) -> bytes:
    """Observed effective ratio r̂_i against the own share p_i, one colour per language.

    Points above the diagonal: the other languages help i (r̂ > p); below: interference.
    ``share``, ``r_hat`` and ``r_law`` (the law's ``W p``) are ``(n, T)``.
    """
    fig = Figure(figsize=(6.4, 4.8))
    ax = fig.subplots()
    top = 0.0
    for k, t in enumerate(targets):
        m = np.isfinite(r_hat[:, k]) & np.isfinite(share[:, k])
        if not m.any():
            continue
        ax.scatter(share[m, k], r_hat[m, k], s=16, c=_color(k), label=t, alpha=0.8)
        if r_law is not None:
            ax.scatter(share[m, k], r_law[m, k], s=14, marker="_", c=_color(k), alpha=0.7)
        top = max(top, float(np.nanmax(r_hat[m, k])), float(share[m, k].max()))
    top = max(top, 1e-3) * 1.05
    ax.plot([0, top], [0, top], color="black", lw=0.8, ls="--", label="r̂ = p (no interaction)")
    ax.set_xlabel("own share p_i")
    ax.set_ylabel("observed effective ratio r̂_i")
    ax.set_title("Observed effective ratio vs own share", fontsize=11)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return _png(fig)


def allocation_bars(
    sources: Sequence[str],
    mixtures: Mapping[str, Mapping[str, float]],
    *,
    recommended: str = "climb",
    interval: Mapping[str, tuple[float, float]] | None = None,
    tokens: float | None = None,
) -> bytes:
    """Grouped bars: the recommended mixture (with bootstrap intervals) beside each baseline."""
    names = list(mixtures)
    width = 0.8 / max(len(names), 1)
    x = np.arange(len(sources))
    fig = Figure(figsize=(max(6.0, 1.0 + 0.9 * len(sources) * max(1, len(names)) / 3), 4.2))
    ax = fig.subplots()
    for k, name in enumerate(names):
        vals = np.array([mixtures[name].get(s, 0.0) for s in sources])
        is_rec = name == recommended
        color = CLIMB_COLOR if is_rec else PALETTE[(k + 2) % len(PALETTE)]
        pos = x - 0.4 + width * (k + 0.5)
        yerr = None
        if is_rec and interval:
            lo = np.array([interval.get(s, (v, v))[0] for s, v in zip(sources, vals)])
            hi = np.array([interval.get(s, (v, v))[1] for s, v in zip(sources, vals)])
            yerr = np.vstack([np.clip(vals - lo, 0, None), np.clip(hi - vals, 0, None)])
        ax.bar(
            pos,
            vals,
            width,
            color=color,
            label=name + (" (bootstrap CI)" if yerr is not None else ""),
            edgecolor="black" if is_rec else "none",
            linewidth=0.6,
            yerr=yerr,
            capsize=2,
        )
    ax.set_xticks(x, list(sources))
    ax.set_ylabel("proportion p_i")
    title = "Recommended mixture vs baselines"
    if tokens:
        title += f" at D* = {tokens:.3g} tokens"
    ax.set_title(title, fontsize=11)
    ax.legend(fontsize=7, ncol=min(4, len(names)), loc="upper center", bbox_to_anchor=(0.5, -0.08))
    fig.tight_layout()
    return _png(fig)


def verification_seeds(
    names: Sequence[str],
    losses: np.ndarray,
    predicted: np.ndarray,
    paired: Sequence[tuple[str, float, float, float, str]],
    *,
    recommended: str = "climb",
    level: float = 0.95,
    units: str = "bits/byte",
) -> bytes:
    """Verification over seeds: realized mean loss per mixture and paired differences.

    ``losses`` is ``(M, n_seeds)`` (mean over languages per seed, mixtures ``names``);
    ``predicted`` ``(M,)`` the law's prediction (NaN: none). Left: mean ± std (bar and thick
    line), min–max (thin line) and each seed (dots). Right: the paired difference
    ``recommended − baseline`` with its ``level`` interval per ``(baseline, mean, low, high,
    verdict)`` of ``paired``; left of 0 the recommended mixture is better.
    """
    losses = np.asarray(losses, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    fig = Figure(figsize=(12.0, 0.9 + max(3.2, 0.55 * len(names))))
    ax_l, ax_d = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.2, 1]})
    y = np.arange(len(names))[::-1]
    lo_all, hi_all = float(np.nanmin(losses)), float(np.nanmax(losses))
    pad = 0.15 * ((hi_all - lo_all) or 0.01)
    left, right = lo_all - pad, hi_all + pad
    for k, (name, yk) in enumerate(zip(names, y)):
        row = losses[k]
        color = CLIMB_COLOR if name == recommended else PALETTE[(k + 2) % len(PALETTE)]
        mean = float(row.mean())
        std = float(row.std(ddof=1)) if row.size > 1 else 0.0
        ax_l.plot([row.min(), row.max()], [yk, yk], color=color, lw=1.0)
        ax_l.plot([mean - std, mean + std], [yk, yk], color=color, lw=4.0, alpha=0.6)
        ax_l.scatter(row, np.full(row.size, yk), s=14, color=color, zorder=3, edgecolor="white")
        ax_l.scatter([mean], [yk], marker="|", s=200, color="black", zorder=4)
        pk = float(predicted[k])
        if np.isfinite(pk) and left <= pk <= right:
            ax_l.scatter([pk], [yk + 0.25], marker="D", s=16, c="black", zorder=4)
        elif np.isfinite(pk):  # far off: say where instead of squashing the seeds
            edge, ha = (right, "right") if pk > right else (left, "left")
            arrow = "▸" if pk > right else "◂"
            ax_l.text(edge, yk + 0.25, f"◆ {pk:.3f} {arrow}", fontsize=7, ha=ha, va="center")
    ax_l.set_xlim(left, right)
    ax_l.set_ylim(-0.5, len(names) - 0.3)
    ax_l.set_yticks(y, list(names))
    ax_l.set_xlabel(f"realized mean validation loss ({units})")
    ax_l.set_title(
        f"Per mixture over {losses.shape[1]} seeds: mean | ± std ━ min–max ─ seeds ● (◆ law)",
        fontsize=9,
    )
    yd = np.arange(len(paired))[::-1]
    for yk, (_, mean, lo, hi, _verdict) in zip(yd, paired):
        color = "#2ca02c" if hi < 0 else "#d62728" if lo > 0 else "#7f7f7f"
        ax_d.plot([lo, hi], [yk, yk], color=color, lw=2.0)
        ax_d.scatter([mean], [yk], color=color, zorder=3, s=22)
    ax_d.axvline(0.0, color="black", lw=0.8, ls="--")
    ax_d.set_yticks(yd, [f"{p[0]}\n{p[4]}" for p in paired], fontsize=8)
    ax_d.set_xlabel(f"{recommended} − baseline ({units}); < 0: {recommended} better")
    ax_d.set_title(f"Paired difference over seeds, {level:.0%} t-interval", fontsize=9)
    if len(paired):
        ax_d.set_ylim(-0.7, len(paired) - 0.3)
    fig.suptitle("Verification at the target budget", fontsize=11)
    fig.tight_layout()
    return _png(fig)
