"""climb — Cross-Lingual Interaction-aware Multilingual Balancing.

Fit, from small proxy training runs, a scaling law in which each language's loss depends on an
interaction-aware effective ratio ``r = W(D) p``, and choose language proportions for a target
token budget with a two-step optimization (equalize marginal benefits, then maximize magnitude).

The public API::

    from climb import RunTable, get_law
    runs = RunTable.read("runs.csv")
    law = get_law("climb").fit(runs)
"""

from __future__ import annotations

from climb.data.runs import RunTable
from climb.errors import ClimbError, ClimbWarning

__version__ = "0.1.0"

__all__ = ["ClimbError", "ClimbWarning", "RunTable", "__version__"]
