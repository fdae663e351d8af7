"""The ATen layer: operators as a TorchDispatchMode sees them, nested under the call that made them.

A dispatch mode sits at the Python dispatch key, after autograd: it sees the operators that reach
the backend kernels (composite ops already decomposed, e.g. ``linear`` as ``t`` + ``addmm``), the same
under ``torch.no_grad()``; under ``torch.inference_mode()`` some view bookkeeping is skipped and a few
ops differ. Imported only when the aten layer is asked for.
"""

from __future__ import annotations

from .events import ATEN_CALL, ATEN_RETURN
from .summary import summarise


def make_mode(rec):
    from torch.utils._python_dispatch import TorchDispatchMode

    rec.machinery.update(_machinery_codes())

    append = rec.events.append
    now = rec.clock
    want_args = rec.args

    class AtenRecorder(TorchDispatchMode):
        """Records each operator call and its return; the operator itself runs unchanged."""

        @classmethod
        def _should_skip_dynamo(cls):
            return False  # no torch._disable_dynamo wrapper: it would add its frames to every operator

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            append((ATEN_CALL, func, now(), _summarise_op(func, args, kwargs) if want_args else None))
            try:
                out = func(*args, **kwargs)
            except BaseException as error:
                append((ATEN_RETURN, func, now(), type(error).__name__))
                raise
            append((ATEN_RETURN, func, now(), None))
            return out

    return AtenRecorder()


def _machinery_codes():
    """Python that the dispatcher runs for any dispatch mode before calling it: not the program's calls."""
    codes = set()
    try:
        from torch._library.simple_registry import find_torch_dispatch_rule
        codes.add(find_torch_dispatch_rule.__code__)
    except ImportError:  # older torch: no such lookup
        pass
    return codes


def _summarise_op(func, args, kwargs):
    names = [a.name for a in func._schema.arguments]
    out = {}
    for i, value in enumerate(args):
        out[names[i] if i < len(names) else f"arg{i}"] = summarise(value)
    for name, value in kwargs.items():
        out[name] = summarise(value)
    return out
