"""Shared test fixtures: where the test stack that `make test` started lives.

`python3 config/stack test` starts private PostgreSQL, Redis and Solr, renders
.local/test.ini and runs pytest with --ckan-ini pointing at it; CKAN's own
pytest plugin (with_plugins, clean_db, clean_index ...) does the rest.
"""
import os
import subprocess
import time
import urllib.request
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
    worker with threads as `make serve` runs it; yields its base URL."""
    port = os.environ["SHANGHAI_TEST_PORT"]
    venv_bin = Path(os.sys.executable).parent
    process = subprocess.Popen(
        [str(venv_bin / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4",
         # As make serve: an open event stream does not hold up the stop for long.
         "--graceful-timeout", "10", "ckanext.shanghai.wsgi:application"],
        env=dict(os.environ, CKAN_INI=str(ckan_ini)), stdout=(tmp_path / "web.log").open("wb"),
        stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/3/action/status_show", timeout=2):
                break
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "web.log").read_text()
            time.sleep(0.3)
    yield base
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture
def clean_db(reset_db, migrate_db_for, with_plugins):
    """CKAN's clean_db rebuilds only CKAN's own tables; the plugins this
    portal runs (activity, harvest) keep theirs in their own migrations."""
    from portal_testing import empty_database

    empty_database(reset_db, migrate_db_for)


@pytest.fixture
def harvest_tables(with_plugins, clean_db):
    """An empty database with ckanext-harvest's tables."""

