"""Auth functions of the portal's actions."""
from __future__ import annotations

import ckan.plugins.toolkit as tk
from ckanext.harvest.model import HarvestJob

__all__ = ["shanghai_harvest_report"]


def shanghai_harvest_report(context, data_dict):
    """Whoever may update the job's source (its department's editors and
    admins, sysadmins) may read its report, as with ckanext-harvest's jobs."""
    job = HarvestJob.get(data_dict.get("id"))
    if job is None:
        return {"success": False, "msg": "没有该采集任务 / No such harvest job"}
    try:
        tk.check_access("harvest_source_update", context, {"id": job.source_id})
    except tk.NotAuthorized:
        return {"success": False, "msg": "无权查看该采集报告 / Not authorised to see this harvest report"}
    return {"success": True}
