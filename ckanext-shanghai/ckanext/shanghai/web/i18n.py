"""CKAN's JavaScript translations for the page's language.

CKAN's scripts ask ``/api/i18n/<html lang>``: the BCP-47 tag of the page
(``zh-Hans-CN``), which CKAN's own view refuses with 400 because it knows
only the POSIX name (``zh_Hans_CN``); and CKAN builds the translation files
only in ``ckan run``, never under gunicorn. These routes answer every
spelling of an offered locale with its translations, built on first use."""
from __future__ import annotations

import fcntl
import json
import logging
import os

from flask import Response

import ckan.plugins.toolkit as tk
from ckan.lib import i18n as ckan_i18n

log = logging.getLogger(__name__)

__all__ = ["register", "spellings", "translations"]

# Static routes outrank CKAN's /api/i18n/<lang>; one per spelling.
_LOCALES = ("zh_Hans_CN", "en")


def spellings(locale: str) -> set[str]:
    """Every way a page or a script writes ``locale``: POSIX, BCP-47, and
    the half-converted form some of CKAN's scripts produce."""
    bcp47 = locale.replace("_", "-")
    forms = {locale, bcp47, bcp47.lower()}
    if locale.count("_") == 2:  # zh_Hans_CN -> zh_Hans-CN
        head, tail = locale.rsplit("_", 1)
        forms.add(f"{head}-{tail}")
    return forms


def _build_once() -> str:
    """The translations folder, its files built (a no-op when up to date);
    a file lock keeps two workers from writing one file at once."""
    folder = ckan_i18n.get_js_translations_dir()
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, ".build.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            ckan_i18n.build_js_translations()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return folder


_built: dict[str, bool] = {}


def translations(locale: str) -> dict:
    """CKAN's JavaScript strings in ``locale`` (an empty catalog for English)."""
    if not _built.get("done"):
        _build_once()
        _built["done"] = True
    path = os.path.join(ckan_i18n.get_js_translations_dir(), f"{locale}.js")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as source:
        return json.load(source)


def _view(locale: str):
    def view():
        body = json.dumps(translations(locale), ensure_ascii=False, separators=(",", ":"))
        response = Response(body, mimetype="application/json")
        # Changes only with a new CKAN release: a day in caches is safe.
        response.headers["Cache-Control"] = "public, max-age=86400"
        return response

    view.__name__ = f"shanghai_i18n_{locale}"
    return view


class _WithoutSessionCookie:
    """WSGI: the translation files go out without a session cookie. They are
    public and cached, and the sign-in page's scripts ask for them with the
    cookie the page had: an answer that arrives after the sign-in (the first
    one builds the files) would otherwise put that cookie back and sign the
    user out. (Flask writes the cookie after every view and after-request
    hook, so it is taken off here, outside the app.)"""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if not environ.get("PATH_INFO", "").startswith("/api/i18n/"):
            return self.app(environ, start_response)

        def start(status, headers, exc_info=None):
            return start_response(status, [(name, value) for name, value in headers
                                           if name.lower() != "set-cookie"], exc_info)

        return self.app(environ, start)


def register(app) -> None:
    app.wsgi_app = _WithoutSessionCookie(app.wsgi_app)
    offered = set(tk.config.get("ckan.locales_offered") or _LOCALES)
    for locale in _LOCALES:
        if locale not in offered:
            continue
        view = _view(locale)
        for spelling in sorted(spellings(locale)):
            app.add_url_rule(f"/api/i18n/{spelling}", endpoint=f"shanghai_i18n.{spelling}", view_func=view)
