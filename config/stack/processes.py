"""Starting, watching and stopping the stack's processes, each in its own process group."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from stack.profiles import Profile, ROOT, fail, say


class Processes:
    """Children started in their own sessions, stopped in reverse order."""

    def __init__(self, profile: Profile):
        self.profile = profile
        self.started: list[tuple[str, subprocess.Popen, float]] = []
        # One of several doing the same work (a SolrCloud node): its exit
        # does not stop the stack; `replace_lost` starts it again.
        self.redundant: dict[str, dict] = {}
        # A demo extra (the feed simulator): its exit, or someone stopping
        # it, leaves the stack running; it is not started again.
        self.optional: set[str] = set()

    def start(self, name: str, argv: list[str], *, env: dict | None = None,
              user: str | None = None, stop_timeout: float = 20.0, cwd: Path | None = None,
              redundant: bool = False, optional: bool = False) -> subprocess.Popen:
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
        self.started = [entry for entry in self.started if entry[0] != name]
        self.started.append((name, process, stop_timeout))
        if optional:
            self.optional.add(name)
        if redundant:
            self.redundant[name] = {"argv": argv, "env": env, "stop_timeout": stop_timeout, "cwd": cwd}
        return process

    def check_alive(self) -> str | None:
        """The name of a process that exited and that the stack cannot do without."""
        for name, process, _ in self.started:
            if name not in self.redundant and name not in self.optional and process.poll() is not None:
                return name
        return None

    def ended_optional(self) -> list[str]:
        """Optional processes that exited since the last call (each named once)."""
        ended = [name for name, process, _ in self.started
                 if name in self.optional and process.poll() is not None]
        self.optional.difference_update(ended)
        for name in ended:
            (self.profile.run / f"{name}.pid").unlink(missing_ok=True)
            (self.profile.run / f"{name}.json").unlink(missing_ok=True)
        self.started = [entry for entry in self.started if entry[0] not in ended]
        return ended

    def replace_lost(self) -> list[str]:
        """Start again every redundant process that exited (unless something
        else, a test, already did); returns their names."""
        lost = []
        for name, process, _ in list(self.started):
            if name not in self.redundant or process.poll() is None:
                continue
            try:
                if alive(int((self.profile.run / f"{name}.pid").read_text().strip())):
                    continue
            except (OSError, ValueError):
                pass
            options = self.redundant[name]
            self.start(name, options["argv"], env=options["env"], stop_timeout=options["stop_timeout"],
                       cwd=options["cwd"], redundant=True)
            lost.append(name)
        return lost

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


def _processes():
    """(pid, state, parent pid, process group) of every process, from /proc."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, parent, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):
            continue
        yield int(stat.parent.name), state, int(parent), int(group)


def _group_running(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still runs (zombies, dead
    but not yet reaped, do not count)."""
    return any(state != "Z" and group == pgid for _pid, state, _parent, group in _processes())


def _group_ended(pgid: int, seconds: float) -> bool:
    """Wait up to ``seconds`` for every process of group ``pgid`` to end;
    whether they did."""
    deadline = time.monotonic() + seconds
    while _group_running(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


# How each service asks to be stopped, where SIGTERM is not it: PostgreSQL
# takes SIGTERM as a "smart" shutdown that waits for every client to leave;
# SIGINT is its fast shutdown (open transactions rolled back, data safe).
STOP_SIGNALS = {"postgres": signal.SIGINT}


def stop_process_group(name: str, pid: int, timeout: float) -> None:
    """Ask the process group to stop, wait until every process of it has
    ended (not only its leader: a postmaster still shutting down keeps its
    lock file, so the next start would fail), then SIGKILL what is left.

    A service run under runuser (PostgreSQL, when we are root) gets the
    signal itself: runuser answers any signal by passing SIGTERM on and
    SIGKILLing its child two seconds later, too soon for a database with
    clients still connected."""
    stop = STOP_SIGNALS.get(name, signal.SIGTERM)
    try:
        if _cmdline(pid).startswith("runuser "):
            children = [child for child, _state, parent, _group in _processes() if parent == pid]
            for child in children:
                os.kill(child, stop)
            if not children:
                os.killpg(pid, stop)
        else:
            os.killpg(pid, stop)
    except ProcessLookupError:
        return
    if _group_ended(pid, timeout):
        return
    say(f"{name} did not stop within {timeout:.0f}s; killing it")
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    _group_ended(pid, 10)


def stop_leftovers(profile: Profile) -> None:
    """Stop processes a killed earlier run of this profile left behind."""
    if not profile.run.exists():
        return
    for pidfile in sorted(profile.run.glob("*.pid")):
        try:
            pid = int(pidfile.read_text().strip())
        except FileNotFoundError:
            continue  # its run, stopping meanwhile, removed it
        except ValueError:
            pidfile.unlink(missing_ok=True)
            continue
        if alive(pid) and _ours(pid):
            say(f"stopping {pidfile.stem} left over from an earlier run (pid {pid})")
            stop_process_group(pidfile.stem, pid, 20)
        pidfile.unlink(missing_ok=True)


def _ours(pid: int) -> bool:
    """Whether ``pid`` is a process this checkout started: its command line
    names the checkout, or (Redis rewrites its command line to its address)
    its working directory lies in it."""
    if str(ROOT) in _cmdline(pid):
        return True
    try:
        return os.readlink(f"/proc/{pid}/cwd").startswith(str(ROOT) + os.sep)
    except OSError:
        return False


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


def require_free_port(port: int, what: str, variable: str, patience: float = 65.0) -> None:
    """Fail unless ``port`` is free. Ports from 32768 to 60999 (PostgreSQL's
    54320-54322 among them) lie in Linux's range for the local end of
    outgoing connections: a client connection that happened to take one
    holds it, closed, for 60 s (TIME_WAIT), and a server cannot bind it
    meanwhile. The port is asked again for ``patience`` seconds (a
    minute's TIME_WAIT and a little) before a failure."""
    deadline = time.monotonic() + patience
    while not port_free(port):
        if time.monotonic() > deadline:
            fail(f"port {port} for {what} is taken on 127.0.0.1; stop whatever uses it or set {variable}")
        time.sleep(0.5)


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
