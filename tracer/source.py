"""From a file to its path in its repository, to a URL pinned to the running commit; source lines.

Torch is never imported here: a commit is read from ``torch.version`` only when torch is already
loaded (it is, whenever torch code was traced).
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import os
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


def commit_of(top: str) -> str | None:
    """The git commit the installed package was built from, if it is loaded and says so."""
    entry = REPOSITORIES.get(top)
    if entry is None or entry[1].partition(".")[0] not in sys.modules:
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


def url_of(relpath: str | None, line: int | None = None) -> str | None:
    """``https://github.com/<repo>/blob/<commit>/<path>#L<line>``; None where no commit is known."""
    if not relpath:
        return None
    top = relpath.partition("/")[0]
    entry = REPOSITORIES.get(top)
    commit = commit_of(top)
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
