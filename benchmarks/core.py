"""The torch-free benchmark: the tracer's Python-layer recorders against viztracer, on any CPython 3.10+.

Needs only the standard library and the `tracer` package of this repository (found from the script's
own place: the repository root is the parent of benchmarks/); viztracer (1.1.1) when installed,
else its modes are left out and the JSON says why. torch is neither needed nor imported.

The workload has the shape of the torch ones: many small calls in an included package and many in an
excluded one. Two small packages are generated into a temporary directory at start: `benchinc`
(included: functions calling each other 3-6 levels deep, classes with methods and properties, a
generator, a dict subclass whose C methods belong to it, an exception now and then, builtins such as
len, isinstance, dict.get, list.append) and `benchexc` (excluded: helpers that benchinc calls, one of
which calls back into benchinc). The timed call is `benchinc.run(steps)`, sized to make about
`--calls` Python calls, about half in each package.

Modes, interleaved (timing.interleave: A B C A B C ...):

    untraced                     the workload called directly
    tracer python                with tracer.trace(include=("benchinc",)): the default backend
                                 (sys.monitoring on 3.12+, setprofile on 3.10/3.11)
    tracer python, no args       the same with args=False: no argument summaries, as viztracer keeps none
    tracer python, Python callbacks   the same with the tracer's Python callbacks, where the C ones are built
    tracer python, memory new    the same after tracer.release_memory() (untimed): the event log and the
                                 tree in pages new from the system, as in a process's first trace; the
                                 other modes start in the memory their last trace kept (spare_memory())
    tracer python+builtin        the same with layers=("python", "builtin")
    tracer python (setprofile)   3.12+ only: backend="setprofile", for comparison
    viztracer                    VizTracer(include_files=[benchinc's folder], ignore_c_function=True):
                                 start, workload, stop (parsing is not timed)
    viztracer +C                 the same recording C functions called from benchinc's files

A tracer mode's time is the whole `with` block (recording, then building the call tree when it ends);
its `record_*` figures are the recording alone (start to stop, the trace's own `duration_ns`), the
part that compares with viztracer's start..stop. Events: the tracer's raw events (a call and its
return are two); viztracer's are two per entry it kept (each entry is one call, begun and ended).
viztracer's include_files leaves out everything below a frame outside them, so it keeps fewer calls
than the tracer: not the benchinc calls that benchexc makes (the tracer hangs those under their
nearest included caller). The builtin layer keeps only C functions of the included package (here the
C methods of a dict subclass), viztracer +C every C function called from its files.

    python benchmarks/core.py [--repeat N] [--calls N] [--smoke] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import importlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import textwrap
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for _path in (ROOT, HERE):  # the tracer from this source tree; timing.py as a sibling module
    if _path not in sys.path:
        sys.path.insert(0, _path)

import timing  # noqa: E402
import tracer  # noqa: E402
from tracer.record import _choose_backend  # noqa: E402
from tracer.record import monitoring as monitoring_backend  # noqa: E402
from tracer.record import setprofile as setprofile_backend  # noqa: E402

INCLUDED, EXCLUDED = "benchinc", "benchexc"
DEFAULT_CALLS = 150_000
SMOKE_CALLS = 10_000
DEFAULT_REPEAT = 21  # the targets compare each mode's fastest run: the more runs, the steadier that is

# -- the workload ------------------------------------------------------------------------------

SOURCES = {
    f"{INCLUDED}/__init__.py": """
        from .core import run
    """,
    f"{INCLUDED}/shapes.py": """
        from {exc} import helpers


        class Point:
            __slots__ = ("x", "y")

            def __init__(self, x, y):
                self.x = x
                self.y = y

            @property
            def norm2(self):
                return self.x * self.x + self.y * self.y

            def moved(self, dx, dy):
                return Point(self.x + dx, self.y + dy)

            def key(self):
                h = helpers.digest(self.x, self.y)
                for c in (self.x, self.y, h):
                    h = (h * 31 + c) & 0xFFFF
                return (h & 7, (h >> 3) & 7)


        class Bag:
            def __init__(self):
                self.items = []
                self.index = {}

            def add(self, key, value):
                self.items.append(value)
                self.index[key] = self.index.get(key, 0) + 1
                if len(self.items) > 64:
                    self.items = sorted(self.items[-8:])

            @property
            def size(self):
                return len(self.index)


        class Counts(dict):
            '''A dict subclass: its C methods (get, setdefault) are the included package's own.'''

            def bump(self, key):
                self[key] = self.get(key, 0) + 1
                return self.setdefault(key, 0)
    """,
    f"{INCLUDED}/util.py": """
        from {exc} import helpers


        def combine(p, q, bag):
            w = weight(p, q)
            bag.add(p.key(), w)
            return w


        def weight(p, q):
            a = helpers.scale(p.norm2, 3)
            b = helpers.clamp(q.norm2, 0, 1000)
            return mix(a, b)


        def mix(a, b):
            h = helpers.digest(a, b)
            return leaf(a) + leaf(abs(b)) + (h & 1)


        def leaf(v):
            return v if isinstance(v, int) else int(v)


        def classify(values):
            return helpers.apply(tag, values)  # excluded code calling back into included code


        def tag(v):
            return "even" if helpers.parity(v) == 0 else "odd"


        def pairs(items):
            for x in items:
                yield x


        def fail(i):
            raise ValueError(i)
    """,
    f"{INCLUDED}/core.py": """
        from . import shapes, util
        from {exc} import store


        def step(i, bag, counts, reg):
            p = shapes.Point(i, i + 1)
            q = p.moved(1, 2)
            w = util.combine(p, q, bag)
            tags = util.classify([w, i, i + 1])
            counts.bump(tags[0])
            reg.put(tags[1], w)
            total = 0
            for v in util.pairs((w, i)):
                total += v
            names = []
            for k in range(12):
                total = (total * 33 + k * i) & 0xFFFFF
                if k & 3 == 0:
                    names.append(tags[k & 1])
            total += len(",".join(names))
            if i % 64 == 0:
                try:
                    util.fail(i)
                except ValueError:
                    total += 1
            return total + len(tags)


        def run(steps):
            bag = shapes.Bag()
            counts = shapes.Counts()
            reg = store.Registry()
            acc = 0
            for i in range(steps):
                acc += step(i, bag, counts, reg)
            return acc + bag.size + reg.size() + len(counts)
    """,
    f"{EXCLUDED}/__init__.py": "",
    f"{EXCLUDED}/helpers.py": """
        def scale(v, k):
            return _mul(_sign(v), k) * abs(v)


        def _mul(a, b):
            return a * b


        def _sign(v):
            return -1 if v < 0 else 1


        def clamp(v, lo, hi):
            return _bound(_bound(v, lo, max), hi, min)


        def _bound(v, limit, pick):
            return pick(v, limit)


        def apply(fn, values):
            out = []
            for v in values:
                out.append(fn(check(v)))
            return out


        def check(v):
            return v if isinstance(v, int) else 0


        def digest(*values):
            h = 17
            for v in values:
                for k in (3, 5, 7, 11, 13, 17):
                    h = (h * k + v) & 0xFFFFF
            return h


        def parity(v):
            r = v
            for _ in range(4):
                r = (r * 5 + 1) & 0xFFFF
            return (v + r) % 2
    """,
    f"{EXCLUDED}/store.py": """
        class Registry:
            def __init__(self):
                self.data = {}

            def put(self, key, value):
                self.data[key] = self._merge(self.data.get(key), value)
                self._trim()

            def _merge(self, old, new):
                return new if old is None else (old + new) & 0xFFFF

            def _trim(self):
                if len(self.data) > 8:
                    self.data.clear()

            def size(self):
                return len(self.data)
    """,
}


def make_packages(directory):
    """Write benchinc and benchexc under `directory`, import them from there; returns benchinc."""
    for relpath, text in SOURCES.items():
        path = os.path.join(directory, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(text).lstrip("\n").replace("{exc}", EXCLUDED))
    for name in list(sys.modules):  # a second main() in one process: import the fresh copies
        if name.partition(".")[0] in (INCLUDED, EXCLUDED):
            del sys.modules[name]
    sys.path.insert(0, directory)
    importlib.invalidate_caches()
    return importlib.import_module(INCLUDED)


def count_calls(run, steps):
    """What one run(steps) does, counted with a plain profile function (not timed).

    python calls by top-level package (generator resumptions count as calls, as a profiler sees them),
    and the C calls made from benchinc's code.
    """
    counts = {INCLUDED: 0, EXCLUDED: 0, "other": 0, "c_from_included": 0}
    packages = (INCLUDED, EXCLUDED)

    def profile(frame, event, arg):
        if event == "call":
            top = (frame.f_globals.get("__name__") or "").partition(".")[0]
            counts[top if top in packages else "other"] += 1
        elif event == "c_call":
            if (frame.f_globals.get("__name__") or "").partition(".")[0] == INCLUDED:
                counts["c_from_included"] += 1

    sys.setprofile(profile)
    try:
        run(steps)
    finally:
        sys.setprofile(None)
    return counts


# -- the modes ---------------------------------------------------------------------------------

@contextlib.contextmanager
def pure_python():
    """The tracer's Python callbacks in place of its C ones, for the block."""
    saved = setprofile_backend.USE_C, monitoring_backend.USE_C
    setprofile_backend.USE_C = monitoring_backend.USE_C = False
    try:
        yield
    finally:
        setprofile_backend.USE_C, monitoring_backend.USE_C = saved


def c_callbacks_built() -> bool:
    """Does the default backend of this Python record with C callbacks?"""
    return bool(setprofile_backend.USE_C if sys.version_info < (3, 12) else monitoring_backend.USE_C)


def tracer_mode(record_times, python_callbacks=False, memory_new=False, **options):
    """A run under tracer.trace(include=benchinc, **options): the whole with-block is timed.
    python_callbacks: record with the Python callbacks, not the C ones. memory_new: give back the memory the
    tracer keeps from its last trace first (tracer.release_memory(), untimed), as for a process's first trace."""
    trace = tracer.trace

    def traced(workload):
        with trace(include=(INCLUDED,), **options) as t:
            workload()
        return t

    if python_callbacks:
        def traced(workload, traced=traced):  # noqa: F811
            with pure_python():
                return traced(workload)

    def run(workload):
        if memory_new:
            tracer.release_memory()
        t0 = timing.clock()  # the mode's own timing, so that giving the memory back stays out of it
        t = traced(workload)
        seconds = timing.clock() - t0
        meta = t.meta
        record_times.append(meta["duration_ns"] / 1e9)
        return {"events": meta["events"], "seconds": seconds}

    def detail(workload):
        t = traced(workload)
        calls = t.calls
        c_calls = sum(1 for call in calls if call.kind == "builtin")
        return {"events": t.meta["events"], "calls": len(calls), "python_calls": len(calls) - c_calls,
                "c_calls": c_calls, "backend": t.meta["backend"], "notes": t.meta["notes"]}

    return run, detail


def viztracer_mode(VizTracer, folder, entries, ignore_c):
    """start, workload, stop on one VizTracer made up front; its buffer emptied after each run."""
    profile, thread_profile = sys.getprofile(), threading.getprofile()
    viz = VizTracer(tracer_entries=entries, verbose=0, register_global=False, include_files=[folder],
                    ignore_c_function=ignore_c)
    # On 3.10/3.11 making a VizTracer installs its idle profile function (and a threading one) until its
    # first stop(): put back what was there, so that the other modes (untraced too) run without it.
    sys.setprofile(profile)
    threading.setprofile(thread_profile)

    def run(workload):
        viz.start()
        workload()
        viz.stop()
        viz.clear()
        return None

    def detail(workload):
        viz.clear()
        viz.start()
        workload()
        viz.stop()
        n = viz.parse()  # parse() empties the buffer
        python = sum(1 for e in viz.data["traceEvents"] if e.get("ph") == "X" and e["name"].endswith(")"))
        overflow = viz.data["viztracer_metadata"]["overflow"]
        viz.data = {}
        # a Python entry is named "func (file:line)", a C one "builtins.len"
        return {"events": 2 * n, "calls": n, "python_calls": python, "c_calls": n - python, "overflow": overflow}

    return run, detail


def load_viztracer():
    try:
        import viztracer
        from viztracer import VizTracer
    except Exception as error:  # not installed, or no wheel for this Python
        return None, None, f"{type(error).__name__}: {error}"
    return VizTracer, getattr(viztracer, "__version__", "?"), None


# -- running -----------------------------------------------------------------------------------

def measure(repeat=DEFAULT_REPEAT, calls=DEFAULT_CALLS, warmup=1):
    tmp = tempfile.mkdtemp(prefix="tracer-bench-")
    try:
        bench = make_packages(tmp)
        folder = os.path.join(tmp, INCLUDED) + os.sep
        per_step = count_calls(bench.run, 64)
        per_step_calls = (per_step[INCLUDED] + per_step[EXCLUDED]) / 64
        steps = max(1, round(calls / per_step_calls))
        counted = count_calls(bench.run, steps)

        # A partial, not a Python function: viztracer leaves out whatever runs below a frame outside its
        # include_files, so no frame of this file may stand between its start() and benchinc.run.
        workload = functools.partial(bench.run, steps)

        def untraced(workload):
            workload()  # nothing returned: timing.interleave takes a run's result for a small dict

        modes, details, record_times = {"untraced": untraced}, {}, {}

        def add_tracer(name, **options):
            times = record_times[name] = []
            modes[name], details[name] = tracer_mode(times, **options)

        add_tracer("tracer python")
        add_tracer("tracer python, no args", args=False)
        if c_callbacks_built():  # what the C callbacks save, and what the memory kept between traces saves
            add_tracer("tracer python, Python callbacks", python_callbacks=True)
            add_tracer("tracer python, memory new", memory_new=True)
        add_tracer("tracer python+builtin", layers=("python", "builtin"))
        if sys.version_info >= (3, 12):
            add_tracer("tracer python (setprofile)", backend="setprofile")
        VizTracer, viz_version, viz_missing = load_viztracer()
        if VizTracer is not None:
            entries = 4 * (counted[INCLUDED] + counted["c_from_included"]) + 10_000
            modes["viztracer"], details["viztracer"] = viztracer_mode(VizTracer, folder, entries, True)
            modes["viztracer +C"], details["viztracer +C"] = viztracer_mode(VizTracer, folder, entries, False)

        results = timing.interleave(workload, modes, repeat, warmup=warmup)
        gc.collect()
        info = {name: detail(workload) for name, detail in details.items()}
    finally:
        sys.path[:] = [p for p in sys.path if p != tmp]
        shutil.rmtree(tmp, ignore_errors=True)

    untraced = results["untraced"]["median"]
    out_modes = {}
    for name, result in results.items():
        entry = {"median_s": result["median"], "times": result["times"],
                 "overhead": timing.overhead(result["median"], untraced),
                 # fastest run against the fastest untraced run: what the targets are judged on
                 "fastest_overhead": timing.overhead(min(result["times"]), min(results["untraced"]["times"])),
                 "events": None, "calls": None, "ns_per_event": None, "ns_per_call": None}
        if name in info:
            entry.update(info[name])
            extra = result["median"] - untraced
            if entry["events"]:
                entry["ns_per_event"] = extra / entry["events"] * 1e9
            if entry["calls"]:
                entry["ns_per_call"] = extra / entry["calls"] * 1e9
        if name in record_times:
            times = record_times[name][warmup:]
            record = statistics.median(times)
            entry["record_times"] = times
            entry["record_median_s"] = record
            entry["record_overhead"] = timing.overhead(record, untraced)
            if entry["events"]:
                entry["record_ns_per_event"] = (record - untraced) / entry["events"] * 1e9
        out_modes[name] = entry
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "backend": _choose_backend("auto"),
        "calls_per_run": counted[INCLUDED] + counted[EXCLUDED],
        "calls_by_package": counted,
        "steps": steps,
        "repeat": repeat,
        "modes": out_modes,
        "viztracer": viz_version,
        "viztracer_missing": viz_missing,
    }


def format_table(report):
    counted = report["calls_by_package"]
    lines = [
        f"Python {report['python']} ({report['implementation']}), tracer backend {report['backend']}; "
        f"viztracer {report['viztracer'] or 'missing: ' + str(report['viztracer_missing'])}",
        f"workload: {report['calls_per_run']:,} Python calls a run ({counted[INCLUDED]:,} in {INCLUDED}, "
        f"{counted[EXCLUDED]:,} in {EXCLUDED}; {counted['c_from_included']:,} C calls from {INCLUDED}), "
        f"median of {report['repeat']}",
        "",
        f"{'mode':<28} {'median ms':>10} {'x untraced':>10} {'record ms':>10} {'x (record)':>10} "
        f"{'events':>9} {'calls':>9} {'ns/event':>9} {'ns/call':>9}",
    ]

    def num(value, fmt):
        return format(value, fmt) if value is not None else "-"

    for name, m in report["modes"].items():
        record = m.get("record_median_s")
        lines.append(
            f"{name:<28} {m['median_s'] * 1e3:>10.1f} {m['overhead'] + 1:>10.2f} "
            f"{num(record and record * 1e3, '.1f'):>10} {num(m.get('record_overhead') and m['record_overhead'] + 1, '.2f'):>10} "
            f"{num(m['events'], ','):>9} {num(m['calls'], ','):>9} {num(m['ns_per_event'], '.0f'):>9} "
            f"{num(m['ns_per_call'], '.0f'):>9}")
    lines.append("")
    lines.append("x untraced: median / untraced median (the tracer's: the whole with-block, tree built); "
                 "record: the tracer's start..stop alone, as viztracer's is timed.")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--repeat", type=int, default=None, help=f"rounds of every mode (default {DEFAULT_REPEAT}; 1 with --smoke)")
    parser.add_argument("--calls", type=int, default=None,
                        help=f"about this many Python calls a run (default {DEFAULT_CALLS:,}; {SMOKE_CALLS:,} with --smoke)")
    parser.add_argument("--smoke", action="store_true", help="one small round, to show that the script works")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args(argv)
    repeat = args.repeat if args.repeat is not None else (1 if args.smoke else DEFAULT_REPEAT)
    calls = args.calls if args.calls is not None else (SMOKE_CALLS if args.smoke else DEFAULT_CALLS)
    if repeat < 1 or calls < 1:
        parser.error("--repeat and --calls must be at least 1")
    report = measure(repeat=repeat, calls=calls)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(format_table(report))
    return report


if __name__ == "__main__":
    main()
