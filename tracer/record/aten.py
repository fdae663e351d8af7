"""The ATen layer: operators as a TorchDispatchMode sees them, nested under the call that made them.

A dispatch mode sits at the Python dispatch key, below autograd, so what it sees depends on the grad mode
(tests/test_torch_trace.py checks each of these on a Linear + BatchNorm1d + ReLU):

- grad enabled: composite operators arrive decomposed by their CompositeImplicitAutograd kernels
  (``linear`` as ``aten::t`` + ``aten::addmm``, ``batch_norm`` as ``aten::native_batch_norm``), plus what
  autograd saves for backward (``aten::detach`` of relu's output);
- ``torch.no_grad()``: the same decomposed operators, without the autograd bookkeeping;
- ``torch.inference_mode()``: the autograd keys are skipped, so composites are not decomposed before the
  mode sees them: ``aten::linear``, ``aten::batch_norm``.

Imported only when the aten layer is asked for.
"""

from __future__ import annotations

import os
import sys

from .events import ATEN_CALL, ATEN_RETURN, TRUNCATED
from .summary import _by_type, _fast_by_type, summarise

try:  # the C callbacks' module summarises a tuple of values as summarise would, each without a Python call
    from ._fastprofile import summarise_values
except ImportError:
    try:
        from ._fastmonitor import summarise_values
    except ImportError:
        summarise_values = None
if os.environ.get("TRACER_PURE_PYTHON"):  # the Python callbacks, all the way
    summarise_values = None


def make_mode(rec):
    from torch.utils._python_dispatch import TorchDispatchMode

    rec.machinery.update(_machinery_codes())

    events = rec.events
    append = events.append
    now = rec.clock
    want_args = rec.args
    cap = rec.max_events
    truncated = []
    values = summarise_values  # positional arguments alone (the dispatcher's usual call): one C call, no Python

    class AtenRecorder(TorchDispatchMode):
        """Records each operator call and its return; the operator itself runs unchanged."""

        @classmethod
        def _should_skip_dynamo(cls):
            return False  # no torch._disable_dynamo wrapper: it would add its frames to every operator

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if len(events) >= cap:  # past the cap the operators run on, unrecorded
                if not truncated:
                    truncated.append(True)
                    append((TRUNCATED, func, now(), None))
                return func(*args, **kwargs)
            if not want_args:
                summaries = None
            elif not kwargs and values is not None and type(args) is tuple:
                summaries = values(args, summarise, _by_type, _fast_by_type)
            else:
                summaries = _summarise_op(func, args, kwargs)
            append((ATEN_CALL, func, now(), summaries))
            try:
                out = func(*args, **kwargs)
            except BaseException as error:
                append((ATEN_RETURN, func, now(), type(error).__name__))
                raise
            append((ATEN_RETURN, func, now(), None))
            return out

    _skip_dynamo(AtenRecorder.__torch_dispatch__.__code__)
    return AtenRecorder()


def _skip_dynamo(code):
    """Have Dynamo run the recorder's frame, and every frame it calls, as they are: never trace them. Traced,
    the frame graph-breaks on the growing event log and is compiled again at each compiled call (seconds
    per call after a few hundred operators). Done by code object, not with torch._disable_dynamo, whose
    wrapper would add its frames to every operator. Only where Dynamo is loaded (torch.compile loads it):
    importing it costs a second."""
    if "torch._dynamo.eval_frame" not in sys.modules:
        return
    try:
        from torch._dynamo.eval_frame import set_code_exec_strategy
        from torch._dynamo.types import FrameAction, FrameExecStrategy
    except ImportError:  # an older or newer torch without this switch: compiled calls cost more under the layer
        return
    set_code_exec_strategy(code, FrameExecStrategy(FrameAction.SKIP, FrameAction.SKIP))


def _machinery_codes():
    """Python that the dispatcher runs for any dispatch mode before calling it: not the program's calls."""
    codes = set()
    try:
        from torch._library.simple_registry import find_torch_dispatch_rule
        codes.add(id(find_torch_dispatch_rule.__code__))  # the function lives on: its code's id stays its own
    except ImportError:  # older torch: no such lookup
        pass
    return codes


def operator_argument_names(func, _names={}) -> tuple[str, ...]:
    """The parameter names of an operator's schema, worked out once per operator."""
    # By id: an OpOverload's __hash__ is Python, which the python layer would record inside every operator.
    # The entry holds the operator, so its id is not reused.
    entry = _names.get(id(func))
    if entry is None:
        entry = _names[id(func)] = (func, tuple(a.name for a in func._schema.arguments))
    return entry[1]


def _summarise_op(func, args, kwargs):
    """The summaries of an operator's arguments: a tuple in schema order when all are positional (the
    common case, and a third of a dict's memory), else a dict by name. Where the C module is built, the
    recorder calls summarise_values itself for positional arguments instead: the dispatcher never passes
    more of them than the schema names (Call.args names any past them arg<i>, as here)."""
    names = operator_argument_names(func)
    get = _by_type.get  # summarise() inlined, as in summarise_frame
    if not kwargs and len(args) <= len(names):
        return tuple([(get(type(value)) or summarise)(value) for value in args])
    out = {}
    for i, value in enumerate(args):
        out[names[i] if i < len(names) else f"arg{i}"] = summarise(value)
    for name, value in kwargs.items():
        out[name] = summarise(value)
    return out
