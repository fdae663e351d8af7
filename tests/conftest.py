import importlib
import sys
import textwrap
from collections import Counter

import pytest

from tracer.record import monitoring as monitoring_backend
from tracer.record import setprofile as setprofile_backend

SAMPLE = '''
import asyncio
import math


class Shape:
    def __init__(self, n):
        self.n = n

    def area(self):
        return helper(self.n) * 2

    def __repr__(self):
        raise AssertionError("the tracer must never call repr on traced values")


def helper(x):
    return math.sqrt(x) + x


def outer(n):
    total = 0
    for i in range(n):
        total += helper(i)
    return total


def gen(n):
    for i in range(n):
        yield helper(i)


def boom():
    helper(1)
    raise ValueError("boom")


def catches():
    try:
        boom()
    except ValueError:
        return "caught"


def recurse(n):
    return 0 if n == 0 else 1 + recurse(n - 1)


def via_other(n):
    from other import call_back
    return call_back(n)


def echo(*args, **kwargs):
    return len(args) + len(kwargs)


class Counts(dict):
    """A C type's subclass in the package: its C methods (get, setdefault) belong to it."""


def tally(keys):
    counts = Counts()
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    return counts.setdefault("total", len(keys))


async def tick(n):
    for i in range(n):
        await asyncio.sleep(0)
        helper(i)
    return n
'''

OTHER = '''
def call_back(n):
    import sample
    return sample.helper(n) + 1
'''


@pytest.fixture()
def sample(tmp_path, monkeypatch):
    """A small package, `sample`, to trace without torch; `other` is a second one, left out of the include set."""
    (tmp_path / "sample").mkdir()
    (tmp_path / "sample" / "__init__.py").write_text(textwrap.dedent(SAMPLE))
    (tmp_path / "other.py").write_text(textwrap.dedent(OTHER))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("sample", "other"):
        sys.modules.pop(name, None)
    module = importlib.import_module("sample")
    yield module
    for name in ("sample", "other"):
        sys.modules.pop(name, None)


def has_torch():
    return importlib.util.find_spec("torch") is not None


SKIPPED_CLAIMS = []  # (chapter, cell, claim, reason) of each claim a chapter test saw skipped; test_chapters files them


def pytest_terminal_summary(terminalreporter):
    """One line for the chapters' skipped claims (the CUDA ones on a CPU machine), not a warning each."""
    if not SKIPPED_CLAIMS:
        return
    reasons = Counter(reason for *_, reason in SKIPPED_CLAIMS)
    chapters = len({chapter for chapter, *_ in SKIPPED_CLAIMS})
    why = "; ".join(f"{n} {reason}" for reason, n in reasons.most_common())
    terminalreporter.write_line(f"{len(SKIPPED_CLAIMS)} chapter claims skipped in {chapters} chapter"
                                f"{'s' if chapters > 1 else ''} ({why}); python -m tracer book build lists each")


# The front matter every chapter file starts with (jupytext's MyST format), for tests that write chapters.
FRONT_MATTER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""


# Each backend's callbacks: in C where pip built them (CPython 3.10/3.11 setprofile, 3.12/3.13
# sys.monitoring), and in Python everywhere; the tests that take the `backend` fixture run each that is here.
C_MODULES = {"setprofile": setprofile_backend, "sys.monitoring": monitoring_backend}
SETPROFILE_CALLBACKS = (["C"] if setprofile_backend._fastprofile is not None else []) + ["Python"]
MONITORING_CALLBACKS = (["C"] if monitoring_backend._fastmonitor is not None else []) + ["Python"]
BACKENDS = [pytest.param(("setprofile", callback), id=f"setprofile-{callback}") for callback in SETPROFILE_CALLBACKS]
if sys.version_info >= (3, 12):
    BACKENDS += [pytest.param(("sys.monitoring", callback), id=f"sys.monitoring-{callback}")
                 for callback in MONITORING_CALLBACKS]


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    """The backend's name, with its C or its Python callbacks chosen for the test."""
    name, callback = request.param
    monkeypatch.setattr(C_MODULES[name], "USE_C", callback == "C")
    return name
