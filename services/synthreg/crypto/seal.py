"""Seal the secret audit context with AES-256-GCM.

Who calls: the key ceremony seals the serialised secret context once
(:func:`seal`); the auditor unseals it after recombining the sealing key from
Shamir shares (:func:`unseal`). The :class:`SealedKey` is public and lives on the
ledger (channel ``keys``) as the JSON dict of :meth:`SealedKey.to_dict`.

The associated data binds the public-context hash, ``t`` and ``n`` (canonical,
length-fixed encoding, see :func:`associated_data`), so a sealed blob cannot be
re-labelled for another context or another threshold without the tag failing.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "KEY_BYTES",
    "SealedKey",
    "SealedKeyFormatError",
    "UnsealError",
    "associated_data",
    "seal",
    "unseal",
]

KEY_BYTES = 32
NONCE_BYTES = 12
SEAL_VERSION = 1
_AAD_DOMAIN = b"synthreg/sealed-audit-key/v1\x00"
_AAD_TAIL = struct.Struct(">HH")


class SealedKeyFormatError(ValueError):
    """A sealed-key dict (from the ledger) is malformed; ``field`` names the bad field."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"sealed key: field {field!r}: {detail}")
        self.field = field


class UnsealError(Exception):
    """Unsealing failed: wrong key, tampered ciphertext, or wrong associated data.

    ``reason`` distinguishes an explicit label mismatch (caller expected another
    hash/t/n than the blob carries) from a failed GCM tag (which cannot tell wrong
    key from tampering — by design).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"cannot unseal audit key: {reason}")
        self.reason = reason


def _check_threshold(t: int, n: int) -> None:
    if not (1 <= t <= n <= 0xFFFF):
        raise ValueError(f"invalid threshold t={t}, n={n} (need 1 <= t <= n <= 65535)")


def associated_data(public_context_hash: str, t: int, n: int) -> bytes:
    """Canonical AAD: domain ‖ sha256 (32 raw bytes) ‖ t (u16 BE) ‖ n (u16 BE)."""
    _check_threshold(t, n)
    try:
        digest = bytes.fromhex(public_context_hash)
    except ValueError as exc:
        raise ValueError(f"public_context_hash is not hex: {public_context_hash!r}") from exc
    if len(digest) != 32:
        raise ValueError(f"public_context_hash must be a sha256 (64 hex chars), got {len(digest)} bytes")
    return _AAD_DOMAIN + digest + _AAD_TAIL.pack(t, n)


@dataclass(frozen=True)
class SealedKey:
    """The sealed secret context plus the public labels bound as associated data."""

    nonce: bytes
    ciphertext: bytes
    public_context_hash: str
    t: int
    n: int
    version: int = SEAL_VERSION

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (bytes as standard base64)."""
        return {
            "version": self.version,
            "alg": "AES-256-GCM",
            "nonce": base64.b64encode(self.nonce).decode("ascii"),
            "ciphertext": base64.b64encode(self.ciphertext).decode("ascii"),
            "public_context_hash": self.public_context_hash,
            "t": self.t,
            "n": self.n,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SealedKey:
        """Inverse of :meth:`to_dict`. Raises :class:`SealedKeyFormatError`."""
        if d.get("version") != SEAL_VERSION:
            raise SealedKeyFormatError("version", f"unsupported {d.get('version')!r}")
        if d.get("alg") != "AES-256-GCM":
            raise SealedKeyFormatError("alg", f"unsupported {d.get('alg')!r}")
        raw: dict[str, bytes] = {}
        for name in ("nonce", "ciphertext"):
            value = d.get(name)
            if not isinstance(value, str):
                raise SealedKeyFormatError(name, "missing or not a string")
            try:
                raw[name] = base64.b64decode(value, validate=True)
            except binascii.Error as exc:
                raise SealedKeyFormatError(name, "not base64") from exc
        if len(raw["nonce"]) != NONCE_BYTES:
            raise SealedKeyFormatError("nonce", f"must be {NONCE_BYTES} bytes")
        for name in ("t", "n"):
            if not isinstance(d.get(name), int) or isinstance(d.get(name), bool):
                raise SealedKeyFormatError(name, "missing or not an integer")
        pch = d.get("public_context_hash")
        if not isinstance(pch, str):
            raise SealedKeyFormatError("public_context_hash", "missing or not a string")
        try:
            associated_data(pch, d["t"], d["n"])
        except ValueError as exc:
            raise SealedKeyFormatError("public_context_hash/t/n", str(exc)) from exc
        return cls(raw["nonce"], raw["ciphertext"], pch, d["t"], d["n"])


def seal(
    secret: bytes | bytearray, key: bytes | bytearray, public_context_hash: str, t: int, n: int
) -> SealedKey:
    """Encrypt ``secret`` (the serialised secret context) under a 32-byte ``key``.

    A fresh random 96-bit nonce is used; the key must be used for one seal only.
    Raises ``ValueError`` for a key of the wrong size or bad labels.
    """
    if len(key) != KEY_BYTES:
        raise ValueError(f"sealing key must be {KEY_BYTES} bytes, got {len(key)}")
    aad = associated_data(public_context_hash, t, n)
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(bytes(key)).encrypt(nonce, bytes(secret), aad)
    return SealedKey(nonce, ciphertext, public_context_hash, t, n)


def unseal(
    sealed: SealedKey,
    key: bytes | bytearray,
    *,
    expected_public_context_hash: str | None = None,
    expected_t: int | None = None,
    expected_n: int | None = None,
) -> bytearray:
    """Decrypt a sealed key; returns the plaintext as a wipeable bytearray.

    If ``expected_*`` labels are given (e.g. read independently from the ledger),
    they must equal the blob's labels. Raises :class:`UnsealError` on a label
    mismatch, a key of the wrong size, or a failed GCM tag (wrong key, tampered
    nonce/ciphertext, or tampered labels).
    """
    for name, expected, actual in (
        ("public_context_hash", expected_public_context_hash, sealed.public_context_hash),
        ("t", expected_t, sealed.t),
        ("n", expected_n, sealed.n),
    ):
        if expected is not None and expected != actual:
            raise UnsealError(f"sealed blob binds {name}={actual!r}, caller expects {expected!r}")
    if len(key) != KEY_BYTES:
        raise UnsealError(f"key must be {KEY_BYTES} bytes, got {len(key)}")
    try:
        aad = associated_data(sealed.public_context_hash, sealed.t, sealed.n)
    except ValueError as exc:
        raise UnsealError(f"bad labels: {exc}") from exc
    try:
        plaintext = AESGCM(bytes(key)).decrypt(sealed.nonce, sealed.ciphertext, aad)
    except InvalidTag as exc:
        raise UnsealError("GCM tag check failed (wrong key, or blob/labels tampered)") from exc
    except ValueError as exc:  # e.g. a nonce of the wrong size in a hand-built SealedKey
        raise UnsealError(f"malformed sealed blob: {exc}") from exc
    return bytearray(plaintext)
