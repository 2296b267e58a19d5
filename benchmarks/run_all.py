"""`make bench`: run every benchmark in this folder, one after another, and print its figures.

Benchmarks measure speed and memory targets on the machine at hand; they are not tests.
The exit code is non-zero when a benchmark reports a missed target.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    failed = []
    for script in sorted(HERE.glob("*.py")):
        if script.name == Path(__file__).name:
            continue
        print(f"== {script.name}", flush=True)
        code = subprocess.run([sys.executable, str(script)], check=False).returncode
        if code:
            failed.append(script.name)
    if failed:
        print(f"missed targets: {', '.join(failed)}")
        return 1
    print("every benchmark met its targets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
