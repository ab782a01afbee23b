"""One registry's stack: its generator, discriminator and merger as three OS processes.

Who calls: ``synthreg registry up|down|status|logs`` (a registry's IT staff),
the demo and the integration tests. It starts and signs for exactly one
registry: the processes it starts load only that org's app identities.

Where things live (``state`` = ``<network home>/registries/<MSP>`` unless given):
``state/run/<role>.pid``, ``state/logs/<role>.log``, ``state/apps/<role>.status.json``
(written by each app; its appearance is the health check), ``state/workspace/``,
``state/bundles/<run>/``; the supervisor (:mod:`synthreg.apps.supervisor`) that
starts the apps and restarts one that dies has ``state/run/supervisor.pid`` and
``state/apps/supervisor.json``. ``up`` is idempotent: a running supervisor and
its apps are left alone.

What fails when: :class:`RegistryError` for a missing data file or an org the
network profile does not know; a process that exits during start-up raises
:class:`synthreg.network.process.ProcessStartError` with its log's tail.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthreg.apps.base import ROLES, registry_state_dir
from synthreg.apps.supervisor import supervisor_file
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
        # One BLAS thread (unless set): numpy's OpenBLAS otherwise parallelises each
        # norm of an update over every core, and its idle workers spin: 38 % of a
        # merger's CPU went to blas_thread_server (perf, issue 11), on cores the other
        # eight apps and the registries' nodes needed. Torch's threads are set per app.
        env = {"PYTHONUNBUFFERED": "1", "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1")}
        return process.ProcessSpec(name=role, argv=argv, env=env,
                                   health=process.Health(ready_file=self.status_file(role)))

    def app_specs(self, data: Path, exit_after: int | None) -> dict[str, process.ProcessSpec]:
        return {role: self._spec(role, data, exit_after) for role in ROLES}

    def up(self, data: Path, exit_after: int | None = None, timeout: float = 120.0) -> dict[str, int]:
        """Start (or keep) the registry's supervisor, which starts the three apps and
        restarts any that dies; returns role -> pid once each app is ready."""
        data = data.resolve()
        if not data.is_file():
            raise RegistryError(f"data file {data} does not exist")
        argv = [sys.executable, "-m", "synthreg.cli.main", "registry", "supervise", "--org", self.msp,
                "--home", str(self.network_home), "--state", str(self.state), "--data", str(data)]
        if exit_after is not None:
            argv += ["--exit-after", str(exit_after)]
        spec = process.ProcessSpec(name="supervisor", argv=argv, env={"PYTHONUNBUFFERED": "1"},
                                   health=process.Health(ready_file=supervisor_file(self.state)))
        process.wait_ready(process.spawn(spec, self.run_dir, self.logs_dir), timeout)
        deadline = time.monotonic() + timeout
        while not all(self.status_file(role).exists() for role in ROLES):  # each app's own readiness
            if process.running_pid(self.run_dir, "supervisor") is None:
                raise process.ProcessStartError("supervisor", "exited while starting the apps",
                                                self.logs_dir / "supervisor.log")
            if time.monotonic() > deadline:
                missing = [r for r in ROLES if not self.status_file(r).exists()]
                raise process.ProcessStartError(f"{self.msp} {'/'.join(missing)}", f"not ready after {timeout:.0f}s",
                                                self.log_path(missing[0]))
            time.sleep(0.1)  # poll interval of the readiness files above
        return {role: process.running_pid(self.run_dir, role) or 0 for role in ROLES}

    def down(self, grace: float = 10.0) -> list[str]:
        """Stop the supervisor (which stops the apps), then any app still running;
        returns the roles that were running."""
        running = [r for r in ROLES if process.running_pid(self.run_dir, r) is not None]
        process.stop_all(self.run_dir, ["supervisor"], grace + 5)
        process.stop_all(self.run_dir, list(ROLES), grace)
        return running

    def supervision(self) -> dict[str, Any]:
        """What the supervisor says per app (restarts, last exit, given up)."""
        try:
            return dict(json.loads(supervisor_file(self.state).read_text()))
        except (FileNotFoundError, ValueError):
            return {}

    def status(self) -> list[AppStatus]:
        out = []
        sup = self.supervision()
        for role in ROLES:
            pid = process.running_pid(self.run_dir, role)
            try:
                st = json.loads(self.status_file(role).read_text())
            except (FileNotFoundError, ValueError):
                st = {}
            st["restarts"] = sup.get(role, {}).get("restarts", 0)
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
            sup_alive = process.running_pid(self.run_dir, "supervisor") is not None
            sup = self.supervision()
            dead = [s.role for s in self.status() if s.role not in outcome and (
                sup.get(s.role, {}).get("given_up") or (not s.alive and not sup_alive))]
            if dead:
                raise RegistryError(f"{self.msp}: apps {dead} exited before finishing run {run} "
                                    f"(see {self.logs_dir})")
            if time.monotonic() > deadline:
                raise RegistryError(f"{self.msp}: run {run} not finished by every app after {timeout:.0f}s")
            time.sleep(0.5)
