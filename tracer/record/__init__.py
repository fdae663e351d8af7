"""How calls are captured. A Recording owns the event list and the backends that fill it."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from types import ModuleType

from .scope import Scope, check_depth, check_layers
from .workers import Collector, check_workers  # torch-free: torch is imported when a workers=True block starts

try:  # Trace.__enter__ and __exit__, the event log and the C clock (_recording.h), from whichever C recorder is built
    from ._fastprofile import EnterGuard, EventLog, ExitGuard, calibrate_clock
except ImportError:
    try:
        from ._fastmonitor import EnterGuard, EventLog, ExitGuard, calibrate_clock
    except ImportError:
        EnterGuard = ExitGuard = EventLog = calibrate_clock = None

DEFAULT_MAX_EVENTS = 5_000_000


def _c_modules():
    """The C recorders imported in this process (each keeps its own spare memory)."""
    return [module for module in (sys.modules.get(f"{__name__}._fastprofile"), sys.modules.get(f"{__name__}._fastmonitor"))
            if module is not None]


def spare_memory() -> int:
    """Bytes the tracer keeps for its next trace: the array of the largest event log it emptied and the
    chunks of the large trees freed since (up to 16 MiB each), their pages present, so that the next
    recording and build write into memory the system has mapped already. A dropped large tree is freed (and
    its chunks spare) at the collector's next full collection: each call refers to its parent, a cycle, and
    a large tree is moved to the oldest generation when built (a small one stays young). 0 where no C
    recorder is built."""
    return sum(module.spare_memory() for module in _c_modules())


def release_memory() -> int:
    """Give back what spare_memory() counts (the next trace takes its memory new again); returns those bytes."""
    return sum(module.release_memory() for module in _c_modules())


BACKENDS = ("auto", "setprofile", "sys.monitoring")


class Recording:
    """One block's recording: options checked up front, events appended by the backends."""

    def __init__(self, layers=("python",), include=("torch", "torchvision"), depth=None, args=True,
                 max_events=DEFAULT_MAX_EVENTS, backend="auto", workers=False):
        self.layers = check_layers(layers)
        if "builtin" in self.layers and "python" not in self.layers:
            raise ValueError("the builtin layer keeps the C functions that traced Python code calls: "
                             "use it with the python layer, layers=('python', 'builtin')")
        self.scope = Scope(include)
        if "aten" in self.layers and importlib.util.find_spec("torch") is None:
            raise ValueError("the aten layer records ATen operators through a TorchDispatchMode and needs torch: "
                             "install torch, or leave 'aten' out of the layers")
        self.depth = check_depth(depth)
        if not isinstance(args, bool):  # bool("no") is True: a string or a number is a mistake to say
            raise TypeError(f"args takes True (summarise arguments) or False, not {type(args).__name__}: {args!r}")
        self.args = args
        if isinstance(max_events, bool) or not isinstance(max_events, int) or max_events < 1:
            raise ValueError(f"max_events must be a positive whole number, got {max_events!r}")
        self.max_events = max_events
        self.backend = _choose_backend(backend)
        self.workers = Collector(self) if check_workers(workers) else None  # DataLoader worker processes
        self.clock = time.perf_counter_ns
        # (kind, what, time_ns, extra) per event: an EventLog (C structs, read as tuples) where the C recorders
        # are built, the list of tuples it stands for where they are not
        self.events = new_event_log()
        self.threads_not_traced = 0
        self.other_thread_events = 0
        self.notes: list[str] = []  # what the backends saw go wrong, for the trace's notes
        self._builtin_keys: dict = {}
        self.machinery: set = set()  # ids of the code objects of the recording's own plumbing, dropped with their subtree
        self._python = None
        self._mode = None
        self.started_ns = self.stopped_ns = None
        self.event_clock = "perf_counter"  # what the C recorders stamp events with: "tsc" or "perf_counter"

    def note_dropped(self, errors: int):
        """Say that a C callback dropped `errors` events because recording them raised."""
        if errors:
            self.notes.append(f"{errors:,} events were not recorded because recording them failed "
                              "(an argument that could not be summarised, say); the code ran on")

    def builtin_key(self, func):
        """The interned (module, name) of a C function in the include set, else None; never raises."""
        owner = getattr(func, "__self__", None)
        # A module's functions are the same objects at every call; a method bound to a type or an instance
        # is made anew at each access (dict.fromkeys), so it is cached by its owner's type and its name.
        # type(owner), never isinstance: the traced code's __class__ property may raise.
        owner_type = type(owner)
        if owner is None or issubclass(owner_type, ModuleType):
            cache_key = func
        else:
            try:
                cache_key = (owner if issubclass(owner_type, type) else owner_type, func.__name__)
            except Exception:  # an odd callable: not one of the included packages' C functions
                return None
        try:
            return self._builtin_keys[cache_key]
        except KeyError:
            key = self.scope.classify_builtin(func)
            if key is not None:
                key = self._builtin_keys.setdefault(key, key)  # one tuple per name: returns match by identity
            self._builtin_keys[cache_key] = key
            return key
        except Exception:  # an unhashable key, or a __eq__ that raises
            return None

    def start(self):
        """Install every hook, the python layer's last; on any exception (an interrupt included) none is left."""
        try:
            if self.workers is not None:  # before recording: the patches (and importing torch) are not the block's calls
                self.workers.start()
            if "aten" in self.layers:
                from .aten import make_mode
                mode = make_mode(self)
                self._mode = mode
                mode.__enter__()
            if calibrate_clock is not None:  # the C recorders' clock, anchored to perf_counter_ns here
                self.event_clock = calibrate_clock(TSC_CLOCK)
            self.started_ns = self.clock()
            if "python" in self.layers:
                if self.backend == "sys.monitoring":
                    from .monitoring import MonitoringRecorder as Backend
                else:
                    from .setprofile import ProfileRecorder as Backend
                self._python = Backend(self)  # known before it starts, so that stop() finds it whatever happens
                self._python.start()
        except BaseException:
            self.stop()
            raise

    def stop(self):
        """Uninstall every hook; safe to call more than once, and again after an interrupt stopped it midway."""
        try:
            if self._python is not None:
                self._python.stop()
                self._python = None
        finally:
            if self.stopped_ns is None:
                self.stopped_ns = self.clock()
            try:
                self._exit_mode()
            finally:
                if self.workers is not None:
                    self.workers.stop()

    def _exit_mode(self):
        mode = self._mode
        if mode is not None:
            from torch.utils._python_dispatch import _get_current_dispatch_mode_stack
            if any(m is mode for m in _get_current_dispatch_mode_stack()):  # not if an interrupt came before it entered
                mode.__exit__(None, None, None)
            self._mode = None


def _kernel_clock_is_tsc() -> bool:
    """Whether CLOCK_MONOTONIC (time.perf_counter_ns) is itself read from the time-stamp counter, so that the
    C recorders may stamp events from it directly. TRACER_CLOCK=perf_counter says never."""
    if os.environ.get("TRACER_CLOCK", "").strip().lower() == "perf_counter":
        return False
    try:
        with open("/sys/devices/system/clocksource/clocksource0/current_clocksource") as f:
            return f.read().strip() == "tsc"
    except OSError:  # not Linux, or no sysfs
        return False


TSC_CLOCK = _kernel_clock_is_tsc()


def new_event_log():
    """An empty event stream for a recording: the C EventLog, or a list of tuples where the C recorders are not
    built. The Python callbacks append to either; the C ones need the EventLog."""
    return [] if EventLog is None else EventLog()


def _choose_backend(backend):
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: choose from {', '.join(BACKENDS)}")
    if backend == "auto":
        return "sys.monitoring" if sys.version_info >= (3, 12) else "setprofile"
    if backend == "sys.monitoring" and sys.version_info < (3, 12):
        raise ValueError("sys.monitoring needs Python 3.12 or newer; use backend='setprofile'")
    return backend
