"""Build the book: run each chapter headless, write its notebook, the site, the slides and the claims ledger.

    python -m tracer.book                       # build every chapter in chapters/
    python -m tracer.book build 02              # one chapter, by number or by file
    python -m tracer.book check-sync            # notebooks/ built from the current chapters?
    python -m tracer.book drift                 # the chapters on a second torch: the drift report

A passing chapter is written to ``notebooks/NN-slug.ipynb`` with its outputs; every chapter gets a page and
reveal.js slides in the site, and ``claims.json`` beside them holds the ledger.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..claims import FAILED, PASSED, SKIPPED
from .chapter import chapter_files, display_path, missing_chapters_dir
from .drift import REPORT, write_page
from .notebook import sync_problems, write_notebook
from .run import CELL_TIMEOUT_S, ChapterRun, run_chapter
from .site import RevealMissing, reveal_archive, write_site


def summary_table(runs: list[ChapterRun]) -> str:
    header = ("chapter", "status", "seconds", "device", "torch", PASSED, FAILED, SKIPPED)
    rows = [header] + [(run.name, run.status, f"{run.seconds:.1f}", run.device, run.torch,
                        str(run.count(PASSED)), str(run.count(FAILED)), str(run.count(SKIPPED))) for run in runs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def build(paths: list[Path], notebooks_dir: Path, site: Path | None, cache: Path, all_chapters: list[Path],
          timeout: int = CELL_TIMEOUT_S) -> list[ChapterRun]:
    """Run each chapter once; write the notebooks of those that pass, then the site from all of them.

    reveal.js is had before any chapter runs, so a build that cannot write working slides fails at once.
    """
    reveal = reveal_archive(cache) if site is not None else None
    runs = []
    for number, path in enumerate(paths, 1):
        print(f"[{number}/{len(paths)}] {path.stem}: running", flush=True)
        run = run_chapter(path, timeout)
        runs.append(run)
        report_run(run, f"[{number}/{len(paths)}]")
        if run.status == "passed":
            write_notebook(run, notebooks_dir)
        else:
            print(f"    {kept_notebook(notebooks_dir / f'{run.name}.ipynb')}", flush=True)
    if site is not None:
        report = notebooks_dir / REPORT.name
        if report.is_file():  # the committed drift report is a page of the site too
            write_page(report.read_text(encoding="utf-8"), site)
        write_site(runs, site, reveal, all_chapters)
    return runs


def kept_notebook(target: Path) -> str:
    """What a failed chapter did to its notebook: nothing, whether or not an earlier build wrote one."""
    if target.is_file():
        return f"{display_path(target)} left as it was"
    return f"no notebook written ({display_path(target)} does not exist)"


def report_run(run: ChapterRun, progress: str) -> None:
    """The chapter's progress line, its claims that did not pass, and its error."""
    claims = ", ".join(f"{run.count(status)} {status}" for status in (PASSED, FAILED, SKIPPED))
    print(f"{progress} {run.name}: {run.status} in {run.seconds:.1f} s on {run.device} ({claims})", flush=True)
    for entry in run.claims:
        if entry["status"] != PASSED:
            place = f"cell {entry['cell']}" + (f", {display_path(run.path)}:{entry['line']}" if entry["line"] else "")
            print(f"    {entry['status']} claim ({place}): {entry['claim']}: {entry['detail']}")
    if run.error:
        print(run.error, file=sys.stderr, flush=True)


COMMANDS = ("build", "check-sync", "drift")


def parser() -> argparse.ArgumentParser:
    folders = argparse.ArgumentParser(add_help=False)
    folders.add_argument("--chapters-dir", type=Path, default=Path("chapters"), help="where NN-slug.md lie (default: chapters)")
    folders.add_argument("--notebooks", type=Path, default=Path("notebooks"), help="where notebooks go (default: notebooks)")
    p = argparse.ArgumentParser(prog="python -m tracer.book", description=__doc__.split("\n\n")[0])
    commands = p.add_subparsers(dest="command")
    run = commands.add_parser("build", parents=[folders], help="run chapters, write notebooks, site, slides and claims.json (default)")
    run.add_argument("chapters", nargs="*", help="chapter numbers (02) or files; default: all")
    run.add_argument("--site", type=Path, default=Path("site"), help="site folder (default: site)")
    run.add_argument("--no-site", action="store_true", help="write notebooks only")
    run.add_argument("--cache", type=Path, default=Path("build/cache"), help="download cache (default: build/cache)")
    run.add_argument("--timeout", type=int, default=CELL_TIMEOUT_S, help=f"seconds per cell (default: {CELL_TIMEOUT_S})")
    commands.add_parser("check-sync", parents=[folders], help="fail when a notebook is missing or its cells differ from its chapter")
    commands.add_parser("drift", add_help=False, help="run the chapters on a second torch and write the drift report "
                        "(python -m tracer book drift --help)")
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*COMMANDS, "-h", "--help"):
        argv.insert(0, "build")
    if argv[0] == "drift":
        from .drift import main as drift_main
        return drift_main(argv[1:])
    opts = parser().parse_args(argv)
    if opts.command == "check-sync":
        missing = missing_chapters_dir(opts.chapters_dir)
        if missing:
            print(f"python -m tracer.book: {missing}", file=sys.stderr)
            return 2
        return report(sync_problems(opts.chapters_dir, opts.notebooks), "notebooks out of sync with their chapters")
    try:
        paths = chapter_files(opts.chapters_dir, opts.chapters)
    except FileNotFoundError as error:
        print(f"python -m tracer.book: {error}", file=sys.stderr)
        return 2
    if not paths:
        none = missing_chapters_dir(opts.chapters_dir) or f"no NN-slug.md chapters in {display_path(opts.chapters_dir)}"
        print(f"python -m tracer.book: {none}", file=sys.stderr)
        return 2
    try:
        runs = build(paths, opts.notebooks, None if opts.no_site else opts.site, opts.cache,
                     chapter_files(opts.chapters_dir), opts.timeout)
    except RevealMissing as error:
        print(f"python -m tracer.book: {error}", file=sys.stderr)
        return 2
    print()
    print(summary_table(runs))
    if not opts.no_site:
        print(f"\nsite: {display_path(opts.site)}/index.html; claims: {display_path(opts.site)}/claims.json")
    return 0 if all(run.status == "passed" for run in runs) else 1


def report(problems: list[str], what: str) -> int:
    if problems:
        print(f"{what}:", *problems, sep="\n  ", file=sys.stderr)
        return 1
    return 0
