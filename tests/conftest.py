"""Shared test fixtures: where the test stack that `make test` started lives.

`python3 config/stack test` starts private PostgreSQL, Redis and Solr, renders
.local/test.ini and runs pytest with --ckan-ini pointing at it; CKAN's own
pytest plugin (with_plugins, clean_db, clean_index ...) does the rest.
"""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def ckan_ini() -> Path:
    return Path(os.environ["CKAN_INI"])


@pytest.fixture(scope="session")
def solr_core_url() -> str:
    """The test Solr core's URL, e.g. http://127.0.0.1:8984/solr/ckan_test."""
    return os.environ["SHANGHAI_SOLR_URL"].rstrip("/")


@pytest.fixture(scope="session")
def run_ckan(ckan_ini):
    """Run a `ckan -c test.ini ...` command as a user would; returns the
    CompletedProcess (never raises on a non-zero exit)."""
    ckan_command = str(Path(os.sys.executable).parent / "ckan")

    def run(*args: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [ckan_command, "-c", str(ckan_ini), *args],
            capture_output=True, text=True, timeout=timeout, cwd=ROOT,
            env=dict(os.environ, **(env or {})),
        )

    return run


@pytest.fixture
def served_portal(ckan_ini, tmp_path):
    """The portal under gunicorn at http://127.0.0.1:$SHANGHAI_TEST_PORT, one
    worker with threads as `make serve` runs it, with its real-time stream
    server; yields its base URL."""
    from portal_testing import start_portal, start_streams, stop_portal, wait_for_streams

    port = int(os.environ["SHANGHAI_TEST_PORT"])
    streams = start_streams(ckan_ini, tmp_path / "streams.log", wait=False)  # starts beside gunicorn
    try:
        process = start_portal(ckan_ini, port, tmp_path / "web.log")
    except BaseException:
        stop_portal(streams)
        raise
    try:
        wait_for_streams(streams, tmp_path / "streams.log")
    except BaseException:
        stop_portal(process)
        raise
    yield f"http://127.0.0.1:{port}"
    stop_portal(streams)
    stop_portal(process)


@pytest.fixture
def clean_db(reset_db, migrate_db_for, with_plugins):
    """CKAN's clean_db rebuilds only CKAN's own tables; the plugins this
    portal runs (activity, harvest) keep theirs in their own migrations."""
    from portal_testing import empty_database

    empty_database(reset_db, migrate_db_for)


@pytest.fixture
def harvest_tables(with_plugins, clean_db):
    """An empty database with ckanext-harvest's tables."""

