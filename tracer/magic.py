"""``%%trace``: trace a notebook cell and show its call tree. Loaded by ``%load_ext tracer``.

    %%trace --layers python,aten --depth 4
    y = model(x)

The options are tracer.trace()'s: --layers, --include, --depth, --no-args, --max-events, --backend, --workers.

The cell runs in the user namespace; the Trace is stored there (``_trace``, or ``--name VAR``) and
shown as HTML (``--text``: as text). If the cell raises, the trace is shown and stored first, then
the exception goes on. The cell's last expression is not displayed: the trace is.
"""

from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from .model import trace


@magics_class
class TraceMagics(Magics):
    @magic_arguments()
    @argument("--layers", default="python", help="comma-separated: python, builtin, aten (default: python)")
    @argument("--include", default="torch,torchvision",
              help="comma-separated packages to keep (default: torch,torchvision)")
    @argument("--depth", type=int, default=None, help="keep calls at most this many levels deep")
    @argument("--no-args", action="store_true", help="do not summarise arguments")
    @argument("--max-events", type=int, default=None,
              help="stop recording after this many events; the cell runs on (default: tracer.trace()'s)")
    @argument("--backend", default="auto", help="auto, setprofile or sys.monitoring (Python 3.12+) (default: auto)")
    @argument("--workers", action="store_true", help="record inside DataLoader worker processes too")
    @argument("--text", action="store_true", help="print the tree as text instead of showing HTML")
    @argument("--name", default="_trace", help="the variable that receives the Trace (default: _trace)")
    @cell_magic
    def trace(self, line, cell):
        """Trace the calls this cell makes into PyTorch (or the --include packages) and show them."""
        opts = parse_argstring(self.trace, line)
        if not opts.name.isidentifier():
            raise UsageError(f"%%trace --name: {opts.name!r} is not a Python variable name")
        try:
            recorder = trace(layers=opts.layers, include=opts.include, depth=opts.depth, args=not opts.no_args,
                             max_events=opts.max_events, backend=opts.backend, workers=opts.workers)
        except (TypeError, ValueError) as error:
            raise UsageError(f"%%trace: {error}") from None
        code = self.shell.transform_cell(cell)
        compiled = compile(code, self.shell.compile.cache(code), "exec")  # cached: tracebacks show the cell
        failure = None
        try:
            with recorder:
                self.shell.ex(compiled)
        except BaseException as error:  # shown after the trace, which is the point of tracing a failing cell
            failure = error
        if not recorder.meta:  # the recording could not start: there is no trace to show
            raise failure
        self.shell.user_ns[opts.name] = recorder
        if opts.text:
            print(recorder)
        else:
            display(recorder)
        if failure is not None:
            raise failure


def load(ipython):
    """Register ``%%trace`` with an IPython shell."""
    ipython.register_magics(TraceMagics)
