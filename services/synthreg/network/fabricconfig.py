"""Fabric configuration files for the local network, rendered from the topology.

* ``configtx.yaml`` (policy as data): every registry org is both an
  application org (one peer, anchor peer set at genesis) and an orderer org
  (one Raft consenter); chaincode endorsement defaults to MAJORITY.
* ``core.yaml`` / ``orderer.yaml``: copies of the pinned Fabric commit's sample
  configs with the few settings patched that env overrides cannot express
  (external builders list, no Docker); the rest is set per process by
  :mod:`synthreg.network.process` through ``CORE_*`` / ``ORDERER_*`` variables.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from synthreg.network.profile import Member
from synthreg.network.topology import NetworkConfig


def _sig(rule: str) -> dict[str, str]:
    return {"Type": "Signature", "Rule": rule}


def _meta(rule: str) -> dict[str, str]:
    return {"Type": "ImplicitMeta", "Rule": rule}


def _org_section(member: Member) -> dict[str, Any]:
    org = member.org
    m = org.msp_id
    return {
        "Name": m,
        "ID": m,
        "MSPDir": str(member.msp_dir),
        "Policies": {
            "Readers": _sig(f"OR('{m}.member')"),
            "Writers": _sig(f"OR('{m}.member')"),
            "Admins": _sig(f"OR('{m}.admin')"),
            "Endorsement": _sig(f"OR('{m}.peer')"),
        },
        "OrdererEndpoints": [org.orderer_endpoint],
        "AnchorPeers": [{"Host": org.host, "Port": org.port("peer")}],
    }


def render_configtx(cfg: NetworkConfig, members: list[Member]) -> dict[str, Any]:
    """configtx.yaml of the consortium ``members`` (public material only: verifying MSP
    folders and the orderers' TLS certificates)."""
    orgs = [_org_section(m) for m in members]
    consenters = []
    for m in members:
        tls = m.orderer_tls_cert
        consenters.append({"Host": m.org.host, "Port": m.org.port("orderer"),
                           "ClientTLSCert": str(tls), "ServerTLSCert": str(tls)})
    orderer = {
        "OrdererType": "etcdraft",
        "BatchTimeout": cfg.batch_timeout,
        "BatchSize": {
            "MaxMessageCount": cfg.max_message_count,
            "AbsoluteMaxBytes": "64 MB",
            "PreferredMaxBytes": "16 MB",
        },
        "EtcdRaft": {
            "Consenters": consenters,
            "Options": {
                "TickInterval": "100ms",
                "ElectionTick": 10,
                "HeartbeatTick": 1,
                "MaxInflightBlocks": 5,
                "SnapshotIntervalSize": "16 MB",
            },
        },
        "Organizations": orgs,
        "Policies": {
            "Readers": _meta("ANY Readers"),
            "Writers": _meta("ANY Writers"),
            "Admins": _meta("MAJORITY Admins"),
            "BlockValidation": _meta("ANY Writers"),
        },
        "Capabilities": {"V2_0": True},
    }
    application = {
        "Organizations": orgs,
        "Policies": {
            "Readers": _meta("ANY Readers"),
            "Writers": _meta("ANY Writers"),
            "Admins": _meta("MAJORITY Admins"),
            "LifecycleEndorsement": _meta("MAJORITY Endorsement"),
            "Endorsement": _meta("MAJORITY Endorsement"),
        },
        "Capabilities": {"V2_5": True},
    }
    channel = {
        "Policies": {
            "Readers": _meta("ANY Readers"),
            "Writers": _meta("ANY Writers"),
            "Admins": _meta("MAJORITY Admins"),
        },
        "Capabilities": {"V2_0": True},
    }
    return {
        "Organizations": orgs,
        "Profiles": {"SynthregChannel": {**channel, "Orderer": orderer, "Application": application}},
    }


def write_configtx(cfg: NetworkConfig, members: list[Member]) -> Path:
    out = cfg.config_dir / "configtx" / "configtx.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(render_configtx(cfg, members), sort_keys=False))
    return out.parent


ORDERER_MIN_PING_INTERVAL = "5s"  # below gRPC's 10 s floor for client keepalive pings


def write_node_configs(cfg: NetworkConfig, sample_dir: Path) -> Path:
    """Patched copies of the sample core.yaml and orderer.yaml in ``config/``."""
    core_src, orderer_src = sample_dir / "core.yaml", sample_dir / "orderer.yaml"
    for path in (core_src, orderer_src):
        if not path.exists():
            raise FileNotFoundError(
                f"{path} is missing: run scripts/fabric-binaries.sh (it copies the sample configs)"
            )
    core = yaml.safe_load(core_src.read_text())
    core["chaincode"]["externalBuilders"] = [
        {"name": "synthreg-ccaas", "path": str(cfg.builder_dir), "propagateEnvironment": []}
    ]
    core["vm"]["endpoint"] = ""
    core["peer"].setdefault("gateway", {})["enabled"] = True
    core["ledger"]["state"]["stateDatabase"] = "goleveldb"
    # No chaincode reads a key's history (GetHistoryForKey): the peer need not index every
    # write of every block (issue 11: ledger growth per host and commit work).
    core["ledger"].setdefault("history", {})["enableHistoryDatabase"] = False
    out = cfg.config_dir / "node"
    out.mkdir(parents=True, exist_ok=True)
    (out / "core.yaml").write_text(yaml.safe_dump(core, sort_keys=False))
    orderer = yaml.safe_load(orderer_src.read_text())
    # The peer CLI's orderer client (approveformyorg, commit) sets no keepalive, so gRPC
    # pings every 10 s, while the sample orderer permits one ping per 60 s: a lifecycle call
    # that idles ~30 s on a loaded host got GOAWAY "too_many_pings" (a CI failure).
    orderer["General"].setdefault("Keepalive", {})["ServerMinInterval"] = ORDERER_MIN_PING_INTERVAL
    (out / "orderer.yaml").write_text(yaml.safe_dump(orderer, sort_keys=False))
    return out


def collections_config(members: list[Member]) -> list[dict[str, Any]]:
    """One private collection per org on ``keys`` (see chaincode/README.md).

    Only the org's members may read it; the org's own peer alone endorses
    writes to it (collection-level endorsement policy), so the ceremony host
    can place an encrypted share in every org's collection without any other
    org's peer ever holding it.
    """
    cols = []
    for o in (m.org for m in members):
        cols.append({
            "name": f"shares_{o.msp_id}",
            "policy": f"OR('{o.msp_id}.member')",
            "requiredPeerCount": 0,
            "maxPeerCount": 0,
            "blockToLive": 0,
            "memberOnlyRead": True,
            "memberOnlyWrite": False,
            "endorsementPolicy": {"signaturePolicy": f"OR('{o.msp_id}.peer')"},
        })
    return cols


def write_collections_config(cfg: NetworkConfig, members: list[Member]) -> Path:
    out = cfg.config_dir / "collections_keys.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(collections_config(members), indent=2))
    return out
