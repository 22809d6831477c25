"""nginx as the stack runs it: a production configuration file from
config/deploy/ made local (these servers, this port, nginx in the
foreground, its files under the profile's state) and started as one of the
stack's processes. The Solr balancer (solrcloud.py) and the web proxy in
front of several web hosts (portal.py) both run this way."""
from __future__ import annotations

import os
import pwd
import re
from pathlib import Path

from stack.install import ensure_debian_packages
from stack.processes import Processes, require_free_port
from stack.profiles import Profile, fail


def local_conf(production: Path, name: str, state: Path, logs: Path, port: int, servers: list[int]) -> str:
    """``production`` with its one upstream list replaced by these local
    ``servers``, its one ``listen`` by 127.0.0.1:``port`` and its access log
    (if any) moved to ``logs``. Started by root, nginx's workers would run as
    ``nobody`` and could not write request bodies under a private folder (a
    mktemp clone, a home directory): they run as the user who owns the
    state instead."""
    text = production.read_text(encoding="utf-8")
    lines = "\n".join(f"    server 127.0.0.1:{server} max_fails=1 fail_timeout=5s;" for server in servers)
    text, count = re.subn(r"(?m)^( *server \S+:\d+ [^\n]*\n)+", lines + "\n", text)
    text, listens = re.subn(r"listen \d+;", f"listen 127.0.0.1:{port};", text)
    if (count, listens) != (1, 1):
        fail(f"{production} no longer has one upstream list and one listen")
    text = re.sub(r"access_log /\S+;", f"access_log {logs / name}-access.log;", text)
    owner = f"user {pwd.getpwuid(os.getuid()).pw_name};\n" if os.geteuid() == 0 else ""
    local = (f"# Written by config/stack from {production.name}; rewritten at each start.\n"
             f"{owner}daemon off;\npid {state / 'nginx.pid'};\nerror_log {logs / name}.log warn;\n")
    temp = "".join(f"  {kind}_temp_path {state / folder};\n" for kind, folder in (
        ("client_body", "body"), ("proxy", "proxy"), ("fastcgi", "fastcgi"), ("uwsgi", "uwsgi"), ("scgi", "scgi")))
    return local + text.replace("http {\n", "http {\n" + temp, 1)


def start(profile: Profile, procs: Processes, name: str, conf: str, port: int, what: str) -> None:
    """Run nginx with ``conf`` (from ``local_conf``) as the stack's process
    ``name``, listening on ``port`` (moved by the profile's ``what`` port)."""
    ensure_debian_packages({"nginx": "nginx"})
    state = profile.state / name
    for child in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (state / child).mkdir(parents=True, exist_ok=True)
    path = state / "nginx.conf"
    path.write_text(conf, encoding="utf-8")
    require_free_port(port, name, profile.port_variable(what))
    procs.start(name, ["nginx", "-c", str(path), "-p", str(state), "-e", str(profile.logs / f"{name}.log")],
                stop_timeout=10)
