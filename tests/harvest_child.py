"""Runs harvest jobs in a process of their own, so the tests can measure a
harvest's peak memory (the pytest process's own peak says nothing about one
job). Reads a plan (JSON on stdin: config overrides and a list of
{case, source_id, url}) and prints one JSON line per job, then the peak RSS.

    CKAN_INI=.local/test.ini python tests/harvest_child.py < plan.json
"""
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def peak_rss_kb() -> int:
    """This process's resident-memory high-water mark. Not getrusage's
    ru_maxrss: on Linux that survives exec, so it would count the memory of
    the pytest process this child was forked from."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    plan = json.load(sys.stdin)
    from ckan.cli import load_config
    from ckan.config.middleware import make_app

    app = make_app(load_config(os.environ["CKAN_INI"]))._wsgi_app
    with app.test_request_context():
        import ckan.model as model
        import ckan.plugins.toolkit as tk

        from ckanext.harvest.model import HarvestSource
        from portal_testing import run_job

        tk.config.update(plan.get("config", {}))
        for step in plan["jobs"]:
            if step.get("url"):
                # The harvester reads the source's row; an operator changing
                # the URL through the form changes the same row.
                source = HarvestSource.get(step["source_id"])
                source.url = step["url"]
                source.save()
            started = time.monotonic()
            try:
                report = run_job(step["source_id"])
                error = None
            except Exception as exc:  # a crash is a finding; the test shows it
                model.Session.rollback()
                report, error = None, f"{type(exc).__name__}: {exc}"[:2000]
            print(json.dumps({"case": step["case"], "report": report, "error": error,
                              "seconds": time.monotonic() - started,
                              "rss_kb": peak_rss_kb()},
                             ensure_ascii=False, default=str), flush=True)
    print(json.dumps({"peak_rss_kb": peak_rss_kb()}), flush=True)


if __name__ == "__main__":
    main()
