"""Harvester of another CKAN portal through its action API: pages through
package_search, turns each remote dataset into a flat record for the
declarative mapping (mappings/ckan.yaml by default), maps the remote
organization to the department of the same name, and withdraws what the
remote portal no longer lists (with the same fail-closed limit)."""
from __future__ import annotations

import contextlib
import json
import os
import urllib.parse
from typing import Any, Iterator

import ckan.plugins as plugins
from ckanext.harvest.interfaces import IHarvester

from ckanext.shanghai.files import fetching
from ckanext.shanghai.harvesters import pipeline
from ckanext.shanghai.harvesters.source_config import SourceConfigError

MAX_PAGE_SIZE = 1000


def flatten(package: dict[str, Any], base_url: str) -> dict[str, Any]:
    """A remote CKAN dataset as the flat record mappings/ckan.yaml reads."""
    record: dict[str, Any] = {
        key: value for key, value in package.items() if isinstance(value, (str, int, float)) and value != ""
    }
    record["tags"] = ",".join(tag.get("display_name") or tag.get("name", "") for tag in package.get("tags") or [])
    organization = package.get("organization") or {}
    record["organization"] = organization.get("title") or organization.get("name") or ""
    record["formats"] = sorted({(r.get("format") or "").strip() for r in package.get("resources") or []} - {""})
    record["page_url"] = f"{base_url}/dataset/{package.get('name', '')}"
    for extra in package.get("extras") or []:
        if isinstance(extra.get("value"), str):
            record[f"extras.{extra.get('key')}"] = extra["value"]
    return record


def remote_records(base_url: str, fq: str, page_size: int, limits: fetching.FetchLimits) -> Iterator[dict]:
    """Every public dataset the remote portal lists, a page at a time (memory
    bounded by the page size), in a stable order."""
    start = 0
    while True:
        query = urllib.parse.urlencode({"q": "*:*", "fq": fq, "rows": page_size, "start": start, "sort": "id asc"})
        path = fetching.download(f"{base_url}/api/3/action/package_search?{query}", limits)
        try:
            answer = json.loads(path.read_bytes())
        except ValueError:
            raise fetching.SourceFetchError("远端门户返回的不是 JSON", "The remote portal did not answer JSON")
        finally:
            os.unlink(path)
        if not isinstance(answer, dict) or not answer.get("success"):
            raise fetching.SourceFetchError("远端门户拒绝了检索请求", "The remote portal refused the search")
        results = answer["result"]["results"]
        for package in results:
            yield flatten(package, base_url)
        start += len(results)
        if not results or start >= answer["result"]["count"]:
            return


class CkanApiHarvester(pipeline.MappedSourceHarvester, plugins.SingletonPlugin):
    """CKAN portal (CKAN 门户，经 Action API)."""

    plugins.implements(IHarvester)

    kind_keys = frozenset({"fq", "page_size"})
    default_mapping = "ckan"

    def parse_config(self, config_text: str | None) -> dict[str, Any]:
        config = super().parse_config(config_text)
        page_size = config.get("page_size", 100)
        if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise SourceConfigError(f"page_size 应在 1 到 {MAX_PAGE_SIZE} 之间",
                                    f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        config["page_size"] = page_size
        if not isinstance(config.get("fq", ""), str):
            raise SourceConfigError("fq 应为文本", "fq must be text")
        return config

    @contextlib.contextmanager
    def open_records(self, harvest_job, config: dict[str, Any], limits: fetching.FetchLimits):
        base_url = harvest_job.source.url.strip().rstrip("/")
        yield remote_records(base_url, config.get("fq", ""), config["page_size"], limits.for_pages())

    # IHarvester

    def info(self):
        return {
            "name": "shanghai_ckan_api",
            "title": "CKAN 门户 CKAN portal (action API)",
            "description": "Another CKAN portal's public datasets, mapped onto the core schema; "
                           "what the remote deletes is withdrawn. 采集其他 CKAN 门户的公开数据集。",
            "form_config_interface": "Text",
        }
