"""What a person sees when a backing service fails: a bilingual 503 that
says what happened, never the service's address or a traceback."""
from __future__ import annotations

import json
import logging

from flask import jsonify, request
from werkzeug.exceptions import InternalServerError

from ckan.lib.search.common import SearchError, SearchIndexError, SolrConnectionError

log = logging.getLogger(__name__)

SEARCH_UNAVAILABLE_ZH = "检索服务暂时不可用，数据未保存，请稍后再试"
SEARCH_UNAVAILABLE_EN = "The search service is unavailable; nothing was saved. Please try again later."


def search_unavailable(error: Exception):
    log.error("search service error on %s: %r", request.path, error)
    if request.path.startswith("/api/"):
        return jsonify({"success": False, "error": {
            "__type": "Search Unavailable", "message": f"{SEARCH_UNAVAILABLE_ZH} / {SEARCH_UNAVAILABLE_EN}",
        }}), 503
    body = (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>503</title></head>'
            f"<body><h1>{SEARCH_UNAVAILABLE_ZH}</h1><p lang=\"en\">{SEARCH_UNAVAILABLE_EN}</p></body></html>")
    return body, 503, {"Content-Type": "text/html; charset=utf-8"}


# CKAN's action API catches search failures itself and answers 409/500 with
# the exception text, which names the Solr URL; these are rewritten.
_SEARCH_FAILURES = {"Search Index Error", "Search Error", "Search Connection Error"}


def scrub_search_failure(response):
    if response.status_code not in (409, 500) or not request.path.startswith("/api/") \
            or not response.is_json:
        return response
    try:
        body = json.loads(response.get_data())
    except ValueError:
        return response
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or error.get("__type") not in _SEARCH_FAILURES:
        return response
    log.error("search service error on %s: %s", request.path, error.get("message"))
    body["error"] = {"__type": "Search Unavailable",
                     "message": f"{SEARCH_UNAVAILABLE_ZH} / {SEARCH_UNAVAILABLE_EN}"}
    response.set_data(json.dumps(body, ensure_ascii=False))
    response.status_code = 503
    return response


# CKAN's search page catches a Solr outage itself and aborts with a bare,
# English-only 500 carrying this text; it is answered like the others.
_SOLR_DOWN_TEXT = "Solr returned an error while searching."


def _internal_error_handler(app):
    earlier = (app.error_handler_spec.get(None, {}).get(500) or {}).get(InternalServerError)

    def handle(error):
        if _SOLR_DOWN_TEXT in str(getattr(error, "description", "") or ""):
            return search_unavailable(error)
        if earlier is not None:
            return earlier(error)
        return error

    return handle


def register(app) -> None:
    for error_class in (SearchIndexError, SearchError, SolrConnectionError):
        app.register_error_handler(error_class, search_unavailable)
    app.register_error_handler(InternalServerError, _internal_error_handler(app))
    app.after_request(scrub_search_failure)
