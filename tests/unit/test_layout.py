"""The layout holds: imports between the portal extension and the harvest
package run one way only (the harvest package may use the extension; the
extension never imports the harvest package), read from the source (ast)."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "ckanext-shanghai" / "ckanext" / "shanghai"
HARVESTERS = ROOT / "harvesters"
HARVEST_PACKAGE = "ckanext.shanghai.harvesters"


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports, anywhere in it (functions included),
    with relative imports resolved against the file's package."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _package_of(path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names] + [(node.lineno, base)]
    return found


def _package_of(path: Path) -> str:
    if path.is_relative_to(HARVESTERS):
        parts = [HARVEST_PACKAGE] + list(path.relative_to(HARVESTERS).parent.parts)
    else:
        parts = ["ckanext"] + list(path.relative_to(EXTENSION.parent).parent.parts)
    return ".".join(part for part in parts if part)


def extension_files() -> list[Path]:
    return sorted(EXTENSION.rglob("*.py"))


def test_the_extension_never_imports_the_harvest_package():
    offenders = [f"{path.relative_to(ROOT)}:{line} imports {module}"
                 for path in extension_files()
                 for line, module in imported_modules(path)
                 if module == HARVEST_PACKAGE or module.startswith(HARVEST_PACKAGE + ".")]
    assert offenders == []


def test_the_harvest_package_uses_the_extension():
    # The direction that is allowed is the one in use (so the test above is
    # not vacuous about which way the dependency runs).
    users = {path.name for path in HARVESTERS.rglob("*.py")
             for _line, module in imported_modules(path)
             if module.startswith("ckanext.shanghai.") and not module.startswith(HARVEST_PACKAGE)}
    assert users


@pytest.mark.parametrize("source, module", [
    ("from ckanext.shanghai.harvesters import records\n", "ckanext.shanghai.harvesters"),
    ("def f():\n    from ckanext.shanghai.harvesters.index import bulk\n", "ckanext.shanghai.harvesters.index"),
    ("import ckanext.shanghai.harvesters.queue\n", "ckanext.shanghai.harvesters.queue"),
])
def test_an_import_against_the_direction_is_found(tmp_path, source, module):
    planted = EXTENSION / "logic" / "_planted_for_test.py"
    planted.write_text(source, encoding="utf-8")
    try:
        modules = [name for _line, name in imported_modules(planted)]
    finally:
        planted.unlink()
    assert module in modules
