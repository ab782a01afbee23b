"""The keyvault chaincode behind an interface: :class:`KeyVault`.

Who calls: every service of :mod:`synthreg.keys` takes a :class:`KeyVault`;
the CLIs build a :class:`synthreg.chain.keyvault.LedgerKeyVault` from a Gateway
opened for one org's app identity (``synthreg.network.client.open_gateway``),
unit tests use :class:`synthreg.keys.memory.InMemoryKeyVault` (logic only —
never evidence for policies or privacy).

A vault acts as *one* identity (the Gateway's): the ceremony host's admin,
a registry's admin, or the auditor's reader. Failures raise a
:class:`~synthreg.keys.errors.VaultError` subclass chosen by the chaincode's
error code (``ACCESS_DENIED`` -> :class:`~synthreg.keys.errors.VaultAccessDeniedError`,
...); a failure without chaincode verdict (connection, timeout, ordering, MVCC)
is :class:`~synthreg.keys.errors.VaultUnavailableError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from synthreg.keys.records import CeremonyFacts, CeremonyRecord, ExtensionRecord, Extensions, OwnShare, Releases

__all__ = ["KeyVault"]


class KeyVault(Protocol):
    """The keyvault functions the audit-key services use (``chaincode/README.md``)."""

    def record_ceremony(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """``RecordCeremony``: record ``CeremonyOutput.public_record()``; returns the facts."""
        ...

    def get_ceremony(self) -> CeremonyFacts:
        """``GetCeremony``; :class:`VaultPreconditionError` before the ceremony."""
        ...

    def get_ceremony_record(self) -> CeremonyRecord:
        """``GetCeremonyRecord`` (blobs included)."""
        ...

    def put_share(self, org: str, share: bytes) -> dict[str, Any]:
        """``PutShare(org)`` with ``share`` in the transient map, endorsed by ``org`` only."""
        ...

    def get_share(self, org: str) -> OwnShare:
        """``GetShare(org)``, evaluated on ``org``'s peer."""
        ...

    def get_share_hash(self, org: str) -> str:
        """``GetShareHash(org)``: the on-chain sha256 of ``org``'s share."""
        ...

    def release_share(self, auditor_id: str, envelope: Mapping[str, Any]) -> dict[str, Any]:
        """``ReleaseShare``: record the caller org's release; returns the release record."""
        ...

    def list_releases(self, auditor_id: str) -> Releases:
        """``ListReleases(auditor_id)``."""
        ...

    def request_share(self, public_key: bytes, holders: list[str]) -> ExtensionRecord:
        """``RequestShare``: open the caller org's share extension with these ``t`` holders."""
        ...

    def contribute_share(self, org: str, envelope: Mapping[str, Any]) -> ExtensionRecord:
        """``ContributeShare(org)``: the caller holder's masked term, encrypted to ``org``."""
        ...

    def put_own_share(self, share: bytes) -> dict[str, Any]:
        """``PutOwnShare`` with ``share`` in the transient map, endorsed by the caller's org only."""
        ...

    def complete_share(self, commitment: str) -> ExtensionRecord:
        """``CompleteShare(commitment)``: the caller's new share becomes usable."""
        ...

    def list_extensions(self) -> Extensions:
        """``ListExtensions``."""
        ...
