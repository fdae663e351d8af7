"""What must not change while summaries get faster: each call's summary says what the argument was when
the call was made, no argument is kept alive past its call, and the C and Python callbacks agree.

Run on every backend here, with its C callbacks and its Python ones."""

import gc
import importlib.util
import sys
import weakref

import pytest

import tracer
from conftest import C_MODULES, MONITORING_CALLBACKS, SETPROFILE_CALLBACKS

_BUILT = {"setprofile": "C" in SETPROFILE_CALLBACKS, "sys.monitoring": "C" in MONITORING_CALLBACKS}

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="these arguments are tensors")


class Thing:
    """A user object: summarised by its type's name, and never kept."""


def relu_inputs(t):
    return [c.args["input"] for c in t.find("relu") if c.module == "torch.nn.functional"]


@needs_torch
def test_each_call_summarises_the_tensor_as_it_was_then(backend):
    import torch
    import torch.nn.functional as F

    x = torch.zeros(2, 3)
    ident = id(x)
    with tracer.trace(backend=backend) as t:
        F.relu(x)
        x.resize_(4, 5)
        F.relu(x)
        x.transpose_(0, 1)
        F.relu(x)
        x.unsqueeze_(1)
        F.relu(x)
        x.data = x.data.to(torch.float64)  # the same tensor object, another dtype
        F.relu(x)
        torch.utils.swap_tensors(x, x.to("meta"))  # and another device (as Module.to can do)
        F.relu(x)
        x.requires_grad_()
        F.relu(x)
        x.requires_grad_(False)
        F.relu(x)
    assert id(x) == ident
    assert relu_inputs(t) == ["f32[2, 3] cpu", "f32[4, 5] cpu", "f32[5, 4] cpu", "f32[5, 1, 4] cpu",
                              "f64[5, 1, 4] cpu", "f64[5, 1, 4] meta", "f64[5, 1, 4] meta requires_grad",
                              "f64[5, 1, 4] meta"]


@needs_torch
def test_operator_summaries_are_the_state_at_the_call_too():
    import torch

    x = torch.zeros(2, 3)
    with tracer.trace(layers=("aten",)) as t:
        torch.relu(x)
        x.resize_(3, 1)
        torch.relu(x)
        x.requires_grad_()
        torch.relu(x)
    relus = [c.args["self"] for c in t.find("aten::relu")]
    assert relus == ["f32[2, 3] cpu", "f32[3, 1] cpu", "f32[3, 1] cpu requires_grad"]


def test_no_argument_outlives_its_call(sample, backend):
    with tracer.trace(include=("sample",), backend=backend) as t:
        thing = Thing()
        gone = weakref.ref(thing)
        sample.echo(thing, key=thing)
        del thing
        alive_in_block = gone() is not None  # no collection: a reference kept anywhere would show here
    assert not alive_in_block
    assert t.find("echo")[0].args == {"args": "tuple[1]", "kwargs": "dict[1]"}
    assert gone() is None


@needs_torch
def test_no_tensor_outlives_its_call(backend):
    import torch
    import torch.nn.functional as F

    with tracer.trace(backend=backend) as t:
        x = torch.ones(3, 2)
        gone = weakref.ref(x)
        F.relu(x)
        del x
        alive_in_block = gone() is not None
    assert not alive_in_block
    assert relu_inputs(t) == ["f32[3, 2] cpu"]
    gc.collect()
    assert gone() is None


@needs_torch
@pytest.mark.parametrize("name", [n for n in C_MODULES if _BUILT[n] and (n == "setprofile" or sys.version_info >= (3, 12))])
def test_c_and_python_callbacks_summarise_tensors_alike(monkeypatch, name):
    import torch

    layer = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU())
    x = torch.randn(2, 3, dtype=torch.float64).float()
    p = torch.nn.Parameter(torch.zeros(4))
    texts = []
    for use_c in (True, False):
        monkeypatch.setattr(C_MODULES[name], "USE_C", use_c)
        with tracer.trace(backend=name) as t:
            layer(x)
            torch.nn.functional.relu(p)
            torch.nn.functional.relu(x.t())
            torch.nn.functional.relu(x.to(torch.bfloat16))
        texts.append([(c.name, c.args) for c in t.calls])
    assert texts[0] == texts[1]
    assert [c[1]["input"] for c in texts[0] if c[0] == "relu"][-3:] == [
        "Parameter f32[4] cpu requires_grad", "f32[3, 2] cpu", "bf16[2, 3] cpu"]


SHAPES = '''
def cell_arg(a, b=2):
    def inner():
        return a + b  # a and b are cells of cell_arg
    return inner()


def every_kind(p, /, q, *args, r, s=4, **kwargs):
    return p


def late_local(x):
    y = x + 1  # a local bound after the call starts: not an argument
    return y


def gen(n):
    for i in range(n):
        yield i


class K:
    def method(self, v):
        return (lambda w: w)(v)
'''


@pytest.mark.parametrize("name", [n for n in C_MODULES if _BUILT[n] and (n == "setprofile" or sys.version_info >= (3, 12))])
def test_c_and_python_callbacks_read_every_kind_of_argument_alike(tmp_path, monkeypatch, name):
    (tmp_path / "argkinds.py").write_text(SHAPES)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("argkinds", None)
    import argkinds

    def run():
        argkinds.cell_arg(1)
        argkinds.cell_arg("x", b="y")
        argkinds.every_kind(1, 2, 3, 4, r=5, t=6)
        argkinds.every_kind(1, q=2, r=[1])
        argkinds.late_local(3)
        list(argkinds.gen(2))
        argkinds.K().method(None)

    seen = []
    for use_c in (True, False):
        monkeypatch.setattr(C_MODULES[name], "USE_C", use_c)
        with tracer.trace(include=("argkinds",), backend=name) as t:
            run()
        seen.append([(c.name, c.args) for c in t.calls])
    sys.modules.pop("argkinds", None)
    assert seen[0] == seen[1]
    args = dict(seen[0][:1])
    assert args["cell_arg"] == {"a": "1", "b": "2"}
    assert ("every_kind", {"p": "1", "q": "2", "args": "tuple[2]", "r": "5", "s": "4", "kwargs": "dict[1]"}) in seen[0]
    assert ("late_local", {"x": "3"}) in seen[0]
    assert ("cell_arg", {"a": "'x'", "b": "'y'"}) in seen[0]
