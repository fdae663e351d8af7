"""Every chapter runs headless with no failed claim; notebooks/ matches chapters/; every pinned link holds.

A pinned link (``https://github.com/pytorch/pytorch/blob/<commit>/<path>#L<line>``, or pytorch/vision) must
name the installed commit and a file of the installed package (C++ sources the wheel does not ship may be
linked by path, without a line), and its line must hold what the link says: the anchor text where the link
carries one (a Markdown title, an HTML ``data-anchor``, or the first line of the excerpt shown under it),
else a ``def``, ``class`` or decorator line (for a traced lambda or comprehension, the line that starts it).
"""

import html
import importlib
import json
import re
from pathlib import Path

import nbformat
import pytest

from conftest import SKIPPED_CLAIMS
from tracer import book, source
from tracer.claims import FAILED, SKIPPED

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = book.chapter_files(ROOT / "chapters") if (ROOT / "chapters").is_dir() else []
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MIN_CLAIMS = 8

PINNED = re.compile(r"https://github\.com/(pytorch/(?:pytorch|vision))/blob/([0-9a-f]{7,40})/"
                    r"([^\s\"'<>()#\]\\]+)(?:#L(\d+))?")
MARKDOWN_TITLE = re.compile(r"\]\((https://github\.com/[^\s)]+) \"((?:[^\"\\]|\\.)*)\"\)")
EXCERPT = re.compile(r"\]\((https://github\.com/[^\s)]+)\)\s*\n\s*\n`{3,}[\w+-]*\n([^\n]*)\n")
HTML_LINK = re.compile(r"<a\s[^>]*>")
HTML_ATTRIBUTE = re.compile(r"([\w-]+)=\"([^\"]*)\"")
DEFINITION = re.compile(r"\s*(async\s+def\s|def\s|class\s|@|- func:)")
# a traced lambda or comprehension is a call whose first line is the expression, not a def
LAMBDA = re.compile(r"\blambda\b")
COMPREHENSION_FOR = re.compile(r"\bfor\b.+\bin\b")
OPENING = {"(": ")", "[": "]", "{": "}"}
C_SOURCES = source.SOURCE_SUFFIXES


@pytest.mark.chapter
@pytest.mark.parametrize("chapter", CHAPTERS, ids=[path.stem for path in CHAPTERS])
def test_chapter_runs_with_no_failed_claim(chapter):
    run = book.run_chapter(chapter, passes=2)  # Run All twice in one kernel: a failure in either pass fails the test
    for entry in run.claims:
        if entry["status"] == SKIPPED:
            SKIPPED_CLAIMS.append((chapter.stem, entry["cell"], entry["claim"], entry["detail"]))
    if run.error:
        pytest.fail(run.error, pytrace=False)
    failed = [f"cell {entry['cell']}: {entry['claim']}: {entry['detail']}" for entry in run.claims
              if entry["status"] == FAILED]
    if failed:
        pytest.fail("failed claims:\n" + "\n".join(failed), pytrace=False)
    checked = len(run.claims) - run.count(SKIPPED)
    assert checked >= MIN_CLAIMS, f"{chapter.stem} checks {checked} claims; a chapter checks at least {MIN_CLAIMS}"
    tries = {index for index, cell in enumerate(run.notebook.cells) if "exercise" in cell.metadata.get("tags", [])}
    told = [f"cell {entry['cell']}: {entry['claim']}" for entry in run.claims if entry["cell"] in tries]
    assert not told, "an exercise's try cell shows no answer, so it makes no claim:\n" + "\n".join(told)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[path.stem for path in CHAPTERS])
def test_every_solution_follows_a_try_cell(chapter):
    code = [cell for cell in book.read_chapter(chapter).cells if cell.cell_type == "code"]
    solutions = [(before, cell) for before, cell in zip(code, code[1:]) if book.is_solution(cell)]
    assert solutions, f"{chapter.stem} has no exercise with a solution"
    lone = [book.first_line(cell) for before, cell in solutions if "exercise" not in before.metadata.get("tags", [])]
    assert not lone, f"{chapter.stem}: solutions whose code cell before is not tagged exercise: {lone}"


@pytest.mark.skipif(not CHAPTERS, reason="no chapters yet")
def test_notebooks_in_sync_with_chapters():
    problems = book.sync_problems(ROOT / "chapters", ROOT / "notebooks")
    if problems:
        pytest.fail("rebuild with `python -m tracer.book build`:\n" + "\n".join(problems), pytrace=False)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_pinned_links_point_at_installed_source(notebook):
    problems = link_problems(nbformat.read(notebook, as_version=4))
    assert not problems, "\n".join(problems)


# -- the link checker, and that it can fail ----------------------------------------------------------

def notebook_texts(nb) -> list[str]:
    """Everything a reader sees: markdown sources and every output, in every format it carries."""
    texts = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            texts.append(cell.source)
        for output in cell.get("outputs", []):
            if "text" in output:
                texts.append(output["text"])
            texts.extend(value if isinstance(value, str) else json.dumps(value) for value in output.get("data", {}).values())
    return texts


def anchors_by_url(texts: list[str]) -> dict[str, set[str]]:
    """What each link says its line holds: a Markdown title, an HTML data-anchor, the first line of an excerpt."""
    anchors: dict[str, set[str]] = {}
    for text in texts:
        for url, title in MARKDOWN_TITLE.findall(text):
            anchors.setdefault(url, set()).add(re.sub(r"\\(.)", r"\1", title))
        for url, line in EXCERPT.findall(text):
            anchors.setdefault(url, set()).add(line.strip())
        for tag in HTML_LINK.findall(text):
            attributes = {key: html.unescape(value) for key, value in HTML_ATTRIBUTE.findall(tag)}
            if "href" in attributes and "data-anchor" in attributes:
                anchors.setdefault(attributes["href"], set()).add(attributes["data-anchor"])
    return anchors


def installed_relpath(repo_path: str) -> str | None:
    """The installed file shipped for a repository path: the inverse of source.repo_path."""
    moved = [wheel + repo_path[len(repo):] for wheel, repo in source._MOVED if repo_path.startswith(repo)]
    for relpath in [*moved, repo_path]:
        if source.repo_path(relpath) == repo_path and source.installed_file(relpath):
            return relpath
    return None


def installed_commit(repository: str) -> str | None:
    top = next(top for top, (repo, _) in source.REPOSITORIES.items() if repo == repository)
    importlib.import_module(top)
    return source.commit_of(top)


def link_problem(url, repository, commit, path, line, anchors) -> str | None:
    installed = installed_commit(repository)
    if commit != installed:
        return f"{url}: commit {commit} is not the installed one ({installed})"
    relpath = installed_relpath(path)
    if relpath is None:
        if not line and path.endswith(C_SOURCES):
            return None
        return f"{url}: {path} is not in the installed package"
    if not line:
        return None
    lines = source.repository_lines(source.installed_file(relpath))  # as the repository has it (headers lose their guard)
    if not 1 <= int(line) <= len(lines):
        return f"{url}: {relpath} has {len(lines)} lines, not {line}"
    text = lines[int(line) - 1]
    missing = [anchor for anchor in sorted(anchors) if anchor not in text]
    if missing:
        return f"{url}: line {line} is {text.strip()!r}, which does not hold {missing[0]!r}"
    if not anchors and not (DEFINITION.match(text) or starts_expression_call(text)):
        return f"{url}: line {line} is {text.strip()!r}: not a def, class or decorator, and the link names no anchor"
    return None


def starts_expression_call(text: str) -> bool:
    """The first line of a lambda, or of a comprehension: a bracket whose own level holds ``for … in``."""
    if LAMBDA.search(text):
        return True
    return any(COMPREHENSION_FOR.search(bracket_level(text, start)) for start, char in enumerate(text) if char in OPENING)


def bracket_level(text: str, start: int) -> str:
    """What the bracket opened at `start` holds outside its inner brackets, up to its close or the line's end."""
    depth, kept = 0, []
    for char in text[start + 1:]:
        if char in OPENING:
            depth += 1
        elif char in OPENING.values():
            if depth == 0:
                break
            depth -= 1
        elif depth == 0:
            kept.append(char)
    return "".join(kept)


def link_problems(nb) -> list[str]:
    """Every pinned GitHub link in a notebook that is not at the installed commit, file and line it says."""
    texts = notebook_texts(nb)
    anchors = anchors_by_url(texts)
    problems, seen = [], set()
    for text in texts:
        for match in PINNED.finditer(text):
            if match.group(0) not in seen:
                seen.add(match.group(0))
                problems.append(link_problem(match.group(0), *match.groups(), anchors.get(match.group(0), set())))
    return [problem for problem in problems if problem]


def notebook_showing(markdown: str):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("link()")
    cell.outputs = [nbformat.v4.new_output("execute_result", {"text/markdown": markdown}, execution_count=1)]
    nb.cells = [cell]
    return nb


def test_link_checker_accepts_live_links_and_rejects_wrong_ones():
    torch = pytest.importorskip("torch")
    import tracer
    state_dict = tracer.link(torch.nn.Module.state_dict)
    anchored = tracer.link("torch/__init__.py", "from torch._C import *")
    stub = tracer.link("torch/csrc/stub.c")
    excerpt = tracer.read("torch/__init__.py", "from torch._C import *", lines=2)
    assert link_problems(notebook_showing(f"- {state_dict}\n- {stub}\n\n{excerpt._repr_markdown_()}")) == []
    titled = f'[{anchored.text}]({anchored.url} "from torch._C import *")'
    assert link_problems(notebook_showing(titled)) == []

    commit = torch.version.git_version
    base = f"https://github.com/pytorch/pytorch/blob/{commit}"
    wrong = {
        "not the installed one": state_dict.url.replace(commit, "0" * 40),
        "not in the installed package": f"{base}/torch/nn/no_such_file.py#L1",
        "not a def": f"{base}/torch/nn/modules/module.py#L{state_dict.line + 1}",
        "does not hold": f'{anchored.url} "import nothing_like_this"',
        "lines, not": f"{base}/torch/nn/modules/module.py#L999999",
    }
    for words, target in wrong.items():
        problems = link_problems(notebook_showing(f"[x]({target})"))
        assert len(problems) == 1 and words in problems[0], (words, problems)


def test_link_checker_maps_repository_paths_to_the_wheel():
    pytest.importorskip("torch")
    assert installed_relpath("torch/nn/modules/module.py") == "torch/nn/modules/module.py"
    assert installed_relpath("aten/src/ATen/native/native_functions.yaml") == "torchgen/packaged/ATen/native/native_functions.yaml"
    assert installed_relpath("torch/csrc/stub.c") is None


@pytest.mark.parametrize("line, starts", [
    ("        return [self._modules[name] for name in names]", True),
    ("    total = sum(p.numel() for p in params)", True),
    ("    keys = {key: value for key, value in pairs.items()", True),  # the comprehension goes on below
    ("    hook = lambda module, args: None", True),
    ("        for name, param in self._parameters.items():", False),
    ("    print(f(x) for_each in y)", False),
    ("    if name in self._buffers:", False),
    ("    call(f(x), [y])  # for each x in y", False),
])
def test_link_checker_takes_only_lambda_and_comprehension_lines_as_call_lines(line, starts):
    assert starts_expression_call(line) is starts


def test_link_checker_rejects_a_for_statement_as_a_call_line():
    torch = pytest.importorskip("torch")
    relpath = "torch/nn/modules/module.py"
    lines = source.file_lines(source.installed_file(relpath))
    number = next(n for n, text in enumerate(lines, 1) if re.match(r"\s*for\s.+\sin\s.+:$", text))
    url = f"https://github.com/pytorch/pytorch/blob/{torch.version.git_version}/{relpath}#L{number}"
    problems = link_problems(notebook_showing(f"[x]({url})"))
    assert len(problems) == 1 and "not a def" in problems[0], problems
