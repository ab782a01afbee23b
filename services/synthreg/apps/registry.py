"""One registry's stack: its generator, discriminator and merger as three OS processes.

Who calls: ``synthreg registry up|down|status|logs`` (a registry's IT staff),
the demo and the integration tests. It starts and signs for exactly one
registry: the processes it starts load only that org's app identities.

Where things live (``state`` = ``<network home>/registries/<MSP>`` unless given):
``state/run/<role>.pid``, ``state/logs/<role>.log``, ``state/apps/<role>.status.json``
(written by each app; its appearance is the health check), ``state/workspace/``,
``state/bundles/<run>/``. ``up`` is idempotent: an app that already runs is
left alone.

What fails when: :class:`RegistryError` for a missing data file or an org the
network profile does not know; a process that exits during start-up raises
:class:`synthreg.network.process.ProcessStartError` with its log's tail.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthreg.apps.base import ROLES, registry_state_dir
from synthreg.network import process
from synthreg.network.profile import load_profile

__all__ = ["AppStatus", "RegistryError", "RegistryStack"]


class RegistryError(ValueError):
    """The registry's stack cannot be started as asked."""


@dataclass(frozen=True)
class AppStatus:
    role: str
    pid: int | None
    alive: bool
    status: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "pid": self.pid, "alive": self.alive, **self.status}


class RegistryStack:
    """The three app processes of registry ``msp`` on the network at ``network_home``."""

    def __init__(self, network_home: Path, msp: str, state: Path | None = None) -> None:
        profile = load_profile(network_home)
        if msp not in profile.msp_ids:
            raise RegistryError(f"{msp} is not a registry of the network at {network_home} "
                                f"(known: {', '.join(profile.msp_ids)})")
        self.network_home, self.msp = network_home, msp
        self.state = state or registry_state_dir(network_home, msp)
        self.run_dir, self.logs_dir = self.state / "run", self.state / "logs"

    def status_file(self, role: str) -> Path:
        return self.state / "apps" / f"{role}.status.json"

    def _spec(self, role: str, data: Path | None, exit_after: int | None) -> process.ProcessSpec:
        argv = [sys.executable, "-m", "synthreg.cli.main", "app", role, "--org", self.msp,
                "--home", str(self.network_home), "--state", str(self.state)]
        if data is not None and role != "generator":  # the generator never reads real data
            argv += ["--data", str(data)]
        if exit_after is not None:
            argv += ["--exit-after", str(exit_after)]
        return process.ProcessSpec(name=role, argv=argv, env={"PYTHONUNBUFFERED": "1"},
                                   health=process.Health(ready_file=self.status_file(role)))

    def up(self, data: Path, exit_after: int | None = None, timeout: float = 120.0) -> dict[str, int]:
        """Start (or keep) the three apps; returns role -> pid once each is ready."""
        data = data.resolve()
        if not data.is_file():
            raise RegistryError(f"data file {data} does not exist")
        spawned = [process.spawn(self._spec(role, data, exit_after), self.run_dir, self.logs_dir)
                   for role in ROLES]  # all three start side by side
        return {s.spec.name: process.wait_ready(s, timeout) for s in spawned}

    def down(self, grace: float = 10.0) -> list[str]:
        """Stop the apps (SIGTERM, then SIGKILL); returns the roles that were running."""
        return process.stop_all(self.run_dir, list(ROLES), grace)

    def status(self) -> list[AppStatus]:
        out = []
        for role in ROLES:
            pid = process.running_pid(self.run_dir, role)
            try:
                st = json.loads(self.status_file(role).read_text())
            except (FileNotFoundError, ValueError):
                st = {}
            out.append(AppStatus(role, pid, pid is not None, st))
        return out

    def log_path(self, role: str) -> Path:
        return self.logs_dir / f"{role}.log"

    def wait_idle(self, run: str, timeout: float) -> dict[str, str]:
        """Block until every app has finished (or failed) ``run``; returns role -> outcome."""
        deadline = time.monotonic() + timeout
        markers = self.state / "runs" / run.replace("/", "_")
        while True:
            outcome = {}
            for role in ROLES:
                for kind in ("done", "failed"):
                    if (markers / f"{role}.{kind}").exists():
                        outcome[role] = kind
            if len(outcome) == len(ROLES):
                return outcome
            dead = [s.role for s in self.status() if not s.alive and s.role not in outcome]
            if dead:
                raise RegistryError(f"{self.msp}: apps {dead} exited before finishing run {run} "
                                    f"(see {self.logs_dir})")
            if time.monotonic() > deadline:
                raise RegistryError(f"{self.msp}: run {run} not finished by every app after {timeout:.0f}s")
            time.sleep(0.5)
