"""Recording with sys.setprofile: Python 3.10 and 3.11 (and later, when asked for).

The callback exists twice, recording the same events: in C (_fastprofile.c, built by `pip install` on
CPython 3.10/3.11) and in Python (`_make_callback`, everywhere else). A Python profile function costs
about as much to call as viztracer's whole C tracer (benchmarks/RESULTS.md), so the C one is used where
it was built; TRACER_PURE_PYTHON=1 in the environment chooses the Python one.
"""

from __future__ import annotations

import dis
import os
import sys
import threading

from . import events as _events
from .events import C_CALL, C_RETURN, CALL, RAISED, RAISED_HERE, RESUME, RETURN, TRUNCATED
from . import summary
from .summary import summarise_frame

try:
    from . import _fastprofile
except ImportError:  # not built: a source checkout, another Python, no compiler
    _fastprofile = None

# Whether new recordings use the C callback (tests switch it to run both).
USE_C = _fastprofile is not None and not os.environ.get("TRACER_PURE_PYTHON")

# A profile 'return' with arg None is a normal return of None, a yield of None, or an unwind:
# the instruction the frame stopped at tells which.
_RAISE = dis.opmap["RAISE_VARARGS"]
# Is a 'call' a generator going on? 3.11+ stop at RESUME, whose argument is 0 only at the start of a
# function; 3.10 starts a fresh frame at instruction -1.
_RESUME_HAS_WHERE = sys.version_info >= (3, 11)
_NORMAL_EXITS = frozenset(dis.opmap[name] for name in ("RETURN_VALUE", "YIELD_VALUE", "RETURN_CONST", "RETURN_GENERATOR") if name in dis.opmap)


class ProfileRecorder:
    backend = "setprofile"

    def __init__(self, recording):
        self.recording = recording
        self._previous = None
        self._previous_thread_profile = None
        self.callback = self.installed = None

    def start(self):
        rec = self.recording
        self._previous = sys.getprofile()
        outer = self._previous
        if USE_C:
            self._start_c(rec, outer)
            return
        callback = self.callback = _make_callback(rec, self)
        _note_outer(rec, outer)
        if _chains(outer):
            # An enclosing trace is recording: feed both, so that both blocks get their events.
            def chained(frame, event, arg, _inner=callback, _outer=outer):
                _inner(frame, event, arg)
                _outer(frame, event, arg)
            chained._tracer_callback = True
            callback = chained
        self._previous_thread_profile = threading.getprofile()
        threading.setprofile(_thread_counter(rec))
        sys.setprofile(callback)
        self.installed = callback

    def _start_c(self, rec, outer):
        profiler = self.callback = _fastprofile.Profiler(
            rec.events, rec.scope.codes, rec.scope.classify_code, rec.builtin_key, summarise_frame, self.truncate,
            vars(_events), _NORMAL_EXITS, _RAISE, "builtin" in rec.layers, rec.args, rec.max_events,
            outer if _chains(outer) else None, summaries=summary)
        _note_outer(rec, outer)
        self._previous_thread_profile = threading.getprofile()
        threading.setprofile(_thread_counter(rec))
        _fastprofile.install(profiler)
        self.installed = profiler

    def stop(self):
        if sys.getprofile() is not self.installed:
            self.recording.notes.append("the traced code replaced the profile function (sys.setprofile), "
                                        "so recording stopped there")
        self.recording.note_dropped(getattr(self.callback, "errors", 0))
        self._restore()
        threading.setprofile(self._previous_thread_profile)

    def truncate(self):
        self._restore()
        self.installed = sys.getprofile()  # stopping at the cap is not the traced code's doing

    def _restore(self):
        previous = self._previous
        if _is_cprofile(previous):
            sys.setprofile(None)
            previous.enable()  # a C-level profiler cannot be handed back through sys.setprofile
        elif _fastprofile is not None and type(previous) is _fastprofile.Profiler:
            _fastprofile.install(previous)  # an enclosing trace's, in C again
        elif _can_restore(previous):
            sys.setprofile(previous)
        else:  # set from C with a non-callable object (viztracer's, say): see the note made at start
            sys.setprofile(None)


def _chains(outer) -> bool:
    """Is the profile function in place an enclosing trace's, which this one must feed too?"""
    return getattr(outer, "_tracer_callback", False) is True


def _note_outer(rec, outer):
    if outer is None or _chains(outer):
        return
    if _can_restore(outer):
        rec.notes.append(f"the profile function already installed ({type(outer).__name__}) was paused "
                         "during the block and put back after it")
    else:
        rec.notes.append(f"the profile function already installed ({type(outer).__name__}) was set from C "
                         "and cannot be put back from Python: it is off after the block; restart its profiler")


def _is_cprofile(profile) -> bool:
    return type(profile).__module__ in ("_lsprof", "cProfile")


def _can_restore(profile) -> bool:
    """sys.getprofile() gives back what sys.setprofile took, or a C profiler's own object: only a callable
    can be installed again from Python, and only cProfile's is known to be turned on again by a method."""
    return profile is None or _is_cprofile(profile) or callable(profile)


def _thread_counter(rec):
    def first_event(frame, event, arg):
        rec.threads_not_traced += 1
        sys.setprofile(None)
    return first_event


def _make_callback(rec, recorder):
    events = rec.events
    append = events.append
    now = rec.clock
    classify = rec.scope.classify_code
    ckey = rec.builtin_key
    want_c = "builtin" in rec.layers
    want_args = rec.args
    cap = rec.max_events
    normal_exits = _NORMAL_EXITS
    resume_has_where = _RESUME_HAS_WHERE
    # id(code) -> its bytecode when kept, else False: reading co_code on 3.11 copies the bytecode, so it
    # is read once per code object. (The scope keeps each classified code object alive: no id is reused.)
    codes: dict = {}

    def bytecode_of(code, frame):
        keep = classify(code, frame.f_globals.get("__name__"))
        co = codes[id(code)] = code.co_code if keep else False
        return co

    def callback(frame, event, arg):
        if event == "call":
            code = frame.f_code
            co = codes.get(id(code))
            if co is None:
                co = bytecode_of(code, frame)
            if co:
                if len(events) >= cap:
                    append((TRUNCATED, code, now(), None))
                    recorder.truncate()
                    return
                lasti = frame.f_lasti
                if co[lasti + 1] if resume_has_where else lasti >= 0:
                    append((RESUME, code, now(), None))  # its arguments were shown where it started
                else:
                    append((CALL, code, now(), summarise_frame(code, frame.f_locals) if want_args else None))
        elif event == "return":
            code = frame.f_code
            co = codes.get(id(code))
            if co:
                if arg is None:
                    op = co[frame.f_lasti]
                    if op not in normal_exits:
                        append((RETURN, code, now(), RAISED_HERE if op == _RAISE else RAISED))
                        return
                append((RETURN, code, now(), None))
        elif want_c and codes.get(id(frame.f_code)):
            key = ckey(arg)
            if key is not None:
                if event == "c_call":
                    append((C_CALL, key, now(), None))
                else:
                    append((C_RETURN, key, now(), RAISED if event == "c_exception" else None))

    callback._tracer_callback = True
    return callback
