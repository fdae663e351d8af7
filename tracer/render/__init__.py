"""Renderers: one tree, many views. Each reads a Trace and never changes it."""

from __future__ import annotations


def fold(children):
    """Runs of consecutive sibling leaves with the same name and kind, as (first call, count) pairs."""
    out = []
    for call in children:
        if out and not call.children and not out[-1][0].children and out[-1][0].name == call.name \
                and out[-1][0].kind == call.kind and out[-1][0].error == call.error:
            out[-1][1] += 1
        else:
            out.append([call, 1])
    return out


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
