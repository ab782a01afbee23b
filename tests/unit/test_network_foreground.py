"""`registry node run` (synthreg.network.foreground) and prebuilt chaincode servers, without
Fabric: the supervisor's exits and the Deployer's choice of binary."""

from __future__ import annotations

import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from synthreg.network import chaincode as cc
from synthreg.network import foreground
from synthreg.network.topology import NetworkConfig, Org


@dataclass
class FakeLauncher:
    """The parts of RegistryLauncher that run_nodes uses; records the calls."""

    cfg: NetworkConfig
    calls: list[str] = field(default_factory=list)

    @property
    def org(self) -> Org:
        assert self.cfg.local_org is not None
        return self.cfg.local_org

    def nodes_up(self, sample_dir: Path) -> None:
        self.calls.append("nodes_up")

    def restart_chaincode_servers(self) -> None:
        self.calls.append("restart_chaincode_servers")

    def down(self, wipe: bool = False) -> list[str]:
        self.calls.append(f"down(wipe={wipe})")
        return []

    def log(self, msg: str) -> None:
        pass


def _cfg(tmp_path: Path, chaincode_bin: Path | None = None) -> NetworkConfig:
    return NetworkConfig(home=tmp_path, fabric_bin=tmp_path / "bin", repo_root=tmp_path,
                         local_org=Org.from_msp_id("Registry3MSP", 16000), chaincode_bin=chaincode_bin)


def test_stop_stops_the_nodes_and_exits_0(tmp_path: Path) -> None:
    launcher = FakeLauncher(_cfg(tmp_path))
    stop = threading.Event()
    stop.set()
    assert foreground.run_nodes(launcher, tmp_path, stop) == 0  # type: ignore[arg-type]
    assert launcher.calls == ["nodes_up", "restart_chaincode_servers", "down(wipe=False)"]


def test_a_node_down_on_two_checks_exits_1_after_stopping_the_rest(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(foreground, "CHECK_INTERVAL", 0.01)
    launcher = FakeLauncher(_cfg(tmp_path))  # no pid files: orderer and peer are not running
    assert foreground.run_nodes(launcher, tmp_path, threading.Event()) == 1  # type: ignore[arg-type]
    assert launcher.calls[-1] == "down(wipe=False)"


def test_prebuilt_chaincode_servers_are_used_without_go(tmp_path: Path) -> None:
    prebuilt = tmp_path / "cc-bin"
    prebuilt.mkdir()
    (prebuilt / "ganledger").write_bytes(b"\x7fELF")
    deployer = cc.Deployer(FakeLauncher(_cfg(tmp_path, prebuilt)))  # type: ignore[arg-type]
    assert deployer.build("ganledger") == str(prebuilt / "ganledger")
    with pytest.raises(RuntimeError, match="prebuilt chaincode server"):
        deployer.build("keyvault")


@dataclass
class AdminLauncher(FakeLauncher):
    """Adds what Deployer._submit_with_retry uses; records the log lines."""

    lines: list[str] = field(default_factory=list)

    def peer_admin_env(self, org: Org) -> dict[str, str]:
        return {}

    def log(self, msg: str) -> None:
        self.lines.append(msg)


def _scripted_run_cmd(monkeypatch: pytest.MonkeyPatch, answers: list[object]) -> list[float]:
    """run_cmd answering from ``answers`` (a CompletedProcess, or an exception to raise);
    returns the per-attempt timeouts it was given."""
    from synthreg.network import launcher

    timeouts: list[float] = []

    def run_cmd(argv: list[str], env: dict[str, str] | None = None, *, check: bool = True,
                timeout: float = 300) -> subprocess.CompletedProcess[str]:
        timeouts.append(timeout)
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        assert isinstance(answer, subprocess.CompletedProcess)
        return answer

    monkeypatch.setattr(launcher, "run_cmd", run_cmd)
    return timeouts


def _done(rc: int, stderr: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(["peer"], rc, "", stderr)


def test_a_lifecycle_call_that_hangs_is_abandoned_and_retried(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The CI failure of stop 21: an approve whose broadcast never got its answer hung the join
    for 300 s. One attempt now has its own deadline and counts as transient."""
    monkeypatch.setattr(cc.time, "sleep", lambda s: None)
    launcher = AdminLauncher(_cfg(tmp_path))
    deployer = cc.Deployer(launcher)  # type: ignore[arg-type]
    deployer.attempt_timeout = 7.0
    timeouts = _scripted_run_cmd(monkeypatch, [subprocess.TimeoutExpired(["peer"], 7.0), _done(0)])
    org = launcher.org
    deployer._submit_with_retry(["peer", "lifecycle"], org, "approve x", done=lambda: False)
    assert timeouts == [7.0, 7.0]
    assert any("approve x: no answer in 7 s; retrying" in line for line in launcher.lines)


def test_a_failed_call_that_landed_anyway_counts_as_done(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A retry of an approval that the hung attempt did land is refused by the peer ("unchanged
    content"): that is success when the approval is there."""
    launcher = AdminLauncher(_cfg(tmp_path))
    deployer = cc.Deployer(launcher)  # type: ignore[arg-type]
    _scripted_run_cmd(monkeypatch, [_done(1, "attempted to redefine uncommitted sequence (1) for namespace "
                                             "keyvault with unchanged content")])
    deployer._submit_with_retry(["peer"], launcher.org, "approve x", done=lambda: True)


def test_lifecycle_errors_that_are_not_transient_or_outlast_the_deadline_raise(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from synthreg.network.launcher import NetworkError

    monkeypatch.setattr(cc.time, "sleep", lambda s: None)
    launcher = AdminLauncher(_cfg(tmp_path))
    deployer = cc.Deployer(launcher)  # type: ignore[arg-type]
    _scripted_run_cmd(monkeypatch, [_done(1, "Error: chaincode definition mismatch")])
    with pytest.raises(NetworkError, match="approve x failed:\nError: chaincode definition mismatch"):
        deployer._submit_with_retry(["peer"], launcher.org, "approve x", done=lambda: False)
    _scripted_run_cmd(monkeypatch, [subprocess.TimeoutExpired(["peer"], 1.0)] * 3)
    with pytest.raises(NetworkError, match="no answer in 120 s"):
        deployer._submit_with_retry(["peer"], launcher.org, "approve x", timeout=-1, done=lambda: False)
