"""Pull for agencies that cannot push: a harvest source kind whose URL is a
JSON or CSV endpoint of current observations, polled every ``poll_seconds``
(at least 10) and applied to a real-time product as one push (keyed upsert,
out-of-order safe, a bad batch refused whole), under the harvesters'
download limits and SSRF rules (files.fetching).

A harvest job of such a source runs one poll (so a source can be tried from
its page or with ``harvester run-test``); ``ckan shanghai realtime-pull``
is the long-running poller that polls every active pull source on its own
interval. A failed poll is a gather error on a job of the source: one job
per outage, not one per poll."""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path
from typing import Any

import ckan.model as model
import ckan.plugins as plugins
import ckan.plugins.toolkit as tk
from ckanext.harvest.interfaces import IHarvester
from ckanext.harvest.model import HarvestGatherError, HarvestJob, HarvestSource

from ckanext.shanghai.files import fetching, readers
from ckanext.shanghai.harvesters.source_config import SourceConfigError
from ckanext.shanghai.messages import Message, MessageError

log = logging.getLogger(__name__)

__all__ = ["SOURCE_TYPE", "MIN_POLL_SECONDS", "MAX_ERRORS_PER_OUTAGE", "PullError", "parse_config", "read_rows",
           "poll", "RealtimePullHarvester", "Poller", "run_poller"]

SOURCE_TYPE = "shanghai_realtime_pull"
MIN_POLL_SECONDS = 10
# A long outage records its first errors, then only counts them in the log.
MAX_ERRORS_PER_OUTAGE = 100
_FORMATS = ("json", "csv")


class PullError(MessageError):
    """A poll that applied nothing, and why."""


def parse_config(config_text: str | None) -> dict[str, Any]:
    """The source's configuration: ``resource_id`` (the real-time product's
    table), ``poll_seconds`` (>= 10), ``format`` (json or csv; default: told
    from the bytes) and, for JSON, ``records`` (the key of the record list
    in a top-level object, e.g. ``data``; default: the answer is the list).
    Raises SourceConfigError (zh/en)."""
    try:
        config = json.loads(config_text or "{}")
    except ValueError:
        raise SourceConfigError("配置不是有效的 JSON", "The configuration is not valid JSON")
    if not isinstance(config, dict):
        raise SourceConfigError("配置应为 JSON 对象", "The configuration must be a JSON object")
    unknown = sorted(set(config) - {"resource_id", "poll_seconds", "format", "records"})
    if unknown:
        raise SourceConfigError(f"未知的配置项：{', '.join(unknown)}", f"Unknown settings: {', '.join(unknown)}")
    if not isinstance(config.get("resource_id"), str) or not config["resource_id"].strip():
        raise SourceConfigError("请用 resource_id 指明要更新的实时数据产品",
                                "Name the real-time product to update with resource_id")
    seconds = config.get("poll_seconds", 60)
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < MIN_POLL_SECONDS:
        raise SourceConfigError(f"poll_seconds 应为不小于 {MIN_POLL_SECONDS} 的整数（秒）",
                                f"poll_seconds must be a whole number of seconds, at least {MIN_POLL_SECONDS}")
    fmt = config.get("format")
    if fmt is not None and fmt not in _FORMATS:
        raise SourceConfigError("format 应为 json 或 csv", "format must be json or csv")
    records = config.get("records")
    if records is not None and (not isinstance(records, str) or not records.strip() or fmt == "csv"):
        raise SourceConfigError("records 应为 JSON 对象中记录列表所在的键名（仅用于 JSON）",
                                "records must be the key of the record list in a JSON object (JSON only)")
    return {"resource_id": config["resource_id"].strip(), "poll_seconds": seconds, "format": fmt,
            "records": records}


def read_rows(path: Path, config: dict[str, Any], max_bytes: int) -> list[dict]:
    """The records of a downloaded answer; an unreadable answer or record
    refuses the whole poll (PullError). Table cells (CSV) are text, an
    empty cell no value; the push converts text to the table's types."""
    prefix = f"{config['records']}.item" if config.get("records") else "item"
    rows = []
    with path.open("rb") as handle:
        try:
            fmt = config.get("format") or ("json" if config.get("records") else readers.sniff_format(handle.read(65536)))
            handle.seek(0)
            for item in readers.iter_records(handle, fmt, max_bytes=max_bytes, json_prefix=prefix):
                if isinstance(item, readers.BadRecord):
                    raise PullError(item.message)
                rows.append({key: (None if value == "" else value) for key, value in item.items()}
                            if fmt not in ("json", "jsonl") else item)
        except readers.SourceFormatError as error:
            raise PullError(error.message)
    if not rows:
        raise PullError(Message("empty-answer", "接口没有返回任何记录", "The endpoint returned no records"))
    return rows


def _site_context() -> dict:
    return {"user": tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"], "ignore_auth": True}


def _product_of(source: HarvestSource, config: dict[str, Any]) -> dict:
    """The product the source updates; it must belong to the source's
    department (a source cannot write into another department's feed)."""
    product = tk.get_action("shanghai_realtime_product_show")(dict(_site_context()), {"id": config["resource_id"]})
    # A harvest source is a dataset of its own: its department is that dataset's.
    owner = model.Package.get(source.id)
    if owner is None or product.get("organization_id") != owner.owner_org:
        raise PullError(Message("wrong-department", "该实时数据产品不属于本采集源所在的部门",
                                "The real-time product does not belong to this source's department"))
    return product


def poll(source: HarvestSource) -> dict:
    """One poll: download the source's URL under the harvest limits (SSRF
    rules included), read its rows and push them to the product. Returns
    the push's counts; raises PullError with the reason."""
    config = parse_config(source.config)
    try:
        product = _product_of(source, config)
    except tk.ObjectNotFound:
        raise PullError(Message("no-product", f"没有实时数据产品 {config['resource_id']}",
                                f"No real-time product {config['resource_id']}"))
    limits = fetching.configured_limits().for_pages()
    try:
        path = fetching.download(source.url.strip(), limits)
    except fetching.SourceFetchError as error:
        raise PullError(error.message)
    try:
        rows = read_rows(path, config, limits.max_bytes)
    finally:
        os.unlink(path)
    try:
        return tk.get_action("shanghai_realtime_push")(_site_context(), {"id": product["resource_id"],
                                                                          "records": rows})
    except tk.ValidationError as error:
        problems = error.error_dict.get("records") or []
        first = problems[0] if problems and isinstance(problems[0], dict) else {}
        raise PullError(Message(
            "batch-refused", f"接口返回的数据被拒绝，未写入任何记录：{first.get('reason_zh') or error.error_dict}",
            f"The endpoint's rows were refused, nothing was written: {first.get('reason_en') or error.error_dict}",
            field=first.get("field"), value=first.get("value")))


class RealtimePullHarvester(plugins.SingletonPlugin):
    """Real-time pull (实时数据拉取，JSON/CSV 接口)."""

    plugins.implements(IHarvester)

    # IHarvester

    def info(self):
        return {
            "name": SOURCE_TYPE,
            "title": "实时数据拉取 Real-time pull (JSON/CSV)",
            "description": "Polls a JSON or CSV endpoint every N seconds (N >= 10) and applies the rows to a "
                           "real-time product as a push. 每 N 秒（N ≥ 10）拉取 JSON 或 CSV 接口，按推送写入实时数据产品。",
            "form_config_interface": "Text",
        }

    def validate_config(self, config):
        parsed = parse_config(config)
        try:
            tk.get_action("shanghai_realtime_product_show")(dict(_site_context()), {"id": parsed["resource_id"]})
        except tk.ObjectNotFound:
            raise SourceConfigError(f"没有实时数据产品 {parsed['resource_id']}",
                                    f"No real-time product {parsed['resource_id']}")
        return config

    def gather_stage(self, harvest_job):
        """One poll; the job has no objects (the rows go to the product's table)."""
        try:
            result = poll(harvest_job.source)
            log.info("realtime pull %s: %s", harvest_job.source.id, result)
        except (PullError, SourceConfigError) as error:
            HarvestGatherError(message=str(error), job=harvest_job).save()
        return []

    def fetch_stage(self, harvest_object):
        return True

    def import_stage(self, harvest_object):
        return True


class Poller:
    """Polls every active pull source on a fixed grid of its interval from
    the source's creation (a slow poll does not shift the next ones). A
    failure opens an outage job (finished, with the failures as its gather
    errors) that the next failures of the same outage join."""

    def __init__(self):
        self.last_slot: dict[str, int] = {}
        self.outage: dict[str, tuple[str, int]] = {}

    def due(self, now: dt.datetime) -> list[HarvestSource]:
        sources = model.Session.query(HarvestSource).filter(HarvestSource.active.is_(True),
                                                            HarvestSource.type == SOURCE_TYPE).all()
        due = []
        for source in sources:
            try:
                seconds = parse_config(source.config)["poll_seconds"]
            except SourceConfigError:
                continue
            slot = int((now - source.created).total_seconds() // seconds)
            if self.last_slot.get(source.id) != slot:
                self.last_slot[source.id] = slot
                due.append(source)
        return due

    def poll_source(self, source: HarvestSource) -> dict | None:
        try:
            result = poll(source)
        except (PullError, SourceConfigError) as error:
            self._record_failure(source, str(error))
            return None
        self.outage.pop(source.id, None)
        return result

    def _record_failure(self, source: HarvestSource, text: str) -> None:
        log.warning("realtime pull %s failed: %s", source.id, text)
        job_id, errors = self.outage.get(source.id, (None, 0))
        job = model.Session.get(HarvestJob, job_id) if job_id else None
        if job is None:
            now = dt.datetime.utcnow()
            job = HarvestJob(source=source, status="Finished", gather_started=now, gather_finished=now,
                             finished=now)
            job.save()
            errors = 0
        if errors < MAX_ERRORS_PER_OUTAGE:
            HarvestGatherError(message=text, job=job).save()
        self.outage[source.id] = (job.id, errors + 1)

    def tick(self, now: dt.datetime | None = None) -> list[dict | None]:
        try:
            return [self.poll_source(source) for source in self.due(now or dt.datetime.utcnow())]
        finally:
            model.Session.remove()


def run_poller() -> None:
    """Poll until SIGTERM or SIGINT (a round each second; each source is
    polled when its interval's slot comes)."""
    from ckanext.shanghai.harvesters.scheduler import run_every

    run_every(1, Poller().tick, "realtime pull poller")
