"""In-memory :class:`~synthreg.keys.vault.KeyVault` for fast unit tests of logic.

Who calls: ``tests/unit/test_keys_*.py`` only. It mimics the keyvault rules
the services depend on (one ceremony; shares write-once, readable only by the
owning org's admin; one release per org per auditor; error codes) so the
services' control flow can be tested in milliseconds. It enforces no
endorsement policy, stores no private collections and verifies no signature:
never evidence for privacy or policy claims — ``tests/integration/test_keys_ledger.py``
runs against the real network for those.

One :class:`InMemoryKeyLedger` holds the state; :meth:`InMemoryKeyLedger.vault`
gives a vault acting as ``(msp_id, role)``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from synthreg.keys.errors import (
    VaultAccessDeniedError,
    VaultAlreadyExistsError,
    VaultInvalidArgumentError,
    VaultNotFoundError,
    VaultPreconditionError,
)
from synthreg.keys.records import CeremonyFacts, CeremonyRecord, ExtensionRecord, Extensions, OwnShare, Releases

__all__ = ["InMemoryKeyLedger", "InMemoryKeyVault"]


@dataclass
class InMemoryKeyLedger:
    """Shared state of the fake: ceremony record, shares per org, releases."""

    record: dict[str, Any] | None = None
    host: str = ""
    shares: dict[str, bytes] = field(default_factory=dict)
    releases: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    extensions: dict[str, dict[str, Any]] = field(default_factory=dict)
    tx_counter: int = 0

    def next_tx(self) -> str:
        self.tx_counter += 1
        return f"tx{self.tx_counter:04d}"

    def vault(self, msp_id: str, role: str) -> InMemoryKeyVault:
        return InMemoryKeyVault(self, msp_id, role)


class InMemoryKeyVault:
    """The :class:`~synthreg.keys.vault.KeyVault` protocol acting as ``(msp_id, role)``."""

    def __init__(self, ledger: InMemoryKeyLedger, msp_id: str, role: str) -> None:
        self.ledger = ledger
        self.msp_id = msp_id
        self.role = role

    def _require_admin(self, fn: str) -> None:
        if self.role != "admin":
            raise VaultAccessDeniedError(fn, f"ACCESS_DENIED: caller {self.msp_id} role {self.role!r} not allowed")

    def _record(self, fn: str) -> dict[str, Any]:
        if self.ledger.record is None:
            raise VaultPreconditionError(fn, "PRECONDITION_FAILED: no key ceremony has been recorded")
        return self.ledger.record

    def record_ceremony(self, record: Mapping[str, Any]) -> dict[str, Any]:
        self._require_admin("RecordCeremony")
        if self.ledger.record is not None:
            raise VaultAlreadyExistsError("RecordCeremony",
                                          f"ALREADY_EXISTS: key ceremony {self.ledger.record['ceremony_id']}")
        self.ledger.record = json.loads(json.dumps(record))
        self.ledger.host = self.msp_id
        return {"ceremony_id": record["ceremony_id"], "host": {"msp": self.msp_id}, "txid": self.ledger.next_tx()}

    def get_ceremony(self) -> CeremonyFacts:
        rec = self._record("GetCeremony")
        facts = {k: rec[k] for k in ("ceremony_id", "t", "n", "public_context_hash", "commitments",
                                     "share_index", "recipient_public_keys", "test_ciphertext_sha256")}
        facts.update(host={"msp": self.ledger.host}, txid="tx0001", timestamp="",
                     shares={o: hashlib.sha256(v).hexdigest() for o, v in self.ledger.shares.items()})
        return CeremonyFacts.parse(json.dumps(facts))

    def get_ceremony_record(self) -> CeremonyRecord:
        return CeremonyRecord.parse(json.dumps(self._record("GetCeremonyRecord")))

    def put_share(self, org: str, share: bytes) -> dict[str, Any]:
        self._require_admin("PutShare")
        rec = self._record("PutShare")
        if self.msp_id != self.ledger.host:
            raise VaultAccessDeniedError("PutShare", f"ACCESS_DENIED: {self.msp_id} is not the ceremony host")
        if org in self.ledger.shares:
            raise VaultAlreadyExistsError("PutShare", f"ALREADY_EXISTS: share for {org}")
        self.ledger.shares[org] = bytes(share)
        return {"org": org, "collection": f"shares_{org}", "share_index": rec["share_index"][org],
                "sha256": hashlib.sha256(share).hexdigest(), "txid": self.ledger.next_tx()}

    def get_share(self, org: str) -> OwnShare:
        self._require_admin("GetShare")
        if org != self.msp_id:
            raise VaultAccessDeniedError("GetShare", f"ACCESS_DENIED: {self.msp_id} may not read the share of {org}")
        rec = self._record("GetShare")
        if org not in self.ledger.shares:
            raise VaultNotFoundError("GetShare", f"NOT_FOUND: share for {org}")
        value = self.ledger.shares[org]
        return OwnShare.parse(json.dumps({
            "ceremony_id": rec["ceremony_id"], "org": org, "share_index": self._index(org),
            "share_b64": base64.b64encode(value).decode(), "sha256": hashlib.sha256(value).hexdigest(),
        }))

    def get_share_hash(self, org: str) -> str:
        if org not in self.ledger.shares:
            raise VaultNotFoundError("GetShareHash", f"NOT_FOUND: share of {org}")
        return hashlib.sha256(self.ledger.shares[org]).hexdigest()

    def release_share(self, auditor_id: str, envelope: Mapping[str, Any]) -> dict[str, Any]:
        self._require_admin("ReleaseShare")
        rec = self._record("ReleaseShare")
        if not self._usable(self.msp_id):
            raise VaultPreconditionError("ReleaseShare", f"PRECONDITION_FAILED: {self.msp_id} holds no usable share")
        if (auditor_id, self.msp_id) in self.ledger.releases:
            raise VaultAlreadyExistsError("ReleaseShare", f"ALREADY_EXISTS: release to {auditor_id} by {self.msp_id}")
        env = json.dumps(envelope, separators=(",", ":"))
        release = {
            "ceremony_id": rec["ceremony_id"], "auditor": auditor_id, "org": self.msp_id,
            "share_index": self._index(self.msp_id), "envelope": json.loads(env),
            "envelope_sha256": hashlib.sha256(env.encode()).hexdigest(),
            "released_by": {"msp": self.msp_id, "role": self.role}, "txid": self.ledger.next_tx(), "timestamp": "",
        }
        self.ledger.releases[(auditor_id, self.msp_id)] = release
        return release

    def list_releases(self, auditor_id: str) -> Releases:
        rec = self._record("ListReleases")
        rels = [r for (aid, _), r in sorted(self.ledger.releases.items()) if aid == auditor_id]
        return Releases.parse(json.dumps({"ceremony_id": rec["ceremony_id"], "auditor": auditor_id,
                                          "t": rec["t"], "releases": rels}))

    # Share extension (chaincode/keyvault/extend.go).

    def _index(self, org: str) -> int:
        rec = self.ledger.record or {}
        if org in rec.get("share_index", {}):
            return int(rec["share_index"][org])
        return int(self.ledger.extensions[org]["share_index"])

    def _usable(self, org: str) -> bool:
        rec = self.ledger.record or {}
        if org in rec.get("share_index", {}):
            return org in self.ledger.shares
        return bool(self.ledger.extensions.get(org, {}).get("completed_txid"))

    def _open_extension(self, fn: str, org: str) -> dict[str, Any]:
        ext = self.ledger.extensions.get(org)
        if ext is None:
            raise VaultNotFoundError(fn, f"NOT_FOUND: share extension of {org}")
        if ext["completed_txid"]:
            raise VaultPreconditionError(fn, f"PRECONDITION_FAILED: the share extension of {org} is complete")
        return ext

    def request_share(self, public_key: bytes, holders: list[str]) -> ExtensionRecord:
        self._require_admin("RequestShare")
        rec = self._record("RequestShare")
        if self.msp_id in rec["share_index"] or self.msp_id in self.ledger.extensions:
            raise VaultAlreadyExistsError("RequestShare", f"ALREADY_EXISTS: share for {self.msp_id}")
        if len(holders) != rec["t"] or len(set(holders)) != len(holders):
            raise VaultInvalidArgumentError("RequestShare", f"INVALID_ARGUMENT: need exactly t = {rec['t']} holders")
        keys = dict(rec["recipient_public_keys"]) | {o: e["public_key"] for o, e in self.ledger.extensions.items()}
        for h in holders:
            if not (h in keys and self._usable(h)):
                raise VaultInvalidArgumentError("RequestShare", f"INVALID_ARGUMENT: {h} holds no usable share")
        used = list(rec["share_index"].values()) + [e["share_index"] for e in self.ledger.extensions.values()]
        tx = self.ledger.next_tx()
        ext = {"extension_id": tx, "ceremony_id": rec["ceremony_id"], "org": self.msp_id,
               "share_index": max(used) + 1, "public_key": public_key.hex(), "holders": sorted(holders),
               "holder_index": {h: self._index(h) for h in holders},
               "holder_public_keys": {h: keys[h] for h in holders},
               "contributions": {}, "completed_txid": ""}
        self.ledger.extensions[self.msp_id] = ext
        return ExtensionRecord.parse_obj(ext)

    def contribute_share(self, org: str, envelope: Mapping[str, Any]) -> ExtensionRecord:
        self._require_admin("ContributeShare")
        ext = self._open_extension("ContributeShare", org)
        if self.msp_id not in ext["holders"]:
            raise VaultPreconditionError("ContributeShare",
                                         f"PRECONDITION_FAILED: {self.msp_id} is not a chosen holder")
        if self.msp_id in ext["contributions"]:
            raise VaultAlreadyExistsError("ContributeShare", f"ALREADY_EXISTS: contribution by {self.msp_id}")
        ext["contributions"][self.msp_id] = {"envelope": json.loads(json.dumps(envelope)),
                                             "txid": self.ledger.next_tx()}
        return ExtensionRecord.parse_obj(ext)

    def put_own_share(self, share: bytes) -> dict[str, Any]:
        self._require_admin("PutOwnShare")
        ext = self._open_extension("PutOwnShare", self.msp_id)
        if set(ext["contributions"]) != set(ext["holders"]):
            raise VaultPreconditionError("PutOwnShare", "PRECONDITION_FAILED: contributions still missing")
        if self.msp_id in self.ledger.shares:
            raise VaultAlreadyExistsError("PutOwnShare", f"ALREADY_EXISTS: share for {self.msp_id}")
        self.ledger.shares[self.msp_id] = bytes(share)
        return {"org": self.msp_id, "share_index": ext["share_index"], "sha256": hashlib.sha256(share).hexdigest(),
                "txid": self.ledger.next_tx()}

    def complete_share(self, commitment: str) -> ExtensionRecord:
        self._require_admin("CompleteShare")
        ext = self._open_extension("CompleteShare", self.msp_id)
        if self.msp_id not in self.ledger.shares:
            raise VaultPreconditionError("CompleteShare", "PRECONDITION_FAILED: put the assembled share first")
        ext.update(commitment=commitment, share_sha256=hashlib.sha256(self.ledger.shares[self.msp_id]).hexdigest(),
                   completed_txid=self.ledger.next_tx())
        return ExtensionRecord.parse_obj(ext)

    def list_extensions(self) -> Extensions:
        rec = self._record("ListExtensions")
        exts = sorted(self.ledger.extensions.values(), key=lambda e: int(e["share_index"]))
        return Extensions.parse(json.dumps({"ceremony_id": rec["ceremony_id"], "extensions": exts}))
