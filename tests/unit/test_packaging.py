"""The package installs what it runs on: the wheel built from this
repository requires, directly or through what it requires, the distribution
of every third-party module the extension and the harvesters import (so
`pip install ckanext-shanghai` gives a portal that starts)."""
from __future__ import annotations

import ast
import importlib.metadata as metadata
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PACKAGED = ("ckanext-shanghai", "harvesters")
OWN = ("ckanext.shanghai",)


@pytest.fixture(scope="module")
def wheel_requirements(tmp_path_factory) -> list[Requirement]:
    """Requires-Dist of the wheel built from a copy of the repository (the
    build writes into the tree it builds), offline, with this venv's setuptools."""
    copy = tmp_path_factory.mktemp("source") / "portal"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", ".venv", ".local", ".git")
    for name in ("setup.py", "pyproject.toml", "README.md"):
        copy.mkdir(exist_ok=True)
        shutil.copy2(ROOT / name, copy / name)
    for folder in (*PACKAGED, "schemas"):
        shutil.copytree(ROOT / folder, copy / folder, ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--wheel-dir", str(out), str(copy)],
        capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    [wheel] = out.glob("ckanext_shanghai-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        fields = Parser().parsestr(archive.read(name).decode("utf-8"))
    return [Requirement(text) for text in fields.get_all("Requires-Dist") or []]


def reachable(requirements: list[Requirement]) -> set[str]:
    """Every distribution these requirements bring, following each
    distribution's own requirements (with the extras asked for) as they are
    declared by the distributions installed here."""
    found: set[str] = set()
    pending = [(requirement, "") for requirement in requirements]
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        requirement, asked_by_extra = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": asked_by_extra}):
            continue
        name = canonicalize_name(requirement.name)
        key = (name, frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        found.add(name)
        try:
            distribution = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            continue
        for text in distribution.requires or []:
            nested = Requirement(text)
            for extra in ("", *requirement.extras):
                pending.append((nested, extra))
    return found


def imported_modules() -> dict[str, set[str]]:
    """Module -> files importing it, for every absolute import (and
    importlib.import_module of a literal name) in the packaged code. A
    namespace package (ckanext) is named with its second part."""
    modules: dict[str, set[str]] = {}

    def add(module: str, path: Path) -> None:
        parts = module.split(".")
        name = ".".join(parts[:2]) if parts[0] == "ckanext" else parts[0]
        modules.setdefault(name, set()).add(str(path.relative_to(ROOT)))

    for folder in PACKAGED:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        add(alias.name, path)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    add(node.module, path)
                elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                      and node.func.attr == "import_module" and node.args
                      and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                    add(node.args[0].value, path)
    return {module: files for module, files in modules.items()
            if module.split(".")[0] not in sys.stdlib_module_names and not module.startswith(OWN)}


def distributions_of(module: str) -> set[str]:
    """The installed distributions that provide ``module`` (a top-level
    module, or ckanext.<name>)."""
    if "." not in module:
        return {canonicalize_name(name) for name in metadata.packages_distributions().get(module, [])}
    folder = module.replace(".", "/") + "/"
    return {canonicalize_name(distribution.metadata["Name"]) for distribution in metadata.distributions()
            if any(str(file).startswith(folder) for file in distribution.files or [])}


def test_the_wheel_requires_every_distribution_the_code_imports(wheel_requirements):
    required = reachable(wheel_requirements)
    missing = {}
    for module, files in sorted(imported_modules().items()):
        providers = distributions_of(module)
        assert providers, f"{module} (imported by {sorted(files)[0]}) is not installed in this venv"
        if not providers & required:
            missing[module] = f"{'/'.join(sorted(providers))} (imported by {', '.join(sorted(files)[:3])})"
    assert missing == {}, "the wheel does not require: " + "; ".join(f"{m}: {d}" for m, d in missing.items())


def test_ckan_comes_with_its_own_dependencies(wheel_requirements):
    """`ckan==2.12.0` alone installs CKAN without a single dependency; its
    pinned set is the `requirements` extra."""
    [ckan] = [r for r in wheel_requirements if canonicalize_name(r.name) == "ckan"]
    assert "requirements" in ckan.extras and str(ckan.specifier) == "==2.12.0"
