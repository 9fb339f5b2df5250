"""Build the report: figures (PNG files) and one self-contained HTML page embedding them.

Inputs are the library's own objects: a :class:`~climb.data.runs.RunTable`, a fitted law, and
optionally cross-validation results (:class:`~climb.evaluation.cv.CVResult` per law), an
allocation with its baselines (:class:`~climb.allocation.result.AllocationResult`) and
verification runs over seeds (:class:`~climb.verification.VerificationResult`). Each section
is one function of :mod:`climb.report.sections`. Figures:

==================  ===================================================================  =========
file                content                                                              needs
==================  ===================================================================  =========
``pred_vs_obs``     predicted vs observed loss per language, held-out predictions marked  always
``interaction``     the interaction matrix ``W`` as a heatmap                            W in law
``effective_ratio`` observed effective ratio r̂ (CLIMB.md §2) against own share p         climb law
``allocation``      recommended mixture (bootstrap intervals) beside the baselines       allocation
``verification``    realized loss per mixture over seeds; paired differences to Climb    verification
==================  ===================================================================  =========
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from climb.allocation.result import AllocationResult
from climb.data.runs import RunTable
from climb.evaluation.cv import CVResult
from climb.laws.base import Law
from climb.report import html as H
from climb.report.sections import (
    Section,
    allocation_section,
    interactions_section,
    overview_section,
    prediction_section,
    verification_section,
)
from climb.verification import VerificationResult


@dataclass
class Report:
    """A written report: the HTML page and the PNG files, by figure name."""

    html_path: Path
    figures: dict[str, Path]
    skipped: dict[str, str]


def build_report(
    runs: RunTable,
    law: Law,
    out_dir: str | Path,
    *,
    cv: Mapping[str, CVResult] | None = None,
    allocation: AllocationResult | None = None,
    baselines: Mapping[str, AllocationResult] | None = None,
    verification: VerificationResult | None = None,
    title: str = "climb report",
    notes: Sequence[str] = (),
    extra_sections: Sequence[tuple[str, str]] = (),
) -> Report:
    """Draw every figure the inputs allow, write ``report.html`` and the PNGs into ``out_dir``.

    ``cv`` maps law names to their cross-validation; the entry for ``law.name`` (if any) provides
    the held-out predictions of the first figure. ``baselines`` are the allocations compared
    with ``allocation`` (e.g. ``AllocationPlan.baselines``). Figures whose inputs are missing are
    skipped, with the reason in :attr:`Report.skipped` and on the page.
    """
    sections = [
        overview_section(runs, law, notes),
        prediction_section(runs, law, dict(cv or {})),
        interactions_section(runs, law),
    ]
    skipped: dict[str, str] = {}
    if allocation is not None:
        sections.append(allocation_section(allocation, dict(baselines or {})))
    else:
        skipped["allocation"] = "no allocation given"
    if verification is not None:
        sections.append(verification_section(verification))
    else:
        skipped["verification"] = "no verification runs given (run 'climb demo' to produce them)"
    sections += [Section(heading, content) for heading, content in extra_sections]
    for sec in sections:
        skipped.update(sec.skipped)
    if skipped:
        items = "".join(f"<li><code>{H.esc(k)}</code>: {H.esc(v)}</li>" for k, v in skipped.items())
        sections.append(Section("Not shown", f"<ul>{items}</ul>"))
    return _write(sections, Path(out_dir), title, skipped)


def _write(sections: list[Section], out: Path, title: str, skipped: dict[str, str]) -> Report:
    """Write each figure's PNG and the page with the figures embedded where marked."""
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    rendered = []
    for sec in sections:
        content = sec.html
        for name, fig in sec.figures.items():
            content = content.replace(
                "{fig:" + name + "}", H.figure(fig.png, fig.alt, fig.caption, name)
            )
            paths[name] = out / f"{name}.png"
            paths[name].write_bytes(fig.png)
        rendered.append((sec.heading, content))
    page = H.page(title, rendered, subtitle=f"climb {_version()}")
    html_path = out / "report.html"
    tmp = out / ".report.html.tmp"
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(html_path)
    return Report(html_path=html_path, figures=paths, skipped=skipped)


def _version() -> str:
    from climb import __version__

    return __version__
