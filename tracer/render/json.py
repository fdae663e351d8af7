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
import re

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


KINDS = ("python", "builtin", "aten", "block", "worker", "thread", "module")  # module: a view's node
_NS_LIMIT = 2 ** 63  # a clock reading or a duration in nanoseconds fits in 64 bits
_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")  # a file or folder name inside a package
_META_TEXTS = ("backend", "python", "torch", "torch_commit", "recorded_at", "truncated_at", "error", "subtree_of")
_META_COUNTS = ("events", "depth", "duration_ns", "hidden_below_depth")


def from_dict(data: dict, origin: str = "the data") -> Trace:
    """A Trace from what to_dict made. The data may come from anyone: every row and field is checked here,
    so that no renderer is given a wrong type and no relpath names a file outside an installed package."""
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"{origin} is not a tracer trace: expected an object with schema {SCHEMA!r} (made by Trace.to_json())")
    if data.get("version") != VERSION:
        raise ValueError(f"{origin}: trace schema version {data.get('version')!r} is not supported; "
                         f"this tracer reads version {VERSION}")
    rows = data.get("calls")
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"{origin}: 'calls' must be a non-empty list whose first entry is the root")
    meta = _checked_meta(data.get("meta", {}), origin)
    calls: list[Call] = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"{origin}: call {index} is a {type(row).__name__}, not an object with the call's fields")
        parent_id = row.get("parent")
        if row.get("id", index) != index or isinstance(row.get("id"), bool) or (index == 0) != (parent_id is None) or \
                (parent_id is not None and not (type(parent_id) is int and 0 <= parent_id < index)):
            raise ValueError(f"{origin}: call {index} is malformed: calls are listed in call order with "
                             "'id' equal to their position and 'parent' the id of an earlier call (null for the root)")
        fields = _checked_row(row, index, origin)
        parent = calls[parent_id] if parent_id is not None else None
        call = Call(fields["name"], fields["module"], fields["relpath"], fields["line"], fields["kind"], parent=parent)
        for field in FIELDS[5:]:  # the first five are the call's site, given above in one go
            setattr(call, field, fields[field])
        call.pinned_url = fields["url"]
        if parent is not None:
            parent.children.append(call)
        calls.append(call)
    return Trace(root=calls[0], meta=meta)


def _checked_row(row: dict, index: int, origin: str) -> dict:
    def wrong(field, expected):
        value = repr(row[field])
        value = value if len(value) <= 60 else value[:57] + "..."
        return ValueError(f"{origin}: call {index}: field {field!r} must be {expected}, not {value}")

    out = {}
    for field, default in (("name", "?"), ("module", None), ("error", None), ("url", None)):
        value = row.get(field, default)
        if not (isinstance(value, str) or (value is None and field != "name")):
            raise wrong(field, "a string" if field == "name" else "a string or null")
        out[field] = value
    if out["url"] is not None and not out["url"].startswith("https://"):
        raise wrong("url", "an https:// link or null")
    kind = row.get("kind", "python")
    if kind not in KINDS:
        raise wrong("kind", f"one of {', '.join(KINDS)}")
    out["kind"] = kind
    relpath = row.get("relpath")
    if relpath is not None and not _is_package_path(relpath):
        raise wrong("relpath", "null or a path inside a package, like 'torch/nn/modules/module.py' (no '..', "
                    "no leading '/')")
    out["relpath"] = relpath
    line = row.get("line")
    if line is not None and not (type(line) is int and 1 <= line < _NS_LIMIT):
        raise wrong("line", "a line number (a whole number from 1) or null")
    out["line"] = line
    for field in ("start_ns", "duration_ns"):
        value = row.get(field, 0)
        if not (type(value) is int and -_NS_LIMIT < value < _NS_LIMIT):
            raise wrong(field, "a whole number of nanoseconds (64 bits)")
        out[field] = value
    for field in ("open", "resumed"):
        value = row.get(field, False)
        if type(value) is not bool:
            raise wrong(field, "true or false")
        out[field] = value
    batch = row.get("batch")
    if batch is not None and not (type(batch) is int and 0 <= batch < _NS_LIMIT):
        raise wrong("batch", "a batch index (a whole number from 0) or null")
    out["batch"] = batch
    args = row.get("args") or {}
    if not isinstance(args, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in args.items()):
        raise wrong("args", "an object of parameter names to summaries (strings)")
    out["args"] = args
    return out


def _is_package_path(relpath) -> bool:
    """'torch/nn/modules/module.py' (a package's name, then names inside it) or 'helpers.py' (a module of its own);
    nothing that climbs out or imports."""
    if not isinstance(relpath, str):
        return False
    parts = relpath.split("/")
    head = parts[0][:-3] if len(parts) == 1 and parts[0].endswith(".py") else parts[0]  # a module of its own
    return head.isidentifier() and all(_PART.fullmatch(part) and part.strip(".") for part in parts)


def _checked_meta(meta, origin: str) -> dict:
    def wrong(what, expected):
        return ValueError(f"{origin}: meta{what} must be {expected}")

    if not isinstance(meta, dict):
        raise wrong("", "an object")
    for key in ("notes", "layers", "include"):
        value = meta.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise wrong(f"[{key!r}]", "a list of strings")
    for key in _META_TEXTS:
        if not isinstance(meta.get(key), (str, type(None))):
            raise wrong(f"[{key!r}]", "a string or null")
    for key in _META_COUNTS:
        value = meta.get(key)
        if value is not None and not (type(value) is int and -_NS_LIMIT < value < _NS_LIMIT):
            raise wrong(f"[{key!r}]", "a whole number or null")
    return meta


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
            except RecursionError:
                raise ValueError(f"{source} nests too deep to be a trace; expected a file written by Trace.to_json()") from None
        return from_dict(data, str(source))
    if isinstance(source, str):
        try:
            data = json.loads(source)
        except json.JSONDecodeError as error:
            raise ValueError(f"not JSON ({error}); expected what Trace.to_json() returns") from None
        except RecursionError:
            raise ValueError("the JSON nests too deep to be a trace; expected what Trace.to_json() returns") from None
        return from_dict(data)
    raise TypeError(f"load takes a JSON string, a file path or a dict, not {type(source).__name__}")
