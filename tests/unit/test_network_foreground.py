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
from synthreg.network.profile import Member
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

    def orderer_flags(self, org: Org) -> list[str]:
        return ["-o", org.orderer_endpoint]

    def members(self) -> list[Member]:
        """This registry and Registry1 (whose orderer a stuck call moves on to)."""
        return [Member(o, Path("msp"), Path(f"{o.name}-ca.pem"), Path("tls.crt"), Path("keys"))
                for o in (self.org, Org.from_msp_id("Registry1MSP", 17000))]

    def log(self, msg: str) -> None:
        self.lines.append(msg)


def _scripted_run_cmd(monkeypatch: pytest.MonkeyPatch, answers: list[object],
                      argvs: list[list[str]] | None = None) -> list[float]:
    """run_cmd answering from ``answers`` (a CompletedProcess, or an exception to raise);
    returns the per-attempt timeouts it was given (and records each argv in ``argvs``)."""
    from synthreg.network import launcher

    timeouts: list[float] = []

    def run_cmd(argv: list[str], env: dict[str, str] | None = None, *, check: bool = True,
                timeout: float = 300) -> subprocess.CompletedProcess[str]:
        timeouts.append(timeout)
        if argvs is not None:
            argvs.append(argv)
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        assert isinstance(answer, subprocess.CompletedProcess)
        return answer

    monkeypatch.setattr(launcher, "run_cmd", run_cmd)
    return timeouts


def _done(rc: int, stderr: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(["peer"], rc, "", stderr)


def _argv(orderer: list[str]) -> list[str]:
    return ["peer", "lifecycle", "chaincode", "approveformyorg", *orderer]


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
    deployer._submit_with_retry(_argv, org, "approve x", "gan", done=lambda: False)
    assert timeouts == [7.0, 7.0]
    assert any(line.startswith(f"approve x via {org.orderer_endpoint}: no answer in 7 s; retrying via ")
               for line in launcher.lines), launcher.lines


def test_a_failed_call_that_landed_anyway_counts_as_done(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A retry of an approval that the hung attempt did land is refused by the peer ("unchanged
    content"): that is success when the approval is there."""
    launcher = AdminLauncher(_cfg(tmp_path))
    deployer = cc.Deployer(launcher)  # type: ignore[arg-type]
    _scripted_run_cmd(monkeypatch, [_done(1, "attempted to redefine uncommitted sequence (1) for namespace "
                                             "keyvault with unchanged content")])
    deployer._submit_with_retry(_argv, launcher.org, "approve x", "gan", done=lambda: True)


def test_lifecycle_errors_that_are_not_transient_or_outlast_the_deadline_raise(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from synthreg.network.launcher import NetworkError

    monkeypatch.setattr(cc.time, "sleep", lambda s: None)
    launcher = AdminLauncher(_cfg(tmp_path))
    deployer = cc.Deployer(launcher)  # type: ignore[arg-type]
    _scripted_run_cmd(monkeypatch, [_done(1, "Error: chaincode definition mismatch")])
    with pytest.raises(NetworkError, match="approve x failed:\nError: chaincode definition mismatch"):
        deployer._submit_with_retry(_argv, launcher.org, "approve x", "gan", done=lambda: False)
    _scripted_run_cmd(monkeypatch, [subprocess.TimeoutExpired(["peer"], 1.0)] * 3)
    with pytest.raises(NetworkError, match="no answer in 60 s"):
        deployer._submit_with_retry(_argv, launcher.org, "approve x", "gan", timeout=-1, done=lambda: False)


def test_a_call_the_own_orderer_leaves_unanswered_goes_on_via_another_members_orderer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CI failure at c55b7fd: Registry2's approve got no answer from its own orderer four
    times in a row (120 s each) and the join failed. The retry now goes to the next member's
    orderer, and the log line says what the own orderer last logged about the channel."""
    monkeypatch.setattr(cc.time, "sleep", lambda s: None)
    launcher = AdminLauncher(_cfg(tmp_path))
    deployer = cc.Deployer(launcher)  # type: ignore[arg-type]
    launcher.cfg.logs_dir.mkdir(parents=True)
    (launcher.cfg.logs_dir / f"orderer-{launcher.org.name}.log").write_text(
        "\x1b[34m... INFO\x1b[0m Raft leader changed: 0 -> 1 channel=keys node=3\n"
        "\x1b[34m... INFO\x1b[0m Raft leader changed: 0 -> 2 channel=gan node=3\n")
    argvs: list[list[str]] = []
    _scripted_run_cmd(monkeypatch, [subprocess.TimeoutExpired(["peer"], 60.0), _done(0)], argvs)
    deployer._submit_with_retry(_argv, launcher.org, "approve x", "gan", done=lambda: False)
    own, other = (m.org.orderer_endpoint for m in launcher.members())
    assert [a[a.index("-o") + 1] for a in argvs] == [own, other]
    assert argvs[1][-2:] == ["--cafile", "registry1-ca.pem"]
    line = next(x for x in launcher.lines if "no answer" in x)
    assert f"approve x via {own}: no answer in 60 s (own orderer's last word on 'gan': " in line
    assert line.endswith("Raft leader changed: 0 -> 2 channel=gan node=3); retrying via " + other)
    assert "own peer's" not in line  # (no peer log here)


def test_an_error_from_another_members_orderer_is_retried_on_the_own_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another member's orderer may not serve the channel yet (a registry added later): its
    refusal is not the end of the call; the next attempt is the own orderer's again."""
    monkeypatch.setattr(cc.time, "sleep", lambda s: None)
    launcher = AdminLauncher(_cfg(tmp_path))
    deployer = cc.Deployer(launcher)  # type: ignore[arg-type]
    argvs: list[list[str]] = []
    _scripted_run_cmd(monkeypatch, [_done(1, "Error: got unexpected status: SERVICE_UNAVAILABLE -- no Raft leader"),
                                    _done(1, "Error: got unexpected status: NOT_FOUND -- channel does not exist"),
                                    _done(0)], argvs)
    deployer._submit_with_retry(_argv, launcher.org, "approve x", "gan", done=lambda: False)
    own, other = (m.org.orderer_endpoint for m in launcher.members())
    assert [a[a.index("-o") + 1] for a in argvs] == [own, other, own]


def test_a_commit_event_the_own_peer_missed_is_retried_and_the_cli_usage_is_not_logged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With one orderer frozen, a peer whose block stream hangs on it misses the commit event
    (the frozen-orderer experiment of stop 24): that is transient. The log line carries the
    CLI's error line, not the usage text it prints after it."""
    monkeypatch.setattr(cc.time, "sleep", lambda s: None)
    launcher = AdminLauncher(_cfg(tmp_path))
    deployer = cc.Deployer(launcher)  # type: ignore[arg-type]
    usage = "Error: failed to create deliver client for orderer: context deadline exceeded\nUsage:\n" \
            + "      --flag string      what it does\n" * 200
    _scripted_run_cmd(monkeypatch, [_done(1, "Error: timed out waiting for txid on all peers"),
                                    _done(1, usage), _done(0)])
    deployer._submit_with_retry(_argv, launcher.org, "approve x", "gan", done=lambda: False)
    assert launcher.lines[0].endswith(": Error: timed out waiting for txid on all peers; retrying via "
                                      + launcher.members()[1].org.orderer_endpoint)
    assert "Error: failed to create deliver client for orderer: context deadline exceeded; retrying" \
        in launcher.lines[1]
