"""Registry side of a release: hand this org's share to an auditor.

Who calls: ``synthreg keys release --org ORG --auditor PUBKEY_PEM`` with a
:class:`~synthreg.keys.vault.KeyVault` acting as ``ORG``'s ``admin`` identity
(the only role the chaincode lets read the share and record a release) and
``ORG``'s share key pair from its ``share_key_dir`` (the private key never
leaves the org's host).

:func:`release_to_auditor`:

1. ``GetCeremony`` and ``ListExtensions`` (commitments, share indices, a
   newcomer's share included once its extension is complete) and
   ``GetShare(ORG)`` from ORG's own collection; the share's sha256 must equal the on-chain private
   data hash (``GetShareHash``) — so the peer returned what was distributed;
2. open the share with ORG's private key and check it against its published
   commitment: a registry never releases a share the auditor would reject;
3. re-encrypt the share to the auditor's public key (context = ceremony id +
   auditor id) and record ``ReleaseShare(auditor_id, envelope)`` publicly.

The plaintext share exists only in memory, inside this call. Failures:
:class:`~synthreg.keys.errors.ShareIntegrityError` (hash, envelope, index or
commitment mismatch), :class:`~synthreg.keys.errors.VaultError` subclasses
(``ACCESS_DENIED`` for another org's share or a non-admin,
``ALREADY_EXISTS`` for a second release to the same auditor,
``PRECONDITION_FAILED`` before the ceremony).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

from synthreg.crypto.ceremony import open_share, release_share
from synthreg.crypto.shamir import ShamirError, Share
from synthreg.crypto.transport import EnvelopeError, RecipientKeyPair
from synthreg.keys.errors import ShareIntegrityError
from synthreg.keys.keyfiles import AuditorPublicKey
from synthreg.keys.records import decode_envelope
from synthreg.keys.vault import KeyVault

__all__ = ["ReleaseReport", "read_own_share", "release_to_auditor"]


@dataclass(frozen=True)
class ReleaseReport:
    """Public outcome of one release (printed by the CLI, ``--json``)."""

    ceremony_id: str
    org: str
    share_index: int
    auditor_id: str
    envelope_sha256: str
    tx_id: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_own_share(vault: KeyVault, org: str, org_key: RecipientKeyPair) -> Share:
    """``org``'s own share from its collection, checked against the on-chain hash,
    its recorded index and its published commitment. Raises :class:`ShareIntegrityError`."""
    facts = vault.get_ceremony()
    commitments, index = vault.list_extensions().widen(facts.commitments, facts.share_index)
    own = vault.get_share(org)
    onchain = vault.get_share_hash(org)
    actual = hashlib.sha256(own.share).hexdigest()
    if not (actual == own.sha256 == onchain):
        raise ShareIntegrityError(org, f"collection value sha256 {actual} != on-chain hash {onchain}")
    if own.ceremony_id != facts.ceremony_id or index.get(org) != own.share_index:
        raise ShareIntegrityError(org, f"share is for ceremony {own.ceremony_id} index {own.share_index}, "
                                       f"ledger records {facts.ceremony_id} index {index.get(org)}")
    envelope = decode_envelope(own.share, f"share of {org}")
    try:
        share = open_share(org_key, envelope, facts.ceremony_id, org)
        if share.index != own.share_index:
            raise ShareIntegrityError(org, f"decrypted share has index {share.index}, expected {own.share_index}")
        commitments.check(share)
    except EnvelopeError as exc:
        raise ShareIntegrityError(org, f"cannot open own share with this org's key: {exc.reason}") from exc
    except ShamirError as exc:
        raise ShareIntegrityError(org, str(exc)) from exc
    return share



def release_to_auditor(
    vault: KeyVault, org: str, org_key: RecipientKeyPair, auditor: AuditorPublicKey
) -> ReleaseReport:
    """Release ``org``'s share to ``auditor`` (see module docstring for steps and errors)."""
    share = read_own_share(vault, org, org_key)
    try:
        released = release_share(share, vault.get_ceremony().ceremony_id, auditor.id, auditor.raw)
    finally:
        del share
    record = vault.release_share(auditor.id, released.to_dict())
    return ReleaseReport(
        ceremony_id=str(record.get("ceremony_id", "")),
        org=org,
        share_index=int(record.get("share_index", 0)),
        auditor_id=auditor.id,
        envelope_sha256=str(record.get("envelope_sha256", "")),
        tx_id=str(record.get("txid", "")),
    )
