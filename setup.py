"""The compiled part: the recording callbacks in C, for the CPython versions each is written for.

_fastprofile: the setprofile backend's (3.10, 3.11); _fastmonitor: the sys.monitoring backend's (3.12,
3.13). Optional: where one cannot be built (no compiler, another Python), the same callbacks in Python
record the same events. Everything else about the package is in pyproject.toml.
"""

import platform
import sys
import sysconfig

from setuptools import Extension, setup

C_CALLBACKS = {(3, 10): "_fastprofile", (3, 11): "_fastprofile", (3, 12): "_fastmonitor", (3, 13): "_fastmonitor"}

extensions = []
name = C_CALLBACKS.get(sys.version_info[:2])
if platform.python_implementation() == "CPython" and name and not sysconfig.get_config_var("Py_GIL_DISABLED"):
    extensions.append(Extension(f"tracer.record.{name}", [f"tracer/record/{name}.c"],
                                depends=["tracer/record/_recording.h", "tracer/record/_young.h", "tracer/record/_arenas.h", "tracer/record/_slab.h"], optional=True))

setup(ext_modules=extensions)
