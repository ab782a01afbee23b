"""Host side of the key ceremony: generate, record, distribute, forget.

Who calls: ``synthreg keys ceremony --threshold T [--org HOST]`` with a
:class:`~synthreg.keys.vault.KeyVault` acting as the host org's ``admin``
identity, and the recipients' public share keys read by
:func:`read_recipient_keys` from each org's ``share_key_dir``.

Steps of :func:`host_ceremony`:

1. refuse early if a ceremony is already recorded (the channel allows one);
2. :func:`synthreg.crypto.ceremony.run_ceremony` creates the CKKS audit key,
   seals it, splits the sealing key t-of-n and encrypts share i to registry i
   — all in memory; it verifies t fresh shares unseal before it returns and
   wipes the secret context and sealing key (nothing secret is returned);
3. ``RecordCeremony`` publishes ``public_record()`` (public context, sealed key,
   commitments, test ciphertext; host = the caller);
4. ``PutShare(org)`` per recipient, endorsed by that org's peer only, so the
   encrypted share reaches only that org's private collection; the receipt's
   sha256 must equal the envelope we sent.

Nothing is written to disk. A failure in step 4 raises
:class:`~synthreg.keys.errors.DistributionError` naming the org: the envelopes
existed only in this process, so an undistributed share is lost for good
(the key stays recoverable while at least t shares were distributed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from synthreg.crypto.ceremony import InvalidCeremonyError, run_ceremony
from synthreg.crypto.ckks import AUDIT_PARAMS, CkksParams
from synthreg.keys.errors import (
    CeremonyExistsError,
    DistributionError,
    KeysError,
    VaultAlreadyExistsError,
    VaultError,
    VaultPreconditionError,
)
from synthreg.keys.keyfiles import load_org_public_key
from synthreg.keys.records import encode_envelope
from synthreg.keys.vault import KeyVault

__all__ = [
    "CeremonyInputError",
    "CeremonyReport",
    "DistributedShare",
    "ensure_no_ceremony",
    "host_ceremony",
    "read_recipient_keys",
]


class CeremonyInputError(KeysError):
    """Bad ceremony parameters (threshold, recipients, keys); cause chained."""


@dataclass(frozen=True)
class DistributedShare:
    """One share written into its org's collection (from the ``PutShare`` receipt)."""

    org: str
    share_index: int
    sha256: str
    collection: str
    tx_id: str


@dataclass(frozen=True)
class CeremonyReport:
    """Public outcome of a ceremony run (printed by the CLI, ``--json``)."""

    ceremony_id: str
    t: int
    n: int
    host_msp: str
    public_context_hash: str
    public_context_bytes: int
    test_ciphertext_sha256: str
    record_tx_id: str
    shares: list[DistributedShare]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_recipient_keys(share_key_dirs: Mapping[str, Path]) -> dict[str, bytes]:
    """Raw X25519 public share keys of every recipient org (``org -> share_key_dir``)."""
    return {org: load_org_public_key(path) for org, path in sorted(share_key_dirs.items())}


def ensure_no_ceremony(vault: KeyVault) -> None:
    """Raise :class:`CeremonyExistsError` if a ceremony is recorded already."""
    try:
        facts = vault.get_ceremony()
    except VaultPreconditionError:
        return
    raise CeremonyExistsError(facts.ceremony_id, facts.host_msp)


def host_ceremony(
    vault: KeyVault,
    t: int,
    recipient_keys: Mapping[str, bytes],
    *,
    ceremony_id: str | None = None,
    params: CkksParams = AUDIT_PARAMS,
) -> CeremonyReport:
    """Run the one key ceremony of the network as the vault's (admin) identity.

    ``recipient_keys``: org MSP ID -> X25519 public key (raw or PEM); n is their
    number. Raises :class:`CeremonyInputError` (bad t / keys),
    :class:`CeremonyExistsError` (already recorded, checked before and by the
    chaincode), :class:`~synthreg.keys.errors.VaultError` (recording refused,
    e.g. ``ACCESS_DENIED`` for a non-admin), :class:`DistributionError`.
    """
    ensure_no_ceremony(vault)
    try:
        out = run_ceremony(t, len(recipient_keys), recipient_keys, ceremony_id=ceremony_id, params=params)
    except InvalidCeremonyError as exc:
        raise CeremonyInputError(str(exc)) from exc
    try:
        facts = vault.record_ceremony(out.public_record())
    except VaultAlreadyExistsError as exc:  # lost a race with another host
        raise CeremonyExistsError("", "", exc.detail) from exc
    host = facts.get("host") or {}
    shares: list[DistributedShare] = []
    for org in sorted(out.envelopes):
        payload = encode_envelope(out.envelopes[org])
        want = hashlib.sha256(payload).hexdigest()
        done = [s.org for s in shares]
        try:
            receipt = vault.put_share(org, payload)
        except VaultError as exc:
            raise DistributionError(out.ceremony_id, org, done, str(exc)) from exc
        if receipt.get("sha256") != want:
            raise DistributionError(out.ceremony_id, org, done,
                                    f"receipt sha256 {receipt.get('sha256')!r} != sent {want}")
        shares.append(DistributedShare(
            org=org, share_index=out.share_index[org], sha256=want,
            collection=str(receipt.get("collection", "")), tx_id=str(receipt.get("txid", "")),
        ))
    report = CeremonyReport(
        ceremony_id=out.ceremony_id,
        t=out.t,
        n=out.n,
        host_msp=str(host.get("msp", "")),
        public_context_hash=out.public_context_hash,
        public_context_bytes=len(out.public_context),
        test_ciphertext_sha256=out.test_ciphertext_hash,
        record_tx_id=str(facts.get("txid", "")),
        shares=shares,
    )
    del out  # public material and envelopes only; the secret was wiped inside run_ceremony
    return report
