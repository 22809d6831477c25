"""Template helpers of the harvest pages."""
from __future__ import annotations

import ckan.plugins.toolkit as tk

__all__ = ["shanghai_job_report"]


def shanghai_job_report(job_id: str, rejections: int = 50) -> dict | None:
    """A harvest job's report and its first rejections and warnings, or None where the
    current user may not see it or the job has none."""
    try:
        return tk.get_action("shanghai_harvest_report")({}, {"id": job_id, "limit": rejections})
    except (tk.ObjectNotFound, tk.NotAuthorized):
        return None
