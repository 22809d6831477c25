"""Actions of the harvest machinery: a harvest job's report."""
from __future__ import annotations

import ckan.plugins.toolkit as tk

from ckanext.shanghai.harvesters import records

__all__ = ["shanghai_harvest_report"]


@tk.side_effect_free
def shanghai_harvest_report(context, data_dict):
    """The report of a harvest job: counts (added, updated, unchanged,
    withdrawn, rejected), its outcome with a reason when it failed closed,
    and every rejected record with its identity, field and reason in Chinese
    and English.

    :param id: the harvest job id
    :type id: string
    :param limit: at most this many rejections (optional, default all)
    :type limit: int
    :param offset: skip this many rejections (optional)
    :type offset: int
    :returns: ``{"report": {...}, "rejections": [...]}``
    :rtype: dict
    """
    job_id = tk.get_or_bust(data_dict, "id")
    tk.check_access("shanghai_harvest_report", context, data_dict)
    report = records.report_for_job(job_id)
    if report is None:
        raise tk.ObjectNotFound("没有该采集任务的报告 / No report for this harvest job")
    limit = data_dict.get("limit")
    return {
        "report": report,
        "rejections": records.rejections_for_job(
            job_id, limit=int(limit) if limit is not None else None, offset=int(data_dict.get("offset") or 0)),
    }
