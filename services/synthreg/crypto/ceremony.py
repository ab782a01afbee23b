"""Audit-key ceremony and recovery: pure logic, no ledger, no disk.

Who calls: the ``synthreg keys ceremony`` CLI calls :func:`run_ceremony` and
publishes :meth:`CeremonyOutput.public_record` on channel ``keys`` and each
envelope in its recipient's private collection; a registry calls
:func:`open_share` / :func:`release_share` to hand its share to an auditor; the
auditor calls :func:`recover_audit_key` then :func:`verify_audit_proof`.

Secret handling: the secret context and the sealing key exist only in memory,
inside :func:`run_ceremony`, and are never written to disk (tested by
``tests/unit/test_crypto_ceremony.py`` with an audit hook on every file open).
Wiping is best effort: buffers this module owns are bytearrays zeroed in
``finally`` blocks; copies inside TenSEAL (C++), cryptography (Rust), pycryptodome
(Python ints) and immutable ``bytes`` are released, not overwritten. Before the
secret is dropped the ceremony recovers it from ``t`` of the fresh shares and
decrypts the test ciphertext, so it never publishes material that cannot unseal.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthreg.crypto.ckks import (
    AUDIT_PARAMS,
    CkksParams,
    ContextMismatchError,
    EncryptedVector,
    SecretContext,
    create_audit_context,
    decrypt,
    encrypt_vector,
    load_secret_context,
)
from synthreg.crypto.seal import KEY_BYTES, SealedKey, UnsealError, seal, unseal
from synthreg.crypto.shamir import Share, ShareCommitments, combine, make_commitments, split
from synthreg.crypto.transport import (
    PURPOSE_RELEASE,
    PURPOSE_SHARE,
    Envelope,
    EnvelopeContext,
    RecipientKeyPair,
    load_public_key,
    open_envelope,
    seal_to,
)

__all__ = [
    "PROOF_TOLERANCE",
    "AuditProofError",
    "CeremonyOutput",
    "InvalidCeremonyError",
    "audit_test_vector",
    "open_released_share",
    "open_share",
    "recover_audit_key",
    "release_share",
    "run_ceremony",
    "verify_audit_proof",
]

TEST_VECTOR_LENGTH = 32
PROOF_TOLERANCE = 1e-6
_TEST_VECTOR_DOMAIN = b"synthreg/audit-test-vector/v1\x00"


class InvalidCeremonyError(ValueError):
    """Bad ceremony inputs: threshold, recipient count, or a recipient key."""


class AuditProofError(Exception):
    """The recorded test ciphertext does not decrypt to the ceremony's test vector.

    ``max_abs_error`` is the largest deviation seen (``inf`` if lengths differ).
    """

    def __init__(self, ceremony_id: str, max_abs_error: float) -> None:
        super().__init__(
            f"ceremony {ceremony_id}: test ciphertext decrypts with max error "
            f"{max_abs_error:.3g} > {PROOF_TOLERANCE:g}"
        )
        self.ceremony_id = ceremony_id
        self.max_abs_error = max_abs_error


def audit_test_vector(ceremony_id: str) -> np.ndarray:
    """The public test vector of a ceremony: 32 floats in [-10, 10] derived from its id.

    Derived, not chosen, so an auditor proves decryption of a value fixed at the
    ceremony; anyone can recompute it.
    """
    digest = hashlib.sha256(_TEST_VECTOR_DOMAIN + ceremony_id.encode("utf-8")).digest()
    rng = np.random.default_rng(int.from_bytes(digest, "big"))
    return rng.uniform(-10.0, 10.0, TEST_VECTOR_LENGTH)


@dataclass(frozen=True)
class CeremonyOutput:
    """Everything a ceremony produces; no secret in here.

    ``envelopes[recipient_id]`` is that recipient's share, encrypted to its key
    (goes to its private collection); all other fields are public
    (:meth:`public_record`). ``share_index[recipient_id]`` is the share's x-index.
    """

    ceremony_id: str
    t: int
    n: int
    public_context: bytes
    public_context_hash: str
    sealed_key: SealedKey
    commitments: ShareCommitments
    share_index: Mapping[str, int]
    recipient_public_keys: Mapping[str, bytes]
    test_ciphertext: bytes
    envelopes: Mapping[str, Envelope]

    @property
    def test_ciphertext_hash(self) -> str:
        """Hex sha256 of the test ciphertext bytes."""
        return hashlib.sha256(self.test_ciphertext).hexdigest()

    def public_record(self) -> dict[str, Any]:
        """JSON-able public facts (large blobs base64; the CLI may chunk them)."""
        return {
            "ceremony_id": self.ceremony_id,
            "t": self.t,
            "n": self.n,
            "public_context_hash": self.public_context_hash,
            "public_context_b64": base64.b64encode(self.public_context).decode("ascii"),
            "sealed_key": self.sealed_key.to_dict(),
            "commitments": self.commitments.to_dict(),
            "share_index": dict(sorted(self.share_index.items())),
            "recipient_public_keys": {r: k.hex() for r, k in sorted(self.recipient_public_keys.items())},
            "test_ciphertext_sha256": self.test_ciphertext_hash,
            "test_ciphertext_b64": base64.b64encode(self.test_ciphertext).decode("ascii"),
        }


def _wipe(buf: bytearray | None) -> None:
    if buf is not None:
        buf[:] = bytes(len(buf))


def run_ceremony(
    t: int,
    n: int,
    recipient_public_keys: Mapping[str, bytes],
    *,
    ceremony_id: str | None = None,
    params: CkksParams = AUDIT_PARAMS,
) -> CeremonyOutput:
    """Create, seal and split the audit key; encrypt share i to recipient i.

    ``recipient_public_keys`` maps recipient id (e.g. MSP ID) to its X25519 public
    key (32 raw bytes or PEM); recipients sorted by id get share indices 1..n.
    ``ceremony_id`` defaults to a random UUID hex. Raises
    :class:`InvalidCeremonyError` for ``t < 2``, ``t > n``, ``n`` different from the
    number of recipients, an empty id, or a bad/duplicate key.
    """
    if n != len(recipient_public_keys):
        raise InvalidCeremonyError(f"n={n} but {len(recipient_public_keys)} recipients given")
    if not (2 <= t <= n):
        raise InvalidCeremonyError(f"need 2 <= t <= n, got t={t}, n={n} (t=1 hands every recipient the key)")
    recipients = sorted(recipient_public_keys)
    raw_keys: dict[str, bytes] = {}
    for rid in recipients:
        if not rid:
            raise InvalidCeremonyError("empty recipient id")
        try:
            raw_keys[rid] = load_public_key(recipient_public_keys[rid]).public_bytes_raw()
        except ValueError as exc:
            raise InvalidCeremonyError(f"recipient {rid!r}: {exc}") from exc
    if len(set(raw_keys.values())) != n:
        raise InvalidCeremonyError("two recipients share the same public key")
    cid = ceremony_id if ceremony_id is not None else uuid.uuid4().hex
    if not cid:
        raise InvalidCeremonyError("empty ceremony id")

    keys = create_audit_context(params)
    public = keys.public
    secret_buf: bytearray | None = None
    sealing_key: bytearray | None = None
    try:
        secret_buf = keys.secret.serialize()
        sealing_key = bytearray(os.urandom(KEY_BYTES))
        sealed = seal(secret_buf, sealing_key, public.hash, t, n)
        _wipe(secret_buf)
        shares = split(sealing_key, t, n)
        commitments = make_commitments(shares, cid)
        test_ct = encrypt_vector(public, audit_test_vector(cid)).to_bytes()

        # Verify before destroy: t fresh shares must unseal and decrypt the test vector.
        check = recover_audit_key(shares[:t], commitments, sealed, public.hash, t, n, params=params)
        verify_audit_proof(check, test_ct, cid)
        del check

        envelopes = {
            rid: seal_to(raw_keys[rid], share.to_bytes(), EnvelopeContext(PURPOSE_SHARE, cid, rid))
            for rid, share in zip(recipients, shares, strict=True)
        }
        share_index = {rid: share.index for rid, share in zip(recipients, shares, strict=True)}
        del shares
    finally:
        _wipe(secret_buf)
        _wipe(sealing_key)
        del keys
    return CeremonyOutput(
        ceremony_id=cid,
        t=t,
        n=n,
        public_context=public.serialized,
        public_context_hash=public.hash,
        sealed_key=sealed,
        commitments=commitments,
        share_index=share_index,
        recipient_public_keys=raw_keys,
        test_ciphertext=test_ct,
        envelopes=envelopes,
    )


def _open_share_envelope(key: RecipientKeyPair, envelope: Envelope, context: EnvelopeContext) -> Share:
    """Decrypt an envelope holding one serialized share; the plaintext buffer is wiped after parsing."""
    raw = open_envelope(key, envelope, context)
    try:
        return Share.from_bytes(raw)
    finally:
        _wipe(raw)


def open_share(
    recipient: RecipientKeyPair, envelope: Envelope, ceremony_id: str, recipient_id: str
) -> Share:
    """Recipient side: decrypt the share the ceremony encrypted to ``recipient_id``.

    Raises :class:`~synthreg.crypto.transport.EnvelopeError` (wrong key/context,
    tampered) or :class:`~synthreg.crypto.shamir.ShareFormatError`.
    """
    return _open_share_envelope(recipient, envelope, EnvelopeContext(PURPOSE_SHARE, ceremony_id, recipient_id))


def release_share(share: Share, ceremony_id: str, auditor_id: str, auditor_public_key: bytes) -> Envelope:
    """Registry side of a release: encrypt own (opened, checked) share to the auditor's key.

    The envelope's context is ``(PURPOSE_RELEASE, ceremony_id, auditor_id)``;
    open it with :func:`open_released_share`.
    """
    return seal_to(auditor_public_key, share.to_bytes(), EnvelopeContext(PURPOSE_RELEASE, ceremony_id, auditor_id))


def open_released_share(auditor: RecipientKeyPair, envelope: Envelope, ceremony_id: str, auditor_id: str) -> Share:
    """Auditor side: decrypt a share released to ``auditor_id``. Raises ``EnvelopeError``."""
    return _open_share_envelope(auditor, envelope, EnvelopeContext(PURPOSE_RELEASE, ceremony_id, auditor_id))


def recover_audit_key(
    shares: Sequence[Share],
    commitments: ShareCommitments,
    sealed: SealedKey,
    public_ctx_hash: str,
    t: int,
    n: int,
    *,
    params: CkksParams = AUDIT_PARAMS,
) -> SecretContext:
    """Auditor: recombine the sealing key, unseal, and load the secret context.

    ``public_ctx_hash``, ``t``, ``n`` are the values recorded on the ledger; the
    sealed blob must carry the same. Raises (all from :mod:`synthreg.crypto`):
    ``DuplicateShareError``, ``TamperedShareError`` (names the share),
    ``NotEnoughSharesError``, ``KeyVerificationError`` (recombined key fails the
    GCM tag; cause chained), ``UnsealError`` (labels differ from the ledger's),
    ``InvalidContextError`` or ``ContextMismatchError`` (unsealed key does not
    belong to ``public_ctx_hash``).
    """
    if commitments.n < n:  # more when registries that joined later got shares (crypto.extension)
        raise ValueError(f"{commitments.n} commitments published but n={n}")
    plaintexts: list[bytearray] = []

    def _unseal(key: bytearray) -> None:
        plaintexts.append(
            unseal(sealed, key, expected_public_context_hash=public_ctx_hash, expected_t=t, expected_n=n)
        )

    # Labels first, so a relabelled blob is reported as such and not as a bad share.
    for name, ledger, blob in (
        ("public_context_hash", public_ctx_hash, sealed.public_context_hash),
        ("t", t, sealed.t),
        ("n", n, sealed.n),
    ):
        if ledger != blob:
            raise UnsealError(f"sealed blob binds {name}={blob!r}, ledger records {ledger!r}")
    key = combine(shares, commitments, t, verify=_unseal)
    _wipe(key)
    plaintext = plaintexts[0]
    try:
        secret = load_secret_context(plaintext, params)
    finally:
        _wipe(plaintext)
    if secret.public_context_hash != public_ctx_hash:
        raise ContextMismatchError(public_ctx_hash, secret.public_context_hash, "unsealed secret context")
    return secret


def verify_audit_proof(secret: SecretContext, test_ciphertext: bytes, ceremony_id: str) -> float:
    """Decrypt the ceremony's test ciphertext and compare with :func:`audit_test_vector`.

    Returns the max absolute error; raises :class:`AuditProofError` above
    :data:`PROOF_TOLERANCE`, or ``ContextMismatchError`` / format errors from
    :mod:`synthreg.crypto.ckks` if the ciphertext belongs to another context.
    """
    enc = EncryptedVector.from_bytes(secret.public(), test_ciphertext)
    got = decrypt(secret, enc)
    want = audit_test_vector(ceremony_id)
    err = float(np.max(np.abs(got - want))) if got.shape == want.shape else float("inf")
    if not err <= PROOF_TOLERANCE:
        raise AuditProofError(ceremony_id, err)
    return err
