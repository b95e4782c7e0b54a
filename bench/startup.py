"""Start-up cost of the CLI, against importing the references it must not need.

Prints the median wall time of N fresh processes for each command, and ratios.
Run: make bench (or .venv/bin/python bench/startup.py).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNS = 9
BIN = Path(sys.executable).parent

CASES = {
    "python -c pass (interpreter floor)": [sys.executable, "-c", "pass"],
    "python -c 'import dtlab'": [sys.executable, "-c", "import dtlab"],
    "dtlab formats": [str(BIN / "dtlab"), "formats"],
    "dtlab show 0.1 --as bf16": [str(BIN / "dtlab"), "show", "0.1", "--as", "bf16"],
    "dtlab model memory (embedded MiniLM, header only)": [str(BIN / "dtlab"), "model", "memory"],
    "python -c 'import torch' (reference)": [sys.executable, "-c", "import torch"],
    "python -c 'import ml_dtypes' (reference)": [sys.executable, "-c", "import ml_dtypes"],
}


def median_seconds(cmd: list[str]) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    results = {name: median_seconds(cmd) for name, cmd in CASES.items()}
    floor = results["python -c pass (interpreter floor)"]
    torch_t = results["python -c 'import torch' (reference)"]
    print(f"start-up, median of {RUNS} fresh processes")
    print(f"{'command':52} {'ms':>8} {'vs import torch':>16}")
    for name, t in results.items():
        print(f"{name:52} {t * 1000:8.1f} {t / torch_t:15.2f}x")
    above = (results["dtlab formats"] - floor) * 1000
    print(f"dtlab formats above the interpreter floor: {above:.1f} ms")
    memory = results["dtlab model memory (embedded MiniLM, header only)"] - results["dtlab formats"]
    print(f"dtlab model memory above dtlab formats: {memory * 1000:.1f} ms")


if __name__ == "__main__":
    main()
