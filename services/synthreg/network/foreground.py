"""A registry's nodes kept in the foreground: the main process of its node container.

Called by ``synthreg registry node run`` (deploy/docker-compose.yml's ``node`` service).
It starts the orderer and peer with the same steps as ``registry node up``
(:meth:`RegistryLauncher.nodes_up`) and, once the registry has joined, its chaincode
servers again (:meth:`RegistryLauncher.restart_chaincode_servers`), then waits. The
admin commands (``registry join``, ``consortium commit``, ``keys ...``) run beside it in
the same container (``podman exec``), so the launcher's pid files, its orderer restart at
the join and the chaincode servers it starts there all live in one process namespace.

It reaps the children it inherits, and returns 0 after stopping every node process on
SIGTERM/SIGINT, or 1 (after stopping the rest) when the orderer or the peer was found not
running on two checks in a row, so the container's restart policy brings the nodes back.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from pathlib import Path

from synthreg.network import process
from synthreg.network.onboarding import RegistryLauncher

CHECK_INTERVAL = 5.0
"""seconds between liveness checks; a join restarts the orderer in well under this"""


def _reap() -> None:
    """Collect every exited child (orphans of `podman exec` sessions are ours too)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def run_nodes(launcher: RegistryLauncher, sample_dir: Path, stop: threading.Event | None = None) -> int:
    """Start the registry's nodes and keep them until ``stop`` is set (by SIGTERM/SIGINT
    when ``stop`` is None) or a node dies; see the module docstring for the exit codes."""
    if stop is None:
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    launcher.nodes_up(sample_dir)
    launcher.restart_chaincode_servers()
    launcher.log(f"{launcher.org.msp_id}: nodes running in the foreground (SIGTERM stops them)")
    run_dir = launcher.cfg.run_dir
    nodes = [f"orderer-{launcher.org.name}", f"peer-{launcher.org.name}"]
    missed: set[str] = set()
    code = 0
    while not stop.wait(CHECK_INTERVAL):
        _reap()
        down = {n for n in nodes if process.running_pid(run_dir, n) is None}
        if down & missed:
            launcher.log(f"{', '.join(sorted(down & missed))} not running: stopping the rest")
            code = 1
            break
        missed = down
    stopped = launcher.down(wipe=False)
    with contextlib.suppress(ChildProcessError):
        _reap()
    launcher.log(f"stopped {', '.join(stopped) or 'nothing'}")
    return code


__all__ = ["CHECK_INTERVAL", "run_nodes"]
