"""Which files may be uploaded as resources: data formats only, within the
size limit. Web pages, SVG images and programs are refused, by name and by
content: CKAN serves an upload from the portal's own address, so an HTML or
SVG file would run its script as the portal."""
from __future__ import annotations

import os
from typing import Any

import ckan.plugins.toolkit as tk

__all__ = ["ALLOWED_EXTENSIONS", "check_resource_upload"]

ALLOWED_EXTENSIONS = frozenset({
    "csv", "tsv", "txt", "json", "jsonl", "geojson", "xml", "rdf", "ttl", "jsonld",
    "xls", "xlsx", "ods", "pdf", "doc", "docx", "zip", "kml", "kmz", "gml", "shp", "parquet",
    "png", "jpg", "jpeg",
})
# Markup a browser would render as a page or run as script, whatever the file is called.
_ACTIVE_MARKUP = (b"<!doctype html", b"<html", b"<script", b"<svg", b"<iframe", b"<object", b"<embed",
                  b"<?xml-stylesheet", b"<body", b"<head", b"<meta", b"<a ", b"<img", b"<div")
_SNIFF_BYTES = 4096


def check_resource_upload(data_dict: dict[str, Any]) -> None:
    """Refuse the upload in ``data_dict`` (if any) that is not a data file
    or is too large; raises ``ValidationError`` on the ``upload`` field with
    a bilingual message."""
    upload = data_dict.get("upload")
    filename = getattr(upload, "filename", None)
    stream = getattr(upload, "stream", None)
    if not filename or stream is None:
        return
    extension = os.path.splitext(filename)[1].lower().lstrip(".")
    if extension not in ALLOWED_EXTENSIONS:
        shown = f".{extension}" if extension else "无扩展名 / no extension"
        allowed = " ".join(sorted(ALLOWED_EXTENSIONS))
        raise tk.ValidationError({"upload": [
            f"不接受该类型的文件（{shown}）；可上传：{allowed} / "
            f"Files of this type ({shown}) are not accepted; allowed: {allowed}"]})
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    head = stream.read(_SNIFF_BYTES)
    stream.seek(0)
    limit_mb = tk.config.get("ckan.max_resource_size")
    if size > limit_mb * 1024 * 1024:
        raise tk.ValidationError({"upload": [
            f"文件过大（{size / 1048576:.1f} MB），上限为 {limit_mb} MB / "
            f"The file is too large ({size / 1048576:.1f} MB); the limit is {limit_mb} MB"]})
    if isinstance(head, str):
        head = head.encode("utf-8", "replace")
    sniffed = head.lower().lstrip(b"\xef\xbb\xbf \t\r\n").replace(b"\x00", b"")
    if extension not in ("png", "jpg", "jpeg", "pdf", "zip", "xlsx", "xls", "docx", "doc", "ods", "kmz",
                         "shp", "parquet") and any(tag in sniffed for tag in _ACTIVE_MARKUP):
        raise tk.ValidationError({"upload": [
            "文件内容是网页或脚本，不是数据文件，已拒绝 / "
            "The file holds a web page or script, not data; refused"]})
