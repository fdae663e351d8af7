"""The worker machinery without torch: plain multiprocessing children run the DataLoader workers' recorder
(tracer.record.workers.traced_target), stream their events and are merged into the trace; how a child ends
(raises, os._exit, SIGKILL) is noted and what it streamed is kept. Runs on every core Python (.ci/test-core.sh)."""

import importlib
import multiprocessing
import os
import sys
import textwrap

import pytest

import tracer
from tracer.record import setprofile as setprofile_backend
from tracer.record import workers

CHILD = '''
import os
import signal
import threading

from tracer.record import workers


class Fetcher:
    def fetch(self, i):
        return square(i)


def square(i):
    return i * i


def in_a_thread(n):
    thread = threading.Thread(target=square, args=(n,), name="Helper")
    thread.start()
    thread.join()


def loop(n, ending):
    fetcher = Fetcher()
    in_a_thread(3)
    for i in range(n):
        workers.checkpoint(batch=i)  # what a DataLoader worker does before it waits for its next batch
        fetcher.fetch(i)
    if ending == "raise":
        raise ValueError("boom")
    if ending == "exit":
        os._exit(3)
    if ending == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
'''

# The tree every Python, start method and callback kind must give (names, nested).
EXPECTED = [
    ("square", []),
    ("worker 0", [
        ("thread MainThread", [
            ("loop", [("in_a_thread", []),
                      ("Fetcher.fetch", [("square", [])]),
                      ("Fetcher.fetch", [("square", [])]),
                      ("Fetcher.fetch", [("square", [])])]),
        ]),
        ("thread Helper", [("square", [])]),
    ]),
]


@pytest.fixture()
def wsample(tmp_path, monkeypatch):
    (tmp_path / "wsample.py").write_text(textwrap.dedent(CHILD))
    monkeypatch.syspath_prepend(str(tmp_path))  # spawn and forkserver children get the parent's sys.path
    sys.modules.pop("wsample", None)
    yield importlib.import_module("wsample")
    sys.modules.pop("wsample", None)


def shape(call):
    return [(c.name, shape(c)) for c in call.children]


def run_child(module, method, ending=None, n=3, **options):
    context = multiprocessing.get_context(method)
    with tracer.trace(include=("wsample",), workers=True, **options) as t:
        module.square(2)
        child = context.Process(target=workers.traced_target(module.loop, worker_id=0), args=(n, ending))
        child.start()
        child.join(60)
    assert child.exitcode is not None, "the child did not end"
    return t, child


CALLBACKS = ["C", "Python"] if setprofile_backend._fastprofile is not None else ["Python"]


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
@pytest.mark.parametrize("callbacks", CALLBACKS)
def test_a_child_is_recorded_thread_by_thread_and_merged(wsample, monkeypatch, method, callbacks):
    if method == "forkserver" and callbacks != CALLBACKS[0]:
        pytest.skip("the forkserver keeps the environment it started with: one callback kind is tested through it")
    monkeypatch.setattr(setprofile_backend, "USE_C", callbacks == "C")  # fork children inherit it
    if callbacks == "Python":
        monkeypatch.setenv("TRACER_PURE_PYTHON", "1")  # spawn children read it at import
    t, child = run_child(wsample, method)
    assert child.exitcode == 0
    assert shape(t.root) == EXPECTED
    node = t.workers[0]
    assert node.kind == "worker" and node.parent is t.root and node.depth == 1
    assert node.args == {"pid": str(child.pid), "worker_id": "0", "start_method": method}
    assert [c.kind for c in node.children] == ["thread", "thread"]
    assert [c.depth for c in node.walk()][:4] == [1, 2, 3, 4]
    fetched = [c for c in node.walk() if c.name == "Fetcher.fetch"]
    assert [c.batch for c in fetched] == [0, 1, 2]
    assert t.batches() == [(None, c) for c in fetched] and t.batch(1) == (None, fetched[1])
    assert "Fetcher.fetch  " in t.to_text() and "batch=1" in t.to_text()
    assert not [n for n in t.meta["notes"] if n.startswith("worker ")]  # it ended well: nothing to say
    loaded = tracer.load(t.to_json())
    assert shape(loaded.root) == EXPECTED and [c.batch for c in loaded.calls if c.batch is not None] == [0, 1, 2]


@pytest.mark.parametrize("ending, says", [
    ("raise", "ended by an exception: its loop raised ValueError"),
    ("exit", "ended without closing its trace (killed, or os._exit)"),
    ("kill", "ended without closing its trace (killed, or os._exit)"),
])
def test_a_child_that_ends_badly_keeps_what_it_streamed(wsample, ending, says, capfd):
    t, child = run_child(wsample, "fork", ending, n=4)
    assert child.exitcode == {"raise": 1, "exit": 3, "kill": -9}[ending]
    node = t.workers[0]
    assert any(note == f"worker 0 (pid {child.pid}) {says}" or note.startswith(f"worker 0 (pid {child.pid}) {says}")
               for note in t.meta["notes"]), t.meta["notes"]
    batches = [c.batch for c in node.walk() if c.name == "Fetcher.fetch"]
    assert batches[:3] == [0, 1, 2]  # streamed before the batch it was on; that one may be lost
    assert (node.open, node.children[0].children[0].open) == ((True, True) if ending != "raise" else (False, False))
    capfd.readouterr()  # the child's traceback, printed by multiprocessing


def test_max_events_applies_to_each_thread_of_a_child(wsample):
    t, child = run_child(wsample, "fork", n=40, max_events=30)
    assert child.exitcode == 0
    main = t.workers[0].children[0]
    assert 5 <= sum(1 for _ in main.walk()) - 1 <= 16  # 30 events: a call and its return each, but the open ones
    assert any("recorded more than 30 events (max_events)" in note for note in t.meta["notes"]), t.meta["notes"]
    assert any(c.open for c in main.walk())  # the calls it was inside when it stopped


def test_the_trace_directory_goes_and_nothing_stays_patched(wsample):
    t, _ = run_child(wsample, "fork")
    assert not workers._ACTIVE
    with pytest.raises(RuntimeError, match="needs a running tracer.trace"):
        workers.traced_target(wsample.loop)


def test_nested_traces_both_get_the_child(wsample):
    context = multiprocessing.get_context("fork")
    with tracer.trace(include=("wsample",), workers=True) as outer:
        with tracer.trace(include=("wsample",), workers=True) as inner:
            child = context.Process(target=workers.traced_target(wsample.loop), args=(2, None))
            child.start()
            child.join(60)
    assert [w.args["pid"] for w in inner.workers] == [w.args["pid"] for w in outer.workers] == [str(child.pid)]


def test_workers_must_be_a_bool():
    with pytest.raises(TypeError, match="workers must be True or False"):
        tracer.trace(workers="fork")


def test_a_stream_cut_inside_a_record_is_read_up_to_it(tmp_path):
    stream = workers.read_stream(tmp_path / "missing.stream")
    assert stream.pid is None and not stream.ended
    path = tmp_path / "w1.stream"
    import pickle
    record = pickle.dumps({"type": "start", "t": 5, "pid": 1, "worker_id": 0, "start_method": "fork"})
    path.write_bytes(workers._HEADER.pack(len(record)) + record + workers._HEADER.pack(1000) + b"cut")
    stream = workers.read_stream(path)
    assert (stream.pid, stream.start_ns, stream.damaged) == (1, 5, True)
    evil = pickle.dumps(os.getcwd)  # a stream never loads a class or function
    path.write_bytes(workers._HEADER.pack(len(evil)) + evil)
    assert workers.read_stream(path).damaged


def test_workers_that_recorded_nothing_are_named():
    # A DataLoader worker that never reached the recorder (under spawn: it could not import the tracer, or
    # died unpickling its arguments) leaves no stream; the trace says so rather than show nothing.
    with tracer.trace(include=("wsample_missing",), workers=True) as t:
        collector = t._recording.workers
        collector.processes[2**22 + 1] = None  # a pid the DataLoader reported, with no stream
    assert any(f"worker processes {2**22 + 1} were started in the block but recorded nothing" in note
               for note in t.meta["notes"]), t.meta["notes"]
