"""Claims: statements about what PyTorch ran, checked against a trace and recorded in a ledger.

Every check (``t.expect_path``, ``tracer.claim``, ``tracer.skip``) appends one record to ``LEDGER``;
when the environment names a file in ``TRACER_LEDGER`` (the book runner does), the record is also
appended there as a JSON line, so the runner can tell which chapter cell made which claim.
"""

from __future__ import annotations

import json
import os

LEDGER: list[dict] = []
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


class ClaimError(AssertionError):
    """A claim about a trace did not hold; the message says what was found instead."""


def record(statement: str, status: str, detail: str = "") -> dict:
    entry = {"claim": statement, "status": status, "detail": detail}
    LEDGER.append(entry)
    path = os.environ.get("TRACER_LEDGER")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
    return entry


def claim(statement: str, holds, detail: str = "") -> None:
    """Record `statement` as passed when `holds` is true; else record it failed and raise ClaimError."""
    if not isinstance(statement, str) or not statement:
        raise TypeError("claim(statement, holds): the statement comes first, as a sentence")
    if holds:
        record(statement, PASSED, detail)
        return
    record(statement, FAILED, detail)
    raise ClaimError(f"claim failed: {statement}" + (f"\n{detail}" if detail else ""))


def claim_equal(statement: str, actual, expected) -> None:
    """A claim that a live value equals the expected one; the ledger keeps both."""
    claim(statement, actual == expected, f"found {actual!r}, expected {expected!r}")


def skip(statement: str, reason: str) -> None:
    """Record a claim that cannot be checked here (a CUDA claim on a CPU machine): skipped, never passed."""
    if not reason:
        raise ValueError("skip needs the reason the claim cannot be checked here")
    record(statement, SKIPPED, reason)
