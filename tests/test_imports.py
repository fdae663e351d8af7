"""tracer.trace_import: a real import in a fresh interpreter, against what `python -X importtime` says."""

import importlib.util
import os
import re
import subprocess
import sys
import textwrap

import pytest

from tracer.imports import ImportFailed, ImportTrace, library_location, parse_importtime, trace_import

IMPORTTIME_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \| +(\S+)$")


def importtime_names(code):
    """Module names, one per `-X importtime` line, of a fresh `python -c CODE`."""
    run = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                         check=True)
    return [m.group(1) for m in map(IMPORTTIME_LINE.match, run.stderr.splitlines()) if m]


@pytest.fixture(scope="module")
def json_trace():
    return trace_import("json")


@pytest.fixture()
def package(tmp_path):
    """Write modules into a folder and give the env that puts it on the child's path."""
    def write(**modules):
        for name, code in modules.items():
            (tmp_path / f"{name}.py").write_text(textwrap.dedent(code))
        return {"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    return write


def test_json_tree_matches_importtime(json_trace):
    startup = set(importtime_names("pass"))
    expected = [name for name in importtime_names("import json") if name not in startup]
    assert json_trace.count == len(expected)
    assert sorted(m.name for m in json_trace.walk()) == sorted(expected)
    assert [root.name for root in json_trace.modules] == ["json"]
    assert json_trace.find("json.scanner")[0].parent.name == "json.decoder"
    assert json_trace.total_us == json_trace.modules[0].cumulative_us


def test_json_times_nest(json_trace):
    for module in json_trace.walk():
        assert 0 <= module.self_us <= module.cumulative_us
        below = sum(child.cumulative_us for child in module.children)
        assert below <= module.cumulative_us
        # importtime rounds each figure up to a microsecond: self + children = cumulative, to that rounding
        assert abs(module.self_us + below - module.cumulative_us) <= len(module.children) + 1
        assert all(child.parent is module and child.depth == module.depth + 1 for child in module.children)


def test_json_native_library(json_trace):
    import _json
    if "_json" in sys.builtin_module_names:
        assert json_trace.libraries == []
    else:
        assert [os.path.realpath(p) for p in json_trace.libraries] == [os.path.realpath(_json.__file__)]
        assert json_trace.library_names == [os.path.basename(_json.__file__)]
    assert json_trace.python == sys.executable
    assert json_trace.missing == [] and json_trace.registered == []


def test_top_and_find(json_trace):
    by_cumulative = json_trace.top(3)
    assert by_cumulative[0].name == "json"
    assert [m.cumulative_us for m in by_cumulative] == sorted((m.cumulative_us for m in by_cumulative), reverse=True)
    by_self = json_trace.top(2, by="self")
    assert by_self[0].self_us == max(m.self_us for m in json_trace.walk())
    assert [m.name for m in json_trace.find("json.*")] == [m.name for m in json_trace.walk() if m.name.startswith("json.")]
    with pytest.raises(ValueError):
        json_trace.top(by="wall")


def test_text_tree(json_trace):
    text = json_trace.to_text(depth=10)
    for module in json_trace.walk():
        assert module.name in text
    assert "-X importtime" in text.splitlines()[0]
    shallow = json_trace.to_text(depth=0)
    assert "json.decoder" not in shallow and f"{json_trace.count - 1} modules below" in shallow
    assert str(json_trace) == json_trace.to_text()


def test_unknown_module_names_it():
    with pytest.raises(ImportFailed) as failure:
        trace_import("no_such_module_for_tracer")
    assert "no_such_module_for_tracer" in str(failure.value)
    assert "ModuleNotFoundError" in str(failure.value)
    assert failure.value.module == "no_such_module_for_tracer"


def test_module_raising_shows_child_stderr(package):
    env = package(raises_on_import="import json\nraise ValueError('broken on purpose')\n")
    with pytest.raises(ImportFailed) as failure:
        trace_import("raises_on_import", env=env)
    assert "ValueError: broken on purpose" in str(failure.value)
    assert "raises_on_import.py" in failure.value.stderr_tail
    assert "import time:" not in failure.value.stderr_tail


def test_child_dying_is_reported(package):
    env = package(exits_hard="import os\nos._exit(3)\n")
    with pytest.raises(ImportFailed, match="status 3"):
        trace_import("exits_hard", env=env)


def test_timeout(package):
    env = package(sleeps="import time\ntime.sleep(30)\n")
    with pytest.raises(TimeoutError, match="sleeps"):
        trace_import("sleeps", env=env, timeout=2)


def test_missing_and_registered_modules(package):
    env = package(optional_user="""
        import sys, types
        try:
            import no_such_optional_dependency
        except ImportError:
            pass
        sys.modules["optional_user.filed_by_hand"] = types.ModuleType("optional_user.filed_by_hand")
        print("module output on stdout must not confuse the result")
    """)
    t = trace_import("optional_user", env=env)
    assert t.missing == ["no_such_optional_dependency"]
    assert not t.find("no_such_optional_dependency")[0].loaded and t.modules[0].loaded
    assert t.registered == ["optional_user.filed_by_hand"]
    assert "failed" in t.to_text(depth=3)
    assert t.count == len(t.modules[0].imported()) and "no_such_optional_dependency" not in t.modules[0].imported()


def test_count_is_modules_not_importtime_lines(tmp_path):
    # importing `parent.child` first imports `parent`, whose __init__ imports the child: -X importtime
    # then lists parent.child twice, and a dependency tried twice and missing is listed twice too
    (tmp_path / "parent").mkdir()
    (tmp_path / "parent" / "__init__.py").write_text("import parent.child\n")
    (tmp_path / "parent" / "child.py").write_text(
        "for _ in range(2):\n    try:\n        import no_such_dependency\n    except ImportError:\n        pass\n")
    (tmp_path / "entry.py").write_text("import parent.child\n")
    t = trace_import("entry", env={"PYTHONPATH": str(tmp_path)})
    names = [m.name for m in t.walk()]
    assert names.count("parent.child") == 2 and names.count("no_such_dependency") == 2
    assert t.count == 3 and t.modules[0].imported() == {"entry", "parent", "parent.child"}
    assert t.missing == ["no_such_dependency"]
    assert "3 modules" in t.summary()


def test_html_is_escaped_and_a_preformatted_tree():
    lines = ("import time:       100 |        300 |   a<img src=x onerror=alert(1)>\n"
             "import time:       200 |        300 | pkg\n")
    roots = parse_importtime(lines)
    result = {"python": "python", "version": "3", "platform": sys.platform, "modules_added": ["pkg"],
              "libraries": ["/lib/<b>evil</b>.so"], "all_libraries": [], "library_source": "test & check",
              "site_packages": [], "prefixes": []}
    page = ImportTrace("pkg", roots, result, 0.0).to_html(depth=5)
    assert "<img" not in page and "<b>evil" not in page and "<script" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "test &amp; check" in page
    assert "<details" not in page  # nbconvert's sanitizer would show it as text; the nesting is in the guides
    assert "\n   └─ a&lt;img src=x onerror=alert(1)&gt;  " in page


def test_library_locations_hide_the_machines_folders():
    site = os.path.join(os.sep, "home", "someone", "env", "lib", "python3.11", "site-packages")
    prefix = os.path.join(os.sep, "home", "someone", "env")
    base = os.path.join(os.sep, "opt", "python3.11")
    libraries = [os.path.join(site, "nvidia", "cu13", "lib", "libcudart.so.13"),
                 os.path.join(base, "lib", "python3.11", "lib-dynload", "_json.so"),
                 os.path.join(prefix, "lib", "libffi.so.8"),
                 os.path.join(os.sep, "usr", "lib", "libz.so.1")]
    assert [library_location(path, [site], [prefix, base]) for path in libraries] == [
        "site-packages/nvidia/cu13/lib/libcudart.so.13", "<python>/lib/python3.11/lib-dynload/_json.so",
        "<python>/lib/libffi.so.8", "libz.so.1"]
    assert library_location(os.path.join(site + "-other", "x.so"), [site], []) == "x.so"
    result = {"python": "python", "version": "3", "platform": sys.platform, "modules_added": ["pkg"],
              "libraries": libraries, "all_libraries": libraries, "library_source": "test",
              "site_packages": [site], "prefixes": [prefix, base]}
    t = ImportTrace("pkg", parse_importtime("import time:       1 |        1 | pkg\n"), result, 0.0)
    assert t.libraries == libraries  # the paths stay on the object
    page = t.to_html()
    assert 'title="site-packages/nvidia/cu13/lib/libcudart.so.13"' in page
    assert "someone" not in page and "/opt/" not in page and "/usr/" not in page


def test_json_locations_are_relative(json_trace):
    for location in json_trace.library_locations:
        assert not os.path.isabs(location) and sys.prefix not in location and sys.base_prefix not in location


@pytest.mark.torch
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_import_torch():
    t = trace_import("torch")
    assert t.modules[0].name == "torch"
    assert t.find("torch._C") and t.find("torch._C")[0].loaded
    assert t.count > 500
    assert "torch._C._nn" in t.registered
    if sys.platform == "linux":
        names = t.library_names
        assert "libtorch_python.so" in names and "libtorch_cpu.so" in names
        everything = [os.path.basename(p) for p in t.all_libraries]
        libc = next(i for i, name in enumerate(everything) if name.startswith("libc.so"))
        assert libc < everything.index("libtorch_cpu.so") and libc < everything.index("libtorch_python.so")
        assert names.index("libtorch_global_deps.so") < names.index("libtorch_python.so")
        assert t.library_source.startswith("load order")
        assert "site-packages/torch/lib/libtorch_cpu.so" in t.library_locations
    page = t.to_html()
    for folder in {sys.prefix, sys.base_prefix, os.path.dirname(os.path.dirname(importlib.util.find_spec("torch").origin))}:
        assert folder not in page
    assert t.count == len({m.name for m in t.walk() if m.loaded}) and len(t.missing) == len(set(t.missing))
