"""Reading a chapter: ``chapters/NN-slug.md`` (MyST Markdown, read by jupytext) as a notebook, split at its headings,
with stable cell ids, slide and solution metadata."""

from __future__ import annotations

import html
import re
from pathlib import Path

import jupytext
import nbformat


HEADING = re.compile(r"^#{1,2} ")
FENCE = re.compile(r"^(`{3,}|~{3,})")
CODE_CELL = re.compile(r"^(`{3,}|~{3,})\{code-cell\}")


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


def inline_code(title: str) -> str:
    """A chapter title's `code` spans as <code>, the rest escaped."""
    parts = html.escape(title).split("`")
    return "".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts))


def title_of(nb, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("# "):
            return cell.source.splitlines()[0][2:].strip()
    return fallback


def display_path(path: Path) -> str:
    """The path relative to the working folder where it lies below it, else as given."""
    try:
        return Path(path).resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)
