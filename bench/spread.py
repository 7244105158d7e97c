"""Run a bench several times and report the spread of every figure it prints.

On a shared machine one run's figures move with everyone else's work: the
spread (lowest, median, highest of N runs) says how far to trust one figure.
Each bench ends with a ``FIGURES {json}`` line (bench/loadgen.py); the runs'
full output goes to the log so the figures can be read in context.

    .venv/bin/python bench/spread.py [--runs 3] [--log FILE] bench/bench_engine.py --quick
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

from loadgen import figures_in

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--log", type=Path, default=None, help="append every run's output here")
    parser.add_argument("bench", help="the bench script, e.g. bench/bench_ui.py")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the bench's own options")
    args = parser.parse_args()

    runs: list[dict[str, float]] = []
    for n in range(args.runs):
        result = subprocess.run(
            [sys.executable, args.bench, *args.args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        output = result.stdout + result.stderr
        if args.log is not None:
            with args.log.open("a") as log:
                log.write(f"==== {args.bench} {' '.join(args.args)}: run {n + 1}\n{output}\n")
        if result.returncode != 0:
            sys.exit(f"run {n + 1} failed:\n{output}")
        runs.append(figures_in(output))
        print(f"run {n + 1} of {args.runs} done", file=sys.stderr)

    print(f"{args.bench} {' '.join(args.args)}: {args.runs} runs")
    print(f"  {'figure':<30}{'lowest':>12}{'median':>12}{'highest':>12}")
    for key in sorted(runs[0]):
        values = [run[key] for run in runs if key in run]
        print(f"  {key:<30}{min(values):12.4g}{statistics.median(values):12.4g}{max(values):12.4g}")


if __name__ == "__main__":
    main()
