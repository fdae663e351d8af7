"""Instructions each mode costs on the torch-free workload, counted by valgrind's callgrind.

Wall times on a shared machine move by tens of percent from run to run; the instructions a process runs
do not. This counts them for the tracer's modes and viztracer's, to judge a change where timings are too
noisy to. It is no substitute for the timed targets (benchmarks/RESULTS.md): an instruction count leaves
out what memory costs (page faults, cache misses), which is much of building a tree.

Each mode runs in a process of its own under `valgrind --tool=callgrind`: the workload (benchmarks/core.py's
packages) once untraced as a warm-up, then once more, in the mode. A mode's count is its process's less
the count of the process whose second run is untraced too. Every process imports the same modules
(viztracer too, where installed) and runs with the same hash seed, so the rest is equal.

    recording      tracer's Recording, start..stop (viztracer's region), with argument summaries
    recording, no args
    block          tracer.trace's whole with-block, the tree built (first use of t.root inside)
    block, no args
    viztracer      VizTracer(include_files=[benchinc], ignore_c_function=True): start..stop

    python benchmarks/instructions.py [--python PY]... [--steps N] [--json]

Needs valgrind on PATH. About a minute a process here; two at a time.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_STEPS = 2_600  # about 55,000 calls in benchinc
MODES = ("untraced", "recording", "recording, no args", "block", "block, no args", "viztracer")


def child(mode, steps, directory):
    """One process's work: the workload untraced, then once in `mode`; prints the calls benchinc made."""
    for path in (ROOT, HERE):
        if path not in sys.path:
            sys.path.insert(0, path)
    import functools

    import core
    import tracer
    from tracer.record import Recording
    VizTracer, _, _ = core.load_viztracer()  # imported in every process, so that each pays the same
    bench = core.make_packages(directory)
    workload = functools.partial(bench.run, steps)
    workload()
    if mode == "untraced":
        workload()
    elif mode.startswith("recording"):
        rec = Recording(include=(core.INCLUDED,), args=not mode.endswith("no args"))
        rec.start()
        workload()
        rec.stop()
    elif mode.startswith("block"):
        with tracer.trace(include=(core.INCLUDED,), args=not mode.endswith("no args")) as t:
            workload()
        _ = t.root  # the tree's first use
    elif mode == "viztracer":
        if VizTracer is None:
            raise SystemExit("viztracer is not installed")
        viz = VizTracer(tracer_entries=1_000_000, verbose=0, register_global=False,
                        include_files=[os.path.join(directory, core.INCLUDED) + os.sep], ignore_c_function=True)
        viz.start()
        workload()
        viz.stop()
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    sys.stdout.flush()
    os._exit(0)  # no interpreter teardown: it would count the freeing of whatever the mode made


def count(python, mode, steps):
    """Instructions of one process running `mode` under callgrind."""
    with tempfile.TemporaryDirectory(prefix="tracer-instr-") as tmp:
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={os.path.join(tmp, 'out')}",
                   python, os.path.abspath(__file__), "--child", mode, "--steps", str(steps),
                   "--directory", os.path.join(tmp, "pkg")]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
        found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
        if done.returncode or not found:
            tail = done.stderr.strip().splitlines()[-3:]
            raise RuntimeError(f"{mode} on {python}: valgrind exited {done.returncode}: {tail}")
        return int(found.group(1))


def calls_made(python, steps):
    """The calls benchinc makes in one run (the tracer's calls), counted without valgrind."""
    script = (f"import sys; sys.path[:0] = [{ROOT!r}, {HERE!r}]; import core, tempfile; "
              f"b = core.make_packages(tempfile.mkdtemp()); print(core.count_calls(b.run, {steps})[core.INCLUDED])")
    done = subprocess.run([python, "-c", script], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


def measure(python, steps, jobs):
    version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                             text=True, check=True).stdout.strip()
    has_viz = subprocess.run([python, "-c", "import viztracer"], capture_output=True).returncode == 0
    modes = [m for m in MODES if m != "viztracer" or has_viz]
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        counts = dict(zip(modes, pool.map(lambda m: count(python, m, steps), modes)))
    base = counts["untraced"]
    extra = {m: counts[m] - base for m in modes if m != "untraced"}
    for args in ("", ", no args"):
        extra["build" + args] = extra["block" + args] - extra["recording" + args]
    return {"python": version, "steps": steps, "calls": calls_made(python, steps), "instructions": counts,
            "above_untraced": extra, "viztracer": has_viz}


def report(results):
    lines = []
    for r in results:
        lines += [f"Python {r['python']}: {r['calls']:,} calls in benchinc, untraced "
                  f"{r['instructions']['untraced'] / 1e6:,.1f} M instructions (two runs and the process).", "",
                  "| mode | instructions above untraced | per call | x viztracer's |", "|---|---:|---:|---:|"]
        viz = r["above_untraced"].get("viztracer")
        for mode, n in r["above_untraced"].items():
            ratio = f"{n / viz:.2f}" if viz and mode != "viztracer" and not mode.startswith("build") else ""
            lines.append(f"| {mode} | {n / 1e6:,.1f} M | {n / r['calls']:,.0f} | {ratio} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--python", action="append", help="a Python to count on (repeatable; default: this one)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"workload steps (default {DEFAULT_STEPS:,})")
    p.add_argument("--jobs", type=int, default=max(1, min(2, os.cpu_count() or 1)), help="processes at once")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--directory", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args.steps, args.directory)
    if args.steps < 1:
        p.error("--steps must be 1 or more")
    if shutil.which("valgrind") is None:
        p.error("valgrind is not on PATH: install it (apt install valgrind) to count instructions")
    results = [measure(python, args.steps, args.jobs) for python in (args.python or [sys.executable])]
    print(json.dumps(results, indent=1) if args.json else report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
