"""The call tree as indented text: what ``print(trace)`` and the command line show."""

from __future__ import annotations

from . import fold, format_args, format_ns

_STYLES = {"name": "bold", "builtin": "magenta", "aten": "cyan", "where": "dim", "args": "green",
           "error": "bold red", "time": "yellow", "note": "italic"}


def lines(trace, depth=None, times=False, args=True):
    """Each line of the tree as a list of (text, style) segments."""
    root = trace.root
    out = [[(f"{root.name}", "name")] + ([(f"  {format_ns(root.duration_ns)}", "time")] if times else [])]
    groups = fold(root.children)
    stack = [(c, n, "", i == len(groups) - 1) for i, (c, n) in enumerate(groups)][::-1]
    while stack:
        call, n, prefix, last = stack.pop()
        segs = [(prefix + ("└─ " if last else "├─ "), None)]
        segs.append((call.label, "name" if call.kind == "python" else call.kind))
        if n > 1:
            segs.append((f" x{n}", "name"))
        if call.kind != "python":
            segs.append((f" [{call.kind}]", call.kind))
        if call.location and call.kind != "builtin":
            segs.append((f"  {call.location}", "where"))
        if call.resumed:
            segs.append(("  (resumed)", "note"))
        note = getattr(call, "note", None)  # a view's node says what it folds
        if note:
            segs.append((f"  ({note})", "note"))
        if args and call.args and n == 1:
            segs.append((f"  {format_args(call.args)}", "args"))
        if call.error:
            segs.append((f"  raised {call.error}", "error"))
        if call.open:
            segs.append(("  (still running when recording stopped)", "error"))
        if times:
            segs.append((f"  {format_ns(call.duration_ns)}", "time"))
        out.append(segs)
        if depth is not None and call.depth - root.depth >= depth:
            if call.children:
                n_below = len(call.children)
                out.append([(prefix + ("   " if last else "│  ") + f"└─ ... {n_below} call{'s' if n_below > 1 else ''} below", "note")])
            continue
        groups = fold(call.children)
        child_prefix = prefix + ("   " if last else "│  ")
        for i in range(len(groups) - 1, -1, -1):
            stack.append((groups[i][0], groups[i][1], child_prefix, i == len(groups) - 1))
    for note in trace.meta.get("notes", ()):
        out.append([(f"note: {note}", "note")])
    return out


def render(trace, depth=None, times=False, args=True, color=False) -> str:
    rows = lines(trace, depth=depth, times=times, args=args)
    if color:
        try:
            from rich.console import Console
            from rich.text import Text
        except ImportError:
            color = False
    if not color:
        return "\n".join("".join(text for text, _ in row) for row in rows)
    import io
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=10_000, highlight=False, soft_wrap=True)
    for row in rows:
        console.print(Text.assemble(*[(text, _STYLES.get(style, "")) if style else text for text, style in row]))
    return buffer.getvalue().rstrip("\n")
