"""Where things are and what each profile (serve, test, bench) runs: paths, ports, databases, the plugin list."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
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
           "shanghai_portal datastore dcat shanghai_access shanghai_desk shanghai_realtime shanghai_keys "
           "shanghai_realtime_pull")

# Apache ECharts for the statistics page, from the npm registry at a pinned
# version whose tarball must match this integrity (npm view echarts@5.6.0 dist.integrity).
ECHARTS_VERSION = "5.6.0"
ECHARTS_INTEGRITY = "sha512-oTbVTsXfKuEhxftHqL5xprgLoc0k7uScAwtryCgWF6hPYFLRwOUHiFmHGCBKP5NPFNkDVopOieyUqYGH8Fa3kA=="
ECHARTS_TARGET = ROOT / "ckanext-shanghai" / "ckanext" / "shanghai" / "assets" / "vendor" / "echarts.min.js"
# Leaflet for the map of a table with coordinates (npm view leaflet@1.9.4 dist.integrity):
# its script and its stylesheet, vendored beside ECharts.
LEAFLET_VERSION = "1.9.4"
LEAFLET_INTEGRITY = "sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA=="
LEAFLET_TARGETS = {"dist/leaflet.js": ECHARTS_TARGET.with_name("leaflet.js"),
                   "dist/leaflet.css": ECHARTS_TARGET.with_name("leaflet.css")}
# axe-core, the accessibility rules the browser tests run on every page type
# (npm view axe-core@4.11.0 dist.integrity); kept in the project's state.
AXE_VERSION = "4.11.0"
AXE_INTEGRITY = "sha512-ilYanEU8vxxBexpJd8cWM4ElSQq4QctCLKih0TSfjIfCQTeyH/6zVrmIJfLPrKTKJRbiG+cfnZbQIjAlJmF1jQ=="
AXE_TARGET = LOCAL / "npm" / "axe-core" / "axe.min.js"
# Lighthouse for `make bench BENCH=pages` (bench/pages_bench.py).
LIGHTHOUSE_VERSION = "12.8.2"
LIGHTHOUSE_DIR = LOCAL / "npm" / "lighthouse"


def say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


def fail(message: str) -> None:
    print(f"[stack] ERROR: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


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
    # The real-time stream server (ckan shanghai-realtime streams).
    stream_port: int = 5010
    # The first of the web hosts' own ports when WEB_HOSTS > 1 (the proxy
    # then takes web_port); host n listens on web_host_port + n - 1.
    web_host_port: int = 5001
    # "single" (one Solr core) or "cloud" (ZooKeeper, several nodes, a
    # collection of 2 shards x 2 replicas behind a balancer): SOLR_MODE.
    solr_mode: str = "single"
    state: Path = field(init=False)

    def __post_init__(self):
        self.state = LOCAL / self.name
        if self.solr_mode not in ("single", "cloud"):
            fail(f"SOLR_MODE is {self.solr_mode!r}; it can be single or cloud")

    def port_variable(self, name: str) -> str:
        """The environment variable that moves this profile's port ``name``
        (PORT, PG_PORT ...): PG_PORT for serve, TEST_PG_PORT for test ..."""
        return name if self.name == "serve" else f"{self.name.upper()}_{name}"

    def web_host(self, number: int) -> "WebHost":
        """Web host ``number`` (1, 2 ...) of this profile: its name, port and ini."""
        name = f"host{number}"
        return WebHost(name=name, port=self.web_host_port + number - 1,
                       ini=self.ini.with_name(f"{self.ini.stem}-{name}.ini"), process=f"web-{name}")

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def run(self) -> Path:
        return self.state / "run"


@dataclass(frozen=True)
class WebHost:
    """One web process as a host of its own would run it: ``name`` goes into
    its ini (ckanext.shanghai.web.host_name) and its answers' X-Served-By,
    ``process`` names its log (logs/web-host1.log) and pid file."""

    name: str
    port: int
    ini: Path
    process: str


def web_hosts() -> int:
    """WEB_HOSTS: how many web hosts `make serve` starts (1: gunicorn on PORT
    alone; more: each on its own port, nginx on PORT in front)."""
    value = os.environ.get("WEB_HOSTS", "").strip() or "1"
    if not value.isdigit() or not 1 <= int(value) <= 9:
        fail(f"WEB_HOSTS 应为 1 到 9 的整数 / WEB_HOSTS must be a whole number from 1 to 9, not {value!r}")
    return int(value)


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
            stream_port=env_port("STREAM_PORT", 5010),
            web_host_port=env_port("WEB_HOST_PORT", 5001),
            database="ckan",
            solr_core="ckan",
            ini=LOCAL / "ckan.ini",
            persistent=True,
            database_url=os.environ.get("DATABASE_URL"),
            redis_url=os.environ.get("REDIS_URL"),
            solr_url=os.environ.get("SOLR_URL"),
            solr_mode=os.environ.get("SOLR_MODE") or "single",
        )
    if name == "test":
        return Profile(
            name="test",
            web_port=env_port("TEST_PORT", 5055),
            solr_port=env_port("TEST_SOLR_PORT", 8984),
            pg_port=env_port("TEST_PG_PORT", 54321),
            redis_port=env_port("TEST_REDIS_PORT", 63791),
            stream_port=env_port("TEST_STREAM_PORT", 5065),
            web_host_port=env_port("TEST_WEB_HOST_PORT", 5057),
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
            stream_port=env_port("BENCH_STREAM_PORT", 5066),
            web_host_port=env_port("BENCH_WEB_HOST_PORT", 5067),
            database="ckan_bench",
            solr_core="ckan_bench",
            ini=LOCAL / "bench.ini",
            persistent=False,
            solr_mode=os.environ.get("SOLR_MODE") or "single",
        )
    fail(f"unknown profile {name!r}")
