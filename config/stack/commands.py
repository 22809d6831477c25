"""The commands `make` runs: serve, test, bench, stop, clean."""
from __future__ import annotations

import sys

import shutil
import signal
import subprocess
import time

from stack.profiles import LOCAL, Profile, ROOT, VENV_BIN, profile_for, say, web_hosts
from stack.install import install
from stack.processes import Processes, stop_leftovers
from stack.portal import (
    bootstrap_admin, ckan_env, load_demo, start_ckan_processes, start_services, start_simulator, start_streams,
    start_web, stop_simulator,
)


def serve() -> int:
    profile = profile_for("serve")
    install(profile, dev=False)
    procs = Processes(profile)
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise KeyboardInterrupt

    # Installed explicitly: a shell that starts us in the background hands
    # us SIGINT ignored, and Ctrl-C must still stop everything.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        services = start_services(profile, procs)
        admin = bootstrap_admin(profile)
        start_ckan_processes(profile, procs, services)
        load_demo(profile)
        start_simulator(profile, procs)
        say("")
        say(f"portal:    http://127.0.0.1:{profile.web_port}/")
        if web_hosts() > 1:
            hosts = [profile.web_host(number) for number in range(1, web_hosts() + 1)]
            say("web hosts: " + ", ".join(f"{host.name} http://127.0.0.1:{host.port}/ ({host.ini.relative_to(ROOT)})"
                                          for host in hosts) + "; nginx in front")
        say(f"API:       http://127.0.0.1:{profile.web_port}/api/3/action/status_show")
        say(f"Solr:      http://127.0.0.1:{profile.solr_port}/solr/ (core {profile.solr_core})")
        say(f"sysadmin:  {admin['name']}  password: {admin['password']}")
        say(f"API token: {admin.get('token', '(see .local/admin-serve.json)')}")
        say(f"logs:      {profile.logs.relative_to(ROOT)}/   config: {profile.ini.relative_to(ROOT)}")
        say("Ctrl-C stops everything.")
        while True:
            for lost in procs.replace_lost():
                say(f"{lost} exited; the other nodes carry on; starting it again "
                    f"(see {profile.logs.relative_to(ROOT)}/{lost}.log)")
            for ended in procs.ended_optional():
                say(f"{ended} stopped; the rest of the stack carries on "
                    f"(see {profile.logs.relative_to(ROOT)}/{ended}.log)")
            dead = procs.check_alive()
            if dead:
                say(f"{dead} exited unexpectedly; see {profile.logs.relative_to(ROOT)}/{dead}.log; stopping")
                return 1
            time.sleep(1)
    except KeyboardInterrupt:
        say("stopping")
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        procs.stop_all()
        say("stopped")


def reset_state(profile: Profile) -> None:
    """Stop leftovers and delete a throw-away profile's service data."""
    stop_leftovers(profile)
    for child in ("postgres", "redis", "solr", "solr-cloud", "zookeeper", "storage"):
        path = profile.state / child
        if path.is_symlink():
            shutil.rmtree(path.resolve(), ignore_errors=True)
            path.unlink()
        else:
            shutil.rmtree(path, ignore_errors=True)


def run_on_fresh_stack(profile: Profile, what: str, commands: list[list[str]], env: dict | None = None,
                       web: bool = False) -> int:
    """Start a throw-away profile's services from empty (and the web app and
    the stream server if ``web``), run each command with CKAN_INI set, stop the services; returns
    the first non-zero exit status (later commands still run)."""
    procs = Processes(profile)
    reset_state(profile)
    try:
        start_services(profile, procs)
        if web:
            start_web(profile, procs)
            start_streams(profile, procs)
        say(f"running {what}")
        statuses = [subprocess.run(argv, cwd=ROOT, env=dict(ckan_env(profile), **(env or {}))).returncode
                    for argv in commands]
        return next((status for status in statuses if status), 0)
    finally:
        procs.stop_all()


def test(pytest_args: list[str]) -> int:
    profile = profile_for("test")
    install(profile, dev=True, browser=True)
    return run_on_fresh_stack(
        profile, "the tests",
        [[str(VENV_BIN / "python"), "-m", "pytest", f"--ckan-ini={profile.ini}", *pytest_args]],
        env={"SHANGHAI_TEST_STATE": str(profile.state), "SHANGHAI_TEST_PORT": str(profile.web_port),
             "SHANGHAI_SOLR_URL": _solr_url_of(profile)},
    )


BENCHMARKS = ("harvest_bench.py", "datastore_bench.py", "city_scale_bench.py", "pages_bench.py", "realtime_bench.py",
              "english_bench.py", "keys_bench.py")


def bench(args: list[str]) -> int:
    """Run the benchmarks under bench/ on a fresh private stack, the web app
    included. ``args``: benchmark names to run (default: all), then options
    for them after ``--``."""
    profile = profile_for("bench")
    install(profile, dev=True, load_tool=True)
    names = [a for a in args[:args.index("--")] if a] if "--" in args else []
    options = args[args.index("--") + 1:] if "--" in args else args
    chosen = [n for n in BENCHMARKS if not names or any(n.startswith(name) for name in names)]
    # Last, the ratios of every benchmark in bench/results/latest.json, together.
    summary = [str(VENV_BIN / "python"), str(ROOT / "bench" / "report.py")]
    return run_on_fresh_stack(profile, ", ".join(f"bench/{n}" for n in chosen),
                              [[str(VENV_BIN / "python"), str(ROOT / "bench" / n), *options] for n in chosen]
                              + [summary], web=True)


def _solr_url_of(profile: Profile) -> str:
    return profile.solr_url or f"http://127.0.0.1:{profile.solr_port}/solr/{profile.solr_core}"


def main(argv: list[str]) -> int:
    if not argv:
        print(sys.modules["stack"].__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "install":
        install(profile_for("test"), dev=True, browser=True)
        return 0
    if command == "serve":
        return serve()
    if command == "test":
        return test(rest)
    if command == "bench":
        return bench(rest)
    if command == "stop":
        for name in rest or ["serve", "test", "bench"]:
            stop_leftovers(profile_for(name))
        return 0
    if command == "stop-simulator":
        say("car-park feed simulator stopped" if stop_simulator(profile_for("serve"))
            else "no car-park feed simulator is running")
        return 0
    if command == "clean":
        for name in ("serve", "test", "bench"):
            profile = profile_for(name)
            stop_leftovers(profile)
            cluster = profile.state / "postgres"
            if cluster.is_symlink():
                shutil.rmtree(cluster.resolve(), ignore_errors=True)
        shutil.rmtree(LOCAL, ignore_errors=True)
        return 0
    print(sys.modules["stack"].__doc__)
    return 2
