"""``python -m tracer.book``: the same as ``python -m tracer book``."""

import sys

from .build import main

sys.exit(main())
