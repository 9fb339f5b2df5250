"""The ``climb`` command line: a verb per stage, each a thin layer over the library API.

Every sub-module in ``climb.cli`` registers its verbs with ``register(subparsers)``. A
:class:`~climb.errors.ClimbError` becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

from climb import __version__
from climb.errors import ClimbError

VERB_MODULES = [
    "climb.cli.data",
    "climb.cli.laws",
    "climb.cli.metrics",
    "climb.cli.allocate",
    "climb.cli.corpus",
    "climb.cli.proxy",
    "climb.cli.verify",
    "climb.cli.demo",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="climb",
        description="Cross-Lingual Interaction-aware Multilingual Balancing: fit mixture laws "
        "from proxy runs and allocate language proportions.",
    )
    parser.add_argument("--version", action="version", version=f"climb {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name in VERB_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _format_warning(
    message: Warning | str, category: type[Warning], *_: object, **__: object
) -> str:
    return f"climb: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    warnings.formatwarning = _format_warning  # type: ignore[assignment]
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ClimbError as exc:
        print(f"climb: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "climb: interrupted; finished work is saved, rerun the same command to resume",
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
