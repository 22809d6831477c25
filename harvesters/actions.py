"""Actions of the harvest machinery: a harvest job's report."""
from __future__ import annotations

import ckan.plugins.toolkit as tk

from ckanext.shanghai.harvesters import records

__all__ = ["shanghai_harvest_report"]


@tk.side_effect_free
def shanghai_harvest_report(context, data_dict):
    """The report of a harvest job: counts (read, added, updated, unchanged,
    withdrawn, rejected, warnings), its outcome with the reason when it
    failed closed (``message_code``, ``message_zh``, ``message_en``), every
    rejected record and every warning about a record that was taken, each
    as the message it was raised as: ``identity``, ``position`` (1-based
    place in the source), ``code`` (stable: ``duplicate``,
    ``conflicting-duplicate``, ``bad-record``, ``bad-number``,
    ``failed-validation`` ...), ``field``, ``value`` (the raw value),
    ``reason_zh`` and ``reason_en``.

    :param id: the harvest job id
    :type id: string
    :param limit: at most this many rejections, and this many warnings
        (optional, default all)
    :type limit: int
    :param offset: skip this many rejections, and this many warnings (optional)
    :type offset: int
    :returns: ``{"report": {...}, "rejections": [...], "warnings": [...]}``
    :rtype: dict
    """
    job_id = tk.get_or_bust(data_dict, "id")
    tk.check_access("shanghai_harvest_report", context, data_dict)
    report = records.report_for_job(job_id)
    if report is None:
        raise tk.ObjectNotFound("没有该采集任务的报告 / No report for this harvest job")
    limit = data_dict.get("limit")
    page = {"limit": int(limit) if limit is not None else None, "offset": int(data_dict.get("offset") or 0)}
    return {
        "report": report,
        "rejections": records.rejections_for_job(job_id, kind=records.REJECTION, **page),
        "warnings": records.rejections_for_job(job_id, kind=records.WARNING, **page),
    }
