"""Start, health-check and stop the network's processes (one log + pid file each).

Used by :mod:`synthreg.network.launcher`. A process is started detached (its
own session) with stdout/stderr appended to ``logs/<name>.log`` and its PID in
``run/<name>.pid``. Readiness is a condition, never a sleep: an HTTPS
``/healthz`` answer (peers, orderers) or an accepting TCP port (chaincode
servers), polled until a deadline, failing early with the log tail if the
process died.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class ProcessStartError(RuntimeError):
    """A network process exited or never became healthy; carries its log tail."""

    def __init__(self, name: str, reason: str, log_path: Path) -> None:
        self.name, self.reason, self.log_path = name, reason, log_path
        super().__init__(f"{name}: {reason}\n--- last lines of {log_path} ---\n{log_tail(log_path)}")


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def log_lines(path: Path, want: Callable[[str], bool], lines: int, max_bytes: int | None = None) -> list[str]:
    """The last ``lines`` lines of a process log that ``want`` picks (judged on the raw
    line), without terminal colours; only the last ``max_bytes`` of the log are read when
    given. ``[]`` when the log is missing."""
    try:
        with path.open("rb") as f:
            if max_bytes is not None:
                f.seek(max(0, path.stat().st_size - max_bytes))
            text = f.read().decode(errors="replace")
    except OSError:
        return []
    picked = [plain(line) for line in text.splitlines() if want(line)]
    return picked[-lines:] if lines else []


def plain(line: str) -> str:
    """A log line without its terminal colours (Fabric colours its level names)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", line).strip()


@dataclass(frozen=True)
class Health:
    """How to tell a process is ready: an HTTPS healthz URL and/or a TCP port.

    When both are given both must answer: a Fabric node's operations endpoint
    (``/healthz``) comes up before its gRPC listener, so a peer can report
    healthy while clients are still refused on its main port.
    """

    url: str | None = None
    ca_file: Path | None = None
    tcp: tuple[str, int] | None = None
    tcp_tls: bool = False
    """complete a TLS handshake on ``tcp`` (trusting ``ca_file``), not just connect:
    a bound listener accepts connections before the server serves them"""
    ready_file: Path | None = None
    """a file the process writes once it is ready (the apps' status file; the
    starter removes a stale one first)"""


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: list[str]
    env: dict[str, str]
    health: Health
    cwd: Path | None = None
    ports: tuple[int, ...] = ()
    """ports the process will listen on at ``host`` (checked free before start)"""
    host: str = "127.0.0.1"


class PortInUseError(RuntimeError):
    """A port the process needs is taken by some other process."""

    def __init__(self, name: str, port: int, host: str = "127.0.0.1") -> None:
        self.name, self.port = name, port
        super().__init__(f"{name}: port {host}:{port} is already in use by another process "
                         "(another network running? choose another --base-port)")


def _check_free(name: str, ports: tuple[int, ...], host: str = "127.0.0.1") -> None:
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError:
                raise PortInUseError(name, port, host) from None


def _pid_file(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.pid"


def _alive(pid: int, exe_hint: str) -> bool:
    """True if ``pid`` runs and is ours (its command line names ``exe_hint``)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    except (FileNotFoundError, IndexError):
        return False
    return exe_hint.encode() in cmdline


def running_pid(run_dir: Path, name: str) -> int | None:
    """PID of the named process if it is running, else None."""
    pf = _pid_file(run_dir, name)
    try:
        pid_s, exe = pf.read_text().split("\n", 1)
        pid = int(pid_s)
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid, exe.strip()) else None


def is_healthy(health: Health, timeout: float = 1.0) -> bool:
    if health.ready_file is not None and not health.ready_file.exists():
        return False
    if health.url:
        ctx = ssl.create_default_context(cafile=str(health.ca_file) if health.ca_file else None)
        try:
            with urllib.request.urlopen(health.url, context=ctx, timeout=timeout) as resp:
                if resp.status != 200:
                    return False
        except (urllib.error.URLError, OSError, ssl.SSLError):
            return False
    if health.tcp:
        try:
            with socket.create_connection(health.tcp, timeout=timeout) as sock:
                if health.tcp_tls:
                    ctx = ssl.create_default_context(
                        cafile=str(health.ca_file) if health.ca_file else None)
                    ctx.set_alpn_protocols(["h2"])
                    with ctx.wrap_socket(sock, server_hostname=health.tcp[0]):
                        pass
        except (OSError, ssl.SSLError):
            return False
    return True


def start(spec: ProcessSpec, run_dir: Path, logs_dir: Path, timeout: float = 60.0) -> int:
    """Start ``spec`` unless it already runs; return its PID once healthy."""
    return wait_ready(spawn(spec, run_dir, logs_dir), timeout)


@dataclass(frozen=True)
class Spawned:
    """A process started (or found running) by :func:`spawn`, not yet known to be healthy."""

    spec: ProcessSpec
    pid: int
    run_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes] | None


def spawn(spec: ProcessSpec, run_dir: Path, logs_dir: Path) -> Spawned:
    """Start ``spec`` unless it already runs (pid file and log as :func:`start`); do not wait."""
    run_dir.mkdir(parents=True, exist_ok=True)
    logs_dir.mkdir(parents=True, exist_ok=True)
    log_path = logs_dir / f"{spec.name}.log"
    pid = running_pid(run_dir, spec.name)
    proc: subprocess.Popen[bytes] | None = None
    if pid is None:
        _check_free(spec.name, spec.ports, spec.host)
        if spec.health.ready_file is not None:
            spec.health.ready_file.unlink(missing_ok=True)
        env = {**os.environ, **spec.env}
        with open(log_path, "ab") as log:
            log.write(f"\n==== start {time.strftime('%Y-%m-%dT%H:%M:%S')} {spec.argv[0]} ====\n".encode())
            log.flush()
            proc = subprocess.Popen(
                spec.argv, env=env, cwd=spec.cwd, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        pid = proc.pid
        _pid_file(run_dir, spec.name).write_text(f"{pid}\n{spec.argv[0]}\n")
    return Spawned(spec, pid, run_dir, log_path, proc)


def wait_ready(started: Spawned, timeout: float = 60.0) -> int:
    """Return ``started``'s PID once its health check passes; raises :class:`ProcessStartError`
    if it exits first or is not healthy after ``timeout`` seconds."""
    spec, proc = started.spec, started.proc
    deadline = time.monotonic() + timeout
    while not is_healthy(spec.health):
        # our own child: ask it (its /proc cmdline is the parent's until exec)
        exited = proc.poll() is not None if proc is not None else running_pid(started.run_dir, spec.name) is None
        if exited:
            raise ProcessStartError(spec.name, "process exited during start-up", started.log_path)
        if time.monotonic() > deadline:
            raise ProcessStartError(spec.name, f"not healthy after {timeout:.0f}s", started.log_path)
        time.sleep(0.1)  # poll interval of the readiness condition above
    return started.pid


def stop(run_dir: Path, name: str, grace: float = 10.0) -> bool:
    """SIGTERM (then SIGKILL after ``grace``) the named process; True if one was running."""
    return bool(stop_all(run_dir, [name], grace))


def stop_all(run_dir: Path, names: list[str], grace: float = 10.0) -> list[str]:
    """SIGTERM every named process at once, SIGKILL those still running after
    ``grace``; returns the names that were running."""
    pids = {n: running_pid(run_dir, n) for n in names}
    running = {n: p for n, p in pids.items() if p is not None}
    for pid in running.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(running_pid(run_dir, n) is not None for n in running) and time.monotonic() < deadline:
        time.sleep(0.05)
    for n, pid in running.items():
        if running_pid(run_dir, n) is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        # reap if it was our child (same interpreter started it)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    for n in names:
        _pid_file(run_dir, n).unlink(missing_ok=True)
    return list(running)


def known_processes(run_dir: Path) -> list[str]:
    return sorted(p.stem for p in run_dir.glob("*.pid")) if run_dir.exists() else []
