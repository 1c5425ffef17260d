"""The layering is a promise: the import contracts pass, fail when someone breaks them, and the two top-level
modules (which import-linter only sees from outside) import nothing above their layer."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PROJECT_PACKAGES = {"ntbcare", "bot", "ingest", "routing", "webhooks", "worker"}

# What each top-level module may import from the project (prefixes).
ALLOWED = {
    "webhooks.py": ("ntbcare.core", "ntbcare.pipeline"),
    "worker.py": ("ntbcare.core", "ntbcare.pipeline"),
}


def project_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.split(".")[0] in PROJECT_PACKAGES}


@pytest.mark.parametrize("module", sorted(ALLOWED))
def test_top_level_modules_import_only_from_layers_below_them(module: str) -> None:
    imported = project_imports(ROOT / module)
    assert imported, f"{module} should use the project's core"
    upward = sorted(name for name in imported if not name.startswith(ALLOWED[module]))
    assert upward == [], f"{module} imports from a layer above it: {upward}"


def run_contracts(root: Path) -> subprocess.CompletedProcess[str]:
    if not LINT_IMPORTS.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    return subprocess.run([str(LINT_IMPORTS), str(root / "pyproject.toml"), "--no-cache"],
                          cwd=root, capture_output=True, text=True, timeout=120,
                          env={"PATH": str(LINT_IMPORTS.parent), "PYTHONPATH": str(root)})


def copy_of_project(tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    copy.mkdir()
    shutil.copy(ROOT / "pyproject.toml", copy)
    for package in ("ntbcare", "bot", "ingest", "routing"):
        shutil.copytree(ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__", "data"))
    for module in ALLOWED:
        shutil.copy(ROOT / module, copy)
    return copy


def test_the_import_contracts_hold() -> None:
    result = run_contracts(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("file", "line", "contract"), [
    ("routing/route.py", "from bot import texts as _texts", "none imports another"),
    ("ntbcare/core/queries.py", "import worker as _worker", "The core imports no package above it"),
    ("ntbcare/core/lifecycle.py", "from ntbcare.pipeline import join as _join", "Layers point down"),
    ("ntbcare/pipeline/dispatch.py", "from ntbcare.pipeline import runtime as _runtime", "No import cycles"),
])
def test_a_forbidden_import_breaks_a_contract(tmp_path: Path, file: str, line: str, contract: str) -> None:
    project = copy_of_project(tmp_path)
    with (project / file).open("a", encoding="utf-8") as handle:
        handle.write(f"\n{line}  # noqa\n")
    result = run_contracts(project)
    assert result.returncode != 0
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, result.stdout
