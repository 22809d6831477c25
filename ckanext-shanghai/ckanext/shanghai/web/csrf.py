"""CSRF protection for every form POST of the web pages.

CKAN 2.12 exempts a view from Flask-WTF's CSRF check for the rest of the
process as soon as one request reaches it without a session cookie
(anonymous, or with an API token): ``csrf.exempt(view)`` in its
``ckan_before_request``. After one anonymous visit to a form, that form is
unprotected for logged-in users too, and anonymous forms (log in, register,
reset password) never are. Here every state-changing request to a page is
checked, whatever CKAN exempted; requests authenticated by an API token
(which a browser never sends on its own) and the action API (whose browser
calls carry the token header CKAN's JavaScript adds) keep CKAN's rules."""
from __future__ import annotations

from flask import current_app, request

__all__ = ["register"]

_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def check_page_form() -> None:
    if request.method not in _UNSAFE or not current_app.config.get("WTF_CSRF_ENABLED"):
        return
    if request.path.startswith("/api/") or request.headers.get("Authorization"):
        return
    # Raises CSRFError (answered 400 by CKAN) when the token is missing or wrong.
    current_app.extensions["csrf"].protect()


def register(app) -> None:
    app.before_request(check_page_form)
