"""find / count / expect_path / diff over a Trace. Reads the tree, never writes it."""

from __future__ import annotations

import fnmatch
import functools
import re
from collections import Counter

from . import claims
from .claims import ClaimError


@functools.lru_cache(maxsize=512)
def _matcher(pattern: str):
    if not isinstance(pattern, str) or not pattern:
        raise TypeError(f"a call pattern is a non-empty glob string like 'Module._call_impl', got {pattern!r}")
    return re.compile(fnmatch.translate(pattern)).match


def matches(call, pattern: str) -> bool:
    """True if the glob matches the call's name (``Linear.forward``) or ``module.name``."""
    match = _matcher(pattern)
    return bool(match(call.name) or (call.module and match(call.qualname)))


def find(trace, pattern: str) -> list:
    """Every call whose name (or module.name) matches the glob, in call order."""
    return [c for c in trace.root.walk() if c.parent is not None and matches(c, pattern)]


def count(trace, pattern: str) -> int:
    return len(find(trace, pattern))


def _descendants(call):
    walk = call.walk()
    next(walk)
    return walk


def _extend(call, patterns, memo=None):
    """The longest chain of descendants of `call` matching `patterns` in order (first full one wins).

    Memoised on (call, step), so a deep recursion matched by several patterns stays polynomial.
    """
    if memo is None:
        memo = {}
    if not patterns:
        return []
    key = (id(call), len(patterns))
    if key in memo:
        return memo[key]
    best = []
    for candidate in _descendants(call):
        if matches(candidate, patterns[0]):
            chain = [candidate] + _extend(candidate, patterns[1:], memo)
            if len(chain) == len(patterns):
                best = chain
                break
            if len(chain) > len(best):
                best = chain
    memo[key] = best
    return best


def expect_path(trace, *patterns: str) -> list:
    """Check that the patterns match a chain of calls, each below the one before; return the chain.

    Raises ClaimError (an AssertionError) naming the longest chain that matched and the calls found
    where the next step was expected. The check is recorded in the claims ledger either way.
    """
    if not patterns:
        raise TypeError("expect_path needs at least one call pattern")
    for p in patterns:
        _matcher(p)
    statement = path_statement(patterns)
    chain = _extend(trace.root, list(patterns))
    if len(chain) == len(patterns):
        claims.record(statement, claims.PASSED, " > ".join(f"{c.name} ({c.location})" for c in chain))
        return chain
    message = _explain(trace, patterns, chain)
    claims.record(statement, claims.FAILED, message)
    raise ClaimError(message)


def path_statement(patterns) -> str:
    """The claim expect_path makes, as a sentence: ``A → B → C runs, each inside the one before``."""
    if len(patterns) == 1:
        return f"{patterns[0]} runs"
    return f"{' → '.join(patterns)} runs, each inside the one before"


def _explain(trace, patterns, chain):
    lines = [f"no call path {' > '.join(patterns)}"]
    if chain:
        lines.append("longest match: " + " > ".join(f"{c.name} ({c.location})" for c in chain))
    where = chain[-1] if chain else trace.root
    missing = patterns[len(chain)]
    below = Counter(c.name for c in _descendants(where))
    label = where.name if chain else "the traced block"
    if below:
        shown = ", ".join(f"{name} x{n}" if n > 1 else name for name, n in below.most_common(15))
        more = f" and {len(below) - 15} more" if len(below) > 15 else ""
        lines.append(f"no {missing!r} below {label}; the calls there: {shown}{more}")
    else:
        lines.append(f"no {missing!r} below {label}: it made no traced calls")
    return "\n".join(lines)


class Diff:
    """Which calls ran in one trace and not the other, and which ran a different number of times."""

    def __init__(self, a, b, key):
        self.counts_a = Counter(key(c) for c in a.calls)
        self.counts_b = Counter(key(c) for c in b.calls)
        self.only_a = {k: n for k, n in self.counts_a.items() if k not in self.counts_b}
        self.only_b = {k: n for k, n in self.counts_b.items() if k not in self.counts_a}
        self.changed = {k: (n, self.counts_b[k]) for k, n in self.counts_a.items()
                        if k in self.counts_b and self.counts_b[k] != n}

    def __bool__(self):
        return bool(self.only_a or self.only_b or self.changed)

    def __str__(self):
        lines = []
        for title, items in (("only in a", self.only_a), ("only in b", self.only_b)):
            for name, n in sorted(items.items()):
                lines.append(f"{title}: {name} x{n}")
        for name, (n, m) in sorted(self.changed.items()):
            lines.append(f"count differs: {name} {n} -> {m}")
        return "\n".join(lines) if lines else "the two traces made the same calls, the same number of times"

    def __repr__(self):
        return f"<Diff only_a={len(self.only_a)} only_b={len(self.only_b)} changed={len(self.changed)}>"

    def _repr_html_(self):
        from .render.html import render_diff
        return render_diff(self)


def diff(a, b, key=lambda call: call.name) -> Diff:
    """Compare two traces by call name (or by `key`): ``tracer.diff(t_train, t_eval)``."""
    return Diff(a, b, key)
