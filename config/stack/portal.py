"""CKAN's processes: the web app, the real-time stream server, the harvest
consumers, the scheduler, the real-time pull poller, the job worker; the
admin, the demo and its car-park feed simulator."""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from stack import nginx
from stack.profiles import DEMO_DIR, Profile, ROOT, VENV_BIN, WebHost, fail, say, web_hosts
from stack.processes import Processes, http_ok, require_free_port, stop_leftovers, wait_until
from stack.services import start_postgres, start_redis, start_solr
from stack.install import postgres_bin
from stack.settings import harvest_ini, load_secrets, render_ini

def datastore_permissions(profile: Profile) -> None:
    """Grant the read-only role what `ckan datastore set-permissions` says."""
    if profile.database_url:
        return
    sql = ckan(profile, "datastore", "set-permissions").stdout
    psql = [str(postgres_bin() / "psql"), "-h", "127.0.0.1", "-p", str(profile.pg_port), "-U", "postgres",
            "-v", "ON_ERROR_STOP=1", "-qtA", "-d", f"{profile.database}_datastore"]
    subprocess.run(psql, input=sql, text=True, check=True, capture_output=True)


def ckan(profile: Profile, *args: str) -> subprocess.CompletedProcess:
    """Run a ckan command; on failure stop with its output."""
    result = subprocess.run(
        [str(VENV_BIN / "ckan"), "-c", str(profile.ini), *args],
        text=True, capture_output=True, cwd=ROOT,
    )
    if result.returncode != 0:
        fail(f"`ckan {' '.join(args)}` failed:\n{(result.stdout + result.stderr)[-4000:]}")
    return result


def ckan_env(profile: Profile) -> dict:
    return dict(os.environ, CKAN_INI=str(profile.ini), PATH=f"{VENV_BIN}:{os.environ['PATH']}")


@dataclass(frozen=True)
class Services:
    """Where a profile's services answer, for rendering its inis."""

    database_url: str
    redis_url: str
    solr_url: str


def start_services(profile: Profile, procs: Processes) -> Services:
    stop_leftovers(profile)
    services = Services(start_postgres(profile, procs), start_redis(profile, procs), start_solr(profile, procs))
    ini = render_ini(profile, services.database_url, services.redis_url, services.solr_url)
    say(f"CKAN: config {ini.relative_to(ROOT)}; initialising the database")
    ckan(profile, "db", "init")
    datastore_permissions(profile)
    return services


def start_web(profile: Profile, procs: Processes, host: WebHost | None = None) -> subprocess.Popen:
    """gunicorn on the profile's port with its ini; with ``host``, on that
    host's own port with the host's ini, log and pid file."""
    workers = os.environ.get("WEB_WORKERS", "2")
    port, name, ini = (host.port, host.process, host.ini) if host else (profile.web_port, "web", profile.ini)
    access = f"access-{host.name}.log" if host else "access.log"
    require_free_port(port, f"the web app{f' ({host.name})' if host else ''}",
                      profile.port_variable("WEB_HOST_PORT" if host else "PORT"))
    say(f"CKAN: starting gunicorn ({workers} workers) on 127.0.0.1:{port}{f' as {host.name}' if host else ''}")
    web = procs.start(name, [
        str(VENV_BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}",
        "--workers", workers, "--threads", os.environ.get("WEB_THREADS", "4"), "--timeout", "120",
        "--graceful-timeout", "10", "--access-logfile", str(profile.logs / access),
        "ckanext.shanghai.wsgi:application",
    ], env=dict(ckan_env(profile), CKAN_INI=str(ini)))
    status = f"http://127.0.0.1:{port}/api/3/action/status_show"
    wait_until(lambda: http_ok(status), f"the web app{f' ({host.name})' if host else ''}", 120, web,
               profile.logs / f"{name}.log")
    return web


def start_web_hosts(profile: Profile, procs: Processes, services: Services, count: int) -> list[WebHost]:
    """``count`` web hosts, each with its own ini rendered from the one
    template (same secrets, database, Redis, Solr and storage), its own
    port, log and pid file, and nginx on the profile's port in front of
    them (config/deploy/web-proxy.conf)."""
    hosts = [profile.web_host(number) for number in range(1, count + 1)]
    for host in hosts:
        render_ini(profile, services.database_url, services.redis_url, services.solr_url, host=host)
        start_web(profile, procs, host)
    start_web_proxy(profile, procs, [host.port for host in hosts])
    return hosts


def start_web_proxy(profile: Profile, procs: Processes, ports: list[int]) -> None:
    """nginx on the profile's port, round robin over the hosts on ``ports``."""
    state = profile.state / "web-proxy"
    say(f"nginx: the portal on 127.0.0.1:{profile.web_port}, round robin over {len(ports)} web hosts")
    nginx.start(profile, procs, "web-proxy",
                nginx.local_conf(WEB_PROXY_CONF, "web-proxy", state, profile.logs, profile.web_port, ports),
                profile.web_port, "PORT")
    status = f"http://127.0.0.1:{profile.web_port}/api/3/action/status_show"
    wait_until(lambda: http_ok(status), "the web proxy", 30, None, profile.logs / "web-proxy.log")


def start_streams(profile: Profile, procs: Processes) -> subprocess.Popen:
    """The stream server: every open Server-Sent Events stream, so that
    none holds a web worker (the web app redirects streams here)."""
    require_free_port(profile.stream_port, "the stream server", profile.port_variable("STREAM_PORT"))
    say(f"CKAN: starting the real-time stream server on 127.0.0.1:{profile.stream_port}")
    streams = procs.start("realtime-streams", [
        str(VENV_BIN / "ckan"), "-c", str(profile.ini), "shanghai-realtime", "streams",
        "--bind", f"127.0.0.1:{profile.stream_port}"], env=ckan_env(profile))
    wait_until(lambda: http_ok(f"http://127.0.0.1:{profile.stream_port}/health"), "the stream server", 120,
               streams, profile.logs / "realtime-streams.log")
    return streams


WEB_PROXY_CONF = ROOT / "config" / "deploy" / "web-proxy.conf"


def fetch_consumers() -> int:
    """FETCH_CONSUMERS, or one more than the machine has cores: a fetch
    consumer waits on PostgreSQL and Solr for part of every batch, and one
    extra keeps the cores busy meanwhile (on 2 cores, 3 import a third
    faster than 2; a fourth adds nothing)."""
    return int(os.environ.get("FETCH_CONSUMERS") or min((os.cpu_count() or 1) + 1, 8))


def start_ckan_processes(profile: Profile, procs: Processes, services: Services) -> None:
    """The web app (WEB_HOSTS of them behind nginx when more than one), the
    stream server, the harvest consumers (spread over the hosts' inis), the
    scheduler, the real-time poller and the job worker."""
    env = ckan_env(profile)
    count = web_hosts()
    hosts = start_web_hosts(profile, procs, services, count) if count > 1 else []
    if not hosts:
        start_web(profile, procs)
    start_streams(profile, procs)
    fetchers = fetch_consumers()
    for number, (name, kind) in enumerate([("harvest-gather", "gather")] + [
            (f"harvest-fetch{'' if n == 0 else n + 1}", "fetch") for n in range(fetchers)]):
        # As on several machines: each consumer reads the ini of the host it runs on.
        ini = harvest_ini(hosts[number % len(hosts)].ini if hosts else profile)
        procs.start(name, [str(VENV_BIN / "ckan"), "-c", str(ini), "shanghai",
                           "harvest-consumer", kind], env=env)
    procs.start("harvest-scheduler", [str(VENV_BIN / "ckan"), "-c", str(profile.ini), "shanghai",
                                      "harvest-scheduler"], env=env)
    procs.start("realtime-pull", [str(VENV_BIN / "ckan"), "-c", str(profile.ini), "shanghai", "realtime-pull"],
                env=env)
    procs.start("jobs-worker", [str(VENV_BIN / "ckan"), "-c", str(profile.ini), "jobs", "worker"], env=env)


def bootstrap_admin(profile: Profile) -> dict:
    values = load_secrets(profile)
    admin_file = profile.ini.parent / f"admin-{profile.name}.json"
    if admin_file.exists():
        return json.loads(admin_file.read_text())
    result = subprocess.run(
        [str(VENV_BIN / "ckan"), "-c", str(profile.ini), "shanghai", "bootstrap-admin", "admin",
         "--email", "admin@localhost"],
        check=True, capture_output=True, text=True, cwd=ROOT,
        env=dict(os.environ, SHANGHAI_ADMIN_PASSWORD=values["admin_password"]),
    )
    admin = json.loads(result.stdout.strip().splitlines()[-1])
    admin["password"] = values["admin_password"]
    admin_file.touch(mode=0o600)
    admin_file.write_text(json.dumps(admin, indent=1))
    return admin


def load_demo(profile: Profile) -> None:
    """Harvest the real Shanghai catalog export (config/demo/catalogs) on first run."""
    export = DEMO_DIR / "catalogs" / "shanghai.json"
    result = ckan(profile, "shanghai", "demo", str(export), "--tables", str(DEMO_DIR / "tables"))
    started = json.loads(result.stdout.strip().splitlines()[-1])
    if started.get("job"):
        say("demo: harvesting the real Shanghai catalog (4,494 records, 56 departments) in the background; "
            f"follow it at http://127.0.0.1:{profile.web_port}/harvest/{started['source']}")
    else:
        say(f"demo: the Shanghai catalog was harvested before (source {started['source']})")


def start_simulator(profile: Profile, procs: Processes) -> None:
    """The demo's car-park feed simulator (SIMULATOR=off leaves it out):
    it waits for the demo harvest to create the transport department, then
    pushes to its simulated product through the public push endpoint.
    `make stop-simulator` stops it alone; the product page then shows the
    feed interrupted."""
    if os.environ.get("SIMULATOR", "on").lower() in ("off", "0", "no", "false"):
        return
    procs.start("realtime-simulator", [
        str(VENV_BIN / "ckan"), "-c", str(profile.ini), "shanghai-realtime", "simulate",
        "--places", str(DEMO_DIR / "tables" / "sh_elderly_care_institutions_utf8bom.csv"),
        "--interval", os.environ.get("SIMULATOR_INTERVAL", "60"),
        "--key-file", str(profile.ini.parent / f"realtime-simulator-{profile.name}.key"),
    ], env=ckan_env(profile), optional=True)
    say(f"demo: car-park feed simulator started (log {(profile.logs / 'realtime-simulator.log').relative_to(ROOT)};"
        " `make stop-simulator` stops it)")


def stop_simulator(profile: Profile) -> bool:
    """Stop a running `make serve`'s simulator; False when none runs."""
    from stack.processes import alive, stop_process_group

    pidfile = profile.run / "realtime-simulator.pid"
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return False
    if not alive(pid):
        return False
    stop_process_group("realtime-simulator", pid, 20)
    return True
