"""Trace and Call: the call tree, built once from the raw events when the traced block ends."""

from __future__ import annotations

import gc
import importlib.util
import os
import platform
import sys
import time

from . import source
from .record import EnterGuard, ExitGuard, Recording
from .record.aten import operator_argument_names  # torch-free: torch is imported by make_mode only
from .record.summary import argument_names
from .record.events import (ATEN_CALL, ATEN_RETURN, C_CALL, C_RETURN, CALL, RAISED, RAISED_HERE, RESUME, RETURN,
                            TRUNCATED)
from .record import events as _events

try:  # the C callbacks' module also builds the tree: the same loop as _build_events, in C
    from .record import _fastprofile as _fast
except ImportError:
    try:
        from .record import _fastmonitor as _fast
    except ImportError:
        _fast = None

# Whether build() runs its loop in C (tests switch it to run both); TRACER_PURE_PYTHON=1 chooses Python.
USE_C_BUILD = getattr(_fast, "build_calls", None) is not None and not os.environ.get("TRACER_PURE_PYTHON")


_SITE_FIELDS = ("name", "module", "relpath", "line", "file", "kind")


class _PythonCallBase:
    """CallBase where the C module is not built: the same fields, as slots, and the site's as properties."""
    __slots__ = ("start_ns", "duration_ns", "depth", "children", "_args", "_arg_names", "_site", "parent", "error",
                 "pinned_url", "batch", "open", "resumed")


def _site_field(index, name):
    def get(self):
        return self._site[index]

    def set(self, value):  # copy on write: the site is shared by the calls of one function
        site = list(getattr(self, "_site", (None,) * 6 + ((),)))
        site[index] = value
        self._site = tuple(site)
    return property(get, set, doc=f"the call's {name} (its site's)")


for _index, _name in enumerate(_SITE_FIELDS):
    setattr(_PythonCallBase, _name, _site_field(_index, _name))

# Every field of a call is CallBase's. What the calls of one function share (name, module, relpath, line,
# file, kind, parameter names) is one tuple, `_site`, which the build makes once per function; setting one
# of those fields gives that call a site of its own. In C (CallBase in _recording.h) start, duration and
# depth are C integers, a call without children gets its list when `children` is first read, and a call
# keeps its summaries as the recorder's array, made into the `_args` tuple when first read: the build makes
# one object of 128 bytes per call.
CallBase = getattr(_fast, "CallBase", None) or _PythonCallBase


class Call(CallBase):
    """One call that ran: a Python function, a C function of the traced package, or an ATen operator."""

    # `args` is a property over `_args` and `_arg_names`: a python call keeps its summaries as the recording
    # made them, in the order of its site's parameter names, and they become the {name: summary} dict the
    # first time it is read. build() makes each call without __init__: a slot added to a subclass must be
    # set there as well (build_calls in _recording.h, the same loop in C, sets one it does not know to None).
    __slots__ = ()

    def __init__(self, name, module=None, relpath=None, line=None, kind="python", args=None, error=None,
                 start_ns=0, duration_ns=0, file=None, parent=None, batch=None):
        self._site = (name, module, relpath, line, file, kind, ())
        self.args = args or {}
        self.error = error
        self.start_ns = start_ns
        self.duration_ns = duration_ns
        self.children: list[Call] = []
        self.parent = parent
        self.depth = 0 if parent is None else parent.depth + 1
        self.open = False  # still running when recording stopped (truncated, or the block ended inside it)
        self.resumed = False  # a generator or coroutine going on from a yield/await, not a new call
        self.pinned_url = None  # a loaded trace keeps the links it was saved with
        self.batch = batch  # a DataLoader batch's send index: on a worker's fetch and the main call that received it

    @property
    def args(self) -> dict:
        """{parameter name: summary} (``{"input": "f32[2, 3] cpu"}``); {} where none were recorded."""
        names = self._arg_names
        if names is not None:  # not read yet: the summaries as recorded, None for an unbound parameter
            texts = self._args
            if len(texts) > len(names):  # more positional values than an operator's schema names
                names = (*names, *(f"arg{i}" for i in range(len(names), len(texts))))
            self._args = {name: text for name, text in zip(names, texts) if text is not None}
            self._arg_names = None
        return self._args

    @args.setter
    def args(self, value: dict):
        self._args = value
        self._arg_names = None

    @property
    def qualname(self) -> str:
        """``torch.nn.modules.module.Module._call_impl``: the module and the name."""
        return f"{self.module}.{self.name}" if self.module else self.name

    @property
    def url(self) -> str | None:
        """The source line at the running commit (or, loaded from JSON, the one saved), None where none is known."""
        return self.pinned_url or source.url_of(self.relpath, self.line)

    @property
    def label(self) -> str:
        """What renderers show: the name, with its module for C functions (``torch._C._nn.linear``)."""
        return self.qualname if self.kind == "builtin" else self.name

    @property
    def location(self) -> str:
        """``relpath:line``, or the module for calls without a file."""
        if self.relpath:
            return f"{self.relpath}:{self.line}" if self.line else self.relpath
        return self.module or ""

    def source(self) -> str:
        """The function's lines from the installed file ('' where there is no file)."""
        path = self.file or (self.relpath and source.installed_file(self.relpath))
        if not path or not self.line:
            return ""
        if self.kind == "aten":
            lines = source.file_lines(path)
            return lines[self.line - 1] + "\n" if self.line <= len(lines) else ""
        return "".join(source.block_at(path, self.line))

    def walk(self):
        """This call and every call below it, in call order (iterative: deep trees are fine)."""
        stack = [self]
        while stack:
            call = stack.pop()
            yield call
            stack.extend(reversed(call.children))

    def ancestors(self):
        call = self.parent
        while call is not None:
            yield call
            call = call.parent

    def __repr__(self):
        return f"<Call {self.name} {self.location} depth={self.depth} children={len(self.children)}>"


class _Refused(RuntimeError):
    """A trace entered twice: nothing was installed, so nothing is to be undone."""


class Trace:
    """The calls a block made into the included packages, as a tree under `root`."""

    def __init__(self, recording: Recording | None = None, root: Call | None = None, meta: dict | None = None):
        self._recording = recording
        self._root = root
        self.meta = meta or {}

    # -- recording ----------------------------------------------------------------------------
    def _start_hooks(self):
        if self._recording is None or self._root is not None:
            raise _Refused("this trace has already recorded its block; start a new one with tracer.trace()")
        if self._recording.started_ns is not None:
            raise _Refused("this trace is already recording: start a new one with tracer.trace() to nest")
        self._recording.start()  # its last step installs the hook

    def _undo_start(self, error):
        """After _start_hooks raised: take off what it installed (an interrupt can land after the hook is on)."""
        if not isinstance(error, _Refused):
            self._stop_hooks(None)

    def __enter__(self):
        """Where no C recorder is built; an interrupt in the frames returning after the hook went on can leave it."""
        try:
            self._start_hooks()
        except BaseException as error:
            self._undo_start(error)
            raise
        return self

    def _stop_hooks(self, exc_type):
        """Take every hook off (idempotent: __exit__ calls it again if an interrupt cut it short)."""
        recording = self._recording
        if recording is None:
            return
        try:
            recording.stop()
        except Exception as error:
            if exc_type is None:
                raise
            # the block's own exception matters more: keep it, and say what went wrong in the trace
            recording.notes.append(f"uninstalling the hooks failed: {type(error).__name__}: {error}")

    def _finish(self, exc_type, exc, tb):
        recording, self._recording = self._recording, None
        if recording is not None:
            self._root, self.meta = build(recording, exc_type, consume=True)
        return False  # the block's exception propagates unchanged

    def __exit__(self, exc_type, exc, tb):
        """Where no C recorder is built; a pending interrupt raised on this very line still leaves the hooks."""
        try:
            try:
                self._stop_hooks(exc_type)
            except BaseException:
                self._stop_hooks(exc_type)  # an interrupt landed midway: this finishes the job
                raise
        finally:
            self._finish(exc_type, exc, tb)
        return False

    if ExitGuard is not None:  # the same in C, where no line can be interrupted before the hooks are off
        __enter__ = EnterGuard(_start_hooks, _undo_start)
        __exit__ = ExitGuard(_stop_hooks, _finish)

    # -- the tree -----------------------------------------------------------------------------
    @property
    def root(self) -> Call:
        if self._root is None:
            raise RuntimeError("the trace is still recording: read it after the `with tracer.trace()` block")
        return self._root

    @property
    def calls(self) -> list[Call]:
        """Every recorded call in call order (the root excluded)."""
        return list(self.root.walk())[1:]

    @property
    def truncated(self) -> bool:
        return bool(self.meta.get("truncated_at"))

    def __len__(self):
        return sum(1 for _ in self.root.walk()) - 1

    @property
    def workers(self) -> list[Call]:
        """The DataLoader worker processes (``workers=True``): one node each, in worker-id order, then start order."""
        from .record.workers import _int
        return sorted((c for c in self.root.children if c.kind == "worker"),
                      key=lambda c: (_int(c.args.get("worker_id")), c.start_ns))

    def batch(self, index: int, epoch: int = 0) -> tuple:
        """(main-process call that received batch `index`, the worker's fetch of it); either may be None.

        Batch indices start at 0 again each epoch: `epoch` picks the n-th batch with that index in the trace.
        """
        from .record.workers import find_batch
        return find_batch(self.root, index, epoch)

    def batches(self) -> list[tuple]:
        """Every (main call, worker fetch) pair, in the order the batches were received."""
        from .record.workers import batch_pairs
        return batch_pairs(self.root)

    def subtree(self, call: Call) -> "Trace":
        """The calls below `call` as a trace of their own, with a copy of `call` as its root.

        Depths count from the new root, so ``depth=`` limits and renderers work as on any trace;
        this trace is left as it is.
        """
        copies: dict = {}
        for c in call.walk():
            parent = copies[id(c.parent)] if c is not call else None
            copy = Call(c.name, c.module, c.relpath, c.line, c.kind, c.args, c.error, c.start_ns, c.duration_ns,
                        c.file, parent)
            copy.open, copy.resumed, copy.batch = c.open, c.resumed, c.batch
            if parent is not None:
                parent.children.append(copy)
            copies[id(c)] = copy
        return Trace(root=copies[id(call)], meta={**self.meta, "subtree_of": call.qualname})

    # -- queries, claims, output (see query.py and render/) ------------------------------------
    def find(self, pattern: str) -> list[Call]:
        from .query import find
        return find(self, pattern)

    def count(self, pattern: str) -> int:
        from .query import count
        return count(self, pattern)

    def expect_path(self, *patterns: str) -> list[Call]:
        from .query import expect_path
        return expect_path(self, *patterns)

    def to_json(self, path=None) -> str:
        """The trace as JSON (schema in tracer/render/json.py), written to `path` when given."""
        from .render.json import dumps
        return _written(dumps(self), path)

    def to_perfetto(self, path=None) -> str:
        """Chrome trace-event JSON for ui.perfetto.dev, written to `path` when given."""
        from .render.perfetto import dumps
        return _written(dumps(self), path)

    def to_html(self, path=None, title: str | None = None) -> str:
        """A standalone HTML page of the call tree (inline CSS and JS, nothing fetched), written to `path` when given."""
        from .render.html import render_page
        return _written(render_page(self, title=title), path)

    def to_text(self, **options) -> str:
        from .render.text import render
        return render(self, **options)

    def __str__(self):
        return self.to_text()

    def __repr__(self):
        if self._root is None:
            return "<Trace recording>"
        return f"<Trace {len(self)} calls, layers={','.join(self.meta.get('layers', ()))}>"

    def _repr_html_(self):
        from .render.html import render
        return render(self)

    def _repr_pretty_(self, p, cycle):
        p.text(str(self) if self._root is not None else repr(self))


def _written(text: str, path) -> str:
    if path is not None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return text


def trace(layers=("python",), include=("torch", "torchvision"), depth=None, args=True,
          max_events=None, backend="auto", workers=False) -> Trace:
    """Record the calls a block makes into `include`: ``with tracer.trace() as t: ...``.

    layers      "python" (functions), "builtin" (C functions of the included packages that included
                code calls), "aten" (operators reaching a TorchDispatchMode); a tuple or "python,aten".
    include     package names whose code is kept; calls from other code hang under the nearest kept caller.
    depth       keep calls at most this many levels below the block (None: all).
    args        summarise arguments (``f32[2, 3] cpu``); never calls repr.
    max_events  stop recording after this many events (default 5,000,000); the code runs on.
    backend     "auto", "setprofile" or "sys.monitoring" (Python 3.12+; the default there).
    workers     also record inside every DataLoader worker process started in the block (fork, spawn,
                forkserver): one "worker" node per process under the root, see tracer/record/workers.py.

    Nested blocks both record: the inner trace feeds its events to the outer one as well.
    Only the thread that enters the block is traced; the trace counts the other threads that ran.
    """
    from .record import DEFAULT_MAX_EVENTS
    recording = Recording(layers=layers, include=include, depth=depth, args=args,
                          max_events=DEFAULT_MAX_EVENTS if max_events is None else max_events, backend=backend,
                          workers=workers)
    return Trace(recording)


# Below this many events the tree is a few thousand objects: a young collection walks them in well under a
# millisecond, and it stays young, to be freed by the next collection once dropped (in the oldest generation
# a dropped tree waits for a full one; without the C module, moving it costs a collection of generation 1).
_PROMOTE_EVENTS = 10_000


def build(rec: Recording, exc_type=None, consume: bool = False):
    """The call tree from a finished recording: one pass over the events with a stack.

    consume=True where the recording is dropped next (a trace's own): the calls take the argument summaries
    out of its events instead of copying them, and its event log is left empty (the C build releases each
    event as it goes, reading the log once; a list of events is left as it was).
    """
    collecting = gc.isenabled()
    # One new object a call (a Call), none of them garbage. Built with the collector on, they would set
    # off collections as the tree grows; built with it off, they are all young when it goes on again, and
    # the next young collection walks every one of them once only to keep it (a quarter of the build's
    # time). So the tree goes into the oldest generation directly. With the C module (_young.h): the
    # program's young objects are set aside, the build's objects are then all the young generation holds,
    # and they are spliced into the oldest one; the program's go back, young, as they were. Without it:
    # the program's young objects are collected first, as a collection of generation 1 would, and
    # gc.freeze() then gc.unfreeze() move the rest, every other object being there already; where objects
    # are frozen unfreezing would thaw them, so the tree is left young there.
    big = collecting and len(rec.events) >= _PROMOTE_EVENTS
    aside = big and _set_young_aside is not None and _set_young_aside()
    promote = big and _set_young_aside is None and gc.get_freeze_count() == 0
    if promote:
        gc.collect(1)
    gc.disable()
    built = False
    try:
        root, meta = _build(rec, exc_type, consume)
        if getattr(rec, "workers", None) is not None:
            rec.workers.merge(root, meta)
        built = True
        return root, meta
    finally:
        if aside:
            _restore_young(built)
        elif promote:
            gc.freeze()
            gc.unfreeze()
        if collecting:
            gc.enable()


_set_young_aside = getattr(_fast, "set_young_aside", None)
_restore_young = getattr(_fast, "restore_young", None)


def _build(rec, exc_type, consume=False):
    events = rec.events
    n_events = len(events)
    end_ns = rec.stopped_ns or (events[-1][2] if events else 0)
    root = Call("<traced block>", kind="block", start_ns=rec.started_ns or 0, duration_ns=end_ns - (rec.started_ns or 0))
    modules, machinery = rec.scope.modules, rec.machinery
    qualnames = _owner_qualnames(events) if sys.version_info < (3, 11) else None

    def info_of(code):  # (name, module, relpath, line, file, parameter names, plumbing)
        return _python_info(code, modules.get(id(code)), id(code) in machinery, qualnames)

    def aten_info_of(op):  # (name, namespace, relpath, line, parameter names)
        return (*_aten_info(op), operator_argument_names(op))

    if USE_C_BUILD:
        stack, keys, hidden, unwound, truncated = _fast.build_calls(
            events, root, Call, info_of, aten_info_of, vars(_events), -1 if rec.depth is None else rec.depth,
            _HIDDEN, _DROPPED, "python", "builtin", "aten", consume)
    else:
        stack, keys, hidden, unwound, truncated = _build_events(events, root, info_of, rec.depth)
        if consume and type(events) is not list:
            events.clear()
    truncated_at = None
    if truncated:
        truncated_at = " > ".join(c.name for c in stack[1:] if isinstance(c, Call)) or root.name
    while len(stack) > 1:  # calls that had not returned when recording stopped
        call = stack.pop()
        if isinstance(call, Call):
            call.open = True
            call.duration_ns = end_ns - call.start_ns
    if exc_type is not None:
        _name_escaped_error(root, exc_type.__name__, unwound)
    meta = _meta(rec, n_events, truncated_at, exc_type)
    meta["hidden_below_depth"] = hidden
    return root, meta


def _build_events(events, root, info_of, depth_limit):
    """The tree under `root` from the events: (the stack of calls still open, their keys, the number of calls
    hidden below the depth limit, {id(call): (event index, error)} of the calls that raised, whether the
    recording was truncated). build_calls in _recording.h is this loop in C."""
    # One pass, kept tight (it runs once per event): calls are made without __init__ (every slot is set
    # here, as Call.__init__ sets it), and a return that closes the innermost open call is handled inline.
    python_info: dict = {}  # id(code) -> (site, plumbing), from info_of(code)
    aten_info: dict = {}  # id(op) -> its site
    builtin_sites: dict = {}  # (module, name) -> its site
    stack: list = [root]  # open calls, or a marker for an open call that is not kept
    keys: list = [None]  # what each open call is, to match its return
    push, pop, push_key, pop_key = stack.append, stack.pop, keys.append, keys.pop
    in_aten = 0  # inside an operator: the dispatcher's own Python frames are not the program's calls
    hidden = 0  # calls below the depth limit
    truncated = False
    unwound: dict = {}  # id(call) -> (event index, error) for calls that raised
    new = Call.__new__  # CallBase.__new__ where that is C: object.__new__ refuses a subclass of a C type
    hidden_marker, dropped = _HIDDEN, _DROPPED
    call_kind, resume_kind, return_kind, c_call_kind, c_return_kind = CALL, RESUME, RETURN, C_CALL, C_RETURN
    raised, raised_here = RAISED, RAISED_HERE

    for index, (kind, what, t, extra) in enumerate(events):
        if kind == call_kind or kind == resume_kind:
            if in_aten:
                continue
            info = python_info.get(id(what))  # by identity: the events keep each code object alive
            if info is None:
                name, module, relpath, line, file, names, plumbing = info_of(what)
                info = python_info[id(what)] = ((name, module, relpath, line, file, "python", names), plumbing)
            push_key(what)
            parent = stack[-1]
            if info[1] or parent is dropped:
                push(dropped)
                continue
            if parent is hidden_marker or (depth_limit is not None and parent.depth >= depth_limit):
                push(hidden_marker)
                hidden += 1
                continue
            call = new(Call)
            call._site = site = info[0]
            # no summaries (args=False, or a resumption: its arguments were shown where it started): none
            call._args, call._arg_names = () if extra is None else extra, site[6]
            call.error = None
            call.start_ns = t
            call.duration_ns = 0
            call.children = []
            call.parent = parent
            call.depth = parent.depth + 1
            call.open = False
            call.resumed = kind == resume_kind
            call.pinned_url = call.batch = None
            parent.children.append(call)
            push(call)
        elif kind == return_kind or kind == c_return_kind:
            if in_aten:
                continue
            if keys[-1] is what and what is not None:  # the innermost open call returns: _close, inline
                pop_key()
                call = pop()
                if call is not hidden_marker and call is not dropped:
                    call.duration_ns = t - call.start_ns
                    if extra:
                        unwound[id(call)] = (index, extra)
                        call.error = raised if extra == raised_here else extra
            else:
                _close(stack, keys, what, t, extra, index, unwound)
        elif kind == c_call_kind:
            if in_aten:
                continue
            push_key(what)
            parent = stack[-1]
            if parent is dropped:
                push(dropped)
                continue
            if parent is hidden_marker or (depth_limit is not None and parent.depth >= depth_limit):
                push(hidden_marker)
                hidden += 1
                continue
            call = new(Call)
            site = builtin_sites.get(what)
            if site is None:
                site = builtin_sites[what] = (what[1], what[0], None, None, None, "builtin", ())
            call._site = site
            call._args = call._arg_names = ()
            call.error = None
            call.start_ns = t
            call.duration_ns = 0
            call.children = []
            call.parent = parent
            call.depth = parent.depth + 1
            call.open = call.resumed = False
            call.pinned_url = call.batch = None
            parent.children.append(call)
            push(call)
        elif kind == ATEN_CALL:
            if in_aten == 0:
                push_key(what)
                parent = stack[-1]
                if parent is dropped:
                    push(dropped)
                elif parent is hidden_marker or (depth_limit is not None and parent.depth >= depth_limit):
                    push(hidden_marker)
                    hidden += 1
                else:
                    site = aten_info.get(id(what))  # the events keep each operator alive
                    if site is None:
                        site = aten_info[id(what)] = (*_aten_info(what), None, "aten", operator_argument_names(what))
                    call = Call(site[0], parent=parent, start_ns=t)
                    call._site = site
                    if type(extra) is tuple:  # positional summaries, in schema order: the site's names
                        call._args, call._arg_names = extra, site[6]
                    else:
                        call.args = extra or {}
                    parent.children.append(call)
                    push(call)
            in_aten += 1
        elif kind == ATEN_RETURN:
            in_aten -= 1
            if in_aten == 0:
                _close(stack, keys, what, t, extra, index, unwound)
        elif kind == TRUNCATED:
            truncated = True
            break
    return stack, keys, hidden, unwound, truncated


# Stack markers for open calls that are not kept: below the depth limit, or the recorder's own plumbing.
_HIDDEN, _DROPPED = "hidden", "dropped"


def _aten_info(op):
    name = op.name()
    namespace, _, base = name.partition("::")
    line = source.native_function_line(base) if namespace == "aten" else None  # custom ops live elsewhere
    return name, namespace, source.NATIVE_FUNCTIONS if line else None, line


def _close(stack, keys, key, t, error, index, unwound):
    # A return whose call opened before recording started has no partner on the stack: skip it.
    if keys[-1] is not key and not any(open_key is key for open_key in keys):
        return
    while len(stack) > 1:
        call = stack.pop()
        open_key = keys.pop()
        kept = isinstance(call, Call)
        if kept:
            call.duration_ns = t - call.start_ns
        if open_key is key:
            if kept and error:
                unwound[id(call)] = (index, error)
                call.error = RAISED if error == RAISED_HERE else error
            return
        if kept:
            call.open = True


def _python_info(code, module, plumbing, qualnames=None):
    name = getattr(code, "co_qualname", None) or (
        _qualname_of(code) if qualnames is None else qualnames.get(id(code), code.co_name))
    filename = code.co_filename
    relpath = source.relpath_of(filename, module)
    return name, module, relpath, code.co_firstlineno, filename if relpath else None, argument_names(code), plumbing


def _qualname_of(code) -> str:
    """Python 3.10 has no co_qualname: take it from the function that owns the code, when one is alive."""
    for owner in gc.get_referrers(code):
        if getattr(owner, "__code__", None) is code and isinstance(getattr(owner, "__qualname__", None), str):
            return owner.__qualname__
    return code.co_name


def _owner_qualnames(events) -> dict:
    """_qualname_of for every recorded code object at once, {id(code): qualname} where a function owns it:
    one pass over the heap (gc.get_referrers lists referrers in heap order, so each code gets the same owner)."""
    codes = {id(what): what for kind, what, _, _ in events if kind == CALL or kind == RESUME}
    found: dict = {}
    for owner in gc.get_referrers(*codes.values()) if codes else ():
        code = getattr(owner, "__code__", None)
        if code is not None and codes.get(id(code)) is code and id(code) not in found \
                and isinstance(getattr(owner, "__qualname__", None), str):
            found[id(code)] = owner.__qualname__
    return found


def _name_escaped_error(root, type_name, unwound):
    """Name the exception that left the block on the calls it went up through.

    Where the backend could not see exception types, follow the last children down while each one's
    unwind came right before its parent's, stopping at the call whose own raise statement started it.
    """
    call, parent_index = root, None
    while call.children:
        last = call.children[-1]
        index, error = unwound.get(id(last), (None, None))
        if error is None or (parent_index is not None and index != parent_index - 1):
            break  # returned normally, or its exception was caught and the parent went on
        if error in (RAISED, RAISED_HERE):
            last.error = type_name
        elif error != type_name:
            break  # a different exception, seen by the backend
        if error == RAISED_HERE:
            break
        call, parent_index = last, index


def _meta(rec, n_events, truncated_at, exc_type):
    notes = list(rec.notes)
    if truncated_at:
        notes.append(f"truncated: recording stopped after {rec.max_events:,} events, inside {truncated_at}; the code ran on")
    for name in rec.scope.names:
        top = name.partition(".")[0]
        if top not in sys.modules and importlib.util.find_spec(top) is None:
            notes.append(f"include names {name!r}, but no such package is installed or imported: a typo?")
    if rec.threads_not_traced or rec.other_thread_events:
        notes.append("other threads ran during the block and were not traced (only the thread that entered it is)")
    torch = sys.modules.get("torch")
    return {
        "layers": list(rec.layers),
        "include": list(rec.scope.names),
        "depth": rec.depth,
        "backend": rec.backend if "python" in rec.layers else "TorchDispatchMode",
        "python": platform.python_version(),
        "torch": getattr(torch, "__version__", None) if torch else None,
        "torch_commit": source.commit_of("torch"),
        "events": n_events,
        "duration_ns": (rec.stopped_ns or 0) - (rec.started_ns or 0),
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "truncated_at": truncated_at,
        "error": exc_type.__name__ if exc_type else None,
        "notes": notes,
    }
