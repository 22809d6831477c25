"""Harvester of agency catalog exports (JSON, JSON lines, CSV in any of the
encodings portals serve, Excel), mapped onto the department schemas by a
declarative mapping in the source's configuration; no code per portal."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Iterator

import ckan.model as model
import ckan.plugins as plugins
import ckan.plugins.toolkit as tk
from ckanext.harvest.interfaces import IHarvester
from ckanext.harvest.model import HarvestGatherError

from ckanext.shanghai.harvesters import fetching, mapping, readers, runner
from ckanext.shanghai.harvesters.writer import CatalogWriter

log = logging.getLogger(__name__)

MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"


def fetch_limits() -> fetching.FetchLimits:
    config = tk.config
    return fetching.FetchLimits(
        max_bytes=config.get("ckanext.shanghai.harvest.max_bytes"),
        connect_timeout=config.get("ckanext.shanghai.harvest.connect_timeout"),
        read_timeout=config.get("ckanext.shanghai.harvest.read_timeout"),
        deadline=config.get("ckanext.shanghai.harvest.deadline"),
        allowed_hosts=frozenset(h.lower() for h in config.get("ckanext.shanghai.harvest.allowed_hosts")),
        file_roots=tuple(Path(p) for p in config.get("ckanext.shanghai.harvest.file_roots")),
    )


def parse_source_config(config_text: str | None) -> dict[str, Any]:
    """The source configuration as a dict, with its mapping loaded; raises
    ValueError with a bilingual message naming what is wrong."""
    try:
        config = json.loads(config_text or "{}")
    except json.JSONDecodeError as error:
        raise ValueError(f"配置不是有效的 JSON：{error.msg} / Configuration is not valid JSON: {error.msg}")
    if not isinstance(config, dict):
        raise ValueError("配置应为 JSON 对象 / Configuration must be a JSON object")
    unknown = set(config) - {"mapping", "format", "complete", "max_withdraw_share", "header_row", "sheet",
                          "schedule_minutes"}
    if unknown:
        raise ValueError(f"未知配置项：{', '.join(sorted(unknown))} / Unknown options: {', '.join(sorted(unknown))}")
    spec = config.get("mapping")
    if isinstance(spec, str):
        path = MAPPINGS_DIR / f"{spec}.yaml"
        if not spec.replace("_", "").replace("-", "").isalnum() or not path.exists():
            shipped = sorted(p.stem for p in MAPPINGS_DIR.glob("*.yaml"))
            raise ValueError(f"没有名为 {spec} 的映射；可用：{', '.join(shipped)} / "
                             f"No mapping named {spec}; shipped mappings: {', '.join(shipped)}")
        spec = path
    elif not isinstance(spec, dict):
        raise ValueError("需要 mapping：内置映射名或映射对象 / 'mapping' must name a shipped mapping or be a mapping object")
    try:
        config["mapping"] = mapping.load_mapping(spec)
    except mapping.MappingConfigError as error:
        raise ValueError(str(error))
    share = config.get("max_withdraw_share", tk.config.get("ckanext.shanghai.harvest.max_withdraw_share"))
    if not isinstance(share, (int, float)) or not 0 <= share <= 1:
        raise ValueError("max_withdraw_share 应在 0 到 1 之间 / max_withdraw_share must be between 0 and 1")
    config["max_withdraw_share"] = float(share)
    config["complete"] = bool(config.get("complete", True))
    return config


def candidates(records_iter, source_mapping) -> Iterator[runner.Item]:
    """Map every record of an export; what cannot be mapped comes out as a
    Rejection with its reason."""
    for position, record in enumerate(records_iter, start=1):
        if isinstance(record, readers.BadRecord):
            yield runner.Rejection(None, None, record.message.partition(" / ")[0],
                                   record.message.partition(" / ")[2], record.position)
            continue
        try:
            mapped = source_mapping.apply(record)
        except mapping.RecordRejected as rejected:
            yield runner.Rejection(rejected.identity, rejected.field, rejected.reason_zh,
                                   rejected.reason_en, position)
            continue
        yield runner.Candidate(mapped.identity, mapped.department, mapped.dataset_type, mapped.package,
                               mapped.content_hash, position)


class DepartmentDirectory:
    """Finds or creates the organization of each department a job meets;
    one per job, so nothing lives on the plugin between runs."""

    def __init__(self, user_name: str):
        self.user_name = user_name
        self.ids: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        if name in self.ids:
            return self.ids[name]
        slug = mapping.department_slug(name)
        group = model.Group.get(slug)
        if group is None:
            group_dict = tk.get_action("organization_create")(
                {"user": self.user_name, "ignore_auth": True},
                {"name": slug, "title": name, "department_type": mapping.department_type_of(name)},
            )
            self.ids[name] = group_dict["id"]
        else:
            self.ids[name] = group.id
        return self.ids[name]


class AgencyExportHarvester(plugins.SingletonPlugin):
    """Agency catalog export (机构目录导出)."""

    plugins.implements(IHarvester)

    # IHarvester

    def info(self):
        return {
            "name": "shanghai_agency_export",
            "title": "机构目录导出 Agency catalog export",
            "description": "JSON / CSV / Excel catalog exports mapped onto the department schemas "
                           "by configuration. 由配置映射的 JSON / CSV / Excel 目录导出。",
            "form_config_interface": "Text",
        }

    def validate_config(self, config):
        try:
            parse_source_config(config)
        except ValueError as error:
            raise ValueError(str(error))
        return config

    def gather_stage(self, harvest_job):
        """:param harvest_job: the job; returns the ids of objects to import."""
        try:
            config = parse_source_config(harvest_job.source.config)
        except ValueError as error:
            return self._gather_failed(harvest_job, str(error))
        url = harvest_job.source.url.strip()
        limits = fetch_limits()
        downloaded = None
        try:
            path = fetching.local_path(url, limits)
            if path is None:
                path = downloaded = fetching.download(url, limits)
            site_user = tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"]
            with open(path, "rb") as stream:
                records_iter = readers.iter_records(
                    stream, config.get("format"), max_bytes=limits.max_bytes,
                    **{k: config[k] for k in ("header_row", "sheet") if k in config})
                return runner.gather(
                    harvest_job, candidates(records_iter, config["mapping"]),
                    complete=config["complete"], max_withdraw_share=config["max_withdraw_share"],
                    ensure_department=DepartmentDirectory(site_user),
                )
        except (fetching.SourceFetchError, readers.SourceFormatError) as error:
            model.Session.rollback()
            return self._gather_failed(harvest_job, f"{error.reason_zh} / {error.reason_en}")
        finally:
            if downloaded is not None:
                os.unlink(downloaded)

    def _gather_failed(self, harvest_job, message: str):
        from ckanext.shanghai.harvesters import records

        records.start_report(harvest_job.id, harvest_job.source.id)
        zh, _, en = message.partition(" / ")
        records.finish_report(harvest_job.id, "failed_closed", zh, en or zh)
        HarvestGatherError(message=message, job=harvest_job).save()
        model.Session.commit()
        return []

    def fetch_stage(self, harvest_object):
        # The export was read whole in the gather stage; the object already
        # holds the mapped record.
        return True

    def import_stage(self, harvest_object):
        site_user = tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"]
        return runner.import_object(harvest_object, CatalogWriter(site_user))
