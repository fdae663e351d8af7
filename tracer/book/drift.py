"""The book on two versions of torch: every chapter run on each, claims and traces compared, a report written.

    python -m tracer book drift                      # the chapters that need no torchvision, on both versions
    python -m tracer book drift 03 --python PATH     # one chapter; PATH: the second environment's interpreter

The second environment (``make drift-env``: ``.venv-torch2.13``, a CPU build of torch 2.13.0, for which no
torchvision exists) runs each chapter in a kernel of its own interpreter that imports this very tracer;
the book's environment runs it again. Each run goes on past a failed claim (``allow_errors``), so every
claim of the chapter has a result on both versions, and afterwards the kernel hands back every trace
the chapter kept in a variable. The report (``notebooks/DRIFT.md``, and ``site/drift.html`` when the site
exists) lists, per chapter, each claim's result on each version with its text, and for each trace the
calls that ran on one version and not the other, or a different number of times, keyed by qualified
name, each linked to its source at its own version's commit. A claim that fails on the second
version is a finding of the report, not a failure of the command; the command fails when a chapter
cannot run at all, or when a claim fails on the book's own torch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..claims import FAILED, PASSED, SKIPPED
from ..query import diff
from ..render.json import from_dict
from .chapter import chapter_files, display_path
from .run import ANSI, CELL_TIMEOUT_S, run_chapter

SECOND_TORCH = "2.13.0"
SECOND_ENV = Path(".venv-torch2.13")
REPORT = Path("notebooks/DRIFT.md")
NEEDS = "torchvision"  # no torchvision release imports beside the CPU torch 2.13.0 wheel
ROOT = Path(__file__).resolve().parents[2]
NOT_RUN = "not run"
LISTED = 12  # calls listed per kind of difference for one trace; the rest are counted

# Runs in the chapter's kernel after its last cell: the torch it ran on, and every trace it kept.
EPILOGUE = """
import json as _drift_json, os as _drift_os, torch as _drift_torch, tracer as _drift_tracer
from tracer.render.json import to_dict as _drift_to_dict
with open(_drift_os.environ["TRACER_DRIFT_OUT"], "w", encoding="utf-8") as _drift_file:
    _drift_json.dump({
        "torch": _drift_torch.__version__, "commit": _drift_torch.version.git_version,
        "device": "cuda" if _drift_torch.cuda.is_available() else "cpu",
        "traces": {_drift_name: _drift_to_dict(_drift_value) for _drift_name, _drift_value in list(globals().items())
                   if isinstance(_drift_value, _drift_tracer.Trace) and not _drift_name.startswith("_")
                   and _drift_value._root is not None},
    }, _drift_file)
"""


@dataclass
class VersionRun:
    """One chapter on one torch: its claims, the traces it kept, the cells that raised."""

    torch: str
    commit: str
    device: str
    seconds: float
    claims: list[dict]
    traces: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    failure: str | None = None  # the chapter could not run at all

    def count(self, status: str) -> int:
        return sum(1 for entry in self.claims if entry["status"] == status)


def drift_chapters(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(chapters the second torch can run, chapters left out because they need torchvision)."""
    runnable, left_out = [], []
    for path in paths:
        (left_out if NEEDS in path.read_text(encoding="utf-8") else runnable).append(path)
    return runnable, left_out


def run_version(path: Path, python: str | None, timeout: int) -> VersionRun:
    """The chapter in a kernel of `python` (None: the book's own), going on past failed claims."""
    with tempfile.TemporaryDirectory(prefix="tracer-drift-") as tmp:
        out = Path(tmp) / "traces.json"
        env = {"TRACER_DRIFT_OUT": str(out),
               "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
        run = run_chapter(path, timeout, python=python, epilogue=EPILOGUE, env=env, allow_errors=True)
        data = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else None
    errors = [f"cell {index}: {output.get('ename')}: {first_line(output.get('evalue', ''))}"
              for index, cell in enumerate(run.notebook.cells) for output in cell.get("outputs", [])
              if output.get("output_type") == "error"]
    if data is None:
        return VersionRun("?", "", "", run.seconds, run.claims, errors=errors,
                          failure=run.error or "the chapter's kernel never reached its end")
    traces = {name: from_dict(value, f"trace {name!r}") for name, value in data["traces"].items()}
    return VersionRun(data["torch"], data["commit"], data["device"], run.seconds, run.claims, traces, errors,
                      run.error)


def first_line(text: str) -> str:
    return ANSI.sub("", text).strip().splitlines()[0] if text.strip() else ""


# -- comparing -------------------------------------------------------------------------------------

def claim_rows(old: VersionRun, new: VersionRun) -> list[dict]:
    """Each claim of either run, matched by its cell and its place among that cell's claims."""
    def keyed(run):
        seen, out = {}, {}
        for entry in run.claims:
            ordinal = seen[entry["cell"]] = seen.get(entry["cell"], -1) + 1
            out[(entry["cell"], ordinal)] = entry
        return out
    a, b = keyed(old), keyed(new)
    rows = []
    for key in sorted(set(a) | set(b), key=lambda k: (k[0] if k[0] is not None else -1, k[1])):
        ea, eb = a.get(key), b.get(key)
        text_b = eb["claim"] if eb else None
        text_a = ea["claim"] if ea else None
        rows.append({"cell": key[0], "claim": text_b or text_a,
                     "claim_old": text_a if text_a and text_b and text_a != text_b else None,
                     "old": ea["status"] if ea else NOT_RUN, "new": eb["status"] if eb else NOT_RUN,
                     "detail_old": ea.get("detail", "") if ea else "", "detail_new": eb.get("detail", "") if eb else ""})
    return rows


def trace_differences(old: VersionRun, new: VersionRun) -> list[dict]:
    """For each trace the chapter kept: what ran on one version only, or a different number of times."""
    out = []
    for name in sorted(set(old.traces) | set(new.traces)):
        a, b = old.traces.get(name), new.traces.get(name)
        if a is None or b is None:
            out.append({"trace": name, "missing": old.torch if a is None else new.torch})
            continue
        d = diff(a, b, key=lambda call: call.qualname)
        out.append({"trace": name, "calls": (len(a), len(b)), "same": not d,
                    "only_old": _linked(d.only_a, a), "only_new": _linked(d.only_b, b),
                    "changed": sorted(d.changed.items())})
    return out


def _linked(counts: dict, trace) -> list[tuple[str, int, str | None]]:
    """(qualified name, count, source link at that trace's own commit) for each call, the most frequent first."""
    urls = {}
    for call in trace.calls:
        urls.setdefault(call.qualname, call.url)
    return [(name, n, urls.get(name)) for name, n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


# -- the report ------------------------------------------------------------------------------------

def _md(text: str) -> str:
    """Text for a Markdown table cell: pipes escaped, on one line, angle brackets kept as text."""
    return " ".join(str(text).split()).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _call(name: str, n: int, url: str | None) -> str:
    label = f"`{name}`" + (f" x{n}" if n > 1 else "")
    return f"[{label}]({url})" if url else label


def report(results: list[tuple[Path, VersionRun, VersionRun]], left_out: list[Path]) -> str:
    old = next((o for _, o, _ in results if o.commit), None)
    new = next((n for _, _, n in results if n.commit), None)
    label_old = old.torch if old else SECOND_TORCH
    label_new = new.torch if new else "the book's torch"
    lines = ["# The book on two versions of torch", ""]
    versions = " and ".join(f"torch {run.torch} (commit `{run.commit[:12]}`, {run.device})" for run in (old, new) if run)
    lines += [f"Each chapter that needs no torchvision, run on {versions}, by `python -m tracer book drift`. "
              "Everything below was computed by running the chapters on both versions; a claim that fails on the "
              "older version is a finding here, not a failure of the book, whose build on its pinned torch still "
              "fails on any failed claim. Source links point at each version's own commit.", ""]
    if left_out:
        lines += ["Left out, because no torchvision imports beside torch " + SECOND_TORCH + ": " +
                  ", ".join(f"`{path.stem}`" for path in left_out) + ".", ""]
    lines += [f"| chapter | claims | differ | {label_old}: passed / failed / skipped | "
              f"{label_new}: passed / failed / skipped | traces that differ |", "|---|---|---|---|---|---|"]
    sections = []
    for path, a, b in results:
        rows = claim_rows(a, b)
        traces = trace_differences(a, b)
        differ = [row for row in rows if row["old"] != row["new"]]
        changed = [t for t in traces if not t.get("same")]
        lines.append(f"| [{path.stem}](#{path.stem}) | {len(rows)} | {len(differ)} | "
                     f"{a.count(PASSED)} / {a.count(FAILED)} / {a.count(SKIPPED)} | "
                     f"{b.count(PASSED)} / {b.count(FAILED)} / {b.count(SKIPPED)} | {len(changed)} of {len(traces)} |")
        sections.append(chapter_section(path, a, b, rows, traces, label_old, label_new))
    return "\n".join(lines + [""] + sections).rstrip() + "\n"


def chapter_section(path, a, b, rows, traces, label_old, label_new) -> str:
    out = [f"## {path.stem}", ""]
    for run, label in ((a, label_old), (b, label_new)):
        if run.failure:
            out += [f"On {label} the chapter did not run to its end: {_md(first_line(run.failure))}", ""]
        if run.errors:
            out += [f"Cells that raised on {label}: " + "; ".join(_md(e) for e in run.errors[:8]) +
                    (f"; and {len(run.errors) - 8} more" if len(run.errors) > 8 else ""), ""]
    differ = sum(row["old"] != row["new"] for row in rows)
    out += [f"{len(rows)} claims, {differ} with a different result on the two versions (marked **≠**).", "",
            f"| cell | claim | {label_old} | {label_new} |", "|---|---|---|---|"]
    for row in rows:
        mark = "**≠** " if row["old"] != row["new"] else ""
        text = _md(row["claim"]) + (f" (on {label_old}: {_md(row['claim_old'])})" if row["claim_old"] else "")
        old = row["old"] + (f": {_md(row['detail_old'])}" if row["old"] == FAILED and row["detail_old"] else "")
        new = row["new"] + (f": {_md(row['detail_new'])}" if row["new"] == FAILED and row["detail_new"] else "")
        out.append(f"| {row['cell']} | {mark}{text} | {old} | {new} |")
    out += ["", f"Traces the chapter keeps, {label_old} against {label_new} (calls keyed by module and name):", ""]
    for entry in traces:
        name = f"`{entry['trace']}`"
        if "missing" in entry:
            out.append(f"- {name}: not made on {entry['missing']} (a cell before it raised)")
            continue
        n_old, n_new = entry["calls"]
        if entry["same"]:
            out.append(f"- {name}: the same calls, the same number of times ({n_new:,} calls)")
            continue
        out.append(f"- {name}: {n_old:,} calls on {label_old}, {n_new:,} on {label_new}")
        for title, items in ((f"only on {label_old}", entry["only_old"]), (f"only on {label_new}", entry["only_new"])):
            if items:
                shown = ", ".join(_call(*item) for item in items[:LISTED])
                more = f", and {len(items) - LISTED} more" if len(items) > LISTED else ""
                out.append(f"  - {title}: {shown}{more}")
        if entry["changed"]:
            shown = ", ".join(f"`{qualname}` {m} → {n}" for qualname, (m, n) in entry["changed"][:LISTED])
            more = f", and {len(entry['changed']) - LISTED} more" if len(entry["changed"]) > LISTED else ""
            out.append(f"  - run a different number of times: {shown}{more}")
    return "\n".join(out) + "\n"


def write_page(markdown: str, site: Path) -> Path:
    """The report as a page of the site."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune
    body = markdown2html_mistune(markdown)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>PyTorch, Traced: the book on two versions of torch</title>
<style>body {{ font-family: sans-serif; max-width: 72em; margin: 2em auto; padding: 0 1em; }}
table {{ border-collapse: collapse; }} td, th {{ padding: .2em .6em; text-align: left; vertical-align: top;
border-bottom: 1px solid rgba(128,128,128,.3); }} code {{ font-size: 90%; }}</style></head>
<body><p><a href="index.html">PyTorch, Traced</a></p>
{body}
</body></html>
"""
    site.mkdir(parents=True, exist_ok=True)
    target = site / "drift.html"
    target.write_text(page, encoding="utf-8")
    return target


# -- the command line ------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tracer book drift", description=__doc__.split("\n\n")[0])
    p.add_argument("chapters", nargs="*", help="chapter numbers (02) or files; default: all that need no torchvision")
    p.add_argument("--python", default=str(SECOND_ENV / "bin" / "python"),
                   help=f"the second environment's interpreter (default: {SECOND_ENV}/bin/python, made by make drift-env)")
    p.add_argument("--chapters-dir", type=Path, default=Path("chapters"), help="where NN-slug.md lie (default: chapters)")
    p.add_argument("-o", "--output", type=Path, default=REPORT, help=f"the Markdown report (default: {REPORT})")
    p.add_argument("--site", type=Path, default=Path("site"),
                   help="also write drift.html here, where the folder exists (default: site)")
    p.add_argument("--timeout", type=int, default=CELL_TIMEOUT_S, help="seconds per cell")
    return p


def main(argv=None) -> int:
    opts = parser().parse_args(argv)
    python = Path(opts.python)
    if not python.is_file():
        print(f"python -m tracer book drift: no interpreter at {opts.python}: `make drift-env` makes "
              f"{SECOND_ENV} with torch {SECOND_TORCH}, or name another with --python", file=sys.stderr)
        return 2
    try:
        paths = chapter_files(opts.chapters_dir, opts.chapters)
    except FileNotFoundError as error:
        print(f"python -m tracer book drift: {error}", file=sys.stderr)
        return 2
    paths, left_out = drift_chapters(paths)
    if not paths:
        print(f"python -m tracer book drift: no chapter to run (those named need {NEEDS})", file=sys.stderr)
        return 2
    results = []
    start = time.monotonic()
    for number, path in enumerate(paths, 1):
        runs = []
        for which, interpreter in (("second", os.path.abspath(python)), ("book", None)):
            print(f"[{number}/{len(paths)}] {path.stem} on the {which} torch", flush=True)
            runs.append(run_version(path, interpreter, opts.timeout))
        results.append((path, *runs))
        old, new = runs
        print(f"    {old.torch}: {old.count(PASSED)} passed, {old.count(FAILED)} failed, {old.count(SKIPPED)} skipped;"
              f" {new.torch}: {new.count(PASSED)} passed, {new.count(FAILED)} failed, {new.count(SKIPPED)} skipped",
              flush=True)
    markdown = report(results, left_out)
    opts.output.parent.mkdir(parents=True, exist_ok=True)
    opts.output.write_text(markdown, encoding="utf-8")
    print(f"report: {display_path(opts.output)} ({time.monotonic() - start:.0f} s)")
    if opts.site.is_dir():
        print(f"page: {display_path(write_page(markdown, opts.site))}")
    broken = [f"{path.stem} on {run.torch}: {first_line(run.failure)}" for path, *pair in results for run in pair
              if run.failure and not run.commit]
    own = [f"{path.stem}: {entry['claim']}" for path, _, new in results for entry in new.claims
           if entry["status"] == FAILED]
    own += [f"{path.stem}: {error}" for path, _, new in results for error in new.errors]
    for line in broken:
        print(f"could not run: {line}", file=sys.stderr)
    for line in own:
        print(f"failed on the book's torch: {line}", file=sys.stderr)
    return 1 if broken or own else 0
