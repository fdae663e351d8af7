"""Interleaved timing: every mode runs once per round (A B C A B C ...), so drift hits them alike.

Torch-free and standard-library only: the torch-free benchmark runs it on interpreters without torch.
"""

from __future__ import annotations

import gc
import statistics
import time

# What a run is timed with: wall time by default. On a busy machine `time.thread_time` (the CPU time of
# this thread) is steadier; every workload here runs in one thread.
clock = time.perf_counter


def use_cpu_time(on: bool = True):
    global clock
    clock = time.thread_time if on else time.perf_counter


def interleave(workload, modes, repeat, warmup=1):
    """Time `workload()` under each mode, `repeat` rounds, modes in turn within a round.

    modes: {name: run} where run(workload) runs the workload once under that mode and returns a small
    dict of what it recorded (kept from the last round: no large objects, they would slow the collector
    for the modes after it). A run that times its own region (leaving out work done after recording,
    such as parsing a buffer) puts the seconds in that dict as "seconds"; otherwise the whole call is timed.
    Returns {name: {"times": [...], "median": s, "fastest": s, "spread": interquartile range / median, "last": dict,
    "medians": {key: median over the rounds of each other number a run returned ending in "_s"}}}.
    """
    results = {name: {"times": [], "last": None, "parts": {}} for name in modes}
    for name, run in modes.items():  # warm-up: imports, caches, first-call costs; not timed
        for _ in range(warmup):
            results[name]["last"] = run(workload) or {}
    for _ in range(repeat):
        for name, run in modes.items():
            gc.collect()
            t0 = clock()
            recorded = run(workload) or {}
            elapsed = clock() - t0
            results[name]["times"].append(recorded.get("seconds", elapsed))
            results[name]["last"] = recorded
            for key, value in recorded.items():
                if key.endswith("_s") and isinstance(value, float):
                    results[name]["parts"].setdefault(key, []).append(value)
            del recorded
    for entry in results.values():
        entry["median"] = statistics.median(entry["times"])
        entry["fastest"] = min(entry["times"])
        entry["spread"] = spread(entry["times"])
        entry["medians"] = {key: statistics.median(values) for key, values in entry.pop("parts").items()}
    return results


def spread(times):
    """The interquartile range over the median: how far apart the middle half of the runs lie."""
    if len(times) < 2:
        return None
    q1, _, q3 = statistics.quantiles(times, n=4)
    return (q3 - q1) / statistics.median(times)


def overhead(median, untraced):
    """Traced / untraced - 1: 0.5 means the traced run took half as long again."""
    return median / untraced - 1
