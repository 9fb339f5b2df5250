"""Errors that are part of climb's interface.

A :class:`ClimbError` is a user mistake (a bad file, a wrong option, an infeasible constraint).
Its message is one line that names the file, row, column or option at fault and what to change;
the CLI prints it as ``climb: error: <message>`` and exits with status 2, never a traceback.
Anything else that escapes is a bug in climb.
"""

from __future__ import annotations


class ClimbError(Exception):
    """A user-facing error: one line, naming what is wrong and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class ClimbWarning(UserWarning):
    """A problem worth reporting that does not stop the work (e.g. renormalized proportions)."""
