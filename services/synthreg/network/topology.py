"""Declared shape of the local consortium network: orgs, nodes, ports, paths.

Built once from CLI options by `synthreg network ...` and passed down to every
launcher step; nothing below reads the environment.

Ports: org ``i`` (1-based) uses ``base_port + 100*i + offset`` with the offsets
below, so three orgs at the default base 7000 use 7101-7122, 7201-7222, 7301-7322.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

CHANNELS = ("keys", "gan")
CHAINCODES = {"gan": "ganledger", "keys": "keyvault"}
"""channel -> chaincode deployed on it"""

_OFFSETS = {
    "orderer": 1,
    "orderer_admin": 3,
    "orderer_ops": 4,
    "orderer_pprof": 5,
    "peer": 11,
    "peer_chaincode": 12,
    "peer_ops": 13,
    "peer_pprof": 14,
    "cc_ganledger": 21,
    "cc_keyvault": 22,
    "blobs": 31,
}


ORG_PATTERN = re.compile(r"^Registry([1-9][0-9]?)MSP$")
"""MSP IDs the launcher and onboarding give orgs; the number is the org's index, which fixes
its ports below. The chaincodes do not use this pattern: they admit an org once its admin
registered it on the channel (``RegisterMember``, :mod:`synthreg.network.members`)."""


@dataclass(frozen=True)
class Org:
    index: int
    base_port: int
    host: str = "127.0.0.1"
    """the address its peer and orderer listen on and are reached at (its host's address;
    127.0.0.1 when every registry shares one machine); chaincode servers stay on loopback"""

    @classmethod
    def from_msp_id(cls, msp_id: str, base_port: int, host: str = "127.0.0.1") -> Org:
        m = ORG_PATTERN.match(msp_id)
        if m is None:
            raise ValueError(f"org {msp_id!r} is not a consortium MSP ID (Registry<N>MSP, N in 1..99)")
        return cls(int(m.group(1)), base_port, host)

    @property
    def msp_id(self) -> str:
        return f"Registry{self.index}MSP"

    @property
    def name(self) -> str:
        return f"registry{self.index}"

    @property
    def domain(self) -> str:
        return f"registry{self.index}.synthreg.local"

    def port(self, what: str) -> int:
        return self.base_port + 100 * self.index + _OFFSETS[what]

    @property
    def peer_host(self) -> str:
        return f"peer0.{self.domain}"

    @property
    def orderer_host(self) -> str:
        return f"orderer0.{self.domain}"

    @property
    def peer_endpoint(self) -> str:
        return f"{self.host}:{self.port('peer')}"

    @property
    def orderer_endpoint(self) -> str:
        return f"{self.host}:{self.port('orderer')}"

    @property
    def blob_endpoint(self) -> str:
        """Where its merger serves the blobs of runs with ``blobs: served`` (mutual TLS,
        :mod:`synthreg.chain.blobs`)."""
        return f"{self.host}:{self.port('blobs')}"

    def chaincode_endpoint(self, chaincode: str) -> str:
        return f"127.0.0.1:{self.port('cc_' + chaincode)}"


@dataclass(frozen=True)
class NetworkConfig:
    """Everything the launcher needs, passed in explicitly.

    ``home`` holds all generated state (crypto, config, ledgers, logs, pids);
    ``fabric_bin`` the Fabric binaries; ``repo_root`` the checkout (chaincode
    sources, builder scripts). ``batch_timeout`` is the orderer's block-cutting
    timeout, the main knob for commit latency.
    """

    home: Path
    fabric_bin: Path
    repo_root: Path
    n_orgs: int = 3
    base_port: int = 7000
    batch_timeout: str = "10ms"
    max_message_count: int = 100
    channels: tuple[str, ...] = CHANNELS
    local_org: Org | None = None
    """set for one registry's own home (``synthreg registry init``): the only org whose
    nodes and keys it holds; the others are known from their public org definitions"""
    chaincode_bin: Path | None = None
    """a folder of prebuilt chaincode servers (``<name>`` each; the container image has
    them, and no Go toolchain); None builds them from ``chaincode/`` with ``go build``"""
    orgs: tuple[Org, ...] = field(init=False)

    def __post_init__(self) -> None:
        if self.local_org is not None:
            object.__setattr__(self, "orgs", (self.local_org,))
            return
        if not 1 <= self.n_orgs <= 9:
            raise ValueError("n_orgs must be between 1 and 9")
        object.__setattr__(self, "orgs", tuple(Org(i, self.base_port) for i in range(1, self.n_orgs + 1)))

    # --- paths ---------------------------------------------------------------
    @property
    def crypto_dir(self) -> Path:
        return self.home / "crypto"

    @property
    def config_dir(self) -> Path:
        return self.home / "config"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def profile_path(self) -> Path:
        return self.home / "profile.json"

    @property
    def builder_dir(self) -> Path:
        return self.repo_root / "network" / "builders" / "ccaas"

    @property
    def chaincode_src(self) -> Path:
        return self.repo_root / "chaincode"

    def org_crypto_root(self, org: Org) -> Path:
        return self.crypto_dir / org.name
