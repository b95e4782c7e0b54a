"""Timing shared by the benchmarks: medians, and runs alternating with a reference so that the
machine's drift affects both alike."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_time(fn: Callable[[], object], repeats: int = 7) -> float:
    """Median seconds of fn over ``repeats`` runs, after one warm-up run."""
    fn()  # warm up: page faults, lazy initialisation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def alternating(
    fn: Callable[[], object], ref: Callable[[], object], repeats: int = 7
) -> tuple[list[float], list[float]]:
    """Seconds of fn and of ref, run in turns after a warm-up of each."""
    fn()
    ref()
    fn_times, ref_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        ref()
        ref_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        fn()
        fn_times.append(time.perf_counter() - start)
    return fn_times, ref_times
