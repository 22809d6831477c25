"""What lets a rebuild skip validating a dataset again: every document the
bulk indexer writes carries ``index_source``, a digest of what shaped its
stored dicts (the dictized package, its harvest origin, and the schemas,
plugins, code and package versions of this installation). A rebuild that
finds the same digest in the index reuses the validated dicts stored
beside it instead of running the show schemas again."""
from __future__ import annotations

import functools
import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

import ckan.plugins.toolkit as tk
from ckan.lib import search

__all__ = ["FIELD", "environment_digest", "package_digest", "with_origin", "stored_dicts"]

# The Solr field (stored, not indexed) holding the digest.
FIELD = "index_source"

_DISTRIBUTIONS = ("ckan", "ckanext-scheming", "ckanext-harvest", "ckanext-dcat", "ckanext-shanghai")
_CONFIG_PREFIXES = ("scheming.", "ckan.plugins", "ckan.locale", "ckan.site_url", "ckan.auth.")
_SOURCE_SUFFIXES = (".py", ".yaml", ".yml", ".json")


@functools.lru_cache(maxsize=1)
def environment_digest() -> bytes:
    """Everything besides the package that shapes the validated dicts: the
    versions of CKAN and its extensions, the plugins and scheming options,
    and the text of the portal's own code and schemas (so a change of a
    validator or a schema file makes every dataset validate again)."""
    digest = hashlib.blake2b(digest_size=16)
    for name in _DISTRIBUTIONS:
        try:
            digest.update(f"{name}={metadata.version(name)}\n".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{name}=absent\n".encode())
    for key in sorted(tk.config):
        if key.startswith(_CONFIG_PREFIXES):
            digest.update(f"{key}={tk.config.get(key)}\n".encode())
    for path in _portal_sources():
        digest.update(str(path.name).encode())
        digest.update(path.read_bytes())
    return digest.digest()


def _portal_sources() -> list[Path]:
    import ckanext.shanghai as extension

    folders = sorted({Path(folder).resolve() for folder in extension.__path__})
    for package in ("ckanext.shanghai.schemas", "ckanext.shanghai.harvesters"):
        try:
            module = __import__(package, fromlist=["__path__"])
        except ImportError:
            continue
        folders += sorted(Path(folder).resolve() for folder in module.__path__)
    files = {path for folder in folders for path in folder.rglob("*")
             if path.suffix in _SOURCE_SUFFIXES and "__pycache__" not in path.parts and path.is_file()}
    return sorted(files)


def package_digest(dictized: dict[str, Any]) -> str:
    """The digest of one dictized package in this installation."""
    digest = hashlib.blake2b(environment_digest(), digest_size=16)
    digest.update(json.dumps(dictized, sort_keys=True, default=str, ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()


def with_origin(digest: str, origin: tuple | None) -> str:
    """The document's ``index_source``: the package's digest and its harvest
    origin (which ckanext-harvest's hook writes into the stored dicts)."""
    if origin is None:
        return digest
    return hashlib.blake2b(f"{digest}{json.dumps(origin, default=str)}".encode("utf-8"),
                           digest_size=16).hexdigest()


def stored_dicts(ids: list[str]) -> dict[str, tuple[str, str, str]]:
    """``{id: (index_source, data_dict, validated_data_dict)}`` of the
    documents the index holds for these packages (only those that have a
    digest), in one Solr request."""
    if not ids:
        return {}
    connection = search.make_connection()
    found = connection.search(
        q="*:*", fq=[f'+site_id:"{tk.config.get("ckan.site_id")}" +entity_type:package',
                     "{!terms f=id}" + ",".join(ids)],
        fl=f"id,{FIELD},data_dict,validated_data_dict", rows=len(ids), wt="json")
    return {doc["id"]: (doc[FIELD], doc["data_dict"], doc["validated_data_dict"])
            for doc in found.docs if doc.get(FIELD) and doc.get("data_dict") and doc.get("validated_data_dict")}
