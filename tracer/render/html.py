"""The call tree as HTML: in Jupyter (``Trace._repr_html_``), in GitHub's notebook view, in a browser.

Two layers. The static one is a preformatted tree (``<pre>``, box-drawing guides, the layer written
as ``[aten]``, locations as ``<a href>``): it reads the same wherever <style>, <script>, style= and
data-* are stripped (GitHub, nbconvert's sanitizer, an untrusted notebook) and needs only tags every
sanitizer keeps. The whole tree is also embedded as compact JSON, from which a small inline script,
where it runs (a trusted notebook, the site, a page), builds the rich view in place of the static
one: collapsible calls, source on demand, more rows on click. Everything that comes from the traced
program (names, arguments, paths, source) is escaped or set as text.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import json
from collections import deque

from . import fold, format_args

NODE_BUDGET = 150  # rows of the static tree: what reads on GitHub without scrolling through a wall
STATIC_DEPTH = 24  # levels below the block in the static tree
OPEN_DEPTH = 2  # in the rich view, calls this deep or less (counted in the trace shown) start open...
OPEN_ALL = 80  # ...unless the trace has this many calls or fewer: then all of them do
OPEN_ROWS = 400  # rows the rich view writes at first, opening calls in call order: a page shows at once
LINE_WIDTH = 110  # characters of a static tree's line, its argument summary cut to fit (GitHub's column holds about
ARGS_MIN = 24  # 120); the summary keeps this many at least; the whole is on hover, in the rich view and in print(t)
SOURCE_LIMIT = 40  # distinct functions whose source the rich view carries
SOURCE_LINES = 60  # lines of each; the link leads to the rest
STATIC_SOURCE_LINES = 12  # of the step-through's first step, where no script runs: one step, not a wall
EMBED_LIMIT = 250_000  # calls embedded as JSON; print(t) and t.to_json() hold every call
CHUNK = 200  # rows the script adds per click
STEP_LIMIT = 100

# kind -> (label, colour, what it is); colours of middle lightness read on light and dark themes
KINDS = {"python": ("py", "#3a78c4", "Python function"),
         "builtin": ("C", "#a54aa0", "C function of the traced package (builtin layer)"),
         "aten": ("aten", "#c2621b", "ATen operator (TorchDispatchMode)"),
         "module": ("module", "#2e8f4d", "an nn.Module call, as one node (tracer.views.module_level)"),
         "worker": ("worker", "#808080", "a DataLoader worker process"),
         "thread": ("thread", "#808080", "a thread"),
         "block": ("block", "#808080", "the traced block")}
# A plain family list: JupyterLab's sanitizer drops a font-family that holds var(...). Each <pre> holds a <code>:
# where style= is stripped, JupyterLab's and nbconvert's CSS set a <pre> in an HTML output in the prose's face
# (.jp-OutputArea-output pre { font-family: inherit }) and only <code> in the code face; the <code> says white-space:pre
# itself, since JupyterLab's CSS sets it pre-wrap there.
MONO = "font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace"
_FAINT = "rgba(128,128,128,.35)"  # greys with alpha sit on any background
STYLES = {
    "view": f"{MONO};font-size:12.5px;line-height:1.5;background:transparent",
    "pre": f"{MONO};font-size:12.5px;line-height:1.5;margin:.2em 0;padding:0;background:transparent;"
           "white-space:pre;overflow:auto;max-height:40em",
    "scroll": "max-height:40em;overflow:auto", "head": "margin-bottom:.4em",
    "note": "opacity:.75;font-style:italic", "stub": "opacity:.75;font-style:italic",
    "children": f"margin-left:.45em;padding-left:.9em;border-left:1px solid {_FAINT}",
    "leaf": "padding-left:1.1em;white-space:nowrap",  # lines up with the text of a <summary>, after its triangle
    "summary": "cursor:pointer;white-space:nowrap", "name": "font-weight:600", "count": "font-weight:600;opacity:.8",
    "args": "color:#2e8f4d;display:inline-block;max-width:40em;overflow:hidden;text-overflow:ellipsis;"
            "vertical-align:bottom;white-space:nowrap",
    "status": "color:#d23b3b;font-weight:600",
    "where": "opacity:.7", "link": "opacity:.7;text-decoration:underline",
    "button": f"{MONO};font-size:90%;cursor:pointer;margin:.1em 0",
    "source": f"{MONO};font-size:inherit;margin:.15em 0 .3em;padding:.35em .6em;background:rgba(128,128,128,.1);"
              "overflow:auto;max-height:24em",
    "lineno": "opacity:.5;user-select:none", "section": f"padding:.5em 0;border-top:1px solid {_FAINT}",
}
BADGES = {kind: f"color:{colour};border:1px solid {colour};border-radius:3px;padding:0 .3em;margin-right:.4em;"
                "font-size:85%" for kind, (_, colour, _) in KINDS.items()}

# The fragment's only <style>: niceties for where it survives; what must read does without it.
FRAGMENT_CSS = """
.tracer-view summary:hover { background: rgba(128, 128, 128, .12); }
.tracer-view a:hover { opacity: 1; }
.tracer-view:focus { outline: 1px dotted rgba(128, 128, 128, .6); }
"""
PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
:root {{ color-scheme: light dark; }}
body {{ margin: 1.5em auto; max-width: 1400px; padding: 0 1em; font-family: system-ui, sans-serif; }}
</style></head>
<body>
{body}
</body></html>
"""

# Builds the rich view from the embedded tree in place of the static one. Text from the trace only
# ever goes into textContent and attributes.
TREE_JS = r"""
(function () {
  var root = document.getElementById("__ID__");
  if (!root || root.hasAttribute("data-live")) return;
  root.setAttribute("data-live", "");
  var D = JSON.parse(root.querySelector("script[data-calls]").textContent);
  var CHUNK = __CHUNK__, OPEN = __OPEN__, rows_left = __OPEN_ROWS__, S = __STYLES__, K = __KINDS__, B = __BADGES__;
  function col(i, k) { return D.c[4 * i + k]; }
  function fmt(n) { return n.toLocaleString("en-US"); }
  function el(tag, style, text) {
    var e = document.createElement(tag);
    if (style) e.style.cssText = style;
    if (text != null) e.textContent = text;
    return e;
  }
  function mark(e, from, to, fold, depth) {  // e stands for the calls at positions from..to
    e.setAttribute("data-from", from); e.setAttribute("data-to", to); e.setAttribute("data-fold", fold ? "1" : "0");
    e.setAttribute("data-depth", depth);
    return e;
  }
  function same(a, b) {
    var fa = D.f[col(a, 0)], fb = D.f[col(b, 0)];
    return fa[0] === fb[0] && fa[1] === fb[1] && fa[2] === fb[2] && col(a, 3) === col(b, 3);
  }
  function row(i, n) {
    var f = D.f[col(i, 0)], kind = K[f[1]] ? f[1] : "python", line = el("span");
    line.appendChild(el("span", B[kind], K[kind][0])).title = K[kind][2];
    line.append(" ");  // the badge's text and the name stay apart wherever the badge's style does not reach
    line.appendChild(el("span", S.name, f[0]));
    if (n > 1) line.appendChild(el("span", S.count, " x " + fmt(n)));
    [[n === 1 && D.s[col(i, 1)], S.args], [f[2], f[3] ? S.link : S.where, f[3]], [D.s[col(i, 3)], S.status]].forEach(function (p) {
      if (!p[0]) return;  // p: text, style, link
      line.append(" ");
      var e = line.appendChild(el(p[2] ? "a" : "span", p[1], p[0]));
      if (p[2]) e.href = p[2];
      else e.title = p[0];  // a summary cut short reads whole on hover
    });
    return line;
  }
  function source(i) {
    var s = D.src[col(i, 0)];
    if (!s) return null;
    var pre = el("pre", S.source), lines = s[1].split("\n"), width = String(s[0] + lines.length).length;
    lines.forEach(function (text, k) {
      var number = String(s[0] + k);
      pre.appendChild(el("span", S.lineno, " ".repeat(width - number.length) + number + "  "));
      pre.append(text + (k < lines.length - 1 ? "\n" : ""));
    });
    if (s[2]) pre.appendChild(el("span", S.note, "\n... " + fmt(s[2]) + " more lines at the link"));
    return pre;
  }
  function node(i, n, depth, members) {
    var src = members ? null : source(i), leaf = n === 1 && col(i, 2) === 1;
    if (leaf && !src) return el("div", S.leaf).appendChild(row(i, 1)).parentNode;
    var d = el("details");
    d.appendChild(el("summary", S.summary)).appendChild(row(i, n));
    if (leaf) { d.appendChild(src); return d; }  // a leaf opens to its source
    var body = d.appendChild(el("div", S.children));
    if (src) {
      var shown = body.appendChild(el("details"));
      shown.appendChild(el("summary", S.summary + ";" + S.note, "source"));
      shown.appendChild(src);
    }
    var from = n > 1 ? i : i + 1, to = i + (n > 1 ? n : col(i, 2));
    if (n === 1 && depth <= OPEN && rows_left > 0) { d.open = true; fill(body, from, to, true, depth + 1); }
    else body.appendChild(mark(el("span"), from, to, n === 1, depth + 1)).setAttribute("data-auto", "");
    return d;
  }
  function more(from, to, fold, depth) {
    var text = "show " + fmt(to - from) + (to - from === 1 ? " more call" : " more calls");
    return mark(el("button", S.button, text), from, to, fold, depth);
  }
  function fill(into, from, to, fold, depth) {  // rows for the calls from..to, CHUNK at most, then a button for the rest
    var i = from, rows = D.c.length / 4;
    for (var added = 0; i < to && added < CHUNK; added++) {
      if (i >= rows) {
        into.appendChild(el("div", S.stub, "calls not embedded in this page: " + fmt(to - i) +
                               "; print(t) lists them, t.to_json() exports them"));
        return;
      }
      var n = 1;
      if (fold && col(i, 2) === 1) while (i + n < Math.min(to, rows) && col(i + n, 2) === 1 && same(i, i + n)) n++;
      rows_left--;
      into.appendChild(node(i, n, depth, !fold));
      i += n > 1 ? n : col(i, 2);
    }
    if (i < to) into.appendChild(more(i, to, fold, depth));
  }
  function expand(stub) {
    var frag = document.createDocumentFragment();
    fill(frag, +stub.getAttribute("data-from"), +stub.getAttribute("data-to"), stub.getAttribute("data-fold") === "1",
         +stub.getAttribute("data-depth"));
    stub.replaceWith(frag);
  }
  var live = el("div", root.hasAttribute("data-scroll") ? S.scroll : "");
  live.className = "tracer-scroll";
  fill(live, 1, col(0, 2), true, 1);
  root.querySelectorAll("[data-static]").forEach(function (e) { e.remove(); });  // the tree and its notes for no script
  root.insertBefore(live, root.querySelector("script[data-calls]"));
  root.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("button[data-from]");
    if (b && root.contains(b)) expand(b);
  });
  root.addEventListener("toggle", function (e) {  // opening a call whose children are not written yet writes them
    var body = e.target.open && e.target.lastElementChild, stub = body && body.querySelector(":scope > [data-auto]");
    if (stub) expand(stub);
  }, true);
})();
"""

# Shows one step at a time, the steps built from the embedded list. The keys are taken on the window in the capture
# phase, before a host that listens on the document (Notebook 7's shortcuts, reveal.js) sees them.
STEPS_JS = r"""
(function () {
  var root = document.getElementById("__ID__");
  if (!root || root.hasAttribute("data-live")) return;
  root.setAttribute("data-live", "");
  var holder = document.createElement("template");
  holder.innerHTML = JSON.parse(root.querySelector("script[data-steps]").textContent).join("");  // the nav, then each step
  root.querySelectorAll("[data-static]").forEach(function (e) { e.remove(); });
  root.insertBefore(holder.content, root.querySelector("script[data-steps]"));
  var steps = root.querySelectorAll("[data-step]"), at = 0, nav = root.querySelector("[data-nav]");
  if (!steps.length) return;
  var where = nav.querySelector("[data-at]");
  var prev = nav.querySelector("[data-go='-1']"), next = nav.querySelector("[data-go='1']");
  function show(k) {
    at = Math.max(0, Math.min(steps.length - 1, k));
    steps.forEach(function (step, j) { step.style.display = j === at ? "" : "none"; });
    where.textContent = "step " + (at + 1) + " of " + steps.length;
    prev.disabled = at === 0;
    next.disabled = at === steps.length - 1;
  }
  nav.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("[data-go]");
    if (b) { show(at + +b.getAttribute("data-go")); root.focus({preventScroll: true}); }
  });
  var page = root.hasAttribute("data-page");  // a page of its own takes the keys; in a notebook, only with focus
  window.addEventListener("keydown", function (e) {
    if (!page && !root.contains(document.activeElement)) return;
    var go = {ArrowRight: 1, ArrowLeft: -1}[e.key];  // up and down still scroll
    var to = {Home: 0, End: steps.length - 1}[e.key];
    if (go) show(at + go);
    else if (to !== undefined) show(to);
    else return;
    e.preventDefault(); e.stopImmediatePropagation();  // the host (slides, a notebook) must not act on it too
  }, true);
  show(0);
  if (page) root.focus();
})();
"""

_ids = itertools.count(1)


def render(trace, nodes: int = NODE_BUDGET, depth: int = STATIC_DEPTH, scroll: bool = True) -> str:
    """The trace as an HTML fragment: header, notes, the static tree; the whole tree as embedded JSON.

    nodes: rows in the static tree (breadth first); depth: its levels; scroll: cap the tree's
    height, as a notebook output should (a page lets it run long).
    """
    try:
        root = trace.root
    except RuntimeError:
        return f"<code>{_esc(repr(trace))}</code>"
    plan, _ = _plan(root, nodes, depth)
    calls, index, sizes, total = _number(root, _static_calls(plan), EMBED_LIMIT)
    tree = _StaticTree(index, sizes, plan)
    lines = tree.lines(root)
    payload = _script_json(_table(calls, sizes))
    view_id = _view_id(payload)
    open_depth = STATIC_DEPTH if total - 1 <= OPEN_ALL else OPEN_DEPTH
    pre_style = STYLES["pre"] if scroll else STYLES["pre"].replace(";overflow:auto;max-height:40em", "")
    return "\n".join([
        f'<div class="tracer-view" id="{view_id}"{" data-scroll" if scroll else ""} style="{STYLES["view"]}">'
        f"<style>{FRAGMENT_CSS}</style>",
        _header(trace.meta, total - 1), _notes(trace.meta, total - 1),
        f'<pre class="tracer-tree" data-static style="{pre_style}"><code style="white-space:pre">{chr(10).join(lines)}</code></pre>',
        _shown_note(total - 1 - tree.hidden, total - 1),
        f'<script type="application/json" data-calls>{payload}</script>',
        f"<script>{_script(TREE_JS, view_id, open_depth)}</script></div>"])


def render_page(trace, title: str | None = None, **options) -> str:
    """A standalone HTML page of the trace: inline CSS and JS, nothing fetched."""
    options.setdefault("scroll", False)
    return _page(title or f"tracer: {len(trace):,} calls", render(trace, **options))


def render_diff(diff) -> str:
    """A Diff as a preformatted table: calls only in a, only in b, and calls whose counts differ."""
    rows = [("only in a", name, f"{n:,}", "-") for name, n in sorted(diff.only_a.items())]
    rows += [("only in b", name, "-", f"{n:,}") for name, n in sorted(diff.only_b.items())]
    rows += [("count differs", name, f"{n:,}", f"{m:,}") for name, (n, m) in sorted(diff.changed.items())]
    if not rows:
        return f'<div style="{STYLES["view"]}">{_esc(diff)}</div>'
    rows = [("", "call", "a", "b"), *rows]
    widths = [max(len(row[k]) for row in rows) for k in range(4)]
    body = "\n".join(f"{what:<{widths[0]}}  <b>{_esc(name)}</b>{' ' * (widths[1] - len(name))}  "
                     f"{a:>{widths[2]}}  {b:>{widths[3]}}".rstrip() for what, name, a, b in rows)
    summary = f"{len(diff.only_a):,} only in a, {len(diff.only_b):,} only in b, {len(diff.changed):,} with different counts"
    return (f'<div class="tracer-diff" style="{STYLES["view"]}"><div style="{STYLES["head"]}">{summary}</div>'
            f'<pre style="{STYLES["pre"]}"><code style="white-space:pre">{body}</code></pre></div>')


def step_through(trace, limit: int = STEP_LIMIT) -> StepThrough:
    """Walk a trace (or the calls under one Call) call by call: each step the call, its arguments, its source."""
    return StepThrough(trace, limit)


class StepThrough:
    """Steps over calls in call order; ``_repr_html_`` for Jupyter, ``save(path)`` for a standalone page."""

    def __init__(self, trace, limit: int = STEP_LIMIT):
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive whole number of steps, got {limit!r}")
        start = trace.root if hasattr(trace, "root") else trace
        skip = int(start.kind == "block")  # the block is where the steps start, not a step
        self.calls = list(itertools.islice(start.walk(), skip, limit + skip))
        self.total = sum(1 for _ in start.walk()) - skip
        self.title = f"step through {'the traced block' if skip else start.name}"
        self.base = start.depth - 1 + skip  # depths as the steps' own tree counts them: the first level is 1

    def __len__(self):
        return len(self.calls)

    def __repr__(self):
        return f"<StepThrough {len(self.calls)} of {self.total} calls>"

    def _repr_html_(self):
        return self.html()

    def html(self, page: bool = False) -> str:
        """One step in the static HTML (where no script runs, that is what shows); every step embedded for the script."""
        n = len(self.calls)
        button = f'<button style="{STYLES["button"]}" data-go='
        nav = (f'<div data-nav style="margin:.3em 0">{button}"-1">&larr; prev</button> '
               f'{button}"1">next &rarr;</button> <span data-at></span> '
               f'<span style="{STYLES["note"]}">(so do &larr; &rarr; Home End, once you click in this view)</span></div>')
        steps = [_step_html(call, k, n, self.base, numbered=True) for k, call in enumerate(self.calls)]
        payload = _script_json([nav, *steps])  # the buttons too: where no script runs, none would work
        view_id = _view_id(payload)
        shown = f"the first {n:,} of {self.total:,} calls" if n < self.total else f"all {n:,} calls"
        first = _step_html(self.calls[0], 0, n, self.base, numbered=False, lines=STATIC_SOURCE_LINES) if n else ""
        more = (f'<div data-static style="{STYLES["note"]}">Step 1 of {n:,} is shown. Where scripts run (a trusted '
                "notebook, the book's site, a page written by step_through(...).save(path)), prev/next buttons "
                "show each step.</div>") if n > 1 else ""
        return (f'<div class="tracer-view" id="{view_id}" tabindex="0"{" data-page" if page else ""} '
                f'style="{STYLES["view"]}"><style>{FRAGMENT_CSS}</style>'
                f'<div style="{STYLES["head"]}">{_esc(self.title)}: {shown}, in call order</div>'
                f"{more}<div data-static>{first}</div>\n"
                f'<script type="application/json" data-steps>{payload}</script>'
                f"<script>{_script(STEPS_JS, view_id)}</script></div>")

    def save(self, path) -> str:
        """Write a standalone page that steps in a browser on its own; returns the path."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(_page(self.title, self.html(page=True)))
        return str(path)


# -- the static tree ---------------------------------------------------------------------------

def _plan(root, nodes, depth):
    """Whose children the static tree lists, breadth first, {id(call): (fold groups, how many listed)};
    and how many rows that makes."""
    plan, left, queue = {}, nodes, deque([root])
    while queue and left > 0:
        call = queue.popleft()
        groups = fold(call.children)
        listed = 0
        for child, n in groups:
            if left <= 0:
                break
            left -= 1
            listed += 1
            if child.children and child.depth - root.depth < depth:
                queue.append(child)
        plan[id(call)] = (groups, listed)
    return plan, nodes - left


def _static_calls(plan) -> set:
    """ids of the calls the static tree writes a row for, and of the calls whose children it lists."""
    return set(plan).union(id(child) for groups, listed in plan.values() for child, _ in groups[:listed])


class _StaticTree:
    """Writes the planned part of the tree as lines with box-drawing guides; what it leaves out, it counts."""

    def __init__(self, index, sizes, plan):
        self.index, self.sizes, self.plan, self.hidden = index, sizes, plan, 0

    def lines(self, root) -> list[str]:
        out, work = [_esc(_root_label(root))], [(root, "")]  # work: a line to write, or (call, guide) to open
        while work:
            item = work.pop()
            if isinstance(item, str):
                out.append(item)
                continue
            call, prefix = item
            groups, listed = self.plan[id(call)]
            i = self.index[id(call)]
            position, items = i + 1, []
            for child, n in groups[:listed]:
                position += n if n > 1 else self.sizes[self.index[id(child)]]
            rest = i + self.sizes[i] - position
            for k, (child, n) in enumerate(groups[:listed]):
                last = k == listed - 1 and not rest
                below = prefix + ("   " if last else "│  ")
                guide = prefix + ("└─ " if last else "├─ ")
                items.append(guide + _static_row(child, n, LINE_WIDTH - len(guide)))
                if n == 1 and child.children:
                    if id(child) in self.plan:
                        items.append((child, below))
                    else:
                        count = self.sizes[self.index[id(child)]] - 1
                        self.hidden += count
                        items.append(f"{below}└─ ... {_calls(count)} below")
            if rest:
                self.hidden += rest
                items.append(f"{prefix}└─ ... {_calls(rest)} more")
            work.extend(reversed(items))
        return out


def _static_row(call, n, room=LINE_WIDTH) -> str:
    """One call's line: name, run length, layer, linked location, arguments, how it ended (as print(t) writes it);
    the arguments cut to leave the line `room` characters long."""
    out = text = call.label + (f" x{n:,}" if n > 1 else "") + (f" [{call.kind}]" if call.kind != "python" else "")
    out = _esc(out)
    url, where = _safe_url(call.url), _location(call)
    if where and url:  # the file's name is the link's text; its path is in the link and on hover
        name = where.rsplit("/", 1)[-1]
        out += f'  <a href="{_esc(url)}" title="{_esc(where)}">{_esc(name)}</a>'
        text += "  " + name
    elif where:
        out += f"  {_esc(where)}"
        text += "  " + where
    args = _args_text(call)
    if args and n == 1:
        width = max(ARGS_MIN, room - len(text) - 2)
        cut = args if len(args) <= width else args[:width - 1] + "…"
        out += f'  <span title="{_esc(args)}">{_esc(cut)}</span>' if cut != args else f"  {_esc(args)}"
    if _status(call):
        out += f"  {_esc(_status(call))}"
    return out


def _root_label(root) -> str:
    return root.name if root.kind == "block" else f"{root.label}  {root.location}".rstrip()


def _calls(n) -> str:
    return f"{n:,} call{'s' if n != 1 else ''}"


def _source_of(call) -> str:
    try:
        return call.source()
    except OSError:  # the file moved or went since the trace was recorded
        return ""


def _source_pre(text, call, numbered, limit=SOURCE_LINES) -> str:
    """The source as a <pre>; numbered only where a script built it (untrusted, line numbers would copy with the code)."""
    lines = text.rstrip("\n").split("\n")
    shown = lines[:limit]
    width = len(str(call.line + len(shown)))
    if numbered:
        body = "\n".join(f'<span style="{STYLES["lineno"]}">{call.line + k:>{width}}  </span>{_esc(line)}'
                         for k, line in enumerate(shown))
    else:
        body = "\n".join(_esc(line) for line in shown)
    if len(lines) > len(shown):
        body += f'\n<i>... {len(lines) - len(shown):,} more lines at the link</i>'
    return f'<pre style="{STYLES["source"]}"><code style="white-space:pre">{body}</code></pre>'


def _header(meta, n_calls) -> str:
    facts = [f"<b>{n_calls:,}</b> calls"]
    facts += [f"{key} {_esc(', '.join(meta[key]))}" for key in ("layers", "include") if meta.get(key)]
    facts += [f"torch {_esc(meta['torch'])}"] if meta.get("torch") else []
    legend = " &middot; ".join(f"[{kind}] {what}" for kind, (_, _, what) in KINDS.items()
                               if kind in meta.get("layers", ()) and kind != "python")
    legend = f'<div style="{STYLES["note"]}">{legend}</div>' if legend else ""
    return f'<div style="{STYLES["head"]}">tracer: {" &middot; ".join(facts)}{legend}</div>'


def _notes(meta, n_calls) -> str:
    notes = [_esc(note) for note in meta.get("notes", ())]
    if meta.get("hidden_below_depth") and meta.get("depth") is not None:
        notes.append(f"{meta['hidden_below_depth']:,} calls deeper than depth={_esc(meta['depth'])} were not recorded")
    return "".join(f'<div style="{STYLES["note"]}">note: {note}</div>' for note in notes)


def _shown_note(shown, n_calls) -> str:
    """Says what the static tree leaves out; the script, where it runs, removes it with the tree."""
    if shown >= n_calls:
        return ""
    return (f'<div data-static style="{STYLES["note"]}">note: {shown:,} of {n_calls:,} calls are shown here; with '
            "JavaScript (a trusted notebook or a browser) the rest open in place; print(t) lists every call, "
            "t.to_json() exports them</div>")


# -- the embedded tree -------------------------------------------------------------------------

def _number(root, keep, limit):
    """One preorder pass: the first `limit` calls, and the position and subtree size of those and of
    the calls in `keep` (by position); and how many calls there are, the root included."""
    first, index, sizes, open_calls = [], {}, {}, []  # open_calls: (position, depth), innermost last
    position = -1
    for position, call in enumerate(root.walk()):
        while open_calls and open_calls[-1][1] >= call.depth:
            start, _ = open_calls.pop()
            sizes[start] = position - start
        if position < limit or id(call) in keep:
            index[id(call)] = position
            open_calls.append((position, call.depth))
            if position < limit:
                first.append(call)
    for start, _ in open_calls:
        sizes[start] = position + 1 - start
    return first, index, sizes, position + 1


def _table(calls, sizes) -> dict:
    """The tree as tables: functions [label, kind, location, url], strings, 4 numbers a call
    (function, arguments, subtree size, how it ended), and the source of the first functions
    {function: [first line, text, lines left out]}."""
    functions, function_ids, strings, string_ids, flat, sources = [], {}, [""], {"": 0}, [], {}
    for i, call in enumerate(calls):
        key = (call.name, call.module, call.kind, call.relpath, call.line)
        if key not in function_ids:
            function_ids[key] = len(functions)
            functions.append([call.label, call.kind, _location(call), _safe_url(call.url)])
            if len(sources) < SOURCE_LIMIT and call.kind not in ("builtin", "block") and call.line:
                text = _source_of(call)
                if text:
                    lines = text.rstrip("\n").split("\n")
                    sources[function_ids[key]] = [call.line, "\n".join(lines[:SOURCE_LINES]),
                                                  max(0, len(lines) - SOURCE_LINES)]
        texts = (_args_text(call), _status(call) if call.error or call.open else "")
        for text in texts:
            if text not in string_ids:
                string_ids[text] = len(strings)
                strings.append(text)
        flat += (function_ids[key], string_ids[texts[0]], sizes[i], string_ids[texts[1]])
    return {"f": functions, "s": strings, "c": flat, "src": sources}


def _script_json(data) -> str:
    """JSON that cannot end its <script> element: <, > and & are written as \\u escapes."""
    text = json.dumps(data, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _step_html(call, k, n, base, numbered, lines=SOURCE_LINES) -> str:
    path = [c.name for c in call.ancestors() if c.kind != "block"][::-1]
    trail = ("... &gt; " if len(path) > 6 else "") + _esc(" > ".join(path[-6:]))
    args = "\n".join(f"{_esc(name)} = {_esc(value)}" for name, value in call.args.items())
    text = _source_of(call)
    note = f'<div style="{STYLES["note"]}">'
    return (f'<div data-step="{k}" style="{STYLES["section"]}">'
            f"{note}step {k + 1:,} of {n:,}, depth {call.depth - base:,}</div>"
            f'<div style="font-size:115%"><b>{_static_row(call, 1)}</b></div>'
            f'{note}called from: {trail or "the traced block"}</div>'
            + (f'<pre style="{STYLES["pre"]}"><code style="white-space:pre">{args}</code></pre>' if args else f"{note}no arguments recorded</div>")
            + (_source_pre(text, call, numbered, lines) if text else f"{note}no Python source for this call</div>") + "</div>")


# -- small pieces ------------------------------------------------------------------------------

def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def _location(call) -> str:
    return "" if call.kind == "builtin" else call.location


def _args_text(call) -> str:
    """The argument summaries; a resumed generator has none of its own and says that it went on; a view's node
    says what it folds in (tracer.views)."""
    text = format_args(call.args) if call.args else ""
    if getattr(call, "batch", None) is not None:  # a DataLoader batch (trace(workers=True))
        text = f"batch={call.batch}" + (f", {text}" if text else "")
    text = f"(resumed) {text}".rstrip() if call.resumed else text
    note = getattr(call, "note", None)
    return f"({note}) {text}".rstrip() if note else text


def _status(call) -> str:
    return f"raised {call.error}" if call.error else "still running when recording stopped" if call.open else ""


def _safe_url(url) -> str | None:
    """Only https links ever reach an href: a javascript: URL would run on click."""
    return url if isinstance(url, str) and url.startswith("https://") else None


def _view_id(content: str) -> str:
    """Unique in a notebook, yet the same for the same trace in the same order of a run."""
    return f"tracer-{hashlib.sha1(content.encode()).hexdigest()[:10]}-{next(_ids)}"


def _script(template, view_id, open_depth=0) -> str:
    constants = {"__ID__": view_id, "__CHUNK__": str(CHUNK), "__OPEN__": str(open_depth), "__OPEN_ROWS__": str(OPEN_ROWS),
                 "__STYLES__": json.dumps(STYLES), "__KINDS__": json.dumps(KINDS), "__BADGES__": json.dumps(BADGES)}
    for name, value in constants.items():
        template = template.replace(name, value)
    return template


def _page(title, body) -> str:
    return PAGE.format(title=_esc(title), body=body)
