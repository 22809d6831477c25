"""Secrets generated per install, and the rendered ckan.ini (and the harvest consumers' harvest.ini)."""
from __future__ import annotations

import json
import os
import secrets
import string
import tempfile
import urllib.parse
from pathlib import Path

from stack.profiles import DEMO_DIR, NOT_DATASET_SCHEMAS, PLUGINS, Profile, ROOT, SCHEMA_DIR, WebHost


def load_secrets(profile: Profile) -> dict:
    """Secrets made once per install (and per test state), kept private."""
    path = profile.ini.parent / f"secrets-{profile.name}.json"
    if path.exists():
        values = json.loads(path.read_text())
        if "datastore_ro_password" not in values:  # secrets of an install before the DataStore
            values["datastore_ro_password"] = secrets.token_urlsafe(16)
            path.write_text(json.dumps(values, indent=1))
        return values
    values = {
        "secret_key": secrets.token_urlsafe(32),
        "csrf_secret": secrets.token_urlsafe(32),
        "jwt_secret": secrets.token_urlsafe(32),
        "admin_password": secrets.token_urlsafe(12),
        "datastore_ro_password": secrets.token_urlsafe(16),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(values, indent=1))
    return values


def datastore_options(profile: Profile, database_url: str, values: dict) -> list[str]:
    """The DataStore's database beside CKAN's: written by ckan, read by datastore_ro."""
    url = urllib.parse.urlsplit(database_url)
    write = url._replace(path=f"{url.path}_datastore").geturl()
    host = url.hostname + (f":{url.port}" if url.port else "")
    read = url._replace(path=f"{url.path}_datastore",
                        netloc=f"datastore_ro:{values['datastore_ro_password']}@{host}").geturl()
    return [
        f"ckan.datastore.write_url = {os.environ.get('DATASTORE_WRITE_URL', write)}",
        f"ckan.datastore.read_url = {os.environ.get('DATASTORE_READ_URL', read)}",
        "ckan.datastore.sqlsearch.enabled = false",
        "ckan.datastore.default_fts_lang = simple",
        # GIN builds a loaded table's full-text index about three times as fast as GiST (CKAN's default).
        "ckan.datastore.default_fts_index_method = gin",
        "ckanext.dcat.base_uri = " + f"http://127.0.0.1:{profile.web_port}",
    ]


def render_ini(profile: Profile, database_url: str, redis_url: str, solr_url: str,
               host: WebHost | None = None) -> Path:
    """Write the profile's ckan.ini (and its harvest ini) from the template;
    with ``host``, that web host's own ini instead: the same secrets,
    database, Redis, Solr and storage, its own name, and the proxy in front
    trusted for X-Forwarded-For/-Proto/-Host (config/deploy/web-proxy.conf)."""
    values = load_secrets(profile)
    storage = profile.state / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    template = string.Template((ROOT / "config" / "ckan.ini.template").read_text(encoding="utf-8"))
    file_roots = [str(DEMO_DIR)] + ([tempfile.gettempdir()] if profile.name in ("test", "bench") else [])
    extra = [
        "ckan.search.show_all_types = true",
        "ckanext.dcat.rdf.profiles = shanghai_core shanghai_portal",
        f"ckanext.shanghai.harvest.file_roots = {' '.join(file_roots)}",
        f"ckanext.shanghai.harvest.queue_poll_seconds = {os.environ.get('HARVEST_QUEUE_POLL', '20')}",
        *datastore_options(profile, database_url, values),
        # The stream server beside the web app (portal.start_streams).
        f"ckanext.shanghai.realtime.stream_url = http://127.0.0.1:{profile.stream_port}",
        f"ckanext.shanghai.realtime.stream_bind = 127.0.0.1:{profile.stream_port}",
    ]
    if profile.name in ("test", "bench"):
        # Every test and benchmark calls from 127.0.0.1: rate limits so high
        # that no run reaches them (the quota tests set their own), while
        # every request still goes through the limiter.
        extra += ["ckanext.shanghai.ratelimit.anonymous_per_window = 100000000",
                  "ckanext.shanghai.ratelimit.key_per_window = 100000000"]
    if profile.name == "bench":
        # The benchmarks count SQL statements and Solr requests per page.
        extra.append("ckanext.shanghai.server_timing = true")
    text = template.substitute(
        secret_key=values["secret_key"],
        csrf_secret=values["csrf_secret"],
        jwt_secret=values["jwt_secret"],
        site_url=f"http://127.0.0.1:{profile.web_port}",
        site_id="shanghai" if profile.name == "serve" else "shanghai_test",
        database_url=database_url,
        solr_url=solr_url,
        redis_url=redis_url,
        storage_path=storage,
        plugins=PLUGINS,
        dataset_schemas=" ".join(
            f"ckanext.shanghai.schemas:{path.name}" for path in sorted(SCHEMA_DIR.glob("*.yaml"))
            if path.name not in NOT_DATASET_SCHEMAS
        ),
        extra_options="\n".join(extra),
        log_level="INFO" if profile.persistent else "WARNING",
        host_name=host.name if host else "",
        trusted_proxies=1 if host else 0,
    )
    ini = host.ini if host else profile.ini
    if host:
        text = (f"# Web host {host.name}: gunicorn on 127.0.0.1:{host.port}, log {profile.logs / host.process}.log,\n"
                f"# pid {profile.run / host.process}.pid; rendered by config/stack from config/ckan.ini.template.\n"
                + text)
    ini.parent.mkdir(parents=True, exist_ok=True)
    ini.touch(mode=0o600)
    ini.write_text(text, encoding="utf-8")
    harvest_ini(ini).write_text(
        "# The harvest consumers' configuration: the portal's, except that CKAN's\n"
        "# own updates and deletes do not commit Solr one by one; the fetch\n"
        "# consumer commits once per batch (ckanext.shanghai.harvest.index_batch).\n"
        f"[app:main]\nuse = config:{ini.name}\nckan.search.solr_commit = false\n",
        encoding="utf-8")
    return ini


def harvest_ini(profile_or_ini: Profile | Path) -> Path:
    """The harvest consumers' ini beside a profile's (or a web host's) ini."""
    ini = profile_or_ini.ini if isinstance(profile_or_ini, Profile) else profile_or_ini
    return ini.with_name(f"{ini.stem}-harvest.ini")
