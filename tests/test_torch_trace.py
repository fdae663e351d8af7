"""The tracer on real PyTorch: call paths, pinned links, the builtin and ATen layers."""

import contextlib
import json
import inspect
import re

import pytest

torch = pytest.importorskip("torch")

import tracer  # noqa: E402
from tracer import source  # noqa: E402

COMMIT = torch.version.git_version


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_linear_call_path_with_pinned_source():
    layer = torch.nn.Linear(3, 4)
    x = torch.randn(2, 3)
    with tracer.trace() as t:
        layer(x)
    wrapped, impl, forward = t.expect_path("Module._wrapped_call_impl", "Module._call_impl", "Linear.forward")
    assert forward.relpath == "torch/nn/modules/linear.py"
    assert forward.line == inspect.getsourcelines(torch.nn.Linear.forward)[1]
    assert forward.url == f"https://github.com/pytorch/pytorch/blob/{COMMIT}/torch/nn/modules/linear.py#L{forward.line}"
    assert forward.args == {"self": "Linear", "input": "f32[2, 3] cpu"}
    assert forward.source().lstrip().startswith("def forward(self, input: Tensor)")
    assert wrapped.args["self"] == "Linear"


def test_tensor_summaries():
    from tracer.record.summary import summarise
    assert summarise(torch.zeros(2, 3)) == "f32[2, 3] cpu"
    assert summarise(torch.zeros(4, dtype=torch.int64, requires_grad=False)) == "i64[4] cpu"
    assert summarise(torch.zeros((), dtype=torch.bfloat16)) == "bf16[] cpu"
    assert summarise(torch.nn.Parameter(torch.zeros(2))) == "Parameter f32[2] cpu requires_grad"
    assert summarise(torch.nn.ReLU()) == "ReLU"
    assert summarise(torch.float16) == "torch.float16"
    assert summarise(torch.Size([2, 3])) == "Size[2, 3]"


def test_builtin_layer_shows_torch_c_functions():
    layer = torch.nn.Linear(3, 4)
    with tracer.trace(layers=("python", "builtin")) as t:
        layer(torch.randn(2, 3))
        torch.nn.Parameter(torch.zeros(2))
    linear = t.expect_path("Linear.forward", "linear")[-1]
    assert linear.kind == "builtin" and linear.module == "torch._C._nn"
    make = t.expect_path("Parameter.__new__", "*._make_subclass")[-1]
    assert make.kind == "builtin"
    assert make.qualname == "torch._C.TensorBase._make_subclass"
    builtin_names = {c.qualname for c in t.calls if c.kind == "builtin"}
    assert not any(name.startswith(("builtins.", "str.")) for name in builtin_names)


def test_aten_layer_nests_operators_and_links_native_functions():
    layer = torch.nn.Linear(3, 4)
    with tracer.trace(layers=("python", "builtin", "aten")) as t:
        layer(torch.randn(2, 3))
    addmm = t.expect_path("Linear.forward", "linear", "aten::addmm")[-1]
    assert addmm.kind == "aten"
    assert addmm.args["mat1"] == "f32[2, 3] cpu"
    assert addmm.url.startswith(f"https://github.com/pytorch/pytorch/blob/{COMMIT}/aten/src/ATen/native/native_functions.yaml#L")
    assert addmm.source().startswith("- func: addmm(")
    # the dispatcher's own Python (dispatch-rule lookup) is not shown as the program's calls
    assert t.count("find_torch_dispatch_rule") == 0
    assert t.count("OpOverload.__call__") == 0
    assert t.meta["hidden_below_depth"] == 0  # dropped plumbing is not counted as hidden by depth


def aten_ops(model, x, context):
    with context:
        with tracer.trace(layers=("aten",)) as t:
            model(x)
    return [c.name for c in t.calls]


def test_what_a_dispatch_mode_sees_under_each_grad_mode():
    """The claims in tracer/record/aten.py's docstring."""
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU())
    x = torch.randn(2, 3)
    grad = aten_ops(model, x, contextlib.nullcontext())
    no_grad = aten_ops(model, x, torch.no_grad())
    inference = aten_ops(model, x, torch.inference_mode())
    assert {"aten::t", "aten::addmm", "aten::native_batch_norm"} <= set(grad)
    assert "aten::detach" in grad and "aten::detach" not in no_grad
    assert [op for op in grad if op != "aten::detach"] == no_grad
    assert "aten::linear" in inference and "aten::batch_norm" in inference
    assert "aten::addmm" not in inference


def test_torchvision_calls_link_to_the_vision_repository():
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.resnet18(weights=None).eval()
    with torch.no_grad(), tracer.trace(depth=3) as t:
        model(torch.randn(1, 3, 64, 64))
    forward = t.expect_path("Module._call_impl", "ResNet.forward")[-1]
    assert forward.relpath == "torchvision/models/resnet.py"
    assert forward.url.startswith(f"https://github.com/pytorch/vision/blob/{torchvision.version.git_version}/torchvision/models/resnet.py#L")
    assert t.meta["hidden_below_depth"] > 0


def test_dataloader_epoch_keeps_depth_through_generators():
    from torch.utils.data import DataLoader, TensorDataset
    data = TensorDataset(torch.arange(64.0).reshape(32, 2))
    loader = DataLoader(data, batch_size=8, shuffle=True)
    with tracer.trace() as t:
        batches = [b for b in loader]
        torch.zeros(1)
    assert len(batches) == 4
    nexts = t.find("_BaseDataLoaderIter.__next__")
    assert len(nexts) == 5  # four batches and the StopIteration
    assert all(c.depth == 1 for c in nexts)
    samplers = t.find("*Sampler.__iter__")
    assert samplers and all(c.depth > 1 for c in samplers)
    assert all(c.parent.name != "<traced block>" or c.depth == 1 for c in t.calls)
    assert max(c.depth for c in t.calls) < 20


def test_error_inside_torch_propagates_and_marks_the_calls():
    layer = torch.nn.Linear(3, 4)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        with tracer.trace(layers=("python", "builtin")) as t:
            layer(torch.randn(2, 5))
    chain = t.expect_path("Module._wrapped_call_impl", "Module._call_impl", "Linear.forward", "linear")
    assert [c.error for c in chain] == ["RuntimeError"] * 4


def test_links_are_pinned_to_the_running_commit():
    link = tracer.link(torch.nn.Module.state_dict)
    assert link.relpath == "torch/nn/modules/module.py"
    path = source.installed_file(link.relpath)
    assert re.match(r"\s*(def state_dict|@)", source.file_lines(path)[link.line - 1])
    assert COMMIT in link.url and link.url.endswith(f"#L{link.line}")
    anchored = tracer.link("torch/__init__.py", "from torch._C import *")
    assert "from torch._C import *" in source.file_lines(source.installed_file("torch/__init__.py"))[anchored.line - 1]
    stub = tracer.link("torch/csrc/stub.c")
    assert stub.url == f"https://github.com/pytorch/pytorch/blob/{COMMIT}/torch/csrc/stub.c"
    header = tracer.link("torch/include/torch/csrc/api/include/torch/nn/module.h", "class TORCH_API Module")
    assert "/torch/csrc/api/include/torch/nn/module.h#L" in header.url
    with pytest.raises(LookupError, match="source has changed"):
        tracer.link("torch/__init__.py", "this text is not in torch")
    lines = [n for n, text in enumerate(source.file_lines(source.installed_file("torch/__init__.py")), 1)
             if "from torch._C import *" in text]
    assert tracer.link("torch/__init__.py", "from torch._C import *", occurrence=2).line == lines[1]
    with pytest.raises(LookupError, match=f"only {len(lines)} times"):
        tracer.link("torch/__init__.py", "from torch._C import *", occurrence=len(lines) + 1)
    with pytest.raises(FileNotFoundError, match="not in the installed package"):
        tracer.link("torch/csrc/Module.cpp", "initModule")
    excerpt = tracer.read(torch.nn.Module.zero_grad)
    assert excerpt.lines[0].lstrip().startswith("def zero_grad")


def test_aten_layer_stops_at_the_event_cap_and_the_code_runs_on():
    start = torch.randn(4)
    x = start
    with tracer.trace(layers=("aten",), max_events=10) as t:
        for _ in range(50):
            x = x + 1
    assert torch.allclose(x, start + 50)  # the operators past the cap ran
    assert t.truncated
    assert 0 < len(t) <= 10


def test_custom_operators_keep_their_namespace_and_no_aten_link():
    @torch.library.custom_op("tracertest::twice", mutates_args=())
    def twice(x: torch.Tensor) -> torch.Tensor:
        return x * 2

    with tracer.trace(layers=("aten",)) as t:
        torch.ops.tracertest.twice(torch.ones(2))
    op = t.find("tracertest::twice")[0]
    assert op.module == "tracertest" and op.url is None


def test_summaries_never_run_a_subclass_torch_function():
    seen = []

    class Logged(torch.Tensor):
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            seen.append(getattr(func, "__name__", str(func)))
            return super().__torch_function__(func, types, args, kwargs or {})

    x = torch.ones(2, 3).as_subclass(Logged)
    seen.clear()
    from tracer.record.summary import summarise
    assert summarise(x) == "Logged f32[2, 3] cpu"
    assert seen == []


def test_a_loaded_trace_keeps_its_pinned_links(tmp_path):
    layer = torch.nn.Linear(2, 2)
    with tracer.trace() as t:
        layer(torch.randn(1, 2))
    path = tmp_path / "t.json"
    t.to_json(path)
    data = json.loads(path.read_text())
    forward = next(row for row in data["calls"] if row["name"] == "Linear.forward")
    forward["url"] = forward["url"].replace(COMMIT, "0" * 40)  # as if saved with another torch
    loaded = tracer.load(data)
    assert loaded.find("Linear.forward")[0].url.startswith("https://github.com/pytorch/pytorch/blob/" + "0" * 40)


def test_a_compiled_call_under_the_aten_layer_costs_what_it_costs_untraced_plus_the_recording():
    """Dynamo must not trace the recorder's own __torch_dispatch__: it graph-broke there on the growing
    events list and compiled again at every call, seconds per call after a few hundred operators."""
    import time

    @torch.compile(backend="eager", dynamic=False)
    def waves(x):
        return torch.sin(x).cos() + 1

    x = torch.randn(8, 8)
    waves(x)  # compiled here, outside the block
    untraced = []
    for _ in range(5):
        start = time.perf_counter()
        waves(x)
        untraced.append(time.perf_counter() - start)
    with tracer.trace(layers=("aten",)) as t:
        for _ in range(300):
            x + x
        start = time.perf_counter()
        y = waves(x)
        traced = time.perf_counter() - start
    assert torch.equal(y, torch.sin(x).cos() + 1)
    assert {"aten::sin", "aten::cos"} <= {c.name for c in t.calls}
    assert traced < 10 * sorted(untraced)[2] + 0.5, f"traced {traced:.3f} s against {sorted(untraced)[2]:.4f} s untraced"
