"""Web views the portal adds: the CSV export of a harvest job's rejected records."""
from __future__ import annotations

from flask import Blueprint, Response, stream_with_context

import ckan.plugins.toolkit as tk

from ckanext.shanghai.harvesters import records

__all__ = ["shanghai_harvest"]

shanghai_harvest = Blueprint("shanghai_harvest", __name__)


@shanghai_harvest.route("/harvest/job/<job_id>/rejections.csv")
def rejections_csv(job_id: str):
    try:
        tk.check_access("shanghai_harvest_report", {}, {"id": job_id})
    except tk.NotAuthorized:
        return tk.abort(403, "无权查看该采集报告 / Not authorised to see this harvest report")
    if records.report_for_job(job_id) is None:
        return tk.abort(404, "没有该采集任务的报告 / No report for this harvest job")
    return Response(
        stream_with_context(records.rejections_csv(job_id)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="harvest-{job_id}-rejections.csv"'},
    )
