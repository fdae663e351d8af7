"""DataLoader worker processes, traced: ``tracer.trace(workers=True)``.

How (see shared/notes/workers.md for the torch facts this fits):

- In the main process, for the block only, ``torch.utils.data._utils.worker._worker_loop`` is replaced by
  ``functools.partial(traced_worker_loop, config)``: the DataLoader looks that name up at every
  ``iter(loader)``, and a partial of a module-level function pickles by reference, so fork, spawn and
  forkserver workers all run it. Three methods of ``_MultiProcessingDataLoaderIter`` are wrapped to learn
  which batch each ``_next_data`` returned (``_get_data`` gives ``(idx, data)``, ``_process_data`` takes the
  data) and the worker processes' exit codes.
- In a worker, the tracer state inherited through fork is dropped, then every thread is recorded with
  ``sys.setprofile`` (one Recording per thread, started by a ``threading.setprofile`` hook), so the
  QueueFeederThread that pickles the batch is seen too.
- A worker streams its events to ``<tmpdir>/w<pid>.stream``: before each ``index_queue.get`` (so once per
  batch, with the batch index it got: the queue object's ``get`` is wrapped in the worker), every 50 ms from a small thread of its own, and when the main process
  asks at the block's end. torch's SIGTERM handler calls ``_exit`` and SIGKILL runs nothing, so whatever was
  not streamed by then is lost: at most the batch the worker was on.
- At the block's end the main process reads the streams, builds each thread's calls with the same builder as
  the main thread, and hangs them under one ``worker`` node per process and one ``thread`` node per thread.

Inside a worker the options of the trace (layers, include, args, max_events) apply to each thread, and
``depth`` counts from the thread node. The main process's side imports torch only when the block starts.
"""

from __future__ import annotations

import bisect
import functools
import io
import multiprocessing
import os
import pickle
import shutil
import signal
import struct
import sys
import tempfile
import threading
import time

from .events import ATEN_CALL, ATEN_RETURN, CALL, RAISED, RAISED_HERE, RESUME, RETURN, TRUNCATED

FLUSH_INTERVAL_S = 0.05  # how often a worker's streaming thread writes what its threads recorded
SYNC_TIMEOUT_S = 2.0  # how long the block's end waits for a running worker to write what it has
_HEADER = struct.Struct("<I")
_CODE_EVENTS = (CALL, RESUME, RETURN, TRUNCATED)
_ATEN_EVENTS = (ATEN_CALL, ATEN_RETURN)
_FETCH_SUFFIX = "Fetcher.fetch"  # _MapDatasetFetcher.fetch, _IterableDatasetFetcher.fetch
_RECEIVER = "_MultiProcessingDataLoaderIter._next_data"  # the main-process call that carries `batch`


class WorkerConfig:
    """What a worker needs to record as the trace does: plain values, so it pickles for spawn."""

    def __init__(self, directory, layers, include, depth, args, max_events):
        self.directory = directory
        self.layers = tuple(layers)
        self.include = tuple(include)
        self.depth = depth
        self.args = args
        self.max_events = max_events


def check_workers(workers) -> bool:
    if not isinstance(workers, bool):
        raise TypeError(f"workers must be True or False (record inside DataLoader worker processes), "
                        f"not {type(workers).__name__}: {workers!r}")
    return workers


# ================================================================================================
# The main process: patches for the block, the streams read at its end, the merge into the tree.
# ================================================================================================

_ACTIVE: list = []  # the collectors of the blocks recording now, innermost last


class Collector:
    """One ``workers=True`` block's side of the worker processes."""

    def __init__(self, recording):
        self.recording = recording
        self.clock = time.perf_counter_ns
        self.config = None
        self.directories: list[str] = []  # its own, then those of nested blocks it adopted
        self.patches: list = []  # (owner, name, previous value or _MISSING), in the order applied
        self.received: list = []  # (start_ns, end_ns, batch index or None) per _next_data
        self._pending: list = []  # the batch of each _next_data running now, innermost last
        self._by_data: dict = {}  # id(batch data) -> (index, data) between _get_data and _process_data
        self.processes: dict = {}  # pid -> the multiprocessing.Process of a worker a traced iterator owns
        self.untraced_pids: set = set()  # workers of iterators started outside the block
        self.streams: list = []
        self.live: dict = {}  # pid -> True when it wrote what it had at the block's end, False when it did not
        self.notes: list[str] = []
        self.stopped = False

    # -- the block -------------------------------------------------------------------------------
    def start(self):
        rec = self.recording
        directory = tempfile.mkdtemp(prefix="tracer-workers-")
        self.directories.append(directory)
        self.config = WorkerConfig(directory, rec.layers, rec.scope.names, rec.depth, rec.args, rec.max_events)
        try:
            import torch.utils.data._utils.worker as worker_module
            from torch.utils.data.dataloader import _MultiProcessingDataLoaderIter as iterator_class
        except ImportError:
            self.notes.append("workers=True, but torch (torch.utils.data) cannot be imported here: no DataLoader "
                              "worker can be followed")
        else:
            global _ORIGINAL_WORKER_LOOP
            if _ORIGINAL_WORKER_LOOP is None:
                _ORIGINAL_WORKER_LOOP = worker_module._worker_loop
            try:
                self._patch(worker_module, "_worker_loop", functools.partial(traced_worker_loop, self.config))
                self._wrap_iterator(iterator_class)
            except BaseException:
                self._unpatch()
                raise
        _ACTIVE.append(self)

    def _unpatch(self):
        for owner, name, previous in reversed(self.patches):
            if previous is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, previous)
        self.patches.clear()

    def _patch(self, owner, name, value):
        self.patches.append((owner, name, owner.__dict__.get(name, _MISSING)))
        setattr(owner, name, value)

    def _wrap_iterator(self, cls):
        clock, pending, by_data, received = self.clock, self._pending, self._by_data, self.received
        init, next_data, get_data, process_data = cls.__init__, cls._next_data, cls._get_data, cls._process_data
        processes, untraced = self.processes, self.untraced_pids

        def __init__(it, *args, **kwargs):
            try:
                init(it, *args, **kwargs)
            finally:  # the workers it started run traced_worker_loop: their exit codes explain a stream cut short
                processes.update((w.pid, w) for w in getattr(it, "_workers", ()) if w.pid is not None)

        def _next_data(it):
            workers = it._workers
            if workers and workers[0].pid not in processes:
                untraced.update(w.pid for w in workers)  # an iterator made before the block
            start = clock()
            pending.append(None)
            try:
                return next_data(it)
            finally:
                received.append((start, clock(), pending.pop()))

        def _get_data(it):
            result = get_data(it)
            index = result[0]
            if type(index) is int:
                by_data[id(result[1])] = (index, result[1])
            return result

        def _process_data(it, data, worker_idx):
            entry = by_data.pop(id(data), None)
            if entry is not None and entry[1] is data and pending:
                pending[-1] = entry[0]  # the batch this _next_data returns (or raises the worker's error for)
            return process_data(it, data, worker_idx)

        self._patch(cls, "__init__", __init__)
        self._patch(cls, "_next_data", _next_data)
        self._patch(cls, "_get_data", _get_data)
        self._patch(cls, "_process_data", _process_data)

    def stop(self):
        """Undo the patches, let running workers write what they have, read every stream; once."""
        if self.config is None or self.stopped:
            return
        self.stopped = True
        self._unpatch()
        self._by_data.clear()
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        self._sync()
        self.streams = [read_stream(os.path.join(d, name)) for d in self.directories if os.path.isdir(d)
                        for name in sorted(os.listdir(d)) if name.endswith(".stream")]
        outer = _ACTIVE[-1] if _ACTIVE else None
        if outer is not None:  # a persistent worker of this block may run on in the enclosing one
            outer.directories.extend(self.directories)
            outer.processes.update(self.processes)
        else:
            for directory in self.directories:  # a worker that finds its directory gone stops recording
                shutil.rmtree(directory, ignore_errors=True)

    def _sync(self):
        """Ask the workers still running to stream what they recorded; wait until they did (or died)."""
        running = {}
        for directory in self.directories:
            if not os.path.isdir(directory):
                continue
            for name in os.listdir(directory):
                if name.endswith(".stream"):
                    path = os.path.join(directory, name)
                    stream = read_stream(path)
                    if not stream.ended and _alive(stream.pid):
                        running[stream.pid] = (directory, path)
        if not running:
            return
        request = self.clock()
        for directory in {d for d, _ in running.values()}:
            _write_atomic(os.path.join(directory, "sync"), str(request))
        deadline = time.monotonic() + SYNC_TIMEOUT_S
        waiting = dict(running)
        pause = threading.Event()
        while waiting and time.monotonic() < deadline:
            for pid, (_, path) in list(waiting.items()):
                stream = read_stream(path)
                if stream.synced >= request or stream.ended or not _alive(pid):
                    self.live[pid] = stream.synced >= request
                    del waiting[pid]
            if waiting:
                pause.wait(0.01)
        for pid in waiting:
            self.live[pid] = False

    # -- the merge ---------------------------------------------------------------------------------
    def merge(self, root, meta):
        """Hang one node per worker process under `root`, link the batches, say how each worker ended."""
        from ..model import Call
        notes = meta.setdefault("notes", [])
        notes.extend(self.notes)
        streams, workers = [], []
        for stream in self.streams:
            if stream.pid is None:
                continue
            try:
                workers.append(build_worker(stream, self.config, Call, root))
            except Exception as error:  # the main thread's trace must survive a worker's stream
                notes.append(f"worker {stream.worker_id} (pid {stream.pid}): its calls could not be merged "
                             f"({type(error).__name__}: {error})")
                continue
            streams.append(stream)
        if workers:
            root.children = sorted(root.children + workers, key=lambda c: c.start_ns)
        self._link_received(root)
        receivers = {id(fetch): main for main, fetch in batch_pairs(root) if fetch is not None} if workers else {}
        for stream in sorted(streams, key=lambda s: (_int(s.worker_id), s.start_ns)):
            notes.extend(self._ending_notes(stream, receivers))
        recorded = {stream.pid for stream in self.streams}
        silent = sorted(pid for pid in self.processes if pid not in recorded)
        if silent:
            notes.append(f"worker processes {', '.join(map(str, silent))} were started in the block but recorded "
                         "nothing: they could not import the tracer (under spawn or forkserver the child must find "
                         "it on sys.path), or died before their first call")
        if self.untraced_pids:
            notes.append(f"worker processes {', '.join(map(str, sorted(self.untraced_pids)))} belong to a DataLoader "
                         "iterator started before the block, and were not traced: start iterating inside the block")
        if not workers and not silent:
            notes.append("workers=True, but no DataLoader worker process started in the block (num_workers=0, or the "
                         "loader was iterated outside the block)")
        meta["workers"] = len(workers)
        meta["pid"] = os.getpid()

    def _link_received(self, root):
        received = sorted(r for r in self.received if r[2] is not None)
        if not received:
            return
        starts = [r[0] for r in received]
        for call in root.walk():
            if call.kind == "python" and call.name == _RECEIVER:
                i = bisect.bisect_right(starts, call.start_ns) - 1
                if i >= 0 and received[i][0] <= call.start_ns <= received[i][1]:
                    call.batch = received[i][2]

    def _ending_notes(self, stream, receivers):
        who = f"worker {stream.worker_id} (pid {stream.pid})"
        notes = [f"{who}: {note}" for note in stream.notes]
        for fetch in stream.failed_fetches:
            main = receivers.get(id(fetch))
            error = "an exception" if fetch.error in (RAISED, RAISED_HERE) else fetch.error
            if main is not None and main.error:
                notes.append(f"{who}: batch {fetch.batch} raised {error} in {fetch.name}; the DataLoader sent the "
                             "error to the main process, which raised it again")
            elif error not in ("an exception", "StopIteration"):  # StopIteration: an IterableDataset's shard ended
                notes.append(f"{who}: batch {fetch.batch} raised {error} in {fetch.name}")
        if stream.ended:
            if stream.how != "returned":
                notes.append(f"{who} ended by an exception: its loop {stream.how}")
            return notes
        lost = "its calls up to its last flush are kept; the batch it was on is lost"
        if stream.pid in self.live:
            notes.append(f"{who} was still running when the block ended (persistent workers, or an iterator not "
                         "run to its end): its calls so far are kept" + ("" if self.live[stream.pid] else
                                   f", but it did not write its last ones within {SYNC_TIMEOUT_S:g} s"))
            return notes
        process = self.processes.get(stream.pid)
        code = process.exitcode if process is not None else None
        if code is not None and code < 0:
            try:
                how = signal.Signals(-code).name
            except ValueError:
                how = f"signal {-code}"
            notes.append(f"{who} was killed by {how}: {lost}")
        elif code is not None:
            notes.append(f"{who} ended without closing its trace (exit code {code}): the DataLoader terminates a "
                         "worker still running 5 s after shutdown begins, and torch's SIGTERM handler exits at once; "
                         + lost)
        else:
            notes.append(f"{who} ended without closing its trace (killed, or os._exit): {lost}")
        return notes


_MISSING = object()
_ORIGINAL_WORKER_LOOP = None  # torch's, saved at the first patch (a forked worker inherits it)


def _int(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return sys.maxsize


def _alive(pid) -> bool:
    """Is the process running (a zombie is not)?"""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rpartition(b")")[2].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True


def _write_atomic(path, text):
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as f:
        f.write(text)
    os.replace(temporary, path)


# -- reading a stream ------------------------------------------------------------------------------

class _Code:
    """What the tree builder reads of a code object, for one recorded in another process."""

    __slots__ = ("co_qualname", "co_name", "co_filename", "co_firstlineno", "co_varnames", "co_argcount",
                 "co_kwonlyargcount", "co_flags")

    def __init__(self, qualname, name, filename, firstlineno, names):
        self.co_qualname, self.co_name, self.co_filename, self.co_firstlineno = qualname, name, filename, firstlineno
        self.co_varnames, self.co_argcount, self.co_kwonlyargcount, self.co_flags = tuple(names), len(names), 0, 0


class _Operator:
    """An ATen operator recorded in another process: its name is all the builder reads."""

    __slots__ = ("_name",)

    def __init__(self, name):
        self._name = name

    def name(self):
        return self._name


class _Records(pickle.Unpickler):
    """A stream holds plain data only: no class is ever loaded from it."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"a worker stream holds plain data, not {module}.{name}")


class Stream:
    """One worker process's stream, read back: its threads' events with stand-ins for code and operators."""

    def __init__(self):
        self.pid = self.worker_id = self.start_method = None
        self.start_ns = self.end_ns = self.last_ns = 0
        self.ended = False
        self.how = None
        self.synced = -1
        self.threads: dict = {}  # index -> [name, start_ns, events]
        self.codes: dict = {}  # key -> (_Code, module, plumbing)
        self.operators: dict = {}
        self.builtins: dict = {}  # (module, name) -> the one tuple, so that returns match calls by identity
        self.markers: list = []  # (time_ns, batch index), when the worker took a batch off its index queue
        self.notes: list[str] = []
        self.failed_fetches: list = []  # fetch calls that raised, found when the tree is built
        self.damaged = False


def read_stream(path) -> Stream:
    stream = Stream()
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return stream
    position = 0
    while position + _HEADER.size <= len(data):
        (size,) = _HEADER.unpack_from(data, position)
        end = position + _HEADER.size + size
        if end > len(data):
            stream.damaged = True  # the process ended while writing its last record
            break
        try:
            record = _Records(io.BytesIO(data[position + _HEADER.size:end])).load()
        except Exception:
            stream.damaged = True
            break
        _apply(stream, record)
        position = end
    return stream


def _apply(stream, record):
    kind = record.get("type")
    stream.last_ns = max(stream.last_ns, record.get("t", 0))
    if kind == "start":
        stream.pid, stream.worker_id, stream.start_method = record["pid"], record["worker_id"], record["start_method"]
        stream.start_ns = record["t"]
        return
    for key, qualname, name, filename, line, names, module, plumbing in record.get("codes", ()):
        stream.codes[key] = (_Code(qualname, name, filename, line, names), module, plumbing)
    for key, name in record.get("operators", ()):
        stream.operators[key] = _Operator(name)
    stream.markers.extend(record.get("markers", ()))
    codes, operators, builtins = stream.codes, stream.operators, stream.builtins
    for index, name, start_ns, events in record.get("threads", ()):
        thread = stream.threads.get(index)
        if thread is None:
            thread = stream.threads[index] = [name, start_ns, []]
        append = thread[2].append
        for kind_, key, t, extra in events:
            if kind_ in _CODE_EVENTS:
                what = codes[key][0]
            elif kind_ in _ATEN_EVENTS:
                what = operators[key]
            else:
                what = builtins.setdefault(key, key)
            append((kind_, what, t, extra))
    stream.notes.extend(record.get("notes", ()))
    if "synced" in record:
        stream.synced = max(stream.synced, record["synced"])
    if kind == "end":
        stream.ended, stream.how, stream.end_ns = True, record["how"], record["t"]


# -- building a worker's node ----------------------------------------------------------------------

class _Replay:
    """What the tree builder reads of a Recording, for one thread of another process."""

    def __init__(self, stream, events, config, start_ns, end_ns):
        self.events = events
        self.scope = _ReplayScope(stream, config.include)
        self.machinery = {id(code) for code, _, plumbing in stream.codes.values() if plumbing}
        self.depth = config.depth
        self.started_ns, self.stopped_ns = start_ns, end_ns
        self.layers, self.backend, self.max_events = config.layers, "setprofile", config.max_events
        self.notes: list = []
        self.threads_not_traced = self.other_thread_events = 0
        self.workers = None


class _ReplayScope:
    def __init__(self, stream, names):
        self.names = ()  # the main trace already checked the include names
        self.modules = {id(code): module for code, module, _ in stream.codes.values()}


def build_worker(stream, config, Call, root):
    """The worker node: one thread node per recorded thread, each over that thread's calls."""
    from ..model import _build
    end_ns = stream.end_ns or stream.last_ns
    worker = Call(f"worker {stream.worker_id}", kind="worker", start_ns=stream.start_ns,
                  duration_ns=max(end_ns - stream.start_ns, 0),
                  args={"pid": str(stream.pid), "worker_id": str(stream.worker_id), "start_method": stream.start_method},
                  parent=root)
    if not stream.ended:
        worker.open = True
    for index in sorted(stream.threads):
        name, start_ns, events = stream.threads[index]
        thread_end = events[-1][2] if events else start_ns
        if stream.ended:
            thread_end = max(thread_end, stream.end_ns)
        tree, meta = _build(_Replay(stream, events, config, start_ns, thread_end), None)
        thread = Call(f"thread {name}", kind="thread", start_ns=start_ns, duration_ns=max(thread_end - start_ns, 0),
                      parent=worker)
        worker.children.append(thread)
        thread.children = tree.children
        for call in thread.walk():
            if call is not thread:
                call.parent = thread if call.parent is tree else call.parent
                call.depth = call.parent.depth + 1
        if meta.get("truncated_at"):
            stream.notes.append(f"thread {name} stopped recording after {config.max_events:,} events, inside "
                                f"{meta['truncated_at']}; the worker ran on")
        if index == 0:
            _link_fetches(thread, stream)
    return worker


def _link_fetches(thread, stream):
    """Each fetch gets the batch index the worker took off its index queue right before it."""
    markers = sorted(stream.markers)
    position, last = 0, None
    for call in thread.walk():
        if call.kind != "python" or not call.name.endswith(_FETCH_SUFFIX):
            continue
        while position < len(markers) and markers[position][0] <= call.start_ns:
            last = markers[position]
            position += 1
        if last is not None:
            call.batch = last[1]
            last = None
            if call.error:
                stream.failed_fetches.append(call)


# -- the batch links, read from any tree (a loaded one too) -----------------------------------------

def batch_pairs(root) -> list:
    """(main-process call, worker fetch call) for every batch index in the tree, in the order received.

    The k-th main call that received batch i is paired with the latest fetch of batch i that had started
    before that call returned and was not paired yet; a fetch no main call received pairs with None.
    """
    mains: dict = {}
    fetches: dict = {}
    for call in root.walk():
        if call.batch is None:
            continue
        in_worker = any(a.kind == "worker" for a in call.ancestors())
        (fetches if in_worker else mains).setdefault(call.batch, []).append(call)
    pairs = []
    for index in set(mains) | set(fetches):
        free = sorted(fetches.get(index, ()), key=lambda c: c.start_ns)
        for main in sorted(mains.get(index, ()), key=lambda c: c.start_ns):
            end = main.start_ns + main.duration_ns
            candidates = [f for f in free if f.start_ns <= end]
            fetch = candidates[-1] if candidates else None
            if fetch is not None:
                free.remove(fetch)
            pairs.append((main, fetch))
        pairs.extend((None, fetch) for fetch in free)
    return sorted(pairs, key=lambda p: (p[0] or p[1]).start_ns)


def find_batch(root, index, epoch=0):
    matching = [pair for pair in batch_pairs(root) if (pair[0] or pair[1]).batch == index]
    return matching[epoch] if 0 <= epoch < len(matching) else (None, None)


# ================================================================================================
# A worker process: record every thread, stream the events.
# ================================================================================================

_CHILD = None  # this process's ChildRecorder, when it is a traced worker


def traced_worker_loop(config, *args, **kwargs):
    """torch's ``_worker_loop``, recorded: what the DataLoader runs in each worker during a traced block."""
    loop = _ORIGINAL_WORKER_LOOP
    if loop is None:  # spawn, forkserver: a fresh interpreter, where torch's is in place
        from torch.utils.data._utils import worker as worker_module
        loop = worker_module._worker_loop
    worker_id = args[10] if len(args) > 10 else kwargs.get("worker_id")
    child = ChildRecorder(config, worker_id)
    index_queue = args[2] if len(args) > 2 else kwargs.get("index_queue")
    if index_queue is not None:
        _stream_before_each_get(index_queue, child)
    return child.run(loop, args, kwargs)


def traced_target(target, worker_id=0):
    """`target`, to run in a child process (multiprocessing) recorded into the innermost workers=True trace.

    The same recorder as a DataLoader worker's, for children that are not DataLoader workers:
    ``multiprocessing.Process(target=traced_target(work, 1), args=...)``; in the child,
    ``checkpoint(batch=i)`` streams what was recorded so far and marks batch ``i``.
    """
    if not _ACTIVE:
        raise RuntimeError("traced_target needs a running tracer.trace(workers=True) block to record into")
    return functools.partial(run_traced_target, _ACTIVE[-1].config, worker_id, target)


def run_traced_target(config, worker_id, target, *args, **kwargs):
    return ChildRecorder(config, worker_id).run(target, args, kwargs)


def checkpoint(batch=None):
    """In a traced child: stream what its threads recorded; `batch` marks the batch it starts on next."""
    child = _CHILD
    if child is not None:
        child.checkpoint(batch)


def _stream_before_each_get(queue, child):
    """The worker's index queue streams the recording before each wait for a batch, and marks the batch it
    got (an attribute of this process's queue object: the trace still shows torch's Queue)."""
    get = queue.get

    def get_and_mark(*args, **kwargs):
        child.checkpoint()
        item = get(*args, **kwargs)
        if type(item) is tuple and len(item) == 2 and type(item[0]) is int:  # (send index, indices)
            child.mark(item[0])
        return item

    queue.get = get_and_mark


def _start_method() -> str:
    process = multiprocessing.current_process()
    return getattr(type(process), "_start_method", None) or multiprocessing.get_start_method()


def _discard_inherited():
    """A forked child runs on with its parent's hooks and buffers: switch them off before recording."""
    sys.setprofile(None)
    threading.setprofile(None)
    from .setprofile import _dispatcher
    _dispatcher.forget()
    if sys.version_info >= (3, 12):
        from .monitoring import TOOL_NAME
        mon = sys.monitoring
        for tool in range(6):
            if mon.get_tool(tool) == TOOL_NAME:
                mon.set_events(tool, 0)
                mon.free_tool_id(tool)


class _Thread:
    __slots__ = ("index", "name", "ident", "start_ns", "recording", "written", "capped")

    def __init__(self, index, name, start_ns, recording):
        self.index, self.name, self.start_ns, self.recording, self.written = index, name, start_ns, recording, 0
        self.capped = False  # past max_events: what it records is dropped at each flush
        self.ident = threading.get_ident()


class ChildRecorder:
    """Records every thread of this process; streams the events to the trace's directory."""

    def __init__(self, config, worker_id):
        global _CHILD
        _discard_inherited()
        _CHILD = self
        self.config = config
        self.clock = time.perf_counter_ns
        self.worker_id = worker_id
        self.lock = threading.RLock()
        self.threads: list[_Thread] = []
        self.code_keys: dict = {}  # id(code) -> key (the recordings keep each code object alive)
        self.operator_keys: dict = {}
        self.markers: list = []
        self.pending_notes: list[str] = []
        self.stopped = False  # the block ended: the trace's directory is gone
        self.closed = threading.Event()
        self.fd = os.open(os.path.join(config.directory, f"w{os.getpid()}.stream"),
                          os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._write({"type": "start", "t": self.clock(), "pid": os.getpid(), "worker_id": worker_id,
                     "start_method": _start_method()})

    def run(self, target, args, kwargs):
        streamer = threading.Thread(target=self._stream_loop, name="tracer-stream", daemon=True)
        streamer.start()  # before the hook below: its own thread is never recorded
        main = self._record_this_thread()
        how = "returned"
        try:
            return target(*args, **kwargs)
        except BaseException as error:
            how = f"raised {type(error).__name__}"
            raise
        finally:
            if main.recording is not None:
                main.recording.stop()
            threading.setprofile(None)
            self.closed.set()
            self.flush(end=how)
            with self.lock:
                os.close(self.fd)
                self.fd = None

    def _record_this_thread(self):
        from . import Recording
        cfg = self.config
        recording = Recording(layers=cfg.layers, include=cfg.include, depth=cfg.depth, args=cfg.args,
                              max_events=sys.maxsize, backend="setprofile")
        with self.lock:
            thread = _Thread(len(self.threads), threading.current_thread().name, self.clock(), recording)
            self.threads.append(thread)
        recording.start()
        threading.setprofile(self._on_new_thread)  # Recording.start put its thread counter there
        return thread

    def _on_new_thread(self, frame, event, arg):
        sys.setprofile(None)
        if not self.stopped and not self.closed.is_set():
            self._record_this_thread()

    # -- streaming -----------------------------------------------------------------------------------
    def mark(self, batch):
        with self.lock:  # the streaming thread swaps the list out under it
            self.markers.append((self.clock(), batch))

    def checkpoint(self, batch=None):
        if self.stopped:
            self._stop_this_thread()
            return
        self.flush()
        if batch is not None:
            self.mark(batch)

    def _stop_this_thread(self):
        for thread in self.threads:
            if thread.recording is not None and thread.ident == threading.get_ident():
                thread.recording.stop()
                thread.recording = None

    def _stream_loop(self):
        sync = os.path.join(self.config.directory, "sync")
        answered = None
        while not self.closed.wait(FLUSH_INTERVAL_S):
            if self.stopped or not os.path.isdir(self.config.directory):
                self.stopped = True
                threading.setprofile(None)
                for thread in self.threads:  # threads it cannot switch off record on: drop their events
                    if thread.recording is not None:
                        del thread.recording.events[:]
                continue
            try:
                with open(sync) as f:
                    request = int(f.read() or -1)
            except (OSError, ValueError):
                request = None
            if request is not None and request != answered:
                self.flush(synced=request)
                answered = request
            elif any(t.recording is not None and len(t.recording.events) for t in self.threads):
                self.flush()

    def flush(self, end=None, synced=None):
        """Write what every thread recorded since the last flush as one record."""
        with self.lock:
            if self.fd is None or self.stopped and end is None:
                return
            codes, operators, threads = [], [], []
            for thread in list(self.threads):
                recording = thread.recording
                if recording is None:
                    continue
                events = recording.events
                n = len(events)
                taken = events[:n]
                del events[:n]  # the thread may append meanwhile: only what was taken goes
                if thread.capped or (not taken and thread.written):
                    continue
                room = self.config.max_events - thread.written
                if len(taken) > room:
                    taken = taken[:room] + [(TRUNCATED, taken[room][1], taken[room][2], None)] \
                        if taken[room][0] in _CODE_EVENTS else taken[:room]
                    thread.capped = True
                    self.pending_notes.append(f"thread {thread.name} recorded more than {self.config.max_events:,} "
                                              "events (max_events); the rest were not kept, the worker ran on")
                thread.written += len(taken)
                threads.append((thread.index, thread.name, thread.start_ns,
                                self._portable(taken, recording, codes, operators)))
            record = {"type": "end" if end else "events", "t": self.clock(), "codes": codes, "operators": operators,
                      "threads": threads, "markers": self.markers, "notes": self.pending_notes}
            self.markers, self.pending_notes = [], []
            if end:
                record["how"] = end
            if synced is not None:
                record["synced"] = synced
            if threads or end or synced is not None or record["markers"] or record["notes"]:
                self._write(record)

    def _portable(self, events, recording, codes, operators):
        """The events with code objects and operators as keys, their descriptions sent once."""
        code_keys, operator_keys = self.code_keys, self.operator_keys
        modules, machinery = recording.scope.modules, recording.machinery
        out = []
        append = out.append
        for kind, what, t, extra in events:
            if kind in _CODE_EVENTS:
                key = code_keys.get(id(what))
                if key is None:
                    key = code_keys[id(what)] = len(code_keys)
                    codes.append((key, _qualname(what), what.co_name, what.co_filename, what.co_firstlineno,
                                  _argument_names(what), modules.get(id(what)), id(what) in machinery))
            elif kind in _ATEN_EVENTS:
                key = operator_keys.get(id(what))
                if key is None:
                    key = operator_keys[id(what)] = len(operator_keys)
                    operators.append((key, what.name()))
                if kind == ATEN_CALL and type(extra) is tuple:
                    from .aten import operator_argument_names
                    extra = {n: v for n, v in zip(operator_argument_names(what), extra) if v is not None}
            else:
                key = what
            append((kind, key, t, extra))
        return out

    def _write(self, record):
        data = pickle.dumps(record, protocol=4)
        view = memoryview(_HEADER.pack(len(data)) + data)
        while view:
            view = view[os.write(self.fd, view):]


def _qualname(code) -> str:
    name = getattr(code, "co_qualname", None)
    if name:
        return name
    from ..model import _qualname_of
    return _qualname_of(code)


def _argument_names(code):
    from .summary import argument_names
    return argument_names(code)
