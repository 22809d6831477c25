"""What a person sees when a backing service fails or a search query is
malformed: a bilingual answer (503 for Solr or PostgreSQL down, 400 for a
query Solr cannot parse) that says what happened, never the service's
address, its internals or a traceback."""
from __future__ import annotations

import html
import json
import logging
from typing import NamedTuple

import psycopg2
import pysolr
import sqlalchemy.exc
from flask import g, has_request_context, request
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.exceptions import InternalServerError

import ckan.model as model
from ckan.lib.search.common import SearchError, SearchIndexError, SearchQueryError, SolrConnectionError

from ckanext.shanghai import compat

log = logging.getLogger(__name__)


class Answer(NamedTuple):
    status: int
    type: str
    zh: str
    en: str

    @property
    def message(self) -> str:
        return f"{self.zh} / {self.en}"


SEARCH_UNAVAILABLE = Answer(503, "Search Unavailable", "检索服务暂时不可用，数据未保存，请稍后再试",
                            "The search service is unavailable; nothing was saved. Please try again later.")
DATABASE_UNAVAILABLE = Answer(503, "Database Unavailable", "数据库服务暂时不可用，请稍后再试",
                              "The database service is unavailable. Please try again later.")
# "Search Query Error" is the type CKAN's API gives its own refused queries.
INVALID_QUERY = Answer(400, "Search Query Error", "检索语句有误，请检查括号、引号和字段名后重试",
                       "The search query is not valid; check its brackets, quotes and field names, then try again.")


def _body(answer: Answer) -> tuple[str, str]:
    """The answer as the asker reads it: JSON for the API, a page otherwise."""
    if request.path.startswith("/api/"):
        return (json.dumps({"success": False, "error": {"__type": answer.type, "message": answer.message}},
                           ensure_ascii=False), "application/json;charset=utf-8")
    page = (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{answer.status}</title>'
            f'</head><body><h1>{html.escape(answer.zh)}</h1><p lang="en">{html.escape(answer.en)}</p>'
            "</body></html>")
    return page, "text/html; charset=utf-8"


def _respond(answer: Answer):
    body, content_type = _body(answer)
    return body, answer.status, {"Content-Type": content_type}


def _rewrite(response, answer: Answer):
    """Give ``response`` the answer's status and body, keeping its other
    headers (the session cookie among them)."""
    body, content_type = _body(answer)
    response.set_data(body)
    response.status_code = answer.status
    response.content_type = content_type
    return response


# --- Solr down ----------------------------------------------------------------------


def search_unavailable(error: Exception):
    log.error("search service error on %s: %r", request.path, error)
    return _respond(SEARCH_UNAVAILABLE)


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
    body["error"] = {"__type": SEARCH_UNAVAILABLE.type, "message": SEARCH_UNAVAILABLE.message}
    response.set_data(json.dumps(body, ensure_ascii=False))
    response.status_code = 503
    return response


# CKAN's search page catches a Solr outage itself and aborts with a bare,
# English-only 500 carrying this text; it is answered like the others.
_SOLR_DOWN_TEXT = "Solr returned an error while searching."


def _internal_error_handler(app):
    earlier = compat.earlier_error_handler(app, 500, InternalServerError)

    def handle(error):
        if _SOLR_DOWN_TEXT in str(getattr(error, "description", "") or ""):
            return search_unavailable(error)
        if earlier is not None:
            return earlier(error)
        return error

    return handle


# --- a malformed search query --------------------------------------------------------


class InvalidSearchQuery(SearchQueryError):
    """A search query Solr or CKAN refused as written: the asker's to fix."""

    def __init__(self):
        super().__init__(INVALID_QUERY.message)


def query_at_fault(error: SearchError) -> bool:
    """Whether a failed search failed on its query rather than on Solr.

    CKAN raises SearchError for both: Solr answering 400 (a syntax error, an
    unknown field or sort) and CKAN's own checks before asking Solr (local
    parameters, magic fields) are the query's; any other Solr answer is a
    service failure."""
    solr = error.__cause__ or error.__context__
    if isinstance(solr, pysolr.SolrError):
        return "(HTTP 400)" in str(solr)
    return solr is None


def refuse_query(error: SearchError) -> InvalidSearchQuery:
    """The exception package_search raises for a query at fault. The refusal
    is also kept on the request: CKAN's organization page swallows search
    errors into a page of its own, which answer_marked_failure replaces."""
    log.info("search query refused: %s", error)
    if has_request_context():
        g.shanghai_refused_query = True
    return InvalidSearchQuery()


def invalid_query(error: InvalidSearchQuery):
    return _respond(INVALID_QUERY)


# --- PostgreSQL down -----------------------------------------------------------------

# Connection failures, not a statement's own errors (an IntegrityError is a
# bug, and stays CKAN's 500).
_DATABASE_DOWN = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError,
                  psycopg2.OperationalError, psycopg2.InterfaceError)


def database_down(error: BaseException | None) -> bool:
    """Whether ``error``, or an exception it was raised from, is the
    database connection failing."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, _DATABASE_DOWN) or getattr(error, "connection_invalidated", False):
            return True
        error = error.__cause__ or error.__context__
    return False


def _discard_session() -> None:
    """Drop the request's session and its broken connection, so the next
    request checks out a fresh one once PostgreSQL is back."""
    try:
        model.Session.rollback()
    except sqlalchemy.exc.SQLAlchemyError:
        pass
    model.Session.remove()


def database_unavailable(error: Exception):
    log.error("database error on %s: %r", request.path, error)
    _discard_session()
    return _respond(DATABASE_UNAVAILABLE)


def _note_database_failure(context) -> None:
    """Keep on the request that the database failed: CKAN's action API and
    error page catch the exception themselves and answer a plain 500."""
    # A failed pre-ping is a stale pooled connection SQLAlchemy replaces.
    if context.is_pre_ping or not has_request_context():
        return
    if context.is_disconnect or database_down(context.original_exception):
        g.shanghai_database_failed = True


# --- marked failures -----------------------------------------------------------------


def answer_marked_failure(response):
    """Answer a request that hit a failure CKAN caught itself: the database
    failing (any 5xx) or a refused search query (whatever the view made)."""
    if g.get("shanghai_database_failed") and response.status_code >= 500:
        log.error("database error on %s (answered %s by CKAN)", request.path, response.status_code)
        _discard_session()
        return _rewrite(response, DATABASE_UNAVAILABLE)
    if g.get("shanghai_refused_query"):
        return _rewrite(response, INVALID_QUERY)
    return response


_listening = False


def register(app) -> None:
    global _listening
    for error_class in (SearchIndexError, SearchError, SolrConnectionError):
        app.register_error_handler(error_class, search_unavailable)
    # More specific than SearchError: a refused query no view caught.
    app.register_error_handler(InvalidSearchQuery, invalid_query)
    for error_class in _DATABASE_DOWN:
        app.register_error_handler(error_class, database_unavailable)
    app.register_error_handler(InternalServerError, _internal_error_handler(app))
    app.after_request(scrub_search_failure)
    app.after_request(answer_marked_failure)
    if not _listening:  # every engine, the DataStore's too; once per process
        event.listen(Engine, "handle_error", _note_database_failure)
        _listening = True
