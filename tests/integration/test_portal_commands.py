"""The portal's set-up commands as an operator runs them (`ckan shanghai
...` in a shell): what they print is what happened."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import ckan.model as model
from ckan.tests import factories

pytestmark = pytest.mark.usefixtures("clean_db")


def bootstrap_admin(run_ckan, name: str) -> dict:
    result = run_ckan("shanghai", "bootstrap-admin", name, "--email", f"{name}@example.gov.cn",
                      env={"SHANGHAI_ADMIN_PASSWORD": "Str0ng-Passw0rd!"})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_bootstrap_admin_says_created_only_when_it_created_the_user(run_ckan):
    first = bootstrap_admin(run_ckan, "ops-admin")
    assert first["created"] is True and first["token"]
    again = bootstrap_admin(run_ckan, "ops-admin")
    assert again["created"] is False and again["token"] and again["token"] != first["token"]
    model.Session.remove()
    assert model.Session.query(model.User).filter(model.User.name == "ops-admin").count() == 1
    assert model.User.get("ops-admin").sysadmin


def test_bootstrap_admin_promotes_an_existing_user_without_claiming_to_create_it(run_ckan):
    factories.User(name="city-editor", email="editor@example.gov.cn")
    promoted = bootstrap_admin(run_ckan, "city-editor")
    assert promoted["created"] is False
    model.Session.remove()
    user = model.User.get("city-editor")
    assert user.sysadmin and user.email == "editor@example.gov.cn"



def test_the_job_worker_runs_queued_jobs_to_the_end(ckan_ini, tmp_path):
    """`make serve` runs `ckan jobs worker`; each job runs in a forked work
    horse that loads the plugins again. Whatever the portal patched at the
    first load (here the Server-Timing counters, on as the benchmarks run the
    portal) must not make that second load refuse to start, or every
    background job (tables, demo, link checks) dies unseen."""
    from ckan.lib import jobs

    timed = tmp_path / "timed.ini"
    timed.write_text(f"[app:main]\nuse = config:{ckan_ini}\nckanext.shanghai.server_timing = true\n",
                     encoding="utf-8")
    ckan = [str(Path(sys.executable).parent / "ckan"), "-c", str(timed)]
    queue = jobs.get_queue()
    queue.empty()
    failed_before = queue.failed_job_registry.count
    queued = subprocess.run([*ckan, "jobs", "test"], capture_output=True, text=True, timeout=120)
    assert queued.returncode == 0, queued.stderr[-2000:]
    assert queue.count == 1
    worked = subprocess.run([*ckan, "jobs", "worker", "--burst"], capture_output=True, text=True, timeout=180)
    output = worked.stdout + worked.stderr
    assert worked.returncode == 0, output[-3000:]
    assert "terminated unexpectedly" not in output, output[-3000:]
    assert queue.count == 0
    assert queue.failed_job_registry.count == failed_before, output[-3000:]
    assert queue.finished_job_registry.count >= 1
