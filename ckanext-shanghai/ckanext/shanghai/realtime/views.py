"""The plain HTTP side of real-time products: a JSON POST of a batch with
the push key in a header (``X-Push-Key``), the address of a product's
Server-Sent Events stream (a 307 to the stream server, ``streams``, with
a ticket; it resumes from ``Last-Event-ID`` without loss), and the
latest table as GeoJSON when it has coordinates (for a map of the keys)."""
from __future__ import annotations

import json
import urllib.parse

from flask import Blueprint, Response, redirect, request, stream_with_context

import ckan.plugins.toolkit as tk
from ckan.common import current_user

from ckanext.shanghai.datastore import coordinates, exports, geo
from ckanext.shanghai.realtime import auth, store, tickets

__all__ = ["shanghai_realtime"]

shanghai_realtime = Blueprint("shanghai_realtime", __name__)

KEY_HEADER = "X-Push-Key"


def _json(body: dict, status: int) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, default=str), status=status,
                    mimetype="application/json")


def _problem(status: int, code: str, zh: str, en: str) -> Response:
    return _json({"success": False, "error": {"code": code, "reason_zh": zh, "reason_en": en,
                                              "message": f"{zh} / {en}"}}, status)


def _user_context() -> dict:
    return {"user": current_user.name, "auth_user_obj": current_user}


@shanghai_realtime.route("/api/realtime/<id>/push", methods=["POST"])
def push(id):
    """One batch: ``{"records": [...]}`` (or the list itself)."""
    product = store.get_product(id)
    if product is None:
        return _problem(404, "not-found", "没有这个实时数据产品", "No such real-time data product")
    key = request.headers.get(KEY_HEADER)
    if key:
        row = store.find_push_key(key.strip())
        if row is None:
            return _problem(401, "bad-push-key", "推送密钥无效或已撤销", "The push key is not valid or was revoked")
        context = {"user": "", "ignore_auth": False, "shanghai_realtime_key": row}
    elif current_user.is_authenticated:
        context = _user_context()
    else:
        return _problem(401, "no-push-key", f"请在请求头 {KEY_HEADER} 中提供推送密钥",
                        f"Send the push key in the {KEY_HEADER} header")
    try:
        body = json.loads(request.get_data(cache=False) or b"null")
    except ValueError:
        return _problem(400, "bad-json", "请求体不是有效的 JSON", "The body is not valid JSON")
    records = body.get("records") if isinstance(body, dict) else body
    try:
        result = tk.get_action("shanghai_realtime_push")(context, {"id": product["resource_id"], "records": records})
    except tk.ValidationError as error:
        return _json({"success": False, "error": error.error_dict}, 400)
    except tk.NotAuthorized as error:
        return _problem(403, "not-authorized", "没有推送到这个数据产品的权限",
                        f"Not authorized to push to this product ({error})")
    return _json({"success": True, "result": result}, 200)


def _last_event_id() -> int | None:
    value = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
    if value in (None, ""):
        return None
    try:
        return max(int(value), 0)
    except ValueError:
        return None


@shanghai_realtime.route("/api/realtime/<id>/stream")
def stream(id):
    """Server-Sent Events of the product, one ``observation`` event per
    accepted observation, numbered by its history row: a 307 to the stream
    server (``ckanext.shanghai.realtime.stream_url``) with a 30-second
    ticket naming the product and the signed-in user, so that no web
    worker is held by an open stream. ``Last-Event-ID`` (or
    ``?last_event_id=``) is passed on: the stream resumes exactly after it;
    without it the stream starts from now."""
    product = store.get_product(id)
    if product is None:
        return _problem(404, "not-found", "没有这个实时数据产品", "No such real-time data product")
    if not auth.may_read(_user_context(), product):
        return _problem(403, "not-authorized", "没有权限订阅这个数据产品，有条件开放的产品请先申请",
                        "Not authorized to follow this product; apply for a conditional product")
    resource_id = product["resource_id"]
    query = {"ticket": tickets.issue(tk.config.get("SECRET_KEY"), resource_id,
                                     current_user.name if current_user.is_authenticated else None)}
    last = _last_event_id()
    if last is not None:
        query["last_event_id"] = str(last)
    base = tk.config.get("ckanext.shanghai.realtime.stream_url").rstrip("/")
    target = f"{base}/api/realtime/{urllib.parse.quote(resource_id)}/stream?{urllib.parse.urlencode(query)}"
    response = redirect(target, code=307)
    response.headers["Cache-Control"] = "no-store"
    return response


@shanghai_realtime.route("/api/realtime/<id>/latest.geojson")
def latest_geojson(id):
    """The product's latest table as a GeoJSON FeatureCollection, one Point
    per key, in WGS-84 when the department declared the table's coordinate
    system (``crs=gcj02|bd09`` asks for another); 400 when the table has no
    coordinates."""
    product = store.get_product(id)
    if product is None:
        return _problem(404, "not-found", "没有这个实时数据产品", "No such real-time data product")
    if not auth.may_read(_user_context(), product):
        return _problem(403, "not-authorized", "没有权限读取这个数据产品的数据，有条件开放的产品请先申请",
                        "Not authorized to read this product's data; apply for a conditional product")
    columns = store.coordinate_columns(product["resource_id"])
    if not columns:
        return _problem(400, "no-coordinates", "该表没有坐标列（或还没有数据），不能生成 GeoJSON",
                        "This table has no coordinate columns (or no rows yet) to map")
    resource = tk.get_action("resource_show")({"ignore_auth": True}, {"id": product["resource_id"]})
    asked = request.args.get("crs") or ""
    target = asked.strip().lower().replace("-", "") or None
    if target is not None and target not in coordinates.CRS:
        return _problem(400, "bad-crs", f"未知的坐标系「{asked}」，可选 wgs84、gcj02、bd09",
                        f"Unknown coordinate system {asked!r}: use wgs84, gcj02 or bd09")
    declared = geo.declared_crs(resource)
    if target is None and declared is not None:
        target = "wgs84"
    if target is not None and declared is None:
        return _problem(400, "no-declared-crs", "提供部门尚未声明该表的坐标系，不能转换",
                        "The department has not declared this table's coordinate system, so it cannot be converted")
    names, rows = exports.table_rows(product["resource_id"])
    if target is not None and target != declared:
        rows = map(geo.converter(columns, declared, target), rows)
    return Response(stream_with_context(exports.geojson_chunks(names, rows, columns, target)),
                    mimetype="application/geo+json", headers={"Cache-Control": "no-cache"})

