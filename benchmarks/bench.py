"""What tracing costs: the tracer against viztracer, cProfile and torch.profiler, side by side.

    .venv/bin/python benchmarks/bench.py              # the full run: writes benchmarks/RESULTS.md
    .venv/bin/python benchmarks/bench.py --smoke      # one repetition, to keep the script working

Every number comes from one process on one machine. Within a workload the modes take turns
(A B C A B C ...), and each is reported as its median and its overhead factor, traced / untraced - 1.
The torch-free workload runs in a child process on each Python that is installed (benchmarks/core.py).

Words used in the results:
  call    one recorded function, C function or operator call (with its return);
  event   one entry of the tracer's raw list: a call and its return are two events.
The tracer's time is its whole `with` block, as the user waits for it: recording (hooks in, workload,
hooks out) and building the call tree, counted where it happens (a tree built on first use counts there:
the run reads `t.root` inside the timed region); the recording and the build are also reported apart.
viztracer's time is its start..stop and leaves out parsing its buffer; torch.profiler's includes its own
post-processing, which its context manager does on exit.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

import timing  # noqa: E402
from core import c_callbacks_built, pure_python  # noqa: E402
from timing import interleave, overhead  # noqa: E402

import tracer  # noqa: E402
from tracer.model import Trace, build  # noqa: E402
from tracer.record import Recording  # noqa: E402

# Runs per mode. The targets compare each mode's fastest run: the more runs, the steadier that is.
DEFAULT_REPEAT = 21
INCLUDE = ("torch", "torchvision")
# An overhead below this is within the run-to-run spread of these workloads: a ratio of two is not judged.
NOISE = 0.15
TRACER_MODES = {  # mode -> trace() options
    "tracer python": dict(layers=("python",)),
    "tracer python, no args": dict(layers=("python",), args=False),
    "tracer python+builtin": dict(layers=("python", "builtin")),
    "tracer python+builtin+aten": dict(layers=("python", "builtin", "aten")),
    "tracer aten": dict(layers=("aten",)),
    "tracer aten, no args": dict(layers=("aten",), args=False),
    # the floor under any setprofile or sys.monitoring recorder: the C hook installed, every code object
    # classified once and then looked up at each event, nothing kept (no package is named this)
    "hook floor (nothing included)": dict(layers=("python",), args=False, include=("no_package_is_named_this",)),
}


# -- workloads ----------------------------------------------------------------------------------

def make_workloads():
    """The four torch workloads of the issue, on generated data (nothing is downloaded)."""
    import torch
    import torchvision
    from torch.utils.data import DataLoader, TensorDataset

    torch.set_num_threads(1)
    torch.manual_seed(0)
    resnet_eval = torchvision.models.resnet18(weights=None).eval()
    image = torch.randn(1, 3, 224, 224)

    def resnet18_forward():
        with torch.no_grad():
            resnet_eval(image)

    items = 2_048
    dataset = TensorDataset(torch.randn(items, 3, 32, 32), torch.randint(0, 10, (items,)))
    loader = DataLoader(dataset, batch_size=32, shuffle=True, num_workers=0,
                        generator=torch.Generator().manual_seed(0))

    def dataloader_epochs():
        for _ in range(3):
            for _batch in loader:
                pass

    state = torchvision.models.resnet18(weights=None).state_dict()
    target = torchvision.models.resnet18(weights=None)

    def load_state_dict_x10():
        for _ in range(10):
            target.load_state_dict(state)

    resnet_train = torchvision.models.resnet18(weights=None).train()

    def resnet18_forward_backward():
        resnet_train(image).sum().backward()
        resnet_train.zero_grad(set_to_none=True)

    return {
        "resnet18 forward": resnet18_forward,
        "DataLoader, 3 epochs": dataloader_epochs,
        "load_state_dict x10": load_state_dict_x10,
        "resnet18 forward+backward": resnet18_forward_backward,
    }


# -- modes: each runs the workload once and says what it recorded -------------------------------

def untraced(workload):
    workload()


def tracer_mode(options, python_callbacks=False, memory_new=False):
    """The tracer's whole `with` block as the user waits for it: recording and building the tree, with the
    tree's first use (`t.root`) inside the timed region, so that a tree built lazily counts its build too.
    The recording alone is the trace's own start..stop stamps (meta's duration_ns); the build is the rest.
    python_callbacks: record with the Python callbacks, not the C ones. memory_new: give back the memory
    the tracer keeps from its last trace first (tracer.release_memory(), untimed), as for the first trace in
    a process: its event log and tree then take pages new from the system."""
    def run(workload):
        if python_callbacks:
            with pure_python():
                return block(workload)
        return block(workload)

    def block(workload):
        if memory_new:
            tracer.release_memory()
        t = tracer.trace(**{"include": INCLUDE, **options})
        t0 = timing.clock()
        with t:
            workload()
        root = t.root  # the tree's first use
        seconds = timing.clock() - t0
        recording = t.meta["duration_ns"] / 1e9
        calls = sum(1 for _ in root.walk()) - 1
        return {"seconds": seconds, "record_s": recording, "build_s": max(seconds - recording, 0.0),
                "events": t.meta["events"], "calls": calls}
    return run


def viztracer_mode(c_functions: bool):
    from viztracer import VizTracer
    import torch
    import torchvision
    # viztracer records nothing below a frame it does not record, so the workloads' own file is in too:
    # a handful of calls per run.
    files = [str(Path(m.__file__).parent) + os.sep for m in (torch, torchvision)] + [__file__]

    def run(workload):
        viz = VizTracer(tracer_entries=4_000_000, verbose=0, register_global=False,
                        include_files=files, ignore_c_function=not c_functions)
        t0 = timing.clock()
        viz.start()
        try:
            workload()
        finally:
            viz.stop()
        seconds = timing.clock() - t0
        return {"seconds": seconds, "calls": viz.parse()}
    return run


def cprofile_mode(workload):
    profile = cProfile.Profile()
    t0 = timing.clock()
    profile.enable()
    try:
        workload()
    finally:
        profile.disable()
    seconds = timing.clock() - t0
    return {"seconds": seconds, "calls": sum(entry.callcount for entry in profile.getstats())}


def torch_profiler_mode(**options):
    import torch.profiler as tp

    def run(workload):
        t0 = timing.clock()
        with tp.profile(activities=[tp.ProfilerActivity.CPU], **options) as prof:
            workload()
        seconds = timing.clock() - t0
        return {"seconds": seconds, "calls": len(prof.events())}
    return run


def dispatch_floor_mode():
    """The least an operator-level recorder can do: a bare TorchDispatchMode keeping op names."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class OpNames(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(func.__name__)
            return func(*args, **(kwargs or {}))

    def run(workload):
        with OpNames() as mode:
            workload()
        return {"calls": len(mode.names)}
    return run


def make_modes(skip_viztracer_reason):
    modes = {"untraced": untraced}
    modes.update({name: tracer_mode(options) for name, options in TRACER_MODES.items()})
    if c_callbacks_built():  # what the C callbacks save, and what the memory kept between traces saves
        modes["tracer python, Python callbacks"] = tracer_mode(TRACER_MODES["tracer python"], python_callbacks=True)
        modes["tracer python, memory new"] = tracer_mode(TRACER_MODES["tracer python"], memory_new=True)
    if not skip_viztracer_reason:
        modes["viztracer"] = viztracer_mode(c_functions=False)
        modes["viztracer +C"] = viztracer_mode(c_functions=True)
    modes["cProfile"] = cprofile_mode
    modes["torch.profiler"] = torch_profiler_mode()
    modes["torch.profiler shapes+stack"] = torch_profiler_mode(record_shapes=True, with_stack=True)
    modes["TorchDispatchMode floor"] = dispatch_floor_mode()
    return modes


# -- per-event memory and export sizes (untimed runs) --------------------------------------------

def recording_memory(workload, options):
    """Bytes that recording holds per event, from tracemalloc: the peak while recording, less the
    untraced workload's own peak."""
    def peak(run):
        gc.collect()
        tracer.release_memory()  # memory kept from an earlier trace would be reused unseen by tracemalloc
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            result = run()
            return tracemalloc.get_traced_memory()[1] - base, result
        finally:
            tracemalloc.stop()

    untraced_peak, _ = peak(workload)

    def recorded():
        rec = Recording(include=INCLUDE, **options)
        rec.start()
        try:
            workload()
        finally:
            rec.stop()
        return rec

    traced_peak, rec = peak(recorded)
    events = len(rec.events)
    held = max(traced_peak - untraced_peak, 0)
    tracer.release_memory()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        trace = Trace(None, *build(rec))
        tree_bytes = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return {"events": events, "bytes_per_event": held / events if events else None,
            "tree_bytes_per_call": tree_bytes / max(len(trace), 1), "trace": trace}


def export_sizes(trace):
    from tracer.render.html import render_page
    calls = max(len(trace), 1)
    return {"json": len(trace.to_json().encode()) / calls,
            "perfetto": len(trace.to_perfetto().encode()) / calls,
            "html": len(render_page(trace).encode()) / calls}


# -- rendering 100,000 calls ---------------------------------------------------------------------

def rendering(workload, calls_wanted):
    """Record the DataLoader workload with python+builtin until the trace holds `calls_wanted` calls
    (a truncated trace: recording stops at the cap), then time text and HTML."""
    from tracer.render.html import render_page
    t = tracer.trace(layers=("python", "builtin"), include=INCLUDE, max_events=2 * calls_wanted)
    with t:
        while len(t._recording.events) < 2 * calls_wanted and t._recording._python is not None:
            workload()
    n = len(t)
    out = {"calls": n}
    for name, render in (("text", lambda: t.to_text()), ("html", lambda: render_page(t))):
        best = None
        for _ in range(3):
            t0 = timing.clock()
            text = render()
            seconds = timing.clock() - t0
            best = seconds if best is None else min(best, seconds)
        out[name] = {"seconds": best, "bytes": len(text.encode())}
    return out


# -- DataLoader worker processes: trace(workers=True) -----------------------------------------------

def worker_runs(smoke, repeat, skip_viztracer_reason):
    """A 2-worker DataLoader (benchmarks/loader_workers.py), fork and spawn: untraced and under
    trace(workers=True), taking turns in this process; viztracer's command line (which follows
    multiprocessing children by default) on the same script, beside the script run plainly."""
    import loader_workers
    runs = {}
    for method in ("fork", "spawn"):
        # spawn starts a fresh interpreter importing torch per worker and epoch: fewer, shorter runs
        epochs = 1 if smoke and method == "spawn" else loader_workers.EPOCHS
        # (no target compares these: the fork runs stop at 15 rounds, viztracer's command line taking 10 s each)
        rounds = min(repeat, 15) if method == "fork" else max(1, min(repeat, 3))
        loader = loader_workers.make_loader(method)
        modes = {"untraced": lambda w, n=epochs: loader_workers.untraced(w, n),
                 "tracer workers=True": lambda w, n=epochs: loader_workers.traced(w, n)}
        print(f"DataLoader workers, {method}: {len(modes)} modes x {rounds}", file=sys.stderr, flush=True)
        entry = runs[method] = {"epochs": epochs, "rounds": rounds,
                                "modes": interleave(loader, modes, rounds, warmup=0 if method == "spawn" else 1)}
        if skip_viztracer_reason or smoke:
            entry["viztracer"] = skip_viztracer_reason or ("left out of --smoke: each run traces `import torch` and "
                                                           "writes some 100 MB (about 10 s for fork here)")
            continue
        entry["viztracer"] = viztracer_cli(method, epochs, 1 if method == "spawn" else rounds)
    return runs


def viztracer_cli(method, epochs, rounds):
    """The same script under `viztracer --quiet --ignore_c_function` and plainly, in turns: wall times of the
    whole process (viztracer's includes saving every process's report) and of the epochs alone."""
    script = [str(HERE / "loader_workers.py"), "--method", method, "--epochs", str(epochs)]
    times = {"plain": [], "viztracer": []}
    loops = {"plain": [], "viztracer": []}
    events = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "viz.json"
        commands = {"plain": [sys.executable] + script,
                    "viztracer": [sys.executable, "-m", "viztracer", "--quiet", "--ignore_c_function", "-o", str(out)]
                    + script}
        for _ in range(rounds):
            for name, command in commands.items():
                t0 = time.perf_counter()
                done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
                times[name].append(time.perf_counter() - t0)
                if done.returncode:
                    return f"failed: {done.stderr.strip().splitlines()[-1:] or done.returncode}"
                loops[name].append(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])
        with open(out) as f:
            for event in json.load(f)["traceEvents"]:
                if event.get("ph") == "X":
                    events[event["pid"]] = events.get(event["pid"], 0) + 1
    median = statistics.median
    return {"plain_wall": median(times["plain"]), "viztracer_wall": median(times["viztracer"]),
            "plain_epochs": median(loops["plain"]), "viztracer_epochs": median(loops["viztracer"]),
            "processes": len(events), "events": sum(events.values()), "rounds": rounds}


def workers_report(runs) -> list[str]:
    out = ["## DataLoader workers", "",
           "`benchmarks/loader_workers.py`: a `TensorDataset` of 256 images 3x32x32, batches of 32, 2 worker",
           "processes (new ones each epoch), wall time of the epochs. *tracer workers=True* is its whole block:",
           "recording in both processes, streaming, reading the streams and merging them into the tree.", ""]
    for method, entry in runs.items():
        modes = entry["modes"]
        base = modes["untraced"]["median"]
        out += [f"### {method}, {entry['epochs']} epoch(s), {entry['rounds']} interleaved round(s)", "",
                "| mode | median | overhead | calls (in workers) |", "|---|---:|---:|---:|",
                f"| untraced | {fmt_s(base)} | | |"]
        traced = modes["tracer workers=True"]
        last = traced["last"]
        out.append(f"| tracer workers=True | {fmt_s(traced['median'])} | {overhead(traced['median'], base):.2f} "
                   f"| {fmt(last.get('calls'))} ({fmt(last.get('worker_calls'))}) |")
        viz = entry.get("viztracer")
        if isinstance(viz, dict):
            out += ["", f"viztracer's command line (`viztracer --quiet --ignore_c_function`, {viz['rounds']} round(s)) on "
                    f"the same script: whole process {fmt_s(viz['viztracer_wall'])} against {fmt_s(viz['plain_wall'])} "
                    f"plainly (overhead {overhead(viz['viztracer_wall'], viz['plain_wall']):.2f}); the epochs alone "
                    f"{fmt_s(viz['viztracer_epochs'])} against {fmt_s(viz['plain_epochs'])} "
                    f"(overhead {overhead(viz['viztracer_epochs'], viz['plain_epochs']):.2f}); {viz['events']:,} events "
                    f"from {viz['processes']} processes (its main process records `import torch` too)."]
        else:
            out += ["", f"viztracer's command line: {viz}"]
        out.append("")
    return out


# -- the book and the torch-free workload ----------------------------------------------------------

def book_build():
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()  # a child process: wall time
        done = subprocess.run([sys.executable, "-m", "tracer", "book", "build", "--notebooks", f"{tmp}/notebooks",
                               "--site", f"{tmp}/site"], cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"the book build failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return {"seconds": seconds, "summary": done.stdout.strip().splitlines()[-6:]}


def interpreters():
    """Each Python that can run the torch-free workload: this one, and 3.12/3.13 venvs made by `make bench`."""
    found = [("this Python", sys.executable)]
    for version in ("3.12", "3.13"):
        path = ROOT / f".venv{version}" / "bin" / "python"
        if path.exists():
            found.append((f"Python {version}", str(path)))
    return found


def core_runs(smoke, repeat):
    runs = []
    for label, python in interpreters():
        command = [python, str(HERE / "core.py"), "--json", "--repeat", str(repeat)] + (["--smoke"] if smoke else [])
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"benchmarks/core.py failed on {python}:\n{done.stderr[-3000:]}")
        runs.append(json.loads(done.stdout))
    return runs


# -- the report ------------------------------------------------------------------------------------

def versions():
    import torch
    import torchvision
    out = {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
           "torch commit": torch.version.git_version[:12]}
    try:
        import viztracer
        out["viztracer"] = viztracer.__version__
    except ImportError:
        out["viztracer"] = None
    return out


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def fmt_s(s):
    return f"{s * 1e3:,.1f} ms" if s < 10 else f"{s:,.1f} s"


def fmt_spread(spread):
    return "" if spread is None else f" (spread {spread * 100:.0f}%: the interquartile range of its runs over their median)"


def fmt(x, spec=",.0f"):
    return "–" if x is None else format(x, spec)


def report(meta, results, memory, sizes, render, book, core, targets, workers=None) -> str:
    out = [f"# Benchmarks: what tracing costs", "",
           f"Measured {meta['date']} by `benchmarks/bench.py{' --smoke' if meta['smoke'] else ''}`, "
           f"{meta['repeat']} interleaved repetitions per mode (medians).", "",
           f"- machine: {meta['machine']}",
           "- " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v), "",
           "Overhead is traced / untraced - 1 (0.5: half as long again). A *call* is one recorded function, C",
           "function or operator call; an *event* is one entry of the tracer's raw list (a call and its return",
           "are two). The tracer's time is its whole `with` block, as the user waits for it: recording, then",
           "building the call tree (a tree built on first use counts its build there). Its *recording* column is",
           "the overhead of the recording alone, *build* the median time the tree took to build.",
           "viztracer's time is its start..stop, leaving out parsing its buffer; torch.profiler's includes the post-processing its",
           "context manager does on exit. cProfile counts every Python and C call, not only torch's. *Spread* is",
           "the interquartile range of a mode's runs over their median: an overhead smaller than the spread of",
           "the runs it compares is noise. The targets compare each mode's *fastest* run with the fastest",
           "untraced run (the cost of the mode itself, least disturbed by whatever else the machine ran), as the",
           "issue measured them; the *fastest's overhead* column gives those numbers. A target met or missed by a",
           "margin smaller than the interquartile range of either mode's runs (in the same units) says so: the",
           "next run may turn it. *hook floor* is the tracer",
           "with nothing included: CPython calling the C hook at every event and the code table's answer, the",
           "least any recorder on that hook can cost. The tracer keeps the memory of its last trace's event log and",
           "tree (up to 16 MiB each, `tracer.spare_memory()`) for the next one, as viztracer keeps its buffer",
           "between runs: every tracer mode starts in it, but *memory new*, which gives it back first",
           "(`tracer.release_memory()`, untimed), as for the first trace in a process.", ""]
    verdict = {True: "met", False: "**missed**", None: "not judged"}
    out += ["## Targets", ""] + [f"- {verdict[ok]}: {text}" for ok, text in targets] + [""]
    for workload, modes in results.items():
        base = modes["untraced"]["median"]
        out += [f"## {workload}", "", f"untraced: {fmt_s(base)}{fmt_spread(modes['untraced']['spread'])}", "",
                "| mode | median | spread | overhead | fastest's overhead | recording | calls | ns per call | build |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, entry in modes.items():
            if name == "untraced":
                continue
            last = entry["last"]
            calls = last.get("calls")
            extra = entry["median"] - base
            per_call = extra / calls * 1e9 if calls else None
            build_s = entry["medians"].get("build_s")
            record_s = entry["medians"].get("record_s")
            recording = f"{overhead(record_s, base):.2f}" if record_s is not None else ""
            spread = "–" if entry["spread"] is None else f"{entry['spread'] * 100:.0f}%"
            out.append(f"| {name} | {fmt_s(entry['median'])} | {spread} "
                       f"| {overhead(entry['median'], base):.2f} "
                       f"| {overhead(entry['fastest'], modes['untraced']['fastest']):.2f} | {recording} | {fmt(calls)} "
                       f"| {fmt(per_call)} | {fmt_s(build_s) if build_s is not None else ''} |")
        out.append("")
    out += ["## Memory and export size", "",
            "Memory is tracemalloc's peak while recording, less the untraced workload's own; the tree is",
            "what building it allocates. Export sizes are bytes per call in the tree.", "",
            "| workload, mode | events | bytes per event | per 100k events | tree bytes per call | JSON | Perfetto | HTML |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for (workload, mode), m in memory.items():
        s = sizes.get((workload, mode), {})
        per = m["bytes_per_event"]
        out.append(f"| {workload}, {mode} | {m['events']:,} | {fmt(per)} | {fmt(per * 1e5 / 2**20 if per else None, '.1f')} MiB "
                   f"| {fmt(m['tree_bytes_per_call'])} | {fmt(s.get('json'))} | {fmt(s.get('perfetto'))} | {fmt(s.get('html'))} |")
    out += ["", "## Rendering", "",
            f"A trace of {render['calls']:,} calls (the DataLoader workload, python+builtin, stopped at the cap):", "",
            f"- text (`t.to_text()`): {fmt_s(render['text']['seconds'])}, {render['text']['bytes'] / 2**20:.1f} MiB",
            f"- HTML page (`render_page`): {fmt_s(render['html']['seconds'])}, {render['html']['bytes'] / 2**20:.1f} MiB", ""]
    if workers:
        out += workers_report(workers)
    out += ["## Torch-free workload (benchmarks/core.py)", "",
            "Many small calls in an included package and about as many in an excluded one, on each Python",
            "installed. *with tree* is the tracer's whole `with` block; *recording* leaves out building the tree,",
            "as viztracer's time leaves out parsing.", ""]
    for run in core:
        base = run["modes"]["untraced"]["median_s"]
        out += [f"Python {run['python']} (backend: {run['backend']}), {run['calls_per_run']:,} Python calls a run, "
                f"untraced {fmt_s(base)}:", "",
                "| mode | median | overhead, with tree | overhead, recording | calls | ns per call, recording |",
                "|---|---:|---:|---:|---:|---:|"]
        for name, m in run["modes"].items():
            if name == "untraced":
                continue
            recording = m.get("record_overhead", m["overhead"])
            seconds = m.get("record_median_s", m["median_s"])
            per_call = (seconds - base) / m["calls"] * 1e9 if m.get("calls") else None
            with_tree = f"{m['overhead']:.2f}" if "record_overhead" in m else ""
            out.append(f"| {name} | {fmt_s(m['median_s'])} | {with_tree} | {recording:.2f} | {fmt(m.get('calls'))} "
                       f"| {fmt(per_call)} |")
        if run.get("viztracer_missing"):
            out.append(f"\nviztracer left out: {run['viztracer_missing']}")
        out.append("")
    out += ["## The book", ""]
    if book:
        out += [f"Building every chapter headless (`python -m tracer book build`, site included): {book['seconds']:.1f} s.", ""]
    else:
        out += ["Not built in this run (`--no-book`).", ""]
    return "\n".join(out)


# The tracer's block (recording and building the tree) against viztracer's start..stop: (ours, theirs, at most
# this many times viztracer's overhead). Without summaries the tracer keeps what viztracer keeps.
VIZTRACER_TARGETS = (("tracer python", "viztracer", 1.5), ("tracer python, no args", "viztracer", 1.0),
                     ("tracer python+builtin", "viztracer +C", 1.5))


def fmt_spreads(pairs) -> str:
    """'spread: tracer python 12%, viztracer 9%, untraced 4%' from (name, spread) pairs."""
    return "spread: " + ", ".join(f"{name} {'–' if x is None else f'{x * 100:.0f}%'}" for name, x in pairs)


def margin_note(a, bound, runs, untraced) -> str:
    """'; margin +0.03, within the runs' spread' where a target's margin (bound - a, in units of the untraced
    time, as overheads are) is smaller than the interquartile range of either mode's runs in those units: a
    verdict the next run may turn. runs: the two modes' lists of times; untraced: the untraced runs'."""
    base = statistics.median(untraced)
    widths = [timing.spread(times) * statistics.median(times) / base for times in runs if len(times) > 1]
    margin = bound - a
    if not widths or abs(margin) >= max(widths):
        return ""
    return f"; margin {margin:+.2f}, within the runs' spread"


def check_targets(results, memory, render, core):
    """Each target, met or missed: the overheads compared are each mode's fastest run against the fastest
    untraced run (the cost of the mode itself, least disturbed by the machine), as the issue measured them;
    the tables give the medians, and each target its modes' spreads."""
    targets = []

    def factor(workload, mode):
        modes = results[workload]
        return overhead(modes[mode]["fastest"], modes["untraced"]["fastest"])

    py = platform.python_version()
    for workload in ("DataLoader, 3 epochs", "load_state_dict x10"):
        if workload not in results:
            continue
        modes = results[workload]
        for ours, theirs, limit in VIZTRACER_TARGETS:
            if ours in modes and theirs in modes:
                a, b = factor(workload, ours), factor(workload, theirs)
                spreads = fmt_spreads((m, modes[m]["spread"]) for m in (ours, theirs, "untraced"))
                close = margin_note(a, limit * b, (modes[ours]["times"], modes[theirs]["times"]), modes["untraced"]["times"])
                targets.append((a <= limit * b, f"{workload}, Python {py} setprofile: {ours}, the block (recording "
                                f"and build), overhead {a:.2f} <= {limit:g} x {theirs}'s {b:.2f} "
                                f"(ratio {a / b:.2f}{close}; {spreads})"))
    for run in core:
        if run["backend"] != "sys.monitoring":
            continue
        modes = run["modes"]
        for ours, theirs, limit in VIZTRACER_TARGETS:
            if ours in modes and theirs in modes:
                a, b = modes[ours]["fastest_overhead"], modes[theirs]["fastest_overhead"]
                spreads = fmt_spreads((m, timing.spread(modes[m]["times"])) for m in (ours, theirs, "untraced"))
                close = margin_note(a, limit * b, (modes[ours]["times"], modes[theirs]["times"]), modes["untraced"]["times"])
                targets.append((a <= limit * b, f"torch-free workload, Python {run['python']} sys.monitoring: {ours}, "
                                f"the block (recording and build), overhead {a:.2f} <= {limit:g} x {theirs}'s {b:.2f} "
                                f"(ratio {a / b:.2f}{close}; {spreads})"))
    for workload, modes in results.items():
        floor = factor(workload, "TorchDispatchMode floor")
        ops = modes["TorchDispatchMode floor"]["last"].get("calls")
        for ours in ("tracer aten", "tracer aten, no args"):
            a = factor(workload, ours)
            text = (f"{workload} ({ops:,} operators): {ours}, the block, overhead {a:.3f} <= 1.2 x the bare "
                    f"TorchDispatchMode's {floor:.3f}")
            spreads = fmt_spreads((m, modes[m]["spread"]) for m in (ours, "TorchDispatchMode floor", "untraced"))
            if floor < max(NOISE, modes["untraced"]["spread"] or 0):
                targets.append((None, f"{text}: not judged, the floor's overhead is within the run-to-run spread ({spreads})"))
            else:
                close = margin_note(a, 1.2 * floor, (modes[ours]["times"], modes["TorchDispatchMode floor"]["times"]),
                                    modes["untraced"]["times"])
                targets.append((a <= 1.2 * floor, f"{text} (ratio {a / floor:.2f}{close}; {spreads})"))
    for (workload, mode), m in memory.items():
        if m["bytes_per_event"] is not None:
            targets.append((m["bytes_per_event"] <= 200, f"{workload}, {mode}: {m['bytes_per_event']:.0f} bytes "
                            "per event while recording <= 200"))
    for name in ("text", "html"):
        s = render[name]["seconds"]
        targets.append((s < 2, f"rendering {render['calls']:,} calls to {name}: {s:.2f} s < 2 s"))
    return targets


README_START, README_END = "<!-- benchmarks: start -->", "<!-- benchmarks: end -->"


def headline(meta, results, memory, render, book, core) -> str:
    """The README's summary of RESULTS.md: the ratios a reader asks about first."""
    def factor(workload, mode):
        modes = results[workload]
        return overhead(modes[mode]["median"], modes["untraced"]["median"])

    py = meta["versions"]["python"]
    lines = [f"From `benchmarks/RESULTS.md` ({meta['date']}, {meta['machine'].split(',')[0]}, "
             f"{meta['repeat']} interleaved repetitions, medians; overhead = traced / untraced - 1):", ""]
    for workload in ("DataLoader, 3 epochs", "load_state_dict x10"):
        modes = results[workload]
        parts = [f"tracer {factor(workload, 'tracer python'):.2f}"]
        if "tracer python, Python callbacks" in modes:
            parts.append(f"with its Python callbacks {factor(workload, 'tracer python, Python callbacks'):.2f}")
        parts.append(f"`args=False` {factor(workload, 'tracer python, no args'):.2f}")
        if "viztracer" in modes:
            parts.append(f"viztracer {factor(workload, 'viztracer'):.2f}")
        parts += [f"cProfile {factor(workload, 'cProfile'):.2f}",
                  f"torch.profiler {factor(workload, 'torch.profiler'):.2f}"]
        lines.append(f"- {workload}, Python {py}, overhead of the whole block (the tracer's recording and its tree; "
                     "viztracer's start..stop): " + ", ".join(parts) + ".")
    for run in core:
        modes = run["modes"]
        if "viztracer" in modes:
            lines.append(f"- Torch-free workload, Python {run['python']} ({run['backend']}), the whole block: tracer "
                         f"{modes['tracer python']['overhead']:.2f}, `args=False` {modes['tracer python, no args']['overhead']:.2f}, "
                         f"viztracer {modes['viztracer']['overhead']:.2f}.")
    floors = [(w, factor(w, "tracer aten"), factor(w, "TorchDispatchMode floor")) for w in results]
    lines.append("- The aten layer against a bare `TorchDispatchMode` that keeps op names: "
                 + ", ".join(f"{w} {a:.2f} against {b:.2f}" for w, a, b in floors) + ".")
    builds = [(w, modes["tracer python"]["medians"].get("build_s")) for w, modes in results.items()]
    lines.append("- Building the tree when the block ends (tracer python): "
                 + ", ".join(f"{w} {fmt_s(b)}" for w, b in builds if b is not None) + ".")
    per_event = [m["bytes_per_event"] for m in memory.values() if m["bytes_per_event"] is not None]
    if per_event:
        lines.append(f"- Memory while recording: {min(per_event):.0f} to {max(per_event):.0f} bytes per event.")
    lines.append(f"- Rendering {render['calls']:,} calls: text {render['text']['seconds']:.2f} s, "
                 f"HTML {render['html']['seconds']:.2f} s.")
    if book:
        lines.append(f"- Building every chapter headless: {book['seconds']:.0f} s.")
    return "\n".join(lines)


def update_readme(text: str):
    readme = ROOT / "README.md"
    old = readme.read_text(encoding="utf-8")
    start, end = old.find(README_START), old.find(README_END)
    if start < 0 or end < start:
        print(f"note: README.md has no {README_START} ... {README_END} block to update", file=sys.stderr)
        return
    readme.write_text(old[:start + len(README_START)] + "\n" + text + "\n" + old[end:], encoding="utf-8")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="one repetition, no book build: proves the script works")
    p.add_argument("--repeat", type=int, default=None, help=f"repetitions per mode (default {DEFAULT_REPEAT}; 1 with --smoke)")
    p.add_argument("--workload", action="append", help="only this workload (repeatable)")
    p.add_argument("--no-book", action="store_true", help="leave out the book build")
    p.add_argument("--cpu-time", action="store_true",
                   help="time with this thread's CPU time instead of wall time: steadier on a busy machine")
    p.add_argument("--out", type=Path, default=None,
                   help="where the report goes (default: benchmarks/RESULTS.md; build/bench-smoke.md with --smoke)")
    args = p.parse_args(argv)
    repeat = args.repeat or (1 if args.smoke else DEFAULT_REPEAT)
    if repeat < 1:
        p.error("--repeat must be 1 or more")
    timing.use_cpu_time(args.cpu_time)
    out_path = args.out or (ROOT / "build" / "bench-smoke.md" if args.smoke else HERE / "RESULTS.md")
    try:
        import viztracer  # noqa: F401
        no_viz = None
    except ImportError:
        no_viz = "viztracer is not installed (make bench installs it)"
        print(f"note: {no_viz}; its modes are left out", file=sys.stderr)

    workloads = make_workloads()
    if args.workload:
        unknown = set(args.workload) - set(workloads)
        if unknown:
            p.error(f"unknown workload {sorted(unknown)}: choose from {list(workloads)}")
        workloads = {k: v for k, v in workloads.items() if k in args.workload}
    modes = make_modes(no_viz)
    results, memory, sizes = {}, {}, {}
    for name, workload in workloads.items():
        print(f"{name}: {len(modes)} modes x {repeat}", file=sys.stderr, flush=True)
        results[name] = interleave(workload, modes, repeat, warmup=1)
        for mode in ("tracer python", "tracer python+builtin+aten"):
            m = memory[(name, mode)] = recording_memory(workload, TRACER_MODES[mode])
            sizes[(name, mode)] = export_sizes(m.pop("trace"))
    print("rendering", file=sys.stderr, flush=True)
    loader = workloads.get("DataLoader, 3 epochs") or make_workloads()["DataLoader, 3 epochs"]
    render = rendering(loader, 100_000)
    workers = None if args.workload else worker_runs(args.smoke, repeat, no_viz)
    print("torch-free workload", file=sys.stderr, flush=True)
    core = core_runs(args.smoke, repeat)
    book = None if args.smoke or args.no_book else book_build()
    meta = {"date": datetime.date.today().isoformat(), "smoke": args.smoke, "repeat": repeat,
            "machine": machine(), "versions": versions()}
    targets = check_targets(results, memory, render, core)
    text = report(meta, results, memory, sizes, render, book, core, targets, workers)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(text + "\n", encoding="utf-8")
    if out_path == HERE / "RESULTS.md" and not args.smoke and not args.workload:
        update_readme(headline(meta, results, memory, render, book, core))
    print(text)
    print(f"\nwritten: {out_path.relative_to(ROOT) if out_path.is_relative_to(ROOT) else out_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
