"""The call tree as HTML: in Jupyter (``Trace._repr_html_``), in GitHub's notebook view, in a browser.

The static HTML holds the first levels of the tree, up to a node budget, styled inline: it reads
with JavaScript off and where <style> and <script> are stripped (GitHub). The whole tree is also
embedded as compact JSON, which a small inline script expands on demand. Everything that comes
from the traced program (names, arguments, paths, source) is escaped.
"""

from __future__ import annotations

import hashlib
import html
import itertools
import json
from collections import deque

from . import fold, format_args

NODE_BUDGET = 400  # rows in the static HTML: a notebook output stays light, a browser shows it at once
STATIC_DEPTH = 24  # levels below the block in the static HTML
OPEN_DEPTH = 2  # calls this deep or less start open...
OPEN_ALL = 80  # ...unless the static HTML has this many rows or fewer: then all of them do
FOLD_LIST = 20  # members of a folded run listed in the static HTML
SOURCE_LIMIT = 40  # distinct functions whose source the static HTML carries
SOURCE_LINES = 60  # lines of each; the link leads to the rest
EMBED_LIMIT = 250_000  # calls embedded as JSON; print(t) and t.to_json() hold every call
CHUNK = 200  # rows the script adds per click
STEP_LIMIT = 100

# kind -> (label, colour, what it is); colours of middle lightness read on light and dark themes
KINDS = {"python": ("py", "#3a78c4", "Python function"),
         "builtin": ("C", "#a54aa0", "C function of the traced package (builtin layer)"),
         "aten": ("aten", "#c2621b", "ATen operator (TorchDispatchMode)"),
         "block": ("block", "#808080", "the traced block")}
_MONO = "font-family:var(--jp-code-font-family,ui-monospace,SFMono-Regular,Menlo,Consolas,monospace)"
_FAINT = "rgba(128,128,128,.35)"  # greys with alpha sit on any background
STYLES = {
    "view": f"{_MONO};font-size:12.5px;line-height:1.5;color:inherit;background:transparent",
    "scroll": "max-height:40em;overflow:auto", "head": "margin-bottom:.4em",
    "note": "opacity:.75;font-style:italic", "stub": "opacity:.75;font-style:italic",
    "children": f"margin-left:.45em;padding-left:.9em;border-left:1px solid {_FAINT}",
    "leaf": "padding-left:1.1em",  # lines up with the text of a <summary>, after its triangle
    "summary": "cursor:pointer", "name": "font-weight:600", "count": "font-weight:600;opacity:.8",
    "args": "color:#2e8f4d", "status": "color:#d23b3b;font-weight:600",
    "where": "color:inherit;opacity:.7",
    "link": f"color:inherit;opacity:.7;text-decoration:underline;text-decoration-color:{_FAINT}",
    "button": "font:inherit;font-size:90%;cursor:pointer;margin:.1em 0",
    "source": "margin:.15em 0 .3em;padding:.35em .6em;background:rgba(128,128,128,.1);overflow:auto;"
              "max-height:24em;font:inherit",
    "lineno": "opacity:.5;user-select:none", "section": f"padding:.5em 0;border-top:1px solid {_FAINT}",
    "table": "border-collapse:collapse;margin:.3em 0;font-size:inherit",
    "cell": "padding:.1em .8em .1em 0;text-align:left;vertical-align:top;background:transparent;border:none",
}
BADGES = {kind: f"color:{colour};border:1px solid {colour};border-radius:3px;padding:0 .3em;margin-right:.4em;"
                "font-size:85%" for kind, (_, colour, _) in KINDS.items()}

# The fragment's only <style>: niceties for when it survives; what must read is styled inline.
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

# Expands the embedded tree. Text from the trace only ever goes into textContent and attributes.
TREE_JS = r"""
(function () {
  var root = document.getElementById("__ID__");
  if (!root || root.hasAttribute("data-live")) return;
  root.setAttribute("data-live", "");
  var D, CHUNK = __CHUNK__, S = __STYLES__, K = __KINDS__, B = __BADGES__;
  function data() { return D || (D = JSON.parse(root.querySelector("script[data-calls]").textContent)); }
  function col(i, k) { return D.c[4 * i + k]; }
  function fmt(n) { return n.toLocaleString("en-US"); }
  function el(tag, style, text) {
    var e = document.createElement(tag);
    if (style) e.style.cssText = style;
    if (text != null) e.textContent = text;
    return e;
  }
  function mark(e, from, to, fold) {  // e stands for the calls at positions from..to
    e.setAttribute("data-from", from); e.setAttribute("data-to", to); e.setAttribute("data-fold", fold ? "1" : "0");
    return e;
  }
  function same(a, b) {
    var fa = D.f[col(a, 0)], fb = D.f[col(b, 0)];
    return fa[0] === fb[0] && fa[1] === fb[1] && col(a, 3) === col(b, 3);
  }
  function row(i, n) {
    var f = D.f[col(i, 0)], kind = K[f[1]] ? f[1] : "python", line = el("span");
    line.appendChild(el("span", B[kind], K[kind][0])).title = K[kind][2];
    line.appendChild(el("span", S.name, f[0]));
    if (n > 1) line.appendChild(el("span", S.count, " x " + fmt(n)));
    [[n === 1 && D.s[col(i, 1)], S.args], [f[2], f[3] ? S.link : S.where, f[3]], [D.s[col(i, 3)], S.status]].forEach(function (p) {
      if (!p[0]) return;  // p: text, style, link
      line.append(" ");
      var e = line.appendChild(el(p[2] ? "a" : "span", p[1], p[0]));
      if (p[2]) e.href = p[2];
    });
    return line;
  }
  function node(i, n) {
    if (n === 1 && col(i, 2) === 1) return el("div", S.leaf).appendChild(row(i, 1)).parentNode;
    var d = el("details"), body = el("div", S.children);
    d.appendChild(el("summary", S.summary)).appendChild(row(i, n));
    d.appendChild(body).appendChild(mark(el("span"), n > 1 ? i : i + 1, i + (n > 1 ? n : col(i, 2)), n === 1))
      .setAttribute("data-auto", "");
    return d;
  }
  function more(from, to, fold) {
    var text = "show " + fmt(to - from) + (to - from === 1 ? " more call" : " more calls");
    return mark(el("button", S.button, text), from, to, fold);
  }
  function fill(into, from, to, fold) {  // rows for the calls from..to, CHUNK at most, then a button for the rest
    var i = from, rows = D.c.length / 4;
    for (var added = 0; i < to && added < CHUNK; added++) {
      if (i >= rows) {
        into.appendChild(el("div", S.stub, "calls not embedded in this page: " + fmt(to - i) +
                               "; print(t) lists them, t.to_json() exports them"));
        return;
      }
      var n = 1;
      if (fold && col(i, 2) === 1) while (i + n < Math.min(to, rows) && col(i + n, 2) === 1 && same(i, i + n)) n++;
      into.appendChild(node(i, n));
      i += n > 1 ? n : col(i, 2);
    }
    if (i < to) into.appendChild(more(i, to, fold));
  }
  function expand(stub) {
    var frag = document.createDocumentFragment();
    data();
    fill(frag, +stub.getAttribute("data-from"), +stub.getAttribute("data-to"), stub.getAttribute("data-fold") === "1");
    stub.replaceWith(frag);
  }
  root.querySelectorAll("[data-stub]").forEach(function (stub) {  // the static stubs become buttons
    var b = more(+stub.getAttribute("data-from"), +stub.getAttribute("data-to"), stub.getAttribute("data-fold") === "1");
    if (stub.hasAttribute("data-auto")) b.setAttribute("data-auto", "");
    stub.replaceWith(b);
  });
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

STEPS_JS = r"""
(function () {
  var root = document.getElementById("__ID__");
  if (!root || root.hasAttribute("data-live")) return;
  root.setAttribute("data-live", "");
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
  nav.style.display = "";
  root.querySelector("[data-nojs]").style.display = "none";
  nav.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("[data-go]");
    if (b) show(at + +b.getAttribute("data-go"));
  });
  var page = root.hasAttribute("data-page");  // a page of its own takes the keys; in a notebook, only with focus
  (page ? document : root).addEventListener("keydown", function (e) {
    var go = {ArrowRight: 1, ArrowLeft: -1}[e.key];  // up and down still scroll
    var to = {Home: 0, End: steps.length - 1}[e.key];
    if (go) show(at + go);
    else if (to !== undefined) show(to);
    else return;
    e.preventDefault(); e.stopPropagation();  // the host page (slides, a notebook) must not act on it too
  });
  show(0);
  if (page) root.focus();
})();
"""

_ids = itertools.count(1)


def render(trace, nodes: int = NODE_BUDGET, depth: int = STATIC_DEPTH, scroll: bool = True) -> str:
    """The trace as an HTML fragment: header, notes, the call tree; the rest of it as embedded JSON.

    nodes: rows in the static HTML (breadth first); depth: its levels; scroll: cap the tree's
    height, as a notebook output should (a page lets it run long).
    """
    try:
        root = trace.root
    except RuntimeError:
        return f"<code>{_esc(repr(trace))}</code>"
    plan, rows = _plan(root, nodes, depth)
    calls, index, sizes, total = _number(root, _static_calls(plan), EMBED_LIMIT)
    tree = _StaticTree(index, sizes, plan, open_depth=depth if rows <= OPEN_ALL else OPEN_DEPTH)
    body = tree.children_html(root)
    payload = _script_json(_table(calls, sizes))
    view_id = _view_id(payload)
    return "\n".join([
        f'<div class="tracer-view" id="{view_id}" style="{STYLES["view"]}"><style>{FRAGMENT_CSS}</style>',
        _header(trace.meta, total - 1), _notes(trace.meta, total - 1 - tree.hidden, total - 1),
        f'<div style="{STYLES["scroll"] if scroll else ""}">{body}</div>',
        f'<script type="application/json" data-calls>{payload}</script>',
        f"<script>{_script(TREE_JS, view_id)}</script></div>"])


def render_page(trace, title: str | None = None, **options) -> str:
    """A standalone HTML page of the trace: inline CSS and JS, nothing fetched."""
    options.setdefault("scroll", False)
    return _page(title or f"tracer: {len(trace):,} calls", render(trace, **options))


def render_diff(diff) -> str:
    """A Diff as a table: calls only in a, only in b, and calls whose counts differ."""
    rows = [("only in a", name, f"{n:,}", "&ndash;") for name, n in sorted(diff.only_a.items())]
    rows += [("only in b", name, "&ndash;", f"{n:,}") for name, n in sorted(diff.only_b.items())]
    rows += [("count differs", name, f"{n:,}", f"{m:,}") for name, (n, m) in sorted(diff.changed.items())]
    if not rows:
        return f'<div style="{STYLES["view"]}">{_esc(diff)}</div>'
    td = f'<td style="{STYLES["cell"]}">'
    body = "".join(f'<tr style="background:transparent">{td}{what}</td>{td}<b>{_esc(name)}</b></td>{td}{a}</td>{td}{b}</td></tr>'
                   for what, name, a, b in [("", "call", "a", "b"), *rows])
    summary = f"{len(diff.only_a):,} only in a, {len(diff.only_b):,} only in b, {len(diff.changed):,} with different counts"
    return (f'<div style="{STYLES["view"]}"><div style="{STYLES["head"]}">{summary}</div>'
            f'<table style="{STYLES["table"]}">{body}</table></div>')


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

    def __len__(self):
        return len(self.calls)

    def __repr__(self):
        return f"<StepThrough {len(self.calls)} of {self.total} calls>"

    def _repr_html_(self):
        return self.html()

    def html(self, page: bool = False) -> str:
        n = len(self.calls)
        sections = "\n".join(_step_html(call, k, n) for k, call in enumerate(self.calls))
        view_id = _view_id(sections)
        shown = f"the first {n:,} of {self.total:,} calls" if n < self.total else f"all {n:,} calls"
        button = f'<button style="{STYLES["button"]}" data-go='
        return (f'<div class="tracer-view" id="{view_id}" tabindex="0"{" data-page" if page else ""} '
                f'style="{STYLES["view"]}"><style>{FRAGMENT_CSS}</style>'
                f'<div style="{STYLES["head"]}">{_esc(self.title)}: {shown}, in call order</div>'
                f'<div data-nav style="display:none;margin:.3em 0">{button}"-1">&larr; prev</button> '
                f'{button}"1">next &rarr;</button> <span data-at></span> '
                f'<span style="{STYLES["note"]}">(arrow keys step when this view has focus)</span></div>'
                f'<div data-nojs style="{STYLES["note"]}">Every step is listed below; with JavaScript, '
                f"prev/next buttons show one at a time.</div>\n{sections}\n"
                f"<script>{_script(STEPS_JS, view_id)}</script></div>")

    def save(self, path) -> str:
        """Write a standalone page that steps in a browser on its own; returns the path."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(_page(self.title, self.html(page=True)))
        return str(path)


# -- the static tree ---------------------------------------------------------------------------

def _plan(root, nodes, depth):
    """Whose children the static HTML lists, breadth first, {id(call): (fold groups, how many listed)};
    and how many rows that makes (a folded run costs its listed members too)."""
    plan, left, queue = {}, nodes, deque([root])
    while queue and left > 0:
        call = queue.popleft()
        groups = fold(call.children)
        listed = 0
        for child, n in groups:
            if left <= 0:
                break
            left -= 1 + (min(n, FOLD_LIST) if n > 1 else 0)
            listed += 1
            if child.children and child.depth < depth:
                queue.append(child)
        plan[id(call)] = (groups, listed)
    return plan, nodes - left


def _static_calls(plan) -> set:
    """ids of the calls the static HTML writes a row for, and of the calls whose children it lists."""
    return set(plan).union(id(child) for groups, listed in plan.values() for child, _ in groups[:listed])


class _StaticTree:
    """Writes the planned part of the tree; what it leaves out becomes stubs the script can expand."""

    def __init__(self, index, sizes, plan, open_depth):
        self.index, self.sizes, self.plan, self.open_depth = index, sizes, plan, open_depth
        self.sources_left, self.sources_seen, self.hidden = SOURCE_LIMIT, set(), 0

    def children_html(self, call) -> str:
        groups, listed = self.plan.get(id(call), ((), 0))
        i = self.index[id(call)]
        out, offset, position = [], 0, i + 1
        for child, n in groups[:listed]:
            out.append(self.node_html(child, n, call.children[offset:offset + min(n, FOLD_LIST)]))
            offset += n
            position += n if n > 1 else self.sizes[self.index[id(child)]]
        if position < i + self.sizes[i]:
            out.append(self.stub(position, i + self.sizes[i], fold=True, auto=listed == 0))
        return "".join(out)

    def node_html(self, call, n, members) -> str:
        if n > 1:  # a folded run opens to its members
            rows = "".join(f'<div style="{STYLES["leaf"]}">{_row(member, 1)}</div>' for member in members)
            if n > len(members):
                start = self.index[id(call)] + len(members)
                rows += self.stub(start, start + n - len(members), fold=False, auto=False)
            return self.details(call, n, rows)
        source = self.source(call)
        if call.children:
            if source:
                source = (f'<details><summary style="{STYLES["summary"]};{STYLES["note"]}">source</summary>'
                          f"{source}</details>")
            return self.details(call, 1, source + self.children_html(call))
        if source:  # a leaf opens to its source
            return f'<details><summary style="{STYLES["summary"]}">{_row(call, 1)}</summary>{source}</details>'
        return f'<div style="{STYLES["leaf"]}">{_row(call, 1)}</div>'

    def details(self, call, n, inner) -> str:
        # A call whose children are all left out stays shut: opening it is what fetches them.
        listed = n == 1 and self.plan.get(id(call), ((), 0))[1] > 0
        opened = " open" if listed and call.depth <= self.open_depth else ""
        return (f'<details{opened}><summary style="{STYLES["summary"]}">{_row(call, n)}</summary>'
                f'<div style="{STYLES["children"]}">{inner}</div></details>')

    def stub(self, start, end, fold, auto) -> str:
        """Stands for the calls at positions start..end: says how to see them; the script expands it."""
        self.hidden += end - start
        calls = f"{end - start:,} call{'s' if end - start > 1 else ''}"
        return (f'<div data-stub data-from="{start}" data-to="{end}" data-fold="{int(fold)}"{" data-auto" if auto else ""}'
                f' style="{STYLES["stub"]}">{calls} not shown here: print(t) lists them, t.to_json() exports them</div>')

    def source(self, call) -> str:
        """The function's source as a <pre>, for the first few distinct functions; else ''."""
        key = (call.relpath, call.line)
        if self.sources_left <= 0 or call.kind == "builtin" or not call.line or key in self.sources_seen:
            return ""
        self.sources_seen.add(key)
        text = _source_of(call)
        self.sources_left -= bool(text)
        return _source_pre(text, call) if text else ""


def _row(call, n) -> str:
    """One call's line: layer badge, name, run length, arguments, linked location, how it ended."""
    label, _, what = KINDS.get(call.kind, KINDS["python"])
    out = (f'<span><span style="{BADGES.get(call.kind, BADGES["python"])}" title="{what}">{label}</span>'
           f'<span style="{STYLES["name"]}">{_esc(call.label)}</span>')
    if n > 1:
        out += f'<span style="{STYLES["count"]}"> x {n:,}</span>'
    if _args_text(call) and n == 1:
        out += f' <span style="{STYLES["args"]}">{_esc(_args_text(call))}</span>'
    url = _safe_url(call.url)
    if _location(call) and url:
        out += f' <a href="{_esc(url)}" style="{STYLES["link"]}">{_esc(_location(call))}</a>'
    elif _location(call):
        out += f' <span style="{STYLES["where"]}">{_esc(_location(call))}</span>'
    if _status(call):
        out += f' <span style="{STYLES["status"]}">{_esc(_status(call))}</span>'
    return out + "</span>"


def _source_of(call) -> str:
    try:
        return call.source()
    except OSError:  # the file moved or went since the trace was recorded
        return ""


def _source_pre(text, call) -> str:
    lines = text.rstrip("\n").split("\n")
    shown = lines[:SOURCE_LINES]
    width = len(str(call.line + len(shown)))
    body = "\n".join(f'<span style="{STYLES["lineno"]}">{call.line + k:>{width}}  </span>{_esc(line)}'
                     for k, line in enumerate(shown))
    if len(lines) > len(shown):
        body += f'\n<span style="{STYLES["note"]}">... {len(lines) - len(shown):,} more lines at the link</span>'
    return f'<pre style="{STYLES["source"]}">{body}</pre>'


def _header(meta, n_calls) -> str:
    facts = [f"<b>{n_calls:,}</b> calls"]
    facts += [f"{key} {_esc(', '.join(meta[key]))}" for key in ("layers", "include") if meta.get(key)]
    facts += [f"torch {_esc(meta['torch'])}"] if meta.get("torch") else []
    legend = " ".join(f'<span style="{BADGES[kind]}" title="{what}">{label}</span>{what}'
                      for kind, (label, _, what) in KINDS.items() if kind in meta.get("layers", ()))
    return (f'<div style="{STYLES["head"]}">tracer: {" &middot; ".join(facts)}'
            f'<div style="{STYLES["note"]}">{legend}</div></div>')


def _notes(meta, shown, n_calls) -> str:
    notes = [_esc(note) for note in meta.get("notes", ())]
    if meta.get("hidden_below_depth") and meta.get("depth") is not None:
        notes.append(f"{meta['hidden_below_depth']:,} calls deeper than depth={_esc(meta['depth'])} were not recorded")
    if shown < n_calls:
        notes.append(f"{shown:,} of {n_calls:,} calls are shown here; with JavaScript (a trusted notebook or "
                     "a browser) the rest open in place; print(t) lists every call, t.to_json() exports them")
    return "".join(f'<div style="{STYLES["note"]}">note: {note}</div>' for note in notes)


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
    """The tree as tables: functions [label, kind, location, url], strings, and 4 numbers a call
    (function, arguments, subtree size, how it ended)."""
    functions, function_ids, strings, string_ids, flat = [], {}, [""], {"": 0}, []
    for i, call in enumerate(calls):
        key = (call.name, call.module, call.kind, call.relpath, call.line)
        if key not in function_ids:
            function_ids[key] = len(functions)
            functions.append([call.label, call.kind, _location(call), _safe_url(call.url)])
        texts = (_args_text(call), _status(call) if call.error or call.open else "")
        for text in texts:
            if text not in string_ids:
                string_ids[text] = len(strings)
                strings.append(text)
        flat += (function_ids[key], string_ids[texts[0]], sizes[i], string_ids[texts[1]])
    return {"f": functions, "s": strings, "c": flat}


def _script_json(data) -> str:
    """JSON that cannot end its <script> element: <, > and & are written as \\u escapes."""
    text = json.dumps(data, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _step_html(call, k, n) -> str:
    path = [c.name for c in call.ancestors() if c.kind != "block"][::-1]
    trail = ("... &gt; " if len(path) > 6 else "") + _esc(" > ".join(path[-6:]))
    td = f'<td style="{STYLES["cell"]}">'
    args = "".join(f'<tr style="background:transparent">{td}{_esc(name)}</td>{td}{_esc(value)}</td></tr>'
                   for name, value in call.args.items())
    text = _source_of(call)
    note = f'<div style="{STYLES["note"]}">'
    return (f'<div data-step="{k}" style="{STYLES["section"]}">'
            f"{note}step {k + 1:,} of {n:,}, depth {call.depth:,}</div>"
            f'<div style="font-size:115%">{_row(call, 1)}</div>{note}called from: {trail or "the traced block"}</div>'
            + (f'<table style="{STYLES["table"]}">{args}</table>' if args else f"{note}no arguments recorded</div>")
            + (_source_pre(text, call) if text else f"{note}no Python source for this call</div>") + "</div>")


# -- small pieces ------------------------------------------------------------------------------

def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def _location(call) -> str:
    return "" if call.kind == "builtin" else call.location


def _args_text(call) -> str:
    """The argument summaries; a resumed generator has none of its own and says that it went on."""
    text = format_args(call.args) if call.args else ""
    if getattr(call, "batch", None) is not None:  # a DataLoader batch (trace(workers=True))
        text = f"batch={call.batch}" + (f", {text}" if text else "")
    return f"(resumed) {text}".rstrip() if call.resumed else text


def _status(call) -> str:
    return f"raised {call.error}" if call.error else "still running when recording stopped" if call.open else ""


def _safe_url(url) -> str | None:
    """Only https links ever reach an href: a javascript: URL would run on click."""
    return url if isinstance(url, str) and url.startswith("https://") else None


def _view_id(content: str) -> str:
    """Unique in a notebook, yet the same for the same trace in the same order of a run."""
    return f"tracer-{hashlib.sha1(content.encode()).hexdigest()[:10]}-{next(_ids)}"


def _script(template, view_id) -> str:
    constants = {"__ID__": view_id, "__CHUNK__": str(CHUNK), "__STYLES__": json.dumps(STYLES),
                 "__KINDS__": json.dumps(KINDS), "__BADGES__": json.dumps(BADGES)}
    for name, value in constants.items():
        template = template.replace(name, value)
    return template


def _page(title, body) -> str:
    return PAGE.format(title=_esc(title), body=body)
