"""Web views the portal adds: the CSV export of a harvest job's rejected
records, and the dry run of a source's mapping its editors see before a run."""
from __future__ import annotations

from flask import Blueprint, Response, stream_with_context

import ckan.plugins.toolkit as tk

from ckanext.shanghai.harvesters import pipeline, records
from ckanext.shanghai.messages import MessageError

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


@shanghai_harvest.route("/harvest/<source_id>/mapping-check")
def mapping_check(source_id: str):
    """What the source's next harvest would do, read in full and written
    nowhere (as ``ckan shanghai mapping-check``): for those who may edit
    the source (its department's editors and admins, sysadmins)."""
    from ckanext.harvest import queue as harvest_queue
    from ckanext.harvest.model import HarvestSource

    context = {"user": tk.current_user.name if tk.current_user else ""}
    try:
        source_dict = tk.get_action("harvest_source_show")(context, {"id": source_id})
        tk.check_access("harvest_source_update", context, {"id": source_dict["id"]})
    except tk.ObjectNotFound:
        return tk.abort(404, "没有该采集源 / No such harvest source")
    except tk.NotAuthorized:
        return tk.abort(403, "无权预检该采集源 / Not authorised to check this harvest source")
    source = HarvestSource.get(source_dict["id"])
    harvester = harvest_queue.get_harvester(source.type)
    check, problem = None, None
    if not isinstance(harvester, pipeline.MappedSourceHarvester):
        return tk.abort(400, "该类采集源没有映射预检 / This kind of source has no mapping check")
    try:
        check = pipeline.preview_source(harvester, source).as_dict()
    except MessageError as error:
        problem = getattr(error, "problems", None) or [error.message]
    return tk.render("source/mapping_check.html", {
        "harvest_source": source_dict, "check": check, "problems": problem,
        "has_run": bool(source_dict.get("status", {}).get("job_count"))})
