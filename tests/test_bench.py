"""benchmarks/: the interleaved timer, and the benchmark's one-repetition smoke run end to end.

Timings are never judged here (they are ratios in benchmarks/RESULTS.md); these tests keep the script working.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import timing  # noqa: E402


def test_interleave_takes_turns_and_reports_medians():
    order = []

    def mode(name, seconds=None):
        def run(workload):
            order.append(name)
            workload()
            return {"seconds": seconds} if seconds is not None else {"calls": len(order)}
        return run

    results = timing.interleave(lambda: None, {"a": mode("a"), "b": mode("b", seconds=2.0)}, repeat=3, warmup=1)
    assert order == ["a", "b"] + ["a", "b"] * 3  # warm-up, then turns
    assert results["b"]["times"] == [2.0, 2.0, 2.0]  # a run that times itself is taken at its word
    assert results["b"]["median"] == 2.0
    assert len(results["a"]["times"]) == 3 and results["a"]["last"] == {"calls": 7}
    assert timing.overhead(3.0, 2.0) == pytest.approx(0.5)


@pytest.mark.torch
@pytest.mark.skipif(importlib.util.find_spec("torchvision") is None, reason="the benchmark's workloads need torchvision")
def test_smoke_run_writes_every_section(tmp_path):
    out = tmp_path / "smoke.md"
    done = subprocess.run([sys.executable, "benchmarks/bench.py", "--smoke", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-4000:]
    text = out.read_text()
    for heading in ("## Targets", "## resnet18 forward", "## DataLoader, 3 epochs", "## load_state_dict x10",
                    "## resnet18 forward+backward", "## Memory and export size", "## Rendering",
                    "## DataLoader workers", "### fork", "### spawn", "## Torch-free workload", "## The book"):
        assert heading in text
    modes = ["tracer python", "tracer python+builtin", "tracer python+builtin+aten", "tracer aten", "cProfile",
             "torch.profiler", "torch.profiler shapes+stack", "TorchDispatchMode floor"]
    if importlib.util.find_spec("viztracer"):
        modes += ["viztracer", "viztracer +C"]
    for mode in modes:
        assert text.count(f"| {mode} |") >= 4, mode  # a row in each workload's table
    assert "1 interleaved repetitions" in text
    assert "rendering 100" in text  # the rendering target was checked on a trace of 100,000 calls or so
    assert text.count("| tracer workers=True |") == 2


def test_each_instruction_count_mode_runs_without_valgrind(tmp_path):
    """benchmarks/instructions.py's processes: each mode runs the workload untraced, then once in the mode."""
    import instructions
    has_viz = importlib.util.find_spec("viztracer") is not None
    for mode in instructions.MODES:
        if mode == "viztracer" and not has_viz:
            continue
        done = subprocess.run([sys.executable, "benchmarks/instructions.py", "--child", mode, "--steps", "20",
                               "--directory", str(tmp_path / mode.replace(",", "").replace(" ", "-"))],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (mode, done.stderr[-2000:])


@pytest.mark.skipif(__import__("shutil").which("valgrind") is None, reason="valgrind is not installed here")
def test_instruction_counts_under_callgrind_add_up():
    """A small count end to end: every mode costs instructions above the untraced run, and the block (the
    tree built) more than its recording alone."""
    import json
    done = subprocess.run([sys.executable, "benchmarks/instructions.py", "--steps", "100", "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-2000:]
    (result,) = json.loads(done.stdout)
    extra = result["above_untraced"]
    assert result["calls"] > 1_000 and all(n > 0 for n in extra.values()), extra
    assert extra["block"] == extra["recording"] + extra["build"]
    assert extra["recording"] > extra["recording, no args"]  # the summaries cost something
