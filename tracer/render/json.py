"""A trace as JSON, and back: ``t.to_json()`` and ``tracer.load()``.

Schema ``tracer-trace`` version 1: one object,

    {"schema": "tracer-trace", "version": 1, "meta": {...},
     "calls": [{"id": 0, "parent": null, "name": "<traced block>", "kind": "block", ...}, ...]}

``calls`` lists every call in call order (preorder); ``parent`` is the id of the enclosing call
(null for the root, id 0). Each call has ``name``, ``module``, ``relpath``, ``line``, ``url`` (pinned when
saved: a loaded trace keeps it, whatever torch is installed where it is loaded), ``kind``
(python, builtin, aten, block; worker and thread for DataLoader worker processes), ``args`` (name -> summary),
``error``, ``open``, ``resumed`` (a generator or coroutine going on, not a new call), ``start_ns``,
``duration_ns`` and ``batch`` (a DataLoader batch's index, or null; added within version 1: a file without
it reads as null). A flat list, not nested objects, so that a 10,000-deep tree loads without recursion.
"""

from __future__ import annotations

import json
import os

from ..model import Call, Trace

SCHEMA = "tracer-trace"
VERSION = 1
FIELDS = ("name", "module", "relpath", "line", "kind", "args", "error", "open", "resumed", "start_ns", "duration_ns",
          "batch")


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


def from_dict(data: dict, origin: str = "the data") -> Trace:
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"{origin} is not a tracer trace: expected an object with schema {SCHEMA!r} (made by Trace.to_json())")
    if data.get("version") != VERSION:
        raise ValueError(f"{origin}: trace schema version {data.get('version')!r} is not supported; "
                         f"this tracer reads version {VERSION}")
    rows = data.get("calls")
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"{origin}: 'calls' must be a non-empty list whose first entry is the root")
    calls: list[Call] = []
    for index, row in enumerate(rows):
        parent_id = row.get("parent") if isinstance(row, dict) else "?"
        if row.get("id", index) != index or (index == 0) != (parent_id is None) or \
                (parent_id is not None and not (isinstance(parent_id, int) and 0 <= parent_id < index)):
            raise ValueError(f"{origin}: call {index} is malformed: calls are listed in call order with "
                             "'id' equal to their position and 'parent' the id of an earlier call (null for the root)")
        parent = calls[parent_id] if parent_id is not None else None
        call = Call(row.get("name", "?"), parent=parent)
        for field in FIELDS:
            setattr(call, field, row.get(field))
        call.args = call.args or {}
        call.open, call.resumed = bool(call.open), bool(call.resumed)
        call.pinned_url = row.get("url")
        if parent is not None:
            parent.children.append(call)
        calls.append(call)
    return Trace(root=calls[0], meta=data.get("meta", {}))


def load(source) -> Trace:
    """A Trace from a JSON string, a path to a JSON file, or the dict ``to_dict`` made."""
    if isinstance(source, dict):
        return from_dict(source)
    if isinstance(source, (str, os.PathLike)) and not str(source).lstrip().startswith("{"):
        with open(source, encoding="utf-8") as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as error:
                raise ValueError(f"{source} is not JSON ({error}); expected a file written by Trace.to_json()") from None
        return from_dict(data, str(source))
    if isinstance(source, str):
        try:
            data = json.loads(source)
        except json.JSONDecodeError as error:
            raise ValueError(f"not JSON ({error}); expected what Trace.to_json() returns") from None
        return from_dict(data)
    raise TypeError(f"load takes a JSON string, a file path or a dict, not {type(source).__name__}")
