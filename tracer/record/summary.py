"""Argument summaries: what a value is, in a few characters, without ever calling its repr.

A tensor reads ``f32[2, 3] cpu`` (``requires_grad`` appended when set), a Module its class name,
a container its type and length, a scalar or short string itself (an int too long to write out its
size, ``int[16610 bits]``), anything else its type name.
Only torch's own value types (dtype, device, Size) are turned into text by str(); user objects
never are, because a repr may be slow, print, or run the traced code again.
"""

from __future__ import annotations

_DTYPES = {
    "float32": "f32", "float64": "f64", "float16": "f16", "bfloat16": "bf16",
    "int64": "i64", "int32": "i32", "int16": "i16", "int8": "i8", "uint8": "u8",
    "bool": "b8", "complex64": "c64", "complex128": "c128",
}
_SCALARS = (int, float, bool, complex, type(None))
_MAX_STR = 40

_by_type: dict[type, object] = {}
# What the C callbacks may do for a type without calling its summariser, from the same summariser:
# a str (every value of the type has that summary), a dict (the shared {value: summary} the summariser
# fills), (that dict, its limit) where a new value's summary is its repr (ints), a 1-tuple (name,) for
# "name[len]", or (None, _tensor) for a plain tensor. Filled beside _by_type; the Python path never reads it.
_fast_by_type: dict[type, object] = {}


def summarise(value) -> str:
    """One value as a short string; safe for any object."""
    kind = type(value)
    fn = _by_type.get(kind)
    if fn is None:
        fn = _by_type[kind] = _summariser_for(kind)
        fast = getattr(fn, "fast", None)
        if fast is not None:
            _fast_by_type[kind] = fast
    return fn(value)  # each summariser is safe: see _summariser_for


def summarise_frame(code, f_locals) -> tuple:
    """The arguments of a frame that has just started: their summaries in the order of
    ``argument_names(code)``, None for one that is unbound. A tuple holds them in a third of a dict's memory."""
    entry = _arg_names.get(id(code))
    names = entry[1] if entry is not None else cached_argument_names(code)
    get = _by_type.get  # summarise() inlined: this runs for every recorded call
    out = []
    for name in names:
        if name in f_locals:
            value = f_locals[name]
            fn = get(type(value))
            out.append(fn(value) if fn is not None else summarise(value))
        else:
            out.append(None)
    return tuple(out)


def cached_argument_names(code) -> tuple[str, ...]:
    """argument_names(code), worked out once per code object."""
    entry = _arg_names.get(id(code))
    if entry is None:
        if len(_arg_names) >= _MAX_CODES:
            _arg_names.clear()
        entry = _arg_names[id(code)] = (code, argument_names(code))
    return entry[1]


def argument_names(code) -> tuple[str, ...]:
    """The parameter names of a code object, *args and **kwargs included."""
    nargs = code.co_argcount + code.co_kwonlyargcount
    flags = code.co_flags
    nargs += bool(flags & 0x04) + bool(flags & 0x08)  # *args, **kwargs
    return code.co_varnames[:nargs]


# id(code) -> (code, its argument names). By id: hashing a code object hashes its bytecode and constants,
# a microsecond for a large function. The entry holds the code object, so no id is reused meanwhile.
_arg_names: dict = {}
_MAX_CODES = 100_000


def _type_name(kind) -> str:
    try:
        name = kind.__name__
        return name if isinstance(name, str) else "object"
    except Exception:
        return "object"


def _is_tensor_type(kind: type) -> bool:
    return any(k.__name__ == "TensorBase" and k.__module__ == "torch._C" for k in kind.__mro__)


def _is_module_type(kind: type) -> bool:
    return any(k.__name__ == "Module" and k.__module__ == "torch.nn.modules.module" for k in kind.__mro__)


def _tensor_subclass(value) -> str:
    """A subclass with its own __torch_function__ would run it on every attribute read: switch it off."""
    import torch  # a tensor exists, so torch is loaded
    with torch._C.DisableTorchFunctionSubclass():
        return _tensor(value)


def _tensor(value) -> str:
    # Formatting a shape and a device costs microseconds: each distinct kind of tensor is formatted once,
    # and every call with such a tensor shares the one string.
    try:
        key = (value.dtype, value.shape, value.device, value.requires_grad, type(value))
    except Exception:  # a tensor without these (a nested tensor's shape raises)
        return _type_name(type(value))
    text = _tensor_texts.get(key)
    if text is None:
        if len(_tensor_texts) >= _MAX_TENSOR_TEXTS:
            _tensor_texts.clear()
        text = _tensor_texts[key] = _tensor_text(*key)
    return text


# The C callbacks read the same key through the tensor's getters and remember texts by it (summarise_tensor
# in _recording.h), calling _tensor for a key they have not seen.
_tensor.fast = (None, _tensor)


def _tensor_text(dtype, shape, device, requires_grad, kind) -> str:
    dtype = str(dtype).rpartition(".")[2]
    text = f"{_DTYPES.get(dtype, dtype)}[{', '.join(map(str, shape))}] {device}"
    if requires_grad:
        text += " requires_grad"
    name = kind.__name__
    return text if name == "Tensor" else f"{name} {text}"


_tensor_texts: dict = {}
_MAX_TENSOR_TEXTS = 50_000


def _string(value: str) -> str:
    return repr(value) if len(value) <= _MAX_STR else f"str[{len(value)}]"


def _int_text(value: int) -> str:
    try:
        return repr(value)
    except ValueError:  # more digits than sys.get_int_max_str_digits() lets an int be written with
        return f"int[{value.bit_length()} bits]"


def _shared(fn, new_is_repr=False):
    """fn, with one string per distinct value: recording keeps many copies of the same few summaries.

    new_is_repr: fn is repr where repr succeeds (ints), so the C callbacks make a new value's text
    themselves (no Python call for each int not seen yet): one that fits in a C long they keep in a table
    of their own (reading this dict where it misses), a longer one they file as this does while the dict
    holds fewer than the limit, calling this to empty a full one or for an int too long to write out."""
    texts: dict = {}
    limit = _MAX_SHARED

    def shared(value):
        text = texts.get(value)
        if text is None:
            if len(texts) >= limit:
                texts.clear()
            text = texts[value] = fn(value)
        return text
    shared.fast = (texts, limit) if new_is_repr else texts
    return shared


def _named(name: str):
    """The summariser of a type whose values all read as one name (a Module's class, a user object's type)."""
    def named(value):
        return name
    named.fast = name
    return named


def _sized(name: str):
    """The summariser of a built-in container: its type and length."""
    def sized(value):
        return f"{name}[{len(value)}]"
    sized.fast = (name,)
    return sized


_MAX_SHARED = 10_000


def _guarded(fn, kind):
    """fn, giving the type's name where it raises (a property of the value, a metaclass's __name__)."""
    fallback = _type_name(kind)

    def guarded(value):
        try:
            return fn(value)
        except Exception:
            return fallback
    return guarded


def _summariser_for(kind: type):
    """The summariser of values of type `kind`. It never raises: summarise_frame calls it unguarded."""
    try:
        fn, safe = _unguarded_summariser_for(kind)
    except Exception:  # the type itself misbehaves (its __name__ or __mro__ raises)
        name = _type_name(kind)
        return lambda v: name
    return fn if safe else _guarded(fn, kind)


def _unguarded_summariser_for(kind: type):
    """(summariser, whether it can never raise)."""
    if kind is int:  # one dict per type: True == 1 (floats not at all: 0.0 == -0.0)
        return _shared(_int_text, new_is_repr=True), True
    if kind in (bool, type(None)):
        return _shared(repr), True
    if kind in _SCALARS:
        return repr, True
    if kind is str:
        return _shared(_string), True
    if kind in (list, tuple, dict, set, frozenset):
        return _sized(kind.__name__), True
    if _is_tensor_type(kind):
        plain = kind.__name__ in ("Tensor", "Parameter") and kind.__module__ in ("torch", "torch._tensor", "torch.nn.parameter")
        return (_tensor, True) if plain else (_tensor_subclass, False)
    name = _type_name(kind)
    if _is_module_type(kind):
        return _named(name), True
    module = kind.__module__ or ""
    if module == "torch" and name in ("dtype", "device", "layout", "memory_format"):
        return str, False
    if module == "torch" and name == "Size":
        return (lambda v: f"Size[{', '.join(map(str, v))}]"), False
    if isinstance(kind, type) and issubclass(kind, type):
        return (lambda v: f"class {v.__name__}"), False
    if name in ("function", "builtin_function_or_method", "method"):
        return (lambda v: f"{name} {getattr(v, '__qualname__', '?')}"), False
    return _named(name), True
