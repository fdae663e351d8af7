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
        self.callback = None
        self.thread = None

    def start(self):
        rec = self.recording
        if USE_C:
            self.callback = _fastprofile.Profiler(
                rec.events, rec.scope.codes, rec.scope.classify_code, rec.builtin_key, summarise_frame, self.truncate,
                vars(_events), _NORMAL_EXITS, _RAISE, "builtin" in rec.layers, rec.args, rec.max_events,
                summaries=summary)
        else:
            self.callback = _make_callback(rec, self)
        self.thread = threading.get_ident()
        _dispatcher.add(self)  # the hook goes on last

    def stop(self):
        """Take the hook off (first), then say what went wrong; safe to call again after an interrupt."""
        if _dispatcher.remove(self) == "replaced":
            self.recording.notes.append("the traced code replaced the profile function (sys.setprofile), "
                                        "so recording stopped there")
        self.recording.note_dropped(getattr(self.callback, "errors", 0))
        # The callback holds the recording's event log and this recorder (its truncate), which holds it: without
        # this the log, and every code object it names, would wait for the collector to find the cycle.
        self.callback = None

    def truncate(self):
        _dispatcher.remove(self)  # the cap reached: this recording stops, the other blocks record on


class _Dispatcher:
    """The one owner of the profile functions: each thread's, fanned out to the recordings active on it,
    and threading's, which counts the threads started meanwhile.

    A block's profile function is never put back by another block: the dispatcher installs what the
    active recordings of a thread need (the innermost first, each feeding the next), whatever order
    they start and end in, and puts back what was there before the first (cProfile, say) when the last
    ends. Each change is worked out first, installed with one call, then committed, so an interrupt at
    any moment leaves a state that calling remove() again finishes.
    """

    def __init__(self):
        # Guards what threads share (which threads record, threading's profile function). Taken only while
        # this thread's own hook is off: a Python callback may raise (an interrupt) at any event, the lock's
        # own __exit__ call included, which would leave it held.
        self.lock = threading.Lock()
        self.stacks: dict = {}  # thread ident -> its active recorders, outermost first
        self.outside: dict = {}  # thread ident -> the profile function there before its first recording
        self.installed: dict = {}  # thread ident -> what was installed there last
        self.thread_outside = None  # threading's profile function before the first recording of any thread

    def add(self, recorder):
        thread = recorder.thread
        stack = self.stacks.get(thread)
        if stack is not None:
            stack.append(recorder)
        else:
            outside = sys.getprofile()
            _note_outer(recorder.recording, outside)
            self.outside[thread] = outside
            with self.lock:
                first = not self.stacks
                if first:
                    self.thread_outside = threading.getprofile()
                self.stacks[thread] = stack = [recorder]  # registered before threading's hook, so remove() undoes it
                if first:
                    threading.setprofile(self._count_new_thread)
        self.installed[thread] = _install(stack)

    def remove(self, recorder):
        """Take `recorder` out: None if it was out already, "replaced" if the traced code had replaced the
        profile function (every recording of the thread stops then), else "removed".

        This thread's hook comes off first, with one call; every later step is idempotent and the
        bookkeeping is committed last, so a call cut short by an interrupt is finished by the next one."""
        thread = recorder.thread
        stack = self.stacks.get(thread)
        if stack is None or recorder not in stack:  # by identity: recorders do not define ==
            return None
        here = thread == threading.get_ident()
        replaced = False
        if here:
            installed = self.installed.get(thread, _UNKNOWN)  # unknown: an interrupt came before add() noted it
            replaced = installed is not _UNKNOWN and installed is not None and sys.getprofile() is not installed
            self.installed[thread] = None  # taken off by us, not replaced
            sys.setprofile(None)
        rest = [] if replaced else [r for r in stack if r is not recorder]
        if rest:
            if here:
                self.installed[thread] = _install(rest)
            self.stacks[thread] = rest
            return "removed"
        if here:
            _restore(self.outside.get(thread))
        if replaced:
            for other in stack:
                if other is not recorder:
                    other.recording.notes.append("the traced code replaced the profile function "
                                                 "(sys.setprofile), so recording stopped there")
        with self.lock:
            if len(self.stacks) == 1:
                threading.setprofile(self.thread_outside)
            del self.stacks[thread]
            if not self.stacks:
                self.thread_outside = None
        self.outside.pop(thread, None)
        self.installed.pop(thread, None)
        return "replaced" if replaced else "removed"

    def forget(self):
        """A forked child's fresh start: its parent's recorders are not its own, and a lock held at the fork stays held."""
        self.__init__()

    def _count_new_thread(self, frame, event, arg):
        """threading's profile function while any block records: a thread started meanwhile is not traced."""
        with self.lock:
            outside = self.thread_outside
            for stack in self.stacks.values():
                for recorder in stack:
                    recorder.recording.threads_not_traced += 1
        sys.setprofile(outside)  # what the thread would have had
        if outside is not None:
            outside(frame, event, arg)


_dispatcher = _Dispatcher()
_UNKNOWN = object()


def _install(stack):
    """Install what the recorders of this thread need; returns what sys.getprofile() will say."""
    callbacks = [r.callback for r in reversed(stack)]  # the innermost first, as a nested block feeds its outer
    if _fastprofile is not None and all(type(cb) is _fastprofile.Profiler for cb in callbacks):
        for callback, after in zip(callbacks, callbacks[1:] + [None]):
            callback.chain = after  # the chain runs in C
        _fastprofile.install(callbacks[0])
        return callbacks[0]
    for callback in callbacks:
        if _fastprofile is not None and type(callback) is _fastprofile.Profiler:
            callback.chain = None
    if len(callbacks) == 1:
        profile = callbacks[0]
    else:
        def profile(frame, event, arg, _callbacks=tuple(callbacks)):
            for callback in _callbacks:
                callback(frame, event, arg)
    sys.setprofile(profile)
    return profile


def _restore(previous):
    if _is_cprofile(previous):
        sys.setprofile(None)
        previous.enable()  # a C-level profiler cannot be handed back through sys.setprofile
    elif _fastprofile is not None and type(previous) is _fastprofile.Profiler:
        _fastprofile.install(previous)
    elif _can_restore(previous):
        sys.setprofile(previous)
    else:  # set from C with a non-callable object (viztracer's, say): see the note made at start
        sys.setprofile(None)


def _note_outer(rec, outer):
    if outer is None:
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

    return callback
