"""Reports: figures and a self-contained HTML page for a fitted law, an allocation and the demo's
verification runs (``climb report``)."""

from __future__ import annotations

from climb.report.build import (
    AllocationSummary,
    CVSummary,
    Report,
    build_report,
    heldout_errors,
    observed_effective_ratios,
)
from climb.report.verification import Verification, VerifiedMixture

__all__ = [
    "AllocationSummary",
    "CVSummary",
    "Report",
    "Verification",
    "VerifiedMixture",
    "build_report",
    "heldout_errors",
    "observed_effective_ratios",
]
