"""A registry's supervisor: keeps its three app processes running (bounded restarts with backoff).

Who runs it: ``synthreg registry up`` starts one per registry (``synthreg registry
supervise``, its own process, pid file ``state/run/supervisor.pid``); it starts
the generator, discriminator and merger and restarts one that died (killed,
crashed: any exit other than 0) after a backoff of 1, 2, 4 … 30 s, at most
``max_restarts`` times in ``window_s`` seconds; then it gives up on that app and
says so. An app that exits with 0 (``--exit-after`` runs done) is not restarted;
when no app is left the supervisor exits too. SIGTERM (``registry down``) stops
the apps and then the supervisor.

Where data lives: ``state/apps/supervisor.json`` (per app: restarts, last exit,
given up), read by ``registry status``; the apps' own pid, log and status files
as :mod:`synthreg.apps.registry` describes. A restarted app resumes the run it
was in from its checkpoint and the ledger (:mod:`synthreg.apps.checkpoint`).
"""

from __future__ import annotations

import json
import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthreg.apps.base import ROLES
from synthreg.network import process
from synthreg.workspace import atomic_write

__all__ = ["AppSlot", "Supervisor", "supervisor_file"]

log = logging.getLogger("synthreg.supervisor")


def supervisor_file(state: Path) -> Path:
    return state / "apps" / "supervisor.json"


@dataclass
class AppSlot:
    role: str
    spawned: process.Spawned | None = None
    restarts: list[float] = field(default_factory=list)
    last_exit: int | None = None
    finished: bool = False
    given_up: bool = False
    restart_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"restarts": len(self.restarts), "last_exit": self.last_exit, "finished": self.finished,
                "given_up": self.given_up, "pid": self.spawned.pid if self.spawned else None}


class Supervisor:
    """Runs ``specs`` (role -> ProcessSpec) and restarts the ones that die."""

    def __init__(self, specs: dict[str, process.ProcessSpec], state: Path, run_dir: Path, logs_dir: Path,
                 max_restarts: int = 10, window_s: float = 600.0, max_backoff_s: float = 30.0) -> None:
        self.specs, self.state, self.run_dir, self.logs_dir = specs, state, run_dir, logs_dir
        self.max_restarts, self.window_s, self.max_backoff_s = max_restarts, window_s, max_backoff_s
        self.slots = {role: AppSlot(role) for role in specs}
        self._stopping = False

    def _stop(self, *_: Any) -> None:
        self._stopping = True

    def _write(self) -> None:
        atomic_write(supervisor_file(self.state), json.dumps({r: s.to_dict() for r, s in self.slots.items()}))

    def _start(self, slot: AppSlot) -> None:
        slot.spawned = process.spawn(self.specs[slot.role], self.run_dir, self.logs_dir)
        slot.restart_at = None

    def run(self, poll_s: float = 0.2) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for slot in self.slots.values():
            self._start(slot)
        self._write()
        while not self._stopping:
            now = time.monotonic()
            for slot in self.slots.values():
                if slot.finished or slot.given_up:
                    continue
                if slot.restart_at is not None:
                    if now >= slot.restart_at:
                        log.warning("restarting %s (restart %d)", slot.role, len(slot.restarts))
                        self._start(slot)
                        self._write()
                    continue
                proc = slot.spawned.proc if slot.spawned else None
                rc = proc.poll() if proc is not None else None
                if rc is None:
                    continue
                slot.last_exit = rc
                if rc == 0:
                    slot.finished = True
                    log.info("%s exited cleanly", slot.role)
                else:
                    slot.restarts = [t for t in slot.restarts if now - t < self.window_s] + [now]
                    if len(slot.restarts) > self.max_restarts:
                        slot.given_up = True
                        log.error("%s died %d times in %.0f s (last exit %s): giving up on it",
                                  slot.role, len(slot.restarts), self.window_s, rc)
                    else:
                        backoff = min(self.max_backoff_s, 2.0 ** (len(slot.restarts) - 1))
                        slot.restart_at = now + backoff
                        log.warning("%s died (exit %s); restarting in %.0f s", slot.role, rc, backoff)
                self._write()
            if all(s.finished or s.given_up for s in self.slots.values()):
                break
            time.sleep(poll_s)
        process.stop_all(self.run_dir, list(self.slots), grace=10.0)
        self._write()
        return 0


def supervise(specs: dict[str, process.ProcessSpec], state: Path, run_dir: Path, logs_dir: Path) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s supervisor %(levelname)s %(message)s", force=True)
    missing = set(ROLES) - set(specs)
    if missing:
        raise ValueError(f"no process spec for {sorted(missing)}")
    return Supervisor(specs, state, run_dir, logs_dir).run()
