"""The tree is built by one loop written twice, in C (beside the C callbacks) and in Python: both give
the same tree, call for call, from the same recording."""

import gc
import importlib.util
import sys

import pytest

import tracer
from tracer import model
from tracer.record import Recording, new_event_log
from tracer.record.events import CALL

pytestmark = pytest.mark.skipif(not model.USE_C_BUILD and getattr(model._fast, "build_calls", None) is None,
                                reason="the C builder is not built here")


def snapshot(root, meta):
    rows = [(c.name, c.module, c.relpath, c.line, c.file, c.kind, c.args, c.error, c.start_ns, c.duration_ns,
             c.depth, c.open, c.resumed, c.pinned_url, len(c.children), c.parent.name if c.parent else None)
            for c in root.walk()]
    meta = {k: v for k, v in meta.items() if k != "recorded_at"}
    return rows, meta


def both(monkeypatch, rec, exc_type=None):
    out = []
    for use_c in (True, False):
        monkeypatch.setattr(model, "USE_C_BUILD", use_c)
        out.append(snapshot(*model.build(rec, exc_type)))
    return out


def record(sample, run, **options):
    rec = Recording(include=("sample",), **options)
    rec.start()
    error = None
    try:
        run(sample)
    except ValueError as e:
        error = type(e)
    finally:
        rec.stop()
    return rec, error


def everything(sample):
    sample.outer(3)
    list(sample.gen(3))
    sample.catches()
    sample.recurse(6)
    sample.echo(1, "two", key=3.0)
    sample.Shape(4).area()
    sample.tally(["a", "b", "a"])
    sample.via_other(2)
    try:
        sample.boom()
    except ValueError:
        pass
    g = sample.gen(5)
    next(g)  # left open when the block ends


@pytest.mark.parametrize("options", [dict(), dict(args=False), dict(layers=("python", "builtin")),
                                     dict(depth=2), dict(depth=0), dict(max_events=25),
                                     dict(layers=("python", "builtin"), max_events=40)],
                         ids=["args", "no-args", "builtin", "depth-2", "depth-0", "truncated", "builtin-truncated"])
def test_c_and_python_builders_give_the_same_tree(sample, monkeypatch, options):
    rec, _ = record(sample, everything, **options)
    c, python = both(monkeypatch, rec)
    assert c == python
    assert len(c[0]) > 1 or c[1]["hidden_below_depth"] > 0


def test_the_same_tree_when_an_exception_leaves_the_block(sample, monkeypatch):
    def escapes(sample):
        sample.outer(2)
        sample.boom()
    rec, error = record(sample, escapes)
    assert error is ValueError
    c, python = both(monkeypatch, rec, error)
    assert c == python
    assert any(row[7] == "ValueError" for row in c[0])


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="the aten layer needs torch")
@pytest.mark.parametrize("layers", [("aten",), ("python", "aten"), ("python", "builtin", "aten")])
def test_the_same_tree_with_operators(monkeypatch, layers):
    import torch

    layer = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU())
    rec = Recording(layers=layers, include=("torch",))
    rec.start()
    try:
        layer(torch.randn(5, 3)).sum().backward()
        torch.ones(2).add_(1, alpha=2)  # a keyword argument: the summaries are a dict
        try:
            torch.ones(2) @ torch.ones(3)
        except RuntimeError:
            pass
    finally:
        rec.stop()
    c, python = both(monkeypatch, rec)
    assert c == python
    assert any(row[5] == "aten" for row in c[0])


def test_a_slot_added_to_call_gets_none_from_the_c_builder(sample, monkeypatch):
    class Wider(model.Call):  # stands in for a Call with one more slot
        __slots__ = ("extra",)

    rec, _ = record(sample, everything, layers=("python", "builtin"))
    monkeypatch.setattr(model, "Call", Wider)
    monkeypatch.setattr(model, "USE_C_BUILD", True)
    chunks = getattr(model._fast, "slab_chunks", lambda: 0)
    before = chunks()
    root, _ = model.build(rec)
    calls = list(root.walk())[1:]
    assert calls and all(type(c) is Wider and c.extra is None for c in calls)
    assert chunks() == before  # a wider call does not fit a slot of _slab.h: allocated as any object


@pytest.mark.skipif(sys.version_info < (3, 11), reason="the 3.10 recorder reads no fast locals: its events keep "
                    "their summaries as tuples, which a build does not take")
def test_a_consuming_build_gives_the_same_tree_and_empties_the_event_log(sample, monkeypatch):
    """A trace's own build (consume=True) hands each call the summaries its event kept, instead of copying
    them, and releases each event once past it: the same tree, the same meta (its event count included),
    and the recording's log is then empty, its array kept as the next log's spare."""
    from conftest import C_MODULES

    for module in C_MODULES.values():  # the C recorders keep the summaries as arrays the calls can take
        monkeypatch.setattr(module, "USE_C", bool(getattr(module, "_fastprofile", None) or
                                                   getattr(module, "_fastmonitor", None)))
    rec, _ = record(sample, everything)
    monkeypatch.setattr(model, "USE_C_BUILD", True)
    copied = snapshot(*model.build(rec))
    assert snapshot(*model.build(rec)) == copied  # copying leaves the events as they were
    with_args = sum(1 for event in rec.events if event[0] == 0 and event[3])
    assert with_args > 5
    n_events = len(rec.events)
    tracer.release_memory()
    root, meta = model.build(rec, consume=True)
    assert snapshot(root, meta) == copied and meta["events"] == n_events
    assert len(rec.events) == 0 and list(rec.events) == []
    assert tracer.spare_memory() >= n_events * 32  # the log's array, for the next recording to start in
    again, _ = model.build(rec)
    assert list(again.walk()) == [again]


def test_a_calls_summaries_are_released_with_it(sample):
    """The summaries a call took from its event go when the call goes, read or not: building and dropping
    trees again and again holds no more memory."""
    import gc
    import tracemalloc

    def one():
        rec, _ = record(sample, lambda s: [s.tally(list(range(40 + i))) for i in range(300)])
        root, _ = model.build(rec, consume=True)
        read = [c.args for c in list(root.walk())[::2]]  # half of them made into tuples, then dicts
        assert any(v == "list[41]" for args in read for v in args.values())
        root = read = rec = None
        gc.collect()

    one()
    tracemalloc.start()
    try:
        one()
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(5):
            one()
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert grown < 20_000, grown


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="the aten layer needs torch")
def test_positional_summaries_past_an_operators_schema_are_named_by_position(monkeypatch):
    """The aten layer keeps positional summaries without checking them against the schema (the dispatcher
    passes no more than it names): should more come, Call.args names them arg<i> rather than drop them."""
    import torch
    from tracer.record.events import ATEN_CALL

    rec = Recording(layers=("aten",), include=("torch",))
    rec.start()
    try:
        torch.ones(3).select(0, 1)
    finally:
        rec.stop()
    events = list(rec.events)
    (i,) = [k for k, e in enumerate(events) if e[0] == ATEN_CALL and "select" in str(e[1])]
    kind, op, t, extra = events[i]
    events[i] = (kind, op, t, (*extra, "9"))
    rec.events = events
    for use_c in (True, False):
        monkeypatch.setattr(model, "USE_C_BUILD", use_c)
        root, _ = model.build(rec)
        (select,) = [c for c in root.walk() if "select" in c.name]
        assert select.args == {"self": "f32[3] cpu", "dim": "0", "index": "1", "arg3": "9"}


def test_a_build_that_fails_midway_raises_and_keeps_no_call_alive(sample, monkeypatch):
    """The C builder holds the open calls' children aside until each call closes (its list made to their
    number): where the build fails partway (here info_of raises at the last function it meets, after some
    15,000 calls), it raises that error, and every call it had made is freed with the partial tree: none is
    left in a chunk."""
    gc.collect()
    chunks = getattr(model._fast, "slab_chunks", lambda: 0)
    before = chunks()

    def many(sample):
        for _ in range(1_500):
            everything(sample)
        try:
            repr(sample.Shape(1))  # Shape.__repr__, met last (it raises: the tracer must never call it)
        except AssertionError:
            pass

    rec, _ = record(sample, many)
    assert len(rec.events) >= 10_000  # a tree cut from chunks
    real = model._python_info

    def failing(code, *rest):
        if code.co_name == "__repr__":
            raise LookupError("info_of failed")
        return real(code, *rest)

    monkeypatch.setattr(model, "_python_info", failing)
    monkeypatch.setattr(model, "USE_C_BUILD", True)
    with pytest.raises(LookupError, match="info_of failed"):
        model.build(rec)
    gc.collect()
    assert chunks() == before
    monkeypatch.setattr(model, "_python_info", real)  # the events are all there still: the same recording builds
    root, _ = model.build(rec)
    assert root.children[-1].name == "Shape.__repr__" and chunks() - before > 1


def test_a_blocks_recording_goes_at_its_end_without_the_collector(sample, backend):
    """Once the tree is built, nothing holds the recording: its event log (and every code object it names) is
    freed as the block ends, not when a collection finds a cycle, so the next recording starts in its spare."""
    log_type = type(new_event_log())

    def logs():  # the C EventLogs; without the C module, lists that hold events (a CALL first)
        if log_type is not list:
            return [o for o in gc.get_objects() if type(o) is log_type]
        return [o for o in gc.get_objects()
                if type(o) is list and o and type(o[0]) is tuple and len(o[0]) == 4 and o[0][0] == CALL]

    gc.collect()
    before = len(logs())
    collecting = gc.isenabled()
    gc.disable()  # nothing is freed by a collection from here on
    try:
        for _ in range(3):
            t = tracer.trace(include=("sample",), backend=backend)
            with t:
                everything(sample)
            assert len(t.calls) > 20
            assert len(logs()) == before
            assert all(type(o).__name__ != "Recording" for o in gc.get_objects())
    finally:
        if collecting:
            gc.enable()
