"""Faults and bad input, torch-free: hooks that always come off, a traced program that never sees the tracer,
loaded traces that read and run nothing, options refused. Runs on Python 3.10 to 3.13."""

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading

import pytest

import tracer
from tracer.record import monitoring as monitoring_backend

from conftest import MONITORING_CALLBACKS

needs_monitoring = pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring is Python 3.12 and newer")


def tracer_tools():
    if sys.version_info < (3, 12):
        return []
    return [tool for tool in range(6) if sys.monitoring.get_tool(tool) == monitoring_backend.TOOL_NAME]


def nothing_installed(profile_before, thread_profile_before):
    return sys.getprofile() is profile_before and threading.getprofile() is thread_profile_before and not tracer_tools()


# -- 1-3: hooks that come off whatever order the blocks end in ---------------------------------------------

def test_blocks_that_end_out_of_order_leave_no_hook(sample, backend):
    before = sys.getprofile(), threading.getprofile()
    traces = {}

    async def first(entered, second_entered, done):
        with tracer.trace(include=("sample",), backend=backend) as traces["first"]:
            entered.set()
            await second_entered.wait()
            sample.helper(1)
        done.set()

    async def second(entered, second_entered, done):
        await entered.wait()
        with tracer.trace(include=("sample",), backend=backend) as traces["second"]:
            second_entered.set()
            await done.wait()  # the first block ends while this one records
            sample.helper(2)

    async def main():
        events = asyncio.Event(), asyncio.Event(), asyncio.Event()
        await asyncio.gather(first(*events), second(*events))

    asyncio.run(main())
    assert nothing_installed(*before)
    sample.outer(3)  # after both blocks: recorded by neither
    assert traces["first"].count("helper") >= 1 and traces["second"].count("helper") >= 1
    assert traces["second"].count("outer") == 0 and traces["first"].count("outer") == 0


def test_two_threads_tracing_at_once_leave_no_hook(sample, backend):
    before = sys.getprofile(), threading.getprofile()
    a_entered, b_entered, a_exited = threading.Event(), threading.Event(), threading.Event()
    results = {}

    def a():
        with tracer.trace(include=("sample",), backend=backend) as results["a"]:
            a_entered.set()
            b_entered.wait(10)
            sample.helper(1)
        results["a_after"] = sys.getprofile()
        a_exited.set()

    def b():
        a_entered.wait(10)
        with tracer.trace(include=("sample",), backend=backend) as results["b"]:
            b_entered.set()
            a_exited.wait(10)
            sample.helper(2)
        results["b_after"] = sys.getprofile()

    workers = [threading.Thread(target=a), threading.Thread(target=b)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert results["a_after"] is None and results["b_after"] is None
    assert nothing_installed(*before)
    assert results["a"].count("helper") == 1 and results["b"].count("helper") == 1


def test_outer_trace_reaching_its_cap_leaves_the_inner_recording(sample, backend):
    with tracer.trace(include=("sample",), backend=backend, max_events=10) as outer:
        with tracer.trace(include=("sample",), backend=backend) as inner:
            sample.outer(50)
    assert outer.truncated
    assert not inner.truncated and inner.count("helper") == 50
    assert not any("replaced the profile function" in note for note in inner.meta["notes"])
    assert sys.getprofile() is None and not tracer_tools()


# -- 4: an interrupt at any moment of a block's start or end ---------------------------------------------

def test_keyboard_interrupt_at_any_moment_leaves_nothing_installed(sample, backend):
    before = sys.getprofile(), threading.getprofile()
    rng = random.Random(13)
    leftovers = interrupted = 0
    previous_handler = signal.signal(signal.SIGALRM, signal.default_int_handler)
    try:
        for _ in range(600):
            try:
                try:
                    signal.setitimer(signal.ITIMER_REAL, rng.uniform(1e-6, 150e-6))
                    with tracer.trace(include=("sample",), backend=backend):
                        sample.helper(1)
                    for _ in range(200):  # the timer's moment may be after the block: let it land here
                        pass
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            except KeyboardInterrupt:
                interrupted += 1
            if not nothing_installed(*before):
                leftovers += 1
                sys.setprofile(None)
                threading.setprofile(None)
                for tool in tracer_tools():
                    sys.monitoring.set_events(tool, 0)
                    sys.monitoring.free_tool_id(tool)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
    assert interrupted > 50  # the timer did land in many blocks
    assert leftovers == 0


# -- 5: another sys.monitoring tool's DISABLE stays ----------------------------------------------------

@needs_monitoring
@pytest.mark.parametrize("callback", MONITORING_CALLBACKS)
def test_another_tools_disable_is_not_undone(sample, monkeypatch, callback):
    monkeypatch.setattr(monitoring_backend, "USE_C", callback == "C")
    mon = sys.monitoring
    tool = 2  # PROFILER_ID: never the tracer's
    assert mon.get_tool(tool) is None
    seen = []

    def first_start(code, offset):
        seen.append(code.co_name)
        return mon.DISABLE

    mon.use_tool_id(tool, "counts first executions")
    try:
        mon.register_callback(tool, mon.events.PY_START, first_start)
        mon.set_events(tool, mon.events.PY_START)
        sample.outer(2)
        assert seen.count("helper") == 1
        for _ in range(2):
            with tracer.trace(include=("sample",), backend="sys.monitoring") as t:
                sample.outer(2)
        sample.outer(2)
        assert seen.count("helper") == 1 and seen.count("outer") == 1
        assert t.count("helper") == 2
    finally:
        mon.set_events(tool, 0)
        mon.register_callback(tool, mon.events.PY_START, None)
        mon.free_tool_id(tool)


@needs_monitoring
def test_blocks_with_other_include_sets_still_see_code_an_earlier_block_switched_off(sample):
    __import__("other")
    with tracer.trace(include=("sample",), backend="sys.monitoring"):
        sample.via_other(1)  # other.call_back is switched off for this block
    with tracer.trace(include=("other",), backend="sys.monitoring") as t:
        sample.via_other(1)
    assert [c.name for c in t.calls] == ["call_back"]


# -- 6: the traced program never sees the tracer -----------------------------------------------------

class Exploding(str):
    def __eq__(self, other):
        raise RuntimeError("compared")

    __hash__ = str.__hash__


@pytest.mark.parametrize("module_name", [5, b"sample", Exploding("elsewhere")], ids=["int", "bytes", "str-subclass"])
def test_module_globals_with_an_odd_name_never_raise_into_the_program(sample, backend, module_name):
    namespace = {"__name__": module_name, "__builtins__": __builtins__}
    exec("def odd():\n    return 1\n", namespace)
    with tracer.trace(include=("sample",), layers=("python", "builtin"), backend=backend) as t:
        assert namespace["odd"]() == 1
        sample.helper(1)
    assert [c.name for c in t.root.children] == ["helper"]


def test_an_object_whose_class_property_raises_never_raises_into_the_program(tmp_path, monkeypatch, backend):
    (tmp_path / "oddclass.py").write_text(
        "class Odd(list):\n"
        "    @property\n"
        "    def __class__(self):\n"
        "        raise RuntimeError('no class for you')\n\n"
        "def use():\n"
        "    odd = Odd()\n"
        "    odd.append(1)\n"
        "    return len(odd)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import oddclass
    with tracer.trace(include=("oddclass",), layers=("python", "builtin"), backend=backend) as t:
        assert oddclass.use() == 1
    assert t.count("use") == 1


# -- 8-10: a loaded trace reads nothing, runs nothing, and says what is wrong with it -------------------

def trace_data(**fields):
    row = {"id": 1, "parent": 0, "name": "f", "module": "sample", "relpath": "sample/__init__.py", "line": 1,
           "kind": "python", "args": {}, "error": None, "open": False, "resumed": False, "start_ns": 0,
           "duration_ns": 1, "url": None}
    row.update(fields)
    root = {"id": 0, "parent": None, "name": "<traced block>", "module": None, "relpath": None, "line": None,
            "kind": "block", "args": {}, "error": None, "open": False, "resumed": False, "start_ns": 0,
            "duration_ns": 2, "url": None}
    return {"schema": "tracer-trace", "version": 1, "meta": {"notes": []}, "calls": [root, row]}


def render_everything(t):
    from tracer.render.html import render
    t.to_text()
    render(t)
    t.to_perfetto()
    t.to_json()
    for call in t.calls:
        call.source()


@pytest.mark.parametrize("relpath", ["tracer/../../../../etc/passwd", "../etc/passwd", "/etc/passwd",
                                     "tracer/./render/../../../etc/passwd", "tracer\\..\\..\\etc\\passwd"])
def test_a_loaded_path_never_reaches_outside_the_packages(relpath):
    with pytest.raises(ValueError, match="call 1.*relpath"):
        tracer.load(trace_data(relpath=relpath))


def test_a_module_of_its_own_is_a_path_a_trace_may_name():
    # a worker's stream names a top-level module (helpers.py) so: it loads, and climbing out of it does not
    assert tracer.load(trace_data(relpath="helpers.py")).calls[0].relpath == "helpers.py"
    for relpath in ("../helpers.py", "helpers.py/x.py", ".py"):
        with pytest.raises(ValueError, match="call 1.*relpath"):
            tracer.load(trace_data(relpath=relpath))


def test_source_never_reads_a_path_outside_its_package():
    from tracer import source
    assert source.installed_file("tracer/../../../../etc/passwd") is None
    assert source.installed_file("../etc/passwd") is None
    assert source.installed_file("tracer/model.py")  # an ordinary one still is found


def test_a_loaded_path_imports_nothing(tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "sideeffect.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("sideeffect", None)
    with pytest.raises(ValueError, match="call 1.*relpath"):
        tracer.load(trace_data(relpath="sideeffect.x/y.py"))
    from tracer import source
    assert source.installed_file("sideeffect.x/y.py") is None
    assert source.url_of("sideeffect.x/y.py", 3) is None
    assert not marker.exists() and "sideeffect" not in sys.modules


@pytest.mark.parametrize("calls, words", [
    ([1, 2], "call 0"),
    ([None], "call 0"),
])
def test_rows_that_are_not_objects_are_refused(calls, words):
    with pytest.raises(ValueError, match=words):
        tracer.load({"schema": "tracer-trace", "version": 1, "calls": calls})


@pytest.mark.parametrize("field, value", [
    ("args", "a string"), ("args", [1, 2]), ("args", {"x": 1}), ("name", None), ("name", 3), ("line", "12"),
    ("line", -1), ("line", True), ("start_ns", "0"), ("start_ns", None), ("duration_ns", "5"), ("duration_ns", None),
    ("duration_ns", 10 ** 400), ("start_ns", -(10 ** 30)), ("module", ["sample"]), ("relpath", 7), ("kind", "magic"),
    ("error", 3), ("open", "yes"), ("url", 5), ("url", "javascript:alert(1)"),
])
def test_fields_of_the_wrong_type_are_refused_at_load(field, value):
    with pytest.raises(ValueError, match=f"call 1.*{field}"):
        tracer.load(trace_data(**{field: value}))


def test_meta_of_the_wrong_type_is_refused_at_load():
    data = trace_data()
    for meta in ("a string", {"notes": "x"}, {"notes": [1]}, {"layers": 3}):
        data["meta"] = meta
        with pytest.raises(ValueError, match="meta"):
            tracer.load(data)


def test_an_aten_line_past_the_end_of_its_file_is_refused_or_shown_empty():
    data = trace_data(kind="aten", name="aten::add.Tensor", module="aten",
                      relpath="torchgen/packaged/ATen/native/native_functions.yaml", line=10 ** 9)
    t = tracer.load(data)
    render_everything(t)
    assert t.calls[0].source() == ""


def test_json_nested_deep_is_refused_with_a_value_error():
    deep = '{"schema": "tracer-trace", "version": 1, "calls": [{"id": 0, "parent": null, "args": ' + \
        '{"a": ' * 200_000 + "1" + "}" * 200_001 + "]}"
    with pytest.raises(ValueError):
        tracer.load(deep)


def test_a_good_trace_still_loads_and_renders(sample):
    with tracer.trace(include=("sample",)) as t:
        sample.outer(2)
        sample.echo(1, k="two")
    again = tracer.load(t.to_json())
    render_everything(again)
    assert [c.name for c in again.calls] == [c.name for c in t.calls]
    assert tracer.load(json.dumps(trace_data())).calls[0].name == "f"


# -- 11-12: options -------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["yes", "no", 1, None])
def test_args_takes_a_bool(value):
    with pytest.raises(TypeError, match="args"):
        tracer.trace(args=value)


def run_cli(*argv, cwd=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "tracer", *argv], capture_output=True, text=True, timeout=60,
                          env=env, cwd=cwd)


@pytest.mark.parametrize("where", ["folder", "proc", "file-in-a-file"])
def test_command_line_refuses_an_output_it_cannot_write_before_running(tmp_path, where):
    target = {"folder": tmp_path, "proc": "/proc/self/x.json", "file-in-a-file": tmp_path / "f.txt" / "t.json"}[where]
    (tmp_path / "f.txt").write_text("")
    out = run_cli("-o", str(target), "--format", "json", "-c", "print('ran')")
    assert out.returncode == 2, out.stderr
    assert "ran" not in out.stdout and "Traceback" not in out.stderr
    assert "cannot write" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_command_line_says_in_one_line_when_the_output_goes_away_during_the_run(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    out = run_cli("-o", str(folder / "t.json"), "--format", "json", "-c",
                  f"import shutil; shutil.rmtree({str(folder)!r}); print('ran')")
    assert out.returncode != 0 and "ran" in out.stdout
    assert "Traceback" not in out.stderr and "cannot write" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
