"""The book pipeline on tiny chapters written here: claims ledger, exit codes, errors, notebooks, site, slides."""

import contextlib
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from tracer import book
from tracer.claims import FAILED, claim_line

from conftest import FRONT_MATTER

pytest.importorskip("torch")
pytestmark = pytest.mark.chapter

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "cache"  # reveal.js is fetched once per checkout, not on every run

CHAPTERS = {
    "01-passing": '''
# 01. Passing

What this chapter asks.

## Read

```{code-cell} ipython3
import torch, tracer
tracer.link(torch.nn.Module.state_dict)
```

Two parameters:

```{code-cell} ipython3
tracer.claim_equal("a linear layer has two parameters", len(list(torch.nn.Linear(2, 2).parameters())), 2)
```

```{code-cell} ipython3
print("## not a heading: code output")
```

## Exercises

Count the parameters of a layer without bias.

```{code-cell} ipython3
:tags: [exercise]

layer = torch.nn.Linear(2, 2, bias=False)
# your code here
```

```{code-cell} ipython3
:tags: [solution]

tracer.claim_equal("a bias-free linear layer has one parameter",
                   len(list(torch.nn.Linear(2, 2, bias=False).parameters())), 1)
```
''',
    "02-failing-claim": '''
# 02. Failing claim

```{code-cell} ipython3
import tracer
tracer.claim("two equals three", 2 == 3, detail="arithmetic says otherwise")
```

```{code-cell} ipython3
print("never runs")
```
''',
    "03-raising": '''
# 03. Raising

```{code-cell} ipython3
import tracer
tracer.claim("one equals one", 1 == 1)
```

## Run

```{code-cell} ipython3
# the cell that breaks
raise ValueError("boom in the chapter")
```
''',
    "04-skipped": '''
# 04. Skipped

## A skipped claim

```{code-cell} ipython3
import torch, tracer
tracer.skip("a claim skipped on every machine", "this test chapter always skips it")
print("skipped: on every machine")
tracer.claim("ones are ones", bool(torch.ones(2).eq(1).all()))
```
''',
    "05-caught-claim": '''
# 05. Caught claim

```{code-cell} ipython3
import tracer
try:
    tracer.claim("two equals three, caught", 2 == 3, detail="the cell catches the ClaimError")
except tracer.ClaimError:
    print("caught: the cell runs on")
```
''',
}


def write_chapters(folder: Path, names=tuple(CHAPTERS)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / f"{name}.md").write_text(FRONT_MATTER + CHAPTERS[name], encoding="utf-8")
    return folder


def run_main(*argv) -> SimpleNamespace:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = book.main([str(arg) for arg in argv])
    return SimpleNamespace(code=code, out=out.getvalue(), err=err.getvalue())


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One build of the test chapters, shared by the tests that read what it wrote."""
    root = tmp_path_factory.mktemp("book")
    chapters = write_chapters(root / "chapters")
    result = run_main("build", "--chapters-dir", chapters, "--notebooks", root / "notebooks",
                      "--site", root / "site", "--cache", CACHE)
    ledger = json.loads((root / "site" / "claims.json").read_text(encoding="utf-8"))
    return SimpleNamespace(root=root, chapters=chapters, notebooks=root / "notebooks", site=root / "site",
                           ledger=ledger, **vars(result))


def notebook(built, name):
    return nbformat.read(built.notebooks / f"{name}.ipynb", as_version=4)


def claims_of(built, chapter):
    return [entry for entry in built.ledger["claims"] if entry["chapter"] == chapter]


def test_build_fails_when_a_claim_fails_or_a_cell_raises(built):
    assert built.code == 1
    statuses = {entry["chapter"]: entry["status"] for entry in built.ledger["chapters"]}
    assert statuses == {"01-passing": "passed", "02-failing-claim": "failed", "03-raising": "failed",
                        "04-skipped": "passed", "05-caught-claim": "failed"}
    assert built.ledger["summary"] == {"chapters": 5, "failed_chapters": 3, "passed": 4, "failed": 2, "skipped": 1}


def test_a_failed_claim_fails_its_chapter_even_when_the_cell_catches_it(built):
    caught = next(entry for entry in built.ledger["chapters"] if entry["chapter"] == "05-caught-claim")
    assert (caught["status"], caught["error"], caught[FAILED]) == ("failed", None, 1)
    assert "failed claim (cell 1, " in built.out and "two equals three, caught" in built.out


def test_each_claim_is_filed_under_the_cell_that_made_it(built):
    for chapter in CHAPTERS:
        cells = book.read_chapter(built.chapters / f"{chapter}.md").cells
        for entry in claims_of(built, chapter):
            cell = cells[entry["cell"]]
            assert entry["claim"] in cell.source, (chapter, entry)
            assert entry["source"] == cell.source.splitlines()[0]
    failed, = claims_of(built, "02-failing-claim")
    assert (failed["status"], failed["detail"]) == ("failed", "arithmetic says otherwise")
    skipped, passed = claims_of(built, "04-skipped")
    assert (skipped["status"], skipped["detail"]) == ("skipped", "this test chapter always skips it")
    assert passed["status"] == "passed" and passed["cell"] == skipped["cell"]
    assert [entry["status"] for entry in claims_of(built, "03-raising")] == ["passed"]


def test_a_raising_cell_is_named_with_its_chapter_line_and_error(built):
    lines = (built.chapters / "03-raising.md").read_text(encoding="utf-8").splitlines()
    fence = next(number for number, text in enumerate(lines, 1) if "# the cell that breaks" in text) - 1
    header = "03-raising failed at cell 3 ("
    assert header in built.err
    named = built.err[built.err.index(header):].splitlines()[0]
    assert named.endswith(f"03-raising.md:{fence}): # the cell that breaks")
    assert "ValueError: boom in the chapter" in built.err
    error = next(entry["error"] for entry in built.ledger["chapters"] if entry["chapter"] == "03-raising")
    assert error.startswith(named) and "ValueError: boom in the chapter" in error


def test_a_failed_claim_names_its_chapter_and_cell(built):
    assert "02-failing-claim failed at cell 1 (" in built.err
    assert "ClaimError: claim failed: two equals three" in built.err
    assert "failed claim (cell 1, " in built.out


def test_summary_table_lists_every_chapter(built):
    table = built.out[built.out.index("chapter  "):]
    assert table.splitlines()[0].split() == ["chapter", "status", "seconds", "device", "torch", "passed", "failed", "skipped"]
    rows = {line.split()[0]: line.split() for line in table.splitlines()[1:len(CHAPTERS) + 1]}
    assert list(rows) == list(CHAPTERS)
    assert rows["01-passing"][1] == "passed" and rows["01-passing"][5:] == ["2", "0", "0"]
    assert rows["02-failing-claim"][1] == "failed" and rows["02-failing-claim"][5:] == ["0", "1", "0"]
    assert rows["04-skipped"][5:] == ["1", "0", "1"]
    assert rows["05-caught-claim"][1] == "failed" and rows["05-caught-claim"][5:] == ["0", "1", "0"]
    assert all(row[3] in ("cpu", "cuda") for row in rows.values())


def test_only_passing_chapters_are_written_to_notebooks(built):
    assert sorted(path.name for path in built.notebooks.glob("*.ipynb")) == ["01-passing.ipynb", "04-skipped.ipynb"]
    for name in ("02-failing-claim", "05-caught-claim"):
        target = book.display_path(built.notebooks / f"{name}.ipynb")
        assert f"no notebook written ({target} does not exist)" in built.out
    assert "left as it was" not in built.out


def test_a_failing_chapter_leaves_an_earlier_notebook_as_it_was(built, tmp_path):
    earlier = tmp_path / "02-failing-claim.ipynb"
    shutil.copy(built.notebooks / "01-passing.ipynb", earlier)
    before = earlier.read_bytes()
    result = run_main("build", "2", "--chapters-dir", built.chapters, "--notebooks", tmp_path, "--no-site")
    assert result.code == 1
    assert f"{book.display_path(earlier)} left as it was" in result.out and "no notebook written" not in result.out
    assert earlier.read_bytes() == before


def test_notebook_has_outputs_hidden_solutions_slides_and_clean_metadata(built):
    nb = notebook(built, "01-passing")
    assert [cell.id for cell in nb.cells] == [f"cell-{index}" for index in range(len(nb.cells))]
    assert set(nb.metadata) == {"kernelspec", "language_info"}
    assert nb.metadata.language_info.version == ".".join(map(str, sys.version_info[:3]))  # as Jupyter would write it
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == [1, 2, 3, 4]
    assert "github.com/pytorch/pytorch/blob/" in code[0].outputs[0]["data"]["text/markdown"]
    for cell in nb.cells:
        assert "execution" not in cell.metadata and "solution" not in cell.metadata.get("tags", [])
    assert "exercise" in code[-1].metadata.tags and code[-1].outputs == []
    slides = [(cell.metadata.slideshow.slide_type, cell.source.splitlines()[0]) for cell in nb.cells]
    assert [line for kind, line in slides if kind == "slide"] == ["# 01. Passing", "## Read", "## Exercises"]
    assert all(kind in ("-", "subslide", "slide") for kind, _ in slides)


def test_a_solution_is_in_no_cell_of_the_notebook_but_in_its_solutions_files(built):
    nb = notebook(built, "01-passing")
    shown = json.dumps(nb.cells)
    assert "bias-free" not in shown  # neither the solution's source nor its claim's line
    link = nb.cells[-1]
    assert link.cell_type == "markdown" and link.id == f"cell-{len(nb.cells) - 1}"
    assert link.source.startswith("[Solution 1](solutions/01-passing.md#exercise-1)")
    assert "`%load solutions/01-passing-1.py`" in link.source
    chapter = book.read_chapter(built.chapters / "01-passing.md").cells[-1]
    script = built.notebooks / "solutions" / "01-passing-1.py"
    assert script.read_text(encoding="utf-8") == chapter.source + "\n"
    page = (built.notebooks / "solutions" / "01-passing.md").read_text(encoding="utf-8")
    assert "\n## Exercise 1\n\n```python\n" + chapter.source + "\n```\n" in page
    assert "```text\n✓ a bias-free linear layer has one parameter\n```" in page
    assert sorted(path.name for path in (built.notebooks / "solutions").iterdir()) == ["01-passing-1.py", "01-passing.md"]


def test_check_sync_covers_the_solutions_files(built, tmp_path):
    chapters = write_chapters(tmp_path / "chapters", ("01-passing", "04-skipped"))
    notebooks = tmp_path / "notebooks"
    shutil.copytree(built.notebooks, notebooks)
    assert book.sync_problems(chapters, notebooks) == []
    solutions = notebooks / "solutions"
    script = solutions / "01-passing-1.py"
    script.write_text(script.read_text(encoding="utf-8").replace("one parameter", "1 parameter"), encoding="utf-8")
    (solutions / "01-passing-2.py").write_text("print()\n", encoding="utf-8")
    (solutions / "07-gone.md").write_text("# Solutions\n", encoding="utf-8")
    page = solutions / "01-passing.md"
    page.write_text(page.read_text(encoding="utf-8").replace("bias=False", "bias=True"), encoding="utf-8")
    assert book.sync_problems(chapters, notebooks) == [
        "01-passing: solutions/01-passing.md does not hold the chapter's solutions".replace(
            "solutions/", book.display_path(solutions) + "/", 1),
        f"01-passing: {book.display_path(script)} is missing or differs from solution 1",
        f"01-passing: {book.display_path(solutions / '01-passing-2.py')} belongs to no solution",
        f"07-gone.md: {book.display_path(solutions / '07-gone.md')} belongs to no chapter in {book.display_path(chapters)}"]
    page.unlink()
    assert f"01-passing: solutions page {book.display_path(page)} is missing" in book.sync_problems(chapters, notebooks)


def test_rebuilding_passing_chapters_exits_zero_and_changes_no_byte(built, tmp_path):
    result = run_main("build", "1", "4", "--chapters-dir", built.chapters, "--notebooks", tmp_path, "--no-site")
    assert result.code == 0, result.err
    for name in ("01-passing", "04-skipped"):
        assert (tmp_path / f"{name}.ipynb").read_bytes() == (built.notebooks / f"{name}.ipynb").read_bytes()


def test_site_has_index_pages_slides_and_ledger(built):
    index = (built.site / "index.html").read_text(encoding="utf-8")
    for name in CHAPTERS:
        for target in (f"{name}.html", f"{name}.slides.html", f"notebooks/{name}.ipynb"):
            assert f'href="{target}"' in index
            assert (built.site / target).is_file()
    assert re.search(r'<tr class="failed"><td><a href="03-raising.html">03. Raising</a></td><td>failed</td>', index)
    page = (built.site / "01-passing.html").read_text(encoding="utf-8")
    solution = page[page.index('<details class="solution"><summary>'):]
    summary = solution[:solution.index("</summary>")]
    assert re.sub(r"<[^>]+>", "", summary) == "Solution"
    assert "bias-free" in solution[:solution.index("</details>")]
    slides = (built.site / "01-passing.slides.html").read_text(encoding="utf-8")
    assert '<script src="reveal.js/dist/reveal.js">' in slides and "Reveal.initialize" in slides
    assert slides.count("<section") >= 3
    assert (built.site / "reveal.js" / "dist" / "reveal.js").is_file()
    assert (built.site / "reveal.js" / "plugin" / "notes" / "notes.js").is_file()


def test_site_loads_nothing_from_the_network(built):
    for page in built.site.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"\bsrc=[\"']?https?:", text), page.name
        for url in re.findall(r"\bhref=[\"']?(https?:[^\"'\s>]+)", text):
            assert url.startswith("https://github.com/"), (page.name, url)
        for cdn in ("cdnjs", "unpkg", "googleapis", "jsdelivr"):
            assert cdn not in text, (page.name, cdn)


def test_building_one_chapter_keeps_the_others_in_the_ledger(built, tmp_path):
    site = tmp_path / "site"
    shutil.copytree(built.site, site)
    result = run_main("build", "4", "--chapters-dir", built.chapters, "--notebooks", tmp_path / "nb",
                      "--site", site, "--cache", CACHE)
    assert result.code == 0
    ledger = json.loads((site / "claims.json").read_text(encoding="utf-8"))
    assert [entry["chapter"] for entry in ledger["chapters"]] == list(CHAPTERS)
    assert ledger["summary"] == built.ledger["summary"]


def test_the_committed_drift_report_is_a_page_of_the_site(built, tmp_path):
    assert not (built.site / "drift.html").exists() and "drift.html" not in (built.site / "index.html").read_text()
    notebooks = tmp_path / "nb"
    notebooks.mkdir()
    (notebooks / "DRIFT.md").write_text("# The book on two versions of torch\n\n| claim | a | b |\n|---|---|---|\n"
                                        "| x | passed | failed |\n", encoding="utf-8")
    site = tmp_path / "site"
    result = run_main("build", "4", "--chapters-dir", built.chapters, "--notebooks", notebooks, "--site", site,
                      "--cache", CACHE)
    assert result.code == 0
    page = (site / "drift.html").read_text(encoding="utf-8")
    assert '<h1 id="The-book-on-two-versions-of-torch">' in page and "<td>failed</td>" in page
    assert 'href="drift.html"' in (site / "index.html").read_text(encoding="utf-8")


def test_check_sync_names_missing_and_changed_notebooks(built, tmp_path):
    result = run_main("check-sync", "--chapters-dir", built.chapters, "--notebooks", built.notebooks)
    assert result.code == 1
    assert "02-failing-claim: notebook" in result.err and "03-raising: notebook" in result.err
    assert "01-passing" not in result.err

    chapters = write_chapters(tmp_path / "chapters", ("01-passing", "04-skipped"))
    assert run_main("check-sync", "--chapters-dir", chapters, "--notebooks", built.notebooks).code == 0
    edited = chapters / "01-passing.md"
    edited.write_text(edited.read_text(encoding="utf-8").replace("Two parameters:", "Two parameters, live:"))
    result = run_main("check-sync", "--chapters-dir", chapters, "--notebooks", built.notebooks)
    assert result.code == 1 and "01-passing: cell sources differ from the chapter's, first at cell 3" in result.err


def test_chapters_are_chosen_by_number_or_path(built):
    every = book.chapter_files(built.chapters)
    assert [path.stem for path in every] == list(CHAPTERS)
    assert book.chapter_files(built.chapters, ["2", "04"]) == [every[1], every[3]]
    assert book.chapter_files(built.chapters, [str(every[0])]) == [every[0]]
    result = run_main("build", "9", "--chapters-dir", built.chapters)
    assert result.code == 2
    assert result.err.strip().endswith(f"no chapter '9' in {book.display_path(built.chapters)}: the chapters are "
                                       f"{', '.join(CHAPTERS)}")


def test_without_a_chapters_folder_the_command_says_where_to_run_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outside the repository: no chapters/ here
    for argv in (["build"], ["build", "2"], ["check-sync"]):
        result = run_main(*argv)
        assert result.code == 2, argv
        assert "no folder of chapters at 'chapters': run from the repository root, or pass --chapters-dir" in result.err
    (tmp_path / "chapters").mkdir()
    result = run_main("build", "2")
    assert result.code == 2 and "no chapter '2' in chapters: it holds none" in result.err


def test_headings_inside_code_fences_do_not_split_markdown():
    cell = nbformat.v4.new_markdown_cell("# Title\n\nText.\n\n```python\n## not a heading\n```\n## Section\n\nMore.")
    parts = book.split_at_headings(cell)
    assert [part.source for part in parts] == ["# Title\n\nText.\n\n```python\n## not a heading\n```", "## Section\n\nMore."]


def test_without_npm_or_the_pinned_tarball_the_build_fails_before_any_chapter_runs(tmp_path, monkeypatch):
    chapters = write_chapters(tmp_path / "chapters", ("01-passing",))
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "reveal.js-5.9.9.tgz").write_bytes(b"another version: not taken")
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm on this PATH
    result = run_main("build", "--chapters-dir", chapters, "--notebooks", tmp_path / "nb", "--site", tmp_path / "site",
                      "--cache", cache)
    assert result.code == 2 and "running" not in result.out
    for words in ("npm could not fetch it", book.REVEAL_PACKAGE, f"put {book.REVEAL_TARBALL}", str(cache), "--no-site"):
        assert words in result.err, words
    assert not (tmp_path / "nb").exists()


def test_the_pinned_tarball_in_the_cache_is_used_offline(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copy(book.reveal_archive(CACHE), cache)
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm on this PATH: the cached tarball must do
    assert book.reveal_archive(cache) == cache / book.REVEAL_TARBALL


def test_a_cached_tarball_that_is_not_the_published_one_is_refused(tmp_path):
    (tmp_path / book.REVEAL_TARBALL).write_bytes(b"truncated download")
    with pytest.raises(book.RevealMissing, match="its sha512 differs"):
        book.reveal_archive(tmp_path)


def test_a_cell_past_its_timeout_fails_the_chapter_naming_the_cell(tmp_path):
    chapter = tmp_path / "05-slow.md"
    chapter.write_text(FRONT_MATTER + "\n# 05. Slow\n\n```{code-cell} ipython3\nimport time\ntime.sleep(60)\n```\n",
                       encoding="utf-8")
    run = book.run_chapter(chapter, timeout=2)
    assert run.status == "failed"
    assert run.error.splitlines()[:2] == [f"05-slow failed at cell 1 ({book.display_path(chapter)}:14): import time",
                                          "timed out after 2 s"]


SHOWN_CLAIMS = '''
# 06. Shown claims

```{code-cell} ipython3
import torch, tracer
with tracer.trace() as t:
    torch.nn.Linear(2, 2)(torch.ones(1, 2))
tracer.claim("ones are ones", bool(torch.ones(2).eq(1).all()))
tracer.skip("a claim skipped on every machine", "this test chapter always skips it")
t.expect_path("Module._call_impl", "Linear.forward")
```

```{code-cell} ipython3
print("no claim here")
```

```{code-cell} ipython3
tracer.claim_equal("two equals three", 2, 3)
```
'''


def shown_text(cell) -> list[str]:
    """The text/plain of each display output of a cell, with the other formats it carries."""
    return [(output["data"]["text/plain"], sorted(output["data"])) for output in cell.outputs
            if output["output_type"] == "display_data"]


def test_each_cell_shows_its_claims_and_a_failed_one_fails_the_run(tmp_path):
    chapter = tmp_path / "06-shown-claims.md"
    chapter.write_text(FRONT_MATTER + SHOWN_CLAIMS, encoding="utf-8")
    run = book.run_chapter(chapter)
    code = [cell for cell in run.notebook.cells if cell.cell_type == "code"]
    by_cell = [[entry for entry in run.claims if entry["cell"] == run.notebook.cells.index(cell)] for cell in code]
    expected = ["✓ ones are ones", "skipped: a claim skipped on every machine (this test chapter always skips it)",
                "✓ Module._call_impl → Linear.forward runs, each inside the one before"]
    assert [claim_line(entry) for entry in by_cell[0]] == expected
    assert shown_text(code[0]) == [("\n".join(expected), ["text/plain"])]
    assert shown_text(code[1]) == [] and by_cell[1] == []
    failed, = by_cell[2]
    assert shown_text(code[2]) == [("✗ two equals three\n  found 2, expected 3", ["text/plain"])]
    assert failed["status"] == FAILED and run.status == "failed"
    assert "06-shown-claims failed at cell 3 (" in run.error and "ClaimError: claim failed: two equals three" in run.error


def test_a_plain_python_import_of_tracer_does_not_import_ipython():
    code = "import sys, tracer; print('IPython' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.split() == ["False"]


RUN_ALL_TWICE = '''
# 07. Run All twice

```{code-cell} ipython3
import tracer
runs = globals().get("runs", 0) + 1
tracer.claim("this cell runs for the first time in this kernel", runs == 1)
```

```{code-cell} ipython3
print("the last cell")
```
'''


def test_a_chapter_runs_twice_in_one_kernel_and_the_second_pass_can_fail_it(tmp_path):
    chapter = tmp_path / "07-twice.md"
    chapter.write_text(FRONT_MATTER + RUN_ALL_TWICE, encoding="utf-8")
    run = book.run_chapter(chapter, passes=2)
    assert run.status == "failed" and [entry["status"] for entry in run.claims] == ["passed"]
    first = run.error.splitlines()[0]
    assert first == (f"07-twice failed in the second pass (Run All again in the same kernel) at cell 1 "
                     f"({book.display_path(chapter)}:14): import tracer"), run.error
    assert "ClaimError: claim failed: this cell runs for the first time in this kernel" in run.error
    code = [cell for cell in run.notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == [1, 2]  # the notebook keeps the first pass, even past a failure
    assert shown_text(code[0]) == [("✓ this cell runs for the first time in this kernel", ["text/plain"])]
    once = book.run_chapter(chapter)  # make book runs each chapter once
    assert once.status == "passed" and once.error is None


def test_a_failed_claims_detail_is_cut_to_a_few_short_lines():
    detail = "\n".join(f"line {n}: " + "x" * 300 for n in range(5))
    shown = claim_line({"claim": "long", "status": FAILED, "detail": detail}).splitlines()
    assert shown[0] == "✗ long" and len(shown) == 5 and shown[-1] == "  …"
    assert all(len(line) <= 2 + 160 and line.endswith("…") for line in shown[1:4])
    assert claim_line({"claim": "fine", "status": "skipped", "detail": "no GPU"}) == "skipped: fine (no GPU)"
