"""Views: pure Trace -> Trace functions. The torch-free ones run on every Python; module_level on a real resnet18."""

import importlib.util

import pytest

import tracer
from tracer import views

from conftest import has_torch


def snapshot(trace):
    return [(c.name, c.depth, c.kind, dict(c.args), c.resumed, len(c.children)) for c in trace.root.walk()]


def nested_generators(sample):
    # the sample's `gen` run to its end from untraced code: sibling calls, all but the first resumed
    with tracer.trace(include=("sample",)) as t:
        values = list(sample.gen(4))
    return t, values


def test_fold_resumptions_makes_one_node_per_generator_and_keeps_what_it_called(sample):
    t, _ = nested_generators(sample)
    before = snapshot(t)
    gens = t.find("gen")
    # the first call, a resumption per value, and the one that ends it
    assert [g.resumed for g in gens] == [False, True, True, True, True]
    folded = views.fold_resumptions(t)
    [gen] = folded.find("gen")
    assert gen.note == "4 resumptions folded in"
    # every helper call the four runs made now hangs under the one node, in call order
    assert [c.name for c in gen.children] == ["helper"] * 4
    assert [c.args for c in gen.children] == [c.args for g in gens for c in g.children]
    assert gen.duration_ns == sum(g.duration_ns for g in gens)
    assert gen.origin is gens[0]
    assert "4 generator resumptions folded" in " ".join(folded.meta["notes"])
    assert "(4 resumptions folded in)" in folded.to_text()
    assert snapshot(t) == before, "a view never changes the trace it reads"


def test_hide_plumbing_lifts_children_and_counts_what_it_hid(sample):
    with tracer.trace(include=("sample",)) as t:
        sample.outer(3)
        sample.Shape(4).area()
    before = snapshot(t)
    hidden = views.hide_plumbing(t, patterns=("outer", "Shape.__init__"))
    names = [c.name for c in hidden.calls]
    assert "outer" not in names and "Shape.__init__" not in names
    # outer's three helper calls are one level up now, under the block
    assert [c.name for c in hidden.root.children][:3] == ["helper"] * 3
    assert all(c.depth == 1 for c in hidden.root.children[:3])
    assert len(hidden) == len(t) - 2
    assert "plumbing hidden: 2 calls (outer x1, Shape.__init__ x1)" in hidden.meta["notes"]
    assert snapshot(t) == before


def test_views_compose_and_keep_the_queries(sample):
    t, _ = nested_generators(sample)
    view = views.hide_plumbing(views.fold_resumptions(t), patterns=("helper",))
    assert view.meta["views"] == ["fold_resumptions", "hide_plumbing"]
    assert view.count("gen") == 1 and view.count("helper") == 0
    assert tracer.load(view.to_json()).count("gen") == 1


def test_module_level_needs_no_torch_to_import():
    assert callable(views.module_level)


# -- module_level, on real torch modules -------------------------------------------------------

torch_only = pytest.mark.skipif(not has_torch(), reason="module_level is tested on real torch modules")
needs_torchvision = pytest.mark.skipif(importlib.util.find_spec("torchvision") is None,
                                       reason="torchvision is not installed")


@pytest.fixture(scope="module")
def resnet_trace():
    import torch
    import torchvision
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    with torch.no_grad(), tracer.trace(layers=("python", "aten")) as t:
        model(torch.randn(1, 3, 64, 64))
    return model, t


@pytest.mark.torch
@torch_only
@needs_torchvision
def test_module_level_resnet18_names_every_module_by_its_path(resnet_trace):
    model, t = resnet_trace
    view = views.module_level(t)
    nodes = [c for c in view.calls]
    assert all(c.kind == "module" for c in nodes)
    # one node per module call: every submodule's forward ran once, but ReLU is called twice per block
    called = [name for name, module in model.named_modules() if not isinstance(module, torch_relu())]
    named = {c.name.split("(", 1)[1].rstrip(")") if "(" in c.name else "" for c in nodes}
    assert set(called) - {""} <= named
    classes = {name: type(module).__name__ for name, module in model.named_modules()}
    for node in nodes:
        path = node.name.split("(", 1)[1].rstrip(")") if "(" in node.name else ""
        assert node.name.startswith(classes[path]), node.name
    assert view.count("ReLU(layer1.0.relu)") == 2
    lines = view.to_text().splitlines()
    assert 60 <= len(lines) <= 90, len(lines)
    assert max(len(line) for line in lines) < 160
    fc = view.find("Linear(fc)")[0]
    assert fc.args == {"input": "f32[1, 512] cpu"}
    assert fc.relpath == "torch/nn/modules/linear.py"
    assert fc.origin.name == "Module._wrapped_call_impl"
    # the full tree is one step away
    assert t.subtree(fc.origin).count("aten::addmm") == 1


def torch_relu():
    import torch
    return torch.nn.ReLU


@pytest.mark.torch
@torch_only
@needs_torchvision
def test_module_level_inside_keeps_operators_under_their_module(resnet_trace):
    _, t = resnet_trace
    view = views.hide_plumbing(views.module_level(t, inside=True))
    block = view.find("BasicBlock(layer1.0)")[0]
    children = [c.name for c in block.children]
    assert "aten::add_.Tensor" in children, children  # the residual addition, made by BasicBlock.forward itself
    assert "Conv2d(layer1.0.conv1)" in children
    fc = view.find("Linear(fc)")[0]
    below = [c.name for c in fc.walk()][1:]
    assert "aten::addmm" in below and "linear" not in [c.name for c in view.find("Module.__getattr__")]
    assert view.count("Module.__getattr__") == 0
    assert any(note.startswith("plumbing hidden:") for note in view.meta["notes"])
    assert len(view) < len(t)
    # the other order names the modules the same way: names come from the recorded look-ups
    other = views.module_level(views.hide_plumbing(t), inside=True)
    assert [c.name for c in other.calls if c.kind == "module"] == [c.name for c in view.calls if c.kind == "module"]


@pytest.mark.torch
@torch_only
def test_module_level_names_container_children_by_position_and_user_modules_by_attribute():
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
            self.heads = nn.ModuleList([nn.Linear(4, 2), nn.Linear(4, 1)])

        def forward(self, x):
            x = self.body(x)
            return [head(x) for head in self.heads]

    with tracer.trace() as t:
        Net()(torch.randn(2, 3))
    names = [c.name for c in views.module_level(t).calls]
    assert names == ["Net", "Sequential(body)", "Linear(body.0)", "ReLU(body.1)", "Linear(heads.0)",
                     "Linear(heads.1)"], names


def test_hide_imports_counts_the_module_bodies_and_keeps_an_import_only_trace(sample, tmp_path, monkeypatch):
    (tmp_path / "sample" / "late.py").write_text("from sample import helper\nVALUE = helper(4)\n")
    with tracer.trace(include=("sample",)) as t:
        import sample.late  # noqa: F401  (its body runs under the block: a <module> call)
        sample.helper(1)
    view = views.hide_imports(t, hint="say how to keep them")
    assert [c.name for c in view.root.children] == ["helper"]
    assert view.meta["notes"][-1] == "2 calls made while importing 1 module are left out (say how to keep them)"
    assert t.count("<module>") == 1, "the trace it was given keeps its imports"
    with tracer.trace(include=("sample",)) as only_import:
        import importlib
        importlib.reload(sample.late)
    assert views.hide_imports(only_import) is only_import
