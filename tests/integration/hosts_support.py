"""Registries on separate hosts (network namespaces on a bridge, synthreg.network.netns),
every step run by the `synthreg` CLI inside the registry's host, as its IT staff would
(docs/deploy.md). Shared by test_hosts.py (three namespace hosts) and test_compose.py
(two namespace hosts and one registry in containers)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from synthreg.data import load_dataset, split_registries
from synthreg.data.datasets import dataset_schema
from synthreg.network import process
from synthreg.network.netns import Hosts

MSPS = ["Registry1MSP", "Registry2MSP", "Registry3MSP", "Registry4MSP"]
"""registry ``i`` is ``MSPS[i - 1]``; test_hosts.py adds Registry4MSP to a running consortium"""


def require_root(what: str = "network namespaces") -> None:
    """Skip without root, or fail when the network is required (``make test``)."""
    if os.geteuid() != 0:
        if os.environ.get("SYNTHREG_REQUIRE_NETWORK") == "1":
            pytest.fail(f"{what} need root")
        pytest.skip(f"{what} need root")


def registry_parts(n: int = 3, rows: int = 120) -> tuple[list[pd.DataFrame], str]:
    """The rotterdam data split non-IID by year into ``n`` registries' CSVs (``rows`` each)
    and its schema as YAML text."""
    parts = split_registries(load_dataset("rotterdam"), n, "non-iid", seed=0, by="year")
    return [p.head(rows) for p in parts], dataset_schema("rotterdam").dump()


def finish(procs: Mapping[str, subprocess.Popen[str]], timeout: float = 900,
           logs: Mapping[str, Iterable[Path]] | None = None) -> None:
    """Wait for commands started together (the joins); fail on the first that failed, with
    the last warnings and errors of its node ``logs`` (CI keeps only its output's tail)."""
    for label, proc in procs.items():
        out, _ = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(f"{label} failed:\n{out[-4000:]}" + "".join(
                node_log_tail(path) for path in (logs or {}).get(label, ())))


def node_log_tail(path: Path, lines: int = 12) -> str:
    """The last ``lines`` WARN/ERRO lines of a node log, without colours, each cut at 240
    characters ('' when the log is missing)."""
    if not path.exists():
        return ""
    picked = process.log_lines(path, lambda x: " WARN" in x or " ERRO" in x, lines)
    return f"\n--- {path.name}, last {lines} warnings/errors:\n" + "\n".join(x[:240] for x in picked)


@dataclass
class HostConsortium:
    """Registries ``1..hosts.n``, registry ``i`` in host ``i`` with its home in
    ``base/registry<i>``; host ``0`` is the root namespace (the auditor's host)."""

    hosts: Hosts
    base: Path
    base_port: int | None = None
    """``registry init --base-port`` (None: the CLI's default)"""

    def home(self, i: int) -> Path:
        return self.base / f"registry{i}"

    def local(self, i: int) -> Path:
        """Registry ``i``'s own files (CSV, schema, run configs), outside its home's state."""
        return self.home(i) / "local"

    def argv(self, i: int, *args: str) -> list[str]:
        return [*(self.hosts.exec_prefix(i) if i else []), "synthreg", *args]

    def cli(self, i: int, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``synthreg ARGS`` on host ``i``."""
        out = subprocess.run(self.argv(i, *args), capture_output=True, text=True, timeout=timeout)
        if check and out.returncode != 0:
            raise AssertionError(f"host {i}: synthreg {' '.join(args)} -> {out.returncode}\n"
                                 f"{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
        return out

    def spawn(self, i: int, *args: str) -> subprocess.Popen[str]:
        """``synthreg ARGS`` on host ``i`` in the background (output merged; see :func:`finish`)."""
        return subprocess.Popen(self.argv(i, *args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def pids_in(self, i: int) -> set[int]:
        out = subprocess.run(["ip", "netns", "pids", self.hosts.name(i)], capture_output=True, text=True)
        return {int(p) for p in out.stdout.split()}

    def init_node(self, i: int) -> None:
        """`registry init` at the host's address, then `registry node up`."""
        port = [] if self.base_port is None else ["--base-port", str(self.base_port)]
        self.cli(i, "registry", "init", "--org", MSPS[i - 1], "--host", self.hosts.address(i), *port,
                 "--home", str(self.home(i)))
        self.cli(i, "registry", "node", "up", "--home", str(self.home(i)))

    def node_logs(self, i: int) -> list[Path]:
        """Registry ``i``'s orderer and peer logs."""
        return [self.home(i) / "logs" / f"{node}-registry{i}.log" for node in ("orderer", "peer")]

    def join(self, i: int, bundle: Path) -> subprocess.Popen[str]:
        return self.spawn(i, "registry", "join", "--home", str(self.home(i)), "--consortium", str(bundle))

    def write_local(self, i: int, data: pd.DataFrame, schema: str) -> None:
        d = self.local(i)
        d.mkdir(parents=True, exist_ok=True)
        data.to_csv(d / "data.csv", index=False)
        (d / "schema.yaml").write_text(schema)

    def apps_up(self, i: int) -> None:
        """`registry up` on registry ``i``'s own data (idempotent)."""
        self.cli(i, "registry", "up", "--org", MSPS[i - 1], "--data", str(self.local(i) / "data.csv"),
                 "--home", str(self.home(i)))

    def approve(self, i: int, run: str) -> None:
        d = self.local(i)
        self.cli(i, "run", "approve", run, "--org", MSPS[i - 1], "--data", str(d / "data.csv"),
                 "--schema", str(d / "schema.yaml"), "--home", str(self.home(i)))

    def audit(self, run: str, releasers: Iterable[int], registries: Iterable[int], name: str) -> dict[str, Any]:
        """The auditor's check of ``run`` from the root namespace: a fresh key pair
        (``base/<name>``), the shares of ``releasers`` released to it, unsealed through
        Registry1's auditor identity, and `audit verify --json` against the workspaces of
        ``registries``; returns the report."""
        key = self.base / name
        self.cli(0, "audit", "keygen", "--out", str(key))
        for i in releasers:
            self.cli(i, "keys", "release", "--org", MSPS[i - 1], "--auditor", str(key / "auditor_x25519_pk.pem"),
                     "--home", str(self.home(i)))
        unsealed = self.base / f"{name}-unsealed"
        self.cli(0, "audit", "unseal", "--key", str(key), "--out", str(unsealed), "--home", str(self.home(1)))
        workspaces = [a for i in registries for a in
                      ("--workspace", f"{MSPS[i - 1]}={self.home(i) / 'registries' / MSPS[i - 1] / 'workspace'}")]
        report: dict[str, Any] = json.loads(self.cli(0, "audit", "verify", "--run", run, "--unsealed", str(unsealed),
                                                     *workspaces, "--home", str(self.home(1)), "--json").stdout)
        return report

    def stop(self, hosts: Iterable[int] | None = None) -> None:
        """`registry down` and `registry node down` on each host, then kill anything left
        inside its namespace (it would keep the namespace alive)."""
        which = list(range(1, self.hosts.n + 1) if hosts is None else hosts)
        live = [i for i in which if (self.home(i) / "registry.json").exists()]
        # Every host at once (each host's apps, then its nodes), as their IT staff would.
        for step in (lambda i: ("registry", "down", "--org", MSPS[i - 1]), lambda i: ("registry", "node", "down")):
            procs = [self.spawn(i, *step(i), "--home", str(self.home(i))) for i in live]
            for proc in procs:
                try:
                    proc.communicate(timeout=120)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.communicate()
        for i in which:
            for pid in self.pids_in(i):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
