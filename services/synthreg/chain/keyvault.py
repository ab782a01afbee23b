"""The ``keyvault`` chaincode on channel ``keys`` as a :class:`~synthreg.keys.vault.KeyVault`.

Who calls: the CLIs (``synthreg keys``, ``synthreg audit``) and the demo build a
:class:`LedgerKeyVault` from a Gateway opened for one org's app identity
(``synthreg.network.client.open_gateway``) and hand it to the
:mod:`synthreg.keys` services, which depend on the interface only.

Failures raise a :class:`~synthreg.keys.errors.VaultError` subclass chosen by
the chaincode's error code (``ACCESS_DENIED`` ->
:class:`~synthreg.keys.errors.VaultAccessDeniedError`, ...), chained ``from``
the :mod:`synthreg.ledger` error; a failure without chaincode verdict
(connection, timeout, ordering, MVCC) is
:class:`~synthreg.keys.errors.VaultUnavailableError`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from synthreg.keys.errors import VaultPreconditionError, VaultUnavailableError, vault_error
from synthreg.keys.records import (
    CeremonyFacts,
    CeremonyRecord,
    ExtensionRecord,
    Extensions,
    OwnShare,
    Releases,
    parse_json,
)
from synthreg.ledger import ChaincodeError, CommitError, Contract, GatewayError, LedgerError

__all__ = ["CHAINCODE", "CHANNEL", "TRANSIENT_SHARE", "LedgerKeyVault"]

CHANNEL = "keys"
CHAINCODE = "keyvault"
TRANSIENT_SHARE = "share"

T = TypeVar("T")


class LedgerKeyVault:
    """:class:`~synthreg.keys.vault.KeyVault` over a real :class:`synthreg.ledger.Contract` (``keyvault`` on ``keys``).

    The contract's Gateway decides who acts. Submits block until commit
    (bounded by the Gateway's timeout).
    """

    def __init__(self, contract: Contract) -> None:
        self.contract = contract

    def _call(self, fn: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except ChaincodeError as exc:
            raise vault_error(fn, exc.chaincode.code, exc.chaincode.detail, tx_id=exc.tx_id) from exc
        except GatewayError as exc:
            raise VaultUnavailableError(fn, str(exc), tx_id=exc.tx_id) from exc
        except CommitError as exc:
            raise VaultUnavailableError(fn, str(exc), tx_id=exc.tx_id) from exc
        except LedgerError as exc:
            raise VaultUnavailableError(fn, str(exc)) from exc

    def _submit(self, fn: str, *args: str, transient: Mapping[str, bytes] | None = None,
                endorsing_orgs: list[str] | None = None) -> dict[str, Any]:
        res = self._call(fn, lambda: self.contract.submit(fn, *args, transient=transient,
                                                           endorsing_orgs=endorsing_orgs))
        return parse_json(res.result, f"{fn} result")

    def _evaluate(self, fn: str, *args: str, endorsing_orgs: list[str] | None = None) -> bytes:
        return self._call(fn, lambda: self.contract.evaluate(fn, *args, endorsing_orgs=endorsing_orgs))

    def record_ceremony(self, record: Mapping[str, Any]) -> dict[str, Any]:
        return self._submit("RecordCeremony", json.dumps(record, separators=(",", ":")))

    def get_ceremony(self) -> CeremonyFacts:
        return CeremonyFacts.parse(self._evaluate("GetCeremony"))

    def get_ceremony_record(self) -> CeremonyRecord:
        return CeremonyRecord.parse(self._evaluate("GetCeremonyRecord"))

    def put_share(self, org: str, share: bytes, visibility_timeout: float = 15.0) -> dict[str, Any]:
        # Only org's peer endorses: the transient share reaches no other org. That
        # peer must already have committed the ceremony block (submit returned once
        # the *gateway's* peer committed it), so wait until it answers GetCeremony.
        deadline = time.monotonic() + visibility_timeout
        while True:
            try:
                self._evaluate("GetCeremony", endorsing_orgs=[org])
                break
            except VaultPreconditionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)  # poll interval: the peer is catching up on blocks
        return self._submit("PutShare", org, transient={TRANSIENT_SHARE: share}, endorsing_orgs=[org])

    def get_share(self, org: str) -> OwnShare:
        return OwnShare.parse(self._evaluate("GetShare", org, endorsing_orgs=[org]))

    def get_share_hash(self, org: str) -> str:
        d = parse_json(self._evaluate("GetShareHash", org), "GetShareHash result")
        digest = d.get("sha256")
        if not isinstance(digest, str):
            raise VaultUnavailableError("GetShareHash", f"result has no sha256: {d!r}")
        return digest

    def release_share(self, auditor_id: str, envelope: Mapping[str, Any]) -> dict[str, Any]:
        return self._submit("ReleaseShare", auditor_id, json.dumps(envelope, separators=(",", ":")))

    def list_releases(self, auditor_id: str) -> Releases:
        return Releases.parse(self._evaluate("ListReleases", auditor_id))

    def request_share(self, public_key: bytes, holders: list[str]) -> ExtensionRecord:
        req = json.dumps({"public_key": public_key.hex(), "holders": list(holders)}, separators=(",", ":"))
        return ExtensionRecord.parse_obj(self._submit("RequestShare", req))

    def contribute_share(self, org: str, envelope: Mapping[str, Any]) -> ExtensionRecord:
        return ExtensionRecord.parse_obj(
            self._submit("ContributeShare", org, json.dumps(envelope, separators=(",", ":"))))

    def put_own_share(self, share: bytes) -> dict[str, Any]:
        # Private write only: the caller org's own peer endorses, the share reaches no other org.
        org = self.contract.network.gateway.identity.msp_id
        return self._submit("PutOwnShare", transient={TRANSIENT_SHARE: share}, endorsing_orgs=[org])

    def complete_share(self, commitment: str) -> ExtensionRecord:
        return ExtensionRecord.parse_obj(self._submit("CompleteShare", commitment))

    def list_extensions(self) -> Extensions:
        return Extensions.parse(self._evaluate("ListExtensions"))
