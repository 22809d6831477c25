"""Third-party internals are touched in one module (ckanext.shanghai.compat),
which checks them at start-up and refuses to start, naming the package and
the attribute in Chinese and English, when an upgrade changed them."""
import ast
from pathlib import Path

import pysolr
import pytest

from ckanext.shanghai import compat
from ckanext.shanghai.plugin import ShanghaiPlugin

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [path for folder in (ROOT / "ckanext-shanghai" / "ckanext" / "shanghai", ROOT / "harvesters")
           for path in sorted(folder.rglob("*.py"))]
COMPAT = ROOT / "ckanext-shanghai" / "ckanext" / "shanghai" / "compat.py"
# Objects of other packages that are meant to be written to.
WRITABLE = {"g", "session"}


def test_the_installed_packages_pass_the_check():
    compat.check()


def test_every_internal_names_its_package_and_reason():
    for internal in compat.INTERNALS:
        assert ":" in internal.target and internal.package and internal.why


def test_a_changed_signature_stops_the_portal_naming_package_and_attribute(monkeypatch):
    monkeypatch.setattr(pysolr.Solr, "_send_request", lambda self, method, path: None)
    with pytest.raises(compat.CompatError) as raised:
        compat.check()
    message = str(raised.value)
    assert "pysolr:Solr._send_request" in message
    assert "无法启动" in message and "refuses to start" in message
    assert [p for p in raised.value.problems if "pysolr" in p[1]]


def test_a_missing_attribute_and_another_version_are_named(monkeypatch):
    import ckan.lib.search.index as search_index

    monkeypatch.delattr(search_index, "make_connection")
    other_release = compat.Internal("pysolr", "9.9", "pysolr:Solr.add", None, "test")
    with pytest.raises(compat.CompatError) as raised:
        compat.check(compat.INTERNALS + (other_release,))
    english = " ".join(en for _zh, en in raised.value.problems)
    assert "ckan has no ckan.lib.search.index:make_connection" in english
    assert "pysolr is 3.11" in english and "9.9x expected" in english


def test_the_plugin_refuses_to_load_when_an_internal_changed(monkeypatch):
    monkeypatch.setattr(pysolr.Solr, "_send_request", lambda self: None)
    with pytest.raises(compat.CompatError):
        ShanghaiPlugin().update_config({})


def _imported_names(tree: ast.Module) -> dict[str, str]:
    """Local name -> module it was imported from, for other packages' modules."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[(alias.asname or alias.name).split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return {local: module for local, module in names.items()
            if not module.startswith("ckanext.shanghai") and local not in WRITABLE}


def _root(node: ast.AST) -> ast.AST:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node


def writes_to_other_packages(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = _imported_names(tree)
    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, (ast.Assign, ast.Delete)):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("setattr", "delattr"):
            targets = [ast.Attribute(value=node.args[0], attr="?")]
        for target in targets:
            if isinstance(target, (ast.Attribute, ast.Subscript)):
                root = _root(target)
                if isinstance(root, ast.Name) and root.id in imported:
                    found.append(f"{path.name}:{node.lineno} writes to {imported[root.id]}")
    return found


def test_only_compat_writes_to_other_packages_objects():
    offenders = [line for path in SOURCES if path != COMPAT for line in writes_to_other_packages(path)]
    assert offenders == []


def test_the_write_check_finds_a_patch(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text("import pysolr\nimport ckan.plugins.toolkit as tk\n"
                       "pysolr.Solr._send_request = None\ntk.config['ckan.search.solr_commit'] = False\n")
    assert writes_to_other_packages(planted) == [
        "planted.py:3 writes to pysolr", "planted.py:4 writes to ckan.plugins.toolkit"]
