"""The README's Python snippets, as shipped: they name real functions and run verbatim after ``xaffect demo``.

Running them needs a demo workspace; the quick demo takes minutes, so
``tests/test_e2e_demo.py`` calls :func:`run_readme_python` on the workspace it
builds anyway. Here: every block compiles, every ``from xaffect... import``
names something that exists, and the runner itself reports a failing block
by its README line.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import os
import re
import traceback
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_python_blocks(readme: Path = README) -> list[tuple[int, str]]:
    """Every fenced ```python block of ``readme``, as (first line number, code)."""
    blocks, lines = [], readme.read_text(encoding="utf-8").splitlines()
    start = None
    for i, line in enumerate(lines, 1):
        if start is None and re.match(r"^```python\s*$", line):
            start = i + 1
        elif start is not None and line.startswith("```"):
            blocks.append((start, "\n".join(lines[start - 1:i - 1]) + "\n"))
            start = None
    return blocks


def run_readme_python(demo_out: Path, *, readme: Path = README) -> Path:
    """Run every Python block of the README, verbatim, as a user would after ``xaffect demo``.

    The blocks run one after another in a fresh folder where ``xaffect-demo``
    is ``demo_out`` (the folder ``xaffect demo --out`` wrote), each in its own
    namespace. A failure names the README line and the error.

    Returns
    -------
    Path
        The folder the blocks ran in (with whatever they wrote, e.g. ``profile.png``).
    """
    import matplotlib

    matplotlib.use("Agg")
    here = Path(demo_out).resolve().parent / "readme-run"
    here.mkdir(exist_ok=True)
    link = here / "xaffect-demo"
    if not link.exists():
        link.symlink_to(Path(demo_out).resolve(), target_is_directory=True)
    blocks = readme_python_blocks(readme)
    assert blocks, f"{readme}: no ```python blocks"
    with contextlib.chdir(here):
        for line, code in blocks:
            try:
                exec(compile(code, f"README.md:{line}", "exec"), {"__name__": "__readme__"})
            except Exception as exc:  # noqa: BLE001 - reported with its README line
                tb = "".join(traceback.format_exception(exc, limit=-3))
                raise AssertionError(f"README.md block at line {line} fails: {exc!r}\n{tb}") from None
    return here


@pytest.mark.parametrize("line, code", readme_python_blocks(), ids=lambda v: f"line{v}" if isinstance(v, int) else "")
def test_readme_block_compiles_and_names_real_things(line, code):
    tree = ast.parse(code, f"README.md:{line}")
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "xaffect":
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name) or importlib.util.find_spec(f"{node.module}.{alias.name}"), \
                    f"README.md:{line}: {node.module} has no {alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                assert importlib.util.find_spec(alias.name) is not None, f"README.md:{line}: no module {alias.name}"
    # attribute calls on xaffect's public modules, e.g. analysis.layer_profile, exist too
    imported = {a.asname or a.name: f"{n.module}.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                and n.module and n.module.startswith("xaffect") for a in n.names}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in imported:
            target = imported[node.value.id]
            if importlib.util.find_spec(target) is not None:
                assert hasattr(importlib.import_module(target), node.attr), f"README.md:{line}: {target}.{node.attr}"


def test_runner_names_the_failing_line(tmp_path):
    """run_readme_python runs blocks verbatim in the demo's place and reports the README line of a failure."""
    demo = tmp_path / "out"
    (demo / "workspace").mkdir(parents=True)
    (demo / "workspace" / "note.txt").write_text("hello")
    readme = tmp_path / "README.md"
    readme.write_text("# t\n\n```python\nfrom pathlib import Path\n"
                      "assert Path('xaffect-demo/workspace/note.txt').read_text() == 'hello'\n"
                      "Path('wrote.txt').write_text('x')\n```\n\ntext\n\n```python\n1 / 0\n```\n")
    with pytest.raises(AssertionError, match=r"README.md block at line 12 fails: ZeroDivisionError"):
        run_readme_python(demo, readme=readme)
    assert (tmp_path / "readme-run" / "wrote.txt").is_file()
    assert os.path.samefile(tmp_path / "readme-run" / "xaffect-demo", demo)
