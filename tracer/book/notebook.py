"""The committed notebook: cleaned of what changes from run to run, its solutions moved to a page GitHub shows
and a file a reader can ``%load``, and the check that ``notebooks/`` was built from the current chapters."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .chapter import chapter_files, display_path, read_chapter, title_of
from .run import ANSI, ChapterRun

ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # in reprs: differs on every run (nbdev_clean strips it too)


def clean_notebook(nb) -> nbformat.NotebookNode:
    """The notebook as committed: no timings, no jupytext noise, no widget state, no memory addresses, so a rebuild
    diffs only where outputs changed. The kernel's language_info stays whole (its version too: the same on each
    build here): a client that opens the notebook finds what it would add, and does not mark it modified."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    nb.metadata.pop("jupytext", None)
    nb.metadata.pop("widgets", None)  # GitHub refuses a notebook whose widget metadata lacks its state
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if "outputs" in cell:
            cell.outputs = coalesced(cell.outputs)
        for output in cell.get("outputs", []):
            output.pop("transient", None)
            if "text" in output:
                output.text = ADDRESS.sub("", output.text)
            for mime, value in output.get("data", {}).items():
                if mime.startswith("text/") and isinstance(value, str):
                    output.data[mime] = ADDRESS.sub("", value)
    return nb


def coalesced(outputs: list) -> list:
    """Consecutive stream outputs of one stream as one: the kernel splits a cell's printing where it pleases, so
    the same prints could land as one output in one build and two in the next."""
    out = []
    for output in outputs:
        if (output.get("output_type") == "stream" and out and out[-1].get("output_type") == "stream"
                and out[-1].get("name") == output.get("name")):
            out[-1].text += output.text
        else:
            out.append(output)
    return out


def write_notebook(run: ChapterRun, notebooks_dir: Path) -> Path:
    """The notebook without its solutions, which go to ``solutions/NN-slug.md`` (and one ``.py`` each) beside it."""
    notebooks_dir.mkdir(parents=True, exist_ok=True)
    target = notebooks_dir / f"{run.name}.ipynb"
    nb, solutions = split_solutions(clean_notebook(run.notebook), run.name)
    nbformat.write(nb, target)
    write_solutions(solutions, notebooks_dir / SOLUTIONS_DIR, run.name, title_of(nb, run.name))
    return target


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
