"""Build the book: run each chapter headless, write its notebook, the site, the slides and the claims ledger.

    python -m tracer.book                       # build every chapter in chapters/
    python -m tracer.book build 02              # one chapter, by number or by file
    python -m tracer.book check-sync            # notebooks/ built from the current chapters?

Each chapter (``chapters/NN-slug.md``, MyST Markdown read by jupytext) runs in a fresh kernel of this
interpreter, in the chapters' folder, with ``TRACER_LEDGER`` naming a file the kernel appends its
claims to, so every claim is filed under the cell that made it. A passing chapter is written to
``notebooks/NN-slug.ipynb`` with its outputs; every chapter gets a page and reveal.js slides in the
site, and ``claims.json`` beside them holds the ledger. The slides load reveal.js from the site: the build
takes the pinned tarball (``REVEAL_TARBALL``) from the cache (``build/cache``), fetching it there with npm
once, and fails when it can have it neither way.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import jupytext
import nbformat
import zmq
from jinja2 import DictLoader
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_async, run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError

from .claims import FAILED, PASSED, SKIPPED

CELL_TIMEOUT_S = 300
REVEAL_VERSION = "5.2.1"
REVEAL_PACKAGE = f"reveal.js@{REVEAL_VERSION}"
REVEAL_TARBALL = f"reveal.js-{REVEAL_VERSION}.tgz"  # the file name npm pack gives it
# the registry's dist.integrity for that version (npm view reveal.js@5.2.1 dist.integrity): a cached file must match it
REVEAL_INTEGRITY = "sha512-r7//6mIM5p34hFiDMvYfXgyjXqGRta+/psd9YtytsgRlrpRzFv4RbH76TXd2qD+7ZPZEbpBDhdRhJaFgfQ7zNQ=="
HEADING = re.compile(r"^#{1,2} ")
FENCE = re.compile(r"^(`{3,}|~{3,})")
CODE_CELL = re.compile(r"^(`{3,}|~{3,})\{code-cell\}")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # in reprs: differs on every run (nbdev_clean strips it too)


# -- reading a chapter ------------------------------------------------------------------------------

def chapter_files(chapters_dir: Path, selected=()) -> list[Path]:
    """The chapters to build: all ``NN-slug.md`` files, or those named by number (``2``, ``02``) or path."""
    every = sorted(chapters_dir.glob("[0-9][0-9]-*.md"))
    if not selected:
        return every
    chosen = []
    for item in selected:
        if item.isdigit():
            matches = [path for path in every if path.name.startswith(f"{int(item):02d}-")]
        else:
            matches = [Path(item)] if Path(item).is_file() else []
        if not matches:
            there = f"the chapters are {', '.join(path.stem for path in every)}" if every else "it holds none"
            raise FileNotFoundError(missing_chapters_dir(chapters_dir)
                                    or f"no chapter {item!r} in {display_path(chapters_dir)}: {there}")
        chosen.extend(matches)
    return chosen


def missing_chapters_dir(chapters_dir: Path) -> str | None:
    """What to do when the chapters' folder is not there (the command run outside the repository, say), else None."""
    if chapters_dir.is_dir():
        return None
    where = display_path(chapters_dir)
    return f"no folder of chapters at {where!r}: run from the repository root, or pass --chapters-dir"


def read_chapter(path: Path) -> nbformat.NotebookNode:
    """The chapter as a notebook: markdown split at each ``#``/``##`` heading, stable ids, slide and solution metadata."""
    nb = jupytext.read(path)
    cells = []
    for cell in nb.cells:
        cells.extend(split_at_headings(cell) if cell.cell_type == "markdown" else [cell])
    for index, cell in enumerate(cells):
        cell.id = f"cell-{index}"
    nb.cells = cells
    mark_slides(nb)
    hide_solutions(nb)
    return nb


def split_at_headings(cell) -> list:
    """A markdown cell cut before each level-1 or level-2 heading (outside code fences), so each starts a slide."""
    parts, current, fenced = [], [], False
    for line in cell.source.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        if HEADING.match(line) and not fenced and any(text.strip() for text in current):
            parts.append(current)
            current = []
        current.append(line)
    parts.append(current)
    return [nbformat.v4.new_markdown_cell("\n".join(part).strip("\n"), metadata=dict(cell.metadata))
            for part in parts if any(text.strip() for text in part)]


def mark_slides(nb) -> None:
    """A heading starts a slide; any other cell after a code cell starts a subslide below it, so each step fits."""
    previous = None
    for cell in nb.cells:
        if cell.cell_type == "markdown" and HEADING.match(cell.source):
            kind = "slide"
        elif previous == "code":
            kind = "subslide"
        else:
            kind = "-"
        cell.metadata["slideshow"] = {"slide_type": kind}
        previous = cell.cell_type


def hide_solutions(nb) -> None:
    for cell in nb.cells:
        if "solution" in cell.metadata.get("tags", []):
            cell.metadata.setdefault("jupyter", {})["source_hidden"] = True


def code_cell_lines(path: Path) -> list[int]:
    """The line of each ``{code-cell}`` fence in the chapter file, in order, to point an author at a cell."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [number for number, text in enumerate(lines, 1) if CODE_CELL.match(text)]


def first_line(cell) -> str:
    return next((line.strip() for line in cell.source.splitlines() if line.strip()), "")


def _inline_code(title: str) -> str:
    """A chapter title's `code` spans as <code>, the rest escaped."""
    parts = html.escape(title).split("`")
    return "".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts))


def title_of(nb, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("# "):
            return cell.source.splitlines()[0][2:].strip()
    return fallback


# -- running a chapter ------------------------------------------------------------------------------

@dataclass
class ChapterRun:
    """One chapter, executed: its notebook with outputs, its claims and how it went."""

    path: Path
    notebook: nbformat.NotebookNode
    seconds: float = 0.0
    device: str = ""
    torch: str = ""
    claims: list[dict] = field(default_factory=list)
    error: str | None = None

    @property
    def name(self) -> str:
        return self.path.stem

    def count(self, status: str) -> int:
        return sum(1 for entry in self.claims if entry["status"] == status)

    @property
    def status(self) -> str:
        return "failed" if self.error or self.count(FAILED) else "passed"

    def record(self) -> dict:
        """The chapter's row in claims.json."""
        return {"chapter": self.name, "title": title_of(self.notebook, self.name), "status": self.status,
                "seconds": round(self.seconds, 2), "device": self.device, "torch": self.torch, "error": self.error,
                PASSED: self.count(PASSED), FAILED: self.count(FAILED), SKIPPED: self.count(SKIPPED)}


class CellLedger:
    """nbclient hooks: after each cell, file the claims the kernel appended to the ledger under that cell."""

    def __init__(self, path: Path, chapter: Path, notebook):
        self.path = path
        self.chapter = chapter.stem
        self.notebook = notebook
        self.cell_lines = code_cell_lines(chapter)
        self.offset = 0
        self.claims: list[dict] = []
        self.again: list[dict] = []  # the claims of the second pass: they fail the chapter, they count in no table
        self.pass_number = 1
        self.cell = None
        self.index = None
        self.error_reply = None

    def start(self, cell, cell_index, **_):
        self.cell, self.index = cell, cell_index

    def failed(self, execute_reply, **_):
        self.error_reply = execute_reply["content"]

    def collect(self, **_):
        with open(self.path, encoding="utf-8") as f:
            f.seek(self.offset)
            text = f.read()
        complete = text[:text.rfind("\n") + 1]
        self.offset += len(complete.encode("utf-8"))
        for line in complete.splitlines():
            entry = json.loads(line)
            (self.claims if self.pass_number == 1 else self.again).append(
                {"chapter": self.chapter, "cell": self.index, "line": self.source_line(),
                 "source": first_line(self.cell), **entry})

    def source_line(self) -> int | None:
        """Line of the current cell's fence in the chapter file (code cells are numbered in order)."""
        if self.cell is None or self.cell.cell_type != "code":
            return None
        ordinal = sum(1 for cell in self.notebook.cells[:self.index] if cell.cell_type == "code")
        return self.cell_lines[ordinal] if ordinal < len(self.cell_lines) else None

    def where(self, relpath: str) -> str:
        line = self.source_line()
        place = f" ({relpath}:{line})" if line else ""
        again = "in the second pass (Run All again in the same kernel) at " if self.pass_number > 1 else "at "
        return f"{again}cell {self.index}{place}: {first_line(self.cell)}"


class ChapterClient(NotebookClient):
    """nbclient's client, running the cells `passes` times in one kernel, as a reader who presses Run All twice.

    The passes after the first run copies of the cells, so the notebook keeps the first pass's outputs.
    """

    def __init__(self, nb, ledger: CellLedger, passes: int = 1, **kwargs):
        super().__init__(nb, **kwargs)
        self.ledger, self.passes = ledger, passes

    async def async_execute(self, reset_kc: bool = False, **kwargs) -> nbformat.NotebookNode:
        self.reset_execution_trackers()
        unrun = json.dumps(self.nb.cells)
        first = None
        async with self.async_setup_kernel(**kwargs):
            reply = await self.async_wait_for_reply(await ensure_async(self.kc.kernel_info()))
            self.nb.metadata["language_info"] = reply["content"]["language_info"]
            try:
                for number in range(1, self.passes + 1):
                    if any(entry["status"] == FAILED for entry in self.ledger.claims):
                        break  # the chapter failed already: a second pass would only say it again
                    self.ledger.pass_number = number
                    cells = self.nb.cells if number == 1 else nbformat.from_dict(json.loads(unrun))
                    for index, cell in enumerate(cells):
                        await self.async_execute_cell(cell, index, execution_count=self.code_cells_executed + 1)
                    if number == 1:
                        first = list(self.nb.cells)
            finally:
                if first is not None:  # async_execute_cell files each cell it ran in the notebook, a later pass's too
                    self.nb.cells = first
        return self.nb

    execute = run_sync(async_execute)  # NotebookClient's execute wraps its own async_execute, not this one


def kernel_manager(folder: Path, python: str | None = None) -> AsyncKernelManager:
    """A manager for a python3 kernel of `python` (default: this very interpreter), whatever kernelspecs the machine has."""
    spec_dir = folder / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {"argv": [python or sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3", "language": "python", "metadata": {"supported_encryption": ["curve"]}}
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    specs = KernelSpecManager(kernel_dirs=[str(spec_dir.parent)])
    # the kernel warns on every start when its local sockets are not encrypted
    encryption = "auto" if zmq.has("curve") else "disabled"
    return AsyncKernelManager(kernel_name="python3", kernel_spec_manager=specs, transport_encryption=encryption)


def runtime() -> tuple[str, str]:
    """(device, torch version) of this machine; chapters pick CUDA themselves when it is available."""
    import torch
    return ("cuda" if torch.cuda.is_available() else "cpu"), torch.__version__


def run_chapter(path: Path, timeout: int = CELL_TIMEOUT_S, passes: int = 1, python: str | None = None,
                epilogue: str = "", env: dict | None = None, allow_errors: bool = False) -> ChapterRun:
    """Execute one chapter in a fresh kernel, `passes` times over in that kernel (the tests pass 2: Run All twice).

    Never raises for the chapter's own errors: they land in .error, naming the pass and the cell, as does a
    claim that fails only in a later pass. The notebook and the claims are the first pass's.

    python        the kernel's interpreter (default: this one); another environment's, to run the book on another torch
    epilogue      code run after the chapter's last cell, in its kernel (the drift report collects the traces so)
    env           variables added to the kernel's environment
    allow_errors  go on past a cell that raised (a failed claim raises): its error stays in the cell's outputs
    """
    path = Path(path)
    nb = read_chapter(path)
    device, torch_version = runtime() if python is None else ("", "")
    run = ChapterRun(path, nb, device=device, torch=torch_version)
    if epilogue:
        nb.cells.append(nbformat.v4.new_code_cell(epilogue))
    with tempfile.TemporaryDirectory(prefix="tracer-book-") as tmp:
        ledger_path = Path(tmp) / "claims.jsonl"
        ledger_path.touch()
        ledger = CellLedger(ledger_path, path, nb)
        client = ChapterClient(nb, ledger, passes, km=kernel_manager(Path(tmp), python), timeout=timeout,
                               record_timing=False, allow_errors=allow_errors,
                               resources={"metadata": {"path": str(path.parent.resolve())}},
                               on_cell_start=ledger.start, on_cell_executed=ledger.collect,
                               on_cell_error=ledger.failed)
        # a fixed hash seed keeps set orders, and so the outputs, the same from one build to the next
        env = {**os.environ, **(env or {}), "TRACER_LEDGER": str(ledger_path), "PYTHONHASHSEED": "0"}
        start = time.monotonic()
        try:
            client.execute(cleanup_kc=True, env=env)
        except Exception as error:  # a chapter's failure is reported with its cell, not raised
            run.error = describe_failure(run, ledger, error, timeout)
        run.seconds = time.monotonic() - start
        ledger.collect()
    if epilogue:
        nb.cells.pop()
    run.claims = ledger.claims
    failed_again = [entry for entry in ledger.again if entry["status"] == FAILED]
    if failed_again and not run.error:
        entry = failed_again[0]
        place = f" ({display_path(path)}:{entry['line']})" if entry["line"] else ""
        run.error = (f"{run.name} failed in the second pass (Run All again in the same kernel) at cell {entry['cell']}"
                     f"{place}: {entry['source']}\nclaim failed: {entry['claim']}: {entry['detail']}")
    return run


def describe_failure(run: ChapterRun, ledger: CellLedger, error: Exception, timeout: int) -> str:
    where = ledger.where(display_path(run.path)) if ledger.cell is not None else "before the first cell"
    if isinstance(error, CellTimeoutError):
        return f"{run.name} failed {where}\ntimed out after {timeout} s"
    if ledger.error_reply is not None:
        reply = ledger.error_reply
        trace = ANSI.sub("", "\n".join(reply.get("traceback", [])))
        return f"{run.name} failed {where}\n{trace or reply.get('ename') + ': ' + reply.get('evalue')}"
    return f"{run.name} failed {where}\n{type(error).__name__}: {error}"


def display_path(path: Path) -> str:
    """The path relative to the working folder where it lies below it, else as given."""
    try:
        return Path(path).resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)


# -- the notebook -----------------------------------------------------------------------------------

def clean_notebook(nb) -> nbformat.NotebookNode:
    """The notebook as committed: no timings, no jupytext noise, no widget state, no memory addresses, so a rebuild
    diffs only where outputs changed. The kernel's language_info stays whole (its version too: the same on each
    build here): a client that opens the notebook finds what it would add, and does not mark it modified."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    nb.metadata.pop("jupytext", None)
    nb.metadata.pop("widgets", None)  # GitHub refuses a notebook whose widget metadata lacks its state
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            output.pop("transient", None)
            if "text" in output:
                output.text = ADDRESS.sub("", output.text)
            for mime, value in output.get("data", {}).items():
                if mime.startswith("text/") and isinstance(value, str):
                    output.data[mime] = ADDRESS.sub("", value)
    return nb


def write_notebook(run: ChapterRun, notebooks_dir: Path) -> Path:
    """The notebook without its solutions, which go to ``solutions/NN-slug.md`` (and one ``.py`` each) beside it."""
    notebooks_dir.mkdir(parents=True, exist_ok=True)
    target = notebooks_dir / f"{run.name}.ipynb"
    nb, solutions = split_solutions(clean_notebook(run.notebook), run.name)
    nbformat.write(nb, target)
    write_solutions(solutions, notebooks_dir / SOLUTIONS_DIR, run.name, title_of(nb, run.name))
    return target


# -- exercises: the solutions kept out of the committed notebook -------------------------------------
#
# GitHub shows a notebook's every cell (it ignores `source_hidden`), so a solution cell in the committed
# notebook gives the answer away. It is moved, with its outputs, to a Markdown page GitHub reads, and a
# .py file a reader can %load; the notebook keeps a link in its place. The site keeps it, folded.

SOLUTIONS_DIR = "solutions"


@dataclass
class Solution:
    number: int
    source: str
    outputs: list = field(default_factory=list)


def is_solution(cell) -> bool:
    return cell.cell_type == "code" and "solution" in cell.metadata.get("tags", [])


def solution_files(name: str, number: int) -> tuple[str, str]:
    """(the Markdown page with its anchor, the .py file), relative to the notebooks' folder."""
    return f"{SOLUTIONS_DIR}/{name}.md#exercise-{number}", f"{SOLUTIONS_DIR}/{name}-{number}.py"


def split_solutions(nb, name: str) -> tuple[nbformat.NotebookNode, list[Solution]]:
    """The notebook with each solution cell replaced by a markdown cell linking to it; the solutions, numbered."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    solutions, cells = [], []
    for cell in nb.cells:
        if not is_solution(cell):
            cells.append(cell)
            continue
        number = len(solutions) + 1
        solutions.append(Solution(number, cell.source, cell.get("outputs", [])))
        page, script = solution_files(name, number)
        link = nbformat.v4.new_markdown_cell(
            f"[Solution {number}]({page}) (it checks itself with claims); to run it here, after the cells above: "
            f"`%load {script}` in a new cell.", metadata={"slideshow": cell.metadata.get("slideshow", {})})
        link.id = cell.id
        cells.append(link)
    nb.cells = cells
    return nb, solutions


def fence_for(text: str) -> str:
    """A backtick fence longer than any backtick run in `text`, so the block cannot end early."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def fenced(text: str, language: str) -> str:
    fence = fence_for(text)
    return f"{fence}{language}\n{text.rstrip()}\n{fence}"


def output_markdown(output) -> str | None:
    """One cell output as Markdown: text in a fenced block, Markdown as it is; None for what has no text."""
    if output.get("output_type") == "stream":
        return fenced(output["text"], "text")
    if output.get("output_type") == "error":
        return fenced(ANSI.sub("", f"{output['ename']}: {output['evalue']}"), "text")
    data = output.get("data", {})
    if "text/markdown" in data:
        return data["text/markdown"].strip()
    if "text/plain" in data:
        return fenced(data["text/plain"], "text")
    return None


def solutions_page(solutions: list[Solution], name: str, title: str) -> str:
    parts = [f"# Solutions: {title}",
             f"The exercises are in [the notebook](../{name}.ipynb); each solution runs there after the cells above it, "
             f"and checks itself with claims (the lines ✓ below, as the book's run showed them)."]
    for solution in solutions:
        parts += [f"## Exercise {solution.number}", fenced(solution.source, "python")]
        shown = [text for text in map(output_markdown, solution.outputs) if text]
        if shown:
            parts += ["Output:", *shown]
    return "\n\n".join(parts) + "\n"


def write_solutions(solutions: list[Solution], folder: Path, name: str, title: str) -> None:
    """The chapter's solutions page and .py files; those of an earlier build that no longer exist are removed."""
    stale = set(folder.glob(f"{name}-*.py")) | ({folder / f"{name}.md"} if folder.is_dir() else set())
    if solutions:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.md").write_text(solutions_page(solutions, name, title), encoding="utf-8")
        for solution in solutions:
            script = folder / f"{name}-{solution.number}.py"
            script.write_text(solution.source.rstrip() + "\n", encoding="utf-8")
            stale.discard(script)
        stale.discard(folder / f"{name}.md")
    for path in stale:
        path.unlink(missing_ok=True)


def solution_problems(path: Path, chapter_solutions: list[Solution], folder: Path) -> list[str]:
    """Where the solutions page or the .py files do not hold the chapter's solutions as they are now."""
    name, problems = path.stem, []
    page = folder / f"{name}.md"
    scripts = sorted(folder.glob(f"{name}-*.py")) if folder.is_dir() else []
    wanted_scripts = [folder / f"{name}-{solution.number}.py" for solution in chapter_solutions]
    if not chapter_solutions:
        return [f"{name}: {display_path(p)} is there, but the chapter has no solution" for p in [page, *scripts]
                if p.is_file()]
    if not page.is_file():
        return [f"{name}: solutions page {display_path(page)} is missing"]
    blocks = re.findall(r"^(`{3,})python\n(.*?)\n\1$", page.read_text(encoding="utf-8"), re.S | re.M)
    if [code for _, code in blocks] != [solution.source.rstrip() for solution in chapter_solutions]:
        problems.append(f"{name}: {display_path(page)} does not hold the chapter's solutions")
    for script, solution in zip(wanted_scripts, chapter_solutions):
        if not script.is_file() or script.read_text(encoding="utf-8") != solution.source.rstrip() + "\n":
            problems.append(f"{name}: {display_path(script)} is missing or differs from solution {solution.number}")
    problems += [f"{name}: {display_path(script)} belongs to no solution" for script in scripts
                 if script not in wanted_scripts]
    return problems


def sync_problems(chapters_dir: Path, notebooks_dir: Path) -> list[str]:
    """Chapters whose notebook is missing or whose cell sources differ from the chapter's; notebooks without a chapter."""
    problems = []
    chapters = chapter_files(chapters_dir)
    for path in chapters:
        target = notebooks_dir / f"{path.stem}.ipynb"
        if not target.is_file():
            problems.append(f"{path.stem}: notebook {display_path(target)} is missing")
            continue
        built = [(cell.cell_type, cell.source) for cell in nbformat.read(target, as_version=4).cells]
        chapter, solutions = split_solutions(read_chapter(path), path.stem)
        wanted = [(cell.cell_type, cell.source) for cell in chapter.cells]
        if built != wanted:
            first = next((i for i, pair in enumerate(zip(built, wanted)) if pair[0] != pair[1]), min(len(built), len(wanted)))
            problems.append(f"{path.stem}: cell sources differ from the chapter's, first at cell {first}")
        problems += solution_problems(path, solutions, notebooks_dir / SOLUTIONS_DIR)
    names = {path.stem for path in chapters}
    for target in sorted(notebooks_dir.glob("*.ipynb")):
        if target.stem not in names:
            problems.append(f"{target.stem}: notebook has no chapter in {display_path(chapters_dir)}")
    for target in sorted((notebooks_dir / SOLUTIONS_DIR).glob("*")):
        chapter = target.stem if target.suffix == ".md" else target.stem.rpartition("-")[0]
        if chapter not in names:
            problems.append(f"{target.name}: {display_path(target)} belongs to no chapter in {display_path(chapters_dir)}")
    return problems


# -- the site ---------------------------------------------------------------------------------------

# After the notebook's own CSS in both templates. The slides' reveal theme comes later still, so rules that it
# also sets name `.reveal` or an output class to outrank it.
BOOK_CSS = """
<style>
nav.book { font-family: sans-serif; margin: 0.5em 1em; }
/* a long output line scrolls rather than breaking inside a word, so trees and tables keep their columns */
.jp-OutputArea-output pre { white-space: pre; word-break: normal; overflow-wrap: normal; overflow-x: auto; }
/* code in a Markdown output (tracer.read's excerpts) is set as code: nbconvert's page gives it the prose's face */
.jp-OutputArea-output.jp-RenderedMarkdown pre { font-family: var(--jp-code-font-family); font-size: var(--jp-code-font-size); }
/* the solution's toggle: bold text in the cells' text column (SOLUTION_CELL lays it out as a cell) */
details.solution > summary { display: block; list-style: none; cursor: pointer; padding: var(--jp-cell-padding); }
details.solution > summary::-webkit-details-marker { display: none; }
details.solution .solution-label { font-weight: bold; }
details.solution .solution-label::before { content: "\\25b8  "; }
details.solution[open] .solution-label::before { content: "\\25be  "; }
/* a trace's argument tables are key-value lists, not the notebook's striped, ruled data tables */
.jp-OutputArea-output .tracer-view table { font-size: inherit; }
.jp-OutputArea-output .tracer-view tr:nth-child(n) { background: transparent; }
.jp-OutputArea-output .tracer-view td, .jp-OutputArea-output .tracer-view th { border: none; }
</style>
"""

# Chapters' code lines run to about 120 characters: a 16:10 slide this wide, with a smaller code face than nbconvert's,
# holds most of them, and what is still wider scrolls sideways instead of being cut at the slide's edge.
SLIDE_WIDTH, SLIDE_HEIGHT = 1280, 800
SLIDES_CSS = """
<style>
:root { --jp-code-font-size: 16px; }
.reveal .slides > section > section { max-height: 100%; overflow-y: auto; }
.reveal div.highlight > pre { overflow-x: auto; box-sizing: border-box; }
.reveal .jp-OutputArea-output { overflow-x: auto; }
.reveal .jp-OutputArea-output pre { width: auto; box-shadow: none; }
/* a trace's own 12.5 px suits a notebook; on a slide it reads at the code's size, one call a line */
.reveal .tracer-view, .reveal .tracer-view pre { font-size: var(--jp-code-font-size) !important; }
.reveal .tracer-view summary, .reveal .tracer-view div { white-space: nowrap; }
/* a trace or a step fits the slide with its cell, under the deck's arrows, and scrolls inside itself: one scrollbar */
.reveal .tracer-view .tracer-scroll, .reveal .tracer-view pre.tracer-tree { max-height: """ + str(SLIDE_HEIGHT * 9 // 20) + """px !important; }
.reveal .tracer-view [data-step] pre { max-height: """ + str(SLIDE_HEIGHT // 4) + """px !important; }
.reveal .slides > section > section { padding-bottom: 48px; box-sizing: border-box; }
/* the reveal root's 42 px would reach the toggle, which lies outside any notebook cell */
.reveal details.solution > summary { font-size: var(--jp-content-font-size1); }
</style>
"""

# The toggle is laid out as a markdown cell is (collapser, empty prompt, text), so it lines up with the cells whatever
# the widths: the page hides the collapser, the slides show it, and their prompts differ.
SOLUTION_LABEL = ('<span class="jp-Cell-inputWrapper">'
                  '<span class="jp-Collapser jp-InputCollapser jp-Cell-inputCollapser"></span>'
                  '<span class="jp-InputArea jp-Cell-inputArea"><span class="jp-InputPrompt jp-InputArea-prompt"></span>'
                  '<span class="jp-RenderedHTMLCommon jp-MarkdownOutput solution-label">Solution</span></span></span>')
SOLUTION_CELL = """
{% block codecell %}
{%- if 'solution' in cell.metadata.get('tags', []) -%}
<details class="solution"><summary>""" + SOLUTION_LABEL + """</summary>{{ super() }}</details>
{%- else -%}{{ super() }}{%- endif -%}
{% endblock codecell %}
"""

# No script from a CDN: require.js, MathJax and mermaid are left out; chapters use neither math nor diagrams.
PAGE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{% block html_head_js_requirejs %}{% endblock %}
{% block html_head_js_mathjax %}{% endblock %}
{% block html_head_js_mermaidjs %}{% endblock %}
{% block html_head_css %}""" + BOOK_CSS + """{% endblock %}
{% block body_header %}{{ super() }}
<nav class="book"><a href="index.html">Contents</a> · <a href="{{ resources.book.slides }}">Slides</a>
 · <a href="{{ resources.book.notebook }}">Notebook</a></nav>
{% endblock body_header %}
""" + SOLUTION_CELL

# reveal.js loaded from the site by plain script tags (its UMD build sets window.Reveal), not through require.js.
SLIDES_TEMPLATE = """{%- extends 'index.html.j2' -%}
{% block html_head_js %}{% endblock %}
{% block html_head_js_mathjax %}{% endblock %}
{% block html_head_css %}""" + BOOK_CSS + SLIDES_CSS + """{% endblock %}
{% block footer_js %}
<script src="{{ resources.reveal.url_prefix }}/dist/reveal.js"></script>
<script src="{{ resources.reveal.url_prefix }}/plugin/notes/notes.js"></script>
<script>
// keys pressed in a trace view are the view's (the step-through takes arrows, Home and End), not the deck's
function outsideTraceViews(event) { return !(event.target.closest && event.target.closest(".tracer-view")); }
Reveal.initialize({controls: true, progress: true, history: true, transition: "{{ resources.reveal.transition }}",
                   plugins: [RevealNotes], width: """ + str(SLIDE_WIDTH) + """, height: """ + str(SLIDE_HEIGHT) + """,
                   keyboardCondition: outsideTraceViews});
</script>
{% endblock footer_js %}
""" + SOLUTION_CELL


def exporters():
    """(page exporter, slides exporter), configured to reference nothing off the site."""
    from nbconvert import HTMLExporter, SlidesExporter
    loader = DictLoader({"book-page.html.j2": PAGE_TEMPLATE, "book-slides.html.j2": SLIDES_TEMPLATE})
    page = HTMLExporter(extra_loaders=[loader], template_file="book-page.html.j2")
    slides = SlidesExporter(extra_loaders=[loader], template_file="book-slides.html.j2",
                            reveal_url_prefix="reveal.js", reveal_theme="white")
    return page, slides


def write_pages(run: ChapterRun, site: Path, page_exporter, slides_exporter) -> None:
    """The chapter's HTML page, its slides and a copy of its notebook, in the site."""
    nb = clean_notebook(run.notebook)
    (site / "notebooks").mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, site / "notebooks" / f"{run.name}.ipynb")
    resources = {"metadata": {"name": title_of(nb, run.name)},
                 "book": {"slides": f"{run.name}.slides.html", "notebook": f"notebooks/{run.name}.ipynb"}}
    body, _ = page_exporter.from_notebook_node(nb, resources=resources)
    (site / f"{run.name}.html").write_text(body, encoding="utf-8")
    body, _ = slides_exporter.from_notebook_node(nb, resources=resources)
    (site / f"{run.name}.slides.html").write_text(body, encoding="utf-8")


class RevealMissing(RuntimeError):
    """reveal.js, which the slides load from the site, is neither in the cache nor fetchable."""


def reveal_archive(cache: Path) -> Path:
    """reveal.js at the pinned version as npm packs it, from the cache or fetched into it; raises RevealMissing."""
    archive = cache / REVEAL_TARBALL
    if not archive.is_file():
        fetch_reveal(cache)
    digest = "sha512-" + base64.b64encode(hashlib.sha512(archive.read_bytes()).digest()).decode()
    if digest != REVEAL_INTEGRITY:
        raise RevealMissing(f"{display_path(archive)} is not {REVEAL_PACKAGE} as the npm registry publishes it "
                            f"(its sha512 differs): delete it, then build again to fetch it with npm")
    return archive


def fetch_reveal(cache: Path) -> None:
    """`npm pack` the pinned reveal.js into the cache."""
    cache.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["npm", "pack", REVEAL_PACKAGE, "--pack-destination", str(cache)],
                       check=True, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as error:
        detail = str(getattr(error, "stderr", None) or error).strip()[:300]
        raise RevealMissing(
            f"the slides need {REVEAL_PACKAGE}, which is not in {display_path(cache)}, and npm could not fetch it:\n"
            f"  {detail}\n"
            f"To provide it, run `npm pack {REVEAL_PACKAGE} --pack-destination {display_path(cache)}` where npm reaches "
            f"its registry, or put {REVEAL_TARBALL} (https://registry.npmjs.org/reveal.js/-/{REVEAL_TARBALL}) "
            f"in {display_path(cache)} by hand; or build with --no-site") from None
    if not (cache / REVEAL_TARBALL).is_file():
        raise RevealMissing(f"npm pack {REVEAL_PACKAGE} wrote no {REVEAL_TARBALL} in {display_path(cache)}")


def install_reveal(archive: Path, target: Path) -> None:
    """Unpack what the slides load (dist/ without source maps, the notes plugin, the licence) into the site."""
    shutil.rmtree(target, ignore_errors=True)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            inner = member.name.partition("/")[2]  # npm packs everything under package/
            wanted = inner == "LICENSE" or inner.startswith("plugin/notes/") or (
                inner.startswith("dist/") and not inner.endswith(".map"))
            if member.isfile() and wanted and ".." not in inner.split("/"):
                destination = target / inner
                destination.parent.mkdir(parents=True, exist_ok=True)
                destination.write_bytes(tar.extractfile(member).read())


def write_index(records: list[dict], site: Path) -> None:
    rows = []
    for entry in records:
        name = html.escape(entry["chapter"])
        links = (f'<a href="{name}.html">page</a> · <a href="{name}.slides.html">slides</a> · '
                 f'<a href="notebooks/{name}.ipynb">notebook</a>')
        rows.append(f'<tr class="{entry["status"]}"><td><a href="{name}.html">{_inline_code(entry["title"])}</a></td>'
                    f'<td>{entry["status"]}</td><td>{entry[PASSED]}</td><td>{entry[FAILED]}</td>'
                    f'<td>{entry[SKIPPED]}</td><td>{entry["device"]}</td><td>{html.escape(entry["torch"])}</td>'
                    f'<td>{links}</td></tr>')
    drift = (' What changed between two versions of torch, claim by claim: <a href="drift.html">the drift report</a>.'
             if (site / "drift.html").is_file() else "")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>PyTorch, Traced</title>
<style>body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; }}
td, th {{ padding: 0.2em 0.8em; text-align: left; }} tr.failed td {{ color: #b00; }}</style></head>
<body><h1>PyTorch, Traced</h1>
<table><tr><th>Chapter</th><th>Status</th><th>Claims passed</th><th>failed</th><th>skipped</th>
<th>Device</th><th>Torch</th><th></th></tr>
{chr(10).join(rows)}
</table>
<p>Every claim, with its chapter and cell: <a href="claims.json">claims.json</a>.{drift}</p>
</body></html>
"""
    (site / "index.html").write_text(page, encoding="utf-8")


def merged_ledger(runs: list[ChapterRun], site: Path, all_chapters: list[Path]) -> dict:
    """This build's chapters, plus the earlier build's entries for chapters that still exist and were not rebuilt."""
    previous = {}
    if (site / "claims.json").is_file():
        previous = json.loads((site / "claims.json").read_text(encoding="utf-8"))
    kept = {path.stem for path in all_chapters} - {run.name for run in runs}
    records = [entry for entry in previous.get("chapters", []) if entry["chapter"] in kept]
    records += [run.record() for run in runs]
    claims = [entry for entry in previous.get("claims", []) if entry["chapter"] in kept]
    claims += [entry for run in runs for entry in run.claims]
    records.sort(key=lambda entry: entry["chapter"])
    claims.sort(key=lambda entry: entry["chapter"])
    summary = {"chapters": len(records), "failed_chapters": sum(entry["status"] == "failed" for entry in records),
               **{status: sum(entry[status] for entry in records) for status in (PASSED, FAILED, SKIPPED)}}
    return {"summary": summary, "chapters": records, "claims": claims}


def write_site(runs: list[ChapterRun], site: Path, reveal: Path, all_chapters: list[Path]) -> None:
    site.mkdir(parents=True, exist_ok=True)
    install_reveal(reveal, site / "reveal.js")
    page_exporter, slides_exporter = exporters()
    for run in runs:
        write_pages(run, site, page_exporter, slides_exporter)
    ledger = merged_ledger(runs, site, all_chapters)
    (site / "claims.json").write_text(json.dumps(ledger, indent=1) + "\n", encoding="utf-8")
    write_index(ledger["chapters"], site)


# -- the command line -------------------------------------------------------------------------------

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


if __name__ == "__main__":
    sys.exit(main())
