"""Every third-party module the code imports is a declared dependency of its package.

The library (``rnaimg_core``) may import only its core dependencies, and never
Streamlit or Plotly; the dashboard (``app.py``, ``pages/``, ``dashboard/``) may also
import the ``app`` extra. Read from the source with ``ast``, so a lazy import inside a
function counts too.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCAL = {"rnaimg_core", "dashboard", "pages", "tests", "benchmarks", "scripts"}


def _declared(requirements: list[str]) -> set[str]:
    """Normalised distribution names of PEP 508 requirement strings."""
    return {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _imported_modules(paths: list[Path]) -> dict[str, str]:
    """Top-level module name -> first file importing it, for absolute imports."""
    found: dict[str, str] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def _third_party(modules: dict[str, str]) -> dict[str, str]:
    return {m: f for m, f in modules.items() if m not in sys.stdlib_module_names and m not in LOCAL
            and m != "__future__"}


@functools.cache
def _installed() -> dict[str, list[str]]:
    """Top-level module -> distributions providing it (read from every installed package's metadata: once)."""
    return packages_distributions()


def _distribution(module: str) -> set[str]:
    return {d.lower().replace("_", "-") for d in _installed().get(module, [module])}


def _undeclared(modules: dict[str, str], declared: set[str]) -> list[str]:
    return sorted(f"{m} (imported in {f})" for m, f in _third_party(modules).items()
                  if not _distribution(m) & declared)


def test_library_imports_only_its_core_dependencies():
    modules = _imported_modules(sorted((ROOT / "rnaimg_core").rglob("*.py")))
    assert _undeclared(modules, _declared(_project()["dependencies"])) == []


@pytest.mark.parametrize("module", ["streamlit", "plotly", "altair"])
def test_library_imports_no_dashboard_toolkit(module):
    modules = _imported_modules(sorted((ROOT / "rnaimg_core").rglob("*.py")))
    assert module not in modules, f"rnaimg_core imports {module} ({modules.get(module)})"


def test_dashboard_imports_are_declared_in_the_app_extra():
    files = [ROOT / "app.py", ROOT / "home.py", *sorted((ROOT / "pages").rglob("*.py")),
             *sorted((ROOT / "dashboard").rglob("*.py"))]
    project = _project()
    declared = _declared(project["dependencies"]) | _declared(project["optional-dependencies"]["app"])
    assert _undeclared(_imported_modules(files), declared) == []


def test_the_checker_sees_a_missing_dependency(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import numpy\n\ndef f():\n    import plotly.express as px\n")
    modules = {m: f for m, f in ((m, "m.py") for m in ("numpy", "plotly", "os"))}
    assert set(_third_party(modules)) == {"numpy", "plotly"}
    assert _undeclared(modules, {"numpy"}) == ["plotly (imported in m.py)"]


def _python_floor() -> tuple[int, int]:
    spec = _project()["requires-python"]
    match = re.fullmatch(r">=\s*(\d+)\.(\d+)", spec.strip())
    assert match, f"requires-python should be a plain floor '>=3.N', not {spec!r}"
    return int(match.group(1)), int(match.group(2))


def test_python_floor_is_the_tested_one():
    """pyproject's floor is one the code runs on, README states it, and CI (``.ci/run``) tests exactly it.

    ``tomllib`` (``rnaimg_core/limits.py``) arrived in Python 3.11: a lower floor would let pip install the
    package where every reader fails.
    """
    floor = _python_floor()
    assert floor >= (3, 11), "rnaimg_core.limits imports tomllib (Python 3.11+)"
    assert sys.version_info[:2] >= floor, f"running on {sys.version_info[:2]}, below the declared floor {floor}"
    assert f"Python {floor[0]}.{floor[1]} or newer" in (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    match = re.search(r"RNAIMG_CI_PYTHON=(\d+)\.(\d+)", ci)
    assert match and (int(match.group(1)), int(match.group(2))) == floor, \
        ".ci/run must name the Python it tests (RNAIMG_CI_PYTHON=3.N), the declared floor"
    if os.environ.get("RNAIMG_CI_PYTHON"):  # inside CI: the interpreter really is the floor
        assert sys.version_info[:2] == floor, (f"CI runs Python {sys.version_info[0]}.{sys.version_info[1]} "
                                               f"but pyproject's floor is {floor[0]}.{floor[1]}")


def test_every_public_name_loads_from_its_module():
    """``rnaimg_core`` and ``rnaimg_core.model`` load their names on first use from the imports their type stub
    (``__init__.pyi``) lists: the stub's ``__all__``, its imports and the package's ``__all__`` and ``dir()``
    agree, and each name is the object of the module the stub names."""
    import importlib

    for package in ("rnaimg_core", "rnaimg_core.model"):
        module = importlib.import_module(package)
        stub = ast.parse(Path(module.__file__).with_suffix(".pyi").read_text())
        homes = {alias.name: node.module for node in stub.body if isinstance(node, ast.ImportFrom)
                 for alias in node.names}
        listed = next(ast.literal_eval(node.value) for node in stub.body if isinstance(node, ast.Assign)
                      and node.targets[0].id == "__all__")
        assert sorted(listed) == sorted(homes) == sorted(module.__all__), package
        assert set(homes) <= set(dir(module)), package
        for name, home in homes.items():
            assert getattr(module, name) is getattr(importlib.import_module(f"{package}.{home}"), name), name
