"""Verification: train candidate mixtures at the target budget with several seeds, and compare
the recommended mixture with each baseline by paired differences over seeds.

:func:`verify_mixtures` trains (resumable, through :func:`climb.proxy.sweep.run_sweep`);
:class:`VerificationResult` holds the realized losses, their mean ± spread per mixture and the
paired t-intervals (:func:`paired_difference`), and reads/writes ``verification.json``.
"""

from __future__ import annotations

from climb.verification.result import (
    INTERVAL_METHOD,
    LOSES,
    TIES,
    VERDICTS,
    WINS,
    MixtureOutcome,
    PairedComparison,
    VerificationResult,
    paired_difference,
)
from climb.verification.run import (
    allocation_mixtures,
    clean_mixture,
    mixture_tag,
    verification_plan,
    verify_mixtures,
)

__all__ = [
    "INTERVAL_METHOD",
    "LOSES",
    "TIES",
    "VERDICTS",
    "WINS",
    "MixtureOutcome",
    "PairedComparison",
    "VerificationResult",
    "allocation_mixtures",
    "clean_mixture",
    "mixture_tag",
    "paired_difference",
    "verification_plan",
    "verify_mixtures",
]
