"""Which code a trace keeps: the include set, matched on module names, decided once per code object."""

from __future__ import annotations

import sys
import warnings

LAYERS = ("python", "builtin", "aten")


class Scope:
    """The include set of a trace: packages by dotted name (``torch``, ``torch.nn``)."""

    def __init__(self, include):
        if isinstance(include, str):
            include = tuple(part.strip() for part in include.split(","))
        try:
            names = tuple(include)
        except TypeError:
            raise TypeError(f"include must be a package name or a sequence of them, not {type(include).__name__}") from None
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"include takes package names as strings (like 'torch'), got {type(name).__name__}: {name!r}")
            if not name or not all(part.isidentifier() for part in name.split(".")):
                raise ValueError(f"include: {name!r} is not a dotted package name such as 'torch' or 'torch.nn'")
        if not names:
            raise ValueError("include is empty: name at least one package, such as 'torch'")
        self.names = names
        self._prefixes = tuple(n + "." for n in names)
        # Keyed by id(code): code objects compare equal when only their file differs (two empty __init__.py).
        self.codes: dict = {}  # id(code) -> bool, filled on first sight
        self.modules: dict = {}  # id(kept code) -> its module's name
        self._seen: list = []  # the code objects classified, kept alive so that no id is reused meanwhile
        self.excluded_modules: set = set()  # the modules of the code not kept (sys.monitoring switches it off)
        self._c_types: dict | None = None

    def __repr__(self):
        return f"Scope({self.names})"

    def has_module(self, module) -> bool:
        """Is `module` (a module's __name__, which the traced code may have set to anything) included?"""
        if not issubclass(type(module), str) or not module:  # type(): a __class__ property may raise
            return False
        module = str.__str__(module)  # a str subclass's own __eq__ or startswith is never called
        return module in self.names or module.startswith(self._prefixes)

    def classify_code(self, code, module_name) -> bool:
        keep = self.has_module(module_name)
        self.codes[id(code)] = keep
        self._seen.append(code)
        if keep:
            self.modules[id(code)] = str.__str__(module_name)
        elif issubclass(type(module_name), str):
            self.excluded_modules.add(str.__str__(module_name))
        return keep

    def classify_builtin(self, func):
        """(module, name) of a C function that belongs to the include set, else None."""
        try:
            return self._classify_builtin(func)
        except Exception:  # an odd callable must never break the traced program
            return None

    def _classify_builtin(self, func):
        name = getattr(func, "__qualname__", None) or getattr(func, "__name__", "?")
        module = getattr(func, "__module__", None)
        owner = getattr(func, "__self__", None)
        if owner is None:
            owner = getattr(func, "__objclass__", None)
        if module is None and owner is not None and not issubclass(type(owner), type(sys)):
            owner_type = owner if issubclass(type(owner), type) else type(owner)  # never owner.__class__
            module = owner_type.__module__
        if module is None and "." in name:
            module = self._module_of_c_type(name.partition(".")[0])
        if not self.has_module(module):
            return None
        if name.startswith("pybind11_"):  # pybind11 names its methods after an internal record type
            name = name.rpartition(".")[2]
        if name.startswith("_VariableFunctionsClass."):  # torch.empty and friends live on this class
            name = name.partition(".")[2]
        return (module, name)

    def _module_of_c_type(self, type_name: str) -> str | None:
        """The module of a C type named `type_name` in an already imported included package."""
        if self._c_types is None:
            self._c_types = {}
            with warnings.catch_warnings():  # deprecated aliases warn when looked at
                warnings.simplefilter("ignore")
                self._scan_c_types()
        return self._c_types.get(type_name)

    def _scan_c_types(self):
        for modname, mod in list(sys.modules.items()):
            if mod is None or not self.has_module(modname):
                continue
            for value in list(vars(mod).values()):
                if isinstance(value, type) and self.has_module(value.__module__):
                    self._c_types.setdefault(value.__name__, value.__module__)


def check_layers(layers) -> tuple[str, ...]:
    if isinstance(layers, str):
        layers = tuple(part.strip() for part in layers.split(",") if part.strip())
    try:
        layers = tuple(layers)
    except TypeError:
        raise TypeError(f"layers must be a sequence of layer names from {LAYERS}") from None
    for layer in layers:
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}: the layers are {', '.join(LAYERS)}")
    if not layers:
        raise ValueError(f"layers is empty: choose from {', '.join(LAYERS)}")
    return layers


def check_depth(depth):
    if depth is None:
        return None
    if isinstance(depth, bool) or not isinstance(depth, int):
        raise TypeError(f"depth must be a whole number of levels or None, not {type(depth).__name__}")
    if depth < 0:
        raise ValueError(f"depth must be 0 or more (or None for no limit), got {depth}")
    return depth
