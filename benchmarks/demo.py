"""Wall time of ``climb demo`` per stage (the numbers behind "default ≤ 20 min, --quick ≤ 3 min").

Runs :func:`climb.demo.run_demo` into a fresh temporary directory (nothing resumed) and prints
the time of each stage, the proxy and verification training throughput, and the headline
results (cross-validated MAE of each law, the verification verdict).

    python benchmarks/demo.py            # --quick settings (a few minutes at most)
    python benchmarks/demo.py --full     # the default demo (about 20 minutes on 2 cores)
    python benchmarks/demo.py --corpus DIR
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import sys
import tempfile
from pathlib import Path

from climb.demo import run_demo


def _train_stats(db: Path) -> tuple[int, float]:
    """(runs, summed per-run wall seconds) of a run store."""
    con = sqlite3.connect(db)
    try:
        n, wall = con.execute("SELECT COUNT(*), COALESCE(SUM(wall_s), 0) FROM runs").fetchone()
    finally:
        con.close()
    return int(n), float(wall)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="the default demo instead of --quick")
    ap.add_argument("--corpus", default=None, help="corpus directory (default: the embedded one)")
    ap.add_argument("--keep", default=None, help="write into this directory instead of a temp one")
    args = ap.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {load:.1f} at start")
    print(f"mode: {'default (full)' if args.full else '--quick'}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.keep) if args.keep else Path(tmp) / "demo"
        res = run_demo(out, quick=not args.full, corpus=args.corpus, progress=False)
        print(f"{'stage':<14}{'seconds':>10}")
        for stage, sec in res.timings.items():
            print(f"{stage:<14}{sec:>10.1f}")
        for name in ("runs.db", "verify.db"):
            n, wall = _train_stats(out / name)
            print(f"{name}: {n} runs, {wall:.0f} s of training summed over runs")
        print()
        print("\n".join(res.summary_lines()))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.1f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
