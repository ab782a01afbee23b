"""The connection profile of a running network: what clients need to connect.

Written by the launcher to ``<home>/profile.json`` after ``up``; read by the
CLI, the apps, the integration tests and the benchmarks. It holds endpoints
and paths only (certificates and MSP folders on disk), never key material.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from synthreg.network.pki import OrgCrypto
    from synthreg.network.topology import NetworkConfig, Org


class ProfileError(RuntimeError):
    """No usable profile: the network is not up, or the file is malformed."""


@dataclass(frozen=True)
class Member:
    """What every registry knows of one consortium org: public material only (the org's
    node endpoints, a verifying MSP folder, its TLS CA, its orderer's TLS certificate as a
    Raft consenter, and the public key its audit-key share is encrypted to)."""

    org: Org
    msp_dir: Path
    tls_ca_cert: Path
    orderer_tls_cert: Path
    share_key_dir: Path
    """holds ``x25519_pk.pem``; the private half only in the org's own home"""

    @classmethod
    def of_local(cls, org: Org, crypto: OrgCrypto) -> Member:
        return cls(org, crypto.msp_dir, crypto.tls_ca_cert,
                   crypto.node_dir("orderer0") / "tls" / "server.crt", crypto.share_key_dir)


@dataclass(frozen=True)
class OrgProfile:
    msp_id: str
    peer_endpoint: str
    peer_host: str
    orderer_endpoint: str
    orderer_admin_endpoint: str
    """channel participation (osnadmin); trusts this org's TLS CA only"""
    tls_ca_cert: Path
    users: dict[str, Path]
    """role -> MSP folder (signcerts/, keystore/) of that app identity; empty for another
    registry's org in a registry's own home (its identities are not here)"""
    fabric_admin_msp: Path | None
    crypto_root: Path | None
    share_key_dir: Path
    """x25519_pk.pem (public) and x25519_sk.pem (org-private) for audit-key shares"""
    blob_endpoint: str = ""
    """host:port of its merger's blob server (runs with ``blobs: served``); "" in a
    profile written before it existed"""

    @property
    def blob_tls_dir(self) -> Path | None:
        """The own org's blob-server TLS pair (``server.crt``, ``server.key``), issued by its
        TLS CA; None for another org or an org generated before it existed."""
        if self.crypto_root is None:
            return None
        d = self.crypto_root / "tls-extra" / "blobs"
        return d if (d / "server.key").exists() else None

    def user_msp(self, role: str) -> Path:
        try:
            return self.users[role]
        except KeyError:
            raise ProfileError(f"{self.msp_id} has no '{role}' identity (have: {sorted(self.users)})") from None


@dataclass(frozen=True)
class Profile:
    home: Path
    channels: tuple[str, ...]
    chaincodes: dict[str, str]
    orgs: dict[str, OrgProfile]
    batch_timeout: str

    def org(self, msp_id: str) -> OrgProfile:
        try:
            return self.orgs[msp_id]
        except KeyError:
            raise ProfileError(f"unknown org {msp_id!r} (have: {sorted(self.orgs)})") from None

    @property
    def msp_ids(self) -> list[str]:
        return sorted(self.orgs)


def write_profile(cfg: NetworkConfig, cryptos: dict[str, OrgCrypto], members: list[Member]) -> Path:
    """The profile of ``members``; identities only for the orgs in ``cryptos`` (all of them
    in the one-home development network, the own org in a registry's home)."""
    from synthreg.network.pki import APP_ROLES
    from synthreg.network.topology import CHAINCODES

    orgs: dict[str, dict[str, object]] = {}
    for m in members:
        o, c = m.org, cryptos.get(m.org.msp_id)
        orgs[o.msp_id] = {
            "peer_endpoint": o.peer_endpoint,
            "peer_host": o.peer_host,
            "orderer_endpoint": o.orderer_endpoint,
            "orderer_admin_endpoint": f"{o.host}:{o.port('orderer_admin')}" if c else "",
            "tls_ca_cert": str(m.tls_ca_cert),
            "users": {role: str(c.user_msp(role)) for role in APP_ROLES} if c else {},
            "fabric_admin_msp": str(c.root / "users" / "fabric-admin" / "msp") if c else None,
            "crypto_root": str(c.root) if c else None,
            "share_key_dir": str(m.share_key_dir),
            "blob_endpoint": o.blob_endpoint,
        }
    data = {
        "channels": list(cfg.channels),
        "chaincodes": {ch: CHAINCODES[ch] for ch in cfg.channels},
        "batch_timeout": cfg.batch_timeout,
        "orgs": orgs,
    }
    tmp = cfg.profile_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(cfg.profile_path)
    return cfg.profile_path


def load_profile(home: Path) -> Profile:
    path = home / "profile.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ProfileError(f"no network profile at {path}: run `synthreg network up --home {home}`") from None
    except json.JSONDecodeError as exc:
        raise ProfileError(f"{path} is not valid JSON: {exc}") from exc
    orgs = {
        msp: OrgProfile(
            msp_id=msp,
            peer_endpoint=o["peer_endpoint"],
            peer_host=o["peer_host"],
            orderer_endpoint=o["orderer_endpoint"],
            orderer_admin_endpoint=o.get("orderer_admin_endpoint", ""),
            tls_ca_cert=Path(o["tls_ca_cert"]),
            users={k: Path(v) for k, v in o["users"].items()},
            fabric_admin_msp=Path(o["fabric_admin_msp"]) if o.get("fabric_admin_msp") else None,
            crypto_root=Path(o["crypto_root"]) if o.get("crypto_root") else None,
            share_key_dir=Path(o["share_key_dir"]),
            blob_endpoint=str(o.get("blob_endpoint", "")),
        )
        for msp, o in data["orgs"].items()
    }
    return Profile(home=home, channels=tuple(data["channels"]), chaincodes=dict(data["chaincodes"]),
                   orgs=orgs, batch_timeout=data.get("batch_timeout", "?"))
