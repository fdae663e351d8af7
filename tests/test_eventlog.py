"""The C event log and the C recorders' clock (_recording.h): torch-free, run on every Python the core runs on."""

import gc
import sys
import time
import weakref

import pytest

import tracer.record
from tracer.record import EventLog, Recording, calibrate_clock, new_event_log
from tracer.record.events import CALL, RETURN

pytestmark = pytest.mark.skipif(EventLog is None, reason="the C recorders are not built for this Python")


class Key:
    """A `what` that can be weakly referenced, to see when the log lets it go."""


def test_it_reads_as_the_list_of_tuples_it_stands_for():
    log, plain = EventLog(), []
    for i in range(10_000):  # past the first growth
        event = (CALL if i % 2 == 0 else RETURN, f"f{i % 7}", 10**12 + i, None if i % 3 else ("a", "b"))
        log.append(event)
        plain.append(event)
    assert len(log) == len(plain)
    assert list(log) == plain
    assert log[0] == plain[0] and log[-1] == plain[-1] and log[-10_000] == plain[0]
    assert log[5:9] == plain[5:9] and log[::1000] == plain[::1000] and log[-3:] == plain[-3:]
    del log[:4_000]
    del plain[:4_000]
    assert list(log) == plain
    del log[:]
    assert len(log) == 0 and list(log) == []


def test_it_keeps_every_event_across_its_windows_through_drops_and_refills():
    """The log makes its array present a window at a time (8,192 events) as it fills: events pushed past
    many windows, after a drop from the front (fewer events than made present) and after the array was
    released (all dropped) read back as the list they stand for."""
    log, plain = EventLog(), []

    def push(count):
        for _ in range(count):
            i = len(plain)
            event = (CALL if i % 2 == 0 else RETURN, f"f{i % 5}", i, None)
            log.append(event)
            plain.append(event)

    push(40_000)
    assert list(log) == plain
    del log[:30_000]
    del plain[:30_000]
    push(30_000)  # from 10,000 events again, into windows made present before the drop and past them
    assert len(log) == 40_000 and list(log) == plain
    del log[:]
    plain.clear()
    push(20_000)  # a new array, its windows made present anew
    assert list(log) == plain


def test_an_emptied_logs_array_is_kept_for_the_next_log_and_released_on_request():
    """The last emptied log's array is kept (up to 16 MiB), present, for the next log to start in: a new log
    reads only its own events, past where the old one was made present too; release_memory() frees it."""
    tracer.record.release_memory()
    old = EventLog()
    for i in range(20_000):
        old.append((CALL, f"old{i}", i, ("x",)))
    assert tracer.record.spare_memory() == 0
    del old[:]
    kept = tracer.record.spare_memory()
    assert kept >= 20_000 * 32  # 32 bytes an event, the array's whole capacity
    log, plain = EventLog(), []
    for i in range(50_000):  # into the spare, past what it held and past its end: it grows as any array
        event = (RETURN, f"new{i % 3}", i, None)
        log.append(event)
        plain.append(event)
        if i == 0:
            assert tracer.record.spare_memory() == 0  # taken
    assert list(log) == plain
    del log
    assert tracer.record.spare_memory() > kept  # the larger array replaces the smaller
    assert tracer.record.release_memory() > kept and tracer.record.spare_memory() == 0
    assert tracer.record.release_memory() == 0


def test_a_log_over_the_spares_size_is_freed_not_kept():
    tracer.record.release_memory()
    log = EventLog()
    for i in range(600_000):  # 32 bytes each: an array of 1,048,576 events, 32 MiB
        log.append((CALL, "f", i, None))
    log.clear()
    assert tracer.record.spare_memory() == 0


def test_bad_use_says_what_to_do():
    log = EventLog()
    with pytest.raises(TypeError, match=r"\(kind, what, time_ns, extra\)"):
        log.append((CALL, "f", 1))
    with pytest.raises(TypeError):
        log.append((CALL, "f", "not a time", None))
    with pytest.raises(IndexError):
        log[0]
    log.append((CALL, "f", 1, None))
    with pytest.raises(TypeError, match="deletes from its front"):
        del log[1:]
    with pytest.raises(TypeError, match="deletes from its front"):
        log[0] = (CALL, "g", 2, None)
    with pytest.raises(TypeError, match="integers or slices"):
        log["x"]
    with pytest.raises(TypeError, match="takes no arguments"):
        EventLog([])
    assert list(log) == [(CALL, "f", 1, None)]  # what failed changed nothing


def test_it_holds_what_an_event_names_until_the_event_goes():
    log = EventLog()
    what, extra = Key(), Key()
    gone = weakref.ref(what), weakref.ref(extra)
    log.append((CALL, what, 1, extra))
    log.append((RETURN, "other", 2, None))
    del what, extra
    gc.collect()
    assert all(ref() is not None for ref in gone)
    del log[:1]
    assert all(ref() is None for ref in gone)
    assert log[0] == (RETURN, "other", 2, None)


def test_a_cycle_through_the_log_is_collected():
    log = EventLog()
    holder = Key()
    holder.log = log
    log.append((CALL, holder, 1, None))
    gone = weakref.ref(holder)
    del holder, log
    gc.collect()
    assert gone() is None


def test_a_recording_keeps_its_events_in_the_log():
    rec = Recording(include=("json",))
    assert type(rec.events) is EventLog and type(new_event_log()) is EventLog


@pytest.mark.parametrize("tsc", [True, False], ids=["tsc where the kernel uses it", "perf_counter"])
def test_the_clock_stamps_within_the_block_and_agrees_with_perf_counter_ns(monkeypatch, tsc):
    import json

    import tracer.record
    monkeypatch.setattr(tracer.record, "TSC_CLOCK", tracer.record.TSC_CLOCK and tsc)
    time.sleep(0.06)  # the counter's rate is measured over at least 50 ms since the module loaded
    rec = Recording(include=("json",), args=False)
    rec.start()
    try:
        marks = []
        for _ in range(5):
            before = time.perf_counter_ns()
            json.dumps(1)
            marks.append((before, time.perf_counter_ns()))
            time.sleep(0.002)
    finally:
        rec.stop()
    assert rec.event_clock in ("tsc", "perf_counter") and (tsc or rec.event_clock == "perf_counter")
    times = [t for _, _, t, _ in rec.events]
    assert times == sorted(times)
    assert rec.started_ns <= times[0] and times[-1] <= rec.stopped_ns
    starts = [t for kind, what, t, _ in rec.events if kind == CALL and what.co_name == "dumps"]
    ends = [t for kind, what, t, _ in rec.events if kind == RETURN and what.co_name == "dumps"]
    assert len(starts) == len(ends) == len(marks) == 5
    for (before, after), start, end in zip(marks, starts, ends):
        assert before <= start <= end <= after


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the TSC is used where Linux's clocksource is the TSC")
def test_the_tsc_is_used_only_where_the_kernel_reads_it():
    from tracer.record import TSC_CLOCK
    try:
        with open("/sys/devices/system/clocksource/clocksource0/current_clocksource") as f:
            kernel_tsc = f.read().strip() == "tsc"
    except OSError:
        kernel_tsc = False
    assert TSC_CLOCK == kernel_tsc
    time.sleep(0.06)
    assert calibrate_clock(TSC_CLOCK) == ("tsc" if kernel_tsc and _x86_64() else "perf_counter")
    assert calibrate_clock(False) == "perf_counter"


def _x86_64():
    import platform
    return platform.machine() in ("x86_64", "AMD64")


def test_a_calls_summaries_kept_in_the_log_read_back_as_their_tuple(tmp_path, monkeypatch):
    """The C recorders keep a call's summaries as a plain array: the event reads back with them as a tuple,
    and the log lets them go with the event."""
    (tmp_path / "logargs.py").write_text("def f(a, b, *rest, key=None):\n    return a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("logargs", None)
    import logargs
    rec = Recording(include=("logargs",))
    rec.start()
    try:
        logargs.f(1, "x", 2.5, key=True)
    finally:
        rec.stop()
    calls = [e for e in rec.events if e[0] == CALL]
    assert [extra for _, _, _, extra in calls] == [("1", "'x'", "True", "tuple[1]")]  # co_varnames' order
    assert rec.events[:][0] == rec.events[0] and list(rec.events)[0] == rec.events[0]
    del rec.events[:1]
    assert len(rec.events) == 1
    sys.modules.pop("logargs", None)
