"""Encrypt small secrets (Shamir shares, seeds) to a recipient's X25519 key.

Who calls: the key ceremony encrypts share i to registry i
(:data:`PURPOSE_SHARE`); a registry re-encrypts its share to the auditor on
release (:data:`PURPOSE_RELEASE`); secure aggregation (DESIGN.md §4) derives
pairwise mask seeds with :func:`derive_pairwise_seed`.

Scheme (ECIES-like): ephemeral X25519 key, shared secret -> HKDF-SHA256 (salt =
ephemeral public ‖ recipient public, info = domain ‖ canonical context) -> 32-byte
AES-256-GCM key; the canonical context and the ephemeral public key are also the
GCM associated data. An envelope therefore opens only with the right private key
*and* the same :class:`EnvelopeContext` (purpose, ceremony id, recipient id).
Envelopes are JSON-able (:meth:`Envelope.to_dict`) and live in Fabric private
collections or public release records; private keys never leave the registry.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "PURPOSE_RELEASE",
    "PURPOSE_SHARE",
    "Envelope",
    "EnvelopeContext",
    "EnvelopeError",
    "KeyFormatError",
    "RecipientKeyPair",
    "derive_pairwise_seed",
    "generate_recipient_keypair",
    "load_public_key",
    "open_envelope",
    "seal_to",
]

PURPOSE_SHARE = "synthreg/share/v1"
PURPOSE_RELEASE = "synthreg/share-release/v1"
ENVELOPE_VERSION = 1
_ENVELOPE_DOMAIN = b"synthreg/envelope/v1\x00"
_PAIRWISE_DOMAIN = b"synthreg/pairwise-seed/v1\x00"
_NONCE_BYTES = 12
_RAW_KEY_BYTES = 32


class KeyFormatError(ValueError):
    """A public or private key encoding is malformed."""


class EnvelopeError(Exception):
    """An envelope cannot be opened: wrong key, wrong context, tampered, or malformed.

    ``recipient_id`` is the recipient named in the context that was tried.
    """

    def __init__(self, recipient_id: str, reason: str) -> None:
        super().__init__(f"cannot open envelope for {recipient_id!r}: {reason}")
        self.recipient_id = recipient_id
        self.reason = reason


def _lp(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise ValueError("context field longer than 65535 bytes")
    return struct.pack(">H", len(raw)) + raw


@dataclass(frozen=True)
class EnvelopeContext:
    """What an envelope is for; bound into the key derivation and the GCM AAD."""

    purpose: str
    ceremony_id: str
    recipient_id: str

    def encode(self) -> bytes:
        """Canonical encoding: each field length-prefixed (u16), in field order."""
        return _lp(self.purpose) + _lp(self.ceremony_id) + _lp(self.recipient_id)


def _raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_public_key(data: bytes) -> X25519PublicKey:
    """Load an X25519 public key from 32 raw bytes or PEM. Raises :class:`KeyFormatError`."""
    try:
        if len(data) == _RAW_KEY_BYTES:
            return X25519PublicKey.from_public_bytes(data)
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise KeyFormatError(f"not an X25519 public key: {exc}") from exc
    if not isinstance(key, X25519PublicKey):
        raise KeyFormatError(f"expected an X25519 public key, got {type(key).__name__}")
    return key


@dataclass(frozen=True)
class RecipientKeyPair:
    """A registry's (or the auditor's) long-lived X25519 key pair.

    Who stores it: the owner, on its own host; only :meth:`public_raw` /
    :meth:`public_pem` are published. Use :meth:`private_pem` with care (unencrypted).
    """

    private_key: X25519PrivateKey

    @property
    def public_key(self) -> X25519PublicKey:
        return self.private_key.public_key()

    def public_raw(self) -> bytes:
        """32 raw public-key bytes."""
        return _raw_public(self.public_key)

    def public_pem(self) -> bytes:
        """SubjectPublicKeyInfo PEM."""
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def private_pem(self) -> bytes:
        """Unencrypted PKCS#8 PEM (for the owner's own key store only)."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def from_private_pem(cls, pem: bytes) -> RecipientKeyPair:
        """Inverse of :meth:`private_pem`. Raises :class:`KeyFormatError`."""
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise KeyFormatError(f"not a PEM private key: {exc}") from exc
        if not isinstance(key, X25519PrivateKey):
            raise KeyFormatError(f"expected an X25519 private key, got {type(key).__name__}")
        return cls(key)


def generate_recipient_keypair() -> RecipientKeyPair:
    """Fresh X25519 key pair."""
    return RecipientKeyPair(X25519PrivateKey.generate())


@dataclass(frozen=True)
class Envelope:
    """Ciphertext of a small secret for one recipient (public, JSON-able)."""

    ephemeral_public: bytes
    nonce: bytes
    ciphertext: bytes
    version: int = ENVELOPE_VERSION

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict, bytes as standard base64."""
        return {
            "version": self.version,
            "epk": base64.b64encode(self.ephemeral_public).decode("ascii"),
            "nonce": base64.b64encode(self.nonce).decode("ascii"),
            "ciphertext": base64.b64encode(self.ciphertext).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Envelope:
        """Inverse of :meth:`to_dict`. Raises :class:`KeyFormatError` when malformed."""
        if d.get("version") != ENVELOPE_VERSION:
            raise KeyFormatError(f"unsupported envelope version {d.get('version')!r}")
        try:
            epk, nonce, ct = (base64.b64decode(d[k], validate=True) for k in ("epk", "nonce", "ciphertext"))
        except (KeyError, TypeError, binascii.Error) as exc:
            raise KeyFormatError(f"malformed envelope: {exc!r}") from exc
        if len(epk) != _RAW_KEY_BYTES or len(nonce) != _NONCE_BYTES:
            raise KeyFormatError("envelope epk must be 32 bytes and nonce 12 bytes")
        return cls(epk, nonce, ct)


def _derive_key(shared: bytes, epk: bytes, recipient_pub: bytes, context: EnvelopeContext) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=epk + recipient_pub,
        info=_ENVELOPE_DOMAIN + context.encode(),
    ).derive(shared)


def seal_to(
    recipient_public: bytes | X25519PublicKey, plaintext: bytes | bytearray, context: EnvelopeContext
) -> Envelope:
    """Encrypt ``plaintext`` so only the holder of the matching private key can read it,
    and only under the same ``context``. Raises :class:`KeyFormatError` for a bad key."""
    pub = recipient_public if isinstance(recipient_public, X25519PublicKey) else load_public_key(recipient_public)
    ephemeral = X25519PrivateKey.generate()
    epk = _raw_public(ephemeral.public_key())
    key = _derive_key(ephemeral.exchange(pub), epk, _raw_public(pub), context)
    nonce = os.urandom(_NONCE_BYTES)
    ciphertext = AESGCM(key).encrypt(nonce, bytes(plaintext), epk + context.encode())
    return Envelope(epk, nonce, ciphertext)


def open_envelope(
    recipient: RecipientKeyPair | X25519PrivateKey, envelope: Envelope, context: EnvelopeContext
) -> bytearray:
    """Decrypt an envelope; returns a wipeable bytearray.

    Raises :class:`EnvelopeError` for a wrong private key, a different context, or
    any tampering (all indistinguishable by design: the GCM tag fails).
    """
    priv = recipient.private_key if isinstance(recipient, RecipientKeyPair) else recipient
    try:
        epk_key = X25519PublicKey.from_public_bytes(envelope.ephemeral_public)
        shared = priv.exchange(epk_key)
        key = _derive_key(shared, envelope.ephemeral_public, _raw_public(priv.public_key()), context)
        plaintext = AESGCM(key).decrypt(
            envelope.nonce, envelope.ciphertext, envelope.ephemeral_public + context.encode()
        )
    except InvalidTag as exc:
        raise EnvelopeError(context.recipient_id,
                            "GCM tag check failed (wrong key, wrong context, or tampered)") from exc
    except ValueError as exc:  # low-order ephemeral key, bad nonce size, ...
        raise EnvelopeError(context.recipient_id, f"malformed envelope: {exc}") from exc
    return bytearray(plaintext)


def derive_pairwise_seed(
    my_private: RecipientKeyPair | X25519PrivateKey, their_public: bytes | X25519PublicKey, context: bytes
) -> bytes:
    """32-byte seed both parties of an X25519 pair derive identically (secure aggregation).

    HKDF-SHA256 over the shared secret, salt = the two public keys in sorted order
    (so it is symmetric), info = domain ‖ ``context`` (e.g. channel, round number).
    Raises :class:`KeyFormatError` for a bad or low-order public key.
    """
    priv = my_private.private_key if isinstance(my_private, RecipientKeyPair) else my_private
    pub = their_public if isinstance(their_public, X25519PublicKey) else load_public_key(their_public)
    try:
        shared = priv.exchange(pub)
    except ValueError as exc:
        raise KeyFormatError(f"key agreement failed: {exc}") from exc
    a, b = sorted((_raw_public(priv.public_key()), _raw_public(pub)))
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=a + b, info=_PAIRWISE_DOMAIN + context).derive(shared)
