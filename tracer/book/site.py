"""The site: one page and one reveal.js slide deck per chapter, an index and the claims ledger, all offline.

The slides load reveal.js from the site: the build takes the pinned tarball (``REVEAL_TARBALL``) from the cache
(``build/cache``), fetching it there with npm once, and fails when it can have it neither way."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import nbformat
from jinja2 import DictLoader

from ..claims import FAILED, PASSED, SKIPPED
from .chapter import inline_code, display_path, title_of
from .run import ChapterRun
from .notebook import clean_notebook

REVEAL_VERSION = "5.2.1"
REVEAL_PACKAGE = f"reveal.js@{REVEAL_VERSION}"
REVEAL_TARBALL = f"reveal.js-{REVEAL_VERSION}.tgz"  # the file name npm pack gives it
# the registry's dist.integrity for that version (npm view reveal.js@5.2.1 dist.integrity): a cached file must match it
REVEAL_INTEGRITY = "sha512-r7//6mIM5p34hFiDMvYfXgyjXqGRta+/psd9YtytsgRlrpRzFv4RbH76TXd2qD+7ZPZEbpBDhdRhJaFgfQ7zNQ=="
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
        rows.append(f'<tr class="{entry["status"]}"><td><a href="{name}.html">{inline_code(entry["title"])}</a></td>'
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
