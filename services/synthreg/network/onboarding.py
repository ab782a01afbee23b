"""One registry, one host: its own home, the consortium built from public definitions.

The steps a registry's IT staff run (docs/deploy.md has the whole walk-through):

1. ``synthreg registry init --org RegistryNMSP --host ADDR`` (:func:`init_registry`):
   the registry's CAs, node and app identities and share key, made in its own home
   only, and ``<home>/org-def.json``, the public definition it sends to the others.
2. ``synthreg registry node up`` (:meth:`RegistryLauncher.nodes_up`): its orderer and
   peer, on its host's address, not yet in any channel.
3. ``synthreg consortium create --org-def ...`` (:func:`create_consortium`), by any one
   registry: checks every definition (:mod:`synthreg.network.orgdef`, endpoints reachable)
   and builds the genesis blocks of ``keys`` and ``gan`` from them alone, into one public
   bundle file that it sends back to everyone.
4. ``synthreg registry join --consortium BUNDLE`` (:meth:`RegistryLauncher.join`): checks
   that the bundle holds its own definition unchanged and that its blocks are exactly
   the ones the bundle's definitions give (rebuilt with ``configtxgen``), joins its own
   orderer and peer with its own admin, installs and runs the chaincode servers and
   approves both definitions with its own admin.
5. ``synthreg consortium commit`` (:meth:`RegistryLauncher.commit`): one registry commits
   once a majority approved; the others run the same command to wait for it. Then each
   registers itself as a member of ``keys`` and ``gan`` with its own admin
   (``RegisterMember``, :mod:`synthreg.network.members`); the chaincodes refuse a
   registry's apps until it has. A re-run is safe (already registered = done).

No step reads or writes another registry's private key: a home holds its own org's
keys and the others' certificates and public share keys (``consortium/<MSP>/``).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from synthreg.network import chaincode as cc
from synthreg.network import fabricconfig, pki, process
from synthreg.network.launcher import LAYOUT, Launcher, fabric_tool, run_cmd
from synthreg.network.orgdef import OrgDef, OrgDefError, check_distinct, check_reachable
from synthreg.network.profile import Member, write_profile
from synthreg.network.topology import CHAINCODES, CHANNELS, NetworkConfig, Org

BUNDLE_FORMAT = "synthreg-consortium/1"
REGISTRY_FILE = "registry.json"
ORG_DEF_FILE = "org-def.json"
Log = Callable[[str], None]


class OnboardingError(RuntimeError):
    """A step of forming or joining the consortium was refused; nothing was changed."""


# --- a registry's home ----------------------------------------------------------------
def registry_config(home: Path, fabric_bin: Path, repo_root: Path,
                    chaincode_bin: Path | None = None) -> NetworkConfig:
    """The :class:`NetworkConfig` of a registry's own home (from ``registry.json``);
    ``chaincode_bin``: prebuilt chaincode servers (:attr:`NetworkConfig.chaincode_bin`)."""
    path = home / REGISTRY_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise OnboardingError(f"{home} is not a registry home (no {REGISTRY_FILE}): "
                              "run `synthreg registry init` first") from None
    if data.get("layout") != LAYOUT:
        raise OnboardingError(f"{path} has layout {data.get('layout')!r}, this version writes {LAYOUT}")
    org = Org.from_msp_id(data["msp_id"], int(data["base_port"]), data["host"])
    return NetworkConfig(home=home, fabric_bin=fabric_bin, repo_root=repo_root, base_port=org.base_port,
                         batch_timeout=data.get("batch_timeout", "10ms"), local_org=org,
                         chaincode_bin=chaincode_bin)


def init_registry(home: Path, msp_id: str, host: str, base_port: int, fabric_bin: Path,
                  repo_root: Path) -> OrgDef:
    """Create the registry's home and its material; idempotent for the same arguments."""
    try:
        org = Org.from_msp_id(msp_id, base_port, host)
    except ValueError as exc:
        raise OnboardingError(str(exc)) from None
    from synthreg.network.orgdef import is_host

    if not is_host(host):
        raise OnboardingError(f"--host {host!r} is neither an IP address nor a host name")
    if base_port < 1024 or org.port("cc_keyvault") > 65535:
        raise OnboardingError(f"--base-port {base_port} puts {msp_id}'s ports at {org.port('orderer')}.."
                              f"{org.port('cc_keyvault')}, outside 1024..65535")
    want = {"msp_id": msp_id, "host": host, "base_port": base_port, "layout": LAYOUT}
    path = home / REGISTRY_FILE
    if path.exists():
        have = json.loads(path.read_text())
        if {k: have.get(k) for k in want} != want:
            raise OnboardingError(f"{home} already holds registry {have.get('msp_id')} at {have.get('host')} "
                                  f"(base port {have.get('base_port')}); use another --home")
    elif home.exists() and any(home.iterdir()):
        raise OnboardingError(f"{home} exists and is not empty; give a new folder")
    home.mkdir(parents=True, exist_ok=True)
    # registry.json first: an interrupted init leaves a home that a re-run with the same
    # arguments completes (the crypto is written complete-marker last, see pki.generate_org).
    path.write_text(json.dumps(want, indent=2))
    cfg = NetworkConfig(home=home, fabric_bin=fabric_bin, repo_root=repo_root, base_port=base_port,
                        local_org=org)
    launcher = RegistryLauncher(cfg, lambda _m: None)
    launcher.generate_crypto()
    d = own_org_def(cfg, launcher.crypto(org))
    (home / ORG_DEF_FILE).write_text(json.dumps(d.to_dict(), indent=2))
    return d


def own_org_def(cfg: NetworkConfig, crypto: pki.OrgCrypto) -> OrgDef:
    org = cfg.orgs[0]
    return OrgDef(
        msp_id=org.msp_id, host=org.host, base_port=org.base_port,
        ca_cert=(crypto.msp_dir / "cacerts" / "ca.pem").read_text(),
        tls_ca_cert=crypto.tls_ca_cert.read_text(),
        orderer_tls_cert=(crypto.node_dir("orderer0") / "tls" / "server.crt").read_text(),
        peer_tls_cert=(crypto.node_dir("peer0") / "tls" / "server.crt").read_text(),
        share_public_key=(crypto.share_key_dir / "x25519_pk.pem").read_text(),
        source=str(cfg.home / ORG_DEF_FILE))


def public_member(root: Path, d: OrgDef) -> Member:
    """``d`` as a :class:`Member` whose public material lies below ``root/<MSP>`` (laid out
    by :func:`write_public_member`)."""
    base = root / d.msp_id
    return Member(d.org, base / "msp", base / "tls-ca.pem", base / "orderer-tls.pem", base / "share-key")


def write_public_member(root: Path, d: OrgDef) -> Member:
    """Lay out ``d``'s public material below ``root/<MSP>`` (verifying MSP folder, TLS CA,
    orderer TLS certificate, share public key) and return it as a :class:`Member`."""
    base = root / d.msp_id
    msp = base / "msp"
    for sub, pem in (("cacerts/ca.pem", d.ca_cert), ("tlscacerts/tlsca.pem", d.tls_ca_cert)):
        (msp / sub).parent.mkdir(parents=True, exist_ok=True)
        (msp / sub).write_text(pem)
    (msp / "config.yaml").write_bytes(pki._node_ous_config())
    (base / "tls-ca.pem").write_text(d.tls_ca_cert)
    (base / "orderer-tls.pem").write_text(d.orderer_tls_cert)
    (base / "share-key").mkdir(exist_ok=True)
    (base / "share-key" / "x25519_pk.pem").write_text(d.share_public_key)
    return public_member(root, d)


# --- the consortium bundle ------------------------------------------------------------
@dataclass(frozen=True)
class Bundle:
    org_defs: list[OrgDef]
    """the founders: the genesis blocks are built from exactly these"""
    blocks: dict[str, bytes]
    batch_timeout: str
    added: list[OrgDef] = field(default_factory=list)
    """members added later by a config update (:mod:`synthreg.network.addorg`)"""
    config_blocks: dict[str, bytes] = field(default_factory=dict)
    """the channels' newest config blocks when members were added (a newcomer's orderer
    joins with these; they must name every member)"""

    @property
    def all_defs(self) -> list[OrgDef]:
        return [*self.org_defs, *self.added]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": BUNDLE_FORMAT, "batch_timeout": self.batch_timeout,
                               "org_defs": [d.to_dict() for d in self.org_defs],
                               "channels": {ch: base64.b64encode(b).decode() for ch, b in self.blocks.items()}}
        if self.added:
            out["added"] = [d.to_dict() for d in self.added]
            out["config_blocks"] = {ch: base64.b64encode(b).decode() for ch, b in self.config_blocks.items()}
        return out

    def verify_added(self) -> None:
        """The newest config blocks name exactly every member (founders and added) with
        their definitions' certificates, and their orderers as consenters."""
        if not self.added:
            return
        want = {d.msp_id: {"msp_id": d.msp_id, "root_certs": [d.ca_cert.strip()],
                           "tls_root_certs": [d.tls_ca_cert.strip()]} for d in self.all_defs}
        consenters = {d.org.orderer_endpoint: d.orderer_tls_cert.strip() for d in self.all_defs}
        if sorted(self.config_blocks) != sorted(CHANNELS):
            raise OnboardingError(f"config blocks of {sorted(self.config_blocks)}, expected {sorted(CHANNELS)}")
        for ch, block in self.config_blocks.items():
            have = block_orgs(block)
            if have["Application"] != want or have["Orderer"] != want or have["Consenters"] != consenters:
                raise OnboardingError(f"the newest config block of '{ch}' does not name exactly the members "
                                      f"{sorted(want)} and their orderers")

    @classmethod
    def load(cls, path: Path) -> Bundle:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise OnboardingError(f"no consortium bundle at {path}") from None
        except json.JSONDecodeError as exc:
            raise OnboardingError(f"{path} is not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != BUNDLE_FORMAT:
            raise OnboardingError(f"{path} is not a consortium bundle ({BUNDLE_FORMAT})")
        defs = [OrgDef.from_dict(d, f"{path}#org_defs[{i}]") for i, d in enumerate(data.get("org_defs") or [])]
        check_distinct(defs)
        channels = data.get("channels")
        if not isinstance(channels, dict) or sorted(channels) != sorted(CHANNELS):
            shown = sorted(channels) if isinstance(channels, dict) else channels
            raise OnboardingError(f"{path}: channels {shown}, expected {sorted(CHANNELS)}")
        batch_timeout = data.get("batch_timeout")
        if not isinstance(batch_timeout, str):
            raise OnboardingError(f"{path}: batch_timeout {batch_timeout!r} is not a duration string")
        blocks = {}
        for ch, b in channels.items():
            try:
                blocks[ch] = base64.b64decode(b, validate=True)
            except (ValueError, TypeError) as exc:
                raise OnboardingError(f"{path}: the block of channel '{ch}' is not base64 ({exc})") from None
        added = [OrgDef.from_dict(d, f"{path}#added[{i}]") for i, d in enumerate(data.get("added") or [])]
        check_distinct([*defs, *added])
        configs = {}
        for ch, b in (data.get("config_blocks") or {}).items():
            try:
                configs[ch] = base64.b64decode(b, validate=True)
            except (ValueError, TypeError) as exc:
                raise OnboardingError(f"{path}: the config block of '{ch}' is not base64 ({exc})") from None
        return cls(defs, blocks, batch_timeout, added, configs)


def create_consortium(paths: list[Path], out: Path, fabric_bin: Path, *, batch_timeout: str = "10ms",
                      reachable: bool = True, log: Log = print) -> Bundle:
    """Check the definitions and build both genesis blocks from them; write the bundle
    to ``out`` only when everything succeeded (nothing is created otherwise)."""
    from synthreg.network.orgdef import load_org_defs

    if len(paths) < 2:
        raise OnboardingError("a consortium needs at least two org definitions")
    if out.exists():
        raise OnboardingError(f"{out} exists; refusing to overwrite a consortium bundle")
    defs = load_org_defs(paths, reachable=reachable)
    bundle = Bundle(defs, build_blocks(defs, fabric_bin, batch_timeout), batch_timeout)
    _verify_blocks(bundle)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(out.suffix + ".tmp")
    tmp_out.write_text(json.dumps(bundle.to_dict(), indent=2))
    os.replace(tmp_out, out)
    log(f"consortium of {', '.join(d.msp_id for d in defs)}: genesis blocks of {', '.join(CHANNELS)} -> {out}")
    return bundle


def build_blocks(defs: list[OrgDef], fabric_bin: Path, batch_timeout: str) -> dict[str, bytes]:
    """The genesis block of every channel, made by ``configtxgen`` from ``defs``' public
    material alone (in a temporary folder, removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="synthreg-consortium-") as tmp:
        root = Path(tmp)
        members = [write_public_member(root / "orgs", d) for d in defs]
        cfg = NetworkConfig(home=root, fabric_bin=fabric_bin, repo_root=root, batch_timeout=batch_timeout)
        cfgdir = fabricconfig.write_configtx(cfg, members)
        blocks = {}
        for ch in CHANNELS:
            block = root / f"{ch}.block"
            run_cmd([fabric_tool(fabric_bin, "configtxgen"), "-configPath", str(cfgdir), "-profile", "SynthregChannel",
                     "-outputBlock", str(block), "-channelID", ch])
            blocks[ch] = block.read_bytes()
    return blocks


def block_config(block: bytes) -> tuple[str, Any]:
    """A genesis block's channel ID and its channel configuration (``common.Config``)."""
    from fabric_protos.common import common_pb2, configtx_pb2

    blk = common_pb2.Block.FromString(block)
    env = common_pb2.Envelope.FromString(blk.data.data[0])
    payload = common_pb2.Payload.FromString(env.payload)
    header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    return str(header.channel_id), configtx_pb2.ConfigEnvelope.FromString(payload.data).config


def block_orgs(block: bytes) -> dict[str, dict[str, Any]]:
    """The orgs a genesis block's config names, per section (Application, Orderer): MSP ID ->
    root certs, TLS root certs; plus the Raft consenters (host:port -> TLS cert)."""
    from fabric_protos.msp import msp_config_pb2
    from fabric_protos.orderer import configuration_pb2 as orderer_conf
    from fabric_protos.orderer.etcdraft import configuration_pb2

    _, conf = block_config(block)
    out: dict[str, dict[str, Any]] = {}
    for section in ("Application", "Orderer"):
        orgs = {}
        for name, group in conf.channel_group.groups[section].groups.items():
            msp = msp_config_pb2.MSPConfig.FromString(group.values["MSP"].value)
            fab = msp_config_pb2.FabricMSPConfig.FromString(msp.config)
            orgs[name] = {"msp_id": fab.name, "root_certs": [c.decode().strip() for c in fab.root_certs],
                          "tls_root_certs": [c.decode().strip() for c in fab.tls_root_certs]}
        out[section] = orgs
    consensus = orderer_conf.ConsensusType.FromString(
        conf.channel_group.groups["Orderer"].values["ConsensusType"].value)
    meta = configuration_pb2.ConfigMetadata.FromString(consensus.metadata)
    out["Consenters"] = {f"{c.host}:{c.port}": c.server_tls_cert.decode().strip() for c in meta.consenters}
    return out


def _verify_blocks(bundle: Bundle, fabric_bin: Path | None = None) -> None:
    """Every genesis block is of its channel, names exactly the bundle's orgs with their
    definitions' certificates, and exactly their orderers as consenters. With ``fabric_bin``
    the blocks are also rebuilt from the definitions and their whole configuration
    (policies, endpoints, orderer settings) must be the same. A bundle whose blocks were
    swapped or edited is refused before any node joins."""
    want = {d.msp_id: {"msp_id": d.msp_id, "root_certs": [d.ca_cert.strip()],
                       "tls_root_certs": [d.tls_ca_cert.strip()]} for d in bundle.org_defs}
    consenters = {d.org.orderer_endpoint: d.orderer_tls_cert.strip() for d in bundle.org_defs}
    for ch, block in bundle.blocks.items():
        try:
            channel_id, _ = block_config(block)
            have = block_orgs(block)
        except Exception as exc:  # protobuf decode errors have no common base worth naming
            raise OnboardingError(f"genesis block of '{ch}' is not a config block: {exc}") from None
        if channel_id != ch:
            raise OnboardingError(f"genesis block of '{ch}' is that of channel {channel_id!r}")
        for section in ("Application", "Orderer"):
            if have[section] != want:
                raise OnboardingError(f"genesis block of '{ch}': its {section} orgs differ from the bundle's "
                                      f"org definitions ({sorted(have[section])} vs {sorted(want)})")
        if have["Consenters"] != consenters:
            raise OnboardingError(f"genesis block of '{ch}': its consenters differ from the org definitions")
    if fabric_bin is None:
        return
    rebuilt = build_blocks(bundle.org_defs, fabric_bin, bundle.batch_timeout)
    for ch, block in bundle.blocks.items():
        if block_config(block)[1] != block_config(rebuilt[ch])[1]:
            raise OnboardingError(f"genesis block of '{ch}': its configuration (policies, endpoints, orderer "
                                  "settings) differs from the one the org definitions give; refusing it")


# --- one registry's nodes -------------------------------------------------------------
class RegistryLauncher(Launcher):
    """The :class:`Launcher` steps for one registry's own home: its one org's nodes and
    chaincode servers; the other members from the consortium bundle it joined."""

    def __init__(self, cfg: NetworkConfig, log: Log = print) -> None:
        if cfg.local_org is None:
            raise ValueError("RegistryLauncher needs a NetworkConfig with local_org")
        super().__init__(cfg, log)
        self.org: Org = cfg.local_org

    @property
    def consortium_dir(self) -> Path:
        return self.cfg.home / "consortium"

    def members(self) -> list[Member]:
        own = Member.of_local(self.org, self.crypto(self.org))
        path = self.consortium_dir / "bundle.json"
        if not path.exists():
            return [own]
        return [own if d.msp_id == self.org.msp_id else public_member(self.consortium_dir, d)
                for d in Bundle.load(path).all_defs]

    def record_consortium(self, bundle_path: Path) -> None:
        """Keep ``bundle_path`` as this home's view of the consortium and lay out every other
        member's public material (read by :meth:`members`)."""
        kept = self.consortium_dir / "bundle.json"
        self.consortium_dir.mkdir(parents=True, exist_ok=True)
        if not (kept.exists() and kept.samefile(bundle_path)):  # re-run with the kept copy
            tmp = kept.with_suffix(".json.new")
            shutil.copyfile(bundle_path, tmp)
            tmp.replace(kept)
        for d in Bundle.load(kept).all_defs:
            if d.msp_id != self.org.msp_id:
                write_public_member(self.consortium_dir, d)

    def definition_sequence(self, channel: str) -> int:
        """The keys chaincode's definition changes with each added member (its private
        collection): sequence 1 + the members added since genesis; ganledger's stays 1."""
        path = self.consortium_dir / "bundle.json"
        if channel != "keys" or not path.exists():
            return 1
        return 1 + len(Bundle.load(path).added)

    def orderer_join_block(self, channel: str) -> Path:
        """A registry added later joins its orderer with the channel's newest config block
        (it then replicates the chain from the others); the founders with the genesis block."""
        newest = self.cfg.artifacts_dir / f"{channel}.config.block"
        return newest if newest.exists() else super().orderer_join_block(channel)

    def load(self) -> None:
        """Load the org's crypto (created by :func:`init_registry`)."""
        if not (self.cfg.org_crypto_root(self.org) / "ca" / "ca.pem").exists():
            raise OnboardingError(f"{self.cfg.home} has no crypto material: run `synthreg registry init`")
        self.generate_crypto()

    def nodes_up(self, sample_dir: Path) -> None:
        for d in (self.cfg.logs_dir, self.cfg.run_dir, self.cfg.data_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.load()
        fabricconfig.write_node_configs(self.cfg, sample_dir)
        self._start_orderer()
        self.start_peers()

    def _start_orderer(self) -> None:
        """Start the orderer; restart it when the consortium's TLS roots it trusts changed
        (before the join it knows its own org only)."""
        spec = self._orderer_spec(self.org)
        roots = spec.env["ORDERER_GENERAL_CLUSTER_ROOTCAS"]
        roots_file = self.cfg.run_dir / f"{spec.name}.roots"
        if roots_file.exists() and roots_file.read_text() != roots:
            process.stop(self.cfg.run_dir, spec.name)
        pid = process.start(spec, self.cfg.run_dir, self.cfg.logs_dir)
        roots_file.write_text(roots)
        self.log(f"orderer of {self.org.msp_id} healthy (pid {pid}, {self.org.orderer_endpoint})")

    def restart_chaincode_servers(self) -> None:
        """Start again the chaincode servers this registry ran at its join (their package
        IDs are kept in ``run/cc-<name>-<org>.ccid``); nothing before the join."""
        deployer = cc.Deployer(self)
        for name in CHAINCODES.values():
            id_file = self.cfg.run_dir / f"cc-{name}-{self.org.name}.ccid"
            if id_file.exists():
                deployer.start_server(name, self.org, deployer.build(name), id_file.read_text())

    def join(self, bundle_path: Path, sample_dir: Path, approve_timeout: float = 600) -> None:
        self.load()
        bundle = Bundle.load(bundle_path)
        own = own_org_def(self.cfg, self.crypto(self.org))
        mine = [d for d in bundle.all_defs if d.msp_id == self.org.msp_id]
        if not mine:
            raise OnboardingError(f"the bundle {bundle_path} does not include {self.org.msp_id}")
        if {k: v for k, v in mine[0].to_dict().items()} != own.to_dict():
            raise OnboardingError(f"the bundle's definition of {self.org.msp_id} differs from this registry's own "
                                  f"{own.source} (certificates, host or ports): refusing to join")
        _verify_blocks(bundle, self.cfg.fabric_bin)
        bundle.verify_added()
        # Checked before anything is written: a refused join leaves the home's bundle as it was.
        for ch, block in bundle.blocks.items():
            path = self.cfg.artifacts_dir / f"{ch}.block"
            if path.exists() and path.read_bytes() != block:
                raise OnboardingError(f"{path} holds another consortium's genesis block; "
                                      "a registry home joins one consortium")
        self.record_consortium(bundle_path)
        members = self.members()
        self.cfg.artifacts_dir.mkdir(parents=True, exist_ok=True)
        for ch, block in bundle.blocks.items():
            (self.cfg.artifacts_dir / f"{ch}.block").write_bytes(block)
        if any(d.msp_id == self.org.msp_id for d in bundle.added):
            for ch, block in bundle.config_blocks.items():
                (self.cfg.artifacts_dir / f"{ch}.config.block").write_bytes(block)
        fabricconfig.write_node_configs(self.cfg, sample_dir)
        fabricconfig.write_collections_config(self.cfg, members)
        self._start_orderer()
        self.join_orderers()
        self.start_peers()
        self.join_peers()
        deployer = cc.Deployer(self)
        deployer.submit_timeout = approve_timeout
        for channel, name in CHAINCODES.items():
            deployer.prepare(channel, name)
        write_profile(self.cfg, self.cryptos, members)
        self.log(f"{self.org.msp_id} joined {', '.join(CHANNELS)}; profile: {self.cfg.profile_path}")

    def commit(self, timeout: float = 600) -> None:
        """Commit both chaincode definitions once a majority approved (waits for that), or
        wait until the own peer sees them committed by another registry; then register this
        registry as a member of both channels with its own admin (idempotent, so also what
        a registry added later, or one re-running the command, does)."""
        import time

        self.load()
        deployer = cc.Deployer(self)
        deployer.submit_timeout = timeout
        n = len(self.members())
        for channel, name in CHAINCODES.items():
            deadline = time.monotonic() + timeout
            while not deployer.is_committed(self.org, channel, name):
                approvals = deployer.approvals(self.org, channel, name)
                if sum(approvals.values()) > n // 2:
                    deployer.commit(channel, name, self.org)
                    break
                if time.monotonic() > deadline:
                    raise OnboardingError(f"{name} on '{channel}': {sum(approvals.values())} of {n} approvals "
                                          f"after {timeout:.0f}s ({approvals}); a majority must approve")
                time.sleep(1.0)
            deployer.wait_committed(channel, name)
            self.log(f"{name} committed on '{channel}' as seen by {self.org.msp_id}")
        self.register_members()  # cfg.orgs is this registry alone: it registers itself

    def scan_foreign_keys(self) -> list[str]:
        """Files of this home holding a private key that does not belong to one of this
        org's certificates or its share key (must be empty; used by tests and `registry
        status`)."""
        return foreign_private_keys(self.cfg.home, self.cfg.org_crypto_root(self.org))


def foreign_private_keys(home: Path, own_root: Path) -> list[str]:
    """Paths below ``home`` holding a PEM private key that is not this org's own: own are
    the keys of its two CAs (``own_root/ca``, ``own_root/tlsca``), of certificates below
    ``own_root`` issued by one of them, and its share key. A foreign key copied together
    with its certificate or public key is still foreign."""
    from cryptography.hazmat.primitives import serialization

    from synthreg.network.orgdef import _signed_by

    def pub_bytes(key: Any) -> bytes:
        return bytes(key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))

    cas = [x509.load_pem_x509_certificate((own_root / sub / "ca.pem").read_bytes()) for sub in ("ca", "tlsca")]
    share_pk = pki.OrgCrypto(own_root, "", "").share_key_dir / "x25519_pk.pem"
    own: set[bytes] = {pub_bytes(ca.public_key()) for ca in cas}
    own.add(pub_bytes(serialization.load_pem_public_key(share_pk.read_bytes())))
    for path in own_root.rglob("*"):
        if not path.is_file() or path.is_symlink() or path.stat().st_size > 1_000_000:
            continue
        data = path.read_bytes()
        if b"-----BEGIN CERTIFICATE-----" in data:
            for cert in x509.load_pem_x509_certificates(data):
                if any(_signed_by(cert, ca) for ca in cas):
                    own.add(pub_bytes(cert.public_key()))
    foreign = []
    for path in home.rglob("*"):
        if not path.is_file() or path.is_symlink() or path.stat().st_size > 5_000_000:
            continue
        for block in _pem_blocks(_unpacked(path.read_bytes()), b"PRIVATE KEY"):
            try:
                key = serialization.load_pem_private_key(block, password=None)
            except (ValueError, TypeError):
                foreign.append(f"{path} (unreadable private key)")
                continue
            if pub_bytes(key.public_key()) not in own:
                foreign.append(str(path))
    return foreign


def _unpacked(data: bytes) -> bytes:
    """``data``, with the contents of gzip'd tar files (chaincode packages, also nested)
    appended, so keys inside packages are scanned too."""
    import gzip
    import io
    import tarfile

    if not data.startswith(b"\x1f\x8b"):
        return data
    try:
        raw = gzip.decompress(data)
        parts = [data]
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            for member in tar.getmembers():
                fh = tar.extractfile(member)
                if fh is not None:
                    parts.append(_unpacked(fh.read()))
        return b"\n".join(parts)
    except (OSError, tarfile.TarError, EOFError):
        return data


def _pem_blocks(data: bytes, kind: bytes) -> list[bytes]:
    """PEM blocks of ``kind`` in ``data``, also when embedded in JSON (``\\n`` escapes) or tar files."""
    text = data.replace(b"\\n", b"\n")
    out: list[bytes] = []
    start = 0
    while True:
        i = text.find(b"-----BEGIN ", start)
        if i < 0:
            return out
        j = text.find(b"-----END ", i)
        k = text.find(b"-----", j + 9)
        if j < 0 or k < 0:
            return out
        block = text[i:k + 5]
        if kind in block.split(b"\n", 1)[0]:
            out.append(block)
        start = k + 5


__all__ = ["BUNDLE_FORMAT", "Bundle", "OnboardingError", "OrgDefError", "RegistryLauncher", "check_reachable",
           "create_consortium", "foreign_private_keys", "init_registry", "registry_config"]
