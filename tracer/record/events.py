"""The raw event stream: (kind, what, time_ns, extra) per event, appended by the hot callbacks.

The stream is an EventLog (_recording.h: C structs, read back as these 4-tuples) where the C recorders are
built, else a list of the tuples.

`what` is a code object (python), an interned (module, name) pair (builtin) or an OpOverload (aten);
`extra` is the argument summaries on a call and the error on a return. Everything else (names, lines,
URLs) is resolved once, when the tree is built.
"""

CALL, RETURN, C_CALL, C_RETURN, ATEN_CALL, ATEN_RETURN, TRUNCATED, RESUME = range(8)  # RESUME: a generator goes on

RAISED = "exception"  # the error of a call that unwound when the backend cannot see the exception's type
RAISED_HERE = "exception raised here"  # the same, unwinding from a raise statement in that very call
