"""Chrome trace-event JSON, which ui.perfetto.dev and chrome://tracing open.

Each call is a complete event ("ph": "X") with microsecond timestamps; the layer is the category,
and ``args`` carry the source location, the pinned URL, the error, the argument summaries (under
``arguments``) and the DataLoader batch index (``batch``).

DataLoader worker processes (``trace(workers=True)``) get a process track each, with the worker's pid as
the process id and a ``process_name`` event, and a thread track per thread (``thread_name``); a flow event
("s" in the worker's fetch, "f" in the main call that received it) links each batch across the processes.
"""

from __future__ import annotations

import os


def to_dict(trace) -> dict:
    root = trace.root
    origin = root.start_ns
    main_pid = trace.meta.get("pid") or os.getpid()
    events = []
    tracks = {id(root): (main_pid, 1)}
    thread_ids: dict = {}

    def us(ns):
        return (ns - origin) / 1000

    if any(c.kind == "worker" for c in root.children):
        events.append({"name": "process_name", "ph": "M", "pid": main_pid, "tid": 1,
                       "args": {"name": f"main (pid {main_pid})"}})
    for call in root.walk():
        if call.parent is None:
            continue
        if call.kind == "worker":
            pid = _pid(call, main_pid)
            tracks[id(call)] = (pid, 0)
            events.append({"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
                           "args": {"name": f"{call.name} (pid {pid}, {call.args.get('start_method', '?')})"}})
            continue
        if call.kind == "thread":
            pid = tracks[id(call.parent)][0]
            tid = thread_ids[pid] = thread_ids.get(pid, 0) + 1
            tracks[id(call)] = (pid, tid)
            events.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                           "args": {"name": call.name.partition(" ")[2] or call.name}})
            continue
        pid, tid = tracks[id(call)] = tracks[id(call.parent)]
        args = {"location": call.location}
        if call.url:
            args["url"] = call.url
        if call.error:
            args["error"] = call.error
        if call.args:
            args["arguments"] = call.args  # a key of their own: a parameter named `url` must not replace the link
        if call.batch is not None:
            args["batch"] = call.batch
        events.append({"name": call.label, "cat": call.kind, "ph": "X", "pid": pid, "tid": tid,
                       "ts": us(call.start_ns), "dur": max(call.duration_ns, 0) / 1000, "args": args})
    if any(c.kind == "worker" for c in root.children):
        from ..record.workers import batch_pairs
        for n, (main, fetch) in enumerate(batch_pairs(root)):
            if main is None or fetch is None:
                continue
            for phase, call in (("s", fetch), ("f", main)):
                pid, tid = tracks[id(call)]
                flow = {"name": f"batch {call.batch}", "cat": "batch", "ph": phase, "id": n, "pid": pid, "tid": tid,
                        "ts": us(call.start_ns)}
                if phase == "f":
                    flow["bp"] = "e"
                events.append(flow)
    return {"traceEvents": events, "displayTimeUnit": "ns",
            "otherData": {k: v for k, v in trace.meta.items() if isinstance(v, (str, int, float, type(None)))}}


def _pid(worker, fallback) -> int:
    try:
        return int(worker.args.get("pid"))
    except (TypeError, ValueError):
        return fallback


def dumps(trace) -> str:
    import json
    return json.dumps(to_dict(trace), separators=(",", ":"))
