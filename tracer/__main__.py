"""The command line: ``python -m tracer -c "CODE"``, ``python -m tracer script.py [args]``, ``python -m tracer book``."""

from __future__ import annotations

import argparse
import os
import runpy
import sys
import traceback

from . import views
from .model import trace

FORMATS = ("text", "json", "perfetto", "html")
BOOK_HELP = """The book:
  python -m tracer book [build] [NN ...] [--no-site]   run chapters headless, write notebooks/, the site, slides
  python -m tracer book check-sync                     notebooks/ built from the current chapters?
  python -m tracer book --help                         its options (it needs the book's packages:
                                                       pip install 'pytorch-traced[book]')"""


def program_name() -> str:
    """How the user ran it: ``python -m tracer``, or the name of the installed script (``pytorch-traced``)."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "python -m tracer" if name in ("", "-c", "__main__.py") or name.startswith("python") else name


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=program_name(), formatter_class=argparse.RawDescriptionHelpFormatter, epilog=BOOK_HELP,
        description="Run Python code and print the calls it made into PyTorch (or any package), as a tree "
                    "with source locations pinned to the installed version. What imports run (the bodies of "
                    "the modules imported) is left out and counted in one note, unless the code only imports; --imports "
                    "keeps it.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("-c", dest="code", metavar="CODE", help="code to run")
    source.add_argument("script", nargs="?", help="a Python file to run; the arguments after it are its own, "
                        "so put the tracer's options before it")
    p.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.add_argument("--layers", default="python", help="comma-separated: python, builtin, aten (default: python); "
                   "the aten layer imports torch before the code runs")
    p.add_argument("--include", default="torch,torchvision", help="comma-separated packages to keep (default: torch,torchvision)")
    p.add_argument("--depth", type=int, default=None, help="keep calls at most this many levels deep")
    p.add_argument("--format", choices=FORMATS, default="text", help="output format (default: text)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the trace here instead of standard output")
    p.add_argument("--times", action="store_true", help="show each call's duration (text format)")
    p.add_argument("--no-args", action="store_true", help="do not summarise arguments")
    p.add_argument("--workers", action="store_true", help="record inside DataLoader worker processes too")
    p.add_argument("--imports", action="store_true",
                   help="keep the calls imports make (the body of each module imported, and all it calls)")
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["book"]:  # python -m tracer book ...: the book runner
        try:
            from .book import main as book_main
        except ModuleNotFoundError as missing:
            print(f"{program_name()} book: the book needs packages that are not installed ({missing.name} is "
                  "missing): pip install 'pytorch-traced[book]', or pip install -r requirements.txt in the "
                  "repository", file=sys.stderr)
            return 2
        return book_main(argv[1:])
    opts = parser().parse_args(argv)
    try:
        recorder = trace(layers=opts.layers, include=opts.include, depth=opts.depth, args=not opts.no_args,
                         workers=opts.workers)
    except (TypeError, ValueError) as error:
        print(f"python -m tracer: {error}", file=sys.stderr)
        return 2
    if opts.code is not None:
        if opts.script or opts.args:
            print("python -m tracer: give -c CODE or a script, not both", file=sys.stderr)
            return 2
        target, run = "<string>", lambda: exec(compile(opts.code, "<string>", "exec"), {"__name__": "__main__"})
    else:
        if not os.path.isfile(opts.script):
            print(f"python -m tracer: no such script: {opts.script}", file=sys.stderr)
            return 2
        target = opts.script
        sys.argv = [opts.script, *opts.args]
        sys.path.insert(0, os.path.dirname(os.path.abspath(opts.script)))
        run = lambda: runpy.run_path(opts.script, run_name="__main__")
    if opts.output:  # say so before running the code, not after
        problem = unwritable(opts.output)
        if problem:
            print(f"python -m tracer: cannot write {opts.output}: {problem}", file=sys.stderr)
            return 2
    status = 0
    try:
        with recorder:
            run()
    except SystemExit as stop:
        if isinstance(stop.code, int) or stop.code is None:
            status = stop.code or 0
        else:
            print(stop.code, file=sys.stderr)  # sys.exit("message") prints its message, as Python does
            status = 1
    except BaseException:
        traceback.print_exc()
        print(f"python -m tracer: {target} raised; the trace up to that point follows", file=sys.stderr)
        status = 1
    try:
        write(recorder if opts.imports else views.hide_imports(recorder, hint="--imports keeps them"), opts)
    except OSError as error:  # the output went away or filled up while the code ran
        print(f"python -m tracer: cannot write {opts.output or 'the trace'}: {error.strerror or error}", file=sys.stderr)
        return status or 1
    return status


def unwritable(path) -> str | None:
    """Why `path` cannot be written, or None: opened for appending (nothing it holds is lost), by the code
    that will write it, so a folder, a missing folder, /proc or a read-only place is found before the run."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        return "it is a folder"
    if not os.path.isdir(folder):
        return f"no folder {folder}"
    existed = os.path.exists(path)
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as error:
        return error.strerror or str(error)
    if not existed:
        os.remove(path)  # made only to try: the trace writes it after the run
    return None


def write(t, opts):
    if opts.format == "text":
        color = opts.output is None and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        text = t.to_text(times=opts.times, color=color)
    elif opts.format == "json":
        text = t.to_json()
    elif opts.format == "perfetto":
        text = t.to_perfetto()
    else:
        from .render.html import render_page
        text = render_page(t)
    if opts.output:
        with open(opts.output, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        print(f"python -m tracer: wrote {len(t):,} calls to {opts.output}", file=sys.stderr)
    else:
        print(text)


if __name__ == "__main__":
    sys.exit(main())
