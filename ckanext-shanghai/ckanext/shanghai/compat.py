"""The one module that touches internals of packages the portal does not own.

Everything the portal replaces, wraps or relies on beneath a package's public
surface is listed in ``INTERNALS`` and used only through the functions here.
``check()`` runs when the portal's plugin loads (web app, commands, consumers):
it compares each package's installed version and each attribute's presence
and parameters with what this module was written against, and refuses to
start with a message naming the package and the attribute, in Chinese and
English, rather than let an upgrade break a page or a harvest silently.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable, Iterator

__all__ = [
    "INTERNALS",
    "CompatError",
    "Internal",
    "check",
    "collected_solr_adds",
    "harvest_index_hook",
    "count_solr_requests",
    "pinned_connection_class",
    "earlier_error_handler",
    "activity",
    "api_token_id",
    "authenticated_by_token",
    "datastore_fts_index_sql",
]


@dataclass(frozen=True)
class Internal:
    """An internal the portal depends on.

    :param package: the distribution that owns it (as pip names it)
    :param versions: the release prefix it was checked against (``"2.12"``
        accepts 2.12.x)
    :param target: ``module:attribute.path``
    :param parameters: the callable's parameter names, in order; None for a
        plain attribute (checked for presence only)
    :param why: what the portal does with it
    :param instance: for an attribute set on instances, the arguments that
        make one of the class before the last name in ``target``
    """

    package: str
    versions: str
    target: str
    parameters: tuple[str, ...] | None
    why: str
    instance: tuple[Any, ...] | None = None


INTERNALS: tuple[Internal, ...] = (
    Internal("ckan", "2.12", "ckan.lib.search.index:make_connection", ("decode_dates",),
             "replaced for the span of a batch: CKAN's indexer builds each document, the batch "
             "sends them in one Solr request (collected_solr_adds)"),
    Internal("ckan", "2.12", "ckan.lib.search.index:PackageSearchIndex.update_dict",
             ("self", "pkg_dict", "defer_commit"),
             "builds a batch's documents exactly as package_create would"),
    Internal("ckan", "2.12", "ckan.lib.plugins:plugin_validate",
             ("plugin", "context", "data_dict", "schema", "action"),
             "the batch writer validates each record by its schema as package_create does"),
    Internal("ckan", "2.12", "ckan.lib.dictization:table_dictize", ("obj", "context", "kw"),
             "the bulk dictizer builds package_show's dict from a few queries per batch"),
    Internal("ckan", "2.12", "ckan.lib.dictization.model_dictize:package_dictize",
             ("pkg", "context", "include_plugin_data"),
             "the bulk dictizer's fallback for a package in groups"),
    Internal("ckan", "2.12", "ckan.lib.dictization.model_dictize:resource_list_dictize",
             ("res_list", "context"), "the bulk dictizer's resources"),
    Internal("ckan", "2.12", "ckanext.activity.model:Activity.__init__",
             ("self", "user_id", "object_id", "activity_type", "data", "permission_labels"),
             "a batch of new packages gets its activities in one flush (activity)"),
    Internal("ckanext-harvest", "1.6", "ckanext.harvest.plugin:Harvest.before_dataset_index",
             ("self", "pkg_dict"),
             "replaced for the span of a batch by a hook that finds every document's harvest "
             "origin with one query (harvest_index_hook)"),
    Internal("pysolr", "3.11", "pysolr:Solr._send_request",
             ("self", "method", "path", "body", "headers", "files"),
             "wrapped to count Solr requests in the Server-Timing header (count_solr_requests)"),
    Internal("urllib3", "2.", "urllib3.connection:HTTPConnection._new_conn", ("self",),
             "a harvest download connects to the address that was checked (pinned_connection_class)"),
    Internal("urllib3", "2.", "urllib3.connection:HTTPConnection._dns_host", None,
             "the host name a connection resolves; pinned to the checked address",
             instance=("compat-check.invalid",)),
    Internal("ckan", "2.12", "ckan.lib.api_token:decode", ("encoded", "kwargs"),
             "a developer key's id (the jti of its API token), to count its rate limit and usage "
             "(api_token_id)"),
    Internal("ckan", "2.12", "ckanext.datastore.backend.postgres:_build_fts_indexes",
             ("data_dict", "sql_index_str_method", "fields"),
             "the DataStore loader gives a table built under another name the full-text indexes "
             "datastore_create would, with the same names (datastore_fts_index_sql)"),
    Internal("flask", "3.", "flask:Flask.error_handler_spec", None,
             "the bilingual 500 page keeps the handler registered before it (earlier_error_handler)",
             instance=("compat_check",)),
)


class CompatError(RuntimeError):
    """An installed package no longer matches what the portal relies on."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        zh = "；".join(p for p, _ in problems)
        en = "; ".join(p for _, p in problems)
        super().__init__(
            f"上海数据开放平台无法启动：{zh}。请安装经过验证的版本（requirements.txt），"
            f"或更新 ckanext/shanghai/compat.py。\n"
            f"The Shanghai data portal refuses to start: {en}. Install the checked versions "
            f"(requirements.txt), or update ckanext/shanghai/compat.py."
        )


def _resolve(internal: Internal) -> Any:
    module_name, _, path = internal.target.partition(":")
    value: Any = importlib.import_module(module_name)
    parts = path.split(".")
    for position, part in enumerate(parts):
        if internal.instance is not None and position == len(parts) - 1:
            # An attribute set in __init__: look at a fresh instance.
            value = value(*internal.instance)
        value = getattr(value, part)
    return value


def _problems_with(internal: Internal) -> list[tuple[str, str]]:
    try:
        installed = metadata.version(internal.package)
    except metadata.PackageNotFoundError:
        return [(f"未安装 {internal.package}", f"{internal.package} is not installed")]
    problems = []
    if not installed.startswith(internal.versions):
        problems.append((
            f"{internal.package} 的版本为 {installed}，需要 {internal.versions}x（{internal.target}）",
            f"{internal.package} is {installed}, {internal.versions}x expected ({internal.target})",
        ))
    try:
        value = _resolve(internal)
    except (ImportError, AttributeError) as error:
        return problems + [(f"{internal.package} 缺少 {internal.target}",
                            f"{internal.package} has no {internal.target} ({error})")]
    if internal.parameters is not None:
        try:
            names = tuple(inspect.signature(value).parameters)
        except (TypeError, ValueError):
            names = ()
        if names != internal.parameters:
            problems.append((
                f"{internal.package} 的 {internal.target} 参数已改变：{', '.join(names)}",
                f"{internal.package}'s {internal.target} takes ({', '.join(names)}), "
                f"({', '.join(internal.parameters)}) expected",
            ))
    return problems


def check(internals: tuple[Internal, ...] = INTERNALS) -> None:
    """Refuse to go on when an installed package differs from what the
    portal was written against.

    :raises CompatError: naming every package and attribute that differs.
    """
    problems = [problem for internal in internals for problem in _problems_with(internal)]
    if problems:
        raise CompatError(problems)


# --- the bulk index: CKAN's documents, sent in one request -------------------------


class _CollectingConnection:
    """Stands in for pysolr's connection inside CKAN's index_package: keeps
    the documents it is asked to add instead of sending them one by one."""

    def __init__(self, sink: list[dict[str, Any]], real: Callable[..., Any]):
        self.sink = sink
        self.real = real

    def add(self, docs, commit=False, **kwargs):
        self.sink.extend(docs)

    def delete(self, *args, **kwargs):
        # Deleted packages leave the index at once, as in CKAN.
        return self.real().delete(*args, **kwargs)


@contextlib.contextmanager
def collected_solr_adds(sink: list[dict[str, Any]]) -> Iterator[None]:
    """Within the block, CKAN's index_package builds its Solr documents as
    always (every before_dataset_index hook included) but puts them in
    ``sink``; the caller sends them in one request."""
    from ckan.lib.search import index as search_index

    real = search_index.make_connection
    search_index.make_connection = lambda *args, **kwargs: _CollectingConnection(sink, real)
    try:
        yield
    finally:
        search_index.make_connection = real


@contextlib.contextmanager
def harvest_index_hook(hook: Callable[[dict[str, Any]], dict[str, Any]]) -> Iterator[None]:
    """Within the block, ckanext-harvest's before_dataset_index is ``hook``
    (which must add what it adds: the bulk index looks the origins up for a
    whole batch at once). Nothing happens without the harvest plugin."""
    import ckan.plugins as plugins

    harvest_plugin = plugins.get_plugin("harvest") if plugins.plugin_loaded("harvest") else None
    if harvest_plugin is None:
        yield
        return
    harvest_plugin.before_dataset_index = hook
    try:
        yield
    finally:
        del harvest_plugin.before_dataset_index


# --- Server-Timing: Solr requests counted --------------------------------------------

_solr_counters: list[Callable[[float], None]] = []


def count_solr_requests(record: Callable[[float], None]) -> None:
    """Call ``record(seconds)`` after every Solr request this process sends
    (installed once per process)."""
    import time

    import pysolr

    if _solr_counters:
        _solr_counters[:] = [record]
        return
    _solr_counters.append(record)
    send = pysolr.Solr._send_request

    # Wrapped, so that check() still sees pysolr's own signature when plugins
    # load again in this process (a job worker's forked work horse does).
    @functools.wraps(send)
    def counted_send(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return send(self, *args, **kwargs)
        finally:
            for counter in _solr_counters:
                counter(time.perf_counter() - started)

    pysolr.Solr._send_request = counted_send


# --- harvest downloads: connect to the checked address ------------------------------


def pinned_connection_class(base: type, address: str, on_socket: Callable[[Any], None]) -> type:
    """A subclass of urllib3's connection class ``base`` that connects to
    ``address`` whatever the URL's host resolves to now (TLS still checks the
    certificate against the host name) and hands each new socket to
    ``on_socket``."""

    def _new_conn(self):
        self._dns_host = address
        sock = base._new_conn(self)
        on_socket(sock)
        return sock

    return type(f"Pinned{base.__name__}", (base,), {"_new_conn": _new_conn})


# --- error pages --------------------------------------------------------------------


def earlier_error_handler(app, code: int, error_class: type) -> Callable[..., Any] | None:
    """The handler ``app`` has for ``error_class`` under ``code`` (Flask
    offers no public way to read one back before replacing it)."""
    return (app.error_handler_spec.get(None, {}).get(code) or {}).get(error_class)


# --- activities of a batch -----------------------------------------------------------


def activity(user_id: str, package: dict[str, Any], kind: str, actor: str, labels: list[str]) -> Any:
    """The activity row activity_create stores for a package just written
    (``kind``: "new", "changed" or "deleted")."""
    from ckanext.activity.model import Activity

    return Activity(user_id, package["id"], f"{kind} package", {"package": package, "actor": actor}, labels)


# --- developer keys ------------------------------------------------------------------


def api_token_id(encoded: str) -> str | None:
    """The id (jti) of a CKAN API token, None for one that does not decode.
    The signature is checked; whether the token still exists is not."""
    from ckan.lib import api_token

    data = api_token.decode(encoded) if encoded else None
    return str(data["jti"]) if data and data.get("jti") else None


def authenticated_by_token() -> bool:
    """Whether CKAN identified this request's user by its API token header.
    CKAN sets ``g.login_via_auth_header`` before trying the token when there
    is no session, and when a token named the user otherwise: only with a
    user identified is the token known good."""
    from flask import g
    from ckan.common import current_user

    return bool(g.get("login_via_auth_header")) and bool(current_user.is_authenticated)


# --- the DataStore loader: CKAN's full-text indexes on a table built aside ------------


def datastore_fts_index_sql(resource_id: str, table: str,
                            fields: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """The CREATE INDEX statements datastore_create runs for a resource's
    full-text search (names, method and expressions as CKAN makes them for
    ``resource_id``), on ``table``: the resource's new table, built under
    another name and renamed to ``resource_id`` once filled.

    :param fields: the table's columns as ``{"id", "type"}`` (PostgreSQL types)
    :returns: each index's name and statement under the column it indexes,
        ``_full_text`` first, then the columns CKAN indexes (its
        ``ckan.datastore.default_fts_index_field_types``) in table order
    """
    from ckanext.datastore.backend import postgres

    template = "CREATE {unique} INDEX \"{name}\" ON " + postgres.identifier(table) + " USING {method}({fields})"

    def built(chosen: list[dict[str, Any]]) -> list[tuple[str, str]]:
        names, _not_indexed = postgres._build_fts_indexes({"resource_id": resource_id}, "{name}", chosen)
        statements, _not_indexed = postgres._build_fts_indexes({"resource_id": resource_id}, template, chosen)
        return list(zip(names, statements))

    # One field at a time: CKAN's list does not say which column each
    # statement is for, and it always begins with the _full_text one.
    indexes = {"_full_text": built([])[0]}
    for field in fields:
        for_field = built([field])
        if len(for_field) > 1:
            indexes[field["id"]] = for_field[1]
    return indexes
