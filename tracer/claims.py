"""Claims: statements about what PyTorch ran, checked against a trace and recorded in a ledger.

Every check (``t.expect_path``, ``tracer.claim``, ``tracer.skip``) appends one record to ``LEDGER``;
when the environment names a file in ``TRACER_LEDGER`` (the book runner does), the record is also
appended there as a JSON line, so the runner can tell which chapter cell made which claim.

Inside an IPython kernel, importing ``tracer`` registers ``show_cell_claims`` on the shell's
``post_run_cell`` event: after each cell that made claims, the cell shows them, one line a claim
(``✓ statement``, ``✗ statement`` with a short detail below, ``skipped: statement (reason)``), as
plain text, so a reader sees every check, on GitHub too.
"""

from __future__ import annotations

import json
import os
import sys

LEDGER: list[dict] = []
CELL: list[dict] = []  # the claims made since the current IPython cell started, kept only inside IPython
_showing = False  # set once show_claims_in_ipython has registered the display
PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


class ClaimError(AssertionError):
    """A claim about a trace did not hold; the message says what was found instead."""


def record(statement: str, status: str, detail: str = "") -> dict:
    entry = {"claim": statement, "status": status, "detail": detail}
    LEDGER.append(entry)
    if _showing:
        CELL.append(entry)
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


DETAIL_LINES, DETAIL_WIDTH = 3, 160


def claim_line(entry: dict) -> str:
    """How a reader sees one claim: ``✓ statement``, ``✗ statement`` and its detail, ``skipped: statement (reason)``."""
    if entry["status"] == PASSED:
        return f"✓ {entry['claim']}"
    if entry["status"] == SKIPPED:
        return f"skipped: {entry['claim']} ({entry['detail']})"
    return "\n".join([f"✗ {entry['claim']}", *(f"  {line}" for line in short_detail(entry["detail"]))])


def short_detail(detail: str) -> list[str]:
    """A failure's detail cut to a few lines of readable width: the cell's traceback holds the whole message."""
    lines = [line if len(line) <= DETAIL_WIDTH else line[:DETAIL_WIDTH - 1] + "…" for line in detail.splitlines()]
    return lines[:DETAIL_LINES] + (["…"] if len(lines) > DETAIL_LINES else [])


def cell_report(entries: list[dict]) -> str:
    return "\n".join(claim_line(entry) for entry in entries)


def forget_cell_claims(*_) -> None:
    CELL.clear()


def show_cell_claims(*_) -> None:
    """Display the claims the cell made, as text/plain only (GitHub shows it; nothing for a sanitizer to drop)."""
    if not CELL:
        return
    from IPython.display import display
    text = cell_report(CELL)
    CELL.clear()
    display({"text/plain": text}, raw=True)


def show_claims_in_ipython() -> None:
    """Register the per-cell display with the running IPython shell, once; a plain Python import never imports IPython."""
    global _showing
    if "IPython" not in sys.modules:
        return
    shell = sys.modules["IPython"].get_ipython()
    if shell is None or getattr(shell, "_tracer_shows_claims", False):
        return
    shell.events.register("pre_run_cell", forget_cell_claims)
    shell.events.register("post_run_cell", show_cell_claims)
    shell._tracer_shows_claims = True
    _showing = True
