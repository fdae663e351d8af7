"""What ``import <module>`` does, measured in a fresh Python: ``tracer.trace_import("torch")``.

A child interpreter runs ``python -X importtime`` and imports the module once. Two things come back:

- **The module tree**, parsed from what ``-X importtime`` writes on stderr (``import time: self [us] |
  cumulative | imported package``, one line per import as it finishes, nested by indentation).
  Times are CPython's own: *self* is the time in the module's own import, *cumulative* includes the
  modules it imported. Children are kept in the order their imports started. A line is an attempt,
  not a module: a failed import has one, and so does an import of ``a.b`` that found ``a.b`` loaded
  while it imported the parent ``a``, so a name can appear twice; ``count`` counts modules.
- **The native shared libraries** the import loaded, in load order, read from the dynamic loader:
  on Linux, ``dl_iterate_phdr`` (via ctypes, after the import) lists every loaded object in the order
  the loader added it, and ``/proc/self/maps`` read before and after the import (with plain file reads,
  so the child imports nothing first) says which of them are new. On macOS the child asks dyld
  (``_dyld_image_count`` / ``_dyld_get_image_name``, also load order) before and after; that needs
  ctypes before the import, so ctypes and what it imports are missing from the tree there. Elsewhere
  (Windows) the list is empty and ``library_source`` says why.

The child also reports the ``sys.modules`` entries the import added without importing them
(``registered``), e.g. the submodules of a C extension that its Python code files by hand.

Library paths are this machine's, so they stay on the object (``libraries``); what is shown
(``library_locations``, the HTML) names them from ``site-packages/`` or ``<python>/`` (the
interpreter's prefix), or by file name alone for a library found elsewhere (the system's).

This module imports no torch: the import being measured happens in the child only.
"""

from __future__ import annotations

import fnmatch
import html
import json
import os
import re
import subprocess
import sys
import time

BEGIN, END, RESULT = "<tracer-import-begin>", "<tracer-import-end>", "<tracer-import-result>"
STDERR_TAIL_LINES = 30

# Runs in the child as `python -X importtime -c CHILD MODULE`. It imports nothing before the measured
# import (except ctypes on macOS), so the import tree is what a fresh `import MODULE` does.
CHILD = f"BEGIN, END, RESULT = {BEGIN!r}, {END!r}, {RESULT!r}\n" + r'''
import sys

def mapped_files():
    try:
        with open("/proc/self/maps") as maps:
            rows = [line.split(None, 5) for line in maps]
    except OSError:
        return None
    paths = [row[5].strip() for row in rows if len(row) == 6 and row[5].startswith("/")]
    return set(path[:-len(" (deleted)")] if path.endswith(" (deleted)") else path for path in paths)

def loaded_objects():
    import ctypes
    if sys.platform == "darwin":
        dyld = ctypes.CDLL(None)
        dyld._dyld_image_count.restype = ctypes.c_uint32
        dyld._dyld_get_image_name.restype = ctypes.c_char_p
        dyld._dyld_get_image_name.argtypes = [ctypes.c_uint32]
        names = [dyld._dyld_get_image_name(i) for i in range(dyld._dyld_image_count())]
        return [name.decode() for name in names if name], "load order, from dyld's image list"
    class Info(ctypes.Structure):
        _fields_ = [("addr", ctypes.c_void_p), ("name", ctypes.c_char_p)]
    callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(Info), ctypes.c_size_t, ctypes.c_void_p)
    names = []
    def visit(info, size, data):
        names.append(info.contents.name or b"")
        return 0
    ctypes.CDLL(None).dl_iterate_phdr(callback_type(visit), None)
    return [name.decode() for name in names if name], "load order, from dl_iterate_phdr"

def libraries(before, after_mapped):
    import os
    if sys.platform == "darwin":
        objects, source = loaded_objects()
        return objects, [path for path in objects if path not in before], source
    if after_mapped is None:
        return [], [], "not read on " + sys.platform + ": only Linux and macOS are supported"
    new = after_mapped - before
    try:
        objects, source = loaded_objects()
    except (OSError, AttributeError) as error:
        objects = sorted(new)
        source = "sorted by path, not load order, from /proc/self/maps (dl_iterate_phdr failed: " + str(error) + ")"
    objects = [os.path.normpath(path) for path in objects]
    return objects, [path for path in objects if os.path.realpath(path) in new], source

def main(name):
    before = set(loaded_objects()[0]) if sys.platform == "darwin" else mapped_files()
    modules_before = set(sys.modules)
    sys.stderr.write("\n" + BEGIN + "\n")
    sys.stderr.flush()
    failure = None
    try:
        __import__(name)
    except BaseException as error:
        failure = error
    sys.stderr.write("\n" + END + "\n")
    sys.stderr.flush()
    after_mapped = mapped_files() if sys.platform != "darwin" else None
    added = [module for module in list(sys.modules) if module not in modules_before]
    every, new, source = libraries(before or set(), after_mapped)
    if failure is not None:
        import traceback
        traceback.print_exception(type(failure), failure, failure.__traceback__)
    import json
    site_packages = [path for path in sys.path if path.endswith(("site-packages", "dist-packages"))]
    result = {"module": name, "python": sys.executable, "version": sys.version.split()[0],
              "platform": sys.platform, "error": None if failure is None else type(failure).__name__ + ": " + str(failure),
              "modules_added": added, "all_libraries": every, "libraries": new, "library_source": source,
              "site_packages": site_packages, "prefixes": [sys.prefix, sys.base_prefix]}
    sys.stdout.flush()
    sys.stdout.write("\n" + RESULT + json.dumps(result) + "\n")
    sys.stdout.flush()

main(sys.argv[1])
'''

_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S.*)$")


class ImportFailed(ImportError):
    """The module did not import in the child (or the child died); the message ends with its stderr."""

    def __init__(self, message, module, stderr_tail):
        super().__init__(message, name=module)
        self.module = module
        self.stderr_tail = stderr_tail


class ImportedModule:
    """One module an import brought in, with CPython's ``-X importtime`` figures in microseconds."""

    __slots__ = ("name", "self_us", "cumulative_us", "children", "parent", "depth", "loaded")

    def __init__(self, name, self_us, cumulative_us):
        self.name = name
        self.self_us = self_us
        self.cumulative_us = cumulative_us
        self.children: list[ImportedModule] = []
        self.parent: ImportedModule | None = None
        self.depth = 0
        self.loaded = True  # False for an import that failed (an optional dependency not installed)

    def walk(self):
        """This module and every module below it, in the order their imports started."""
        stack = [self]
        while stack:
            module = stack.pop()
            yield module
            stack.extend(reversed(module.children))

    def imported(self) -> set[str]:
        """The names of the modules this import and those below it brought in: a failed attempt is not
        one, and a name -X importtime lists twice is one module."""
        return {module.name for module in self.walk() if module.loaded}

    def __repr__(self):
        return (f"<ImportedModule {self.name} self={format_us(self.self_us)} "
                f"cumulative={format_us(self.cumulative_us)} children={len(self.children)}>")


def parse_importtime(text: str) -> list[ImportedModule]:
    """The top-level modules of ``-X importtime`` output, each with the tree of modules it imported.

    CPython writes a module's line when its import finishes, indented two spaces per nesting level,
    so a line adopts the deeper lines written since the last line at its own level.
    """
    pending: dict[int, list[ImportedModule]] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        self_us, cumulative_us, indent, name = match.groups()
        level = len(indent) // 2
        module = ImportedModule(name.strip(), int(self_us), int(cumulative_us))
        module.children = pending.pop(level + 1, [])
        for child in module.children:
            child.parent = module
        pending.setdefault(level, []).append(module)
    roots = pending.pop(min(pending), []) if pending else []
    for root in roots:
        for module in root.walk():
            module.depth = 0 if module.parent is None else module.parent.depth + 1
    return roots


def library_location(path: str, site_packages: list[str], prefixes: list[str]) -> str:
    """`path` named from the site-packages folder or the Python prefix holding it (the deepest that
    does), or by its file name alone: never by this machine's folders."""
    roots = [(folder, "site-packages") for folder in site_packages] + [(folder, "<python>") for folder in prefixes]
    holding = [(folder, label) for folder, label in roots if path.startswith(folder.rstrip(os.sep) + os.sep)]
    if not holding:
        return os.path.basename(path)
    folder, label = max(holding, key=lambda root: len(root[0]))
    return label + "/" + os.path.relpath(path, folder).replace(os.sep, "/")


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one}" if n == 1 else f"{n} {many or one + 's'}"


def format_us(us: int) -> str:
    return f"{us / 1000:.1f} ms" if us >= 1000 else f"{us} us"


class ImportTrace:
    """What one ``import <module>`` did in a fresh interpreter: the module tree and the native libraries.

    ``modules``: the top-level ImportedModule(s) (one for ``import torch``), each the root of its tree;
    ``count``: how many modules the import brought in (distinct names in ``sys.modules`` afterwards);
    ``missing``: the distinct names whose import was tried and that are not in ``sys.modules`` afterwards
    (optional dependencies that are not installed, mostly), in the order first tried; not in ``count``;
    ``libraries``: paths of the shared objects loaded by the import, in load order (this machine's paths:
    ``library_locations`` is what to show);
    ``all_libraries``: every object loaded when the import finished, in load order, those from before too;
    ``registered``: ``sys.modules`` entries the import added without the import system importing them.
    ``str()`` is the tree as text with children in import order; ``to_text(order="cost")`` puts the
    costliest first.
    """

    def __init__(self, module, modules, result, seconds):
        self.module = module
        self.modules = modules
        self.python = result["python"]
        self.python_version = result["version"]
        self.platform = result["platform"]
        self.libraries: list[str] = result["libraries"]
        self.all_libraries: list[str] = result["all_libraries"]
        self._site_packages: list[str] = result["site_packages"]
        self._prefixes: list[str] = result["prefixes"]
        self.library_source: str = result["library_source"]
        self.modules_added: list[str] = result["modules_added"]
        imported = {m.name for m in self.walk()}
        self.registered = [name for name in self.modules_added if name not in imported]
        added = set(self.modules_added)
        for imported_module in self.walk():
            imported_module.loaded = imported_module.name in added
        self.missing = list(dict.fromkeys(m.name for m in self.walk() if not m.loaded))
        self.wall_seconds = seconds

    def walk(self):
        """Every imported module, in the order its import started."""
        for root in self.modules:
            yield from root.walk()

    def imported(self) -> set[str]:
        """The names of the modules the import brought in (failed attempts left out)."""
        return set().union(*(root.imported() for root in self.modules))

    @property
    def count(self) -> int:
        return len(self.imported())

    @property
    def total_us(self) -> int:
        return sum(root.cumulative_us for root in self.modules)

    @property
    def library_names(self) -> list[str]:
        """``libtorch_cpu.so``: the file names of ``libraries``, in the same order."""
        return [os.path.basename(path) for path in self.libraries]

    @property
    def library_locations(self) -> list[str]:
        """``libraries`` as shown, free of this machine's folders, in the same order:
        ``site-packages/torch/lib/libtorch_cpu.so``, ``<python>/lib/python3.11/lib-dynload/_json....so``,
        or ``libz.so.1`` (found elsewhere: the system's)."""
        return [library_location(path, self._site_packages, self._prefixes) for path in self.libraries]

    def find(self, pattern: str) -> list[ImportedModule]:
        """Modules whose dotted name matches the glob (``torch._C``, ``torch.nn.*``), in import order."""
        match = re.compile(fnmatch.translate(pattern)).match
        return [m for m in self.walk() if match(m.name)]

    def top(self, n: int = 10, by: str = "cumulative") -> list[ImportedModule]:
        """The n costliest modules by ``cumulative`` (with what they imported) or ``self`` time."""
        if by not in ("cumulative", "self"):
            raise ValueError(f"top(by=...) is 'cumulative' or 'self', got {by!r}")
        key = (lambda m: m.cumulative_us) if by == "cumulative" else (lambda m: m.self_us)
        return sorted(self.walk(), key=key, reverse=True)[:n]

    def to_text(self, depth: int = 1, order: str = "import", limit: int | None = 12) -> str:
        """The tree as text: `depth` levels below the top, children in import order or costliest first
        (``order="cost"``), at most `limit` children per module (the rest summed on one line)."""
        head = f"import {self.module}: {self.summary()} (times: self / cumulative, as -X importtime measures)"
        return "\n".join([head, *self._tree_lines(depth, order, limit)])

    def _tree_lines(self, depth, order, limit) -> list[str]:
        lines = []
        stack = [(root, "", True) for root in reversed(self.modules)]
        while stack:
            module, prefix, last = stack.pop()
            if isinstance(module, _Note):
                lines.append(f"{prefix}└─ ... {module.text}")
                continue
            lines.append(f"{prefix}{'└─ ' if last else '├─ '}{module.name}  "
                         f"{format_us(module.self_us)} / {format_us(module.cumulative_us)}{_not_loaded(module)}")
            below = prefix + ("   " if last else "│  ")
            if module.depth >= depth:
                if module.children:
                    lines.append(f"{below}└─ ... {plural(_imported_below(module), 'module')} below")
                continue
            shown, hidden = _children(module, order, limit)
            if hidden:
                stack.append((_Note(_hidden_note(hidden)), below, True))
            for i in range(len(shown) - 1, -1, -1):
                stack.append((shown[i], below, i == len(shown) - 1 and not hidden))
        return lines

    def summary(self) -> str:
        """``1073 modules, 1641.4 ms, 87 native libraries``: modules imported, not failed attempts."""
        return (f"{plural(self.count, 'module')}, {format_us(self.total_us)}, "
                f"{plural(len(self.libraries), 'native library', 'native libraries')}")

    def __str__(self):
        return self.to_text()

    def __repr__(self):
        return f"<ImportTrace import {self.module}: {self.summary()}>"

    def to_html(self, depth: int = 1, order: str = "import", limit: int | None = 40) -> str:
        """The tree as a preformatted tree (no script, no style sheet, no tag a sanitizer drops: it reads the same
        on GitHub), then the native libraries in load order."""
        from .render.html import STYLES
        head = (f"<b>import {html.escape(self.module)}</b>: {html.escape(self.summary())} (times: self / "
                f"cumulative, as <code>-X importtime</code> measures; python {html.escape(self.python_version)})")
        tree = html.escape("\n".join(self._tree_lines(depth, order, limit)))
        count = plural(len(self.libraries), "native library", "native libraries")
        names = ", ".join(f'<code title="{html.escape(location)}">{html.escape(name)}</code>'
                          for location, name in zip(self.library_locations, self.library_names))
        libraries = f"<div>{count} ({html.escape(self.library_source)}), in load order: {names}</div>"
        return (f'<div class="tracer-import" style="{STYLES["view"]}"><div>{head}</div>'
                f'<pre style="{STYLES["pre"]}"><code style="white-space:pre">{tree}</code></pre>{libraries}</div>')

    def _repr_html_(self):
        return self.to_html()

    def _repr_pretty_(self, printer, cycle):
        printer.text(str(self))


class _Note:
    """A line in the text tree that stands for the children left out."""

    def __init__(self, text):
        self.text = text


def _children(module, order, limit):
    """(shown, hidden) children of a module, in import order or costliest first."""
    if order not in ("import", "cost"):
        raise ValueError(f"order is 'import' or 'cost', got {order!r}")
    costliest = sorted(module.children, key=lambda m: m.cumulative_us, reverse=True)
    chosen = {id(m) for m in costliest[:limit]} if limit is not None else {id(m) for m in costliest}
    kept = costliest if order == "cost" else module.children
    return [m for m in kept if id(m) in chosen], [m for m in module.children if id(m) not in chosen]


def _not_loaded(module) -> str:
    return "" if module.loaded else "  (failed: not in sys.modules afterwards)"


def _imported_below(module) -> int:
    """How many modules the imports below `module` brought in."""
    return len(set().union(*(child.imported() for child in module.children)))


def _hidden_note(hidden) -> str:
    below = len(set().union(*(m.imported() for m in hidden)))
    return (f"{plural(len(hidden), 'more import')} ({plural(below, 'module')}, "
            f"{format_us(sum(m.cumulative_us for m in hidden))})")


def _stderr_tail(stderr: str) -> str:
    """The last lines of the child's stderr, without the -X importtime lines: what went wrong."""
    lines = [line for line in stderr.splitlines()
             if not line.startswith("import time:") and line not in (BEGIN, END) and line.strip()]
    return "\n".join(lines[-STDERR_TAIL_LINES:])


def _between_markers(stderr: str) -> str:
    start = stderr.find(BEGIN)
    stop = stderr.find(END, start)
    if start < 0 or stop < 0:
        return ""
    return stderr[start + len(BEGIN):stop]


def trace_import(module: str = "torch", python: str | None = None, env: dict | None = None,
                 timeout: float = 120) -> ImportTrace:
    """Import `module` in a fresh interpreter (`python`, default this one) and return what it did.

    `env` adds variables to this process's environment for the child
    (``env={"TORCH_DEVICE_BACKEND_AUTOLOAD": "0"}``). Raises ImportFailed (an ImportError) naming the
    module and quoting the child's stderr when the import fails, and TimeoutError past `timeout` seconds.
    """
    if not isinstance(module, str) or not module or module.startswith("."):
        raise ValueError(f"trace_import needs an absolute module name like 'torch', got {module!r}")
    command = [python or sys.executable, "-X", "importtime", "-c", CHILD, module]
    child_env = {**os.environ, **(env or {})}
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=child_env, timeout=timeout,
                              stdin=subprocess.DEVNULL, errors="replace")
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"import {module} did not finish within {timeout} s in a fresh "
                           f"{command[0]}; pass a larger timeout= to wait longer") from None
    seconds = time.perf_counter() - started
    tail = _stderr_tail(done.stderr)
    _, marker, payload = done.stdout.rpartition(RESULT)
    if not marker:
        raise ImportFailed(f"the child python exited with status {done.returncode} before reporting on "
                           f"import {module}; its stderr ends:\n{tail}", module, tail)
    result = json.loads(payload)
    if result["error"]:
        raise ImportFailed(f"import {module} failed in a fresh {command[0]}: {result['error']}\n"
                           f"its stderr ends:\n{tail}", module, tail)
    return ImportTrace(module, parse_importtime(_between_markers(done.stderr)), result, seconds)
