"""Views: pure ``Trace -> Trace`` functions that show a trace at the level the reader thinks in.

In the manner of pyinstrument's processors, each view reads a trace and returns a new one made of
copies; the trace it was given is left as it is, so the full tree is always one step away. A view
never invents a call: every node it shows stands for calls that ran, and ``node.origin`` is the call
of the original trace it stands for (``trace.subtree(node.origin)`` shows all of it).

    views.module_level(t)       each module call as one node: ``Linear(fc)``, with its input
    views.hide_plumbing(t)      attribute look-ups, grad-mode switches and other plumbing left out, counted
    views.fold_resumptions(t)   a generator and its resumptions as one node
    views.hide_imports(t)       what imports ran (each module's body) left out, counted

Views compose, in either order: ``views.hide_plumbing(views.module_level(t, inside=True))``.
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter

from .model import Call, Trace

__all__ = ["PLUMBING", "fold_resumptions", "hide_imports", "hide_plumbing", "module_level"]

# Calls that carry no idea of their own: how a module finds its submodules and parameters
# (``__getattr__``), grad-mode switches (``torch.no_grad()`` entered and left), the checks that
# torch.compile and TorchScript tracing are off, and the lookups behind ``torch.backends`` flags.
PLUMBING = (
    "Module.__getattr__",
    "_NoParamDecoratorContextManager.__new__",
    "no_grad.__init__", "no_grad.__enter__", "no_grad.__exit__",
    "enable_grad.__init__", "enable_grad.__enter__", "enable_grad.__exit__",
    "set_grad_enabled.__init__", "set_grad_enabled.__enter__", "set_grad_enabled.__exit__",
    "_DecoratorContextManager.clone", "_DecoratorContextManager.__call__",
    "is_compiling", "is_dynamo_compiling", "is_exporting", "_is_compiling",
    "torch._C._get_tracing_state",
    "ContextProp.__get__",
    "torch._C._has_torch_function*", "has_torch_function*",
    "torch._C.is_grad_enabled", "torch._C._set_grad_enabled",
)

_WRAPPER = "Module._wrapped_call_impl"
_CALL_IMPL = "Module._call_impl"
_MODULE = "torch.nn.modules.module"


class ViewCall(Call):
    """A node of a view: a Call, plus the call of the original trace it stands for and a note on what it folds."""

    __slots__ = ("origin", "note")

    def __init__(self, *args, origin=None, note=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.origin = origin
        self.note = note


def _copy(call: Call, parent: Call | None, **changes) -> ViewCall:
    """A copy of one call (not of its children), hung under `parent`."""
    fields = dict(name=call.name, module=call.module, relpath=call.relpath, line=call.line, kind=call.kind,
                  args=call.args, error=call.error, start_ns=call.start_ns, duration_ns=call.duration_ns,
                  file=call.file)
    fields.update(changes)
    node = ViewCall(**fields, parent=parent, origin=_origin(call),
                    note=getattr(call, "note", None))
    node.open, node.resumed, node.pinned_url = call.open, call.resumed, call.pinned_url
    node.batch = getattr(call, "batch", None)
    if parent is not None:
        parent.children.append(node)
    return node


def _origin(call: Call) -> Call:
    """The recorded call a view's node stands for (the call itself in a recorded trace)."""
    return getattr(call, "origin", None) or call


def _view(trace: Trace, root: Call, view: str, notes=()) -> Trace:
    meta = dict(trace.meta)
    meta["views"] = [*trace.meta.get("views", ()), view]
    meta["notes"] = [*trace.meta.get("notes", ()), *notes]
    return Trace(root=root, meta=meta)


def _is(call: Call, name: str) -> bool:
    return call.name == name and call.module == _MODULE


# -- module_level --------------------------------------------------------------------------------

def module_level(trace: Trace, inside: bool = False) -> Trace:
    """Each module call as one node, named by its class and the attribute path it was reached by.

    ``model(x)`` runs ``Module._wrapped_call_impl`` -> ``Module._call_impl`` -> ``forward``; the view
    shows that as one node of kind ``"module"``, ``Conv2d(layer1.0.conv1)``, placed at the forward's
    source, with the forward's arguments (``input=f32[1, 64, 56, 56] cpu``). The path comes from the
    trace itself: the ``Module.__getattr__`` call that fetched the submodule (``self.conv1``), or its
    position among the modules a container ran (``Sequential``, ``ModuleList``).

    inside  False: modules only, the shape of the network. True: also every other call the forward
            made (functional calls, operators), under the module that made it.
    """
    root = _copy(trace.root, None)
    hidden = Counter()
    # (original call, node to hang its view under, attribute path of the module that encloses it)
    stack = [(child, root, None) for child in reversed(trace.root.children)]
    # names come from the recorded trace, so a view that hid the look-ups before this one loses none
    names = {}
    for call in _origin(trace.root).walk():
        if call.children:
            names.update(_attribute_names(call))
    while stack:
        call, parent, path = stack.pop()
        if _is(call, _WRAPPER):
            node, forward_calls, module_path = _module_node(call, parent, path, names)
            stack.extend((c, node, module_path) for c in reversed(forward_calls))
            continue
        if inside:
            node = _copy(call, parent)
            stack.extend((c, node, path) for c in reversed(call.children))
        else:
            hidden[call.name] += 1
            stack.extend((c, parent, path) for c in reversed(call.children))
    notes = ()
    if hidden:
        notes = (f"module level: {sum(hidden.values()):,} calls that are not module calls are left out"
                 " (module_level(t, inside=True) keeps them)",)
    return _view(trace, root, "module_level", notes)


def _attribute_names(call: Call) -> dict:
    """{id(module call): attribute path} for the module calls among `call`'s children, read from the calls before them.

    ``self.conv1(x)`` looks ``conv1`` up first (``Module.__getattr__``); ``for head in self.heads`` looks
    ``heads`` up and iterates it, so its members are ``heads.0``, ``heads.1``; a container's own forward
    runs its members with no look-up, by position.
    """
    names, container, position, lookup = {}, None, 0, None
    for child in call.children:
        if _is(child, "Module.__getattr__"):
            lookup = _string(child.args.get("name"))
        elif _is(child, _WRAPPER):
            if lookup is not None:
                names[id(child)] = lookup
            else:
                names[id(child)] = f"{container}.{position}" if container else str(position)
                position += 1
            lookup = None
        elif child.name.endswith((".__iter__", ".__getitem__")) and child.module and child.module.startswith("torch.nn"):
            container, position, lookup = lookup, 0, None  # iterating a container fetched just before
        elif child.kind != "builtin":
            lookup = None
    return names


def _string(summary) -> str | None:
    """The text of a short string's summary (``'conv1'`` -> ``conv1``), None for anything else."""
    if isinstance(summary, str) and len(summary) >= 2 and summary[0] == summary[-1] and summary[0] in "'\"":
        return summary[1:-1]
    return None


def _module_node(wrapper: Call, parent: Call, path: str | None, names: dict):
    """The node for one module call, the calls that go under it, and its attribute path."""
    call_impl = next((c for c in wrapper.children if _is(c, _CALL_IMPL)), None)
    body = call_impl.children if call_impl is not None else wrapper.children
    forward = next((c for c in body if c.name.endswith(".forward") or c.name == "forward"), None)
    inner = [c for c in body if c is not forward] + (forward.children if forward is not None else [])
    inner.sort(key=lambda c: c.start_ns)
    cls = _class_name(wrapper, forward)
    attribute = names.get(id(_origin(wrapper)))
    if path is None:
        module_path = ""  # the outermost module of the block: its name is its class
    else:
        module_path = attribute if not path else f"{path}.{attribute}" if attribute else path
    label = f"{cls}({module_path})" if module_path else cls
    where = forward if forward is not None else wrapper
    args = {k: v for k, v in where.args.items() if k != "self"} if forward is not None else {}
    node = _copy(wrapper, parent, name=label, kind="module", module=where.module, relpath=where.relpath,
                 line=where.line, file=where.file, args=args,
                 error=wrapper.error or (forward.error if forward is not None else None))
    return node, inner, module_path


def _class_name(wrapper: Call, forward: Call | None) -> str:
    summary = wrapper.args.get("self")
    if isinstance(summary, str) and re.fullmatch(r"[A-Za-z_]\w*", summary):
        return summary
    if forward is not None and "." in forward.name:
        return forward.name.rsplit(".", 1)[0]
    return "Module"


# -- hide_plumbing -------------------------------------------------------------------------------

def hide_plumbing(trace: Trace, patterns=PLUMBING) -> Trace:
    """The trace without the calls that match `patterns` (globs over the name or module.name).

    A hidden call's own children stay, one level up, so nothing below plumbing is lost; the trace's
    notes say how many calls of each kind were hidden.
    """
    match = re.compile("|".join(fnmatch.translate(p) for p in patterns)).match
    root = _copy(trace.root, None)
    hidden = Counter()
    stack = [(child, root) for child in reversed(trace.root.children)]
    while stack:
        call, parent = stack.pop()
        if match(call.name) or (call.module and match(f"{call.module}.{call.name}")):
            hidden[call.label] += 1
            stack.extend((c, parent) for c in reversed(call.children))
            continue
        node = _copy(call, parent)
        stack.extend((c, node) for c in reversed(call.children))
    notes = ()
    if hidden:
        most = ", ".join(f"{name} x{n}" for name, n in hidden.most_common(4))
        more = f" and {len(hidden) - 4} more kinds" if len(hidden) > 4 else ""
        notes = (f"plumbing hidden: {sum(hidden.values()):,} calls ({most}{more})",)
    return _view(trace, root, "hide_plumbing", notes)


# -- fold_resumptions ----------------------------------------------------------------------------

def fold_resumptions(trace: Trace) -> Trace:
    """Each generator as one node: its first call with every resumption that follows it among its siblings.

    ``for name, m in model.named_modules()`` resumes the generator once per item; each resumption is
    a call of its own (marked resumed). Folded, the generator's node holds what all of them called, and
    its note says how many resumptions it took in; nested generators fold level by level.
    """
    root = _copy(trace.root, None)
    stack = [(trace.root.children, root)]
    total = 0
    while stack:
        children, parent = stack.pop()
        groups: list[list[Call]] = []
        for call in children:
            if call.resumed and groups and _same_code(groups[-1][0], call):
                groups[-1].append(call)
            else:
                groups.append([call])
        for group in groups:
            first = group[0]
            node = _copy(first, parent, duration_ns=sum(c.duration_ns for c in group),
                         error=group[-1].error or first.error)
            if len(group) > 1:
                node.open = group[-1].open
                node.note = f"{len(group) - 1} resumption{'s' if len(group) > 2 else ''} folded in"
                total += len(group) - 1
            stack.append(([c for member in group for c in member.children], node))
    notes = (f"{total:,} generator resumptions folded into their generators",) if total else ()
    return _view(trace, root, "fold_resumptions", notes)


def _same_code(a: Call, b: Call) -> bool:
    return (a.name, a.module, a.relpath, a.line) == (b.name, b.module, b.relpath, b.line)


# -- hide_imports --------------------------------------------------------------------------------

def hide_imports(trace: Trace, hint: str = "") -> Trace:
    """The trace without what imports ran: each ``<module>`` call (a module's body, run by its import) and every
    call below it, left out and counted in one note (`hint` is added to it). Code that did nothing but import
    is traced for its imports: then the trace comes back as it is."""
    root = _copy(trace.root, None)
    modules = hidden = 0
    stack = [(child, root) for child in reversed(trace.root.children)]
    while stack:
        call, parent = stack.pop()
        if call.name == "<module>":  # with the modules its own imports ran
            below = [c.name for c in call.walk()]
            modules += below.count("<module>")
            hidden += len(below)
            continue
        node = _copy(call, parent)
        stack.extend((child, node) for child in reversed(call.children))
    if not modules or not root.children:
        return trace
    note = (f"{hidden:,} calls made while importing {modules:,} module{'s' if modules > 1 else ''} are left out"
            + (f" ({hint})" if hint else ""))
    return _view(trace, root, "hide_imports", (note,))
