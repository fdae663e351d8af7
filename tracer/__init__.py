"""tracer: record the live call path through PyTorch, query it, show it.

    import tracer
    with tracer.trace() as t:
        y = model(x)
    print(t)
    t.expect_path("Module._wrapped_call_impl", "Module._call_impl", "Linear.forward")
"""

from .claims import ClaimError, claim, claim_equal, show_claims_in_ipython, skip
from .imports import ImportFailed, ImportTrace, trace_import
from .model import Call, Trace, trace
from .query import Diff, diff
from .record import release_memory, spare_memory
from .render.html import step_through
from .render.json import load
from .source import link, read
from . import views

__version__ = "0.1.0"

show_claims_in_ipython()  # inside a Jupyter kernel, each cell shows the claims it made

__all__ = ["Call", "ClaimError", "Diff", "ImportFailed", "ImportTrace", "Trace", "claim", "claim_equal", "diff", "link", "load",
           "read", "release_memory", "skip", "spare_memory", "step_through", "trace", "trace_import", "views"]


def load_ipython_extension(ipython):
    """``%load_ext tracer``: registers the ``%%trace`` cell magic."""
    from .magic import load
    load(ipython)
