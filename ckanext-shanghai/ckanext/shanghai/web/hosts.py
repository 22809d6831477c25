"""Serving from several hosts behind a proxy: trust the proxy's
X-Forwarded-For/-Proto/-Host (``ckanext.shanghai.web.trusted_proxies``,
werkzeug's ProxyFix, as CKAN 2.12 has no option of its own for it) and name
the host that answered in ``X-Served-By`` (``ckanext.shanghai.web.host_name``).
Everything else two hosts must share (sessions, CSRF tokens, rate-limit
counts, caches) lives in Redis, the database or the per-install secrets:
README, "Several hosts"."""
from __future__ import annotations

from werkzeug.middleware.proxy_fix import ProxyFix

import ckan.plugins.toolkit as tk

__all__ = ["register"]


def register(app) -> None:
    proxies = tk.config.get("ckanext.shanghai.web.trusted_proxies")
    if proxies < 0:
        raise ValueError(f"ckanext.shanghai.web.trusted_proxies 不能为负数 / must not be negative: {proxies}")
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    name = tk.config.get("ckanext.shanghai.web.host_name")
    if name:
        @app.after_request
        def served_by(response):
            response.headers["X-Served-By"] = name
            return response
