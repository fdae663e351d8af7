"""Renderers: one tree, many views. Each reads a Trace and never changes it."""

from __future__ import annotations


def fold(children):
    """Runs of consecutive sibling leaves of the same function (name, place, kind, error), as (first call, count) pairs."""
    out = []
    for call in children:
        if out and not call.children and not out[-1][0].children and _same_function(out[-1][0], call):
            out[-1][1] += 1
        else:
            out.append([call, 1])
    return out


def _same_function(a, b) -> bool:
    return ((a.name, a.module, a.relpath, a.line, a.kind, a.error, a.resumed, a.batch)
            == (b.name, b.module, b.relpath, b.line, b.kind, b.error, b.resumed, b.batch))


def format_args(args: dict, limit: int = 6) -> str:
    items = list(args.items())
    text = ", ".join(f"{k}={v}" for k, v in items[:limit])
    if len(items) > limit:
        text += f", +{len(items) - limit} more"
    return text


def format_ns(ns: int) -> str:
    if ns >= 1_000_000_000:
        return f"{ns / 1e9:.2f} s"
    if ns >= 1_000_000:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1_000:
        return f"{ns / 1e3:.1f} us"
    return f"{ns} ns"
