"""The analysis core stays pure: it imports nothing that touches the outside world."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "advisor" / "core"
ALLOWED_TOP = {
    "numpy",
    "scipy",
    "pandas",
    "math",
    "dataclasses",
    "enum",
    "itertools",
    "collections",
    "typing",
    "__future__",
    "warnings",
    "advisor",
}
ALLOWED_ADVISOR = ("advisor.model", "advisor.core")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.append((node.lineno, "advisor.core." + (node.module or "")))
            else:
                found.append((node.lineno, node.module or ""))
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
            found.append((node.lineno, "__import__"))
    return found


def test_core_imports_only_allowed_modules() -> None:
    """Modules under advisor/core import only numpy/scipy/pandas, stdlib basics, the model."""
    files = sorted(CORE.rglob("*.py"))
    assert files, "advisor/core has no modules"
    bad = []
    for path in files:
        for line, name in _imports(path):
            top = name.split(".")[0]
            outside = top == "advisor" and not name.startswith(ALLOWED_ADVISOR)
            if top not in ALLOWED_TOP or outside:
                bad.append(f"{path.relative_to(CORE)}:{line}: {name}")
    assert not bad, "forbidden imports in advisor/core:\n" + "\n".join(bad)


def test_purity_check_catches_forbidden_import(tmp_path: Path) -> None:
    """The scanner flags time, os and click, including inside functions."""
    src = tmp_path / "m.py"
    src.write_text("import numpy\ndef f():\n    import time\n    from os import path\n")
    names = [n for _, n in _imports(src)]
    assert "time" in names and "os" in names
