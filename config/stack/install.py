"""Installing what is missing: Debian packages, the virtualenv, the Solr jars and launcher, ECharts."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from stack.profiles import (
    AXE_INTEGRITY, AXE_TARGET, AXE_VERSION, BROWSER_PACKAGES, ECHARTS_INTEGRITY, ECHARTS_TARGET,
    ECHARTS_VERSION, LAUNCHER_POM, LAUNCHER_SOURCE, LEAFLET_INTEGRITY, LEAFLET_TARGETS, LEAFLET_VERSION,
    LIGHTHOUSE_DIR, LIGHTHOUSE_VERSION, LOCAL, Profile, ROOT, VENV, VENV_BIN, fail, say, web_hosts,
)


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


def vendor_from_npm(package: str, version: str, integrity: str, member: str, target: Path) -> None:
    """Copy one file of a pinned npm tarball to ``target``, the tarball's
    integrity checked (``npm view PACKAGE@VERSION dist.integrity``)."""
    stamp = target.with_suffix(".version")
    if target.exists() and stamp.exists() and stamp.read_text() == integrity:
        return
    say(f"fetching {package} {version} from the npm registry")
    import base64
    import tarfile
    with tempfile.TemporaryDirectory() as work:
        subprocess.run(["npm", "pack", f"{package}@{version}", "--silent"], cwd=work, check=True,
                       stdout=subprocess.DEVNULL)
        tarball = Path(work) / f"{package}-{version}.tgz"
        digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
        if digest != integrity:
            fail(f"{package}-{version}.tgz has integrity {digest}, expected {integrity}")
        with tarfile.open(tarball) as archive:
            content = archive.extractfile(f"package/{member}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content.read())
    stamp.write_text(integrity)


def ensure_echarts() -> None:
    """Vendor echarts.min.js for the statistics page."""
    vendor_from_npm("echarts", ECHARTS_VERSION, ECHARTS_INTEGRITY, "dist/echarts.min.js", ECHARTS_TARGET)


def ensure_leaflet() -> None:
    """Vendor Leaflet's script and stylesheet for the table maps."""
    for member, target in LEAFLET_TARGETS.items():
        vendor_from_npm("leaflet", LEAFLET_VERSION, LEAFLET_INTEGRITY, member, target)


def ensure_axe() -> None:
    """axe-core for the browser tests' accessibility audit, in the project's
    state (.local/), so that no test fetches it."""
    vendor_from_npm("axe-core", AXE_VERSION, AXE_INTEGRITY, "axe.min.js", AXE_TARGET)


def ensure_lighthouse() -> None:
    """npm lighthouse for `make bench BENCH=pages`, in the project's state."""
    stamp = LIGHTHOUSE_DIR / ".installed"
    if stamp.exists() and stamp.read_text() == LIGHTHOUSE_VERSION:
        return
    say(f"installing lighthouse {LIGHTHOUSE_VERSION} from the npm registry into {LIGHTHOUSE_DIR.relative_to(ROOT)}")
    LIGHTHOUSE_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(LIGHTHOUSE_DIR),
                    f"lighthouse@{LIGHTHOUSE_VERSION}"], check=True, stdout=subprocess.DEVNULL)
    stamp.write_text(LIGHTHOUSE_VERSION)


def install(profile: Profile, dev: bool, browser: bool = False, load_tool: bool = False) -> None:
    wanted = {"gcc": "gcc", "pg_config": "libpq-dev"}
    if load_tool:
        wanted["wrk"] = "wrk"
        wanted.update(BROWSER_PACKAGES)  # Lighthouse drives Debian's chromium
    if not profile.database_url:
        wanted["postgres"] = "postgresql"
    if not profile.redis_url:
        wanted["redis-server"] = "redis-server"
    if not profile.solr_url:
        wanted.update({"java": "openjdk-17-jdk-headless", "javac": "openjdk-17-jdk-headless", "mvn": "maven"})
    if browser:
        wanted.update(BROWSER_PACKAGES)
    if profile.solr_mode == "cloud" or dev or (profile.name == "serve" and web_hosts() > 1):
        # The balancer in front of SolrCloud's nodes and the proxy in front of
        # several web hosts (the tests start both for their own tiers).
        wanted["nginx"] = "nginx"
    wanted["npm"] = "npm"
    ensure_debian_packages(wanted)
    ensure_venv(dev)
    ensure_echarts()
    ensure_leaflet()
    if browser:
        ensure_axe()
    if load_tool:
        ensure_lighthouse()
    if not profile.solr_url:
        ensure_solr_classpath()
