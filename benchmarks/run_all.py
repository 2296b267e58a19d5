"""`make bench`: run every benchmark in this folder, one after another, and print its figures.

Benchmarks measure speed and memory targets on the machine at hand; they are not tests.
The exit code is non-zero when a benchmark reports a missed target.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# The export benchmark at the size (1,000,000 users of 550 friends) builds a
# store of about 10 GB and takes over an hour today: `make bench` runs it at a tenth of
# that; `python benchmarks/export_scale.py` runs the full size.
ARGS = {"export_scale.py": ["--users", "100000"]}
# Benchmarks run a second time with other arguments: the fleet on the local
# BigQuery-compatible server too (its claims are statements of seconds there).
AGAIN = {"fleet.py": ["--store", "bigquery"]}
# Not benchmarks: the upstream and the reference clients collector.py compares against.
HELPERS = frozenset(
    {"kernel_counts.py", "prerendered.py", "reference_aiohttp.py", "reference_streams.py"}
)


def main() -> int:
    failed = []
    for script in sorted(HERE.glob("*.py")):
        if script.name == Path(__file__).name or script.name in HELPERS:
            continue
        runs = [ARGS.get(script.name, [])]
        if script.name in AGAIN:
            runs.append(AGAIN[script.name])
        for args in runs:
            name = " ".join([script.name, *args])
            print(f"== {name}", flush=True)
            code = subprocess.run([sys.executable, str(script), *args], check=False).returncode
            if code:
                failed.append(name)
    if failed:
        print(f"missed targets: {', '.join(failed)}")
        return 1
    print("every benchmark met its targets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
