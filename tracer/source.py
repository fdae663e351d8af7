"""From a file to its path in its repository, to a URL pinned to the running commit; source lines.

Torch is never imported here: a commit is read from ``torch.version`` only when torch is already
loaded (it is, whenever torch code was traced).
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import os
import re
import sys

# top-level package -> (GitHub repository, module holding git_version)
REPOSITORIES = {
    "torch": ("pytorch/pytorch", "torch.version"),
    "torchgen": ("pytorch/pytorch", "torch.version"),
    "torchvision": ("pytorch/vision", "torchvision.version"),
}
# Files the wheel ships somewhere other than where the repository keeps them: (prefix in wheel, prefix in repo).
_MOVED = (
    ("torchgen/packaged/ATen/", "aten/src/ATen/"),
    ("torch/include/torch/csrc/", "torch/csrc/"),
    ("torch/include/ATen/", "aten/src/ATen/"),
    ("torch/include/c10/", "c10/"),
)
NATIVE_FUNCTIONS = "torchgen/packaged/ATen/native/native_functions.yaml"


def relpath_of(filename: str | None, module: str | None) -> str | None:
    """``torch/nn/modules/module.py`` for a file of module ``torch.nn.modules.module``, else None."""
    if not filename or not module:
        return None
    base = module.replace(".", "/")
    norm = filename.replace(os.sep, "/")
    for candidate in (base + ".py", base + "/__init__.py"):
        if norm.endswith("/" + candidate) or norm == candidate:
            return candidate
    return None


def commit_of(top: str, load: bool = False) -> str | None:
    """The git commit the installed package was built from, if it is loaded (or `load`) and says so."""
    entry = REPOSITORIES.get(top)
    if entry is None or (not load and entry[1].partition(".")[0] not in sys.modules):
        return None
    try:
        version = importlib.import_module(entry[1])
    except ImportError:
        return None
    commit = getattr(version, "git_version", None)
    return commit if commit and commit != "Unknown" else None


def repo_path(relpath: str) -> str:
    for wheel, repo in _MOVED:
        if relpath.startswith(wheel):
            return repo + relpath[len(wheel):]
    return relpath


def url_of(relpath: str | None, line: int | None = None, load: bool = False) -> str | None:
    """``https://github.com/<repo>/blob/<commit>/<path>#L<line>``; None where no commit is known.

    A trace never imports a package to find its commit (its packages are loaded already); a link asked
    for by name may (`load`).
    """
    if not relpath:
        return None
    top = relpath.partition("/")[0]
    entry = REPOSITORIES.get(top)
    commit = commit_of(top, load)
    if entry is None or commit is None:
        return None
    url = f"https://github.com/{entry[0]}/blob/{commit}/{repo_path(relpath)}"
    return f"{url}#L{line}" if line else url


@functools.lru_cache(maxsize=None)
def _package_dir(top: str) -> str | None:
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.dirname(list(spec.submodule_search_locations)[0])


def installed_file(relpath: str) -> str | None:
    """Where ``relpath`` (``torch/nn/modules/module.py``) lies in this environment, if it does."""
    root = _package_dir(relpath.partition("/")[0])
    if root is None:
        return None
    path = os.path.join(root, *relpath.split("/"))
    return path if os.path.isfile(path) else None


@functools.lru_cache(maxsize=64)
def file_lines(path: str) -> tuple[str, ...]:
    with open(path, encoding="utf-8", errors="replace") as f:
        return tuple(f.read().splitlines())


def block_at(path: str, line: int) -> list[str]:
    """The lines of the def/class that starts at `line` (decorators included), from the file."""
    lines = file_lines(path)
    if not 1 <= line <= len(lines):
        return []
    try:
        return inspect.getblock(list(line + "\n" for line in lines[line - 1:]))
    except Exception:  # tokenizer trouble: show the one line rather than nothing
        return [lines[line - 1] + "\n"]


@functools.lru_cache(maxsize=1)
def _native_function_lines() -> dict[str, int]:
    path = installed_file(NATIVE_FUNCTIONS)
    out = {}
    if path is None:
        return out
    for number, text in enumerate(file_lines(path), 1):
        if text.startswith("- func: "):
            out.setdefault(text[len("- func: "):].partition("(")[0].strip(), number)
    return out


def native_function_line(op_name: str) -> int | None:
    """Line of ``aten::add.Tensor`` (given as ``add.Tensor``) in the packaged native_functions.yaml."""
    return _native_function_lines().get(op_name)


def relpath_of_file(path: str) -> str | None:
    """``torch/nn/modules/module.py`` for an installed file of a package this module knows."""
    norm = os.path.realpath(path)
    for top in REPOSITORIES:
        root = _package_dir(top)
        if root and norm.startswith(os.path.join(os.path.realpath(root), top) + os.sep):
            return os.path.relpath(norm, os.path.realpath(root)).replace(os.sep, "/")
    return None


def _unwrap(obj):
    if isinstance(obj, property):
        obj = obj.fget
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    return inspect.unwrap(obj) if callable(obj) else obj


def locate(target, anchor: str | None = None, occurrence: int = 1) -> tuple[str, int | None]:
    """(relpath, line) of an object's definition, or of the line holding `anchor` in a file
    (its first occurrence, or the `occurrence`-th)."""
    if isinstance(target, str):
        relpath = target.strip("/")
        if anchor is None:
            return relpath, None
        path = installed_file(relpath)
        if path is None:
            raise FileNotFoundError(f"{relpath} is not in the installed package, so {anchor!r} cannot be found "
                                    "in it: link to the file without an anchor, or to a file the wheel ships")
        found = [number for number, text in enumerate(file_lines(path), 1) if anchor in text]
        if len(found) < occurrence:
            held = f"only {len(found)} times" if found else "not"
            raise LookupError(f"{anchor!r} is {held} in the installed {relpath}, not {occurrence} times: "
                              "the source has changed, so the chapter's anchor needs updating")
        return relpath, found[occurrence - 1]
    obj = _unwrap(target)
    try:
        path = inspect.getsourcefile(obj)
        line = inspect.getsourcelines(obj)[1] if not inspect.ismodule(obj) else None
    except (TypeError, OSError) as error:
        raise TypeError(f"cannot find the Python source of {target!r} ({error}); "
                        "for C functions link to a file and an anchor instead") from None
    relpath = relpath_of_file(path) if path else None
    if relpath is None:
        raise LookupError(f"{target!r} is defined in {path}, outside the packages with known repositories "
                          f"({', '.join(REPOSITORIES)})")
    return relpath, line


class Link:
    """A link to source at the running commit; shows as Markdown/HTML in Jupyter, as text elsewhere."""

    def __init__(self, relpath: str, line: int | None, text: str | None = None, anchor: str | None = None):
        self.relpath = relpath
        self.line = line
        self.anchor = anchor  # the text the line holds, so a checker can tell when the source moved
        self.url = url_of(relpath, line, load=True)
        self.text = text or (f"{relpath}:{line}" if line else relpath)

    def __str__(self):
        if not self.url:
            return self.text
        text = re.sub(r"([\\`*_\[\]<>])", r"\\\1", self.text)  # Markdown would read __init__ as bold
        if self.anchor:
            title = self.anchor.replace("\\", "\\\\").replace('"', '\\"')
            return f'[{text}]({self.url} "{title}")'
        return f"[{text}]({self.url})"

    def __repr__(self):
        return f"Link({self.text!r} -> {self.url})"

    def _repr_markdown_(self):
        return str(self)

    def _repr_html_(self):
        import html
        text = html.escape(self.text)
        if not self.url:
            return f"<code>{text}</code>"
        anchor = f' data-anchor="{html.escape(self.anchor)}"' if self.anchor else ""
        return f'<a href="{html.escape(self.url)}"{anchor}><code>{text}</code></a>'


def link(target, anchor: str | None = None, text: str | None = None, occurrence: int = 1) -> Link:
    """``tracer.link(torch.nn.Module.state_dict)`` or ``tracer.link("torch/__init__.py", "from torch._C import *")``.

    `occurrence` picks a later line holding the same anchor (2: the second).
    """
    relpath, line = locate(target, anchor, occurrence)
    if text is None and not isinstance(target, str):
        text = getattr(_unwrap(target), "__qualname__", None)
        text = f"{text} ({relpath}:{line})" if text else None
    return Link(relpath, line, text, anchor if line else None)


_LANGUAGES = {".py": "python", ".h": "cpp", ".hpp": "cpp", ".cpp": "cpp", ".c": "c", ".cu": "cpp", ".yaml": "yaml"}


class Excerpt:
    """Lines of installed source with a pinned link above them."""

    def __init__(self, relpath: str, start: int, lines: list[str]):
        self.link = Link(relpath, start)
        self.start = start
        self.lines = [line.rstrip("\n") for line in lines]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def __str__(self):
        width = len(str(self.start + len(self.lines)))
        body = "\n".join(f"{self.start + i:>{width}}  {line}" for i, line in enumerate(self.lines))
        return f"{self.link.relpath}:{self.start}  {self.link.url or ''}\n{body}"

    __repr__ = __str__

    def _repr_markdown_(self):
        language = _LANGUAGES.get(os.path.splitext(self.link.relpath)[1], "")
        return f"{self.link}\n\n```{language}\n{self.text}\n```\n"


def read(target, anchor: str | None = None, lines: int | None = None, occurrence: int = 1) -> Excerpt:
    """The installed source of an object (its whole def/class), or `lines` lines from an anchor."""
    relpath, line = locate(target, anchor, occurrence)
    path = installed_file(relpath)
    if path is None or line is None:
        raise LookupError(f"no installed source lines for {relpath}: give an object or a file and an anchor")
    if lines is None:
        block = block_at(path, line)
    else:
        block = list(file_lines(path)[line - 1:line - 1 + lines])
    return Excerpt(relpath, line, block)
