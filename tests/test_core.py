"""The torch-free core: recording, the tree, queries, exports. Runs on Python 3.10 to 3.13."""

import json
import os
import re
import subprocess
import gc
import sys
import textwrap
import threading

import pytest

import tracer
from conftest import has_torch
from tracer.record.events import RAISED

from tracer.record import monitoring as monitoring_backend
from tracer.record import setprofile as setprofile_backend

from conftest import C_MODULES, MONITORING_CALLBACKS, SETPROFILE_CALLBACKS


def names(call):
    return [c.name for c in call.children]


@pytest.fixture(params=SETPROFILE_CALLBACKS)
def setprofile_callback(request, monkeypatch):
    monkeypatch.setattr(setprofile_backend, "USE_C", request.param == "C")
    return request.param


def test_tree_nests_calls_in_order(sample, backend):
    with tracer.trace(include=("sample",), backend=backend) as t:
        sample.outer(3)
        sample.Shape(4).area()
    assert names(t.root) == ["outer", "Shape.__init__", "Shape.area"]
    outer = t.root.children[0]
    assert names(outer) == ["helper"] * 3
    assert [c.depth for c in outer.children] == [2, 2, 2]
    assert outer.relpath == "sample/__init__.py"
    assert outer.line == sample.outer.__code__.co_firstlineno
    assert outer.module == "sample"
    assert outer.url is None  # no repository is known for this package
    assert t.meta["backend"] == backend
    assert all(c.duration_ns >= 0 for c in t.calls)
    assert outer.duration_ns >= sum(c.duration_ns for c in outer.children)


def test_calls_from_excluded_code_hang_under_the_nearest_kept_caller(sample, backend):
    with tracer.trace(include=("sample",), backend=backend) as t:
        sample.via_other(4)
    via = t.root.children[0]
    assert via.name == "via_other"
    assert names(via) == ["helper"]  # other.call_back is not kept; its call to helper is


def test_arguments_are_summarised_never_repr(sample, backend):
    with tracer.trace(include=("sample",), backend=backend) as t:
        sample.Shape(2).area()
        sample.echo(1, "x" * 100, [1, 2], {"a": 1}, None, short="hi", obj=sample.Shape(1))
    area = t.find("Shape.area")[0]
    assert area.args == {"self": "Shape"}
    echo = t.find("echo")[0]
    assert echo.args == {"args": "tuple[5]", "kwargs": "dict[2]"}
    init = t.find("Shape.__init__")[0]
    assert init.args == {"self": "Shape", "n": "2"}


def test_exception_propagates_unchanged_and_calls_are_marked(sample, backend):
    before = sys.getprofile()
    with pytest.raises(ValueError) as info:
        with tracer.trace(include=("sample",), backend=backend) as t:
            sample.boom()
    assert str(info.value) == "boom"
    assert sys.getprofile() is before
    boom = t.root.children[0]
    assert boom.name == "boom"
    assert boom.error == "ValueError"  # the exception that left the block names the chain it went through
    assert boom.children[0].error is None
    assert t.meta["error"] == "ValueError"


def test_caught_exceptions_mark_the_raising_call(sample, backend):
    with tracer.trace(include=("sample",), backend=backend) as t:
        assert sample.catches() == "caught"
    catches = t.root.children[0]
    assert catches.error is None
    expected = "ValueError" if backend == "sys.monitoring" else RAISED  # setprofile cannot see the type
    assert catches.children[0].error == expected


def test_profile_function_is_restored(sample, setprofile_callback):
    seen = []

    def mine(frame, event, arg):
        seen.append(event)

    sys.setprofile(mine)
    try:
        with tracer.trace(include=("sample",), backend="setprofile") as t:
            sample.helper(1)
        assert sys.getprofile() is mine
    finally:
        sys.setprofile(None)
    assert names(t.root) == ["helper"]
    assert any("was paused during the block" in note for note in t.meta["notes"])


def test_cprofile_is_turned_on_again(sample, setprofile_callback):
    import cProfile
    profile = cProfile.Profile()
    profile.enable()
    try:
        with tracer.trace(include=("sample",), backend="setprofile") as t:
            sample.helper(1)
        sample.outer(1)  # profiled again after the block
    finally:
        profile.disable()
    assert names(t.root) == ["helper"]
    assert any(entry.code.co_name == "outer" for entry in profile.getstats() if hasattr(entry.code, "co_name"))


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="viztracer sets a C profile function on 3.10/3.11 only")
def test_a_profile_set_from_c_is_switched_off_with_a_note(sample, setprofile_callback):
    """viztracer installs a non-callable object as its profile function when made: that cannot be put back."""
    viztracer = pytest.importorskip("viztracer", reason="viztracer (a pinned requirement) is not installed")
    viz = viztracer.VizTracer(verbose=0, register_global=False)
    try:
        before = sys.getprofile()
        assert before is not None and not callable(before)
        with tracer.trace(include=("sample",), backend="setprofile") as t:
            sample.helper(1)
        assert sys.getprofile() is None
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    assert names(t.root) == ["helper"]
    assert any("cannot be put back from Python" in note for note in t.meta["notes"])
    del viz


@pytest.mark.skipif(sys.implementation.name != "cpython" or not (3, 10) <= sys.version_info[:2] <= (3, 13),
                    reason="the C callbacks are written for CPython 3.10 to 3.13")
def test_the_c_callbacks_are_built_where_the_package_is_installed():
    import importlib.metadata
    try:
        importlib.metadata.distribution("pytorch-traced")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("tracer runs from the source tree here (PYTHONPATH), not installed: nothing was compiled")
    built = setprofile_backend._fastprofile if sys.version_info < (3, 12) else monitoring_backend._fastmonitor
    assert built is not None, "pip install did not compile the C callbacks: is a C compiler with the Python headers there?"


C_BACKENDS = ([pytest.param("setprofile", id="setprofile")] if len(SETPROFILE_CALLBACKS) == 2 else []) + \
    ([pytest.param("sys.monitoring", id="sys.monitoring")] if len(MONITORING_CALLBACKS) == 2 else [])


@pytest.mark.skipif(not C_BACKENDS, reason="no C callbacks are built here")
@pytest.mark.parametrize("name", C_BACKENDS)
@pytest.mark.parametrize("layers", [("python",), ("python", "builtin")])
def test_c_and_python_callbacks_record_the_same_tree(sample, monkeypatch, name, layers):
    texts = []
    for use_c in (True, False):
        monkeypatch.setattr(C_MODULES[name], "USE_C", use_c)
        with tracer.trace(include=("sample",), layers=layers, backend=name) as t:
            sample.outer(3)
            list(sample.gen(3))
            sample.catches()
            sample.recurse(5)
            sample.echo(1, "two", key=3.0)
            sample.Shape("two")
            try:
                sample.boom()
            except ValueError:
                pass
        texts.append(t.to_text())
    assert texts[0] == texts[1]
    for part in ("(resumed)", "raised", "n='two'", "args=tuple[2], kwargs=dict[1]"):
        assert part in texts[0], texts[0]


def test_nested_traces_both_record(sample, backend):
    with tracer.trace(include=("sample",), backend=backend) as outer:
        sample.helper(1)
        with tracer.trace(include=("sample",), backend=backend) as inner:
            sample.outer(2)
        sample.helper(2)
    assert names(inner.root) == ["outer"]
    assert names(outer.root) == ["helper", "outer", "helper"]
    assert names(outer.root.children[1]) == ["helper", "helper"]


def test_generator_resumptions_hang_under_the_resumer_and_depth_never_drifts(sample, backend):
    with tracer.trace(include=("sample",), backend=backend) as t:
        for _ in sample.gen(3):
            sample.helper(0)
        sample.outer(1)
    top = names(t.root)
    # three resumptions that yield, one that finishes, each followed (but the last) by the loop's own call
    assert top == ["gen", "helper", "gen", "helper", "gen", "helper", "gen", "outer"]
    assert all(c.depth == 1 for c in t.root.children)
    assert [names(c) for c in t.root.children if c.name == "gen"] == [["helper"]] * 3 + [[]]
    assert t.root.children[-1].children[0].depth == 2
    gens = [c for c in t.root.children if c.name == "gen"]
    assert [g.resumed for g in gens] == [False, True, True, True]
    assert gens[0].args == {"n": "3"} and gens[1].args == {}  # a resumption has no arguments of its own
    assert "gen  sample/__init__.py:" in str(t) and "(resumed)" in str(t)
    assert [c.resumed for c in tracer.load(t.to_json()).calls] == [c.resumed for c in t.calls]


def test_coroutine_resumptions_never_drift_in_depth(sample, backend):
    import asyncio
    with tracer.trace(include=("sample",), backend=backend) as t:
        assert asyncio.run(sample.tick(3)) == 3
        sample.helper(0)
    ticks = [c for c in t.root.children if c.name == "tick"]
    assert len(ticks) == 4  # the start and three resumptions, each hung under the event loop's caller
    assert all(c.depth == 1 for c in t.root.children)
    assert t.count("helper") == 4 and t.root.children[-1].name == "helper"


def test_deep_recursion_records(sample, backend):
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)
    try:
        with tracer.trace(include=("sample",), backend=backend) as t:
            assert sample.recurse(2000) == 2000
    finally:
        sys.setrecursionlimit(limit)
    assert len(t) == 2001
    deepest = max(t.calls, key=lambda c: c.depth)
    assert deepest.depth == 2001
    text = str(t)
    assert text.count("recurse") == 2001
    again = tracer.load(t.to_json())
    assert max(c.depth for c in again.calls) == 2001


def test_threads_are_not_traced_and_the_trace_says_so(sample, backend):
    with tracer.trace(include=("sample",), backend=backend) as t:
        worker = threading.Thread(target=sample.outer, args=(3,))
        worker.start()
        worker.join()
        sample.helper(1)
    assert names(t.root) == ["helper"]
    assert any("threads" in note for note in t.meta["notes"])


def test_event_cap_truncates_and_the_code_runs_on(sample, backend):
    with tracer.trace(include=("sample",), backend=backend, max_events=10) as t:
        assert sample.outer(50) == sum(i ** 0.5 + i for i in range(50))
    assert t.truncated
    assert t.meta["truncated_at"] == "outer"
    assert any(note.startswith("truncated") for note in t.meta["notes"])
    assert t.root.children[0].open
    assert len(t) <= 10
    assert sys.getprofile() is None


def test_depth_limit_keeps_the_top_levels(sample, backend):
    with tracer.trace(include=("sample",), backend=backend, depth=1) as t:
        sample.outer(3)
    assert names(t.root) == ["outer"]
    assert t.root.children[0].children == []
    assert t.meta["hidden_below_depth"] == 3


@pytest.mark.parametrize("kwargs, error, words", [
    ({"layers": ("python", "cuda")}, ValueError, "python, builtin, aten"),
    ({"layers": ()}, ValueError, "layers is empty"),
    ({"layers": ("builtin",)}, ValueError, "python layer"),
    ({"include": ("torch", 3)}, TypeError, "strings"),
    ({"include": 42}, TypeError, "package name"),
    ({"include": ("not a package",)}, ValueError, "dotted package name"),
    ({"depth": -1}, ValueError, "0 or more"),
    ({"depth": 1.5}, TypeError, "whole number"),
    ({"max_events": 0}, ValueError, "positive"),
    ({"backend": "ptrace"}, ValueError, "setprofile"),
])
def test_bad_options_say_what_is_allowed(kwargs, error, words):
    with pytest.raises(error, match=words):
        tracer.trace(**kwargs)


def test_find_count_and_expect_path(sample):
    with tracer.trace(include=("sample",)) as t:
        sample.outer(2)
        sample.Shape(1).area()
    assert t.count("helper") == 3
    assert t.count("sample.helper") == 3  # module.name works too
    assert [c.name for c in t.find("Shape.*")] == ["Shape.__init__", "Shape.area"]
    chain = t.expect_path("Shape.area", "helper")
    assert [c.name for c in chain] == ["Shape.area", "helper"]


def test_expect_path_failure_shows_the_longest_match_and_what_was_there(sample):
    with tracer.trace(include=("sample",)) as t:
        sample.outer(2)
    with pytest.raises(tracer.ClaimError) as info:
        t.expect_path("outer", "helper", "missing")
    message = str(info.value)
    assert isinstance(info.value, AssertionError)
    assert "longest match: outer" in message and "> helper" in message
    assert "no 'missing' below helper" in message
    assert tracer.claims.LEDGER[-1]["status"] == "failed"
    with pytest.raises(tracer.ClaimError, match="the calls there: helper x2"):
        t.expect_path("outer", "nothing")


def test_claims_are_recorded(tmp_path, monkeypatch):
    ledger = tmp_path / "ledger.jsonl"
    monkeypatch.setenv("TRACER_LEDGER", str(ledger))
    tracer.claim("two is even", 2 % 2 == 0)
    tracer.claim_equal("one plus one", 1 + 1, 2)
    tracer.skip("runs on CUDA", "no CUDA device here")
    with pytest.raises(tracer.ClaimError, match="found 3, expected 2"):
        tracer.claim_equal("one plus two is two", 1 + 2, 2)
    rows = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert [r["status"] for r in rows] == ["passed", "passed", "skipped", "failed"]
    with pytest.raises(ValueError):
        tracer.skip("no reason", "")


def test_diff_names_what_ran_in_one_and_not_the_other(sample):
    with tracer.trace(include=("sample",)) as a:
        sample.outer(2)
    with tracer.trace(include=("sample",)) as b:
        sample.outer(3)
        sample.catches()
    d = tracer.diff(a, b)
    assert d.only_a == {}
    assert d.only_b == {"catches": 1, "boom": 1}
    assert d.changed == {"helper": (2, 4)}
    assert "only in b: boom x1" in str(d)
    assert not tracer.diff(a, a)


def test_json_round_trip(sample, tmp_path):
    with tracer.trace(include=("sample",)) as t:
        sample.outer(2)
    path = tmp_path / "t.json"
    t.to_json(path)
    data = json.loads(path.read_text())
    assert data["schema"] == "tracer-trace" and data["version"] == 1
    assert data["calls"][1]["parent"] == 0
    again = tracer.load(path)
    assert str(again) == str(t)
    assert [c.name for c in again.calls] == [c.name for c in t.calls]
    assert tracer.load(t.to_json()).meta == json.loads(t.to_json())["meta"]
    with pytest.raises(ValueError, match="not a tracer trace"):
        tracer.load('{"calls": []}')
    with pytest.raises(ValueError, match="version"):
        tracer.load({"schema": "tracer-trace", "version": 99, "calls": []})


def test_perfetto_export_is_trace_event_json(sample, tmp_path):
    with tracer.trace(include=("sample",)) as t:
        sample.outer(2)
    data = json.loads(t.to_perfetto(tmp_path / "p.json"))
    events = data["traceEvents"]
    assert [e["name"] for e in events] == ["outer", "helper", "helper"]
    assert all(e["ph"] == "X" and e["cat"] == "python" and e["dur"] >= 0 for e in events)
    assert events[0]["args"]["location"].startswith("sample/__init__.py:")
    assert events[1]["ts"] >= events[0]["ts"]


def test_text_folds_repeated_leaves_and_limits_depth(sample):
    with tracer.trace(include=("sample",)) as t:
        sample.outer(3)
    text = str(t)
    assert "helper x3" in text
    assert "outer  sample/__init__.py:" in text
    shallow = t.to_text(depth=1)
    assert "helper" not in shallow and "... 3 calls below" in shallow


def test_reading_the_tree_while_recording_is_an_error(sample):
    with tracer.trace(include=("sample",)) as t:
        with pytest.raises(RuntimeError, match="still recording"):
            t.root
    with pytest.raises(RuntimeError, match="already recorded"):
        with t:
            pass


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tracer", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_command_line_traces_code_and_scripts(sample, tmp_path):
    pkg_dir = str(tmp_path)
    code = f"import sys; sys.path.insert(0, {pkg_dir!r}); import sample; sample.outer(2)"
    out = run_cli("--include", "sample", "-c", code)
    assert out.returncode == 0, out.stderr
    assert "outer  sample/__init__.py:" in out.stdout and "helper x2" in out.stdout
    script = tmp_path / "script.py"
    script.write_text("import sys, sample\nprint('args', sys.argv[1:])\nsample.outer(int(sys.argv[1]))\n")
    out = run_cli("--include", "sample", "--format", "json", "-o", str(tmp_path / "t.json"), str(script), "3")
    assert out.returncode == 0, out.stderr
    assert "args ['3']" in out.stdout
    assert tracer.load(tmp_path / "t.json").count("helper") == 3


def test_command_line_reports_bad_input_and_failing_code(tmp_path):
    out = run_cli("--layers", "python,gpu", "-c", "pass")
    assert out.returncode == 2 and "unknown layer 'gpu'" in out.stderr
    out = run_cli(str(tmp_path / "missing.py"))
    assert out.returncode == 2 and "no such script" in out.stderr
    out = run_cli("-c", "raise KeyError('x')")
    assert out.returncode == 1 and "KeyError" in out.stderr and "<traced block>" in out.stdout


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring needs Python 3.12+")
def test_both_backends_give_the_same_tree(sample):
    def shape(t):
        return [(c.name, c.depth, c.args, c.resumed) for c in t.calls]

    trees = []
    for backend in ("setprofile", "sys.monitoring"):
        with tracer.trace(include=("sample",), backend=backend) as t:
            sample.outer(3)
            list(sample.gen(2))
            sample.catches()
            sample.via_other(1)
        trees.append(shape(t))
    assert trees[0] == trees[1]


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring needs Python 3.12+")
def test_monitoring_tool_id_is_not_the_profilers_and_is_freed(sample):
    mon = sys.monitoring
    taken = [tool for tool in (3, 4) if mon.get_tool(tool) is None]
    for tool in taken:
        mon.use_tool_id(tool, "someone else")
    try:
        with tracer.trace(include=("sample",)) as t:
            assert mon.get_tool(5) == "tracer"
            sample.helper(1)
        assert mon.get_tool(5) is None
        assert names(t.root) == ["helper"]
    finally:
        for tool in taken:
            mon.free_tool_id(tool)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring needs Python 3.12+")
def test_monitoring_says_when_no_tool_id_is_free():
    mon = sys.monitoring
    free = [tool for tool in range(6) if mon.get_tool(tool) is None]
    for tool in free:
        mon.use_tool_id(tool, "someone else")
    try:
        with pytest.raises(RuntimeError, match="every sys.monitoring tool id is taken"):
            with tracer.trace():
                pass
    finally:
        for tool in free:
            mon.free_tool_id(tool)


def test_escaped_exception_is_not_pinned_on_a_caught_one(tmp_path, monkeypatch, backend):
    (tmp_path / "chain.py").write_text(
        "def probe():\n    raise AttributeError('no')\n\n"
        "def register():\n    try:\n        probe()\n    except AttributeError:\n        pass\n"
        "    raise ValueError('bad')\n\n"
        "def outer():\n    register()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import chain
    with pytest.raises(ValueError):
        with tracer.trace(include=("chain",), backend=backend) as t:
            chain.outer()
    outer, register, probe = t.expect_path("outer", "register", "probe")
    assert outer.error == register.error == "ValueError"
    assert probe.error == ("AttributeError" if backend == "sys.monitoring" else RAISED)


def test_colour_only_when_asked_and_rich_is_there(sample):
    with tracer.trace(include=("sample",)) as t:
        sample.outer(2)
    plain = t.to_text()
    assert "\x1b[" not in plain
    coloured = t.to_text(color=True)
    try:
        import rich  # noqa: F401
    except ImportError:
        assert coloured == plain  # without rich, colour falls back to plain text
    else:
        assert "\x1b[" in coloured
        assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain


def test_subtree_is_a_trace_of_its_own(sample):
    with tracer.trace(include=("sample",)) as t:
        sample.Shape(1).area()
        sample.outer(2)
    outer = t.find("outer")[0]
    sub = t.subtree(outer)
    assert sub.root.name == "outer" and sub.root.depth == 0
    assert [c.name for c in sub.calls] == ["helper", "helper"]
    assert all(c.depth == 1 for c in sub.calls)
    assert "helper x2" in str(sub)
    assert outer.depth == 1 and outer.parent is t.root  # the original is unchanged


def test_entering_a_trace_twice_is_refused_and_the_hooks_go(sample, backend):
    before = sys.getprofile()
    t = tracer.trace(include=("sample",), backend=backend)
    with t:
        with pytest.raises(RuntimeError, match="already recording"):
            with t:
                pass
        sample.helper(1)
    assert sys.getprofile() is before
    assert names(t.root) == ["helper"]
    if backend == "sys.monitoring":
        assert "tracer" not in [sys.monitoring.get_tool(i) for i in range(6)]


def test_truncation_below_the_depth_limit_builds(sample, backend):
    with tracer.trace(include=("sample",), backend=backend, depth=1, max_events=4) as t:
        sample.outer(5)
    assert t.truncated and t.meta["truncated_at"] == "outer"


def test_include_takes_a_comma_separated_string(sample):
    __import__("other")
    with tracer.trace(include="other, sample") as t:
        sample.via_other(1)
    assert t.expect_path("via_other", "call_back", "helper")
    assert t.root.children[0].children[0].module == "other"


def test_nested_traces_with_different_include_sets(sample, backend):
    __import__("other")  # imported before: its module code is not part of the block
    with tracer.trace(include=("sample",), backend=backend) as outer:
        with tracer.trace(include=("other",), backend=backend) as inner:
            sample.via_other(1)
    assert [c.name for c in inner.calls] == ["call_back"]
    assert [c.name for c in outer.calls] == ["via_other", "helper"]


def test_traced_code_that_replaces_the_profile_function_is_noted(sample):
    with tracer.trace(include=("sample",), backend="setprofile") as t:
        sample.helper(1)
        sys.setprofile(None)
        sample.helper(2)
    assert sys.getprofile() is None
    assert names(t.root) == ["helper"]
    assert any("replaced the profile function" in note for note in t.meta["notes"])


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring needs Python 3.12+")
def test_traced_code_that_frees_the_tool_id_keeps_its_own_exception(sample):
    with pytest.raises(KeyError, match="mine"):
        with tracer.trace(include=("sample",), backend="sys.monitoring") as t:
            sample.helper(1)
            tool = [i for i in range(6) if sys.monitoring.get_tool(i) == "tracer"][0]
            sys.monitoring.set_events(tool, 0)
            sys.monitoring.free_tool_id(tool)
            raise KeyError("mine")
    assert any("freed sys.monitoring tool" in note for note in t.meta["notes"])


def test_expect_path_stays_fast_on_deep_recursion(sample):
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)
    try:
        with tracer.trace(include=("sample",)) as t:
            sample.recurse(300)
    finally:
        sys.setrecursionlimit(limit)
    with pytest.raises(tracer.ClaimError):  # every chain is tried, each (call, step) once
        t.expect_path("recurse", "recurse", "recurse", "recurse", "helper")
    assert len(t.expect_path(*["recurse"] * 6)) == 6


def test_load_says_what_is_wrong(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json is not JSON"):
        tracer.load(bad)
    with pytest.raises(ValueError, match="'calls' must be a non-empty list"):
        tracer.load({"schema": "tracer-trace", "version": 1})
    with pytest.raises(ValueError, match="call 1 is malformed"):
        tracer.load({"schema": "tracer-trace", "version": 1,
                     "calls": [{"id": 0, "parent": None, "name": "root"}, {"id": 1, "parent": 7, "name": "x"}]})


def test_perfetto_keeps_arguments_apart_from_its_own_fields(sample):
    with tracer.trace(include=("sample",)) as t:
        sample.echo(url="x")
    event = json.loads(t.to_perfetto())["traceEvents"][0]
    assert event["args"]["arguments"] == {"args": "tuple[0]", "kwargs": "dict[1]"}
    assert event["args"]["location"].startswith("sample/__init__.py:")


def test_command_line_passes_exit_messages_and_checks_the_output_folder(tmp_path):
    out = run_cli("-c", "import sys; sys.exit('stopping here')")
    assert out.returncode == 1 and "stopping here" in out.stderr
    out = run_cli("-o", str(tmp_path / "missing" / "t.json"), "--format", "json", "-c", "print('ran')")
    assert out.returncode == 2 and "no folder" in out.stderr and "ran" not in out.stdout


@pytest.mark.skipif(has_torch(), reason="checks the error when torch is not installed")
def test_aten_layer_without_torch_says_to_install_it():
    with pytest.raises(ValueError, match="needs torch"):
        tracer.trace(layers=("python", "aten"))


def test_identical_functions_in_two_files_stay_apart(tmp_path, monkeypatch, backend):
    """Code objects that differ only in their file compare equal: the tracer must tell them apart."""
    for package in ("twins", "outsider"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
        for module in ("one", "two"):
            (tmp_path / package / f"{module}.py").write_text("def f():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import outsider.one
    import twins.one
    import twins.two
    with tracer.trace(include=("twins",), backend=backend) as t:
        outsider.one.f()  # the same code, outside the include set, seen first
        twins.one.f()
        twins.two.f()
    assert [(c.module, c.relpath) for c in t.calls] == [("twins.one", "twins/one.py"), ("twins.two", "twins/two.py")]
    assert "f x2" not in str(t)  # two functions, not one called twice


def test_an_include_that_names_no_package_is_noted(sample):
    with tracer.trace(include=("sample", "smaple")) as t:
        sample.helper(1)
    assert any("'smaple'" in note and "a typo?" in note for note in t.meta["notes"])
    assert not any("'sample'" in note for note in t.meta["notes"])


def test_builtin_keys_of_methods_made_anew_at_each_access_are_cached_once():
    from tracer.record import Recording
    rec = Recording(include=("sample",), layers=("python", "builtin"))
    assert dict.fromkeys is not dict.fromkeys  # a new bound method at each access
    keys = {rec.builtin_key(dict.fromkeys) for _ in range(100)}
    assert keys == {None} and len(rec._builtin_keys) == 1


@pytest.mark.skipif(not C_BACKENDS, reason="no C callbacks are built here")
@pytest.mark.parametrize("name", C_BACKENDS)
def test_an_error_inside_the_c_callbacks_drops_the_event_not_the_program(sample, monkeypatch, name):
    from tracer.record.scope import Scope

    def broken(self, code, module_name):
        raise RuntimeError("classification failed")

    monkeypatch.setattr(C_MODULES[name], "USE_C", True)
    monkeypatch.setattr(Scope, "classify_code", broken)
    with tracer.trace(include=("sample",), backend=name) as t:
        assert sample.outer(3) == sum(i ** 0.5 + i for i in range(3))
    assert len(t) == 0
    assert any("events were not recorded because recording them failed" in note for note in t.meta["notes"])


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring is Python 3.12 and newer")
@pytest.mark.parametrize("callback", MONITORING_CALLBACKS)
def test_builtin_layer_sees_c_methods_of_an_included_subclass_on_both_backends(sample, monkeypatch, callback):
    """sys.monitoring hands `counts.get` over as the unbound dict.get and the instance: bound again, it is
    the included class's method, as setprofile sees it."""
    monkeypatch.setattr(monitoring_backend, "USE_C", callback == "C")
    texts = {}
    for backend in ("setprofile", "sys.monitoring"):
        with tracer.trace(include=("sample",), layers=("python", "builtin"), backend=backend) as t:
            sample.tally(["a", "b", "a"])
        texts[backend] = t.to_text()
    assert texts["setprofile"] == texts["sys.monitoring"]
    tally = t.find("tally")[0]
    assert [c.name for c in tally.children] == ["Counts.get"] * 3 + ["Counts.setdefault"]
    assert {c.module for c in tally.children} == {"sample"}


@pytest.mark.skipif(has_torch(), reason="torch is installed: the message is for a Python without it")
def test_a_torch_link_without_torch_says_torch_is_not_installed():
    with pytest.raises(ModuleNotFoundError, match=r"torch is not installed in this Python .*install torch"):
        tracer.link("torch/__init__.py")


def test_the_same_c_method_on_an_included_and_a_plain_type_is_told_apart(tmp_path, monkeypatch, backend):
    """dict.get bound to an included dict subclass is the package's, on a plain dict it is not: the C recorders
    remember builtin_key's answer by the C function and its owner's type, so alternating calls keep them apart."""
    (tmp_path / "mixedowners.py").write_text(textwrap.dedent('''
        class Counts(dict):
            pass

        def mixed(words):
            counts, plain = Counts(), {}
            for word in words:
                counts.get(word)
                plain.get(word)
                counts.setdefault(word, 0)
                plain.setdefault(word, 0)
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("mixedowners", None)
    import mixedowners
    with tracer.trace(include=("mixedowners",), layers=("python", "builtin"), backend=backend) as t:
        mixedowners.mixed(["a", "b", "a"])
    (mixed,) = t.find("mixed")
    assert [c.name for c in mixed.children] == ["Counts.get", "Counts.setdefault"] * 3
    assert {c.module for c in mixed.children} == {"mixedowners"}
    sys.modules.pop("mixedowners", None)


def _calls_alive():
    from tracer.model import Call
    return sum(1 for o in gc.get_objects() if type(o) is Call)


def test_the_tree_joins_the_oldest_generation_without_a_young_collection(sample):
    """The tree is long-lived: it goes to the oldest generation directly, so no young collection after the
    block walks its thousands of objects only to keep them; dropped, it is collected as before."""
    gc.collect()
    before, frozen = _calls_alive(), gc.get_freeze_count()
    with tracer.trace(include=("sample",)) as t:
        for _ in range(1_500):
            sample.outer(3)
    assert t.meta["events"] >= tracer.model._PROMOTE_EVENTS and gc.get_freeze_count() == frozen
    # Python 3.12 keeps immortal objects in the frozen generation: the C module's splice leaves it be;
    # gc.freeze()/unfreeze() (no C module) leave the tree young where anything is frozen
    if frozen == 0 or tracer.model._set_young_aside is not None:
        assert gc.get_count()[0] < 700  # nothing the build made waits in the young generation
        oldest = {id(o) for o in gc.get_objects(generation=2)}
        assert all(id(c) in oldest for c in t.root.walk())
    del t
    gc.collect()
    assert _calls_alive() == before


def test_objects_the_program_froze_stay_frozen(sample):
    gc.collect()
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with tracer.trace(include=("sample",)) as t:
            for _ in range(1_500):  # past _PROMOTE_EVENTS: the tree is moved, the frozen objects are not
                sample.outer(3)
        assert t.meta["events"] >= tracer.model._PROMOTE_EVENTS and gc.get_freeze_count() == frozen
        if tracer.model._set_young_aside is not None:
            oldest = {id(o) for o in gc.get_objects(generation=2)}
            assert all(id(c) in oldest for c in t.root.walk())
    finally:
        gc.unfreeze()


def test_a_summariser_changed_between_traces_is_the_one_used(sample, backend, monkeypatch):
    """The C callbacks remember what summary._fast_by_type says of a type in front of the dict: a change to
    it (here a new summariser for a type already seen) is what the next call gets."""
    from tracer.record import summary

    class Thing:  # what sample.tally takes: keys to count
        def __iter__(self):
            return iter(())

        def __len__(self):
            return 0

    for text in ("Thing", "a changed Thing"):
        if text != "Thing":  # as summarise() files a type on first sight: its summariser, and what C reads
            monkeypatch.setitem(summary._by_type, Thing, summary._named(text))
            monkeypatch.setitem(summary._fast_by_type, Thing, text)
        with tracer.trace(include=("sample",), backend=backend) as t:
            for _ in range(3):
                sample.tally(Thing())
        assert [c.args for c in t.find("tally")] == [{"keys": text}] * 3


def test_a_call_without_children_gets_its_list_when_first_read(sample, backend):
    """The build makes no list for a call without children (CallBase, in C): reading `children` makes it,
    the call keeps it, and it takes appends as any call's list does."""
    with tracer.trace(include=("sample",), backend=backend) as t:
        sample.outer(2)
    leaf = next(c for c in t.root.walk() if c.name == "helper")
    kids = leaf.children
    assert type(kids) is list and kids == [] and leaf.children is kids
    added = tracer.model.Call("added", parent=leaf)
    kids.append(added)
    assert leaf.children == [added] and added.depth == leaf.depth + 1
    for call in t.root.walk():
        assert type(call.start_ns) is int and type(call.duration_ns) is int and call.duration_ns >= 0
        assert all(child.parent is call and child.depth == call.depth + 1 for child in call.children)
        assert all(call.start_ns <= child.start_ns and child.start_ns + child.duration_ns <= call.start_ns
                   + call.duration_ns for child in call.children if child is not added)


_TREE_SHAPE = """
import json, sys
{block}
import sample, tracer
with tracer.trace(include=("sample",)) as t:
    sample.outer(2); sample.catches(); list(sample.gen(2)); sample.echo(1, k="v")
print(json.dumps([[c.depth, c.name, c.kind, c.args, c.error, c.resumed, len(c.children), c.start_ns <= c.parent.start_ns
                   + c.parent.duration_ns] for c in t.root.walk() if c.parent is not None]))
print(type(t.root).__mro__[1].__name__)
"""


def test_the_tree_is_the_same_where_the_c_module_is_not_built(sample):
    """Without the C module (no compiler at install), Call's fields are plain slots and the tree is built
    in Python: the same tree."""
    block = "sys.modules['tracer.record._fastprofile'] = sys.modules['tracer.record._fastmonitor'] = None"
    trees, bases = [], []
    for code in (_TREE_SHAPE.format(block=""), _TREE_SHAPE.format(block=block)):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, check=True).stdout
        tree, base = out.splitlines()
        trees.append(json.loads(tree))
        bases.append(base)
    assert trees[0] == trees[1] and len(trees[0]) > 10
    assert bases[1] == "_PythonCallBase"
    assert bases[0] == ("_PythonCallBase" if tracer.model._fast is None else "CallBase")


_fast = tracer.model._fast


@pytest.mark.skipif(getattr(_fast, "set_young_aside", None) is None, reason="the C module is not built here")
def test_the_splice_moves_only_what_was_made_since_and_leaves_the_programs_young_objects_young():
    gc.collect()
    gc.disable()
    try:
        before = [[] for _ in range(50)]
        assert _fast.set_young_aside() is True
        assert _fast.set_young_aside() is False  # one at a time: a build inside a build leaves its tree young
        made = [[] for _ in range(50)]
        _fast.restore_young(True)
        young, oldest = ({id(o) for o in gc.get_objects(generation=g)} for g in (0, 2))
        assert all(id(o) in oldest and id(o) not in young for o in made)
        assert all(id(o) in young for o in before)
        assert _fast.set_young_aside() is True
        kept_young = [[] for _ in range(50)]
        _fast.restore_young(False)  # a build that failed: what it made stays young, beside the rest
        young = {id(o) for o in gc.get_objects(generation=0)}
        assert all(id(o) in young for o in before + kept_young)
        with pytest.raises(RuntimeError, match="set_young_aside first"):
            _fast.restore_young(True)
    finally:
        gc.enable()
    cycle = [before]
    cycle.append(cycle)
    del cycle, before, made, kept_young
    gc.collect()  # the lists are sound: a full collection walks them


@pytest.mark.skipif(getattr(_fast, "set_young_aside", None) is None, reason="the C module is not built here")
def test_the_build_leaves_the_programs_young_objects_young(sample):
    """No collection is forced to make room for the tree: what the program made last stays young."""
    from tracer.record import Recording
    rec = Recording(include=("sample",))
    rec.start()
    for _ in range(1_500):
        sample.outer(3)
    rec.stop()
    gc.collect()
    mine = [[] for _ in range(20)]
    root, _ = tracer.model.build(rec)
    young, oldest = ({id(o) for o in gc.get_objects(generation=g)} for g in (0, 2))
    assert all(id(o) in young for o in mine)
    assert all(id(c) in oldest for c in root.walk())


def test_a_build_that_fails_leaves_the_collector_sound(sample, monkeypatch):
    """An error while building (here a stand-in for one) reaches the program; what the build made and the
    program's own young objects stay with the collector, and collections go on."""
    def failing(rec, exc_type, consume=False):
        _ = [[] for _ in range(100)]
        raise RuntimeError("the build failed")
    monkeypatch.setattr(tracer.model, "_build", failing)
    gc.collect()
    young = [[] for _ in range(20)]
    with pytest.raises(RuntimeError, match="the build failed"):
        with tracer.trace(include=("sample",)):
            for _ in range(1_500):
                sample.outer(3)
    assert gc.isenabled()
    alive = {id(o) for o in gc.get_objects()}
    assert all(id(o) in alive for o in young)
    gc.collect()


def _populates():
    """Whether this system makes an arena present in one call (madvise MADV_POPULATE_WRITE: Linux 5.14)."""
    if not sys.platform.startswith("linux"):
        return False
    release = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return release is not None and tuple(map(int, release.groups())) >= (5, 14)


@pytest.mark.skipif(getattr(_fast, "arenas_wrapped", None) is None or not tracer.model.USE_C_BUILD,
                    reason="the C module is not built here, or the build runs in Python")
@pytest.mark.parametrize("fails", [False, True], ids=["built", "failed"])
def test_the_arena_wrapper_is_there_only_while_a_large_tree_is_built(sample, monkeypatch, fails):
    """build_calls wraps the arena allocator while it builds a large tree (_arenas.h), and puts it back
    when it returns, an error too; a small tree leaves it be. Read from info_of, which runs inside."""
    from tracer.record import Recording
    seen = []
    python_info = tracer.model._python_info

    def probed(*a, **k):
        seen.append(_fast.arenas_wrapped())
        if fails and large and len(seen) == 2:
            raise RuntimeError("info_of failed")
        return python_info(*a, **k)
    monkeypatch.setattr(tracer.model, "_python_info", probed)
    for repeat, large in ((1, False), (1_500, True)):
        rec = Recording(include=("sample",))
        rec.start()
        for _ in range(repeat):
            sample.outer(3)
        rec.stop()
        assert (len(rec.events) >= 10_000) is large
        seen.clear()
        if fails and large:
            with pytest.raises(RuntimeError, match="info_of failed"):
                tracer.model.build(rec)
        else:
            root, _ = tracer.model.build(rec)
            assert len(root.children) == repeat
        assert seen and _fast.arenas_wrapped() is False
        assert set(seen) == {large and _populates()}


def test_an_int_not_seen_yet_reads_as_its_repr_with_no_python_call_from_c(sample, backend, monkeypatch):
    """An int's summary is its repr, one text per value shared through the summariser's dict. The C
    callbacks make a new value's text themselves: one that fits in a C long kept in their own table, a
    longer one filed in the dict, the summariser called only to empty a full dict (summary._shared): the
    same texts, with no Python call for each int not seen yet."""
    from tracer.record import summary
    summary.summarise(0)  # the int summariser is made and filed on first sight
    texts, limit = summary._fast_by_type[int]
    shared, called = summary._by_type[int], []

    def counted(value):
        called.append(value)
        return shared(value)
    monkeypatch.setitem(summary._by_type, int, counted)
    for values in ([10**15 + 7 * i for i in range(limit + 50)],  # in a long; past the dict's limit
                   [2**70 + 7 * i for i in range(limit + 50)]):  # past a long: the dict empties
        called.clear()
        with tracer.trace(include=("sample",), backend=backend) as t:
            for value in values:
                sample.helper(value)
        assert [c.args["x"] for c in t.find("helper")] == [repr(v) for v in values]
        if C_MODULES[backend].USE_C and values[0] < 2**63:
            assert called == [] and values[-1] not in texts  # the C table's
        elif C_MODULES[backend].USE_C:
            assert 1 <= len(called) <= 2 and texts[values[-1]] == repr(values[-1])  # called where it was full
        else:
            assert called == values and texts[values[-1]] == repr(values[-1])
        assert len(texts) <= limit


def test_ints_read_as_their_repr_through_the_c_table_in_front_of_the_dict(sample, backend, monkeypatch):
    """The C callbacks remember the text of an int that fits in a long by its value, in front of the
    summariser's dict (4,096 entries, a collision replaces one). Every int, new objects each time, on both
    sides of the range, more of them than there are entries and more than the dict holds, reads as its
    repr; the table is good only for the dict it was read from: a new int summariser's dict is what counts."""
    from tracer.record import summary
    edges = [0, -1, 7, -5, 256, 257, 10**9, -10**9, 2**31, 2**62, 2**63 - 1, -2**63, 2**63, -2**63 - 1, 10**30]
    values = edges + list(range(-3_000, 9_000, 1))  # past 4,096 entries and past the dict's 10,000 texts
    for _ in range(2):  # the second time, most are remembered
        fresh = [int(str(v)) for v in values]  # not the objects filed
        with tracer.trace(include=("sample",), backend=backend) as t:
            for value in fresh:
                sample.Shape(value)
        assert [c.args["n"] for c in t.find("Shape.__init__")] == [repr(v) for v in values]
    replaced = summary._shared(summary._int_text, new_is_repr=True)  # as summarise() files a type's
    replaced.fast[0][5_000] = "the new dict's"
    monkeypatch.setitem(summary._by_type, int, replaced)
    monkeypatch.setitem(summary._fast_by_type, int, replaced.fast)
    with tracer.trace(include=("sample",), backend=backend) as t:
        sample.Shape(int("5000"))
    assert t.find("Shape.__init__")[0].args["n"] == "the new dict's"


def test_an_int_too_long_to_write_out_reads_as_its_size(sample, backend):
    """repr raises for an int of more digits than sys.get_int_max_str_digits() allows: its summary is its
    size, and the call is recorded as any other (the trace used to lose it, or raise into the program)."""
    huge = 10 ** 5000
    with tracer.trace(include=("sample",), backend=backend) as t:
        sample.Shape(huge)
        sample.Shape(3)
    assert [c.args["n"] for c in t.find("Shape.__init__")] == [f"int[{huge.bit_length()} bits]", "3"]


@pytest.mark.skipif(getattr(_fast, "slab_chunks", None) is None or not tracer.model.USE_C_BUILD,
                    reason="the C module is not built here, or the build runs in Python")
def test_the_builds_calls_live_in_chunks_freed_with_their_tree(sample):
    """build_calls cuts the calls it makes from chunks of 511 (_slab.h), a chunk freed with the last of its
    calls: chunks live as long as their trees. A call kept after its trace is dropped keeps its parents,
    and so the whole tree, readable. A small tree's calls are left to obmalloc: a chunk would be mostly empty."""
    gc.collect()
    before = _fast.slab_chunks()
    with tracer.trace(include=("sample",)) as small:
        sample.outer(3)
    assert len(small) > 1 and _fast.slab_chunks() == before
    with tracer.trace(include=("sample",)) as t:
        for _ in range(1_500):
            sample.outer(3)
    calls = len(t)
    assert calls > 511 and _fast.slab_chunks() - before == -(-calls // 511)  # the root is made in Python
    kept = t.find("helper")[-1]
    del t
    gc.collect()
    assert _fast.slab_chunks() - before == -(-calls // 511)
    root = kept
    while root.parent is not None:
        root = root.parent
    assert kept.name == "helper" and kept.args == {"x": "2"} and sum(1 for _ in root.walk()) == calls + 1
    del kept, root
    gc.collect()
    assert _fast.slab_chunks() == before


@pytest.mark.skipif(_fast is None or not tracer.model.USE_C_BUILD,
                    reason="the C module is not built here, or the build runs in Python")
def test_a_dropped_trees_chunks_are_kept_for_the_next_tree_and_released_on_request(sample):
    """A large tree's chunks, once its calls are freed, are kept (up to 16 MiB) for the next build, with the
    event log's array: the next tree is cut from them and reads as a tree built in new memory.
    release_memory() gives all of it back."""
    def record():
        with tracer.trace(include=("sample",)) as t:
            for _ in range(1_500):
                sample.outer(3)
        return t

    def shape(t):
        return [(c.name, c.depth, c.args, c.error, c.open, len(c.children)) for c in t.calls]

    gc.collect()
    tracer.release_memory()
    fresh = record()
    chunks = -(-len(fresh) // 511)
    expected = shape(fresh)
    del fresh
    gc.collect()
    kept = _fast.spare_memory()
    assert kept >= chunks * 511 * 128  # the chunks, and the log's array
    reused = record()  # cut from the kept chunks, its events in the kept array
    assert _fast.spare_memory() < kept and shape(reused) == expected
    del reused
    gc.collect()
    assert tracer.release_memory() >= chunks * 511 * 128
    assert tracer.record.spare_memory() == 0 and _fast.slab_chunks() == 0
