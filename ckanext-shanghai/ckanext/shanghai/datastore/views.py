"""Pages of a DataStore table: its exports (streamed downloads in CSV,
JSON, GeoJSON and XLSX) and the form where a department declares the
coordinate system of a table with coordinates."""
from __future__ import annotations

import logging

from flask import Blueprint, Response, request, stream_with_context

import ckan.plugins.toolkit as tk

from ckanext.shanghai.datastore import coordinates, exports, geo

log = logging.getLogger(__name__)

__all__ = ["shanghai_tables"]

shanghai_tables = Blueprint("shanghai_tables", __name__)


def _context() -> dict:
    return {"user": tk.current_user.name if tk.current_user and tk.current_user.is_authenticated else ""}


def _resource(package_id: str, resource_id: str) -> dict:
    """The resource, when the caller may read its table rows (the same
    check as datastore_search, so conditional products stay gated)."""
    context = _context()
    try:
        tk.check_access("datastore_search", dict(context), {"resource_id": resource_id})
        resource = tk.get_action("resource_show")(dict(context), {"id": resource_id})
    except tk.ObjectNotFound:
        tk.abort(404, tk._("Resource not found"))
    except tk.NotAuthorized:
        tk.abort(403, tk._("Not authorized to see this page"))
    package = tk.get_action("package_show")(dict(context), {"id": package_id})
    if resource["package_id"] != package["id"]:
        tk.abort(404, tk._("Resource not found"))
    if not resource.get("datastore_active"):
        tk.abort(404, "该资源没有导入数据库的表格 / This resource has no table in the DataStore")
    return resource


def _bad_request(error: tk.ValidationError) -> Response:
    text = "; ".join(message for messages in error.error_dict.values() for message in messages)
    return Response(text + "\n", status=400, mimetype="text/plain")


@shanghai_tables.route("/dataset/<id>/resource/<resource_id>/export/<fmt>")
def export(id: str, resource_id: str, fmt: str):
    if fmt not in exports.FORMATS:
        tk.abort(404, f"未知的导出格式 / Unknown export format: {fmt}")
    resource = _resource(id, resource_id)
    encoding = (request.args.get("encoding") or "utf-8").lower()
    if encoding not in ("utf-8", "gbk"):
        return Response("encoding 须为 utf-8 或 gbk / encoding must be utf-8 or gbk\n", status=400,
                        mimetype="text/plain")
    try:
        crs = geo.target_crs(request.args.get("crs"))
        chunks = exports.export_chunks(resource, fmt, crs=crs, encoding=encoding)
    except tk.ValidationError as error:
        return _bad_request(error)
    try:
        from ckanext.shanghai.portal import downloads

        # The map on the product's page fetches its points here: not a download.
        if not request.args.get("map"):
            downloads.record_download(resource["package_id"], resource["id"])
    except Exception:  # counting must never break a download
        log.exception("could not count an export of %s", resource_id)
    media_type = exports.MEDIA_TYPES[fmt]
    if fmt == "csv":
        media_type += "; charset=" + ("GB18030" if encoding == "gbk" else "utf-8")
    name = resource.get("name") or resource["id"]
    return Response(stream_with_context(chunks), content_type=media_type,
                    headers={"Content-Disposition": exports.content_disposition(name, fmt)})


@shanghai_tables.route("/dataset/<id>/resource/<resource_id>/coordinate-crs", methods=["POST"])
def declare_crs(id: str, resource_id: str):
    """A department editor declares (or confirms) the table's coordinate system."""
    value = (request.form.get("crs") or "").strip().lower()
    if value not in coordinates.CRS:
        tk.abort(400, "请选择 WGS-84、GCJ-02 或 BD-09 / Choose WGS-84, GCJ-02 or BD-09")
    try:
        tk.get_action("resource_patch")(_context(), {"id": resource_id, geo.CRS_FIELD: value})
    except tk.NotAuthorized:
        tk.abort(403, tk._("Not authorized to see this page"))
    except tk.ObjectNotFound:
        tk.abort(404, tk._("Resource not found"))
    return tk.redirect_to(f"/dataset/{id}/resource/{resource_id}")
