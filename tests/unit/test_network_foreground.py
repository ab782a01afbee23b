"""`registry node run` (synthreg.network.foreground) and prebuilt chaincode servers, without
Fabric: the supervisor's exits and the Deployer's choice of binary."""

from __future__ import annotations

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
