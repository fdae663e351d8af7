"""The exported pages and a built chapter in a real browser: headless Chromium, with JavaScript on and off.

Every page is opened with the DevTools Network domain on, and the tests check that nothing it
loads leaves the machine. Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON
messages ending in a NUL byte, commands on fd 3, replies on fd 4), so the Python standard
library is all it needs. ``.ci/install-browser.sh`` installs Debian's chromium.
"""

import importlib
import json
import os
import re
import select
import subprocess
import sys
import time

import pytest

import tracer
from test_html import EVIL, EVIL_ARGUMENT, write_package
from tracer.render.html import render_page, step_through

CHROMIUM = "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")
TIMEOUT = 60
OFFLINE = ("file:", "data:", "about:", "blob:")  # schemes a page may load from without the network

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason=f"headless Chromium is not installed at {CHROMIUM}: run .ci/install-browser.sh"),
]


class Chromium:
    """A headless Chromium and its DevTools connection."""

    def __init__(self, profile):
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()

        def onto_fds_3_and_4():  # where --remote-debugging-pipe looks; dup first so neither overwrites the other
            commands, replies = os.dup(commands_read), os.dup(replies_write)
            os.dup2(commands, 3)
            os.dup2(replies, 4)

        # fds 3 and 4 are open here (had either been free, a pipe would have taken it), so pass_fds may name them.
        self.process = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            pass_fds=(3, 4), preexec_fn=onto_fds_3_and_4, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(commands_read)
        os.close(replies_write)
        self._buffer = b""
        self._next_id = 0
        self.events = []
        self.dialogs = []

    def send(self, method, session=None, **params):
        self._next_id += 1
        self._write({"id": self._next_id, "method": method, "params": params}, session)
        while True:
            message = self._read()
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def wait_for(self, method, session):
        for k, event in enumerate(self.events):
            if event.get("method") == method and event.get("sessionId") == session:
                return self.events.pop(k)
        while True:
            message = self._read()
            if message.get("method") == method and message.get("sessionId") == session:
                self.events.remove(message)
                return message

    def _write(self, message, session):
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")

    def _read(self):
        deadline = time.monotonic() + TIMEOUT
        while b"\0" not in self._buffer:
            if not select.select([self._replies], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise TimeoutError(f"Chromium sent nothing for {TIMEOUT} s")
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                raise EOFError("Chromium closed its DevTools pipe")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message = json.loads(raw)
        if "method" in message:
            self.events.append(message)
            if message["method"] == "Page.javascriptDialogOpening":  # an alert would block the page: note it, dismiss it
                self.dialogs.append(message["params"])
                self._write({"id": 0, "method": "Page.handleJavaScriptDialog", "params": {"accept": False}},
                            message.get("sessionId"))
        return message

    def open(self, path, javascript=True):
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Page.enable", session)
        self.send("Runtime.enable", session)
        self.send("Network.enable", session)  # before navigating, so the page's first request is seen too
        if not javascript:
            self.send("Emulation.setScriptExecutionDisabled", session, value=True)
        start = time.perf_counter()
        self.send("Page.navigate", session, url=path.as_uri())
        self.wait_for("Page.loadEventFired", session)
        return Tab(self, session, time.perf_counter() - start)

    def close(self):
        try:
            self.send("Browser.close")
        except (EOFError, TimeoutError, RuntimeError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._commands)
        os.close(self._replies)


class Tab:
    """One page. `js` evaluates test code from DevTools, which runs even where the page's own scripts may not."""

    def __init__(self, browser, session, load_seconds):
        self.browser, self.session, self.load_seconds = browser, session, load_seconds

    def js(self, expression):
        reply = self.browser.send("Runtime.evaluate", self.session, expression=expression, returnByValue=True)
        if "exceptionDetails" in reply:
            raise AssertionError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def dom(self):
        root = self.browser.send("DOM.getDocument", self.session, depth=-1)["root"]
        return self.browser.send("DOM.getOuterHTML", self.session, nodeId=root["nodeId"])["outerHTML"]

    def text(self):
        return self.js("document.body.innerText")

    def key(self, name, code):
        for kind in ("keyDown", "keyUp"):
            self.browser.send("Input.dispatchKeyEvent", self.session, type=kind, key=name, code=name,
                              windowsVirtualKeyCode=code)

    def wait_until(self, expression):
        deadline = time.monotonic() + TIMEOUT
        while not self.js(expression):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expression} still false after {TIMEOUT} s")
            time.sleep(0.05)

    def _events(self, method):
        return [event["params"] for event in self.browser.events
                if event.get("method") == method and event.get("sessionId") == self.session]

    def page_errors(self):
        return [params["exceptionDetails"] for params in self._events("Runtime.exceptionThrown")]

    def requests(self):
        """The URL of every request the page made, the page itself first."""
        return [params["request"]["url"] for params in self._events("Network.requestWillBeSent")]

    def failed_loads(self):
        urls = {params["requestId"]: params["request"]["url"] for params in self._events("Network.requestWillBeSent")}
        return [(urls.get(params["requestId"]), params["errorText"]) for params in self._events("Network.loadingFailed")]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = Chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """The exported pages (a trace with folds, deep chains and a markup name; 100,000 calls; a step-through),
    and how many `deep` calls the first holds."""
    directory = tmp_path_factory.mktemp("pages")
    write_package(directory)
    sys.path.insert(0, str(directory))
    try:
        htmlsample = importlib.import_module("htmlsample")
        with tracer.trace(include=("htmlsample",)) as t:
            htmlsample.main()
            htmlsample.deep(40)
        with tracer.trace(include=("htmlsample",)) as big:
            htmlsample.tree(1000, 99)
        with tracer.trace(include=("htmlsample",)) as walk:
            htmlsample.tree(2, 4)
            htmlsample.evil(EVIL_ARGUMENT)
    finally:
        sys.path.remove(str(directory))
        sys.modules.pop("htmlsample", None)
    pages = {name: directory / f"{name}.html" for name in ("trace", "big", "steps")}
    pages["trace"].write_text(render_page(t), encoding="utf-8")
    pages["big"].write_text(render_page(big), encoding="utf-8")
    steps = step_through(walk)
    assert len(steps) == len(walk)
    steps.save(pages["steps"])
    pages["deep calls"] = t.count("deep")
    return pages


def shown_steps(tab):
    return tab.js("[...document.querySelectorAll('[data-step]')]"
                  ".filter(s => s.offsetParent !== null).map(s => s.getAttribute('data-step'))")


def open_everything(tab):
    """Open every <details> and press every "show more", as the script adds more, until none is left."""
    quiet = 0
    while quiet < 2:  # twice in a row: a toggle's expansion runs just after the toggle
        acted = tab.js("(() => { const shut = [...document.querySelectorAll('details:not([open])')];"
                       " shut.forEach(d => { d.open = true; });"
                       " const more = [...document.querySelectorAll('button[data-from]')];"
                       " more.forEach(b => b.click()); return shut.length + more.length; })()")
        quiet = quiet + 1 if acted == 0 else 0


def assert_offline(tab, path):
    """The page was loaded from `path`, and nothing it loaded came from the network or failed to load."""
    urls = tab.requests()
    assert urls and urls[0] == path.as_uri()
    assert [url for url in urls if not url.startswith(OFFLINE)] == []
    assert tab.failed_loads() == []


def assert_no_injected_markup(browser, tab):
    assert tab.js("document.querySelectorAll('img').length") == 0
    assert EVIL in tab.text()  # shown as text
    assert not browser.dialogs


def tree_rows(tab, selector="pre"):
    """Each line of each preformatted tree under `selector`: [depth from its guides, left edge of its text in px, text]."""
    return tab.js(TREE_ROWS_JS.replace("__SELECTOR__", json.dumps(selector)))


# A line's depth is read from its box-drawing guides; where the line's own text starts is measured with a Range.
TREE_ROWS_JS = r"""
[...document.querySelectorAll(__SELECTOR__)].filter(pre => /^(?:[│ ]  )*[├└]─ /m.test(pre.textContent)).map(pre => {
  const rows = [], text = pre.textContent, walker = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT);
  const nodes = []; let at = 0;
  for (let n = walker.nextNode(); n; n = walker.nextNode()) { nodes.push([n, at]); at += n.data.length; }
  function rangeAt(offset) {
    const [node, start] = nodes.filter(([n, s]) => s <= offset).pop();
    const r = document.createRange(); r.setStart(node, offset - start); r.setEnd(node, offset - start + 1); return r;
  }
  let offset = 0;
  for (const line of text.split("\n")) {
    const guide = line.match(/^((?:[│ ]  )*)([├└]─ )?/);
    const depth = guide[2] ? guide[1].length / 3 + 1 : 0, start = offset + guide[0].length;
    if (line.trim() && start < text.length) rows.push([depth, rangeAt(start).getBoundingClientRect().left, line]);
    offset += line.length + 1;
  }
  return rows;
})
"""


def assert_nesting_is_visible(trees):
    """In each tree, a deeper line's text starts further right, and lines of one depth start at one place."""
    assert trees
    for rows in trees:
        starts = {}
        for depth, left, line in rows:
            starts.setdefault(depth, []).append(left)
        lefts = [(depth, min(values), max(values)) for depth, values in sorted(starts.items())]
        assert all(high - low < 1 for _, low, high in lefts), f"lines of one depth start at different places: {lefts}"
        assert all(a[2] < b[1] for a, b in zip(lefts, lefts[1:])), f"a deeper line does not start further right: {lefts}"


def test_trace_page_without_javascript(browser, pages):
    tab = browser.open(pages["trace"], javascript=False)
    assert tab.js("document.querySelector('.tracer-view').hasAttribute('data-live')") is False  # its script did not run
    text = tab.text()
    for name in ("main", "repeated", "tree", "branch"):
        assert f"─ {name}  " in text
    assert "─ attribute x206  " in text
    assert "calls are shown here" in text and "print(t) lists every call" in text
    assert_nesting_is_visible(tree_rows(tab))
    assert_no_injected_markup(browser, tab)
    assert "calls below" in text  # what the static tree leaves out, counted
    assert_offline(tab, pages["trace"])


def test_trace_page_with_javascript(browser, pages):
    tab = browser.open(pages["trace"])
    assert tab.js("document.querySelector('.tracer-view').hasAttribute('data-live')") is True
    assert tab.js("document.querySelector('.tracer-view pre.tracer-tree')") is None  # the rich view took its place
    assert "calls are shown here" not in tab.text()  # the note for readers without a script went with it
    assert_no_injected_markup(browser, tab)
    tab.js("[...document.querySelectorAll('summary')].find(s => s.innerText.includes('attribute x 206')).click()")
    assert "name='w0'" in tab.text() and "name='w205'" not in tab.text()
    tab.js("[...document.querySelectorAll('button[data-from]')].find(b => b.offsetParent !== null).click()")
    assert "name='w205'" in tab.text()  # the rest of the run, from the embedded JSON
    open_everything(tab)  # the chains below the static levels come from the embedded JSON too
    assert tab.text().count("deep n=") == pages["deep calls"]
    assert_no_injected_markup(browser, tab)
    assert not tab.page_errors()
    assert_offline(tab, pages["trace"])


def test_hundred_thousand_calls_load_and_expand(browser, pages):
    tab = browser.open(pages["big"])
    print(f"100,001-call page: loaded in {tab.load_seconds:.2f} s")
    assert tab.load_seconds < 10  # the target is about a second
    rows = tab.js("document.querySelectorAll('summary, div[style*=\"padding-left\"]').length")
    tab.js("[...document.querySelectorAll('button[data-from]')][0].click()")
    assert tab.js("document.querySelectorAll('summary, div[style*=\"padding-left\"]').length") > rows
    assert not tab.page_errors()


def test_step_through_moves_with_javascript(browser, pages):
    tab = browser.open(pages["steps"])
    last = tab.js("document.querySelectorAll('[data-step]').length") - 1
    assert shown_steps(tab) == ["0"]
    first = tab.js("document.querySelector('[data-step=\"0\"]').innerText")
    tab.js("document.querySelector('[data-go=\"1\"]').click()")
    assert shown_steps(tab) == ["1"]
    assert tab.js("document.querySelector('[data-step=\"1\"]').innerText") != first
    assert f"step 2 of {last + 1}" in tab.text()
    tab.key("ArrowRight", 39)
    assert shown_steps(tab) == ["2"]
    tab.key("ArrowLeft", 37)
    tab.js("document.querySelector('[data-go=\"-1\"]').click()")
    assert shown_steps(tab) == ["0"]
    tab.key("End", 35)
    assert shown_steps(tab) == [str(last)]
    assert_no_injected_markup(browser, tab)  # the last step is the call named like markup
    assert not tab.page_errors()
    assert_offline(tab, pages["steps"])


def test_step_through_without_javascript_shows_its_first_step(browser, pages):
    tab = browser.open(pages["steps"], javascript=False)
    assert shown_steps(tab) == ["0"]  # one step, not a wall of them
    assert "Step 1 of" in tab.text() and "prev/next buttons" in tab.text()
    assert tab.js("document.querySelector('[data-nav], button')") is None  # no buttons that could not work
    assert "def tree(width, n):" in tab.text()
    assert tab.js("document.querySelectorAll('img').length") == 0 and not browser.dialogs


# A chapter that shows a trace of `htmlsample`, a step-through, a pinned link and a solution; the
# package lies beside it, in the folder the chapter's kernel runs in.
CHAPTER = """
# 01. In the browser

A trace of `htmlsample`, shown as the book shows every trace.

## The trace

```{code-cell} ipython3
import htmlsample
import torch
import tracer

with tracer.trace(include=("htmlsample",)) as t:
    htmlsample.main()
t
```

## Step by step

```{code-cell} ipython3
with tracer.trace(include=("htmlsample",)) as walk:
    htmlsample.tree(2, 3)
tracer.step_through(walk)
```

```{code-cell} ipython3
tracer.link(torch.nn.Module.state_dict)
```

```{code-cell} ipython3
tracer.read(torch.nn.Module.state_dict, lines=3)
```

## Exercises

How many calls to `deep` does `main` make?

```{code-cell} ipython3
:tags: [solution]

print("calls to deep:", t.count("deep"))
```
"""
CHAPTER_NAME = "01-in-the-browser"


@pytest.fixture(scope="module")
def chapter(tmp_path_factory):
    """One build of the chapter: its page, its slides, the build's stderr, and what the page should show."""
    torch = pytest.importorskip("torch")
    from test_book import CACHE, FRONT_MATTER, run_main  # here, not above: the pages above need neither torch nor the book
    root = tmp_path_factory.mktemp("book")
    chapters = root / "chapters"
    chapters.mkdir()
    write_package(chapters)
    (chapters / f"{CHAPTER_NAME}.md").write_text(FRONT_MATTER + CHAPTER, encoding="utf-8")
    site = root / "site"
    result = run_main("build", "--chapters-dir", chapters, "--notebooks", root / "notebooks",
                      "--site", site, "--cache", CACHE)
    assert result.code == 0, result.out + result.err
    # "link": the link the chapter made, made again here (same torch, so the same commit and line)
    return {"page": site / f"{CHAPTER_NAME}.html", "slides": site / f"{CHAPTER_NAME}.slides.html",
            "reveal": site / "reveal.js" / "dist" / "reveal.js", "err": result.err,
            "link": tracer.link(torch.nn.Module.state_dict).url}


@pytest.mark.chapter
def test_chapter_page_without_javascript(browser, chapter):
    tab = browser.open(chapter["page"], javascript=False)
    text = tab.text()
    for name in ("main", "repeated", "tree", "branch"):
        assert f"─ {name}  " in text
    assert "─ attribute x206  " in text
    assert_nesting_is_visible(tree_rows(tab, ".tracer-view pre"))
    assert_no_injected_markup(browser, tab)
    # The step-through shows its first step; the buttons that need a script stay hidden.
    assert shown_steps(tab) == ["0"]
    assert tab.js("document.querySelector('.tracer-view [data-nav]')") is None
    assert tab.js(f"document.querySelector('a[href=\"{chapter['link']}\"]') !== null")
    assert_solution_opens(tab)
    assert_offline(tab, chapter["page"])


@pytest.mark.chapter
def test_chapter_page_with_javascript(browser, chapter):
    tab = browser.open(chapter["page"])
    assert tab.js("[...document.querySelectorAll('.tracer-view')].every(v => v.hasAttribute('data-live'))") is True
    assert "attribute x 206" in tab.text()
    tab.js("[...document.querySelectorAll('summary')].find(s => s.innerText.includes('attribute x 206')).click()")
    assert "name='w0'" in tab.text() and "name='w205'" not in tab.text()
    tab.js("[...document.querySelectorAll('button[data-from]')].find(b => b.offsetParent !== null).click()")
    assert "name='w205'" in tab.text()
    # The step-through shows one step at a time and moves.
    assert shown_steps(tab) == ["0"]
    tab.js("document.querySelector('[data-go=\"1\"]').click()")
    assert shown_steps(tab) == ["1"]
    assert_keys_step_before_the_notebook_sees_them(tab)
    assert tab.js(f"document.querySelector('a[href=\"{chapter['link']}\"]') !== null")
    assert_excerpt_is_set_as_code(tab)
    assert_solution_in_the_text_column(tab)
    assert_solution_opens(tab)
    assert_long_output_lines_scroll(tab)
    assert_no_injected_markup(browser, tab)
    assert not tab.page_errors()
    assert_offline(tab, chapter["page"])


def assert_keys_step_before_the_notebook_sees_them(tab):
    """With the step-through focused, an arrow key steps it, and a listener on the document in the capture phase (as
    Notebook 7's shortcuts are) never sees the key; without focus, the key is the notebook's."""
    tab.js("window.notebookKeys = []; document.addEventListener('keydown', e => notebookKeys.push(e.key), true)")
    before = shown_steps(tab)
    tab.js("document.querySelector('[data-step]').closest('.tracer-view').focus()")
    tab.key("ArrowRight", 39)
    assert shown_steps(tab) == [str(int(before[0]) + 1)] and tab.js("notebookKeys") == []
    tab.key("ArrowLeft", 37)
    assert shown_steps(tab) == before
    tab.js("document.activeElement.blur()")
    tab.key("ArrowRight", 39)
    assert shown_steps(tab) == before and tab.js("notebookKeys") == ["ArrowRight"]


def assert_solution_opens(tab):
    """The solution sits in a shut <details> headed "Solution"; opening it shows the cell and its output."""
    assert tab.js("document.querySelectorAll('details.solution').length") == 1
    assert tab.js("document.querySelector('details.solution > summary').innerText.trim()") == "Solution"
    assert tab.js("document.querySelector('details.solution').open") is False
    assert "calls to deep:" not in tab.text()
    tab.js("document.querySelector('details.solution > summary').click()")
    assert tab.js("document.querySelector('details.solution').open") is True
    assert re.search(r"calls to deep: \d+", tab.text())


def assert_solution_in_the_text_column(tab):
    """The toggle's text starts where the text of the markdown cell beside it does, at the same size."""
    label, text = tab.js(
        "(() => { const label = document.querySelector('details.solution > summary .solution-label');"
        " const cell = label.closest('section') || document;"
        " const text = [...cell.querySelectorAll('.jp-MarkdownCell .jp-RenderedMarkdown')].pop();"
        " return [label, text].map(e => [Math.round(e.getBoundingClientRect().left), getComputedStyle(e).fontSize]); })()")
    assert label == text


def assert_long_output_lines_scroll(tab):
    """An output line wider than its column scrolls sideways: it is not broken, inside a word or anywhere."""
    one_line, long_line, scrolls = tab.js(
        "(() => { const pre = document.querySelector('details.solution .jp-OutputArea-output pre');"
        " pre.textContent = 'requires_grad=True'; const one = pre.clientHeight;"
        " pre.textContent = 'requires_grad=True '.repeat(60);"
        " return [one, pre.clientHeight, pre.scrollWidth > pre.clientWidth]; })()")
    assert long_line == one_line and scrolls


def assert_excerpt_is_set_as_code(tab):
    """tracer.read's excerpt (a Markdown output) is in the code cells' face and size, not the prose's."""
    faces = tab.js("[document.querySelector('.jp-RenderedMarkdown.jp-OutputArea-output pre'),"
                   " document.querySelector('.jp-CodeCell .highlight > pre')]"
                   ".map(e => [getComputedStyle(e).fontFamily, getComputedStyle(e).fontSize])")
    assert faces[0] == faces[1]


def show_slide_of(tab, selector):
    """Go to the slide that holds the first element matching `selector`."""
    tab.js(f"(() => {{ const slide = document.querySelector('{selector}').closest('.slides > section > section');"
           " Reveal.slide([...slide.parentElement.parentElement.children].indexOf(slide.parentElement),"
           " [...slide.parentElement.children].indexOf(slide)); })()")
    tab.wait_until(f"document.querySelector('{selector}').closest('section.present > section.present') !== null")


def open_slides(browser, chapter):
    assert chapter["reveal"].is_file(), f"the build put no reveal.js in the site: {chapter['err'].strip()[:300]}"
    tab = browser.open(chapter["slides"])
    tab.wait_until("window.Reveal !== undefined && Reveal.isReady()")
    return tab


@pytest.mark.chapter
def test_chapter_slides_run_reveal_from_the_site(browser, chapter):
    tab = open_slides(browser, chapter)
    assert tab.js("Reveal.getTotalSlides()") > 1
    before = tab.js("JSON.stringify(Reveal.getIndices())")
    tab.js("Reveal.next()")
    assert tab.js("JSON.stringify(Reveal.getIndices())") != before
    assert chapter["reveal"].as_uri() in tab.requests()
    assert "attribute x 206" in tab.js("document.querySelector('.reveal .slides').textContent")
    assert_no_injected_markup(browser, tab)
    assert not tab.page_errors()
    assert_offline(tab, chapter["slides"])


@pytest.mark.chapter
def test_step_through_in_the_slides_is_not_taken_for_slides(browser, chapter):
    tab = open_slides(browser, chapter)
    failures = []
    slides = tab.js("document.querySelectorAll('.reveal .slides > section > section').length")
    if tab.js("Reveal.getTotalSlides()") != slides:
        failures.append(f"Reveal counts {tab.js('Reveal.getTotalSlides()')} slides; the chapter makes {slides}")
    # On its slide, the step-through shows its first step alone, and moves.
    show_slide_of(tab, "[data-step]")
    if shown_steps(tab) != ["0"]:
        failures.append(f"arriving at the step-through's slide shows steps {shown_steps(tab)}")
    tab.js("document.querySelector('.slides section.present [data-go=\"1\"]').click()")
    if shown_steps(tab) != ["1"]:
        failures.append(f"after next, the step-through shows steps {shown_steps(tab)}")
    # With the view focused, its keys step it and leave the deck where it is.
    where = "JSON.stringify(Reveal.getIndices())"
    slide = tab.js(where)
    last = str(tab.js("document.querySelectorAll('[data-step]').length") - 1)
    tab.js("document.querySelector('.slides section.present .tracer-view').focus()")
    for key, code, steps in (("ArrowRight", 39, ["2"]), ("ArrowLeft", 37, ["1"]), ("End", 35, [last]), ("Home", 36, ["0"])):
        tab.key(key, code)
        if shown_steps(tab) != steps or tab.js(where) != slide:
            failures.append(f"{key} in the view: steps {shown_steps(tab)}, slide {tab.js(where)}")
    assert not failures, failures


@pytest.mark.chapter
def test_slides_keep_code_and_outputs_whole_and_readable(browser, chapter):
    tab = open_slides(browser, chapter)
    show_slide_of(tab, "[data-step]")
    # A trace reads at the code's size; a code line wider than the slide scrolls inside its cell, none of it cut off.
    sizes = tab.js("(() => { const section = document.querySelector('section.present > section.present');"
                   " return [section.querySelector('.tracer-view'), section.querySelector('.highlight > pre')]"
                   ".map(e => getComputedStyle(e).fontSize); })()")
    assert sizes[0] == sizes[1]
    scrolls, clipped = tab.js(
        "(() => { const pre = document.querySelector('section.present > section.present .highlight > pre');"
        " pre.textContent = 'total = ' + 'step + '.repeat(60); const editor = pre.closest('.jp-InputArea-editor');"
        " return [pre.scrollWidth > pre.clientWidth, editor.scrollWidth > editor.clientWidth]; })()")
    assert scrolls and not clipped
    show_slide_of(tab, "details.solution")
    assert_solution_in_the_text_column(tab)
    tab.js("document.querySelector('details.solution > summary').click()")
    assert_long_output_lines_scroll(tab)
    assert not tab.page_errors()


@pytest.mark.chapter
def test_chapter_slides_without_javascript_load_nothing_from_the_network(browser, chapter):
    tab = browser.open(chapter["slides"], javascript=False)
    assert "attribute x206" in tab.js("document.querySelector('.reveal .slides').textContent")
    assert_offline(tab, chapter["slides"])


@pytest.mark.chapter
def test_trace_views_fit_their_slide(browser, chapter):
    """The trace and the step-through, with their cells, fit the slide: it does not scroll, and the deck's arrows
    lie below the view, not over it (the view scrolls inside itself)."""
    tab = open_slides(browser, chapter)
    failures = []
    for selector in (".tracer-view[data-scroll]", "[data-step]"):
        show_slide_of(tab, selector)
        overflow, view, controls = tab.js(
            "(() => { const slide = document.querySelector('section.present > section.present');"
            " const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };"
            " return [slide.scrollHeight - slide.clientHeight, box(slide.querySelector('.tracer-view')),"
            " box(document.querySelector('.reveal .controls'))]; })()")
        if overflow > 1:
            failures.append(f"{selector}: the slide scrolls by {overflow} px")
        if view[3] > controls[1] and view[2] > controls[0]:
            failures.append(f"{selector}: the view {view} runs under the deck's arrows {controls}")
    assert not failures, failures
