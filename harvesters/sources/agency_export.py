"""Harvester of agency catalog exports (JSON, JSON lines, CSV in any of the
encodings portals serve, Excel), mapped onto the department schemas by a
declarative mapping in the source's configuration; no code per portal."""
from __future__ import annotations

import contextlib
import os
from typing import Any

import ckan.plugins as plugins
from ckanext.harvest.interfaces import IHarvester

from ckanext.shanghai.files import fetching
from ckanext.shanghai.files import readers
from ckanext.shanghai.harvesters import pipeline


class AgencyExportHarvester(pipeline.MappedSourceHarvester, plugins.SingletonPlugin):
    """Agency catalog export (机构目录导出)."""

    plugins.implements(IHarvester)

    kind_keys = frozenset({"format", "header_row", "sheet"})

    @contextlib.contextmanager
    def open_records(self, harvest_job, config: dict[str, Any], limits: fetching.FetchLimits):
        url = harvest_job.source.url.strip()
        path = fetching.local_path(url, limits)
        downloaded = None
        if path is None:
            path = downloaded = fetching.download(url, limits)
        try:
            with open(path, "rb") as stream:
                yield readers.iter_records(
                    stream, config.get("format"), max_bytes=limits.max_bytes,
                    **{key: config[key] for key in ("header_row", "sheet") if key in config})
        finally:
            if downloaded is not None:
                os.unlink(downloaded)

    # IHarvester

    def info(self):
        return {
            "name": "shanghai_agency_export",
            "title": "机构目录导出 Agency catalog export",
            "description": "JSON / CSV / Excel catalog exports mapped onto the department schemas "
                           "by configuration. 由配置映射的 JSON / CSV / Excel 目录导出。",
            "form_config_interface": "Text",
        }
