"""Recording with sys.monitoring (PEP 669): Python 3.12 and newer.

Code outside the include set is switched off where it is first seen (the callbacks return DISABLE),
so after warm-up only included code pays for the tracer.

The callbacks exist twice, recording the same events: in C (_fastmonitor.c, built by `pip install` on
CPython 3.12/3.13) and in Python (`_make_callbacks`, everywhere else); TRACER_PURE_PYTHON=1 in the
environment chooses the Python ones.
"""

from __future__ import annotations

import os
import sys
import threading

from . import events as _events
from . import summary
from .events import C_CALL, C_RETURN, CALL, RAISED, RESUME, RETURN, TRUNCATED
from .summary import summarise_frame

try:
    from . import _fastmonitor
except ImportError:  # not built: a source checkout, another Python, no compiler
    _fastmonitor = None

# Whether new recordings use the C callbacks (tests switch it to run both).
USE_C = _fastmonitor is not None and not os.environ.get("TRACER_PURE_PYTHON")

# 2 is PROFILER_ID (cProfile, profilers); 0 and 1 are the debugger's and coverage's.
TOOL_IDS = (3, 4, 5, 1, 0)
TOOL_NAME = "tracer"
_C_TYPES = (type(len), type(str.join), type(dict.__dict__["fromkeys"]))


# tool id -> the modules whose code it switched off (returned DISABLE for) in earlier blocks. A location a
# tool switched off stays off for it, in code that has not run since, until sys.monitoring.restart_events(),
# which would switch back on what every other tool switched off too (coverage's lines already covered, say).
# So a block takes a tool id that switched off none of the modules it keeps, and restarts events only when
# no free id qualifies.
_switched_off: dict = {}


def free_tool_id(scope=None) -> int:
    """A free tool id, one that switched off nothing `scope` keeps where one is free."""
    mon = sys.monitoring
    free = [tool for tool in TOOL_IDS if mon.get_tool(tool) is None]
    if not free:
        taken = ", ".join(f"{t}: {mon.get_tool(t)}" for t in range(6))
        raise RuntimeError(f"every sys.monitoring tool id is taken ({taken}); stop one of those tools, "
                           "or trace with backend='setprofile'")
    if scope is None:
        return free[0]
    for tool in free:
        if not any(scope.has_module(module) for module in _switched_off.get(tool, ())):
            return tool
    mon.restart_events()  # the last resort: it undoes other tools' DISABLE as well
    _switched_off.clear()
    return free[0]


class MonitoringRecorder:
    backend = "sys.monitoring"

    def __init__(self, recording):
        self.recording = recording
        self.tool = None
        self.armed = False  # its events are set: from here on a tool id freed by someone else is noted
        self.freeing = False  # free_tool_id was called: a retry after an interrupt must not note it
        self.monitor = None  # the C callbacks' owner, when they are used

    def start(self):
        mon = sys.monitoring
        self.tool = tool = free_tool_id(self.recording.scope)
        mon.use_tool_id(tool, TOOL_NAME)
        try:
            if USE_C:
                self.monitor = _make_monitor(self.recording, self)
                callbacks = self.monitor.callbacks()
            else:
                callbacks = _make_callbacks(self.recording, self)
            E = mon.events
            for event, fn in callbacks.items():
                mon.register_callback(tool, getattr(E, event), fn)
            mask = 0
            for event in callbacks:
                mask |= getattr(E, event)
            self.armed = True
            mon.set_events(tool, mask)  # the hook goes on last
        except BaseException:
            self.stop()
            raise

    def stop(self):
        """Take the tool off (first), then count what the callbacks saw; safe to call again after an interrupt."""
        self._unhook()
        monitor, self.monitor = self.monitor, None
        if monitor is not None:
            rec = self.recording
            rec.other_thread_events += monitor.other_thread_events
            rec.note_dropped(monitor.errors)

    def _unhook(self):
        mon = sys.monitoring
        tool = self.tool
        if tool is None:
            return
        if mon.get_tool(tool) != TOOL_NAME:
            if self.armed and not self.freeing:
                self.recording.notes.append(f"the traced code freed sys.monitoring tool {tool}, so recording stopped there")
            self.tool = None
            return
        mon.set_events(tool, 0)  # no callback runs after this one call
        for name in ("PY_START", "PY_RESUME", "PY_THROW", "PY_RETURN", "PY_YIELD", "PY_UNWIND", "CALL", "C_RETURN", "C_RAISE"):
            mon.register_callback(tool, getattr(mon.events, name), None)
        _switched_off.setdefault(tool, set()).update(self.recording.scope.excluded_modules)
        self.freeing = True
        mon.free_tool_id(tool)
        self.tool = None

    def truncate(self):
        sys.monitoring.set_events(self.tool, 0)


def bound_method(descriptor, self):
    """CALL hands a C method's descriptor (`dict.get`) and its instance apart: bound, they are what
    setprofile sees, and the method is filed under the instance's class (a dict subclass of the
    included package) instead of the class that defines it."""
    try:
        return descriptor.__get__(self, type(self))
    except Exception:  # not an instance of the descriptor's class: the call itself will raise
        return descriptor


def _make_monitor(rec, recorder):
    return _fastmonitor.Monitor(
        rec.events, rec.scope.codes, rec.scope.classify_code, rec.builtin_key, summary.summarise, summary._by_type,
        summary.cached_argument_names, recorder.truncate, vars(_events), sys.monitoring.DISABLE, _C_TYPES,
        threading.get_ident(), "builtin" in rec.layers, rec.args, rec.max_events, fast=summary._fast_by_type)


def _make_callbacks(rec, recorder):
    DISABLE = sys.monitoring.DISABLE
    events = rec.events
    append = events.append
    now = rec.clock
    scope = rec.scope
    codes = scope.codes
    classify = scope.classify_code
    ckey = rec.builtin_key
    want_args = rec.args
    cap = rec.max_events
    get_ident = threading.get_ident
    thread = get_ident()
    getframe = sys._getframe
    c_types = _C_TYPES
    method_descriptor = type(str.join)
    missing = sys.monitoring.MISSING

    def opener(kind, with_args):
        """The callback for a frame that starts (CALL, with its arguments) or goes on (RESUME)."""
        def on_open(code, offset):
            keep = codes.get(id(code))
            if keep is None:
                keep = classify(code, getframe(1).f_globals.get("__name__"))
            if not keep:
                return DISABLE
            if get_ident() != thread:
                rec.other_thread_events += 1
                return None
            if len(events) >= cap:
                append((TRUNCATED, code, now(), None))
                recorder.truncate()
                return None
            append((kind, code, now(), summarise_frame(code, getframe(1).f_locals) if with_args else None))
        return on_open

    start, resume = opener(CALL, want_args), opener(RESUME, False)

    def finish(code, offset, value):
        keep = codes.get(id(code))
        if keep is None:
            keep = classify(code, getframe(1).f_globals.get("__name__"))
        if not keep:
            return DISABLE
        if get_ident() == thread:
            append((RETURN, code, now(), None))

    def unwind(code, offset, exception):  # not a local event: DISABLE is not allowed here
        if codes.get(id(code)) and get_ident() == thread:
            append((RETURN, code, now(), type(exception).__name__))

    def throw(code, offset, exception):
        if codes.get(id(code)) and get_ident() == thread:
            append((RESUME, code, now(), None))

    callbacks = {"PY_START": start, "PY_RESUME": resume, "PY_RETURN": finish, "PY_YIELD": finish,
                 "PY_UNWIND": unwind, "PY_THROW": throw}

    if "builtin" in rec.layers:
        def key_of(func, arg0):
            if type(func) is method_descriptor and arg0 is not missing:
                func = bound_method(func, arg0)
            return ckey(func)

        def call(code, offset, func, arg0):
            if not codes.get(id(code)):
                return DISABLE
            if type(func) in c_types and get_ident() == thread:
                key = key_of(func, arg0)
                if key is not None:
                    append((C_CALL, key, now(), None))

        def c_return(code, offset, func, arg0):
            if type(func) in c_types and codes.get(id(code)) and get_ident() == thread:
                key = key_of(func, arg0)
                if key is not None:
                    append((C_RETURN, key, now(), None))

        def c_raise(code, offset, func, arg0):
            if type(func) in c_types and codes.get(id(code)) and get_ident() == thread:
                key = key_of(func, arg0)
                if key is not None:
                    append((C_RETURN, key, now(), RAISED))

        callbacks.update(CALL=call, C_RETURN=c_return, C_RAISE=c_raise)
    return callbacks
