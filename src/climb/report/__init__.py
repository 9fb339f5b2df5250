"""Reports: figures and a self-contained HTML page for a fitted law, an allocation and the demo's
verification runs (``climb report``)."""

from __future__ import annotations

from climb.report.build import Report, build_report
from climb.report.sections import (
    Figure,
    Section,
    allocation_section,
    interactions_section,
    median_abs_error,
    observed_effective_ratios,
    overview_section,
    prediction_section,
    share_errors,
    verification_section,
)

__all__ = [
    "Figure",
    "Report",
    "Section",
    "allocation_section",
    "build_report",
    "interactions_section",
    "median_abs_error",
    "observed_effective_ratios",
    "overview_section",
    "prediction_section",
    "share_errors",
    "verification_section",
]
