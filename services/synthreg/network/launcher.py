"""Bring the local consortium network up, report on it, and take it down.

``up`` is a sequence of idempotent steps, each of which first checks whether
its effect is already there (crypto material, genesis blocks, running and
healthy processes, channel membership, installed/approved/committed
chaincode), so running it twice is safe and a half-finished run can be
resumed. Its last step registers every org as a member of both channels
with the org's own admin identity (:mod:`synthreg.network.members`; the
chaincodes refuse every other caller until then). ``down`` stops every process recorded in ``run/`` by PID and can
wipe the state. Called by ``synthreg network``; the integration tests and the
benchmarks use the profile it writes (``<home>/profile.json``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from synthreg.network import chaincode as cc
from synthreg.network import fabricconfig, pki, process
from synthreg.network.profile import Member, write_profile
from synthreg.network.topology import CHAINCODES, NetworkConfig, Org

Log = Callable[[str], None]

LAYOUT = 2
"""Version of what ``up`` writes into a home, kept in ``topology.json``; bumped when a
home made by an older launcher cannot be resumed. 2: owner-only chaincode packages
(new package IDs, while the old ones stay approved) and orderer admin endpoints that
trust their own org only (issue 10, item 7). Homes without it must be wiped."""


class NetworkError(RuntimeError):
    """A launcher step failed; the message says which and how."""


PPROF_ENV = "SYNTHREG_FABRIC_PPROF"
"""Set to 1 and the peers and orderers serve Go's pprof on loopback (``peer_pprof`` /
``orderer_pprof`` ports, no TLS, no auth): for profiling a local dev network only
(network/README.md); never set on a registry's host."""


def _pprof_wanted() -> bool:
    return os.environ.get(PPROF_ENV, "") == "1"


def orderer_cli_flags(endpoint: str, tls_ca_cert: Path) -> list[str]:
    """The peer CLI's flags for sending to the orderer at ``endpoint`` over TLS."""
    return ["-o", endpoint, "--tls", "--cafile", str(tls_ca_cert)]


def run_cmd(argv: list[str], env: dict[str, str] | None = None, *, check: bool = True,
            cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a Fabric CLI command; on failure raise NetworkError with its output."""
    import os

    proc = subprocess.run(argv, env={**os.environ, **(env or {})}, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise NetworkError(
            f"command failed ({proc.returncode}): {' '.join(argv[:4])} ...\n{proc.stderr.strip()[-3000:]}"
        )
    return proc


def fabric_tool(fabric_bin: Path, name: str) -> str:
    """The path of Fabric binary ``name`` in ``fabric_bin``, or NetworkError saying how to build it."""
    path = fabric_bin / name
    if not path.exists():
        raise NetworkError(f"{path} not found: run scripts/bootstrap.sh (builds the Fabric binaries)")
    return str(path)


class Launcher:
    """Steps of the local network, bound to one :class:`NetworkConfig`."""

    def __init__(self, cfg: NetworkConfig, log: Log = print) -> None:
        self.cfg = cfg
        self.log = log
        self.cryptos: dict[str, pki.OrgCrypto] = {}

    # --- helpers -------------------------------------------------------------
    def bin(self, name: str) -> str:
        return fabric_tool(self.cfg.fabric_bin, name)

    def crypto(self, org: Org) -> pki.OrgCrypto:
        return self.cryptos[org.msp_id]

    def members(self) -> list[Member]:
        """Every consortium org, public material only. Here every org is local (one home
        holds them all); a registry's own home (:class:`synthreg.network.registry.RegistryLauncher`)
        knows the others from their org definitions."""
        return [Member.of_local(org, self.crypto(org)) for org in self.cfg.orgs]

    def peer_admin_env(self, org: Org) -> dict[str, str]:
        c = self.crypto(org)
        return {
            "FABRIC_CFG_PATH": str(self.cfg.config_dir / "node"),
            "CORE_PEER_LOCALMSPID": org.msp_id,
            "CORE_PEER_MSPCONFIGPATH": str(c.root / "users" / "fabric-admin" / "msp"),
            "CORE_PEER_ADDRESS": org.peer_endpoint,
            "CORE_PEER_TLS_ENABLED": "true",
            "CORE_PEER_TLS_ROOTCERT_FILE": str(c.tls_ca_cert),
            "FABRIC_LOGGING_SPEC": "WARNING",
        }

    def orderer_flags(self, org: Org) -> list[str]:
        return orderer_cli_flags(org.orderer_endpoint, self.crypto(org).tls_ca_cert)

    # --- steps ---------------------------------------------------------------
    def generate_crypto(self) -> None:
        for org in self.cfg.orgs:
            extra: dict[str, tuple[str, ...]] = {
                f"ccserver-{name}": ("localhost", "127.0.0.1") for name in CHAINCODES.values()
            }
            extra["peer-ccclient"] = (org.peer_host,)
            extra["blobs"] = tuple(dict.fromkeys((org.host, "127.0.0.1", "localhost")))  # the merger's blob server
            root = self.cfg.org_crypto_root(org)
            existed = (root / "ca" / "ca.pem").exists()
            self.cryptos[org.msp_id] = pki.generate_org(root, org.msp_id, org.domain, extra_tls=extra,
                                                        node_hosts=(org.host,))
            if not existed:
                self.log(f"crypto material for {org.msp_id} generated")

    def generate_configs(self, sample_dir: Path) -> None:
        members = self.members()
        cfgdir = fabricconfig.write_configtx(self.cfg, members)
        fabricconfig.write_node_configs(self.cfg, sample_dir)
        fabricconfig.write_collections_config(self.cfg, members)
        self.cfg.artifacts_dir.mkdir(parents=True, exist_ok=True)
        for ch in self.cfg.channels:
            block = self.cfg.artifacts_dir / f"{ch}.block"
            if block.exists():
                continue
            run_cmd([self.bin("configtxgen"), "-configPath", str(cfgdir), "-profile", "SynthregChannel",
                     "-outputBlock", str(block), "-channelID", ch])
            self.log(f"genesis block for channel '{ch}' created")

    def _orderer_spec(self, org: Org) -> process.ProcessSpec:
        c = self.crypto(org)
        node = c.node_dir("orderer0")
        tls = node / "tls"
        roots = "[" + ",".join(str(m.tls_ca_cert) for m in self.members()) + "]"
        # The admin endpoint (channel participation: join/list/remove) authorises by the TLS
        # client certificate alone, so it trusts this org's TLS CA only: another registry's
        # admin cannot remove channels from this orderer (issue 10, item 7b; DESIGN.md §9).
        # Raft (General/Cluster) still needs every org's TLS CA.
        own_root = f"[{c.tls_ca_cert}]"
        data = self.cfg.data_dir / f"orderer-{org.name}"
        env = {
            "FABRIC_CFG_PATH": str(self.cfg.config_dir / "node"),
            "FABRIC_LOGGING_SPEC": "INFO",
            "ORDERER_GENERAL_LISTENADDRESS": org.host,
            "ORDERER_GENERAL_LISTENPORT": str(org.port("orderer")),
            "ORDERER_GENERAL_LOCALMSPID": org.msp_id,
            "ORDERER_GENERAL_LOCALMSPDIR": str(node / "msp"),
            "ORDERER_GENERAL_BOOTSTRAPMETHOD": "none",
            "ORDERER_GENERAL_TLS_ENABLED": "true",
            "ORDERER_GENERAL_TLS_PRIVATEKEY": str(tls / "server.key"),
            "ORDERER_GENERAL_TLS_CERTIFICATE": str(tls / "server.crt"),
            "ORDERER_GENERAL_TLS_ROOTCAS": roots,
            "ORDERER_GENERAL_CLUSTER_CLIENTCERTIFICATE": str(tls / "server.crt"),
            "ORDERER_GENERAL_CLUSTER_CLIENTPRIVATEKEY": str(tls / "server.key"),
            "ORDERER_GENERAL_CLUSTER_ROOTCAS": roots,
            "ORDERER_CHANNELPARTICIPATION_ENABLED": "true",
            "ORDERER_ADMIN_LISTENADDRESS": f"{org.host}:{org.port('orderer_admin')}",
            "ORDERER_ADMIN_TLS_ENABLED": "true",
            "ORDERER_ADMIN_TLS_PRIVATEKEY": str(tls / "server.key"),
            "ORDERER_ADMIN_TLS_CERTIFICATE": str(tls / "server.crt"),
            "ORDERER_ADMIN_TLS_ROOTCAS": own_root,
            "ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED": "true",
            "ORDERER_ADMIN_TLS_CLIENTROOTCAS": own_root,
            "ORDERER_OPERATIONS_LISTENADDRESS": f"{org.host}:{org.port('orderer_ops')}",
            "ORDERER_OPERATIONS_TLS_ENABLED": "true",
            "ORDERER_OPERATIONS_TLS_PRIVATEKEY": str(tls / "server.key"),
            "ORDERER_OPERATIONS_TLS_CERTIFICATE": str(tls / "server.crt"),
            "ORDERER_OPERATIONS_TLS_CLIENTAUTHREQUIRED": "false",
            "ORDERER_METRICS_PROVIDER": "disabled",
            "ORDERER_FILELEDGER_LOCATION": str(data / "ledger"),
            "ORDERER_CONSENSUS_WALDIR": str(data / "etcdraft" / "wal"),
            "ORDERER_CONSENSUS_SNAPDIR": str(data / "etcdraft" / "snapshot"),
        }
        if _pprof_wanted():
            env |= {"ORDERER_GENERAL_PROFILE_ENABLED": "true",
                    "ORDERER_GENERAL_PROFILE_ADDRESS": f"127.0.0.1:{org.port('orderer_pprof')}"}
        health = process.Health(url=f"https://{org.host}:{org.port('orderer_ops')}/healthz",
                                ca_file=c.tls_ca_cert, tcp=(org.host, org.port("orderer")), tcp_tls=True)
        return process.ProcessSpec(f"orderer-{org.name}", [self.bin("orderer")], env, health,
                                   ports=(org.port("orderer"), org.port("orderer_admin"), org.port("orderer_ops")),
                                   host=org.host)

    def _peer_spec(self, org: Org) -> process.ProcessSpec:
        c = self.crypto(org)
        node = c.node_dir("peer0")
        tls = node / "tls"
        data = self.cfg.data_dir / f"peer-{org.name}"
        env = {
            "FABRIC_CFG_PATH": str(self.cfg.config_dir / "node"),
            "FABRIC_LOGGING_SPEC": "INFO:gossip=WARNING",
            "CORE_PEER_ID": org.peer_host,
            "CORE_PEER_ADDRESS": org.peer_endpoint,
            "CORE_PEER_LISTENADDRESS": org.peer_endpoint,
            "CORE_PEER_CHAINCODEADDRESS": f"127.0.0.1:{org.port('peer_chaincode')}",
            "CORE_PEER_CHAINCODELISTENADDRESS": f"127.0.0.1:{org.port('peer_chaincode')}",
            "CORE_PEER_GOSSIP_BOOTSTRAP": org.peer_endpoint,
            "CORE_PEER_GOSSIP_EXTERNALENDPOINT": org.peer_endpoint,
            "CORE_PEER_LOCALMSPID": org.msp_id,
            "CORE_PEER_MSPCONFIGPATH": str(node / "msp"),
            "CORE_PEER_TLS_ENABLED": "true",
            "CORE_PEER_TLS_CERT_FILE": str(tls / "server.crt"),
            "CORE_PEER_TLS_KEY_FILE": str(tls / "server.key"),
            "CORE_PEER_TLS_ROOTCERT_FILE": str(tls / "ca.crt"),
            "CORE_PEER_FILESYSTEMPATH": str(data),
            "CORE_LEDGER_SNAPSHOTS_ROOTDIR": str(data / "snapshots"),
            "CORE_PEER_GATEWAY_ENABLED": "true",
            "CORE_OPERATIONS_LISTENADDRESS": f"{org.host}:{org.port('peer_ops')}",
            "CORE_OPERATIONS_TLS_ENABLED": "true",
            "CORE_OPERATIONS_TLS_CERT_FILE": str(tls / "server.crt"),
            "CORE_OPERATIONS_TLS_KEY_FILE": str(tls / "server.key"),
            "CORE_OPERATIONS_TLS_CLIENTAUTHREQUIRED": "false",
            "CORE_METRICS_PROVIDER": "disabled",
            "CORE_VM_ENDPOINT": "",
            "CORE_CHAINCODE_MODE": "net",
        }
        if _pprof_wanted():
            env |= {"CORE_PEER_PROFILE_ENABLED": "true",
                    "CORE_PEER_PROFILE_LISTENADDRESS": f"127.0.0.1:{org.port('peer_pprof')}"}
        health = process.Health(url=f"https://{org.host}:{org.port('peer_ops')}/healthz",
                                ca_file=c.tls_ca_cert, tcp=(org.host, org.port("peer")), tcp_tls=True)
        return process.ProcessSpec(f"peer-{org.name}", [self.bin("peer"), "node", "start"], env, health,
                                   ports=(org.port("peer"), org.port("peer_chaincode"), org.port("peer_ops")),
                                   host=org.host)

    def start_orderers(self) -> None:
        for org in self.cfg.orgs:
            pid = process.start(self._orderer_spec(org), self.cfg.run_dir, self.cfg.logs_dir)
            self.log(f"orderer of {org.msp_id} healthy (pid {pid}, :{org.port('orderer')})")

    def start_peers(self) -> None:
        for org in self.cfg.orgs:
            pid = process.start(self._peer_spec(org), self.cfg.run_dir, self.cfg.logs_dir)
            self.log(f"peer of {org.msp_id} healthy (pid {pid}, :{org.port('peer')})")

    def _osnadmin(self, org: Org, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``osnadmin channel ARGS`` against ``org``'s own orderer, as ``org``: the client pair
        is that orderer's TLS pair, issued by ``org``'s TLS CA, the only one its admin
        endpoint trusts (:meth:`_orderer_spec`)."""
        tls = self.crypto(org).node_dir("orderer0") / "tls"
        return run_cmd([self.bin("osnadmin"), "channel", *args,
                        "-o", f"{org.host}:{org.port('orderer_admin')}",
                        "--ca-file", str(self.crypto(org).tls_ca_cert),
                        "--client-cert", str(tls / "server.crt"), "--client-key", str(tls / "server.key")],
                       check=check)

    def _channel_info(self, org: Org, ch: str) -> dict[str, object] | None:
        """The orderer's channel-participation record for ``ch`` (None if not a member)."""
        out = self._osnadmin(org, "list", "--channelID", ch, check=False)
        if out.returncode != 0 or not out.stdout.startswith("Status: 200"):
            return None
        body = out.stdout.split("\n", 1)[1]
        info = json.loads(body)
        return info if isinstance(info, dict) else None

    def orderer_join_block(self, channel: str) -> Path:
        """The config block an orderer joins ``channel`` with (here: its genesis block)."""
        return self.cfg.artifacts_dir / f"{channel}.block"

    def definition_sequence(self, channel: str) -> int:
        """The sequence of the chaincode definition on ``channel`` (1 here: the consortium
        of a one-home network never changes)."""
        return 1

    def join_orderers(self) -> None:
        for org in self.cfg.orgs:
            for ch in self.cfg.channels:
                if self._channel_info(org, ch) is not None:
                    continue
                self._osnadmin(org, "join", "--channelID", ch, "--config-block", str(self.orderer_join_block(ch)))
                self.log(f"orderer of {org.msp_id} joined '{ch}'")
        # Wait (by condition) until every orderer serves every channel as an active consenter.
        deadline = time.monotonic() + 120
        for org in self.cfg.orgs:
            for ch in self.cfg.channels:
                while True:
                    info = self._channel_info(org, ch) or {}
                    if info.get("status") == "active" and info.get("consensusRelation") == "consenter":
                        break
                    if time.monotonic() > deadline:
                        raise NetworkError(f"orderer of {org.msp_id} not active on '{ch}': {info}")
                    time.sleep(0.2)

    def joined_channels(self, org: Org) -> set[str]:
        out = run_cmd([self.bin("peer"), "channel", "list"], self.peer_admin_env(org)).stdout
        lines = out.split("Channels peers has joined:")[-1].split()
        return set(lines)

    def join_peers(self) -> None:
        for org in self.cfg.orgs:
            have = self.joined_channels(org)
            for ch in self.cfg.channels:
                if ch in have:
                    continue
                run_cmd([self.bin("peer"), "channel", "join", "-b", str(self.cfg.artifacts_dir / f"{ch}.block")],
                        self.peer_admin_env(org))
                self.log(f"peer of {org.msp_id} joined '{ch}'")

    # --- public --------------------------------------------------------------
    def up(self, sample_dir: Path) -> None:
        t0 = time.monotonic()
        for d in (self.cfg.home, self.cfg.logs_dir, self.cfg.run_dir, self.cfg.data_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.check_topology()
        self.generate_crypto()
        self.generate_configs(sample_dir)
        self.start_orderers()
        self.join_orderers()
        self.start_peers()
        self.join_peers()
        deployer = cc.Deployer(self)
        for channel, name in CHAINCODES.items():
            if channel in self.cfg.channels:
                deployer.deploy(channel, name)
        write_profile(self.cfg, self.cryptos, self.members())
        self.register_members()
        self.log(f"network up in {time.monotonic() - t0:.1f}s; profile: {self.cfg.profile_path}")

    def register_members(self) -> None:
        """Each local org registers itself on every channel (``RegisterMember``, signed by
        its own admin app identity); idempotent. Needs the committed chaincodes and the
        profile."""
        from synthreg.network.members import register_members
        from synthreg.network.profile import load_profile

        register_members(load_profile(self.cfg.home), [o.msp_id for o in self.cfg.orgs], self.log)

    def check_topology(self) -> None:
        """A home keeps the shape it was created with: its genesis blocks name the
        consenters' ports, so resuming with other ports or orgs would start nodes
        that cannot reach each other. Refused with a clear error instead."""
        path = self.cfg.home / "topology.json"
        want = {"n_orgs": self.cfg.n_orgs, "base_port": self.cfg.base_port,
                "batch_timeout": self.cfg.batch_timeout, "channels": list(self.cfg.channels),
                "layout": LAYOUT}
        if path.exists():
            have = json.loads(path.read_text())
            if have != want:
                diff = ", ".join(f"{k} {have.get(k)!r} (asked {v!r})" for k, v in want.items() if have.get(k) != v)
                raise NetworkError(f"network home {self.cfg.home} was created with {diff}; "
                                   "use the same options, or `synthreg network down --wipe` it first")
        else:
            path.write_text(json.dumps(want, indent=2))

    def down(self, wipe: bool = False) -> list[str]:
        stopped = []
        # chaincode servers and peers first, orderers last
        names = process.known_processes(self.cfg.run_dir)
        order = sorted(names, key=lambda n: (not n.startswith("cc-"), not n.startswith("peer-"), n))
        for name in order:
            if process.stop(self.cfg.run_dir, name):
                stopped.append(name)
        if wipe and self.cfg.home.exists():
            shutil.rmtree(self.cfg.home)
        return stopped

    def status(self) -> dict[str, object]:
        procs = {}
        for name in process.known_processes(self.cfg.run_dir):
            pid = process.running_pid(self.cfg.run_dir, name)
            procs[name] = {"pid": pid, "running": pid is not None}
        profile = None
        if self.cfg.profile_path.exists():
            profile = json.loads(self.cfg.profile_path.read_text())
        return {"home": str(self.cfg.home), "processes": procs, "profile": profile is not None}
