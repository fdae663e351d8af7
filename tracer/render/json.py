"""A trace as JSON, and back: ``t.to_json()`` and ``tracer.load()``.

Schema ``tracer-trace`` version 1: one object,

    {"schema": "tracer-trace", "version": 1, "meta": {...},
     "calls": [{"id": 0, "parent": null, "name": "<traced block>", "kind": "block", ...}, ...]}

``calls`` lists every call in call order (preorder); ``parent`` is the id of the enclosing call
(null for the root, id 0). Each call has ``name``, ``module``, ``relpath``, ``line``, ``url``, ``kind``
(python, builtin, aten, block), ``args`` (name -> summary), ``error``, ``open``, ``start_ns`` and
``duration_ns``. A flat list, not nested objects, so that a 10,000-deep tree loads without recursion.
"""

from __future__ import annotations

import json
import os

from ..model import Call, Trace

SCHEMA = "tracer-trace"
VERSION = 1
FIELDS = ("name", "module", "relpath", "line", "kind", "args", "error", "open", "start_ns", "duration_ns")


def to_dict(trace) -> dict:
    ids = {}
    calls = []
    for call in trace.root.walk():
        ids[id(call)] = len(calls)
        row = {"id": len(calls), "parent": ids[id(call.parent)] if call.parent is not None else None}
        for field in FIELDS:
            row[field] = getattr(call, field)
        row["url"] = call.url
        calls.append(row)
    return {"schema": SCHEMA, "version": VERSION, "meta": trace.meta, "calls": calls}


def dumps(trace) -> str:
    return json.dumps(to_dict(trace), separators=(",", ":"))


def from_dict(data: dict) -> Trace:
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"not a tracer trace: expected an object with schema {SCHEMA!r} (made by Trace.to_json())")
    if data.get("version") != VERSION:
        raise ValueError(f"trace schema version {data.get('version')!r} is not supported; this tracer reads version {VERSION}")
    calls: list[Call] = []
    for row in data["calls"]:
        parent = calls[row["parent"]] if row["parent"] is not None else None
        call = Call(row["name"], parent=parent)
        for field in FIELDS:
            setattr(call, field, row.get(field))
        call.args = call.args or {}
        if parent is not None:
            parent.children.append(call)
        calls.append(call)
    if not calls:
        raise ValueError("the trace has no root call")
    return Trace(root=calls[0], meta=data.get("meta", {}))


def load(source) -> Trace:
    """A Trace from a JSON string, a path to a JSON file, or the dict ``to_dict`` made."""
    if isinstance(source, dict):
        return from_dict(source)
    if isinstance(source, (str, os.PathLike)) and not str(source).lstrip().startswith("{"):
        with open(source, encoding="utf-8") as f:
            return from_dict(json.load(f))
    if isinstance(source, str):
        return from_dict(json.loads(source))
    raise TypeError(f"load takes a JSON string, a file path or a dict, not {type(source).__name__}")
