"""The command line's defaults and help: imports left out (and counted), the book's commands and the script's name."""

import sys
import textwrap

import pytest

from tracer.__main__ import main

IMPORTEE = '''
def setup():
    return 1


def work():
    return setup() + 1


setup()
'''


@pytest.fixture()
def importee(tmp_path, monkeypatch):
    """A package that calls a function of its own while it is imported."""
    (tmp_path / "importee").mkdir()
    (tmp_path / "importee" / "__init__.py").write_text(textwrap.dedent(IMPORTEE))
    (tmp_path / "importee" / "part.py").write_text("from . import setup\nsetup()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("importee", "importee.part"):
        monkeypatch.delitem(sys.modules, name, raising=False)


CODE = "import importee, importee.part; importee.work()"


def test_what_imports_run_is_left_out_and_counted(importee, capsys):
    assert main(["-c", CODE, "--include", "importee"]) == 0
    out = capsys.readouterr().out
    assert "<module>" not in out
    assert "└─ work  " in out and "setup  " in out  # the code's own call, and what it called
    assert out.rstrip().endswith("note: 4 calls made while importing 2 modules are left out (--imports keeps them)")


def test_imports_option_keeps_them(importee, capsys):
    assert main(["-c", CODE, "--include", "importee", "--imports"]) == 0
    out = capsys.readouterr().out
    assert out.count("<module>") == 2 and "left out" not in out


def test_help_names_the_book_and_the_program_as_run(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/pytorch-traced", "--help"])
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert out.startswith("usage: pytorch-traced ")
    assert "python -m tracer book [build]" in out and "check-sync" in out and "--imports" in out


def test_book_without_its_packages_says_what_to_install(monkeypatch, capsys):
    for name in [name for name in sys.modules if name == "tracer.book" or name.startswith("tracer.book.")]:
        monkeypatch.delitem(sys.modules, name)  # the book package and its modules, imported afresh
    monkeypatch.setitem(sys.modules, "jupytext", None)  # as if jupytext were not installed
    assert main(["book", "build", "01"]) == 2
    err = capsys.readouterr().err
    assert "jupytext is missing" in err and "pip install 'pytorch-traced[book]'" in err


def test_code_that_only_imports_is_traced_for_its_imports(importee, capsys):
    assert main(["-c", "import importee.part", "--include", "importee"]) == 0
    out = capsys.readouterr().out
    assert out.count("<module>") == 2 and "left out" not in out
