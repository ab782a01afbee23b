"""Public facts of the audit key: ``synthreg keys show``.

Who calls: the ``keys show`` CLI, with a :class:`~synthreg.keys.vault.KeyVault`
for any consortium identity (every function used is open to all roles).

What it shows: t, n, ceremony id, host, public-context / test-ciphertext
hashes, the share commitments, which orgs' shares are distributed (with the
on-chain sha256 of each encrypted share), and, per auditor asked about, who
released which share. The chaincode indexes releases by auditor id
(``ListReleases(auditorID)``), so releases are listed only for the auditor
ids (or public keys) given; there is no "all releases" query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from synthreg.keys.errors import NoCeremonyError, VaultPreconditionError
from synthreg.keys.records import CeremonyFacts, Extensions, ReleaseRecord
from synthreg.keys.vault import KeyVault

__all__ = ["KeysOverview", "keys_overview"]


@dataclass(frozen=True)
class KeysOverview:
    """Ceremony facts, share extensions of registries that joined later, releases per auditor id."""

    facts: CeremonyFacts
    releases: dict[str, tuple[ReleaseRecord, ...]]
    extensions: Extensions

    def to_dict(self) -> dict[str, Any]:
        f = self.facts
        return {
            "ceremony_id": f.ceremony_id,
            "t": f.t,
            "n": f.n,
            "host_msp": f.host_msp,
            "recorded_tx": f.tx_id,
            "recorded_at": f.timestamp,
            "public_context_hash": f.public_context_hash,
            "public_context_bytes": f.raw.get("public_context_bytes"),
            "sealed_key_sha256": f.raw.get("sealed_key_sha256"),
            "test_ciphertext_sha256": f.raw.get("test_ciphertext_sha256"),
            "share_index": dict(sorted(f.share_index.items())),
            "commitments": {str(i): d for i, d in sorted(f.commitments.digests.items())},
            "shares_distributed": dict(sorted(f.shares.items())),
            "extensions": [e.summary() for e in self.extensions.extensions],
            "releases": {
                aid: {"count": len(rels), "t": f.t, "unsealable": len(rels) >= f.t,
                      "released": [r.summary() for r in rels]}
                for aid, rels in self.releases.items()
            },
        }


def keys_overview(vault: KeyVault, auditor_ids: Sequence[str] = ()) -> KeysOverview:
    """Read the ceremony facts and the releases to each of ``auditor_ids``.

    Raises :class:`~synthreg.keys.errors.NoCeremonyError` before the
    ceremony, other :class:`~synthreg.keys.errors.VaultError` on ledger failures.
    """
    try:
        facts = vault.get_ceremony()
    except VaultPreconditionError as exc:
        raise NoCeremonyError(exc.detail) from exc
    releases = {aid: vault.list_releases(aid).releases for aid in dict.fromkeys(auditor_ids)}
    return KeysOverview(facts, releases, vault.list_extensions())
