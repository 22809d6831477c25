"""PostgreSQL, Redis and Solr, each a private instance under .local/ on a loopback port (or an external one)."""
from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import socket
import subprocess
from pathlib import Path

from stack.profiles import CONFIGSETS, Profile, ROOT, SOLR_DIR, say
from stack.install import ensure_solr_classpath, is_root, postgres_bin
from stack.processes import Processes, http_ok, require_free_port, wait_until
from stack.settings import load_secrets


def postgres_home(profile: Profile, user: str | None) -> Path:
    """Where the private cluster lives: .local/<profile>/postgres, unless the
    postgres user cannot reach the checkout (a 0700 temp folder, say); then
    under that user's home, keyed by this checkout, linked from .local."""
    linked = profile.state / "postgres"
    profile.state.mkdir(parents=True, exist_ok=True)
    reachable = user is None or subprocess.run(
        ["runuser", "-u", user, "--", "test", "-x", str(profile.state)], capture_output=True
    ).returncode == 0
    if reachable and not linked.is_symlink():
        return linked
    key = hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]
    home = Path(pwd.getpwnam(user).pw_dir) / "ckanext-shanghai" / f"{key}-{profile.name}"
    home.mkdir(parents=True, exist_ok=True)
    for part in (home.parent, home):
        shutil.chown(part, user, user)
    if not linked.is_symlink():
        shutil.rmtree(linked, ignore_errors=True)
        linked.symlink_to(home, target_is_directory=True)
    return home


def start_postgres(profile: Profile, procs: Processes) -> str:
    if profile.database_url:
        say("PostgreSQL: external (DATABASE_URL)")
        return profile.database_url
    bindir = postgres_bin()
    user = "postgres" if is_root() else None
    home = postgres_home(profile, user)
    if home == profile.state / "postgres":
        data, socket_dir = home, profile.state / "postgres-socket"
    else:
        say(f"PostgreSQL: the postgres user cannot reach this checkout; cluster kept in {home}")
        data, socket_dir = home / "data", home / "socket"
    if not (data / "PG_VERSION").exists():
        say(f"PostgreSQL: creating a private cluster in {data}")
        data.mkdir(parents=True, exist_ok=True)
        if user:
            shutil.chown(data, user, user)
        subprocess.run(
            _as(user, [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                       "-E", "UTF8", "--locale=C.UTF-8"]),
            check=True, stdout=subprocess.DEVNULL,
        )
        (data / "pg_hba.conf").write_text(
            "# Private cluster of this checkout: local socket and loopback only.\n"
            "local all all trust\n"
            "host all all 127.0.0.1/32 trust\n"
        )
    socket_dir.mkdir(parents=True, exist_ok=True)
    if user:
        shutil.chown(socket_dir, user, user)
    require_free_port(profile.pg_port, "PostgreSQL", profile.port_variable("PG_PORT"))
    settings = [
        "-c", f"port={profile.pg_port}",
        "-c", "listen_addresses=127.0.0.1",
        "-c", f"unix_socket_directories={socket_dir}",
        "-c", "max_connections=200",
        "-c", "shared_buffers=256MB",
    ]
    if not profile.persistent:
        # Test data is thrown away: trade durability for speed.
        settings += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    say(f"PostgreSQL: starting on 127.0.0.1:{profile.pg_port}")
    process = procs.start("postgres", [str(bindir / "postgres"), "-D", str(data), *settings],
                          user=user, stop_timeout=30)
    psql = [str(bindir / "psql"), "-h", "127.0.0.1", "-p", str(profile.pg_port), "-U", "postgres",
            "-v", "ON_ERROR_STOP=1", "-qtA"]

    def ready():
        return subprocess.run([*psql, "-c", "select 1"], capture_output=True).returncode == 0

    wait_until(ready, "PostgreSQL", 60, process, profile.logs / "postgres.log")
    for database in (profile.database, f"{profile.database}_datastore"):
        exists = subprocess.run([*psql, "-c", f"select 1 from pg_database where datname='{database}'"],
                                capture_output=True, text=True).stdout.strip()
        if exists != "1":
            subprocess.run([*psql, "-c", "do $$ begin if not exists (select from pg_roles where rolname='ckan') "
                            "then create role ckan login; end if; end $$;"], check=True)
            subprocess.run([*psql, "-c", f'create database "{database}" owner ckan encoding \'UTF8\''], check=True)
    # The DataStore's read-only role; its password is this install's secret.
    password = load_secrets(profile)["datastore_ro_password"]
    subprocess.run([*psql, "-c", "do $$ begin if not exists (select from pg_roles where rolname='datastore_ro') "
                    "then create role datastore_ro login; end if; end $$;"], check=True)
    subprocess.run([*psql, "-c", f"alter role datastore_ro password '{password}'"], check=True)
    return f"postgresql://ckan@127.0.0.1:{profile.pg_port}/{profile.database}"


def _as(user: str | None, argv: list[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *argv] if user else argv


def start_redis(profile: Profile, procs: Processes) -> str:
    if profile.redis_url:
        say("Redis: external (REDIS_URL)")
        return profile.redis_url
    data = profile.state / "redis"
    data.mkdir(parents=True, exist_ok=True)
    require_free_port(profile.redis_port, "Redis", profile.port_variable("REDIS_PORT"))
    persistence = (["--save", "60 1", "--appendonly", "yes"] if profile.persistent
                   else ["--save", "", "--appendonly", "no"])
    say(f"Redis: starting on 127.0.0.1:{profile.redis_port}" + (" (persistent)" if profile.persistent else ""))
    process = procs.start("redis", [
        "redis-server", "--bind", "127.0.0.1", "--port", str(profile.redis_port),
        "--dir", str(data), "--protected-mode", "yes", "--daemonize", "no", *persistence,
    ], stop_timeout=20)

    def ready():
        with socket.create_connection(("127.0.0.1", profile.redis_port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")

    wait_until(ready, "Redis", 30, process, profile.logs / "redis.log")
    return f"redis://127.0.0.1:{profile.redis_port}/0"


def start_solr(profile: Profile, procs: Processes) -> str:
    if profile.solr_url:
        say("Solr: external (SOLR_URL)")
        return profile.solr_url
    if profile.solr_mode == "cloud":
        from stack import solrcloud

        return solrcloud.start(profile, procs)
    solr_build = ensure_solr_classpath()
    home = profile.state / "solr"
    core = home / profile.solr_core
    core.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SOLR_DIR / "solr.xml", home / "solr.xml")
    (core / "core.properties").write_text(f"name={profile.solr_core}\nconfigSet=ckan\n")
    require_free_port(profile.solr_port, "Solr", profile.port_variable("SOLR_PORT"))
    heap = os.environ.get("SOLR_HEAP", "1g")
    classpath = f"{solr_build / 'classes'}:{(solr_build / 'classpath.txt').read_text().strip()}"
    say(f"Solr 9.10.1: starting on 127.0.0.1:{profile.solr_port}, core {profile.solr_core}")
    process = procs.start("solr", [
        "java", "-Xms256m", f"-Xmx{heap}", "-XX:+UseG1GC",
        f"-Dsolr.log.dir={profile.logs}",
        f"-Dlog4j2.configurationFile={SOLR_DIR / 'log4j2.xml'}",
        "-cp", classpath, "Launcher", str(home), str(profile.solr_port), str(CONFIGSETS),
    ], stop_timeout=30)
    url = f"http://127.0.0.1:{profile.solr_port}/solr/{profile.solr_core}"
    wait_until(lambda: http_ok(f"{url}/select?q=*:*&rows=0&wt=json"), "Solr", 120, process,
               profile.logs / "solr.log")
    return url
