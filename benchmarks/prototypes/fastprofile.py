"""A prototype, not shipped: the setprofile callback in C (_fastprofile.c), measured against the Python one.

    .venv/bin/python benchmarks/prototypes/fastprofile.py [--repeat 7]

Python 3.10/3.11 only, with gcc and the Python headers. It builds _fastprofile.c into a temporary folder,
checks on a resnet18 forward that the C callback's tree is the Python callback's, character for character,
then times both (args on and off) against viztracer on the DataLoader and load_state_dict workloads of
benchmarks/bench.py. The tracer does not use this module: see benchmarks/RESULTS.md for why it exists.
"""

from __future__ import annotations

import argparse
import dis
import importlib.machinery
import importlib.util
import subprocess
import sys
import sysconfig
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent.parent)]

import bench  # noqa: E402
import timing  # noqa: E402
from tracer.model import Trace, build  # noqa: E402
from tracer.record import Recording, events  # noqa: E402
from tracer.record import setprofile as sp  # noqa: E402
from tracer.record.summary import summarise_frame  # noqa: E402

WORKLOADS = ("DataLoader, 3 epochs", "load_state_dict x10")
RAISE = dis.opmap["RAISE_VARARGS"]


def compile_module(folder: Path):
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    target = folder / f"_fastprofile{suffix}"
    subprocess.run(["gcc", "-O2", "-fPIC", "-shared", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter",
                    "-Wno-missing-field-initializers", f"-I{sysconfig.get_paths()['include']}",
                    str(HERE / "_fastprofile.c"), "-o", str(target)], check=True)
    spec = importlib.util.spec_from_file_location(
        "_fastprofile", target, loader=importlib.machinery.ExtensionFileLoader("_fastprofile", str(target)))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def c_recording(fast):
    class FastRecorder(sp.ProfileRecorder):
        """ProfileRecorder with the C profile function in place of the Python callback."""

        def start(self):
            rec = self.recording
            outer = self._previous = sys.getprofile()
            chain = outer if getattr(outer, "_tracer_callback", False) else None
            profiler = self.callback = fast.Profiler(
                rec.events, rec.scope.codes, rec.scope.classify_code, rec.builtin_key, summarise_frame,
                self.truncate, vars(events), sp._NORMAL_EXITS, RAISE, "builtin" in rec.layers, rec.args,
                rec.max_events, chain)
            self._previous_thread_profile = threading.getprofile()
            threading.setprofile(sp._thread_counter(rec))
            fast.install(profiler)
            self.installed = profiler

    class FastRecording(Recording):
        def start(self):
            self.started_ns = self.clock()
            python = FastRecorder(self)
            python.start()
            self._python = python

    return FastRecording


def recording_mode(cls, **options):
    def run(workload):
        rec = cls(include=bench.INCLUDE, **options)
        t0 = timing.clock()
        rec.start()
        try:
            workload()
        finally:
            rec.stop()
        return {"seconds": timing.clock() - t0, "events": len(rec.events)}
    return run


def same_tree(cls, workload) -> bool:
    texts = []
    for kind in (Recording, cls):
        rec = kind(include=bench.INCLUDE, layers=("python", "builtin"))
        rec.start()
        try:
            workload()
        finally:
            rec.stop()
        texts.append(Trace(None, *build(rec)).to_text())
    return texts[0] == texts[1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args(argv)
    if sys.version_info[:2] not in ((3, 10), (3, 11)):
        raise SystemExit("the C profile function is for Python 3.10 and 3.11 (3.12+ records with sys.monitoring)")
    with tempfile.TemporaryDirectory() as tmp:
        cls = c_recording(compile_module(Path(tmp)))
    workloads = bench.make_workloads()
    print("same tree on a resnet18 forward:", same_tree(cls, workloads["resnet18 forward"]))
    modes = {"untraced": bench.untraced,
             "Python callback": recording_mode(Recording),
             "C callback": recording_mode(cls),
             "Python callback, args=False": recording_mode(Recording, args=False),
             "C callback, args=False": recording_mode(cls, args=False),
             "viztracer": bench.viztracer_mode(False)}
    for name in WORKLOADS:
        results = timing.interleave(workloads[name], modes, args.repeat)
        base = results["untraced"]["median"]
        viz = timing.overhead(results["viztracer"]["median"], base)
        print(f"\n{name}: untraced {base * 1e3:.1f} ms, median of {args.repeat}\n")
        print("| mode | overhead | / viztracer's |\n|---|---:|---:|")
        for mode, entry in results.items():
            if mode != "untraced":
                factor = timing.overhead(entry["median"], base)
                print(f"| {mode} | {factor:.2f} | {factor / viz:.1f} |")


if __name__ == "__main__":
    main()
