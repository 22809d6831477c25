#!/usr/bin/env python3
"""Local stack launcher: installs what is missing, then starts, checks and
stops PostgreSQL, Redis, Apache Solr and CKAN for `make serve` and `make test`.

Standard library only, so it runs before the virtualenv exists. Every
service is private to the checkout (state under .local/, loopback ports) and
is skipped when DATABASE_URL, REDIS_URL or SOLR_URL (TEST_DATABASE_URL,
TEST_REDIS_URL, TEST_SOLR_URL for the tests) names an external one.

    python3 config/stack.py install        # packages, venv, Solr jars
    python3 config/stack.py serve          # the portal, until Ctrl-C
    python3 config/stack.py test [ARGS]    # test services + pytest ARGS
    python3 config/stack.py bench [ARGS]   # bench services + bench/harvest_bench.py ARGS
    python3 config/stack.py stop [serve|test]  # stop leftovers of a killed run
    python3 config/stack.py clean          # stop leftovers, delete all local state
"""
from __future__ import annotations

import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import string
import subprocess
import tempfile
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCAL = ROOT / ".local"
VENV = ROOT / ".venv"
VENV_BIN = VENV / "bin"
SOLR_DIR = ROOT / "config" / "solr"
CONFIGSETS = SOLR_DIR / "configsets"
LAUNCHER_POM = SOLR_DIR / "launcher" / "pom.xml"
LAUNCHER_SOURCE = SOLR_DIR / "launcher" / "Launcher.java"

DEBIAN_PACKAGES = {
    # command or file that proves it -> Debian package
    "postgres": "postgresql",
    "pg_config": "libpq-dev",
    "redis-server": "redis-server",
    "java": "openjdk-17-jdk-headless",
    "javac": "openjdk-17-jdk-headless",
    "mvn": "maven",
    "gcc": "gcc",
}
BROWSER_PACKAGES = {"chromium": "chromium", "chromedriver": "chromium-driver",
                    # Chinese glyphs in the browser tests' screenshots
                    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc": "fonts-noto-cjk"}

SCHEMA_DIR = ROOT / "schemas"
# The demo catalog and tables `make serve` loads (also a harvest file root).
DEMO_DIR = ROOT / "config" / "demo"
NOT_DATASET_SCHEMAS = {"presets.yaml", "organization.yaml", "national_themes.yaml"}
PLUGINS = ("shanghai scheming_datasets scheming_organizations harvest ckan_harvester shanghai_harvest "
           "shanghai_agency_export shanghai_ckan_api shanghai_dcat activity "
           "shanghai_portal datastore dcat shanghai_access")

# Apache ECharts for the statistics page, from the npm registry at a pinned
# version whose tarball must match this integrity (npm view echarts@5.6.0 dist.integrity).
ECHARTS_VERSION = "5.6.0"
ECHARTS_INTEGRITY = "sha512-oTbVTsXfKuEhxftHqL5xprgLoc0k7uScAwtryCgWF6hPYFLRwOUHiFmHGCBKP5NPFNkDVopOieyUqYGH8Fa3kA=="
ECHARTS_TARGET = ROOT / "ckanext-shanghai" / "ckanext" / "shanghai" / "assets" / "vendor" / "echarts.min.js"


def say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


def fail(message: str) -> None:
    print(f"[stack] ERROR: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


# --------------------------------------------------------------------------
# Profiles: what `serve` and `test` run, and where


@dataclass
class Profile:
    name: str
    web_port: int
    solr_port: int
    pg_port: int
    redis_port: int
    database: str
    solr_core: str
    ini: Path
    persistent: bool
    database_url: str | None = None
    redis_url: str | None = None
    solr_url: str | None = None
    state: Path = field(init=False)

    def __post_init__(self):
        self.state = LOCAL / self.name

    def port_variable(self, name: str) -> str:
        """The environment variable that moves this profile's port ``name``
        (PORT, PG_PORT ...): PG_PORT for serve, TEST_PG_PORT for test ..."""
        return name if self.name == "serve" else f"{self.name.upper()}_{name}"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def run(self) -> Path:
        return self.state / "run"


def env_port(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def profile_for(name: str) -> Profile:
    if name == "serve":
        return Profile(
            name="serve",
            web_port=env_port("PORT", 5000),
            solr_port=env_port("SOLR_PORT", 8983),
            pg_port=env_port("PG_PORT", 54320),
            redis_port=env_port("REDIS_PORT", 63790),
            database="ckan",
            solr_core="ckan",
            ini=LOCAL / "ckan.ini",
            persistent=True,
            database_url=os.environ.get("DATABASE_URL"),
            redis_url=os.environ.get("REDIS_URL"),
            solr_url=os.environ.get("SOLR_URL"),
        )
    if name == "test":
        return Profile(
            name="test",
            web_port=env_port("TEST_PORT", 5055),
            solr_port=env_port("TEST_SOLR_PORT", 8984),
            pg_port=env_port("TEST_PG_PORT", 54321),
            redis_port=env_port("TEST_REDIS_PORT", 63791),
            database="ckan_test",
            solr_core="ckan_test",
            ini=LOCAL / "test.ini",
            persistent=False,
            database_url=os.environ.get("TEST_DATABASE_URL"),
            redis_url=os.environ.get("TEST_REDIS_URL"),
            solr_url=os.environ.get("TEST_SOLR_URL"),
        )
    if name == "bench":
        return Profile(
            name="bench",
            web_port=env_port("BENCH_PORT", 5056),
            solr_port=env_port("BENCH_SOLR_PORT", 8985),
            pg_port=env_port("BENCH_PG_PORT", 54322),
            redis_port=env_port("BENCH_REDIS_PORT", 63792),
            database="ckan_bench",
            solr_core="ckan_bench",
            ini=LOCAL / "bench.ini",
            persistent=False,
        )
    fail(f"unknown profile {name!r}")


# --------------------------------------------------------------------------
# Installing


def is_root() -> bool:
    return os.geteuid() == 0


def postgres_bin() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), reverse=True)
    return candidates[0].parent if candidates else None


def have(command: str) -> bool:
    if command == "postgres":
        return postgres_bin() is not None
    if command.startswith("/"):
        return Path(command).exists()
    return shutil.which(command) is not None


def ensure_debian_packages(wanted: dict[str, str]) -> None:
    missing = sorted({package for command, package in wanted.items() if not have(command)})
    if not missing:
        return
    command = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    if not is_root():
        fail("missing system packages; run as root:\n    apt-get update && " + " ".join(command))
    say(f"installing Debian packages: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    still = [c for c in wanted if not have(c)]
    if still:
        fail(f"still missing after apt-get: {', '.join(still)}")


def find_python() -> str:
    for candidate in ("python3.11", "python3.12", "python3.10", "python3"):
        path = shutil.which(candidate)
        if not path:
            continue
        version = subprocess.run(
            [path, "-c", "import sys; print(sys.version_info[:2] >= (3, 10))"],
            capture_output=True, text=True,
        ).stdout.strip()
        if version == "True":
            return path
    fail("CKAN 2.12 needs Python 3.10 or newer (apt-get install python3)")


def file_digest(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_venv(dev: bool) -> None:
    requirements = ROOT / ("requirements-dev.txt" if dev else "requirements.txt")
    stamp = VENV / f".installed-{'dev' if dev else 'run'}"
    wanted = file_digest(ROOT / "requirements.txt", requirements, ROOT / "setup.py")
    if stamp.exists() and stamp.read_text() == wanted and (VENV_BIN / "ckan").exists():
        return
    if not (VENV_BIN / "python").exists():
        python = find_python()
        say(f"creating virtualenv .venv with {python}")
        subprocess.run([python, "-m", "venv", str(VENV)], check=True)
    pip = [str(VENV_BIN / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    say(f"installing Python packages from {requirements.name} (CKAN 2.12 and extensions; a few minutes the first time)")
    subprocess.run([*pip, "-U", "pip", "setuptools", "wheel"], check=True)
    subprocess.run([*pip, "-r", str(requirements)], check=True)
    subprocess.run([*pip, "--no-deps", "-e", str(ROOT)], check=True)
    stamp.write_text(wanted)


def ensure_solr_classpath() -> Path:
    """Resolve Solr 9.10.1 from Maven Central and compile the launcher."""
    solr_build = LOCAL / "solr-launcher"
    classpath = solr_build / "classpath.txt"
    classes = solr_build / "classes"
    solr_build.mkdir(parents=True, exist_ok=True)
    if not classpath.exists() or classpath.stat().st_mtime < LAUNCHER_POM.stat().st_mtime:
        say("resolving Apache Solr 9.10.1 from Maven Central into ~/.m2 (first time: about a minute)")
        subprocess.run(
            ["mvn", "-q", "-B", "-f", str(LAUNCHER_POM), "dependency:build-classpath",
             f"-Dmdep.outputFile={classpath}"],
            check=True,
        )
    compiled = classes / "Launcher.class"
    if not compiled.exists() or compiled.stat().st_mtime < LAUNCHER_SOURCE.stat().st_mtime:
        say("compiling the Solr launcher")
        classes.mkdir(exist_ok=True)
        subprocess.run(
            ["javac", "-d", str(classes), "-cp", classpath.read_text().strip(), str(LAUNCHER_SOURCE)],
            check=True,
        )
    return solr_build


def ensure_echarts() -> None:
    """Vendor echarts.min.js from the pinned npm tarball, integrity checked."""
    stamp = ECHARTS_TARGET.with_suffix(".version")
    if ECHARTS_TARGET.exists() and stamp.exists() and stamp.read_text() == ECHARTS_INTEGRITY:
        return
    say(f"fetching Apache ECharts {ECHARTS_VERSION} from the npm registry")
    import base64
    import tarfile
    with tempfile.TemporaryDirectory() as work:
        subprocess.run(["npm", "pack", f"echarts@{ECHARTS_VERSION}", "--silent"], cwd=work, check=True,
                       stdout=subprocess.DEVNULL)
        tarball = Path(work) / f"echarts-{ECHARTS_VERSION}.tgz"
        digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
        if digest != ECHARTS_INTEGRITY:
            fail(f"echarts-{ECHARTS_VERSION}.tgz has integrity {digest}, expected {ECHARTS_INTEGRITY}")
        with tarfile.open(tarball) as archive:
            member = archive.extractfile("package/dist/echarts.min.js")
            ECHARTS_TARGET.parent.mkdir(parents=True, exist_ok=True)
            ECHARTS_TARGET.write_bytes(member.read())
    stamp.write_text(ECHARTS_INTEGRITY)


def install(profile: Profile, dev: bool, browser: bool = False, load_tool: bool = False) -> None:
    wanted = {"gcc": "gcc", "pg_config": "libpq-dev"}
    if load_tool:
        wanted["wrk"] = "wrk"
    if not profile.database_url:
        wanted["postgres"] = "postgresql"
    if not profile.redis_url:
        wanted["redis-server"] = "redis-server"
    if not profile.solr_url:
        wanted.update({"java": "openjdk-17-jdk-headless", "javac": "openjdk-17-jdk-headless", "mvn": "maven"})
    if browser:
        wanted.update(BROWSER_PACKAGES)
    wanted["npm"] = "npm"
    ensure_debian_packages(wanted)
    ensure_venv(dev)
    ensure_echarts()
    if not profile.solr_url:
        ensure_solr_classpath()


# --------------------------------------------------------------------------
# Processes


class Processes:
    """Children started in their own sessions, stopped in reverse order."""

    def __init__(self, profile: Profile):
        self.profile = profile
        self.started: list[tuple[str, subprocess.Popen, float]] = []

    def start(self, name: str, argv: list[str], *, env: dict | None = None,
              user: str | None = None, stop_timeout: float = 20.0, cwd: Path | None = None) -> subprocess.Popen:
        self.profile.logs.mkdir(parents=True, exist_ok=True)
        self.profile.run.mkdir(parents=True, exist_ok=True)
        log = open(self.profile.logs / f"{name}.log", "ab")
        if user:
            argv = ["runuser", "-u", user, "--", *argv]
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=cwd or ROOT, start_new_session=True,
        )
        (self.profile.run / f"{name}.pid").write_text(str(process.pid))
        # How to start it again: the fault-injection tests restart services.
        (self.profile.run / f"{name}.json").write_text(json.dumps({"argv": argv, "cwd": str(cwd or ROOT)}))
        self.started.append((name, process, stop_timeout))
        return process

    def check_alive(self) -> str | None:
        for name, process, _ in self.started:
            if process.poll() is not None:
                return name
        return None

    def stop_all(self) -> None:
        for name, process, timeout in reversed(self.started):
            pidfile = self.profile.run / f"{name}.pid"
            try:
                current = int(pidfile.read_text().strip())
            except (OSError, ValueError):
                current = process.pid
            if current != process.pid and alive(current):
                # Restarted meanwhile (by a fault-injection test): stop that one too.
                stop_process_group(name, current, timeout)
            stop_process_group(name, process.pid, timeout)
            try:
                process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
            pidfile.unlink(missing_ok=True)
            (self.profile.run / f"{name}.json").unlink(missing_ok=True)
        self.started.clear()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it has exited all the same.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def stop_process_group(name: str, pid: int, timeout: float) -> None:
    """SIGTERM the process group, wait, then SIGKILL what is left."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            break
        time.sleep(0.2)
    else:
        say(f"{name} did not stop within {timeout:.0f}s; killing it")
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop_leftovers(profile: Profile) -> None:
    """Stop processes a killed earlier run of this profile left behind."""
    if not profile.run.exists():
        return
    for pidfile in sorted(profile.run.glob("*.pid")):
        try:
            pid = int(pidfile.read_text().strip())
        except ValueError:
            pidfile.unlink()
            continue
        if alive(pid) and str(ROOT) in _cmdline(pid):
            say(f"stopping {pidfile.stem} left over from an earlier run (pid {pid})")
            stop_process_group(pidfile.stem, pid, 20)
        pidfile.unlink(missing_ok=True)


def _cmdline(pid: int) -> str:
    """A process's command line; every process we start names this checkout."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text(errors="replace").replace("\0", " ")
    except OSError:
        return ""


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def require_free_port(port: int, what: str, variable: str) -> None:
    if not port_free(port):
        fail(f"port {port} for {what} is taken on 127.0.0.1; stop whatever uses it or set {variable}")


def wait_until(check, what: str, timeout: float, process: subprocess.Popen | None = None,
               log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            fail(f"{what} exited with status {process.returncode} while starting\n{tail}")
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.3)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    fail(f"{what} not ready after {timeout:.0f}s\n{tail}")


def http_ok(url: str, timeout: float = 3.0) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            if response.status == 200:
                return response.read()
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return None


# --------------------------------------------------------------------------
# Services


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


# --------------------------------------------------------------------------
# CKAN


def load_secrets(profile: Profile) -> dict:
    """Secrets made once per install (and per test state), kept private."""
    path = LOCAL / f"secrets-{profile.name}.json"
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
    LOCAL.mkdir(exist_ok=True)
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
        "ckanext.dcat.base_uri = " + f"http://127.0.0.1:{profile.web_port}",
    ]


def datastore_permissions(profile: Profile) -> None:
    """Grant the read-only role what `ckan datastore set-permissions` says."""
    if profile.database_url:
        return
    sql = ckan(profile, "datastore", "set-permissions").stdout
    psql = [str(postgres_bin() / "psql"), "-h", "127.0.0.1", "-p", str(profile.pg_port), "-U", "postgres",
            "-v", "ON_ERROR_STOP=1", "-qtA", "-d", f"{profile.database}_datastore"]
    subprocess.run(psql, input=sql, text=True, check=True, capture_output=True)


def render_ini(profile: Profile, database_url: str, redis_url: str, solr_url: str) -> Path:
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
    ]
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
    )
    profile.ini.parent.mkdir(parents=True, exist_ok=True)
    profile.ini.touch(mode=0o600)
    profile.ini.write_text(text, encoding="utf-8")
    harvest_ini(profile).write_text(
        "# The harvest consumers' configuration: the portal's, except that CKAN's\n"
        "# own updates and deletes do not commit Solr one by one; the fetch\n"
        "# consumer commits once per batch (ckanext.shanghai.harvest.index_batch).\n"
        f"[app:main]\nuse = config:{profile.ini.name}\nckan.search.solr_commit = false\n",
        encoding="utf-8")
    return profile.ini


def harvest_ini(profile: Profile) -> Path:
    return profile.ini.with_name(f"{profile.ini.stem}-harvest.ini")


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


def start_services(profile: Profile, procs: Processes) -> Path:
    stop_leftovers(profile)
    database_url = start_postgres(profile, procs)
    redis_url = start_redis(profile, procs)
    solr_url = start_solr(profile, procs)
    ini = render_ini(profile, database_url, redis_url, solr_url)
    say(f"CKAN: config {ini.relative_to(ROOT)}; initialising the database")
    ckan(profile, "db", "init")
    datastore_permissions(profile)
    return ini


def start_web(profile: Profile, procs: Processes) -> subprocess.Popen:
    workers = os.environ.get("WEB_WORKERS", "2")
    require_free_port(profile.web_port, "the web app", profile.port_variable("PORT"))
    say(f"CKAN: starting gunicorn ({workers} workers) on 127.0.0.1:{profile.web_port}")
    web = procs.start("web", [
        str(VENV_BIN / "gunicorn"), "--bind", f"127.0.0.1:{profile.web_port}",
        "--workers", workers, "--threads", os.environ.get("WEB_THREADS", "4"), "--timeout", "120",
        "--graceful-timeout", "10", "--access-logfile", str(profile.logs / "access.log"),
        "ckanext.shanghai.wsgi:application",
    ], env=ckan_env(profile))
    status = f"http://127.0.0.1:{profile.web_port}/api/3/action/status_show"
    wait_until(lambda: http_ok(status), "the web app", 120, web, profile.logs / "web.log")
    return web


def fetch_consumers() -> int:
    """FETCH_CONSUMERS, or one more than the machine has cores: a fetch
    consumer waits on PostgreSQL and Solr for part of every batch, and one
    extra keeps the cores busy meanwhile (on 2 cores, 3 import a third
    faster than 2; a fourth adds nothing)."""
    return int(os.environ.get("FETCH_CONSUMERS") or min((os.cpu_count() or 1) + 1, 8))


def start_ckan_processes(profile: Profile, procs: Processes) -> None:
    env = ckan_env(profile)
    start_web(profile, procs)
    fetchers = fetch_consumers()
    for name, kind in [("harvest-gather", "gather")] + [
            (f"harvest-fetch{'' if n == 0 else n + 1}", "fetch") for n in range(fetchers)]:
        procs.start(name, [str(VENV_BIN / "ckan"), "-c", str(harvest_ini(profile)), "shanghai",
                           "harvest-consumer", kind], env=env)
    procs.start("harvest-scheduler", [str(VENV_BIN / "ckan"), "-c", str(profile.ini), "shanghai",
                                      "harvest-scheduler"], env=env)
    procs.start("jobs-worker", [str(VENV_BIN / "ckan"), "-c", str(profile.ini), "jobs", "worker"], env=env)


def bootstrap_admin(profile: Profile) -> dict:
    values = load_secrets(profile)
    admin_file = LOCAL / f"admin-{profile.name}.json"
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


# --------------------------------------------------------------------------
# Commands


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
        start_services(profile, procs)
        admin = bootstrap_admin(profile)
        start_ckan_processes(profile, procs)
        load_demo(profile)
        say("")
        say(f"portal:    http://127.0.0.1:{profile.web_port}/")
        say(f"API:       http://127.0.0.1:{profile.web_port}/api/3/action/status_show")
        say(f"Solr:      http://127.0.0.1:{profile.solr_port}/solr/ (core {profile.solr_core})")
        say(f"sysadmin:  {admin['name']}  password: {admin['password']}")
        say(f"API token: {admin.get('token', '(see .local/admin-serve.json)')}")
        say(f"logs:      {profile.logs.relative_to(ROOT)}/   config: {profile.ini.relative_to(ROOT)}")
        say("Ctrl-C stops everything.")
        while True:
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
    for child in ("postgres", "redis", "solr", "storage"):
        path = profile.state / child
        if path.is_symlink():
            shutil.rmtree(path.resolve(), ignore_errors=True)
            path.unlink()
        else:
            shutil.rmtree(path, ignore_errors=True)


def run_on_fresh_stack(profile: Profile, what: str, commands: list[list[str]], env: dict | None = None,
                       web: bool = False) -> int:
    """Start a throw-away profile's services from empty (and the web app if
    ``web``), run each command with CKAN_INI set, stop the services; returns
    the first non-zero exit status (later commands still run)."""
    procs = Processes(profile)
    reset_state(profile)
    try:
        start_services(profile, procs)
        if web:
            start_web(profile, procs)
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


BENCHMARKS = ("harvest_bench.py", "datastore_bench.py", "city_scale_bench.py")


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
        print(__doc__)
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
        for name in rest or ["serve", "test"]:
            stop_leftovers(profile_for(name))
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
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
