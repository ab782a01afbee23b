"""`synthreg network up` is idempotent and `down` leaves no process of ours running.

Runs its own small network (one registry, its own ports and home) through the
real CLI, so the shared test network is not disturbed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from synthreg.network import process


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "synthreg.cli.main", "network", *args],
                          capture_output=True, text=True, timeout=600, env=os.environ.copy())


def _pids(home: Path) -> dict[str, int]:
    out = _cli("status", "--home", str(home), "--json")
    assert out.returncode == 0, out.stderr
    procs = json.loads(out.stdout)["processes"]
    return {name: info["pid"] for name, info in procs.items() if info["running"]}


def _ours(home: Path) -> list[int]:
    """PIDs of any process whose command line or environment mentions this home."""
    found = []
    needle = str(home).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in blob and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_up_twice_is_safe_and_down_stops_everything(tmp_path: Path) -> None:
    home = tmp_path / "net"
    try:
        first = _cli("up", "--home", str(home), "--orgs", "1", "--base-port", "9400")
        assert first.returncode == 0, first.stderr[-3000:]
        pids1 = _pids(home)
        assert set(pids1) == {"orderer-registry1", "peer-registry1", "cc-ganledger-registry1",
                              "cc-keyvault-registry1"}
        second = _cli("up", "--home", str(home), "--orgs", "1", "--base-port", "9400")
        assert second.returncode == 0, second.stderr[-3000:]
        assert _pids(home) == pids1, "re-running up must reuse the running processes"
        assert "joined" not in second.stderr and "approved" not in second.stderr
    finally:
        down = _cli("down", "--home", str(home))
    assert down.returncode == 0, down.stderr
    for name in pids1:
        assert process.running_pid(home / "run", name) is None
    assert _ours(home) == [], "a process of this network survived `down`"
