"""``%%trace``: trace a notebook cell and show its call tree. Loaded by ``%load_ext tracer``.

    %%trace --layers python,aten --depth 4
    y = model(x)

The options are tracer.trace()'s: --layers, --include, --depth, --no-args, --max-events, --backend, --workers.

The cell runs in the user namespace; the Trace is stored there (``_trace``, or ``--name VAR``) and
shown as HTML (``--text``: as text). If the cell raises, the trace is shown and stored first, then
the exception goes on, its traceback the cell's own. The cell's last expression is not displayed: the
trace is. ``%%trace --help`` prints the options.
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
        __tracebackhide__ = True  # IPython leaves this frame out of the traceback of the cell's own exception
        if {"-h", "--help"} & set(line.split()):
            usage = self.trace.parser.format_help().lstrip(":\n")  # IPython writes it as reST, after a "::"
            print("usage:\n" + usage.replace("%trace", "%%trace", 1).rstrip())
            return
        opts = parse_argstring(self.trace, line)
        if not opts.name.isidentifier():
            raise UsageError(f"%%trace --name: {opts.name!r} is not a Python variable name")
        try:
            recorder = trace(layers=opts.layers, include=opts.include, depth=opts.depth, args=not opts.no_args,
                             max_events=opts.max_events, backend=opts.backend, workers=opts.workers)
        except (TypeError, ValueError) as error:
            raise UsageError(f"%%trace: {error}") from None
        code = self.shell.transform_cell(cell)
        # cached under this cell's number, so a traceback shows the cell's lines as In[n]
        cell_file = self.shell.compile.cache(code, self.shell.execution_count)
        compiled = compile(code, cell_file, "exec")
        failure = None
        try:
            with recorder:
                self.shell.ex(compiled)
        except BaseException as error:  # shown after the trace, which is the point of tracing a failing cell
            failure = error.with_traceback(_from_frame_of(error.__traceback__, cell_file))
        if not recorder.meta:  # the recording could not start: there is no trace to show
            raise failure
        self.shell.user_ns[opts.name] = recorder
        if opts.text:
            print(recorder)
        else:
            display(recorder)
        if failure is not None:
            raise failure


def _from_frame_of(tb, filename):
    """The traceback from the first frame that runs `filename` on (the tracer's and IPython's own frames cut off)."""
    start = tb
    while start is not None and start.tb_frame.f_code.co_filename != filename:
        start = start.tb_next
    return start or tb


def load(ipython):
    """Register ``%%trace`` with an IPython shell."""
    ipython.register_magics(TraceMagics)
