"""tracer.link / tracer.read on the installed PyTorch: what they refuse, and why, and the lines they point at."""

import re
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

import tracer  # noqa: E402
from tracer import source  # noqa: E402

COMMIT = torch.version.git_version
INIT = "torch/__init__.py"
ANCHOR = "from torch._C import *"
MODULE_H = "torch/include/torch/csrc/api/include/torch/nn/module.h"
TENSOR_IMPL_H = "torch/include/c10/core/TensorImpl.h"


def installed_or_skip(relpath):
    path = source.installed_file(relpath)
    if path is None:
        pytest.skip(f"this wheel does not ship {relpath}")
    return path


def lines_holding(relpath, text):
    return [n for n, line in enumerate(source.file_lines(source.installed_file(relpath)), 1) if text in line]


# -- occurrence and lines: positive whole numbers -------------------------------------------------------

@pytest.mark.parametrize("occurrence", [0, -1, -2])
def test_occurrence_below_one_is_refused(occurrence):
    with pytest.raises(ValueError, match="occurrence must be 1 or more"):
        tracer.link(INIT, ANCHOR, occurrence=occurrence)


@pytest.mark.parametrize("occurrence", [1.0, "2", True, None])
def test_occurrence_that_is_not_a_whole_number_is_refused(occurrence):
    with pytest.raises(TypeError, match=r"whole number 1, 2, 3"):
        tracer.link(INIT, ANCHOR, occurrence=occurrence)


def test_occurrence_counts_from_the_top():
    found = lines_holding(INIT, ANCHOR)
    assert [tracer.link(INIT, ANCHOR, occurrence=n).line for n in range(1, len(found) + 1)] == found


def test_occurrence_without_an_anchor_is_refused():
    with pytest.raises(ValueError, match="give the anchor too"):
        tracer.link(INIT, occurrence=2)


@pytest.mark.parametrize("lines", [-3, 0])
def test_read_needs_at_least_one_line(lines):
    with pytest.raises(ValueError, match="lines must be 1 or more"):
        tracer.read(INIT, ANCHOR, lines=lines)


@pytest.mark.parametrize("lines", [2.5, "3", False])
def test_read_lines_must_be_a_whole_number(lines):
    with pytest.raises(TypeError, match="lines is a whole number"):
        tracer.read(INIT, ANCHOR, lines=lines)


def test_read_shows_the_lines_asked_for():
    excerpt = tracer.read(INIT, ANCHOR, lines=3)
    start = lines_holding(INIT, ANCHOR)[0]
    assert excerpt.start == start
    assert excerpt.lines == list(source.file_lines(source.installed_file(INIT))[start - 1:start + 2])


# -- anchors ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("anchor", ["", "   ", "\t"])
def test_empty_or_blank_anchor_is_refused(anchor):
    with pytest.raises(ValueError, match="empty or blank anchor"):
        tracer.link(INIT, anchor)
    with pytest.raises(ValueError, match="empty or blank anchor"):
        tracer.read(INIT, anchor, lines=1)


def test_anchor_spanning_lines_is_refused():
    with pytest.raises(ValueError, match="within one line"):
        tracer.link(INIT, "import os\nimport sys")


def test_anchor_that_is_not_text_is_refused():
    with pytest.raises(TypeError, match="an anchor is text"):
        tracer.link(INIT, 3)


def test_anchor_with_an_object_is_refused_rather_than_ignored():
    with pytest.raises(TypeError, match="give the file's path with it"):
        tracer.link(torch.nn.Module.state_dict, "def state_dict(")


# -- paths: relative, inside a package with a known repository, present -------------------------------

@pytest.mark.parametrize("path", ["/etc/passwd", "/torch/__init__.py"])
def test_absolute_path_is_refused(path):
    with pytest.raises(ValueError, match="absolute path: give the path relative to site-packages"):
        tracer.link(path)


@pytest.mark.parametrize("path", ["torch/../../etc/passwd", "./torch/__init__.py", "torch//__init__.py",
                                  "torch\\__init__.py", ""])
def test_path_that_is_not_plain_and_relative_is_refused(path):
    with pytest.raises(ValueError, match="not a plain relative path"):
        tracer.link(path)


def test_misspelt_file_is_refused_with_what_to_check():
    assert source.installed_file("torch/nn/modules/module.py")
    with pytest.raises(FileNotFoundError, match="not a file of the installed torch: check the path") as raised:
        tracer.link("torch/nn/modules/modul.py")
    assert "torch/csrc/" in str(raised.value)  # and says how to link C++ the wheel does not ship


def test_file_of_an_unknown_package_is_refused_naming_the_known_ones():
    with pytest.raises(LookupError, match="'numpy' is not a package with a known repository") as raised:
        tracer.link("numpy/__init__.py")
    assert all(top in str(raised.value) for top in source.REPOSITORIES)


# -- C/C++ sources the wheel does not ship: by path, no line, no anchor ---------------------------------

@pytest.mark.parametrize("path, repository", [
    ("torch/csrc/stub.c", "pytorch/pytorch"),
    ("torch/csrc/Module.cpp", "pytorch/pytorch"),
    ("aten/src/ATen/native/Linear.cpp", "pytorch/pytorch"),
    ("aten/src/ATen/native/cuda/Normalization.cu", "pytorch/pytorch"),
    ("c10/core/TensorImpl.cpp", "pytorch/pytorch"),
    ("torchvision/csrc/ops/nms.cpp", "pytorch/vision"),
])
def test_unshipped_source_links_by_path_at_the_commit(path, repository):
    assert source.resolve(path) is None  # neither installed at this path nor shipped elsewhere
    link = tracer.link(path)
    top = next(top for top, (repo, _) in source.REPOSITORIES.items() if repo == repository)
    assert link.line is None and link.anchor is None
    assert link.url == f"https://github.com/{repository}/blob/{source.commit_of(top, load=True)}/{path}"


def test_unshipped_source_takes_no_anchor_and_has_no_lines_to_read():
    with pytest.raises(FileNotFoundError, match="not in the installed package"):
        tracer.link("torch/csrc/Module.cpp", "initModule")
    with pytest.raises(LookupError, match="does not ship torch/csrc/Module.cpp"):
        tracer.read("torch/csrc/Module.cpp")


def test_source_suffix_outside_the_source_folders_must_exist():
    with pytest.raises(FileNotFoundError, match="not a file of the installed torch"):
        tracer.link("torch/nn/modules/module.cpp")


def test_generated_source_under_a_source_folder_is_refused():
    with pytest.raises(LookupError, match="would 404"):
        tracer.link("torch/csrc/autograd/generated/Functions.cpp")


# -- headers: wheel path -> repository path; generated and vendored ones refused ----------------------

def test_installed_headers_carry_the_install_guard_that_the_repository_lacks():
    path = installed_or_skip(MODULE_H)
    installed = source.file_lines(path)
    if installed[0] != source._WRAP_FIRST:
        pytest.skip("this wheel does not wrap its headers")
    assert source.repository_lines(path) == installed[1:len(source.repository_lines(path)) + 1]
    assert not any("TORCH_STABLE_ONLY" in line for line in source.repository_lines(path)[-3:])


@pytest.mark.parametrize("relpath, anchor, repository_path", [
    (MODULE_H, "class TORCH_API Module", "torch/csrc/api/include/torch/nn/module.h"),
    (TENSOR_IMPL_H, "struct C10_API TensorImpl", "c10/core/TensorImpl.h"),
    ("torch/include/ATen/core/Tensor.h", "class TORCH_API OptionalTensorRef", "aten/src/ATen/core/Tensor.h"),
    ("torch/include/torch/library.h", "class TORCH_API Library", "torch/library.h"),
])
def test_header_links_give_the_repository_line(relpath, anchor, repository_path):
    path = installed_or_skip(relpath)
    link = tracer.link(relpath, anchor)
    assert anchor in source.repository_lines(path)[link.line - 1]
    offset = 1 if source.file_lines(path)[0] == source._WRAP_FIRST else 0
    assert link.line == lines_holding(relpath, anchor)[0] - offset
    assert link.url == f"https://github.com/pytorch/pytorch/blob/{COMMIT}/{repository_path}#L{link.line}"


def test_header_read_stops_where_the_repository_file_ends():
    lines = source.repository_lines(installed_or_skip(MODULE_H))
    holding_last = [line for line in lines if lines[-1] in line]
    excerpt = tracer.read(MODULE_H, lines[-1], lines=10, occurrence=len(holding_last))
    assert (excerpt.start, excerpt.lines) == (len(lines), [lines[-1]])


@pytest.mark.parametrize("repository_path, wheel_path, anchor", [
    ("c10/core/TensorImpl.h", TENSOR_IMPL_H, "struct C10_API TensorImpl"),
    ("aten/src/ATen/native/cuda/Loops.cuh", "torch/include/ATen/native/cuda/Loops.cuh", "namespace at"),
    ("aten/src/ATen/native/native_functions.yaml", source.NATIVE_FUNCTIONS, "- func: add.Tensor("),
])
def test_repository_path_of_a_shipped_file_reads_the_wheel_copy(repository_path, wheel_path, anchor):
    installed_or_skip(wheel_path)
    by_repository = tracer.link(repository_path, anchor)
    by_wheel = tracer.link(wheel_path, anchor)
    assert by_repository.relpath == wheel_path
    assert (by_repository.url, by_repository.line) == (by_wheel.url, by_wheel.line)
    assert by_repository.url.startswith(f"https://github.com/pytorch/pytorch/blob/{COMMIT}/{repository_path}#L")


def test_shipped_header_that_the_repository_keeps_is_linked():
    for relpath in ("torch/include/ATen/ops/from_blob.h",  # checked in, beside the generated ops
                    "torch/include/torch/csrc/inductor/aoti_torch/generated/c_shim_cpu.h"):  # generated, checked in
        installed_or_skip(relpath)
        assert tracer.link(relpath).url.endswith("/" + source.repo_path(relpath))


@pytest.mark.parametrize("relpath", [
    "torch/include/ATen/ops/add.h",
    "torch/include/ATen/ops/add_ops.h",
    "torch/include/ATen/core/TensorBody.h",
    "torch/include/ATen/Functions.h",
    "torch/include/ATen/CPUFunctions.h",
    "torch/include/ATen/Config.h",
    "torch/include/torch/csrc/autograd/generated/Functions.h",
    "torch/include/torch/csrc/autograd/generated/python_return_types.h",
    "torch/include/torch/csrc/api/include/torch/version.h",
    "torch/version.py",
    "torch/_VF.pyi",
])
def test_file_the_build_writes_is_refused(relpath):
    installed_or_skip(relpath)
    with pytest.raises(LookupError, match="written when PyTorch is built.*would 404: link what it is made from"):
        tracer.link(relpath)
    with pytest.raises(LookupError, match="would 404"):
        tracer.read(relpath, "#", lines=1)


@pytest.mark.parametrize("relpath", [
    "torch/include/pybind11/pybind11.h",
    "torch/include/fmt/format.h",
])
def test_vendored_third_party_header_is_refused(relpath):
    installed_or_skip(relpath)
    with pytest.raises(LookupError, match="third-party library.*would 404; link the library's own repository"):
        tracer.link(relpath)


def test_rendered_marker_is_what_the_build_writes():
    """Checked-in generated files name no template or build tool; those the build renders do."""
    assert source._RENDERED.search("// @generated by torchgen/gen.py from Function.h")
    assert source._RENDERED.search("// @generated from ../tools/autograd/templates/Functions.h")
    assert source._RENDERED.search("# @generated by tools/pyi/gen_pyi.py from torch/_C/_nn.pyi.in")
    assert not source._RENDERED.search("// @generated by update_schema.py")
    assert not source._RENDERED.search("// @generated")


# -- Markdown of an excerpt ---------------------------------------------------------------------------

def fenced_body(markdown):
    """The fence and the lines between it and the line that closes it, as CommonMark reads them."""
    lines = markdown.splitlines()
    opening = next(i for i, line in enumerate(lines) if line.startswith("```"))
    fence = re.match(r"`+", lines[opening]).group(0)
    closing = next(i for i in range(opening + 1, len(lines)) if re.fullmatch(r" {0,3}`{%d,}\s*" % len(fence), lines[i]))
    return fence, lines[opening + 1:closing]


def test_excerpt_holding_a_triple_backtick_stays_one_code_block():
    if not lines_holding(INIT, "```"):
        pytest.skip(f"the installed {INIT} holds no triple backtick")
    excerpt = tracer.read(INIT, "```", lines=3)
    fence, body = fenced_body(excerpt._repr_markdown_())
    assert len(fence) > 3 and body == excerpt.lines


def test_fence_is_longer_than_any_backtick_run():
    lines = ["a = 1", "````", "`````` six", "b = 2"]
    excerpt = source.Excerpt(INIT, 1, lines)
    fence, body = fenced_body(excerpt._repr_markdown_())
    assert fence == "`" * 7 and body == lines
    assert fenced_body(source.Excerpt(INIT, 1, ["x = 1"])._repr_markdown_())[0] == "```"


def test_excerpt_markdown_parses_to_the_excerpt_text():
    markdown_it = pytest.importorskip("markdown_it")
    if not lines_holding(INIT, "```"):
        pytest.skip(f"the installed {INIT} holds no triple backtick")
    excerpt = tracer.read(INIT, "```", lines=3)
    fences = [token for token in markdown_it.MarkdownIt().parse(excerpt._repr_markdown_()) if token.type == "fence"]
    assert [token.content for token in fences] == [excerpt.text + "\n"]


# -- what imports torch ------------------------------------------------------------------------------

def test_only_a_commit_asked_for_by_name_imports_torch():
    """The module docstring's promise, checked in a fresh interpreter."""
    code = ("import sys, tracer\nfrom tracer import source\n"
            "source.resolve('torch/nn/modules/module.py'); source.resolve('torch/csrc/stub.c')\n"
            "assert source.commit_of('torch') is None\n"
            "print('torch' in sys.modules)\n"
            "source.commit_of('torch', load=True)\n"
            "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]
    assert "never imported" not in source.__doc__ and "commit_of(load=True)" in source.__doc__
