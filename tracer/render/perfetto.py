"""Chrome trace-event JSON, which ui.perfetto.dev and chrome://tracing open.

Each call is a complete event ("ph": "X") with microsecond timestamps; the layer is the category,
and ``args`` carry the source location, the pinned URL, the error and the argument summaries
(under ``arguments``).
"""

from __future__ import annotations

import json
import os


def to_dict(trace) -> dict:
    root = trace.root
    origin = root.start_ns
    pid = os.getpid()
    events = []
    for call in root.walk():
        if call.parent is None:
            continue
        args = {"location": call.location}
        if call.url:
            args["url"] = call.url
        if call.error:
            args["error"] = call.error
        if call.args:
            args["arguments"] = call.args  # a key of their own: a parameter named `url` must not replace the link
        events.append({"name": call.label, "cat": call.kind, "ph": "X", "pid": pid, "tid": 1,
                       "ts": (call.start_ns - origin) / 1000, "dur": max(call.duration_ns, 0) / 1000, "args": args})
    return {"traceEvents": events, "displayTimeUnit": "ns",
            "otherData": {k: v for k, v in trace.meta.items() if isinstance(v, (str, int, float, type(None)))}}


def dumps(trace) -> str:
    return json.dumps(to_dict(trace), separators=(",", ":"))
