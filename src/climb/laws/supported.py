"""The support-aware term for the baseline laws (``msl``, ``dml``, ``regression``).

The climb family carries the term inside its parameters (:mod:`climb.laws.climb.support`). The
baselines get the same term on top of their own prediction ``L^law``, so that every law is
compared with the same treatment of languages a run leaves out or holds at a trace share:

    L_i = (1 − s_i) · min(L_i^law, L_0) + s_i · G(p, D)      where s_i > 0,   L_i^law elsewhere

with the gate ``s`` and the unsupported loss ``G`` of :class:`~climb.laws.climb.support.SupportTerm`,
``G`` fitted on the law's own in-sample predictions after its fit. Without a profile
(``support=None``, the default) a law is exactly as before.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from climb.data.runs import RunTable
from climb.laws.climb.params import own_columns
from climb.laws.climb.support import (
    SEEN_COUNT,
    TRACE_TOKENS,
    UNSEEN_GATE,
    SupportOptions,
    SupportTerm,
    fit_support,
)


class SupportedLaw(SupportOptions):
    """Mixin of a :class:`~climb.laws.base.Law` with the optional support-aware term.

    The law's ``__init__`` stores ``support``, ``support_count``, ``support_gate``,
    ``support_trace`` and ``support_ceiling`` (keyword hyper-parameters,
    :data:`SUPPORT_DEFAULTS`); its ``fit`` ends with :meth:`_fit_support`; its ``_predict``
    returns :meth:`_supported` of its own prediction; its JSON adds :meth:`_support_json` and
    reads it back with :meth:`_load_support`.
    """

    support_: SupportTerm | None = None

    def _fit_support(self, runs: RunTable, plain: np.ndarray) -> None:
        """Fit ``G`` on ``plain`` (the law's own predictions of ``runs``, ``(n, T)``)."""
        term = self._support_term(runs)
        self.support_ = None if term is None else fit_support(term, plain, runs)

    def _supported(self, plain: np.ndarray, p: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        return plain if self.support_ is None else self.support_.apply(plain, p, tokens)

    def _support_json(self, sources: list[str], targets: list[str]) -> dict[str, Any]:
        return {} if self.support_ is None else {"support": self.support_.to_json(sources, targets)}

    def _load_support(self, params: dict[str, Any], sources: list[str], targets: list[str]) -> None:
        self.support_ = None
        if "support" in params:
            own = own_columns(sources, targets)
            self.support_ = SupportTerm.from_json(
                params["support"], sources, targets, own, self.name
            )
        self._restore_support(self.support_, sources, targets)


SUPPORT_DEFAULTS: dict[str, Any] = {
    "support": None,
    "support_count": SEEN_COUNT,
    "support_gate": UNSEEN_GATE,
    "support_trace": TRACE_TOKENS,
    "support_ceiling": True,
}
"""The support hyper-parameters' defaults (as for the climb family)."""

__all__ = ["SUPPORT_DEFAULTS", "SupportedLaw"]
