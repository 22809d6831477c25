"""Actions of the harvest machinery: a harvest job's report, and the stock
job stats made to give the report's counts (one answer to "how did the job
go", wherever it is asked)."""
from __future__ import annotations

import ckan.plugins.toolkit as tk

from ckanext.shanghai.harvesters import records

__all__ = ["shanghai_harvest_report", "harvest_job_show", "harvest_job_list",
           "harvest_source_show_status"]


@tk.side_effect_free
def shanghai_harvest_report(context, data_dict):
    """The report of a harvest job: counts (read, added, updated, unchanged,
    withdrawn, rejected, warnings; ``flagged``: records taken with quality
    flags, ``flags``: flags by code), its outcome with the reason when it
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


# -- the stock job stats ----------------------------------------------------
#
# ckanext-harvest counts a job from its harvest objects; the portal's gather
# makes objects only for records to write (a rejected or unchanged record has
# none), so its stats would say "errored: 0" where the report says
# "rejected: 580". Where a job has a portal report, its stats are the
# report's counts instead (records.stock_stats).


def _with_report_stats(job: dict | None) -> dict | None:
    if isinstance(job, dict) and "stats" in job and job.get("id"):
        report = records.report_for_job(job["id"])
        if report is not None:
            job["stats"] = records.stock_stats(report)
    return job


@tk.chained_action
@tk.side_effect_free
def harvest_job_show(up_func, context, data_dict):
    """ckanext-harvest's ``harvest_job_show``; ``stats`` are the counts of
    the job's report (added, updated, not modified, errored = rejected,
    deleted = withdrawn) when the portal's harvesters ran it."""
    return _with_report_stats(up_func(context, data_dict))


@tk.chained_action
@tk.side_effect_free
def harvest_job_list(up_func, context, data_dict):
    """ckanext-harvest's ``harvest_job_list``, each job's ``stats`` from its report."""
    return [_with_report_stats(job) for job in up_func(context, data_dict)]


@tk.chained_action
@tk.side_effect_free
def harvest_source_show_status(up_func, context, data_dict):
    """ckanext-harvest's ``harvest_source_show_status``, the last job's
    ``stats`` from its report."""
    status = up_func(context, data_dict)
    if isinstance(status, dict):
        _with_report_stats(status.get("last_job"))
    return status
