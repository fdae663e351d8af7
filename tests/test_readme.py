"""The README's ten-line example prints what the README says it prints."""

import pathlib
import re
import subprocess
import sys

import pytest

pytest.importorskip("torch")
README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_output_is_real():
    text = README.read_text()
    section = text.split("## The tracer in ten lines", 1)[1]
    code, output = re.findall(r"```(?:python|text)\n(.*?)```", section, re.S)[:2]
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout == output
