"""The house's dependency rules (DESIGN.md "Layout"): import-linter's contracts in
pyproject.toml, and no importlib for our own modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from core import PROJECT_ROOT

OUR_PACKAGES = (
    "core",
    "standards",
    "schemas",
    "storage",
    "reports",
    "ingest",
    "alerts",
    "api",
    "simulators",
    "airwater",
)


def test_import_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--config", str(PROJECT_ROOT / "pyproject.toml"), "--no-cache"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def _dynamic_imports_of_ours(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", None))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and str(node.args[0].value).split(".")[0] in OUR_PACKAGES
        ):
            found.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")
    return found


def test_no_importlib_for_our_own_modules():
    places = [
        place
        for package in OUR_PACKAGES
        if (PROJECT_ROOT / package).is_dir()
        for path in sorted((PROJECT_ROOT / package).rglob("*.py"))
        for place in _dynamic_imports_of_ours(path)
    ]
    assert places == [], "import our modules with import statements: " + ", ".join(places)
