"""Running a chapter headless: a fresh kernel of this interpreter (or another environment's), in the chapters'
folder, with ``TRACER_LEDGER`` naming a file the kernel appends its claims to, so every claim is filed under the
cell that made it; Run All twice in one kernel where asked."""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import zmq
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_async, run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError

from ..claims import FAILED, PASSED, SKIPPED
from .chapter import code_cell_lines, display_path, first_line, read_chapter, title_of

CELL_TIMEOUT_S = 300
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class ChapterRun:
    """One chapter, executed: its notebook with outputs, its claims and how it went."""

    path: Path
    notebook: nbformat.NotebookNode
    seconds: float = 0.0
    device: str = ""
    torch: str = ""
    claims: list[dict] = field(default_factory=list)
    error: str | None = None

    @property
    def name(self) -> str:
        return self.path.stem

    def count(self, status: str) -> int:
        return sum(1 for entry in self.claims if entry["status"] == status)

    @property
    def status(self) -> str:
        return "failed" if self.error or self.count(FAILED) else "passed"

    def record(self) -> dict:
        """The chapter's row in claims.json."""
        return {"chapter": self.name, "title": title_of(self.notebook, self.name), "status": self.status,
                "seconds": round(self.seconds, 2), "device": self.device, "torch": self.torch, "error": self.error,
                PASSED: self.count(PASSED), FAILED: self.count(FAILED), SKIPPED: self.count(SKIPPED)}


class CellLedger:
    """nbclient hooks: after each cell, file the claims the kernel appended to the ledger under that cell."""

    def __init__(self, path: Path, chapter: Path, notebook):
        self.path = path
        self.chapter = chapter.stem
        self.notebook = notebook
        self.cell_lines = code_cell_lines(chapter)
        self.offset = 0
        self.claims: list[dict] = []
        self.again: list[dict] = []  # the claims of the second pass: they fail the chapter, they count in no table
        self.pass_number = 1
        self.cell = None
        self.index = None
        self.error_reply = None

    def start(self, cell, cell_index, **_):
        self.cell, self.index = cell, cell_index

    def failed(self, execute_reply, **_):
        self.error_reply = execute_reply["content"]

    def collect(self, **_):
        with open(self.path, encoding="utf-8") as f:
            f.seek(self.offset)
            text = f.read()
        complete = text[:text.rfind("\n") + 1]
        self.offset += len(complete.encode("utf-8"))
        for line in complete.splitlines():
            entry = json.loads(line)
            (self.claims if self.pass_number == 1 else self.again).append(
                {"chapter": self.chapter, "cell": self.index, "line": self.source_line(),
                 "source": first_line(self.cell), **entry})

    def source_line(self) -> int | None:
        """Line of the current cell's fence in the chapter file (code cells are numbered in order)."""
        if self.cell is None or self.cell.cell_type != "code":
            return None
        ordinal = sum(1 for cell in self.notebook.cells[:self.index] if cell.cell_type == "code")
        return self.cell_lines[ordinal] if ordinal < len(self.cell_lines) else None

    def where(self, relpath: str) -> str:
        line = self.source_line()
        place = f" ({relpath}:{line})" if line else ""
        again = "in the second pass (Run All again in the same kernel) at " if self.pass_number > 1 else "at "
        return f"{again}cell {self.index}{place}: {first_line(self.cell)}"


class ChapterClient(NotebookClient):
    """nbclient's client, running the cells `passes` times in one kernel, as a reader who presses Run All twice.

    The passes after the first run copies of the cells, so the notebook keeps the first pass's outputs.
    """

    def __init__(self, nb, ledger: CellLedger, passes: int = 1, **kwargs):
        super().__init__(nb, **kwargs)
        self.ledger, self.passes = ledger, passes

    async def async_execute(self, reset_kc: bool = False, **kwargs) -> nbformat.NotebookNode:
        self.reset_execution_trackers()
        unrun = json.dumps(self.nb.cells)
        first = None
        async with self.async_setup_kernel(**kwargs):
            reply = await self.async_wait_for_reply(await ensure_async(self.kc.kernel_info()))
            self.nb.metadata["language_info"] = reply["content"]["language_info"]
            try:
                for number in range(1, self.passes + 1):
                    if any(entry["status"] == FAILED for entry in self.ledger.claims):
                        break  # the chapter failed already: a second pass would only say it again
                    self.ledger.pass_number = number
                    cells = self.nb.cells if number == 1 else nbformat.from_dict(json.loads(unrun))
                    for index, cell in enumerate(cells):
                        await self.async_execute_cell(cell, index, execution_count=self.code_cells_executed + 1)
                    if number == 1:
                        first = list(self.nb.cells)
            finally:
                if first is not None:  # async_execute_cell files each cell it ran in the notebook, a later pass's too
                    self.nb.cells = first
        return self.nb

    execute = run_sync(async_execute)  # NotebookClient's execute wraps its own async_execute, not this one


def kernel_manager(folder: Path, python: str | None = None) -> AsyncKernelManager:
    """A manager for a python3 kernel of `python` (default: this very interpreter), whatever kernelspecs the machine has."""
    spec_dir = folder / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {"argv": [python or sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3", "language": "python", "metadata": {"supported_encryption": ["curve"]}}
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    specs = KernelSpecManager(kernel_dirs=[str(spec_dir.parent)])
    # the kernel warns on every start when its local sockets are not encrypted
    encryption = "auto" if zmq.has("curve") else "disabled"
    return AsyncKernelManager(kernel_name="python3", kernel_spec_manager=specs, transport_encryption=encryption)


def runtime() -> tuple[str, str]:
    """(device, torch version) of this machine; chapters pick CUDA themselves when it is available."""
    import torch
    return ("cuda" if torch.cuda.is_available() else "cpu"), torch.__version__


def run_chapter(path: Path, timeout: int = CELL_TIMEOUT_S, passes: int = 1, python: str | None = None,
                epilogue: str = "", env: dict | None = None, allow_errors: bool = False) -> ChapterRun:
    """Execute one chapter in a fresh kernel, `passes` times over in that kernel (the tests pass 2: Run All twice).

    Never raises for the chapter's own errors: they land in .error, naming the pass and the cell, as does a
    claim that fails only in a later pass. The notebook and the claims are the first pass's.

    python        the kernel's interpreter (default: this one); another environment's, to run the book on another torch
    epilogue      code run after the chapter's last cell, in its kernel (the drift report collects the traces so)
    env           variables added to the kernel's environment
    allow_errors  go on past a cell that raised (a failed claim raises): its error stays in the cell's outputs
    """
    path = Path(path)
    nb = read_chapter(path)
    device, torch_version = runtime() if python is None else ("", "")
    run = ChapterRun(path, nb, device=device, torch=torch_version)
    if epilogue:
        nb.cells.append(nbformat.v4.new_code_cell(epilogue))
    with tempfile.TemporaryDirectory(prefix="tracer-book-") as tmp:
        ledger_path = Path(tmp) / "claims.jsonl"
        ledger_path.touch()
        ledger = CellLedger(ledger_path, path, nb)
        client = ChapterClient(nb, ledger, passes, km=kernel_manager(Path(tmp), python), timeout=timeout,
                               record_timing=False, allow_errors=allow_errors,
                               resources={"metadata": {"path": str(path.parent.resolve())}},
                               on_cell_start=ledger.start, on_cell_executed=ledger.collect,
                               on_cell_error=ledger.failed)
        # a fixed hash seed keeps set orders, and so the outputs, the same from one build to the next
        env = {**os.environ, **(env or {}), "TRACER_LEDGER": str(ledger_path), "PYTHONHASHSEED": "0"}
        start = time.monotonic()
        try:
            client.execute(cleanup_kc=True, env=env)
        except Exception as error:  # a chapter's failure is reported with its cell, not raised
            run.error = describe_failure(run, ledger, error, timeout)
        run.seconds = time.monotonic() - start
        ledger.collect()
    if epilogue:
        nb.cells.pop()
    run.claims = ledger.claims
    failed_again = [entry for entry in ledger.again if entry["status"] == FAILED]
    if failed_again and not run.error:
        entry = failed_again[0]
        place = f" ({display_path(path)}:{entry['line']})" if entry["line"] else ""
        run.error = (f"{run.name} failed in the second pass (Run All again in the same kernel) at cell {entry['cell']}"
                     f"{place}: {entry['source']}\nclaim failed: {entry['claim']}: {entry['detail']}")
    return run


def describe_failure(run: ChapterRun, ledger: CellLedger, error: Exception, timeout: int) -> str:
    where = ledger.where(display_path(run.path)) if ledger.cell is not None else "before the first cell"
    if isinstance(error, CellTimeoutError):
        return f"{run.name} failed {where}\ntimed out after {timeout} s"
    if ledger.error_reply is not None:
        reply = ledger.error_reply
        trace = ANSI.sub("", "\n".join(reply.get("traceback", [])))
        return f"{run.name} failed {where}\n{trace or reply.get('ename') + ': ' + reply.get('evalue')}"
    return f"{run.name} failed {where}\n{type(error).__name__}: {error}"
