"""The book: chapters run headless, their notebooks, the site and slides, and the drift report, a module each.

    chapter.py   reading ``chapters/NN-slug.md`` (MyST Markdown) as a notebook
    run.py       running a chapter in a fresh kernel, every claim filed under its cell; Run All twice
    notebook.py  the committed notebook, its solutions page, and the check that notebooks/ is in sync
    site.py      the offline site: a page and reveal.js slides per chapter, the index, claims.json
    drift.py     the chapters on a second torch against the book's, claim by claim and trace by trace
    build.py     the command line: ``python -m tracer book [build|check-sync|drift]``

Each chapter runs in a fresh kernel of this interpreter, in the chapters' folder, with ``TRACER_LEDGER``
naming a file the kernel appends its claims to, so every claim is filed under the cell that made it.
"""

from .build import build, main
from .chapter import chapter_files, display_path, first_line, read_chapter, split_at_headings
from .notebook import clean_notebook, is_solution, sync_problems, write_notebook
from .run import ANSI, CELL_TIMEOUT_S, ChapterRun, run_chapter
from .site import REVEAL_PACKAGE, REVEAL_TARBALL, RevealMissing, reveal_archive

__all__ = ["ANSI", "CELL_TIMEOUT_S", "ChapterRun", "REVEAL_PACKAGE", "REVEAL_TARBALL", "RevealMissing", "build",
           "chapter_files", "clean_notebook", "display_path", "first_line", "is_solution", "main", "read_chapter",
           "reveal_archive", "run_chapter", "split_at_headings", "sync_problems", "write_notebook"]
